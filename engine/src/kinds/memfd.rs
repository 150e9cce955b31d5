//! memfd files behind memory mappings: their content, name, size and seals are saved once per memfd
//! (CRIU's `memfd.img` entry, and a shmem pagemap whose addresses are file offsets), and restore creates
//! the memfd again in rcr before any task exists, so every task that maps it inherits the same one.

use crate::image::pagemap::{PageRun, Pagemap, PagemapWriter, PAGE_SIZE};
use crate::image::{pb, ImageDir, ImageName};
use crate::{Error, Result};
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

/// The pages image id of the memfd with index `i` in memfd.img (apart from the processes' ids).
pub fn pages_id(i: usize) -> u32 {
    100_000 + i as u32
}

fn io(ctx: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::Io { ctx, source: e }
}

/// Saves the memfd open as `f` (named `name`, shmem inode `ino`) as entry `i` of memfd.img: its data
/// extents (holes are skipped) go to `pagemap-shmem-<ino>.img` and `pages-<id>.img`.
pub fn dump(dir: &Path, i: usize, f: &File, name: &str, ino: u64) -> Result<pb::MemfdInodeEntry> {
    let md = f.metadata().map_err(io(format!("stat of memfd {name}")))?;
    let size = md.len();
    let seals = fcntl(f.as_raw_fd(), FcntlArg::F_GET_SEALS).map_or(0, |s| s.max(0)) as u32;
    let pages_id = pages_id(i);
    let images = ImageDir::new(dir);
    let mut pagemap = PagemapWriter::create(&images, ImageName::PagemapShmem(ino), pages_id)?;
    let pages_path = images.file(ImageName::Pages(pages_id));
    let mut pages = std::io::BufWriter::new(File::create(&pages_path).map_err(io(format!("creating {}", pages_path.display())))?);
    let mut buf = vec![0u8; 1 << 20];
    // The data extents, widened to whole pages (the pagemap counts pages) and merged where they meet.
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for x in super::extents::data_extents(f.as_fd(), size, super::extents::Method::SeekData, &format!("memfd {name}"))? {
        let start = x.off / PAGE_SIZE * PAGE_SIZE;
        let end = (x.off + x.len).div_ceil(PAGE_SIZE) * PAGE_SIZE;
        match runs.last_mut() {
            Some(l) if l.1 >= start => l.1 = l.1.max(end),
            _ => runs.push((start, end)),
        }
    }
    for (start, end) in runs {
        pagemap.push(start, (end - start) / PAGE_SIZE)?;
        let mut at = start;
        while at < end {
            let n = ((end - at) as usize).min(buf.len());
            let chunk = &mut buf[..n];
            chunk.fill(0);
            let got = f.read_at(chunk, at).map_err(io(format!("reading memfd {name} at {at}")))?;
            let _ = got; // past the end of the file the page reads as zeros, as it would in memory
            pages.write_all(chunk).map_err(io(format!("writing {}", pages_path.display())))?;
            at += n as u64;
        }
    }
    pages.flush().map_err(io(format!("writing {}", pages_path.display())))?;
    pagemap.finish()?;
    Ok(pb::MemfdInodeEntry {
        name: name.to_string(),
        uid: md.uid(),
        gid: md.gid(),
        size,
        shmid: ino as u32,
        seals,
        inode_id: ino,
        hugetlb_flag: None,
    })
}

/// Creates memfd `e` again in rcr, with its content and seals. The fd is inherited by the tasks.
pub fn restore(dir: &Path, e: &pb::MemfdInodeEntry) -> Result<OwnedFd> {
    let name = std::ffi::CString::new(e.name.as_bytes()).map_err(|_| Error::corrupt(format!("memfd.img: name {:?} has a NUL byte", e.name)))?;
    let fd = nix::sys::memfd::memfd_create(&name, nix::sys::memfd::MemFdCreateFlag::MFD_ALLOW_SEALING)
        .map_err(|err| Error::Io { ctx: format!("creating memfd {}", e.name), source: err.into() })?;
    let file = File::from(fd);
    file.set_len(e.size).map_err(io(format!("sizing memfd {} to {}", e.name, e.size)))?;
    let images = ImageDir::new(dir);
    let Pagemap { pages_id, runs } = Pagemap::read(&images, ImageName::PagemapShmem(e.inode_id))?;
    let pages_path = images.file(ImageName::Pages(pages_id));
    let pages = File::open(&pages_path).map_err(io(format!("opening {}", pages_path.display())))?;
    copy_runs(&pages, &file, &runs, e.size)?;
    if e.seals != 0 {
        if let Err(err) = fcntl(file.as_raw_fd(), FcntlArg::F_ADD_SEALS(SealFlag::from_bits_retain(e.seals as libc::c_int))) {
            return Err(Error::Io { ctx: format!("sealing memfd {} with {:#x}", e.name, e.seals), source: err.into() });
        }
    }
    Ok(OwnedFd::from(file))
}

fn copy_runs(pages: &File, memfd: &File, runs: &[PageRun], size: u64) -> Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    for r in runs {
        let mut done = 0u64;
        while done < r.len {
            let n = ((r.len - done) as usize).min(buf.len());
            pages.read_exact_at(&mut buf[..n], r.file_off + done).map_err(io("reading a memfd's pages (truncated image?)".into()))?;
            let at = r.addr + done;
            let keep = (size.saturating_sub(at) as usize).min(n);
            memfd.write_all_at(&buf[..keep], at).map_err(io(format!("writing a memfd at {at}")))?;
            done += n as u64;
        }
    }
    Ok(())
}

/// The name of a memfd from its /proc link or mapping path ("/memfd:NAME (deleted)").
pub fn name_of(link: &str) -> &str {
    let n = link.strip_prefix("/memfd:").unwrap_or(link);
    n.strip_suffix(" (deleted)").unwrap_or(n)
}

/// Saves the memfd open as `f` (link or mapping path `link`, shmem inode `ino`) in the dump's memfd
/// inodes, once: its fds and its mappings all refer to that one entry.
pub fn save_inode(dir: &Path, files: &mut super::FileTable, f: &File, link: &str, ino: u64) -> Result<()> {
    if !files.memfds.iter().any(|m| m.inode_id == ino) {
        let e = dump(dir, files.memfds.len(), f, name_of(link), ino)?;
        files.memfds.push(e);
    }
    Ok(())
}

/// memfds as open fds: the inode is saved once (memfd.img, shared with mappings of it); each open file
/// description keeps its flags and offset.
pub struct MemfdFiles;

impl super::FileKind for MemfdFiles {
    fn describe(&self, f: &pb::FileEntry) -> Option<String> {
        f.memfd.as_ref().map(|e| format!("memfd inode {} (pos {})", e.inode_id, e.pos))
    }

    fn name(&self) -> &'static str {
        "memfd"
    }

    fn fd_types(&self) -> &'static [pb::FdTypes] {
        &[pb::FdTypes::Memfd]
    }

    fn handles(&self, st: &libc::stat, link: &str) -> bool {
        st.st_mode & libc::S_IFMT == libc::S_IFREG && link.starts_with("/memfd:")
    }

    fn dump(&mut self, fd: &super::FdToDump<'_>, id: u32, files: &mut super::FileTable) -> Result<pb::FileEntry> {
        let copy = fd.file.try_clone_to_owned().map_err(io(format!("pid {}: fd {}: dup", fd.pid, fd.fd)))?;
        save_inode(&fd.opts.images_dir, files, &File::from(copy), fd.link, fd.st.st_ino)?;
        Ok(pb::FileEntry {
            r#type: pb::FdTypes::Memfd as i32,
            id,
            memfd: Some(pb::MemfdFileEntry {
                id,
                flags: fd.info.flags & !(libc::O_CLOEXEC as u32),
                pos: fd.info.pos,
                fown: pb::FownEntry::default(),
                inode_id: fd.st.st_ino as u32,
            }),
            ..Default::default()
        })
    }

    fn open(&mut self, f: &pb::FileEntry, env: &super::RestoreEnv<'_>) -> Result<Option<OwnedFd>> {
        let Some(e) = &f.memfd else { return Ok(None) };
        let m = env.memfds.get(&(e.inode_id as u64)).ok_or_else(|| Error::corrupt(format!("file {}: memfd inode {} is not in memfd.img", f.id, e.inode_id)))?;
        // A new open file description of the memfd, with this fd's own flags and offset.
        super::reopen(m.as_fd(), e.flags, e.pos, &|| format!("memfd inode {}", e.inode_id)).map(Some)
    }
}
