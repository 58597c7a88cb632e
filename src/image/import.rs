//! `rrun image import`: a root filesystem (a directory, or a tar that may be gzip or zstd
//! compressed) becomes a one-layer OCI image, streamed in constant memory
//! (tar -> diff_id hash -> gzip -> blob hash + file).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use flate2::write::GzEncoder;

use super::digest::{Digest, HashingWriter};
use super::error::{ImageError, Result};
use super::manifest::{ContainerConfig, Descriptor, History, ImageConfig, Manifest, RootFs};
use super::media_type;
use super::platform::Platform;
use super::reference::ImageRef;
use super::rootfs_tar;
use super::transport::Destination;

/// The `PATH` an imported image gets when no environment is given (Docker's default).
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What goes into the imported image's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// Default arguments (`["/bin/sh"]` when this and `entrypoint` are both empty).
    pub cmd: Vec<String>,
    /// Entrypoint.
    pub entrypoint: Vec<String>,
    /// Environment, `KEY=VALUE`; the default `PATH` is added when none is given.
    pub env: Vec<String>,
    /// Working directory (absolute).
    pub workdir: Option<String>,
    /// Platform recorded in the config.
    pub platform: Platform,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            cmd: Vec::new(),
            entrypoint: Vec::new(),
            env: Vec::new(),
            workdir: None,
            platform: Platform::host(),
        }
    }
}

/// What an import wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportSummary {
    /// Digest of the new manifest.
    pub manifest_digest: String,
    /// Digest of the gzip layer blob.
    pub layer_digest: String,
    /// Digest of the uncompressed layer tar (the config's `rootfs.diff_ids[0]`).
    pub diff_id: String,
    /// Size of the layer blob.
    pub size: u64,
}

/// Build a one-layer image from `source` and store it at `dst`.
pub fn import(source: &Path, dst: &ImageRef, opts: &ImportOptions) -> Result<ImportSummary> {
    import_at(source, dst, opts, created_now()?)
}

/// The creation time: `SOURCE_DATE_EPOCH` when set (reproducible builds), else now.
fn created_now() -> Result<u64> {
    if let Ok(v) = std::env::var("SOURCE_DATE_EPOCH") {
        return v.trim().parse().map_err(|_| ImageError::InvalidImport {
            path: "SOURCE_DATE_EPOCH".into(),
            reason: format!("{v:?} is not a number of seconds"),
        });
    }
    Ok(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0))
}

/// RFC 3339 UTC time of a Unix timestamp (days-from-civil inverse, Howard Hinnant's algorithm).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// How a tar source is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Open a tar source, decompressing it.
fn open_tar(path: &Path, c: Compression) -> Result<Box<dyn Read>> {
    let file = BufReader::new(File::open(path).map_err(|e| ImageError::io_at(path, e))?);
    Ok(match c {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(file)
                .map_err(|e| ImageError::io_at(path, e))?,
        ),
    })
}

/// Recognise the compression of a tar source from its first bytes.
fn detect(path: &Path) -> Result<Compression> {
    let bad = |reason: &str| ImageError::InvalidImport {
        path: path.into(),
        reason: reason.into(),
    };
    let mut file = BufReader::new(File::open(path).map_err(|e| ImageError::io_at(path, e))?);
    let head = file.fill_buf().map_err(|e| ImageError::io_at(path, e))?;
    match head {
        [] => Err(bad("the file is empty")),
        [0x1f, 0x8b, ..] => Ok(Compression::Gzip),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Ok(Compression::Zstd),
        [b'B', b'Z', b'h', ..] | [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Err(bad(
            "bzip2 and xz tars are not supported: decompress it first, or give a directory",
        )),
        _ => Ok(Compression::None),
    }
}

/// Check a tar source before using it: it must parse, hold at least one entry, and no name or
/// hardlink target may be absolute or contain `..`.
fn check_tar(path: &Path, c: Compression) -> Result<()> {
    let bad = |reason: String| ImageError::InvalidImport {
        path: path.into(),
        reason,
    };
    let not_tar = |e: io::Error| {
        bad(format!(
            "not a tar archive (plain, gzip or zstd): {e}; give a directory or a tar"
        ))
    };
    let unsafe_name = |name: &[u8]| {
        name.starts_with(b"/") || name.split(|b| *b == b'/').any(|part| part == b"..")
    };
    let mut archive = tar::Archive::new(open_tar(path, c)?);
    let mut count = 0usize;
    for entry in archive.entries().map_err(not_tar)? {
        let entry = entry.map_err(not_tar)?;
        count += 1;
        let name = entry.path_bytes();
        if unsafe_name(&name) {
            return Err(bad(format!(
                "entry {:?} is absolute or contains '..'; re-create the tar with tar -C ROOTFS -cf FILE .",
                String::from_utf8_lossy(&name)
            )));
        }
        if entry.header().entry_type() == tar::EntryType::Link {
            if let Some(target) = entry.link_name_bytes() {
                if unsafe_name(&target) {
                    return Err(bad(format!(
                        "hardlink {:?} points to {:?}, outside the root",
                        String::from_utf8_lossy(&name),
                        String::from_utf8_lossy(&target)
                    )));
                }
            }
        }
    }
    if count == 0 {
        return Err(bad("the tar holds no entries".into()));
    }
    Ok(())
}

/// Check the options before anything is written.
fn check_options(opts: &ImportOptions) -> Result<()> {
    let bad = |reason: String| ImageError::InvalidImport {
        path: "options".into(),
        reason,
    };
    for e in &opts.env {
        match e.split_once('=') {
            Some((k, _)) if !k.is_empty() => {}
            _ => return Err(bad(format!("environment entry {e:?} is not KEY=VALUE"))),
        }
    }
    if let Some(w) = &opts.workdir {
        if !w.starts_with('/') {
            return Err(bad(format!("working directory {w:?} must be absolute")));
        }
    }
    Ok(())
}

/// The image config for the options and the layer's diff_id.
fn image_config(
    opts: &ImportOptions,
    diff_id: Digest,
    created: &str,
    source: &Path,
) -> ImageConfig {
    let mut env = opts.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    let cmd = if opts.cmd.is_empty() && opts.entrypoint.is_empty() {
        vec!["/bin/sh".to_string()]
    } else {
        opts.cmd.clone()
    };
    let name = source
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| source.display().to_string());
    ImageConfig {
        created: Some(created.to_string()),
        architecture: opts.platform.architecture.clone(),
        os: opts.platform.os.clone(),
        variant: opts.platform.variant.clone(),
        config: Some(ContainerConfig {
            env,
            entrypoint: opts.entrypoint.clone(),
            cmd,
            working_dir: opts.workdir.clone(),
            extra: Default::default(),
        }),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![diff_id],
        },
        history: vec![History {
            created: Some(created.to_string()),
            created_by: Some(format!("rrun image import {name}")),
            ..History::default()
        }],
        extra: Default::default(),
    }
}

pub(crate) fn import_at(
    source: &Path,
    dst: &ImageRef,
    opts: &ImportOptions,
    created: u64,
) -> Result<ImportSummary> {
    check_options(opts)?;
    let meta = std::fs::metadata(source).map_err(|e| ImageError::io_at(source, e))?;
    let tar_source = if meta.is_dir() {
        None
    } else if meta.is_file() {
        let c = detect(source)?;
        check_tar(source, c)?;
        Some(c)
    } else {
        return Err(ImageError::InvalidImport {
            path: source.into(),
            reason: "neither a directory nor a file".into(),
        });
    };

    let mut dest = Destination::open(dst)?;
    let stage = dest.stage();
    let blob = stage.blob_writer()?;
    let gzip = GzEncoder::new(blob, flate2::Compression::default());
    let mut tar_out = HashingWriter::new(gzip);
    match tar_source {
        None => {
            rootfs_tar::write_dir_tar(source, &mut tar_out)?;
        }
        Some(c) => {
            io::copy(&mut open_tar(source, c)?, &mut tar_out)
                .map_err(|e| ImageError::io_at(source, e))?;
        }
    }
    tar_out.flush()?;
    let (diff_id, _, gzip) = tar_out.finish();
    let blob = gzip.finish()?;
    let (layer_digest, layer_size) = stage.commit_blob(blob)?;

    let created = rfc3339(created);
    let config = image_config(opts, diff_id.clone(), &created, source);
    let config_bytes = serde_json::to_vec(&config)
        .map_err(|e| ImageError::malformed("image config", e.to_string()))?;
    let (config_digest, config_size) = stage.put_bytes(&config_bytes)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.into()),
        config: Descriptor::new(media_type::OCI_CONFIG, config_digest, config_size),
        layers: vec![Descriptor::new(
            media_type::OCI_LAYER_GZIP,
            layer_digest.clone(),
            layer_size,
        )],
        subject: None,
        annotations: None,
        extra: Default::default(),
    };
    let manifest_bytes = serde_json::to_vec(&manifest)
        .map_err(|e| ImageError::malformed("manifest", e.to_string()))?;
    let (manifest_digest, manifest_size) = stage.put_bytes(&manifest_bytes)?;
    dest.commit(Descriptor::new(
        media_type::OCI_MANIFEST,
        manifest_digest.clone(),
        manifest_size,
    ))?;
    Ok(ImportSummary {
        manifest_digest: manifest_digest.to_string(),
        layer_digest: layer_digest.to_string(),
        diff_id: diff_id.to_string(),
        size: layer_size,
    })
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;
    use std::process::Command;

    use super::*;
    use crate::image::layout::Layout;
    use crate::image::manifest::{parse_node, Node};
    use crate::image::testutil::{skopeo, snapshot};
    use crate::image::transport::resolve_in;

    const LONG: &str = "a-directory-name-that-is-long-enough/to-need-the-gnu-long-name-extension/because-it-is-over-one-hundred-bytes";

    fn rootfs(dir: &Path) {
        fs::create_dir_all(dir.join("bin")).unwrap();
        fs::create_dir_all(dir.join("etc")).unwrap();
        fs::create_dir_all(dir.join("tmp")).unwrap();
        fs::create_dir_all(dir.join(LONG)).unwrap();
        fs::write(dir.join("bin/busybox"), b"#!fake busybox").unwrap();
        fs::set_permissions(dir.join("bin/busybox"), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("busybox", dir.join("bin/sh")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", dir.join("etc/abs-link")).unwrap();
        fs::write(dir.join("etc/hard"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
        fs::hard_link(dir.join("etc/hard"), dir.join("etc/passwd")).unwrap();
        fs::write(dir.join(LONG).join("file"), b"long").unwrap();
        fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    }

    fn oci(dir: &Path, tag: &str) -> ImageRef {
        format!("oci:{}:{tag}", dir.display()).parse().unwrap()
    }

    /// Manifest, config and layer blob path of a tag.
    fn read_image(dir: &Path, tag: &str) -> (Manifest, ImageConfig, PathBuf) {
        let layout = Layout::open(dir).unwrap();
        let desc = resolve_in(&layout.read_index().unwrap(), "t", Some(tag)).unwrap();
        let raw = layout.read_blob(&desc, 1 << 20, "m").unwrap();
        let Node::Manifest(m) = parse_node(&raw, &desc).unwrap() else {
            panic!("index")
        };
        let config: ImageConfig =
            serde_json::from_slice(&layout.read_blob(&m.config, 1 << 20, "c").unwrap()).unwrap();
        let layer = layout.blob_path(&m.layers[0].digest);
        let mut r = layout.open_blob(&m.layers[0], "layer").unwrap();
        io::copy(&mut r, &mut io::sink()).unwrap();
        r.finish().unwrap();
        (*m, config, layer)
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn directory_import_matches_gnu_tar_and_its_diff_id() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("rootfs");
        rootfs(&root);
        let dst = tmp.path().join("img");
        let s = import_at(
            &root,
            &oci(&dst, "v1"),
            &ImportOptions::default(),
            1_700_000_000,
        )
        .unwrap();
        let (m, config, blob) = read_image(&dst, "v1");
        assert_eq!(m.layers[0].media_type, media_type::OCI_LAYER_GZIP);
        assert_eq!(m.layers[0].digest.to_string(), s.layer_digest);
        assert_eq!(m.layers[0].size, s.size);
        assert_eq!(
            config.rootfs.diff_ids,
            vec![Digest::parse(&s.diff_id).unwrap()]
        );
        // Recompute the diff_id from the blob.
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(File::open(&blob).unwrap())
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(Digest::of_bytes(&tar).to_string(), s.diff_id);

        let meta = fs::metadata(&root).unwrap();
        let owner = {
            use std::os::unix::fs::MetadataExt;
            format!("{}/{}", meta.uid(), meta.gid())
        };
        let out = Command::new("tar")
            .arg("-tvzf")
            .arg(&blob)
            .output()
            .unwrap();
        assert!(out.status.success());
        let listing: Vec<(String, String, String)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f[0].to_string(), f[1].to_string(), f[5..].join(" "))
            })
            .collect();
        let e = |perm: &str, name: &str| (perm.to_string(), owner.clone(), name.to_string());
        let long_parent = LONG.split('/').next().unwrap();
        let long_mid = LONG.rsplit_once('/').unwrap().0;
        assert_eq!(
            listing,
            vec![
                e("drwxr-xr-x", &format!("{long_parent}/")),
                e("drwxr-xr-x", &format!("{long_mid}/")),
                e("drwxr-xr-x", &format!("{LONG}/")),
                e("-rw-r--r--", &format!("{LONG}/file")),
                e("drwxr-xr-x", "bin/"),
                e("-rwxr-xr-x", "bin/busybox"),
                e("lrwxrwxrwx", "bin/sh -> busybox"),
                e("drwxr-xr-x", "etc/"),
                e("lrwxrwxrwx", "etc/abs-link -> /etc/shadow"),
                e("-rw-r--r--", "etc/hard"),
                e("hrw-r--r--", "etc/passwd link to etc/hard"),
                e("drwxrwxrwt", "tmp/"),
            ]
        );
    }

    #[test]
    fn config_defaults_and_options() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("rootfs");
        rootfs(&root);
        let dst = tmp.path().join("img");
        import_at(&root, &oci(&dst, "a"), &ImportOptions::default(), 0).unwrap();
        let (_, c, _) = read_image(&dst, "a");
        let cc = c.config.unwrap();
        assert_eq!(cc.cmd, vec!["/bin/sh"]);
        assert_eq!(cc.env, vec![DEFAULT_PATH]);
        assert_eq!(c.created.as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(c.os, Platform::host().os);
        assert_eq!(c.history.len(), 1);
        assert_eq!(
            c.history[0].created_by.as_deref(),
            Some("rrun image import rootfs")
        );

        let opts = ImportOptions {
            cmd: vec![],
            entrypoint: vec!["/bin/app".into(), "--serve".into()],
            env: vec!["A=1".into()],
            workdir: Some("/srv".into()),
            platform: "linux/arm64/v8".parse().unwrap(),
        };
        import_at(&root, &oci(&dst, "b"), &opts, 0).unwrap();
        let (_, c, _) = read_image(&dst, "b");
        assert_eq!((c.os.as_str(), c.architecture.as_str()), ("linux", "arm64"));
        assert_eq!(c.variant.as_deref(), Some("v8"));
        let cc = c.config.unwrap();
        assert!(cc.cmd.is_empty());
        assert_eq!(cc.entrypoint, vec!["/bin/app", "--serve"]);
        assert_eq!(cc.env, vec![DEFAULT_PATH, "A=1"]);
        assert_eq!(cc.working_dir.as_deref(), Some("/srv"));

        let before = snapshot(&dst);
        for bad in [
            ImportOptions {
                env: vec!["NOEQUALS".into()],
                ..ImportOptions::default()
            },
            ImportOptions {
                workdir: Some("relative".into()),
                ..ImportOptions::default()
            },
        ] {
            let err = import_at(&root, &oci(&dst, "c"), &bad, 0).unwrap_err();
            assert!(matches!(err, ImageError::InvalidImport { .. }), "{err}");
        }
        assert_eq!(snapshot(&dst), before);
    }

    #[test]
    fn same_input_same_image() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("rootfs");
        rootfs(&root);
        let a = import_at(
            &root,
            &oci(&tmp.path().join("a"), "t"),
            &ImportOptions::default(),
            5,
        )
        .unwrap();
        let b = import_at(
            &root,
            &oci(&tmp.path().join("b"), "t"),
            &ImportOptions::default(),
            5,
        )
        .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn tar_gzip_and_zstd_sources_keep_the_tar_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("rootfs");
        rootfs(&root);
        let tar_path = tmp.path().join("rootfs.tar");
        let ok = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar_path)
            .arg(".")
            .status()
            .unwrap();
        assert!(ok.success());
        let want = Digest::of_bytes(&fs::read(&tar_path).unwrap()).to_string();
        for (cmd, ext) in [("gzip", "gz"), ("zstd", "zst")] {
            let ok = Command::new(cmd)
                .arg("-kq")
                .arg(&tar_path)
                .status()
                .unwrap();
            assert!(ok.success(), "{cmd}");
            let compressed = tmp.path().join(format!("rootfs.tar.{ext}"));
            let s = import_at(
                &compressed,
                &oci(&tmp.path().join("img"), ext),
                &ImportOptions::default(),
                0,
            )
            .unwrap();
            assert_eq!(s.diff_id, want, "{cmd}");
        }
        let s = import_at(
            &tar_path,
            &oci(&tmp.path().join("img"), "tar"),
            &ImportOptions::default(),
            0,
        )
        .unwrap();
        assert_eq!(s.diff_id, want);
    }

    #[test]
    fn hostile_or_bogus_sources_are_refused_and_nothing_is_created() {
        let tmp = tempfile::tempdir().unwrap();
        let dst = tmp.path().join("img");
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..8].copy_from_slice(b"../evil\0");
        header.set_size(1);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&header, &b"x"[..]).unwrap();
        let evil = tmp.path().join("evil.tar");
        fs::write(&evil, b.into_inner().unwrap()).unwrap();
        let garbage = tmp.path().join("garbage.bin");
        fs::write(&garbage, vec![7u8; 4096]).unwrap();
        let empty = tmp.path().join("empty.tar");
        fs::write(&empty, b"").unwrap();
        let xz = tmp.path().join("x.tar.xz");
        fs::write(&xz, [0xfd, b'7', b'z', b'X', b'Z', 0, 0, 0]).unwrap();
        for (src, why) in [
            (&evil, "'..'"),
            (&garbage, "not a tar"),
            (&empty, "empty"),
            (&xz, "xz"),
        ] {
            let err = import_at(src, &oci(&dst, "t"), &ImportOptions::default(), 0).unwrap_err();
            assert!(matches!(err, ImageError::InvalidImport { .. }), "{err}");
            assert!(err.to_string().contains(why), "{err}");
        }
        assert!(import_at(
            &tmp.path().join("missing"),
            &oci(&dst, "t"),
            &ImportOptions::default(),
            0
        )
        .is_err());
        assert!(!dst.exists());
    }

    #[test]
    fn skopeo_peer_accepts_imported_images() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("rootfs");
        rootfs(&root);
        let dst = tmp.path().join("img");
        let opts = ImportOptions {
            env: vec!["GREETING=hi".into()],
            platform: "linux/amd64".parse().unwrap(),
            ..ImportOptions::default()
        };
        let s = import_at(&root, &oci(&dst, "latest"), &opts, 1_700_000_000).unwrap();
        let out = skopeo(&["inspect", &format!("oci:{}:latest", dst.display())]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["Architecture"], "amd64");
        assert_eq!(v["Os"], "linux");
        assert_eq!(v["Digest"], s.manifest_digest.as_str());
        assert_eq!(v["Layers"][0], s.layer_digest.as_str());
        assert_eq!(v["Created"], "2023-11-14T22:13:20Z");
        assert!(v["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "GREETING=hi"));
        // skopeo verifies every blob it copies.
        skopeo(&[
            "copy",
            &format!("oci:{}:latest", dst.display()),
            &format!(
                "oci-archive:{}:copied",
                tmp.path().join("copy.tar").display()
            ),
        ]);
        // umoci unpacks it (verifying the blobs) into the same tree.
        let bundle = tmp.path().join("bundle");
        let out = Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:latest", dst.display()))
            .arg(&bundle)
            .output()
            .expect("umoci must be installed for the peer tests");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let unpacked = bundle.join("rootfs");
        assert_eq!(
            fs::read_link(unpacked.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
        assert_eq!(fs::read(unpacked.join(LONG).join("file")).unwrap(), b"long");
        assert_eq!(
            fs::read(unpacked.join("etc/passwd")).unwrap(),
            fs::read(root.join("etc/passwd")).unwrap()
        );
        // An oci-archive destination written by rrun is readable by skopeo too.
        let archive = tmp.path().join("rrun.tar");
        import_at(
            &root,
            &format!("oci-archive:{}:x", archive.display())
                .parse()
                .unwrap(),
            &opts,
            0,
        )
        .unwrap();
        skopeo(&["inspect", &format!("oci-archive:{}:x", archive.display())]);
    }
}
