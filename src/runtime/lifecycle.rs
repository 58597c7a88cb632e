//! Running a container: prepare its state and bundle, create and start it, forward signals,
//! wait for it, record its exit; detached runs through a monitor process; exec.

use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::container::{self, ExecProcess};
use super::error::{Result, RuntimeError};
use super::id::{ContainerId, ContainerName};
use super::options::{ImageConfigView, NetworkMode, RunOptions};
use super::spec::{self, SpecInput};
use super::state::{ContainerRecord, ProcessRef, StateDir, Status};
use super::stdio::{self, Pumps};
use super::{apparmor, etc_files, netns, sdnotify, user};

/// A root filesystem ready to run: a directory (possibly a mount the caller made).
#[derive(Debug, Clone)]
pub struct PreparedRootfs {
    path: PathBuf,
    teardown_mounts: Vec<PathBuf>,
}

impl PreparedRootfs {
    /// An existing directory, used as it is (the container writes into it unless `--read-only`).
    pub fn directory(path: &Path) -> Result<Self> {
        let bad = |reason: String| RuntimeError::BadRootfs {
            path: path.to_path_buf(),
            reason,
        };
        let canon = std::fs::canonicalize(path).map_err(|e| bad(e.to_string()))?;
        if !canon.is_dir() {
            return Err(bad("it is not a directory".into()));
        }
        Ok(PreparedRootfs {
            path: canon,
            teardown_mounts: Vec::new(),
        })
    }

    /// A rootfs the caller mounted (overlay of snapshots, a sealed tmpfs, ...): `mounts` are
    /// unmounted, in the order given, when the container is removed. This is the seam for the
    /// image path: the caller builds the rootfs, the runtime owns its teardown.
    pub fn mounted(path: &Path, mounts: Vec<PathBuf>) -> Result<Self> {
        let mut r = Self::directory(path)?;
        r.teardown_mounts = mounts;
        Ok(r)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Launch {
    /// What `ps` shows as the image (a reference, or the rootfs path).
    pub image_name: String,
    /// The image's config (empty for `--rootfs`).
    pub image: ImageConfigView,
    /// The root filesystem.
    pub rootfs: PreparedRootfs,
    /// The options.
    pub options: RunOptions,
}

/// How to start the monitor of a detached container: `program args... <id>`. The CLI points
/// this at its hidden verb that calls [`monitor_main`].
#[derive(Debug, Clone)]
pub struct MonitorCommand {
    /// The executable (normally rrun itself).
    pub program: PathBuf,
    /// Arguments before the container id.
    pub args: Vec<OsString>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// A foreground container exited with this code (128 + signal when killed).
    Exited {
        /// The container.
        id: ContainerId,
        /// Its exit code.
        code: i32,
    },
    /// A detached container runs under its monitor.
    Detached {
        /// The container.
        id: ContainerId,
    },
}

/// The signals rrun forwards to the container, plus SIGCHLD and SIGWINCH it acts on.
fn handled_signals() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGCHLD,
        Signal::SIGWINCH,
    ] {
        s.add(sig);
    }
    s
}

/// Run a container: foreground (returns its exit code) or detached (`options.detach`, needs
/// `monitor`). Any error returned happened before the container's command started.
pub fn run(
    state: &StateDir,
    launch: Launch,
    monitor: Option<&MonitorCommand>,
) -> Result<RunOutcome> {
    let o = &launch.options;
    if o.detach && (o.tty || o.interactive) {
        return Err(RuntimeError::option(
            "--detach",
            "-d",
            "-i and -t need a foreground run: rrun has no attach; drop -i/-t or -d",
        ));
    }
    let detach = o.detach;
    let interactive = o.interactive;
    let tty = o.tty;
    let network = o.network;
    let (notify, stop_timeout) = (o.sdnotify, o.stop_timeout);
    let rec = prepare(state, &launch)?;
    if detach {
        let monitor = monitor.ok_or_else(|| RuntimeError::Monitor {
            reason: "no monitor command was given for a detached run".into(),
        })?;
        let id = rec.id.clone();
        run_detached(state, rec, monitor)?;
        return Ok(RunOutcome::Detached { id });
    }
    let id = rec.id.clone();
    let code = run_foreground(
        state,
        rec,
        interactive,
        tty,
        network,
        (notify, stop_timeout),
    )?;
    Ok(RunOutcome::Exited { id, code })
}

/// The hostname of this machine.
fn host_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Reserve the name, write the container directory (record, config.json, /etc files).
fn prepare(state: &StateDir, launch: &Launch) -> Result<ContainerRecord> {
    let mut options = launch.options.clone();
    sdnotify::prepare_options(&mut options)?;
    let o = &options;
    state.ensure()?;
    let id = ContainerId::generate()?;
    let name = o.name.clone().unwrap_or_else(|| ContainerName::for_id(&id));
    state.reserve_name(&name, &id)?;
    let dir = state.container_dir(&id);
    let result = (|| -> Result<ContainerRecord> {
        std::fs::create_dir_all(&dir).map_err(|e| RuntimeError::io_at(&dir, e))?;
        let hostname = match (&o.hostname, o.network) {
            (Some(h), _) => h.clone(),
            (None, NetworkMode::Host) => host_hostname(),
            (None, NetworkMode::None) => id.short().to_owned(),
        };
        let etc = etc_files::write(&dir, &hostname, o.network)?;
        let apparmor_profile = apparmor::resolve(
            &o.security.apparmor,
            &apparmor::status(),
            &state.root().join("apparmor"),
        )?;
        let mut spec = spec::build(&SpecInput {
            id: &id,
            rootfs: launch.rootfs.path(),
            image: &launch.image,
            options: o,
            etc: &etc,
            hostname: &hostname,
            apparmor_profile,
            swap_accounting: Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
                .exists(),
        })?;
        if let Some(p) = spec.process() {
            super::workdir::ensure(launch.rootfs.path(), &p.cwd().to_string_lossy())?;
        }
        sdnotify::place_cgroup(&mut spec, id.as_str())?;
        let config = dir.join("config.json");
        spec.save(&config)
            .map_err(|e| RuntimeError::io_at(&config, std::io::Error::other(e.to_string())))?;
        let command = spec
            .process()
            .as_ref()
            .and_then(|p| p.args().clone())
            .unwrap_or_default();
        let rec = ContainerRecord {
            id: id.clone(),
            name: name.clone(),
            image: launch.image_name.clone(),
            command,
            created: Utc::now(),
            started: None,
            finished: None,
            status: Status::Created,
            init: None,
            monitor: if o.detach {
                None
            } else {
                ProcessRef::current()
            },
            exit_code: None,
            rootfs: launch.rootfs.path().to_path_buf(),
            teardown_mounts: launch.rootfs.teardown_mounts.clone(),
            auto_remove: o.auto_remove,
            detached: o.detach,
            log_path: o.detach.then(|| dir.join("ctr.log")),
        };
        state.save(&rec)?;
        Ok(rec)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
        state.release_name(&name, &id);
    }
    result
}

/// Create and start the container with these stdio descriptors; on failure nothing is left
/// running. Returns the init pid.
fn create_and_start(
    state: &StateDir,
    rec: &mut ContainerRecord,
    fds: stdio::ContainerFds,
    tty: bool,
    network: NetworkMode,
    block: &SigSet,
) -> Result<i32> {
    let lc = state.libcontainer_root();
    let bundle = state.container_dir(&rec.id);
    let mut c = container::create(&lc, &rec.id, &bundle, fds, tty)?;
    let pid = c.pid().map(|p| p.as_raw()).unwrap_or(0);
    let started = (|| -> Result<i32> {
        if network == NetworkMode::None {
            netns::loopback_up(pid)?;
        }
        block
            .thread_block()
            .map_err(|e| RuntimeError::io("failed to block signals", e))?;
        // Recorded before the command runs: an rrun killed from here on leaves a record that
        // names the live init process (ps, stop and rm find it), not a forgotten container.
        record_running(state, rec, pid)?;
        container::start(&mut c)
    })();
    match started {
        Ok(started_pid) => {
            if started_pid != pid {
                record_running(state, rec, started_pid)?;
            }
            Ok(started_pid)
        }
        Err(e) => {
            let _ = c.delete(true);
            if pid > 0 {
                let _ = waitpid(Pid::from_raw(pid), None);
            }
            Err(e)
        }
    }
}

/// Record the container as running with this init process.
fn record_running(state: &StateDir, rec: &mut ContainerRecord, pid: i32) -> Result<()> {
    rec.init = ProcessRef::of(pid);
    rec.status = Status::Running;
    rec.started = Some(Utc::now());
    state.save(rec)
}

fn run_foreground(
    state: &StateDir,
    mut rec: ContainerRecord,
    interactive: bool,
    tty: bool,
    network: NetworkMode,
    (notify, stop_timeout): (sdnotify::Mode, Option<Duration>),
) -> Result<i32> {
    let signals = handled_signals();
    let started = (|| {
        let mut plan = stdio::foreground(interactive, tty)?;
        let fds = plan.take_fds();
        let pid = create_and_start(state, &mut rec, fds, tty, network, &signals)?;
        Ok((pid, plan))
    })();
    let (pid, plan) = match started {
        Ok(v) => v,
        Err(e) => {
            discard(state, &rec);
            let _ = signals.thread_unblock();
            return Err(e);
        }
    };
    let pumps = plan.start().ok();
    if let Some(problem) = sdnotify::container_started(notify) {
        eprintln!("rrun: warning: {problem}");
    }
    let mut stop = sdnotify::StopTimer::new(pid, stop_timeout);
    let code = supervise(pid, &signals, pumps.as_ref(), Some(&mut stop));
    drop(stop);
    if let Some(p) = pumps {
        p.finish(Duration::from_secs(2));
    }
    let _ = signals.thread_unblock();
    let code = code?;
    finish(state, rec, code);
    Ok(code)
}

/// Wait for `pid`, forwarding signals to it, resizing the pty on SIGWINCH. The signals of
/// `set` must be blocked in this thread. Returns the exit code (128 + signal when killed).
/// With `stop`, a forwarded SIGTERM/SIGINT is followed by SIGKILL after the stop timeout.
fn supervise(
    pid: i32,
    set: &SigSet,
    pumps: Option<&Pumps>,
    mut stop: Option<&mut sdnotify::StopTimer>,
) -> Result<i32> {
    let p = Pid::from_raw(pid);
    loop {
        match waitpid(p, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) => {}
            Err(e) => return Err(RuntimeError::io("failed to wait for the container", e)),
        }
        let sig = set
            .wait()
            .map_err(|e| RuntimeError::io("failed to wait for signals", e))?;
        match sig {
            Signal::SIGCHLD => {}
            Signal::SIGWINCH => {
                if let Some(p) = pumps {
                    p.resize()
                }
            }
            other => {
                let _ = nix::sys::signal::kill(p, other);
                if let Some(t) = stop.as_deref_mut() {
                    t.forwarded(other);
                }
            }
        }
    }
}

/// Record the exit, free the cgroup and libcontainer state, and remove the container if `--rm`.
fn finish(state: &StateDir, mut rec: ContainerRecord, code: i32) {
    rec.status = Status::Exited;
    rec.exit_code = Some(code);
    rec.finished = Some(Utc::now());
    let _ = state.save(&rec);
    let _ = container::delete(&state.libcontainer_root(), &rec.id);
    if rec.auto_remove {
        remove_files(state, &rec);
    }
}

/// Remove a container that never started.
fn discard(state: &StateDir, rec: &ContainerRecord) {
    let _ = container::delete(&state.libcontainer_root(), &rec.id);
    remove_files(state, rec);
}

/// Unmount the caller's rootfs mounts (then remove the directory the image path assembled
/// them in), delete the container directory, release the name.
pub(crate) fn remove_files(state: &StateDir, rec: &ContainerRecord) {
    use nix::errno::Errno;
    let mut unmounted = true;
    for m in &rec.teardown_mounts {
        match nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
            Err(_) => unmounted = false,
        }
    }
    if let Some(dir) = state.assembled_dir_of(&rec.rootfs).filter(|_| unmounted) {
        let _ = std::fs::remove_dir_all(dir);
    }
    let _ = std::fs::remove_dir_all(state.container_dir(&rec.id));
    state.release_name(&rec.name, &rec.id);
}

fn run_detached(state: &StateDir, rec: ContainerRecord, monitor: &MonitorCommand) -> Result<()> {
    let dir = state.container_dir(&rec.id);
    let log_path = dir.join("monitor.log");
    let log = std::fs::File::create(&log_path).map_err(|e| RuntimeError::io_at(&log_path, e))?;
    let spawned = Command::new(&monitor.program)
        .args(&monitor.args)
        .arg(rec.id.as_str())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            discard(state, &rec);
            return Err(RuntimeError::Monitor {
                reason: format!("cannot start {}: {e}", monitor.program.display()),
            });
        }
    };
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    let line = line.trim();
    if line == "started" {
        return Ok(());
    }
    let _ = child.wait();
    let reason = match line.strip_prefix("error: ") {
        Some(msg) => msg.to_owned(),
        None => {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            format!("it exited before starting the container: {}", log.trim())
        }
    };
    let rec = state.load(&rec.id).unwrap_or(rec);
    discard(state, &rec);
    Err(RuntimeError::Monitor { reason })
}

/// The body of a detached container's monitor process (the CLI's hidden verb): start the
/// container, say `started` (or `error: ...`) on stdout, then wait for it and record its exit.
pub fn monitor_main(state: &StateDir, id: &ContainerId) -> Result<i32> {
    let _ = nix::unistd::setsid();
    let mut rec = state.load(id)?;
    rec.monitor = ProcessRef::current();
    state.save(&rec)?;
    let signals = handled_signals();
    let mut out = std::io::stdout();
    let started = (|| {
        let log = rec
            .log_path
            .clone()
            .unwrap_or_else(|| state.container_dir(id).join("ctr.log"));
        let mut plan = stdio::detached(&log)?;
        let fds = plan.take_fds();
        create_and_start(state, &mut rec, fds, false, network_of(state, id), &signals)
    })();
    let pid = match started {
        Ok(pid) => pid,
        Err(e) => {
            let _ = writeln!(out, "error: {e}");
            return Err(e);
        }
    };
    let _ = writeln!(out, "started");
    let _ = out.flush();
    // Nobody reads our stdout any more.
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
    }
    let code = supervise(pid, &signals, None, None)?;
    finish(state, rec, code);
    Ok(code)
}

/// Whether the container's spec has its own network namespace.
fn network_of(state: &StateDir, id: &ContainerId) -> NetworkMode {
    let spec =
        libcontainer::oci_spec::runtime::Spec::load(state.container_dir(id).join("config.json"));
    let own = spec.ok().and_then(|s| {
        s.linux().as_ref().and_then(|l| {
            l.namespaces().as_ref().map(|ns| {
                ns.iter().any(|n| {
                    n.typ() == libcontainer::oci_spec::runtime::LinuxNamespaceType::Network
                })
            })
        })
    });
    if own.unwrap_or(true) {
        NetworkMode::None
    } else {
        NetworkMode::Host
    }
}

/// `rrun exec` options.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// The command.
    pub command: Vec<String>,
    /// `-e KEY=VALUE`.
    pub env: Vec<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-i`.
    pub interactive: bool,
    /// `-t`.
    pub tty: bool,
}

/// Run a command in a running container; returns its exit code.
pub fn exec(state: &StateDir, query: &str, o: ExecOptions) -> Result<i32> {
    let rec = state.find(query)?;
    if !rec.is_running() {
        return Err(RuntimeError::NotRunning {
            name: rec.name.to_string(),
        });
    }
    if o.command.is_empty() || o.command[0].is_empty() {
        return Err(RuntimeError::MissingCommand);
    }
    if let Some(w) = &o.workdir {
        if !w.starts_with('/') {
            return Err(RuntimeError::option(
                "--workdir",
                w,
                "the working directory must be an absolute path",
            ));
        }
    }
    let user = match &o.user {
        Some(u) => {
            let r = user::resolve(u, &rec.rootfs)?;
            Some((r.uid, r.gid, r.additional_gids))
        }
        None => None,
    };
    let mut env = std::collections::HashMap::new();
    if o.tty {
        env.insert("TERM".to_owned(), "xterm".to_owned());
    }
    for e in &o.env {
        let (k, v) = e.split_once('=').unwrap_or((e, ""));
        env.insert(k.to_owned(), v.to_owned());
    }
    let signals = handled_signals();
    let mut plan = stdio::foreground(o.interactive, o.tty)?;
    let fds = plan.take_fds();
    let pid = container::exec(
        &state.libcontainer_root(),
        &rec.id,
        ExecProcess {
            args: o.command,
            env,
            cwd: o.workdir,
            user,
        },
        fds,
        o.tty,
    )?;
    signals
        .thread_block()
        .map_err(|e| RuntimeError::io("failed to block signals", e))?;
    let pumps = plan.start().ok();
    let code = supervise(pid, &signals, pumps.as_ref(), None);
    if let Some(p) = pumps {
        p.finish(Duration::from_secs(2));
    }
    let _ = signals.thread_unblock();
    code
}
