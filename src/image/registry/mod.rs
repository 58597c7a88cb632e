//! The registry side of images: a blocking distribution-spec v2 client (`client`, with `auth`,
//! `authfile` and `retry`), and `pull` and `push` built on it.
//!
//! Pull goes reference -> top manifest or index (verified digest) -> the platform's manifest
//! and config -> the key gate -> parallel layer downloads into the store's staging (`fetch`:
//! resumable, every byte verified) -> `StoreDestination::commit` -> `pull::after_pull` (the
//! unpack call site). Push goes layout (optionally encrypted by `image::crypt` first) -> blob
//! uploads (`upload`: skip, mount or stream) -> manifests, the tagged one last.

pub mod auth;
pub mod authfile;
pub mod client;
pub mod fetch;
pub mod parallel;
pub mod progress;
pub mod pull;
pub mod push;
pub mod retry;
pub mod upload;

pub use auth::Credentials;
pub use authfile::AuthFiles;
pub use client::{Client, ClientOptions, CredentialSource, TlsVerify};
pub use progress::{BlobOutcome, NoProgress, Progress};
pub use pull::{after_pull, pull, PullOptions, PullSummary, Unpack};
pub use push::{push, PushOptions, PushSummary};
pub use retry::RetryPolicy;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testserver;
