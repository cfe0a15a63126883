//! `rwait -F` / `-S`: watching through fanotify, one filesystem mark per filesystem of
//! the operands, instead of one inotify watch per directory: no start-up walk, no
//! per-directory kernel memory, no `max_user_watches`.
//!
//! The kernel reports each event with the *handle* of the directory it happened in and
//! the entry's name (`FAN_REPORT_DFID_NAME`; a directory's own events come as its
//! handle and `.`). Handles become paths through [`Dirs`], a cache that the rename and
//! delete events keep right (every rename on the filesystem is seen, so a cached path
//! is the path at the time of the event being processed), filled from the events
//! themselves (a new directory's handle comes with its CREATE) and, on a miss, by
//! `open_by_handle_at` and the descriptor's `/proc/self/fd` link. Events are then
//! turned into exactly the lines inotify mode prints (the same [`Renderer`], the same
//! [`Output`]), for the directories under the operands only (`-S`: all of them).
//!
//! Where the two backends cannot agree, rwait(1) says so (FANOTIFY): the kernel merges
//! the events of one process on one entry that are still queued into one record, which
//! rwait prints as one line per kind of event in the order they happen in a file's life
//! ([`ORDER`]); and the lines inotify mode owes to its own listing of new directories
//! do not exist here. An event whose directory can no longer be named (it is gone, and
//! nothing in the events read says where it was) is reported with the overflow
//! protocol: a warning and one `Q_OVERFLOW` line per operand, never dropped silently.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::cli::{Args, Backend};
use super::events::*;
use super::format::{Renderer, View};
use super::output::{Output, PENDING_CAP};
use super::run::Log;
use crate::common::msg::os_error as strerror_text;
use crate::sys::fanotify::{self as fan, Handle, Info, InfoKind, Record};
use crate::sys::regex::PosixRegex;

/// What `run` has set up by the time the backend is chosen.
pub struct Setup<'a> {
    pub operands: Vec<Vec<u8>>,
    pub excludes: Vec<Vec<u8>>,
    pub filter: Option<(PosixRegex, bool)>,
    pub renderer: Renderer,
    pub print_mask: u32,
    pub args: &'a Args,
}

/// A directory's identity in the kernel's records: its filesystem and its handle.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub fsid: [u8; 8],
    pub handle: Handle,
}

impl Key {
    fn of(info: &Info<'_>) -> Key {
        Key {
            fsid: info.fsid,
            handle: Handle {
                kind: info.handle_kind,
                bytes: info.handle.to_vec(),
            },
        }
    }
}

/// Most directories whose paths are kept; past it the cache starts again empty
/// (misses are resolved again from the kernel), so memory does not grow with the tree.
pub const CACHE_CAP: usize = 65536;

/// Directory handles to absolute paths (ending in `/`), and back, so that a rename or
/// removal of a directory moves or drops every cached directory below it.
#[derive(Debug, Default)]
pub struct Dirs {
    by_key: HashMap<Key, Rc<[u8]>>,
    /// Ordered so that a subtree is a contiguous range.
    by_path: BTreeMap<Rc<[u8]>, Key>,
}

impl Dirs {
    pub fn get(&self, k: &Key) -> Option<&[u8]> {
        self.by_key.get(k).map(|p| &**p)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Remembers that `k` is the directory at `path` (ending in `/`); whatever was
    /// known under either before is forgotten.
    pub fn insert(&mut self, k: Key, path: &[u8]) {
        if self.by_key.len() >= CACHE_CAP {
            self.clear();
        }
        if let Some(old) = self.by_key.remove(&k) {
            self.by_path.remove(&old);
        }
        if let Some(other) = self.by_path.remove(path) {
            self.by_key.remove(&other);
        }
        let p: Rc<[u8]> = Rc::from(path);
        self.by_path.insert(p.clone(), k.clone());
        self.by_key.insert(k, p);
    }

    fn subtree(&self, dir: &[u8]) -> Vec<Rc<[u8]>> {
        use std::ops::Bound;
        self.by_path
            .range::<[u8], _>((Bound::Included(dir), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(dir))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The directory `old` (ending in `/`) is now `new`: so is everything below it.
    pub fn rename(&mut self, old: &[u8], new: &[u8]) {
        // What was at the destination (replaced by the rename) is gone.
        if old != new {
            self.remove(new);
        }
        for p in self.subtree(old) {
            if let Some(k) = self.by_path.remove(&p) {
                let mut np = new.to_vec();
                np.extend_from_slice(&p[old.len()..]);
                let np: Rc<[u8]> = Rc::from(np);
                self.by_key.insert(k.clone(), np.clone());
                self.by_path.insert(np, k);
            }
        }
    }

    /// The directory `dir` (ending in `/`) and everything below it are gone.
    pub fn remove(&mut self, dir: &[u8]) {
        for p in self.subtree(dir) {
            if let Some(k) = self.by_path.remove(&p) {
                self.by_key.remove(&k);
            }
        }
    }

    pub fn clear(&mut self) {
        self.by_key.clear();
        self.by_path.clear();
    }
}

/// The order in which the kinds of event merged into one record are printed: the
/// order they happen in an entry's life (created, opened, read, written, attributes
/// changed, closed, deleted), which is the order inotify mode prints them in for one
/// process's `create; write; close` or `open; read; close`.
pub const ORDER: [u32; 8] = [CREATE, OPEN, ACCESS, MODIFY, ATTRIB, CLOSE_WRITE, CLOSE_NOWRITE, DELETE];

/// One line to print, before its directory is spelled the way the operand is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Absolute path of the directory (`%w` before spelling), ending in `/`.
    pub dir: Vec<u8>,
    pub name: Vec<u8>,
    pub mask: u32,
    pub cookie: u32,
}

fn line(dir: &[u8], name: &[u8], mask: u32, cookie: u32) -> Line {
    Line {
        dir: dir.to_vec(),
        name: name.to_vec(),
        mask,
        cookie,
    }
}

fn join_dir(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = dir.to_vec();
    p.extend_from_slice(name);
    p.push(b'/');
    p
}

/// `/a/b/` -> (`/a/`, `b`); the root has no parent.
fn split(dir: &[u8]) -> Option<(&[u8], &[u8])> {
    let d = dir.strip_suffix(b"/")?;
    let i = d.iter().rposition(|&c| c == b'/')?;
    Some((&dir[..=i], &d[i + 1..]))
}

/// The lines inotify mode prints for an event on entry `name` of directory `dir`
/// (absolute, ending in `/`) with the merged kinds `mask` (inotify bits), `isdir`
/// when the entry is a directory; `"."` is the directory itself. Pure: what the
/// cache must learn is done by the caller.
pub fn lines_for(dir: &[u8], name: &[u8], mask: u32, isdir: bool) -> Vec<Line> {
    let mut out = Vec::new();
    let isdir_bit = if isdir { ISDIR } else { 0 };
    for bit in ORDER {
        if mask & bit == 0 {
            continue;
        }
        if name == b"." {
            // A directory's own event: inotify mode prints it on the parent's watch
            // (with the name) and then on the directory's own (without).
            if let Some((parent, base)) = split(dir) {
                out.push(line(parent, base, bit | ISDIR, 0));
            }
            out.push(line(dir, b"", bit | ISDIR, 0));
        } else if bit == DELETE && isdir {
            // The directory's own watch goes first (DELETE_SELF, no ISDIR, as the
            // kernel gives inotify), then its parent's.
            out.push(line(&join_dir(dir, name), b"", DELETE_SELF, 0));
            out.push(line(dir, name, DELETE | ISDIR, 0));
        } else {
            out.push(line(dir, name, bit | isdir_bit, 0));
        }
    }
    out
}

/// The lines of a rename of entry `old.1` in directory `old.0` to `new.1` in `new.0`:
/// MOVED_FROM and MOVED_TO with one cookie (`emit` drops the one whose directory is
/// not watched), then for a directory that was watched (`old_watched`: its old place
/// is under an operand) its MOVE_SELF, under its new name when that is watched too
/// (inotify mode renames the watch first), else under the old one.
pub fn rename_lines(
    old: (&[u8], &[u8]),
    new: (&[u8], &[u8]),
    isdir: bool,
    cookie: u32,
    (old_watched, new_watched): (bool, bool),
) -> Vec<Line> {
    let isdir_bit = if isdir { ISDIR } else { 0 };
    let mut out = vec![
        line(old.0, old.1, MOVED_FROM | isdir_bit, cookie),
        line(new.0, new.1, MOVED_TO | isdir_bit, cookie),
    ];
    if isdir && old_watched {
        let (d, n) = if new_watched { new } else { old };
        out.push(line(&join_dir(d, n), b"", MOVE_SELF, 0));
    }
    out
}

/// A record, owned, with its information records picked out by kind.
#[derive(Debug, Clone)]
struct Rec {
    mask: u64,
    /// The directory and the entry's name (`.` for the directory itself).
    dfid: Option<(Key, Vec<u8>)>,
    /// FAN_RENAME: where the entry was, and where it is.
    old: Option<(Key, Vec<u8>)>,
    new: Option<(Key, Vec<u8>)>,
    /// The entry's own handle.
    fid: Option<Key>,
}

impl Rec {
    fn of(r: &Record<'_>) -> Rec {
        let named = |kind: InfoKind| {
            r.infos
                .iter()
                .find(|i| i.kind == kind)
                .map(|i| (Key::of(i), i.name.to_vec()))
        };
        Rec {
            mask: r.mask,
            dfid: named(InfoKind::DfidName),
            old: named(InfoKind::OldDfidName),
            new: named(InfoKind::NewDfidName),
            fid: r.infos.iter().find(|i| i.kind == InfoKind::Fid).map(Key::of),
        }
    }
}

/// Most records kept waiting for their directory to be named.
const PENDING_CAP_RECORDS: usize = 16384;
/// How long a record waits for its directory to be named before it is reported lost.
const PENDING_WAIT: Duration = Duration::from_secs(2);

/// An operand: its absolute path and its spelling (both ending in `/`).
#[derive(Debug, Clone)]
struct Root {
    abs: Vec<u8>,
    spelled: Vec<u8>,
}

/// A marked filesystem: its id in the records and a descriptor on it for
/// `open_by_handle_at`.
struct Fs {
    fsid: [u8; 8],
    mount: std::fs::File,
}

/// Everything the event loop works with.
struct State {
    group: OwnedFd,
    fss: Vec<Fs>,
    dirs: Dirs,
    roots: Vec<Root>,
    excludes: Vec<Vec<u8>>,
    whole: bool,
    print_mask: u32,
    monitor: bool,
    quiet: u32,
    filter: Option<(PosixRegex, bool)>,
    renderer: Renderer,
    /// The kernel pairs renames (FAN_RENAME, Linux 5.17): else MOVED_FROM and MOVED_TO
    /// come as two records and are printed unpaired.
    renames: bool,
    cookie: u32,
    /// Where directories that are gone were, from the deletes and renames read: a
    /// directory deleted before its earlier events were read can still be named.
    hints: HashMap<Key, (Key, Vec<u8>)>,
    /// Records whose directory could not be named yet, oldest first, with when they
    /// were read: they wait for the deletion or rename that names it.
    pending: std::collections::VecDeque<(Instant, Rec)>,
    /// A directory of an event in this batch could not be named.
    lost: bool,
    /// An event under the operands was seen in this batch (the timeout restarts).
    seen: bool,
    out: Vec<u8>,
    scratch: Vec<u8>,
    log: Log,
}

enum Flow {
    Continue,
    Exit(u8),
}

/// A message naming the operand, `rwait: --fanotify: OP: cause`.
fn fail(log: &Log, opt: &str, op: &[u8], cause: &str) -> u8 {
    let mut m = format!("rwait: --{opt}: ").into_bytes();
    m.extend_from_slice(op);
    m.extend_from_slice(b": ");
    m.extend_from_slice(cause.as_bytes());
    log.line(m);
    1
}

/// The kernel event bits for what is to be printed, plus what the cache needs.
fn kernel_mask(print_mask: u32, renames: bool) -> u64 {
    let direct = ACCESS | MODIFY | ATTRIB | CLOSE_WRITE | CLOSE_NOWRITE | OPEN | CREATE | DELETE;
    // The inotify and fanotify bits have the same values for these.
    let mut m = u64::from(print_mask & direct) | fan::FAN_ONDIR | fan::FAN_CREATE | fan::FAN_DELETE;
    m |= if renames {
        fan::FAN_RENAME
    } else {
        fan::FAN_MOVED_FROM | fan::FAN_MOVED_TO
    };
    m
}

/// Sets up the marks and runs the event loop; the exit status either way.
pub(super) fn watch(s: Setup<'_>, log: Log) -> Result<u8, u8> {
    let a = s.args;
    let opt = if a.backend == Backend::Filesystem {
        "filesystem"
    } else {
        "fanotify"
    };
    if a.quiet == 0 {
        log.line("Setting up watches.");
    }
    let full = fan::FAN_REPORT_DFID_NAME | fan::FAN_REPORT_FID | fan::FAN_REPORT_TARGET_FID;
    let (group, renames) = match fan::init(full) {
        Ok(g) => (g, true),
        // Before Linux 5.17: no FAN_REPORT_TARGET_FID, no FAN_RENAME.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            match fan::init(fan::FAN_REPORT_DFID_NAME | fan::FAN_REPORT_FID) {
                Ok(g) => (g, false),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    log.line(format!(
                        "rwait: --{opt}: this kernel cannot report directory entries by name through fanotify (FAN_REPORT_DFID_NAME needs Linux 5.9): {}",
                        strerror_text(&e)
                    ));
                    return Err(1);
                }
                Err(e) => return Err(init_failed(&log, opt, &e)),
            }
        }
        Err(e) => return Err(init_failed(&log, opt, &e)),
    };
    let mask = kernel_mask(s.print_mask, renames);
    let mut fss: Vec<Fs> = Vec::new();
    let mut roots = Vec::new();
    let mut seeds = Vec::new();
    for op in &s.operands {
        let path = OsStr::from_bytes(op);
        let abs = match std::fs::canonicalize(path) {
            Ok(p) => p,
            Err(e) => {
                // inotify mode's message for an operand that cannot be watched.
                let mut m = b"Couldn't watch ".to_vec();
                m.extend_from_slice(op);
                m.extend_from_slice(b": ");
                m.extend_from_slice(strerror_text(&e).as_bytes());
                log.line(m);
                return Err(1);
            }
        };
        if !abs.is_dir() {
            return Err(fail(
                &log,
                opt,
                op,
                "not a directory (fanotify mode watches directory trees; watch files with inotify)",
            ));
        }
        let mut abs = abs.into_os_string().into_vec();
        let mount = match std::fs::File::open(OsStr::from_bytes(&abs)) {
            Ok(f) => f,
            Err(e) => return Err(fail(&log, opt, op, &strerror_text(&e))),
        };
        let fsid = match fan::fsid(mount.as_fd()) {
            Ok(id) => id,
            Err(e) => return Err(fail(&log, opt, op, &strerror_text(&e))),
        };
        if !fss.iter().any(|f| f.fsid == fsid) {
            if let Err(e) = fan::mark(group.as_fd(), fan::FAN_MARK_FILESYSTEM, mask, &abs) {
                let cause = match e.raw_os_error() {
                    Some(libc::EPERM) => format!(
                        "{}: watching a filesystem through fanotify needs root (CAP_SYS_ADMIN); without it use inotify (drop -{})",
                        strerror_text(&e),
                        if opt == "fanotify" { "F" } else { "S" }
                    ),
                    Some(libc::EOPNOTSUPP | libc::EXDEV | libc::ENODEV | libc::EINVAL) => format!(
                        "its filesystem cannot report file handles and names through fanotify: {}; use inotify for it",
                        strerror_text(&e)
                    ),
                    _ => strerror_text(&e),
                };
                return Err(fail(&log, opt, op, &cause));
            }
            fss.push(Fs { fsid, mount });
        }
        if !abs.ends_with(b"/") {
            abs.push(b'/');
        }
        if let Ok(handle) = fan::name_to_handle(&abs) {
            seeds.push((Key { fsid, handle }, abs.clone()));
        }
        let mut spelled = op.clone();
        if !spelled.ends_with(b"/") {
            spelled.push(b'/');
        }
        if a.backend == Backend::Filesystem {
            spelled = abs.clone();
        }
        roots.push(Root { abs, spelled });
    }
    if a.quiet == 0 {
        log.line("Watches established.");
    }
    let mut st = State {
        group,
        fss,
        dirs: Dirs::default(),
        roots,
        excludes: s.excludes,
        whole: a.backend == Backend::Filesystem,
        print_mask: s.print_mask,
        monitor: a.monitor,
        quiet: a.quiet,
        filter: s.filter,
        renderer: s.renderer,
        renames,
        cookie: 0,
        hints: HashMap::new(),
        pending: Default::default(),
        lost: false,
        seen: false,
        out: Vec::with_capacity(64 * 1024),
        scratch: Vec::new(),
        log,
    };
    // Operands are known without asking the kernel.
    for (k, p) in seeds {
        st.dirs.insert(k, &p);
    }
    let mut output = Output::for_stdout();
    Ok(st.event_loop(&mut output, a.timeout))
}

fn init_failed(log: &Log, opt: &str, e: &io::Error) -> u8 {
    let hint = if e.raw_os_error() == Some(libc::EPERM) {
        " (fanotify with file handles needs root: CAP_SYS_ADMIN)"
    } else {
        ""
    };
    log.line(format!(
        "rwait: --{opt}: cannot start fanotify: {}{hint}",
        strerror_text(e)
    ));
    1
}

/// How long to let a stream of events accumulate after a read that returned some
/// (the same as inotify mode's).
const COALESCE: Duration = Duration::from_micros(500);

impl State {
    fn event_loop(&mut self, output: &mut Output, timeout: u32) -> u8 {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let mut buf = vec![0u8; 256 * 1024];
        let wait = (timeout > 0).then(|| Duration::from_secs(u64::from(timeout)));
        let mut deadline = wait.map(|w| Instant::now() + w);
        loop {
            let (ready, room) = {
                let room_fd = output.wants_room();
                let mut fds = vec![PollFd::new(self.group.as_fd(), PollFlags::POLLIN)];
                if let Some(fd) = room_fd {
                    fds.push(PollFd::new(fd, PollFlags::POLLOUT));
                }
                let wake = match (deadline, self.pending_deadline()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let t = match wake {
                    None => PollTimeout::NONE,
                    Some(d) => {
                        let left = d.saturating_duration_since(Instant::now());
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
            if let Flow::Exit(code) = self.expire_pending() {
                output.submit(&mut self.out);
                output.finish();
                return code;
            }
            if !ready {
                self.submit(output);
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    output.finish();
                    return 2;
                }
                continue;
            }
            loop {
                let n = match nix::unistd::read(&self.group, &mut buf) {
                    Ok(n) => n,
                    Err(nix::errno::Errno::EAGAIN) => break,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => {
                        output.submit(&mut self.out);
                        output.finish();
                        self.log.line(format!(
                            "rwait: reading fanotify events: {}",
                            strerror_text(&io::Error::from(e))
                        ));
                        return 1;
                    }
                };
                if let Flow::Exit(code) = self.batch(&buf[..n]) {
                    output.submit(&mut self.out);
                    output.finish();
                    return code;
                }
                if n < buf.len() / 2 {
                    break;
                }
                if self.out.len() > 4 << 20 {
                    self.submit(output);
                }
            }
            if std::mem::take(&mut self.seen) {
                deadline = wait.map(|w| Instant::now() + w);
            }
            self.submit(output);
            std::thread::sleep(COALESCE);
        }
    }

    /// Hands the output over; output dropped at its cap is told as an overflow is.
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

    /// One Q_OVERFLOW line per operand, `%w` set to it, whatever `-e` says.
    fn overflow_lines(&mut self) {
        if self.quiet < 2 {
            for r in &self.roots {
                let v = View {
                    watch: &r.spelled,
                    name: b"",
                    mask: Q_OVERFLOW,
                    cookie: 0,
                };
                self.renderer.render(&v, &mut self.out);
            }
        }
    }

    /// The records of one read.
    fn batch(&mut self, buf: &[u8]) -> Flow {
        let records: Vec<Result<Rec, fan::Malformed>> = fan::parse(buf)
            .iter()
            .map(|r| r.as_ref().map(Rec::of).map_err(|e| *e))
            .collect();
        // Where deleted or moved directories were, before any record of the read is
        // processed: a directory deleted before its events were read is named by the
        // deletion that follows them.
        for r in records.iter().flatten() {
            self.learn_hint(r);
        }
        for r in records {
            let flow = match r {
                Ok(r) => self.record(r),
                Err(fan::Malformed) => {
                    self.log.line("rwait: warning: a fanotify record could not be read; printing Q_OVERFLOW for each watched path");
                    self.overflow_lines();
                    Flow::Continue
                }
            };
            if let Flow::Exit(c) = flow {
                return Flow::Exit(c);
            }
        }
        if self.pending.is_empty() {
            self.hints.clear();
        }
        self.report_lost()
    }

    /// Events that could not be placed: a warning and Q_OVERFLOW lines.
    fn report_lost(&mut self) -> Flow {
        if std::mem::take(&mut self.lost) {
            self.log.line("rwait: warning: events in a directory that is gone could not be placed (its path is unknown); printing Q_OVERFLOW for each watched path");
            self.overflow_lines();
            if !self.monitor {
                return Flow::Exit(0);
            }
        }
        Flow::Continue
    }

    /// Records still waiting for their directory past [`PENDING_WAIT`] are given up:
    /// reported as lost.
    fn expire_pending(&mut self) -> Flow {
        if self.pending.front().is_some_and(|(t, _)| t.elapsed() >= PENDING_WAIT) {
            self.pending.clear();
            self.hints.clear();
            self.lost = true;
        }
        self.report_lost()
    }

    /// When the oldest waiting record is given up.
    fn pending_deadline(&self) -> Option<Instant> {
        self.pending.front().map(|(t, _)| *t + PENDING_WAIT)
    }

    /// Remembers where a deleted or moved directory was (with FAN_REPORT_TARGET_FID
    /// its deletion or rename carries its own handle).
    fn learn_hint(&mut self, r: &Rec) {
        if r.mask & fan::FAN_ONDIR == 0 || r.mask & (fan::FAN_DELETE | fan::FAN_RENAME) == 0 {
            return;
        }
        let place = if r.mask & fan::FAN_RENAME != 0 { &r.old } else { &r.dfid };
        if let (Some(c), Some((pk, name))) = (&r.fid, place) {
            if self.hints.len() >= CACHE_CAP {
                self.hints.clear();
            }
            self.hints
                .entry(c.clone())
                .or_insert_with(|| (pk.clone(), name.clone()));
        }
    }

    /// The absolute path of directory `k`, from the cache, the kernel or the hints.
    fn resolve(&mut self, k: &Key, depth: usize) -> Option<Vec<u8>> {
        if let Some(p) = self.dirs.get(k) {
            return Some(p.to_vec());
        }
        if let Some(p) = self.open(k) {
            self.dirs.insert(k.clone(), &p);
            return Some(p);
        }
        let (parent, name) = self.hints.get(k).cloned()?;
        if depth > 64 {
            return None;
        }
        let p = join_dir(&self.resolve(&parent, depth + 1)?, &name);
        self.dirs.insert(k.clone(), &p);
        Some(p)
    }

    /// Asks the kernel: open the handle, read the descriptor's link. A directory that
    /// is deleted has no path.
    fn open(&self, k: &Key) -> Option<Vec<u8>> {
        let fs = self.fss.iter().find(|f| f.fsid == k.fsid)?;
        let fd = fan::open_by_handle(fs.mount.as_fd(), &k.handle).ok()?;
        let st = nix::sys::stat::fstat(&fd).ok()?;
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR || st.st_nlink == 0 {
            return None;
        }
        let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
        let mut p = link.into_os_string().into_vec();
        if !p.starts_with(b"/") {
            return None;
        }
        if !p.ends_with(b"/") {
            p.push(b'/');
        }
        Some(p)
    }

    /// `%w` for directory `dir` (absolute, ending in `/`): the operand's spelling and
    /// the rest, if `dir` is at or below an operand and not excluded.
    fn spell(&self, dir: &[u8]) -> Option<Vec<u8>> {
        if self.whole {
            return Some(dir.to_vec());
        }
        let r = self.roots.iter().find(|r| dir.starts_with(&r.abs))?;
        let mut s = r.spelled.clone();
        s.extend_from_slice(&dir[r.abs.len()..]);
        let excluded = self.excludes.iter().any(|x| {
            let x = x.strip_suffix(b"/").unwrap_or(x);
            s.starts_with(x) && s.get(x.len()) == Some(&b'/')
        });
        (!excluded).then_some(s)
    }

    /// One record: printed now, or kept until a later record says where its
    /// directory was (then printed just before that record's own lines).
    fn record(&mut self, r: Rec) -> Flow {
        if r.mask & fan::FAN_Q_OVERFLOW != 0 {
            self.log.line("rwait: warning: the fanotify event queue overflowed and events were lost; printing Q_OVERFLOW for each watched path");
            self.overflow_lines();
            // Renames may be among the lost events: cached paths are not to be trusted;
            // what waited for its directory is covered by the lines just printed.
            self.dirs.clear();
            self.pending.clear();
            self.hints.clear();
            self.seen = true;
            return if self.monitor { Flow::Continue } else { Flow::Exit(0) };
        }
        let hint = r.fid.is_some() && r.mask & fan::FAN_ONDIR != 0 && r.mask & (fan::FAN_DELETE | fan::FAN_RENAME) != 0;
        if hint && !self.pending.is_empty() {
            // Try again what waits, in order, each keeping when it was read (its wait
            // is bounded from then, however many deletions come meanwhile).
            let waiting = std::mem::take(&mut self.pending);
            for (read_at, w) in waiting {
                // Only a record that a hint may now place is tried (without one, the
                // kernel already said it cannot name its directory).
                let keys = [&w.dfid, &w.old, &w.new];
                if !keys
                    .iter()
                    .any(|k| k.as_ref().is_some_and(|(k, _)| self.hints.contains_key(k)))
                {
                    self.pending.push_back((read_at, w));
                    continue;
                }
                match self.lines(&w) {
                    Some(lines) => {
                        if let Flow::Exit(c) = self.emit(&lines) {
                            return Flow::Exit(c);
                        }
                    }
                    None => self.pending.push_back((read_at, w)),
                }
            }
        }
        self.place(r)
    }

    /// Prints `r` if its directories can be named, else keeps it waiting.
    fn place(&mut self, r: Rec) -> Flow {
        match self.lines(&r) {
            Some(lines) => self.emit(&lines),
            None if self.renames && self.pending.len() < PENDING_CAP_RECORDS => {
                self.pending.push_back((Instant::now(), r));
                Flow::Continue
            }
            None => {
                self.lost = true;
                Flow::Continue
            }
        }
    }

    /// The lines of `r`, with what the cache learns from it; `None` (and nothing
    /// learned) when a directory of it cannot be named.
    fn lines(&mut self, r: &Rec) -> Option<Vec<Line>> {
        let isdir = r.mask & fan::FAN_ONDIR != 0;
        if r.mask & fan::FAN_RENAME != 0 {
            return self.rename(r, isdir);
        }
        let Some((dk, name)) = &r.dfid else {
            return Some(vec![]);
        };
        let dir = self.resolve(dk, 0)?;
        let mut lines = Vec::new();
        if !self.renames && r.mask & (fan::FAN_MOVED_FROM | fan::FAN_MOVED_TO) != 0 {
            // Before Linux 5.17: the two halves of a rename come apart, unpaired.
            let isdir_bit = if isdir { ISDIR } else { 0 };
            if r.mask & fan::FAN_MOVED_FROM != 0 {
                lines.push(line(&dir, name, MOVED_FROM | isdir_bit, 0));
            }
            if r.mask & fan::FAN_MOVED_TO != 0 {
                lines.push(line(&dir, name, MOVED_TO | isdir_bit, 0));
            }
            if isdir {
                // Wherever it went, it is found again by its handle.
                self.dirs.remove(&join_dir(&dir, name));
            }
        }
        lines.extend(lines_for(&dir, name, (r.mask & 0xfff) as u32, isdir));
        if isdir && name != b"." {
            let child = join_dir(&dir, name);
            if r.mask & fan::FAN_DELETE != 0 {
                self.dirs.remove(&child);
            }
            if r.mask & fan::FAN_CREATE != 0
                && r.mask & fan::FAN_DELETE == 0
                && let Some(c) = &r.fid
            {
                self.dirs.insert(c.clone(), &child);
            }
        }
        Some(lines)
    }

    fn rename(&mut self, r: &Rec, isdir: bool) -> Option<Vec<Line>> {
        let (Some((ok, on)), Some((nk, nn))) = (&r.old, &r.new) else {
            return Some(vec![]);
        };
        let old_dir = self.resolve(ok, 0)?;
        let new_dir = self.resolve(nk, 0)?;
        self.cookie = self.cookie.wrapping_add(1).max(1);
        let old_path = join_dir(&old_dir, on);
        let new_path = join_dir(&new_dir, nn);
        let watched = (self.spell(&old_path).is_some(), self.spell(&new_path).is_some());
        let lines = rename_lines((&old_dir, on), (&new_dir, nn), isdir, self.cookie, watched);
        if isdir {
            self.dirs.rename(&old_path, &new_path);
            if let Some(c) = &r.fid {
                self.dirs.insert(c.clone(), &new_path);
            }
        }
        Some(lines)
    }

    /// Filters, spells and prints `lines`; in one-shot mode the first printed ends
    /// the run.
    fn emit(&mut self, lines: &[Line]) -> Flow {
        for l in lines {
            let Some(watch) = self.spell(&l.dir) else { continue };
            self.seen = true;
            if l.mask & self.print_mask == 0 {
                // An operand deleted: inotify mode's watch on it ends (IGNORED), which
                // ends a one-shot run with status 1 when DELETE_SELF was not asked for.
                if !self.monitor && l.mask == DELETE_SELF && self.roots.iter().any(|r| r.abs == l.dir) {
                    return Flow::Exit(1);
                }
                continue;
            }
            let dropped = match &self.filter {
                None => false,
                Some((re, exclude)) => {
                    self.scratch.clear();
                    self.scratch.extend_from_slice(&watch);
                    self.scratch.extend_from_slice(&l.name);
                    self.scratch.push(0);
                    re.is_match_nul(&self.scratch) == *exclude
                }
            };
            if dropped {
                continue;
            }
            if self.quiet < 2 {
                let v = View {
                    watch: &watch,
                    name: &l.name,
                    mask: l.mask,
                    cookie: l.cookie,
                };
                self.renderer.render(&v, &mut self.out);
            }
            if !self.monitor {
                return Flow::Exit(0);
            }
        }
        Flow::Continue
    }
}

use std::os::unix::ffi::OsStringExt;

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Key {
        Key {
            fsid: [0; 8],
            handle: Handle {
                kind: 1,
                bytes: vec![n],
            },
        }
    }

    #[test]
    fn renames_and_removals_move_whole_subtrees() {
        let mut d = Dirs::default();
        d.insert(key(1), b"/t/a/");
        d.insert(key(2), b"/t/a/b/");
        d.insert(key(3), b"/t/ab/");
        d.insert(key(4), b"/t/c/");
        d.rename(b"/t/a/", b"/t/c/");
        assert_eq!(d.get(&key(1)), Some(&b"/t/c/"[..]));
        assert_eq!(d.get(&key(2)), Some(&b"/t/c/b/"[..]));
        assert_eq!(d.get(&key(3)), Some(&b"/t/ab/"[..]), "a sibling sharing a prefix stays");
        assert_eq!(d.get(&key(4)), None, "the directory replaced by the rename is gone");
        d.remove(b"/t/c/");
        assert_eq!((d.get(&key(1)), d.get(&key(2)), d.len()), (None, None, 1));
        // One path, one handle: a re-created directory replaces the old entry.
        d.insert(key(5), b"/t/ab/");
        assert_eq!((d.get(&key(3)), d.len()), (None, 1));
        d.insert(key(5), b"/t/x/");
        assert_eq!((d.get(&key(5)), d.len()), (Some(&b"/t/x/"[..]), 1));
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut d = Dirs::default();
        for i in 0..CACHE_CAP + 10 {
            let k = Key {
                fsid: [0; 8],
                handle: Handle {
                    kind: 1,
                    bytes: i.to_ne_bytes().to_vec(),
                },
            };
            d.insert(k, format!("/d/{i}/").as_bytes());
        }
        assert!(d.len() <= CACHE_CAP);
    }

    fn show(lines: &[Line]) -> Vec<String> {
        lines
            .iter()
            .map(|l| {
                let mut m = vec![];
                render(l.mask, b',', &mut m);
                format!(
                    "{} {} {} {}",
                    String::from_utf8_lossy(&l.dir),
                    String::from_utf8_lossy(&m),
                    String::from_utf8_lossy(&l.name),
                    l.cookie
                )
            })
            .collect()
    }

    #[test]
    fn merged_records_print_in_life_order_as_inotify_does() {
        // echo x > f: one record CREATE|OPEN|MODIFY|CLOSE_WRITE.
        assert_eq!(
            show(&lines_for(b"/t/", b"f", CREATE | OPEN | MODIFY | CLOSE_WRITE, false)),
            [
                "/t/ CREATE f 0",
                "/t/ OPEN f 0",
                "/t/ MODIFY f 0",
                "/t/ CLOSE_WRITE,CLOSE f 0"
            ]
        );
        // touch f (new): CREATE, OPEN, ATTRIB, CLOSE_WRITE.
        assert_eq!(
            show(&lines_for(b"/t/", b"f", CREATE | OPEN | ATTRIB | CLOSE_WRITE, false)),
            [
                "/t/ CREATE f 0",
                "/t/ OPEN f 0",
                "/t/ ATTRIB f 0",
                "/t/ CLOSE_WRITE,CLOSE f 0"
            ]
        );
        // A directory's own event: on the parent with the name, then on itself.
        assert_eq!(
            show(&lines_for(b"/t/s/", b".", OPEN | ACCESS | CLOSE_NOWRITE, true)),
            [
                "/t/ OPEN,ISDIR s 0",
                "/t/s/ OPEN,ISDIR  0",
                "/t/ ACCESS,ISDIR s 0",
                "/t/s/ ACCESS,ISDIR  0",
                "/t/ CLOSE_NOWRITE,CLOSE,ISDIR s 0",
                "/t/s/ CLOSE_NOWRITE,CLOSE,ISDIR  0"
            ]
        );
        // rmdir: the directory's DELETE_SELF, then the parent's DELETE.
        assert_eq!(
            show(&lines_for(b"/t/", b"s", DELETE, true)),
            ["/t/s/ DELETE_SELF  0", "/t/ DELETE,ISDIR s 0"]
        );
        assert_eq!(show(&lines_for(b"/", b".", ATTRIB, true)), ["/ ATTRIB,ISDIR  0"]);
    }

    #[test]
    fn renames_pair_and_directories_move_themselves() {
        let both = (true, true);
        assert_eq!(
            show(&rename_lines((b"/t/", b"a"), (b"/t/d/", b"b"), false, 7, both)),
            ["/t/ MOVED_FROM a 7", "/t/d/ MOVED_TO b 7"]
        );
        assert_eq!(
            show(&rename_lines((b"/t/", b"s"), (b"/t/", b"u"), true, 8, both)),
            [
                "/t/ MOVED_FROM,ISDIR s 8",
                "/t/ MOVED_TO,ISDIR u 8",
                "/t/u/ MOVE_SELF  0"
            ]
        );
        // Renamed out: MOVE_SELF under the old name; moved in: none.
        assert_eq!(
            show(&rename_lines((b"/t/", b"s"), (b"/o/", b"u"), true, 9, (true, false))),
            [
                "/t/ MOVED_FROM,ISDIR s 9",
                "/o/ MOVED_TO,ISDIR u 9",
                "/t/s/ MOVE_SELF  0"
            ]
        );
        assert_eq!(
            show(&rename_lines((b"/o/", b"s"), (b"/t/", b"u"), true, 10, (false, true))),
            ["/o/ MOVED_FROM,ISDIR s 10", "/t/ MOVED_TO,ISDIR u 10"]
        );
    }

    #[test]
    fn the_kernel_is_asked_for_what_is_printed_and_what_the_cache_needs() {
        let tracking = fan::FAN_ONDIR | fan::FAN_CREATE | fan::FAN_DELETE;
        for (print, renames, want) in [
            (MODIFY, true, libc::FAN_MODIFY | tracking | fan::FAN_RENAME),
            (
                CLOSE_WRITE | ATTRIB,
                false,
                libc::FAN_CLOSE_WRITE | libc::FAN_ATTRIB | tracking | fan::FAN_MOVED_FROM | fan::FAN_MOVED_TO,
            ),
            // Moves, MOVE_SELF and DELETE_SELF come from the renames and deletes.
            (MOVED_TO | MOVE_SELF | DELETE_SELF, true, tracking | fan::FAN_RENAME),
            (ALL_EVENTS, true, 0x33f | fan::FAN_ONDIR | fan::FAN_RENAME),
        ] {
            assert_eq!(kernel_mask(print, renames), want, "{print:#x}");
        }
    }

    #[test]
    fn split_names_the_parent() {
        assert_eq!(split(b"/a/b/"), Some((&b"/a/"[..], &b"b"[..])));
        assert_eq!(split(b"/a/"), Some((&b"/"[..], &b"a"[..])));
        assert_eq!(split(b"/"), None);
    }
}
