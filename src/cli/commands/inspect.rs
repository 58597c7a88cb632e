//! `rrun inspect`: stored images as a JSON array (manifests, configs, layers, encryption).

use std::io::Write as _;

use crate::cli::args::{Globals, InspectArgs};

/// Run the command.
pub fn run(globals: &Globals, args: InspectArgs) -> anyhow::Result<()> {
    let store = rrun::image::store::Store::open_existing(&globals.root)?;
    let values = args
        .images
        .iter()
        .map(|name| store.inspect(name))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &values)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}
