//! Errors of the `runtime` module: one variant per failure, confinement failures carry their data.

use std::path::PathBuf;

/// Result of the `runtime` module.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// Everything that can go wrong while preparing, running or managing a container.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// Reading or writing a named file failed.
    #[error("{}: {source}", path.display())]
    IoAt {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A system call or other i/o failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    /// A run option with a value rrun cannot use.
    #[error("invalid {option} value {value:?}: {reason}")]
    InvalidOption {
        option: &'static str,
        value: String,
        reason: String,
    },

    /// The container would have nothing to run.
    #[error("no command given: the image has no entrypoint or cmd; pass a command after the image or rootfs")]
    MissingCommand,

    /// The root filesystem to run is missing or not a directory.
    #[error("root filesystem {} is not a directory: {reason}", path.display())]
    BadRootfs { path: PathBuf, reason: String },

    /// A user or group name that the container's /etc/passwd or /etc/group does not list.
    #[error("unable to find {kind} {name:?} in the container's {file}: use a numeric id or add it to the image")]
    UnknownUser {
        kind: &'static str,
        name: String,
        file: &'static str,
    },

    /// A capability name that Linux does not know.
    #[error("unknown capability {name:?}: use a name such as NET_ADMIN or CAP_NET_ADMIN, or ALL")]
    UnknownCapability { name: String },

    /// A seccomp profile file that cannot be used.
    #[error("seccomp profile {}: {reason}", path.display())]
    BadSeccompProfile { path: PathBuf, reason: String },

    /// An AppArmor profile was asked for on a host where AppArmor is not enabled.
    #[error("apparmor profile {profile:?} was requested but AppArmor is not enabled on this host ({reason}); use --security-opt apparmor=unconfined to run without it")]
    AppArmorUnavailable { profile: String, reason: String },

    /// Loading the default AppArmor profile failed.
    #[error("failed to load apparmor profile {profile:?} with apparmor_parser: {reason}")]
    AppArmorLoad { profile: String, reason: String },

    /// A container name that is not allowed.
    #[error("invalid container name {name:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit (at most 128 characters)")]
    InvalidName { name: String },

    /// A container id that is not 64 lower-case hex digits.
    #[error("invalid container id {id:?}: expected 64 lower-case hex digits")]
    InvalidId { id: String },

    /// The name is taken by another container.
    #[error("the container name {name:?} is already in use by container {id}: remove it (rrun rm {name}) or choose another name")]
    NameInUse { name: String, id: String },

    /// No container has this name, id or id prefix.
    #[error("no such container: {query}")]
    NoSuchContainer { query: String },

    /// An id prefix matches more than one container.
    #[error("container id prefix {query:?} is ambiguous: it matches {count} containers")]
    AmbiguousContainer { query: String, count: usize },

    /// The operation needs a running container.
    #[error("container {name} is not running")]
    NotRunning { name: String },

    /// The operation refuses a running container.
    #[error("container {name} is running: stop it first (rrun stop {name}) or use rm -f")]
    StillRunning { name: String },

    /// A stored container record that cannot be read.
    #[error("container record {}: {reason}", path.display())]
    BadRecord { path: PathBuf, reason: String },

    /// libcontainer failed to create, start, exec or delete.
    #[error("{what}: {reason}")]
    Libcontainer { what: &'static str, reason: String },

    /// libcontainer forks; it must not be called with other threads alive.
    #[error("refusing to create a container from a process with {threads} threads: libcontainer forks and needs a single-threaded caller")]
    NotSingleThreaded { threads: usize },

    /// The detached monitor process failed before the container started.
    #[error("container monitor failed: {reason}")]
    Monitor { reason: String },

    /// A signal name or number that is not known.
    #[error("invalid signal {signal:?}: use a name such as TERM or SIGKILL, or a number")]
    InvalidSignal { signal: String },
}

impl RuntimeError {
    /// An i/o error on a named path.
    pub fn io_at(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RuntimeError::IoAt {
            path: path.into(),
            source,
        }
    }

    /// An i/o error of an operation.
    pub fn io(what: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        RuntimeError::Io {
            what: what.into(),
            source: source.into(),
        }
    }

    /// A bad option value.
    pub fn option(
        option: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        RuntimeError::InvalidOption {
            option,
            value: value.into(),
            reason: reason.into(),
        }
    }

    /// A libcontainer failure, with its whole error chain in one line.
    pub fn libcontainer(what: &'static str, err: &dyn std::error::Error) -> Self {
        let mut reason = err.to_string();
        let mut src = err.source();
        while let Some(s) = src {
            let text = s.to_string();
            if !reason.contains(&text) {
                reason.push_str(": ");
                reason.push_str(&text);
            }
            src = s.source();
        }
        RuntimeError::Libcontainer { what, reason }
    }
}

impl From<nix::Error> for RuntimeError {
    fn from(e: nix::Error) -> Self {
        RuntimeError::io("system call failed", std::io::Error::from(e))
    }
}
