//! Where events go: standard output (or the `-o` file dup'ed onto it), written so that
//! rwait never stops reading the kernel's queue because its reader is slow.
//!
//! inotifywait blocks in `write` while its consumer stalls, and meanwhile the kernel's
//! queue (16384 events by default) overflows and events are lost. rwait keeps what it
//! cannot write yet in memory and goes on reading:
//!
//! * a pipe (the usual case, `rwait | rbatch`) is reopened through `/proc/self/fd/1`
//!   as a new open file description with `O_NONBLOCK`: rwait's own, so the shared
//!   descriptor the shell and other processes hold stays blocking; the event loop
//!   polls it for room next to the inotify descriptor;
//! * a terminal or socket (which may block, and cannot be reopened safely) gets a
//!   writer thread fed through a channel;
//! * a regular file or a device like /dev/null never blocks for long and is written
//!   directly.
//!
//! One thread reads, formats and writes in the first and last cases: one wake-up per
//! kernel read, like inotifywait, instead of a hand-off between threads per read.
//!
//! What waits is bounded by [`PENDING_CAP`]: a consumer that never resumes must not
//! take all memory. Past the cap the waiting output is dropped (whole lines: a line
//! partly written is completed first) and [`Output::take_dropped`] says so, so that the
//! event loop can tell the consumer the way it tells it of a kernel overflow.

use std::fs::File;
use std::io::{self, Write};
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::sys::stdio::stdout_file;

/// How fd 1 is written, by what it is.
enum Stdout {
    /// Regular files and devices: plain blocking writes.
    Direct(ManuallyDrop<File>),
    /// Our own non-blocking description of the stdout pipe; `pending` holds what did
    /// not fit yet.
    Pipe(File),
    /// A writer thread, for terminals and sockets, and the bytes handed to it and
    /// not written yet.
    Thread(Option<mpsc::Sender<Vec<u8>>>, Option<JoinHandle<()>>, Arc<AtomicUsize>),
}

/// At most this much output waits for a consumer that does not read (64 MiB: some
/// 600,000 lines of a typical `%w%f` format, minutes of a busy tree's events).
pub const PENDING_CAP: usize = 64 << 20;

/// The output side of the event loop.
pub struct Output {
    sink: Stdout,
    pending: Vec<u8>,
    /// The last byte written ended a line (or nothing was written yet).
    at_line_start: bool,
    /// Output was dropped at the cap since the last [`Output::take_dropped`].
    dropped: bool,
    cap: usize,
}

/// What the writer thread does when a write fails (a consumer that went away has
/// already killed us with SIGPIPE): report and exit like the main thread would.
fn write_failed(e: &io::Error) -> ! {
    crate::common::msg::eprint("rwait", &format!("writing events: {}", crate::common::msg::os_error(e)));
    std::process::exit(1);
}

impl Output {
    /// Chooses how to write fd 1, after `-o` or `-d` have put the right file there.
    pub fn for_stdout() -> Output {
        let sink = match nix::sys::stat::fstat(io::stdout().as_fd()) {
            Ok(st) => {
                let kind = st.st_mode & libc::S_IFMT;
                if kind == libc::S_IFIFO {
                    // Opening a FIFO for writing with O_NONBLOCK fails (ENXIO) when
                    // nobody reads it; then writes would only raise SIGPIPE anyway.
                    match std::fs::OpenOptions::new()
                        .write(true)
                        .custom_flags(libc::O_NONBLOCK)
                        .open("/proc/self/fd/1")
                    {
                        Ok(f) => Stdout::Pipe(f),
                        Err(_) => Self::thread(),
                    }
                } else if kind == libc::S_IFREG
                    || (kind == libc::S_IFCHR && !nix::unistd::isatty(io::stdout()).unwrap_or(false))
                {
                    Stdout::Direct(stdout_file())
                } else {
                    Self::thread()
                }
            }
            // fd 1 closed: writes fail with EBADF, reported when they happen.
            Err(_) => Stdout::Direct(stdout_file()),
        };
        Output {
            sink,
            pending: Vec::new(),
            at_line_start: true,
            dropped: false,
            cap: PENDING_CAP,
        }
    }

    /// True once after output was dropped at the cap.
    pub fn take_dropped(&mut self) -> bool {
        std::mem::take(&mut self.dropped)
    }

    fn thread() -> Stdout {
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let queued = Arc::new(AtomicUsize::new(0));
        let q = queued.clone();
        let handle = std::thread::Builder::new().name("rwait-writer".into()).spawn(move || {
            let mut out = stdout_file();
            for buf in rx {
                if let Err(e) = out.write_all(&buf) {
                    write_failed(&e);
                }
                q.fetch_sub(buf.len(), Ordering::Relaxed);
            }
        });
        match handle {
            Ok(h) => Stdout::Thread(Some(tx), Some(h), queued),
            // No thread to be had: blocking writes are still correct, only not stall-proof.
            Err(_) => Stdout::Direct(stdout_file()),
        }
    }

    /// Hands over `buf` (left empty) to be written: written now as far as possible,
    /// the rest kept for later.
    pub fn submit(&mut self, buf: &mut Vec<u8>) {
        if buf.is_empty() {
            return;
        }
        match &mut self.sink {
            Stdout::Direct(f) => {
                if let Err(e) = f.write_all(buf) {
                    write_failed(&e);
                }
                buf.clear();
            }
            Stdout::Thread(tx, _, queued) => {
                // Every buffer handed over ends with a whole event: dropping whole
                // buffers keeps lines whole.
                if queued.load(Ordering::Relaxed) + buf.len() > self.cap {
                    buf.clear();
                    self.dropped = true;
                } else if let Some(tx) = tx {
                    queued.fetch_add(buf.len(), Ordering::Relaxed);
                    let _ = tx.send(std::mem::take(buf));
                }
            }
            Stdout::Pipe(_) => {
                if self.pending.is_empty() {
                    std::mem::swap(&mut self.pending, buf);
                } else {
                    self.pending.append(buf);
                }
                self.write_some();
                if self.pending.len() > self.cap {
                    // Keep only the rest of a line already partly written.
                    let keep = if self.at_line_start {
                        0
                    } else {
                        self.pending.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1)
                    };
                    self.pending.truncate(keep);
                    self.pending.shrink_to(64 * 1024);
                    self.dropped = true;
                    self.write_some();
                }
            }
        }
    }

    /// Writes as much pending output as the pipe takes without blocking.
    fn write_some(&mut self) {
        let Stdout::Pipe(f) = &mut self.sink else { return };
        let mut done = 0;
        while done < self.pending.len() {
            match f.write(&self.pending[done..]) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => write_failed(&e),
            }
        }
        if done > 0 {
            self.at_line_start = self.pending[done - 1] == b'\n';
        }
        self.pending.drain(..done);
    }

    /// The descriptor to poll for room, when output is waiting for it.
    pub fn wants_room(&self) -> Option<BorrowedFd<'_>> {
        match &self.sink {
            Stdout::Pipe(f) if !self.pending.is_empty() => Some(f.as_fd()),
            _ => None,
        }
    }

    /// The pipe has room: write more.
    pub fn on_room(&mut self) {
        self.write_some();
    }

    /// Writes everything still pending, blocking as needed (before exiting).
    pub fn finish(&mut self) {
        match &mut self.sink {
            Stdout::Direct(_) => {}
            Stdout::Pipe(_) => {
                while !self.pending.is_empty() {
                    if let Some(fd) = self.wants_room() {
                        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
                        let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                        let _ = poll(&mut fds, PollTimeout::NONE);
                    }
                    self.write_some();
                }
            }
            Stdout::Thread(tx, handle, _) => {
                drop(tx.take());
                if let Some(h) = handle.take() {
                    let _ = h.join();
                }
            }
        }
    }
}

use std::os::unix::fs::OpenOptionsExt;
