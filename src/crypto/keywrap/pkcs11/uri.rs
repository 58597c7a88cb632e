//! PKCS#11 key files as ocicrypt reads them: the YAML (`pkcs11: {uri}` and `module: {env}`),
//! the RFC 7512 URI inside it, and the module policy of `OCICRYPT_CONFIG`
//! (`pkcs11: {module-directories, allowed-module-paths}`) that decides which module may load.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::crypto::error::{CryptoError, Result};

/// The environment variable naming the ocicrypt config (or `internal`).
pub const ENV_OCICRYPT_CONFIG: &str = "OCICRYPT_CONFIG";

/// A parsed `pkcs11:` URI. `Debug` hides the PIN.
#[derive(Clone, PartialEq, Eq)]
pub struct Pkcs11Uri {
    path: BTreeMap<String, String>,
    query: BTreeMap<String, Zeroizing<String>>,
}

impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let query: Vec<&str> = self.query.keys().map(String::as_str).collect();
        f.debug_struct("Pkcs11Uri")
            .field("path", &self.path)
            .field("query", &query)
            .finish()
    }
}

fn percent_decode(s: &str) -> std::result::Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-escape in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} does not decode to UTF-8"))
}

impl Pkcs11Uri {
    /// Parse `pkcs11:attr=v;attr=v?query=v&query=v`.
    pub fn parse(uri: &str) -> std::result::Result<Self, String> {
        let rest = uri
            .trim()
            .strip_prefix("pkcs11:")
            .ok_or("the uri must start with pkcs11:")?;
        let (path_part, query_part) = rest.split_once('?').unwrap_or((rest, ""));
        let mut path = BTreeMap::new();
        for attr in path_part.split(';').filter(|a| !a.is_empty()) {
            let (k, v) = attr
                .split_once('=')
                .ok_or_else(|| format!("path attribute {attr:?} has no '='"))?;
            path.insert(k.to_string(), percent_decode(v)?);
        }
        let mut query = BTreeMap::new();
        for attr in query_part.split('&').filter(|a| !a.is_empty()) {
            let (k, v) = attr
                .split_once('=')
                .ok_or_else(|| format!("query attribute {attr:?} has no '='"))?;
            query.insert(k.to_string(), Zeroizing::new(percent_decode(v)?));
        }
        Ok(Self { path, query })
    }

    /// A path attribute (`token`, `object`, `id`, `slot-id`).
    pub fn path_attr(&self, name: &str) -> Option<&str> {
        self.path.get(name).map(String::as_str)
    }

    /// A query attribute (`module-name`, `module-path`, `pin-value`, `pin-source`).
    pub fn query_attr(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(|v| v.as_str())
    }

    /// The PIN: `pin-value`, else the contents of the `pin-source` file (trailing newline
    /// removed), else none.
    pub fn pin(&self) -> std::result::Result<Option<Zeroizing<String>>, String> {
        if let Some(v) = self.query.get("pin-value") {
            return Ok(Some(v.clone()));
        }
        let Some(src) = self.query.get("pin-source") else {
            return Ok(None);
        };
        let file = src.strip_prefix("file:").unwrap_or(src);
        let text = Zeroizing::new(std::fs::read_to_string(file).map_err(|e| {
            format!(
                "cannot read pin-source {file}: {}",
                e.to_string().to_lowercase()
            )
        })?);
        Ok(Some(Zeroizing::new(
            text.trim_end_matches(['\n', '\r']).to_string(),
        )))
    }

    /// The URI without the PIN, for messages.
    pub fn describe(&self) -> String {
        let path: Vec<String> = self.path.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let query: Vec<String> = self
            .query
            .iter()
            .filter(|(k, _)| !k.starts_with("pin-"))
            .map(|(k, v)| format!("{k}={}", v.as_str()))
            .collect();
        if query.is_empty() {
            format!("pkcs11:{}", path.join(";"))
        } else {
            format!("pkcs11:{}?{}", path.join(";"), query.join("&"))
        }
    }

    /// The module this URI selects under `policy` (go-pkcs11uri `GetModule`): `module-path`
    /// (a file, or a directory to search), else `module-name` searched in the policy's module
    /// directories; a file matches when its lower-case name contains the module name followed by
    /// the end or a `.`. The module must be allowed by the policy.
    pub fn module(&self, policy: &ModulePolicy) -> std::result::Result<PathBuf, String> {
        let mut dirs: Vec<PathBuf> = policy.module_directories.clone();
        if let Some(p) = self.query_attr("module-path") {
            let meta =
                std::fs::metadata(p).map_err(|_| format!("module-path {p} is not accessible"))?;
            if meta.is_file() {
                return if policy.allows(Path::new(p)) {
                    Ok(p.into())
                } else {
                    Err(format!(
                        "module-path {p} is not allowed by policy: add it to pkcs11 \
                         allowed-module-paths in {}",
                        policy.source
                    ))
                };
            }
            if !meta.is_dir() {
                return Err(format!("module-path {p} is neither a file nor a directory"));
            }
            dirs = vec![p.into()];
        }
        let name = self
            .query_attr("module-name")
            .ok_or("the uri has neither module-path nor module-name: add ?module-name=softhsm2")?
            .to_lowercase();
        for dir in &dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
            names.sort();
            for file in names {
                let lower = file.to_string_lossy().to_lowercase();
                let Some(at) = lower.find(&name) else {
                    continue;
                };
                let after = lower.as_bytes().get(at + name.len());
                if after.is_none() || after == Some(&b'.') {
                    let path = dir.join(&file);
                    return if policy.allows(&path) {
                        Ok(path)
                    } else {
                        Err(format!(
                            "module {} is not allowed by policy: add it to pkcs11 \
                             allowed-module-paths in {}",
                            path.display(),
                            policy.source
                        ))
                    };
                }
            }
        }
        Err(format!(
            "no pkcs11 module named {name:?} in the module directories {} ({})",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            policy.source
        ))
    }
}

/// A PKCS#11 key file: the URI of a key on a token and the environment its module needs.
#[derive(Clone, PartialEq, Eq)]
pub struct Pkcs11KeyFile {
    uri: Pkcs11Uri,
    env: BTreeMap<String, String>,
    source: PathBuf,
}

impl fmt::Debug for Pkcs11KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Pkcs11KeyFile({}, {})",
            self.source.display(),
            self.uri.describe()
        )
    }
}

#[derive(serde::Deserialize)]
struct RawKeyFile {
    pkcs11: Option<RawUri>,
    #[serde(default)]
    module: Option<RawModule>,
}

#[derive(serde::Deserialize)]
struct RawUri {
    uri: Option<String>,
}

#[derive(serde::Deserialize)]
struct RawModule {
    #[serde(default)]
    env: Option<BTreeMap<String, String>>,
}

impl Pkcs11KeyFile {
    /// True when the bytes look like a pkcs11 YAML key file (a `pkcs11:` map with a `uri`).
    pub fn looks_like(data: &[u8]) -> bool {
        std::str::from_utf8(data).is_ok_and(|s| s.contains("pkcs11") && s.contains("uri"))
            && serde_norway::from_slice::<RawKeyFile>(data)
                .ok()
                .and_then(|r| r.pkcs11)
                .and_then(|p| p.uri)
                .is_some()
    }

    /// Parse the YAML of a key file.
    pub fn parse(data: &[u8], source: &Path) -> Result<Self> {
        let bad = |reason: String| CryptoError::Key {
            path: source.into(),
            reason: format!("invalid pkcs11 key file: {reason}"),
        };
        let raw: RawKeyFile = serde_norway::from_slice(data).map_err(|e| bad(e.to_string()))?;
        let uri = raw
            .pkcs11
            .and_then(|p| p.uri)
            .ok_or_else(|| bad("no pkcs11.uri; write pkcs11: {uri: \"pkcs11:token=..;object=..?module-name=..&pin-value=..\"}".into()))?;
        let uri = Pkcs11Uri::parse(&uri).map_err(bad)?;
        if uri.path_attr("object").is_none() && uri.path_attr("id").is_none() {
            return Err(bad("the uri names no key: add object=LABEL or id=ID".into()));
        }
        Ok(Self {
            uri,
            env: raw.module.and_then(|m| m.env).unwrap_or_default(),
            source: source.into(),
        })
    }

    /// The key's URI.
    pub fn uri(&self) -> &Pkcs11Uri {
        &self.uri
    }

    /// `module.env`: variables set while the module is in use (for example `SOFTHSM2_CONF`).
    pub fn env(&self) -> &BTreeMap<String, String> {
        &self.env
    }

    /// The file it was read from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Check that a PIN is given and that the module is found and allowed by the policy of
    /// [`ModulePolicy::from_env`], without loading it.
    pub fn check_module(&self) -> Result<()> {
        let policy = ModulePolicy::from_env()?;
        self.uri.module(&policy).map_err(|e| self.error(e))?;
        if self.uri.pin().map_err(|e| self.error(e))?.is_none() {
            return Err(self.error(
                "the uri has no PIN for the private key: add pin-value=PIN or pin-source=FILE",
            ));
        }
        Ok(())
    }

    /// An error about this key (`FILE: reason`).
    pub fn error(&self, reason: impl Into<String>) -> CryptoError {
        CryptoError::Key {
            path: self.source.clone(),
            reason: reason.into(),
        }
    }
}

/// Which PKCS#11 modules may be loaded (`pkcs11config.GetUserPkcs11Config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModulePolicy {
    module_directories: Vec<PathBuf>,
    allowed_module_paths: Vec<String>,
    source: String,
}

#[derive(serde::Deserialize, Default)]
struct RawOcicryptConfig {
    #[serde(default)]
    pkcs11: Option<RawPolicy>,
}

#[derive(serde::Deserialize, Default)]
struct RawPolicy {
    #[serde(default, rename = "module-directories")]
    module_directories: Option<Vec<String>>,
    #[serde(default, rename = "allowed-module-paths")]
    allowed_module_paths: Option<Vec<String>>,
}

impl ModulePolicy {
    /// The directories ocicrypt's `internal` policy searches and allows.
    pub fn internal() -> Self {
        let mut dirs: Vec<String> = [
            "/usr/lib64/pkcs11/",
            "/usr/lib/pkcs11/",
            "/usr/local/lib/pkcs11/",
            "/usr/lib/softhsm/",
        ]
        .map(String::from)
        .to_vec();
        dirs.push(format!("/usr/lib/{}-linux-gnu/", std::env::consts::ARCH));
        Self {
            module_directories: dirs.iter().map(PathBuf::from).collect(),
            allowed_module_paths: dirs,
            source: format!("{ENV_OCICRYPT_CONFIG}=internal"),
        }
    }

    /// Parse an ocicrypt config file's `pkcs11` section.
    pub fn parse(data: &[u8], source: &Path) -> Result<Self> {
        let raw: RawOcicryptConfig = if data.trim_ascii().is_empty() {
            RawOcicryptConfig::default()
        } else {
            serde_norway::from_slice(data).map_err(|e| CryptoError::Key {
                path: source.into(),
                reason: format!("invalid ocicrypt config: {e}"),
            })?
        };
        let p = raw.pkcs11.unwrap_or_default();
        Ok(Self {
            module_directories: p
                .module_directories
                .unwrap_or_default()
                .into_iter()
                .map(PathBuf::from)
                .collect(),
            allowed_module_paths: p.allowed_module_paths.unwrap_or_default(),
            source: source.display().to_string(),
        })
    }

    /// The policy of `OCICRYPT_CONFIG` (`internal` or a file), else of
    /// `$XDG_CONFIG_HOME/ocicrypt.conf`, `~/.config/ocicrypt.conf` or `/etc/ocicrypt.conf`,
    /// the first that exists. With none, no module may load.
    pub fn from_env() -> Result<Self> {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(v) = std::env::var_os(ENV_OCICRYPT_CONFIG).filter(|v| !v.is_empty()) {
            if v == "internal" {
                return Ok(Self::internal());
            }
            candidates.push(v.into());
        }
        if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
            candidates.push(Path::new(&x).join("ocicrypt.conf"));
        }
        if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            candidates.push(Path::new(&h).join(".config/ocicrypt.conf"));
        }
        candidates.push("/etc/ocicrypt.conf".into());
        for c in &candidates {
            if c.exists() {
                let data = std::fs::read(c).map_err(|e| CryptoError::Key {
                    path: c.clone(),
                    reason: format!(
                        "cannot read the ocicrypt config: {}",
                        e.to_string().to_lowercase()
                    ),
                })?;
                return Self::parse(&data, c);
            }
        }
        Err(CryptoError::Key {
            path: ENV_OCICRYPT_CONFIG.into(),
            reason: "no pkcs11 module policy: set OCICRYPT_CONFIG to a YAML file with pkcs11: \
                     {module-directories: [...], allowed-module-paths: [...]} (or to \
                     'internal')"
                .into(),
        })
    }

    /// True when `path` is allowed: listed exactly, or directly inside a listed directory
    /// (ending in `/`). An empty list allows nothing.
    pub fn allows(&self, path: &Path) -> bool {
        let p = path.to_string_lossy();
        self.allowed_module_paths.iter().any(|a| {
            *a == *p
                || (a.ends_with('/')
                    && p.strip_prefix(a.as_str())
                        .is_some_and(|rest| !rest.is_empty() && !rest.contains('/')))
        })
    }
}
