//! Transactional writes into a layout: blobs are streamed into temp files in `blobs/sha256`,
//! fsynced and renamed to their digest; everything this stage created (blobs, and the layout
//! itself when it was new) is removed again unless the stage is committed.

use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use tempfile::NamedTempFile;

use super::digest::Digest;
use super::error::{ImageError, Result};
use super::layout::{self, Layout, INDEX_JSON, OCI_LAYOUT_FILE, OCI_LAYOUT_JSON};
use super::manifest::{Descriptor, Index};

/// Something to remove when the stage is abandoned.
#[derive(Debug)]
enum Undo {
    /// A file this stage created.
    File(PathBuf),
    /// A directory this stage created inside an existing one (removed if empty).
    Dir(PathBuf),
    /// A directory tree this stage created from nothing.
    Tree(PathBuf),
}

/// A blob being written: a temp file in the blobs directory, hashed as it is written unless
/// its producer reports the digest itself ([`Stage::blob_writer_unhashed`]).
#[derive(Debug)]
pub struct BlobWriter {
    inner: BufWriter<NamedTempFile>,
    hasher: Option<Sha256>,
    len: u64,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A fully written blob not yet renamed into place.
#[derive(Debug)]
pub struct SealedBlob {
    /// Digest of the content.
    pub digest: Digest,
    /// Size of the content.
    pub size: u64,
    tmp: NamedTempFile,
}

impl SealedBlob {
    /// Read the content back from the start.
    pub fn reopen(&self) -> Result<fs::File> {
        self.tmp
            .reopen()
            .map_err(|e| ImageError::io_at(self.tmp.path(), e))
    }
}

/// Writes into one layout that are undone unless [`Stage::commit`] is reached.
#[derive(Debug)]
pub struct Stage {
    layout: Layout,
    undo: Vec<Undo>,
    committed: bool,
}

impl Stage {
    /// Prepare to write into the layout at `root`: open it if it is one, create it (parent
    /// directories too) if the path is missing or an empty directory, refuse anything else.
    pub fn open_or_create(root: &Path) -> Result<Self> {
        let mut undo = Vec::new();
        match fs::symlink_metadata(root) {
            Ok(_) if root.join(OCI_LAYOUT_FILE).exists() => {
                let layout = Layout::open(root)?;
                // A broken index.json is reported now, not after the blobs are written.
                layout.read_index()?;
                let mut stage = Self {
                    layout,
                    undo,
                    committed: false,
                };
                stage.ensure_dir(&root.join("blobs"))?;
                stage.ensure_dir(&root.join("blobs").join("sha256"))?;
                return Ok(stage);
            }
            Ok(meta) if meta.is_dir() => {
                let empty = fs::read_dir(root)
                    .map_err(|e| ImageError::io_at(root, e))?
                    .next()
                    .is_none();
                if !empty {
                    return Err(ImageError::NotALayout { path: root.into() });
                }
            }
            Ok(_) => return Err(ImageError::NotALayout { path: root.into() }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Remember the topmost directory that did not exist, to remove on failure.
                let mut top = root.to_path_buf();
                while let Some(parent) = top.parent() {
                    if parent.as_os_str().is_empty() || parent.exists() {
                        break;
                    }
                    top = parent.to_path_buf();
                }
                fs::create_dir_all(root).map_err(|e| ImageError::io_at(root, e))?;
                undo.push(Undo::Tree(top));
            }
            Err(e) => return Err(ImageError::io_at(root, e)),
        }
        let mut stage = Self {
            layout: Layout::new_unchecked(root),
            undo,
            committed: false,
        };
        stage.ensure_dir(&root.join("blobs"))?;
        stage.ensure_dir(&root.join("blobs").join("sha256"))?;
        stage.create_file(&root.join(OCI_LAYOUT_FILE), OCI_LAYOUT_JSON)?;
        let empty = serde_json::to_vec(&Index::empty())
            .map_err(|e| ImageError::malformed("index.json", e.to_string()))?;
        stage.create_file(&root.join(INDEX_JSON), &empty)?;
        layout::sync_dir(root)?;
        Ok(stage)
    }

    fn ensure_dir(&mut self, dir: &Path) -> Result<()> {
        match fs::create_dir(dir) {
            Ok(()) => {
                self.undo.push(Undo::Dir(dir.into()));
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
            Err(e) => Err(ImageError::io_at(dir, e)),
        }
    }

    fn create_file(&mut self, path: &Path, data: &[u8]) -> Result<()> {
        layout::write_atomic(path, data)?;
        self.undo.push(Undo::File(path.into()));
        Ok(())
    }

    /// The layout being written.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Start a new blob, hashed as it is written.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        self.new_blob_writer(Some(Sha256::new()))
    }

    /// Start a new blob whose producer computes its digest over exactly the bytes it writes
    /// (the layer cipher's pipeline does), so that it is not hashed twice: finish it with
    /// [`Stage::seal_reported`].
    pub fn blob_writer_unhashed(&self) -> Result<BlobWriter> {
        self.new_blob_writer(None)
    }

    fn new_blob_writer(&self, hasher: Option<Sha256>) -> Result<BlobWriter> {
        let dir = self.layout.blobs_dir();
        let tmp = tempfile::Builder::new()
            .prefix(".rrun-tmp-")
            .tempfile_in(&dir)
            .map_err(|e| ImageError::io_at(&dir, e))?;
        Ok(BlobWriter {
            inner: BufWriter::with_capacity(256 << 10, tmp),
            hasher,
            len: 0,
        })
    }

    /// Finish a blob: fsync it and rename it to its digest (unless that blob already exists,
    /// then the temp file is dropped). Returns the digest and size.
    pub fn commit_blob(&mut self, writer: BlobWriter) -> Result<(Digest, u64)> {
        let sealed = self.seal(writer)?;
        self.persist(sealed)
    }

    /// Like [`Stage::commit_blob`], but the blob is renamed into place only if its digest is
    /// `expected`; otherwise it is discarded and a `DigestMismatch` returned.
    pub fn commit_blob_expecting(
        &mut self,
        writer: BlobWriter,
        expected: &Digest,
    ) -> Result<(Digest, u64)> {
        let sealed = self.seal(writer)?;
        if sealed.digest != *expected {
            return Err(ImageError::DigestMismatch {
                what: "staged blob".into(),
                expected: expected.to_string(),
                actual: sealed.digest.to_string(),
            });
        }
        self.persist(sealed)
    }

    /// Finish writing a blob without putting it in place yet: its digest and size are known
    /// and its content can be read back for more checks. Dropping it discards it.
    pub fn seal(&self, writer: BlobWriter) -> Result<SealedBlob> {
        let BlobWriter { inner, hasher, len } = writer;
        let Some(hasher) = hasher else {
            return Err(ImageError::malformed(
                "staged blob",
                "an unhashed blob needs its reported digest (seal_reported)",
            ));
        };
        let tmp = inner
            .into_inner()
            .map_err(|e| ImageError::Io(e.into_error()))?;
        Ok(SealedBlob {
            digest: Digest::from_sha256(hasher.finalize().into()),
            size: len,
            tmp,
        })
    }

    /// Like [`Stage::seal`] for a blob from [`Stage::blob_writer_unhashed`]: `digest` and `len`
    /// are what its producer computed over the bytes it wrote; the length is checked.
    pub fn seal_reported(
        &self,
        writer: BlobWriter,
        digest: Digest,
        len: u64,
    ) -> Result<SealedBlob> {
        let BlobWriter {
            inner,
            len: written,
            ..
        } = writer;
        if written != len {
            return Err(ImageError::SizeMismatch {
                what: "staged blob".into(),
                expected: len,
                actual: written,
            });
        }
        let tmp = inner
            .into_inner()
            .map_err(|e| ImageError::Io(e.into_error()))?;
        Ok(SealedBlob {
            digest,
            size: len,
            tmp,
        })
    }

    /// fsync a sealed blob and rename it to its digest (unless that blob already exists).
    pub fn persist(&mut self, sealed: SealedBlob) -> Result<(Digest, u64)> {
        let SealedBlob { digest, size, tmp } = sealed;
        let final_path = self.layout.blob_path(&digest);
        if final_path.exists() {
            return Ok((digest, size));
        }
        tmp.as_file()
            .sync_all()
            .map_err(|e| ImageError::io_at(tmp.path(), e))?;
        layout::set_public_mode(tmp.as_file(), tmp.path())?;
        match tmp.persist_noclobber(&final_path) {
            Ok(_) => self.undo.push(Undo::File(final_path)),
            // Someone else stored the same content meanwhile: theirs is as good as ours.
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(ImageError::io_at(&final_path, e.error)),
        }
        Ok((digest, size))
    }

    /// Store some bytes as a blob.
    pub fn put_bytes(&mut self, data: &[u8]) -> Result<(Digest, u64)> {
        let digest = Digest::of_bytes(data);
        if self.layout.has_blob(&digest) {
            return Ok((digest, data.len() as u64));
        }
        let mut w = self.blob_writer()?;
        w.write_all(data)?;
        self.commit_blob(w)
    }

    /// Make the blob `desc` present: nothing to do if this layout already has it with the
    /// right size, otherwise copy it from `from`, verifying size and digest on the way.
    pub fn copy_blob(&mut self, from: &Layout, desc: &Descriptor, what: &str) -> Result<()> {
        let dest = self.layout.blob_path(&desc.digest);
        if let Ok(meta) = fs::metadata(&dest) {
            if meta.len() != desc.size {
                return Err(ImageError::SizeMismatch {
                    what: format!("existing {what} in {}", self.layout.root().display()),
                    expected: desc.size,
                    actual: meta.len(),
                });
            }
            return Ok(());
        }
        let mut reader = from.open_blob(desc, what)?;
        let mut w = self.blob_writer()?;
        let copied = copy_verified(&mut reader, &mut w);
        if let Some(e) = reader.failure() {
            return Err(e);
        }
        copied?;
        reader.finish()?;
        let (digest, _) = self.commit_blob(w)?;
        if digest != desc.digest {
            return Err(ImageError::DigestMismatch {
                what: what.to_string(),
                expected: desc.digest.to_string(),
                actual: digest.to_string(),
            });
        }
        Ok(())
    }

    /// Make the writes permanent: fsync the blobs directory, then replace `index.json` with
    /// `update(current index)` atomically. Nothing is undone after this.
    pub fn commit(mut self, update: impl FnOnce(Index) -> Index) -> Result<()> {
        layout::sync_dir(&self.layout.blobs_dir())?;
        let index = self.layout.read_index()?;
        self.layout.write_index(&update(index))?;
        self.committed = true;
        Ok(())
    }
}

/// Copy a reader into a writer in 256 KiB steps.
fn copy_verified(reader: &mut impl Read, writer: &mut impl Write) -> Result<u64> {
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        writer.write_all(&buf[..n])?;
        total += n as u64;
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        for undo in self.undo.drain(..).rev() {
            // Best effort: the error that abandoned the stage is what the user needs to see.
            let _ = match undo {
                Undo::File(p) => fs::remove_file(p),
                Undo::Dir(p) => fs::remove_dir(p),
                Undo::Tree(p) => fs::remove_dir_all(p),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in walk(dir) {
            out.push(e.strip_prefix(dir).unwrap().display().to_string());
        }
        out.sort();
        out
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.clone());
            if p.is_dir() {
                out.extend(walk(&p));
            }
        }
        out
    }

    #[test]
    fn abandoned_stage_removes_a_new_layout_and_its_parents() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("a/b/layout");
        {
            let mut stage = Stage::open_or_create(&root).unwrap();
            stage.put_bytes(b"blob").unwrap();
            assert!(Layout::open(&root).is_ok());
        }
        assert!(!tmp.path().join("a").exists());
    }

    #[test]
    fn abandoned_stage_leaves_an_existing_layout_as_it_was() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("layout");
        let mut stage = Stage::open_or_create(&root).unwrap();
        let (old, _) = stage.put_bytes(b"old").unwrap();
        stage.commit(|i| i).unwrap();
        let before = listing(&root);
        let index_before = fs::read(root.join(INDEX_JSON)).unwrap();
        {
            let mut stage = Stage::open_or_create(&root).unwrap();
            stage.put_bytes(b"new").unwrap();
            // Already there: must not be removed when the stage is dropped.
            stage.put_bytes(b"old").unwrap();
        }
        assert_eq!(listing(&root), before);
        assert_eq!(fs::read(root.join(INDEX_JSON)).unwrap(), index_before);
        assert!(Layout::open(&root).unwrap().has_blob(&old));
    }

    #[test]
    fn existing_empty_dir_is_initialised_and_cleaned_back_to_empty() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let mut stage = Stage::open_or_create(tmp.path()).unwrap();
            stage.put_bytes(b"x").unwrap();
        }
        assert!(listing(tmp.path()).is_empty());
        fs::write(tmp.path().join("stray"), b"").unwrap();
        assert!(matches!(
            Stage::open_or_create(tmp.path()),
            Err(ImageError::NotALayout { .. })
        ));
    }

    #[test]
    fn copy_refuses_a_corrupted_source_blob_and_keeps_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let src_root = tmp.path().join("src");
        let mut src = Stage::open_or_create(&src_root).unwrap();
        let (digest, size) = src.put_bytes(b"some layer bytes").unwrap();
        src.commit(|i| i).unwrap();
        let src = Layout::open(&src_root).unwrap();
        fs::write(src.blob_path(&digest), b"some layer bytez").unwrap();

        let dst_root = tmp.path().join("dst");
        let mut dst = Stage::open_or_create(&dst_root).unwrap();
        let desc = Descriptor::new("application/octet-stream", digest.clone(), size);
        let err = dst.copy_blob(&src, &desc, "layer").unwrap_err();
        assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
        assert!(!dst.layout().has_blob(&digest));
        drop(dst);
        assert!(!dst_root.exists());
    }

    #[test]
    fn blobs_are_world_readable() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let mut stage = Stage::open_or_create(tmp.path()).unwrap();
        let (d, _) = stage.put_bytes(b"x").unwrap();
        let mode = fs::metadata(stage.layout().blob_path(&d))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
        stage.commit(|i| i).unwrap();
    }
}
