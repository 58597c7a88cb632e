//! Image-level encrypt, decrypt and layerinfo (ctr-enc semantics): select platforms and layers,
//! check every key before writing (the key gate), stream each selected layer through `crypto`
//! into a staged blob, rewrite manifests and indexes, and commit only when all of it worked.

use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};

use crate::crypto::blockcipher::StreamDigests;
use crate::crypto::config::LayerInfoConfig;
use crate::crypto::layer::{self as crypto_layer, EncryptedLayer};
use crate::crypto::options::PrivateOptions;
use crate::crypto::{CryptoError, DecryptConfig, EncryptConfig};

use super::digest::Digest;
use super::error::{ImageError, Result};
use super::layout::Layout;
use super::manifest::{Annotations, Descriptor};
use super::media_type::{self, LayerKind};
use super::platform::Platform;
use super::reference::ImageRef;
use super::rewrite;
use super::stage::Stage;
use super::transport::{Destination, Source};
use super::tree::{self, TreeNode};

/// Which layers to work on. Empty lists mean all. Layer 0 is the bottom layer, -1 the top one,
/// counted per platform (ctr-enc's `--layer`); platforms match as containerd's do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerFilter {
    /// `--layer` indices.
    pub layers: Vec<i64>,
    /// `--platform` values.
    pub platforms: Vec<Platform>,
}

impl LayerFilter {
    /// True when a manifest of platform `p` is selected.
    pub fn matches_platform(&self, p: &Platform) -> bool {
        self.platforms.is_empty() || self.platforms.iter().any(|want| want.matches(p))
    }

    /// The selected layer positions of a manifest with `count` layers; an index outside
    /// `-count..count` is an error naming the platform.
    pub fn layer_indices(&self, count: usize, platform: &str) -> Result<BTreeSet<usize>> {
        if self.layers.is_empty() {
            return Ok((0..count).collect());
        }
        let n = i64::try_from(count).unwrap_or(i64::MAX);
        self.layers
            .iter()
            .map(|&i| {
                let pos = if i < 0 { n + i } else { i };
                if (0..n).contains(&pos) {
                    Ok(pos as usize)
                } else {
                    Err(ImageError::LayerOutOfRange {
                        index: i,
                        platform: platform.to_string(),
                        count,
                        valid: if count == 0 {
                            "none".into()
                        } else {
                            format!("0..{} or -{n}..-1", n - 1)
                        },
                    })
                }
            })
            .collect()
    }
}

/// What an encrypt or decrypt did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CryptSummary {
    /// Digest of the manifest (or index) recorded in the destination.
    pub manifest_digest: String,
    /// Layer descriptors that changed (0: the output equals the input).
    pub layers_changed: usize,
    /// Layers of the selected platforms.
    pub layers_total: usize,
}

/// One row of `layerinfo`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LayerInfo {
    /// Position in its manifest, 0 = bottom.
    pub index: usize,
    /// Layer digest.
    pub digest: String,
    /// Platform of its manifest, `linux/amd64`.
    pub platform: String,
    /// Blob size.
    pub size: u64,
    /// Media type.
    pub media_type: String,
    /// Key-wrapping schemes (`jwe`, ...); empty for a plain layer.
    pub encryption: Vec<String>,
    /// Recipients as the wrappers describe them (`[jwe]`, ...).
    pub recipients: Vec<String>,
}

/// The layer crypto that encryption needs (the real one is `crypto`'s, with an
/// [`EncryptConfig`]; tests use a stand-in so the image logic is tested on its own).
pub(crate) trait LayerEncrypter {
    /// True when there is at least one recipient.
    fn has_recipients(&self) -> bool;
    /// Encrypt a fresh layer (`crypto::layer::encrypt_layer`).
    fn encrypt(
        &self,
        plain_digest: &Digest,
        input: &mut (dyn Read + Send),
        output: &mut dyn Write,
    ) -> crate::crypto::Result<EncryptedLayer>;
    /// Add recipients to an encrypted layer (`crypto::layer::add_recipients`).
    fn add_recipients(
        &self,
        layer: &str,
        annotations: &Annotations,
    ) -> crate::crypto::Result<Annotations>;
}

/// The layer crypto that decryption needs.
pub(crate) trait LayerDecrypter {
    /// The key gate (`crypto::layer::unwrap_layer`).
    fn unwrap(
        &self,
        layer: &str,
        annotations: &Annotations,
    ) -> crate::crypto::Result<PrivateOptions>;
    /// Decrypt with the HMAC checked (`crypto::layer::decrypt_layer`).
    fn decrypt(
        &self,
        opts: &PrivateOptions,
        annotations: &Annotations,
        input: &mut (dyn Read + Send),
        output: &mut dyn Write,
    ) -> crate::crypto::Result<StreamDigests>;
}

impl LayerEncrypter for EncryptConfig {
    fn has_recipients(&self) -> bool {
        !self.is_empty()
    }
    fn encrypt(
        &self,
        plain_digest: &Digest,
        input: &mut (dyn Read + Send),
        output: &mut dyn Write,
    ) -> crate::crypto::Result<EncryptedLayer> {
        crypto_layer::encrypt_layer(self, plain_digest.as_str(), input, output)
    }
    fn add_recipients(
        &self,
        layer: &str,
        annotations: &Annotations,
    ) -> crate::crypto::Result<Annotations> {
        crypto_layer::add_recipients(self, layer, annotations)
    }
}

impl LayerDecrypter for DecryptConfig {
    fn unwrap(
        &self,
        layer: &str,
        annotations: &Annotations,
    ) -> crate::crypto::Result<PrivateOptions> {
        crypto_layer::unwrap_layer(self, layer, annotations)
    }
    fn decrypt(
        &self,
        opts: &PrivateOptions,
        annotations: &Annotations,
        input: &mut (dyn Read + Send),
        output: &mut dyn Write,
    ) -> crate::crypto::Result<StreamDigests> {
        crypto_layer::decrypt_layer(opts, annotations, input, output)
    }
}

/// Encrypt the selected layers of `src` for the recipients of `ec` and write the image to
/// `dst`. Already encrypted layers get the new recipients without re-encryption (this needs a
/// key in `ec.decrypt_config()` that opens them).
pub fn encrypt_image(
    src: &ImageRef,
    dst: &ImageRef,
    ec: &EncryptConfig,
    filter: &LayerFilter,
) -> Result<CryptSummary> {
    encrypt_with(src, dst, ec, filter)
}

/// Decrypt the selected layers of `src` with the keys of `dc` and write the image to `dst`.
/// Every selected layer's key is unwrapped before any blob is written.
pub fn decrypt_image(
    src: &ImageRef,
    dst: &ImageRef,
    dc: &DecryptConfig,
    filter: &LayerFilter,
) -> Result<CryptSummary> {
    decrypt_with(src, dst, dc, filter)
}

/// The `layerinfo` table: one row per layer of each selected platform.
pub fn layer_info(src: &ImageRef, filter: &LayerFilter) -> Result<Vec<LayerInfo>> {
    layer_info_with(src, filter, &LayerInfoConfig::default())
}

/// The encryption schemes of a layer and its recipients as `layerinfo` names them (both empty
/// for a plain layer).
pub fn encryption_of(
    media_type_of_layer: &str,
    annotations: &crate::crypto::layer::Annotations,
    cfg: &LayerInfoConfig,
) -> Result<(Vec<String>, Vec<String>)> {
    if !matches!(
        media_type::layer_kind(media_type_of_layer)?,
        LayerKind::Encrypted { .. }
    ) {
        return Ok((Vec::new(), Vec::new()));
    }
    let recipients = cfg
        .recipients(annotations)
        .into_iter()
        .flat_map(|(_, who)| who)
        .collect();
    Ok((crypto_layer::schemes(annotations), recipients))
}

/// [`layer_info`] naming pgp recipients from the keyring `cfg` points to.
pub fn layer_info_with(
    src: &ImageRef,
    filter: &LayerFilter,
    cfg: &LayerInfoConfig,
) -> Result<Vec<LayerInfo>> {
    let source = Source::open(src)?;
    let tree = tree::load(source.layout(), &source.resolve()?)?;
    let selection = select(&tree, filter, source.image())?;
    let mut rows = Vec::new();
    for m in tree.manifests() {
        let Some(layers) = &selection[m.id] else {
            continue;
        };
        for &i in layers {
            let layer = &m.manifest.layers[i];
            let (encryption, recipients) =
                encryption_of(&layer.media_type, &layer.annotations(), cfg)?;
            rows.push(LayerInfo {
                index: i,
                digest: layer.digest.to_string(),
                platform: m.platform.to_string(),
                size: layer.size,
                media_type: layer.media_type.clone(),
                encryption,
                recipients,
            });
        }
    }
    Ok(rows)
}

/// Per manifest id: `None` when its platform is not selected, else the selected layers.
type Selection = Vec<Option<BTreeSet<usize>>>;

/// Apply the filter to the tree's manifests.
fn select(tree: &TreeNode, filter: &LayerFilter, image: &str) -> Result<Selection> {
    let manifests = tree.manifests();
    let mut out: Selection = vec![None; manifests.len()];
    for m in &manifests {
        if !filter.matches_platform(&m.platform) {
            continue;
        }
        // Manifests with nothing to encrypt (attestations: in-toto layers only) take no part
        // in the layer index check.
        let eligible = m.manifest.layers.iter().any(|l| {
            !matches!(
                media_type::layer_kind(&l.media_type),
                Ok(LayerKind::PassThrough)
            )
        });
        out[m.id] = Some(if eligible || filter.layers.is_empty() {
            filter.layer_indices(m.manifest.layers.len(), &m.platform.to_string())?
        } else {
            BTreeSet::new()
        });
    }
    if out.iter().all(Option::is_none) {
        let list = |ps: Vec<String>| ps.join(", ");
        return Err(ImageError::NoMatchingPlatform {
            image: image.to_string(),
            wanted: list(filter.platforms.iter().map(|p| p.to_string()).collect()),
            available: list(manifests.iter().map(|m| m.platform.to_string()).collect()),
        });
    }
    Ok(out)
}

/// Identifies a layer descriptor's blob and annotations (the same layer listed twice is
/// processed once).
fn layer_key(d: &Descriptor) -> String {
    format!(
        "{} {}",
        d.digest,
        serde_json::to_string(&d.annotations).unwrap_or_default()
    )
}

/// The selected layers of the selected manifests, with their kinds.
fn selected_layers<'a>(
    tree: &'a TreeNode,
    selection: &Selection,
) -> Result<Vec<(&'a Descriptor, LayerKind)>> {
    let mut out = Vec::new();
    for m in tree.manifests() {
        for &i in selection[m.id].iter().flatten() {
            let layer = &m.manifest.layers[i];
            out.push((layer, media_type::layer_kind(&layer.media_type)?));
        }
    }
    Ok(out)
}

/// Counters for the summary.
#[derive(Debug, Default)]
struct Counts {
    changed: usize,
    total: usize,
}

/// What to do with one selected layer: `Some(new descriptor)` or `None` to keep it.
/// It also gets the layer's diff_id from the image config, when the config names one.
type LayerFn<'a> =
    dyn FnMut(&mut Stage, &Layout, &Descriptor, Option<&Digest>) -> Result<Option<Descriptor>> + 'a;

/// The `rootfs.diff_ids` of an image config, by layer position (`None` where missing or not
/// a valid digest, and for configs that are not image configs).
pub(crate) fn config_diff_ids(src: &Layout, config: &Descriptor) -> Result<Vec<Option<Digest>>> {
    #[derive(serde::Deserialize)]
    struct RootFs {
        #[serde(default)]
        diff_ids: Vec<String>,
    }
    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(default)]
        rootfs: Option<RootFs>,
    }
    if config.media_type != media_type::OCI_CONFIG && config.media_type != media_type::DOCKER_CONFIG
    {
        return Ok(Vec::new());
    }
    let what = format!("config {}", config.digest);
    let raw = src.read_blob(config, super::layout::MAX_CONFIG_SIZE, &what)?;
    let parsed: Config =
        serde_json::from_slice(&raw).map_err(|e| ImageError::malformed(&what, e.to_string()))?;
    Ok(parsed
        .rootfs
        .map(|r| r.diff_ids)
        .unwrap_or_default()
        .iter()
        .map(|d| Digest::parse(d).ok())
        .collect())
}

/// sha256 of a layer blob as stored and of its uncompressed tar (its diff_id), decompressing
/// by media type, in one read.
fn blob_digests(file: std::fs::File, media_type: &str) -> std::io::Result<(Digest, Digest)> {
    struct Hashing<R> {
        inner: R,
        hasher: Sha256,
    }
    impl<R: Read> Read for Hashing<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.hasher.update(&buf[..n]);
            Ok(n)
        }
    }
    let mut raw = Hashing {
        inner: std::io::BufReader::with_capacity(256 << 10, file),
        hasher: Sha256::new(),
    };
    let mut hasher = super::digest::HashingWriter::new(std::io::sink());
    {
        let mut reader: Box<dyn Read + '_> = if media_type.ends_with("gzip") {
            Box::new(flate2::read::MultiGzDecoder::new(&mut raw))
        } else if media_type.ends_with("zstd") {
            Box::new(zstd::stream::read::Decoder::new(&mut raw)?)
        } else {
            Box::new(&mut raw)
        };
        std::io::copy(&mut reader, &mut hasher)?;
    }
    // Whatever the decompressor left unread still belongs to the blob.
    std::io::copy(&mut raw, &mut std::io::sink())?;
    Ok((
        Digest::from_sha256(raw.hasher.finalize().into()),
        hasher.finish().0,
    ))
}

/// Write the tree through `per_layer` into the destination's stage and commit it: the
/// destination changes only if every layer went through.
fn write_and_commit(
    tree: &TreeNode,
    selection: &Selection,
    src: &Layout,
    mut dest: Destination,
    per_layer: &mut LayerFn<'_>,
) -> Result<CryptSummary> {
    let mut counts = Counts::default();
    let top = write_tree(tree, selection, src, dest.stage(), per_layer, &mut counts)?;
    let summary = CryptSummary {
        manifest_digest: top.digest.to_string(),
        layers_changed: counts.changed,
        layers_total: counts.total,
    };
    dest.commit(top)?;
    Ok(summary)
}

/// Write the tree below `node` into `stage`: selected layers through `f`, everything else
/// copied (verified) from `src`. Returns the node's descriptor in the destination.
fn write_tree(
    node: &TreeNode,
    selection: &Selection,
    src: &Layout,
    stage: &mut Stage,
    f: &mut LayerFn<'_>,
    counts: &mut Counts,
) -> Result<Descriptor> {
    match node {
        TreeNode::Manifest(m) => {
            let selected = selection[m.id].as_ref();
            let config = &m.manifest.config;
            stage.copy_blob(src, config, &format!("config {}", config.digest))?;
            let diff_ids = match selected {
                Some(sel) if !sel.is_empty() => config_diff_ids(src, config)?,
                _ => Vec::new(),
            };
            let mut replaced = BTreeMap::new();
            for (i, layer) in m.manifest.layers.iter().enumerate() {
                let what = format!("layer {}", layer.digest);
                if let Some(sel) = selected {
                    counts.total += 1;
                    if sel.contains(&i) {
                        let diff_id = diff_ids.get(i).and_then(Option::as_ref);
                        if let Some(new) = f(stage, src, layer, diff_id)? {
                            if new.digest == layer.digest {
                                stage.copy_blob(src, layer, &what)?;
                            }
                            replaced.insert(i, new);
                            counts.changed += 1;
                            continue;
                        }
                    }
                }
                // A foreign layer is fetched from its URLs and need not be in the layout.
                let foreign = layer.urls.as_ref().is_some_and(|u| !u.is_empty())
                    && !src.has_blob(&layer.digest)
                    && media_type::layer_kind(&layer.media_type)? == LayerKind::PassThrough;
                if !foreign {
                    stage.copy_blob(src, layer, &what)?;
                }
            }
            if replaced.is_empty() {
                stage.put_bytes(&m.raw)?;
                return Ok(m.desc.clone());
            }
            let new = rewrite::rewrite_manifest(&m.manifest, &replaced);
            let bytes = serde_json::to_vec(&new)
                .map_err(|e| ImageError::malformed("rewritten manifest", e.to_string()))?;
            let (digest, size) = stage.put_bytes(&bytes)?;
            Ok(rewrite::node_descriptor(
                &m.desc,
                media_type::OCI_MANIFEST,
                digest,
                size,
            ))
        }
        TreeNode::Index(ix) => {
            let children = ix
                .children
                .iter()
                .map(|c| write_tree(c, selection, src, stage, f, counts))
                .collect::<Result<Vec<_>>>()?;
            if children == ix.index.manifests {
                stage.put_bytes(&ix.raw)?;
                return Ok(ix.desc.clone());
            }
            let new = rewrite::rewrite_index(&ix.index, children);
            let bytes = serde_json::to_vec(&new)
                .map_err(|e| ImageError::malformed("rewritten index", e.to_string()))?;
            let (digest, size) = stage.put_bytes(&bytes)?;
            Ok(rewrite::node_descriptor(
                &ix.desc,
                media_type::OCI_INDEX,
                digest,
                size,
            ))
        }
    }
}

/// Run a streaming layer operation from a source blob into a new staged blob. The layer
/// cipher hashes its input and output itself, so neither side is hashed again here:
/// `input_digest` gives what the operation computed over its input, which must be the source
/// descriptor's digest and size. When the operation fails, a damaged source blob is reported
/// rather than whatever the operation saw.
fn stream_layer<T>(
    stage: &Stage,
    src: &Layout,
    layer: &Descriptor,
    input_digest: impl Fn(&T) -> (&[u8; 32], u64),
    op: impl FnOnce(&mut (dyn Read + Send), &mut dyn Write) -> crate::crypto::Result<T>,
) -> Result<(T, super::stage::BlobWriter)> {
    let what = format!("layer {}", layer.digest);
    let mut reader = src.open_blob_unhashed(layer, &what)?;
    let mut writer = stage.blob_writer_unhashed()?;
    let value = match op(&mut reader, &mut writer) {
        Ok(v) => v,
        Err(e) => {
            src.verify_blob(layer, &what)?;
            return Err(e.into());
        }
    };
    let (sha, len) = input_digest(&value);
    let actual = Digest::from_sha256(*sha);
    if actual != layer.digest {
        return Err(ImageError::DigestMismatch {
            what,
            expected: layer.digest.to_string(),
            actual: actual.to_string(),
        });
    }
    if len != layer.size {
        return Err(ImageError::SizeMismatch {
            what,
            expected: layer.size,
            actual: len,
        });
    }
    writer.flush()?;
    Ok((value, writer))
}

pub(crate) fn encrypt_with(
    src: &ImageRef,
    dst: &ImageRef,
    enc: &dyn LayerEncrypter,
    filter: &LayerFilter,
) -> Result<CryptSummary> {
    if !enc.has_recipients() {
        return Err(ImageError::NoRecipients);
    }
    let source = Source::open(src)?;
    let root = source.resolve()?;
    let tree = tree::load(source.layout(), &root)?;
    let selection = select(&tree, filter, source.image())?;

    // Before any write: open every selected, already encrypted layer and wrap its key for
    // the new recipients (ocicrypt's EncryptLayer on a layer with keys: no re-encryption).
    let mut rewrapped: HashMap<String, Annotations> = HashMap::new();
    for (layer, kind) in selected_layers(&tree, &selection)? {
        let key = layer_key(layer);
        if !matches!(kind, LayerKind::Encrypted { .. }) || rewrapped.contains_key(&key) {
            continue;
        }
        let name = layer.digest.to_string();
        let annotations = enc
            .add_recipients(&name, &layer.annotations())
            .map_err(|source| ImageError::AlreadyEncrypted {
                layer: name.clone(),
                source,
            })?;
        rewrapped.insert(key, annotations);
    }

    let dest = Destination::open(dst)?;
    // Source digest -> (ciphertext digest, size, ocicrypt annotations).
    let mut done: HashMap<Digest, (Digest, u64, Annotations)> = HashMap::new();
    let mut per_layer = |stage: &mut Stage,
                         src: &Layout,
                         layer: &Descriptor,
                         _diff_id: Option<&Digest>|
     -> Result<Option<Descriptor>> {
        match media_type::layer_kind(&layer.media_type)? {
            LayerKind::PassThrough => Ok(None),
            LayerKind::Encrypted { .. } => Ok(rewrapped
                .get(&layer_key(layer))
                .map(|a| rewrite::recipients_added(layer, a))),
            LayerKind::Plain { encrypted } => {
                if let Some((digest, size, ann)) = done.get(&layer.digest) {
                    return Ok(Some(rewrite::encrypted_layer(
                        layer,
                        encrypted,
                        digest.clone(),
                        *size,
                        ann,
                    )));
                }
                check_compression(src, layer)?;
                let (out, writer) = stream_layer(
                    stage,
                    src,
                    layer,
                    |o: &EncryptedLayer| (&o.digests.plain_sha256, o.digests.len),
                    |r, w| enc.encrypt(&layer.digest, r, w),
                )?;
                let sealed = stage.seal_reported(
                    writer,
                    Digest::from_sha256(out.digests.cipher_sha256),
                    out.digests.len,
                )?;
                let (digest, size) = stage.persist(sealed)?;
                done.insert(
                    layer.digest.clone(),
                    (digest.clone(), size, out.annotations.clone()),
                );
                Ok(Some(rewrite::encrypted_layer(
                    layer,
                    encrypted,
                    digest,
                    size,
                    &out.annotations,
                )))
            }
        }
    };
    write_and_commit(&tree, &selection, source.layout(), dest, &mut per_layer)
}

/// A layer labelled gzip or zstd must start with that format's magic bytes. This catches
/// layers that are already encrypted under a plain media type (what `skopeo copy --format v2s2
/// --encryption-key` writes) before they are encrypted a second time.
fn check_compression(src: &Layout, layer: &Descriptor) -> Result<()> {
    let (name, magic): (&str, &[u8]) = if layer.media_type.ends_with("gzip") {
        ("gzip", &[0x1f, 0x8b])
    } else if layer.media_type.ends_with("zstd") {
        ("zstd", &[0x28, 0xb5, 0x2f, 0xfd])
    } else {
        return Ok(());
    };
    let mut head = vec![0u8; magic.len()];
    let read =
        std::fs::File::open(src.blob_path(&layer.digest)).and_then(|mut f| f.read_exact(&mut head));
    // A missing or short blob is reported by the verified read that follows.
    if read.is_ok() && head != magic {
        return Err(ImageError::InconsistentLayer {
            layer: layer.digest.to_string(),
            reason: format!(
                "its media type {} says {name} but the blob is not {name} data; it may be ciphertext under a plain media type (as skopeo --format v2s2 --encryption-key writes), which no tool can decrypt",
                layer.media_type
            ),
        });
    }
    Ok(())
}

pub(crate) fn decrypt_with(
    src: &ImageRef,
    dst: &ImageRef,
    dec: &dyn LayerDecrypter,
    filter: &LayerFilter,
) -> Result<CryptSummary> {
    let source = Source::open(src)?;
    let root = source.resolve()?;
    let tree = tree::load(source.layout(), &root)?;
    let selection = select(&tree, filter, source.image())?;

    // The key gate: every selected encrypted layer's key is unwrapped (and its public options
    // parsed) before a single blob is written.
    let mut keys: HashMap<String, (PrivateOptions, Digest)> = HashMap::new();
    for (layer, kind) in selected_layers(&tree, &selection)? {
        let key = layer_key(layer);
        if !matches!(kind, LayerKind::Encrypted { .. }) || keys.contains_key(&key) {
            continue;
        }
        let annotations = layer.annotations();
        let name = layer.digest.to_string();
        crypto_layer::public_options(&annotations)?;
        let opts = dec.unwrap(&name, &annotations)?;
        let plain = Digest::parse(&opts.digest).map_err(|e| {
            ImageError::Crypto(CryptoError::MalformedAnnotation {
                annotation: "private options digest".into(),
                reason: format!("layer {name}: {e}"),
            })
        })?;
        keys.insert(key, (opts, plain));
    }

    let dest = Destination::open(dst)?;
    // Ciphertext digest -> (plaintext digest, size).
    let mut done: HashMap<Digest, (Digest, u64)> = HashMap::new();
    let mut per_layer = |stage: &mut Stage,
                         src: &Layout,
                         layer: &Descriptor,
                         diff_id: Option<&Digest>|
     -> Result<Option<Descriptor>> {
        let LayerKind::Encrypted { plain } = media_type::layer_kind(&layer.media_type)? else {
            return Ok(None);
        };
        if let Some((digest, size)) = done.get(&layer.digest) {
            return Ok(Some(rewrite::decrypted_layer(
                layer,
                plain,
                digest.clone(),
                *size,
            )));
        }
        let Some((opts, expected)) = keys.get(&layer_key(layer)) else {
            return Err(ImageError::malformed(
                format!("layer {}", layer.digest),
                "no unwrapped key (internal error)",
            ));
        };
        let annotations = layer.annotations();
        let (digests, writer) = stream_layer(
            stage,
            src,
            layer,
            |d: &StreamDigests| (&d.cipher_sha256, d.len),
            |r, w| dec.decrypt(opts, &annotations, r, w),
        )?;
        let what = format!("decrypted layer {}", layer.digest);
        let sealed = stage.seal_reported(
            writer,
            Digest::from_sha256(digests.plain_sha256),
            digests.len,
        )?;
        if sealed.digest != *expected {
            // containers/image records the digest of the blob it read, before it
            // recompressed the layer for the destination, so a layer skopeo compressed
            // while encrypting decrypts to other bytes than the recorded digest. Such a
            // layer is accepted only if its uncompressed content is exactly the config's
            // diff_id (the check image-rs relies on); anything else is refused.
            // This rare path reads the blob back anyway, so it also checks the digest the
            // cipher reported for the bytes it wrote.
            let matches_diff_id = match diff_id {
                Some(want) => blob_digests(sealed.reopen()?, plain)
                    .map(|(raw, got)| raw == sealed.digest && got == *want)
                    .unwrap_or(false),
                None => false,
            };
            if !matches_diff_id {
                return Err(ImageError::DigestMismatch {
                    what,
                    expected: expected.to_string(),
                    actual: sealed.digest.to_string(),
                });
            }
        }
        let (digest, size) = stage.persist(sealed)?;
        done.insert(layer.digest.clone(), (digest.clone(), size));
        Ok(Some(rewrite::decrypted_layer(layer, plain, digest, size)))
    };
    write_and_commit(&tree, &selection, source.layout(), dest, &mut per_layer)
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::path::{Path, PathBuf};

    use sha2::{Digest as _, Sha256};

    use super::*;
    use crate::crypto::options::{decode_b64, encode_b64, PublicOptions};
    use crate::crypto::{ANN_PREFIX, ANN_PUBOPTS};
    use crate::image::layout::Layout;
    use crate::image::manifest::{Manifest, Node};
    use crate::image::media_type::*;
    use crate::image::testutil::{self, layer, snapshot, write_image, write_index};

    const FAKE_KEYS: &str = "org.opencontainers.image.enc.keys.fake";

    /// A stand-in for the ocicrypt layer crypto with the same contract: a keystream XOR, an
    /// "HMAC" over the ciphertext, the private options stored in a `keys.fake` annotation.
    #[derive(Default)]
    struct Fake {
        no_key: bool,
        hmac_fails: bool,
        wrong_plain_digest: bool,
        /// Record another digest in the private options, as containers/image does for a layer
        /// it recompresses while encrypting.
        record_other_digest: bool,
    }

    fn xor_stream(
        opts: &PrivateOptions,
        input: &mut dyn Read,
        output: &mut dyn Write,
        encrypting: bool,
    ) -> io::Result<StreamDigests> {
        let (mut plain, mut cipher, mut mac) = (Sha256::new(), Sha256::new(), Sha256::new());
        mac.update(opts.symkey.as_bytes());
        let mut buf = [0u8; 1000];
        let mut pos = 0usize;
        loop {
            let n = input.read(&mut buf)?;
            if n == 0 {
                break;
            }
            let chunk = &mut buf[..n];
            if encrypting {
                plain.update(&*chunk)
            } else {
                cipher.update(&*chunk);
                mac.update(&*chunk)
            }
            for (i, b) in chunk.iter_mut().enumerate() {
                *b ^= opts.symkey.as_bytes()[(pos + i) % 32] ^ opts.nonce[(pos + i) % 16];
            }
            if encrypting {
                cipher.update(&*chunk);
                mac.update(&*chunk)
            } else {
                plain.update(&*chunk)
            }
            output.write_all(chunk)?;
            pos += n;
        }
        Ok(StreamDigests {
            hmac: mac.finalize().into(),
            plain_sha256: plain.finalize().into(),
            cipher_sha256: cipher.finalize().into(),
            len: pos as u64,
        })
    }

    impl LayerEncrypter for Fake {
        fn has_recipients(&self) -> bool {
            true
        }
        fn encrypt(
            &self,
            plain_digest: &Digest,
            input: &mut (dyn Read + Send),
            output: &mut dyn Write,
        ) -> crate::crypto::Result<EncryptedLayer> {
            let mut opts = PrivateOptions::generate(plain_digest.as_str())?;
            if self.record_other_digest {
                opts.digest = Digest::of_bytes(b"the layer before recompression").to_string();
            }
            let digests = xor_stream(&opts, input, output, true)?;
            let mut annotations = Annotations::new();
            annotations.insert(FAKE_KEYS.into(), encode_b64(&opts.to_json()));
            annotations.insert(
                ANN_PUBOPTS.into(),
                PublicOptions::new(digests.hmac).to_annotation(),
            );
            Ok(EncryptedLayer {
                annotations,
                digests,
            })
        }
        fn add_recipients(
            &self,
            layer: &str,
            annotations: &Annotations,
        ) -> crate::crypto::Result<Annotations> {
            let opts = self.unwrap(layer, annotations)?;
            let mut out: Annotations = annotations
                .iter()
                .filter(|(k, _)| k.starts_with(ANN_PREFIX))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let old = out[FAKE_KEYS].clone();
            out.insert(
                FAKE_KEYS.into(),
                format!("{old},{}", encode_b64(&opts.to_json())),
            );
            Ok(out)
        }
    }

    impl LayerDecrypter for Fake {
        fn unwrap(
            &self,
            layer: &str,
            annotations: &Annotations,
        ) -> crate::crypto::Result<PrivateOptions> {
            if self.no_key {
                return Err(CryptoError::NoKeyForLayer {
                    layer: layer.into(),
                    schemes: crypto_layer::schemes(annotations).join(", "),
                });
            }
            let first = annotations[FAKE_KEYS].split(',').next().unwrap_or_default();
            PrivateOptions::from_json(&decode_b64(first).unwrap_or_default())
        }
        fn decrypt(
            &self,
            opts: &PrivateOptions,
            annotations: &Annotations,
            input: &mut (dyn Read + Send),
            output: &mut dyn Write,
        ) -> crate::crypto::Result<StreamDigests> {
            let public = crypto_layer::public_options(annotations)?;
            let mut d = xor_stream(opts, input, output, false)?;
            if self.hmac_fails || public.hmac != d.hmac {
                return Err(CryptoError::HmacMismatch {
                    expected: hex::encode(&public.hmac),
                    actual: hex::encode(d.hmac),
                });
            }
            if self.wrong_plain_digest {
                d.plain_sha256[0] ^= 1;
            }
            Ok(d)
        }
    }

    fn r(s: &str) -> ImageRef {
        s.parse().unwrap()
    }

    fn oci(dir: &Path, tag: &str) -> ImageRef {
        r(&format!("oci:{}:{tag}", dir.display()))
    }

    fn all() -> LayerFilter {
        LayerFilter::default()
    }

    fn two_layer_image(dir: &Path) -> Descriptor {
        write_image(
            dir,
            "v1",
            &[
                layer(OCI_LAYER_GZIP, &[("bin/sh", b"#!busybox")]),
                layer(OCI_LAYER_GZIP, &[("etc/motd", b"hello")]),
            ],
            false,
        )
    }

    /// The manifest a tag of a layout points to (single-platform images).
    fn manifest_of(dir: &Path, tag: &str) -> (Descriptor, Manifest) {
        let layout = Layout::open(dir).unwrap();
        let desc =
            super::super::transport::resolve_in(&layout.read_index().unwrap(), "t", Some(tag))
                .unwrap();
        let raw = layout.read_blob(&desc, 1 << 20, "m").unwrap();
        match crate::image::manifest::parse_node(&raw, &desc).unwrap() {
            Node::Manifest(m) => (desc, *m),
            Node::Index(_) => panic!("an index"),
        }
    }

    #[test]
    fn layer_index_math_counts_from_both_ends() {
        let f = |l: &[i64]| LayerFilter {
            layers: l.to_vec(),
            platforms: vec![],
        };
        let set = |v: &[usize]| v.iter().copied().collect::<BTreeSet<_>>();
        assert_eq!(f(&[]).layer_indices(3, "p").unwrap(), set(&[0, 1, 2]));
        assert_eq!(f(&[0]).layer_indices(3, "p").unwrap(), set(&[0]));
        assert_eq!(f(&[-1]).layer_indices(3, "p").unwrap(), set(&[2]));
        assert_eq!(f(&[-3, 2, -1]).layer_indices(3, "p").unwrap(), set(&[0, 2]));
        for bad in [3, -4, i64::MIN, i64::MAX] {
            let err = f(&[bad]).layer_indices(3, "linux/amd64").unwrap_err();
            assert!(matches!(err, ImageError::LayerOutOfRange { .. }));
            let msg = err.to_string();
            assert!(
                msg.contains("linux/amd64 has 3 layers (valid: 0..2 or -3..-1)"),
                "{msg}"
            );
        }
        assert!(f(&[0])
            .layer_indices(0, "p")
            .unwrap_err()
            .to_string()
            .contains("valid: none"));
        assert_eq!(f(&[]).layer_indices(0, "p").unwrap(), set(&[]));
    }

    #[test]
    fn encrypt_then_decrypt_gives_back_the_same_manifest() {
        let tmp = tempfile::tempdir().unwrap();
        let (src, enc, dec) = (
            tmp.path().join("src"),
            tmp.path().join("enc"),
            tmp.path().join("dec"),
        );
        let plain_desc = two_layer_image(&src);
        let (_, plain) = manifest_of(&src, "v1");

        let s = encrypt_with(&oci(&src, "v1"), &oci(&enc, "v1"), &Fake::default(), &all()).unwrap();
        assert_eq!((s.layers_changed, s.layers_total), (2, 2));
        let (enc_desc, m) = manifest_of(&enc, "v1");
        assert_eq!(s.manifest_digest, enc_desc.digest.to_string());
        assert_eq!(m.media_type.as_deref(), Some(OCI_MANIFEST));
        assert_eq!(m.config, plain.config, "config and diff_ids unchanged");
        for (e, p) in m.layers.iter().zip(&plain.layers) {
            assert_eq!(e.media_type, OCI_LAYER_GZIP_ENC);
            assert_ne!(e.digest, p.digest);
            assert_eq!(e.size, p.size);
            assert!(e.annotation(FAKE_KEYS).is_some() && e.annotation(ANN_PUBOPTS).is_some());
            assert!(Layout::open(&enc).unwrap().has_blob(&e.digest));
            assert!(
                !Layout::open(&enc).unwrap().has_blob(&p.digest),
                "plaintext is not copied"
            );
        }

        let s = decrypt_with(&oci(&enc, "v1"), &oci(&dec, "v1"), &Fake::default(), &all()).unwrap();
        assert_eq!((s.layers_changed, s.layers_total), (2, 2));
        let (dec_desc, m) = manifest_of(&dec, "v1");
        assert_eq!(m.layers, plain.layers);
        assert_eq!(
            dec_desc.digest, plain_desc.digest,
            "byte-identical manifest"
        );
        assert_eq!(s.manifest_digest, plain_desc.digest.to_string());
    }

    #[test]
    fn only_the_selected_layer_is_encrypted_and_layerinfo_shows_it() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        two_layer_image(&src);
        let top = LayerFilter {
            layers: vec![-1],
            platforms: vec![],
        };
        let s = encrypt_with(&oci(&src, "v1"), &oci(&src, "enc"), &Fake::default(), &top).unwrap();
        assert_eq!((s.layers_changed, s.layers_total), (1, 2));
        let rows = layer_info(&oci(&src, "enc"), &all()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].encryption, Vec::<String>::new());
        assert_eq!(rows[0].media_type, OCI_LAYER_GZIP);
        assert_eq!(rows[1].encryption, vec!["fake".to_string()]);
        assert_eq!(rows[1].recipients, vec!["[fake]".to_string()]);
        assert_eq!(rows[1].platform, "linux/amd64");
        assert_eq!(rows[1].index, 1);
        let only_top = layer_info(&oci(&src, "enc"), &top).unwrap();
        assert_eq!(only_top.len(), 1);
        assert_eq!(only_top[0].digest, rows[1].digest);
        // Both tags live in the same layout.
        assert_eq!(
            Layout::open(&src)
                .unwrap()
                .read_index()
                .unwrap()
                .manifests
                .len(),
            2
        );
    }

    #[test]
    fn out_of_range_layer_fails_before_anything_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let (src, dst) = (tmp.path().join("src"), tmp.path().join("new/dst"));
        two_layer_image(&src);
        let f = LayerFilter {
            layers: vec![2],
            platforms: vec![],
        };
        let err =
            encrypt_with(&oci(&src, "v1"), &oci(&dst, "v1"), &Fake::default(), &f).unwrap_err();
        assert!(
            matches!(
                err,
                ImageError::LayerOutOfRange {
                    index: 2,
                    count: 2,
                    ..
                }
            ),
            "{err}"
        );
        assert!(!tmp.path().join("new").exists());
    }

    fn multiarch(dir: &Path) -> Descriptor {
        write_index(
            dir,
            "multi",
            &[
                (
                    "linux/amd64",
                    vec![layer(OCI_LAYER_GZIP, &[("a", b"amd64")])],
                ),
                (
                    "linux/arm64/v8",
                    vec![
                        layer(OCI_LAYER_GZIP, &[("a", b"arm64")]),
                        layer(OCI_LAYER_TAR, &[("b", b"arm64 top")]),
                    ],
                ),
                ("unknown/unknown", vec![layer(IN_TOTO, &[("att", b"{}")])]),
            ],
        )
    }

    fn index_of(dir: &Path, tag: &str) -> crate::image::manifest::Index {
        let layout = Layout::open(dir).unwrap();
        let desc =
            super::super::transport::resolve_in(&layout.read_index().unwrap(), "t", Some(tag))
                .unwrap();
        let raw = layout.read_blob(&desc, 1 << 20, "i").unwrap();
        match crate::image::manifest::parse_node(&raw, &desc).unwrap() {
            Node::Index(i) => *i,
            Node::Manifest(_) => panic!("a manifest"),
        }
    }

    #[test]
    fn platform_filter_touches_only_that_platform() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        multiarch(&src);
        let before = index_of(&src, "multi");
        let f = LayerFilter {
            layers: vec![-1],
            platforms: vec!["linux/arm64".parse().unwrap()],
        };
        let s = encrypt_with(&oci(&src, "multi"), &oci(&src, "enc"), &Fake::default(), &f).unwrap();
        assert_eq!((s.layers_changed, s.layers_total), (1, 2));
        let after = index_of(&src, "enc");
        assert_eq!(after.media_type.as_deref(), Some(OCI_INDEX));
        assert_eq!(after.manifests[0], before.manifests[0], "amd64 untouched");
        assert_eq!(
            after.manifests[2], before.manifests[2],
            "attestation untouched"
        );
        assert_ne!(after.manifests[1].digest, before.manifests[1].digest);
        assert_eq!(after.manifests[1].platform, before.manifests[1].platform);
        let rows = layer_info(&oci(&src, "enc"), &LayerFilter::default()).unwrap();
        let enc: Vec<_> = rows.iter().filter(|r| !r.encryption.is_empty()).collect();
        assert_eq!(enc.len(), 1);
        assert_eq!(enc[0].platform, "linux/arm64/v8");
        assert_eq!(enc[0].media_type, OCI_LAYER_TAR_ENC);
        assert_eq!(rows.len(), 4);

        // All platforms, all layers: the in-toto layer is never touched.
        let s = encrypt_with(
            &oci(&src, "multi"),
            &oci(&src, "all"),
            &Fake::default(),
            &all(),
        )
        .unwrap();
        assert_eq!((s.layers_changed, s.layers_total), (3, 4));
        let after = index_of(&src, "all");
        assert_eq!(after.manifests[2], before.manifests[2]);
    }

    #[test]
    fn unknown_platform_is_an_error_listing_what_exists() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        multiarch(&src);
        let f = LayerFilter {
            layers: vec![],
            platforms: vec!["linux/s390x".parse().unwrap()],
        };
        let err = layer_info(&oci(&src, "multi"), &f).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("linux/s390x")
                && msg.contains("linux/amd64, linux/arm64/v8, unknown/unknown"),
            "{msg}"
        );
    }

    #[test]
    fn recipients_are_added_without_reencryption_and_only_with_a_key() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        two_layer_image(&src);
        encrypt_with(
            &oci(&src, "v1"),
            &oci(&src, "enc"),
            &Fake::default(),
            &all(),
        )
        .unwrap();
        let (_, once) = manifest_of(&src, "enc");
        let s = encrypt_with(
            &oci(&src, "enc"),
            &oci(&src, "enc2"),
            &Fake::default(),
            &all(),
        )
        .unwrap();
        assert_eq!(s.layers_changed, 2);
        let (_, twice) = manifest_of(&src, "enc2");
        for (a, b) in once.layers.iter().zip(&twice.layers) {
            assert_eq!(
                (&a.digest, a.size, &a.media_type),
                (&b.digest, b.size, &b.media_type)
            );
            assert_eq!(b.annotation(FAKE_KEYS).unwrap().split(',').count(), 2);
            assert_eq!(a.annotation(ANN_PUBOPTS), b.annotation(ANN_PUBOPTS));
        }

        let dst = tmp.path().join("other");
        let no_key = Fake {
            no_key: true,
            ..Fake::default()
        };
        let err = encrypt_with(&oci(&src, "enc"), &oci(&dst, "x"), &no_key, &all()).unwrap_err();
        assert!(matches!(err, ImageError::AlreadyEncrypted { .. }), "{err}");
        assert!(err.to_string().contains("--key"), "{err}");
        assert!(!dst.exists());
    }

    #[test]
    fn decrypt_key_gate_fails_before_any_write() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        two_layer_image(&src);
        encrypt_with(
            &oci(&src, "v1"),
            &oci(&src, "enc"),
            &Fake::default(),
            &all(),
        )
        .unwrap();
        let before = snapshot(&src);
        let no_key = Fake {
            no_key: true,
            ..Fake::default()
        };
        let err = decrypt_with(&oci(&src, "enc"), &oci(&src, "dec"), &no_key, &all()).unwrap_err();
        assert!(
            matches!(err, ImageError::Crypto(CryptoError::NoKeyForLayer { .. })),
            "{err}"
        );
        assert_eq!(snapshot(&src), before);
        let dst = tmp.path().join("dst");
        assert!(decrypt_with(&oci(&src, "enc"), &oci(&dst, "dec"), &no_key, &all()).is_err());
        assert!(!dst.exists());
    }

    #[test]
    fn decrypt_failures_leave_the_layout_unchanged() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        two_layer_image(&src);
        let top = LayerFilter {
            layers: vec![-1],
            platforms: vec![],
        };
        encrypt_with(
            &oci(&src, "v1"),
            &oci(&src, "enc"),
            &Fake::default(),
            &all(),
        )
        .unwrap();
        let before = snapshot(&src);

        let bad_mac = Fake {
            hmac_fails: true,
            ..Fake::default()
        };
        let err = decrypt_with(&oci(&src, "enc"), &oci(&src, "dec"), &bad_mac, &top).unwrap_err();
        assert!(
            matches!(err, ImageError::Crypto(CryptoError::HmacMismatch { .. })),
            "{err}"
        );
        assert_eq!(snapshot(&src), before);

        let lying = Fake {
            wrong_plain_digest: true,
            ..Fake::default()
        };
        let err = decrypt_with(&oci(&src, "enc"), &oci(&src, "dec"), &lying, &all()).unwrap_err();
        assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
        assert_eq!(snapshot(&src), before);
    }

    #[test]
    fn recompressed_by_skopeo_layers_are_accepted_only_by_their_diff_id() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        two_layer_image(&src);
        let (_, plain) = manifest_of(&src, "v1");
        let cimage = Fake {
            record_other_digest: true,
            ..Fake::default()
        };
        encrypt_with(&oci(&src, "v1"), &oci(&src, "enc"), &cimage, &all()).unwrap();
        let s = decrypt_with(
            &oci(&src, "enc"),
            &oci(&src, "dec"),
            &Fake::default(),
            &all(),
        )
        .unwrap();
        assert_eq!(s.layers_changed, 2);
        assert_eq!(manifest_of(&src, "dec").1.layers, plain.layers);

        // The same with a config whose diff_ids do not describe the layers: refused.
        let other = tmp.path().join("other");
        let mut wrong = layer(OCI_LAYER_GZIP, &[("a", b"1")]);
        wrong.diff_id = Digest::of_bytes(b"not this layer");
        write_image(&other, "v1", &[wrong], false);
        encrypt_with(&oci(&other, "v1"), &oci(&other, "enc"), &cimage, &all()).unwrap();
        let before = snapshot(&other);
        let err = decrypt_with(
            &oci(&other, "enc"),
            &oci(&other, "dec"),
            &Fake::default(),
            &all(),
        )
        .unwrap_err();
        assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
        assert_eq!(snapshot(&other), before);
    }

    #[test]
    fn decrypt_of_a_plain_image_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
        let desc = two_layer_image(&src);
        let s = decrypt_with(&oci(&src, "v1"), &oci(&dst, "v1"), &Fake::default(), &all()).unwrap();
        assert_eq!(s.layers_changed, 0);
        assert_eq!(s.manifest_digest, desc.digest.to_string());
        assert_eq!(manifest_of(&dst, "v1").0.digest, desc.digest);
    }

    #[test]
    fn docker_schema2_input_becomes_an_oci_manifest() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        write_image(
            &src,
            "v1",
            &[
                layer(DOCKER_LAYER_GZIP, &[("a", b"1")]),
                layer(DOCKER_LAYER_TAR, &[("b", b"2")]),
            ],
            true,
        );
        let (_, docker) = manifest_of(&src, "v1");
        let f = LayerFilter {
            layers: vec![0],
            platforms: vec![],
        };
        encrypt_with(&oci(&src, "v1"), &oci(&src, "enc"), &Fake::default(), &f).unwrap();
        let (desc, m) = manifest_of(&src, "enc");
        assert_eq!(desc.media_type, OCI_MANIFEST);
        assert_eq!(m.media_type.as_deref(), Some(OCI_MANIFEST));
        assert_eq!(m.config.media_type, OCI_CONFIG);
        assert_eq!(m.config.digest, docker.config.digest);
        assert_eq!(m.layers[0].media_type, OCI_LAYER_GZIP_ENC);
        assert_eq!(m.layers[1].media_type, OCI_LAYER_TAR);
        assert_eq!(m.layers[1].digest, docker.layers[1].digest);
        decrypt_with(
            &oci(&src, "enc"),
            &oci(&src, "dec"),
            &Fake::default(),
            &all(),
        )
        .unwrap();
        let (_, m) = manifest_of(&src, "dec");
        assert_eq!(m.layers[0].media_type, OCI_LAYER_GZIP);
        assert_eq!(m.layers[0].digest, docker.layers[0].digest);
    }

    #[test]
    fn corrupted_source_layer_is_refused_and_nothing_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        two_layer_image(&src);
        let (_, m) = manifest_of(&src, "v1");
        let layout = Layout::open(&src).unwrap();
        let path = layout.blob_path(&m.layers[1].digest);
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let before = snapshot(&src);
        let err = encrypt_with(
            &oci(&src, "v1"),
            &oci(&src, "enc"),
            &Fake::default(),
            &all(),
        )
        .unwrap_err();
        assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
        assert_eq!(snapshot(&src), before);
    }

    #[test]
    fn unknown_layer_media_type_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        write_image(
            &src,
            "v1",
            &[layer("application/vnd.example.layer+bzip2", &[("a", b"1")])],
            false,
        );
        let before = snapshot(&src);
        let err =
            encrypt_with(&oci(&src, "v1"), &oci(&src, "e"), &Fake::default(), &all()).unwrap_err();
        assert!(
            err.to_string().contains("unknown layer media type application/vnd.example.layer+bzip2: rrun will not pass it through"),
            "{err}"
        );
        assert!(layer_info(&oci(&src, "v1"), &all()).is_err());
        assert_eq!(snapshot(&src), before);
    }

    #[test]
    fn no_recipients_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        two_layer_image(&src);
        let err = encrypt_image(
            &oci(&src, "v1"),
            &oci(&src, "e"),
            &EncryptConfig::default(),
            &all(),
        )
        .unwrap_err();
        assert!(matches!(err, ImageError::NoRecipients), "{err}");
    }

    #[test]
    fn real_decrypt_without_keys_stops_at_the_gate() {
        // The real crypto (not the stand-in): no --key means no layer is opened and no write.
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        two_layer_image(&src);
        encrypt_with(
            &oci(&src, "v1"),
            &oci(&src, "enc"),
            &Fake::default(),
            &all(),
        )
        .unwrap();
        let before = snapshot(&src);
        let err = decrypt_image(
            &oci(&src, "enc"),
            &oci(&src, "dec"),
            &DecryptConfig::default(),
            &all(),
        )
        .unwrap_err();
        assert!(
            matches!(err, ImageError::Crypto(CryptoError::MissingPrivateKey)),
            "{err}"
        );
        assert_eq!(snapshot(&src), before);
    }

    #[test]
    fn oci_archive_round_trip_keeps_other_tags() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let plain = two_layer_image(&src);
        let archive = tmp.path().join("out/dir/img.tar");
        let a = |tag: &str| r(&format!("oci-archive:{}:{tag}", archive.display()));
        encrypt_with(&oci(&src, "v1"), &a("enc"), &Fake::default(), &all()).unwrap();
        decrypt_with(&oci(&src, "v1"), &a("plain"), &Fake::default(), &all()).unwrap();
        let rows = layer_info(&a("enc"), &all()).unwrap();
        assert!(rows
            .iter()
            .all(|r| r.encryption == vec!["fake".to_string()]));
        let dec = tmp.path().join("dec");
        let s = decrypt_with(&a("enc"), &oci(&dec, "v1"), &Fake::default(), &all()).unwrap();
        assert_eq!(s.manifest_digest, plain.digest.to_string());
        assert_eq!(layer_info(&a("plain"), &all()).unwrap().len(), 2);
        // A failure does not touch the archive, nor leave temp files next to it.
        let before = snapshot(&tmp.path().join("out"));
        let err = encrypt_with(&oci(&src, "nope"), &a("x"), &Fake::default(), &all()).unwrap_err();
        assert!(matches!(err, ImageError::TagNotFound { .. }));
        let no_key = Fake {
            no_key: true,
            ..Fake::default()
        };
        assert!(decrypt_with(&a("enc"), &a("y"), &no_key, &all()).is_err());
        assert_eq!(snapshot(&tmp.path().join("out")), before);
        // A new archive path whose parents are missing is not created on failure.
        let fresh = tmp.path().join("fresh/x.tar");
        let fresh_ref = r(&format!("oci-archive:{}:t", fresh.display()));
        let bad = LayerFilter {
            layers: vec![9],
            platforms: vec![],
        };
        assert!(encrypt_with(&oci(&src, "v1"), &fresh_ref, &Fake::default(), &bad).is_err());
        assert!(!tmp.path().join("fresh").exists());
    }

    #[test]
    fn ciphertext_under_a_plain_gzip_type_is_not_encrypted_again() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let fake_gzip = testutil::Layer {
            media_type: DOCKER_LAYER_GZIP,
            blob: (0..=255u8).cycle().skip(3).take(5000).collect(),
            diff_id: Digest::of_bytes(b"unknown"),
        };
        write_image(&src, "v1", &[fake_gzip], true);
        let before = snapshot(&src);
        let err =
            encrypt_with(&oci(&src, "v1"), &oci(&src, "e"), &Fake::default(), &all()).unwrap_err();
        assert!(matches!(err, ImageError::InconsistentLayer { .. }), "{err}");
        assert!(err.to_string().contains("skopeo --format v2s2"), "{err}");
        assert_eq!(snapshot(&src), before);
    }

    #[test]
    fn in_place_encryption_replaces_the_tag() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        two_layer_image(&src);
        let s = encrypt_with(&oci(&src, "v1"), &oci(&src, "v1"), &Fake::default(), &all()).unwrap();
        let index = Layout::open(&src).unwrap().read_index().unwrap();
        assert_eq!(index.manifests.len(), 1);
        assert_eq!(index.manifests[0].digest.to_string(), s.manifest_digest);
        assert_eq!(index.manifests[0].ref_name(), Some("v1"));
        // Untagged destination: an entry without ref.name is added, once.
        let untagged = r(&format!("oci:{}", src.display()));
        decrypt_with(&oci(&src, "v1"), &untagged, &Fake::default(), &all()).unwrap();
        decrypt_with(&oci(&src, "v1"), &untagged, &Fake::default(), &all()).unwrap();
        let index = Layout::open(&src).unwrap().read_index().unwrap();
        assert_eq!(index.manifests.len(), 2);
        assert_eq!(index.manifests[1].ref_name(), None);
        let err = layer_info(&untagged, &all()).unwrap_err();
        assert!(matches!(err, ImageError::AmbiguousImage { .. }), "{err}");
    }

    #[test]
    fn skopeo_v2s2_layout_is_read_and_rewritten_as_oci() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        two_layer_image(&src);
        let docker = tmp.path().join("docker");
        testutil::skopeo(&[
            "copy",
            "--format",
            "v2s2",
            &format!("oci:{}:v1", src.display()),
            &format!("oci:{}:v1", docker.display()),
        ]);
        let (desc, m) = manifest_of(&docker, "v1");
        assert_eq!(desc.media_type, DOCKER_MANIFEST);
        assert_eq!(m.layers[0].media_type, DOCKER_LAYER_GZIP);
        let f = LayerFilter {
            layers: vec![-1],
            platforms: vec![],
        };
        encrypt_with(
            &oci(&docker, "v1"),
            &oci(&docker, "enc"),
            &Fake::default(),
            &f,
        )
        .unwrap();
        let (desc, m) = manifest_of(&docker, "enc");
        assert_eq!(desc.media_type, OCI_MANIFEST);
        assert_eq!(m.config.media_type, OCI_CONFIG);
        assert_eq!(m.layers[0].media_type, OCI_LAYER_GZIP);
        assert_eq!(m.layers[1].media_type, OCI_LAYER_GZIP_ENC);
        testutil::skopeo(&["inspect", &format!("oci:{}:enc", docker.display())]);
    }

    #[test]
    fn hostile_oci_archive_source_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let archive = tmp.path().join("evil.tar");
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "index.json", "/etc/passwd").unwrap();
        std::fs::write(&archive, b.into_inner().unwrap()).unwrap();
        let err =
            layer_info(&r(&format!("oci-archive:{}", archive.display())), &all()).unwrap_err();
        assert!(matches!(err, ImageError::HostileArchive { .. }), "{err}");
    }

    #[test]
    fn skopeo_peer_reads_and_copies_encrypted_layouts() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        two_layer_image(&src);
        multiarch(&src);
        encrypt_with(
            &oci(&src, "v1"),
            &oci(&src, "enc"),
            &Fake::default(),
            &all(),
        )
        .unwrap();
        let f = LayerFilter {
            layers: vec![],
            platforms: vec!["linux/amd64".parse().unwrap()],
        };
        encrypt_with(
            &oci(&src, "multi"),
            &oci(&src, "multi-enc"),
            &Fake::default(),
            &f,
        )
        .unwrap();
        let inspect = testutil::skopeo(&["inspect", &format!("oci:{}:enc", src.display())]);
        let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
        assert_eq!(v["Architecture"], "amd64");
        assert_eq!(v["Layers"].as_array().unwrap().len(), 2);
        let copy: PathBuf = tmp.path().join("copy");
        testutil::skopeo(&[
            "copy",
            "--all",
            &format!("oci:{}:multi-enc", src.display()),
            &format!("oci:{}:m", copy.display()),
        ]);
        testutil::skopeo(&[
            "copy",
            &format!("oci:{}:enc", src.display()),
            &format!("oci:{}:e", copy.display()),
        ]);
        // And rrun reads back what skopeo wrote.
        let rows = layer_info(&oci(&copy, "m"), &all()).unwrap();
        assert_eq!(rows.iter().filter(|r| !r.encryption.is_empty()).count(), 1);
        let rows = layer_info(&oci(&copy, "e"), &all()).unwrap();
        assert!(rows
            .iter()
            .all(|r| r.encryption == vec!["fake".to_string()]));
    }
}
