/* Benchmark subject: fills N MiB of anonymous memory with a position-dependent pattern, then
 * READY; on SIGTERM verifies every byte and reports. `bench_fill OUTFILE MIB`. */
#include "common.h"
#include <sys/mman.h>

int main(int argc, char **argv)
{
	init(argc, argv);
	size_t mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 1024;
	size_t len = mib << 20;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	SETUP(p != MAP_FAILED, "mmap");
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	fill_pat(p, len, 77);
	out_line("# filled %zu MiB in %.3f s", mib, (now_ns(CLOCK_MONOTONIC) - t0) / 1e9);
	install_term();
	ready();
	wait_term();
	check_pat_report(p, len, 77, "filled area");
	return finish();
}
