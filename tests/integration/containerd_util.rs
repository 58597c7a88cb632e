//! Helpers of the containerd tests: Debian's `containerd` (1.6, with runc) started on its own
//! socket, root and state under a temp dir, with rrun as the stream processor for encrypted
//! layers and plain HTTP to a loopback registry; a CRI `ImageService/PullImage` client (Debian's
//! python3-grpcio, the protobuf messages built by hand); `ctr` against that socket.
//! A missing peer is a failure that says to run `make deps`, never a skip.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::registry_util::{require, wait_for};

/// The containerd config: own root, state and socket; rrun for both ocicrypt processor ids
/// (the ones imgcrypt hands the payload to); the CRI plugin's node key model; registry hosts
/// from `certs.d`; the native snapshotter (works on any filesystem, also inside containers).
const CONFIG: &str = r#"version = 2
root = "@DIR@/root"
state = "@DIR@/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "@DIR@/containerd.sock"

[ttrpc]
  address = "@DIR@/containerd.sock.ttrpc"

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".image_decryption]
    key_model = "node"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "@DIR@/certs.d"

[stream_processors]
  [stream_processors."io.containerd.ocicrypt.decoder.v1.tar.gzip"]
    accepts = ["application/vnd.oci.image.layer.v1.tar+gzip+encrypted"]
    returns = "application/vnd.oci.image.layer.v1.tar+gzip"
    path = "@RRUN@"
    args = ["decoder", "--decryption-keys-path", "@KEYS@"]
  [stream_processors."io.containerd.ocicrypt.decoder.v1.tar"]
    accepts = ["application/vnd.oci.image.layer.v1.tar+encrypted"]
    returns = "application/vnd.oci.image.layer.v1.tar"
    path = "@RRUN@"
    args = ["decoder", "--decryption-keys-path", "@KEYS@"]
"#;

/// The CRI client: `PullImageRequest{image: ImageSpec{image}}` encoded by hand and sent raw
/// (grpcio passes bytes through without serializers); tries runtime.v1, then v1alpha2.
const PULL_PY: &str = r#"import sys
import grpc

def varint(n):
    out = b""
    while n >= 0x80:
        out += bytes([(n & 0x7f) | 0x80])
        n >>= 7
    return out + bytes([n])

def field(num, data):
    return varint((num << 3) | 2) + varint(len(data)) + data

sock, image = sys.argv[1], sys.argv[2]
request = field(1, field(1, image.encode()))
channel = grpc.insecure_channel("unix://" + sock)
for version in ("runtime.v1", "runtime.v1alpha2"):
    pull = channel.unary_unary("/%s.ImageService/PullImage" % version)
    try:
        response = pull(request, timeout=180)
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.UNIMPLEMENTED:
            continue
        print("pull failed: %s: %s" % (e.code().name, e.details()), file=sys.stderr)
        sys.exit(1)
    # PullImageResponse{string image_ref = 1}: tag, length, bytes.
    pos = 1
    length = 0
    shift = 0
    while True:
        b = response[pos]
        pos += 1
        length |= (b & 0x7f) << shift
        shift += 7
        if b < 0x80:
            break
    print(response[pos:pos + length].decode())
    sys.exit(0)
print("containerd serves no CRI ImageService", file=sys.stderr)
sys.exit(1)
"#;

/// Debian's Python, where python3-grpcio is installed (not a pyenv or venv one).
const PYTHON: &str = "/usr/bin/python3";

/// A containerd with rrun as its decoder, stopped on drop.
pub struct Containerd {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

/// What a finished program did.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

fn outcome(out: std::process::Output) -> Outcome {
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Containerd {
    /// Start containerd with `keys` as the decoder's key directory; `registry` (`127.0.0.1:PORT`)
    /// is reached over plain HTTP.
    pub fn start(keys: &Path, registry: &str) -> Self {
        let bin = require("containerd", "containerd");
        require("containerd-shim-runc-v2", "containerd");
        require("runc", "runc");
        require("ctr", "containerd");
        let grpc_ok = Command::new(PYTHON)
            .args(["-c", "import grpc"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            grpc_ok,
            "{PYTHON} cannot import grpc (Debian package python3-grpcio): run `make deps`"
        );
        // Short path: the socket path must fit in sun_path.
        let dir = tempfile::Builder::new()
            .prefix("rrun-ctd-")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path().display().to_string();
        let config = CONFIG
            .replace("@DIR@", &d)
            .replace("@RRUN@", env!("CARGO_BIN_EXE_rrun"))
            .replace("@KEYS@", &keys.display().to_string());
        fs::write(dir.path().join("config.toml"), config).unwrap();
        let hosts = dir.path().join("certs.d").join(registry);
        fs::create_dir_all(&hosts).unwrap();
        fs::write(
            hosts.join("hosts.toml"),
            format!(
                "server = \"http://{registry}\"\n\n[host.\"http://{registry}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
            ),
        )
        .unwrap();
        fs::write(dir.path().join("pull.py"), PULL_PY).unwrap();
        let log = fs::File::create(dir.path().join("containerd.log")).unwrap();
        let child = Command::new(bin)
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd starts");
        let mut c = Self {
            dir,
            child: Some(child),
        };
        wait_for(60, "containerd to answer on its socket", || {
            if let Some(Ok(Some(status))) = c.child.as_mut().map(|ch| ch.try_wait()) {
                panic!("containerd exited with {status}:\n{}", c.log());
            }
            c.socket().exists() && c.ctr(&["version"]).code == 0
        });
        c
    }

    /// The gRPC socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    /// containerd's log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// Pull `image` through the CRI `ImageService` (what the kubelet does): the image ref, or
    /// the gRPC error.
    pub fn cri_pull(&self, image: &str) -> Result<String, String> {
        let out = Command::new(PYTHON)
            .arg(self.dir.path().join("pull.py"))
            .arg(self.socket())
            .arg(image)
            .stdin(Stdio::null())
            .output()
            .expect("python3 runs");
        let o = outcome(out);
        if o.code == 0 {
            Ok(o.stdout.trim().to_string())
        } else {
            Err(format!("{}{}", o.stderr, o.stdout))
        }
    }

    /// Run `ctr` against this containerd.
    pub fn ctr(&self, args: &[&str]) -> Outcome {
        let out = Command::new("ctr")
            .arg("--address")
            .arg(self.socket())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("ctr runs");
        outcome(out)
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A tar of `files` (path, mode, content), for images run by containerd.
pub fn tar_with_modes(files: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, mode, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}
