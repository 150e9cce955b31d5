/* Process identity and attributes. `identity OUTFILE [batch|idle]`:
 * umask, cwd (a new dir next to OUTFILE), comm, rlimits (NOFILE, STACK, CORE, CPU, NPROC lowered,
 * soft and hard), nice, SCHED_BATCH or SCHED_IDLE, supplementary groups and real/effective/saved
 * gids (as root), no_new_privs, pdeath signal (SIGWINCH: harmless if the parent dies), dumpable 0,
 * personality ADDR_NO_RANDOMIZE, and a seccomp filter making sysinfo(2) fail with ENOMSG. */
#include "common.h"
#include <grp.h>
#include <libgen.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>

#define COMM "rcr-ident-42"
#define SECCOMP_ERRNO ENOMSG

static const int rl_res[] = { RLIMIT_NOFILE, RLIMIT_STACK, RLIMIT_CORE, RLIMIT_CPU, RLIMIT_NPROC };
static const char *rl_names[] = { "NOFILE", "STACK", "CORE", "CPU", "NPROC" };
static const struct rlimit rl_val[] = {
	{ 200, 300 }, { 4 << 20, 64 << 20 }, { 4096, 1 << 20 }, { 100000, 200000 }, { 5000, 6000 },
};
#define NRL 5
static const gid_t groups[] = { 1001, 1002, 1003 };

static void install_seccomp(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_sysinfo, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | SECCOMP_ERRNO),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };
	SETUP(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0, "seccomp filter");
}

static void check_all(const char *when, const char *cwd, int policy)
{
	mode_t m = umask(0);
	umask(m);
	CHECK(m == 027, "%s: umask: expected 027 got %03o", when, m);
	char buf[1024];
	CHECK(getcwd(buf, sizeof(buf)) && strcmp(buf, cwd) == 0, "%s: cwd: expected %s got %s", when, cwd, buf);
	char comm[32] = "";
	prctl(PR_GET_NAME, comm);
	CHECK(strcmp(comm, COMM) == 0, "%s: comm: expected %s got %s", when, COMM, comm);
	for (int i = 0; i < NRL; i++) {
		struct rlimit r;
		getrlimit(rl_res[i], &r);
		CHECK(r.rlim_cur == rl_val[i].rlim_cur && r.rlim_max == rl_val[i].rlim_max,
		      "%s: RLIMIT_%s: expected %llu/%llu got %llu/%llu", when, rl_names[i],
		      (unsigned long long)rl_val[i].rlim_cur, (unsigned long long)rl_val[i].rlim_max,
		      (unsigned long long)r.rlim_cur, (unsigned long long)r.rlim_max);
	}
	errno = 0;
	int nice = getpriority(PRIO_PROCESS, 0);
	CHECK(nice == 7, "%s: nice: expected 7 got %d", when, nice);
	int pol = sched_getscheduler(0);
	CHECK(pol == policy, "%s: scheduling policy: expected %d got %d", when, policy, pol);
	gid_t g[16];
	int ng = getgroups(16, g);
	int same = ng == 3;
	for (int i = 0; same && i < 3; i++)
		same = g[i] == groups[i];
	CHECK(same, "%s: supplementary groups: expected 1001 1002 1003, got %d groups starting %d", when, ng,
	      ng > 0 ? (int)g[0] : -1);
	gid_t rg, eg, sg;
	getresgid(&rg, &eg, &sg);
	CHECK(rg == 1234 && eg == 1235 && sg == 1236, "%s: resgid: expected 1234/1235/1236 got %u/%u/%u", when, rg,
	      eg, sg);
	CHECK(getuid() == 0 && geteuid() == 0, "%s: uid/euid: expected 0/0 got %u/%u", when, getuid(), geteuid());
	int nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	CHECK(nnp == 1, "%s: no_new_privs: expected 1 got %d", when, nnp);
	int pds = 0;
	prctl(PR_GET_PDEATHSIG, &pds);
	CHECK(pds == SIGWINCH, "%s: pdeath signal: expected %d got %d", when, SIGWINCH, pds);
	int dump = prctl(PR_GET_DUMPABLE);
	CHECK(dump == 0, "%s: dumpable: expected 0 got %d", when, dump);
	int pers = personality(0xffffffff);
	CHECK(pers == (PER_LINUX | ADDR_NO_RANDOMIZE), "%s: personality: expected %#x got %#x", when,
	      PER_LINUX | ADDR_NO_RANDOMIZE, pers);
	struct sysinfo si;
	errno = 0;
	int r = sysinfo(&si);
	CHECK(r == -1 && errno == SECCOMP_ERRNO, "%s: seccomp: sysinfo expected -1/ENOMSG got %d/%s", when, r,
	      strerror(errno));
	char sc[64] = "";
	status_field("Seccomp", sc, sizeof(sc));
	CHECK(strcmp(sc, "2") == 0, "%s: /proc/self/status Seccomp: expected 2 got '%s'", when, sc);
	status_field("Seccomp_filters", sc, sizeof(sc));
	CHECK(strcmp(sc, "1") == 0, "%s: /proc/self/status Seccomp_filters: expected 1 got '%s'", when, sc);
}

int main(int argc, char **argv)
{
	init(argc, argv);
	const char *mode = argc > 2 ? argv[2] : "batch";
	int policy = strcmp(mode, "idle") == 0 ? SCHED_IDLE : SCHED_BATCH;

	/* OUTFILE is given as an absolute path, so changing cwd does not break reporting. */
	SETUP(g_out[0] == '/', "OUTFILE must be absolute");
	char tmp[512], cwd[600];
	snprintf(tmp, sizeof(tmp), "%s", g_out);
	snprintf(cwd, sizeof(cwd), "%s/cwd-%d", dirname(tmp), getpid());
	SETUP(mkdir(cwd, 0755) == 0, "mkdir cwd");
	SETUP(chdir(cwd) == 0, "chdir");
	umask(027);
	SETUP(prctl(PR_SET_NAME, COMM) == 0, "PR_SET_NAME");
	for (int i = 0; i < NRL; i++)
		SETUP(setrlimit(rl_res[i], &rl_val[i]) == 0, "setrlimit");
	SETUP(setpriority(PRIO_PROCESS, 0, 7) == 0, "setpriority");
	struct sched_param sp = { 0 };
	SETUP(sched_setscheduler(0, policy, &sp) == 0, "sched_setscheduler");
	SETUP(setgroups(3, groups) == 0, "setgroups");
	SETUP(setresgid(1234, 1235, 1236) == 0, "setresgid");
	/* After the credential change: it resets pdeath_signal and dumpable. */
	SETUP(prctl(PR_SET_PDEATHSIG, SIGWINCH) == 0, "PR_SET_PDEATHSIG");
	SETUP(prctl(PR_SET_DUMPABLE, 0) == 0, "PR_SET_DUMPABLE");
	SETUP(personality(PER_LINUX | ADDR_NO_RANDOMIZE) != -1, "personality");
	SETUP(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "PR_SET_NO_NEW_PRIVS");
	install_seccomp();

	check_all("before dump", cwd, policy);
	if (g_fails)
		return finish();
	install_term();
	ready();
	wait_term();
	check_all("after restore", cwd, policy);
	return finish();
}
