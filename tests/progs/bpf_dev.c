/* The toy device of the plugin tests: BPF array maps named "rcr_toydev" used as a device's register
 * file. Their state lives in the kernel and is reached through the bpf() syscall (and, for the
 * mappable one, through a shared mapping, like device MMIO); rcr's core cannot checkpoint them.
 *
 *   fd 20: registers: 8 x u64, BPF_F_MMAPABLE, mapped MAP_SHARED at g_regs; fd 22: a dup of fd 20
 *          (one device, two fds);
 *   fd 21: a frozen "config ROM": 3 x 16 bytes, BPF_F_RDONLY_PROG, close-on-exec.
 *
 * With the argument "threads", two threads serve the device: each polls the doorbell register (7) and,
 * when it rings, writes its tid into its own acknowledge register (5: "toydev-drv", 6: "toydev-other").
 * The thread-control test's plugin rings the doorbell while the task is frozen and lets only
 * toydev-drv run (run_thread), then silences the doorbell.
 *
 * After restore, from inside: same targets, flags and map attributes (type, sizes, flags, name,
 * frozen), the register values (through the syscall and through the mapping, at the same address), fds
 * 20 and 22 and the mapping are still one device (a write through one is read through the others),
 * the frozen map refuses updates; with "threads": exactly toydev-drv acknowledged. */
#include "common.h"
#include <linux/bpf.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#define NREGS 8
#define REG_ACK_DRV 5
#define REG_ACK_OTHER 6
#define REG_DOORBELL 7

static volatile uint64_t *g_regs; /* the mapping of fd 20 */
static volatile pid_t g_tid[2];
static volatile int g_started[2];

static long bpf(int cmd, union bpf_attr *a)
{
	return syscall(__NR_bpf, cmd, a, sizeof(*a));
}

static int map_create(uint32_t value_size, uint32_t max_entries, uint32_t flags)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_ARRAY;
	a.key_size = 4;
	a.value_size = value_size;
	a.max_entries = max_entries;
	a.map_flags = flags;
	strcpy(a.map_name, "rcr_toydev");
	return (int)bpf(BPF_MAP_CREATE, &a);
}

static int reg_get(int fd, uint32_t key, void *value)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_fd = fd;
	a.key = (uintptr_t)&key;
	a.value = (uintptr_t)value;
	return (int)bpf(BPF_MAP_LOOKUP_ELEM, &a);
}

static int reg_set(int fd, uint32_t key, const void *value)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_fd = fd;
	a.key = (uintptr_t)&key;
	a.value = (uintptr_t)value;
	return (int)bpf(BPF_MAP_UPDATE_ELEM, &a);
}

static uint64_t reg(int fd, uint32_t key)
{
	uint64_t v = 0xbadbadbad;
	if (reg_get(fd, key, &v) != 0)
		failf("fd %d: lookup of register %u: %s", fd, key, strerror(errno));
	return v;
}

static uint8_t rom_byte(int i, int j)
{
	return (uint8_t)(0x40 + i * 16 + j);
}

/* A device thread: serves the doorbell (see the top of the file). */
static void *serve(void *arg)
{
	int me = (int)(intptr_t)arg;
	prctl(PR_SET_NAME, me == 0 ? "toydev-drv" : "toydev-other");
	g_tid[me] = (pid_t)syscall(SYS_gettid);
	g_started[me] = 1;
	uint32_t ack = me == 0 ? REG_ACK_DRV : REG_ACK_OTHER;
	for (;;) {
		uint64_t bell = 0, mine = 0;
		if (reg_get(20, REG_DOORBELL, &bell) == 0 && bell != 0 && reg_get(20, ack, &mine) == 0 && mine == 0) {
			uint64_t tid = (uint64_t)g_tid[me];
			reg_set(20, ack, &tid);
		}
		usleep(1000);
	}
	return NULL;
}

static void check_fd(int fd, int want_fd)
{
	char link[128], lp[64];
	snprintf(lp, sizeof(lp), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(lp, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	CHECK(strcmp(link, "anon_inode:bpf-map") == 0, "fd %d: target expected anon_inode:bpf-map got '%s'", fd, link);
	int fl = fcntl(fd, F_GETFL), fdf = fcntl(fd, F_GETFD);
	CHECK(fl >= 0 && (fl & O_ACCMODE) == O_RDWR, "fd %d: F_GETFL expected O_RDWR got %#x", fd, fl);
	CHECK(fdf == want_fd, "fd %d: F_GETFD expected %#x got %#x", fd, want_fd, fdf);
}

static void check_info(int fd, uint32_t value_size, uint32_t max_entries, uint32_t flags, int frozen)
{
	struct bpf_map_info info;
	memset(&info, 0, sizeof(info));
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.info.bpf_fd = fd;
	a.info.info_len = sizeof(info);
	a.info.info = (uintptr_t)&info;
	if (bpf(BPF_OBJ_GET_INFO_BY_FD, &a) != 0) {
		failf("fd %d: BPF_OBJ_GET_INFO_BY_FD: %s", fd, strerror(errno));
		return;
	}
	CHECK(info.type == BPF_MAP_TYPE_ARRAY && info.key_size == 4 && info.value_size == value_size &&
		      info.max_entries == max_entries && info.map_flags == flags,
	      "fd %d: map type %u key %u value %u entries %u flags %#x, expected 2/4/%u/%u/%#x", fd, info.type,
	      info.key_size, info.value_size, info.max_entries, info.map_flags, value_size, max_entries, flags);
	CHECK(strcmp(info.name, "rcr_toydev") == 0, "fd %d: map name '%s', expected rcr_toydev", fd, info.name);
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	int f = open(path, O_RDONLY);
	ssize_t n = f >= 0 ? read(f, buf, sizeof(buf) - 1) : -1;
	if (f >= 0)
		close(f);
	buf[n > 0 ? n : 0] = 0;
	const char *fr = strstr(buf, "frozen:");
	CHECK(fr && atoi(fr + 7) == frozen, "fd %d: frozen expected %d, fdinfo:\n%s", fd, frozen, buf);
}

int main(int argc, char **argv)
{
	init(argc, argv);
	int threads = argc > 2 && strcmp(argv[2], "threads") == 0;

	int a = map_create(8, NREGS, BPF_F_MMAPABLE);
	SETUP(a >= 0, "BPF_MAP_CREATE (registers)");
	SETUP(dup2(a, 20) == 20 && close(a) == 0, "dup2 20");
	SETUP(dup2(20, 22) == 22, "dup2 22");
	for (uint32_t i = 0; i < 5; i++) {
		uint64_t v = 0x1000 + i * 7;
		SETUP(reg_set(20, i, &v) == 0, "set a register");
	}
	g_regs = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, 20, 0);
	SETUP(g_regs != MAP_FAILED, "mmap the registers");
	g_regs[3] = 0xdead; /* through the mapping */

	int b = map_create(16, 3, BPF_F_RDONLY_PROG);
	SETUP(b >= 0, "BPF_MAP_CREATE (rom)");
	for (uint32_t i = 0; i < 3; i++) {
		uint8_t v[16];
		for (int j = 0; j < 16; j++)
			v[j] = rom_byte((int)i, j);
		SETUP(reg_set(b, i, v) == 0, "fill the rom");
	}
	union bpf_attr fa;
	memset(&fa, 0, sizeof(fa));
	fa.map_fd = (uint32_t)b;
	SETUP(bpf(BPF_MAP_FREEZE, &fa) == 0, "BPF_MAP_FREEZE");
	SETUP(dup3(b, 21, O_CLOEXEC) == 21 && close(b) == 0, "dup3 21");

	pthread_t th[2];
	if (threads) {
		for (int i = 0; i < 2; i++)
			SETUP(pthread_create(&th[i], NULL, serve, (void *)(intptr_t)i) == 0, "pthread_create");
		while (!g_started[0] || !g_started[1])
			usleep(1000);
	}

	install_term();
	ready();
	wait_term();

	check_fd(20, 0);
	check_fd(22, 0);
	check_fd(21, FD_CLOEXEC);
	check_info(20, 8, NREGS, BPF_F_MMAPABLE, 0);
	check_info(22, 8, NREGS, BPF_F_MMAPABLE, 0);
	check_info(21, 16, 3, BPF_F_RDONLY_PROG, 1);
	for (uint32_t i = 0; i < 5; i++) {
		uint64_t want = i == 3 ? 0xdead : 0x1000 + i * 7;
		uint64_t got = reg(22, i);
		CHECK(got == want, "register %u: %#llx, expected %#llx", i, (unsigned long long)got, (unsigned long long)want);
		CHECK(g_regs[i] == want, "register %u through the mapping: %#llx, expected %#llx", i,
		      (unsigned long long)g_regs[i], (unsigned long long)want);
	}
	/* One device: a write through fd 20 is seen through fd 22 and the mapping, and back. */
	uint64_t v = 55;
	CHECK(reg_set(20, 1, &v) == 0, "fd 20: update: %s", strerror(errno));
	CHECK(reg(22, 1) == 55, "fds 20 and 22 are not one device after restore: wrote 55 via 20, read %#llx via 22",
	      (unsigned long long)reg(22, 1));
	CHECK(g_regs[1] == 55, "the mapping is not the device of fd 20 after restore: read %#llx",
	      (unsigned long long)g_regs[1]);
	g_regs[4] = 0xbeef;
	CHECK(reg(22, 4) == 0xbeef, "a write through the mapping is not seen by fd 22: %#llx", (unsigned long long)reg(22, 4));
	for (uint32_t i = 0; i < 3; i++) {
		uint8_t got[16];
		memset(got, 0, sizeof(got));
		CHECK(reg_get(21, i, got) == 0, "rom %u: lookup: %s", i, strerror(errno));
		for (int j = 0; j < 16; j++)
			CHECK(got[j] == rom_byte((int)i, j), "rom %u byte %d: %#x, expected %#x", i, j, got[j], rom_byte((int)i, j));
	}
	uint8_t z[16] = {0};
	errno = 0;
	CHECK(reg_set(21, 0, z) != 0 && errno == EPERM, "the frozen rom accepted an update (errno %d)", errno);
	if (threads) {
		uint64_t drv = reg(20, REG_ACK_DRV), other = reg(20, REG_ACK_OTHER), bell = reg(20, REG_DOORBELL);
		CHECK(drv == (uint64_t)g_tid[0], "toydev-drv (tid %d) did not run alone while frozen: ack register %llu",
		      g_tid[0], (unsigned long long)drv);
		CHECK(other == 0, "toydev-other (tid %d) ran while the task was frozen: ack register %llu", g_tid[1],
		      (unsigned long long)other);
		CHECK(bell == 0, "the doorbell was left ringing: %llu", (unsigned long long)bell);
	}
	return finish();
}
