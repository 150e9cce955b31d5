//! CRIU 4.2's RPC, the front end runtimes use (runc and podman start `criu swrk FD`, libcriu also
//! connects to `criu service`'s socket): one `criu_req` per packet, answered by one `criu_resp`, with
//! NOTIFY round trips during a dump or restore when the client asks for notifications. Like the CLI,
//! this front end only turns requests into the engine's options and its results into responses.
//!
//! A session serves requests until one comes without `keep_open` (criu's rule; rcr also keeps a
//! session open after a dump or restore, which criu refuses), or until the client closes. Every
//! request gets an answer: an undecodable one, an unknown field, an option rcr cannot act on, an
//! unsupported request type are a response with `success = false` and `cr_errmsg` saying why, and
//! nothing is dumped or started.

mod notify;
mod opts;
mod sock;

use crate::criu_options::Cmds;
use prost::Message;
use rcr_images::rpc::{CriuDumpResp, CriuFeatures, CriuOpts, CriuReq, CriuReqType, CriuResp, CriuRestoreResp, CriuVersion};
use sock::{Conn, Listener, Packet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The criu release rcr answers VERSION with (runc and podman refuse an old criu): [`crate::CRIU_VERSION`].
const CRIU_MAJOR: i32 = 4;
const CRIU_MINOR: i32 = 2;

/// Feature-check answers for what rcr has not implemented yet: PAGEMAP_SCAN-based dirty-memory
/// tracking (mem_track, for pre-dumps), lazy pages, and the client's pidfd store socket
/// (`pidfd_store_sk`, refused in options until then). Each is `rcr is able to && the kernel can`.
const HAS_MEM_TRACK: bool = false;
const HAS_LAZY_PAGES: bool = false;
const HAS_PIDFD_STORE: bool = false;

/// What every session of this rcr process shares.
pub struct Server {
    /// Plugins to load for dumps and restores (`-L`, `RCR_LIBS_DIR`).
    pub plugin_dir: Option<PathBuf>,
}

/// `rcr swrk FD`: one session on the inherited socket. Exit status 0 when every request succeeded.
pub fn swrk(fd: i32, server: &Server) -> Result<i32, String> {
    let conn = Conn::inherited(fd).map_err(|e| format!("rcr swrk {fd}: {e}"))?;
    Ok(if serve(Arc::new(conn), server) { 0 } else { 1 })
}

/// `rcr service`: listens on `address` and serves its clients one session after the other, until
/// killed. `ready` is told once it listens (`--status-fd`), `pidfile` gets rcr's pid.
pub fn service(address: &Path, server: &Server, pidfile: Option<&Path>, ready: Option<crate::actions::StatusFd>) -> Result<i32, String> {
    let listener = Listener::bind(address)?;
    tracing::info!("the service socket is bound to {}", address.display());
    if let Some(p) = pidfile {
        std::fs::write(p, format!("{}\n", std::process::id())).map_err(|e| format!("cannot write the pidfile {}: {e}", p.display()))?;
    }
    if let Some(r) = ready {
        r.ready()?;
    }
    loop {
        reap_exited();
        if let Some(conn) = listener.accept(1000)? {
            tracing::info!("client connected");
            serve(Arc::new(conn), server);
        }
    }
}

/// Reaps the restored trees' roots that have exited (a restore leaves them children of the service).
fn reap_exited() {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    while let Ok(s) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if s == WaitStatus::StillAlive {
            break;
        }
        tracing::info!("child {s:?}");
    }
}

/// One session; true if every request in it succeeded.
fn serve(conn: Arc<Conn>, server: &Server) -> bool {
    let client = match conn.peer_pid() {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("{e}");
            return false;
        }
    };
    let mut all_ok = true;
    loop {
        let (resp, keep_open) = match conn.recv() {
            Err(e) => {
                tracing::error!("client {client}: {e}");
                return false;
            }
            Ok(Packet::Closed) => return all_ok,
            Ok(Packet::TooLarge(n)) => (failure(CriuReqType::Empty, None, format!("a request of {n} bytes: rcr takes at most {} (a criu_req is far smaller)", sock::MAX_PACKET)), false),
            Ok(Packet::Data(bytes)) => match rcr_images::rpc::decode_request(&bytes) {
                Err(e) => (failure(CriuReqType::Empty, None, format!("{e}; nothing was done")), false),
                Ok(req) => (handle(&req, &conn, client, server), req.keep_open == Some(true)),
            },
        };
        if !resp.success {
            tracing::error!("client {client}: {:?} failed: {}", resp.r#type(), resp.cr_errmsg.as_deref().unwrap_or(""));
        }
        all_ok &= resp.success;
        if let Err(e) = conn.send(&resp.encode_to_vec()) {
            tracing::error!("client {client}: {e}");
            return false;
        }
        if !keep_open {
            return all_ok;
        }
    }
}

/// A failed request's response.
fn failure(t: CriuReqType, errno: Option<i32>, msg: String) -> CriuResp {
    CriuResp { r#type: t as i32, success: false, cr_errno: errno, cr_errmsg: Some(msg), ..Default::default() }
}

fn success(t: CriuReqType) -> CriuResp {
    CriuResp { r#type: t as i32, success: true, ..Default::default() }
}

/// Why a request failed: refused before anything ran (criu's EBADRQC), or failed while running.
enum Fail {
    Refused(String),
    Failed(String),
}

impl From<String> for Fail {
    fn from(s: String) -> Fail {
        Fail::Refused(s)
    }
}

fn handle(req: &CriuReq, conn: &Arc<Conn>, client: i32, server: &Server) -> CriuResp {
    let Ok(t) = CriuReqType::try_from(req.r#type) else {
        return failure(CriuReqType::Empty, Some(libc::EBADRQC), format!("unknown request type {} (CRIU 4.2 has 0 to 13)", req.r#type));
    };
    let unsupported = |what: &str| failure(t, Some(libc::EOPNOTSUPP), format!("{what} is not supported by rcr yet; nothing was done"));
    let (mut r, result) = match t {
        CriuReqType::Version => {
            let mut r = success(t);
            r.version = Some(CriuVersion { major_number: CRIU_MAJOR, minor_number: CRIU_MINOR, ..Default::default() });
            return r;
        }
        CriuReqType::FeatureCheck => return feature_check(req),
        CriuReqType::Check => check(req, client),
        CriuReqType::Dump => dump(req, conn, client, server),
        CriuReqType::Restore => restore(req, conn, client, server),
        CriuReqType::PreDump => return unsupported("PRE_DUMP (iterative memory pre-copy)"),
        CriuReqType::SinglePreDump => return unsupported("SINGLE_PRE_DUMP (memory pre-copy)"),
        CriuReqType::PageServer | CriuReqType::PageServerChld => return unsupported("the page server (PAGE_SERVER, PAGE_SERVER_CHLD)"),
        CriuReqType::CpuinfoDump | CriuReqType::CpuinfoCheck => return unsupported("CPUINFO_DUMP/CPUINFO_CHECK (cpuinfo images)"),
        CriuReqType::WaitPid => return unsupported("WAIT_PID (waiting for a page server rcr started)"),
        CriuReqType::Empty => return failure(t, Some(libc::EBADRQC), "an EMPTY request (type 0, or no type) asks for nothing".into()),
        CriuReqType::Notify => return failure(t, Some(libc::EBADRQC), "a NOTIFY request answers a notification, and rcr sent none".into()),
    };
    if let Err(fail) = result {
        r.success = false;
        let (errno, msg) = match fail {
            Fail::Refused(m) => (Some(libc::EBADRQC), format!("{m}; nothing was done")),
            Fail::Failed(m) => (None, m),
        };
        r.cr_errno = errno;
        r.cr_errmsg = Some(msg);
    }
    r
}

/// A request's response, and whether it failed.
type Handled = (CriuResp, Result<(), Fail>);

/// Runs a request: opens its directories and its log (criu's: in the work directory, at the request's
/// level), refuses the fields rcr cannot act on, then runs `f` with the options, all inside the log,
/// where a refusal or failure is written too (runc shows its users the log, not `cr_errmsg`).
fn run_logged<T>(req: &CriuReq, cmd: Cmds, word: &str, client: i32, f: impl FnOnce(&CriuOpts, &opts::Dirs) -> Result<T, Fail>) -> Result<T, Fail> {
    let o = req.opts.clone().unwrap_or_default();
    let check = cmd == Cmds::CHECK;
    let dirs = opts::Dirs::open(&o, client, !check)?;
    let log = opts::log(&o, &dirs, check)?;
    let level = crate::level_filter(o.log_level.unwrap_or(2).clamp(0, 255) as u8);
    let fmt = tracing_subscriber::fmt().with_max_level(level).with_target(false);
    let run = || {
        let r = (|| {
            let (refused, ignored) = opts::classify(&o, cmd);
            if !refused.is_empty() {
                return Err(Fail::Refused(format!("rcr {word} does not support the criu_opts field(s) {} yet (criu acts on them on {word})", refused.join(", "))));
            }
            for f in ignored {
                tracing::debug!("criu_opts field {f} has no effect on {word} (criu ignores it there too)");
            }
            f(&o, &dirs)
        })();
        if let Err(Fail::Refused(m) | Fail::Failed(m)) = &r {
            tracing::error!("RPC {word} for client {client}: {m}");
        }
        r
    };
    match log {
        opts::Log::None => run(),
        opts::Log::Stderr => tracing::subscriber::with_default(fmt.with_writer(std::io::stderr).finish(), run),
        opts::Log::File(p) => {
            let file = std::fs::OpenOptions::new().create(true).append(true).open(&p).map_err(|e| format!("cannot open the log file {}: {e}", p.display()))?;
            tracing::subscriber::with_default(fmt.with_ansi(false).with_writer(Arc::new(file)).finish(), run)
        }
    }
}

fn engine_error(e: rcr_engine::Error) -> Fail {
    Fail::Failed(crate::error_text(&anyhow::Error::from(e)))
}

fn images(dirs: &opts::Dirs) -> Result<PathBuf, Fail> {
    dirs.images.clone().ok_or_else(|| Fail::Refused("no images directory".into()))
}

fn dump(req: &CriuReq, conn: &Arc<Conn>, client: i32, server: &Server) -> Handled {
    let mut resp = success(CriuReqType::Dump);
    // criu answers a dump with `restored: false` (true only after a self-dump's restore).
    resp.dump = Some(CriuDumpResp { restored: Some(false) });
    let result = run_logged(req, Cmds::DUMP, "dump", client, |o, dirs| {
        let mut d = opts::dump_opts(o, images(dirs)?)?;
        d.plugin_dir = server.plugin_dir.clone();
        if o.notify_scripts == Some(true) {
            d.notify.add(Arc::new(notify::RpcNotify { conn: conn.clone() }));
        }
        tracing::info!("RPC dump of pid {} for client {client}", d.pid);
        let stats = rcr_engine::dump::dump(&d).map_err(engine_error)?;
        tracing::info!("{stats}");
        if o.display_stats == Some(true) {
            match rcr_engine::show::display_stats(&d.images_dir, false) {
                Ok(s) => tracing::info!("{s}"),
                Err(e) => tracing::warn!("display_stats: {e}"),
            }
        }
        Ok(())
    });
    (resp, result)
}

fn restore(req: &CriuReq, conn: &Arc<Conn>, client: i32, server: &Server) -> Handled {
    let mut resp = success(CriuReqType::Restore);
    let result = run_logged(req, Cmds::RESTORE, "restore", client, |o, dirs| {
        let mut r = opts::restore_opts(o, images(dirs)?, client)?;
        r.plugin_dir = server.plugin_dir.clone();
        if o.notify_scripts == Some(true) {
            r.notify.add(Arc::new(notify::RpcNotify { conn: conn.clone() }));
        }
        tracing::info!("RPC restore for client {client}");
        let outcome = rcr_engine::restore::restore(&r).map_err(engine_error)?;
        tracing::info!("restored; root pid {}", outcome.pid);
        Ok(outcome.pid)
    });
    // criu's pid when nothing was restored: -1.
    resp.restore = Some(CriuRestoreResp { pid: *result.as_ref().unwrap_or(&-1) });
    (resp, result.map(|_| ()))
}

/// CHECK: the features dump and restore need (criu's basic check); the missing ones named.
fn check(req: &CriuReq, client: i32) -> Handled {
    let result = run_logged(req, Cmds::CHECK, "check", client, |_, _| {
        let missing: Vec<String> = rcr_engine::check::check_all(false).into_iter().filter(|r| !r.ok).map(|r| format!("{}: {}", r.name, r.detail)).collect();
        if missing.is_empty() {
            tracing::info!("Looks good.");
            Ok(())
        } else {
            Err(Fail::Failed(format!("the kernel lacks what rcr needs: {}", missing.join("; "))))
        }
    });
    (success(CriuReqType::Check), result)
}

/// FEATURE_CHECK: each feature asked (set to true) answered; the others false, as criu.
fn feature_check(req: &CriuReq) -> CriuResp {
    let Some(asked) = &req.features else {
        return failure(CriuReqType::FeatureCheck, Some(libc::EBADRQC), "FEATURE_CHECK without `features`: set the features to check to true".into());
    };
    let ask = |b: Option<bool>| b == Some(true);
    let kernel = |name: &str| rcr_engine::check::check_feature(name).is_ok_and(|r| r.ok);
    let mut r = success(CriuReqType::FeatureCheck);
    r.features = Some(CriuFeatures {
        mem_track: Some(ask(asked.mem_track) && HAS_MEM_TRACK && kernel("pagemap_scan")),
        lazy_pages: Some(ask(asked.lazy_pages) && HAS_LAZY_PAGES && kernel("uffd-noncoop")),
        pidfd_store: Some(ask(asked.pidfd_store) && HAS_PIDFD_STORE && kernel("pidfd_getfd")),
    });
    r
}

#[cfg(test)]
mod tests;
