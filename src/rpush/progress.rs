//! The progress line on a terminal (issue 7): while pushes run, one line on stderr,
//! redrawn in place, with per host the files and bytes done so far in the current push,
//! counted from the `--out-format` lines rsync already writes for every item.
//!
//! Only when stderr is a terminal and rpush is not `-q`: a log file or a journal gets
//! the one line per push it always had, never carriage returns. The line appears once a
//! push has run for [`DELAY`] (short pushes stay silent) and is redrawn at most every
//! [`EVERY`]. Log lines clear it first (see `Log`), and the next update redraws it.
//! When it draws is decided by [`Throttle`], which takes the time as an argument so
//! that it is tested without sleeping.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::rsync::ITEM_PREFIX;

/// A push shows progress once it has run this long.
pub const DELAY: Duration = Duration::from_millis(1000);
/// At most one redraw per this much time.
pub const EVERY: Duration = Duration::from_millis(200);

/// Per host: files and bytes of the running push.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub files: u64,
    pub bytes: u64,
}

/// When to draw: pure, on an injected clock.
#[derive(Debug, Default)]
pub struct Throttle {
    last: Option<Instant>,
}

impl Throttle {
    /// Whether to draw now, for a push that started at `started`.
    pub fn due(&mut self, started: Instant, now: Instant) -> bool {
        if now.saturating_duration_since(started) < DELAY {
            return false;
        }
        if self.last.is_some_and(|t| now.saturating_duration_since(t) < EVERY) {
            return false;
        }
        self.last = Some(now);
        true
    }
}

/// Counts the `--out-format` item lines in a stream of stdout chunks (lines may be
/// split between chunks).
#[derive(Debug, Default)]
pub struct LineCounter {
    partial: Vec<u8>,
    pub counts: Counts,
}

impl LineCounter {
    pub fn feed(&mut self, chunk: &[u8]) {
        self.partial.extend_from_slice(chunk);
        while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            if let Some(rest) = line.strip_prefix(ITEM_PREFIX) {
                // rpush-item:%i:%b — the byte count is the last field.
                let text = String::from_utf8_lossy(rest);
                let bytes = text.trim_end().rsplit(':').next().and_then(|b| b.parse::<u64>().ok());
                self.counts.files += 1;
                self.counts.bytes += bytes.unwrap_or(0);
            }
        }
        // Not an item line, or a silly long one: no need to keep it whole.
        if self.partial.len() > 64 * 1024 {
            self.partial.clear();
        }
    }
}

/// `12.3 MB` style.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The line itself.
pub fn render(hosts: &BTreeMap<String, Counts>) -> String {
    let parts: Vec<String> = hosts
        .iter()
        .map(|(h, c)| {
            format!(
                "{h}: {} file{}, {}",
                c.files,
                if c.files == 1 { "" } else { "s" },
                human_bytes(c.bytes)
            )
        })
        .collect();
    format!("rpush: pushing: {}", parts.join(" | "))
}

/// The shared progress line of all hosts.
#[derive(Default)]
pub struct Progress {
    state: Mutex<(BTreeMap<String, Counts>, Throttle)>,
}

impl Progress {
    /// A host's running push reached `c`; redraws when due.
    pub fn update(&self, host: &str, started: Instant, c: Counts) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.0.insert(host.to_string(), c);
        if st.1.due(started, Instant::now()) {
            let line = render(&st.0);
            let _ = std::io::stderr().lock().write_all(format!("\r\x1b[K{line}").as_bytes());
        }
    }

    /// A host's push ended: its entry goes (the push's log line says the rest).
    pub fn done(&self, host: &str) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.0.remove(host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_waits_for_the_delay_then_limits_the_rate() {
        let t0 = Instant::now();
        let mut th = Throttle::default();
        assert!(!th.due(t0, t0));
        assert!(!th.due(t0, t0 + DELAY - Duration::from_millis(1)));
        assert!(th.due(t0, t0 + DELAY));
        assert!(!th.due(t0, t0 + DELAY + EVERY - Duration::from_millis(1)));
        assert!(th.due(t0, t0 + DELAY + EVERY));
    }

    #[test]
    fn item_lines_are_counted_across_chunk_boundaries() {
        let mut c = LineCounter::default();
        c.feed(b"rpush-item:>f+++++++++:10");
        c.feed(b"0\nnoise\nrpush-item:cd+++++++++:0\nrpush-it");
        assert_eq!(c.counts, Counts { files: 2, bytes: 100 });
        c.feed(b"em:>f..t......:5\n");
        assert_eq!(c.counts, Counts { files: 3, bytes: 105 });
    }

    #[test]
    fn the_line_names_every_host() {
        let mut m = BTreeMap::new();
        m.insert("web1".to_string(), Counts { files: 1, bytes: 999 });
        m.insert(
            "web2".to_string(),
            Counts {
                files: 12,
                bytes: 3_400_000,
            },
        );
        assert_eq!(
            render(&m),
            "rpush: pushing: web1: 1 file, 999 B | web2: 12 files, 3.4 MB"
        );
    }
}
