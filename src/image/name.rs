//! Registry image names as docker writes them (`busybox`, `127.0.0.1:5000/app:1`,
//! `ghcr.io/org/app@sha256:...`), validated and normalised (`docker.io/library/busybox:latest`).

use std::fmt;
use std::str::FromStr;

use super::digest::Digest;
use super::error::{ImageError, Result};

/// The registry docker uses when a name has no domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The host that serves [`DEFAULT_DOMAIN`]'s registry API.
pub const DEFAULT_API_HOST: &str = "registry-1.docker.io";
/// The tag used when a name has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";

/// A validated, normalised registry reference: domain, repository path, tag and/or digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// The registry domain, `docker.io` for names without one (may hold a `:port`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The host:port that serves the registry API (`registry-1.docker.io` for docker.io).
    pub fn api_host(&self) -> &str {
        if self.domain == DEFAULT_DOMAIN {
            DEFAULT_API_HOST
        } else {
            &self.domain
        }
    }

    /// The repository path inside the registry (`library/busybox`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference pins one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `domain/repository` (docker's "name", the Notary GUN).
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.repository)
    }

    /// The same repository pinned to `digest` (the tag is kept for display).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Self> {
        validate_tag(tag).map_err(|reason| invalid(tag, reason))?;
        Ok(Self {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// What the registry API's manifest endpoint takes: the digest if pinned, else the tag.
    pub fn api_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// True when the registry is on the loopback interface (plain HTTP is used, as docker does).
    pub fn is_loopback(&self) -> bool {
        let host = match self.domain.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => self.domain.as_str(),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The short form docker prints (`busybox:latest` for `docker.io/library/busybox:latest`).
    pub fn familiar(&self) -> String {
        let full = self.to_string();
        let short = full.strip_prefix("docker.io/").unwrap_or(&full);
        short
            .strip_prefix("library/")
            .filter(|s| !s.contains('/'))
            .unwrap_or(short)
            .to_string()
    }
}

fn invalid(reference: &str, reason: impl Into<String>) -> ImageError {
    ImageError::InvalidReference {
        reference: reference.to_string(),
        reason: reason.into(),
    }
}

/// Tag grammar of the distribution spec: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn validate_tag(tag: &str) -> std::result::Result<(), String> {
    let ok_first = tag
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let ok_rest = tag
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok_first || !ok_rest || tag.len() > 128 {
        return Err(format!(
            "invalid tag {tag:?}: a tag is up to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
        ));
    }
    Ok(())
}

/// One path component: lower-case alphanumerics joined by `.`, `_`, `__` or runs of `-`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// A domain: host name labels or an IP, optionally `:port`, or a bracketed IPv6 address.
fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && !p.contains(']') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) || p.parse::<u16>().is_err() {
            return false;
        }
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

impl FromStr for Reference {
    type Err = ImageError;

    fn from_str(s: &str) -> Result<Self> {
        if s.is_empty() {
            return Err(invalid(s, "empty image name"));
        }
        if s.len() > 4096 {
            return Err(invalid(&s[..64], "image name is too long"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (
                r,
                Some(d.parse::<Digest>().map_err(|e| invalid(s, e.to_string()))?),
            ),
            None => (s, None),
        };
        // A ':' after the last '/' starts the tag; one before it belongs to a domain port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].find(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            validate_tag(t).map_err(|reason| invalid(s, reason))?;
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':']) || first == "localhost" || first.starts_with('[') =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        let domain = if domain == "index.docker.io" {
            DEFAULT_DOMAIN.to_string()
        } else {
            domain
        };
        if !valid_domain(&domain) {
            return Err(invalid(s, format!("invalid registry domain {domain:?}")));
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(invalid(s, "repository name must be lowercase"));
        }
        if path.is_empty() || !path.split('/').all(valid_component) {
            return Err(invalid(
                s,
                "invalid repository name: use lower-case letters, digits and '.', '_', '-' separated by '/'",
            ));
        }
        let repository = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if domain.len() + 1 + repository.len() > 255 {
            return Err(invalid(s, "repository name is longer than 255 characters"));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (None, Some(_)) => None,
        };
        Ok(Self {
            domain,
            repository,
            tag,
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn docker_hub_names_are_normalised() {
        assert_eq!(r("busybox").to_string(), "docker.io/library/busybox:latest");
        assert_eq!(
            r("busybox:1.36").to_string(),
            "docker.io/library/busybox:1.36"
        );
        assert_eq!(r("user/app").to_string(), "docker.io/user/app:latest");
        assert_eq!(
            r("index.docker.io/library/busybox").to_string(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(r("busybox").api_host(), "registry-1.docker.io");
        assert_eq!(r("busybox").familiar(), "busybox:latest");
        assert_eq!(r("user/app:1").familiar(), "user/app:1");
    }

    #[test]
    fn domains_ports_and_digests() {
        let x = r("127.0.0.1:5000/app:1");
        assert_eq!(
            (x.domain(), x.repository(), x.tag()),
            ("127.0.0.1:5000", "app", Some("1"))
        );
        assert!(x.is_loopback());
        assert_eq!(x.api_reference(), "1");
        assert_eq!(x.name(), "127.0.0.1:5000/app");
        let d = format!("sha256:{}", "a".repeat(64));
        let y = r(&format!("localhost:5000/a/b@{d}"));
        assert_eq!(y.tag(), None);
        assert_eq!(y.api_reference(), d);
        assert!(y.is_loopback());
        let z = r(&format!("ghcr.io/org/app:v1@{d}"));
        assert_eq!(z.to_string(), format!("ghcr.io/org/app:v1@{d}"));
        assert!(!z.is_loopback());
        assert!(r("[::1]:5000/app").is_loopback());
        assert_eq!(r("localhost/app").domain(), "localhost");
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in [
            "",
            "Busybox",
            "app:",
            "app:-x",
            "app@sha256:12",
            "a//b",
            "-a",
            "a-",
            "host:99999/app",
            "a/../b",
            "app:tag with space",
            &format!("app:{}", "t".repeat(129)),
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad:?} was accepted");
        }
    }
}
