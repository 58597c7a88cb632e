//! The container's working directory: created in the rootfs when the image lacks it (as Docker
//! and runc do), without following symlinks out of the rootfs.

use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use super::error::{Result, RuntimeError};

fn open_dir(at: &OwnedFd, name: &str) -> std::result::Result<OwnedFd, Errno> {
    rustix::fs::openat(
        at,
        name,
        OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::RDONLY,
        Mode::empty(),
    )
}

/// Make sure the absolute path `cwd` exists under `rootfs`: missing directories are created
/// (mode 0755, owned by root). A symlink on the way is left to the container to resolve.
pub(crate) fn ensure(rootfs: &Path, cwd: &str) -> Result<()> {
    let not_dir = |what: &str| {
        RuntimeError::option(
            "--workdir",
            cwd,
            format!("{what} is not a directory in the container: pick another working directory"),
        )
    };
    let mut dir = rustix::fs::open(
        rootfs,
        OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::RDONLY,
        Mode::empty(),
    )
    .map_err(|e| RuntimeError::io_at(rootfs, e.into()))?;
    let mut walked = String::new();
    for name in cwd.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if name == ".." {
            // Resolving `..` needs the container's view: leave the path to the runtime.
            return Ok(());
        }
        walked.push('/');
        walked.push_str(name);
        dir = match open_dir(&dir, name) {
            Ok(next) => next,
            Err(Errno::NOENT) => {
                match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => {
                        return Err(RuntimeError::io(
                            format!(
                                "failed to create the working directory {walked} in the rootfs"
                            ),
                            std::io::Error::from(e),
                        ))
                    }
                }
                open_dir(&dir, name).map_err(|e| {
                    RuntimeError::io(
                        format!("failed to open the working directory {walked} in the rootfs"),
                        std::io::Error::from(e),
                    )
                })?
            }
            // A symlink: the container resolves it inside its own root.
            Err(Errno::LOOP) => return Ok(()),
            Err(Errno::NOTDIR) => {
                let st = rustix::fs::statat(&dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW);
                return match st {
                    Ok(st) if (st.st_mode & 0o170000) == 0o120000 => Ok(()),
                    _ => Err(not_dir(&walked)),
                };
            }
            Err(e) => {
                return Err(RuntimeError::io(
                    format!("failed to open the working directory {walked} in the rootfs"),
                    std::io::Error::from(e),
                ))
            }
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_directories_are_created_and_files_refused() {
        let root = tempfile::tempdir().unwrap();
        ensure(root.path(), "/srv/app/./data").unwrap();
        assert!(root.path().join("srv/app/data").is_dir());
        ensure(root.path(), "/srv/app").unwrap();
        ensure(root.path(), "/").unwrap();
        std::fs::write(root.path().join("srv/file"), "x").unwrap();
        let err = ensure(root.path(), "/srv/file/sub")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/srv/file is not a directory"), "{err}");
    }

    #[test]
    fn symlinks_are_not_followed_out_of_the_rootfs() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("escape")).unwrap();
        ensure(root.path(), "/escape/made").unwrap();
        assert!(!outside.path().join("made").exists());
        std::os::unix::fs::symlink("/etc/hostname", root.path().join("f")).unwrap();
        ensure(root.path(), "/f/sub").unwrap();
        ensure(root.path(), "/x/../y").unwrap();
        assert!(!root.path().join("y").exists());
    }
}
