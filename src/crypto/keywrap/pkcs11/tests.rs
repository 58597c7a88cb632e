//! Unit tests of the PKCS#11 wrapper without a token: URIs, key files, the module policy, the
//! blob JSON and software OAEP for PEM recipients (token tests are in
//! tests/integration/crypto_pkcs11.rs, against SoftHSM).

use std::path::{Path, PathBuf};

use openssl::encrypt::Decrypter;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;

use super::*;

fn rsa(bits: u32) -> (PKey<Private>, PublicKey) {
    let k = PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap();
    let public =
        keys::parse_public_key(&k.public_key_to_pem().unwrap(), Path::new("pub.pem")).unwrap();
    (k, public)
}

fn oaep_decrypt(k: &PKey<Private>, hash: OaepHash, ct: &[u8]) -> Vec<u8> {
    let mut d = Decrypter::new(k).unwrap();
    d.set_rsa_padding(Padding::PKCS1_OAEP).unwrap();
    d.set_rsa_oaep_md(hash.digest()).unwrap();
    d.set_rsa_mgf1_md(hash.digest()).unwrap();
    let mut out = vec![0; d.decrypt_len(ct).unwrap()];
    let n = d.decrypt(ct, &mut out).unwrap();
    out.truncate(n);
    out
}

#[test]
fn uri_attributes_are_decoded_and_the_pin_hidden() {
    let u = Pkcs11Uri::parse(
        "pkcs11:token=my%20token;object=key1;id=%01?module-name=softhsm2&pin-value=12%3434",
    )
    .unwrap();
    assert_eq!(u.path_attr("token"), Some("my token"));
    assert_eq!(u.path_attr("id"), Some("\u{1}"));
    assert_eq!(
        u.pin().unwrap().as_deref().map(String::as_str),
        Some("12434")
    );
    let shown = format!("{} {u:?}", u.describe());
    assert!(
        !shown.contains("12434") && !shown.contains("12%34"),
        "{shown}"
    );
    assert!(shown.contains("module-name=softhsm2"), "{shown}");
    for bad in ["http://x", "pkcs11:token", "pkcs11:a=%zz"] {
        assert!(Pkcs11Uri::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn pin_source_is_read_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("pin");
    std::fs::write(&f, "4321\n").unwrap();
    let u = Pkcs11Uri::parse(&format!("pkcs11:object=k?pin-source=file:{}", f.display())).unwrap();
    assert_eq!(
        u.pin().unwrap().as_deref().map(String::as_str),
        Some("4321")
    );
    let u = Pkcs11Uri::parse("pkcs11:object=k?pin-source=/nonexistent/pin").unwrap();
    assert!(u.pin().unwrap_err().contains("cannot read pin-source"));
}

#[test]
fn key_files_are_ocicrypt_yaml() {
    let yaml = b"pkcs11:\n  uri: pkcs11:token=t;object=k?module-name=softhsm2&pin-value=1\nmodule:\n  env:\n    SOFTHSM2_CONF: /tmp/x.conf\n";
    assert!(Pkcs11KeyFile::looks_like(yaml));
    let k = Pkcs11KeyFile::parse(yaml, Path::new("k.yaml")).unwrap();
    assert_eq!(k.uri().path_attr("object"), Some("k"));
    assert_eq!(
        k.env().get("SOFTHSM2_CONF").map(String::as_str),
        Some("/tmp/x.conf")
    );
    assert!(!format!("{k:?}").contains("pin-value"));
    assert!(!Pkcs11KeyFile::looks_like(b"-----BEGIN PUBLIC KEY-----\n"));
    assert!(!Pkcs11KeyFile::looks_like(&[0x99, 0x01, 0xff]));
    let err = Pkcs11KeyFile::parse(b"pkcs11:\n  uri: pkcs11:token=t\n", Path::new("k.yaml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("names no key"), "{err}");
}

fn policy(yaml: &str) -> ModulePolicy {
    ModulePolicy::parse(yaml.as_bytes(), Path::new("/etc/ocicrypt.conf")).unwrap()
}

#[test]
fn modules_are_found_by_name_and_checked_against_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let d = format!("{}/", dir.path().display());
    for f in ["libsofthsm2.so", "libsofthsm.so", "opensc-pkcs11.so"] {
        std::fs::write(dir.path().join(f), b"").unwrap();
    }
    let allow_all = policy(&format!(
        "pkcs11:\n  module-directories:\n    - {d}\n  allowed-module-paths:\n    - {d}\n"
    ));
    let uri = |q: &str| Pkcs11Uri::parse(&format!("pkcs11:object=k?{q}")).unwrap();
    let found = |q: &str, p: &ModulePolicy| uri(q).module(p);
    assert_eq!(
        found("module-name=softhsm2", &allow_all).unwrap(),
        dir.path().join("libsofthsm2.so")
    );
    // "softhsm" must not pick libsofthsm2.so.
    assert_eq!(
        found("module-name=SoftHSM", &allow_all).unwrap(),
        dir.path().join("libsofthsm.so")
    );
    let one = format!("{d}libsofthsm2.so");
    assert_eq!(
        found(&format!("module-path={one}"), &allow_all).unwrap(),
        PathBuf::from(&one)
    );
    let only_opensc = policy(&format!(
        "pkcs11:\n  module-directories: [{d}]\n  allowed-module-paths: [{d}opensc-pkcs11.so]\n"
    ));
    let err = found("module-name=softhsm2", &only_opensc).unwrap_err();
    assert!(
        err.contains("not allowed by policy") && err.contains("allowed-module-paths"),
        "{err}"
    );
    let err = found(&format!("module-path={one}"), &only_opensc).unwrap_err();
    assert!(err.contains("not allowed by policy"), "{err}");
    assert!(found("module-name=nothere", &allow_all)
        .unwrap_err()
        .contains("no pkcs11 module named"));
    assert!(found("pin-value=1", &allow_all)
        .unwrap_err()
        .contains("module-name"));
    // Subdirectories of an allowed directory are not allowed.
    assert!(!allow_all.allows(&dir.path().join("sub/libx.so")));
    assert!(ModulePolicy::internal().allows(Path::new("/usr/lib/softhsm/libsofthsm2.so")));
}

#[test]
fn pem_recipients_get_ocicrypt_blobs() {
    let (private, public) = rsa(3072);
    let opts = br#"{"symkey":"x","digest":"sha256:y","cipheroptions":{"nonce":"z"}}"#;
    for hash in [OaepHash::Sha256, OaepHash::Sha1] {
        let ct = encrypt_soft(&public, hash, opts).unwrap();
        assert_eq!(oaep_decrypt(&private, hash, &ct), opts);
    }
    let ec = EncryptConfig::new(
        vec![crate::crypto::config::Recipient::Pkcs11(
            Pkcs11Recipient::PublicKey(public),
        )],
        DecryptConfig::default(),
    );
    let blob = Pkcs11KeyWrapper.wrap_keys(&ec, opts).unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&blob).unwrap();
    assert_eq!(v["version"], 0);
    assert_eq!(v["recipients"][0]["version"], 0);
    let hash = OaepHash::from_blob(v["recipients"][0]["hash"].as_str().unwrap()).unwrap();
    let ct = decode_b64(v["recipients"][0]["blob"].as_str().unwrap()).unwrap();
    assert_eq!(oaep_decrypt(&private, hash, &ct), opts);
    assert_eq!(Pkcs11KeyWrapper.recipients(&blob), vec!["[pkcs11]"]);
}

#[test]
fn rsa_2048_with_sha256_cannot_carry_the_options() {
    let (_, public) = rsa(2048);
    let opts = vec![b'a'; 193];
    let err = encrypt_soft(&public, OaepHash::Sha256, &opts)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("193 bytes") && err.contains("at most 190"),
        "{err}"
    );
    assert!(err.contains("OCICRYPT_OAEP_HASHALG=sha1"), "{err}");
    assert!(encrypt_soft(&public, OaepHash::Sha1, &opts).is_ok());
}

#[test]
fn blob_versions_and_hashes_are_checked() {
    let dc = DecryptConfig::default();
    for (blob, want) in [
        (&b"nope"[..], "not pkcs11 blob JSON"),
        (br#"{"version":1,"recipients":[]}"#, "version 1"),
        (
            br#"{"version":0,"recipients":[{"version":2,"blob":"AA=="}]}"#,
            "recipient version 2",
        ),
        (
            br#"{"version":0,"recipients":[{"version":0,"blob":"AA==","hash":"md5"}]}"#,
            "\"md5\"",
        ),
    ] {
        let err = Pkcs11KeyWrapper
            .unwrap_key(&dc, blob)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{err}");
    }
    assert_eq!(OaepHash::from_blob(""), Some(OaepHash::Sha1));
    assert!(Pkcs11KeyWrapper.no_possible_keys(&dc));
}
