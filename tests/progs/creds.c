/* Credentials that need a careful restore order (nginx's workers as `nobody`, a daemon that dropped
 * privileges, a service with a reduced capability set). Modes:
 *   user     the process switched to uid 1000/1001/1002, gid 2000/2001/2002, groups 100 200 300 and
 *            dropped every capability (as setuid() does); a forked child did the same to other ids.
 *   caps     still uid 0, with reduced sets: CAP_NET_RAW and CAP_SYS_PTRACE dropped from the bounding
 *            set, a permitted/effective/inheritable subset, CAP_NET_BIND_SERVICE ambient, and
 *            SECBIT_KEEP_CAPS | SECBIT_NO_SETUID_FIXUP set.
 *   threads  three threads with their own uids and gids (raw setresuid/setresgid: per thread).
 * After restore every thread's /proc status lines (Uid, Gid, Groups, Cap*) and its own getres[ug]id and
 * securebits must be what they were before the dump. */
#include "common.h"
#include <grp.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <linux/securebits.h>

#define NT 3

struct snap {
	char lines[8][128];
	uid_t r, e, s;
	gid_t gr, ge, gs;
	int secbits;
};

static void take(struct snap *sn)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/self/task/%ld/status", (long)syscall(SYS_gettid));
	int fd = open(path, O_RDONLY);
	SETUP(fd >= 0, "open status");
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	SETUP(n > 0, "read status");
	buf[n] = 0;
	static const char *keys[] = { "Uid:", "Gid:", "Groups:", "CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:" };
	for (int k = 0; k < 8; k++) {
		char *p = strstr(buf, keys[k]);
		SETUP(p != NULL, keys[k]);
		char *e = strchr(p, '\n');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len > 127)
			len = 127;
		memcpy(sn->lines[k], p, len);
		sn->lines[k][len] = 0;
	}
	syscall(SYS_getresuid, &sn->r, &sn->e, &sn->s);
	syscall(SYS_getresgid, &sn->gr, &sn->ge, &sn->gs);
	sn->secbits = prctl(PR_GET_SECUREBITS);
}

static void compare(const char *who, const struct snap *a, const struct snap *b)
{
	for (int k = 0; k < 8; k++)
		CHECK(strcmp(a->lines[k], b->lines[k]) == 0, "%s: '%s' before, '%s' after", who, a->lines[k], b->lines[k]);
	CHECK(a->r == b->r && a->e == b->e && a->s == b->s, "%s: getresuid %u/%u/%u before, %u/%u/%u after", who, a->r,
	      a->e, a->s, b->r, b->e, b->s);
	CHECK(a->gr == b->gr && a->ge == b->ge && a->gs == b->gs, "%s: getresgid %u/%u/%u before, %u/%u/%u after", who,
	      a->gr, a->ge, a->gs, b->gr, b->ge, b->gs);
	CHECK(a->secbits == b->secbits, "%s: securebits %#x before, %#x after", who, a->secbits, b->secbits);
}

static int capset_raw(uint64_t eff, uint64_t prm, uint64_t inh)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = {
		{ (uint32_t)eff, (uint32_t)prm, (uint32_t)inh },
		{ (uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32) },
	};
	return (int)syscall(SYS_capset, &h, d);
}

static void drop_to(uid_t u, gid_t g, const gid_t *groups, int ng)
{
	SETUP(setgroups(ng, groups) == 0, "setgroups");
	SETUP(syscall(SYS_setresgid, g, g + 1, g + 2) == 0, "setresgid");
	SETUP(syscall(SYS_setresuid, u, u + 1, u + 2) == 0, "setresuid");
}

struct th {
	pthread_t t;
	int idx;
	struct snap before, after;
	volatile int ready, go, done;
};
static struct th g_th[NT];

static void *thread_main(void *arg)
{
	struct th *t = arg;
	/* Raw calls: glibc's setresuid would change every thread. */
	SETUP(syscall(SYS_setresgid, 3000 + t->idx, 3100 + t->idx, 3200 + t->idx) == 0, "thread setresgid");
	SETUP(syscall(SYS_setresuid, 4000 + t->idx, 4100 + t->idx, 4200 + t->idx) == 0, "thread setresuid");
	take(&t->before);
	t->ready = 1;
	while (!t->go)
		usleep(2000);
	take(&t->after);
	t->done = 1;
	return NULL;
}

int main(int argc, char **argv)
{
	init(argc, argv);
	const char *mode = argc > 2 ? argv[2] : "user";
	/* OUTFILE stays writable by the ids this program switches to. */
	int ofd = open(g_out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
	SETUP(ofd >= 0 && fchmod(ofd, 0666) == 0, "OUTFILE");
	close(ofd);
	int pfd[2] = { -1, -1 };
	pid_t child = -1;
	if (!strcmp(mode, "user")) {
		SETUP(pipe(pfd) == 0, "pipe");
		child = fork();
		SETUP(child >= 0, "fork");
		if (child == 0) {
			close(pfd[1]);
			static const gid_t cg[] = { 400, 500 };
			drop_to(65534 - 2, 65534 - 2, cg, 2);
			struct snap a, b;
			take(&a);
			char c;
			while (read(pfd[0], &c, 1) < 0 && errno == EINTR)
				;
			take(&b);
			compare("child", &a, &b);
			_exit(g_fails ? 1 : 0);
		}
		close(pfd[0]);
		static const gid_t groups[] = { 100, 200, 300 };
		drop_to(1000, 2000, groups, 3);
	} else if (!strcmp(mode, "caps")) {
		SETUP(prctl(PR_CAPBSET_DROP, CAP_NET_RAW) == 0, "drop CAP_NET_RAW from bounding");
		SETUP(prctl(PR_CAPBSET_DROP, CAP_SYS_PTRACE) == 0, "drop CAP_SYS_PTRACE from bounding");
		uint64_t prm = (1ull << CAP_NET_BIND_SERVICE) | (1ull << CAP_CHOWN) | (1ull << CAP_SETUID) |
			       (1ull << CAP_SETGID) | (1ull << CAP_DAC_OVERRIDE) | (1ull << CAP_SETPCAP);
		uint64_t eff = (1ull << CAP_NET_BIND_SERVICE) | (1ull << CAP_CHOWN) | (1ull << CAP_SETPCAP);
		uint64_t inh = (1ull << CAP_NET_BIND_SERVICE) | (1ull << CAP_SETUID);
		SETUP(capset_raw(eff, prm, inh) == 0, "capset");
		SETUP(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0) == 0, "ambient raise");
		SETUP(prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_NO_SETUID_FIXUP) == 0, "securebits");
	} else if (!strcmp(mode, "threads")) {
		for (int i = 0; i < NT; i++) {
			g_th[i].idx = i;
			SETUP(pthread_create(&g_th[i].t, NULL, thread_main, &g_th[i]) == 0, "pthread_create");
		}
		for (int i = 0; i < NT; i++)
			while (!g_th[i].ready)
				usleep(1000);
	}
	struct snap before, after;
	take(&before);
	install_term();
	ready();
	wait_term();
	take(&after);
	compare("main thread", &before, &after);
	if (child > 0) {
		ssize_t w = write(pfd[1], "x", 1);
		(void)w;
		int st = 0;
		waitpid(child, &st, 0);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: its credentials differ after restore (status %#x)", st);
	}
	if (!strcmp(mode, "threads")) {
		for (int i = 0; i < NT; i++) {
			g_th[i].go = 1;
			pthread_join(g_th[i].t, NULL);
			char who[32];
			snprintf(who, sizeof(who), "thread %d", i);
			compare(who, &g_th[i].before, &g_th[i].after);
		}
	}
	return finish();
}
