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
#include <dirent.h>

/* The SQPOLL thread names itself iou-sqp-PID when it first runs, which on a busy machine can be after
 * io_uring_setup returns: wait (at most 5 s) until a thread of ours has that name. */
static void wait_sqpoll_named(void)
{
	char want[32], path[64], comm[64];
	snprintf(want, sizeof(want), "iou-sqp-%d", getpid());
	for (int i = 0; i < 5000; i++) {
		DIR *d = opendir("/proc/self/task");
		struct dirent *e;
		int found = 0;
		while (d && (e = readdir(d))) {
			snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
			FILE *f = fopen(path, "r");
			if (f && fgets(comm, sizeof(comm), f) && strncmp(comm, want, strlen(want)) == 0)
				found = 1;
			if (f)
				fclose(f);
		}
		if (d)
			closedir(d);
		if (found)
			return;
		usleep(1000);
	}
	SETUP(0, "the io_uring SQPOLL thread named itself within 5 s");
}

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
	if (strcmp(kind, "io_uring-sqpoll") == 0)
		wait_sqpoll_named();
	SETUP(dup2(fd, 50) == 50 && close(fd) == 0, "dup2 50");
	struct stat before, after;
	SETUP(fstat(50, &before) == 0, "fstat");
	ready();
	wait_term();
	CHECK(fstat(50, &after) == 0 && after.st_ino == before.st_ino, "fd 50 is still the %s it was", kind);
	return finish();
}
