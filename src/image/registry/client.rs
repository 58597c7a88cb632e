//! The distribution-spec v2 client for one registry: endpoint choice (HTTPS, or plain HTTP for
//! loopback registries and `--tls-verify=false`), TLS roots (`--tls-ca`), timeouts, and one
//! request path that adds authentication, answers 401 challenges once, and retries transient
//! failures with backoff. Manifest GET/HEAD/PUT and blob GET live here; uploads in `upload`.

use std::fmt;
use std::io::Read as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ureq::http::Response;
use ureq::{Agent, Body, BodyReader};
use zeroize::Zeroizing;

use super::auth::{
    parse_challenge, AuthPlan, AuthState, Challenge, Credentials, Scope, TokenResponse,
};
use super::authfile::AuthFiles;
use super::retry::{self, RetryPolicy};
use crate::image::digest::Digest;
use crate::image::error::{ImageError, Result};
use crate::image::layout::MAX_MANIFEST_SIZE;
use crate::image::manifest::Descriptor;
use crate::image::media_type::{
    self, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST,
};
use crate::image::name::Reference;

/// The manifest media types rrun asks for (never Docker schema1).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json;q=0.9, application/vnd.docker.distribution.manifest.v2+json;q=0.9";

/// Largest error or token body rrun reads.
const MAX_SMALL_BODY: u64 = 1 << 20;

/// Whether TLS certificates are checked. The default is to check them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVerify {
    /// HTTPS with verified certificates (plain HTTP only for loopback registries).
    #[default]
    Verify,
    /// `--tls-verify=false`: certificates are not checked and plain HTTP is used when the
    /// registry does not speak TLS. Anyone on the network path can read and change the
    /// traffic; digests still protect the content pulled by digest.
    Insecure,
}

/// Where credentials come from.
#[derive(Debug, Clone, Default)]
pub enum CredentialSource {
    /// Docker's and podman's credentials files, read when a registry asks for credentials.
    #[default]
    AuthFiles,
    /// These credentials (login checks them before storing).
    Given(Credentials),
    /// No credentials.
    Anonymous,
}

/// How a [`Client`] talks to a registry.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Certificate checking and plain HTTP.
    pub tls_verify: TlsVerify,
    /// PEM file with the CA certificates to trust instead of the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// Time allowed for each read from the network.
    pub read_timeout: Duration,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// Credentials.
    pub credentials: CredentialSource,
    /// Upload blobs in PATCH chunks of this size instead of one streaming PUT.
    pub upload_chunk_size: Option<u64>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            tls_verify: TlsVerify::Verify,
            ca_file: None,
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            credentials: CredentialSource::AuthFiles,
            upload_chunk_size: None,
        }
    }
}

/// Called with a one-line message before a transient failure is retried.
#[derive(Clone)]
pub struct RetryNotifier(pub Arc<dyn Fn(&str) + Send + Sync>);

impl fmt::Debug for RetryNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RetryNotifier")
    }
}

/// The resolved base URL of a registry.
#[derive(Debug, Clone)]
struct Endpoint {
    base: String,
    insecure_tls: bool,
}

/// A client of one registry (shared by the threads of a pull or push).
pub struct Client {
    registry: String,
    api_host: String,
    loopback: bool,
    repository_hint: Option<String>,
    opts: ClientOptions,
    verified: Agent,
    insecure: Agent,
    endpoint: Mutex<Option<Endpoint>>,
    auth: AuthState,
    creds: OnceLock<std::result::Result<Option<Credentials>, String>>,
    notifier: Option<RetryNotifier>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("registry", &self.registry)
            .field("api_host", &self.api_host)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// A blob response being streamed.
pub struct BlobStream {
    /// The body.
    pub reader: BodyReader<'static>,
    /// The offset of the first byte of the body within the blob.
    pub start: u64,
    /// The body's length, when the server said.
    pub length: Option<u64>,
}

impl fmt::Debug for BlobStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobStream")
            .field("start", &self.start)
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

/// A manifest or index fetched from a registry, verified.
#[derive(Debug, Clone)]
pub struct RemoteManifest {
    /// The exact bytes (their digest is `desc.digest`).
    pub bytes: Vec<u8>,
    /// Media type, digest and size.
    pub desc: Descriptor,
}

/// The `Authorization` value of one attempt, if any.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuthHeader<'a>(Option<&'a str>);

impl AuthHeader<'_> {
    /// The request with the `Authorization` header added (when there is one).
    pub(crate) fn on<B>(self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match self.0 {
            Some(a) => req.header("Authorization", a),
            None => req,
        }
    }
}

/// Whether a request is retried on transient failures (a request whose body cannot be sent
/// twice is not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    Transient,
    Never,
}

fn header<'a>(resp: &'a Response<Body>, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The `errors` of a distribution error body, as `CODE: message` lines.
fn error_detail(resp: Response<Body>) -> String {
    let mut body = resp.into_body();
    let text = body
        .with_config()
        .limit(MAX_SMALL_BODY)
        .read_to_vec()
        .unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<ErrorItem>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Errors>(&text) {
        Ok(e) if !e.errors.is_empty() => e
            .errors
            .iter()
            .map(|i| format!("{}: {}", i.code, i.message))
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::from_utf8_lossy(&text)
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect(),
    }
}

fn make_agent(opts: &ClientOptions, roots: Option<ureq::tls::RootCerts>, insecure: bool) -> Agent {
    let mut tls = ureq::tls::TlsConfig::builder().disable_verification(insecure);
    if let Some(roots) = roots {
        tls = tls.root_certs(roots);
    }
    Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(opts.connect_timeout))
        .timeout_per_read(Some(opts.read_timeout))
        .timeout_per_write(Some(opts.read_timeout))
        .user_agent(concat!("rrun/", env!("CARGO_PKG_VERSION")))
        // Blobs are hashed as stored: never let the transport decompress them.
        .accept_encoding("identity")
        .max_redirects(10)
        .tls_config(tls.build())
        .build()
        .new_agent()
}

/// Load the CA certificates of `--tls-ca`.
fn load_roots(path: &std::path::Path) -> Result<ureq::tls::RootCerts> {
    let pem = std::fs::read(path).map_err(|e| ImageError::io_at(path, e))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(ImageError::TlsConfig {
                    reason: format!("{}: {e}", path.display()),
                })
            }
        }
    }
    if certs.is_empty() {
        return Err(ImageError::TlsConfig {
            reason: format!(
                "{} holds no PEM certificate; give the registry's CA certificate with --tls-ca",
                path.display()
            ),
        });
    }
    Ok(ureq::tls::RootCerts::new_with_certs(&certs))
}

impl Client {
    /// A client of the registry of `reference` (its repository is used to find per-namespace
    /// credentials).
    pub fn new(reference: &Reference, opts: ClientOptions) -> Result<Self> {
        Self::build(reference, Some(reference.repository().to_string()), opts)
    }

    /// A client of the registry named `registry` (`host[:port]`, `docker.io`), for login.
    pub fn for_registry(registry: &str, opts: ClientOptions) -> Result<Self> {
        let probe: Reference = format!("{registry}/rrun-login-probe")
            .parse()
            .map_err(|_| ImageError::InvalidReference {
                reference: registry.to_string(),
                reason: "expected a registry host[:port], for example 127.0.0.1:5000 or docker.io"
                    .into(),
            })?;
        if probe.domain() != registry.trim_end_matches('/') && registry != "index.docker.io" {
            return Err(ImageError::InvalidReference {
                reference: registry.to_string(),
                reason: "expected a registry host[:port] without a path".into(),
            });
        }
        Self::build(&probe, None, opts)
    }

    fn build(
        reference: &Reference,
        repository_hint: Option<String>,
        opts: ClientOptions,
    ) -> Result<Self> {
        let roots = opts.ca_file.as_deref().map(load_roots).transpose()?;
        let verified = make_agent(&opts, roots, false);
        let insecure = make_agent(&opts, None, true);
        Ok(Self {
            registry: reference.domain().to_string(),
            api_host: reference.api_host().to_string(),
            loopback: reference.is_loopback(),
            repository_hint,
            opts,
            verified,
            insecure,
            endpoint: Mutex::new(None),
            auth: AuthState::default(),
            creds: OnceLock::new(),
            notifier: None,
        })
    }

    /// Call `f` with a message before each retry of a transient failure.
    pub fn set_retry_notifier(&mut self, f: RetryNotifier) {
        self.notifier = Some(f);
    }

    /// The registry domain (`127.0.0.1:5000`, `docker.io`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The options.
    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    pub(crate) fn notify(&self, msg: &str) {
        if let Some(n) = &self.notifier {
            (n.0)(msg);
        }
    }

    pub(crate) fn unreachable(&self, reason: impl fmt::Display) -> ImageError {
        ImageError::RegistryUnreachable {
            registry: self.registry.clone(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn protocol(&self, reason: impl Into<String>) -> ImageError {
        ImageError::RegistryProtocol {
            registry: self.registry.clone(),
            reason: reason.into(),
        }
    }

    /// The error for an unexpected status (the body's distribution errors as detail).
    pub(crate) fn status_error(&self, what: &str, resp: Response<Body>) -> ImageError {
        let status = resp.status().as_u16();
        let detail = error_detail(resp);
        if status == 404 {
            ImageError::RegistryNotFound {
                registry: self.registry.clone(),
                what: what.to_string(),
                detail,
            }
        } else {
            ImageError::RegistryStatus {
                registry: self.registry.clone(),
                what: what.to_string(),
                status,
                detail,
            }
        }
    }

    fn agent_for(&self, ep: &Endpoint) -> &Agent {
        if ep.insecure_tls {
            &self.insecure
        } else {
            &self.verified
        }
    }

    fn sleep_before_retry(&self, what: &str, retry: u32, after: Option<Duration>, why: &str) {
        let delay = self.opts.retry.delay_for(retry, after);
        self.notify(&format!(
            "{what}: {why}; retrying in {:.1}s (attempt {} of {})",
            delay.as_secs_f64(),
            retry + 1,
            self.opts.retry.attempts
        ));
        std::thread::sleep(delay);
    }

    /// The base URL: HTTPS, except that loopback registries and `--tls-verify=false` fall back
    /// to plain HTTP when HTTPS does not work (docker's rule for insecure registries). The
    /// `/v2/` probe also learns the authentication scheme.
    fn endpoint(&self) -> Result<Endpoint> {
        let mut guard = self.endpoint.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ep) = guard.as_ref() {
            return Ok(ep.clone());
        }
        let insecure = self.opts.tls_verify == TlsVerify::Insecure;
        let https = Endpoint {
            base: format!("https://{}", self.api_host),
            insecure_tls: insecure,
        };
        if !(insecure || self.loopback) {
            *guard = Some(https.clone());
            return Ok(https);
        }
        let http = Endpoint {
            base: format!("http://{}", self.api_host),
            insecure_tls: insecure,
        };
        let mut retry = 0;
        loop {
            let tls_err = match self
                .agent_for(&https)
                .get(format!("{}/v2/", https.base))
                .call()
            {
                Ok(resp) => {
                    self.learn_challenge(&resp);
                    *guard = Some(https.clone());
                    return Ok(https);
                }
                Err(e) => e,
            };
            match self
                .agent_for(&http)
                .get(format!("{}/v2/", http.base))
                .call()
            {
                // Go's answer to plain HTTP on a TLS port: the registry speaks TLS, which failed.
                Ok(resp) if resp.status().as_u16() == 400 => {
                    return Err(ImageError::TlsConfig {
                        reason: format!(
                            "{} speaks HTTPS but the TLS connection failed: {tls_err}; give its CA certificate with --tls-ca FILE or use --tls-verify=false",
                            self.registry
                        ),
                    })
                }
                Ok(resp) => {
                    self.learn_challenge(&resp);
                    *guard = Some(http.clone());
                    return Ok(http);
                }
                Err(e) if retry::is_transient(&e) && retry + 1 < self.opts.retry.attempts => {
                    retry += 1;
                    self.sleep_before_retry(
                        &format!("connecting to {}", self.registry),
                        retry,
                        None,
                        &e.to_string(),
                    );
                }
                Err(e) => {
                    return Err(self.unreachable(format!(
                        "{e} (over HTTPS: {tls_err}); is the registry running?"
                    )))
                }
            }
        }
    }

    /// Remember the scheme a 401 answer asks for.
    fn learn_challenge(&self, resp: &Response<Body>) -> Option<Challenge> {
        if resp.status().as_u16() != 401 {
            return None;
        }
        let mut found = None;
        for value in resp.headers().get_all("www-authenticate") {
            if let Some(c) = value.to_str().ok().and_then(parse_challenge) {
                // Prefer bearer over basic when both are offered.
                if found.is_none() || matches!(c, Challenge::Bearer { .. }) {
                    found = Some(c);
                }
            }
        }
        if let Some(c) = &found {
            self.auth.set_challenge(c.clone());
        }
        found
    }

    /// The credentials for this registry, if any (read once).
    fn credentials(&self) -> Result<Option<Credentials>> {
        let found = self.creds.get_or_init(|| match &self.opts.credentials {
            CredentialSource::Anonymous => Ok(None),
            CredentialSource::Given(c) => Ok(Some(c.clone())),
            CredentialSource::AuthFiles => AuthFiles::from_env()
                .and_then(|f| f.find(&self.registry, self.repository_hint.as_deref()))
                .map(|found| found.map(|f| f.credentials))
                .map_err(|e| e.to_string()),
        });
        found.clone().map_err(|reason| ImageError::AuthFile {
            path: PathBuf::from("credentials"),
            reason,
        })
    }

    /// The `Authorization` value for a request needing `scope` (fetching a token if needed).
    fn authorization(&self, scope: &Scope, ep: &Endpoint) -> Result<Option<Zeroizing<String>>> {
        let creds = match self.auth.challenge() {
            Some(_) => self.credentials()?,
            None => None,
        };
        match self.auth.plan(scope, creds.as_ref()) {
            AuthPlan::Anonymous => Ok(None),
            AuthPlan::Header(h) => Ok(Some(h)),
            AuthPlan::FetchToken(Challenge::Bearer { realm, service, .. }) => {
                let (token, lifetime) =
                    self.fetch_token(ep, &realm, service.as_deref(), scope, creds.as_ref())?;
                let value = Zeroizing::new(format!("Bearer {}", token.as_str()));
                self.auth.put_token(scope, token, lifetime);
                Ok(Some(value))
            }
            AuthPlan::FetchToken(Challenge::Basic) => Ok(None),
        }
    }

    /// GET a token from the realm (distribution token spec), with basic credentials if any.
    fn fetch_token(
        &self,
        ep: &Endpoint,
        realm: &str,
        service: Option<&str>,
        scope: &Scope,
        creds: Option<&Credentials>,
    ) -> Result<(Zeroizing<String>, Duration)> {
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(self.protocol(format!("token realm {realm:?} is not an http(s) URL")));
        }
        let mut retry = 0;
        let resp = loop {
            let mut req = self.agent_for(ep).get(realm);
            if let Some(s) = service {
                req = req.query("service", s);
            }
            for s in scope.items() {
                req = req.query("scope", s);
            }
            if let Some(c) = creds {
                req = req.header("Authorization", c.basic_header().as_str());
            }
            match req.call() {
                Ok(r)
                    if retry::is_transient_status(r.status().as_u16())
                        && retry + 1 < self.opts.retry.attempts =>
                {
                    retry += 1;
                    let after = header(&r, "retry-after").and_then(retry::parse_retry_after);
                    self.sleep_before_retry("token", retry, after, &format!("HTTP {}", r.status()));
                }
                Ok(r) => break r,
                Err(e) if retry::is_transient(&e) && retry + 1 < self.opts.retry.attempts => {
                    retry += 1;
                    self.sleep_before_retry("token", retry, None, &e.to_string());
                }
                Err(e) => return Err(self.unreachable(format!("token server {realm}: {e}"))),
            }
        };
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            return Err(ImageError::Unauthorized {
                registry: self.registry.clone(),
                what: scope_text(scope),
                reason: if creds.is_some() {
                    "the token server refused the credentials".into()
                } else {
                    "the token server wants credentials".into()
                },
            });
        }
        if status != 200 {
            return Err(self.status_error("token request", resp));
        }
        let body = resp
            .into_body()
            .with_config()
            .limit(MAX_SMALL_BODY)
            .read_to_vec()
            .map_err(|e| self.unreachable(format!("token server {realm}: {e}")))?;
        let body = Zeroizing::new(body);
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| self.protocol(format!("token response is not JSON: {e}")))?;
        parsed
            .into_token()
            .ok_or_else(|| self.protocol("token response holds no token"))
    }

    /// Send a request made by `make` (given the agent, the base URL and the `Authorization`
    /// to add with [`AuthHeader::on`]) with authentication: a 401 is answered once (new token
    /// or credentials) and the request made again; transient failures are retried with backoff
    /// when `retry` allows. Any other status is returned for the caller to interpret.
    pub(crate) fn send<F>(
        &self,
        what: &str,
        scope: &Scope,
        retry_mode: Retry,
        mut make: F,
    ) -> Result<Response<Body>>
    where
        F: FnMut(&Agent, &str, AuthHeader<'_>) -> std::result::Result<Response<Body>, ureq::Error>,
    {
        let ep = self.endpoint()?;
        let agent = self.agent_for(&ep);
        let mut retry = 0;
        let mut answered = false;
        let attempts = match retry_mode {
            Retry::Transient => self.opts.retry.attempts,
            Retry::Never => 1,
        };
        loop {
            let auth = self.authorization(scope, &ep)?;
            let resp = match make(
                agent,
                &ep.base,
                AuthHeader(auth.as_deref().map(String::as_str)),
            ) {
                Ok(r) => r,
                Err(e) if retry::is_transient(&e) && retry + 1 < attempts => {
                    retry += 1;
                    self.sleep_before_retry(what, retry, None, &e.to_string());
                    continue;
                }
                Err(e) => return Err(self.unreachable(format!("{what}: {e}"))),
            };
            let status = resp.status().as_u16();
            if status == 401 {
                let had_auth = auth.is_some();
                let challenge = self.learn_challenge(&resp);
                let detail = error_detail(resp);
                let can_answer = match &challenge {
                    Some(Challenge::Bearer { .. }) => true,
                    Some(Challenge::Basic) => !had_auth && self.credentials()?.is_some(),
                    None => false,
                };
                if answered || !can_answer {
                    return Err(ImageError::Unauthorized {
                        registry: self.registry.clone(),
                        what: what.to_string(),
                        reason: if detail.is_empty() {
                            "HTTP 401".to_string()
                        } else {
                            detail
                        },
                    });
                }
                // A refused token (expired, or not enough access): fetch a fresh one once.
                self.auth.drop_token(scope);
                answered = true;
                continue;
            }
            if retry::is_transient_status(status) && retry + 1 < attempts {
                retry += 1;
                let after = header(&resp, "retry-after").and_then(retry::parse_retry_after);
                self.sleep_before_retry(what, retry, after, &format!("HTTP {status}"));
                continue;
            }
            return Ok(resp);
        }
    }

    /// Resolve an upload `Location` (absolute, or a path on the registry).
    pub(crate) fn absolute(&self, location: &str) -> Result<String> {
        if location.starts_with("http://") || location.starts_with("https://") {
            return Ok(location.to_string());
        }
        let ep = self.endpoint()?;
        if location.starts_with('/') {
            Ok(format!("{}{location}", ep.base))
        } else {
            Ok(format!("{}/{location}", ep.base))
        }
    }

    /// Check that the registry answers and, with credentials, that it accepts them (what
    /// `rrun login` verifies before writing anything).
    pub fn check_login(&self) -> Result<()> {
        let ep = self.endpoint()?;
        let url = format!("{}/v2/", ep.base);
        let first = self
            .agent_for(&ep)
            .get(&url)
            .call()
            .map_err(|e| self.unreachable(e))?;
        let status = first.status().as_u16();
        if status == 200 {
            return Ok(());
        }
        if status != 401 {
            return Err(self.status_error("GET /v2/", first));
        }
        let challenge = self.learn_challenge(&first);
        let creds = self.credentials()?;
        let login_failed = |reason: &str| ImageError::LoginFailed {
            registry: self.registry.clone(),
            reason: reason.to_string(),
        };
        let Some(creds) = creds else {
            return Err(login_failed(
                "the registry wants credentials: give -u USER and a password",
            ));
        };
        match challenge {
            Some(Challenge::Basic) => {
                let resp = self
                    .agent_for(&ep)
                    .get(&url)
                    .header("Authorization", creds.basic_header().as_str())
                    .call()
                    .map_err(|e| self.unreachable(e))?;
                match resp.status().as_u16() {
                    200 => Ok(()),
                    401 | 403 => Err(login_failed("user name or password refused")),
                    _ => Err(self.status_error("GET /v2/", resp)),
                }
            }
            Some(Challenge::Bearer { realm, service, .. }) => {
                match self.fetch_token(
                    &ep,
                    &realm,
                    service.as_deref(),
                    &Scope::none(),
                    Some(&creds),
                ) {
                    Ok(_) => Ok(()),
                    Err(ImageError::Unauthorized { .. }) => Err(login_failed(
                        "user name or password refused by the token server",
                    )),
                    Err(e) => Err(e),
                }
            }
            None => {
                Err(self.protocol("HTTP 401 without a WWW-Authenticate challenge rrun understands"))
            }
        }
    }

    /// GET a manifest or index by tag or digest and verify it: its digest is the pinned one
    /// (a digest reference, or `expected`), or the `Docker-Content-Digest` the registry sent;
    /// its media type is one rrun reads (Docker schema1 is refused) and its size within limits.
    pub fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
        expected: Option<&Descriptor>,
    ) -> Result<RemoteManifest> {
        let what = format!("manifest {repository}:{reference}");
        if let Some(d) = expected {
            media_type::manifest_kind(&d.media_type)?;
            if d.size > MAX_MANIFEST_SIZE {
                return Err(ImageError::TooLarge {
                    what,
                    size: d.size,
                    limit: MAX_MANIFEST_SIZE,
                });
            }
        }
        let resp = self.manifest_call(false, repository, reference, &what)?;
        if resp.status().as_u16() != 200 {
            return Err(self.status_error(&what, resp));
        }
        let content_type = header(&resp, "content-type").map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        let header_digest = header(&resp, "docker-content-digest").map(str::to_string);
        if let Some(len) = header(&resp, "content-length").and_then(|l| l.parse::<u64>().ok()) {
            if len > MAX_MANIFEST_SIZE {
                return Err(ImageError::TooLarge {
                    what,
                    size: len,
                    limit: MAX_MANIFEST_SIZE,
                });
            }
        }
        let mut bytes = Vec::new();
        resp.into_body()
            .into_reader()
            .take(MAX_MANIFEST_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.unreachable(format!("{what}: {e}")))?;
        if bytes.len() as u64 > MAX_MANIFEST_SIZE {
            return Err(ImageError::TooLarge {
                what,
                size: bytes.len() as u64,
                limit: MAX_MANIFEST_SIZE,
            });
        }
        let digest = Digest::of_bytes(&bytes);
        let pinned = match (expected, reference.starts_with("sha256:")) {
            (Some(d), _) => Some(d.digest.clone()),
            (None, true) => Some(Digest::parse(reference)?),
            (None, false) => None,
        };
        if let Some(want) = pinned {
            if want != digest {
                return Err(ImageError::DigestMismatch {
                    what: format!("{what} from {}", self.registry),
                    expected: want.to_string(),
                    actual: digest.to_string(),
                });
            }
        } else if let Some(h) = header_digest {
            let claimed = Digest::parse(h.trim()).map_err(|e| {
                self.protocol(format!(
                    "its Docker-Content-Digest header is not a sha256 digest: {e}"
                ))
            })?;
            if claimed != digest {
                return Err(ImageError::DigestMismatch {
                    what: format!("{what} (Docker-Content-Digest of {})", self.registry),
                    expected: claimed.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        if let Some(d) = expected {
            if d.size != bytes.len() as u64 {
                return Err(ImageError::SizeMismatch {
                    what,
                    expected: d.size,
                    actual: bytes.len() as u64,
                });
            }
            return Ok(RemoteManifest {
                bytes,
                desc: d.clone(),
            });
        }
        let media_type = manifest_media_type(content_type.as_deref(), &bytes, &what)?;
        let size = bytes.len() as u64;
        Ok(RemoteManifest {
            bytes,
            desc: Descriptor::new(&media_type, digest, size),
        })
    }

    /// GET or HEAD a manifest, accepting the types rrun reads.
    fn manifest_call(
        &self,
        head: bool,
        repository: &str,
        reference: &str,
        what: &str,
    ) -> Result<Response<Body>> {
        self.send(
            what,
            &Scope::pull(repository),
            Retry::Transient,
            |agent, base, auth| {
                let url = format!("{base}/v2/{repository}/manifests/{reference}");
                let req = if head {
                    agent.head(url)
                } else {
                    agent.get(url)
                };
                auth.on(req.header("Accept", MANIFEST_ACCEPT)).call()
            },
        )
    }

    /// HEAD a manifest: its descriptor if the registry has it, `None` on 404.
    pub fn head_manifest(&self, repository: &str, reference: &str) -> Result<Option<Descriptor>> {
        let what = format!("manifest {repository}:{reference}");
        let resp = self.manifest_call(true, repository, reference, &what)?;
        match resp.status().as_u16() {
            200 => {
                let digest = header(&resp, "docker-content-digest")
                    .ok_or_else(|| {
                        self.protocol("HEAD of a manifest without Docker-Content-Digest")
                    })
                    .and_then(|d| Digest::parse(d.trim()))?;
                let size = header(&resp, "content-length")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0);
                let media_type = header(&resp, "content-type")
                    .map(|t| t.split(';').next().unwrap_or("").trim().to_string())
                    .unwrap_or_default();
                Ok(Some(Descriptor::new(&media_type, digest, size)))
            }
            404 => Ok(None),
            _ => Err(self.status_error(&what, resp)),
        }
    }

    /// PUT a manifest or index under a tag or its digest; returns the digest the registry
    /// recorded (checked against the bytes sent).
    pub fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest> {
        let what = format!("manifest {repository}:{reference}");
        let digest = Digest::of_bytes(bytes);
        let resp = self.send(
            &what,
            &Scope::push(repository),
            Retry::Transient,
            |agent, base, auth| {
                let url = format!("{base}/v2/{repository}/manifests/{reference}");
                auth.on(agent.put(url).header("Content-Type", media_type))
                    .send(bytes)
            },
        )?;
        if resp.status().as_u16() != 201 {
            return Err(self.status_error(&format!("PUT {what}"), resp));
        }
        if let Some(h) = header(&resp, "docker-content-digest") {
            if Digest::parse(h.trim()).ok().as_ref() != Some(&digest) {
                return Err(ImageError::DigestMismatch {
                    what: format!("{what} as recorded by {}", self.registry),
                    expected: digest.to_string(),
                    actual: h.to_string(),
                });
            }
        }
        Ok(digest)
    }

    /// GET a blob from `offset` (a `Range` request when not 0). A server that ignores the
    /// range answers from 0; the caller sees that in `start`. `Ok(None)`: the range is not
    /// satisfiable (start again from 0).
    pub fn get_blob(
        &self,
        repository: &str,
        digest: &Digest,
        offset: u64,
    ) -> Result<Option<BlobStream>> {
        let what = format!("blob {digest} of {repository}");
        let resp = self.send(
            &what,
            &Scope::pull(repository),
            Retry::Transient,
            |agent, base, auth| {
                let mut req = agent.get(format!("{base}/v2/{repository}/blobs/{digest}"));
                if offset > 0 {
                    req = req.header("Range", format!("bytes={offset}-"));
                }
                req = auth.on(req);
                req.call()
            },
        )?;
        let length = header(&resp, "content-length").and_then(|l| l.parse::<u64>().ok());
        match resp.status().as_u16() {
            200 => Ok(Some(BlobStream {
                reader: resp.into_body().into_reader(),
                start: 0,
                length,
            })),
            206 => {
                let range = header(&resp, "content-range")
                    .unwrap_or_default()
                    .to_string();
                let start = range
                    .strip_prefix("bytes ")
                    .and_then(|r| r.split('-').next())
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .ok_or_else(|| {
                        self.protocol(format!("206 answer with Content-Range {range:?}"))
                    })?;
                if start != offset {
                    return Err(self.protocol(format!(
                        "asked for {what} from byte {offset}, got a range from {start}"
                    )));
                }
                Ok(Some(BlobStream {
                    reader: resp.into_body().into_reader(),
                    start,
                    length,
                }))
            }
            416 => Ok(None),
            _ => Err(self.status_error(&what, resp)),
        }
    }

    /// GET a small blob (an image config) into memory, verifying size and digest.
    pub fn get_blob_bytes(
        &self,
        repository: &str,
        desc: &Descriptor,
        limit: u64,
        what: &str,
    ) -> Result<Vec<u8>> {
        if desc.size > limit {
            return Err(ImageError::TooLarge {
                what: what.to_string(),
                size: desc.size,
                limit,
            });
        }
        let stream = self.get_blob(repository, &desc.digest, 0)?.ok_or_else(|| {
            self.protocol(format!("{what}: range not satisfiable without a range"))
        })?;
        let mut reader = crate::image::digest::VerifyingReader::new(
            stream.reader,
            desc.digest.clone(),
            desc.size,
            format!("{what} from {}", self.registry),
        );
        let mut data = Vec::new();
        let read = reader.read_to_end(&mut data);
        if let Some(e) = reader.failure() {
            return Err(e);
        }
        read.map_err(|e| self.unreachable(format!("{what}: {e}")))?;
        reader.finish()?;
        Ok(data)
    }
}

/// The scope as words for messages.
fn scope_text(scope: &Scope) -> String {
    if scope.items().is_empty() {
        "the registry".into()
    } else {
        scope.items().join(" and ")
    }
}

/// The media type of a fetched manifest: the `Content-Type` when it is a manifest type, else
/// the document's own `mediaType`, else its shape. Schema1 and unknown types are refused.
fn manifest_media_type(content_type: Option<&str>, bytes: &[u8], what: &str) -> Result<String> {
    let known = [
        OCI_MANIFEST,
        OCI_INDEX,
        DOCKER_MANIFEST,
        DOCKER_MANIFEST_LIST,
    ];
    if let Some(ct) = content_type {
        if known.contains(&ct) || ct.starts_with("application/vnd.docker.distribution.manifest.v1")
        {
            media_type::manifest_kind(ct)?;
            return Ok(ct.to_string());
        }
    }
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ImageError::malformed(what, e.to_string()))?;
    if value
        .get("schemaVersion")
        .and_then(serde_json::Value::as_u64)
        == Some(1)
    {
        media_type::manifest_kind("application/vnd.docker.distribution.manifest.v1+prettyjws")?;
    }
    if let Some(own) = value.get("mediaType").and_then(serde_json::Value::as_str) {
        media_type::manifest_kind(own)?;
        return Ok(own.to_string());
    }
    match content_type {
        Some(ct) if ct != "application/json" && !ct.is_empty() => {
            media_type::manifest_kind(ct)?;
            Ok(ct.to_string())
        }
        _ if value.get("manifests").is_some() => Ok(OCI_INDEX.to_string()),
        _ if value.get("config").is_some() => Ok(OCI_MANIFEST.to_string()),
        _ => Err(ImageError::malformed(
            what,
            "neither a manifest nor an index",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_from_header_document_or_shape() {
        let m = br#"{"schemaVersion":2,"config":{}}"#;
        assert_eq!(
            manifest_media_type(Some(OCI_MANIFEST), m, "m").unwrap(),
            OCI_MANIFEST
        );
        assert_eq!(
            manifest_media_type(Some("application/json"), m, "m").unwrap(),
            OCI_MANIFEST
        );
        let i = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}"#;
        assert_eq!(
            manifest_media_type(None, i, "m").unwrap(),
            DOCKER_MANIFEST_LIST
        );
        let v1 = br#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#;
        let err = manifest_media_type(Some("application/json"), v1, "m").unwrap_err();
        assert!(err.to_string().contains("schema1"), "{err}");
        let err = manifest_media_type(
            Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
            v1,
            "m",
        )
        .unwrap_err();
        assert!(err.to_string().contains("schema1"), "{err}");
        let err = manifest_media_type(Some("text/html"), b"<html>", "m").unwrap_err();
        assert!(matches!(err, ImageError::Malformed { .. }), "{err}");
        let err = manifest_media_type(Some("application/x-weird"), br#"{"schemaVersion":2}"#, "m")
            .unwrap_err();
        assert!(
            matches!(err, ImageError::UnsupportedManifest { .. }),
            "{err}"
        );
    }

    #[test]
    fn login_target_must_be_a_registry() {
        assert!(Client::for_registry("127.0.0.1:5000", ClientOptions::default()).is_ok());
        assert!(Client::for_registry("docker.io", ClientOptions::default()).is_ok());
        assert!(Client::for_registry("127.0.0.1:5000/app", ClientOptions::default()).is_err());
        assert!(Client::for_registry("bad host", ClientOptions::default()).is_err());
    }
}
