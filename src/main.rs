//! `rcr`: the command-line front end. It only parses arguments (criu's names), sets up logging and calls
//! the engine.

mod cli;

use anyhow::{bail, Context, Result};
use clap::{CommandFactory, FromArgMatches};
use cli::{Cli, Cmd};
use rcr_engine::options::{DumpOpts, RestoreOpts};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

const SUBCOMMANDS: &[&str] = &["dump", "restore", "check", "decode", "encode", "show", "plugins"];

/// Where installed plugins live when neither --libdir nor RCR_LIBS_DIR names a directory.
const DEFAULT_PLUGIN_DIR: &str = "/usr/lib/rcr/plugins";

/// The plugin directory: `--libdir`, else `RCR_LIBS_DIR`, else the default one if it exists.
fn plugin_dir(g: &cli::Global) -> Option<PathBuf> {
    if let Some(d) = &g.libdir {
        return Some(d.clone());
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
            tracing::error!("{msg}");
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

/// The command line with config-file options placed right after the subcommand word, so that options given
/// on the command line come later and win.
fn full_args() -> Result<Vec<String>> {
    let args = cli::normalize_args(std::env::args().collect());
    let no_default = args.iter().any(|a| a == "--no-default-config");
    let mut config_files: Vec<PathBuf> = Vec::new();
    if !no_default {
        config_files.push(PathBuf::from("/etc/rcr/default.conf"));
        if let Some(home) = std::env::var_os("HOME") {
            config_files.push(Path::new(&home).join(".rcr/default.conf"));
        }
    }
    if let Some(i) = args.iter().position(|a| a == "--config" || a.starts_with("--config=")) {
        let path = match args[i].split_once('=') {
            Some((_, p)) => Some(p.to_string()),
            None => args.get(i + 1).cloned(),
        };
        if let Some(p) = path {
            config_files.push(PathBuf::from(p));
        }
    }
    let mut extra = Vec::new();
    for file in config_files {
        match std::fs::read_to_string(&file) {
            Ok(text) => extra.extend(cli::parse_config(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !args.iter().any(|a| a.contains(&*file.to_string_lossy())) => {}
            Err(e) => bail!("cannot read config file {}: {e}", file.display()),
        }
    }
    if extra.is_empty() {
        return Ok(args);
    }
    let at = args.iter().position(|a| SUBCOMMANDS.contains(&a.as_str())).map_or(args.len(), |i| i + 1);
    let mut out = args[..at].to_vec();
    out.extend(extra);
    out.extend_from_slice(&args[at..]);
    Ok(out)
}

fn run() -> Result<i32> {
    let args = full_args()?;
    if let Some(cmd) = cli::find_unsupported_command(&args, SUBCOMMANDS) {
        let why = if cmd == "pre-dump" { " (memory pre-copy; plugins reserve RCR_STAGE_PRE_DUMP for it)" } else { "" };
        bail!("'{cmd}' is a criu command that rcr does not support yet{why}; use rcr dump");
    }
    if let Some(opt) = cli::find_unsupported(&args) {
        bail!("option {opt} is a criu option that rcr does not support yet; run without it");
    }
    let matches = match Cli::command().args_override_self(true).try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => e.exit(),
    };
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let log = match &cli.cmd {
        Cmd::Dump(a) => a.log.clone(),
        Cmd::Restore(a) => a.log.clone(),
        Cmd::Check(a) => a.log.clone(),
        _ => cli::LogArgs::default(),
    };
    let _guard = init_logging(&cli.global, &log)?;
    let timeout = cli.global.timeout.map(Duration::from_secs);
    let images_dir = || -> Result<PathBuf> {
        cli.global.images_dir.clone().context("no images directory: give -D/--images-dir DIR")
    };
    match cli.cmd {
        Cmd::Dump(a) => {
            let mut opts = DumpOpts::new(a.tree, images_dir()?);
            catch_interrupts(&opts.cancel);
            opts.leave_running = a.leave_running;
            opts.shell_job = a.shell_job;
            opts.ext_unix_sk = a.ext_unix_sk;
            opts.plugin_dir = plugin_dir(&cli.global);
            if let Some(l) = a.ghost_limit {
                opts.ghost_limit = l;
            }
            opts.ghost_fiemap = a.ghost_fiemap && !a.no_ghost_fiemap;
            opts.file_locks = a.file_locks;
            opts.link_remap = a.link_remap;
            if let Some(t) = timeout {
                opts.freeze_timeout = t;
            }
            let stats = rcr_engine::dump::dump(&opts)?;
            tracing::info!("{stats}");
            log_peak_memory();
            Ok(0)
        }
        Cmd::Restore(a) => {
            let mut opts = RestoreOpts::new(images_dir()?);
            opts.detached = a.detached;
            opts.pidfile = a.pidfile;
            opts.shell_job = a.shell_job;
            opts.file_locks = a.file_locks;
            opts.ext_unix_sk = a.ext_unix_sk;
            opts.plugin_dir = plugin_dir(&cli.global);
            if let Some(t) = timeout {
                opts.step_timeout = t;
            }
            let outcome = rcr_engine::restore::restore(&opts)?;
            log_peak_memory();
            Ok(outcome.exit_code.unwrap_or(0))
        }
        Cmd::Check(a) => check(a),
        Cmd::Plugins => list_plugins(plugin_dir(&cli.global)),
        Cmd::Decode(a) => {
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
            Ok(0)
        }
        Cmd::Encode(a) => {
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
            Ok(0)
        }
        Cmd::Show(a) => {
            let dir = match a.dir {
                Some(d) => d,
                None => images_dir()?,
            };
            print!("{}", rcr_engine::show::summary(&dir)?);
            Ok(0)
        }
    }
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

fn check(a: cli::CheckArgs) -> Result<i32> {
    let reports = match a.feature.as_deref() {
        Some("list") => {
            for name in rcr_engine::check::feature_names() {
                println!("{name}");
            }
            return Ok(0);
        }
        Some(name) => vec![rcr_engine::check::check_feature(name)?],
        None => rcr_engine::check::check_all(),
    };
    let mut missing = 0;
    for r in &reports {
        println!("{:<20} {:<8} {}", r.name, if r.ok { "ok" } else { "MISSING" }, r.detail);
        missing += usize::from(!r.ok);
    }
    if missing == 0 {
        println!("Looks good.");
        Ok(0)
    } else {
        println!("{missing} feature(s) missing: rcr works with reduced function (see above)");
        Ok(if a.feature.is_some() { 1 } else { 0 })
    }
}

/// Logging through `tracing`: criu's levels (-v0..-v4) to stderr, or to `-o FILE` (relative to the images
/// directory). Returns the guard that flushes the file.
fn init_logging(g: &cli::Global, log: &cli::LogArgs) -> Result<Option<std::sync::Arc<std::fs::File>>> {
    use tracing_subscriber::filter::LevelFilter;
    let level = match g.verbosity.unwrap_or(2) {
        0 | 1 => LevelFilter::ERROR,
        2 => LevelFilter::WARN,
        3 => LevelFilter::INFO,
        4 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let builder = tracing_subscriber::fmt().with_max_level(level).with_target(false);
    match &log.log_file {
        None => {
            builder.with_writer(std::io::stderr).init();
            Ok(None)
        }
        Some(name) => {
            let mut path = if name.is_absolute() || g.images_dir.is_none() {
                name.clone()
            } else {
                g.images_dir.as_deref().unwrap_or(Path::new(".")).join(name)
            };
            if log.log_pid {
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
            Ok(Some(file))
        }
    }
}
