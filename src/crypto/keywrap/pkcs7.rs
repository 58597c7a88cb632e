//! PKCS#7 (CMS) key wrapping as ocicrypt does it (`keywrap/pkcs7/keywrapper_pkcs7.go` with
//! smallstep/go.mozilla.org `pkcs7.Encrypt`): a DER `ContentInfo` holding `EnvelopedData`, one
//! RSA PKCS#1 v1.5 key-transport `RecipientInfo` (issuer and serial) per certificate, and the
//! private options encrypted with AES-128-GCM.
//!
//! The GCM parameters are written exactly as the Go library writes them, so that skopeo reads
//! them: `10 13 30 11 84 0c <12-byte nonce> 02 01 10` (a primitive tag 0x10 wrapping a
//! SEQUENCE whose nonce is `[4] IMPLICIT`, tag length 16), and the GCM tag is appended to the
//! ciphertext inside `[0] { OCTET STRING }`. Reading also accepts the standard RFC 5084
//! `GCMParameters`, CMS `AuthEnvelopedData` (RFC 5083, what `openssl cms -encrypt -aes-128-gcm`
//! writes), AES-CBC and 3DES-CBC content, RSA-OAEP key transport, and BER lengths.

mod der;
#[cfg(test)]
mod tests;

use openssl::encrypt::Decrypter;
use openssl::hash::MessageDigest;
use openssl::pkey::Id;
use openssl::rsa::Padding;
use openssl::symm::Cipher;
use openssl::x509::X509Name;
use zeroize::Zeroizing;

use self::der::{Reader, Tlv};
use super::KeyWrapper;
use crate::crypto::config::{DecryptConfig, EncryptConfig};
use crate::crypto::error::{CryptoError, Result};
use crate::crypto::keys::{self, Certificate, PrivateKey};

/// The annotation whose values are these blobs (named in errors).
const ANNOTATION: &str = "org.opencontainers.image.enc.keys.pkcs7";

/// Most recipient infos one blob may list: each costs every key a private-key operation.
const MAX_RECIPIENTS: usize = 1024;

/// Object identifiers, as DER contents.
mod oid {
    pub const ENVELOPED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03];
    pub const AUTH_ENVELOPED_DATA: &[u8] = &[
        0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x17,
    ];
    pub const DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
    pub const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    pub const RSAES_OAEP: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x07];
    pub const MGF1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];
    pub const AES: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01];
    pub const DES_EDE3_CBC: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x03, 0x07];
    pub const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
    pub const SHA2: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02];
}

fn malformed(reason: impl Into<String>) -> CryptoError {
    CryptoError::MalformedAnnotation {
        annotation: ANNOTATION.into(),
        reason: reason.into(),
    }
}

fn from_der(e: der::Invalid) -> CryptoError {
    malformed(format!("not a valid CMS EnvelopedData: {}", e.0))
}

/// The `pkcs7` scheme.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pkcs7KeyWrapper;

/// The issuer (whole DER Name) and serial (DER INTEGER) of a certificate, byte for byte.
fn issuer_and_serial(cert: &Certificate) -> Result<(Vec<u8>, Vec<u8>)> {
    let der_bytes = cert.x509().to_der()?;
    let parse = || -> der::Parse<(Vec<u8>, Vec<u8>)> {
        let mut outer = Reader::new(&der_bytes);
        let cert_seq = outer.expect(der::SEQUENCE, "certificate")?;
        let mut c = Reader::new(cert_seq);
        let tbs = c.expect(der::SEQUENCE, "tbsCertificate")?;
        let mut t = Reader::new(tbs);
        if t.peek_tag() == Some(0xa0) {
            t.next()?;
        }
        let serial = t.next()?;
        if serial.tag != der::INTEGER {
            return Err(der::Invalid("certificate serial is not an INTEGER".into()));
        }
        t.expect(der::SEQUENCE, "signature algorithm")?;
        let issuer = t.next()?;
        Ok((issuer.raw.to_vec(), serial.raw.to_vec()))
    };
    parse().map_err(|e| CryptoError::Key {
        path: cert.source().into(),
        reason: format!("cannot read the certificate's issuer and serial: {}", e.0),
    })
}

/// Refuse certificates whose key PKCS#7 key transport cannot use.
pub fn check_recipient(cert: &Certificate) -> Result<()> {
    let key = cert.x509().public_key()?;
    if key.id() != Id::RSA {
        return Err(CryptoError::InvalidRecipient {
            spec: format!("pkcs7:{}", cert.source().display()),
            reason: format!(
                "pkcs7 recipients need an RSA certificate (ocicrypt wraps the key with RSA \
                 PKCS#1 v1.5); this one holds a {key_kind} key: use jwe:{} for it instead",
                cert.source().display(),
                key_kind = describe_key(&key)
            ),
        });
    }
    if key.bits() < keys::MIN_RSA_BITS {
        return Err(CryptoError::InvalidRecipient {
            spec: format!("pkcs7:{}", cert.source().display()),
            reason: format!(
                "RSA key of {} bits is too weak: recipients need at least {} bits",
                key.bits(),
                keys::MIN_RSA_BITS
            ),
        });
    }
    Ok(())
}

fn describe_key<T: openssl::pkey::HasPublic>(key: &openssl::pkey::PKeyRef<T>) -> String {
    match key.id() {
        Id::EC => "EC".into(),
        Id::ED25519 => "ed25519".into(),
        Id::DSA => "DSA".into(),
        other => format!("type {}", other.as_raw()),
    }
}

/// Encrypt `plaintext` for the certificates' RSA keys: DER `ContentInfo(EnvelopedData)` with
/// AES-128-GCM content in ocicrypt's parameter encoding.
pub fn encrypt(recipients: &[&Certificate], plaintext: &[u8]) -> Result<Vec<u8>> {
    if recipients.is_empty() {
        return Err(CryptoError::InvalidRecipient {
            spec: "pkcs7:".into(),
            reason: "no recipients to encrypt for: give at least one pkcs7:CERT_FILE".into(),
        });
    }
    let mut cek = Zeroizing::new([0u8; 16]);
    openssl::rand::rand_bytes(&mut cek[..])?;
    let mut nonce = [0u8; 12];
    openssl::rand::rand_bytes(&mut nonce)?;
    let mut tag = [0u8; 16];
    let mut sealed = openssl::symm::encrypt_aead(
        Cipher::aes_128_gcm(),
        &cek[..],
        Some(&nonce),
        &[],
        plaintext,
        &mut tag,
    )?;
    sealed.extend_from_slice(&tag);

    let mut infos = Vec::with_capacity(recipients.len());
    for cert in recipients {
        check_recipient(cert)?;
        let rsa = cert.x509().public_key()?.rsa()?;
        let mut wrapped = vec![0u8; rsa.size() as usize];
        let len = rsa.public_encrypt(&cek[..], &mut wrapped, Padding::PKCS1)?;
        wrapped.truncate(len);
        let (issuer, serial) = issuer_and_serial(cert)?;
        infos.push(der::constructed(
            der::SEQUENCE,
            &[
                &der::int(0),
                &der::constructed(der::SEQUENCE, &[&issuer, &serial]),
                &der::constructed(der::SEQUENCE, &[&der::tlv(der::OID, oid::RSA_ENCRYPTION)]),
                &der::tlv(der::OCTET_STRING, &wrapped),
            ],
        ));
    }
    // DER sorts the members of a SET OF by their encodings (Go's encoding/asn1 does too).
    infos.sort();
    let info_refs: Vec<&[u8]> = infos.iter().map(Vec::as_slice).collect();

    // go.mozilla.org/pkcs7 `aesGCMParameters{Nonce []byte "tag:4"; ICVLen int}` marshalled
    // into a RawValue with Tag 16 and no compound bit.
    let gcm_params = der::tlv(
        0x10,
        &der::constructed(der::SEQUENCE, &[&der::tlv(0x84, &nonce), &der::int(16)]),
    );
    let mut aes128_gcm = oid::AES.to_vec();
    aes128_gcm.push(0x06);
    let content_info = der::constructed(
        der::SEQUENCE,
        &[
            &der::tlv(der::OID, oid::DATA),
            &der::constructed(
                der::SEQUENCE,
                &[&der::tlv(der::OID, &aes128_gcm), &gcm_params],
            ),
            &der::tlv(0xa0, &der::tlv(der::OCTET_STRING, &sealed)),
        ],
    );
    let enveloped = der::constructed(
        der::SEQUENCE,
        &[
            &der::int(0),
            &der::constructed(der::SET, &info_refs),
            &content_info,
        ],
    );
    Ok(der::constructed(
        der::SEQUENCE,
        &[
            &der::tlv(der::OID, oid::ENVELOPED_DATA),
            &der::tlv(0xa0, &enveloped),
        ],
    ))
}

/// How a recipient is identified.
#[derive(Debug)]
enum Rid<'a> {
    IssuerSerial { issuer: &'a [u8], serial: &'a [u8] },
    SubjectKeyId(&'a [u8]),
}

/// A key-transport recipient info.
#[derive(Debug)]
struct KeyTrans<'a> {
    rid: Rid<'a>,
    algorithm: &'a [u8],
    params: Option<Tlv<'a>>,
    encrypted_key: &'a [u8],
}

/// The content cipher and its parameters.
enum ContentCipher {
    Gcm {
        key_len: usize,
        nonce: Vec<u8>,
        tag_len: usize,
    },
    Cbc {
        cipher: Cipher,
        key_len: usize,
        iv: Vec<u8>,
    },
}

/// A parsed `EnvelopedData` or `AuthEnvelopedData`.
struct Envelope<'a> {
    recipients: Vec<KeyTrans<'a>>,
    cipher: ContentCipher,
    content: Vec<u8>,
    /// The separate GCM tag of `AuthEnvelopedData`.
    mac: Option<Vec<u8>>,
}

fn parse(blob: &[u8]) -> Result<Envelope<'_>> {
    parse_envelope(blob).map_err(from_der)
}

fn parse_envelope(blob: &[u8]) -> der::Parse<Envelope<'_>> {
    let mut top = Reader::new(blob);
    let ci = top.expect(der::SEQUENCE, "ContentInfo")?;
    top.finish("ContentInfo")?;
    let mut ci = Reader::new(ci);
    let content_type = ci.expect(der::OID, "content type")?;
    let auth = match content_type {
        oid::ENVELOPED_DATA => false,
        oid::AUTH_ENVELOPED_DATA => true,
        other => {
            return Err(der::Invalid(format!(
                "content type {} is not envelopedData",
                hex::encode(other)
            )))
        }
    };
    let explicit = ci.expect(0xa0, "content")?;
    let mut ex = Reader::new(explicit);
    let env = ex.expect(der::SEQUENCE, "EnvelopedData")?;
    let mut env = Reader::new(env);
    env.expect(der::INTEGER, "version")?;
    if env.peek_tag() == Some(0xa0) {
        env.next()?; // originatorInfo
    }
    let set = env.next()?;
    if set.tag != der::SET {
        return Err(der::Invalid("recipientInfos is not a SET".into()));
    }
    let mut recipients = Vec::new();
    let mut infos = Reader::new(set.content);
    while !infos.is_empty() {
        let info = infos.next()?;
        if recipients.len() >= MAX_RECIPIENTS {
            return Err(der::Invalid(format!(
                "more than {MAX_RECIPIENTS} recipients"
            )));
        }
        // Only KeyTransRecipientInfo (a SEQUENCE) carries RSA-wrapped keys; key agreement,
        // KEK and password recipients are [1]..[4] and are skipped.
        if info.tag == der::SEQUENCE {
            recipients.push(key_trans(info.content)?);
        }
    }
    let eci = env.expect(der::SEQUENCE, "EncryptedContentInfo")?;
    let mut eci = Reader::new(eci);
    eci.expect(der::OID, "content type")?;
    let alg = eci.expect(der::SEQUENCE, "content encryption algorithm")?;
    let mut alg = Reader::new(alg);
    let alg_oid = alg.expect(der::OID, "content encryption algorithm")?;
    let params = if alg.is_empty() {
        None
    } else {
        Some(alg.next()?)
    };
    let cipher = content_cipher(alg_oid, params)?;
    let content = match eci.is_empty() {
        true => {
            return Err(der::Invalid(
                "the encrypted content is detached (absent)".into(),
            ))
        }
        false => {
            let c = eci.next()?;
            if c.number() != 0x80 {
                return Err(der::Invalid("encryptedContent is not [0]".into()));
            }
            der::octets(&c)?
        }
    };
    let mac = if auth {
        if env.peek_tag() == Some(0xa1) {
            return Err(der::Invalid(
                "authenticated attributes in AuthEnvelopedData are not supported".into(),
            ));
        }
        Some(env.expect(der::OCTET_STRING, "mac")?.to_vec())
    } else {
        None
    };
    Ok(Envelope {
        recipients,
        cipher,
        content,
        mac,
    })
}

fn key_trans(content: &[u8]) -> der::Parse<KeyTrans<'_>> {
    let mut r = Reader::new(content);
    r.expect(der::INTEGER, "recipient version")?;
    let rid = r.next()?;
    let rid = match rid.tag {
        der::SEQUENCE => {
            let mut ias = Reader::new(rid.content);
            let issuer = ias.next()?;
            let serial = ias.expect(der::INTEGER, "serial number")?;
            Rid::IssuerSerial {
                issuer: issuer.raw,
                serial: der::integer_magnitude(serial),
            }
        }
        0x80 => Rid::SubjectKeyId(rid.content),
        other => {
            return Err(der::Invalid(format!(
                "unknown recipient identifier tag 0x{other:02x}"
            )))
        }
    };
    let alg = r.expect(der::SEQUENCE, "key encryption algorithm")?;
    let mut alg = Reader::new(alg);
    let algorithm = alg.expect(der::OID, "key encryption algorithm")?;
    let params = if alg.is_empty() {
        None
    } else {
        Some(alg.next()?)
    };
    let encrypted_key = r.expect(der::OCTET_STRING, "encrypted key")?;
    Ok(KeyTrans {
        rid,
        algorithm,
        params,
        encrypted_key,
    })
}

/// The content cipher from its OID and parameters.
fn content_cipher(alg: &[u8], params: Option<Tlv<'_>>) -> der::Parse<ContentCipher> {
    let bad = |what: &str| der::Invalid(format!("malformed {what} parameters"));
    if let Some(&[last]) = alg.strip_prefix(oid::AES) {
        let (gcm, key_len) = match last {
            0x02 => (false, 16),
            0x16 => (false, 24),
            0x2a => (false, 32),
            0x06 => (true, 16),
            0x1a => (true, 24),
            0x2e => (true, 32),
            other => {
                return Err(der::Invalid(format!(
                    "unsupported AES mode (OID arc {other}); rrun reads AES-CBC and AES-GCM"
                )))
            }
        };
        let params = params.ok_or_else(|| bad("AES"))?;
        if !gcm {
            if params.tag != der::OCTET_STRING || params.content.len() != 16 {
                return Err(bad("AES-CBC"));
            }
            let cipher = match key_len {
                16 => Cipher::aes_128_cbc(),
                24 => Cipher::aes_192_cbc(),
                _ => Cipher::aes_256_cbc(),
            };
            return Ok(ContentCipher::Cbc {
                cipher,
                key_len,
                iv: params.content.to_vec(),
            });
        }
        // Standard GCMParameters: SEQUENCE { OCTET STRING nonce, INTEGER icvlen DEFAULT 12 }.
        // ocicrypt's: primitive tag 0x10 whose contents are that SEQUENCE with the nonce as
        // [4] IMPLICIT (see the module documentation).
        let seq = match params.tag {
            der::SEQUENCE => params.content,
            0x10 => Reader::new(params.content).expect(der::SEQUENCE, "GCM parameters")?,
            _ => return Err(bad("AES-GCM")),
        };
        let mut r = Reader::new(seq);
        let nonce = r.next()?;
        if !matches!(nonce.tag, der::OCTET_STRING | 0x84) || nonce.content.is_empty() {
            return Err(bad("AES-GCM nonce"));
        }
        let tag_len = if r.is_empty() {
            12
        } else {
            der::small_int(r.expect(der::INTEGER, "GCM ICV length")?, "GCM ICV length")? as usize
        };
        if !(12..=16).contains(&tag_len) {
            return Err(der::Invalid(format!(
                "unsupported GCM tag length {tag_len}"
            )));
        }
        return Ok(ContentCipher::Gcm {
            key_len,
            nonce: nonce.content.to_vec(),
            tag_len,
        });
    }
    if alg == oid::DES_EDE3_CBC {
        let params = params.ok_or_else(|| bad("3DES"))?;
        if params.tag != der::OCTET_STRING || params.content.len() != 8 {
            return Err(bad("3DES-CBC"));
        }
        return Ok(ContentCipher::Cbc {
            cipher: Cipher::des_ede3_cbc(),
            key_len: 24,
            iv: params.content.to_vec(),
        });
    }
    Err(der::Invalid(format!(
        "unsupported content encryption algorithm {}: rrun reads AES-GCM, AES-CBC and 3DES-CBC",
        hex::encode(alg)
    )))
}

impl ContentCipher {
    fn key_len(&self) -> usize {
        match self {
            Self::Gcm { key_len, .. } | Self::Cbc { key_len, .. } => *key_len,
        }
    }

    /// Decrypt; `None` when authentication or padding fails.
    fn open(&self, key: &[u8], content: &[u8], mac: Option<&[u8]>) -> Option<Zeroizing<Vec<u8>>> {
        if key.len() != self.key_len() {
            return None;
        }
        match self {
            Self::Gcm {
                key_len,
                nonce,
                tag_len,
            } => {
                let (ct, tag) = match mac {
                    Some(mac) => (content, mac),
                    None => content.split_at(content.len().checked_sub(*tag_len)?),
                };
                let cipher = match key_len {
                    16 => Cipher::aes_128_gcm(),
                    24 => Cipher::aes_192_gcm(),
                    _ => Cipher::aes_256_gcm(),
                };
                openssl::symm::decrypt_aead(cipher, key, Some(nonce), &[], ct, tag)
                    .ok()
                    .map(Zeroizing::new)
            }
            Self::Cbc { cipher, iv, .. } => openssl::symm::decrypt(*cipher, key, Some(iv), content)
                .ok()
                .map(Zeroizing::new),
        }
    }
}

impl KeyTrans<'_> {
    /// True when `cert` is the certificate this recipient info names.
    fn names(&self, cert: &Certificate) -> bool {
        match self.rid {
            Rid::IssuerSerial { issuer, serial } => {
                issuer_and_serial(cert).is_ok_and(|(cert_issuer, cert_serial)| {
                    let mut r = Reader::new(&cert_serial);
                    let content = r.expect(der::INTEGER, "serial").unwrap_or_default();
                    cert_issuer == issuer && der::integer_magnitude(content) == serial
                })
            }
            Rid::SubjectKeyId(ski) => cert
                .x509()
                .subject_key_id()
                .is_some_and(|id| id.as_slice() == ski),
        }
    }

    /// The content key, or `None` when `key` does not open this recipient info.
    fn unwrap_cek(&self, key: &PrivateKey) -> Option<Zeroizing<Vec<u8>>> {
        if key.pkey().id() != Id::RSA {
            return None;
        }
        let mut d = Decrypter::new(key.pkey()).ok()?;
        match self.algorithm {
            oid::RSA_ENCRYPTION => d.set_rsa_padding(Padding::PKCS1).ok()?,
            oid::RSAES_OAEP => {
                let (hash, mgf) = oaep_params(self.params.as_ref())?;
                d.set_rsa_padding(Padding::PKCS1_OAEP).ok()?;
                d.set_rsa_oaep_md(hash).ok()?;
                d.set_rsa_mgf1_md(mgf).ok()?;
            }
            _ => return None,
        }
        let len = d.decrypt_len(self.encrypted_key).ok()?;
        let mut out = Zeroizing::new(vec![0u8; len]);
        let n = d.decrypt(self.encrypted_key, &mut out).ok()?;
        out.truncate(n);
        Some(out)
    }

    /// `issuer` and serial, for layerinfo.
    fn describe(&self) -> String {
        match self.rid {
            Rid::IssuerSerial { issuer, serial } => {
                let name = X509Name::from_der(issuer)
                    .map(|n| keys::name_text(&n))
                    .unwrap_or_else(|_| "unknown issuer".into());
                format!("[pkcs7] {name} serial {}", hex::encode(serial))
            }
            Rid::SubjectKeyId(ski) => format!("[pkcs7] key id {}", hex::encode(ski)),
        }
    }
}

/// RSAES-OAEP-params (RFC 4055): hash and MGF1 hash, both SHA-1 by default.
fn oaep_params(params: Option<&Tlv<'_>>) -> Option<(MessageDigest, MessageDigest)> {
    let mut hash = MessageDigest::sha1();
    let mut mgf = MessageDigest::sha1();
    let Some(params) = params.filter(|p| p.tag == der::SEQUENCE) else {
        return Some((hash, mgf));
    };
    let mut r = Reader::new(params.content);
    while !r.is_empty() {
        let field = r.next().ok()?;
        let mut inner = Reader::new(field.content);
        match field.tag {
            0xa0 => hash = digest_of(inner.expect(der::SEQUENCE, "hash").ok()?)?,
            0xa1 => {
                let alg = inner.expect(der::SEQUENCE, "mgf").ok()?;
                let mut alg = Reader::new(alg);
                if alg.expect(der::OID, "mgf").ok()? != oid::MGF1 {
                    return None;
                }
                mgf = digest_of(alg.expect(der::SEQUENCE, "mgf hash").ok()?)?;
            }
            0xa2 => {}
            _ => return None,
        }
    }
    Some((hash, mgf))
}

fn digest_of(alg_id: &[u8]) -> Option<MessageDigest> {
    let oid = Reader::new(alg_id).expect(der::OID, "hash").ok()?;
    if oid == oid::SHA1 {
        return Some(MessageDigest::sha1());
    }
    match oid.strip_prefix(oid::SHA2)? {
        [1] => Some(MessageDigest::sha256()),
        [2] => Some(MessageDigest::sha384()),
        [3] => Some(MessageDigest::sha512()),
        [4] => Some(MessageDigest::sha224()),
        _ => None,
    }
}

/// Decrypt a PKCS#7 blob. A recipient info named by one of `certs` is opened with the private
/// key matching that certificate (ocicrypt's semantics); a recipient info no given certificate
/// names is tried with every RSA key (rrun also opens blobs without the certificate: the
/// content's GCM tag tells a wrong key from the right one).
pub fn decrypt(
    keys: &[&PrivateKey],
    certs: &[&Certificate],
    blob: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let env = parse(blob)?;
    for info in &env.recipients {
        let named: Vec<&&Certificate> = certs.iter().filter(|c| info.names(c)).collect();
        for key in keys {
            let matches_cert = named
                .iter()
                .any(|c| c.x509().public_key().is_ok_and(|p| p.public_eq(key.pkey())));
            if !named.is_empty() && !matches_cert {
                continue;
            }
            let Some(cek) = info.unwrap_cek(key) else {
                continue;
            };
            match env.cipher.open(&cek, &env.content, env.mac.as_deref()) {
                Some(plain) => return Ok(plain),
                // The certificate's own key opened the content key: the content was altered.
                None if matches_cert => {
                    return Err(malformed(
                        "the content failed authentication: the PKCS#7 blob was altered or \
                         truncated",
                    ))
                }
                None => continue,
            }
        }
    }
    let who: Vec<String> = env.recipients.iter().map(KeyTrans::describe).collect();
    Err(CryptoError::NoKeyForLayer {
        layer: format!("(pkcs7 blob for {})", who.join(", ")),
        schemes: if keys.is_empty() {
            "pkcs7 (no private key was given)".into()
        } else {
            "pkcs7 (none of the given RSA keys matches)".into()
        },
    })
}

/// The recipients of a blob, for layerinfo: `[pkcs7] <issuer> serial <hex>` per recipient.
pub fn recipient_names(blob: &[u8]) -> Result<Vec<String>> {
    Ok(parse(blob)?
        .recipients
        .iter()
        .map(KeyTrans::describe)
        .collect())
}

impl KeyWrapper for Pkcs7KeyWrapper {
    fn scheme(&self) -> &str {
        "pkcs7"
    }

    fn wrap_keys(&self, ec: &EncryptConfig, opts_data: &[u8]) -> Result<Option<Vec<u8>>> {
        let recipients = ec.pkcs7_recipients();
        if recipients.is_empty() {
            return Ok(None);
        }
        encrypt(&recipients, opts_data).map(Some)
    }

    fn unwrap_key(&self, dc: &DecryptConfig, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let keys: Vec<&PrivateKey> = dc.private_keys().iter().collect();
        let certs: Vec<&Certificate> = dc.certificates().iter().collect();
        decrypt(&keys, &certs, blob)
    }

    fn no_possible_keys(&self, dc: &DecryptConfig) -> bool {
        dc.private_keys().is_empty()
    }

    fn recipients(&self, blob: &[u8]) -> Vec<String> {
        recipient_names(blob).unwrap_or_else(|_| vec!["[pkcs7: malformed]".into()])
    }
}
