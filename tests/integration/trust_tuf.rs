//! Plain TUF 1.0 repositories made by python-tuf (tests/data/trust/tuf/make_repos.py, in a
//! venv with PyPI `tuf`) and served by `python3 -m http.server` on a free loopback port:
//! the client workflow, delegations, key rotation, and attacks refused with typed errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{Duration, Utc};
use serde_json::Value;

use rrun::trust::{
    tuf_download, tuf_init, tuf_refresh, FixedClock, HttpOptions, HttpTransport, RootSigner,
    SystemClock, TrustError,
};

use super::trust_util::{tuf_python, HttpServer};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// One generated scenario, served over HTTP, and one client (metadata dir + target dir).
struct Tuf {
    gen: tempfile::TempDir,
    scenario: String,
    serve: tempfile::TempDir,
    server: HttpServer,
    client: tempfile::TempDir,
    http: HttpTransport,
}

impl Tuf {
    fn new(scenario: &str) -> Tuf {
        let py = tuf_python();
        let gen = tempfile::tempdir().unwrap();
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/trust/tuf/make_repos.py");
        let out = Command::new(py)
            .arg(&script)
            .arg(gen.path())
            .arg(scenario)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "make_repos.py {scenario}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let serve = tempfile::tempdir().unwrap();
        let server = HttpServer::start(serve.path());
        let http = HttpTransport::new(&HttpOptions::default()).unwrap();
        Tuf {
            gen,
            scenario: scenario.to_string(),
            serve,
            server,
            client: tempfile::tempdir().unwrap(),
            http,
        }
    }

    fn stage_dir(&self, stage: &str) -> PathBuf {
        self.gen.path().join(&self.scenario).join(stage)
    }

    /// Serve `stage` (replacing whatever was served).
    fn stage(&self, stage: &str) {
        for sub in ["metadata", "targets"] {
            let _ = std::fs::remove_dir_all(self.serve.path().join(sub));
            copy_dir(
                &self.stage_dir(stage).join(sub),
                &self.serve.path().join(sub),
            );
        }
    }

    fn served(&self, rel: &str) -> PathBuf {
        self.serve.path().join(rel)
    }

    fn meta_dir(&self) -> PathBuf {
        self.client.path().join("metadata")
    }

    fn target_dir(&self) -> PathBuf {
        self.client.path().join("targets")
    }

    /// `init` from the stage's version-1 root, in a fresh client dir.
    fn init(&mut self, stage: &str) {
        self.client = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(self.meta_dir()).unwrap();
        std::fs::create_dir_all(self.target_dir()).unwrap();
        let root = std::fs::read(self.stage_dir(stage).join("metadata/1.root.json")).unwrap();
        tuf_init(&self.meta_dir(), &root, &SystemClock).unwrap();
    }

    fn refresh_at(&self, days: i64) -> rrun::trust::Result<()> {
        let clock = FixedClock(Utc::now() + Duration::days(days));
        tuf_refresh(
            &self.meta_dir(),
            &format!("{}/metadata/", self.server.url),
            &self.http,
            &clock,
        )
    }

    fn refresh(&self) -> rrun::trust::Result<()> {
        self.refresh_at(0)
    }

    fn download(&self, name: &str) -> rrun::trust::Result<Vec<u8>> {
        let p = tuf_download(
            &self.meta_dir(),
            &format!("{}/metadata", self.server.url),
            &[name],
            &format!("{}/targets", self.server.url),
            &self.target_dir(),
            &self.http,
            &SystemClock,
        )?;
        Ok(std::fs::read(&p[0]).unwrap())
    }

    /// File names in the metadata dir.
    fn meta_files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.meta_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn trusted_version(&self, role: &str) -> u64 {
        let v: Value = serde_json::from_slice(
            &std::fs::read(self.meta_dir().join(format!("{role}.json"))).unwrap(),
        )
        .unwrap();
        v["signed"]["version"].as_u64().unwrap()
    }
}

fn err<T: std::fmt::Debug>(r: rrun::trust::Result<T>, what: &str) -> TrustError {
    r.expect_err(what)
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn tuf_peer_delegations_glob_terminating_and_hash_prefixes() {
    let mut t = Tuf::new("delegations");
    t.init("s0");
    t.stage("s0");
    t.refresh().unwrap();
    assert_eq!(
        t.meta_files(),
        names(&[
            "root.json",
            "snapshot.json",
            "targets.json",
            "timestamp.json"
        ])
    );
    assert_eq!(t.download("file1.txt").unwrap(), b"top-level file\n");
    // lazy search: a top-level target loads no delegated role
    assert_eq!(t.meta_files().len(), 4);
    assert_eq!(t.download("a/x.txt").unwrap(), b"from a\n");
    assert!(
        t.meta_files().contains(&"a.json".to_string())
            && !t.meta_files().contains(&"b.json".to_string())
    );
    assert_eq!(t.download("a/deep/z.txt").unwrap(), b"from a1\n");
    // b is terminating and listed before c: b's copy wins, and c is never searched for b/*
    assert_eq!(t.download("b/y.txt").unwrap(), b"from b\n");
    for missing in ["b/only-c.txt", "b/evil.txt", "nope.txt"] {
        let e = err(t.download(missing), missing);
        assert!(
            matches!(e, TrustError::UnknownTarget { ref tag, .. } if tag == missing),
            "{missing}: {e}"
        );
    }
    assert_eq!(t.download("c/z.txt").unwrap(), b"from c\n");
    assert_eq!(t.download("h/file.txt").unwrap(), b"found by hash prefix\n");
    // a role reached through a second delegator must verify with that delegator's keys too
    assert_eq!(t.download("team-a/file.txt").unwrap(), b"trusted A\n");
    let e = err(t.download("team-b/file.txt"), "release through pb");
    assert!(
        matches!(e, TrustError::Threshold { ref role, have: 0, need: 1 } if role == "release"),
        "{e}"
    );
    // only verified, non-versioned metadata; targets under stable percent-encoded names
    assert_eq!(
        t.meta_files(),
        names(&[
            "a.json",
            "a1.json",
            "b.json",
            "c.json",
            "hashed.json",
            "pa.json",
            "pb.json",
            "release.json",
            "root.json",
            "snapshot.json",
            "targets.json",
            "timestamp.json"
        ])
    );
    assert!(t.target_dir().join("a%2Fdeep%2Fz.txt").is_file());
    // a verified cached target is not downloaded again
    std::fs::remove_dir_all(t.served("targets")).unwrap();
    assert_eq!(t.download("a/x.txt").unwrap(), b"from a\n");
}

#[test]
fn tuf_peer_plain_repository_updates_and_version_check() {
    let mut t = Tuf::new("plain");
    t.init("s0");
    t.stage("s0");
    assert_eq!(t.download("dir/file.txt").unwrap(), b"version one\n");
    t.stage("s1");
    assert_eq!(
        t.download("dir/file.txt").unwrap(),
        b"version two, longer\n"
    );
    assert_eq!(t.trusted_version("targets"), 3);
    // without hashes in snapshot meta, an old targets.json is caught by its version (5.6.4)
    t.init("s1");
    std::fs::copy(
        t.served("metadata/2.targets.json"),
        t.served("metadata/targets.json"),
    )
    .unwrap();
    let e = err(t.refresh(), "old targets.json");
    assert!(
        matches!(e, TrustError::Rollback { ref role, cached: 3, got: 2 } if role == "targets"),
        "{e}"
    );
    assert!(!t.meta_dir().join("targets.json").exists());
}

#[test]
fn tuf_peer_attacks_are_refused() {
    let mut t = Tuf::new("attacks");
    t.init("s0");
    t.stage("s0");
    t.refresh().unwrap();
    t.stage("s1");
    t.refresh().unwrap();
    assert_eq!(t.trusted_version("timestamp"), 3);

    // rollback of timestamp, of snapshot (named by a new timestamp), of targets (by a new snapshot)
    t.stage("s0");
    let e = err(t.refresh(), "old timestamp");
    assert!(
        matches!(e, TrustError::Rollback { ref role, cached: 3, got: 2 } if role == "timestamp"),
        "{e}"
    );
    t.stage("ts_names_old_snapshot");
    let e = err(t.refresh(), "timestamp naming an old snapshot");
    assert!(
        matches!(e, TrustError::Rollback { ref role, cached: 3, got: 1 } if role == "snapshot"),
        "{e}"
    );
    t.stage("snapshot_names_old_targets");
    let e = err(t.refresh(), "snapshot naming old targets");
    assert!(
        matches!(e, TrustError::Rollback { ref role, cached: 3, got: 1 } if role == "targets"),
        "{e}"
    );
    // tampered signature
    t.stage("s1");
    let ts = std::fs::read_to_string(t.served("metadata/timestamp.json")).unwrap();
    let mut v: Value = serde_json::from_str(&ts).unwrap();
    let sig = v["signatures"][0]["sig"].as_str().unwrap().to_string();
    let flipped = format!(
        "{}{}",
        if sig.starts_with('0') { '1' } else { '0' },
        &sig[1..]
    );
    v["signatures"][0]["sig"] = Value::String(flipped);
    std::fs::write(
        t.served("metadata/timestamp.json"),
        serde_json::to_vec(&v).unwrap(),
    )
    .unwrap();
    let e = err(t.refresh(), "tampered timestamp");
    assert!(
        matches!(e, TrustError::BadSignature { ref role, .. } if role == "timestamp"),
        "{e}"
    );
    // nothing the attacks needed was trusted: snapshot and targets are still version 3 (the
    // validly signed timestamp v4 of the last rollback stage was kept, as 5.4.5 says)
    assert_eq!(t.trusted_version("timestamp"), 4);
    assert_eq!(t.trusted_version("snapshot"), 3);
    assert_eq!(t.trusted_version("targets"), 3);
    // under threshold: a new root (v2, properly signed) wants two timestamp signatures
    t.stage("under_threshold");
    let e = err(t.refresh(), "one of two timestamp signatures");
    assert!(
        matches!(e, TrustError::Threshold { ref role, have: 1, need: 2 } if role == "timestamp"),
        "{e}"
    );
    // the new root rotated the timestamp role's keys: cached timestamp and snapshot are gone (5.3.11)
    assert_eq!(t.meta_files(), names(&["root.json", "targets.json"]));

    // mix-and-match (fresh clients): an older snapshot / targets where newer ones are named
    // refused by hash, by length, or (longer than the listed length) by the download cap
    let mismatch = |e: &TrustError, role: &str| match e {
        TrustError::HashMismatch { what, .. } | TrustError::LengthMismatch { what, .. } => {
            what == role
        }
        TrustError::TooLarge { url, .. } => url.contains(&format!(".{role}.json")),
        _ => false,
    };
    t.init("s0");
    t.stage("s1");
    std::fs::copy(
        t.served("metadata/2.snapshot.json"),
        t.served("metadata/3.snapshot.json"),
    )
    .unwrap();
    let e = err(t.refresh(), "old snapshot bytes");
    assert!(mismatch(&e, "snapshot"), "{e}");
    t.init("s0");
    t.stage("s1");
    std::fs::copy(
        t.served("metadata/2.targets.json"),
        t.served("metadata/3.targets.json"),
    )
    .unwrap();
    let e = err(t.refresh(), "old targets bytes");
    assert!(mismatch(&e, "targets"), "{e}");

    // wrong target content: same length different bytes, then a shorter file
    t.init("s0");
    t.stage("s1");
    let blob = std::fs::read_dir(t.served("targets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".file2.txt"))
        .unwrap();
    std::fs::write(&blob, b"TWO\n").unwrap();
    let e = err(t.download("file2.txt"), "altered target");
    assert!(
        matches!(e, TrustError::HashMismatch { ref what, .. } if what == "file2.txt"),
        "{e}"
    );
    std::fs::write(&blob, b"tw").unwrap();
    let e = err(t.download("file2.txt"), "short target");
    assert!(
        matches!(e, TrustError::LengthMismatch { ref what, expected: 4, actual: 2 } if what == "file2.txt"),
        "{e}"
    );
    assert!(!t.target_dir().join("file2.txt").exists());

    // freeze: the timestamp expires after 7 days
    t.stage("s1");
    let e = err(t.refresh_at(8), "expired timestamp");
    assert!(
        matches!(e, TrustError::Expired { ref role, .. } if role == "timestamp"),
        "{e}"
    );
}

#[test]
fn tuf_peer_expired_root_snapshot_and_targets() {
    let mut t = Tuf::new("expiry");
    for role in ["root", "snapshot", "targets"] {
        t.scenario = format!("expiry/{role}");
        t.init("s0");
        t.stage("s0");
        t.refresh().unwrap();
        let e = err(t.refresh_at(4), role);
        assert!(
            matches!(e, TrustError::Expired { role: ref r, .. } if r == role),
            "{role}: {e}"
        );
    }
}

#[test]
fn tuf_peer_key_rotation_and_root_attacks() {
    let mut t = Tuf::new("rotation");
    t.init("s0");
    t.stage("s0");
    t.refresh().unwrap();
    assert_eq!(t.trusted_version("timestamp"), 4);
    // root key A -> B, timestamp key rotated and its version restarted at 1 (5.3.11)
    t.stage("s1");
    t.refresh().unwrap();
    assert_eq!(
        (t.trusted_version("root"), t.trusted_version("timestamp")),
        (3, 1)
    );
    assert_eq!(t.download("file1.txt").unwrap(), b"one\n");
    // a second rotation B -> C
    t.stage("s2");
    t.refresh().unwrap();
    assert_eq!(t.trusted_version("root"), 4);
    // a client that missed every rotation walks them in order
    t.init("s0");
    t.stage("s2");
    t.refresh().unwrap();
    assert_eq!(t.trusted_version("root"), 4);

    t.init("s0");
    t.stage("s1");
    t.refresh().unwrap();
    t.stage("not_signed_by_old");
    let e = err(t.refresh(), "root not signed by the old root");
    assert!(
        matches!(
            e,
            TrustError::RootRotation {
                from: 3,
                to: 4,
                signer: RootSigner::Old,
                have: 0,
                need: 1
            }
        ),
        "{e}"
    );
    t.stage("not_signed_by_new");
    let e = err(t.refresh(), "root not signed by its own keys");
    assert!(
        matches!(
            e,
            TrustError::RootRotation {
                from: 3,
                to: 4,
                signer: RootSigner::New,
                have: 0,
                need: 1
            }
        ),
        "{e}"
    );
    t.stage("replayed_root");
    let e = err(t.refresh(), "root v3 served as v4");
    assert!(
        matches!(e, TrustError::Rollback { ref role, cached: 3, got: 3 } if role == "root"),
        "{e}"
    );
    assert_eq!(t.trusted_version("root"), 3);
}
