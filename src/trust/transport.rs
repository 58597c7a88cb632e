//! How metadata and targets are fetched: a small `Transport` trait with an HTTP(S)
//! implementation (ureq, rustls, optional CA file) and a filesystem one for tests and mirrors.

use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{Result, TrustError};

/// Fetches bytes by URL with a size cap; a missing file is `TrustError::NotFound`.
pub trait Transport: Send + Sync + std::fmt::Debug {
    /// GET `url`, reading at most `max_size` bytes (more is `TrustError::TooLarge`).
    fn fetch(&self, url: &str, max_size: u64) -> Result<Vec<u8>>;

    /// POST `body` to `url` (Notary publishing); the response is read up to `max_size` bytes.
    fn post(&self, url: &str, content_type: &str, body: &[u8], max_size: u64) -> Result<Vec<u8>> {
        let _ = (content_type, body, max_size);
        Err(TrustError::Transport {
            url: url.to_string(),
            reason: "this transport is read-only".into(),
        })
    }
}

/// Whether plain `http://` may be used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PlainHttp {
    /// Only for loopback hosts (127.0.0.0/8, ::1, localhost), as docker does. The safe default.
    #[default]
    LoopbackOnly,
    /// For any host (`--tls-verify=false`): loses confidentiality of requests, but TUF
    /// signatures still protect integrity and freshness.
    Anywhere,
}

/// User name and password for the trust server's token service (docker `config.json` login).
#[derive(Clone)]
pub struct BasicAuth {
    pub username: String,
    pub password: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BasicAuth({}, <password>)", self.username)
    }
}

/// Settings of the HTTP transport.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// PEM file with the CA certificate(s) to trust instead of the built-in web roots.
    pub ca_file: Option<PathBuf>,
    /// When plain http is allowed.
    pub plain_http: PlainHttp,
    /// Overall time limit of one request.
    pub timeout: Duration,
    /// Credentials for bearer-token challenges (anonymous tokens without them).
    pub credentials: Option<BasicAuth>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            ca_file: None,
            plain_http: PlainHttp::LoopbackOnly,
            timeout: Duration::from_secs(60),
            credentials: None,
        }
    }
}

/// HTTP(S) transport on a blocking ureq agent. Redirects are not followed. A `401` with a
/// `Bearer` challenge (Docker Hub's notary, registries' token auth) is answered by fetching a
/// token from the challenge's realm and retrying once.
#[derive(Debug)]
pub struct HttpTransport {
    agent: ureq::Agent,
    plain_http: PlainHttp,
    credentials: Option<BasicAuth>,
    token: std::sync::Mutex<Option<zeroize::Zeroizing<String>>>,
}

/// Cap on token-service responses.
const TOKEN_CAP: u64 = 1 << 20;

/// The parameters of a `WWW-Authenticate: Bearer realm="..",service="..",scope=".."` header.
fn parse_bearer(header: &str) -> Option<Vec<(String, String)>> {
    let rest = header
        .trim()
        .strip_prefix("Bearer ")
        .or_else(|| header.trim().strip_prefix("bearer "))?;
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if key.is_empty() || chars.next() != Some('=') {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
        }
        out.push((key.trim().to_ascii_lowercase(), value));
    }
    out.iter().any(|(k, _)| k == "realm").then_some(out)
}

impl HttpTransport {
    /// Build the transport; reads the CA file now.
    pub fn new(opts: &HttpOptions) -> Result<Self> {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(ca) = &opts.ca_file {
            let pem = std::fs::read(ca).map_err(|e| TrustError::io(ca, e))?;
            let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(TrustError::Key(format!(
                    "{}: no PEM certificate found; give the CA certificate of the trust server",
                    ca.display()
                )));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(opts.timeout))
            .user_agent(concat!("rrun/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.build())
            .build();
        Ok(HttpTransport {
            agent: config.new_agent(),
            plain_http: opts.plain_http,
            credentials: opts.credentials.clone(),
            token: std::sync::Mutex::new(None),
        })
    }

    /// Send one request (GET without a body, POST with one), answering a bearer challenge.
    fn send(
        &self,
        url: &str,
        post: Option<(&str, &[u8])>,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        self.check_scheme(url)?;
        let attempt = |token: Option<&str>| {
            let res = match post {
                None => {
                    let mut req = self.agent.get(url);
                    if let Some(t) = token {
                        req = req.header("Authorization", &format!("Bearer {t}"));
                    }
                    req.call()
                }
                Some((content_type, body)) => {
                    let mut req = self.agent.post(url).header("Content-Type", content_type);
                    if let Some(t) = token {
                        req = req.header("Authorization", &format!("Bearer {t}"));
                    }
                    req.send(body)
                }
            };
            res.map_err(|e| TrustError::Transport {
                url: url.to_string(),
                reason: e.to_string(),
            })
        };
        let cached = self.token.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let resp = attempt(cached.as_deref().map(|s| s.as_str()))?;
        if resp.status().as_u16() != 401 {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(parse_bearer);
        let Some(params) = challenge else {
            return Ok(resp);
        };
        let token = self.fetch_token(url, &params)?;
        let resp = attempt(Some(token.as_str()))?;
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(token);
        Ok(resp)
    }

    /// Get a token from the challenge's realm (`GET realm?service=..&scope=..`).
    fn fetch_token(
        &self,
        url: &str,
        params: &[(String, String)],
    ) -> Result<zeroize::Zeroizing<String>> {
        let get = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let realm = get("realm").unwrap_or_default();
        self.check_scheme(realm)?;
        let mut query = Vec::new();
        for key in ["service", "scope"] {
            if let Some(v) = get(key) {
                query.push(format!("{key}={}", super::cache::percent_encode_all(v)));
            }
        }
        let token_url = if query.is_empty() {
            realm.to_string()
        } else {
            format!("{realm}?{}", query.join("&"))
        };
        let mut req = self.agent.get(&token_url);
        if let Some(c) = &self.credentials {
            use base64::Engine as _;
            let raw = zeroize::Zeroizing::new(format!("{}:{}", c.username, c.password.as_str()));
            let b64 = zeroize::Zeroizing::new(
                base64::engine::general_purpose::STANDARD.encode(raw.as_bytes()),
            );
            req = req.header("Authorization", &format!("Basic {}", b64.as_str()));
        }
        let resp = req.call().map_err(|e| TrustError::Transport {
            url: token_url.clone(),
            reason: e.to_string(),
        })?;
        let body =
            zeroize::Zeroizing::new(Self::finish(&token_url, resp, TOKEN_CAP).map_err(|e| {
                TrustError::Transport {
                    url: url.to_string(),
                    reason: format!("authentication failed: {e}"),
                }
            })?);
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| TrustError::Transport {
                url: token_url.clone(),
                reason: format!("bad token response: {e}"),
            })?;
        let token = v["token"]
            .as_str()
            .or_else(|| v["access_token"].as_str())
            .ok_or_else(|| TrustError::Transport {
                url: token_url.clone(),
                reason: "token response has no token".into(),
            })?;
        Ok(zeroize::Zeroizing::new(token.to_string()))
    }

    fn check_scheme(&self, url: &str) -> Result<()> {
        if url.starts_with("https://") {
            return Ok(());
        }
        if let Some(rest) = url.strip_prefix("http://") {
            if self.plain_http == PlainHttp::Anywhere || is_loopback_authority(rest) {
                return Ok(());
            }
            return Err(TrustError::Transport {
                url: url.to_string(),
                reason: "plain http is only used for loopback servers: use https (or --tls-verify=false)".into(),
            });
        }
        Err(TrustError::Transport {
            url: url.to_string(),
            reason: "only http:// and https:// URLs are supported".into(),
        })
    }

    fn finish(
        url: &str,
        mut resp: ureq::http::Response<ureq::Body>,
        max_size: u64,
    ) -> Result<Vec<u8>> {
        let status = resp.status().as_u16();
        if status == 404 || status == 403 {
            // Read the (small) error body so that the connection goes back to the pool: the
            // root walk's `N+1.root.json` is a 404 on every update, before `timestamp.json`.
            let _ = resp.body_mut().with_config().limit(4096).read_to_vec();
            return Err(TrustError::NotFound {
                url: url.to_string(),
            });
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(max_size)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => TrustError::TooLarge {
                    url: url.to_string(),
                    max: max_size,
                },
                e => TrustError::Transport {
                    url: url.to_string(),
                    reason: e.to_string(),
                },
            })?;
        if !(200..300).contains(&status) {
            let text = String::from_utf8_lossy(&body[..body.len().min(512)])
                .trim()
                .to_string();
            return Err(TrustError::Transport {
                url: url.to_string(),
                reason: format!("HTTP {status}: {text}"),
            });
        }
        Ok(body)
    }
}

/// True if the authority part (`host[:port]/...`) of a URL names a loopback host.
fn is_loopback_authority(rest: &str) -> bool {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

impl Transport for HttpTransport {
    fn fetch(&self, url: &str, max_size: u64) -> Result<Vec<u8>> {
        let resp = self.send(url, None)?;
        Self::finish(url, resp, max_size)
    }

    fn post(&self, url: &str, content_type: &str, body: &[u8], max_size: u64) -> Result<Vec<u8>> {
        let resp = self.send(url, Some((content_type, body)))?;
        let status = resp.status().as_u16();
        match Self::finish(url, resp, max_size) {
            Err(TrustError::NotFound { .. }) => Err(TrustError::Publish {
                status,
                body: "not found".into(),
            }),
            Err(TrustError::Transport { reason, .. }) if !(200..300).contains(&status) => {
                Err(TrustError::Publish {
                    status,
                    body: reason,
                })
            }
            other => other,
        }
    }
}

/// Reads `file://` URLs (or plain absolute paths) from the local filesystem.
#[derive(Debug, Clone, Copy, Default)]
pub struct FilesystemTransport;

impl FilesystemTransport {
    fn path(url: &str) -> Result<PathBuf> {
        let p = url.strip_prefix("file://").unwrap_or(url);
        let path = Path::new(p);
        if !path.is_absolute() || p.split('/').any(|c| c == "..") {
            return Err(TrustError::Transport {
                url: url.to_string(),
                reason: "need an absolute file:// URL without '..'".into(),
            });
        }
        Ok(path.to_path_buf())
    }
}

impl Transport for FilesystemTransport {
    fn fetch(&self, url: &str, max_size: u64) -> Result<Vec<u8>> {
        let path = Self::path(url)?;
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(TrustError::NotFound {
                    url: url.to_string(),
                })
            }
            Err(e) => return Err(TrustError::io(path, e)),
        };
        let mut buf = Vec::new();
        file.take(max_size.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| TrustError::io(&path, e))?;
        if buf.len() as u64 > max_size {
            return Err(TrustError::TooLarge {
                url: url.to_string(),
                max: max_size,
            });
        }
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_detection() {
        assert!(is_loopback_authority("127.0.0.1:4443/v2/"));
        assert!(is_loopback_authority("127.3.2.1/x"));
        assert!(is_loopback_authority("localhost:80"));
        assert!(is_loopback_authority("[::1]:8080/a"));
        assert!(!is_loopback_authority("example.com/127.0.0.1"));
        assert!(!is_loopback_authority("127.0.0.1.example.com/"));
        assert!(!is_loopback_authority("10.0.0.1:80/"));
    }

    #[test]
    fn plain_http_refused_for_remote_hosts() {
        let t = HttpTransport::new(&HttpOptions::default()).unwrap();
        let err = t.fetch("http://example.com/root.json", 10).unwrap_err();
        assert!(err.to_string().contains("plain http"), "{err}");
    }

    #[test]
    fn filesystem_caps_size_and_reports_missing() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.json");
        std::fs::write(&f, b"0123456789").unwrap();
        let url = format!("file://{}", f.display());
        assert_eq!(FilesystemTransport.fetch(&url, 10).unwrap().len(), 10);
        assert!(matches!(
            FilesystemTransport.fetch(&url, 9),
            Err(TrustError::TooLarge { max: 9, .. })
        ));
        let missing = format!("file://{}/none.json", dir.path().display());
        assert!(FilesystemTransport
            .fetch(&missing, 9)
            .unwrap_err()
            .is_not_found());
    }

    #[test]
    fn bearer_challenges() {
        let p = parse_bearer(r#"Bearer realm="https://auth.docker.io/token",service="notary.docker.io",scope="repository:docker.io/library/busybox:pull,push""#).unwrap();
        assert_eq!(
            p[0],
            ("realm".into(), "https://auth.docker.io/token".into())
        );
        assert_eq!(
            p[2],
            (
                "scope".into(),
                "repository:docker.io/library/busybox:pull,push".into()
            )
        );
        assert!(parse_bearer("Basic realm=\"x\"").is_none());
    }

    /// A loopback server that wants a bearer token, and its token service.
    #[test]
    fn answers_a_bearer_challenge_once() {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for _ in 0..4 {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                        break;
                    }
                    request.push_str(&line);
                }
                let first = request.lines().next().unwrap_or("").to_string();
                let authed = request
                    .to_ascii_lowercase()
                    .contains("authorization: bearer tok123");
                let (status, extra, body) = if first
                    .starts_with("GET /token?service=notary&scope=repository%3Aa%2Fb%3Apull ")
                {
                    ("200 OK", String::new(), r#"{"token":"tok123"}"#.to_string())
                } else if authed {
                    ("200 OK", String::new(), "metadata".to_string())
                } else {
                    let h = format!("WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"notary\",scope=\"repository:a/b:pull\"\r\n");
                    ("401 Unauthorized", h, String::new())
                };
                seen.push(format!("{first} authed={authed}"));
                let mut s = stream;
                write!(s, "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
            }
            seen
        });
        let t = HttpTransport::new(&HttpOptions::default()).unwrap();
        let url = format!("http://127.0.0.1:{port}/v2/a/b/_trust/tuf/root.json");
        assert_eq!(t.fetch(&url, 100).unwrap(), b"metadata");
        // the token is reused for the next request
        assert_eq!(t.fetch(&url, 100).unwrap(), b"metadata");
        let seen = server.join().unwrap();
        assert_eq!(seen.len(), 4);
        assert!(
            seen[0].ends_with("authed=false")
                && seen[2].ends_with("authed=true")
                && seen[3].ends_with("authed=true"),
            "{seen:?}"
        );
    }
}
