/* Interval timers and CLOCK_MONOTONIC.
 * `timers OUTFILE [posix]`: ITIMER_REAL / ITIMER_VIRTUAL / ITIMER_PROF with intervals (and with
 * "posix", a timer_create CLOCK_MONOTONIC timer signalling SIGRTMIN+4 with a value).
 * The program burns CPU in a loop (so the CPU-time timers tick) until SIGTERM, recording
 * CLOCK_MONOTONIC as it goes. After restore: getitimer shows the same interval and a remaining
 * time in (0, interval]; the signals keep arriving; CLOCK_MONOTONIC never went backwards. */
#include "common.h"
#include <sys/time.h>

static volatile int g_cnt[4];
static volatile int g_posix_val_ok = 1;

#define NT 3
static const int which[NT] = { ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF };
static const int sigs[NT] = { SIGALRM, SIGVTALRM, SIGPROF };
static const char *names[NT] = { "ITIMER_REAL", "ITIMER_VIRTUAL", "ITIMER_PROF" };
static const long interval_us[NT] = { 50000, 20000, 30000 };

static void on_sig(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	for (int i = 0; i < NT; i++)
		if (sig == sigs[i])
			g_cnt[i]++;
	if (sig == SIGRTMIN + 4) {
		g_cnt[3]++;
		if (si->si_code != SI_TIMER || si->si_value.sival_int != 4242)
			g_posix_val_ok = 0;
	}
}

static uint64_t g_last_mono;
static uint64_t g_backwards;

/* Burns CPU until all counters have advanced by at least `min` or `until_term` and SIGTERM came. */
static int spin(int min, int posix, int until_term, uint64_t timeout_ns)
{
	int start[4];
	for (int i = 0; i < 4; i++)
		start[i] = g_cnt[i];
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	for (;;) {
		uint64_t t = now_ns(CLOCK_MONOTONIC);
		if (t < g_last_mono)
			g_backwards++;
		g_last_mono = t;
		int ok = 1;
		for (int i = 0; i < NT + posix; i++)
			if (g_cnt[i] - start[i] < min)
				ok = 0;
		if (until_term ? g_term : ok)
			return 1;
		if (!until_term && t - t0 > timeout_ns)
			return 0;
	}
}

static void check_itimers(const char *when)
{
	for (int i = 0; i < NT; i++) {
		struct itimerval v;
		if (getitimer(which[i], &v) != 0) {
			failf("%s: getitimer(%s): %s", when, names[i], strerror(errno));
			continue;
		}
		long iv = v.it_interval.tv_sec * 1000000 + v.it_interval.tv_usec;
		long val = v.it_value.tv_sec * 1000000 + v.it_value.tv_usec;
		CHECK(iv == interval_us[i], "%s: %s interval: expected %ld us got %ld us", when, names[i],
		      interval_us[i], iv);
		/* The kernel adds one tick (at most 10 ms) to a CPU-time itimer when it is set. */
		CHECK(val > 0 && val <= interval_us[i] + 10000, "%s: %s remaining: expected in (0, %ld] us + a tick, got %ld us", when,
		      names[i], interval_us[i], val);
	}
}

int main(int argc, char **argv)
{
	init(argc, argv);
	int posix = argc > 2 && strcmp(argv[2], "posix") == 0;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sig;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	for (int i = 0; i < NT; i++)
		SETUP(sigaction(sigs[i], &sa, NULL) == 0, "sigaction");
	SETUP(sigaction(SIGRTMIN + 4, &sa, NULL) == 0, "sigaction");

	for (int i = 0; i < NT; i++) {
		struct itimerval v = { { 0, interval_us[i] }, { 0, interval_us[i] } };
		SETUP(setitimer(which[i], &v, NULL) == 0, "setitimer");
	}
	timer_t tid;
	struct itimerspec pspec = { { 0, 40000000 }, { 0, 40000000 } };
	if (posix) {
		struct sigevent sev;
		memset(&sev, 0, sizeof(sev));
		sev.sigev_notify = SIGEV_SIGNAL;
		sev.sigev_signo = SIGRTMIN + 4;
		sev.sigev_value.sival_int = 4242;
		SETUP(timer_create(CLOCK_MONOTONIC, &sev, &tid) == 0, "timer_create");
		SETUP(timer_settime(tid, 0, &pspec, NULL) == 0, "timer_settime");
	}
	CHECK(spin(2, posix, 0, 10000000000ull), "setup: timers did not fire within 10 s: real %d virt %d prof %d posix %d",
	      g_cnt[0], g_cnt[1], g_cnt[2], g_cnt[3]);
	check_itimers("before dump");
	if (g_fails)
		return finish();

	install_term();
	ready();
	spin(0, posix, 1, 0);
	uint64_t mono_dump = g_last_mono;
	uint64_t mono_now = now_ns(CLOCK_MONOTONIC);
	CHECK(mono_now >= mono_dump, "CLOCK_MONOTONIC went backwards across restore: %llu -> %llu",
	      (unsigned long long)mono_dump, (unsigned long long)mono_now);

	check_itimers("after restore");
	if (posix) {
		struct itimerspec cur;
		CHECK(timer_gettime(tid, &cur) == 0, "timer_gettime: %s", strerror(errno));
		CHECK(cur.it_interval.tv_sec == 0 && cur.it_interval.tv_nsec == 40000000,
		      "posix timer interval: expected 40 ms got %lld.%09ld", (long long)cur.it_interval.tv_sec,
		      cur.it_interval.tv_nsec);
		CHECK(cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec <= 40000000,
		      "posix timer remaining: expected in (0, 40 ms] got %lld.%09ld", (long long)cur.it_value.tv_sec,
		      cur.it_value.tv_nsec);
	}
	int before[4] = { g_cnt[0], g_cnt[1], g_cnt[2], g_cnt[3] };
	if (!spin(3, posix, 0, 10000000000ull))
		failf("timers stopped after restore: signals in 10 s: real %d virt %d prof %d posix %d",
		      g_cnt[0] - before[0], g_cnt[1] - before[1], g_cnt[2] - before[2], g_cnt[3] - before[3]);
	if (posix)
		CHECK(g_posix_val_ok, "posix timer signal: wrong si_code or si_value");
	CHECK(g_backwards == 0, "CLOCK_MONOTONIC went backwards %llu times", (unsigned long long)g_backwards);
	return finish();
}
