//! The differential harness: run one scenario (set-up script, arguments, actions)
//! under the real inotifywait and under rwait, each in a fresh scratch directory of the
//! same layout, and compare stdout, stderr, exit status and any files they wrote.
//!
//! Both programs are started with argv[0] = "inotifywait", so that getopt's messages
//! (which name argv[0]) are comparable byte for byte. The scratch directory's absolute
//! path is replaced by `<S>` in everything compared.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Proc, Scratch, assert_bytes_eq, bin, visible};

pub const INOTIFYWAIT: &str = "/usr/bin/inotifywait";

/// When the program is ready for the actions.
#[derive(Debug, Clone, Copy)]
pub enum Ready {
    /// "Watches established." on stderr.
    Banner,
    /// This many watches exist (for `-q`, which prints no banner).
    Watches(usize),
    /// The program is expected to exit by itself before any action (usage errors).
    Exit,
}

/// How the run ends.
#[derive(Debug, Clone, Copy)]
pub enum End {
    /// The program exits by itself (one-shot, timeout, error).
    Exit,
    /// Output stops changing for a while; then the program is terminated (SIGTERM).
    Settle,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub setup: String,
    /// Arguments; `{S}` is replaced by the scratch directory's path and `{xHH}` by the
    /// byte 0xHH (for names that are not UTF-8).
    pub args: Vec<String>,
    pub actions: String,
    pub ready: Ready,
    pub end: End,
    pub env: Vec<(String, String)>,
    pub stdin: Option<Vec<u8>>,
    /// Files (relative to the scratch dir) whose contents are compared too.
    pub files: Vec<String>,
    /// A clean-up script run after each program (e.g. unmount).
    pub cleanup: String,
    /// Run in a new user namespace with this inotify limit lowered
    /// (`max_inotify_watches` or `max_inotify_instances` in /proc/sys/user): the
    /// kernel keeps these per namespace, so tests never touch the machine's settings.
    pub limit: Option<(&'static str, u32)>,
}

/// A scenario with `setup`, `args` and `actions`, ready on the banner, ending with
/// settle if `-m` is among the arguments and by exit otherwise.
pub fn sc(setup: &str, args: &[&str], actions: &str) -> Scenario {
    let monitor = args
        .iter()
        .any(|a| *a == "-m" || (a.starts_with('-') && !a.starts_with("--") && a.contains('m')));
    Scenario {
        setup: setup.into(),
        args: args.iter().map(|s| s.to_string()).collect(),
        actions: actions.into(),
        ready: Ready::Banner,
        end: if monitor { End::Settle } else { End::Exit },
        env: vec![],
        stdin: None,
        files: vec![],
        cleanup: String::new(),
        limit: None,
    }
}

/// A usage-error scenario: the program exits before watching anything.
pub fn usage(args: &[&str]) -> Scenario {
    Scenario {
        ready: Ready::Exit,
        end: End::Exit,
        ..sc("mkdir d", args, "")
    }
}

impl Scenario {
    pub fn ready(mut self, r: Ready) -> Self {
        self.ready = r;
        self
    }
    pub fn end(mut self, e: End) -> Self {
        self.end = e;
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    pub fn stdin(mut self, data: &[u8]) -> Self {
        self.stdin = Some(data.to_vec());
        self
    }
    pub fn file(mut self, f: &str) -> Self {
        self.files.push(f.into());
        self
    }
    pub fn setup_more(mut self, script: &str) -> Self {
        self.setup.push_str("; ");
        self.setup.push_str(script);
        self
    }
    pub fn limit(mut self, which: &'static str, value: u32) -> Self {
        self.limit = Some((which, value));
        self
    }
    pub fn cleanup(mut self, c: &str) -> Self {
        self.cleanup = c.into();
        self
    }

    /// Runs under both programs and asserts identical results.
    #[track_caller]
    pub fn check(&self) {
        // A limit scenario without user namespaces would test nothing: fail under
        // CI=true, skip (saying so) elsewhere.
        if self.limit.is_some() && crate::util::require(user_namespaces()).is_none() {
            return;
        }
        let want = self.run(Path::new(INOTIFYWAIT));
        let got = self.run(&bin("rwait"));
        let ctx = format!(
            "scenario: setup {:?}; args {:?}; actions {:?}\n--- inotifywait stdout ---\n{}\n--- inotifywait stderr ---\n{}\n--- rwait stdout ---\n{}\n--- rwait stderr ---\n{}",
            self.setup,
            self.args,
            self.actions,
            visible(&want.stdout),
            visible(&want.stderr),
            visible(&got.stdout),
            visible(&got.stderr)
        );
        assert_bytes_eq(&format!("stdout\n{ctx}"), &got.stdout, &want.stdout);
        assert_bytes_eq(&format!("stderr\n{ctx}"), &got.stderr, &want.stderr);
        assert_eq!(got.code, want.code, "exit status\n{ctx}");
        assert_eq!(got.files, want.files, "files written\n{ctx}");
    }

    /// Runs the scenario under `prog` and returns what it did.
    pub fn run(&self, prog: &Path) -> Run {
        check_inotifywait_version();
        let s = Scratch::new();
        sh(s.path(), &self.setup);
        let args: Vec<std::ffi::OsString> = self.args.iter().map(|a| expand(a, s.path())).collect();
        let mut cmd = match self.limit {
            None => {
                let mut c = Command::new(prog);
                c.arg0("inotifywait").args(args);
                c
            }
            Some((which, value)) => {
                let mut c = Command::new("unshare");
                c.args(["--user", "--map-root-user", "bash", "-c"])
                    .arg(format!(
                        "echo {value} > /proc/sys/user/{which} && exec -a inotifywait \"$0\" \"$@\""
                    ))
                    .arg(prog)
                    .args(args);
                c
            }
        };
        cmd.current_dir(s.path());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut p = Proc::spawn(cmd);
        if let Some(data) = &self.stdin {
            use std::io::Write;
            let mut w = p.stdin();
            w.write_all(data).unwrap();
        }
        match self.ready {
            Ready::Banner => p.wait_stderr("Watches established."),
            Ready::Watches(n) => wait_watches(&mut p, n),
            Ready::Exit => {}
        }
        if !self.actions.is_empty() {
            sh(s.path(), &self.actions);
        }
        let out = match self.end {
            End::Exit => p.wait_exit(Duration::from_secs(15)),
            End::Settle => {
                settle(&p);
                p.signal(libc::SIGTERM);
                p.wait_exit(Duration::from_secs(15))
            }
        };
        let files = self
            .files
            .iter()
            .map(|f| {
                let path = s.join(f);
                let mode = std::fs::metadata(&path).map(|m| {
                    use std::os::unix::fs::PermissionsExt;
                    m.permissions().mode() & 0o777
                });
                (
                    f.clone(),
                    std::fs::read(&path).ok().map(|b| normalize(&b, s.path())),
                    mode.ok(),
                )
            })
            .collect();
        if !self.cleanup.is_empty() {
            sh(s.path(), &self.cleanup);
        }
        Run {
            stdout: normalize(&out.stdout, s.path()),
            stderr: normalize(&out.stderr, s.path()),
            code: out.code,
            files,
        }
    }
}

/// One argument with `{S}` replaced by `scratch` and `{xHH}` by the byte 0xHH.
pub fn expand(arg: &str, scratch: &Path) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    let a = arg.as_bytes();
    let mut out = Vec::with_capacity(a.len());
    let mut i = 0;
    while i < a.len() {
        if a[i..].starts_with(b"{S}") {
            out.extend_from_slice(scratch.as_os_str().as_bytes());
            i += 3;
        } else if a[i..].starts_with(b"{x") && a.get(i + 4) == Some(&b'}') {
            let hex = std::str::from_utf8(&a[i + 2..i + 4]).expect("{xHH} is ASCII");
            out.push(u8::from_str_radix(hex, 16).expect("{xHH} is hexadecimal"));
            i += 5;
        } else {
            out.push(a[i]);
            i += 1;
        }
    }
    std::ffi::OsString::from_vec(out)
}

/// The scenarios encode inotifywait 3.22.6's behaviour: any other version (or none)
/// fails every one of them with the reason instead of comparing against the wrong one.
pub fn check_inotifywait_version() {
    let out = Command::new(INOTIFYWAIT).arg("--help").stdin(Stdio::null()).output();
    let first = out
        .as_ref()
        .map(|o| String::from_utf8_lossy(o.stdout.split(|&b| b == b'\n').next().unwrap_or_default()).into_owned());
    match first {
        Ok(line) if line.trim() == "inotifywait 3.22.6.0" => {}
        Ok(line) => panic!("the differential tests need inotifywait 3.22.6 at {INOTIFYWAIT}, found {line:?}"),
        Err(e) => panic!(
            "the differential tests need the real inotifywait 3.22.6 at {INOTIFYWAIT} (apt-get install inotify-tools): {e}"
        ),
    }
}

/// `Ok` when this process can make a user namespace with its own inotify limits.
fn user_namespaces() -> Result<(), String> {
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "true"])
        .output()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "no user namespaces (unshare --user): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// What one program did in a scenario.
#[derive(Debug)]
pub struct Run {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub code: i32,
    pub files: Vec<(String, Option<Vec<u8>>, Option<u32>)>,
}

/// Runs a shell snippet in `dir` (test scaffolding only: the tools never use a shell).
pub fn sh(dir: &Path, script: &str) {
    if script.is_empty() {
        return;
    }
    let st = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()
        .expect("run bash");
    assert!(st.success(), "script failed ({st}): {script}");
}

fn normalize(b: &[u8], scratch: &Path) -> Vec<u8> {
    let needle = scratch.as_os_str().as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(needle) {
            out.extend_from_slice(b"<S>");
            i += needle.len();
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Polls until the process has `n` inotify watches (read from /proc/PID/fdinfo).
pub fn wait_watches(p: &mut Proc, n: usize) {
    let pid = p.pid();
    p.wait_for(&format!("{n} inotify watches"), crate::util::DEADLINE, move |_, _| {
        count_watches(pid) >= n
    });
}

/// Number of inotify watches process `pid` holds.
pub fn count_watches(pid: i32) -> usize {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    let mut n = 0;
    for e in rd.flatten() {
        let is_inotify = std::fs::read_link(e.path())
            .map(|l| l == Path::new("anon_inode:inotify"))
            .unwrap_or(false);
        if is_inotify {
            let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", e.file_name().to_string_lossy()))
                .unwrap_or_default();
            n += info.lines().filter(|l| l.starts_with("inotify wd:")).count();
        }
    }
    n
}

/// Waits until the process's output has not changed for a quiet period (bounded by a
/// deadline): the events of the actions have then all been printed.
pub fn settle(p: &Proc) {
    let quiet = Duration::from_millis(400);
    let end = Instant::now() + Duration::from_secs(10);
    let mut last = (p.stdout_now().len(), p.stderr_now().len());
    let mut since = Instant::now();
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
        let now = (p.stdout_now().len(), p.stderr_now().len());
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return;
        }
    }
}

/// What a program sent to syslog, besides its stderr and exit status.
#[derive(Debug)]
pub struct SyslogRun {
    /// Each datagram without its `<PRI>` and timestamp, the PID replaced by `PID`
    /// (after checking it is the program's own) and the scratch path by `<S>`.
    pub messages: Vec<Vec<u8>>,
    pub stderr: Vec<u8>,
    pub code: i32,
}

/// Runs `prog` (as `argv0`, or under its own path when `None`) with `args` in a scratch
/// directory prepared by `setup`, inside a private mount namespace where /dev is a
/// scratch directory holding /dev/null and, as `log`, a datagram socket this test
/// reads: glibc's syslog(3) writes to /dev/log, so this captures exactly what the
/// program logs without touching the machine's logger. Needs root (a mount
/// namespace); `Err` says why it cannot run.
pub fn run_with_syslog(prog: &Path, argv0: Option<&str>, setup: &str, args: &[&str]) -> Result<SyslogRun, String> {
    use std::os::unix::net::UnixDatagram;
    let probe = Command::new("unshare")
        .args(["-m", "--propagation", "private", "true"])
        .output()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    if !probe.status.success() {
        return Err(format!(
            "no private mount namespace (unshare -m): {}",
            String::from_utf8_lossy(&probe.stderr).trim()
        ));
    }
    let s = Scratch::new();
    sh(s.path(), setup);
    let dev = s.mkdir(".dev");
    std::fs::write(dev.join("null"), b"").unwrap();
    let sock = UnixDatagram::bind(dev.join("log")).unwrap();
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "bash", "-c"])
        .arg(r#"d=$1; p=$2; shift 2; mount --bind /dev/null "$d/null" && mount --rbind "$d" /dev && exec -a "$0" "$p" "$@""#)
        .arg(argv0.map_or_else(|| prog.as_os_str().to_owned(), Into::into))
        .arg(&dev)
        .arg(prog)
        .args(args.iter().map(|a| expand(a, s.path())))
        .current_dir(s.path())
        .stdin(Stdio::null());
    let p = Proc::spawn(cmd);
    let pid = p.pid();
    let out = p.wait_exit(Duration::from_secs(15));
    // A daemon's child logs after its parent exited: wait for a quiet spell.
    sock.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut messages = vec![];
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = sock.recv(&mut buf) {
        messages.push(normalize_syslog(&buf[..n], pid, s.path()));
    }
    Ok(SyslogRun {
        messages,
        stderr: normalize(&out.stderr, s.path()),
        code: out.code,
    })
}

/// `<30>Dec  2 13:16:12 ident[1234]: text` -> `ident[PID]: text`, or `ident[CHILD]`
/// when the PID is not `pid`'s (a daemon's child logs under its own).
fn normalize_syslog(d: &[u8], pid: i32, scratch: &Path) -> Vec<u8> {
    let body = match d.iter().position(|&b| b == b'>') {
        // `<PRI>` then a 15-byte timestamp and a space.
        Some(gt) if d.len() > gt + 17 => &d[gt + 17..],
        _ => d,
    };
    let body = match (
        body.iter().position(|&b| b == b'['),
        body.windows(3).position(|w| w == b"]: "),
    ) {
        (Some(open), Some(close)) if open < close => {
            let digits = &body[open + 1..close];
            let who: &[u8] = if digits == pid.to_string().as_bytes() {
                b"PID"
            } else if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
                b"CHILD"
            } else {
                digits
            };
            [&body[..=open], who, &body[close..]].concat()
        }
        _ => body.to_vec(),
    };
    normalize(&body, scratch)
}

/// 1,000 files in d (creating files is slow on some disks: ~0.4 ms each here).
pub const FILES: &str = "cd d && seq 1 1000 | xargs touch";
/// A script that makes more ATTRIB events than the kernel's queue holds
/// (`fs.inotify.max_queued_events`, 16,384 by default) by re-touching those files;
/// never two identical events in a row, so the kernel cannot merge any.
pub fn burst_past_queue() -> String {
    let max: u64 = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(16384);
    assert!(
        max <= 1_000_000,
        "fs.inotify.max_queued_events is {max}: too large to overflow in a test"
    );
    let rounds = max / 1000 + 1;
    format!("cd d && for i in $(seq {rounds}); do seq 1 1000 | xargs touch; done")
}
