//! `rrun tag`: give a stored image more names.

use rrun::image::store::parse_new_name;

use crate::cli::args::{Globals, TagArgs};

/// Run the command.
pub fn run(globals: &Globals, args: TagArgs) -> anyhow::Result<()> {
    // Every new name is checked before the first is written.
    for dst in &args.dst {
        parse_new_name(dst)?;
    }
    let store = rrun::image::store::Store::open_existing(&globals.root)?;
    for dst in &args.dst {
        store.tag(&args.src, dst)?;
    }
    Ok(())
}
