//! `rrun kill`: send a signal to containers.

use std::io::Write as _;

use rrun::runtime::{manage, StateDir};

use crate::cli::args::{Globals, KillArgs};

/// Run the command.
pub fn run(globals: &Globals, a: KillArgs) -> anyhow::Result<()> {
    let sig = manage::parse_signal(&a.signal)?;
    let state = StateDir::new(&globals.state);
    let mut out = std::io::stdout().lock();
    for c in &a.containers {
        manage::kill(&state, c, sig)?;
        writeln!(out, "{c}")?;
    }
    Ok(())
}
