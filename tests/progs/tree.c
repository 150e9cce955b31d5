/* A process tree three levels deep, with sessions and process groups:
 *
 *   root   session and group leader (the harness starts it with setsid)
 *   ├─ a   root's group and session
 *   │  ├─ a1   root's group and session
 *   │  └─ a2   setpgid(0, 0): a group of its own in root's session
 *   └─ b   setsid(): a new session (and group)
 *      ├─ b1   setpgid(0, 0): a new group in b's session
 *      └─ b2   setpgid(0, b1): joins b1's group (its leader is a sibling, not the parent)
 *
 * Memory: the root fills an area before forking that nobody writes afterwards (copy-on-write
 * pages shared by all seven), and every process fills an area of its own after the fork with a
 * pattern seeded by its index. Each process records getpid/getppid/getpgrp/getsid before the
 * dump and writes a line "proc NAME PID PPID PGID SID" (the test compares them with /proc).
 * A child tells its parent it is set up (its own children included) with SIGUSR1; the root
 * writes READY when all are.
 *
 * On SIGTERM every process forwards SIGTERM to its children, checks its ids and memory, writes
 * "ok NAME PID" or FAIL lines, waits (with a timeout) for its children and exits 0 only if all of
 * them exited 0; the root then writes PASS. */
#include "common.h"
#include <sys/mman.h>
#include <sys/wait.h>

#define INHERIT_LEN (256 * 1024)
#define OWN_LEN (64 * 1024 + 123)
#define CHILD_WAIT_S 20

enum mode { M_ROOT, M_INHERIT, M_SETSID, M_OWN_GROUP, M_JOIN_FIRST_SIBLING };

struct node {
	const char *name;
	int parent;
	enum mode mode;
};

static const struct node nodes[] = {
	{ "root", -1, M_ROOT },	    { "a", 0, M_INHERIT },    { "b", 0, M_SETSID },
	{ "a1", 1, M_INHERIT },	    { "a2", 1, M_OWN_GROUP }, { "b1", 2, M_OWN_GROUP },
	{ "b2", 2, M_JOIN_FIRST_SIBLING },
};
#define NNODES ((int)(sizeof(nodes) / sizeof(nodes[0])))

/* This process: its node, its children, what it recorded before the dump. */
static int g_idx;
static pid_t g_kids[NNODES];
static int g_kid_idx[NNODES];
static int g_nkids;
static pid_t g_pid, g_ppid, g_pgid, g_sid;
static unsigned char *g_inherit, *g_own;

static void wait_child_ready(pid_t kid)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + 10ull * 1000000000ull;
	for (;;) {
		struct timespec to = { 0, 100 * 1000000 };
		siginfo_t si;
		int r = sigtimedwait(&s, &si, &to);
		if (r == SIGUSR1 && si.si_pid == kid)
			return;
		int st;
		if (waitpid(kid, &st, WNOHANG) == kid) {
			out_line("FAIL: setup: %s: child %d ended (status 0x%x) before it was ready",
				 nodes[g_idx].name, kid, st);
			_exit(2);
		}
		if (now_ns(CLOCK_MONOTONIC) > deadline) {
			out_line("FAIL: setup: %s: child %d not ready after 10 s", nodes[g_idx].name, kid);
			_exit(2);
		}
	}
}

static __attribute__((noreturn)) void become(int idx)
{
	g_idx = idx;
	g_nkids = 0;
	const char *name = nodes[idx].name;
	switch (nodes[idx].mode) {
	case M_ROOT:
	case M_INHERIT:
		break;
	case M_SETSID:
		SETUP(setsid() >= 0, "setsid");
		break;
	case M_OWN_GROUP:
		SETUP(setpgid(0, 0) == 0, "setpgid(0, 0)");
		break;
	case M_JOIN_FIRST_SIBLING:
		/* The parent forked the first sibling already: g_kids[0] is inherited. */
		SETUP(setpgid(0, g_kids[0]) == 0, "setpgid(0, first sibling)");
		break;
	}
	g_pid = getpid();
	g_ppid = getppid();
	g_pgid = getpgrp();
	g_sid = getsid(0);
	g_own = mmap(NULL, OWN_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	SETUP(g_own != MAP_FAILED, "mmap own area");
	fill_pat(g_own, OWN_LEN, 1000 + idx);

	for (int c = 0; c < NNODES; c++) {
		if (nodes[c].parent != idx)
			continue;
		pid_t kid = fork();
		SETUP(kid >= 0, "fork");
		if (kid == 0)
			become(c); /* never returns */
		g_kids[g_nkids] = kid;
		g_kid_idx[g_nkids] = c;
		g_nkids++;
		wait_child_ready(kid);
	}
	out_line("proc %s %d %d %d %d", name, g_pid, g_ppid, g_pgid, g_sid);
	if (idx == 0)
		ready();
	else
		SETUP(kill(getppid(), SIGUSR1) == 0, "kill(parent, SIGUSR1)");

	wait_term();

	for (int k = 0; k < g_nkids; k++)
		CHECK(kill(g_kids[k], SIGTERM) == 0, "%s: forward SIGTERM to %s (%d): %s", name,
		      nodes[g_kid_idx[k]].name, g_kids[k], strerror(errno));

	pid_t v;
	CHECK((v = getpid()) == g_pid, "%s: getpid %d, expected %d", name, v, g_pid);
	CHECK((v = getppid()) == g_ppid, "%s: getppid %d, expected %d", name, v, g_ppid);
	CHECK((v = getpgrp()) == g_pgid, "%s: getpgrp %d, expected %d", name, v, g_pgid);
	CHECK((v = getsid(0)) == g_sid, "%s: getsid %d, expected %d", name, v, g_sid);
	char what[64];
	snprintf(what, sizeof(what), "%s: inherited area", name);
	check_pat_report(g_inherit, INHERIT_LEN, 7, what);
	snprintf(what, sizeof(what), "%s: own area", name);
	check_pat_report(g_own, OWN_LEN, 1000 + idx, what);
	if (g_fails == 0)
		out_line("ok %s %d", name, g_pid);

	/* Children: each must exit 0 (it and its subtree passed) within the timeout. */
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + CHILD_WAIT_S * 1000000000ull;
	for (int k = 0; k < g_nkids; k++) {
		const char *kn = nodes[g_kid_idx[k]].name;
		int st = 0;
		pid_t r;
		while ((r = waitpid(g_kids[k], &st, WNOHANG)) == 0 && now_ns(CLOCK_MONOTONIC) < deadline) {
			struct timespec d = { 0, 2 * 1000000 };
			nanosleep(&d, NULL);
		}
		if (r == 0) {
			failf("%s: child %s (%d) did not exit within %d s", name, kn, g_kids[k], CHILD_WAIT_S);
			kill(g_kids[k], SIGKILL);
			waitpid(g_kids[k], &st, 0);
		} else if (r < 0) {
			failf("%s: waitpid(%s, %d): %s", name, kn, g_kids[k], strerror(errno));
		} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			failf("%s: child %s (%d) ended with status 0x%x", name, kn, g_kids[k], st);
		}
	}
	/* No other children (e.g. a helper of the restorer). */
	int st;
	pid_t extra = waitpid(-1, &st, WNOHANG);
	CHECK(extra < 0 && errno == ECHILD, "%s: unexpected child: waitpid(-1) returned %d", name, extra);

	if (idx == 0)
		exit(finish());
	_exit(g_fails ? 1 : 0);
}

int main(int argc, char **argv)
{
	init(argc, argv);
	install_term();
	/* SIGUSR1 (a child is ready) is only taken with sigtimedwait: blocked from the start,
	 * inherited by every child. */
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	SETUP(sigprocmask(SIG_BLOCK, &s, NULL) == 0, "sigprocmask");
	g_inherit = mmap(NULL, INHERIT_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	SETUP(g_inherit != MAP_FAILED, "mmap inherited area");
	fill_pat(g_inherit, INHERIT_LEN, 7);
	become(0);
	return 1;
}
