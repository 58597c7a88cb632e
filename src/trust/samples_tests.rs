//! Unit tests on real Notary metadata (tests/data/trust/notary-samples, served by the Debian
//! notary-server): key ids, canonical signing bytes, every signature, and the full client
//! workflow over a filesystem mirror of the server's paths, including refused tampering.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::canonical::canonical_json;
use super::client::sha256_hex;
use super::keys::notary_key_id;
use super::metadata::{parse_envelope, parse_root, parse_targets, Dialect};
use super::verify::verify_threshold;
use super::*;

const GUN: &str = "127.0.0.1:5000/busybox";
/// The samples were made on 2026-11-23; their timestamp expires 2026-12-07T13:46:09Z.
const NOW: &str = "2026-11-24T00:00:00Z";

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/trust/notary-samples")
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(samples().join(rel)).unwrap()
}

/// The exact bytes of the `"signed"` value inside a served document.
fn raw_signed(doc: &[u8]) -> &[u8] {
    let key = b"\"signed\":";
    let start = doc.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    let (mut depth, mut in_str, mut esc) = (0i32, false, false);
    for (i, &c) in doc[start..].iter().enumerate() {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return &doc[start..start + i + 1];
                }
            }
            _ => {}
        }
    }
    panic!("unterminated signed object")
}

const DOCS: &[&str] = &[
    "root.json",
    "2.root.json",
    "timestamp.json",
    "snapshot.json",
    "targets.json",
    "targets/releases.json",
    "targets/alice.json",
    "local-ed25519/root.json",
    "local-ed25519/timestamp.json",
    "local-ed25519/snapshot.json",
    "local-ed25519/targets.json",
    "local-ed25519/targets/releases.json",
    "local-ed25519/targets/alice.json",
];

#[test]
fn olpc_cjson_reproduces_notary_signing_bytes() {
    for doc in DOCS {
        let bytes = read(doc);
        let env = parse_envelope(&bytes, Dialect::Notary, doc).unwrap();
        assert_eq!(
            canonical_json(&env.signed).unwrap(),
            raw_signed(&bytes),
            "{doc}"
        );
        assert_eq!(env.message, raw_signed(&bytes), "{doc}");
    }
}

#[test]
fn key_ids_are_notary_canonical_hashes() {
    let mut n = 0;
    for doc in [
        "root.json",
        "2.root.json",
        "targets.json",
        "local-ed25519/root.json",
        "local-ed25519/targets.json",
    ] {
        let v: serde_json::Value = serde_json::from_slice(&read(doc)).unwrap();
        let keys = v["signed"]["keys"]
            .as_object()
            .or_else(|| v["signed"]["delegations"]["keys"].as_object())
            .unwrap();
        for (id, k) in keys {
            let computed = notary_key_id(
                k["keytype"].as_str().unwrap(),
                k["keyval"]["public"].as_str().unwrap(),
            );
            assert_eq!(&computed, id, "{doc}");
            n += 1;
        }
    }
    assert!(n >= 12, "checked {n} keys");
    // and the parser enforces it: a changed key id is a hard error
    let text = String::from_utf8(read("root.json"))
        .unwrap()
        .replace("452763829dcbd5d8", "452763829dcbd5d9");
    let env = parse_envelope(text.as_bytes(), Dialect::Notary, "root").unwrap();
    assert!(matches!(
        parse_root(Dialect::Notary, &env.signed),
        Err(TrustError::KeyIdMismatch { .. })
    ));
}

#[test]
fn every_sample_signature_verifies() {
    for dir in ["", "local-ed25519/"] {
        let root_bytes = read(&format!("{dir}root.json"));
        let root_env = parse_envelope(&root_bytes, Dialect::Notary, "root").unwrap();
        let root = parse_root(Dialect::Notary, &root_env.signed).unwrap();
        for role in ["root", "timestamp", "snapshot", "targets"] {
            let env =
                parse_envelope(&read(&format!("{dir}{role}.json")), Dialect::Notary, role).unwrap();
            let signers = verify_threshold(
                Dialect::Notary,
                role,
                &env,
                &root.keys,
                root.role(role).unwrap(),
            )
            .unwrap();
            assert!(!signers.is_empty(), "{dir}{role}");
        }
        let targets_env = parse_envelope(
            &read(&format!("{dir}targets.json")),
            Dialect::Notary,
            "targets",
        )
        .unwrap();
        let targets = parse_targets(Dialect::Notary, "targets", &targets_env.signed).unwrap();
        let d = targets.delegations.unwrap();
        for r in &d.roles {
            let file = format!("{dir}{}.json", r.name);
            let env = parse_envelope(&read(&file), Dialect::Notary, &r.name).unwrap();
            let signers =
                verify_threshold(Dialect::Notary, &r.name, &env, &d.keys, &r.keys).unwrap();
            assert!(!signers.is_empty(), "{file}");
        }
        if dir.is_empty() {
            // root v3 carries signatures by the new and the old root key
            assert_eq!(root_env.signatures.len(), 2);
            // targets/releases is signed by alice (ecdsa) and bob (ecdsa-x509)
            let env = parse_envelope(
                &read("targets/releases.json"),
                Dialect::Notary,
                "targets/releases",
            )
            .unwrap();
            let rel = d
                .roles
                .iter()
                .find(|r| r.name == "targets/releases")
                .unwrap();
            let c = verify::count_signatures(Dialect::Notary, &env, &d.keys, &rel.keys);
            assert_eq!(c.valid.len(), 2);
        }
    }
}

#[test]
fn tampered_message_fails_every_role() {
    let root_env = parse_envelope(&read("root.json"), Dialect::Notary, "root").unwrap();
    let root = parse_root(Dialect::Notary, &root_env.signed).unwrap();
    let mut env = parse_envelope(&read("timestamp.json"), Dialect::Notary, "timestamp").unwrap();
    env.message.push(b' ');
    let err = verify_threshold(
        Dialect::Notary,
        "timestamp",
        &env,
        &root.keys,
        root.role("timestamp").unwrap(),
    )
    .unwrap_err();
    assert!(
        matches!(err, TrustError::BadSignature { ref role, .. } if role == "timestamp"),
        "{err}"
    );
}

/// A directory laid out like notary-server's URL space, for `FilesystemTransport`.
pub(crate) struct Mirror {
    pub dir: tempfile::TempDir,
}

impl Mirror {
    pub fn tuf(&self) -> PathBuf {
        self.dir.path().join("v2").join(GUN).join("_trust/tuf")
    }

    pub fn server(&self) -> String {
        format!("file://{}", self.dir.path().display())
    }

    pub fn put(&self, name: &str, bytes: &[u8]) {
        let p = self.tuf().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    /// Serve `bytes` as `role.json` and `role.<sha256>.json`.
    pub fn put_role(&self, role: &str, bytes: &[u8]) {
        self.put(&format!("{role}.json"), bytes);
        self.put(&format!("{role}.{}.json", sha256_hex(bytes)), bytes);
    }

    pub fn from_samples(sub: &str) -> Mirror {
        let m = Mirror {
            dir: tempfile::tempdir().unwrap(),
        };
        for role in [
            "root",
            "timestamp",
            "snapshot",
            "targets",
            "targets/releases",
            "targets/alice",
        ] {
            m.put_role(role, &read(&format!("{sub}{role}.json")));
        }
        if sub.is_empty() {
            m.put("2.root.json", &read("2.root.json"));
            m.put("3.root.json", &read("3.root.json"));
        }
        m
    }
}

fn client(m: &Mirror, cache: &Path, now: &str) -> NotaryClient {
    NotaryClient::new(
        &m.server(),
        cache,
        Arc::new(FilesystemTransport),
        Arc::new(FixedClock::at(now).unwrap()),
    )
}

#[test]
fn resolves_like_docker_prefers_releases() {
    let m = Mirror::from_samples("");
    let cache = tempfile::tempdir().unwrap();
    let t = client(&m, cache.path(), NOW)
        .resolve(GUN, "latest")
        .unwrap();
    assert_eq!(
        t.digest,
        format!("sha256:{}", sha256_hex(&read("manifest-releases.json")))
    );
    assert_eq!(t.size, 76);
    assert_eq!(t.role, "targets/releases");
    assert_eq!(t.signers, vec!["alice".to_string()]);
    t.verify_content(&read("manifest-releases.json")).unwrap();
    assert!(matches!(
        t.verify_content(&read("manifest-targets.json")),
        Err(TrustError::LengthMismatch { .. })
    ));
    let listed = client(&m, cache.path(), NOW).list(GUN).unwrap();
    assert_eq!(listed, vec![t]);
    // the root was pinned on first use
    assert!(cache.path().join(GUN).join("root.json").exists());
    let e = client(&m, cache.path(), NOW)
        .resolve(GUN, "nope")
        .unwrap_err();
    assert!(
        matches!(e, TrustError::UnknownTarget { ref tag, .. } if tag == "nope"),
        "{e}"
    );
}

#[test]
fn ed25519_server_keys_resolve() {
    let m = Mirror::from_samples("local-ed25519/");
    let cache = tempfile::tempdir().unwrap();
    let t = client(&m, cache.path(), NOW)
        .resolve(GUN, "latest")
        .unwrap();
    assert_eq!(t.role, "targets/releases");
    assert_eq!(
        t.digest,
        format!(
            "sha256:{}",
            sha256_hex(&read("local-ed25519/manifest-releases.json"))
        )
    );
}

#[test]
fn pinned_old_root_rotates_to_v3_signed_by_both() {
    let m = Mirror::from_samples("");
    let cache = tempfile::tempdir().unwrap();
    let pin = cache.path().join("pinned-root.json");
    std::fs::write(&pin, read("2.root.json")).unwrap();
    let c = client(&m, &cache.path().join("c"), NOW).with_trust_root(TrustRoot::Pinned(pin));
    let repo = c.update(GUN).unwrap();
    assert_eq!(repo.root.meta.version, 3);
    // root v3 is now the cached root
    let cached = std::fs::read(cache.path().join("c").join(GUN).join("root.json")).unwrap();
    assert_eq!(cached, read("3.root.json"));
}

#[test]
fn freeze_attack_expired_timestamp() {
    let m = Mirror::from_samples("");
    let cache = tempfile::tempdir().unwrap();
    let e = client(&m, cache.path(), "2026-12-08T00:00:00Z")
        .update(GUN)
        .unwrap_err();
    assert!(
        matches!(e, TrustError::Expired { ref role, .. } if role == "timestamp"),
        "{e}"
    );
}

#[test]
fn tampered_timestamp_and_swapped_snapshot_are_refused() {
    let m = Mirror::from_samples("");
    let cache = tempfile::tempdir().unwrap();
    let ts = String::from_utf8(read("timestamp.json"))
        .unwrap()
        .replace("VGJdQdNjTAwz", "VGJdQdNjTAwA");
    m.put("timestamp.json", ts.as_bytes());
    let e = client(&m, cache.path(), NOW).update(GUN).unwrap_err();
    assert!(
        matches!(e, TrustError::BadSignature { ref role, .. } if role == "timestamp"),
        "{e}"
    );

    let m = Mirror::from_samples("");
    // a snapshot file with one byte changed under the name the timestamp gives
    let sum = sha256_hex(&read("snapshot.json"));
    let mut sn = read("snapshot.json");
    let i = sn.iter().rposition(|&b| b == b'6').unwrap();
    sn[i] = b'7';
    m.put(&format!("snapshot.{sum}.json"), &sn);
    let e = client(&m, cache.path(), NOW).update(GUN).unwrap_err();
    assert!(
        matches!(e, TrustError::HashMismatch { ref what, .. } if what == "snapshot"),
        "{e}"
    );
}

#[test]
fn root_certificate_must_name_the_gun() {
    let m = Mirror::from_samples("");
    let cache = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let dir = other.path().join("v2/127.0.0.1:5000/other/_trust/tuf");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(m.tuf().join("root.json"), dir.join("root.json")).unwrap();
    let c = NotaryClient::new(
        &format!("file://{}", other.path().display()),
        cache.path(),
        Arc::new(FilesystemTransport),
        Arc::new(FixedClock::at(NOW).unwrap()),
    );
    let e = c.update("127.0.0.1:5000/other").unwrap_err();
    assert!(
        matches!(e, TrustError::RootCertificate { ref reason, .. } if reason.contains("does not match")),
        "{e}"
    );
}

#[test]
fn an_unsigned_repository_has_no_trust_data() {
    let empty = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let c = NotaryClient::new(
        &format!("file://{}", empty.path().display()),
        cache.path(),
        Arc::new(FilesystemTransport),
        Arc::new(FixedClock::at(NOW).unwrap()),
    );
    let e = c.resolve(GUN, "latest").unwrap_err();
    assert!(
        matches!(e, TrustError::NoTrustData { ref gun, .. } if gun == GUN),
        "{e}"
    );
    assert!(!cache.path().join(GUN).join("root.json").exists());
}
