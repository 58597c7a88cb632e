//! What a pull or push reports while it works, as a trait the caller implements (the CLI
//! draws progress bars or prints lines; the library itself never prints).

use crate::image::digest::Digest;

/// How a blob ended up where it had to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// Downloaded (or uploaded) and verified.
    Transferred,
    /// Already in the store (pull) or in the registry (push): nothing sent.
    AlreadyThere,
    /// Completed from a partial download kept from an earlier, interrupted pull.
    Resumed,
    /// Mounted from another repository of the same registry (push).
    Mounted,
}

/// Receives progress events; every method has an empty default. Called from several threads.
pub trait Progress: Sync {
    /// A one-line status message (resolved digest, platform, key gate passed, ...).
    fn note(&self, _message: &str) {}

    /// Work on a blob starts: `size` bytes in all, `done` already present (a resumed partial).
    fn blob_started(&self, _digest: &Digest, _size: u64, _done: u64) {}

    /// `done` bytes of the blob are now transferred (absolute; it may go down when a transfer
    /// restarts from the beginning).
    fn blob_progress(&self, _digest: &Digest, _done: u64) {}

    /// The blob is finished.
    fn blob_finished(&self, _digest: &Digest, _outcome: BlobOutcome) {}

    /// The blob failed (the whole operation fails with the error).
    fn blob_failed(&self, _digest: &Digest, _error: &str) {}
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
