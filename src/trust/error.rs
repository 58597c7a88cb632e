//! Errors of the `trust` module: one variant per security failure, each carrying its data.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

/// Result of the `trust` module.
pub type Result<T, E = TrustError> = std::result::Result<T, E>;

/// Which root a root-rotation signature check was made against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootSigner {
    /// The trusted root that the new one replaces (TUF 5.3.4).
    Old,
    /// The new root itself (TUF 5.3.5).
    New,
}

impl std::fmt::Display for RootSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RootSigner::Old => "the trusted (old) root",
            RootSigner::New => "the new root itself",
        })
    }
}

/// Everything that can go wrong while verifying, updating or signing TUF / Notary metadata.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// A signature by a key listed for the role does not verify, and the role is under threshold.
    #[error("{role} metadata: signature by key {keyid} does not verify (tampered metadata or wrong key)")]
    BadSignature { role: String, keyid: String },

    /// Fewer distinct valid signatures than the role's threshold.
    #[error("{role} metadata: {have} valid signature(s) from distinct keys, threshold is {need}")]
    Threshold {
        role: String,
        have: usize,
        need: usize,
    },

    /// The metadata's `expires` is in the past (freeze attack, or a stale mirror).
    #[error("{role} metadata expired at {expires} (freeze attack or stale server)")]
    Expired {
        role: String,
        expires: DateTime<Utc>,
    },

    /// A version lower than the one already trusted (rollback attack).
    #[error("{role} metadata: version {got} is older than the trusted version {cached} (rollback attack)")]
    Rollback { role: String, cached: u64, got: u64 },

    /// A version other than the one the referencing metadata names.
    #[error("{role} metadata: version {got}, but {expected} was expected")]
    VersionMismatch {
        role: String,
        expected: u64,
        got: u64,
    },

    /// Downloaded bytes do not have the hash the referencing metadata names (mix-and-match).
    #[error("{what}: {algorithm} mismatch: expected {expected}, got {actual}")]
    HashMismatch {
        what: String,
        algorithm: String,
        expected: String,
        actual: String,
    },

    /// Downloaded bytes do not have the length the referencing metadata names.
    #[error("{what}: length {actual} bytes, expected {expected}")]
    LengthMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },

    /// A new root that is not signed by a threshold of the old root's and its own root keys.
    #[error("root rotation {from} -> {to} refused: {have} valid signature(s) by {signer}, threshold is {need}")]
    RootRotation {
        from: u64,
        to: u64,
        signer: RootSigner,
        have: usize,
        need: usize,
    },

    /// A delegated role signed a target outside its (parent-restricted) paths.
    #[error("role {role} is not trusted for {path:?}: outside the paths delegated to it")]
    DelegationOutOfScope { role: String, path: String },

    /// No trusted role lists the tag or target.
    #[error("no trust data for {gun}:{tag}")]
    UnknownTarget { gun: String, tag: String },

    /// The trust server has no metadata at all for the repository (it was never signed).
    #[error("{server} has no trust data for {gun}: the repository is not signed")]
    NoTrustData { gun: String, server: String },

    /// A root certificate that cannot anchor the repository (CN, validity, algorithm).
    #[error("root key {keyid}: {reason}")]
    RootCertificate { keyid: String, reason: String },

    /// A key whose id is not the hash of its canonical form.
    #[error("{role} metadata: key id {keyid} does not match the key (computed {computed})")]
    KeyIdMismatch {
        role: String,
        keyid: String,
        computed: String,
    },

    /// A download larger than its cap.
    #[error("{url}: response larger than the {max}-byte limit")]
    TooLarge { url: String, max: u64 },

    /// Metadata whose `_type` is not the expected role type.
    #[error("{role} metadata: _type is {got:?}, expected {expected:?}")]
    WrongType {
        role: String,
        expected: String,
        got: String,
    },

    /// Metadata that cannot be parsed or misses required fields.
    #[error("{role} metadata is malformed: {reason}")]
    Metadata { role: String, reason: String },

    /// A role that the referencing metadata does not list.
    #[error("{role} is not listed in {parent} metadata")]
    MissingMeta { role: String, parent: String },

    /// The server has no such file.
    #[error("{url}: not found")]
    NotFound { url: String },

    /// A network or protocol failure (not a verification failure).
    #[error("{url}: {reason}")]
    Transport { url: String, reason: String },

    /// A local file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A key that cannot be parsed or used.
    #[error("bad key: {0}")]
    Key(String),

    /// A private key file whose passphrase is wrong or missing.
    #[error("cannot decrypt {}: wrong or missing passphrase ({env})", path.display())]
    Passphrase { path: PathBuf, env: &'static str },

    /// The signer holds no key for any role that could sign the change.
    #[error("no signing key for {gun}: {reason}")]
    NoSigningKey { gun: String, reason: String },

    /// The server has no repository but a root is pinned for it locally.
    #[error("the trust server has no data for {gun} but its root is pinned in {}: if the repository was deleted on purpose, remove that directory", path.display())]
    PinnedRootConflict { gun: String, path: PathBuf },

    /// A name (GUN, role, target, key name) that is not acceptable.
    #[error("invalid {kind} {name:?}: {reason}")]
    InvalidName {
        kind: &'static str,
        name: String,
        reason: String,
    },

    /// The notary server refused a publish.
    #[error("notary server refused the update ({status}): {body}")]
    Publish { status: u16, body: String },

    /// Anything OpenSSL reports while building keys, certificates or signatures.
    #[error("openssl: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}

impl TrustError {
    /// Metadata error helper.
    pub(crate) fn meta(role: &str, reason: impl Into<String>) -> Self {
        TrustError::Metadata {
            role: role.to_string(),
            reason: reason.into(),
        }
    }

    /// I/O error helper.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrustError::Io {
            path: path.into(),
            source,
        }
    }

    /// True for a missing file on the server (the only non-fatal download failure).
    pub fn is_not_found(&self) -> bool {
        matches!(self, TrustError::NotFound { .. })
    }
}
