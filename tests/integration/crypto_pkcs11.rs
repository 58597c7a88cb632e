//! PKCS#11 recipients and keys through the CLI against a real SoftHSM2 token: a token is made in
//! a scratch `SOFTHSM2_CONF` with an RSA-3072 key pair (pkcs11-tool from opensc), then rrun
//! encrypts for the PEM public key and for the YAML key file, decrypts with the YAML key file,
//! obeys the module policy of `OCICRYPT_CONFIG`, and reports a wrong PIN. Debian's skopeo 1.9.3
//! (ocicrypt 1.0.3) predates pkcs11: a test proves it refuses `pkcs11:`, so there is no skopeo
//! interop for this scheme. Needs softhsm2, opensc and skopeo (`make deps`).

use std::fs;
use std::path::PathBuf;

use base64::Engine as _;
use serde_json::Value;

use crate::crypto_keyprovider::{assert_plain_again, Providers};
use crate::util::*;

const ANN_PKCS11: &str = "org.opencontainers.image.enc.keys.pkcs11";
const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "1234";

/// A SoftHSM token holding one RSA key pair, and the files that name it.
struct Token {
    /// The environment runner (`OCICRYPT_CONFIG` and `SOFTHSM2_CONF` set).
    env: Providers,
    dir: PathBuf,
    /// The YAML key file (`pkcs11:` URI with module name and PIN).
    yaml: String,
    /// The public key, PEM.
    pem: String,
}

fn pkcs11_tool(conf: &str, args: &[&str]) -> Output {
    require_tool("pkcs11-tool");
    let mut cmd = std::process::Command::new("pkcs11-tool");
    cmd.env("SOFTHSM2_CONF", conf)
        .args(["--module", MODULE, "--token-label", "rrun"])
        .args(args);
    let out = run(cmd);
    out.ok();
    out
}

impl Token {
    fn new() -> Self {
        require_tool("softhsm2-util");
        assert!(
            std::path::Path::new(MODULE).exists(),
            "{MODULE} missing: run `make deps` (apt-get install softhsm2)"
        );
        let env = Providers::new(&[]);
        let dir = env.dir.path().to_path_buf();
        fs::create_dir_all(dir.join("tokens")).unwrap();
        let conf = dir.join("softhsm2.conf").display().to_string();
        fs::write(
            &conf,
            format!(
                "directories.tokendir = {}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.display()
            ),
        )
        .unwrap();
        let mut init = std::process::Command::new("softhsm2-util");
        init.env("SOFTHSM2_CONF", &conf).args([
            "--init-token",
            "--free",
            "--label",
            "rrun",
            "--pin",
            PIN,
            "--so-pin",
            "5678",
        ]);
        run(init).ok();
        pkcs11_tool(
            &conf,
            &[
                "--login",
                "--pin",
                PIN,
                "--keypairgen",
                "--key-type",
                "rsa:3072",
                "--label",
                "rrunkey",
                "--id",
                "01",
            ],
        );
        let der = dir.join("pub.der").display().to_string();
        pkcs11_tool(
            &conf,
            &[
                "--read-object",
                "--type",
                "pubkey",
                "--label",
                "rrunkey",
                "-o",
                &der,
            ],
        );
        let pem = dir.join("pub.pem").display().to_string();
        tool(
            "openssl",
            [
                "pkey", "-pubin", "-inform", "DER", "-in", &der, "-out", &pem,
            ],
        );
        let yaml = Self::key_file(&dir, "key.yaml", &conf, PIN);
        let policy = dir.join("ocicrypt.conf");
        fs::write(
            &policy,
            "pkcs11:\n  module-directories:\n    - /usr/lib/softhsm/\n  allowed-module-paths:\n    - /usr/lib/softhsm/\n",
        )
        .unwrap();
        let env = env
            .with_env("OCICRYPT_CONFIG", &policy.display().to_string())
            .with_env("SOFTHSM2_CONF", &conf)
            // SoftHSM 2.6 does RSA-OAEP with SHA-1 only.
            .with_env("OCICRYPT_OAEP_HASHALG", "sha1");
        Self {
            env,
            dir,
            yaml,
            pem,
        }
    }

    /// Write a YAML key file for the token's key with `pin`.
    fn key_file(dir: &std::path::Path, name: &str, conf: &str, pin: &str) -> String {
        let path = dir.join(name);
        fs::write(
            &path,
            format!(
                "pkcs11:\n  uri: pkcs11:token=rrun;object=rrunkey?module-name=softhsm2&pin-value={pin}\nmodule:\n  env:\n    SOFTHSM2_CONF: {conf}\n"
            ),
        )
        .unwrap();
        path.display().to_string()
    }
}

/// The decoded pkcs11 blob JSON of every layer.
fn blobs(enc: &Layout) -> Vec<Value> {
    enc.layers(TAG)
        .iter()
        .map(|l| {
            let v = l.annotation(ANN_PKCS11).expect("pkcs11 annotation");
            let raw = base64::engine::general_purpose::STANDARD.decode(v).unwrap();
            serde_json::from_slice(&raw).expect("pkcs11 blob JSON")
        })
        .collect()
}

#[test]
fn pem_recipient_encrypts_and_the_token_decrypts() {
    let fx = fixtures();
    let t = Token::new();
    let w = workdir();
    // SoftHSM 2.6 does RSA-OAEP with SHA-1 only (ocicrypt's reason for OCICRYPT_OAEP_HASHALG).
    let env = t.env.clone_with("OCICRYPT_OAEP_HASHALG", "sha1");
    let enc = Layout::new(w.path().join("enc"));
    env.encrypt(
        &[&format!("pkcs11:{}", t.pem)],
        &fx.image.reference(TAG),
        &enc.reference(TAG),
    )
    .ok();
    for b in blobs(&enc) {
        assert_eq!(b["version"], 0);
        assert_eq!(b["recipients"][0]["hash"], "sha1");
    }
    let dec = Layout::new(w.path().join("dec"));
    t.env
        .decrypt(&[&t.yaml], &enc.reference(TAG), &dec.reference(TAG))
        .ok();
    assert_plain_again(&dec, &fx.image);
}

#[test]
fn sha256_is_the_default_and_opens_with_the_software_key() {
    // The default hash is sha256; SoftHSM cannot decrypt it, so a software RSA-3072 key checks
    // the blob with openssl: OAEP-SHA256 (MGF1-SHA256, empty label) of the private options.
    let fx = fixtures();
    let t = Token::new();
    let w = workdir();
    let key = t.dir.join("soft.pem").display().to_string();
    let public = t.dir.join("soft.pub").display().to_string();
    tool(
        "openssl",
        [
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:3072",
            "-out",
            &key,
        ],
    );
    tool("openssl", ["pkey", "-in", &key, "-pubout", "-out", &public]);
    let env = t.env.clone_with("OCICRYPT_OAEP_HASHALG", "");
    let enc = Layout::new(w.path().join("enc"));
    env.encrypt(
        &[&format!("pkcs11:{public}")],
        &fx.image.reference(TAG),
        &enc.reference(TAG),
    )
    .ok();
    let b = &blobs(&enc)[0];
    assert_eq!(b["recipients"][0]["hash"], "sha256");
    let ct = base64::engine::general_purpose::STANDARD
        .decode(b["recipients"][0]["blob"].as_str().unwrap())
        .unwrap();
    let ct_file = t.dir.join("ct.bin");
    fs::write(&ct_file, ct).unwrap();
    let out = tool(
        "openssl",
        [
            "pkeyutl",
            "-decrypt",
            "-inkey",
            &key,
            "-in",
            &ct_file.display().to_string(),
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            "rsa_oaep_md:sha256",
            "-pkeyopt",
            "rsa_mgf1_md:sha256",
        ],
    );
    let opts: Value = serde_json::from_str(&out.stdout).expect("the private options JSON");
    assert!(
        opts["symkey"].is_string() && opts["digest"].is_string(),
        "{opts}"
    );
    // And the token refuses what it cannot do instead of opening it.
    let enc2 = Layout::new(w.path().join("enc2"));
    env.encrypt(
        &[&format!("pkcs11:{}", t.pem)],
        &fx.image.reference(TAG),
        &enc2.reference(TAG),
    )
    .ok();
    let dec = Layout::new(w.path().join("dec"));
    t.env
        .decrypt(&[&t.yaml], &enc2.reference(TAG), &dec.reference(TAG))
        .rrun_error(&["pkcs11"]);
}

#[test]
fn yaml_recipient_encrypts_on_the_token() {
    let fx = fixtures();
    let t = Token::new();
    let w = workdir();
    let enc = Layout::new(w.path().join("enc"));
    let env = t.env.clone_with("OCICRYPT_OAEP_HASHALG", "sha1");
    env.encrypt(
        &[&format!("pkcs11:{}", t.yaml), &fx.jwe("rsa.pub")],
        &fx.image.reference(TAG),
        &enc.reference(TAG),
    )
    .ok();
    assert_eq!(blobs(&enc)[0]["recipients"][0]["hash"], "sha1");
    let out = t.env.rrun(&["image", "layerinfo", &enc.reference(TAG)]);
    out.ok().stdout_has("[pkcs11]").stdout_has("[jwe]");
    for (i, key) in [t.yaml.clone(), fx.key("rsa.pem")].iter().enumerate() {
        let dec = Layout::new(w.path().join(format!("dec{i}")));
        t.env
            .decrypt(&[key], &enc.reference(TAG), &dec.reference(TAG))
            .ok();
        assert_plain_again(&dec, &fx.image);
    }
}

#[test]
fn module_policy_pin_and_key_mistakes_are_clear() {
    let fx = fixtures();
    let t = Token::new();
    let w = workdir();
    let enc = Layout::new(w.path().join("enc"));
    t.env
        .encrypt(
            &[&format!("pkcs11:{}", t.pem)],
            &fx.image.reference(TAG),
            &enc.reference(TAG),
        )
        .ok();
    let dec = Layout::new(w.path().join("dec"));
    // A policy that allows another module only.
    let strict = t.dir.join("strict.conf");
    fs::write(
        &strict,
        "pkcs11:\n  module-directories: [/usr/lib/softhsm/]\n  allowed-module-paths: [/usr/lib/softhsm/opensc-pkcs11.so]\n",
    )
    .unwrap();
    let env = t
        .env
        .clone_with("OCICRYPT_CONFIG", &strict.display().to_string());
    let out = env.decrypt(&[&t.yaml], &enc.reference(TAG), &dec.reference(TAG));
    out.failed();
    assert!(
        out.stderr.contains("not allowed by policy"),
        "{}",
        out.stderr
    );
    // No policy at all: no module may load.
    let home = t.dir.join("home");
    fs::create_dir_all(&home).unwrap();
    let env = t
        .env
        .clone_with("OCICRYPT_CONFIG", "")
        .with_env("HOME", &home.display().to_string())
        .with_env("XDG_CONFIG_HOME", &home.display().to_string());
    let out = env.decrypt(&[&t.yaml], &enc.reference(TAG), &dec.reference(TAG));
    out.failed();
    assert!(
        out.stderr.contains("no pkcs11 module policy"),
        "{}",
        out.stderr
    );
    // `internal` allows the Debian softhsm directory.
    let env = t.env.clone_with("OCICRYPT_CONFIG", "internal");
    env.decrypt(&[&t.yaml], &enc.reference(TAG), &dec.reference(TAG))
        .ok();
    assert_plain_again(&dec, &fx.image);
    // A wrong PIN.
    let conf = t.dir.join("softhsm2.conf").display().to_string();
    let wrong = Token::key_file(&t.dir, "wrong.yaml", &conf, "9999");
    let dec2 = Layout::new(w.path().join("dec2"));
    // The token's refusal is the error, not "no key opens layer"; nothing is written.
    t.env
        .decrypt(&[&wrong], &enc.reference(TAG), &dec2.reference(TAG))
        .rrun_error(&["wrong.yaml", "wrong PIN"]);
    assert!(!dec2.dir.join("index.json").exists());
    // RSA-2048 with OAEP-SHA256 cannot carry the options: say what to do.
    let out = t.env.clone_with("OCICRYPT_OAEP_HASHALG", "sha256").encrypt(
        &[&format!("pkcs11:{}", fx.key("rsa.pub"))],
        &fx.image.reference(TAG),
        &Layout::new(w.path().join("x")).reference(TAG),
    );
    out.rrun_error(&["3072 bits", "OCICRYPT_OAEP_HASHALG=sha1"]);
}

#[test]
fn debian_skopeo_knows_no_pkcs11_so_there_is_no_interop() {
    let fx = fixtures();
    let t = Token::new();
    let w = workdir();
    let enc = Layout::new(w.path().join("enc"));
    let out = t.env.skopeo_copy(
        "--encryption-key",
        &[&format!("pkcs11:{}", t.pem)],
        &fx.image.reference(TAG),
        &enc.reference(TAG),
    );
    out.failed();
    assert!(
        out.stderr.contains("Provided protocol not recognized"),
        "skopeo learned pkcs11: add interop tests\n{}",
        out.stderr
    );
    // skopeo cannot open an rrun pkcs11 image with the YAML key file either.
    t.env
        .encrypt(
            &[&format!("pkcs11:{}", t.pem)],
            &fx.image.reference(TAG),
            &enc.reference(TAG),
        )
        .ok();
    let dec = Layout::new(w.path().join("dec"));
    t.env
        .skopeo_copy(
            "--decryption-key",
            &[&t.yaml],
            &enc.reference(TAG),
            &dec.reference(TAG),
        )
        .failed();
}

#[test]
fn peer_pull_key_gate_asks_the_token_before_any_layer_is_fetched() {
    use crate::registry_util::{Auth, Env, Registry};
    let fx = fixtures();
    let t = Token::new();
    let w = workdir();
    let enc = Layout::new(w.path().join("enc"));
    t.env
        .encrypt(
            &[&format!("pkcs11:{}", t.pem)],
            &fx.image.reference(TAG),
            &enc.reference(TAG),
        )
        .ok();
    let reg = Registry::start(Auth::None);
    let image = format!("{}/p11:enc", reg.host());
    t.env
        .skopeo(&[
            "copy",
            "-q",
            "--dest-tls-verify=false",
            &enc.reference(TAG),
            &format!("docker://{image}"),
        ])
        .ok();
    let layers = enc.layer_digests(TAG);
    let policy = t.dir.join("ocicrypt.conf").display().to_string();
    let conf = t.dir.join("softhsm2.conf").display().to_string();
    let vars = [
        ("OCICRYPT_CONFIG", policy.as_str()),
        ("SOFTHSM2_CONF", conf.as_str()),
        ("OCICRYPT_OAEP_HASHALG", "sha1"),
    ];
    // A wrong PIN: the token refuses at the gate, no layer is requested, nothing is stored.
    let wrong = Token::key_file(&t.dir, "wrong.yaml", &conf, "9999");
    let env = Env::new(&w.path().join("pull"));
    env.rrun_vars(&["pull", "--key", &wrong, &image], &vars)
        .rrun_error(&["wrong PIN"]);
    for d in &layers {
        assert_eq!(reg.blob_gets(d), 0, "no GET of layer {d}:\n{}", reg.log());
    }
    assert!(!env.root.exists(), "nothing stored");
    // The token's key passes the gate; only then are the layers fetched.
    let out = env.rrun_vars(&["pull", "--key", &t.yaml, &image], &vars);
    out.ok();
    assert!(out.stderr.contains("key gate passed"), "{}", out.stderr);
    for d in &layers {
        assert_eq!(reg.blob_gets(d), 1, "{d}");
    }
}
