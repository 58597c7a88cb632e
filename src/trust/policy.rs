//! The content-trust policy file (`/etc/rrun/policy.json`, `--policy`): which registries and
//! repositories must be resolved through signed Notary metadata, with which trust server and
//! pinned root, and which are rejected outright; the most specific scope wins.
//!
//! ```json
//! {
//!   "default": "insecureAcceptAnything",
//!   "transports": {
//!     "docker": {
//!       "127.0.0.1:5000": "signed",
//!       "127.0.0.1:5000/app": {"type": "notarySigned", "trustServer": "https://127.0.0.1:4443",
//!                              "trustRoot": "/etc/rrun/app-root.json", "tlsCa": "ca.pem"},
//!       "docker.io/library": {"type": "reject"}
//!     }
//!   }
//! }
//! ```
//!
//! A requirement is a type name or an object `{"type": ..}` (a one-element list of such objects,
//! the containers-policy.json shape, is accepted too). Types: `insecureAcceptAnything`, `reject`,
//! `signed` (Notary with the default trust server and the root pinned on first use) and
//! `notarySigned` (optional `trustServer`, `trustRoot`, `tlsCa`; relative paths are relative to
//! the policy file's directory). Scopes are fully qualified: `host[:port]`,
//! `host[:port]/namespace...` or a whole repository; no tags or digests. Anything unknown (a
//! field, a type, a transport) makes the whole file invalid, so that a typo never silently drops
//! a requirement.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// Where rrun looks for the policy when `--policy` is not given.
pub const DEFAULT_POLICY_PATH: &str = "/etc/rrun/policy.json";

/// The largest policy file read.
const MAX_POLICY_BYTES: u64 = 1 << 20;

/// A policy file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file cannot be read.
    #[error("cannot read policy {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid policy.
    #[error("invalid policy {}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

/// What the policy requires of images from one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// Pull without content trust (unless asked for with `--verify` / `RRUN_CONTENT_TRUST`).
    Accept,
    /// Refuse every image of the scope.
    Reject,
    /// Resolve tags only through signed Notary metadata. `None` fields fall back to the command
    /// line (`--trust-server`, `--trust-root`, `--tls-ca`) and then to the defaults (trust
    /// server of the registry host, root pinned on first use).
    NotarySigned {
        server: Option<String>,
        root: Option<PathBuf>,
        ca: Option<PathBuf>,
    },
}

/// A parsed policy: the default requirement and the requirements of `docker` scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    default: Requirement,
    docker: BTreeMap<String, Requirement>,
}

impl Default for Policy {
    /// The policy without a file: accept everything.
    fn default() -> Self {
        Policy {
            default: Requirement::Accept,
            docker: BTreeMap::new(),
        }
    }
}

impl Policy {
    /// Read and validate a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        use std::io::Read as _;
        let read_err = |source| PolicyError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .map_err(read_err)?
            .take(MAX_POLICY_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
        if bytes.len() as u64 > MAX_POLICY_BYTES {
            return Err(PolicyError::Invalid {
                path: path.to_path_buf(),
                reason: format!("larger than {MAX_POLICY_BYTES} bytes"),
            });
        }
        let base = path.parent().unwrap_or(Path::new("/"));
        Policy::parse(&bytes, base).map_err(|reason| PolicyError::Invalid {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parse policy JSON; relative paths in it are taken relative to `base`.
    pub fn parse(bytes: &[u8], base: &Path) -> Result<Policy, String> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        let top = v.as_object().ok_or("the policy must be a JSON object")?;
        check_fields(top, "the policy", &["default", "transports"])?;
        let default = match top.get("default") {
            Some(r) => requirement(r, base).map_err(|e| format!("default: {e}"))?,
            None => return Err(
                "\"default\" is missing (use \"insecureAcceptAnything\", \"signed\" or \"reject\")"
                    .into(),
            ),
        };
        let mut docker = BTreeMap::new();
        if let Some(t) = top.get("transports") {
            let t = t.as_object().ok_or("\"transports\" must be an object")?;
            for (transport, scopes) in t {
                if transport != "docker" {
                    return Err(format!(
                        "unknown transport {transport:?}: only \"docker\" (registries) is supported"
                    ));
                }
                let scopes = scopes
                    .as_object()
                    .ok_or("transports.docker must be an object of scopes")?;
                for (scope, r) in scopes {
                    check_scope(scope)?;
                    let r = requirement(r, base).map_err(|e| format!("scope {scope:?}: {e}"))?;
                    docker.insert(scope.clone(), r);
                }
            }
        }
        Ok(Policy { default, docker })
    }

    /// The requirement for a repository `reference_name` (`Reference::name()`, e.g.
    /// `127.0.0.1:5000/app` or `docker.io/library/busybox`): the repository's own scope, then
    /// each namespace above it, then the registry host, then the default.
    pub fn requirement(&self, reference_name: &str) -> Requirement {
        let mut scope = reference_name;
        loop {
            if let Some(r) = self.docker.get(scope) {
                return r.clone();
            }
            match scope.rsplit_once('/') {
                Some((parent, _)) => scope = parent,
                None => return self.default.clone(),
            }
        }
    }

    /// The default requirement.
    pub fn default_requirement(&self) -> &Requirement {
        &self.default
    }
}

fn check_fields(obj: &Map<String, Value>, what: &str, allowed: &[&str]) -> Result<(), String> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "{what}: unknown field {k:?} (allowed: {})",
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

/// Scopes are `host[:port]` optionally followed by `/`-separated repository path components.
fn check_scope(scope: &str) -> Result<(), String> {
    let bad = |reason: &str| Err(format!("scope {scope:?}: {reason}"));
    let (host, path) = scope.split_once('/').unwrap_or((scope, ""));
    let host_ok = !host.is_empty()
        && (host.contains(['.', ':']) || host == "localhost" || host.starts_with('['))
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    if !host_ok {
        return bad("must start with a registry host such as docker.io or 127.0.0.1:5000 (write docker.io/library/busybox, not busybox)");
    }
    if path.contains(['@']) || path.rsplit('/').next().is_some_and(|c| c.contains(':')) {
        return bad("tags and digests are not scopes: name a registry, namespace or repository");
    }
    if scope.contains('/') {
        let ok = path.split('/').all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        });
        if !ok {
            return bad(
                "repository path components are lower-case letters, digits, '.', '_' and '-'",
            );
        }
    }
    Ok(())
}

fn requirement(v: &Value, base: &Path) -> Result<Requirement, String> {
    let obj = match v {
        Value::String(t) => return simple(t),
        Value::Array(list) => match list.as_slice() {
            [one] => return requirement(one, base),
            _ => {
                return Err(
                    "a list of requirements must hold exactly one (rrun does not combine them)"
                        .into(),
                )
            }
        },
        Value::Object(obj) => obj,
        _ => return Err("a requirement is a type name or an object with \"type\"".into()),
    };
    let ty = obj
        .get("type")
        .and_then(Value::as_str)
        .ok_or("the requirement has no \"type\" string")?;
    if ty != "notarySigned" {
        check_fields(obj, ty, &["type"])?;
        return simple(ty);
    }
    check_fields(obj, ty, &["type", "trustServer", "trustRoot", "tlsCa"])?;
    let string = |k: &str| -> Result<Option<String>, String> {
        match obj.get(k) {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(format!("{k} must be a non-empty string")),
        }
    };
    let server = string("trustServer")?;
    if let Some(s) = &server {
        if !(s.starts_with("https://") || s.starts_with("http://")) {
            return Err(format!(
                "trustServer {s:?} must be an https:// (or loopback http://) URL"
            ));
        }
    }
    let path =
        |k: &str| -> Result<Option<PathBuf>, String> { Ok(string(k)?.map(|p| base.join(p))) };
    Ok(Requirement::NotarySigned {
        server,
        root: path("trustRoot")?,
        ca: path("tlsCa")?,
    })
}

fn simple(ty: &str) -> Result<Requirement, String> {
    match ty {
        "insecureAcceptAnything" => Ok(Requirement::Accept),
        "reject" => Ok(Requirement::Reject),
        "signed" | "notarySigned" => Ok(Requirement::NotarySigned {
            server: None,
            root: None,
            ca: None,
        }),
        other => Err(format!(
            "unknown requirement type {other:?} (use insecureAcceptAnything, reject, signed or notarySigned)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Policy, String> {
        Policy::parse(json.as_bytes(), Path::new("/etc/rrun"))
    }

    fn notary(server: Option<&str>, root: Option<&str>, ca: Option<&str>) -> Requirement {
        Requirement::NotarySigned {
            server: server.map(str::to_string),
            root: root.map(PathBuf::from),
            ca: ca.map(PathBuf::from),
        }
    }

    #[test]
    fn the_most_specific_scope_wins() {
        let p = parse(
            r#"{"default": "insecureAcceptAnything", "transports": {"docker": {
                "127.0.0.1:5000": "signed",
                "127.0.0.1:5000/team": {"type": "reject"},
                "127.0.0.1:5000/team/app": {"type": "notarySigned", "trustServer": "https://127.0.0.1:4443",
                                            "trustRoot": "/keys/root.json", "tlsCa": "ca.pem"},
                "docker.io/library/busybox": [{"type": "insecureAcceptAnything"}],
                "docker.io/library": "reject"
            }}}"#,
        )
        .unwrap();
        assert_eq!(
            p.requirement("127.0.0.1:5000/team/app"),
            notary(
                Some("https://127.0.0.1:4443"),
                Some("/keys/root.json"),
                Some("/etc/rrun/ca.pem")
            )
        );
        assert_eq!(
            p.requirement("127.0.0.1:5000/team/other"),
            Requirement::Reject
        );
        assert_eq!(
            p.requirement("127.0.0.1:5000/team/app/sub"),
            p.requirement("127.0.0.1:5000/team/app")
        );
        assert_eq!(
            p.requirement("127.0.0.1:5000/app"),
            notary(None, None, None)
        );
        // a namespace prefix is matched by whole components only
        assert_eq!(
            p.requirement("127.0.0.1:5000/teamx"),
            notary(None, None, None)
        );
        assert_eq!(p.requirement("127.0.0.1:5001/app"), Requirement::Accept);
        assert_eq!(
            p.requirement("docker.io/library/busybox"),
            Requirement::Accept
        );
        assert_eq!(
            p.requirement("docker.io/library/alpine"),
            Requirement::Reject
        );
        assert_eq!(p.requirement("docker.io/user/app"), Requirement::Accept);
    }

    #[test]
    fn default_requirements() {
        assert_eq!(
            parse(r#"{"default": [{"type": "reject"}]}"#)
                .unwrap()
                .requirement("example.com/a"),
            Requirement::Reject
        );
        assert_eq!(
            parse(r#"{"default": "signed", "transports": {}}"#)
                .unwrap()
                .requirement("example.com/a"),
            notary(None, None, None)
        );
        assert_eq!(
            Policy::default().requirement("example.com/a"),
            Requirement::Accept
        );
    }

    #[test]
    fn invalid_policies_are_refused_with_the_reason() {
        for (json, want) in [
            ("", "not JSON"),
            ("[]", "must be a JSON object"),
            ("{}", "\"default\" is missing"),
            (
                r#"{"default": "signedBy"}"#,
                "unknown requirement type \"signedBy\"",
            ),
            (
                r#"{"default": "insecureAcceptAnything", "transport": {}}"#,
                "unknown field \"transport\"",
            ),
            (
                r#"{"default": "reject", "transports": {"atomic": {}}}"#,
                "unknown transport",
            ),
            (
                r#"{"default": "reject", "transports": {"docker": {"busybox": "reject"}}}"#,
                "must start with a registry host",
            ),
            (
                r#"{"default": "reject", "transports": {"docker": {"example.com/app:1": "reject"}}}"#,
                "tags and digests",
            ),
            (
                r#"{"default": "reject", "transports": {"docker": {"example.com/App": "reject"}}}"#,
                "lower-case",
            ),
            (
                r#"{"default": {"type": "notarySigned", "trustroot": "/r.json"}}"#,
                "unknown field \"trustroot\"",
            ),
            (
                r#"{"default": {"type": "reject", "trustServer": "https://x"}}"#,
                "unknown field \"trustServer\"",
            ),
            (
                r#"{"default": {"type": "notarySigned", "trustServer": "ftp://x"}}"#,
                "https://",
            ),
            (
                r#"{"default": {"type": "notarySigned", "trustRoot": 7}}"#,
                "non-empty string",
            ),
            (r#"{"default": ["reject", "signed"]}"#, "exactly one"),
            (r#"{"default": 1}"#, "type name or an object"),
        ] {
            let e = parse(json).expect_err(json);
            assert!(e.contains(want), "{json}: {e}");
        }
    }

    #[test]
    fn files_are_loaded_with_paths_relative_to_them() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("policy.json");
        std::fs::write(
            &path,
            r#"{"default": {"type": "notarySigned", "trustRoot": "roots/app.json"}}"#,
        )
        .unwrap();
        let p = Policy::load(&path).unwrap();
        assert_eq!(
            p.default_requirement(),
            &Requirement::NotarySigned {
                server: None,
                root: Some(d.path().join("roots/app.json")),
                ca: None
            }
        );
        std::fs::write(&path, "{\"default\": ").unwrap();
        let e = Policy::load(&path).unwrap_err();
        assert!(matches!(e, PolicyError::Invalid { .. }), "{e}");
        assert!(e.to_string().starts_with("invalid policy "), "{e}");
        let e = Policy::load(&d.path().join("missing.json")).unwrap_err();
        assert!(matches!(e, PolicyError::Read { .. }), "{e}");
    }
}
