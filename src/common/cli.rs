//! The shared front door of rbatch and rpush: parse with clap, validate into a config,
//! and turn usage errors into the project's shape (`prog: cause`, exit status 2;
//! `--help` and `--version` on stdout with 0). rwait has its own, getopt-based parser
//! (inotifywait compatibility), so it does not use this.

use std::ffi::OsString;
use std::process::ExitCode;

use super::msg::eprint;

/// Parses `args` as `C`, then validates it with `validate`; on any usage error prints
/// it as `prog: cause` and returns the exit status to use.
pub fn parse_and_validate<C: clap::Parser, T>(
    prog: &str,
    args: impl IntoIterator<Item = OsString>,
    validate: impl FnOnce(C) -> Result<T, String>,
) -> Result<T, ExitCode> {
    let cli = C::try_parse_from(args).map_err(|e| {
        if !e.use_stderr() {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        // clap says `error: ...`; every other message of ours says `prog: ...`.
        let text = e.render().to_string();
        let text = text.strip_prefix("error: ").unwrap_or(&text);
        eprint(prog, text.trim_end());
        ExitCode::from(2)
    })?;
    validate(cli).map_err(|msg| {
        eprint(prog, &msg);
        ExitCode::from(2)
    })
}
