//! Notary signing: encrypted key storage under a trust dir, repository initialisation (root
//! certificate CN = GUN, server-managed snapshot and timestamp keys), signing and revoking tags,
//! adding and removing signers (delegations), and publishing through the server's multipart API.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{Duration, SecondsFormat, Utc};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::cache::write_atomic;
use super::canonical::canonical_json;
use super::error::{Result, TrustError};
use super::keys::{notary_key_from_pem, notary_key_id, PublicKey, SigningKey};
use super::metadata::{notary_b64, parse_envelope, Dialect};
use super::notary::{is_direct_child, Gun, NotaryClient, NotaryRepo, RELEASES_ROLE};
use super::transport::Transport;

/// Environment variable holding the root key passphrase.
pub const ROOT_PASSPHRASE_ENV: &str = "RRUN_TRUST_ROOT_PASSPHRASE";
/// Environment variable holding the repository (targets and delegation keys) passphrase.
pub const REPOSITORY_PASSPHRASE_ENV: &str = "RRUN_TRUST_REPOSITORY_PASSPHRASE";

/// Root certificate and root metadata lifetime (Notary's default).
const ROOT_VALIDITY_DAYS: i64 = 3650;
/// Targets and delegation metadata lifetime (Notary's default).
const TARGETS_VALIDITY_DAYS: i64 = 3 * 365;
/// Cap on server responses while signing.
const RESPONSE_CAP: u64 = 1 << 20;

/// Passphrases for the keys, given by the caller (environment or prompt). Never printed.
#[derive(Default, Clone)]
pub struct Passphrases {
    /// Encrypts the root key.
    pub root: Option<Zeroizing<String>>,
    /// Encrypts repository (targets) keys and delegation keys.
    pub repository: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for Passphrases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passphrases")
            .field("root", &self.root.as_ref().map(|_| "<set>"))
            .field("repository", &self.repository.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Passphrases {
    /// Read `RRUN_TRUST_ROOT_PASSPHRASE` and `RRUN_TRUST_REPOSITORY_PASSPHRASE`.
    pub fn from_env() -> Self {
        let get = |k: &str| std::env::var(k).ok().map(Zeroizing::new);
        Passphrases {
            root: get(ROOT_PASSPHRASE_ENV),
            repository: get(REPOSITORY_PASSPHRASE_ENV),
        }
    }
}

/// Private keys under a trust directory, each an encrypted PKCS#8 PEM file (mode 0600):
/// `private/root.key`, `private/repos/<GUN>/targets.key`, `private/signers/<NAME>.key` (+ `.pub`).
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
}

fn check_signer_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !ok || name == "releases" {
        return Err(TrustError::InvalidName {
            kind: "signer name",
            name: name.to_string(),
            reason: "use lower-case letters, digits, '_' and '-' (and not \"releases\")".into(),
        });
    }
    Ok(())
}

impl KeyStore {
    /// The key store in `trust_dir`.
    pub fn new(trust_dir: &Path) -> Self {
        KeyStore {
            dir: trust_dir.to_path_buf(),
        }
    }

    fn private(&self) -> PathBuf {
        self.dir.join("private")
    }

    fn root_path(&self) -> PathBuf {
        self.private().join("root.key")
    }

    fn targets_path(&self, gun: &Gun) -> PathBuf {
        self.private()
            .join("repos")
            .join(gun.as_str())
            .join("targets.key")
    }

    fn signer_path(&self, name: &str, ext: &str) -> PathBuf {
        self.private().join("signers").join(format!("{name}.{ext}"))
    }

    fn read_key(
        path: &Path,
        pass: Option<&Zeroizing<String>>,
        env: &'static str,
    ) -> Result<Option<SigningKey>> {
        let pem = match std::fs::read(path) {
            Ok(p) => Zeroizing::new(p),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(TrustError::io(path, e)),
        };
        let pass = pass.ok_or(TrustError::Passphrase {
            path: path.to_path_buf(),
            env,
        })?;
        SigningKey::from_pem(&pem, Some(pass.as_bytes()))
            .map(Some)
            .map_err(|_| TrustError::Passphrase {
                path: path.to_path_buf(),
                env,
            })
    }

    fn write_key(
        path: &Path,
        key: &SigningKey,
        pass: Option<&Zeroizing<String>>,
        env: &'static str,
    ) -> Result<()> {
        let pass = pass.ok_or(TrustError::Passphrase {
            path: path.to_path_buf(),
            env,
        })?;
        if pass.is_empty() {
            return Err(TrustError::Passphrase {
                path: path.to_path_buf(),
                env,
            });
        }
        let pem = key.to_encrypted_pem(pass.as_bytes())?;
        write_atomic(path, &pem)?;
        restrict_dir(&self_private_dir(path))
    }

    /// Key files that group or others can read (the caller warns about them).
    pub fn exposed_key_files(&self) -> Vec<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let mut out = Vec::new();
        let mut dirs = vec![self.private()];
        while let Some(d) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                match e.metadata() {
                    Ok(m) if m.is_dir() => dirs.push(p),
                    Ok(m)
                        if p.extension().is_some_and(|x| x == "key")
                            && m.permissions().mode() & 0o077 != 0 =>
                    {
                        out.push(p)
                    }
                    _ => {}
                }
            }
        }
        out.sort();
        out
    }

    /// The root key, created on first use.
    pub fn root_key(&self, pass: &Passphrases) -> Result<SigningKey> {
        let path = self.root_path();
        if let Some(k) = Self::read_key(&path, pass.root.as_ref(), ROOT_PASSPHRASE_ENV)? {
            return Ok(k);
        }
        let k = SigningKey::generate()?;
        Self::write_key(&path, &k, pass.root.as_ref(), ROOT_PASSPHRASE_ENV)?;
        Ok(k)
    }

    /// The repository (targets) key of `gun`, if held.
    pub fn targets_key(&self, gun: &Gun, pass: &Passphrases) -> Result<Option<SigningKey>> {
        Self::read_key(
            &self.targets_path(gun),
            pass.repository.as_ref(),
            REPOSITORY_PASSPHRASE_ENV,
        )
    }

    fn new_targets_key(&self, gun: &Gun, pass: &Passphrases) -> Result<SigningKey> {
        let k = SigningKey::generate()?;
        Self::write_key(
            &self.targets_path(gun),
            &k,
            pass.repository.as_ref(),
            REPOSITORY_PASSPHRASE_ENV,
        )?;
        Ok(k)
    }

    /// `rrun trust key generate NAME`: a new ECDSA P-256 signer key; returns its public PEM
    /// (also kept as `private/signers/NAME.pub`).
    pub fn generate_signer(&self, name: &str, pass: &Passphrases) -> Result<Vec<u8>> {
        check_signer_name(name)?;
        let key_path = self.signer_path(name, "key");
        if key_path.exists() {
            return Err(TrustError::InvalidName {
                kind: "signer name",
                name: name.to_string(),
                reason: "a key with this name already exists".into(),
            });
        }
        let k = SigningKey::generate()?;
        Self::write_key(
            &key_path,
            &k,
            pass.repository.as_ref(),
            REPOSITORY_PASSPHRASE_ENV,
        )?;
        let public = k.public_pem()?;
        write_atomic(&self.signer_path(name, "pub"), &public)?;
        Ok(public)
    }

    /// Import a signer's private key (PEM, optionally encrypted with `import_pass`).
    pub fn import_signer(
        &self,
        name: &str,
        pem: &[u8],
        import_pass: Option<&[u8]>,
        pass: &Passphrases,
    ) -> Result<()> {
        check_signer_name(name)?;
        let k = SigningKey::from_pem(pem, import_pass).map_err(TrustError::Key)?;
        Self::write_key(
            &self.signer_path(name, "key"),
            &k,
            pass.repository.as_ref(),
            REPOSITORY_PASSPHRASE_ENV,
        )?;
        write_atomic(&self.signer_path(name, "pub"), &k.public_pem()?)
    }

    /// Signer keys whose public half matches `key`: (name, decrypted key).
    fn signer_for(&self, key: &PublicKey, pass: &Passphrases) -> Result<Option<SigningKey>> {
        let dir = self.private().join("signers");
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(TrustError::io(dir, e)),
        };
        let Some(want) = key.spki_der() else {
            return Ok(None);
        };
        for entry in entries {
            let path = entry.map_err(|e| TrustError::io(&dir, e))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("pub") {
                continue;
            }
            let pem = std::fs::read(&path).map_err(|e| TrustError::io(&path, e))?;
            let Ok(public) = openssl::pkey::PKey::public_key_from_pem(&pem) else {
                continue;
            };
            if public.public_key_to_der().ok().as_deref() != Some(want.as_slice()) {
                continue;
            }
            let key_path = path.with_extension("key");
            if let Some(k) = Self::read_key(
                &key_path,
                pass.repository.as_ref(),
                REPOSITORY_PASSPHRASE_ENV,
            )? {
                return Ok(Some(k));
            }
        }
        Ok(None)
    }
}

fn self_private_dir(path: &Path) -> PathBuf {
    path.ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == "private"))
        .unwrap_or(path)
        .to_path_buf()
}

fn restrict_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if dir.is_dir() {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| TrustError::io(dir, e))?;
    }
    Ok(())
}

/// Sign `signed` with each (key id, key) and wrap it in a Notary envelope, byte for byte as
/// Notary's Go code marshals `data.Signed`: `{"signed":<canonical>,"signatures":[{"keyid",
/// "method","sig"}]}` in that field order. notary-server hashes its own re-marshalled copy of
/// every role for the snapshot, so any other byte layout would make the served file unreachable
/// by checksum. `signed` must hold exactly the fields Notary's types have.
pub fn sign_envelope(signed: &Value, keys: &[(&str, &SigningKey)]) -> Result<Vec<u8>> {
    let msg = canonical_json(signed)?;
    let mut out = Vec::with_capacity(msg.len() + 160 * keys.len() + 32);
    out.extend_from_slice(b"{\"signed\":");
    out.extend_from_slice(&msg);
    out.extend_from_slice(b",\"signatures\":[");
    for (i, (id, key)) in keys.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let sig = notary_b64(&key.sign_raw(&msg)?);
        // key ids are hex and base64 has no characters JSON would escape
        out.extend_from_slice(
            format!(
                "{{\"keyid\":{},\"method\":\"ecdsa\",\"sig\":\"{sig}\"}}",
                json!(id)
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

/// POST metadata files to `<base>` (`/v2/<GUN>/_trust/tuf/`) as Notary's multipart form
/// (`files` fields, file name = role); the server then signs snapshot and timestamp.
pub fn publish(
    transport: &dyn Transport,
    base_url: &str,
    files: &[(String, Vec<u8>)],
) -> Result<()> {
    let mut rnd = [0u8; 16];
    getrandom::getrandom(&mut rnd).map_err(|e| TrustError::Transport {
        url: base_url.into(),
        reason: e.to_string(),
    })?;
    let boundary = format!("rrun-{}", hex::encode(rnd));
    let mut body = Vec::new();
    for (role, bytes) in files {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"files\"; filename=\"{role}\"\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(b"Content-Type: application/octet-stream\r\n\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    transport.post(
        base_url,
        &format!("multipart/form-data; boundary={boundary}"),
        &body,
        RESPONSE_CAP,
    )?;
    Ok(())
}

fn rfc3339(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// What a signing operation changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOutcome {
    /// True if this call created the repository on the server.
    pub initialized: bool,
    /// The roles that were re-signed and published.
    pub roles: Vec<String>,
}

/// Signs and publishes Notary metadata for repositories on one trust server.
#[derive(Debug)]
pub struct NotarySigner<'a> {
    client: &'a NotaryClient,
    keys: KeyStore,
    pass: Passphrases,
    targets_validity: Duration,
}

/// A targets role being edited: its `signed` value and whether it existed.
struct Editing {
    signed: Value,
}

impl Editing {
    fn from_raw(role: &str, raw: &[u8]) -> Result<Self> {
        let env = parse_envelope(raw, Dialect::Notary, role)?;
        Ok(Editing { signed: env.signed })
    }

    fn empty(expires: String) -> Self {
        Editing {
            signed: json!({"_type": "Targets", "delegations": {"keys": {}, "roles": []}, "expires": expires, "targets": {}, "version": 0}),
        }
    }

    fn bump(&mut self, expires: String) {
        let v = self.signed["version"].as_u64().unwrap_or(0);
        self.signed["version"] = json!(v + 1);
        self.signed["expires"] = json!(expires);
    }

    fn targets_mut(&mut self) -> &mut serde_json::Map<String, Value> {
        if !self.signed["targets"].is_object() {
            self.signed["targets"] = json!({});
        }
        self.signed["targets"].as_object_mut().expect("object")
    }

    fn delegations_mut(&mut self) -> &mut serde_json::Map<String, Value> {
        if !self.signed["delegations"].is_object() {
            self.signed["delegations"] = json!({"keys": {}, "roles": []});
        }
        let d = self.signed["delegations"].as_object_mut().expect("object");
        d.entry("keys").or_insert_with(|| json!({}));
        d.entry("roles").or_insert_with(|| json!([]));
        d
    }
}

impl<'a> NotarySigner<'a> {
    /// A signer using `client` for reads and publishing, with keys under `trust_dir`.
    pub fn new(client: &'a NotaryClient, trust_dir: &Path, passphrases: Passphrases) -> Self {
        NotarySigner {
            client,
            keys: KeyStore::new(trust_dir),
            pass: passphrases,
            targets_validity: Duration::days(TARGETS_VALIDITY_DAYS),
        }
    }

    /// How long newly signed targets and delegation metadata stay valid (default 3 years).
    pub fn with_targets_validity(mut self, validity: Duration) -> Self {
        self.targets_validity = validity;
        self
    }

    /// The key store.
    pub fn key_store(&self) -> &KeyStore {
        &self.keys
    }

    fn targets_expires(&self) -> String {
        rfc3339(self.client.clock().now() + self.targets_validity)
    }

    /// Whether the server has a repository for `gun`.
    fn exists(&self, gun: &Gun) -> Result<bool> {
        let url = format!("{}root.json", self.client.base_url(gun));
        match self.client.transport().fetch(&url, 1 << 20) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn server_key(&self, gun: &Gun, role: &str) -> Result<(String, Value)> {
        let url = format!("{}{role}.key", self.client.base_url(gun));
        let bytes = self.client.transport().fetch(&url, RESPONSE_CAP)?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| TrustError::meta(role, format!("server key: {e}")))?;
        let kt = v["keytype"]
            .as_str()
            .ok_or_else(|| TrustError::meta(role, "server key has no keytype"))?;
        let public = v["keyval"]["public"]
            .as_str()
            .ok_or_else(|| TrustError::meta(role, "server key has no public value"))?;
        Ok((
            notary_key_id(kt, public),
            json!({"keytype": kt, "keyval": {"private": null, "public": public}}),
        ))
    }

    /// Create the repository: root (x509 root certificate CN = GUN, own root key), a new
    /// targets key, snapshot and timestamp keys fetched from the server. Returns the root file
    /// and the initial targets role to be published together.
    fn initialize(&self, gun: &Gun) -> Result<(Vec<u8>, Editing, SigningKey)> {
        let now = self.client.clock().now();
        // The server says the repository does not exist. If a root is pinned for it, that is
        // either a server that lost its data or an attacker hiding the repository: never
        // replace the pin silently.
        let cache = self.client.cache(gun);
        if cache.load("root")?.is_some() {
            return Err(TrustError::PinnedRootConflict {
                gun: gun.to_string(),
                path: cache.dir().to_path_buf(),
            });
        }
        let root_key = self.keys.root_key(&self.pass)?;
        let targets_key = match self.keys.targets_key(gun, &self.pass)? {
            Some(k) => k,
            None => self.keys.new_targets_key(gun, &self.pass)?,
        };
        let cert =
            root_key.self_signed_cert(gun.as_str(), now, Duration::days(ROOT_VALIDITY_DAYS))?;
        let (root_id, root_obj, _) = notary_key_from_pem(&cert.to_pem()?)?;
        let (targets_id, targets_obj) = targets_key.notary_public()?;
        let (ts_id, ts_obj) = self.server_key(gun, "timestamp")?;
        let (sn_id, sn_obj) = self.server_key(gun, "snapshot")?;
        let role = |id: &str| json!({"keyids": [id], "threshold": 1});
        let root = json!({
            "_type": "Root",
            "consistent_snapshot": false,
            "expires": rfc3339(now + Duration::days(ROOT_VALIDITY_DAYS)),
            "keys": {root_id.clone(): root_obj, targets_id.clone(): targets_obj, ts_id.clone(): ts_obj, sn_id.clone(): sn_obj},
            "roles": {"root": role(&root_id), "snapshot": role(&sn_id), "targets": role(&targets_id), "timestamp": role(&ts_id)},
            "version": 1,
        });
        let root_bytes = sign_envelope(&root, &[(&root_id, &root_key)])?;
        // The repository anchor is the root we just made: pin it.
        cache.store("root", &root_bytes)?;
        Ok((
            root_bytes,
            Editing::empty(self.targets_expires()),
            targets_key,
        ))
    }

    /// Publish the first metadata of a repository `initialize` made. If the server does not
    /// take it, the root pinned by `initialize` is dropped again: it anchors nothing, and left
    /// in place it would make every later attempt fail with `PinnedRootConflict`.
    fn publish_new(&self, gun: &Gun, files: &[(String, Vec<u8>)]) -> Result<()> {
        let published = publish(self.client.transport(), &self.client.base_url(gun), files);
        if published.is_err() {
            self.client.cache(gun).remove("root")?;
        }
        published
    }

    /// The verified repository, or `None` if the server has none for `gun`.
    fn current(&self, gun: &Gun) -> Result<Option<NotaryRepo>> {
        if !self.exists(gun)? {
            return Ok(None);
        }
        self.client.update(gun.as_str()).map(Some)
    }

    fn targets_key_or_err(&self, gun: &Gun, what: &str) -> Result<SigningKey> {
        self.keys
            .targets_key(gun, &self.pass)?
            .ok_or_else(|| TrustError::NoSigningKey {
                gun: gun.to_string(),
                reason: format!(
                    "{what} needs the repository (targets) key, which this trust dir does not hold"
                ),
            })
    }

    fn sign_targets(&self, repo: &NotaryRepo, ed: &Editing, key: &SigningKey) -> Result<Vec<u8>> {
        let id = key_id_in(
            &repo.root.meta.keys,
            &repo.root.meta.role("targets")?.keyids,
            key,
        )
        .ok_or_else(|| TrustError::NoSigningKey {
            gun: repo.gun.to_string(),
            reason: "the repository key held here is not the targets key of the published root"
                .into(),
        })?;
        sign_envelope(&ed.signed, &[(&id, key)])
    }

    /// Delegations directly below `targets` for which a signer key is held: (role, key id, key).
    fn held_delegations(&self, repo: &NotaryRepo) -> Result<Vec<(String, String, SigningKey)>> {
        let mut out = Vec::new();
        let Some(d) = repo
            .targets
            .get("targets")
            .and_then(|t| t.meta.delegations.as_ref())
        else {
            return Ok(out);
        };
        for role in &d.roles {
            if !is_direct_child("targets", &role.name) {
                continue;
            }
            for id in &role.keys.keyids {
                let Some(pk) = d.keys.get(id) else { continue };
                if let Some(k) = self.keys.signer_for(pk, &self.pass)? {
                    out.push((role.name.clone(), id.clone(), k));
                    break;
                }
            }
        }
        Ok(out)
    }

    fn role_for_edit(&self, repo: &NotaryRepo, role: &str) -> Result<Editing> {
        match repo.targets.get(role) {
            Some(t) => Editing::from_raw(role, &t.raw),
            None => Ok(Editing::empty(self.targets_expires())),
        }
    }

    /// `rrun trust sign GUN:TAG`: put `tag -> (digest, size)` into every delegation directly
    /// below `targets` whose key is held (docker's behaviour, `targets/releases` included), or
    /// into `targets` with the repository key. Creates the repository on first use.
    pub fn sign(&self, gun: &str, tag: &str, digest: &str, size: u64) -> Result<SignOutcome> {
        let gun = Gun::new(gun)?;
        check_tag(tag)?;
        let hex_digest = digest.strip_prefix("sha256:").unwrap_or(digest);
        let raw = hex::decode(hex_digest)
            .ok()
            .filter(|d| d.len() == 32)
            .ok_or_else(|| TrustError::InvalidName {
                kind: "digest",
                name: digest.to_string(),
                reason: "expected sha256:<64 hex digits>".into(),
            })?;
        let entry = json!({"hashes": {"sha256": notary_b64(&raw)}, "length": size});
        let Some(repo) = self.current(&gun)? else {
            let (root_bytes, mut ed, key) = self.initialize(&gun)?;
            ed.targets_mut().insert(tag.to_string(), entry);
            ed.bump(self.targets_expires());
            let (targets_id, _) = key.notary_public()?;
            let targets_bytes = sign_envelope(&ed.signed, &[(&targets_id, &key)])?;
            self.publish_new(
                &gun,
                &[
                    ("root".into(), root_bytes),
                    ("targets".into(), targets_bytes),
                ],
            )?;
            return Ok(SignOutcome {
                initialized: true,
                roles: vec!["targets".into()],
            });
        };
        let held = self.held_delegations(&repo)?;
        let mut files = Vec::new();
        let mut roles = Vec::new();
        if held.is_empty() {
            let key = self.targets_key_or_err(&gun, "signing without a delegation key")?;
            let mut ed = self.role_for_edit(&repo, "targets")?;
            ed.targets_mut().insert(tag.to_string(), entry);
            ed.bump(self.targets_expires());
            files.push(("targets".to_string(), self.sign_targets(&repo, &ed, &key)?));
            roles.push("targets".to_string());
        } else {
            for (role, id, key) in held {
                let mut ed = self.role_for_edit(&repo, &role)?;
                ed.targets_mut().insert(tag.to_string(), entry.clone());
                ed.bump(self.targets_expires());
                files.push((role.clone(), sign_envelope(&ed.signed, &[(&id, &key)])?));
                roles.push(role);
            }
        }
        publish(self.client.transport(), &self.client.base_url(&gun), &files)?;
        Ok(SignOutcome {
            initialized: false,
            roles,
        })
    }

    /// `rrun trust revoke GUN:TAG`: remove the tag from every role this trust dir can sign.
    pub fn revoke(&self, gun: &str, tag: &str) -> Result<SignOutcome> {
        let gun = Gun::new(gun)?;
        let repo = self
            .current(&gun)?
            .ok_or_else(|| TrustError::UnknownTarget {
                gun: gun.to_string(),
                tag: tag.to_string(),
            })?;
        let mut files = Vec::new();
        let mut roles = Vec::new();
        for (role, id, key) in self.held_delegations(&repo)? {
            if repo
                .targets
                .get(&role)
                .is_some_and(|t| t.meta.targets.contains_key(tag))
            {
                let mut ed = self.role_for_edit(&repo, &role)?;
                ed.targets_mut().remove(tag);
                ed.bump(self.targets_expires());
                files.push((role.clone(), sign_envelope(&ed.signed, &[(&id, &key)])?));
                roles.push(role);
            }
        }
        if repo
            .targets
            .get("targets")
            .is_some_and(|t| t.meta.targets.contains_key(tag))
        {
            if let Some(key) = self.keys.targets_key(&gun, &self.pass)? {
                let mut ed = self.role_for_edit(&repo, "targets")?;
                ed.targets_mut().remove(tag);
                ed.bump(self.targets_expires());
                files.push(("targets".to_string(), self.sign_targets(&repo, &ed, &key)?));
                roles.push("targets".to_string());
            }
        }
        if files.is_empty() {
            return Err(TrustError::UnknownTarget {
                gun: gun.to_string(),
                tag: tag.to_string(),
            });
        }
        publish(self.client.transport(), &self.client.base_url(&gun), &files)?;
        Ok(SignOutcome {
            initialized: false,
            roles,
        })
    }

    /// `rrun trust signer add NAME GUN`: delegate `targets/releases` and `targets/NAME` (paths
    /// all) to the public key (`PUBLIC KEY` or `CERTIFICATE` PEM), as `docker trust signer add`.
    pub fn add_signer(&self, gun: &str, name: &str, pubkey_pem: &[u8]) -> Result<SignOutcome> {
        let gun = Gun::new(gun)?;
        check_signer_name(name)?;
        let (key_id, key_obj, _) = notary_key_from_pem(pubkey_pem)?;
        let (repo, root_bytes, mut ed, key) = match self.current(&gun)? {
            Some(repo) => {
                let key = self.targets_key_or_err(&gun, "adding a signer")?;
                let ed = self.role_for_edit(&repo, "targets")?;
                (Some(repo), None, ed, key)
            }
            None => {
                let (root_bytes, ed, key) = self.initialize(&gun)?;
                (None, Some(root_bytes), ed, key)
            }
        };
        let d = ed.delegations_mut();
        d["keys"]
            .as_object_mut()
            .expect("object")
            .insert(key_id.clone(), key_obj);
        let roles = d["roles"]
            .as_array_mut()
            .ok_or_else(|| TrustError::meta("targets", "delegations.roles is not a list"))?;
        for role_name in [RELEASES_ROLE.to_string(), format!("targets/{name}")] {
            match roles.iter_mut().find(|r| r["name"] == role_name.as_str()) {
                Some(r) => {
                    let ids = r["keyids"]
                        .as_array_mut()
                        .ok_or_else(|| TrustError::meta("targets", "keyids is not a list"))?;
                    if !ids.iter().any(|i| i == key_id.as_str()) {
                        ids.push(json!(key_id));
                    }
                }
                None => roles.push(
                    json!({"keyids": [key_id], "name": role_name, "paths": [""], "threshold": 1}),
                ),
            }
        }
        ed.bump(self.targets_expires());
        let targets_bytes = match &repo {
            Some(repo) => self.sign_targets(repo, &ed, &key)?,
            None => {
                let (id, _) = key.notary_public()?;
                sign_envelope(&ed.signed, &[(&id, &key)])?
            }
        };
        let mut files = Vec::new();
        if let Some(r) = root_bytes {
            files.push(("root".to_string(), r));
        }
        files.push(("targets".to_string(), targets_bytes));
        if repo.is_none() {
            self.publish_new(&gun, &files)?;
        } else {
            publish(self.client.transport(), &self.client.base_url(&gun), &files)?;
        }
        Ok(SignOutcome {
            initialized: repo.is_none(),
            roles: vec!["targets".into()],
        })
    }

    /// `rrun trust signer remove NAME GUN`: drop `targets/NAME` and its keys from
    /// `targets/releases` (removing `targets/releases` when no key is left).
    pub fn remove_signer(&self, gun: &str, name: &str) -> Result<SignOutcome> {
        let gun = Gun::new(gun)?;
        check_signer_name(name)?;
        let role_name = format!("targets/{name}");
        let repo = self
            .current(&gun)?
            .ok_or_else(|| TrustError::NoSigningKey {
                gun: gun.to_string(),
                reason: "the repository does not exist".into(),
            })?;
        let key = self.targets_key_or_err(&gun, "removing a signer")?;
        let mut ed = self.role_for_edit(&repo, "targets")?;
        let d = ed.delegations_mut();
        let roles = d["roles"]
            .as_array_mut()
            .ok_or_else(|| TrustError::meta("targets", "delegations.roles is not a list"))?;
        let pos = roles
            .iter()
            .position(|r| r["name"] == role_name.as_str())
            .ok_or_else(|| TrustError::InvalidName {
                kind: "signer name",
                name: name.to_string(),
                reason: format!("{gun} has no signer {name}"),
            })?;
        let removed = roles.remove(pos);
        let gone: Vec<Value> = removed["keyids"].as_array().cloned().unwrap_or_default();
        // Keys still used by another signer role stay in targets/releases.
        let still_used = |id: &Value| {
            roles.iter().any(|r| {
                r["name"] != RELEASES_ROLE && r["keyids"].as_array().is_some_and(|a| a.contains(id))
            })
        };
        let drop: Vec<Value> = gone.iter().filter(|id| !still_used(id)).cloned().collect();
        if let Some(rel) = roles.iter_mut().find(|r| r["name"] == RELEASES_ROLE) {
            if let Some(ids) = rel["keyids"].as_array_mut() {
                ids.retain(|i| !drop.contains(i));
            }
        }
        roles.retain(|r| {
            !(r["name"] == RELEASES_ROLE && r["keyids"].as_array().is_some_and(|a| a.is_empty()))
        });
        let used: Vec<Value> = roles
            .iter()
            .flat_map(|r| r["keyids"].as_array().cloned().unwrap_or_default())
            .collect();
        if let Some(keys) = d["keys"].as_object_mut() {
            keys.retain(|id, _| used.contains(&json!(id)));
        }
        ed.bump(self.targets_expires());
        let bytes = self.sign_targets(&repo, &ed, &key)?;
        publish(
            self.client.transport(),
            &self.client.base_url(&gun),
            &[("targets".to_string(), bytes)],
        )?;
        Ok(SignOutcome {
            initialized: false,
            roles: vec!["targets".into()],
        })
    }
}

/// The key id under which `ids` lists the public half of `key`.
fn key_id_in(
    keys: &BTreeMap<String, PublicKey>,
    ids: &[String],
    key: &SigningKey,
) -> Option<String> {
    ids.iter()
        .find(|id| keys.get(*id).is_some_and(|pk| key.matches(pk)))
        .cloned()
}

/// Docker tag syntax: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn check_tag(tag: &str) -> Result<()> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(TrustError::InvalidName {
            kind: "tag",
            name: tag.to_string(),
            reason: "tags are [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        check_signer_name("alice").unwrap();
        check_signer_name("ci-bot_2").unwrap();
        for bad in ["", "releases", "Alice", "-x", "a/b", "a.b"] {
            assert!(check_signer_name(bad).is_err(), "{bad}");
        }
        check_tag("latest").unwrap();
        check_tag("v1.2.3-rc_1").unwrap();
        assert!(check_tag(".x").is_err());
        assert!(check_tag("a/b").is_err());
    }

    #[test]
    fn envelope_signatures_verify() {
        let k = SigningKey::generate().unwrap();
        let (id, obj) = k.notary_public().unwrap();
        let signed = json!({"_type": "Targets", "version": 1});
        let bytes = sign_envelope(&signed, &[(&id, &k)]).unwrap();
        let env = parse_envelope(&bytes, Dialect::Notary, "targets").unwrap();
        let pk = PublicKey::from_notary("ecdsa", obj["keyval"]["public"].as_str().unwrap());
        assert!(pk.verify_notary(
            "ecdsa",
            &env.message,
            env.signatures[0].sig.as_ref().unwrap()
        ));
    }

    #[test]
    fn keystore_requires_passphrases() {
        let d = tempfile::tempdir().unwrap();
        let ks = KeyStore::new(d.path());
        let none = Passphrases::default();
        assert!(matches!(
            ks.generate_signer("alice", &none),
            Err(TrustError::Passphrase { .. })
        ));
        let pass = Passphrases {
            root: None,
            repository: Some(Zeroizing::new("pw".into())),
        };
        let public = ks.generate_signer("alice", &pass).unwrap();
        assert!(String::from_utf8_lossy(&public).contains("PUBLIC KEY"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.path().join("private/signers/alice.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "key file must not be group/world readable");
        let (_, _, pk) = notary_key_from_pem(&public).unwrap();
        assert!(ks.signer_for(&pk, &pass).unwrap().is_some());
        let wrong = Passphrases {
            root: None,
            repository: Some(Zeroizing::new("nope".into())),
        };
        assert!(matches!(
            ks.signer_for(&pk, &wrong),
            Err(TrustError::Passphrase { .. })
        ));
    }

    #[test]
    fn exposed_key_files_are_reported() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let ks = KeyStore::new(d.path());
        let pass = Passphrases {
            root: None,
            repository: Some(Zeroizing::new("pw".into())),
        };
        ks.generate_signer("alice", &pass).unwrap();
        assert!(ks.exposed_key_files().is_empty());
        let key = d.path().join("private/signers/alice.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(ks.exposed_key_files(), vec![key]);
    }

    /// A client of a Notary-shaped directory tree (read-only: every publish fails).
    fn file_client(server: &Path, cache: &Path) -> NotaryClient {
        use std::sync::Arc;
        NotaryClient::new(
            &format!("file://{}", server.display()),
            cache,
            Arc::new(super::super::transport::FilesystemTransport),
            Arc::new(super::super::clock::SystemClock),
        )
    }

    fn both_passphrases() -> Passphrases {
        Passphrases {
            root: Some(Zeroizing::new("r".into())),
            repository: Some(Zeroizing::new("p".into())),
        }
    }

    #[test]
    fn a_missing_repository_never_replaces_a_pinned_root() {
        let server = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let gun = "example.com/app";
        std::fs::create_dir_all(cache.path().join(gun)).unwrap();
        std::fs::write(cache.path().join(gun).join("root.json"), b"{}").unwrap();
        let client = file_client(server.path(), cache.path());
        let trust = tempfile::tempdir().unwrap();
        let pass = both_passphrases();
        let digest = format!("sha256:{}", "ab".repeat(32));
        let e = NotarySigner::new(&client, trust.path(), pass)
            .sign(gun, "v1", &digest, 1)
            .unwrap_err();
        assert!(matches!(e, TrustError::PinnedRootConflict { .. }), "{e}");
        assert_eq!(
            std::fs::read(cache.path().join(gun).join("root.json")).unwrap(),
            b"{}"
        );
    }

    #[test]
    fn a_failed_first_publish_leaves_no_pinned_root_behind() {
        // regression: the root pinned while creating a repository stayed pinned when the
        // server refused the publish, so every later `sign` failed with PinnedRootConflict
        let server = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let gun = "example.com/app";
        let tuf = server.path().join("v2").join(gun).join("_trust/tuf");
        std::fs::create_dir_all(&tuf).unwrap();
        for role in ["timestamp", "snapshot"] {
            let k = SigningKey::generate().unwrap();
            let (_, obj) = k.notary_public().unwrap();
            std::fs::write(tuf.join(format!("{role}.key")), obj.to_string()).unwrap();
        }
        let client = file_client(server.path(), cache.path());
        let trust = tempfile::tempdir().unwrap();
        let pass = both_passphrases();
        let signer = NotarySigner::new(&client, trust.path(), pass);
        let digest = format!("sha256:{}", "ab".repeat(32));
        let no_pin = || {
            let cache = client.cache(&Gun::new(gun).unwrap());
            cache.load("root").unwrap().is_none()
        };
        for _ in 0..2 {
            let e = signer.sign(gun, "v1", &digest, 1).unwrap_err();
            assert!(matches!(e, TrustError::Transport { .. }), "{e}");
            assert!(no_pin());
        }
        let public = signer
            .key_store()
            .generate_signer("alice", &signer.pass)
            .unwrap();
        let e = signer.add_signer(gun, "alice", &public).unwrap_err();
        assert!(matches!(e, TrustError::Transport { .. }), "{e}");
        assert!(no_pin());
    }

    #[test]
    fn imported_signer_keys_are_found_by_their_public_half() {
        let d = tempfile::tempdir().unwrap();
        let ks = KeyStore::new(d.path());
        let pass = Passphrases {
            root: None,
            repository: Some(Zeroizing::new("pw".into())),
        };
        let k = SigningKey::generate().unwrap();
        let pem = k.to_encrypted_pem(b"import-pw").unwrap();
        assert!(ks
            .import_signer("bob", &pem, Some(b"wrong"), &pass)
            .is_err());
        ks.import_signer("bob", &pem, Some(b"import-pw"), &pass)
            .unwrap();
        let (_, _, pk) = notary_key_from_pem(&k.public_pem().unwrap()).unwrap();
        let found = ks.signer_for(&pk, &pass).unwrap().unwrap();
        assert_eq!(found.spki_der().unwrap(), k.spki_der().unwrap());
    }
}
