//! ocicrypt: the layer cipher, key wrapping and key parsing.
//!
//! This module sees bytes, keys and annotation maps only: nothing about registries, stores or
//! containers. `layer` is the entry point the image code uses; it matches what
//! containers/ocicrypt `encryption.go` does for one layer descriptor.

pub mod blockcipher;
pub mod config;
pub mod decoder;
pub mod error;
pub mod keys;
pub mod keywrap;
pub mod layer;
pub mod options;

pub use config::{DecryptConfig, EncryptConfig, Recipient};
pub use error::{CryptoError, Result};

/// Prefix of every ocicrypt annotation (`FilterOutAnnotations` removes all of them).
pub const ANN_PREFIX: &str = "org.opencontainers.image.enc.";
/// The public options annotation.
pub const ANN_PUBOPTS: &str = "org.opencontainers.image.enc.pubopts";
/// Prefix of the wrapped-key annotations, followed by the scheme (`jwe`, `pgp`, ...).
pub const ANN_KEYS_PREFIX: &str = "org.opencontainers.image.enc.keys.";
