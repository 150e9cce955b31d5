//! The images of one checkpoint, read and checked before a restore starts anything: per process its
//! tree entry, cores, memory, ids, fs and fd table; the files, terminals, seccomp filters, clocks, memfds
//! and the plugins it needs; and the file kinds with their own images read.

use crate::image::pagemap::Pagemap;
use crate::image::{pb, ImageDir, ImageName};
use crate::kinds::{mem, task, FileKind};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// The images of one process.
pub struct ProcImages {
    pub pstree: pb::PstreeEntry,
    /// One core per thread, the leader's first (a zombie has one, with its exit code only).
    pub cores: Vec<pb::CoreEntry>,
    pub zombie: bool,
    pub mm: pb::MmEntry,
    pub ids: pb::TaskKobjIdsEntry,
    pub fs: pb::FsEntry,
    pub fdinfo: Vec<pb::FdinfoEntry>,
    pub pages_id: u32,
    pub runs: Vec<mem::PageRun>,
}

/// Every image of a checkpoint, read and checked before anything is started.
pub struct Images {
    /// In tree order: a parent before its children, the root first.
    pub procs: Vec<ProcImages>,
    pub files: BTreeMap<u32, pb::FileEntry>,
    pub ttys: Vec<pb::TtyInfoEntry>,
    pub seccomp: Vec<pb::SeccompFilter>,
    /// The root's clocks at dump time, and whether its time namespace had offsets.
    pub clocks: Option<(pb::TimensEntry, bool)>,
    /// The plugins this checkpoint cannot be restored without (inventory).
    pub plugins: Vec<String>,
    /// memfds behind mappings.
    pub memfds: Vec<pb::MemfdInodeEntry>,
    /// The kinds of open file, with their own images read ([`crate::kinds::file_kinds`]).
    pub kinds: std::cell::RefCell<Vec<Box<dyn FileKind>>>,
}

impl Images {
    /// Reads the checkpoint in `dir`.
    pub fn load(dir: &Path) -> Result<Images> {
        let images = ImageDir::new(dir);
        let inv: pb::InventoryEntry = images.read_one(ImageName::Inventory)?;
        if inv.img_version != crate::image::IMG_VERSION {
            return Err(Error::bad_image(images.file(ImageName::Inventory).display(), format!("image version {} is not supported (rcr reads version {})", inv.img_version, crate::image::IMG_VERSION)));
        }
        let tree: Vec<pb::PstreeEntry> = images.read_all(ImageName::Pstree)?;
        if tree.is_empty() {
            return Err(Error::bad_image(images.file(ImageName::Pstree).display(), "no process"));
        }
        let mut procs = Vec::with_capacity(tree.len());
        for (i, ps) in tree.into_iter().enumerate() {
            if i > 0 && !procs.iter().any(|p: &ProcImages| p.pstree.pid == ps.ppid) {
                return Err(Error::bad_image("pstree.img", format!("the parent {} of pid {} comes after it or is missing", ps.ppid, ps.pid)));
            }
            procs.push(ProcImages::load(&images, ps)?);
        }
        if procs[0].zombie {
            return Err(Error::bad_image("pstree.img", "the root process is a zombie"));
        }
        let files = images.read_all::<pb::FileEntry>(ImageName::Files)?.into_iter().map(|f| (f.id, f)).collect();
        let ttys = images.read_all_if_exists(ImageName::TtyInfo)?;
        let seccomp = images.read_all_if_exists::<pb::SeccompEntry>(ImageName::Seccomp)?
            .into_iter()
            .flat_map(|s| s.seccomp_filters)
            .collect();
        let had_offsets = inv.root_ids.as_ref().is_some_and(|i| i.time_ns_id.is_some());
        let clocks = images.read_all_if_exists::<pb::TimensEntry>(ImageName::Timens(1))?.into_iter().next().map(|c| (c, had_offsets));
        let memfds = images.read_all_if_exists(ImageName::MemfdInode)?;
        let mut kinds = crate::kinds::file_kinds();
        for k in kinds.iter_mut() {
            k.load(dir)?;
        }
        Ok(Images { procs, files, ttys, seccomp, clocks, plugins: inv.rcr_plugins, memfds, kinds: std::cell::RefCell::new(kinds) })
    }

    /// The index in [`Images::procs`] of process `pid`.
    pub fn index_of(&self, pid: i32) -> Option<usize> {
        self.procs.iter().position(|p| p.pid() == pid)
    }

    pub fn reg(&self, id: u32) -> Result<&pb::RegFileEntry> {
        self.files.get(&id).and_then(|f| f.reg.as_ref()).ok_or_else(|| Error::bad_image("files.img", format!("no regular file with id {id}")))
    }
}

impl ProcImages {
    fn load(images: &ImageDir, pstree: pb::PstreeEntry) -> Result<ProcImages> {
        let pid = pstree.pid;
        let first: pb::CoreEntry = images.read_one(ImageName::Core(pid))?;
        let zombie = first.tc.as_ref().is_some_and(|tc| tc.task_state == task::TASK_DEAD);
        if zombie {
            return Ok(ProcImages {
                pstree,
                cores: vec![first],
                zombie,
                mm: Default::default(),
                ids: Default::default(),
                fs: Default::default(),
                fdinfo: Vec::new(),
                pages_id: 0,
                runs: Vec::new(),
            });
        }
        if pstree.threads.first() != Some(&pid) {
            return Err(Error::bad_image("pstree.img", format!("pid {pid}: its first thread is not its leader")));
        }
        let mut cores = vec![first];
        for &tid in &pstree.threads[1..] {
            cores.push(images.read_one(ImageName::Core(tid))?);
        }
        for (tid, c) in pstree.threads.iter().zip(&cores) {
            if c.mtype != pb::core_entry::March::X8664 as i32 || c.thread_info.is_none() {
                return Err(Error::bad_image(images.file(ImageName::Core(*tid)).display(), "not an x86_64 task core"));
            }
        }
        if cores[0].tc.is_none() {
            return Err(Error::bad_image(images.file(ImageName::Core(pid)).display(), "the leader's core has no task core"));
        }
        let mm: pb::MmEntry = images.read_one(ImageName::Mm(pid))?;
        let ids: pb::TaskKobjIdsEntry = images.read_one(ImageName::Ids(pid))?;
        let fs: pb::FsEntry = images.read_one(ImageName::Fs(pid))?;
        let fdinfo = images.read_all(ImageName::Fdinfo(ids.files_id))?;
        let pagemap = Pagemap::read(images, ImageName::Pagemap(pid))?;
        let pages = images.file(ImageName::Pages(pagemap.pages_id));
        let pages_len = std::fs::metadata(&pages).map(|m| m.len()).unwrap_or(0);
        let need = pagemap.pages_len();
        if need > pages_len {
            return Err(Error::bad_image(
                pages.display(),
                format!("{} bytes, but {} lists {need} bytes of pages: the checkpoint is truncated", pages_len, ImageName::Pagemap(pid)),
            ));
        }
        Ok(ProcImages { pstree, cores, zombie, mm, ids, fs, fdinfo, pages_id: pagemap.pages_id, runs: pagemap.runs })
    }

    pub fn pid(&self) -> i32 {
        self.pstree.pid as i32
    }
}
