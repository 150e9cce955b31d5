/* Unix sockets. Default mode: a stream socketpair with data queued both ways (and SO_PEEK_OFF,
 * SO_PASSCRED, SO_RCVBUF, O_NONBLOCK); datagram and seqpacket socketpairs whose message boundaries
 * survive; a listener bound to a path with one accepted connection and two waiting to be accepted, each
 * client having sent data; a datagram socket bound to an abstract name that a connected socket wrote
 * to; a datagram socket bound to a path with messages from two senders that are gone; a stream pair
 * shut down for writing on one side; a socketpair shared by a parent and its child.
 *
 * `unix OUTFILE scm`: an fd in flight, which rcr refuses (see scm_mode).
 * `unix OUTFILE keep`: a seqpacket pair with data (SO_PEEK_OFF set) and a connection waiting to be
 * accepted, for dumps that must leave them in place (-R, failed dumps).
 * `unix OUTFILE ext-stream PATH`: the same and a stream socket connected to the listener at PATH
 * (outside the tree).
 * `unix OUTFILE ext-dgram PATH`: the same and a datagram socket connected to the bound socket at PATH
 * (outside the tree); sends "before" ahead of the checkpoint and "after" once restored.
 * `unix OUTFILE dgram-order`: datagram socket E connected to P, then P connected to Q (E was made
 * after P). E's connection must be made again before P's: once P has a peer, connecting to it is
 * refused (EPERM).
 */
#include "common.h"
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

static socklen_t mkaddr(struct sockaddr_un *a, const char *name, int abstract)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	size_t n = strlen(name);
	if (abstract) {
		memcpy(a->sun_path + 1, name, n);
		return offsetof(struct sockaddr_un, sun_path) + 1 + n;
	}
	memcpy(a->sun_path, name, n);
	return offsetof(struct sockaddr_un, sun_path) + n + 1;
}

static int getint(int fd, int opt)
{
	int v = -12345;
	socklen_t l = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, opt, &v, &l) < 0)
		return -12345;
	return v;
}

/* recv one message; returns its size or -1; checks its bytes against want. */
static void expect_msg(int fd, const char *what, const char *want, size_t wlen)
{
	char buf[4096];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	CHECK(n == (ssize_t)wlen && memcmp(buf, want, wlen) == 0, "%s: got a %zd-byte message '%.*s' (errno %d), expected %zu bytes '%.*s'",
	      what, n, n > 0 ? (int)n : 0, buf, n < 0 ? errno : 0, wlen, (int)wlen, want);
}

static void expect_empty(int fd, const char *what)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
	CHECK(n < 0 && errno == EAGAIN, "%s: expected an empty queue (EAGAIN), got %zd (errno %d)", what, n, n < 0 ? errno : 0);
}

/* Reads a stream socket until `want` bytes arrived or the queue is empty. */
static void expect_stream(int fd, const char *what, const char *want)
{
	char buf[256] = { 0 };
	size_t got = 0, wl = strlen(want);
	while (got < wl) {
		ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, MSG_DONTWAIT);
		if (n <= 0)
			break;
		got += n;
	}
	CHECK(got == wl && memcmp(buf, want, wl) == 0, "%s: read '%s', expected '%s'", what, buf, want);
}

/* Modes that check that a dump leaves the sockets as they were (failed, or -R): data queued on a
 * pair (peeked with SO_PEEK_OFF 2 set by the task), a connection waiting to be accepted (no data). */
static int ext_mode(const char *mode, const char *path)
{
	int dgram = strcmp(mode, "ext-dgram") == 0;
	int s = -1;
	if (path) {
		s = socket(AF_UNIX, dgram ? SOCK_DGRAM : SOCK_STREAM, 0);
		SETUP(s >= 0, "socket");
		struct sockaddr_un a;
		socklen_t al = mkaddr(&a, path, 0);
		SETUP(connect(s, (struct sockaddr *)&a, al) == 0, "connect to the outside peer");
		if (dgram)
			SETUP(send(s, "before", 6, 0) == 6, "send before");
	}
	int k[2], peek = 2;
	SETUP(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, k) == 0, "socketpair");
	SETUP(send(k[0], "kept-1", 6, 0) == 6 && send(k[0], "kept-22", 7, 0) == 7, "send kept");
	SETUP(setsockopt(k[1], SOL_SOCKET, SO_PEEK_OFF, &peek, sizeof(peek)) == 0, "SO_PEEK_OFF");
	char lname[64];
	snprintf(lname, sizeof(lname), "rcr-unix-keep-%d", getpid());
	struct sockaddr_un la;
	socklen_t lal = mkaddr(&la, lname, 1);
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0), c = socket(AF_UNIX, SOCK_STREAM, 0);
	SETUP(l >= 0 && bind(l, (struct sockaddr *)&la, lal) == 0 && listen(l, 4) == 0, "listener");
	SETUP(connect(c, (struct sockaddr *)&la, lal) == 0, "connect (waiting to be accepted)");
	ready();
	wait_term();
	if (dgram) {
		struct sockaddr_un p;
		socklen_t pl = sizeof(p);
		CHECK(getpeername(s, (struct sockaddr *)&p, &pl) == 0 && strcmp(p.sun_path, path) == 0, "ext-dgram: peer name '%s', expected '%s'",
		      p.sun_path, path);
		CHECK(send(s, "after", 5, 0) == 5, "ext-dgram: send after restore: errno %d", errno);
	}
	CHECK(getint(k[1], SO_PEEK_OFF) == 2, "k1 SO_PEEK_OFF: %d, expected 2", getint(k[1], SO_PEEK_OFF));
	int off = -1;
	setsockopt(k[1], SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off));
	expect_msg(k[1], "k1 message 1", "kept-1", 6);
	expect_msg(k[1], "k1 message 2", "kept-22", 7);
	expect_empty(k[1], "k1");
	int a = accept(l, NULL, NULL);
	CHECK(a >= 0, "the waiting connection is gone: errno %d", errno);
	CHECK(send(c, "hi", 2, 0) == 2, "send on the waiting client");
	if (a >= 0)
		expect_stream(a, "accepted", "hi");
	return finish();
}

/* `unix OUTFILE scm`: a file descriptor in flight (SCM_RIGHTS) on a datagram pair, which rcr refuses;
 * after the failed dump the message and its fd are still there. */
static int scm_mode(void)
{
	int p[2], pp[2];
	SETUP(socketpair(AF_UNIX, SOCK_DGRAM, 0, p) == 0 && pipe(pp) == 0, "socketpair + pipe");
	char cbuf[CMSG_SPACE(sizeof(int))];
	memset(cbuf, 0, sizeof(cbuf));
	struct iovec iov = { .iov_base = "fd", .iov_len = 2 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &pp[1], sizeof(int));
	SETUP(sendmsg(p[0], &m, 0) == 2, "sendmsg SCM_RIGHTS");
	close(pp[1]);
	ready();
	wait_term();
	char buf[8];
	iov.iov_base = buf;
	iov.iov_len = sizeof(buf);
	m.msg_controllen = sizeof(cbuf);
	ssize_t n = recvmsg(p[1], &m, MSG_DONTWAIT);
	c = CMSG_FIRSTHDR(&m);
	int fd = -1;
	if (n == 2 && c && c->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(c), sizeof(int));
	CHECK(fd >= 0, "the message with its fd is gone (recvmsg %zd)", n);
	CHECK(fd < 0 || (write(fd, "z", 1) == 1 && read(pp[0], buf, 1) == 1 && buf[0] == 'z'), "the fd in flight does not reach the pipe");
	close(fd);
	n = read(pp[0], buf, 1);
	CHECK(n == 0, "the pipe has a writer left (rcr kept the fd it peeked?): read gave %zd", n);
	return finish();
}

/* `unix OUTFILE dgram-order`: see the header. */
static int dgram_order_mode(void)
{
	char pn[64], qn[64];
	snprintf(pn, sizeof(pn), "rcr-unix-order-p-%d", getpid());
	snprintf(qn, sizeof(qn), "rcr-unix-order-q-%d", getpid());
	struct sockaddr_un pa, qa, got;
	socklen_t pl = mkaddr(&pa, pn, 1), ql = mkaddr(&qa, qn, 1);
	int p = socket(AF_UNIX, SOCK_DGRAM, 0), q = socket(AF_UNIX, SOCK_DGRAM, 0);
	SETUP(p >= 0 && q >= 0 && bind(p, (struct sockaddr *)&pa, pl) == 0 && bind(q, (struct sockaddr *)&qa, ql) == 0, "bind p, q");
	int e = socket(AF_UNIX, SOCK_DGRAM, 0);
	SETUP(e >= 0 && connect(e, (struct sockaddr *)&pa, pl) == 0, "connect e to p");
	SETUP(connect(p, (struct sockaddr *)&qa, ql) == 0, "connect p to q");
	ready();
	wait_term();
	socklen_t gl = sizeof(got);
	CHECK(getpeername(e, (struct sockaddr *)&got, &gl) == 0 && gl == pl && memcmp(&got, &pa, pl) == 0, "e: its peer is not p");
	gl = sizeof(got);
	CHECK(getpeername(p, (struct sockaddr *)&got, &gl) == 0 && gl == ql && memcmp(&got, &qa, ql) == 0, "p: its peer is not q");
	char b[8];
	CHECK(send(p, "pq", 2, 0) == 2 && recv(q, b, sizeof(b), MSG_DONTWAIT) == 2 && memcmp(b, "pq", 2) == 0, "p -> q");
	return finish();
}

int main(int argc, char **argv)
{
	init(argc, argv);
	install_term();
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 3 && strcmp(argv[2], "scm") == 0)
		return scm_mode();
	if (argc >= 3 && strcmp(argv[2], "dgram-order") == 0)
		return dgram_order_mode();
	if (argc >= 3)
		return ext_mode(argv[2], argc >= 4 ? argv[3] : NULL);
	pid_t me = getpid();
	char path[108], dpath[108], abs_name[64];
	snprintf(path, sizeof(path), "/tmp/rcr-unix-%d.sock", me);
	snprintf(dpath, sizeof(dpath), "/tmp/rcr-unix-%d.dg", me);
	snprintf(abs_name, sizeof(abs_name), "rcr-unix-%d", me);
	unlink(path);
	unlink(dpath);

	/* Stream socketpair: data both ways, SO_PEEK_OFF 3 on s[1], options on s[0]. */
	int s[2];
	SETUP(socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0, "socketpair stream");
	SETUP(send(s[0], "hello", 5, 0) == 5 && send(s[0], "world", 5, 0) == 5, "send s0");
	SETUP(send(s[1], "back", 4, 0) == 4, "send s1");
	int one = 1, peek = 3, rcvbuf = 65536;
	SETUP(setsockopt(s[1], SOL_SOCKET, SO_PEEK_OFF, &peek, sizeof(peek)) == 0, "SO_PEEK_OFF");
	SETUP(setsockopt(s[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) == 0, "SO_PASSCRED");
	SETUP(setsockopt(s[0], SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) == 0, "SO_RCVBUF");
	int rcvbuf_got = getint(s[0], SO_RCVBUF);
	SETUP(fcntl(s[1], F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");

	/* Datagram and seqpacket socketpairs: boundaries, an empty datagram. */
	int d[2], q[2];
	SETUP(socketpair(AF_UNIX, SOCK_DGRAM, 0, d) == 0, "socketpair dgram");
	SETUP(send(d[0], "a", 1, 0) == 1 && send(d[0], "", 0, 0) == 0 && send(d[0], "ccccccc", 7, 0) == 7, "send d0");
	SETUP(send(d[1], "dgram-back", 10, 0) == 10, "send d1");
	SETUP(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, q) == 0, "socketpair seqpacket");
	SETUP(send(q[0], "abc", 3, 0) == 3 && send(q[0], "defgh", 5, 0) == 5, "send q0");
	SETUP(send(q[1], "zz", 2, 0) == 2, "send q1");

	/* Bigger queues: 120000 bytes on a stream, 40 datagrams of different sizes, a 100000-byte
	 * seqpacket message (larger than one peek of rcr's). */
	static unsigned char big[120000], got[120000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 7 + i / 251);
	int bs[2], bd[2], bq[2];
	SETUP(socketpair(AF_UNIX, SOCK_STREAM, 0, bs) == 0 && socketpair(AF_UNIX, SOCK_DGRAM, 0, bd) == 0 && socketpair(AF_UNIX, SOCK_SEQPACKET, 0, bq) == 0,
	      "socketpairs (big)");
	for (size_t off = 0; off < sizeof(big);) {
		ssize_t w = send(bs[0], big + off, sizeof(big) - off, MSG_DONTWAIT);
		SETUP(w > 0, "send big stream");
		off += w;
	}
	for (int i = 0; i < 40; i++)
		SETUP(send(bd[0], big + i, 10 + i * 37, 0) == 10 + i * 37, "send datagram");
	SETUP(send(bq[0], big, 100000, 0) == 100000, "send big seqpacket message");

	/* A listener on a path: one connection accepted, two waiting, each client sent data. */
	struct sockaddr_un la;
	socklen_t lal = mkaddr(&la, path, 0);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	SETUP(l >= 0 && bind(l, (struct sockaddr *)&la, lal) == 0 && listen(l, 8) == 0, "listener");
	int c0 = socket(AF_UNIX, SOCK_STREAM, 0), c1 = socket(AF_UNIX, SOCK_STREAM, 0), c2 = socket(AF_UNIX, SOCK_STREAM, 0);
	SETUP(connect(c0, (struct sockaddr *)&la, lal) == 0, "connect c0");
	int a0 = accept(l, NULL, NULL);
	SETUP(a0 >= 0, "accept a0");
	SETUP(send(c0, "c0-data", 7, 0) == 7 && send(a0, "a0-data", 7, 0) == 7, "send c0/a0");
	SETUP(connect(c1, (struct sockaddr *)&la, lal) == 0 && send(c1, "first-client", 12, 0) == 12, "c1");
	SETUP(connect(c2, (struct sockaddr *)&la, lal) == 0 && send(c2, "second", 6, 0) == 6 && shutdown(c2, SHUT_WR) == 0, "c2");
	int c4 = socket(AF_UNIX, SOCK_STREAM, 0);
	SETUP(connect(c4, (struct sockaddr *)&la, lal) == 0 && send(c4, "gone-client", 11, 0) == 11, "c4");
	close(c4); /* its connection still waits to be accepted, with its data and then end of file */

	/* Peers closed: a stream and a datagram socketpair whose other end wrote and went away. */
	int z[2], e[2];
	SETUP(socketpair(AF_UNIX, SOCK_STREAM, 0, z) == 0 && send(z[0], "bye", 3, 0) == 3, "z");
	SETUP(socketpair(AF_UNIX, SOCK_DGRAM, 0, e) == 0 && send(e[0], "orphan", 6, 0) == 6, "e");
	close(z[0]);
	close(e[0]);

	/* A datagram socket on an abstract name, written to by a socket connected to it. */
	struct sockaddr_un aa;
	socklen_t aal = mkaddr(&aa, abs_name, 1);
	int ab = socket(AF_UNIX, SOCK_DGRAM, 0), ac = socket(AF_UNIX, SOCK_DGRAM, 0);
	SETUP(ab >= 0 && bind(ab, (struct sockaddr *)&aa, aal) == 0, "bind abstract");
	SETUP(connect(ac, (struct sockaddr *)&aa, aal) == 0 && send(ac, "to-abstract", 11, 0) == 11, "abstract client");

	/* A datagram socket on a path with messages from two senders that are closed since. */
	struct sockaddr_un da;
	socklen_t dal = mkaddr(&da, dpath, 0);
	int dg = socket(AF_UNIX, SOCK_DGRAM, 0);
	SETUP(dg >= 0 && bind(dg, (struct sockaddr *)&da, dal) == 0, "bind dgram path");
	for (int i = 0; i < 2; i++) {
		int u = socket(AF_UNIX, SOCK_DGRAM, 0);
		SETUP(u >= 0 && sendto(u, i ? "m2-xx" : "m1", i ? 5 : 2, 0, (struct sockaddr *)&da, dal) == (i ? 5 : 2), "sendto dgram path");
		close(u);
	}
	char spath[108];
	snprintf(spath, sizeof(spath), "/tmp/rcr-unix-%d.snd", me);
	unlink(spath);
	struct sockaddr_un sa;
	socklen_t sal = mkaddr(&sa, spath, 0);
	int snd = socket(AF_UNIX, SOCK_DGRAM, 0);
	SETUP(snd >= 0 && bind(snd, (struct sockaddr *)&sa, sal) == 0 && sendto(snd, "m3", 2, 0, (struct sockaddr *)&da, dal) == 2, "bound sender");

	/* A datagram socket whose file was deleted, with a socket connected to it before; one bound to a
	 * relative name (in the cwd), written to through that name. */
	char delp[108], relp[64];
	snprintf(delp, sizeof(delp), "/tmp/rcr-unix-%d.del", me);
	snprintf(relp, sizeof(relp), "rcr-unix-rel-%d", me);
	unlink(delp);
	unlink(relp);
	struct sockaddr_un xa;
	socklen_t xal = mkaddr(&xa, delp, 0);
	int dl = socket(AF_UNIX, SOCK_DGRAM, 0), dc = socket(AF_UNIX, SOCK_DGRAM, 0);
	SETUP(dl >= 0 && bind(dl, (struct sockaddr *)&xa, xal) == 0 && connect(dc, (struct sockaddr *)&xa, xal) == 0, "deleted socket");
	SETUP(unlink(delp) == 0 && send(dc, "pre-del", 7, 0) == 7, "unlink + send");
	char reld[64];
	snprintf(reld, sizeof(reld), "rcr-unix-dir-%d", me);
	SETUP(mkdir(reld, 0700) == 0 && chdir(reld) == 0, "mkdir + chdir (rcr restores from another cwd)");
	xal = mkaddr(&xa, relp, 0);
	int rl = socket(AF_UNIX, SOCK_DGRAM, 0), rs = socket(AF_UNIX, SOCK_DGRAM, 0);
	SETUP(rl >= 0 && bind(rl, (struct sockaddr *)&xa, xal) == 0, "bind relative");
	SETUP(sendto(rs, "rel-msg", 7, 0, (struct sockaddr *)&xa, xal) == 7, "sendto relative");
	close(rs);

	/* Shutdown: h[0] wrote "last" and shut down writing. */
	int h[2];
	SETUP(socketpair(AF_UNIX, SOCK_STREAM, 0, h) == 0, "socketpair h");
	SETUP(send(h[0], "last", 4, 0) == 4 && shutdown(h[0], SHUT_WR) == 0, "shutdown h0");

	/* A socketpair shared with a child. */
	int f[2];
	SETUP(socketpair(AF_UNIX, SOCK_STREAM, 0, f) == 0, "socketpair f");
	pid_t kid = fork();
	SETUP(kid >= 0, "fork");
	if (kid == 0) {
		close(f[0]);
		SETUP(send(f[1], "from-child", 10, 0) == 10, "child send");
		signal(SIGTERM, SIG_DFL);
		sigset_t ss;
		sigemptyset(&ss);
		sigaddset(&ss, SIGUSR1);
		sigprocmask(SIG_BLOCK, &ss, NULL);
		int sig;
		sigwait(&ss, &sig);
		char b[32] = { 0 };
		ssize_t n = recv(f[1], b, sizeof(b) - 1, MSG_DONTWAIT);
		_exit(n == 11 && strcmp(b, "from-parent") == 0 ? 0 : 1);
	}
	out_line("proc child %d", kid);
	ready();
	wait_term();

	/* Stream pair. */
	CHECK(getint(s[1], SO_PEEK_OFF) == 3, "s1 SO_PEEK_OFF: %d, expected 3", getint(s[1], SO_PEEK_OFF));
	char pk[8] = { 0 };
	ssize_t n = recv(s[1], pk, 2, MSG_PEEK);
	CHECK(n == 2 && memcmp(pk, "lo", 2) == 0, "s1: a peek at offset 3 gave %zd '%s', expected 'lo'", n, pk);
	int off = -1;
	setsockopt(s[1], SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off));
	expect_stream(s[1], "s1", "helloworld");
	expect_stream(s[0], "s0", "back");
	expect_empty(s[1], "s1 after reading");
	CHECK(fcntl(s[1], F_GETFL) & O_NONBLOCK, "s1 lost O_NONBLOCK");
	CHECK(!(fcntl(s[0], F_GETFL) & O_NONBLOCK), "s0 gained O_NONBLOCK");
	CHECK(getint(s[0], SO_PASSCRED) == 1, "s0 SO_PASSCRED: %d", getint(s[0], SO_PASSCRED));
	CHECK(getint(s[1], SO_PASSCRED) == 0, "s1 SO_PASSCRED: %d", getint(s[1], SO_PASSCRED));
	CHECK(getint(s[0], SO_RCVBUF) == rcvbuf_got, "s0 SO_RCVBUF: %d, expected %d", getint(s[0], SO_RCVBUF), rcvbuf_got);
	CHECK(send(s[0], "x", 1, 0) == 1 && recv(s[1], pk, 1, 0) == 1 && pk[0] == 'x', "s: still connected");

	/* Datagram and seqpacket boundaries. */
	expect_msg(d[1], "d1 message 1", "a", 1);
	expect_msg(d[1], "d1 message 2 (empty)", "", 0);
	expect_msg(d[1], "d1 message 3", "ccccccc", 7);
	expect_empty(d[1], "d1");
	expect_msg(d[0], "d0", "dgram-back", 10);
	expect_msg(q[1], "q1 message 1", "abc", 3);
	expect_msg(q[1], "q1 message 2", "defgh", 5);
	expect_empty(q[1], "q1");
	expect_msg(q[0], "q0", "zz", 2);
	CHECK(send(d[0], "z", 1, 0) == 1, "d: send after restore");
	expect_msg(d[1], "d1 after restore", "z", 1);

	/* Bigger queues. */
	size_t have = 0;
	while (have < sizeof(got)) {
		ssize_t r = recv(bs[1], got + have, sizeof(got) - have, MSG_DONTWAIT);
		if (r <= 0)
			break;
		have += r;
	}
	CHECK(have == sizeof(big) && memcmp(got, big, sizeof(big)) == 0, "big stream: %zu bytes back of %zu, or different", have, sizeof(big));
	for (int i = 0; i < 40; i++) {
		ssize_t r = recv(bd[1], got, sizeof(got), MSG_DONTWAIT);
		CHECK(r == 10 + i * 37 && memcmp(got, big + i, r) == 0, "datagram %d: %zd bytes, expected %d", i, r, 10 + i * 37);
	}
	expect_empty(bd[1], "bd1");
	n = recv(bq[1], got, sizeof(got), MSG_DONTWAIT);
	CHECK(n == 100000 && memcmp(got, big, 100000) == 0, "big seqpacket message: %zd bytes, expected 100000", n);

	/* Listener: the accepted connection, then the two waiting ones in order. */
	struct sockaddr_un nm;
	socklen_t nml = sizeof(nm);
	CHECK(getsockname(a0, (struct sockaddr *)&nm, &nml) == 0 && strcmp(nm.sun_path, path) == 0, "a0: its name is '%s', expected '%s'", nm.sun_path, path);
	expect_stream(a0, "a0", "c0-data");
	expect_stream(c0, "c0", "a0-data");
	const char *want[3] = { "first-client", "second", "gone-client" };
	int cl[3] = { c1, c2, -1 };
	for (int i = 0; i < 3; i++) {
		int fl = fcntl(l, F_GETFL);
		fcntl(l, F_SETFL, fl | O_NONBLOCK);
		int a = accept(l, NULL, NULL);
		fcntl(l, F_SETFL, fl);
		CHECK(a >= 0, "accept of pending connection %d: errno %d", i + 1, errno);
		if (a < 0)
			continue;
		expect_stream(a, want[i], want[i]);
		if (i == 1) {
			char c;
			ssize_t r = recv(a, &c, 1, MSG_DONTWAIT);
			CHECK(r == 0, "the connection of a client that shut down writing: expected end of file after its data, got %zd (errno %d)", r, r < 0 ? errno : 0);
		}
		if (cl[i] >= 0) {
			CHECK(send(a, "reply", 5, 0) == 5, "send on accepted %d", i + 1);
			expect_stream(cl[i], "client gets the reply", "reply");
		} else {
			char c;
			ssize_t r = recv(a, &c, 1, MSG_DONTWAIT);
			CHECK(r == 0, "the connection of a closed client: expected end of file after its data, got %zd (errno %d)", r, r < 0 ? errno : 0);
		}
		close(a);
	}
	int fl = fcntl(l, F_GETFL);
	fcntl(l, F_SETFL, fl | O_NONBLOCK);
	CHECK(accept(l, NULL, NULL) < 0 && errno == EAGAIN, "a third connection was waiting");
	int c3 = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(connect(c3, (struct sockaddr *)&la, lal) == 0, "connect to the listener after restore: errno %d", errno);

	/* Closed peers. */
	expect_stream(z[1], "z1", "bye");
	n = recv(z[1], pk, 1, MSG_DONTWAIT);
	CHECK(n == 0, "z1: expected end of file (peer closed), got %zd (errno %d)", n, n < 0 ? errno : 0);
	n = send(z[1], "x", 1, MSG_NOSIGNAL);
	CHECK(n < 0 && errno == EPIPE, "z1: send to a closed peer gave %zd (errno %d), expected EPIPE", n, errno);
	expect_msg(e[1], "e1", "orphan", 6);
	n = send(e[1], "x", 1, MSG_DONTWAIT);
	CHECK(n < 0, "e1: send to a closed peer succeeded");

	/* Abstract datagram socket. */
	nml = sizeof(nm);
	CHECK(getsockname(ab, (struct sockaddr *)&nm, &nml) == 0 && nml == aal && memcmp(nm.sun_path, aa.sun_path, aal - offsetof(struct sockaddr_un, sun_path)) == 0,
	      "abstract socket: wrong name (length %u)", nml);
	expect_msg(ab, "abstract", "to-abstract", 11);
	CHECK(send(ac, "again", 5, 0) == 5, "abstract client: send after restore: errno %d", errno);
	expect_msg(ab, "abstract again", "again", 5);

	/* Datagram on a path, two senders gone. */
	expect_msg(dg, "dgram path message 1", "m1", 2);
	expect_msg(dg, "dgram path message 2", "m2-xx", 5);
	struct sockaddr_un from;
	socklen_t froml = sizeof(from);
	memset(&from, 0, sizeof(from));
	n = recvfrom(dg, pk, sizeof(pk), MSG_DONTWAIT, (struct sockaddr *)&from, &froml);
	CHECK(n == 2 && memcmp(pk, "m3", 2) == 0 && strcmp(from.sun_path, spath) == 0, "dgram path message 3: %zd bytes from '%s', expected 'm3' from '%s'", n,
	      from.sun_path, spath);
	expect_empty(dg, "dgram path");
	unlink(spath);

	/* Deleted and relative names. */
	nml = sizeof(nm);
	CHECK(getsockname(dl, (struct sockaddr *)&nm, &nml) == 0 && strcmp(nm.sun_path, delp) == 0, "deleted socket: name '%s', expected '%s'", nm.sun_path, delp);
	CHECK(access(delp, F_OK) < 0 && errno == ENOENT, "%s exists again after the restore", delp);
	expect_msg(dl, "deleted socket", "pre-del", 7);
	CHECK(send(dc, "post-del", 8, 0) == 8, "send to the deleted socket after restore: errno %d", errno);
	expect_msg(dl, "deleted socket after restore", "post-del", 8);
	nml = sizeof(nm);
	CHECK(getsockname(rl, (struct sockaddr *)&nm, &nml) == 0 && strcmp(nm.sun_path, relp) == 0, "relative socket: name '%s', expected '%s'", nm.sun_path, relp);
	expect_msg(rl, "relative socket", "rel-msg", 7);
	struct stat rst;
	CHECK(stat(relp, &rst) == 0 && S_ISSOCK(rst.st_mode), "%s is not a socket in the cwd after the restore", relp);
	unlink(relp);
	CHECK(chdir("..") == 0 && rmdir(reld) == 0, "rmdir %s", reld);

	/* Shutdown. */
	expect_stream(h[1], "h1", "last");
	char c;
	n = recv(h[1], &c, 1, MSG_DONTWAIT);
	CHECK(n == 0, "h1: expected end of file after the data, got %zd (errno %d)", n, n < 0 ? errno : 0);
	n = send(h[0], "x", 1, MSG_NOSIGNAL);
	CHECK(n < 0 && errno == EPIPE, "h0: send after SHUT_WR gave %zd (errno %d), expected EPIPE", n, errno);
	CHECK(send(h[1], "up", 2, 0) == 2, "h1 can still send");
	expect_stream(h[0], "h0 receives", "up");

	/* Shared with the child. */
	expect_stream(f[0], "f0 from child", "from-child");
	CHECK(send(f[0], "from-parent", 11, 0) == 11, "f0 send");
	kill(kid, SIGUSR1);
	int st = 0;
	CHECK(waitpid(kid, &st, 0) == kid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);

	unlink(path);
	unlink(dpath);
	return finish();
}
