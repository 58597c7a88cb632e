//! OCI images: layouts and archives, manifests and indexes, platform selection, and
//! image-level encrypt/decrypt that walks manifests and calls `crypto` on each layer.
//!
//! Reading goes `reference` -> `transport::Source` (layout or extracted archive) -> `tree`
//! (verified manifests and indexes); writing goes through `transport::Destination`, whose
//! `stage` removes everything it created unless the final `index.json` update is reached.
//! `crypt` (encrypt, decrypt, layerinfo) and `import` are the entry points the CLI uses.

pub mod archive;
pub mod crypt;
pub mod digest;
pub mod error;
pub mod import;
pub mod layout;
pub mod manifest;
pub mod media_type;
pub mod name;
pub mod platform;
pub mod reference;
pub mod registry;
pub mod rewrite;
pub mod rootfs;
pub mod rootfs_tar;
pub mod stage;
pub mod store;
pub mod transport;
pub mod tree;
pub mod unpack;

#[cfg(test)]
mod real_crypto_tests;
#[cfg(test)]
mod testutil;

pub use crypt::{decrypt_image, encrypt_image, layer_info, CryptSummary, LayerFilter, LayerInfo};
pub use digest::Digest;
pub use error::{ImageError, Result};
pub use import::{import, ImportOptions, ImportSummary};
pub use platform::Platform;
pub use reference::ImageRef;
