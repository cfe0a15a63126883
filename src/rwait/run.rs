//! Setting up and running the watch: the same start-up order as inotifywait (so the
//! same error wins when several are possible), then the event loop.
//!
//! One loop polls the inotify descriptor (and, when output is waiting, the output
//! pipe), reads whatever the kernel has, turns it into output and hands everything
//! that came from one read to [`Output`] in one piece: one `write` per kernel read
//! instead of one per event, and nothing waits in a buffer while rwait sleeps. Output
//! never blocks the loop (see `output`), so a consumer that stops reading for seconds
//! never makes the kernel's queue overflow.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use inotify::Inotify;

use super::cli::{self, Args};
use super::events::*;
use super::format::{Renderer, View};
use super::output::{Output, PENDING_CAP};
use super::track::{Moves, ScanDups};
use super::watch::{Found, Table, WalkError, WalkMode};
use crate::common::msg::{eprintln_raw, os_error as strerror_text};
use crate::sys::regex::PosixRegex;
use crate::sys::{strftime, syslog};

/// One event as read from the kernel (its name borrowed from the read buffer), or
/// synthesised for an entry found in a new directory.
#[derive(Debug, Clone, Copy)]
struct Ev<'a> {
    wd: i32,
    mask: u32,
    cookie: u32,
    name: &'a [u8],
}

/// Where diagnostics after start-up go: stderr, or syslog with `-s`/`-d`.
#[derive(Clone, Copy)]
pub(super) struct Log {
    syslog: bool,
}

impl Log {
    /// One diagnostic. Messages are bytes like the paths they name (inotifywait prints
    /// `nonexist\377` raw, and so do we). To syslog it goes with its newline, as
    /// inotifywait sends it (its messages are the stderr lines, `\n` included).
    pub(super) fn line(&self, msg: impl AsRef<[u8]>) {
        if self.syslog {
            syslog::info(&[msg.as_ref(), b"\n"].concat());
        } else {
            eprintln_raw(msg);
        }
    }
}

/// `parts` concatenated: a message built from text and raw path bytes.
fn msg(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Runs rwait with `args` (`argv[0]` first) and returns the exit status.
pub fn run(args: &[OsString]) -> u8 {
    strftime::init_timezone();
    let a = {
        let (mut out, mut err) = (io::stdout().lock(), io::stderr().lock());
        match cli::parse(args, &mut out, &mut err) {
            Ok(a) => a,
            Err(code) => return code,
        }
    };
    match setup_and_watch(a) {
        Ok(code) | Err(code) => code,
    }
}

/// `<what><path>: <strerror>`, in bytes (paths are bytes).
fn path_message(what: &str, path: &[u8], e: &io::Error) -> Vec<u8> {
    let mut m = what.as_bytes().to_vec();
    m.extend_from_slice(path);
    m.extend_from_slice(b": ");
    m.extend_from_slice(strerror_text(e).as_bytes());
    m
}

/// A new directory that is gone again, or is no directory any more, by the time rwait
/// looks at it: nothing to say (inotifywait's message for it is noise under churn).
fn vanished(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR))
}

fn setup_and_watch(a: Args) -> Result<u8, u8> {
    let ino = Inotify::init().map_err(|e| {
        eprintln_raw(format!("Couldn't initialize inotify: {}", strerror_text(&e)));
        if e.raw_os_error() == Some(libc::EMFILE) {
            eprintln_raw("Try increasing the value of /proc/sys/fs/inotify/max_user_instances");
        }
        1
    })?;

    let compile = |p: &cli::Pattern, which: &str| {
        PosixRegex::new(&p.regex, p.icase).map_err(|_| {
            eprintln_raw(format!("Error in `{which}' regular expression."));
            1
        })
    };
    let filter = match (&a.exclude, &a.include) {
        (Some(p), _) => Some((compile(p, "exclude")?, true)),
        (None, Some(p)) => Some((compile(p, "include")?, false)),
        (None, None) => None,
    };

    let renderer = if a.csv {
        Renderer::Csv
    } else if let Some(f) = &a.format {
        let r = Renderer::format(f, !a.no_newline, a.timefmt.as_deref());
        if r.probe_is_empty() {
            eprintln_raw("Something is wrong with your format string.");
            return Err(1);
        }
        r
    } else {
        Renderer::Default
    };

    let print_mask = if a.events == 0 { ALL_EVENTS } else { a.events };
    let mut kernel_mask = print_mask;
    if a.monitor && a.recursive {
        // CREATE/MOVED_* to follow new and renamed directories (as inotifywait);
        // MOVE_SELF so a directory that left the tree is known to have left.
        kernel_mask |= CREATE | MOVED_TO | MOVED_FROM | MOVE_SELF;
    }
    if a.no_dereference {
        kernel_mask |= DONT_FOLLOW;
    }

    // Operands: --fromfile lines first, then the command line; `@X` excludes X from
    // recursive walks; empty operands and a lone `@` are skipped.
    let mut operands: Vec<Vec<u8>> = Vec::new();
    let mut excludes: Vec<Vec<u8>> = Vec::new();
    let mut raw: Vec<Vec<u8>> = Vec::new();
    if let Some(f) = &a.fromfile {
        match read_fromfile(f) {
            Ok(lines) => raw.extend(lines),
            Err(e) => eprintln_raw(msg(&[
                b"Couldn't open ",
                f.as_bytes(),
                b": ",
                strerror_text(&e).as_bytes(),
            ])),
        }
    }
    raw.extend(a.operands.iter().map(|o| o.as_bytes().to_vec()));
    for op in raw {
        if op.is_empty() || op == b"@" {
            continue;
        }
        match op.strip_prefix(b"@") {
            Some(x) => excludes.push(x.to_vec()),
            None => operands.push(op),
        }
    }
    if operands.is_empty() {
        eprintln_raw("No files specified to watch!");
        return Err(1);
    }

    if a.daemon {
        let out = a.outfile.clone().unwrap_or_default();
        let abs = std::fs::canonicalize(&out).map_err(|e| {
            eprintln_raw(msg(&[strerror_text(&e).as_bytes(), b": ", out.as_bytes()]));
            1
        })?;
        // Before any thread (the output's writer starts later): the fork keeps only
        // this one. daemon(0, 0) chdirs to / and points stdio at /dev/null.
        if nix::unistd::daemon(false, false).is_err() {
            eprintln_raw("Failed to daemonize!");
            return Err(1);
        }
        open_outfile(abs.as_os_str()).map_err(|_| 1)?;
    } else if let Some(out) = &a.outfile {
        open_outfile(out).map_err(|_| {
            eprintln_raw(msg(&[b"Failed to open output file ", out.as_bytes()]));
            1
        })?;
    }

    let log = Log { syslog: a.syslog };
    if a.syslog {
        syslog::open(a.syslog_ident);
    }
    if a.backend != cli::Backend::Inotify {
        let setup = super::fanotify::Setup {
            operands,
            excludes,
            filter,
            renderer,
            print_mask,
            args: &a,
        };
        return super::fanotify::watch(setup, log);
    }
    if a.quiet == 0 {
        log.line(if a.recursive {
            "Setting up watches.  Beware: since -r was given, this may take a while!"
        } else {
            "Setting up watches."
        });
    }

    let mut table = Table::new(ino.watches(), kernel_mask);
    let mut roots: Vec<Vec<u8>> = Vec::new();
    let mut rewalk: Vec<Vec<u8>> = Vec::new();
    for op in &operands {
        match watch_operand(&mut table, op, a.recursive, &excludes) {
            Ok((wd, walked)) => {
                if let Some(w) = table.path(wd)
                    && !roots.iter().any(|r| r == w)
                {
                    roots.push(w.to_vec());
                }
                rewalk.extend(walked);
            }
            Err(WalkError::Limit) => {
                log.line(msg(&[
                    b"Failed to watch ",
                    op,
                    b"; upper limit on inotify watches reached!",
                ]));
                log.line("Please increase the amount of inotify watches allowed per user via `/proc/sys/fs/inotify/max_user_watches'.");
                return Err(1);
            }
            Err(WalkError::Io(e)) => {
                log.line(msg(&[b"Couldn't watch ", op, b": ", strerror_text(&e).as_bytes()]));
                return Err(1);
            }
        }
    }
    if a.quiet == 0 {
        log.line("Watches established.");
    }

    let mut st = State {
        table,
        roots,
        rewalk,
        excludes,
        print_mask,
        monitor: a.monitor,
        recursive: a.recursive,
        quiet: a.quiet,
        filter,
        renderer,
        moves: Moves::default(),
        dups: ScanDups::default(),
        reads: 0,
        out: Vec::with_capacity(64 * 1024),
        scratch: Vec::new(),
        log,
    };
    let mut output = Output::for_stdout();
    Ok(st.event_loop(ino, &mut output, a.timeout))
}

/// Reads `--fromfile` like inotifywait's `fopen` then `fgets` into a 4096-byte buffer:
/// one entry per line with only the newline removed, lines longer than 4095 bytes
/// split, and each entry cut at its first NUL byte (C strings: `d\0junk` is `d`). Only
/// opening can fail: a read error (a directory reads as `EISDIR`) ends the input the
/// way `fgets` returning NULL does, keeping the lines before it.
fn read_fromfile(f: &OsStr) -> io::Result<Vec<Vec<u8>>> {
    let mut data = Vec::new();
    // Bytes read before an error stay in `data` (read_to_end's contract).
    let _ = if f == "-" {
        io::Read::read_to_end(&mut io::stdin().lock(), &mut data)
    } else {
        io::Read::read_to_end(&mut std::fs::File::open(f)?, &mut data)
    };
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut entry = |mut chunk: Vec<u8>| {
        if let Some(nul) = chunk.iter().position(|&b| b == 0) {
            chunk.truncate(nul);
        } else if chunk.last() == Some(&b'\n') {
            chunk.pop();
        }
        out.push(chunk);
    };
    for &b in &data {
        cur.push(b);
        if b == b'\n' || cur.len() == 4095 {
            entry(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        entry(cur);
    }
    Ok(out)
}

/// Opens `-o FILE` for appending (mode 0600 when created) and makes it stdout.
fn open_outfile(path: &OsStr) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    // The file becomes fd 1; its own descriptor closes when `f` drops.
    nix::unistd::dup2_stdout(&f).map_err(io::Error::from)
}

/// Watches one operand; returns its wd and, for a recursive directory, the walk path
/// to walk again after a queue overflow.
fn watch_operand(
    table: &mut Table,
    op: &[u8],
    recursive: bool,
    excludes: &[Vec<u8>],
) -> Result<(i32, Option<Vec<u8>>), WalkError> {
    let lstat_dir = std::fs::symlink_metadata(OsStr::from_bytes(op))
        .map(|m| m.is_dir())
        .unwrap_or(false);
    if recursive {
        let mut dir = op.to_vec();
        if !dir.ends_with(b"/") {
            dir.push(b'/');
        }
        let mut found = Vec::new();
        match table.walk(
            &dir,
            WalkMode {
                excludes,
                report_all: false,
                rescan: false,
            },
            &mut found,
        ) {
            Ok(wd) => return Ok((wd, Some(dir))),
            // Not a directory: watched as a plain file, as inotifywait does (`-r file`).
            Err(WalkError::Io(e)) if e.raw_os_error() == Some(libc::ENOTDIR) => {}
            Err(e) => return Err(e),
        }
    }
    let mut print_as = op.to_vec();
    if lstat_dir && !print_as.ends_with(b"/") {
        print_as.push(b'/');
    }
    match table.add(op, &print_as) {
        Ok(wd) => Ok((wd, None)),
        Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => Err(WalkError::Limit),
        Err(e) => Err(WalkError::Io(e)),
    }
}

/// How long to let a stream of events accumulate after a read that returned some.
const COALESCE: Duration = Duration::from_micros(COALESCE_US);
const COALESCE_US: u64 = 500;

/// Everything the event loop works with.
struct State {
    table: Table,
    /// `%w` of each watched operand: the Q_OVERFLOW lines name these.
    roots: Vec<Vec<u8>>,
    /// Recursive operand directories, walked again after an overflow to watch
    /// directories created while events were being lost.
    rewalk: Vec<Vec<u8>>,
    /// `@path` exclusions, for walking the operands again.
    excludes: Vec<Vec<u8>>,
    print_mask: u32,
    monitor: bool,
    recursive: bool,
    quiet: u32,
    /// The compiled pattern and whether it excludes (else it includes).
    filter: Option<(PosixRegex, bool)>,
    renderer: Renderer,
    /// MOVED_FROM of watched directories waiting for their MOVED_TO, by cookie: the wd
    /// of the moved directory and the path it was watched under.
    moves: Moves,
    /// Entries reported from a re-listing that may also arrive as real CREATEs.
    dups: ScanDups,
    /// Kernel reads so far: the window in which a scan's duplicate can still come.
    reads: u64,
    out: Vec<u8>,
    scratch: Vec<u8>,
    log: Log,
}

enum Flow {
    Continue,
    Exit(u8),
}

impl State {
    fn event_loop(&mut self, mut ino: Inotify, output: &mut Output, timeout: u32) -> u8 {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        // Large enough that a burst is read in few calls; a read shorter than this by
        // more than one event's size means the queue was empty.
        let mut buf = vec![0u8; 256 * 1024];
        let wait = (timeout > 0).then(|| Duration::from_secs(u64::from(timeout)));
        // The inactivity timeout starts again after every read (as inotifywait's
        // select() does), not when output drains.
        let mut deadline = wait.map(|w| Instant::now() + w);
        loop {
            let (inotify_ready, room) = {
                let room_fd = output.wants_room();
                let mut fds = vec![PollFd::new(ino.as_fd(), PollFlags::POLLIN)];
                if let Some(fd) = room_fd {
                    fds.push(PollFd::new(fd, PollFlags::POLLOUT));
                }
                let t = match deadline {
                    None => PollTimeout::NONE,
                    Some(d) => {
                        let left = d.saturating_duration_since(Instant::now());
                        // Round up so a deadline is never polled as "now" too early.
                        PollTimeout::try_from(left + Duration::from_micros(999)).unwrap_or(PollTimeout::MAX)
                    }
                };
                match poll(&mut fds, t) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => {
                        self.log.line(strerror_text(&io::Error::from(e)));
                        output.finish();
                        return 1;
                    }
                }
                let ready = |f: &PollFd<'_>| f.revents().is_some_and(|r| !r.is_empty());
                (ready(&fds[0]), fds.get(1).is_some_and(ready))
            };
            if room {
                output.on_room();
            }
            if !inotify_ready {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    output.finish();
                    return 2;
                }
                continue;
            }
            // MOVE_SELF that only rwait asks for (under -m -r) is not an event to
            // inotifywait: it does not restart the timeout (issue 16.8).
            let own = MOVE_SELF & !self.print_mask;
            let mut active = false;
            loop {
                self.reads += 1;
                let n = match ino.read_events(&mut buf) {
                    Ok(events) => {
                        let mut n = 0;
                        for e in events {
                            // The kernel pads a name with NULs to a multiple of 16.
                            n += 16 + e.name.map_or(0, |s| (s.len() + 16) & !15);
                            let ev = Ev {
                                wd: e.wd.get_watch_descriptor_id(),
                                mask: e.mask.bits(),
                                cookie: e.cookie,
                                name: e.name.map(|n| n.as_bytes()).unwrap_or_default(),
                            };
                            active |= ev.mask & !own != 0;
                            if let Flow::Exit(code) = self.process(ev, false) {
                                output.submit(&mut self.out);
                                output.finish();
                                return code;
                            }
                        }
                        n
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.dups.drained(self.reads);
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        output.submit(&mut self.out);
                        output.finish();
                        self.log.line(strerror_text(&e));
                        return 1;
                    }
                };
                // Room left for the largest event (a 255-byte name, padded) means this
                // read took everything queued.
                if buf.len() - n >= 16 + 256 {
                    self.dups.drained(self.reads);
                }
                // A read that left a quarter of the buffer unused drained the queue;
                // one that did not is followed by another at once.
                if n < buf.len() * 3 / 4 {
                    break;
                }
                // Write at least every few megabytes during a long burst.
                if self.out.len() > 4 << 20 {
                    self.submit(output);
                }
            }
            if active {
                deadline = wait.map(|w| Instant::now() + w);
            }
            self.submit(output);
            // Coalesce a burst: the first event is read as soon as it arrives, but
            // waking for every few events of a stream costs more than the events
            // themselves (a sleep and a wake-up each time). Everything read so far has
            // been handed to the output; what arrives meanwhile waits at most this long.
            std::thread::sleep(COALESCE);
        }
    }

    /// Hands the output so far over; if output waiting for the consumer was dropped at
    /// its cap, tells the consumer as a kernel overflow is told: a warning and one
    /// Q_OVERFLOW line per watched operand.
    fn submit(&mut self, output: &mut Output) {
        output.submit(&mut self.out);
        if output.take_dropped() {
            self.log.line(format!(
                "rwait: warning: output not read: events pending past the {} MiB cap were dropped; printing Q_OVERFLOW for each watched path",
                PENDING_CAP >> 20
            ));
            self.overflow_lines();
            output.submit(&mut self.out);
        }
    }

    /// One Q_OVERFLOW line per watched operand, `%w` set to it, whatever `-e` says.
    fn overflow_lines(&mut self) {
        if self.quiet < 2 {
            for root in &self.roots {
                let v = View {
                    watch: root,
                    name: b"",
                    mask: Q_OVERFLOW,
                    cookie: 0,
                };
                self.renderer.render(&v, &mut self.out);
            }
        }
    }

    /// Handles one event: filter, print, then the recursive bookkeeping.
    fn process(&mut self, ev: Ev<'_>, synthetic: bool) -> Flow {
        if ev.mask & Q_OVERFLOW != 0 {
            return self.overflow();
        }
        if self.table.is_removed(ev.wd) {
            if ev.mask & IGNORED != 0 {
                self.table.forget(ev.wd);
                self.dups.forget_wd(ev.wd);
            }
            return Flow::Continue;
        }
        if !synthetic && self.dups.on_kernel_event(ev.wd, ev.mask, ev.name) {
            return Flow::Continue;
        }

        let watch = self.table.path(ev.wd).unwrap_or_default();
        let dropped = match &self.filter {
            None => false,
            Some((re, exclude)) => {
                self.scratch.clear();
                self.scratch.extend_from_slice(watch);
                self.scratch.extend_from_slice(ev.name);
                self.scratch.push(0);
                re.is_match_nul(&self.scratch) == *exclude
            }
        };
        let wanted = ev.mask & self.print_mask != 0;
        if !dropped && wanted && self.quiet < 2 {
            let v = View {
                watch,
                name: ev.name,
                mask: ev.mask,
                cookie: ev.cookie,
            };
            self.renderer.render(&v, &mut self.out);
        }
        if !self.monitor && !dropped {
            return Flow::Exit(if wanted { 0 } else { 1 });
        }
        if self.monitor && self.recursive && !synthetic {
            self.follow(&ev, dropped);
        }
        if ev.mask & IGNORED != 0 {
            self.table.forget(ev.wd);
            self.dups.forget_wd(ev.wd);
            self.moves.forget_wd(ev.wd);
        }
        Flow::Continue
    }

    /// Recursive bookkeeping for `-m -r`: watch new directories, pair renames by
    /// cookie, drop subtrees that left.
    fn follow(&mut self, ev: &Ev<'_>, dropped: bool) {
        if ev.mask & ISDIR != 0 && ev.mask & (CREATE | MOVED_TO | MOVED_FROM) != 0 {
            let parent = self.table.path(ev.wd).unwrap_or_default().to_vec();
            let mut path = parent;
            path.extend_from_slice(ev.name);
            path.push(b'/');
            if ev.mask & MOVED_FROM != 0 {
                if let Some(wd) = self.table.wd_of_dir(&path) {
                    self.moves.moved_from(ev.cookie, wd, path);
                }
            } else if let Some(old) = (ev.mask & MOVED_TO != 0)
                .then(|| self.moves.moved_to(ev.cookie))
                .flatten()
            {
                // Renamed inside the tree: every descendant watch follows, whatever
                // the filter says about the new name.
                self.table.rename_subtree(&old, &path);
            } else if !dropped {
                // Created, or moved in from outside. As in inotifywait, a directory
                // whose event the filter dropped is not followed.
                self.new_directory(&path, ev.mask & CREATE != 0);
            }
        }
        if ev.mask & MOVE_SELF != 0
            && let Some(path) = self.moves.move_self(ev.wd)
        {
            // MOVE_SELF came without a MOVED_TO in the tree: it left.
            self.table.remove_subtree(&path);
        }
    }

    /// Walks and watches a new directory (`path` ends in `/`). For a created one every
    /// entry already inside is reported as a CREATE; for one moved in, only entries
    /// that appeared while it was being walked.
    fn new_directory(&mut self, path: &[u8], created: bool) {
        let meta = match std::fs::symlink_metadata(OsStr::from_bytes(&path[..path.len() - 1])) {
            Ok(m) => m,
            Err(e) if vanished(&e) => return,
            Err(e) => {
                // Straight to stderr, as inotifywait's library prints it.
                eprintln_raw(path_message("Stat failed on ", path, &e));
                return;
            }
        };
        if !meta.is_dir() {
            return;
        }
        let mut found: Vec<Found> = Vec::new();
        let mode = WalkMode {
            excludes: &[],
            report_all: created,
            rescan: true,
        };
        match self.table.walk(path, mode, &mut found) {
            Ok(_) => {}
            Err(WalkError::Io(e)) if vanished(&e) => {}
            Err(WalkError::Io(e)) => {
                self.log.line(path_message("Couldn't watch new directory ", path, &e));
            }
            Err(WalkError::Limit) => {
                let e = io::Error::from_raw_os_error(libc::ENOSPC);
                self.log.line(path_message("Couldn't watch new directory ", path, &e));
            }
        }
        for f in found {
            if f.from_rescan {
                self.dups.insert(f.wd, &f.name, self.reads);
            }
            let ev = Ev {
                wd: f.wd,
                mask: CREATE | if f.is_dir { ISDIR } else { 0 },
                cookie: 0,
                name: &f.name,
            };
            self.process(ev, true);
        }
    }

    /// The kernel queue overflowed: events were lost. Say so, and print Q_OVERFLOW for
    /// every watched operand (with `%w` set to it, whatever `-e` says) so that a
    /// consumer can resynchronise those trees; then watch any directory created while
    /// events were lost.
    fn overflow(&mut self) -> Flow {
        self.log.line("rwait: warning: the inotify event queue overflowed and events were lost; printing Q_OVERFLOW for each watched path");
        self.overflow_lines();
        if !self.monitor {
            return Flow::Exit(0);
        }
        if self.recursive {
            self.resync();
        }
        Flow::Continue
    }

    /// Rebuilds the recursive bookkeeping from a fresh walk of the operands: directory
    /// names as they are now, watches of directories that went dropped, and no pending
    /// move or scan duplicate left from before (their events may be the lost ones).
    /// The only way that state is rebuilt; failures are reported.
    fn resync(&mut self) {
        self.moves.clear();
        self.dups.clear();
        let mode = WalkMode {
            excludes: &self.excludes,
            report_all: false,
            rescan: false,
        };
        for (dir, e) in self.table.resync(&self.rewalk, mode) {
            let cause = match e {
                WalkError::Limit => "upper limit on inotify watches reached".to_string(),
                WalkError::Io(e) => strerror_text(&e),
            };
            let mut m = b"rwait: watching ".to_vec();
            m.extend_from_slice(&dir);
            m.extend_from_slice(b" again after the overflow: ");
            m.extend_from_slice(cause.as_bytes());
            self.log.line(m);
        }
    }
}

/// The binary's entry point: SIGPIPE back to its default (a consumer that goes away
/// ends us, as it ends inotifywait), then run.
pub fn main() -> std::process::ExitCode {
    crate::sys::stdio::default_sigpipe();
    let args: Vec<OsString> = std::env::args_os().collect();
    std::process::ExitCode::from(run(&args))
}
