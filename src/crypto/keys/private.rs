//! Private key bytes: DER, PEM (plain, legacy-encrypted or PKCS#8-encrypted) or JWK, as
//! ocicrypt's `utils.ParsePrivateKey`, plus the SEC1 PEM and encrypted PKCS#8 it rejects.

use std::cell::Cell;
use std::path::Path;

use openssl::ec::EcKey;
use openssl::error::ErrorStack;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::X509;

use super::{jwk, kind, pem};
use crate::crypto::error::{CryptoError, Result};

/// Why bytes that are no known form of private key were refused.
pub(super) const NOT_A_KEY: &str = "not a private key: expected PEM, DER or JWK";

/// Parse a private key; returns it with the `alg` of a JWK.
pub(super) fn parse(
    data: &[u8],
    password: Option<&[u8]>,
    source: &Path,
) -> Result<(PKey<Private>, Option<String>)> {
    let trimmed = data.trim_ascii();
    if trimmed.is_empty() {
        return Err(key_error(
            source,
            "file is empty; expected a private key (PEM, DER or JWK)",
        ));
    }
    if pem::is_pem(data) {
        return from_pem(data, password, source).map(|k| (k, None));
    }
    if trimmed.starts_with(b"{") {
        return jwk::parse_private(trimmed, source);
    }
    from_der(data, password, source).map(|k| (k, None))
}

/// The first private key block of a PEM file; other blocks say what the file is instead.
fn from_pem(data: &[u8], password: Option<&[u8]>, source: &Path) -> Result<PKey<Private>> {
    let blocks = pem::blocks(data);
    if let Some(block) = blocks.iter().find(|b| b.is_private_key()) {
        // OpenSSL reads PKCS#8, PKCS#1 and SEC1 blocks, and decrypts both legacy
        // `Proc-Type: 4,ENCRYPTED` + `DEK-Info` blocks (Go's `x509.DecryptPEMBlock` in ocicrypt)
        // and `ENCRYPTED PRIVATE KEY` blocks; it asks for the password only when encrypted.
        let asker = PasswordAsker::new(password);
        let decoded = PKey::private_key_from_pem_callback(block.text, |buf| asker.fill(buf));
        return asker.outcome(decoded, source).map_err(|f| match f {
            Failure::Key(e) => e,
            Failure::Unparsed => key_error(
                source,
                &format!(
                    "cannot parse its {} PEM block: it is damaged or holds a key type OpenSSL \
                     does not know",
                    block.label
                ),
            ),
        });
    }
    for block in &blocks {
        match block.label {
            "PUBLIC KEY" | "RSA PUBLIC KEY" => {
                return Err(CryptoError::PublicKeyGiven {
                    path: source.into(),
                })
            }
            _ if block.is_certificate() => return Err(certificate_given(source)),
            "DSA PRIVATE KEY" => return Err(kind::unsupported("DSA", source)),
            "OPENSSH PRIVATE KEY" => {
                return Err(key_error(
                    source,
                    &format!(
                        "is an OpenSSH private key: convert it to PKCS#8 PEM with \
                         `ssh-keygen -p -m PKCS8 -f {}` (rewrites the file in place)",
                        source.display()
                    ),
                ))
            }
            "PGP PRIVATE KEY BLOCK" => return Err(pgp_given(source)),
            _ => {}
        }
    }
    if blocks.is_empty() {
        return Err(key_error(
            source,
            "has a -----BEGIN line but no complete PEM block",
        ));
    }
    let labels: Vec<&str> = blocks.iter().map(|b| b.label).collect();
    Err(key_error(
        source,
        &format!(
            "not a private key: its PEM blocks are {}; expected PRIVATE KEY, RSA PRIVATE KEY, \
             EC PRIVATE KEY or ENCRYPTED PRIVATE KEY",
            labels.join(", ")
        ),
    ))
}

/// Raw DER, in ocicrypt's order (PKCS#8, PKCS#1, SEC1), then encrypted PKCS#8.
fn from_der(data: &[u8], password: Option<&[u8]>, source: &Path) -> Result<PKey<Private>> {
    if let Ok(key) = PKey::private_key_from_pkcs8(data) {
        return Ok(key);
    }
    if let Ok(rsa) = Rsa::private_key_from_der(data) {
        return Ok(PKey::from_rsa(rsa)?);
    }
    if let Ok(ec) = EcKey::private_key_from_der(data) {
        return Ok(PKey::from_ec_key(ec)?);
    }
    // An EncryptedPrivateKeyInfo: the decoder asks for a password only for that structure.
    let asker = PasswordAsker::new(password);
    let decoded = PKey::private_key_from_pkcs8_callback(data, |buf| asker.fill(buf));
    match asker.outcome(decoded, source) {
        Ok(key) => return Ok(key),
        Err(Failure::Key(e)) => return Err(e),
        Err(Failure::Unparsed) => {}
    }
    // Other key types in their own DER form (DSA): `check_usable` names them.
    if let Ok(key) = PKey::private_key_from_der(data) {
        return Ok(key);
    }
    Err(not_a_private_key(data, source))
}

/// Say what a DER blob that is no private key is.
fn not_a_private_key(data: &[u8], source: &Path) -> CryptoError {
    if PKey::public_key_from_der(data).is_ok() || Rsa::public_key_from_der_pkcs1(data).is_ok() {
        return CryptoError::PublicKeyGiven {
            path: source.into(),
        };
    }
    if X509::from_der(data).is_ok() {
        return certificate_given(source);
    }
    if is_openpgp_secret_key(data) {
        return pgp_given(source);
    }
    key_error(source, NOT_A_KEY)
}

/// A binary OpenPGP secret-key packet (tag 5), as `gpg --export-secret-keys` writes.
fn is_openpgp_secret_key(data: &[u8]) -> bool {
    let Some(&first) = data.first() else {
        return false;
    };
    if first & 0x80 == 0 {
        return false;
    }
    let tag = if first & 0x40 != 0 {
        first & 0x3f
    } else {
        (first & 0x3c) >> 2
    };
    tag == 5
}

fn certificate_given(source: &Path) -> CryptoError {
    key_error(
        source,
        "is an x509 certificate; decryption needs the private key",
    )
}

fn pgp_given(source: &Path) -> CryptoError {
    key_error(
        source,
        "is an OpenPGP secret keyring, not a PEM, DER or JWK private key (--key accepts it as a \
         pgp decryption key)",
    )
}

fn key_error(source: &Path, reason: &str) -> CryptoError {
    CryptoError::Key {
        path: source.into(),
        reason: reason.into(),
    }
}

/// The first OpenSSL reason, for a short message.
fn short_reason(e: &ErrorStack) -> &'static str {
    e.errors()
        .iter()
        .find_map(|e| e.reason())
        .unwrap_or("malformed data")
}

/// Why an OpenSSL decoder failed.
enum Failure {
    /// A password problem, already turned into the error to return.
    Key(CryptoError),
    /// The data is not of this form (the password was never asked for).
    Unparsed,
}

/// Hands the password to OpenSSL's password callback and records whether it was asked for,
/// which is how an encrypted key is told from a malformed one.
struct PasswordAsker<'a> {
    password: Option<&'a [u8]>,
    asked: Cell<bool>,
    too_long: Cell<bool>,
}

impl<'a> PasswordAsker<'a> {
    fn new(password: Option<&'a [u8]>) -> Self {
        Self {
            password,
            asked: Cell::new(false),
            too_long: Cell::new(false),
        }
    }

    /// The password callback: copy the password into OpenSSL's buffer (which OpenSSL cleanses).
    fn fill(&self, buf: &mut [u8]) -> std::result::Result<usize, ErrorStack> {
        self.asked.set(true);
        let Some(password) = self.password else {
            return Err(ErrorStack::get());
        };
        let Some(dest) = buf.get_mut(..password.len()) else {
            self.too_long.set(true);
            return Err(ErrorStack::get());
        };
        dest.copy_from_slice(password);
        Ok(password.len())
    }

    /// Map a decoder result: a failure after the password was asked for is a password error,
    /// as ocicrypt reports "missing password" and "wrong password".
    fn outcome<K>(
        &self,
        decoded: std::result::Result<K, ErrorStack>,
        source: &Path,
    ) -> std::result::Result<K, Failure> {
        let err = match decoded {
            Ok(key) => return Ok(key),
            Err(err) => err,
        };
        if !self.asked.get() {
            return Err(Failure::Unparsed);
        }
        if self.too_long.get() {
            return Err(Failure::Key(key_error(
                source,
                "the password is too long (OpenSSL takes at most 1023 bytes)",
            )));
        }
        match self.password {
            None | Some([]) => Err(Failure::Key(CryptoError::MissingPassword {
                path: source.into(),
            })),
            Some(_) if is_unsupported_cipher(&err) => Err(Failure::Key(key_error(
                source,
                &format!(
                    "is encrypted with a cipher this OpenSSL cannot use ({}); re-encrypt it with \
                     `openssl pkcs8 -topk8 -v2 aes-256-cbc`",
                    short_reason(&err)
                ),
            ))),
            Some(_) => Err(Failure::Key(CryptoError::WrongPassword {
                path: source.into(),
            })),
        }
    }
}

/// OpenSSL 3 reports a cipher or PBE scheme it does not have (for example DES without the
/// legacy provider) as "unsupported algorithm"/"unknown cipher"; a wrong password gives
/// "bad decrypt" or a decoding failure instead.
fn is_unsupported_cipher(err: &ErrorStack) -> bool {
    err.errors().iter().any(|e| {
        e.reason().is_some_and(|r| {
            r.contains("unsupported cipher")
                || r.contains("unknown cipher")
                || r.contains("unsupported encryption")
                || r.contains("unsupported algorithm")
                || r.contains("unsupported pkcs8 encryption algorithm")
        })
    })
}
