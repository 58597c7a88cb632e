//! OCI whiteouts (`.wh.NAME`) and opaque markers (`.wh..wh..opq`), in each format: overlayfs
//! (0/0 character device, `trusted.overlay.opaque=y`), markers (kept as the tar has them), or
//! applied (lower layers' paths removed, never this layer's own, as the image spec requires).
//!
//! Decisions: a whiteout naming nothing, `.` or `..` is refused; other `.wh..wh.*` names are
//! AUFS bookkeeping and are dropped, as containerd does; a whiteout's directory is resolved
//! inside the root like any path, so one reached through a symlink can only remove things
//! inside the root.

use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{self as rfs, AtFlags, Dir, FileType, Mode, XattrFlags};
use rustix::io::Errno;

use super::extract::{Extractor, WH_PREFIX};
use super::metadata::OPAQUE;
use super::options::Whiteouts;
use super::remove::remove_tree;
use super::root::{file_type, inode_id, Resolve, DIR_FLAGS};
use super::tar_stream::Entry;
use crate::image::error::{ImageError, Result};

/// The opaque marker's name.
pub(super) const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

fn join(parent: &[Vec<u8>], name: &[u8]) -> Vec<u8> {
    let mut key = parent.join(&b'/');
    if !key.is_empty() {
        key.push(b'/');
    }
    key.extend_from_slice(name);
    key
}

impl Extractor {
    /// Handle an entry whose name starts with `.wh.`. Returns `false` when it is to be
    /// extracted as it is (the markers format).
    pub(super) fn whiteout(&mut self, e: &Entry, parent: &[Vec<u8>], name: &[u8]) -> Result<bool> {
        let opaque = name == OPAQUE_MARKER;
        let target = &name[WH_PREFIX.len()..];
        if !opaque {
            if target.starts_with(WH_PREFIX) {
                return Ok(true);
            }
            if target.is_empty() || target == b"." || target == b".." {
                return Err(Self::refuse(
                    e,
                    "a whiteout of nothing, '.' or '..' would remove its own directory or its parent",
                ));
            }
        }
        match (self.settled.whiteouts, opaque) {
            (Whiteouts::Markers | Whiteouts::Auto, _) => return Ok(false),
            (Whiteouts::Overlay, false) => self.overlay_whiteout(e, parent, target)?,
            (Whiteouts::Overlay, true) => self.overlay_opaque(e, parent)?,
            (Whiteouts::Apply, false) => self.apply_whiteout(e, parent, target)?,
            (Whiteouts::Apply, true) => self.apply_opaque(e, parent)?,
        }
        Ok(true)
    }

    /// overlayfs whiteout: a 0/0 character device, unless this layer itself has the name.
    fn overlay_whiteout(&mut self, e: &Entry, parent: &[Vec<u8>], target: &[u8]) -> Result<()> {
        let dir = self.dir(parent, true).map_err(|r| self.unresolved(e, r))?;
        match rfs::statat(&*dir, target, AtFlags::SYMLINK_NOFOLLOW) {
            // The snapshot holds only this layer: what is there is this layer's own.
            Ok(_) => return Ok(()),
            Err(Errno::NOENT) => {}
            Err(err) => return Err(self.io(e, err)),
        }
        match rfs::mknodat(
            &*dir,
            target,
            FileType::CharacterDevice,
            Mode::empty(),
            rfs::makedev(0, 0),
        ) {
            Ok(()) => Ok(()),
            Err(Errno::PERM) => Err(ImageError::NeedsRoot {
                what: "an overlay whiteout (a 0/0 character device)".into(),
                hint: "run as root, or unpack with Whiteouts::Markers".into(),
            }),
            Err(err) => Err(self.io(e, err)),
        }
    }

    /// overlayfs opaque directory: `trusted.overlay.opaque=y` on the marker's directory.
    fn overlay_opaque(&mut self, e: &Entry, parent: &[Vec<u8>]) -> Result<()> {
        let dir = self.dir(parent, true).map_err(|r| self.unresolved(e, r))?;
        let fd =
            rfs::openat(&*dir, ".", DIR_FLAGS, Mode::empty()).map_err(|err| self.io(e, err))?;
        match rfs::fsetxattr(&fd, OPAQUE, b"y", XattrFlags::empty()) {
            Ok(()) => Ok(()),
            Err(Errno::PERM) | Err(Errno::NOTSUP) => Err(ImageError::NeedsRoot {
                what: "an overlay opaque directory (the trusted.overlay.opaque xattr)".into(),
                hint: "run as root on a filesystem with trusted xattrs, or unpack with Whiteouts::Markers".into(),
            }),
            Err(err) => Err(self.io(e, err)),
        }
    }

    /// Remove `target` of the layers below (its directory may not exist: nothing to do).
    fn apply_whiteout(&mut self, e: &Entry, parent: &[Vec<u8>], target: &[u8]) -> Result<()> {
        let dir = match self.dir(parent, false) {
            Ok(d) => d,
            Err(Resolve::NotFound) | Err(Resolve::NotDir) => return Ok(()),
            Err(r) => return Err(self.unresolved(e, r)),
        };
        let st = match rfs::statat(&*dir, target, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(()),
            Err(err) => return Err(self.io(e, err)),
        };
        let id = inode_id(&st);
        let (created, touched) = match &self.marks {
            Some(m) => (m.created.contains(&id), m.touched.contains(&id)),
            None => (false, false),
        };
        if created {
            // Only a later layer can hide what this layer made.
            return Ok(());
        }
        self.invalidate();
        let key = join(parent, target);
        if touched && file_type(&st) == FileType::Directory {
            // A lower directory this layer also wrote into: keep this layer's part.
            let fd = rfs::openat(&*dir, target, DIR_FLAGS, Mode::empty())
                .map_err(|err| self.io(e, err))?;
            self.clear_lower(e, &fd, &key)
        } else {
            remove_tree(dir.as_fd(), target).map_err(|err| self.io(e, err))?;
            self.forget(&key);
            Ok(())
        }
    }

    /// Hide everything the layers below put in the marker's directory.
    fn apply_opaque(&mut self, e: &Entry, parent: &[Vec<u8>]) -> Result<()> {
        let dir = match self.dir(parent, false) {
            Ok(d) => d,
            Err(Resolve::NotFound) | Err(Resolve::NotDir) => return Ok(()),
            Err(r) => return Err(self.unresolved(e, r)),
        };
        let fd =
            rfs::openat(&*dir, ".", DIR_FLAGS, Mode::empty()).map_err(|err| self.io(e, err))?;
        self.invalidate();
        self.clear_lower(e, &fd, &parent.join(&b'/'))
    }

    /// Remove the children of `dir` that this layer did not make, descending into lower
    /// directories this layer wrote into.
    fn clear_lower(&mut self, e: &Entry, dir: &OwnedFd, key: &[u8]) -> Result<()> {
        let mut children = Vec::new();
        for entry in Dir::read_from(dir).map_err(|err| self.io(e, err))? {
            let entry = entry.map_err(|err| self.io(e, err))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                children.push(name.to_vec());
            }
        }
        for name in children {
            let st = match rfs::statat(dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::NOENT) => continue,
                Err(err) => return Err(self.io(e, err)),
            };
            let id = inode_id(&st);
            let (created, touched) = match &self.marks {
                Some(m) => (m.created.contains(&id), m.touched.contains(&id)),
                None => (false, false),
            };
            let child_key = if key.is_empty() {
                name.clone()
            } else {
                [key, b"/", &name].concat()
            };
            if created {
                continue;
            }
            if touched && file_type(&st) == FileType::Directory {
                let sub = rfs::openat(dir, name.as_slice(), DIR_FLAGS, Mode::empty())
                    .map_err(|err| self.io(e, err))?;
                self.clear_lower(e, &sub, &child_key)?;
            } else {
                remove_tree(dir.as_fd(), &name).map_err(|err| self.io(e, err))?;
                self.forget(&child_key);
            }
        }
        Ok(())
    }
}
