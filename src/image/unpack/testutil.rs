//! Test helpers for unpack: a fixture whose sentinels outside the destination prove that
//! nothing outside it changed, tree listings, small tar builders, and the hostile corpus.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{unpack_layer, Durability, LayerSource, UnpackOptions, UnpackSummary};
use crate::image::digest::Digest;
use crate::image::error::Result;
use crate::image::media_type::OCI_LAYER_TAR;

/// Absolute target the corpus uses for escapes.
pub const ABS_SENTINEL: &str = "/tmp/rrun-unpack-sentinel";

/// A committed hostile archive.
pub fn corpus(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/unpack")
        .join(format!("{name}.tar"));
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Default options without the flush.
pub fn fast() -> UnpackOptions {
    UnpackOptions {
        durability: Durability::NoSync,
        ..UnpackOptions::default()
    }
}

/// One line per entry below `dir`, symlinks not followed: type, mode, owner, size, content
/// digest or link target.
pub fn listing(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out, true);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>, strict: bool) {
    let Ok(rd) = fs::read_dir(dir) else {
        return;
    };
    for e in rd {
        let e = e.unwrap();
        let p = e.path();
        let md = fs::symlink_metadata(&p).unwrap();
        let ft = md.file_type();
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let what = if ft.is_symlink() {
            format!("link -> {}", fs::read_link(&p).unwrap().display())
        } else if ft.is_dir() {
            "dir".to_string()
        } else if ft.is_file() && md.len() > 64 << 20 {
            format!("file {} (not hashed)", md.len())
        } else if ft.is_file() {
            format!(
                "file {} {}",
                md.len(),
                Digest::of_bytes(&fs::read(&p).unwrap()).short()
            )
        } else if ft.is_char_device() {
            format!("char {:x}", md.rdev())
        } else if ft.is_block_device() {
            format!("block {:x}", md.rdev())
        } else if ft.is_fifo() {
            "fifo".to_string()
        } else {
            "other".to_string()
        };
        let mode = if ft.is_symlink() {
            0
        } else {
            md.mode() & 0o7777
        };
        let line = if strict {
            format!(
                "{what} mode={mode:o} owner={}:{} mtime={}",
                md.uid(),
                md.gid(),
                md.mtime()
            )
        } else {
            format!("{what} mode={mode:o}")
        };
        out.insert(rel, line);
        if ft.is_dir() {
            walk(root, &p, out, strict);
        }
    }
}

/// What `/etc/passwd` looks like (a hardlink to it would change its link count).
fn passwd_state() -> (u64, Vec<u8>) {
    let md = fs::metadata("/etc/passwd").unwrap();
    (md.nlink(), fs::read("/etc/passwd").unwrap())
}

/// A temporary directory `T` with `T/sentinel/{keep,dir/inner}` and a private `T/parent/`
/// in which `dest` is unpacked, plus the shared absolute sentinel directory.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub parent: PathBuf,
    pub dest: PathBuf,
    before_outside: BTreeMap<String, String>,
    before_abs: BTreeMap<String, String>,
    before_passwd: (u64, Vec<u8>),
}

impl Fixture {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let sentinel = tmp.path().join("sentinel");
        fs::create_dir_all(sentinel.join("dir")).unwrap();
        fs::write(sentinel.join("keep"), b"sentinel\n").unwrap();
        fs::write(sentinel.join("dir/inner"), b"inner\n").unwrap();
        let parent = tmp.path().join("parent");
        fs::create_dir(&parent).unwrap();
        fs::set_permissions(&parent, fs::Permissions::from_mode(0o700)).unwrap();
        fs::create_dir_all(ABS_SENTINEL).unwrap();
        let keep = Path::new(ABS_SENTINEL).join("keep");
        if !keep.exists() {
            let mut f = fs::File::create(&keep).unwrap();
            f.write_all(b"sentinel\n").unwrap();
        }
        let dest = parent.join("dest");
        let mut fx = Self {
            tmp,
            parent,
            dest,
            before_outside: BTreeMap::new(),
            before_abs: BTreeMap::new(),
            before_passwd: passwd_state(),
        };
        fx.before_outside = fx.outside();
        fx.before_abs = listing(Path::new(ABS_SENTINEL));
        fx
    }

    /// Everything in `T` except the contents of `T/parent`.
    fn outside(&self) -> BTreeMap<String, String> {
        let mut l = listing(self.tmp.path());
        l.retain(|k, _| k != "parent" && !k.starts_with("parent/"));
        l
    }

    /// Unpack a layer into `dest`.
    pub fn unpack(
        &self,
        blob: &[u8],
        media_type: &str,
        opts: &UnpackOptions,
    ) -> Result<UnpackSummary> {
        unpack_layer(blob, media_type, &self.dest, opts)
    }

    /// Nothing outside `dest` changed, no staging directory is left, and `dest` exists only
    /// when the unpack succeeded.
    pub fn check(&self, succeeded: bool) {
        assert_eq!(
            self.outside(),
            self.before_outside,
            "something outside dest changed"
        );
        assert_eq!(
            listing(Path::new(ABS_SENTINEL)),
            self.before_abs,
            "{ABS_SENTINEL} changed"
        );
        assert!(self.before_passwd == passwd_state(), "/etc/passwd changed");
        for p in ["/pwned", "/etc/rrun-pwned", "/tmp/pwned"] {
            assert!(fs::symlink_metadata(p).is_err(), "{p} appeared");
        }
        let names: Vec<String> = fs::read_dir(&self.parent)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        if succeeded {
            assert_eq!(names, ["dest"], "staging left behind");
        } else {
            assert!(names.is_empty(), "staging or dest left behind: {names:?}");
        }
    }

    /// A path inside `dest`.
    pub fn at(&self, rel: &str) -> PathBuf {
        self.dest.join(rel)
    }
}

/// A tar builder for test layers with fixed metadata.
pub struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    pub fn new() -> Self {
        Self(tar::Builder::new(Vec::new()))
    }

    fn header(kind: tar::EntryType, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(0);
        h
    }

    pub fn dir(mut self, path: &str, mode: u32) -> Self {
        let mut h = Self::header(tar::EntryType::Directory, mode);
        self.0.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    pub fn file(mut self, path: &str, data: &[u8], mode: u32) -> Self {
        let mut h = Self::header(tar::EntryType::Regular, mode);
        h.set_size(data.len() as u64);
        self.0.append_data(&mut h, path, data).unwrap();
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777);
        self.0.append_link(&mut h, path, target).unwrap();
        self
    }

    pub fn hardlink(mut self, path: &str, target: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Link, 0o644);
        self.0.append_link(&mut h, path, target).unwrap();
        self
    }

    /// A file with PAX records before it.
    pub fn file_pax(mut self, path: &str, data: &[u8], mode: u32, pax: &[(&str, &[u8])]) -> Self {
        self.0.append_pax_extensions(pax.iter().copied()).unwrap();
        self.file(path, data, mode)
    }

    /// A directory with PAX records before it.
    pub fn dir_pax(mut self, path: &str, mode: u32, pax: &[(&str, &[u8])]) -> Self {
        self.0.append_pax_extensions(pax.iter().copied()).unwrap();
        self.dir(path, mode)
    }

    pub fn finish(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

/// gzip some bytes.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A busybox root filesystem as `make-busybox-image.sh` builds it: `/bin/busybox`, one
/// absolute symlink per applet, a few directories and `/etc/passwd`.
pub fn busybox_rootfs(dir: &Path) {
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "proc", "sys", "dev", "root", "var",
        "run",
    ] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    fs::set_permissions(dir.join("bin/busybox"), fs::Permissions::from_mode(0o755)).unwrap();
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list-full")
        .output()
        .unwrap();
    assert!(list.status.success());
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        let p = dir.join(applet);
        if applet != "bin/busybox" && !p.exists() {
            std::os::unix::fs::symlink("/bin/busybox", p).unwrap();
        }
    }
    fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
}

/// Layers for `apply_layers` from uncompressed tars, each with its diff_id.
pub fn sources(tars: Vec<Vec<u8>>) -> Vec<Result<LayerSource<'static>>> {
    tars.into_iter()
        .map(|t| {
            Ok(LayerSource {
                diff_id: Some(Digest::of_bytes(&t)),
                reader: Box::new(std::io::Cursor::new(t)),
                media_type: OCI_LAYER_TAR.into(),
            })
        })
        .collect()
}
