//! `pull`: resolve a reference to one verified manifest for the wanted platform, apply the key
//! gate (DESIGN.md section 2 step 4: every encrypted layer's key is unwrapped before any layer
//! byte is requested), download the layers in parallel into staging, and commit the image into
//! the store under its name only when every blob is verified.

use std::collections::BTreeSet;
use std::path::Path;

use crate::crypto::layer as crypto_layer;
use crate::crypto::{CryptoError, DecryptConfig};

use super::client::{Client, ClientOptions, RemoteManifest, RetryNotifier};
use super::fetch::{self, Fetched};
use super::parallel;
use super::progress::Progress;
use crate::image::error::{ImageError, LockedLayer, Result};
use crate::image::layout::MAX_CONFIG_SIZE;
use crate::image::manifest::{self, ConfigPlatform, Descriptor, Manifest, Node};
use crate::image::media_type::{self, LayerKind};
use crate::image::name::Reference;
use crate::image::platform::Platform;
use crate::image::store::{Store, StoreDestination};

/// Indexes nested deeper than this are refused.
const MAX_INDEX_DEPTH: usize = 4;
/// Parallel layer downloads by default.
pub const DEFAULT_JOBS: usize = 3;

/// How to pull.
#[derive(Debug, Clone)]
pub struct PullOptions<'a> {
    /// How to talk to the registry.
    pub client: ClientOptions,
    /// The platform to select from an index (default: this host).
    pub platform: Option<Platform>,
    /// Keys for the key gate; `None` or empty: encrypted layers are stored as ciphertext.
    pub keys: Option<&'a DecryptConfig>,
    /// Parallel layer downloads.
    pub jobs: usize,
    /// Told about retries.
    pub notifier: Option<RetryNotifier>,
    /// Whether plain layers are unpacked into snapshots after the pull.
    pub unpack: Unpack,
    /// The signed length of the top manifest or index (content trust, with the reference
    /// pinned to the signed digest): any other length is refused before anything else is read.
    pub manifest_size: Option<u64>,
}

/// What a pull does with plain layers once the image is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Unpack {
    /// Unpack each plain layer once into a snapshot checked against its diff_id.
    #[default]
    Snapshots,
    /// Store the blobs only (as `nerdctl pull --unpack=false`); `run` unpacks later.
    Skip,
}

impl Default for PullOptions<'_> {
    fn default() -> Self {
        Self {
            client: ClientOptions::default(),
            platform: None,
            keys: None,
            jobs: DEFAULT_JOBS,
            notifier: None,
            unpack: Unpack::default(),
            manifest_size: None,
        }
    }
}

/// What a pull did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PullSummary {
    /// The name the image is stored under.
    pub name: String,
    /// The digest the reference resolved to (an index for multi-platform images).
    pub resolved_digest: String,
    /// The digest of the stored manifest.
    pub manifest_digest: String,
    /// Its platform.
    pub platform: String,
    /// Layers of the manifest.
    pub layers: usize,
    /// Encrypted layers among them.
    pub encrypted_layers: usize,
    /// True when encrypted layers were stored as ciphertext without a key check.
    pub unchecked_ciphertext: bool,
    /// Layers downloaded (fully or by resuming).
    pub downloaded: usize,
    /// Layers the store already had.
    pub already_stored: usize,
}

/// The unpack step (DESIGN.md section 2 step 6): each plain (not `+encrypted`) layer of
/// `manifest` is unpacked once into `<root>/snapshots/<hex of its diff_id>/`, checked against
/// the config's diff_id; snapshots that exist are reused. Encrypted layers stay ciphertext and
/// are never unpacked here. Called after the image is committed, under the store lock (shared,
/// so that prune cannot take a snapshot being built); an error fails the pull but leaves the
/// stored image in place.
pub fn after_pull(root: &Path, name: &str, _entry: &Descriptor, manifest: &Manifest) -> Result<()> {
    let store = crate::image::store::Store::open_existing(root)?;
    let _lock = store.lock(crate::image::store::LockMode::Shared)?;
    let layout = store.layout();
    let diff_ids = crate::image::crypt::config_diff_ids(layout, &manifest.config)?;
    for (i, layer) in manifest.layers.iter().enumerate() {
        if !matches!(
            media_type::layer_kind(&layer.media_type)?,
            LayerKind::Plain { .. }
        ) {
            continue;
        }
        let Some(Some(diff_id)) = diff_ids.get(i) else {
            return Err(ImageError::malformed(
                format!("image config of {name}"),
                format!("no valid rootfs.diff_ids entry for layer {i}: the image cannot be unpacked safely"),
            ));
        };
        let what = format!("layer {} of {name}", layer.digest);
        crate::image::unpack::ensure_snapshot(root, diff_id, || {
            let reader = layout.open_blob(layer, &what)?;
            Ok((
                Box::new(reader) as Box<dyn std::io::Read>,
                layer.media_type.clone(),
            ))
        })?;
    }
    Ok(())
}

/// The manifest selected for the platform, with what it was resolved from.
#[derive(Debug)]
struct Selected {
    /// The `index.json` entry to record (with the platform from the index, if any).
    entry: Descriptor,
    bytes: Vec<u8>,
    manifest: Manifest,
    platform: Option<Platform>,
}

/// Descend from the fetched top document to the manifest of the wanted platform.
fn select_manifest(
    client: &Client,
    repository: &str,
    image: &str,
    top: RemoteManifest,
    wanted: &Platform,
    progress: &dyn Progress,
) -> Result<Selected> {
    let mut current = top;
    let mut platform = None;
    for _ in 0..=MAX_INDEX_DEPTH {
        match manifest::parse_node(&current.bytes, &current.desc)? {
            Node::Manifest(m) => {
                return Ok(Selected {
                    entry: current.desc,
                    bytes: current.bytes,
                    manifest: *m,
                    platform,
                })
            }
            Node::Index(index) => {
                let child = index
                    .manifests
                    .iter()
                    .find(|d| {
                        media_type::manifest_kind(&d.media_type).is_ok()
                            && d.platform
                                .as_ref()
                                .is_some_and(|p| wanted.matches(&p.platform()))
                    })
                    .cloned()
                    .ok_or_else(|| ImageError::NoMatchingPlatform {
                        image: image.to_string(),
                        wanted: wanted.to_string(),
                        available: index
                            .manifests
                            .iter()
                            .filter_map(|d| d.platform.as_ref().map(|p| p.platform().to_string()))
                            .collect::<Vec<_>>()
                            .join(", "),
                    })?;
                platform = child.platform.as_ref().map(|p| p.platform());
                progress.note(&format!(
                    "{} {} -> {} manifest {}",
                    image,
                    current.desc.digest.short(),
                    wanted,
                    child.digest.short()
                ));
                let fetched =
                    client.get_manifest(repository, child.digest.as_str(), Some(&child))?;
                current = fetched;
            }
        }
    }
    Err(ImageError::malformed(
        format!("index of {image}"),
        format!("indexes are nested more than {MAX_INDEX_DEPTH} deep"),
    ))
}

/// Every layer must have a known media type, and ocicrypt key annotations exactly when the
/// type says `+encrypted`. Returns the kinds in layer order.
fn layer_kinds(m: &Manifest) -> Result<Vec<LayerKind>> {
    m.layers
        .iter()
        .map(|l| {
            let kind = media_type::layer_kind(&l.media_type)?;
            let keys = crypto_layer::has_wrapped_keys(&l.annotations());
            let encrypted = matches!(kind, LayerKind::Encrypted { .. });
            if keys != encrypted && kind != LayerKind::PassThrough {
                return Err(ImageError::InconsistentLayer {
                    layer: l.digest.to_string(),
                    reason: if keys {
                        format!("it has ocicrypt key annotations but the plain media type {}", l.media_type)
                    } else {
                        format!("its media type {} says encrypted but it has no org.opencontainers.image.enc.keys.* annotation", l.media_type)
                    },
                });
            }
            Ok(kind)
        })
        .collect()
}

/// The key gate: unwrap the layer key of every encrypted layer with `keys`, reading no layer
/// data; every layer no key opens is reported at once.
fn key_gate(image: &str, m: &Manifest, kinds: &[LayerKind], keys: &DecryptConfig) -> Result<usize> {
    let mut seen = BTreeSet::new();
    let mut locked = Vec::new();
    for (layer, kind) in m.layers.iter().zip(kinds) {
        if !matches!(kind, LayerKind::Encrypted { .. }) || !seen.insert(layer.digest.clone()) {
            continue;
        }
        let annotations = layer.annotations();
        let name = layer.digest.to_string();
        let opened = crypto_layer::public_options(&annotations)
            .and_then(|_| crypto_layer::unwrap_layer(keys, &name, &annotations));
        if let Err(e) = opened {
            locked.push(LockedLayer {
                layer: name,
                schemes: crypto_layer::schemes(&annotations),
                reason: match e {
                    CryptoError::NoKeyForLayer { .. } => {
                        "none of the given keys is a recipient".into()
                    }
                    other => other.to_string(),
                },
            });
        }
    }
    if locked.is_empty() {
        Ok(seen.len())
    } else {
        Err(ImageError::KeyGate {
            image: image.to_string(),
            layers: locked,
        })
    }
}

/// The platform named by an image config (`unknown/unknown` for other configs).
fn config_platform(config: &Descriptor, bytes: &[u8]) -> Result<Platform> {
    if config.media_type != media_type::OCI_CONFIG && config.media_type != media_type::DOCKER_CONFIG
    {
        return Ok(ConfigPlatform::default().platform());
    }
    let parsed: ConfigPlatform = serde_json::from_slice(bytes)
        .map_err(|e| ImageError::malformed(format!("config {}", config.digest), e.to_string()))?;
    Ok(parsed.platform())
}

/// Pull `reference` into the store at `root`.
pub fn pull(
    root: &Path,
    reference: &Reference,
    opts: &PullOptions<'_>,
    progress: &dyn Progress,
) -> Result<PullSummary> {
    let image = reference.to_string();
    let repository = reference.repository();
    let mut client = Client::new(reference, opts.client.clone())?;
    if let Some(n) = &opts.notifier {
        client.set_retry_notifier(n.clone());
    }

    // 1-3: the top document (verified against a pinned digest or Docker-Content-Digest),
    // then down to the manifest of the wanted platform.
    let top = client.get_manifest(repository, &reference.api_reference(), None)?;
    if let Some(size) = opts.manifest_size.filter(|s| *s != top.desc.size) {
        return Err(ImageError::SizeMismatch {
            what: format!("manifest {image} (signed length)"),
            expected: size,
            actual: top.desc.size,
        });
    }
    let resolved = top.desc.digest.clone();
    let wanted = opts.platform.clone().unwrap_or_else(Platform::host);
    let selected = select_manifest(&client, repository, &image, top, &wanted, progress)?;
    let kinds = layer_kinds(&selected.manifest)?;
    let config_desc = selected.manifest.config.clone();
    let config = client.get_blob_bytes(
        repository,
        &config_desc,
        MAX_CONFIG_SIZE,
        &format!("config {}", config_desc.digest),
    )?;
    let platform = match selected.platform.clone() {
        Some(p) => p,
        None => {
            let p = config_platform(&config_desc, &config)?;
            if !wanted.matches(&p) {
                if opts.platform.is_some() {
                    return Err(ImageError::NoMatchingPlatform {
                        image: image.clone(),
                        wanted: wanted.to_string(),
                        available: p.to_string(),
                    });
                }
                progress.note(&format!(
                    "warning: {image} is for {p}, not for this host ({wanted})"
                ));
            }
            p
        }
    };

    // 4: the key gate, before any layer byte is requested.
    let encrypted = kinds
        .iter()
        .filter(|k| matches!(k, LayerKind::Encrypted { .. }))
        .count();
    let keys = opts.keys.filter(|k| !k.is_empty());
    let unchecked_ciphertext = encrypted > 0 && keys.is_none();
    if let Some(keys) = keys {
        if encrypted > 0 {
            let opened = key_gate(&image, &selected.manifest, &kinds, keys)?;
            progress.note(&format!(
                "key gate passed: the keys open all {opened} encrypted layers"
            ));
        }
    }

    // 5: the layers, in parallel, into staging.
    let store = Store::open(root)?;
    let dest = store.destination(reference)?;
    let mut todo: Vec<Descriptor> = Vec::new();
    for (layer, kind) in selected.manifest.layers.iter().zip(&kinds) {
        let foreign =
            *kind == LayerKind::PassThrough && layer.urls.as_ref().is_some_and(|u| !u.is_empty());
        if !foreign && !todo.iter().any(|d| d.digest == layer.digest) {
            todo.push(layer.clone());
        }
    }
    let fetched = download_all(&client, repository, &todo, &dest, opts.jobs, progress)?;

    let name = dest.name().to_string();
    let entry = selected.entry.clone();
    let downloaded = fetched
        .iter()
        .filter(|(_, f)| *f == Fetched::Downloaded)
        .count();
    dest.put_verified(&config_desc, &config)?;
    dest.put_verified(&entry, &selected.bytes)?;
    dest.commit(&entry)?;

    // 6: unpacking (see `after_pull`).
    if opts.unpack == Unpack::Snapshots {
        after_pull(root, &name, &entry, &selected.manifest)?;
    }

    Ok(PullSummary {
        name,
        resolved_digest: resolved.to_string(),
        manifest_digest: entry.digest.to_string(),
        platform: platform.to_string(),
        layers: selected.manifest.layers.len(),
        encrypted_layers: encrypted,
        unchecked_ciphertext,
        downloaded,
        already_stored: todo.len() - downloaded,
    })
}

/// Fetch `layers` with at most `jobs` at a time; the first failure cancels the others.
fn download_all(
    client: &Client,
    repository: &str,
    layers: &[Descriptor],
    store: &StoreDestination,
    jobs: usize,
    progress: &dyn Progress,
) -> Result<Vec<(Descriptor, Fetched)>> {
    parallel::for_each(
        layers,
        jobs,
        |desc, cancel| {
            fetch::fetch_layer(client, repository, desc, store, progress, cancel)
                .map(|f| (desc.clone(), f))
        },
        |desc, e| progress.blob_failed(&desc.digest, &e.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_drop_the_digest_unless_it_is_all_there_is() {
        let r = |s: &str| s.parse::<Reference>().unwrap();
        assert_eq!(
            crate::image::store::store_name(&r("127.0.0.1:5000/app:1")),
            "127.0.0.1:5000/app:1"
        );
        assert_eq!(
            crate::image::store::store_name(&r("busybox")),
            "docker.io/library/busybox:latest"
        );
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            crate::image::store::store_name(&r(&format!("127.0.0.1:5000/app@{d}"))),
            format!("127.0.0.1:5000/app@{d}")
        );
        assert_eq!(
            crate::image::store::store_name(&r(&format!("127.0.0.1:5000/app:1@{d}"))),
            "127.0.0.1:5000/app:1"
        );
    }
}
