/* Zombies: two children that ended before the dump and were not reaped, one by exit(42), one
 * killed by SIGUSR2. The parent waits for both with waitid(WNOWAIT), which leaves them zombies,
 * and writes "zombie PID" lines (the test checks /proc says 'Z').
 *
 * On SIGTERM: /proc/PID/stat of each says 'Z' with the parent as ppid; waitpid(PID) returns it
 * (within 5 s, WNOHANG polls) with the same status; afterwards its pid is gone from /proc and the
 * parent has no other children. */
#include "common.h"
#include <sys/wait.h>

static int proc_state(pid_t pid, char *state, pid_t *ppid)
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
	if (!p || sscanf(p + 1, " %c %d", state, ppid) != 2)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	init(argc, argv);
	install_term();
	pid_t kids[2];
	for (int k = 0; k < 2; k++) {
		kids[k] = fork();
		SETUP(kids[k] >= 0, "fork");
		if (kids[k] == 0) {
			if (k == 0)
				_exit(42);
			signal(SIGUSR2, SIG_DFL);
			sigset_t s;
			sigemptyset(&s);
			sigprocmask(SIG_SETMASK, &s, NULL);
			raise(SIGUSR2);
			_exit(1);
		}
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		SETUP(waitid(P_PID, kids[k], &si, WEXITED | WNOWAIT) == 0, "waitid(WNOWAIT)");
		if (k == 0)
			SETUP(si.si_code == CLD_EXITED && si.si_status == 42, "first child did not exit(42)");
		else
			SETUP(si.si_code == CLD_KILLED && si.si_status == SIGUSR2, "second child not killed by SIGUSR2");
		out_line("zombie %d", kids[k]);
	}
	ready();
	wait_term();

	pid_t me = getpid();
	for (int k = 0; k < 2; k++) {
		char st = '?';
		pid_t ppid = -1;
		if (proc_state(kids[k], &st, &ppid) != 0)
			failf("zombie %d: /proc/%d/stat unreadable: %s", kids[k], kids[k], strerror(errno));
		else
			CHECK(st == 'Z' && ppid == me, "zombie %d: /proc says state %c ppid %d, expected Z and %d",
			      kids[k], st, ppid, me);
		int status = 0;
		pid_t r;
		uint64_t deadline = now_ns(CLOCK_MONOTONIC) + 5ull * 1000000000ull;
		while ((r = waitpid(kids[k], &status, WNOHANG)) == 0 && now_ns(CLOCK_MONOTONIC) < deadline) {
			struct timespec d = { 0, 1000000 };
			nanosleep(&d, NULL);
		}
		if (r != kids[k]) {
			failf("zombie %d: waitpid returned %d (%s)", kids[k], r, r < 0 ? strerror(errno) : "still running after 5 s");
			if (r == 0) {
				kill(kids[k], SIGKILL);
				waitpid(kids[k], &status, 0);
			}
			continue;
		}
		if (k == 0)
			CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 42,
			      "zombie %d: status 0x%x, expected exit code 42", kids[k], status);
		else
			CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGUSR2,
			      "zombie %d: status 0x%x, expected killed by SIGUSR2", kids[k], status);
		CHECK(proc_state(kids[k], &st, &ppid) != 0, "zombie %d: still in /proc after waitpid (state %c)", kids[k], st);
	}
	int status;
	pid_t extra = waitpid(-1, &status, WNOHANG);
	CHECK(extra < 0 && errno == ECHILD, "unexpected child: waitpid(-1) returned %d", extra);
	return finish();
}
