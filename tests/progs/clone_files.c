/* A parent and a child made with clone(CLONE_FILES | CLONE_FS): one fd table, one cwd/umask. The parent
 * opens /dev/zero after the clone; the child sees it. After restore: the child still sees the parent's fd,
 * an fd the child opens is seen by the parent, and a umask change of one is the other's. The root prints
 * PASS only if the child (which exits 0 when all is well) and its own checks passed. */
#include "common.h"
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static int fd_is(int fd, const char *target)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return 0;
	buf[n] = 0;
	return strcmp(buf, target) == 0;
}

int main(int argc, char **argv)
{
	init(argc, argv);
	install_term();
	long child = syscall(SYS_clone, CLONE_FILES | CLONE_FS | SIGCHLD, 0, 0, 0, 0);
	SETUP(child >= 0, "clone(CLONE_FILES|CLONE_FS)");
	if (child == 0) {
		/* Child: wait for the parent's fd 50, then for SIGTERM (forwarded by the parent). */
		while (!fd_is(50, "/dev/zero"))
			usleep(1000);
		wait_term();
		int ok = fd_is(50, "/dev/zero");
		int mine = open("/dev/null", O_RDONLY);
		ok = ok && mine >= 0 && dup2(mine, 60) == 60;
		umask(0027);
		_exit(ok ? 0 : 1);
	}
	int z = open("/dev/zero", O_RDONLY);
	SETUP(z >= 0 && dup2(z, 50) == 50, "open /dev/zero as fd 50");
	close(z);
	out_line("child %ld", child);
	ready();
	wait_term();
	kill(child, SIGTERM);
	int st;
	CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "child failed (status %#x): it did not see fd 50 or could not open fd 60", st);
	CHECK(fd_is(60, "/dev/null"), "the child's fd 60 is not in the parent's table");
	mode_t m = umask(0);
	CHECK(m == 0027, "umask set by the child is %#o in the parent", m);
	return finish();
}
