//! What to encrypt for (`EncryptConfig`, from `--recipient`) and what to decrypt with
//! (`DecryptConfig`, from `--key`), as ocicrypt's `config.EncryptConfig`/`DecryptConfig`.

use std::path::Path;

use super::error::{CryptoError, Result};
use super::keys::{self, PrivateKey, PublicKey};

/// One `--recipient` (`--encryption-key`): `SCHEME:VALUE`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Recipient {
    /// `jwe:PUBKEY_FILE`: a PEM/DER SubjectPublicKeyInfo or a public JWK.
    Jwe(PublicKey),
}

/// Schemes ocicrypt knows that rrun does not wrap for yet.
const LATER_SCHEMES: [&str; 4] = ["pgp", "pkcs7", "pkcs11", "provider"];

impl Recipient {
    /// Parse a recipient argument and load its key.
    pub fn parse(spec: &str) -> Result<Self> {
        let invalid = |reason: &str| CryptoError::InvalidRecipient {
            spec: spec.into(),
            reason: reason.into(),
        };
        let (scheme, value) = spec
            .split_once(':')
            .ok_or_else(|| invalid("expected SCHEME:VALUE, for example jwe:pubkey.pem"))?;
        match scheme {
            "jwe" if value.is_empty() => Err(invalid(
                "jwe: needs a public key file, for example jwe:pubkey.pem",
            )),
            "jwe" => Ok(Self::Jwe(keys::load_public_key(Path::new(value))?)),
            s if LATER_SCHEMES.contains(&s) => Err(invalid(&format!(
                "the {s} scheme is not supported by this rrun build yet; use jwe:PUBKEY_FILE"
            ))),
            _ => Err(invalid("unknown scheme; use jwe:PUBKEY_FILE")),
        }
    }
}

/// Recipients to wrap new layer keys for, and keys to open already encrypted layers when
/// recipients are added to them.
#[derive(Debug, Default)]
pub struct EncryptConfig {
    recipients: Vec<Recipient>,
    decrypt: DecryptConfig,
}

impl EncryptConfig {
    /// An encryption config from recipients and (for adding recipients) decryption keys.
    pub fn new(recipients: Vec<Recipient>, decrypt: DecryptConfig) -> Self {
        Self {
            recipients,
            decrypt,
        }
    }

    /// Parse `--recipient` arguments.
    pub fn from_specs(specs: &[String], decrypt: DecryptConfig) -> Result<Self> {
        let recipients = specs
            .iter()
            .map(|s| Recipient::parse(s))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self::new(recipients, decrypt))
    }

    /// The JWE recipients' public keys.
    pub fn jwe_recipients(&self) -> Vec<&PublicKey> {
        self.recipients
            .iter()
            .map(|r| match r {
                Recipient::Jwe(k) => k,
            })
            .collect()
    }

    /// True when there is no recipient at all.
    pub fn is_empty(&self) -> bool {
        self.recipients.is_empty()
    }

    /// The keys used to open layers that are already encrypted.
    pub fn decrypt_config(&self) -> &DecryptConfig {
        &self.decrypt
    }
}

/// Private keys to unwrap layer keys with.
#[derive(Debug, Default)]
pub struct DecryptConfig {
    private_keys: Vec<PrivateKey>,
}

impl DecryptConfig {
    /// A decryption config holding these keys.
    pub fn new(private_keys: Vec<PrivateKey>) -> Self {
        Self { private_keys }
    }

    /// Load `--key` arguments (`FILE[:pass=PW|:file=PWFILE|:fd=N|:PW]`).
    pub fn from_specs(specs: &[String]) -> Result<Self> {
        let keys = specs
            .iter()
            .map(|s| keys::load_private_key(s))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self::new(keys))
    }

    /// The private keys.
    pub fn private_keys(&self) -> &[PrivateKey] {
        &self.private_keys
    }

    /// True when no key was given.
    pub fn is_empty(&self) -> bool {
        self.private_keys.is_empty()
    }
}
