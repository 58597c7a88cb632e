//! THE SEAM between pull and the image store: where partial downloads are kept, how a
//! verified blob enters the store, and the one function, [`commit_pulled`], that names the
//! image in `index.json`.
//!
//! It follows the store's rules (DESIGN.md section 3; `src/image/store/`, written at the same
//! time, whose `StoreDestination` replaces this file): the pull holds `<root>/lock` shared from
//! [`open_store`] until [`commit_pulled`], which converts it to exclusive for the `index.json`
//! update; every blob is verified before it is renamed into `blobs/sha256/`, one by one, so a
//! later pull reuses what an interrupted one verified; nothing names the new blobs until the
//! commit, so a failed pull leaves `index.json` as it was (unreferenced verified blobs go at
//! the next prune). To switch to the store's writer, replace the bodies here (nothing else in
//! `registry/` touches the store's files):
//! - [`open_store`] -> `Store::open` + `Store::destination` (shared lock, lease);
//! - [`StoreHandle::has_blob`] -> `StoreDestination::has_blob` (also protects the blob);
//! - [`StoreHandle::store_verified`] -> `StoreDestination::commit_blob` (the store's version
//!   takes an `IncomingBlob` it hashes itself; a partial file that survives `kill -9` needs a
//!   deterministic path it keeps, which is what [`StoreHandle::partial_path`] gives);
//! - [`commit_pulled`] -> `StoreDestination::put_verified` for the manifest and config, then
//!   `StoreDestination::commit`.

use std::fs::{self, File};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use crate::image::digest::Digest;
use crate::image::error::{ImageError, Result};
use crate::image::layout::{self, Layout, INDEX_JSON, OCI_LAYOUT_FILE, OCI_LAYOUT_JSON};
use crate::image::manifest::{Descriptor, Index};
use crate::image::reference::ImageRef;
use crate::image::transport::Destination;

/// The store lock file (shared for readers, exclusive for writers).
const LOCK_FILE: &str = "lock";
/// Staging directory of the store.
const TMP_DIR: &str = "tmp";
/// Where partial and staged pulled blobs live, inside [`TMP_DIR`].
const PULL_DIR: &str = "pull";

/// An open store, as pull needs it: holds the store lock shared until dropped or committed.
#[derive(Debug)]
pub struct StoreHandle {
    root: PathBuf,
    layout: Layout,
    staging: PathBuf,
    lock: File,
}

/// An image ready to be committed: every layer verified and stored.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// The name it is stored under (`127.0.0.1:5000/app:1`).
    pub name: String,
    /// The `index.json` entry: the selected platform's manifest descriptor.
    pub manifest: Descriptor,
    /// Small verified blobs kept in memory (manifest, config).
    pub small_blobs: Vec<Vec<u8>>,
}

/// Open a file for reading and writing, creating it empty if missing, never truncating it.
pub fn open_rw(path: &Path) -> Result<File> {
    File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| ImageError::io_at(path, e))
}

/// Take the store lock (released when the file is dropped).
fn lock_store(root: &Path, exclusive: bool) -> Result<File> {
    let path = root.join(LOCK_FILE);
    let file = open_rw(&path)?;
    if exclusive {
        file.lock()
    } else {
        file.lock_shared()
    }
    .map_err(|e| ImageError::io_at(&path, e))?;
    Ok(file)
}

/// Open the store at `root`, creating it (an empty OCI layout) if the directory is missing or
/// empty; refuse a directory that holds something else.
pub fn open_store(root: &Path) -> Result<StoreHandle> {
    let allowed = [
        LOCK_FILE,
        TMP_DIR,
        "snapshots",
        "blobs",
        INDEX_JSON,
        OCI_LAYOUT_FILE,
        crate::image::store::TRUST_DIR,
    ];
    if !root.join(OCI_LAYOUT_FILE).exists() {
        if let Ok(entries) = fs::read_dir(root) {
            for e in entries.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if !allowed.contains(&name.as_ref()) && !name.starts_with(".rrun-tmp-") {
                    return Err(ImageError::NotALayout { path: root.into() });
                }
            }
        }
    }
    let blobs = root.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(|e| ImageError::io_at(&blobs, e))?;
    if !root.join(OCI_LAYOUT_FILE).exists() {
        let _lock = lock_store(root, true)?;
        if !root.join(OCI_LAYOUT_FILE).exists() {
            // index.json first: a present oci-layout always has an index beside it.
            if !root.join(INDEX_JSON).exists() {
                let empty = serde_json::to_vec(&Index::empty())
                    .map_err(|e| ImageError::malformed("index.json", e.to_string()))?;
                layout::write_atomic(&root.join(INDEX_JSON), &empty)?;
            }
            layout::write_atomic(&root.join(OCI_LAYOUT_FILE), OCI_LAYOUT_JSON)?;
        }
    }
    let lock = lock_store(root, false)?;
    let layout = Layout::open(root)?;
    // A corrupted index.json is reported before anything is downloaded.
    layout.read_index()?;
    let staging = root.join(TMP_DIR).join(PULL_DIR);
    fs::create_dir_all(&staging).map_err(|e| ImageError::io_at(&staging, e))?;
    Ok(StoreHandle {
        root: root.into(),
        layout,
        staging,
        lock,
    })
}

impl StoreHandle {
    /// The store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// True when the store already holds the blob with its declared size.
    pub fn has_blob(&self, desc: &Descriptor) -> bool {
        fs::metadata(self.layout.blob_path(&desc.digest))
            .is_ok_and(|m| m.is_file() && m.len() == desc.size)
    }

    /// Put a downloaded file whose size and digest were verified against `desc` into the
    /// store (fsynced, world-readable, renamed; dropped if the blob is there already).
    pub fn store_verified(&self, desc: &Descriptor, file: &File, path: &Path) -> Result<()> {
        if self.has_blob(desc) {
            let _ = fs::remove_file(path);
            return Ok(());
        }
        file.sync_all().map_err(|e| ImageError::io_at(path, e))?;
        layout::set_public_mode(file, path)?;
        let target = self.layout.blob_path(&desc.digest);
        fs::rename(path, &target).map_err(|e| ImageError::io_at(&target, e))
    }

    /// The file a blob is downloaded into (kept across interrupted pulls, for resuming).
    pub fn partial_path(&self, digest: &Digest) -> PathBuf {
        self.staging.join(format!("{}.partial", digest.hex()))
    }

    /// Lock one blob's staging against other pulls (another process or thread downloading
    /// the same blob waits, then finds it staged or stored).
    pub fn lock_blob(&self, digest: &Digest) -> Result<BlobLock> {
        let path = self.staging.join(format!("{}.lock", digest.hex()));
        loop {
            let file = open_rw(&path)?;
            file.lock().map_err(|e| ImageError::io_at(&path, e))?;
            // The holder before us may have removed the file: lock the current one instead.
            let held = file.metadata().map_err(|e| ImageError::io_at(&path, e))?;
            match fs::metadata(&path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                    return Ok(BlobLock { _file: file })
                }
                _ => continue,
            }
        }
    }
}

/// A held per-blob staging lock (released when dropped).
#[derive(Debug)]
pub struct BlobLock {
    _file: File,
}

/// Remove the staging lock files of blobs now in the store (skipped when someone holds them).
pub fn clean_locks(root: &Path, digests: &[Digest]) {
    let staging = root.join(TMP_DIR).join(PULL_DIR);
    for d in digests {
        let path = staging.join(format!("{}.lock", d.hex()));
        let Ok(file) = File::options().read(true).write(true).open(&path) else {
            continue;
        };
        if file.try_lock().is_ok() {
            let _ = fs::remove_file(&path);
        }
    }
}

/// Name a pulled image in the store: the small blobs (manifest, config) written, then
/// `index.json` updated atomically under the exclusive lock (the pull's shared lock is
/// converted). Every layer is already stored, verified.
pub fn commit_pulled(store: StoreHandle, image: &PulledImage) -> Result<()> {
    let root = store.root.clone();
    store
        .lock
        .lock()
        .map_err(|e| ImageError::io_at(root.join(LOCK_FILE), e))?;
    layout::sync_dir(&store.layout.blobs_dir())?;
    let mut dest = Destination::open(&ImageRef::Oci {
        path: root,
        tag: Some(image.name.clone()),
    })?;
    for blob in &image.small_blobs {
        dest.stage().put_bytes(blob)?;
    }
    dest.commit(image.manifest.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_is_created_and_strangers_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("store");
        let s = open_store(&root).unwrap();
        assert!(Layout::open(&root).is_ok());
        assert!(root.join("tmp/pull").is_dir());
        assert!(s
            .partial_path(&Digest::of_bytes(b"x"))
            .starts_with(root.join("tmp")));
        // Opening again is fine.
        open_store(&root).unwrap();
        let other = tmp.path().join("home");
        fs::create_dir_all(&other).unwrap();
        fs::write(other.join("notes.txt"), b"mine").unwrap();
        assert!(matches!(
            open_store(&other),
            Err(ImageError::NotALayout { .. })
        ));
    }

    #[test]
    fn verified_blobs_enter_one_by_one_and_commit_names_the_image() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("store");
        let s = open_store(&root).unwrap();
        let layer = b"layer bytes".to_vec();
        let ld = Descriptor::new(
            crate::image::media_type::OCI_LAYER_TAR,
            Digest::of_bytes(&layer),
            layer.len() as u64,
        );
        {
            let _held = s.lock_blob(&ld.digest).unwrap();
            let path = s.partial_path(&ld.digest);
            fs::write(&path, &layer).unwrap();
            s.store_verified(&ld, &File::open(&path).unwrap(), &path)
                .unwrap();
            assert!(!path.exists());
        }
        assert!(s.has_blob(&ld));
        let index_before = fs::read(root.join(INDEX_JSON)).unwrap();
        let manifest = br#"{"schemaVersion":2}"#.to_vec();
        let md = Descriptor::new(
            crate::image::media_type::OCI_MANIFEST,
            Digest::of_bytes(&manifest),
            manifest.len() as u64,
        );
        let image = PulledImage {
            name: "127.0.0.1:5000/app:1".into(),
            manifest: md.clone(),
            small_blobs: vec![manifest],
        };
        assert_eq!(fs::read(root.join(INDEX_JSON)).unwrap(), index_before);
        commit_pulled(s, &image).unwrap();
        let index = Layout::open(&root).unwrap().read_index().unwrap();
        assert_eq!(index.manifests.len(), 1);
        assert_eq!(index.manifests[0].ref_name(), Some("127.0.0.1:5000/app:1"));
        // Committing again (a concurrent pull of the same image) changes nothing.
        let s = open_store(&root).unwrap();
        assert!(s.has_blob(&md));
        commit_pulled(s, &image).unwrap();
        assert_eq!(Layout::open(&root).unwrap().read_index().unwrap(), index);
        clean_locks(&root, std::slice::from_ref(&ld.digest));
        assert!(!root
            .join(format!("tmp/pull/{}.lock", ld.digest.hex()))
            .exists());
    }
}
