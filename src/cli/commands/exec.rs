//! `rrun exec`: run a command in a running container and exit with its code.

use rrun::runtime::{lifecycle, options, ExecOptions, StateDir};

use crate::cli::args::{ExecArgs, Globals};

/// Run the command.
pub fn run(globals: &Globals, a: ExecArgs) -> anyhow::Result<()> {
    let mut env = Vec::new();
    for e in &a.env {
        env.extend(options::parse_env(e)?);
    }
    let state = StateDir::new(&globals.state);
    let code = lifecycle::exec(
        &state,
        &a.container,
        ExecOptions {
            command: a.command,
            env,
            user: a.user,
            workdir: a.workdir,
            interactive: a.interactive,
            tty: a.tty,
        },
    )?;
    super::container_exit(code)
}
