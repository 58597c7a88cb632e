//! Removing a tree inside a root without following symlinks and without recursion: one open
//! directory at a time, a stack of names, and a checked `..` to climb back.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self as rfs, AtFlags, Dir, FileType, Mode};
use rustix::io::Errno;

use super::root::{file_type, inode_id, InodeId, DIR_FLAGS};

/// Open a directory to empty it, making it writable and searchable for its owner first.
fn open_for_removal(parent: BorrowedFd<'_>, name: &[u8]) -> Result<(OwnedFd, InodeId), Errno> {
    let fd = match rfs::openat(parent, name, DIR_FLAGS, Mode::empty()) {
        Err(Errno::ACCESS) => {
            // A 0500-style directory of our own when not root: only its mode is in the way.
            let st = rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
            if file_type(&st) != FileType::Directory {
                return Err(Errno::NOTDIR);
            }
            rfs::chmodat(parent, name, Mode::from_raw_mode(0o700), AtFlags::empty())?;
            rfs::openat(parent, name, DIR_FLAGS, Mode::empty())?
        }
        other => other?,
    };
    let st = rfs::fstat(&fd)?;
    if st.st_mode & 0o700 != 0o700 {
        // Ignored on failure: as root the mode does not matter.
        let _ = rfs::fchmod(&fd, Mode::from_raw_mode(0o700));
    }
    Ok((fd, inode_id(&st)))
}

/// Unlink every non-directory in `dir` and return the names of its subdirectories.
fn clear_files(dir: &OwnedFd) -> Result<Vec<Vec<u8>>, Errno> {
    let mut subdirs = Vec::new();
    for entry in Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let is_dir = match entry.file_type() {
            FileType::Directory => true,
            FileType::Unknown => match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => file_type(&st) == FileType::Directory,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(e),
            },
            _ => false,
        };
        if is_dir {
            subdirs.push(name.to_vec());
        } else {
            match rfs::unlinkat(dir, name, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(subdirs)
}

/// Remove `name` in `parent` and everything below it. Symlinks are removed, never followed;
/// a missing `name` is not an error.
pub(super) fn remove_tree(parent: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
    let st = match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if file_type(&st) != FileType::Directory {
        return match rfs::unlinkat(parent, name, AtFlags::empty()) {
            Err(Errno::NOENT) => Ok(()),
            other => other,
        };
    }
    struct Frame {
        name: Vec<u8>,
        id: InodeId,
        pending: Vec<Vec<u8>>,
    }
    let (mut cur, id) = open_for_removal(parent, name)?;
    let pending = clear_files(&cur)?;
    let mut stack = vec![Frame {
        name: name.to_vec(),
        id,
        pending,
    }];
    loop {
        let top = stack
            .last_mut()
            .expect("the stack holds the tree's root until the end");
        if let Some(sub) = top.pending.pop() {
            let (next, id) = match open_for_removal(cur.as_fd(), &sub) {
                Ok(x) => x,
                Err(Errno::NOENT) => continue,
                Err(Errno::NOTDIR) | Err(Errno::LOOP) => {
                    // Replaced by a non-directory since it was listed.
                    rfs::unlinkat(&cur, sub.as_slice(), AtFlags::empty())?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            cur = next;
            let pending = clear_files(&cur)?;
            stack.push(Frame {
                name: sub,
                id,
                pending,
            });
            continue;
        }
        let done = stack.pop().expect("checked above");
        let Some(parent_frame) = stack.last() else {
            drop(cur);
            return match rfs::unlinkat(parent, done.name.as_slice(), AtFlags::REMOVEDIR) {
                Err(Errno::NOENT) => Ok(()),
                other => other,
            };
        };
        let up = rfs::openat(&cur, "..", DIR_FLAGS, Mode::empty())?;
        if inode_id(&rfs::fstat(&up)?) != parent_frame.id {
            return Err(Errno::XDEV);
        }
        debug_assert_ne!(done.id, parent_frame.id);
        rfs::unlinkat(&up, done.name.as_slice(), AtFlags::REMOVEDIR)?;
        cur = up;
    }
}

/// Remove a path (a staging directory) and everything below it.
pub(super) fn remove_path(path: &std::path::Path) -> std::io::Result<()> {
    let parent = path.parent().unwrap_or(std::path::Path::new("/"));
    let Some(name) = path.file_name() else {
        return Ok(());
    };
    let dir = rfs::open(parent, DIR_FLAGS, Mode::empty())?;
    use std::os::unix::ffi::OsStrExt;
    remove_tree(dir.as_fd(), name.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn removes_deep_trees_without_following_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), b"x").unwrap();
        let t = tmp.path().join("t");
        // Deeper than PATH_MAX allows in one call: build it step by step.
        let mut cur = rfs::open(tmp.path(), DIR_FLAGS, Mode::empty()).unwrap();
        for name in std::iter::once("t").chain(std::iter::repeat_n("d", 3000)) {
            rfs::mkdirat(&cur, name, Mode::from_raw_mode(0o755)).unwrap();
            rfs::symlinkat(outside.as_os_str(), &cur, "link").ok();
            cur = rfs::openat(&cur, name, DIR_FLAGS, Mode::empty()).unwrap();
        }
        rfs::symlinkat(outside.as_os_str(), &cur, "out").unwrap();
        std::fs::create_dir_all(t.join("ro/sub")).unwrap();
        std::fs::write(t.join("ro/sub/f"), b"").unwrap();
        std::fs::set_permissions(t.join("ro"), std::fs::Permissions::from_mode(0o500)).unwrap();
        symlink(&outside, t.join("dirlink")).unwrap();
        remove_path(&t).unwrap();
        assert!(!t.exists());
        assert_eq!(std::fs::read(outside.join("keep")).unwrap(), b"x");
        remove_path(&t).unwrap();
    }
}
