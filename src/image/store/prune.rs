//! `image prune`: mark every blob reachable from `index.json` (through indexes, manifests,
//! configs and layers, encrypted or not) and every blob a live writer's lease protects, then
//! remove the other blobs, the partial downloads no pull holds, and the snapshots whose
//! diff_id no stored image's config lists.

use std::collections::BTreeSet;
use std::fs;

use crate::image::digest::Digest;
use crate::image::error::{ImageError, Result};
use crate::image::layout;

use super::lease::{self, TMP_DIR};
use super::lock::LockMode;
use super::partial;
use super::walk;
use super::{Store, SNAPSHOTS_DIR};

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PruneSummary {
    /// Blobs removed.
    pub blobs_removed: usize,
    /// Their bytes.
    pub bytes_freed: u64,
    /// Snapshots removed.
    pub snapshots_removed: usize,
    /// Partial downloads of interrupted pulls removed (their bytes are in `bytes_freed`).
    pub partials_removed: usize,
}

/// The 64 hex digits of a snapshot or blob file name, if that is what the name is.
fn hex_name(path: &std::path::Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    Digest::parse(&format!("sha256:{name}"))
        .ok()
        .map(|d| d.hex().to_string())
}

impl Store {
    /// Remove the blobs and snapshots no stored image needs. Refuses (removing nothing) when
    /// an image cannot be followed, since what it needs would then be unknown.
    pub fn prune(&self) -> Result<PruneSummary> {
        let _guard = self.lock(LockMode::Exclusive)?;
        let index = self.read_index()?;
        let mut keep: BTreeSet<Digest> = BTreeSet::new();
        let mut diff_ids: BTreeSet<String> = BTreeSet::new();
        for entry in &index.manifests {
            let reached =
                walk::reach(self.layout(), entry).map_err(|e| ImageError::DamagedImage {
                    image: entry
                        .ref_name()
                        .map(str::to_string)
                        .unwrap_or_else(|| entry.digest.to_string()),
                    reason: e.to_string(),
                })?;
            for leaf in &reached.leaves {
                diff_ids.extend(
                    leaf.diff_ids()
                        .into_iter()
                        .flatten()
                        .map(|d| d.hex().into()),
                );
            }
            keep.extend(reached.blobs.into_keys());
        }
        keep.extend(lease::live_leases(self.root())?);
        let keep: BTreeSet<&str> = keep.iter().map(Digest::hex).collect();

        let mut summary = PruneSummary::default();
        let blobs_dir = self.layout().blobs_dir();
        for path in lease::entries(&blobs_dir)? {
            let Some(hex) = hex_name(&path) else {
                continue;
            };
            if keep.contains(hex.as_str()) {
                continue;
            }
            let meta = fs::symlink_metadata(&path).map_err(|e| ImageError::io_at(&path, e))?;
            fs::remove_file(&path).map_err(|e| ImageError::io_at(&path, e))?;
            summary.blobs_removed += 1;
            summary.bytes_freed += meta.len();
        }
        layout::sync_dir(&blobs_dir)?;
        let (partials, bytes) = partial::sweep(self.root(), &blobs_dir, partial::Sweep::RemoveAll)?;
        summary.partials_removed = partials;
        summary.bytes_freed += bytes;

        let tmp = self.root().join(TMP_DIR);
        for path in lease::entries(&self.root().join(SNAPSHOTS_DIR))? {
            let Some(hex) = hex_name(&path) else {
                continue;
            };
            if diff_ids.contains(&hex) {
                continue;
            }
            // Out of snapshots/ in one rename, then deleted: a crash in between leaves only
            // a leftover in tmp/, which the next exclusive lock removes.
            let doomed = tmp.join(format!("pruned-{hex}"));
            lease::remove_tree(&doomed)?;
            fs::rename(&path, &doomed).map_err(|e| ImageError::io_at(&path, e))?;
            lease::remove_tree(&doomed)?;
            summary.snapshots_removed += 1;
        }
        Ok(summary)
    }
}
