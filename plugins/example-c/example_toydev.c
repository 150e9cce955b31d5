/* An example rcr plugin, written in C, that a device vendor can copy.
 *
 * The toy device is a BPF array map named "rcr_toydev" used as a device's register file: its state
 * lives in the kernel and is reached through the bpf() syscall, and a map made with BPF_F_MMAPABLE can
 * be mapped into memory like device MMIO. rcr's core knows neither bpf maps nor their mappings, so
 * without a plugin a dump of a process using one fails with "... no plugin claimed it". With this one:
 *
 *  - dump_file (runs in `rcr dump`, task frozen): claims fds whose target is anon_inode:bpf-map and
 *    whose map (BPF_OBJ_GET_INFO_BY_FD) is an array named rcr_toydev; saves its attributes and every
 *    register (BPF_MAP_LOOKUP_ELEM) in the plugin's own image "toydev-<file id>";
 *  - dump_vma (runs in `rcr dump`): claims the process's mapping of its mappable device, noting which
 *    device it maps in image "vma-<id>";
 *  - restore_file (runs in `rcr restore`, before the task is created): creates the map again (same
 *    attributes and name), writes the registers back (BPF_MAP_UPDATE_ELEM), freezes it if it was, and
 *    leaves a copy of its fd in rcr's fork-shared store for update_vma;
 *  - update_vma (runs in `rcr restore`, after the files): gives rcr the device's fd to map the area from.
 *
 * Same name and image format as the Rust version (plugins/example-rust): a checkpoint made with one
 * restores with the other.
 *
 * Build: cc -shared -fPIC -Wall -I plugin-api/include -o example-toydev.so example_toydev.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <linux/bpf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rcr_plugin.h"

#define NAME "example-toydev"
#define DEVICE_NAME "rcr_toydev"
#define BPF_MAP_PATH "anon_inode:bpf-map"
#define MAX_BYTES (64u << 10)

/* ---- thin bpf() wrappers ---- */

static long sys_bpf(int cmd, union bpf_attr *a)
{
	return syscall(__NR_bpf, cmd, a, sizeof(*a));
}

static int map_info(int fd, struct bpf_map_info *info)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	memset(info, 0, sizeof(*info));
	a.info.bpf_fd = (uint32_t)fd;
	a.info.info_len = sizeof(*info);
	a.info.info = (uintptr_t)info;
	return (int)sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a);
}

static int map_elem(int cmd, int fd, uint32_t key, void *value)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)fd;
	a.key = (uintptr_t)&key;
	a.value = (uintptr_t)value;
	return (int)sys_bpf(cmd, &a);
}

/* ---- helpers ---- */

/* Report an error (or retry reason) to rcr with printf formatting. */
static void fail(const struct rcr_host *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(const struct rcr_host *h, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n >= (int)sizeof(buf))
		n = sizeof(buf) - 1;
	h->set_error(h->ctx, (const uint8_t *)buf, (size_t)n);
}

static void say(const struct rcr_host *h, uint32_t level, const char *msg)
{
	h->log(h->ctx, level, (const uint8_t *)msg, strlen(msg));
}

static int is_bpf_map(const char *path, size_t len)
{
	return len == strlen(BPF_MAP_PATH) && memcmp(path, BPF_MAP_PATH, len) == 0;
}

/* Reads a whole image into a new NUL-terminated buffer; NULL with *r = RCR_NOT_MINE or RCR_ERROR.
 * Streamed (ABI 3): rcr opens the image file and hands over an fd, read here in pieces. */
static char *read_image(const struct rcr_host *h, const char *name, int32_t *r)
{
	int32_t fd = -1;
	*r = h->image_open(h->ctx, (const uint8_t *)name, strlen(name), RCR_IMAGE_READ, &fd);
	if (*r != RCR_OK)
		return NULL;
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	for (;;) {
		if (!buf) {
			fail(h, "reading image %s: out of memory", name);
			break;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			fail(h, "reading image %s: %s", name, strerror(errno));
			break;
		}
		if (n == 0) {
			close(fd);
			buf[len] = 0;
			return buf;
		}
		len += (size_t)n;
		if (cap - len < 2) {
			char *more = realloc(buf, cap *= 2);
			if (!more)
				free(buf);
			buf = more;
		}
	}
	free(buf);
	close(fd);
	*r = RCR_ERROR;
	return NULL;
}

/* Writes image `name` from `len` bytes, streamed (ABI 3): to an fd of the image file rcr opens. */
static int32_t write_image(const struct rcr_host *h, const char *name, const char *data, size_t len)
{
	int32_t fd = -1;
	if (h->image_open(h->ctx, (const uint8_t *)name, strlen(name), RCR_IMAGE_WRITE, &fd) != RCR_OK)
		return RCR_ERROR; /* rcr set the message */
	for (size_t done = 0; done < len;) {
		ssize_t n = write(fd, data + done, len - done);
		if (n <= 0) {
			fail(h, "writing image %s: %s", name, strerror(errno));
			close(fd);
			return RCR_ERROR;
		}
		done += (size_t)n;
	}
	close(fd);
	return RCR_OK;
}

/* The devices dumped in this run (dump_vma finds the process's mappable one here). */
static struct {
	int32_t pid;
	uint32_t id;
	int mappable;
} dumped[64];
static int ndumped;

/* ---- hooks ---- */

static int32_t ex_init(const struct rcr_host *h, uint32_t stage)
{
	char msg[128];
	snprintf(msg, sizeof(msg), NAME " (C) ready for stage %u, run %s", stage, h->run_id);
	say(h, RCR_LOG_DEBUG, msg);
	ndumped = 0;
	return RCR_OK;
}

static int32_t ex_dump_file(const struct rcr_host *h, const struct rcr_file *f, uint32_t id)
{
	if (!is_bpf_map(f->path, f->path_len))
		return RCR_NOT_MINE;
	struct bpf_map_info info;
	if (map_info(f->local_fd, &info) != 0) {
		fail(h, "pid %d fd %d: BPF_OBJ_GET_INFO_BY_FD: %s", f->pid, f->fd, strerror(errno));
		return RCR_ERROR;
	}
	if (info.type != BPF_MAP_TYPE_ARRAY || strcmp(info.name, DEVICE_NAME) != 0)
		return RCR_NOT_MINE; /* another bpf map: not this device */
	if (info.key_size != 4 || info.value_size == 0 || (uint64_t)info.value_size * info.max_entries > MAX_BYTES) {
		fail(h, "pid %d fd %d: toy device with %u registers of %u bytes: not a supported layout", f->pid, f->fd,
		     info.max_entries, info.value_size);
		return RCR_ERROR;
	}
	int frozen = 0;
	const char *fr = memmem(f->fdinfo, f->fdinfo_len, "\nfrozen:", 8);
	if (fr)
		frozen = atoi(fr + 8) != 0;
	/* The image: the same key=value lines as the Rust version, registers as hex. */
	size_t nbytes = (size_t)info.value_size * info.max_entries;
	char *img = malloc(128 + 2 * nbytes);
	uint8_t *reg = malloc(info.value_size);
	if (!img || !reg) {
		free(img);
		free(reg);
		fail(h, "out of memory");
		return RCR_ERROR;
	}
	int n = sprintf(img, "value_size=%u\nmax_entries=%u\nmap_flags=%u\nfrozen=%d\nregs=", info.value_size,
			info.max_entries, info.map_flags, frozen);
	for (uint32_t i = 0; i < info.max_entries; i++) {
		if (map_elem(BPF_MAP_LOOKUP_ELEM, f->local_fd, i, reg) != 0) {
			fail(h, "pid %d fd %d: reading register %u: %s", f->pid, f->fd, i, strerror(errno));
			free(img);
			free(reg);
			return RCR_ERROR;
		}
		for (uint32_t j = 0; j < info.value_size; j++)
			n += sprintf(img + n, "%02x", reg[j]);
	}
	n += sprintf(img + n, "\n");
	free(reg);
	char name[32];
	snprintf(name, sizeof(name), "toydev-%u", id);
	int32_t r = write_image(h, name, img, (size_t)n);
	free(img);
	if (r != RCR_OK)
		return RCR_ERROR; /* rcr set the message */
	if (ndumped < (int)(sizeof(dumped) / sizeof(dumped[0]))) {
		dumped[ndumped].pid = f->pid;
		dumped[ndumped].id = id;
		dumped[ndumped].mappable = (info.map_flags & BPF_F_MMAPABLE) != 0;
		ndumped++;
	}
	char msg[160];
	snprintf(msg, sizeof(msg), "pid %d fd %d: saved device (%u registers of %u bytes) as file id %u", f->pid, f->fd,
		 info.max_entries, info.value_size, id);
	say(h, RCR_LOG_INFO, msg);
	return RCR_OK;
}

static int32_t ex_dump_vma(const struct rcr_host *h, const struct rcr_vma *v, uint32_t id)
{
	if (!is_bpf_map(v->path, v->path_len))
		return RCR_NOT_MINE;
	/* A mapping does not say which map it shows (every bpf map shares one anon inode), so it is the
	 * process's one mappable device. A real device would encode its buffer in the offset. */
	int found = -1, count = 0;
	for (int i = 0; i < ndumped; i++)
		if (dumped[i].pid == v->pid && dumped[i].mappable) {
			found = i;
			count++;
		}
	if (count == 0)
		return RCR_NOT_MINE;
	if (count > 1) {
		fail(h, "pid %d: area %#" PRIx64 ": %d mappable toy devices are open; cannot tell which one this maps",
		     v->pid, v->start, count);
		return RCR_ERROR;
	}
	char name[32], data[32];
	snprintf(name, sizeof(name), "vma-%u", id);
	int n = snprintf(data, sizeof(data), "device=%u\n", dumped[found].id);
	return write_image(h, name, data, (size_t)n);
}

static int32_t ex_restore_file(const struct rcr_host *h, uint32_t id, int32_t *fd)
{
	char name[32];
	snprintf(name, sizeof(name), "toydev-%u", id);
	int32_t r;
	char *img = read_image(h, name, &r);
	if (!img)
		return r; /* RCR_NOT_MINE: no such image; RCR_ERROR: the message is set */
	unsigned value_size = 0, max_entries = 0, map_flags = 0, frozen = 0;
	char *regs = NULL;
	for (char *line = strtok(img, "\n"); line; line = strtok(NULL, "\n")) {
		if (sscanf(line, "value_size=%u", &value_size) == 1 || sscanf(line, "max_entries=%u", &max_entries) == 1 ||
		    sscanf(line, "map_flags=%u", &map_flags) == 1 || sscanf(line, "frozen=%u", &frozen) == 1)
			continue;
		if (strncmp(line, "regs=", 5) == 0)
			regs = line + 5;
		/* keys of newer versions are skipped */
	}
	if (!regs || value_size == 0 || (uint64_t)value_size * max_entries > MAX_BYTES ||
	    strlen(regs) != 2 * (size_t)value_size * max_entries) {
		fail(h, "image %s: registers do not match %u registers of %u bytes", name, max_entries, value_size);
		free(img);
		return RCR_ERROR;
	}
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_ARRAY;
	a.key_size = 4;
	a.value_size = value_size;
	a.max_entries = max_entries;
	a.map_flags = map_flags;
	strcpy(a.map_name, DEVICE_NAME);
	int m = (int)sys_bpf(BPF_MAP_CREATE, &a);
	if (m < 0) {
		fail(h, "BPF_MAP_CREATE: %s", strerror(errno));
		free(img);
		return RCR_ERROR;
	}
	uint8_t *reg = malloc(value_size);
	for (uint32_t i = 0; reg && i < max_entries; i++) {
		for (uint32_t j = 0; j < value_size; j++) {
			unsigned b;
			sscanf(regs + 2 * ((size_t)i * value_size + j), "%2x", &b);
			reg[j] = (uint8_t)b;
		}
		if (map_elem(BPF_MAP_UPDATE_ELEM, m, i, reg) != 0) {
			fail(h, "writing register %u: %s", i, strerror(errno));
			goto err;
		}
	}
	if (!reg) {
		fail(h, "out of memory");
		goto err;
	}
	if (frozen) {
		memset(&a, 0, sizeof(a));
		a.map_fd = (uint32_t)m;
		if (sys_bpf(BPF_MAP_FREEZE, &a) != 0) {
			fail(h, "BPF_MAP_FREEZE: %s", strerror(errno));
			goto err;
		}
	}
	/* update_vma (a later stage) maps the device from this fd. */
	snprintf(name, sizeof(name), "toydev-fd-%u", id);
	if (h->store_put(h->ctx, (const uint8_t *)name, strlen(name), NULL, 0, m) != RCR_OK)
		goto err; /* rcr set the message */
	free(reg);
	free(img);
	*fd = m; /* ownership passes to rcr */
	return RCR_OK;
err:
	free(reg);
	free(img);
	close(m);
	return RCR_ERROR;
}

static int32_t ex_update_vma(const struct rcr_host *h, uint32_t id, const struct rcr_vma *v, int32_t *fd, uint64_t *offset)
{
	char name[32];
	snprintf(name, sizeof(name), "vma-%u", id);
	int32_t r;
	char *img = read_image(h, name, &r);
	if (!img)
		return r;
	unsigned dev = 0;
	int ok = sscanf(img, "device=%u", &dev) == 1;
	free(img);
	if (!ok) {
		fail(h, "image %s: bad content", name);
		return RCR_ERROR;
	}
	snprintf(name, sizeof(name), "toydev-fd-%u", dev);
	size_t len = 0;
	int32_t m = -1;
	if (h->store_get(h->ctx, (const uint8_t *)name, strlen(name), NULL, 0, &len, &m) != RCR_OK || m < 0) {
		fail(h, "area %#" PRIx64 ": device file id %u was not restored", v->start, dev);
		return RCR_ERROR;
	}
	*fd = m; /* the store's copy is ours to give to rcr */
	*offset = v->offset;
	return RCR_OK;
}

static const struct rcr_plugin plugin = {
	.abi_version = RCR_PLUGIN_ABI_VERSION,
	.size = sizeof(struct rcr_plugin),
	.name = NAME,
	.version = "0.1.0",
	.init = ex_init,
	.dump_file = ex_dump_file,
	.restore_file = ex_restore_file,
	.dump_vma = ex_dump_vma,
	.update_vma = ex_update_vma,
};

const struct rcr_plugin *rcr_plugin_entry(void)
{
	return &plugin;
}
