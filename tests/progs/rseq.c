/* rseq: glibc registered the thread's rseq area (__rseq_size / __rseq_offset). After restore the
 * registration is still in place: the kernel rewrites cpu_id after we overwrite it with a sentinel
 * (on the next preemption / signal delivery), and registering the same area again fails EBUSY. */
#include "common.h"
#include <sys/rseq.h>
#include <sys/syscall.h>

#ifndef RSEQ_SIG
#define RSEQ_SIG 0x53053053
#endif

#define SENTINEL 0xfffffff0u

static void on_usr1(int sig)
{
	(void)sig;
}

static struct rseq *area(void)
{
	return (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

static void check_registered(const char *when)
{
	volatile struct rseq *rs = area();
	uint32_t cpu = rs->cpu_id;
	CHECK(cpu != (uint32_t)RSEQ_CPU_ID_UNINITIALIZED && cpu != (uint32_t)RSEQ_CPU_ID_REGISTRATION_FAILED,
	      "%s: rseq cpu_id is %d (not registered)", when, (int)cpu);

	/* The kernel updates cpu_id when it returns to user space after a signal or preemption. */
	rs->cpu_id = SENTINEL;
	int updated = 0;
	for (int i = 0; i < 1000 && !updated; i++) {
		raise(SIGUSR1);
		if (rs->cpu_id != SENTINEL)
			updated = 1;
		else
			usleep(1000);
	}
	CHECK(updated, "%s: rseq cpu_id not updated by the kernel after signals and sleeps (area %p)", when,
	      (void *)rs);
	if (updated) {
		int ncpu = (int)sysconf(_SC_NPROCESSORS_CONF);
		CHECK((int)rs->cpu_id >= 0 && (int)rs->cpu_id < ncpu, "%s: rseq cpu_id %u out of range (%d cpus)",
		      when, rs->cpu_id, ncpu);
	}

	/* Registering the same area again: EBUSY if (and only if) it is registered already. */
	unsigned lens[] = { 32, __rseq_size };
	int r = -1, err = 0;
	for (int i = 0; i < 2; i++) {
		r = (int)syscall(SYS_rseq, (void *)rs, lens[i], 0, RSEQ_SIG);
		err = errno;
		if (!(r == -1 && err == EINVAL))
			break;
	}
	CHECK(r == -1 && err == EBUSY, "%s: re-registering the rseq area: expected EBUSY, got %d (%s)", when, r,
	      r == 0 ? "success: it was not registered" : strerror(err));
}

int main(int argc, char **argv)
{
	init(argc, argv);
	CHECK(__rseq_size > 0, "setup: glibc did not register rseq (__rseq_size 0; glibc.pthread.rseq=0?)");
	if (g_fails)
		return finish();
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	SETUP(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction");
	check_registered("before dump");
	if (g_fails)
		return finish();
	out_line("# rseq area %p size %u offset %td", (void *)area(), __rseq_size, __rseq_offset);

	install_term();
	ready();
	wait_term();
	check_registered("after restore");
	return finish();
}
