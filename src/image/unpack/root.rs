//! `Root`: a directory descriptor and path resolution inside it, one component at a time with
//! `O_NOFOLLOW`. A symlink met on the way is read and followed *inside* the root (an absolute
//! target restarts at the root, `..` stops at the root: what the path means inside the
//! container), so no path ever resolves to anything outside it. `..` climbs through a checked
//! stack of directory identities, never through an unchecked kernel lookup.

use std::collections::{HashSet, VecDeque};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, FileType, Mode, OFlags};
use rustix::io::Errno;

/// Symlinks followed in one resolution (Linux `MAXSYMLINKS`).
pub(super) const MAX_SYMLINKS: u32 = 40;
/// Directory depth a resolution may reach.
pub(super) const MAX_DEPTH: usize = 2048;
/// Components one resolution may process, symlink expansions included.
const MAX_STEPS: usize = 1 << 16;

/// Identity of an inode.
pub(super) type InodeId = (u64, u64);

/// The identity of a stat result.
pub(super) fn inode_id(st: &rfs::Stat) -> InodeId {
    (st.st_dev, st.st_ino)
}

/// The file type of a stat result.
pub(super) fn file_type(st: &rfs::Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// Why a resolution stopped.
#[derive(Debug)]
pub(super) enum Resolve {
    /// A component does not exist (and creation was not asked for).
    NotFound,
    /// A component is neither a directory nor a symlink.
    NotDir,
    /// A loop, an over-deep path, or a directory that moved: refused.
    Unsafe(&'static str),
    /// A system call failed.
    Sys(Errno),
}

impl From<Errno> for Resolve {
    fn from(e: Errno) -> Self {
        Resolve::Sys(e)
    }
}

/// Inodes the current layer created, and existing directories it went into: what opaque
/// markers and whiteouts must spare when layers are applied on top of each other.
#[derive(Debug, Default)]
pub(super) struct Marks {
    pub created: HashSet<InodeId>,
    pub touched: HashSet<InodeId>,
}

/// The root directory of an unpack.
#[derive(Debug)]
pub(super) struct Root {
    fd: OwnedFd,
    id: InodeId,
    path: PathBuf,
}

const PATH_FLAGS: OFlags = OFlags::PATH.union(OFlags::NOFOLLOW).union(OFlags::CLOEXEC);
/// Flags to open a directory for reading, changing its metadata or listing it.
pub(super) const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

impl Root {
    /// Open an existing directory (not through a symlink) as a root.
    pub(super) fn open(path: &Path) -> std::io::Result<Self> {
        let fd = rfs::open(path, DIR_FLAGS, Mode::empty())?;
        let id = inode_id(&rfs::fstat(&fd)?);
        Ok(Self {
            fd,
            id,
            path: path.to_path_buf(),
        })
    }

    /// The root's own descriptor (opened for reading).
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The root's path, for messages.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    fn dup(&self) -> Result<OwnedFd, Errno> {
        rfs::openat(&self.fd, ".", PATH_FLAGS | OFlags::DIRECTORY, Mode::empty())
    }

    /// Resolve `components` to a directory inside the root, following symlinks inside the
    /// root. With `create`, missing directories are made (mode 0755). Directories passed
    /// through and made are recorded in `marks` when given.
    pub(super) fn resolve_dir(
        &self,
        components: &[Vec<u8>],
        create: bool,
        mut marks: Option<&mut Marks>,
    ) -> Result<OwnedFd, Resolve> {
        let mut queue: VecDeque<Vec<u8>> = components.iter().cloned().collect();
        let mut cur = self.dup()?;
        let mut cur_id = self.id;
        let mut ancestors: Vec<InodeId> = Vec::new();
        let mut links = 0;
        let mut steps = 0;
        while let Some(c) = queue.pop_front() {
            steps += 1;
            if steps > MAX_STEPS {
                return Err(Resolve::Unsafe("the path takes too many steps to resolve"));
            }
            match c.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    // At the root, `..` is the root itself.
                    if let Some(parent) = ancestors.pop() {
                        let up =
                            rfs::openat(&cur, "..", PATH_FLAGS | OFlags::DIRECTORY, Mode::empty())?;
                        if inode_id(&rfs::fstat(&up)?) != parent {
                            return Err(Resolve::Unsafe("a directory moved during the unpack"));
                        }
                        cur = up;
                        cur_id = parent;
                    }
                    continue;
                }
                _ => {}
            }
            match rfs::openat(&cur, c.as_slice(), PATH_FLAGS, Mode::empty()) {
                Ok(fd) => {
                    let st = rfs::fstat(&fd)?;
                    match file_type(&st) {
                        FileType::Directory => {
                            if ancestors.len() >= MAX_DEPTH {
                                return Err(Resolve::Unsafe("directories nest too deep"));
                            }
                            if let Some(m) = marks.as_deref_mut() {
                                m.touched.insert(inode_id(&st));
                            }
                            ancestors.push(cur_id);
                            cur = fd;
                            cur_id = inode_id(&st);
                        }
                        FileType::Symlink => {
                            links += 1;
                            if links > MAX_SYMLINKS {
                                return Err(Resolve::Unsafe("too many levels of symbolic links"));
                            }
                            let target = rfs::readlinkat(&fd, "", Vec::new())?.into_bytes();
                            if target.starts_with(b"/") {
                                cur = self.dup()?;
                                cur_id = self.id;
                                ancestors.clear();
                            }
                            for part in target.split(|b| *b == b'/').rev() {
                                queue.push_front(part.to_vec());
                            }
                        }
                        _ => return Err(Resolve::NotDir),
                    }
                }
                Err(Errno::NOENT) if create => {
                    match rfs::mkdirat(&cur, c.as_slice(), Mode::from_raw_mode(0o755)) {
                        Ok(()) => {
                            // Set the mode exactly, whatever the umask.
                            let made = rfs::openat(&cur, c.as_slice(), DIR_FLAGS, Mode::empty())?;
                            rfs::fchmod(&made, Mode::from_raw_mode(0o755))?;
                            if let Some(m) = marks.as_deref_mut() {
                                m.created.insert(inode_id(&rfs::fstat(&made)?));
                            }
                        }
                        Err(Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    // Open it (or whatever raced in) on the next turn.
                    queue.push_front(c);
                }
                Err(Errno::NOENT) => return Err(Resolve::NotFound),
                Err(Errno::NOTDIR) => return Err(Resolve::NotDir),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(cur)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn comps(s: &str) -> Vec<Vec<u8>> {
        s.split('/').map(|c| c.as_bytes().to_vec()).collect()
    }

    /// Where an fd points, through /proc (test only).
    fn where_is(fd: &OwnedFd) -> PathBuf {
        use std::os::fd::AsRawFd;
        std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap()
    }

    #[test]
    fn symlinks_are_rerooted_and_dotdot_stops_at_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(outside.join("etc")).unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        symlink(&outside, root.join("abs")).unwrap();
        symlink("../../../../..", root.join("a/b/up")).unwrap();
        symlink("/etc", root.join("etc-link")).unwrap();
        let r = Root::open(&root).unwrap();
        let root = std::fs::canonicalize(&root).unwrap();

        let fd = r.resolve_dir(&comps("a/b/up/etc"), false, None).unwrap();
        assert_eq!(where_is(&fd), root.join("etc"));
        let fd = r.resolve_dir(&comps("etc-link"), false, None).unwrap();
        assert_eq!(where_is(&fd), root.join("etc"));
        // The absolute target is re-rooted: `<root>/<outside path>` does not exist.
        assert!(matches!(
            r.resolve_dir(&comps("abs/etc"), false, None),
            Err(Resolve::NotFound)
        ));
        // With create, it is made inside the root.
        let fd = r.resolve_dir(&comps("abs/etc"), true, None).unwrap();
        let inside = root.join(outside.strip_prefix("/").unwrap()).join("etc");
        assert_eq!(where_is(&fd), inside);
        assert!(std::fs::read_dir(outside.join("etc"))
            .unwrap()
            .next()
            .is_none());
    }

    #[test]
    fn loops_and_files_in_the_path_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        symlink("l2", tmp.path().join("l1")).unwrap();
        symlink("l1", tmp.path().join("l2")).unwrap();
        symlink("self", tmp.path().join("self")).unwrap();
        std::fs::write(tmp.path().join("file"), b"").unwrap();
        let r = Root::open(tmp.path()).unwrap();
        for p in ["l1/x", "self", "self/x"] {
            assert!(
                matches!(
                    r.resolve_dir(&comps(p), true, None),
                    Err(Resolve::Unsafe(_))
                ),
                "{p}"
            );
        }
        assert!(matches!(
            r.resolve_dir(&comps("file/x"), true, None),
            Err(Resolve::NotDir)
        ));
    }

    #[test]
    fn marks_record_created_and_visited_directories() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("old")).unwrap();
        let r = Root::open(tmp.path()).unwrap();
        let mut m = Marks::default();
        r.resolve_dir(&comps("old/new/deeper"), true, Some(&mut m))
            .unwrap();
        let id = |p: &str| {
            use std::os::unix::fs::MetadataExt;
            let md = std::fs::metadata(tmp.path().join(p)).unwrap();
            (md.dev(), md.ino())
        };
        assert!(m.touched.contains(&id("old")));
        assert!(!m.created.contains(&id("old")));
        assert!(m.created.contains(&id("old/new")));
        assert!(m.created.contains(&id("old/new/deeper")));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(tmp.path().join("old/new"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755);
    }
}
