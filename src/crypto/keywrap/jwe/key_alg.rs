//! JWE key management algorithms ocicrypt accepts (`alg`), how a recipient key picks one, and
//! RSA-OAEP key encryption (go-jose `asymmetric.go` rsaEncrypterVerifier / rsaDecrypterSigner).

use openssl::encrypt::{Decrypter, Encrypter};
use openssl::hash::MessageDigest;
use openssl::pkey::{HasPublic, Id, PKeyRef, Private};
use openssl::rsa::Padding;
use zeroize::Zeroizing;

use super::ecdh_es;
use crate::crypto::error::{CryptoError, Result};
use crate::crypto::keys::PublicKey;

/// A key management algorithm from ocicrypt's list (`keywrapper_jwe.go` UnwrapKey).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyAlg {
    /// RSAES-OAEP with SHA-1 and MGF1-SHA-1: ocicrypt's choice for RSA keys.
    RsaOaep,
    /// RSAES-OAEP with SHA-256 and MGF1-SHA-256.
    RsaOaep256,
    /// ECDH-ES, Concat KDF to a 128-bit key, AES key wrap.
    EcdhEsA128Kw,
    /// ECDH-ES, Concat KDF to a 192-bit key, AES key wrap.
    EcdhEsA192Kw,
    /// ECDH-ES, Concat KDF to a 256-bit key, AES key wrap: ocicrypt's choice for EC keys.
    EcdhEsA256Kw,
}

impl KeyAlg {
    /// Every accepted algorithm, for messages.
    pub(super) const ALL: [KeyAlg; 5] = [
        KeyAlg::RsaOaep,
        KeyAlg::RsaOaep256,
        KeyAlg::EcdhEsA128Kw,
        KeyAlg::EcdhEsA192Kw,
        KeyAlg::EcdhEsA256Kw,
    ];

    /// The `alg` header value.
    pub(super) fn name(self) -> &'static str {
        match self {
            KeyAlg::RsaOaep => "RSA-OAEP",
            KeyAlg::RsaOaep256 => "RSA-OAEP-256",
            KeyAlg::EcdhEsA128Kw => "ECDH-ES+A128KW",
            KeyAlg::EcdhEsA192Kw => "ECDH-ES+A192KW",
            KeyAlg::EcdhEsA256Kw => "ECDH-ES+A256KW",
        }
    }

    /// Parse an `alg` header value; `None` for anything outside ocicrypt's list.
    pub(super) fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == s)
    }

    /// The accepted names, comma separated, for messages.
    pub(super) fn names() -> String {
        Self::ALL.map(KeyAlg::name).join(", ")
    }

    /// True for the RSA algorithms.
    pub(super) fn is_rsa(self) -> bool {
        matches!(self, KeyAlg::RsaOaep | KeyAlg::RsaOaep256)
    }

    /// Length of the AES key-wrapping key an ECDH-ES algorithm derives.
    pub(super) fn kek_len(self) -> usize {
        match self {
            KeyAlg::EcdhEsA128Kw => 16,
            KeyAlg::EcdhEsA192Kw => 24,
            _ => 32,
        }
    }

    /// The algorithm for a recipient: the JWK `alg` if the key file had one (ocicrypt commit
    /// 4b2101a), else RSA-OAEP for RSA and ECDH-ES+A256KW for EC keys.
    pub(super) fn for_recipient(key: &PublicKey) -> Result<Self> {
        let invalid = |reason: String| CryptoError::InvalidRecipient {
            spec: format!("jwe:{}", key.source().display()),
            reason,
        };
        let id = key.pkey().id();
        let supported = match id {
            Id::RSA => true,
            Id::EC => key
                .pkey()
                .ec_key()
                .is_ok_and(|ec| ecdh_es::curve_of(ec.group()).is_some()),
            _ => false,
        };
        if !supported {
            return Err(invalid(
                "JWE needs an RSA or EC (P-256, P-384, P-521) public key".into(),
            ));
        }
        let Some(name) = key.jwk_alg() else {
            return Ok(if id == Id::RSA {
                KeyAlg::RsaOaep
            } else {
                KeyAlg::EcdhEsA256Kw
            });
        };
        let alg = Self::parse(name).ok_or_else(|| {
            invalid(format!(
                "{name} is an unsupported JWE key algorithm; use one of {}",
                Self::names()
            ))
        })?;
        if alg.is_rsa() != (id == Id::RSA) {
            let kind = if id == Id::RSA { "an RSA" } else { "an EC" };
            return Err(invalid(format!(
                "the JWK alg {name} does not fit {kind} key; remove \"alg\" or pick a matching one"
            )));
        }
        Ok(alg)
    }

    fn oaep_digest(self) -> MessageDigest {
        if self == KeyAlg::RsaOaep256 {
            MessageDigest::sha256()
        } else {
            MessageDigest::sha1()
        }
    }
}

/// Encrypt the content encryption key to an RSA public key with OAEP (empty label).
pub(super) fn rsa_oaep_encrypt<T: HasPublic>(
    key: &PKeyRef<T>,
    alg: KeyAlg,
    cek: &[u8],
) -> Result<Vec<u8>> {
    let mut enc = Encrypter::new(key)?;
    enc.set_rsa_padding(Padding::PKCS1_OAEP)?;
    enc.set_rsa_oaep_md(alg.oaep_digest())?;
    enc.set_rsa_mgf1_md(alg.oaep_digest())?;
    let mut out = vec![0u8; enc.encrypt_len(cek)?];
    let n = enc.encrypt(cek, &mut out)?;
    out.truncate(n);
    Ok(out)
}

/// Decrypt an RSA-OAEP encrypted key; `None` when this key does not open it.
pub(super) fn rsa_oaep_decrypt(
    key: &PKeyRef<Private>,
    alg: KeyAlg,
    encrypted_key: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let mut dec = Decrypter::new(key).ok()?;
    dec.set_rsa_padding(Padding::PKCS1_OAEP).ok()?;
    dec.set_rsa_oaep_md(alg.oaep_digest()).ok()?;
    dec.set_rsa_mgf1_md(alg.oaep_digest()).ok()?;
    let mut out = Zeroizing::new(vec![0u8; dec.decrypt_len(encrypted_key).ok()?]);
    let n = dec.decrypt(encrypted_key, &mut out).ok()?;
    out.truncate(n);
    Some(out)
}
