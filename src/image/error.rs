//! Errors of the `image` module: one variant per failure, security failures carry their data.

use std::path::PathBuf;

use crate::crypto::CryptoError;

/// Result of the `image` module.
pub type Result<T, E = ImageError> = std::result::Result<T, E>;

/// Everything that can go wrong with images.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// A failure of the layer crypto.
    #[error(transparent)]
    Crypto(#[from] CryptoError),

    /// Reading or writing failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),

    /// Reading or writing a named file failed.
    #[error("{}: {source}", path.display())]
    IoAt {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An image argument that cannot be parsed.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },

    /// A platform argument that cannot be parsed.
    #[error(
        "invalid platform {platform:?}: {reason}; use OS/ARCH[/VARIANT], for example linux/amd64"
    )]
    InvalidPlatform { platform: String, reason: String },

    /// A digest that is not `sha256:` followed by 64 lower-case hex digits.
    #[error("invalid digest {digest:?}: {reason}")]
    InvalidDigest { digest: String, reason: String },

    /// Content whose sha256 is not the one it is addressed by.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },

    /// Content whose length is not the one its descriptor declares.
    #[error("size mismatch for {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },

    /// A manifest, index or config larger than rrun reads into memory.
    #[error("{what} is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge { what: String, size: u64, limit: u64 },

    /// A blob that a descriptor points to is not in the layout.
    #[error("blob {digest} is missing from {}", layout.display())]
    BlobMissing { digest: String, layout: PathBuf },

    /// A layer media type rrun does not know.
    #[error("unknown layer media type {media_type}: rrun will not pass it through")]
    UnknownMediaType { media_type: String },

    /// A manifest or index media type rrun does not read.
    #[error("unsupported manifest media type {media_type}: {hint}")]
    UnsupportedManifest { media_type: String, hint: String },

    /// No index.json entry carries the tag.
    #[error("tag {tag:?} not found in {image}; available: {available}")]
    TagNotFound {
        image: String,
        tag: String,
        available: String,
    },

    /// The reference has no tag and the layout holds more than one image (or one tag names
    /// several different images).
    #[error("{image} holds several images ({tags}): name one with :TAG")]
    AmbiguousImage { image: String, tags: String },

    /// A manifest, index, config or annotation that is not what it must be.
    #[error("malformed {what}: {reason}")]
    Malformed { what: String, reason: String },

    /// A path that should be an OCI image layout is not one.
    #[error("{} is not an OCI image layout (no oci-layout file with imageLayoutVersion 1.0.0); give an existing layout, an empty directory or a new path", path.display())]
    NotALayout { path: PathBuf },

    /// No manifest of the image matches the requested platforms.
    #[error("no manifest in {image} matches platform {wanted}; available: {available}")]
    NoMatchingPlatform {
        image: String,
        wanted: String,
        available: String,
    },

    /// A `--layer` index outside the layers of a platform's manifest.
    #[error("layer index {index} is out of range: {platform} has {count} layers (valid: {valid})")]
    LayerOutOfRange {
        index: i64,
        platform: String,
        count: usize,
        valid: String,
    },

    /// Encryption was asked for without any recipient.
    #[error("no recipients: give at least one --recipient (for example jwe:pubkey.pem)")]
    NoRecipients,

    /// Recipients cannot be added to an already encrypted layer without a key that opens it.
    #[error("layer {layer} is already encrypted; adding recipients to it needs a private key that opens it (--key): {source}")]
    AlreadyEncrypted {
        layer: String,
        #[source]
        source: CryptoError,
    },

    /// A layer has ocicrypt key annotations but a plain media type (or the other way round).
    #[error("layer {layer} is inconsistent: {reason}")]
    InconsistentLayer { layer: String, reason: String },

    /// An oci-archive entry that rrun refuses to extract.
    #[error("refusing entry {entry:?} of archive {}: {reason}", archive.display())]
    HostileArchive {
        archive: PathBuf,
        entry: String,
        reason: String,
    },

    /// An `image import` source that cannot be used.
    #[error("cannot import {}: {reason}", path.display())]
    InvalidImport { path: PathBuf, reason: String },

    // ---- image::store (the local image store under --root) ----
    /// A `--root` that exists but is neither empty nor an rrun store.
    #[error("{} is not an rrun image store (it holds {entry:?}): give --root an empty or new directory, or an existing store", root.display())]
    NotAStore { root: PathBuf, entry: String },

    /// Reading from a store that was never created.
    #[error("no image store at {}: import, load or pull an image first, or give the right --root", root.display())]
    NoStore { root: PathBuf },

    /// The store's `index.json` cannot be parsed; rrun never overwrites it then.
    #[error("the store index {} is corrupted ({reason}); rrun will not overwrite it: restore it from a backup, or move the store away and start a new one", path.display())]
    CorruptStoreIndex { path: PathBuf, reason: String },

    /// No image in the store has this name or id.
    #[error("image {name:?} not found in the store at {}: see rrun images, or import, load or pull it first", root.display())]
    ImageNotFound { name: String, root: PathBuf },

    /// An image id prefix that several images share.
    #[error(
        "image id {prefix:?} is ambiguous: it starts the ids of {candidates}; give more digits"
    )]
    AmbiguousImageId { prefix: String, candidates: String },

    /// `rmi` by id of an image that still has several names.
    #[error(
        "image {id} has several names ({names}): remove them one by one by name, or use rmi -f"
    )]
    ImageHasNames { id: String, names: String },

    /// A name that cannot be given to an image in the store.
    #[error("invalid image name {name:?}: {reason}")]
    InvalidImageName { name: String, reason: String },

    /// An image whose blobs cannot be followed, so prune cannot know what it still needs.
    #[error("cannot prune: image {image} is damaged ({reason}); remove it with rrun rmi first")]
    DamagedImage { image: String, reason: String },

    /// `docker://` where only local images can be used for now.
    #[error("docker:// is not supported here yet: pull the image first (rrun pull {reference}) and use its store name")]
    DockerNotSupported { reference: String },
}

impl ImageError {
    /// An i/o error with the path it happened on.
    pub fn io_at(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::IoAt {
            path: path.into(),
            source,
        }
    }

    /// A malformed-content error.
    pub fn malformed(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Malformed {
            what: what.into(),
            reason: reason.into(),
        }
    }
}
