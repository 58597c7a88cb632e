//! OCI/Docker JSON types: descriptors, image manifests, image indexes and image configs. Every
//! type keeps the fields it does not know in `extra`, so a parsed document serialises back with
//! nothing lost.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::digest::Digest;
use super::error::{ImageError, Result};
use super::media_type::{self, ManifestKind};
use super::platform::Platform;

/// Annotations of a descriptor, manifest or index (the same map type `crypto` uses).
pub type Annotations = BTreeMap<String, String>;

/// The annotation holding a tag in `index.json`.
pub const ANN_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Descriptor {
    /// Media type of the referenced content.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size in bytes of the referenced content.
    pub size: u64,
    /// Where else the content may be fetched from (foreign layers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Annotations>,
    /// Platform of a manifest in an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<DescriptorPlatform>,
    /// Other fields (`artifactType`, `data`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Descriptor {
    /// A descriptor with only media type, digest and size.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Self {
            media_type: media_type.to_string(),
            digest,
            size,
            urls: None,
            annotations: None,
            platform: None,
            extra: Map::new(),
        }
    }

    /// The annotations, or an empty map.
    pub fn annotations(&self) -> Annotations {
        self.annotations.clone().unwrap_or_default()
    }

    /// One annotation.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }

    /// Set the annotations; an empty map removes the field.
    pub fn set_annotations(&mut self, annotations: Annotations) {
        self.annotations = (!annotations.is_empty()).then_some(annotations);
    }

    /// The tag of an `index.json` entry.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotation(ANN_REF_NAME)
    }
}

/// The `platform` of a descriptor in an index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DescriptorPlatform {
    /// CPU architecture.
    pub architecture: String,
    /// Operating system.
    pub os: String,
    /// OS version (Windows).
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// OS features (Windows).
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    /// CPU variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Other fields (`features`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl DescriptorPlatform {
    /// The platform for matching and display.
    pub fn platform(&self) -> Platform {
        Platform::new(&self.os, &self.architecture, self.variant.as_deref())
    }
}

/// An OCI image manifest or a Docker schema2 manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// The manifest's media type (optional in OCI, required in Docker schema2).
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// The layers, bottom first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to (referrers API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Manifest annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Annotations>,
    /// Other fields (`artifactType`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An OCI image index or a Docker manifest list (also the shape of `index.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Index {
    /// Always 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// The index's media type.
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The manifests (or nested indexes).
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    /// The manifest this one refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Index annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Annotations>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Index {
    /// An empty `index.json`.
    pub fn empty() -> Self {
        Self {
            schema_version: 2,
            media_type: Some(media_type::OCI_INDEX.into()),
            manifests: Vec::new(),
            subject: None,
            annotations: None,
            extra: Map::new(),
        }
    }
}

/// A parsed manifest-level document.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// An image manifest.
    Manifest(Box<Manifest>),
    /// An image index.
    Index(Box<Index>),
}

/// Parse the blob a descriptor points to as a manifest or index, checking that its own
/// `mediaType` (if any) agrees with the descriptor and that it is not ambiguous.
pub fn parse_node(bytes: &[u8], desc: &Descriptor) -> Result<Node> {
    let what = format!("manifest {}", desc.digest);
    let kind = media_type::manifest_kind(&desc.media_type)?;
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ImageError::malformed(&what, e.to_string()))?;
    let obj = value
        .as_object()
        .ok_or_else(|| ImageError::malformed(&what, "not a JSON object"))?;
    if let Some(own) = obj.get("mediaType") {
        let own = own
            .as_str()
            .ok_or_else(|| ImageError::malformed(&what, "mediaType is not a string"))?;
        if own != desc.media_type {
            return Err(ImageError::malformed(
                &what,
                format!(
                    "its mediaType {own} differs from its descriptor's {}",
                    desc.media_type
                ),
            ));
        }
    }
    match obj.get("schemaVersion").and_then(Value::as_u64) {
        Some(2) => {}
        _ => return Err(ImageError::malformed(&what, "schemaVersion is not 2")),
    }
    // A document that is both a manifest and an index could be read differently by
    // different tools: refuse it (image-spec "guidance for an empty descriptor" and CVE-2021-41190).
    match kind {
        ManifestKind::Manifest if obj.contains_key("manifests") => Err(ImageError::malformed(
            &what,
            "a manifest must not have a manifests field",
        )),
        ManifestKind::Index if obj.contains_key("layers") || obj.contains_key("config") => Err(
            ImageError::malformed(&what, "an index must not have layers or config fields"),
        ),
        ManifestKind::Manifest => serde_json::from_value(value)
            .map(|m| Node::Manifest(Box::new(m)))
            .map_err(|e| ImageError::malformed(&what, e.to_string())),
        ManifestKind::Index => serde_json::from_value(value)
            .map(|i| Node::Index(Box::new(i)))
            .map_err(|e| ImageError::malformed(&what, e.to_string())),
    }
}

/// Parse `index.json`.
pub fn parse_index_json(bytes: &[u8]) -> Result<Index> {
    let index: Index = serde_json::from_slice(bytes)
        .map_err(|e| ImageError::malformed("index.json", e.to_string()))?;
    if index.schema_version != 2 {
        return Err(ImageError::malformed(
            "index.json",
            "schemaVersion is not 2",
        ));
    }
    Ok(index)
}

/// The part of an image config that names its platform; anything else is ignored, so that
/// non-image configs (artifacts) still parse.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConfigPlatform {
    /// CPU architecture.
    #[serde(default)]
    pub architecture: Option<String>,
    /// Operating system.
    #[serde(default)]
    pub os: Option<String>,
    /// CPU variant.
    #[serde(default)]
    pub variant: Option<String>,
}

impl ConfigPlatform {
    /// The platform, `unknown/unknown` when the config names none.
    pub fn platform(&self) -> Platform {
        let or_unknown = |s: &Option<String>| {
            s.clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "unknown".into())
        };
        Platform::new(
            &or_unknown(&self.os),
            &or_unknown(&self.architecture),
            self.variant.as_deref(),
        )
    }
}

/// An OCI image config (what `image import` writes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// Creation time, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// CPU architecture.
    pub architecture: String,
    /// Operating system.
    pub os: String,
    /// CPU variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Execution parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    /// The layers' uncompressed digests.
    pub rootfs: RootFs,
    /// How the image was built.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `config` object of an image config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// Environment, `KEY=VALUE`.
    #[serde(rename = "Env", default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Entrypoint.
    #[serde(rename = "Entrypoint", default, skip_serializing_if = "Vec::is_empty")]
    pub entrypoint: Vec<String>,
    /// Default arguments.
    #[serde(rename = "Cmd", default, skip_serializing_if = "Vec::is_empty")]
    pub cmd: Vec<String>,
    /// Working directory.
    #[serde(
        rename = "WorkingDir",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub working_dir: Option<String>,
    /// Other fields (`User`, `Labels`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `rootfs` of an image config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// sha256 of each uncompressed layer tar, bottom first.
    pub diff_ids: Vec<Digest>,
}

/// One `history` entry of an image config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// When, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The command that made the layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// A comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True when the step made no layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_layer: Option<bool>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::media_type::*;

    macro_rules! sample {
        ($name:literal) => {
            include_bytes!(concat!("../../tests/data/image/samples/", $name))
        };
    }

    fn index_entry(i: &Index, tag: &str) -> Descriptor {
        i.manifests
            .iter()
            .find(|d| d.ref_name() == Some(tag))
            .unwrap()
            .clone()
    }

    #[test]
    fn umoci_index_and_manifest_parse_and_match_digests() {
        let index = parse_index_json(sample!("plain-oci-index.json")).unwrap();
        assert_eq!(index.manifests.len(), 3);
        let latest = index_entry(&index, "latest");
        let bytes = sample!("plain-manifest.json");
        assert_eq!(Digest::of_bytes(bytes), latest.digest);
        assert_eq!(bytes.len() as u64, latest.size);
        let Node::Manifest(m) = parse_node(bytes, &latest).unwrap() else {
            panic!("not a manifest")
        };
        assert_eq!(m.media_type, None, "umoci writes no top-level mediaType");
        assert_eq!(m.layers.len(), 1);
        assert_eq!(m.layers[0].media_type, OCI_LAYER_GZIP);
        assert_eq!(m.config.media_type, OCI_CONFIG);
        let cfg: ConfigPlatform = serde_json::from_slice(sample!("plain-config.json")).unwrap();
        assert_eq!(cfg.platform().to_string(), "linux/amd64");
        let full: ImageConfig = serde_json::from_slice(sample!("plain-config.json")).unwrap();
        assert_eq!(full.rootfs.diff_ids.len(), 1);
        assert_eq!(
            full.config.as_ref().unwrap().cmd,
            vec!["/bin/sh".to_string()]
        );
        assert_eq!(
            Digest::of_bytes(sample!("plain-config.json")),
            m.config.digest
        );
    }

    #[test]
    fn skopeo_encrypted_manifests_round_trip_byte_for_byte() {
        for bytes in [
            &sample!("enc-jwe-rsa-manifest.json")[..],
            &sample!("enc-multi-recipient-manifest.json")[..],
            &sample!("enc-selective-last-layer-manifest.json")[..],
            &sample!("dec-jwe-rsa-manifest.json")[..],
        ] {
            let m: Manifest = serde_json::from_slice(bytes).unwrap();
            let back = serde_json::to_vec(&m).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&back),
                String::from_utf8_lossy(bytes).trim_end()
            );
        }
        let index = parse_index_json(sample!("enc-jwe-rsa-index.json")).unwrap();
        let entry = index_entry(&index, "latest");
        let bytes = sample!("enc-jwe-rsa-manifest.json");
        assert_eq!(Digest::of_bytes(bytes), entry.digest);
        let Node::Manifest(m) = parse_node(bytes, &entry).unwrap() else {
            panic!("not a manifest")
        };
        assert_eq!(m.layers[0].media_type, OCI_LAYER_GZIP_ENC);
        assert!(crate::crypto::layer::has_wrapped_keys(
            &m.layers[0].annotations()
        ));
    }

    #[test]
    fn docker_schema2_manifest_parses() {
        let bytes = sample!("enc-format-v2s2-BROKEN-manifest.json");
        let desc = Descriptor::new(DOCKER_MANIFEST, Digest::of_bytes(bytes), bytes.len() as u64);
        let Node::Manifest(m) = parse_node(bytes, &desc).unwrap() else {
            panic!("not a manifest")
        };
        assert_eq!(m.media_type.as_deref(), Some(DOCKER_MANIFEST));
        assert_eq!(m.config.media_type, DOCKER_CONFIG);
        assert_eq!(m.layers[0].media_type, DOCKER_LAYER_GZIP);
        // The same bytes under an OCI descriptor are refused: the types disagree.
        let oci = Descriptor::new(OCI_MANIFEST, desc.digest.clone(), desc.size);
        let err = parse_node(bytes, &oci).unwrap_err();
        assert!(err.to_string().contains("differs"), "{err}");
    }

    #[test]
    fn unknown_fields_survive() {
        let json = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/x","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"data":"e30="},"layers":[],"annotations":{"a":"b"},"future":{"x":[1,2]}}"#;
        let m: Manifest = serde_json::from_slice(json).unwrap();
        let back: Value = serde_json::to_value(&m).unwrap();
        let orig: Value = serde_json::from_slice(json).unwrap();
        assert_eq!(back, orig);
        assert_eq!(m.extra["artifactType"], "application/x");
        assert_eq!(m.config.extra["data"], "e30=");
    }

    #[test]
    fn hostile_documents_are_refused() {
        let d = |mt: &str| Descriptor::new(mt, Digest::of_bytes(b""), 0);
        let bad_digest = br#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:../../etc/passwd","size":1},"layers":[]}"#;
        let err = parse_node(bad_digest, &d(OCI_MANIFEST)).unwrap_err();
        assert!(err.to_string().contains("invalid digest"), "{err}");
        let both = br#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[],"manifests":[]}"#;
        assert!(parse_node(both, &d(OCI_MANIFEST)).is_err());
        let v1 = br#"{"schemaVersion":1}"#;
        assert!(parse_node(v1, &d(OCI_MANIFEST)).is_err());
        let negative = br#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":-1},"layers":[]}"#;
        assert!(parse_node(negative, &d(OCI_MANIFEST)).is_err());
        assert!(parse_node(b"[]", &d(OCI_INDEX)).is_err());
        assert!(parse_node(b"{", &d(OCI_INDEX)).is_err());
        assert!(parse_node(b"{}", &d("application/x-unknown")).is_err());
    }
}
