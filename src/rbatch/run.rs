//! The run loop: one `poll` over stdin, a signal self-pipe and the delivery worker's
//! "done" pipe, with the coalescer's next deadline as the timeout.
//!
//! Delivery (writing a batch to stdout, or running `--exec`) happens on a worker thread
//! so that a slow consumer never stops us from reading: an inotifywait blocked on a full
//! pipe is how kernel queues overflow. While a batch is being delivered the next one
//! stays open and keeps merging, so batches never overlap; only when that one is full
//! too does reading pause, which keeps `--max-paths` a hard cap and memory bounded.
//!
//! stdin is read with our own framing rather than a blocking record reader: one that
//! blocks inside `read` to complete a record would hold back deadlines and signals
//! whenever a partial line sits in the pipe.

use std::ffi::OsString;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::common::msg::{eprint, escape_bytes};

use super::cli::{Config, Delivery};
use super::coalesce::{Batch, Coalescer, normalize};
use super::filter::{Filter, Verdict};
use super::parse::{Kind, Parser, Sink};

const PROG: &str = "rbatch";

/// A record longer than this cannot be a path (PATH_MAX is 4096) or an event line; it
/// is skipped rather than buffered, so no input can make memory grow without bound.
const MAX_EVENT_LINE: usize = 1 << 20;

/// An error text without Rust's `(os error N)` suffix: `Broken pipe`, as C tools say it.
pub use crate::common::msg::os_error as cause;

/// Delivery that failed so that the paths cannot reach anyone: the caller stops.
struct Fatal {
    message: String,
    undelivered: usize,
}

fn deliver(output: &Delivery, delim: u8, batch: &Batch) -> Result<(), Fatal> {
    match output {
        Delivery::Print => {
            let stdout = io::stdout();
            let mut w = BufWriter::with_capacity(64 * 1024, stdout.lock());
            write_paths(&mut w, batch, delim)
                .and_then(|()| w.write_all(&[delim]))
                .and_then(|()| w.flush())
                .map_err(|e| Fatal {
                    message: format!("writing batch: {}", cause(&e)),
                    undelivered: batch.paths.len(),
                })
        }
        Delivery::Exec(argv) => match run_exec(argv, delim, batch) {
            Some(fatal) => Err(fatal),
            None => Ok(()),
        },
    }
}

fn write_paths(w: &mut impl Write, batch: &Batch, delim: u8) -> io::Result<()> {
    for p in &batch.paths {
        w.write_all(p)?;
        w.write_all(&[delim])?;
    }
    Ok(())
}

/// The batch as a command's stdin. Only failing to start is fatal (the paths reached
/// nobody); a command that fails or does not read its input got its chance and is
/// reported.
fn run_exec(argv: &[OsString], delim: u8, batch: &Batch) -> Option<Fatal> {
    let name = escape_bytes(argv[0].as_bytes());
    let child = Command::new(&argv[0]).args(&argv[1..]).stdin(Stdio::piped()).spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            return Some(Fatal {
                message: format!("--exec {name}: {}", cause(&e)),
                undelivered: batch.paths.len(),
            });
        }
    };
    if let Some(stdin) = child.stdin.take() {
        let mut w = BufWriter::with_capacity(64 * 1024, stdin);
        match write_paths(&mut w, batch, delim).and_then(|()| w.flush()) {
            // `--exec systemctl reload x` does not read its stdin, and need not.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
            Err(e) => eprint(PROG, &format!("--exec {name}: writing paths: {}", cause(&e))),
            Ok(()) => {}
        }
        // Dropping the writer closes the pipe: the command sees the end of the batch.
        drop(w.into_parts().0);
    }
    match child.wait() {
        Ok(st) if st.success() => {}
        Ok(st) => eprint(PROG, &format!("--exec {name}: {}", describe_status(st))),
        Err(e) => eprint(PROG, &format!("--exec {name}: waiting: {}", cause(&e))),
    }
    None
}

fn describe_status(st: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => match nix::sys::signal::Signal::try_from(sig) {
            Ok(s) => format!("killed by signal {sig} ({})", s.as_str()),
            Err(_) => format!("killed by signal {sig}"),
        },
        (None, None) => format!("{st}"),
    }
}

/// The stages after parsing: filter, then merge into the open batch.
struct Admit<'a> {
    filter: &'a mut Filter,
    coalescer: &'a mut Coalescer,
    now: Instant,
    out_delim: u8,
}

impl Sink for Admit<'_> {
    fn path(&mut self, line: u64, path: &[u8], kind: Kind) {
        if self.filter.check(path, kind != Kind::Overflow) != Verdict::Keep {
            return;
        }
        if self.out_delim == b'\n' && path.contains(&b'\n') {
            self.newline_in_path(line, path, kind);
            return;
        }
        self.coalescer.push(self.now, path, kind);
    }

    fn problem(&mut self, line: u64, message: String) {
        eprint(PROG, &format!("line {line}: {message}"));
    }
}

impl Admit<'_> {
    /// Newline-separated output cannot carry this name; its nearest directory without a
    /// newline, as a whole tree, still gets the change delivered.
    fn newline_in_path(&mut self, line: u64, path: &[u8], kind: Kind) {
        let path = normalize(path);
        let nl = path.iter().position(|&b| b == b'\n').unwrap_or(path.len());
        let dir = match path[..nl].iter().rposition(|&b| b == b'/') {
            Some(0) | None => None,
            Some(i) => Some(&path[..i]),
        };
        match dir {
            Some(dir) => {
                eprint(
                    PROG,
                    &format!(
                        "line {line}: '{}' holds a newline, which newline-separated output cannot \
                         carry: passing its directory '{}' instead (use -z)",
                        escape_bytes(path),
                        escape_bytes(dir)
                    ),
                );
                let kind = if kind == Kind::Overflow { kind } else { Kind::Tree };
                self.coalescer.push(self.now, dir, kind);
            }
            None => eprint(
                PROG,
                &format!(
                    "line {line}: '{}' holds a newline, which newline-separated output cannot \
                     carry, and has no directory to pass instead: skipped (use -z)",
                    escape_bytes(path)
                ),
            ),
        }
    }
}

/// stdin framing: complete records are handed out from one buffer, the partial tail is
/// kept for the next read.
struct Input {
    buf: Vec<u8>,
    start: usize,
    line: u64,
    /// End of input was read: an unterminated last record is a record.
    eof: bool,
    /// Inside a record longer than `MAX_EVENT_LINE`, discarding up to its end.
    skipping: bool,
}

impl Input {
    fn new() -> Input {
        Input {
            buf: Vec::with_capacity(256 * 1024),
            start: 0,
            line: 0,
            eof: false,
            skipping: false,
        }
    }

    /// One `read` (retrying EINTR); Ok(0) at end of input.
    fn fill(&mut self, src: &mut impl Read) -> io::Result<usize> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + 256 * 1024, 0);
        loop {
            match src.read(&mut self.buf[old..]) {
                Ok(n) => {
                    self.buf.truncate(old + n);
                    self.eof |= n == 0;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        }
    }

    /// Hands out complete records (and at end of input an unterminated last one) while
    /// `f` returns true; false when it stopped early with records left.
    fn records(&mut self, delim: u8, mut f: impl FnMut(u64, &[u8]) -> bool) -> bool {
        loop {
            let rest = &self.buf[self.start..];
            let (rec, used) = match rest.iter().position(|&b| b == delim) {
                Some(i) => (&rest[..i], i + 1),
                None if self.eof && !rest.is_empty() => (rest, rest.len()),
                None => {
                    if rest.len() >= MAX_EVENT_LINE {
                        if !self.skipping {
                            eprint(
                                PROG,
                                &format!(
                                    "line {}: longer than {MAX_EVENT_LINE} bytes, so neither a path nor an \
                                     event line (skipped)",
                                    self.line + 1
                                ),
                            );
                            self.skipping = true;
                        }
                        self.start = self.buf.len();
                    }
                    return true;
                }
            };
            self.line += 1;
            self.start += used;
            // The head of an overlong record was reported when it began.
            if !std::mem::take(&mut self.skipping) && !f(self.line, rec) {
                return false;
            }
        }
    }

    /// Bytes of a record whose end has not been read yet.
    fn partial(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn drop_partial(&mut self) {
        self.start = self.buf.len();
    }
}

fn paths(n: usize) -> String {
    if n == 1 { "1 path".into() } else { format!("{n} paths") }
}

/// Runs until end of input or a signal; the exit status is 0 unless paths could not be
/// delivered or input could not be read (1).
pub fn run(cfg: Config) -> ExitCode {
    match run_loop(cfg) {
        Ok(code) => code,
        Err(msg) => {
            eprint(PROG, &msg);
            ExitCode::from(1)
        }
    }
}

fn run_loop(cfg: Config) -> Result<ExitCode, String> {
    let setup = |what: &str, e: io::Error| format!("{what}: {}", cause(&e));
    let (sig_r, sig_w) = UnixStream::pair().map_err(|e| setup("signal pipe", e))?;
    sig_r.set_nonblocking(true).map_err(|e| setup("signal pipe", e))?;
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let w = sig_w.try_clone().map_err(|e| setup("signal pipe", e))?;
        signal_hook::low_level::pipe::register(sig, w).map_err(|e| setup("signal handler", e))?;
    }
    drop(sig_w);
    let (done_r, done_w) = UnixStream::pair().map_err(|e| setup("worker pipe", e))?;
    done_r.set_nonblocking(true).map_err(|e| setup("worker pipe", e))?;

    let (batch_tx, batch_rx) = mpsc::channel::<Batch>();
    let (result_tx, result_rx) = mpsc::channel::<Result<(), Fatal>>();
    let output = cfg.output.clone();
    let out_delim = cfg.out_delim;
    let worker = thread::Builder::new()
        .name("rbatch-deliver".into())
        .spawn(move || {
            let mut done_w = done_w;
            for batch in batch_rx {
                let r = deliver(&output, out_delim, &batch);
                let stop = r.is_err();
                if result_tx.send(r).is_err() {
                    break;
                }
                let _ = done_w.write_all(b"x");
                if stop {
                    break;
                }
            }
        })
        .map_err(|e| setup("starting the delivery thread", e))?;

    let mut parser = Parser::new(cfg.input);
    let mut filter = Filter::new(!cfg.keep_temp, cfg.excludes);
    let mut coalescer = Coalescer::new(cfg.limits);
    let mut input = Input::new();
    let stdin = io::stdin();
    let mut stdin_lock = stdin.lock();
    let in_delim = cfg.in_delim;
    let quiet = cfg.limits.quiet;
    let max_paths = cfg.limits.max_paths;

    // A batch is being delivered; the next one stays open meanwhile.
    let mut busy = false;
    // stdin is still polled (false after end of input, a read error or a signal).
    let mut reading = true;
    // Complete records wait in the buffer because the open batch is full and the
    // previous one is still being delivered: the size cap holds, and memory with it.
    let mut stalled = false;
    let mut read_failed = false;
    let mut pending_since: Option<Instant> = None;
    let mut scratch = [0u8; 64];

    // Parses buffered records into the open batch until it is full; true if stalled.
    let take_records = |input: &mut Input, parser: &mut Parser, filter: &mut Filter, co: &mut Coalescer| {
        let mut sink = Admit {
            filter,
            coalescer: co,
            now: Instant::now(),
            out_delim,
        };
        !input.records(in_delim, |line, rec| {
            parser.feed(line, rec, &mut sink);
            sink.coalescer.len() < max_paths
        })
    };

    loop {
        let now = Instant::now();
        if stalled && !busy && coalescer.len() < max_paths {
            stalled = take_records(&mut input, &mut parser, &mut filter, &mut coalescer);
        }
        if parser.has_pending() {
            let since = *pending_since.get_or_insert(now);
            if (!reading && !stalled) || now.saturating_duration_since(since) >= quiet {
                let mut sink = Admit {
                    filter: &mut filter,
                    coalescer: &mut coalescer,
                    now,
                    out_delim,
                };
                parser.give_up(&mut sink);
            }
        }
        if !parser.has_pending() {
            pending_since = None;
        }
        let draining = !reading && !stalled;
        if !busy {
            let batch = if draining {
                coalescer.take()
            } else {
                coalescer.poll(now)
            };
            if let Some(b) = batch {
                busy = true;
                if batch_tx.send(b).is_err() {
                    return Err("delivery thread ended unexpectedly".into());
                }
            } else if draining {
                break;
            }
        }

        let mut deadline = if busy { None } else { coalescer.next_deadline() };
        if let Some(since) = pending_since {
            let d = since.checked_add(quiet);
            deadline = match (deadline, d) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                // Rounded up: a timeout that ends before the deadline would spin.
                let left = d.saturating_duration_since(Instant::now());
                let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };

        let (sig_ready, done_ready, in_ready) = {
            let mut fds = vec![
                PollFd::new(sig_r.as_fd(), PollFlags::POLLIN),
                PollFd::new(done_r.as_fd(), PollFlags::POLLIN),
            ];
            if reading && !stalled {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(format!("poll: {}", e.desc())),
            }
            let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
            (ready(&fds[0]), ready(&fds[1]), fds.get(2).is_some_and(ready))
        };

        if sig_ready {
            while matches!((&sig_r).read(&mut scratch), Ok(n) if n > 0) {}
            if reading {
                reading = false;
                if !input.eof && !input.partial().is_empty() {
                    let part = input.partial();
                    eprint(
                        PROG,
                        &format!(
                            "line {}: incomplete when the signal came: '{}' (skipped)",
                            input.line + 1,
                            escape_bytes(&part[..part.len().min(200)])
                        ),
                    );
                    input.drop_partial();
                }
            }
        }
        if done_ready {
            while matches!((&done_r).read(&mut scratch), Ok(n) if n > 0) {}
            loop {
                let r = match result_rx.try_recv() {
                    Ok(r) => r,
                    Err(mpsc::TryRecvError::Empty) => break,
                    // Only a panic ends the worker while we still send to it.
                    Err(mpsc::TryRecvError::Disconnected) => {
                        let lost = coalescer.len();
                        return Err(format!(
                            "delivery thread ended unexpectedly; {} not delivered",
                            paths(lost)
                        ));
                    }
                };
                busy = false;
                if let Err(f) = r {
                    eprint(PROG, &f.message);
                    let lost = f.undelivered + coalescer.len();
                    eprint(PROG, &format!("{} not delivered", paths(lost)));
                    drop(batch_tx);
                    let _ = worker.join();
                    return Ok(ExitCode::from(1));
                }
            }
        }
        if in_ready && reading && !stalled {
            match input.fill(&mut stdin_lock) {
                Ok(n) => {
                    stalled = take_records(&mut input, &mut parser, &mut filter, &mut coalescer);
                    if n == 0 {
                        reading = false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    eprint(PROG, &format!("reading input: {}", cause(&e)));
                    read_failed = true;
                    reading = false;
                }
            }
        }
    }
    drop(batch_tx);
    let _ = worker.join();
    Ok(if read_failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
