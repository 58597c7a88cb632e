//! `rrun stop`: SIGTERM, then SIGKILL after the grace period.

use std::io::Write as _;
use std::time::Duration;

use rrun::runtime::{manage, StateDir};

use crate::cli::args::{Globals, StopArgs};

/// Run the command.
pub fn run(globals: &Globals, a: StopArgs) -> anyhow::Result<()> {
    let state = StateDir::new(&globals.state);
    let mut out = std::io::stdout().lock();
    for c in &a.containers {
        manage::stop(&state, c, Duration::from_secs(a.time))?;
        writeln!(out, "{c}")?;
    }
    Ok(())
}
