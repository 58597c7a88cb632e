//! Content trust: a TUF client core with two dialects, Notary v1 (Docker Content Trust:
//! tag -> signed manifest digest and size) and plain TUF 1.0 repositories, plus Notary signing.
//!
//! This module imports no other rrun module (DESIGN.md section 1). Everything that reaches the
//! outside goes through two small traits: `Transport` (HTTP or filesystem) and `Clock`.
//! Comments cite the TUF specification's client workflow steps (section 5, e.g. `5.3.4`).

pub mod cache;
pub mod canonical;
pub mod client;
pub mod clock;
pub mod error;
pub mod keys;
pub mod metadata;
pub mod notary;
pub mod sign;
pub mod transport;
pub mod tuf;
pub mod verify;

pub use client::{Limits, Verified};
pub use clock::{Clock, FixedClock, SystemClock};
pub use error::{Result, RootSigner, TrustError};
pub use notary::{default_trust_server, Gun, NotaryClient, NotaryRepo, TrustRoot, TrustedTarget};
pub use sign::{KeyStore, NotarySigner, Passphrases, SignOutcome};
pub use transport::{FilesystemTransport, HttpOptions, HttpTransport, PlainHttp, Transport};
pub use tuf::{tuf_download, tuf_init, tuf_refresh};

#[cfg(test)]
mod samples_tests;
