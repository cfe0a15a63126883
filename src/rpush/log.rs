//! Run-time log lines on stderr: `TIME rpush: HOST: what happened`, one `write` per line
//! (see `common::msg`) so lines from parallel host workers never interleave. Usage
//! errors before the run use the plain `rpush: ...` form instead; they have no time.

use super::config::Verbosity;
use crate::common::msg::eprint;

#[derive(Debug, Clone, Copy)]
pub struct Log {
    pub verbosity: Verbosity,
    /// A progress line may be on the terminal: clear it before each log line.
    pub progress: bool,
}

impl Log {
    fn emit(&self, level: Verbosity, msg: &str) {
        if self.verbosity >= level {
            let t = chrono::Local::now().format("%Y-%m-%d %H:%M:%S%.3f");
            let clear = if self.progress { "\r\x1b[K" } else { "" };
            eprint(&format!("{clear}{t} rpush"), msg);
        }
    }

    /// Always shown, even with `-q`.
    pub fn error(&self, msg: &str) {
        self.emit(Verbosity::Quiet, msg);
    }

    /// One line per push and other normal news; hidden by `-q`.
    pub fn info(&self, msg: &str) {
        self.emit(Verbosity::Normal, msg);
    }

    /// `-v`: command lines, batches.
    pub fn verbose(&self, msg: &str) {
        self.emit(Verbosity::Verbose, msg);
    }

    /// `-vv`: repeats of known failures.
    pub fn debug(&self, msg: &str) {
        self.emit(Verbosity::Debug, msg);
    }
}
