//! Staging directories: made 0700 with a random name in a given directory, renamed into place
//! (never over anything) on success, removed without following symlinks otherwise.

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, Mode, RenameFlags};
use rustix::io::Errno;

use super::remove::remove_tree;
use super::root::DIR_FLAGS;
use crate::image::error::{ImageError, Result};

/// A staging directory, removed on drop unless committed.
#[derive(Debug)]
pub(super) struct Staging {
    dir_fd: OwnedFd,
    dir: PathBuf,
    name: OsString,
    committed: bool,
}

fn random_suffix() -> String {
    let mut b = [0u8; 8];
    // The name only needs to be unlikely to collide; a clash is retried.
    if getrandom::getrandom(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b = (t as u64 ^ u64::from(std::process::id())).to_le_bytes();
    }
    hex::encode(b)
}

impl Staging {
    /// A new empty 0700 directory `<dir>/<prefix><random>`.
    pub(super) fn new_in(dir: &Path, prefix: &str) -> Result<Self> {
        let dir_fd = rfs::open(dir, DIR_FLAGS, Mode::empty())
            .map_err(|e| ImageError::io_at(dir, e.into()))?;
        for _ in 0..16 {
            let name = OsString::from(format!("{prefix}{}", random_suffix()));
            match rfs::mkdirat(&dir_fd, name.as_bytes(), Mode::from_raw_mode(0o700)) {
                Ok(()) => {
                    return Ok(Self {
                        dir_fd,
                        dir: dir.to_path_buf(),
                        name,
                        committed: false,
                    })
                }
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(ImageError::io_at(dir.join(&name), e.into())),
            }
        }
        Err(ImageError::io_at(
            dir,
            std::io::Error::other("cannot find a free staging directory name"),
        ))
    }

    /// A staging directory beside `dest`, which must not exist yet (its parent must).
    pub(super) fn beside(dest: &Path) -> Result<Self> {
        let name = dest.file_name().ok_or_else(|| {
            ImageError::io_at(
                dest,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "the unpack destination needs a final path component",
                ),
            )
        })?;
        match std::fs::symlink_metadata(dest) {
            Ok(_) => {
                return Err(ImageError::DestinationExists {
                    path: dest.to_path_buf(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ImageError::io_at(dest, e)),
        }
        let parent = parent_of(dest);
        Self::new_in(&parent, &format!(".{}.unpack-", name.to_string_lossy()))
    }

    /// Its path.
    pub(super) fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// Rename it to `to` (same filesystem), failing if `to` exists. On failure the staging
    /// directory is still there (and removed on drop).
    pub(super) fn commit(&mut self, to: &Path) -> std::result::Result<(), Errno> {
        let to_dir = parent_of(to);
        let to_name = to.file_name().ok_or(Errno::INVAL)?;
        let to_fd = rfs::open(&to_dir, DIR_FLAGS, Mode::empty())?;
        rfs::renameat_with(
            &self.dir_fd,
            self.name.as_bytes(),
            &to_fd,
            to_name.as_bytes(),
            RenameFlags::NOREPLACE,
        )?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: a failure leaves a hidden `.unpack-` directory for prune.
            let _ = remove_tree(self.dir_fd.as_fd(), self.name.as_bytes());
        }
    }
}

/// The parent directory of a path (`.` for a bare name).
pub(super) fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// True when other users cannot reach anything below `dir`: it, or one of its ancestors,
/// belongs to this user and denies search to group and others.
pub(super) fn is_private(dir: &Path) -> Result<bool> {
    let me = rustix::process::geteuid().as_raw();
    let dir = std::fs::canonicalize(dir).map_err(|e| ImageError::io_at(dir, e))?;
    let mut cur = Some(dir.as_path());
    while let Some(d) = cur {
        let md = std::fs::metadata(d).map_err(|e| ImageError::io_at(d, e))?;
        if md.uid() == me && md.mode() & 0o011 == 0 {
            return Ok(true);
        }
        cur = d.parent();
    }
    Ok(false)
}

/// fsync a directory (after a rename into it).
pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    let fd =
        rfs::open(dir, DIR_FLAGS, Mode::empty()).map_err(|e| ImageError::io_at(dir, e.into()))?;
    rfs::fsync(&fd).map_err(|e| ImageError::io_at(dir, e.into()))
}

/// The sorted names in a directory (tests).
#[cfg(test)]
pub(super) fn names_in(dir: &Path) -> Vec<Vec<u8>> {
    use std::os::unix::ffi::OsStringExt;
    let mut v: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_vec())
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn staging_is_private_removed_on_drop_and_never_renamed_over() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("dest");
        {
            let s = Staging::beside(&dest).unwrap();
            let md = std::fs::metadata(s.path()).unwrap();
            assert_eq!(md.permissions().mode() & 0o777, 0o700);
            std::fs::create_dir_all(s.path().join("a/b")).unwrap();
            std::os::unix::fs::symlink("/etc", s.path().join("a/etc")).unwrap();
        }
        assert!(names_in(tmp.path()).is_empty());
        let mut s = Staging::beside(&dest).unwrap();
        std::fs::create_dir(&dest).unwrap();
        assert_eq!(s.commit(&dest), Err(Errno::EXIST));
        drop(s);
        assert_eq!(names_in(tmp.path()), vec![b"dest".to_vec()]);
        assert!(matches!(
            Staging::beside(&dest),
            Err(ImageError::DestinationExists { .. })
        ));
    }

    #[test]
    fn privacy_needs_a_closed_ancestor_of_ours() {
        let tmp = tempfile::tempdir().unwrap();
        let open = tmp.path().join("open");
        std::fs::create_dir_all(open.join("sub")).unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(open.join("sub"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let tmp_is_private = is_private(&std::env::temp_dir()).unwrap();
        assert_eq!(is_private(&open.join("sub")).unwrap(), tmp_is_private);
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(is_private(&open.join("sub")).unwrap());
    }
}
