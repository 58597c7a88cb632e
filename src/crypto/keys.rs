//! Key files: parsing every private and public key form ocicrypt accepts, plus SEC1 and
//! encrypted PKCS#8 PEM. Key material is zeroized and never printed.
//!
//! ocicrypt's rules (`utils/utils.go` `ParsePrivateKey`/`ParsePublicKey`, `helpers/parse_helpers.go`
//! `processPrivateKeyFiles`) are matched, and widened where users hit a wall: SEC1
//! `EC PRIVATE KEY` PEM, `ENCRYPTED PRIVATE KEY` PEM/DER, `RSA PUBLIC KEY` PEM and x509
//! certificates as JWE recipients. Only RSA and EC P-256/P-384/P-521 keys are usable.

mod jwk;
mod kind;
mod pem;
mod private;
mod public;
mod spec;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

use openssl::pkey::{PKey, Private, Public};

use super::error::Result;

/// The JWE key-management algorithms a JWK `alg` may select for an RSA key (go-jose, as
/// ocicrypt's `keywrap/jwe` allows them).
pub const JWE_RSA_ALGS: [&str; 2] = ["RSA-OAEP", "RSA-OAEP-256"];
/// The JWE key-management algorithms a JWK `alg` may select for an EC key.
pub const JWE_EC_ALGS: [&str; 3] = ["ECDH-ES+A128KW", "ECDH-ES+A192KW", "ECDH-ES+A256KW"];
/// The smallest RSA recipient key rrun encrypts for.
pub const MIN_RSA_BITS: u32 = 2048;

/// A private key (RSA or EC) loaded from a file, with where it came from for messages.
pub struct PrivateKey {
    pkey: PKey<Private>,
    source: PathBuf,
    jwk_alg: Option<String>,
    world_readable: bool,
}

impl PrivateKey {
    /// Wrap an OpenSSL key.
    pub fn new(pkey: PKey<Private>, source: impl Into<PathBuf>, jwk_alg: Option<String>) -> Self {
        Self {
            pkey,
            source: source.into(),
            jwk_alg,
            world_readable: false,
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
    /// True when the key file could be read by any user when it was loaded (mode `o+r`): the
    /// CLI warns about it. Always false for keys parsed from bytes.
    pub fn is_world_readable(&self) -> bool {
        self.world_readable
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PrivateKey({}, {})",
            self.source.display(),
            kind::describe(self.pkey.as_ref())
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
    /// The `alg` of a JWK key file, if it had one (overrides the default JWE algorithm). It is
    /// always one of [`JWE_RSA_ALGS`] for an RSA key or [`JWE_EC_ALGS`] for an EC key.
    pub fn jwk_alg(&self) -> Option<&str> {
        self.jwk_alg.as_deref()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKey({}, {})",
            self.source.display(),
            kind::describe(self.pkey.as_ref())
        )
    }
}

/// Load a private key from a `--key` argument: `FILE`, `FILE:PW`, `FILE:pass=PW`,
/// `FILE:file=PWFILE` or `FILE:fd=N` (at most 64 bytes are read from the descriptor).
///
/// A spec that names an existing file as a whole is that file, even with a `:` in it; otherwise
/// the key file is the shortest prefix before a `:` that exists, and the rest is the password
/// part. `provider:` and `cred:` specs are refused: this build does not support them yet.
pub fn load_private_key(spec: &str) -> Result<PrivateKey> {
    let (path, password_part) = spec::split(spec)?;
    let file = spec::read_key_file(&path)?;
    let password = password_part
        .map(|part| spec::password(part, &path))
        .transpose()?;
    let mut key = parse_private_key(&file.data, password.as_deref().map(Vec::as_slice), &path)?;
    key.world_readable = file.world_readable;
    Ok(key)
}

/// Parse private key bytes (PEM, DER or JWK), decrypting with `password` if the key is encrypted.
///
/// Accepted: DER PKCS#8, PKCS#1 RSA, SEC1 EC and encrypted PKCS#8; PEM `PRIVATE KEY`,
/// `RSA PRIVATE KEY`, `EC PRIVATE KEY` (plain or legacy-encrypted with `Proc-Type`/`DEK-Info`)
/// and `ENCRYPTED PRIVATE KEY`; a private JWK (RSA, EC P-256/P-384/P-521). A password given for
/// an unencrypted key is ignored, as ocicrypt does.
pub fn parse_private_key(
    data: &[u8],
    password: Option<&[u8]>,
    source: &Path,
) -> Result<PrivateKey> {
    let (pkey, jwk_alg) = private::parse(data, password, source)?;
    kind::check_usable(pkey.as_ref(), source)?;
    Ok(PrivateKey::new(pkey, source, jwk_alg))
}

/// Load a recipient public key (PEM or DER SubjectPublicKeyInfo, or a public JWK; also PKCS#1
/// `RSA PUBLIC KEY` PEM and x509 certificates, whose public key is used).
pub fn load_public_key(path: &Path) -> Result<PublicKey> {
    let file = spec::read_key_file(path)?;
    parse_public_key(&file.data, path)
}

/// Parse public key bytes (PEM or DER SubjectPublicKeyInfo, or a public JWK; also PKCS#1
/// `RSA PUBLIC KEY` PEM and x509 certificates PEM/DER). RSA keys under [`MIN_RSA_BITS`] bits
/// are refused; a JWK `alg` must be a JWE algorithm that fits the key type.
pub fn parse_public_key(data: &[u8], source: &Path) -> Result<PublicKey> {
    let (pkey, jwk_alg) = public::parse(data, source)?;
    kind::check_usable(pkey.as_ref(), source)?;
    kind::check_recipient_size(pkey.as_ref(), source)?;
    Ok(PublicKey::new(pkey, source, jwk_alg))
}
