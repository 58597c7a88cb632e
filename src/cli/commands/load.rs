//! `rrun image load`: copy an image from an OCI layout or archive into the store.

use crate::cli::args::{Globals, LoadArgs};

/// Run the command.
pub fn run(globals: &Globals, args: LoadArgs) -> anyhow::Result<()> {
    let src = super::image_ref(&args.src, globals)?;
    let store = super::store(globals)?;
    let (name, top) = store.load(&src, args.name.as_deref())?;
    println!("Loaded image: {name} (manifest {})", top.digest);
    Ok(())
}
