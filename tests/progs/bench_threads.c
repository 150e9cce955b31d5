/* Benchmark subject: a process with M threads (default 500) waiting in pause(). On SIGTERM: PASS
 * when all M threads are still there (/proc/self/task). */
#include "common.h"
#include <dirent.h>
#include <pthread.h>

static void *idle(void *a)
{
	(void)a;
	for (;;)
		pause();
	return NULL;
}

int main(int argc, char **argv)
{
	init(argc, argv);
	install_term();
	int m = argc > 2 ? atoi(argv[2]) : 500;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 64 * 1024);
	for (int i = 0; i < m; i++) {
		pthread_t t;
		SETUP(pthread_create(&t, &at, idle, NULL) == 0, "pthread_create");
	}
	ready();
	wait_term();
	int n = 0;
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	CHECK(n == m + 1, "expected %d threads, found %d", m + 1, n);
	return finish();
}
