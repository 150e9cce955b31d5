/* Handlers installed with SA_ONSTACK, as Python and many runtimes install theirs, in a process whose
 * threads mostly have no alternate signal stack of their own. After restore every thread (and a forked
 * child) must see the alternate stack the image recorded — its own, or none (SS_DISABLE) — and a
 * signal to a thread without one must run its handler on the thread's normal stack, not kill the
 * process (a restored task that kept rcr's stale altstack dies with SIGSEGV at its first signal).
 *
 * Threads: 0 and 2 have an altstack of their own (mmap'd, distinct sizes), 1 and 3 have none.
 * Args: none. */
#include "common.h"
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define NTHREADS 4

struct th {
	pthread_t t;
	pid_t tid;
	stack_t own; /* ss_sp == NULL: none */
	volatile int hits, on_alt, bad_stack;
	volatile int quit;
};

static struct th g_th[NTHREADS];
static stack_t g_main_own;
static volatile int g_main_hits, g_main_on_alt;

static struct th *self_th(void)
{
	pid_t tid = (pid_t)syscall(SYS_gettid);
	for (int i = 0; i < NTHREADS; i++)
		if (g_th[i].tid == tid)
			return &g_th[i];
	return NULL;
}

static int in_stack(const stack_t *s, uintptr_t a)
{
	return s->ss_sp && a >= (uintptr_t)s->ss_sp && a < (uintptr_t)s->ss_sp + s->ss_size;
}

static void on_usr1(int sig)
{
	(void)sig;
	int local;
	struct th *t = self_th();
	if (!t) {
		g_main_hits++;
		g_main_on_alt = in_stack(&g_main_own, (uintptr_t)&local);
		return;
	}
	t->hits++;
	t->on_alt = in_stack(&t->own, (uintptr_t)&local);
}

static stack_t make_alt(size_t size)
{
	stack_t s = { 0 };
	s.ss_sp = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	SETUP(s.ss_sp != MAP_FAILED, "mmap altstack");
	s.ss_size = size;
	SETUP(sigaltstack(&s, NULL) == 0, "sigaltstack");
	return s;
}

static void check_alt(const char *who, const stack_t *want)
{
	stack_t cur;
	if (sigaltstack(NULL, &cur) != 0) {
		failf("%s: sigaltstack query: %s", who, strerror(errno));
		return;
	}
	if (!want->ss_sp) {
		CHECK(cur.ss_flags & SS_DISABLE, "%s: altstack should be disabled, is sp=%p size=%zu flags=%d", who, cur.ss_sp,
		      cur.ss_size, cur.ss_flags);
	} else {
		CHECK(!(cur.ss_flags & SS_DISABLE) && cur.ss_sp == want->ss_sp && cur.ss_size == want->ss_size,
		      "%s: altstack sp=%p size=%zu flags=%d, want sp=%p size=%zu", who, cur.ss_sp, cur.ss_size, cur.ss_flags,
		      want->ss_sp, want->ss_size);
	}
}

static void *thread_main(void *arg)
{
	struct th *t = arg;
	t->tid = (pid_t)syscall(SYS_gettid);
	int i = (int)(t - g_th);
	if (i % 2 == 0)
		t->own = make_alt(16384 + 4096 * i);
	while (!t->quit) {
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	char who[32];
	snprintf(who, sizeof(who), "thread %d", i);
	check_alt(who, &t->own);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	g_out = argv[1];
	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	SETUP(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction");
	/* The main thread has no altstack of its own; its SIGTERM handler is SA_ONSTACK too. */
	for (int i = 0; i < NTHREADS; i++)
		SETUP(pthread_create(&g_th[i].t, NULL, thread_main, &g_th[i]) == 0, "pthread_create");
	for (int i = 0; i < NTHREADS; i++)
		while (!g_th[i].tid || (i % 2 == 0 && !g_th[i].own.ss_sp))
			usleep(1000);
	/* A child process: no altstack; after restore its parent signals it and reads its verdict. */
	int pfd[2];
	SETUP(pipe(pfd) == 0, "pipe");
	pid_t child = fork();
	SETUP(child >= 0, "fork");
	if (child == 0) {
		close(pfd[0]);
		sigset_t usr2;
		sigemptyset(&usr2);
		sigaddset(&usr2, SIGUSR2);
		sigprocmask(SIG_BLOCK, &usr2, NULL);
		int sig;
		sigwait(&usr2, &sig); /* the parent says "after restore" */
		stack_t cur;
		sigaltstack(NULL, &cur);
		char v = (cur.ss_flags & SS_DISABLE) ? 'D' : 'E';
		raise(SIGUSR1); /* dies here with a stale altstack */
		if (g_main_hits != 1)
			v = 'H';
		ssize_t w = write(pfd[1], &v, 1);
		(void)w;
		_exit(0);
	}
	close(pfd[1]);

	struct sigaction term = { 0 };
	term.sa_handler = on_term;
	term.sa_flags = SA_ONSTACK;
	sigemptyset(&term.sa_mask);
	SETUP(sigaction(SIGTERM, &term, NULL) == 0, "sigaction SIGTERM");
	ready();
	while (!g_term)
		pause();

	/* After restore. */
	check_alt("main thread", &g_main_own);
	pid_t pid = getpid();
	for (int i = 0; i < NTHREADS; i++) {
		SETUP(syscall(SYS_tgkill, pid, g_th[i].tid, SIGUSR1) == 0, "tgkill");
		for (int n = 0; n < 2000 && !g_th[i].hits; n++)
			usleep(1000);
		CHECK(g_th[i].hits == 1, "thread %d: its SA_ONSTACK handler ran %d times, want 1", i, g_th[i].hits);
		CHECK(g_th[i].on_alt == (i % 2 == 0), "thread %d: handler %s the thread's own altstack", i,
		      g_th[i].on_alt ? "ran on" : "did not run on");
	}
	raise(SIGUSR1);
	CHECK(g_main_hits == 1, "main thread: handler ran %d times, want 1", g_main_hits);
	for (int i = 0; i < NTHREADS; i++) {
		g_th[i].quit = 1;
		pthread_join(g_th[i].t, NULL);
	}
	kill(child, SIGUSR2);
	char v = 0;
	ssize_t r;
	do
		r = read(pfd[0], &v, 1);
	while (r < 0 && errno == EINTR);
	int st = 0;
	waitpid(child, &st, 0);
	CHECK(r == 1 && v == 'D', "child: verdict '%c' (D = altstack disabled and handler ran), status %#x", r == 1 ? v : '-', st);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: ended with status %#x (signal %d)", st,
	      WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	return finish();
}
