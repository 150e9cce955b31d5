/* Event files rcr must refuse to dump, with a clear error, leaving the program unharmed.
 * "stale": an epoll watches fd 7, an eventfd; the eventfd was dup'ed to fd 8 and fd 7 closed, so the
 * watch lives on under a number that no longer names its file (epoll keys are (file, fd number)).
 * "fanotify": a fanotify fd (no core support, no plugin).
 * After the failed dump, SIGTERM: the program checks its files still work. */
#include "common.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>

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
	} else if (strcmp(mode, "fanotify") == 0) {
		fd = fanotify_init(FAN_CLASS_NOTIF, O_RDONLY);
		SETUP(fd >= 0, "fanotify_init");
	} else {
		SETUP(0, "mode: stale or fanotify");
	}

	install_term();
	ready();
	wait_term();

	if (ep >= 0) {
		struct epoll_event ev;
		int n = epoll_wait(ep, &ev, 1, 0);
		CHECK(n == 1 && ev.data.u64 == 7, "the stale watch still reports: %d", n);
	}
	if (fd >= 0)
		CHECK(fcntl(fd, F_GETFD) >= 0, "fanotify fd gone");
	return finish();
}
