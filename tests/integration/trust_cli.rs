//! `rrun trust ...` through the binary: signing, inspecting, signers and revocation against the
//! real Notary (notary-server + notary-signer, checked with the real `notary` CLI), the
//! content-trust decision of pull (`trust lookup`: `--verify`, `RRUN_CONTENT_TRUST`, policy
//! files), typed errors surfacing as text, and `trust tuf` on python-tuf repositories with the
//! conformance exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use chrono::{Duration, SecondsFormat, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use rrun::trust::keys::SigningKey;
use rrun::trust::sign::{publish, sign_envelope};

use super::trust_util::{require_binary, tuf_python, HttpServer, NotaryServer};

const ROOT_PASS: (&str, &str) = ("RRUN_TRUST_ROOT_PASSPHRASE", "cli-root-pw");
const REPO_PASS: (&str, &str) = ("RRUN_TRUST_REPOSITORY_PASSPHRASE", "cli-repo-pw");
const BOTH: &[(&str, &str)] = &[ROOT_PASS, REPO_PASS];

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Run the rrun binary with a clean environment for trust (no passphrases, no content trust
/// switches), stdin not a terminal.
fn rrun(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rrun"));
    cmd.arg("--root").arg(root).args(args);
    for var in [
        "RRUN_TRUST_ROOT_PASSPHRASE",
        "RRUN_TRUST_REPOSITORY_PASSPHRASE",
        "RRUN_CONTENT_TRUST",
        "RRUN_CONTENT_TRUST_SERVER",
        "RRUN_ROOT",
        "RRUN_LOG_LEVEL",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run rrun")
}

/// Expect success; return stdout.
fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Expect exit `code`; return stderr.
fn fails(out: Output, code: i32, what: &str) -> String {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: expected exit {code}\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

/// One rrun store root and the options that reach the test's notary-server.
struct Trust {
    s: NotaryServer,
    root: tempfile::TempDir,
}

impl Trust {
    fn start() -> Trust {
        Trust {
            s: NotaryServer::start(),
            root: tempfile::tempdir().unwrap(),
        }
    }

    /// `rrun trust VERB [server options] ARGS...`
    fn trust(&self, verb: &[&str], args: &[&str], env: &[(&str, &str)]) -> Output {
        let ca = self.s.ca.to_str().unwrap();
        let mut all: Vec<&str> = vec!["trust"];
        all.extend(verb);
        all.extend(["--trust-server", &self.s.url, "--tls-ca", ca]);
        all.extend(args);
        rrun(self.root.path(), &all, env)
    }

    fn sign(&self, image: &str, content: &[u8]) -> String {
        let digest = format!("sha256:{}", sha(content));
        let size = content.len().to_string();
        ok(
            self.trust(
                &["sign"],
                &[image, "--digest", &digest, "--size", &size],
                BOTH,
            ),
            &format!("trust sign {image}"),
        )
    }

    fn inspect_json(&self, image: &str) -> Value {
        let out = ok(
            self.trust(&["inspect"], &["--format", "json", image], &[]),
            &format!("inspect {image}"),
        );
        serde_json::from_str(&out).unwrap()
    }

    fn cached(&self, gun: &str, role: &str) -> PathBuf {
        self.root
            .path()
            .join("trust/tuf")
            .join(gun)
            .join(format!("{role}.json"))
    }
}

fn signed_tags(report: &Value) -> Vec<(String, String, String)> {
    report[0]["SignedTags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["SignedTag"].as_str().unwrap().to_string(),
                t["Role"].as_str().unwrap().to_string(),
                t["Digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn trust_cli_notary_peer_keys_sign_inspect_signers_revoke() {
    let t = Trust::start();
    let gun = "127.0.0.1:5000/cli-app";
    let keys = tempfile::tempdir().unwrap();
    let kdir = keys.path().to_str().unwrap();

    // key generate: the public key path on stdout, the private key encrypted and 0600
    let out = ok(
        rrun(
            t.root.path(),
            &["trust", "key", "generate", "alice", "--dir", kdir],
            &[REPO_PASS],
        ),
        "key generate",
    );
    let alice_pub = keys.path().join("alice.pub");
    assert_eq!(out.trim(), alice_pub.to_str().unwrap());
    assert!(std::fs::read_to_string(&alice_pub)
        .unwrap()
        .contains("PUBLIC KEY"));
    let alice_key = t.root.path().join("trust/private/signers/alice.key");
    let pem = std::fs::read_to_string(&alice_key).unwrap();
    assert!(pem.contains("ENCRYPTED PRIVATE KEY"), "{pem}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&alice_key).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0);
    // no passphrase and no terminal: a clear error, and nothing is created
    let err = fails(
        rrun(
            t.root.path(),
            &["trust", "key", "generate", "bob", "--dir", kdir],
            &[],
        ),
        125,
        "key generate without a passphrase",
    );
    assert!(
        err.contains("RRUN_TRUST_REPOSITORY_PASSPHRASE") && err.contains("terminal"),
        "{err}"
    );
    assert!(!keys.path().join("bob.pub").exists());
    assert!(!t.root.path().join("trust/private/signers/bob.key").exists());

    // sign: creates the repository; the real notary CLI lists the tag
    let m1 = b"{\"manifest\":1}".to_vec();
    let out = t.sign(&format!("{gun}:v1"), &m1);
    assert!(
        out.contains(&format!("signed {gun}:v1 as sha256:{}", sha(&m1))),
        "{out}"
    );
    let listed = t.s.notary(&["list", gun]);
    assert!(
        listed.contains("v1") && listed.contains(&sha(&m1)),
        "notary list: {listed}"
    );
    // sign without the root passphrase on a repository that exists needs only the repository key
    let m0 = b"{\"manifest\":0}".to_vec();
    ok(
        t.trust(
            &["sign"],
            &[
                &format!("{gun}:v0"),
                "--digest",
                &format!("sha256:{}", sha(&m0)),
                "--size",
                &m0.len().to_string(),
            ],
            &[REPO_PASS],
        ),
        "sign with the repository passphrase only",
    );

    // sign from an OCI layout's top manifest descriptor (an image built by `rrun image import`)
    let work = tempfile::tempdir().unwrap();
    let rootfs = work.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/hello"), b"hello\n").unwrap();
    let layout = work.path().join("layout");
    let oci = format!("oci:{}:one", layout.display());
    ok(
        rrun(
            t.root.path(),
            &["image", "import", rootfs.to_str().unwrap(), &oci],
            &[],
        ),
        "image import",
    );
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let (digest, size) = (
        index["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string(),
        index["manifests"][0]["size"].as_u64().unwrap(),
    );
    let out = ok(
        t.trust(
            &["sign"],
            &[&format!("{gun}:from-oci"), "--from", &oci],
            BOTH,
        ),
        "sign --from oci:",
    );
    assert!(
        out.contains(&format!("as {digest} ({size} bytes)")),
        "{out}"
    );

    // inspect: table and JSON
    let table = ok(t.trust(&["inspect"], &[gun], &[]), "inspect");
    for want in [
        "Signatures for 127.0.0.1:5000/cli-app",
        "SIGNED TAG",
        "EXPIRES",
        "Repo Admin",
        "Root Key:",
        "Repository Key:",
    ] {
        assert!(table.contains(want), "{want} missing in:\n{table}");
    }
    let v1_row = table.lines().find(|l| l.starts_with("v1 ")).unwrap();
    assert!(
        v1_row.contains(&sha(&m1)) && v1_row.contains(&format!(" {} ", m1.len())),
        "{v1_row}"
    );
    let report = t.inspect_json(gun);
    assert_eq!(report[0]["Name"], gun);
    assert_eq!(
        signed_tags(&report),
        vec![
            (
                "from-oci".into(),
                "targets".into(),
                digest["sha256:".len()..].to_string()
            ),
            ("v0".into(), "targets".into(), sha(&m0)),
            ("v1".into(), "targets".into(), sha(&m1)),
        ]
    );
    let v1 = &report[0]["SignedTags"][2];
    assert_eq!(v1["Size"], m1.len() as u64);
    assert_eq!(v1["Signers"], json!(["Repo Admin"]));
    assert!(v1["Expires"].as_str().unwrap().starts_with('2'));
    let admin: Vec<&str> = report[0]["AdministrativeKeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["Name"].as_str().unwrap())
        .collect();
    assert_eq!(admin, vec!["Root", "Repository"]);
    // IMAGE:TAG shows that tag only
    let one = t.inspect_json(&format!("{gun}:v1"));
    assert_eq!(signed_tags(&one).len(), 1);

    // signer add: the notary CLI sees the delegations; signing then goes to them
    ok(
        t.trust(
            &["signer", "add"],
            &["--key", alice_pub.to_str().unwrap(), "alice", gun],
            BOTH,
        ),
        "signer add",
    );
    let delegations = t.s.notary(&["delegation", "list", gun]);
    assert!(
        delegations.contains("targets/releases") && delegations.contains("targets/alice"),
        "{delegations}"
    );
    let m2 = b"{\"manifest\":2}".to_vec();
    let out = t.sign(&format!("{gun}:v2"), &m2);
    assert!(out.contains("in targets/releases, targets/alice"), "{out}");
    let report = t.inspect_json(gun);
    let v2 = report[0]["SignedTags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["SignedTag"] == "v2")
        .unwrap()
        .clone();
    assert_eq!(
        (&v2["Role"], &v2["Signers"], &v2["Digest"]),
        (
            &json!("targets/releases"),
            &json!(["alice"]),
            &json!(sha(&m2))
        )
    );
    assert_eq!(report[0]["Signers"][0]["Name"], "alice");
    assert_eq!(report[0]["Signers"][0]["Keys"].as_array().unwrap().len(), 1);
    let releases = t.s.notary(&["list", gun, "--roles", "targets/releases"]);
    assert!(releases.contains(&sha(&m2)), "{releases}");
    // a private key given as the signer's public key is refused
    let err = fails(
        t.trust(
            &["signer", "add"],
            &["--key", alice_key.to_str().unwrap(), "mallory", gun],
            BOTH,
        ),
        125,
        "private key as --key",
    );
    assert!(err.contains("holds a private key"), "{err}");

    // without --digest or --from, the image comes from the store (an OCI layout at --root
    // whose ref.name is the full reference); a fresh store root, so a new repository
    let store_root = tempfile::tempdir().unwrap();
    let stored_gun = "127.0.0.1:5000/cli-stored";
    let store = format!("oci:{}:{stored_gun}:v1", store_root.path().display());
    ok(
        rrun(
            store_root.path(),
            &["image", "import", rootfs.to_str().unwrap(), &store],
            &[],
        ),
        "image import into the store",
    );
    let ca = t.s.ca.to_str().unwrap();
    let server = ["--trust-server", t.s.url.as_str(), "--tls-ca", ca];
    let sign_stored = |tag: &str| {
        let image = format!("{stored_gun}:{tag}");
        let mut args = vec!["trust", "sign"];
        args.extend(server);
        args.push(&image);
        rrun(store_root.path(), &args, BOTH)
    };
    let out = ok(sign_stored("v1"), "sign from the store");
    assert!(
        out.contains(&format!("signed {stored_gun}:v1 as sha256:")),
        "{out}"
    );
    assert!(t.s.notary(&["list", stored_gun]).contains("v1"));
    let err = fails(
        sign_stored("not-stored"),
        125,
        "sign of an image not in the store",
    );
    assert!(err.contains("give --digest and --size, or --from"), "{err}");

    // revoke: gone for the notary CLI and for inspect; a key file others can read is warned
    // about (invariant 7)
    std::fs::set_permissions(&alice_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = t.trust(&["revoke"], &[&format!("{gun}:v2")], BOTH);
    let warned = text(&out.stderr);
    let out = ok(out, "revoke");
    assert!(
        warned.contains(&format!(
            "warning: {} is readable by other users",
            alice_key.display()
        )),
        "{warned}"
    );
    std::fs::set_permissions(&alice_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(out.contains("revoked"), "{out}");
    assert!(!t.s.notary(&["list", gun]).contains(&sha(&m2)));
    assert!(signed_tags(&t.inspect_json(gun))
        .iter()
        .all(|(tag, ..)| tag != "v2"));
    let err = fails(
        t.trust(&["revoke"], &[gun], BOTH),
        125,
        "revoke without a tag",
    );
    assert!(err.contains("needs a tag"), "{err}");

    // signer remove
    ok(
        t.trust(&["signer", "remove"], &["alice", gun], BOTH),
        "signer remove",
    );
    let delegations = t.s.notary(&["delegation", "list", gun]);
    assert!(!delegations.contains("targets/alice"), "{delegations}");

    // a repository nobody signed: a clear error
    let err = fails(
        t.trust(&["inspect"], &["127.0.0.1:5000/never-signed"], &[]),
        125,
        "inspect of an unknown repository",
    );
    assert!(
        err.contains(
            "has no trust data for 127.0.0.1:5000/never-signed: the repository is not signed"
        ),
        "{err}"
    );

    // a tampered pinned root in the cache is refused with the typed error's text
    let root_path = t.cached(gun, "root");
    let mut root: Value = serde_json::from_slice(&std::fs::read(&root_path).unwrap()).unwrap();
    root["signed"]["version"] = json!(root["signed"]["version"].as_u64().unwrap() + 1);
    std::fs::write(&root_path, serde_json::to_vec(&root).unwrap()).unwrap();
    let err = fails(t.trust(&["inspect"], &[gun], &[]), 125, "tampered root");
    assert!(
        err.contains("root metadata: signature by key") && err.contains("does not verify"),
        "{err}"
    );
}

#[test]
fn trust_cli_notary_peer_expired_targets_surface_the_typed_error() {
    let t = Trust::start();
    let gun = "127.0.0.1:5000/cli-expired";
    t.sign(&format!("{gun}:v1"), b"manifest");
    ok(t.trust(&["inspect"], &[gun], &[]), "inspect before");
    // the holder of the targets key publishes a targets role that expires in a few seconds
    // (the server refuses one that has already expired), and the client comes later
    let key_pem = std::fs::read(
        t.root
            .path()
            .join("trust/private/repos")
            .join(gun)
            .join("targets.key"),
    )
    .unwrap();
    let key = SigningKey::from_pem(&key_pem, Some(REPO_PASS.1.as_bytes())).unwrap();
    let root: Value = serde_json::from_slice(&t.s.get(gun, "root.json")).unwrap();
    let targets_id = root["signed"]["roles"]["targets"]["keyids"][0]
        .as_str()
        .unwrap()
        .to_string();
    let current: Value = serde_json::from_slice(&t.s.get(gun, "targets.json")).unwrap();
    let mut signed = current["signed"].clone();
    signed["version"] = json!(signed["version"].as_u64().unwrap() + 1);
    let soon = Utc::now() + Duration::seconds(4);
    signed["expires"] = json!(soon.to_rfc3339_opts(SecondsFormat::Secs, true));
    publish(
        &t.s.http(),
        &t.s.tuf_url(gun),
        &[(
            "targets".to_string(),
            sign_envelope(&signed, &[(&targets_id, &key)]).unwrap(),
        )],
    )
    .unwrap();
    while Utc::now() <= soon + Duration::seconds(1) {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let err = fails(t.trust(&["inspect"], &[gun], &[]), 125, "expired targets");
    assert!(
        err.contains("targets metadata expired at") && err.contains("freeze attack"),
        "{err}"
    );
    let err = fails(
        t.trust(&["lookup"], &["--verify", &format!("{gun}:v1")], &[]),
        125,
        "lookup with expired targets",
    );
    assert!(err.contains("targets metadata expired at"), "{err}");
}

#[test]
fn trust_cli_notary_peer_verify_tag_follows_flags_env_and_policy() {
    let t = Trust::start();
    let gun = "127.0.0.1:5000/cli-policy";
    let m = b"{\"signed\":\"manifest\"}".to_vec();
    t.sign(&format!("{gun}:v1"), &m);
    let want = format!("sha256:{}", sha(&m));
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    let write_policy = |v: Value| std::fs::write(&policy, serde_json::to_vec(&v).unwrap()).unwrap();
    let p = policy.to_str().unwrap();
    // `trust lookup` runs verify_tag exactly as pull does; no --trust-server here: it comes
    // from the policy or stays the default
    let lookup = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["trust", "lookup", "--format", "json"];
        all.extend(args);
        rrun(t.root.path(), &all, env)
    };
    let signed_policy = json!({"default": "insecureAcceptAnything", "transports": {"docker": {
        gun: {"type": "notarySigned", "trustServer": t.s.url, "tlsCa": t.s.ca}}}});
    write_policy(signed_policy.clone());
    let tagged = format!("{gun}:v1");

    // the policy requires signatures: resolved to the signed digest
    let out: Value =
        serde_json::from_str(&ok(lookup(&["--policy", p, &tagged], &[]), "policy lookup")).unwrap();
    assert_eq!(
        (&out["digest"], &out["size"], &out["role"]),
        (&json!(want), &json!(m.len()), &json!("targets"))
    );
    // an unsigned tag is refused, with the typed error's text
    let err = fails(
        lookup(&["--policy", p, &format!("{gun}:unsigned")], &[]),
        125,
        "unsigned tag",
    );
    assert!(
        err.contains(&format!("no trust data for {gun}:unsigned")),
        "{err}"
    );
    // a digest-only reference passes when a signed tag names it, else not
    let out: Value = serde_json::from_str(&ok(
        lookup(&["--policy", p, &format!("{gun}@{want}")], &[]),
        "digest lookup",
    ))
    .unwrap();
    assert_eq!(out["tag"], "v1");
    let other = format!("sha256:{}", sha(b"other"));
    let err = fails(
        lookup(&["--policy", p, &format!("{gun}@{other}")], &[]),
        125,
        "unsigned digest",
    );
    assert!(err.contains("no signed tag"), "{err}");
    let err = fails(
        lookup(&["--policy", p, &format!("{gun}:v1@{other}")], &[]),
        125,
        "tag and other digest",
    );
    assert!(err.contains("the signed digest of tag v1 is"), "{err}");

    // accept by default: nothing to verify unless --verify or RRUN_CONTENT_TRUST
    let other_repo = "127.0.0.1:5000/cli-other:v1";
    assert_eq!(
        ok(lookup(&["--policy", p, other_repo], &[]), "accept").trim(),
        "null"
    );
    let ca = t.s.ca.to_str().unwrap();
    let server = ["--trust-server", t.s.url.as_str(), "--tls-ca", ca];
    let mut args = vec!["--policy", p, "--verify"];
    args.extend(server);
    args.push(&tagged);
    let out: Value = serde_json::from_str(&ok(lookup(&args, &[]), "--verify")).unwrap();
    assert_eq!(out["digest"], json!(want));
    let mut args = vec!["--policy", p];
    args.extend(server);
    args.push(&tagged);
    write_policy(json!({"default": "insecureAcceptAnything"}));
    let out: Value = serde_json::from_str(&ok(
        lookup(&args, &[("RRUN_CONTENT_TRUST", "1")]),
        "RRUN_CONTENT_TRUST=1",
    ))
    .unwrap();
    assert_eq!(out["digest"], json!(want));
    assert_eq!(
        ok(
            lookup(&args, &[("RRUN_CONTENT_TRUST", "0")]),
            "RRUN_CONTENT_TRUST=0"
        )
        .trim(),
        "null"
    );
    // the table says why nothing was verified
    let table = ok(
        rrun(
            t.root.path(),
            &["trust", "lookup", "--policy", p, &tagged],
            &[],
        ),
        "lookup table",
    );
    assert!(table.contains("content trust does not apply"), "{table}");

    // reject: refused before any network access
    write_policy(json!({"default": "reject"}));
    let err = fails(lookup(&["--policy", p, &tagged], &[]), 125, "reject");
    assert!(err.contains(&format!("rejects images from {gun}")), "{err}");
    // an invalid policy is an error, never a silent accept
    std::fs::write(&policy, br#"{"default": "insecureAcceptAnything", "transports": {"docker": {"busybox": "reject"}}}"#).unwrap();
    let err = fails(
        lookup(&["--policy", p, &tagged], &[]),
        125,
        "invalid policy",
    );
    assert!(
        err.contains("invalid policy") && err.contains("registry host"),
        "{err}"
    );

    // a pinned root from the policy: the server's own root works, a tampered copy does not
    let pinned = dir.path().join("root.json");
    std::fs::write(&pinned, t.s.get(gun, "root.json")).unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let mut pinned_policy = signed_policy;
    pinned_policy["transports"]["docker"][gun]["trustRoot"] = json!(pinned);
    write_policy(pinned_policy);
    let pinned_lookup = |env: &[(&str, &str)]| {
        rrun(
            fresh.path(),
            &[
                "trust", "lookup", "--format", "json", "--policy", p, &tagged,
            ],
            env,
        )
    };
    let out: Value = serde_json::from_str(&ok(pinned_lookup(&[]), "pinned root")).unwrap();
    assert_eq!(out["digest"], json!(want));
    let mut root: Value = serde_json::from_slice(&std::fs::read(&pinned).unwrap()).unwrap();
    root["signed"]["expires"] = json!("2099-01-01T00:00:00Z");
    std::fs::write(&pinned, serde_json::to_vec(&root).unwrap()).unwrap();
    let err = fails(pinned_lookup(&[]), 125, "tampered pinned root");
    assert!(err.contains("root metadata: signature by key"), "{err}");
}

#[test]
fn trust_cli_pty_passphrases_are_asked_without_echo() {
    use std::io::{Read as _, Write as _};
    use std::sync::mpsc;
    let script = require_binary("script", "bsdutils");
    let root = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let secret = "pty-secret-42";
    // `script` runs rrun on a fresh pseudo-terminal and relays our pipe to it
    let cmd = format!(
        "{} --root {} trust key generate carol --dir {}",
        env!("CARGO_BIN_EXE_rrun"),
        root.path().display(),
        keys.path().display()
    );
    let mut child = Command::new(script)
        .args(["-qec", &cmd, "/dev/null"])
        .env_remove("RRUN_TRUST_REPOSITORY_PASSPHRASE")
        .env_remove("RRUN_TRUST_ROOT_PASSPHRASE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let wait_for = |want: &str, seen: &mut String| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !seen.contains(want) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(chunk) => seen.push_str(&text(&chunk)),
                Err(_) => panic!("no {want:?} on the terminal; got: {seen}"),
            }
        }
    };
    wait_for("Enter passphrase for new repository key", &mut seen);
    stdin.write_all(format!("{secret}\n").as_bytes()).unwrap();
    wait_for("Repeat passphrase:", &mut seen);
    stdin.write_all(format!("{secret}\n").as_bytes()).unwrap();
    let public = keys.path().join("carol.pub");
    wait_for(public.to_str().unwrap(), &mut seen);
    let status = child.wait().unwrap();
    drop(stdin);
    assert!(status.success(), "{seen}");
    assert!(!seen.contains(secret), "the passphrase was echoed: {seen}");
    let pem = std::fs::read(root.path().join("trust/private/signers/carol.key")).unwrap();
    assert!(SigningKey::from_pem(&pem, Some(secret.as_bytes())).is_ok());
    assert!(SigningKey::from_pem(&pem, Some(b"other")).is_err());
}

#[test]
fn trust_cli_tuf_peer_conformance_protocol_exit_codes() {
    let py = tuf_python();
    let gen = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/trust/tuf/make_repos.py");
    let out = Command::new(py)
        .arg(&script)
        .arg(gen.path())
        .arg("attacks")
        .output()
        .unwrap();
    assert!(out.status.success(), "make_repos.py: {}", text(&out.stderr));
    // every stage is served at once, under /<stage>/{metadata,targets}: switching the URLs
    // moves the client to another state of the repository
    let stage = |name: &str| gen.path().join("attacks").join(name);
    let server = HttpServer::start(&gen.path().join("attacks"));
    let client = tempfile::tempdir().unwrap();
    let meta = client.path().join("metadata");
    let targets = client.path().join("targets");
    std::fs::create_dir_all(&meta).unwrap();
    std::fs::create_dir_all(&targets).unwrap();
    let nowhere = client.path().join("unused-root");
    let shown = std::cell::RefCell::new("s0".to_string());
    let show = |name: &str| *shown.borrow_mut() = name.to_string();
    let metadata_url = || format!("{}/{}/metadata", server.url, shown.borrow());
    let target_url = || format!("{}/{}/targets", server.url, shown.borrow());
    // the harness's own argument order: every option before the command
    let tuf = |cmd: &[&str], names: &[&str]| {
        let (metadata_url, target_url) = (metadata_url(), target_url());
        let mut args = vec![
            "trust",
            "tuf",
            "--metadata-dir",
            meta.to_str().unwrap(),
            "--metadata-url",
            &metadata_url,
        ];
        for n in names {
            args.extend(["--target-name", n]);
        }
        if !names.is_empty() {
            args.extend([
                "--target-base-url",
                &target_url,
                "--target-dir",
                targets.to_str().unwrap(),
            ]);
        }
        args.extend(cmd);
        rrun(&nowhere, &args, &[])
    };

    // refresh before init fails with 1
    show("s0");
    fails(tuf(&["refresh"], &[]), 1, "refresh before init");
    // a root that does not verify: 1
    let bad_root = client.path().join("bad-root.json");
    let mut root: Value =
        serde_json::from_slice(&std::fs::read(stage("s0").join("metadata/1.root.json")).unwrap())
            .unwrap();
    root["signed"]["version"] = json!(7);
    std::fs::write(&bad_root, serde_json::to_vec(&root).unwrap()).unwrap();
    let err = fails(
        tuf(&["init", bad_root.to_str().unwrap()], &[]),
        1,
        "init with a tampered root",
    );
    assert!(err.contains("not a usable trusted root"), "{err}");
    assert!(!meta.join("root.json").exists());

    let root_json = stage("s0").join("metadata/1.root.json");
    ok(tuf(&["init", root_json.to_str().unwrap()], &[]), "init");
    ok(tuf(&["refresh"], &[]), "refresh");
    let stored = ok(tuf(&["download"], &["file1.txt"]), "download");
    let path = PathBuf::from(stored.trim());
    assert_eq!(std::fs::read(&path).unwrap(), b"one\n");
    assert!(path.starts_with(&targets));
    // a target that is not in the repository: 1
    let err = fails(tuf(&["download"], &["missing.txt"]), 1, "missing target");
    assert!(err.contains("missing.txt"), "{err}");
    // options after the command work too
    show("s1");
    let out = rrun(
        &nowhere,
        &[
            "trust",
            "tuf",
            "download",
            "--metadata-dir",
            meta.to_str().unwrap(),
            "--metadata-url",
            &metadata_url(),
            "--target-name",
            "file2.txt",
            "--target-base-url",
            &target_url(),
            "--target-dir",
            targets.to_str().unwrap(),
        ],
        &[],
    );
    ok(out, "download with trailing options");
    // rollback to the older repository: 1, with the typed error's text; metadata untouched
    let before = std::fs::read(meta.join("timestamp.json")).unwrap();
    show("s0");
    let err = fails(tuf(&["refresh"], &[]), 1, "rollback");
    assert!(
        err.contains("timestamp metadata: version") && err.contains("rollback attack"),
        "{err}"
    );
    assert_eq!(std::fs::read(meta.join("timestamp.json")).unwrap(), before);
    // a missing required option is a failure too (1, not 125)
    let out = rrun(
        &nowhere,
        &[
            "trust",
            "tuf",
            "--metadata-dir",
            meta.to_str().unwrap(),
            "refresh",
        ],
        &[],
    );
    let err = fails(out, 1, "refresh without --metadata-url");
    assert!(err.contains("--metadata-url"), "{err}");
    assert!(!nowhere.exists(), "trust tuf must not touch the store root");
}
