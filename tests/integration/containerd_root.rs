//! rrun as containerd's stream processor (needs root, Debian `containerd` 1.6 with runc,
//! `docker-registry` and python3-grpcio): an rrun-encrypted busybox image pulled through the
//! CRI API decrypts only with the node's key directory, and then runs under `ctr`.

use std::fs;
use std::path::Path;

use crate::containerd_util::{tar_with_modes, Containerd};
use crate::registry_util::{rsa_key, write_layout, Auth, Env, Layer, Registry};

const MESSAGE: &str = "hello from an rrun-encrypted layer";

/// Replace the key directory's files with `keys` (copies: ctd-decoder refuses symlinks).
fn set_keys(dir: &Path, keys: &[&Path]) {
    for e in fs::read_dir(dir).unwrap() {
        fs::remove_file(e.unwrap().path()).unwrap();
    }
    for k in keys {
        fs::copy(k, dir.join(k.file_name().unwrap())).unwrap();
    }
}

#[test]
fn root_containerd_cri_pull_decrypts_with_rrun_decoder_and_runs() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the containerd_root test runs containerd and needs root: run `cargo test` as root"
    );
    let busybox = fs::read("/bin/busybox")
        .expect("a static busybox at /bin/busybox (Debian busybox-static): run `make deps`");
    let tmp = tempfile::tempdir().unwrap();
    let (node_key, node_pub) = rsa_key(tmp.path(), "node");
    let (other_key, _) = rsa_key(tmp.path(), "other");

    // busybox in a gzip layer, the message in a plain tar layer: both processor ids are used.
    let layout = tmp.path().join("layout");
    write_layout(
        &layout,
        "v1",
        &[
            Layer {
                tar: tar_with_modes(&[("bin/busybox", 0o755, &busybox)]),
                gzip: true,
            },
            Layer {
                tar: tar_with_modes(&[("etc/message", 0o644, format!("{MESSAGE}\n").as_bytes())]),
                gzip: false,
            },
        ],
    );
    let registry = Registry::start(Auth::None);
    let host = registry.host();
    let image = format!("{host}/busybox-enc:1");
    let env = Env::new(tmp.path());
    env.rrun(&[
        "push",
        "--recipient",
        &format!("jwe:{}", node_pub.display()),
        &format!("oci:{}:v1", layout.display()),
        &image,
    ])
    .ok();

    let keys = tmp.path().join("keys");
    fs::create_dir(&keys).unwrap();
    let ctd = Containerd::start(&keys, &host);

    // An empty key directory, then a key of someone else: the pull fails in rrun decoder.
    for (what, set) in [("empty", vec![]), ("wrong", vec![other_key.as_path()])] {
        set_keys(&keys, &set);
        let err = ctd
            .cri_pull(&image)
            .expect_err(&format!("the pull with the {what} key directory must fail"));
        assert!(
            err.contains("no key opens layer sha256:") && err.contains("jwe"),
            "{what} key directory: {err}\n--- containerd log\n{}",
            ctd.log()
        );
        let listed = ctd.ctr(&["-n", "k8s.io", "images", "ls", "-q"]);
        assert!(
            !listed.stdout.contains(&image),
            "{what}: a failed pull left the image: {}",
            listed.stdout
        );
    }

    // The node key: the CRI pull unpacks, and the container prints from inside.
    set_keys(&keys, &[node_key.as_path()]);
    let image_ref = ctd
        .cri_pull(&image)
        .unwrap_or_else(|e| panic!("pull with the node key: {e}\n{}", ctd.log()));
    assert!(image_ref.starts_with("sha256:"), "{image_ref}");
    let run = ctd.ctr(&[
        "-n",
        "k8s.io",
        "run",
        "--rm",
        "--snapshotter",
        "native",
        &image,
        "rrun-decoder-test",
        "/bin/busybox",
        "cat",
        "/etc/message",
    ]);
    assert_eq!(
        (run.code, run.stdout.trim()),
        (0, MESSAGE),
        "ctr run: {}\n--- containerd log\n{}",
        run.stderr,
        ctd.log()
    );
}
