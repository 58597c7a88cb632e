//! The hostile corpus (tests/data/unpack/*.tar, made by make_hostile.py): one test per archive,
//! each checking the documented decision (refused or neutralised), that nothing outside the
//! destination changed, and that no staging directory is left. Root-only variants live in
//! tests/integration/unpack_root.rs.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::testutil::{corpus, fast, gzip, listing, sources, Fixture, Tar, ABS_SENTINEL};
use super::{apply_layers, SetuidPolicy, UnpackOptions, Whiteouts};
use crate::image::error::ImageError;
use crate::image::media_type::{OCI_LAYER_GZIP, OCI_LAYER_TAR};

/// Unpack a corpus archive with options; expect a refusal matching `want`.
fn refused(name: &str, opts: &UnpackOptions, want: impl Fn(&ImageError) -> bool) -> ImageError {
    let fx = Fixture::new();
    let err = fx
        .unpack(&corpus(name), OCI_LAYER_TAR, opts)
        .expect_err("the archive must be refused");
    assert!(want(&err), "{name}: unexpected error: {err}");
    fx.check(false);
    err
}

fn unsafe_because(err: &ImageError, part: &str) -> bool {
    matches!(err, ImageError::UnsafeEntry { reason, .. } if reason.contains(part))
}

/// Unpack a corpus archive that must succeed; returns the fixture to inspect.
fn neutralised(name: &str, opts: &UnpackOptions) -> Fixture {
    let fx = Fixture::new();
    fx.unpack(&corpus(name), OCI_LAYER_TAR, opts)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    fx.check(true);
    fx
}

fn is_file(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file())
}

fn link_target(p: &Path) -> String {
    fs::read_link(p).unwrap().to_string_lossy().into_owned()
}

#[test]
fn dotdot_traversal_is_refused() {
    refused("dotdot_traversal", &fast(), |e| unsafe_because(e, "'..'"));
}

#[test]
fn nested_dotdot_is_refused() {
    refused("dotdot_nested", &fast(), |e| unsafe_because(e, "'..'"));
}

#[test]
fn absolute_paths_land_inside_the_root() {
    let fx = neutralised("absolute_paths", &fast());
    assert!(is_file(&fx.at("tmp/rrun-unpack-sentinel/pwned")));
    assert!(is_file(&fx.at("etc/rrun-pwned")));
    // The same through gzip.
    let fx = Fixture::new();
    fx.unpack(&gzip(&corpus("absolute_paths")), OCI_LAYER_GZIP, &fast())
        .unwrap();
    fx.check(true);
    assert!(is_file(&fx.at("etc/rrun-pwned")));
}

#[test]
fn write_through_a_symlink_out_is_rerooted() {
    let fx = neutralised("symlink_write_through", &fast());
    // The symlinks are kept as written: they mean a path inside the container.
    assert_eq!(link_target(&fx.at("evil")), ABS_SENTINEL);
    assert_eq!(link_target(&fx.at("rel")), "../../sentinel");
    assert!(is_file(&fx.at("tmp/rrun-unpack-sentinel/pwned")));
    assert!(is_file(&fx.at("sentinel/pwned")));
}

#[test]
fn dotdot_symlink_chains_stop_at_the_root() {
    let fx = neutralised("symlink_dotdot_chain", &fast());
    assert!(is_file(&fx.at("etc/pwned")));
    assert!(is_file(&fx.at("sentinel/pwned")));
}

#[test]
fn writing_through_a_symlink_loop_is_refused() {
    refused("symlink_loop", &fast(), |e| {
        unsafe_because(e, "too many levels of symbolic links")
    });
    // Loops by themselves are harmless and kept.
    let fx = Fixture::new();
    let tar = Tar::new()
        .symlink("loop1", "loop2")
        .symlink("loop2", "loop1")
        .symlink("self", "self")
        .finish();
    fx.unpack(&tar, OCI_LAYER_TAR, &fast()).unwrap();
    fx.check(true);
    assert_eq!(link_target(&fx.at("self")), "self");
}

#[test]
fn hardlink_to_a_host_file_is_refused() {
    refused("hardlink_host_file", &fast(), |e| {
        unsafe_because(e, "not inside the root")
    });
}

#[test]
fn hardlink_through_dotdot_is_refused() {
    refused("hardlink_dotdot", &fast(), |e| unsafe_because(e, "'..'"));
}

#[test]
fn hardlink_through_a_symlink_out_is_refused() {
    refused("hardlink_through_symlink", &fast(), |e| {
        unsafe_because(e, "not inside the root")
    });
    refused("hardlink_through_relative_symlink", &fast(), |e| {
        unsafe_because(e, "not inside the root")
    });
}

#[test]
fn hardlink_to_a_symlink_links_the_symlink_not_its_target() {
    let fx = neutralised("hardlink_to_symlink", &fast());
    let s = fs::symlink_metadata(fx.at("s")).unwrap();
    let h = fs::symlink_metadata(fx.at("h")).unwrap();
    assert!(h.file_type().is_symlink());
    assert_eq!((s.ino(), s.nlink()), (h.ino(), 2));
    assert_eq!(link_target(&fx.at("h")), "/etc/passwd");
}

#[test]
fn whiteout_of_dotdot_is_refused() {
    for w in [Whiteouts::Markers, Whiteouts::Apply] {
        let opts = UnpackOptions {
            whiteouts: w,
            ..fast()
        };
        refused("whiteout_dotdot", &opts, |e| unsafe_because(e, "'..'"));
    }
}

#[test]
fn whiteout_of_the_root_is_refused() {
    for w in [Whiteouts::Markers, Whiteouts::Apply] {
        let opts = UnpackOptions {
            whiteouts: w,
            ..fast()
        };
        refused("whiteout_root", &opts, |e| {
            unsafe_because(e, "whiteout of nothing")
        });
    }
}

#[test]
fn whiteouts_through_symlinks_stay_inside_the_root() {
    // Markers: the marker files land at the re-rooted paths.
    let opts = UnpackOptions {
        whiteouts: Whiteouts::Markers,
        ..fast()
    };
    let fx = neutralised("whiteout_through_symlink", &opts);
    assert!(is_file(&fx.at("sentinel/.wh.keep")));
    assert!(is_file(&fx.at("tmp/rrun-unpack-sentinel/.wh..wh..opq")));
    // Applied over a lower layer that has the re-rooted paths: only those go.
    let fx = Fixture::new();
    let lower = Tar::new()
        .dir("sentinel/", 0o755)
        .file("sentinel/keep", b"inside\n", 0o644)
        .file("sentinel/other", b"inside\n", 0o644)
        .dir("tmp/", 0o1777)
        .dir("tmp/rrun-unpack-sentinel/", 0o755)
        .file("tmp/rrun-unpack-sentinel/keep", b"inside\n", 0o644)
        .finish();
    apply_layers(
        sources(vec![lower, corpus("whiteout_through_symlink")]),
        &fx.dest,
        &fast(),
    )
    .unwrap();
    fx.check(true);
    assert!(!fx.at("sentinel/keep").exists());
    assert!(fx.at("sentinel/other").exists());
    assert!(fx.at("tmp/rrun-unpack-sentinel").is_dir());
    assert!(!fx.at("tmp/rrun-unpack-sentinel/keep").exists());
}

#[test]
fn opaque_root_hides_only_lower_layers() {
    let fx = Fixture::new();
    let lower = Tar::new()
        .file("a", b"lower\n", 0o644)
        .dir("etc/", 0o755)
        .file("etc/old", b"lower\n", 0o644)
        .finish();
    apply_layers(
        sources(vec![lower, corpus("opaque_root")]),
        &fx.dest,
        &fast(),
    )
    .unwrap();
    fx.check(true);
    let names: Vec<String> = listing(&fx.dest).into_keys().collect();
    assert_eq!(names, ["etc", "etc/new", "kept"]);
    // As markers, the opaque marker is kept as the file it is.
    let opts = UnpackOptions {
        whiteouts: Whiteouts::Markers,
        ..fast()
    };
    let fx = neutralised("opaque_root", &opts);
    assert!(is_file(&fx.at(".wh..wh..opq")));
}

#[test]
fn a_file_replaces_a_directory() {
    let fx = neutralised("file_replaces_dir", &fast());
    assert_eq!(fs::read(fx.at("d")).unwrap(), b"now a file\n");
}

#[test]
fn a_directory_replaces_a_file_and_a_symlink_out() {
    let fx = neutralised("dir_replaces_file", &fast());
    assert!(is_file(&fx.at("x/y")));
    let evil = fs::symlink_metadata(fx.at("evil")).unwrap();
    assert!(evil.is_dir(), "the symlink was replaced, not followed");
    assert!(is_file(&fx.at("evil/pwned")));
}

#[test]
fn duplicate_entries_last_one_wins() {
    let fx = neutralised("duplicate_entries", &fast());
    assert_eq!(fs::read(fx.at("f")).unwrap(), b"second\n");
    assert_eq!(fs::metadata(fx.at("f")).unwrap().mode() & 0o7777, 0o640);
    assert_eq!(fs::read(fx.at("s")).unwrap(), b"file over symlink\n");
}

#[test]
fn three_hundred_character_names_pax_and_gnu() {
    let dir = "d".repeat(150);
    let path = format!("{dir}/{}", "f".repeat(149));
    for name in ["long_names_pax", "long_names_gnu"] {
        let fx = neutralised(name, &fast());
        assert_eq!(fs::read(fx.at(&path)).unwrap(), b"long\n", "{name}");
        assert_eq!(
            link_target(&fx.at(&format!("{dir}/link"))),
            format!("/{path}")
        );
        let hard = fs::metadata(fx.at(&format!("{dir}/hard"))).unwrap();
        assert_eq!(hard.ino(), fs::metadata(fx.at(&path)).unwrap().ino());
    }
}

#[test]
fn a_component_longer_than_name_max_is_refused() {
    refused("long_component", &fast(), |e| {
        unsafe_because(e, "more than 255")
    });
}

#[test]
fn setuid_and_setgid_kept_privately_stripped_on_request_refused_in_public() {
    let fx = neutralised("setuid_setgid", &fast());
    let mode = |p: &str| fs::symlink_metadata(fx.at(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("suid"), 0o4755);
    assert_eq!(mode("sgid"), 0o2755);
    assert_eq!(mode("sgid-dir"), 0o2775);
    assert_eq!(mode("sticky"), 0o1777);

    let strip = UnpackOptions {
        setuid: SetuidPolicy::Strip,
        ..fast()
    };
    let fx = neutralised("setuid_setgid", &strip);
    let mode = |p: &str| fs::symlink_metadata(fx.at(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("suid"), 0o755);
    assert_eq!(mode("sgid"), 0o755);
    assert_eq!(
        mode("sgid-dir"),
        0o2775,
        "directories keep setgid (group inheritance)"
    );

    // Keep, but the destination's parent is searchable by everyone: refused.
    let fx = Fixture::new();
    fs::set_permissions(fx.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&fx.parent, fs::Permissions::from_mode(0o755)).unwrap();
    let err = fx
        .unpack(&corpus("setuid_setgid"), OCI_LAYER_TAR, &fast())
        .unwrap_err();
    assert!(matches!(err, ImageError::HostVisibleSetuid { .. }), "{err}");
    fx.check(false);
}

#[test]
fn huge_sparse_size_is_bounded_and_sparse_files_keep_their_holes() {
    refused("huge_sparse", &fast(), |e| {
        matches!(e, ImageError::UnpackLimit { .. })
    });
    let big = UnpackOptions {
        max_bytes: 2 << 40,
        ..fast()
    };
    let fx = neutralised("huge_sparse", &big);
    let md = fs::metadata(fx.at("sparse")).unwrap();
    assert_eq!(md.len(), 1 << 40);
    assert!(
        md.blocks() < 64,
        "holes were written out: {} blocks",
        md.blocks()
    );
    let mut f = fs::File::open(fx.at("sparse")).unwrap();
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start((1 << 40) - 512)).unwrap();
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, vec![b's'; 512]);
}

#[test]
fn huge_declared_size_is_refused_before_reading() {
    refused("huge_size", &fast(), |e| {
        matches!(e, ImageError::UnpackLimit { .. })
    });
}

#[test]
fn oversized_pax_header_is_refused_before_reading() {
    refused(
        "pax_header_bomb",
        &fast(),
        |e| matches!(e, ImageError::UnpackLimit { limit, .. } if *limit == 1 << 20),
    );
}

#[test]
fn truncated_archives_are_errors() {
    for name in ["truncated_data", "truncated_no_end"] {
        refused(name, &fast(), |e| {
            matches!(e, ImageError::TruncatedLayer { .. })
        });
        let fx = Fixture::new();
        let err = fx
            .unpack(&gzip(&corpus(name)), OCI_LAYER_GZIP, &fast())
            .unwrap_err();
        assert!(matches!(err, ImageError::TruncatedLayer { .. }), "{err}");
        fx.check(false);
    }
    // A gzip stream cut short.
    let whole = gzip(&Tar::new().file("f", &[7u8; 100_000], 0o644).finish());
    let fx = Fixture::new();
    let err = fx
        .unpack(&whole[..whole.len() / 2], OCI_LAYER_GZIP, &fast())
        .unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::TruncatedLayer { .. } | ImageError::Decompress { .. }
        ),
        "{err}"
    );
    fx.check(false);
}

/// gzip members of a tar header for a 10 GiB file of zeros, then 10 GiB of zeros, about
/// 10 MiB compressed (multi-member gzip, which layers may use).
fn gzip_bomb(trailing_zeros_after_end: bool) -> Vec<u8> {
    let mut head = Vec::new();
    if trailing_zeros_after_end {
        head = Tar::new().file("small", b"x", 0o644).finish();
    } else {
        let mut h = tar::Header::new_gnu();
        h.set_path("zeros").unwrap();
        h.set_size(10 << 30);
        h.set_mode(0o644);
        h.set_cksum();
        head.extend_from_slice(h.as_bytes());
    }
    let mut out = gzip(&head);
    let mib = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut e, &vec![0u8; 1 << 20]).unwrap();
        e.finish().unwrap()
    };
    for _ in 0..10 * 1024 {
        out.extend_from_slice(&mib);
    }
    out
}

#[test]
fn gzip_bomb_is_bounded_by_the_byte_limit() {
    let opts = UnpackOptions {
        max_bytes: 64 << 20,
        ..fast()
    };
    for trailing in [false, true] {
        let bomb = gzip_bomb(trailing);
        assert!(bomb.len() < 16 << 20);
        let fx = Fixture::new();
        let err = fx.unpack(&bomb, OCI_LAYER_GZIP, &opts).unwrap_err();
        assert!(
            matches!(err, ImageError::UnpackLimit { limit, .. } if limit == 64 << 20),
            "{err}"
        );
        fx.check(false);
    }
}

#[test]
fn entry_count_is_bounded() {
    let mut t = Tar::new();
    for i in 0..200 {
        t = t.file(&format!("f{i}"), b"", 0o644);
    }
    let fx = Fixture::new();
    let opts = UnpackOptions {
        max_entries: 100,
        ..fast()
    };
    let err = fx.unpack(&t.finish(), OCI_LAYER_TAR, &opts).unwrap_err();
    assert!(
        matches!(err, ImageError::UnpackLimit { limit: 100, .. }),
        "{err}"
    );
    fx.check(false);
}

#[test]
fn device_nodes_are_skipped_when_rootless() {
    let opts = UnpackOptions {
        privileges: super::Privileges::Rootless,
        ..fast()
    };
    let fx = Fixture::new();
    let s = fx
        .unpack(&corpus("device_nodes"), OCI_LAYER_TAR, &opts)
        .unwrap();
    fx.check(true);
    assert_eq!(s.skipped_devices, 2);
    assert!(!fx.at("null").exists() && !fx.at("loop0").exists());
    use std::os::unix::fs::FileTypeExt;
    assert!(fs::symlink_metadata(fx.at("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
}

#[test]
fn only_allowed_xattrs_are_kept() {
    let privileged = rustix::process::geteuid().is_root();
    let fx = Fixture::new();
    let s = fx
        .unpack(&corpus("xattrs"), OCI_LAYER_TAR, &fast())
        .unwrap();
    fx.check(true);
    assert_eq!(
        xattr::get(fx.at("file"), "user.rrun").unwrap().as_deref(),
        Some(&b"kept"[..])
    );
    for name in [
        "security.selinux",
        "trusted.overlay.redirect",
        "trusted.other",
    ] {
        assert_eq!(xattr::get(fx.at("file"), name).unwrap(), None, "{name}");
    }
    if privileged {
        assert_eq!(
            xattr::get(fx.at("opq"), "trusted.overlay.opaque")
                .unwrap()
                .as_deref(),
            Some(&b"y"[..])
        );
        assert_eq!(s.skipped_xattrs, 3);
    } else {
        assert_eq!(s.skipped_xattrs, 4);
    }
}

#[test]
fn a_directory_named_like_a_whiteout_is_refused() {
    refused("wh_component", &fast(), |e| {
        unsafe_because(e, "reserved for whiteouts")
    });
}

#[test]
fn the_root_entry_must_be_a_directory() {
    refused("root_not_dir", &fast(), |e| {
        unsafe_because(e, "root directory")
    });
}

#[test]
fn the_corpus_has_one_test_per_archive() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/unpack");
    let source = include_str!("hostile_tests.rs");
    let mut n = 0;
    for e in fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".tar") {
            n += 1;
            assert!(
                source.contains(&format!("\"{stem}\"")),
                "no test uses {name}"
            );
        }
    }
    assert!(n >= 15, "only {n} hostile archives");
}
