/* rcr plugin ABI for C and C++ plugins. The same structs as the Rust crate rcr-plugin-api
 * (plugin-api/src/lib.rs); see plugin-api/README.md for the hooks, their order and the process each runs in.
 *
 * A C plugin is a shared library (cc -shared -fPIC) that exports
 *
 *     const struct rcr_plugin *rcr_plugin_entry(void);
 *
 * returning a static descriptor. Versioned and append-only: fields are only ever added at the end of
 * a struct, and each struct carries its size. Set abi_version to RCR_PLUGIN_ABI_VERSION and size to
 * sizeof(struct rcr_plugin); leave hooks you do not implement NULL. */
#ifndef RCR_PLUGIN_H
#define RCR_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RCR_PLUGIN_ABI_VERSION 1

/* Hook results. */
#define RCR_OK 0        /* success; for a claim hook: mine */
#define RCR_NOT_MINE 1  /* claim hooks: not this plugin's object */
#define RCR_RETRY 2     /* restore_file: call again later; set_error() says what it waits for */
#define RCR_ERROR (-1)  /* failure; set_error() gives the message */

/* Stages passed to init and fini. */
#define RCR_STAGE_DUMP 1
#define RCR_STAGE_PRE_DUMP 2 /* reserved: rcr has no pre-dump yet */
#define RCR_STAGE_RESTORE 3

/* Log levels. */
#define RCR_LOG_ERROR 0
#define RCR_LOG_WARN 1
#define RCR_LOG_INFO 2
#define RCR_LOG_DEBUG 3

/* Services of rcr, one table per plugin. Read a field only if `size` covers it. */
struct rcr_host {
	uint32_t abi_version; /* the ABI version of this rcr */
	uint32_t size;        /* sizeof(struct rcr_host) as this rcr knows it */
	void *ctx;            /* pass to every service */
	const char *run_id;   /* unique id of this rcr run */
	const char *images_dir;
	const char *options_json; /* the command's options, a JSON object */
	void (*log)(void *ctx, uint32_t level, const uint8_t *msg, size_t len);
	/* The message of the error (or retry reason) the current hook is about to return. */
	void (*set_error)(void *ctx, const uint8_t *msg, size_t len);
	/* The plugin's own image `name` ([A-Za-z0-9._-]) in the images directory. */
	int32_t (*write_image)(void *ctx, const uint8_t *name, size_t name_len, const uint8_t *data, size_t len);
	/* Stores the image's size in *len, copies up to cap bytes to buf; RCR_NOT_MINE if absent. */
	int32_t (*read_image)(void *ctx, const uint8_t *name, size_t name_len, uint8_t *buf, size_t cap, size_t *len);
	/* This checkpoint cannot be restored without plugin `name`. */
	int32_t (*need_plugin)(void *ctx, const uint8_t *name, size_t len);
};

/* An open file offered to dump_file; valid only during the call. */
struct rcr_file {
	int32_t pid;      /* the task that has it open */
	int32_t fd;       /* its number there */
	int32_t local_fd; /* a copy open in the dumper during the call */
	uint32_t flags;   /* open flags, O_CLOEXEC included */
	uint32_t mode;    /* st_mode */
	uint32_t reserved;
	uint64_t pos;
	uint64_t dev, ino, rdev;
	const char *path; /* /proc/PID/fd/FD target, not NUL-terminated */
	size_t path_len;
	const char *fdinfo; /* text of /proc/PID/fdinfo/FD, not NUL-terminated */
	size_t fdinfo_len;
};

/* The plugin's descriptor. Hooks in the order rcr calls them; see the README for where each runs. */
struct rcr_plugin {
	uint32_t abi_version; /* RCR_PLUGIN_ABI_VERSION */
	uint32_t size;        /* sizeof(struct rcr_plugin) */
	const char *name;     /* unique among the loaded plugins */
	const char *version;
	/* ABI version 1 */
	int32_t (*init)(const struct rcr_host *host, uint32_t stage);
	int32_t (*fini)(const struct rcr_host *host, uint32_t stage, int32_t ok);
	int32_t (*pause_devices)(const struct rcr_host *host, int32_t pid);
	int32_t (*checkpoint_devices)(const struct rcr_host *host, int32_t pid);
	int32_t (*dump_file)(const struct rcr_host *host, const struct rcr_file *file, uint32_t id);
	int32_t (*dump_devices_late)(const struct rcr_host *host, int32_t pid);
	int32_t (*restore_init)(const struct rcr_host *host);
	int32_t (*restore_file)(const struct rcr_host *host, uint32_t id, int32_t *fd);
	int32_t (*post_forking)(const struct rcr_host *host, int32_t pid);
	int32_t (*resume_devices_late)(const struct rcr_host *host, int32_t pid);
	/* later versions append here */
};

#ifdef __cplusplus
#define RCR_STATIC_ASSERT static_assert
#else
#define RCR_STATIC_ASSERT _Static_assert
#endif
RCR_STATIC_ASSERT(sizeof(struct rcr_host) == 80, "struct rcr_host layout");
RCR_STATIC_ASSERT(sizeof(struct rcr_file) == 88, "struct rcr_file layout");
RCR_STATIC_ASSERT(sizeof(struct rcr_plugin) == 104, "struct rcr_plugin layout");

const struct rcr_plugin *rcr_plugin_entry(void);

#ifdef __cplusplus
}
#endif

#endif
