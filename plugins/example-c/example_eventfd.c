/* An example rcr plugin, written in C, that a device vendor can copy.
 *
 * The toy "device" is an eventfd used as a counter: its whole state is the counter (and its flags).
 * rcr's core does not know eventfds, so without a plugin a dump of a process that has one open fails
 * with "a kind of file rcr cannot checkpoint yet and no plugin claimed it". With this plugin:
 *
 *  - dump_file (runs in `rcr dump`, task frozen): claims fds whose target is anon_inode:[eventfd],
 *    reads the counter from fdinfo ("eventfd-count", hex) and saves it in the plugin's own image
 *    "eventfd-<file id>" as key=value lines;
 *  - restore_file (runs in `rcr restore`, before the task is created): reads that image and creates
 *    an eventfd with the same counter and flags; the restored task inherits it.
 *
 * Same name and image format as the Rust version (plugins/example-rust): a checkpoint made with one
 * restores with the other.
 *
 * Build: cc -shared -fPIC -Wall -I plugin-api/include -o example-eventfd.so example_eventfd.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "rcr_plugin.h"

#define NAME "example-eventfd"
#define EVENTFD_PATH "anon_inode:[eventfd]"

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

/* The value after "key:" in fdinfo text (not NUL-terminated), copied into out. */
static int fdinfo_field(const char *text, size_t len, const char *key, char *out, size_t outlen)
{
	size_t kl = strlen(key);
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		if ((size_t)(le - p) > kl && memcmp(p, key, kl) == 0 && p[kl] == ':') {
			const char *v = p + kl + 1;
			while (v < le && (*v == ' ' || *v == '\t'))
				v++;
			size_t n = (size_t)(le - v);
			if (n >= outlen)
				n = outlen - 1;
			memcpy(out, v, n);
			out[n] = 0;
			return 0;
		}
		p = le + 1;
	}
	return -1;
}

static int32_t ex_init(const struct rcr_host *h, uint32_t stage)
{
	char msg[128];
	snprintf(msg, sizeof(msg), NAME " (C) ready for stage %u, run %s", stage, h->run_id);
	say(h, RCR_LOG_DEBUG, msg);
	return RCR_OK;
}

static int32_t ex_dump_file(const struct rcr_host *h, const struct rcr_file *f, uint32_t id)
{
	if (f->path_len != strlen(EVENTFD_PATH) || memcmp(f->path, EVENTFD_PATH, f->path_len) != 0)
		return RCR_NOT_MINE;
	char v[64];
	if (fdinfo_field(f->fdinfo, f->fdinfo_len, "eventfd-count", v, sizeof(v)) < 0) {
		fail(h, "pid %d fd %d: fdinfo has no eventfd-count", f->pid, f->fd);
		return RCR_ERROR;
	}
	char *e;
	errno = 0;
	unsigned long long count = strtoull(v, &e, 16);
	if (errno || *e) {
		fail(h, "pid %d fd %d: eventfd-count '%s' is not hex", f->pid, f->fd, v);
		return RCR_ERROR;
	}
	int sem = fdinfo_field(f->fdinfo, f->fdinfo_len, "eventfd-semaphore", v, sizeof(v)) == 0 && strcmp(v, "0") != 0;
	char img[128], name[32];
	int n = snprintf(img, sizeof(img), "count=%llu\nnonblock=%d\nsemaphore=%d\n", count, !!(f->flags & O_NONBLOCK), sem);
	int nl = snprintf(name, sizeof(name), "eventfd-%u", id);
	if (h->write_image(h->ctx, (const uint8_t *)name, (size_t)nl, (const uint8_t *)img, (size_t)n) != RCR_OK)
		return RCR_ERROR; /* rcr set the message */
	char msg[160];
	snprintf(msg, sizeof(msg), "pid %d fd %d: saved device state (count %llu) as file id %u", f->pid, f->fd, count, id);
	say(h, RCR_LOG_INFO, msg);
	return RCR_OK;
}

static int32_t ex_restore_file(const struct rcr_host *h, uint32_t id, int32_t *fd)
{
	char name[32], img[256];
	int nl = snprintf(name, sizeof(name), "eventfd-%u", id);
	size_t len = 0;
	int32_t r = h->read_image(h->ctx, (const uint8_t *)name, (size_t)nl, (uint8_t *)img, sizeof(img) - 1, &len);
	if (r != RCR_OK)
		return r; /* RCR_NOT_MINE: no such image; RCR_ERROR: rcr set the message */
	if (len >= sizeof(img)) {
		fail(h, "image %s is %zu bytes, more than a device state", name, len);
		return RCR_ERROR;
	}
	img[len] = 0;
	unsigned long long count = 0;
	int nonblock = 0, sem = 0;
	for (char *line = strtok(img, "\n"); line; line = strtok(NULL, "\n")) {
		if (sscanf(line, "count=%llu", &count) == 1 || sscanf(line, "nonblock=%d", &nonblock) == 1 ||
		    sscanf(line, "semaphore=%d", &sem) == 1)
			continue; /* keys of newer versions are skipped */
	}
	int e = eventfd(0, EFD_CLOEXEC | (nonblock ? EFD_NONBLOCK : 0) | (sem ? EFD_SEMAPHORE : 0));
	if (e < 0) {
		fail(h, "eventfd: %s", strerror(errno));
		return RCR_ERROR;
	}
	uint64_t c = count;
	if (c > 0 && write(e, &c, sizeof(c)) != sizeof(c)) {
		fail(h, "setting the counter to %llu: %s", count, strerror(errno));
		close(e);
		return RCR_ERROR;
	}
	*fd = e; /* ownership passes to rcr */
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
};

const struct rcr_plugin *rcr_plugin_entry(void)
{
	return &plugin;
}
