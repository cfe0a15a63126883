//! rbatch's command line: the clap definition, and its validation into a [`Config`]
//! (durations parsed, regexes compiled) so that the run loop never sees a raw string.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use clap::Parser;

use crate::common::duration::parse_duration;
use crate::common::msg::escape_bytes;
use crate::sys::regex::PosixRegex;

use super::coalesce::Limits;
use super::parse::InputFormat;

const AFTER_HELP: &str = "\
Examples:
  rwait -mrq -e modify,create,delete,moved_to,moved_from /src | rbatch 500ms | rpush -H hosts
  inotifywait -mrq --format '%w%f%0' --no-newline /src | rbatch -0 -z 2s | xargs -0 -r ...
  rwait -mrq -e close_write /etc/php | rbatch 1s --exec systemctl reload php-fpm";

/// Coalesce a stream of inotifywait/rwait events (or paths) into batches of distinct
/// paths, one batch each time the stream goes quiet.
#[derive(Parser, Debug)]
#[command(
    name = "rbatch",
    version,
    after_help = AFTER_HELP,
    args_override_self = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Close a batch when no new path arrived for this long (500ms, 2s, 1.5s, 1m; a bare
    /// number is seconds).
    #[arg(value_name = "QUIET", default_value = "500ms")]
    pub quiet: String,

    /// Close a batch once its oldest path has waited this long, however busy the input
    /// [default: 10 × QUIET].
    #[arg(long, value_name = "DURATION")]
    pub max_wait: Option<String>,

    /// Close a batch once it holds this many distinct paths.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_paths: usize,

    /// Input records: inotifywait's default line, its --csv record, bare paths, or
    /// detected per record.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = InputFormat::Auto)]
    pub input: InputFormat,

    /// Input records end in NUL, not newline (from --format '%w%f%0' --no-newline).
    #[arg(short = '0', long)]
    pub null: bool,

    /// Output paths end in NUL, and a batch ends with an empty record.
    #[arg(short = 'z', long)]
    pub print0: bool,

    /// Keep editor and tool artefacts (vim swap files, emacs locks, ...) instead of
    /// dropping them.
    #[arg(long)]
    pub keep_temp: bool,

    /// Drop paths matching this POSIX extended regular expression (repeatable).
    #[arg(long, value_name = "RE", action = clap::ArgAction::Append)]
    pub exclude: Vec<OsString>,

    /// Like --exclude, ignoring ASCII case (repeatable).
    #[arg(long, value_name = "RE", action = clap::ArgAction::Append)]
    pub excludei: Vec<OsString>,

    /// Instead of printing, run CMD (no shell) once per batch with the batch's paths on its
    /// stdin. Takes the rest of the command line, so it must come last.
    #[arg(
        long,
        value_name = "CMD",
        num_args = 1..,
        allow_hyphen_values = true,
        value_hint = clap::ValueHint::CommandName
    )]
    pub exec: Option<Vec<OsString>>,
}

/// Where batches go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Print,
    /// Program and arguments, never through a shell.
    Exec(Vec<OsString>),
}

/// A validated command line.
pub struct Config {
    pub limits: Limits,
    pub input: InputFormat,
    pub in_delim: u8,
    pub out_delim: u8,
    pub keep_temp: bool,
    pub excludes: Vec<PosixRegex>,
    pub output: Delivery,
}

fn duration(what: &str, s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| format!("{what}: {e}"))
}

impl Cli {
    /// Checks what clap cannot; the error is `context: cause` for a usage message.
    pub fn validate(self) -> Result<Config, String> {
        let quiet = duration("QUIET", &self.quiet)?;
        let max_wait = match &self.max_wait {
            Some(s) => duration("--max-wait", s)?,
            None => quiet.saturating_mul(10),
        };
        if self.max_paths == 0 {
            return Err("--max-paths: must be at least 1".into());
        }
        let mut excludes = Vec::new();
        for (pats, icase, name) in [
            (&self.exclude, false, "--exclude"),
            (&self.excludei, true, "--excludei"),
        ] {
            for p in pats {
                let re = PosixRegex::new(p.as_bytes(), icase)
                    .map_err(|e| format!("{name} '{}': {e}", escape_bytes(p.as_bytes())))?;
                excludes.push(re);
            }
        }
        let output = match self.exec {
            Some(argv) if argv.first().is_some_and(|a| !a.is_empty()) => Delivery::Exec(argv),
            Some(_) => return Err("--exec: empty command name".into()),
            None => Delivery::Print,
        };
        Ok(Config {
            limits: Limits {
                quiet,
                max_wait,
                max_paths: self.max_paths,
            },
            input: self.input,
            in_delim: if self.null { 0 } else { b'\n' },
            out_delim: if self.print0 { 0 } else { b'\n' },
            keep_temp: self.keep_temp,
            excludes,
            output,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let argv = std::iter::once("rbatch").chain(args.iter().copied());
        Cli::try_parse_from(argv).map_err(|e| e.to_string())?.validate()
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.limits.quiet, Duration::from_millis(500));
        assert_eq!(c.limits.max_wait, Duration::from_secs(5));
        assert_eq!(c.limits.max_paths, 10_000);
        assert_eq!((c.in_delim, c.out_delim), (b'\n', b'\n'));
        assert_eq!(c.output, Delivery::Print);
        assert_eq!(c.input, InputFormat::Auto);
    }

    #[test]
    fn exec_takes_the_rest_of_the_line_including_dashes() {
        let c = parse(&["2s", "-0", "--exec", "cmd", "-x", "--exclude", "y"]).unwrap();
        assert_eq!(c.limits.quiet, Duration::from_secs(2));
        assert_eq!(c.in_delim, 0);
        assert_eq!(
            c.output,
            Delivery::Exec(["cmd", "-x", "--exclude", "y"].iter().map(OsString::from).collect())
        );
        assert!(c.excludes.is_empty());
    }

    #[test]
    fn usage_errors_name_the_option() {
        let e = |args: &[&str]| parse(args).err().unwrap();
        assert!(e(&["5x"]).starts_with("QUIET: "));
        assert!(e(&["--max-wait", "soon"]).starts_with("--max-wait: "));
        assert!(e(&["--max-paths", "0"]).starts_with("--max-paths: "));
        assert!(e(&["--exclude", "("]).starts_with("--exclude '(': "));
        assert!(e(&["--exec", ""]).starts_with("--exec: "));
        assert!(e(&["--input", "xml"]).contains("xml"));
    }
}
