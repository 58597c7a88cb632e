//! `rrun image layerinfo`: the ctr-enc table of layers, encryption schemes and recipients.

use std::io::Write as _;

use rrun::image::crypt::{self, LayerInfo};

use crate::cli::args::{Format, LayerinfoArgs};

/// Run the command.
pub fn run(args: LayerinfoArgs) -> anyhow::Result<()> {
    let image = super::image_ref(&args.image)?;
    let filter = super::filter(&args.filter)?;
    let rows = crypt::layer_info(&image, &filter)?;
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
    ]
    .map(String::from);
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.index.to_string(),
                r.digest.clone(),
                r.platform.clone(),
                r.size.to_string(),
                r.encryption.join(","),
                r.recipients.join(", "),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.len());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    for row in std::iter::once(&header).chain(&cells) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        writeln!(out, "{}", line.join("   ").trim_end())?;
    }
    Ok(())
}
