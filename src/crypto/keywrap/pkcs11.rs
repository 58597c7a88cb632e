//! PKCS#11 key wrapping (ocicrypt `keywrap/pkcs11`, experimental there): the private options are
//! RSA-OAEP encrypted directly to each recipient (a PEM public key, or a key on a token named by
//! a YAML key file) and unwrapped on a token; the blob is ocicrypt's JSON
//! `{"version":0,"recipients":[{"version":0,"blob":B64,"hash":"sha256"}]}`.

pub mod token;
pub mod uri;

use std::path::Path;

use openssl::encrypt::Encrypter;
use openssl::hash::MessageDigest;
use openssl::pkey::Id;
use openssl::rsa::Padding;
use zeroize::Zeroizing;

use super::KeyWrapper;
use crate::crypto::config::{DecryptConfig, EncryptConfig};
use crate::crypto::error::{CryptoError, Result};
use crate::crypto::keys::{self, PublicKey};
use crate::crypto::options::{decode_b64, encode_b64};
pub use uri::{ModulePolicy, Pkcs11KeyFile, Pkcs11Uri};

/// The environment variable choosing the OAEP hash for new wrapped keys (`sha1` or `sha256`).
pub const ENV_OAEP_HASH: &str = "OCICRYPT_OAEP_HASHALG";

/// The OAEP hash (and MGF1 hash) of one recipient entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OaepHash {
    /// SHA-1: what SoftHSM supports, and what an empty `hash` means.
    Sha1,
    /// SHA-256: the default for new entries.
    Sha256,
}

impl OaepHash {
    /// The name written in the blob's `hash` field.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
        }
    }

    /// The hash of a blob entry: `sha1` when empty, as ocicrypt reads old blobs.
    pub fn from_blob(s: &str) -> Option<Self> {
        match s {
            "" | "sha1" => Some(Self::Sha1),
            "sha256" => Some(Self::Sha256),
            _ => None,
        }
    }

    /// The hash for new entries: `OCICRYPT_OAEP_HASHALG`, default sha256.
    pub fn from_env() -> Result<Self> {
        let v = std::env::var(ENV_OAEP_HASH).unwrap_or_default();
        match v.to_lowercase().as_str() {
            "" | "sha256" => Ok(Self::Sha256),
            "sha1" => Ok(Self::Sha1),
            _ => Err(CryptoError::InvalidRecipient {
                spec: format!("{ENV_OAEP_HASH}={v}"),
                reason: "unsupported OAEP hash: use sha1 or sha256".into(),
            }),
        }
    }

    fn digest(self) -> MessageDigest {
        match self {
            Self::Sha1 => MessageDigest::sha1(),
            Self::Sha256 => MessageDigest::sha256(),
        }
    }

    /// The most bytes OAEP with this hash can carry in an RSA key of `modulus` bytes.
    fn capacity(self, modulus: usize) -> usize {
        let h = self.digest().size();
        modulus.saturating_sub(2 * h + 2)
    }
}

/// One `pkcs11:` recipient.
#[derive(Debug)]
#[non_exhaustive]
pub enum Pkcs11Recipient {
    /// `pkcs11:PUBKEY.pem`: an RSA public key, encrypted to in software.
    PublicKey(PublicKey),
    /// `pkcs11:KEY.yaml`: a public key on a token.
    KeyFile(Pkcs11KeyFile),
}

impl Pkcs11Recipient {
    /// Load `pkcs11:VALUE`: a pkcs11 YAML key file, else an RSA public key file.
    pub fn load(value: &str) -> Result<Self> {
        let path = Path::new(value);
        let data = std::fs::read(path).map_err(|e| CryptoError::Key {
            path: path.into(),
            reason: match e.kind() {
                std::io::ErrorKind::NotFound => {
                    "no such file: pkcs11: needs a pkcs11 YAML key file or an RSA public key PEM"
                        .into()
                }
                _ => format!("cannot read the pkcs11 recipient: {e}"),
            },
        })?;
        if Pkcs11KeyFile::looks_like(&data) {
            return Pkcs11KeyFile::parse(&data, path).map(Self::KeyFile);
        }
        let key = keys::parse_public_key(&data, path)?;
        if key.pkey().id() != Id::RSA {
            return Err(CryptoError::Key {
                path: path.into(),
                reason: "pkcs11: recipients need an RSA public key or a pkcs11 YAML key file"
                    .into(),
            });
        }
        Ok(Self::PublicKey(key))
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Blob {
    version: u64,
    recipients: Vec<BlobRecipient>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct BlobRecipient {
    version: u64,
    blob: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    hash: String,
}

fn too_long(source: &Path, bits: u32, hash: OaepHash, len: usize) -> CryptoError {
    CryptoError::Key {
        path: source.into(),
        reason: format!(
            "the layer key options ({len} bytes) do not fit RSA-{bits} OAEP-{} (at most {} \
             bytes): use an RSA key of 3072 bits or more, or {ENV_OAEP_HASH}=sha1",
            hash.name(),
            hash.capacity(bits as usize / 8)
        ),
    }
}

fn encrypt_soft(key: &PublicKey, hash: OaepHash, data: &[u8]) -> Result<Vec<u8>> {
    let bits = key.pkey().bits();
    if data.len() > hash.capacity(bits as usize / 8) {
        return Err(too_long(key.source(), bits, hash, data.len()));
    }
    let mut enc = Encrypter::new(key.pkey())?;
    enc.set_rsa_padding(Padding::PKCS1_OAEP)?;
    enc.set_rsa_oaep_md(hash.digest())?;
    enc.set_rsa_mgf1_md(hash.digest())?;
    let mut out = vec![0u8; enc.encrypt_len(data)?];
    let n = enc.encrypt(data, &mut out)?;
    out.truncate(n);
    Ok(out)
}

/// The PKCS#11 key wrapper (scheme `pkcs11`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Pkcs11KeyWrapper;

impl KeyWrapper for Pkcs11KeyWrapper {
    fn scheme(&self) -> &str {
        "pkcs11"
    }

    fn wrap_keys(&self, ec: &EncryptConfig, opts_data: &[u8]) -> Result<Option<Vec<u8>>> {
        let recipients = ec.pkcs11_recipients();
        if recipients.is_empty() {
            return Ok(None);
        }
        let hash = OaepHash::from_env()?;
        let mut policy = None;
        let mut out = Vec::with_capacity(recipients.len());
        for r in recipients {
            let ciphertext = match r {
                Pkcs11Recipient::PublicKey(k) => encrypt_soft(k, hash, opts_data)?,
                Pkcs11Recipient::KeyFile(kf) => {
                    let policy = match &policy {
                        Some(p) => p,
                        None => policy.insert(ModulePolicy::from_env()?),
                    };
                    let session = token::TokenSession::open(kf, policy, false)?;
                    session.encrypt(hash, opts_data)?
                }
            };
            out.push(BlobRecipient {
                version: 0,
                blob: encode_b64(&ciphertext),
                hash: hash.name().into(),
            });
        }
        let blob = Blob {
            version: 0,
            recipients: out,
        };
        Ok(Some(serde_json::to_vec(&blob).unwrap_or_default()))
    }

    fn unwrap_key(&self, dc: &DecryptConfig, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let bad = |reason: String| CryptoError::MalformedAnnotation {
            annotation: self.annotation_id(),
            reason,
        };
        let parsed: Blob =
            serde_json::from_slice(blob).map_err(|e| bad(format!("not pkcs11 blob JSON: {e}")))?;
        if parsed.version != 0 {
            return Err(bad(format!(
                "pkcs11 blob version {} is newer than this rrun knows (0)",
                parsed.version
            )));
        }
        let mut entries = Vec::new();
        for r in &parsed.recipients {
            if r.version != 0 {
                return Err(bad(format!(
                    "pkcs11 recipient version {} is newer than this rrun knows (0)",
                    r.version
                )));
            }
            let hash = OaepHash::from_blob(&r.hash)
                .ok_or_else(|| bad(format!("unsupported OAEP hash {:?}", r.hash)))?;
            match decode_b64(&r.blob) {
                Some(ct) if !ct.is_empty() => entries.push((hash, ct)),
                _ => {}
            }
        }
        let policy = ModulePolicy::from_env()?;
        let mut last_err = None;
        for key in dc.pkcs11_keys() {
            let session = match token::TokenSession::open(key, &policy, true) {
                Ok(s) => s,
                Err(e) => {
                    last_err = Some(e);
                    continue;
                }
            };
            let handle = match session.private_key() {
                Ok(h) => h,
                Err(e) => {
                    last_err = Some(e);
                    continue;
                }
            };
            for (hash, ct) in &entries {
                match session.decrypt(handle, *hash, ct) {
                    Ok(plain) => return Ok(plain),
                    Err(e) => last_err = Some(e),
                }
            }
        }
        Err(last_err.unwrap_or_else(|| {
            bad("no pkcs11 key file given: pass the YAML key file with --key".into())
        }))
    }

    fn no_possible_keys(&self, dc: &DecryptConfig) -> bool {
        dc.pkcs11_keys().is_empty()
    }

    fn recipients(&self, _blob: &[u8]) -> Vec<String> {
        vec!["[pkcs11]".into()]
    }
}

#[cfg(test)]
mod tests;
