//! The command line contract: `image layerinfo` (table and JSON), `image import` (checked
//! with skopeo and umoci), usage errors and their exit code.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;

use crate::util::*;

/// A fresh copy of the fixture image encrypted by rrun for rsa.pub, only on `layers`.
fn encrypted(w: &Path, layers: &[&str]) -> Layout {
    let fx = fixtures();
    let enc = Layout::new(w.join("enc"));
    let rcpt = fx.jwe("rsa.pub");
    let mut args = vec!["image", "encrypt", "--recipient", rcpt.as_str()];
    for l in layers {
        args.extend(["--layer", l]);
    }
    let src = fx.image.reference(TAG);
    let dst = enc.reference(TAG);
    args.extend([src.as_str(), dst.as_str()]);
    rrun(args).ok();
    enc
}

/// The table row of layerinfo output that shows `digest` (matched on its first 12 hex digits).
fn row_for<'a>(out: &'a str, digest: &str) -> &'a str {
    let short = &digest["sha256:".len().."sha256:".len() + 12];
    out.lines()
        .find(|l| l.contains(short))
        .unwrap_or_else(|| panic!("no row for {digest} in\n{out}"))
}

// ---------------------------------------------------------------------------------------------
// layerinfo

#[test]
fn layerinfo_table_shows_plain_and_encrypted_layers() {
    let fx = fixtures();
    let w = workdir();
    let enc = encrypted(w.path(), &["-1"]);
    let out = rrun(["image", "layerinfo", &enc.reference(TAG)]);
    out.ok();
    let header = out.stdout.lines().next().expect("a header line");
    let cols: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        cols,
        [
            "#",
            "DIGEST",
            "PLATFORM",
            "SIZE",
            "ENCRYPTION",
            "RECIPIENTS"
        ],
        "header of\n{}",
        out.stdout
    );
    let layers = enc.layers(TAG);
    assert_eq!(
        out.stdout.lines().filter(|l| !l.trim().is_empty()).count(),
        1 + layers.len(),
        "one row per layer:\n{}",
        out.stdout
    );
    let plain = row_for(&out.stdout, &layers[0].digest);
    assert!(
        plain.trim_start().starts_with('0'),
        "index 0 first: {plain}"
    );
    assert!(plain.contains("linux/amd64"), "platform: {plain}");
    assert!(!plain.contains("jwe"), "layer 0 is not encrypted: {plain}");
    let row = row_for(&out.stdout, &layers[1].digest);
    assert!(row.trim_start().starts_with('1'), "index 1: {row}");
    assert!(row.contains("linux/amd64"), "platform: {row}");
    assert!(row.contains("jwe"), "encryption column: {row}");
    assert!(row.contains("[jwe]"), "recipients column: {row}");
    let _ = fx;
}

#[test]
fn layerinfo_json_lists_every_field() {
    let fx = fixtures();
    let w = workdir();
    let enc = encrypted(w.path(), &["0"]);
    let out = rrun([
        "image",
        "layerinfo",
        "--format",
        "json",
        &enc.reference(TAG),
    ]);
    out.ok();
    let v: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("layerinfo --format json: {e}\n{}", out.stdout));
    let rows = v.as_array().expect("a JSON array");
    let layers = enc.layers(TAG);
    assert_eq!(rows.len(), layers.len(), "{v}");
    for (i, (row, l)) in rows.iter().zip(&layers).enumerate() {
        assert_eq!(row["index"], i, "{row}");
        assert_eq!(row["digest"], l.digest.as_str(), "{row}");
        assert_eq!(row["platform"], "linux/amd64", "{row}");
        assert_eq!(row["size"], l.size, "{row}");
        assert_eq!(row["media_type"], l.media_type.as_str(), "{row}");
        let enc_list = row["encryption"].as_array().expect("encryption array");
        let rcpts = row["recipients"].as_array().expect("recipients array");
        if l.encrypted() {
            assert!(
                enc_list.iter().any(|e| e == "jwe"),
                "layer {i} encrypted with jwe: {row}"
            );
            assert!(!rcpts.is_empty(), "layer {i} has recipients: {row}");
        } else {
            assert!(enc_list.is_empty(), "layer {i} plain: {row}");
            assert!(rcpts.is_empty(), "layer {i} plain: {row}");
        }
    }
    // The plain fixture: nothing encrypted.
    let out = rrun([
        "image",
        "layerinfo",
        "--format",
        "json",
        &fx.image.reference(TAG),
    ]);
    out.ok();
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v.as_array().map(Vec::len), Some(2), "{v}");
}

#[test]
fn layerinfo_filters_by_layer_and_platform() {
    let fx = fixtures();
    let top = fx.image.layers(TAG)[1].digest.clone();
    let out = rrun([
        "image",
        "layerinfo",
        "--format",
        "json",
        "--layer",
        "-1",
        "--platform",
        "linux/amd64",
        &fx.image.reference(TAG),
    ]);
    out.ok();
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    let rows = v.as_array().expect("array");
    assert_eq!(rows.len(), 1, "--layer -1 selects the top layer: {v}");
    assert_eq!(rows[0]["digest"], top.as_str(), "{v}");
    assert_eq!(rows[0]["index"], 1, "{v}");
}

#[test]
fn layerinfo_reads_oci_archives_and_skopeo_images() {
    let fx = fixtures();
    let w = workdir();
    let archive = w.path().join("img.tar");
    skopeo([
        "copy",
        "-q",
        "--encryption-key",
        &fx.jwe("ec256.pub"),
        &fx.image.reference(TAG),
        &oci_archive(&archive, TAG),
    ])
    .ok();
    let out = rrun([
        "--log-level",
        "debug",
        "image",
        "layerinfo",
        &oci_archive(&archive, TAG),
    ]);
    out.ok();
    assert!(out.stdout.matches("jwe").count() >= 2, "{}", out.stdout);
}

// ---------------------------------------------------------------------------------------------
// import

/// umoci-unpack `image` into `bundle` (umoci checks every digest on the way).
fn umoci_unpack(image: &Layout, tag: &str, bundle: &Path) {
    tool(
        "umoci",
        [
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:{tag}", image.dir.display()),
            &bundle.to_string_lossy(),
        ],
    );
}

#[test]
fn import_busybox_dir_makes_an_image_skopeo_and_umoci_accept() {
    let w = workdir();
    let rootfs = w.path().join("rootfs");
    make_busybox_rootfs(&rootfs);
    let img = Layout::new(w.path().join("img"));
    rrun([
        "image",
        "import",
        "--cmd",
        "/bin/sh",
        "--cmd=-c",
        "--cmd",
        "echo hi",
        "--env",
        "GREETING=hello world",
        "--workdir",
        "/root",
        &rootfs.to_string_lossy(),
        &img.reference("busybox"),
    ])
    .ok();
    let layers = img.layers("busybox");
    assert_eq!(layers.len(), 1, "one-layer image");
    assert!(
        layers[0]
            .media_type
            .starts_with("application/vnd.oci.image.layer.v1.tar"),
        "{}",
        layers[0].media_type
    );
    let cfg = img.config("busybox");
    assert_eq!(cfg["os"], "linux", "{cfg}");
    assert_eq!(cfg["architecture"], "amd64", "{cfg}");
    assert_eq!(cfg["rootfs"]["diff_ids"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        cfg["config"]["Cmd"],
        serde_json::json!(["/bin/sh", "-c", "echo hi"])
    );
    assert_eq!(cfg["config"]["WorkingDir"], "/root", "{cfg}");
    assert!(
        cfg["config"]["Env"]
            .as_array()
            .expect("Env")
            .iter()
            .any(|e| e == "GREETING=hello world"),
        "{cfg}"
    );

    let inspect = skopeo(["inspect", &img.reference("busybox")]);
    inspect.ok();
    let v: Value = serde_json::from_str(&inspect.stdout).expect("skopeo inspect JSON");
    assert_eq!(v["Layers"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["Architecture"], "amd64", "{v}");
    // skopeo reads every blob and checks its digest on copy
    skopeo([
        "copy",
        "-q",
        &img.reference("busybox"),
        &oci(&w.path().join("copy"), "busybox"),
    ])
    .ok();

    let bundle = w.path().join("bundle");
    umoci_unpack(&img, "busybox", &bundle);
    let unpacked = fs::read(bundle.join("rootfs/bin/busybox")).expect("busybox unpacked");
    assert_eq!(
        sha256(&unpacked),
        sha256(&fs::read("/bin/busybox").unwrap()),
        "busybox bytes survive import"
    );
    let link = fs::read_link(bundle.join("rootfs/bin/sh")).expect("applet symlink");
    assert_eq!(link, Path::new("/bin/busybox"));
}

#[test]
fn import_cmd_and_entrypoint_take_values_that_start_with_a_dash() {
    // `sh -c 'echo hi'` is the usual command; users write it as repeated --cmd values.
    let w = workdir();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/integration/import-rootfs");
    let img = Layout::new(w.path().join("img"));
    rrun([
        "image",
        "import",
        "--entrypoint",
        "/bin/sh",
        "--entrypoint",
        "-c",
        "--cmd",
        "-x",
        &data.to_string_lossy(),
        &img.reference("t"),
    ])
    .ok();
    let cfg = img.config("t");
    assert_eq!(
        cfg["config"]["Entrypoint"],
        serde_json::json!(["/bin/sh", "-c"])
    );
    assert_eq!(cfg["config"]["Cmd"], serde_json::json!(["-x"]));
}

#[test]
fn import_tar_with_entrypoint_and_platform() {
    let w = workdir();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/integration/import-rootfs");
    let tar = w.path().join("rootfs.tar");
    tool(
        "tar",
        [
            "-C",
            &data.to_string_lossy(),
            "-cf",
            &tar.to_string_lossy(),
            ".",
        ],
    );
    let img = Layout::new(w.path().join("img"));
    rrun([
        "image",
        "import",
        "--entrypoint",
        "/usr/bin/hello",
        "--platform",
        "linux/arm64",
        &tar.to_string_lossy(),
        &img.reference("t"),
    ])
    .ok();
    let cfg = img.config("t");
    assert_eq!(cfg["architecture"], "arm64", "{cfg}");
    assert_eq!(
        cfg["config"]["Entrypoint"],
        serde_json::json!(["/usr/bin/hello"])
    );
    let bundle = w.path().join("bundle");
    umoci_unpack(&img, "t", &bundle);
    let r = bundle.join("rootfs");
    assert_eq!(
        fs::read_to_string(r.join("etc/motd")).unwrap(),
        "imported by rrun tests\n"
    );
    let mode = fs::metadata(r.join("usr/bin/hello"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "executable bit kept: {mode:o}");
    assert_eq!(fs::read_link(r.join("bin")).unwrap(), Path::new("usr/bin"));
}

#[test]
fn import_then_encrypt_then_decrypt_round_trip() {
    let fx = fixtures();
    let w = workdir();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/integration/import-rootfs");
    let img = Layout::new(w.path().join("img"));
    rrun([
        "image",
        "import",
        &data.to_string_lossy(),
        &img.reference("plain"),
    ])
    .ok();
    rrun([
        "image",
        "encrypt",
        "--recipient",
        &fx.jwe("ec256.pub"),
        &img.reference("plain"),
        &img.reference("enc"),
    ])
    .ok();
    assert!(img.layers("enc")[0].encrypted());
    // the plain tag is still there, untouched
    assert!(!img.layers("plain")[0].encrypted());
    rrun([
        "image",
        "decrypt",
        "--key",
        &fx.key("ec256.pem"),
        &img.reference("enc"),
        &img.reference("dec"),
    ])
    .ok();
    assert_eq!(img.layer_digests("dec"), img.layer_digests("plain"));
}

// ---------------------------------------------------------------------------------------------
// usage and errors

#[test]
fn help_lists_the_image_commands() {
    let out = rrun(["image", "--help"]);
    out.ok();
    for verb in ["encrypt", "decrypt", "layerinfo", "import"] {
        out.stdout_has(verb);
    }
}

#[test]
fn usage_errors_exit_125_and_write_nothing() {
    let fx = fixtures();
    let w = workdir();
    let dst = w.path().join("dst");
    let d = oci(&dst, TAG);
    let src = fx.image.reference(TAG);
    let rcpt = fx.jwe("rsa.pub");
    let cases: Vec<Vec<&str>> = vec![
        vec!["image", "frobnicate"],
        vec!["image", "encrypt", &src, &d],
        vec!["image", "encrypt", "--recipient", &rcpt],
        vec![
            "image",
            "encrypt",
            "--recipient",
            &rcpt,
            "--layer",
            "top",
            &src,
            &d,
        ],
        vec!["image", "layerinfo", "--format", "xml", &src],
        vec!["--log-level", "loud", "image", "layerinfo", &src],
    ];
    for args in cases {
        let out = rrun(&args);
        // One line, as every other rrun error: the message, the usage, where to read more.
        out.rrun_error(&[]);
        assert!(out.stderr.contains("--help"), "{args:?}: {out:?}");
        assert!(!dst.exists(), "{args:?} wrote DST");
    }
}

#[test]
fn bad_arguments_are_one_line_errors() {
    let fx = fixtures();
    let w = workdir();
    let dst = w.path().join("dst");
    let d = oci(&dst, TAG);
    let src = fx.image.reference(TAG);
    let rcpt = fx.jwe("rsa.pub");
    let missing_pub = format!("jwe:{}", w.path().join("nope.pub").display());
    let missing_src = oci(&w.path().join("no-such-layout"), TAG);
    let no_tag = fx.image.reference("no-such-tag");
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["image", "encrypt", "--recipient", &missing_pub, &src, &d],
            vec!["nope.pub"],
        ),
        (
            vec!["image", "encrypt", "--recipient", "smoke:signal", &src, &d],
            vec!["recipient"],
        ),
        (
            vec!["image", "encrypt", "--recipient", &rcpt, &missing_src, &d],
            vec!["no-such-layout"],
        ),
        (
            vec!["image", "encrypt", "--recipient", &rcpt, &no_tag, &d],
            vec!["no-such-tag"],
        ),
        (
            vec![
                "image",
                "encrypt",
                "--recipient",
                &rcpt,
                "docker://example.invalid/x:1",
                &d,
            ],
            vec![],
        ),
        (vec!["image", "layerinfo", "just-a-name"], vec![]),
    ];
    for (args, words) in cases {
        rrun(&args).rrun_error(&words);
        assert!(!dst.exists(), "{args:?} wrote DST");
    }
}

#[test]
fn encrypt_selecting_a_missing_platform_writes_nothing() {
    let fx = fixtures();
    let w = workdir();
    let dst = w.path().join("dst");
    let out = rrun([
        "image",
        "encrypt",
        "--recipient",
        &fx.jwe("rsa.pub"),
        "--platform",
        "linux/s390x",
        &fx.image.reference(TAG),
        &oci(&dst, TAG),
    ]);
    out.rrun_error(&["linux/s390x"]);
    assert!(!dst.exists());
}
