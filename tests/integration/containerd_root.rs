//! rrun as containerd's stream processor (needs root, Debian `containerd` 1.6 with runc,
//! `docker-registry` and python3-grpcio): an rrun-encrypted busybox image pulled through the
//! CRI API decrypts only with the node's key directory, and then runs under `ctr`.

use std::fs;
use std::path::Path;

use crate::containerd_util::{tar_with_modes, Containerd};
use crate::registry_util::{
    digest, random_bytes, rsa_key, write_layout, Auth, Env, Layer, Registry,
};

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
        // containerd 1.6 reports the decoder's message, or, when it reads the end of the
        // decoder's (empty) output before it sees the exit status, the diff id check that
        // refuses that output: the pull fails either way.
        let decoder_said = err.contains("no key opens layer sha256:") && err.contains("jwe");
        assert!(
            decoder_said || err.contains("wrong diff id calculated on extraction"),
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

/// A protobuf `Any` as containerd writes it to fd 3: field 1 `type_url`, field 2 `value`.
fn payload_any(value: &[u8]) -> Vec<u8> {
    fn field(num: u8, data: &[u8], out: &mut Vec<u8>) {
        out.push((num << 3) | 2);
        let mut n = data.len();
        while n >= 0x80 {
            out.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out.extend_from_slice(data);
    }
    let mut out = Vec::new();
    field(1, b"io.containerd.ocicrypt.v1.Payload", &mut out);
    field(2, value, &mut out);
    out
}

/// `rrun decoder` as containerd runs it: payload on fd 3, blob on stdin; (code, stdout, stderr).
fn decoder(keys: &Path, payload: Option<&Path>, blob: &Path) -> (i32, Vec<u8>, String) {
    let script = match payload {
        Some(_) => r#"exec "$0" decoder --decryption-keys-path "$1" <"$2" 3<"$3""#,
        None => r#"exec "$0" decoder --decryption-keys-path "$1" <"$2""#,
    };
    let mut cmd = std::process::Command::new("bash");
    cmd.arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_rrun"))
        .arg(keys)
        .arg(blob)
        .args(payload)
        .env(
            "STREAM_PROCESSOR_MEDIATYPE",
            "application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
        );
    let out = cmd.output().expect("bash runs");
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn decoder_cli_streams_the_layer_and_exits_nonzero_on_every_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let (node_key, node_pub) = rsa_key(tmp.path(), "node");
    let (other_key, _) = rsa_key(tmp.path(), "other");
    let layout = tmp.path().join("plain");
    let built = write_layout(
        &layout,
        "v1",
        &[Layer {
            tar: tar_with_modes(&[("data/blob", 0o644, &random_bytes(3 << 20))]),
            gzip: true,
        }],
    );
    let enc = tmp.path().join("enc");
    let env = Env::new(tmp.path());
    env.rrun(&[
        "image",
        "encrypt",
        "--recipient",
        &format!("jwe:{}", node_pub.display()),
        &format!("oci:{}:v1", layout.display()),
        &format!("oci:{}:v1", enc.display()),
    ])
    .ok();
    let read_json = |digest: &str| -> serde_json::Value {
        let hex = digest.trim_start_matches("sha256:");
        serde_json::from_slice(&fs::read(enc.join("blobs/sha256").join(hex)).unwrap()).unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(enc.join("index.json")).unwrap()).unwrap();
    let manifest = read_json(index["manifests"][0]["digest"].as_str().unwrap());
    let layer = &manifest["layers"][0];
    let blob_path = enc.join("blobs/sha256").join(
        layer["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    let payload = tmp.path().join("payload");
    let json = serde_json::json!({"DecryptConfig": {"Parameters": null}, "Descriptor": layer});
    fs::write(&payload, payload_any(&serde_json::to_vec(&json).unwrap())).unwrap();
    let keys = tmp.path().join("keys");
    fs::create_dir(&keys).unwrap();
    set_keys(&keys, &[node_key.as_path()]);

    // The plain blob comes out, byte for byte.
    let (code, out, err) = decoder(&keys, Some(&payload), &blob_path);
    assert_eq!(code, 0, "{err}");
    assert_eq!(digest(&out), built.layer_digests[0], "{err}");

    // containerd stops reading: the decoder fails (a broken pipe is no success here).
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(r#""$0" decoder --decryption-keys-path "$1" <"$2" 3<"$3" | head -c 10 >/dev/null; exit ${PIPESTATUS[0]}"#)
        .arg(env!("CARGO_BIN_EXE_rrun"))
        .args([&keys, &blob_path, &payload])
        .output()
        .expect("bash runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("Broken pipe"), "{err}");

    // An altered last byte: non-zero, and the end of the layer never leaves.
    let mut blob = fs::read(&blob_path).unwrap();
    let last = blob.len() - 1;
    blob[last] ^= 1;
    let altered = tmp.path().join("altered");
    fs::write(&altered, &blob).unwrap();
    let (code, out, err) = decoder(&keys, Some(&payload), &altered);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("HMAC mismatch"), "{err}");
    assert!(
        out.len() < blob.len(),
        "all {} bytes were released",
        out.len()
    );

    // Someone else's key, and no payload on fd 3 (not run by a CRI pull).
    set_keys(&keys, &[other_key.as_path()]);
    let (code, out, err) = decoder(&keys, Some(&payload), &blob_path);
    assert_eq!((code, out.len()), (125, 0), "{err}");
    assert!(err.contains("no key opens layer sha256:"), "{err}");
    assert!(err.contains("1 key file(s) in"), "{err}");
    let (code, _, err) = decoder(&keys, None, &blob_path);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("no payload on fd 3"), "{err}");
}
