/* A process blocked in a system call when dumped. `syscall_restart OUTFILE MODE`:
 *  nanosleep    - a 2 s nanosleep; after restore it completes, restarted or returning EINTR with
 *                 the remaining time (the program then sleeps the rest); total >= 2 s.
 *  pause        - pause() must return only after the SIGTERM handler ran.
 *  sigsuspend   - sigsuspend() with SIGTERM blocked outside; returns only after the handler ran,
 *                 and the mask is back to the blocked one afterwards.
 *  sigtimedwait - SIGTERM blocked, no handler invoked; sigtimedwait(30 s) returns SIGTERM
 *                 (EINTR retried: it is documented to return EINTR after a ptrace stop). */
#include "common.h"

static void check_blocked(int sig, int want, const char *when)
{
	sigset_t cur;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	CHECK(sigismember(&cur, sig) == want, "%s: signal %d blocked: expected %d got %d", when, sig, want,
	      sigismember(&cur, sig));
}

int main(int argc, char **argv)
{
	init(argc, argv);
	const char *mode = argc > 2 ? argv[2] : "";
	install_term();

	if (strcmp(mode, "nanosleep") == 0) {
		const uint64_t want = 2000000000ull;
		struct timespec req = { 2, 0 }, rem;
		int eintr = 0;
		uint64_t t0 = now_ns(CLOCK_MONOTONIC);
		ready();
		while (nanosleep(&req, &rem) != 0) {
			if (errno != EINTR) {
				failf("nanosleep: %s", strerror(errno));
				break;
			}
			eintr++;
			CHECK(rem.tv_sec <= 2 && rem.tv_nsec >= 0 && rem.tv_nsec < 1000000000,
			      "nanosleep EINTR: bad remaining time %lld.%09ld", (long long)rem.tv_sec, rem.tv_nsec);
			req = rem;
		}
		uint64_t el = now_ns(CLOCK_MONOTONIC) - t0;
		CHECK(el >= want, "nanosleep(2 s) finished after %llu ns (interrupted %d times)",
		      (unsigned long long)el, eintr);
		out_line("# nanosleep: %llu ns, %d EINTR", (unsigned long long)el, eintr);
		wait_term();
	} else if (strcmp(mode, "pause") == 0) {
		ready();
		while (!g_term) {
			int r = pause();
			CHECK(r == -1 && errno == EINTR, "pause returned %d (%s)", r, strerror(errno));
			if (!g_term) {
				failf("pause() returned without SIGTERM (spurious EINTR)");
				break;
			}
		}
	} else if (strcmp(mode, "sigsuspend") == 0) {
		sigset_t block, wait_mask;
		sigemptyset(&block);
		sigaddset(&block, SIGTERM);
		sigaddset(&block, SIGUSR1);
		sigprocmask(SIG_BLOCK, &block, NULL);
		sigprocmask(SIG_BLOCK, NULL, &wait_mask);
		sigdelset(&wait_mask, SIGTERM);
		ready();
		int r = sigsuspend(&wait_mask);
		CHECK(r == -1 && errno == EINTR, "sigsuspend returned %d (%s)", r, strerror(errno));
		CHECK(g_term, "sigsuspend returned without SIGTERM");
		check_blocked(SIGTERM, 1, "after sigsuspend");
		check_blocked(SIGUSR1, 1, "after sigsuspend");
	} else if (strcmp(mode, "sigtimedwait") == 0) {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		sigprocmask(SIG_BLOCK, &set, NULL);
		siginfo_t si;
		struct timespec to = { 30, 0 };
		uint64_t deadline = now_ns(CLOCK_MONOTONIC) + 30000000000ull;
		int r, eintr = 0;
		ready();
		for (;;) {
			r = sigtimedwait(&set, &si, &to);
			if (r >= 0 || errno != EINTR)
				break;
			eintr++;
			uint64_t now = now_ns(CLOCK_MONOTONIC);
			if (now >= deadline) {
				r = -1;
				errno = EAGAIN;
				break;
			}
			to.tv_sec = (deadline - now) / 1000000000ull;
			to.tv_nsec = (deadline - now) % 1000000000ull;
		}
		CHECK(r == SIGTERM, "sigtimedwait: expected SIGTERM (%d) got %d (%s)", SIGTERM, r,
		      r < 0 ? strerror(errno) : "");
		if (r == SIGTERM)
			CHECK(si.si_code == SI_USER && si.si_pid != getpid(),
			      "sigtimedwait siginfo: expected SI_USER from another process, got code %d pid %d",
			      si.si_code, si.si_pid);
		CHECK(!g_term, "SIGTERM handler ran although SIGTERM was blocked");
		check_blocked(SIGTERM, 1, "after sigtimedwait");
		out_line("# sigtimedwait: %d EINTR", eintr);
	} else {
		failf("unknown mode '%s'", mode);
	}
	return finish();
}
