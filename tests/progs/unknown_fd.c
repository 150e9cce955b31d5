/* An fd of a kind rcr has no module for, at fd 50: argv[2] is "io_uring", "io_uring-sqpoll" (with its
 * kernel-run iou-sqp thread), "perf" (a software perf event), "userfaultfd" or "tcp" (a TCP listener on
 * 127.0.0.1, port argv[3]). rcr dump must refuse it, naming the pid, fd 50 and its anon inode, and leave
 * the process running: on SIGTERM it checks that fd 50 is still the same object. */
#include "common.h"
#include <linux/io_uring.h>
#include <linux/perf_event.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>

int main(int argc, char **argv)
{
	init(argc, argv);
	install_term();
	const char *kind = argc > 2 ? argv[2] : "io_uring";
	int fd = -1;
	if (strncmp(kind, "io_uring", 8) == 0) {
		struct io_uring_params p;
		memset(&p, 0, sizeof(p));
		if (strcmp(kind, "io_uring-sqpoll") == 0) {
			p.flags = IORING_SETUP_SQPOLL;
			p.sq_thread_idle = 1000;
		}
		fd = syscall(SYS_io_uring_setup, 4, &p);
	} else if (strcmp(kind, "perf") == 0) {
		struct perf_event_attr a;
		memset(&a, 0, sizeof(a));
		a.size = sizeof(a);
		a.type = PERF_TYPE_SOFTWARE;
		a.config = PERF_COUNT_SW_TASK_CLOCK;
		a.exclude_kernel = 1;
		fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
	} else if (strcmp(kind, "userfaultfd") == 0) {
		fd = syscall(SYS_userfaultfd, O_CLOEXEC);
	} else if (strcmp(kind, "tcp") == 0) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argc > 3 ? argv[3] : "0")) };
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		SETUP(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 4) == 0, "bind/listen");
	}
	SETUP(fd >= 0, kind);
	SETUP(dup2(fd, 50) == 50 && close(fd) == 0, "dup2 50");
	struct stat before, after;
	SETUP(fstat(50, &before) == 0, "fstat");
	ready();
	wait_term();
	CHECK(fstat(50, &after) == 0 && after.st_ino == before.st_ino, "fd 50 is still the %s it was", kind);
	return finish();
}
