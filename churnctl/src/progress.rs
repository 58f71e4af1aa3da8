//! Progress bars on stderr for long work (downloads, sampling, training): indicatif bars with rate and
//! ETA on a terminal, a plain line every few seconds otherwise (logs, CI, pipes).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What the bar counts.
#[derive(Debug, Clone, Copy)]
enum Unit {
    Bytes,
    Rows,
    Steps,
}

/// A progress display: a bar on a terminal, occasional plain lines elsewhere.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    label: &'static str,
    unit: Unit,
    terminal: bool,
    started: Instant,
    last_line: Option<Instant>,
}

/// How often a plain line is printed when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(2);

impl Progress {
    fn new(label: &'static str, unit: Unit, total: Option<u64>) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = match total {
            Some(total) => ProgressBar::new(total),
            None => ProgressBar::new_spinner(),
        };
        let template = match (unit, total.is_some()) {
            (Unit::Bytes, true) => {
                "{prefix:.bold} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, ETA {eta}) {msg}"
            }
            (Unit::Bytes, false) => "{prefix:.bold} {spinner} {bytes} ({bytes_per_sec}) {msg}",
            (Unit::Rows, true) => {
                "{prefix:.bold} [{bar:30}] {human_pos}/{human_len} rows ({per_sec}, ETA {eta}) {msg}"
            }
            (Unit::Rows, false) => "{prefix:.bold} {spinner} {human_pos} rows ({per_sec}) {msg}",
            (Unit::Steps, _) => "{prefix:.bold} {spinner} [{elapsed}] {msg}",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(label);
        if terminal {
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
            bar.enable_steady_tick(Duration::from_millis(120));
        } else {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        Self {
            bar,
            label,
            unit,
            terminal,
            started: Instant::now(),
            last_line: None,
        }
    }

    /// A download of `total` bytes (when known).
    pub fn bytes(label: &'static str, total: Option<u64>) -> Self {
        Self::new(label, Unit::Bytes, total)
    }

    /// Work over `total` rows.
    pub fn rows(label: &'static str, total: u64) -> Self {
        Self::new(label, Unit::Rows, Some(total))
    }

    /// Work of unknown length, described by messages (e.g. a model search).
    pub fn steps(label: &'static str) -> Self {
        Self::new(label, Unit::Steps, None)
    }

    /// Sets the total once it is known (e.g. from a download's Content-Length).
    pub fn set_total(&self, total: u64) {
        if self.bar.length() != Some(total) {
            self.bar.set_length(total);
        }
    }

    /// Moves the bar to `done`.
    pub fn set(&mut self, done: u64) {
        self.bar.set_position(done);
        self.plain_line(None);
    }

    /// Shows `message` beside the bar.
    pub fn message(&mut self, message: String) {
        self.bar.set_message(message.clone());
        self.plain_line(Some(&message));
    }

    /// Prints a line above the bar (or as is, without a terminal).
    pub fn println(&self, line: &str) {
        if self.terminal {
            self.bar.println(line);
        } else {
            eprintln!("{line}");
        }
    }

    fn plain_line(&mut self, message: Option<&str>) {
        if self.terminal || self.last_line.is_some_and(|l| l.elapsed() < LINE_EVERY) {
            return;
        }
        self.last_line = Some(Instant::now());
        let done = self.bar.position();
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let count = match (self.unit, self.bar.length()) {
            (Unit::Bytes, Some(total)) if total > 0 => format!(
                "{:.1} / {:.1} MiB ({:.0}%)",
                mib(done),
                mib(total),
                100.0 * done as f64 / total as f64
            ),
            (Unit::Bytes, _) => format!("{:.1} MiB", mib(done)),
            (Unit::Rows, Some(total)) => format!(
                "{done} / {total} rows ({:.0}%, {:.0} rows/s)",
                100.0 * done as f64 / total.max(1) as f64,
                done as f64 / secs
            ),
            (Unit::Rows, None) => format!("{done} rows"),
            (Unit::Steps, _) => format!("{secs:.0} s"),
        };
        match message {
            Some(m) => eprintln!("{}: {count} {m}", self.label),
            None => eprintln!("{}: {count}", self.label),
        }
    }

    /// Ends the display with the elapsed time.
    pub fn finish(self) {
        let text = format!("done in {:.1} s", self.started.elapsed().as_secs_f64());
        if self.terminal {
            self.bar.finish_with_message(text);
        } else {
            eprintln!("{}: {text}", self.label);
        }
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
