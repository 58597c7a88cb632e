//! `AES_256_CTR_HMAC_SHA256` as ocicrypt's `blockcipher_aes_ctr.go` does it.
//! (Body: see the helper's implementation.)

use std::io::{Read, Write};

use crate::crypto::error::{CryptoError, Result};
use crate::crypto::options::{SymmetricKey, NONCE_LEN};

/// What one pass over a layer stream computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamDigests {
    /// HMAC-SHA256 of the ciphertext, keyed with the layer key.
    pub hmac: [u8; 32],
    /// SHA-256 of the plaintext.
    pub plain_sha256: [u8; 32],
    /// SHA-256 of the ciphertext.
    pub cipher_sha256: [u8; 32],
    /// Number of bytes (ciphertext and plaintext have the same length).
    pub len: u64,
}

/// Encrypt `input` into `output`.
pub fn encrypt<R: Read + Send, W: Write>(
    key: &SymmetricKey,
    nonce: &[u8; NONCE_LEN],
    input: R,
    output: W,
) -> Result<StreamDigests> {
    let _ = (key, nonce, input, output);
    Err(CryptoError::Io(std::io::Error::other("not built yet")))
}

/// Decrypt `input` into `output`, failing with `HmacMismatch` at the end of the stream if the
/// ciphertext was altered. Bytes written before that are unauthenticated: discard them on error.
pub fn decrypt<R: Read + Send, W: Write>(
    key: &SymmetricKey,
    nonce: &[u8; NONCE_LEN],
    expected_hmac: &[u8],
    input: R,
    output: W,
) -> Result<StreamDigests> {
    let _ = (key, nonce, expected_hmac, input, output);
    Err(CryptoError::Io(std::io::Error::other("not built yet")))
}

/// A decrypting `Read` adapter that holds back the last chunk until the HMAC has been checked.
#[derive(Debug)]
pub struct DecryptReader<R> {
    inner: R,
}

impl<R: Read + Send + 'static> DecryptReader<R> {
    /// Start decrypting `input`.
    pub fn new(
        key: &SymmetricKey,
        nonce: &[u8; NONCE_LEN],
        expected_hmac: &[u8],
        input: R,
    ) -> Self {
        let _ = (key, nonce, expected_hmac);
        Self { inner: input }
    }
}

impl<R: Read> Read for DecryptReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let _ = (&mut self.inner, buf);
        Err(std::io::Error::other("not built yet"))
    }
}
