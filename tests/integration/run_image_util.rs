//! Helpers for the `run IMAGE` tests: a store and state dir of their own, busybox images
//! imported with `rrun image import`, config edits, and scans for leaked plaintext.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::runtime_util::{require_root, run_with_timeout, Out};
use crate::util::{self, Layout};

/// A private store (`--root`) and state dir (`--state`) in a temp dir.
#[derive(Debug)]
pub struct Images {
    dir: tempfile::TempDir,
}

impl Images {
    /// A fresh, empty environment (needs root).
    pub fn new() -> Images {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("rrun-ri-")
            .tempdir()
            .expect("temp dir");
        Images { dir }
    }

    /// The store root.
    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The state dir.
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// A scratch path.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `rrun --root STORE --state STATE ARGS`.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(util::rrun_bin());
        c.arg("--root")
            .arg(self.store())
            .arg("--state")
            .arg(self.state())
            .args(args)
            .stdin(std::process::Stdio::null());
        c
    }

    /// Run rrun to completion (at most 120 s).
    pub fn rrun(&self, args: &[&str]) -> Out {
        run_with_timeout(self.cmd(args), Duration::from_secs(120))
    }

    /// Import a busybox-static rootfs (built in `src`, with `extra` files added) as `name`
    /// with the `rrun image import` options `opts`.
    pub fn import_busybox(&self, src: &Path, extra: &[(&str, &[u8])], opts: &[&str], name: &str) {
        util::make_busybox_rootfs(src);
        for (path, data) in extra {
            let p = src.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, data).unwrap();
        }
        let mut args = vec!["image", "import"];
        args.extend_from_slice(opts);
        let src = src.to_str().unwrap();
        args.extend_from_slice(&[src, name]);
        self.rrun(&args).ok();
    }

    /// Change the config of the store image `name` with `edit` (via an OCI layout copy).
    pub fn edit_config(&self, name: &str, edit: impl FnOnce(&mut Value)) {
        let dir = self.path(&format!("edit-{}", name.replace([':', '/'], "-")));
        let dst = util::oci(&dir, "t");
        self.rrun(&["image", "save", name, &dst]).ok();
        let layout = Layout::new(&dir);
        let mut index = layout.index();
        let slot = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .position(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "t")
            .expect("saved tag");
        let mut manifest = layout.manifest("t");
        let mut config = layout.config("t");
        edit(&mut config);
        let data = serde_json::to_vec(&config).unwrap();
        manifest["config"]["digest"] = Value::from(layout.put_blob(&data));
        manifest["config"]["size"] = Value::from(data.len());
        let data = serde_json::to_vec(&manifest).unwrap();
        index["manifests"][slot]["digest"] = Value::from(layout.put_blob(&data));
        index["manifests"][slot]["size"] = Value::from(data.len());
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
        self.rrun(&["rmi", "-f", name]).ok();
        self.rrun(&["image", "load", &dst, name]).ok();
    }

    /// The lines of /proc/self/mountinfo that mention this environment.
    pub fn mounts(&self) -> Vec<String> {
        let me = self.dir.path().to_string_lossy().into_owned();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&me))
            .map(str::to_string)
            .collect()
    }

    /// What is left in the state dir's `rootfs/`.
    pub fn rootfs_dirs(&self) -> Vec<String> {
        match std::fs::read_dir(self.state().join("rootfs")) {
            Ok(rd) => rd
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        // Remove what a failed test left running or mounted.
        if let Ok(out) = self.cmd(&["ps", "-a", "--format", "json"]).output() {
            if let Ok(v) = serde_json::from_slice::<Value>(&out.stdout) {
                for c in v.as_array().into_iter().flatten() {
                    if let Some(id) = c["id"].as_str() {
                        let _ = self.cmd(&["rm", "-f", id]).output();
                    }
                }
            }
        }
        for m in self.mounts().iter().rev() {
            if let Some(target) = m.split(' ').nth(4) {
                let _ = nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}

/// A tmpfs mounted at a fresh temp dir for plaintext test input; unmounted (and so gone)
/// by [`PlainTmpfs::remove`] or when dropped.
#[derive(Debug)]
pub struct PlainTmpfs {
    dir: Option<tempfile::TempDir>,
}

impl PlainTmpfs {
    /// Mount it.
    pub fn new() -> PlainTmpfs {
        let dir = tempfile::Builder::new()
            .prefix("rrun-plain-")
            .tempdir()
            .expect("temp dir");
        nix::mount::mount(
            Some("rrun-test-plain"),
            dir.path(),
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("mode=0700"),
        )
        .expect("mount a tmpfs for the plaintext input");
        PlainTmpfs { dir: Some(dir) }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.as_ref().unwrap().path()
    }

    /// Unmount it (its content disappears with it).
    pub fn remove(&mut self) {
        if let Some(d) = self.dir.take() {
            nix::mount::umount2(d.path(), nix::mount::MntFlags::MNT_DETACH)
                .expect("unmount the plaintext tmpfs");
        }
    }
}

impl Drop for PlainTmpfs {
    fn drop(&mut self) {
        if let Some(d) = self.dir.take() {
            let _ = nix::mount::umount2(d.path(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Files under `dirs` whose bytes contain `needle`, read directly (symlinks not followed,
/// other filesystems such as /proc never entered since only these trees are walked).
pub fn raw_scan(dirs: &[&Path], needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
    while let Some(p) = stack.pop() {
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if md.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        } else if md.is_file() {
            if let Ok(data) = std::fs::read(&p) {
                if data.windows(needle.len()).any(|w| w == needle) {
                    found.push(p);
                }
            }
        }
    }
    found
}

/// `grep -r -a -F -l NEEDLE DIRS...`: the files grep finds the needle in.
pub fn grep_scan(dirs: &[&Path], needle: &str) -> Vec<String> {
    let out = Command::new("grep")
        .args(["-r", "-a", "-F", "-l", "--", needle])
        .args(dirs)
        .output()
        .expect("run grep");
    assert!(
        out.status.code() == Some(0)
            || out.status.code() == Some(1)
            || out.status.code() == Some(2),
        "grep failed: {out:?}"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}
