//! The on-disk store of trusted metadata for one repository: plain role names
//! (`root.json`, `targets/releases.json` or `targets%2Freleases.json`), atomic writes.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::{Result, TrustError};

/// How delegated role names map to file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Notary: `targets/releases` -> `targets/releases.json` (a sub-directory).
    Nested,
    /// TUF clients (python-tuf, tuf-conformance): the name percent-encoded, one flat directory.
    Flat,
}

/// Verified metadata of one repository, kept between runs for rollback protection.
#[derive(Debug, Clone)]
pub struct MetadataCache {
    dir: PathBuf,
    layout: Layout,
}

impl MetadataCache {
    /// A cache rooted at `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>, layout: Layout) -> Self {
        MetadataCache {
            dir: dir.into(),
            layout,
        }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds `role`'s metadata.
    pub fn path(&self, role: &str) -> Result<PathBuf> {
        match self.layout {
            Layout::Nested => {
                check_role_path(role)?;
                Ok(self.dir.join(format!("{role}.json")))
            }
            Layout::Flat => Ok(self.dir.join(format!("{}.json", percent_encode_all(role)))),
        }
    }

    /// The cached bytes of `role`, if any.
    pub fn load(&self, role: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(role)?;
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(TrustError::io(path, e)),
        }
    }

    /// Store `bytes` as `role` atomically (temp file in the same directory, fsync, rename).
    /// Bytes identical to the cached file (the usual warm update: the same timestamp again)
    /// are not rewritten, so that a lookup with nothing new pays no fsync.
    pub fn store(&self, role: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path(role)?;
        if std::fs::read(&path).is_ok_and(|cached| cached == bytes) {
            return Ok(());
        }
        write_atomic(&path, bytes)
    }

    /// Forget `role` (TUF 5.3.11 after a key rotation of timestamp or snapshot).
    pub fn remove(&self, role: &str) -> Result<()> {
        let path = self.path(role)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(TrustError::io(path, e)),
        }
    }
}

/// Role names used as paths must be plain relative names.
fn check_role_path(role: &str) -> Result<()> {
    let ok = !role.is_empty()
        && role
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
        && role
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(TrustError::InvalidName {
            kind: "role",
            name: role.to_string(),
            reason: "not a safe role name".into(),
        })
    }
}

/// Write `bytes` to `path` atomically: a temp file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| TrustError::io(dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| TrustError::io(dir, e))?;
    tmp.write_all(bytes)
        .map_err(|e| TrustError::io(tmp.path(), e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| TrustError::io(tmp.path(), e))?;
    tmp.persist(path)
        .map_err(|e| TrustError::io(path, e.error))?;
    Ok(())
}

/// Percent-encode everything but ASCII letters, digits and `_.-~` (Python's `quote(s, "")`).
pub fn percent_encode_all(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        let c = MetadataCache::new("/c", Layout::Nested);
        assert_eq!(
            c.path("targets/releases").unwrap(),
            Path::new("/c/targets/releases.json")
        );
        assert!(c.path("targets/../x").is_err());
        let f = MetadataCache::new("/c", Layout::Flat);
        assert_eq!(f.path("a/b c").unwrap(), Path::new("/c/a%2Fb%20c.json"));
        assert_eq!(f.path("..").unwrap(), Path::new("/c/...json"));
    }

    #[test]
    fn store_load_remove() {
        let d = tempfile::tempdir().unwrap();
        let c = MetadataCache::new(d.path().join("x"), Layout::Nested);
        assert!(c.load("root").unwrap().is_none());
        c.store("targets/releases", b"abc").unwrap();
        assert_eq!(c.load("targets/releases").unwrap().unwrap(), b"abc");
        // the same bytes leave the file alone; other bytes replace it (a new inode)
        use std::os::unix::fs::MetadataExt as _;
        let inode = || {
            std::fs::metadata(c.path("targets/releases").unwrap())
                .unwrap()
                .ino()
        };
        let first = inode();
        c.store("targets/releases", b"abc").unwrap();
        assert_eq!(inode(), first);
        c.store("targets/releases", b"abd").unwrap();
        assert_ne!(inode(), first);
        assert_eq!(c.load("targets/releases").unwrap().unwrap(), b"abd");
        c.remove("targets/releases").unwrap();
        assert!(c.load("targets/releases").unwrap().is_none());
    }
}
