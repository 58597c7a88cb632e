//! Tests of key loading: every accepted form, generated at run time, and every refusal.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::dsa::Dsa;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::symm::Cipher;
use openssl::x509::{X509Builder, X509NameBuilder};
use tempfile::TempDir;

use super::*;
use crate::crypto::error::CryptoError;

const PW: &[u8] = b"s3cret:pass";

fn rsa2048() -> &'static Rsa<Private> {
    static KEY: OnceLock<Rsa<Private>> = OnceLock::new();
    KEY.get_or_init(|| Rsa::generate(2048).unwrap())
}

fn rsa_pkey() -> PKey<Private> {
    PKey::from_rsa(rsa2048().clone()).unwrap()
}

fn ec_key(nid: Nid) -> EcKey<Private> {
    EcKey::generate(&EcGroup::from_curve_name(nid).unwrap()).unwrap()
}

const CURVES: [Nid; 3] = [Nid::X9_62_PRIME256V1, Nid::SECP384R1, Nid::SECP521R1];

fn write(dir: &TempDir, name: &str, data: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    fs::write(&path, data).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn spki<T: openssl::pkey::HasPublic>(pkey: &PKey<T>) -> Vec<u8> {
    pkey.public_key_to_der().unwrap()
}

/// The loaded private key is the generated one: its public half is identical.
fn assert_same(loaded: &PrivateKey, expected: &PKey<Private>) {
    assert_eq!(spki(loaded.pkey()), spki(expected), "{loaded:?}");
    assert!(loaded.pkey().public_eq(expected));
}

fn load(path: &Path) -> Result<PrivateKey> {
    load_private_key(path.to_str().unwrap())
}

fn load_with(path: &Path, part: &str) -> Result<PrivateKey> {
    load_private_key(&format!("{}:{part}", path.display()))
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn certificate(pkey: &PKey<Private>) -> openssl::x509::X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "rrun test").unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(7).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(pkey).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(pkey, MessageDigest::sha256()).unwrap();
    b.build()
}

fn rsa_jwk(rsa: &Rsa<Private>, alg: Option<&str>, with_crt: bool) -> String {
    let mut v = serde_json::json!({
        "kty": "RSA",
        "n": b64(&rsa.n().to_vec()),
        "e": b64(&rsa.e().to_vec()),
        "d": b64(&rsa.d().to_vec()),
        "p": b64(&rsa.p().unwrap().to_vec()),
        "q": b64(&rsa.q().unwrap().to_vec()),
    });
    if with_crt {
        v["dp"] = b64(&rsa.dmp1().unwrap().to_vec()).into();
        v["dq"] = b64(&rsa.dmq1().unwrap().to_vec()).into();
        v["qi"] = b64(&rsa.iqmp().unwrap().to_vec()).into();
    }
    if let Some(alg) = alg {
        v["alg"] = alg.into();
    }
    v.to_string()
}

fn ec_jwk(ec: &EcKey<Private>, crv: &str, alg: Option<&str>, private: bool) -> String {
    let group = ec.group();
    let size = group.degree().div_ceil(8) as i32;
    let mut ctx = openssl::bn::BigNumContext::new().unwrap();
    let (mut x, mut y) = (BigNum::new().unwrap(), BigNum::new().unwrap());
    ec.public_key()
        .affine_coordinates(group, &mut x, &mut y, &mut ctx)
        .unwrap();
    let mut v = serde_json::json!({
        "kty": "EC",
        "crv": crv,
        "x": b64(&x.to_vec_padded(size).unwrap()),
        "y": b64(&y.to_vec_padded(size).unwrap()),
    });
    if private {
        v["d"] = b64(&ec.private_key().to_vec_padded(size).unwrap()).into();
    }
    if let Some(alg) = alg {
        v["alg"] = alg.into();
    }
    v.to_string()
}

fn crv_name(nid: Nid) -> &'static str {
    match nid {
        Nid::X9_62_PRIME256V1 => "P-256",
        Nid::SECP384R1 => "P-384",
        _ => "P-521",
    }
}

fn reason(err: &CryptoError) -> String {
    match err {
        CryptoError::Key { reason, .. } => reason.clone(),
        other => panic!("expected a Key error, got {other:?}"),
    }
}

fn openssl_cli(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl CLI is needed by this test");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- accepted private key forms ----

#[test]
fn rsa_private_key_in_every_plain_form() {
    let dir = TempDir::new().unwrap();
    let pkey = rsa_pkey();
    let rsa = rsa2048();
    let forms: [(&str, Vec<u8>); 4] = [
        ("pkcs8.pem", pkey.private_key_to_pem_pkcs8().unwrap()),
        ("pkcs1.pem", rsa.private_key_to_pem().unwrap()),
        ("pkcs8.der", pkey.private_key_to_pkcs8().unwrap()),
        ("pkcs1.der", rsa.private_key_to_der().unwrap()),
    ];
    for (name, data) in forms {
        let key = load(&write(&dir, name, &data)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_same(&key, &pkey);
        assert_eq!(key.jwk_alg(), None);
        assert!(key.source().ends_with(name));
    }
}

#[test]
fn ec_private_key_in_every_plain_form_on_each_curve() {
    let dir = TempDir::new().unwrap();
    for nid in CURVES {
        let ec = ec_key(nid);
        let pkey = PKey::from_ec_key(ec.clone()).unwrap();
        let forms: [(&str, Vec<u8>); 4] = [
            ("sec1.pem", ec.private_key_to_pem().unwrap()),
            ("pkcs8.pem", pkey.private_key_to_pem_pkcs8().unwrap()),
            ("sec1.der", ec.private_key_to_der().unwrap()),
            ("pkcs8.der", pkey.private_key_to_pkcs8().unwrap()),
        ];
        for (name, data) in forms {
            let key =
                load(&write(&dir, name, &data)).unwrap_or_else(|e| panic!("{nid:?} {name}: {e}"));
            assert_same(&key, &pkey);
        }
    }
}

/// `openssl ecparam -genkey` writes an `EC PARAMETERS` block before the key (ocicrypt reads
/// only the first block and fails).
#[test]
fn ec_sec1_pem_from_openssl_ecparam_with_parameters_block() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("ec.pem");
    openssl_cli(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-out",
        path.to_str().unwrap(),
    ]);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("-----BEGIN EC PARAMETERS-----"), "{text}");
    let key = load(&path).unwrap();
    let expected = PKey::private_key_from_pem(text.as_bytes()).unwrap();
    assert_same(&key, &expected);
    assert!(format!("{key:?}").contains("EC P-256"));
}

#[test]
fn legacy_encrypted_rsa_pem_with_each_password_form() {
    let dir = TempDir::new().unwrap();
    let pkey = rsa_pkey();
    let pem = rsa2048()
        .private_key_to_pem_passphrase(Cipher::aes_256_cbc(), PW)
        .unwrap();
    let text = String::from_utf8(pem.clone()).unwrap();
    assert!(text.contains("Proc-Type: 4,ENCRYPTED") && text.contains("DEK-Info: AES-256-CBC"));
    let key_path = write(&dir, "enc.pem", &pem);
    let pw_file = write(&dir, "pw", PW);
    let pw_fd = fs::File::open(&pw_file).unwrap();

    // FILE:PW holds a ':' in the password: still one password part after the key file.
    let parts = [
        std::str::from_utf8(PW).unwrap().to_string(),
        format!("pass={}", std::str::from_utf8(PW).unwrap()),
        format!("file={}", pw_file.display()),
        format!("fd={}", pw_fd.as_raw_fd()),
    ];
    for part in &parts {
        let key = load_with(&key_path, part).unwrap_or_else(|e| panic!("{part}: {e}"));
        assert_same(&key, &pkey);
    }
}

#[test]
fn legacy_encrypted_ec_pem_on_each_curve() {
    let dir = TempDir::new().unwrap();
    for nid in CURVES {
        let ec = ec_key(nid);
        let pem = ec
            .private_key_to_pem_passphrase(Cipher::aes_128_cbc(), b"pw")
            .unwrap();
        assert!(String::from_utf8_lossy(&pem).contains("BEGIN EC PRIVATE KEY"));
        let key = load_with(&write(&dir, "ec-enc.pem", &pem), "pass=pw").unwrap();
        assert_same(&key, &PKey::from_ec_key(ec).unwrap());
    }
}

/// The form imgcrypt's tests generate: `openssl genrsa -traditional -aes256`.
#[test]
fn legacy_encrypted_pem_from_openssl_genrsa_traditional() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("trad.pem");
    openssl_cli(&[
        "genrsa",
        "-traditional",
        "-aes256",
        "-passout",
        "pass:hunter2",
        "-out",
        path.to_str().unwrap(),
        "2048",
    ]);
    let text = fs::read(&path).unwrap();
    assert!(String::from_utf8_lossy(&text).contains("Proc-Type: 4,ENCRYPTED"));
    let key = load_with(&path, "hunter2").unwrap();
    let expected = PKey::private_key_from_pem_passphrase(&text, b"hunter2").unwrap();
    assert_same(&key, &expected);
}

#[test]
fn pkcs8_encrypted_pem_and_der() {
    let dir = TempDir::new().unwrap();
    let rsa = rsa_pkey();
    let ec = PKey::from_ec_key(ec_key(Nid::SECP384R1)).unwrap();
    for pkey in [&rsa, &ec] {
        let pem = pkey
            .private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), PW)
            .unwrap();
        assert!(String::from_utf8_lossy(&pem).contains("BEGIN ENCRYPTED PRIVATE KEY"));
        let key = load_with(&write(&dir, "p8.pem", &pem), "pass=s3cret:pass").unwrap();
        assert_same(&key, pkey);

        let der = pkey
            .private_key_to_pkcs8_passphrase(Cipher::aes_256_cbc(), PW)
            .unwrap();
        let key = load_with(&write(&dir, "p8.der", &der), "pass=s3cret:pass").unwrap();
        assert_same(&key, pkey);
    }
}

#[test]
fn private_rsa_jwk_keeps_its_alg_and_matches() {
    let dir = TempDir::new().unwrap();
    let jwk = rsa_jwk(rsa2048(), Some("RSA-OAEP-256"), true);
    let key = load(&write(&dir, "rsa.jwk", jwk.as_bytes())).unwrap();
    assert_same(&key, &rsa_pkey());
    assert_eq!(key.jwk_alg(), Some("RSA-OAEP-256"));
}

#[test]
fn private_rsa_jwk_without_crt_members_is_completed() {
    let dir = TempDir::new().unwrap();
    let jwk = rsa_jwk(rsa2048(), None, false);
    let key = load(&write(&dir, "rsa.jwk", jwk.as_bytes())).unwrap();
    assert_same(&key, &rsa_pkey());
    assert_eq!(key.jwk_alg(), None);
}

#[test]
fn private_ec_jwk_on_each_curve() {
    let dir = TempDir::new().unwrap();
    for nid in CURVES {
        let ec = ec_key(nid);
        let jwk = ec_jwk(&ec, crv_name(nid), Some("ECDH-ES+A128KW"), true);
        let key = load(&write(&dir, "ec.jwk", jwk.as_bytes())).unwrap();
        assert_same(&key, &PKey::from_ec_key(ec).unwrap());
        assert_eq!(key.jwk_alg(), Some("ECDH-ES+A128KW"));
    }
}

#[test]
fn single_key_jwk_set_is_accepted() {
    let dir = TempDir::new().unwrap();
    let ec = ec_key(Nid::X9_62_PRIME256V1);
    let set = format!("{{\"keys\":[{}]}}", ec_jwk(&ec, "P-256", None, true));
    let key = load(&write(&dir, "set.jwks", set.as_bytes())).unwrap();
    assert_same(&key, &PKey::from_ec_key(ec).unwrap());
}

#[test]
fn private_key_parsed_from_bytes() {
    let pem = rsa2048().private_key_to_pem().unwrap();
    let key = parse_private_key(&pem, None, Path::new("mem")).unwrap();
    assert_same(&key, &rsa_pkey());
    assert!(!key.is_world_readable());
    // A password given for an unencrypted key is ignored, as ocicrypt does.
    let key = parse_private_key(&pem, Some(b"unused"), Path::new("mem")).unwrap();
    assert_same(&key, &rsa_pkey());
}

// ---- spec parsing ----

#[test]
fn key_file_whose_name_contains_a_colon() {
    let dir = TempDir::new().unwrap();
    let pem = rsa2048().private_key_to_pem().unwrap();
    let path = write(&dir, "key:pass=x.pem", &pem);
    let key = load(&path).unwrap();
    assert_same(&key, &rsa_pkey());
    assert_eq!(key.source(), path);

    let enc = rsa2048()
        .private_key_to_pem_passphrase(Cipher::aes_256_cbc(), b"pw")
        .unwrap();
    let sub = dir.path().join("a:b");
    fs::create_dir(&sub).unwrap();
    let path = sub.join("enc.pem");
    fs::write(&path, &enc).unwrap();
    let key = load_with(&path, "pass=pw").unwrap();
    assert_same(&key, &rsa_pkey());
    assert_eq!(key.source(), path);
}

/// ocicrypt reads a password file byte for byte (`os.ReadFile`, no trimming): a trailing
/// newline is part of the password.
#[test]
fn password_file_trailing_newline_is_part_of_the_password() {
    let dir = TempDir::new().unwrap();
    let enc = rsa2048()
        .private_key_to_pem_passphrase(Cipher::aes_256_cbc(), b"pw")
        .unwrap();
    let key_path = write(&dir, "enc.pem", &enc);
    let with_newline = write(&dir, "pw-nl", b"pw\n");
    let err = load_with(&key_path, &format!("file={}", with_newline.display())).unwrap_err();
    assert!(matches!(err, CryptoError::WrongPassword { .. }), "{err}");

    let enc_nl = rsa2048()
        .private_key_to_pem_passphrase(Cipher::aes_256_cbc(), b"pw\n")
        .unwrap();
    let key_path = write(&dir, "enc-nl.pem", &enc_nl);
    let key = load_with(&key_path, &format!("file={}", with_newline.display())).unwrap();
    assert_same(&key, &rsa_pkey());
}

/// ocicrypt reads `fd=N` with a single read of 64 bytes: a longer password is cut.
#[test]
fn fd_password_is_read_up_to_64_bytes() {
    let dir = TempDir::new().unwrap();
    let long = [b'a'; 70];
    let enc = rsa2048()
        .private_key_to_pem_passphrase(Cipher::aes_256_cbc(), &long[..64])
        .unwrap();
    let key_path = write(&dir, "enc.pem", &enc);
    let pw_file = write(&dir, "pw", &long);
    let fd = fs::File::open(&pw_file).unwrap();
    let key = load_with(&key_path, &format!("fd={}", fd.as_raw_fd())).unwrap();
    assert_same(&key, &rsa_pkey());
}

/// The usual way to pass `fd=N`: an anonymous pipe whose writer has already exited.
#[test]
fn fd_password_from_a_pipe() {
    let dir = TempDir::new().unwrap();
    let enc = rsa2048()
        .private_key_to_pem_passphrase(Cipher::aes_256_cbc(), PW)
        .unwrap();
    let key_path = write(&dir, "enc.pem", &enc);
    let mut child = Command::new("sh")
        .args(["-c", "printf '%s' 's3cret:pass'"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let reader = child.stdout.take().unwrap();
    let key = load_with(&key_path, &format!("fd={}", reader.as_raw_fd())).unwrap();
    assert_same(&key, &rsa_pkey());
}

#[test]
fn bad_fd_password_sources_are_clear_errors() {
    let dir = TempDir::new().unwrap();
    let key_path = write(&dir, "k.pem", &rsa2048().private_key_to_pem().unwrap());
    let err = load_with(&key_path, "fd=three").unwrap_err();
    assert!(
        reason(&err).contains("not a file descriptor number"),
        "{err}"
    );
    assert!(err.to_string().contains("k.pem"), "{err}");
    let err = load_with(&key_path, "fd=999999").unwrap_err();
    assert!(reason(&err).contains("fd 999999: it is not open"), "{err}");
    let empty = write(&dir, "empty", b"");
    let fd = fs::File::open(&empty).unwrap();
    let err = load_with(&key_path, &format!("fd={}", fd.as_raw_fd())).unwrap_err();
    assert!(reason(&err).contains("gave no password"), "{err}");
}

#[test]
fn empty_or_missing_password_file_is_an_error_naming_it() {
    let dir = TempDir::new().unwrap();
    let key_path = write(&dir, "k.pem", &rsa2048().private_key_to_pem().unwrap());
    let empty = write(&dir, "pw-empty", b"");
    let err = load_with(&key_path, &format!("file={}", empty.display())).unwrap_err();
    assert!(reason(&err).contains("password file is empty"), "{err}");
    assert!(err.to_string().contains("pw-empty"), "{err}");
    let missing = dir.path().join("nope");
    let err = load_with(&key_path, &format!("file={}", missing.display())).unwrap_err();
    assert!(reason(&err).contains("no such file"), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn provider_specs_are_not_supported_yet_and_cred_needs_systemd() {
    let err = load_private_key("provider:attestation-agent:opaque").unwrap_err();
    assert!(
        reason(&err).contains("not supported by this rrun build yet"),
        "{err}"
    );
    // cred: reads $CREDENTIALS_DIRECTORY, which only a systemd unit has.
    if std::env::var_os("CREDENTIALS_DIRECTORY").is_none() {
        let err = load_private_key("cred:mykey").unwrap_err();
        assert!(reason(&err).contains("CREDENTIALS_DIRECTORY"), "{err}");
    }
    let err = load_private_key("").unwrap_err();
    assert!(reason(&err).contains("empty key argument"), "{err}");
}

#[test]
fn world_readable_mode_is_recorded() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "k.pem", &rsa2048().private_key_to_pem().unwrap());
    assert!(!load(&path).unwrap().is_world_readable());
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    assert!(load(&path).unwrap().is_world_readable());
}

#[test]
fn debug_never_prints_key_material() {
    let dir = TempDir::new().unwrap();
    let jwk = rsa_jwk(rsa2048(), None, true);
    let key = load(&write(&dir, "rsa.jwk", jwk.as_bytes())).unwrap();
    let shown = format!("{key:?}");
    assert!(
        shown.contains("rsa.jwk") && shown.contains("RSA-2048"),
        "{shown}"
    );
    let d = b64(&rsa2048().d().to_vec());
    let n = b64(&rsa2048().n().to_vec());
    assert!(
        !shown.contains(&d[..16]) && !shown.contains(&n[..16]),
        "{shown}"
    );
    assert!(shown.len() < 200, "{shown}");
}

// ---- refused private keys ----

#[test]
fn wrong_password_is_reported_for_each_encrypted_form() {
    let dir = TempDir::new().unwrap();
    let pkey = rsa_pkey();
    let forms: [(&str, Vec<u8>); 3] = [
        (
            "legacy.pem",
            rsa2048()
                .private_key_to_pem_passphrase(Cipher::aes_256_cbc(), PW)
                .unwrap(),
        ),
        (
            "p8.pem",
            pkey.private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), PW)
                .unwrap(),
        ),
        (
            "p8.der",
            pkey.private_key_to_pkcs8_passphrase(Cipher::aes_256_cbc(), PW)
                .unwrap(),
        ),
    ];
    for (name, data) in forms {
        let path = write(&dir, name, &data);
        let err = load_with(&path, "pass=wrong").unwrap_err();
        assert!(
            matches!(&err, CryptoError::WrongPassword { path: p } if p == &path),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn missing_password_is_reported_for_each_encrypted_form() {
    let dir = TempDir::new().unwrap();
    let pkey = rsa_pkey();
    let forms: [(&str, Vec<u8>); 3] = [
        (
            "legacy.pem",
            rsa2048()
                .private_key_to_pem_passphrase(Cipher::aes_256_cbc(), PW)
                .unwrap(),
        ),
        (
            "p8.pem",
            pkey.private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), PW)
                .unwrap(),
        ),
        (
            "p8.der",
            pkey.private_key_to_pkcs8_passphrase(Cipher::aes_256_cbc(), PW)
                .unwrap(),
        ),
    ];
    for (name, data) in forms {
        let path = write(&dir, name, &data);
        let err = load(&path).unwrap_err();
        assert!(
            matches!(&err, CryptoError::MissingPassword { path: p } if p == &path),
            "{name}: {err}"
        );
        // An empty password counts as none.
        let err = load_with(&path, "pass=").unwrap_err();
        assert!(matches!(err, CryptoError::MissingPassword { .. }), "{err}");
    }
}

#[test]
fn public_key_given_as_private_key() {
    let dir = TempDir::new().unwrap();
    let pkey = rsa_pkey();
    let ec = ec_key(Nid::X9_62_PRIME256V1);
    let forms: [(&str, Vec<u8>); 5] = [
        ("pub.pem", pkey.public_key_to_pem().unwrap()),
        ("pub.der", pkey.public_key_to_der().unwrap()),
        ("pub1.pem", rsa2048().public_key_to_pem_pkcs1().unwrap()),
        ("pub1.der", rsa2048().public_key_to_der_pkcs1().unwrap()),
        ("pub.jwk", ec_jwk(&ec, "P-256", None, false).into_bytes()),
    ];
    for (name, data) in forms {
        let path = write(&dir, name, &data);
        let err = load(&path).unwrap_err();
        assert!(
            matches!(&err, CryptoError::PublicKeyGiven { path: p } if p == &path),
            "{name}: {err}"
        );
    }
}

#[test]
fn certificate_given_as_private_key() {
    let dir = TempDir::new().unwrap();
    let cert = certificate(&rsa_pkey());
    for (name, data) in [
        ("cert.pem", cert.to_pem().unwrap()),
        ("cert.der", cert.to_der().unwrap()),
    ] {
        let err = load(&write(&dir, name, &data)).unwrap_err();
        assert!(
            reason(&err).contains("is an x509 certificate; decryption needs the private key"),
            "{name}: {err}"
        );
    }
}

#[test]
fn certificate_next_to_its_key_in_one_pem_file_loads_the_key() {
    let dir = TempDir::new().unwrap();
    let pkey = rsa_pkey();
    let mut data = certificate(&pkey).to_pem().unwrap();
    data.extend(pkey.private_key_to_pem_pkcs8().unwrap());
    let key = load(&write(&dir, "both.pem", &data)).unwrap();
    assert_same(&key, &pkey);
}

#[test]
fn garbage_empty_missing_and_directory_are_clear_errors() {
    let dir = TempDir::new().unwrap();
    let err = load(&write(&dir, "junk", b"\x30\x03\x02\x01garbage")).unwrap_err();
    assert_eq!(reason(&err), "not a private key: expected PEM, DER or JWK");
    assert!(err.to_string().contains("junk"), "{err}");

    let err = load(&write(&dir, "text", b"hello world")).unwrap_err();
    assert!(reason(&err).starts_with("not a private key"), "{err}");

    let err = load(&write(&dir, "json", b"{\"hello\": 1}")).unwrap_err();
    assert!(reason(&err).contains("no \"kty\""), "{err}");

    let err = load(&write(&dir, "empty", b"\n")).unwrap_err();
    assert!(reason(&err).contains("file is empty"), "{err}");

    let err = load(&write(
        &dir,
        "cut.pem",
        b"-----BEGIN PRIVATE KEY-----\nMIIB\n",
    ))
    .unwrap_err();
    assert!(reason(&err).contains("no complete PEM block"), "{err}");

    let bad_body = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    let err = load(&write(&dir, "bad.pem", bad_body)).unwrap_err();
    assert!(
        reason(&err).contains("cannot parse its PRIVATE KEY PEM block"),
        "{err}"
    );

    let ssh = b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
    let ssh_path = write(&dir, "id_ecdsa", ssh);
    let err = load(&ssh_path).unwrap_err();
    assert!(
        reason(&err).contains(&format!("ssh-keygen -p -m PKCS8 -f {}", ssh_path.display())),
        "{err}"
    );

    let missing = dir.path().join("missing.pem");
    let err = load(&missing).unwrap_err();
    assert!(reason(&err).contains("no such file"), "{err}");
    assert!(err.to_string().contains("missing.pem"), "{err}");
    // With a password part, the error still names the key file.
    let err = load_with(&missing, "pass=x").unwrap_err();
    assert!(
        err.to_string().contains("missing.pem: cannot read"),
        "{err}"
    );

    let err = load(dir.path()).unwrap_err();
    assert!(reason(&err).contains("is a directory"), "{err}");
}

#[test]
fn unusable_private_key_types_are_named() {
    let dir = TempDir::new().unwrap();
    let ed = PKey::generate_ed25519().unwrap();
    let err = load(&write(
        &dir,
        "ed.pem",
        &ed.private_key_to_pem_pkcs8().unwrap(),
    ))
    .unwrap_err();
    assert!(
        reason(&err).starts_with("ed25519 keys are not supported"),
        "{err}"
    );

    let dsa = PKey::from_dsa(Dsa::generate(1024).unwrap()).unwrap();
    let err = load(&write(
        &dir,
        "dsa.pem",
        &dsa.private_key_to_pem_pkcs8().unwrap(),
    ))
    .unwrap_err();
    assert!(
        reason(&err).starts_with("DSA keys are not supported"),
        "{err}"
    );

    let k1 = PKey::from_ec_key(ec_key(Nid::SECP256K1)).unwrap();
    let err = load(&write(
        &dir,
        "k1.pem",
        &k1.private_key_to_pem_pkcs8().unwrap(),
    ))
    .unwrap_err();
    assert!(
        reason(&err).starts_with("EC secp256k1 keys are not supported"),
        "{err}"
    );

    let okp = br#"{"kty":"OKP","crv":"X25519","x":"AAAA","d":"AAAA"}"#;
    let err = load(&write(&dir, "x.jwk", okp)).unwrap_err();
    assert!(
        reason(&err).starts_with("X25519 keys are not supported"),
        "{err}"
    );
}

#[test]
fn inconsistent_private_jwk_is_refused() {
    let dir = TempDir::new().unwrap();
    let ec = ec_key(Nid::X9_62_PRIME256V1);
    let other = ec_key(Nid::X9_62_PRIME256V1);
    let mut jwk: serde_json::Value =
        serde_json::from_str(&ec_jwk(&ec, "P-256", None, true)).unwrap();
    jwk["d"] = b64(&other.private_key().to_vec_padded(32).unwrap()).into();
    let err = load(&write(&dir, "bad.jwk", jwk.to_string().as_bytes())).unwrap_err();
    assert!(reason(&err).contains("inconsistent"), "{err}");
}

// ---- recipients ----

#[test]
fn recipient_public_key_in_every_form() {
    let dir = TempDir::new().unwrap();
    let pkey = rsa_pkey();
    let cert = certificate(&pkey);
    let forms: [(&str, Vec<u8>); 6] = [
        ("spki.pem", pkey.public_key_to_pem().unwrap()),
        ("spki.der", pkey.public_key_to_der().unwrap()),
        ("pkcs1.pem", rsa2048().public_key_to_pem_pkcs1().unwrap()),
        ("pkcs1.der", rsa2048().public_key_to_der_pkcs1().unwrap()),
        ("cert.pem", cert.to_pem().unwrap()),
        ("cert.der", cert.to_der().unwrap()),
    ];
    for (name, data) in forms {
        let key =
            load_public_key(&write(&dir, name, &data)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(spki(key.pkey()), spki(&pkey), "{name}");
        assert_eq!(key.jwk_alg(), None);
    }
    for nid in CURVES {
        let ec = PKey::from_ec_key(ec_key(nid)).unwrap();
        let key =
            load_public_key(&write(&dir, "ec.pem", &ec.public_key_to_pem().unwrap())).unwrap();
        assert_eq!(spki(key.pkey()), spki(&ec));
        assert!(format!("{key:?}").contains(crv_name(nid)));
    }
}

#[test]
fn public_jwk_with_alg_override() {
    let dir = TempDir::new().unwrap();
    let rsa_pub = {
        let mut v: serde_json::Value =
            serde_json::from_str(&rsa_jwk(rsa2048(), None, false)).unwrap();
        let o = v.as_object_mut().unwrap();
        for m in ["d", "p", "q"] {
            o.remove(m);
        }
        v
    };
    for alg in JWE_RSA_ALGS {
        let mut v = rsa_pub.clone();
        v["alg"] = alg.into();
        let key = load_public_key(&write(&dir, "rsa.jwk", v.to_string().as_bytes())).unwrap();
        assert_eq!(key.jwk_alg(), Some(alg));
        assert_eq!(spki(key.pkey()), spki(&rsa_pkey()));
    }
    let key = load_public_key(&write(&dir, "rsa.jwk", rsa_pub.to_string().as_bytes())).unwrap();
    assert_eq!(key.jwk_alg(), None);

    for nid in CURVES {
        let ec = ec_key(nid);
        for alg in JWE_EC_ALGS {
            let jwk = ec_jwk(&ec, crv_name(nid), Some(alg), false);
            let key = load_public_key(&write(&dir, "ec.jwk", jwk.as_bytes())).unwrap();
            assert_eq!(key.jwk_alg(), Some(alg));
            assert_eq!(
                spki(key.pkey()),
                spki(&PKey::from_ec_key(ec.clone()).unwrap())
            );
        }
    }
}

#[test]
fn public_jwk_alg_must_fit_the_key_type() {
    let dir = TempDir::new().unwrap();
    let ec = ec_key(Nid::X9_62_PRIME256V1);
    for alg in ["RSA-OAEP", "dir", "A256KW", "ES256"] {
        let jwk = ec_jwk(&ec, "P-256", Some(alg), false);
        let err = load_public_key(&write(&dir, "ec.jwk", jwk.as_bytes())).unwrap_err();
        assert!(reason(&err).contains("ECDH-ES+A256KW"), "{alg}: {err}");
    }
    let mut v: serde_json::Value = serde_json::from_str(&rsa_jwk(rsa2048(), None, false)).unwrap();
    let o = v.as_object_mut().unwrap();
    for m in ["d", "p", "q"] {
        o.remove(m);
    }
    v["alg"] = "ECDH-ES+A256KW".into();
    let err = load_public_key(&write(&dir, "rsa.jwk", v.to_string().as_bytes())).unwrap_err();
    assert!(reason(&err).contains("RSA-OAEP, RSA-OAEP-256"), "{err}");
}

#[test]
fn private_key_given_as_recipient() {
    let dir = TempDir::new().unwrap();
    let pkey = rsa_pkey();
    let forms: [(&str, Vec<u8>); 5] = [
        ("k8.pem", pkey.private_key_to_pem_pkcs8().unwrap()),
        ("k1.pem", rsa2048().private_key_to_pem().unwrap()),
        ("k8.der", pkey.private_key_to_pkcs8().unwrap()),
        (
            "enc.der",
            pkey.private_key_to_pkcs8_passphrase(Cipher::aes_256_cbc(), PW)
                .unwrap(),
        ),
        ("k.jwk", rsa_jwk(rsa2048(), None, true).into_bytes()),
    ];
    for (name, data) in forms {
        let path = write(&dir, name, &data);
        let err = load_public_key(&path).unwrap_err();
        let r = reason(&err);
        assert!(r.contains("is a private key"), "{name}: {err}");
        assert!(
            r.contains("openssl pkey -in") && r.contains("-pubout"),
            "{name}: {err}"
        );
    }
}

#[test]
fn small_rsa_recipient_is_refused() {
    let dir = TempDir::new().unwrap();
    let small = PKey::from_rsa(Rsa::generate(1024).unwrap()).unwrap();
    let err = load_public_key(&write(
        &dir,
        "small.pem",
        &small.public_key_to_pem().unwrap(),
    ))
    .unwrap_err();
    assert!(
        reason(&err).contains("RSA key of 1024 bits is too weak"),
        "{err}"
    );
}

#[test]
fn unusable_or_garbage_recipients_are_refused() {
    let dir = TempDir::new().unwrap();
    let k1 = PKey::from_ec_key(ec_key(Nid::SECP256K1)).unwrap();
    let err =
        load_public_key(&write(&dir, "k1.pem", &k1.public_key_to_pem().unwrap())).unwrap_err();
    assert!(
        reason(&err).starts_with("EC secp256k1 keys are not supported"),
        "{err}"
    );

    let ed = PKey::generate_ed25519().unwrap();
    let err =
        load_public_key(&write(&dir, "ed.pem", &ed.public_key_to_pem().unwrap())).unwrap_err();
    assert!(
        reason(&err).starts_with("ed25519 keys are not supported"),
        "{err}"
    );

    let err = load_public_key(&write(&dir, "junk", b"\x01\x02\x03")).unwrap_err();
    assert!(reason(&err).starts_with("not a public key"), "{err}");

    let err = load_public_key(&dir.path().join("none.pem")).unwrap_err();
    assert!(
        err.to_string()
            .contains("none.pem: cannot read the key file: no such file"),
        "{err}"
    );
}

// --- sorting `--key` files (ocicrypt `processPrivateKeyFiles`) ---

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/crypto")
        .join(path)
}

#[test]
fn key_files_are_classified() {
    let dir = TempDir::new().unwrap();
    let pkey = rsa_pkey();
    let key_pem = pkey.private_key_to_pem_pkcs8().unwrap();
    let cert = certificate(&pkey);

    let k = write(&dir, "k.pem", &key_pem);
    assert!(matches!(
        load_decryption_key(k.to_str().unwrap()).unwrap(),
        DecryptionKey::Private { ref certificates, .. } if certificates.is_empty()
    ));
    // A certificate (PEM or DER) is sorted as a certificate, not refused.
    for (name, bytes) in [
        ("c.pem", cert.to_pem().unwrap()),
        ("c.der", cert.to_der().unwrap()),
    ] {
        let c = write(&dir, name, &bytes);
        let DecryptionKey::Certificates(certs) = load_decryption_key(c.to_str().unwrap()).unwrap()
        else {
            panic!("{name} is not sorted as a certificate");
        };
        assert_eq!(certs.len(), 1);
        assert_eq!(certs[0].subject(), "CN=rrun test");
    }
    // Key and certificate in one PEM file: both are kept.
    let mut both = key_pem.clone();
    both.extend_from_slice(&cert.to_pem().unwrap());
    let b = write(&dir, "both.pem", &both);
    let DecryptionKey::Private { key, certificates } =
        load_decryption_key(b.to_str().unwrap()).unwrap()
    else {
        panic!("not a private key");
    };
    assert_same(&key, &pkey);
    assert_eq!(certificates.len(), 1);
    // gpg secret keyrings, binary and armored with a passphrase.
    let gpg = fixture("pgp/fixture.sec.gpg");
    assert!(matches!(
        load_decryption_key(gpg.to_str().unwrap()).unwrap(),
        DecryptionKey::Gpg(_)
    ));
    let asc = format!(
        "{}:pass=fixture pass",
        fixture("pgp/second.sec.asc").display()
    );
    assert!(matches!(
        load_decryption_key(&asc).unwrap(),
        DecryptionKey::Gpg(_)
    ));
}

#[test]
fn unknown_key_files_are_an_error_not_ignored() {
    let dir = TempDir::new().unwrap();
    for (name, bytes, want) in [
        (
            "junk.bin",
            &b"\x01\x02\x03 not a key"[..],
            "not a key file rrun knows",
        ),
        ("empty", &b""[..], "file is empty"),
        (
            "text.txt",
            &b"hello world\n"[..],
            "gpg secret keyring or an x509",
        ),
    ] {
        let p = write(&dir, name, bytes);
        let err = load_decryption_key(p.to_str().unwrap()).unwrap_err();
        assert!(reason(&err).contains(want), "{name}: {err}");
    }
    // A gpg public keyring says how to get the secret one.
    let err = load_decryption_key(fixture("pgp/pubring.gpg").to_str().unwrap()).unwrap_err();
    assert!(reason(&err).contains("gpg --export-secret-keys"), "{err}");
}

#[test]
fn pkcs7_recipient_certificates_load_from_pem_and_der() {
    let dir = TempDir::new().unwrap();
    let cert = certificate(&rsa_pkey());
    for (name, bytes) in [
        ("c.pem", cert.to_pem().unwrap()),
        ("c.der", cert.to_der().unwrap()),
    ] {
        let p = write(&dir, name, &bytes);
        let c = load_certificate(&p).unwrap();
        assert!(format!("{c:?}").contains("RSA-2048"), "{c:?}");
    }
    let p = write(&dir, "pub.pem", &rsa_pkey().public_key_to_pem().unwrap());
    let err = load_certificate(&p).unwrap_err();
    assert!(reason(&err).contains("is not an x509 certificate"), "{err}");
}
