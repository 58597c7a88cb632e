//! Shared test helpers: work dirs, running rrun and the peers, reading and doctoring OCI
//! layouts, and the fixtures (keys, busybox images) built once per test process.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Annotation holding the JWE-wrapped keys of a layer.
pub const ANN_JWE: &str = "org.opencontainers.image.enc.keys.jwe";
/// Annotation holding the public options (cipher, HMAC) of a layer.
pub const ANN_PUBOPTS: &str = "org.opencontainers.image.enc.pubopts";
/// The tag name annotation in `index.json`.
pub const ANN_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Password of the encrypted test keys.
pub const KEY_PASSWORD: &str = "correct horse";

// ---------------------------------------------------------------------------------------------
// Running programs

/// What a finished program did.
#[derive(Debug)]
pub struct Output {
    /// What ran, for messages.
    pub cmdline: String,
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    fn describe(&self) -> String {
        format!(
            "command: {}\nexit code: {}\n--- stdout\n{}\n--- stderr\n{}",
            self.cmdline, self.code, self.stdout, self.stderr
        )
    }

    /// Panic unless the program exited 0.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success\n{}", self.describe());
        self
    }

    /// Panic unless the program failed (any non-zero code).
    #[track_caller]
    pub fn failed(&self) -> &Self {
        assert_ne!(self.code, 0, "expected a failure\n{}", self.describe());
        self
    }

    /// Panic unless this is an rrun error as the CLI contract says: exit code 125 and exactly one
    /// stderr line `rrun: error: ...` that contains every word in `words` (case-insensitive).
    #[track_caller]
    pub fn rrun_error(&self, words: &[&str]) -> &Self {
        assert_eq!(
            self.code,
            125,
            "expected exit code 125\n{}",
            self.describe()
        );
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one stderr line\n{}",
            self.describe()
        );
        assert!(
            lines[0].starts_with("rrun: error: "),
            "expected the line to start with 'rrun: error: '\n{}",
            self.describe()
        );
        let line = lines[0].to_lowercase();
        for w in words {
            assert!(
                line.contains(&w.to_lowercase()),
                "expected the error to mention {w:?}\n{}",
                self.describe()
            );
        }
        self
    }

    /// Like [`Output::rrun_error`], and the message mentions at least one of `any`.
    #[track_caller]
    pub fn rrun_error_any(&self, words: &[&str], any: &[&str]) -> &Self {
        self.rrun_error(words);
        let line = self.stderr.to_lowercase();
        assert!(
            any.iter().any(|w| line.contains(&w.to_lowercase())),
            "expected the error to mention one of {any:?}\n{}",
            self.describe()
        );
        self
    }

    /// Panic unless stdout contains `s`.
    #[track_caller]
    pub fn stdout_has(&self, s: &str) -> &Self {
        assert!(
            self.stdout.contains(s),
            "expected stdout to contain {s:?}\n{}",
            self.describe()
        );
        self
    }
}

/// Run a command with no stdin and capture everything.
pub fn run(mut cmd: Command) -> Output {
    let cmdline = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot start {cmdline}: {e}"));
    Output {
        cmdline,
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Path of the rrun binary under test.
pub fn rrun_bin() -> &'static str {
    env!("CARGO_BIN_EXE_rrun")
}

/// Run the built rrun.
pub fn rrun<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(rrun_bin());
    cmd.args(args);
    run(cmd)
}

/// Run the built rrun with `file` open for reading on descriptor 3 (for `KEY:fd=3`).
pub fn rrun_with_fd3<I, S>(file: &Path, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    require_tool("bash");
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(r#"f=$1; shift; exec "$@" 3<"$f""#)
        .arg("bash")
        .arg(file)
        .arg(rrun_bin())
        .args(args);
    run(cmd)
}

/// Panic with advice unless `tool` is on PATH: a missing peer is a failure, never a skip.
pub fn require_tool(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{tool} not found on PATH: these tests run against the real tool; run `make deps` (as root)"
    );
}

/// Run the real skopeo.
pub fn skopeo<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    require_tool("skopeo");
    let mut cmd = Command::new("skopeo");
    cmd.args(args);
    run(cmd)
}

/// Run a helper tool (umoci, openssl, tar ...) and panic if it fails.
#[track_caller]
pub fn tool<I, S>(name: &str, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    require_tool(name);
    let mut cmd = Command::new(name);
    cmd.args(args);
    let out = run(cmd);
    out.ok();
    out
}

/// A fresh scratch dir, removed when dropped.
pub fn workdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("rrun-it-")
        .tempdir()
        .expect("create a temp dir")
}

/// `oci:PATH:TAG` for a layout path.
pub fn oci(path: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", path.display())
}

/// `oci-archive:PATH:TAG` for an archive path.
pub fn oci_archive(path: &Path, tag: &str) -> String {
    format!("oci-archive:{}:{tag}", path.display())
}

/// `sha256:<hex>` of some bytes.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Copy a directory tree (`cp -a`).
pub fn copy_tree(from: &Path, to: &Path) {
    tool("cp", [OsStr::new("-a"), from.as_os_str(), to.as_os_str()]);
}

/// Every file under `dir` with its sha256, to check that a failed command changed nothing.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display())) {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let data = fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
                out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), sha256(&data));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// OCI layouts

/// One layer descriptor of a manifest.
#[derive(Debug, Clone)]
pub struct Layer {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    pub annotations: Map<String, Value>,
}

impl Layer {
    /// An annotation value, if present.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).and_then(Value::as_str)
    }

    /// True for an `+encrypted` media type.
    pub fn encrypted(&self) -> bool {
        self.media_type.ends_with("+encrypted")
    }
}

/// An OCI image layout on disk.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
}

fn read_json(path: &Path) -> Value {
    let data = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&data).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

impl Layout {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `oci:DIR:TAG`.
    pub fn reference(&self, tag: &str) -> String {
        oci(&self.dir, tag)
    }

    /// The parsed `index.json`.
    pub fn index(&self) -> Value {
        read_json(&self.dir.join("index.json"))
    }

    /// Path of a blob.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let (alg, hex) = digest.split_once(':').expect("digest has an algorithm");
        self.dir.join("blobs").join(alg).join(hex)
    }

    /// A blob's bytes.
    pub fn blob(&self, digest: &str) -> Vec<u8> {
        let p = self.blob_path(digest);
        fs::read(&p).unwrap_or_else(|e| panic!("read blob {}: {e}", p.display()))
    }

    /// Store bytes as a blob and return its digest.
    pub fn put_blob(&self, data: &[u8]) -> String {
        let digest = sha256(data);
        let p = self.blob_path(&digest);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
        digest
    }

    /// The index.json position of the manifest tagged `tag`.
    fn manifest_slot(&self, tag: &str) -> usize {
        let index = self.index();
        let manifests = index["manifests"].as_array().expect("index has manifests");
        manifests
            .iter()
            .position(|m| m["annotations"][ANN_REF_NAME].as_str() == Some(tag))
            .unwrap_or_else(|| {
                panic!(
                    "no tag {tag:?} in {}/index.json: {index}",
                    self.dir.display()
                )
            })
    }

    /// Digest of the manifest tagged `tag`.
    pub fn manifest_digest(&self, tag: &str) -> String {
        let slot = self.manifest_slot(tag);
        self.index()["manifests"][slot]["digest"]
            .as_str()
            .expect("descriptor digest")
            .to_string()
    }

    /// The manifest tagged `tag`.
    pub fn manifest(&self, tag: &str) -> Value {
        let data = self.blob(&self.manifest_digest(tag));
        serde_json::from_slice(&data).expect("manifest is JSON")
    }

    /// The config blob of the image tagged `tag`.
    pub fn config(&self, tag: &str) -> Value {
        let m = self.manifest(tag);
        let data = self.blob(m["config"]["digest"].as_str().expect("config digest"));
        serde_json::from_slice(&data).expect("config is JSON")
    }

    /// The layer descriptors of the image tagged `tag`, bottom first.
    pub fn layers(&self, tag: &str) -> Vec<Layer> {
        self.manifest(tag)["layers"]
            .as_array()
            .expect("manifest has layers")
            .iter()
            .map(|l| Layer {
                media_type: l["mediaType"].as_str().unwrap_or_default().to_string(),
                digest: l["digest"].as_str().expect("layer digest").to_string(),
                size: l["size"].as_u64().expect("layer size"),
                annotations: l["annotations"].as_object().cloned().unwrap_or_default(),
            })
            .collect()
    }

    /// Layer digests, bottom first.
    pub fn layer_digests(&self, tag: &str) -> Vec<String> {
        self.layers(tag).into_iter().map(|l| l.digest).collect()
    }

    /// Layer media types, bottom first.
    pub fn media_types(&self, tag: &str) -> Vec<String> {
        self.layers(tag).into_iter().map(|l| l.media_type).collect()
    }

    /// Rewrite layer `idx` of the image tagged `tag`: `f` may change the blob bytes and the
    /// descriptor's annotations; then the blob is stored under its new digest and the layer
    /// descriptor, manifest and index.json are fixed up, so that only the ocicrypt checks
    /// (HMAC, annotations) can notice the change.
    pub fn doctor_layer(
        &self,
        tag: &str,
        idx: usize,
        f: impl FnOnce(&mut Vec<u8>, &mut Map<String, Value>),
    ) {
        let slot = self.manifest_slot(tag);
        let mut index = self.index();
        let mut manifest = self.manifest(tag);
        let layer = &mut manifest["layers"][idx];
        let mut blob = self.blob(layer["digest"].as_str().expect("layer digest"));
        let mut annotations = layer["annotations"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        f(&mut blob, &mut annotations);
        layer["digest"] = Value::from(self.put_blob(&blob));
        layer["size"] = Value::from(blob.len());
        layer["annotations"] = Value::Object(annotations);
        let data = serde_json::to_vec(&manifest).unwrap();
        let desc = &mut index["manifests"][slot];
        desc["digest"] = Value::from(self.put_blob(&data));
        desc["size"] = Value::from(data.len());
        fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
    }

    /// Overwrite layer `idx`'s blob in place without fixing any digest (a corrupt store).
    pub fn clobber_layer_blob(&self, tag: &str, idx: usize, f: impl FnOnce(&mut Vec<u8>)) {
        let digest = self.layers(tag)[idx].digest.clone();
        let p = self.blob_path(&digest);
        let mut blob = self.blob(&digest);
        f(&mut blob);
        fs::write(&p, blob).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures

/// Keys and images shared by all tests of this process. Read-only for tests: copy before
/// changing anything.
#[derive(Debug)]
pub struct Fixtures {
    /// 2-layer busybox-static image, gzip layers, tag `latest`.
    pub image: Layout,
    /// The same image with zstd layers, tag `latest`.
    pub zstd: Layout,
    /// Where the keys are.
    pub keys: PathBuf,
}

/// Tag of every fixture image.
pub const TAG: &str = "latest";

impl Fixtures {
    /// Path of a key file in the fixture key dir, as a string for command lines.
    ///
    /// Private keys (mode 0600): `rsa.pem` (PKCS#8), `rsa-pkcs1.pem`, `rsa-legacy-enc.pem`
    /// (traditional PEM encrypted with `KEY_PASSWORD`), `rsa-pk8-enc.pem` (PKCS#8
    /// `ENCRYPTED PRIVATE KEY`, same password), `rsa2.pem` (another key), and for each curve
    /// `ec256`, `ec384`, `ec521`: `ecN.pem` (PKCS#8) and `ecN-sec1.pem` (`EC PRIVATE KEY`).
    /// Public keys: `rsa.pub`, `rsa2.pub`, `ecN.pub`. `password.txt` holds `KEY_PASSWORD`.
    pub fn key(&self, name: &str) -> String {
        let p = self.keys.join(name);
        assert!(p.exists(), "no fixture key {name}");
        p.to_string_lossy().into_owned()
    }

    /// `jwe:PUBKEY` recipient for a public key fixture.
    pub fn jwe(&self, name: &str) -> String {
        format!("jwe:{}", self.key(name))
    }
}

static FIXTURES: OnceLock<Fixtures> = OnceLock::new();

/// The shared fixtures, built on first use.
pub fn fixtures() -> &'static Fixtures {
    FIXTURES.get_or_init(build_fixtures)
}

/// Remove fixture dirs left by earlier test processes that are gone.
fn remove_stale_fixture_dirs(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("rrun-it-fixtures-") {
            if pid != std::process::id().to_string() && !Path::new("/proc").join(pid).exists() {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
}

fn build_fixtures() -> Fixtures {
    for t in ["openssl", "umoci", "skopeo"] {
        require_tool(t);
    }
    let tmp = std::env::temp_dir();
    remove_stale_fixture_dirs(&tmp);
    let dir = tmp.join(format!("rrun-it-fixtures-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let keys = dir.join("keys");
    fs::create_dir_all(&keys).unwrap();
    make_keys(&keys);
    let image = Layout::new(dir.join("busybox"));
    make_busybox_image(&dir, &image);
    let zstd = Layout::new(dir.join("busybox-zstd"));
    skopeo([
        "copy",
        "-q",
        "--dest-compress-format",
        "zstd",
        &image.reference(TAG),
        &zstd.reference(TAG),
    ])
    .ok();
    Fixtures { image, zstd, keys }
}

fn openssl(args: &[&str]) {
    tool("openssl", args);
}

fn make_keys(k: &Path) {
    let p = |n: &str| k.join(n).to_string_lossy().into_owned();
    let pass = format!("pass:{KEY_PASSWORD}");
    for name in ["rsa", "rsa2"] {
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            &p(&format!("{name}.pem")),
        ]);
        openssl(&[
            "pkey",
            "-in",
            &p(&format!("{name}.pem")),
            "-pubout",
            "-out",
            &p(&format!("{name}.pub")),
        ]);
    }
    openssl(&[
        "rsa",
        "-in",
        &p("rsa.pem"),
        "-traditional",
        "-out",
        &p("rsa-pkcs1.pem"),
    ]);
    openssl(&[
        "rsa",
        "-in",
        &p("rsa.pem"),
        "-traditional",
        "-aes256",
        "-passout",
        &pass,
        "-out",
        &p("rsa-legacy-enc.pem"),
    ]);
    openssl(&[
        "pkcs8",
        "-topk8",
        "-v2",
        "aes-256-cbc",
        "-in",
        &p("rsa.pem"),
        "-passout",
        &pass,
        "-out",
        &p("rsa-pk8-enc.pem"),
    ]);
    for (name, curve) in [
        ("ec256", "prime256v1"),
        ("ec384", "secp384r1"),
        ("ec521", "secp521r1"),
    ] {
        let sec1 = p(&format!("{name}-sec1.pem"));
        openssl(&[
            "ecparam", "-name", curve, "-genkey", "-noout", "-out", &sec1,
        ]);
        openssl(&[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            &sec1,
            "-out",
            &p(&format!("{name}.pem")),
        ]);
        openssl(&[
            "ec",
            "-in",
            &sec1,
            "-pubout",
            "-out",
            &p(&format!("{name}.pub")),
        ]);
    }
    // Taken byte for byte, as ocicrypt does: no trailing newline.
    fs::write(k.join("password.txt"), KEY_PASSWORD).unwrap();
    // Private keys as a careful user keeps them (a world-readable key makes rrun warn).
    use std::os::unix::fs::PermissionsExt;
    for e in fs::read_dir(k).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let mode = if name.ends_with(".pub") { 0o644 } else { 0o600 };
        fs::set_permissions(e.path(), fs::Permissions::from_mode(mode)).unwrap();
    }
    for f in [
        "rsa.pem",
        "rsa-pkcs1.pem",
        "ec256-sec1.pem",
        "rsa-pk8-enc.pem",
    ] {
        let head = fs::read_to_string(k.join(f)).unwrap();
        let first = head.lines().next().unwrap_or_default().to_string();
        let want = match f {
            "rsa.pem" => "-----BEGIN PRIVATE KEY-----",
            "rsa-pkcs1.pem" => "-----BEGIN RSA PRIVATE KEY-----",
            "ec256-sec1.pem" => "-----BEGIN EC PRIVATE KEY-----",
            _ => "-----BEGIN ENCRYPTED PRIVATE KEY-----",
        };
        assert_eq!(first, want, "fixture key {f} has the wrong form");
    }
}

/// A busybox-static rootfs: the binary and its applet symlinks, /etc/passwd and group.
pub fn make_busybox_rootfs(root: &Path) {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.is_file(),
        "/bin/busybox not found: install busybox-static with `make deps`"
    );
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "root", "proc", "sys", "dev",
    ] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::copy(busybox, root.join("bin/busybox")).unwrap();
    let list = tool("/bin/busybox", ["--list-full"]);
    for applet in list.stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let link = root.join(applet);
        if link.symlink_metadata().is_err() {
            fs::create_dir_all(link.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink("/bin/busybox", &link).unwrap();
        }
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
}

/// A 2-layer image built with umoci: busybox-static, then a small layer with one file.
fn make_busybox_image(scratch: &Path, image: &Layout) {
    let l = image.dir.to_string_lossy().into_owned();
    let img = format!("{l}:{TAG}");
    let bundle = scratch.join("bundle");
    let b = bundle.to_string_lossy().into_owned();
    tool("umoci", ["init", "--layout", &l]);
    tool("umoci", ["new", "--image", &img]);
    tool("umoci", ["unpack", "--rootless", "--image", &img, &b]);
    make_busybox_rootfs(&bundle.join("rootfs"));
    tool(
        "umoci",
        [
            "repack",
            "--image",
            &img,
            "--history.created_by",
            "rrun tests: busybox-static",
            &b,
        ],
    );
    fs::remove_dir_all(&bundle).unwrap();
    tool("umoci", ["unpack", "--rootless", "--image", &img, &b]);
    fs::write(bundle.join("rootfs/etc/motd"), "rrun test image\n").unwrap();
    tool(
        "umoci",
        [
            "repack",
            "--image",
            &img,
            "--history.created_by",
            "rrun tests: /etc/motd",
            &b,
        ],
    );
    fs::remove_dir_all(&bundle).unwrap();
    tool(
        "umoci",
        [
            "config",
            "--image",
            &img,
            "--config.cmd",
            "/bin/sh",
            "--config.env",
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            "--architecture",
            "amd64",
            "--os",
            "linux",
        ],
    );
    tool("umoci", ["gc", "--layout", &l]);
    assert_eq!(image.layers(TAG).len(), 2, "fixture image has 2 layers");
}
