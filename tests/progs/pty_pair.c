/* A pty pair the program holds itself (as tmux or sshd do): the parent keeps the master, in packet
 * mode; a child leads a session of its own with the slave as its controlling terminal, with its own
 * termios (no echo, a changed VINTR) and window size. Data waits in both directions at the dump:
 * the child wrote "from-slave\n" that the parent has not read, the parent wrote "line1\npart" that
 * the child has not read ("part": half a line, in canonical mode).
 *
 * On SIGTERM the parent checks the master (pts index, packet mode, unlocked, window size) and reads
 * exactly the queued output, then sends SIGTERM on to the child, which checks its terminal (name,
 * termios, window size, controlling terminal, foreground group, session), reads exactly "line1\n"
 * (and not the half line), answers "ack\n"; the parent answers "-end\n", which completes the child's
 * half line to "part-end\n". `pty_pair OUTFILE`. */
#include "common.h"
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>

#define ROWS 37
#define COLS 101
#define MY_VINTR 0x05

static int g_index;
static char g_name[64];

/* Reads from `fd` until `want` bytes came or 5 s passed; packet mode strips the status byte of each
 * read and skips status-only reads. Returns the bytes read (NUL-terminated in buf). */
static int read_exact(int fd, char *buf, int want, int packet)
{
	int got = 0;
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (got < want) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, 100);
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > 5)
			break;
		if (r <= 0)
			continue;
		char tmp[256];
		ssize_t n = read(fd, tmp, packet ? (size_t)(want - got + 1) : (size_t)(want - got));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			break;
		int off = 0;
		if (packet) {
			if (tmp[0] != 0)
				continue; /* a status byte alone */
			off = 1;
		}
		memcpy(buf + got, tmp + off, n - off);
		got += n - off;
	}
	buf[got] = 0;
	return got;
}

/* Nothing more arrives on `fd` within 300 ms. */
static int quiet(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 300) == 0;
}

static void child(int master)
{
	close(master);
	SETUP(setsid() > 0, "setsid");
	int s = open(g_name, O_RDWR); /* a session leader without a terminal: it becomes the controlling one */
	SETUP(s >= 0, "open slave");
	struct termios t;
	SETUP(tcgetattr(s, &t) == 0, "tcgetattr");
	t.c_lflag &= ~(ECHO | ECHOE | ECHOK);
	t.c_lflag |= ICANON;
	t.c_cc[VINTR] = MY_VINTR;
	SETUP(tcsetattr(s, TCSANOW, &t) == 0, "tcsetattr");
	struct winsize ws = { .ws_row = ROWS, .ws_col = COLS };
	SETUP(ioctl(s, TIOCSWINSZ, &ws) == 0, "TIOCSWINSZ");
	SETUP(write(s, "from-slave\n", 11) == 11, "write to slave");
	child_set_up();
	wait_term();

	struct termios a;
	CHECK(tcgetattr(s, &a) == 0, "child: tcgetattr after restore: %s", strerror(errno));
	CHECK(a.c_lflag == t.c_lflag && a.c_iflag == t.c_iflag && a.c_oflag == t.c_oflag && a.c_cflag == t.c_cflag,
	      "child: termios flags: lflag %o iflag %o oflag %o cflag %o, expected %o %o %o %o", a.c_lflag, a.c_iflag,
	      a.c_oflag, a.c_cflag, t.c_lflag, t.c_iflag, t.c_oflag, t.c_cflag);
	CHECK(a.c_cc[VINTR] == MY_VINTR, "child: VINTR %#x, expected %#x", a.c_cc[VINTR], MY_VINTR);
	struct winsize w2;
	CHECK(ioctl(s, TIOCGWINSZ, &w2) == 0 && w2.ws_row == ROWS && w2.ws_col == COLS, "child: window %dx%d, expected %dx%d",
	      w2.ws_row, w2.ws_col, ROWS, COLS);
	char *n = ttyname(s);
	CHECK(n && strcmp(n, g_name) == 0, "child: the slave is %s, expected %s", n ? n : "?", g_name);
	CHECK(getsid(0) == getpid(), "child: session %d, expected its own %d", getsid(0), getpid());
	int tty = open("/dev/tty", O_RDWR | O_NOCTTY);
	CHECK(tty >= 0, "child: no controlling terminal after restore (/dev/tty: %s)", strerror(errno));
	if (tty >= 0)
		close(tty);
	CHECK(tcgetpgrp(s) == getpgrp(), "child: foreground group %d, expected %d", tcgetpgrp(s), getpgrp());
	CHECK(tcgetsid(s) == getpid(), "child: the slave's session %d, expected %d", tcgetsid(s), getpid());

	int fl = fcntl(s, F_GETFL);
	fcntl(s, F_SETFL, fl | O_NONBLOCK);
	char buf[256];
	ssize_t r = read(s, buf, sizeof(buf) - 1);
	buf[r > 0 ? r : 0] = 0;
	CHECK(r == 6 && strcmp(buf, "line1\n") == 0, "child: queued input: read %zd '%s', expected 'line1\\n'", r, buf);
	r = read(s, buf, sizeof(buf) - 1);
	CHECK(r < 0 && errno == EAGAIN, "child: the half line 'part' was readable before its end (read %zd)", r);
	fcntl(s, F_SETFL, fl);
	CHECK(write(s, "ack\n", 4) == 4, "child: write: %s", strerror(errno));
	int got = read_exact(s, buf, 9, 0);
	CHECK(got == 9 && strcmp(buf, "part-end\n") == 0, "child: read '%s', expected 'part-end\\n'", buf);
	_exit(g_fails ? 1 : 0);
}

int main(int argc, char **argv)
{
	init(argc, argv);
	install_term();
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	SETUP(m >= 0, "posix_openpt");
	SETUP(grantpt(m) == 0 && unlockpt(m) == 0, "grantpt/unlockpt");
	SETUP(ioctl(m, TIOCGPTN, &g_index) == 0, "TIOCGPTN");
	snprintf(g_name, sizeof(g_name), "/dev/pts/%d", g_index);
	int on = 1;
	SETUP(ioctl(m, TIOCPKT, &on) == 0, "TIOCPKT");
	pid_t c = fork_synced();
	if (c == 0)
		child(m);
	wait_child_set_up();
	SETUP(write(m, "line1\npart", 10) == 10, "write to master");
	usleep(100 * 1000); /* let the line discipline take both in */
	out_line("# pty %s, child %d", g_name, c);
	ready();
	wait_term();

	int idx = -1, pkt = -1, lck = -1;
	CHECK(ioctl(m, TIOCGPTN, &idx) == 0 && idx == g_index, "master: pts index %d, expected %d", idx, g_index);
	CHECK(ioctl(m, TIOCGPKT, &pkt) == 0 && pkt == 1, "master: packet mode %d, expected 1", pkt);
	CHECK(ioctl(m, TIOCGPTLCK, &lck) == 0 && lck == 0, "master: locked %d, expected 0", lck);
	struct winsize ws;
	CHECK(ioctl(m, TIOCGWINSZ, &ws) == 0 && ws.ws_row == ROWS && ws.ws_col == COLS, "master: window %dx%d", ws.ws_row,
	      ws.ws_col);
	char buf[256];
	int got = read_exact(m, buf, 12, 1);
	CHECK(got == 12 && strcmp(buf, "from-slave\r\n") == 0, "master: queued output '%s' (%d bytes), expected 'from-slave\\r\\n'",
	      buf, got);
	CHECK(quiet(m), "master: more than the queued output arrived (an echo?)");
	kill(c, SIGTERM);
	got = read_exact(m, buf, 5, 1);
	CHECK(got == 5 && strcmp(buf, "ack\r\n") == 0, "master: the child's answer '%s', expected 'ack\\r\\n'", buf);
	CHECK(write(m, "-end\n", 5) == 5, "master: write: %s", strerror(errno));
	int st = 0;
	alarm(20);
	CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d: status %#x", c, st);
	return finish();
}
