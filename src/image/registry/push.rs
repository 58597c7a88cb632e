//! `push`: send an image from a layout (the store is one) to a registry: blobs first (skipped
//! when present, mounted across repositories of the same registry, else streamed from disk in
//! parallel), then manifests bottom-up, the top one under the tag last. With recipients, the
//! selected layers are encrypted on the way out by `image::crypt` into a temporary layout
//! (which is what is pushed); the source is never changed.

use std::path::PathBuf;

use crate::crypto::EncryptConfig;

use super::client::{Client, ClientOptions, RetryNotifier};
use super::parallel;
use super::progress::{BlobOutcome, Progress};
use super::upload;
use crate::image::crypt::{self, LayerFilter};
use crate::image::error::{ImageError, Result};
use crate::image::layout::Layout;
use crate::image::manifest::Descriptor;
use crate::image::media_type::{self, LayerKind};
use crate::image::name::{Reference, DEFAULT_TAG};
use crate::image::reference::ImageRef;
use crate::image::transport::Source;
use crate::image::tree::{self, TreeNode};

/// How to push.
#[derive(Debug, Clone)]
pub struct PushOptions<'a> {
    /// How to talk to the registry.
    pub client: ClientOptions,
    /// Encrypt on the way out: recipients (and keys for already encrypted layers) and which
    /// layers (`--layer`; platforms as the filter says).
    pub encrypt: Option<(&'a EncryptConfig, &'a LayerFilter)>,
    /// The registry name the source image came from (a store image's name): its blobs may be
    /// mounted when pushing to another repository of the same registry.
    pub mount_hint: Option<Reference>,
    /// Where encrypted layers are written before upload (default: the system temp directory).
    pub temp_dir: Option<PathBuf>,
    /// Parallel blob uploads.
    pub jobs: usize,
    /// Told about retries.
    pub notifier: Option<RetryNotifier>,
}

impl Default for PushOptions<'_> {
    fn default() -> Self {
        Self {
            client: ClientOptions::default(),
            encrypt: None,
            mount_hint: None,
            temp_dir: None,
            jobs: super::pull::DEFAULT_JOBS,
            notifier: None,
        }
    }
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PushSummary {
    /// Where the image went (`127.0.0.1:5000/app:1`).
    pub destination: String,
    /// Digest of the top manifest or index pushed.
    pub digest: String,
    /// Blobs uploaded.
    pub uploaded: usize,
    /// Blobs the registry already had.
    pub skipped: usize,
    /// Blobs mounted from another repository.
    pub mounted: usize,
    /// Layers encrypted on the way out.
    pub encrypted_layers: usize,
}

/// The blobs a tree refers to (configs and layers; foreign layers missing from the layout
/// are left out), each once.
fn blobs(layout: &Layout, tree: &TreeNode) -> Result<Vec<Descriptor>> {
    let mut out: Vec<Descriptor> = Vec::new();
    for m in tree.manifests() {
        let mut push = |d: &Descriptor| {
            if !out.iter().any(|o| o.digest == d.digest) {
                out.push(d.clone());
            }
        };
        push(&m.manifest.config);
        for layer in &m.manifest.layers {
            let foreign = layer.urls.as_ref().is_some_and(|u| !u.is_empty())
                && !layout.has_blob(&layer.digest)
                && media_type::layer_kind(&layer.media_type)? == LayerKind::PassThrough;
            if !foreign {
                push(layer);
            }
        }
    }
    Ok(out)
}

/// PUT the manifests of the tree, children by digest first, the top one under `top_ref`.
fn put_manifests(
    client: &Client,
    repository: &str,
    node: &TreeNode,
    top_ref: Option<&str>,
) -> Result<()> {
    match node {
        TreeNode::Manifest(m) => {
            let reference = top_ref.map_or_else(|| m.desc.digest.to_string(), str::to_string);
            client.put_manifest(repository, &reference, &m.desc.media_type, &m.raw)?;
        }
        TreeNode::Index(ix) => {
            for child in &ix.children {
                // A child the registry has (an earlier push) is not sent again.
                if client
                    .head_manifest(repository, child.desc().digest.as_str())?
                    .is_none()
                {
                    put_manifests(client, repository, child, None)?;
                }
            }
            let reference = top_ref.map_or_else(|| ix.desc.digest.to_string(), str::to_string);
            client.put_manifest(repository, &reference, &ix.desc.media_type, &ix.raw)?;
        }
    }
    Ok(())
}

/// Push the image `src` (an `oci:` or `oci-archive:` reference; a store image is
/// `oci:<root>:<name>`) to `dest`.
pub fn push(
    src: &ImageRef,
    dest: &Reference,
    opts: &PushOptions<'_>,
    progress: &dyn Progress,
) -> Result<PushSummary> {
    // Encryption first, into a temporary layout: the key checks of `crypt` run before any
    // upload, and nothing is sent unless every selected layer was encrypted.
    let mut _encrypted_dir = None;
    let mut encrypted_layers = 0;
    let source_ref = match opts.encrypt {
        Some((ec, filter)) => {
            let base = opts.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
            std::fs::create_dir_all(&base).map_err(|e| ImageError::io_at(&base, e))?;
            let dir = tempfile::Builder::new()
                .prefix("rrun-push-")
                .tempdir_in(&base)
                .map_err(|e| ImageError::io_at(&base, e))?;
            let out = ImageRef::Oci {
                path: dir.path().join("layout"),
                tag: Some("push".into()),
            };
            progress.note(&format!("encrypting the selected layers of {src}"));
            let summary = crypt::encrypt_image(src, &out, ec, filter)?;
            encrypted_layers = summary.layers_changed;
            _encrypted_dir = Some(dir);
            out
        }
        None => src.clone(),
    };
    let source = Source::open(&source_ref)?;
    let tree = tree::load(source.layout(), &source.resolve()?)?;
    let layout = source.layout().clone();
    let todo = blobs(&layout, &tree)?;

    let repository = dest.repository();
    let mut client = Client::new(dest, opts.client.clone())?;
    if let Some(n) = &opts.notifier {
        client.set_retry_notifier(n.clone());
    }
    let mount_from = opts
        .mount_hint
        .as_ref()
        .filter(|h| h.domain() == dest.domain() && h.repository() != repository)
        .map(|h| h.repository().to_string());

    let outcomes = parallel::for_each(
        &todo,
        opts.jobs,
        |desc, cancel| {
            upload::push_blob(
                &client,
                repository,
                &layout,
                desc,
                mount_from.as_deref(),
                progress,
                cancel,
            )
        },
        |desc, e| progress.blob_failed(&desc.digest, &e.to_string()),
    )?;
    let count = |o: BlobOutcome| outcomes.iter().filter(|x| **x == o).count();

    // Manifests last, the tag (or the pinned digest) on the top one.
    let top_digest = tree.desc().digest.clone();
    if let Some(pinned) = dest.digest() {
        if *pinned != top_digest {
            return Err(ImageError::DigestMismatch {
                what: format!("image pushed to {dest}"),
                expected: pinned.to_string(),
                actual: top_digest.to_string(),
            });
        }
    }
    let top_ref = match (dest.tag(), dest.digest()) {
        (Some(t), _) => t.to_string(),
        (None, Some(d)) => d.to_string(),
        (None, None) => DEFAULT_TAG.to_string(),
    };
    put_manifests(&client, repository, &tree, Some(&top_ref))?;
    Ok(PushSummary {
        destination: if dest.tag().is_some() || dest.digest().is_none() {
            format!("{}:{top_ref}", dest.name())
        } else {
            format!("{}@{top_ref}", dest.name())
        },
        digest: top_digest.to_string(),
        uploaded: count(BlobOutcome::Transferred),
        skipped: count(BlobOutcome::AlreadyThere),
        mounted: count(BlobOutcome::Mounted),
        encrypted_layers,
    })
}
