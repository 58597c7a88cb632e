//! Helpers of the registry tests: Debian's `docker-registry` on a free loopback port (no auth,
//! htpasswd, or token auth with a small RS256 token issuer written here), a counting and
//! throttling TCP proxy, OCI layouts built from bytes, keys, and runners for rrun and skopeo.
//! A missing peer is a failure that says to run `make deps`, never a skip.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, SubjectAlternativeName};
use openssl::x509::{X509NameBuilder, X509};
use sha2::{Digest as _, Sha256};

// ---------------------------------------------------------------------------------------------
// Tools and programs

/// The path of a peer tool, or a failure naming the package and `make deps`.
pub fn require(tool: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin"] {
        let p = Path::new(dir).join(tool);
        if p.is_file() {
            return p;
        }
    }
    panic!("{tool} is not installed (Debian package {package}): run `make deps`");
}

/// What a finished program did.
#[derive(Debug)]
pub struct Run {
    pub cmdline: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "command: {}\nexit code: {}\n--- stdout\n{}\n--- stderr\n{}",
            self.cmdline, self.code, self.stdout, self.stderr
        )
    }

    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success\n{}", self.describe());
        self
    }

    /// An rrun error: exit 125, a `rrun: error:` line holding every word of `words`.
    #[track_caller]
    pub fn rrun_error(&self, words: &[&str]) -> &Self {
        assert_eq!(
            self.code,
            125,
            "expected exit code 125\n{}",
            self.describe()
        );
        let line = self
            .stderr
            .lines()
            .find(|l| l.starts_with("rrun: error:"))
            .unwrap_or_else(|| panic!("no rrun: error line\n{}", self.describe()));
        for w in words {
            assert!(
                line.to_lowercase().contains(&w.to_lowercase()),
                "{w:?} missing from the error\n{}",
                self.describe()
            );
        }
        self
    }
}

fn finish(cmdline: String, out: std::process::Output) -> Run {
    Run {
        cmdline,
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The environment every rrun and skopeo of a test runs with: its own credentials files.
#[derive(Debug, Clone)]
pub struct Env {
    pub home: PathBuf,
    pub root: PathBuf,
}

impl Env {
    /// An environment under `dir`: `dir/home` (HOME, DOCKER_CONFIG, XDG_RUNTIME_DIR) and the
    /// store `dir/store`.
    pub fn new(dir: &Path) -> Self {
        let home = dir.join("home");
        fs::create_dir_all(home.join("run")).unwrap();
        Self {
            home,
            root: dir.join("store"),
        }
    }

    /// docker's config.json rrun login writes.
    pub fn docker_config(&self) -> PathBuf {
        self.home.join("docker").join("config.json")
    }

    fn apply(&self, cmd: &mut Command) {
        cmd.env("HOME", &self.home)
            .env("DOCKER_CONFIG", self.home.join("docker"))
            .env("XDG_RUNTIME_DIR", self.home.join("run"))
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("RRUN_ROOT")
            .env("RRUN_LOG_LEVEL", "info");
    }

    /// A command for rrun with `--root` set.
    pub fn rrun_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rrun"));
        cmd.arg("--root").arg(&self.root).args(args);
        self.apply(&mut cmd);
        cmd
    }

    /// Run rrun to the end.
    pub fn rrun(&self, args: &[&str]) -> Run {
        self.rrun_stdin(args, None)
    }

    /// Run rrun with the content-trust variables (`RRUN_CONTENT_TRUST*`, the trust
    /// passphrases) removed from the environment, then `vars` set.
    pub fn rrun_vars(&self, args: &[&str], vars: &[(&str, &str)]) -> Run {
        let mut cmd = self.rrun_cmd(args);
        for var in [
            "RRUN_CONTENT_TRUST",
            "RRUN_CONTENT_TRUST_SERVER",
            "RRUN_TRUST_ROOT_PASSPHRASE",
            "RRUN_TRUST_REPOSITORY_PASSPHRASE",
        ] {
            cmd.env_remove(var);
        }
        let out = cmd
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("rrun runs");
        finish(format!("rrun {}", args.join(" ")), out)
    }

    /// Run rrun with `input` on stdin.
    pub fn rrun_stdin(&self, args: &[&str], input: Option<&str>) -> Run {
        let mut cmd = self.rrun_cmd(args);
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("rrun runs");
        if let Some(text) = input {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        finish(
            format!("rrun {}", args.join(" ")),
            child.wait_with_output().unwrap(),
        )
    }

    /// Run rrun to the end under `/usr/bin/time`; also returns its peak RSS in KiB.
    pub fn rrun_peak_rss(&self, args: &[&str]) -> (Run, u64) {
        let time = require("time", "time");
        let report = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = Command::new(time);
        cmd.args(["-f", "%M", "-o"])
            .arg(report.path())
            .arg(env!("CARGO_BIN_EXE_rrun"))
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        self.apply(&mut cmd);
        let run = finish(
            format!("rrun {}", args.join(" ")),
            cmd.output().expect("/usr/bin/time runs rrun"),
        );
        let text = fs::read_to_string(report.path()).unwrap();
        let kib = text
            .lines()
            .filter_map(|l| l.trim().parse::<u64>().ok())
            .next_back()
            .unwrap_or_else(|| panic!("no peak RSS in /usr/bin/time's report: {text}"));
        (run, kib)
    }

    /// Run rrun with stdout and stderr on a terminal (a pty from util-linux `script`); returns
    /// what the terminal showed and the exit code.
    pub fn rrun_on_terminal(&self, args: &[&str]) -> (String, i32) {
        let script = require("script", "util-linux");
        let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
        let mut line = vec![quote(env!("CARGO_BIN_EXE_rrun")), "--root".into()];
        line.push(quote(&self.root.to_string_lossy()));
        line.extend(args.iter().map(|a| quote(a)));
        let mut cmd = Command::new(script);
        cmd.args(["-qec", &line.join(" "), "/dev/null"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        self.apply(&mut cmd);
        let out = cmd.output().expect("script runs rrun on a pty");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            out.status.code().unwrap_or(-1),
        )
    }

    /// Run skopeo (plain HTTP to the loopback registry, no signature policy).
    pub fn skopeo(&self, args: &[&str]) -> Run {
        let bin = require("skopeo", "skopeo");
        let mut cmd = Command::new(bin);
        cmd.arg("--insecure-policy").args(args);
        self.apply(&mut cmd);
        let out = cmd.stdin(Stdio::null()).output().expect("skopeo runs");
        finish(format!("skopeo {}", args.join(" ")), out)
    }
}

// ---------------------------------------------------------------------------------------------
// Ports and tiny HTTP

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The status of `GET path` on 127.0.0.1:port, if something answers.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Read one request head: (method, path, headers).
/// A request line and headers (names lower-case).
struct Head {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

fn read_head(r: &mut impl BufRead) -> Option<Head> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Some(Head {
        method,
        path,
        headers,
    })
}

// ---------------------------------------------------------------------------------------------
// Token issuer (distribution "token" auth: RS256 JWT with an x5c header)

/// How the token issuer behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenMode {
    /// Valid tokens.
    Normal,
    /// The first token is already expired (past distribution's 60 s leeway) though it claims
    /// 300 s; later ones are valid.
    FirstExpired,
    /// Every token is expired.
    AlwaysExpired,
}

/// A running token issuer.
pub struct TokenServer {
    pub port: u16,
    pub cert_pem: PathBuf,
    pub issued: Arc<AtomicUsize>,
    pub mode: Arc<Mutex<TokenMode>>,
    stop: Arc<AtomicBool>,
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// A certificate for `key` named `cn`, signed by `issuer` (self-signed when `None`), with
/// the extensions `extend` adds.
fn certificate(
    key: &PKey<Private>,
    cn: &str,
    issuer: Option<(&X509, &PKey<Private>)>,
    extend: impl FnOnce(&mut openssl::x509::X509Builder),
) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let serial = BigNum::from_u32(rand_u32())
        .unwrap()
        .to_asn1_integer()
        .unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(issuer.map_or(&*name, |(c, _)| c.subject_name()))
        .unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    extend(&mut b);
    b.sign(issuer.map_or(key, |(_, k)| k), MessageDigest::sha256())
        .unwrap();
    b.build()
}

/// A self-signed CA certificate.
fn self_signed(key: &PKey<Private>, cn: &str) -> X509 {
    certificate(key, cn, None, |b| {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
    })
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    openssl::rand::rand_bytes(&mut b).unwrap();
    u32::from_le_bytes(b) >> 1
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl TokenServer {
    /// Start an issuer for `user:password`; its certificate is written to `dir/token-cert.pem`.
    pub fn start(dir: &Path, user: &str, password: &str) -> Self {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let cert = self_signed(&key, "rrun-token-issuer");
        let cert_pem = dir.join("token-cert.pem");
        fs::write(&cert_pem, cert.to_pem().unwrap()).unwrap();
        let x5c = base64::engine::general_purpose::STANDARD.encode(cert.to_der().unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let issued = Arc::new(AtomicUsize::new(0));
        let mode = Arc::new(Mutex::new(TokenMode::Normal));
        let stop = Arc::new(AtomicBool::new(false));
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let (user, issued2, mode2, stop2) = (
            user.to_string(),
            Arc::clone(&issued),
            Arc::clone(&mode),
            Arc::clone(&stop),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let Some(Head { path, headers, .. }) = read_head(&mut reader) else {
                    continue;
                };
                let auth = headers
                    .iter()
                    .find(|(k, _)| k == "authorization")
                    .map(|(_, v)| v.clone());
                let (status, body) = if !path.starts_with("/token") {
                    (404, String::new())
                } else if auth.is_some() && auth.as_deref() != Some(want.as_str()) {
                    (401, r#"{"details":"wrong credentials"}"#.to_string())
                } else {
                    let authed = auth.is_some();
                    let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
                    let mut access = Vec::new();
                    let mut service = String::new();
                    for pair in query.split('&') {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        let v = percent_decode(v);
                        match k {
                            "service" => service = v,
                            "scope" if authed => {
                                let parts: Vec<&str> = v.split(':').collect();
                                if parts.len() >= 3 {
                                    access.push(serde_json::json!({
                                        "type": parts[0],
                                        "name": parts[1..parts.len() - 1].join(":"),
                                        "actions": parts[parts.len() - 1].split(',').collect::<Vec<_>>(),
                                    }));
                                }
                            }
                            _ => {}
                        }
                    }
                    let n = issued2.fetch_add(1, Ordering::SeqCst);
                    let expired = match *mode2.lock().unwrap() {
                        TokenMode::Normal => false,
                        TokenMode::FirstExpired => n == 0,
                        TokenMode::AlwaysExpired => true,
                    };
                    let now = now_secs();
                    let exp = if expired { now - 600 } else { now + 300 };
                    let header = serde_json::json!({"typ":"JWT","alg":"RS256","x5c":[x5c]});
                    let claims = serde_json::json!({
                        "iss": "rrun-token-issuer",
                        "sub": if authed { user.clone() } else { String::new() },
                        "aud": service,
                        "exp": exp,
                        "nbf": now - 700,
                        "iat": now - 700,
                        "jti": format!("{:08x}{:08x}", rand_u32(), rand_u32()),
                        "access": access,
                    });
                    let signing_input = format!(
                        "{}.{}",
                        b64url(header.to_string().as_bytes()),
                        b64url(claims.to_string().as_bytes())
                    );
                    let mut signer = Signer::new(MessageDigest::sha256(), &key).unwrap();
                    signer.update(signing_input.as_bytes()).unwrap();
                    let sig = signer.sign_to_vec().unwrap();
                    let token = format!("{signing_input}.{}", b64url(&sig));
                    (
                        200,
                        serde_json::json!({"token": token, "access_token": token, "expires_in": 300})
                            .to_string(),
                    )
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self {
            port,
            cert_pem,
            issued,
            mode,
            stop,
        }
    }

    pub fn set_mode(&self, mode: TokenMode) {
        *self.mode.lock().unwrap() = mode;
        self.issued.store(0, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------------------------
// The registry

/// How the registry authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    /// htpasswd (bcrypt) with this user and password.
    Basic(String, String),
    /// Token auth through [`TokenServer`] for this user and password.
    Token(String, String),
}

/// Optional TLS of the registry: (certificate, key) PEM files.
pub type Tls = Option<(PathBuf, PathBuf)>;

/// Debian's docker-registry (distribution 2.8) on 127.0.0.1, stopped on drop.
pub struct Registry {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub token: Option<TokenServer>,
    child: Option<Child>,
}

impl Registry {
    pub fn start(auth: Auth) -> Self {
        Self::start_with(auth, None)
    }

    /// Start with optional TLS.
    pub fn start_with(auth: Auth, tls: Tls) -> Self {
        require("docker-registry", "docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("rrun-registry-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("data")).unwrap();
        let mut token = None;
        let auth_yaml = match &auth {
            Auth::None => String::new(),
            Auth::Basic(user, pass) => {
                let bin = require("htpasswd", "apache2-utils");
                let out = Command::new(bin)
                    .args(["-Bbn", user, pass])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "htpasswd failed");
                fs::write(d.join("htpasswd"), &out.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: rrun-test-realm\n    path: {}\n",
                    d.join("htpasswd").display()
                )
            }
            Auth::Token(user, pass) => {
                let t = TokenServer::start(d, user, pass);
                let yaml = format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: rrun-registry\n    issuer: rrun-token-issuer\n    rootcertbundle: {}\n",
                    t.port,
                    t.cert_pem.display()
                );
                token = Some(t);
                yaml
            }
        };
        let tls_yaml = match &tls {
            Some((cert, key)) => format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ),
            None => String::new(),
        };
        let port = free_port();
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n{tls_yaml}health:\n  storagedriver:\n    enabled: false\n{auth_yaml}",
            d.join("data").display()
        );
        fs::write(d.join("config.yml"), config).unwrap();
        let mut r = Self {
            dir,
            port,
            token,
            child: None,
        };
        r.launch(tls.is_some());
        r
    }

    fn launch(&mut self, tls: bool) {
        let d = self.dir.path();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("registry.log"))
            .unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(d.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = if tls {
                TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            } else {
                matches!(http_status(self.port, "/v2/"), Some(200 | 401))
            };
            if up {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("docker-registry exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Its log (with the access log lines).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Log lines of GET requests for blob `digest`.
    pub fn blob_gets(&self, digest: &str) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains(&format!("/blobs/{digest}")))
            .count()
    }

    /// Kill it (SIGKILL) and wait.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port with the same data.
    pub fn restart(&mut self) {
        self.kill();
        self.launch(false);
    }

    /// The stored data of blob `digest` (`sha256:...`).
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// The link that makes blob `digest` part of `repository`.
    pub fn layer_link(&self, repository: &str, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/repositories")
            .join(repository)
            .join("_layers/sha256")
            .join(hex)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A CA and a server certificate it signed for 127.0.0.1: (CA cert, cert, key) PEM files.
pub fn tls_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let ca = self_signed(&ca_key, "rrun test CA");
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let cert = certificate(&key, "127.0.0.1", Some((&ca, &ca_key)), |b| {
        b.append_extension(BasicConstraints::new().build().unwrap())
            .unwrap();
        b.append_extension(ExtendedKeyUsage::new().server_auth().build().unwrap())
            .unwrap();
        let san = SubjectAlternativeName::new()
            .ip("127.0.0.1")
            .dns("localhost")
            .build(&b.x509v3_context(Some(&ca), None))
            .unwrap();
        b.append_extension(san).unwrap();
    });
    let (a, c, k) = (
        dir.join("ca.pem"),
        dir.join("registry-cert.pem"),
        dir.join("registry-key.pem"),
    );
    fs::write(&a, ca.to_pem().unwrap()).unwrap();
    fs::write(&c, cert.to_pem().unwrap()).unwrap();
    fs::write(&k, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (a, c, k)
}

// ---------------------------------------------------------------------------------------------
// A counting, throttling proxy

/// A TCP proxy to a local port that logs each request (`METHOD PATH [range]`), counts the
/// bytes it sends back, and can limit them to a rate.
pub struct Proxy {
    pub port: u16,
    pub log: Arc<Mutex<Vec<String>>>,
    /// Bytes per second per connection sent back (0: no limit).
    pub rate: Arc<AtomicU64>,
    pub sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

impl Proxy {
    pub fn start(upstream: u16, rate: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let p = Self {
            port,
            log: Arc::new(Mutex::new(Vec::new())),
            rate: Arc::new(AtomicU64::new(rate)),
            sent: Arc::new(AtomicU64::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (log, rate, sent, stop) = (
            Arc::clone(&p.log),
            Arc::clone(&p.rate),
            Arc::clone(&p.sent),
            Arc::clone(&p.stop),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let (log, rate, sent) = (Arc::clone(&log), Arc::clone(&rate), Arc::clone(&sent));
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || forward_requests(client, server, &log));
                std::thread::spawn(move || forward_responses(s2, c2, &rate, &sent));
            }
        });
        p
    }

    /// Logged requests containing `needle`.
    pub fn requests(&self, needle: &str) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }
}

/// Client to server: parse request heads for the log, pass everything on.
fn forward_requests(client: TcpStream, mut server: TcpStream, log: &Mutex<Vec<String>>) {
    let mut r = BufReader::new(client.try_clone().unwrap());
    while let Some(Head {
        method,
        path,
        headers,
    }) = read_head(&mut r)
    {
        let get = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let range = get("range").map(|v| format!(" {v}")).unwrap_or_default();
        log.lock().unwrap().push(format!("{method} {path}{range}"));
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        for (k, v) in &headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        if server.write_all(head.as_bytes()).is_err() {
            break;
        }
        if let Some(len) = get("content-length").and_then(|l| l.parse::<u64>().ok()) {
            if std::io::copy(&mut (&mut r).take(len), &mut server).is_err() {
                break;
            }
        } else if get("transfer-encoding").is_some() {
            let _ = std::io::copy(&mut r, &mut server);
            break;
        }
    }
    let _ = server.shutdown(Shutdown::Write);
}

/// Server to client, at most `rate` bytes per second.
fn forward_responses(
    mut server: TcpStream,
    mut client: TcpStream,
    rate: &AtomicU64,
    sent: &AtomicU64,
) {
    let mut buf = vec![0u8; 16 << 10];
    let start = Instant::now();
    let mut total = 0u64;
    loop {
        let n = match server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if client.write_all(&buf[..n]).is_err() {
            break;
        }
        total += n as u64;
        sent.fetch_add(n as u64, Ordering::Relaxed);
        let r = rate.load(Ordering::Relaxed);
        if r > 0 {
            let due = Duration::from_secs_f64(total as f64 / r as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    let _ = client.shutdown(Shutdown::Both);
}

// ---------------------------------------------------------------------------------------------
// Images and keys

/// sha256 digest string of bytes.
pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Random bytes.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    openssl::rand::rand_bytes(&mut v).unwrap();
    v
}

/// A tar holding `files` (path, content).
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A layer: a plain tar (`gzip` false) or gzip of it.
pub struct Layer {
    pub tar: Vec<u8>,
    pub gzip: bool,
}

/// What an image built by [`write_layout`] holds.
#[derive(Debug, Clone)]
pub struct Built {
    pub manifest_digest: String,
    pub config_digest: String,
    pub layer_digests: Vec<String>,
}

/// Write an OCI layout at `dir` with one image tagged `tag` made of `layers` for this host.
pub fn write_layout(dir: &Path, tag: &str, layers: &[Layer]) -> Built {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let d = digest(data);
        fs::write(blobs.join(d.trim_start_matches("sha256:")), data).unwrap();
        d
    };
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    let mut layer_digests = Vec::new();
    for l in layers {
        diff_ids.push(digest(&l.tar));
        let (blob, mt) = if l.gzip {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&l.tar).unwrap();
            (
                e.finish().unwrap(),
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        } else {
            (l.tar.clone(), "application/vnd.oci.image.layer.v1.tar")
        };
        let d = put(&blob);
        layer_digests.push(d.clone());
        descs.push(serde_json::json!({"mediaType": mt, "digest": d, "size": blob.len()}));
    }
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let config_digest = put(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": descs,
    }))
    .unwrap();
    let manifest_digest = put(&manifest);
    let index_path = dir.join("index.json");
    let mut index: serde_json::Value = fs::read(&index_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| serde_json::json!({"schemaVersion": 2, "manifests": []}));
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
    fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    Built {
        manifest_digest,
        config_digest,
        layer_digests,
    }
}

/// A small two-layer image (gzip + plain tar).
pub fn small_image(dir: &Path, tag: &str) -> Built {
    write_layout(
        dir,
        tag,
        &[
            Layer {
                tar: tar_of(&[
                    ("bin/hello", b"#!/bin/sh\necho hello\n"),
                    ("etc/motd", &random_bytes(50_000)),
                ]),
                gzip: true,
            },
            Layer {
                tar: tar_of(&[("etc/app.conf", b"setting = 1\n")]),
                gzip: false,
            },
        ],
    )
}

/// An RSA key pair as PEM files `dir/NAME.pem` (PKCS#8, 0600) and `dir/NAME.pub`.
pub fn rsa_key(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt as _;
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let (private, public) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.pub")),
    );
    fs::write(&private, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(&public, key.public_key_to_pem().unwrap()).unwrap();
    (private, public)
}

/// The store's blob file names and index.json (to compare before and after a failure).
pub fn store_state(root: &Path) -> (Vec<String>, Option<Vec<u8>>) {
    let mut blobs: Vec<String> = fs::read_dir(root.join("blobs/sha256"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with(".rrun-tmp"))
                .collect()
        })
        .unwrap_or_default();
    blobs.sort();
    (blobs, fs::read(root.join("index.json")).ok())
}

/// The `index.json` names of the store and the digests they point at.
pub fn store_names(root: &Path) -> BTreeMap<String, String> {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(root.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Check every blob of the store has the digest it is named by.
pub fn verify_store_blobs(root: &Path) {
    for e in fs::read_dir(root.join("blobs/sha256")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with(".rrun-tmp"), "leftover temp file {name}");
        let data = fs::read(e.path()).unwrap();
        assert_eq!(
            digest(&data),
            format!("sha256:{name}"),
            "blob {name} is corrupt"
        );
    }
}

/// Wait until `cond` holds (panics after `secs`).
pub fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
