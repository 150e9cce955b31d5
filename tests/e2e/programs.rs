//! Real programs nobody here wrote, checkpointed and restored, then checked from outside through
//! their own protocols. Each skips (printing SKIPPED) when the program is not installed.

use crate::harness::{procfs, wait_until, Spawn, Subject};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn installed(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

/// One request on a unix socket; the whole answer.
fn ask(sock: &Path, req: &[u8]) -> String {
    let mut c = UnixStream::connect(sock).unwrap_or_else(|e| panic!("connect {}: {e}", sock.display()));
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(req).unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn wait_socket(s: &Subject, sock: &Path) {
    if let Err(e) = wait_until(Duration::from_secs(20), "the program's socket", || UnixStream::connect(sock).is_ok()) {
        panic!("{e}: {}\n{}", sock.display(), s.log_text());
    }
}

fn uid_of(pid: i32) -> Option<String> {
    procfs::status_field(pid, "Uid")
}

/// nginx (master as root, two workers as nobody, serving on a unix socket): after restore the workers
/// are still nobody's, the server answers, and a reload (SIGHUP) starts new workers.
#[test]
fn nginx_workers_as_nobody() {
    let Some(nginx) = installed(&["/usr/sbin/nginx"]) else {
        println!("SKIPPED: nginx is not installed");
        return;
    };
    let dir = crate::harness::TestDir::new("nginx");
    let d = dir.path.display();
    let conf = dir.path.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "worker_processes 2;\nuser nobody nogroup;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\ndaemon off;\n\
             events {{ worker_connections 64; }}\nhttp {{ access_log {d}/access.log; client_body_temp_path {d}/b; \
             proxy_temp_path {d}/p; fastcgi_temp_path {d}/f; uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;\n\
             server {{ listen unix:{d}/ng.sock; location / {{ return 200 \"hello from nginx\\n\"; }} }} }}\n"
        ),
    )
    .unwrap();
    let sock = dir.path.join("ng.sock");
    let mut s = Spawn::command(vec![nginx.to_string_lossy().into_owned(), "-c".into(), conf.to_string_lossy().into_owned()]).start();
    wait_socket(&s, &sock);
    let req = b"GET / HTTP/1.0\r\n\r\n";
    assert!(ask(&sock, req).contains("hello from nginx"));
    // Both workers started and switched to nobody (they do so right after the fork).
    let nobody = |w: &i32| uid_of(*w).is_some_and(|u| u.starts_with("65534"));
    let r = wait_until(Duration::from_secs(20), "two nginx workers running as nobody", || {
        let w = procfs::children(s.pid());
        w.len() == 2 && w.iter().all(nobody)
    });
    assert!(r.is_ok(), "{r:?}: children {:?}", procfs::children(s.pid()));
    let workers = procfs::children(s.pid());
    let uids: Vec<_> = workers.iter().map(|&w| uid_of(w)).collect();
    s.checkpoint();
    if crate::harness::selftest() {
        return;
    }
    let after: Vec<_> = workers.iter().map(|&w| uid_of(w)).collect();
    assert_eq!(uids, after, "the workers' uids changed");
    assert!(uids.iter().all(|u| u.as_deref().is_some_and(|u| u.starts_with("65534"))), "workers not nobody's: {uids:?}");
    for _ in 0..3 {
        let a = ask(&sock, req);
        assert!(a.contains("200 OK") && a.contains("hello from nginx"), "restored nginx answered: {a}");
    }
    s.signal(libc::SIGHUP);
    let r = wait_until(Duration::from_secs(20), "nginx to replace its workers after SIGHUP", || {
        let now = procfs::children(s.pid());
        now.len() == 2 && now.iter().all(|w| !workers.contains(w))
    });
    assert!(r.is_ok(), "{r:?}: children now {:?}\n{}", procfs::children(s.pid()), std::fs::read_to_string(dir.path.join("error.log")).unwrap_or_default());
    assert!(ask(&sock, req).contains("hello from nginx"));
}

/// redis (its background threads, on a unix socket only): keys set before the dump are there after
/// the restore, and it takes new ones.
#[test]
fn redis_keeps_its_keys() {
    let Some(redis) = installed(&["/usr/bin/redis-server"]) else {
        println!("SKIPPED: redis-server is not installed");
        return;
    };
    let dir = crate::harness::TestDir::new("redis");
    let sock = dir.path.join("redis.sock");
    let argv: Vec<String> = [redis.to_string_lossy().as_ref(), "--port", "0", "--unixsocket", &sock.to_string_lossy(), "--save", "", "--appendonly", "no", "--dir", &dir.path.to_string_lossy()]
        .iter()
        .map(|a| a.to_string())
        .collect();
    let mut s = Spawn::command(argv).start();
    wait_socket(&s, &sock);
    let cmd = |args: &[&str]| -> String {
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        let mut c = UnixStream::connect(&sock).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(req.as_bytes()).unwrap();
        let mut buf = [0u8; 4096];
        let n = c.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    for i in 0..100 {
        assert_eq!(cmd(&["SET", &format!("key{i}"), &format!("value-{i}")]), "+OK\r\n");
    }
    s.checkpoint();
    if crate::harness::selftest() {
        return;
    }
    for i in [0, 42, 99] {
        let v = format!("value-{i}");
        assert_eq!(cmd(&["GET", &format!("key{i}")]), format!("${}\r\n{v}\r\n", v.len()));
    }
    assert_eq!(cmd(&["DBSIZE"]), ":100\r\n");
    assert_eq!(cmd(&["SET", "after", "restore"]), "+OK\r\n");
    assert_eq!(cmd(&["GET", "after"]), "$7\r\nrestore\r\n");
}
