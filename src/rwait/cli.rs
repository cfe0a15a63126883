//! rwait's command line: parsed by glibc's getopt_long (see `sys::getopt` for why),
//! then checked in inotifywait's order so that the first message a bad command line
//! gets is the same one inotifywait prints.
//!
//! One table, [`OPTIONS`], drives the parser, `--help` and the clap description that
//! shell completions are generated from, so the three cannot drift apart.

use std::ffi::OsString;
use std::io::Write;

use super::events;
use crate::common::msg::os_error as strerror_text;
use crate::sys::getopt::{Getopt, Item, LongOpt, strtol};

/// One command-line option.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    pub long: &'static str,
    pub short: Option<char>,
    /// Name of the value, for options that take one.
    pub value: Option<&'static str>,
    pub help: &'static str,
}

const fn o(long: &'static str, short: Option<char>, value: Option<&'static str>, help: &'static str) -> Opt {
    Opt {
        long,
        short,
        value,
        help,
    }
}

/// The options in inotifywait 3.22.6's table order, which is the order glibc lists the
/// candidates of an ambiguous abbreviation in (`--f` is ambiguous between five).
pub const OPTIONS: &[Opt] = &[
    o(
        "help",
        Some('h'),
        None,
        "Show this help text (on stdout; exit status 1, as inotifywait).",
    ),
    o(
        "event",
        Some('e'),
        Some("EVENT"),
        "Listen for specific event(s), comma-separated; repeatable. Default: all.",
    ),
    o(
        "monitor",
        Some('m'),
        None,
        "Keep listening for events forever or until --timeout expires.",
    ),
    o(
        "quiet",
        Some('q'),
        None,
        "Print less (only print events); twice: print nothing, not even events.",
    ),
    o(
        "timeout",
        Some('t'),
        Some("SECONDS"),
        "Exit with status 2 after SECONDS without any event (0: never).",
    ),
    o("filename", Some('f'), None, "Obsolete; exits with an explanation."),
    o("recursive", Some('r'), None, "Watch directories recursively."),
    o(
        "inotify",
        Some('I'),
        None,
        "Watch through inotify (the default backend).",
    ),
    o(
        "fanotify",
        Some('F'),
        None,
        "Watch the operands' trees through one fanotify mark per filesystem (root, kernel >= 5.9; implies -r).",
    ),
    o(
        "filesystem",
        Some('S'),
        None,
        "Watch the whole filesystem of each operand through fanotify, unfiltered (root).",
    ),
    o("csv", Some('c'), None, "Print events in CSV format."),
    o(
        "daemon",
        Some('d'),
        None,
        "Like --monitor, but run in the background logging to --outfile; implies --syslog.",
    ),
    o("syslog", Some('s'), None, "Send errors to syslog rather than stderr."),
    o("no-dereference", Some('P'), None, "Do not follow symlinks."),
    o(
        "format",
        None,
        Some("FMT"),
        "Print using a printf-like format (%w %f %e %Xe %c %T %0 %n %%).",
    ),
    o(
        "no-newline",
        None,
        None,
        "Do not print a newline after the --format string.",
    ),
    o("timefmt", None, Some("FMT"), "strftime(3) format for %T in --format."),
    o(
        "fromfile",
        None,
        Some("FILE"),
        "Read files to watch from FILE, one per line ('-' for stdin; @path excludes).",
    ),
    o(
        "outfile",
        Some('o'),
        Some("FILE"),
        "Print events to FILE (appended, mode 0600) rather than stdout.",
    ),
    o(
        "exclude",
        None,
        Some("REGEX"),
        "Drop events whose path matches the POSIX extended regex.",
    ),
    o("excludei", None, Some("REGEX"), "Like --exclude but case-insensitive."),
    o(
        "include",
        None,
        Some("REGEX"),
        "Drop events whose path does not match the POSIX extended regex.",
    ),
    o("includei", None, Some("REGEX"), "Like --include but case-insensitive."),
];

const SHORTOPTS: &str = "mrhcdsPqt:fo:e:IFS";

/// getopt's value for an option: its short letter, or 256 + its index for long-only ones.
fn val(i: usize, opt: &Opt) -> i32 {
    opt.short.map(|c| c as i32).unwrap_or(256 + i as i32)
}

/// A `--exclude`/`--include` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub regex: Vec<u8>,
    pub icase: bool,
}

/// Which kernel interface watches.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    #[default]
    Inotify,
    /// `-F`: the operands' trees through fanotify.
    Fanotify,
    /// `-S`: whole filesystems through fanotify.
    Filesystem,
}

/// The validated command line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Args {
    pub monitor: bool,
    pub daemon: bool,
    pub recursive: bool,
    /// The last of `-I`/`-F`/`-S` wins.
    pub backend: Backend,
    pub quiet: u32,
    pub csv: bool,
    pub syslog: bool,
    pub no_dereference: bool,
    /// Seconds; 0 means no timeout. Stored in 32 bits like inotifywait 3.22.6, so `-1`
    /// is about 136 years and 4294967297 is one second.
    pub timeout: u32,
    /// The `-e` mask; 0 means all events.
    pub events: u32,
    pub outfile: Option<OsString>,
    pub fromfile: Option<OsString>,
    pub format: Option<Vec<u8>>,
    pub no_newline: bool,
    pub timefmt: Option<Vec<u8>>,
    pub exclude: Option<Pattern>,
    pub include: Option<Pattern>,
    /// The syslog ident for `-s`/`-d`: `inotifywait` when invoked under that name (a
    /// symlink or copy installed as the drop-in), so log filters written for it keep
    /// working; `rwait` otherwise.
    pub syslog_ident: &'static str,
    pub operands: Vec<OsString>,
}

/// Parses `args` (`argv[0]` first). Messages go to `out`/`err` exactly as inotifywait
/// writes them; `Err(status)` means exit now with that status.
pub fn parse(args: &[OsString], out: &mut dyn Write, err: &mut dyn Write) -> Result<Args, u8> {
    let long: Vec<LongOpt> = OPTIONS
        .iter()
        .enumerate()
        .map(|(i, opt)| LongOpt {
            name: opt.long,
            takes_arg: opt.value.is_some(),
            val: val(i, opt),
        })
        .collect();
    let mut a = Args {
        syslog_ident: syslog_ident(args.first().map(|a| a.as_os_str()).unwrap_or_default()),
        ..Args::default()
    };
    let (mut n_exclude, mut n_excludei) = (0, 0);
    let mut exclude: Option<Vec<u8>> = None;
    let mut excludei: Option<Vec<u8>> = None;
    let mut include: Option<Vec<u8>> = None;
    let mut includei: Option<Vec<u8>> = None;
    let mut bad_option = false;
    let mut g = Getopt::new(args, SHORTOPTS, &long);
    // Drop the getopt lock before returning (messages below may be long).
    while let Some(item) = g.next() {
        let (v, arg) = match item {
            Item::Error => {
                bad_option = true;
                break;
            }
            Item::Opt(v, arg) => (v, arg.unwrap_or_default()),
        };
        let name = OPTIONS
            .iter()
            .enumerate()
            .find(|(i, o)| val(*i, o) == v)
            .map(|(_, o)| o.long)
            .unwrap_or("");
        match name {
            "help" => {
                let _ = out.write_all(help_text().as_bytes());
                return Err(1);
            }
            "event" => match events::parse_arg(&arg) {
                Ok(m) => a.events |= m,
                Err(events::UnknownEvent) => {
                    let _ = err.write_all(b"'");
                    let _ = err.write_all(&arg);
                    let _ = err
                        .write_all(b"' is not a valid event!  Run with the '--help' option to see a list of events.\n");
                    return Err(1);
                }
            },
            "monitor" => a.monitor = true,
            "quiet" => a.quiet += 1,
            "timeout" => a.timeout = parse_timeout(&arg, err)?,
            "filename" => {
                let _ = err.write_all(
                    b"The '--filename' option no longer exists.  The option it enabled in earlier\n\
                      versions of inotifywait is now turned on by default.\n",
                );
                return Err(1);
            }
            "recursive" => a.recursive = true,
            "inotify" => a.backend = Backend::Inotify,
            "fanotify" => a.backend = Backend::Fanotify,
            "filesystem" => a.backend = Backend::Filesystem,
            "csv" => a.csv = true,
            "daemon" => a.daemon = true,
            "syslog" => a.syslog = true,
            "no-dereference" => a.no_dereference = true,
            "format" => a.format = Some(arg),
            "no-newline" => a.no_newline = true,
            "timefmt" => a.timefmt = Some(arg),
            "fromfile" => {
                if a.fromfile.is_some() {
                    let _ = err.write_all(b"Multiple --fromfile options given.\n");
                    return Err(1);
                }
                a.fromfile = Some(bytes_to_os(arg));
            }
            "outfile" => {
                if a.outfile.is_some() {
                    let _ = err.write_all(b"Multiple --outfile options given.\n");
                    return Err(1);
                }
                a.outfile = Some(bytes_to_os(arg));
            }
            "exclude" => {
                n_exclude += 1;
                exclude = Some(arg);
            }
            "excludei" => {
                n_excludei += 1;
                excludei = Some(arg);
            }
            "include" => include = Some(arg),
            "includei" => includei = Some(arg),
            _ => unreachable!("getopt returned an option value not in the table"),
        }
    }
    a.operands = g.operands();
    drop(g);

    let fail = |err: &mut dyn Write, msg: &str| {
        let _ = writeln!(err, "{msg}");
        Err(1)
    };
    if exclude.is_some() && excludei.is_some() {
        return fail(err, "--exclude and --excludei cannot both be specified.");
    }
    if include.is_some() && includei.is_some() {
        return fail(err, "--include and --includei cannot both be specified.");
    }
    if (include.is_some() || includei.is_some()) && (exclude.is_some() || excludei.is_some()) {
        return fail(err, "include and exclude regexp cannot both be specified.");
    }
    if a.csv && a.format.is_some() {
        return fail(err, "-c and --format cannot both be specified.");
    }
    if a.no_newline && a.format.is_none() {
        return fail(err, "--no-newline cannot be specified without --format.");
    }
    if a.timefmt.is_some() && a.format.is_none() {
        return fail(err, "--timefmt cannot be specified without --format.");
    }
    // A plain substring test, like inotifywait's: `%%T` triggers it too.
    if a.timefmt.is_none() && a.format.as_deref().is_some_and(|f| f.windows(2).any(|w| w == b"%T")) {
        return fail(err, "%T is in --format string, but --timefmt was not specified.");
    }
    if a.daemon && a.outfile.is_none() {
        return fail(err, "-o must be specified with -d.");
    }
    // Where inotifywait warns: at the end of its option parsing, so after the
    // consistency checks (which may end the run first) and before everything else
    // (regex, format, operands, output file); always on stderr, whatever -q/-s/-d say.
    if n_exclude > 1 {
        let _ = writeln!(err, "--exclude: only the last option will be taken into consideration.");
    } else if n_excludei > 1 {
        let _ = writeln!(
            err,
            "--excludei: only the last option will be taken into consideration."
        );
    }
    if bad_option {
        return Err(1);
    }
    a.exclude = exclude
        .map(|regex| Pattern { regex, icase: false })
        .or(excludei.map(|regex| Pattern { regex, icase: true }));
    a.include = include
        .map(|regex| Pattern { regex, icase: false })
        .or(includei.map(|regex| Pattern { regex, icase: true }));
    if a.daemon {
        a.monitor = true;
        a.syslog = true;
    }
    Ok(a)
}

/// `inotifywait` if `argv0`'s last component is exactly that, else `rwait`.
pub fn syslog_ident(argv0: &std::ffi::OsStr) -> &'static str {
    use std::os::unix::ffi::OsStrExt;
    let b = argv0.as_bytes();
    let base = b.rsplit(|&c| c == b'/').next().unwrap_or(b);
    if base == b"inotifywait" { "inotifywait" } else { "rwait" }
}

fn bytes_to_os(b: Vec<u8>) -> OsString {
    use std::os::unix::ffi::OsStringExt;
    OsString::from_vec(b)
}

/// `-t`: glibc strtol, then inotifywait 3.22.6's checks in its order (range error,
/// trailing junk, empty string), then truncation to 32 bits.
fn parse_timeout(arg: &[u8], err: &mut dyn Write) -> Result<u32, u8> {
    let os = bytes_to_os(arg.to_vec());
    let (v, used, errno) = strtol(&os);
    if let Some(e) = errno {
        let _ = writeln!(
            err,
            "Something went wrong with the timeout value you provided.\n{}",
            strerror_text(&e)
        );
        return Err(1);
    }
    if used != arg.len() {
        let _ = err.write_all(b"'");
        let _ = err.write_all(arg);
        let _ = err.write_all(b"' is not a valid timeout value.\nPlease specify a long int value.\n");
        return Err(1);
    }
    if arg.is_empty() {
        let _ = err.write_all(b"The provided value is not a valid timeout value.\nPlease specify a long int value.\n");
        return Err(1);
    }
    Ok(v as u32)
}

/// `--help`. Not byte-identical to inotifywait's (scripts do not parse help), but the
/// same shape: it goes to stdout and the exit status is 1.
pub fn help_text() -> String {
    let mut s = format!(
        "rwait {} (compatible with inotifywait 3.22.6.0)\n\
         Wait for a particular event on a file or set of files.\n\
         Usage: rwait [ options ] file1 [ file2 ] [ file3 ] [ ... ]\n\
         Options:\n",
        env!("CARGO_PKG_VERSION")
    );
    for opt in OPTIONS {
        let mut left = String::from("\t");
        if let Some(c) = opt.short {
            left.push_str(&format!("-{c}|"));
        }
        left.push_str(&format!("--{}", opt.long));
        if let Some(v) = opt.value {
            left.push_str(&format!(" <{}>", v.to_lowercase()));
        }
        s.push_str(&format!("{left}\n\t\t{}\n", opt.help));
    }
    s.push_str(
        "\t@<file>\n\t\tExclude the specified directory from the recursive walk.\n\
         \t-qq\n\t\tPrint nothing (not even events).\n\n\
         Exit status:\n\
         \t0  -  An event you asked to watch for was received.\n\
         \t1  -  An event you did not ask to watch for was received\n\
         \t      (usually delete_self or unmount), or some error occurred.\n\
         \t2  -  The --timeout option was given and no events occurred\n\
         \t      in the specified interval of time.\n\n\
         Events:\n\
         \taccess\t\tfile or directory contents were read\n\
         \tmodify\t\tfile or directory contents were written\n\
         \tattrib\t\tfile or directory attributes changed\n\
         \tclose_write\tfile or directory closed, after being opened in writable mode\n\
         \tclose_nowrite\tfile or directory closed, after being opened in read-only mode\n\
         \tclose\t\tfile or directory closed, regardless of read/write mode\n\
         \topen\t\tfile or directory opened\n\
         \tmoved_to\tfile or directory moved to watched directory\n\
         \tmoved_from\tfile or directory moved from watched directory\n\
         \tmove\t\tfile or directory moved to or from watched directory\n\
         \tmove_self\tA watched file or directory was moved.\n\
         \tcreate\t\tfile or directory created within watched directory\n\
         \tdelete\t\tfile or directory deleted within watched directory\n\
         \tdelete_self\tfile or directory was deleted\n\
         \tunmount\t\tfile system containing file or directory unmounted\n\n\
         See rwait(1), DIFFERENCES, for where rwait deliberately differs from inotifywait.\n",
    );
    s
}

/// The options as a clap command, used only to generate shell completions (parsing is
/// getopt's job).
pub fn command() -> clap::Command {
    use clap::{Arg, ArgAction, ValueHint};
    let mut cmd = clap::Command::new("rwait")
        .about("Wait for filesystem events (a drop-in inotifywait)")
        .disable_help_flag(true)
        .disable_version_flag(true);
    for opt in OPTIONS {
        let mut arg = Arg::new(opt.long).long(opt.long).help(opt.help);
        if let Some(c) = opt.short {
            arg = arg.short(c);
        }
        arg = match opt.value {
            None => arg.action(ArgAction::Count),
            Some(v) => {
                let arg = arg.value_name(v).action(ArgAction::Append);
                match opt.long {
                    "event" => arg.value_parser([
                        "access",
                        "modify",
                        "attrib",
                        "close_write",
                        "close_nowrite",
                        "close",
                        "open",
                        "moved_to",
                        "moved_from",
                        "move",
                        "move_self",
                        "create",
                        "delete",
                        "delete_self",
                        "unmount",
                    ]),
                    "fromfile" | "outfile" => arg.value_hint(ValueHint::FilePath),
                    _ => arg,
                }
            }
        };
        cmd = cmd.arg(arg);
    }
    cmd.arg(
        Arg::new("file")
            .num_args(1..)
            .value_hint(ValueHint::AnyPath)
            .help("Files or directories to watch; @PATH excludes PATH from a recursive watch"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> (Result<Args, u8>, String, String) {
        let mut v: Vec<OsString> = vec!["inotifywait".into()];
        v.extend(args.iter().map(OsString::from));
        let (mut out, mut err) = (vec![], vec![]);
        let r = parse(&v, &mut out, &mut err);
        (r, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
    }

    #[test]
    fn clap_description_is_valid() {
        command().debug_assert();
    }

    #[test]
    fn ambiguous_abbreviation_is_an_error_but_exact_names_win() {
        // glibc writes the diagnostic itself (to fd 2); the differential tests check it.
        assert_eq!(p(&["--f", "."]).0, Err(1));
        assert_eq!(p(&["--excl", "x", "."]).0, Err(1));
        assert!(p(&["--exclude", "x", "."]).0.is_ok());
        assert!(p(&["--mon", "--rec", "."]).0.unwrap().recursive);
    }

    #[test]
    fn checks_run_after_a_bad_option() {
        let (r, _, err) = p(&["-d", "--foo", "."]);
        assert_eq!(r, Err(1));
        assert_eq!(err, "-o must be specified with -d.\n");
    }

    #[test]
    fn timeout_forms() {
        assert_eq!(p(&["-t", " +5", "."]).0.unwrap().timeout, 5);
        assert_eq!(p(&["-t-1", "."]).0.unwrap().timeout, u32::MAX);
        assert_eq!(p(&["-t", "4294967297", "."]).0.unwrap().timeout, 1);
        assert_eq!(
            p(&["-t", "1.5", "."]).2,
            "'1.5' is not a valid timeout value.\nPlease specify a long int value.\n"
        );
        assert_eq!(
            p(&["-t", "99999999999999999999x", "."]).2,
            "Something went wrong with the timeout value you provided.\nNumerical result out of range\n"
        );
        assert_eq!(
            p(&["-t", "", "."]).2,
            "The provided value is not a valid timeout value.\nPlease specify a long int value.\n"
        );
    }

    #[test]
    fn exclude_warning_and_last_wins() {
        let (a, _, err) = p(&["--exclude", "a", "--exclude", "b", "."]);
        assert_eq!(
            a.unwrap().exclude,
            Some(Pattern {
                regex: b"b".to_vec(),
                icase: false
            })
        );
        assert_eq!(
            err,
            "--exclude: only the last option will be taken into consideration.\n"
        );
        // A consistency check that fails comes first and alone, as in inotifywait.
        let (a, _, err) = p(&["--exclude", "a", "--exclude", "b", "-d", "."]);
        assert_eq!((a, err.as_str()), (Err(1), "-o must be specified with -d.\n"));
        let (_, _, err) = p(&["--excludei", "a", "--excludei", "b", "-s", "-q", "."]);
        assert_eq!(
            err,
            "--excludei: only the last option will be taken into consideration.\n"
        );
    }

    #[test]
    fn syslog_ident_follows_the_name_invoked() {
        for (argv0, want) in [
            ("inotifywait", "inotifywait"),
            ("/usr/local/bin/inotifywait", "inotifywait"),
            ("./inotifywait", "inotifywait"),
            ("rwait", "rwait"),
            ("/usr/bin/rwait", "rwait"),
            ("inotifywait.sh", "rwait"),
            ("/opt/inotifywait/rwait", "rwait"),
            ("", "rwait"),
        ] {
            assert_eq!(syslog_ident(argv0.as_ref()), want, "{argv0:?}");
        }
        assert_eq!(p(&["."]).0.unwrap().syslog_ident, "inotifywait");
    }

    #[test]
    fn daemon_implies_monitor_and_syslog() {
        let a = p(&["-d", "-o", "log", "."]).0.unwrap();
        assert!(a.monitor && a.syslog);
    }
}
