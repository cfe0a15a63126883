//! The command line, as clap sees it. Nothing here touches the file system: turning
//! these raw values into a checked [`Config`](super::config::Config) is `config.rs`'s job.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser};

use crate::common::duration::parse_duration;

const ABOUT: &str = "Push batches of changed paths to many hosts with rsync, one rsync per batch per host";

const LONG_ABOUT: &str = "\
Reads batches of changed paths on stdin (as rbatch writes them: one path per line, an \
empty line after each batch; NUL-terminated with -0) and makes every target hold the same \
files as the source. For each batch and each host it runs exactly one \
`rsync -a -r --files-from=- --from0 --relative --delete --delete-missing-args --force`, \
with the paths on rsync's stdin, never on its command line. Hosts are independent: each \
has its own queue and worker, failures are retried with exponential backoff, and a dead \
host never delays the others.";

const AFTER_HELP: &str = "\
Exit status: 0 when every host received everything, 1 when some host still lacks paths \
after --drain-timeout (or after SIGINT/SIGTERM), 2 on usage errors. SIGHUP re-reads the \
hosts files.

Example:
  rwait -mrq -e modify,create,delete,moved_to,moved_from,attrib /srv/www \\
    | rbatch 500ms | rpush -C /srv/www -H /etc/rpush/hosts -d 'rsync@{}::www' \\
      --password-file /etc/rpush/secret";

// A string rather than a doc comment: rustdoc would take the brackets for links.
const HOSTS_LONG_HELP: &str = "\
File of targets, one per line ('#' comments and blank lines skipped); repeatable

A line is a full rsync destination (host:/path, user@host:/path, host::module[/path], \
rsync://[user@]host[:port]/module[/path]) or a bare host, which --dest turns into one \
(without --dest: host:BASE/, the same path over ssh).";

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}

/// `rpush [OPTIONS] [-- RSYNC_OPTIONS...]`
#[derive(Debug, Parser)]
#[command(
    name = "rpush",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    max_term_width = 100,
    // A later option wins over an earlier one, so wrappers (a systemd unit's defaults)
    // can be overridden on the command line.
    args_override_self = true
)]
pub struct Cli {
    /// File of targets, one per line ('#' comments and blank lines skipped); repeatable
    #[arg(short = 'H', long = "hosts", value_name = "FILE", long_help = HOSTS_LONG_HELP)]
    pub hosts: Vec<PathBuf>,

    /// A target on the command line (same forms as a hosts-file line); repeatable
    #[arg(short = 't', long = "target", value_name = "DEST")]
    pub targets: Vec<String>,

    /// Turn bare hosts into destinations: '{}' is replaced by the host (e.g. 'rsync@{}::www')
    #[arg(short = 'd', long = "dest", value_name = "TEMPLATE")]
    pub dest: Option<String>,

    /// Source root: each path is sent relative to it [default: /]
    ///
    /// Paths outside it are reported and skipped. Relative input paths are relative to the
    /// directory rpush was started in.
    #[arg(short = 'C', long = "base", value_name = "DIR")]
    pub base: Option<PathBuf>,

    /// Input paths are NUL-terminated (an empty record ends a batch), as from rbatch -z
    #[arg(short = '0', long = "null", visible_short_alias = 'z')]
    pub null: bool,

    /// At most N rsyncs at once, over all hosts
    #[arg(short = 'j', long = "jobs", value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: u32,

    /// Password file for rsync-daemon targets (passed to rsync; must be mode 600)
    #[arg(long = "password-file", value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Remote shell for host:path targets [default: ssh -o BatchMode=yes -o ConnectTimeout=CONTIMEOUT]
    #[arg(short = 'e', long = "rsh", value_name = "COMMAND")]
    pub rsh: Option<OsString>,

    /// The rsync program to run
    #[arg(long = "rsync", value_name = "PATH", default_value = "rsync")]
    pub rsync: PathBuf,

    /// rsync's --timeout (I/O inactivity); 0 disables it
    #[arg(long = "timeout", value_name = "DURATION", default_value = "30s", value_parser = duration)]
    pub timeout: Duration,

    /// rsync's --contimeout for daemon targets, ssh's ConnectTimeout for the default --rsh
    #[arg(long = "contimeout", value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub contimeout: Duration,

    /// Kill an rsync (and its ssh) that makes no progress for this long
    ///
    /// Progress is any output or any byte rsync reads or writes (/proc/PID/io). This
    /// catches what --timeout and --contimeout do not, such as a listener that accepts
    /// the connection and never speaks.
    #[arg(long = "watchdog", value_name = "DURATION", default_value = "2m", value_parser = duration)]
    pub watchdog: Duration,

    /// First retry delay after a temporary failure; doubles per consecutive failure
    #[arg(long = "retry-min", value_name = "DURATION", default_value = "1s", value_parser = duration)]
    pub retry_min: Duration,

    /// Longest retry delay; permanent failures (wrong password, unknown module) wait this
    #[arg(long = "retry-max", value_name = "DURATION", default_value = "60s", value_parser = duration)]
    pub retry_max: Duration,

    /// At end of input, keep retrying for at most this long, then exit 1 if a host still lacks paths
    #[arg(long = "drain-timeout", value_name = "DURATION", default_value = "60s", value_parser = duration)]
    pub drain_timeout: Duration,

    /// Start with a full sync of the base to every host (needs an explicit -C)
    #[arg(long = "initial")]
    pub initial: bool,

    /// After a push that changed something, run CMD [ARGS...] (no shell; ends at ';' or '--')
    ///
    /// '{}' in ARGS is replaced by the host. The environment has RPUSH_HOST and
    /// RPUSH_DEST; stdin has the pushed paths (absolute, terminated like the input).
    #[arg(long = "on-push", value_name = "CMD", num_args = 1.., value_terminator = ";",
          allow_hyphen_values = true)]
    pub on_push: Option<Vec<OsString>>,

    /// Kill an --on-push command still running after DURATION
    ///
    /// A hook that started runs to its end (end of input and SIGTERM do not stop it);
    /// this bounds it. A hook that fails or is killed makes the exit status 1.
    #[arg(long = "on-push-timeout", value_name = "DURATION", default_value = "5m", value_parser = duration)]
    pub on_push_timeout: Duration,

    /// Keep each host's pending paths in a journal in DIR; replay it at start
    ///
    /// Every batch is fsync'd to DIR before it counts as queued, so rpush can be killed
    /// at any moment and restarted with the same DIR without losing a change. Created
    /// (mode 700) when missing; one rpush per DIR.
    #[arg(long = "state-dir", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Keep a JSON status (per host: pending, last success, last error, failures) in FILE
    #[arg(long = "status", value_name = "FILE")]
    pub status: Option<PathBuf>,

    /// Also log each rsync command line and each batch (-vv: quiet repeats too)
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Log errors only
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,

    /// Options appended to every rsync command line (after our own, so they can override)
    #[arg(last = true, value_name = "RSYNC_OPTIONS", allow_hyphen_values = true)]
    pub rsync_options: Vec<OsString>,
}
