//! `rrun image layerinfo`: the ctr-enc table of layers, encryption schemes and recipients.

use std::io::Write as _;

use rrun::crypto::config::LayerInfoConfig;
use rrun::image::crypt::{self, LayerInfo};

use crate::cli::args::{Format, Globals, LayerinfoArgs};

/// Run the command.
pub fn run(globals: &Globals, args: LayerinfoArgs) -> anyhow::Result<()> {
    let image = super::image_ref(&args.image, globals)?;
    let filter = super::filter(&args.filter)?;
    let cfg = LayerInfoConfig::new(args.gpg_homedir.clone());
    let rows = crypt::layer_info_with(&image, &filter, &cfg)?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)?;
        }
        Format::Table => write_table(&mut out, &rows)?,
    }
    out.flush()?;
    Ok(())
}

fn write_table(out: &mut impl std::io::Write, rows: &[LayerInfo]) -> std::io::Result<()> {
    let header = [
        "#",
        "DIGEST",
        "PLATFORM",
        "SIZE",
        "ENCRYPTION",
        "RECIPIENTS",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.index.to_string(),
                r.digest.clone(),
                r.platform.clone(),
                r.size.to_string(),
                r.encryption.join(","),
                r.recipients.join(", "),
            ]
        })
        .collect();
    super::write_table(out, &header, &cells)
}
