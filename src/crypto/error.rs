//! Errors of the `crypto` module: one variant per failure, security failures carry their data.

use std::path::PathBuf;

/// Result of the `crypto` module.
pub type Result<T, E = CryptoError> = std::result::Result<T, E>;

/// Everything that can go wrong while encrypting, decrypting or handling keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The HMAC over the ciphertext did not match `pubopts.hmac`: the layer was altered.
    #[error("layer authentication failed: HMAC mismatch (expected {expected}, computed {actual}); the blob was altered or the annotations belong to another layer")]
    HmacMismatch { expected: String, actual: String },

    /// The decrypted blob does not have the digest recorded in the private options.
    #[error("decrypted layer digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },

    /// None of the given keys opens the layer.
    #[error("no key opens layer {layer}: it is encrypted for {schemes} recipients; give a matching private key with --key")]
    NoKeyForLayer { layer: String, schemes: String },

    /// Decryption was asked for but no private key was given.
    #[error("missing private key needed for decryption: give one with --key")]
    MissingPrivateKey,

    /// An encrypted layer without a supported cipher.
    #[error("unsupported layer cipher {0:?}: rrun supports AES_256_CTR_HMAC_SHA256 only")]
    UnsupportedCipher(String),

    /// An ocicrypt annotation or options blob that cannot be parsed.
    #[error("malformed encryption annotation {annotation}: {reason}")]
    MalformedAnnotation { annotation: String, reason: String },

    /// A JWE that cannot be parsed or opened.
    #[error("invalid JWE: {0}")]
    Jwe(String),

    /// A recipient specification that cannot be used.
    #[error("invalid recipient {spec:?}: {reason}")]
    InvalidRecipient { spec: String, reason: String },

    /// A key file that cannot be used, with the file name and the problem.
    #[error("{}: {reason}", path.display())]
    Key { path: PathBuf, reason: String },

    /// The password for an encrypted private key is wrong.
    #[error("wrong password for {}", path.display())]
    WrongPassword { path: PathBuf },

    /// An encrypted private key was given without a password.
    #[error("{} is encrypted: give its password as {}:pass=PASSWORD, :file=PWFILE or :fd=N", path.display(), path.display())]
    MissingPassword { path: PathBuf },

    /// A public key was given where a private key is needed.
    #[error("{} is a public key; decryption needs the private key", path.display())]
    PublicKeyGiven { path: PathBuf },

    /// A failure inside OpenSSL.
    #[error("crypto backend: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),

    /// Reading or writing a stream failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}
