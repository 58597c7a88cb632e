//! Harness for the trust tests: the real notary-server + notary-signer (memory storage, TLS with
//! a CA made here, free loopback ports), the real `notary` CLI, a man-in-the-middle transport
//! for attacks, and a python-tuf venv plus `python3 -m http.server` for plain TUF repositories.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509Builder, X509NameBuilder, X509};

use rrun::trust::{HttpOptions, HttpTransport, Result as TrustResult, Transport};

/// Fail (never skip) when a peer binary is missing.
pub fn require_binary(name: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| panic!("{name} not found: run `make deps` (apt-get install {package})"))
}

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16, child: &mut Child, what: &str, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "{what} exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            ));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "{what} did not listen on {port}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    ))
}

fn kill_all(children: &mut [Child]) {
    for c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
}

pub fn p256() -> PKey<Private> {
    PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap()
}

/// A self-signed leaf certificate (delegation keys given as x509, the notary-CLI style).
pub fn self_signed(cn: &str, key: &PKey<Private>) -> X509 {
    cert(cn, key, None, false)
}

fn cert(cn: &str, key: &PKey<Private>, issuer: Option<(&X509, &PKey<Private>)>, ca: bool) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(issuer.map(|(c, _)| c.subject_name()).unwrap_or(&name))
        .unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(3650).unwrap())
        .unwrap();
    if ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .unwrap(),
        )
        .unwrap();
    } else {
        b.append_extension(BasicConstraints::new().critical().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_encipherment()
                .build()
                .unwrap(),
        )
        .unwrap();
        b.append_extension(
            ExtendedKeyUsage::new()
                .server_auth()
                .client_auth()
                .build()
                .unwrap(),
        )
        .unwrap();
        let san = SubjectAlternativeName::new()
            .ip("127.0.0.1")
            .dns("localhost")
            .build(&b.x509v3_context(issuer.map(|(c, _)| c.as_ref()), None))
            .unwrap();
        b.append_extension(san).unwrap();
    }
    b.sign(
        issuer.map(|(_, k)| k).unwrap_or(key),
        MessageDigest::sha256(),
    )
    .unwrap();
    b.build()
}

/// Passphrases the notary CLI uses in these tests.
pub const NOTARY_ENV: &[(&str, &str)] = &[
    ("NOTARY_ROOT_PASSPHRASE", "rootpass-test"),
    ("NOTARY_TARGETS_PASSPHRASE", "targetspass-test"),
    ("NOTARY_SNAPSHOT_PASSPHRASE", "snapshotpass-test"),
    ("NOTARY_DELEGATION_PASSPHRASE", "delegationpass-test"),
];

/// notary-signer + notary-server started for one test; both are killed on drop.
pub struct NotaryServer {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub ca: PathBuf,
    children: Vec<Child>,
}

impl std::fmt::Debug for NotaryServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NotaryServer({})", self.url)
    }
}

impl Drop for NotaryServer {
    fn drop(&mut self) {
        kill_all(&mut self.children);
    }
}

impl NotaryServer {
    /// Start the real services; a missing binary fails the test with what to install.
    pub fn start() -> NotaryServer {
        let server_bin = require_binary("notary-server", "notary");
        let signer_bin = require_binary("notary-signer", "notary");
        require_binary("notary", "notary");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["certs", "conf", "logs", "client/trust"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let ca_key = p256();
        let ca = cert("rrun-test-notary-ca", &ca_key, None, true);
        std::fs::write(d.join("certs/root-ca.crt"), ca.to_pem().unwrap()).unwrap();
        for name in ["server", "signer"] {
            let k = p256();
            let c = cert(&format!("notary-{name}"), &k, Some((&ca, &ca_key)), false);
            std::fs::write(d.join(format!("certs/{name}.crt")), c.to_pem().unwrap()).unwrap();
            std::fs::write(
                d.join(format!("certs/{name}.key")),
                k.private_key_to_pem_pkcs8().unwrap(),
            )
            .unwrap();
        }
        let mut last = String::new();
        for _ in 0..3 {
            match Self::launch(d, &server_bin, &signer_bin) {
                Ok((children, url)) => {
                    let s = NotaryServer {
                        ca: d.join("certs/root-ca.crt"),
                        url,
                        children,
                        dir,
                    };
                    s.wait_healthy();
                    let cfg = format!(
                        r#"{{"trust_dir": "{}", "remote_server": {{"url": "{}", "root_ca": "{}"}}}}"#,
                        s.cli_trust_dir().display(),
                        s.url,
                        s.ca.display()
                    );
                    std::fs::write(s.dir.path().join("client/config.json"), cfg).unwrap();
                    return s;
                }
                Err(e) => last = e,
            }
        }
        panic!("notary services did not start: {last}")
    }

    /// Start signer then server on fresh ports; on failure nothing is left running.
    fn launch(
        d: &Path,
        server_bin: &Path,
        signer_bin: &Path,
    ) -> Result<(Vec<Child>, String), String> {
        let (signer_port, server_port) = (free_port(), free_port());
        std::fs::write(
            d.join("conf/signer.json"),
            format!(
                r#"{{"server": {{"grpc_addr": "127.0.0.1:{signer_port}", "tls_cert_file": "../certs/signer.crt",
                   "tls_key_file": "../certs/signer.key", "client_ca_file": "../certs/root-ca.crt"}},
                   "logging": {{"level": "info"}}, "storage": {{"backend": "memory"}}}}"#
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("conf/server.json"),
            format!(
                r#"{{"server": {{"http_addr": "127.0.0.1:{server_port}", "tls_cert_file": "../certs/server.crt",
                   "tls_key_file": "../certs/server.key"}},
                   "trust_service": {{"type": "remote", "hostname": "127.0.0.1", "port": "{signer_port}",
                     "key_algorithm": "ecdsa", "tls_ca_file": "../certs/root-ca.crt",
                     "tls_client_cert": "../certs/server.crt", "tls_client_key": "../certs/server.key"}},
                   "storage": {{"backend": "memory"}}, "logging": {{"level": "info"}}}}"#
            ),
        )
        .unwrap();
        let spawn = |bin: &Path, cfg: &str, log: &str| {
            Command::new(bin)
                .args(["-config", cfg])
                .current_dir(d.join("conf"))
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(d.join(log)).unwrap())
                .stderr(std::fs::File::create(d.join(format!("{log}.err"))).unwrap())
                .spawn()
                .map_err(|e| format!("cannot run {}: {e}", bin.display()))
        };
        let mut children = vec![spawn(signer_bin, "signer.json", "logs/signer.log")?];
        if let Err(e) = wait_port(
            signer_port,
            &mut children[0],
            "notary-signer",
            &d.join("logs/signer.log.err"),
        ) {
            kill_all(&mut children);
            return Err(e);
        }
        match spawn(server_bin, "server.json", "logs/server.log") {
            Ok(c) => children.push(c),
            Err(e) => {
                kill_all(&mut children);
                return Err(e);
            }
        }
        if let Err(e) = wait_port(
            server_port,
            &mut children[1],
            "notary-server",
            &d.join("logs/server.log.err"),
        ) {
            kill_all(&mut children);
            return Err(e);
        }
        Ok((children, format!("https://127.0.0.1:{server_port}")))
    }

    fn wait_healthy(&self) {
        let t = self.http();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match t.fetch(&format!("{}/_notary_server/health", self.url), 4096) {
                Ok(_) => return,
                Err(e) if Instant::now() > deadline => panic!("notary-server unhealthy: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// An rrun HTTP transport trusting the test CA.
    pub fn http(&self) -> HttpTransport {
        HttpTransport::new(&HttpOptions {
            ca_file: Some(self.ca.clone()),
            ..HttpOptions::default()
        })
        .unwrap()
    }

    /// The notary CLI's trust dir.
    pub fn cli_trust_dir(&self) -> PathBuf {
        self.dir.path().join("client/trust")
    }

    /// Run the real notary CLI; panics with its output on failure.
    pub fn notary(&self, args: &[&str]) -> String {
        let out = self.notary_raw(args, None);
        assert!(
            out.status.success(),
            "notary {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run the notary CLI with optional stdin.
    pub fn notary_raw(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let cfg = self.dir.path().join("client/config.json");
        let mut cmd = Command::new("notary");
        cmd.arg("-c")
            .arg(&cfg)
            .arg("-d")
            .arg(self.cli_trust_dir())
            .args(args)
            .current_dir(self.dir.path());
        cmd.envs(NOTARY_ENV.iter().copied());
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run notary");
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// The metadata base URL of `gun`.
    pub fn tuf_url(&self, gun: &str) -> String {
        format!("{}/v2/{gun}/_trust/tuf/", self.url)
    }

    /// GET a metadata file straight from the server.
    pub fn get(&self, gun: &str, name: &str) -> Vec<u8> {
        self.http()
            .fetch(&format!("{}{name}", self.tuf_url(gun)), 1 << 20)
            .unwrap()
    }

    /// `notary init GUN` + snapshot key moved to the server (as docker does) + publish.
    pub fn init_repo(&self, gun: &str) {
        self.notary(&["init", gun]);
        self.notary(&["key", "rotate", gun, "snapshot", "-r"]);
        self.notary(&["publish", gun]);
    }

    /// Write an unencrypted PKCS#8 P-256 key (+ `PUBLIC KEY` PEM) for the notary CLI to import.
    pub fn delegation_key(&self, name: &str) -> (PathBuf, PathBuf, PKey<Private>) {
        let k = p256();
        let dir = self.dir.path().join("client/keys");
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join(format!("{name}.key"));
        let public = dir.join(format!("{name}.pem"));
        std::fs::write(&key, k.private_key_to_pem_pkcs8().unwrap()).unwrap();
        std::fs::write(&public, k.public_key_to_pem().unwrap()).unwrap();
        (key, public, k)
    }

    /// A private key of the notary CLI's trust dir for `role` of `gun`, decrypted.
    pub fn cli_private_key(
        &self,
        gun: &str,
        role: &str,
        pass: &str,
    ) -> rrun::trust::keys::SigningKey {
        let dir = self.cli_trust_dir().join("private");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.contains(&format!("role: {role}\n"))
                && (role == "root" || text.contains(&format!("gun: {gun}\n")))
            {
                return rrun::trust::keys::SigningKey::from_pem(
                    text.as_bytes(),
                    Some(pass.as_bytes()),
                )
                .unwrap();
            }
        }
        panic!("no {role} key for {gun} in {}", dir.display())
    }
}

type Rewrite = Box<dyn Fn(&str, Vec<u8>) -> Vec<u8> + Send + Sync>;

/// A man-in-the-middle on top of the real HTTP transport: rules replace or rewrite responses
/// whose URL contains a pattern (a compromised server or mirror).
pub struct Mitm {
    inner: HttpTransport,
    rules: Mutex<Vec<(String, Rewrite)>>,
    pub log: Mutex<Vec<String>>,
}

impl std::fmt::Debug for Mitm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mitm")
    }
}

impl Mitm {
    pub fn new(inner: HttpTransport) -> Arc<Mitm> {
        Arc::new(Mitm {
            inner,
            rules: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
        })
    }

    /// Serve `bytes` for any URL whose path ends with `suffix` (after `/_trust/tuf/`).
    pub fn serve(&self, suffix: &str, bytes: Vec<u8>) {
        self.rewrite(suffix, move |_, _| bytes.clone());
    }

    /// Rewrite responses of URLs whose last path part starts with `prefix`.
    pub fn rewrite(
        &self,
        prefix: &str,
        f: impl Fn(&str, Vec<u8>) -> Vec<u8> + Send + Sync + 'static,
    ) {
        self.rules
            .lock()
            .unwrap()
            .push((prefix.to_string(), Box::new(f)));
    }

    pub fn clear(&self) {
        self.rules.lock().unwrap().clear();
    }
}

impl Transport for Mitm {
    fn fetch(&self, url: &str, max_size: u64) -> TrustResult<Vec<u8>> {
        self.log.lock().unwrap().push(url.to_string());
        let name = url.split("/_trust/tuf/").nth(1).unwrap_or("");
        let rules = self.rules.lock().unwrap();
        if let Some((_, f)) = rules
            .iter()
            .rev()
            .find(|(p, _)| name.starts_with(p.as_str()))
        {
            let original = self.inner.fetch(url, 1 << 20).unwrap_or_default();
            let out = f(name, original);
            if out.len() as u64 > max_size {
                return Err(rrun::trust::TrustError::TooLarge {
                    url: url.into(),
                    max: max_size,
                });
            }
            return Ok(out);
        }
        drop(rules);
        self.inner.fetch(url, max_size)
    }

    fn post(
        &self,
        url: &str,
        content_type: &str,
        body: &[u8],
        max_size: u64,
    ) -> TrustResult<Vec<u8>> {
        self.inner.post(url, content_type, body, max_size)
    }
}

/// A python venv with python-tuf (PyPI `tuf`), made once under the target dir and reused.
pub fn tuf_python() -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let python3 = require_binary("python3", "python3 python3-venv");
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rrun-tuf-venv");
    let py = venv.join("bin/python3");
    let ready = venv.join(".tuf-ready");
    if !ready.exists() {
        let _ = std::fs::remove_dir_all(&venv);
        let st = Command::new(&python3)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .unwrap();
        assert!(
            st.success(),
            "python3 -m venv failed: run `make deps` (apt-get install python3-venv)"
        );
        let out = Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "-q",
                "tuf==7.0.1",
                "securesystemslib[crypto]==1.6.0",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pip install tuf failed (PyPI must be reachable): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&ready, b"").unwrap();
    }
    py
}

/// `python3 -m http.server` serving `dir` on a free loopback port; killed on drop.
pub struct HttpServer {
    pub url: String,
    child: Child,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl HttpServer {
    pub fn start(dir: &Path) -> HttpServer {
        let python3 = require_binary("python3", "python3");
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new(&python3)
                .args([
                    "-m",
                    "http.server",
                    "--bind",
                    "127.0.0.1",
                    &port.to_string(),
                ])
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return HttpServer {
                        url: format!("http://127.0.0.1:{port}"),
                        child,
                    };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("python3 -m http.server did not start")
    }
}
