//! `rrun rmi`: take names away from stored images (all or nothing); blobs wait for prune.

use crate::cli::args::{Globals, RmiArgs};

/// Run the command.
pub fn run(globals: &Globals, args: RmiArgs) -> anyhow::Result<()> {
    let store = rrun::image::store::Store::open_existing(&globals.root)?;
    let names: Vec<&str> = args.images.iter().map(String::as_str).collect();
    for removed in store.remove(&names, args.force)? {
        for name in &removed.untagged {
            println!("Untagged: {name}");
        }
        if let Some(id) = &removed.deleted {
            println!("Deleted: {}", id.hex());
        }
    }
    Ok(())
}
