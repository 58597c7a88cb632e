//! Tests of the pgp wrapper on fixtures made by the real gpg and skopeo
//! (`tests/data/crypto/pgp/`, see its README) and on the shared ocicrypt samples.

use std::path::{Path, PathBuf};

use super::*;
use crate::crypto::options::PrivateOptions;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/crypto/pgp")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(data(name)).unwrap()
}

fn keyring() -> PublicKeyring {
    PublicKeyring::parse(&read("pubring.gpg"), "pubring.gpg").unwrap()
}

fn fixture_keys() -> GpgSecretKeys {
    GpgSecretKeys::parse(&read("fixture.sec.gpg"), None, &data("fixture.sec.gpg")).unwrap()
}

fn second_keys() -> GpgSecretKeys {
    GpgSecretKeys::parse(
        &read("second.sec.asc"),
        Some(b"fixture pass"),
        &data("second.sec.asc"),
    )
    .unwrap()
}

fn plain_digest() -> String {
    String::from_utf8(read("plain-layer-digest.txt"))
        .unwrap()
        .trim()
        .to_string()
}

/// Key ids of the fixture keys (tests/data/crypto/pgp/keys.txt).
const FIXTURE_PRIMARY: u64 = 0x0200_ccf0_1deb_2d2b;
const FIXTURE_SUB: u64 = 0xe750_b6f8_bf8b_159c;
const SECOND_SUB: u64 = 0x7c9d_0761_028c_97c6;

#[test]
fn skopeo_message_for_one_recipient_decrypts_to_the_private_options() {
    let blob = read("skopeo-one.pgp.bin");
    assert_eq!(recipient_key_ids(&blob).unwrap(), vec![FIXTURE_SUB]);
    let keys = fixture_keys();
    let plain = decrypt(&[&keys], &blob).unwrap();
    let opts = PrivateOptions::from_json(&plain).unwrap();
    assert_eq!(opts.digest, plain_digest());
}

#[test]
fn skopeo_message_for_two_recipients_opens_with_either_key() {
    let blob = read("skopeo-two.pgp.bin");
    assert_eq!(
        recipient_key_ids(&blob).unwrap(),
        vec![FIXTURE_SUB, SECOND_SUB]
    );
    for keys in [fixture_keys(), second_keys()] {
        let plain = decrypt(&[&keys], &blob).unwrap();
        assert_eq!(
            PrivateOptions::from_json(&plain).unwrap().digest,
            plain_digest()
        );
    }
}

#[test]
fn the_armored_protected_keyring_needs_its_passphrase() {
    let text = read("second.sec.asc");
    let path = data("second.sec.asc");
    let err = GpgSecretKeys::parse(&text, None, &path).unwrap_err();
    assert!(matches!(err, CryptoError::MissingPassword { .. }), "{err}");
    let err = GpgSecretKeys::parse(&text, Some(b"wrong"), &path).unwrap_err();
    assert!(matches!(err, CryptoError::WrongPassword { .. }), "{err}");
    let keys = second_keys();
    // The RSA primary key (flagged for signing) is kept too: decryption is lenient.
    assert!(keys.key_ids().contains(&SECOND_SUB), "{keys:?}");
    assert_eq!(keys.user_ids(), ["Second Fixture <second@example.invalid>"]);
    // Debug shows key ids, never secrets.
    let shown = format!("{keys:?}");
    assert!(shown.contains("0x7c9d0761028c97c6"), "{shown}");
}

#[test]
fn the_wrong_key_gives_no_key_and_names_the_recipients() {
    let blob = read("skopeo-one.pgp.bin");
    let err = decrypt(&[&second_keys()], &blob).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, CryptoError::NoKeyForLayer { .. }), "{text}");
    assert!(text.contains("0xe750b6f8bf8b159c"), "{text}");
    let err = decrypt(&[], &blob).unwrap_err();
    assert!(err.to_string().contains("no gpg secret keyring"), "{err}");
}

#[test]
fn recipients_resolve_by_email_name_and_key_id_like_ocicrypt() {
    let ring = keyring();
    assert_eq!(ring.len(), 2);
    for query in [
        "fixture@example.invalid",
        "FIXTURE@example.invalid",
        "rrun fixture",
        "rrun fixture <fixture@example.invalid>",
        "0x0200CCF01DEB2D2B",
        "0200ccf01deb2d2b",
        "E750B6F8BF8B159C",
    ] {
        let r = ring.resolve(&[query]).unwrap();
        assert_eq!(r.len(), 1, "{query}");
        // The encryption subkey is chosen, not the signing primary key.
        assert_eq!(r[0].key_id(), FIXTURE_SUB, "{query}");
        assert_eq!(r[0].user_id(), "rrun fixture <fixture@example.invalid>");
    }
    // The same key named twice is one recipient.
    let r = ring
        .resolve(&["fixture@example.invalid", "rrun fixture"])
        .unwrap();
    assert_eq!(r.len(), 1);
    // A substring is not a match (ocicrypt compares whole names and emails).
    let err = ring
        .resolve(&["fixture", "nobody@example.invalid"])
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("pgp:fixture, pgp:nobody@example.invalid"),
        "{text}"
    );
    assert!(text.contains("gpg --import"), "{text}");
    assert_eq!(
        ring.email_for_key_id(SECOND_SUB).as_deref(),
        Some("second@example.invalid")
    );
    assert_eq!(
        ring.email_for_key_id(FIXTURE_PRIMARY).as_deref(),
        Some("fixture@example.invalid")
    );
    assert_eq!(ring.email_for_key_id(1), None);
}

#[test]
fn round_trip_to_several_recipients_each_key_opens_it() {
    let ring = keyring();
    let recipients = ring
        .resolve(&["fixture@example.invalid", "second@example.invalid"])
        .unwrap();
    let refs: Vec<&PgpRecipient> = recipients.iter().collect();
    let msg = encrypt(&refs, b"{\"symkey\":\"secret\"}").unwrap();
    assert_eq!(
        recipient_key_ids(&msg).unwrap(),
        vec![FIXTURE_SUB, SECOND_SUB]
    );
    for keys in [fixture_keys(), second_keys()] {
        assert_eq!(
            decrypt(&[&keys], &msg).unwrap().as_slice(),
            b"{\"symkey\":\"secret\"}"
        );
    }
    // The layout ocicrypt writes: PKESKs, then one SEIPD v1 (no compression, no signature).
    let packets = packet::read_all(&msg).unwrap();
    let tags: Vec<u8> = packets.iter().map(|p| p.tag).collect();
    assert_eq!(tags, vec![tag::PKESK, tag::PKESK, tag::SEIPD]);
    assert_eq!(packets[2].body[0], 1);
    // Session key algorithm AES-256, recovered through the fixture key.
    let m = message::parse(&msg).unwrap();
    let sk = fixture_keys();
    let sub = sk
        .keys
        .iter()
        .find(|k| k.public.key_id == FIXTURE_SUB)
        .unwrap();
    let block = sub
        .decrypt_session(m.pkesks[0].algo, &m.pkesks[0].data)
        .unwrap();
    assert_eq!(block[0], 9);
    assert_eq!(block.len(), 1 + 32 + 2);
}

#[test]
fn an_altered_message_is_refused_as_altered() {
    let ring = keyring();
    let r = ring.resolve(&["fixture@example.invalid"]).unwrap();
    let mut msg = encrypt(&[&r[0]], b"{\"symkey\":\"secret\"}").unwrap();
    let at = msg.len() - 5;
    msg[at] ^= 0x40;
    let err = decrypt(&[&fixture_keys()], &msg).unwrap_err();
    assert!(
        matches!(&err, CryptoError::MalformedAnnotation { reason, .. } if reason.contains("altered")),
        "{err}"
    );
}

#[test]
fn malformed_messages_are_malformed_annotations() {
    let good = read("skopeo-one.pgp.bin");
    let keys = fixture_keys();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("not openpgp", b"{\"protected\":\"x\"}".to_vec()),
        ("no recipients", good[271..].to_vec()),
        ("no data", good[..271].to_vec()),
    ];
    for (what, blob) in cases {
        let err = decrypt(&[&keys], &blob).unwrap_err();
        assert!(
            matches!(err, CryptoError::MalformedAnnotation { .. }),
            "{what}: {err}"
        );
    }
    // A symmetrically encrypted packet without MDC is refused outright.
    let mut sed = good[..271].to_vec();
    sed.extend(packet::write(tag::SED, &[0u8; 64]));
    let err = decrypt(&[&keys], &sed).unwrap_err();
    assert!(err.to_string().contains("integrity"), "{err}");
}

#[test]
fn shared_skopeo_samples_name_their_recipient_key() {
    // shared/reference/samples enc-pgp-keys.pgp.bin and enc-multi-recipient-keys.pgp.bin
    // (gpg --list-packets: "pubkey enc packet: version 3, algo 1, keyid FB7E9AC31693F650").
    for name in [
        "sample-enc-pgp-keys.pgp.bin",
        "sample-enc-multi-recipient-keys.pgp.bin",
    ] {
        let blob = read(name);
        assert_eq!(
            recipient_key_ids(&blob).unwrap(),
            vec![0xfb7e_9ac3_1693_f650],
            "{name}"
        );
        let m = message::parse(&blob).unwrap();
        assert_eq!(m.pkesks[0].algo, key::algo::RSA);
        // Partial body lengths (skopeo streams the SEIPD) were joined.
        assert_eq!(m.pkesks.len(), 1);
        let w = PgpKeyWrapper::new(Some(PathBuf::from("/nonexistent-gpg-home")));
        assert_eq!(w.recipients(&blob), vec!["0xfb7e9ac31693f650".to_string()]);
    }
}

#[test]
fn keyring_classification_helpers() {
    assert!(is_openpgp_keyring(&read("fixture.sec.gpg")));
    assert!(is_openpgp_keyring(&read("second.sec.asc")));
    assert!(is_openpgp_keyring(&read("pubring.gpg")));
    assert!(!is_openpgp_keyring(b"-----BEGIN PRIVATE KEY-----\n"));
    assert!(!is_openpgp_keyring(&[0x30, 0x82, 0x01, 0x00]));
    // A public keyring given as a decryption key says how to export the secret one.
    let err = GpgSecretKeys::parse(&read("pubring.gpg"), None, Path::new("pub.gpg")).unwrap_err();
    assert!(err.to_string().contains("--export-secret-keys"), "{err}");
    let err = GpgSecretKeys::parse(&[0x95, 0x05, 1], None, Path::new("x.gpg")).unwrap_err();
    assert!(
        err.to_string().contains("not a valid OpenPGP keyring"),
        "{err}"
    );
}

#[test]
fn wrapper_uses_the_configs() {
    use crate::crypto::config::{DecryptConfig, EncryptConfig, Recipient};
    let ring = keyring();
    let r = ring.resolve(&["second@example.invalid"]).unwrap();
    let ec = EncryptConfig::new(
        r.into_iter().map(Recipient::Pgp).collect(),
        DecryptConfig::default(),
    );
    let w = PgpKeyWrapper::default();
    let blob = w.wrap_keys(&ec, b"opts").unwrap().unwrap();
    let mut dc = DecryptConfig::default();
    assert!(w.no_possible_keys(&dc));
    dc.add(crate::crypto::keys::DecryptionKey::Gpg(second_keys()));
    assert!(!w.no_possible_keys(&dc));
    assert_eq!(w.unwrap_key(&dc, &blob).unwrap().as_slice(), b"opts");
    let empty = EncryptConfig::new(Vec::new(), DecryptConfig::default());
    assert!(w.wrap_keys(&empty, b"opts").unwrap().is_none());
}
