//! Managing existing containers: list, signal, stop, remove, read logs.

use std::io::{Read as _, Seek as _, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rustix::event::{PollFd, PollFlags, Timespec};

use super::container;
use super::error::{Result, RuntimeError};
use super::lifecycle::remove_files;
use super::state::{ContainerRecord, ProcessRef, StateDir, Status};

/// Parse a signal: `TERM`, `SIGTERM`, `sigterm` or `15`.
pub fn parse_signal(s: &str) -> Result<Signal> {
    let bad = || RuntimeError::InvalidSignal {
        signal: s.to_owned(),
    };
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>().map_err(|_| bad())
}

/// Containers for `ps`: running ones, or all with `all`.
pub fn list(state: &StateDir, all: bool) -> Result<Vec<ContainerRecord>> {
    Ok(state
        .list()?
        .into_iter()
        .filter(|r| all || r.live_status() == Status::Running)
        .collect())
}

/// A pidfd of a still-running recorded process (checked against pid reuse).
fn pidfd(p: ProcessRef) -> Option<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(p.pid)?;
    let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()?;
    // Checked after opening: from here on the fd cannot point to a reused pid.
    p.is_alive().then_some(fd)
}

fn send(fd: &OwnedFd, sig: Signal) -> Result<()> {
    let s =
        rustix::process::Signal::from_named_raw(sig as i32).ok_or(RuntimeError::InvalidSignal {
            signal: sig.to_string(),
        })?;
    match rustix::process::pidfd_send_signal(fd, s) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(RuntimeError::io(
            format!("failed to send {sig}"),
            std::io::Error::from(e),
        )),
    }
}

/// Wait until the process of `fd` exits, at most `timeout`. True if it did.
fn wait_exit(fd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ts = Timespec {
            tv_sec: left.as_secs() as _,
            tv_nsec: left.subsec_nanos() as _,
        };
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(n) if n > 0 => return true,
            Ok(_) => return false,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return false,
        }
    }
}

/// Wait for the monitor to record the exit (at most `timeout`).
fn wait_recorded(state: &StateDir, rec: &ContainerRecord, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let monitor_alive = rec.monitor.is_some_and(|m| m.is_alive());
        match state.load(&rec.id) {
            Ok(r) if r.status == Status::Exited && !monitor_alive => return,
            Err(_) => return,
            _ if !monitor_alive => return,
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// `rrun kill`: send a signal to the container's init process.
pub fn kill(state: &StateDir, query: &str, sig: Signal) -> Result<ContainerRecord> {
    let rec = state.find(query)?;
    let fd = rec
        .init
        .filter(|_| rec.live_status() == Status::Running)
        .and_then(pidfd)
        .ok_or_else(|| RuntimeError::NotRunning {
            name: rec.name.to_string(),
        })?;
    send(&fd, sig)?;
    Ok(rec)
}

/// `rrun stop`: SIGTERM, then SIGKILL after `timeout`; waits until the exit is recorded.
/// Stopping a container that does not run is not an error.
pub fn stop(state: &StateDir, query: &str, timeout: Duration) -> Result<ContainerRecord> {
    let rec = state.find(query)?;
    if let Some(fd) = rec.init.filter(|_| rec.is_running()).and_then(pidfd) {
        send(&fd, Signal::SIGTERM)?;
        if !wait_exit(&fd, timeout) {
            send(&fd, Signal::SIGKILL)?;
            wait_exit(&fd, Duration::from_secs(10));
        }
        wait_recorded(state, &rec, Duration::from_secs(5));
    }
    Ok(rec)
}

/// `rrun rm`: remove a stopped container (`force` kills a running one first). Also cleans up
/// after a crashed rrun: the cgroup and libcontainer state of a container whose monitor died.
pub fn remove(state: &StateDir, query: &str, force: bool) -> Result<ContainerRecord> {
    let rec = state.find(query)?;
    if rec.is_running() {
        if !force {
            return Err(RuntimeError::StillRunning {
                name: rec.name.to_string(),
            });
        }
        if let Some(fd) = rec.init.and_then(pidfd) {
            send(&fd, Signal::SIGKILL)?;
            wait_exit(&fd, Duration::from_secs(10));
        }
    }
    wait_recorded(state, &rec, Duration::from_secs(5));
    container::delete(&state.libcontainer_root(), &rec.id)?;
    remove_files(state, &rec);
    Ok(rec)
}

/// `rrun logs`: copy a detached container's output to `out`; with `follow`, keep copying until
/// the container exits.
pub fn logs(state: &StateDir, query: &str, follow: bool, out: &mut dyn Write) -> Result<()> {
    let rec = state.find(query)?;
    let path = rec.log_path.clone().ok_or_else(|| {
        RuntimeError::option(
            "logs",
            rec.name.to_string(),
            "the container was not started with -d: its output went to the terminal",
        )
    })?;
    let mut f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(RuntimeError::io_at(&path, e)),
    };
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| RuntimeError::io_at(&path, e))?;
        if n > 0 {
            out.write_all(&buf[..n])
                .map_err(|e| RuntimeError::io("failed to write the logs", e))?;
            continue;
        }
        out.flush()
            .map_err(|e| RuntimeError::io("failed to write the logs", e))?;
        if !follow {
            return Ok(());
        }
        let running = state.load(&rec.id).map(|r| r.is_running()).unwrap_or(false);
        if !running {
            // One last read for output written just before the exit.
            let pos = f
                .stream_position()
                .map_err(|e| RuntimeError::io_at(&path, e))?;
            let len = f.metadata().map(|m| m.len()).unwrap_or(pos);
            if len > pos {
                f.seek(SeekFrom::Start(pos))
                    .map_err(|e| RuntimeError::io_at(&path, e))?;
                continue;
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse() {
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("sigkill").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), Signal::SIGUSR1);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}
