/* eventfd and signalfd: the state lives in the file (counter, semaphore mode, mask, flags).
 * fd a: eventfd, O_NONBLOCK, counter 0x100000005 (above 32 bits); fd b: EFD_SEMAPHORE, blocking,
 * counter 3; fd s: signalfd for SIGUSR1|SIGUSR2, O_NONBLOCK|O_CLOEXEC, SIGUSR2 pending at dump.
 * After restore, from inside: flags, counter, semaphore reads of 1, the mask in fdinfo, the pending
 * SIGUSR2 and a SIGUSR1 sent after restore read through the signalfd. Also an epoll and an inotify
 * that watch nothing (their fdinfo has no watch lines). And 64 eventfds at fds 300..363, each dup'ed to
 * 400+ in a shuffled order: every pair still shares its eventfd, no other (all anon-inode files have one
 * inode, so only kcmp tells them apart). */
#include "common.h"
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/epoll.h>
#include <sys/inotify.h>

static void check_flags(int fd, const char *name, int want_fl, int want_fd)
{
	int fl = fcntl(fd, F_GETFL), fdf = fcntl(fd, F_GETFD);
	CHECK(fl >= 0 && (fl & (O_ACCMODE | O_NONBLOCK)) == want_fl, "%s: F_GETFL expected %#x got %#x", name, want_fl,
	      fl & (O_ACCMODE | O_NONBLOCK));
	CHECK(fdf == want_fd, "%s: F_GETFD expected %#x got %#x", name, want_fd, fdf);
}

static int fdinfo_u64(int fd, const char *key, unsigned long long *v, int hex)
{
	char val[128];
	if (fdinfo_value(fd, key, val, sizeof(val)) < 0)
		return -1;
	*v = strtoull(val, NULL, hex ? 16 : 10);
	return 0;
}

int main(int argc, char **argv)
{
	init(argc, argv);
	int a = eventfd(5, EFD_NONBLOCK);
	SETUP(a >= 0, "eventfd a");
	uint64_t v = 0x100000000ull;
	SETUP(write(a, &v, 8) == 8, "write a");
	int b = eventfd(3, EFD_SEMAPHORE);
	SETUP(b >= 0, "eventfd b");

	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGUSR1);
	sigaddset(&m, SIGUSR2);
	SETUP(sigprocmask(SIG_BLOCK, &m, NULL) == 0, "sigprocmask");
	int s = signalfd(-1, &m, SFD_NONBLOCK | SFD_CLOEXEC);
	SETUP(s >= 0, "signalfd");
	SETUP(kill(getpid(), SIGUSR2) == 0, "kill SIGUSR2");

	int ep0 = epoll_create1(0), in0 = inotify_init1(IN_NONBLOCK);
	SETUP(ep0 >= 0 && in0 >= 0, "empty epoll and inotify");

	install_term();
	for (int i = 0; i < 64; i++) {
		int e = eventfd(1000 + i, EFD_NONBLOCK);
		SETUP(e >= 0 && dup2(e, 300 + i) == 300 + i && close(e) == 0, "eventfd 300+i");
	}
	for (int i = 0; i < 64; i++)
		SETUP(dup2(300 + (i * 37) % 64, 400 + i) == 400 + i, "dup 400+i");
	ready();
	wait_term();
	for (int i = 0; i < 64; i++) {
		int src = 300 + (i * 37) % 64;
		uint64_t one = 1, v = 0;
		CHECK(write(400 + i, &one, 8) == 8 && read(src, &v, 8) == 8 && v == (uint64_t)(1000 + (i * 37) % 64) + 1,
		      "fd %d and its dup %d: counter %llu, expected %d", src, 400 + i, (unsigned long long)v, 1000 + (i * 37) % 64 + 1);
		CHECK(read(src, &v, 8) < 0 && errno == EAGAIN, "fd %d: read again should be empty", src);
	}

	check_flags(a, "eventfd a", O_RDWR | O_NONBLOCK, 0);
	check_flags(b, "eventfd b", O_RDWR, 0);
	check_flags(s, "signalfd", O_RDWR | O_NONBLOCK, FD_CLOEXEC);
	char link[128], lp[64];
	snprintf(lp, sizeof(lp), "/proc/self/fd/%d", a);
	ssize_t n = readlink(lp, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	CHECK(strcmp(link, "anon_inode:[eventfd]") == 0, "eventfd a: target '%s'", link);

	v = 0;
	n = read(a, &v, 8);
	CHECK(n == 8 && v == 0x100000005ull, "eventfd a: counter expected 0x100000005 got %#llx (read %zd)", (unsigned long long)v, n);
	n = read(a, &v, 8);
	CHECK(n < 0 && errno == EAGAIN, "eventfd a: second read expected EAGAIN, returned %zd", n);

	unsigned long long sem = 9;
	CHECK(fdinfo_u64(b, "eventfd-semaphore", &sem, 0) == 0 && sem == 1, "eventfd b: fdinfo eventfd-semaphore %llu", sem);
	for (int i = 0; i < 3; i++) {
		v = 0;
		n = read(b, &v, 8);
		CHECK(n == 8 && v == 1, "eventfd b: semaphore read %d expected 1 got %llu (read %zd)", i, (unsigned long long)v, n);
	}
	fcntl(b, F_SETFL, O_NONBLOCK);
	n = read(b, &v, 8);
	CHECK(n < 0 && errno == EAGAIN, "eventfd b: 4th read expected EAGAIN, returned %zd", n);

	unsigned long long mask = 0;
	unsigned long long want = (1ull << (SIGUSR1 - 1)) | (1ull << (SIGUSR2 - 1));
	CHECK(fdinfo_u64(s, "sigmask", &mask, 1) == 0 && mask == want, "signalfd: sigmask expected %#llx got %#llx", want, mask);
	struct signalfd_siginfo si;
	n = read(s, &si, sizeof(si));
	CHECK(n == sizeof(si) && si.ssi_signo == SIGUSR2, "signalfd: the SIGUSR2 pending at dump: read %zd signo %u", n,
	      n > 0 ? si.ssi_signo : 0);
	CHECK(kill(getpid(), SIGUSR1) == 0, "kill SIGUSR1");
	n = read(s, &si, sizeof(si));
	CHECK(n == sizeof(si) && si.ssi_signo == SIGUSR1 && si.ssi_pid == (uint32_t)getpid(),
	      "signalfd: SIGUSR1 sent after restore: read %zd signo %u", n, n > 0 ? si.ssi_signo : 0);
	n = read(s, &si, sizeof(si));
	CHECK(n < 0 && errno == EAGAIN, "signalfd: nothing more expected, read returned %zd", n);
	struct epoll_event ev;
	CHECK(epoll_wait(ep0, &ev, 1, 0) == 0, "empty epoll: epoll_wait");
	char ib[512];
	n = read(in0, ib, sizeof(ib));
	CHECK(n < 0 && errno == EAGAIN, "empty inotify: read returned %zd", n);
	snprintf(lp, sizeof(lp), "/proc/self/fd/%d", in0);
	n = readlink(lp, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	CHECK(strcmp(link, "anon_inode:inotify") == 0, "empty inotify: target '%s'", link);
	return finish();
}
