//! OCI images: layouts and archives, manifests and indexes, platform selection, and
//! image-level encrypt/decrypt that walks manifests and calls `crypto` on each layer.

pub mod archive;
pub mod digest;
pub mod error;
pub mod layout;
pub mod manifest;
pub mod media_type;
pub mod platform;
pub mod reference;
pub mod stage;
pub mod transport;

pub use digest::Digest;
pub use error::{ImageError, Result};
pub use platform::Platform;
pub use reference::ImageRef;
