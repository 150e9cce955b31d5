/* A shell job: stdin/stdout/stderr are the controlling terminal (a pty set up by the harness).
 * After restore (rcr --shell-job from another pty) the program is still attached to a terminal
 * and what it writes to stdout arrives on the harness's new pty. `shell_job OUTFILE`. */
#include "common.h"
#include <sys/ioctl.h>
#include <termios.h>

static void check_tty(const char *when)
{
	for (int fd = 0; fd < 3; fd++)
		CHECK(isatty(fd), "%s: fd %d is not a tty", when, fd);
	pid_t sid = getsid(0);
	CHECK(sid > 0, "%s: getsid failed", when);
	pid_t fg = tcgetpgrp(1);
	CHECK(fg == getpgrp(), "%s: foreground process group of the tty: expected %d (ours) got %d (%s)", when,
	      getpgrp(), fg, fg < 0 ? strerror(errno) : "");
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY);
	CHECK(fd >= 0, "%s: no controlling terminal (/dev/tty: %s)", when, strerror(errno));
	if (fd >= 0)
		close(fd);
}

int main(int argc, char **argv)
{
	init(argc, argv);
	check_tty("before dump");
	char *name = ttyname(1);
	out_line("# tty before: %s", name ? name : "?");
	dprintf(1, "hello before dump\n");
	if (g_fails)
		return finish();
	install_term();
	ready();
	wait_term();
	check_tty("after restore");
	name = ttyname(1);
	out_line("# tty after: %s", name ? name : "?");
	CHECK(dprintf(1, "hello after restore %d\n", getpid()) > 0, "write to stdout: %s", strerror(errno));
	CHECK(tcdrain(1) == 0, "tcdrain: %s", strerror(errno));
	return finish();
}
