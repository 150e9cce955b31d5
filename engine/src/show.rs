//! `rcr show`: a human summary of a checkpoint — the process tree, each process's memory and open
//! files, and the plugins the dump needs.

use crate::image::pagemap::Pagemap;
use crate::image::{pb, ImageDir, ImageName};
use crate::{Error, Result};
use std::fmt::Write;
use std::path::Path;

/// The statistics of the dump (stats-dump) or the restore (stats-restore) in `dir`, as criu's
/// `--display-stats` prints them.
pub fn display_stats(dir: &Path, restore: bool) -> Result<String> {
    let name = if restore { ImageName::StatsRestore } else { ImageName::Stats };
    let e: pb::StatsEntry = ImageDir::new(dir).read_one(name)?;
    let mut s = String::new();
    let n = |v: u64| format!("{v} ({v:#x})");
    match (e.dump, e.restore) {
        (Some(d), _) if !restore => {
            let _ = writeln!(s, "Displaying dump stats:");
            let _ = writeln!(s, "Freezing time: {} us", d.freezing_time);
            let _ = writeln!(s, "Frozen time: {} us", d.frozen_time);
            let _ = writeln!(s, "Memory dump time: {} us", d.memdump_time);
            let _ = writeln!(s, "Memory write time: {} us", d.memwrite_time);
            let _ = writeln!(s, "Memory pages scanned: {}", n(d.pages_scanned));
            let _ = writeln!(s, "Memory pages skipped from parent: {}", n(d.pages_skipped_parent));
            let _ = writeln!(s, "Memory pages written: {}", n(d.pages_written));
            let _ = writeln!(s, "Lazy memory pages: {}", n(d.pages_lazy));
        }
        (_, Some(r)) if restore => {
            let _ = writeln!(s, "Displaying restore stats:");
            let _ = writeln!(s, "Pages compared: {}", n(r.pages_compared));
            let _ = writeln!(s, "Pages skipped COW: {}", n(r.pages_skipped_cow));
            if let Some(p) = r.pages_restored {
                let _ = writeln!(s, "Pages restored: {}", n(p));
            }
            let _ = writeln!(s, "Restore time: {} us", r.restore_time);
            let _ = writeln!(s, "Forking time: {} us", r.forking_time);
        }
        _ => return Err(Error::bad_image(dir.join(name.file_name()).display(), format!("no {} statistics in it", if restore { "restore" } else { "dump" }))),
    }
    Ok(s)
}

/// The summary of the checkpoint in `dir`.
pub fn summary(dir: &Path) -> Result<String> {
    let images = ImageDir::new(dir);
    let mut s = String::new();
    // Every image a checkpoint must have is read strictly: a damaged checkpoint is an error naming the
    // file and what is wrong in it, not a summary with holes.
    let inv: pb::InventoryEntry = images.read_one(ImageName::Inventory)?;
    let tree: Vec<pb::PstreeEntry> = images.read_all(ImageName::Pstree)?;
    if tree.is_empty() {
        return Err(Error::bad_image(dir.join("pstree.img").display(), "lists no process"));
    }
    let files: Vec<pb::FileEntry> = images.read_all_if_exists(ImageName::Files)?;
    let _ = writeln!(s, "checkpoint {}", dir.display());
    let _ = writeln!(s, "{:>8} {:>8} {:>8} {:>8}  COMM", "PID", "PPID", "PGID", "SID");
    let mut details = String::new();
    let kinds = crate::kinds::file_kinds();
    for p in &tree {
        let core: pb::CoreEntry = images.read_one(ImageName::Core(p.pid))?;
        let Some(tc) = core.tc.as_ref() else {
            return Err(Error::bad_image(dir.join(ImageName::Core(p.pid).file_name()).display(), format!("the core of pid {} has no task state (tc)", p.pid)));
        };
        let comm = &tc.comm;
        let _ = writeln!(s, "{:>8} {:>8} {:>8} {:>8}  {}", p.pid, p.ppid, p.pgid, p.sid, comm);
        let _ = writeln!(details, "\npid {} ({comm}), {} thread(s)", p.pid, p.threads.len());
        let mm: pb::MmEntry = images.read_one(ImageName::Mm(p.pid))?;
        let size: u64 = mm.vmas.iter().map(|v| v.end.saturating_sub(v.start)).sum();
        let pages = Pagemap::read(&images, ImageName::Pagemap(p.pid))?.pages_len();
        let _ = writeln!(details, "  memory: {} areas, {} KiB mapped, {} KiB of pages dumped", mm.vmas.len(), size / 1024, pages / 1024);
        let ids: pb::TaskKobjIdsEntry = images.read_one(ImageName::Ids(p.pid))?;
        let fds: Vec<pb::FdinfoEntry> = images.read_all(ImageName::Fdinfo(ids.files_id))?;
        let _ = writeln!(details, "  files:");
        for fd in fds {
            let what = match files.iter().find(|f| f.id == fd.id) {
                Some(pb::FileEntry { ext: Some(e), .. }) => format!("claimed by plugin '{}'", e.rcr_plugin.as_deref().unwrap_or("?")),
                Some(f) => kinds.iter().find_map(|k| k.describe(f)).unwrap_or_else(|| format!("{:?}", pb::FdTypes::try_from(f.r#type).unwrap_or(pb::FdTypes::Und))),
                None => {
                    return Err(Error::bad_image(
                        dir.display(),
                        format!("fd {} of pid {} is file {}, which files.img does not have; the checkpoint is damaged", fd.fd, p.pid, fd.id),
                    ))
                }
            };
            let _ = writeln!(details, "    {:>4}: {what}", fd.fd);
        }
    }
    s.push_str(&details);
    let plugins = inv.rcr_plugins;
    let _ = writeln!(s, "\nplugins needed: {}", if plugins.is_empty() { "none".to_string() } else { plugins.join(", ") });
    Ok(s)
}
