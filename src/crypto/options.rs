//! The ocicrypt layer options: the private options JSON that every key wrapper wraps, and the
//! public options carried in `org.opencontainers.image.enc.pubopts`.
//!
//! Encodings match containers/ocicrypt `blockcipher/blockcipher.go` as Go's `encoding/json`
//! writes them: compact, fields in struct order, `[]byte` as padded standard base64, maps with
//! sorted keys.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use zeroize::{Zeroize, Zeroizing};

use super::error::{CryptoError, Result};

/// The only layer cipher ocicrypt defines (`blockcipher.AES256CTR`).
pub const AES256CTR: &str = "AES_256_CTR_HMAC_SHA256";

/// Length of the layer encryption key (LEK).
pub const KEY_LEN: usize = 32;
/// Length of the AES-CTR nonce: the whole initial counter block.
pub const NONCE_LEN: usize = 16;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Decode base64 as Go's `encoding/json` does for `[]byte`, also tolerating the unpadded and
/// URL-safe forms other implementations write.
pub fn decode_b64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    B64.decode(s)
        .or_else(|_| STANDARD_NO_PAD.decode(s))
        .or_else(|_| URL_SAFE.decode(s))
        .or_else(|_| URL_SAFE_NO_PAD.decode(s))
        .ok()
}

/// Encode as padded standard base64 (Go's `[]byte` JSON encoding, and annotation values).
pub fn encode_b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// A 32-byte layer encryption key. Zeroized on drop; `Debug` prints nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct SymmetricKey(Zeroizing<[u8; KEY_LEN]>);

impl SymmetricKey {
    /// A fresh random key from the operating system's generator.
    pub fn random() -> Result<Self> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::getrandom(key.as_mut()).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Self(key))
    }

    /// Wrap raw key bytes; fails unless there are exactly 32 (ocicrypt: "invalid key length").
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; KEY_LEN] =
            bytes
                .try_into()
                .map_err(|_| CryptoError::MalformedAnnotation {
                    annotation: "private options".into(),
                    reason: format!(
                        "invalid key length of {} bytes; need {KEY_LEN} bytes",
                        bytes.len()
                    ),
                })?;
        Ok(Self(Zeroizing::new(arr)))
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SymmetricKey(..)")
    }
}

/// `PrivateLayerBlockCipherOptions`: what the key wrappers wrap for each recipient.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateOptions {
    /// The layer encryption key.
    pub symkey: SymmetricKey,
    /// Digest of the plaintext blob (for a gzip layer, of the compressed bytes).
    pub digest: String,
    /// The 16-byte initial counter block (`cipheroptions.nonce`).
    pub nonce: [u8; NONCE_LEN],
    /// Any other private cipher options, kept as they came.
    pub extra: BTreeMap<String, Vec<u8>>,
}

impl fmt::Debug for PrivateOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateOptions")
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct RawPrivate {
    #[serde(default)]
    symkey: Option<String>,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    cipheroptions: Option<BTreeMap<String, Option<String>>>,
}

impl Drop for RawPrivate {
    fn drop(&mut self) {
        self.symkey.zeroize();
        if let Some(map) = self.cipheroptions.as_mut() {
            for v in map.values_mut() {
                v.zeroize();
            }
        }
    }
}

impl PrivateOptions {
    /// Fresh options for a blob with the given plaintext digest: a random key and nonce.
    pub fn generate(digest: &str) -> Result<Self> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Self {
            symkey: SymmetricKey::random()?,
            digest: digest.to_string(),
            nonce,
            extra: BTreeMap::new(),
        })
    }

    /// The compact JSON ocicrypt wraps: `{"symkey":..,"digest":..,"cipheroptions":{"nonce":..}}`.
    pub fn to_json(&self) -> Zeroizing<Vec<u8>> {
        let mut opts: BTreeMap<&str, Zeroizing<String>> = BTreeMap::new();
        opts.insert("nonce", Zeroizing::new(encode_b64(&self.nonce)));
        for (k, v) in &self.extra {
            opts.insert(k, Zeroizing::new(encode_b64(v)));
        }
        let mut out = Zeroizing::new(String::with_capacity(200));
        out.push_str("{\"symkey\":\"");
        out.push_str(&Zeroizing::new(encode_b64(self.symkey.as_bytes())));
        out.push_str("\",\"digest\":");
        out.push_str(&serde_json::to_string(&self.digest).unwrap_or_default());
        out.push_str(",\"cipheroptions\":{");
        for (i, (k, v)) in opts.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(k).unwrap_or_default());
            out.push_str(":\"");
            out.push_str(v);
            out.push('"');
        }
        out.push_str("}}");
        Zeroizing::new(std::mem::take(&mut *out).into_bytes())
    }

    /// Parse the JSON a key wrapper returned.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let bad = |reason: String| CryptoError::MalformedAnnotation {
            annotation: "private options".into(),
            reason,
        };
        let raw: RawPrivate =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        let symkey_b64 = raw
            .symkey
            .as_deref()
            .ok_or_else(|| bad("no symkey".into()))?;
        let symkey = Zeroizing::new(
            decode_b64(symkey_b64).ok_or_else(|| bad("symkey is not base64".into()))?,
        );
        let symkey = SymmetricKey::from_slice(&symkey)?;
        let digest = raw.digest.clone().unwrap_or_default();
        let mut nonce = None;
        let mut extra = BTreeMap::new();
        for (k, v) in raw.cipheroptions.iter().flatten() {
            let bytes = decode_b64(v.as_deref().unwrap_or(""))
                .ok_or_else(|| bad(format!("cipheroptions.{k} is not base64")))?;
            if k == "nonce" {
                nonce = Some(bytes);
            } else {
                extra.insert(k.clone(), bytes);
            }
        }
        let nonce = nonce.ok_or_else(|| bad("no cipheroptions.nonce".into()))?;
        let nonce: [u8; NONCE_LEN] = nonce
            .as_slice()
            .try_into()
            .map_err(|_| bad(format!("nonce is {} bytes; need {NONCE_LEN}", nonce.len())))?;
        Ok(Self {
            symkey,
            digest,
            nonce,
            extra,
        })
    }
}

/// `PublicLayerBlockCipherOptions`: the cipher name and the HMAC, in the `pubopts` annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicOptions {
    /// Cipher name; `AES_256_CTR_HMAC_SHA256` is the only one.
    pub cipher: String,
    /// HMAC-SHA256 of the ciphertext keyed with the layer key.
    pub hmac: Vec<u8>,
    /// Public cipher options (ocicrypt writes `{}`).
    pub cipher_options: BTreeMap<String, Vec<u8>>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct RawPublic {
    #[serde(default)]
    cipher: Option<String>,
    #[serde(default)]
    hmac: Option<String>,
    #[serde(default)]
    cipheroptions: Option<BTreeMap<String, Option<String>>>,
}

impl PublicOptions {
    /// Options for a layer encrypted with `AES_256_CTR_HMAC_SHA256` and the given HMAC.
    pub fn new(hmac: [u8; 32]) -> Self {
        Self {
            cipher: AES256CTR.into(),
            hmac: hmac.to_vec(),
            cipher_options: BTreeMap::new(),
        }
    }

    /// The annotation value: base64 of the compact JSON.
    pub fn to_annotation(&self) -> String {
        let raw = RawPublic {
            cipher: Some(self.cipher.clone()),
            hmac: Some(encode_b64(&self.hmac)),
            cipheroptions: Some(
                self.cipher_options
                    .iter()
                    .map(|(k, v)| (k.clone(), Some(encode_b64(v))))
                    .collect(),
            ),
        };
        encode_b64(serde_json::to_string(&raw).unwrap_or_default().as_bytes())
    }

    /// Parse the annotation value; a missing or unknown cipher is an error.
    pub fn from_annotation(value: &str) -> Result<Self> {
        let bad = |reason: String| CryptoError::MalformedAnnotation {
            annotation: super::ANN_PUBOPTS.into(),
            reason,
        };
        let json = decode_b64(value.trim()).ok_or_else(|| bad("not base64".into()))?;
        let raw: RawPublic =
            serde_json::from_slice(&json).map_err(|e| bad(format!("not JSON: {e}")))?;
        let cipher = raw.cipher.unwrap_or_default();
        if cipher.is_empty() {
            return Err(bad("no cipher type provided".into()));
        }
        if cipher != AES256CTR {
            return Err(CryptoError::UnsupportedCipher(cipher));
        }
        let hmac = decode_b64(raw.hmac.as_deref().unwrap_or(""))
            .ok_or_else(|| bad("hmac is not base64".into()))?;
        if hmac.is_empty() {
            return Err(bad("HMAC is not provided for decryption process".into()));
        }
        if hmac.len() != 32 {
            return Err(bad(format!(
                "hmac is {} bytes; HMAC-SHA256 has 32",
                hmac.len()
            )));
        }
        let mut cipher_options = BTreeMap::new();
        for (k, v) in raw.cipheroptions.into_iter().flatten() {
            let bytes = decode_b64(v.as_deref().unwrap_or(""))
                .ok_or_else(|| bad(format!("cipheroptions.{k} is not base64")))?;
            cipher_options.insert(k, bytes);
        }
        Ok(Self {
            cipher,
            hmac,
            cipher_options,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_json_has_ocicrypt_shape() {
        let mut o = PrivateOptions::generate("sha256:abc").unwrap();
        o.nonce = [7u8; 16];
        let json = String::from_utf8(o.to_json().to_vec()).unwrap();
        assert!(json.starts_with("{\"symkey\":\""), "{json}");
        assert!(json.ends_with("\",\"digest\":\"sha256:abc\",\"cipheroptions\":{\"nonce\":\"BwcHBwcHBwcHBwcHBwcHBw==\"}}"), "{json}");
        let back = PrivateOptions::from_json(json.as_bytes()).unwrap();
        assert_eq!(back, o);
    }

    #[test]
    fn public_annotation_matches_skopeo_sample() {
        // Decoded pubopts of shared/reference/samples/enc-jwe-rsa-manifest.json.
        let sample = "eyJjaXBoZXIiOiJBRVNfMjU2X0NUUl9ITUFDX1NIQTI1NiIsImhtYWMiOiJwbEdTVGpnbzJ3c2I5aFBNL0l3NzZTY09ZWlRmWEplN2tOelBPQThjTVA4PSIsImNpcGhlcm9wdGlvbnMiOnt9fQ==";
        let p = PublicOptions::from_annotation(sample).unwrap();
        assert_eq!(p.cipher, AES256CTR);
        assert_eq!(p.to_annotation(), sample);
    }

    #[test]
    fn public_without_cipher_is_refused() {
        let v = encode_b64(br#"{"cipher":"","hmac":null,"cipheroptions":null}"#);
        assert!(PublicOptions::from_annotation(&v).is_err());
        let v = encode_b64(br#"{"cipher":"AES_128_GCM","hmac":"AA==","cipheroptions":{}}"#);
        assert!(matches!(
            PublicOptions::from_annotation(&v),
            Err(CryptoError::UnsupportedCipher(_))
        ));
    }

    #[test]
    fn debug_prints_no_key() {
        let o = PrivateOptions::generate("sha256:abc").unwrap();
        let s = format!("{o:?} {:?}", o.symkey);
        assert!(!s.contains(&encode_b64(o.symkey.as_bytes())));
    }
}
