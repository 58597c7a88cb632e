//! Progress output of pull and push on stderr: one indicatif bar per blob on a terminal, plain
//! lines otherwise, nothing with `--quiet`.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use rrun::image::digest::Digest;
use rrun::image::registry::client::RetryNotifier;
use rrun::image::registry::{BlobOutcome, Progress};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Bars,
    Lines,
    Quiet,
}

/// Progress of one pull or push.
#[derive(Debug)]
pub struct TransferProgress {
    mode: Mode,
    verb: &'static str,
    multi: MultiProgress,
    bars: Mutex<HashMap<Digest, ProgressBar>>,
}

/// `1 layer`, `2 layers`.
pub fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// `12.3 MiB`.
fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

fn short(d: &Digest) -> &str {
    &d.hex()[..12]
}

impl TransferProgress {
    /// Progress for `verb` ("pull" or "push"): bars when stderr is a terminal.
    pub fn new(quiet: bool, verb: &'static str) -> Arc<Self> {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        };
        let multi = MultiProgress::with_draw_target(match mode {
            Mode::Bars => ProgressDrawTarget::stderr(),
            _ => ProgressDrawTarget::hidden(),
        });
        Arc::new(Self {
            mode,
            verb,
            multi,
            bars: Mutex::new(HashMap::new()),
        })
    }

    /// A notifier that prints retry messages the same way.
    pub fn notifier(self: &Arc<Self>) -> RetryNotifier {
        let me = Arc::clone(self);
        RetryNotifier(Arc::new(move |msg: &str| me.note(msg)))
    }

    fn line(&self, msg: &str) {
        match self.mode {
            Mode::Bars => {
                let _ = self.multi.println(msg);
            }
            Mode::Lines => eprintln!("{msg}"),
            Mode::Quiet => {}
        }
    }

    fn bar(&self, digest: &Digest) -> Option<ProgressBar> {
        self.bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(digest)
            .cloned()
    }

    /// Stop drawing (finished bars stay on the terminal).
    pub fn finish(&self) {
        for bar in self.bars.lock().unwrap_or_else(|e| e.into_inner()).values() {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
    }
}

impl Progress for TransferProgress {
    fn note(&self, message: &str) {
        self.line(message);
    }

    fn blob_started(&self, digest: &Digest, size: u64, done: u64) {
        match self.mode {
            Mode::Bars => {
                let style = ProgressStyle::with_template(
                    "{prefix} {bar:30.cyan/blue} {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
                let bar = self.multi.add(
                    ProgressBar::new(size)
                        .with_style(style)
                        .with_prefix(short(digest).to_string())
                        .with_position(done),
                );
                self.bars
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(digest.clone(), bar);
            }
            Mode::Lines => {
                let verb = if self.verb == "pull" {
                    "downloading"
                } else {
                    "uploading"
                };
                if done > 0 {
                    eprintln!(
                        "{} {verb} {} (resuming at {})",
                        short(digest),
                        human(size),
                        human(done)
                    );
                } else {
                    eprintln!("{} {verb} {}", short(digest), human(size));
                }
            }
            Mode::Quiet => {}
        }
    }

    fn blob_progress(&self, digest: &Digest, done: u64) {
        if let Some(bar) = self.bar(digest) {
            bar.set_position(done);
        }
    }

    fn blob_finished(&self, digest: &Digest, outcome: BlobOutcome) {
        let what = match (outcome, self.verb) {
            (BlobOutcome::Transferred, "pull") => "downloaded, verified",
            (BlobOutcome::Transferred, _) => "uploaded",
            (BlobOutcome::AlreadyThere, "pull") => "already stored",
            (BlobOutcome::AlreadyThere, _) => "already in the registry",
            (BlobOutcome::Resumed, _) => "resumed, verified",
            (BlobOutcome::Mounted, _) => "mounted from another repository",
        };
        match self.bar(digest) {
            Some(bar) => bar.finish_with_message(what),
            None => self.line(&format!("{} {what}", short(digest))),
        }
    }

    fn blob_failed(&self, digest: &Digest, error: &str) {
        match self.bar(digest) {
            Some(bar) => bar.abandon_with_message("failed"),
            None => self.line(&format!("{} failed: {error}", short(digest))),
        }
    }
}
