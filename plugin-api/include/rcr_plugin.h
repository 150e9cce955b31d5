/* rcr plugin ABI for C and C++ plugins. GENERATED from the declarations of the Rust crate
 * rcr-plugin-api (plugin-api/src/hooks.rs, services.rs, abi.rs) by its cheader module: do not edit,
 * run `RCR_BLESS=1 cargo test -p rcr-plugin-api` after changing them. See plugin-api/README.md for the
 * hooks, their order and the process each runs in.
 *
 * A C plugin is a shared library (cc -shared -fPIC) that exports
 *
 *     const struct rcr_plugin *rcr_plugin_entry(void);
 *
 * returning a static descriptor. Versioned and append-only: fields are only ever added at the end of
 * a struct, and each struct carries its size. Set abi_version to RCR_PLUGIN_ABI_VERSION and size to
 * sizeof(struct rcr_plugin); leave hooks you do not implement NULL. Read a service of struct rcr_host
 * only if its size covers it. */
#ifndef RCR_PLUGIN_H
#define RCR_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RCR_PLUGIN_ABI_VERSION 3
#define RCR_OK 0
#define RCR_NOT_MINE 1
#define RCR_RETRY 2
#define RCR_ERROR (-1)
#define RCR_STAGE_DUMP 1
#define RCR_STAGE_PRE_DUMP 2
#define RCR_STAGE_RESTORE 3
#define RCR_LOG_ERROR 0
#define RCR_LOG_WARN 1
#define RCR_LOG_INFO 2
#define RCR_LOG_DEBUG 3
#define RCR_IMAGE_READ 0
#define RCR_IMAGE_WRITE 1

/* Services of rcr, one table per plugin. Read a service only if `size` covers it. */
struct rcr_host {
	/* The ABI version of this rcr. */
	uint32_t abi_version;
	/* sizeof(struct rcr_host) as this rcr knows it. */
	uint32_t size;
	/* Pass to every service. */
	void *ctx;
	/* A unique id of this rcr run. */
	const char *run_id;
	/* The images directory. */
	const char *images_dir;
	/* The command's options, a JSON object. */
	const char *options_json;
	/* Logs `msg` (UTF-8, `len` bytes) through rcr's log at `level` (`RCR_LOG_*`). */
	void (*log)(void *ctx, uint32_t level, const uint8_t *msg, size_t len);
	/* Sets the message of the error (or the retry reason) the current hook is about to return. */
	void (*set_error)(void *ctx, const uint8_t *msg, size_t len);
	/* Writes the plugin's image `name` (letters, digits, `.`, `_`, `-`) in the images directory,
	 * replacing it; the file's name is prefixed with the plugin's. The whole image in one buffer:
	 * for large images use `image_open` (ABI 3). */
	int32_t (*write_image)(void *ctx, const uint8_t *name, size_t name_len, const uint8_t *data, size_t len);
	/* Reads the plugin's image `name`: its size in `*len`, up to `cap` bytes into `buf` (call with
	 * `cap` 0 to learn the size). `RCR_NOT_MINE` if there is no such image. */
	int32_t (*read_image)(void *ctx, const uint8_t *name, size_t name_len, uint8_t *buf, size_t cap, size_t *len);
	/* Records that this checkpoint cannot be restored without plugin `name` (a plugin that claims an
	 * object is recorded without asking). */
	int32_t (*need_plugin)(void *ctx, const uint8_t *name, size_t len);
	/* ---- ABI version 2 ---- */
	/* The fork-shared store: puts `len` bytes and, if `fd` >= 0, a copy of `fd` (rcr dups it; the
	 * caller keeps its own) under `key`, replacing what was there. One store per rcr command, shared by
	 * all plugins and all hooks of the stage. Keys: 1-64 of `[A-Za-z0-9._-]`; data: at most 64 KiB. */
	int32_t (*store_put)(void *ctx, const uint8_t *key, size_t key_len, const uint8_t *data, size_t len, int32_t fd);
	/* Gets what is stored under `key`: its size in `*len`, up to `cap` bytes into `buf`, and in `*fd` a
	 * new copy of its fd that the caller owns (or -1; pass NULL to take no fd). `RCR_NOT_MINE` if the
	 * key is not there. */
	int32_t (*store_get)(void *ctx, const uint8_t *key, size_t key_len, uint8_t *buf, size_t cap, size_t *len, int32_t *fd);
	/* Thread control of a frozen task: lets thread `tid` of process `pid` (rcr holds it stopped) run
	 * for `timeout_ms` (at most 10000), then stops it again, as it was; the rest of the task stays
	 * stopped. Only during `checkpoint_devices` (elsewhere `RCR_ERROR`). A signal that arrives for the
	 * thread meanwhile stays pending for it. */
	int32_t (*run_thread)(void *ctx, int32_t pid, int32_t tid, uint32_t timeout_ms);
	/* ---- ABI version 3 ---- */
	/* Streams the plugin's image `name`: stores in `*fd` an fd of the image file that the caller owns,
	 * open for reading (`mode` `RCR_IMAGE_READ`; `RCR_NOT_MINE` if there is no such image) or created
	 * empty for writing (`RCR_IMAGE_WRITE`). Read or write it in pieces of your choosing (read/write,
	 * splice, sendfile): rcr holds none of it in its memory. The same file `write_image` writes. */
	int32_t (*image_open)(void *ctx, const uint8_t *name, size_t name_len, uint32_t mode, int32_t *fd);
	/* In `restore_task` only, for its `pid`: runs system call `nr` with the six `args` in the task
	 * (rcr is its tracer; the call runs in the task's own context: its fds, memory, credentials) and
	 * stores its return value in `*ret` (a negative errno on failure; the service still returns
	 * `RCR_OK`). Memory arguments are addresses in the task: see `task_write`. */
	int32_t (*task_syscall)(void *ctx, int32_t pid, int64_t nr, const uint64_t *args, int64_t *ret);
	/* In `restore_task` only: copies `len` bytes of the task's memory at `addr` into `buf`. */
	int32_t (*task_read)(void *ctx, int32_t pid, uint64_t addr, uint8_t *buf, size_t len);
	/* In `restore_task` only: copies `len` bytes from `data` into the task's memory at `addr` (which
	 * must be mapped; map scratch memory with `task_syscall(SYS_mmap, ...)` and unmap it after). */
	int32_t (*task_write)(void *ctx, int32_t pid, uint64_t addr, const uint8_t *data, size_t len);
};

/* An open file offered to `dump_file` (`struct rcr_file`). Valid only during the call. */
struct rcr_file {
	/* The task that has the file open. */
	int32_t pid;
	/* The fd number in that task. */
	int32_t fd;
	/* A copy of the fd, open in the dumper for the duration of the call (pidfd_getfd). */
	int32_t local_fd;
	/* Open flags (`flags:` of fdinfo, octal there), O_CLOEXEC included. */
	uint32_t flags;
	/* `st_mode` of the file. */
	uint32_t mode;
	uint32_t reserved;
	/* The file position (`pos:` of fdinfo). */
	uint64_t pos;
	uint64_t dev;
	uint64_t ino;
	uint64_t rdev;
	/* The target of `/proc/PID/fd/FD` (e.g. `anon_inode:[eventfd]`, `/dev/foo`). */
	const char *path;
	size_t path_len;
	/* The full text of `/proc/PID/fdinfo/FD`. */
	const char *fdinfo;
	size_t fdinfo_len;
};

/* A memory area (`struct rcr_vma`), offered to `dump_vma` and passed to `update_vma` (ABI 2).
 * Valid only during the call. */
struct rcr_vma {
	/* The task that has it mapped. */
	int32_t pid;
	/* `PROT_*` bits. */
	uint32_t prot;
	/* `MAP_SHARED` or `MAP_PRIVATE`. */
	uint32_t flags;
	uint32_t reserved;
	uint64_t start;
	uint64_t end;
	/* Offset in the mapped file, in bytes. */
	uint64_t offset;
	/* Device (`makedev(major, minor)`) of the mapped file, as /proc/PID/maps shows it (0 at restore). */
	uint64_t dev;
	/* Inode of the mapped file (0 at restore). */
	uint64_t ino;
	/* The mapped file as /proc/PID/maps names it (`/dev/foo`, `anon_inode:bpf-map`); empty at restore. */
	const char *path;
	size_t path_len;
	/* The `VmFlags:` of smaps (`rd wr sh mr mw me ms io pf ...`); empty at restore. */
	const char *vm_flags;
	size_t vm_flags_len;
};

/* A mount (`struct rcr_mount`) offered to `dump_ext_mount` (ABI 2). */
struct rcr_mount {
	/* `mount_id` of /proc/PID/mountinfo. */
	int32_t mnt_id;
	uint32_t reserved;
	const char *mountpoint;
	size_t mountpoint_len;
	/* The root of the mount within its filesystem. */
	const char *root;
	size_t root_len;
	const char *fstype;
	size_t fstype_len;
	const char *source;
	size_t source_len;
};

/* A network link (`struct rcr_link`) offered to `dump_ext_link` (ABI 2). */
struct rcr_link {
	int32_t ifindex;
	uint32_t reserved;
	/* The interface's name, e.g. `veth0`. */
	const char *name;
	size_t name_len;
	/* Its rtnetlink kind (`IFLA_INFO_KIND`: `veth`, `macvlan`, ...), empty if none. */
	const char *kind;
	size_t kind_len;
};

/* The plugin's descriptor. Leave the hooks you do not implement NULL. */
struct rcr_plugin {
	/* RCR_PLUGIN_ABI_VERSION */
	uint32_t abi_version;
	/* sizeof(struct rcr_plugin) */
	uint32_t size;
	/* unique among the loaded plugins */
	const char *name;
	const char *version;
	/* The dumper or the restore master, right after every plugin is loaded, before anything else. */
	int32_t (*init)(const struct rcr_host *host, uint32_t stage);
	/* The dumper or the restore master, at the end of the stage; `ok` is 1 if the stage succeeded. For
	 * restore it runs once the restored tree runs (or after the restore failed). */
	int32_t (*fini)(const struct rcr_host *host, uint32_t stage, int32_t ok);
	/* The dumper, before the task is frozen. */
	int32_t (*pause_devices)(const struct rcr_host *host, int32_t pid);
	/* The dumper, the tree frozen, before this process's files and memory are dumped; `run_thread`
	 * works here. */
	int32_t (*checkpoint_devices)(const struct rcr_host *host, int32_t pid);
	/* The dumper, task frozen, for every fd before the core handles it. `RCR_OK` claims the file (save
	 * its state keyed by `id`), `RCR_NOT_MINE` passes. */
	int32_t (*dump_file)(const struct rcr_host *host, const struct rcr_file *file, uint32_t id);
	/* The dumper, after every task is dumped, before the inventory is written. */
	int32_t (*dump_devices_late)(const struct rcr_host *host, int32_t pid);
	/* The restore master, after the images are read, before any file is opened or task forked. */
	int32_t (*restore_init)(const struct rcr_host *host);
	/* The restore master, before forking: open the file dumped as `id` and store the fd in `*fd`
	 * (ownership passes to rcr; the restored task inherits it, rcr moves it to its number and sets its
	 * FD_CLOEXEC). `RCR_RETRY` asks to be called again after the other files. ABI 3: `RCR_OK` with
	 * `*fd` left at -1 means the plugin opens the file inside the task, in `restore_task`, at its number. */
	int32_t (*restore_file)(const struct rcr_host *host, uint32_t id, int32_t *fd);
	/* The restore master, right after the task is created (stopped, still a copy of rcr). */
	int32_t (*post_forking)(const struct rcr_host *host, int32_t pid);
	/* The restore master, after the task's memory, files and state are restored, before it runs. */
	int32_t (*resume_devices_late)(const struct rcr_host *host, int32_t pid);
	/* ---- ABI version 2 ---- */
	/* The dumper, task frozen, for every memory area the core cannot handle itself (device memory, a
	 * mapping of an anon-inode or of a file under /dev). `RCR_OK` claims it: save what you need keyed
	 * by `id`; the core records the area as the plugin's (`VMA_EXT_PLUGIN`, no pages saved). */
	int32_t (*dump_vma)(const struct rcr_host *host, const struct rcr_vma *vma, uint32_t id);
	/* The restore master, after every file is restored, before the task is created; once per area the
	 * plugin claimed. Store in `*fd` an fd to map the area from (ownership passes to rcr, which maps it
	 * at the area's address) and, if it changed, the file offset in `*offset` (preset to the dumped
	 * one). ABI 3: `*fd` left at -1 means the plugin maps the area itself, in `restore_task`. */
	int32_t (*update_vma)(const struct rcr_host *host, uint32_t id, const struct rcr_vma *vma, int32_t *fd, uint64_t *offset);
	/* The dumper, task frozen: a unix socket whose peer is outside the dumped tree (`peer_ino`, 0 if
	 * unknown). Claim it to save it yourself. */
	int32_t (*dump_ext_unix_sk)(const struct rcr_host *host, const struct rcr_file *file, uint64_t peer_ino, uint32_t id);
	/* The restore master, before forking: the socket dumped as `id`, opened (connected) in rcr; `*fd`
	 * as in `restore_file`. */
	int32_t (*restore_ext_unix_sk)(const struct rcr_host *host, uint32_t id, int32_t *fd);
	/* The dumper: a mount of the task's mount namespace that rcr cannot describe itself. */
	int32_t (*dump_ext_mount)(const struct rcr_host *host, const struct rcr_mount *mnt, uint32_t id);
	/* The restore master, before forking: mount what was dumped as `id` at `mountpoint` (a path in the
	 * restore master's mount namespace, `len` bytes, not NUL-terminated). */
	int32_t (*restore_ext_mount)(const struct rcr_host *host, uint32_t id, const char *mountpoint, size_t len);
	/* The dumper: a network link that rcr cannot create itself (a veth whose peer is outside, a device). */
	int32_t (*dump_ext_link)(const struct rcr_host *host, const struct rcr_link *link, uint32_t id);
	/* The restore master, before forking: create the link dumped as `id`, named `name` (`len` bytes),
	 * in the network namespace rcr is in. */
	int32_t (*restore_ext_link)(const struct rcr_host *host, uint32_t id, const char *name, size_t len);
	/* ---- ABI version 3 ---- */
	/* The restore master, once per restored process, while rcr is its tracer: its memory is mapped and
	 * filled and its fds are at their numbers; its threads, credentials, signal state and registers
	 * are not restored yet. The task services (`task_syscall`, `task_read`, `task_write`) act in
	 * process `pid` only during this call: open a device, issue ioctls, map memory in the task's own
	 * context. Leave the task's fds and memory as the image has them, except what you add. */
	int32_t (*restore_task)(const struct rcr_host *host, int32_t pid);
	/* The dumper, while it freezes the tree: thread `tid` of process `pid` is one the kernel runs for
	 * the task (`comm`, `len` bytes: io_uring's `iou-sqp-*`, `iou-wrk-*`), which ptrace cannot stop.
	 * `RCR_OK` says it may stay as it is (not frozen, not dumped): answer so for the workers of an
	 * object your plugin checkpoints (the io_uring whose fd it claims), and recreate them with it.
	 * Unclaimed, the dump fails naming the thread. */
	int32_t (*kernel_thread)(const struct rcr_host *host, int32_t pid, int32_t tid, const char *comm, size_t len);
};

#ifdef __cplusplus
#define RCR_STATIC_ASSERT static_assert
#else
#define RCR_STATIC_ASSERT _Static_assert
#endif
RCR_STATIC_ASSERT(sizeof(struct rcr_host) == 136, "struct rcr_host layout");
RCR_STATIC_ASSERT(sizeof(struct rcr_file) == 88, "struct rcr_file layout");
RCR_STATIC_ASSERT(sizeof(struct rcr_vma) == 88, "struct rcr_vma layout");
RCR_STATIC_ASSERT(sizeof(struct rcr_mount) == 72, "struct rcr_mount layout");
RCR_STATIC_ASSERT(sizeof(struct rcr_link) == 40, "struct rcr_link layout");
RCR_STATIC_ASSERT(sizeof(struct rcr_plugin) == 184, "struct rcr_plugin layout");
/* sizeof(struct rcr_plugin) of each ABI version: a plugin built for version N has this size. */
#define RCR_PLUGIN_SIZE_V1 104
#define RCR_PLUGIN_SIZE_V2 168
#define RCR_PLUGIN_SIZE_V3 184

const struct rcr_plugin *rcr_plugin_entry(void);

#ifdef __cplusplus
}
#endif

#endif
