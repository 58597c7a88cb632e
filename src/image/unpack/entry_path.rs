//! `EntryPath`: a tar entry name (or hardlink target) made safe to resolve inside a root.
//!
//! Decisions: a leading `/` is stripped (an absolute name means the same path inside the
//! root, as GNU tar and containerd read it); `.` and empty components are dropped; a `..`
//! component, a NUL byte, a component longer than 255 bytes or a path longer than 4096 bytes
//! is refused. What is left can only name something below the root, lexically.

/// Linux `NAME_MAX`.
pub(super) const NAME_MAX: usize = 255;
/// Linux `PATH_MAX`: longer names could not be opened inside the container anyway.
pub(super) const PATH_MAX: usize = 4096;

/// A validated relative path: components with no `.`, `..` or `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EntryPath {
    components: Vec<Vec<u8>>,
}

impl EntryPath {
    /// Validate a raw name; the error is the reason for refusing it.
    pub(super) fn parse(raw: &[u8]) -> Result<Self, String> {
        if raw.contains(&0) {
            return Err("the name contains a NUL byte".into());
        }
        if raw.len() > PATH_MAX {
            return Err(format!(
                "the name is {} bytes long, more than {PATH_MAX}",
                raw.len()
            ));
        }
        let mut components = Vec::new();
        for c in raw.split(|b| *b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => return Err("the name contains a '..' component".into()),
                c if c.len() > NAME_MAX => {
                    return Err(format!(
                        "a component is {} bytes long, more than {NAME_MAX}",
                        c.len()
                    ))
                }
                c => components.push(c.to_vec()),
            }
        }
        Ok(Self { components })
    }

    /// The components, root first.
    #[cfg(test)]
    pub(super) fn components(&self) -> &[Vec<u8>] {
        &self.components
    }

    /// Parent components and final name; `None` for the root itself.
    pub(super) fn split_last(&self) -> Option<(&[Vec<u8>], &[u8])> {
        self.components
            .split_last()
            .map(|(last, parent)| (parent, last.as_slice()))
    }

    /// The normalised path (`a/b/c`, empty for the root): a key for deferred metadata.
    pub(super) fn key(&self) -> Vec<u8> {
        self.components.join(&b'/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comps(raw: &str) -> Vec<String> {
        EntryPath::parse(raw.as_bytes())
            .unwrap()
            .components()
            .iter()
            .map(|c| String::from_utf8(c.clone()).unwrap())
            .collect()
    }

    #[test]
    fn absolute_and_dot_forms_are_normalised() {
        assert_eq!(comps("/etc/passwd"), ["etc", "passwd"]);
        assert_eq!(comps("///etc//./passwd/"), ["etc", "passwd"]);
        assert_eq!(comps("./usr/bin/"), ["usr", "bin"]);
        assert!(comps("./").is_empty());
        assert!(comps("/").is_empty());
        assert!(comps("").is_empty());
        assert_eq!(comps("a/...b/..c"), ["a", "...b", "..c"]);
    }

    #[test]
    fn traversal_nul_and_overlong_are_refused() {
        for bad in ["..", "../x", "a/../../b", "a/..", "/../etc", "./.."] {
            assert!(EntryPath::parse(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(EntryPath::parse(b"a\0b").is_err());
        assert!(EntryPath::parse("x".repeat(256).as_bytes()).is_err());
        assert!(EntryPath::parse("x".repeat(255).as_bytes()).is_ok());
        let deep = "a/".repeat(2049);
        assert!(EntryPath::parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn split_and_key() {
        let p = EntryPath::parse(b"/a/b/c").unwrap();
        let (parent, name) = p.split_last().unwrap();
        assert_eq!(parent, [b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(name, b"c");
        assert_eq!(p.key(), b"a/b/c");
        assert!(EntryPath::parse(b"./").unwrap().split_last().is_none());
    }
}
