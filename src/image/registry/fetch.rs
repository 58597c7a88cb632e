//! Download one layer blob into the store: under a per-blob lock, skip it if the store has it,
//! resume a partial file left by an interrupted pull with a `Range` request, never write past
//! the declared size, and store the file only when the whole of it has the declared digest (a
//! bad resumed prefix is fetched again once from the start).

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest as _, Sha256};

use super::client::Client;
use super::progress::{BlobOutcome, Progress};
use super::store_seam::{self, StoreHandle};
use crate::image::digest::Digest;
use crate::image::error::{ImageError, Result};
use crate::image::manifest::Descriptor;

/// Read buffer of a download.
const BUF_SIZE: usize = 256 << 10;

/// How a fetched blob got into the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetched {
    /// The store already held it.
    AlreadyStored,
    /// Downloaded (or completed from a kept partial), verified and stored.
    Downloaded,
}

/// The state of one download: the staging file, its length and the hash of its content.
struct Partial {
    file: File,
    path: PathBuf,
    have: u64,
    hasher: Sha256,
}

impl Partial {
    fn io(&self, e: std::io::Error) -> ImageError {
        ImageError::io_at(&self.path, e)
    }

    /// Open (or create) the staging file and hash what it already holds.
    fn open(path: PathBuf, size: u64) -> Result<Self> {
        let file = store_seam::open_rw(&path)?;
        let mut p = Self {
            file,
            path,
            have: 0,
            hasher: Sha256::new(),
        };
        let len = p.file.metadata().map_err(|e| p.io(e))?.len();
        if len > size {
            p.restart()?;
            return Ok(p);
        }
        let mut buf = vec![0u8; 1 << 20];
        let mut left = len;
        while left > 0 {
            let n = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
            p.file.read_exact(&mut buf[..n]).map_err(|e| p.io(e))?;
            p.hasher.update(&buf[..n]);
            left -= n as u64;
        }
        p.have = len;
        Ok(p)
    }

    /// Drop the content and start from byte 0.
    fn restart(&mut self) -> Result<()> {
        self.file.set_len(0).map_err(|e| self.io(e))?;
        self.file.seek(SeekFrom::Start(0)).map_err(|e| self.io(e))?;
        self.have = 0;
        self.hasher = Sha256::new();
        Ok(())
    }

    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.file.write_all(data).map_err(|e| self.io(e))?;
        self.hasher.update(data);
        self.have += data.len() as u64;
        Ok(())
    }
}

/// Fetch layer `desc` of `repository` into the store's staging (or find it stored).
pub fn fetch_layer(
    client: &Client,
    repository: &str,
    desc: &Descriptor,
    store: &StoreHandle,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Fetched> {
    let digest = &desc.digest;
    let _lock = store.lock_blob(digest)?;
    if store.has_blob(desc) {
        progress.blob_finished(digest, BlobOutcome::AlreadyThere);
        return Ok(Fetched::AlreadyStored);
    }
    let mut part = Partial::open(store.partial_path(digest), desc.size)?;
    let mut resumed = part.have > 0;
    progress.blob_started(digest, desc.size, part.have);
    loop {
        download_rest(client, repository, desc, &mut part, progress, cancel)?;
        let actual = Digest::from_sha256(std::mem::take(&mut part.hasher).finalize().into());
        if actual == desc.digest {
            store.store_verified(desc, &part.file, &part.path)?;
            let outcome = if resumed {
                BlobOutcome::Resumed
            } else {
                BlobOutcome::Transferred
            };
            progress.blob_finished(digest, outcome);
            return Ok(Fetched::Downloaded);
        }
        if resumed {
            // The kept prefix may be what was wrong: fetch the whole blob once more.
            resumed = false;
            client.notify(&format!(
                "blob {}: the resumed download does not verify; fetching it again from the start",
                digest.short()
            ));
            part.restart()?;
            progress.blob_progress(digest, 0);
            continue;
        }
        let path = part.path.clone();
        drop(part);
        let _ = fs::remove_file(&path);
        return Err(ImageError::DigestMismatch {
            what: format!("layer blob from {}/{repository}", client.registry()),
            expected: desc.digest.to_string(),
            actual: actual.to_string(),
        });
    }
}

/// Download from `part.have` to the declared size, resuming after interruptions. Gives up
/// when the connection keeps failing without progress (as many times as the retry policy's
/// attempts).
fn download_rest(
    client: &Client,
    repository: &str,
    desc: &Descriptor,
    part: &mut Partial,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<()> {
    let digest = &desc.digest;
    let size = desc.size;
    let policy = client.options().retry;
    let what = format!("layer {digest}");
    let mut stalls = 0u32;
    let mut unsatisfiable = false;
    let mut buf = vec![0u8; BUF_SIZE];
    part.file
        .seek(SeekFrom::Start(part.have))
        .map_err(|e| part.io(e))?;
    while part.have < size {
        if cancel.load(Ordering::Relaxed) {
            return Err(ImageError::Cancelled);
        }
        let Some(stream) = client.get_blob(repository, digest, part.have)? else {
            // 416: the server does not have the bytes we asked for; start over once.
            if unsatisfiable {
                return Err(client.protocol(format!("it refuses every range of {what} (HTTP 416)")));
            }
            unsatisfiable = true;
            part.restart()?;
            progress.blob_progress(digest, 0);
            continue;
        };
        if stream.start == 0 && part.have > 0 {
            // The server ignored the range: take the whole blob again.
            part.restart()?;
            progress.blob_progress(digest, 0);
        }
        if let Some(len) = stream.length {
            if stream.start + len > size {
                return Err(ImageError::SizeMismatch {
                    what: format!("{what} from {} (Content-Length)", client.registry()),
                    expected: size,
                    actual: stream.start + len,
                });
            }
        }
        let before = part.have;
        let mut reader = stream.reader;
        let interrupted = loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(ImageError::Cancelled);
            }
            // Ask for one byte more than remains so that an over-long blob is noticed.
            let want = usize::try_from((size - part.have).saturating_add(1))
                .unwrap_or(usize::MAX)
                .min(buf.len());
            match reader.read(&mut buf[..want]) {
                Ok(0) if part.have < size => break Some("the connection closed early".to_string()),
                Ok(0) => break None,
                Ok(n) => {
                    if part.have + n as u64 > size {
                        return Err(ImageError::SizeMismatch {
                            what: format!("{what} from {}", client.registry()),
                            expected: size,
                            actual: part.have + n as u64,
                        });
                    }
                    part.append(&buf[..n])?;
                    progress.blob_progress(digest, part.have);
                    if part.have == size {
                        break None;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break Some(e.to_string()),
            }
        };
        let Some(why) = interrupted else {
            continue;
        };
        stalls = if part.have > before { 1 } else { stalls + 1 };
        if stalls >= policy.attempts {
            return Err(client.unreachable(format!(
                "download of {what} keeps failing at byte {} of {size}: {why}",
                part.have
            )));
        }
        let delay = policy.delay(stalls);
        client.notify(&format!(
            "blob {}: {why}; resuming at byte {} in {:.1}s",
            digest.short(),
            part.have,
            delay.as_secs_f64()
        ));
        std::thread::sleep(delay);
    }
    Ok(())
}
