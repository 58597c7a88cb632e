//! `rrun logs`: print a detached container's output.

use rrun::runtime::{manage, StateDir};

use crate::cli::args::{Globals, LogsArgs};

/// Run the command.
pub fn run(globals: &Globals, a: LogsArgs) -> anyhow::Result<()> {
    let state = StateDir::new(&globals.state);
    let mut out = std::io::stdout().lock();
    manage::logs(&state, &a.container, a.follow, &mut out)?;
    Ok(())
}
