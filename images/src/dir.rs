//! An images directory: every image read or written by its [`ImageName`], whole images of
//! plain entries typed by their message (checked against the kind's).

use std::path::{Path, PathBuf};

use crate::error::{ImageError, ImageErrorKind, Result};
use crate::io::{ImgReader, ImgWriter};
use crate::kind::{ImageName, Layout};

/// The directory holding a checkpoint's images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDir {
    path: PathBuf,
}

impl ImageDir {
    /// The images directory at `path` (nothing is checked until an image is read or written).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ImageDir { path: path.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of image `name` in the directory.
    pub fn file(&self, name: ImageName) -> PathBuf {
        self.path.join(name.file_name())
    }

    /// Whether image `name` exists.
    pub fn exists(&self, name: ImageName) -> bool {
        self.file(name).exists()
    }

    /// Opens image `name` for reading (its magic checked).
    pub fn open(&self, name: ImageName) -> Result<ImgReader> {
        ImgReader::open(&self.file(name), name.kind())
    }

    /// Creates (or truncates) image `name` and writes its magic.
    pub fn create(&self, name: ImageName) -> Result<ImgWriter> {
        ImgWriter::create(&self.file(name), name.kind())
    }

    /// Every entry of image `name`.
    pub fn read_all<M: prost::Message + prost::Name + Default>(&self, name: ImageName) -> Result<Vec<M>> {
        self.check::<M>(name)?;
        self.open(name)?.read_all()
    }

    /// Every entry of image `name`, none if the file does not exist (an image dump writes only
    /// when it has something to say).
    pub fn read_all_if_exists<M: prost::Message + prost::Name + Default>(&self, name: ImageName) -> Result<Vec<M>> {
        self.check::<M>(name)?;
        if !self.exists(name) {
            return Ok(Vec::new());
        }
        self.read_all(name)
    }

    /// The first (for most kinds the only) entry of image `name`; an image without any is an
    /// error.
    pub fn read_one<M: prost::Message + prost::Name + Default>(&self, name: ImageName) -> Result<M> {
        self.check::<M>(name)?;
        let mut r = self.open(name)?;
        let at = r.offset();
        r.read_entry()?
            .ok_or_else(|| ImageError::new(r.path(), at, ImageErrorKind::NoEntry(name.kind().message_name())))
    }

    /// Writes image `name` holding the one entry `m`.
    pub fn write_one<M: prost::Message + prost::Name>(&self, name: ImageName, m: &M) -> Result<()> {
        self.write_all(name, std::slice::from_ref(m))
    }

    /// Writes image `name` holding the entries `ms`, in order.
    pub fn write_all<'m, M: prost::Message + prost::Name + 'm>(&self, name: ImageName, ms: impl IntoIterator<Item = &'m M>) -> Result<()> {
        self.check::<M>(name)?;
        let mut w = self.create(name)?;
        for m in ms {
            w.write_entry(m)?;
        }
        w.finish()
    }

    /// `M` must be the entry message of `name`'s kind, whose images hold only such entries.
    fn check<M: prost::Name>(&self, name: ImageName) -> Result<()> {
        let kind = name.kind();
        let fail = |k| Err(ImageError::new(self.file(name), 0, k));
        if kind.layout() != Layout::Plain {
            return fail(ImageErrorKind::NotPlain(kind.crit_name()));
        }
        if M::NAME != kind.message_name() {
            return fail(ImageErrorKind::WrongMessage { kind: kind.crit_name(), expected: kind.message_name(), asked: M::NAME });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb;

    #[test]
    fn typed_round_trip_and_checks() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ImageDir::new(tmp.path());
        let fs = pb::FsEntry { cwd_id: 1, root_id: 2, umask: Some(0o22) };
        dir.write_one(ImageName::Fs(7), &fs).unwrap();
        assert!(tmp.path().join("fs-7.img").exists());
        assert_eq!(dir.read_one::<pb::FsEntry>(ImageName::Fs(7)).unwrap(), fs);
        assert_eq!(dir.read_all::<pb::FsEntry>(ImageName::Fs(7)).unwrap(), vec![fs]);
        assert!(dir.read_all_if_exists::<pb::FsEntry>(ImageName::Fs(8)).unwrap().is_empty());

        let e = dir.read_all::<pb::FsEntry>(ImageName::Fs(8)).unwrap_err();
        assert!(e.path.ends_with("fs-8.img"), "{e}");
        let e = dir.read_one::<pb::MmEntry>(ImageName::Fs(7)).unwrap_err();
        assert!(matches!(e.kind, ImageErrorKind::WrongMessage { asked: "mm_entry", .. }), "{e}");
        let e = dir.write_all::<pb::PagemapEntry>(ImageName::Pagemap(1), &[]).unwrap_err();
        assert!(matches!(e.kind, ImageErrorKind::NotPlain("PAGEMAP")), "{e}");
        assert!(!dir.exists(ImageName::Pagemap(1)), "nothing written after a refused write");

        dir.write_all::<pb::FsEntry>(ImageName::Fs(9), &[]).unwrap();
        let e = dir.read_one::<pb::FsEntry>(ImageName::Fs(9)).unwrap_err();
        assert!(matches!(e.kind, ImageErrorKind::NoEntry("fs_entry")) && e.offset == 8, "{e}");
    }
}
