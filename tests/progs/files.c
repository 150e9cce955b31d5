/* Open files: regular files opened O_RDONLY / O_WRONLY / O_RDWR at distinct offsets, O_APPEND,
 * O_CLOEXEC, O_NONBLOCK, a dup sharing the file description (and offset), a high fd number,
 * /dev/null, /dev/zero, /dev/urandom. After restore: same fd numbers and targets, F_GETFD,
 * F_GETFL (raw value), offsets; reading / writing continues at the offset; files unchanged. */
#include "common.h"
#include <libgen.h>
#include <limits.h>
#include <sys/stat.h>

#define DATA_LEN 65536

enum { F_RO, F_WO, F_RW, F_APP, F_CX, F_NB, F_DUP, F_HIGH, F_NULL, F_ZERO, F_URND, NF };

struct fdesc {
	int fd;                /* fixed number */
	const char *file;      /* name in the dir, or absolute device path */
	int flags;             /* open flags */
	off_t off;             /* offset set before the dump */
	int getfd, getfl;      /* recorded before the dump */
	char path[600];
} fds[NF] = {
	[F_RO] = { 10, "data.bin", O_RDONLY, 100 },
	[F_WO] = { 11, "wo.bin", O_WRONLY | O_CREAT, 2000 },
	[F_RW] = { 12, "data.bin", O_RDWR, 3000 },
	[F_APP] = { 13, "app.log", O_WRONLY | O_APPEND | O_CREAT, 0 },
	[F_CX] = { 14, "data.bin", O_RDONLY | O_CLOEXEC, 5000 },
	[F_NB] = { 15, "data.bin", O_RDONLY | O_NONBLOCK, 6000 },
	[F_DUP] = { 16, NULL, 0, 100 }, /* dup of F_RO */
	[F_HIGH] = { 200, "data.bin", O_RDONLY, 7000 },
	[F_NULL] = { 17, "/dev/null", O_WRONLY, 0 },
	[F_ZERO] = { 18, "/dev/zero", O_RDONLY, 0 },
	[F_URND] = { 19, "/dev/urandom", O_RDONLY | O_NONBLOCK, 0 },
};

static unsigned char data[DATA_LEN];

static void check_read(int i, off_t at, size_t n, const char *when)
{
	unsigned char buf[64];
	ssize_t r = read(fds[i].fd, buf, n);
	if (r != (ssize_t)n) {
		failf("%s: fd %d read %zu at %lld: returned %zd (%s)", when, fds[i].fd, n, (long long)at, r,
		      r < 0 ? strerror(errno) : "short");
		return;
	}
	CHECK(memcmp(buf, data + at, n) == 0, "%s: fd %d: read at offset %lld returned other bytes than the file's",
	      when, fds[i].fd, (long long)at);
}

int main(int argc, char **argv)
{
	init(argc, argv);
	char tmp[512], dir[512];
	snprintf(tmp, sizeof(tmp), "%s", g_out);
	snprintf(dir, sizeof(dir), "%s", dirname(tmp));
	for (int i = 0; i < DATA_LEN; i++)
		data[i] = (unsigned char)(i * 7 + i / 256 * 13 + 3);
	char dpath[600];
	snprintf(dpath, sizeof(dpath), "%s/data.bin", dir);
	int dfd = open(dpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	SETUP(dfd >= 0 && write(dfd, data, DATA_LEN) == DATA_LEN, "write data.bin");
	close(dfd);

	for (int i = 0; i < NF; i++) {
		struct fdesc *f = &fds[i];
		int fd;
		if (i == F_DUP) {
			fd = dup(fds[F_RO].fd);
			snprintf(f->path, sizeof(f->path), "%s", fds[F_RO].path);
			f->flags = fds[F_RO].flags;
		} else {
			if (f->file[0] == '/')
				snprintf(f->path, sizeof(f->path), "%s", f->file);
			else
				snprintf(f->path, sizeof(f->path), "%s/%s", dir, f->file);
			fd = open(f->path, f->flags, 0644);
		}
		SETUP(fd >= 0, f->path);
		if (fd != f->fd) {
			SETUP(dup3(fd, f->fd, f->flags & O_CLOEXEC) == f->fd, "dup3");
			close(fd);
		}
		if (i != F_DUP && f->off)
			SETUP(lseek(f->fd, f->off, SEEK_SET) == f->off, "lseek");
	}
	SETUP(write(fds[F_APP].fd, "abc", 3) == 3, "write app.log");
	fds[F_APP].off = 3;
	for (int i = 0; i < NF; i++) {
		fds[i].getfd = fcntl(fds[i].fd, F_GETFD);
		fds[i].getfl = fcntl(fds[i].fd, F_GETFL);
	}

	install_term();
	ready();
	wait_term();

	for (int i = 0; i < NF; i++) {
		struct fdesc *f = &fds[i];
		int getfd = fcntl(f->fd, F_GETFD), getfl = fcntl(f->fd, F_GETFL);
		if (getfd < 0) {
			failf("fd %d (%s): not open after restore: %s", f->fd, f->path, strerror(errno));
			continue;
		}
		CHECK(getfd == f->getfd, "fd %d (%s): F_GETFD expected %#x got %#x", f->fd, f->path, f->getfd, getfd);
		CHECK(!!(getfd & FD_CLOEXEC) == !!(f->flags & O_CLOEXEC), "fd %d: FD_CLOEXEC expected %d", f->fd,
		      !!(f->flags & O_CLOEXEC));
		CHECK(getfl == f->getfl, "fd %d (%s): F_GETFL expected %#x got %#x", f->fd, f->path, f->getfl, getfl);
		int want = f->flags & (O_ACCMODE | O_APPEND | O_NONBLOCK);
		CHECK((getfl & (O_ACCMODE | O_APPEND | O_NONBLOCK)) == want,
		      "fd %d (%s): access mode/O_APPEND/O_NONBLOCK expected %#x got %#x", f->fd, f->path, want,
		      getfl & (O_ACCMODE | O_APPEND | O_NONBLOCK));
		char link[PATH_MAX], lp[64];
		snprintf(lp, sizeof(lp), "/proc/self/fd/%d", f->fd);
		ssize_t n = readlink(lp, link, sizeof(link) - 1);
		link[n > 0 ? n : 0] = 0;
		CHECK(strcmp(link, f->path) == 0, "fd %d: target expected %s got %s", f->fd, f->path, link);
		if (f->file && f->file[0] != '/') {
			off_t off = lseek(f->fd, 0, SEEK_CUR);
			CHECK(off == f->off, "fd %d (%s): offset expected %lld got %lld", f->fd, f->path,
			      (long long)f->off, (long long)off);
		}
	}

	/* I/O continues at the offsets. fd 10 and its dup 16 share one offset. */
	check_read(F_RO, 100, 16, "O_RDONLY");
	off_t dup_off = lseek(fds[F_DUP].fd, 0, SEEK_CUR);
	CHECK(dup_off == 116, "dup of fd 10: shared offset expected 116 after reading 16 bytes via fd 10, got %lld",
	      (long long)dup_off);
	check_read(F_RW, 3000, 32, "O_RDWR");
	check_read(F_CX, 5000, 8, "O_CLOEXEC");
	check_read(F_NB, 6000, 8, "O_NONBLOCK");
	check_read(F_HIGH, 7000, 8, "fd 200");
	CHECK(write(fds[F_WO].fd, "XYZ", 3) == 3, "write O_WRONLY: %s", strerror(errno));
	CHECK(write(fds[F_APP].fd, "def", 3) == 3, "write O_APPEND: %s", strerror(errno));
	char buf[64];
	int cfd = open(fds[F_WO].path, O_RDONLY);
	memset(buf, 0, sizeof(buf));
	CHECK(cfd >= 0 && pread(cfd, buf, 3, 2000) == 3 && memcmp(buf, "XYZ", 3) == 0,
	      "wo.bin: write via fd 11 did not land at offset 2000");
	struct stat st;
	CHECK(fstat(cfd, &st) == 0 && st.st_size == 2003, "wo.bin: size expected 2003 got %lld", (long long)st.st_size);
	close(cfd);
	cfd = open(fds[F_APP].path, O_RDONLY);
	memset(buf, 0, sizeof(buf));
	CHECK(cfd >= 0 && read(cfd, buf, sizeof(buf)) == 6 && memcmp(buf, "abcdef", 6) == 0,
	      "app.log: expected 'abcdef' got '%s'", buf);
	close(cfd);
	CHECK(write(fds[F_NULL].fd, "x", 1) == 1, "/dev/null write: %s", strerror(errno));
	memset(buf, 1, sizeof(buf));
	CHECK(read(fds[F_ZERO].fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf), "/dev/zero read: %s", strerror(errno));
	for (size_t k = 0; k < sizeof(buf); k++)
		if (buf[k] != 0) {
			failf("/dev/zero returned a non-zero byte");
			break;
		}
	CHECK(read(fds[F_URND].fd, buf, 16) == 16, "/dev/urandom read: %s", strerror(errno));
	/* data.bin itself is unchanged. */
	static unsigned char now[DATA_LEN];
	cfd = open(dpath, O_RDONLY);
	CHECK(cfd >= 0 && read(cfd, now, DATA_LEN) == DATA_LEN && memcmp(now, data, DATA_LEN) == 0,
	      "data.bin changed");
	close(cfd);
	return finish();
}
