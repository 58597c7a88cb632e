//! JWE key wrapping as go-jose does it for ocicrypt (`keywrap/jwe/keywrapper_jwe.go`): writes the
//! JSON serialization skopeo writes, reads every `alg`/`enc` ocicrypt reads.
//!
//! Output, byte for byte in go-jose's layout (`jwe.go` FullSerialize, `crypter.go`):
//! - one recipient, flattened: `{"protected","encrypted_key","iv","ciphertext","tag"}` with the
//!   recipient's `alg` (and `epk`) merged into the protected header;
//! - several, general: `{"protected":{"enc"},"recipients":[{"header","encrypted_key"}],
//!   "encrypted_key","iv","ciphertext","tag"}`, where the top-level `encrypted_key` repeats
//!   recipient 0's (a go-jose quirk that readers ignore).
//!
//! Header objects have their keys sorted (go-jose marshals them from a Go map); `epk` members are
//! `kty, crv, x, y`; all binary members are unpadded base64url.

mod aes_kw;
mod content;
mod ecdh_es;
mod key_alg;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use openssl::pkey::Id;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use self::content::ContentEnc;
use self::key_alg::KeyAlg;
use super::KeyWrapper;
use crate::crypto::config::{DecryptConfig, EncryptConfig};
use crate::crypto::error::{CryptoError, Result};
use crate::crypto::keys::{PrivateKey, PublicKey};

/// The annotation whose values are these JWEs (named in parse errors).
const ANNOTATION: &str = "org.opencontainers.image.enc.keys.jwe";

/// Length of the content encryption key rrun generates (A256GCM).
const CEK_LEN: usize = 32;

/// Most recipients one JWE may list: each costs every key a private-key operation, so a hostile
/// annotation could otherwise make decryption crawl. Real images have a handful.
const MAX_RECIPIENTS: usize = 1024;

/// The `jwe` scheme.
#[derive(Debug, Clone, Copy, Default)]
pub struct JweKeyWrapper;

/// Encrypt `plaintext` for the recipients, A256GCM content encryption; the JSON serialization
/// (flattened for one recipient, general for several).
pub fn encrypt(recipients: &[&PublicKey], plaintext: &[u8]) -> Result<Vec<u8>> {
    if recipients.is_empty() {
        return Err(CryptoError::Jwe(
            "no recipients to encrypt for: give at least one jwe:PUBKEY_FILE".into(),
        ));
    }
    let algs = recipients
        .iter()
        .map(|key| KeyAlg::for_recipient(key))
        .collect::<Result<Vec<_>>>()?;

    let mut cek = Zeroizing::new(vec![0u8; CEK_LEN]);
    openssl::rand::rand_bytes(&mut cek)?;

    // Per-recipient headers and encrypted keys (go-jose `encryptKey`).
    let mut wrapped: Vec<(Header, Vec<u8>)> = Vec::with_capacity(recipients.len());
    for (key, alg) in recipients.iter().zip(algs) {
        let mut header = Header::new();
        header.insert("alg", Value::from(alg.name()));
        let encrypted_key = if alg.is_rsa() {
            key_alg::rsa_oaep_encrypt(key.pkey(), alg, &cek)?
        } else {
            let (epk, encrypted_key) = ecdh_es::wrap_for(key.pkey(), alg, &cek)?;
            header.insert("epk", serde_json::to_value(epk).map_err(serialize_error)?);
            encrypted_key
        };
        wrapped.push((header, encrypted_key));
    }

    let mut protected = Header::new();
    protected.insert("enc", Value::from(ContentEnc::A256Gcm.name()));
    if let [(header, _)] = wrapped.as_mut_slice() {
        // One recipient: its header moves into the protected header (go-jose crypter.go).
        protected.append(header);
    }
    let protected = b64url(&serde_json::to_vec(&protected).map_err(serialize_error)?);
    let sealed = content::seal_a256gcm(&cek, protected.as_bytes(), plaintext)?;

    let general = wrapped.len() > 1;
    let out = JweOut {
        protected,
        recipients: if general {
            wrapped
                .iter()
                .map(|(header, key)| RecipientOut {
                    header,
                    encrypted_key: b64url(key),
                })
                .collect()
        } else {
            Vec::new()
        },
        encrypted_key: b64url(&wrapped[0].1),
        iv: b64url(&sealed.iv),
        ciphertext: b64url(&sealed.ciphertext),
        tag: b64url(&sealed.tag),
    };
    serde_json::to_vec(&out).map_err(serialize_error)
}

/// Decrypt a JWE JSON serialization with the first key that opens it.
///
/// Accepts the flattened and general JSON forms (and the compact form, as go-jose's
/// `ParseEncrypted` does). Every key is tried against every recipient whose `alg` fits it.
pub fn decrypt(keys: &[&PrivateKey], jwe: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let parsed = Parsed::parse(jwe)?;
    let mut content_failed = false;
    for key in keys {
        for recipient in &parsed.recipients {
            let Some(cek) = recipient.unwrap_cek(key) else {
                continue;
            };
            match content::open(
                parsed.enc,
                &cek,
                &parsed.auth_data,
                &parsed.iv,
                &parsed.ciphertext,
                &parsed.tag,
            ) {
                Some(plaintext) => return Ok(plaintext),
                None => content_failed = true,
            }
        }
    }
    let targets = parsed
        .recipients
        .iter()
        .map(ParsedRecipient::describe)
        .collect::<Vec<_>>()
        .join(", ");
    Err(CryptoError::Jwe(if content_failed {
        format!(
            "a key unwrapped the content key but the {} content failed authentication: the JWE \
             was altered or truncated",
            parsed.enc.name()
        )
    } else if keys.is_empty() {
        format!("no key opens this JWE: no private key was given; it is encrypted for {targets}")
    } else {
        format!(
            "no key opens this JWE: it is encrypted for {targets}; give the matching private key"
        )
    }))
}

impl KeyWrapper for JweKeyWrapper {
    fn scheme(&self) -> &str {
        "jwe"
    }

    fn wrap_keys(&self, ec: &EncryptConfig, opts_data: &[u8]) -> Result<Option<Vec<u8>>> {
        let recipients = ec.jwe_recipients();
        if recipients.is_empty() {
            return Ok(None);
        }
        encrypt(&recipients, opts_data).map(Some)
    }

    fn unwrap_key(&self, dc: &DecryptConfig, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let keys: Vec<&PrivateKey> = dc.private_keys().iter().collect();
        decrypt(&keys, blob)
    }

    fn no_possible_keys(&self, dc: &DecryptConfig) -> bool {
        dc.private_keys().is_empty()
    }

    fn recipients(&self, _blob: &[u8]) -> Vec<String> {
        vec!["[jwe]".to_string()]
    }
}

/// A header as go-jose writes it: a map, so the keys come out sorted.
type Header = BTreeMap<&'static str, Value>;

/// A JSON object as read, members in document order.
type Object = Map<String, Value>;

/// The JSON serialization, members in go-jose's `rawJSONWebEncryption` order.
#[derive(serde::Serialize)]
struct JweOut<'a> {
    protected: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    recipients: Vec<RecipientOut<'a>>,
    encrypted_key: String,
    iv: String,
    ciphertext: String,
    tag: String,
}

/// One entry of `recipients` (go-jose `rawRecipientInfo`).
#[derive(serde::Serialize)]
struct RecipientOut<'a> {
    header: &'a Header,
    encrypted_key: String,
}

fn serialize_error(e: serde_json::Error) -> CryptoError {
    CryptoError::Jwe(format!("cannot serialize the JWE: {e}"))
}

/// Unpadded base64url, the JWE encoding of binary members.
fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decode base64url; trailing `=` padding is tolerated, as go-jose tolerates it.
fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

fn malformed(reason: impl Into<String>) -> CryptoError {
    CryptoError::MalformedAnnotation {
        annotation: ANNOTATION.into(),
        reason: reason.into(),
    }
}

/// A JWE checked and decoded, ready for decryption.
struct Parsed {
    /// The content cipher's additional authenticated data: the protected header as base64url,
    /// plus `.` and the base64url `aad` member when there is one.
    auth_data: Vec<u8>,
    enc: ContentEnc,
    recipients: Vec<ParsedRecipient>,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: Vec<u8>,
}

/// One recipient with its merged header (protected, then shared unprotected, then its own).
struct ParsedRecipient {
    alg: KeyAlg,
    header: Object,
    encrypted_key: Vec<u8>,
}

/// The members of either serialization, before header checks.
struct RawJwe {
    protected: Vec<u8>,
    unprotected: Option<Object>,
    /// Per-recipient header and encrypted key.
    recipients: Vec<(Option<Object>, Vec<u8>)>,
    aad: Option<Vec<u8>>,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: Vec<u8>,
}

impl RawJwe {
    fn from_json(text: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| malformed(format!("not a JWE JSON serialization: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| malformed("not a JWE JSON serialization: expected a JSON object"))?;

        let listed = match obj.get("recipients") {
            None => Vec::new(),
            Some(Value::Array(list)) => list.clone(),
            Some(_) => return Err(malformed("member \"recipients\" is not an array")),
        };
        if listed.len() > MAX_RECIPIENTS {
            return Err(malformed(format!(
                "{} recipients; rrun reads at most {MAX_RECIPIENTS}",
                listed.len()
            )));
        }
        let recipients = if listed.is_empty() {
            // Flattened: the recipient's header and key are top-level members.
            vec![(
                object_member(obj, "header")?,
                b64_member(obj, "encrypted_key")?
                    .ok_or_else(|| malformed("missing member \"encrypted_key\""))?,
            )]
        } else {
            // General: a top-level encrypted_key (go-jose writes one) is ignored.
            listed
                .iter()
                .enumerate()
                .map(|(i, entry)| {
                    let entry = entry
                        .as_object()
                        .ok_or_else(|| malformed(format!("recipient {i} is not an object")))?;
                    let header = object_member(entry, "header")?;
                    let key = b64_member(entry, "encrypted_key")?.ok_or_else(|| {
                        malformed(format!("recipient {i}: missing member \"encrypted_key\""))
                    })?;
                    Ok((header, key))
                })
                .collect::<Result<Vec<_>>>()?
        };
        let required = |name: &str| {
            b64_member(obj, name)?.ok_or_else(|| malformed(format!("missing member \"{name}\"")))
        };
        Ok(Self {
            protected: b64_member(obj, "protected")?.unwrap_or_default(),
            unprotected: object_member(obj, "unprotected")?,
            recipients,
            aad: b64_member(obj, "aad")?,
            iv: required("iv")?,
            ciphertext: required("ciphertext")?,
            tag: required("tag")?,
        })
    }

    /// `BASE64URL(header).BASE64URL(key).BASE64URL(iv).BASE64URL(ciphertext).BASE64URL(tag)`.
    fn from_compact(text: &str) -> Result<Self> {
        let parts: Vec<&str> = text.split('.').collect();
        let [protected, key, iv, ciphertext, tag] = parts.as_slice() else {
            return Err(malformed(
                "not a JWE: expected a JSON object or five dot-separated compact parts",
            ));
        };
        let decode = |name: &str, s: &str| {
            b64url_decode(s)
                .ok_or_else(|| malformed(format!("compact part {name} is not base64url")))
        };
        Ok(Self {
            protected: decode("protected", protected)?,
            unprotected: None,
            recipients: vec![(None, decode("encrypted_key", key)?)],
            aad: None,
            iv: decode("iv", iv)?,
            ciphertext: decode("ciphertext", ciphertext)?,
            tag: decode("tag", tag)?,
        })
    }
}

/// An optional base64url string member.
fn b64_member(obj: &Object, name: &str) -> Result<Option<Vec<u8>>> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => b64url_decode(s)
            .map(Some)
            .ok_or_else(|| malformed(format!("member \"{name}\" is not base64url"))),
        Some(_) => Err(malformed(format!("member \"{name}\" is not a string"))),
    }
}

/// An optional JSON object member.
fn object_member(obj: &Object, name: &str) -> Result<Option<Object>> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(_) => Err(malformed(format!("member \"{name}\" is not a JSON object"))),
    }
}

/// Merge headers as go-jose does: a parameter set by an earlier header is kept.
fn merge<'a>(headers: impl IntoIterator<Item = Option<&'a Object>>) -> Object {
    let mut out = Map::new();
    for header in headers.into_iter().flatten() {
        for (k, v) in header {
            if !out.contains_key(k) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

/// Refuse what rrun (like ocicrypt) cannot honour: compression and critical extensions.
fn check_unsupported(header: &Object) -> Result<()> {
    if header.contains_key("zip") {
        return Err(malformed(
            "compressed JWE (\"zip\" header) is not supported; ocicrypt never writes it",
        ));
    }
    match header.get("crit") {
        None => Ok(()),
        Some(Value::Array(list)) if list.is_empty() => Ok(()),
        Some(Value::Array(list)) if list.iter().all(Value::is_string) => Err(malformed(format!(
            "unsupported critical header parameters {}",
            Value::Array(list.clone())
        ))),
        Some(_) => Err(malformed(
            "invalid \"crit\" header: expected an array of names",
        )),
    }
}

impl Parsed {
    fn parse(jwe: &[u8]) -> Result<Self> {
        let text = std::str::from_utf8(jwe)
            .map_err(|_| malformed("not a JWE JSON serialization: not UTF-8 text"))?
            .trim();
        let raw = if text.starts_with('{') {
            RawJwe::from_json(text)?
        } else {
            RawJwe::from_compact(text)?
        };

        let protected: Object = if raw.protected.is_empty() {
            Map::new()
        } else {
            serde_json::from_slice(&raw.protected)
                .map_err(|e| malformed(format!("protected header is not a JSON object: {e}")))?
        };
        if protected.is_empty() {
            return Err(malformed("protected header is missing"));
        }
        check_unsupported(&protected)?;
        if let Some(h) = &raw.unprotected {
            check_unsupported(h)?;
        }

        let global = merge([Some(&protected), raw.unprotected.as_ref()]);
        let enc = match global.get("enc") {
            Some(Value::String(s)) => ContentEnc::parse(s).ok_or_else(|| {
                malformed(format!(
                    "unsupported content encryption {s:?}; ocicrypt accepts {}",
                    ContentEnc::names()
                ))
            })?,
            Some(_) => return Err(malformed("header \"enc\" is not a string")),
            None => return Err(malformed("missing header \"enc\"")),
        };

        let mut recipients = Vec::with_capacity(raw.recipients.len());
        for (i, (own, encrypted_key)) in raw.recipients.into_iter().enumerate() {
            if let Some(h) = &own {
                check_unsupported(h)?;
            }
            let header = merge([Some(&protected), raw.unprotected.as_ref(), own.as_ref()]);
            let alg = match header.get("alg") {
                Some(Value::String(s)) => KeyAlg::parse(s).ok_or_else(|| {
                    malformed(format!(
                        "recipient {i}: unsupported key algorithm {s:?}; ocicrypt accepts {}",
                        KeyAlg::names()
                    ))
                })?,
                Some(_) => {
                    return Err(malformed(format!("recipient {i}: \"alg\" is not a string")))
                }
                None => return Err(malformed(format!("recipient {i}: missing header \"alg\""))),
            };
            recipients.push(ParsedRecipient {
                alg,
                header,
                encrypted_key,
            });
        }

        // go-jose computeAuthData: the protected header re-encoded without padding.
        let mut auth_data = b64url(&raw.protected).into_bytes();
        if let Some(aad) = &raw.aad {
            auth_data.push(b'.');
            auth_data.extend_from_slice(b64url(aad).as_bytes());
        }
        Ok(Self {
            auth_data,
            enc,
            recipients,
            iv: raw.iv,
            ciphertext: raw.ciphertext,
            tag: raw.tag,
        })
    }
}

impl ParsedRecipient {
    /// The content encryption key, if `key` fits this recipient and opens it.
    fn unwrap_cek(&self, key: &PrivateKey) -> Option<Zeroizing<Vec<u8>>> {
        let pkey = key.pkey();
        match (pkey.id(), self.alg.is_rsa()) {
            (Id::RSA, true) => key_alg::rsa_oaep_decrypt(pkey, self.alg, &self.encrypted_key),
            (Id::EC, false) => {
                ecdh_es::unwrap_with(pkey, self.alg, &self.header, &self.encrypted_key)
            }
            _ => None,
        }
    }

    /// `RSA-OAEP`, or `ECDH-ES+A256KW (P-256)`: what key would open this recipient.
    fn describe(&self) -> String {
        let crv = self
            .header
            .get("epk")
            .and_then(|epk| epk.get("crv"))
            .and_then(Value::as_str);
        match crv {
            Some(crv) if !self.alg.is_rsa() => format!("{} ({crv})", self.alg.name()),
            _ => self.alg.name().to_string(),
        }
    }
}
