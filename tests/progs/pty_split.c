/* A pty pair split between a parent and its child, for dumps that must be refused: the child is
 * dumped alone, so one end of the pair is outside the dumped tree.
 *   `pty_split OUTFILE master`: the child holds the master, the parent the slave.
 *   `pty_split OUTFILE slave`:  the child holds the slave (as its controlling terminal, in a session
 *                                of its own), the parent the master.
 * The parent writes "child PID" to OUTFILE, then READY. On SIGTERM the parent checks that the pair
 * still works both ways through the child (which answers "ping" with "pong ping"), stops the
 * child and writes PASS. */
#include "common.h"
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

static int read_line(int fd, char *buf, int len)
{
	int got = 0;
	while (got < len - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 5000) <= 0)
			break;
		ssize_t n = read(fd, buf + got, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (buf[got++] == '\n')
			break;
	}
	buf[got] = 0;
	return got;
}

int main(int argc, char **argv)
{
	init(argc, argv);
	SETUP(argc == 3, "usage: pty_split OUTFILE master|slave");
	int child_master = strcmp(argv[2], "master") == 0;
	install_term();
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	SETUP(m >= 0, "posix_openpt");
	SETUP(grantpt(m) == 0 && unlockpt(m) == 0, "grantpt/unlockpt");
	char *name = ptsname(m);
	SETUP(name != NULL, "ptsname");
	int s = open(name, O_RDWR | O_NOCTTY);
	SETUP(s >= 0, "open slave");
	pid_t c = fork_synced();
	if (c == 0) {
		/* The child answers every line "ping" it reads on its end with "pong ping". */
		int mine = child_master ? m : s;
		close(child_master ? s : m);
		if (!child_master) {
			setsid();
			ioctl(s, TIOCSCTTY, 0);
		}
		/* Only one end from here on: tell the parent. */
		child_set_up();
		char buf[256];
		for (;;) {
			int n = read_line(mine, buf, sizeof(buf));
			if (n > 0 && strncmp(buf, "ping", 4) == 0 && (write(mine, "pong ", 5) != 5 || write(mine, buf, n) != n))
				_exit(1);
			if (n == 0 && g_term)
				_exit(0);
		}
	}
	int mine = child_master ? s : m;
	close(child_master ? m : s);
	wait_child_set_up();
	out_line("child %d", c);
	ready();
	wait_term();
	const char *msg = "ping\n";
	CHECK(write(mine, msg, 5) == 5, "write: %s", strerror(errno));
	char buf[256];
	/* The slave echoes "ping" (canonical mode, echo on) before the child's answer comes. */
	int ok = 0;
	for (int i = 0; i < 3 && !ok; i++) {
		int n = read_line(mine, buf, sizeof(buf));
		if (n == 0)
			break;
		ok = strstr(buf, "pong ping") != NULL;
	}
	CHECK(ok, "the pair does not work after the refused dump (read '%s')", buf);
	kill(c, SIGKILL);
	waitpid(c, NULL, 0);
	return finish();
}
