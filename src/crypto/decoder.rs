//! containerd stream-processor decoding (imgcrypt's `ctd-decoder` contract): the fd 3 payload,
//! the key directory, and one encrypted layer stream decrypted with its HMAC checked.
//!
//! containerd runs the processor with the encrypted blob on stdin, wants the plain blob on
//! stdout, names the input media type in `STREAM_PROCESSOR_MEDIATYPE` and, for a CRI pull,
//! writes a payload to fd 3: a protobuf `google.protobuf.Any` whose `type_url` is
//! `io.containerd.ocicrypt.v1.Payload` and whose value is the JSON of imgcrypt's `Payload`
//! (`{"DecryptConfig":{"Parameters":{NAME:[base64,...]}},"Descriptor":{...}}`). Reading fd 3
//! is the caller's business; this module sees bytes only.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use zeroize::{Zeroize, Zeroizing};

use super::blockcipher::StreamDigests;
use super::config::DecryptConfig;
use super::error::CryptoError;
use super::keys;
use super::layer::{self, Annotations};
use super::options::decode_b64;

/// The `type_url` imgcrypt registers its `Payload` under (`typeurl.Register`).
pub const PAYLOAD_TYPE_URL: &str = "io.containerd.ocicrypt.v1.Payload";
/// The environment variable containerd names the input media type in.
pub const MEDIA_TYPE_ENV: &str = "STREAM_PROCESSOR_MEDIATYPE";
/// The file descriptor containerd writes the payload to (ctd-decoder's `payloadFD`).
pub const PAYLOAD_FD: i32 = 3;
/// The largest payload accepted: a descriptor and a few key files.
pub const MAX_PAYLOAD: usize = 16 << 20;

/// Result of the decoder.
pub type Result<T, E = DecoderError> = std::result::Result<T, E>;

/// What can go wrong while decoding a layer for containerd.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecoderError {
    /// The fd 3 payload is missing or cannot be parsed.
    #[error("bad containerd payload on fd 3: {0}")]
    Payload(String),

    /// The key directory cannot be read or holds something that is not a key.
    #[error("decryption keys path {}: {reason}", path.display())]
    KeyDir { path: PathBuf, reason: String },

    /// The input media type is not an encrypted layer type.
    #[error(
        "media type {0:?} is not an encrypted layer: configure rrun decoder only for \
             stream processors whose `accepts` list +encrypted layer types"
    )]
    MediaType(String),

    /// No key of the directory or the payload opens the layer.
    #[error(
        "no key opens layer {layer}: it is encrypted for {schemes} recipients and the \
             decoder has {keys}; put the matching private key into the --decryption-keys-path \
             directory"
    )]
    NoKeyForLayer {
        layer: String,
        schemes: String,
        keys: String,
    },

    /// A failure of the layer cipher, the key wrappers or the streams (HMAC mismatch included).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// The layer descriptor containerd hands over (OCI `Descriptor`, the fields rrun uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDescriptor {
    /// The descriptor's media type.
    pub media_type: String,
    /// The digest of the encrypted blob.
    pub digest: String,
    /// The size of the encrypted blob.
    pub size: u64,
    /// The annotations, carrying the wrapped keys and `pubopts`.
    pub annotations: Annotations,
}

/// The parsed fd 3 payload: the keys containerd passes on and the layer descriptor.
#[derive(Debug)]
pub struct Payload {
    /// Keys from the payload's `DecryptConfig` (empty in CRI's node key model).
    pub keys: DecryptConfig,
    /// Number of keys the payload carried.
    pub key_count: usize,
    /// The layer being decoded.
    pub descriptor: LayerDescriptor,
}

#[derive(serde::Deserialize)]
struct RawPayload {
    #[serde(rename = "DecryptConfig", default)]
    decrypt_config: Option<RawDecryptConfig>,
    #[serde(rename = "Descriptor")]
    descriptor: Option<RawDescriptor>,
}

/// ocicrypt's `DecryptConfig`: `Parameters map[string][][]byte`, each `[]byte` base64 in JSON.
#[derive(serde::Deserialize, Default)]
struct RawDecryptConfig {
    #[serde(rename = "Parameters", default)]
    parameters: Option<BTreeMap<String, Option<Vec<Option<String>>>>>,
}

impl Drop for RawDecryptConfig {
    fn drop(&mut self) {
        for list in self.parameters.iter_mut().flat_map(|m| m.values_mut()) {
            list.zeroize();
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    annotations: Option<Annotations>,
}

impl Payload {
    /// Parse the bytes containerd wrote to fd 3.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let bad = |reason: String| DecoderError::Payload(reason);
        if bytes.is_empty() {
            return Err(bad(NO_PAYLOAD.into()));
        }
        let any = parse_any(bytes).map_err(bad)?;
        let type_url = any.type_url.rsplit('/').next().unwrap_or_default();
        if type_url != PAYLOAD_TYPE_URL {
            return Err(bad(format!(
                "type {:?} is not {PAYLOAD_TYPE_URL}",
                any.type_url
            )));
        }
        let raw: RawPayload = serde_json::from_slice(any.value)
            .map_err(|e| bad(format!("the {PAYLOAD_TYPE_URL} JSON does not parse: {e}")))?;
        let d = raw
            .descriptor
            .as_ref()
            .ok_or_else(|| bad("it has no layer Descriptor".into()))?;
        let descriptor = LayerDescriptor {
            media_type: d.media_type.clone(),
            digest: d.digest.clone(),
            size: d.size,
            annotations: d.annotations.clone().unwrap_or_default(),
        };
        let mut keys = DecryptConfig::default();
        let key_count = match &raw.decrypt_config {
            Some(dc) => add_parameter_keys(dc, &mut keys)?,
            None => 0,
        };
        Ok(Self {
            keys,
            key_count,
            descriptor,
        })
    }
}

const NO_PAYLOAD: &str = "it is empty: containerd hands the layer descriptor only to the \
    processors io.containerd.ocicrypt.decoder.v1.tar and .tar.gzip, during a CRI image pull \
    (ctr pull and ctr import do not)";

/// The parameter names of ocicrypt's `DecryptWithPrivKeys`, `DecryptWithGpgPrivKeys` and
/// `DecryptWithX509s`, with the name of the matching password list.
const KEY_PARAMETERS: [(&str, Option<&str>); 3] = [
    ("privkeys", Some("privkeys-passwords")),
    ("gpg-privatekeys", Some("gpg-privatekeys-passwords")),
    ("x509s", None),
];

/// Load the keys of the payload's `Parameters` into `dc`; returns how many there were.
/// Parameters rrun does not use (pkcs11, keyprovider) are left alone.
fn add_parameter_keys(raw: &RawDecryptConfig, dc: &mut DecryptConfig) -> Result<usize> {
    let Some(params) = &raw.parameters else {
        return Ok(0);
    };
    let decode = |name: &str, i: usize, s: &str| -> Result<Zeroizing<Vec<u8>>> {
        decode_b64(s).map(Zeroizing::new).ok_or_else(|| {
            DecoderError::Payload(format!("DecryptConfig parameter {name}[{i}] is not base64"))
        })
    };
    let mut count = 0;
    for (name, passwords_name) in KEY_PARAMETERS {
        let values = params.get(name).and_then(Option::as_ref);
        let passwords = passwords_name
            .and_then(|p| params.get(p))
            .and_then(Option::as_ref);
        for (i, value) in values.into_iter().flatten().enumerate() {
            let data = decode(name, i, value.as_deref().unwrap_or_default())?;
            let password = match passwords.and_then(|p| p.get(i)).and_then(Option::as_deref) {
                Some(p) => Some(decode(passwords_name.unwrap_or_default(), i, p)?),
                None => None,
            };
            let password = password.as_ref().filter(|p| !p.is_empty());
            let source = PathBuf::from(format!("containerd payload {name}[{i}]"));
            dc.add(keys::parse_decryption_key(
                &data,
                password.map(|p| p.as_slice()),
                &source,
            )?);
            count += 1;
        }
    }
    Ok(count)
}

/// A protobuf `google.protobuf.Any`: field 1 `type_url`, field 2 `value`.
struct Any<'a> {
    type_url: String,
    value: &'a [u8],
}

fn parse_varint(bytes: &[u8], pos: &mut usize) -> std::result::Result<u64, String> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes
            .get(*pos)
            .ok_or("it ends inside a varint (truncated protobuf)")?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err("a varint is longer than 10 bytes (not a protobuf Any)".into())
}

fn parse_any(bytes: &[u8]) -> std::result::Result<Any<'_>, String> {
    let mut pos = 0;
    let mut type_url = None;
    let mut value: &[u8] = &[];
    while pos < bytes.len() {
        let tag = parse_varint(bytes, &mut pos)?;
        let (field, wire) = (tag >> 3, tag & 7);
        let skip = match wire {
            0 => {
                parse_varint(bytes, &mut pos)?;
                0
            }
            1 => 8,
            5 => 4,
            2 => {
                let len = usize::try_from(parse_varint(bytes, &mut pos)?)
                    .map_err(|_| "a field length does not fit in memory")?;
                let end = pos
                    .checked_add(len)
                    .filter(|&e| e <= bytes.len())
                    .ok_or("a field runs past the end (truncated protobuf)")?;
                let data = &bytes[pos..end];
                match field {
                    1 => {
                        type_url = Some(
                            String::from_utf8(data.to_vec())
                                .map_err(|_| "the type_url is not UTF-8")?,
                        )
                    }
                    2 => value = data,
                    _ => {}
                }
                len
            }
            w => {
                return Err(format!(
                    "wire type {w} is not protobuf (not a protobuf Any)"
                ))
            }
        };
        pos = pos
            .checked_add(skip)
            .filter(|&e| e <= bytes.len())
            .ok_or("a field runs past the end (truncated protobuf)")?;
    }
    let type_url = type_url.ok_or("it has no type_url (not a protobuf Any)")?;
    Ok(Any { type_url, value })
}

/// Load every file under `dir` (recursively, in name order) as ctd-decoder does: private keys,
/// gpg secret keyrings and x509 certificates, without passwords. Symbolic links are refused
/// as ctd-decoder refuses them. Returns the number of files loaded.
pub fn add_key_dir(dir: &Path, dc: &mut DecryptConfig) -> Result<usize> {
    let err = |path: &Path, reason: String| DecoderError::KeyDir {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::symlink_metadata(dir).map_err(|e| err(dir, e.to_string()))?;
    if !meta.is_dir() {
        return Err(err(dir, "is not a directory of key files".into()));
    }
    let mut count = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let mut entries = std::fs::read_dir(&current)
            .and_then(|rd| {
                rd.map(|e| e.map(|e| e.path()))
                    .collect::<io::Result<Vec<_>>>()
            })
            .map_err(|e| err(&current, e.to_string()))?;
        entries.sort();
        // Directories are visited after the files, in name order (a stack: push reversed).
        let mut subdirs = Vec::new();
        for path in entries {
            let meta = std::fs::symlink_metadata(&path).map_err(|e| err(&path, e.to_string()))?;
            if meta.file_type().is_symlink() {
                return Err(err(
                    &path,
                    "symbolic links are not supported in the decryption keys path (as in \
                     ctd-decoder): copy the key file into the directory"
                        .into(),
                ));
            }
            if meta.is_dir() {
                subdirs.push(path);
                continue;
            }
            let data = Zeroizing::new(std::fs::read(&path).map_err(|e| err(&path, e.to_string()))?);
            dc.add(keys::parse_decryption_key(&data, None, &path)?);
            count += 1;
        }
        pending.extend(subdirs.into_iter().rev());
    }
    Ok(count)
}

/// True for the `+encrypted` layer media types (OCI and Docker spellings alike).
pub fn is_encrypted_media_type(media_type: &str) -> bool {
    media_type.ends_with("+encrypted")
}

/// Decrypt one layer stream as containerd's stream processor: unwrap the layer key from the
/// descriptor's annotations with `dc`, then copy the plaintext to `output`. The last bytes
/// reach `output` only after the HMAC matched; the plaintext digest recorded in the private
/// options is checked at the end. On any error the caller must exit non-zero so that
/// containerd discards what it received. `key_sources` describes the keys for messages.
pub fn decode<R: Read + Send + 'static, W: Write>(
    dc: &DecryptConfig,
    key_sources: &str,
    media_type: &str,
    descriptor: &LayerDescriptor,
    input: R,
    mut output: W,
) -> Result<StreamDigests> {
    if !is_encrypted_media_type(media_type) {
        return Err(DecoderError::MediaType(media_type.to_string()));
    }
    let annotations = &descriptor.annotations;
    let opts = layer::unwrap_layer(dc, &descriptor.digest, annotations).map_err(|e| match e {
        CryptoError::MissingPrivateKey | CryptoError::NoKeyForLayer { .. } => {
            DecoderError::NoKeyForLayer {
                layer: descriptor.digest.clone(),
                schemes: layer::schemes(annotations).join(", "),
                keys: key_sources.to_string(),
            }
        }
        other => other.into(),
    })?;
    let mut reader = layer::decrypt_reader(&opts, annotations, input)?;
    io::copy(&mut reader, &mut output).map_err(crypto_error)?;
    output.flush().map_err(CryptoError::Io)?;
    let digests = reader
        .digests()
        .cloned()
        .ok_or_else(|| CryptoError::Io(io::Error::other("layer stream ended without a result")))?;
    if let Some(expected) = opts.digest.strip_prefix("sha256:") {
        let actual = hex::encode(digests.plain_sha256);
        if !expected.eq_ignore_ascii_case(&actual) {
            return Err(CryptoError::DigestMismatch {
                expected: opts.digest.clone(),
                actual: format!("sha256:{actual}"),
            }
            .into());
        }
    }
    Ok(digests)
}

/// Turn a stream error back into the crypto error it carries (the HMAC mismatch of
/// [`super::blockcipher::DecryptReader`]), or keep it as an i/o error.
fn crypto_error(e: io::Error) -> CryptoError {
    if !e.get_ref().is_some_and(|inner| inner.is::<CryptoError>()) {
        return CryptoError::Io(e);
    }
    match e.into_inner().map(|inner| inner.downcast::<CryptoError>()) {
        Some(Ok(inner)) => *inner,
        _ => CryptoError::Io(io::Error::other("layer stream failed")),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::{PKey, Private};
    use openssl::rsa::Rsa;
    use openssl::symm::Cipher;
    use sha2::{Digest as _, Sha256};

    use super::*;
    use crate::crypto::config::{EncryptConfig, Recipient};
    use crate::crypto::keys::PublicKey;
    use crate::crypto::options::encode_b64;

    const GZIP_ENC: &str = "application/vnd.oci.image.layer.v1.tar+gzip+encrypted";

    fn ec_key() -> PKey<Private> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
    }

    /// A protobuf `Any` as gogo's `proto.Marshal(types.Any)` writes it.
    fn any(type_url: &str, value: &[u8]) -> Vec<u8> {
        fn varint(mut n: usize, out: &mut Vec<u8>) {
            while n >= 0x80 {
                out.push((n as u8) | 0x80);
                n >>= 7;
            }
            out.push(n as u8);
        }
        let mut out = vec![0x0a];
        varint(type_url.len(), &mut out);
        out.extend_from_slice(type_url.as_bytes());
        out.push(0x12);
        varint(value.len(), &mut out);
        out.extend_from_slice(value);
        out
    }

    /// An encrypted layer for `key`'s public half: (plain, cipher, descriptor).
    fn encrypted_layer(key: &PKey<Private>, len: usize) -> (Vec<u8>, Vec<u8>, LayerDescriptor) {
        let public = PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap();
        layer_for(
            Recipient::Jwe(PublicKey::new(public, "test.pub", None)),
            len,
        )
    }

    /// An encrypted layer for `recipient`: (plain, cipher, descriptor).
    fn layer_for(recipient: Recipient, len: usize) -> (Vec<u8>, Vec<u8>, LayerDescriptor) {
        let plain: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&plain)));
        let ec = EncryptConfig::new(vec![recipient], DecryptConfig::default());
        let mut cipher = Vec::new();
        let enc = layer::encrypt_layer(&ec, &digest, plain.as_slice(), &mut cipher).unwrap();
        let mut annotations = enc.annotations;
        annotations.insert("com.example.keep".into(), "yes".into());
        let descriptor = LayerDescriptor {
            media_type: GZIP_ENC.into(),
            digest: format!("sha256:{}", hex::encode(Sha256::digest(&cipher))),
            size: cipher.len() as u64,
            annotations,
        };
        (plain, cipher, descriptor)
    }

    /// The JSON value containerd sends: `Parameters` as given, the descriptor as Go writes it.
    fn payload_json(params: serde_json::Value, d: &LayerDescriptor) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "DecryptConfig": {"Parameters": params},
            "Descriptor": {
                "mediaType": d.media_type,
                "digest": d.digest,
                "size": d.size,
                "annotations": d.annotations,
            }
        }))
        .unwrap()
    }

    fn key_dir(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, data) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, data).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        dir
    }

    fn run(
        dc: &DecryptConfig,
        descriptor: &LayerDescriptor,
        cipher: Vec<u8>,
    ) -> (Result<StreamDigests>, Vec<u8>) {
        let mut out = Vec::new();
        let r = decode(
            dc,
            "test keys",
            GZIP_ENC,
            descriptor,
            io::Cursor::new(cipher),
            &mut out,
        );
        (r, out)
    }

    /// A payload with these `Parameters` holds `count` keys, and they decrypt the layer.
    fn assert_payload_keys_decrypt(
        params: serde_json::Value,
        count: usize,
        descriptor: &LayerDescriptor,
        cipher: Vec<u8>,
        plain: &[u8],
    ) {
        let bytes = any(PAYLOAD_TYPE_URL, &payload_json(params, descriptor));
        let payload = Payload::parse(&bytes).unwrap();
        assert_eq!(payload.key_count, count);
        let (r, out) = run(&payload.keys, descriptor, cipher);
        r.unwrap();
        assert!(out == plain, "decrypted bytes differ");
    }

    #[test]
    fn node_key_model_payload_and_key_dir_decrypt_the_layer() {
        let key = ec_key();
        let (plain, cipher, descriptor) = encrypted_layer(&key, 100_000);
        // CRI's node key model sends an empty DecryptConfig (Go's nil map is null).
        let bytes = any(
            PAYLOAD_TYPE_URL,
            &payload_json(serde_json::Value::Null, &descriptor),
        );
        let payload = Payload::parse(&bytes).unwrap();
        assert_eq!(payload.descriptor, descriptor);
        assert_eq!(payload.key_count, 0);
        let other = ec_key();
        let dir = key_dir(&[
            ("a-other.pem", &other.private_key_to_pem_pkcs8().unwrap()),
            ("sub/node.pem", &key.private_key_to_pem_pkcs8().unwrap()),
        ]);
        let mut dc = payload.keys;
        assert_eq!(add_key_dir(dir.path(), &mut dc).unwrap(), 2);
        let (r, out) = run(&dc, &descriptor, cipher);
        let digests = r.unwrap();
        assert_eq!(digests.len, plain.len() as u64);
        assert!(out == plain, "decrypted bytes differ");
    }

    #[test]
    fn key_dir_with_a_pkcs7_key_and_its_certificate_opens_pkcs7_layers() {
        let fixture = |name: &str| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/crypto/pkcs7")
                .join(name)
        };
        let cert = keys::load_certificate(&fixture("cert1.pem")).unwrap();
        let (plain, cipher, descriptor) = layer_for(Recipient::Pkcs7(cert), 4000);
        let dir = key_dir(&[
            ("key1.pem", &std::fs::read(fixture("key1.pem")).unwrap()),
            ("cert1.pem", &std::fs::read(fixture("cert1.pem")).unwrap()),
        ]);
        let mut dc = DecryptConfig::default();
        assert_eq!(add_key_dir(dir.path(), &mut dc).unwrap(), 2);
        let (r, out) = run(&dc, &descriptor, cipher);
        r.unwrap();
        assert!(out == plain);
    }

    #[test]
    fn payload_gpg_private_keys_open_pgp_layers() {
        let fixture = |name: &str| {
            std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/data/crypto/pgp")
                    .join(name),
            )
            .unwrap()
        };
        let ring = crate::crypto::keywrap::pgp::PublicKeyring::parse(
            &fixture("pubring.gpg"),
            "pubring.gpg",
        )
        .unwrap();
        let mut who = ring.resolve(&["second@example.invalid"]).unwrap();
        let (plain, cipher, descriptor) = layer_for(Recipient::Pgp(who.remove(0)), 4000);
        // ocicrypt's DecryptWithGpgPrivKeys: keyrings and their passwords, side by side.
        let params = serde_json::json!({
            "gpg-privatekeys": [encode_b64(&fixture("fixture.sec.gpg")), encode_b64(&fixture("second.sec.asc"))],
            "gpg-privatekeys-passwords": [encode_b64(b""), encode_b64(b"fixture pass")],
        });
        assert_payload_keys_decrypt(params, 2, &descriptor, cipher, &plain);
    }

    #[test]
    fn payload_parameters_carry_keys_with_passwords() {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let (plain, cipher, descriptor) = encrypted_layer(&key, 5000);
        let pem = key
            .private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), b"pw")
            .unwrap();
        let params = serde_json::json!({
            "privkeys": [encode_b64(&pem)],
            "privkeys-passwords": [encode_b64(b"pw")],
            "gpg-privatekeys": null,
            "modules": [encode_b64(b"ignored")],
        });
        assert_payload_keys_decrypt(params, 1, &descriptor, cipher, &plain);

        // The same key without its password is refused with the password error.
        let params =
            serde_json::json!({"privkeys": [encode_b64(&pem)], "privkeys-passwords": [""]});
        let err =
            Payload::parse(&any(PAYLOAD_TYPE_URL, &payload_json(params, &descriptor))).unwrap_err();
        assert!(
            matches!(
                err,
                DecoderError::Crypto(CryptoError::MissingPassword { .. })
            ),
            "{err}"
        );
    }

    #[test]
    fn altered_layer_fails_before_its_last_bytes_are_released() {
        let key = ec_key();
        let (plain, mut cipher, descriptor) = encrypted_layer(&key, 3 << 20);
        let last = cipher.len() - 1;
        cipher[last] ^= 1;
        let mut dc = DecryptConfig::default();
        let dir = key_dir(&[("k.pem", &key.private_key_to_pem_pkcs8().unwrap())]);
        add_key_dir(dir.path(), &mut dc).unwrap();
        let (r, out) = run(&dc, &descriptor, cipher);
        let err = r.unwrap_err();
        assert!(
            matches!(err, DecoderError::Crypto(CryptoError::HmacMismatch { .. })),
            "{err}"
        );
        assert!(out.len() < plain.len(), "the whole plaintext was released");
        assert!(plain.starts_with(&out));
    }

    #[test]
    fn wrong_or_missing_keys_say_where_keys_go() {
        let (_, cipher, descriptor) = encrypted_layer(&ec_key(), 1000);
        let dir = key_dir(&[("wrong.pem", &ec_key().private_key_to_pem_pkcs8().unwrap())]);
        let mut dc = DecryptConfig::default();
        add_key_dir(dir.path(), &mut dc).unwrap();
        for dc in [dc, DecryptConfig::default()] {
            let (r, out) = run(&dc, &descriptor, cipher.clone());
            let text = r.unwrap_err().to_string();
            assert!(text.contains("no key opens layer sha256:"), "{text}");
            assert!(text.contains("jwe"), "{text}");
            assert!(text.contains("--decryption-keys-path"), "{text}");
            assert!(out.is_empty());
        }
    }

    #[test]
    fn plain_media_types_are_refused() {
        let key = ec_key();
        let (_, cipher, descriptor) = encrypted_layer(&key, 10);
        let mut out = Vec::new();
        let err = decode(
            &DecryptConfig::default(),
            "none",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            &descriptor,
            io::Cursor::new(cipher),
            &mut out,
        )
        .unwrap_err();
        assert!(matches!(err, DecoderError::MediaType(_)), "{err}");
        assert!(is_encrypted_media_type(
            "application/vnd.docker.image.rootfs.diff.tar.gzip+encrypted"
        ));
    }

    #[test]
    fn bad_payloads_are_refused_with_the_reason() {
        let (_, _, d) = encrypted_layer(&ec_key(), 10);
        let good = payload_json(serde_json::Value::Null, &d);
        let mut truncated = any(PAYLOAD_TYPE_URL, &good);
        truncated.truncate(truncated.len() - 3);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (Vec::new(), "CRI image pull"),
            (truncated, "truncated"),
            (any("io.example.Other", &good), "is not io.containerd"),
            (any(PAYLOAD_TYPE_URL, b"not json"), "does not parse"),
            (
                any(PAYLOAD_TYPE_URL, br#"{"DecryptConfig":{}}"#),
                "no layer Descriptor",
            ),
            (vec![0x0f, 0x00], "wire type 7"),
            (
                any(
                    PAYLOAD_TYPE_URL,
                    &payload_json(serde_json::json!({"privkeys": ["***"]}), &d),
                ),
                "privkeys[0] is not base64",
            ),
        ];
        for (bytes, want) in cases {
            let text = Payload::parse(&bytes).unwrap_err().to_string();
            assert!(text.contains(want), "want {want:?}: {text}");
        }
        // A type URL with a host prefix names the same type.
        let prefixed = any(&format!("types.example/{PAYLOAD_TYPE_URL}"), &good);
        assert_eq!(Payload::parse(&prefixed).unwrap().descriptor, d);
    }

    #[test]
    fn key_dir_refuses_symlinks_and_names_bad_files() {
        let key = ec_key();
        let dir = key_dir(&[("k.pem", &key.private_key_to_pem_pkcs8().unwrap())]);
        std::os::unix::fs::symlink(dir.path().join("k.pem"), dir.path().join("link.pem")).unwrap();
        let err = add_key_dir(dir.path(), &mut DecryptConfig::default()).unwrap_err();
        assert!(
            err.to_string().contains("symbolic links are not supported"),
            "{err}"
        );

        let dir = key_dir(&[("notes.txt", b"hello")]);
        let text = add_key_dir(dir.path(), &mut DecryptConfig::default())
            .unwrap_err()
            .to_string();
        assert!(text.contains("notes.txt"), "{text}");

        let missing = dir.path().join("missing");
        let err = add_key_dir(&missing, &mut DecryptConfig::default()).unwrap_err();
        assert!(matches!(err, DecoderError::KeyDir { .. }), "{err}");
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(
            add_key_dir(empty.path(), &mut DecryptConfig::default()).unwrap(),
            0
        );
    }
}
