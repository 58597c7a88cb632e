//! The libcontainer calls: create (from a single-threaded caller), start, exec into a running
//! container, delete; and the executor that hands the container a clean signal state.

use std::collections::HashMap;
use std::os::unix::process::CommandExt as _;
use std::path::Path;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::oci_spec::runtime::Spec;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};

use super::error::{Result, RuntimeError};
use super::id::ContainerId;
use super::stdio::ContainerFds;

/// Runs the container's process. It execs through `std::process::Command`, which resets the
/// signal mask and SIGPIPE to their defaults before execve (rrun ignores SIGPIPE and blocks the
/// signals it forwards; the container must not inherit either), and with `-t` makes the pty
/// the process's controlling terminal.
#[derive(Debug, Clone)]
pub struct RrunExecutor {
    /// Make stdin (the pty slave) the controlling terminal.
    pub controlling_tty: bool,
}

impl Executor for RrunExecutor {
    fn exec(&self, spec: &Spec) -> std::result::Result<(), ExecutorError> {
        let args = spec
            .process()
            .as_ref()
            .and_then(|p| p.args().as_ref())
            .filter(|a| !a.is_empty())
            .ok_or(ExecutorError::InvalidArg)?;
        if self.controlling_tty {
            // libcontainer made this process a session leader (setsid) already.
            rustix::process::ioctl_tiocsctty(std::io::stdin()).map_err(|e| {
                ExecutorError::Other(format!("failed to set the controlling terminal: {e}"))
            })?;
        }
        let err = std::process::Command::new(&args[0]).args(&args[1..]).exec();
        Err(ExecutorError::Execution(
            format!("failed to execute {:?}: {err}", args[0]).into(),
        ))
    }

    fn validate(&self, spec: &Spec) -> std::result::Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }
}

/// The number of threads of this process.
fn thread_count() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(1)
}

/// libcontainer forks and runs Rust code in the children: refuse to call it with other threads
/// alive (they could hold the allocator's or another lock forever in the child).
pub fn ensure_single_threaded() -> Result<()> {
    match thread_count() {
        1 => Ok(()),
        threads => Err(RuntimeError::NotSingleThreaded { threads }),
    }
}

fn base_builder(
    lc_root: &Path,
    id: &ContainerId,
    fds: ContainerFds,
    controlling_tty: bool,
) -> Result<ContainerBuilder> {
    let mut b = ContainerBuilder::new(id.to_string(), SyscallType::default())
        .with_root_path(lc_root)
        .map_err(|e| RuntimeError::libcontainer("invalid libcontainer state root", &e))?
        .with_executor(RrunExecutor { controlling_tty });
    if let Some(fd) = fds.stdin {
        b = b.with_stdin(fd);
    }
    if let Some(fd) = fds.stdout {
        b = b.with_stdout(fd);
    }
    if let Some(fd) = fds.stderr {
        b = b.with_stderr(fd);
    }
    Ok(b)
}

/// Create the container of a bundle (`bundle/config.json`): its init process is set up and
/// waits for `start`. The init process is a child of the caller, who must reap it.
pub fn create(
    lc_root: &Path,
    id: &ContainerId,
    bundle: &Path,
    fds: ContainerFds,
    controlling_tty: bool,
) -> Result<Container> {
    ensure_single_threaded()?;
    base_builder(lc_root, id, fds, controlling_tty)?
        .validate_id()
        .map_err(|e| RuntimeError::libcontainer("invalid container id", &e))?
        .as_init(bundle)
        .with_systemd(false)
        .with_detach(false)
        .build()
        .map_err(|e| launch_error("failed to create the container", &e))
}

/// A libcontainer failure to launch a process, said plainly when it is about the command (not
/// found, not executable) rather than the container.
fn launch_error(what: &'static str, e: &dyn std::error::Error) -> RuntimeError {
    let full = RuntimeError::libcontainer(what, e);
    match &full {
        RuntimeError::Libcontainer { reason, .. } => {
            match reason.split_once("error in executing process : ") {
                Some((_, why)) => RuntimeError::Libcontainer {
                    what: "cannot run the command",
                    reason: why.to_owned(),
                },
                None => full,
            }
        }
        _ => full,
    }
}

/// Let a created container's process exec its command.
pub fn start(c: &mut Container) -> Result<i32> {
    c.start()
        .map_err(|e| RuntimeError::libcontainer("failed to start the container", &e))?;
    c.pid()
        .map(|p| p.as_raw())
        .ok_or_else(|| RuntimeError::Libcontainer {
            what: "failed to start the container",
            reason: "libcontainer reported no pid".into(),
        })
}

/// What to run in a running container.
#[derive(Debug, Clone)]
pub struct ExecProcess {
    /// Arguments.
    pub args: Vec<String>,
    /// Extra environment (added to the container's).
    pub env: HashMap<String, String>,
    /// Working directory.
    pub cwd: Option<String>,
    /// uid, gid, supplementary gids.
    pub user: Option<(u32, u32, Vec<u32>)>,
}

/// Start a process in a running container (a libcontainer tenant); returns its pid, a child
/// of the caller.
pub fn exec(
    lc_root: &Path,
    id: &ContainerId,
    p: ExecProcess,
    fds: ContainerFds,
    controlling_tty: bool,
) -> Result<i32> {
    ensure_single_threaded()?;
    let mut t = base_builder(lc_root, id, fds, controlling_tty)?
        .as_tenant()
        .with_container_args(p.args)
        .with_env(p.env)
        .with_cwd(p.cwd)
        .with_detach(false);
    if let Some((uid, gid, extra)) = p.user {
        t = t
            .with_user(Some(uid))
            .with_group(Some(gid))
            .with_additional_gids(extra);
    }
    t.build()
        .map(|pid| pid.as_raw())
        .map_err(|e| launch_error("failed to exec in the container", &e))
}

/// Remove libcontainer's state and the cgroup of a container, killing what is left in it.
/// A container libcontainer no longer knows is fine.
pub fn delete(lc_root: &Path, id: &ContainerId) -> Result<()> {
    let dir = lc_root.join(id.as_str());
    if !dir.exists() {
        return Ok(());
    }
    let mut c = match Container::load(dir.clone()) {
        Ok(c) => c,
        // An rrun killed while libcontainer rewrote its state file leaves it empty or cut
        // short: rebuild the state (the cgroup path is in libcontainer's own config copy).
        Err(_) => Container::new(
            id.as_str(),
            libcontainer::container::ContainerStatus::Stopped,
            None,
            &dir,
            &dir,
        )
        .map_err(|e| RuntimeError::libcontainer("failed to load the container state", &e))?,
    };
    c.delete(true)
        .map_err(|e| RuntimeError::libcontainer("failed to delete the container", &e))
}
