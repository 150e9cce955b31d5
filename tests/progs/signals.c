/* Signal state: dispositions with distinct flags and masks, SIG_IGN, the blocked mask, pending
 * signals queued while blocked (private via tgkill / rt_tgsigqueueinfo, shared via kill / sigqueue,
 * realtime with values), sigaltstack. After restore: every sigaction (raw rt_sigaction), the mask,
 * /proc/self/status Sig* lines and the altstack are unchanged; the pending signals are delivered
 * one signal number at a time (no SA_NODEFER on queued realtime signals: a nested delivery would
 * run the later one first) with the right si_code / si_value / si_pid and queue order; flags
 * behave (SA_NODEFER, sa_mask, SA_ONSTACK on the alt stack, SA_RESETHAND, SIG_IGN). */
#include "common.h"
#include <sys/mman.h>
#include <sys/syscall.h>

struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

struct rec {
	int sig, code, val, pid;
	int self_blocked, xcpu_blocked, on_alt, ss_onstack;
};

static struct rec g_rec[64];
static volatile int g_nrec;
static stack_t g_alt;

#define RT(n) (SIGRTMIN + (n))
#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif

static int blocked(int sig)
{
	sigset_t cur;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	return sigismember(&cur, sig);
}

static void h_info(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	int local;
	if (g_nrec >= 64)
		return;
	struct rec *r = &g_rec[g_nrec];
	r->sig = sig;
	r->code = si->si_code;
	r->val = si->si_value.sival_int;
	r->pid = si->si_pid;
	r->self_blocked = blocked(sig);
	r->xcpu_blocked = blocked(SIGXCPU);
	uintptr_t a = (uintptr_t)&local, lo = (uintptr_t)g_alt.ss_sp;
	r->on_alt = a >= lo && a < lo + g_alt.ss_size;
	stack_t ss;
	sigaltstack(NULL, &ss);
	r->ss_onstack = (ss.ss_flags & SS_ONSTACK) != 0;
	g_nrec = g_nrec + 1;
}

static void set_action(int sig, void *handler, int flags, const int *mask_sigs)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	for (const int *m = mask_sigs; m && *m; m++)
		sigaddset(&sa.sa_mask, *m);
	sa.sa_flags = flags;
	if (flags & SA_SIGINFO)
		sa.sa_sigaction = handler;
	else
		sa.sa_handler = handler;
	SETUP(sigaction(sig, &sa, NULL) == 0, "sigaction");
}

static int get_ksa(int sig, struct ksigaction *k)
{
	return (int)syscall(SYS_rt_sigaction, sig, NULL, k, 8);
}

static const char *status_keys[] = { "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt" };
#define NKEYS 5

static void check_rec(int i, int sig, int code, int val, const char *what)
{
	if (i >= g_nrec) {
		failf("%s: delivery #%d missing (only %d recorded)", what, i, g_nrec);
		return;
	}
	struct rec *r = &g_rec[i];
	CHECK(r->sig == sig, "%s: delivery #%d: signal expected %d got %d", what, i, sig, r->sig);
	CHECK(r->code == code, "%s: delivery #%d: si_code expected %d got %d", what, i, code, r->code);
	if (code == SI_QUEUE)
		CHECK(r->val == val, "%s: delivery #%d: si_value expected %d got %d", what, i, val, r->val);
	CHECK(r->pid == getpid(), "%s: delivery #%d: si_pid expected %d got %d", what, i, getpid(), r->pid);
}

/* Unblocks `sig` (delivery happens before sigprocmask returns) and expects `n` deliveries. */
static int unblock_expect(int sig, int n, const char *what)
{
	int before = g_nrec;
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	sigprocmask(SIG_UNBLOCK, &s, NULL);
	CHECK(g_nrec - before == n, "%s: expected %d deliveries on unblock, got %d", what, n, g_nrec - before);
	return before;
}

int main(int argc, char **argv)
{
	init(argc, argv);
	pid_t pid = getpid(), tid = (pid_t)syscall(SYS_gettid);

	g_alt.ss_size = 64 * 1024;
	g_alt.ss_sp = mmap(NULL, g_alt.ss_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	SETUP(g_alt.ss_sp != MAP_FAILED, "mmap altstack");
	g_alt.ss_flags = 0;
	SETUP(sigaltstack(&g_alt, NULL) == 0, "sigaltstack");

	int m_usr1[] = { SIGXCPU, 0 };
	int m_alrm[] = { SIGINT, SIGQUIT, RT(7), 0 };
	set_action(SIGUSR1, h_info, SA_SIGINFO | SA_RESTART, m_usr1);
	set_action(SIGUSR2, h_info, SA_SIGINFO | SA_NODEFER, NULL);
	set_action(SIGHUP, h_info, SA_SIGINFO | SA_RESETHAND, NULL);
	set_action(SIGWINCH, h_info, SA_SIGINFO | SA_ONSTACK, NULL);
	set_action(SIGALRM, h_info, SA_SIGINFO | SA_RESTART | SA_ONSTACK, m_alrm);
	set_action(SIGCHLD, h_info, SA_SIGINFO | SA_NOCLDSTOP, NULL);
	set_action(RT(1), h_info, SA_SIGINFO | SA_RESTART, NULL);
	set_action(RT(2), h_info, SA_SIGINFO, NULL);
	set_action(RT(3), h_info, SA_SIGINFO | SA_RESTART, NULL);
	set_action(SIGPIPE, SIG_IGN, 0, NULL);
	set_action(SIGURG, SIG_IGN, 0, NULL);
	set_action(SIGTTIN, SIG_IGN, 0, NULL);
	install_term();

	sigset_t blk;
	sigemptyset(&blk);
	int blocked_sigs[] = { SIGUSR1, SIGUSR2, RT(1), RT(2), RT(3), SIGINT, SIGQUIT, SIGTTIN };
	for (unsigned i = 0; i < sizeof(blocked_sigs) / sizeof(int); i++)
		sigaddset(&blk, blocked_sigs[i]);
	SETUP(sigprocmask(SIG_BLOCK, &blk, NULL) == 0, "sigprocmask");

	/* Private (thread) queue: tgkill and rt_tgsigqueueinfo. */
	SETUP(syscall(SYS_tgkill, pid, tid, SIGUSR1) == 0, "tgkill");
	for (int v = 301; v <= 302; v++) {
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		si.si_signo = RT(3);
		si.si_code = SI_QUEUE;
		si.si_pid = pid;
		si.si_uid = getuid();
		si.si_value.sival_int = v;
		SETUP(syscall(SYS_rt_tgsigqueueinfo, pid, tid, RT(3), &si) == 0, "rt_tgsigqueueinfo");
	}
	/* Shared (process) queue: kill twice (coalesced) and sigqueue. */
	SETUP(kill(pid, SIGUSR2) == 0 && kill(pid, SIGUSR2) == 0, "kill");
	SETUP(sigqueue(pid, RT(1), (union sigval){ .sival_int = 101 }) == 0, "sigqueue");
	SETUP(sigqueue(pid, RT(1), (union sigval){ .sival_int = 102 }) == 0, "sigqueue");
	SETUP(sigqueue(pid, RT(2), (union sigval){ .sival_int = 201 }) == 0, "sigqueue");
	CHECK(g_nrec == 0, "setup: %d signals delivered while blocked", g_nrec);

	/* Snapshot. */
	static struct ksigaction ksa[65];
	for (int s = 1; s <= 64; s++)
		SETUP(get_ksa(s, &ksa[s]) == 0, "rt_sigaction query");
	char st_before[NKEYS][128];
	for (int k = 0; k < NKEYS; k++)
		SETUP(status_field(status_keys[k], st_before[k], 128) == 0, "read /proc/self/status");
	sigset_t mask_before;
	sigprocmask(SIG_BLOCK, NULL, &mask_before);
	if (g_fails)
		return finish();

	ready();
	wait_term();

	/* Compare the snapshot. */
	for (int s = 1; s <= 64; s++) {
		struct ksigaction now;
		if (get_ksa(s, &now) != 0) {
			failf("rt_sigaction(%d) query: %s", s, strerror(errno));
			continue;
		}
		CHECK(now.handler == ksa[s].handler, "signal %d handler: expected %p got %p", s, ksa[s].handler,
		      now.handler);
		CHECK(now.flags == ksa[s].flags, "signal %d sa_flags: expected %#lx got %#lx", s, ksa[s].flags,
		      now.flags);
		CHECK(now.mask == ksa[s].mask, "signal %d sa_mask: expected %#llx got %#llx", s,
		      (unsigned long long)ksa[s].mask, (unsigned long long)now.mask);
		if (ksa[s].flags & SA_RESTORER)
			CHECK(now.restorer == ksa[s].restorer, "signal %d sa_restorer: expected %p got %p", s,
			      ksa[s].restorer, now.restorer);
	}
	for (int k = 0; k < NKEYS; k++) {
		char now[128] = "";
		status_field(status_keys[k], now, sizeof(now));
		CHECK(strcmp(now, st_before[k]) == 0, "/proc/self/status %s: expected '%s' got '%s'", status_keys[k],
		      st_before[k], now);
	}
	sigset_t mask_now;
	sigprocmask(SIG_BLOCK, NULL, &mask_now);
	for (int s = 1; s < 65; s++)
		CHECK(sigismember(&mask_now, s) == sigismember(&mask_before, s), "signal %d blocked: expected %d got %d",
		      s, sigismember(&mask_before, s), sigismember(&mask_now, s));
	stack_t alt;
	sigaltstack(NULL, &alt);
	CHECK(alt.ss_sp == g_alt.ss_sp && alt.ss_size == g_alt.ss_size && alt.ss_flags == 0,
	      "sigaltstack: expected sp %p size %zu flags 0, got sp %p size %zu flags %#x", g_alt.ss_sp,
	      g_alt.ss_size, alt.ss_sp, alt.ss_size, alt.ss_flags);
	CHECK(g_nrec == 0, "%d signals were delivered before they were unblocked", g_nrec);

	/* Deliveries, one signal number at a time. */
	int i = unblock_expect(SIGUSR1, 1, "SIGUSR1 (tgkill, private)");
	check_rec(i, SIGUSR1, SI_TKILL, 0, "SIGUSR1");
	if (i < g_nrec) {
		CHECK(g_rec[i].self_blocked, "SIGUSR1 handler: SIGUSR1 not blocked inside its handler");
		CHECK(g_rec[i].xcpu_blocked, "SIGUSR1 handler: sa_mask SIGXCPU not blocked inside the handler");
	}
	i = unblock_expect(SIGUSR2, 1, "SIGUSR2 (kill x2, shared)");
	check_rec(i, SIGUSR2, SI_USER, 0, "SIGUSR2");
	if (i < g_nrec)
		CHECK(!g_rec[i].self_blocked, "SIGUSR2 handler (SA_NODEFER): SIGUSR2 blocked inside its handler");
	i = unblock_expect(RT(1), 2, "SIGRTMIN+1 (sigqueue x2, shared)");
	check_rec(i, RT(1), SI_QUEUE, 101, "SIGRTMIN+1 first");
	check_rec(i + 1, RT(1), SI_QUEUE, 102, "SIGRTMIN+1 second");
	i = unblock_expect(RT(2), 1, "SIGRTMIN+2 (sigqueue, shared)");
	check_rec(i, RT(2), SI_QUEUE, 201, "SIGRTMIN+2");
	i = unblock_expect(RT(3), 2, "SIGRTMIN+3 (rt_tgsigqueueinfo x2, private)");
	check_rec(i, RT(3), SI_QUEUE, 301, "SIGRTMIN+3 first");
	check_rec(i + 1, RT(3), SI_QUEUE, 302, "SIGRTMIN+3 second");

	char pnd[128] = "", shd[128] = "";
	status_field("SigPnd", pnd, sizeof(pnd));
	status_field("ShdPnd", shd, sizeof(shd));
	CHECK(strcmp(pnd, "0000000000000000") == 0 && strcmp(shd, "0000000000000000") == 0,
	      "pending after all deliveries: SigPnd %s ShdPnd %s", pnd, shd);

	/* SA_ONSTACK: runs on the alternate stack. */
	i = g_nrec;
	raise(SIGWINCH);
	if (i < g_nrec) {
		CHECK(g_rec[i].sig == SIGWINCH, "SIGWINCH: recorded signal %d", g_rec[i].sig);
		CHECK(g_rec[i].on_alt, "SIGWINCH (SA_ONSTACK) handler did not run on the alternate stack");
		CHECK(g_rec[i].ss_onstack, "SIGWINCH handler: sigaltstack does not report SS_ONSTACK");
	} else {
		failf("SIGWINCH handler did not run");
	}
	/* SA_RESETHAND: disposition back to SIG_DFL after one delivery. */
	i = g_nrec;
	raise(SIGHUP);
	CHECK(g_nrec == i + 1, "SIGHUP handler did not run");
	struct sigaction sa;
	sigaction(SIGHUP, NULL, &sa);
	CHECK(sa.sa_handler == SIG_DFL, "SIGHUP (SA_RESETHAND): disposition not reset to SIG_DFL after delivery");
	/* SIG_IGN: raising SIGPIPE and SIGURG does nothing. */
	i = g_nrec;
	raise(SIGPIPE);
	raise(SIGURG);
	CHECK(g_nrec == i, "ignored signals reached a handler");
	return finish();
}
