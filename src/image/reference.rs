//! Image arguments: the layout transports `oci:PATH[:TAG]` and `oci-archive:PATH[:TAG]` (split at
//! the first colon after the transport as skopeo does, so a PATH cannot hold `:`), `docker://REF`,
//! and anything else as a name or id in the local store (`busybox`, `127.0.0.1:5000/app:1`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::error::{ImageError, Result};
use super::name::Reference;

/// Where rrun keeps its images when no `--root` is given.
pub const DEFAULT_STORE_ROOT: &str = "/var/lib/rrun";

/// Transports skopeo knows and rrun does not read, named in the error for them.
const FOREIGN_TRANSPORTS: [&str; 7] = [
    "dir",
    "docker-archive",
    "docker-daemon",
    "containers-storage",
    "ostree",
    "sif",
    "tarball",
];

/// The forms an image argument may take, for error messages.
const FORMS: &str = "give a store name (busybox:latest, 127.0.0.1:5000/app:1), oci:PATH[:TAG], oci-archive:PATH[:TAG] or docker://NAME";

/// An image: in an OCI image layout directory, an OCI layout tar archive, the local store, or
/// a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// `oci:PATH[:TAG]`: an OCI image layout directory.
    Oci { path: PathBuf, tag: Option<String> },
    /// `oci-archive:PATH[:TAG]`: a tar of an OCI image layout.
    OciArchive { path: PathBuf, tag: Option<String> },
    /// An image in the local store at `root` (itself an OCI image layout), named as the user
    /// wrote it: a name (`busybox` means `docker.io/library/busybox:latest`), or an image id or
    /// unique id prefix as `rrun images` shows it. The text always parses as a [`Reference`].
    Store { root: PathBuf, name: String },
    /// `docker://REF`: an image in a registry.
    Docker(Reference),
}

impl ImageRef {
    /// Parse an image argument; store names refer to the store at `root` (`--root`).
    pub fn parse_in(s: &str, root: &Path) -> Result<Self> {
        if let Some(rest) = s.strip_prefix("docker://") {
            return rest
                .parse::<Reference>()
                .map(ImageRef::Docker)
                .map_err(|e| with_hint(s, e));
        }
        match s.split_once(':') {
            Some(("oci", rest)) => return parse_layout(s, "oci", rest),
            Some(("oci-archive", rest)) => return parse_layout(s, "oci-archive", rest),
            _ => {}
        }
        // `dir:x` would also be a valid name (`docker.io/library/dir:x`), but it is far more
        // likely a skopeo transport: say so (the full name still reaches such an image).
        if let Some((t, _)) = s
            .split_once(':')
            .filter(|(t, _)| FOREIGN_TRANSPORTS.contains(t))
        {
            return Err(ImageError::InvalidReference {
                reference: s.to_string(),
                reason: format!("rrun does not read the {t}: transport; {FORMS}"),
            });
        }
        s.parse::<Reference>()
            .map(|_| ImageRef::Store {
                root: root.to_path_buf(),
                name: s.to_string(),
            })
            .map_err(|e| with_hint(s, e))
    }

    /// The store image named `reference` in the store at `root`.
    pub fn store(root: &Path, reference: &Reference) -> Self {
        ImageRef::Store {
            root: root.to_path_buf(),
            name: reference.to_string(),
        }
    }

    /// The directory, archive or store root (empty for `docker://`).
    pub fn path(&self) -> &Path {
        match self {
            Self::Oci { path, .. } | Self::OciArchive { path, .. } => path,
            Self::Store { root, .. } => root,
            Self::Docker(_) => Path::new(""),
        }
    }

    /// The tag (`org.opencontainers.image.ref.name`) of a layout, if one was given; the name
    /// as written for a store image; the tag of a `docker://` reference.
    pub fn tag(&self) -> Option<&str> {
        match self {
            Self::Oci { tag, .. } | Self::OciArchive { tag, .. } => tag.as_deref(),
            Self::Store { name, .. } => Some(name),
            Self::Docker(r) => r.tag(),
        }
    }
}

/// An `InvalidReference` whose reason also says which forms are accepted.
fn with_hint(s: &str, e: ImageError) -> ImageError {
    let reason = match e {
        ImageError::InvalidReference { reason, .. } => reason,
        other => other.to_string(),
    };
    ImageError::InvalidReference {
        reference: s.to_string(),
        reason: format!("{reason}; {FORMS}"),
    }
}

/// Parse the `PATH[:TAG]` after `oci:` or `oci-archive:`.
fn parse_layout(s: &str, transport: &str, rest: &str) -> Result<ImageRef> {
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
    let (path, tag) = (PathBuf::from(path), tag.map(str::to_string));
    Ok(if transport == "oci" {
        ImageRef::Oci { path, tag }
    } else {
        ImageRef::OciArchive { path, tag }
    })
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

    /// Parse with store names referring to the store at [`DEFAULT_STORE_ROOT`]; the CLI uses
    /// [`ImageRef::parse_in`] with `--root`.
    fn from_str(s: &str) -> Result<Self> {
        Self::parse_in(s, Path::new(DEFAULT_STORE_ROOT))
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (transport, path, tag) = match self {
            Self::Oci { path, tag } => ("oci", path, tag),
            Self::OciArchive { path, tag } => ("oci-archive", path, tag),
            Self::Store { name, .. } => return f.write_str(name),
            Self::Docker(r) => return write!(f, "docker://{r}"),
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
    fn bad_arguments_name_the_accepted_forms() {
        for s in [
            "dir:/tmp/x",
            "/tmp/x",
            "",
            "Busybox",
            "docker://",
            "docker://a//b",
            "app:",
        ] {
            let err = s.parse::<ImageRef>().unwrap_err();
            assert!(
                matches!(err, ImageError::InvalidReference { .. }),
                "{s}: {err}"
            );
            let msg = err.to_string();
            assert!(
                msg.contains("oci:PATH[:TAG], oci-archive:PATH[:TAG]"),
                "{msg}"
            );
            assert!(msg.contains("docker://NAME"), "{msg}");
        }
        let err = "docker-archive:x.tar".parse::<ImageRef>().unwrap_err();
        assert!(
            err.to_string().contains("the docker-archive: transport"),
            "{err}"
        );
    }

    #[test]
    fn store_names_and_docker_references() {
        let root = Path::new("/srv/store");
        for s in [
            "busybox",
            "busybox:latest",
            "127.0.0.1:5000/app:1",
            "3f2a9c1b0d4e",
        ] {
            let r = ImageRef::parse_in(s, root).unwrap();
            assert_eq!(
                r,
                ImageRef::Store {
                    root: root.into(),
                    name: s.into()
                }
            );
            assert_eq!(r.to_string(), s);
            assert_eq!(r.path(), root);
            assert_eq!(r.tag(), Some(s));
        }
        let r: ImageRef = "busybox".parse().unwrap();
        assert_eq!(r.path(), Path::new(DEFAULT_STORE_ROOT));
        let busybox: Reference = "busybox".parse().unwrap();
        assert_eq!(
            ImageRef::store(root, &busybox).tag(),
            Some("docker.io/library/busybox:latest")
        );
        let r = ImageRef::parse_in("docker://127.0.0.1:5000/app:1", root).unwrap();
        let ImageRef::Docker(reference) = &r else {
            panic!("{r:?}")
        };
        assert_eq!(reference.to_string(), "127.0.0.1:5000/app:1");
        assert_eq!(r.to_string(), "docker://127.0.0.1:5000/app:1");
        assert_eq!(r.tag(), Some("1"));
        // The layout transports keep their meaning even when the rest looks like a name.
        assert!(matches!(
            ImageRef::parse_in("oci:busybox", root).unwrap(),
            ImageRef::Oci { .. }
        ));
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
