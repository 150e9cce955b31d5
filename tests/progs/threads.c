/* Threads: `threads OUTFILE [NCOUNT [NWAIT]]` (default 200 counters, 4 futex waiters).
 *
 * Counter thread i increments a counter of its own in a loop: threads 0, 100, 200... spin, the
 * others sleep 1-20 ms between increments (so that 200 threads leave two cores usable). Each
 * keeps the count in a local variable too and stores it to its slot after every increment.
 * Futex waiter j blocks on a word of its own, in one of four ways (j % 4): FUTEX_WAIT_PRIVATE;
 * FUTEX_WAIT (shared) on a word in a MAP_SHARED|MAP_ANONYMOUS page; FUTEX_WAIT_PRIVATE with a
 * 1-hour relative timeout; FUTEX_WAIT_BITSET_PRIVATE with an absolute CLOCK_MONOTONIC deadline an
 * hour away. Every thread records gettid(), sets a name of its own (PR_SET_NAME) and a signal
 * mask of its own (SIGTERM plus the bits of its number + 1 over SIGRTMIN+2..+11), and fills an array on
 * its stack with a pattern. Lines "thread TID NAME" (and "thread TID thr-main" for the main
 * thread) let the test compare with /proc. READY once every thread is set up and every waiter is
 * blocked in futex on its word (/proc/self/task/TID/syscall: futex or, after a ptrace interrupt
 * of a wait with a timeout, restart_syscall, with the word as first argument).
 *
 * On SIGTERM (taken by the main thread: the others block it) the main thread checks
 *   - /proc/self/task holds exactly the recorded TIDs, with the recorded names (comm);
 *   - each waiter is blocked in futex (or restart_syscall) on its word; it sets the word, and
 *     FUTEX_WAKE must wake exactly one waiter, which must report within 5 s;
 *   - every counter is at least what it was before READY and keeps increasing;
 * then tells the counters to stop; every thread checks its own gettid(), PR_GET_NAME, signal
 * mask, stack array and (counters) local count against its slot; the main thread joins them
 * all (with a timeout) and writes PASS. */
#include "common.h"
#include <dirent.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#define MAXT 1024
#define STACK_ARR 2048

enum kind { K_SPIN, K_SLEEP, K_WAIT };

struct slot {
	int idx;
	enum kind kind;
	int variant; /* waiters: j % 4 */
	pid_t tid;
	char name[16];
	sigset_t mask;
	uint64_t count;	 /* counters: stored after every increment */
	uint64_t before; /* counters: value just before READY */
	uint32_t *word;	 /* waiters */
	int ready, woke, early;
	pthread_t th;
} __attribute__((aligned(64)));

static struct slot g_slot[MAXT];
static int g_n;
static int g_phase; /* 1: counters stop and every thread checks itself */
static int g_tfails;
static uint32_t g_private_words[MAXT];
static uint32_t *g_shared_words; /* MAP_SHARED|MAP_ANONYMOUS page */

#define tfail(...)                                                                                 \
	do {                                                                                       \
		__atomic_add_fetch(&g_tfails, 1, __ATOMIC_RELAXED);                                \
		out_line("FAIL: " __VA_ARGS__);                                                    \
	} while (0)

static long futex(uint32_t *uaddr, int op, uint32_t val, const struct timespec *to, uint32_t val3)
{
	return syscall(SYS_futex, uaddr, op, val, to, NULL, val3);
}

static pid_t my_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void expected_mask(int idx, sigset_t *m)
{
	sigemptyset(m);
	sigaddset(m, SIGTERM);
	for (int b = 0; b < 10 && SIGRTMIN + 2 + b <= SIGRTMAX; b++)
		if ((idx >> b) & 1)
			sigaddset(m, SIGRTMIN + 2 + b);
}

static void check_self(struct slot *s, const unsigned char *stk)
{
	pid_t t = my_tid();
	if (t != s->tid)
		tfail("%s: gettid %d, expected %d", s->name, t, s->tid);
	char name[17] = { 0 };
	if (prctl(PR_GET_NAME, name) != 0 || strcmp(name, s->name) != 0)
		tfail("thread %d: name '%s', expected '%s'", s->tid, name, s->name);
	sigset_t cur;
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	for (int sig = 1; sig <= SIGRTMAX; sig++) {
		if (sig == 32 || sig == 33) /* glibc's internal signals */
			continue;
		if (sigismember(&cur, sig) != sigismember(&s->mask, sig))
			tfail("%s (%d): signal %d %s in the mask", s->name, s->tid, sig,
			      sigismember(&cur, sig) ? "unexpectedly" : "missing");
	}
	long off = check_pat(stk, STACK_ARR, 5000 + s->idx);
	if (off >= 0)
		tfail("%s (%d): stack array byte %ld differs", s->name, s->tid, off);
}

static void setup_self(struct slot *s, unsigned char *stk)
{
	s->tid = my_tid();
	SETUP(prctl(PR_SET_NAME, s->name) == 0, "PR_SET_NAME");
	SETUP(pthread_sigmask(SIG_SETMASK, &s->mask, NULL) == 0, "pthread_sigmask");
	fill_pat(stk, STACK_ARR, 5000 + s->idx);
}

static void *counter_main(void *arg)
{
	struct slot *s = arg;
	unsigned char stk[STACK_ARR];
	setup_self(s, stk);
	__atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
	uint64_t local = 0;
	struct timespec d = { 0, (1 + s->idx % 20) * 1000000L };
	while (!__atomic_load_n(&g_phase, __ATOMIC_ACQUIRE)) {
		local++;
		__atomic_store_n(&s->count, local, __ATOMIC_RELAXED);
		if (s->kind == K_SLEEP)
			nanosleep(&d, NULL);
	}
	uint64_t c = __atomic_load_n(&s->count, __ATOMIC_RELAXED);
	if (c != local)
		tfail("%s (%d): local count %llu, slot %llu", s->name, s->tid, (unsigned long long)local,
		      (unsigned long long)c);
	check_self(s, stk);
	return NULL;
}

static void *waiter_main(void *arg)
{
	struct slot *s = arg;
	unsigned char stk[STACK_ARR];
	setup_self(s, stk);
	__atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
	struct timespec abs;
	clock_gettime(CLOCK_MONOTONIC, &abs);
	abs.tv_sec += 3600;
	while (__atomic_load_n(s->word, __ATOMIC_ACQUIRE) == 0) {
		struct timespec rel = { 3600, 0 };
		long r;
		switch (s->variant) {
		case 0:
			r = futex(s->word, FUTEX_WAIT_PRIVATE, 0, NULL, 0);
			break;
		case 1:
			r = futex(s->word, FUTEX_WAIT, 0, NULL, 0);
			break;
		case 2:
			r = futex(s->word, FUTEX_WAIT_PRIVATE, 0, &rel, 0);
			break;
		default:
			r = futex(s->word, FUTEX_WAIT_BITSET_PRIVATE, 0, &abs, FUTEX_BITSET_MATCH_ANY);
			break;
		}
		if (r != 0 && errno == ETIMEDOUT)
			tfail("%s (%d): futex wait timed out", s->name, s->tid);
		if (r != 0 && errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT)
			tfail("%s (%d): futex wait: %s", s->name, s->tid, strerror(errno));
		if (__atomic_load_n(s->word, __ATOMIC_ACQUIRE) == 0)
			s->early++;
	}
	check_self(s, stk);
	__atomic_store_n(&s->woke, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* /proc/self/task/TID/syscall: is the thread blocked in futex on `word`? `what` gets the text. */
static int in_futex_on(pid_t tid, const uint32_t *word, char *what, size_t len)
{
	char path[64], buf[256] = { 0 };
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(what, len, "%s: %s", path, strerror(errno));
		return 0;
	}
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		n = 0;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	snprintf(what, len, "%s", buf);
	long nr;
	unsigned long a0;
	/* A wait with a timeout interrupted by ptrace (a dump, a debugger) goes on in restart_syscall,
	 * with the registers (arguments) of the futex call. */
	return sscanf(buf, "%ld %lx", &nr, &a0) == 2 && (nr == SYS_futex || nr == SYS_restart_syscall) &&
	       a0 == (unsigned long)word;
}

static int wait_in_futex(struct slot *s, double secs, char *what, size_t len)
{
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + (uint64_t)(secs * 1e9);
	while (!in_futex_on(s->tid, s->word, what, len)) {
		if (now_ns(CLOCK_MONOTONIC) > deadline)
			return 0;
		struct timespec d = { 0, 1000000 };
		nanosleep(&d, NULL);
	}
	return 1;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static void check_tasks(pid_t main_tid)
{
	static int have[MAXT + 64], want[MAXT + 1];
	int nh = 0, nw = 0;
	want[nw++] = main_tid;
	for (int i = 0; i < g_n; i++)
		want[nw++] = g_slot[i].tid;
	DIR *d = opendir("/proc/self/task");
	if (!d) {
		failf("opendir /proc/self/task: %s", strerror(errno));
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)) && nh < MAXT + 64)
		if (e->d_name[0] != '.')
			have[nh++] = atoi(e->d_name);
	closedir(d);
	qsort(have, nh, sizeof(int), cmp_int);
	qsort(want, nw, sizeof(int), cmp_int);
	int i = 0, j = 0;
	while (i < nh || j < nw) {
		if (j >= nw || (i < nh && have[i] < want[j]))
			failf("/proc/self/task has unexpected task %d", have[i++]);
		else if (i >= nh || want[j] < have[i])
			failf("recorded thread %d missing from /proc/self/task", want[j++]);
		else
			i++, j++;
	}
	for (int k = 0; k < g_n; k++) {
		char path[64], comm[64] = { 0 };
		snprintf(path, sizeof(path), "/proc/self/task/%d/comm", g_slot[k].tid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* reported above */
		ssize_t n = read(fd, comm, sizeof(comm) - 1);
		close(fd);
		comm[n > 0 ? n : 0] = 0;
		comm[strcspn(comm, "\n")] = 0;
		CHECK(strcmp(comm, g_slot[k].name) == 0, "%s: comm of task %d is '%s', expected '%s'", path,
		      g_slot[k].tid, comm, g_slot[k].name);
	}
}

int main(int argc, char **argv)
{
	init(argc, argv);
	int ncount = argc > 2 ? atoi(argv[2]) : 200;
	int nwait = argc > 3 ? atoi(argv[3]) : 4;
	SETUP(ncount >= 0 && nwait >= 0 && ncount + nwait <= MAXT, "thread counts");
	install_term();
	SETUP(prctl(PR_SET_NAME, "thr-main") == 0, "PR_SET_NAME main");
	pid_t main_tid = my_tid();
	SETUP(main_tid == getpid(), "main thread tid");
	sigset_t none;
	sigemptyset(&none);
	SETUP(sigprocmask(SIG_SETMASK, &none, NULL) == 0, "sigprocmask");
	unsigned char main_stk[STACK_ARR];
	fill_pat(main_stk, STACK_ARR, 4999);

	g_shared_words = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	SETUP(g_shared_words != MAP_FAILED, "mmap shared page");
	g_n = ncount + nwait;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	SETUP(pthread_attr_setstacksize(&attr, 128 * 1024) == 0, "pthread_attr_setstacksize");
	for (int i = 0; i < g_n; i++) {
		struct slot *s = &g_slot[i];
		s->idx = i;
		expected_mask(i + 1, &s->mask);
		if (i < ncount) {
			s->kind = i % 100 == 0 ? K_SPIN : K_SLEEP;
			snprintf(s->name, sizeof(s->name), "cnt%03d", i);
		} else {
			int j = i - ncount;
			s->kind = K_WAIT;
			s->variant = j % 4;
			s->word = s->variant == 1 ? &g_shared_words[j] : &g_private_words[j];
			snprintf(s->name, sizeof(s->name), "fw%03d-%d", j, s->variant);
		}
		errno = pthread_create(&s->th, &attr, s->kind == K_WAIT ? waiter_main : counter_main, s);
		SETUP(errno == 0, "pthread_create");
	}
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + 20ull * 1000000000ull;
	for (int i = 0; i < g_n; i++) {
		char what[256];
		while (!__atomic_load_n(&g_slot[i].ready, __ATOMIC_ACQUIRE)) {
			SETUP(now_ns(CLOCK_MONOTONIC) < deadline, "a thread did not start");
			struct timespec d = { 0, 1000000 };
			nanosleep(&d, NULL);
		}
		if (g_slot[i].kind == K_WAIT)
			SETUP(wait_in_futex(&g_slot[i], 10, what, sizeof(what)), "a waiter is not in futex");
	}
	out_line("thread %d thr-main", main_tid);
	for (int i = 0; i < g_n; i++)
		out_line("thread %d %s", g_slot[i].tid, g_slot[i].name);
	for (int i = 0; i < g_n; i++)
		g_slot[i].before = __atomic_load_n(&g_slot[i].count, __ATOMIC_RELAXED);
	ready();
	wait_term();

	check_tasks(main_tid);

	/* Futex waiters: still waiting on their word; one FUTEX_WAKE wakes each. */
	for (int i = ncount; i < g_n; i++) {
		struct slot *s = &g_slot[i];
		char what[256];
		if (!wait_in_futex(s, 3, what, sizeof(what))) {
			failf("%s (%d): not blocked in futex on %p: /proc syscall says '%s'", s->name, s->tid,
			      (void *)s->word, what);
			__atomic_store_n(s->word, 1, __ATOMIC_RELEASE);
			futex(s->word, s->variant == 1 ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE, 1, NULL, 0);
			continue;
		}
		__atomic_store_n(s->word, 1, __ATOMIC_RELEASE);
		long r = futex(s->word, s->variant == 1 ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE, 1, NULL, 0);
		CHECK(r == 1, "%s (%d): FUTEX_WAKE woke %ld waiters, expected 1 (%s)", s->name, s->tid, r,
		      r < 0 ? strerror(errno) : "");
		uint64_t dl = now_ns(CLOCK_MONOTONIC) + 5ull * 1000000000ull;
		while (!__atomic_load_n(&s->woke, __ATOMIC_ACQUIRE) && now_ns(CLOCK_MONOTONIC) < dl) {
			struct timespec d = { 0, 1000000 };
			nanosleep(&d, NULL);
		}
		CHECK(__atomic_load_n(&s->woke, __ATOMIC_ACQUIRE), "%s (%d): did not report within 5 s of FUTEX_WAKE",
		      s->name, s->tid);
		if (s->early)
			out_line("# %s: futex returned %d times before the wake", s->name, s->early);
	}

	/* Counters: not behind their pre-READY values, and still increasing. */
	static uint64_t snap[MAXT];
	for (int i = 0; i < ncount; i++) {
		snap[i] = __atomic_load_n(&g_slot[i].count, __ATOMIC_RELAXED);
		CHECK(snap[i] >= g_slot[i].before, "%s: count %llu below its value before the dump (%llu)",
		      g_slot[i].name, (unsigned long long)snap[i], (unsigned long long)g_slot[i].before);
	}
	deadline = now_ns(CLOCK_MONOTONIC) + 5ull * 1000000000ull;
	for (int i = 0; i < ncount; i++) {
		while (__atomic_load_n(&g_slot[i].count, __ATOMIC_RELAXED) == snap[i] &&
		       now_ns(CLOCK_MONOTONIC) < deadline) {
			struct timespec d = { 0, 1000000 };
			nanosleep(&d, NULL);
		}
		CHECK(__atomic_load_n(&g_slot[i].count, __ATOMIC_RELAXED) != snap[i],
		      "%s (%d): counter stuck at %llu", g_slot[i].name, g_slot[i].tid, (unsigned long long)snap[i]);
	}

	__atomic_store_n(&g_phase, 1, __ATOMIC_RELEASE);
	deadline = now_ns(CLOCK_MONOTONIC) + 20ull * 1000000000ull;
	for (int i = 0; i < g_n; i++) {
		/* pthread_timedjoin_np takes a CLOCK_REALTIME deadline. */
		uint64_t left = deadline > now_ns(CLOCK_MONOTONIC) ? deadline - now_ns(CLOCK_MONOTONIC) : 0;
		uint64_t rt = now_ns(CLOCK_REALTIME) + left;
		struct timespec abs = { (time_t)(rt / 1000000000ull), (long)(rt % 1000000000ull) };
		int e = pthread_timedjoin_np(g_slot[i].th, NULL, &abs);
		CHECK(e == 0, "%s (%d): join: %s", g_slot[i].name, g_slot[i].tid, strerror(e));
	}

	/* The main thread itself. */
	char name[17] = { 0 };
	prctl(PR_GET_NAME, name);
	CHECK(strcmp(name, "thr-main") == 0, "main thread name '%s'", name);
	CHECK(my_tid() == main_tid && getpid() == main_tid, "main thread tid %d pid %d, expected %d", my_tid(),
	      getpid(), main_tid);
	check_pat_report(main_stk, STACK_ARR, 4999, "main stack array");
	g_fails += g_tfails;
	return finish();
}
