/* FIFOs opened by path, memfd fds and a /dev/shm file.
 * FIFO A (in the test dir): bytes in flight, a reader (O_RDONLY|O_NONBLOCK) and a writer; FIFO B opened
 * O_RDWR with a 64 KiB buffer. memfd "rcr-memfd-fd": data at 0 and at 1 MiB (a hole between), sealed
 * against shrinking, fd 30 at offset 5, fd 31 a dup (shared offset), fd 32 a second open file
 * description (O_RDONLY, offset 3), and a shared mapping of it. /dev/shm/rcr-<pid>: data, offset, mapped.
 * After restore: links, flags, offsets, data, seals, the dup still shares its offset, the mapping and
 * the fd still share the memfd's pages, the FIFOs still carry data. */
#include "common.h"
#include <libgen.h>
#include <sys/mman.h>
#include <sys/stat.h>

static void check_link(int fd, const char *want)
{
	char lp[64], link[600];
	snprintf(lp, sizeof(lp), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(lp, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	CHECK(strcmp(link, want) == 0, "fd %d: link '%s', expected '%s'", fd, link, want);
}

int main(int argc, char **argv)
{
	init(argc, argv);
	install_term();
	char tmp[512], dir[512], fa[600], fb[600], shm[128];
	snprintf(tmp, sizeof(tmp), "%s", g_out);
	snprintf(dir, sizeof(dir), "%s", dirname(tmp));
	snprintf(fa, sizeof(fa), "%s/fifo-a", dir);
	snprintf(fb, sizeof(fb), "%s/fifo-b", dir);
	snprintf(shm, sizeof(shm), "/dev/shm/rcr-test-%d", getpid());

	/* FIFOs */
	SETUP(mkfifo(fa, 0640) == 0 && mkfifo(fb, 0600) == 0, "mkfifo");
	int ra = open(fa, O_RDONLY | O_NONBLOCK);
	SETUP(ra >= 0 && dup2(ra, 20) == 20 && close(ra) == 0, "fifo a reader");
	int wa = open(fa, O_WRONLY);
	SETUP(wa >= 0 && dup2(wa, 21) == 21 && close(wa) == 0, "fifo a writer");
	SETUP(write(21, "fifo-flying", 11) == 11, "fifo a write");
	int rb = open(fb, O_RDWR);
	SETUP(rb >= 0 && dup2(rb, 22) == 22 && close(rb) == 0, "fifo b");
	SETUP(fcntl(22, F_SETPIPE_SZ, 65536) >= 65536, "fifo b size");
	SETUP(write(22, "b-bytes", 7) == 7, "fifo b write");

	/* memfd */
	int m = memfd_create("rcr-memfd-fd", MFD_ALLOW_SEALING);
	SETUP(m >= 0 && dup2(m, 30) == 30 && close(m) == 0, "memfd");
	SETUP(write(30, "hello memfd", 11) == 11, "memfd write");
	SETUP(pwrite(30, "far", 3, 1 << 20) == 3, "memfd write far");
	SETUP(fcntl(30, F_ADD_SEALS, F_SEAL_SHRINK) == 0, "seal");
	SETUP(lseek(30, 5, SEEK_SET) == 5, "seek");
	SETUP(dup2(30, 31) == 31, "dup");
	int o = open("/proc/self/fd/30", O_RDONLY);
	SETUP(o >= 0 && dup2(o, 32) == 32 && close(o) == 0, "second ofd");
	SETUP(lseek(32, 3, SEEK_SET) == 3, "seek 32");
	char *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, 30, 0);
	SETUP(map != MAP_FAILED, "mmap memfd");

	/* /dev/shm */
	int s = open(shm, O_RDWR | O_CREAT | O_EXCL, 0600);
	SETUP(s >= 0 && dup2(s, 40) == 40 && close(s) == 0, "shm open");
	SETUP(write(40, "shm-data-0123", 13) == 13 && ftruncate(40, 8192) == 0, "shm write");
	SETUP(lseek(40, 4, SEEK_SET) == 4, "shm seek");
	char *smap = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, 40, 0);
	SETUP(smap != MAP_FAILED, "mmap shm");

	ready();
	wait_term();

	/* FIFOs */
	check_link(20, fa);
	check_link(21, fa);
	check_link(22, fb);
	CHECK((fcntl(20, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) == (O_RDONLY | O_NONBLOCK), "fifo a reader flags %#x", fcntl(20, F_GETFL));
	CHECK((fcntl(21, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) == O_WRONLY, "fifo a writer flags %#x", fcntl(21, F_GETFL));
	CHECK((fcntl(22, F_GETFL) & O_ACCMODE) == O_RDWR, "fifo b flags %#x", fcntl(22, F_GETFL));
	char buf[64] = { 0 };
	ssize_t n = read(20, buf, sizeof(buf) - 1);
	CHECK(n == 11 && memcmp(buf, "fifo-flying", 11) == 0, "fifo a: read %zd '%s'", n, n > 0 ? buf : "");
	n = read(20, buf, sizeof(buf));
	CHECK(n < 0 && errno == EAGAIN, "fifo a: expected EAGAIN after the data, got %zd", n);
	CHECK(write(21, "z", 1) == 1 && read(20, buf, 1) == 1 && buf[0] == 'z', "fifo a still connects writer and reader");
	CHECK(fcntl(22, F_GETPIPE_SZ) == 65536, "fifo b size %d", fcntl(22, F_GETPIPE_SZ));
	memset(buf, 0, sizeof(buf));
	n = read(22, buf, 7);
	CHECK(n == 7 && memcmp(buf, "b-bytes", 7) == 0, "fifo b: read %zd '%s'", n, n > 0 ? buf : "");
	struct stat st;
	CHECK(stat(fa, &st) == 0 && S_ISFIFO(st.st_mode) && (st.st_mode & 0777) == 0640, "fifo a on disk: mode %o", st.st_mode);

	/* memfd */
	check_link(30, "/memfd:rcr-memfd-fd (deleted)");
	check_link(32, "/memfd:rcr-memfd-fd (deleted)");
	CHECK(lseek(30, 0, SEEK_CUR) == 5, "memfd fd 30 offset %ld", (long)lseek(30, 0, SEEK_CUR));
	CHECK(lseek(32, 0, SEEK_CUR) == 3, "memfd fd 32 offset %ld", (long)lseek(32, 0, SEEK_CUR));
	CHECK(read(31, buf, 1) == 1 && buf[0] == ' ' && lseek(30, 0, SEEK_CUR) == 6, "dup shares the offset");
	CHECK((fcntl(32, F_GETFL) & O_ACCMODE) == O_RDONLY, "memfd fd 32 flags %#x", fcntl(32, F_GETFL));
	CHECK(fcntl(30, F_GET_SEALS) == F_SEAL_SHRINK, "memfd seals %#x", fcntl(30, F_GET_SEALS));
	CHECK(fstat(30, &st) == 0 && st.st_size == (1 << 20) + 3, "memfd size %ld", (long)st.st_size);
	memset(buf, 0, sizeof(buf));
	CHECK(pread(30, buf, 11, 0) == 11 && memcmp(buf, "hello memfd", 11) == 0, "memfd data '%s'", buf);
	CHECK(pread(30, buf, 3, 1 << 20) == 3 && memcmp(buf, "far", 3) == 0, "memfd far data");
	CHECK(lseek(30, 4096, SEEK_DATA) == 1 << 20, "memfd hole kept: next data at %ld", (long)lseek(30, 4096, SEEK_DATA));
	CHECK(memcmp(map, "hello memfd", 11) == 0, "memfd mapping content");
	CHECK(pwrite(30, "HELLO", 5, 0) == 5 && memcmp(map, "HELLO", 5) == 0, "the mapping and fd 30 share pages");
	CHECK(ftruncate(30, 10) < 0 && errno == EPERM, "the shrink seal holds");

	/* /dev/shm */
	check_link(40, shm);
	CHECK(lseek(40, 0, SEEK_CUR) == 4, "shm offset %ld", (long)lseek(40, 0, SEEK_CUR));
	CHECK(memcmp(smap, "shm-data-0123", 13) == 0, "shm mapping content");
	CHECK(pwrite(40, "SHM", 3, 0) == 3 && memcmp(smap, "SHM", 3) == 0, "shm mapping and fd share pages");
	unlink(shm);
	unlink(fa);
	unlink(fb);
	return finish();
}
