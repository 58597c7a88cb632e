//! The image module against the real ocicrypt crypto and skopeo: rrun encrypts and skopeo
//! decrypts, skopeo encrypts and rrun decrypts (layout and oci-archive, including a layer
//! skopeo recompressed while encrypting), recipients added, wrong keys and a swapped HMAC
//! stopped with nothing written.

use std::path::Path;
use std::process::Command;

use crate::crypto::{CryptoError, DecryptConfig, EncryptConfig, ANN_PUBOPTS};
use crate::image::manifest::{parse_node, Node};
use crate::image::media_type::*;
use crate::image::stage::Stage;
use crate::image::testutil::{layer, skopeo, snapshot, write_image};
use crate::image::transport::{put_entry, resolve_in};
use crate::image::*;

fn sh(cmd: &str) {
    let ok = Command::new("sh").arg("-c").arg(cmd).status().unwrap();
    assert!(ok.success(), "{cmd}");
}

fn layer_digests(image: &ImageRef) -> Vec<String> {
    layer_info(image, &LayerFilter::default())
        .unwrap()
        .into_iter()
        .map(|r| r.digest)
        .collect()
}

/// Keys: rsa.pem/rsa.pub (PKCS#8), ec.pem (SEC1, which skopeo refuses), ec8.pem (PKCS#8).
fn keys(dir: &Path) {
    sh(&format!(
        "cd {} && openssl genrsa -out rsa.pem 2048 2>/dev/null && openssl pkey -in rsa.pem -pubout -out rsa.pub \
         && openssl ecparam -name prime256v1 -genkey -noout -out ec.pem && openssl pkey -in ec.pem -pubout -out ec.pub \
         && openssl pkey -in ec.pem -out ec8.pem && chmod 600 rsa.pem ec.pem ec8.pem",
        dir.display()
    ));
}

#[test]
fn real_crypto_round_trips_with_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    keys(d);
    let key = |n: &str| d.join(n).display().to_string();
    let l = d.join("L");
    let plain_desc = write_image(
        &l,
        "plain",
        &[
            layer(
                OCI_LAYER_GZIP,
                &[("bin/sh", b"#!busybox"), ("big", &vec![7u8; 3_000_000])],
            ),
            layer(OCI_LAYER_TAR, &[("etc/motd", b"hello")]),
        ],
        false,
    );
    let r = |tag: &str| -> ImageRef { format!("oci:{}:{tag}", l.display()).parse().unwrap() };
    let s_dir = d.join("S");
    let s = |tag: &str| -> ImageRef { format!("oci:{}:{tag}", s_dir.display()).parse().unwrap() };
    let all = LayerFilter::default();
    let dc = |k: &str| DecryptConfig::from_specs(&[key(k)]).unwrap();
    let ec = |pubkey: &str, opener: DecryptConfig| {
        EncryptConfig::from_specs(&[format!("jwe:{}", key(pubkey))], opener).unwrap()
    };

    // rrun encrypts, skopeo and rrun decrypt.
    let sum = encrypt_image(
        &r("plain"),
        &r("enc"),
        &ec("rsa.pub", DecryptConfig::default()),
        &all,
    )
    .unwrap();
    assert_eq!(sum.layers_changed, 2);
    for row in layer_info(&r("enc"), &all).unwrap() {
        assert_eq!(row.encryption, vec!["jwe".to_string()]);
        assert_eq!(row.recipients, vec!["[jwe]".to_string()]);
    }
    skopeo(&[
        "copy",
        "--decryption-key",
        &key("rsa.pem"),
        &r("enc").to_string(),
        &s("dec").to_string(),
    ]);
    assert_eq!(layer_digests(&s("dec")), layer_digests(&r("plain")));
    let sum = decrypt_image(&r("enc"), &r("dec"), &dc("rsa.pem"), &all).unwrap();
    assert_eq!(sum.manifest_digest, plain_desc.digest.to_string());

    // A wrong key is stopped at the gate; nothing is written.
    let before = snapshot(&l);
    let err = decrypt_image(&r("enc"), &r("x"), &dc("ec.pem"), &all).unwrap_err();
    assert!(
        matches!(err, ImageError::Crypto(CryptoError::NoKeyForLayer { .. })),
        "{err}"
    );
    assert_eq!(snapshot(&l), before);

    // Adding a recipient keeps the blobs; the new key opens it in rrun and skopeo.
    encrypt_image(&r("enc"), &r("enc2"), &ec("ec.pub", dc("rsa.pem")), &all).unwrap();
    assert_eq!(layer_digests(&r("enc2")), layer_digests(&r("enc")));
    let sum = decrypt_image(&r("enc2"), &r("dec2"), &dc("ec.pem"), &all).unwrap();
    assert_eq!(sum.manifest_digest, plain_desc.digest.to_string());
    skopeo(&[
        "copy",
        "--decryption-key",
        &key("ec8.pem"),
        &r("enc2").to_string(),
        &s("dec2").to_string(),
    ]);
    let err = encrypt_image(
        &r("enc"),
        &r("enc3"),
        &ec("ec.pub", DecryptConfig::default()),
        &all,
    )
    .unwrap_err();
    assert!(matches!(err, ImageError::AlreadyEncrypted { .. }), "{err}");

    // skopeo encrypts the top layer into an oci-archive; it gzips the tar layer on the way
    // and records the digest of the uncompressed source, which rrun accepts by diff_id.
    let archive = d.join("sk.tar");
    let ar: ImageRef = format!("oci-archive:{}:sk", archive.display())
        .parse()
        .unwrap();
    skopeo(&[
        "copy",
        "--encryption-key",
        &format!("jwe:{}", key("ec.pub")),
        "--encrypt-layer",
        "-1",
        &r("plain").to_string(),
        &ar.to_string(),
    ]);
    let rows = layer_info(&ar, &all).unwrap();
    assert!(rows[0].encryption.is_empty());
    assert_eq!(rows[1].encryption, vec!["jwe".to_string()]);
    let sum = decrypt_image(&ar, &r("from-skopeo"), &dc("ec.pem"), &all).unwrap();
    assert_eq!(sum.layers_changed, 1);
    skopeo(&[
        "copy",
        "--decryption-key",
        &key("ec8.pem"),
        &ar.to_string(),
        &s("sk").to_string(),
    ]);
    assert_eq!(layer_digests(&s("sk")), layer_digests(&r("from-skopeo")));
}

#[test]
fn real_crypto_swapped_hmac_is_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    keys(d);
    let l = d.join("L");
    write_image(
        &l,
        "plain",
        &[
            layer(OCI_LAYER_GZIP, &[("a", b"first layer")]),
            layer(OCI_LAYER_GZIP, &[("b", b"second layer")]),
        ],
        false,
    );
    let r = |tag: &str| -> ImageRef { format!("oci:{}:{tag}", l.display()).parse().unwrap() };
    let ec = EncryptConfig::from_specs(
        &[format!("jwe:{}", d.join("rsa.pub").display())],
        DecryptConfig::default(),
    )
    .unwrap();
    encrypt_image(&r("plain"), &r("enc"), &ec, &LayerFilter::default()).unwrap();

    // Give layer 0 the pubopts (HMAC) of layer 1 and store that manifest as "doctored".
    let layout = layout::Layout::open(&l).unwrap();
    let desc = resolve_in(&layout.read_index().unwrap(), "x", Some("enc")).unwrap();
    let raw = layout.read_blob(&desc, 1 << 20, "m").unwrap();
    let Node::Manifest(mut m) = parse_node(&raw, &desc).unwrap() else {
        panic!("index")
    };
    let other = m.layers[1].annotation(ANN_PUBOPTS).unwrap().to_string();
    let mut ann = m.layers[0].annotations();
    ann.insert(ANN_PUBOPTS.into(), other);
    m.layers[0].set_annotations(ann);
    let mut stage = Stage::open_or_create(&l).unwrap();
    let (digest, size) = stage.put_bytes(&serde_json::to_vec(&*m).unwrap()).unwrap();
    stage
        .commit(|mut index| {
            put_entry(
                &mut index,
                manifest::Descriptor::new(OCI_MANIFEST, digest, size),
                Some("doctored"),
            );
            index
        })
        .unwrap();

    let before = snapshot(&l);
    let dc = DecryptConfig::from_specs(&[d.join("rsa.pem").display().to_string()]).unwrap();
    let err = decrypt_image(&r("doctored"), &r("dec"), &dc, &LayerFilter::default()).unwrap_err();
    assert!(
        matches!(err, ImageError::Crypto(CryptoError::HmacMismatch { .. })),
        "{err}"
    );
    assert_eq!(snapshot(&l), before);
}
