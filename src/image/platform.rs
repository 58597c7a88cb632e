//! Platforms (`linux/amd64`, `linux/arm64/v8`): parsing, the host platform, and matching after
//! normalisation as containerd's `platforms` package does (`aarch64` = `arm64`, arm64's default
//! variant is v8, arm's is v7, `x86_64` = `amd64`).

use std::fmt;
use std::str::FromStr;

use super::error::{ImageError, Result};

/// An image platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Platform {
    /// `linux`, `windows`, ...
    pub os: String,
    /// GOARCH spelling: `amd64`, `arm64`, `arm`, `386`, `ppc64le`, `s390x`, `riscv64`, ...
    pub architecture: String,
    /// CPU variant (`v7`, `v8`), if any.
    pub variant: Option<String>,
}

/// Operating systems a single-word platform may name (Go's GOOS list).
const KNOWN_OS: [&str; 14] = [
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "illumos",
    "ios",
    "js",
    "linux",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "windows",
];

/// Architectures a single-word platform may name (Go's GOARCH list plus common aliases).
const KNOWN_ARCH: [&str; 25] = [
    "386", "amd64", "arm", "arm64", "loong64", "mips", "mipsle", "mips64", "mips64le", "ppc64",
    "ppc64le", "riscv64", "s390x", "wasm", "sparc64", "x86_64", "x86-64", "aarch64", "armhf",
    "armel", "i386", "i686", "riscv", "ppc", "s390",
];

/// Normalise an architecture and variant the way containerd's `normalizeArch` does.
fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let arch = arch.to_ascii_lowercase();
    let variant = variant.to_ascii_lowercase();
    match arch.as_str() {
        "i386" | "i686" => ("386".into(), String::new()),
        "x86_64" | "x86-64" | "amd64" => {
            let v = if variant == "v1" {
                String::new()
            } else {
                variant
            };
            ("amd64".into(), v)
        }
        "aarch64" | "arm64" => {
            let v = match variant.as_str() {
                "8" | "v8" | "v8.0" => String::new(),
                _ => variant,
            };
            ("arm64".into(), v)
        }
        "armhf" => ("arm".into(), "v7".into()),
        "armel" => ("arm".into(), "v6".into()),
        "arm" => {
            let v = match variant.as_str() {
                "" | "7" => "v7".into(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            };
            ("arm".into(), v)
        }
        _ => (arch, variant),
    }
}

fn normalize_os(os: &str) -> String {
    let os = os.to_ascii_lowercase();
    match os.as_str() {
        "macos" => "darwin".into(),
        _ => os,
    }
}

impl Platform {
    /// A platform from its parts (no normalisation).
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Self {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.filter(|v| !v.is_empty()).map(str::to_string),
        }
    }

    /// The platform rrun runs on.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "arm" => "arm",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "powerpc64" => "ppc64",
            "loongarch64" => "loong64",
            "mips64" if cfg!(target_endian = "little") => "mips64le",
            "mips" if cfg!(target_endian = "little") => "mipsle",
            other => other,
        };
        let variant = (arch == "arm").then_some("v7");
        Platform::new(std::env::consts::OS, arch, variant)
    }

    /// The normalised (os, architecture, variant) used for matching; the default variants are
    /// spelled out so that `linux/arm64` and `linux/arm64/v8` compare equal.
    fn key(&self) -> (String, String, String) {
        let (arch, variant) =
            normalize_arch(&self.architecture, self.variant.as_deref().unwrap_or(""));
        (normalize_os(&self.os), arch, variant)
    }

    /// True when `other` (an image's platform) is this platform after normalisation
    /// (containerd's `platforms.NewMatcher(p).Match(other)`).
    pub fn matches(&self, other: &Platform) -> bool {
        self.key() == other.key()
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = ImageError;

    /// `OS/ARCH[/VARIANT]`, or a single `ARCH` (on the host OS) or `OS` (with the host
    /// architecture), as `platforms.Parse` accepts them. Architecture aliases are normalised.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: &str| ImageError::InvalidPlatform {
            platform: s.to_string(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = s.split('/').collect();
        for p in &parts {
            if p.is_empty() {
                return Err(bad("empty component"));
            }
            if p.starts_with('.') {
                return Err(bad("a component cannot start with '.'"));
            }
            if !p
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
            {
                return Err(bad(
                    "components may hold only letters, digits, '_', '-', '.'",
                ));
            }
        }
        let host = Platform::host();
        let (os, arch, variant) = match parts.as_slice() {
            [one] => {
                let lower = one.to_ascii_lowercase();
                if KNOWN_OS.contains(&lower.as_str()) || lower == "macos" {
                    (lower, host.architecture, host.variant.unwrap_or_default())
                } else if KNOWN_ARCH.contains(&lower.as_str()) {
                    (host.os, lower, String::new())
                } else {
                    return Err(bad("unknown operating system or architecture"));
                }
            }
            [os, arch] => (os.to_string(), arch.to_string(), String::new()),
            [os, arch, variant] => (os.to_string(), arch.to_string(), variant.to_string()),
            _ => return Err(bad("too many components")),
        };
        let (arch, variant) = normalize_arch(&arch, &variant);
        // Keep the user's spelling of default variants out of the way: "linux/arm64" prints
        // as given, "linux/arm64/v8" too.
        let variant = match (arch.as_str(), variant.as_str(), parts.len()) {
            ("arm64", "", 3) => "v8".to_string(),
            ("arm", "v7", 2) if !parts[1].eq_ignore_ascii_case("armhf") => String::new(),
            _ => variant,
        };
        Ok(Platform::new(&normalize_os(&os), &arch, Some(&variant)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        s.parse().unwrap()
    }

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!(p("linux/amd64"), Platform::new("linux", "amd64", None));
        assert_eq!(
            p("linux/arm64/v8"),
            Platform::new("linux", "arm64", Some("v8"))
        );
        assert_eq!(p("linux/arm/v7").to_string(), "linux/arm/v7");
        assert_eq!(p("linux/x86_64"), Platform::new("linux", "amd64", None));
        assert_eq!(p("Linux/AArch64"), Platform::new("linux", "arm64", None));
        assert_eq!(p("linux/armhf"), Platform::new("linux", "arm", Some("v7")));
        assert_eq!(p("linux/arm/7"), Platform::new("linux", "arm", Some("v7")));
        assert_eq!(p("linux/i386"), Platform::new("linux", "386", None));
        assert_eq!(
            p("amd64"),
            Platform::new(&Platform::host().os, "amd64", None)
        );
        assert_eq!(p("linux").os, "linux");
        assert_eq!(p("linux").architecture, Platform::host().architecture);
        assert_eq!(p("linux/arm64").to_string(), "linux/arm64");
    }

    #[test]
    fn refuses_garbage() {
        for bad in [
            "",
            "/",
            "linux/",
            "linux//v7",
            "a/b/c/d",
            "foo",
            "linux/am d64",
            "../x",
        ] {
            let err = bad.parse::<Platform>().unwrap_err();
            assert!(
                matches!(err, ImageError::InvalidPlatform { .. }),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains("linux/amd64"), "{err}");
        }
    }

    #[test]
    fn matching_uses_default_variants() {
        let image = |os: &str, arch: &str, v: Option<&str>| Platform::new(os, arch, v);
        assert!(p("linux/arm64").matches(&image("linux", "arm64", Some("v8"))));
        assert!(p("linux/arm64/v8").matches(&image("linux", "arm64", None)));
        assert!(p("linux/aarch64").matches(&image("linux", "arm64", None)));
        assert!(p("linux/arm").matches(&image("linux", "arm", Some("v7"))));
        assert!(p("linux/arm/v7").matches(&image("linux", "arm", None)));
        assert!(!p("linux/arm/v6").matches(&image("linux", "arm", None)));
        assert!(!p("linux/arm/v6").matches(&image("linux", "arm", Some("v7"))));
        assert!(!p("linux/amd64").matches(&image("linux", "arm64", None)));
        assert!(!p("linux/amd64").matches(&image("windows", "amd64", None)));
        assert!(p("linux/amd64").matches(&image("linux", "x86_64", None)));
        assert!(!p("linux/arm64").matches(&image("unknown", "unknown", None)));
    }

    #[test]
    fn host_is_normalised() {
        let h = Platform::host();
        assert!(!h.architecture.is_empty());
        assert!(h.matches(&h.to_string().parse().unwrap()));
        if cfg!(target_arch = "x86_64") {
            assert_eq!(h.to_string(), "linux/amd64");
        }
    }
}
