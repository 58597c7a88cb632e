//! `rrun rm`: remove containers (and what a crashed rrun left behind).

use std::io::Write as _;

use rrun::runtime::{manage, StateDir};

use crate::cli::args::{Globals, RmArgs};

/// Run the command.
pub fn run(globals: &Globals, a: RmArgs) -> anyhow::Result<()> {
    let state = StateDir::new(&globals.state);
    let mut out = std::io::stdout().lock();
    for c in &a.containers {
        manage::remove(&state, c, a.force)?;
        writeln!(out, "{c}")?;
    }
    Ok(())
}
