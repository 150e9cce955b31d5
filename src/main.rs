//! `rcr`: the command-line front end. It only parses arguments (criu's names), sets up logging and calls
//! the engine.

mod actions;
mod cli;
mod criu_options;
mod rpc;

use anyhow::{bail, Context, Result};
use cli::{Invocation, Parsed};
use rcr_engine::options::{DumpOpts, RestoreOpts};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `rcr service`'s socket when `--address` names none (criu's, relative to the work directory).
const DEFAULT_SERVICE_ADDRESS: &str = "criu_service.socket";

/// Where installed plugins live when neither --libdir nor RCR_LIBS_DIR names a directory.
const DEFAULT_PLUGIN_DIR: &str = "/usr/lib/rcr/plugins";

/// The plugin directory: `--libdir`, else `RCR_LIBS_DIR`, else the default one if it exists.
fn plugin_dir(libdir: Option<PathBuf>) -> Option<PathBuf> {
    if let Some(d) = libdir {
        return Some(d);
    }
    match std::env::var_os("RCR_LIBS_DIR") {
        Some(d) if !d.is_empty() => Some(PathBuf::from(d)),
        _ => Some(PathBuf::from(DEFAULT_PLUGIN_DIR)).filter(|d| d.is_dir()),
    }
}

fn main() {
    let code = match run() {
        Ok(code) => code,
        Err(e) => {
            let msg = error_text(&e);
            // Once in the log file, once on stderr (where the log goes without -o, only once).
            if LOG_TO_FILE.load(std::sync::atomic::Ordering::Relaxed) {
                tracing::error!("{msg}");
            }
            eprintln!("rcr: error: {msg}");
            1
        }
    };
    std::process::exit(code);
}

/// The error and its causes, each cause only if the text so far does not already say it (the engine's
/// errors usually include their source in their own message).
fn error_text(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if !msg.contains(&c) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&c);
        }
    }
    msg
}

fn run() -> Result<i32> {
    match cli::parse(std::env::args().collect())? {
        Parsed::Help(text) => {
            print!("{text}");
            Ok(0)
        }
        Parsed::Version => {
            // criu's first line, which scripts parse, then rcr's own.
            println!("Version: {CRIU_VERSION}\nrcr {} (criu {CRIU_VERSION} command line and images)", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        Parsed::Crit(c) => crit(c),
        Parsed::Criu(inv) => criu_command(&inv),
    }
}

/// Whether the log goes to a file (-o), set once by [`init_logging`].
static LOG_TO_FILE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The criu release whose command line, images and RPC rcr follows.
const CRIU_VERSION: &str = "4.2";

/// Paths of one command: the images directory (absolute, so that `-W` does not move it) and the work
/// directory, where relative log and pid file names go (criu's: the images directory unless `-W`).
struct Dirs {
    images: PathBuf,
    work: PathBuf,
}

impl Dirs {
    fn of(inv: &Invocation) -> Result<Dirs> {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let images = cwd.join(inv.path("images-dir").unwrap_or_else(|| PathBuf::from(".")));
        let work = match inv.path("work-dir") {
            Some(w) => {
                let w = cwd.join(w);
                if !w.is_dir() {
                    bail!("work directory {} (-W) is not a directory", w.display());
                }
                w
            }
            None => images.clone(),
        };
        Ok(Dirs { images, work })
    }

    /// `name` relative to the work directory.
    fn in_work(&self, name: &Path) -> PathBuf {
        self.work.join(name)
    }
}

fn criu_command(inv: &Invocation) -> Result<i32> {
    for fd in inv.values("close") {
        let fd: i32 = fd.trim().parse().map_err(|_| anyhow::anyhow!("invalid argument for --close: {fd:?} is not an fd number"))?;
        // criu closes it at once, before anything else; so does rcr (a close error is ignored, as criu's).
        // SAFETY: nothing in rcr owns an fd yet but stdin, stdout and stderr, which the user may close.
        unsafe { libc::close(fd) };
    }
    let dirs = Dirs::of(inv)?;
    let _guard = init_logging(inv, &dirs)?;
    for opt in &inv.ignored {
        tracing::debug!("option {opt} has no effect on {} (criu ignores it there too)", inv.word);
    }
    let timeout = inv.number::<u64>("timeout")?.map(Duration::from_secs);
    let plugin_dir = plugin_dir(inv.path("libdir"));
    match inv.word.as_str() {
        "dump" => {
            let pid: i32 = match inv.number("tree")? {
                Some(p) if p > 0 => p,
                Some(p) => bail!("invalid argument for -t/--tree: {p} is not a pid"),
                None => bail!("no pid to dump: give -t/--tree PID"),
            };
            let mut opts = DumpOpts::new(pid, dirs.images.clone());
            catch_interrupts(&opts.cancel);
            opts.leave_running = inv.flag("leave-running");
            opts.leave_stopped = inv.flag("leave-stopped");
            if opts.leave_running && opts.leave_stopped {
                bail!("-R/--leave-running and -s/--leave-stopped ask for two different ends of the dump: give one");
            }
            opts.shell_job = inv.flag("shell-job");
            opts.ext_unix_sk = inv.given("ext-unix-sk");
            opts.plugin_dir = plugin_dir;
            if let Some(l) = inv.value("ghost-limit") {
                opts.ghost_limit = cli::parse_size(l).map_err(|e| anyhow::anyhow!("invalid argument for --ghost-limit: {e}"))?;
            }
            opts.ghost_fiemap = inv.flag("ghost-fiemap");
            opts.file_locks = inv.flag("file-locks");
            opts.link_remap = inv.flag("link-remap");
            add_listeners(inv, &dirs, &mut opts.notify, false)?;
            if let Some(t) = timeout {
                opts.freeze_timeout = t;
            }
            let stats = rcr_engine::dump::dump(&opts)?;
            tracing::info!("{stats}");
            log_peak_memory();
            if inv.flag("display-stats") {
                print!("{}", rcr_engine::show::display_stats(&opts.images_dir, false)?);
            }
            Ok(0)
        }
        "restore" => {
            let mut opts = RestoreOpts::new(dirs.images.clone());
            opts.detached = inv.flag("restore-detached") || inv.flag("daemon");
            opts.leave_stopped = inv.flag("leave-stopped");
            opts.pidfile = inv.path("pidfile").map(|p| dirs.in_work(&p));
            opts.shell_job = inv.flag("shell-job");
            opts.file_locks = inv.flag("file-locks");
            opts.ext_unix_sk = inv.given("ext-unix-sk");
            opts.plugin_dir = plugin_dir;
            if let Some(t) = timeout {
                opts.step_timeout = t;
            }
            add_listeners(inv, &dirs, &mut opts.notify, true)?;
            let outcome = rcr_engine::restore::restore(&opts)?;
            log_peak_memory();
            if inv.flag("display-stats") {
                print!("{}", rcr_engine::show::display_stats(&opts.images_dir, true)?);
            }
            Ok(outcome.exit_code.unwrap_or(0))
        }
        "check" => check(inv),
        "swrk" => {
            let fd = inv.operands.first().and_then(|f| f.parse::<i32>().ok().filter(|&f| f >= 0));
            let Some(fd) = fd else { bail!("usage: rcr swrk FD (FD: one end of a SOCK_SEQPACKET socketpair, for CRIU's RPC)") };
            rpc::swrk(fd, &rpc::Server { plugin_dir }).map_err(anyhow::Error::msg)
        }
        "service" => {
            let address = dirs.in_work(&inv.path("address").unwrap_or_else(|| PathBuf::from(DEFAULT_SERVICE_ADDRESS)));
            let pidfile = inv.path("pidfile").map(|p| dirs.in_work(&p));
            let ready = match inv.number::<i32>("status-fd")? {
                Some(fd) => Some(actions::StatusFd::new(fd).map_err(anyhow::Error::msg)?),
                None => None,
            };
            rpc::service(&address, &rpc::Server { plugin_dir }, pidfile.as_deref(), ready).map_err(anyhow::Error::msg)
        }
        "plugins" => list_plugins(plugin_dir),
        "show" => {
            let dir = inv.operands.first().map_or(dirs.images.clone(), PathBuf::from);
            print!("{}", rcr_engine::show::summary(&dir)?);
            Ok(0)
        }
        other => bail!("rcr has no command {other:?}"),
    }
}

/// `--action-script` and, for restore, `--status-fd`.
fn add_listeners(inv: &Invocation, dirs: &Dirs, notify: &mut rcr_engine::notify::Notifier, restore: bool) -> Result<()> {
    let scripts: Vec<PathBuf> = inv.values("action-script").into_iter().map(|p| dirs.in_work(Path::new(p))).collect();
    if !scripts.is_empty() {
        notify.add(std::sync::Arc::new(actions::ActionScripts { scripts, images_dir: dirs.images.clone() }));
    }
    if restore {
        if let Some(fd) = inv.number::<i32>("status-fd")? {
            notify.add(std::sync::Arc::new(actions::StatusFd::new(fd).map_err(anyhow::Error::msg)?));
        }
    }
    Ok(())
}

/// crit's decode and encode.
fn crit(c: cli::CritCli) -> Result<i32> {
    tracing_subscriber::fmt().with_max_level(tracing_subscriber::filter::LevelFilter::WARN).with_target(false).with_writer(std::io::stderr).init();
    match c.cmd {
        cli::CritCmd::Decode(a) => {
            let value = if a.input.is_dir() {
                rcr_images::decode_dir(&a.input, a.pretty)?
            } else {
                rcr_images::decode_file(&a.input, a.pretty)?
            };
            let mut text = if a.pretty { serde_json::to_string_pretty(&value)? } else { serde_json::to_string(&value)? };
            text.push('\n');
            match a.output {
                Some(p) => std::fs::write(&p, text).with_context(|| format!("cannot write {}", p.display()))?,
                None => std::io::stdout().write_all(text.as_bytes())?,
            }
        }
        cli::CritCmd::Encode(a) => {
            let mut text = String::new();
            match &a.input {
                Some(p) => text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
                None => {
                    std::io::stdin().read_to_string(&mut text)?;
                }
            }
            let value: serde_json::Value = serde_json::from_str(&text).context("input is not JSON")?;
            let bytes = rcr_images::encode(&value)?;
            std::fs::write(&a.output, bytes).with_context(|| format!("cannot write {}", a.output.display()))?;
        }
    }
    Ok(0)
}

/// rcr's own peak memory, for users sizing a host (and tests checking that images stream).
fn log_peak_memory() {
    if let Some(kib) = rcr_engine::proc::self_peak_rss_kib() {
        tracing::info!("rcr peak memory: {kib} KiB resident");
    }
}

/// The running dump's cancellation, for the signal handler (the binary's one static; the engine has none).
static CANCEL: std::sync::OnceLock<rcr_engine::options::Cancel> = std::sync::OnceLock::new();

/// Ctrl-C (SIGINT), SIGTERM and SIGHUP during a dump: the dump stops at its next step, detaches and
/// leaves the process running as it was, instead of rcr dying with the process frozen.
fn catch_interrupts(cancel: &rcr_engine::options::Cancel) {
    let _ = CANCEL.set(cancel.clone());
    extern "C" fn on_signal(_: libc::c_int) {
        if let Some(c) = CANCEL.get() {
            c.cancel();
        }
    }
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only reads an initialised OnceLock and stores to an atomic, both
        // async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

/// `rcr plugins`: each plugin file of the directory, what it is and its hooks, or why it would not load.
/// Exit status 1 if any would not load.
fn list_plugins(dir: Option<PathBuf>) -> Result<i32> {
    let Some(dir) = dir else {
        println!("no plugin directory ({DEFAULT_PLUGIN_DIR} does not exist; give --libdir DIR or set RCR_LIBS_DIR)");
        return Ok(0);
    };
    let entries = rcr_engine::plugins::list(&dir)?;
    println!("plugins in {}: {}", dir.display(), entries.len());
    let mut bad = 0;
    for (file, r) in entries {
        match r {
            Ok(p) => {
                let route = match p.route {
                    rcr_engine::plugins::Route::Rust => "Rust",
                    rcr_engine::plugins::Route::C => "C",
                };
                println!("{} {} ({}, plugin ABI {}) {}", p.name, p.version, route, p.abi_version, file.display());
                println!("    hooks: {}", if p.hooks.is_empty() { "none".to_string() } else { p.hooks.join(", ") });
            }
            Err(e) => {
                bad += 1;
                println!("ERROR {}: {e}", file.display());
            }
        }
    }
    Ok(i32::from(bad > 0))
}

/// `rcr check`: the features dump and restore need; with `--extra`, `--experimental` or `--all` the
/// optional ones too (criu's grouping). Exit status 1 when a needed one is missing, or the one asked
/// for with `--feature`.
fn check(inv: &Invocation) -> Result<i32> {
    let feature = inv.value("feature");
    let reports = match feature {
        Some("list") => {
            for name in rcr_engine::check::feature_names() {
                println!("{name}");
            }
            return Ok(0);
        }
        Some(name) => vec![rcr_engine::check::check_feature(name)?],
        None => rcr_engine::check::check_all(inv.flag("extra") || inv.flag("experimental") || inv.flag("all")),
    };
    let mut missing = 0;
    let mut needed_missing = 0;
    for r in &reports {
        println!("{:<20} {:<8} {}", r.name, if r.ok { "ok" } else { "MISSING" }, r.detail);
        missing += usize::from(!r.ok);
        needed_missing += usize::from(!r.ok && r.needed);
    }
    if missing == 0 {
        println!("Looks good.");
        Ok(0)
    } else if needed_missing > 0 || feature.is_some() {
        println!("{missing} feature(s) missing, {needed_missing} of them needed by dump or restore (see above)");
        Ok(1)
    } else {
        println!("{missing} optional feature(s) missing: rcr works with reduced function (see above)");
        Ok(0)
    }
}

/// criu's log levels (0 and 1 errors, 2 warnings, 3 info, 4 debug; more for rcr's trace).
fn level_filter(v: u8) -> tracing_subscriber::filter::LevelFilter {
    use tracing_subscriber::filter::LevelFilter;
    match v {
        0 | 1 => LevelFilter::ERROR,
        2 => LevelFilter::WARN,
        3 => LevelFilter::INFO,
        4 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// Logging through `tracing`: criu's levels (-v0..-v4, more for rcr's trace) to stderr, or to
/// `-o FILE` (relative to the work directory), `FILE.PID` with `--log-pid`. Returns the guard that
/// flushes the file.
fn init_logging(inv: &Invocation, dirs: &Dirs) -> Result<Option<std::sync::Arc<std::fs::File>>> {
    let level = level_filter(inv.verbosity());
    let builder = tracing_subscriber::fmt().with_max_level(level).with_target(false);
    let Some(name) = inv.path("log-file").filter(|n| n.as_os_str() != "-") else {
        builder.with_writer(std::io::stderr).init();
        return Ok(None);
    };
    let mut path = dirs.in_work(&name);
    if inv.flag("log-pid") {
        let mut s = path.into_os_string();
        s.push(format!(".{}", std::process::id()));
        path = s.into();
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let file = std::sync::Arc::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open log file {}", path.display()))?,
    );
    builder.with_ansi(false).with_writer(file.clone()).init();
    LOG_TO_FILE.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(Some(file))
}
