//! The rsync command line for one push, and what its exit status means.
//!
//! Paths never appear on the command line: they go NUL-separated to rsync's stdin
//! (`--files-from=- --from0`), so a name like `-esh -c ...` cannot become an option
//! (it did in the naive `rsync -a "$f" host:` loop). The only operands are the base and
//! the destination, both from the operator. The exit classification is the table in
//! docs/background.md ("Exit codes"), using rsync's stderr where one code has two meanings (5 and 255).

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use super::hosts::{Target, Transport};
use super::retry::Class;

/// The prefix of the one line rsync prints per changed item (`--out-format`): item
/// flags and bytes only, never a name, so a file name cannot forge one of these lines.
pub const ITEM_PREFIX: &[u8] = b"rpush-item:";

/// What every push of one rpush process shares.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Absolute, normalised.
    pub base: Vec<u8>,
    pub password_file: Option<OsString>,
    pub rsh: Option<OsString>,
    /// Zero: not passed (rsync's own default, no timeout).
    pub timeout: Duration,
    pub contimeout: Duration,
    /// Options after `--`, appended last so they can override ours.
    pub extra: Vec<OsString>,
}

fn secs(d: Duration) -> u64 {
    // rsync takes whole seconds; round up so 500ms does not become "no timeout".
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The arguments (without the program) for one push to `target`.
pub fn args(s: &Settings, target: &Target) -> Vec<OsString> {
    let mut a: Vec<OsString> = [
        "-a",
        // --files-from turns off -a's recursion; listed directories must be recursed.
        "-r",
        "--files-from=-",
        "--from0",
        "--relative",
        // Inside a listed directory, remove what the source no longer has; implied
        // parents are not touched. This is what makes "." a full sync.
        "--delete",
        "--delete-missing-args",
        // Non-empty directories and directory→file changes need it.
        "--force",
        // Compare modification times to the nanosecond: at rsync's default one-second
        // granularity a parent directory touched within the same second is "unchanged",
        // and then keeps the time its new child was created on the target.
        "--modify-window=-1",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    a.push(format!("--out-format={}%i:%b", String::from_utf8_lossy(ITEM_PREFIX)).into());
    if !s.timeout.is_zero() {
        a.push(format!("--timeout={}", secs(s.timeout)).into());
    }
    match target.transport {
        Transport::Daemon => {
            // rsync rejects both of these for remote-shell targets.
            if !s.contimeout.is_zero() {
                a.push(format!("--contimeout={}", secs(s.contimeout)).into());
            }
            if let Some(p) = &s.password_file {
                let mut o = OsString::from("--password-file=");
                o.push(p);
                a.push(o);
            }
        }
        Transport::Shell => {
            let mut o = OsString::from("--rsh=");
            match &s.rsh {
                Some(r) => o.push(r),
                // Never prompt (there is no terminal to answer), and bound the connect.
                None => o.push(format!(
                    "ssh -o BatchMode=yes -o ConnectTimeout={}",
                    secs(s.contimeout).max(1)
                )),
            }
            a.push(o);
        }
    }
    a.extend(s.extra.iter().cloned());
    let mut src = s.base.clone();
    if src.last() != Some(&b'/') {
        src.push(b'/');
    }
    a.push(std::ffi::OsStr::from_bytes(&src).to_os_string());
    a.push(target.dest.clone().into());
    a
}

/// Renders a command line for `-v` logs. Shell-like quoting for reading only: it is
/// never executed. Passwords never appear: rsync gets them from a file or the
/// environment.
pub fn display(program: &std::path::Path, args: &[OsString]) -> String {
    let mut s = quote(program.as_os_str().as_bytes());
    for a in args {
        s.push(' ');
        s.push_str(&quote(a.as_bytes()));
    }
    s
}

fn quote(b: &[u8]) -> String {
    let plain = !b.is_empty()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"-_=./:,@%+".contains(&c));
    let e = crate::common::msg::escape_bytes(b);
    if plain {
        e
    } else {
        format!("'{}'", e.replace('\'', "'\\''"))
    }
}

/// What rsync told us on stdout: changed items (our `--out-format` lines) and bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub changed: u64,
    pub bytes: u64,
}

pub fn parse_stdout(out: &[u8]) -> Report {
    let mut r = Report::default();
    for line in out.split(|&b| b == b'\n') {
        if let Some(rest) = line.strip_prefix(ITEM_PREFIX) {
            r.changed += 1;
            if let Some(pos) = rest.iter().rposition(|&b| b == b':') {
                let n = std::str::from_utf8(&rest[pos + 1..])
                    .ok()
                    .and_then(|t| t.trim().parse::<u64>().ok());
                r.bytes += n.unwrap_or(0);
            }
        }
    }
    r
}

/// Undoes rsync's escaping of names in its messages: an unprintable byte (a newline, say)
/// is shown as `\#ooo` (octal), and so is a backslash that would start such a sequence,
/// so the decoding is exact.
pub fn unescape_name(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let oct = |b: u8| (b'0'..=b'7').contains(&b);
        if s[i] == b'\\' && i + 5 <= s.len() && s[i + 1] == b'#' && s[i + 2..i + 5].iter().all(|&b| oct(b)) {
            let v = s[i + 2..i + 5].iter().fold(0u32, |v, &b| v * 8 + u32::from(b - b'0'));
            out.push(v as u8);
            i += 5;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// The base-relative paths an rsync that exited 23 or 24 names in its per-file error
/// lines (`rsync: [sender] send_files failed to open "/base/f": Permission denied (13)`,
/// `file has vanished: "/base/g"`): what was not delivered. `None` when any message is
/// not of that kind (a receiver-side error, a path outside the base, deletions skipped
/// for an I/O error): then the caller must count the whole push as failed, since what
/// was delivered is unknown.
pub fn failed_paths(stderr: &[u8], base: &[u8]) -> Option<std::collections::BTreeSet<Vec<u8>>> {
    let mut prefix = base.to_vec();
    if prefix.last() != Some(&b'/') {
        prefix.push(b'/');
    }
    let mut out = std::collections::BTreeSet::new();
    for line in stderr.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() || line.starts_with(b"rsync error:") {
            continue;
        }
        let sender = line.starts_with(b"rsync: [sender] ") || line.starts_with(b"file has vanished: ");
        if !sender {
            return None;
        }
        // The name is quoted; it may hold quotes itself, but what follows the closing
        // quote (": Permission denied (13)", " failed: ...") never does.
        let open = line.iter().position(|&b| b == b'"')?;
        let close = line.iter().rposition(|&b| b == b'"')?;
        if close <= open {
            return None;
        }
        let name = unescape_name(&line[open + 1..close]);
        let rel = if name == base || name == prefix[..prefix.len() - 1] {
            Vec::new()
        } else {
            name.strip_prefix(prefix.as_slice())?.to_vec()
        };
        let rel = rel.strip_suffix(b"/").map(<[u8]>::to_vec).unwrap_or(rel);
        out.insert(rel);
    }
    Some(out)
}

/// [`parse_stdout`] fed chunk by chunk as rsync writes them, so that its stdout need not
/// be kept whole (a push of a million files prints a million lines).
#[derive(Debug, Default)]
pub struct ReportStream {
    partial: Vec<u8>,
    report: Report,
}

impl ReportStream {
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&rest[..i]);
            self.line();
            rest = &rest[i + 1..];
        }
        // Our lines are short; anything longer is not one of them.
        if self.partial.len() + rest.len() <= 4096 {
            self.partial.extend_from_slice(rest);
        }
    }

    fn line(&mut self) {
        let r = parse_stdout(&self.partial);
        self.report.changed += r.changed;
        self.report.bytes += r.bytes;
        self.partial.clear();
    }

    pub fn finish(mut self) -> Report {
        self.line();
        self.report
    }
}

/// ssh's words for failures that retrying will not fix.
const SSH_PERMANENT: &[&str] = &[
    "permission denied",
    "host key verification failed",
    "could not resolve hostname",
    "bad configuration option",
    "no such identity",
    "command not found",
];

/// How an rsync run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Code(i32),
    Signal(i32),
    /// Our watchdog killed it (no progress).
    Watchdog,
    /// It could not be started.
    NotStarted,
}

/// The verdict on one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered. `vanished` is exit 24: some listed paths changed under rsync; the caller
    /// re-checks them.
    Ok { vanished: bool },
    Failed {
        class: Class,
        /// The whole story: exit code, its meaning, rsync's most telling stderr line.
        reason: String,
        /// What identifies this failure across attempts (the stderr line, or the reason
        /// when rsync said nothing): a change of it is news.
        key: String,
    },
}

/// Classifies an rsync exit (docs/background.md, "Exit codes"). `stderr` decides the ambiguous codes.
pub fn classify(ended: Ended, stderr: &[u8]) -> Verdict {
    use Class::{Permanent as P, Temporary as T};
    let text = String::from_utf8_lossy(stderr).to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    let (class, what) = match ended {
        Ended::Code(0) => return Verdict::Ok { vanished: false },
        // The batch was collapsed to topmost missing directories, so 24 means a file
        // changed while rsync ran: normal in a live tree.
        Ended::Code(24) => return Verdict::Ok { vanished: true },
        Ended::Watchdog => (T, "killed by the watchdog (no progress)".to_string()),
        Ended::NotStarted => (P, "could not start rsync".to_string()),
        Ended::Signal(s) => (T, format!("rsync killed by signal {s}")),
        Ended::Code(c) => {
            let class = match c {
                // The same code for "try again later" and for "you may not".
                5 if has(&["max connections", "try again later"]) => T,
                5 => P,
                // ssh: the network is down vs. the key/host/config is wrong. Depending on
                // timing, rsync reports a refused login as 255 or as 12.
                255 | 12 if has(SSH_PERMANENT) => P,
                255 => T,
                // Remote rsync missing behind a working ssh.
                12 if has(&["no such file or directory"]) => P,
                // A missing destination parent is configuration; a full disk is not.
                11 if has(&["mkdir"]) && has(&["no such file or directory"]) => P,
                6 | 10 | 11 | 12 | 14 | 20 | 21 | 22 | 23 | 30 | 35 => T,
                _ => P,
            };
            (class, format!("rsync exit {c} ({})", meaning(c)))
        }
    };
    let detail = stderr_summary(stderr);
    let mut reason = what.clone();
    if matches!(ended, Ended::Code(2)) && text.contains("invalid file mode 00") {
        reason.push_str(" [rsync 3.4.3 --delete-missing-args bug: upgrade rsync on both ends]");
    }
    if !detail.is_empty() {
        reason.push_str(": ");
        reason.push_str(&detail);
    }
    let key = if detail.is_empty() { what } else { detail };
    Verdict::Failed { class, reason, key }
}

/// rsync's names for its exit codes (rsync(1), EXIT VALUES).
pub fn meaning(code: i32) -> &'static str {
    match code {
        1 => "syntax or usage error",
        2 => "protocol incompatibility",
        3 => "errors selecting input/output files, dirs",
        4 => "requested action not supported",
        5 => "error starting client-server protocol",
        6 => "daemon unable to append to log-file",
        10 => "error in socket I/O",
        11 => "error in file I/O",
        12 => "error in rsync protocol data stream",
        13 => "errors with program diagnostics",
        14 => "error in IPC code",
        20 => "received SIGUSR1 or SIGINT",
        21 => "some error returned by waitpid()",
        22 => "error allocating core memory buffers",
        23 => "partial transfer due to error",
        24 => "partial transfer due to vanished source files",
        25 => "the --max-delete limit stopped deletions",
        30 => "timeout in data send/receive",
        35 => "timeout waiting for daemon connection",
        255 => "remote shell failed",
        _ => "unknown exit code",
    }
}

/// The most telling line of rsync's stderr, escaped for a log: a daemon's `@ERROR`, else
/// the first line that is not rsync's generic "rsync error: ... (code N)" trailer.
pub fn stderr_summary(stderr: &[u8]) -> String {
    let lines: Vec<&[u8]> = stderr
        .split(|&b| b == b'\n' || b == b'\r')
        .map(|l| l.trim_ascii())
        .filter(|l| !l.is_empty())
        .collect();
    let pick = lines
        .iter()
        .find(|l| l.starts_with(b"@ERROR"))
        .or_else(|| {
            lines
                .iter()
                .find(|l| !l.starts_with(b"rsync error:") && !l.starts_with(b"Warning: Permanently added"))
        })
        .or(lines.first());
    let mut s = pick.map(|l| crate::common::msg::escape_bytes(l)).unwrap_or_default();
    if s.len() > 300 {
        let mut cut = 300;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(dest: &str, transport: Transport) -> Target {
        Target {
            host: "h".into(),
            dest: dest.into(),
            transport,
            origin: "-t".into(),
        }
    }

    fn settings() -> Settings {
        Settings {
            base: b"/src".to_vec(),
            password_file: Some("/etc/pw".into()),
            rsh: None,
            timeout: Duration::from_secs(30),
            contimeout: Duration::from_millis(2500),
            extra: vec!["--exclude=*.swp".into()],
        }
    }

    fn strs(a: &[OsString]) -> Vec<String> {
        a.iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn daemon_argv_keeps_paths_off_the_command_line_and_the_operator_last() {
        // What rsync does with the options is tested against real daemons (tests/it);
        // here, what the command line itself promises.
        let a = strs(&args(&settings(), &target("u@h::m", Transport::Daemon)));
        // The only operands: the base, as a directory, and the destination, last.
        assert_eq!(a[a.len() - 2..], ["/src/", "u@h::m"]);
        assert!(a[..a.len() - 2].iter().all(|x| x.starts_with('-')), "{a:?}");
        // The paths come on stdin, NUL-separated.
        for o in ["--files-from=-", "--from0"] {
            assert!(a.iter().any(|x| x == o), "{o} in {a:?}");
        }
        // Timeouts in whole seconds, rounded up; the password from its file.
        for o in ["--timeout=30", "--contimeout=3", "--password-file=/etc/pw"] {
            assert!(a.iter().any(|x| x == o), "{o} in {a:?}");
        }
        // The operator's options after ours, so that they can override them.
        assert_eq!(a[a.len() - 3], "--exclude=*.swp");
        // The item lines rpush reads back.
        assert!(a.iter().any(|x| x.starts_with("--out-format=rpush-item:")), "{a:?}");
    }

    #[test]
    fn shell_argv_has_rsh_but_no_daemon_options() {
        let mut s = settings();
        let a = strs(&args(&s, &target("h:/dst", Transport::Shell)));
        assert!(
            a.contains(&"--rsh=ssh -o BatchMode=yes -o ConnectTimeout=3".to_string()),
            "{a:?}"
        );
        assert!(
            !a.iter()
                .any(|x| x.starts_with("--contimeout") || x.starts_with("--password-file"))
        );
        s.rsh = Some("ssh -p 2222".into());
        s.timeout = Duration::ZERO;
        s.base = b"/".to_vec();
        let a = strs(&args(&s, &target("h:/dst", Transport::Shell)));
        assert!(a.contains(&"--rsh=ssh -p 2222".to_string()));
        assert!(!a.iter().any(|x| x.starts_with("--timeout")));
        assert_eq!(a[a.len() - 2..], ["/", "h:/dst"]);
    }

    fn class(ended: Ended, err: &str) -> Option<Class> {
        match classify(ended, err.as_bytes()) {
            Verdict::Ok { .. } => None,
            Verdict::Failed { class, .. } => Some(class),
        }
    }

    #[test]
    fn classification_table() {
        use Class::*;
        assert_eq!(classify(Ended::Code(0), b""), Verdict::Ok { vanished: false });
        assert_eq!(
            classify(Ended::Code(24), b"file has vanished"),
            Verdict::Ok { vanished: true }
        );
        let auth = "@ERROR: auth failed on module mod\nrsync error: error starting client-server protocol (code 5) at main.c(1954) [sender=3.5.0]\n";
        assert_eq!(class(Ended::Code(5), auth), Some(Permanent));
        assert_eq!(
            class(Ended::Code(5), "@ERROR: Unknown module 'nomod'\n"),
            Some(Permanent)
        );
        assert_eq!(
            class(
                Ended::Code(5),
                "@ERROR: max connections (1) reached -- try again later\n"
            ),
            Some(Temporary)
        );
        let refused =
            "ssh: connect to host 127.0.0.1 port 18723: Connection refused\nrsync: connection unexpectedly closed";
        assert_eq!(class(Ended::Code(255), refused), Some(Temporary));
        assert_eq!(
            class(Ended::Code(255), "root@127.0.0.1: Permission denied (publickey).\n"),
            Some(Permanent)
        );
        assert_eq!(
            class(Ended::Code(255), "Host key verification failed.\n"),
            Some(Permanent)
        );
        assert_eq!(class(Ended::Code(10), "Connection refused (111)"), Some(Temporary));
        assert_eq!(
            class(
                Ended::Code(11),
                "mkdir \"x/y/z\" (in mod) failed: No such file or directory (2)"
            ),
            Some(Permanent)
        );
        assert_eq!(
            class(Ended::Code(11), "write failed: No space left on device (28)"),
            Some(Temporary)
        );
        assert_eq!(
            class(
                Ended::Code(12),
                "sh: 1: /nonexistent: not found\nbash: rsync: command not found"
            ),
            Some(Permanent)
        );
        assert_eq!(
            class(Ended::Code(12), "u@h: Permission denied (publickey).\n"),
            Some(Permanent)
        );
        assert_eq!(
            class(Ended::Code(12), "connection unexpectedly closed"),
            Some(Temporary)
        );
        for c in [6, 10, 14, 20, 21, 22, 23, 30, 35] {
            assert_eq!(class(Ended::Code(c), ""), Some(Temporary), "code {c}");
        }
        for c in [1, 2, 3, 4, 13, 25, 99] {
            assert_eq!(class(Ended::Code(c), ""), Some(Permanent), "code {c}");
        }
        assert_eq!(class(Ended::Watchdog, ""), Some(Temporary));
        assert_eq!(class(Ended::Signal(9), ""), Some(Temporary));
        assert_eq!(class(Ended::NotStarted, ""), Some(Permanent));
    }

    #[test]
    fn reasons_quote_the_telling_stderr_line() {
        let Verdict::Failed { reason, .. } = classify(
            Ended::Code(5),
            b"@ERROR: auth failed on module mod\nrsync error: error starting client-server protocol (code 5)\n",
        ) else {
            panic!()
        };
        assert_eq!(
            reason,
            "rsync exit 5 (error starting client-server protocol): @ERROR: auth failed on module mod"
        );
        let Verdict::Failed { reason, .. } = classify(Ended::Code(2), b"invalid file mode 00 in entry\n") else {
            panic!()
        };
        assert!(reason.contains("3.4.3"), "{reason}");
        assert_eq!(
            stderr_summary(b"Warning: Permanently added 'x'\nroot@h: Permission denied (publickey).\n"),
            "root@h: Permission denied (publickey)."
        );
        assert_eq!(stderr_summary(b"evil\x1b[31m\n"), "evil\\x1b[31m");
    }

    #[test]
    fn stdout_report() {
        let out =
            b"rpush-item:*deleting  :0\nrpush-item:<f+++++++++:45\nrpush-item:.d..t......:0\nsomething else: 99\n";
        assert_eq!(parse_stdout(out), Report { changed: 3, bytes: 45 });
        assert_eq!(parse_stdout(b""), Report::default());
    }

    #[test]
    fn display_quotes_for_reading() {
        let p = std::path::Path::new("rsync");
        assert_eq!(
            display(p, &["-a".into(), "--rsh=ssh -p 2".into(), "x'y".into()]),
            "rsync -a '--rsh=ssh -p 2' 'x'\\''y'"
        );
    }
    #[test]
    fn failed_paths_from_sender_errors() {
        let err = b"rsync: [sender] send_files failed to open \"/src/secret\": Permission denied (13)\n\
rsync: [sender] send_files failed to open \"/src/sub/q\"x\\#012y\": Permission denied (13)\n\
rsync: [sender] opendir \"/src/d/\" failed: Permission denied (13)\n\
file has vanished: \"/src/v\"\n\
rsync error: some files/attrs were not transferred (see previous errors) (code 23) at main.c(1394) [sender=3.5.0]\n";
        let got: Vec<Vec<u8>> = failed_paths(err, b"/src").unwrap().into_iter().collect();
        let want: Vec<Vec<u8>> = vec![
            b"d".to_vec(),
            b"secret".to_vec(),
            b"sub/q\"x\ny".to_vec(),
            b"v".to_vec(),
        ];
        assert_eq!(got, want);
        // The base itself, and a base of /.
        let err = b"rsync: [sender] opendir \"/src/\" failed: Permission denied (13)\n";
        assert_eq!(
            failed_paths(err, b"/src").unwrap().into_iter().collect::<Vec<_>>(),
            vec![Vec::<u8>::new()]
        );
        let err = b"rsync: [sender] send_files failed to open \"/etc/shadow\": Permission denied (13)\n";
        assert_eq!(
            failed_paths(err, b"/").unwrap().into_iter().collect::<Vec<_>>(),
            vec![b"etc/shadow".to_vec()]
        );
    }

    #[test]
    fn failed_paths_unknown_when_any_message_is_not_per_file() {
        for err in [
            &b"rsync: [receiver] mkstemp \"/x/.f.AbCd\" (in mod) failed: Permission denied (13)\n"[..],
            b"rsync: [sender] send_files failed to open \"/elsewhere/f\": Permission denied (13)\n",
            b"rsync: [sender] opendir \"/src/d\" failed: Permission denied (13)\nIO error encountered -- skipping file deletion\n",
            b"rsync: [sender] something without a name\n",
            b"rsync: [sender] send_files failed to open \"/src2/f\": Permission denied (13)\n",
        ] {
            assert_eq!(failed_paths(err, b"/src"), None, "{}", String::from_utf8_lossy(err));
        }
    }

    #[test]
    fn report_stream_equals_the_whole_parse_however_it_is_cut() {
        let out = b"rpush-item:>f+++++++++:45\nrpush-item:cd+++++++++:0\nnoise\nrpush-item:>f.st......:1000\n";
        let whole = parse_stdout(out);
        assert_eq!(
            whole,
            Report {
                changed: 3,
                bytes: 1045
            }
        );
        for cut in 0..out.len() {
            let mut st = ReportStream::default();
            st.feed(&out[..cut]);
            st.feed(&out[cut..]);
            assert_eq!(st.finish(), whole, "cut at {cut}");
        }
        let mut st = ReportStream::default();
        for b in out.iter() {
            st.feed(std::slice::from_ref(b));
        }
        assert_eq!(st.finish(), whole);
    }

    #[test]
    fn unescaping_names() {
        assert_eq!(unescape_name(b"a\\#012b"), b"a\nb");
        assert_eq!(unescape_name(b"a\\#134#012"), b"a\\#012");
        assert_eq!(unescape_name(b"plain\\#01"), b"plain\\#01");
        assert_eq!(unescape_name(b"\\#377"), b"\xff");
    }
}
