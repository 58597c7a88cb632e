//! `rrun logout`: remove a registry's stored credentials from every credentials file.

use rrun::image::registry::AuthFiles;

use super::login::registry_arg;
use crate::cli::args::LogoutArgs;

/// Run the command.
pub fn run(args: LogoutArgs) -> anyhow::Result<()> {
    let registry = registry_arg(&args.registry);
    let changed = AuthFiles::from_env()?.remove(&registry)?;
    if changed.is_empty() {
        eprintln!("not logged in to {registry}");
    } else {
        for f in &changed {
            eprintln!(
                "removed the credentials for {registry} from {}",
                f.display()
            );
        }
        println!("Removed login credentials for {registry}");
    }
    Ok(())
}
