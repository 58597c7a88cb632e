//! The container's stdin/stdout/stderr: rrun's own, a pty (`-t`), a log file (`-d`), and pipes
//! in place of a /dev/null stdout or stderr (libcontainer would reopen those read-only).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use nix::fcntl::OFlag;
use rustix::termios::{OptionalActions, Termios};

use super::error::{Result, RuntimeError};

/// The three descriptors handed to the container.
#[derive(Debug, Default)]
pub struct ContainerFds {
    /// fd 0.
    pub stdin: Option<OwnedFd>,
    /// fd 1.
    pub stdout: Option<OwnedFd>,
    /// fd 2.
    pub stderr: Option<OwnedFd>,
}

/// Stdio prepared for a container, with the work rrun does once it runs.
#[derive(Debug)]
pub struct Prepared {
    /// What the container gets.
    pub fds: ContainerFds,
    /// The pty master when `-t`.
    master: Option<OwnedFd>,
    /// Forward rrun's stdin to the pty.
    forward_stdin: bool,
    /// Read ends of pipes standing in for a /dev/null stdout or stderr: drained and discarded.
    drains: Vec<OwnedFd>,
    /// Whether the caller's terminal should go raw.
    raw: bool,
}

fn io(what: &str) -> impl FnOnce(nix::Error) -> RuntimeError + '_ {
    move |e| RuntimeError::io(what.to_owned(), e)
}

fn dup(fd: BorrowedFd<'_>) -> Result<OwnedFd> {
    fd.try_clone_to_owned()
        .map_err(|e| RuntimeError::io("failed to duplicate a stdio descriptor", e))
}

fn is_dev_null(fd: BorrowedFd<'_>) -> bool {
    match rustix::fs::fstat(fd) {
        Ok(st) => (st.st_mode & 0o170000) == 0o020000 && st.st_rdev == rustix::fs::makedev(1, 3),
        Err(_) => false,
    }
}

/// The container's output descriptor for rrun's fd: a duplicate, or a pipe when it is /dev/null.
fn output(fd: BorrowedFd<'_>, drains: &mut Vec<OwnedFd>) -> Result<OwnedFd> {
    if is_dev_null(fd) {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io("failed to create a pipe"))?;
        drains.push(r);
        Ok(w)
    } else {
        dup(fd)
    }
}

fn dev_null() -> Result<OwnedFd> {
    File::open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| RuntimeError::io_at("/dev/null", e))
}

/// Stdio for a foreground container or an exec: `interactive` keeps stdin, `tty` allocates a
/// pty whose master rrun pumps to its own stdout (and from its stdin with `interactive`).
pub fn foreground(interactive: bool, tty: bool) -> Result<Prepared> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    if tty {
        let size = rustix::termios::tcgetwinsize(&stdin)
            .or_else(|_| rustix::termios::tcgetwinsize(&stdout))
            .ok();
        // Without a terminal of our own to copy, the pty gets the classic 24x80.
        let ws = match size {
            Some(w) if w.ws_row > 0 && w.ws_col > 0 => nix::pty::Winsize {
                ws_row: w.ws_row,
                ws_col: w.ws_col,
                ws_xpixel: w.ws_xpixel,
                ws_ypixel: w.ws_ypixel,
            },
            _ => nix::pty::Winsize {
                ws_row: 24,
                ws_col: 80,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        };
        let pty = nix::pty::openpty(Some(&ws), None).map_err(io("failed to allocate a pty"))?;
        rustix::io::fcntl_setfd(&pty.master, rustix::io::FdFlags::CLOEXEC)
            .map_err(|e| RuntimeError::io("failed to set close-on-exec", e))?;
        let slave = pty.slave;
        let fds = ContainerFds {
            stdin: Some(dup(slave.as_fd())?),
            stdout: Some(dup(slave.as_fd())?),
            stderr: Some(slave),
        };
        let raw = interactive && rustix::termios::isatty(&stdin);
        return Ok(Prepared {
            fds,
            master: Some(pty.master),
            forward_stdin: interactive,
            drains: Vec::new(),
            raw,
        });
    }
    let mut drains = Vec::new();
    let fds = ContainerFds {
        stdin: Some(if interactive {
            dup(stdin.as_fd())?
        } else {
            dev_null()?
        }),
        stdout: Some(output(stdout.as_fd(), &mut drains)?),
        stderr: Some(output(stderr.as_fd(), &mut drains)?),
    };
    Ok(Prepared {
        fds,
        master: None,
        forward_stdin: false,
        drains,
        raw: false,
    })
}

/// Stdio for a detached container: no stdin, output appended to `log`.
pub fn detached(log: &Path) -> Result<Prepared> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| RuntimeError::io_at(log, e))?;
    let out = OwnedFd::from(f);
    Ok(Prepared {
        fds: ContainerFds {
            stdin: Some(dev_null()?),
            stdout: Some(dup(out.as_fd())?),
            stderr: Some(out),
        },
        master: None,
        forward_stdin: false,
        drains: Vec::new(),
        raw: false,
    })
}

/// Running pumps; `finish` waits for the output to drain and restores the terminal.
#[derive(Debug)]
pub struct Pumps {
    done: Option<mpsc::Receiver<()>>,
    outputs: usize,
    restore: Option<Termios>,
    master: Option<OwnedFd>,
}

impl Prepared {
    /// Take the descriptors for the container, leaving the rest of the plan.
    pub fn take_fds(&mut self) -> ContainerFds {
        std::mem::take(&mut self.fds)
    }

    /// Start copying (call after the container was created: this spawns threads).
    pub fn start(self) -> Result<Pumps> {
        let (tx, rx) = mpsc::channel();
        let mut outputs = 0;
        for r in self.drains {
            let tx = tx.clone();
            outputs += 1;
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut File::from(r), &mut std::io::sink());
                let _ = tx.send(());
            });
        }
        let mut restore = None;
        let mut master_keep = None;
        if let Some(master) = self.master {
            if self.raw {
                let stdin = std::io::stdin();
                if let Ok(t) = rustix::termios::tcgetattr(&stdin) {
                    let mut raw = t.clone();
                    raw.make_raw();
                    if rustix::termios::tcsetattr(&stdin, OptionalActions::Now, &raw).is_ok() {
                        restore = Some(t);
                    }
                }
            }
            let reader = File::from(dup(master.as_fd())?);
            let tx2 = tx.clone();
            outputs += 1;
            std::thread::spawn(move || {
                copy_until_eio(reader, std::io::stdout());
                let _ = tx2.send(());
            });
            if self.forward_stdin {
                let mut writer = File::from(dup(master.as_fd())?);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    let mut stdin = std::io::stdin();
                    while let Ok(n) = stdin.read(&mut buf) {
                        if n == 0 || writer.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
            master_keep = Some(master);
        }
        Ok(Pumps {
            done: Some(rx),
            outputs,
            restore,
            master: master_keep,
        })
    }
}

/// Copy a pty master to `out` until the slave side is closed (EIO).
fn copy_until_eio(mut from: File, mut out: impl Write) {
    let mut buf = [0u8; 8192];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if out.write_all(&buf[..n]).is_err() {
                    break;
                }
                let _ = out.flush();
            }
        }
    }
}

impl Pumps {
    /// Copy the caller's terminal size to the pty (on SIGWINCH).
    pub fn resize(&self) {
        if let Some(m) = &self.master {
            if let Ok(ws) = rustix::termios::tcgetwinsize(std::io::stdin()) {
                let _ = rustix::termios::tcsetwinsize(m, ws);
            }
        }
    }

    /// Wait (at most `timeout`) for the output copies to end, then restore the terminal.
    pub fn finish(mut self, timeout: Duration) {
        // Closing our master lets the output thread see EIO once the slave's holders are gone.
        self.master = None;
        if let Some(rx) = self.done.take() {
            let deadline = std::time::Instant::now() + timeout;
            for _ in 0..self.outputs {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if rx.recv_timeout(left).is_err() {
                    break;
                }
            }
        }
        let _ = std::io::stdout().flush();
        if let Some(t) = self.restore.take() {
            let _ = rustix::termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &t);
        }
    }
}

impl Drop for Pumps {
    fn drop(&mut self) {
        if let Some(t) = self.restore.take() {
            let _ = rustix::termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &t);
        }
    }
}
