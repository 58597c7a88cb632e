//! Errors of assembling a container root filesystem from a stored image.

use std::path::PathBuf;

use crate::crypto::CryptoError;
use crate::image::error::{ImageError, LockedLayer};

/// Result of [`super`].
pub type Result<T, E = RootfsError> = std::result::Result<T, E>;

/// What can go wrong between a stored image and a mounted root filesystem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RootfsError {
    /// Reading the image, unpacking or decrypting a layer failed.
    #[error(transparent)]
    Image(#[from] ImageError),

    /// The keys do not open every encrypted layer of the image (DESIGN.md section 2, run
    /// step 2): nothing was decrypted or mounted.
    #[error("not authorized to use this image: {image}: no given key opens {}; pass --key with a private key of one of its recipients", list(layers))]
    NotAuthorized {
        /// The image as named on the command line.
        image: String,
        /// Every encrypted layer the keys did not open.
        layers: Vec<LockedLayer>,
    },

    /// An encrypted layer did not decrypt (its HMAC does not match: the blob was altered, or
    /// the annotations belong to another layer); nothing stays mounted.
    #[error("cannot decrypt layer {layer} of {image}")]
    Decrypt {
        image: String,
        layer: String,
        #[source]
        source: CryptoError,
    },

    /// A layer type that cannot be part of a local root filesystem.
    #[error("layer {layer} of {image} has media type {media_type}, which rrun cannot unpack into a root filesystem")]
    UnsupportedLayer {
        image: String,
        layer: String,
        media_type: String,
    },

    /// A mount (overlay or the sealed tmpfs) failed.
    #[error("cannot mount {what} at {}: {reason}", target.display())]
    Mount {
        what: &'static str,
        target: PathBuf,
        reason: String,
    },
}

/// `layer X of IMAGE (needs a jwe or pgp private key: reason), ...`
fn list(layers: &[LockedLayer]) -> String {
    layers
        .iter()
        .map(|l| {
            let schemes = if l.schemes.is_empty() {
                "matching".to_string()
            } else {
                l.schemes.join(" or ")
            };
            format!(
                "layer {} (needs a {schemes} private key: {})",
                l.layer, l.reason
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_authorized_names_layers_and_schemes() {
        let e = RootfsError::NotAuthorized {
            image: "app:1".into(),
            layers: vec![LockedLayer {
                layer: "sha256:ab".into(),
                schemes: vec!["jwe".into(), "pgp".into()],
                reason: "none of the given keys is a recipient".into(),
            }],
        };
        let msg = e.to_string();
        assert!(
            msg.starts_with("not authorized to use this image: "),
            "{msg}"
        );
        assert!(
            msg.contains("layer sha256:ab (needs a jwe or pgp private key"),
            "{msg}"
        );
        assert!(!msg.contains('\n'), "{msg}");
    }
}
