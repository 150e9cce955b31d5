/* Benchmark subject: N open files of one kind (argv[2]), N = argv[3], from fd 100 up.
 *   pipe:  N pipes, both ends, 1 KiB in flight each (2N fds)
 *   file:  N regular files at distinct offsets
 *   fifo:  N FIFOs opened read-write, 1 KiB in flight each
 *   memfd: N memfds of 16 KiB each
 *   ghost: N deleted files of 4 KiB each
 *   eventfd: N eventfds (counter i+1)
 *   epoll: N eventfds all watched by one epoll (fd 99)
 *   unix:  N stream socketpairs, 1 KiB queued each way (2N fds)
 * After restore each object is checked: the bytes in flight, the offsets, the contents. */
#include "common.h"
#include <libgen.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define BASE 100

static char dir[512];

static void fill(char *b, size_t n, int i)
{
	for (size_t k = 0; k < n; k++)
		b[k] = (char)(i * 7 + k);
}

int main(int argc, char **argv)
{
	init(argc, argv);
	install_term();
	const char *kind = argc > 2 ? argv[2] : "pipe";
	int n = argc > 3 ? atoi(argv[3]) : 100;
	char tmp[512];
	snprintf(tmp, sizeof(tmp), "%s", g_out);
	snprintf(dir, sizeof(dir), "%s", dirname(tmp));
	char buf[16384], want[16384], path[700];
	for (int i = 0; i < n; i++) {
		int fd = -1, fd2 = -1;
		fill(want, sizeof(want), i);
		if (!strcmp(kind, "pipe")) {
			int p[2];
			SETUP(pipe(p) == 0, "pipe");
			SETUP(write(p[1], want, 1024) == 1024, "write pipe");
			fd = p[0];
			fd2 = p[1];
		} else if (!strcmp(kind, "file")) {
			snprintf(path, sizeof(path), "%s/f%d", dir, i);
			fd = open(path, O_RDWR | O_CREAT, 0600);
			SETUP(fd >= 0 && write(fd, want, 4096) == 4096 && lseek(fd, i % 4096, SEEK_SET) == i % 4096, "file");
		} else if (!strcmp(kind, "fifo")) {
			snprintf(path, sizeof(path), "%s/q%d", dir, i);
			SETUP(mkfifo(path, 0600) == 0, "mkfifo");
			fd = open(path, O_RDWR);
			SETUP(fd >= 0 && write(fd, want, 1024) == 1024, "fifo");
		} else if (!strcmp(kind, "memfd")) {
			fd = memfd_create("bench", 0);
			SETUP(fd >= 0 && write(fd, want, sizeof(want)) == (ssize_t)sizeof(want), "memfd");
		} else if (!strcmp(kind, "ghost")) {
			snprintf(path, sizeof(path), "%s/g%d", dir, i);
			fd = open(path, O_RDWR | O_CREAT, 0600);
			SETUP(fd >= 0 && write(fd, want, 4096) == 4096 && unlink(path) == 0, "ghost");
		} else if (!strcmp(kind, "eventfd") || !strcmp(kind, "epoll")) {
			fd = eventfd(i + 1, 0);
			SETUP(fd >= 0, "eventfd");
		} else if (!strcmp(kind, "unix")) {
			int sv[2];
			SETUP(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
			SETUP(write(sv[0], want, 1024) == 1024 && write(sv[1], want + 1, 1024) == 1024, "queue");
			fd = sv[0];
			fd2 = sv[1];
		} else {
			SETUP(0, "unknown kind");
		}
		SETUP(dup2(fd, BASE + 2 * i) == BASE + 2 * i && close(fd) == 0, "dup2");
		if (fd2 >= 0)
			SETUP(dup2(fd2, BASE + 2 * i + 1) == BASE + 2 * i + 1 && close(fd2) == 0, "dup2 b");
		if (!strcmp(kind, "epoll")) {
			/* Watched at its final number: a watch names the fd it was added with. */
			if (i == 0)
				SETUP(dup2(epoll_create1(0), 99) == 99, "epoll");
			struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };
			SETUP(epoll_ctl(99, EPOLL_CTL_ADD, BASE + 2 * i, &ev) == 0, "epoll_ctl");
		}
	}
	ready();
	wait_term();
	if (!strcmp(kind, "epoll")) {
		static struct epoll_event evs[4096];
		int got = epoll_wait(99, evs, 4096, 1000);
		CHECK(got == n, "epoll: %d of %d watched eventfds ready", got, n);
	}
	for (int i = 0; i < n; i++) {
		int fd = BASE + 2 * i;
		fill(want, sizeof(want), i);
		memset(buf, 0, sizeof(buf));
		if (!strcmp(kind, "unix")) {
			CHECK(read(fd, buf, 1024) == 1024 && memcmp(buf, want + 1, 1024) == 0, "unix %d: queued data a", i);
			CHECK(read(fd + 1, buf, 1024) == 1024 && memcmp(buf, want, 1024) == 0, "unix %d: queued data b", i);
		} else if (!strcmp(kind, "eventfd") || !strcmp(kind, "epoll")) {
			uint64_t v = 0;
			CHECK(read(fd, &v, 8) == 8 && v == (uint64_t)i + 1, "eventfd %d: counter %llu", i, (unsigned long long)v);
		} else if (!strcmp(kind, "pipe") || !strcmp(kind, "fifo")) {
			CHECK(read(fd, buf, 1024) == 1024 && memcmp(buf, want, 1024) == 0, "%s %d: data in flight", kind, i);
		} else if (!strcmp(kind, "file") || !strcmp(kind, "ghost")) {
			if (!strcmp(kind, "file"))
				CHECK(lseek(fd, 0, SEEK_CUR) == i % 4096, "file %d: offset", i);
			CHECK(pread(fd, buf, 4096, 0) == 4096 && memcmp(buf, want, 4096) == 0, "file %d: data", i);
		} else {
			CHECK(pread(fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf) && memcmp(buf, want, sizeof(buf)) == 0, "memfd %d: data", i);
		}
	}
	return finish();
}
