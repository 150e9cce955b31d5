/* Stopped children: two children stopped with SIGSTOP before the dump (the parent collected the
 * stop with waitpid(WUNTRACED)): the first was in sigsuspend, the second in a nanosleep loop
 * counting. Lines "stopped PID" (the test checks /proc says 'T').
 *
 * On SIGTERM the parent checks /proc/PID/stat says 'T' for both, sends SIGCONT; each child's
 * SIGCONT handler sets a flag, the child checks its pid, ppid, memory pattern (and the counter:
 * it goes on counting), writes "ok child N" and exits 0; the parent requires that within 10 s. */
#include "common.h"
#include <sys/mman.h>
#include <sys/wait.h>

#define AREA (32 * 1024)

static volatile sig_atomic_t g_cont;

static void on_cont(int sig)
{
	(void)sig;
	g_cont = 1;
}

static int proc_state(pid_t pid, char *state)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %c", state) != 1)
		return -1;
	return 0;
}

static void child(int k, pid_t parent)
{
	pid_t me = getpid();
	unsigned char *area = mmap(NULL, AREA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	SETUP(area != MAP_FAILED, "mmap");
	fill_pat(area, AREA, 300 + k);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_cont;
	SETUP(sigaction(SIGCONT, &sa, NULL) == 0, "sigaction(SIGCONT)");
	/* SIGCONT only in sigsuspend / between loop iterations. */
	sigset_t block, wait_mask;
	sigemptyset(&block);
	sigaddset(&block, SIGCONT);
	sigaddset(&block, SIGTERM);
	SETUP(sigprocmask(SIG_BLOCK, &block, &wait_mask) == 0, "sigprocmask");
	sigdelset(&wait_mask, SIGCONT);
	SETUP(kill(parent, SIGUSR1) == 0, "kill(parent, SIGUSR1)");
	volatile uint64_t count = 0;
	if (k == 0) {
		while (!g_cont)
			sigsuspend(&wait_mask);
	} else {
		while (!g_cont) {
			count++;
			struct timespec d = { 0, 1000000 };
			nanosleep(&d, NULL);
			sigprocmask(SIG_UNBLOCK, &block, NULL);
			sigprocmask(SIG_BLOCK, &block, NULL);
		}
	}
	pid_t v;
	CHECK((v = getpid()) == me, "child %d: getpid %d, expected %d", k, v, me);
	CHECK((v = getppid()) == parent, "child %d: getppid %d, expected %d", k, v, parent);
	char what[32];
	snprintf(what, sizeof(what), "child %d area", k);
	check_pat_report(area, AREA, 300 + k, what);
	if (k == 1) {
		uint64_t c0 = count;
		for (int i = 0; i < 5; i++) {
			count++;
			struct timespec d = { 0, 1000000 };
			nanosleep(&d, NULL);
		}
		CHECK(c0 > 0 && count == c0 + 5, "child 1: counter %llu after 5 more from %llu", (unsigned long long)count,
		      (unsigned long long)c0);
	}
	if (g_fails == 0)
		out_line("ok child %d", k);
	_exit(g_fails ? 1 : 0);
}

int main(int argc, char **argv)
{
	init(argc, argv);
	install_term();
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	SETUP(sigprocmask(SIG_BLOCK, &s, NULL) == 0, "sigprocmask");
	pid_t me = getpid();
	pid_t kids[2];
	for (int k = 0; k < 2; k++) {
		kids[k] = fork();
		SETUP(kids[k] >= 0, "fork");
		if (kids[k] == 0)
			child(k, me);
		struct timespec to = { 10, 0 };
		siginfo_t si;
		SETUP(sigtimedwait(&s, &si, &to) == SIGUSR1 && si.si_pid == kids[k], "child ready (SIGUSR1)");
	}
	/* Let the counting child count a little, then stop both. */
	struct timespec d = { 0, 20 * 1000000 };
	nanosleep(&d, NULL);
	for (int k = 0; k < 2; k++) {
		SETUP(kill(kids[k], SIGSTOP) == 0, "kill(SIGSTOP)");
		int st = 0;
		pid_t r;
		uint64_t deadline = now_ns(CLOCK_MONOTONIC) + 10ull * 1000000000ull;
		while ((r = waitpid(kids[k], &st, WUNTRACED | WNOHANG)) == 0 && now_ns(CLOCK_MONOTONIC) < deadline)
			nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
		SETUP(r == kids[k] && WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP, "waitpid(WUNTRACED): child stopped");
		out_line("stopped %d", kids[k]);
	}
	ready();
	wait_term();

	for (int k = 0; k < 2; k++) {
		char st = '?';
		if (proc_state(kids[k], &st) != 0)
			failf("child %d (%d): /proc/PID/stat unreadable", k, kids[k]);
		else
			CHECK(st == 'T', "child %d (%d): state '%c' before SIGCONT, expected 'T'", k, kids[k], st);
		CHECK(kill(kids[k], SIGCONT) == 0, "kill(%d, SIGCONT): %s", kids[k], strerror(errno));
	}
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + 10ull * 1000000000ull;
	for (int k = 0; k < 2; k++) {
		int st = 0;
		pid_t r;
		while ((r = waitpid(kids[k], &st, WNOHANG)) == 0 && now_ns(CLOCK_MONOTONIC) < deadline)
			nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
		if (r == 0) {
			failf("child %d (%d) did not finish within 10 s of SIGCONT", k, kids[k]);
			kill(kids[k], SIGKILL);
			waitpid(kids[k], &st, 0);
		} else if (r < 0) {
			failf("waitpid(child %d, %d): %s", k, kids[k], strerror(errno));
		} else {
			CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d (%d) ended with status 0x%x", k, kids[k], st);
		}
	}
	return finish();
}
