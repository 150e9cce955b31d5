/* Test fixture for the plugin tests (built with cc -shared -fPIC, not a test program):
 * a C plugin whose behaviour is chosen at compile time.
 *   -DFIXTURE_NAME='"x"'      its name (default "fixture")
 *   -DFIXTURE_ABI=N           the ABI version it reports (default RCR_PLUGIN_ABI_VERSION)
 *   -DFIXTURE_V1              built as a plugin of ABI version 1 (reports 1, its struct ends where
 *                             version 1's did): must keep loading in a newer rcr
 *   -DFIXTURE_V2              the same for ABI version 2 (its struct ends at restore_ext_link; the
 *                             restore_task it sets lies beyond its size and must not be read)
 *   -DFIXTURE_FAIL_INIT       init fails with a message
 *   -DFIXTURE_CLAIM           dump_file claims every bpf map and writes image "claimed-<id>" with the fd;
 *                             dump_vma claims their mappings ("claimed-vma-<id>") unless
 *                             -DFIXTURE_NO_VMA
 *   -DFIXTURE_THREADS         checkpoint_devices rings the toy device's doorbell (tests/progs/bpf_dev.c
 *                             "threads") and lets only thread "toydev-drv" run (run_thread) until it
 *                             answers; dump_devices_late checks that run_thread is refused there
 *   -DFIXTURE_EXT             the external unix socket / mount / link hooks (engine unit tests)
 *   -DFIXTURE_IOU             kernel_thread says io_uring's workers (iou-*) may stay
 *   -DFIXTURE_NO_ENTRY        exports no rcr_plugin_entry */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rcr_plugin.h"

#ifndef FIXTURE_NAME
#define FIXTURE_NAME "fixture"
#endif
#ifdef FIXTURE_V1
#define FIXTURE_ABI 1
#endif
#ifdef FIXTURE_V2
#define FIXTURE_ABI 2
#endif
#ifndef FIXTURE_ABI
#define FIXTURE_ABI RCR_PLUGIN_ABI_VERSION
#endif

static void fail(const struct rcr_host *h, const char *fmt, ...) __attribute__((format(printf, 2, 3), unused));
static void fail(const struct rcr_host *h, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	h->set_error(h->ctx, (const uint8_t *)buf, n < 0 ? 0 : (size_t)n >= sizeof(buf) ? sizeof(buf) - 1 : (size_t)n);
}

__attribute__((unused)) static int32_t put_image(const struct rcr_host *h, const char *name, const char *data)
{
	return h->write_image(h->ctx, (const uint8_t *)name, strlen(name), (const uint8_t *)data, strlen(data));
}

static int32_t fx_init(const struct rcr_host *h, uint32_t stage)
{
	(void)stage;
#ifdef FIXTURE_FAIL_INIT
	fail(h, "fixture: the device is not present");
	return RCR_ERROR;
#else
	(void)h;
	return RCR_OK;
#endif
}

static int32_t fx_dump_file(const struct rcr_host *h, const struct rcr_file *f, uint32_t id)
{
#ifdef FIXTURE_CLAIM
	const char *want = "anon_inode:bpf-map";
	if (f->path_len != strlen(want) || memcmp(f->path, want, f->path_len) != 0)
		return RCR_NOT_MINE;
	char name[32], data[32];
	snprintf(name, sizeof(name), "claimed-%u", id);
	snprintf(data, sizeof(data), "%d\n", f->fd);
	return put_image(h, name, data);
#else
	(void)h;
	(void)f;
	(void)id;
	return RCR_NOT_MINE;
#endif
}

#if defined(FIXTURE_CLAIM) && !defined(FIXTURE_NO_VMA)
static int32_t fx_dump_vma(const struct rcr_host *h, const struct rcr_vma *v, uint32_t id)
{
	const char *want = "anon_inode:bpf-map";
	if (v->path_len != strlen(want) || memcmp(v->path, want, v->path_len) != 0)
		return RCR_NOT_MINE;
	char name[32];
	snprintf(name, sizeof(name), "claimed-vma-%u", id);
	return put_image(h, name, "");
}
#endif

#ifdef FIXTURE_THREADS
#define REG_ACK_DRV 5
#define REG_ACK_OTHER 6
#define REG_DOORBELL 7

static int map_elem(int cmd, int fd, uint32_t key, uint64_t *value)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)fd;
	a.key = (uintptr_t)&key;
	a.value = (uintptr_t)value;
	return (int)syscall(__NR_bpf, cmd, &a, sizeof(a));
}

/* A copy of pid's register map (the mappable rcr_toydev), or -1. */
static int device_of(int pid)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -1;
	char dir[64], link[64], path[384];
	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	DIR *d = opendir(dir);
	int found = -1;
	for (struct dirent *e; d && found < 0 && (e = readdir(d));) {
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = 0;
		if (strcmp(link, "anon_inode:bpf-map") != 0)
			continue;
		int fd = (int)syscall(SYS_pidfd_getfd, pidfd, atoi(e->d_name), 0);
		struct bpf_map_info info;
		memset(&info, 0, sizeof(info));
		union bpf_attr a;
		memset(&a, 0, sizeof(a));
		a.info.bpf_fd = (uint32_t)fd;
		a.info.info_len = sizeof(info);
		a.info.info = (uintptr_t)&info;
		if (fd >= 0 && syscall(__NR_bpf, BPF_OBJ_GET_INFO_BY_FD, &a, sizeof(a)) == 0 &&
		    strcmp(info.name, "rcr_toydev") == 0 && (info.map_flags & BPF_F_MMAPABLE))
			found = fd;
		else if (fd >= 0)
			close(fd);
	}
	if (d)
		closedir(d);
	close(pidfd);
	return found;
}

/* The tid of pid's thread named `comm`, or -1. */
static int thread_named(int pid, const char *comm)
{
	char dir[64], path[384], name[32];
	snprintf(dir, sizeof(dir), "/proc/%d/task", pid);
	DIR *d = opendir(dir);
	int tid = -1;
	for (struct dirent *e; d && tid < 0 && (e = readdir(d));) {
		snprintf(path, sizeof(path), "%s/%s/comm", dir, e->d_name);
		FILE *f = fopen(path, "r");
		if (f && fgets(name, sizeof(name), f) && strncmp(name, comm, strlen(comm)) == 0 && name[strlen(comm)] == '\n')
			tid = atoi(e->d_name);
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return tid;
}

static int32_t fx_checkpoint_devices(const struct rcr_host *h, int32_t pid)
{
	int dev = device_of(pid), tid = thread_named(pid, "toydev-drv");
	if (dev < 0 || tid < 0) {
		fail(h, "pid %d: no toy device (%d) or no toydev-drv thread (%d)", pid, dev, tid);
		if (dev >= 0)
			close(dev);
		return RCR_ERROR;
	}
	uint64_t v = 1, drv = 0, other = 0;
	int32_t r = RCR_ERROR;
	if (map_elem(BPF_MAP_UPDATE_ELEM, dev, REG_DOORBELL, &v) != 0) {
		fail(h, "ringing the doorbell: %s", strerror(errno));
		goto out;
	}
	/* The task is frozen: only the thread rcr lets run can answer. */
	for (int i = 0; i < 50 && drv == 0; i++) {
		if (h->run_thread(h->ctx, pid, tid, 100) != RCR_OK)
			goto out; /* rcr set the message */
		map_elem(BPF_MAP_LOOKUP_ELEM, dev, REG_ACK_DRV, &drv);
	}
	v = 0;
	map_elem(BPF_MAP_UPDATE_ELEM, dev, REG_DOORBELL, &v);
	map_elem(BPF_MAP_LOOKUP_ELEM, dev, REG_ACK_OTHER, &other);
	if (drv != (uint64_t)tid) {
		fail(h, "toydev-drv (tid %d) did not answer the doorbell in 5 s of run_thread (ack %llu)", tid, (unsigned long long)drv);
		goto out;
	}
	if (other != 0) {
		fail(h, "toydev-other answered while only toydev-drv was let run (ack %llu)", (unsigned long long)other);
		goto out;
	}
	r = RCR_OK;
out:
	close(dev);
	return r;
}

static int32_t fx_dump_devices_late(const struct rcr_host *h, int32_t pid)
{
	int tid = thread_named(pid, "toydev-drv");
	if (h->run_thread(h->ctx, pid, tid, 10) == RCR_OK) {
		fail(h, "run_thread worked outside checkpoint_devices");
		return RCR_ERROR;
	}
	return RCR_OK;
}
#endif

#ifdef FIXTURE_EXT
/* Claims sockets whose peer is inode 4242, mounts of fstype "fixturefs", links of kind "veth" named
 * fx0; restoring them leaves traces in the store that the engine's unit test reads. */
static int32_t fx_dump_ext_unix_sk(const struct rcr_host *h, const struct rcr_file *f, uint64_t peer_ino, uint32_t id)
{
	if (peer_ino != 4242)
		return RCR_NOT_MINE;
	char name[32], data[32];
	snprintf(name, sizeof(name), "usk-%u", id);
	snprintf(data, sizeof(data), "%d", f->fd);
	return put_image(h, name, data);
}

static int32_t fx_restore_ext_unix_sk(const struct rcr_host *h, uint32_t id, int32_t *fd)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		fail(h, "socketpair: %s", strerror(errno));
		return RCR_ERROR;
	}
	char key[32];
	snprintf(key, sizeof(key), "usk-peer-%u", id);
	int32_t r = h->store_put(h->ctx, (const uint8_t *)key, strlen(key), (const uint8_t *)"peer", 4, sv[1]);
	close(sv[1]);
	if (r != RCR_OK) {
		close(sv[0]);
		return r;
	}
	*fd = sv[0];
	return RCR_OK;
}

static int32_t fx_dump_ext_mount(const struct rcr_host *h, const struct rcr_mount *m, uint32_t id)
{
	if (m->fstype_len != 9 || memcmp(m->fstype, "fixturefs", 9) != 0)
		return RCR_NOT_MINE;
	char name[32];
	snprintf(name, sizeof(name), "mnt-%u", id);
	return put_image(h, name, "fixturefs");
}

static int32_t fx_restore_ext_mount(const struct rcr_host *h, uint32_t id, const char *mountpoint, size_t len)
{
	char key[32];
	snprintf(key, sizeof(key), "mnt-%u", id);
	return h->store_put(h->ctx, (const uint8_t *)key, strlen(key), (const uint8_t *)mountpoint, len, -1);
}

static int32_t fx_dump_ext_link(const struct rcr_host *h, const struct rcr_link *l, uint32_t id)
{
	(void)h;
	(void)id;
	if (l->kind_len != 4 || memcmp(l->kind, "veth", 4) != 0 || l->name_len != 3 || memcmp(l->name, "fx0", 3) != 0)
		return RCR_NOT_MINE;
	return RCR_OK;
}

static int32_t fx_restore_ext_link(const struct rcr_host *h, uint32_t id, const char *name, size_t len)
{
	char key[32];
	snprintf(key, sizeof(key), "link-%u", id);
	return h->store_put(h->ctx, (const uint8_t *)key, strlen(key), (const uint8_t *)name, len, -1);
}
#endif

#ifdef FIXTURE_RETRY
/* restore_file: file 1 asks to be called again (RCR_RETRY) until file 2 is restored; file 3 never
 * comes up. Each restored file is /dev/null. */
static int fx_restored_2;
static int32_t fx_restore_file(const struct rcr_host *h, uint32_t id, int32_t *fd)
{
	if (id == 1 && !fx_restored_2) {
		fail(h, "file 2 first");
		return RCR_RETRY;
	}
	if (id == 3) {
		fail(h, "the device to come up");
		return RCR_RETRY;
	}
	int f = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (f < 0) {
		fail(h, "open /dev/null: %s", strerror(errno));
		return RCR_ERROR;
	}
	if (id == 2)
		fx_restored_2 = 1;
	*fd = f;
	return RCR_OK;
}
#endif

#ifdef FIXTURE_IOU
static int32_t fx_kernel_thread(const struct rcr_host *h, int32_t pid, int32_t tid, const char *comm, size_t len)
{
	(void)h;
	(void)pid;
	(void)tid;
	return len >= 4 && memcmp(comm, "iou-", 4) == 0 ? RCR_OK : RCR_NOT_MINE;
}
#endif

#ifdef FIXTURE_V2
static int32_t fx_restore_task(const struct rcr_host *h, int32_t pid)
{
	fail(h, "fixture: restore_task of an ABI-2 plugin was called for pid %d", pid);
	return RCR_ERROR;
}
#endif

static const struct rcr_plugin plugin = {
	.abi_version = FIXTURE_ABI,
#if defined(FIXTURE_V1)
	.size = RCR_PLUGIN_SIZE_V1,
#elif defined(FIXTURE_V2)
	.size = RCR_PLUGIN_SIZE_V2,
	.restore_task = fx_restore_task,
#else
	.size = sizeof(struct rcr_plugin),
#endif
	.name = FIXTURE_NAME,
	.version = "0.0.1",
	.init = fx_init,
	.dump_file = fx_dump_file,
#if defined(FIXTURE_CLAIM) && !defined(FIXTURE_NO_VMA)
	.dump_vma = fx_dump_vma,
#endif
#ifdef FIXTURE_THREADS
	.checkpoint_devices = fx_checkpoint_devices,
	.dump_devices_late = fx_dump_devices_late,
#endif
#ifdef FIXTURE_IOU
	.kernel_thread = fx_kernel_thread,
#endif
#ifdef FIXTURE_RETRY
	.restore_file = fx_restore_file,
#endif
#ifdef FIXTURE_EXT
	.dump_ext_unix_sk = fx_dump_ext_unix_sk,
	.restore_ext_unix_sk = fx_restore_ext_unix_sk,
	.dump_ext_mount = fx_dump_ext_mount,
	.restore_ext_mount = fx_restore_ext_mount,
	.dump_ext_link = fx_dump_ext_link,
	.restore_ext_link = fx_restore_ext_link,
#endif
};

#ifndef FIXTURE_NO_ENTRY
const struct rcr_plugin *rcr_plugin_entry(void)
{
	return &plugin;
}
#else
const struct rcr_plugin *fixture_descriptor(void)
{
	return &plugin;
}
#endif
