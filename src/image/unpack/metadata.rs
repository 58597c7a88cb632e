//! Entry metadata: ownership (when privileged), modes under the setuid policy, mtimes, and
//! the xattrs that may be kept (`user.*`; `trusted.overlay.opaque` and `security.capability`
//! when privileged; nothing else).

use std::os::fd::BorrowedFd;

use rustix::fs::{self as rfs, AtFlags, Gid, Mode, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;

use super::extract::Extractor;
use super::options::SetuidPolicy;
use super::tar_stream::Entry;
use crate::image::error::{ImageError, Result};

/// Set-user-ID and set-group-ID bits.
const SETID: u32 = 0o6000;
/// The file capability xattr (treated like a setuid bit).
pub(super) const CAPABILITY: &[u8] = b"security.capability";
/// overlayfs' opaque directory xattr.
pub(super) const OPAQUE: &[u8] = b"trusted.overlay.opaque";

/// The entry's mtime as access and modification times.
pub(super) fn times(e: &Entry) -> Timestamps {
    let t = Timespec {
        tv_sec: e.mtime.0,
        tv_nsec: i64::from(e.mtime.1),
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

impl Extractor {
    /// The numeric owner to set, or `None` when not privileged.
    pub(super) fn owner(&self, e: &Entry) -> Result<Option<(Uid, Gid)>> {
        if !self.settled.privileged {
            return Ok(None);
        }
        let id = |v: u64, what: &str| {
            u32::try_from(v)
                .ok()
                .filter(|v| *v != u32::MAX)
                .ok_or_else(|| ImageError::UnsafeEntry {
                    entry: e.display(),
                    reason: format!("{what} {v} is out of range"),
                })
        };
        Ok(Some((
            Uid::from_raw(id(e.uid, "uid")?),
            Gid::from_raw(id(e.gid, "gid")?),
        )))
    }

    /// The mode for a non-directory, under the setuid policy.
    pub(super) fn file_mode(&mut self, e: &Entry) -> u32 {
        match self.settled.setuid {
            SetuidPolicy::Strip => e.mode & !SETID,
            SetuidPolicy::Keep => {
                if e.mode & SETID != 0 {
                    self.setuid_seen = true;
                }
                e.mode
            }
        }
    }

    /// Owner of an entry that has no open descriptor (symlinks, devices, fifos), by name.
    pub(super) fn chown_at(&self, dir: BorrowedFd<'_>, name: &[u8], e: &Entry) -> Result<()> {
        if let Some((u, g)) = self.owner(e)? {
            rfs::chownat(dir, name, Some(u), Some(g), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|err| self.io(e, err))?;
        }
        Ok(())
    }

    /// Times of an entry by name (never following a symlink).
    pub(super) fn times_at(&self, dir: BorrowedFd<'_>, name: &[u8], e: &Entry) -> Result<()> {
        rfs::utimensat(dir, name, &times(e), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|err| self.io(e, err))
    }

    /// The xattrs that may be kept, on an open regular file or directory.
    pub(super) fn xattrs(&mut self, fd: BorrowedFd<'_>, e: &Entry) -> Result<()> {
        for (name, value) in &e.xattrs {
            let allowed = name.starts_with(b"user.")
                || (self.settled.privileged && name.as_slice() == OPAQUE)
                || (self.settled.privileged
                    && name.as_slice() == CAPABILITY
                    && self.settled.setuid == SetuidPolicy::Keep);
            if !allowed {
                self.skipped_xattrs += 1;
                continue;
            }
            if name.as_slice() == CAPABILITY {
                self.setuid_seen = true;
            }
            match rfs::fsetxattr(fd, name.as_slice(), value, XattrFlags::empty()) {
                Ok(()) => {}
                // A filesystem without xattrs (or this namespace): skipped, as Docker does.
                Err(Errno::NOTSUP) | Err(Errno::PERM) => self.skipped_xattrs += 1,
                Err(Errno::INVAL) | Err(Errno::RANGE) | Err(Errno::TOOBIG) => {
                    return Err(ImageError::UnsafeEntry {
                        entry: e.display(),
                        reason: format!(
                            "xattr {:?} cannot be set (bad name or value)",
                            String::from_utf8_lossy(name)
                        ),
                    })
                }
                Err(err) => return Err(self.io(e, err)),
            }
        }
        Ok(())
    }

    /// Owner, mode, xattrs and times of an open regular file, in the order that keeps them:
    /// chown clears setuid bits and capabilities, so it goes first.
    pub(super) fn file_metadata(&mut self, fd: BorrowedFd<'_>, e: &Entry) -> Result<()> {
        if let Some((u, g)) = self.owner(e)? {
            rfs::fchown(fd, Some(u), Some(g)).map_err(|err| self.io(e, err))?;
        }
        let mode = self.file_mode(e);
        rfs::fchmod(fd, Mode::from_raw_mode(mode)).map_err(|err| self.io(e, err))?;
        self.xattrs(fd, e)?;
        rfs::futimens(fd, &times(e)).map_err(|err| self.io(e, err))
    }

    /// Count xattrs that cannot go on this kind of entry.
    pub(super) fn skip_xattrs(&mut self, e: &Entry) {
        self.skipped_xattrs += e.xattrs.len() as u64;
    }
}
