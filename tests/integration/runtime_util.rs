//! Helpers for the runtime tests: a busybox-static rootfs, a private state dir, rrun with a timeout.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The rrun binary under test.
pub fn rrun_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rrun"))
}

/// Fail (never skip) when the tests cannot run here.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the runtime_root tests create containers and need root: run `cargo test` as root"
    );
    assert!(
        Path::new("/bin/busybox").exists(),
        "the runtime_root tests need a static busybox: apt-get install busybox-static"
    );
}

/// A container test environment: a busybox rootfs and a private rrun state directory.
#[derive(Debug)]
pub struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    /// A fresh rootfs built from the host's /bin/busybox with applet symlinks, an /etc/passwd
    /// with root, app (1000) and nobody, and an /etc/group with staff (50) listing app.
    pub fn new() -> Env {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("rrun-rt-")
            .tempdir()
            .expect("temp dir");
        let root = dir.path().join("rootfs");
        for d in [
            "bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "proc", "sys", "dev", "root",
            "home/app", "mnt", "var", "run",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        set_mode(&root.join("tmp"), 0o1777);
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        set_mode(&root.join("bin/busybox"), 0o755);
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" {
                let _ = std::os::unix::fs::symlink("/bin/busybox", root.join("bin").join(applet));
            }
        }
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            root.join("etc/group"),
            "root:x:0:\napp:x:1000:\nstaff:x:50:app\nnogroup:x:65534:\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        Env { dir }
    }

    /// The rootfs directory.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// The state directory.
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// A scratch path next to the rootfs.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `rrun --state <state> ARGS`, ready to spawn.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(rrun_bin());
        c.arg("--state").arg(self.state()).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Run rrun to completion (at most 60 s).
    pub fn rrun(&self, args: &[&str]) -> Out {
        run_with_timeout(self.cmd(args), Duration::from_secs(60))
    }

    /// `rrun run --rm --rootfs <rootfs> OPTIONS... -- CMD...`: options first, then the command.
    pub fn run(&self, options: &[&str], command: &[&str]) -> Out {
        let root = self.rootfs();
        let mut args: Vec<&str> = vec!["run", "--rm"];
        args.extend_from_slice(options);
        args.push("--rootfs");
        args.push(root.to_str().unwrap());
        args.extend_from_slice(command);
        self.rrun(&args)
    }

    /// `rrun run --rm --rootfs <rootfs> sh -c SCRIPT` with options.
    pub fn sh(&self, options: &[&str], script: &str) -> Out {
        self.run(options, &["sh", "-c", script])
    }
}

impl Env {
    /// Assert that `ps -a` lists no container.
    #[track_caller]
    pub fn assert_no_containers(&self) {
        assert_eq!(
            self.rrun(&["ps", "-a", "--format", "json"]).ok().trim(),
            "[]"
        );
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Remove whatever a failed test left running.
        if let Ok(out) = self.cmd(&["ps", "-a", "--format", "json"]).output() {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) {
                for c in v.as_array().into_iter().flatten() {
                    if let Some(id) = c["id"].as_str() {
                        let _ = self.cmd(&["rm", "-f", id]).output();
                    }
                }
            }
        }
    }
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The result of an rrun invocation.
#[derive(Debug)]
pub struct Out {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Out {
    /// Assert success and return stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "rrun failed: {self:?}");
        &self.stdout
    }

    /// Assert an rrun error: exit 125 and one `rrun: error:` line saying `what`.
    #[track_caller]
    pub fn rrun_error(&self, what: &str) {
        assert_eq!(self.code, 125, "expected exit 125: {self:?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one error line: {self:?}");
        assert!(lines[0].starts_with("rrun: error: "), "{self:?}");
        assert!(
            lines[0].to_lowercase().contains(&what.to_lowercase()),
            "expected {what:?} in the error: {self:?}"
        );
    }
}

impl From<Output> for Out {
    fn from(o: Output) -> Out {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Spawn with piped output and wait at most `timeout`, killing the child after it.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Out {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn rrun");
    wait_with_timeout(child, timeout)
}

/// Wait for a spawned child with piped output, at most `timeout`.
pub fn wait_with_timeout(mut child: Child, timeout: Duration) -> Out {
    let mut so = child.stdout.take();
    let mut se = child.stderr.take();
    let t1 = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(o) = so.as_mut() {
            let _ = o.read_to_end(&mut s);
        }
        s
    });
    let t2 = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(o) = se.as_mut() {
            let _ = o.read_to_end(&mut s);
        }
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rrun did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Out {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&t1.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&t2.join().unwrap()).into_owned(),
    }
}

/// A static x86_64 ELF that makes one system call with up to three arguments and exits with
/// its errno (0 on success): a probe for calls busybox has no applet for (keyctl).
#[cfg(target_arch = "x86_64")]
pub fn syscall_probe(nr: u32, a0: u32, a1: u32, a2: u32) -> Vec<u8> {
    let mut code = Vec::new();
    code.push(0xb8); // mov eax, nr
    code.extend_from_slice(&nr.to_le_bytes());
    code.push(0xbf); // mov edi, a0
    code.extend_from_slice(&a0.to_le_bytes());
    code.push(0xbe); // mov esi, a1
    code.extend_from_slice(&a1.to_le_bytes());
    code.push(0xba); // mov edx, a2
    code.extend_from_slice(&a2.to_le_bytes());
    code.extend_from_slice(&[0x0f, 0x05]); // syscall
    code.extend_from_slice(&[0x89, 0xc7]); // mov edi, eax
    code.extend_from_slice(&[0xf7, 0xdf]); // neg edi
    code.extend_from_slice(&[0x85, 0xc0]); // test eax, eax
    code.extend_from_slice(&[0x78, 0x02]); // js +2 (an error: keep errno)
    code.extend_from_slice(&[0x31, 0xff]); // xor edi, edi
    code.push(0xb8); // mov eax, 60 (exit)
    code.extend_from_slice(&60u32.to_le_bytes());
    code.extend_from_slice(&[0x0f, 0x05]); // syscall
    let base: u64 = 0x40_0000;
    let hdr = 64 + 56;
    let total = (hdr + code.len()) as u64;
    let mut elf = Vec::new();
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&0x3eu16.to_le_bytes()); // EM_X86_64
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&(base + hdr as u64).to_le_bytes()); // entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // phoff
    elf.extend_from_slice(&0u64.to_le_bytes()); // shoff
    elf.extend_from_slice(&0u32.to_le_bytes()); // flags
    elf.extend_from_slice(&64u16.to_le_bytes()); // ehsize
    elf.extend_from_slice(&56u16.to_le_bytes()); // phentsize
    elf.extend_from_slice(&1u16.to_le_bytes()); // phnum
    elf.extend_from_slice(&[0; 6]); // shentsize, shnum, shstrndx
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // R+X
    elf.extend_from_slice(&0u64.to_le_bytes()); // offset
    elf.extend_from_slice(&base.to_le_bytes()); // vaddr
    elf.extend_from_slice(&base.to_le_bytes()); // paddr
    elf.extend_from_slice(&total.to_le_bytes()); // filesz
    elf.extend_from_slice(&total.to_le_bytes()); // memsz
    elf.extend_from_slice(&0x1000u64.to_le_bytes()); // align
    elf.extend_from_slice(&code);
    elf
}

/// Install a syscall probe as an executable in the rootfs.
#[cfg(target_arch = "x86_64")]
pub fn install_probe(env: &Env, name: &str, nr: u32, args: [u32; 3]) {
    let p = env.rootfs().join("bin").join(name);
    std::fs::write(&p, syscall_probe(nr, args[0], args[1], args[2])).unwrap();
    set_mode(&p, 0o755);
}

/// The `status` line of /proc/self/status named `key`.
pub fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in {status}"))
}

/// Poll `f` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    f()
}

/// A python3 program that runs a command on a fresh pty (its controlling terminal, 30x100) and
/// plays a script of steps against it: `["expect", TEXT]` waits (15 s at most) for TEXT in the
/// output, `["send", TEXT]` types TEXT, `["resize", "ROWSxCOLS"]` resizes the terminal (the
/// kernel sends SIGWINCH). It prints one JSON object: exit code, the output, whether the
/// terminal's modes were the same after the run as before it, and a failed step if any.
const PTY_DRIVER: &str = r#"
import fcntl, json, os, pty, select, struct, subprocess, sys, termios, time
steps = json.loads(sys.argv[1])
m, s = pty.openpty()
def size(r, c):
    fcntl.ioctl(m, termios.TIOCSWINSZ, struct.pack("HHHH", r, c, 0, 0))
size(30, 100)
before = termios.tcgetattr(s)
p = subprocess.Popen(sys.argv[2:], stdin=s, stdout=s, stderr=s, start_new_session=True,
                     preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
buf = b""
def pump(t):
    global buf
    r, _, _ = select.select([m], [], [], t)
    if not r:
        return False
    try:
        d = os.read(m, 4096)
    except OSError:
        d = b""
    buf += d
    return bool(d)
failed = None
for op, arg in steps:
    if op == "expect":
        end = time.time() + 15
        while arg.encode() not in buf and time.time() < end:
            pump(0.05)
        if arg.encode() not in buf:
            failed = "expect " + arg
            break
    elif op == "send":
        os.write(m, arg.encode())
    elif op == "resize":
        r, c = arg.split("x")
        size(int(r), int(c))
end = time.time() + 20
while p.poll() is None and time.time() < end:
    pump(0.05)
if p.poll() is None:
    p.kill()
    failed = failed or "rrun did not exit"
code = p.wait()
while pump(0.1):
    pass
after = termios.tcgetattr(s)
print(json.dumps({"code": code, "out": buf.decode("utf-8", "replace"),
                  "modes_restored": before == after, "failed": failed}))
"#;

/// What [`Env::on_pty`] saw.
#[derive(Debug)]
pub struct PtyRun {
    /// rrun's exit code.
    pub code: i32,
    /// Everything written to the terminal (with `\r`s removed).
    pub out: String,
    /// Whether the terminal's modes were restored after the run.
    pub modes_restored: bool,
}

impl Env {
    /// Run `rrun --state <state> ARGS` on a real terminal and play `steps` (see [`PTY_DRIVER`]).
    #[track_caller]
    pub fn on_pty(&self, steps: &[(&str, &str)], args: &[&str]) -> PtyRun {
        let steps: Vec<[&str; 2]> = steps.iter().map(|(op, arg)| [*op, *arg]).collect();
        let mut cmd = Command::new("python3");
        cmd.arg("-c")
            .arg(PTY_DRIVER)
            .arg(serde_json::to_string(&steps).unwrap())
            .arg(rrun_bin())
            .arg("--state")
            .arg(self.state())
            .args(args)
            .stdin(Stdio::null());
        let out = run_with_timeout(cmd, Duration::from_secs(60));
        assert_eq!(out.code, 0, "python3 is needed for the pty tests: {out:?}");
        let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("driver output");
        let text = v["out"].as_str().unwrap().replace('\r', "");
        assert!(v["failed"].is_null(), "{}: {text}", v["failed"]);
        PtyRun {
            code: v["code"].as_i64().unwrap() as i32,
            out: text,
            modes_restored: v["modes_restored"].as_bool().unwrap(),
        }
    }
}
