//! `rrun image encrypt`: encrypt layers for recipients, or add recipients to encrypted layers.

use rrun::crypto::EncryptConfig;
use rrun::image::crypt;

use rrun::image::reference::ImageRef;

use crate::cli::args::{EncryptArgs, Globals};
use crate::cli::log;

/// Run the command.
pub fn run(globals: &Globals, args: EncryptArgs) -> anyhow::Result<()> {
    let src = super::image_ref(&args.src, globals)?;
    let dst = super::image_ref(&args.dst, globals)?;
    let filter = super::filter(&args.filter)?;
    let dc = super::decrypt_config(&args.keys)?;
    let ec = EncryptConfig::from_specs(&args.recipients, dc)?;
    let summary = crypt::encrypt_image(&src, &dst, &ec, &filter)?;
    println!(
        "encrypted {} of {} layers: {dst} (manifest {})",
        summary.layers_changed, summary.layers_total, summary.manifest_digest
    );
    if summary.layers_changed > 0 && same_layout(&src, &dst) {
        log::warn(format!(
            "{} still holds the plaintext layer blobs next to the encrypted ones; \
             copy the encrypted image to a new layout before you share it",
            dst.path().display()
        ));
    }
    Ok(())
}

/// True when both references name the same OCI layout directory.
fn same_layout(a: &ImageRef, b: &ImageRef) -> bool {
    matches!((a, b), (ImageRef::Oci { .. }, ImageRef::Oci { .. }))
        && std::fs::canonicalize(a.path())
            .ok()
            .is_some_and(|p| Some(p) == std::fs::canonicalize(b.path()).ok())
}
