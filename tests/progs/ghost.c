/* Deleted-but-open ("ghost") files, /proc files of the process itself, and file locks.
 *
 * ghost OUTFILE MODE [DIR]   (files are created in DIR, default the current directory)
 *   open     a deleted file open twice (O_RDWR at an offset, O_WRONLY|O_APPEND), mode 0640: content,
 *            flags, offsets, mode and nlink 0 come back; both fds are the same inode.
 *   map      a deleted file open and mapped MAP_SHARED: the mapping and the fd are one inode after
 *            restore (a write through one shows in the other), content identical.
 *   sparse   an 8 MiB deleted file of 1024 chunks: 4 KiB of data then a 4 KiB hole (written so).
 *   punch    the same layout, made by writing 8 MiB and punching holes with fallocate.
 *            Both: the data, the SEEK_DATA/SEEK_HOLE layout and st_blocks are the same after restore.
 *   replaced a file open, unlinked, and another file created at its path: the fd reads the deleted
 *            content, the path still holds the new file.
 *   proc     /proc/self/status and /proc/self/stat open (offset 0 and past the start): after restore
 *            they show the restored process's own, live data (its new name, its pid).
 *   locks    flock, POSIX (range 10-19) and OFD locks held: after restore a child process can take
 *            none of them, but can take the POSIX range next to the held one.
 *   locks_shared  the same with the fd table shared with a child made with clone(CLONE_FILES):
 *            POSIX and flock locks taken by the parent are held after restore.
 *   exe      runs from a copy of itself that it deletes: the executable (and its mappings) come back
 *            from the checkpoint; /proc/self/exe still names the deleted copy.
 *   linked   a file open whose name was unlinked while another hard link remains: refused without
 *            --link-remap; with it, the fd is that same inode after restore and no link is left over.
 *   plain    a file open at its path (the harness replaces it with a directory before restoring).
 */
#include "common.h"
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define SPARSE_CHUNKS 1024
#define CHUNK 4096

static char g_path[512], g_path2[512], g_path3[512];
static char g_buf[1 << 16];

static void pattern(unsigned char *p, size_t len, size_t off, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)((off + i) * 31 + seed + ((off + i) >> 12));
}

static void check_content(int fd, size_t len, unsigned seed, const char *what)
{
	unsigned char want[4096], got[4096];
	for (size_t off = 0; off < len; off += sizeof(got)) {
		size_t n = len - off < sizeof(got) ? len - off : sizeof(got);
		ssize_t r = pread(fd, got, n, off);
		if (r != (ssize_t)n) {
			failf("%s: pread at %zu gave %zd: %s", what, off, r, strerror(errno));
			return;
		}
		pattern(want, n, off, seed);
		if (memcmp(want, got, n) != 0) {
			failf("%s: content differs in the 4 KiB at %zu", what, off);
			return;
		}
	}
}

static int nlink_of(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 ? (int)st.st_nlink : -1;
}

/* The data extents of fd as "off+len," text, for comparing layouts. */
static void layout(int fd, off_t size, char *out, size_t cap)
{
	size_t n = 0;
	off_t off = 0;
	out[0] = 0;
	while (off < size) {
		off_t d = lseek(fd, off, SEEK_DATA);
		if (d < 0)
			break;
		off_t h = lseek(fd, d, SEEK_HOLE);
		if (h < 0)
			break;
		int w = snprintf(out + n, cap - n, "%lld+%lld,", (long long)d, (long long)(h - d));
		if (w < 0 || (size_t)w >= cap - n)
			break;
		n += w;
		off = h;
	}
}

static void write_all(int fd, const void *p, size_t len, off_t off)
{
	SETUP(pwrite(fd, p, len, off) == (ssize_t)len, "pwrite");
}

static int mode_open(void)
{
	const size_t len = 10000;
	int fd = open(g_path, O_RDWR | O_CREAT | O_EXCL, 0640);
	SETUP(fd >= 0, "create");
	pattern((unsigned char *)g_buf, len, 0, 7);
	write_all(fd, g_buf, len, 0);
	SETUP(lseek(fd, 1234, SEEK_SET) == 1234, "lseek");
	int fd2 = open(g_path, O_WRONLY | O_APPEND);
	SETUP(fd2 >= 0, "open append");
	SETUP(fchmod(fd, 0640) == 0, "fchmod");
	SETUP(unlink(g_path) == 0, "unlink");
	install_term();
	ready();
	wait_term();

	check_content(fd, len, 7, "the deleted file");
	CHECK(lseek(fd, 0, SEEK_CUR) == 1234, "offset %lld, expected 1234", (long long)lseek(fd, 0, SEEK_CUR));
	int fl = fcntl(fd, F_GETFL), fl2 = fcntl(fd2, F_GETFL);
	CHECK((fl & O_ACCMODE) == O_RDWR && !(fl & O_APPEND), "fd flags %#o", fl);
	CHECK((fl2 & O_ACCMODE) == O_WRONLY && (fl2 & O_APPEND), "append fd flags %#o", fl2);
	struct stat a, b;
	SETUP(fstat(fd, &a) == 0 && fstat(fd2, &b) == 0, "fstat");
	CHECK(a.st_nlink == 0, "nlink %d, expected 0 (deleted)", (int)a.st_nlink);
	CHECK((a.st_mode & 07777) == 0640, "mode %o, expected 640", a.st_mode & 07777);
	CHECK(a.st_size == (off_t)len, "size %lld", (long long)a.st_size);
	CHECK(a.st_ino == b.st_ino && a.st_dev == b.st_dev, "the two fds are different files after restore");
	/* Appending through fd2 grows the file fd sees: one inode. */
	CHECK(write(fd2, "xyz", 3) == 3, "append: %s", strerror(errno));
	char t[3];
	CHECK(pread(fd, t, 3, len) == 3 && memcmp(t, "xyz", 3) == 0, "append through fd2 not seen through fd");
	char me[64], link[600], want[600];
	snprintf(me, sizeof(me), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(me, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	snprintf(want, sizeof(want), "%s (deleted)", g_path);
	CHECK(strcmp(link, want) == 0, "fd link is '%s', expected '%s'", link, want);
	CHECK(access(g_path, F_OK) != 0, "%s exists after restore: the deleted file was left behind", g_path);
	return finish();
}

static int mode_map(void)
{
	const size_t len = 3 * 4096 + 100;
	int fd = open(g_path, O_RDWR | O_CREAT | O_EXCL, 0600);
	SETUP(fd >= 0, "create");
	pattern((unsigned char *)g_buf, len, 0, 3);
	write_all(fd, g_buf, len, 0);
	unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	SETUP(m != MAP_FAILED, "mmap");
	/* A second, read-only private mapping of the same deleted file. */
	unsigned char *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 4096);
	SETUP(p != MAP_FAILED, "mmap private");
	SETUP(unlink(g_path) == 0, "unlink");
	install_term();
	ready();
	wait_term();

	check_content(fd, len, 3, "the deleted file");
	unsigned char want[4096];
	pattern(want, 4096, 0, 3);
	CHECK(memcmp(m, want, 4096) == 0, "shared mapping differs");
	pattern(want, 4096, 4096, 3);
	CHECK(memcmp(p, want, 4096) == 0, "private mapping differs");
	m[5] = 0xee;
	unsigned char c = 0;
	CHECK(pread(fd, &c, 1, 5) == 1 && c == 0xee, "write through the mapping not seen through the fd (%#x)", c);
	SETUP(pwrite(fd, "Q", 1, 4096 * 2 + 7) == 1, "pwrite");
	CHECK(m[4096 * 2 + 7] == 'Q', "write through the fd not seen in the mapping");
	CHECK(nlink_of(fd) == 0, "nlink %d, expected 0", nlink_of(fd));
	CHECK(access(g_path, F_OK) != 0, "%s exists after restore", g_path);
	return finish();
}

static int mode_sparse(int punch)
{
	const off_t size = (off_t)SPARSE_CHUNKS * 2 * CHUNK;
	int fd = open(g_path, O_RDWR | O_CREAT | O_EXCL, 0600);
	SETUP(fd >= 0, "create");
	unsigned char chunk[CHUNK];
	if (punch) {
		for (off_t off = 0; off < size; off += CHUNK) {
			pattern(chunk, CHUNK, off, 11);
			write_all(fd, chunk, CHUNK, off);
		}
		SETUP(fsync(fd) == 0, "fsync");
		for (int i = 0; i < SPARSE_CHUNKS; i++)
			SETUP(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)i * 2 * CHUNK + CHUNK, CHUNK) == 0, "punch");
	} else {
		for (int i = 0; i < SPARSE_CHUNKS; i++) {
			off_t off = (off_t)i * 2 * CHUNK;
			pattern(chunk, CHUNK, off, 11);
			write_all(fd, chunk, CHUNK, off);
		}
		SETUP(ftruncate(fd, size) == 0, "ftruncate");
	}
	SETUP(fsync(fd) == 0, "fsync");
	static char before[64 << 10], after[64 << 10];
	layout(fd, size, before, sizeof(before));
	struct stat st0;
	SETUP(fstat(fd, &st0) == 0, "fstat");
	SETUP(lseek(fd, 4096 * 3 + 5, SEEK_SET) > 0, "lseek");
	SETUP(unlink(g_path) == 0, "unlink");
	out_line("blocks %lld", (long long)st0.st_blocks);
	install_term();
	ready();
	wait_term();

	struct stat st;
	SETUP(fstat(fd, &st) == 0, "fstat");
	CHECK(st.st_size == size, "size %lld, expected %lld", (long long)st.st_size, (long long)size);
	CHECK(st.st_blocks == st0.st_blocks, "st_blocks %lld after restore, %lld before", (long long)st.st_blocks, (long long)st0.st_blocks);
	CHECK(st.st_nlink == 0, "nlink %d", (int)st.st_nlink);
	CHECK(lseek(fd, 0, SEEK_CUR) == 4096 * 3 + 5, "offset %lld", (long long)lseek(fd, 0, SEEK_CUR));
	layout(fd, size, after, sizeof(after));
	CHECK(strcmp(before, after) == 0, "data layout differs: %.200s... after restore, %.200s... before", after, before);
	unsigned char got[CHUNK], zero[CHUNK];
	memset(zero, 0, sizeof(zero));
	for (int i = 0; i < SPARSE_CHUNKS; i++) {
		off_t off = (off_t)i * 2 * CHUNK;
		pattern(chunk, CHUNK, off, 11);
		if (pread(fd, got, CHUNK, off) != CHUNK || memcmp(got, chunk, CHUNK) != 0) {
			failf("data chunk %d differs", i);
			break;
		}
		if (pread(fd, got, CHUNK, off + CHUNK) != CHUNK || memcmp(got, zero, CHUNK) != 0) {
			failf("hole after chunk %d is not zero", i);
			break;
		}
	}
	return finish();
}

static int mode_replaced(void)
{
	int fd = open(g_path, O_RDWR | O_CREAT | O_EXCL, 0600);
	SETUP(fd >= 0, "create");
	SETUP(write(fd, "the OLD content", 15) == 15, "write");
	SETUP(unlink(g_path) == 0, "unlink");
	int nfd = open(g_path, O_RDWR | O_CREAT | O_EXCL, 0600);
	SETUP(nfd >= 0, "create the replacement");
	SETUP(write(nfd, "NEW", 3) == 3, "write");
	close(nfd);
	install_term();
	ready();
	wait_term();

	char b[32] = {0};
	CHECK(pread(fd, b, sizeof(b) - 1, 0) == 15 && strcmp(b, "the OLD content") == 0, "fd reads '%s', expected the deleted file's", b);
	CHECK(lseek(fd, 0, SEEK_CUR) == 15, "offset %lld", (long long)lseek(fd, 0, SEEK_CUR));
	CHECK(nlink_of(fd) == 0, "nlink %d: the fd is not the deleted file", nlink_of(fd));
	int pfd = open(g_path, O_RDONLY);
	memset(b, 0, sizeof(b));
	CHECK(pfd >= 0 && read(pfd, b, sizeof(b) - 1) == 3 && strcmp(b, "NEW") == 0, "the path holds '%s', expected the replacement", b);
	return finish();
}

static int read_all_at0(int fd, char *b, size_t cap)
{
	if (lseek(fd, 0, SEEK_SET) != 0)
		return -1;
	size_t n = 0;
	ssize_t r;
	while (n < cap - 1 && (r = read(fd, b + n, cap - 1 - n)) > 0)
		n += r;
	b[n] = 0;
	return (int)n;
}

static int mode_proc(void)
{
	int sfd = open("/proc/self/status", O_RDONLY);
	int tfd = open("/proc/self/stat", O_RDONLY);
	SETUP(sfd >= 0 && tfd >= 0, "open /proc/self files");
	char b[8192];
	SETUP(read(tfd, b, 5) == 5, "read stat");
	SETUP(prctl(PR_SET_NAME, "before-dump") == 0, "prctl");
	install_term();
	ready();
	wait_term();

	CHECK(lseek(tfd, 0, SEEK_CUR) == 5, "stat fd offset %lld, expected 5", (long long)lseek(tfd, 0, SEEK_CUR));
	SETUP(prctl(PR_SET_NAME, "after-restore") == 0, "prctl");
	char want[64];
	CHECK(read_all_at0(sfd, b, sizeof(b)) > 0, "reading the status fd: %s", strerror(errno));
	snprintf(want, sizeof(want), "\nPid:\t%d\n", getpid());
	CHECK(strstr(b, want) != NULL, "status fd does not show this process's pid %d", getpid());
	CHECK(strncmp(b, "Name:\tafter-restore\n", 20) == 0, "status fd does not show this process's own live name: %.40s", b);
	CHECK(read_all_at0(tfd, b, sizeof(b)) > 0, "reading the stat fd: %s", strerror(errno));
	snprintf(want, sizeof(want), "%d (after-restore) R ", getpid());
	CHECK(strncmp(b, want, strlen(want)) == 0, "stat fd shows '%.40s', expected '%s'", b, want);
	return finish();
}

static int mode_locks(void)
{
	int f = open(g_path, O_RDWR | O_CREAT | O_EXCL, 0600);
	int p = open(g_path2, O_RDWR | O_CREAT | O_EXCL, 0600);
	int o = open(g_path3, O_RDWR | O_CREAT | O_EXCL, 0600);
	SETUP(f >= 0 && p >= 0 && o >= 0, "create");
	SETUP(flock(f, LOCK_EX | LOCK_NB) == 0, "flock");
	struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 10, .l_len = 10};
	SETUP(fcntl(p, F_SETLK, &l) == 0, "F_SETLK");
	struct flock lo = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
	SETUP(fcntl(o, F_OFD_SETLK, &lo) == 0, "F_OFD_SETLK");
	/* A dup of the flock'ed fd: the lock is recorded once. */
	SETUP(dup2(f, 20) == 20, "dup2");
	install_term();
	ready();
	wait_term();

	pid_t parent = getpid();
	pid_t c = fork();
	SETUP(c >= 0, "fork");
	if (c == 0) {
		int bad = 0;
		int f2 = open(g_path, O_RDWR), p2 = open(g_path2, O_RDWR), o2 = open(g_path3, O_RDWR);
		if (f2 < 0 || p2 < 0 || o2 < 0)
			_exit(100);
		if (flock(f2, LOCK_SH | LOCK_NB) == 0 || errno != EWOULDBLOCK)
			bad |= 1;
		struct flock t = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 15, .l_len = 1};
		if (fcntl(p2, F_SETLK, &t) == 0)
			bad |= 2;
		struct flock g = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
		if (fcntl(p2, F_GETLK, &g) != 0 || g.l_type != F_WRLCK || g.l_pid != parent || g.l_start != 10 || g.l_len != 10)
			bad |= 4;
		struct flock free_ = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 20, .l_len = 5};
		if (fcntl(p2, F_SETLK, &free_) != 0)
			bad |= 8;
		struct flock ow = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
		if (fcntl(o2, F_OFD_SETLK, &ow) == 0)
			bad |= 16;
		struct flock orr = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
		if (fcntl(o2, F_OFD_SETLK, &orr) != 0)
			bad |= 32; /* a read lock is shared: taking one must work */
		_exit(bad);
	}
	int status = 0;
	SETUP(waitpid(c, &status, 0) == c, "waitpid");
	int bad = WIFEXITED(status) ? WEXITSTATUS(status) : 255;
	CHECK(!(bad & 1), "another process could take the flock'ed file's lock");
	CHECK(!(bad & 2), "another process could lock the POSIX-locked range");
	CHECK(!(bad & 4), "F_GETLK does not show this process's POSIX lock on 10-19");
	CHECK(!(bad & 8), "another process could not lock the free range 20-24");
	CHECK(!(bad & 16), "another process could write-lock the OFD read-locked file");
	CHECK(!(bad & 32), "another process could not share the OFD read lock");
	CHECK(bad == 0 || bad < 64, "checker child: status %#x", status);
	/* This process still holds its own locks: it can convert them. */
	CHECK(flock(f, LOCK_SH | LOCK_NB) == 0, "flock on the own fd failed: %s", strerror(errno));
	return finish();
}

static int mode_locks_shared(void)
{
	install_term();
	long child = syscall(SYS_clone, CLONE_FILES | SIGCHLD, 0, 0, 0, 0);
	SETUP(child >= 0, "clone(CLONE_FILES)");
	if (child == 0) {
		wait_term();
		_exit(0);
	}
	int f = open(g_path, O_RDWR | O_CREAT | O_EXCL, 0600);
	int p = open(g_path2, O_RDWR | O_CREAT | O_EXCL, 0600);
	SETUP(f >= 0 && p >= 0, "create");
	SETUP(flock(f, LOCK_EX | LOCK_NB) == 0, "flock");
	struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100};
	SETUP(fcntl(p, F_SETLK, &l) == 0, "F_SETLK");
	ready();
	wait_term();
	kill(child, SIGTERM);
	int st;
	CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st), "child status %#x", st);
	pid_t c = fork();
	SETUP(c >= 0, "fork");
	if (c == 0) {
		int bad = 0;
		int f2 = open(g_path, O_RDWR), p2 = open(g_path2, O_RDWR);
		if (f2 < 0 || p2 < 0)
			_exit(100);
		if (flock(f2, LOCK_EX | LOCK_NB) == 0)
			bad |= 1;
		struct flock t = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 50, .l_len = 1};
		if (fcntl(p2, F_SETLK, &t) == 0)
			bad |= 2;
		_exit(bad);
	}
	SETUP(waitpid(c, &st, 0) == c, "waitpid");
	int bad = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
	CHECK(!(bad & 1), "another process could take the flock'ed file's lock");
	CHECK(!(bad & 2), "another process could lock the POSIX-locked range");
	CHECK(bad < 4, "checker child: status %#x", st);
	return finish();
}

static int mode_exe(int argc, char **argv)
{
	char copy[600];
	snprintf(copy, sizeof(copy), "%s.exe", g_path);
	if (strcmp(argv[2], "exe") == 0) {
		/* Copy this program and run the copy (same pid), which deletes itself. */
		int in = open("/proc/self/exe", O_RDONLY), out = open(copy, O_WRONLY | O_CREAT | O_EXCL, 0755);
		SETUP(in >= 0 && out >= 0, "copy the executable");
		ssize_t n;
		while ((n = read(in, g_buf, sizeof(g_buf))) > 0)
			SETUP(write(out, g_buf, n) == n, "write the copy");
		close(in);
		close(out);
		char *args[] = {copy, argv[1], "exe2", argc > 3 ? argv[3] : ".", NULL};
		execv(copy, args);
		SETUP(0, "execv");
	}
	SETUP(unlink(copy) == 0, "unlink the running executable");
	install_term();
	ready();
	wait_term();
	char link[700], want[700];
	ssize_t n = readlink("/proc/self/exe", link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	snprintf(want, sizeof(want), "%s (deleted)", copy);
	CHECK(strcmp(link, want) == 0, "/proc/self/exe is '%s', expected '%s'", link, want);
	CHECK(access(copy, F_OK) != 0, "the deleted executable %s is back in the file system", copy);
	int e = open("/proc/self/exe", O_RDONLY);
	struct stat st;
	CHECK(e >= 0 && fstat(e, &st) == 0 && st.st_nlink == 0 && (st.st_mode & 0777) == 0755, "the executable is not a deleted 0755 file");
	return finish();
}

static int mode_linked(void)
{
	int fd = open(g_path, O_RDWR | O_CREAT | O_EXCL, 0600);
	SETUP(fd >= 0 && write(fd, "linked!", 7) == 7, "create");
	SETUP(link(g_path, g_path2) == 0, "link");
	SETUP(unlink(g_path) == 0, "unlink");
	install_term();
	ready();
	wait_term();
	struct stat a, b;
	SETUP(fstat(fd, &a) == 0, "fstat");
	CHECK(stat(g_path2, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev, "the fd is not the file still linked as %s", g_path2);
	CHECK(a.st_nlink == 1, "nlink %d, expected 1 (the dump's link_remap link left behind?)", (int)a.st_nlink);
	CHECK(lseek(fd, 0, SEEK_CUR) == 7, "offset %lld", (long long)lseek(fd, 0, SEEK_CUR));
	char buf[8] = {0};
	CHECK(pread(fd, buf, 7, 0) == 7 && strcmp(buf, "linked!") == 0, "content '%s'", buf);
	CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR, "flags %#o", fcntl(fd, F_GETFL));
	unlink(g_path2);
	return finish();
}

static int mode_plain(void)
{
	int w = open(g_path, O_RDWR | O_CREAT | O_EXCL, 0600);
	SETUP(w >= 0 && write(w, "abc", 3) == 3, "create");
	close(w);
	int fd = open(g_path, O_RDONLY);
	SETUP(fd >= 0, "open");
	install_term();
	ready();
	wait_term();
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 3, "not the file it had open");
	return finish();
}

int main(int argc, char **argv)
{
	init(argc, argv);
	const char *mode = argc > 2 ? argv[2] : "open";
	const char *dir = argc > 3 ? argv[3] : ".";
	char cwd[400];
	if (strcmp(dir, ".") == 0)
		dir = getcwd(cwd, sizeof(cwd));
	snprintf(g_path, sizeof(g_path), "%s/ghost-%d-a.dat", dir, getpid());
	snprintf(g_path2, sizeof(g_path2), "%s/ghost-%d-b.dat", dir, getpid());
	snprintf(g_path3, sizeof(g_path3), "%s/ghost-%d-c.dat", dir, getpid());
	if (strcmp(mode, "open") == 0)
		return mode_open();
	if (strcmp(mode, "map") == 0)
		return mode_map();
	if (strcmp(mode, "sparse") == 0)
		return mode_sparse(0);
	if (strcmp(mode, "punch") == 0)
		return mode_sparse(1);
	if (strcmp(mode, "replaced") == 0)
		return mode_replaced();
	if (strcmp(mode, "proc") == 0)
		return mode_proc();
	if (strcmp(mode, "locks") == 0)
		return mode_locks();
	if (strcmp(mode, "locks_shared") == 0)
		return mode_locks_shared();
	if (strcmp(mode, "exe") == 0 || strcmp(mode, "exe2") == 0)
		return mode_exe(argc, argv);
	if (strcmp(mode, "linked") == 0)
		return mode_linked();
	if (strcmp(mode, "plain") == 0)
		return mode_plain();
	out_line("FAIL: unknown mode %s", mode);
	return 2;
}
