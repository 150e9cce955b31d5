/* A task waiting in sigsuspend(2) with a mask of its own: its normal mask blocks SIGUSR1 and SIGTERM,
 * and it waits with SIGTERM let through. After dump and restore (or a dump with -R) the call must
 * give back the task's own mask when the handler has run, not the call's temporary one, which is what
 * /proc shows while it waits. */
#include "common.h"

int main(int argc, char **argv)
{
	init(argc, argv);
	install_term();
	sigset_t own, during, now;
	sigemptyset(&own);
	sigaddset(&own, SIGUSR1);
	sigaddset(&own, SIGTERM);
	SETUP(sigprocmask(SIG_SETMASK, &own, NULL) == 0, "sigprocmask");
	during = own;
	sigdelset(&during, SIGTERM);
	ready();
	while (!g_term)
		sigsuspend(&during);
	SETUP(sigprocmask(SIG_SETMASK, NULL, &now) == 0, "sigprocmask read");
	CHECK(sigismember(&now, SIGUSR1) && sigismember(&now, SIGTERM), "after sigsuspend the mask is the task's own (SIGUSR1 %d, SIGTERM %d blocked)",
	      sigismember(&now, SIGUSR1), sigismember(&now, SIGTERM));
	return finish();
}
