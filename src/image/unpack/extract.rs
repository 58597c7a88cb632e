//! The extractor: applies the entries of one or more layer tars to a root.
//!
//! Every entry's directory is resolved inside the root ([`Root::resolve_dir`]); the entry
//! itself is created with `*at` calls on its final name that never follow a symlink. An entry
//! over an existing path replaces it the way the image spec says (unlink, recreate): the new
//! object is made under a temporary name in the same directory and renamed over the old one
//! (or exchanged with an old directory, which is then removed), so the last entry for a path
//! wins. Directory modes and mtimes are set at the end, deepest first, so that a read-only
//! directory can still be filled and its mtime is not disturbed by its children.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

use super::entry_path::{EntryPath, PATH_MAX};
use super::options::{Settled, Whiteouts};
use super::remove::remove_tree;
use super::root::{file_type, inode_id, Marks, Resolve, Root, DIR_FLAGS};
use super::tar_stream::{Entry, Kind, TarStream};
use crate::image::error::{ImageError, Result};

/// The whiteout prefix.
pub(super) const WH_PREFIX: &[u8] = b".wh.";

/// Deferred directory metadata.
#[derive(Debug, Clone, Copy)]
struct DirMeta {
    mode: u32,
    mtime: (i64, u32),
}

/// Where a new object was made.
#[derive(Debug)]
enum Slot {
    /// At its own name, which was free.
    Fresh,
    /// At `tmp`, to be swapped with what holds the name (exchanged when either is a directory).
    Replace { tmp: Vec<u8>, exchange: bool },
}

impl Slot {
    fn name<'a>(&'a self, name: &'a [u8]) -> &'a [u8] {
        match self {
            Slot::Fresh => name,
            Slot::Replace { tmp, .. } => tmp,
        }
    }
}

/// Applies layer entries to a root.
#[derive(Debug)]
pub(super) struct Extractor {
    pub(super) root: Root,
    pub(super) settled: Settled,
    /// Inodes of the current layer (whiteouts applied only).
    pub(super) marks: Option<Marks>,
    dirs: BTreeMap<Vec<u8>, DirMeta>,
    root_meta: Option<DirMeta>,
    cache: Option<(Vec<Vec<u8>>, Rc<OwnedFd>)>,
    nonce: String,
    tmp_seq: u64,
    declared: u64,
    /// A setuid/setgid file or a file capability was written.
    pub(super) setuid_seen: bool,
    pub(super) skipped_devices: u64,
    pub(super) skipped_xattrs: u64,
}

impl Extractor {
    pub(super) fn new(root: Root, settled: Settled) -> Self {
        let marks = (settled.whiteouts == Whiteouts::Apply).then(Marks::default);
        Self {
            root,
            settled,
            marks,
            dirs: BTreeMap::new(),
            root_meta: None,
            cache: None,
            nonce: format!("{:x}", std::process::id()),
            tmp_seq: 0,
            declared: 0,
            setuid_seen: false,
            skipped_devices: 0,
            skipped_xattrs: 0,
        }
    }

    /// An i/o error on an entry.
    pub(super) fn io(&self, e: &Entry, err: Errno) -> ImageError {
        self.io_key(&e.path, err)
    }

    fn io_key(&self, key: &[u8], err: Errno) -> ImageError {
        let rel = String::from_utf8_lossy(key);
        ImageError::io_at(
            self.root.path().join(rel.trim_start_matches('/')),
            err.into(),
        )
    }

    /// Refuse an entry.
    pub(super) fn refuse(e: &Entry, reason: impl Into<String>) -> ImageError {
        ImageError::UnsafeEntry {
            entry: e.display(),
            reason: reason.into(),
        }
    }

    /// The error for a directory that did not resolve.
    pub(super) fn unresolved(&self, e: &Entry, r: Resolve) -> ImageError {
        match r {
            Resolve::NotFound => Self::refuse(e, "its directory does not exist"),
            Resolve::NotDir => Self::refuse(e, "a component of its directory is not a directory"),
            Resolve::Unsafe(why) => Self::refuse(
                e,
                format!("its directory cannot be resolved inside the root: {why}"),
            ),
            Resolve::Sys(err) => self.io(e, err),
        }
    }

    /// Apply one layer; returns its number of entries.
    pub(super) fn layer(&mut self, tar: &mut TarStream<'_>) -> Result<u64> {
        if let Some(m) = &mut self.marks {
            m.created.clear();
            m.touched.clear();
        }
        self.cache = None;
        self.declared = 0;
        let mut entries = 0u64;
        while let Some(e) = tar.next_entry()? {
            entries += 1;
            if entries > self.settled.max_entries {
                return Err(ImageError::UnpackLimit {
                    what: "entries".into(),
                    limit: self.settled.max_entries,
                });
            }
            self.entry(&e, tar)?;
        }
        Ok(entries)
    }

    /// A directory inside the root, through a one-entry cache (tars list siblings together).
    pub(super) fn dir(
        &mut self,
        components: &[Vec<u8>],
        create: bool,
    ) -> Result<Rc<OwnedFd>, Resolve> {
        if let Some((c, fd)) = &self.cache {
            if c.as_slice() == components {
                return Ok(fd.clone());
            }
        }
        let fd = Rc::new(
            self.root
                .resolve_dir(components, create, self.marks.as_mut())?,
        );
        self.cache = Some((components.to_vec(), fd.clone()));
        Ok(fd)
    }

    /// Forget cached resolutions (after anything that may change what a path means).
    pub(super) fn invalidate(&mut self) {
        self.cache = None;
    }

    /// Forget deferred metadata at and below `key` (it was removed or replaced).
    pub(super) fn forget(&mut self, key: &[u8]) {
        let mut below = key.to_vec();
        below.push(b'/');
        let doomed: Vec<Vec<u8>> = self
            .dirs
            .range(key.to_vec()..)
            .take_while(|(k, _)| k.as_slice() == key || k.starts_with(&below))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.dirs.remove(&k);
        }
    }

    fn entry(&mut self, e: &Entry, tar: &mut TarStream<'_>) -> Result<()> {
        let path = EntryPath::parse(&e.path).map_err(|r| Self::refuse(e, r))?;
        if e.kind == Kind::File {
            self.declared = self.declared.saturating_add(e.size);
            if self.declared > self.settled.max_bytes {
                return Err(ImageError::UnpackLimit {
                    what: format!(
                        "bytes of file data (entry {:?} declares {})",
                        e.display(),
                        e.size
                    ),
                    limit: self.settled.max_bytes,
                });
            }
        }
        let Some((parent, name)) = path.split_last() else {
            return self.root_entry(e);
        };
        if parent.iter().any(|c| c.starts_with(WH_PREFIX)) {
            return Err(Self::refuse(
                e,
                "a directory in its path starts with .wh., which is reserved for whiteouts",
            ));
        }
        if name.starts_with(WH_PREFIX) && self.whiteout(e, parent, name)? {
            return Ok(());
        }
        let key = path.key();
        let dir = self.dir(parent, true).map_err(|r| self.unresolved(e, r))?;
        match e.kind {
            Kind::File => self.regular(e, &dir, name, &key, tar),
            Kind::Dir => self.directory(e, &dir, name, &key),
            Kind::Symlink => self.symlink(e, &dir, name, &key),
            Kind::HardLink => self.hardlink(e, &dir, name, &key),
            Kind::Char | Kind::Block | Kind::Fifo => self.special(e, &dir, name, &key),
        }
    }

    /// The entry for the root directory itself (`./`): its metadata goes on the root.
    fn root_entry(&mut self, e: &Entry) -> Result<()> {
        if e.kind != Kind::Dir {
            return Err(Self::refuse(
                e,
                "it names the root directory but is not a directory",
            ));
        }
        if let Some((u, g)) = self.owner(e)? {
            rfs::fchown(self.root.fd(), Some(u), Some(g)).map_err(|err| self.io(e, err))?;
        }
        let root = rfs::openat(self.root.fd(), ".", DIR_FLAGS, Mode::empty())
            .map_err(|err| self.io(e, err))?;
        self.xattrs(root.as_fd(), e)?;
        self.root_meta = Some(DirMeta {
            mode: e.mode,
            mtime: e.mtime,
        });
        Ok(())
    }

    fn tmp_name(&mut self) -> Vec<u8> {
        self.tmp_seq += 1;
        format!(".rrun-unpack-{}-{}", self.nonce, self.tmp_seq).into_bytes()
    }

    /// Make a new object called `name` in `dir` with `make`, which must fail with `EEXIST`
    /// rather than touch an existing name. When the name is taken, the object is made under a
    /// temporary name for [`Self::commit`] to swap in.
    fn create<T>(
        &mut self,
        e: &Entry,
        dir: BorrowedFd<'_>,
        name: &[u8],
        new_is_dir: bool,
        mut make: impl FnMut(BorrowedFd<'_>, &[u8]) -> std::result::Result<T, Errno>,
    ) -> Result<(T, Slot)> {
        match make(dir, name) {
            Ok(v) => return Ok((v, Slot::Fresh)),
            Err(Errno::EXIST) => {}
            Err(err) => return Err(self.io(e, err)),
        }
        let old =
            rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map_err(|err| self.io(e, err))?;
        let exchange = new_is_dir || file_type(&old) == FileType::Directory;
        for _ in 0..64 {
            let tmp = self.tmp_name();
            match make(dir, &tmp) {
                Ok(v) => return Ok((v, Slot::Replace { tmp, exchange })),
                Err(Errno::EXIST) => continue,
                Err(err) => return Err(self.io(e, err)),
            }
        }
        Err(self.io(e, Errno::EXIST))
    }

    /// Put an object made by [`Self::create`] at its name.
    fn commit(
        &mut self,
        e: &Entry,
        dir: BorrowedFd<'_>,
        name: &[u8],
        key: &[u8],
        slot: Slot,
    ) -> Result<()> {
        let Slot::Replace { tmp, exchange } = slot else {
            return Ok(());
        };
        // What `name` meant changes: cached resolutions through it are stale.
        self.invalidate();
        if exchange {
            rfs::renameat_with(dir, tmp.as_slice(), dir, name, RenameFlags::EXCHANGE)
                .map_err(|err| self.io(e, err))?;
            // `tmp` now holds the old object.
            remove_tree(dir, &tmp).map_err(|err| self.io(e, err))?;
            self.forget(key);
        } else {
            rfs::renameat(dir, tmp.as_slice(), dir, name).map_err(|err| self.io(e, err))?;
        }
        Ok(())
    }

    fn mark_created(&mut self, dir: BorrowedFd<'_>, name: &[u8]) {
        if let Some(m) = &mut self.marks {
            if let Ok(st) = rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                m.created.insert(inode_id(&st));
            }
        }
    }

    fn regular(
        &mut self,
        e: &Entry,
        dir: &OwnedFd,
        name: &[u8],
        key: &[u8],
        tar: &mut TarStream<'_>,
    ) -> Result<()> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let (fd, slot) = self.create(e, dir.as_fd(), name, false, |d, n| {
            rfs::openat(d, n, flags, Mode::from_raw_mode(0o600))
        })?;
        let mut file = File::from(fd);
        self.write_data(e, &mut file, tar)?;
        self.file_metadata(file.as_fd(), e)?;
        if let Some(m) = &mut self.marks {
            if let Ok(st) = rfs::fstat(&file) {
                m.created.insert(inode_id(&st));
            }
        }
        drop(file);
        self.commit(e, dir.as_fd(), name, key, slot)
    }

    fn write_data(&self, e: &Entry, file: &mut File, tar: &mut TarStream<'_>) -> Result<()> {
        let write_err = |err: std::io::Error| {
            ImageError::io_at(
                self.root
                    .path()
                    .join(String::from_utf8_lossy(&e.path).trim_start_matches('/')),
                err,
            )
        };
        let mut copy = |file: &mut File, mut left: u64| -> Result<()> {
            while left > 0 {
                let chunk = tar.data(left)?;
                if chunk.is_empty() {
                    return Err(ImageError::MalformedTar {
                        offset: e.offset,
                        reason: "the entry's data is shorter than its size".into(),
                    });
                }
                file.write_all(chunk).map_err(write_err)?;
                left -= chunk.len() as u64;
            }
            Ok(())
        };
        match &e.sparse {
            None => copy(file, e.size),
            Some(segments) => {
                for &(offset, len) in segments {
                    file.seek(SeekFrom::Start(offset)).map_err(write_err)?;
                    copy(file, len)?;
                }
                file.set_len(e.size).map_err(write_err)
            }
        }
    }

    fn directory(&mut self, e: &Entry, dir: &OwnedFd, name: &[u8], key: &[u8]) -> Result<()> {
        let dirfd = dir.as_fd();
        match rfs::mkdirat(dirfd, name, Mode::from_raw_mode(0o700)) {
            Ok(()) => self.mark_created(dirfd, name),
            Err(Errno::EXIST) => {
                let st = rfs::statat(dirfd, name, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|err| self.io(e, err))?;
                if file_type(&st) == FileType::Directory {
                    // Both directories: the entry's attributes replace the old ones.
                    if let Some(m) = &mut self.marks {
                        m.touched.insert(inode_id(&st));
                    }
                } else {
                    let ((), slot) = self.create(e, dirfd, name, true, |d, n| {
                        rfs::mkdirat(d, n, Mode::from_raw_mode(0o700))
                    })?;
                    self.commit(e, dirfd, name, key, slot)?;
                    self.mark_created(dirfd, name);
                }
            }
            Err(err) => return Err(self.io(e, err)),
        }
        let fd =
            rfs::openat(dirfd, name, DIR_FLAGS, Mode::empty()).map_err(|err| self.io(e, err))?;
        if !self.settled.privileged {
            // Writable for us until the end, whatever the umask.
            rfs::fchmod(&fd, Mode::from_raw_mode(0o700)).map_err(|err| self.io(e, err))?;
        }
        if let Some((u, g)) = self.owner(e)? {
            rfs::fchown(&fd, Some(u), Some(g)).map_err(|err| self.io(e, err))?;
        }
        self.xattrs(fd.as_fd(), e)?;
        self.dirs.insert(
            key.to_vec(),
            DirMeta {
                mode: e.mode,
                mtime: e.mtime,
            },
        );
        Ok(())
    }

    fn symlink(&mut self, e: &Entry, dir: &OwnedFd, name: &[u8], key: &[u8]) -> Result<()> {
        let target = e.link.as_slice();
        if target.is_empty() || target.contains(&0) || target.len() >= PATH_MAX {
            return Err(Self::refuse(
                e,
                "the symlink target is empty, contains NUL or is too long",
            ));
        }
        let ((), slot) = self.create(e, dir.as_fd(), name, false, |d, n| {
            rfs::symlinkat(target, d, n)
        })?;
        let at = slot.name(name).to_vec();
        self.chown_at(dir.as_fd(), &at, e)?;
        self.times_at(dir.as_fd(), &at, e)?;
        self.skip_xattrs(e);
        self.commit(e, dir.as_fd(), name, key, slot)?;
        self.mark_created(dir.as_fd(), name);
        Ok(())
    }

    /// A hardlink: the target is resolved inside the root like any path (so `/etc/passwd`
    /// means the root's own), its final component is never followed, and it must already
    /// exist and not be a directory.
    fn hardlink(&mut self, e: &Entry, dir: &OwnedFd, name: &[u8], key: &[u8]) -> Result<()> {
        let target = EntryPath::parse(&e.link)
            .map_err(|r| Self::refuse(e, format!("hardlink target: {r}")))?;
        let shown = String::from_utf8_lossy(&e.link).into_owned();
        let Some((tparent, tname)) = target.split_last() else {
            return Err(Self::refuse(e, "a hardlink to the root directory"));
        };
        let missing = || {
            Self::refuse(
                e,
                format!("hardlink target {shown:?} is not inside the root (not in this layer or one below)"),
            )
        };
        let tdir = match self.root.resolve_dir(tparent, false, None) {
            Ok(d) => d,
            Err(Resolve::NotFound) | Err(Resolve::NotDir) => return Err(missing()),
            Err(r) => return Err(self.unresolved(e, r)),
        };
        let tst = match rfs::statat(&tdir, tname, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Err(missing()),
            Err(err) => return Err(self.io(e, err)),
        };
        if file_type(&tst) == FileType::Directory {
            return Err(Self::refuse(
                e,
                format!("hardlink target {shown:?} is a directory"),
            ));
        }
        if let Ok(st) = rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            if inode_id(&st) == inode_id(&tst) {
                return Ok(());
            }
        }
        let ((), slot) = self.create(e, dir.as_fd(), name, false, |d, n| {
            rfs::linkat(&tdir, tname, d, n, AtFlags::empty())
        })?;
        self.commit(e, dir.as_fd(), name, key, slot)
    }

    /// Device nodes (privileged only; skipped otherwise) and fifos.
    fn special(&mut self, e: &Entry, dir: &OwnedFd, name: &[u8], key: &[u8]) -> Result<()> {
        let (ft, dev) = match e.kind {
            Kind::Char => (
                FileType::CharacterDevice,
                rfs::makedev(e.device.0, e.device.1),
            ),
            Kind::Block => (FileType::BlockDevice, rfs::makedev(e.device.0, e.device.1)),
            _ => (FileType::Fifo, 0),
        };
        let device = ft != FileType::Fifo;
        if device && !self.settled.privileged {
            self.skipped_devices += 1;
            return Ok(());
        }
        let (made, slot) = self.create(e, dir.as_fd(), name, false, |d, n| {
            match rfs::mknodat(d, n, ft, Mode::from_raw_mode(0o600), dev) {
                Ok(()) => Ok(true),
                // Root in a user namespace cannot make devices: skipped, as Docker does.
                Err(Errno::PERM) if device => Ok(false),
                Err(err) => Err(err),
            }
        })?;
        if !made {
            self.skipped_devices += 1;
            return Ok(());
        }
        let at = slot.name(name).to_vec();
        self.chown_at(dir.as_fd(), &at, e)?;
        let mode = self.file_mode(e);
        rfs::chmodat(
            dir,
            at.as_slice(),
            Mode::from_raw_mode(mode),
            AtFlags::empty(),
        )
        .map_err(|err| self.io(e, err))?;
        self.times_at(dir.as_fd(), &at, e)?;
        self.skip_xattrs(e);
        self.commit(e, dir.as_fd(), name, key, slot)?;
        self.mark_created(dir.as_fd(), name);
        Ok(())
    }

    /// Set the deferred directory modes and mtimes, deepest first.
    pub(super) fn finish_dirs(&mut self) -> Result<()> {
        self.invalidate();
        let dirs = std::mem::take(&mut self.dirs);
        for (key, meta) in dirs.iter().rev() {
            let Ok(path) = EntryPath::parse(key) else {
                continue;
            };
            let Some((parent, name)) = path.split_last() else {
                continue;
            };
            let dir = match self.dir(parent, false) {
                Ok(d) => d,
                Err(Resolve::Sys(err)) => return Err(self.io_key(key, err)),
                // Replaced or removed since: nothing to set.
                Err(_) => continue,
            };
            let fd = match rfs::openat(&*dir, name, DIR_FLAGS, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) | Err(Errno::NOTDIR) | Err(Errno::LOOP) => continue,
                Err(err) => return Err(self.io_key(key, err)),
            };
            self.set_dir_meta(&fd, meta, key)?;
        }
        self.invalidate();
        Ok(())
    }

    fn set_dir_meta(&self, fd: &OwnedFd, meta: &DirMeta, key: &[u8]) -> Result<()> {
        rfs::fchmod(fd, Mode::from_raw_mode(meta.mode)).map_err(|err| self.io_key(key, err))?;
        let t = rfs::Timespec {
            tv_sec: meta.mtime.0,
            tv_nsec: i64::from(meta.mtime.1),
        };
        let ts = rfs::Timestamps {
            last_access: t,
            last_modification: t,
        };
        rfs::futimens(fd, &ts).map_err(|err| self.io_key(key, err))
    }

    /// The root directory's mode and mtime (0755 when the layers do not say).
    pub(super) fn finish_root(&mut self) -> Result<()> {
        let root = rfs::openat(self.root.fd(), ".", DIR_FLAGS, Mode::empty())
            .map_err(|err| self.io_key(b"", err))?;
        match self.root_meta {
            Some(meta) => self.set_dir_meta(&root, &meta, b""),
            None => {
                rfs::fchmod(&root, Mode::from_raw_mode(0o755)).map_err(|err| self.io_key(b"", err))
            }
        }
    }
}
