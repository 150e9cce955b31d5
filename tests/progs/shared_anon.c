/* Shared anonymous memory across fork: the parent creates a MAP_SHARED|MAP_ANONYMOUS area and a
 * private one, fills both, and forks.
 *   shared: page 0 is a mailbox; pages 1..SH/2-1 keep the parent's pattern (seed 5); the child
 *     fills pages SH/2.. with its own pattern (seed 9) after the fork, which the parent sees.
 *   private: filled with seed 6 before the fork; after it, the parent rewrites the first half
 *     with seed 61, the child with seed 62; the second half is never written (pages still
 *     shared copy-on-write).
 * Lines "proc parent PID" / "proc child PID".
 *
 * On SIGTERM the parent forwards it to the child; both check both areas; then, through the
 * mailbox, the parent writes a token the child must see (5 s), and the child answers with one
 * the parent must see (5 s). The child exits 0 if all held; the parent requires that and writes
 * PASS. */
#include "common.h"
#include <sys/mman.h>
#include <sys/wait.h>

#define PAGE 4096ul
#define SH_PAGES 64
#define PRIV_PAGES 64
#define TOKEN_P 0x50415245e1e2e3e4ull
#define TOKEN_C 0x4348494cd1d2d3d4ull

struct mbox {
	uint64_t child_ready;
	uint64_t to_child;
	uint64_t to_parent;
};

static unsigned char *g_sh, *g_priv;

static int wait_word(volatile uint64_t *w, uint64_t want, double secs)
{
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + (uint64_t)(secs * 1e9);
	while (__atomic_load_n(w, __ATOMIC_ACQUIRE) != want) {
		if (now_ns(CLOCK_MONOTONIC) > deadline)
			return 0;
		struct timespec d = { 0, 1000000 };
		nanosleep(&d, NULL);
	}
	return 1;
}

static void check_areas(const char *who, uint64_t own_seed)
{
	char what[64];
	size_t half_sh = SH_PAGES / 2 * PAGE, half_priv = PRIV_PAGES / 2 * PAGE;
	snprintf(what, sizeof(what), "%s: shared area, parent's half", who);
	check_pat_report(g_sh + PAGE, half_sh - PAGE, 5, what);
	snprintf(what, sizeof(what), "%s: shared area, child's half", who);
	check_pat_report(g_sh + half_sh, half_sh, 9, what);
	snprintf(what, sizeof(what), "%s: private area, own half", who);
	check_pat_report(g_priv, half_priv, own_seed, what);
	snprintf(what, sizeof(what), "%s: private area, inherited half", who);
	check_pat_report(g_priv + half_priv, half_priv, 6, what);
}

int main(int argc, char **argv)
{
	init(argc, argv);
	install_term();
	/* With "memfd": the shared area is a memfd mapping (the fd itself is closed: only the mapping
	 * holds the memfd), which must come back under the same name and still be shared. */
	int use_memfd = argc > 2 && strcmp(argv[2], "memfd") == 0;
	if (use_memfd) {
		int mfd = memfd_create("rcr-shm", 0);
		SETUP(mfd >= 0 && ftruncate(mfd, SH_PAGES * PAGE) == 0, "memfd_create + ftruncate");
		g_sh = mmap(NULL, SH_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
		close(mfd);
	} else {
		g_sh = mmap(NULL, SH_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	}
	SETUP(g_sh != MAP_FAILED, "mmap shared");
	g_priv = mmap(NULL, PRIV_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	SETUP(g_priv != MAP_FAILED, "mmap private");
	memset(g_sh, 0, PAGE);
	fill_pat(g_sh + PAGE, SH_PAGES / 2 * PAGE - PAGE, 5);
	fill_pat(g_priv, PRIV_PAGES * PAGE, 6);
	struct mbox *mb = (struct mbox *)g_sh;

	pid_t parent = getpid();
	pid_t kid = fork();
	SETUP(kid >= 0, "fork");
	if (kid == 0) {
		pid_t me = getpid();
		fill_pat(g_sh + SH_PAGES / 2 * PAGE, SH_PAGES / 2 * PAGE, 9);
		fill_pat(g_priv, PRIV_PAGES / 2 * PAGE, 62);
		__atomic_store_n(&mb->child_ready, 1, __ATOMIC_RELEASE);
		wait_term();
		CHECK(getpid() == me, "child: getpid %d, expected %d", getpid(), me);
		CHECK(getppid() == parent, "child: getppid %d, expected %d", getppid(), parent);
		check_areas("child", 62);
		if (wait_word(&mb->to_child, TOKEN_P, 5))
			__atomic_store_n(&mb->to_parent, TOKEN_C, __ATOMIC_RELEASE);
		else
			failf("child: the parent's write to the shared area did not arrive within 5 s (word 0x%llx)",
			      (unsigned long long)mb->to_child);
		if (g_fails == 0)
			out_line("ok child %d", me);
		_exit(g_fails ? 1 : 0);
	}
	fill_pat(g_priv, PRIV_PAGES / 2 * PAGE, 61);
	SETUP(wait_word(&mb->child_ready, 1, 10), "the child's ready flag in the shared area");
	out_line("proc parent %d", parent);
	out_line("proc child %d", kid);
	ready();
	wait_term();

	CHECK(kill(kid, SIGTERM) == 0, "forward SIGTERM to the child: %s", strerror(errno));
	if (use_memfd) {
		char maps[65536];
		int mf = open("/proc/self/maps", O_RDONLY);
		ssize_t n = mf >= 0 ? read(mf, maps, sizeof(maps) - 1) : -1;
		if (mf >= 0)
			close(mf);
		maps[n > 0 ? n : 0] = 0;
		CHECK(strstr(maps, "/memfd:rcr-shm (deleted)") != NULL, "parent: no '/memfd:rcr-shm (deleted)' mapping after restore");
	}
	check_areas("parent", 61);
	__atomic_store_n(&mb->to_child, TOKEN_P, __ATOMIC_RELEASE);
	CHECK(wait_word(&mb->to_parent, TOKEN_C, 6), "parent: the child's write to the shared area did not arrive (word 0x%llx)",
	      (unsigned long long)mb->to_parent);
	int st = 0;
	pid_t r;
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + 10ull * 1000000000ull;
	while ((r = waitpid(kid, &st, WNOHANG)) == 0 && now_ns(CLOCK_MONOTONIC) < deadline)
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	if (r == 0) {
		failf("child %d did not exit within 10 s", kid);
		kill(kid, SIGKILL);
		waitpid(kid, &st, 0);
	} else {
		CHECK(r == kid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d: waitpid %d status 0x%x", kid, r, st);
	}
	return finish();
}
