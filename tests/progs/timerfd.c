/* timerfds: clock, time left, interval, unread expirations, TFD_TIMER_ABSTIME, flags.
 * t1: MONOTONIC, 1.5 s then every 0.5 s. t2: MONOTONIC one-shot that expired before the dump (1 tick
 * unread). t3: MONOTONIC every 20 ms, never read: its expirations before the dump must all be counted
 * (the kernel only counts overruns when the timer is read or queried); it is read first after restore,
 * so that the expirations since then are few. t4: REALTIME, ABSTIME, 100 s
 * ahead, O_NONBLOCK|O_CLOEXEC. t5: BOOTTIME, disarmed.
 * After restore, from inside: timerfd_gettime, fdinfo clockid/settime flags, reads. */
#include "common.h"
#include <sys/timerfd.h>

#define MS 1000000ull

static int fdinfo_num(int fd, const char *key, long long *v, int base)
{
	char val[128];
	if (fdinfo_value(fd, key, val, sizeof(val)) < 0)
		return -1;
	*v = strtoll(val, NULL, base);
	return 0;
}

static uint64_t ts_ns(struct timespec t)
{
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int mk(clockid_t clk, int flags, int sflags, uint64_t value_ns, uint64_t interval_ns)
{
	int fd = timerfd_create(clk, flags);
	SETUP(fd >= 0, "timerfd_create");
	struct itimerspec its = {
		.it_value = { value_ns / 1000000000ull, value_ns % 1000000000ull },
		.it_interval = { interval_ns / 1000000000ull, interval_ns % 1000000000ull },
	};
	SETUP(timerfd_settime(fd, sflags, &its, NULL) == 0, "timerfd_settime");
	return fd;
}

int main(int argc, char **argv)
{
	init(argc, argv);
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	int t3 = mk(CLOCK_MONOTONIC, 0, 0, 20 * MS, 20 * MS);
	int t2 = mk(CLOCK_MONOTONIC, 0, 0, 10 * MS, 0);
	struct timespec nap = { 0, 400 * MS };
	nanosleep(&nap, NULL);
	int t1 = mk(CLOCK_MONOTONIC, 0, 0, 1500 * MS, 500 * MS);
	struct timespec rt;
	clock_gettime(CLOCK_REALTIME, &rt);
	rt.tv_sec += 100;
	int t4 = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
	SETUP(t4 >= 0, "timerfd_create t4");
	struct itimerspec abs = { .it_value = rt };
	SETUP(timerfd_settime(t4, TFD_TIMER_ABSTIME, &abs, NULL) == 0, "settime t4");
	int t5 = timerfd_create(CLOCK_BOOTTIME, 0);
	SETUP(t5 >= 0, "timerfd_create t5");
	/* t3 has expired at least this many times before the dump (it started at t0, every 20 ms). */
	uint64_t t3_min = (now_ns(CLOCK_MONOTONIC) - t0) / (20 * MS) - 1;

	install_term();
	ready();
	wait_term();

	struct itimerspec cur;
	long long v;
	uint64_t n = 0;
	ssize_t r;

	/* t3: every expiration since t0 is counted, and no more than time allows */
	uint64_t t3_max = (now_ns(CLOCK_MONOTONIC) - t0) / (20 * MS) + 1;
	n = 0;
	r = read(t3, &n, 8);
	CHECK(r == 8 && n >= t3_min && n <= t3_max, "t3: expected between %llu and %llu expirations, read returned %zd, %llu",
	      (unsigned long long)t3_min, (unsigned long long)t3_max, r, (unsigned long long)n);

	/* t1 */
	CHECK(timerfd_gettime(t1, &cur) == 0, "t1: gettime: %s", strerror(errno));
	CHECK(ts_ns(cur.it_interval) == 500 * MS, "t1: interval expected 0.5 s got %llu ns", (unsigned long long)ts_ns(cur.it_interval));
	CHECK(ts_ns(cur.it_value) > 0 && ts_ns(cur.it_value) <= 1500 * MS, "t1: time left expected in (0, 1.5 s], got %llu ns",
	      (unsigned long long)ts_ns(cur.it_value));
	CHECK(fdinfo_num(t1, "clockid", &v, 10) == 0 && v == CLOCK_MONOTONIC, "t1: clockid %lld", v);
	uint64_t left = ts_ns(cur.it_value), t_read = now_ns(CLOCK_MONOTONIC);
	r = read(t1, &n, 8); /* blocking: the next expiry */
	uint64_t waited = now_ns(CLOCK_MONOTONIC) - t_read;
	CHECK(r == 8 && n >= 1, "t1: read returned %zd, %llu expirations", r, (unsigned long long)n);
	CHECK(waited <= left + 500 * MS, "t1: next expiry came after %llu ms, %llu ms had been left",
	      (unsigned long long)(waited / MS), (unsigned long long)(left / MS));

	/* t2: one expiration, unread at dump */
	CHECK(timerfd_gettime(t2, &cur) == 0 && ts_ns(cur.it_value) == 0 && ts_ns(cur.it_interval) == 0,
	      "t2: expected disarmed, left %llu ns", (unsigned long long)ts_ns(cur.it_value));
	fcntl(t2, F_SETFL, O_NONBLOCK);
	n = 0;
	r = read(t2, &n, 8);
	CHECK(r == 8 && n == 1, "t2: the expiration unread at dump: read returned %zd (%s), %llu", r, r < 0 ? strerror(errno) : "ok",
	      (unsigned long long)n);

	/* t4: absolute, REALTIME, flags */
	CHECK(fdinfo_num(t4, "settime flags", &v, 8) == 0 && v == TFD_TIMER_ABSTIME, "t4: settime flags %llo", v);
	CHECK(fdinfo_num(t4, "clockid", &v, 10) == 0 && v == CLOCK_REALTIME, "t4: clockid %lld", v);
	CHECK(timerfd_gettime(t4, &cur) == 0 && ts_ns(cur.it_value) <= 100000 * MS && ts_ns(cur.it_value) > 80000 * MS,
	      "t4: time left expected in (80 s, 100 s], got %llu ms", (unsigned long long)(ts_ns(cur.it_value) / MS));
	int fl = fcntl(t4, F_GETFL), fdf = fcntl(t4, F_GETFD);
	CHECK((fl & O_NONBLOCK) && fdf == FD_CLOEXEC, "t4: flags %#x fd flags %#x", fl, fdf);
	r = read(t4, &n, 8);
	CHECK(r < 0 && errno == EAGAIN, "t4: read expected EAGAIN, returned %zd", r);

	/* t5 */
	CHECK(fdinfo_num(t5, "clockid", &v, 10) == 0 && v == CLOCK_BOOTTIME, "t5: clockid %lld", v);
	CHECK(timerfd_gettime(t5, &cur) == 0 && ts_ns(cur.it_value) == 0, "t5: expected disarmed");
	return finish();
}
