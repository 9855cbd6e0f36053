//! A progress line for the long commands (`reprocess`, `migrate-store`,
//! `export`) while an operator watches: redrawn on stderr at most ten times
//! a second and wiped at the end. Only on a terminal: through a pipe, into
//! a file or the journal nothing is drawn, and stdout keeps only the data.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const REDRAW_EVERY: Duration = Duration::from_millis(100);

pub(super) struct Progress {
    what: String,
    unit: &'static str,
    total: Option<u64>,
    done: u64,
    drawn: Option<Instant>,
    on_terminal: bool,
}

impl Progress {
    /// Progress of `what`, counted in `unit`s, out of `total` when known.
    pub(super) fn new(what: impl Into<String>, unit: &'static str, total: Option<u64>) -> Progress {
        Progress {
            what: what.into(),
            unit,
            total,
            done: 0,
            drawn: None,
            on_terminal: std::io::stderr().is_terminal(),
        }
    }

    /// What is being done now (a table of `migrate-store`).
    pub(super) fn rename(&mut self, what: impl Into<String>) {
        self.what = what.into();
        self.drawn = None;
    }

    /// `done` so far.
    pub(super) fn set(&mut self, done: u64) {
        self.done = done;
        if !self.on_terminal || self.drawn.is_some_and(|t| t.elapsed() < REDRAW_EVERY) {
            return;
        }
        self.drawn = Some(Instant::now());
        // `\r` and erase-line: the line is redrawn in place.
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{}", self.line());
        let _ = err.flush();
    }

    /// One more.
    pub(super) fn step(&mut self, by: u64) {
        self.set(self.done + by);
    }

    fn line(&self) -> String {
        let done = thousands(self.done);
        match self.total {
            Some(total) if total > 0 => {
                let share = (self.done.min(total) * 100) / total;
                format!(
                    "{}: {done} of {} {} ({share} %)",
                    self.what,
                    thousands(total),
                    self.unit
                )
            }
            _ => format!("{}: {done} {}", self.what, self.unit),
        }
    }
}

impl Drop for Progress {
    /// Wipes the line: what comes next (the result, an error) starts clean.
    fn drop(&mut self) {
        if self.on_terminal && self.drawn.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

/// `1234567` → `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_counts_with_a_total_and_without() {
        let mut p = Progress::new("reprocess", "messages", Some(5000));
        p.on_terminal = false;
        p.set(1234);
        assert_eq!(p.line(), "reprocess: 1,234 of 5,000 messages (24 %)");
        let mut p = Progress::new("export", "reports", None);
        p.on_terminal = false;
        p.step(999);
        p.step(1);
        assert_eq!(p.line(), "export: 1,000 reports");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
