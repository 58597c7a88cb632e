//! Pull against the in-process mock registry: platform selection in OCI indexes and Docker
//! manifest lists, the key gate (no layer GET
//! before every key is checked), and each fault leaving the store unchanged: wrong digest,
//! malformed or schema1 manifest, unknown media type, corrupted blob, 404, truncated and
//! resumed transfers, transient statuses, and the bearer-token flow with an expired token.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openssl::pkey::PKey;
use openssl::rsa::Rsa;

use super::testserver::{Content, MockRegistry, Reply};
use super::*;
use crate::crypto::config::Recipient;
use crate::crypto::keys::{PrivateKey, PublicKey};
use crate::crypto::layer as crypto_layer;
use crate::crypto::{DecryptConfig, EncryptConfig};
use crate::image::digest::Digest;
use crate::image::error::ImageError;
use crate::image::layout::Layout;
use crate::image::media_type::*;
use crate::image::name::Reference;
use crate::image::platform::Platform;

fn config(os: &str, arch: &str) -> Vec<u8> {
    format!(r#"{{"architecture":"{arch}","os":"{os}","rootfs":{{"type":"layers","diff_ids":[]}}}}"#)
        .into_bytes()
}

fn desc_json(mt: &str, data: &[u8], annotations: Option<&serde_json::Value>) -> serde_json::Value {
    let mut d = serde_json::json!({
        "mediaType": mt,
        "digest": Digest::of_bytes(data).to_string(),
        "size": data.len(),
    });
    if let Some(a) = annotations {
        d["annotations"] = a.clone();
    }
    d
}

/// A manifest of `config` and `layers` (media type, bytes, annotations); blobs go into `c`.
fn image(
    c: &mut Content,
    tag: Option<&str>,
    cfg: &[u8],
    layers: &[(&str, Vec<u8>, Option<serde_json::Value>)],
) -> (Vec<u8>, Digest) {
    c.blob(cfg);
    let layer_descs: Vec<_> = layers
        .iter()
        .map(|(mt, data, ann)| {
            c.blob(data);
            desc_json(mt, data, ann.as_ref())
        })
        .collect();
    let m = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc_json(OCI_CONFIG, cfg, None),
        "layers": layer_descs,
    }))
    .unwrap();
    let d = c.manifest(tag, OCI_MANIFEST, &m);
    (m, d)
}

fn host_config() -> Vec<u8> {
    let h = Platform::host();
    config(&h.os, &h.architecture)
}

fn two_layers() -> Vec<(&'static str, Vec<u8>, Option<serde_json::Value>)> {
    vec![
        (OCI_LAYER_TAR, vec![1u8; 300_000], None),
        (OCI_LAYER_GZIP, b"second layer".to_vec(), None),
    ]
}

fn fast_opts() -> PullOptions<'static> {
    PullOptions {
        client: ClientOptions {
            retry: RetryPolicy {
                attempts: 3,
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(20),
            },
            credentials: CredentialSource::Anonymous,
            ..ClientOptions::default()
        },
        // The mock registry's layers are not tars; unpacking is tested against the real one.
        unpack: Unpack::Skip,
        ..PullOptions::default()
    }
}

fn reference(reg: &MockRegistry, rest: &str) -> Reference {
    format!("{}/{rest}", reg.addr).parse().unwrap()
}

/// The store's index.json, to compare before and after a failure (verified blobs a failed
/// pull stored are kept for the next one, unreferenced).
fn snapshot(root: &Path) -> Option<Vec<u8>> {
    fs::read(root.join("index.json")).ok()
}

/// Every stored blob has the digest it is named by.
fn all_blobs_verify(root: &Path) {
    for e in fs::read_dir(root.join("blobs/sha256")).unwrap().flatten() {
        let data = fs::read(e.path()).unwrap();
        assert_eq!(
            Digest::of_bytes(&data).hex(),
            e.file_name().to_string_lossy()
        );
    }
}

fn blob_gets(reg: &MockRegistry, d: &Digest) -> usize {
    reg.requests(&format!("/blobs/{d}"))
        .iter()
        .filter(|r| r.method == "GET")
        .count()
}

#[test]
fn pulls_an_image_and_names_it_in_the_store() {
    let mut c = Content::default();
    let (_, md) = image(&mut c, Some("1"), &host_config(), &two_layers());
    let reg = MockRegistry::start(c);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let s = pull(&root, &reference(&reg, "app:1"), &fast_opts(), &NoProgress).unwrap();
    assert_eq!(s.manifest_digest, md.to_string());
    assert_eq!((s.layers, s.downloaded, s.already_stored), (2, 2, 0));
    let index = Layout::open(&root).unwrap().read_index().unwrap();
    assert_eq!(index.manifests.len(), 1);
    assert_eq!(
        index.manifests[0].ref_name(),
        Some(format!("{}/app:1", reg.addr).as_str())
    );
    // The image reads back through the same code as every other layout.
    let src = crate::image::reference::ImageRef::Oci {
        path: root.clone(),
        tag: Some(format!("{}/app:1", reg.addr)),
    };
    assert_eq!(
        crate::image::layer_info(&src, &Default::default())
            .unwrap()
            .len(),
        2
    );
    // Pulling again downloads nothing.
    let again = pull(&root, &reference(&reg, "app:1"), &fast_opts(), &NoProgress).unwrap();
    assert_eq!((again.downloaded, again.already_stored), (0, 2));
    assert!(
        fs::read_dir(root.join("tmp/partial"))
            .unwrap()
            .next()
            .is_none(),
        "no partial download is left"
    );
}

#[test]
fn index_platform_is_selected_and_a_missing_one_named() {
    let mut c = Content::default();
    let (amd, amd_d) = image(
        &mut c,
        None,
        &config("linux", "amd64"),
        &[(OCI_LAYER_TAR, b"amd".to_vec(), None)],
    );
    let (arm, arm_d) = image(
        &mut c,
        None,
        &config("linux", "arm64"),
        &[(OCI_LAYER_TAR, b"arm".to_vec(), None)],
    );
    let mut a = desc_json(OCI_MANIFEST, &amd, None);
    a["platform"] = serde_json::json!({"os":"linux","architecture":"amd64"});
    let mut b = desc_json(OCI_MANIFEST, &arm, None);
    b["platform"] = serde_json::json!({"os":"linux","architecture":"arm64","variant":"v8"});
    let index = serde_json::to_vec(
        &serde_json::json!({"schemaVersion":2,"mediaType":OCI_INDEX,"manifests":[a,b]}),
    )
    .unwrap();
    let index_d = c.manifest(Some("multi"), OCI_INDEX, &index);
    let reg = MockRegistry::start(c);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let mut opts = fast_opts();
    opts.platform = Some("linux/arm64".parse().unwrap());
    let s = pull(&root, &reference(&reg, "app:multi"), &opts, &NoProgress).unwrap();
    assert_eq!(s.manifest_digest, arm_d.to_string());
    assert_eq!(s.resolved_digest, index_d.to_string());
    assert_eq!(s.platform, "linux/arm64/v8");
    assert_eq!(blob_gets(&reg, &Digest::of_bytes(b"amd")), 0);
    let entry = &Layout::open(&root).unwrap().read_index().unwrap().manifests[0];
    assert_eq!(entry.digest, arm_d);
    assert_eq!(entry.platform.as_ref().unwrap().architecture, "arm64");

    opts.platform = Some("linux/s390x".parse().unwrap());
    let before = snapshot(&root);
    let err = pull(&root, &reference(&reg, "app:multi"), &opts, &NoProgress).unwrap_err();
    assert!(
        matches!(err, ImageError::NoMatchingPlatform { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("linux/amd64, linux/arm64/v8"),
        "{err}"
    );
    assert_eq!(snapshot(&root), before);
    let _ = amd_d;
}

/// A Docker schema 2 image (Docker config and layer media types); returns the manifest.
fn docker_image(c: &mut Content, cfg: &[u8], layer: &[u8]) -> Vec<u8> {
    c.blob(cfg);
    c.blob(layer);
    let m = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": desc_json(DOCKER_CONFIG, cfg, None),
        "layers": [desc_json(DOCKER_LAYER_GZIP, layer, None)],
    }))
    .unwrap();
    c.manifest(None, DOCKER_MANIFEST, &m);
    m
}

#[test]
fn docker_manifest_list_platform_is_selected_and_the_host_is_the_default() {
    let mut c = Content::default();
    let host = Platform::host();
    let other = if host.architecture == "s390x" {
        "ppc64le"
    } else {
        "s390x"
    };
    let mine = docker_image(&mut c, &config(&host.os, &host.architecture), b"host layer");
    let theirs = docker_image(&mut c, &config("linux", other), b"other layer");
    let mut a = desc_json(DOCKER_MANIFEST, &theirs, None);
    a["platform"] = serde_json::json!({"os": "linux", "architecture": other});
    let mut b = desc_json(DOCKER_MANIFEST, &mine, None);
    b["platform"] = serde_json::json!({"os": host.os, "architecture": host.architecture});
    let list = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST_LIST,
        "manifests": [a, b],
    }))
    .unwrap();
    let list_d = c.manifest(Some("multi"), DOCKER_MANIFEST_LIST, &list);
    let reg = MockRegistry::start(c);
    let tmp = tempfile::tempdir().unwrap();

    // No --platform: the host's entry, not the first one.
    let root = tmp.path().join("host");
    let s = pull(
        &root,
        &reference(&reg, "app:multi"),
        &fast_opts(),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(s.resolved_digest, list_d.to_string());
    assert_eq!(s.manifest_digest, Digest::of_bytes(&mine).to_string());
    assert_eq!(blob_gets(&reg, &Digest::of_bytes(b"other layer")), 0);
    let entry = &Layout::open(&root).unwrap().read_index().unwrap().manifests[0];
    assert_eq!(entry.media_type, DOCKER_MANIFEST);
    assert_eq!(entry.digest, Digest::of_bytes(&mine));
    all_blobs_verify(&root);

    // --platform picks the other one.
    let mut opts = fast_opts();
    opts.platform = Some(format!("linux/{other}").parse().unwrap());
    let root = tmp.path().join("other");
    let s = pull(&root, &reference(&reg, "app:multi"), &opts, &NoProgress).unwrap();
    assert_eq!(s.manifest_digest, Digest::of_bytes(&theirs).to_string());
    assert_eq!(s.platform, format!("linux/{other}"));
    assert_eq!(blob_gets(&reg, &Digest::of_bytes(b"other layer")), 1);
}

#[test]
fn wrong_manifest_digests_are_refused_and_nothing_is_stored() {
    let mut c = Content::default();
    let (_, md) = image(&mut c, Some("1"), &host_config(), &two_layers());
    let reg = MockRegistry::start(c);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    // A registry that lies in Docker-Content-Digest.
    let lie = Digest::of_bytes(b"other").to_string();
    let c2 = reg.content().clone();
    reg.hook(move |req, _| {
        req.path.contains("/manifests/1").then(|| {
            let (mt, bytes) = &c2.manifests["1"];
            Reply::new(200, bytes.clone())
                .with("Content-Type", mt)
                .with("Docker-Content-Digest", &lie)
        })
    });
    let err = pull(&root, &reference(&reg, "app:1"), &fast_opts(), &NoProgress).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert!(!root.exists(), "no store was even created");
    // A pinned digest the registry's bytes do not have.
    let other = Digest::of_bytes(b"pinned");
    let mut c3 = reg.content().clone();
    c3.manifests
        .insert(other.to_string(), c3.manifests[md.as_str()].clone());
    reg.hook(move |req, _| {
        req.path
            .contains("/manifests/")
            .then(|| super::testserver::answer(&c3, req))
    });
    let err = pull(
        &root,
        &reference(&reg, &format!("app@{other}")),
        &fast_opts(),
        &NoProgress,
    )
    .unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert!(!root.exists());
}

#[test]
fn malformed_schema1_and_unknown_media_types_are_refused_before_any_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let mut c = Content::default();
    c.manifest(Some("broken"), OCI_MANIFEST, b"{\"schemaVersion\":2,");
    c.manifest(
        Some("v1"),
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        br#"{"schemaVersion":1,"name":"app","fsLayers":[]}"#,
    );
    image(
        &mut c,
        Some("weird"),
        &host_config(),
        &[
            (OCI_LAYER_TAR, b"x".to_vec(), None),
            (
                "application/vnd.example.layer.v1+bzip3",
                b"y".to_vec(),
                None,
            ),
        ],
    );
    let reg = MockRegistry::start(c);
    let err = pull(
        &root,
        &reference(&reg, "app:broken"),
        &fast_opts(),
        &NoProgress,
    )
    .unwrap_err();
    assert!(matches!(err, ImageError::Malformed { .. }), "{err}");
    let err = pull(&root, &reference(&reg, "app:v1"), &fast_opts(), &NoProgress).unwrap_err();
    assert!(err.to_string().contains("schema1"), "{err}");
    let err = pull(
        &root,
        &reference(&reg, "app:weird"),
        &fast_opts(),
        &NoProgress,
    )
    .unwrap_err();
    assert!(matches!(err, ImageError::UnknownMediaType { .. }), "{err}");
    assert_eq!(blob_gets(&reg, &Digest::of_bytes(b"x")), 0);
    assert!(!root.exists());
}

#[test]
fn corrupted_and_missing_blobs_leave_the_store_unchanged() {
    let mut c = Content::default();
    image(
        &mut c,
        Some("ok"),
        &host_config(),
        &[(OCI_LAYER_TAR, b"base".to_vec(), None)],
    );
    let (_, _) = image(&mut c, Some("1"), &host_config(), &two_layers());
    let bad = Digest::of_bytes(&two_layers()[0].1);
    let reg = MockRegistry::start(c);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    pull(&root, &reference(&reg, "app:ok"), &fast_opts(), &NoProgress).unwrap();
    let before = snapshot(&root);

    // Same length, other bytes.
    reg.content().blobs.get_mut(&bad).unwrap()[7] ^= 0xff;
    let err = pull(&root, &reference(&reg, "app:1"), &fast_opts(), &NoProgress).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert_eq!(snapshot(&root), before);
    assert!(!Layout::open(&root).unwrap().has_blob(&bad));
    all_blobs_verify(&root);
    assert!(
        !crate::image::store::partial_path(&root, &bad).exists(),
        "bad bytes are not kept"
    );

    // Gone from the registry.
    reg.content().blobs.remove(&bad);
    let err = pull(&root, &reference(&reg, "app:1"), &fast_opts(), &NoProgress).unwrap_err();
    assert!(matches!(err, ImageError::RegistryNotFound { .. }), "{err}");
    assert!(err.to_string().contains("BLOB_UNKNOWN"), "{err}");
    assert_eq!(snapshot(&root), before);

    // Longer than declared.
    reg.content().blobs.insert(bad.clone(), vec![1u8; 300_001]);
    let err = pull(&root, &reference(&reg, "app:1"), &fast_opts(), &NoProgress).unwrap_err();
    assert!(matches!(err, ImageError::SizeMismatch { .. }), "{err}");
    assert_eq!(snapshot(&root), before);
}

#[test]
fn truncated_transfers_resume_with_range_and_transient_errors_are_retried() {
    let mut c = Content::default();
    image(&mut c, Some("1"), &host_config(), &two_layers());
    let big = Digest::of_bytes(&two_layers()[0].1);
    let reg = MockRegistry::start(c);
    let c2 = reg.content().clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let n = Arc::clone(&calls);
    let big2 = big.clone();
    reg.hook(move |req, _| {
        if req.path.contains("/manifests/") && n.fetch_add(1, Ordering::SeqCst) < 2 {
            return Some(Reply::new(503, Vec::new()));
        }
        if req.path.ends_with(&format!("/blobs/{big2}")) && req.header("range").is_none() {
            let mut r = super::testserver::answer(&c2, req);
            r.cut_after = Some(100_000);
            return Some(r);
        }
        None
    });
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    pull(&root, &reference(&reg, "app:1"), &fast_opts(), &NoProgress).unwrap();
    let ranges: Vec<String> = reg
        .requests(&format!("/blobs/{big}"))
        .iter()
        .filter_map(|r| r.header("range").map(str::to_string))
        .collect();
    assert_eq!(ranges, vec!["bytes=100000-".to_string()]);
    assert!(Layout::open(&root).unwrap().has_blob(&big));

    // A 429 with Retry-After, then success.
    let mut c = Content::default();
    image(&mut c, Some("1"), &host_config(), &two_layers());
    let reg = MockRegistry::start(c);
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = Arc::clone(&n);
    reg.hook(move |req, _| {
        (req.path.contains("/blobs/") && n2.fetch_add(1, Ordering::SeqCst) == 0)
            .then(|| Reply::new(429, Vec::new()).with("Retry-After", "0"))
    });
    pull(
        &tmp.path().join("s2"),
        &reference(&reg, "app:1"),
        &fast_opts(),
        &NoProgress,
    )
    .unwrap();
}

#[test]
fn a_kept_partial_is_resumed_and_a_bad_one_fetched_again() {
    let mut c = Content::default();
    image(&mut c, Some("1"), &host_config(), &two_layers());
    let data = two_layers()[0].1.clone();
    let big = Digest::of_bytes(&data);
    let reg = MockRegistry::start(c);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let partial = crate::image::store::partial_path(&root, &big);
    fs::create_dir_all(partial.parent().unwrap()).unwrap();
    fs::write(partial, &data[..123_456]).unwrap();
    pull(&root, &reference(&reg, "app:1"), &fast_opts(), &NoProgress).unwrap();
    let ranges: Vec<_> = reg
        .requests(&format!("/blobs/{big}"))
        .iter()
        .filter_map(|r| r.header("range").map(str::to_string))
        .collect();
    assert_eq!(ranges, vec!["bytes=123456-"]);

    // A partial whose bytes are wrong: resumed, fails verification, fetched whole once more.
    let root2 = tmp.path().join("store2");
    let partial = crate::image::store::partial_path(&root2, &big);
    fs::create_dir_all(partial.parent().unwrap()).unwrap();
    fs::write(partial, vec![9u8; 1000]).unwrap();
    pull(&root2, &reference(&reg, "app:1"), &fast_opts(), &NoProgress).unwrap();
    assert!(Layout::open(&root2).unwrap().has_blob(&big));
}

/// An RSA key pair as rrun's key types.
fn rsa_keys() -> (PrivateKey, PublicKey) {
    let rsa = Rsa::generate(2048).unwrap();
    let private = PKey::from_rsa(rsa.clone()).unwrap();
    let public = PKey::public_key_from_pem(&private.public_key_to_pem().unwrap()).unwrap();
    (
        PrivateKey::new(private, "test.pem", None),
        PublicKey::new(public, "test.pub", None),
    )
}

/// An encrypted layer: (ciphertext, annotations JSON).
fn encrypted_layer(plain: &[u8], recipient: PublicKey) -> (Vec<u8>, serde_json::Value) {
    let ec = EncryptConfig::new(vec![Recipient::Jwe(recipient)], DecryptConfig::default());
    let mut out = Vec::new();
    let enc = crypto_layer::encrypt_layer(&ec, Digest::of_bytes(plain).as_str(), plain, &mut out)
        .unwrap();
    (out, serde_json::to_value(&enc.annotations).unwrap())
}

#[test]
fn key_gate_refuses_before_any_layer_request_and_names_every_locked_layer() {
    let (right, right_pub) = rsa_keys();
    let (_, other_pub) = rsa_keys();
    let (wrong, _) = rsa_keys();
    let (ct1, ann1) = encrypted_layer(b"layer one", right_pub);
    let (ct2, ann2) = encrypted_layer(b"layer two", other_pub);
    let mut c = Content::default();
    image(
        &mut c,
        Some("enc"),
        &host_config(),
        &[
            (OCI_LAYER_TAR, b"plain base".to_vec(), None),
            (OCI_LAYER_TAR_ENC, ct1.clone(), Some(ann1.clone())),
            (OCI_LAYER_TAR_ENC, ct2.clone(), Some(ann2)),
        ],
    );
    image(
        &mut c,
        Some("one"),
        &host_config(),
        &[(OCI_LAYER_TAR_ENC, ct1.clone(), Some(ann1))],
    );
    let reg = MockRegistry::start(c);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");

    let wrong_keys = DecryptConfig::new(vec![wrong]);
    let mut opts = fast_opts();
    opts.keys = Some(&wrong_keys);
    let err = pull(&root, &reference(&reg, "app:enc"), &opts, &NoProgress).unwrap_err();
    let ImageError::KeyGate { layers, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(layers.len(), 2);
    assert!(layers.iter().all(|l| l.schemes == ["jwe"]));
    let msg = err.to_string();
    assert!(
        msg.contains(Digest::of_bytes(&ct1).as_str())
            && msg.contains(Digest::of_bytes(&ct2).as_str()),
        "{msg}"
    );
    assert!(msg.contains("nothing was downloaded"), "{msg}");
    for data in [&b"plain base"[..], &ct1, &ct2] {
        assert_eq!(
            blob_gets(&reg, &Digest::of_bytes(data)),
            0,
            "no layer blob was requested"
        );
    }
    assert!(!root.exists(), "nothing stored");

    // The right key opens one layer but not the other: still refused, naming only that one.
    let right_keys = DecryptConfig::new(vec![right]);
    opts.keys = Some(&right_keys);
    let err = pull(&root, &reference(&reg, "app:enc"), &opts, &NoProgress).unwrap_err();
    let ImageError::KeyGate { layers, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0].layer, Digest::of_bytes(&ct2).to_string());
    assert_eq!(blob_gets(&reg, &Digest::of_bytes(&ct1)), 0);

    // The image the key opens completely is pulled (as ciphertext).
    let s = pull(&root, &reference(&reg, "app:one"), &opts, &NoProgress).unwrap();
    assert_eq!((s.encrypted_layers, s.unchecked_ciphertext), (1, false));
    // Without keys, an encrypted image is stored as ciphertext and says so.
    let s = pull(
        &root,
        &reference(&reg, "app:enc"),
        &fast_opts(),
        &NoProgress,
    )
    .unwrap();
    assert_eq!((s.encrypted_layers, s.unchecked_ciphertext), (2, true));
}

#[test]
fn bearer_tokens_are_fetched_refreshed_once_and_then_refused() {
    let mut c = Content::default();
    image(&mut c, Some("1"), &host_config(), &two_layers());
    let reg = MockRegistry::start(c);
    let realm = format!("http://{}/token", reg.addr);
    let issued = Arc::new(AtomicUsize::new(0));
    let accept_from = Arc::new(AtomicUsize::new(2));
    let (i2, a2) = (Arc::clone(&issued), Arc::clone(&accept_from));
    reg.hook(move |req, _| {
        if req.path.starts_with("/token") {
            let n = i2.fetch_add(1, Ordering::SeqCst) + 1;
            assert!(
                req.path.contains("scope=repository%3Aapp%3Apull")
                    || req.path.contains("scope=repository:app:pull"),
                "{}",
                req.path
            );
            assert!(req.path.contains("service=mock"), "{}", req.path);
            return Some(Reply::new(
                200,
                format!(r#"{{"token":"t{n}","expires_in":300}}"#).into_bytes(),
            ));
        }
        let good = a2.load(Ordering::SeqCst);
        let ok = req
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer t"))
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| n >= good);
        (!ok).then(|| {
            Reply::new(
                401,
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#
                    .to_vec(),
            )
            .with(
                "WWW-Authenticate",
                &format!(r#"Bearer realm="{realm}",service="mock",scope="repository:app:pull""#),
            )
        })
    });
    let tmp = tempfile::tempdir().unwrap();
    // Token 1 is refused (expired): one refresh, token 2 works for everything after.
    pull(
        &tmp.path().join("a"),
        &reference(&reg, "app:1"),
        &fast_opts(),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(issued.load(Ordering::SeqCst), 2);
    // Every token refused: one refresh, then a clear error.
    accept_from.store(usize::MAX, Ordering::SeqCst);
    issued.store(0, Ordering::SeqCst);
    let err = pull(
        &tmp.path().join("b"),
        &reference(&reg, "app:1"),
        &fast_opts(),
        &NoProgress,
    )
    .unwrap_err();
    assert!(matches!(err, ImageError::Unauthorized { .. }), "{err}");
    assert!(err.to_string().contains("rrun login"), "{err}");
    assert_eq!(issued.load(Ordering::SeqCst), 2);
    assert!(!tmp.path().join("b").exists());
}

#[test]
fn basic_auth_uses_the_given_credentials_and_refuses_wrong_ones() {
    let mut c = Content::default();
    image(&mut c, Some("1"), &host_config(), &two_layers());
    let reg = MockRegistry::start(c);
    let good = Credentials::new("alice", "secret")
        .basic_header()
        .to_string();
    reg.hook(move |req, _| {
        (req.header("authorization") != Some(good.as_str()))
            .then(|| Reply::new(401, Vec::new()).with("WWW-Authenticate", r#"Basic realm="mock""#))
    });
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = fast_opts();
    opts.client.credentials = CredentialSource::Given(Credentials::new("alice", "secret"));
    pull(
        &tmp.path().join("a"),
        &reference(&reg, "app:1"),
        &opts,
        &NoProgress,
    )
    .unwrap();
    opts.client.credentials = CredentialSource::Given(Credentials::new("alice", "wrong"));
    let err = pull(
        &tmp.path().join("b"),
        &reference(&reg, "app:1"),
        &opts,
        &NoProgress,
    )
    .unwrap_err();
    assert!(matches!(err, ImageError::Unauthorized { .. }), "{err}");
    assert!(
        !err.to_string().contains("wrong"),
        "no password in messages: {err}"
    );
    let client = Client::for_registry(&reg.addr, opts.client.clone()).unwrap();
    assert!(matches!(
        client.check_login(),
        Err(ImageError::LoginFailed { .. })
    ));
    opts.client.credentials = CredentialSource::Given(Credentials::new("alice", "secret"));
    Client::for_registry(&reg.addr, opts.client)
        .unwrap()
        .check_login()
        .unwrap();
}

#[test]
fn an_unreachable_registry_is_a_clear_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let tmp = tempfile::tempdir().unwrap();
    let r: Reference = format!("127.0.0.1:{port}/app:1").parse().unwrap();
    let err = pull(&tmp.path().join("s"), &r, &fast_opts(), &NoProgress).unwrap_err();
    assert!(
        matches!(err, ImageError::RegistryUnreachable { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("is the registry running"), "{err}");
}
