//! criu's command line, as scripts and harnesses write it: config files whose options apply to every
//! command, -W, --log-pid, --display-stats and stats-dump.img as crit reads it, `check --all`, and
//! refusals that name each option and touch nothing.

use crate::harness::rcr::{self, RcrRun};
use crate::harness::*;
use std::path::Path;
use std::time::{Duration, Instant};

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn rcr_line(args: &[&str], dir: &TestDir) -> RcrRun {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    rcr::run(&args, &dir.path, vec![], Duration::from_secs(60))
}

/// The files in `dir` whose names start with `prefix`.
fn files_named(dir: &Path, prefix: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir).map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix))).collect()).unwrap_or_default()
}

/// A config file's `leave-running` applies to dump and is ignored by restore (as criu does); -W takes
/// the log (with --log-pid, `dump.log.PID`); --display-stats prints criu's lines, and the stats image
/// says the same to crit.
#[test]
fn config_options_apply_to_every_command() {
    let mut sub = Subject::spawn("counter", &[]);
    sub.wait_ready(READY_TIMEOUT);
    let dir = TestDir::new("cli-config");
    let work = dir.path.join("work");
    std::fs::create_dir(&work).unwrap();
    let cfg = dir.path.join("rcr.conf");
    std::fs::write(&cfg, "# written as for criu\nleave-running\nverbosity 4\nlog-pid   # one log per run\n").unwrap();
    let (cfg_s, work_s) = (s(&cfg), s(&work));
    if selftest() {
        return;
    }
    let dump = sub.try_dump(&["--config", &cfg_s, "-W", &work_s, "--display-stats"]);
    assert!(dump.ok(), "{}", dump.describe());
    sub.assert_running_untraced(Duration::from_secs(5));
    let logs = files_named(&work, "dump.log.");
    assert_eq!(logs.len(), 1, "no dump.log.PID in the work dir {}: {logs:?}", work.display());
    assert!(std::fs::read_to_string(&logs[0]).unwrap().contains("dumped pid"), "{}", logs[0].display());
    let frozen_line = dump.stdout.lines().find_map(|l| l.strip_prefix("Frozen time: ")).unwrap_or_else(|| panic!("no stats printed\n{}", dump.describe()));
    let frozen_us: u64 = frozen_line.trim_end_matches(" us").parse().unwrap();
    assert!(frozen_us > 0 && dump.stdout.contains("Memory pages written: "), "{}", dump.stdout);
    if let Some(json) = crit_decode(&sub.images.join("stats-dump")) {
        assert!(json.contains(&format!("\"frozen_time\": {frozen_us}")), "crit reads another frozen time than --display-stats printed: {json}");
    }

    sub.kill();
    let restore = sub.restore(&["--config", &cfg_s, "-W", &work_s]);
    assert!(restore.ok());
    assert_eq!(files_named(&work, "restore.log.").len(), 1, "no restore.log.PID in {}", work.display());
    let n = sub.output().lines().count();
    wait_until(Duration::from_secs(10), "the restored counter to advance", || sub.output().lines().count() >= n + 3).unwrap();
    sub.finish().unwrap();
}

/// crit's JSON of an image, or None without crit (outside CI).
fn crit_decode(img: &Path) -> Option<String> {
    let crit = std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join("crit")).find(|c| c.is_file()));
    let Some(crit) = crit else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "crit is not installed but CI=true");
        eprintln!("NOTICE: no crit; skipping its decode of {}", img.display());
        return None;
    };
    let mut child = std::process::Command::new(crit).args(["decode", "-i"]).arg(img).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("crit decode {} timed out", img.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "crit decode {} failed", img.display());
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A bad config line is an error naming the file and the line; nothing runs.
#[test]
fn config_errors_name_the_file_and_line() {
    let dir = TestDir::new("cli-config-bad");
    for (text, line, what) in [("verbosity 4\nlog-file a b\n", 2, "more than one value"), ("frobnicate-x\n", 1, "frobnicate-x"), ("lsm-profile \"open\n", 1, "closing quote")] {
        let cfg = dir.path.join("bad.conf");
        std::fs::write(&cfg, text).unwrap();
        let run = rcr_line(&["check", "--config", &s(&cfg)], &dir);
        assert!(!run.ok() && !run.stdout.contains("Looks good"), "{}", run.describe());
        let want = format!("config file {} line {line}", cfg.display());
        assert!(run.stderr.contains(&want) && run.stderr.contains(what), "wanted {want:?} and {what:?}\n{}", run.describe());
    }
}

/// LXC's dump line: each option rcr cannot do yet is named in one error, the process is not touched.
#[test]
fn unsupported_options_are_named_and_nothing_is_touched() {
    let mut sub = Subject::spawn("counter", &[]);
    sub.wait_ready(READY_TIMEOUT);
    let run = sub.try_dump(&["--tcp-established", "--file-locks", "--link-remap", "--manage-cgroups=full", "--ext-mount-map", "auto", "--enable-fs", "hugetlbfs", "-vvvvvv"]);
    assert!(!run.ok(), "{}", run.describe());
    for o in ["--tcp-established", "--manage-cgroups", "--ext-mount-map", "--enable-fs"] {
        assert!(run.stderr.contains(o), "{o} not named\n{}", run.describe());
    }
    assert!(!run.stderr.contains("unexpected argument"), "{}", run.describe());
    sub.assert_running_untraced(Duration::from_secs(5));
    let n = sub.output().lines().count();
    wait_until(Duration::from_secs(10), "the counter to advance", || sub.output().lines().count() >= n + 2).unwrap();
    sub.finish().unwrap();
}

/// `check` checks what dump and restore need; `--all` (criu's: also --extra and --experimental) adds
/// the optional features.
#[test]
fn check_and_check_all() {
    let dir = TestDir::new("cli-check");
    let basic = rcr_line(&["check"], &dir);
    assert!(basic.ok() && basic.stdout.contains("Looks good."), "{}", basic.describe());
    let all = rcr_line(&["--all", "check"], &dir);
    let count = |r: &RcrRun| r.stdout.lines().filter(|l| l.contains(" ok ") || l.contains(" MISSING ")).count();
    assert!(count(&all) > count(&basic) && all.stdout.contains("pagemap_scan"), "--all checks no more than check\n{}\n{}", basic.stdout, all.stdout);
    assert!(!basic.stdout.contains("pagemap_scan"), "{}", basic.stdout);
}

/// `rcr show` and `rcr decode` on a damaged checkpoint: a non-zero exit naming the file and what is
/// wrong, never a summary with holes.
#[test]
fn show_and_decode_refuse_a_damaged_checkpoint() {
    let mut sub = Subject::spawn("counter", &[]);
    sub.wait_ready(READY_TIMEOUT);
    sub.dump(&[]);
    if selftest() {
        return;
    }
    let dir = TestDir::new("cli-damaged");
    let images = s(&sub.images);
    let good = rcr_line(&["show", &images], &dir);
    assert!(good.ok() && good.stdout.contains("counter"), "{}", good.describe());
    let core = sub.images.join(format!("core-{}.img", sub.pid()));
    let bytes = std::fs::read(&core).unwrap();
    std::fs::write(&core, &bytes[..bytes.len() / 2]).unwrap();
    for args in [vec!["show", images.as_str()], vec!["-D", images.as_str(), "show"], vec!["decode", "-i", images.as_str()]] {
        let run = rcr_line(&args, &dir);
        assert!(!run.ok(), "{args:?} succeeded on a truncated {}\n{}", core.display(), run.describe());
        assert!(run.stderr.contains(&format!("core-{}.img", sub.pid())) && (run.stderr.contains("truncated") || run.stderr.contains("corrupt")), "{args:?}: the error does not name the file and the damage\n{}", run.describe());
    }
    std::fs::remove_file(&core).unwrap();
    let run = rcr_line(&["show", &images], &dir);
    assert!(!run.ok() && run.stderr.contains(&format!("core-{}.img", sub.pid())), "{}", run.describe());
}

/// An action script that records each call (action, CRTOOLS_INIT_PID, CRTOOLS_IMAGE_DIR) and fails at
/// `fail_at`.
fn action_script(dir: &Path, fail_at: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let log = dir.join("actions.log");
    let script = dir.join("action.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$CRTOOLS_SCRIPT_ACTION ${{CRTOOLS_INIT_PID:-none}} $CRTOOLS_IMAGE_DIR\" >> {}\n[ \"$CRTOOLS_SCRIPT_ACTION\" != \"{fail_at}\" ]\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (script, log)
}

fn actions(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log).unwrap_or_default().lines().map(String::from).collect()
}

/// criu's action points in criu's order, with its environment; `--status-fd` gets one zero byte once
/// the restored tree runs.
#[test]
fn action_scripts_and_status_fd() {
    let mut sub = Subject::spawn("counter", &[]);
    sub.wait_ready(READY_TIMEOUT);
    let dir = TestDir::new("cli-actions");
    let (script, log) = action_script(&dir.path, "never");
    if selftest() {
        return;
    }
    let (pid, images) = (sub.pid(), s(&sub.images));
    sub.dump(&["--action-script", &s(&script)]);
    assert_eq!(actions(&log), [format!("pre-dump {pid} {images}"), format!("post-dump {pid} {images}")]);
    std::fs::remove_file(&log).unwrap();
    let status = dir.path.join("status");
    let via = ["bash", "-c", "exec 7>>\"$0\"; exec \"$@\"", status.to_str().unwrap()];
    let run = sub.try_restore_via(&via, &["--action-script", &s(&script), "--status-fd", "7", "--display-stats"]);
    sub.adopt_restored(&run);
    let want: Vec<String> = ["pre-restore none", &format!("setup-namespaces {pid}"), &format!("post-setup-namespaces {pid}"), &format!("post-restore {pid}"), &format!("pre-resume {pid}"), &format!("post-resume {pid}")]
        .iter()
        .map(|a| format!("{a} {images}"))
        .collect();
    assert_eq!(actions(&log), want);
    assert_eq!(std::fs::read(&status).unwrap(), [0u8], "--status-fd 7 did not get one zero byte");
    assert!(run.stdout.contains("Displaying restore stats:") && run.stdout.contains("Restore time: "), "{}", run.describe());
    if let Some(json) = crit_decode(&sub.images.join("stats-restore")) {
        assert!(json.contains("restore_time") && json.contains("forking_time"), "{json}");
    }
    sub.finish().unwrap();
}

/// A failing pre-dump script stops the dump with nothing touched; a failing post-dump one leaves the
/// tree running (criu's rule: the caller decides); a failing post-restore one leaves nothing restored.
#[test]
fn failing_action_scripts() {
    let mut sub = Subject::spawn("counter", &[]);
    sub.wait_ready(READY_TIMEOUT);
    let dir = TestDir::new("cli-actions-fail");
    if selftest() {
        return;
    }
    for at in ["pre-dump", "post-dump"] {
        let (script, log) = action_script(&dir.path, at);
        let run = sub.try_dump(&["--action-script", &s(&script)]);
        assert!(!run.ok() && run.messages().contains(&format!("{at} action failed")), "{}", run.describe());
        sub.assert_running_untraced(Duration::from_secs(5));
        assert_eq!(actions(&log).len(), if at == "pre-dump" { 1 } else { 2 });
        std::fs::remove_file(&log).unwrap();
    }
    let n = sub.output().lines().count();
    wait_until(Duration::from_secs(10), "the counter to advance", || sub.output().lines().count() >= n + 2).unwrap();
    sub.dump(&[]);
    let (script, _log) = action_script(&dir.path, "post-restore");
    let run = sub.try_restore(&["--action-script", &s(&script)]);
    assert!(!run.ok() && run.messages().contains("post-restore action failed"), "{}", run.describe());
    let pid = sub.pid();
    wait_until(Duration::from_secs(10), "the half-restored task to be gone", || procfs::stat(pid).is_none_or(|st| st.dead())).unwrap();
    sub.restore(&[]);
    sub.finish().unwrap();
}

/// What CRIU 4.2's restore checks in rcr's images (crossed by hand with CRIU 4.2 built from source:
/// without these it refused them), as crit decodes them: root_ids are not the root task's own
/// (CRIU: "Image corruption on kIDs data"), one vvar area ([vvar] and [vvar_vclock] merged, as CRIU's
/// dump does), and the vDSO's pages in the image (CRIU's restore parses them: "Invalid ELF magic").
#[test]
fn images_as_criu_4_2_restores_them() {
    let mut sub = Subject::spawn("counter", &[]);
    sub.wait_ready(READY_TIMEOUT);
    sub.dump(&[]);
    if selftest() {
        return;
    }
    let pid = sub.pid();
    let decode = |name: &str| -> Option<serde_json::Value> { crit_decode(&sub.images.join(name)).map(|t| serde_json::from_str(&t).unwrap()) };
    let (Some(inv), Some(ids), Some(mm), Some(pagemap)) = (decode("inventory.img"), decode(&format!("ids-{pid}.img")), decode(&format!("mm-{pid}.img")), decode(&format!("pagemap-{pid}.img"))) else { return };
    let root = &inv["entries"][0]["root_ids"];
    let own = &ids["entries"][0];
    for k in ["vm_id", "files_id", "fs_id", "sighand_id"] {
        assert_ne!(root[k], own[k], "inventory root_ids.{k} is the root task's own: {root} vs {own}");
    }
    let vmas = mm["entries"][0]["vmas"].as_array().unwrap();
    let status = |v: &serde_json::Value| v["status"].as_u64().unwrap_or(0);
    let (vvar, vdso) = (1u64 << 12, 1u64 << 3);
    assert_eq!(vmas.iter().filter(|v| status(v) & vvar != 0).count(), 1, "not one vvar area: {vmas:?}");
    let vdso = vmas.iter().find(|v| status(v) & vdso != 0).expect("no vdso area");
    let start = vdso["start"].as_u64().unwrap();
    let pages: u64 = pagemap["entries"].as_array().unwrap()[1..].iter().filter(|e| e["vaddr"].as_u64() == Some(start)).map(|e| e["nr_pages"].as_u64().unwrap_or(0)).sum();
    assert_eq!(pages * 4096, vdso["end"].as_u64().unwrap() - start, "the vDSO's pages are not in the image");
    sub.restore(&[]);
    sub.finish().unwrap();
}

/// `-s/--leave-stopped`: after the dump the tree is stopped, not killed, and goes on when continued;
/// after a restore the restored tree is stopped until continued.
#[test]
fn leave_stopped() {
    let mut sub = Subject::spawn("counter", &[]);
    sub.wait_ready(READY_TIMEOUT);
    if selftest() {
        return;
    }
    let pid = sub.pid();
    let stopped = || wait_until(Duration::from_secs(5), "the tree to be stopped", || procfs::stat(pid).is_some_and(|st| st.stopped()));
    let run = sub.try_dump(&["--leave-stopped"]);
    assert!(run.ok(), "{}", run.describe());
    stopped().unwrap();
    let n = sub.output().lines().count();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sub.output().lines().count(), n, "the counter ran while left stopped");
    sub.signal(libc::SIGCONT);
    wait_until(Duration::from_secs(10), "the counter to go on after SIGCONT", || sub.output().lines().count() >= n + 2).unwrap();
    sub.kill();
    let run = sub.try_restore(&["-s"]);
    sub.adopt_restored(&run);
    stopped().unwrap();
    sub.signal(libc::SIGCONT);
    let n = sub.output().lines().count();
    wait_until(Duration::from_secs(10), "the restored counter to go on after SIGCONT", || sub.output().lines().count() >= n + 2).unwrap();
    sub.finish().unwrap();
}
