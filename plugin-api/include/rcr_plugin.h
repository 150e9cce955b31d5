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

#define RCR_PLUGIN_ABI_VERSION 2

/* Hook results. */
#define RCR_OK 0        /* success; for a claim hook: mine */
#define RCR_NOT_MINE 1  /* claim hooks: not this plugin's object */
#define RCR_RETRY 2     /* restore_file: call again later; set_error() says what it waits for */
#define RCR_ERROR (-1)  /* failure; set_error() gives the message */

/* Stages passed to init and fini. */
#define RCR_STAGE_DUMP 1
#define RCR_STAGE_PRE_DUMP 2 /* reserved for `rcr pre-dump`, which rcr does not have yet */
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
	/* ABI version 2 */
	/* Fork-shared store, one per rcr command, shared by every plugin and hook of the stage: puts len
	 * bytes and, if fd >= 0, a copy of fd (rcr dups it) under key ([A-Za-z0-9._-], data <= 64 KiB). */
	int32_t (*store_put)(void *ctx, const uint8_t *key, size_t key_len, const uint8_t *data, size_t len, int32_t fd);
	/* Size in *len, up to cap bytes into buf, a new copy of the stored fd in *fd (yours; -1 if none; fd
	 * may be NULL). RCR_NOT_MINE if the key is absent. */
	int32_t (*store_get)(void *ctx, const uint8_t *key, size_t key_len, uint8_t *buf, size_t cap, size_t *len, int32_t *fd);
	/* Thread control: let thread tid of the frozen process pid run for timeout_ms (<= 10000), then stop
	 * it again. Only during checkpoint_devices. */
	int32_t (*run_thread)(void *ctx, int32_t pid, int32_t tid, uint32_t timeout_ms);
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

/* A memory area offered to dump_vma / passed to update_vma (ABI 2); valid only during the call. */
struct rcr_vma {
	int32_t pid;
	uint32_t prot;  /* PROT_* */
	uint32_t flags; /* MAP_SHARED or MAP_PRIVATE */
	uint32_t reserved;
	uint64_t start, end;
	uint64_t offset;   /* in the mapped file, bytes */
	uint64_t dev, ino; /* as /proc/PID/maps shows them; 0 at restore */
	const char *path;  /* /proc/PID/maps name (/dev/foo, anon_inode:bpf-map); empty at restore */
	size_t path_len;
	const char *vm_flags; /* smaps VmFlags; empty at restore */
	size_t vm_flags_len;
};

/* A mount offered to dump_ext_mount (ABI 2); strings not NUL-terminated. */
struct rcr_mount {
	int32_t mnt_id;
	uint32_t reserved;
	const char *mountpoint;
	size_t mountpoint_len;
	const char *root;
	size_t root_len;
	const char *fstype;
	size_t fstype_len;
	const char *source;
	size_t source_len;
};

/* A network link offered to dump_ext_link (ABI 2); strings not NUL-terminated. */
struct rcr_link {
	int32_t ifindex;
	uint32_t reserved;
	const char *name;
	size_t name_len;
	const char *kind; /* IFLA_INFO_KIND, e.g. "veth"; empty if none */
	size_t kind_len;
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
	/* ABI version 2: a version-1 plugin's struct ends above; rcr reads these as NULL for it. */
	/* Dumper: a memory area the core cannot handle (device memory, anon-inode or /dev mapping).
	 * RCR_OK claims it: save it under id; rcr records the area as yours (no pages saved). */
	int32_t (*dump_vma)(const struct rcr_host *host, const struct rcr_vma *vma, uint32_t id);
	/* Restore master, after the files, before forking: *fd = an fd to map the area from (yours to
	 * give; rcr maps it in the task), *offset = its file offset (preset to the dumped one). */
	int32_t (*update_vma)(const struct rcr_host *host, uint32_t id, const struct rcr_vma *vma, int32_t *fd, uint64_t *offset);
	/* Dumper: a unix socket whose peer is outside the dump (peer_ino: the peer's inode, or 0). */
	int32_t (*dump_ext_unix_sk)(const struct rcr_host *host, const struct rcr_file *file, uint64_t peer_ino, uint32_t id);
	/* Restore master, before forking: the socket dumped as id, connected; *fd as in restore_file. */
	int32_t (*restore_ext_unix_sk)(const struct rcr_host *host, uint32_t id, int32_t *fd);
	/* Dumper: a mount external to the dump. */
	int32_t (*dump_ext_mount)(const struct rcr_host *host, const struct rcr_mount *mnt, uint32_t id);
	/* Restore master, before forking: mount what was dumped as id at mountpoint (len bytes). */
	int32_t (*restore_ext_mount)(const struct rcr_host *host, uint32_t id, const char *mountpoint, size_t len);
	/* Dumper: a network link rcr cannot create itself (a veth whose peer is outside, a device). */
	int32_t (*dump_ext_link)(const struct rcr_host *host, const struct rcr_link *link, uint32_t id);
	/* Restore master, before forking: create the link dumped as id, named name (len bytes). */
	int32_t (*restore_ext_link)(const struct rcr_host *host, uint32_t id, const char *name, size_t len);
	/* later versions append here */
};

#ifdef __cplusplus
#define RCR_STATIC_ASSERT static_assert
#else
#define RCR_STATIC_ASSERT _Static_assert
#endif
RCR_STATIC_ASSERT(sizeof(struct rcr_host) == 104, "struct rcr_host layout");
RCR_STATIC_ASSERT(sizeof(struct rcr_file) == 88, "struct rcr_file layout");
RCR_STATIC_ASSERT(sizeof(struct rcr_vma) == 88, "struct rcr_vma layout");
RCR_STATIC_ASSERT(sizeof(struct rcr_mount) == 72, "struct rcr_mount layout");
RCR_STATIC_ASSERT(sizeof(struct rcr_link) == 40, "struct rcr_link layout");
RCR_STATIC_ASSERT(sizeof(struct rcr_plugin) == 168, "struct rcr_plugin layout");
/* A plugin built for ABI version 1 has a struct rcr_plugin of 104 bytes (up to resume_devices_late). */
#define RCR_PLUGIN_SIZE_V1 104

const struct rcr_plugin *rcr_plugin_entry(void);

#ifdef __cplusplus
}
#endif

#endif
