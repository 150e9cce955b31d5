/* A "device" that belongs to its process, for the ABI-3 plugin test (plugins/test-abi3): fd 20 is a
 * memfd named "rcr-abi3-dev" of 256 MiB (argv[2] MiB) holding a pattern, never mapped, so that only the
 * plugin saves it. At restore the plugin streams it back and recreates it from inside the restored
 * task (memfd_create, copy, dup3, mmap all issued in the task); on SIGTERM this program checks that fd
 * 20 is such a memfd with the whole pattern and that the task has it mapped, its first words the
 * pattern's. */
#include "common.h"
#include <sys/mman.h>

#define CHUNK (1 << 20)

static uint64_t word(uint64_t i)
{
	return pat64(i * 8, 0xabcd3);
}

int main(int argc, char **argv)
{
	init(argc, argv);
	install_term();
	uint64_t mib = argc > 2 ? strtoull(argv[2], NULL, 10) : 256;
	uint64_t size = mib << 20;
	static uint64_t buf[CHUNK / 8];
	int fd = memfd_create("rcr-abi3-dev", MFD_CLOEXEC);
	SETUP(fd >= 0, "memfd_create");
	SETUP(ftruncate(fd, size) == 0, "ftruncate");
	for (uint64_t off = 0; off < size; off += CHUNK) {
		for (uint64_t i = 0; i < CHUNK / 8; i++)
			buf[i] = word(off / 8 + i);
		SETUP(pwrite(fd, buf, CHUNK, off) == CHUNK, "pwrite");
	}
	SETUP(dup2(fd, 20) == 20 && close(fd) == 0, "dup2 20");
	ready();
	wait_term();

	char link[256] = "";
	ssize_t n = readlink("/proc/self/fd/20", link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	CHECK(strncmp(link, "/memfd:rcr-abi3-dev", 19) == 0, "fd 20 is '%s', not the memfd rcr-abi3-dev", link);
	struct stat st;
	CHECK(fstat(20, &st) == 0 && (uint64_t)st.st_size == size, "fd 20 is %lld bytes, not %llu", (long long)st.st_size, (unsigned long long)size);
	uint64_t bad = 0, first_bad = 0;
	for (uint64_t off = 0; off < size && bad == 0; off += CHUNK) {
		if (pread(20, buf, CHUNK, off) != CHUNK) {
			failf("reading fd 20 at %llu: %s", (unsigned long long)off, strerror(errno));
			break;
		}
		for (uint64_t i = 0; i < CHUNK / 8; i++)
			if (buf[i] != word(off / 8 + i) && bad++ == 0)
				first_bad = off + i * 8;
	}
	CHECK(bad == 0, "fd 20 differs from its pattern from byte %llu", (unsigned long long)first_bad);
	/* The mapping the plugin made inside the task. */
	FILE *maps = fopen("/proc/self/maps", "re");
	SETUP(maps != NULL, "open maps");
	char line[512];
	unsigned long start = 0;
	while (fgets(line, sizeof(line), maps))
		if (strstr(line, "/memfd:rcr-abi3-dev")) {
			start = strtoul(line, NULL, 16);
			break;
		}
	fclose(maps);
	CHECK(start != 0, "no mapping of the memfd rcr-abi3-dev (the plugin maps it inside the task)");
	if (start) {
		const uint64_t *m = (const uint64_t *)start;
		CHECK(m[0] == word(0) && m[1] == word(1), "the mapping at %#lx does not show the device's contents", start);
	}
	return finish();
}
