//! Safe unpacking of plain (decrypted) layers: decompression by media type, a bounded tar
//! reader that computes the diff_id on the way, and an extractor that never creates or writes
//! anything outside its root (DESIGN.md invariant 4).
//!
//! How the root is kept: every entry's directory is resolved inside the root one component
//! at a time with `O_NOFOLLOW` descriptors (`root.rs`); symlinks met on the way are followed
//! *inside* the root (absolute targets restart at the root, `..` stops there), which is what
//! the path means in the container; the entry itself is made with `*at` calls that never
//! follow its final component. Entry names with `..` are refused, leading `/` is stripped
//! (`entry_path.rs`); hardlink targets resolve inside the root and must exist there. Work
//! happens in a 0700 staging directory beside the destination that is renamed into place only
//! when everything (limits, diff_id, setuid placement) checked out, and removed otherwise.
//!
//! * [`unpack_layer`]: one layer into a new directory (a snapshot, with overlay whiteouts).
//! * [`apply_layers`]: several layers on top of each other into one new directory, whiteouts
//!   applied (the sealed rootfs of an encrypted image, in a tmpfs).
//! * [`snapshot`]: `<root>/snapshots/<hex of diff_id>/rootfs`, made once.

mod decompress;
mod entry_path;
mod extract;
mod metadata;
mod options;
mod remove;
mod root;
pub mod snapshot;
mod staging;
mod tar_stream;
mod whiteout;

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod normal_tests;
#[cfg(test)]
mod testutil;

use std::io::Read;
use std::path::Path;

use rustix::fs as rfs;

pub use options::{
    Durability, Privileges, SetuidPolicy, UnpackOptions, Whiteouts, DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ENTRIES,
};
pub use snapshot::{ensure_snapshot, ensure_snapshot_with, snapshot_rootfs};

use crate::image::digest::Digest;
use crate::image::error::{ImageError, Result};
use extract::Extractor;
use options::Settled;
use root::Root;
use staging::Staging;
use tar_stream::TarStream;

/// What one layer's unpack did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnpackSummary {
    /// sha256 of the uncompressed tar, computed while extracting.
    pub diff_id: Digest,
    /// Tar entries (PAX and GNU extension headers not counted).
    pub entries: u64,
    /// Length of the uncompressed tar.
    pub bytes: u64,
    /// Device nodes not created because the unpack was not privileged.
    pub skipped_devices: u64,
    /// xattrs not set: outside the allowed namespaces, not privileged, or not supported by
    /// the filesystem.
    pub skipped_xattrs: u64,
    /// How whiteouts were written.
    pub whiteouts: Whiteouts,
}

/// One plain layer, for [`apply_layers`].
pub struct LayerSource<'a> {
    /// The layer blob (compressed as `media_type` says; already decrypted).
    pub reader: Box<dyn Read + 'a>,
    /// Its media type.
    pub media_type: String,
    /// Its expected diff_id, checked when given.
    pub diff_id: Option<Digest>,
}

impl std::fmt::Debug for LayerSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerSource")
            .field("media_type", &self.media_type)
            .field("diff_id", &self.diff_id)
            .finish_non_exhaustive()
    }
}

/// Extract one layer stream into the extractor's root; returns its summary.
fn extract_layer(
    x: &mut Extractor,
    reader: impl Read,
    media_type: &str,
    expected: Option<&Digest>,
    what: &str,
) -> Result<UnpackSummary> {
    let (stream, compression) = decompress::decompress(reader, media_type)?;
    let mut tar = TarStream::new(stream, compression, x.settled.max_bytes);
    let devices = x.skipped_devices;
    let xattrs = x.skipped_xattrs;
    let entries = x.layer(&mut tar)?;
    let (diff_id, bytes) = tar.finish()?;
    if let Some(expected) = expected {
        if *expected != diff_id {
            return Err(ImageError::DigestMismatch {
                what: what.to_string(),
                expected: expected.to_string(),
                actual: diff_id.to_string(),
            });
        }
    }
    Ok(UnpackSummary {
        diff_id,
        entries,
        bytes,
        skipped_devices: x.skipped_devices - devices,
        skipped_xattrs: x.skipped_xattrs - xattrs,
        whiteouts: x.settled.whiteouts,
    })
}

/// Finish a tree that is complete: directory metadata, the setuid placement check (before
/// the staging root opens up), the root's mode, and the flush.
fn seal(x: &mut Extractor, final_parent: &Path, durability: Durability) -> Result<()> {
    x.finish_dirs()?;
    if x.setuid_seen
        && x.settled.setuid == SetuidPolicy::Keep
        && !staging::is_private(final_parent)?
    {
        return Err(ImageError::HostVisibleSetuid {
            path: final_parent.to_path_buf(),
        });
    }
    x.finish_root()?;
    if durability == Durability::Sync {
        rfs::syncfs(x.root.fd()).map_err(|e| ImageError::io_at(x.root.path(), e.into()))?;
    }
    Ok(())
}

/// Unpack into a staging directory beside `dest` and rename it to `dest`.
fn unpack_staged(
    dest: &Path,
    settled: Settled,
    durability: Durability,
    fill: impl FnOnce(&mut Extractor) -> Result<Vec<UnpackSummary>>,
) -> Result<Vec<UnpackSummary>> {
    let mut stage = Staging::beside(dest)?;
    let mut x = Extractor::new(
        Root::open(&stage.path()).map_err(|e| ImageError::io_at(stage.path(), e))?,
        settled,
    );
    let summaries = fill(&mut x)?;
    let parent = staging::parent_of(dest);
    seal(&mut x, &parent, durability)?;
    drop(x);
    stage.commit(dest).map_err(|e| match e {
        rustix::io::Errno::EXIST | rustix::io::Errno::NOTEMPTY => ImageError::DestinationExists {
            path: dest.to_path_buf(),
        },
        e => ImageError::io_at(dest, e.into()),
    })?;
    if durability == Durability::Sync {
        staging::sync_dir(&parent)?;
    }
    Ok(summaries)
}

/// Unpack one plain layer blob (gzip, zstd or uncompressed, as `media_type` says; an
/// `+encrypted` type is refused: decrypt first) into the new directory `dest`.
///
/// Nothing is created outside `dest` (see the module docs for how). The work happens in a
/// 0700 staging directory beside `dest`, renamed to `dest` only when the whole layer was
/// extracted, within `opts.max_bytes`/`opts.max_entries`, with `opts.diff_id` when given; on
/// any error the staging directory is removed and `dest` does not appear. `dest` must not
/// exist; its parent must.
pub fn unpack_layer(
    reader: impl Read,
    media_type: &str,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackSummary> {
    let settled = opts.settle();
    let mut summaries = unpack_staged(dest, settled, opts.durability, |x| {
        Ok(vec![extract_layer(
            x,
            reader,
            media_type,
            opts.diff_id.as_ref(),
            "layer diff_id",
        )?])
    })?;
    Ok(summaries.remove(0))
}

/// Apply several plain layers, lowest first, on top of each other into the new directory
/// `dest`, honouring whiteouts and opaque directories across layers (each layer removes only
/// what the layers below it made). Each layer's `diff_id` is checked when given; the limits
/// apply to each layer. `opts.whiteouts` is ignored (whiteouts are applied) and
/// `opts.diff_id` must be `None`. Staging, cleanup and the rename are as in [`unpack_layer`].
pub fn apply_layers<'a, I>(
    layers: I,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<Vec<UnpackSummary>>
where
    I: IntoIterator<Item = Result<LayerSource<'a>>>,
{
    if opts.diff_id.is_some() {
        return Err(ImageError::InvalidUnpackOptions {
            reason:
                "apply_layers checks each LayerSource's diff_id; leave UnpackOptions::diff_id unset"
                    .into(),
        });
    }
    let mut settled = opts.settle();
    settled.whiteouts = Whiteouts::Apply;
    unpack_staged(dest, settled, opts.durability, |x| {
        let mut out = Vec::new();
        for (i, layer) in layers.into_iter().enumerate() {
            let layer = layer?;
            out.push(extract_layer(
                x,
                layer.reader,
                &layer.media_type,
                layer.diff_id.as_ref(),
                &format!("diff_id of layer {i}"),
            )?);
        }
        Ok(out)
    })
}
