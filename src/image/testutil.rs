//! Test helpers: small real images (gzip tar layers, configs, manifests, indexes) written into
//! OCI layouts, and directory listings to check that failures leave nothing behind.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::digest::Digest;
use super::manifest::{Descriptor, DescriptorPlatform, Index, Manifest};
use super::media_type::*;
use super::stage::Stage;

/// A layer: its blob and the digest of its uncompressed tar.
pub struct Layer {
    pub media_type: &'static str,
    pub blob: Vec<u8>,
    pub diff_id: Digest,
}

/// A tar holding the files, gzip-compressed unless `media_type` is an uncompressed type.
pub fn layer(media_type: &'static str, files: &[(&str, &[u8])]) -> Layer {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, name, *data).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let diff_id = Digest::of_bytes(&tar);
    let blob = if media_type.contains("gzip") {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).unwrap();
        gz.finish().unwrap()
    } else {
        tar
    };
    Layer {
        media_type,
        blob,
        diff_id,
    }
}

/// Write one image manifest (OCI, or Docker schema2 when `docker`) and its blobs; returns its
/// descriptor (not yet in `index.json`).
pub fn put_manifest(
    stage: &mut Stage,
    layers: &[Layer],
    os: &str,
    arch: &str,
    docker: bool,
) -> Descriptor {
    let config = serde_json::json!({
        "architecture": arch,
        "os": os,
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>()},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let (cd, cs) = stage.put_bytes(&config).unwrap();
    let mut descs = Vec::new();
    for l in layers {
        let (d, s) = stage.put_bytes(&l.blob).unwrap();
        descs.push(Descriptor::new(l.media_type, d, s));
    }
    let (mt, config_mt) = if docker {
        (DOCKER_MANIFEST, DOCKER_CONFIG)
    } else {
        (OCI_MANIFEST, OCI_CONFIG)
    };
    let m = Manifest {
        schema_version: 2,
        media_type: Some(mt.into()),
        config: Descriptor::new(config_mt, cd, cs),
        layers: descs,
        subject: None,
        annotations: None,
        extra: Default::default(),
    };
    let bytes = serde_json::to_vec(&m).unwrap();
    let (d, s) = stage.put_bytes(&bytes).unwrap();
    Descriptor::new(mt, d, s)
}

/// Write a one-platform image under `tag`.
pub fn write_image(root: &Path, tag: &str, layers: &[Layer], docker: bool) -> Descriptor {
    let mut stage = Stage::open_or_create(root).unwrap();
    let desc = put_manifest(&mut stage, layers, "linux", "amd64", docker);
    commit(stage, desc.clone(), tag);
    desc
}

/// Write an index over several platforms (`os/arch[/variant]`) under `tag`.
pub fn write_index(root: &Path, tag: &str, platforms: &[(&str, Vec<Layer>)]) -> Descriptor {
    let mut stage = Stage::open_or_create(root).unwrap();
    let mut children = Vec::new();
    for (p, layers) in platforms {
        let parts: Vec<&str> = p.split('/').collect();
        let mut d = put_manifest(&mut stage, layers, parts[0], parts[1], false);
        d.platform = Some(DescriptorPlatform {
            architecture: parts[1].into(),
            os: parts[0].into(),
            os_version: None,
            os_features: None,
            variant: parts.get(2).map(|v| v.to_string()),
            extra: Default::default(),
        });
        children.push(d);
    }
    let mut index = Index::empty();
    index.manifests = children;
    let bytes = serde_json::to_vec(&index).unwrap();
    let (d, s) = stage.put_bytes(&bytes).unwrap();
    let desc = Descriptor::new(OCI_INDEX, d, s);
    commit(stage, desc.clone(), tag);
    desc
}

fn commit(stage: Stage, desc: Descriptor, tag: &str) {
    stage
        .commit(|mut index| {
            super::transport::put_entry(&mut index, desc, Some(tag));
            index
        })
        .unwrap();
}

/// Every path below `dir` with its content hash (files) or `/` (directories), sorted.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if p.is_dir() {
                out.push((rel, "/".into()));
                walk(root, &p, out);
            } else {
                out.push((rel, Digest::of_bytes(&fs::read(&p).unwrap()).to_string()));
            }
        }
    }
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

/// Run skopeo (a peer every test machine has); panics with its stderr if it fails.
pub fn skopeo(args: &[&str]) -> String {
    let out = std::process::Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo must be installed for the peer tests (apt-get install skopeo)");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
