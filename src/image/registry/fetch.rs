//! Download one layer blob into the store: under a per-blob lock, skip it if the store has it,
//! resume a partial file left by an interrupted pull with a `Range` request, never write past
//! the declared size, and store the file only when the whole of it has the declared digest (a
//! bad resumed prefix is fetched again once from the start).

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use super::client::Client;
use super::progress::{BlobOutcome, Progress};
use crate::image::error::{ImageError, Result};
use crate::image::manifest::Descriptor;
use crate::image::store::{PartialBlob, StoreDestination};

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

/// Fetch layer `desc` of `repository` into the store's staging (or find it stored).
pub fn fetch_layer(
    client: &Client,
    repository: &str,
    desc: &Descriptor,
    store: &StoreDestination,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Fetched> {
    let digest = &desc.digest;
    let Some(mut part) = store.partial_blob(desc)? else {
        progress.blob_finished(digest, BlobOutcome::AlreadyThere);
        return Ok(Fetched::AlreadyStored);
    };
    let mut resumed = !part.is_empty();
    progress.blob_started(digest, desc.size, part.len());
    loop {
        download_rest(client, repository, desc, &mut part, progress, cancel)?;
        let actual = part.digest();
        if actual == desc.digest {
            store.commit_partial(part, desc)?;
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
        part.discard();
        return Err(ImageError::DigestMismatch {
            what: format!("layer blob from {}/{repository}", client.registry()),
            expected: desc.digest.to_string(),
            actual: actual.to_string(),
        });
    }
}

/// Download from `part.len()` to the declared size, resuming after interruptions. Gives up
/// when the connection keeps failing without progress (as many times as the retry policy's
/// attempts).
fn download_rest(
    client: &Client,
    repository: &str,
    desc: &Descriptor,
    part: &mut PartialBlob,
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
    while part.len() < size {
        if cancel.load(Ordering::Relaxed) {
            return Err(ImageError::Cancelled);
        }
        let Some(stream) = client.get_blob(repository, digest, part.len())? else {
            // 416: the server does not have the bytes we asked for; start over once.
            if unsatisfiable {
                return Err(client.protocol(format!("it refuses every range of {what} (HTTP 416)")));
            }
            unsatisfiable = true;
            part.restart()?;
            progress.blob_progress(digest, 0);
            continue;
        };
        if stream.start == 0 && !part.is_empty() {
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
        let before = part.len();
        let mut reader = stream.reader;
        let interrupted = loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(ImageError::Cancelled);
            }
            // Ask for one byte more than remains so that an over-long blob is noticed.
            let want = usize::try_from((size - part.len()).saturating_add(1))
                .unwrap_or(usize::MAX)
                .min(buf.len());
            match reader.read(&mut buf[..want]) {
                Ok(0) if part.len() < size => {
                    break Some("the connection closed early".to_string())
                }
                Ok(0) => break None,
                Ok(n) => {
                    if part.len() + n as u64 > size {
                        return Err(ImageError::SizeMismatch {
                            what: format!("{what} from {}", client.registry()),
                            expected: size,
                            actual: part.len() + n as u64,
                        });
                    }
                    part.write_all(&buf[..n])
                        .map_err(|e| ImageError::io_at(part.path(), e))?;
                    progress.blob_progress(digest, part.len());
                    if part.len() == size {
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
        stalls = if part.len() > before { 1 } else { stalls + 1 };
        if stalls >= policy.attempts {
            return Err(client.unreachable(format!(
                "download of {what} keeps failing at byte {} of {size}: {why}",
                part.len()
            )));
        }
        let delay = policy.delay(stalls);
        client.notify(&format!(
            "blob {}: {why}; resuming at byte {} in {:.1}s",
            digest.short(),
            part.len(),
            delay.as_secs_f64()
        ));
        std::thread::sleep(delay);
    }
    Ok(())
}
