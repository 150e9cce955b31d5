/* Shared helpers for rcr's end-to-end test programs.
 *
 * Protocol (see tests/e2e/harness): `PROG OUTFILE [args]`
 *   1. set up the state under test;
 *   2. install_term() then ready(): appends "READY\n" to OUTFILE;
 *   3. wait for SIGTERM (wait_term() or the program's own loop polling g_term);
 *   4. verify everything from inside; CHECK()/failf() record differences;
 *   5. finish(): appends "PASS\n" or one "FAIL: ..." line per difference, returns the exit code.
 *
 * Every write to OUTFILE opens it anew with O_APPEND so that no fd of the program points at it
 * (the state under test is not disturbed by the reporting channel).
 */
#ifndef RCR_TEST_COMMON_H
#define RCR_TEST_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *g_out;
static volatile sig_atomic_t g_term;
static int g_fails;

/* Append a formatted line to OUTFILE. Uses only a stack buffer (no malloc: some programs check brk). */
__attribute__((format(printf, 1, 2), unused)) static void out_line(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	if (n == 0 || buf[n - 1] != '\n')
		buf[n++] = '\n';
	int fd = open(g_out, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		_exit(3);
	ssize_t w = write(fd, buf, n);
	(void)w;
	close(fd);
}

/* Record one difference; all of them are reported by finish(). */
#define failf(...)                                                                                 \
	do {                                                                                       \
		g_fails++;                                                                         \
		out_line("FAIL: " __VA_ARGS__);                                                    \
	} while (0)

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			failf(__VA_ARGS__);                                                        \
	} while (0)

/* Setup failed: the test is invalid whatever rcr does; report and exit at once. */
#define SETUP(cond, what)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			out_line("FAIL: setup: %s: %s (line %d)", what, strerror(errno), __LINE__); \
			_exit(2);                                                                  \
		}                                                                                  \
	} while (0)

static __attribute__((unused)) void on_term(int sig)
{
	(void)sig;
	g_term = 1;
}

/* SIGTERM sets g_term; no SA_RESTART so blocking calls return EINTR. */
static __attribute__((unused)) void install_term(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	SETUP(sigaction(SIGTERM, &sa, NULL) == 0, "sigaction(SIGTERM)");
}

static __attribute__((unused)) void init(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s OUTFILE [args]\n", argv[0]);
		exit(2);
	}
	g_out = argv[1];
}

static __attribute__((unused)) void ready(void)
{
	out_line("READY");
}

/* Block until SIGTERM arrived, in sigsuspend with SIGTERM otherwise blocked (no lost wake-up). */
static __attribute__((unused)) void wait_term(void)
{
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &old);
	sigset_t wait_mask = old;
	sigdelset(&wait_mask, SIGTERM);
	while (!g_term)
		sigsuspend(&wait_mask);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static __attribute__((unused)) int finish(void)
{
	if (g_fails == 0) {
		out_line("PASS");
		return 0;
	}
	return 1;
}

/* fork() with a pipe on which the child says it is set up (child_set_up) and the parent waits for
 * that (wait_child_set_up): what the parent reports as READY is then in place in the child too. */
static int g_setup_pipe[2];

static __attribute__((unused)) pid_t fork_synced(void)
{
	SETUP(pipe(g_setup_pipe) == 0, "pipe");
	pid_t c = fork();
	SETUP(c >= 0, "fork");
	close(g_setup_pipe[c == 0 ? 0 : 1]);
	return c;
}

static __attribute__((unused)) void child_set_up(void)
{
	if (write(g_setup_pipe[1], "x", 1) != 1)
		_exit(2);
	close(g_setup_pipe[1]);
}

static __attribute__((unused)) void wait_child_set_up(void)
{
	char x;
	SETUP(read(g_setup_pipe[0], &x, 1) == 1, "the child did not set up");
	close(g_setup_pipe[0]);
}

static __attribute__((unused)) uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Position-dependent 64-bit pattern: every word's value depends on its address and a seed. */
static inline uint64_t pat64(uintptr_t addr, uint64_t seed)
{
	uint64_t x = (uint64_t)addr ^ (seed * 0x9E3779B97F4A7C15ull);
	x ^= x >> 31;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 29;
	return x;
}

/* Fills p with the pattern of a virtual address range starting at `base` (files use the offset). */
static __attribute__((unused)) void fill_pat_base(void *p, size_t len, uint64_t seed, uintptr_t base)
{
	uint64_t *w = p;
	for (size_t i = 0; i < len / 8; i++)
		w[i] = pat64(base + i * 8, seed);
	unsigned char *b = p;
	for (size_t i = len / 8 * 8; i < len; i++)
		b[i] = (unsigned char)pat64(base + i, seed);
}

static __attribute__((unused)) unsigned char pat_byte(uintptr_t base, size_t len, size_t off, uint64_t seed)
{
	if (off < len / 8 * 8) {
		uint64_t e = pat64(base + off / 8 * 8, seed);
		return ((unsigned char *)&e)[off % 8];
	}
	return (unsigned char)pat64(base + off, seed);
}

/* Returns the offset of the first byte that differs from the pattern, or -1 if all match. */
static __attribute__((unused)) long check_pat_base(const void *p, size_t len, uint64_t seed, uintptr_t base)
{
	const uint64_t *w = p;
	for (size_t i = 0; i < len / 8; i++)
		if (w[i] != pat64(base + i * 8, seed)) {
			for (size_t k = i * 8;; k++)
				if (((const unsigned char *)p)[k] != pat_byte(base, len, k, seed))
					return (long)k;
		}
	const unsigned char *b = p;
	for (size_t i = len / 8 * 8; i < len; i++)
		if (b[i] != (unsigned char)pat64(base + i, seed))
			return (long)i;
	return -1;
}

/* Memory areas use their own address as the base: a page restored at the wrong place differs. */
static __attribute__((unused)) void fill_pat(void *p, size_t len, uint64_t seed)
{
	fill_pat_base(p, len, seed, (uintptr_t)p);
}

static __attribute__((unused)) long check_pat(const void *p, size_t len, uint64_t seed)
{
	return check_pat_base(p, len, seed, (uintptr_t)p);
}

/* Compares a pattern-filled area; records one failure naming the first differing byte. */
static __attribute__((unused)) void check_pat_report_base(const void *p, size_t len, uint64_t seed,
							  uintptr_t base, const char *name)
{
	long off = check_pat_base(p, len, seed, base);
	if (off >= 0)
		failf("%s at %p: byte %ld of %zu differs: expected 0x%02x got 0x%02x", name, p, off, len,
		      pat_byte(base, len, (size_t)off, seed), ((const unsigned char *)p)[off]);
}

static __attribute__((unused)) void check_pat_report(const void *p, size_t len, uint64_t seed, const char *name)
{
	check_pat_report_base(p, len, seed, (uintptr_t)p, name);
}

/* One line of /proc/self/maps that contains addr: fills start/end/perms; returns 0 if found. */
struct map_line {
	unsigned long start, end;
	char perms[8];
	char name[256];
};

static __attribute__((unused)) int find_map(unsigned long addr, struct map_line *out)
{
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return -1;
	char line[512];
	int ret = -1;
	while (fgets(line, sizeof(line), f)) {
		struct map_line m;
		int pos = 0;
		memset(&m, 0, sizeof(m));
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s%n", &m.start, &m.end, m.perms, &pos) < 3)
			continue;
		if (addr >= m.start && addr < m.end) {
			const char *n = line + pos;
			while (*n == ' ')
				n++;
			snprintf(m.name, sizeof(m.name), "%s", n);
			m.name[strcspn(m.name, "\n")] = 0;
			*out = m;
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

/* The value after "KEY:" on the first such line of the proc file PATH ("Pid:\t42" gives "42"), into
 * buf (len bytes); 0, or -1 when there is no such line. */
static __attribute__((unused)) int file_field(const char *path, const char *key, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	char line[512];
	size_t kl = strlen(key);
	int ret = -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			const char *v = line + kl + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			snprintf(buf, len, "%s", v);
			buf[strcspn(buf, "\n")] = 0;
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

/* A field of /proc/self/status. */
static __attribute__((unused)) int status_field(const char *key, char *buf, size_t len)
{
	return file_field("/proc/self/status", key, buf, len);
}

/* A field of /proc/self/fdinfo/FD. */
static __attribute__((unused)) int fdinfo_value(int fd, const char *key, char *buf, size_t len)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", fd);
	return file_field(p, key, buf, len);
}

#endif
