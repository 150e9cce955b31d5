//! `rcr show`: a human summary of a checkpoint — the process tree, each process's memory and open
//! files, and the plugins the dump needs.

use crate::image::{pb, ImgReader, Kind};
use crate::{Error, Result};
use std::fmt::Write;
use std::path::Path;

fn read_all<M: prost::Message + Default>(path: &Path, kind: Kind) -> Result<Vec<M>> {
    Ok(ImgReader::open(path, kind)?.read_all()?)
}

/// The summary of the checkpoint in `dir`.
pub fn summary(dir: &Path) -> Result<String> {
    let mut s = String::new();
    let tree: Vec<pb::PstreeEntry> = read_all(&dir.join("pstree.img"), Kind::Pstree)?;
    let files: Vec<pb::FileEntry> = read_all(&dir.join("files.img"), Kind::Files).unwrap_or_default();
    let _ = writeln!(s, "checkpoint {}", dir.display());
    let _ = writeln!(s, "{:>8} {:>8} {:>8} {:>8}  COMM", "PID", "PPID", "PGID", "SID");
    let mut details = String::new();
    let kinds = crate::kinds::file_kinds();
    for p in &tree {
        let core: Option<pb::CoreEntry> = read_all(&dir.join(format!("core-{}.img", p.pid)), Kind::Core).ok().and_then(|v| v.into_iter().next());
        let comm = core.as_ref().and_then(|c| c.tc.as_ref()).map(|t| t.comm.clone()).unwrap_or_default();
        let _ = writeln!(s, "{:>8} {:>8} {:>8} {:>8}  {}", p.pid, p.ppid, p.pgid, p.sid, comm);
        let _ = writeln!(details, "\npid {} ({comm}), {} thread(s)", p.pid, p.threads.len());
        if let Ok(mm) = read_all::<pb::MmEntry>(&dir.join(format!("mm-{}.img", p.pid)), Kind::Mm) {
            let vmas = mm.first().map(|m| m.vmas.len()).unwrap_or(0);
            let size: u64 = mm.first().map(|m| m.vmas.iter().map(|v| v.end - v.start).sum()).unwrap_or(0);
            let pages = crate::kinds::mem::read_pagemap(dir, p.pid as i32).map(|(_, r)| r.iter().map(|r| r.len).sum::<u64>()).unwrap_or(0);
            let _ = writeln!(details, "  memory: {vmas} areas, {} KiB mapped, {} KiB of pages dumped", size / 1024, pages / 1024);
        }
        let ids: Option<pb::TaskKobjIdsEntry> = read_all(&dir.join(format!("ids-{}.img", p.pid)), Kind::Ids).ok().and_then(|v| v.into_iter().next());
        if let Some(ids) = ids {
            let fds: Vec<pb::FdinfoEntry> = read_all(&dir.join(format!("fdinfo-{}.img", ids.files_id)), Kind::Fdinfo).unwrap_or_default();
            let _ = writeln!(details, "  files:");
            for fd in fds {
                let f = files.iter().find(|f| f.id == fd.id);
                let what = match f {
                    Some(pb::FileEntry { ext: Some(e), .. }) => format!("claimed by plugin '{}'", e.rcr_plugin.as_deref().unwrap_or("?")),
                    Some(f) => kinds.iter().find_map(|k| k.describe(f)).unwrap_or_else(|| format!("{:?}", pb::FdTypes::try_from(f.r#type).unwrap_or(pb::FdTypes::Und))),
                    None => format!("file {} missing from files.img", fd.id),
                };
                let _ = writeln!(details, "    {:>4}: {what}", fd.fd);
            }
        }
    }
    s.push_str(&details);
    let inv: Option<pb::InventoryEntry> = read_all(&dir.join("inventory.img"), Kind::Inventory).ok().and_then(|v| v.into_iter().next());
    let plugins = inv.map(|i| i.rcr_plugins).unwrap_or_default();
    let _ = writeln!(s, "\nplugins needed: {}", if plugins.is_empty() { "none".to_string() } else { plugins.join(", ") });
    if tree.is_empty() {
        return Err(Error::Msg(format!("{}: pstree.img lists no process", dir.display())));
    }
    Ok(s)
}
