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

/// Settings of the HTTP transport.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// PEM file with the CA certificate(s) to trust instead of the built-in web roots.
    pub ca_file: Option<PathBuf>,
    /// When plain http is allowed.
    pub plain_http: PlainHttp,
    /// Overall time limit of one request.
    pub timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            ca_file: None,
            plain_http: PlainHttp::LoopbackOnly,
            timeout: Duration::from_secs(60),
        }
    }
}

/// HTTP(S) transport on a blocking ureq agent. Redirects are not followed.
#[derive(Debug)]
pub struct HttpTransport {
    agent: ureq::Agent,
    plain_http: PlainHttp,
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
        })
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
        self.check_scheme(url)?;
        let resp = self
            .agent
            .get(url)
            .call()
            .map_err(|e| TrustError::Transport {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        Self::finish(url, resp, max_size)
    }

    fn post(&self, url: &str, content_type: &str, body: &[u8], max_size: u64) -> Result<Vec<u8>> {
        self.check_scheme(url)?;
        let resp = self
            .agent
            .post(url)
            .header("Content-Type", content_type)
            .send(body)
            .map_err(|e| TrustError::Transport {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
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
}
