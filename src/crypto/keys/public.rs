//! Recipient public key bytes: SubjectPublicKeyInfo PEM/DER or a public JWK, as ocicrypt's
//! `utils.ParsePublicKey`, plus PKCS#1 `RSA PUBLIC KEY` PEM and x509 certificates.

use std::path::Path;

use openssl::ec::EcKey;
use openssl::pkey::{PKey, Public};
use openssl::rsa::Rsa;
use openssl::x509::X509;

use super::{jwk, pem};
use crate::crypto::error::{CryptoError, Result};

/// Parse a public key; returns it with the (validated) `alg` of a JWK.
pub(super) fn parse(data: &[u8], source: &Path) -> Result<(PKey<Public>, Option<String>)> {
    let trimmed = data.trim_ascii();
    if trimmed.is_empty() {
        return Err(key_error(
            source,
            "file is empty; expected a public key (PEM, DER, JWK or an x509 certificate)",
        ));
    }
    if pem::is_pem(data) {
        return from_pem(data, source).map(|k| (k, None));
    }
    if trimmed.starts_with(b"{") {
        return jwk::parse_public(trimmed, source);
    }
    from_der(data, source).map(|k| (k, None))
}

/// The first public key or certificate block of a PEM file.
fn from_pem(data: &[u8], source: &Path) -> Result<PKey<Public>> {
    let blocks = pem::blocks(data);
    for block in &blocks {
        let decoded = match block.label {
            "PUBLIC KEY" => PKey::public_key_from_pem(block.text),
            // Conveniences ocicrypt lacks (it only calls `ParsePKIXPublicKey`).
            "RSA PUBLIC KEY" => Rsa::public_key_from_pem_pkcs1(block.text).and_then(PKey::from_rsa),
            _ if block.is_certificate() => {
                X509::from_pem(block.text).and_then(|cert| cert.public_key())
            }
            _ => continue,
        };
        return decoded.map_err(|_| {
            key_error(
                source,
                &format!(
                    "cannot parse its {} PEM block: it is damaged or holds a key type OpenSSL \
                     does not know",
                    block.label
                ),
            )
        });
    }
    if blocks.iter().any(|b| b.is_private_key()) {
        return Err(private_given(source));
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
            "not a public key: its PEM blocks are {}; expected PUBLIC KEY, RSA PUBLIC KEY or \
             CERTIFICATE",
            labels.join(", ")
        ),
    ))
}

/// DER SubjectPublicKeyInfo (ocicrypt), then PKCS#1 RSA public key and x509 certificate.
fn from_der(data: &[u8], source: &Path) -> Result<PKey<Public>> {
    if let Ok(key) = PKey::public_key_from_der(data) {
        return Ok(key);
    }
    if let Ok(rsa) = Rsa::public_key_from_der_pkcs1(data) {
        return Ok(PKey::from_rsa(rsa)?);
    }
    if let Ok(cert) = X509::from_der(data) {
        return Ok(cert.public_key()?);
    }
    if is_private_der(data) {
        return Err(private_given(source));
    }
    Err(key_error(
        source,
        "not a public key: expected PEM or DER SubjectPublicKeyInfo, a public JWK or an x509 \
         certificate",
    ))
}

/// A DER private key in any of the forms `--key` takes.
fn is_private_der(data: &[u8]) -> bool {
    PKey::private_key_from_pkcs8(data).is_ok()
        || Rsa::private_key_from_der(data).is_ok()
        || EcKey::private_key_from_der(data).is_ok()
        || is_encrypted_pkcs8(data)
}

/// An EncryptedPrivateKeyInfo: the decoder asks for a password only for that structure.
fn is_encrypted_pkcs8(data: &[u8]) -> bool {
    let mut asked = false;
    let _ = PKey::private_key_from_pkcs8_callback(data, |_| {
        asked = true;
        Err(openssl::error::ErrorStack::get())
    });
    asked
}

/// A private key given where a recipient's public key is needed.
pub(super) fn private_given(source: &Path) -> CryptoError {
    key_error(
        source,
        &format!(
            "is a private key; a recipient needs only the public half: extract it with \
             `openssl pkey -in {} -pubout -out pub.pem` and give jwe:pub.pem",
            source.display()
        ),
    )
}

fn key_error(source: &Path, reason: &str) -> CryptoError {
    CryptoError::Key {
        path: source.into(),
        reason: reason.into(),
    }
}
