//! The local image store under `--root`. The root IS an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/`), so skopeo and umoci read it as `oci:<root>:<name>`; each
//! image's `index.json` entry carries its full normalised name as
//! `org.opencontainers.image.ref.name`. Beside the layout: `snapshots/<diff_id hex>/` (unpacked
//! layers), `tmp/` (staging, same filesystem, with resumable downloads in `tmp/partial/`) and
//! `lock`. Nothing else lives at the top.
//!
//! Every write is a temp file, fsync, rename (and fsync of the directory); `index.json` is
//! read, changed and replaced under the exclusive lock, so concurrent rrun processes serialise
//! and a crash at any moment leaves a valid store. Leftovers of crashed writers are removed by
//! the next exclusive lock; unreferenced blobs and snapshots by [`Store::prune`].

mod destination;
mod images;
mod lease;
mod lock;
mod partial;
mod prune;
mod refs;
mod resolve;
mod transfer;
mod walk;

#[cfg(test)]
mod tests;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::digest::Digest;
use super::error::{ImageError, Result};
use super::layout::{self, Layout, INDEX_JSON, OCI_LAYOUT_FILE, OCI_LAYOUT_JSON};
use super::manifest::{Descriptor, Index};

pub use destination::{IncomingBlob, StoreDestination};
pub use images::ImageSummary;
pub use lease::{TempLease, TMP_DIR};
pub use lock::{set_lock_notice, LockMode, StoreLock, LOCK_FILE};
pub use partial::{partial_path, PartialBlob, PARTIAL_DIR};
pub use prune::PruneSummary;
pub use refs::Removed;
pub use resolve::{parse_new_name, store_name, MIN_ID_PREFIX};
pub use transfer::copy_image;

pub(crate) use transfer::{open_destination, open_source};

/// Unpacked layers: `snapshots/<hex of diff_id>/`.
pub const SNAPSHOTS_DIR: &str = "snapshots";

/// Content-trust keys and verified metadata: `trust/` (written by the trust commands).
pub const TRUST_DIR: &str = "trust";

/// The entries a store root may hold (plus temp files of atomic writes).
const STORE_ENTRIES: [&str; 7] = [
    OCI_LAYOUT_FILE,
    INDEX_JSON,
    "blobs",
    SNAPSHOTS_DIR,
    TMP_DIR,
    LOCK_FILE,
    TRUST_DIR,
];

/// An open image store. Cheap to clone; clones share the lock.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    layout: Layout,
    lock: Arc<lock::LockFile>,
}

/// Create a directory with `mode` unless it exists.
fn ensure_dir(dir: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(ImageError::io_at(dir, e)),
    }
}

/// Refuse a root that is not a directory or holds anything a store does not.
fn check_entries(root: &Path) -> Result<()> {
    if !root.is_dir() {
        return Err(ImageError::NotAStore {
            root: root.into(),
            entry: "(it is a file, not a directory)".into(),
        });
    }
    for entry in lease::entries(root)? {
        let name = entry
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !STORE_ENTRIES.contains(&name.as_str()) && !name.starts_with(".rrun-tmp-") {
            return Err(ImageError::NotAStore {
                root: root.into(),
                entry: name,
            });
        }
    }
    Ok(())
}

impl Store {
    /// Open the store at `root`, creating it (the root `rwx------`) when the directory is
    /// missing or empty, and completing one a crash left half-created. A directory holding
    /// anything else is refused with [`ImageError::NotAStore`].
    pub fn open(root: &Path) -> Result<Self> {
        match fs::metadata(root) {
            Ok(_) => check_entries(root)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
                    fs::create_dir_all(parent).map_err(|e| ImageError::io_at(parent, e))?;
                }
                ensure_dir(root, 0o700)?;
            }
            Err(e) => return Err(ImageError::io_at(root, e)),
        }
        let canonical = fs::canonicalize(root).map_err(|e| ImageError::io_at(root, e))?;
        let store = Self {
            root: root.to_path_buf(),
            layout: Layout::new_unchecked(root),
            lock: lock::LockFile::for_root(&canonical)?,
        };
        if !store.is_complete() {
            let _guard = store.lock(LockMode::Exclusive)?;
            store.complete()?;
        }
        // Checks the oci-layout version of a store that was an existing layout.
        Layout::open(root)?;
        Ok(store)
    }

    /// Open a store that must already exist (for readers: nothing is created).
    pub fn open_existing(root: &Path) -> Result<Self> {
        if !root.join(OCI_LAYOUT_FILE).is_file() {
            if root.exists() {
                check_entries(root)?;
            }
            return Err(ImageError::NoStore { root: root.into() });
        }
        Self::open(root)
    }

    fn is_complete(&self) -> bool {
        let r = &self.root;
        r.join(OCI_LAYOUT_FILE).is_file()
            && r.join(INDEX_JSON).is_file()
            && self.layout.blobs_dir().is_dir()
            && r.join(SNAPSHOTS_DIR).is_dir()
            && r.join(TMP_DIR).is_dir()
    }

    /// Create what is missing, under the exclusive lock; `index.json` comes last, so a
    /// store is complete only when all of it is there.
    fn complete(&self) -> Result<()> {
        let r = &self.root;
        ensure_dir(&r.join("blobs"), 0o755)?;
        ensure_dir(&self.layout.blobs_dir(), 0o755)?;
        ensure_dir(&r.join(SNAPSHOTS_DIR), 0o700)?;
        ensure_dir(&r.join(TMP_DIR), 0o700)?;
        if !r.join(OCI_LAYOUT_FILE).exists() {
            layout::write_atomic(&r.join(OCI_LAYOUT_FILE), OCI_LAYOUT_JSON)?;
        }
        if !r.join(INDEX_JSON).exists() {
            let empty = serde_json::to_vec(&Index::empty())
                .map_err(|e| ImageError::malformed("index.json", e.to_string()))?;
            layout::write_atomic(&r.join(INDEX_JSON), &empty)?;
        }
        layout::sync_dir(r)
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The store as an OCI image layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Where the snapshot of the layer with `diff_id` lives (`snapshots/<hex>/`).
    pub fn snapshot_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join(SNAPSHOTS_DIR).join(diff_id.hex())
    }

    /// Take the store lock. Guards nest within a process (an exclusive guard taken while a
    /// shared one is held converts the lock, and turns it back when dropped). The first
    /// exclusive guard removes what crashed writers left in `tmp/` and temp files.
    pub fn lock(&self, mode: LockMode) -> Result<StoreLock> {
        let newly_exclusive = self.lock.acquire(mode)?;
        let guard = StoreLock::new(self.lock.clone(), mode);
        if newly_exclusive {
            // Best effort: what cannot be removed now is tried again next time.
            let _ = lease::clean_leftovers(&self.root, &self.layout.blobs_dir());
            let _ = partial::sweep(
                &self.root,
                &self.layout.blobs_dir(),
                partial::Sweep::KeepForResume,
            );
        }
        Ok(guard)
    }

    /// A private staging directory in `tmp/`, kept (and its protected blobs kept from prune)
    /// while the value lives. Hold a store lock while creating and using it.
    pub fn temp_lease(&self) -> Result<TempLease> {
        TempLease::create(&self.root)
    }

    /// True when the blob is stored with the declared size.
    pub fn has_blob(&self, desc: &Descriptor) -> bool {
        fs::metadata(self.layout.blob_path(&desc.digest))
            .is_ok_and(|m| m.is_file() && m.len() == desc.size)
    }

    /// Read `index.json`; a corrupted one is [`ImageError::CorruptStoreIndex`].
    pub fn read_index(&self) -> Result<Index> {
        self.layout.read_index().map_err(|e| match e {
            ImageError::Malformed { reason, .. } => ImageError::CorruptStoreIndex {
                path: self.root.join(INDEX_JSON),
                reason,
            },
            ImageError::TooLarge { size, limit, .. } => ImageError::CorruptStoreIndex {
                path: self.root.join(INDEX_JSON),
                reason: format!("{size} bytes, more than the limit of {limit}"),
            },
            other => other,
        })
    }

    /// Read-modify-write `index.json` under the exclusive lock; it is replaced (atomically)
    /// only when `edit` succeeds and changed something.
    pub(crate) fn edit_index<T>(&self, edit: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
        let _guard = self.lock(LockMode::Exclusive)?;
        let mut index = self.read_index()?;
        let before = index.clone();
        let out = edit(&mut index)?;
        if index != before {
            self.layout.write_index(&index)?;
        }
        Ok(out)
    }

    /// The `index.json` entry of the image `name` names: a name as given to the store
    /// (`busybox` is `docker.io/library/busybox:latest`), `NAME@DIGEST`, a full image id
    /// (`sha256:` optional), or a unique prefix of at least [`MIN_ID_PREFIX`] hex digits.
    pub fn resolve(&self, name: &str) -> Result<Descriptor> {
        let _guard = self.lock(LockMode::Shared)?;
        resolve::resolve_in(&self.read_index()?, name, &self.root)
    }

    /// Every name of the image with the digest of `entry`, sorted.
    pub fn names_of(&self, entry: &Descriptor) -> Result<Vec<String>> {
        let _guard = self.lock(LockMode::Shared)?;
        Ok(resolve::names_of(&self.read_index()?, entry))
    }
}
