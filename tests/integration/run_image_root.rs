//! `rrun run IMAGE` with real containers (needs root): the image config, the key gate of
//! encrypted images, sealed mode (no plaintext on disk), and mount cleanup.

use std::path::Path;
use std::time::Duration;

use crate::run_image_util::{grep_scan, raw_scan, Images, PlainTmpfs};
use crate::runtime_util::wait_until;
use crate::util;

/// (private key, `jwe:` recipient) of the fixture key `rsa`, and a key that is no recipient.
fn keys() -> (String, String, String) {
    let f = util::fixtures();
    (f.key("rsa.pem"), f.jwe("rsa.pub"), f.key("rsa2.pem"))
}

/// Encrypt the store image `src` for `recipient` as `dst`.
fn encrypt(env: &Images, recipient: &str, src: &str, dst: &str) {
    env.rrun(&["image", "encrypt", "--recipient", recipient, src, dst])
        .ok();
}

/// A unique string that exists nowhere before the test makes it.
fn marker() -> String {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).unwrap();
    format!("rrun-sealed-marker-{}", hex::encode(b))
}

#[test]
fn root_run_image_uses_its_cmd_env_workdir_and_user() {
    let env = Images::new();
    env.import_busybox(
        &env.path("src"),
        &[],
        &[
            "--cmd",
            "sh",
            "--cmd",
            "-c",
            "--cmd",
            "echo from-cmd; id -u; pwd; echo FOO=$FOO",
            "-e",
            "FOO=bar",
            "-e",
            "PATH=/bin:/usr/bin",
            "--workdir",
            "/tmp",
        ],
        "app:1",
    );
    let out = env.rrun(&["run", "--rm", "app:1"]);
    assert_eq!(out.ok(), "from-cmd\n0\n/tmp\nFOO=bar\n");
    // A command after the image replaces Cmd.
    let out = env.rrun(&["run", "--rm", "app:1", "echo", "override"]);
    assert_eq!(out.ok(), "override\n");
    // -e and -w win over the config.
    let out = env.rrun(&["run", "--rm", "-e", "FOO=cli", "-w", "/", "app:1"]);
    assert_eq!(out.ok(), "from-cmd\n0\n/\nFOO=cli\n");
    // User from the config (a name, resolved in the image's /etc/passwd).
    env.edit_config("app:1", |c| c["config"]["User"] = "nobody".into());
    let out = env.rrun(&["run", "--rm", "app:1"]);
    assert_eq!(out.ok(), "from-cmd\n65534\n/tmp\nFOO=bar\n");
    assert!(env.mounts().is_empty(), "{:?}", env.mounts());
    assert!(env.rootfs_dirs().is_empty(), "{:?}", env.rootfs_dirs());
}

#[test]
fn root_run_image_bad_input_is_one_clear_error() {
    let env = Images::new();
    env.rrun(&["run", "--rm", "nosuch:1", "true"])
        .rrun_error("image \"nosuch:1\" not found in the store");
    env.import_busybox(&env.path("src"), &[], &[], "app:1");
    env.rrun(&["run", "--rm", "other:1"])
        .rrun_error("import, load or pull it first");
    env.edit_config("app:1", |c| {
        c["config"].as_object_mut().unwrap().remove("Cmd");
        c["config"].as_object_mut().unwrap().remove("Entrypoint");
    });
    env.rrun(&["run", "--rm", "app:1"])
        .rrun_error("image app:1 has no command");
    env.rrun(&["run", "--rm", "--platform", "linux/s390x", "app:1", "true"])
        .rrun_error("matches platform linux/s390x");
    assert!(env.mounts().is_empty(), "{:?}", env.mounts());
    assert!(env.rootfs_dirs().is_empty(), "{:?}", env.rootfs_dirs());
}

#[test]
fn root_encrypted_image_runs_only_with_a_key_that_opens_it() {
    let env = Images::new();
    let (key, recipient, other) = keys();
    env.import_busybox(
        &env.path("src"),
        &[],
        &["--cmd", "echo", "--cmd", "inside"],
        "app:1",
    );
    encrypt(&env, &recipient, "app:1", "app:enc");
    let layer = {
        let out = env.rrun(&["image", "layerinfo", "app:enc"]);
        let text = out.ok().to_string();
        let line = text
            .lines()
            .find(|l| l.contains("jwe"))
            .expect("an encrypted layer");
        line.split_whitespace().nth(1).unwrap().to_string()
    };
    for args in [
        vec!["run", "--rm", "app:enc"],
        vec!["run", "--rm", "--key", &other, "app:enc"],
    ] {
        let out = env.rrun(&args);
        out.rrun_error("not authorized to use this image");
        let short = layer.trim_start_matches("sha256:");
        assert!(
            out.stderr.contains(&short[..12.min(short.len())]),
            "the error names the layer {layer}: {out:?}"
        );
        assert!(
            out.stderr.contains("jwe"),
            "the error names the scheme: {out:?}"
        );
        assert!(env.mounts().is_empty(), "{:?}", env.mounts());
        assert!(env.rootfs_dirs().is_empty(), "{:?}", env.rootfs_dirs());
    }
    let out = env.rrun(&["run", "--rm", "--key", &key, "app:enc"]);
    assert_eq!(out.ok(), "inside\n");
    // The plain image still runs without a key.
    assert_eq!(env.rrun(&["run", "--rm", "app:1"]).ok(), "inside\n");
}

#[test]
fn root_sealed_run_leaves_no_plaintext_marker_on_disk() {
    let env = Images::new();
    let (key, recipient, _) = keys();
    let marker = marker();
    // The plaintext image is built and encrypted from a tmpfs that is gone before the scan.
    let mut plain = PlainTmpfs::new();
    let layout = plain.path().join("layout");
    env.import_busybox(
        &plain.path().join("rootfs"),
        &[("secret/marker.txt", format!("{marker}\n").as_bytes())],
        &[],
        &util::oci(&layout, "1"),
    );
    assert!(
        !raw_scan(&[plain.path()], marker.as_bytes()).is_empty(),
        "the scanner finds the marker where it is"
    );
    encrypt(&env, &recipient, &util::oci(&layout, "1"), "secret:1");
    plain.remove();

    let out = env.rrun(&[
        "run",
        "--rm",
        "--key",
        &key,
        "secret:1",
        "sh",
        "-c",
        "cat /secret/marker.txt; cp /secret/marker.txt /copy; cat /copy; grep -c rrun-sealed /proc/self/mountinfo || true",
    ]);
    assert_eq!(out.ok(), format!("{marker}\n{marker}\n0\n"));
    assert!(
        env.mounts().is_empty(),
        "--rm leaves no mounts: {:?}",
        env.mounts()
    );
    assert!(env.rootfs_dirs().is_empty(), "{:?}", env.rootfs_dirs());

    let dirs = [
        env.store(),
        env.state(),
        Path::new("/var/tmp").to_path_buf(),
        Path::new("/tmp").to_path_buf(),
    ];
    let dirs: Vec<&Path> = dirs.iter().map(|d| d.as_path()).collect();
    assert_eq!(grep_scan(&dirs, &marker), Vec::<String>::new());
    assert_eq!(
        raw_scan(&dirs, marker.as_bytes()),
        Vec::<std::path::PathBuf>::new()
    );
}

#[test]
fn root_detached_sealed_container_keeps_its_tmpfs_until_rm() {
    let env = Images::new();
    let (key, recipient, _) = keys();
    env.import_busybox(&env.path("src"), &[], &[], "app:1");
    encrypt(&env, &recipient, "app:1", "app:enc");
    let out = env.rrun(&[
        "run", "-d", "--name", "s1", "--key", &key, "app:enc", "sleep", "60",
    ]);
    out.ok();
    let mounts = env.mounts();
    let sealed: Vec<&String> = mounts
        .iter()
        .filter(|m| m.contains("rrun-sealed"))
        .collect();
    assert_eq!(sealed.len(), 1, "one sealed tmpfs: {mounts:?}");
    assert!(sealed[0].contains("mode=700"), "{mounts:?}");
    // tmpfs knows `noswap` since Linux 6.4: then the plaintext never reaches a swap device.
    let release = nix::sys::utsname::uname().unwrap();
    let mut v = release.release().to_str().unwrap().split(['.', '-']);
    let (major, minor): (u32, u32) = (
        v.next().unwrap().parse().unwrap(),
        v.next().unwrap().parse().unwrap(),
    );
    if (major, minor) >= (6, 4) {
        assert!(sealed[0].contains("noswap"), "{mounts:?}");
    }
    assert!(
        mounts.iter().any(|m| m.contains(" overlay ")),
        "the overlay is mounted: {mounts:?}"
    );
    assert!(
        wait_until(Duration::from_secs(10), || env
            .rrun(&["ps"])
            .stdout
            .contains("s1")),
        "s1 runs"
    );
    // A run that fails before starting (the name is taken) leaves no mount of its own.
    env.rrun(&["run", "--name", "s1", "--key", &key, "app:enc", "true"])
        .rrun_error("already in use");
    assert_eq!(env.mounts(), mounts);
    assert_eq!(env.rootfs_dirs().len(), 1, "{:?}", env.rootfs_dirs());
    env.rrun(&["rm", "-f", "s1"]).ok();
    assert!(
        wait_until(Duration::from_secs(10), || env.mounts().is_empty()),
        "rm -f unmounts: {:?}",
        env.mounts()
    );
    assert!(env.rootfs_dirs().is_empty(), "{:?}", env.rootfs_dirs());

    // An exited foreground container keeps its sealed tmpfs until rm.
    let out = env.rrun(&[
        "run", "--name", "e1", "--key", &key, "app:enc", "sh", "-c", "exit 3",
    ]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(env.mounts().iter().any(|m| m.contains("rrun-sealed")));
    env.rrun(&["rm", "e1"]).ok();
    assert!(env.mounts().is_empty(), "{:?}", env.mounts());

    // A plain image's detached container too.
    env.rrun(&["run", "-d", "--name", "p1", "app:1", "sleep", "60"])
        .ok();
    assert!(!env.mounts().is_empty());
    env.rrun(&["rm", "-f", "p1"]).ok();
    assert!(env.mounts().is_empty(), "{:?}", env.mounts());
    assert!(env.rootfs_dirs().is_empty(), "{:?}", env.rootfs_dirs());
}

#[test]
fn root_tampered_encrypted_layer_fails_and_leaves_nothing_mounted() {
    let env = Images::new();
    let (key, recipient, _) = keys();
    env.import_busybox(&env.path("src"), &[], &[], "app:1");
    encrypt(&env, &recipient, "app:1", "app:enc");
    // Flip one ciphertext byte, with every digest fixed up: only the HMAC can notice.
    let dir = env.path("tampered");
    env.rrun(&["image", "save", "app:enc", &util::oci(&dir, "t")])
        .ok();
    util::Layout::new(&dir).doctor_layer("t", 0, |blob, _| {
        let mid = blob.len() / 2;
        blob[mid] ^= 0x01;
    });
    env.rrun(&["image", "load", &util::oci(&dir, "t"), "app:bad"])
        .ok();
    let out = env.rrun(&["run", "--rm", "--key", &key, "app:bad", "true"]);
    out.rrun_error("cannot decrypt layer");
    assert!(out.stderr.contains("HMAC mismatch"), "{out:?}");
    assert!(env.mounts().is_empty(), "{:?}", env.mounts());
    assert!(env.rootfs_dirs().is_empty(), "{:?}", env.rootfs_dirs());
}
