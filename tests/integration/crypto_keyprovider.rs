//! Keyprovider recipients and keys (`provider:NAME[:OPAQUE]`, `OCICRYPT_KEYPROVIDER_CONFIG`)
//! through the CLI with a python cmd provider (tests/data/crypto/keyprovider/provider.py):
//! encrypt and decrypt, the request JSON ocicrypt sends, byte arrays as Rust providers write
//! them, a provider next to jwe on one layer (skopeo opens the jwe half), name matching, and
//! provider failures. Debian's skopeo 1.9.3 is built with ocicrypt 1.0.3, which predates
//! keyproviders: a test proves it refuses `provider:`, so there is no skopeo interop for this
//! scheme. grpc providers (tests/data/crypto/keyprovider/grpc_provider.py) are served on a free
//! loopback port or a unix socket; `rrun pull --key provider:NAME` passes or fails the key gate
//! against docker-registry before any layer is fetched. Needs python3, python3-grpcio, skopeo
//! and docker-registry (`make deps`).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::util::*;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const ANN_TEST: &str = "org.opencontainers.image.enc.keys.provider.test";

/// A keyprovider config in a scratch dir, with the environment rrun and skopeo need (the
/// pkcs11 tests use it as their environment runner too).
pub struct Providers {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    env: BTreeMap<String, String>,
}

/// The python test provider.
pub fn provider_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/crypto/keyprovider/provider.py")
}

impl Providers {
    /// A config with one cmd provider per `(name, extra args)`; each reads its own name.
    pub fn new(providers: &[(&str, &[&str])]) -> Self {
        require_tool("python3");
        Self::with_entries(|dir| {
            providers
                .iter()
                .map(|(name, extra)| {
                    let mut args = vec![
                        provider_script().display().to_string(),
                        "--name".into(),
                        name.to_string(),
                        "--log".into(),
                        log_path(dir, name).display().to_string(),
                    ];
                    args.extend(extra.iter().map(|s| s.to_string()));
                    let entry = json!({"cmd": {"path": "python3", "args": args}});
                    (name.to_string(), entry)
                })
                .collect()
        })
    }

    /// A config with one grpc provider per `(name, extra args)`, each a running
    /// grpc_provider.py (stopped when the returned servers drop); `unix` puts them on unix
    /// sockets instead of loopback ports.
    pub fn grpc(providers: &[(&str, &[&str])], unix: bool) -> (Self, Vec<GrpcProvider>) {
        let mut servers = Vec::new();
        let kp = Self::with_entries(|dir| {
            providers
                .iter()
                .map(|(name, extra)| {
                    let listen = unix.then(|| dir.join(format!("{name}.sock")));
                    let server = GrpcProvider::start(name, &log_path(dir, name), extra, listen);
                    let entry = json!({ "grpc": server.address });
                    servers.push(server);
                    (name.to_string(), entry)
                })
                .collect()
        });
        (kp, servers)
    }

    fn with_entries(entries: impl FnOnce(&Path) -> serde_json::Map<String, Value>) -> Self {
        let dir = workdir();
        let config = dir.path().join("keyprovider.json");
        let list = entries(dir.path());
        fs::write(
            &config,
            serde_json::to_vec_pretty(&json!({ "key-providers": list })).unwrap(),
        )
        .unwrap();
        let mut env = BTreeMap::new();
        env.insert(
            "OCICRYPT_KEYPROVIDER_CONFIG".to_string(),
            config.display().to_string(),
        );
        Self { dir, config, env }
    }

    /// Also set `key` to `value` for every command.
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// A runner with this environment plus `key=value`, in a new scratch dir (the config file
    /// stays where it is).
    pub fn clone_with(&self, key: &str, value: &str) -> Self {
        let mut env = self.env.clone();
        env.insert(key.into(), value.into());
        Self {
            dir: workdir(),
            config: self.config.clone(),
            env,
        }
    }

    /// The requests provider `name` received, one JSON value each.
    pub fn requests(&self, name: &str) -> Vec<Value> {
        fs::read_to_string(log_path(self.dir.path(), name))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("request JSON"))
            .collect()
    }

    fn command(&self, program: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(program);
        cmd.args(args.iter().map(OsStr::new)).envs(&self.env);
        run(cmd)
    }

    /// Run rrun with this environment.
    pub fn rrun(&self, args: &[&str]) -> Output {
        self.command(rrun_bin(), args)
    }

    /// Run skopeo with this environment.
    pub fn skopeo(&self, args: &[&str]) -> Output {
        require_tool("skopeo");
        self.command("skopeo", args)
    }

    /// `rrun image encrypt --recipient R... SRC DST`.
    pub fn encrypt(&self, recipients: &[&str], src: &str, dst: &str) -> Output {
        let mut args = vec!["image", "encrypt"];
        args.extend(recipients.iter().flat_map(|r| ["--recipient", r]));
        args.extend([src, dst]);
        self.rrun(&args)
    }

    /// `rrun image decrypt --key K... SRC DST`.
    pub fn decrypt(&self, keys: &[&str], src: &str, dst: &str) -> Output {
        let mut args = vec!["image", "decrypt"];
        args.extend(keys.iter().flat_map(|k| ["--key", k]));
        args.extend([src, dst]);
        self.rrun(&args)
    }

    /// `skopeo copy -q FLAG V... SRC DST`.
    pub fn skopeo_copy(&self, flag: &str, values: &[&str], src: &str, dst: &str) -> Output {
        let mut args = vec!["copy", "-q"];
        args.extend(values.iter().flat_map(|v| [flag, v]));
        args.extend([src, dst]);
        self.skopeo(&args)
    }
}

fn log_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.log"))
}

/// A python gRPC keyprovider (tests/data/crypto/keyprovider/grpc_provider.py), killed on drop.
pub struct GrpcProvider {
    child: Child,
    /// What the config's `"grpc"` names: `127.0.0.1:PORT` or `unix://PATH`.
    pub address: String,
}

impl GrpcProvider {
    /// Start it on a free loopback port (or the unix socket `listen`) and wait until it serves.
    pub fn start(name: &str, log: &Path, extra: &[&str], listen: Option<PathBuf>) -> Self {
        // Debian's python3-grpcio lives with the system python, not a pyenv one.
        let python = Path::new("/usr/bin/python3");
        assert!(
            python.is_file(),
            "/usr/bin/python3 with python3-grpcio is needed (make deps)"
        );
        let script = provider_script().with_file_name("grpc_provider.py");
        let mut cmd = Command::new(python);
        cmd.arg(script)
            .args(["--name", name, "--log"])
            .arg(log)
            .args(extra)
            .stdout(Stdio::piped());
        if let Some(path) = &listen {
            cmd.arg("--listen").arg(format!("unix:{}", path.display()));
        }
        let mut child = cmd.spawn().expect("start grpc_provider.py");
        let mut line = String::new();
        let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
        let port: u16 = match line.trim().parse() {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("grpc_provider.py did not start (its stderr is above; make deps installs python3-grpcio)");
            }
        };
        let address = match listen {
            Some(path) => format!("unix://{}", path.display()),
            None => format!("127.0.0.1:{port}"),
        };
        Self { child, address }
    }
}

impl Drop for GrpcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The decrypted image is the fixture again.
#[track_caller]
pub fn assert_plain_again(out: &Layout, orig: &Layout) {
    assert_eq!(out.layer_digests(TAG), orig.layer_digests(TAG));
    assert_eq!(out.media_types(TAG), orig.media_types(TAG));
    for l in out.layers(TAG) {
        assert!(
            !l.annotations
                .keys()
                .any(|k| k.starts_with("org.opencontainers.image.enc.")),
            "{:?}",
            l.annotations
        );
    }
}

/// Every layer of `enc` carries `annotation`, one entry each; returns the decoded entries.
#[track_caller]
fn wrapped(enc: &Layout, annotation: &str) -> Vec<Vec<u8>> {
    enc.layers(TAG)
        .iter()
        .map(|l| {
            assert!(l.media_type.ends_with("+encrypted"), "{}", l.media_type);
            let v = l
                .annotation(annotation)
                .unwrap_or_else(|| panic!("{annotation} missing: {:?}", l.annotations));
            assert!(!v.contains(','), "one entry: {v}");
            B64.decode(v).expect("base64 annotation")
        })
        .collect()
}

/// Encrypt the fixture for `provider:NAME:key-1` and decrypt it again through `kp`, checking the
/// packets and the requests ocicrypt sends; returns the scratch dir and the encrypted layout.
fn round_trip(kp: &Providers, name: &str) -> (tempfile::TempDir, Layout) {
    let fx = fixtures();
    let w = workdir();
    let enc = Layout::new(w.path().join("enc"));
    let key = format!("provider:{name}:key-1");
    kp.encrypt(&[&key], &fx.image.reference(TAG), &enc.reference(TAG))
        .ok();
    let annotation = format!("org.opencontainers.image.enc.keys.provider.{name}");
    for packet in wrapped(&enc, &annotation) {
        let p: Value = serde_json::from_slice(&packet).expect("the provider's packet");
        assert_eq!(p["kid"], "key-1");
    }
    // The request is ocicrypt's: ec.Parameters[NAME] = [b64(opaque)], optsdata = b64(JSON).
    let req = &kp.requests(name)[0];
    assert_eq!(req["op"], "keywrap");
    assert_eq!(
        req["keywrapparams"]["ec"]["Parameters"][name],
        json!([B64.encode("key-1")])
    );
    let opts = B64
        .decode(req["keywrapparams"]["optsdata"].as_str().unwrap())
        .unwrap();
    let opts: Value = serde_json::from_slice(&opts).unwrap();
    assert!(opts["symkey"].is_string() && opts["cipheroptions"]["nonce"].is_string());

    let dec = Layout::new(w.path().join("dec"));
    kp.decrypt(&[&key], &enc.reference(TAG), &dec.reference(TAG))
        .ok();
    assert_plain_again(&dec, &fx.image);
    let req = kp.requests(name).pop().unwrap();
    assert_eq!(req["op"], "keyunwrap");
    assert_eq!(
        req["keyunwrapparams"]["dc"]["Parameters"][name],
        json!([B64.encode("key-1")])
    );
    (w, enc)
}

#[test]
fn rrun_encrypts_and_decrypts_through_a_cmd_provider() {
    let kp = Providers::new(&[("test", &[])]);
    round_trip(&kp, "test");
}

#[test]
fn debian_skopeo_knows_no_keyprovider_so_there_is_no_interop() {
    let fx = fixtures();
    let kp = Providers::new(&[("test", &[])]);
    let w = workdir();
    let enc = Layout::new(w.path().join("enc"));
    // skopeo 1.9.3 as Debian builds it (ocicrypt 1.0.3) refuses the scheme outright.
    let out = kp.skopeo_copy(
        "--encryption-key",
        &["provider:test"],
        &fx.image.reference(TAG),
        &enc.reference(TAG),
    );
    out.failed();
    assert!(
        out.stderr.contains("Provided protocol not recognized"),
        "skopeo learned keyproviders: add interop tests\n{}",
        out.stderr
    );
    // rrun's provider-encrypted image: skopeo cannot open it with the provider either.
    kp.encrypt(
        &["provider:test"],
        &fx.image.reference(TAG),
        &enc.reference(TAG),
    )
    .ok();
    let dec = Layout::new(w.path().join("dec"));
    let out = kp.skopeo_copy(
        "--decryption-key",
        &["provider:test"],
        &enc.reference(TAG),
        &dec.reference(TAG),
    );
    out.failed();
    // Without a provider key the layer stays closed in rrun too.
    kp.decrypt(
        &[&fx.key("rsa.pem")],
        &enc.reference(TAG),
        &dec.reference(TAG),
    )
    .rrun_error(&["provider.test"]);
}

#[test]
fn byte_arrays_from_rust_style_providers_are_accepted() {
    let fx = fixtures();
    let kp = Providers::new(&[("test", &["--arrays"])]);
    let w = workdir();
    let enc = Layout::new(w.path().join("enc"));
    kp.encrypt(
        &["provider:test"],
        &fx.image.reference(TAG),
        &enc.reference(TAG),
    )
    .ok();
    wrapped(&enc, ANN_TEST);
    let dec = Layout::new(w.path().join("dec"));
    kp.decrypt(&["provider:test"], &enc.reference(TAG), &dec.reference(TAG))
        .ok();
    assert_plain_again(&dec, &fx.image);
}

#[test]
fn provider_and_jwe_on_one_layer_each_open_it() {
    let fx = fixtures();
    let kp = Providers::new(&[("test", &[])]);
    let w = workdir();
    let enc = Layout::new(w.path().join("enc"));
    kp.encrypt(
        &["provider:test:k9", &fx.jwe("rsa.pub")],
        &fx.image.reference(TAG),
        &enc.reference(TAG),
    )
    .ok();
    wrapped(&enc, ANN_TEST);
    wrapped(&enc, ANN_JWE);
    let out = kp.rrun(&["image", "layerinfo", &enc.reference(TAG)]);
    out.ok().stdout_has("[provider.test]").stdout_has("[jwe]");
    for (i, key) in [fx.key("rsa.pem"), "provider:test:k9".into()]
        .iter()
        .enumerate()
    {
        let dec = Layout::new(w.path().join(format!("rrun{i}")));
        kp.decrypt(&[key], &enc.reference(TAG), &dec.reference(TAG))
            .ok();
        assert_plain_again(&dec, &fx.image);
    }
    // skopeo skips the provider annotation it does not know and opens the jwe half.
    let dec = Layout::new(w.path().join("skopeo"));
    kp.skopeo_copy(
        "--decryption-key",
        &[&fx.key("rsa.pem")],
        &enc.reference(TAG),
        &dec.reference(TAG),
    )
    .ok();
    assert_plain_again(&dec, &fx.image);
}

#[test]
fn unwrapping_asks_the_provider_named_in_the_annotation() {
    let fx = fixtures();
    let kp = Providers::new(&[("test", &[]), ("other", &[])]);
    let w = workdir();
    let enc = Layout::new(w.path().join("enc"));
    kp.encrypt(
        &["provider:test:k1"],
        &fx.image.reference(TAG),
        &enc.reference(TAG),
    )
    .ok();
    // A key for another provider does not open it, and that provider is never asked.
    let dec = Layout::new(w.path().join("dec"));
    kp.decrypt(
        &["provider:other:k1"],
        &enc.reference(TAG),
        &dec.reference(TAG),
    )
    .rrun_error(&["provider.test"]);
    assert!(kp.requests("other").is_empty());
    // The right provider with the wrong key id refuses.
    kp.decrypt(
        &["provider:test:k2"],
        &enc.reference(TAG),
        &dec.reference(TAG),
    )
    .failed();
    kp.decrypt(
        &["provider:test:k1"],
        &enc.reference(TAG),
        &dec.reference(TAG),
    )
    .ok();
    assert_plain_again(&dec, &fx.image);
}

#[test]
fn provider_mistakes_and_failures_are_one_clear_line() {
    let fx = fixtures();
    let w = workdir();
    let src = fx.image.reference(TAG);
    let dst = Layout::new(w.path().join("enc")).reference(TAG);
    // No config at all.
    let out = rrun([
        "image",
        "encrypt",
        "--recipient",
        "provider:test",
        &src,
        &dst,
    ]);
    out.rrun_error(&["provider:test", "OCICRYPT_KEYPROVIDER_CONFIG"]);
    let out = rrun(["image", "decrypt", "--key", "provider:test", &src, &dst]);
    out.rrun_error(&["provider:test", "OCICRYPT_KEYPROVIDER_CONFIG"]);
    // A name the config does not have.
    let kp = Providers::new(&[("test", &[])]);
    kp.encrypt(&["provider:kms"], &src, &dst)
        .rrun_error(&["configures no provider \"kms\"", "test"]);
    // A broken config file.
    let bad = kp.dir.path().join("bad.json");
    fs::write(&bad, r#"{"key-providers": {"x": {"path": "/bin/x"}}}"#).unwrap();
    let broken =
        Providers::new(&[]).with_env("OCICRYPT_KEYPROVIDER_CONFIG", &bad.display().to_string());
    broken
        .encrypt(&["provider:x"], &src, &dst)
        .rrun_error(&["invalid keyprovider config", "inside \"cmd\""]);
    // A provider that fails says so with its stderr; nothing is written.
    let failing = Providers::new(&[("test", &["--fail", "hsm offline"])]);
    failing
        .encrypt(&["provider:test"], &src, &dst)
        .rrun_error(&["provider:test", "exited with status 3", "hsm offline"]);
    assert!(!w.path().join("enc").join("index.json").exists());
    // A provider that hangs is stopped after RRUN_KEYPROVIDER_TIMEOUT.
    let slow =
        Providers::new(&[("test", &["--sleep", "30"])]).with_env("RRUN_KEYPROVIDER_TIMEOUT", "0.5");
    let start = std::time::Instant::now();
    slow.encrypt(&["provider:test"], &src, &dst)
        .rrun_error(&["provider:test", "no answer within 0.5 s"]);
    assert!(start.elapsed().as_secs() < 20, "{:?}", start.elapsed());
    // On decrypt too, the provider's failure is the error (not "no key opens the layer").
    let enc = Layout::new(w.path().join("enc-ok"));
    kp.encrypt(&["provider:test"], &src, &enc.reference(TAG))
        .ok();
    let out_dir = Layout::new(w.path().join("dec-failed"));
    failing
        .decrypt(
            &["provider:test"],
            &enc.reference(TAG),
            &out_dir.reference(TAG),
        )
        .rrun_error(&["provider:test", "hsm offline"]);
    slow.decrypt(
        &["provider:test"],
        &enc.reference(TAG),
        &out_dir.reference(TAG),
    )
    .rrun_error(&["provider:test", "no answer within 0.5 s"]);
    assert!(!out_dir.dir.join("index.json").exists());
}

#[test]
fn rrun_encrypts_and_decrypts_through_a_grpc_provider() {
    // The bytes of the grpc messages are the cmd protocol's JSON (the provider checks that the
    // rpc matches the op).
    let (kp, _servers) = Providers::grpc(&[("remote", &[])], false);
    let (w, enc) = round_trip(&kp, "remote");
    kp.rrun(&["image", "layerinfo", &enc.reference(TAG)])
        .ok()
        .stdout_has("[provider.remote]");
    // A key id the provider refuses: its grpc status message is the error.
    let dec2 = Layout::new(w.path().join("dec2"));
    kp.decrypt(
        &["provider:remote:key-2"],
        &enc.reference(TAG),
        &dec2.reference(TAG),
    )
    .rrun_error(&["provider:remote", "access denied to key key-1"]);
    assert!(!dec2.dir.join("index.json").exists());
}

#[test]
fn a_grpc_provider_on_a_unix_socket_works() {
    let fx = fixtures();
    let (kp, servers) = Providers::grpc(&[("sock", &["--arrays"])], true);
    assert!(
        servers[0].address.starts_with("unix:///"),
        "{}",
        servers[0].address
    );
    let w = workdir();
    let enc = Layout::new(w.path().join("enc"));
    kp.encrypt(
        &["provider:sock"],
        &fx.image.reference(TAG),
        &enc.reference(TAG),
    )
    .ok();
    let dec = Layout::new(w.path().join("dec"));
    kp.decrypt(&["provider:sock"], &enc.reference(TAG), &dec.reference(TAG))
        .ok();
    assert_plain_again(&dec, &fx.image);
}

#[test]
fn grpc_provider_failures_are_one_clear_line() {
    let fx = fixtures();
    let w = workdir();
    let src = fx.image.reference(TAG);
    let dst = Layout::new(w.path().join("enc")).reference(TAG);
    // Nothing listens: a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let (kp, _s) = Providers::grpc(&[], false);
    let config = kp.dir.path().join("down.json");
    fs::write(
        &config,
        json!({"key-providers": {"down": {"grpc": addr}}}).to_string(),
    )
    .unwrap();
    let down = kp.clone_with("OCICRYPT_KEYPROVIDER_CONFIG", &config.display().to_string());
    down.encrypt(&["provider:down"], &src, &dst).rrun_error(&[
        "provider:down",
        &addr,
        "cannot connect",
        "refused",
    ]);
    // A provider that fails: its status message is the error.
    let (failing, _f) = Providers::grpc(&[("remote", &["--fail", "hsm offline"])], false);
    failing
        .encrypt(&["provider:remote"], &src, &dst)
        .rrun_error(&["provider:remote", "unavailable", "hsm offline"]);
    // A provider that hangs is given up after RRUN_KEYPROVIDER_TIMEOUT.
    let (slow, _l) = Providers::grpc(&[("remote", &["--sleep", "30"])], false);
    let slow = slow.with_env("RRUN_KEYPROVIDER_TIMEOUT", "0.5");
    let start = std::time::Instant::now();
    slow.encrypt(&["provider:remote"], &src, &dst).rrun_error(&[
        "provider:remote",
        "no answer from grpc 127.0.0.1:",
        "0.5 s",
    ]);
    assert!(start.elapsed().as_secs() < 20, "{:?}", start.elapsed());
    assert!(!w.path().join("enc").join("index.json").exists());
}

#[test]
fn peer_pull_key_gate_asks_the_provider_before_any_layer_is_fetched() {
    use crate::registry_util::{Auth, Env, Registry};
    let (kp, _servers) = Providers::grpc(&[("remote", &[])], false);
    let (w, enc) = round_trip(&kp, "remote");
    let reg = Registry::start(Auth::None);
    let image = format!("{}/kp:enc", reg.host());
    kp.skopeo(&[
        "copy",
        "-q",
        "--dest-tls-verify=false",
        &enc.reference(TAG),
        &format!("docker://{image}"),
    ])
    .ok();
    let layers = enc.layer_digests(TAG);
    let config = kp.config.display().to_string();
    let vars = [("OCICRYPT_KEYPROVIDER_CONFIG", config.as_str())];
    // A key id the provider does not open: refused at the gate, no layer requested.
    let env = Env::new(&w.path().join("pull"));
    env.rrun_vars(&["pull", "--key", "provider:remote:key-2", &image], &vars)
        .rrun_error(&["provider:remote", "access denied"]);
    for d in &layers {
        assert_eq!(reg.blob_gets(d), 0, "no GET of layer {d}:\n{}", reg.log());
    }
    assert!(!env.root.exists(), "nothing stored");
    // The right key id passes the gate; only then are the layers fetched.
    let out = env.rrun_vars(&["pull", "--key", "provider:remote:key-1", &image], &vars);
    out.ok();
    assert!(out.stderr.contains("key gate passed"), "{}", out.stderr);
    for d in &layers {
        assert_eq!(reg.blob_gets(d), 1, "{d}");
    }
}
