//! What a run asks for: the image config view, the run options, and the parsers of their values.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{Result, RuntimeError};
use super::id::ContainerName;

/// The parts of an OCI image config that shape a container. The CLI fills it from the image;
/// with `--rootfs` it is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfigView {
    /// `config.Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `config.Cmd`.
    pub cmd: Vec<String>,
    /// `config.Env`, `KEY=VALUE` each.
    pub env: Vec<String>,
    /// `config.WorkingDir`.
    pub working_dir: Option<String>,
    /// `config.User`: `uid[:gid]` or `name[:group]`.
    pub user: Option<String>,
}

/// Everything `rrun run` can ask for besides the image (DESIGN.md section 7).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--name`; a short id when absent.
    pub name: Option<ContainerName>,
    /// The command after the image: replaces the image's cmd, keeps its entrypoint.
    pub command: Vec<String>,
    /// `-e`/`--env-file` entries, `KEY=VALUE` each, in order (later wins).
    pub env: Vec<String>,
    /// `-v SRC:DST[:ro]`.
    pub volumes: Vec<Volume>,
    /// `--tmpfs DST[:OPTS]`.
    pub tmpfs: Vec<Tmpfs>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `--network`.
    pub network: NetworkMode,
    /// `--memory`, in bytes.
    pub memory: Option<i64>,
    /// `--cpus`, in millionths of a CPU.
    pub cpus: Option<Cpus>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--security-opt`.
    pub security: SecurityOptions,
    /// `-i`: keep stdin open.
    pub interactive: bool,
    /// `-t`: a terminal.
    pub tty: bool,
    /// `-d`: run in the background, output to the container's log file.
    pub detach: bool,
    /// `--rm`: remove the container when it exits.
    pub auto_remove: bool,
    /// `--sdnotify`: who tells systemd the service is ready.
    pub sdnotify: super::sdnotify::Mode,
    /// `--stop-timeout`: how long a forwarded SIGTERM may take before SIGKILL (default 10 s).
    pub stop_timeout: Option<std::time::Duration>,
}

/// `--network`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// A new network namespace with only the loopback interface, up.
    #[default]
    None,
    /// The host's network namespace (no isolation of the network).
    Host,
}

impl NetworkMode {
    /// Parse `none` or `host`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(NetworkMode::None),
            "host" => Ok(NetworkMode::Host),
            _ => Err(RuntimeError::option(
                "--network",
                s,
                "rrun supports none (the default: loopback only) and host",
            )),
        }
    }
}

/// A bind mount from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// Absolute host path.
    pub source: PathBuf,
    /// Absolute path in the container.
    pub destination: String,
    /// `:ro`.
    pub read_only: bool,
}

impl Volume {
    /// Parse `SRC:DST[:ro|rw]`; SRC must be an existing absolute host path.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |reason: &str| RuntimeError::option("--volume", s, reason);
        let parts: Vec<&str> = s.split(':').collect();
        let (src, dst, mode) = match parts.as_slice() {
            [src, dst] => (*src, *dst, None),
            [src, dst, mode] => (*src, *dst, Some(*mode)),
            _ => return Err(bad("use SRC:DST or SRC:DST:ro with absolute paths")),
        };
        if !src.starts_with('/') {
            return Err(bad(
                "the host path must be absolute (named volumes are not supported)",
            ));
        }
        let dst = container_path("--volume", s, dst)?;
        let read_only = match mode {
            None | Some("rw") => false,
            Some("ro") => true,
            Some(other) => return Err(bad(&format!("unknown mode {other:?}: use ro or rw"))),
        };
        let source = Path::new(src);
        if !source.exists() {
            return Err(bad("the host path does not exist"));
        }
        Ok(Volume {
            source: source.to_path_buf(),
            destination: dst,
            read_only,
        })
    }
}

/// A tmpfs mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tmpfs {
    /// Absolute path in the container.
    pub destination: String,
    /// Mount options (`size=64m`, `mode=1777`, `noexec`, ...).
    pub options: Vec<String>,
}

impl Tmpfs {
    /// Parse `DST[:OPT,OPT...]`.
    pub fn parse(s: &str) -> Result<Self> {
        let (dst, opts) = s.split_once(':').unwrap_or((s, ""));
        let destination = container_path("--tmpfs", s, dst)?;
        let mut options = Vec::new();
        for opt in opts.split(',').filter(|o| !o.is_empty()) {
            let key = opt.split_once('=').map_or(opt, |(k, _)| k);
            let known = [
                "size",
                "mode",
                "uid",
                "gid",
                "nr_inodes",
                "nr_blocks",
                "noexec",
                "exec",
                "nosuid",
                "suid",
                "nodev",
                "dev",
                "ro",
                "rw",
            ];
            if !known.contains(&key) {
                return Err(RuntimeError::option(
                    "--tmpfs",
                    s,
                    format!("unknown tmpfs option {opt:?}; known: {}", known.join(", ")),
                ));
            }
            options.push(opt.to_owned());
        }
        Ok(Tmpfs {
            destination,
            options,
        })
    }
}

fn container_path(option: &'static str, whole: &str, p: &str) -> Result<String> {
    if !p.starts_with('/') {
        return Err(RuntimeError::option(
            option,
            whole,
            "the container path must be absolute",
        ));
    }
    if p.split('/').any(|c| c == "..") {
        return Err(RuntimeError::option(
            option,
            whole,
            "the container path must not contain '..'",
        ));
    }
    if p == "/" {
        return Err(RuntimeError::option(
            option,
            whole,
            "cannot mount over the container's root",
        ));
    }
    Ok(p.to_owned())
}

/// A CPU quota: `--cpus 1.5` is 150000 µs per 100000 µs period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpus {
    /// CFS quota in microseconds per period.
    pub quota: i64,
    /// CFS period in microseconds.
    pub period: u64,
}

impl Cpus {
    /// The CFS period rrun uses (Docker's).
    pub const PERIOD: u64 = 100_000;

    /// Parse a positive decimal number of CPUs, at most `available`.
    pub fn parse(s: &str, available: usize) -> Result<Self> {
        let bad = |reason: String| RuntimeError::option("--cpus", s, reason);
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| bad("use a decimal number of CPUs such as 0.5 or 2".into()))?;
        if !v.is_finite() || v <= 0.0 {
            return Err(bad("must be more than 0".into()));
        }
        if v > available as f64 {
            return Err(bad(format!("this host has only {available} CPUs")));
        }
        let quota = (v * Self::PERIOD as f64).round() as i64;
        if quota < 1000 {
            return Err(bad("must be at least 0.01".into()));
        }
        Ok(Cpus {
            quota,
            period: Self::PERIOD,
        })
    }
}

/// Parse a memory size: a number with an optional b, k, m or g suffix (Docker's units, powers of 1024).
pub fn parse_memory(s: &str) -> Result<i64> {
    let bad = |reason: &str| RuntimeError::option("--memory", s, reason);
    let mut t = s.trim().to_ascii_lowercase();
    if t.len() > 2 && t.ends_with('b') && t[..t.len() - 1].ends_with(['k', 'm', 'g']) {
        t.pop();
    }
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('b') => (&t[..t.len() - 1], 1),
        _ => (t.as_str(), 1),
    };
    let n: i64 = num
        .parse()
        .map_err(|_| bad("use a number with an optional unit b, k, m or g, such as 512m"))?;
    let bytes = n.checked_mul(mult).ok_or_else(|| bad("too large"))?;
    if bytes < 6 << 20 {
        return Err(bad("the minimum memory limit is 6m"));
    }
    Ok(bytes)
}

/// Parse `--pids-limit`: a positive number, or -1 for no limit.
pub fn parse_pids_limit(s: &str) -> Result<Option<i64>> {
    match s.trim().parse::<i64>() {
        Ok(-1) => Ok(None),
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(RuntimeError::option(
            "--pids-limit",
            s,
            "use a positive number of processes, or -1 for no limit",
        )),
    }
}

/// Check a `--hostname`: 1 to 64 characters of letters, digits, '-' and '.'.
pub fn parse_hostname(s: &str) -> Result<String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && !s.starts_with(['-', '.'])
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(RuntimeError::option(
            "--hostname",
            s,
            "use 1 to 64 letters, digits, '-' and '.', not starting with '-' or '.'",
        ))
    }
}

/// Check an `-e` value: `KEY=VALUE`, or `KEY` alone to copy the variable from rrun's environment
/// (dropped when rrun does not have it, as Docker does).
pub fn parse_env(s: &str) -> Result<Option<String>> {
    let (key, value) = match s.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (s, None),
    };
    if key.is_empty() || key.contains(char::is_whitespace) || key.contains('\0') {
        return Err(RuntimeError::option(
            "--env",
            s,
            "use KEY=VALUE with a non-empty KEY without spaces",
        ));
    }
    match value {
        Some(_) => Ok(Some(s.to_owned())),
        None => Ok(std::env::var(key).ok().map(|v| format!("{key}={v}"))),
    }
}

/// Read an `--env-file`: one `KEY=VALUE` or `KEY` per line, `#` comments and blank lines skipped.
pub fn read_env_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| RuntimeError::io_at(path, e))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(e) = parse_env(line)? {
            out.push(e);
        }
    }
    Ok(out)
}

/// `--security-opt` settings. Every switch defaults to the confined choice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityOptions {
    /// `seccomp=FILE|unconfined`.
    pub seccomp: SeccompChoice,
    /// `apparmor=NAME|unconfined`.
    pub apparmor: AppArmorChoice,
    /// `no-new-privileges[=true|false]`; on unless explicitly turned off.
    pub no_new_privileges: NoNewPrivileges,
}

/// Which seccomp filter the container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SeccompChoice {
    /// rrun's default profile (Docker's default allow list).
    #[default]
    Default,
    /// A profile file in Docker's or the OCI format.
    Profile(PathBuf),
    /// No seccomp filter: the container can make every system call its capabilities allow.
    Unconfined,
}

/// Which AppArmor profile the container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AppArmorChoice {
    /// `rrun-default` when AppArmor is enabled; nothing on hosts without AppArmor.
    #[default]
    Default,
    /// A named, already loaded profile; an error on hosts without AppArmor.
    Profile(String),
    /// No AppArmor confinement.
    Unconfined,
}

/// Whether the container's processes may gain privileges through exec (setuid, file caps).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NoNewPrivileges {
    /// `no_new_privs` set: exec never grants privileges.
    #[default]
    Set,
    /// Unsafe: setuid binaries and file capabilities work inside the container.
    Unset,
}

impl SecurityOptions {
    /// Apply one `--security-opt` value (`key=value`; `key:value` is accepted as Docker does).
    pub fn apply(&mut self, opt: &str) -> Result<()> {
        let (key, value) = match opt.split_once(['=', ':']) {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        let bad = |reason: &str| RuntimeError::option("--security-opt", opt, reason);
        match (key, value) {
            ("seccomp", Some("unconfined")) => self.seccomp = SeccompChoice::Unconfined,
            ("seccomp", Some(file)) if !file.is_empty() => {
                let p = PathBuf::from(file);
                if !p.is_file() {
                    return Err(bad("the seccomp profile file does not exist"));
                }
                self.seccomp = SeccompChoice::Profile(p)
            }
            ("apparmor", Some("unconfined")) => self.apparmor = AppArmorChoice::Unconfined,
            ("apparmor", Some(name)) if valid_apparmor_name(name) => {
                self.apparmor = AppArmorChoice::Profile(name.to_owned())
            }
            ("apparmor", _) => return Err(bad("use apparmor=PROFILE or apparmor=unconfined")),
            ("no-new-privileges", None | Some("true")) => {
                self.no_new_privileges = NoNewPrivileges::Set
            }
            ("no-new-privileges", Some("false")) => self.no_new_privileges = NoNewPrivileges::Unset,
            _ => {
                return Err(bad(
                    "use seccomp=FILE|unconfined, apparmor=NAME|unconfined or no-new-privileges",
                ))
            }
        }
        Ok(())
    }
}

fn valid_apparmor_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes() {
        let v = Volume::parse("/tmp:/data:ro").unwrap();
        assert_eq!(v.source, PathBuf::from("/tmp"));
        assert_eq!(v.destination, "/data");
        assert!(v.read_only);
        assert!(!Volume::parse("/tmp:/data").unwrap().read_only);
        for bad in [
            "tmp:/data",
            "/tmp:data",
            "/tmp",
            "/tmp:/d:xx",
            "/nonexistent-rrun:/d",
            "/tmp:/a/../b",
            "/tmp:/",
        ] {
            assert!(Volume::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tmpfs() {
        let t = Tmpfs::parse("/run:size=10m,mode=1777").unwrap();
        assert_eq!(t.destination, "/run");
        assert_eq!(t.options, ["size=10m", "mode=1777"]);
        assert!(Tmpfs::parse("run").is_err());
        assert!(Tmpfs::parse("/run:bogus=1").is_err());
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("64m").unwrap(), 64 << 20);
        assert_eq!(parse_memory("64MB").unwrap(), 64 << 20);
        assert_eq!(parse_memory("1g").unwrap(), 1 << 30);
        assert_eq!(parse_memory("8388608").unwrap(), 8 << 20);
        for bad in ["", "abc", "1m", "-5m", "12x", "99999999999999g"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpus_and_pids() {
        assert_eq!(Cpus::parse("1.5", 2).unwrap().quota, 150_000);
        assert!(Cpus::parse("0", 2).is_err());
        assert!(Cpus::parse("3", 2).is_err());
        assert!(Cpus::parse("x", 2).is_err());
        assert_eq!(parse_pids_limit("10").unwrap(), Some(10));
        assert_eq!(parse_pids_limit("-1").unwrap(), None);
        assert!(parse_pids_limit("0").is_err());
        assert!(parse_pids_limit("ten").is_err());
    }

    #[test]
    fn security_opts() {
        let mut s = SecurityOptions::default();
        assert_eq!(s.seccomp, SeccompChoice::Default);
        assert_eq!(s.no_new_privileges, NoNewPrivileges::Set);
        s.apply("seccomp=unconfined").unwrap();
        assert_eq!(s.seccomp, SeccompChoice::Unconfined);
        s.apply("apparmor=my-prof").unwrap();
        assert_eq!(s.apparmor, AppArmorChoice::Profile("my-prof".into()));
        s.apply("apparmor:unconfined").unwrap();
        assert_eq!(s.apparmor, AppArmorChoice::Unconfined);
        s.apply("no-new-privileges=false").unwrap();
        assert_eq!(s.no_new_privileges, NoNewPrivileges::Unset);
        assert!(s.apply("seccomp=/nonexistent").is_err());
        assert!(s.apply("label=disable").is_err());
        assert!(s.apply("apparmor=").is_err());
    }

    #[test]
    fn env_and_hostname() {
        assert_eq!(parse_env("A=1").unwrap(), Some("A=1".into()));
        assert_eq!(parse_env("RRUN_SURELY_UNSET_VAR").unwrap(), None);
        assert!(parse_env("=x").is_err());
        assert!(parse_hostname("web-1.example").is_ok());
        assert!(parse_hostname("-bad").is_err());
        assert!(parse_hostname("a b").is_err());
        assert_eq!(NetworkMode::parse("host").unwrap(), NetworkMode::Host);
        assert!(NetworkMode::parse("bridge").is_err());
    }
}
