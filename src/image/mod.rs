//! OCI images: layouts and archives, manifests and indexes, platform selection, and
//! image-level encrypt/decrypt that walks manifests and calls `crypto` on each layer.

pub mod error;

pub use error::{ImageError, Result};
