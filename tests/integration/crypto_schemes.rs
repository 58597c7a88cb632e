//! OpenPGP and PKCS#7 recipients through the CLI against the real peers: skopeo encrypts and
//! rrun decrypts, rrun encrypts and skopeo decrypts, for each scheme and for jwe + pkcs7 + pgp
//! on one layer; `layerinfo` names pgp recipients; ECDH keys (cv25519, NIST P-256) against gpg
//! itself, since skopeo 1.9 encrypts to RSA keys only. Needs gpg, skopeo, openssl and
//! busybox-static (`make deps`); a missing peer fails the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;
use tempfile::TempDir;

const PGP: &str = "org.opencontainers.image.enc.keys.pgp";
const PKCS7: &str = "org.opencontainers.image.enc.keys.pkcs7";
const BOB_PASS: &str = "bob pass";

/// Fail (never skip) when a peer is missing.
fn require(name: &str, package: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| panic!("{name} not found: run `make deps` (apt-get install {package})"))
}

fn check(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Keys and the plain image, made once for the whole module.
struct Shared {
    dir: PathBuf,
    /// RSA keys only: skopeo 1.9 (x/crypto/openpgp) loses keys of a keyring that also holds
    /// ed25519/cv25519 keys.
    gnupg: PathBuf,
    /// The ECDH keys, for the gpg interop test.
    gnupg_ecc: PathBuf,
    plain: PathBuf,
}

impl Shared {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn gpg(&self) -> Command {
        self.gpg_in(&self.gnupg)
    }

    fn gpg_in(&self, home: &Path) -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", home)
            .args(["--batch", "--no-tty"])
            .stdin(Stdio::null());
        c
    }

    /// The encryption subkey id of a gpg key, lower-case hex.
    fn subkey_id(&self, email: &str) -> String {
        let out = check(
            self.gpg()
                .args(["--with-colons", "--list-keys", email])
                .output()
                .unwrap(),
            "gpg --list-keys",
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .find(|l| l.starts_with("sub:"))
            .and_then(|l| l.split(':').nth(4))
            .unwrap_or_else(|| panic!("{email} has no subkey"))
            .to_lowercase()
    }
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        for (bin, pkg) in [
            ("gpg", "gnupg"),
            ("gpgconf", "gnupg"),
            ("skopeo", "skopeo"),
            ("openssl", "openssl"),
        ] {
            require(bin, pkg);
        }
        let busybox = Path::new("/bin/busybox");
        assert!(
            busybox.is_file(),
            "/bin/busybox not found: run `make deps` (apt-get install busybox-static)"
        );
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("crypto-schemes");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (gnupg, gnupg_ecc) = (dir.join("gnupg"), dir.join("gnupg-ecc"));
        for home in [&gnupg, &gnupg_ecc] {
            std::fs::create_dir(home).unwrap();
            std::fs::set_permissions(home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .unwrap();
        }
        let s = Shared {
            plain: dir.join("plain"),
            dir,
            gnupg,
            gnupg_ecc,
        };

        // gpg keys: RSA (skopeo's x/crypto/openpgp encrypts to RSA only), one of them
        // passphrase-protected; cv25519 and NIST P-256 ECDH; a signing-only key.
        let keys = [
            ("alice", "%no-protection\nKey-Type: RSA\nKey-Length: 2048\nKey-Usage: sign\nSubkey-Type: RSA\nSubkey-Length: 2048\nSubkey-Usage: encrypt\nName-Real: Alice Rrun\n"),
            ("bob", &format!("Key-Type: RSA\nKey-Length: 2048\nKey-Usage: sign\nSubkey-Type: RSA\nSubkey-Length: 2048\nSubkey-Usage: encrypt\nName-Real: Bob Rrun\nPassphrase: {BOB_PASS}\n")),
            ("carol", "%no-protection\nKey-Type: EDDSA\nKey-Curve: ed25519\nKey-Usage: sign\nSubkey-Type: ECDH\nSubkey-Curve: cv25519\nSubkey-Usage: encrypt\nName-Real: Carol Rrun\n"),
            ("dave", "%no-protection\nKey-Type: ECDSA\nKey-Curve: nistp256\nKey-Usage: sign\nSubkey-Type: ECDH\nSubkey-Curve: nistp256\nSubkey-Usage: encrypt\nName-Real: Dave Rrun\n"),
            ("erin", "%no-protection\nKey-Type: RSA\nKey-Length: 2048\nKey-Usage: sign\nName-Real: Erin Rrun\n"),
        ];
        for (name, params) in keys {
            let home = if matches!(name, "carol" | "dave") {
                &s.gnupg_ecc
            } else {
                &s.gnupg
            };
            let file = s.path(&format!("{name}.params"));
            std::fs::write(
                &file,
                format!("{params}Name-Email: {name}@example.invalid\nExpire-Date: 0\n%commit\n"),
            )
            .unwrap();
            check(
                s.gpg_in(home)
                    .args(["--pinentry-mode", "loopback", "--gen-key"])
                    .arg(&file)
                    .output()
                    .unwrap(),
                "gpg --gen-key",
            );
        }
        for (name, home) in [
            ("alice", &s.gnupg),
            ("carol", &s.gnupg_ecc),
            ("dave", &s.gnupg_ecc),
        ] {
            let out = check(
                s.gpg_in(home)
                    .args(["--export-secret-keys", &format!("{name}@example.invalid")])
                    .output()
                    .unwrap(),
                "gpg --export-secret-keys",
            );
            std::fs::write(s.path(&format!("{name}.sec")), out.stdout).unwrap();
        }
        for (file, armor) in [("bob.sec", false), ("bob.asc", true)] {
            let mut c = s.gpg();
            c.args(["--pinentry-mode", "loopback", "--passphrase", BOB_PASS]);
            if armor {
                c.arg("--armor");
            }
            let out = check(
                c.args(["--export-secret-keys", "bob@example.invalid"])
                    .output()
                    .unwrap(),
                "gpg --export-secret-keys bob",
            );
            std::fs::write(s.path(file), out.stdout).unwrap();
        }

        // x509 recipients and a JWE key.
        for n in ["p7", "p7b"] {
            check(
                Command::new("openssl")
                    .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30"])
                    .args(["-subj", &format!("/CN=rrun-{n}")])
                    .arg("-keyout")
                    .arg(s.path(&format!("{n}.key")))
                    .arg("-out")
                    .arg(s.path(&format!("{n}.crt")))
                    .output()
                    .unwrap(),
                "openssl req",
            );
        }
        let both = [
            std::fs::read(s.path("p7.key")).unwrap(),
            std::fs::read(s.path("p7.crt")).unwrap(),
        ]
        .concat();
        std::fs::write(s.path("p7-both.pem"), both).unwrap();
        check(
            Command::new("openssl")
                .args(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out"])
                .arg(s.path("ec.crt.key"))
                .output()
                .unwrap(),
            "openssl ecparam",
        );
        check(
            Command::new("openssl")
                .args(["req", "-x509", "-new", "-days", "30", "-subj", "/CN=rrun-ec", "-key"])
                .arg(s.path("ec.crt.key"))
                .arg("-out")
                .arg(s.path("ec.crt"))
                .output()
                .unwrap(),
            "openssl req ec",
        );
        check(
            Command::new("openssl")
                .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
                .arg(s.path("jwe.key"))
                .output()
                .unwrap(),
            "openssl genpkey",
        );
        check(
            Command::new("openssl")
                .args(["pkey", "-pubout", "-in"])
                .arg(s.path("jwe.key"))
                .arg("-out")
                .arg(s.path("jwe.pub"))
                .output()
                .unwrap(),
            "openssl pkey",
        );
        // Key files are private.
        for f in std::fs::read_dir(&s.dir).unwrap() {
            let f = f.unwrap().path();
            if f.is_file() {
                std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                    .unwrap();
            }
        }
        // The agent is needed again only by the gpg interop test, which starts it itself.
        kill_agent(&s.gnupg);
        kill_agent(&s.gnupg_ecc);

        // A one-layer busybox image.
        let rootfs = s.path("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
        check(
            rrun(&s)
                .args(["image", "import"])
                .arg(&rootfs)
                .arg(oci(&s.plain))
                .output()
                .unwrap(),
            "rrun image import",
        );
        s
    })
}

fn kill_agent(home: &Path) {
    let _ = Command::new("gpgconf")
        .arg("--homedir")
        .arg(home)
        .args(["--kill", "all"])
        .output();
}

fn oci(layout: &Path) -> String {
    format!("oci:{}:latest", layout.display())
}

/// rrun with a store of its own and no GNUPGHOME unless a test sets one.
fn rrun(s: &Shared) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rrun"));
    c.env("RRUN_ROOT", s.path("root"))
        .env("RRUN_STATE", s.path("state"))
        .env_remove("GNUPGHOME")
        .stdin(Stdio::null());
    c
}

fn skopeo(s: &Shared) -> Command {
    let mut c = Command::new("skopeo");
    c.env("GNUPGHOME", &s.gnupg)
        .args(["--insecure-policy", "copy", "--quiet"])
        .stdin(Stdio::null());
    c
}

/// The manifest of a layout's only image.
fn manifest(layout: &Path) -> (Value, PathBuf) {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let path = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    (
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap(),
        path,
    )
}

/// `(mediaType, digest)` of every layer.
fn layers(layout: &Path) -> Vec<(String, String)> {
    manifest(layout).0["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["mediaType"].as_str().unwrap().to_string(),
                l["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn annotation(layout: &Path, key: &str) -> Option<String> {
    manifest(layout).0["layers"][0]["annotations"][key]
        .as_str()
        .map(str::to_string)
}

/// Assert that `layout` holds the plain image's layers again.
fn assert_plain(s: &Shared, layout: &Path) {
    assert_eq!(layers(layout), layers(&s.plain), "{}", layout.display());
}

fn assert_encrypted(layout: &Path, schemes: &[&str]) {
    let ls = layers(layout);
    assert!(ls[0].0.ends_with("+encrypted"), "{ls:?}");
    for scheme in schemes {
        let key = format!("org.opencontainers.image.enc.keys.{scheme}");
        assert!(
            annotation(layout, &key).is_some(),
            "no {key} in {}",
            layout.display()
        );
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn skopeo_pgp_image_decrypts_with_rrun_for_each_key_form() {
    let s = shared();
    let t = TempDir::new().unwrap();
    let enc = t.path().join("enc");
    check(
        skopeo(s)
            .args(["--encryption-key", "pgp:alice@example.invalid"])
            .args(["--encryption-key", "pgp:bob@example.invalid"])
            .arg(oci(&s.plain))
            .arg(oci(&enc))
            .output()
            .unwrap(),
        "skopeo encrypt pgp",
    );
    assert_encrypted(&enc, &["pgp"]);
    for (n, key) in [
        s.p("alice.sec"),
        format!("{}:pass={BOB_PASS}", s.p("bob.asc")),
        format!("{}:{BOB_PASS}", s.p("bob.sec")),
    ]
    .into_iter()
    .enumerate()
    {
        let dec = t.path().join(format!("dec{n}"));
        check(
            rrun(s)
                .args(["image", "decrypt", "--key", &key])
                .arg(oci(&enc))
                .arg(oci(&dec))
                .output()
                .unwrap(),
            &format!("rrun decrypt with {key}"),
        );
        assert_plain(s, &dec);
    }
    // A protected keyring without its passphrase, and a key the image is not for.
    let dec = t.path().join("refused");
    for (key, want) in [
        (s.p("bob.asc"), "is encrypted: give its password"),
        (format!("{}:pass=wrong", s.p("bob.asc")), "wrong password"),
        (s.p("carol.sec"), "no key opens layer"),
    ] {
        let out = rrun(s)
            .args(["image", "decrypt", "--key", &key])
            .arg(oci(&enc))
            .arg(oci(&dec))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(125), "{key}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{key}: {}", stderr(&out));
    }
}

#[test]
fn rrun_pgp_image_decrypts_with_skopeo() {
    let s = shared();
    let t = TempDir::new().unwrap();
    let enc = t.path().join("enc");
    // --gpg-homedir, a name and an email as recipients.
    check(
        rrun(s)
            .args(["image", "encrypt", "--gpg-homedir"])
            .arg(&s.gnupg)
            .args(["--recipient", "pgp:Alice Rrun"])
            .args(["--recipient", "pgp:bob@example.invalid"])
            .arg(oci(&s.plain))
            .arg(oci(&enc))
            .output()
            .unwrap(),
        "rrun encrypt pgp",
    );
    assert_encrypted(&enc, &["pgp"]);
    // skopeo 1.9 reads no password for --decryption-key (its ocicrypt opens "FILE:PW" as a
    // file name), so it decrypts with the unprotected key; rrun opens the protected one.
    let dec = t.path().join("dec");
    check(
        skopeo(s)
            .args(["--decryption-key", &s.p("alice.sec")])
            .arg(oci(&enc))
            .arg(oci(&dec))
            .output()
            .unwrap(),
        "skopeo decrypt with alice",
    );
    assert_plain(s, &dec);
    let dec = t.path().join("dec-bob");
    check(
        rrun(s)
            .args([
                "image",
                "decrypt",
                "--key",
                &format!("{}:pass={BOB_PASS}", s.p("bob.sec")),
            ])
            .arg(oci(&enc))
            .arg(oci(&dec))
            .output()
            .unwrap(),
        "rrun decrypt with bob",
    );
    assert_plain(s, &dec);
}

#[test]
fn layerinfo_shows_pgp_key_ids_and_emails() {
    let s = shared();
    let t = TempDir::new().unwrap();
    let enc = t.path().join("enc");
    check(
        skopeo(s)
            .args(["--encryption-key", "pgp:alice@example.invalid"])
            .args(["--encryption-key", "pgp:bob@example.invalid"])
            .arg(oci(&s.plain))
            .arg(oci(&enc))
            .output()
            .unwrap(),
        "skopeo encrypt pgp",
    );
    let alice = format!("0x{}", s.subkey_id("alice@example.invalid"));
    let bob = format!("0x{}", s.subkey_id("bob@example.invalid"));
    let out = check(
        rrun(s)
            .env("GNUPGHOME", &s.gnupg)
            .args(["image", "layerinfo"])
            .arg(oci(&enc))
            .output()
            .unwrap(),
        "rrun layerinfo",
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains(&format!("{alice} (alice@example.invalid)"))
            && table.contains(&format!("{bob} (bob@example.invalid)")),
        "{table}"
    );
    // A keyring that does not know the keys: key ids only.
    let empty = t.path().join("empty-gnupg");
    std::fs::create_dir(&empty).unwrap();
    let out = check(
        rrun(s)
            .env("GNUPGHOME", &empty)
            .args(["image", "layerinfo", "--format", "json"])
            .arg(oci(&enc))
            .output()
            .unwrap(),
        "rrun layerinfo json",
    );
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut recipients: Vec<&str> = rows[0]["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    recipients.sort();
    let mut want = vec![alice.as_str(), bob.as_str()];
    want.sort();
    assert_eq!(recipients, want);
    kill_agent(&empty);
}

#[test]
fn skopeo_pkcs7_image_decrypts_with_rrun() {
    let s = shared();
    let t = TempDir::new().unwrap();
    let enc = t.path().join("enc");
    check(
        skopeo(s)
            .args(["--encryption-key", &format!("pkcs7:{}", s.p("p7.crt"))])
            .arg(oci(&s.plain))
            .arg(oci(&enc))
            .output()
            .unwrap(),
        "skopeo encrypt pkcs7",
    );
    assert_encrypted(&enc, &["pkcs7"]);
    let p7 = STANDARD.decode(annotation(&enc, PKCS7).unwrap()).unwrap();
    // skopeo's non-standard GCM parameters: 10 13 30 11 84 0c <nonce> 02 01 10.
    assert!(p7
        .windows(6)
        .any(|w| w == [0x10, 0x13, 0x30, 0x11, 0x84, 0x0c]));
    for (n, keys) in [
        vec![s.p("p7.key"), s.p("p7.crt")],
        vec![s.p("p7-both.pem")],
        vec![s.p("p7.key")],
    ]
    .into_iter()
    .enumerate()
    {
        let dec = t.path().join(format!("dec{n}"));
        let mut c = rrun(s);
        c.args(["image", "decrypt"]);
        for k in &keys {
            c.args(["--key", k]);
        }
        check(
            c.arg(oci(&enc)).arg(oci(&dec)).output().unwrap(),
            &format!("rrun decrypt with {keys:?}"),
        );
        assert_plain(s, &dec);
    }
    let out = rrun(s)
        .args([
            "image",
            "decrypt",
            "--key",
            &s.p("p7b.key"),
            "--key",
            &s.p("p7b.crt"),
        ])
        .arg(oci(&enc))
        .arg(oci(&t.path().join("refused")))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no key opens layer"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn rrun_pkcs7_image_decrypts_with_skopeo() {
    let s = shared();
    let t = TempDir::new().unwrap();
    let enc = t.path().join("enc");
    check(
        rrun(s)
            .args(["image", "encrypt"])
            .args(["--recipient", &format!("pkcs7:{}", s.p("p7.crt"))])
            .args(["--recipient", &format!("pkcs7:{}", s.p("p7b.crt"))])
            .arg(oci(&s.plain))
            .arg(oci(&enc))
            .output()
            .unwrap(),
        "rrun encrypt pkcs7",
    );
    assert_encrypted(&enc, &["pkcs7"]);
    for (n, name) in ["p7", "p7b"].into_iter().enumerate() {
        let dec = t.path().join(format!("dec{n}"));
        check(
            skopeo(s)
                .args(["--decryption-key", &s.p(&format!("{name}.key"))])
                .args(["--decryption-key", &s.p(&format!("{name}.crt"))])
                .arg(oci(&enc))
                .arg(oci(&dec))
                .output()
                .unwrap(),
            &format!("skopeo decrypt with {name}"),
        );
        assert_plain(s, &dec);
    }
    let out = check(
        rrun(s)
            .args(["image", "layerinfo"])
            .arg(oci(&enc))
            .output()
            .unwrap(),
        "rrun layerinfo",
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("[pkcs7] CN=rrun-p7 serial"), "{table}");
    assert!(table.contains("[pkcs7] CN=rrun-p7b serial"), "{table}");
}

/// The recipients of the three-scheme tests, as `--encryption-key`/`--recipient` values.
fn three_schemes(s: &Shared) -> Vec<String> {
    vec![
        format!("jwe:{}", s.p("jwe.pub")),
        format!("pkcs7:{}", s.p("p7.crt")),
        "pgp:alice@example.invalid".to_string(),
    ]
}

/// The decryption keys that each open one of the three schemes alone.
fn three_keys(s: &Shared) -> Vec<Vec<String>> {
    vec![
        vec![s.p("jwe.key")],
        vec![s.p("p7.key"), s.p("p7.crt")],
        vec![s.p("alice.sec")],
    ]
}

#[test]
fn three_schemes_on_one_layer_skopeo_to_rrun() {
    let s = shared();
    let t = TempDir::new().unwrap();
    let enc = t.path().join("enc");
    let mut c = skopeo(s);
    for r in three_schemes(s) {
        c.args(["--encryption-key", &r]);
    }
    check(
        c.arg(oci(&s.plain)).arg(oci(&enc)).output().unwrap(),
        "skopeo encrypt jwe+pkcs7+pgp",
    );
    assert_encrypted(&enc, &["jwe", "pkcs7", "pgp"]);
    for (n, keys) in three_keys(s).into_iter().enumerate() {
        let dec = t.path().join(format!("dec{n}"));
        let mut c = rrun(s);
        c.args(["image", "decrypt"]);
        for k in &keys {
            c.args(["--key", k]);
        }
        check(
            c.arg(oci(&enc)).arg(oci(&dec)).output().unwrap(),
            &format!("rrun decrypt with {keys:?}"),
        );
        assert_plain(s, &dec);
    }
    let out = check(
        rrun(s)
            .env("GNUPGHOME", &s.gnupg)
            .args(["image", "layerinfo"])
            .arg(oci(&enc))
            .output()
            .unwrap(),
        "rrun layerinfo",
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("jwe,pgp,pkcs7"), "{table}");
    assert!(
        table.contains("[jwe]") && table.contains("(alice@example.invalid)"),
        "{table}"
    );
}

#[test]
fn three_schemes_on_one_layer_rrun_to_skopeo() {
    let s = shared();
    let t = TempDir::new().unwrap();
    let enc = t.path().join("enc");
    let mut c = rrun(s);
    c.env("GNUPGHOME", &s.gnupg).args(["image", "encrypt"]);
    for r in three_schemes(s) {
        c.args(["--recipient", &r]);
    }
    check(
        c.arg(oci(&s.plain)).arg(oci(&enc)).output().unwrap(),
        "rrun encrypt jwe+pkcs7+pgp",
    );
    assert_encrypted(&enc, &["jwe", "pkcs7", "pgp"]);
    for (n, keys) in three_keys(s).into_iter().enumerate() {
        let dec = t.path().join(format!("dec{n}"));
        let mut c = skopeo(s);
        for k in &keys {
            c.args(["--decryption-key", k]);
        }
        check(
            c.arg(oci(&enc)).arg(oci(&dec)).output().unwrap(),
            &format!("skopeo decrypt with {keys:?}"),
        );
        assert_plain(s, &dec);
    }
}

#[test]
fn pgp_recipients_are_added_to_an_encrypted_layer_without_reencryption() {
    let s = shared();
    let t = TempDir::new().unwrap();
    let (first, second) = (t.path().join("first"), t.path().join("second"));
    check(
        rrun(s)
            .args([
                "image",
                "encrypt",
                "--recipient",
                &format!("pkcs7:{}", s.p("p7.crt")),
            ])
            .arg(oci(&s.plain))
            .arg(oci(&first))
            .output()
            .unwrap(),
        "rrun encrypt pkcs7",
    );
    check(
        rrun(s)
            .args(["image", "encrypt", "--gpg-homedir"])
            .arg(&s.gnupg)
            .args([
                "--recipient",
                "pgp:alice@example.invalid",
                "--key",
                &s.p("p7-both.pem"),
            ])
            .arg(oci(&first))
            .arg(oci(&second))
            .output()
            .unwrap(),
        "rrun add pgp recipient",
    );
    assert_eq!(
        layers(&first),
        layers(&second),
        "the layer was re-encrypted"
    );
    assert_encrypted(&second, &["pkcs7", "pgp"]);
    let dec = t.path().join("dec");
    check(
        skopeo(s)
            .args(["--decryption-key", &s.p("alice.sec")])
            .arg(oci(&second))
            .arg(oci(&dec))
            .output()
            .unwrap(),
        "skopeo decrypt with alice",
    );
    assert_plain(s, &dec);
}

/// Replace the pgp annotation of a layout's first layer (rewriting manifest and index).
fn set_pgp_annotation(layout: &Path, message: &[u8]) {
    let (mut m, _) = manifest(layout);
    m["layers"][0]["annotations"][PGP] = Value::from(STANDARD.encode(message));
    let bytes = serde_json::to_vec(&m).unwrap();
    let digest = hex::encode(openssl::sha::sha256(&bytes));
    std::fs::write(layout.join("blobs/sha256").join(&digest), &bytes).unwrap();
    let index_path = layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    index["manifests"][0]["digest"] = Value::from(format!("sha256:{digest}"));
    index["manifests"][0]["size"] = Value::from(bytes.len());
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
}

#[test]
fn ecdh_keys_interoperate_with_gpg() {
    let s = shared();
    let t = TempDir::new().unwrap();
    let plain_digest = layers(&s.plain)[0].1.clone();
    for name in ["carol", "dave"] {
        let email = format!("{name}@example.invalid");
        let enc = t.path().join(format!("{name}-enc"));
        check(
            rrun(s)
                .args(["image", "encrypt", "--gpg-homedir"])
                .arg(&s.gnupg_ecc)
                .args(["--recipient", &format!("pgp:{email}")])
                .arg(oci(&s.plain))
                .arg(oci(&enc))
                .output()
                .unwrap(),
            &format!("rrun encrypt for {name}"),
        );
        // gpg opens rrun's ECDH message.
        let msg = STANDARD.decode(annotation(&enc, PGP).unwrap()).unwrap();
        let msg_file = t.path().join(format!("{name}.msg"));
        std::fs::write(&msg_file, &msg).unwrap();
        let out = check(
            s.gpg_in(&s.gnupg_ecc)
                .arg("--decrypt")
                .arg(&msg_file)
                .output()
                .unwrap(),
            &format!("gpg --decrypt for {name}"),
        );
        let opts: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(opts["digest"], Value::from(plain_digest.clone()), "{name}");
        // rrun opens it with the exported secret key.
        let dec = t.path().join(format!("{name}-dec"));
        check(
            rrun(s)
                .args(["image", "decrypt", "--key", &s.p(&format!("{name}.sec"))])
                .arg(oci(&enc))
                .arg(oci(&dec))
                .output()
                .unwrap(),
            &format!("rrun decrypt for {name}"),
        );
        assert_plain(s, &dec);
        // rrun opens gpg's own (compressed) message with the same options.
        let json_file = t.path().join(format!("{name}.json"));
        std::fs::write(&json_file, &out.stdout).unwrap();
        let gpg_msg = t.path().join(format!("{name}.gpg"));
        check(
            s.gpg_in(&s.gnupg_ecc)
                .args([
                    "--trust-model",
                    "always",
                    "--encrypt",
                    "--recipient",
                    &email,
                    "--output",
                ])
                .arg(&gpg_msg)
                .arg(&json_file)
                .output()
                .unwrap(),
            &format!("gpg --encrypt for {name}"),
        );
        set_pgp_annotation(&enc, &std::fs::read(&gpg_msg).unwrap());
        let dec2 = t.path().join(format!("{name}-dec-gpg"));
        check(
            rrun(s)
                .args(["image", "decrypt", "--key", &s.p(&format!("{name}.sec"))])
                .arg(oci(&enc))
                .arg(oci(&dec2))
                .output()
                .unwrap(),
            &format!("rrun decrypt of gpg's message for {name}"),
        );
        assert_plain(s, &dec2);
    }
    kill_agent(&s.gnupg_ecc);
}

#[test]
fn gpg_keyring_is_read_from_its_file_when_gpg_is_not_installed() {
    let s = shared();
    let t = TempDir::new().unwrap();
    let enc = t.path().join("enc");
    let no_tools = t.path().join("bin");
    std::fs::create_dir(&no_tools).unwrap();
    check(
        rrun(s)
            .env("PATH", &no_tools)
            .args(["image", "encrypt", "--gpg-homedir"])
            .arg(&s.gnupg)
            .args(["--recipient", "pgp:alice@example.invalid"])
            .arg(oci(&s.plain))
            .arg(oci(&enc))
            .output()
            .unwrap(),
        "rrun encrypt reading pubring.kbx",
    );
    let dec = t.path().join("dec");
    check(
        rrun(s)
            .args(["image", "decrypt", "--key", &s.p("alice.sec")])
            .arg(oci(&enc))
            .arg(oci(&dec))
            .output()
            .unwrap(),
        "rrun decrypt",
    );
    assert_plain(s, &dec);
}

#[test]
fn unusable_recipients_and_keys_are_refused_with_a_reason() {
    let s = shared();
    let t = TempDir::new().unwrap();
    let junk = t.path().join("junk.key");
    std::fs::write(&junk, b"this is not a key\n").unwrap();
    let missing_home = t.path().join("no-gnupg");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--recipient".into(), "pgp:nobody@example.invalid".into()],
            "no key in the gpg keyring",
        ),
        (
            vec!["--recipient".into(), "pgp:erin@example.invalid".into()],
            "no encryption subkey",
        ),
        (
            vec!["--recipient".into(), format!("pkcs7:{}", s.p("ec.crt"))],
            "need an RSA certificate",
        ),
        (
            vec!["--recipient".into(), format!("pkcs7:{}", s.p("p7.key"))],
            "is not an x509 certificate",
        ),
        (
            vec!["--recipient".into(), "pkcs11:token.yaml".into()],
            "no such file",
        ),
        (
            vec![
                "--recipient".into(),
                "pgp:alice@example.invalid".into(),
                "--gpg-homedir".into(),
                missing_home.display().to_string(),
            ],
            "does not exist",
        ),
        (
            vec![
                "--recipient".into(),
                format!("jwe:{}", s.p("jwe.pub")),
                "--key".into(),
                junk.display().to_string(),
            ],
            "not a key file rrun knows",
        ),
    ];
    for (args, want) in cases {
        let out = rrun(s)
            .env("GNUPGHOME", &s.gnupg)
            .args(["image", "encrypt"])
            .args(&args)
            .arg(oci(&s.plain))
            .arg(oci(&t.path().join("out")))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(125), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
    assert!(!missing_home.exists(), "gpg must not create a missing home");
}
