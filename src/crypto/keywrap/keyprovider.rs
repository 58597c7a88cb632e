//! Keyprovider key wrapping (ocicrypt `keywrap/keyprovider`): the providers named in
//! `OCICRYPT_KEYPROVIDER_CONFIG`, the JSON protocol they speak, and running `cmd` providers
//! (`grpc` providers are called in `keyprovider/grpc.rs`).
//!
//! A layer wrapped by provider `NAME` carries `org.opencontainers.image.enc.keys.provider.NAME`;
//! unwrapping asks the provider of that same name, as ocicrypt does. rrun writes byte fields as
//! base64 strings (Go's `[]byte`) and reads base64 strings or JSON integer arrays (what Rust
//! providers built on ocicrypt-rs write).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

use super::KeyWrapper;
use crate::crypto::config::{DecryptConfig, EncryptConfig};
use crate::crypto::error::{CryptoError, Result};
use crate::crypto::options::{decode_b64, encode_b64};

/// The environment variable naming the keyprovider config file (no default, as ocicrypt).
pub const ENV_CONFIG: &str = "OCICRYPT_KEYPROVIDER_CONFIG";
/// The environment variable setting how long a provider may take, in seconds.
pub const ENV_TIMEOUT: &str = "RRUN_KEYPROVIDER_TIMEOUT";
/// The parameter ocicrypt sends for `provider:NAME` without an opaque part.
pub const ENABLED: &str = "Enabled";
/// How long a provider may take when [`ENV_TIMEOUT`] is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The most a provider may write to stdout or stderr.
const MAX_OUTPUT: usize = 4 << 20;
/// Largest config file read.
const MAX_CONFIG: u64 = 1 << 20;

/// How rrun reaches one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// A program run once per request: request JSON on stdin, response JSON on stdout.
    Cmd { path: PathBuf, args: Vec<String> },
    /// A `KeyProviderService` gRPC server at `host:port` or `unix:///path`, plain HTTP/2 (no
    /// `grpc-tls`).
    Grpc { address: String },
}

/// One configured keyprovider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    name: String,
    transport: Transport,
}

impl Provider {
    /// A provider named `name` reached through `transport`.
    pub fn new(name: impl Into<String>, transport: Transport) -> Self {
        Self {
            name: name.into(),
            transport,
        }
    }

    /// The provider name, as in `provider:NAME` and the annotation suffix.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How it is reached.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The annotation holding keys this provider wrapped.
    pub fn annotation_id(&self) -> String {
        format!("{}provider.{}", crate::crypto::ANN_KEYS_PREFIX, self.name)
    }

    /// Send one request and parse the response, within [`timeout`].
    fn call(&self, request: &[u8], op: &str) -> Result<Response> {
        let raw = match &self.transport {
            Transport::Cmd { path, args } => run_cmd(self, path, args, request, timeout())?,
            Transport::Grpc { address } => {
                let rpc = if op == "keywrap" {
                    grpc::Rpc::WrapKey
                } else {
                    grpc::Rpc::UnWrapKey
                };
                grpc::call(address, rpc, request, timeout()).map_err(|e| self.error(e))?
            }
        };
        Response::parse(&raw).map_err(|e| self.error(format!("{op}: {e}")))
    }

    /// An error about this provider (`provider:NAME: reason`).
    fn error(&self, reason: String) -> CryptoError {
        provider_error(&self.name, reason)
    }
}

fn provider_error(name: &str, reason: String) -> CryptoError {
    CryptoError::Key {
        path: format!("provider:{name}").into(),
        reason,
    }
}

/// How long a provider may take: [`ENV_TIMEOUT`] seconds, else [`DEFAULT_TIMEOUT`].
pub fn timeout() -> Duration {
    std::env::var(ENV_TIMEOUT)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// The providers of an `OCICRYPT_KEYPROVIDER_CONFIG` file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderConfig {
    source: PathBuf,
    providers: BTreeMap<String, Provider>,
}

impl ProviderConfig {
    /// The config named by `OCICRYPT_KEYPROVIDER_CONFIG`; `None` when it is unset or empty.
    pub fn from_env() -> Result<Option<Self>> {
        match std::env::var_os(ENV_CONFIG) {
            Some(p) if !p.is_empty() => Self::load(Path::new(&p)).map(Some),
            _ => Ok(None),
        }
    }

    /// Read and parse a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |reason: String| CryptoError::Key {
            path: path.into(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|e| {
            bad(format!(
                "cannot read the keyprovider config ({ENV_CONFIG}): {}",
                e.to_string().to_lowercase()
            ))
        })?;
        let mut data = Vec::new();
        file.take(MAX_CONFIG).read_to_end(&mut data)?;
        Self::parse(&data, path)
    }

    /// Parse config JSON: `{"key-providers": {NAME: {"cmd": {"path", "args"}} | {"grpc": ADDR}}}`.
    pub fn parse(data: &[u8], source: &Path) -> Result<Self> {
        let bad = |reason: String| CryptoError::Key {
            path: source.into(),
            reason: format!("invalid keyprovider config: {reason}"),
        };
        let root: Value =
            serde_json::from_slice(data).map_err(|e| bad(format!("not JSON: {e}")))?;
        let Some(list) = root.get("key-providers") else {
            return Err(bad(
                "no \"key-providers\" object; write {\"key-providers\": {\"NAME\": {\"cmd\": \
                 {\"path\": \"/usr/bin/x\", \"args\": []}}}}"
                    .into(),
            ));
        };
        let list = list.as_object().ok_or_else(|| {
            bad("\"key-providers\" must be an object of providers by name".into())
        })?;
        let mut providers = BTreeMap::new();
        for (name, attrs) in list {
            let transport =
                parse_transport(name, attrs).map_err(|r| bad(format!("{name}: {r}")))?;
            providers.insert(name.clone(), Provider::new(name, transport));
        }
        Ok(Self {
            source: source.into(),
            providers,
        })
    }

    /// The provider called `name`.
    pub fn get(&self, name: &str) -> Option<&Provider> {
        self.providers.get(name)
    }

    /// Every provider, by name.
    pub fn providers(&self) -> impl Iterator<Item = &Provider> {
        self.providers.values()
    }

    /// The file it was read from.
    pub fn source(&self) -> &Path {
        &self.source
    }
}

fn parse_transport(name: &str, attrs: &Value) -> std::result::Result<Transport, String> {
    if name.is_empty() || name.contains([',', ':']) || name.chars().any(char::is_whitespace) {
        return Err("a provider name must be non-empty, without ',', ':' or spaces".into());
    }
    let attrs = attrs
        .as_object()
        .ok_or("expected an object with \"cmd\" or \"grpc\"")?;
    if let Some(cmd) = attrs.get("cmd").filter(|v| !v.is_null()) {
        let path = cmd
            .get("path")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
            .ok_or("\"cmd\" needs a \"path\" string")?;
        let args = match cmd.get("args") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or("\"cmd.args\" must be a list of strings")?,
            Some(_) => return Err("\"cmd.args\" must be a list of strings".into()),
        };
        return Ok(Transport::Cmd {
            path: path.into(),
            args,
        });
    }
    if let Some(addr) = attrs.get("grpc").and_then(Value::as_str) {
        if attrs.get("grpc-tls").is_some_and(|v| !v.is_null()) {
            return Err(
                "\"grpc-tls\" is not supported by this rrun build; use plain grpc on a \
                        trusted socket or a cmd provider"
                    .into(),
            );
        }
        return Ok(Transport::Grpc {
            address: addr.into(),
        });
    }
    if attrs.contains_key("path") {
        return Err(
            "\"path\" must sit inside \"cmd\": {\"cmd\": {\"path\": ..., \"args\": []}}".into(),
        );
    }
    for other in ["ttrpc", "native"] {
        if attrs.contains_key(other) {
            return Err(format!(
                "\"{other}\" providers are not supported (ocicrypt-rs only); use cmd or grpc"
            ));
        }
    }
    Err("expected \"cmd\": {\"path\": ..., \"args\": [...]} or \"grpc\": \"host:port\"".into())
}

/// One `provider:NAME[:OPAQUE]` argument, its provider resolved in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderKey {
    provider: Provider,
    param: Vec<u8>,
}

impl ProviderKey {
    /// Parse `NAME[:OPAQUE]` (what follows `provider:`) against `config`; without an opaque part
    /// the parameter is `Enabled`, as ocicrypt sends it.
    pub fn parse(value: &str, config: Option<&ProviderConfig>) -> Result<Self> {
        let (name, opaque) = match value.split_once(':') {
            Some((n, o)) => (n, o),
            None => (value, ENABLED),
        };
        if name.is_empty() {
            return Err(provider_error(
                "",
                "the provider name is missing: write provider:NAME[:OPAQUE]".into(),
            ));
        }
        let Some(config) = config else {
            return Err(provider_error(
                name,
                format!(
                    "no keyprovider config: set {ENV_CONFIG} to a JSON file that configures \
                     provider {name:?}"
                ),
            ));
        };
        let provider = config.get(name).ok_or_else(|| {
            let known: Vec<&str> = config.providers().map(Provider::name).collect();
            provider_error(
                name,
                format!(
                    "{} configures no provider {name:?} (it has: {}); add it under \
                     \"key-providers\"",
                    config.source().display(),
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ),
            )
        })?;
        Ok(Self {
            provider: provider.clone(),
            param: opaque.as_bytes().to_vec(),
        })
    }

    /// The provider.
    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    /// The parameter sent to the provider (the opaque part, or `Enabled`).
    pub fn param(&self) -> &[u8] {
        &self.param
    }
}

/// `{"Parameters": {NAME: [b64(param), ...]}}` for the given keys, as Go marshals
/// `config.DecryptConfig` / `EncryptConfig.Parameters` (no json tags).
fn parameters<'a>(keys: impl Iterator<Item = &'a ProviderKey>) -> Value {
    let mut map: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for k in keys {
        map.entry(k.provider.name())
            .or_default()
            .push(Value::String(encode_b64(&k.param)));
    }
    let params: Map<String, Value> = map
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::Array(v)))
        .collect();
    json!({ "Parameters": params })
}

/// The keywrap request ocicrypt sends (`KeyProviderKeyWrapProtocolInput`).
pub fn wrap_request(recipients: &[&ProviderKey], opts_data: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut ec = parameters(recipients.iter().copied());
    ec["DecryptConfig"] = json!({ "Parameters": {} });
    let req = json!({
        "op": "keywrap",
        "keywrapparams": { "ec": ec, "optsdata": encode_b64(opts_data) },
        "keyunwrapparams": { "dc": null, "annotation": null },
    });
    Zeroizing::new(serde_json::to_vec(&req).unwrap_or_default())
}

/// The keyunwrap request ocicrypt sends.
pub fn unwrap_request(keys: &[&ProviderKey], annotation: &[u8]) -> Vec<u8> {
    let req = json!({
        "op": "keyunwrap",
        "keywrapparams": { "ec": null, "optsdata": null },
        "keyunwrapparams": {
            "dc": parameters(keys.iter().copied()),
            "annotation": encode_b64(annotation),
        },
    });
    serde_json::to_vec(&req).unwrap_or_default()
}

/// A provider's answer (`KeyProviderKeyWrapProtocolOutput`).
#[derive(Default)]
pub struct Response {
    /// `keywrapresults.annotation`.
    pub annotation: Option<Vec<u8>>,
    /// `keyunwrapresults.optsdata` (the private options JSON).
    pub optsdata: Option<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("annotation", &self.annotation.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

impl Response {
    /// Parse response JSON; byte fields may be base64 strings or arrays of integers 0..=255.
    pub fn parse(data: &[u8]) -> std::result::Result<Self, String> {
        let text = data.trim_ascii();
        if text.is_empty() {
            return Err("the provider wrote nothing: its answer is empty".into());
        }
        let v: Zeroizing<Vec<u8>> = Zeroizing::new(text.to_vec());
        let root: Value = serde_json::from_slice(&v).map_err(|e| {
            format!("the provider's answer is not JSON ({e}); it must print the response JSON only")
        })?;
        let field = |obj: &str, key: &str| -> std::result::Result<Option<Vec<u8>>, String> {
            match root.get(obj).and_then(|o| o.get(key)) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => bytes_field(v)
                    .map(Some)
                    .ok_or_else(|| format!("{obj}.{key} is neither base64 nor an array of bytes")),
            }
        };
        Ok(Self {
            annotation: field("keywrapresults", "annotation")?,
            optsdata: field("keyunwrapresults", "optsdata")?.map(Zeroizing::new),
        })
    }
}

/// A JSON `[]byte`: a base64 string (Go) or an array of integers (Rust `Vec<u8>`).
fn bytes_field(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => decode_b64(s),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_u64().and_then(|n| u8::try_from(n).ok()))
            .collect(),
        _ => None,
    }
}

/// Run a cmd provider: the request on stdin, stdout is the answer; a non-zero exit, a kill or
/// running past `limit` is an error naming the provider, with its stderr.
fn run_cmd(
    provider: &Provider,
    path: &Path,
    args: &[String],
    request: &[u8],
    limit: Duration,
) -> Result<Zeroizing<Vec<u8>>> {
    let mut child = Command::new(path)
        .args(args)
        // Its own process group: a timeout stops the provider and everything it started.
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            provider.error(format!(
                "cannot run {}: {}; fix \"cmd.path\" in {ENV_CONFIG}",
                path.display(),
                e.to_string().to_lowercase()
            ))
        })?;
    let mut stdin = child.stdin.take();
    let input = Zeroizing::new(request.to_vec());
    let writer = thread::spawn(move || {
        if let Some(s) = stdin.as_mut() {
            // A provider that exits without reading all of stdin is judged by its answer.
            let _ = s.write_all(&input);
        }
    });
    let stdout = child.stdout.take().map(reader_thread);
    let stderr = child.stderr.take().map(reader_thread);
    // On a timeout the reader threads are left behind: a stray grandchild may hold the pipes.
    let status = wait_with_limit(&mut child, limit).map_err(|e| provider.error(e))?;
    let _ = writer.join();
    let out = stdout.map(join_reader).unwrap_or_default();
    let err = stderr.map(join_reader).unwrap_or_default();
    if !status.success() {
        let stderr_text = String::from_utf8_lossy(&err);
        let stderr_text = stderr_text.trim();
        let how = match status.code() {
            Some(c) => format!("exited with status {c}"),
            None => "was killed by a signal".into(),
        };
        return Err(provider.error(if stderr_text.is_empty() {
            format!("{} {how}", path.display())
        } else {
            format!(
                "{} {how}: {}",
                path.display(),
                stderr_text.lines().last().unwrap_or_default()
            )
        }));
    }
    if out.len() > MAX_OUTPUT {
        return Err(provider.error(format!(
            "{} wrote more than {} MiB",
            path.display(),
            MAX_OUTPUT >> 20
        )));
    }
    Ok(out)
}

fn reader_thread<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<Zeroizing<Vec<u8>>> {
    thread::spawn(move || {
        let mut buf = Zeroizing::new(Vec::new());
        let _ = (&mut r).take(MAX_OUTPUT as u64 + 1).read_to_end(&mut buf);
        // Drain the rest so the provider never blocks on a full pipe.
        let _ = std::io::copy(&mut r, &mut std::io::sink());
        buf
    })
}

fn join_reader(h: thread::JoinHandle<Zeroizing<Vec<u8>>>) -> Zeroizing<Vec<u8>> {
    h.join().unwrap_or_default()
}

fn wait_with_limit(
    child: &mut Child,
    limit: Duration,
) -> std::result::Result<std::process::ExitStatus, String> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if start.elapsed() >= limit => {
                if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
                    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                }
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "no answer within {:.1} s: the provider was stopped (raise {ENV_TIMEOUT} \
                     if it needs longer)",
                    limit.as_secs_f64()
                ));
            }
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("cannot wait for the provider: {e}")),
        }
    }
}

/// The key wrapper of one configured provider (scheme `provider.NAME`).
#[derive(Debug, Clone)]
pub struct KeyProviderKeyWrapper {
    scheme: String,
    provider: Provider,
}

impl KeyProviderKeyWrapper {
    /// The wrapper for `provider`.
    pub fn new(provider: Provider) -> Self {
        Self {
            scheme: format!("provider.{}", provider.name()),
            provider,
        }
    }

    /// Wrappers for every provider of `OCICRYPT_KEYPROVIDER_CONFIG` (none if it is unset or
    /// unreadable: `provider:` arguments report those problems when they are parsed).
    pub fn from_env() -> Vec<Self> {
        ProviderConfig::from_env()
            .ok()
            .flatten()
            .map(|c| c.providers().cloned().map(Self::new).collect())
            .unwrap_or_default()
    }
}

impl KeyWrapper for KeyProviderKeyWrapper {
    fn scheme(&self) -> &str {
        &self.scheme
    }

    fn wrap_keys(&self, ec: &EncryptConfig, opts_data: &[u8]) -> Result<Option<Vec<u8>>> {
        let mine: Vec<&ProviderKey> = ec
            .provider_recipients()
            .into_iter()
            .filter(|r| r.provider().name() == self.provider.name())
            .collect();
        let Some(first) = mine.first() else {
            return Ok(None);
        };
        // All recipients go in one request, as ocicrypt sends every parameter at once.
        let provider = first.provider();
        let all = ec.provider_recipients();
        let response = provider.call(&wrap_request(&all, opts_data), "keywrap")?;
        match response.annotation {
            Some(a) if !a.is_empty() => Ok(Some(a)),
            _ => Err(provider.error(
                "keywrap answer has no keywrapresults.annotation: the provider wrapped nothing"
                    .into(),
            )),
        }
    }

    fn unwrap_key(&self, dc: &DecryptConfig, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let mine: Vec<&ProviderKey> = dc
            .provider_keys()
            .iter()
            .filter(|k| k.provider().name() == self.provider.name())
            .collect();
        let provider = mine.first().map_or(&self.provider, |k| k.provider());
        let response = provider.call(&unwrap_request(&mine, blob), "keyunwrap")?;
        match response.optsdata {
            Some(o) if !o.is_empty() => Ok(o),
            _ => Err(provider.error(
                "keyunwrap answer has no keyunwrapresults.optsdata: the provider could not \
                 unwrap the layer key"
                    .into(),
            )),
        }
    }

    fn no_possible_keys(&self, dc: &DecryptConfig) -> bool {
        !dc.provider_keys()
            .iter()
            .any(|k| k.provider().name() == self.provider.name())
    }

    fn recipients(&self, _blob: &[u8]) -> Vec<String> {
        vec![format!("[{}]", self.scheme)]
    }
}

mod grpc;

#[cfg(test)]
mod tests;
