//! Writing a pulled image into the store: blobs stream into temp files in a lease under
//! `tmp/`, are verified (size and digest), fsynced and renamed into `blobs/sha256/` one by one
//! (so a later pull reuses what an interrupted one verified), and the name is recorded in
//! `index.json` only by [`StoreDestination::commit`], under the exclusive lock, after a check
//! that every blob the image needs is there. Several threads may write blobs at once.

use std::io::{self, BufWriter, Write};

use tempfile::NamedTempFile;

use crate::image::digest::{Digest, HashingWriter};
use crate::image::error::{ImageError, Result};
use crate::image::layout::{self, Layout};
use crate::image::manifest::Descriptor;
use crate::image::name::Reference;
use crate::image::transport::put_entry;

use super::lease::TempLease;
use super::lock::{LockMode, StoreLock};
use super::partial::PartialBlob;
use super::resolve::store_name;
use super::walk;
use super::Store;

/// A blob being received: a temp file in the destination's lease, hashed as it is written.
#[derive(Debug)]
pub struct IncomingBlob {
    inner: HashingWriter<BufWriter<NamedTempFile>>,
}

impl Write for IncomingBlob {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl IncomingBlob {
    /// Bytes written so far (where a `Range` request resumes).
    pub fn len(&self) -> u64 {
        self.inner.len()
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

/// An image being written into the store under one name (see the module doc). Holds the
/// store lock shared (so prune waits) until it is committed or dropped; dropping it without
/// commit leaves the index unchanged (verified blobs stay for reuse until a prune).
#[derive(Debug)]
pub struct StoreDestination {
    store: Store,
    name: String,
    lease: TempLease,
    // Last: released after the lease is gone.
    _lock: StoreLock,
}

impl Store {
    /// Start writing an image that will be named `name` (its `ref.name` is [`store_name`]:
    /// the full normalised name with its tag, without the digest). Waits for the store lock
    /// (shared) if a writer holds it exclusively.
    pub fn destination(&self, name: &Reference) -> Result<StoreDestination> {
        let lock = self.lock(LockMode::Shared)?;
        // A corrupted index.json is reported before anything is downloaded.
        self.read_index()?;
        let lease = self.temp_lease()?;
        Ok(StoreDestination {
            store: self.clone(),
            name: store_name(name),
            lease,
            _lock: lock,
        })
    }
}

impl StoreDestination {
    /// The `ref.name` the image will get.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The store's layout (to read blobs already there).
    pub fn layout(&self) -> &Layout {
        self.store.layout()
    }

    /// True when the blob is already stored with the declared size; it is then kept for this
    /// destination (prune will not remove it before the commit).
    pub fn has_blob(&self, desc: &Descriptor) -> Result<bool> {
        if !self.store.has_blob(desc) {
            return Ok(false);
        }
        self.lease.protect(&desc.digest)?;
        // It may have been pruned between the check and the protection.
        Ok(self.store.has_blob(desc))
    }

    /// Start receiving a blob.
    pub fn blob_writer(&self) -> Result<IncomingBlob> {
        let dir = self.lease.path();
        let tmp = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(dir)
            .map_err(|e| ImageError::io_at(dir, e))?;
        Ok(IncomingBlob {
            inner: HashingWriter::new(BufWriter::with_capacity(256 << 10, tmp)),
        })
    }

    /// Finish a received blob: it must have exactly `expected`'s size and digest (else it is
    /// discarded and a `SizeMismatch` or `DigestMismatch` returned); then it is fsynced and
    /// renamed into `blobs/sha256/` (or dropped if that blob is there already).
    pub fn commit_blob(&self, blob: IncomingBlob, expected: &Descriptor) -> Result<()> {
        let (digest, size, buffered) = blob.inner.finish();
        let tmp = buffered
            .into_inner()
            .map_err(|e| ImageError::Io(e.into_error()))?;
        if !self.accept(expected, &digest, size)? {
            return Ok(());
        }
        tmp.as_file()
            .sync_all()
            .map_err(|e| ImageError::io_at(tmp.path(), e))?;
        layout::set_public_mode(tmp.as_file(), tmp.path())?;
        let path = self.layout().blob_path(&digest);
        match tmp.persist_noclobber(&path) {
            Ok(_) => Ok(()),
            // Another writer stored the same content meanwhile: theirs is as good as ours.
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(ImageError::io_at(&path, e.error)),
        }
    }

    /// Check a received blob against `expected` and keep it for this destination; false when
    /// the store holds it already (the received copy is then not needed).
    fn accept(&self, expected: &Descriptor, digest: &Digest, size: u64) -> Result<bool> {
        let what = format!("blob {}", expected.digest);
        if size != expected.size {
            return Err(ImageError::SizeMismatch {
                what,
                expected: expected.size,
                actual: size,
            });
        }
        if *digest != expected.digest {
            return Err(ImageError::DigestMismatch {
                what,
                expected: expected.digest.to_string(),
                actual: digest.to_string(),
            });
        }
        self.lease.protect(digest)?;
        Ok(!self.store.has_blob(expected))
    }

    /// The resumable download of `expected` (see `partial.rs`): its partial file, locked for
    /// this writer (waiting while another pull writes the same blob) and holding what an
    /// interrupted earlier pull received (verified only by [`Self::commit_partial`]); `None`
    /// when the store has the blob (it is then kept for this destination).
    pub fn partial_blob(&self, expected: &Descriptor) -> Result<Option<PartialBlob>> {
        PartialBlob::lock(self.store.root(), &expected.digest, expected.size, || {
            self.has_blob(expected)
        })
    }

    /// Finish a download: the partial must hold exactly `expected`'s size and digest (else it
    /// is removed and a `SizeMismatch` or `DigestMismatch` returned); then it is fsynced and
    /// renamed into `blobs/sha256/` (or removed if that blob is there already).
    pub fn commit_partial(&self, part: PartialBlob, expected: &Descriptor) -> Result<()> {
        match self.accept(expected, &part.digest(), part.len()) {
            Ok(true) => part.persist(&self.layout().blob_path(&expected.digest)),
            Ok(false) => {
                part.discard();
                Ok(())
            }
            Err(e) => {
                part.discard();
                Err(e)
            }
        }
    }

    /// Store bytes already in memory (a manifest, a config) that must match `expected`.
    pub fn put_verified(&self, expected: &Descriptor, data: &[u8]) -> Result<()> {
        let mut blob = self.blob_writer()?;
        blob.write_all(data)?;
        self.commit_blob(blob, expected)
    }

    /// Store bytes as a blob of media type `media_type`; returns its descriptor.
    pub fn put_bytes(&self, media_type: &str, data: &[u8]) -> Result<Descriptor> {
        let desc = Descriptor::new(media_type, Digest::of_bytes(data), data.len() as u64);
        self.put_verified(&desc, data)?;
        Ok(desc)
    }

    /// Record the image: every blob below `top` must be stored (manifests and configs are
    /// re-verified), then `index.json` gets `top` under this destination's name, replacing
    /// the image that had it. Taken under the exclusive lock.
    pub fn commit(self, top: &Descriptor) -> Result<()> {
        layout::sync_dir(&self.layout().blobs_dir())?;
        let name = self.name.clone();
        let layout = self.layout().clone();
        self.store.edit_index(|index| {
            let reached = walk::reach(&layout, top)?;
            walk::check_present(&layout, &reached)?;
            put_entry(index, top.clone(), Some(&name));
            Ok(())
        })
    }
}
