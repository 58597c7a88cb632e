//! The OCI image layout on disk (`oci-layout`, `index.json`, `blobs/sha256/<hex>`): verified
//! blob reads and atomic file writes (temp file, fsync, rename, fsync of the directory).

use std::fs::{self, File};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use super::digest::{Digest, VerifyingReader};
use super::error::{ImageError, Result};
use super::manifest::{self, Descriptor, Index};

/// Name of the layout marker file.
pub const OCI_LAYOUT_FILE: &str = "oci-layout";
/// Name of the layout's top index.
pub const INDEX_JSON: &str = "index.json";
/// Content of the layout marker file.
pub const OCI_LAYOUT_JSON: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Largest manifest or index rrun reads (as containers/image's `maxManifestBodySize`).
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;
/// Largest image config rrun reads.
pub const MAX_CONFIG_SIZE: u64 = 8 << 20;
/// Largest `index.json` rrun reads.
pub const MAX_INDEX_JSON_SIZE: u64 = 16 << 20;

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

/// Read a small file fully, refusing more than `limit` bytes.
fn read_limited(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(|e| ImageError::io_at(path, e))?;
    let mut data = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut data)
        .map_err(|e| ImageError::io_at(path, e))?;
    if data.len() as u64 > limit {
        return Err(ImageError::TooLarge {
            what: what.to_string(),
            size: data.len() as u64,
            limit,
        });
    }
    Ok(data)
}

/// fsync a directory so that renames into it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ImageError::io_at(dir, e))
}

/// Write `data` to `path` atomically: a temp file in the same directory, fsync, rename,
/// fsync of the directory. Readers see the old or the new content, never a mix.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".rrun-tmp-")
        .tempfile_in(dir)
        .map_err(|e| ImageError::io_at(dir, e))?;
    tmp.write_all(data)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| ImageError::io_at(tmp.path(), e))?;
    set_public_mode(tmp.as_file(), tmp.path())?;
    tmp.persist(path)
        .map_err(|e| ImageError::io_at(path, e.error))?;
    sync_dir(dir)
}

/// Make a file `rw-r--r--` (blobs and metadata are not secret; tempfile creates 0600).
pub fn set_public_mode(file: &File, path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(|e| ImageError::io_at(path, e))
}

impl Layout {
    /// Open an existing layout: `oci-layout` must declare version 1.0.0 and `index.json` exist.
    pub fn open(root: &Path) -> Result<Self> {
        let not_layout = || ImageError::NotALayout { path: root.into() };
        if !root.exists() {
            return Err(ImageError::io_at(
                root,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such layout directory"),
            ));
        }
        let marker = root.join(OCI_LAYOUT_FILE);
        if !marker.is_file() || !root.join(INDEX_JSON).is_file() {
            return Err(not_layout());
        }
        let data = read_limited(&marker, 64 << 10, "oci-layout")?;
        let value: serde_json::Value = serde_json::from_slice(&data)
            .map_err(|e| ImageError::malformed(marker.display().to_string(), e.to_string()))?;
        match value.get("imageLayoutVersion").and_then(|v| v.as_str()) {
            Some("1.0.0") => Ok(Self { root: root.into() }),
            Some(other) => Err(ImageError::malformed(
                marker.display().to_string(),
                format!("imageLayoutVersion {other} is not 1.0.0"),
            )),
            None => Err(not_layout()),
        }
    }

    /// A layout handle on a directory that is being created (by [`super::stage::Stage`]).
    pub(crate) fn new_unchecked(root: &Path) -> Self {
        Self { root: root.into() }
    }

    /// The layout directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `blobs/sha256`.
    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// Where a blob lives (the digest type guarantees the name is safe).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    /// True when the blob file exists.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Read and parse `index.json`.
    pub fn read_index(&self) -> Result<Index> {
        let data = read_limited(
            &self.root.join(INDEX_JSON),
            MAX_INDEX_JSON_SIZE,
            "index.json",
        )?;
        manifest::parse_index_json(&data)
    }

    /// Replace `index.json` atomically.
    pub fn write_index(&self, index: &Index) -> Result<()> {
        let data = serde_json::to_vec(index)
            .map_err(|e| ImageError::malformed("index.json", e.to_string()))?;
        write_atomic(&self.root.join(INDEX_JSON), &data)
    }

    /// Check that the blob exists with the declared size; return its path.
    fn checked_blob(&self, desc: &Descriptor, what: &str) -> Result<PathBuf> {
        let path = self.blob_path(&desc.digest);
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ImageError::BlobMissing {
                    digest: desc.digest.to_string(),
                    layout: self.root.clone(),
                })
            }
            Err(e) => return Err(ImageError::io_at(&path, e)),
        };
        if !meta.is_file() {
            return Err(ImageError::malformed(
                what,
                format!("{} is not a regular file", path.display()),
            ));
        }
        if meta.len() != desc.size {
            return Err(ImageError::SizeMismatch {
                what: what.to_string(),
                expected: desc.size,
                actual: meta.len(),
            });
        }
        Ok(path)
    }

    /// Read a small blob (manifest, index, config) into memory, verifying size and digest.
    pub fn read_blob(&self, desc: &Descriptor, limit: u64, what: &str) -> Result<Vec<u8>> {
        if desc.size > limit {
            return Err(ImageError::TooLarge {
                what: what.to_string(),
                size: desc.size,
                limit,
            });
        }
        let path = self.checked_blob(desc, what)?;
        let data = read_limited(&path, limit, what)?;
        if data.len() as u64 != desc.size {
            return Err(ImageError::SizeMismatch {
                what: what.to_string(),
                expected: desc.size,
                actual: data.len() as u64,
            });
        }
        let actual = Digest::of_bytes(&data);
        if actual != desc.digest {
            return Err(ImageError::DigestMismatch {
                what: what.to_string(),
                expected: desc.digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(data)
    }

    /// Open a stored blob whose size was checked, without hashing it: for a consumer that
    /// computes the blob's digest itself (the layer cipher does) and must compare it with
    /// `desc.digest` before using anything it produced.
    pub fn open_blob_unhashed(&self, desc: &Descriptor, what: &str) -> Result<std::io::Take<File>> {
        let path = self.checked_blob(desc, what)?;
        let file = File::open(&path).map_err(|e| ImageError::io_at(&path, e))?;
        Ok(file.take(desc.size))
    }

    /// Hash a stored blob and compare it with its descriptor.
    pub fn verify_blob(&self, desc: &Descriptor, what: &str) -> Result<()> {
        let mut reader = self.open_blob(desc, what)?;
        if let Err(e) = std::io::copy(&mut reader, &mut std::io::sink()) {
            return Err(reader.failure().unwrap_or(ImageError::Io(e)));
        }
        reader.finish()
    }

    /// Open a blob for streaming; the reader verifies size and digest as it goes, and its
    /// `finish` must be called before the content is trusted.
    pub fn open_blob(
        &self,
        desc: &Descriptor,
        what: &str,
    ) -> Result<VerifyingReader<BufReader<File>>> {
        let path = self.checked_blob(desc, what)?;
        let file = File::open(&path).map_err(|e| ImageError::io_at(&path, e))?;
        Ok(VerifyingReader::new(
            BufReader::with_capacity(256 << 10, file),
            desc.digest.clone(),
            desc.size,
            what,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make_layout(dir: &Path) -> Layout {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join(OCI_LAYOUT_FILE), OCI_LAYOUT_JSON).unwrap();
        fs::write(
            dir.join(INDEX_JSON),
            br#"{"schemaVersion":2,"manifests":[]}"#,
        )
        .unwrap();
        Layout::open(dir).unwrap()
    }

    #[test]
    fn open_refuses_non_layouts() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(matches!(
            Layout::open(tmp.path()),
            Err(ImageError::NotALayout { .. })
        ));
        fs::write(
            tmp.path().join(OCI_LAYOUT_FILE),
            br#"{"imageLayoutVersion":"2.0.0"}"#,
        )
        .unwrap();
        fs::write(tmp.path().join(INDEX_JSON), b"{}").unwrap();
        assert!(Layout::open(tmp.path()).is_err());
    }

    #[test]
    fn blob_reads_are_verified() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = make_layout(tmp.path());
        let data = b"{\"hello\":1}";
        let digest = Digest::of_bytes(data);
        let desc = Descriptor::new("application/json", digest.clone(), data.len() as u64);
        let missing = layout.read_blob(&desc, 100, "config").unwrap_err();
        assert!(
            matches!(missing, ImageError::BlobMissing { .. }),
            "{missing}"
        );

        fs::write(layout.blob_path(&digest), data).unwrap();
        assert_eq!(layout.read_blob(&desc, 100, "config").unwrap(), data);
        let mut r = layout.open_blob(&desc, "config").unwrap();
        std::io::copy(&mut r, &mut std::io::sink()).unwrap();
        r.finish().unwrap();

        // Same length, one byte changed: digest mismatch, both ways of reading.
        fs::write(layout.blob_path(&digest), b"{\"hello\":2}").unwrap();
        let err = layout.read_blob(&desc, 100, "config").unwrap_err();
        assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
        let r = layout.open_blob(&desc, "layer").unwrap();
        assert!(matches!(r.finish(), Err(ImageError::DigestMismatch { .. })));

        // Truncated: size mismatch before any byte is read.
        fs::write(layout.blob_path(&digest), b"{").unwrap();
        let err = layout.open_blob(&desc, "layer").unwrap_err();
        assert!(matches!(err, ImageError::SizeMismatch { .. }), "{err}");

        let big = Descriptor::new("x", digest, 1000);
        assert!(matches!(
            layout.read_blob(&big, 100, "manifest"),
            Err(ImageError::TooLarge { .. })
        ));
    }

    #[test]
    fn index_json_write_is_atomic_and_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = make_layout(tmp.path());
        let mut index = layout.read_index().unwrap();
        index
            .extra
            .insert("future".into(), serde_json::json!({"k": 1}));
        layout.write_index(&index).unwrap();
        assert_eq!(layout.read_index().unwrap(), index);
        let leftovers: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".rrun-tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
