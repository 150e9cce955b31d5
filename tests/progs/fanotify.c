/* fanotify: a group (FAN_CLASS_NOTIF, O_NONBLOCK) with inode marks (a file: FAN_MODIFY|FAN_CLOSE_WRITE;
 * a directory: FAN_OPEN on its children; a file in it with FAN_OPEN ignored, surviving modification)
 * and a mount mark (FAN_OPEN on a tmpfs mounted in the test's directory).
 * After restore, from inside: the group's flags, then the events that file accesses produce. */
#include "common.h"
#include <sys/fanotify.h>
#include <sys/mount.h>
#include <sys/stat.h>

struct seen {
	char path[512];
	unsigned long long mask;
};

static struct seen g_seen[32];
static int g_nseen;

static void drain(int fan)
{
	char buf[4096] __attribute__((aligned(8)));
	for (;;) {
		ssize_t n = read(fan, buf, sizeof(buf));
		if (n <= 0)
			return;
		struct fanotify_event_metadata *m = (struct fanotify_event_metadata *)buf;
		for (; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
			char lp[64], path[512];
			snprintf(lp, sizeof(lp), "/proc/self/fd/%d", m->fd);
			ssize_t l = readlink(lp, path, sizeof(path) - 1);
			path[l > 0 ? l : 0] = 0;
			if (m->fd >= 0)
				close(m->fd);
			const char *base = strrchr(path, '/');
			const char *name = base && base > path ? base - 1 : path;
			while (name > path && *(name - 1) != '/')
				name--; /* "dir/file" */
			int i;
			for (i = 0; i < g_nseen; i++)
				if (strcmp(g_seen[i].path, name) == 0)
					break;
			if (i == g_nseen && g_nseen < 32)
				snprintf(g_seen[g_nseen++].path, sizeof(g_seen[0].path), "%s", name);
			if (i < 32)
				g_seen[i].mask |= m->mask;
		}
	}
}

static unsigned long long seen_mask(const char *name)
{
	for (int i = 0; i < g_nseen; i++)
		if (strcmp(g_seen[i].path, name) == 0)
			return g_seen[i].mask;
	return 0;
}

static void touch(const char *p, int flags)
{
	int fd = open(p, flags | O_CLOEXEC, 0644);
	CHECK(fd >= 0, "open %s: %s", p, strerror(errno));
	if (fd >= 0 && (flags & O_ACCMODE) != O_RDONLY)
		CHECK(write(fd, "x", 1) == 1, "write %s", p);
	if (fd >= 0)
		close(fd);
}

int main(int argc, char **argv)
{
	init(argc, argv);
	SETUP(mkdir("d", 0755) == 0 && mkdir("mnt", 0755) == 0, "mkdir");
	SETUP(mount("rcr-fan", "mnt", "tmpfs", 0, "size=1m") == 0, "mount tmpfs");
	int fd = open("d/f", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	SETUP(fd >= 0 && close(fd) == 0, "create d/f");
	fd = open("d/g", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	SETUP(fd >= 0 && close(fd) == 0, "create d/g");
	int fan = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY);
	SETUP(fan >= 0, "fanotify_init");
	SETUP(fanotify_mark(fan, FAN_MARK_ADD, FAN_MODIFY | FAN_CLOSE_WRITE, AT_FDCWD, "d/f") == 0, "mark d/f");
	SETUP(fanotify_mark(fan, FAN_MARK_ADD, FAN_OPEN | FAN_EVENT_ON_CHILD, AT_FDCWD, "d") == 0, "mark d");
	SETUP(fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY, FAN_OPEN, AT_FDCWD, "d/g") == 0,
	      "ignore d/g");
	SETUP(fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_OPEN, AT_FDCWD, "mnt") == 0, "mark mnt");
	drain(fan);
	g_nseen = 0;

	install_term();
	ready();
	wait_term();

	int fl = fcntl(fan, F_GETFL), fdf = fcntl(fan, F_GETFD);
	CHECK((fl & O_NONBLOCK) && fdf == 0, "fanotify fd: flags %#x fd flags %#x", fl, fdf);
	char ev[256];
	ssize_t n = read(fan, ev, sizeof(ev));
	CHECK(n < 0 && errno == EAGAIN, "no event expected before any access, read returned %zd", n);

	touch("d/f", O_WRONLY | O_APPEND);
	touch("d/g", O_WRONLY | O_APPEND);
	touch("d/h", O_WRONLY | O_CREAT);
	touch("mnt/x", O_WRONLY | O_CREAT);
	drain(fan);
	unsigned long long f = seen_mask("d/f"), g = seen_mask("d/g"), h = seen_mask("d/h"), x = seen_mask("mnt/x");
	CHECK((f & (FAN_OPEN | FAN_MODIFY | FAN_CLOSE_WRITE)) == (FAN_OPEN | FAN_MODIFY | FAN_CLOSE_WRITE),
	      "d/f: expected open, modify and close-write events, got mask %#llx", f);
	CHECK(g == 0, "d/g: its opens are ignored, got mask %#llx", g);
	CHECK(h & FAN_OPEN, "d/h: expected an open event (child of d), got mask %#llx", h);
	CHECK(x & FAN_OPEN, "mnt/x: expected an open event (mount mark), got mask %#llx", x);
	for (int i = 0; i < g_nseen; i++)
		CHECK(strcmp(g_seen[i].path, "d/f") == 0 || strcmp(g_seen[i].path, "d/h") == 0 || strcmp(g_seen[i].path, "mnt/x") == 0,
		      "unexpected event on %s (mask %#llx)", g_seen[i].path, g_seen[i].mask);
	close(fan);
	CHECK(umount2("mnt", MNT_DETACH) == 0, "umount mnt: %s", strerror(errno));
	return finish();
}
