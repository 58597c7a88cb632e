//! `rrun ps`: list containers as a table or JSON.

use std::io::Write as _;

use rrun::runtime::state::ContainerRecord;
use rrun::runtime::{manage, StateDir};
use serde::Serialize;

use crate::cli::args::{Format, Globals, PsArgs};

/// One container as `ps --format json` prints it.
#[derive(Debug, Serialize)]
struct Row<'a> {
    id: &'a str,
    name: &'a str,
    image: &'a str,
    command: &'a [String],
    created: String,
    status: String,
    state: String,
    exit_code: Option<i32>,
    pid: Option<i32>,
}

/// Run the command.
pub fn run(globals: &Globals, a: PsArgs) -> anyhow::Result<()> {
    let state = StateDir::new(&globals.state);
    let recs = manage::list(&state, a.all)?;
    let now = chrono::Utc::now();
    let mut out = std::io::stdout().lock();
    match a.format {
        Format::Json => {
            let rows: Vec<Row<'_>> = recs.iter().map(|r| row(r, now)).collect();
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)?;
        }
        Format::Table => {
            writeln!(
                out,
                "{:<12}  {:<24}  {:<24}  {:<20}  {:<32}  NAMES",
                "CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS"
            )?;
            for r in &recs {
                let cmd = format!("\"{}\"", r.command.join(" "));
                writeln!(
                    out,
                    "{:<12}  {:<24}  {:<24}  {:<20}  {:<32}  {}",
                    r.id.short(),
                    cut(&r.image, 24),
                    cut(&cmd, 24),
                    r.created.format("%Y-%m-%d %H:%M:%S"),
                    r.status_line(now),
                    r.name
                )?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn row(r: &ContainerRecord, now: chrono::DateTime<chrono::Utc>) -> Row<'_> {
    let live = r.live_status();
    Row {
        id: r.id.as_str(),
        name: r.name.as_str(),
        image: &r.image,
        command: &r.command,
        created: r.created.to_rfc3339(),
        status: r.status_line(now),
        state: live.to_string(),
        exit_code: r.exit_code,
        pid: r.init.filter(|_| r.is_running()).map(|p| p.pid),
    }
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n - 3).collect();
        t.push_str("...");
        t
    }
}
