//! Progress lines on stderr for long work (downloads, fitting, training), throttled to a few a second.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Reports progress on stderr; redraws in place on a terminal, prints occasional lines otherwise.
#[derive(Debug)]
pub struct Progress {
    label: &'static str,
    started: Instant,
    last: Option<Instant>,
    terminal: bool,
}

impl Progress {
    pub fn new(label: &'static str) -> Self {
        Self {
            label,
            started: Instant::now(),
            last: None,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn due(&mut self) -> bool {
        let every = if self.terminal {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(2)
        };
        let now = Instant::now();
        if self.last.is_some_and(|l| now - l < every) {
            return false;
        }
        self.last = Some(now);
        true
    }

    fn emit(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal {
            write!(err, "\r\x1b[2K{}: {text}", self.label)
        } else {
            writeln!(err, "{}: {text}", self.label)
        };
    }

    /// Bytes received so far of `total` (when known).
    pub fn bytes(&mut self, done: u64, total: Option<u64>) {
        if !self.due() {
            return;
        }
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let text = match total {
            Some(t) if t > 0 => format!(
                "{:.1} / {:.1} MiB ({:.0}%)",
                mib(done),
                mib(t),
                100.0 * done as f64 / t as f64
            ),
            _ => format!("{:.1} MiB", mib(done)),
        };
        self.emit(&text);
    }

    /// Rows done so far of `total`.
    pub fn rows(&mut self, done: u64, total: u64) {
        if !self.due() {
            return;
        }
        let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        let text = format!(
            "{done} / {total} rows ({:.0}%, {rate:.0} rows/s)",
            100.0 * done as f64 / total.max(1) as f64
        );
        self.emit(&text);
    }

    /// Ends the progress display with the elapsed time.
    pub fn finish(&mut self) {
        let text = format!("done in {:.1} s", self.started.elapsed().as_secs_f64());
        self.emit(&text);
        if self.terminal {
            eprintln!();
        }
    }
}
