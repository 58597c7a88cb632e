//! `rrun image prune`: remove the blobs and snapshots no stored image needs.

use rrun::image::error::ImageError;
use rrun::image::store::Store;

use crate::cli::args::{Globals, PruneArgs};

/// Run the command.
pub fn run(globals: &Globals, _args: PruneArgs) -> anyhow::Result<()> {
    let store = match Store::open_existing(&globals.root) {
        Ok(store) => store,
        Err(ImageError::NoStore { .. }) => {
            println!(
                "nothing to prune: there is no store at {}",
                globals.root.display()
            );
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let s = store.prune()?;
    println!(
        "removed {} blobs ({}) and {} snapshots",
        s.blobs_removed,
        super::images::human_size(s.bytes_freed),
        s.snapshots_removed
    );
    Ok(())
}
