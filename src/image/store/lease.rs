//! Staging space in `<root>/tmp/`: a lease is a directory there whose `lease` file a live
//! writer keeps locked and lists the blobs it relies on (prune keeps those); whatever is left
//! in `tmp/` without a live lease (except the partial downloads kept for resuming), and stray
//! temp files, are removed by the next exclusive lock.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use crate::image::digest::Digest;
use crate::image::error::{ImageError, Result};

use super::partial::PARTIAL_DIR;

/// The store's staging directory.
pub const TMP_DIR: &str = "tmp";
/// Name of the locked file inside a lease directory.
const LEASE_FILE: &str = "lease";
/// Prefix of the temp files `layout::write_atomic` and `Stage` create.
const TEMP_PREFIX: &str = ".rrun-tmp-";

/// A private directory in `<root>/tmp/` that lives as long as this value (and this process).
#[derive(Debug)]
pub struct TempLease {
    dir: PathBuf,
    file: Mutex<File>,
    listed: Mutex<BTreeSet<Digest>>,
}

impl TempLease {
    /// Create a lease in the store at `root`. The caller holds a store lock, so no cleanup
    /// can run before the lease file is locked.
    pub(crate) fn create(root: &Path) -> Result<Self> {
        let tmp = root.join(TMP_DIR);
        let dir = tempfile::Builder::new()
            .prefix("lease-")
            .tempdir_in(&tmp)
            .map_err(|e| ImageError::io_at(&tmp, e))?
            .keep();
        let path = dir.join(LEASE_FILE);
        let file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .and_then(|f| f.try_lock().map(|()| f).map_err(io::Error::from))
            .map_err(|e| {
                let _ = fs::remove_dir_all(&dir);
                ImageError::io_at(&path, e)
            })?;
        Ok(Self {
            dir,
            file: Mutex::new(file),
            listed: Mutex::new(BTreeSet::new()),
        })
    }

    /// The directory, for temp files that must be on the store's filesystem.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Record that this writer relies on blob `digest`: `image prune` keeps it while the
    /// lease lives, even if no image refers to it yet.
    pub fn protect(&self, digest: &Digest) -> Result<()> {
        let mut listed = self.listed.lock().unwrap_or_else(PoisonError::into_inner);
        if listed.contains(digest) {
            return Ok(());
        }
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        writeln!(file, "{digest}").map_err(|e| ImageError::io_at(self.dir.join(LEASE_FILE), e))?;
        listed.insert(digest.clone());
        Ok(())
    }
}

impl Drop for TempLease {
    fn drop(&mut self) {
        // Best effort: a leftover is removed by the next exclusive lock.
        let _ = remove_tree(&self.dir);
    }
}

/// The blobs live leases (other than those this process can lock, i.e. dead ones) protect.
pub(crate) fn live_leases(root: &Path) -> Result<BTreeSet<Digest>> {
    let mut out = BTreeSet::new();
    for dir in entries(&root.join(TMP_DIR))? {
        let path = dir.join(LEASE_FILE);
        let Ok(file) = File::open(&path) else {
            continue;
        };
        match file.try_lock_shared() {
            // Nobody holds it: a dead writer's lease, about to be cleaned up.
            Ok(()) => continue,
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(ImageError::io_at(&path, e)),
        }
        let text = fs::read_to_string(&path).map_err(|e| ImageError::io_at(&path, e))?;
        out.extend(text.lines().filter_map(|l| Digest::parse(l.trim()).ok()));
    }
    Ok(out)
}

/// Remove what crashed or killed writers left behind: `tmp/` entries without a live lease
/// and temp files next to `index.json` and the blobs. Called with the exclusive lock held.
pub(crate) fn clean_leftovers(root: &Path, blobs_dir: &Path) -> Result<()> {
    for entry in entries(&root.join(TMP_DIR))? {
        if entry.file_name() == Some(OsStr::new(PARTIAL_DIR)) {
            // Kept for resuming; `partial::sweep` decides about its files.
            continue;
        }
        let lease = entry.join(LEASE_FILE);
        let live = File::open(&lease)
            .map(|f| matches!(f.try_lock(), Err(TryLockError::WouldBlock)))
            .unwrap_or(false);
        if !live {
            remove_tree(&entry)?;
        }
    }
    for dir in [root, blobs_dir] {
        for entry in entries(dir)? {
            let temp = entry
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(TEMP_PREFIX));
            if temp && entry.is_file() {
                fs::remove_file(&entry).map_err(|e| ImageError::io_at(&entry, e))?;
            }
        }
    }
    Ok(())
}

/// The entries of a directory (none if it does not exist).
pub(crate) fn entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let read = match fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ImageError::io_at(dir, e)),
    };
    read.map(|e| e.map(|e| e.path()))
        .collect::<io::Result<Vec<_>>>()
        .map_err(|e| ImageError::io_at(dir, e))
}

/// Remove a file or a whole tree, making read-only directories (snapshots) writable first.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ImageError::io_at(path, e)),
    };
    if !meta.is_dir() {
        return fs::remove_file(path).map_err(|e| ImageError::io_at(path, e));
    }
    if fs::remove_dir_all(path).is_ok() {
        return Ok(());
    }
    // Something refused: open up every directory (never following links) and try again.
    fn open_up(dir: &Path) {
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
        if let Ok(read) = fs::read_dir(dir) {
            for e in read.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    open_up(&e.path());
                }
            }
        }
    }
    open_up(path);
    fs::remove_dir_all(path).map_err(|e| ImageError::io_at(path, e))
}
