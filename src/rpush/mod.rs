//! rpush: one rsync per batch per host, hosts in parallel.
//!
//! Reads batches of changed paths (from rbatch, or any path stream) and makes every
//! target host hold the same files as the source, through
//! `rsync --files-from=- --from0 --relative -r --delete-missing-args --force` with the
//! paths on rsync's stdin. See issue 4 and `man/rpush.1`.
//!
//! The flow is parse → validate → run:
//!
//! * `cli`: the clap definition (also what completions are generated from, see
//!   `command`);
//! * `config`: checks everything (hosts files line by line, the base, the password
//!   file's mode) into a `config::Config` before anything runs; usage errors exit 2;
//! * `run`: the reader thread, one `worker` per host, and the main loop that feeds
//!   the `coordinator` (phases: running, draining, stopping, finished) and does what
//!   it says.
//!
//! The decisions that need care are pure functions with their own tests:
//! `coordinator` (phases and exit status, driven by events), `collapse` (deletions
//! to the topmost missing directory), `retry` (backoff with an injected clock),
//! `outage` (probing a failing host), `rsync` (argv, exit-status classification,
//! per-file errors), `paths`, `batch`, `hosts`, `status`.
//!
//! `journal` keeps each host's pending paths on disk with `--state-dir`, so a restart
//! (even after SIGKILL) resumes where rpush stopped.
//!
//! Deliberately not here: filtering of editor temp files (rwait/rbatch's job), moves as
//! remote `mv` (a move is a deletion plus a copy in one batch).

pub(crate) mod batch;
pub(crate) mod cli;
pub(crate) mod collapse;
pub(crate) mod config;
pub(crate) mod coordinator;
pub(crate) mod hosts;
pub(crate) mod journal;
pub(crate) mod log;
pub(crate) mod outage;
pub(crate) mod paths;
pub(crate) mod progress;
pub(crate) mod retry;
pub(crate) mod rsync;
pub(crate) mod run;
pub(crate) mod status;
pub(crate) mod worker;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::CommandFactory;

/// The clap command, for completions and documentation tests.
pub fn command() -> clap::Command {
    cli::Cli::command()
}

/// Runs rpush with `args` (including the program name) and returns its exit status:
/// 0 all delivered, 1 some host still lacks paths, 2 usage error, 3 stopped with
/// everything pending journaled.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    match crate::common::cli::parse_and_validate("rpush", args, config::Config::from_cli) {
        Ok(cfg) => run::run(cfg),
        Err(code) => code,
    }
}

pub(crate) use crate::common::msg::os_error;
