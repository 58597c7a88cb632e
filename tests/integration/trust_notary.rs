//! Content trust against the real Notary (Debian `notary`: notary-server + notary-signer + the
//! notary CLI, started per test on free loopback ports): resolution of what the notary CLI
//! published, the notary CLI listing what rrun signed, and attacks refused with typed errors.

use std::path::Path;
use std::sync::Arc;

use chrono::{Duration, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use rrun::trust::keys::{notary_key_from_pem, SigningKey};
use rrun::trust::sign::{publish, sign_envelope};
use rrun::trust::{
    Clock, FixedClock, KeyStore, NotaryClient, NotarySigner, Passphrases, RootSigner, SystemClock,
    Transport, TrustError,
};

use super::trust_util::{self_signed, Mitm, NotaryServer};

const GUN: &str = "127.0.0.1:5000/busybox";

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn client(
    s: &NotaryServer,
    cache: &Path,
    t: Arc<dyn Transport>,
    clock: Arc<dyn Clock>,
) -> NotaryClient {
    NotaryClient::new(&s.url, cache, t, clock)
}

fn http_client(s: &NotaryServer, cache: &Path) -> NotaryClient {
    client(s, cache, Arc::new(s.http()), Arc::new(SystemClock))
}

fn addhash(s: &NotaryServer, gun: &str, tag: &str, content: &[u8], roles: &[&str]) {
    let len = content.len().to_string();
    let hash = sha(content);
    let mut args = vec!["addhash", gun, tag, &len, "--sha256", &hash];
    for r in roles {
        args.extend(["-r", r]);
    }
    s.notary(&args);
    s.notary(&["publish", gun]);
}

fn in_days(d: i64) -> Arc<dyn Clock> {
    Arc::new(FixedClock(Utc::now() + Duration::days(d)))
}

fn signed_of(bytes: &[u8]) -> Value {
    serde_json::from_slice::<Value>(bytes).unwrap()["signed"].clone()
}

fn expect_role<T>(r: rrun::trust::Result<T>, what: &str) -> TrustError {
    match r {
        Ok(_) => panic!("{what}: accepted"),
        Err(e) => e,
    }
}

#[test]
fn notary_peer_cli_published_tags_resolve_like_docker() {
    let s = NotaryServer::start();
    let (targets_manifest, releases_manifest) = (
        b"{\"targets\":\"manifest\"}".to_vec(),
        b"{\"releases\":\"manifest\"}".to_vec(),
    );
    s.init_repo(GUN);
    addhash(&s, GUN, "latest", &targets_manifest, &[]);
    // what `docker trust signer add` + `docker trust sign` produce: targets/releases (alice as a
    // PUBLIC KEY -> "ecdsa", bob as a certificate -> "ecdsa-x509") and targets/alice
    let (alice_key, alice_pub, _) = s.delegation_key("alice");
    let (bob_key, _, bob) = s.delegation_key("bob");
    let bob_crt = s.dir.path().join("client/keys/bob.crt");
    std::fs::write(&bob_crt, self_signed("bob", &bob).to_pem().unwrap()).unwrap();
    s.notary(&[
        "key",
        "import",
        alice_key.to_str().unwrap(),
        "--role",
        "targets/alice",
        "--gun",
        GUN,
    ]);
    s.notary(&[
        "key",
        "import",
        bob_key.to_str().unwrap(),
        "--role",
        "targets/releases",
        "--gun",
        GUN,
    ]);
    s.notary(&[
        "delegation",
        "add",
        GUN,
        "targets/releases",
        alice_pub.to_str().unwrap(),
        bob_crt.to_str().unwrap(),
        "--all-paths",
    ]);
    s.notary(&[
        "delegation",
        "add",
        GUN,
        "targets/alice",
        alice_pub.to_str().unwrap(),
        "--all-paths",
    ]);
    s.notary(&["publish", GUN]);
    addhash(
        &s,
        GUN,
        "latest",
        &releases_manifest,
        &["targets/releases", "targets/alice"],
    );
    addhash(&s, GUN, "v2", &targets_manifest, &[]);

    let cache = tempfile::tempdir().unwrap();
    let c = http_client(&s, cache.path());
    let t = c.resolve(GUN, "latest").unwrap();
    // docker prefers targets/releases; `notary lookup` shows the top-level entry instead
    assert_eq!(t.digest, format!("sha256:{}", sha(&releases_manifest)));
    assert_eq!(t.size, releases_manifest.len() as u64);
    assert_eq!(t.role, "targets/releases");
    assert_eq!(t.signers, vec!["alice".to_string()]);
    t.verify_content(&releases_manifest).unwrap();
    assert!(s
        .notary(&["lookup", GUN, "latest"])
        .contains(&sha(&targets_manifest)));

    let listed = c.list(GUN).unwrap();
    let tags: Vec<(&str, &str)> = listed
        .iter()
        .map(|t| (t.tag.as_str(), t.role.as_str()))
        .collect();
    assert_eq!(
        tags,
        vec![("latest", "targets/releases"), ("v2", "targets")]
    );
    assert_eq!(listed[1].signers, vec!["Repo Admin".to_string()]);

    // warm cache: the same answer, and an unsigned tag is refused with its name
    assert_eq!(c.resolve(GUN, "latest").unwrap(), t);
    let e = expect_role(c.resolve(GUN, "unsigned"), "unsigned tag");
    assert!(
        matches!(e, TrustError::UnknownTarget { ref tag, .. } if tag == "unsigned"),
        "{e}"
    );
}

#[test]
fn notary_peer_lists_what_rrun_signed() {
    let s = NotaryServer::start();
    let gun = "127.0.0.1:5000/rrun-signed";
    let trust_dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let pass = Passphrases {
        root: Some(Zeroizing::new("root-pw".into())),
        repository: Some(Zeroizing::new("repo-pw".into())),
    };
    let c = http_client(&s, cache.path());
    let signer = NotarySigner::new(&c, trust_dir.path(), pass.clone());
    let (m1, m2) = (b"manifest one".to_vec(), b"manifest two, longer".to_vec());

    // first use creates the repository (root cert CN = GUN, server-managed snapshot/timestamp)
    let out = signer
        .sign(gun, "v1", &format!("sha256:{}", sha(&m1)), m1.len() as u64)
        .unwrap();
    assert!(out.initialized);
    let listed = s.notary(&["list", gun]);
    assert!(
        listed.contains("v1") && listed.contains(&sha(&m1)),
        "notary list: {listed}"
    );
    assert_eq!(c.resolve(gun, "v1").unwrap().role, "targets");

    // a signer (delegation) added by rrun is seen by notary; signing then goes to the delegations
    let public = KeyStore::new(trust_dir.path())
        .generate_signer("carol", &pass)
        .unwrap();
    signer.add_signer(gun, "carol", &public).unwrap();
    let delegations = s.notary(&["delegation", "list", gun]);
    assert!(
        delegations.contains("targets/releases") && delegations.contains("targets/carol"),
        "{delegations}"
    );
    let out = signer
        .sign(gun, "v1", &format!("sha256:{}", sha(&m2)), m2.len() as u64)
        .unwrap();
    assert_eq!(
        out.roles,
        vec!["targets/releases".to_string(), "targets/carol".to_string()]
    );
    let t = c.resolve(gun, "v1").unwrap();
    assert_eq!(
        (t.digest.as_str(), t.role.as_str()),
        (format!("sha256:{}", sha(&m2)).as_str(), "targets/releases")
    );
    assert_eq!(t.signers, vec!["carol".to_string()]);
    let listed = s.notary(&["list", gun, "--roles", "targets/releases"]);
    assert!(
        listed.contains(&sha(&m2)),
        "notary list --roles targets/releases: {listed}"
    );

    // a wrong passphrase is refused before anything is published
    let wrong = Passphrases {
        root: None,
        repository: Some(Zeroizing::new("nope".into())),
    };
    let e = expect_role(
        NotarySigner::new(&c, trust_dir.path(), wrong).sign(
            gun,
            "v9",
            &format!("sha256:{}", sha(&m1)),
            1,
        ),
        "wrong passphrase",
    );
    assert!(matches!(e, TrustError::Passphrase { .. }), "{e}");

    // revoke removes the tag from every role rrun can sign; notary no longer lists it
    signer.revoke(gun, "v1").unwrap();
    let e = expect_role(c.resolve(gun, "v1"), "revoked tag");
    assert!(matches!(e, TrustError::UnknownTarget { .. }), "{e}");
    assert!(!s.notary(&["list", gun]).contains("v1"));

    signer.remove_signer(gun, "carol").unwrap();
    let delegations = s.notary(&["delegation", "list", gun]);
    assert!(
        !delegations.contains("targets/carol") && !delegations.contains("targets/releases"),
        "{delegations}"
    );
    signer
        .sign(gun, "v3", &format!("sha256:{}", sha(&m1)), m1.len() as u64)
        .unwrap();
    assert!(s.notary(&["list", gun]).contains("v3"));
}

#[test]
fn notary_peer_attacks_on_timestamp_are_refused() {
    let s = NotaryServer::start();
    s.init_repo(GUN);
    addhash(&s, GUN, "latest", b"one", &[]);
    let ts_old = s.get(GUN, "timestamp.json");
    addhash(&s, GUN, "latest", b"two", &[]);
    let cache = tempfile::tempdir().unwrap();
    let mitm = Mitm::new(s.http());
    let c = client(&s, cache.path(), mitm.clone(), Arc::new(SystemClock));
    assert_eq!(
        c.resolve(GUN, "latest").unwrap().digest,
        format!("sha256:{}", sha(b"two"))
    );

    // tampered signature
    mitm.rewrite("timestamp.json", |_, b| {
        let mut v: Value = serde_json::from_slice(&b).unwrap();
        let sig = v["signatures"][0]["sig"].as_str().unwrap().to_string();
        let first = if sig.starts_with('A') { 'B' } else { 'A' };
        let flipped = format!("{first}{}", &sig[1..]);
        v["signatures"][0]["sig"] = json!(flipped);
        serde_json::to_vec(&v).unwrap()
    });
    let e = expect_role(c.update(GUN), "tampered timestamp");
    assert!(
        matches!(e, TrustError::BadSignature { ref role, .. } if role == "timestamp"),
        "{e}"
    );

    // under threshold: signatures stripped
    mitm.clear();
    mitm.rewrite("timestamp.json", |_, b| {
        let mut v: Value = serde_json::from_slice(&b).unwrap();
        v["signatures"] = json!([]);
        serde_json::to_vec(&v).unwrap()
    });
    let e = expect_role(c.update(GUN), "unsigned timestamp");
    assert!(
        matches!(e, TrustError::Threshold { ref role, have: 0, need: 1 } if role == "timestamp"),
        "{e}"
    );

    // freeze: the timestamp (14 days) has expired for a client 15 days ahead
    mitm.clear();
    let late = client(&s, cache.path(), mitm.clone(), in_days(15));
    let e = expect_role(late.update(GUN), "expired timestamp");
    assert!(
        matches!(e, TrustError::Expired { ref role, .. } if role == "timestamp"),
        "{e}"
    );

    // rollback: an older, validly signed timestamp
    let old_version = signed_of(&ts_old)["version"].as_u64().unwrap();
    mitm.serve("timestamp.json", ts_old);
    let e = expect_role(c.update(GUN), "old timestamp");
    assert!(
        matches!(e, TrustError::Rollback { ref role, got, cached } if role == "timestamp" && got == old_version && cached > got),
        "{e}"
    );

    // nothing above changed the trusted state
    mitm.clear();
    assert_eq!(
        c.resolve(GUN, "latest").unwrap().digest,
        format!("sha256:{}", sha(b"two"))
    );
}

#[test]
fn notary_peer_mix_and_match_and_rollback_of_snapshot_and_targets() {
    let s = NotaryServer::start();
    s.init_repo(GUN);
    addhash(&s, GUN, "latest", b"old", &[]);
    let ts_old = s.get(GUN, "timestamp.json");
    let sn_sum = |ts: &[u8]| {
        let b64 = signed_of(ts)["meta"]["snapshot"]["hashes"]["sha256"]
            .as_str()
            .unwrap()
            .to_string();
        hex::encode(base64_decode(&b64))
    };
    let sn_old = s.get(GUN, &format!("snapshot.{}.json", sn_sum(&ts_old)));
    let tg_sum = hex::encode(base64_decode(
        signed_of(&sn_old)["meta"]["targets"]["hashes"]["sha256"]
            .as_str()
            .unwrap(),
    ));
    let tg_old = s.get(GUN, &format!("targets.{tg_sum}.json"));
    addhash(&s, GUN, "latest", b"new", &[]);
    addhash(&s, GUN, "other", b"more", &[]);

    let cache = tempfile::tempdir().unwrap();
    let mitm = Mitm::new(s.http());
    let c = client(&s, cache.path(), mitm.clone(), Arc::new(SystemClock));
    assert_eq!(
        c.resolve(GUN, "latest").unwrap().digest,
        format!("sha256:{}", sha(b"new"))
    );
    // An older file is refused by its hash, its length or, when it is longer than the length
    // the parent gives, by the download cap (Go's expiry timestamps vary in length).
    let is_mismatch = |e: &TrustError, role: &str| match e {
        TrustError::HashMismatch { what, .. } | TrustError::LengthMismatch { what, .. } => {
            what == role
        }
        TrustError::TooLarge { url, .. } => url.contains(&format!("/_trust/tuf/{role}.")),
        _ => false,
    };

    // mix-and-match: an older snapshot (valid signatures) where the timestamp names another
    // (the cached snapshot is dropped so that the client has to download one)
    std::fs::remove_file(cache.path().join(GUN).join("snapshot.json")).unwrap();
    mitm.serve("snapshot.", sn_old.clone());
    let e = expect_role(c.update(GUN), "old snapshot");
    assert!(is_mismatch(&e, "snapshot"), "{e}");
    // ... and an older targets where the snapshot names another
    mitm.clear();
    mitm.serve("targets.", tg_old.clone());
    std::fs::remove_file(cache.path().join(GUN).join("targets.json")).unwrap();
    let e = expect_role(c.update(GUN), "old targets");
    assert!(is_mismatch(&e, "targets"), "{e}");
    // wrong length: a snapshot cut short by one byte, and one padded by one byte (the download
    // is capped at the length the timestamp gives: endless-data protection)
    mitm.clear();
    std::fs::remove_file(cache.path().join(GUN).join("snapshot.json")).ok();
    mitm.rewrite("snapshot.", |_, mut b| {
        b.pop();
        b
    });
    let e = expect_role(c.update(GUN), "short snapshot");
    assert!(
        matches!(e, TrustError::LengthMismatch { ref what, .. } if what == "snapshot"),
        "{e}"
    );
    mitm.clear();
    mitm.rewrite("snapshot.", |_, mut b| {
        b.push(b' ');
        b
    });
    let e = expect_role(c.update(GUN), "padded snapshot");
    assert!(matches!(e, TrustError::TooLarge { .. }), "{e}");

    // restore the trusted state from the honest server
    mitm.clear();
    c.update(GUN).unwrap();
    let sn_new_version =
        signed_of(&std::fs::read(cache.path().join(GUN).join("snapshot.json")).unwrap())["version"]
            .as_u64()
            .unwrap();

    // snapshot rollback: without a cached timestamp, an old validly signed timestamp leads to an
    // old snapshot; the cached snapshot's version still refuses it
    std::fs::remove_file(cache.path().join(GUN).join("timestamp.json")).unwrap();
    mitm.serve("timestamp.json", ts_old.clone());
    let e = expect_role(c.update(GUN), "snapshot rollback");
    assert!(
        matches!(e, TrustError::Rollback { ref role, cached, .. } if role == "snapshot" && cached == sn_new_version),
        "{e}"
    );

    // targets rollback: the same with timestamp and snapshot gone from the cache
    std::fs::remove_file(cache.path().join(GUN).join("timestamp.json")).ok();
    std::fs::remove_file(cache.path().join(GUN).join("snapshot.json")).unwrap();
    let e = expect_role(c.update(GUN), "targets rollback");
    assert!(
        matches!(e, TrustError::Rollback { ref role, .. } if role == "targets"),
        "{e}"
    );

    mitm.clear();
    assert_eq!(
        c.resolve(GUN, "latest").unwrap().digest,
        format!("sha256:{}", sha(b"new"))
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

#[test]
fn notary_peer_root_rotation_checked_against_old_and_new_root() {
    let s = NotaryServer::start();
    s.init_repo(GUN);
    addhash(&s, GUN, "latest", b"m", &[]);
    let cache = tempfile::tempdir().unwrap();
    let mitm = Mitm::new(s.http());
    let c = client(&s, cache.path(), mitm.clone(), Arc::new(SystemClock));
    let v = c.update(GUN).unwrap().root.meta.version;
    // a second server-side snapshot key rotation: root v+1, signed by the same root key
    s.notary(&["key", "rotate", GUN, "snapshot", "-r"]);
    let repo = c.update(GUN).unwrap();
    assert_eq!(repo.root.meta.version, v + 1);
    let next = format!("{}.root.json", v + 2);

    // rollback: the older root served as the next version
    mitm.serve(&next, s.get(GUN, &format!("{v}.root.json")));
    let e = expect_role(c.update(GUN), "old root as next");
    assert!(
        matches!(e, TrustError::Rollback { ref role, got, cached } if role == "root" && got == v && cached == v + 1),
        "{e}"
    );

    // a new root (CN = GUN) signed only by a new key: not signed by the old root
    let current = s.get(GUN, "root.json");
    let new_key = SigningKey::generate().unwrap();
    let cert = new_key
        .self_signed_cert(GUN, Utc::now(), Duration::days(3650))
        .unwrap();
    let (new_id, new_obj, _) = notary_key_from_pem(&cert.to_pem().unwrap()).unwrap();
    let mut signed = signed_of(&current);
    signed["keys"][&new_id] = new_obj;
    signed["roles"]["root"]["keyids"] = json!([new_id]);
    signed["version"] = json!(v + 2);
    mitm.serve(
        &next,
        sign_envelope(&signed, &[(&new_id, &new_key)]).unwrap(),
    );
    let e = expect_role(c.update(GUN), "root not signed by the old root");
    assert!(
        matches!(
            e,
            TrustError::RootRotation {
                signer: RootSigner::Old,
                have: 0,
                need: 1,
                ..
            }
        ),
        "{e}"
    );

    // signed by the old root key only: the new root's own keys did not sign
    let old_key = s.cli_private_key(GUN, "root", "rootpass-test");
    let old_id = repo.root.meta.roles["root"].keyids[0].clone();
    mitm.serve(
        &next,
        sign_envelope(&signed, &[(&old_id, &old_key)]).unwrap(),
    );
    let e = expect_role(c.update(GUN), "root not signed by itself");
    assert!(
        matches!(
            e,
            TrustError::RootRotation {
                signer: RootSigner::New,
                ..
            }
        ),
        "{e}"
    );

    // a real root key rotation by the notary CLI (signed by old and new keys) is accepted
    mitm.clear();
    let out = s.notary_raw(&["key", "rotate", GUN, "root"], Some("yes\n"));
    assert!(
        out.status.success(),
        "notary key rotate root: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let repo = c.update(GUN).unwrap();
    assert_eq!(repo.root.meta.version, v + 2);
    assert_ne!(repo.root.meta.roles["root"].keyids[0], old_id);
    assert_eq!(
        c.resolve(GUN, "latest").unwrap().digest,
        format!("sha256:{}", sha(b"m"))
    );
}

#[test]
fn notary_peer_expired_snapshot_and_targets() {
    let s = NotaryServer::start();
    // targets signed by rrun valid for one day only
    let gun = "127.0.0.1:5000/short-targets";
    let trust_dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let pass = Passphrases {
        root: Some(Zeroizing::new("r".into())),
        repository: Some(Zeroizing::new("p".into())),
    };
    let c = http_client(&s, cache.path());
    NotarySigner::new(&c, trust_dir.path(), pass)
        .with_targets_validity(Duration::days(1))
        .sign(gun, "latest", &format!("sha256:{}", sha(b"x")), 1)
        .unwrap();
    c.resolve(gun, "latest").unwrap();
    let late = client(&s, cache.path(), Arc::new(s.http()), in_days(2));
    let e = expect_role(late.update(gun), "expired targets");
    assert!(
        matches!(e, TrustError::Expired { ref role, .. } if role == "targets"),
        "{e}"
    );

    // a snapshot signed (with the client-held snapshot key) to expire in one day
    let gun = "127.0.0.1:5000/short-snapshot";
    s.notary(&["init", gun]);
    s.notary(&["publish", gun]);
    addhash(&s, gun, "latest", b"y", &[]);
    let root = signed_of(&s.get(gun, "root.json"));
    let sn_id = root["roles"]["snapshot"]["keyids"][0]
        .as_str()
        .unwrap()
        .to_string();
    let sn_key = s.cli_private_key(gun, "snapshot", "snapshotpass-test");
    let mut sn = signed_of(&s.get(gun, "snapshot.json"));
    sn["version"] = json!(sn["version"].as_u64().unwrap() + 1);
    sn["expires"] =
        json!((Utc::now() + Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let bytes = sign_envelope(&sn, &[(&sn_id, &sn_key)]).unwrap();
    publish(
        &s.http(),
        &s.tuf_url(gun),
        &[("snapshot".to_string(), bytes)],
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    http_client(&s, cache.path())
        .resolve(gun, "latest")
        .unwrap();
    let late = client(&s, cache.path(), Arc::new(s.http()), in_days(2));
    let e = expect_role(late.update(gun), "expired snapshot");
    assert!(
        matches!(e, TrustError::Expired { ref role, .. } if role == "snapshot"),
        "{e}"
    );
}

#[test]
fn notary_peer_delegation_outside_its_paths_is_refused() {
    let s = NotaryServer::start();
    s.init_repo(GUN);
    let (alice_key, alice_pub, _) = s.delegation_key("alice");
    s.notary(&[
        "key",
        "import",
        alice_key.to_str().unwrap(),
        "--role",
        "targets/releases",
        "--gun",
        GUN,
    ]);
    s.notary(&[
        "delegation",
        "add",
        GUN,
        "targets/releases",
        alice_pub.to_str().unwrap(),
        "--paths",
        "v1",
    ]);
    s.notary(&["publish", GUN]);
    // alice signs "latest" although targets/releases is only trusted for tags starting with v1
    let (alice_id, _, _) = notary_key_from_pem(&std::fs::read(&alice_pub).unwrap()).unwrap();
    let alice = SigningKey::from_pem(&std::fs::read(&alice_key).unwrap(), None).unwrap();
    let entry = |m: &[u8]| json!({"hashes": {"sha256": rrun::trust::metadata::notary_b64(&Sha256::digest(m))}, "length": m.len()});
    let releases = json!({
        "_type": "Targets", "delegations": {"keys": {}, "roles": []},
        "expires": (Utc::now() + Duration::days(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "targets": {"latest": entry(b"evil"), "v1.0": entry(b"good")}, "version": 1,
    });
    publish(
        &s.http(),
        &s.tuf_url(GUN),
        &[(
            "targets/releases".to_string(),
            sign_envelope(&releases, &[(&alice_id, &alice)]).unwrap(),
        )],
    )
    .unwrap();

    let cache = tempfile::tempdir().unwrap();
    let c = http_client(&s, cache.path());
    let e = expect_role(c.resolve(GUN, "latest"), "out-of-scope tag");
    assert!(
        matches!(e, TrustError::DelegationOutOfScope { ref role, ref path } if role == "targets/releases" && path == "latest"),
        "{e}"
    );
    let ok = c.resolve(GUN, "v1.0").unwrap();
    assert_eq!(
        (ok.role.as_str(), ok.digest.clone()),
        ("targets/releases", format!("sha256:{}", sha(b"good")))
    );
    assert!(c.list(GUN).unwrap().iter().all(|t| t.tag != "latest"));
}

#[test]
fn notary_peer_rollback_of_a_delegation_is_refused() {
    let s = NotaryServer::start();
    s.init_repo(GUN);
    let (alice_key, alice_pub, _) = s.delegation_key("alice");
    s.notary(&[
        "key",
        "import",
        alice_key.to_str().unwrap(),
        "--role",
        "targets/releases",
        "--gun",
        GUN,
    ]);
    s.notary(&[
        "delegation",
        "add",
        GUN,
        "targets/releases",
        alice_pub.to_str().unwrap(),
        "--all-paths",
    ]);
    s.notary(&["publish", GUN]);
    addhash(&s, GUN, "latest", b"release one", &["targets/releases"]);
    let ts_old = s.get(GUN, "timestamp.json");
    // only targets/releases changes from here on: targets stays the same
    addhash(&s, GUN, "latest", b"release two", &["targets/releases"]);

    let cache = tempfile::tempdir().unwrap();
    let mitm = Mitm::new(s.http());
    let c = client(&s, cache.path(), mitm.clone(), Arc::new(SystemClock));
    let t = c.resolve(GUN, "latest").unwrap();
    assert_eq!(t.digest, format!("sha256:{}", sha(b"release two")));
    // with timestamp and snapshot gone from the cache, an old validly signed timestamp leads
    // to the old snapshot and the old targets/releases: the cached version refuses it
    for role in ["timestamp", "snapshot"] {
        std::fs::remove_file(cache.path().join(GUN).join(format!("{role}.json"))).unwrap();
    }
    mitm.serve("timestamp.json", ts_old);
    let e = expect_role(c.update(GUN), "old targets/releases");
    assert!(
        matches!(e, TrustError::Rollback { ref role, .. } if role == "targets/releases"),
        "{e}"
    );
    mitm.clear();
    assert_eq!(c.resolve(GUN, "latest").unwrap(), t);
}
