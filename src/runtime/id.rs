//! Validated container identifiers: the 64-hex `ContainerId` and the user-chosen `ContainerName`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::{Result, RuntimeError};

/// A container id: 64 lower-case hex digits, safe as a path component and a cgroup name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerId(String);

impl ContainerId {
    /// A fresh random id.
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).map_err(|e| {
            RuntimeError::io(
                "failed to read random bytes",
                std::io::Error::other(e.to_string()),
            )
        })?;
        Ok(ContainerId(hex::encode(bytes)))
    }

    /// The full id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 digits, as `ps` shows them.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl FromStr for ContainerId {
    type Err = RuntimeError;

    fn from_str(s: &str) -> Result<Self> {
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(ContainerId(s.to_owned()))
        } else {
            Err(RuntimeError::InvalidId { id: s.to_owned() })
        }
    }
}

impl TryFrom<String> for ContainerId {
    type Error = RuntimeError;

    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<ContainerId> for String {
    fn from(id: ContainerId) -> String {
        id.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A container name: `[A-Za-z0-9][A-Za-z0-9_.-]*`, at most 128 characters (Docker's rule).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerName(String);

impl ContainerName {
    /// The default name of a container: its short id.
    pub fn for_id(id: &ContainerId) -> Self {
        ContainerName(id.short().to_owned())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ContainerName {
    type Err = RuntimeError;

    fn from_str(s: &str) -> Result<Self> {
        let mut bytes = s.bytes();
        let ok = s.len() <= 128
            && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
            && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if ok {
            Ok(ContainerName(s.to_owned()))
        } else {
            Err(RuntimeError::InvalidName { name: s.to_owned() })
        }
    }
}

impl TryFrom<String> for ContainerName {
    type Error = RuntimeError;

    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<ContainerName> for String {
    fn from(n: ContainerName) -> String {
        n.0
    }
}

impl fmt::Display for ContainerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_lower_hex() {
        let id = ContainerId::generate().unwrap();
        assert_eq!(id.as_str().len(), 64);
        assert_eq!(id.as_str().parse::<ContainerId>().unwrap(), id);
        assert_eq!(id.short().len(), 12);
        for bad in [
            "",
            "../etc",
            &"A".repeat(64),
            &"a".repeat(63),
            &"g".repeat(64),
        ] {
            assert!(bad.parse::<ContainerId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn names_follow_docker_rules() {
        for good in ["web", "a", "my_app.1-x", "0abc"] {
            assert!(good.parse::<ContainerName>().is_ok(), "{good}");
        }
        for bad in ["", "-x", ".x", "a/b", "a b", "../x", &"a".repeat(129)] {
            assert!(bad.parse::<ContainerName>().is_err(), "{bad}");
        }
    }
}
