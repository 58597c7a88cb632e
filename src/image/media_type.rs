//! Media types of manifests, configs and layers, and the plain <-> `+encrypted` layer mapping
//! (imgcrypt's `encryptLayer`/`decryptLayer`, except that decryption always yields OCI types).

use super::error::{ImageError, Result};

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker schema2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker schema1 manifests (refused).
const DOCKER_SCHEMA1: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

/// OCI uncompressed layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// OCI encrypted uncompressed layer.
pub const OCI_LAYER_TAR_ENC: &str = "application/vnd.oci.image.layer.v1.tar+encrypted";
/// OCI encrypted gzip layer.
pub const OCI_LAYER_GZIP_ENC: &str = "application/vnd.oci.image.layer.v1.tar+gzip+encrypted";
/// OCI encrypted zstd layer.
pub const OCI_LAYER_ZSTD_ENC: &str = "application/vnd.oci.image.layer.v1.tar+zstd+encrypted";
/// OCI non-distributable layers, plain and encrypted.
pub const OCI_ND_TAR: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
/// See [`OCI_ND_TAR`].
pub const OCI_ND_GZIP: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
/// See [`OCI_ND_TAR`].
pub const OCI_ND_ZSTD: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
/// See [`OCI_ND_TAR`].
pub const OCI_ND_TAR_ENC: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+encrypted";
/// See [`OCI_ND_TAR`].
pub const OCI_ND_GZIP_ENC: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip+encrypted";
/// See [`OCI_ND_TAR`].
pub const OCI_ND_ZSTD_ENC: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd+encrypted";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker uncompressed layer.
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker zstd layer (containerd's `MediaTypeDockerSchema2LayerZstd`).
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
/// Docker foreign (Windows base) layer: never touched.
pub const DOCKER_LAYER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Docker foreign uncompressed layer: never touched.
pub const DOCKER_LAYER_FOREIGN_TAR: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar";
/// in-toto attestation layer: never touched.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";

/// What rrun may do with a layer of a given media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// A plain layer; encrypting it gives the contained `+encrypted` type.
    Plain { encrypted: &'static str },
    /// An ocicrypt layer; decrypting it gives the contained plain OCI type.
    Encrypted { plain: &'static str },
    /// A layer rrun copies but never encrypts or decrypts (foreign, in-toto).
    PassThrough,
}

/// (plain, encrypted) pairs, OCI types first so that decryption maps to them.
const PAIRS: [(&str, &str); 9] = [
    (OCI_LAYER_TAR, OCI_LAYER_TAR_ENC),
    (OCI_LAYER_GZIP, OCI_LAYER_GZIP_ENC),
    (OCI_LAYER_ZSTD, OCI_LAYER_ZSTD_ENC),
    (OCI_ND_TAR, OCI_ND_TAR_ENC),
    (OCI_ND_GZIP, OCI_ND_GZIP_ENC),
    (OCI_ND_ZSTD, OCI_ND_ZSTD_ENC),
    (DOCKER_LAYER_TAR, OCI_LAYER_TAR_ENC),
    (DOCKER_LAYER_GZIP, OCI_LAYER_GZIP_ENC),
    (DOCKER_LAYER_ZSTD, OCI_LAYER_ZSTD_ENC),
];

/// Classify a layer media type; an unknown one is an error, never passed through.
pub fn layer_kind(media_type: &str) -> Result<LayerKind> {
    if let Some((_, enc)) = PAIRS.iter().find(|(plain, _)| *plain == media_type) {
        return Ok(LayerKind::Plain { encrypted: enc });
    }
    if let Some((plain, _)) = PAIRS.iter().find(|(_, enc)| *enc == media_type) {
        return Ok(LayerKind::Encrypted { plain });
    }
    if [DOCKER_LAYER_FOREIGN, DOCKER_LAYER_FOREIGN_TAR, IN_TOTO].contains(&media_type) {
        return Ok(LayerKind::PassThrough);
    }
    Err(ImageError::UnknownMediaType {
        media_type: media_type.to_string(),
    })
}

/// The OCI media type for a layer in a manifest that is rewritten as an OCI manifest: Docker
/// plain types become their OCI equivalents, everything else stays.
pub fn oci_layer_type(media_type: &str) -> &str {
    match media_type {
        DOCKER_LAYER_GZIP => OCI_LAYER_GZIP,
        DOCKER_LAYER_TAR => OCI_LAYER_TAR,
        DOCKER_LAYER_ZSTD => OCI_LAYER_ZSTD,
        other => other,
    }
}

/// The OCI media type for a config of a manifest rewritten as an OCI manifest.
pub fn oci_config_type(media_type: &str) -> &str {
    match media_type {
        DOCKER_CONFIG => OCI_CONFIG,
        other => other,
    }
}

/// What a manifest-level blob is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// An image manifest (OCI or Docker schema2).
    Manifest,
    /// An image index (OCI index or Docker manifest list).
    Index,
}

/// Classify the media type of something an index points to.
pub fn manifest_kind(media_type: &str) -> Result<ManifestKind> {
    match media_type {
        OCI_MANIFEST | DOCKER_MANIFEST => Ok(ManifestKind::Manifest),
        OCI_INDEX | DOCKER_MANIFEST_LIST => Ok(ManifestKind::Index),
        m if DOCKER_SCHEMA1.contains(&m) => Err(ImageError::UnsupportedManifest {
            media_type: m.to_string(),
            hint: "Docker schema1 images are not supported; convert the image with skopeo copy --format oci".into(),
        }),
        m => Err(ImageError::UnsupportedManifest {
            media_type: m.to_string(),
            hint: "rrun reads OCI manifests and indexes and Docker schema2 manifests and lists"
                .into(),
        }),
    }
}

/// True for the Docker manifest-level types (which rrun rewrites as OCI when it changes them).
pub fn is_docker(media_type: &str) -> bool {
    media_type == DOCKER_MANIFEST || media_type == DOCKER_MANIFEST_LIST
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_types_map_to_encrypted_and_back_to_oci() {
        let cases = [
            (OCI_LAYER_TAR, OCI_LAYER_TAR_ENC, OCI_LAYER_TAR),
            (OCI_LAYER_GZIP, OCI_LAYER_GZIP_ENC, OCI_LAYER_GZIP),
            (OCI_LAYER_ZSTD, OCI_LAYER_ZSTD_ENC, OCI_LAYER_ZSTD),
            (DOCKER_LAYER_GZIP, OCI_LAYER_GZIP_ENC, OCI_LAYER_GZIP),
            (DOCKER_LAYER_TAR, OCI_LAYER_TAR_ENC, OCI_LAYER_TAR),
            (DOCKER_LAYER_ZSTD, OCI_LAYER_ZSTD_ENC, OCI_LAYER_ZSTD),
            (OCI_ND_TAR, OCI_ND_TAR_ENC, OCI_ND_TAR),
            (OCI_ND_GZIP, OCI_ND_GZIP_ENC, OCI_ND_GZIP),
            (OCI_ND_ZSTD, OCI_ND_ZSTD_ENC, OCI_ND_ZSTD),
        ];
        for (plain, enc, back) in cases {
            assert_eq!(
                layer_kind(plain).unwrap(),
                LayerKind::Plain { encrypted: enc },
                "{plain}"
            );
            assert_eq!(
                layer_kind(enc).unwrap(),
                LayerKind::Encrypted { plain: back },
                "{enc}"
            );
        }
    }

    #[test]
    fn foreign_and_in_toto_pass_through() {
        for m in [DOCKER_LAYER_FOREIGN, DOCKER_LAYER_FOREIGN_TAR, IN_TOTO] {
            assert_eq!(layer_kind(m).unwrap(), LayerKind::PassThrough);
        }
    }

    #[test]
    fn unknown_layer_type_is_refused_with_its_name() {
        for m in [
            "application/vnd.oci.image.layer.v1.tar+bzip2",
            "application/vnd.wasm.content.layer.v1+wasm+encrypted",
            "application/octet-stream",
            "",
        ] {
            let err = layer_kind(m).unwrap_err();
            assert!(matches!(&err, ImageError::UnknownMediaType { media_type } if media_type == m));
            assert!(err.to_string().contains("rrun will not pass it through"));
        }
    }

    #[test]
    fn docker_types_are_renamed_for_oci_manifests() {
        assert_eq!(oci_layer_type(DOCKER_LAYER_GZIP), OCI_LAYER_GZIP);
        assert_eq!(oci_layer_type(DOCKER_LAYER_TAR), OCI_LAYER_TAR);
        assert_eq!(oci_layer_type(DOCKER_LAYER_FOREIGN), DOCKER_LAYER_FOREIGN);
        assert_eq!(oci_layer_type(OCI_LAYER_GZIP_ENC), OCI_LAYER_GZIP_ENC);
        assert_eq!(oci_config_type(DOCKER_CONFIG), OCI_CONFIG);
        assert_eq!(oci_config_type(OCI_CONFIG), OCI_CONFIG);
    }

    #[test]
    fn manifest_kinds() {
        assert_eq!(manifest_kind(OCI_MANIFEST).unwrap(), ManifestKind::Manifest);
        assert_eq!(
            manifest_kind(DOCKER_MANIFEST).unwrap(),
            ManifestKind::Manifest
        );
        assert_eq!(manifest_kind(OCI_INDEX).unwrap(), ManifestKind::Index);
        assert_eq!(
            manifest_kind(DOCKER_MANIFEST_LIST).unwrap(),
            ManifestKind::Index
        );
        let err =
            manifest_kind("application/vnd.docker.distribution.manifest.v1+prettyjws").unwrap_err();
        assert!(err.to_string().contains("schema1"), "{err}");
        assert!(manifest_kind(OCI_LAYER_GZIP).is_err());
    }
}
