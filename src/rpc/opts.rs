//! `criu_opts` of a request: each field the client sets works, is ignored (only where criu ignores it
//! for that request), or refuses the request naming it. Fields that are criu options take the effect
//! of [`criu_options`]' table; the RPC-only ones have theirs here.

use crate::criu_options::{self, Cmds, Effect};
use rcr_images::rpc::{CriuCgMode, CriuNetworkLockMethod, CriuOpts};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// What a field stands for.
#[derive(Clone, Copy)]
enum Rule {
    /// The criu option of that long name.
    Opt(&'static str),
    /// An RPC-only field: the requests rcr does what criu does with it on, and those criu acts on it.
    Rpc { works: Cmds, criu: Cmds },
}

const D: Cmds = Cmds::DUMP;
const R: Cmds = Cmds::RESTORE;
const DR: Cmds = Cmds::DUMP.or(Cmds::RESTORE);
const DRC: Cmds = DR.or(Cmds::CHECK);

/// Every field of criu_opts with its rule (`opt`: optional scalar, `list`: repeated, `fd`: the
/// required images_dir_fd, set unless -1), and [`set_fields`] from the same list.
macro_rules! fields {
    ($($f:ident: $kind:ident => $rule:expr,)*) => {
        #[cfg(test)]
        const FIELDS: &[(&str, Rule)] = &[$((stringify!($f), $rule)),*];

        /// The fields `o` sets, as the client asked for something by them (a bool set to false, and
        /// the values below that ask for what rcr does anyway, ask for nothing).
        fn set_fields(o: &CriuOpts) -> Vec<(&'static str, Rule)> {
            let mut v = Vec::new();
            $( if fields!(@set $kind o.$f) && !neutral(o, stringify!($f)) { v.push((stringify!($f), $rule)); } )*
            v
        }
    };
    (@set opt $e:expr) => { $e.is_some() };
    (@set list $e:expr) => { !$e.is_empty() };
    (@set fd $e:expr) => { $e != -1 };
}

use Rule::{Opt, Rpc};

fields! {
    images_dir_fd: fd => Opt("images-dir"),
    images_dir: opt => Opt("images-dir"),
    pid: opt => Rpc { works: D, criu: D.or(Cmds::PRE_DUMP) },
    leave_running: opt => Opt("leave-running"),
    ext_unix_sk: opt => Opt("ext-unix-sk"),
    tcp_established: opt => Opt("tcp-established"),
    evasive_devices: opt => Opt("evasive-devices"),
    shell_job: opt => Opt("shell-job"),
    file_locks: opt => Opt("file-locks"),
    log_level: opt => Opt("verbosity"),
    log_file: opt => Opt("log-file"),
    ps: opt => Opt("page-server"),
    notify_scripts: opt => Rpc { works: DR, criu: DR.or(Cmds::PRE_DUMP) },
    root: opt => Opt("root"),
    parent_img: opt => Opt("prev-images-dir"),
    track_mem: opt => Opt("track-mem"),
    auto_dedup: opt => Opt("auto-dedup"),
    work_dir_fd: opt => Opt("work-dir"),
    link_remap: opt => Opt("link-remap"),
    veths: list => Opt("veth-pair"),
    cpu_cap: opt => Opt("cpu-cap"),
    force_irmap: opt => Opt("force-irmap"),
    exec_cmd: list => Opt("exec-cmd"),
    ext_mnt: list => Opt("ext-mount-map"),
    manage_cgroups: opt => Opt("manage-cgroups"),
    cg_root: list => Opt("cgroup-root"),
    rst_sibling: opt => Opt("restore-sibling"),
    inherit_fd: list => Opt("inherit-fd"),
    auto_ext_mnt: opt => Opt("ext-mount-map"),
    ext_sharing: opt => Opt("enable-external-sharing"),
    ext_masters: opt => Opt("enable-external-masters"),
    skip_mnt: list => Opt("skip-mnt"),
    enable_fs: list => Opt("enable-fs"),
    unix_sk_ino: list => Rpc { works: Cmds::NONE, criu: DR },
    manage_cgroups_mode: opt => Opt("manage-cgroups"),
    ghost_limit: opt => Opt("ghost-limit"),
    irmap_scan_paths: list => Opt("irmap-scan-path"),
    external: list => Opt("external"),
    empty_ns: opt => Opt("empty-ns"),
    join_ns: list => Opt("join-ns"),
    cgroup_props: opt => Opt("cgroup-props"),
    cgroup_props_file: opt => Opt("cgroup-props-file"),
    cgroup_dump_controller: list => Opt("cgroup-dump-controller"),
    freeze_cgroup: opt => Opt("freeze-cgroup"),
    timeout: opt => Opt("timeout"),
    tcp_skip_in_flight: opt => Opt("skip-in-flight"),
    weak_sysctls: opt => Opt("weak-sysctls"),
    lazy_pages: opt => Opt("lazy-pages"),
    status_fd: opt => Opt("status-fd"),
    orphan_pts_master: opt => Rpc { works: Cmds::NONE, criu: R },
    config_file: opt => Rpc { works: Cmds::NONE, criu: Cmds::ALL },
    tcp_close: opt => Opt("tcp-close"),
    lsm_profile: opt => Opt("lsm-profile"),
    tls_cacert: opt => Opt("tls-cacert"),
    tls_cacrl: opt => Opt("tls-cacrl"),
    tls_cert: opt => Opt("tls-cert"),
    tls_key: opt => Opt("tls-key"),
    tls: opt => Opt("tls"),
    tls_no_cn_verify: opt => Opt("tls-no-cn-verify"),
    cgroup_yard: opt => Opt("cgroup-yard"),
    pre_dump_mode: opt => Opt("pre-dump-mode"),
    pidfd_store_sk: opt => Rpc { works: Cmds::NONE, criu: D.or(Cmds::PRE_DUMP) },
    lsm_mount_context: opt => Opt("lsm-mount-context"),
    network_lock: opt => Opt("network-lock"),
    mntns_compat_mode: opt => Opt("mntns-compat-mode"),
    skip_file_rwx_check: opt => Opt("skip-file-rwx-check"),
    unprivileged: opt => Opt("unprivileged"),
    leave_stopped: opt => Opt("leave-stopped"),
    display_stats: opt => Opt("display-stats"),
    log_to_stderr: opt => Rpc { works: DRC, criu: DRC },
}

/// A value that asks for what rcr does without it: a bool set to false (runc sends every flag, most
/// of them false), no cgroup management (rcr does not touch cgroups: criu's "ignore" mode), no empty
/// namespaces, no network locking (rcr locks none), an RPC config file that does not exist (runc
/// always names /etc/criu/runc.conf; criu reads it only if it is there).
fn neutral(o: &CriuOpts, field: &str) -> bool {
    let off = |b: Option<bool>| b == Some(false);
    match field {
        "manage_cgroups_mode" => o.manage_cgroups_mode == Some(CriuCgMode::Ignore as i32),
        "empty_ns" => o.empty_ns == Some(0),
        "network_lock" => o.network_lock == Some(CriuNetworkLockMethod::Skip as i32),
        "config_file" => o.config_file.as_deref().is_some_and(|f| !Path::new(f).exists()),
        "leave_running" => off(o.leave_running),
        "ext_unix_sk" => off(o.ext_unix_sk),
        "tcp_established" => off(o.tcp_established),
        "evasive_devices" => off(o.evasive_devices),
        "shell_job" => off(o.shell_job),
        "file_locks" => off(o.file_locks),
        "notify_scripts" => off(o.notify_scripts),
        "track_mem" => off(o.track_mem),
        "auto_dedup" => off(o.auto_dedup),
        "link_remap" => off(o.link_remap),
        "force_irmap" => off(o.force_irmap),
        "manage_cgroups" => off(o.manage_cgroups),
        "rst_sibling" => off(o.rst_sibling),
        "auto_ext_mnt" => off(o.auto_ext_mnt),
        "ext_sharing" => off(o.ext_sharing),
        "ext_masters" => off(o.ext_masters),
        "tcp_skip_in_flight" => off(o.tcp_skip_in_flight),
        "weak_sysctls" => off(o.weak_sysctls),
        "lazy_pages" => off(o.lazy_pages),
        "orphan_pts_master" => off(o.orphan_pts_master),
        "tcp_close" => off(o.tcp_close),
        "tls" => off(o.tls),
        "tls_no_cn_verify" => off(o.tls_no_cn_verify),
        "mntns_compat_mode" => off(o.mntns_compat_mode),
        "skip_file_rwx_check" => off(o.skip_file_rwx_check),
        "unprivileged" => off(o.unprivileged),
        "leave_stopped" => off(o.leave_stopped),
        "display_stats" => off(o.display_stats),
        "log_to_stderr" => off(o.log_to_stderr),
        _ => false,
    }
}

fn effect(rule: Rule, cmd: Cmds) -> Effect {
    match rule {
        Opt(long) => criu_options::by_long(long).map_or(Effect::Refused, |o| o.effect(cmd)),
        Rpc { works, .. } if works.has(cmd) => Effect::Works,
        Rpc { criu, .. } if criu.has(cmd) => Effect::Refused,
        Rpc { .. } => Effect::Ignored,
    }
}

/// The fields `o` sets that rcr cannot act on for `cmd`, each with its criu option; and those that
/// have no effect there (criu ignores them there too).
pub fn classify(o: &CriuOpts, cmd: Cmds) -> (Vec<String>, Vec<&'static str>) {
    let (mut refused, mut ignored) = (Vec::new(), Vec::new());
    for (name, rule) in set_fields(o) {
        match effect(rule, cmd) {
            Effect::Works => {}
            Effect::Ignored => ignored.push(name),
            Effect::Refused => refused.push(match rule {
                Opt(long) => format!("{name} (criu's --{long})"),
                Rpc { .. } => name.to_string(),
            }),
        }
    }
    (refused, ignored)
}

/// Where a request's files are: the images directory and the work directory (logs), each opened by
/// rcr and used as `/proc/RCR/fd/N` so that the client's fd is read once, in the client's view.
pub struct Dirs {
    pub images: Option<PathBuf>,
    pub work: Option<PathBuf>,
    _held: Vec<File>,
}

/// Opens fd `fd` of process `client` (criu's `/proc/CLIENT/fd/N`), a directory.
fn client_dir(client: i32, fd: i32, field: &str) -> Result<File, String> {
    let path = format!("/proc/{client}/fd/{fd}");
    let f = File::open(&path).map_err(|e| format!("{field} {fd}: cannot open fd {fd} of the client (pid {client}) as {path}: {e}"))?;
    match f.metadata() {
        Ok(m) if m.is_dir() => Ok(f),
        Ok(_) => Err(format!("{field} {fd}: fd {fd} of the client (pid {client}) is not a directory")),
        Err(e) => Err(format!("{field} {fd}: {path}: {e}")),
    }
}

fn held_path(f: &File) -> PathBuf {
    PathBuf::from(format!("/proc/{}/fd/{}", std::process::id(), f.as_raw_fd()))
}

impl Dirs {
    /// criu's order: images_dir_fd, else images_dir; the work directory is work_dir_fd, else the
    /// images directory. `need_images`: a dump or restore (a check needs none).
    pub fn open(o: &CriuOpts, client: i32, need_images: bool) -> Result<Dirs, String> {
        let mut held = Vec::new();
        let images = if o.images_dir_fd != -1 {
            let f = client_dir(client, o.images_dir_fd, "images_dir_fd")?;
            let p = held_path(&f);
            held.push(f);
            Some(p)
        } else if let Some(d) = &o.images_dir {
            if !Path::new(d).is_dir() {
                return Err(format!("images_dir {d:?} is not a directory"));
            }
            Some(PathBuf::from(d))
        } else if need_images {
            return Err("neither images_dir_fd nor images_dir is set: rcr needs the images directory".into());
        } else {
            None
        };
        let work = match o.work_dir_fd {
            Some(fd) => {
                let f = client_dir(client, fd, "work_dir_fd")?;
                let p = held_path(&f);
                held.push(f);
                Some(p)
            }
            None => images.clone(),
        };
        Ok(Dirs { images, work, _held: held })
    }
}

/// Where the request's log goes.
pub enum Log {
    Stderr,
    File(PathBuf),
    /// A check without log_file logs nowhere but rcr's own log.
    None,
}

/// criu's rules: log_to_stderr, else log_file (a name, no directories) in the work directory, else
/// criu's default `criu.log` there (a check logs to a file only when log_file is set).
pub fn log(o: &CriuOpts, dirs: &Dirs, check: bool) -> Result<Log, String> {
    if o.log_to_stderr == Some(true) {
        return Ok(Log::Stderr);
    }
    if check && o.log_file.is_none() {
        return Ok(Log::None);
    }
    let name = o.log_file.as_deref().unwrap_or(DEFAULT_LOG);
    if name.contains('/') || name.is_empty() || name == "." || name == ".." {
        return Err(format!("log_file {name:?} must be a file name (no directories, as criu): it goes in the work directory"));
    }
    let Some(work) = &dirs.work else {
        return Err("log_file is set but there is no work directory: set images_dir_fd or work_dir_fd".into());
    };
    Ok(Log::File(work.join(name)))
}

/// criu's log file name for RPC requests that name none.
const DEFAULT_LOG: &str = "criu.log";

fn seconds(t: u32) -> std::time::Duration {
    std::time::Duration::from_secs(u64::from(t))
}

/// The dump of a request's options (the fields [`classify`] let through).
pub fn dump_opts(o: &CriuOpts, images: PathBuf) -> Result<DumpOpts, String> {
    let pid = match o.pid {
        Some(p) if p > 0 => p,
        Some(p) => return Err(format!("pid {p} is not a pid")),
        None => return Err("pid is not set: dumping the requesting process itself (criu's self-dump) is not supported by rcr yet; set pid".into()),
    };
    let mut d = DumpOpts::new(pid, images);
    d.leave_running = o.leave_running == Some(true);
    d.shell_job = o.shell_job == Some(true);
    d.ext_unix_sk = o.ext_unix_sk == Some(true);
    d.file_locks = o.file_locks == Some(true);
    d.link_remap = o.link_remap == Some(true);
    if let Some(g) = o.ghost_limit {
        d.ghost_limit = u64::from(g);
    }
    if let Some(t) = o.timeout {
        d.freeze_timeout = seconds(t);
    }
    Ok(d)
}

/// The restore of a request's options; detached always (criu's RPC restore too: the client, not
/// rcr, waits for the tree).
pub fn restore_opts(o: &CriuOpts, images: PathBuf, client: i32) -> Result<RestoreOpts, String> {
    let mut r = RestoreOpts::new(images);
    r.detached = true;
    r.shell_job = o.shell_job == Some(true);
    r.ext_unix_sk = o.ext_unix_sk == Some(true);
    r.file_locks = o.file_locks == Some(true);
    if let Some(t) = o.timeout {
        r.step_timeout = seconds(t);
    }
    if let Some(fd) = o.status_fd {
        // criu reopens the client's fd for writing.
        let path = format!("/proc/{client}/fd/{fd}");
        let f = std::fs::OpenOptions::new().write(true).open(&path).map_err(|e| format!("status_fd {fd}: cannot open fd {fd} of the client (pid {client}) as {path}: {e}"))?;
        r.notify.add(std::sync::Arc::new(crate::actions::StatusFd::from_fd(f.into())));
    }
    Ok(r)
}

use rcr_engine::options::{DumpOpts, RestoreOpts};

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field of criu_opts has a rule (and only those): a new field in rpc.proto must be
    /// classified; every option named is one of criu's table; a default criu_opts sets nothing.
    #[test]
    fn every_field_is_classified() {
        let mut proto = rcr_images::rpc::message_fields("criu_opts");
        proto.sort();
        let mut ours: Vec<String> = FIELDS.iter().map(|f| f.0.to_string()).collect();
        ours.sort();
        assert_eq!(ours, proto);
        for (name, rule) in FIELDS {
            if let Opt(long) = rule {
                assert!(criu_options::by_long(long).is_some(), "{name}: --{long} is not in criu's table");
            }
        }
        assert!(set_fields(&CriuOpts::default()).is_empty());
    }

    #[test]
    fn runc_style_false_flags_ask_for_nothing() {
        let o = CriuOpts {
            images_dir_fd: 3,
            pid: Some(10),
            leave_running: Some(false),
            tcp_established: Some(false),
            ext_unix_sk: Some(false),
            shell_job: Some(false),
            file_locks: Some(false),
            manage_cgroups_mode: Some(CriuCgMode::Ignore as i32),
            notify_scripts: Some(true),
            log_level: Some(4),
            log_file: Some("dump.log".into()),
            ..Default::default()
        };
        assert_eq!(classify(&o, Cmds::DUMP), (vec![], vec![]));
        let o = CriuOpts { tcp_established: Some(true), manage_cgroups_mode: Some(CriuCgMode::Soft as i32), ghost_limit: Some(5), ..o };
        let (refused, ignored) = classify(&o, Cmds::DUMP);
        assert_eq!(refused, vec!["tcp_established (criu's --tcp-established)", "manage_cgroups_mode (criu's --manage-cgroups)"]);
        assert!(ignored.is_empty());
        // On restore criu ignores ghost_limit and pid.
        let (_, ignored) = classify(&o, Cmds::RESTORE);
        assert_eq!(ignored, vec!["pid", "ghost_limit"]);
        // A check ignores nearly everything, but not an RPC config file.
        let o = CriuOpts { config_file: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml").into()), ..o };
        assert_eq!(classify(&o, Cmds::CHECK).0, vec!["config_file"]);
        // One that does not exist has nothing to say (runc always names /etc/criu/runc.conf).
        let o = CriuOpts { config_file: Some("/nonexistent/runc.conf".into()), ..o };
        assert!(classify(&o, Cmds::CHECK).0.is_empty());
    }
}
