//! Following a stored image from its `index.json` entry through indexes and manifests to
//! configs and layers: the blobs it needs (for prune, sizes and commit checks) and its image
//! manifests with their configs (for listings and inspect). Unknown document types are kept
//! as opaque blobs rather than refused, so that an odd entry never blocks the whole store.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::image::digest::Digest;
use crate::image::error::{ImageError, Result};
use crate::image::layout::{Layout, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE};
use crate::image::manifest::{self, ConfigPlatform, Descriptor, Manifest, Node};
use crate::image::media_type;
use crate::image::platform::Platform;

/// Indexes nested deeper than this are refused.
const MAX_DEPTH: usize = 4;

/// An image manifest reached from an entry.
#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    /// Its descriptor in the parent index (or `index.json`).
    pub desc: Descriptor,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// From the parent index, else from the config; `None` for non-image configs.
    pub platform: Option<Platform>,
    /// The image config, when the config is an OCI or Docker image config.
    pub config: Option<Value>,
}

impl Leaf {
    /// The config's `rootfs.diff_ids` that are valid digests, by layer position.
    pub fn diff_ids(&self) -> Vec<Option<Digest>> {
        let Some(ids) = self
            .config
            .as_ref()
            .and_then(|c| c.pointer("/rootfs/diff_ids"))
            .and_then(Value::as_array)
        else {
            return Vec::new();
        };
        ids.iter()
            .map(|v| v.as_str().and_then(|s| Digest::parse(s).ok()))
            .collect()
    }

    /// The config's `created` time.
    pub fn created(&self) -> Option<String> {
        self.config
            .as_ref()
            .and_then(|c| c.get("created"))
            .and_then(Value::as_str)
            .map(str::to_string)
    }
}

/// Everything reached from one entry.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reached {
    /// Every stored blob the image needs with its declared size (foreign layers that are not
    /// stored locally are left out).
    pub blobs: BTreeMap<Digest, u64>,
    /// The image manifests, in walk order.
    pub leaves: Vec<Leaf>,
}

/// Follow `top` in `layout`, verifying every manifest, index and config read.
pub(crate) fn reach(layout: &Layout, top: &Descriptor) -> Result<Reached> {
    let mut out = Reached::default();
    visit(layout, top, None, 0, &mut out)?;
    Ok(out)
}

fn visit(
    layout: &Layout,
    desc: &Descriptor,
    parent_platform: Option<Platform>,
    depth: usize,
    out: &mut Reached,
) -> Result<()> {
    out.blobs.insert(desc.digest.clone(), desc.size);
    if media_type::manifest_kind(&desc.media_type).is_err() {
        return Ok(());
    }
    if depth > MAX_DEPTH {
        return Err(ImageError::malformed(
            format!("index {}", desc.digest),
            format!("indexes are nested more than {MAX_DEPTH} deep"),
        ));
    }
    let what = format!("manifest {}", desc.digest);
    let raw = layout.read_blob(desc, MAX_MANIFEST_SIZE, &what)?;
    match manifest::parse_node(&raw, desc)? {
        Node::Index(index) => {
            for child in &index.manifests {
                let platform = child.platform.as_ref().map(|p| p.platform());
                visit(layout, child, platform, depth + 1, out)?;
            }
        }
        Node::Manifest(m) => {
            let config_desc = &m.config;
            out.blobs
                .insert(config_desc.digest.clone(), config_desc.size);
            let config = read_config(layout, config_desc)?;
            for layer in &m.layers {
                let foreign = layer.urls.as_ref().is_some_and(|u| !u.is_empty())
                    && !layout.has_blob(&layer.digest);
                if !foreign {
                    out.blobs.insert(layer.digest.clone(), layer.size);
                }
            }
            let platform = parent_platform.or_else(|| {
                config.as_ref().map(|c| {
                    serde_json::from_value::<ConfigPlatform>(c.clone())
                        .unwrap_or_default()
                        .platform()
                })
            });
            out.leaves.push(Leaf {
                desc: desc.clone(),
                manifest: *m,
                platform,
                config,
            });
        }
    }
    Ok(())
}

/// Read and parse an image config; `None` for configs of other types (artifacts).
fn read_config(layout: &Layout, desc: &Descriptor) -> Result<Option<Value>> {
    if desc.media_type != media_type::OCI_CONFIG && desc.media_type != media_type::DOCKER_CONFIG {
        return Ok(None);
    }
    let what = format!("config {}", desc.digest);
    let raw = layout.read_blob(desc, MAX_CONFIG_SIZE, &what)?;
    let value: Value =
        serde_json::from_slice(&raw).map_err(|e| ImageError::malformed(&what, e.to_string()))?;
    if !value.is_object() {
        return Err(ImageError::malformed(&what, "not a JSON object"));
    }
    Ok(Some(value))
}

/// Check that every blob reached is stored with its declared size.
pub(crate) fn check_present(layout: &Layout, reached: &Reached) -> Result<()> {
    for (digest, size) in &reached.blobs {
        let path = layout.blob_path(digest);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() && m.len() == *size => {}
            Ok(m) => {
                return Err(ImageError::SizeMismatch {
                    what: format!("blob {digest}"),
                    expected: *size,
                    actual: m.len(),
                })
            }
            Err(_) => {
                return Err(ImageError::BlobMissing {
                    digest: digest.to_string(),
                    layout: layout.root().to_path_buf(),
                })
            }
        }
    }
    Ok(())
}
