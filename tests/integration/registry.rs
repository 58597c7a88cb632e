//! rrun pull/push/login/logout against the real peers (needs docker-registry, skopeo and
//! htpasswd: `make deps`): skopeo pushes what rrun pulls and pulls what rrun pushes, plain and
//! encrypted; the key gate fetches no layer with a wrong key; basic and token auth with
//! login/logout and expired tokens; corrupted, missing and interrupted blobs leave the store
//! unchanged; kill -9 mid-pull resumes; concurrent pulls agree; TLS with --tls-ca.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Stdio;

use base64::Engine as _;

use crate::registry_util::*;

fn oci(dir: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", dir.display())
}

fn copy_to_registry(env: &Env, layout: &Path, tag: &str, dest: &str, extra: &[&str]) {
    let src = oci(layout, tag);
    let dst = format!("docker://{dest}");
    let mut args = vec!["copy", "--dest-tls-verify=false"];
    args.extend_from_slice(extra);
    args.push(&src);
    args.push(&dst);
    env.skopeo(&args).ok();
}

/// The raw manifest of `image` in the registry, parsed.
fn remote_manifest(env: &Env, image: &str, extra: &[&str]) -> serde_json::Value {
    let target = format!("docker://{image}");
    let mut args = vec!["inspect", "--raw", "--tls-verify=false"];
    args.extend_from_slice(extra);
    args.push(&target);
    let out = env.skopeo(&args);
    out.ok();
    serde_json::from_str(&out.stdout).unwrap()
}

fn layer_digests(manifest: &serde_json::Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

fn partials(root: &Path) -> Vec<String> {
    fs::read_dir(root.join("tmp/partial"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A registry without auth, a small image in a layout, an RSA key pair.
struct Fixture {
    tmp: tempfile::TempDir,
    env: Env,
    reg: Registry,
    layout: std::path::PathBuf,
    built: Built,
    key: std::path::PathBuf,
    public: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let env = Env::new(tmp.path());
    let reg = Registry::start(Auth::None);
    let layout = tmp.path().join("L");
    let built = small_image(&layout, "v1");
    let (key, public) = rsa_key(tmp.path(), "k");
    Fixture {
        tmp,
        env,
        reg,
        layout,
        built,
        key,
        public,
    }
}

#[test]
fn peer_skopeo_pushes_plain_and_encrypted_images_that_rrun_pulls() {
    let Fixture {
        tmp,
        env,
        reg,
        layout,
        built,
        key,
        public,
    } = fixture();
    let plain = format!("{}/app:1", reg.host());
    let enc = format!("{}/app:enc", reg.host());
    copy_to_registry(&env, &layout, "v1", &plain, &[]);
    let jwe = format!("jwe:{}", public.display());
    copy_to_registry(&env, &layout, "v1", &enc, &["--encryption-key", &jwe]);

    let out = env.rrun(&["pull", &plain]);
    out.ok();
    assert!(
        out.stdout.contains(&format!("pulled {plain}")),
        "{}",
        out.stdout
    );
    let names = store_names(&env.root);
    let stored = &names[&plain];
    // Each plain layer was unpacked once into a snapshot checked against its diff_id.
    assert_eq!(
        complete_snapshots(&env.root),
        built.layer_digests.len(),
        "one snapshot per plain layer"
    );
    // The store is an OCI layout other tools read, and rrun's own image commands too.
    env.skopeo(&["inspect", &oci(&env.root, &plain)]).ok();
    // (skopeo compresses the plain tar layer on its way to the registry.)
    let remote_layers = layer_digests(&remote_manifest(&env, &plain, &[]));
    let info = env.rrun(&[
        "image",
        "layerinfo",
        "--format",
        "json",
        &oci(&env.root, &plain),
    ]);
    info.ok();
    for d in &remote_layers {
        assert!(info.stdout.contains(d.as_str()), "{}", info.stdout);
    }
    let raw = env.skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{plain}"),
    ]);
    raw.ok();
    assert_eq!(
        stored,
        &digest(raw.stdout.as_bytes()),
        "the registry's manifest, byte for byte"
    );

    // The encrypted image: with the key, the gate passes and rrun decrypts what it stored.
    let key_s = key.display().to_string();
    let out = env.rrun(&["pull", "--key", &key_s, &enc]);
    out.ok();
    assert!(out.stderr.contains("key gate passed"), "{}", out.stderr);
    let dec = tmp.path().join("D");
    env.rrun(&[
        "image",
        "decrypt",
        "--key",
        &key_s,
        &oci(&env.root, &enc),
        &oci(&dec, "dec"),
    ])
    .ok();
    let info = env.rrun(&["image", "layerinfo", "--format", "json", &oci(&dec, "dec")]);
    info.ok();
    assert!(
        info.stdout.contains(built.layer_digests[0].as_str()),
        "decrypts to the original gzip layer: {}",
        info.stdout
    );
    assert!(!info.stdout.contains("+encrypted"), "{}", info.stdout);

    // Without a key the ciphertext is stored, and rrun says so.
    let env2 = Env::new(&tmp.path().join("other"));
    let out = env2.rrun(&["pull", &enc]);
    out.ok();
    assert!(
        out.stderr.contains("stored as ciphertext"),
        "{}",
        out.stderr
    );
    assert_eq!(
        complete_snapshots(&env2.root),
        0,
        "encrypted layers are never unpacked on pull"
    );
}

/// Snapshots in a store that were completed (their `done` marker is written last).
fn complete_snapshots(root: &Path) -> usize {
    std::fs::read_dir(root.join("snapshots"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().join("done").exists())
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn peer_rrun_pushes_plain_and_encrypted_images_that_skopeo_pulls_and_decrypts() {
    let Fixture {
        tmp,
        env,
        reg,
        layout,
        built,
        key,
        public,
    } = fixture();
    let host = reg.host();

    let out = env.rrun(&["push", &oci(&layout, "v1"), &format!("{host}/app:plain")]);
    out.ok();
    assert!(out.stdout.contains("3 blobs uploaded"), "{}", out.stdout);
    let copied = tmp.path().join("O");
    env.skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{host}/app:plain"),
        &oci(&copied, "plain"),
    ])
    .ok();
    let raw = env.skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{host}/app:plain"),
    ]);
    raw.ok();
    assert_eq!(
        digest(raw.stdout.as_bytes()),
        built.manifest_digest,
        "the manifest, byte for byte"
    );
    // Pushing again sends nothing.
    let out = env.rrun(&["push", &oci(&layout, "v1"), &format!("{host}/app:plain")]);
    out.ok();
    assert!(
        out.stdout.contains("0 blobs uploaded, 3 already there"),
        "{}",
        out.stdout
    );

    // Encrypted on the way out, every layer, then only the top one.
    let jwe = format!("jwe:{}", public.display());
    env.rrun(&[
        "push",
        "--recipient",
        &jwe,
        &oci(&layout, "v1"),
        &format!("{host}/app:enc"),
    ])
    .ok();
    let m = remote_manifest(&env, &format!("{host}/app:enc"), &[]);
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(
        m["config"]["digest"],
        built.config_digest.as_str(),
        "config unchanged"
    );
    for l in m["layers"].as_array().unwrap() {
        assert!(
            l["mediaType"].as_str().unwrap().ends_with("+encrypted"),
            "{l}"
        );
        assert!(l["annotations"]["org.opencontainers.image.enc.keys.jwe"].is_string());
    }
    let dec = tmp.path().join("D");
    env.skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--decryption-key",
        &key.display().to_string(),
        &format!("docker://{host}/app:enc"),
        &oci(&dec, "dec"),
    ])
    .ok();
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(dec.join("index.json")).unwrap()).unwrap();
    let md = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let dm: serde_json::Value =
        serde_json::from_slice(&fs::read(dec.join("blobs/sha256").join(md)).unwrap()).unwrap();
    assert_eq!(
        layer_digests(&dm),
        built.layer_digests,
        "skopeo decrypts to the original layers"
    );

    env.rrun(&[
        "push",
        "--recipient",
        &jwe,
        "--layer",
        "-1",
        &oci(&layout, "v1"),
        &format!("{host}/app:top"),
    ])
    .ok();
    let m = remote_manifest(&env, &format!("{host}/app:top"), &[]);
    let types: Vec<&str> = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+encrypted"
        ]
    );
    assert_eq!(m["layers"][0]["digest"], built.layer_digests[0].as_str());

    // From the store to another repository of the same registry: blobs are mounted.
    env.rrun(&["pull", &format!("{host}/app:plain")]).ok();
    let out = env.rrun(&[
        "push",
        &format!("{host}/app:plain"),
        &format!("{host}/other:1"),
    ]);
    out.ok();
    assert!(out.stdout.contains("3 mounted"), "{}", out.stdout);
    env.skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{host}/other:1"),
    ])
    .ok();

    // The library's chunked upload (PATCH with Content-Range) against the real registry.
    let opts = rrun::image::registry::PushOptions {
        client: rrun::image::registry::ClientOptions {
            upload_chunk_size: Some(16 << 10),
            ..Default::default()
        },
        ..Default::default()
    };
    let src: rrun::image::reference::ImageRef = oci(&layout, "v1").parse().unwrap();
    let dest: rrun::image::name::Reference = format!("{host}/chunked:1").parse().unwrap();
    let s = rrun::image::registry::push(&src, &dest, &opts, &rrun::image::registry::NoProgress)
        .unwrap();
    assert_eq!(s.uploaded, 3);
    env.skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{host}/chunked:1"),
        &oci(&tmp.path().join("C"), "c"),
    ])
    .ok();
}

#[test]
fn peer_key_gate_with_a_wrong_key_requests_no_layer_and_stores_nothing() {
    let Fixture {
        tmp,
        env,
        reg,
        layout,
        key,
        public,
        ..
    } = fixture();
    let (wrong, _) = rsa_key(tmp.path(), "wrong");
    let enc = format!("{}/app:enc", reg.host());
    copy_to_registry(
        &env,
        &layout,
        "v1",
        &enc,
        &["--encryption-key", &format!("jwe:{}", public.display())],
    );
    let layers = layer_digests(&remote_manifest(&env, &enc, &[]));

    let out = env.rrun(&["pull", "--key", &wrong.display().to_string(), &enc]);
    out.rrun_error(&[
        "no key opens 2 encrypted layers",
        "nothing was downloaded",
        "jwe",
    ]);
    for d in &layers {
        assert!(
            out.stderr.contains(d.as_str()),
            "names layer {d}: {}",
            out.stderr
        );
        assert_eq!(reg.blob_gets(d), 0, "no GET of layer {d}:\n{}", reg.log());
    }
    assert!(!env.root.exists(), "nothing stored");

    // The right key passes the gate; only then are the layers fetched.
    env.rrun(&["pull", "--key", &key.display().to_string(), &enc])
        .ok();
    for d in &layers {
        assert_eq!(reg.blob_gets(d), 1);
    }
}

/// Login with a wrong then the right password, pull and push with the stored credentials,
/// logout. Returns the env.
fn login_cycle(tmp: &Path, reg: &Registry, user: &str, password: &str) -> Env {
    let env = Env::new(tmp);
    let host = reg.host();
    let layout = tmp.join("L");
    small_image(&layout, "v1");
    let image = format!("{host}/app:1");
    copy_to_registry(
        &env,
        &layout,
        "v1",
        &image,
        &["--dest-creds", &format!("{user}:{password}")],
    );

    env.rrun(&["pull", &image])
        .rrun_error(&["not authorized", "rrun login"]);
    let out = env.rrun_stdin(
        &["login", "-u", user, "--password-stdin", &host],
        Some("not-it\n"),
    );
    out.rrun_error(&["login", "failed"]);
    assert!(
        !env.docker_config().exists(),
        "nothing written for refused credentials"
    );

    let out = env.rrun_stdin(
        &["login", "-u", user, "--password-stdin", &host],
        Some(&format!("{password}\n")),
    );
    out.ok();
    assert!(out.stdout.contains("Login Succeeded"), "{}", out.stdout);
    assert!(
        !out.stdout.contains(password) && !out.stderr.contains(password),
        "password printed"
    );
    let cfg = env.docker_config();
    assert_eq!(
        fs::metadata(&cfg).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let doc: serde_json::Value = serde_json::from_slice(&fs::read(&cfg).unwrap()).unwrap();
    let auth = doc["auths"][&host]["auth"].as_str().unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(auth)
            .unwrap(),
        format!("{user}:{password}").as_bytes()
    );
    // skopeo reads the same file.
    env.skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{image}"),
    ])
    .ok();

    let out = env.rrun(&["pull", &image]);
    out.ok();
    assert!(!out.stderr.contains(password));
    env.rrun(&["push", &image, &format!("{host}/app:2")]).ok();

    let out = env.rrun(&["logout", &host]);
    out.ok();
    assert!(
        out.stdout
            .contains(&format!("Removed login credentials for {host}")),
        "{}",
        out.stdout
    );
    let doc: serde_json::Value = serde_json::from_slice(&fs::read(&cfg).unwrap()).unwrap();
    assert!(doc["auths"].get(&host).is_none());
    let env2 = Env {
        root: tmp.join("store2"),
        ..env.clone()
    };
    env2.rrun(&["pull", &format!("{host}/app:2")])
        .rrun_error(&["not authorized"]);
    env
}

#[test]
fn peer_basic_auth_login_pull_push_logout() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(Auth::Basic("alice".into(), "s3cret-pw".into()));
    login_cycle(tmp.path(), &reg, "alice", "s3cret-pw");
}

#[test]
fn peer_token_auth_login_pull_push_logout_and_expired_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(Auth::Token("bob".into(), "t0ken-pw".into()));
    let env = login_cycle(tmp.path(), &reg, "bob", "t0ken-pw");
    let token = reg.token.as_ref().unwrap();
    let image = format!("{}/app:1", reg.host());
    let login = env.rrun_stdin(
        &["login", "-u", "bob", "--password-stdin", &reg.host()],
        Some("t0ken-pw"),
    );
    login.ok();

    // An expired token is refused by the registry: rrun fetches a new one once and goes on.
    token.set_mode(TokenMode::FirstExpired);
    let fresh = Env {
        root: tmp.path().join("s-expired-once"),
        ..env.clone()
    };
    fresh.rrun(&["pull", &image]).ok();
    assert_eq!(token.issued.load(std::sync::atomic::Ordering::SeqCst), 2);

    // Every token expired: one refresh, then a clear error and nothing stored.
    token.set_mode(TokenMode::AlwaysExpired);
    let refused = Env {
        root: tmp.path().join("s-expired"),
        ..env.clone()
    };
    refused
        .rrun(&["pull", &image])
        .rrun_error(&["not authorized"]);
    assert_eq!(token.issued.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert!(!refused.root.exists());
}

#[test]
fn peer_corrupted_and_missing_blobs_in_the_registry_leave_the_store_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let env = Env::new(tmp.path());
    let reg = Registry::start(Auth::None);
    let host = reg.host();
    small_image(&tmp.path().join("A"), "v1");
    small_image(&tmp.path().join("B"), "v1");
    small_image(&tmp.path().join("C"), "v1");
    copy_to_registry(
        &env,
        &tmp.path().join("A"),
        "v1",
        &format!("{host}/app:ok"),
        &[],
    );
    copy_to_registry(
        &env,
        &tmp.path().join("B"),
        "v1",
        &format!("{host}/app:corrupt"),
        &[],
    );
    copy_to_registry(
        &env,
        &tmp.path().join("C"),
        "v1",
        &format!("{host}/app:missing"),
        &[],
    );
    env.rrun(&["pull", &format!("{host}/app:ok")]).ok();
    let before = store_state(&env.root);

    let bad = layer_digests(&remote_manifest(&env, &format!("{host}/app:corrupt"), &[]))[0].clone();
    let path = reg.blob_data(&bad);
    let mut data = fs::read(&path).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0x55;
    fs::write(&path, data).unwrap();
    env.rrun(&["pull", &format!("{host}/app:corrupt")])
        .rrun_error(&["digest mismatch", bad.as_str()]);
    assert_eq!(store_state(&env.root), before);
    assert!(partials(&env.root).is_empty(), "corrupt bytes are not kept");

    // (Layer 0 is random; layer 1 is the same in every small image and already stored.)
    let gone =
        layer_digests(&remote_manifest(&env, &format!("{host}/app:missing"), &[]))[0].clone();
    fs::remove_dir_all(reg.layer_link("app", &gone)).unwrap();
    env.rrun(&["pull", &format!("{host}/app:missing")])
        .rrun_error(&["not found", "BLOB_UNKNOWN"]);
    assert_eq!(store_state(&env.root), before);
    verify_store_blobs(&env.root);
}

/// An image with one big layer, pushed by skopeo; returns the big layer's digest.
fn big_image(env: &Env, tmp: &Path, reg: &Registry, size: usize) -> String {
    let layout = tmp.join("BIG");
    write_layout(
        &layout,
        "v1",
        &[
            Layer {
                tar: tar_of(&[("etc/small", b"small")]),
                gzip: true,
            },
            Layer {
                tar: tar_of(&[("data/big.bin", &random_bytes(size))]),
                gzip: false,
            },
        ],
    );
    let image = format!("{}/app:big", reg.host());
    copy_to_registry(env, &layout, "v1", &image, &[]);
    // skopeo compresses the layer on the way: the registry's digest is the one pulled.
    layer_digests(&remote_manifest(env, &image, &[]))[1].clone()
}

fn partial_len(root: &Path, digest: &str) -> u64 {
    fs::metadata(
        root.join("tmp/partial")
            .join(digest.trim_start_matches("sha256:")),
    )
    .map(|m| m.len())
    .unwrap_or(0)
}

#[test]
fn peer_kill_9_mid_pull_then_the_same_pull_resumes_and_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let env = Env::new(tmp.path());
    let reg = Registry::start(Auth::None);
    let size = 24 << 20;
    let big = big_image(&env, tmp.path(), &reg, size);
    let proxy = Proxy::start(reg.port, 2 << 20);
    let image = format!("127.0.0.1:{}/app:big", proxy.port);

    let mut child = env
        .rrun_cmd(&["pull", &image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(90, "part of the big layer", || {
        partial_len(&env.root, &big) >= 3 << 20
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let kept = partial_len(&env.root, &big);
    assert!(kept >= 3 << 20 && kept < size as u64 + 20_000, "{kept}");
    assert!(
        !store_names(&env.root).contains_key(&image),
        "no half image stored"
    );
    // The small layer finished before the kill: it is stored, verified, and reused below.
    let small = layer_digests(&remote_manifest(
        &env,
        &format!("{}/app:big", reg.host()),
        &[],
    ))[0]
        .clone();
    assert!(
        env.root
            .join("blobs")
            .join(small.replace(':', "/"))
            .is_file(),
        "the finished layer was stored before the kill"
    );
    let small_gets = proxy.requests(&small).len();

    // Another pull into the same store meanwhile: its commit takes the store exclusively
    // (which cleans tmp/), and the kept partial survives it.
    let other = tmp.path().join("OTHER");
    small_image(&other, "v1");
    let other_image = format!("{}/other:1", reg.host());
    copy_to_registry(&env, &other, "v1", &other_image, &[]);
    env.rrun(&["pull", "-q", &other_image]).ok();
    assert_eq!(
        partial_len(&env.root, &big),
        kept,
        "the partial is kept for resuming"
    );

    proxy.rate.store(0, std::sync::atomic::Ordering::Relaxed);
    let sent_before = proxy.sent.load(std::sync::atomic::Ordering::Relaxed);
    let out = env.rrun(&["pull", &image]);
    out.ok();
    assert!(out.stderr.contains("resum"), "{}", out.stderr);
    assert_eq!(
        proxy.requests(&small).len(),
        small_gets,
        "the verified layer is not fetched again"
    );
    let ranged: Vec<String> = proxy
        .requests(&big)
        .into_iter()
        .filter(|r| r.contains("bytes="))
        .collect();
    assert_eq!(ranged.len(), 1, "{ranged:?}");
    let from: u64 = ranged[0]
        .rsplit("bytes=")
        .next()
        .unwrap()
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(from >= 3 << 20, "resumed from {from}");
    let sent = proxy.sent.load(std::sync::atomic::Ordering::Relaxed) - sent_before;
    assert!(
        sent < size as u64 - (2 << 20),
        "the second pull sent {sent} bytes"
    );
    assert!(store_names(&env.root).contains_key(&image));
    verify_store_blobs(&env.root);
    assert!(partials(&env.root).is_empty());
}

#[test]
fn peer_registry_killed_mid_pull_then_restarted_pull_again_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let env = Env::new(tmp.path());
    let mut reg = Registry::start(Auth::None);
    let size = 16 << 20;
    let big = big_image(&env, tmp.path(), &reg, size);
    let proxy = Proxy::start(reg.port, 2 << 20);
    let image = format!("127.0.0.1:{}/app:big", proxy.port);

    let child = env
        .rrun_cmd(&["pull", &image])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(90, "part of the big layer", || {
        partial_len(&env.root, &big) >= 2 << 20
    });
    reg.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(stderr.contains("cannot reach registry"), "{stderr}");
    assert!(!store_names(&env.root).contains_key(&image));

    reg.restart();
    proxy.rate.store(0, std::sync::atomic::Ordering::Relaxed);
    env.rrun(&["pull", &image]).ok();
    assert!(
        proxy.requests(&big).iter().any(|r| r.contains("bytes=")),
        "resumed with Range"
    );
    verify_store_blobs(&env.root);
}

#[test]
fn peer_four_concurrent_pulls_of_one_image_into_one_store_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let env = Env::new(tmp.path());
    let reg = Registry::start(Auth::None);
    let layout = tmp.path().join("L");
    write_layout(
        &layout,
        "v1",
        &[
            Layer {
                tar: tar_of(&[("a", &random_bytes(3 << 20))]),
                gzip: false,
            },
            Layer {
                tar: tar_of(&[("b", &random_bytes(2 << 20))]),
                gzip: false,
            },
            Layer {
                tar: tar_of(&[("c", &random_bytes(1 << 20))]),
                gzip: false,
            },
        ],
    );
    let image = format!("{}/app:1", reg.host());
    copy_to_registry(&env, &layout, "v1", &image, &[]);
    let children: Vec<_> = (0..4)
        .map(|_| {
            env.rrun_cmd(&["pull", "-q", &image])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut digests = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        digests.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    digests.dedup();
    assert_eq!(digests.len(), 1, "{digests:?}");
    let names = store_names(&env.root);
    assert_eq!(names.len(), 1);
    assert_eq!(names[&image], digests[0]);
    verify_store_blobs(&env.root);
    assert_eq!(
        store_state(&env.root).0.len(),
        5,
        "3 layers, config, manifest"
    );
    assert!(partials(&env.root).is_empty());
}

#[test]
fn peer_tls_registry_needs_its_ca_or_tls_verify_false() {
    let tmp = tempfile::tempdir().unwrap();
    let env = Env::new(tmp.path());
    let (ca, cert, key) = tls_files(tmp.path());
    let reg = Registry::start_with(Auth::None, Some((cert, key)));
    let layout = tmp.path().join("L");
    small_image(&layout, "v1");
    let image = format!("{}/app:1", reg.host());
    copy_to_registry(&env, &layout, "v1", &image, &[]);

    env.rrun(&["pull", "--tls-ca", &ca.display().to_string(), &image])
        .ok();
    let other = Env {
        root: tmp.path().join("s2"),
        ..env.clone()
    };
    other
        .rrun(&["pull", &image])
        .rrun_error(&["speaks https", "--tls-ca", "--tls-verify=false"]);
    other.rrun(&["pull", "--tls-verify=false", &image]).ok();
    let bad_ca = tmp.path().join("bad.pem");
    fs::write(&bad_ca, "not a certificate").unwrap();
    other
        .rrun(&["pull", "--tls-ca", &bad_ca.display().to_string(), &image])
        .rrun_error(&["tls", "certificate"]);
}

#[test]
fn peer_push_and_pull_of_a_64_mib_layer_run_in_constant_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let env = Env::new(tmp.path());
    let reg = Registry::start(Auth::None);
    let layout = tmp.path().join("L");
    let size = 64 << 20;
    write_layout(
        &layout,
        "v1",
        &[Layer {
            tar: tar_of(&[("data/big.bin", &random_bytes(size))]),
            gzip: false,
        }],
    );
    let image = format!("{}/app:big", reg.host());
    // Far below the layer's size: neither direction holds a whole blob in memory.
    let limit_kib = 40 << 10;
    let (push, push_kib) = env.rrun_peak_rss(&["push", &oci(&layout, "v1"), &image]);
    push.ok();
    assert!(
        push_kib < limit_kib,
        "push peaked at {push_kib} KiB for a {size}-byte layer"
    );
    let (pull, pull_kib) = env.rrun_peak_rss(&["pull", &image]);
    pull.ok();
    assert!(
        pull_kib < limit_kib,
        "pull and unpack peaked at {pull_kib} KiB for a {size}-byte layer"
    );
    verify_store_blobs(&env.root);
}

#[test]
fn peer_pull_shows_bars_on_a_terminal_plain_lines_otherwise_and_nothing_with_quiet() {
    let Fixture {
        tmp: _tmp,
        env,
        reg,
        layout,
        built,
        ..
    } = fixture();
    let image = format!("{}/app:1", reg.host());
    env.rrun(&["push", "-q", &oci(&layout, "v1"), &image]).ok();
    let remote = layer_digests(&remote_manifest(&env, &image, &[]));
    let short = |d: &str| d.trim_start_matches("sha256:")[..12].to_string();

    // A terminal: one bar per layer (30 '=' once full), no plain progress lines.
    let (shown, code) = env.rrun_on_terminal(&["pull", &image]);
    assert_eq!(code, 0, "{shown}");
    for d in &remote {
        assert!(shown.contains(&short(d)), "{shown}");
    }
    assert!(shown.contains(&"=".repeat(30)), "no full bar: {shown}");
    assert!(shown.contains("downloaded, verified"), "{shown}");
    assert!(!shown.contains(" downloading "), "{shown}");

    // Not a terminal: a plain line per layer when it starts and when it ends.
    env.rrun(&["rmi", &image]).ok();
    env.rrun(&["image", "prune"]).ok();
    let out = env.rrun(&["pull", &image]);
    out.ok();
    for d in &remote {
        assert!(
            out.stderr.contains(&format!("{} downloading", short(d))),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr
                .contains(&format!("{} downloaded, verified", short(d))),
            "{}",
            out.stderr
        );
    }
    assert!(!out.stderr.contains('\r'), "{}", out.stderr);

    // --quiet: the manifest digest on stdout, nothing on stderr.
    let out = env.rrun(&["pull", "-q", &image]);
    out.ok();
    assert_eq!(out.stdout.trim(), built.manifest_digest);
    assert_eq!(out.stderr, "");
}
