/* Prints an incrementing counter into OUTFILE every 100 ms ("READY" after the first number).
 * The harness checks the sequence stays consecutive across dump and restore (no restart from 0).
 * `counter OUTFILE [period_ms]`. On SIGTERM it checks its own counter against the file's last line. */
#include "common.h"

int main(int argc, char **argv)
{
	init(argc, argv);
	long period_ms = argc > 2 ? atol(argv[2]) : 100;
	install_term();
	unsigned long n = 0;
	for (;;) {
		out_line("%lu", n);
		if (n == 0)
			ready();
		n++;
		struct timespec d = { period_ms / 1000, (period_ms % 1000) * 1000000 };
		if (nanosleep(&d, NULL) != 0 && errno != EINTR)
			failf("nanosleep: %s", strerror(errno));
		if (g_term)
			break;
	}
	out_line("# counted to %lu", n - 1);
	return finish();
}
