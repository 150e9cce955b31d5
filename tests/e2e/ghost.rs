//! Deleted-but-open files (ghosts), /proc files of the restored process, file locks.

use crate::harness::{scenario, Subject, READY_TIMEOUT, RESULT_TIMEOUT};
use std::path::Path;

/// Size of the ghost-file-*.img files and of the whole images directory.
fn image_sizes(dir: &Path) -> (u64, u64) {
    let (mut ghost, mut all) = (0, 0);
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let len = e.metadata().map(|m| m.len()).unwrap_or(0);
        all += len;
        if e.file_name().to_string_lossy().starts_with("ghost-file-") {
            ghost += len;
        }
    }
    (ghost, all)
}

/// A deleted file open twice (offset, O_APPEND, mode): same content, flags, offsets, one inode.
#[test]
fn ghost_open() {
    scenario("ghost", &["open"]);
}

/// A deleted file mapped (shared and private) and open: the mappings and the fd are one inode.
#[test]
fn ghost_mapped() {
    scenario("ghost", &["map"]);
}

/// An 8 MiB deleted file of 1024 data chunks and holes is saved by its data (about 4 MiB) and comes
/// back with the same holes and st_blocks. `extra` are the dump's options.
fn sparse(mode: &str, extra: &[&str]) {
    let mut s = Subject::spawn("ghost", &[mode]);
    s.wait_ready(READY_TIMEOUT);
    let mut args = vec!["--ghost-limit", "5M"];
    args.extend_from_slice(extra);
    let run = s.dump(&args);
    if !crate::harness::selftest() {
        let (ghost, all) = image_sizes(&s.images);
        eprintln!("{mode} {extra:?}: ghost image {ghost} bytes, images dir {all} bytes");
        let data = 4u64 << 20;
        assert!(ghost >= data && ghost < data + 64 * 1024, "ghost image is {ghost} bytes, expected about 4 MiB of data plus 1024 chunk headers\n{}", run.describe());
        assert!(all < data + (2 << 20), "images dir is {all} bytes, expected about 4 MiB");
        if extra.contains(&"--ghost-fiemap") {
            // 1024 extents, 64 per FIEMAP call: many rounds.
            let m = run.messages();
            let calls = m
                .split("FIEMAP found 1024 data extents in ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse::<u32>().ok());
            assert!(calls.is_some_and(|c| c >= 16), "FIEMAP was not used, or not in rounds of 64 extents ({calls:?}):\n{m}");
        }
    }
    s.restore(&[]);
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
}

#[test]
fn ghost_sparse() {
    sparse("sparse", &[]);
}

#[test]
fn ghost_punched_holes() {
    sparse("punch", &[]);
}

#[test]
fn ghost_sparse_fiemap() {
    sparse("sparse", &["--ghost-fiemap"]);
}

#[test]
fn ghost_punched_holes_fiemap() {
    sparse("punch", &["--no-ghost-fiemap", "--ghost-fiemap"]);
}

/// A ghost larger than --ghost-limit fails the dump with the file, its size and the option named,
/// and the process goes on; with the limit raised the dump works.
#[test]
fn ghost_limit_too_small() {
    let mut s = Subject::spawn("ghost", &["open"]);
    s.wait_ready(READY_TIMEOUT);
    if !crate::harness::selftest() {
        let run = s.try_dump(&["--ghost-limit", "4K"]);
        assert!(!run.ok(), "dump with a 4K ghost limit succeeded on a 10000-byte ghost\n{}", run.describe());
        let m = run.messages();
        let path = format!("ghost-{}-a.dat", s.pid());
        assert!(m.contains(&path) && m.contains("10000") && m.contains("--ghost-limit"), "the error does not name the file, its size and --ghost-limit:\n{m}");
        s.assert_running_untraced(std::time::Duration::from_secs(5));
    }
    s.dump(&["--ghost-limit", "10K"]);
    s.restore(&[]);
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
}

/// A process running a deleted executable: the executable and its mappings come back as a ghost.
#[test]
fn ghost_executable() {
    scenario("ghost", &["exe"]);
}

/// A deleted file whose path another file took is restored as the deleted one; the new file stays.
#[test]
fn ghost_replaced_path() {
    scenario("ghost", &["replaced"]);
}

/// /proc/self/status and /proc/self/stat open at dump show the restored process's own live data.
#[test]
fn proc_self_files() {
    scenario("ghost", &["proc"]);
}

/// flock, POSIX and OFD locks: refused without --file-locks (naming pid, fd, path and the option),
/// held again after restore with it.
#[test]
fn file_locks() {
    let mut s = Subject::spawn("ghost", &["locks"]);
    s.wait_ready(READY_TIMEOUT);
    if !crate::harness::selftest() {
        let run = s.try_dump(&[]);
        assert!(!run.ok(), "dump without --file-locks succeeded on a process holding locks\n{}", run.describe());
        let m = run.messages();
        assert!(
            m.contains(&format!("pid {}", s.pid())) && m.contains("--file-locks") && m.contains(&format!("ghost-{}-", s.pid())) && m.contains("fd "),
            "the error does not name the pid, fd, file and --file-locks:\n{m}"
        );
        s.assert_running_untraced(std::time::Duration::from_secs(5));
    }
    s.dump(&["--file-locks"]);
    s.restore(&["--file-locks"]);
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
}

/// Locks of an fd table shared with a CLONE_FILES child are held again (the restore sets the table up
/// in the child, the dump saw the locks in the parent).
#[test]
fn file_locks_shared_fd_table() {
    let mut s = Subject::spawn("ghost", &["locks_shared"]);
    s.wait_ready(READY_TIMEOUT);
    s.dump(&["--file-locks"]);
    s.restore(&[]);
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
}

/// A file open whose name was unlinked while another hard link remains: refused without --link-remap
/// (naming the file and the option, the process keeps running); with it, restored as that same inode.
#[test]
fn unlinked_but_linked_elsewhere() {
    let mut s = Subject::spawn("ghost", &["linked"]);
    s.wait_ready(READY_TIMEOUT);
    if !crate::harness::selftest() {
        let run = s.try_dump(&[]);
        assert!(!run.ok(), "dump succeeded on a deleted file with another link\n{}", run.describe());
        let m = run.messages();
        assert!(m.contains(&format!("ghost-{}-a.dat", s.pid())) && m.contains("--link-remap"), "unclear error:\n{m}");
        s.assert_running_untraced(std::time::Duration::from_secs(5));
    }
    s.dump(&["--link-remap"]);
    s.restore(&[]);
    let left: Vec<String> = std::fs::read_dir(s.path()).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("link_remap.")).collect();
    assert!(left.is_empty(), "restore left the dump's links behind: {left:?}");
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
}

/// A regular file whose path became a directory before the restore: the restore refuses it.
#[test]
fn restore_refuses_a_file_of_another_kind() {
    if crate::harness::selftest() {
        return;
    }
    let mut s = Subject::spawn("ghost", &["plain"]);
    s.wait_ready(READY_TIMEOUT);
    let path = s.path().join(format!("ghost-{}-a.dat", s.pid()));
    s.dump(&[]);
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    let run = s.try_restore(&[]);
    assert!(!run.ok(), "restore succeeded with a directory in place of the open file\n{}", run.describe());
    let m = run.messages();
    assert!(m.contains(path.to_str().unwrap()) && m.contains("is a directory now"), "unclear error:\n{m}");
}

/// A file whose path names another file at dump time (here a bind mount hides it): the dump refuses
/// it, naming both inodes, instead of checkpointing a path that would reopen the wrong file.
#[test]
fn path_naming_another_file_is_refused() {
    if crate::harness::selftest() {
        return;
    }
    let sub = crate::harness::TestDir::new("ghost-sub");
    let over = crate::harness::TestDir::new("ghost-over");
    let mut s = Subject::spawn("ghost", &["plain", sub.path.to_str().unwrap()]);
    s.wait_ready(READY_TIMEOUT);
    let name = format!("ghost-{}-a.dat", s.pid());
    std::fs::write(over.path.join(&name), b"another file").unwrap();
    let c = |p: &Path| std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    let (src, dst) = (c(&over.path), c(&sub.path));
    // SAFETY: valid C strings; a bind mount of our own temp dir over another of ours.
    if unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()) } != 0 {
        eprintln!("skipped: cannot bind-mount here: {}", std::io::Error::last_os_error());
        return;
    }
    let run = s.try_dump(&[]);
    // SAFETY: as above.
    unsafe { libc::umount2(dst.as_ptr(), libc::MNT_DETACH) };
    assert!(!run.ok(), "dump succeeded though the open file's path names another file\n{}", run.describe());
    let m = run.messages();
    assert!(m.contains(&name) && m.contains("names another regular file"), "unclear error:\n{m}");
    s.assert_running_untraced(std::time::Duration::from_secs(5));
    s.finish().unwrap();
}

/// A restore of a --link-remap checkpoint that fails (its pid is taken) keeps the dump's link, says
/// so, and the next restore, once the pid is free, uses and removes it.
#[test]
fn failed_restore_keeps_link_remap_for_a_retry() {
    if crate::harness::selftest() {
        return;
    }
    let mut s = Subject::spawn("ghost", &["linked"]);
    s.wait_ready(READY_TIMEOUT);
    s.dump(&["--link-remap"]);
    let dir = s.path().to_path_buf();
    let links = || -> Vec<String> {
        std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("link_remap.")).collect()
    };
    assert_eq!(links().len(), 1, "the dump made no link");
    // The restore needs the ghost program's pid; a holder takes it.
    let pid = s.pid();
    let h = crate::tree::Holder::start(pid, s.path());
    let run = s.try_restore(&[]);
    drop(h);
    assert!(!run.ok(), "restore over a taken pid succeeded\n{}", run.describe());
    assert_eq!(links().len(), 1, "the failed restore removed the dump's link: a retry cannot work\n{}", run.describe());
    let m = run.messages();
    assert!(m.contains("link_remap.") && m.contains("tried again"), "the failed restore does not say the link is kept:\n{m}");
    crate::harness::wait_until(std::time::Duration::from_secs(10), "the holder's pid to be free", || crate::harness::procfs::stat(pid).is_none()).unwrap();
    s.restore(&[]);
    assert!(links().is_empty(), "the restore left the dump's link behind: {:?}", links());
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
}
