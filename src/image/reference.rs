//! Image references of the layout transports: `oci:PATH[:TAG]` and `oci-archive:PATH[:TAG]`,
//! split at the first colon after the transport as skopeo does (a PATH cannot hold `:`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::error::{ImageError, Result};

/// An image in an OCI image layout directory or an OCI layout tar archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// `oci:PATH[:TAG]`: an OCI image layout directory.
    Oci { path: PathBuf, tag: Option<String> },
    /// `oci-archive:PATH[:TAG]`: a tar of an OCI image layout.
    OciArchive { path: PathBuf, tag: Option<String> },
}

impl ImageRef {
    /// The directory or archive path.
    pub fn path(&self) -> &Path {
        match self {
            Self::Oci { path, .. } | Self::OciArchive { path, .. } => path,
        }
    }

    /// The tag (`org.opencontainers.image.ref.name`), if one was given.
    pub fn tag(&self) -> Option<&str> {
        match self {
            Self::Oci { tag, .. } | Self::OciArchive { tag, .. } => tag.as_deref(),
        }
    }
}

/// Check a tag against the image-spec grammar of `org.opencontainers.image.ref.name`:
/// components of alphanumerics joined by `-._:@+` (or `--`), separated by `/`.
pub fn validate_tag(tag: &str) -> std::result::Result<(), String> {
    if tag.is_empty() {
        return Err("the tag after ':' is empty".into());
    }
    if tag.len() > 256 {
        return Err("the tag is longer than 256 characters".into());
    }
    for component in tag.split('/') {
        let bytes = component.as_bytes();
        let alnum = |b: u8| b.is_ascii_alphanumeric();
        let sep = |b: u8| matches!(b, b'-' | b'.' | b'_' | b':' | b'@' | b'+');
        if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
            return Err(format!(
                "tag component {component:?} must start and end with a letter or digit"
            ));
        }
        let mut i = 0;
        while i < bytes.len() {
            if alnum(bytes[i]) {
                i += 1;
            } else if bytes[i] == b'-'
                && bytes.get(i + 1) == Some(&b'-')
                && bytes.get(i + 2).copied().is_some_and(alnum)
            {
                i += 2;
            } else if sep(bytes[i]) && bytes.get(i + 1).copied().is_some_and(alnum) {
                i += 1;
            } else {
                return Err(format!(
                    "tag {tag:?} holds a character or separator sequence the OCI ref.name grammar does not allow"
                ));
            }
        }
    }
    Ok(())
}

impl FromStr for ImageRef {
    type Err = ImageError;

    fn from_str(s: &str) -> Result<Self> {
        let (transport, rest) = s.split_once(':').unwrap_or(("", s));
        let make: fn(PathBuf, Option<String>) -> ImageRef = match transport {
            "oci" => |path, tag| ImageRef::Oci { path, tag },
            "oci-archive" => |path, tag| ImageRef::OciArchive { path, tag },
            _ => {
                return Err(ImageError::InvalidReference {
                    reference: s.to_string(),
                    reason: format!(
                    "unknown image transport in {s}: use oci:PATH[:TAG] or oci-archive:PATH[:TAG]"
                ),
                })
            }
        };
        let bad = |reason: String| ImageError::InvalidReference {
            reference: s.to_string(),
            reason,
        };
        let (path, tag) = match rest.split_once(':') {
            Some((path, tag)) => (path, Some(tag)),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(bad(format!("no path: use {transport}:PATH[:TAG]")));
        }
        if let Some(tag) = tag {
            validate_tag(tag).map_err(bad)?;
        }
        Ok(make(PathBuf::from(path), tag.map(str::to_string)))
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (transport, path, tag) = match self {
            Self::Oci { path, tag } => ("oci", path, tag),
            Self::OciArchive { path, tag } => ("oci-archive", path, tag),
        };
        write!(f, "{transport}:{}", path.display())?;
        if let Some(tag) = tag {
            write!(f, ":{tag}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_transports_with_and_without_tag() {
        let r: ImageRef = "oci:/tmp/img:latest".parse().unwrap();
        assert_eq!(
            r,
            ImageRef::Oci {
                path: "/tmp/img".into(),
                tag: Some("latest".into())
            }
        );
        assert_eq!(r.to_string(), "oci:/tmp/img:latest");
        let r: ImageRef = "oci:relative/dir".parse().unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.path(), Path::new("relative/dir"));
        assert_eq!(r.to_string(), "oci:relative/dir");
        let r: ImageRef = "oci-archive:/a/b.tar:v1.2-rc_3".parse().unwrap();
        assert!(matches!(r, ImageRef::OciArchive { .. }));
        assert_eq!(r.tag(), Some("v1.2-rc_3"));
        assert_eq!(r.to_string(), "oci-archive:/a/b.tar:v1.2-rc_3");
        // The tag may itself hold ':' (skopeo splits at the first colon).
        let r: ImageRef = "oci:/x:docker.io/library/busybox:1.36".parse().unwrap();
        assert_eq!(r.tag(), Some("docker.io/library/busybox:1.36"));
    }

    #[test]
    fn unknown_transport_names_the_accepted_forms() {
        for s in [
            "docker://busybox",
            "busybox:latest",
            "dir:/tmp/x",
            "/tmp/x",
            "",
        ] {
            let err = s.parse::<ImageRef>().unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains(&format!(
                    "unknown image transport in {s}: use oci:PATH[:TAG] or oci-archive:PATH[:TAG]"
                )),
                "{msg}"
            );
        }
    }

    #[test]
    fn refuses_empty_path_and_bad_tags() {
        for s in [
            "oci:",
            "oci::tag",
            "oci:/x:",
            "oci:/x:-lead",
            "oci:/x:a..b",
            "oci:/x:a b",
            "oci:/x:tag/",
            "oci-archive:/x:ta\u{e9}",
        ] {
            assert!(
                matches!(
                    s.parse::<ImageRef>(),
                    Err(ImageError::InvalidReference { .. })
                ),
                "{s}"
            );
        }
        assert!(validate_tag("a--b").is_ok());
        assert!(validate_tag("a---b").is_err());
        assert!(validate_tag("sha256@x").is_ok());
    }
}
