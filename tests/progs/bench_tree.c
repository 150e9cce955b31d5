/* Benchmark subject: a tree of N processes (default 100): the root, 9 children, each with children
 * of its own, all waiting in pause(). On SIGTERM the root kills every child and reaps them: PASS when all
 * N-1 are still its descendants after restore and die by its signal. */
#include "common.h"
#include <sys/prctl.h>
#include <sys/wait.h>

int main(int argc, char **argv)
{
	init(argc, argv);
	install_term();
	int n = argc > 2 ? atoi(argv[2]) : 100;
	int kids = 9, per = (n - 1 - kids + kids - 1) / kids;
	pid_t pids[16];
	int made = 0, created = 0;
	for (int i = 0; i < kids && made < n - 1; i++) {
		int grand = per;
		if (made + 1 + grand > n - 1)
			grand = n - 1 - made - 1;
		if (grand < 0)
			grand = 0;
		pid_t p = fork();
		SETUP(p >= 0, "fork");
		if (p == 0) {
			pid_t g[256];
			for (int j = 0; j < grand; j++) {
				g[j] = fork();
				if (g[j] == 0) {
					prctl(PR_SET_PDEATHSIG, SIGKILL);
					for (;;)
						pause();
				}
			}
			signal(SIGTERM, SIG_DFL);
			for (;;)
				pause();
			(void)g;
		}
		pids[created++] = p;
		made += 1 + grand;
	}
	/* Wait until every grandchild exists, so that the tree is complete when READY is seen. */
	for (int tries = 0; tries < 10000; tries++) {
		int have = created;
		for (int i = 0; i < created; i++) {
			char path[64], buf[4096];
			snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pids[i], pids[i]);
			FILE *f = fopen(path, "re");
			if (!f)
				continue;
			size_t len = fread(buf, 1, sizeof(buf) - 1, f);
			fclose(f);
			buf[len] = 0;
			for (char *t = strtok(buf, " \n"); t; t = strtok(NULL, " \n"))
				have++;
		}
		if (have >= n - 1)
			break;
		usleep(1000);
	}
	ready();
	wait_term();
	int dead = 0;
	for (int i = 0; i < created; i++) {
		kill(pids[i], SIGTERM);
		int st;
		if (waitpid(pids[i], &st, 0) == pids[i] && WIFSIGNALED(st))
			dead++;
	}
	CHECK(dead == created, "only %d of %d children were ours and died by SIGTERM", dead, created);
	return finish();
}
