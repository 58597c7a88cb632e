//! `rrun image import`: build a one-layer image from a root filesystem directory or tar.

use rrun::image::import::{self, ImportOptions};
use rrun::image::platform::Platform;

use crate::cli::args::{Globals, ImportArgs};

/// Run the command.
pub fn run(globals: &Globals, args: ImportArgs) -> anyhow::Result<()> {
    let dst = super::image_ref(&args.dst, globals)?;
    let platform = match &args.platform {
        Some(p) => super::platform(p)?,
        None => Platform::host(),
    };
    if !args.source.exists() {
        anyhow::bail!(
            "{}: no such file or directory: give a root filesystem directory or a tar",
            args.source.display()
        );
    }
    let opts = ImportOptions {
        cmd: args.cmd,
        entrypoint: args.entrypoint,
        env: args.env,
        workdir: args.workdir,
        platform,
    };
    let summary = import::import(&args.source, &dst, &opts)?;
    println!(
        "imported {} into {dst}: manifest {}, layer {} ({} bytes)",
        args.source.display(),
        summary.manifest_digest,
        summary.layer_digest,
        summary.size
    );
    Ok(())
}
