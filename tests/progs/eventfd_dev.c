/* The toy device of the plugin tests: eventfds used as counters (their state is the counter).
 * fd 20: eventfd, O_NONBLOCK, counter 42; fd 22: a dup of fd 20 (one device, two fds);
 * fd 21: eventfd in semaphore mode, blocking, close-on-exec, counter 3.
 * After restore: same targets and flags, the counters are back (read from inside), and fds 20 and 22
 * still share one device. Without a plugin rcr cannot dump these fds. */
#include "common.h"
#include <sys/eventfd.h>

static void check_fd(int fd, int want_fl, int want_fd)
{
	char link[128], lp[64];
	snprintf(lp, sizeof(lp), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(lp, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	CHECK(strcmp(link, "anon_inode:[eventfd]") == 0, "fd %d: target expected anon_inode:[eventfd] got '%s'", fd, link);
	int fl = fcntl(fd, F_GETFL), fdf = fcntl(fd, F_GETFD);
	CHECK(fl >= 0 && (fl & (O_ACCMODE | O_NONBLOCK)) == want_fl, "fd %d: F_GETFL expected %#x got %#x", fd, want_fl,
	      fl & (O_ACCMODE | O_NONBLOCK));
	CHECK(fdf == want_fd, "fd %d: F_GETFD expected %#x got %#x", fd, want_fd, fdf);
}

int main(int argc, char **argv)
{
	init(argc, argv);
	int a = eventfd(7, EFD_NONBLOCK);
	SETUP(a >= 0, "eventfd");
	SETUP(dup2(a, 20) == 20 && close(a) == 0, "dup2 20");
	uint64_t v = 35;
	SETUP(write(20, &v, 8) == 8, "write 35");
	SETUP(dup2(20, 22) == 22, "dup2 22");
	int b = eventfd(3, EFD_SEMAPHORE | EFD_CLOEXEC);
	SETUP(b >= 0, "eventfd semaphore");
	SETUP(dup3(b, 21, O_CLOEXEC) == 21 && close(b) == 0, "dup3 21");

	install_term();
	ready();
	wait_term();

	check_fd(20, O_RDWR | O_NONBLOCK, 0);
	check_fd(22, O_RDWR | O_NONBLOCK, 0);
	check_fd(21, O_RDWR, FD_CLOEXEC);
	v = 0;
	ssize_t r = read(20, &v, 8);
	CHECK(r == 8 && v == 42, "fd 20: counter expected 42 got %llu (read returned %zd: %s)", (unsigned long long)v, r,
	      r < 0 ? strerror(errno) : "ok");
	r = read(20, &v, 8);
	CHECK(r < 0 && errno == EAGAIN, "fd 20: a second read should find the counter at 0 (EAGAIN), returned %zd", r);
	v = 5;
	CHECK(write(22, &v, 8) == 8, "fd 22: write: %s", strerror(errno));
	v = 0;
	r = read(20, &v, 8);
	CHECK(r == 8 && v == 5, "fds 20 and 22 are not one device after restore: wrote 5 via 22, read %llu via 20 (%zd)",
	      (unsigned long long)v, r);
	/* Semaphore mode: each read takes 1, three times, then the counter is empty. */
	CHECK(fcntl(21, F_SETFL, O_NONBLOCK) == 0, "fd 21: F_SETFL: %s", strerror(errno));
	for (int i = 0; i < 3; i++) {
		v = 0;
		r = read(21, &v, 8);
		CHECK(r == 8 && v == 1, "fd 21 (semaphore): read %d returned %zd value %llu, expected 1", i, r,
		      (unsigned long long)v);
	}
	r = read(21, &v, 8);
	CHECK(r < 0 && errno == EAGAIN, "fd 21 (semaphore): the counter should be empty after 3 reads, read returned %zd", r);
	return finish();
}
