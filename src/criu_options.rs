//! criu 4.2's options (its `criu/config.c` table), and for each what rcr does with it on each command.
//!
//! criu parses every option for every command, wherever it stands on the line or in a config file, and
//! each command consults only the ones it needs. rcr takes the same lines: for a command, an option is
//! exactly one of
//! - **works**: rcr does what criu does with it;
//! - **ignored**: criu ignores it on that command too, so rcr accepts it and logs that at -v4;
//! - **refused**: criu would act on it and rcr cannot yet; the command fails before it starts, naming it.

/// A set of commands (criu's, and rcr's own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cmds(u16);

impl Cmds {
    pub const NONE: Cmds = Cmds(0);
    pub const DUMP: Cmds = Cmds(1);
    pub const PRE_DUMP: Cmds = Cmds(1 << 1);
    pub const RESTORE: Cmds = Cmds(1 << 2);
    pub const CHECK: Cmds = Cmds(1 << 3);
    pub const PAGE_SERVER: Cmds = Cmds(1 << 4);
    pub const LAZY_PAGES: Cmds = Cmds(1 << 5);
    pub const SERVICE: Cmds = Cmds(1 << 6);
    pub const DEDUP: Cmds = Cmds(1 << 7);
    pub const CPUINFO: Cmds = Cmds(1 << 8);
    /// rcr's own: `show`, `plugins`.
    pub const SHOW: Cmds = Cmds(1 << 9);
    pub const PLUGINS: Cmds = Cmds(1 << 10);
    pub const ALL: Cmds = Cmds(0x7ff);
    /// dump and pre-dump.
    const DP: Cmds = Cmds(1 | 2);
    /// dump, pre-dump and restore.
    const DPR: Cmds = Cmds(1 | 2 | 4);
    /// dump and restore.
    const DR: Cmds = Cmds(1 | 4);
    /// The memory-transfer commands (page server, lazy pages) and the ones that talk to them.
    const REMOTE: Cmds = Cmds(1 | 2 | 4 | 16 | 32 | 64);
    /// The daemons: page server, lazy pages, service.
    const DAEMONS: Cmds = Cmds(16 | 32 | 64);

    pub const fn or(self, o: Cmds) -> Cmds {
        Cmds(self.0 | o.0)
    }

    pub fn has(self, o: Cmds) -> bool {
        self.0 & o.0 == o.0 && o.0 != 0
    }
}

/// Every command word: (word, set, does rcr have it).
pub const COMMANDS: &[(&str, Cmds, bool)] = &[
    ("dump", Cmds::DUMP, true),
    ("pre-dump", Cmds::PRE_DUMP, false),
    ("restore", Cmds::RESTORE, true),
    ("check", Cmds::CHECK, true),
    ("page-server", Cmds::PAGE_SERVER, false),
    ("lazy-pages", Cmds::LAZY_PAGES, false),
    ("service", Cmds::SERVICE, true),
    ("swrk", Cmds::SERVICE, true),
    ("dedup", Cmds::DEDUP, false),
    ("cpuinfo", Cmds::CPUINFO, false),
    ("show", Cmds::SHOW, true),
    ("plugins", Cmds::PLUGINS, true),
];

/// How an option takes its value (getopt's terms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Takes {
    /// A flag.
    Nothing,
    /// A flag with a `--no-NAME` form (criu's BOOL_OPT); the last one given wins.
    Bool,
    /// A value: `--name V`, `--name=V`, `-cV`, `-c V`.
    Value,
    /// An optional value, attached only: `--name=V`, `-cV`.
    Optional,
    /// A value; each occurrence adds one (criu keeps a list).
    List,
}

/// One criu option.
#[derive(Debug)]
pub struct CriuOption {
    pub long: &'static str,
    pub short: Option<char>,
    pub takes: Takes,
    /// The commands on which criu acts on it; elsewhere criu ignores it.
    pub criu: Cmds,
    /// The commands on which rcr does what criu does.
    pub rcr: Cmds,
    pub help: &'static str,
}

/// What an option given on a command line means for one command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Works,
    Ignored,
    Refused,
}

impl CriuOption {
    pub fn effect(&self, cmd: Cmds) -> Effect {
        if self.rcr.has(cmd) {
            Effect::Works
        } else if self.criu.has(cmd) {
            Effect::Refused
        } else {
            Effect::Ignored
        }
    }
}

const fn opt(long: &'static str, short: Option<char>, takes: Takes, criu: Cmds, rcr: Cmds, help: &'static str) -> CriuOption {
    CriuOption { long, short, takes, criu, rcr, help }
}

use Takes::{Bool, List, Nothing, Optional, Value};
const N: Cmds = Cmds::NONE;
const A: Cmds = Cmds::ALL;
const D: Cmds = Cmds::DUMP;
const R: Cmds = Cmds::RESTORE;
const C: Cmds = Cmds::CHECK;

/// criu 4.2's options, in the order of its table. `help` says what rcr does.
pub const OPTIONS: &[CriuOption] = &[
    opt("tree", Some('t'), Value, Cmds::DP, D, "PID: root of the process tree to dump"),
    opt("leave-stopped", Some('s'), Nothing, Cmds::DPR, Cmds::DR, "leave the tasks stopped after dump or restore"),
    opt("leave-running", Some('R'), Nothing, Cmds::DP, D, "leave the tree running after the dump"),
    opt("restore-detached", Some('d'), Bool, R, R, "detach once the restored tree runs (do not wait for it)"),
    opt("restore-sibling", Some('S'), Bool, R, N, "restore the root task as a sibling of rcr"),
    opt("daemon", None, Bool, R.or(Cmds::DAEMONS), R, "as --restore-detached"),
    opt("images-dir", Some('D'), Value, A, A, "DIR: directory of the image files (default: the current directory)"),
    opt("work-dir", Some('W'), Value, A, A, "DIR: where relative log and pid file names go (default: the images directory)"),
    opt("log-file", Some('o'), Value, A, A, "FILE: write the log to FILE (relative to the work directory)"),
    opt("join-ns", Some('J'), List, R, N, "NS:PATH: join an existing namespace"),
    opt("root", Some('r'), Value, R, N, "PATH: change the root file system on restore"),
    opt("ext-unix-sk", Some('x'), Optional, Cmds::DR, Cmds::DR, "allow unix sockets connected outside the tree (no inode list)"),
    opt("help", Some('h'), Nothing, A, A, "print this help"),
    opt("tcp-established", None, Bool, Cmds::DR, N, "checkpoint and restore established TCP connections"),
    opt("close", None, List, A, A, "FD: close FD in rcr before anything else (deprecated in criu)"),
    opt("log-pid", None, Bool, A, A, "append rcr's pid to the log file name"),
    opt("version", Some('V'), Nothing, A, A, "print the version"),
    opt("evasive-devices", None, Bool, D, N, "use any path to a device file if the original one is inaccessible"),
    opt("pidfile", None, Value, R.or(Cmds::DAEMONS), R.or(Cmds::SERVICE), "FILE: write the restored root task's pid (the service's own) to FILE"),
    opt("veth-pair", None, List, R, N, "IN=OUT: veth pair to create on restore"),
    opt("action-script", None, List, Cmds::DPR, Cmds::DR, "FILE: run FILE at each stage, as criu's action scripts"),
    opt("link-remap", None, Bool, D, D, "link a file that was unlinked but has other links back beside its path"),
    opt("shell-job", Some('j'), Bool, Cmds::DR, Cmds::DR, "the tree is a shell job: its terminal belongs to the shell"),
    opt("file-locks", Some('l'), Bool, Cmds::DR, Cmds::DR, "checkpoint the file locks the tree holds (rcr: a restore always takes the checkpoint's locks again; criu without it leaves them untaken)"),
    opt("page-server", None, Bool, Cmds::DP, N, "send pages to a page server"),
    opt("address", None, Value, Cmds::REMOTE, Cmds::SERVICE, "ADDR: address of the page server, or the service's socket (works: service's)"),
    opt("port", None, Value, Cmds::REMOTE, N, "PORT: port of the page server"),
    opt("prev-images-dir", None, Value, Cmds::DP, N, "DIR: images of a previous (pre-)dump"),
    opt("ms", None, Nothing, A, N, "removed from criu (its check options replace it)"),
    opt("track-mem", None, Bool, Cmds::DP, N, "track memory changes for a later incremental dump"),
    opt("auto-dedup", None, Bool, Cmds::DPR, N, "deduplicate the data of previous images"),
    opt("libdir", Some('L'), Value, A, A, "DIR: load the plugins (*.so) in DIR (default: $RCR_LIBS_DIR, else /usr/lib/rcr/plugins)"),
    opt("cpu-cap", None, Optional, Cmds::DR.or(Cmds::CPUINFO), N, "CPU capabilities to write or check"),
    opt("force-irmap", None, Bool, D, D, "resolve the paths of inotify and fanotify watches (rcr always does)"),
    opt("ext-mount-map", Some('M'), List, Cmds::DR, N, "KEY:VAL: map an external mount"),
    opt("exec-cmd", None, Nothing, A, N, "run the command after -- once restored"),
    opt("manage-cgroups", None, Optional, Cmds::DR, N, "dump and restore the tasks' cgroups"),
    opt("cgroup-root", None, List, Cmds::DR, N, "[CONTROLLER:]/ROOT: cgroup root to restore into"),
    opt("inherit-fd", None, List, A, N, "fd[N]:RESOURCE: give the restored tree one of rcr's fds"),
    opt("feature", None, Value, C, C, "NAME: check only this feature (`--feature list` lists them)"),
    opt("skip-mnt", None, List, D, N, "PATH: ignore this mount point"),
    opt("enable-fs", None, List, D, N, "FSNAMES: file systems to dump as external"),
    opt("enable-external-sharing", None, Nothing, Cmds::DR, N, "allow mounts shared with the outside"),
    opt("enable-external-masters", None, Nothing, Cmds::DR, N, "allow mounts with masters outside"),
    opt("freeze-cgroup", None, Value, Cmds::DP, N, "PATH: freeze the tree with this cgroup's freezer"),
    opt("ghost-limit", None, Value, D, D, "SIZE: largest deleted-but-open file to save (K, M, G suffix; default 1M)"),
    opt("irmap-scan-path", None, Value, D, N, "PATH: where to look for the paths of watched inodes"),
    opt("lsm-profile", None, Value, R, N, "TYPE:NAME: LSM profile for the restored tasks"),
    opt("timeout", None, Value, Cmds::DP, Cmds::DR, "SECONDS: wait for a task to freeze (rcr: and for a restore step)"),
    opt("external", None, List, Cmds::DR, N, "RESOURCE: dump this object as external"),
    opt("empty-ns", None, Value, Cmds::DR, N, "net: create the namespace but do not restore its contents"),
    opt("lazy-pages", None, Nothing, Cmds::DR, N, "restore pages on demand"),
    opt("extra", None, Bool, C, C, "check the optional features too"),
    opt("experimental", None, Bool, C, C, "check the optional features too"),
    opt("all", None, Nothing, C, C, "as --extra --experimental"),
    opt("cgroup-props", None, Value, D, N, "STRING: cgroup properties to dump"),
    opt("cgroup-props-file", None, Value, D, N, "FILE: cgroup properties to dump"),
    opt("cgroup-dump-controller", None, List, D, N, "NAME: cgroup controller to dump"),
    opt("skip-in-flight", None, Bool, D, N, "skip TCP connections not yet accepted"),
    opt("deprecated", None, Bool, A, A, "allow deprecated features (rcr has none)"),
    opt("display-stats", None, Bool, Cmds::DPR, Cmds::DR, "print the dump or restore statistics"),
    opt("weak-sysctls", None, Bool, R, R, "skip sysctls the kernel lacks (rcr restores no sysctls yet)"),
    opt("status-fd", None, Value, Cmds::DAEMONS, R.or(Cmds::SERVICE), "FD: write a zero byte to FD and close it once the restored tree runs or the service listens (rcr; criu 4.2 does it for its daemons only)"),
    opt("tcp-close", None, Bool, Cmds::DR, N, "restore TCP connections as closed"),
    opt("verbosity", Some('v'), Optional, A, A, "log level 0-4 (-v alone adds one, -vvv adds three; default 2)"),
    opt("ps-socket", None, Value, Cmds::REMOTE, N, "FD: page server socket"),
    opt("stream", None, Bool, Cmds::DPR, N, "stream images through criu-image-streamer"),
    opt("config", None, Value, A, A, "FILE: read options from FILE (and not the default config files)"),
    opt("no-default-config", None, Nothing, A, A, "do not read the default config files"),
    opt("tls-cacert", None, Value, Cmds::REMOTE, N, "FILE: TLS CA certificate"),
    opt("tls-cacrl", None, Value, Cmds::REMOTE, N, "FILE: TLS CA revocation list"),
    opt("tls-cert", None, Value, Cmds::REMOTE, N, "FILE: TLS certificate"),
    opt("tls-key", None, Value, Cmds::REMOTE, N, "FILE: TLS private key"),
    opt("tls", None, Bool, Cmds::REMOTE, N, "secure the page server connection with TLS"),
    opt("tls-no-cn-verify", None, Nothing, Cmds::REMOTE, N, "do not verify the server certificate's common name"),
    opt("cgroup-yard", None, Value, Cmds::DR, N, "PATH: where to mount the cgroup yard"),
    opt("pre-dump-mode", None, Value, Cmds::PRE_DUMP, N, "splice|read: how pre-dump reads memory"),
    opt("file-validation", None, Value, Cmds::DR, N, "filesize|buildid: how restore validates files"),
    opt("skip-file-rwx-check", None, Bool, R, R, "do not check file permissions on restore (rcr does not)"),
    opt("lsm-mount-context", None, Value, R, N, "CTX: LSM mount context"),
    opt("network-lock", None, Value, D, N, "iptables|nftables|skip: how to lock the network (criu ignores it on restore)"),
    opt("mntns-compat-mode", None, Bool, R, N, "restore mounts in compatibility mode"),
    opt("unprivileged", None, Bool, A, N, "accept limitations when running as non-root"),
    opt("ghost-fiemap", None, Bool, D, D, "find the data of deleted files with FIEMAP"),
    opt("allow-uprobes", None, Bool, Cmds::DR, N, "allow uprobes mappings"),
];

/// The option named `long` (without dashes).
pub fn by_long(long: &str) -> Option<&'static CriuOption> {
    OPTIONS.iter().find(|o| o.long == long)
}

/// The commands of `set` that rcr has, by name ("every command" for all).
#[cfg(test)]
fn names(set: Cmds) -> String {
    let have: Vec<&str> = COMMANDS.iter().filter(|(_, c, have)| *have && set.has(*c)).map(|(w, _, _)| *w).collect();
    if have.len() == COMMANDS.iter().filter(|c| c.2).count() {
        "every command".into()
    } else {
        have.join(", ")
    }
}

/// The README's option table: per option, where rcr does what criu does, where it refuses it (criu
/// acts on it there, rcr cannot yet); everywhere else it is accepted and has no effect, as in criu.
#[cfg(test)]
pub fn markdown_table() -> String {
    let mut s = String::from("| option | rcr does what criu does on | refused (not yet) on | what it is |\n| --- | --- | --- | --- |\n");
    for o in OPTIONS {
        let short = o.short.map_or(String::new(), |c| format!("`-{c}`, "));
        let value = match o.takes {
            Takes::Value | Takes::List => " V",
            Takes::Optional => "[=V]",
            _ => "",
        };
        let no = if o.takes == Takes::Bool { format!(", `--no-{}`", o.long) } else { String::new() };
        let refused = Cmds(o.criu.0 & !o.rcr.0);
        s.push_str(&format!(
            "| {short}`--{}{value}`{no} | {} | {} | {} |\n",
            o.long,
            names(o.rcr),
            names(refused),
            o.help.replace('|', "\\|")
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's table is this table (RCR_BLESS=1 rewrites it).
    #[test]
    fn readme_table_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).unwrap();
        let (begin, end) = ("<!-- options table: generated by `RCR_BLESS=1 cargo test -p rcr readme_table` -->\n", "<!-- end of options table -->");
        let (Some(a), Some(b)) = (readme.find(begin), readme.find(end)) else { panic!("README.md lacks the options table markers") };
        let want = markdown_table();
        if readme[a + begin.len()..b] != want {
            if std::env::var_os("RCR_BLESS").is_some() {
                std::fs::write(path, format!("{}{want}{}", &readme[..a + begin.len()], &readme[b..])).unwrap();
            } else {
                panic!("README.md's options table is out of date: run RCR_BLESS=1 cargo test -p rcr readme_table");
            }
        }
    }

    #[test]
    fn names_are_unique_and_every_rcr_option_is_criu_s() {
        let mut seen = std::collections::HashSet::new();
        for o in OPTIONS {
            assert!(seen.insert(o.long), "--{} twice", o.long);
            if let Some(c) = o.short {
                assert!(seen.insert(Box::leak(c.to_string().into_boxed_str())), "-{c} twice");
            }
            // rcr may act on an option where criu does not only as an extension documented in its help.
            let extra = Cmds(o.rcr.0 & !o.criu.0 & !(Cmds::SHOW.0 | Cmds::PLUGINS.0));
            assert!(extra == N || o.help.contains("rcr"), "--{} works on commands criu ignores it on", o.long);
        }
    }

    #[test]
    fn effects() {
        let o = by_long("pidfile").unwrap();
        assert_eq!((o.effect(D), o.effect(R)), (Effect::Ignored, Effect::Works));
        let o = by_long("tcp-established").unwrap();
        assert_eq!((o.effect(D), o.effect(C)), (Effect::Refused, Effect::Ignored));
        assert_eq!(by_long("leave-running").unwrap().effect(R), Effect::Ignored);
    }
}
