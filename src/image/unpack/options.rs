//! What an unpack may do: limits, whiteout format, setuid policy, privileges, durability.

use crate::image::digest::Digest;

/// Default bound on the uncompressed tar bytes of one layer and on the sum of its declared
/// file sizes (sparse files count with their full size): 64 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 30;

/// Default bound on the number of entries in one layer.
pub const DEFAULT_MAX_ENTRIES: u64 = 4 << 20;

/// How OCI whiteouts (`.wh.NAME`) and opaque markers (`.wh..wh..opq`) are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Whiteouts {
    /// `Overlay` when privileged, `Markers` otherwise.
    Auto,
    /// overlayfs format: a whiteout is a 0/0 character device, an opaque directory carries
    /// `trusted.overlay.opaque=y`. For a snapshot of one layer, used as an overlay lower dir.
    /// Needs root for the opaque xattr.
    Overlay,
    /// The whiteout entries are kept as the empty regular files they are in the tar (the AUFS
    /// layout); whoever stacks the snapshot must interpret them. Works without privileges.
    Markers,
    /// Apply them: remove the named paths of the layers below in `dest` (flattening several
    /// layers into one directory). Only paths from lower layers are removed, never ones this
    /// layer created, as the image spec says.
    Apply,
}

/// What happens to setuid/setgid bits and `security.capability` xattrs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetuidPolicy {
    /// Keep them, as container runtimes do. They are only ever placed below a directory that
    /// other users cannot search (the staging directory is 0700, and the final parent of
    /// `dest` must deny search to group and others), or the unpack fails with
    /// `HostVisibleSetuid`.
    Keep,
    /// Clear setuid and setgid on every non-directory and drop file capabilities. Loses what
    /// `sudo`, `ping` and the like need inside the container.
    Strip,
}

/// Whether the unpack uses root's powers (ownership, device nodes, `trusted.*` and
/// `security.capability` xattrs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privileges {
    /// Use them when the effective uid is 0.
    Auto,
    /// Never use them, even as root: files belong to the caller, device nodes are skipped,
    /// whiteouts default to markers.
    Rootless,
}

/// Whether the tree is flushed to disk before it is moved into place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `syncfs` the staging filesystem before the rename, so a crash never leaves a
    /// complete-looking tree with missing data.
    Sync,
    /// Skip the flush (a tmpfs, tests, benchmarks). A crash may leave empty files behind.
    NoSync,
}

/// Options of [`super::unpack_layer`] and [`super::apply_layers`].
#[derive(Debug, Clone)]
pub struct UnpackOptions {
    /// Bound on the uncompressed tar bytes and on the sum of declared file sizes.
    pub max_bytes: u64,
    /// Bound on the number of tar entries.
    pub max_entries: u64,
    /// Whiteout format ([`super::apply_layers`] always applies them).
    pub whiteouts: Whiteouts,
    /// Setuid/setgid and file capabilities.
    pub setuid: SetuidPolicy,
    /// Use root's powers or not.
    pub privileges: Privileges,
    /// The expected diff_id: when set, a different digest fails with `DigestMismatch` and
    /// nothing appears at `dest`. [`super::apply_layers`] takes one per layer instead.
    pub diff_id: Option<Digest>,
    /// Flush before the final rename.
    pub durability: Durability,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            max_entries: DEFAULT_MAX_ENTRIES,
            whiteouts: Whiteouts::Auto,
            setuid: SetuidPolicy::Keep,
            privileges: Privileges::Auto,
            diff_id: None,
            durability: Durability::Sync,
        }
    }
}

/// The options with `Auto` settled for this process.
#[derive(Debug, Clone, Copy)]
pub(super) struct Settled {
    pub max_bytes: u64,
    pub max_entries: u64,
    pub whiteouts: Whiteouts,
    pub setuid: SetuidPolicy,
    pub privileged: bool,
}

impl UnpackOptions {
    /// Settle `Auto` choices: privileged when root and not asked to be rootless.
    pub(super) fn settle(&self) -> Settled {
        let privileged =
            self.privileges == Privileges::Auto && rustix::process::geteuid().is_root();
        let whiteouts = match self.whiteouts {
            Whiteouts::Auto if privileged => Whiteouts::Overlay,
            Whiteouts::Auto => Whiteouts::Markers,
            other => other,
        };
        Settled {
            max_bytes: self.max_bytes,
            max_entries: self.max_entries,
            whiteouts,
            setuid: self.setuid,
            privileged,
        }
    }
}
