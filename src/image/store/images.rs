//! What the store holds: one summary per stored image (`rrun images`) and the full JSON of one
//! image (`rrun inspect`): manifests, configs, and each layer with its encryption.

use serde_json::{json, Value};

use crate::image::digest::Digest;
use crate::image::error::{ImageError, Result};
use crate::image::layout::MAX_MANIFEST_SIZE;
use crate::image::manifest::Descriptor;
use crate::image::media_type::{self, LayerKind};
use crate::image::platform::Platform;

use super::lock::LockMode;
use super::resolve::{names_of, resolve_in};
use super::walk::{self, Leaf, Reached};
use super::Store;

/// One stored image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageSummary {
    /// The image id: the hex of the manifest (or index) digest; `rrun images` shows 12 digits.
    pub id: String,
    /// Its names (`ref.name`s), sorted.
    pub names: Vec<String>,
    /// Digest of the manifest or index its entry points to.
    pub manifest_digest: Digest,
    /// Media type of that manifest or index.
    pub media_type: String,
    /// Config of the manifest for this host's platform (or the first one).
    pub config_digest: Option<Digest>,
    /// `created` of that config.
    pub created: Option<String>,
    /// Bytes of every blob the image needs (each counted once).
    pub size: u64,
    /// True when any layer is encrypted.
    pub encrypted: bool,
    /// Platforms of its manifests (`linux/amd64`).
    pub platforms: Vec<String>,
    /// Why the image could not be read completely, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The manifest of `reached` for this host, else the first one.
fn host_leaf(reached: &Reached) -> Option<&Leaf> {
    let host = Platform::host();
    reached
        .leaves
        .iter()
        .find(|l| l.platform.as_ref().is_some_and(|p| host.matches(p)))
        .or(reached.leaves.first())
}

fn is_encrypted(layer: &Descriptor) -> bool {
    matches!(
        media_type::layer_kind(&layer.media_type),
        Ok(LayerKind::Encrypted { .. })
    )
}

fn summary(entry: &Descriptor, names: Vec<String>, reached: Result<Reached>) -> ImageSummary {
    let mut s = ImageSummary {
        id: entry.digest.hex().to_string(),
        names,
        manifest_digest: entry.digest.clone(),
        media_type: entry.media_type.clone(),
        config_digest: None,
        created: None,
        size: entry.size,
        encrypted: false,
        platforms: Vec::new(),
        problem: None,
    };
    match reached {
        Ok(reached) => {
            if let Some(leaf) = host_leaf(&reached) {
                s.config_digest = Some(leaf.manifest.config.digest.clone());
                s.created = leaf.created();
            }
            s.size = reached.blobs.values().sum();
            s.encrypted = reached
                .leaves
                .iter()
                .any(|l| l.manifest.layers.iter().any(is_encrypted));
            s.platforms = reached
                .leaves
                .iter()
                .filter_map(|l| l.platform.as_ref().map(Platform::to_string))
                .collect();
        }
        Err(e) => s.problem = Some(e.to_string()),
    }
    s
}

impl Store {
    /// Every stored image, newest first (an image with several names is listed once).
    pub fn images(&self) -> Result<Vec<ImageSummary>> {
        let _guard = self.lock(LockMode::Shared)?;
        let index = self.read_index()?;
        let mut out: Vec<ImageSummary> = Vec::new();
        for entry in &index.manifests {
            if out.iter().any(|s| s.manifest_digest == entry.digest) {
                continue;
            }
            let reached = walk::reach(self.layout(), entry);
            out.push(summary(entry, names_of(&index, entry), reached));
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The image `name` as JSON: id, names, size, the index (if any), and per manifest its
    /// platform, manifest, config and layers with their encryption schemes and recipients.
    pub fn inspect(&self, name: &str) -> Result<Value> {
        let _guard = self.lock(LockMode::Shared)?;
        let index = self.read_index()?;
        let entry = resolve_in(&index, name, self.root())?;
        let reached = walk::reach(self.layout(), &entry)?;
        let top_index = match media_type::manifest_kind(&entry.media_type) {
            Ok(media_type::ManifestKind::Index) => {
                let what = format!("index {}", entry.digest);
                let raw = self.layout().read_blob(&entry, MAX_MANIFEST_SIZE, &what)?;
                Some(
                    serde_json::from_slice::<Value>(&raw)
                        .map_err(|e| ImageError::malformed(&what, e.to_string()))?,
                )
            }
            _ => None,
        };
        let summary = summary(&entry, names_of(&index, &entry), Ok(reached.clone()));
        let manifests: Vec<Value> = reached.leaves.iter().map(leaf_json).collect();
        Ok(json!({
            "Id": summary.id,
            "Digest": summary.manifest_digest,
            "Names": summary.names,
            "MediaType": summary.media_type,
            "Created": summary.created,
            "Size": summary.size,
            "Encrypted": summary.encrypted,
            "Platforms": summary.platforms,
            "Index": top_index,
            "Manifests": manifests,
        }))
    }
}

/// One image manifest for `inspect`.
fn leaf_json(leaf: &Leaf) -> Value {
    let diff_ids = leaf.diff_ids();
    let layers: Vec<Value> = leaf
        .manifest
        .layers
        .iter()
        .enumerate()
        .map(|(i, layer)| {
            let encrypted = is_encrypted(layer);
            let (schemes, recipients) = crate::image::crypt::encryption_of(
                &layer.media_type,
                &layer.annotations(),
                &Default::default(),
            )
            .unwrap_or_default();
            json!({
                "Index": i,
                "Digest": layer.digest,
                "MediaType": layer.media_type,
                "Size": layer.size,
                "DiffID": diff_ids.get(i).cloned().flatten(),
                "Encrypted": encrypted,
                "Encryption": schemes,
                "Recipients": recipients,
            })
        })
        .collect();
    json!({
        "Digest": leaf.desc.digest,
        "MediaType": leaf.desc.media_type,
        "Platform": leaf.platform.as_ref().map(Platform::to_string),
        "Manifest": leaf.manifest,
        "Config": leaf.config,
        "Layers": layers,
    })
}
