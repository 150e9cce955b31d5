/* epoll: watches with their events and data, level and edge triggered, one-shot watches (one that
 * fired before the dump, one that did not), an epoll watching another epoll.
 * Targets are eventfds (count 1: readable). e1 watches: d (ONESHOT, fired before the dump), a (LT,
 * readable), b (LT, not readable), c (ET, readable, never reported before the dump), f (ONESHOT, not
 * readable), g (LT, readable), e2 (an epoll watching h). After restore, from inside: what epoll_wait
 * reports, step by step; EPOLL_CTL_MOD and EPOLL_CTL_DEL by the task (they only find watches added
 * with the task's fd numbers); the fired one-shot's events in fdinfo. A child forked before the dump
 * shares e1 (its own fd table, the same numbers): the watches are restored once, and its EPOLL_CTL_MOD
 * after restore changes the parent's view. */
#include "common.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>

static int efd(uint64_t v)
{
	int fd = eventfd((unsigned)v, EFD_NONBLOCK);
	SETUP(fd >= 0, "eventfd");
	return fd;
}

static void add(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };
	SETUP(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0, "epoll_ctl ADD");
}

static void bump(int fd)
{
	uint64_t one = 1;
	CHECK(write(fd, &one, 8) == 8, "write eventfd %d: %s", fd, strerror(errno));
}

/* The data of the ready watches as a sorted, comma-separated list of hex numbers. */
static const char *ready_set(int ep, char *buf, size_t len)
{
	struct epoll_event evs[16];
	int n = epoll_wait(ep, evs, 16, 0);
	if (n < 0) {
		snprintf(buf, len, "error %s", strerror(errno));
		return buf;
	}
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (evs[j].data.u64 < evs[i].data.u64) {
				struct epoll_event t = evs[i];
				evs[i] = evs[j];
				evs[j] = t;
			}
	buf[0] = 0;
	size_t off = 0;
	for (int i = 0; i < n && off < len; i++)
		off += snprintf(buf + off, len - off, "%s%llx", i ? "," : "", (unsigned long long)evs[i].data.u64);
	return buf;
}

#define EXPECT(ep, want, step)                                                                    \
	do {                                                                                       \
		char got[256];                                                                     \
		ready_set(ep, got, sizeof(got));                                                   \
		CHECK(strcmp(got, want) == 0, "%s: ready expected {%s} got {%s}", step, want, got); \
	} while (0)

/* The events of the watch of fd `tfd` in fdinfo of epoll `ep`, or -1. */
static long long tfd_events(int ep, int tfd)
{
	char p[64], line[256];
	snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", ep);
	FILE *f = fopen(p, "re");
	if (!f)
		return -1;
	long long ret = -1;
	int t;
	unsigned int ev;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "tfd: %d events: %x", &t, &ev) == 2 && t == tfd)
			ret = ev;
	fclose(f);
	return ret;
}

int main(int argc, char **argv)
{
	init(argc, argv);
	int e1 = epoll_create1(EPOLL_CLOEXEC);
	SETUP(e1 >= 0, "epoll_create1");
	int a = efd(1), b = efd(0), c = efd(1), d = efd(1), f = efd(0), g = efd(1), h = efd(0);
	int e2 = epoll_create1(0);
	SETUP(e2 >= 0, "epoll_create1 e2");

	/* d fires alone, so that it is the one-shot that already fired. */
	add(e1, d, EPOLLIN | EPOLLONESHOT, 0xd4);
	struct epoll_event ev;
	SETUP(epoll_wait(e1, &ev, 1, 0) == 1 && ev.data.u64 == 0xd4, "fire d");
	add(e1, a, EPOLLIN, 0xa1);
	add(e1, b, EPOLLIN, 0xb2);
	add(e1, c, EPOLLIN | EPOLLET, 0xc3);
	add(e1, f, EPOLLIN | EPOLLONESHOT, 0xf6);
	add(e1, g, EPOLLIN, 0x77);
	add(e2, h, EPOLLIN, 0x99);
	add(e1, e2, EPOLLIN, 0xe2);
	SETUP(tfd_events(e1, d) == EPOLLONESHOT, "fdinfo of the fired one-shot");
	pid_t kid = fork();
	SETUP(kid >= 0, "fork");
	if (kid == 0) {
		signal(SIGTERM, SIG_DFL);
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, SIGUSR1);
		sigprocmask(SIG_BLOCK, &s, NULL);
		int sig;
		sigwait(&s, &sig);
		struct epoll_event m = { .events = EPOLLIN, .data.u64 = 0xb3 };
		_exit(epoll_ctl(e1, EPOLL_CTL_MOD, b, &m) == 0 ? 0 : 1);
	}

	install_term();
	ready();
	wait_term();

	CHECK(fcntl(e1, F_GETFD) == FD_CLOEXEC && fcntl(e2, F_GETFD) == 0, "epoll fd flags");
	long long dev = tfd_events(e1, d);
	CHECK(dev == EPOLLONESHOT, "fired one-shot d: fdinfo events expected %#x got %#llx", EPOLLONESHOT, dev);
	/* c (edge) reports once: it became ready before the watch... as after any EPOLL_CTL_ADD. */
	EXPECT(e1, "77,a1,c3", "first wait");
	EXPECT(e1, "77,a1", "second wait (edge-triggered c reported once)");
	struct epoll_event mod = { .events = EPOLLIN, .data.u64 = 0x78 };
	CHECK(epoll_ctl(e1, EPOLL_CTL_MOD, g, &mod) == 0, "EPOLL_CTL_MOD of g by the task: %s", strerror(errno));
	EXPECT(e1, "78,a1", "after MOD of g");
	CHECK(epoll_ctl(e1, EPOLL_CTL_DEL, a, NULL) == 0, "EPOLL_CTL_DEL of a by the task: %s", strerror(errno));
	EXPECT(e1, "78", "after DEL of a");
	bump(f);
	EXPECT(e1, "78,f6", "one-shot f, armed at dump, fires");
	bump(f);
	EXPECT(e1, "78", "one-shot f fires only once");
	bump(c);
	EXPECT(e1, "78,c3", "edge-triggered c, new edge");
	EXPECT(e1, "78", "edge-triggered c, no new edge");
	bump(d);
	EXPECT(e1, "78", "fired one-shot d stays disarmed");
	bump(b);
	EXPECT(e1, "78,b2", "b readable");
	uint64_t x;
	CHECK(read(b, &x, 8) == 8, "read b");
	CHECK(kill(kid, SIGUSR1) == 0, "kill child");
	int st = -1;
	CHECK(waitpid(kid, &st, 0) == kid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child's EPOLL_CTL_MOD of b failed: status %#x", st);
	bump(b);
	EXPECT(e1, "78,b3", "b, modified by the child");
	CHECK(read(b, &x, 8) == 8, "read b");
	bump(h);
	EXPECT(e1, "78,e2", "nested: e2 ready when h is");
	EXPECT(e2, "99", "nested: e2 reports h");
	struct epoll_event again = { .events = EPOLLIN, .data.u64 = 1 };
	CHECK(epoll_ctl(e1, EPOLL_CTL_ADD, g, &again) < 0 && errno == EEXIST, "ADD of g again: expected EEXIST");
	return finish();
}
