//! TUF and Notary keys: parsing public keys of every supported type, Notary key ids, signature
//! verification (ECDSA raw r||s or DER, Ed25519, RSA-PSS / PKCS#1 v1.5), root-certificate checks,
//! and ECDSA P-256 signing keys stored as encrypted PKCS#8.

use std::fmt;

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private, Public};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Verifier};
use openssl::symm::Cipher;
use openssl::x509::X509;
use serde_json::json;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::canonical::canonical_json;
use super::error::{Result, TrustError};

const B64: base64::engine::general_purpose::GeneralPurpose =
    base64::engine::general_purpose::STANDARD;

/// Smallest RSA modulus accepted anywhere (Notary's `MinRSABitSize`).
pub const MIN_RSA_BITS: u32 = 2048;

/// A public key from root or delegation metadata, ready to verify signatures.
#[derive(Clone)]
pub struct PublicKey {
    keytype: String,
    scheme: Option<String>,
    pkey: Option<PKey<Public>>,
    /// The certificate chain for `*-x509` keys (leaf first).
    certs: Vec<X509>,
    unusable: Option<String>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("keytype", &self.keytype)
            .field("scheme", &self.scheme)
            .field("usable", &self.unusable.is_none())
            .finish()
    }
}

impl PublicKey {
    /// The key type string (`ecdsa`, `ecdsa-x509`, `ed25519`, `rsa`, ...).
    pub fn keytype(&self) -> &str {
        &self.keytype
    }

    /// The leaf certificate of an `*-x509` key.
    pub fn certificate(&self) -> Option<&X509> {
        self.certs.first()
    }

    /// DER SubjectPublicKeyInfo of the key (used to match private keys with listed keys).
    pub fn spki_der(&self) -> Option<Vec<u8>> {
        self.pkey.as_ref().and_then(|p| p.public_key_to_der().ok())
    }

    fn unusable(keytype: &str, scheme: Option<String>, why: String) -> Self {
        PublicKey {
            keytype: keytype.to_string(),
            scheme,
            pkey: None,
            certs: Vec::new(),
            unusable: Some(why),
        }
    }

    fn usable(keytype: &str, scheme: Option<String>, pkey: PKey<Public>, certs: Vec<X509>) -> Self {
        let unusable = match pkey.id() {
            Id::RSA if pkey.bits() < MIN_RSA_BITS => Some(format!(
                "RSA key of {} bits (< {MIN_RSA_BITS})",
                pkey.bits()
            )),
            _ => None,
        };
        PublicKey {
            keytype: keytype.to_string(),
            scheme,
            pkey: Some(pkey),
            certs,
            unusable,
        }
    }

    /// Parse a Notary key object: `keyval.public` is base64 of DER SPKI (`ecdsa`, `rsa`), raw
    /// 32 bytes (`ed25519`) or PEM certificate text (`ecdsa-x509`, `rsa-x509`). A key that cannot
    /// be used never verifies anything but does not make the metadata unreadable.
    pub fn from_notary(keytype: &str, public_b64: &str) -> Self {
        let raw = match B64.decode(public_b64) {
            Ok(r) => r,
            Err(e) => {
                return Self::unusable(keytype, None, format!("public key is not base64: {e}"))
            }
        };
        let parsed = match keytype {
            "ecdsa" | "rsa" => PKey::public_key_from_der(&raw)
                .map(|k| (k, Vec::new()))
                .map_err(|e| e.to_string()),
            "ed25519" => PKey::public_key_from_raw_bytes(&raw, Id::ED25519)
                .map(|k| (k, Vec::new()))
                .map_err(|e| e.to_string()),
            "ecdsa-x509" | "rsa-x509" => X509::stack_from_pem(&raw)
                .map_err(|e| e.to_string())
                .and_then(|certs| {
                    let leaf = certs.first().ok_or_else(|| "no certificate".to_string())?;
                    let k = leaf.public_key().map_err(|e| e.to_string())?;
                    Ok((k, certs))
                }),
            other => Err(format!("unsupported key type {other:?}")),
        };
        match parsed {
            Ok((pkey, certs)) => {
                let want = if keytype.starts_with("ecdsa") {
                    Id::EC
                } else if keytype.starts_with("rsa") {
                    Id::RSA
                } else {
                    Id::ED25519
                };
                if pkey.id() != want {
                    return Self::unusable(
                        keytype,
                        None,
                        format!("key material does not match key type {keytype}"),
                    );
                }
                Self::usable(keytype, None, pkey, certs)
            }
            Err(why) => Self::unusable(keytype, None, why),
        }
    }

    /// Parse a TUF 1.0 key: `ed25519` (hex), `ecdsa`/`ecdsa-sha2-nistp256|384` and `rsa` (PEM SPKI).
    pub fn from_tuf(keytype: &str, scheme: &str, public: &str) -> Self {
        let scheme_s = Some(scheme.to_string());
        let parsed = match (keytype, scheme) {
            ("ed25519", "ed25519") => {
                hex::decode(public)
                    .map_err(|e| e.to_string())
                    .and_then(|raw| {
                        PKey::public_key_from_raw_bytes(&raw, Id::ED25519)
                            .map_err(|e| e.to_string())
                    })
            }
            (
                "ecdsa" | "ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384",
                "ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384",
            )
            | ("rsa", "rsassa-pss-sha256" | "rsa-pkcs1v15-sha256") => {
                PKey::public_key_from_pem(public.as_bytes()).map_err(|e| e.to_string())
            }
            _ => Err(format!("unsupported key type/scheme {keytype}/{scheme}")),
        };
        match parsed {
            Ok(pkey) => {
                let want = match keytype {
                    "ed25519" => Id::ED25519,
                    "rsa" => Id::RSA,
                    _ => Id::EC,
                };
                if pkey.id() != want {
                    return Self::unusable(
                        keytype,
                        scheme_s,
                        "key material does not match key type".into(),
                    );
                }
                Self::usable(keytype, scheme_s, pkey, Vec::new())
            }
            Err(why) => Self::unusable(keytype, scheme_s, why),
        }
    }

    /// Verify a Notary signature (`method` = `ecdsa` raw r||s over SHA-256, `eddsa`, `rsapss`,
    /// `rsapkcs1v15`).
    pub fn verify_notary(&self, method: &str, msg: &[u8], sig: &[u8]) -> bool {
        let Some(pkey) = self.usable_pkey() else {
            return false;
        };
        let family_ok = match method {
            "ecdsa" => pkey.id() == Id::EC,
            "eddsa" => pkey.id() == Id::ED25519,
            "rsapss" | "rsapkcs1v15" | "pycrypto-pkcs#1 pss" => pkey.id() == Id::RSA,
            _ => false,
        };
        if !family_ok {
            return false;
        }
        match method {
            "ecdsa" => verify_ecdsa_raw(pkey, msg, sig),
            "eddsa" => verify_ed25519(pkey, msg, sig),
            "rsapkcs1v15" => verify_rsa(pkey, msg, sig, false),
            _ => verify_rsa(pkey, msg, sig, true),
        }
    }

    /// Verify a TUF 1.0 signature with the key's own scheme (ECDSA signatures are DER).
    pub fn verify_tuf(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Some(pkey) = self.usable_pkey() else {
            return false;
        };
        match self.scheme.as_deref() {
            Some("ed25519") => verify_ed25519(pkey, msg, sig),
            Some("ecdsa-sha2-nistp256") => {
                verify_ecdsa_der(pkey, MessageDigest::sha256(), msg, sig)
            }
            Some("ecdsa-sha2-nistp384") => {
                verify_ecdsa_der(pkey, MessageDigest::sha384(), msg, sig)
            }
            Some("rsassa-pss-sha256") => verify_rsa(pkey, msg, sig, true),
            Some("rsa-pkcs1v15-sha256") => verify_rsa(pkey, msg, sig, false),
            _ => false,
        }
    }

    fn usable_pkey(&self) -> Option<&PKey<Public>> {
        if self.unusable.is_some() {
            return None;
        }
        self.pkey.as_ref()
    }

    /// Notary's checks of a root-role certificate (trustpinning `validRootLeafCerts`): an x509
    /// key whose leaf is first and not a CA, CN equal to the GUN (or a `prefix*` wildcard),
    /// inside its validity window (one day of leeway on NotBefore), not SHA-1 signed, RSA >= 2048.
    pub fn check_root_certificate(
        &self,
        gun: &str,
        now: DateTime<Utc>,
        check_expiry: bool,
    ) -> std::result::Result<(), String> {
        if !self.keytype.ends_with("-x509") {
            return Err(format!(
                "root keys must be x509 certificates, this one is {:?}",
                self.keytype
            ));
        }
        if let Some(why) = &self.unusable {
            return Err(why.clone());
        }
        let leaf = self.certs.first().ok_or("no certificate")?;
        let is_ca = |c: &X509| -> bool {
            // OpenSSL's check_ca would need X509_check_ca; read basicConstraints via text form.
            c.to_text()
                .map(|t| String::from_utf8_lossy(&t).contains("CA:TRUE"))
                .unwrap_or(false)
        };
        if is_ca(leaf) {
            return Err("the first certificate of the bundle is a CA, not a leaf".into());
        }
        if self.certs.iter().skip(1).any(|c| !is_ca(c)) {
            return Err("more than one leaf certificate in the bundle".into());
        }
        let cn = leaf
            .subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .next()
            .and_then(|e| e.data().to_string().ok())
            .ok_or("certificate has no common name")?;
        let cn_ok = match cn.strip_suffix('*') {
            Some(prefix) => gun.starts_with(prefix),
            None => cn == gun,
        };
        if !cn_ok {
            return Err(format!(
                "certificate CN {cn:?} does not match the repository {gun:?}"
            ));
        }
        let sig_nid = leaf.signature_algorithm().object().nid();
        if [
            Nid::SHA1WITHRSAENCRYPTION,
            Nid::ECDSA_WITH_SHA1,
            Nid::DSAWITHSHA1,
            Nid::SHA1WITHRSA,
        ]
        .contains(&sig_nid)
        {
            return Err(format!("certificate with CN {cn} uses a SHA-1 signature"));
        }
        if leaf
            .not_before()
            .compare(leaf.not_after())
            .map(|o| o.is_gt())
            .unwrap_or(true)
        {
            return Err("certificate validity window is invalid".into());
        }
        if check_expiry {
            let tomorrow = asn1(now + Duration::days(1))?;
            let now_t = asn1(now)?;
            let not_yet = leaf
                .not_before()
                .compare(&tomorrow)
                .map(|o| o.is_gt())
                .unwrap_or(true);
            let expired = leaf
                .not_after()
                .compare(&now_t)
                .map(|o| o.is_lt())
                .unwrap_or(true);
            if not_yet || expired {
                return Err(format!(
                    "certificate with CN {cn} is not valid now (valid {} to {})",
                    leaf.not_before(),
                    leaf.not_after()
                ));
            }
        }
        Ok(())
    }
}

fn asn1(t: DateTime<Utc>) -> std::result::Result<Asn1Time, String> {
    Asn1Time::from_unix(t.timestamp()).map_err(|e| e.to_string())
}

/// Notary key id: lowercase hex SHA-256 of the canonical
/// `{"keytype":T,"keyval":{"private":null,"public":P}}`.
pub fn notary_key_id(keytype: &str, public_b64: &str) -> String {
    let v = json!({"keytype": keytype, "keyval": {"private": null, "public": public_b64}});
    let bytes = canonical_json(&v).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

fn verify_ecdsa_raw(pkey: &PKey<Public>, msg: &[u8], sig: &[u8]) -> bool {
    let Ok(ec) = pkey.ec_key() else { return false };
    let bytes = (ec.group().degree() as usize).div_ceil(8);
    // Notary's verifier: the signature is exactly r||s, each padded to the curve size.
    if sig.len() != 2 * bytes {
        return false;
    }
    let (Ok(r), Ok(s)) = (
        BigNum::from_slice(&sig[..bytes]),
        BigNum::from_slice(&sig[bytes..]),
    ) else {
        return false;
    };
    let Ok(esig) = EcdsaSig::from_private_components(r, s) else {
        return false;
    };
    esig.verify(&Sha256::digest(msg), &ec).unwrap_or(false)
}

fn verify_ecdsa_der(pkey: &PKey<Public>, md: MessageDigest, msg: &[u8], sig: &[u8]) -> bool {
    let Ok(mut v) = Verifier::new(md, pkey) else {
        return false;
    };
    v.verify_oneshot(sig, msg).unwrap_or(false)
}

fn verify_ed25519(pkey: &PKey<Public>, msg: &[u8], sig: &[u8]) -> bool {
    let Ok(mut v) = Verifier::new_without_digest(pkey) else {
        return false;
    };
    v.verify_oneshot(sig, msg).unwrap_or(false)
}

fn verify_rsa(pkey: &PKey<Public>, msg: &[u8], sig: &[u8], pss: bool) -> bool {
    let Ok(mut v) = Verifier::new(MessageDigest::sha256(), pkey) else {
        return false;
    };
    let setup = if pss {
        v.set_rsa_padding(Padding::PKCS1_PSS)
            .and_then(|_| v.set_rsa_mgf1_md(MessageDigest::sha256()))
            // -2 is RSA_PSS_SALTLEN_AUTO when verifying: any salt length (Notary signs with 32).
            .and_then(|_| v.set_rsa_pss_saltlen(RsaPssSaltlen::MAXIMUM_LENGTH))
    } else {
        v.set_rsa_padding(Padding::PKCS1)
    };
    setup.is_ok() && v.verify_oneshot(sig, msg).unwrap_or(false)
}

/// An ECDSA P-256 private key that signs Notary metadata (raw r||s signatures).
pub struct SigningKey {
    pkey: PKey<Private>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(ecdsa P-256, private)")
    }
}

impl SigningKey {
    /// A fresh ECDSA P-256 key.
    pub fn generate() -> Result<Self> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        let ec = EcKey::generate(&group)?;
        Ok(SigningKey {
            pkey: PKey::from_ec_key(ec)?,
        })
    }

    /// Read a PEM private key (PKCS#8, encrypted PKCS#8 or SEC1), decrypting with `passphrase`.
    /// Notary-style `role:`/`gun:` PEM headers are ignored.
    pub fn from_pem(pem: &[u8], passphrase: Option<&[u8]>) -> std::result::Result<Self, String> {
        let cleaned = strip_pem_headers(pem);
        let pkey = match passphrase {
            Some(p) => PKey::private_key_from_pem_passphrase(&cleaned, p),
            None => PKey::private_key_from_pem(&cleaned),
        }
        .map_err(|_| {
            "cannot read the private key (wrong passphrase, or not a PEM private key)".to_string()
        })?;
        let ec = pkey
            .ec_key()
            .map_err(|_| "only ECDSA P-256 signing keys are supported".to_string())?;
        if ec.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
            return Err("only ECDSA P-256 signing keys are supported".into());
        }
        Ok(SigningKey { pkey })
    }

    /// The key as PKCS#8 PEM encrypted with AES-256-CBC under `passphrase`.
    pub fn to_encrypted_pem(&self, passphrase: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        Ok(Zeroizing::new(
            self.pkey
                .private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), passphrase)?,
        ))
    }

    /// DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> Result<Vec<u8>> {
        Ok(self.pkey.public_key_to_der()?)
    }

    /// `PUBLIC KEY` PEM (what `docker trust key generate` writes as NAME.pub).
    pub fn public_pem(&self) -> Result<Vec<u8>> {
        Ok(self.pkey.public_key_to_pem()?)
    }

    /// The Notary key object `{"keytype":"ecdsa","keyval":{"private":null,"public":B64(SPKI)}}`
    /// and its key id.
    pub fn notary_public(&self) -> Result<(String, serde_json::Value)> {
        let public = B64.encode(self.spki_der()?);
        let id = notary_key_id("ecdsa", &public);
        Ok((
            id,
            json!({"keytype": "ecdsa", "keyval": {"private": null, "public": public}}),
        ))
    }

    /// Sign `msg`: ECDSA P-256 over SHA-256, raw r||s (64 bytes), as Notary does.
    pub fn sign_raw(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let ec = self.pkey.ec_key()?;
        let sig = EcdsaSig::sign(&Sha256::digest(msg), &ec)?;
        let mut out = sig.r().to_vec_padded(32)?;
        out.extend(sig.s().to_vec_padded(32)?);
        Ok(out)
    }

    /// A self-signed certificate for the key, as `notary init` makes for root keys: CN = `cn`,
    /// ECDSA with SHA-256, CA:FALSE, key usage digitalSignature+keyEncipherment, EKU codeSigning.
    pub fn self_signed_cert(
        &self,
        cn: &str,
        now: DateTime<Utc>,
        valid_for: Duration,
    ) -> Result<X509> {
        use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
        use openssl::x509::{X509Builder, X509NameBuilder};
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(Nid::COMMONNAME, cn)?;
        let name = name.build();
        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        let mut serial = BigNum::new()?;
        serial.rand(127, openssl::bn::MsbOption::MAYBE_ZERO, false)?;
        let serial = serial.to_asn1_integer()?;
        b.set_serial_number(&serial)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(&name)?;
        b.set_pubkey(&self.pkey)?;
        let not_before = Asn1Time::from_unix(now.timestamp())?;
        let not_after = Asn1Time::from_unix((now + valid_for).timestamp())?;
        b.set_not_before(&not_before)?;
        b.set_not_after(&not_after)?;
        b.append_extension(BasicConstraints::new().critical().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_encipherment()
                .build()?,
        )?;
        b.append_extension(ExtendedKeyUsage::new().code_signing().build()?)?;
        b.sign(&self.pkey, MessageDigest::sha256())?;
        Ok(b.build())
    }

    /// True if `key` (any Notary key type) holds this key's public half.
    pub fn matches(&self, key: &PublicKey) -> bool {
        match (self.spki_der(), key.spki_der()) {
            (Ok(a), Some(b)) => a == b,
            _ => false,
        }
    }
}

/// Drop `Name: value` header lines inside PEM blocks (Notary adds `role:` and `gun:`).
fn strip_pem_headers(pem: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(pem);
    let mut out = String::new();
    for line in text.lines() {
        let l = line.trim();
        let is_header = !l.starts_with("-----")
            && l.contains(": ")
            && !l.contains("Proc-Type")
            && !l.contains("DEK-Info");
        if !is_header {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.into_bytes()
}

/// Parse a public key given by a user (`PUBLIC KEY` PEM -> `ecdsa`/`rsa`/`ed25519`, or a
/// `CERTIFICATE` PEM -> `ecdsa-x509`/`rsa-x509`) into a Notary key object and its id.
pub fn notary_key_from_pem(pem: &[u8]) -> Result<(String, serde_json::Value, PublicKey)> {
    let text = String::from_utf8_lossy(pem);
    let (keytype, public) = if text.contains("BEGIN CERTIFICATE") {
        let cert = X509::from_pem(pem)
            .map_err(|e| TrustError::Key(format!("cannot read certificate: {e}")))?;
        let kt = match cert.public_key()?.id() {
            Id::EC => "ecdsa-x509",
            Id::RSA => "rsa-x509",
            _ => {
                return Err(TrustError::Key(
                    "certificate key must be ECDSA or RSA".into(),
                ))
            }
        };
        (kt, B64.encode(cert.to_pem()?))
    } else {
        let pkey = PKey::public_key_from_pem(pem)
            .map_err(|_| TrustError::Key("expected a PUBLIC KEY or CERTIFICATE PEM file".into()))?;
        match pkey.id() {
            Id::EC => ("ecdsa", B64.encode(pkey.public_key_to_der()?)),
            Id::RSA => ("rsa", B64.encode(pkey.public_key_to_der()?)),
            Id::ED25519 => ("ed25519", B64.encode(pkey.raw_public_key()?)),
            _ => return Err(TrustError::Key("unsupported public key algorithm".into())),
        }
    };
    let key = PublicKey::from_notary(keytype, &public);
    if let Some(why) = &key.unusable {
        return Err(TrustError::Key(why.clone()));
    }
    let id = notary_key_id(keytype, &public);
    Ok((
        id,
        json!({"keytype": keytype, "keyval": {"private": null, "public": public}}),
        key,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_raw_ecdsa() {
        let k = SigningKey::generate().unwrap();
        let (id, obj) = k.notary_public().unwrap();
        let public = obj["keyval"]["public"].as_str().unwrap();
        assert_eq!(id, notary_key_id("ecdsa", public));
        let pk = PublicKey::from_notary("ecdsa", public);
        let sig = k.sign_raw(b"hello").unwrap();
        assert_eq!(sig.len(), 64);
        assert!(pk.verify_notary("ecdsa", b"hello", &sig));
        assert!(!pk.verify_notary("ecdsa", b"hellO", &sig));
        assert!(!pk.verify_notary("eddsa", b"hello", &sig));
        assert!(k.matches(&pk));
    }

    #[test]
    fn encrypted_pem_roundtrip_and_wrong_passphrase() {
        let k = SigningKey::generate().unwrap();
        let pem = k.to_encrypted_pem(b"secret").unwrap();
        assert!(String::from_utf8_lossy(&pem).contains("ENCRYPTED PRIVATE KEY"));
        let back = SigningKey::from_pem(&pem, Some(b"secret")).unwrap();
        assert_eq!(back.spki_der().unwrap(), k.spki_der().unwrap());
        assert!(SigningKey::from_pem(&pem, Some(b"wrong")).is_err());
    }

    #[test]
    fn root_certificate_checks() {
        let k = SigningKey::generate().unwrap();
        let now = Utc::now();
        let cert = k
            .self_signed_cert("example.com/app", now, Duration::days(3650))
            .unwrap();
        let (_, _, pk) = notary_key_from_pem(&cert.to_pem().unwrap()).unwrap();
        assert_eq!(pk.keytype(), "ecdsa-x509");
        pk.check_root_certificate("example.com/app", now, true)
            .unwrap();
        let e = pk
            .check_root_certificate("example.com/other", now, true)
            .unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        let e = pk
            .check_root_certificate("example.com/app", now + Duration::days(4000), true)
            .unwrap_err();
        assert!(e.contains("not valid now"), "{e}");
        let wild = k
            .self_signed_cert("example.com/*", now, Duration::days(10))
            .unwrap();
        let (_, _, pk) = notary_key_from_pem(&wild.to_pem().unwrap()).unwrap();
        pk.check_root_certificate("example.com/app", now, true)
            .unwrap();
    }

    #[test]
    fn small_rsa_keys_never_verify() {
        let rsa = openssl::rsa::Rsa::generate(1024).unwrap();
        let der = PKey::from_rsa(rsa).unwrap().public_key_to_der().unwrap();
        let pk = PublicKey::from_notary("rsa", &B64.encode(der));
        assert!(pk.unusable.as_deref().unwrap().contains("1024"));
        assert!(!pk.verify_notary("rsapss", b"x", &[0u8; 128]));
    }

    #[test]
    fn rsa_pss_and_pkcs1_signatures_verify() {
        use openssl::sign::Signer;
        let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let public = B64.encode(rsa.public_key_to_der().unwrap());
        let pk = PublicKey::from_notary("rsa", &public);
        let mut s = Signer::new(MessageDigest::sha256(), &rsa).unwrap();
        s.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
        s.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH).unwrap();
        let pss = s.sign_oneshot_to_vec(b"msg").unwrap();
        assert!(pk.verify_notary("rsapss", b"msg", &pss));
        assert!(!pk.verify_notary("rsapss", b"other", &pss));
        assert!(!pk.verify_notary("ecdsa", b"msg", &pss));
        let mut s = Signer::new(MessageDigest::sha256(), &rsa).unwrap();
        let v15 = s.sign_oneshot_to_vec(b"msg").unwrap();
        assert!(pk.verify_notary("rsapkcs1v15", b"msg", &v15));
        assert!(!pk.verify_notary("rsapss", b"msg", &v15));
    }
}
