//! THE SEAM between pull and the image store: where pulled blobs are staged and the one
//! function, [`commit_pulled`], that puts a verified image into the store under its name.
//!
//! The store (DESIGN.md section 3, `src/image/store/`) is being written at the same time;
//! until it lands, this file writes the store root directly as the OCI layout it is, through
//! `transport::Destination` over `oci:<root>:<name>`, holding the agreed `<root>/lock`
//! exclusively while it commits. To switch to the store's locked writer, replace the bodies
//! here (nothing else in `registry/` touches the store's files):
//! - [`open_store`]: open or create the store, return where partial downloads go;
//! - [`StoreHandle::has_blob`]: is a verified blob already stored;
//! - [`commit_pulled`]: move the staged, verified layer files in, write the small blobs,
//!   record the name in `index.json`, all under the writer lock.

use std::fs::{self, File};
use std::io;
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

/// An open store, as pull needs it.
#[derive(Debug, Clone)]
pub struct StoreHandle {
    root: PathBuf,
    layout: Layout,
    staging: PathBuf,
}

/// An image ready to be committed: every blob verified.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// The name it is stored under (`127.0.0.1:5000/app:1`).
    pub name: String,
    /// The `index.json` entry: the selected platform's manifest descriptor.
    pub manifest: Descriptor,
    /// Small verified blobs kept in memory (manifest, config).
    pub small_blobs: Vec<Vec<u8>>,
    /// Verified layer files in the staging directory.
    pub staged: Vec<(Descriptor, PathBuf)>,
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

/// Take the store lock exclusively (released when the file is dropped).
fn lock_store(root: &Path) -> Result<File> {
    let path = root.join(LOCK_FILE);
    let file = open_rw(&path)?;
    file.lock().map_err(|e| ImageError::io_at(&path, e))?;
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
    {
        let _lock = lock_store(root)?;
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
    let layout = Layout::open(root)?;
    let staging = root.join(TMP_DIR).join(PULL_DIR);
    fs::create_dir_all(&staging).map_err(|e| ImageError::io_at(&staging, e))?;
    Ok(StoreHandle {
        root: root.into(),
        layout,
        staging,
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

    /// Remove the lock files of blobs now in the store (skipped when someone holds them).
    pub fn clean_locks(&self, digests: &[Digest]) {
        for d in digests {
            let path = self.staging.join(format!("{}.lock", d.hex()));
            let Ok(file) = File::options().read(true).write(true).open(&path) else {
                continue;
            };
            if file.try_lock().is_ok() {
                let _ = fs::remove_file(&path);
            }
        }
    }
}

/// A held per-blob staging lock (released when dropped).
#[derive(Debug)]
pub struct BlobLock {
    _file: File,
}

/// Put a pulled, verified image into the store under its name: small blobs written, staged
/// layer files fsynced and renamed in, then `index.json` updated atomically, all under the
/// store's exclusive lock. Until `index.json` changes, nothing refers to the new blobs, so a
/// crash leaves a valid store (at worst with unreferenced verified blobs for prune).
pub fn commit_pulled(store: &StoreHandle, image: &PulledImage) -> Result<()> {
    let root = store.root();
    let _lock = lock_store(root)?;
    let mut dest = Destination::open(&ImageRef::Oci {
        path: root.into(),
        tag: Some(image.name.clone()),
    })?;
    for blob in &image.small_blobs {
        dest.stage().put_bytes(blob)?;
    }
    let layout = dest.layout().clone();
    for (desc, staged) in &image.staged {
        let target = layout.blob_path(&desc.digest);
        if store.has_blob(desc) {
            let _ = fs::remove_file(staged);
            continue;
        }
        let file = File::open(staged).map_err(|e| ImageError::io_at(staged, e))?;
        file.sync_all().map_err(|e| ImageError::io_at(staged, e))?;
        layout::set_public_mode(&file, staged)?;
        match fs::rename(staged, &target) {
            Ok(()) => {}
            // Another pull committed the same blob from the same staged file first.
            Err(e) if e.kind() == io::ErrorKind::NotFound && store.has_blob(desc) => {}
            Err(e) => return Err(ImageError::io_at(&target, e)),
        }
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
    fn commit_moves_staged_files_and_names_the_image() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("store");
        let s = open_store(&root).unwrap();
        let layer = b"layer bytes".to_vec();
        let ld = Descriptor::new(
            crate::image::media_type::OCI_LAYER_TAR,
            Digest::of_bytes(&layer),
            layer.len() as u64,
        );
        let staged = s.partial_path(&ld.digest);
        fs::write(&staged, &layer).unwrap();
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
            staged: vec![(ld.clone(), staged.clone())],
        };
        {
            let _held = s.lock_blob(&ld.digest).unwrap();
        }
        commit_pulled(&s, &image).unwrap();
        assert!(s.has_blob(&ld) && s.has_blob(&md));
        assert!(!staged.exists());
        let index = Layout::open(&root).unwrap().read_index().unwrap();
        assert_eq!(index.manifests.len(), 1);
        assert_eq!(index.manifests[0].ref_name(), Some("127.0.0.1:5000/app:1"));
        // Committing again (a concurrent pull of the same image) changes nothing.
        commit_pulled(&s, &image).unwrap();
        assert_eq!(Layout::open(&root).unwrap().read_index().unwrap(), index);
        s.clean_locks(std::slice::from_ref(&ld.digest));
        assert!(!root
            .join(format!("tmp/pull/{}.lock", ld.digest.hex()))
            .exists());
    }
}
