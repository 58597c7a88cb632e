//! `rrun image decrypt`: decrypt layers with the given private keys.

use rrun::image::crypt;

use crate::cli::args::{DecryptArgs, Globals};

/// Run the command.
pub fn run(globals: &Globals, args: DecryptArgs) -> anyhow::Result<()> {
    let src = super::image_ref(&args.src, globals)?;
    let dst = super::image_ref(&args.dst, globals)?;
    let filter = super::filter(&args.filter)?;
    if args.keys.keys.is_empty() {
        anyhow::bail!("decrypt needs at least one private key: give it with --key FILE");
    }
    let dc = super::decrypt_config(&args.keys)?;
    let summary = crypt::decrypt_image(&src, &dst, &dc, &filter)?;
    if summary.layers_changed == 0 {
        println!("nothing to decrypt: no selected layer is encrypted; copied to {dst}");
    } else {
        println!(
            "decrypted {} of {} layers: {dst} (manifest {})",
            summary.layers_changed, summary.layers_total, summary.manifest_digest
        );
    }
    Ok(())
}
