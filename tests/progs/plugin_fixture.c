/* Test fixture for the plugin tests (built with cc -shared -fPIC, not a test program):
 * a C plugin whose behaviour is chosen at compile time.
 *   -DFIXTURE_NAME='"x"'      its name (default "fixture")
 *   -DFIXTURE_ABI=N           the ABI version it reports (default RCR_PLUGIN_ABI_VERSION)
 *   -DFIXTURE_FAIL_INIT       init fails with a message
 *   -DFIXTURE_CLAIM           dump_file claims every eventfd and writes image "claimed-<id>" with the fd
 *   -DFIXTURE_NO_ENTRY        exports no rcr_plugin_entry */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "rcr_plugin.h"

#ifndef FIXTURE_NAME
#define FIXTURE_NAME "fixture"
#endif
#ifndef FIXTURE_ABI
#define FIXTURE_ABI RCR_PLUGIN_ABI_VERSION
#endif

static int32_t fx_init(const struct rcr_host *h, uint32_t stage)
{
	(void)stage;
#ifdef FIXTURE_FAIL_INIT
	const char *msg = "fixture: the device is not present";
	h->set_error(h->ctx, (const uint8_t *)msg, strlen(msg));
	return RCR_ERROR;
#else
	(void)h;
	return RCR_OK;
#endif
}

static int32_t fx_dump_file(const struct rcr_host *h, const struct rcr_file *f, uint32_t id)
{
#ifdef FIXTURE_CLAIM
	const char *want = "anon_inode:[eventfd]";
	if (f->path_len != strlen(want) || memcmp(f->path, want, f->path_len) != 0)
		return RCR_NOT_MINE;
	char name[32], data[32];
	int nl = snprintf(name, sizeof(name), "claimed-%u", id);
	int dl = snprintf(data, sizeof(data), "%d\n", f->fd);
	return h->write_image(h->ctx, (const uint8_t *)name, (size_t)nl, (const uint8_t *)data, (size_t)dl);
#else
	(void)h;
	(void)f;
	(void)id;
	return RCR_NOT_MINE;
#endif
}

static const struct rcr_plugin plugin = {
	.abi_version = FIXTURE_ABI,
	.size = sizeof(struct rcr_plugin),
	.name = FIXTURE_NAME,
	.version = "0.0.1",
	.init = fx_init,
	.dump_file = fx_dump_file,
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
