//! Content trust on pull and push through the binary, against the real notary-server +
//! notary-signer and Debian's docker-registry: `push --sign` (checked with the real `notary`
//! CLI), `pull --verify` / `RRUN_CONTENT_TRUST=1` / policy files fetching the manifest by the
//! signed digest only, an unsigned image pushed over a signed tag by skopeo, unsigned
//! repositories, tags and digests, and a signed length that does not match.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::registry_util::{
    digest, small_image, store_names, store_state, Auth, Env, Registry, Run,
};
use super::trust_util::NotaryServer;

const PASSPHRASES: &[(&str, &str)] = &[
    ("RRUN_TRUST_ROOT_PASSPHRASE", "pull-root-pw"),
    ("RRUN_TRUST_REPOSITORY_PASSPHRASE", "pull-repo-pw"),
];

/// A registry, a trust server, a store, and two different images in OCI layouts.
struct Fixture {
    tmp: tempfile::TempDir,
    env: Env,
    reg: Registry,
    notary: NotaryServer,
    /// `oci:` references of the two images (tag `v1` in layouts A and B).
    a: String,
    b: String,
}

impl Fixture {
    fn start() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let env = Env::new(tmp.path());
        let (la, lb) = (tmp.path().join("A"), tmp.path().join("B"));
        small_image(&la, "v1");
        small_image(&lb, "v1");
        Fixture {
            env,
            reg: Registry::start(Auth::None),
            notary: NotaryServer::start(),
            a: format!("oci:{}:v1", la.display()),
            b: format!("oci:{}:v1", lb.display()),
            tmp,
        }
    }

    fn image(&self, rest: &str) -> String {
        format!("{}/{rest}", self.reg.host())
    }

    fn ca(&self) -> &str {
        self.notary.ca.to_str().unwrap()
    }

    /// rrun `verb` with `--trust-server` and `--tls-ca` of the test's notary, then `args`.
    fn rrun_trust(&self, verb: &[&str], args: &[&str], vars: &[(&str, &str)]) -> Run {
        let mut all: Vec<&str> = verb.to_vec();
        all.extend(["--trust-server", &self.notary.url, "--tls-ca", self.ca()]);
        all.extend(args);
        self.env.rrun_vars(&all, vars)
    }

    /// `rrun push --sign SRC DEST`; returns the signed digest.
    fn push_signed(&self, src: &str, dest: &str) -> String {
        let out = self.rrun_trust(&["push", "--sign"], &[src, dest], PASSPHRASES);
        out.ok();
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("signed {dest} as sha256:")))
            .unwrap_or_else(|| panic!("no signed line:\n{}", out.stdout));
        line.split_whitespace().nth(3).unwrap().to_string()
    }

    /// skopeo copies `src` to `dest` (no signature); returns the registry's manifest digest.
    fn push_unsigned(&self, src: &str, dest: &str) -> String {
        let d = format!("docker://{dest}");
        self.env
            .skopeo(&["copy", "--dest-tls-verify=false", src, &d])
            .ok();
        let raw = self
            .env
            .skopeo(&["inspect", "--raw", "--tls-verify=false", &d]);
        raw.ok();
        digest(raw.stdout.as_bytes())
    }

    /// `rrun pull` with the trust server options into the store `root` (a fresh store each
    /// time unless the same path is given).
    fn pull(&self, root: &Path, args: &[&str], vars: &[(&str, &str)]) -> Run {
        let mut all = vec![
            "pull",
            "--trust-server",
            &self.notary.url,
            "--tls-ca",
            self.ca(),
        ];
        all.extend(args);
        self.at(root).rrun_vars(&all, vars)
    }

    /// The test's environment with the store `root`.
    fn at(&self, root: &Path) -> Env {
        Env {
            root: root.to_path_buf(),
            ..self.env.clone()
        }
    }

    fn store(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Registry log lines fetching the manifest `reference` of `repository`.
    fn manifest_gets(&self, repository: &str, reference: &str) -> usize {
        let needle = format!("/v2/{repository}/manifests/{reference} ");
        self.reg
            .log()
            .lines()
            .filter(|l| l.contains("\"GET ") && l.contains(&needle))
            .count()
    }
}

#[test]
fn trust_pull_notary_peer_signed_tag_wins_over_an_unsigned_push() {
    let f = Fixture::start();
    let tagged = f.image("app:v1");
    let signed = f.push_signed(&f.a, &tagged);

    // the real notary CLI lists what push --sign published: the tag with digest and length
    let gun = f.image("app");
    let listed = f.notary.notary(&["list", &gun]);
    let hex = signed.trim_start_matches("sha256:");
    assert!(
        listed
            .lines()
            .any(|l| l.split_whitespace().take(2).eq(["v1", hex])),
        "{listed}"
    );

    // a verified pull stores the signed manifest under the tag
    let s1 = f.store("s1");
    let out = f.pull(&s1, &["--verify", &tagged], &[]);
    out.ok();
    assert!(
        out.stdout.contains("signed by Repo Admin"),
        "{}",
        out.stdout
    );
    assert_eq!(store_names(&s1)[&tagged], signed);

    // skopeo pushes another image over the same tag, without signing it
    let moved = f.push_unsigned(&f.b, &tagged);
    assert_ne!(moved, signed);
    // --verify still pulls the signed digest, and never asks the registry for the tag
    let by_tag = f.manifest_gets("app", "v1");
    let s2 = f.store("s2");
    f.pull(&s2, &["--verify", &tagged], &[]).ok();
    assert_eq!(store_names(&s2)[&tagged], signed);
    assert_eq!(f.manifest_gets("app", "v1"), by_tag, "{}", f.reg.log());
    assert!(f.manifest_gets("app", &signed) > 0);
    // RRUN_CONTENT_TRUST=1 does the same; "0" turns it off
    let s3 = f.store("s3");
    f.pull(&s3, &[&tagged], &[("RRUN_CONTENT_TRUST", "1")]).ok();
    assert_eq!(store_names(&s3)[&tagged], signed);
    // without trust, the moved tag is what is pulled
    let s4 = f.store("s4");
    f.pull(&s4, &[&tagged], &[("RRUN_CONTENT_TRUST", "0")]).ok();
    assert_eq!(store_names(&s4)[&tagged], moved);

    // a pull by digest with trust on: only a signed digest of the repository
    let s5 = f.store("s5");
    let unsigned_digest = format!("{gun}@{moved}");
    let before = store_state(&s5);
    f.pull(&s5, &["--verify", &unsigned_digest], &[])
        .rrun_error(&["content trust refused", "no signed tag", &moved]);
    assert_eq!(store_state(&s5), before, "the store is unchanged");
    let signed_digest = format!("{gun}@{signed}");
    f.pull(&s5, &["--verify", &signed_digest], &[]).ok();
    assert_eq!(store_names(&s5)[&signed_digest], signed);

    // an unsigned tag in the registry is refused
    f.push_unsigned(&f.b, &f.image("app:unsigned"));
    f.pull(&s5, &["--verify", &f.image("app:unsigned")], &[])
        .rrun_error(&["no trust data for", "app:unsigned"]);

    // a signed length that is not the manifest's: refused before any blob is fetched
    let size = f
        .env
        .skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{signed_digest}"),
        ])
        .stdout
        .len();
    let wrong = (size + 1).to_string();
    let badlen = f.image("app:badlen");
    f.rrun_trust(
        &["trust", "sign"],
        &[&badlen, "--digest", &signed, "--size", &wrong],
        PASSPHRASES,
    )
    .ok();
    let s6 = f.store("s6");
    f.pull(&s6, &["--verify", &badlen], &[])
        .rrun_error(&["signed length", &format!("expected {wrong}")]);
    assert!(store_state(&s6).1.is_none(), "nothing was stored");
}

#[test]
fn trust_pull_notary_peer_unsigned_repositories_and_policy_files() {
    let f = Fixture::start();
    let app = f.image("app:v1");
    let plain = f.image("plain:v1");
    let signed = f.push_signed(&f.a, &app);
    let moved = f.push_unsigned(&f.b, &app);
    let unsigned = f.push_unsigned(&f.b, &plain);

    // an unsigned repository: refused, saying how to sign it or turn trust off
    let s = f.store("s");
    f.pull(&s, &["--verify", &plain], &[]).rrun_error(&[
        &format!("{} is not signed", f.image("plain")),
        "rrun push --sign",
        "pull without --verify",
        "has no trust data",
    ]);
    f.pull(&s, &[&plain], &[("RRUN_CONTENT_TRUST", "1")])
        .rrun_error(&["is not signed", "unset RRUN_CONTENT_TRUST"]);

    // a policy requiring signatures for app only: app resolves through Notary, plain does not
    let policy = f.store("policy.json");
    let write = |v: serde_json::Value| std::fs::write(&policy, v.to_string()).unwrap();
    let app_scope = f.image("app");
    write(
        json!({"default": "insecureAcceptAnything", "transports": {"docker": {
        app_scope.as_str(): {"type": "notarySigned", "trustServer": f.notary.url, "tlsCa": f.ca()}}}}),
    );
    let p = policy.to_str().unwrap();
    // (no --trust-server: it comes from the policy)
    let pull =
        |root: &Path, image: &str| f.at(root).rrun_vars(&["pull", "--policy", p, image], &[]);
    pull(&s, &app).ok();
    pull(&s, &plain).ok();
    let names = store_names(&s);
    assert_eq!(names[&app], signed);
    assert_eq!(names[&plain], unsigned);
    assert_ne!(moved, signed);

    // a registry-wide requirement: the unsigned repository is refused, naming the policy
    let host = f.reg.host();
    write(
        json!({"default": "insecureAcceptAnything", "transports": {"docker": {
        host.as_str(): {"type": "notarySigned", "trustServer": f.notary.url, "tlsCa": f.ca()}}}}),
    );
    let s2 = f.store("s2");
    pull(&s2, &plain).rrun_error(&["is not signed", "change the policy", p]);
    pull(&s2, &app).ok();
    assert_eq!(store_names(&s2)[&app], signed);
    // a rejected repository is refused before any network access
    write(
        json!({"default": "insecureAcceptAnything", "transports": {"docker": {
        host.as_str(): "reject"}}}),
    );
    pull(&s2, &plain).rrun_error(&["rejects images from", &f.image("plain")]);
}

#[test]
fn trust_pull_push_sign_needs_a_tag_before_anything_is_uploaded() {
    let tmp = tempfile::tempdir().unwrap();
    let env = Env::new(tmp.path());
    let layout = tmp.path().join("L");
    small_image(&layout, "v1");
    let src = format!("oci:{}:v1", layout.display());
    // nothing listens on port 9: the refusal comes before any connection
    let dest = format!("127.0.0.1:9/app@sha256:{}", "ab".repeat(32));
    env.rrun_vars(&["push", "--sign", &src, &dest], &[])
        .rrun_error(&["--sign signs a tag", "without @digest"]);
}
