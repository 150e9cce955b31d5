//! Command-line parsing with criu's option names. The parsed arguments are converted into the engine's
//! option structs in main.rs; nothing parsed here is dropped on the way.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "rcr", version, about = "Checkpoint/restore for Linux processes (criu-compatible command line)")]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// Options every subcommand takes (criu accepts them before or after the command word).
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Directory of the image files.
    #[arg(short = 'D', long = "images-dir", global = true, value_name = "DIR")]
    pub images_dir: Option<PathBuf>,
    /// Verbosity 0-4 like criu (-v4, --verbosity=4; -v alone means 4).
    #[arg(short = 'v', long = "verbosity", global = true, num_args = 0..=1, default_missing_value = "4",
          value_parser = clap::value_parser!(u8).range(0..=5), value_name = "N")]
    pub verbosity: Option<u8>,
    /// Do not read /etc/rcr/default.conf and ~/.rcr/default.conf.
    #[arg(long = "no-default-config", global = true)]
    pub no_default_config: bool,
    /// Read options from FILE (one `option [value]` per line, as criu's config files).
    #[arg(long = "config", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Seconds to wait for a task to freeze or for a restore step.
    #[arg(long = "timeout", global = true, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Load every plugin (*.so) in DIR (default: $RCR_LIBS_DIR, else /usr/lib/rcr/plugins if it exists).
    #[arg(short = 'L', long = "libdir", global = true, value_name = "DIR")]
    pub libdir: Option<PathBuf>,
}

/// Where the log goes, for the commands that act on processes (decode and encode use -o for their
/// output, as crit does).
#[derive(Args, Debug, Clone, Default)]
pub struct LogArgs {
    /// Write the log to FILE (relative names go into the images directory, as criu does).
    #[arg(short = 'o', long = "log-file", value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// Append rcr's pid to the log file name.
    #[arg(long = "log-pid")]
    pub log_pid: bool,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Checkpoint a process tree into the images directory.
    Dump(DumpArgs),
    /// Restore a process tree from the images directory.
    Restore(RestoreArgs),
    /// Check that the kernel offers what rcr needs.
    Check(CheckArgs),
    /// Print image files as JSON (crit's shape).
    Decode(DecodeArgs),
    /// Turn JSON (crit's shape) back into an image file.
    Encode(EncodeArgs),
    /// Print a human summary of a checkpoint.
    Show(ShowArgs),
    /// List the plugins that would load (from --libdir DIR) and the hooks each has.
    Plugins,
}

#[derive(Args, Debug)]
pub struct DumpArgs {
    #[command(flatten)]
    pub log: LogArgs,
    /// Root of the process tree to dump.
    #[arg(short = 't', long = "tree", value_name = "PID")]
    pub tree: i32,
    /// Leave the tree running after the dump.
    #[arg(short = 'R', long = "leave-running")]
    pub leave_running: bool,
    /// The tree is a shell job: its terminal belongs to the shell.
    #[arg(short = 'j', long = "shell-job")]
    pub shell_job: bool,
    /// Largest deleted-but-open file to save with the checkpoint, counting its data, not its holes
    /// (bytes, or with a K, M or G suffix; default 1M).
    #[arg(long = "ghost-limit", value_name = "SIZE", value_parser = parse_size)]
    pub ghost_limit: Option<u64>,
    /// Find the data of deleted files with the FIEMAP ioctl (SEEK_DATA where the file system lacks it).
    #[arg(long = "ghost-fiemap", overrides_with = "no_ghost_fiemap")]
    pub ghost_fiemap: bool,
    /// Find the data of deleted files with SEEK_DATA/SEEK_HOLE (the default).
    #[arg(long = "no-ghost-fiemap", overrides_with = "ghost_fiemap")]
    pub no_ghost_fiemap: bool,
    /// Save the file locks (flock, POSIX, OFD) the tree holds; without it a held lock fails the dump.
    #[arg(short = 'l', long = "file-locks")]
    pub file_locks: bool,
    /// Keep a file that was unlinked but has other links by linking it as link_remap.N beside its path.
    #[arg(long = "link-remap")]
    pub link_remap: bool,
    /// Allow unix sockets connected to sockets outside the tree (a datagram socket is reconnected to
    /// its peer's name at restore; a stream connection to the outside cannot be restored).
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
}

/// A size as criu takes it: a number of bytes, or with a K, M or G suffix (powers of 1024).
pub fn parse_size(v: &str) -> Result<u64, String> {
    let v = v.trim();
    let (num, mul) = match v.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let mul = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => return Err(format!("'{v}': the size suffix must be K, M or G")),
            };
            (&v[..i], mul)
        }
        _ => (v, 1),
    };
    let n: u64 = num.parse().map_err(|_| format!("'{v}' is not a size (a number, optionally followed by K, M or G)"))?;
    n.checked_mul(mul).ok_or_else(|| format!("'{v}' is too large"))
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub log: LogArgs,
    /// Detach once the tree runs (do not wait for it).
    #[arg(short = 'd', long = "restore-detached")]
    pub detached: bool,
    /// Write the restored root task's pid to FILE.
    #[arg(long = "pidfile", value_name = "FILE")]
    pub pidfile: Option<PathBuf>,
    /// Restore a shell job onto rcr's own terminal.
    #[arg(short = 'j', long = "shell-job")]
    pub shell_job: bool,
    /// Accepted as criu's: the file locks a checkpoint holds are always taken again.
    #[arg(short = 'l', long = "file-locks")]
    pub file_locks: bool,
    /// Reconnect unix sockets that were connected outside the tree (dumped with --ext-unix-sk).
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub log: LogArgs,
    /// Check only this feature (criu's names; `rcr check --feature list` lists them).
    #[arg(long = "feature", value_name = "NAME")]
    pub feature: Option<String>,
    /// Check every feature (the default; accepted for criu compatibility).
    #[arg(long = "all")]
    pub all: bool,
}

#[derive(Args, Debug)]
pub struct DecodeArgs {
    /// Image file or directory of images.
    #[arg(short = 'i', long = "in", value_name = "PATH")]
    pub input: PathBuf,
    /// Output file (default: stdout).
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Human-friendly values (hex, flag names), as `crit decode --pretty`.
    #[arg(long = "pretty")]
    pub pretty: bool,
}

#[derive(Args, Debug)]
pub struct EncodeArgs {
    /// JSON input (default: stdin).
    #[arg(short = 'i', long = "in", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Image file to write.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub output: PathBuf,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The checkpoint directory (or use -D).
    pub dir: Option<PathBuf>,
}

/// criu options rcr knows by name but does not implement yet: refused with a clear message instead of the
/// generic "unexpected argument", and never silently ignored.
pub const UNSUPPORTED_CRIU_OPTIONS: &[&str] = &[
    "--tcp-established", "--tcp-close", "--external", "--inherit-fd",
    "--manage-cgroups", "--cgroup-root", "--track-mem", "--prev-images-dir", "--page-server", "--address",
    "--port", "--lazy-pages", "--leave-stopped", "-s", "--restore-sibling", "-S", "--root", "-r",
    "--work-dir", "-W",
    "--evasive-devices", "--auto-dedup", "--skip-mnt", "--enable-fs", "--enable-external-sharing",
    "--enable-external-masters", "--freeze-cgroup", "--stream", "--network-lock", "--skip-in-flight",
    "--pre-dump", "--lsm-profile", "--lsm-mount-context", "--veth-pair", "--cpu-cap",
    "--weak-sysctls", "--tls", "--tls-cacert", "--tls-cert", "--tls-key", "--status-fd", "--empty-ns",
    "--join-ns", "--mntns-compat-mode", "--orphan-pts-master", "--display-stats", "--compress",
];

/// criu commands rcr does not have yet: refused with a clear message. `pre-dump` is the stage the plugin
/// ABI reserves as `RCR_STAGE_PRE_DUMP`.
pub const UNSUPPORTED_CRIU_COMMANDS: &[&str] = &["pre-dump", "page-server", "lazy-pages", "dedup", "cpuinfo"];

/// The criu command rcr does not have that `args` asks for, if any (the first of `known` or of
/// [`UNSUPPORTED_CRIU_COMMANDS`] that appears is the command).
pub fn find_unsupported_command(args: &[String], known: &[&str]) -> Option<String> {
    args.iter()
        .skip(1)
        .take_while(|a| a.as_str() != "--" && !known.contains(&a.as_str()))
        .find(|a| UNSUPPORTED_CRIU_COMMANDS.contains(&a.as_str()))
        .cloned()
}

/// Rewrites criu spellings clap does not take as they are: `-vvv` (counted verbosity) becomes `-v3`.
pub fn normalize_args(args: Vec<String>) -> Vec<String> {
    args.into_iter()
        .map(|a| {
            let count = a.strip_prefix('-').filter(|r| !r.is_empty() && r.chars().all(|c| c == 'v'));
            match count {
                Some(vs) if vs.len() > 1 => format!("-v{}", vs.len().min(5)),
                _ => a,
            }
        })
        .collect()
}

/// The first argument that names a criu option rcr does not support, if any.
pub fn find_unsupported(args: &[String]) -> Option<String> {
    args.iter().skip(1).take_while(|a| a.as_str() != "--").find_map(|a| {
        let name = a.split('=').next().unwrap_or(a);
        UNSUPPORTED_CRIU_OPTIONS.contains(&name).then(|| name.to_string())
    })
}

/// Options from a criu-style config file: each non-empty, non-comment line is `name [value]`, the name
/// with or without leading dashes.
pub fn parse_config(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = match line.split_once(char::is_whitespace) {
            Some((n, v)) => (n, Some(v.trim().trim_matches('"'))),
            None => (line, None),
        };
        let name = name.trim_start_matches('-');
        out.push(if name.len() == 1 { format!("-{name}") } else { format!("--{name}") });
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            out.push(v.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criu_commands_rcr_lacks_are_found() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(find_unsupported_command(&args(&["rcr", "-L", "/x", "pre-dump", "-t", "1"]), &["dump"]), Some("pre-dump".into()));
        assert_eq!(find_unsupported_command(&args(&["rcr", "dump", "-D", "pre-dump"]), &["dump"]), None);
        assert_eq!(find_unsupported_command(&args(&["rcr", "dump", "-t", "1"]), &["dump"]), None);
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn counted_verbosity_becomes_a_level() {
        assert_eq!(normalize_args(s(&["rcr", "-vvv", "-v", "-v4"])), s(&["rcr", "-v3", "-v", "-v4"]));
    }

    #[test]
    fn criu_spellings_parse() {
        let cli = Cli::try_parse_from(s(&["rcr", "dump", "-t", "42", "-D", "/x", "-v4", "-o", "d.log", "-R"])).unwrap();
        assert_eq!(cli.global.verbosity, Some(4));
        assert_eq!(cli.global.images_dir.as_deref(), Some(std::path::Path::new("/x")));
        match cli.cmd {
            Cmd::Dump(d) => assert!(d.tree == 42 && d.leave_running && !d.shell_job),
            other => panic!("parsed as {other:?}"),
        }
        let cli = Cli::try_parse_from(s(&["rcr", "decode", "-i", "x.img", "-o", "x.json"])).unwrap();
        assert!(matches!(cli.cmd, Cmd::Decode(DecodeArgs { output: Some(_), .. })));
        let cli = Cli::try_parse_from(s(&["rcr", "--verbosity=2", "restore", "--images-dir", "/x", "-d", "--pidfile", "p"])).unwrap();
        assert_eq!(cli.global.verbosity, Some(2));
        assert!(matches!(cli.cmd, Cmd::Restore(RestoreArgs { detached: true, .. })));
    }

    #[test]
    fn libdir_is_global() {
        for args in [["rcr", "-L", "/p", "plugins"], ["rcr", "plugins", "--libdir", "/p"]] {
            let cli = Cli::try_parse_from(s(&args)).unwrap();
            assert_eq!(cli.global.libdir.as_deref(), Some(std::path::Path::new("/p")));
            assert!(matches!(cli.cmd, Cmd::Plugins));
        }
        assert_eq!(find_unsupported(&s(&["rcr", "dump", "--libdir", "/p"])), None);
    }

    #[test]
    fn unsupported_options_are_named() {
        assert_eq!(find_unsupported(&s(&["rcr", "dump", "--tcp-established"])).as_deref(), Some("--tcp-established"));
        assert_eq!(find_unsupported(&s(&["rcr", "dump", "--tcp-close"])).as_deref(), Some("--tcp-close"));
        assert_eq!(find_unsupported(&s(&["rcr", "dump", "--ghost-limit=5M", "--file-locks", "--link-remap"])), None);
        assert_eq!(find_unsupported(&s(&["rcr", "dump", "-t", "1"])), None);
    }

    #[test]
    fn ghost_and_lock_options() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("5M"), Ok(5 << 20));
        assert_eq!(parse_size("2k"), Ok(2048));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert!(parse_size("5X").is_err() && parse_size("M").is_err());
        let cli = Cli::try_parse_from(s(&["rcr", "dump", "-t", "1", "--ghost-limit", "8M", "--ghost-fiemap", "--file-locks"])).unwrap();
        let Cmd::Dump(d) = cli.cmd else { panic!("not dump") };
        assert_eq!((d.ghost_limit, d.ghost_fiemap, d.file_locks), (Some(8 << 20), true, true));
        let cli = Cli::try_parse_from(s(&["rcr", "dump", "-t", "1", "--ghost-fiemap", "--no-ghost-fiemap"])).unwrap();
        let Cmd::Dump(d) = cli.cmd else { panic!("not dump") };
        assert!(!d.ghost_fiemap);
        assert!(Cli::try_parse_from(s(&["rcr", "restore", "--file-locks"])).is_ok());
    }

    #[test]
    fn config_lines_become_arguments() {
        let args = parse_config("# comment\nverbosity 4\n--shell-job\n\nlog-file \"x.log\"\n");
        assert_eq!(args, s(&["--verbosity", "4", "--shell-job", "--log-file", "x.log"]));
    }
}
