//! The TUF client update workflow shared by both dialects (TUF 1.0 specification section 5):
//! trusted root, root rotation, timestamp, snapshot, targets and delegated targets, with
//! rollback, freeze and mix-and-match protection and size caps on every download.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::cache::{percent_encode_all, MetadataCache};
use super::clock::Clock;
use super::error::{Result, RootSigner, TrustError};
use super::metadata::{
    parse_envelope, parse_root, parse_snapshot, parse_targets, parse_timestamp, Dialect, MetaFile,
    RoleKeys, Root, Snapshot, Targets, Timestamp,
};
use super::transport::Transport;
use super::verify::{
    check_expiry, check_length_and_hashes, check_not_older, count_signatures, verify_threshold,
};

/// Size caps and search limits (python-tuf's defaults).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Cap on any root metadata download.
    pub root: u64,
    /// Cap on timestamp metadata.
    pub timestamp: u64,
    /// Cap on snapshot metadata when the timestamp gives no length.
    pub snapshot: u64,
    /// Cap on targets metadata when the snapshot gives no length.
    pub targets: u64,
    /// Most root versions fetched in one update (5.3).
    pub max_root_rotations: u64,
    /// Most delegated roles visited in one search (5.7).
    pub max_delegations: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            root: 512_000,
            timestamp: 16_384,
            snapshot: 2_000_000,
            targets: 5_000_000,
            max_root_rotations: 256,
            max_delegations: 32,
        }
    }
}

/// Metadata that passed every check, with its exact bytes and the key ids that signed it.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    pub meta: T,
    pub raw: Vec<u8>,
    pub signers: Vec<String>,
}

/// The state of one update: what is trusted so far, and how to fetch more.
#[derive(Debug)]
pub(crate) struct Updater<'a> {
    pub dialect: Dialect,
    /// Notary: the GUN that root certificates must name.
    pub gun: Option<String>,
    pub transport: &'a dyn Transport,
    pub clock: &'a dyn Clock,
    /// Metadata base URL, ending in `/`.
    pub base: String,
    pub cache: MetadataCache,
    pub limits: Limits,
    pub root: Verified<Root>,
    pub timestamp: Option<Verified<Timestamp>>,
    pub snapshot: Option<Verified<Snapshot>>,
    /// Targets roles loaded in this update: `targets` and delegated roles by name.
    pub targets: BTreeMap<String, Verified<Targets>>,
    /// Roles that failed verification and were skipped (Notary delegations only).
    pub warnings: Vec<String>,
}

/// Hex sha256 of bytes.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

impl<'a> Updater<'a> {
    /// Verify `bytes` as a trust anchor root (TUF 5.2): parseable, self-signed to threshold and,
    /// for Notary, anchored in root certificates naming the GUN. Expiry is checked later (5.3.10).
    pub fn verify_anchor(
        dialect: Dialect,
        gun: Option<&str>,
        bytes: &[u8],
        now: DateTime<Utc>,
        check_cert_expiry: bool,
    ) -> Result<Verified<Root>> {
        let env = parse_envelope(bytes, dialect, "root")?;
        let root = parse_root(dialect, &env.signed)?;
        let role = Self::own_root_role(dialect, gun, &root, now, check_cert_expiry)?;
        let signers = verify_threshold(dialect, "root", &env, &root.keys, &role)?;
        Ok(Verified {
            meta: root,
            raw: bytes.to_vec(),
            signers,
        })
    }

    /// The root role as far as it can sign its own root: for Notary only the keys whose
    /// certificates pass the checks (CN = GUN, validity, no SHA-1, RSA >= 2048).
    fn own_root_role(
        dialect: Dialect,
        gun: Option<&str>,
        root: &Root,
        now: DateTime<Utc>,
        check_cert_expiry: bool,
    ) -> Result<RoleKeys> {
        let role = root.role("root")?.clone();
        let (Dialect::Notary, Some(gun)) = (dialect, gun) else {
            return Ok(role);
        };
        let mut valid = Vec::new();
        let mut first_err = None;
        for id in &role.keyids {
            let key = &root.keys[id];
            match key.check_root_certificate(gun, now, check_cert_expiry) {
                Ok(()) => valid.push(id.clone()),
                Err(reason) => {
                    first_err.get_or_insert(TrustError::RootCertificate {
                        keyid: id.clone(),
                        reason,
                    });
                }
            }
        }
        if valid.is_empty() {
            return Err(first_err.unwrap_or_else(|| TrustError::meta("root", "no root keys")));
        }
        Ok(RoleKeys {
            keyids: valid,
            threshold: role.threshold,
        })
    }

    /// A new root must be signed by a threshold of the trusted root's root keys (5.3.4) and of
    /// its own (5.3.5), and (for the N+1 walk) have exactly the next version (5.3.5).
    pub fn verify_root_update(&self, bytes: &[u8], exact_next: bool) -> Result<Verified<Root>> {
        let old = &self.root.meta;
        let env = parse_envelope(bytes, self.dialect, "root")?;
        let new = parse_root(self.dialect, &env.signed)?;
        // 5.3.4 check for an arbitrary software attack: signed by the old root's threshold.
        let old_role = old.role("root")?;
        let by_old = count_signatures(self.dialect, &env, &old.keys, old_role);
        if (by_old.valid.len() as u64) < old_role.threshold {
            return Err(TrustError::RootRotation {
                from: old.version,
                to: new.version,
                signer: RootSigner::Old,
                have: by_old.valid.len(),
                need: old_role.threshold as usize,
            });
        }
        // 5.3.5 signed by the new root's own threshold (Notary: by valid root certificates).
        let now = self.clock.now();
        let new_role = Self::own_root_role(self.dialect, self.gun.as_deref(), &new, now, false)?;
        let by_new = count_signatures(self.dialect, &env, &new.keys, &new_role);
        if (by_new.valid.len() as u64) < new_role.threshold {
            return Err(TrustError::RootRotation {
                from: old.version,
                to: new.version,
                signer: RootSigner::New,
                have: by_new.valid.len(),
                need: new_role.threshold as usize,
            });
        }
        // 5.3.5 check for a rollback attack: the version must be N+1 (or above N off the walk).
        if new.version <= old.version {
            return Err(TrustError::Rollback {
                role: "root".into(),
                cached: old.version,
                got: new.version,
            });
        }
        if exact_next && new.version != old.version + 1 {
            return Err(TrustError::VersionMismatch {
                role: "root".into(),
                expected: old.version + 1,
                got: new.version,
            });
        }
        Ok(Verified {
            meta: new,
            raw: bytes.to_vec(),
            signers: by_new.valid,
        })
    }

    fn set_root(&mut self, new: Verified<Root>) -> Result<()> {
        // 5.3.8 persist root metadata.
        self.cache.store("root", &new.raw)?;
        self.root = new;
        Ok(())
    }

    /// 5.3 update the root role: fetch N+1, N+2, ... until the server has no newer version.
    pub fn update_root(&mut self) -> Result<()> {
        let start = self.root.meta.clone();
        let first = self.root.meta.version + 1;
        for next in first..first.saturating_add(self.limits.max_root_rotations) {
            // 5.3.3 download version N+1 of the root metadata file.
            let url = format!("{}{next}.root.json", self.base);
            let bytes = match self.transport.fetch(&url, self.limits.root) {
                Ok(b) => b,
                Err(e) if e.is_not_found() => break,
                Err(e) => return Err(e),
            };
            let new = self.verify_root_update(&bytes, true)?;
            // 5.3.7 set the trusted root metadata file to the new root.
            self.set_root(new)?;
        }
        self.check_final_root()?;
        self.forget_if_rotated(&start)
    }

    /// 5.3.10 check for a freeze attack on the final root (and Notary's certificate validity).
    pub fn check_final_root(&self) -> Result<()> {
        let now = self.clock.now();
        check_expiry("root", self.root.meta.expires, now)?;
        if self.dialect == Dialect::Notary {
            Self::own_root_role(
                self.dialect,
                self.gun.as_deref(),
                &self.root.meta,
                now,
                true,
            )?;
        }
        Ok(())
    }

    /// 5.3.11 if the timestamp or snapshot keys were rotated, delete the trusted timestamp and
    /// snapshot metadata (fast-forward attack recovery).
    fn forget_if_rotated(&mut self, before: &Root) -> Result<()> {
        let changed = |role: &str| -> bool {
            match (before.roles.get(role), self.root.meta.roles.get(role)) {
                (Some(a), Some(b)) => a.threshold != b.threshold || a.keyids != b.keyids,
                _ => true,
            }
        };
        if changed("timestamp") || changed("snapshot") {
            self.cache.remove("timestamp")?;
            self.cache.remove("snapshot")?;
            self.timestamp = None;
            self.snapshot = None;
        }
        Ok(())
    }

    /// Load cached timestamp and snapshot that still verify against the current root, as the
    /// reference for rollback checks (python-tuf's "intermediate" trusted metadata).
    pub fn load_cached(&mut self) -> Result<()> {
        if let Some(bytes) = self.cache.load("timestamp")? {
            self.timestamp = self.verify_timestamp_sigs(&bytes).ok();
        }
        if let Some(bytes) = self.cache.load("snapshot")? {
            self.snapshot = self.verify_snapshot_sigs(&bytes).ok();
        }
        Ok(())
    }

    fn verify_timestamp_sigs(&self, bytes: &[u8]) -> Result<Verified<Timestamp>> {
        let env = parse_envelope(bytes, self.dialect, "timestamp")?;
        let ts = parse_timestamp(self.dialect, &env.signed)?;
        let signers = verify_threshold(
            self.dialect,
            "timestamp",
            &env,
            &self.root.meta.keys,
            self.root.meta.role("timestamp")?,
        )?;
        Ok(Verified {
            meta: ts,
            raw: bytes.to_vec(),
            signers,
        })
    }

    fn verify_snapshot_sigs(&self, bytes: &[u8]) -> Result<Verified<Snapshot>> {
        let env = parse_envelope(bytes, self.dialect, "snapshot")?;
        let sn = parse_snapshot(self.dialect, &env.signed)?;
        let signers = verify_threshold(
            self.dialect,
            "snapshot",
            &env,
            &self.root.meta.keys,
            self.root.meta.role("snapshot")?,
        )?;
        Ok(Verified {
            meta: sn,
            raw: bytes.to_vec(),
            signers,
        })
    }

    /// 5.4 update the timestamp role.
    pub fn update_timestamp(&mut self) -> Result<()> {
        // 5.4.1 download the timestamp metadata file, up to a fixed number of bytes.
        let url = format!("{}timestamp.json", self.base);
        let bytes = self.transport.fetch(&url, self.limits.timestamp)?;
        // 5.4.2 check signatures against the root's timestamp keys.
        let new = self.verify_timestamp_sigs(&bytes)?;
        if let Some(old) = &self.timestamp {
            // 5.4.3.1 check for a rollback attack on the timestamp version.
            check_not_older("timestamp", old.meta.version, new.meta.version)?;
            if self.dialect == Dialect::Tuf {
                if new.meta.version == old.meta.version {
                    // Same version: keep the trusted one (python-tuf discards the new copy).
                    check_expiry("timestamp", old.meta.expires, self.clock.now())?;
                    return Ok(());
                }
                // 5.4.3.2 the snapshot version must not go down either.
                if let (Some(o), Some(n)) = (old.meta.snapshot.version, new.meta.snapshot.version) {
                    check_not_older("snapshot", o, n)?;
                }
            }
        }
        // 5.4.4 check for a freeze attack.
        check_expiry("timestamp", new.meta.expires, self.clock.now())?;
        // 5.4.5 persist timestamp metadata.
        self.cache.store("timestamp", &new.raw)?;
        self.timestamp = Some(new);
        Ok(())
    }

    fn trusted_timestamp(&self) -> Result<&Verified<Timestamp>> {
        self.timestamp
            .as_ref()
            .ok_or_else(|| TrustError::meta("timestamp", "not loaded"))
    }

    /// URL of a metadata file referenced by `meta` in its parent.
    fn meta_url(&self, role: &str, meta: &MetaFile) -> Result<String> {
        match self.dialect {
            // Notary fetches everything below timestamp by checksum: `<role>.<sha256>.json`.
            Dialect::Notary => {
                let sum = meta
                    .sha256()
                    .ok_or_else(|| TrustError::meta(role, "no sha256 to address it by"))?;
                Ok(format!("{}{role}.{}.json", self.base, hex::encode(sum)))
            }
            Dialect::Tuf => {
                let name = percent_encode_all(role);
                match (self.root.meta.consistent_snapshot, meta.version) {
                    (true, Some(v)) => Ok(format!("{}{v}.{name}.json", self.base)),
                    _ => Ok(format!("{}{name}.json", self.base)),
                }
            }
        }
    }

    /// 5.5 update the snapshot role.
    pub fn update_snapshot(&mut self) -> Result<()> {
        let now = self.clock.now();
        let ts = self.trusted_timestamp()?;
        check_expiry("timestamp", ts.meta.expires, now)?;
        let meta = ts.meta.snapshot.clone();
        // A trusted local copy is final if it is what the timestamp names (by hash for Notary,
        // by version for TUF) and not expired: no download then.
        if let Some(local) = &self.snapshot {
            let same = match self.dialect {
                Dialect::Notary => {
                    check_length_and_hashes("snapshot", &local.raw, meta.length, &meta.hashes)
                        .is_ok()
                }
                Dialect::Tuf => Some(local.meta.version) == meta.version,
            };
            if same && local.meta.expires > now {
                return Ok(());
            }
        }
        // 5.5.1 download snapshot metadata, at most the length the timestamp gives.
        let url = self.meta_url("snapshot", &meta)?;
        let bytes = self
            .transport
            .fetch(&url, meta.length.unwrap_or(self.limits.snapshot))?;
        // 5.5.2 check against the timestamp role's snapshot hash and length.
        check_length_and_hashes("snapshot", &bytes, meta.length, &meta.hashes)?;
        // 5.5.3 check for an arbitrary software attack: signatures.
        let new = self.verify_snapshot_sigs(&bytes)?;
        if let Some(old) = &self.snapshot {
            match self.dialect {
                Dialect::Notary => check_not_older("snapshot", old.meta.version, new.meta.version)?,
                // 5.5.5 check for a rollback attack: every targets file still listed, no version down.
                Dialect::Tuf => {
                    for (name, m) in &old.meta.meta {
                        let n = new
                            .meta
                            .meta
                            .get(name)
                            .ok_or_else(|| TrustError::MissingMeta {
                                role: name.clone(),
                                parent: "snapshot".into(),
                            })?;
                        if let (Some(o), Some(v)) = (m.version, n.version) {
                            check_not_older(name, o, v)?;
                        }
                    }
                }
            }
        }
        // 5.5.6 check for a freeze attack.
        check_expiry("snapshot", new.meta.expires, now)?;
        // 5.5.4 the version must be the one the timestamp lists.
        if let Some(v) = meta.version {
            expect_version("snapshot", v, new.meta.version)?;
        }
        // 5.5.7 persist snapshot metadata.
        self.cache.store("snapshot", &new.raw)?;
        self.snapshot = Some(new);
        Ok(())
    }

    fn trusted_snapshot(&self) -> Result<&Verified<Snapshot>> {
        self.snapshot
            .as_ref()
            .ok_or_else(|| TrustError::meta("snapshot", "not loaded"))
    }

    /// 5.6 update the top-level targets role, or (5.6.x for delegations) the delegated `role`
    /// whose keys are listed by `parent` (already loaded).
    pub fn load_targets(&mut self, role: &str, parent: Option<&str>) -> Result<()> {
        let now = self.clock.now();
        let sn = self.trusted_snapshot()?;
        check_expiry("snapshot", sn.meta.expires, now)?;
        let meta = sn
            .meta
            .meta
            .get(role)
            .cloned()
            .ok_or_else(|| TrustError::MissingMeta {
                role: role.to_string(),
                parent: "snapshot".into(),
            })?;
        let (keys, role_keys) =
            match parent {
                None => (
                    self.root.meta.keys.clone(),
                    self.root.meta.role("targets")?.clone(),
                ),
                Some(p) => {
                    let parent_t = self.targets.get(p).ok_or_else(|| {
                        TrustError::meta(role, format!("delegating role {p} not loaded"))
                    })?;
                    let d = parent_t.meta.delegations.as_ref().ok_or_else(|| {
                        TrustError::MissingMeta {
                            role: role.to_string(),
                            parent: p.to_string(),
                        }
                    })?;
                    let dr = d.roles.iter().find(|r| r.name == role).ok_or_else(|| {
                        TrustError::MissingMeta {
                            role: role.to_string(),
                            parent: p.to_string(),
                        }
                    })?;
                    (d.keys.clone(), dr.keys.clone())
                }
            };
        if let Some(loaded) = self.targets.get(role) {
            // Loaded already, maybe through another delegator: it must also verify against
            // this delegator's keys, or it would inherit authority from the other path.
            let env = parse_envelope(&loaded.raw, self.dialect, role)?;
            verify_threshold(self.dialect, role, &env, &keys, &role_keys)?;
            return Ok(());
        }
        let verify = |bytes: &[u8]| -> Result<Verified<Targets>> {
            let env = parse_envelope(bytes, self.dialect, role)?;
            let t = parse_targets(self.dialect, role, &env.signed)?;
            // 5.6.3 check for an arbitrary software attack: signatures by the delegator's keys.
            let signers = verify_threshold(self.dialect, role, &env, &keys, &role_keys)?;
            Ok(Verified {
                meta: t,
                raw: bytes.to_vec(),
                signers,
            })
        };
        // The cached copy: final if it is what the snapshot names and not expired, else kept
        // only as the rollback reference.
        let cached = match self.cache.load(role)? {
            Some(bytes) => verify(&bytes).ok(),
            None => None,
        };
        if let Some(local) = &cached {
            let same = match self.dialect {
                Dialect::Notary => {
                    check_length_and_hashes(role, &local.raw, meta.length, &meta.hashes).is_ok()
                }
                Dialect::Tuf => Some(local.meta.version) == meta.version,
            };
            if same && local.meta.expires > now {
                self.targets
                    .insert(role.to_string(), cached.expect("checked above"));
                return Ok(());
            }
        }
        // 5.6.1 download, at most the length the snapshot gives.
        let url = self.meta_url(role, &meta)?;
        let bytes = self
            .transport
            .fetch(&url, meta.length.unwrap_or(self.limits.targets))?;
        // 5.6.2 check against the snapshot role's hashes and length (mix-and-match).
        check_length_and_hashes(role, &bytes, meta.length, &meta.hashes)?;
        let new = verify(&bytes)?;
        // Rollback, Notary: never below the cached version (its snapshot meta has no versions).
        // TUF protects targets through the snapshot's versions (5.5.5 above) instead, which
        // lets a snapshot key rotation recover from a fast-forward attack on targets.
        if let (Dialect::Notary, Some(old)) = (self.dialect, &cached) {
            check_not_older(role, old.meta.version, new.meta.version)?;
        }
        // 5.6.4 check against the snapshot role's version.
        if let Some(v) = meta.version {
            expect_version(role, v, new.meta.version)?;
        }
        // 5.6.5 check for a freeze attack.
        check_expiry(role, new.meta.expires, now)?;
        // 5.6.6 persist targets metadata.
        self.cache.store(role, &new.raw)?;
        self.targets.insert(role.to_string(), new);
        Ok(())
    }
}

/// The version a parent names: lower is a rollback, higher a mismatch.
fn expect_version(role: &str, expected: u64, got: u64) -> Result<()> {
    if got < expected {
        return Err(TrustError::Rollback {
            role: role.to_string(),
            cached: expected,
            got,
        });
    }
    if got != expected {
        return Err(TrustError::VersionMismatch {
            role: role.to_string(),
            expected,
            got,
        });
    }
    Ok(())
}
