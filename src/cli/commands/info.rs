//! `rrun info`: the host's confinement features and rrun's paths, as text or JSON.

use std::io::Write as _;

use rrun::runtime::info;

use crate::cli::args::{Format, Globals, InfoArgs};

/// Run the command.
pub fn run(globals: &Globals, a: InfoArgs) -> anyhow::Result<()> {
    let i = info::probe(&globals.root, &globals.state);
    let mut out = std::io::stdout().lock();
    match a.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &i)?;
            writeln!(out)?;
        }
        Format::Table => out.write_all(i.to_text().as_bytes())?,
    }
    out.flush()?;
    Ok(())
}
