//! Unpacking ordinary layers: a busybox image made by `image import` comes back as the same
//! tree with the config's diff_id; whiteouts and opaque directories across layers; hardlinks;
//! xattrs; zstd; snapshots made once, checked, and shared by concurrent builders.

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::snapshot::{self, SnapshotMeta};
use super::testutil::{busybox_rootfs, fast, gzip, listing, sources, Fixture, Tar};
use super::{
    apply_layers, ensure_snapshot, ensure_snapshot_with, unpack_layer, Privileges, UnpackOptions,
    Whiteouts,
};
use crate::image::digest::Digest;
use crate::image::error::{ImageError, Result};
use crate::image::layout::Layout;
use crate::image::manifest::{parse_node, ImageConfig, Node};
use crate::image::media_type::{OCI_LAYER_GZIP, OCI_LAYER_GZIP_ENC, OCI_LAYER_TAR, OCI_LAYER_ZSTD};
use crate::image::transport::resolve_in;

fn names(dir: &Path) -> Vec<String> {
    listing(dir).into_keys().collect()
}

/// Import a directory as a one-layer image; returns the layer blob path, its media type and
/// the config's diff_id.
fn import_dir(rootfs: &Path, layout_dir: &Path) -> (PathBuf, String, Digest) {
    let r = format!("oci:{}:latest", layout_dir.display())
        .parse()
        .unwrap();
    crate::image::import::import_at(rootfs, &r, &Default::default(), 1_700_000_000).unwrap();
    let layout = Layout::open(layout_dir).unwrap();
    let desc = resolve_in(&layout.read_index().unwrap(), "img", Some("latest")).unwrap();
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
fn busybox_import_unpacks_to_the_same_tree_with_the_config_diff_id() {
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let (blob, media_type, diff_id) = import_dir(&rootfs, &tmp.path().join("layout"));
    assert_eq!(media_type, OCI_LAYER_GZIP);
    let dest = tmp.path().join("dest");
    let opts = UnpackOptions {
        diff_id: Some(diff_id.clone()),
        ..fast()
    };
    let s = unpack_layer(fs::File::open(&blob).unwrap(), &media_type, &dest, &opts).unwrap();
    assert_eq!(s.diff_id, diff_id);
    let want = listing(&rootfs);
    assert!(want.len() > 250, "{} entries", want.len());
    assert_eq!(listing(&dest), want);
    assert_eq!(s.entries, want.len() as u64);
    // The same check against GNU tar's reading of the blob.
    let out = std::process::Command::new("tar")
        .arg("-tzf")
        .arg(&blob)
        .output()
        .unwrap();
    let mut tar_names: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim_end_matches('/').to_string())
        .collect();
    tar_names.sort();
    assert_eq!(tar_names, names(&dest));
}

#[test]
fn a_wrong_diff_id_leaves_nothing() {
    let fx = Fixture::new();
    let tar = Tar::new().file("f", b"data\n", 0o644).finish();
    let opts = UnpackOptions {
        diff_id: Some(Digest::of_bytes(b"something else")),
        ..fast()
    };
    let err = fx.unpack(&tar, OCI_LAYER_TAR, &opts).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    fx.check(false);
}

#[test]
fn encrypted_layers_and_existing_destinations_are_refused() {
    let fx = Fixture::new();
    let tar = Tar::new().file("f", b"data\n", 0o644).finish();
    let err = fx.unpack(&tar, OCI_LAYER_GZIP_ENC, &fast()).unwrap_err();
    assert!(matches!(err, ImageError::EncryptedLayer { .. }), "{err}");
    fx.check(false);
    fs::create_dir(&fx.dest).unwrap();
    let err = fx.unpack(&tar, OCI_LAYER_TAR, &fast()).unwrap_err();
    assert!(matches!(err, ImageError::DestinationExists { .. }), "{err}");
}

#[test]
fn zstd_layers_unpack_with_their_diff_id() {
    let fx = Fixture::new();
    let tar = Tar::new()
        .dir("etc/", 0o755)
        .file("etc/hostname", b"box\n", 0o644)
        .finish();
    let blob = zstd::encode_all(&tar[..], 3).unwrap();
    let s = fx.unpack(&blob, OCI_LAYER_ZSTD, &fast()).unwrap();
    fx.check(true);
    assert_eq!(s.diff_id, Digest::of_bytes(&tar));
    assert_eq!(s.bytes, tar.len() as u64);
    assert_eq!(fs::read(fx.at("etc/hostname")).unwrap(), b"box\n");
}

#[test]
fn whiteouts_across_two_layers() {
    let fx = Fixture::new();
    let lower = Tar::new()
        .dir("a/", 0o755)
        .file("a/x", b"x", 0o644)
        .file("a/y", b"y", 0o644)
        .dir("b/", 0o755)
        .file("b/z", b"z", 0o644)
        .symlink("link", "/a")
        .finish();
    let upper = Tar::new()
        .file("a/.wh.x", b"", 0o644)
        .file(".wh.b", b"", 0o644)
        .file(".wh.link", b"", 0o644)
        .file(".wh.never-existed", b"", 0o644)
        // Made and whited out in the same layer: a whiteout only hides lower layers.
        .file("mine", b"m", 0o644)
        .file(".wh.mine", b"", 0o644)
        .finish();
    let s = apply_layers(sources(vec![lower, upper]), &fx.dest, &fast()).unwrap();
    fx.check(true);
    assert_eq!(s.len(), 2);
    assert!(s.iter().all(|s| s.whiteouts == Whiteouts::Apply));
    assert_eq!(names(&fx.dest), ["a", "a/y", "mine"]);
}

#[test]
fn opaque_directory_as_in_the_image_spec_example() {
    let lower = Tar::new()
        .dir("a/", 0o755)
        .dir("a/b/", 0o755)
        .dir("a/b/c/", 0o755)
        .file("a/b/c/bar", b"bar", 0o644)
        .file("a/other", b"o", 0o644)
        .finish();
    // The spec says the marker applies first wherever it appears in the layer.
    for marker_first in [true, false] {
        let mut t = Tar::new().dir("a/", 0o750);
        if marker_first {
            t = t.file("a/.wh..wh..opq", b"", 0o644);
        }
        t = t
            .dir("a/b/", 0o755)
            .dir("a/b/c/", 0o755)
            .file("a/b/c/foo", b"foo", 0o644);
        if !marker_first {
            t = t.file("a/.wh..wh..opq", b"", 0o644);
        }
        let fx = Fixture::new();
        apply_layers(sources(vec![lower.clone(), t.finish()]), &fx.dest, &fast()).unwrap();
        fx.check(true);
        assert_eq!(
            names(&fx.dest),
            ["a", "a/b", "a/b/c", "a/b/c/foo"],
            "marker first: {marker_first}"
        );
        assert_eq!(fs::metadata(fx.at("a")).unwrap().mode() & 0o777, 0o750);
    }
}

#[test]
fn hardlinks_inside_a_layer_and_onto_a_lower_layer() {
    let fx = Fixture::new();
    let tar = Tar::new()
        .dir("bin/", 0o755)
        .file("bin/tool", b"#!tool", 0o755)
        .hardlink("bin/alias", "bin/tool")
        .hardlink("bin/abs-alias", "/bin/tool")
        .finish();
    fx.unpack(&tar, OCI_LAYER_TAR, &fast()).unwrap();
    fx.check(true);
    let ino = |p: &str| fs::metadata(fx.at(p)).unwrap().ino();
    assert_eq!(ino("bin/alias"), ino("bin/tool"));
    assert_eq!(ino("bin/abs-alias"), ino("bin/tool"));
    assert_eq!(fs::metadata(fx.at("bin/tool")).unwrap().nlink(), 3);

    // A hardlink before its target is not inside the root yet: refused.
    let fx = Fixture::new();
    let tar = Tar::new()
        .hardlink("early", "later")
        .file("later", b"", 0o644)
        .finish();
    let err = fx.unpack(&tar, OCI_LAYER_TAR, &fast()).unwrap_err();
    assert!(matches!(err, ImageError::UnsafeEntry { .. }), "{err}");
    fx.check(false);

    // Across layers when they are applied into one directory.
    let fx = Fixture::new();
    let lower = Tar::new().file("f", b"lower", 0o644).finish();
    let upper = Tar::new().hardlink("g", "f").finish();
    apply_layers(sources(vec![lower, upper]), &fx.dest, &fast()).unwrap();
    fx.check(true);
    assert_eq!(
        fs::metadata(fx.at("g")).unwrap().ino(),
        fs::metadata(fx.at("f")).unwrap().ino()
    );
}

#[test]
fn user_xattrs_are_preserved_with_binary_values() {
    let fx = Fixture::new();
    let tar = Tar::new()
        .dir_pax("d/", 0o755, &[("SCHILY.xattr.user.dir", b"on a dir")])
        .file_pax(
            "d/f",
            b"content",
            0o644,
            &[
                ("SCHILY.xattr.user.bin", b"a\0b\xff"),
                ("SCHILY.xattr.user.empty", b""),
            ],
        )
        .finish();
    let s = fx.unpack(&tar, OCI_LAYER_TAR, &fast()).unwrap();
    fx.check(true);
    assert_eq!(s.skipped_xattrs, 0);
    assert_eq!(
        xattr::get(fx.at("d"), "user.dir").unwrap().unwrap(),
        b"on a dir"
    );
    assert_eq!(
        xattr::get(fx.at("d/f"), "user.bin").unwrap().unwrap(),
        b"a\0b\xff"
    );
    assert_eq!(
        xattr::get(fx.at("d/f"), "user.empty").unwrap().unwrap(),
        b""
    );
}

#[test]
fn modes_mtimes_and_readonly_directories() {
    let fx = Fixture::new();
    let tar = Tar::new()
        .dir("ro/", 0o555)
        .file("ro/f", b"x", 0o400)
        .dir("ro/sub/", 0o700)
        .file("ro/sub/g", b"y", 0o640)
        .finish();
    let opts = UnpackOptions {
        privileges: Privileges::Rootless,
        ..fast()
    };
    fx.unpack(&tar, OCI_LAYER_TAR, &opts).unwrap();
    fx.check(true);
    let md = |p: &str| fs::symlink_metadata(fx.at(p)).unwrap();
    assert_eq!(md("ro").mode() & 0o7777, 0o555);
    assert_eq!(md("ro/f").mode() & 0o7777, 0o400);
    assert_eq!(md("ro/sub/g").mode() & 0o7777, 0o640);
    for p in ["ro", "ro/f", "ro/sub", "ro/sub/g"] {
        assert_eq!(md(p).mtime(), 1_600_000_000, "{p}");
    }
    // The tree can be removed again by its owner.
    super::remove::remove_path(&fx.dest).unwrap();
}

fn layer_blob() -> (Vec<u8>, Digest) {
    let tar = Tar::new()
        .dir("etc/", 0o755)
        .file("etc/os-release", b"ID=test\n", 0o644)
        .file("etc/.wh.gone", b"", 0o644)
        .finish();
    let d = Digest::of_bytes(&tar);
    (gzip(&tar), d)
}

fn opener(blob: Vec<u8>) -> impl FnOnce() -> Result<(Box<dyn Read>, String)> {
    move || {
        Ok((
            Box::new(std::io::Cursor::new(blob)) as Box<dyn Read>,
            OCI_LAYER_GZIP.to_string(),
        ))
    }
}

fn rootless() -> UnpackOptions {
    UnpackOptions {
        privileges: Privileges::Rootless,
        ..UnpackOptions::default()
    }
}

#[test]
fn snapshot_is_made_once_with_metadata_and_markers() {
    let tmp = tempfile::tempdir().unwrap();
    let (blob, diff_id) = layer_blob();
    let rootfs = ensure_snapshot_with(tmp.path(), &diff_id, &rootless(), opener(blob)).unwrap();
    assert_eq!(
        rootfs,
        tmp.path()
            .join("snapshots")
            .join(diff_id.hex())
            .join("rootfs")
    );
    assert_eq!(
        fs::read(rootfs.join("etc/os-release")).unwrap(),
        b"ID=test\n"
    );
    assert!(
        rootfs.join("etc/.wh.gone").is_file(),
        "rootless snapshots keep markers"
    );
    let meta: SnapshotMeta = snapshot::read_meta(tmp.path(), &diff_id).unwrap();
    assert_eq!(
        (meta.diff_id.clone(), meta.whiteouts, meta.entries),
        (diff_id.clone(), Whiteouts::Markers, 3)
    );
    let dir = snapshot::snapshot_dir(tmp.path(), &diff_id);
    assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    assert_eq!(
        fs::metadata(tmp.path().join("snapshots")).unwrap().mode() & 0o777,
        0o700
    );
    assert!(dir.join("done").is_file());
    // Second call: the layer is not even opened.
    let again = ensure_snapshot(tmp.path(), &diff_id, || panic!("opened twice")).unwrap();
    assert_eq!(again, rootfs);
    assert_eq!(
        snapshot::snapshot_rootfs(tmp.path(), &diff_id),
        Some(rootfs)
    );
    assert!(fs::read_dir(tmp.path().join("tmp"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn snapshot_with_the_wrong_diff_id_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (blob, _) = layer_blob();
    let wrong = Digest::of_bytes(b"not this layer");
    let err = ensure_snapshot_with(tmp.path(), &wrong, &rootless(), opener(blob)).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert!(fs::read_dir(tmp.path().join("snapshots"))
        .unwrap()
        .next()
        .is_none());
    assert!(fs::read_dir(tmp.path().join("tmp"))
        .unwrap()
        .next()
        .is_none());
    assert_eq!(snapshot::snapshot_rootfs(tmp.path(), &wrong), None);
}

#[test]
fn an_incomplete_snapshot_is_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let (blob, diff_id) = layer_blob();
    let dir = snapshot::snapshot_dir(tmp.path(), &diff_id);
    fs::create_dir_all(dir.join("rootfs/junk")).unwrap();
    let rootfs = ensure_snapshot_with(tmp.path(), &diff_id, &rootless(), opener(blob)).unwrap();
    assert!(!rootfs.join("junk").exists());
    assert!(rootfs.join("etc/os-release").is_file());
    assert!(fs::read_dir(tmp.path().join("tmp"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn concurrent_builders_in_threads_end_with_one_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let (blob, diff_id) = layer_blob();
    let paths: Vec<PathBuf> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (blob, diff_id, root) = (blob.clone(), diff_id.clone(), tmp.path());
                s.spawn(move || {
                    ensure_snapshot_with(root, &diff_id, &rootless(), opener(blob)).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(paths.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        fs::read_dir(tmp.path().join("snapshots")).unwrap().count(),
        1
    );
    assert!(fs::read_dir(tmp.path().join("tmp"))
        .unwrap()
        .next()
        .is_none());
}

/// Runs in four child processes (this test binary, filtered to this test) that build the same
/// snapshot at once, then checks that one complete snapshot is left.
#[test]
fn concurrent_builders_in_processes_end_with_one_snapshot() {
    const ROOT_ENV: &str = "RRUN_UNPACK_TEST_SNAPSHOT_ROOT";
    let (blob, diff_id) = layer_blob();
    if let Some(root) = std::env::var_os(ROOT_ENV) {
        let p =
            ensure_snapshot_with(Path::new(&root), &diff_id, &rootless(), opener(blob)).unwrap();
        assert!(p.join("etc/os-release").is_file());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let name =
        "image::unpack::normal_tests::concurrent_builders_in_processes_end_with_one_snapshot";
    let children: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new(&exe)
                .args([name, "--exact", "--test-threads=1", "--quiet"])
                .env(ROOT_ENV, tmp.path())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
    }
    assert_eq!(
        fs::read_dir(tmp.path().join("snapshots")).unwrap().count(),
        1
    );
    assert!(snapshot::snapshot_rootfs(tmp.path(), &diff_id).is_some());
    assert!(fs::read_dir(tmp.path().join("tmp"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn apply_layers_checks_every_diff_id_and_leaves_nothing_on_failure() {
    let fx = Fixture::new();
    let l1 = Tar::new().file("one", b"1", 0o644).finish();
    let l2 = Tar::new().file("two", b"2", 0o644).finish();
    let mut layers = sources(vec![l1, l2]);
    if let Ok(l) = &mut layers[1] {
        l.diff_id = Some(Digest::of_bytes(b"wrong"));
    }
    let err = apply_layers(layers, &fx.dest, &fast()).unwrap_err();
    assert!(
        matches!(&err, ImageError::DigestMismatch { what, .. } if what.contains("layer 1")),
        "{err}"
    );
    fx.check(false);
    let opts = UnpackOptions {
        diff_id: Some(Digest::of_bytes(b"x")),
        ..fast()
    };
    let err = apply_layers(sources(vec![]), &fx.dest, &opts).unwrap_err();
    assert!(
        matches!(err, ImageError::InvalidUnpackOptions { .. }),
        "{err}"
    );
    fx.check(false);
}

#[test]
fn removed_snapshots_disappear_at_once_and_can_be_made_again() {
    let tmp = tempfile::tempdir().unwrap();
    let (blob, diff_id) = layer_blob();
    ensure_snapshot_with(tmp.path(), &diff_id, &rootless(), opener(blob.clone())).unwrap();
    snapshot::remove_snapshot(tmp.path(), &diff_id).unwrap();
    assert_eq!(snapshot::snapshot_rootfs(tmp.path(), &diff_id), None);
    assert!(fs::read_dir(tmp.path().join("snapshots"))
        .unwrap()
        .next()
        .is_none());
    assert!(fs::read_dir(tmp.path().join("tmp"))
        .unwrap()
        .next()
        .is_none());
    snapshot::remove_snapshot(tmp.path(), &diff_id).unwrap();
    let again = ensure_snapshot_with(tmp.path(), &diff_id, &rootless(), opener(blob)).unwrap();
    assert!(again.join("etc/os-release").is_file());
}
