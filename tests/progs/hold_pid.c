/* `hold_pid OUTFILE PID`: makes PID busy for the pid-in-use tests. Creates a child at exactly
 * PID (clone3 with set_tid: root only), named "pid_holder" (PR_SET_NAME), which writes
 * "HELD PID" to OUTFILE and sleeps until killed; this process waits for it and exits with it.
 * On failure (PID taken, no privilege) it writes "FAIL: ..." and exits 2. Not a checkpoint
 * subject: no READY/PASS protocol. */
#include "common.h"
#include <linux/sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

int main(int argc, char **argv)
{
	init(argc, argv);
	SETUP(argc == 3, "usage: hold_pid OUTFILE PID");
	pid_t want = atoi(argv[2]);
	SETUP(want > 1, "PID");
	pid_t set_tid[1] = { want };
	struct clone_args args;
	memset(&args, 0, sizeof(args));
	args.exit_signal = SIGCHLD;
	args.set_tid = (uint64_t)(uintptr_t)set_tid;
	args.set_tid_size = 1;
	long r = syscall(SYS_clone3, &args, sizeof(args));
	if (r < 0) {
		out_line("FAIL: clone3 with set_tid %d: %s", want, strerror(errno));
		return 2;
	}
	if (r == 0) {
		prctl(PR_SET_NAME, "pid_holder");
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		out_line("HELD %ld", syscall(SYS_getpid));
		for (;;)
			pause();
	}
	int st;
	while (waitpid((pid_t)r, &st, 0) < 0 && errno == EINTR)
		;
	return 0;
}
