//! Key files: parsing every private and public key form ocicrypt accepts, plus SEC1 and
//! encrypted PKCS#8 PEM. Key material is zeroized and never printed.
//! (Body: see the helper's implementation.)

use std::fmt;
use std::path::{Path, PathBuf};

use openssl::pkey::{PKey, Private, Public};

use super::error::{CryptoError, Result};

/// A private key (RSA or EC) loaded from a file, with where it came from for messages.
pub struct PrivateKey {
    pkey: PKey<Private>,
    source: PathBuf,
    jwk_alg: Option<String>,
}

impl PrivateKey {
    /// Wrap an OpenSSL key.
    pub fn new(pkey: PKey<Private>, source: impl Into<PathBuf>, jwk_alg: Option<String>) -> Self {
        Self {
            pkey,
            source: source.into(),
            jwk_alg,
        }
    }
    /// The OpenSSL key.
    pub fn pkey(&self) -> &PKey<Private> {
        &self.pkey
    }
    /// The file it was read from.
    pub fn source(&self) -> &Path {
        &self.source
    }
    /// The `alg` of a JWK key file, if it had one.
    pub fn jwk_alg(&self) -> Option<&str> {
        self.jwk_alg.as_deref()
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PrivateKey({}, {:?})",
            self.source.display(),
            self.pkey.id()
        )
    }
}

/// A public key (RSA or EC) used as a recipient.
pub struct PublicKey {
    pkey: PKey<Public>,
    source: PathBuf,
    jwk_alg: Option<String>,
}

impl PublicKey {
    /// Wrap an OpenSSL key.
    pub fn new(pkey: PKey<Public>, source: impl Into<PathBuf>, jwk_alg: Option<String>) -> Self {
        Self {
            pkey,
            source: source.into(),
            jwk_alg,
        }
    }
    /// The OpenSSL key.
    pub fn pkey(&self) -> &PKey<Public> {
        &self.pkey
    }
    /// The file it was read from.
    pub fn source(&self) -> &Path {
        &self.source
    }
    /// The `alg` of a JWK key file, if it had one (overrides the default JWE algorithm).
    pub fn jwk_alg(&self) -> Option<&str> {
        self.jwk_alg.as_deref()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKey({}, {:?})",
            self.source.display(),
            self.pkey.id()
        )
    }
}

/// Load a private key from a `--key` argument: `FILE`, `FILE:PW`, `FILE:pass=PW`,
/// `FILE:file=PWFILE` or `FILE:fd=N`.
pub fn load_private_key(spec: &str) -> Result<PrivateKey> {
    Err(CryptoError::Key {
        path: spec.into(),
        reason: "key loading is not built yet".into(),
    })
}

/// Parse private key bytes (PEM, DER or JWK), decrypting with `password` if the key is encrypted.
pub fn parse_private_key(
    data: &[u8],
    password: Option<&[u8]>,
    source: &Path,
) -> Result<PrivateKey> {
    let _ = (data, password);
    Err(CryptoError::Key {
        path: source.into(),
        reason: "key parsing is not built yet".into(),
    })
}

/// Load a recipient public key (PEM or DER SubjectPublicKeyInfo, or a public JWK).
pub fn load_public_key(path: &Path) -> Result<PublicKey> {
    Err(CryptoError::Key {
        path: path.into(),
        reason: "key loading is not built yet".into(),
    })
}

/// Parse public key bytes (PEM or DER SubjectPublicKeyInfo, or a public JWK).
pub fn parse_public_key(data: &[u8], source: &Path) -> Result<PublicKey> {
    let _ = data;
    Err(CryptoError::Key {
        path: source.into(),
        reason: "key parsing is not built yet".into(),
    })
}
