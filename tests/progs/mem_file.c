/* File mappings, protections and madvise flags.
 *  - MAP_PRIVATE file mapping written to: the private copy comes back, the file is unchanged;
 *  - MAP_SHARED file mapping written through: the file keeps the earlier writes and a new write
 *    through the mapping after restore reaches the file;
 *  - PROT_NONE guard region and an mprotect'd hole: same prot in /proc/self/maps;
 *  - MADV_DONTFORK / MADV_DONTDUMP / MADV_HUGEPAGE areas: VmFlags dc / dd / hg in smaps. */
#include "common.h"
#include <libgen.h>
#include <sys/mman.h>

#define PAGE 4096ul
#define NPAGES 4

static char g_dir[512];

/* File contents use the file offset as pattern base, so file and mapping compare directly. */
static int make_file(const char *name, uint64_t seed, char *path, size_t plen)
{
	snprintf(path, plen, "%s/%s", g_dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	SETUP(fd >= 0, "create data file");
	static unsigned char buf[NPAGES * PAGE];
	fill_pat_base(buf, sizeof(buf), seed, 0);
	SETUP(write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf), "write data file");
	return fd;
}

static void check_file_page(int fd, int pg, const char *what, uint64_t seed)
{
	static unsigned char got[PAGE];
	ssize_t n = pread(fd, got, PAGE, pg * PAGE);
	if (n != (ssize_t)PAGE) {
		failf("%s: pread page %d returned %zd", what, pg, n);
		return;
	}
	char name[256];
	snprintf(name, sizeof(name), "%s: file page %d", what, pg);
	check_pat_report_base(got, PAGE, seed, pg * PAGE, name);
}

static void check_map_page(const unsigned char *map, int pg, const char *what, uint64_t seed)
{
	char name[256];
	snprintf(name, sizeof(name), "%s: mapping page %d", what, pg);
	check_pat_report_base(map + pg * PAGE, PAGE, seed, pg * PAGE, name);
}

static void write_page(unsigned char *map, int pg, uint64_t seed)
{
	fill_pat_base(map + pg * PAGE, PAGE, seed, pg * PAGE);
}

static void check_prot(void *addr, size_t len, const char *want, const char *what)
{
	struct map_line m;
	if (find_map((unsigned long)addr, &m) != 0) {
		failf("%s at %p: not in /proc/self/maps", what, addr);
		return;
	}
	CHECK(strcmp(m.perms, want) == 0, "%s at %p: perms expected %s got %s", what, addr, want, m.perms);
	CHECK(m.start <= (unsigned long)addr && m.end >= (unsigned long)addr + len,
	      "%s: expected [%p, %p) inside one VMA, got VMA %lx-%lx", what, addr, (char *)addr + len,
	      m.start, m.end);
}

/* VmFlags of the smaps entry containing addr; returns 0 if found. */
static int vmflags(void *addr, char *flags, size_t len)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	if (!f)
		return -1;
	char line[512];
	int in = 0, ret = -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		char dash;
		if (sscanf(line, "%lx%c%lx ", &s, &dash, &e) == 3 && dash == '-') {
			in = (unsigned long)addr >= s && (unsigned long)addr < e;
			continue;
		}
		if (in && strncmp(line, "VmFlags:", 8) == 0) {
			snprintf(flags, len, "%s", line + 8);
			flags[strcspn(flags, "\n")] = 0;
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

static int has_flag(const char *flags, const char *fl)
{
	char padded[600];
	snprintf(padded, sizeof(padded), " %s ", flags);
	char want[8];
	snprintf(want, sizeof(want), " %s ", fl);
	return strstr(padded, want) != NULL;
}

static void check_vmflag(void *addr, const char *fl, const char *what)
{
	char flags[512];
	if (vmflags(addr, flags, sizeof(flags)) != 0) {
		failf("%s at %p: no smaps entry", what, addr);
		return;
	}
	CHECK(has_flag(flags, fl), "%s at %p: VmFlags expected to contain '%s', got '%s'", what, addr, fl, flags);
}

int main(int argc, char **argv)
{
	init(argc, argv);
	char tmp[512];
	snprintf(tmp, sizeof(tmp), "%s", g_out);
	snprintf(g_dir, sizeof(g_dir), "%s", dirname(tmp));

	/* Private file mapping: pages 0 and 2 get a private copy (seed 2), 1 and 3 stay file-backed. */
	char ppath[600], spath[600];
	int pfd = make_file("private.dat", 1, ppath, sizeof(ppath));
	unsigned char *pm = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, pfd, 0);
	SETUP(pm != MAP_FAILED, "mmap private file");
	write_page(pm, 0, 2);
	write_page(pm, 2, 2);

	/* Shared file mapping: page 1 written through before the dump. */
	int sfd = make_file("shared.dat", 3, spath, sizeof(spath));
	unsigned char *sm = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
	SETUP(sm != MAP_FAILED, "mmap shared file");
	write_page(sm, 1, 4);
	SETUP(msync(sm, NPAGES * PAGE, MS_SYNC) == 0, "msync");
	/* Keep the fds open: the files are checked through them with pread. */

	/* PROT_NONE guard region of 3 pages. */
	void *guard = mmap(NULL, 3 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	SETUP(guard != MAP_FAILED, "mmap guard");

	/* 8 RW pages with pages 3-4 PROT_NONE and page 6 read-only. */
	unsigned char *holed = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	SETUP(holed != MAP_FAILED, "mmap holed");
	fill_pat(holed, 8 * PAGE, 5);
	SETUP(mprotect(holed + 3 * PAGE, 2 * PAGE, PROT_NONE) == 0, "mprotect hole");
	SETUP(mprotect(holed + 6 * PAGE, PAGE, PROT_READ) == 0, "mprotect ro");

	/* madvise areas, each its own VMA, filled with a pattern. */
	size_t mlen = 16 * PAGE, hlen = 4ul << 20;
	unsigned char *dontfork = mmap(NULL, mlen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *dontdump = mmap(NULL, mlen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *huge_raw = mmap(NULL, hlen * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	SETUP(dontfork != MAP_FAILED && dontdump != MAP_FAILED && huge_raw != MAP_FAILED, "mmap madvise areas");
	unsigned char *huge = (unsigned char *)(((uintptr_t)huge_raw + (2ul << 20) - 1) & ~((2ul << 20) - 1));
	SETUP(madvise(dontfork, mlen, MADV_DONTFORK) == 0, "MADV_DONTFORK");
	SETUP(madvise(dontdump, mlen, MADV_DONTDUMP) == 0, "MADV_DONTDUMP");
	int huge_ok = madvise(huge, hlen, MADV_HUGEPAGE) == 0;
	fill_pat(dontfork, mlen, 6);
	fill_pat(dontdump, mlen, 7);
	fill_pat(huge, hlen, 8);

	/* Validate the setup itself, so that a wrong expectation cannot pass unnoticed. */
	check_prot(guard, 3 * PAGE, "---p", "setup: guard");
	check_prot(holed + 3 * PAGE, 2 * PAGE, "---p", "setup: hole");
	check_vmflag(dontfork, "dc", "setup: MADV_DONTFORK area");
	check_vmflag(dontdump, "dd", "setup: MADV_DONTDUMP area");
	if (huge_ok)
		check_vmflag(huge, "hg", "setup: MADV_HUGEPAGE area");
	if (g_fails)
		return finish();

	install_term();
	ready();
	wait_term();

	/* Private mapping: private copies and file-backed pages; file unchanged. */
	check_map_page(pm, 0, "private mapping (written)", 2);
	check_map_page(pm, 2, "private mapping (written)", 2);
	check_map_page(pm, 1, "private mapping (not written: file content)", 1);
	check_map_page(pm, 3, "private mapping (not written: file content)", 1);
	for (int pg = 0; pg < NPAGES; pg++)
		check_file_page(pfd, pg, "private.dat (must be unchanged)", 1);
	check_prot(pm, NPAGES * PAGE, "rw-p", "private file mapping");

	/* Shared mapping: earlier write is in the file and the mapping; a new write reaches the file. */
	check_map_page(sm, 1, "shared mapping (written before dump)", 4);
	check_file_page(sfd, 1, "shared.dat page written before dump", 4);
	check_file_page(sfd, 0, "shared.dat page never written", 3);
	write_page(sm, 3, 9);
	CHECK(msync(sm, NPAGES * PAGE, MS_SYNC) == 0, "msync after restore: %s", strerror(errno));
	check_file_page(sfd, 3, "shared.dat page written after restore", 9);
	check_prot(sm, NPAGES * PAGE, "rw-s", "shared file mapping");
	{
		struct map_line m;
		if (find_map((unsigned long)sm, &m) == 0)
			CHECK(strcmp(m.name, spath) == 0, "shared mapping file: expected %s got %s", spath, m.name);
		if (find_map((unsigned long)pm, &m) == 0)
			CHECK(strcmp(m.name, ppath) == 0, "private mapping file: expected %s got %s", ppath, m.name);
	}

	/* Protections. */
	check_prot(guard, 3 * PAGE, "---p", "PROT_NONE guard");
	check_prot(holed, 3 * PAGE, "rw-p", "holed area pages 0-2");
	check_prot(holed + 3 * PAGE, 2 * PAGE, "---p", "holed area hole (pages 3-4)");
	check_prot(holed + 5 * PAGE, PAGE, "rw-p", "holed area page 5");
	check_prot(holed + 6 * PAGE, PAGE, "r--p", "holed area page 6 (read-only)");
	check_prot(holed + 7 * PAGE, PAGE, "rw-p", "holed area page 7");
	/* fill_pat uses the address as base, so each part can be checked on its own. */
	check_pat_report(holed, 3 * PAGE, 5, "holed area pages 0-2");
	check_pat_report(holed + 5 * PAGE, 3 * PAGE, 5, "holed area pages 5-7");

	/* madvise flags and contents. */
	check_vmflag(dontfork, "dc", "MADV_DONTFORK area");
	check_vmflag(dontdump, "dd", "MADV_DONTDUMP area");
	if (huge_ok)
		check_vmflag(huge, "hg", "MADV_HUGEPAGE area");
	check_pat_report(dontfork, mlen, 6, "MADV_DONTFORK area");
	check_pat_report(dontdump, mlen, 7, "MADV_DONTDUMP area");
	check_pat_report(huge, hlen, 8, "MADV_HUGEPAGE area");
	return finish();
}
