//! A small harness for running the real binaries: a scratch directory per test,
//! child processes whose stdout and stderr are collected by background threads, waits
//! that poll with a deadline (never a bare sleep), and failure messages that dump
//! everything: the command, its exit status, its whole stdout and stderr.

#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The default deadline for anything a test waits for. Generous: CI machines are slow
/// and a deadline only bounds a failing test, it never slows a passing one.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A prerequisite a test cannot run without (root, a mount, `script(1)`, ...): `Ok` hands
/// it on. Without it, under `CI=true` the test fails with the reason, because a CI run that
/// silently tests less must not pass; elsewhere (a developer's machine) the test is
/// skipped and says so on stderr, and the caller returns.
pub fn require<T>(prerequisite: Result<T, String>) -> Option<T> {
    match prerequisite {
        Ok(t) => Some(t),
        Err(why) if std::env::var_os("CI").is_some_and(|v| v == "true") => {
            panic!("prerequisite missing under CI=true: {why}")
        }
        Err(why) => {
            eprintln!("skipped: {why}");
            None
        }
    }
}

/// The one poll: until `pred` holds, every few milliseconds; at the deadline, fails
/// with `what` and `dump()`.
#[track_caller]
pub fn wait_until(what: &str, deadline: Duration, mut pred: impl FnMut() -> bool, dump: impl Fn() -> String) {
    let end = Instant::now() + deadline;
    while !pred() {
        if Instant::now() > end {
            panic!("timed out after {deadline:?} waiting for {what}\n{}", dump());
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Polls until `path` exists; on the deadline, fails with `what` and `dump()`.
#[track_caller]
pub fn wait_exists(what: &str, path: &Path, dump: impl Fn() -> String) {
    wait_until(&format!("{what}: {}", path.display()), DEADLINE, || path.exists(), dump);
}

/// Path of one of this package's binaries, as built by cargo for this test run.
pub fn bin(name: &str) -> PathBuf {
    match name {
        "rwait" => PathBuf::from(env!("CARGO_BIN_EXE_rwait")),
        other => {
            // Binaries other than rwait are looked up beside rwait so that this harness
            // compiles before they exist.
            let dir = Path::new(env!("CARGO_BIN_EXE_rwait")).parent().unwrap();
            dir.join(other)
        }
    }
}

/// A scratch directory, removed when dropped unless the test failed (then kept and
/// named in the panic message so it can be inspected).
pub struct Scratch {
    dir: Option<tempfile::TempDir>,
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix("syncpipe-test-")
            .tempdir()
            .expect("create scratch dir");
        Scratch { dir: Some(dir) }
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().unwrap().path()
    }

    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path().join(rel)
    }

    pub fn mkdir(&self, rel: impl AsRef<Path>) -> PathBuf {
        let p = self.join(rel);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    pub fn write(&self, rel: impl AsRef<Path>, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, data).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if thread::panicking()
            && let Some(d) = self.dir.take()
        {
            eprintln!("scratch directory kept: {}", d.keep().display());
        }
    }
}

/// Shared growable byte buffer filled by a reader thread.
type Sink = Arc<Mutex<Vec<u8>>>;

fn drain(mut r: impl Read + Send + 'static, sink: Sink) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => sink.lock().unwrap().extend_from_slice(&buf[..n]),
            }
        }
    })
}

/// A running child process with its output collected in the background.
pub struct Proc {
    pub desc: String,
    child: Child,
    out: Sink,
    err: Sink,
    readers: Vec<thread::JoinHandle<()>>,
    status: Option<ExitStatus>,
}

/// How a finished process ended, with everything it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Exit code, or 128 + signal number when killed by a signal (the shell's view).
    pub code: i32,
}

impl Output {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

pub fn describe(cmd: &Command) -> String {
    let mut s = format!("{:?}", cmd.get_program());
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&format!("{a:?}"));
    }
    if let Some(dir) = cmd.get_current_dir() {
        s.push_str(&format!("  (in {})", dir.display()));
    }
    s
}

fn shell_code(st: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))
}

impl Proc {
    /// Spawns `cmd` with stdout and stderr piped (stdin as the caller set it, default null).
    pub fn spawn(mut cmd: Command) -> Proc {
        cmd.stdout(Stdio::piped());
        Proc::spawn_keep_stdout(cmd)
    }

    /// Like [`spawn`](Self::spawn), but stdout goes wherever the caller pointed it
    /// (then it is not collected).
    pub fn spawn_keep_stdout(mut cmd: Command) -> Proc {
        let desc = describe(&cmd);
        cmd.stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {desc}: {e}"));
        let out: Sink = Arc::default();
        let err: Sink = Arc::default();
        let mut readers = vec![drain(child.stderr.take().unwrap(), err.clone())];
        if let Some(stdout) = child.stdout.take() {
            readers.push(drain(stdout, out.clone()));
        }
        Proc {
            desc,
            child,
            out,
            err,
            readers,
            status: None,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn stdin(&mut self) -> std::process::ChildStdin {
        self.child.stdin.take().expect("stdin was not piped")
    }

    pub fn stdout_now(&self) -> Vec<u8> {
        self.out.lock().unwrap().clone()
    }

    pub fn stderr_now(&self) -> Vec<u8> {
        self.err.lock().unwrap().clone()
    }

    /// Everything known about the process, for failure messages.
    pub fn dump(&self) -> String {
        format!(
            "command: {}\nstatus: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}\n---",
            self.desc,
            self.status,
            String::from_utf8_lossy(&self.stdout_now()),
            String::from_utf8_lossy(&self.stderr_now())
        )
    }

    /// Polls until `pred(stdout, stderr)` holds, panicking with a dump at the deadline.
    pub fn wait_for(&mut self, what: &str, deadline: Duration, pred: impl Fn(&[u8], &[u8]) -> bool) {
        let end = Instant::now() + deadline;
        loop {
            if pred(&self.stdout_now(), &self.stderr_now()) {
                return;
            }
            if Instant::now() > end {
                self.kill();
                panic!("timed out waiting for {what}\n{}", self.dump());
            }
            if self.status.is_none()
                && let Ok(Some(st)) = self.child.try_wait()
            {
                self.status = Some(st);
                // The readers may still hold the last bytes: wait for them (they end at
                // EOF now that the process is gone) before the final check.
                for r in self.readers.drain(..) {
                    let _ = r.join();
                }
                if pred(&self.stdout_now(), &self.stderr_now()) {
                    return;
                }
                panic!("process exited while waiting for {what}\n{}", self.dump());
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn wait_stderr(&mut self, needle: &str) {
        let n = needle.as_bytes().to_vec();
        self.wait_for(&format!("{needle:?} on stderr"), DEADLINE, move |_, e| contains(e, &n));
    }

    pub fn wait_stdout(&mut self, needle: &[u8]) {
        let n = needle.to_vec();
        self.wait_for(
            &format!("{:?} on stdout", String::from_utf8_lossy(needle)),
            DEADLINE,
            move |o, _| contains(o, &n),
        );
    }

    /// Sends a signal (e.g. `libc::SIGTERM`).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
    }

    /// Waits for the process to exit on its own within `deadline`; kills it and panics
    /// with a dump otherwise.
    pub fn wait_exit(mut self, deadline: Duration) -> Output {
        let end = Instant::now() + deadline;
        let st = loop {
            if let Some(st) = self.status {
                break st;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                break st;
            }
            if Instant::now() > end {
                self.kill();
                let _ = self.child.wait();
                panic!("process did not exit within {deadline:?}\n{}", self.dump());
            }
            thread::sleep(Duration::from_millis(5));
        };
        self.status = Some(st);
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Output {
            stdout: self.stdout_now(),
            stderr: self.stderr_now(),
            code: shell_code(st),
        }
    }

    /// Kills the process (SIGKILL) and returns what it wrote.
    pub fn finish(mut self) -> Output {
        self.kill();
        self.wait_exit(DEADLINE)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs a command to completion (stdin null) with a deadline.
pub fn run(cmd: Command) -> Output {
    Proc::spawn(cmd).wait_exit(DEADLINE)
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Bytes of a path, for building expected output.
pub fn bytes(p: impl AsRef<OsStr>) -> Vec<u8> {
    p.as_ref().as_bytes().to_vec()
}

pub fn os(b: &[u8]) -> OsString {
    OsStr::from_bytes(b).to_os_string()
}

/// Renders bytes like `cat -A` for readable assertion failures.
pub fn visible(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        match c {
            b'\n' => s.push_str("$\n"),
            b'\t' => s.push_str("^I"),
            0x20..=0x7e => s.push(c as char),
            0..=0x1f => {
                s.push('^');
                s.push((c + 64) as char);
            }
            0x7f => s.push_str("^?"),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

/// Asserts two byte strings are equal, showing both `cat -A` style on failure.
#[track_caller]
pub fn assert_bytes_eq(what: &str, got: &[u8], want: &[u8]) {
    if got != want {
        panic!(
            "{what} differs\n--- got ---\n{}\n--- want ---\n{}\n---",
            visible(got),
            visible(want)
        );
    }
}
