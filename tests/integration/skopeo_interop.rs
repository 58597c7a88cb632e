//! rrun against the real skopeo (containers/ocicrypt): images each one encrypts open with the
//! other, recipients can be added, and every kind of damaged image or bad key is refused
//! with a clear error and nothing written.

use std::fs;
use std::path::Path;

use base64::Engine as _;
use serde_json::Value;

use crate::util::*;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// `skopeo copy -q ARGS... SRC DST`, must succeed.
fn skopeo_copy(args: &[&str], src: &str, dst: &str) {
    let mut all = vec!["copy", "-q"];
    all.extend_from_slice(args);
    all.extend([src, dst]);
    skopeo(all).ok();
}

/// `rrun image encrypt ARGS... SRC DST`.
fn rrun_encrypt(args: &[&str], src: &str, dst: &str) -> Output {
    let mut all = vec!["image", "encrypt"];
    all.extend_from_slice(args);
    all.extend([src, dst]);
    rrun(all)
}

/// `rrun image decrypt ARGS... SRC DST`.
fn rrun_decrypt(args: &[&str], src: &str, dst: &str) -> Output {
    let mut all = vec!["image", "decrypt"];
    all.extend_from_slice(args);
    all.extend([src, dst]);
    rrun(all)
}

/// Check that `out` holds the fixture image `orig` again: same layer digests and media
/// types, same config.
#[track_caller]
fn assert_same_image(out: &Layout, orig: &Layout) {
    assert_eq!(
        out.layer_digests(TAG),
        orig.layer_digests(TAG),
        "decrypted layer digests"
    );
    assert_eq!(
        out.media_types(TAG),
        orig.media_types(TAG),
        "decrypted media types"
    );
    assert_eq!(
        out.manifest(TAG)["config"]["digest"],
        orig.manifest(TAG)["config"]["digest"],
        "config blob unchanged"
    );
    for l in out.layers(TAG) {
        assert!(
            !l.annotations
                .keys()
                .any(|k| k.starts_with("org.opencontainers.image.enc.")),
            "decrypted layer keeps no ocicrypt annotations: {:?}",
            l.annotations
        );
    }
}

/// Check which layers of an encrypted image are encrypted, and that the encrypted ones carry
/// JWE keys and pubopts while the config stays the plain image's.
#[track_caller]
fn assert_encrypted(enc: &Layout, orig: &Layout, which: &[bool]) {
    let layers = enc.layers(TAG);
    let plain = orig.layers(TAG);
    assert_eq!(layers.len(), which.len());
    for (i, (l, p)) in layers.iter().zip(&plain).enumerate() {
        if which[i] {
            assert_eq!(
                l.media_type,
                format!("{}+encrypted", p.media_type),
                "layer {i}"
            );
            assert!(l.annotation(ANN_JWE).is_some(), "layer {i} has {ANN_JWE}");
            assert!(
                l.annotation(ANN_PUBOPTS).is_some(),
                "layer {i} has {ANN_PUBOPTS}"
            );
            assert_eq!(l.size, p.size, "CTR keeps the size of layer {i}");
            assert_ne!(l.digest, p.digest, "layer {i} changed");
        } else {
            assert_eq!(l.media_type, p.media_type, "layer {i} left plain");
            assert_eq!(l.digest, p.digest, "layer {i} left plain");
        }
    }
    assert_eq!(
        enc.manifest(TAG)["config"]["digest"],
        orig.manifest(TAG)["config"]["digest"],
        "config blob unchanged"
    );
}

/// The decoded JWE JSON of layer `idx`.
fn jwe_of(enc: &Layout, idx: usize) -> Value {
    let ann = enc.layers(TAG)[idx]
        .annotation(ANN_JWE)
        .expect("jwe annotation")
        .to_string();
    assert!(
        !ann.contains(','),
        "one JWE blob per layer (ocicrypt writes one): {ann}"
    );
    serde_json::from_slice(&B64.decode(ann).expect("jwe annotation is base64")).expect("JWE JSON")
}

/// The decoded protected header of a JWE.
fn protected_header(jwe: &Value) -> Value {
    let p = jwe["protected"].as_str().expect("protected header");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(p)
        .expect("protected is base64url");
    serde_json::from_slice(&raw).expect("protected header JSON")
}

/// skopeo encrypts the fixture `orig` for `recipients`, rrun decrypts with each of `keys`.
fn skopeo_then_rrun(orig: &Layout, recipients: &[&str], keys: &[&str]) {
    let w = workdir();
    let enc = Layout::new(w.path().join("enc"));
    let args: Vec<&str> = recipients
        .iter()
        .flat_map(|r| ["--encryption-key", r])
        .collect();
    skopeo_copy(&args, &orig.reference(TAG), &enc.reference(TAG));
    for (i, key) in keys.iter().enumerate() {
        let dec = Layout::new(w.path().join(format!("dec{i}")));
        rrun_decrypt(&["--key", key], &enc.reference(TAG), &dec.reference(TAG)).ok();
        assert_same_image(&dec, orig);
    }
}

/// rrun encrypts the fixture `orig` with `rrun_args`, skopeo decrypts with each of `keys`.
fn rrun_then_skopeo(
    w: &Path,
    orig: &Layout,
    rrun_args: &[&str],
    which: &[bool],
    keys: &[&str],
) -> Layout {
    let enc = Layout::new(w.join("enc"));
    rrun_encrypt(rrun_args, &orig.reference(TAG), &enc.reference(TAG)).ok();
    assert_encrypted(&enc, orig, which);
    for (i, key) in keys.iter().enumerate() {
        let dec = Layout::new(w.join(format!("dec{i}")));
        skopeo_copy(
            &["--decryption-key", key],
            &enc.reference(TAG),
            &dec.reference(TAG),
        );
        assert_same_image(&dec, orig);
    }
    enc
}

// ---------------------------------------------------------------------------------------------
// skopeo encrypts, rrun decrypts

#[test]
fn skopeo_rsa_encrypted_opens_with_rrun_pkcs8_and_pkcs1_keys() {
    let fx = fixtures();
    skopeo_then_rrun(
        &fx.image,
        &[&fx.jwe("rsa.pub")],
        &[&fx.key("rsa.pem"), &fx.key("rsa-pkcs1.pem")],
    );
}

/// skopeo encrypts the gzip fixture for the public key `name.pub`, rrun opens it with `key`.
fn skopeo_for_one(name: &str, key: &str) {
    let fx = fixtures();
    skopeo_then_rrun(
        &fx.image,
        &[&fx.jwe(&format!("{name}.pub"))],
        &[&fx.key(key)],
    );
}

#[test]
fn skopeo_ec_p256_encrypted_opens_with_rrun() {
    skopeo_for_one("ec256", "ec256.pem");
}

#[test]
fn skopeo_ec_p384_encrypted_opens_with_rrun() {
    skopeo_for_one("ec384", "ec384.pem");
}

#[test]
fn skopeo_ec_p521_encrypted_opens_with_rrun() {
    skopeo_for_one("ec521", "ec521.pem");
}

#[test]
fn skopeo_sec1_ec_key_is_accepted_by_rrun() {
    // skopeo itself refuses `EC PRIVATE KEY` PEM; rrun accepts it (issue 2 item 5).
    skopeo_for_one("ec256", "ec256-sec1.pem");
    skopeo_for_one("ec521", "ec521-sec1.pem");
}

#[test]
fn skopeo_several_recipients_each_key_opens_with_rrun() {
    let fx = fixtures();
    skopeo_then_rrun(
        &fx.image,
        &[
            &fx.jwe("rsa.pub"),
            &fx.jwe("ec256.pub"),
            &fx.jwe("ec384.pub"),
        ],
        &[
            &fx.key("rsa.pem"),
            &fx.key("ec256.pem"),
            &fx.key("ec384.pem"),
        ],
    );
}

#[test]
fn skopeo_encrypt_layer_0_and_minus_1_open_with_rrun() {
    let fx = fixtures();
    for (sel, which) in [("0", [true, false]), ("-1", [false, true])] {
        let w = workdir();
        let enc = Layout::new(w.path().join("enc"));
        skopeo_copy(
            &[
                "--encryption-key",
                &fx.jwe("rsa.pub"),
                "--encrypt-layer",
                sel,
            ],
            &fx.image.reference(TAG),
            &enc.reference(TAG),
        );
        let layers = enc.layers(TAG);
        for (i, l) in layers.iter().enumerate() {
            assert_eq!(l.encrypted(), which[i], "--encrypt-layer {sel}: layer {i}");
        }
        let dec = Layout::new(w.path().join("dec"));
        rrun_decrypt(
            &["--key", &fx.key("rsa.pem")],
            &enc.reference(TAG),
            &dec.reference(TAG),
        )
        .ok();
        assert_same_image(&dec, &fx.image);
    }
}

#[test]
fn skopeo_zstd_layers_open_with_rrun() {
    let fx = fixtures();
    assert!(
        fx.zstd
            .media_types(TAG)
            .iter()
            .all(|m| m.ends_with("+zstd")),
        "zstd fixture: {:?}",
        fx.zstd.media_types(TAG)
    );
    skopeo_then_rrun(
        &fx.zstd,
        &[&fx.jwe("rsa.pub"), &fx.jwe("ec384.pub")],
        &[&fx.key("rsa.pem"), &fx.key("ec384.pem")],
    );
}

#[test]
fn skopeo_oci_archive_opens_with_rrun() {
    let fx = fixtures();
    let w = workdir();
    let archive = w.path().join("enc.tar");
    skopeo_copy(
        &["--encryption-key", &fx.jwe("ec256.pub")],
        &fx.image.reference(TAG),
        &oci_archive(&archive, TAG),
    );
    let dec = Layout::new(w.path().join("dec"));
    rrun_decrypt(
        &["--decryption-key", &fx.key("ec256.pem")],
        &oci_archive(&archive, TAG),
        &dec.reference(TAG),
    )
    .ok();
    assert_same_image(&dec, &fx.image);
}

// ---------------------------------------------------------------------------------------------
// rrun encrypts, skopeo decrypts

#[test]
fn rrun_rsa_encrypted_opens_with_skopeo() {
    let fx = fixtures();
    let w = workdir();
    let enc = rrun_then_skopeo(
        w.path(),
        &fx.image,
        &["--recipient", &fx.jwe("rsa.pub")],
        &[true, true],
        &[&fx.key("rsa.pem"), &fx.key("rsa-pkcs1.pem")],
    );
    // One recipient: flattened JWE serialization with RSA-OAEP and A256GCM, as go-jose writes.
    let jwe = jwe_of(&enc, 0);
    assert!(jwe.get("recipients").is_none(), "flattened form: {jwe}");
    assert!(jwe["encrypted_key"].is_string(), "flattened form: {jwe}");
    let hdr = protected_header(&jwe);
    assert_eq!(hdr["alg"], "RSA-OAEP", "{hdr}");
    assert_eq!(hdr["enc"], "A256GCM", "{hdr}");
    let pubopts: Value = serde_json::from_slice(
        &B64.decode(enc.layers(TAG)[0].annotation(ANN_PUBOPTS).unwrap())
            .expect("pubopts is base64"),
    )
    .expect("pubopts JSON");
    assert_eq!(pubopts["cipher"], "AES_256_CTR_HMAC_SHA256", "{pubopts}");
    let hmac = B64
        .decode(pubopts["hmac"].as_str().expect("hmac"))
        .expect("hmac base64");
    assert_eq!(hmac.len(), 32, "HMAC-SHA256 length");
}

fn rrun_ec_opens_with_skopeo(curve: &str, crv: &str) {
    let fx = fixtures();
    let w = workdir();
    let enc = rrun_then_skopeo(
        w.path(),
        &fx.image,
        &["--recipient", &fx.jwe(&format!("{curve}.pub"))],
        &[true, true],
        &[&fx.key(&format!("{curve}.pem"))],
    );
    let hdr = protected_header(&jwe_of(&enc, 0));
    assert_eq!(hdr["alg"], "ECDH-ES+A256KW", "{hdr}");
    assert_eq!(hdr["epk"]["crv"], crv, "{hdr}");
}

#[test]
fn rrun_ec_p256_encrypted_opens_with_skopeo() {
    rrun_ec_opens_with_skopeo("ec256", "P-256");
}

#[test]
fn rrun_ec_p384_encrypted_opens_with_skopeo() {
    rrun_ec_opens_with_skopeo("ec384", "P-384");
}

#[test]
fn rrun_ec_p521_encrypted_opens_with_skopeo() {
    rrun_ec_opens_with_skopeo("ec521", "P-521");
}

#[test]
fn rrun_several_recipients_each_key_opens_with_skopeo() {
    let fx = fixtures();
    let w = workdir();
    let enc = rrun_then_skopeo(
        w.path(),
        &fx.image,
        &[
            "--recipient",
            &fx.jwe("rsa.pub"),
            "--encryption-key",
            &fx.jwe("ec256.pub"),
            "--recipient",
            &fx.jwe("ec521.pub"),
        ],
        &[true, true],
        &[
            &fx.key("rsa.pem"),
            &fx.key("ec256.pem"),
            &fx.key("ec521.pem"),
        ],
    );
    // Several recipients: general serialization, as go-jose writes.
    let jwe = jwe_of(&enc, 1);
    let recipients = jwe["recipients"].as_array().expect("general form");
    assert_eq!(recipients.len(), 3, "{jwe}");
}

#[test]
fn rrun_layer_selections_open_with_skopeo() {
    let fx = fixtures();
    let key = fx.key("rsa.pem");
    let rcpt = fx.jwe("rsa.pub");
    for (args, which) in [
        (vec!["--layer", "0"], [true, false]),
        (vec!["--layer", "-1"], [false, true]),
        (vec!["--layer", "0", "--layer", "-1"], [true, true]),
        (
            vec!["--layer", "1", "--platform", "linux/amd64"],
            [false, true],
        ),
    ] {
        let mut all = vec!["--recipient", rcpt.as_str()];
        all.extend(args);
        let w = workdir();
        rrun_then_skopeo(w.path(), &fx.image, &all, &which, &[&key]);
    }
}

#[test]
fn rrun_zstd_layers_open_with_skopeo() {
    let fx = fixtures();
    let w = workdir();
    let enc = rrun_then_skopeo(
        w.path(),
        &fx.zstd,
        &["--recipient", &fx.jwe("ec384.pub")],
        &[true, true],
        &[&fx.key("ec384.pem")],
    );
    assert!(
        enc.media_types(TAG)
            .iter()
            .all(|m| m == "application/vnd.oci.image.layer.v1.tar+zstd+encrypted"),
        "{:?}",
        enc.media_types(TAG)
    );
}

#[test]
fn rrun_oci_archive_opens_with_skopeo() {
    let fx = fixtures();
    let w = workdir();
    let archive = w.path().join("enc.tar");
    rrun_encrypt(
        &["--recipient", &fx.jwe("rsa.pub")],
        &fx.image.reference(TAG),
        &oci_archive(&archive, TAG),
    )
    .ok();
    let dec = Layout::new(w.path().join("dec"));
    skopeo_copy(
        &["--decryption-key", &fx.key("rsa.pem")],
        &oci_archive(&archive, TAG),
        &dec.reference(TAG),
    );
    assert_same_image(&dec, &fx.image);
}

#[test]
fn rrun_encrypts_docker_schema2_input_as_oci_manifest_that_skopeo_opens() {
    // skopeo's own v2s2 output loses the keys; rrun must write an OCI manifest instead.
    let fx = fixtures();
    let w = workdir();
    let v2 = Layout::new(w.path().join("v2s2"));
    skopeo_copy(
        &["--format", "v2s2"],
        &fx.image.reference(TAG),
        &v2.reference(TAG),
    );
    assert_eq!(
        v2.manifest(TAG)["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let enc = Layout::new(w.path().join("enc"));
    rrun_encrypt(
        &["--recipient", &fx.jwe("rsa.pub")],
        &v2.reference(TAG),
        &enc.reference(TAG),
    )
    .ok();
    let m = enc.manifest(TAG);
    assert_ne!(
        m["mediaType"], "application/vnd.docker.distribution.manifest.v2+json",
        "an encrypted image is written with an OCI manifest: {m}"
    );
    for l in enc.layers(TAG) {
        assert!(
            l.media_type
                .starts_with("application/vnd.oci.image.layer.v1.tar")
                && l.media_type.ends_with("+encrypted"),
            "{}",
            l.media_type
        );
        assert!(l.annotation(ANN_JWE).is_some());
    }
    let dec = Layout::new(w.path().join("dec"));
    skopeo_copy(
        &["--decryption-key", &fx.key("rsa.pem")],
        &enc.reference(TAG),
        &dec.reference(TAG),
    );
    assert_eq!(dec.layer_digests(TAG), v2.layer_digests(TAG));
}

// ---------------------------------------------------------------------------------------------
// Adding recipients

#[test]
fn add_recipient_round_trip_keeps_blob_and_opens_for_new_key_in_rrun_and_skopeo() {
    let fx = fixtures();
    let w = workdir();
    let e1 = Layout::new(w.path().join("e1"));
    let e2 = Layout::new(w.path().join("e2"));
    rrun_encrypt(
        &["--recipient", &fx.jwe("rsa.pub")],
        &fx.image.reference(TAG),
        &e1.reference(TAG),
    )
    .ok();
    rrun_encrypt(
        &[
            "--key",
            &fx.key("rsa.pem"),
            "--recipient",
            &fx.jwe("ec256.pub"),
        ],
        &e1.reference(TAG),
        &e2.reference(TAG),
    )
    .ok();
    assert_eq!(
        e2.layer_digests(TAG),
        e1.layer_digests(TAG),
        "adding a recipient does not re-encrypt the blob"
    );
    for l in e2.layers(TAG) {
        // As ocicrypt does: the new recipient's JWE is appended, comma-separated.
        let blobs: Vec<&str> = l.annotation(ANN_JWE).unwrap().split(',').collect();
        assert_eq!(blobs.len(), 2, "one JWE per recipient set: {blobs:?}");
        for b in blobs {
            let jwe: Value =
                serde_json::from_slice(&B64.decode(b).expect("base64 JWE")).expect("JWE JSON");
            assert!(jwe["protected"].is_string(), "{jwe}");
        }
    }
    let by_rrun = Layout::new(w.path().join("d-rrun"));
    rrun_decrypt(
        &["--key", &fx.key("ec256-sec1.pem")],
        &e2.reference(TAG),
        &by_rrun.reference(TAG),
    )
    .ok();
    assert_same_image(&by_rrun, &fx.image);
    let by_skopeo = Layout::new(w.path().join("d-skopeo"));
    skopeo_copy(
        &["--decryption-key", &fx.key("ec256.pem")],
        &e2.reference(TAG),
        &by_skopeo.reference(TAG),
    );
    assert_same_image(&by_skopeo, &fx.image);
    let by_old = Layout::new(w.path().join("d-old"));
    rrun_decrypt(
        &["--key", &fx.key("rsa.pem")],
        &e2.reference(TAG),
        &by_old.reference(TAG),
    )
    .ok();
    assert_same_image(&by_old, &fx.image);
}

#[test]
fn add_recipient_to_skopeo_encrypted_image_opens_with_skopeo() {
    let fx = fixtures();
    let w = workdir();
    let e1 = Layout::new(w.path().join("e1"));
    let e2 = Layout::new(w.path().join("e2"));
    skopeo_copy(
        &["--encryption-key", &fx.jwe("ec384.pub")],
        &fx.image.reference(TAG),
        &e1.reference(TAG),
    );
    rrun_encrypt(
        &[
            "--key",
            &fx.key("ec384.pem"),
            "--recipient",
            &fx.jwe("rsa2.pub"),
        ],
        &e1.reference(TAG),
        &e2.reference(TAG),
    )
    .ok();
    assert_eq!(e2.layer_digests(TAG), e1.layer_digests(TAG));
    let dec = Layout::new(w.path().join("dec"));
    skopeo_copy(
        &["--decryption-key", &fx.key("rsa2.pem")],
        &e2.reference(TAG),
        &dec.reference(TAG),
    );
    assert_same_image(&dec, &fx.image);
}

#[test]
fn add_recipient_with_a_key_that_does_not_open_the_layer_is_refused() {
    let fx = fixtures();
    let w = workdir();
    let e1 = Layout::new(w.path().join("e1"));
    rrun_encrypt(
        &["--recipient", &fx.jwe("rsa.pub")],
        &fx.image.reference(TAG),
        &e1.reference(TAG),
    )
    .ok();
    let e2 = w.path().join("e2");
    rrun_encrypt(
        &[
            "--key",
            &fx.key("rsa2.pem"),
            "--recipient",
            &fx.jwe("ec256.pub"),
        ],
        &e1.reference(TAG),
        &oci(&e2, TAG),
    )
    .rrun_error(&["key"]);
    assert!(!e2.exists(), "nothing written on error");
}

// ---------------------------------------------------------------------------------------------
// Damaged images and bad keys: a clear error, exit 125, nothing written

/// A private copy of an image encrypted by `who` ("rrun" or "skopeo") for rsa.pub.
fn encrypted_copy(w: &Path, who: &str) -> Layout {
    let fx = fixtures();
    let enc = Layout::new(w.join("enc"));
    match who {
        "skopeo" => skopeo_copy(
            &["--encryption-key", &fx.jwe("rsa.pub")],
            &fx.image.reference(TAG),
            &enc.reference(TAG),
        ),
        _ => {
            rrun_encrypt(
                &["--recipient", &fx.jwe("rsa.pub")],
                &fx.image.reference(TAG),
                &enc.reference(TAG),
            )
            .ok();
        }
    }
    enc
}

/// rrun decrypt of `enc` with `key_args` into a fresh DST must fail with `words` and create
/// nothing; and into an existing layout must leave it byte for byte unchanged.
#[track_caller]
fn refused(w: &Path, enc: &Layout, key_args: &[&str], words: &[&str], any: &[&str]) -> Output {
    let fx = fixtures();
    let fresh = w.join("out-fresh");
    let out = rrun_decrypt(key_args, &enc.reference(TAG), &oci(&fresh, TAG));
    if any.is_empty() {
        out.rrun_error(words);
    } else {
        out.rrun_error_any(words, any);
    }
    assert!(!fresh.exists(), "DST created by a failed decrypt");
    let existing = w.join("out-existing");
    if !existing.exists() {
        copy_tree(&fx.image.dir, &existing);
    }
    let before = snapshot(&existing);
    rrun_decrypt(key_args, &enc.reference(TAG), &oci(&existing, "new")).failed();
    assert_eq!(snapshot(&existing), before, "a failed decrypt changed DST");
    out
}

#[test]
fn flipped_ciphertext_byte_fails_hmac_and_writes_nothing() {
    let fx = fixtures();
    for who in ["rrun", "skopeo"] {
        let w = workdir();
        let enc = encrypted_copy(w.path(), who);
        enc.doctor_layer(TAG, 0, |blob, _| {
            let mid = blob.len() / 2;
            blob[mid] ^= 0x01;
        });
        refused(
            w.path(),
            &enc,
            &["--key", &fx.key("rsa.pem")],
            &["authentication", "hmac"],
            &[],
        );
        // skopeo agrees that the image is damaged
        let out = skopeo([
            "copy",
            "-q",
            "--decryption-key",
            &fx.key("rsa.pem"),
            &enc.reference(TAG),
            &oci(&w.path().join("skopeo-out"), TAG),
        ]);
        out.failed();
        assert!(out.stderr.to_lowercase().contains("hmac"), "{}", out.stderr);
    }
}

#[test]
fn flipped_byte_in_last_block_fails_hmac() {
    let fx = fixtures();
    let w = workdir();
    let enc = encrypted_copy(w.path(), "rrun");
    enc.doctor_layer(TAG, 1, |blob, _| {
        let last = blob.len() - 1;
        blob[last] ^= 0x80;
    });
    refused(
        w.path(),
        &enc,
        &["--key", &fx.key("rsa.pem")],
        &["hmac"],
        &[],
    );
}

#[test]
fn truncated_blob_with_digests_fixed_up_is_refused() {
    let fx = fixtures();
    let w = workdir();
    let enc = encrypted_copy(w.path(), "skopeo");
    enc.doctor_layer(TAG, 0, |blob, _| blob.truncate(blob.len() / 2));
    refused(
        w.path(),
        &enc,
        &["--key", &fx.key("rsa.pem")],
        &[],
        &["hmac", "truncated", "digest"],
    );
}

#[test]
fn truncated_blob_in_store_is_refused() {
    let fx = fixtures();
    let w = workdir();
    let enc = encrypted_copy(w.path(), "rrun");
    enc.clobber_layer_blob(TAG, 0, |blob| blob.truncate(blob.len() - 100));
    refused(
        w.path(),
        &enc,
        &["--key", &fx.key("rsa.pem")],
        &[],
        &["size", "digest", "truncated", "hmac"],
    );
}

#[test]
fn wrong_key_is_refused() {
    let fx = fixtures();
    let w = workdir();
    let enc = encrypted_copy(w.path(), "skopeo");
    let out = refused(
        w.path(),
        &enc,
        &["--key", &fx.key("rsa2.pem")],
        &["key"],
        &[],
    );
    assert!(
        !out.stderr.contains("BEGIN"),
        "key material never printed: {}",
        out.stderr
    );
    // an EC key for an RSA recipient
    refused(
        w.path(),
        &enc,
        &["--key", &fx.key("ec256.pem")],
        &["key"],
        &[],
    );
}

#[test]
fn missing_key_file_is_named() {
    let fx = fixtures();
    let w = workdir();
    let enc = encrypted_copy(w.path(), "rrun");
    let missing = w.path().join("no-such-key.pem");
    refused(
        w.path(),
        &enc,
        &["--key", &missing.to_string_lossy()],
        &["no-such-key.pem"],
        &[],
    );
    let _ = fx;
}

#[test]
fn decrypt_without_any_key_is_refused() {
    let w = workdir();
    let enc = encrypted_copy(w.path(), "rrun");
    let out = rrun_decrypt(&[], &enc.reference(TAG), &oci(&w.path().join("out"), TAG));
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.to_lowercase().contains("key"), "{out:?}");
    assert!(!w.path().join("out").exists());
}

#[test]
fn public_key_given_as_private_key_is_refused() {
    let fx = fixtures();
    let w = workdir();
    let enc = encrypted_copy(w.path(), "rrun");
    refused(
        w.path(),
        &enc,
        &["--key", &fx.key("rsa.pub")],
        &["rsa.pub", "public key"],
        &[],
    );
}

#[test]
fn encrypted_private_keys_open_with_each_password_form() {
    let fx = fixtures();
    let w = workdir();
    let enc = encrypted_copy(w.path(), "skopeo");
    let pwfile = fx.key("password.txt");
    for key in ["rsa-pk8-enc.pem", "rsa-legacy-enc.pem"] {
        let k = fx.key(key);
        for (i, spec) in [
            format!("{k}:pass={KEY_PASSWORD}"),
            format!("{k}:file={pwfile}"),
            format!("{k}:{KEY_PASSWORD}"),
        ]
        .iter()
        .enumerate()
        {
            let dec = Layout::new(w.path().join(format!("dec-{key}-{i}")));
            rrun_decrypt(&["--key", spec], &enc.reference(TAG), &dec.reference(TAG)).ok();
            assert_same_image(&dec, &fx.image);
        }
        let dec = Layout::new(w.path().join(format!("dec-{key}-fd")));
        let spec = format!("{k}:fd=3");
        rrun_with_fd3(
            Path::new(&pwfile),
            [
                "image",
                "decrypt",
                "--key",
                &spec,
                &enc.reference(TAG),
                &dec.reference(TAG),
            ],
        )
        .ok();
        assert_same_image(&dec, &fx.image);
    }
}

#[test]
fn wrong_or_missing_password_is_refused() {
    let fx = fixtures();
    let w = workdir();
    let enc = encrypted_copy(w.path(), "rrun");
    for key in ["rsa-pk8-enc.pem", "rsa-legacy-enc.pem"] {
        let k = fx.key(key);
        refused(
            w.path(),
            &enc,
            &["--key", &format!("{k}:pass=not-the-password")],
            &["wrong password", key],
            &[],
        );
        refused(w.path(), &enc, &["--key", &k], &[key, "encrypted"], &[]);
    }
}

#[test]
fn world_readable_private_key_warns_but_works() {
    let fx = fixtures();
    let w = workdir();
    let enc = encrypted_copy(w.path(), "rrun");
    let key = w.path().join("open-key.pem");
    fs::copy(fx.key("rsa.pem"), &key).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let dec = Layout::new(w.path().join("dec"));
    let out = rrun_decrypt(
        &["--key", &key.to_string_lossy()],
        &enc.reference(TAG),
        &dec.reference(TAG),
    );
    out.ok();
    assert_same_image(&dec, &fx.image);
    let err = out.stderr.to_lowercase();
    assert!(
        err.contains("open-key.pem") && (err.contains("readable") || err.contains("permission")),
        "expected a warning about the world-readable key: {out:?}"
    );
    assert!(!out.stderr.contains("BEGIN"), "no key material printed");
}

#[test]
fn pubopts_not_base64_is_refused() {
    let fx = fixtures();
    let w = workdir();
    let enc = encrypted_copy(w.path(), "rrun");
    enc.doctor_layer(TAG, 0, |_, ann| {
        ann.insert(ANN_PUBOPTS.into(), Value::from("%%% not base64 %%%"));
    });
    refused(
        w.path(),
        &enc,
        &["--key", &fx.key("rsa.pem")],
        &["pubopts"],
        &[],
    );
}

#[test]
fn keys_jwe_garbage_is_refused() {
    let fx = fixtures();
    let data =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/integration/malformed-annotations");
    let broken_jwe = fs::read(data.join("keys.jwe-broken.json")).expect("fixture file");
    for garbage in [
        "@@@ not base64 @@@".to_string(),
        B64.encode(b"garbage, not JSON"),
        B64.encode(&broken_jwe),
    ] {
        let w = workdir();
        let enc = encrypted_copy(w.path(), "skopeo");
        enc.doctor_layer(TAG, 0, |_, ann| {
            ann.insert(ANN_JWE.into(), Value::from(garbage.clone()));
        });
        refused(
            w.path(),
            &enc,
            &["--key", &fx.key("rsa.pem")],
            &[],
            &["jwe", "no key"],
        );
    }
}

#[test]
fn unknown_cipher_in_pubopts_is_refused() {
    let fx = fixtures();
    let w = workdir();
    let enc = encrypted_copy(w.path(), "skopeo");
    enc.doctor_layer(TAG, 1, |_, ann| {
        let old = ann[ANN_PUBOPTS].as_str().unwrap();
        let mut opts: Value = serde_json::from_slice(&B64.decode(old).unwrap()).unwrap();
        opts["cipher"] = Value::from("AES_128_CBC_HMAC_SHA1");
        ann.insert(
            ANN_PUBOPTS.into(),
            Value::from(B64.encode(serde_json::to_vec(&opts).unwrap())),
        );
    });
    refused(
        w.path(),
        &enc,
        &["--key", &fx.key("rsa.pem")],
        &["cipher", "AES_128_CBC_HMAC_SHA1"],
        &[],
    );
}

#[test]
fn hmac_of_another_layer_is_refused() {
    // pubopts swapped between the two layers: the HMAC no longer belongs to the blob.
    let fx = fixtures();
    let w = workdir();
    let enc = encrypted_copy(w.path(), "rrun");
    let other = enc.layers(TAG)[1]
        .annotation(ANN_PUBOPTS)
        .unwrap()
        .to_string();
    enc.doctor_layer(TAG, 0, |_, ann| {
        ann.insert(ANN_PUBOPTS.into(), Value::from(other));
    });
    refused(
        w.path(),
        &enc,
        &["--key", &fx.key("rsa.pem")],
        &["hmac"],
        &[],
    );
}
