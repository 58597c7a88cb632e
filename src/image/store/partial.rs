//! Resumable downloads: a blob received from a registry is written at a fixed path,
//! `tmp/partial/<hex>`, which its writer keeps locked (one writer per blob across processes);
//! the `tmp/` cleaner keeps these files so that a pull killed at any moment resumes where it
//! stopped, `image prune` removes the ones nobody holds, and a complete, verified one is
//! renamed into `blobs/sha256/` by [`StoreDestination::commit_partial`].
//!
//! [`StoreDestination::commit_partial`]: super::StoreDestination::commit_partial

use std::fs::{self, File, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::image::digest::Digest;
use crate::image::error::{ImageError, Result};

use super::lease::{self, TMP_DIR};

/// The directory of partial downloads, inside `tmp/`.
pub const PARTIAL_DIR: &str = "partial";

/// A blob being downloaded: its locked file at `tmp/partial/<hex>`, how much of it is there
/// and the hash of those bytes. Writes append. The lock is released when it is dropped.
#[derive(Debug)]
pub struct PartialBlob {
    file: File,
    path: PathBuf,
    len: u64,
    hasher: Sha256,
}

/// Where the partial download of `digest` lives in the store at `root`.
pub fn partial_path(root: &Path, digest: &Digest) -> PathBuf {
    root.join(TMP_DIR).join(PARTIAL_DIR).join(digest.hex())
}

impl PartialBlob {
    /// Lock (waiting for another writer of the same blob) and open the partial file of
    /// `digest`, created empty if missing. `None` once `stored()` says the blob is in the
    /// store (checked again after every wait); a partial left then is removed.
    pub(crate) fn lock(
        root: &Path,
        digest: &Digest,
        size: u64,
        stored: impl Fn() -> Result<bool>,
    ) -> Result<Option<Self>> {
        let path = partial_path(root, digest);
        let dir = root.join(TMP_DIR).join(PARTIAL_DIR);
        super::ensure_dir(&dir, 0o700)?;
        loop {
            if stored()? {
                return Ok(None);
            }
            let file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| ImageError::io_at(&path, e))?;
            file.lock().map_err(|e| ImageError::io_at(&path, e))?;
            // The writer before us may have stored or removed the file meanwhile.
            let held = file.metadata().map_err(|e| ImageError::io_at(&path, e))?;
            let current = fs::metadata(&path)
                .is_ok_and(|now| now.ino() == held.ino() && now.dev() == held.dev());
            if !current {
                continue;
            }
            if stored()? {
                let _ = fs::remove_file(&path);
                return Ok(None);
            }
            return Self::resume(file, path, size).map(Some);
        }
    }

    /// Hash what the file already holds (a prefix left by an interrupted pull); a file longer
    /// than the blob is emptied.
    fn resume(file: File, path: PathBuf, size: u64) -> Result<Self> {
        let mut p = Self {
            file,
            path,
            len: 0,
            hasher: Sha256::new(),
        };
        let len = p.file.metadata().map_err(|e| p.io(e))?.len();
        if len > size {
            p.restart()?;
            return Ok(p);
        }
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = p.file.read(&mut buf).map_err(|e| p.io(e))?;
            if n == 0 {
                break;
            }
            p.hasher.update(&buf[..n]);
            p.len += n as u64;
        }
        Ok(p)
    }

    fn io(&self, e: io::Error) -> ImageError {
        ImageError::io_at(&self.path, e)
    }

    /// Bytes held (where a `Range` request resumes).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The digest of the bytes held.
    pub fn digest(&self) -> Digest {
        Digest::from_sha256(self.hasher.clone().finalize().into())
    }

    /// Drop the content and start again from byte 0.
    pub fn restart(&mut self) -> Result<()> {
        self.file.set_len(0).map_err(|e| self.io(e))?;
        self.file.seek(SeekFrom::Start(0)).map_err(|e| self.io(e))?;
        self.len = 0;
        self.hasher = Sha256::new();
        Ok(())
    }

    /// Remove the file (its bytes are wrong); the lock goes with it.
    pub fn discard(self) {
        // Best effort: a leftover is removed by the next prune.
        let _ = fs::remove_file(&self.path);
    }

    /// fsync the content, make it world-readable and rename it to `target`.
    pub(crate) fn persist(self, target: &Path) -> Result<()> {
        self.file.sync_all().map_err(|e| self.io(e))?;
        crate::image::layout::set_public_mode(&self.file, &self.path)?;
        // Renamed while still locked: a waiting writer then finds the path gone.
        fs::rename(&self.path, target).map_err(|e| ImageError::io_at(target, e))
    }
}

impl Write for PartialBlob {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// What the cleaner and prune do with a partial nobody holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sweep {
    /// Keep it for a later resume unless its blob is stored (or it is no partial at all).
    KeepForResume,
    /// Remove it.
    RemoveAll,
}

/// Remove the partial downloads no live writer holds (see [`Sweep`]); returns how many and
/// their bytes. Called with the exclusive store lock held.
pub(crate) fn sweep(root: &Path, blobs_dir: &Path, how: Sweep) -> Result<(usize, u64)> {
    let mut removed = (0, 0);
    for path in lease::entries(&root.join(TMP_DIR).join(PARTIAL_DIR))? {
        let digest = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| Digest::parse(&format!("sha256:{n}")).ok());
        let useless = match &digest {
            Some(d) => how == Sweep::RemoveAll || blobs_dir.join(d.hex()).is_file(),
            None => true,
        };
        if !useless {
            continue;
        }
        let meta = fs::symlink_metadata(&path).map_err(|e| ImageError::io_at(&path, e))?;
        if meta.is_file() {
            let file = File::open(&path).map_err(|e| ImageError::io_at(&path, e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => continue,
                Err(TryLockError::Error(e)) => return Err(ImageError::io_at(&path, e)),
            }
        }
        lease::remove_tree(&path)?;
        removed.0 += 1;
        removed.1 += meta.len();
    }
    Ok(removed)
}
