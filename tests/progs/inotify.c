/* inotify: watches with their masks and watch descriptors (1, 3 and 4: wd 2 was removed before the
 * dump, so restore must skip it; and 505, after 500 watches added and removed), in a directory of this
 * test only.
 * After restore, from inside: the wds and masks in fdinfo; adding a watch on a watched directory gives
 * its wd back; creating a file in a watched directory and writing to a watched file report events
 * with the right wds. */
#include "common.h"
#include <sys/inotify.h>
#include <sys/stat.h>

static int wd_mask(int fd, int wd, unsigned int *mask)
{
	char p[64], line[512];
	snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(p, "re");
	if (!f)
		return -1;
	int ret = -1, w;
	unsigned int m;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "inotify wd:%x %*s %*s mask:%x", &w, &m) == 2 && w == wd) {
			*mask = m;
			ret = 0;
		}
	fclose(f);
	return ret;
}

/* Reads one event; returns its wd (-1: none) and fills mask and name. */
static int next_event(int fd, unsigned int *mask, char *name, size_t len)
{
	static char buf[4096];
	static ssize_t have, off;
	if (off >= have) {
		have = read(fd, buf, sizeof(buf));
		off = 0;
		if (have <= 0) {
			have = 0;
			return -1;
		}
	}
	struct inotify_event *e = (struct inotify_event *)(buf + off);
	off += sizeof(*e) + e->len;
	*mask = e->mask;
	snprintf(name, len, "%s", e->len ? e->name : "");
	return e->wd;
}

int main(int argc, char **argv)
{
	init(argc, argv);
	SETUP(mkdir("w1", 0755) == 0 && mkdir("w2", 0755) == 0 && mkdir("w3", 0755) == 0, "mkdir");
	int tf = open("w2/file", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	SETUP(tf >= 0, "create w2/file");
	close(tf);
	int in = inotify_init1(IN_NONBLOCK);
	SETUP(in >= 0, "inotify_init1");
	int w1 = inotify_add_watch(in, "w1", IN_CREATE | IN_DELETE);
	int wx = inotify_add_watch(in, "w2", IN_ALL_EVENTS);
	SETUP(w1 == 1 && wx == 2 && inotify_rm_watch(in, wx) == 0, "watches 1 and 2");
	int wf = inotify_add_watch(in, "w2/file", IN_MODIFY);
	int w2 = inotify_add_watch(in, "w2", IN_CREATE | IN_ONLYDIR);
	SETUP(wf == 3 && w2 == 4, "watches 3 and 4");
	for (int i = 0; i < 500; i++) {
		int w = inotify_add_watch(in, "w3", IN_ALL_EVENTS);
		SETUP(w == 5 + i && inotify_rm_watch(in, w) == 0, "stepping watches");
	}
	int w3 = inotify_add_watch(in, "w3", IN_DELETE);
	SETUP(w3 == 505, "watch 505");
	int tf3 = open("w3/doomed", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	SETUP(tf3 >= 0 && close(tf3) == 0, "create w3/doomed");
	char buf[4096];
	while (read(in, buf, sizeof(buf)) > 0)
		;

	install_term();
	ready();
	wait_term();

	unsigned int m = 0;
	CHECK(wd_mask(in, 1, &m) == 0 && m == (IN_CREATE | IN_DELETE), "wd 1: mask %#x", m);
	CHECK(wd_mask(in, 2, &m) < 0, "wd 2 was removed before the dump but is back");
	CHECK(wd_mask(in, 3, &m) == 0 && m == IN_MODIFY, "wd 3: mask %#x", m);
	m = 0;
	CHECK(wd_mask(in, 4, &m) == 0 && (m & IN_CREATE), "wd 4: mask %#x", m);
	CHECK(wd_mask(in, 505, &m) == 0 && m == IN_DELETE, "wd 505: mask %#x", m);
	ssize_t n = read(in, buf, sizeof(buf));
	CHECK(n < 0 && errno == EAGAIN, "no event expected before any change, read returned %zd", n);
	CHECK(fcntl(in, F_GETFL) & O_NONBLOCK, "inotify lost O_NONBLOCK");
	int again = inotify_add_watch(in, "w1", IN_CREATE | IN_DELETE);
	CHECK(again == w1, "adding a watch on w1 again: expected its wd %d got %d", w1, again);

	int nf = open("w1/new", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	CHECK(nf >= 0, "create w1/new");
	close(nf);
	tf = open("w2/file", O_WRONLY | O_APPEND | O_CLOEXEC);
	CHECK(tf >= 0 && write(tf, "x", 1) == 1, "write w2/file");
	close(tf);
	nf = open("w2/other", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	close(nf);
	CHECK(unlink("w3/doomed") == 0, "unlink w3/doomed");

	int seen_create = 0, seen_modify = 0, seen_create2 = 0, seen_delete = 0;
	char name[256];
	for (int i = 0; i < 20; i++) {
		int wd = next_event(in, &m, name, sizeof(name));
		if (wd < 0)
			break;
		if (wd == w1 && (m & IN_CREATE) && strcmp(name, "new") == 0)
			seen_create++;
		else if (wd == wf && (m & IN_MODIFY))
			seen_modify++;
		else if (wd == w2 && (m & IN_CREATE) && strcmp(name, "other") == 0)
			seen_create2++;
		else if (wd == w3 && (m & IN_DELETE) && strcmp(name, "doomed") == 0)
			seen_delete++;
		else
			failf("unexpected event wd %d mask %#x name '%s'", wd, m, name);
	}
	CHECK(seen_create == 1, "IN_CREATE of w1/new on wd %d: seen %d times", w1, seen_create);
	CHECK(seen_modify == 1, "IN_MODIFY of w2/file on wd %d: seen %d times", wf, seen_modify);
	CHECK(seen_create2 == 1, "IN_CREATE of w2/other on wd %d: seen %d times", w2, seen_create2);
	CHECK(seen_delete == 1, "IN_DELETE of w3/doomed on wd %d: seen %d times", w3, seen_delete);
	return finish();
}
