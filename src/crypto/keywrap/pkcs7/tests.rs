//! Tests of the pkcs7 wrapper on fixtures made by the real skopeo and openssl
//! (`tests/data/crypto/pkcs7/`, see its README) and on the shared ocicrypt samples.

use std::path::{Path, PathBuf};

use super::*;
use crate::crypto::keys::{load_certificate, parse_private_key};
use crate::crypto::options::PrivateOptions;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/crypto/pkcs7")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(data(name)).unwrap()
}

fn key(n: u8) -> PrivateKey {
    let name = format!("key{n}.pem");
    parse_private_key(&read(&name), None, &data(&name)).unwrap()
}

fn cert(n: u8) -> Certificate {
    load_certificate(&data(&format!("cert{n}.pem"))).unwrap()
}

fn plain_digest() -> String {
    String::from_utf8(read("plain-layer-digest.txt"))
        .unwrap()
        .trim()
        .to_string()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn skopeo_blob_decrypts_with_key_and_certificate() {
    let blob = read("skopeo-one.pkcs7.der");
    let plain = decrypt(&[&key(1)], &[&cert(1)], &blob).unwrap();
    assert_eq!(
        PrivateOptions::from_json(&plain).unwrap().digest,
        plain_digest()
    );
    // rrun also opens it with the key alone.
    let plain = decrypt(&[&key(1)], &[], &blob).unwrap();
    assert_eq!(
        PrivateOptions::from_json(&plain).unwrap().digest,
        plain_digest()
    );
}

#[test]
fn skopeo_blob_for_two_certificates_opens_with_either() {
    let blob = read("skopeo-two.pkcs7.der");
    assert_eq!(parse(&blob).unwrap().recipients.len(), 2);
    for n in [1, 2] {
        let plain = decrypt(&[&key(n)], &[&cert(n)], &blob).unwrap();
        assert_eq!(
            PrivateOptions::from_json(&plain).unwrap().digest,
            plain_digest()
        );
    }
    let names = recipient_names(&blob).unwrap();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("[pkcs7] CN=rrun-fixture-1 serial ")),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("[pkcs7] CN=rrun-fixture-2 serial ")),
        "{names:?}"
    );
}

#[test]
fn the_wrong_key_gives_no_key() {
    let blob = read("skopeo-one.pkcs7.der");
    for (keys, certs) in [
        (vec![key(2)], vec![cert(2)]),
        (vec![key(2)], vec![]),
        // The right certificate with the wrong key: the key does not match it.
        (vec![key(2)], vec![cert(1)]),
    ] {
        let k: Vec<&PrivateKey> = keys.iter().collect();
        let c: Vec<&Certificate> = certs.iter().collect();
        let err = decrypt(&k, &c, &blob).unwrap_err();
        assert!(matches!(err, CryptoError::NoKeyForLayer { .. }), "{err}");
        assert!(err.to_string().contains("CN=rrun-fixture-1"), "{err}");
    }
}

#[test]
fn rrun_writes_ocicrypts_gcm_parameter_encoding() {
    let plaintext = vec![b'x'; 193]; // the size of real private options
    let blob = encrypt(&[&cert(1)], &plaintext).unwrap();
    // 10 13 30 11 84 0c <nonce> 02 01 10, then [0] { OCTET STRING } with the tag appended.
    let at = find(&blob, &[0x10, 0x13, 0x30, 0x11, 0x84, 0x0c]).expect("go-style GCM params");
    assert_eq!(&blob[at + 18..at + 21], &[0x02, 0x01, 0x10]);
    assert_eq!(
        &blob[at + 21..at + 27],
        &[0xa0, 0x81, 0xd4, 0x04, 0x81, 0xd1]
    );
    assert_eq!(blob.len(), at + 27 + 209);
    // Outer layout as skopeo's: ContentInfo(envelopedData), version 0, rsaEncryption without
    // NULL parameters.
    assert_eq!(
        &blob[4..15],
        &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03]
    );
    assert!(find(
        &blob,
        &[0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]
    )
    .is_some());
    let env = parse(&blob).unwrap();
    let ContentCipher::Gcm {
        key_len,
        nonce,
        tag_len,
    } = &env.cipher
    else {
        panic!("not GCM");
    };
    assert_eq!((*key_len, nonce.len(), *tag_len), (16, 12, 16));
    assert_eq!(
        decrypt(&[&key(1)], &[&cert(1)], &blob).unwrap().as_slice(),
        plaintext.as_slice()
    );
}

#[test]
fn round_trip_to_several_certificates() {
    let blob = encrypt(&[&cert(1), &cert(2)], b"{\"symkey\":\"k\"}").unwrap();
    for n in [1, 2] {
        assert_eq!(
            decrypt(&[&key(n)], &[&cert(n)], &blob).unwrap().as_slice(),
            b"{\"symkey\":\"k\"}"
        );
    }
    // Both keys given, certificates of neither: each key is tried.
    assert!(decrypt(&[&key(2), &key(1)], &[], &blob).is_ok());
}

#[test]
fn standard_cms_from_openssl_decrypts() {
    let want = read("openssl-plaintext.json");
    for name in ["openssl-auth-gcm.der", "openssl-oaep-cbc.der"] {
        let blob = read(name);
        let plain = decrypt(&[&key(1)], &[&cert(1)], &blob).unwrap();
        assert_eq!(plain.as_slice(), want.as_slice(), "{name}");
    }
    let auth = read("openssl-auth-gcm.der");
    let env = parse(&auth).unwrap();
    assert!(env.mac.is_some());
    assert!(matches!(env.cipher, ContentCipher::Gcm { tag_len: 16, .. }));
}

#[test]
fn standard_gcm_parameters_in_enveloped_data_decrypt() {
    // EnvelopedData with RFC 5084 GCMParameters `30 11 04 0c <nonce> 02 01 10` and the
    // encrypted content as primitive `[0] IMPLICIT`, assembled here with the DER writer.
    let cek = [7u8; 16];
    let nonce = [9u8; 12];
    let mut tag = [0u8; 16];
    let mut sealed = openssl::symm::encrypt_aead(
        Cipher::aes_128_gcm(),
        &cek,
        Some(&nonce),
        &[],
        b"{\"symkey\":\"std\"}",
        &mut tag,
    )
    .unwrap();
    sealed.extend_from_slice(&tag);
    let rsa = cert(1).x509().public_key().unwrap().rsa().unwrap();
    let mut wrapped = vec![0u8; rsa.size() as usize];
    let n = rsa
        .public_encrypt(&cek, &mut wrapped, Padding::PKCS1)
        .unwrap();
    wrapped.truncate(n);
    let (issuer, serial) = issuer_and_serial(&cert(1)).unwrap();
    let info = der::constructed(
        der::SEQUENCE,
        &[
            &der::int(0),
            &der::constructed(der::SEQUENCE, &[&issuer, &serial]),
            &der::constructed(
                der::SEQUENCE,
                &[&der::tlv(der::OID, oid::RSA_ENCRYPTION), &[0x05, 0x00]],
            ),
            &der::tlv(der::OCTET_STRING, &wrapped),
        ],
    );
    let mut gcm = oid::AES.to_vec();
    gcm.push(0x06);
    let params = der::constructed(
        der::SEQUENCE,
        &[&der::tlv(der::OCTET_STRING, &nonce), &der::int(16)],
    );
    let eci = der::constructed(
        der::SEQUENCE,
        &[
            &der::tlv(der::OID, oid::DATA),
            &der::constructed(der::SEQUENCE, &[&der::tlv(der::OID, &gcm), &params]),
            &der::tlv(0x80, &sealed),
        ],
    );
    let env = der::constructed(
        der::SEQUENCE,
        &[&der::int(0), &der::constructed(der::SET, &[&info]), &eci],
    );
    let blob = der::constructed(
        der::SEQUENCE,
        &[
            &der::tlv(der::OID, oid::ENVELOPED_DATA),
            &der::tlv(0xa0, &env),
        ],
    );
    assert_eq!(
        decrypt(&[&key(1)], &[&cert(1)], &blob).unwrap().as_slice(),
        b"{\"symkey\":\"std\"}"
    );
}

#[test]
fn shared_skopeo_samples_have_ocicrypts_gcm_parameters() {
    // shared/reference/samples enc-pkcs7-gcm-params.xxd.txt: nonce 7d5770806975aa067b602aec.
    for (name, nonce_hex) in [
        (
            "sample-enc-pkcs7-keys.pkcs7.der",
            "7d5770806975aa067b602aec",
        ),
        (
            "sample-enc-multi-recipient-keys.pkcs7.der",
            "3e2f6af2e0e292f74403c806",
        ),
    ] {
        let blob = read(name);
        let env = parse(&blob).unwrap();
        let ContentCipher::Gcm {
            key_len,
            nonce,
            tag_len,
        } = &env.cipher
        else {
            panic!("{name}: not GCM");
        };
        assert_eq!(
            (*key_len, hex::encode(nonce), *tag_len),
            (16, nonce_hex.to_string(), 16)
        );
        assert_eq!(env.content.len(), 193 + 16, "{name}");
        assert_eq!(env.recipients.len(), 1);
        assert_eq!(env.recipients[0].algorithm, oid::RSA_ENCRYPTION);
        assert_eq!(
            recipient_names(&blob).unwrap(),
            vec!["[pkcs7] CN=rrun-test-recipient serial 38a358b8e1e81b715fbdc36e6afa5989e81ff7a9"]
        );
        // The sample's recipient certificate is the one the recipient info names.
        let c = load_certificate(&data("sample-test-recipient-cert.pem")).unwrap();
        assert!(env.recipients[0].names(&c));
        assert!(!env.recipients[0].names(&cert(1)));
    }
}

#[test]
fn altered_and_malformed_blobs() {
    let blob = encrypt(&[&cert(1)], b"{\"symkey\":\"k\"}").unwrap();
    let mut altered = blob.clone();
    let last = altered.len() - 3;
    altered[last] ^= 1;
    let err = decrypt(&[&key(1)], &[&cert(1)], &altered).unwrap_err();
    assert!(
        matches!(&err, CryptoError::MalformedAnnotation { reason, .. } if reason.contains("altered")),
        "{err}"
    );
    for bad in [
        &blob[..blob.len() - 1],
        &blob[..40],
        &[][..],
        b"not der".as_slice(),
        &[0x30, 0x03, 0x06, 0x01, 0x00][..],
    ] {
        let err = decrypt(&[&key(1)], &[&cert(1)], bad).unwrap_err();
        assert!(
            matches!(err, CryptoError::MalformedAnnotation { .. }),
            "{err}"
        );
    }
}

#[test]
fn only_rsa_certificates_are_recipients() {
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::{X509Builder, X509NameBuilder};
    let ec = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "ec").unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&ec).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    b.sign(&ec, MessageDigest::sha256()).unwrap();
    let c = Certificate::new(b.build(), "ec.pem");
    let err = encrypt(&[&c], b"x").unwrap_err();
    assert!(err.to_string().contains("need an RSA certificate"), "{err}");
    assert!(err.to_string().contains("jwe:ec.pem"), "{err}");
}
