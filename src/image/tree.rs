//! An image read as a tree: the `index.json` entry, nested indexes, and image manifests at the
//! leaves with their platforms. Every document is verified (size, digest, media type) and every
//! layer media type checked while the tree is loaded, before anything is written.

use crate::crypto::layer::has_wrapped_keys;

use super::error::{ImageError, Result};
use super::layout::{Layout, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE};
use super::manifest::{self, ConfigPlatform, Descriptor, Index, Manifest, Node};
use super::media_type::{self, LayerKind};
use super::platform::Platform;

/// Indexes nested deeper than this are refused.
const MAX_DEPTH: usize = 4;

/// An image manifest and what it was read from.
#[derive(Debug, Clone)]
pub struct ManifestNode {
    /// Position among the tree's manifests (in walk order).
    pub id: usize,
    /// Its descriptor (in the parent index or `index.json`).
    pub desc: Descriptor,
    /// Its verified bytes.
    pub raw: Vec<u8>,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// Its platform: from the parent index, else from the config.
    pub platform: Platform,
}

/// An image index and its children.
#[derive(Debug, Clone)]
pub struct IndexNode {
    /// Its descriptor.
    pub desc: Descriptor,
    /// Its verified bytes.
    pub raw: Vec<u8>,
    /// The parsed index.
    pub index: Index,
    /// The loaded children, in the index's order.
    pub children: Vec<TreeNode>,
}

/// A node of the tree.
#[derive(Debug, Clone)]
pub enum TreeNode {
    /// An image manifest.
    Manifest(Box<ManifestNode>),
    /// An image index.
    Index(Box<IndexNode>),
}

impl TreeNode {
    /// The manifests at the leaves, in walk order (their `id`s are 0, 1, ...).
    pub fn manifests(&self) -> Vec<&ManifestNode> {
        let mut out = Vec::new();
        fn walk<'a>(n: &'a TreeNode, out: &mut Vec<&'a ManifestNode>) {
            match n {
                TreeNode::Manifest(m) => out.push(m),
                TreeNode::Index(i) => i.children.iter().for_each(|c| walk(c, out)),
            }
        }
        walk(self, &mut out);
        out
    }

    /// The node's descriptor.
    pub fn desc(&self) -> &Descriptor {
        match self {
            TreeNode::Manifest(m) => &m.desc,
            TreeNode::Index(i) => &i.desc,
        }
    }
}

/// Load the tree below `root` (an `index.json` entry) from `layout`.
pub fn load(layout: &Layout, root: &Descriptor) -> Result<TreeNode> {
    let mut next_id = 0;
    load_node(layout, root, 0, &mut next_id)
}

fn load_node(
    layout: &Layout,
    desc: &Descriptor,
    depth: usize,
    next_id: &mut usize,
) -> Result<TreeNode> {
    if depth > MAX_DEPTH {
        return Err(ImageError::malformed(
            format!("index {}", desc.digest),
            format!("indexes are nested more than {MAX_DEPTH} deep"),
        ));
    }
    // Check the media type before reading: an unknown type is refused without i/o.
    media_type::manifest_kind(&desc.media_type)?;
    let what = format!("manifest {}", desc.digest);
    let raw = layout.read_blob(desc, MAX_MANIFEST_SIZE, &what)?;
    match manifest::parse_node(&raw, desc)? {
        Node::Manifest(m) => {
            check_layers(&m)?;
            let platform = match &desc.platform {
                Some(p) => p.platform(),
                None => config_platform(layout, &m.config)?,
            };
            let id = *next_id;
            *next_id += 1;
            Ok(TreeNode::Manifest(Box::new(ManifestNode {
                id,
                desc: desc.clone(),
                raw,
                manifest: *m,
                platform,
            })))
        }
        Node::Index(index) => {
            let children = index
                .manifests
                .iter()
                .map(|c| load_node(layout, c, depth + 1, next_id))
                .collect::<Result<Vec<_>>>()?;
            Ok(TreeNode::Index(Box::new(IndexNode {
                desc: desc.clone(),
                raw,
                index: *index,
                children,
            })))
        }
    }
}

/// Every layer must have a known media type, and ocicrypt annotations exactly when the type
/// says `+encrypted`.
fn check_layers(m: &Manifest) -> Result<()> {
    for layer in &m.layers {
        let keys = has_wrapped_keys(&layer.annotations());
        match media_type::layer_kind(&layer.media_type)? {
            LayerKind::Plain { .. } if keys => {
                return Err(ImageError::InconsistentLayer {
                    layer: layer.digest.to_string(),
                    reason: format!(
                        "it has ocicrypt key annotations but the plain media type {}",
                        layer.media_type
                    ),
                })
            }
            LayerKind::Encrypted { .. } if !keys => {
                return Err(ImageError::InconsistentLayer {
                    layer: layer.digest.to_string(),
                    reason: format!(
                        "its media type {} says encrypted but it has no org.opencontainers.image.enc.keys.* annotation",
                        layer.media_type
                    ),
                })
            }
            _ => {}
        }
    }
    Ok(())
}

/// The platform an image config names (`unknown/unknown` for non-image configs).
fn config_platform(layout: &Layout, config: &Descriptor) -> Result<Platform> {
    if config.media_type != media_type::OCI_CONFIG && config.media_type != media_type::DOCKER_CONFIG
    {
        return Ok(ConfigPlatform::default().platform());
    }
    let what = format!("config {}", config.digest);
    let raw = layout.read_blob(config, MAX_CONFIG_SIZE, &what)?;
    let parsed: ConfigPlatform =
        serde_json::from_slice(&raw).map_err(|e| ImageError::malformed(&what, e.to_string()))?;
    Ok(parsed.platform())
}
