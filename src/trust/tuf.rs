//! Plain TUF 1.0 repositories (the tuf-conformance client protocol): `init` a metadata dir from a
//! trusted root, `refresh` the top-level metadata, and `download` a target found by the
//! specification's pre-order depth-first delegation search. Only verified, non-versioned
//! metadata files are ever written to the metadata dir.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::cache::{percent_encode_all, write_atomic, Layout, MetadataCache};
use super::client::{Limits, Updater};
use super::clock::Clock;
use super::error::{Result, TrustError};
use super::metadata::{DelegatedRole, Dialect, TargetFile};
use super::transport::Transport;
use super::verify::check_length_and_hashes;

fn with_slash(url: &str) -> String {
    if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    }
}

/// `init`: check that `root_json` is a self-signed TUF 1.0 root and store it as
/// `metadata_dir/root.json`. No network access.
pub fn tuf_init(metadata_dir: &Path, root_json: &[u8], clock: &dyn Clock) -> Result<()> {
    // 5.2 load the trusted root metadata file (it must at least sign itself).
    Updater::verify_anchor(Dialect::Tuf, None, root_json, clock.now(), false)?;
    write_atomic(&metadata_dir.join("root.json"), root_json)
}

fn open<'a>(
    metadata_dir: &Path,
    metadata_url: &str,
    transport: &'a dyn Transport,
    clock: &'a dyn Clock,
) -> Result<Updater<'a>> {
    let cache = MetadataCache::new(metadata_dir, Layout::Flat);
    let root = cache.load("root")?.ok_or_else(|| TrustError::Io {
        path: metadata_dir.join("root.json"),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no trusted root: run `init` first",
        ),
    })?;
    let anchor = Updater::verify_anchor(Dialect::Tuf, None, &root, clock.now(), false)?;
    Ok(Updater {
        dialect: Dialect::Tuf,
        gun: None,
        transport,
        clock,
        base: with_slash(metadata_url),
        cache,
        limits: Limits::default(),
        root: anchor,
        timestamp: None,
        snapshot: None,
        targets: BTreeMap::new(),
        warnings: Vec::new(),
    })
}

fn refresh_top_level(u: &mut Updater<'_>) -> Result<()> {
    // 5.3 root, 5.4 timestamp, 5.5 snapshot, 5.6 top-level targets.
    u.update_root()?;
    u.load_cached()?;
    u.update_timestamp()?;
    u.update_snapshot()?;
    u.load_targets("targets", None)
}

/// `refresh`: the full top-level update (root, timestamp, snapshot, targets).
pub fn tuf_refresh(
    metadata_dir: &Path,
    metadata_url: &str,
    transport: &dyn Transport,
    clock: &dyn Clock,
) -> Result<()> {
    let mut u = open(metadata_dir, metadata_url, transport, clock)?;
    refresh_top_level(&mut u)
}

/// `download`: refresh once, then for each name in order find it through the delegation search
/// and store it (after checking length and hashes) as `target_dir/<percent-encoded name>`.
/// Returns the stored paths; stops at the first failure. A cached file with the right length
/// and hashes is not downloaded again.
pub fn tuf_download(
    metadata_dir: &Path,
    metadata_url: &str,
    target_names: &[&str],
    target_base_url: &str,
    target_dir: &Path,
    transport: &dyn Transport,
    clock: &dyn Clock,
) -> Result<Vec<PathBuf>> {
    for name in target_names {
        if name.is_empty() || *name == "." || *name == ".." {
            return Err(TrustError::InvalidName {
                kind: "target",
                name: name.to_string(),
                reason: "not a file name".into(),
            });
        }
    }
    let mut u = open(metadata_dir, metadata_url, transport, clock)?;
    refresh_top_level(&mut u)?;
    target_names
        .iter()
        .map(|name| download_one(&mut u, metadata_url, name, target_base_url, target_dir))
        .collect()
}

fn download_one(
    u: &mut Updater<'_>,
    metadata_url: &str,
    target_name: &str,
    target_base_url: &str,
    target_dir: &Path,
) -> Result<PathBuf> {
    let target = find_target(u, target_name)?.ok_or_else(|| TrustError::UnknownTarget {
        gun: metadata_url.to_string(),
        tag: target_name.to_string(),
    })?;
    let local = target_dir.join(percent_encode_all(target_name));
    if let Ok(existing) = std::fs::read(&local) {
        if check_length_and_hashes(target_name, &existing, Some(target.length), &target.hashes)
            .is_ok()
        {
            return Ok(local);
        }
    }
    // 5.7.3 with consistent snapshots, targets are fetched as <dir>/<hash>.<basename>.
    let path = if u.root.meta.consistent_snapshot {
        let (dir, base) = match target_name.rsplit_once('/') {
            Some((d, b)) => (format!("{d}/"), b),
            None => (String::new(), target_name),
        };
        format!("{dir}{}.{base}", hex::encode(&target.hashes[0].1))
    } else {
        target_name.to_string()
    };
    let url = format!("{}{path}", with_slash(target_base_url));
    let bytes = u.transport.fetch(&url, target.length)?;
    // 5.7.4 verify the target's length and hashes before anything is kept.
    check_length_and_hashes(target_name, &bytes, Some(target.length), &target.hashes)?;
    write_atomic(&local, &bytes)?;
    Ok(local)
}

/// 5.6.7 / 5.7 pre-order depth-first search of the delegation graph, visiting each role once,
/// at most `max_delegations` roles; a terminating delegation that matches stops backtracking.
fn find_target(u: &mut Updater<'_>, name: &str) -> Result<Option<TargetFile>> {
    let mut stack: Vec<(String, Option<String>)> = vec![("targets".to_string(), None)];
    let mut visited = BTreeSet::new();
    while visited.len() <= u.limits.max_delegations {
        let Some((role, parent)) = stack.pop() else {
            break;
        };
        if visited.contains(&role) {
            continue;
        }
        u.load_targets(&role, parent.as_deref())?;
        let t = &u.targets[&role];
        if let Some(f) = t.meta.targets.get(name) {
            return Ok(Some(f.clone()));
        }
        visited.insert(role.clone());
        let Some(d) = &t.meta.delegations else {
            continue;
        };
        let mut children = Vec::new();
        for child in &d.roles {
            if role_matches(child, name) {
                children.push((child.name.clone(), Some(role.clone())));
                if child.terminating {
                    stack.clear();
                    break;
                }
            }
        }
        stack.extend(children.into_iter().rev());
    }
    Ok(None)
}

/// Whether a delegated role is trusted for `target` (glob `paths` or `path_hash_prefixes`).
pub fn role_matches(role: &DelegatedRole, target: &str) -> bool {
    if let Some(prefixes) = &role.path_hash_prefixes {
        let h = hex::encode(Sha256::digest(target.as_bytes()));
        return prefixes.iter().any(|p| h.starts_with(p.as_str()));
    }
    role.paths
        .as_ref()
        .is_some_and(|paths| paths.iter().any(|p| path_matches(p, target)))
}

/// TUF path patterns: shell globs (`*`, `?`, `[...]`) matched segment by segment, so `*` never
/// crosses a `/` and both sides need the same number of segments.
pub fn path_matches(pattern: &str, target: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let t: Vec<&str> = target.split('/').collect();
    p.len() == t.len()
        && p.iter().zip(&t).all(|(p, t)| {
            fnmatch(
                &p.chars().collect::<Vec<_>>(),
                &t.chars().collect::<Vec<_>>(),
            )
        })
}

fn fnmatch(p: &[char], t: &[char]) -> bool {
    match p.first() {
        None => t.is_empty(),
        Some('*') => (0..=t.len()).any(|i| fnmatch(&p[1..], &t[i..])),
        Some('?') => !t.is_empty() && fnmatch(&p[1..], &t[1..]),
        Some('[') => match class(&p[1..]) {
            Some(class) => {
                let Some(&c) = t.first() else { return false };
                let inside = class.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                inside != class.negate && fnmatch(&p[1 + class.len..], &t[1..])
            }
            None => t.first() == Some(&'[') && fnmatch(&p[1..], &t[1..]),
        },
        Some(&c) => t.first() == Some(&c) && fnmatch(&p[1..], &t[1..]),
    }
}

/// A `[...]` character class of a glob.
struct CharClass {
    /// Characters of the pattern it spans after `[`, including the closing `]`.
    len: usize,
    negate: bool,
    ranges: Vec<(char, char)>,
}

/// Parse a `[...]` class body (after `[`); `None` if it is not closed (then `[` is literal).
fn class(p: &[char]) -> Option<CharClass> {
    let mut i = 0;
    let negate = matches!(p.first(), Some('!'));
    if negate {
        i += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    while i < p.len() {
        let c = p[i];
        if c == ']' && !first {
            return Some(CharClass {
                len: i + 1,
                negate,
                ranges: items,
            });
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            items.push((c, p[i + 2]));
            i += 3;
        } else {
            items.push((c, c));
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_per_segment() {
        assert!(path_matches("*", "file.txt"));
        assert!(!path_matches("*", "dir/file.txt"));
        assert!(path_matches("dir/*", "dir/file.txt"));
        assert!(path_matches("dir/*.txt", "dir/a.txt"));
        assert!(!path_matches("dir/*.txt", "dir/a.tar"));
        assert!(path_matches("a/?/c", "a/b/c"));
        assert!(path_matches("f[0-9].bin", "f7.bin"));
        assert!(!path_matches("f[!0-9].bin", "f7.bin"));
        assert!(path_matches("f[!0-9].bin", "fx.bin"));
        assert!(path_matches("a[", "a["));
        assert!(path_matches("*/*", "x/y"));
        assert!(!path_matches("targets/*", "targets"));
    }

    #[test]
    fn hash_prefixes() {
        let h = hex::encode(Sha256::digest(b"file.txt"));
        let role = DelegatedRole {
            name: "bin".into(),
            keys: super::super::metadata::RoleKeys {
                keyids: vec![],
                threshold: 1,
            },
            paths: None,
            path_hash_prefixes: Some(vec![h[..2].to_string()]),
            terminating: false,
        };
        assert!(role_matches(&role, "file.txt"));
    }

    #[test]
    fn delegations_may_not_shadow_top_level_roles() {
        let signed = serde_json::json!({
            "_type": "targets", "spec_version": "1.0.31", "version": 1,
            "expires": "2030-01-01T00:00:00Z", "targets": {},
            "delegations": {"keys": {}, "roles": [
                {"name": "snapshot", "keyids": [], "threshold": 1, "paths": ["*"], "terminating": false}
            ]},
        });
        let e =
            super::super::metadata::parse_targets(Dialect::Tuf, "targets", &signed).unwrap_err();
        assert!(e.to_string().contains("reserved"), "{e}");
    }

    #[test]
    fn duplicate_signature_keyids_are_refused() {
        let doc = br#"{"signed": {"_type": "root"}, "signatures": [
            {"keyid": "ab", "sig": "00"}, {"keyid": "ab", "sig": "00"}]}"#;
        let e = super::super::metadata::parse_envelope(doc, Dialect::Tuf, "root").unwrap_err();
        assert!(e.to_string().contains("two signatures by key ab"), "{e}");
    }
}
