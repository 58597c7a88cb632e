//! Safe unpack as root: overlay-format snapshots that the kernel's overlayfs honours, device
//! nodes, ownership and file capabilities, the same hostile archives in overlay mode, a real
//! unprivileged run (as `nobody`, re-executing this test binary), and the busybox image
//! unpacked by rrun and by `umoci unpack` giving the same tree. These tests need root and fail
//! (never skip) without it; the umoci comparison also needs `umoci` on PATH.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use rrun::image::digest::Digest;
use rrun::image::layout::Layout;
use rrun::image::manifest::{parse_node, ImageConfig, Node};
use rrun::image::media_type::{OCI_LAYER_GZIP, OCI_LAYER_TAR};
use rrun::image::transport::resolve_in;
use rrun::image::unpack::{
    ensure_snapshot, unpack_layer, Durability, SetuidPolicy, UnpackOptions, Whiteouts,
};
use rrun::image::{ImageError, ImageRef, ImportOptions};

fn assert_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test needs root (device nodes, ownership, trusted xattrs, mounts): run cargo test as root"
    );
}

fn corpus(name: &str) -> Vec<u8> {
    fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/unpack/{name}.tar")))
        .unwrap()
}

fn fast() -> UnpackOptions {
    UnpackOptions {
        durability: Durability::NoSync,
        ..UnpackOptions::default()
    }
}

/// A private parent directory (0700) for destinations.
fn private_tmp() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o700)).unwrap();
    t
}

/// A tar header with fixed metadata.
fn header(kind: tar::EntryType, mode: u32, uid: u64, gid: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_mtime(1_600_000_000);
    h.set_size(0);
    h
}

fn add_file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32, owner: (u64, u64)) {
    let mut h = header(tar::EntryType::Regular, mode, owner.0, owner.1);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, path, data).unwrap();
}

fn add_dir(b: &mut tar::Builder<Vec<u8>>, path: &str) {
    let mut h = header(tar::EntryType::Directory, 0o755, 0, 0);
    b.append_data(&mut h, path, &[][..]).unwrap();
}

/// One line per entry: type, mode, owner, size, content digest or link/device, mtime.
fn listing(dir: &Path, mtimes: bool) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>, mtimes: bool) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let md = fs::symlink_metadata(&p).unwrap();
            let ft = md.file_type();
            let what = if ft.is_symlink() {
                format!("link {}", fs::read_link(&p).unwrap().display())
            } else if ft.is_dir() {
                "dir".into()
            } else if ft.is_file() {
                format!(
                    "file {} {}",
                    md.len(),
                    Digest::of_bytes(&fs::read(&p).unwrap())
                )
            } else if ft.is_char_device() {
                format!("char {:x}", md.rdev())
            } else {
                "other".into()
            };
            let mode = if ft.is_symlink() {
                0
            } else {
                md.mode() & 0o7777
            };
            let mut line = format!("{what} {mode:o} {}:{}", md.uid(), md.gid());
            if mtimes {
                line.push_str(&format!(" {}", md.mtime()));
            }
            out.insert(p.strip_prefix(root).unwrap().display().to_string(), line);
            if ft.is_dir() {
                walk(root, &p, out, mtimes);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out, mtimes);
    out
}

/// Unmounts on drop.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn overlay_snapshots_whiteouts_and_opaque_dirs_work_under_overlayfs() {
    assert_root();
    let store = private_tmp();
    let mut lower = tar::Builder::new(Vec::new());
    add_dir(&mut lower, "a/");
    add_file(&mut lower, "a/x", b"x", 0o644, (0, 0));
    add_file(&mut lower, "a/y", b"y", 0o644, (0, 0));
    add_dir(&mut lower, "b/");
    add_file(&mut lower, "b/old", b"old", 0o644, (0, 0));
    add_file(&mut lower, "c", b"c", 0o644, (0, 0));
    let lower = lower.into_inner().unwrap();
    let mut upper = tar::Builder::new(Vec::new());
    add_dir(&mut upper, "a/");
    add_file(&mut upper, "a/.wh.x", b"", 0o644, (0, 0));
    add_dir(&mut upper, "b/");
    add_file(&mut upper, "b/.wh..wh..opq", b"", 0o644, (0, 0));
    add_file(&mut upper, "b/new", b"new", 0o644, (0, 0));
    add_file(&mut upper, ".wh.c", b"", 0o644, (0, 0));
    let upper = upper.into_inner().unwrap();

    let mut roots = Vec::new();
    for tar in [&lower, &upper] {
        let d = Digest::of_bytes(tar);
        let blob = tar.clone();
        let rootfs = ensure_snapshot(store.path(), &d, move || {
            Ok((
                Box::new(std::io::Cursor::new(blob)) as Box<dyn Read>,
                OCI_LAYER_TAR.to_string(),
            ))
        })
        .unwrap();
        roots.push(rootfs);
    }
    let up = &roots[1];
    let wh = fs::symlink_metadata(up.join("a/x")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "a/x is a 0/0 whiteout"
    );
    assert_eq!(
        xattr::get(up.join("b"), "trusted.overlay.opaque")
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
    assert!(!up.join("a/.wh.x").exists() && !up.join("b/.wh..wh..opq").exists());

    let mnt = store.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let opts = format!("lowerdir={}:{}", up.display(), roots[0].display());
    let st = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(st.success(), "mount -t overlay failed");
    let _m = Mount(mnt.clone());
    let seen: Vec<String> = listing(&mnt, false).into_keys().collect();
    assert_eq!(seen, ["a", "a/y", "b", "b/new"]);
}

#[test]
fn device_nodes_ownership_and_setuid_as_root() {
    assert_root();
    let t = private_tmp();
    let s = unpack_layer(
        &corpus("device_nodes")[..],
        OCI_LAYER_TAR,
        &t.path().join("d"),
        &fast(),
    )
    .unwrap();
    assert_eq!(s.skipped_devices, 0);
    let null = fs::symlink_metadata(t.path().join("d/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(
        (
            rustix::fs::major(null.rdev()),
            rustix::fs::minor(null.rdev())
        ),
        (1, 3)
    );
    assert_eq!(null.mode() & 0o7777, 0o666);
    let lp = fs::symlink_metadata(t.path().join("d/loop0")).unwrap();
    assert!(lp.file_type().is_block_device());
    assert!(fs::symlink_metadata(t.path().join("d/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());

    let mut b = tar::Builder::new(Vec::new());
    add_file(&mut b, "owned", b"o", 0o4750, (1000, 1001));
    let mut h = header(tar::EntryType::Symlink, 0o777, 1002, 1003);
    b.append_link(&mut h, "link", "owned").unwrap();
    let tar = b.into_inner().unwrap();
    unpack_layer(&tar[..], OCI_LAYER_TAR, &t.path().join("o"), &fast()).unwrap();
    let md = fs::symlink_metadata(t.path().join("o/owned")).unwrap();
    assert_eq!(
        (md.uid(), md.gid(), md.mode() & 0o7777),
        (1000, 1001, 0o4750)
    );
    let md = fs::symlink_metadata(t.path().join("o/link")).unwrap();
    assert_eq!((md.uid(), md.gid()), (1002, 1003));
}

#[test]
fn file_capabilities_kept_as_root_and_dropped_by_strip() {
    assert_root();
    // VFS_CAP_REVISION_2 with the effective bit: cap_net_raw+ep.
    let mut cap = vec![0x01, 0x00, 0x00, 0x02];
    cap.extend_from_slice(&(1u32 << 13).to_le_bytes());
    cap.extend_from_slice(&[0u8; 12]);
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("SCHILY.xattr.security.capability", &cap[..])])
        .unwrap();
    add_file(&mut b, "ping", b"\x7fELF", 0o755, (0, 0));
    let tar = b.into_inner().unwrap();
    let t = private_tmp();
    unpack_layer(&tar[..], OCI_LAYER_TAR, &t.path().join("keep"), &fast()).unwrap();
    assert_eq!(
        xattr::get(t.path().join("keep/ping"), "security.capability").unwrap(),
        Some(cap.clone())
    );
    let strip = UnpackOptions {
        setuid: SetuidPolicy::Strip,
        ..fast()
    };
    let s = unpack_layer(&tar[..], OCI_LAYER_TAR, &t.path().join("strip"), &strip).unwrap();
    assert_eq!(s.skipped_xattrs, 1);
    assert_eq!(
        xattr::get(t.path().join("strip/ping"), "security.capability").unwrap(),
        None
    );
    // A capability is as dangerous as setuid where other users can reach it.
    let public = tempfile::tempdir().unwrap();
    fs::set_permissions(public.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let err = unpack_layer(&tar[..], OCI_LAYER_TAR, &public.path().join("d"), &fast()).unwrap_err();
    assert!(matches!(err, ImageError::HostVisibleSetuid { .. }), "{err}");
    assert_eq!(fs::read_dir(public.path()).unwrap().count(), 0);
}

#[test]
fn hostile_whiteouts_in_overlay_mode_stay_inside_the_root() {
    assert_root();
    let t = private_tmp();
    let sentinel = t.path().join("sentinel");
    fs::create_dir(&sentinel).unwrap();
    fs::write(sentinel.join("keep"), b"keep").unwrap();
    fs::create_dir_all("/tmp/rrun-unpack-sentinel").unwrap();
    let before = listing(Path::new("/tmp/rrun-unpack-sentinel"), true);
    let parent = t.path().join("parent");
    fs::create_dir(&parent).unwrap();
    let opts = UnpackOptions {
        whiteouts: Whiteouts::Overlay,
        ..fast()
    };
    let dest = parent.join("dest");
    unpack_layer(
        &corpus("whiteout_through_symlink")[..],
        OCI_LAYER_TAR,
        &dest,
        &opts,
    )
    .unwrap();
    let wh = fs::symlink_metadata(dest.join("sentinel/keep")).unwrap();
    assert!(
        wh.file_type().is_char_device(),
        "the whiteout device is inside the root"
    );
    assert_eq!(
        xattr::get(
            dest.join("tmp/rrun-unpack-sentinel"),
            "trusted.overlay.opaque"
        )
        .unwrap()
        .as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(fs::read(sentinel.join("keep")).unwrap(), b"keep");
    assert_eq!(
        xattr::get(&sentinel, "trusted.overlay.opaque").unwrap(),
        None
    );
    assert_eq!(
        listing(Path::new("/tmp/rrun-unpack-sentinel"), true),
        before
    );
    assert_eq!(
        xattr::get("/tmp/rrun-unpack-sentinel", "trusted.overlay.opaque").unwrap(),
        None
    );
    // An opaque marker at the root marks the root itself.
    let dest = parent.join("opaque");
    unpack_layer(&corpus("opaque_root")[..], OCI_LAYER_TAR, &dest, &opts).unwrap();
    assert_eq!(
        xattr::get(&dest, "trusted.overlay.opaque")
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(xattr::get(&parent, "trusted.overlay.opaque").unwrap(), None);
}

/// As root, re-run this test as `nobody`; as `nobody`, unpack device nodes: skipped.
#[test]
fn device_nodes_are_skipped_for_a_real_unprivileged_user() {
    const ENV: &str = "RRUN_UNPACK_TEST_NOBODY_DIR";
    if let Some(dir) = std::env::var_os(ENV) {
        assert!(
            !rustix::process::geteuid().is_root(),
            "the child must not be root"
        );
        let dest = Path::new(&dir).join("dest");
        let s = unpack_layer(&corpus("device_nodes")[..], OCI_LAYER_TAR, &dest, &fast()).unwrap();
        assert_eq!(s.skipped_devices, 2);
        assert_eq!(s.whiteouts, Whiteouts::Markers);
        assert!(!dest.join("null").exists());
        assert!(fs::symlink_metadata(dest.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        return;
    }
    assert_root();
    let t = tempfile::tempdir().unwrap();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let work = t.path().join("work");
    fs::create_dir(&work).unwrap();
    std::os::unix::fs::chown(&work, Some(65534), Some(65534)).unwrap();
    fs::set_permissions(&work, fs::Permissions::from_mode(0o700)).unwrap();
    use std::os::unix::process::CommandExt;
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "unpack_root::device_nodes_are_skipped_for_a_real_unprivileged_user",
            "--exact",
            "--test-threads=1",
        ])
        .env(ENV, &work)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 passed"), "{stdout}");
    assert!(work.join("dest/fifo").exists());
}

/// The layer blob and media type of a one-layer image in a layout, and its config diff_id.
fn layer_of(layout_dir: &Path, tag: &str) -> (PathBuf, String, Digest) {
    let layout = Layout::open(layout_dir).unwrap();
    let desc = resolve_in(&layout.read_index().unwrap(), "img", Some(tag)).unwrap();
    let raw = layout.read_blob(&desc, 1 << 20, "manifest").unwrap();
    let Node::Manifest(m) = parse_node(&raw, &desc).unwrap() else {
        panic!("not a manifest")
    };
    let config: ImageConfig =
        serde_json::from_slice(&layout.read_blob(&m.config, 1 << 20, "config").unwrap()).unwrap();
    (
        layout.blob_path(&m.layers[0].digest),
        m.layers[0].media_type.clone(),
        config.rootfs.diff_ids[0].clone(),
    )
}

#[test]
fn busybox_image_unpacks_like_umoci() {
    assert_root();
    let t = private_tmp();
    let rootfs = t.path().join("rootfs");
    for d in ["bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "root"] {
        fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    let out = Command::new("/bin/busybox")
        .arg("--list-full")
        .output()
        .unwrap();
    for applet in String::from_utf8(out.stdout).unwrap().lines() {
        if applet != "bin/busybox" {
            std::os::unix::fs::symlink("/bin/busybox", rootfs.join(applet)).unwrap();
        }
    }
    fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::hard_link(rootfs.join("etc/passwd"), rootfs.join("etc/passwd-")).unwrap();
    std::os::unix::fs::chown(rootfs.join("root"), Some(0), Some(0)).unwrap();
    fs::set_permissions(rootfs.join("root"), fs::Permissions::from_mode(0o700)).unwrap();

    let layout = t.path().join("layout");
    let r: ImageRef = format!("oci:{}:latest", layout.display()).parse().unwrap();
    rrun::image::import(&rootfs, &r, &ImportOptions::default()).unwrap();
    let (blob, media_type, diff_id) = layer_of(&layout, "latest");
    assert_eq!(media_type, OCI_LAYER_GZIP);

    let ours = t.path().join("ours");
    let s = unpack_layer(fs::File::open(&blob).unwrap(), &media_type, &ours, &fast()).unwrap();
    assert_eq!(s.diff_id, diff_id);

    let bundle = t.path().join("bundle");
    let out = Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:latest", layout.display()))
        .arg(&bundle)
        .output()
        .expect("umoci is needed for this test: apt-get install umoci");
    assert!(
        out.status.success(),
        "umoci: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = listing(&bundle.join("rootfs"), true);
    assert!(theirs.len() > 250);
    assert_eq!(listing(&ours, true), theirs);
    let ino = |p: &Path| fs::metadata(p).unwrap().ino();
    assert_eq!(
        ino(&ours.join("etc/passwd")),
        ino(&ours.join("etc/passwd-"))
    );
}
