//! `rrun image save`: copy a stored image to an OCI layout or archive.

use crate::cli::args::{Globals, SaveArgs};

/// Run the command.
pub fn run(globals: &Globals, args: SaveArgs) -> anyhow::Result<()> {
    let dst = super::image_ref(&args.dst, globals)?;
    let store = rrun::image::store::Store::open_existing(&globals.root)?;
    let top = store.save(&args.image, &dst)?;
    println!("saved {} to {dst} (manifest {})", args.image, top.digest);
    Ok(())
}
