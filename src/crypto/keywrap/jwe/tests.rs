//! Tests of the JWE key wrapper: round trips, go-jose's output shape, hostile input, and JWEs
//! made by real skopeo (and by jwcrypto for the algorithms Debian's skopeo cannot write).

use std::sync::OnceLock;

use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use openssl::symm::{self, Cipher};
use serde_json::{json, Value};

use super::*;
use crate::crypto::config::Recipient;
use crate::crypto::options::PrivateOptions;

/// A private-options JSON as ocicrypt wraps it (193 bytes, like the real thing).
const OPTS: &[u8] = br#"{"symkey":"q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=","digest":"sha256:d627b8909a39a2624914f230d4b635ddac5e0adee1192419584a25a525a7cc42","cipheroptions":{"nonce":"AAECAwQFBgcICQoLDA0ODw=="}}"#;

/// Digest of the plain layer of the image the skopeo fixtures were made from.
const FIXTURE_LAYER_DIGEST: &str =
    "sha256:d627b8909a39a2624914f230d4b635ddac5e0adee1192419584a25a525a7cc42";

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/crypto/jwe");

// ---- keys ---------------------------------------------------------------------------------

/// RSA keys are slow to make: each size is made once per test run. `rsa(1)` is a second,
/// different 2048-bit key.
fn rsa(bits: u32) -> PKey<Private> {
    static R2048: OnceLock<PKey<Private>> = OnceLock::new();
    static R2048B: OnceLock<PKey<Private>> = OnceLock::new();
    static R4096: OnceLock<PKey<Private>> = OnceLock::new();
    let (cell, size) = match bits {
        2048 => (&R2048, 2048),
        4096 => (&R4096, 4096),
        _ => (&R2048B, 2048),
    };
    cell.get_or_init(|| PKey::from_rsa(Rsa::generate(size).unwrap()).unwrap())
        .clone()
}

fn ec(nid: Nid) -> PKey<Private> {
    let group = EcGroup::from_curve_name(nid).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn private(pkey: &PKey<Private>) -> PrivateKey {
    PrivateKey::new(pkey.clone(), "test-key.pem", None)
}

fn public(pkey: &PKey<Private>, alg: Option<&str>) -> PublicKey {
    let der = pkey.public_key_to_der().unwrap();
    PublicKey::new(
        PKey::public_key_from_der(&der).unwrap(),
        "test-pub.pem",
        alg.map(String::from),
    )
}

fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{FIXTURES}/{path}");
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn fixture_key(path: &str) -> PrivateKey {
    let pkey = PKey::private_key_from_pem(&fixture(path)).unwrap();
    PrivateKey::new(pkey, path, None)
}

// ---- JSON helpers -------------------------------------------------------------------------

fn obj(jwe: &[u8]) -> Map<String, Value> {
    serde_json::from_slice::<Value>(jwe)
        .unwrap()
        .as_object()
        .unwrap()
        .clone()
}

fn keys_of(m: &Map<String, Value>) -> Vec<&str> {
    m.keys().map(String::as_str).collect()
}

fn protected_header(jwe: &[u8]) -> Map<String, Value> {
    let o = obj(jwe);
    let b = b64url_decode(o["protected"].as_str().unwrap()).unwrap();
    serde_json::from_slice(&b).unwrap()
}

/// The structure of a JWE with the random parts replaced by their decoded lengths, members in
/// document order, the protected header decoded.
fn shape(v: &Value, key: &str) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let s = if k == "protected" {
                        let b = b64url_decode(v.as_str().unwrap()).unwrap();
                        shape(&serde_json::from_slice(&b).unwrap(), k)
                    } else {
                        shape(v, k)
                    };
                    (k.clone(), s)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| shape(v, key)).collect()),
        Value::String(s) if ["alg", "enc", "kty", "crv"].contains(&key) => Value::from(s.clone()),
        Value::String(s) => {
            assert!(!s.ends_with('='), "{key} is padded: {s}");
            let len = b64url_decode(s)
                .unwrap_or_else(|| panic!("{key} not base64url"))
                .len();
            Value::from(format!("{len} bytes"))
        }
        other => other.clone(),
    }
}

fn shape_string(jwe: &[u8]) -> String {
    serde_json::to_string(&shape(&serde_json::from_slice(jwe).unwrap(), "")).unwrap()
}

fn edit(jwe: &[u8], f: impl FnOnce(&mut Map<String, Value>)) -> Vec<u8> {
    let mut o = obj(jwe);
    f(&mut o);
    serde_json::to_vec(&o).unwrap()
}

/// Replace the protected header (the content then fails authentication, unless checked first).
fn with_protected(jwe: &[u8], header: Value) -> Vec<u8> {
    edit(jwe, |o| {
        o["protected"] = Value::from(b64url(&serde_json::to_vec(&header).unwrap()));
    })
}

fn open_with(keys: &[&PKey<Private>], jwe: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let keys: Vec<PrivateKey> = keys.iter().map(|k| private(k)).collect();
    let refs: Vec<&PrivateKey> = keys.iter().collect();
    decrypt(&refs, jwe)
}

fn assert_no_key(r: Result<Zeroizing<Vec<u8>>>) {
    match r {
        Err(CryptoError::Jwe(m)) => assert!(m.contains("no key opens"), "{m}"),
        other => panic!(
            "expected Jwe(no key opens), got {:?}",
            other.map(|_| "plaintext")
        ),
    }
}

fn assert_malformed(r: Result<Zeroizing<Vec<u8>>>, needle: &str) {
    match r {
        Err(CryptoError::MalformedAnnotation { annotation, reason }) => {
            assert_eq!(annotation, ANNOTATION);
            assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
        }
        other => panic!(
            "expected MalformedAnnotation, got {:?}",
            other.map(|_| "plaintext")
        ),
    }
}

/// Build a flattened JWE by hand for any `enc`, RSA-OAEP-256 key transport, optional `aad`;
/// `alg_in_header` puts `alg` in the unprotected per-recipient `header` member.
fn hand_jwe(
    enc: &str,
    key: &PKey<Private>,
    plaintext: &[u8],
    aad: Option<&[u8]>,
    alg_in_header: bool,
) -> Vec<u8> {
    let key_len = ContentEnc::parse(enc).unwrap().key_len();
    let mut cek = vec![0u8; key_len];
    openssl::rand::rand_bytes(&mut cek).unwrap();
    let pubkey = public(key, None);
    let ek = key_alg::rsa_oaep_encrypt(pubkey.pkey(), KeyAlg::RsaOaep256, &cek).unwrap();
    let protected = if alg_in_header {
        json!({ "enc": enc })
    } else {
        json!({ "alg": "RSA-OAEP-256", "enc": enc })
    };
    let protected = b64url(&serde_json::to_vec(&protected).unwrap());
    let mut auth = protected.clone().into_bytes();
    if let Some(aad) = aad {
        auth.push(b'.');
        auth.extend_from_slice(b64url(aad).as_bytes());
    }
    let (iv, ciphertext, tag) = if enc.contains("CBC") {
        let half = key_len / 2;
        let (cipher, md) = match half {
            16 => (Cipher::aes_128_cbc(), MessageDigest::sha256()),
            24 => (Cipher::aes_192_cbc(), MessageDigest::sha384()),
            _ => (Cipher::aes_256_cbc(), MessageDigest::sha512()),
        };
        let mut iv = vec![0u8; 16];
        openssl::rand::rand_bytes(&mut iv).unwrap();
        let ct = symm::encrypt(cipher, &cek[half..], Some(&iv), plaintext).unwrap();
        let mac_key = PKey::hmac(&cek[..half]).unwrap();
        let mut signer = Signer::new(md, &mac_key).unwrap();
        for part in [
            &auth[..],
            &iv,
            &ct,
            &((auth.len() as u64) * 8).to_be_bytes(),
        ] {
            signer.update(part).unwrap();
        }
        let tag = signer.sign_to_vec().unwrap()[..half].to_vec();
        (iv, ct, tag)
    } else {
        let cipher = match key_len {
            16 => Cipher::aes_128_gcm(),
            24 => Cipher::aes_192_gcm(),
            _ => Cipher::aes_256_gcm(),
        };
        let mut iv = vec![0u8; 12];
        openssl::rand::rand_bytes(&mut iv).unwrap();
        let mut tag = vec![0u8; 16];
        let ct = symm::encrypt_aead(cipher, &cek, Some(&iv), &auth, plaintext, &mut tag).unwrap();
        (iv, ct, tag)
    };
    let mut out = json!({
        "protected": protected,
        "encrypted_key": b64url(&ek),
        "iv": b64url(&iv),
        "ciphertext": b64url(&ciphertext),
        "tag": b64url(&tag),
    });
    if let Some(aad) = aad {
        out["aad"] = Value::from(b64url(aad));
    }
    if alg_in_header {
        out["header"] = json!({ "alg": "RSA-OAEP-256" });
    }
    serde_json::to_vec(&out).unwrap()
}

// ---- round trips --------------------------------------------------------------------------

#[test]
fn rsa_round_trip_2048_and_4096() {
    for bits in [2048, 4096] {
        let k = rsa(bits);
        let jwe = encrypt(&[&public(&k, None)], OPTS).unwrap();
        assert_eq!(protected_header(&jwe)["alg"], "RSA-OAEP");
        let ek = b64url_decode(obj(&jwe)["encrypted_key"].as_str().unwrap()).unwrap();
        assert_eq!(ek.len() * 8, bits as usize);
        assert_eq!(open_with(&[&k], &jwe).unwrap().as_slice(), OPTS);
    }
}

#[test]
fn ec_round_trip_every_curve() {
    for (nid, crv, size) in [
        (Nid::X9_62_PRIME256V1, "P-256", 32),
        (Nid::SECP384R1, "P-384", 48),
        (Nid::SECP521R1, "P-521", 66),
    ] {
        let k = ec(nid);
        let jwe = encrypt(&[&public(&k, None)], OPTS).unwrap();
        let h = protected_header(&jwe);
        assert_eq!(h["alg"], "ECDH-ES+A256KW");
        assert_eq!(h["epk"]["crv"], crv);
        for c in ["x", "y"] {
            let coord = b64url_decode(h["epk"][c].as_str().unwrap()).unwrap();
            assert_eq!(coord.len(), size, "{crv} {c} is padded to the curve size");
        }
        assert_eq!(open_with(&[&k], &jwe).unwrap().as_slice(), OPTS);
    }
}

#[test]
fn jwk_alg_overrides_are_honoured() {
    let cases = [
        (rsa(2048), "RSA-OAEP"),
        (rsa(2048), "RSA-OAEP-256"),
        (ec(Nid::X9_62_PRIME256V1), "ECDH-ES+A128KW"),
        (ec(Nid::SECP384R1), "ECDH-ES+A192KW"),
        (ec(Nid::SECP521R1), "ECDH-ES+A256KW"),
        (ec(Nid::SECP521R1), "ECDH-ES+A128KW"),
    ];
    for (k, alg) in &cases {
        let jwe = encrypt(&[&public(k, Some(alg))], OPTS).unwrap();
        assert_eq!(protected_header(&jwe)["alg"], *alg);
        assert_eq!(open_with(&[k], &jwe).unwrap().as_slice(), OPTS, "{alg}");
    }
    // All of them at once, in the general form.
    let pubs: Vec<PublicKey> = cases.iter().map(|(k, a)| public(k, Some(a))).collect();
    let jwe = encrypt(&pubs.iter().collect::<Vec<_>>(), OPTS).unwrap();
    let algs: Vec<Value> = obj(&jwe)["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["header"]["alg"].clone())
        .collect();
    let want: Vec<Value> = cases.iter().map(|(_, a)| Value::from(*a)).collect();
    assert_eq!(algs, want);
    for (k, alg) in &cases {
        assert_eq!(open_with(&[k], &jwe).unwrap().as_slice(), OPTS, "{alg}");
    }
}

#[test]
fn bad_recipients_are_refused() {
    let refused = |key: PublicKey, needle: &str| match encrypt(&[&key], OPTS) {
        Err(CryptoError::InvalidRecipient { spec, reason }) => {
            assert_eq!(spec, "jwe:test-pub.pem");
            assert!(reason.contains(needle), "{reason}");
        }
        other => panic!("expected InvalidRecipient, got {other:?}"),
    };
    refused(
        public(&rsa(2048), Some("ECDH-ES+A128KW")),
        "does not fit an RSA key",
    );
    refused(
        public(&ec(Nid::SECP384R1), Some("RSA-OAEP")),
        "does not fit an EC key",
    );
    refused(
        public(&rsa(2048), Some("RSA1_5")),
        "unsupported JWE key algorithm",
    );
    refused(public(&ec(Nid::SECP256K1), None), "P-256, P-384, P-521");
    assert!(matches!(encrypt(&[], OPTS), Err(CryptoError::Jwe(_))));
}

#[test]
fn three_recipients_each_key_opens_the_general_form() {
    let keys = [rsa(2048), ec(Nid::X9_62_PRIME256V1), ec(Nid::SECP384R1)];
    let pubs: Vec<PublicKey> = keys.iter().map(|k| public(k, None)).collect();
    let jwe = encrypt(&pubs.iter().collect::<Vec<_>>(), OPTS).unwrap();
    for k in &keys {
        assert_eq!(open_with(&[k], &jwe).unwrap().as_slice(), OPTS);
    }
    // A wrong key first does not hide a right one later.
    assert_eq!(
        open_with(&[&rsa(1), &keys[2]], &jwe).unwrap().as_slice(),
        OPTS
    );
    // Readers that drop go-jose's stray top-level encrypted_key still work.
    let trimmed = edit(&jwe, |o| {
        o.remove("encrypted_key");
    });
    assert_eq!(open_with(&[&keys[1]], &trimmed).unwrap().as_slice(), OPTS);
}

// ---- output shape -------------------------------------------------------------------------

#[test]
fn flattened_shape_matches_go_jose() {
    let jwe = encrypt(&[&public(&rsa(2048), None)], OPTS).unwrap();
    let o = obj(&jwe);
    assert_eq!(
        keys_of(&o),
        ["protected", "encrypted_key", "iv", "ciphertext", "tag"]
    );
    let h = protected_header(&jwe);
    assert_eq!(keys_of(&h), ["alg", "enc"]);
    assert_eq!(
        b64url_decode(o["protected"].as_str().unwrap()).unwrap(),
        br#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#
    );
    let iv = b64url_decode(o["iv"].as_str().unwrap()).unwrap();
    let tag = b64url_decode(o["tag"].as_str().unwrap()).unwrap();
    assert_eq!((iv.len(), tag.len()), (12, 16));

    let jwe = encrypt(&[&public(&ec(Nid::X9_62_PRIME256V1), None)], OPTS).unwrap();
    let h = protected_header(&jwe);
    assert_eq!(keys_of(&h), ["alg", "enc", "epk"]);
    assert_eq!(
        keys_of(h["epk"].as_object().unwrap()),
        ["kty", "crv", "x", "y"]
    );
    // Compact JSON, as Go's encoding/json writes it.
    assert!(!jwe.contains(&b' ') && !jwe.contains(&b'\n'));
}

#[test]
fn general_shape_matches_go_jose() {
    let keys = [rsa(2048), ec(Nid::X9_62_PRIME256V1)];
    let pubs: Vec<PublicKey> = keys.iter().map(|k| public(k, None)).collect();
    let jwe = encrypt(&pubs.iter().collect::<Vec<_>>(), OPTS).unwrap();
    let o = obj(&jwe);
    assert_eq!(
        keys_of(&o),
        [
            "protected",
            "recipients",
            "encrypted_key",
            "iv",
            "ciphertext",
            "tag"
        ]
    );
    assert_eq!(o["protected"], "eyJlbmMiOiJBMjU2R0NNIn0"); // {"enc":"A256GCM"}
    let r = o["recipients"].as_array().unwrap();
    assert_eq!(
        keys_of(r[0].as_object().unwrap()),
        ["header", "encrypted_key"]
    );
    assert_eq!(r[0]["header"], json!({"alg": "RSA-OAEP"}));
    assert_eq!(keys_of(r[1]["header"].as_object().unwrap()), ["alg", "epk"]);
    assert_eq!(o["encrypted_key"], r[0]["encrypted_key"]);
}

/// Our output has exactly the structure skopeo's has: same members in the same order, same
/// headers, same lengths, for the same recipients and plaintext.
#[test]
fn shape_equals_skopeo_output() {
    for dir in ["skopeo-rsa2048", "skopeo-ec-p256", "skopeo-ec-p521"] {
        let theirs = fixture(&format!("{dir}/keys.jwe.json"));
        let key = fixture_key(&format!("{dir}/key.pem"));
        let plaintext = decrypt(&[&key], &theirs).unwrap();
        let ours = encrypt(&[&public(key.pkey(), None)], &plaintext).unwrap();
        assert_eq!(shape_string(&ours), shape_string(&theirs), "{dir}");
    }
    let dir = "skopeo-multi-3";
    let theirs = fixture(&format!("{dir}/keys.jwe.json"));
    let keys: Vec<PrivateKey> = ["rsa2048", "ec-p256", "ec-p521"]
        .iter()
        .map(|k| fixture_key(&format!("{dir}/{k}.key.pem")))
        .collect();
    let plaintext = decrypt(&[&keys[0]], &theirs).unwrap();
    let pubs: Vec<PublicKey> = keys.iter().map(|k| public(k.pkey(), None)).collect();
    let ours = encrypt(&pubs.iter().collect::<Vec<_>>(), &plaintext).unwrap();
    assert_eq!(shape_string(&ours), shape_string(&theirs), "{dir}");
}

// ---- decryption failures ------------------------------------------------------------------

#[test]
fn wrong_key_fails_with_jwe_error() {
    let jwe = encrypt(&[&public(&rsa(2048), None)], OPTS).unwrap();
    assert_no_key(open_with(&[&rsa(1)], &jwe));
    assert_no_key(open_with(&[&ec(Nid::X9_62_PRIME256V1)], &jwe));
    assert_no_key(open_with(&[], &jwe));

    let jwe = encrypt(&[&public(&ec(Nid::X9_62_PRIME256V1), None)], OPTS).unwrap();
    assert_no_key(open_with(&[&ec(Nid::X9_62_PRIME256V1)], &jwe));
    assert_no_key(open_with(&[&ec(Nid::SECP384R1), &rsa(2048)], &jwe));
    match open_with(&[&rsa(2048)], &jwe) {
        Err(CryptoError::Jwe(m)) => assert!(m.contains("ECDH-ES+A256KW (P-256)"), "{m}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn epk_off_the_curve_is_refused() {
    let k = ec(Nid::X9_62_PRIME256V1);
    let pubs = [public(&rsa(2048), None), public(&k, None)];
    let jwe = encrypt(&pubs.iter().collect::<Vec<_>>(), OPTS).unwrap();
    // The per-recipient header is not authenticated: move the point off the curve.
    let bad = edit(&jwe, |o| {
        let epk = &mut o["recipients"][1]["header"]["epk"];
        let mut y = b64url_decode(epk["y"].as_str().unwrap()).unwrap();
        y[31] ^= 1;
        epk["y"] = Value::from(b64url(&y));
    });
    assert_no_key(open_with(&[&k], &bad));
    // A P-384 point offered to a P-256 key.
    let other = ec(Nid::SECP384R1);
    let bad = edit(&jwe, |o| {
        o["recipients"][1]["header"]["epk"] = json!({"kty": "EC", "crv": "P-256",
            "x": b64url(&[1u8; 48]), "y": b64url(&[2u8; 48])});
    });
    assert_no_key(open_with(&[&k, &other], &bad));
}

#[test]
fn tampering_is_detected() {
    let k = rsa(2048);
    let jwe = encrypt(&[&public(&k, None)], OPTS).unwrap();
    let flip = |member: &'static str| {
        edit(&jwe, |o| {
            let mut b = b64url_decode(o[member].as_str().unwrap()).unwrap();
            b[0] ^= 0x80;
            o[member] = Value::from(b64url(&b));
        })
    };
    for member in ["tag", "ciphertext", "iv"] {
        match open_with(&[&k], &flip(member)) {
            Err(CryptoError::Jwe(m)) => assert!(m.contains("altered"), "{member}: {m}"),
            other => panic!("{member}: {:?}", other.map(|_| ())),
        }
    }
    assert_no_key(open_with(&[&k], &flip("encrypted_key")));
    // The protected header is authenticated: changing it breaks the content tag.
    let mut h = protected_header(&jwe);
    h.insert("kid".into(), Value::from("x"));
    let changed = with_protected(&jwe, Value::Object(h));
    assert!(matches!(
        open_with(&[&k], &changed),
        Err(CryptoError::Jwe(_))
    ));
}

#[test]
fn malformed_input_fails_cleanly() {
    let k = rsa(2048);
    let jwe = encrypt(&[&public(&k, None)], OPTS).unwrap();
    let open = |bytes: &[u8]| open_with(&[&k], bytes);

    assert_malformed(open(b"not json"), "not a JWE");
    assert_malformed(open(b"{\"protected\": "), "not a JWE JSON serialization");
    assert_malformed(open(b"[1,2]"), "expected a JSON object");
    assert_malformed(open(&[0xff, 0xfe]), "UTF-8");
    assert_malformed(open(b""), "not a JWE");
    for member in ["ciphertext", "iv", "tag", "encrypted_key"] {
        let cut = edit(&jwe, |o| {
            o.remove(member);
        });
        assert_malformed(open(&cut), member);
    }
    let missing_protected = edit(&jwe, |o| {
        o.remove("protected");
    });
    assert_malformed(open(&missing_protected), "protected header is missing");
    let bad_b64 = edit(&jwe, |o| o["iv"] = Value::from("!!not base64!!"));
    assert_malformed(open(&bad_b64), "\"iv\" is not base64url");
    let std_b64 = edit(&jwe, |o| o["ciphertext"] = Value::from("ab+/"));
    assert_malformed(open(&std_b64), "\"ciphertext\" is not base64url");
    let not_string = edit(&jwe, |o| o["tag"] = json!(5));
    assert_malformed(open(&not_string), "\"tag\" is not a string");
    let bad_header = edit(&jwe, |o| o["protected"] = Value::from(b64url(b"[1]")));
    assert_malformed(open(&bad_header), "protected header is not a JSON object");
    let bad_recipients = edit(&jwe, |o| {
        o.insert("recipients".into(), json!({"a": 1}));
    });
    assert_malformed(open(&bad_recipients), "\"recipients\" is not an array");
    let bad_entry = edit(&jwe, |o| {
        o.insert("recipients".into(), json!([1, 2]));
    });
    assert_malformed(open(&bad_entry), "recipient 0 is not an object");
    assert_malformed(open(b"a.b.c"), "five dot-separated");
    let entry = json!({"header": {"alg": "RSA-OAEP"}, "encrypted_key": "AAAA"});
    let crowd = edit(&jwe, |o| {
        o.insert("recipients".into(), Value::Array(vec![entry; 1025]));
    });
    assert_malformed(open(&crowd), "1025 recipients; rrun reads at most 1024");
}

#[test]
fn unsupported_headers_are_refused() {
    let k = rsa(2048);
    let jwe = encrypt(&[&public(&k, None)], OPTS).unwrap();
    let open = |h: Value| open_with(&[&k], &with_protected(&jwe, h));
    assert_malformed(
        open(json!({"alg": "RSA-OAEP", "enc": "A256GCM", "zip": "DEF"})),
        "zip",
    );
    assert_malformed(
        open(json!({"alg": "RSA-OAEP", "enc": "A256GCM", "crit": ["exp"], "exp": 1})),
        "unsupported critical header parameters [\"exp\"]",
    );
    assert_malformed(
        open(json!({"alg": "RSA-OAEP", "enc": "A256GCM", "crit": "exp"})),
        "invalid \"crit\"",
    );
    assert_malformed(
        open(json!({"alg": "RSA1_5", "enc": "A256GCM"})),
        "unsupported key algorithm \"RSA1_5\"",
    );
    assert_malformed(
        open(json!({"alg": "dir", "enc": "A256GCM"})),
        "unsupported key algorithm",
    );
    assert_malformed(
        open(json!({"alg": "RSA-OAEP", "enc": "A128KW"})),
        "unsupported content encryption \"A128KW\"",
    );
    assert_malformed(open(json!({"alg": "RSA-OAEP"})), "missing header \"enc\"");
    assert_malformed(open(json!({"enc": "A256GCM"})), "missing header \"alg\"");
    // Compression hiding in an unprotected header is refused too.
    let zipped = edit(&jwe, |o| {
        o.insert("unprotected".into(), json!({"zip": "DEF"}));
    });
    assert_malformed(open_with(&[&k], &zipped), "zip");
    let zipped = edit(&jwe, |o| {
        o.insert("header".into(), json!({"zip": "DEF"}));
    });
    assert_malformed(open_with(&[&k], &zipped), "zip");
}

// ---- what go-jose reads besides what it writes ---------------------------------------------

#[test]
fn every_content_encryption_go_jose_reads() {
    let k = rsa(2048);
    for enc in [
        "A128CBC-HS256",
        "A192CBC-HS384",
        "A256CBC-HS512",
        "A128GCM",
        "A192GCM",
        "A256GCM",
    ] {
        let jwe = hand_jwe(enc, &k, OPTS, None, false);
        assert_eq!(open_with(&[&k], &jwe).unwrap().as_slice(), OPTS, "{enc}");
        // The CBC tag covers the AAD: another header value must fail.
        let mut h = protected_header(&jwe);
        h.insert("x".into(), Value::from(1));
        assert!(open_with(&[&k], &with_protected(&jwe, Value::Object(h))).is_err());
    }
}

#[test]
fn cbc_hs_tag_tampering_is_detected() {
    let k = rsa(2048);
    for enc in ["A128CBC-HS256", "A256CBC-HS512"] {
        let jwe = hand_jwe(enc, &k, OPTS, None, false);
        let short = edit(&jwe, |o| {
            let t = b64url_decode(o["tag"].as_str().unwrap()).unwrap();
            o["tag"] = Value::from(b64url(&t[..8]));
        });
        assert!(
            matches!(open_with(&[&k], &short), Err(CryptoError::Jwe(_))),
            "{enc}"
        );
        let flipped = edit(&jwe, |o| {
            let mut t = b64url_decode(o["tag"].as_str().unwrap()).unwrap();
            let last = t.len() - 1;
            t[last] ^= 1;
            o["tag"] = Value::from(b64url(&t));
        });
        assert!(
            matches!(open_with(&[&k], &flipped), Err(CryptoError::Jwe(_))),
            "{enc}"
        );
    }
}

#[test]
fn aad_member_and_unprotected_alg_are_honoured() {
    let k = rsa(2048);
    let jwe = hand_jwe("A256GCM", &k, OPTS, Some(b"extra"), true);
    assert_eq!(open_with(&[&k], &jwe).unwrap().as_slice(), OPTS);
    let other_aad = edit(&jwe, |o| o["aad"] = Value::from(b64url(b"EXTRA")));
    assert!(matches!(
        open_with(&[&k], &other_aad),
        Err(CryptoError::Jwe(_))
    ));
    let no_aad = edit(&jwe, |o| {
        o.remove("aad");
    });
    assert!(matches!(
        open_with(&[&k], &no_aad),
        Err(CryptoError::Jwe(_))
    ));
}

#[test]
fn compact_serialization_and_padding_are_accepted() {
    let k = ec(Nid::SECP384R1);
    let jwe = encrypt(&[&public(&k, None)], OPTS).unwrap();
    let o = obj(&jwe);
    let part = |m: &str| o[m].as_str().unwrap().to_owned();
    let compact = [
        part("protected"),
        part("encrypted_key"),
        part("iv"),
        part("ciphertext"),
        part("tag"),
    ]
    .join(".");
    assert_eq!(
        open_with(&[&k], compact.as_bytes()).unwrap().as_slice(),
        OPTS
    );
    let padded = edit(&jwe, |o| {
        let s = format!("{}==", o["tag"].as_str().unwrap());
        o["tag"] = Value::from(s);
    });
    assert_eq!(open_with(&[&k], &padded).unwrap().as_slice(), OPTS);
    let spaced = format!("\n  {}\n", String::from_utf8(jwe.clone()).unwrap());
    assert_eq!(
        open_with(&[&k], spaced.as_bytes()).unwrap().as_slice(),
        OPTS
    );
}

#[test]
fn key_wrapper_trait_round_trip() {
    let k = ec(Nid::SECP521R1);
    let ec_cfg = EncryptConfig::new(
        vec![Recipient::Jwe(public(&k, None))],
        DecryptConfig::default(),
    );
    let w = JweKeyWrapper;
    assert_eq!(w.annotation_id(), ANNOTATION);
    let blob = w.wrap_keys(&ec_cfg, OPTS).unwrap().unwrap();
    let dc = DecryptConfig::new(vec![private(&k)]);
    assert!(!w.no_possible_keys(&dc));
    assert!(w.no_possible_keys(&DecryptConfig::default()));
    assert_eq!(w.unwrap_key(&dc, &blob).unwrap().as_slice(), OPTS);
    assert_eq!(w.recipients(&blob), vec!["[jwe]".to_string()]);
    let empty = EncryptConfig::new(Vec::new(), DecryptConfig::default());
    assert!(w.wrap_keys(&empty, OPTS).unwrap().is_none());
}

// ---- real peers ---------------------------------------------------------------------------

fn assert_skopeo_opts(plaintext: &[u8]) {
    let opts = PrivateOptions::from_json(plaintext).unwrap();
    assert_eq!(opts.digest, FIXTURE_LAYER_DIGEST);
}

/// JWEs written by Debian's skopeo 1.9.3 (ocicrypt + go-jose), see tests/data/crypto/jwe/README.md.
#[test]
fn skopeo_single_recipient_jwes_decrypt() {
    for (dir, alg) in [
        ("skopeo-rsa2048", "RSA-OAEP"),
        ("skopeo-ec-p256", "ECDH-ES+A256KW"),
        ("skopeo-ec-p384", "ECDH-ES+A256KW"),
        ("skopeo-ec-p521", "ECDH-ES+A256KW"),
        // skopeo 1.9.3 ignores the JWK's "alg": RSA-OAEP-256 was asked for, RSA-OAEP written.
        ("skopeo-jwk-rsa-alg-ignored", "RSA-OAEP"),
    ] {
        let jwe = fixture(&format!("{dir}/keys.jwe.json"));
        assert_eq!(protected_header(&jwe)["alg"], alg, "{dir}");
        let key = fixture_key(&format!("{dir}/key.pem"));
        assert_skopeo_opts(&decrypt(&[&key], &jwe).unwrap());
    }
}

#[test]
fn skopeo_three_recipient_jwe_decrypts_with_each_key() {
    let dir = "skopeo-multi-3";
    let jwe = fixture(&format!("{dir}/keys.jwe.json"));
    let o = obj(&jwe);
    assert_eq!(o["encrypted_key"], o["recipients"][0]["encrypted_key"]);
    for k in ["rsa2048", "ec-p256", "ec-p521"] {
        let key = fixture_key(&format!("{dir}/{k}.key.pem"));
        assert_skopeo_opts(&decrypt(&[&key], &jwe).unwrap());
    }
    let stranger = fixture_key("skopeo-ec-p384/key.pem");
    assert_no_key(decrypt(&[&stranger], &jwe));
}

/// JWEs written by jwcrypto 1.6.1 (an independent implementation) for what Debian's skopeo
/// cannot write: alg overrides, CBC-HS and A192GCM content, `epk` in an unprotected header,
/// a shared unprotected header and an `aad` member. Their plaintext is `OPTS`.
#[test]
fn jwcrypto_jwes_decrypt() {
    for (dir, keys) in [
        ("jwcrypto-rsa-oaep-256-a128cbc-hs256", &["jwk-rsa"][..]),
        (
            "jwcrypto-ecdh-es-a128kw-p384-a256cbc-hs512",
            &["jwk-ec"][..],
        ),
        ("jwcrypto-ecdh-es-a192kw-p521-a192gcm", &["ec-p521"][..]),
        (
            "jwcrypto-general-a192cbc-hs384",
            &["rsa2048", "ec-p256"][..],
        ),
    ] {
        let jwe = fixture(&format!("{dir}/keys.jwe.json"));
        for k in keys {
            let key = fixture_key(&format!("{dir}/{k}.key.pem"));
            let plaintext = decrypt(&[&key], &jwe).unwrap_or_else(|e| panic!("{dir} {k}: {e}"));
            assert_eq!(plaintext.as_slice(), OPTS, "{dir} {k}");
            PrivateOptions::from_json(&plaintext).unwrap();
        }
        let stranger = fixture_key("skopeo-ec-p384/key.pem");
        assert_no_key(decrypt(&[&stranger], &jwe));
    }
}
