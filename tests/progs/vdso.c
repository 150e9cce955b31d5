/* vDSO and vvar: the [vvar], [vvar_vclock] and [vdso] mappings stay at the same addresses
 * (AT_SYSINFO_EHDR too) and the vDSO clocks work after restore.
 * `vdso OUTFILE [loop]`: with "loop", clock_gettime runs in a tight loop until SIGTERM, so the
 * dump most likely catches the IP inside the vDSO; time must never go backwards. */
#include "common.h"
#include <sys/auxv.h>
#include <sys/time.h>

struct special {
	const char *name;
	unsigned long start, end;
};

static void read_specials(struct special *sp, int n)
{
	FILE *f = fopen("/proc/self/maps", "re");
	SETUP(f != NULL, "open /proc/self/maps");
	char line[512];
	for (int i = 0; i < n; i++)
		sp[i].start = sp[i].end = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		char name[256] = "";
		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %255s", &s, &e, name) < 2)
			continue;
		for (int i = 0; i < n; i++)
			if (strcmp(name, sp[i].name) == 0) {
				sp[i].start = s;
				sp[i].end = e;
			}
	}
	fclose(f);
}

static void check_clocks(uint64_t mono_before, const char *when)
{
	struct timespec ts;
	clockid_t clks[] = { CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME, CLOCK_MONOTONIC_COARSE,
			     CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_RAW };
	for (unsigned i = 0; i < sizeof(clks) / sizeof(clks[0]); i++)
		CHECK(clock_gettime(clks[i], &ts) == 0, "%s: clock_gettime(%d): %s", when, clks[i], strerror(errno));
	uint64_t m1 = now_ns(CLOCK_MONOTONIC);
	CHECK(m1 >= mono_before, "%s: CLOCK_MONOTONIC went backwards: %llu -> %llu", when,
	      (unsigned long long)mono_before, (unsigned long long)m1);
	struct timeval tv;
	CHECK(gettimeofday(&tv, NULL) == 0, "%s: gettimeofday: %s", when, strerror(errno));
	uint64_t rt = now_ns(CLOCK_REALTIME);
	int64_t diff = (int64_t)(rt / 1000) - (int64_t)((uint64_t)tv.tv_sec * 1000000 + tv.tv_usec);
	CHECK(diff > -1000000 && diff < 1000000, "%s: gettimeofday and CLOCK_REALTIME differ by %lld us", when,
	      (long long)diff);
	time_t t = time(NULL);
	CHECK(llabs((long long)t - (long long)tv.tv_sec) <= 2, "%s: time() %lld vs gettimeofday %lld", when,
	      (long long)t, (long long)tv.tv_sec);
	/* Time must advance: sleep 20 ms, measured by the vDSO clock. */
	uint64_t a = now_ns(CLOCK_MONOTONIC);
	struct timespec d = { 0, 20 * 1000 * 1000 };
	while (nanosleep(&d, &d) != 0 && errno == EINTR)
		;
	uint64_t b = now_ns(CLOCK_MONOTONIC);
	CHECK(b - a >= 20 * 1000 * 1000, "%s: 20 ms sleep measured as %llu ns", when, (unsigned long long)(b - a));
}

int main(int argc, char **argv)
{
	init(argc, argv);
	int loop = argc > 2 && strcmp(argv[2], "loop") == 0;
	struct special before[3] = { { "[vvar]", 0, 0 }, { "[vvar_vclock]", 0, 0 }, { "[vdso]", 0, 0 } };
	struct special after[3] = { { "[vvar]", 0, 0 }, { "[vvar_vclock]", 0, 0 }, { "[vdso]", 0, 0 } };
	read_specials(before, 3);
	unsigned long ehdr = getauxval(AT_SYSINFO_EHDR);
	CHECK(before[2].start != 0, "setup: no [vdso] in /proc/self/maps");
	CHECK(ehdr == before[2].start, "setup: AT_SYSINFO_EHDR %#lx != [vdso] start %#lx", ehdr, before[2].start);
	check_clocks(0, "before dump");
	if (g_fails)
		return finish();

	install_term();
	uint64_t last = now_ns(CLOCK_MONOTONIC);
	uint64_t backwards = 0, iters = 0;
	ready();
	if (loop) {
		while (!g_term) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			uint64_t t = (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
			if (t < last)
				backwards++;
			last = t;
			iters++;
		}
		CHECK(backwards == 0, "CLOCK_MONOTONIC went backwards %llu times in %llu reads",
		      (unsigned long long)backwards, (unsigned long long)iters);
	} else {
		wait_term();
	}

	read_specials(after, 3);
	for (int i = 0; i < 3; i++)
		CHECK(before[i].start == after[i].start && before[i].end == after[i].end,
		      "%s: expected %lx-%lx got %lx-%lx", before[i].name, before[i].start, before[i].end,
		      after[i].start, after[i].end);
	unsigned long ehdr2 = getauxval(AT_SYSINFO_EHDR);
	CHECK(ehdr2 == ehdr, "AT_SYSINFO_EHDR: expected %#lx got %#lx", ehdr, ehdr2);
	CHECK(after[2].start == ehdr, "[vdso] start %#lx != AT_SYSINFO_EHDR %#lx", after[2].start, ehdr);
	/* The vDSO image is still an ELF file. */
	if (after[2].start)
		CHECK(memcmp((void *)after[2].start, "\177ELF", 4) == 0, "[vdso] does not start with an ELF header");
	check_clocks(last, "after restore");
	return finish();
}
