//! Pure descriptor and manifest rewrites of image encryption and decryption (descriptor in,
//! descriptor out): new layer descriptors, manifests rewritten as OCI, indexes with new
//! children. No i/o, so every rule is unit-tested on its own.

use std::collections::BTreeMap;

use crate::crypto::layer::strip_annotations;

use super::digest::Digest;
use super::manifest::{Annotations, Descriptor, Index, Manifest};
use super::media_type;

/// The descriptor fields that describe content and so become wrong when the content changes.
fn drop_content_fields(d: &mut Descriptor) {
    // `urls` point at the old bytes (foreign/non-distributable), `data` embeds them.
    d.urls = None;
    d.extra.remove("data");
}

/// The descriptor of a layer after encryption: the `+encrypted` media type, the ciphertext
/// digest and size, and the old non-ocicrypt annotations plus the ocicrypt ones.
pub fn encrypted_layer(
    old: &Descriptor,
    media_type: &str,
    digest: Digest,
    size: u64,
    enc_annotations: &Annotations,
) -> Descriptor {
    let mut d = old.clone();
    d.media_type = media_type.to_string();
    d.digest = digest;
    d.size = size;
    drop_content_fields(&mut d);
    let mut annotations = strip_annotations(&old.annotations());
    annotations.extend(enc_annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
    d.set_annotations(annotations);
    d
}

/// The descriptor of an already encrypted layer after recipients were added: same blob,
/// the complete new set of ocicrypt annotations.
pub fn recipients_added(old: &Descriptor, enc_annotations: &Annotations) -> Descriptor {
    let mut d = old.clone();
    let mut annotations = strip_annotations(&old.annotations());
    annotations.extend(enc_annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
    d.set_annotations(annotations);
    d
}

/// The descriptor of a layer after decryption: the plain OCI media type, the plaintext digest
/// and size, and the annotations without the ocicrypt ones.
pub fn decrypted_layer(
    old: &Descriptor,
    media_type: &str,
    digest: Digest,
    size: u64,
) -> Descriptor {
    let mut d = old.clone();
    d.media_type = media_type.to_string();
    d.digest = digest;
    d.size = size;
    drop_content_fields(&mut d);
    d.set_annotations(strip_annotations(&old.annotations()));
    d
}

/// A manifest with some layers replaced, written as an OCI manifest: the OCI media type, a
/// Docker config type becomes the OCI config type, the other layers' Docker types become OCI
/// types. The config blob (and so the diff_ids) and the manifest annotations stay.
pub fn rewrite_manifest(old: &Manifest, replaced: &BTreeMap<usize, Descriptor>) -> Manifest {
    let mut m = old.clone();
    m.media_type = Some(media_type::OCI_MANIFEST.to_string());
    m.config.media_type = media_type::oci_config_type(&m.config.media_type).to_string();
    for (i, layer) in m.layers.iter_mut().enumerate() {
        match replaced.get(&i) {
            Some(new) => *layer = new.clone(),
            None => layer.media_type = media_type::oci_layer_type(&layer.media_type).to_string(),
        }
    }
    m
}

/// An index with new child descriptors, written as an OCI index.
pub fn rewrite_index(old: &Index, children: Vec<Descriptor>) -> Index {
    let mut i = old.clone();
    i.media_type = Some(media_type::OCI_INDEX.to_string());
    i.manifests = children;
    i
}

/// The descriptor of a rewritten manifest or index: new media type, digest and size; its
/// platform, annotations and other fields stay.
pub fn node_descriptor(
    old: &Descriptor,
    media_type: &str,
    digest: Digest,
    size: u64,
) -> Descriptor {
    let mut d = old.clone();
    d.media_type = media_type.to_string();
    d.digest = digest;
    d.size = size;
    drop_content_fields(&mut d);
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::manifest::{DescriptorPlatform, Node};
    use crate::image::media_type::*;

    fn ann(pairs: &[(&str, &str)]) -> Annotations {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn layer(mt: &str, data: &[u8], a: &[(&str, &str)]) -> Descriptor {
        let mut d = Descriptor::new(mt, Digest::of_bytes(data), data.len() as u64);
        d.set_annotations(ann(a));
        d
    }

    #[test]
    fn encrypted_layer_gets_type_digest_and_merged_annotations() {
        let mut old = layer(
            DOCKER_LAYER_GZIP,
            b"plain",
            &[
                ("com.example.keep", "1"),
                ("org.opencontainers.image.enc.keys.jwe", "stale"),
            ],
        );
        old.urls = Some(vec!["https://example.com/layer".into()]);
        old.extra.insert("data".into(), "cGxhaW4=".into());
        old.extra.insert("artifactType".into(), "x".into());
        let enc = ann(&[
            ("org.opencontainers.image.enc.keys.jwe", "new"),
            ("org.opencontainers.image.enc.pubopts", "p"),
        ]);
        let d = encrypted_layer(&old, OCI_LAYER_GZIP_ENC, Digest::of_bytes(b"ct"), 2, &enc);
        assert_eq!(d.media_type, OCI_LAYER_GZIP_ENC);
        assert_eq!(d.digest, Digest::of_bytes(b"ct"));
        assert_eq!(d.size, 2);
        assert_eq!(
            d.annotations(),
            ann(&[
                ("com.example.keep", "1"),
                ("org.opencontainers.image.enc.keys.jwe", "new"),
                ("org.opencontainers.image.enc.pubopts", "p"),
            ])
        );
        assert_eq!(d.urls, None);
        assert!(!d.extra.contains_key("data"));
        assert_eq!(d.extra["artifactType"], "x");
    }

    #[test]
    fn decrypted_layer_loses_only_ocicrypt_annotations() {
        let old = layer(
            OCI_LAYER_ZSTD_ENC,
            b"ct",
            &[
                ("org.opencontainers.image.enc.keys.jwe", "k"),
                ("org.opencontainers.image.enc.pubopts", "p"),
                ("org.opencontainers.image.title", "t"),
            ],
        );
        let d = decrypted_layer(&old, OCI_LAYER_ZSTD, Digest::of_bytes(b"plain"), 5);
        assert_eq!(d.media_type, OCI_LAYER_ZSTD);
        assert_eq!(d.size, 5);
        assert_eq!(
            d.annotations(),
            ann(&[("org.opencontainers.image.title", "t")])
        );
        let bare = layer(
            OCI_LAYER_TAR_ENC,
            b"ct",
            &[("org.opencontainers.image.enc.keys.jwe", "k")],
        );
        let d = decrypted_layer(&bare, OCI_LAYER_TAR, Digest::of_bytes(b"p"), 1);
        assert!(d.annotations.is_none(), "no empty annotations object");
    }

    #[test]
    fn recipients_added_keeps_the_blob() {
        let old = layer(
            OCI_LAYER_GZIP_ENC,
            b"ct",
            &[
                ("org.opencontainers.image.enc.keys.jwe", "a"),
                ("org.opencontainers.image.enc.pubopts", "p"),
                ("x", "y"),
            ],
        );
        let new = ann(&[
            ("org.opencontainers.image.enc.keys.jwe", "a,b"),
            ("org.opencontainers.image.enc.pubopts", "p"),
        ]);
        let d = recipients_added(&old, &new);
        assert_eq!(d.digest, old.digest);
        assert_eq!(d.size, old.size);
        assert_eq!(d.media_type, old.media_type);
        assert_eq!(
            d.annotation("org.opencontainers.image.enc.keys.jwe"),
            Some("a,b")
        );
        assert_eq!(d.annotation("x"), Some("y"));
    }

    #[test]
    fn docker_manifest_becomes_oci_with_config_and_diff_ids_untouched() {
        let bytes =
            include_bytes!("../../tests/data/image/samples/enc-format-v2s2-BROKEN-manifest.json");
        let desc = Descriptor::new(DOCKER_MANIFEST, Digest::of_bytes(bytes), bytes.len() as u64);
        let Node::Manifest(mut m) = crate::image::manifest::parse_node(bytes, &desc).unwrap()
        else {
            panic!("not a manifest")
        };
        m.layers.push(layer(DOCKER_LAYER_TAR, b"second", &[]));
        m.layers.push(layer(DOCKER_LAYER_FOREIGN, b"foreign", &[]));
        m.annotations = Some(ann(&[("org.opencontainers.image.created", "now")]));
        let mut replaced = BTreeMap::new();
        replaced.insert(
            0,
            encrypted_layer(
                &m.layers[0],
                OCI_LAYER_GZIP_ENC,
                Digest::of_bytes(b"c"),
                1,
                &ann(&[]),
            ),
        );
        let out = rewrite_manifest(&m, &replaced);
        assert_eq!(out.media_type.as_deref(), Some(OCI_MANIFEST));
        assert_eq!(out.config.media_type, OCI_CONFIG);
        assert_eq!(out.config.digest, m.config.digest);
        assert_eq!(out.config.size, m.config.size);
        assert_eq!(out.layers[0].media_type, OCI_LAYER_GZIP_ENC);
        assert_eq!(out.layers[1].media_type, OCI_LAYER_TAR);
        assert_eq!(out.layers[1].digest, m.layers[1].digest);
        assert_eq!(
            out.layers[2].media_type, DOCKER_LAYER_FOREIGN,
            "foreign layers are never touched"
        );
        assert_eq!(out.annotations, m.annotations);
    }

    #[test]
    fn index_rewrite_keeps_platforms_and_becomes_oci() {
        let mut child = Descriptor::new(DOCKER_MANIFEST, Digest::of_bytes(b"m"), 1);
        child.platform = Some(DescriptorPlatform {
            architecture: "arm64".into(),
            os: "linux".into(),
            os_version: None,
            os_features: None,
            variant: Some("v8".into()),
            extra: Default::default(),
        });
        let mut index = crate::image::manifest::Index::empty();
        index.media_type = Some(DOCKER_MANIFEST_LIST.into());
        index.manifests = vec![child.clone()];
        let new_child = node_descriptor(&child, OCI_MANIFEST, Digest::of_bytes(b"n"), 2);
        assert_eq!(new_child.platform, child.platform);
        let out = rewrite_index(&index, vec![new_child.clone()]);
        assert_eq!(out.media_type.as_deref(), Some(OCI_INDEX));
        assert_eq!(out.manifests, vec![new_child]);
    }
}
