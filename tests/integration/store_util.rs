//! Helpers of the store tests: rrun against a temp `--root`, the peers (skopeo), small root
//! filesystems, and reading or doctoring the store's `index.json` and blobs directly.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// What a finished program did: the shared integration-test type (`rrun_error` checks the
/// one-line error contract).
pub use super::util::Output as Run;

/// Run a command with no stdin and capture everything.
pub fn run(mut cmd: Command) -> Run {
    let cmdline = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot start {cmdline}: {e}"));
    Run {
        cmdline,
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `rrun --root ROOT ARGS...` (as a command, to run now or spawn).
pub fn rrun_cmd<I, S>(root: &Path, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rrun"));
    cmd.arg("--root").arg(root).args(args);
    cmd.env_remove("RRUN_ROOT");
    cmd
}

/// Run `rrun --root ROOT ARGS...`.
pub fn rrun<I, S>(root: &Path, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run(rrun_cmd(root, args))
}

/// Run the real skopeo (a missing skopeo is a failure that says how to get it).
pub fn skopeo<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("skopeo").is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "skopeo not found on PATH: these tests run against the real tool; run `make deps` (as root)"
    );
    let mut cmd = Command::new("skopeo");
    cmd.args(args);
    run(cmd)
}

/// A scratch directory, removed when dropped.
pub fn workdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("rrun-store-it-")
        .tempdir()
        .expect("create a temp dir")
}

/// A small root filesystem whose content depends on `seed`.
pub fn rootfs(dir: &Path, seed: &str) -> PathBuf {
    let root = dir.join(format!("rootfs-{seed}"));
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("bin/hello"), format!("#!/bin/sh\necho {seed}\n")).unwrap();
    fs::write(root.join("etc/motd"), format!("image {seed}\n")).unwrap();
    root
}

/// A private copy (mode 0600) of a test key from `tests/data`.
pub fn key_copy(dir: &Path, rel: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel);
    let dst = dir.join(rel.replace('/', "-"));
    fs::copy(&src, &dst).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
    fs::set_permissions(&dst, fs::Permissions::from_mode(0o600)).unwrap();
    dst
}

/// `sha256:<hex>` of some bytes.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Every file under `dir` with its sha256, to check that a failed command changed nothing.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), "/".into());
                stack.push(p);
            } else {
                let data = fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
                out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), sha256(&data));
            }
        }
    }
    out
}

/// The store's `index.json`.
pub fn index(root: &Path) -> Value {
    serde_json::from_slice(&fs::read(root.join("index.json")).unwrap()).unwrap()
}

/// `(ref.name, digest)` of every `index.json` entry, in order.
pub fn entries(root: &Path) -> Vec<(String, String)> {
    index(root)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                d["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The digest the store's entry `name` points to.
pub fn digest_of(root: &Path, name: &str) -> String {
    entries(root)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no entry {name} in {:?}", entries(root)))
        .1
}

/// The blob files of the store.
pub fn blobs(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(root.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// Read a blob by digest.
pub fn blob(root: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").unwrap();
    fs::read(root.join("blobs/sha256").join(hex)).unwrap()
}

/// Store a blob; returns its digest.
pub fn put_blob(root: &Path, data: &[u8]) -> String {
    let digest = sha256(data);
    let hex = digest.strip_prefix("sha256:").unwrap();
    fs::write(root.join("blobs/sha256").join(hex), data).unwrap();
    digest
}

/// Add an `index.json` entry named `name` for a manifest already stored.
pub fn add_entry(root: &Path, name: &str, digest: &str, size: usize) {
    let mut index = index(root);
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": size,
            "annotations": {"org.opencontainers.image.ref.name": name},
        }));
    fs::write(root.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}
