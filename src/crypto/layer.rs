//! One layer descriptor's worth of ocicrypt: encrypt a blob and produce its annotations, unwrap
//! the layer key from annotations (the key gate), add recipients without re-encrypting, and
//! decrypt with the HMAC checked. Mirrors containers/ocicrypt `encryption.go`.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use super::blockcipher::{self, DecryptReader, StreamDigests};
use super::config::{DecryptConfig, EncryptConfig};
use super::error::{CryptoError, Result};
use super::keywrap;
use super::options::{decode_b64, encode_b64, PrivateOptions, PublicOptions};
use super::{ANN_KEYS_PREFIX, ANN_PREFIX, ANN_PUBOPTS};

/// A descriptor's annotations.
pub type Annotations = BTreeMap<String, String>;

/// The result of encrypting one layer.
#[derive(Debug)]
pub struct EncryptedLayer {
    /// The ocicrypt annotations to set on the new descriptor (`keys.*` and `pubopts`).
    pub annotations: Annotations,
    /// Digests and length of the stream.
    pub digests: StreamDigests,
}

/// True when the annotations carry wrapped keys of any scheme (ocicrypt treats such a layer
/// as already encrypted).
pub fn has_wrapped_keys(annotations: &Annotations) -> bool {
    annotations.keys().any(|k| k.starts_with(ANN_KEYS_PREFIX))
}

/// The annotations without any `org.opencontainers.image.enc.` entry (`FilterOutAnnotations`).
pub fn strip_annotations(annotations: &Annotations) -> Annotations {
    annotations
        .iter()
        .filter(|(k, _)| !k.starts_with(ANN_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The schemes a layer is encrypted for (`jwe`, `pgp`, ...), as in its annotation names.
pub fn schemes(annotations: &Annotations) -> Vec<String> {
    annotations
        .keys()
        .filter_map(|k| k.strip_prefix(ANN_KEYS_PREFIX))
        .map(str::to_string)
        .collect()
}

fn split_blobs(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Wrap `opts` for every recipient in `ec`, appending to the wrapped keys already in `existing`.
fn wrap_for_recipients(
    ec: &EncryptConfig,
    opts: &PrivateOptions,
    existing: &Annotations,
) -> Result<Annotations> {
    let opts_data = opts.to_json();
    let mut out = Annotations::new();
    for wrapper in keywrap::all() {
        if let Some(blob) = wrapper.wrap_keys(ec, &opts_data)? {
            let id = wrapper.annotation_id();
            let value = match existing.get(&id) {
                Some(old) if !old.is_empty() => format!("{old},{}", encode_b64(&blob)),
                _ => encode_b64(&blob),
            };
            out.insert(id, value);
        }
    }
    if out.is_empty() {
        return Err(CryptoError::InvalidRecipient {
            spec: String::new(),
            reason: "no wrapped keys produced by encryption: give at least one --recipient".into(),
        });
    }
    Ok(out)
}

/// Encrypt a fresh layer. `plain_digest` is the digest of the plaintext blob (recorded in the
/// private options); the caller checks it against `digests.plain_sha256`.
pub fn encrypt_layer<R: Read + Send, W: Write>(
    ec: &EncryptConfig,
    plain_digest: &str,
    input: R,
    output: W,
) -> Result<EncryptedLayer> {
    let opts = PrivateOptions::generate(plain_digest)?;
    // Wrap first: a recipient problem fails before any byte is written.
    let mut annotations = wrap_for_recipients(ec, &opts, &Annotations::new())?;
    let digests = blockcipher::encrypt(&opts.symkey, &opts.nonce, input, output)?;
    annotations.insert(
        ANN_PUBOPTS.to_string(),
        PublicOptions::new(digests.hmac).to_annotation(),
    );
    Ok(EncryptedLayer {
        annotations,
        digests,
    })
}

/// Whether the keys of this annotation live outside rrun (a PKCS#11 token, a key provider).
fn is_external_scheme(annotation_id: &str) -> bool {
    annotation_id
        .strip_prefix(ANN_KEYS_PREFIX)
        .is_some_and(|scheme| scheme == "pkcs11" || scheme.starts_with("provider."))
}

/// The key gate: unwrap the private options of an encrypted layer with the keys in `dc`,
/// reading no layer data. `layer` names the layer in errors.
pub fn unwrap_layer(
    dc: &DecryptConfig,
    layer: &str,
    annotations: &Annotations,
) -> Result<PrivateOptions> {
    let schemes = schemes(annotations);
    if schemes.is_empty() {
        return Err(CryptoError::MalformedAnnotation {
            annotation: format!("{ANN_KEYS_PREFIX}*"),
            reason: format!("layer {layer} is marked encrypted but has no wrapped keys"),
        });
    }
    if dc.is_empty() {
        return Err(CryptoError::MissingPrivateKey);
    }
    let mut last_err = None;
    let mut external_err = None;
    for wrapper in keywrap::all() {
        let Some(value) = annotations.get(&wrapper.annotation_id()) else {
            continue;
        };
        if wrapper.no_possible_keys(dc) {
            continue;
        }
        for blob in split_blobs(value) {
            let Some(bytes) = decode_b64(blob) else {
                last_err = Some(CryptoError::MalformedAnnotation {
                    annotation: wrapper.annotation_id(),
                    reason: "an entry is not base64".into(),
                });
                continue;
            };
            match wrapper.unwrap_key(dc, &bytes) {
                Ok(json) => return PrivateOptions::from_json(&json),
                // A token or key provider that failed (wrong PIN, timeout, crash) is what the
                // user must fix: it is reported instead of "no key opens the layer".
                Err(e @ CryptoError::Key { .. })
                    if is_external_scheme(&wrapper.annotation_id()) =>
                {
                    external_err = Some(e)
                }
                Err(e) => last_err = Some(e),
            }
        }
    }
    if let Some(e) = external_err {
        return Err(e);
    }
    match last_err {
        // Broken annotations are reported as such: no key could ever open them.
        Some(e @ CryptoError::MalformedAnnotation { .. }) => Err(e),
        _ => Err(CryptoError::NoKeyForLayer {
            layer: layer.to_string(),
            schemes: schemes.join(", "),
        }),
    }
}

/// Add the recipients of `ec` to an already encrypted layer without re-encrypting it: the
/// layer key is unwrapped with `ec`'s decryption keys and wrapped again for the new recipients.
/// Returns the complete new set of ocicrypt annotations (the blob is unchanged).
pub fn add_recipients(
    ec: &EncryptConfig,
    layer: &str,
    annotations: &Annotations,
) -> Result<Annotations> {
    let opts = unwrap_layer(ec.decrypt_config(), layer, annotations)?;
    let mut out: Annotations = annotations
        .iter()
        .filter(|(k, _)| k.starts_with(ANN_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.extend(wrap_for_recipients(ec, &opts, annotations)?);
    Ok(out)
}

/// The public options of an encrypted layer.
pub fn public_options(annotations: &Annotations) -> Result<PublicOptions> {
    let value = annotations
        .get(ANN_PUBOPTS)
        .ok_or_else(|| CryptoError::MalformedAnnotation {
            annotation: ANN_PUBOPTS.into(),
            reason: "missing: no cipher type provided".into(),
        })?;
    PublicOptions::from_annotation(value)
}

/// Decrypt a layer whose key was unwrapped with [`unwrap_layer`]. The HMAC is checked at the end
/// of the stream; on error everything written to `output` must be discarded. The caller checks
/// `digests.plain_sha256` against `opts.digest`.
pub fn decrypt_layer<R: Read + Send, W: Write>(
    opts: &PrivateOptions,
    annotations: &Annotations,
    input: R,
    output: W,
) -> Result<StreamDigests> {
    let public = public_options(annotations)?;
    blockcipher::decrypt(&opts.symkey, &opts.nonce, &public.hmac, input, output)
}

/// A reader of the plaintext of a layer, which fails instead of returning the last bytes if
/// the HMAC does not match.
pub fn decrypt_reader<R: Read + Send + 'static>(
    opts: &PrivateOptions,
    annotations: &Annotations,
    input: R,
) -> Result<DecryptReader<R>> {
    let public = public_options(annotations)?;
    Ok(DecryptReader::new(
        &opts.symkey,
        &opts.nonce,
        &public.hmac,
        input,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_keeps_foreign_annotations() {
        let mut a = Annotations::new();
        a.insert("org.opencontainers.image.enc.keys.jwe".into(), "x".into());
        a.insert(ANN_PUBOPTS.into(), "y".into());
        a.insert("com.example".into(), "z".into());
        assert_eq!(
            strip_annotations(&a).keys().collect::<Vec<_>>(),
            vec!["com.example"]
        );
        assert!(has_wrapped_keys(&a));
        assert_eq!(schemes(&a), vec!["jwe"]);
    }

    #[test]
    fn unwrap_without_keys_says_key_missing() {
        let mut a = Annotations::new();
        a.insert(
            "org.opencontainers.image.enc.keys.jwe".into(),
            encode_b64(b"{}"),
        );
        let err = unwrap_layer(&DecryptConfig::default(), "sha256:1", &a).unwrap_err();
        assert!(matches!(err, CryptoError::MissingPrivateKey), "{err}");
    }

    #[test]
    fn unwrap_without_wrapped_keys_is_malformed() {
        let err =
            unwrap_layer(&DecryptConfig::default(), "sha256:1", &Annotations::new()).unwrap_err();
        assert!(
            matches!(err, CryptoError::MalformedAnnotation { .. }),
            "{err}"
        );
    }
}
