//! Credentials files as docker and podman keep them: `$REGISTRY_AUTH_FILE`,
//! `${XDG_RUNTIME_DIR}/containers/auth.json`, `$DOCKER_CONFIG/config.json` or
//! `~/.docker/config.json`, each `{"auths": {"<registry>": {"auth": base64("user:pass")}}}`.
//! Lookup, and the atomic 0600 writes of `rrun login`/`logout` (other content is kept).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::auth::Credentials;
use crate::image::error::{ImageError, Result};

/// The key docker uses for Docker Hub.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
/// Names of Docker Hub's registry.
const DOCKER_HUB_NAMES: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];
/// Credentials files larger than this are refused.
const MAX_AUTH_FILE: u64 = 4 << 20;

/// The credentials files to read, in order, and the one `login` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFiles {
    /// Files searched for credentials, first match wins.
    pub read: Vec<PathBuf>,
    /// The file `login` writes (and `logout` edits first).
    pub write: PathBuf,
}

/// Where a credential came from.
#[derive(Debug)]
pub struct FoundCredentials {
    /// The credentials.
    pub credentials: Credentials,
    /// The file holding them.
    pub file: PathBuf,
}

impl AuthFiles {
    /// The files podman and docker use: `$REGISTRY_AUTH_FILE` alone when set, else
    /// `${XDG_RUNTIME_DIR}/containers/auth.json` then docker's `config.json`.
    pub fn from_env() -> Result<Self> {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        if let Some(file) = var("REGISTRY_AUTH_FILE") {
            let file = PathBuf::from(file);
            return Ok(Self {
                read: vec![file.clone()],
                write: file,
            });
        }
        let docker = match (var("DOCKER_CONFIG"), var("HOME")) {
            (Some(dir), _) => PathBuf::from(dir).join("config.json"),
            (None, Some(home)) => PathBuf::from(home).join(".docker").join("config.json"),
            (None, None) => {
                return Err(ImageError::AuthFile {
                    path: PathBuf::from("~/.docker/config.json"),
                    reason: "neither HOME nor DOCKER_CONFIG nor REGISTRY_AUTH_FILE is set".into(),
                })
            }
        };
        let mut read = Vec::new();
        if let Some(run) = var("XDG_RUNTIME_DIR") {
            read.push(PathBuf::from(run).join("containers").join("auth.json"));
        }
        read.push(docker.clone());
        Ok(Self {
            read,
            write: docker,
        })
    }

    /// The credentials for `registry` (a domain as in image names, `docker.io` for Docker
    /// Hub) and `repository` (for podman's per-namespace entries), if any file has them.
    pub fn find(
        &self,
        registry: &str,
        repository: Option<&str>,
    ) -> Result<Option<FoundCredentials>> {
        for file in &self.read {
            let Some(doc) = read_doc(file)? else {
                continue;
            };
            let Some(auths) = doc.get("auths").and_then(Value::as_object) else {
                continue;
            };
            if let Some(entry) = best_entry(auths, registry, repository) {
                if let Some(credentials) = decode_entry(file, entry)? {
                    return Ok(Some(FoundCredentials {
                        credentials,
                        file: file.clone(),
                    }));
                }
            }
        }
        Ok(None)
    }

    /// Record credentials for `registry` in the write file (atomic, mode 0600); other
    /// entries and settings in it are kept. Returns the file written.
    pub fn store(&self, registry: &str, creds: &Credentials) -> Result<PathBuf> {
        let path = &self.write;
        let mut doc = read_doc(path)?.unwrap_or_else(|| Value::Object(Map::new()));
        let obj = doc.as_object_mut().ok_or_else(|| ImageError::AuthFile {
            path: path.clone(),
            reason: "the top level is not a JSON object".into(),
        })?;
        let auths = obj
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        let auths = auths.as_object_mut().ok_or_else(|| ImageError::AuthFile {
            path: path.clone(),
            reason: "\"auths\" is not a JSON object".into(),
        })?;
        // One entry per registry: drop other spellings of the same host (podman's
        // per-namespace `host/ns` entries stay).
        let host = canonical_host(registry);
        auths.retain(|k, _| is_namespace_key(k) || key_host(k).as_deref() != Some(host.as_str()));
        let raw = Zeroizing::new(format!("{}:{}", creds.username, creds.password()));
        let mut entry = Map::new();
        entry.insert(
            "auth".into(),
            Value::String(base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())),
        );
        auths.insert(write_key(registry), Value::Object(entry));
        write_private(path, &doc)?;
        Ok(path.clone())
    }

    /// Remove the credentials for `registry` from every file that has them. Returns the files
    /// changed (empty when none had any).
    pub fn remove(&self, registry: &str) -> Result<Vec<PathBuf>> {
        let host = canonical_host(registry);
        let mut files: Vec<&PathBuf> = vec![&self.write];
        files.extend(self.read.iter().filter(|f| **f != self.write));
        let mut changed = Vec::new();
        for path in files {
            let Some(mut doc) = read_doc(path)? else {
                continue;
            };
            let Some(auths) = doc.get_mut("auths").and_then(Value::as_object_mut) else {
                continue;
            };
            let before = auths.len();
            auths.retain(|k, _| key_host(k).as_deref() != Some(host.as_str()));
            if auths.len() != before {
                write_private(path, &doc)?;
                changed.push(path.clone());
            }
        }
        Ok(changed)
    }
}

/// The registry name as compared: Docker Hub's aliases are `docker.io`.
fn canonical_host(registry: &str) -> String {
    let r = registry.trim().trim_end_matches('/');
    if DOCKER_HUB_NAMES.contains(&r) {
        "docker.io".into()
    } else {
        r.to_string()
    }
}

/// The key `login` writes: docker's URL for Docker Hub, else the registry as given.
fn write_key(registry: &str) -> String {
    match canonical_host(registry).as_str() {
        "docker.io" => DOCKER_HUB_KEY.into(),
        other => other.to_string(),
    }
}

/// The host (canonical) an `auths` key names: `https://host/v1/` and `host` forms, and the host
/// part of podman's `host/namespace` keys.
fn key_host(key: &str) -> Option<String> {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = rest.split('/').next()?;
    (!host.is_empty()).then(|| canonical_host(host))
}

/// True for podman's per-namespace keys (`host/namespace`), not docker's URL keys.
fn is_namespace_key(key: &str) -> bool {
    !key.contains("://") && key.contains('/')
}

/// The most specific entry for registry (and repository): `host/ns/repo`, then `host/ns`,
/// then `host` in any spelling.
fn best_entry<'a>(
    auths: &'a Map<String, Value>,
    registry: &str,
    repository: Option<&str>,
) -> Option<&'a Value> {
    let host = canonical_host(registry);
    if let Some(repo) = repository {
        let parts: Vec<&str> = repo.split('/').collect();
        for n in (1..=parts.len()).rev() {
            let prefix = format!("{registry}/{}", parts[..n].join("/"));
            if let Some(v) = auths.get(&prefix) {
                return Some(v);
            }
        }
    }
    if let Some(v) = auths.get(registry) {
        return Some(v);
    }
    auths.iter().find_map(|(k, v)| {
        (!is_namespace_key(k) && key_host(k).as_deref() == Some(host.as_str())).then_some(v)
    })
}

/// The credentials of an `auths` entry (`auth` = base64 of `user:password`).
fn decode_entry(file: &Path, entry: &Value) -> Result<Option<Credentials>> {
    let Some(auth) = entry
        .get("auth")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
    else {
        return Ok(None);
    };
    let bad = |reason: &str| ImageError::AuthFile {
        path: file.into(),
        reason: reason.into(),
    };
    let raw = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad("an \"auth\" value is not base64"))?,
    );
    let text = std::str::from_utf8(&raw).map_err(|_| bad("an \"auth\" value is not UTF-8"))?;
    let (user, pass) = text
        .split_once(':')
        .ok_or_else(|| bad("an \"auth\" value is not base64 of user:password"))?;
    Ok(Some(Credentials::new(user, pass)))
}

/// Read and parse a credentials file; `None` when it does not exist.
fn read_doc(path: &Path) -> Result<Option<Value>> {
    let data = match fs::File::open(path) {
        Ok(f) => {
            let mut data = Zeroizing::new(Vec::new());
            std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_AUTH_FILE + 1), &mut data)
                .map_err(|e| ImageError::io_at(path, e))?;
            if data.len() as u64 > MAX_AUTH_FILE {
                return Err(ImageError::AuthFile {
                    path: path.into(),
                    reason: "larger than 4 MiB".into(),
                });
            }
            data
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ImageError::io_at(path, e)),
    };
    if data.iter().all(u8::is_ascii_whitespace) {
        return Ok(Some(Value::Object(Map::new())));
    }
    serde_json::from_slice(&data)
        .map(Some)
        .map_err(|e| ImageError::AuthFile {
            path: path.into(),
            reason: format!("not valid JSON ({e}); fix or remove it"),
        })
}

/// Write `doc` to `path` atomically with mode 0600 (the directory is created 0700).
fn write_private(path: &Path, doc: &Value) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| ImageError::io_at(&dir, e))?;
    }
    let data =
        Zeroizing::new(
            serde_json::to_vec_pretty(doc).map_err(|e| ImageError::AuthFile {
                path: path.into(),
                reason: e.to_string(),
            })?,
        );
    let mut tmp = tempfile::Builder::new()
        .prefix(".rrun-auth-")
        .tempfile_in(&dir)
        .map_err(|e| ImageError::io_at(&dir, e))?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o600))
        .and_then(|()| tmp.write_all(&data))
        .and_then(|()| tmp.write_all(b"\n"))
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| ImageError::io_at(tmp.path(), e))?;
    tmp.persist(path)
        .map_err(|e| ImageError::io_at(path, e.error))?;
    crate::image::layout::sync_dir(&dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn files(dir: &Path) -> AuthFiles {
        AuthFiles {
            read: vec![
                dir.join("run/containers/auth.json"),
                dir.join("docker/config.json"),
            ],
            write: dir.join("docker/config.json"),
        }
    }

    #[test]
    fn store_find_and_remove_keep_other_content() {
        let tmp = tempfile::tempdir().unwrap();
        let f = files(tmp.path());
        fs::create_dir_all(tmp.path().join("docker")).unwrap();
        fs::write(
            &f.write,
            r#"{"auths":{"other.example:5000":{"auth":"eDp5"}},"credsStore":"desktop","HttpHeaders":{"X":"1"}}"#,
        )
        .unwrap();
        assert!(f.find("127.0.0.1:5000", Some("app")).unwrap().is_none());
        let written = f
            .store("127.0.0.1:5000", &Credentials::new("alice", "pa:ss"))
            .unwrap();
        assert_eq!(written, f.write);
        let mode = fs::metadata(&f.write).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let found = f.find("127.0.0.1:5000", Some("app")).unwrap().unwrap();
        assert_eq!(found.credentials.username, "alice");
        assert_eq!(
            found.credentials.password(),
            "pa:ss",
            "split at the first colon"
        );
        let doc: Value = serde_json::from_slice(&fs::read(&f.write).unwrap()).unwrap();
        assert_eq!(doc["credsStore"], "desktop");
        assert_eq!(doc["HttpHeaders"]["X"], "1");
        assert_eq!(doc["auths"]["other.example:5000"]["auth"], "eDp5");

        assert_eq!(f.remove("127.0.0.1:5000").unwrap(), vec![f.write.clone()]);
        assert!(f.find("127.0.0.1:5000", None).unwrap().is_none());
        assert!(f.remove("127.0.0.1:5000").unwrap().is_empty());
        let doc: Value = serde_json::from_slice(&fs::read(&f.write).unwrap()).unwrap();
        assert_eq!(doc["auths"]["other.example:5000"]["auth"], "eDp5");
    }

    #[test]
    fn docker_hub_aliases_and_podman_files() {
        let tmp = tempfile::tempdir().unwrap();
        let f = files(tmp.path());
        fs::create_dir_all(tmp.path().join("docker")).unwrap();
        // base64("hub:pw") under docker's URL key.
        fs::write(
            &f.write,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOnB3"}}}"#,
        )
        .unwrap();
        let found = f
            .find("docker.io", Some("library/busybox"))
            .unwrap()
            .unwrap();
        assert_eq!(found.credentials.username, "hub");
        // podman's auth.json comes first, with a per-namespace entry.
        fs::create_dir_all(tmp.path().join("run/containers")).unwrap();
        fs::write(
            &f.read[0],
            r#"{"auths":{"docker.io/team":{"auth":"dGVhbTpwdw=="},"docker.io":{}}}"#,
        )
        .unwrap();
        let found = f.find("docker.io", Some("team/app")).unwrap().unwrap();
        assert_eq!(found.credentials.username, "team");
        assert_eq!(found.file, f.read[0]);
        // An empty entry (credential helper) falls through to the next file.
        let found = f
            .find("docker.io", Some("library/busybox"))
            .unwrap()
            .unwrap();
        assert_eq!(found.credentials.username, "hub");
        // login writes docker's key for Docker Hub and replaces the old spelling.
        f.store("docker.io", &Credentials::new("new", "pw"))
            .unwrap();
        let doc: Value = serde_json::from_slice(&fs::read(&f.write).unwrap()).unwrap();
        assert_eq!(doc["auths"].as_object().unwrap().len(), 1);
        assert!(doc["auths"][DOCKER_HUB_KEY]["auth"].is_string());
    }

    #[test]
    fn broken_files_say_which_file() {
        let tmp = tempfile::tempdir().unwrap();
        let f = files(tmp.path());
        fs::create_dir_all(tmp.path().join("docker")).unwrap();
        fs::write(&f.write, "{not json").unwrap();
        let err = f.find("x.example", None).unwrap_err();
        assert!(err.to_string().contains("config.json"), "{err}");
        fs::write(&f.write, r#"{"auths":{"x.example":{"auth":"!!"}}}"#).unwrap();
        let err = f.find("x.example", None).unwrap_err();
        assert!(err.to_string().contains("not base64"), "{err}");
        assert!(
            !err.to_string().contains("!!"),
            "no credential text in errors"
        );
    }
}
