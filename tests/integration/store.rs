//! The image store through the CLI with `--root` in a temp dir: import, images, tag, inspect,
//! rmi, prune, save/load with skopeo reading the results (and the store itself), crypto on
//! store names, concurrent writers, and bad input that must change nothing.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::store_util::*;

const BUSYBOX: &str = "docker.io/library/busybox:latest";

/// A store with `busybox` imported; returns the manifest digest.
fn import_busybox(w: &Path, root: &Path) -> String {
    import(root, &rootfs(w, "busybox"), "busybox").ok();
    digest_of(root, BUSYBOX)
}

fn import(root: &Path, rootfs: &Path, name: &str) -> Run {
    rrun(
        root,
        [
            "image".as_ref(),
            "import".as_ref(),
            rootfs.as_os_str(),
            name.as_ref(),
        ],
    )
}

#[test]
fn import_images_tag_inspect_and_rmi() {
    let w = workdir();
    let root = w.path().join("store");
    let id = import_busybox(w.path(), &root);
    let hex = id.strip_prefix("sha256:").unwrap();
    import(&root, &rootfs(w.path(), "app"), "127.0.0.1:5000/app:1").ok();
    rrun(&root, ["tag", "busybox", "mine:v1", "mine:v2"]).ok();

    let table = rrun(&root, ["images"]);
    table.ok();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}", table.stdout);
    for col in [
        "REPOSITORY",
        "TAG",
        "IMAGE ID",
        "CREATED",
        "SIZE",
        "ENCRYPTED",
    ] {
        assert!(lines[0].contains(col), "{}", lines[0]);
    }
    let row = lines
        .iter()
        .find(|l| l.starts_with("docker.io/library/busybox "))
        .unwrap();
    let cells: Vec<&str> = row
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(cells[1], "latest");
    assert_eq!(cells[2], &hex[..12]);
    assert!(cells[3].ends_with("ago"), "{row}");
    assert!(
        cells[4].ends_with(" B") || cells[4].ends_with("kB"),
        "{row}"
    );
    assert_eq!(cells[5], "no");

    let json = rrun(&root, ["images", "--format", "json"]);
    json.ok();
    let list: Value = serde_json::from_str(&json.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let busybox = list.iter().find(|i| i["manifest_digest"] == id).unwrap();
    assert_eq!(
        busybox["names"],
        serde_json::json!([
            BUSYBOX,
            "docker.io/library/mine:v1",
            "docker.io/library/mine:v2"
        ])
    );
    assert_eq!(busybox["encrypted"], false);
    assert_eq!(busybox["platforms"].as_array().unwrap().len(), 1);
    assert!(busybox["size"].as_u64().unwrap() > 0);

    let quiet = rrun(&root, ["images", "-q"]);
    quiet.ok();
    let ids: BTreeSet<&str> = quiet.stdout.lines().collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&hex[..12]));

    let out = rrun(&root, ["inspect", &hex[..12]]);
    out.ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v[0]["Digest"], id);
    assert_eq!(v[0]["Names"].as_array().unwrap().len(), 3);
    let m = &v[0]["Manifests"][0];
    assert_eq!(m["Manifest"]["layers"].as_array().unwrap().len(), 1);
    assert_eq!(
        m["Config"]["rootfs"]["diff_ids"][0],
        m["Layers"][0]["DiffID"]
    );
    assert_eq!(m["Layers"][0]["Encrypted"], false);

    // By id with several names: refused, nothing changes; by name: untag only.
    let before = snapshot(&root);
    rrun(&root, ["rmi", &hex[..12]]).rrun_error(&["several names", "rmi -f"]);
    assert_eq!(snapshot(&root), before);
    let out = rrun(&root, ["rmi", "mine:v1"]);
    out.ok();
    assert_eq!(out.stdout, "Untagged: docker.io/library/mine:v1\n");
    let out = rrun(&root, ["rmi", "-f", &hex[..12]]);
    out.ok();
    assert!(out
        .stdout
        .contains("Untagged: docker.io/library/busybox:latest"));
    assert!(out.stdout.contains(&format!("Deleted: {hex}")));
    let names: Vec<String> = entries(&root).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["127.0.0.1:5000/app:1"]);
    // rmi leaves the blobs for prune.
    assert!(blobs(&root).contains(&hex.to_string()));
}

#[test]
fn prune_frees_the_blobs_of_removed_images_only() {
    let w = workdir();
    let root = w.path().join("store");
    let id = import_busybox(w.path(), &root);
    import(&root, &rootfs(w.path(), "app"), "app:1").ok();
    let app = digest_of(&root, "docker.io/library/app:1");
    let kept_before = blobs(&root);
    let out = rrun(&root, ["image", "prune"]);
    out.ok();
    assert!(out.stdout.contains("removed 0 blobs"), "{}", out.stdout);
    assert_eq!(blobs(&root), kept_before);

    rrun(&root, ["rmi", "busybox"]).ok();
    let out = rrun(&root, ["image", "prune"]);
    out.ok();
    // manifest, config and layer of busybox
    assert!(out.stdout.contains("removed 3 blobs"), "{}", out.stdout);
    let left = blobs(&root);
    assert_eq!(left.len(), kept_before.len() - 3);
    assert!(!left.contains(&id.strip_prefix("sha256:").unwrap().to_string()));
    assert!(left.contains(&app.strip_prefix("sha256:").unwrap().to_string()));
    skopeo([
        "inspect",
        &format!("oci:{}:docker.io/library/app:1", root.display()),
    ])
    .ok();
    // Everything the remaining image needs is still there.
    let inspect = rrun(&root, ["inspect", "app:1"]);
    inspect.ok();
}

#[test]
fn skopeo_reads_the_store_and_what_save_writes_and_load_reads_it_back() {
    let w = workdir();
    let root = w.path().join("store");
    let id = import_busybox(w.path(), &root);
    // The store itself is an OCI layout.
    let out = skopeo(["inspect", &format!("oci:{}:{BUSYBOX}", root.display())]);
    out.ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["Digest"], id);

    // save to a layout (tagged with the store name) and to an archive (own tag).
    let dir = w.path().join("saved");
    rrun(
        &root,
        [
            "image",
            "save",
            "busybox",
            &format!("oci:{}", dir.display()),
        ],
    )
    .ok();
    let out = skopeo(["inspect", &format!("oci:{}:{BUSYBOX}", dir.display())]);
    out.ok();
    assert_eq!(
        serde_json::from_str::<Value>(&out.stdout).unwrap()["Digest"],
        id
    );
    let archive = w.path().join("busybox.tar");
    let arch = format!("oci-archive:{}:v1", archive.display());
    rrun(&root, ["image", "save", "busybox", &arch]).ok();
    skopeo(["inspect", &arch]).ok();
    let copied = w.path().join("copied");
    skopeo([
        "copy",
        &format!("oci:{}:{BUSYBOX}", dir.display()),
        &format!("oci:{}:from-skopeo", copied.display()),
    ])
    .ok();

    // load them back into a new store: by the saved name, and under given names.
    let other = w.path().join("other");
    let out = rrun(&other, ["image", "load", &format!("oci:{}", dir.display())]);
    out.ok();
    assert!(
        out.stdout.contains(&format!("Loaded image: {BUSYBOX}")),
        "{}",
        out.stdout
    );
    rrun(&other, ["image", "load", &arch, "busybox:v1"]).ok();
    rrun(
        &other,
        [
            "image",
            "load",
            &format!("oci:{}:from-skopeo", copied.display()),
            "127.0.0.1:5000/copied:1",
        ],
    )
    .ok();
    assert_eq!(digest_of(&other, BUSYBOX), id);
    assert_eq!(digest_of(&other, "docker.io/library/busybox:v1"), id);
    assert_eq!(digest_of(&other, "127.0.0.1:5000/copied:1"), id);
    skopeo([
        "inspect",
        &format!("oci:{}:127.0.0.1:5000/copied:1", other.display()),
    ])
    .ok();

    // An archive tagged v1 says nothing about the repository: a NAME is needed.
    let before = snapshot(&other);
    rrun(&other, ["image", "load", &arch]).rrun_error(&["give a name"]);
    rrun(&root, ["image", "save", "busybox", "other:1"]).rrun_error(&["oci:path"]);
    assert_eq!(snapshot(&other), before);
}

#[test]
fn encrypt_decrypt_and_layerinfo_work_on_store_names() {
    let w = workdir();
    let root = w.path().join("store");
    import_busybox(w.path(), &root);
    let key = key_copy(w.path(), "crypto/jwe/skopeo-rsa2048/key.pem");
    let public = key_copy(w.path(), "crypto/jwe/skopeo-rsa2048/pub.pem");
    let recipient = format!("jwe:{}", public.display());
    let keyarg = key.to_string_lossy().into_owned();

    rrun(
        &root,
        [
            "image",
            "encrypt",
            "--recipient",
            &recipient,
            "busybox",
            "busybox:enc",
        ],
    )
    .ok();
    let info = rrun(&root, ["image", "layerinfo", "busybox:enc"]);
    info.ok();
    assert!(
        info.stdout.lines().nth(1).unwrap().contains("jwe"),
        "{}",
        info.stdout
    );
    let plain = rrun(&root, ["image", "layerinfo", "--format", "json", "busybox"]);
    plain.ok();
    let rows: Value = serde_json::from_str(&plain.stdout).unwrap();
    assert_eq!(rows[0]["encryption"], serde_json::json!([]));

    let listing = rrun(&root, ["images"]);
    listing.ok();
    let enc_row = listing
        .stdout
        .lines()
        .find(|l| l.contains(" enc "))
        .unwrap();
    assert!(enc_row.trim_end().ends_with("yes"), "{enc_row}");
    let v: Value =
        serde_json::from_str(&rrun(&root, ["inspect", "busybox:enc"]).ok().stdout).unwrap();
    assert_eq!(v[0]["Encrypted"], true);
    assert_eq!(
        v[0]["Manifests"][0]["Layers"][0]["Encryption"],
        serde_json::json!(["jwe"])
    );

    // skopeo decrypts what rrun encrypted in the store, reading the store directly.
    let out_dir = w.path().join("skopeo-dec");
    skopeo([
        "copy",
        "--decryption-key",
        &keyarg,
        &format!("oci:{}:docker.io/library/busybox:enc", root.display()),
        &format!("oci:{}:dec", out_dir.display()),
    ])
    .ok();

    rrun(
        &root,
        [
            "image",
            "decrypt",
            "--key",
            &keyarg,
            "busybox:enc",
            "busybox:dec",
        ],
    )
    .ok();
    let dec = rrun(
        &root,
        ["image", "layerinfo", "--format", "json", "busybox:dec"],
    );
    dec.ok();
    let dec: Value = serde_json::from_str(&dec.stdout).unwrap();
    assert_eq!(
        dec[0]["digest"], rows[0]["digest"],
        "decrypted layer = original"
    );

    // The wrong key: refused before anything is written.
    let before = snapshot(&root);
    let other = key_copy(w.path(), "crypto/jwe/skopeo-ec-p256/key.pem");
    let out = rrun(
        &root,
        [
            "image",
            "decrypt",
            "--key",
            other.to_str().unwrap(),
            "busybox:enc",
            "busybox:x",
        ],
    );
    assert_eq!(out.code, 125, "{out:?}");
    assert_eq!(snapshot(&root), before);
}

#[test]
fn docker_references_are_refused_clearly() {
    let w = workdir();
    let root = w.path().join("store");
    import_busybox(w.path(), &root);
    let before = snapshot(&root);
    rrun(&root, ["image", "layerinfo", "docker://busybox"]).rrun_error(&[
        "docker:// is not supported here yet",
        "pull the image first",
    ]);
    let public = key_copy(w.path(), "crypto/jwe/skopeo-rsa2048/pub.pem");
    rrun(
        &root,
        [
            "image",
            "encrypt",
            "--recipient",
            &format!("jwe:{}", public.display()),
            "busybox",
            "docker://127.0.0.1:5000/x:1",
        ],
    )
    .rrun_error(&["docker:// is not supported here yet"]);
    assert_eq!(snapshot(&root), before);
}

#[test]
fn four_concurrent_writers_leave_one_consistent_store() {
    let w = workdir();
    let root = w.path().join("store");
    let fs_: Vec<_> = (0..4).map(|i| rootfs(w.path(), &format!("c{i}"))).collect();

    // Four imports of different images at once into a store that does not exist yet.
    let children: Vec<_> = (0..4)
        .map(|i| {
            let mut c = rrun_cmd(
                &root,
                [
                    "image".as_ref(),
                    "import".as_ref(),
                    fs_[i].as_os_str(),
                    format!("app:{i}").as_ref(),
                ],
            );
            c.env("SOURCE_DATE_EPOCH", "1700000000")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let names: BTreeSet<String> = entries(&root).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        (0..4)
            .map(|i| format!("docker.io/library/app:{i}"))
            .collect()
    );

    // Four imports of different images under one name at once: one wins, one entry.
    let children: Vec<_> = (0..4)
        .map(|i| {
            rrun_cmd(
                &root,
                [
                    "image".as_ref(),
                    "import".as_ref(),
                    fs_[i].as_os_str(),
                    "same:1".as_ref(),
                ],
            )
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let same: Vec<_> = entries(&root)
        .into_iter()
        .filter(|(n, _)| n == "docker.io/library/same:1")
        .collect();
    assert_eq!(same.len(), 1, "{:?}", entries(&root));
    let winner = &same[0].1;
    assert!((0..4).any(|i| digest_of(&root, &format!("docker.io/library/app:{i}")) == *winner));

    // Four tags at once: new names and one name fought over.
    let children: Vec<_> = (0..4)
        .map(|i| {
            rrun_cmd(
                &root,
                [
                    "tag".to_string(),
                    format!("app:{i}"),
                    format!("t:{i}"),
                    "t:x".into(),
                ],
            )
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        // A writer that has to wait says so, and says nothing else.
        for line in stderr.lines() {
            assert!(
                line.starts_with("rrun: waiting for the store lock "),
                "{stderr}"
            );
        }
    }
    let all = entries(&root);
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(names.len(), unique.len(), "duplicate names: {names:?}");
    assert_eq!(names.len(), 4 + 1 + 4 + 1, "{names:?}");
    for i in 0..4 {
        assert_eq!(
            digest_of(&root, &format!("docker.io/library/t:{i}")),
            digest_of(&root, &format!("docker.io/library/app:{i}"))
        );
    }
    // Consistent: every entry reads with skopeo, nothing left over in tmp/ or as temp files.
    for (name, digest) in &all {
        let out = skopeo(["inspect", &format!("oci:{}:{name}", root.display())]);
        out.ok();
        assert_eq!(
            serde_json::from_str::<Value>(&out.stdout).unwrap()["Digest"],
            *digest
        );
    }
    assert_eq!(fs::read_dir(root.join("tmp")).unwrap().count(), 0);
    assert!(
        blobs(&root).iter().all(|b| b.len() == 64),
        "{:?}",
        blobs(&root)
    );
    let top: BTreeSet<String> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        top,
        [
            "blobs",
            "index.json",
            "lock",
            "oci-layout",
            "snapshots",
            "tmp"
        ]
        .map(String::from)
        .into()
    );
    // The losers of the fights are other names' images: nothing is garbage.
    let out = rrun(&root, ["image", "prune"]);
    assert!(
        out.ok().stdout.contains("removed 0 blobs"),
        "{}",
        out.stdout
    );
}

/// Two images whose ids share their first three hex digits: variants of `busybox`'s manifest
/// with a counter annotation, written straight into the store.
fn ambiguous_pair(root: &Path) -> (String, String) {
    let base: Value = serde_json::from_slice(&blob(root, &digest_of(root, BUSYBOX))).unwrap();
    let mut seen: std::collections::HashMap<String, Vec<u8>> = Default::default();
    for i in 0.. {
        let mut m = base.clone();
        m["annotations"] = serde_json::json!({"test.counter": i.to_string()});
        let bytes = serde_json::to_vec(&m).unwrap();
        let prefix = sha256(&bytes)["sha256:".len()..][..3].to_string();
        if let Some(first) = seen.insert(prefix, bytes.clone()) {
            let mut out = Vec::new();
            for (n, data) in [(0, first), (1, bytes)] {
                let d = put_blob(root, &data);
                add_entry(root, &format!("docker.io/library/twin:{n}"), &d, data.len());
                out.push(d);
            }
            return (out[0].clone(), out[1].clone());
        }
    }
    unreachable!()
}

#[test]
fn bad_input_is_a_clear_error_and_changes_nothing() {
    let w = workdir();
    let root = w.path().join("store");
    let id = import_busybox(w.path(), &root);
    let (twin, _) = ambiguous_pair(&root);
    let prefix = &twin["sha256:".len()..][..3];
    let rootfs = rootfs(w.path(), "x");
    let rootfs = rootfs.to_str().unwrap();
    let out_dir = w.path().join("out");
    let save_dst = format!("oci:{}", out_dir.display());
    let id64 = &id["sha256:".len()..];
    let before = snapshot(&root);
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["rmi", "nope:1"],
            vec!["nope:1", "not found", "rrun images"],
        ),
        (vec!["tag", "nope:1", "x:1"], vec!["not found"]),
        (vec!["inspect", "nope:1"], vec!["not found"]),
        (
            vec!["image", "save", "nope:1", &save_dst],
            vec!["not found"],
        ),
        (vec!["image", "layerinfo", "nope:1"], vec!["not found"]),
        (vec!["rmi", prefix], vec!["ambiguous", "give more digits"]),
        (vec!["inspect", prefix], vec!["ambiguous"]),
        (
            vec!["tag", "busybox", "Bad:Name"],
            vec!["invalid image name", "lowercase"],
        ),
        (
            vec!["tag", "busybox", "ok:1", "bad name"],
            vec!["invalid image name"],
        ),
        (
            vec!["tag", "busybox", id64],
            vec!["image id cannot be used as a name"],
        ),
        (
            vec!["image", "import", rootfs, "Bad"],
            vec!["invalid image reference"],
        ),
        (
            vec!["image", "import", rootfs, id64],
            vec!["image id cannot be used as a name"],
        ),
        (vec!["rmi", "busybox", "nope:2"], vec!["nope:2"]),
    ];
    for (args, words) in cases {
        rrun(&root, &args).rrun_error(&words);
        assert_eq!(snapshot(&root), before, "{args:?} changed the store");
    }
    assert!(!out_dir.exists());

    // A corrupted index.json is reported and never overwritten.
    fs::write(root.join("index.json"), b"{\"schemaVersion\":2,\"manif").unwrap();
    let before = snapshot(&root);
    for args in [
        vec!["images"],
        vec!["tag", "busybox", "y:1"],
        vec!["rmi", "busybox"],
        vec!["image", "prune"],
        vec!["image", "import", rootfs, "z:1"],
    ] {
        rrun(&root, &args).rrun_error(&["corrupted", "will not overwrite"]);
        assert_eq!(snapshot(&root), before, "{args:?} changed the store");
    }

    // A root that holds something else is not taken over.
    let foreign = w.path().join("foreign");
    fs::create_dir_all(&foreign).unwrap();
    fs::write(foreign.join("notes.txt"), b"mine").unwrap();
    rrun(&foreign, ["image", "import", rootfs, "a:1"])
        .rrun_error(&["not an rrun image store", "notes.txt"]);
    assert_eq!(fs::read_dir(&foreign).unwrap().count(), 1);
    // Reading a store that does not exist creates nothing.
    let missing = w.path().join("missing");
    let out = rrun(&missing, ["images"]);
    out.ok();
    assert_eq!(out.stdout.lines().count(), 1);
    rrun(&missing, ["rmi", "busybox"]).rrun_error(&["no image store"]);
    assert!(!missing.exists());
}

/// Pseudo-random bytes (incompressible, so gzip takes a while).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn an_import_killed_at_any_moment_leaves_a_valid_store() {
    let w = workdir();
    let root = w.path().join("store");
    let id = import_busybox(w.path(), &root);
    let big = w.path().join("big");
    fs::create_dir_all(&big).unwrap();
    fs::write(big.join("data"), noise(512 << 10, 7)).unwrap();
    let spawn = |name: &str| {
        rrun_cmd(
            &root,
            [
                "image".as_ref(),
                "import".as_ref(),
                big.as_os_str(),
                name.as_ref(),
            ],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
    };
    // How long one import takes here and now; the kills land at 0%, 10%, ... 90% of it.
    let start = std::time::Instant::now();
    assert!(spawn("timing:1").wait().unwrap().success());
    let full = start.elapsed();
    let mut saw_partial = false;
    for percent in (0..100).step_by(10) {
        let mut child = spawn("big:1");
        std::thread::sleep(full * percent / 100);
        child.kill().unwrap(); // SIGKILL (a no-op if it already finished)
        child.wait().unwrap();
        saw_partial |= blobs(&root).iter().any(|b| b.starts_with(".rrun-tmp-"));
        // Whatever happened, every image the index names is complete and verified.
        rrun(&root, ["images", "--format", "json"]).ok();
        for (i, (name, _)) in entries(&root).into_iter().enumerate() {
            let out = w.path().join(format!("check-{percent}-{i}"));
            rrun(
                &root,
                ["image", "save", &name, &format!("oci:{}", out.display())],
            )
            .ok();
            fs::remove_dir_all(&out).unwrap();
        }
        assert_eq!(digest_of(&root, BUSYBOX), id);
    }
    assert!(
        saw_partial,
        "no kill hit the import while it was writing a blob"
    );
    // After all that, the same import completes.
    assert!(spawn("big:1").wait().unwrap().success());
    // The next exclusive lock removes what the killed imports left behind.
    rrun(&root, ["image", "prune"]).ok();
    assert_eq!(fs::read_dir(root.join("tmp")).unwrap().count(), 0);
    assert!(
        blobs(&root).iter().all(|b| b.len() == 64),
        "{:?}",
        blobs(&root)
    );
    for e in fs::read_dir(&root).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with(".rrun-tmp-"), "{name} left in the root");
    }
    skopeo([
        "inspect",
        &format!("oci:{}:docker.io/library/big:1", root.display()),
    ])
    .ok();
}
