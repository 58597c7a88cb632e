//! Running under systemd: readiness notification (`--sdnotify`), the container's cgroup inside a
//! delegated service's cgroup, and the stop timeout that turns a forwarded SIGTERM into SIGKILL.

use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use libcontainer::oci_spec::runtime::Spec;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::error::{Result, RuntimeError};
use super::options::{RunOptions, Volume};

/// Where `--sdnotify=container` puts systemd's notify socket inside the container.
pub const CONTAINER_SOCKET: &str = "/run/notify/notify.sock";
/// The stop timeout when none is given (podman's and docker's default).
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The leaf cgroup rrun moves itself into inside a delegated service cgroup (cgroup v2 lets only
/// leaves hold processes, and the container's cgroup is a sibling).
const SUPERVISOR_CGROUP: &str = "rrun-supervisor";

/// `--sdnotify`: who tells systemd that the service is ready.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// rrun sends `READY=1` (and its `MAINPID`) once the container's process started.
    #[default]
    Conmon,
    /// The container gets `NOTIFY_SOCKET` (the socket bind-mounted) and says `READY=1` itself.
    Container,
    /// Nobody notifies (for `Type=simple`/`exec` units).
    Ignore,
}

impl Mode {
    /// Parse `conmon`, `container` or `ignore`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "conmon" => Ok(Mode::Conmon),
            "container" => Ok(Mode::Container),
            "ignore" => Ok(Mode::Ignore),
            _ => Err(RuntimeError::option(
                "--sdnotify",
                s,
                "use conmon (rrun sends READY=1), container (the container does) or ignore",
            )),
        }
    }

    /// The command-line spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Conmon => "conmon",
            Mode::Container => "container",
            Mode::Ignore => "ignore",
        }
    }
}

/// `$NOTIFY_SOCKET`, when systemd gave one.
fn notify_socket() -> Option<String> {
    std::env::var("NOTIFY_SOCKET")
        .ok()
        .filter(|s| !s.is_empty())
}

/// Send one notification datagram (`READY=1\n...`) to `socket` (a path, or `@name` for an
/// abstract socket).
pub fn send(socket: &str, message: &str) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    let addr = match socket.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
        None => SocketAddr::from_pathname(socket)?,
    };
    sock.send_to_addr(message.as_bytes(), &addr)?;
    Ok(())
}

/// After the container's process started: in `conmon` mode tell systemd (if it is listening)
/// that the service is ready and that rrun is its main process. A failure is only reported: the
/// container runs either way.
pub fn container_started(mode: Mode) -> Option<String> {
    if mode != Mode::Conmon {
        return None;
    }
    let socket = notify_socket()?;
    let msg = format!("READY=1\nMAINPID={}\n", std::process::id());
    send(&socket, &msg)
        .err()
        .map(|e| format!("cannot notify systemd through {socket}: {e}"))
}

/// Before the spec is built: in `container` mode bind-mount systemd's socket into the container
/// and point its `NOTIFY_SOCKET` there. Without `$NOTIFY_SOCKET` nothing changes.
pub fn prepare_options(o: &mut RunOptions) -> Result<()> {
    add_container_socket(o, notify_socket())
}

fn add_container_socket(o: &mut RunOptions, socket: Option<String>) -> Result<()> {
    if o.sdnotify != Mode::Container {
        return Ok(());
    }
    let Some(socket) = socket else {
        return Ok(());
    };
    if socket.starts_with('@') {
        return Err(RuntimeError::option(
            "--sdnotify",
            "container",
            format!(
                "NOTIFY_SOCKET {socket} is an abstract socket, which cannot be bind-mounted into the container; use --sdnotify=conmon"
            ),
        ));
    }
    o.volumes.push(Volume {
        source: PathBuf::from(&socket),
        destination: CONTAINER_SOCKET.into(),
        read_only: false,
    });
    o.env.push(format!("NOTIFY_SOCKET={CONTAINER_SOCKET}"));
    Ok(())
}

/// The cgroup v2 path (relative to the cgroup root) of this process, from `/proc/self/cgroup`.
fn own_cgroup_v2(proc_self_cgroup: &str) -> Option<&str> {
    proc_self_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .filter(|p| p.starts_with('/'))
}

/// The cgroup v1 path of this process in systemd's own (`name=systemd`) hierarchy.
fn own_cgroup_v1(proc_self_cgroup: &str) -> Option<&str> {
    proc_self_cgroup.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrl, path) = (parts.next()?, parts.next()?, parts.next()?);
        (ctrl == "name=systemd").then_some(path)
    })
}

/// Whether a cgroup path is a systemd service or scope.
fn is_unit_cgroup(path: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or("");
    last.ends_with(".service") || last.ends_with(".scope")
}

/// Where the container's cgroup goes (libcontainer's cgroupsPath, absolute from the cgroup
/// root) when rrun runs as a systemd service, so that systemd accounts for and kills the
/// container with the service. `None`: not under systemd, or a service systemd did not delegate
/// its cgroup to (its own `/rrun/ID` then stays).
///
/// cgroup v2: only a delegated service (`Delegate=yes`, which `rrun generate systemd` writes;
/// systemd marks it with the `trusted.delegate` xattr) may get sub-cgroups with controllers. rrun
/// moves itself into a `rrun-supervisor` leaf, and the container's cgroup is `SERVICE/ID`.
/// cgroup v1: libcontainer's v1 manager leaves the `name=systemd` hierarchy alone, so the
/// container stays in the service there by inheritance; its controller cgroups are created
/// at `SERVICE/ID` in each hierarchy.
pub fn service_cgroup(id: &str) -> Result<Option<PathBuf>> {
    if std::env::var_os("INVOCATION_ID").is_none() {
        return Ok(None);
    }
    let Ok(cg) = std::fs::read_to_string("/proc/self/cgroup") else {
        return Ok(None);
    };
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        let Some(own) = own_cgroup_v2(&cg) else {
            return Ok(None);
        };
        let (service, in_leaf) = match own.strip_suffix(&format!("/{SUPERVISOR_CGROUP}")) {
            Some(service) => (service, true),
            None => (own, false),
        };
        if !is_unit_cgroup(service) {
            return Ok(None);
        }
        let dir = root.join(service.trim_start_matches('/'));
        if !delegated(&dir) {
            return Ok(None);
        }
        if !in_leaf {
            let leaf = dir.join(SUPERVISOR_CGROUP);
            std::fs::create_dir_all(&leaf).map_err(|e| RuntimeError::io_at(&leaf, e))?;
            let procs = leaf.join("cgroup.procs");
            std::fs::write(&procs, std::process::id().to_string())
                .map_err(|e| RuntimeError::io_at(&procs, e))?;
        }
        return Ok(Some(Path::new(service).join(id)));
    }
    Ok(own_cgroup_v1(&cg)
        .filter(|p| is_unit_cgroup(p))
        .map(|p| Path::new(p).join(id)))
}

/// Whether systemd delegated this cgroup (it sets `trusted.delegate` or `user.delegate`).
fn delegated(dir: &Path) -> bool {
    ["trusted.delegate", "user.delegate"]
        .iter()
        .any(|name| matches!(xattr::get(dir, name), Ok(Some(v)) if v.as_slice() == b"1"))
}

/// Put the container's cgroup under the service's (see [`service_cgroup`]).
pub fn place_cgroup(spec: &mut Spec, id: &str) -> Result<()> {
    let Some(path) = service_cgroup(id)? else {
        return Ok(());
    };
    if let Some(mut linux) = spec.linux().clone() {
        linux.set_cgroups_path(Some(path));
        spec.set_linux(Some(linux));
    }
    Ok(())
}

/// The SIGKILL that follows a forwarded SIGTERM (or SIGINT) when the container ignores it.
#[derive(Debug)]
pub struct StopTimer {
    pid: Pid,
    timeout: Duration,
    armed: bool,
    reaped: Arc<AtomicBool>,
}

impl StopTimer {
    /// A timer for the container init `pid`.
    pub fn new(pid: i32, timeout: Option<Duration>) -> Self {
        StopTimer {
            pid: Pid::from_raw(pid),
            timeout: timeout.unwrap_or(DEFAULT_STOP_TIMEOUT),
            armed: false,
            reaped: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A signal was forwarded: after SIGTERM or SIGINT, kill the container when it is still
    /// there after the timeout (once; the container was started, so a thread is safe now).
    pub fn forwarded(&mut self, sig: Signal) {
        if self.armed || !matches!(sig, Signal::SIGTERM | Signal::SIGINT) {
            return;
        }
        self.armed = true;
        let (pid, timeout, reaped) = (self.pid, self.timeout, Arc::clone(&self.reaped));
        let spawned = std::thread::Builder::new()
            .name("stop-timer".into())
            .spawn(move || {
                std::thread::sleep(timeout);
                if !reaped.load(Ordering::SeqCst) {
                    let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                }
            });
        if spawned.is_err() {
            // No thread: the container still gets the signal, just no SIGKILL later.
            self.armed = false;
        }
    }
}

impl Drop for StopTimer {
    /// The container was reaped (or rrun gives up on it): the pid must not be killed any more.
    fn drop(&mut self) {
        self.reaped.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print() {
        for m in [Mode::Conmon, Mode::Container, Mode::Ignore] {
            assert_eq!(Mode::parse(m.as_str()).unwrap(), m);
        }
        let e = Mode::parse("notify").unwrap_err().to_string();
        assert!(e.contains("conmon") && e.contains("ignore"), "{e}");
    }

    #[test]
    fn cgroup_lines() {
        let v2 = "0::/system.slice/web.service\n";
        assert_eq!(own_cgroup_v2(v2), Some("/system.slice/web.service"));
        assert_eq!(own_cgroup_v1(v2), None);
        let v1 =
            "12:pids:/system.slice/web.service\n1:name=systemd:/system.slice/web.service\n0::/\n";
        assert_eq!(own_cgroup_v1(v1), Some("/system.slice/web.service"));
        assert!(is_unit_cgroup("/system.slice/web.service"));
        assert!(is_unit_cgroup("/user.slice/run-r1.scope"));
        assert!(!is_unit_cgroup("/user.slice"));
        assert!(!is_unit_cgroup("/"));
    }

    #[test]
    fn ready_reaches_a_listening_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        send(path.to_str().unwrap(), "READY=1\nMAINPID=42\n").unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nMAINPID=42\n");
        let abstract_name = format!("@rrun-test-{}", std::process::id());
        let listener = UnixDatagram::bind_addr(
            &SocketAddr::from_abstract_name(&abstract_name.as_bytes()[1..]).unwrap(),
        )
        .unwrap();
        send(&abstract_name, "READY=1\n").unwrap();
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\n");
        assert!(send(dir.path().join("absent").to_str().unwrap(), "READY=1\n").is_err());
    }

    #[test]
    fn container_mode_binds_the_socket() {
        let container = || RunOptions {
            sdnotify: Mode::Container,
            ..RunOptions::default()
        };
        let mut o = container();
        add_container_socket(&mut o, Some("/run/systemd/notify".into())).unwrap();
        let abstract_err = add_container_socket(&mut container(), Some("@abstract".into()));
        let mut plain = RunOptions::default();
        add_container_socket(&mut plain, Some("/run/systemd/notify".into())).unwrap();
        assert!(plain.volumes.is_empty() && plain.env.is_empty());
        let mut outside = container();
        add_container_socket(&mut outside, None).unwrap();
        assert!(outside.volumes.is_empty());
        assert_eq!(o.volumes.len(), 1);
        assert_eq!(o.volumes[0].destination, CONTAINER_SOCKET);
        assert_eq!(o.env, vec![format!("NOTIFY_SOCKET={CONTAINER_SOCKET}")]);
        assert!(abstract_err.unwrap_err().to_string().contains("abstract"));
    }

    #[test]
    fn stop_timer_kills_an_ignoring_child_and_spares_a_reaped_one() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut t = StopTimer::new(child.id() as i32, Some(Duration::from_millis(50)));
        t.forwarded(Signal::SIGHUP);
        assert!(!t.armed);
        t.forwarded(Signal::SIGTERM);
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(status.signal(), Some(9));
        drop(t);
        // A reaped container is never killed: the timer fires after the drop and does nothing.
        let mut spared = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut t = StopTimer::new(spared.id() as i32, Some(Duration::from_millis(50)));
        t.forwarded(Signal::SIGINT);
        drop(t);
        std::thread::sleep(Duration::from_millis(200));
        assert!(spared.try_wait().unwrap().is_none());
        spared.kill().unwrap();
        spared.wait().unwrap();
    }
}
