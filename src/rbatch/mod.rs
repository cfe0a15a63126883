//! rbatch: coalesces a stream of inotifywait/rwait events (or bare paths) into batches
//! of distinct paths, one batch each time the stream goes quiet, for rpush or a command.
//!
//! The pipeline is parse (`parse`) → filter (`filter`) → merge (`coalesce`) →
//! deliver (`run`); the command line is checked into a `cli::Config` before anything
//! runs. Why batching works the way it does (quiet period + hard max wait + size cap) is
//! in docs/background.md ("Batching") and in `man/rbatch.1`.

pub(crate) mod cli;
pub(crate) mod coalesce;
pub(crate) mod filter;
pub(crate) mod parse;
pub(crate) mod run;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::CommandFactory;

/// The clap command, for shell completions and the man-page check.
pub fn command() -> clap::Command {
    cli::Cli::command()
}

/// Entry point of the `rbatch` binary: parse, validate, run. Usage errors exit 2,
/// `--help`/`--version` 0.
pub fn main(args: Vec<OsString>) -> ExitCode {
    match crate::common::cli::parse_and_validate("rbatch", args, cli::Cli::validate) {
        Ok(cfg) => run::run(cfg),
        Err(code) => code,
    }
}
