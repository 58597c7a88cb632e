//! Metadata formats of both dialects (Notary v1 and TUF 1.0): serde types for the JSON on the
//! wire, and the common model (roles, keys, file meta, targets, delegations) the client checks.

use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::canonical::canonical_json;
use super::error::{Result, TrustError};
use super::keys::{notary_key_id, PublicKey};

/// Which flavour of TUF a repository speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Notary v1 / Docker Content Trust: `_type` capitalised, base64 hashes/signatures/keys,
    /// key ids from Notary's canonical key JSON, meta names without `.json`, no meta versions.
    Notary,
    /// TUF 1.0 specification: lower-case `_type`, hex hashes and signatures, `spec_version`,
    /// meta names `targets.json` with versions.
    Tuf,
}

/// The four kinds of metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Root,
    Timestamp,
    Snapshot,
    Targets,
}

impl Dialect {
    /// The `_type` string of `kind` in this dialect.
    pub fn type_name(self, kind: Kind) -> &'static str {
        match (self, kind) {
            (Dialect::Notary, Kind::Root) => "Root",
            (Dialect::Notary, Kind::Timestamp) => "Timestamp",
            (Dialect::Notary, Kind::Snapshot) => "Snapshot",
            (Dialect::Notary, Kind::Targets) => "Targets",
            (Dialect::Tuf, Kind::Root) => "root",
            (Dialect::Tuf, Kind::Timestamp) => "timestamp",
            (Dialect::Tuf, Kind::Snapshot) => "snapshot",
            (Dialect::Tuf, Kind::Targets) => "targets",
        }
    }

    fn decode_bytes(self, s: &str) -> Option<Vec<u8>> {
        match self {
            Dialect::Notary => base64::engine::general_purpose::STANDARD.decode(s).ok(),
            Dialect::Tuf => hex::decode(s).ok(),
        }
    }
}

/// A signature as listed in an envelope.
#[derive(Debug, Clone)]
pub struct Signature {
    pub keyid: String,
    /// Notary's `method` (`ecdsa`, `eddsa`, `rsapss`, ...); TUF signatures have none.
    pub method: Option<String>,
    /// The decoded signature; `None` if it was not valid base64/hex (never verifies).
    pub sig: Option<Vec<u8>>,
}

/// `{"signed": ..., "signatures": [...]}` with the canonical bytes that were signed.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub signed: Value,
    pub signatures: Vec<Signature>,
    /// Canonical JSON of `signed`: the message every signature covers.
    pub message: Vec<u8>,
}

#[derive(Deserialize)]
struct RawEnvelope {
    signed: Value,
    signatures: Vec<RawSignature>,
}

#[derive(Deserialize)]
struct RawSignature {
    keyid: String,
    method: Option<String>,
    sig: String,
}

/// Parse the envelope of `role`'s metadata.
pub fn parse_envelope(bytes: &[u8], dialect: Dialect, role: &str) -> Result<Envelope> {
    let raw: RawEnvelope =
        serde_json::from_slice(bytes).map_err(|e| TrustError::meta(role, e.to_string()))?;
    if !raw.signed.is_object() {
        return Err(TrustError::meta(role, "\"signed\" is not an object"));
    }
    let message = canonical_json(&raw.signed)
        .map_err(|_| TrustError::meta(role, "\"signed\" is not canonical JSON material"))?;
    if dialect == Dialect::Tuf {
        // "The keyid MUST be unique in the signatures array" (TUF 4.2).
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = raw
            .signatures
            .iter()
            .find(|s| !seen.insert(s.keyid.as_str()))
        {
            return Err(TrustError::meta(
                role,
                format!("two signatures by key {}", dup.keyid),
            ));
        }
    }
    let signatures = raw
        .signatures
        .into_iter()
        .map(|s| Signature {
            sig: dialect.decode_bytes(&s.sig),
            keyid: s.keyid,
            method: s.method,
        })
        .collect();
    Ok(Envelope {
        signed: raw.signed,
        signatures,
        message,
    })
}

/// Key ids and threshold of a role.
#[derive(Debug, Clone)]
pub struct RoleKeys {
    pub keyids: Vec<String>,
    pub threshold: u64,
}

/// Root metadata.
#[derive(Debug, Clone)]
pub struct Root {
    pub version: u64,
    pub expires: DateTime<Utc>,
    pub consistent_snapshot: bool,
    pub keys: BTreeMap<String, PublicKey>,
    pub roles: BTreeMap<String, RoleKeys>,
}

impl Root {
    /// The keys and threshold of a top-level role.
    pub fn role(&self, name: &str) -> Result<&RoleKeys> {
        self.roles
            .get(name)
            .ok_or_else(|| TrustError::meta("root", format!("no {name} role")))
    }
}

/// Length, hashes and (TUF) version of a metadata file as its parent lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaFile {
    pub version: Option<u64>,
    pub length: Option<u64>,
    /// (algorithm, digest) in the order the metadata lists them.
    pub hashes: Vec<(String, Vec<u8>)>,
}

impl MetaFile {
    /// The sha256 digest, if listed.
    pub fn sha256(&self) -> Option<&[u8]> {
        sha256_of(&self.hashes)
    }
}

/// The sha256 digest in a list of (algorithm, digest) pairs.
fn sha256_of(hashes: &[(String, Vec<u8>)]) -> Option<&[u8]> {
    hashes
        .iter()
        .find(|(a, _)| a == "sha256")
        .map(|(_, h)| h.as_slice())
}

/// Timestamp metadata.
#[derive(Debug, Clone)]
pub struct Timestamp {
    pub version: u64,
    pub expires: DateTime<Utc>,
    pub snapshot: MetaFile,
}

/// Snapshot metadata; `meta` is keyed by role name (without `.json`).
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub version: u64,
    pub expires: DateTime<Utc>,
    pub meta: BTreeMap<String, MetaFile>,
}

/// One target file (a tag in Notary).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetFile {
    pub length: u64,
    pub hashes: Vec<(String, Vec<u8>)>,
    pub custom: Option<Value>,
}

impl TargetFile {
    /// The sha256 digest, if listed.
    pub fn sha256(&self) -> Option<&[u8]> {
        sha256_of(&self.hashes)
    }
}

/// A role delegated by a targets role.
#[derive(Debug, Clone)]
pub struct DelegatedRole {
    pub name: String,
    pub keys: RoleKeys,
    /// Notary: path prefixes; TUF: glob patterns. `None` when the role uses hash prefixes.
    pub paths: Option<Vec<String>>,
    pub path_hash_prefixes: Option<Vec<String>>,
    pub terminating: bool,
}

/// Delegations of a targets role.
#[derive(Debug, Clone, Default)]
pub struct Delegations {
    pub keys: BTreeMap<String, PublicKey>,
    pub roles: Vec<DelegatedRole>,
}

/// Targets metadata (top-level or delegated).
#[derive(Debug, Clone)]
pub struct Targets {
    pub version: u64,
    pub expires: DateTime<Utc>,
    pub targets: BTreeMap<String, TargetFile>,
    pub delegations: Option<Delegations>,
}

#[derive(Deserialize)]
struct RawKey {
    keytype: String,
    scheme: Option<String>,
    keyval: RawKeyVal,
}

#[derive(Deserialize)]
struct RawKeyVal {
    public: String,
}

#[derive(Deserialize)]
struct RawRoleKeys {
    keyids: Vec<String>,
    threshold: u64,
}

#[derive(Deserialize)]
struct RawRoot {
    #[serde(rename = "_type")]
    typ: String,
    spec_version: Option<String>,
    #[serde(default)]
    consistent_snapshot: bool,
    expires: String,
    keys: BTreeMap<String, RawKey>,
    roles: BTreeMap<String, RawRoleKeys>,
    version: u64,
}

#[derive(Deserialize)]
struct RawMetaFile {
    version: Option<u64>,
    length: Option<u64>,
    hashes: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
struct RawMetaList {
    #[serde(rename = "_type")]
    typ: String,
    spec_version: Option<String>,
    expires: String,
    version: u64,
    meta: BTreeMap<String, RawMetaFile>,
}

#[derive(Deserialize)]
struct RawTargetFile {
    length: u64,
    hashes: Map<String, Value>,
    custom: Option<Value>,
}

#[derive(Deserialize)]
struct RawDelegatedRole {
    name: String,
    keyids: Vec<String>,
    threshold: u64,
    paths: Option<Vec<String>>,
    path_hash_prefixes: Option<Vec<String>>,
    #[serde(default)]
    terminating: bool,
}

#[derive(Deserialize)]
struct RawDelegations {
    #[serde(default)]
    keys: BTreeMap<String, RawKey>,
    roles: Option<Vec<RawDelegatedRole>>,
    succinct_roles: Option<Value>,
}

#[derive(Deserialize)]
struct RawTargets {
    #[serde(rename = "_type")]
    typ: String,
    spec_version: Option<String>,
    expires: String,
    version: u64,
    #[serde(default)]
    targets: BTreeMap<String, RawTargetFile>,
    delegations: Option<RawDelegations>,
}

fn check_common(
    dialect: Dialect,
    kind: Kind,
    role: &str,
    typ: &str,
    spec: Option<&str>,
    version: u64,
) -> Result<()> {
    let expected = dialect.type_name(kind);
    if typ != expected {
        return Err(TrustError::WrongType {
            role: role.to_string(),
            expected: expected.into(),
            got: typ.into(),
        });
    }
    if version == 0 {
        return Err(TrustError::meta(role, "version must be at least 1"));
    }
    if dialect == Dialect::Tuf {
        let spec = spec.ok_or_else(|| TrustError::meta(role, "missing spec_version"))?;
        let major = spec.split('.').next().unwrap_or("");
        if major != "1" || spec.split('.').count() < 2 {
            return Err(TrustError::meta(
                role,
                format!("unsupported spec_version {spec:?} (rrun speaks TUF 1.x)"),
            ));
        }
    }
    Ok(())
}

fn parse_expires(dialect: Dialect, role: &str, s: &str) -> Result<DateTime<Utc>> {
    if dialect == Dialect::Tuf && !s.ends_with('Z') {
        return Err(TrustError::meta(
            role,
            format!("expires {s:?} is not UTC (YYYY-MM-DDTHH:MM:SSZ)"),
        ));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| TrustError::meta(role, format!("bad expires {s:?}: {e}")))
}

fn parse_hashes(
    dialect: Dialect,
    role: &str,
    raw: &Map<String, Value>,
) -> Result<Vec<(String, Vec<u8>)>> {
    raw.iter()
        .map(|(alg, v)| {
            let s = v
                .as_str()
                .ok_or_else(|| TrustError::meta(role, format!("hash {alg} is not a string")))?;
            let bytes = dialect.decode_bytes(s).ok_or_else(|| {
                TrustError::meta(
                    role,
                    format!(
                        "hash {alg} is not valid {}",
                        if dialect == Dialect::Notary {
                            "base64"
                        } else {
                            "hex"
                        }
                    ),
                )
            })?;
            Ok((alg.clone(), bytes))
        })
        .collect()
}

fn parse_keys(
    dialect: Dialect,
    role: &str,
    raw: BTreeMap<String, RawKey>,
) -> Result<BTreeMap<String, PublicKey>> {
    let mut keys = BTreeMap::new();
    for (id, k) in raw {
        let key = match dialect {
            Dialect::Notary => {
                // Notary: a key whose id is not the hash of its canonical form is a hard error.
                let computed = notary_key_id(&k.keytype, &k.keyval.public);
                if computed != id {
                    return Err(TrustError::KeyIdMismatch {
                        role: role.to_string(),
                        keyid: id,
                        computed,
                    });
                }
                PublicKey::from_notary(&k.keytype, &k.keyval.public)
            }
            Dialect::Tuf => {
                let scheme = k
                    .scheme
                    .ok_or_else(|| TrustError::meta(role, format!("key {id} has no scheme")))?;
                PublicKey::from_tuf(&k.keytype, &scheme, &k.keyval.public)
            }
        };
        keys.insert(id, key);
    }
    Ok(keys)
}

fn parse_role_keys(
    role: &str,
    what: &str,
    raw: RawRoleKeys,
    keys: &BTreeMap<String, PublicKey>,
) -> Result<RoleKeys> {
    if raw.threshold == 0 {
        return Err(TrustError::meta(
            role,
            format!("{what}: threshold must be at least 1"),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for id in &raw.keyids {
        if !keys.contains_key(id) {
            return Err(TrustError::meta(
                role,
                format!("{what}: key {id} is not listed in keys"),
            ));
        }
        if !seen.insert(id) {
            return Err(TrustError::meta(
                role,
                format!("{what}: key {id} listed twice"),
            ));
        }
    }
    Ok(RoleKeys {
        keyids: raw.keyids,
        threshold: raw.threshold,
    })
}

/// Parse root metadata (`signed` part of the envelope).
pub fn parse_root(dialect: Dialect, signed: &Value) -> Result<Root> {
    let role = "root";
    let raw: RawRoot = serde_json::from_value(signed.clone())
        .map_err(|e| TrustError::meta(role, e.to_string()))?;
    check_common(
        dialect,
        Kind::Root,
        role,
        &raw.typ,
        raw.spec_version.as_deref(),
        raw.version,
    )?;
    let expires = parse_expires(dialect, role, &raw.expires)?;
    let keys = parse_keys(dialect, role, raw.keys)?;
    let mut roles = BTreeMap::new();
    for (name, rk) in raw.roles {
        roles.insert(name.clone(), parse_role_keys(role, &name, rk, &keys)?);
    }
    for required in ["root", "timestamp", "snapshot", "targets"] {
        if !roles.contains_key(required) {
            return Err(TrustError::meta(
                role,
                format!("role {required} is missing"),
            ));
        }
    }
    Ok(Root {
        version: raw.version,
        expires,
        consistent_snapshot: raw.consistent_snapshot,
        keys,
        roles,
    })
}

fn parse_meta_list(
    dialect: Dialect,
    kind: Kind,
    role: &str,
    signed: &Value,
) -> Result<(u64, DateTime<Utc>, BTreeMap<String, MetaFile>)> {
    let raw: RawMetaList = serde_json::from_value(signed.clone())
        .map_err(|e| TrustError::meta(role, e.to_string()))?;
    check_common(
        dialect,
        kind,
        role,
        &raw.typ,
        raw.spec_version.as_deref(),
        raw.version,
    )?;
    let expires = parse_expires(dialect, role, &raw.expires)?;
    let mut meta = BTreeMap::new();
    for (name, m) in raw.meta {
        let key = match dialect {
            Dialect::Notary => name,
            Dialect::Tuf => match name.strip_suffix(".json") {
                Some(n) => n.to_string(),
                None => continue,
            },
        };
        if dialect == Dialect::Tuf && m.version.is_none() {
            return Err(TrustError::meta(
                role,
                format!("meta {key}: missing version"),
            ));
        }
        if m.version == Some(0) || m.length == Some(0) && dialect == Dialect::Tuf {
            return Err(TrustError::meta(
                role,
                format!("meta {key}: version and length must be positive"),
            ));
        }
        let hashes = match &m.hashes {
            Some(h) => parse_hashes(dialect, role, h)?,
            None => Vec::new(),
        };
        if m.hashes.is_some() && hashes.is_empty() {
            return Err(TrustError::meta(role, format!("meta {key}: empty hashes")));
        }
        meta.insert(
            key,
            MetaFile {
                version: m.version,
                length: m.length,
                hashes,
            },
        );
    }
    Ok((raw.version, expires, meta))
}

/// Parse timestamp metadata.
pub fn parse_timestamp(dialect: Dialect, signed: &Value) -> Result<Timestamp> {
    let (version, expires, mut meta) =
        parse_meta_list(dialect, Kind::Timestamp, "timestamp", signed)?;
    let snapshot = meta
        .remove("snapshot")
        .ok_or_else(|| TrustError::MissingMeta {
            role: "snapshot".into(),
            parent: "timestamp".into(),
        })?;
    if dialect == Dialect::Notary && (snapshot.sha256().is_none() || snapshot.length.is_none()) {
        // Notary needs the checksum to address snapshot.<sha256>.json and the length to cap it.
        return Err(TrustError::meta(
            "timestamp",
            "snapshot meta needs a sha256 hash and a length",
        ));
    }
    Ok(Timestamp {
        version,
        expires,
        snapshot,
    })
}

/// Parse snapshot metadata.
pub fn parse_snapshot(dialect: Dialect, signed: &Value) -> Result<Snapshot> {
    let (version, expires, meta) = parse_meta_list(dialect, Kind::Snapshot, "snapshot", signed)?;
    if dialect == Dialect::Notary {
        for (name, m) in &meta {
            if m.sha256().is_none() || m.length.is_none() {
                return Err(TrustError::meta(
                    "snapshot",
                    format!("meta {name} needs a sha256 hash and a length"),
                ));
            }
        }
        if !meta.contains_key("targets") {
            return Err(TrustError::MissingMeta {
                role: "targets".into(),
                parent: "snapshot".into(),
            });
        }
    }
    Ok(Snapshot {
        version,
        expires,
        meta,
    })
}

/// Parse targets metadata of `role` (top-level `targets` or a delegated role).
pub fn parse_targets(dialect: Dialect, role: &str, signed: &Value) -> Result<Targets> {
    let raw: RawTargets = serde_json::from_value(signed.clone())
        .map_err(|e| TrustError::meta(role, e.to_string()))?;
    check_common(
        dialect,
        Kind::Targets,
        role,
        &raw.typ,
        raw.spec_version.as_deref(),
        raw.version,
    )?;
    let expires = parse_expires(dialect, role, &raw.expires)?;
    let mut targets = BTreeMap::new();
    for (name, t) in raw.targets {
        let hashes = parse_hashes(dialect, role, &t.hashes)?;
        if hashes.is_empty() {
            return Err(TrustError::meta(
                role,
                format!("target {name:?} has no hashes"),
            ));
        }
        targets.insert(
            name,
            TargetFile {
                length: t.length,
                hashes,
                custom: t.custom,
            },
        );
    }
    let delegations = match raw.delegations {
        None => None,
        Some(d) => {
            if d.succinct_roles.is_some() {
                return Err(TrustError::meta(
                    role,
                    "succinct_roles (TAP 15) delegations are not supported",
                ));
            }
            let keys = parse_keys(dialect, role, d.keys)?;
            let mut roles = Vec::new();
            let mut names = std::collections::BTreeSet::new();
            for r in d.roles.unwrap_or_default() {
                // A delegated role named like a top-level role would shadow it (in caches too).
                if ["root", "timestamp", "snapshot", "targets"].contains(&r.name.as_str())
                    || r.name.is_empty()
                {
                    return Err(TrustError::meta(
                        role,
                        format!("delegated role name {:?} is reserved", r.name),
                    ));
                }
                if !names.insert(r.name.clone()) {
                    return Err(TrustError::meta(
                        role,
                        format!("delegated role {} listed twice", r.name),
                    ));
                }
                if dialect == Dialect::Tuf && r.paths.is_some() == r.path_hash_prefixes.is_some() {
                    return Err(TrustError::meta(role, format!("delegated role {}: exactly one of paths and path_hash_prefixes is required", r.name)));
                }
                let what = format!("delegation {}", r.name);
                let keys_of = parse_role_keys(
                    role,
                    &what,
                    RawRoleKeys {
                        keyids: r.keyids,
                        threshold: r.threshold,
                    },
                    &keys,
                )?;
                roles.push(DelegatedRole {
                    name: r.name,
                    keys: keys_of,
                    paths: r.paths,
                    path_hash_prefixes: r.path_hash_prefixes,
                    terminating: r.terminating,
                });
            }
            Some(Delegations { keys, roles })
        }
    };
    Ok(Targets {
        version: raw.version,
        expires,
        targets,
        delegations,
    })
}

/// Encode digest bytes as Notary metadata does (base64).
pub fn notary_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
