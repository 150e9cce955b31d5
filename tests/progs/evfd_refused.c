/* Event files rcr must refuse to dump, with a clear error, leaving the program unharmed.
 * "stale": an epoll watches fd 7, an eventfd; the eventfd was dup'ed to fd 8 and fd 7 closed, so the
 * watch lives on under a number that no longer names its file (epoll keys are (file, fd number)).
 * "fsmark": a fanotify mark on a whole filesystem (a tmpfs mounted in the test's directory, unmounted
 * at the end), which rcr does not support yet.
 * After the failed dump, SIGTERM: the program checks its files still work. */
#include "common.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/mount.h>
#include <sys/stat.h>

int main(int argc, char **argv)
{
	init(argc, argv);
	const char *mode = argc > 2 ? argv[2] : "";
	int ep = -1, fd = -1;
	if (strcmp(mode, "stale") == 0) {
		ep = epoll_create1(0);
		int e = eventfd(1, EFD_NONBLOCK);
		SETUP(ep >= 0 && e >= 0 && dup2(e, 7) == 7 && close(e) == 0, "epoll and eventfd at 7");
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 7 };
		SETUP(epoll_ctl(ep, EPOLL_CTL_ADD, 7, &ev) == 0, "epoll_ctl ADD 7");
		SETUP(dup2(7, 8) == 8 && close(7) == 0, "move the eventfd to 8");
	} else if (strcmp(mode, "fsmark") == 0) {
		SETUP(mkdir("mnt", 0755) == 0 && mount("rcr-fsmark", "mnt", "tmpfs", 0, "size=1m") == 0, "mount tmpfs");
		fd = fanotify_init(FAN_CLASS_NOTIF, O_RDONLY);
		SETUP(fd >= 0, "fanotify_init");
		SETUP(fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_OPEN, AT_FDCWD, "mnt") == 0, "mark mnt's filesystem");
	} else {
		SETUP(0, "mode: stale or fsmark");
	}

	install_term();
	ready();
	wait_term();

	if (ep >= 0) {
		struct epoll_event ev;
		int n = epoll_wait(ep, &ev, 1, 0);
		CHECK(n == 1 && ev.data.u64 == 7, "the stale watch still reports: %d", n);
	}
	if (fd >= 0) {
		int x = open("mnt/x", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		CHECK(x >= 0, "create mnt/x");
		close(x);
		char buf[256];
		ssize_t n = read(fd, buf, sizeof(buf));
		CHECK(n > 0, "the filesystem mark reports the open: read returned %zd", n);
		close(fd);
		CHECK(umount2("mnt", MNT_DETACH) == 0, "umount mnt: %s", strerror(errno));
	}
	return finish();
}
