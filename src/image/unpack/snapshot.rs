//! Layer snapshots in the store: `<root>/snapshots/<hex of diff_id>/rootfs`, unpacked once from
//! a plain layer, checked against its diff_id, and never changed afterwards.
//!
//! A snapshot is built in `<root>/tmp/snapshot-*` (same filesystem), flushed, completed by a
//! `done` marker written last, then renamed to `<root>/snapshots/<hex>` with `RENAME_NOREPLACE`:
//! concurrent builders in any number of processes end with one snapshot, the losers discard
//! theirs. A snapshot directory without `done` is incomplete and is replaced. `snapshots/` and
//! each snapshot directory are 0700, so setuid files in a rootfs are unreachable by other users.
//! Callers serialise with `image prune` through the store lock (shared while building).

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::io::Errno;

use super::extract::Extractor;
use super::options::{Durability, UnpackOptions, Whiteouts};
use super::remove::remove_path;
use super::root::Root;
use super::staging::{self, Staging};
use super::{extract_layer, seal};
use crate::image::digest::Digest;
use crate::image::error::{ImageError, Result};

/// The directory of all snapshots, under the store root.
pub const SNAPSHOTS_DIR: &str = "snapshots";
/// The store's staging directory (same filesystem as the store).
pub const TMP_DIR: &str = "tmp";
/// The file whose presence says a snapshot is complete.
pub const DONE_FILE: &str = "done";
/// The snapshot's metadata file.
pub const META_FILE: &str = "meta.json";

/// What `meta.json` records about a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotMeta {
    /// The layer's diff_id (the directory's name is its hex).
    pub diff_id: Digest,
    /// The media type it was unpacked from.
    pub media_type: String,
    /// Tar entries.
    pub entries: u64,
    /// Uncompressed tar bytes.
    pub bytes: u64,
    /// How whiteouts are recorded in `rootfs`: `overlay` (0/0 character devices and
    /// `trusted.overlay.opaque`) or `markers` (the `.wh.` files as in the tar).
    pub whiteouts: Whiteouts,
    /// Device nodes skipped (unprivileged unpack).
    pub skipped_devices: u64,
    /// xattrs skipped.
    pub skipped_xattrs: u64,
}

/// `<root>/snapshots/<hex>`.
pub fn snapshot_dir(root: &Path, diff_id: &Digest) -> PathBuf {
    root.join(SNAPSHOTS_DIR).join(diff_id.hex())
}

/// The rootfs of a complete snapshot, if there is one.
pub fn snapshot_rootfs(root: &Path, diff_id: &Digest) -> Option<PathBuf> {
    let dir = snapshot_dir(root, diff_id);
    complete(&dir).then(|| dir.join("rootfs"))
}

/// The metadata of a complete snapshot.
pub fn read_meta(root: &Path, diff_id: &Digest) -> Result<SnapshotMeta> {
    let path = snapshot_dir(root, diff_id).join(META_FILE);
    let raw = fs::read(&path).map_err(|e| ImageError::io_at(&path, e))?;
    serde_json::from_slice(&raw)
        .map_err(|e| ImageError::malformed("snapshot metadata", e.to_string()))
}

fn complete(dir: &Path) -> bool {
    fs::symlink_metadata(dir.join(DONE_FILE)).is_ok_and(|m| m.is_file())
}

/// Make `dir` if missing, 0700; tighten it if it is ours and open to others.
fn private_dir(dir: &Path) -> Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let md = fs::symlink_metadata(dir).map_err(|e| ImageError::io_at(dir, e))?;
            if !md.is_dir() {
                return Err(ImageError::io_at(
                    dir,
                    std::io::Error::other("exists and is not a directory"),
                ));
            }
            if md.mode() & 0o077 != 0 && md.uid() == rustix::process::geteuid().as_raw() {
                fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                    .map_err(|e| ImageError::io_at(dir, e))?;
            }
            Ok(())
        }
        Err(e) => Err(ImageError::io_at(dir, e)),
    }
}

/// Write a small file and fsync it.
fn write_synced(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = fs::File::create(path).map_err(|e| ImageError::io_at(path, e))?;
    f.write_all(data).map_err(|e| ImageError::io_at(path, e))?;
    f.sync_all().map_err(|e| ImageError::io_at(path, e))
}

/// Move an incomplete snapshot directory out of the way and remove it. If it turns out to be
/// complete (another process finished it meanwhile), it is put back.
fn discard_incomplete(dir: &Path, tmp: &Path) -> Result<()> {
    let aside = Staging::new_in(tmp, "stale-")?;
    let target = aside.path().join("s");
    match fs::rename(dir, &target) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ImageError::io_at(dir, e)),
    }
    if complete(&target) {
        let from = rustix::fs::open(
            aside.path(),
            rustix::fs::OFlags::PATH,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| ImageError::io_at(aside.path(), e.into()))?;
        let parent = staging::parent_of(dir);
        let to = rustix::fs::open(&parent, rustix::fs::OFlags::PATH, rustix::fs::Mode::empty())
            .map_err(|e| ImageError::io_at(&parent, e.into()))?;
        let name = dir.file_name().unwrap_or_default();
        // If someone else already put a snapshot there, this copy is simply dropped.
        let _ =
            rustix::fs::renameat_with(&from, "s", &to, name, rustix::fs::RenameFlags::NOREPLACE);
    }
    drop(aside);
    Ok(())
}

/// Make sure the snapshot of the layer with `diff_id` exists under the store `root`, and
/// return its rootfs. `open_layer` (called only when the snapshot is missing) gives the plain
/// layer blob and its media type. The computed diff_id must equal `diff_id`, or nothing is
/// kept and the error is `DigestMismatch`. Default [`UnpackOptions`].
pub fn ensure_snapshot(
    root: &Path,
    diff_id: &Digest,
    open_layer: impl FnOnce() -> Result<(Box<dyn Read>, String)>,
) -> Result<PathBuf> {
    ensure_snapshot_with(root, diff_id, &UnpackOptions::default(), open_layer)
}

/// [`ensure_snapshot`] with options (limits, privileges, whiteout format). `opts.diff_id`
/// must be unset or equal to `diff_id`; `opts.durability` is ignored (snapshots are always
/// flushed before they are marked done).
pub fn ensure_snapshot_with(
    root: &Path,
    diff_id: &Digest,
    opts: &UnpackOptions,
    open_layer: impl FnOnce() -> Result<(Box<dyn Read>, String)>,
) -> Result<PathBuf> {
    if opts.diff_id.as_ref().is_some_and(|d| d != diff_id) {
        return Err(ImageError::InvalidUnpackOptions {
            reason: "UnpackOptions::diff_id differs from the snapshot's diff_id".into(),
        });
    }
    let dir = snapshot_dir(root, diff_id);
    if complete(&dir) {
        return Ok(dir.join("rootfs"));
    }
    let settled = opts.settle();
    if settled.whiteouts == Whiteouts::Apply {
        return Err(ImageError::InvalidUnpackOptions {
            reason: "a snapshot keeps its whiteouts (overlay or markers); Whiteouts::Apply is for apply_layers".into(),
        });
    }
    fs::create_dir_all(root).map_err(|e| ImageError::io_at(root, e))?;
    let snapshots = root.join(SNAPSHOTS_DIR);
    let tmp = root.join(TMP_DIR);
    private_dir(&snapshots)?;
    private_dir(&tmp)?;

    let (reader, media_type) = open_layer()?;
    let mut stage = Staging::new_in(&tmp, &format!("snapshot-{}-", &diff_id.hex()[..12]))?;
    let stage_path = stage.path();
    let rootfs = stage_path.join("rootfs");
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&rootfs)
        .map_err(|e| ImageError::io_at(&rootfs, e))?;
    let mut x = Extractor::new(
        Root::open(&rootfs).map_err(|e| ImageError::io_at(&rootfs, e))?,
        settled,
    );
    let summary = extract_layer(&mut x, reader, &media_type, Some(diff_id), "layer diff_id")?;
    seal(&mut x, &stage_path, Durability::Sync)?;
    drop(x);
    let meta = SnapshotMeta {
        diff_id: diff_id.clone(),
        media_type,
        entries: summary.entries,
        bytes: summary.bytes,
        whiteouts: summary.whiteouts,
        skipped_devices: summary.skipped_devices,
        skipped_xattrs: summary.skipped_xattrs,
    };
    let meta_json = serde_json::to_vec_pretty(&meta)
        .map_err(|e| ImageError::malformed("snapshot metadata", e.to_string()))?;
    write_synced(&stage_path.join(META_FILE), &meta_json)?;
    write_synced(
        &stage_path.join(DONE_FILE),
        format!("{diff_id}\n").as_bytes(),
    )?;
    staging::sync_dir(&stage_path)?;

    for _ in 0..3 {
        match stage.commit(&dir) {
            Ok(()) => {
                staging::sync_dir(&snapshots)?;
                return Ok(dir.join("rootfs"));
            }
            Err(Errno::EXIST) | Err(Errno::NOTEMPTY) => {
                if complete(&dir) {
                    // Another builder won; ours is removed on drop.
                    return Ok(dir.join("rootfs"));
                }
                discard_incomplete(&dir, &tmp)?;
            }
            Err(e) => return Err(ImageError::io_at(&dir, e.into())),
        }
    }
    Err(ImageError::io_at(
        &dir,
        std::io::Error::other(
            "an incomplete snapshot keeps reappearing; is another tool writing here?",
        ),
    ))
}

/// Remove a snapshot (for prune): moved aside first, so it disappears at once.
pub fn remove_snapshot(root: &Path, diff_id: &Digest) -> Result<()> {
    let dir = snapshot_dir(root, diff_id);
    let tmp = root.join(TMP_DIR);
    private_dir(&tmp)?;
    let aside = Staging::new_in(&tmp, "removed-")?;
    match fs::rename(&dir, aside.path().join("s")) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ImageError::io_at(&dir, e)),
    }
    remove_path(&aside.path()).map_err(|e| ImageError::io_at(aside.path(), e))?;
    drop(aside);
    Ok(())
}
