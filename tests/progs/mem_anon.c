/* Anonymous memory: heap (malloc, brk), private anonymous mappings with a position-dependent
 * pattern, a large sparse area (untouched pages must read back as zero), a stack array, .data/.bss.
 * `mem_anon OUTFILE [shared]`: with "shared", also a MAP_SHARED|MAP_ANONYMOUS area. */
#include "common.h"
#include <sys/mman.h>

#define PAGE 4096ul
#define LARGE (128ul << 20)
#define STACK_ARR (64 * 1024)

static uint64_t g_data[512] = { 1 }; /* .data */
static uint64_t g_bss[4096];         /* .bss */

struct area {
	void *p;
	size_t len;
	int prot;
	const char *name;
};

int main(int argc, char **argv)
{
	init(argc, argv);
	int shared = argc > 2 && strcmp(argv[2], "shared") == 0;
	unsigned char stack_arr[STACK_ARR];

	fill_pat(g_data, sizeof(g_data), 11);
	fill_pat(g_bss, sizeof(g_bss), 12);
	fill_pat(stack_arr, sizeof(stack_arr), 13);

	/* malloc: small (brk heap), medium, large (mmap'd by malloc). */
	size_t msz[] = { 100, 4000, 64 * 1024, 1 << 20, 3 << 20 };
	void *mp[5];
	for (int i = 0; i < 5; i++) {
		mp[i] = malloc(msz[i]);
		SETUP(mp[i] != NULL, "malloc");
		fill_pat(mp[i], msz[i], 100 + i);
	}

	/* brk: grow by 3 pages + 123 bytes, fill that; the program break must come back. */
	void *brk0 = sbrk(0);
	size_t brk_len = 3 * PAGE + 123;
	SETUP(sbrk(brk_len) != (void *)-1, "sbrk");
	void *brk1 = sbrk(0);
	fill_pat(brk0, brk_len, 20);

	/* Anonymous private mappings of several sizes and protections. */
	struct area a[] = {
		{ NULL, 1 * PAGE, PROT_READ | PROT_WRITE, "anon 1 page" },
		{ NULL, 7 * PAGE, PROT_READ | PROT_WRITE, "anon 7 pages" },
		{ NULL, 300 * PAGE, PROT_READ, "anon read-only" },
		{ NULL, 2 * 1024 * 1024 + 5 * PAGE, PROT_READ | PROT_WRITE | PROT_EXEC, "anon rwx" },
		{ NULL, 33 * PAGE, PROT_READ | PROT_WRITE, "anon shared" },
	};
	int na = shared ? 5 : 4;
	for (int i = 0; i < na; i++) {
		int flags = MAP_ANONYMOUS | (i == 4 ? MAP_SHARED : MAP_PRIVATE);
		a[i].p = mmap(NULL, a[i].len, PROT_READ | PROT_WRITE, flags, -1, 0);
		SETUP(a[i].p != MAP_FAILED, "mmap anon");
		fill_pat(a[i].p, a[i].len, 30 + i);
		if (a[i].prot != (PROT_READ | PROT_WRITE))
			SETUP(mprotect(a[i].p, a[i].len, a[i].prot) == 0, "mprotect");
	}

	/* Large area, only every 7th page touched (and one byte in page 1). */
	unsigned char *big = mmap(NULL, LARGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	SETUP(big != MAP_FAILED, "mmap large");
	for (size_t pg = 0; pg < LARGE / PAGE; pg += 7)
		fill_pat(big + pg * PAGE, PAGE, 50);
	big[PAGE + 100] = 0xA5;

	install_term();
	ready();
	wait_term();

	/* Check brk first: nothing below allocates. */
	void *brk_now = sbrk(0);
	CHECK(brk_now == brk1, "program break: expected %p got %p", brk1, brk_now);
	check_pat_report(brk0, brk_len, 20, "brk area");

	check_pat_report(g_data, sizeof(g_data), 11, ".data array");
	check_pat_report(g_bss, sizeof(g_bss), 12, ".bss array");
	check_pat_report(stack_arr, sizeof(stack_arr), 13, "stack array");
	for (int i = 0; i < 5; i++) {
		char name[64];
		snprintf(name, sizeof(name), "malloc(%zu)", msz[i]);
		check_pat_report(mp[i], msz[i], 100 + i, name);
	}
	for (int i = 0; i < na; i++) {
		check_pat_report(a[i].p, a[i].len, 30 + i, a[i].name);
		struct map_line m;
		if (find_map((unsigned long)a[i].p, &m) != 0) {
			failf("%s at %p: no longer in /proc/self/maps", a[i].name, a[i].p);
			continue;
		}
		char want[5] = { a[i].prot & PROT_READ ? 'r' : '-', a[i].prot & PROT_WRITE ? 'w' : '-',
				 a[i].prot & PROT_EXEC ? 'x' : '-', i == 4 ? 's' : 'p', 0 };
		CHECK(strcmp(m.perms, want) == 0, "%s at %p: perms expected %s got %s", a[i].name, a[i].p,
		      want, m.perms);
	}
	for (size_t pg = 0; pg < LARGE / PAGE; pg++) {
		unsigned char *p = big + pg * PAGE;
		if (pg % 7 == 0) {
			long off = check_pat(p, PAGE, 50);
			if (off >= 0) {
				failf("large area page %zu (touched): byte %ld differs", pg, off);
				break;
			}
		} else {
			size_t k;
			for (k = 0; k < PAGE && (p[k] == 0 || (pg == 1 && k == 100)); k++)
				;
			if (k < PAGE) {
				failf("large area page %zu (untouched): byte %zu expected 0x00 got 0x%02x", pg, k, p[k]);
				break;
			}
		}
	}
	CHECK(big[PAGE + 100] == 0xA5, "large area byte %lu: expected 0xa5 got 0x%02x", PAGE + 100,
	      big[PAGE + 100]);
	/* The area must still be writable. */
	big[PAGE] = 1;
	return finish();
}
