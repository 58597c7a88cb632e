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

    // ---- unpack (src/image/unpack/) ----
    /// A layer entry that would escape or corrupt the root (traversal, hardlink out of the
    /// root, a whiteout of `..`, a symlink loop in its path): the whole layer is refused.
    #[error("refusing layer entry {entry:?}: {reason}")]
    UnsafeEntry { entry: String, reason: String },

    /// A layer beyond an unpack limit (bytes or entries).
    #[error("layer exceeds the unpack limit of {limit} {what}; raise the limit only for an image you trust")]
    UnpackLimit { what: String, limit: u64 },

    /// A layer whose tar or compressed stream ends early.
    #[error("layer is truncated: {reason}")]
    TruncatedLayer { reason: String },

    /// A layer tar that cannot be parsed.
    #[error("malformed layer tar at byte {offset}: {reason}")]
    MalformedTar { offset: u64, reason: String },

    /// An encrypted layer handed to unpack.
    #[error("layer media type {media_type} is encrypted: decrypt the layer before unpacking it")]
    EncryptedLayer { media_type: String },

    /// Layer bytes that are not the compression their media type names.
    #[error("layer labelled {media_type} is not {expected} data: {found}")]
    CompressionMismatch {
        media_type: String,
        expected: String,
        found: String,
    },

    /// A compressed layer stream that does not decompress.
    #[error("cannot decompress the {format} layer: {source}")]
    Decompress {
        format: String,
        #[source]
        source: std::io::Error,
    },

    /// An unpack destination that already exists.
    #[error("unpack destination {} already exists: remove it or choose a new path", path.display())]
    DestinationExists { path: PathBuf },

    /// Setuid/setgid files or file capabilities headed for a directory other users can reach.
    #[error("the layer holds setuid/setgid files or file capabilities and {} is searchable by other users: unpack below a 0700 directory, or strip them (SetuidPolicy::Strip)", path.display())]
    HostVisibleSetuid { path: PathBuf },

    /// An unpack step that needs privileges this process lacks.
    #[error("{what} needs root: {hint}")]
    NeedsRoot { what: String, hint: String },

    /// Unpack options that contradict each other.
    #[error("invalid unpack options: {reason}")]
    InvalidUnpackOptions { reason: String },

    // --- registry client and pull/push (src/image/registry/) ---
    /// The key gate refused a pull: no given key opens these encrypted layers. Nothing was
    /// downloaded or stored.
    #[error("no key opens {} of {image}; nothing was downloaded: {}", plural(layers.len(), "encrypted layer"), LockedLayer::list(layers))]
    KeyGate {
        image: String,
        layers: Vec<LockedLayer>,
    },

    /// The registry could not be reached (after retries for transient failures).
    #[error("cannot reach registry {registry}: {reason}")]
    RegistryUnreachable { registry: String, reason: String },

    /// The registry refused the credentials (or gave no access) after one refresh.
    #[error(
        "not authorized by {registry} for {what}: {reason}; log in with rrun login {registry}"
    )]
    Unauthorized {
        registry: String,
        what: String,
        reason: String,
    },

    /// Credentials given to `rrun login` were refused.
    #[error("login to {registry} failed: {reason}")]
    LoginFailed { registry: String, reason: String },

    /// A manifest or blob the registry does not have.
    #[error("{what} not found in {registry} (HTTP 404){}", detail_suffix(detail))]
    RegistryNotFound {
        registry: String,
        what: String,
        detail: String,
    },

    /// An HTTP status rrun does not expect for the request.
    #[error(
        "registry {registry} answered {what} with HTTP {status}{}",
        detail_suffix(detail)
    )]
    RegistryStatus {
        registry: String,
        what: String,
        status: u16,
        detail: String,
    },

    /// A registry answer that breaks the distribution protocol.
    #[error("registry {registry} broke the protocol: {reason}")]
    RegistryProtocol { registry: String, reason: String },

    /// A credentials file (docker config.json, containers auth.json) that cannot be used.
    #[error("credentials file {}: {reason}", path.display())]
    AuthFile { path: PathBuf, reason: String },

    /// A TLS setting that cannot be used (`--tls-ca`).
    #[error("tls: {reason}")]
    TlsConfig { reason: String },

    /// Another thread of the same pull or push failed first.
    #[error("cancelled because another transfer failed")]
    Cancelled,
}

// --- registry (src/image/registry/): the data of `ImageError::KeyGate` and message helpers ---

/// One encrypted layer that none of the given keys opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedLayer {
    /// The layer digest.
    pub layer: String,
    /// The key-wrapping schemes it is encrypted for (`jwe`, `pgp`, ...).
    pub schemes: Vec<String>,
    /// Why the keys failed (the crypto error).
    pub reason: String,
}

impl LockedLayer {
    fn list(layers: &[LockedLayer]) -> String {
        layers
            .iter()
            .map(|l| {
                format!(
                    "layer {} needs a {} private key ({})",
                    l.layer,
                    if l.schemes.is_empty() {
                        "matching".to_string()
                    } else {
                        l.schemes.join(" or ")
                    },
                    l.reason
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

// --- end of registry block ---

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
