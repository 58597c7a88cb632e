//! Content trust: a TUF client core with two dialects, Notary v1 (Docker Content Trust:
//! tag -> signed manifest digest and size) and plain TUF 1.0 repositories, plus Notary signing.
//!
//! This module imports no other rrun module (DESIGN.md section 1). Everything that reaches the
//! outside goes through two small traits: `Transport` (HTTP or filesystem) and `Clock`.
//! Comments cite the TUF specification's client workflow steps (section 5, e.g. `5.3.4`).
//!
//! * Verify (pull): `NotaryClient::https(server, cache_dir, &HttpOptions)?.resolve(gun, tag)`
//!   gives a `TrustedTarget { digest: "sha256:<hex>", size, role, signers, expires }`, with
//!   `targets/releases` preferred over `targets` as `docker pull` did. `list(gun)` for
//!   `trust inspect`. The cache holds the verified metadata of each GUN in
//!   `cache_dir/<GUN>/{root,timestamp,snapshot,targets,targets/<role>}.json` (root pinned on
//!   first use; `TrustRoot::Pinned(file)` to pin explicitly).
//! * Sign: `NotarySigner::new(&client, trust_dir, Passphrases::from_env())` with `sign`,
//!   `revoke`, `add_signer`, `remove_signer`; keys are encrypted PKCS#8 files under
//!   `trust_dir/private/` (`KeyStore`, `generate_signer` for `trust key generate`).
//! * Plain TUF 1.0: `tuf_init`, `tuf_refresh`, `tuf_download` (the tuf-conformance protocol).
//! * Policy: `policy::Policy::load(path)?.requirement(name)` says per registry / namespace /
//!   repository whether images must be resolved through signed metadata, or are rejected.

pub mod cache;
pub mod canonical;
pub mod client;
pub mod clock;
pub mod error;
pub mod keys;
pub mod metadata;
pub mod notary;
pub mod policy;
pub mod sign;
pub mod transport;
pub mod tuf;
pub mod verify;

pub use client::{Limits, Verified};
pub use clock::{Clock, FixedClock, SystemClock};
pub use error::{Result, RootSigner, TrustError};
pub use notary::{default_trust_server, Gun, NotaryClient, NotaryRepo, TrustRoot, TrustedTarget};
pub use sign::{KeyStore, NotarySigner, Passphrases, SignOutcome};
pub use transport::{
    BasicAuth, FilesystemTransport, HttpOptions, HttpTransport, PlainHttp, Transport,
};
pub use tuf::{tuf_download, tuf_init, tuf_refresh};

#[cfg(test)]
mod samples_tests;
