//! Errors of the `image` module.

/// Result of the `image` module.
pub type Result<T, E = ImageError> = std::result::Result<T, E>;

/// Everything that can go wrong with images.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// A failure of the layer crypto.
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),

    /// Reading or writing failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}
