//! Key files: parsing every private and public key form ocicrypt accepts, plus SEC1 and
//! encrypted PKCS#8 PEM. Key material is zeroized and never printed.
//!
//! ocicrypt's rules (`utils/utils.go` `ParsePrivateKey`/`ParsePublicKey`, `helpers/parse_helpers.go`
//! `processPrivateKeyFiles`) are matched, and widened where users hit a wall: SEC1
//! `EC PRIVATE KEY` PEM, `ENCRYPTED PRIVATE KEY` PEM/DER, `RSA PUBLIC KEY` PEM and x509
//! certificates as JWE recipients. Only RSA and EC P-256/P-384/P-521 keys are usable.
//!
//! `--key` files are sorted as ocicrypt's `processPrivateKeyFiles` sorts them
//! ([`load_decryption_key`]): private keys, gpg secret keyrings (binary or armored) and x509
//! certificates (PKCS#7 decryption matches recipients with them). rrun refuses what it cannot
//! classify where ocicrypt silently ignores it.

mod cert;
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
use openssl::x509::X509;

use super::error::{CryptoError, Result};

pub use super::keywrap::pgp::GpgSecretKeys;

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
/// part. `cred:NAME[:PASSWORD-PART]` is the systemd credential `$CREDENTIALS_DIRECTORY/NAME`.
/// `provider:` specs are refused: this build does not support them yet.
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

/// An x509 certificate loaded from a file: a PKCS#7 recipient, or the certificate PKCS#7
/// decryption matches a recipient with.
pub struct Certificate {
    x509: X509,
    source: PathBuf,
}

impl Certificate {
    /// Wrap an OpenSSL certificate.
    pub fn new(x509: X509, source: impl Into<PathBuf>) -> Self {
        Self {
            x509,
            source: source.into(),
        }
    }
    /// The OpenSSL certificate.
    pub fn x509(&self) -> &X509 {
        &self.x509
    }
    /// The file it was read from.
    pub fn source(&self) -> &Path {
        &self.source
    }
    /// The subject, as `CN=...` (or the whole subject when it has no common name).
    pub fn subject(&self) -> String {
        name_text(self.x509.subject_name())
    }
}

/// `CN=...` of an x509 name, or its entries joined.
pub(crate) fn name_text(name: &openssl::x509::X509NameRef) -> String {
    let cn = name
        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok());
    if let Some(cn) = cn {
        return format!("CN={cn}");
    }
    name.entries()
        .filter_map(|e| {
            let key = e.object().nid().short_name().ok()?;
            let value = e.data().to_string().ok()?;
            Some(format!("{key}={value}"))
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self
            .x509
            .public_key()
            .map(|k| kind::describe(k.as_ref()))
            .unwrap_or_else(|_| "unknown key".into());
        write!(
            f,
            "Certificate({}, {}, {key})",
            self.source.display(),
            self.subject()
        )
    }
}

/// What a `--key` file holds.
#[derive(Debug)]
#[non_exhaustive]
pub enum DecryptionKey {
    /// A private key (PEM, DER or JWK), with the certificates found next to it in a PEM file.
    Private {
        key: PrivateKey,
        certificates: Vec<Certificate>,
    },
    /// x509 certificates only (PKCS#7 decryption matches recipients with them).
    Certificates(Vec<Certificate>),
    /// An exported gpg secret keyring (its decryption keys unprotected with the password).
    Gpg(GpgSecretKeys),
    /// A pkcs11 YAML key file: a private key on a token.
    Pkcs11(super::keywrap::pkcs11::Pkcs11KeyFile),
}

/// Load a `--key` argument (`FILE[:pass=PW|:file=PWFILE|:fd=N|:PW]`) and sort it as ocicrypt's
/// `processPrivateKeyFiles` does: a private key, a gpg secret keyring or x509 certificates.
/// A file that is none of these is an error that says what it is.
pub fn load_decryption_key(spec: &str) -> Result<DecryptionKey> {
    let (path, password_part) = spec::split(spec)?;
    let file = spec::read_key_file(&path)?;
    let password = password_part
        .map(|part| spec::password(part, &path))
        .transpose()?;
    let mut key = parse_decryption_key(&file.data, password.as_deref().map(Vec::as_slice), &path)?;
    match &mut key {
        DecryptionKey::Private { key, .. } => key.world_readable = file.world_readable,
        DecryptionKey::Gpg(keys) => keys.set_world_readable(file.world_readable),
        DecryptionKey::Certificates(_) | DecryptionKey::Pkcs11(_) => {}
    }
    Ok(key)
}

/// Sort and parse decryption key bytes: pkcs11 YAML key files first, then OpenPGP keyrings
/// (binary packets or armor), then x509 certificates without a private key next to them, then private keys.
pub fn parse_decryption_key(
    data: &[u8],
    password: Option<&[u8]>,
    source: &Path,
) -> Result<DecryptionKey> {
    if super::keywrap::pkcs11::Pkcs11KeyFile::looks_like(data) {
        return super::keywrap::pkcs11::Pkcs11KeyFile::parse(data, source)
            .map(DecryptionKey::Pkcs11);
    }
    if super::keywrap::pgp::is_openpgp_keyring(data) {
        return GpgSecretKeys::parse(data, password, source).map(DecryptionKey::Gpg);
    }
    let certificates: Vec<Certificate> = cert::parse_all(data, source)?
        .unwrap_or_default()
        .into_iter()
        .map(|c| Certificate::new(c, source))
        .collect();
    let has_private_block =
        pem::is_pem(data) && pem::blocks(data).iter().any(|b| b.is_private_key());
    if !certificates.is_empty() && !has_private_block {
        return Ok(DecryptionKey::Certificates(certificates));
    }
    let key = parse_private_key(data, password, source).map_err(|e| match e {
        // rrun refuses what ocicrypt would silently ignore, saying what it takes.
        CryptoError::Key { path, reason } if reason == private::NOT_A_KEY => CryptoError::Key {
            path,
            reason: "not a key file rrun knows: expected a private key (PEM, DER or JWK), an \
                     exported gpg secret keyring or an x509 certificate"
                .into(),
        },
        other => other,
    })?;
    Ok(DecryptionKey::Private { key, certificates })
}

/// Load a `pkcs7:` recipient certificate (PEM or DER; the first certificate of a PEM file).
pub fn load_certificate(path: &Path) -> Result<Certificate> {
    let file = spec::read_key_file(path)?;
    let not_cert = || CryptoError::Key {
        path: path.into(),
        reason: "is not an x509 certificate: pkcs7: needs the recipient's certificate, PEM or DER"
            .into(),
    };
    if file.data.trim_ascii().is_empty() {
        return Err(not_cert());
    }
    let mut certs = cert::parse_all(&file.data, path)?.ok_or_else(not_cert)?;
    Ok(Certificate::new(certs.remove(0), path))
}
