//! The Notary v1 (Docker Content Trust) client: GUNs, trust anchoring (pinned on first use or
//! pinned explicitly), the update against `/v2/<GUN>/_trust/tuf/`, the delegation tree, and tag
//! resolution preferring `targets/releases` over `targets` as `docker pull` did.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::cache::{Layout, MetadataCache};
use super::client::{sha256_hex, Limits, Updater, Verified};
use super::clock::Clock;
use super::clock::SystemClock;
use super::error::{Result, TrustError};
use super::metadata::{Dialect, Root, Snapshot, Targets, Timestamp};
use super::transport::{HttpOptions, HttpTransport, Transport};
use super::verify::check_length_and_hashes;

/// The role docker reads signed tags from first.
pub const RELEASES_ROLE: &str = "targets/releases";

/// Most delegated roles loaded for one repository.
const MAX_NOTARY_DELEGATIONS: usize = 1024;

/// A Globally Unique Name: the full repository name without tag (`docker.io/library/busybox`,
/// `127.0.0.1:5000/app`), validated so that it is safe in URLs and cache paths.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gun(String);

impl Gun {
    /// Validate a GUN.
    pub fn new(s: &str) -> Result<Self> {
        let bad = |reason: &str| TrustError::InvalidName {
            kind: "repository name",
            name: s.to_string(),
            reason: reason.to_string(),
        };
        if s.is_empty() || s.len() > 255 {
            return Err(bad("must be 1 to 255 characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/-".contains(&b))
        {
            return Err(bad("only letters, digits and . _ : / - are allowed"));
        }
        if s.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            return Err(bad("empty, '.' or '..' path components are not allowed"));
        }
        Ok(Gun(s.to_string()))
    }

    /// The GUN as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Gun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where trust in a repository's root comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TrustRoot {
    /// Trust the first root seen (over TLS) and pin it in the cache; later roots must chain from
    /// it (docker's behaviour).
    #[default]
    FirstUse,
    /// Start every update from this root.json file; the server's root must chain from it.
    Pinned(PathBuf),
}

/// A tag resolved through verified metadata.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TrustedTarget {
    /// The tag (the TUF target name).
    pub tag: String,
    /// `sha256:<hex>` of the manifest.
    pub digest: String,
    /// Manifest length in bytes.
    pub size: u64,
    /// The role the entry was taken from (`targets/releases` or `targets`).
    pub role: String,
    /// Who signed this digest for this tag: delegation names (`alice`), or `Repo Admin` for the
    /// top-level targets key, as `docker trust inspect` shows them.
    pub signers: Vec<String>,
    /// When the metadata of `role` expires.
    pub expires: DateTime<Utc>,
}

impl TrustedTarget {
    /// Check manifest bytes against the signed length and digest.
    pub fn verify_content(&self, bytes: &[u8]) -> Result<()> {
        let what = format!("manifest of {}", self.tag);
        let expected = self.digest.strip_prefix("sha256:").unwrap_or(&self.digest);
        if bytes.len() as u64 != self.size {
            return Err(TrustError::LengthMismatch {
                what,
                expected: self.size,
                actual: bytes.len() as u64,
            });
        }
        let actual = hex::encode(Sha256::digest(bytes));
        if actual != expected {
            return Err(TrustError::HashMismatch {
                what,
                algorithm: "sha256".into(),
                expected: expected.to_string(),
                actual,
            });
        }
        Ok(())
    }
}

/// Everything verified about one repository in one update.
#[derive(Debug, Clone)]
pub struct NotaryRepo {
    pub gun: Gun,
    pub root: Verified<Root>,
    pub timestamp: Verified<Timestamp>,
    pub snapshot: Verified<Snapshot>,
    /// `targets` and every delegated role that verified, by name.
    pub targets: BTreeMap<String, Verified<Targets>>,
    /// Effective path prefixes of each loaded role (after intersecting with its parents').
    pub scopes: BTreeMap<String, Vec<String>>,
    /// Delegations skipped because they were expired or under threshold (docker warns too).
    pub warnings: Vec<String>,
}

impl NotaryRepo {
    fn in_scope(&self, role: &str, tag: &str) -> bool {
        self.scopes
            .get(role)
            .is_some_and(|paths| paths.iter().any(|p| tag.starts_with(p.as_str())))
    }

    fn entry(&self, role: &str, tag: &str) -> Result<Option<TrustedTarget>> {
        let Some(t) = self.targets.get(role) else {
            return Ok(None);
        };
        let Some(file) = t.meta.targets.get(tag) else {
            return Ok(None);
        };
        if !self.in_scope(role, tag) {
            return Err(TrustError::DelegationOutOfScope {
                role: role.to_string(),
                path: tag.to_string(),
            });
        }
        let sha = file
            .sha256()
            .ok_or_else(|| TrustError::meta(role, format!("target {tag:?} has no sha256 hash")))?;
        if sha.len() != 32 {
            return Err(TrustError::meta(
                role,
                format!("target {tag:?}: sha256 is {} bytes", sha.len()),
            ));
        }
        Ok(Some(TrustedTarget {
            tag: tag.to_string(),
            digest: format!("sha256:{}", hex::encode(sha)),
            size: file.length,
            role: role.to_string(),
            signers: self.signers_of(role, tag, file.sha256(), file.length),
            expires: t.meta.expires,
        }))
    }

    fn signers_of(&self, role: &str, tag: &str, sha: Option<&[u8]>, len: u64) -> Vec<String> {
        if role == "targets" {
            return vec!["Repo Admin".to_string()];
        }
        let mut names: Vec<String> = self
            .targets
            .iter()
            .filter(|(name, _)| {
                name.as_str() != RELEASES_ROLE
                    && name.starts_with("targets/")
                    && !name["targets/".len()..].contains('/')
            })
            .filter(|(name, t)| {
                self.in_scope(name, tag)
                    && t.meta
                        .targets
                        .get(tag)
                        .is_some_and(|f| f.sha256() == sha && f.length == len)
            })
            .map(|(name, _)| name["targets/".len()..].to_string())
            .collect();
        if names.is_empty() {
            names.push(role.strip_prefix("targets/").unwrap_or(role).to_string());
        }
        names
    }

    /// Resolve `tag` as docker did: `targets/releases` first, then `targets`; an entry outside
    /// its role's delegated paths is never used.
    pub fn resolve(&self, tag: &str) -> Result<TrustedTarget> {
        let mut refused = None;
        for role in [RELEASES_ROLE, "targets"] {
            match self.entry(role, tag) {
                Ok(Some(t)) => return Ok(t),
                Ok(None) => {}
                Err(e @ TrustError::DelegationOutOfScope { .. }) => {
                    refused.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(refused.unwrap_or_else(|| TrustError::UnknownTarget {
            gun: self.gun.to_string(),
            tag: tag.to_string(),
        }))
    }

    /// Every signed tag, resolved as `resolve` would, sorted by tag.
    pub fn list(&self) -> Vec<TrustedTarget> {
        let mut tags: Vec<&String> = [RELEASES_ROLE, "targets"]
            .iter()
            .filter_map(|r| self.targets.get(*r))
            .flat_map(|t| t.meta.targets.keys())
            .collect();
        tags.sort();
        tags.dedup();
        tags.into_iter()
            .filter_map(|t| self.resolve(t).ok())
            .collect()
    }
}

/// A Notary v1 client for one trust server.
#[derive(Debug, Clone)]
pub struct NotaryClient {
    server: String,
    cache_dir: PathBuf,
    transport: Arc<dyn Transport>,
    clock: Arc<dyn Clock>,
    trust_root: TrustRoot,
    limits: Limits,
}

/// The trust server docker used for a registry: `https://notary.docker.io` for Docker Hub,
/// else `https://<registry host[:port]>`.
pub fn default_trust_server(registry_host: &str) -> String {
    match registry_host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => {
            "https://notary.docker.io".to_string()
        }
        host => format!("https://{host}"),
    }
}

/// True for a name Notary accepts as a delegation directly below `parent`.
pub fn is_direct_child(parent: &str, name: &str) -> bool {
    let valid = name.len() < 256
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_/".contains(&b))
        && !name.split('/').any(|c| c.is_empty());
    valid
        && name
            .strip_prefix(parent)
            .and_then(|r| r.strip_prefix('/'))
            .is_some_and(|rest| !rest.contains('/'))
}

impl NotaryClient {
    /// A client of the trust server at `server` (e.g. `https://notary.docker.io`), caching
    /// trusted metadata under `cache_dir/<GUN>/`.
    pub fn new(
        server: &str,
        cache_dir: &Path,
        transport: Arc<dyn Transport>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        NotaryClient {
            server: server.trim_end_matches('/').to_string(),
            cache_dir: cache_dir.to_path_buf(),
            transport,
            clock,
            trust_root: TrustRoot::FirstUse,
            limits: Limits {
                timestamp: 1 << 20,
                ..Limits::default()
            },
        }
    }

    /// A client over HTTPS (plain http only for loopback servers unless `opts` allow it),
    /// with the system clock.
    pub fn https(server: &str, cache_dir: &Path, opts: &HttpOptions) -> Result<Self> {
        Ok(Self::new(
            server,
            cache_dir,
            Arc::new(HttpTransport::new(opts)?),
            Arc::new(SystemClock),
        ))
    }

    /// Choose where trust in the root comes from.
    pub fn with_trust_root(mut self, trust_root: TrustRoot) -> Self {
        self.trust_root = trust_root;
        self
    }

    /// Override the download caps.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The trust server URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The transport (signing publishes through it).
    pub fn transport(&self) -> &dyn Transport {
        self.transport.as_ref()
    }

    /// The clock.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// The metadata base URL of `gun`, ending in `/`.
    pub fn base_url(&self, gun: &Gun) -> String {
        format!("{}/v2/{}/_trust/tuf/", self.server, gun)
    }

    /// The cache of `gun`.
    pub fn cache(&self, gun: &Gun) -> MetadataCache {
        MetadataCache::new(self.cache_dir.join(gun.as_str()), Layout::Nested)
    }

    /// Download and verify the repository's metadata; `Ok` only if everything checked out.
    pub fn update(&self, gun: &str) -> Result<NotaryRepo> {
        let gun = Gun::new(gun)?;
        let cache = self.cache(&gun);
        let now = self.clock.now();
        let base = self.base_url(&gun);
        // 5.2 load the trusted root: the pinned file, the root pinned on first use, or (first
        // use) the server's root, accepted only with root certificates naming the GUN.
        let cached_root = cache.load("root")?;
        let anchor = match &self.trust_root {
            TrustRoot::Pinned(path) => {
                let bytes = std::fs::read(path).map_err(|e| TrustError::io(path, e))?;
                Updater::verify_anchor(Dialect::Notary, Some(gun.as_str()), &bytes, now, false)?
            }
            TrustRoot::FirstUse => match &cached_root {
                Some(bytes) => {
                    Updater::verify_anchor(Dialect::Notary, Some(gun.as_str()), bytes, now, false)?
                }
                None => {
                    let url = format!("{base}root.json");
                    let bytes = self.transport.fetch(&url, self.limits.root).map_err(|e| {
                        if e.is_not_found() {
                            TrustError::NoTrustData {
                                gun: gun.to_string(),
                                server: self.server.clone(),
                            }
                        } else {
                            e
                        }
                    })?;
                    let root = Updater::verify_anchor(
                        Dialect::Notary,
                        Some(gun.as_str()),
                        &bytes,
                        now,
                        true,
                    )?;
                    cache.store("root", &bytes)?;
                    root
                }
            },
        };
        let mut u = Updater {
            dialect: Dialect::Notary,
            gun: Some(gun.to_string()),
            transport: self.transport.as_ref(),
            clock: self.clock.as_ref(),
            base,
            cache,
            limits: self.limits,
            root: anchor,
            timestamp: None,
            snapshot: None,
            targets: BTreeMap::new(),
            warnings: Vec::new(),
        };
        // 5.3 update the root (N+1 walk; every version signed by its predecessor and itself).
        u.update_root()?;
        if let (TrustRoot::Pinned(_), Some(bytes)) = (&self.trust_root, &cached_root) {
            // An explicit pin never lets the trusted root go below what was seen before.
            if let Ok(prev) = super::metadata::parse_envelope(bytes, Dialect::Notary, "root")
                .and_then(|e| super::metadata::parse_root(Dialect::Notary, &e.signed))
            {
                super::verify::check_not_older("root", prev.version, u.root.meta.version)?;
            }
        }
        u.load_cached()?;
        u.update_timestamp()?;
        u.update_snapshot()?;
        if !snapshot_names_root(&u)? {
            // Notary's recovery (client/tufclient.go): the snapshot names another root; fetch it
            // by checksum, accept it only as a rotation signed by the old and new root keys, then
            // verify timestamp and snapshot again with the new keys.
            rotate_from_snapshot(&mut u)?;
            u.update_timestamp()?;
            u.update_snapshot()?;
            if !snapshot_names_root(&u)? {
                let sn = u.snapshot.as_ref().expect("loaded");
                let m = &sn.meta.meta["root"];
                return Err(TrustError::HashMismatch {
                    what: "root (as named by snapshot)".into(),
                    algorithm: "sha256".into(),
                    expected: m.sha256().map(hex::encode).unwrap_or_default(),
                    actual: sha256_hex(&u.root.raw),
                });
            }
        }
        u.load_targets("targets", None)?;
        let mut scopes = BTreeMap::new();
        scopes.insert("targets".to_string(), vec![String::new()]);
        walk_delegations(&mut u, &mut scopes)?;
        Ok(NotaryRepo {
            gun,
            timestamp: u.timestamp.take().expect("loaded"),
            snapshot: u.snapshot.take().expect("loaded"),
            targets: std::mem::take(&mut u.targets),
            warnings: std::mem::take(&mut u.warnings),
            root: u.root,
            scopes,
        })
    }

    /// Resolve `gun:tag` to a signed digest and size.
    pub fn resolve(&self, gun: &str, tag: &str) -> Result<TrustedTarget> {
        self.update(gun)?.resolve(tag)
    }

    /// Every signed tag of `gun` (for `rrun trust inspect`).
    pub fn list(&self, gun: &str) -> Result<Vec<TrustedTarget>> {
        Ok(self.update(gun)?.list())
    }
}

/// Whether the snapshot's `root` entry names the trusted root's bytes.
fn snapshot_names_root(u: &Updater<'_>) -> Result<bool> {
    let sn = u
        .snapshot
        .as_ref()
        .ok_or_else(|| TrustError::meta("snapshot", "not loaded"))?;
    let m = sn
        .meta
        .meta
        .get("root")
        .ok_or_else(|| TrustError::MissingMeta {
            role: "root".into(),
            parent: "snapshot".into(),
        })?;
    Ok(check_length_and_hashes("root", &u.root.raw, m.length, &m.hashes).is_ok())
}

fn rotate_from_snapshot(u: &mut Updater<'_>) -> Result<()> {
    let sn = u
        .snapshot
        .as_ref()
        .ok_or_else(|| TrustError::meta("snapshot", "not loaded"))?;
    let m = sn
        .meta
        .meta
        .get("root")
        .cloned()
        .ok_or_else(|| TrustError::MissingMeta {
            role: "root".into(),
            parent: "snapshot".into(),
        })?;
    let sum = m
        .sha256()
        .map(hex::encode)
        .ok_or_else(|| TrustError::meta("snapshot", "root meta has no sha256"))?;
    let url = format!("{}root.{sum}.json", u.base);
    let cap = m.length.unwrap_or(u.limits.root).min(u.limits.root);
    let bytes = u.transport.fetch(&url, cap)?;
    check_length_and_hashes("root", &bytes, m.length, &m.hashes)?;
    let new = u.verify_root_update(&bytes, false)?;
    u.cache.store("root", &new.raw)?;
    u.root = new;
    u.check_final_root()?;
    // Keys of timestamp/snapshot may have changed: verify them again from scratch.
    u.timestamp = None;
    u.snapshot = None;
    u.load_cached()
}

/// Walk of the delegation tree from `targets` (each parent's children in list order), loading
/// every delegated role the snapshot lists, as the notary client downloads the whole tree. Expired or under-threshold delegations are skipped
/// with a warning, as Notary does; any other failure fails the update.
fn walk_delegations(u: &mut Updater<'_>, scopes: &mut BTreeMap<String, Vec<String>>) -> Result<()> {
    let mut stack: Vec<String> = vec!["targets".to_string()];
    let mut loaded = 0usize;
    while let Some(parent) = stack.pop() {
        let Some(t) = u.targets.get(&parent) else {
            continue;
        };
        let Some(d) = t.meta.delegations.clone() else {
            continue;
        };
        let parent_scope = scopes.get(&parent).cloned().unwrap_or_default();
        let mut children = Vec::new();
        for role in &d.roles {
            if !is_direct_child(&parent, &role.name) {
                return Err(TrustError::meta(
                    &parent,
                    format!(
                        "invalid delegation {:?}: must be a direct child role",
                        role.name
                    ),
                ));
            }
            let listed = u
                .snapshot
                .as_ref()
                .is_some_and(|s| s.meta.meta.contains_key(&role.name));
            if !listed {
                continue;
            }
            loaded += 1;
            if loaded > MAX_NOTARY_DELEGATIONS {
                return Err(TrustError::meta(
                    "targets",
                    format!("more than {MAX_NOTARY_DELEGATIONS} delegations"),
                ));
            }
            match u.load_targets(&role.name, Some(&parent)) {
                Ok(()) => {}
                Err(
                    e @ (TrustError::Expired { .. }
                    | TrustError::Threshold { .. }
                    | TrustError::BadSignature { .. }),
                ) => {
                    u.warnings
                        .push(format!("skipping delegation {}: {e}", role.name));
                    continue;
                }
                Err(e) => return Err(e),
            }
            // A child's paths are kept only where they fall inside one of its parent's paths.
            let paths: Vec<String> = role
                .paths
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|p| parent_scope.iter().any(|pp| p.starts_with(pp.as_str())))
                .collect();
            scopes.insert(role.name.clone(), paths);
            children.push(role.name.clone());
        }
        // Pre-order: the first listed child is visited (with its subtree) first.
        stack.extend(children.into_iter().rev());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gun_validation() {
        Gun::new("docker.io/library/busybox").unwrap();
        Gun::new("127.0.0.1:5000/app").unwrap();
        for bad in ["", "/abs", "a//b", "a/../b", "a/./b", "a b", "a*b", "a/"] {
            assert!(Gun::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn direct_children() {
        assert!(is_direct_child("targets", "targets/releases"));
        assert!(is_direct_child("targets/releases", "targets/releases/x"));
        assert!(!is_direct_child("targets", "targets/releases/x"));
        assert!(!is_direct_child("targets", "targets/Releases"));
        assert!(!is_direct_child("targets", "targetsx/a"));
        assert!(!is_direct_child("targets", "targets/"));
        assert!(!is_direct_child("targets", "targets/a.b"));
    }

    #[test]
    fn trust_server_defaults() {
        assert_eq!(
            default_trust_server("docker.io"),
            "https://notary.docker.io"
        );
        assert_eq!(
            default_trust_server("127.0.0.1:5000"),
            "https://127.0.0.1:5000"
        );
    }
}
