//! One worker thread per host, and the rsync (and `--on-push`) child processes it runs.
//!
//! Each host has its own pending set. The reader thread adds every batch to every
//! host's set; a worker takes the whole set when its host is ready (not backing off, a
//! job slot free), so batches that arrive while an rsync runs merge into the next run.
//! A failed run puts its paths back into the set, merged with whatever arrived since.
//! Hosts share nothing but the `-j` job slots, so a slow or dead host never delays
//! another.
//!
//! The watchdog: rsync's `--timeout` and `--contimeout` miss some hangs (a listener that
//! accepts and never speaks, a stuck ssh), so while rsync runs the worker watches for
//! progress (output, or bytes rsync reads or writes according to `/proc/PID/io`) and
//! kills rsync's process group (rsync and its ssh) after `--watchdog` without any.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::collapse::{self, Kind, Plan};
use super::config::{Config, Host, Verbosity};
use super::hosts::Transport;
use super::journal::Journal;
use super::log::Log;
use super::outage::{self, Outage};
use super::paths;
use super::progress::{LineCounter, Progress};
use super::retry::{Class, RetryState};
use super::rsync::{self, Ended, Verdict};
use crate::common::msg::escape_bytes;

/// How long a killed child gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// One host's queue and history, behind its mutex.
#[derive(Debug, Default)]
pub struct HostState {
    pub pending: BTreeSet<Vec<u8>>,
    /// Paths in the rsync that is running now.
    pub in_flight: usize,
    pub running: bool,
    /// Its `--on-push` hook is running: the host is not idle, so the drain at the end
    /// of input waits for it.
    pub hook_running: bool,
    /// No more batches will come.
    pub input_done: bool,
    /// Its worker thread runs (cleared by the worker itself, under this lock, in the
    /// same step as it decides to end: a SIGHUP that lists the host again then knows
    /// whether to start a new one).
    pub worker_alive: bool,
    pub retry: RetryState,
    /// Paths rsync named as not transferred (its per-file errors, exit 23) in a push
    /// that delivered the rest: retried on their own backoff, so they hold back neither
    /// the host's other paths nor its hooks. Journaled with `pending`.
    pub failing: BTreeSet<Vec<u8>>,
    pub failing_retry: RetryState,
    /// rsync's words about the failing paths (its first per-file error line).
    pub failing_reason: Option<String>,
    /// Since its first failed push, until the next push that gets through.
    pub outage: Option<Outage>,
    /// An `--on-push` hook is owed for these paths: set when a push that changed
    /// something is delivered (or replayed from the journal), cleared once the hook ran
    /// to its end. Journaled, so a kill before or during the hook does not lose it.
    pub owed_hook: Option<BTreeSet<Vec<u8>>>,
    /// The paths the journal's 'O' records name since its last rewrite: a retry of the
    /// same paths (an outage) appends nothing more.
    pub owed_in_journal: BTreeSet<Vec<u8>>,
    pub pushes: u64,
    pub last_success: Option<String>,
    pub last_error: Option<(String, String)>,
    /// With `--state-dir`: this host's journal. Behind the host's mutex, so an append
    /// (reader) and a compaction (worker) never interleave.
    pub journal: Option<Journal>,
}

impl HostState {
    /// Nothing pending, nothing running.
    pub fn idle(&self) -> bool {
        self.pending.is_empty() && self.failing.is_empty() && !self.running && !self.hook_running
    }

    /// Paths this host lacks: waiting, failing, or in the rsync that runs now.
    pub fn lacking(&self) -> usize {
        self.pending.len() + self.failing.len() + self.in_flight
    }
}

pub struct HostSlot {
    pub host: Host,
    pub state: Mutex<HostState>,
    pub cv: Condvar,
    /// Taken out of the hosts files (SIGHUP): the worker ends after its current push.
    pub removed: AtomicBool,
    /// Its running rsync is to be killed (a stop while the host is down).
    pub kill: AtomicBool,
}

impl HostSlot {
    pub fn new(host: Host) -> HostSlot {
        HostSlot {
            host,
            state: Mutex::new(HostState::default()),
            cv: Condvar::new(),
            removed: AtomicBool::new(false),
            kill: AtomicBool::new(false),
        }
    }
}

impl HostSlot {
    pub fn lock(&self) -> MutexGuard<'_, HostState> {
        // A worker that panicked leaves consistent data (plain sets and counters).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The `-j` job slots, handed out first come, first served: a host that just finished
/// a push and wants another queues behind every host already waiting, so no host waits
/// more than one round of the others (a plain semaphore let two hosts take turns while
/// others waited for their first push).
pub struct Slots {
    state: Mutex<SlotQueue>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct SlotQueue {
    free: usize,
    next_ticket: u64,
    waiting: std::collections::VecDeque<u64>,
}

impl SlotQueue {
    /// Takes a ticket in the queue.
    fn join(&mut self) -> u64 {
        let t = self.next_ticket;
        self.next_ticket += 1;
        self.waiting.push_back(t);
        t
    }

    /// Whether ticket `t` gets a slot now; if so it leaves the queue with the slot.
    fn try_take(&mut self, t: u64) -> bool {
        if self.free > 0 && self.waiting.front() == Some(&t) {
            self.waiting.pop_front();
            self.free -= 1;
            true
        } else {
            false
        }
    }

    fn leave(&mut self, t: u64) {
        self.waiting.retain(|&x| x != t);
    }
}

impl Slots {
    pub fn new(n: usize) -> Slots {
        Slots {
            state: Mutex::new(SlotQueue {
                free: n,
                ..SlotQueue::default()
            }),
            cv: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SlotQueue> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a slot in turn; gives up (false) once `stop` is set.
    fn acquire(&self, stop: &AtomicBool) -> bool {
        let mut q = self.lock();
        let t = q.join();
        while !q.try_take(t) {
            if stop.load(Ordering::SeqCst) {
                q.leave(t);
                self.cv.notify_all();
                return false;
            }
            q = self
                .cv
                .wait_timeout(q, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        // The next in line may be able to go too (-j > 1).
        self.cv.notify_all();
        true
    }

    fn release(&self) {
        self.lock().free += 1;
        self.cv.notify_all();
    }
}

/// What the workers, the reader and the main thread share.
pub struct Shared {
    pub cfg: Config,
    pub log: Log,
    /// The current targets; SIGHUP replaces the list (see `run::reload`).
    hosts: RwLock<Vec<Arc<HostSlot>>>,
    /// The progress line, when stderr is a terminal.
    pub progress: Option<Progress>,
    pub slots: Slots,
    /// Set at the end (drain timeout, signal): workers start no new push.
    pub stop: AtomicBool,
    /// Set when running rsyncs must not finish either: they are killed.
    pub kill: AtomicBool,
    /// A stop with `--state-dir` (SIGTERM/SIGINT): hosts that are up push what they
    /// have; a host that is down starts nothing more (its paths are journaled).
    pub soft_stop: AtomicBool,
    /// Bumped on every change worth a new status file.
    pub generation: AtomicU64,
    /// Input records refused as not a path inside the base (see `batch::Resolver`):
    /// each may be a path never delivered, so they make the exit status 1.
    pub refused: AtomicU64,
    /// Hooks that failed or were killed, as `host (why)`: named at exit, exit status 1.
    pub failed_hooks: Mutex<Vec<String>>,
    /// Targets a SIGHUP removed, kept (with their journal handle) in case a later one
    /// lists them again.
    retired: Mutex<Vec<Arc<HostSlot>>>,
}

impl Shared {
    pub fn new(cfg: Config) -> Shared {
        // Progress only for a person watching: stderr a terminal, and not -q.
        let progress = (cfg.verbosity >= Verbosity::Normal && io::stderr().is_terminal()).then(Progress::default);
        let log = Log {
            verbosity: cfg.verbosity,
            progress: progress.is_some(),
        };
        let hosts = cfg.hosts.iter().map(|h| Arc::new(HostSlot::new(h.clone()))).collect();
        let slots = Slots::new(cfg.jobs);
        Shared {
            cfg,
            log,
            hosts: RwLock::new(hosts),
            progress,
            slots,
            stop: AtomicBool::new(false),
            kill: AtomicBool::new(false),
            soft_stop: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            failed_hooks: Mutex::new(Vec::new()),
            retired: Mutex::new(Vec::new()),
        }
    }

    /// A snapshot of the current hosts.
    pub fn hosts(&self) -> Vec<Arc<HostSlot>> {
        self.hosts.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the host list (SIGHUP).
    pub fn set_hosts(&self, hosts: Vec<Arc<HostSlot>>) {
        *self.hosts.write().unwrap_or_else(|e| e.into_inner()) = hosts;
    }

    /// Keeps a removed target's slot for a later SIGHUP that lists it again.
    pub fn retire(&self, slot: Arc<HostSlot>) {
        self.retired.lock().unwrap_or_else(|e| e.into_inner()).push(slot);
    }

    /// The removed slot for `dest`, taken out of the retired list.
    pub fn take_retired(&self, dest: &str) -> Option<Arc<HostSlot>> {
        let mut r = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        let i = r.iter().position(|s| s.host.target.dest == dest)?;
        Some(r.remove(i))
    }

    pub fn bump(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

pub fn now_string() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The worker loop for one host; returns when its input is done and everything is
/// delivered, when rpush stops, or when the host is removed.
pub fn host_worker(sh: &Shared, slot: &HostSlot) {
    work(sh, slot);
    slot.lock().worker_alive = false;
}

fn work(sh: &Shared, slot: &HostSlot) {
    let name = &slot.host.name;
    let probe_port = outage::port(&slot.host.target, sh.cfg.settings.rsh.as_deref());
    loop {
        let batch = {
            let mut st = slot.lock();
            loop {
                if sh.stopping() || slot.removed.load(Ordering::SeqCst) {
                    st.worker_alive = false;
                    return;
                }
                let soft_stop = sh.soft_stop.load(Ordering::SeqCst);
                if soft_stop && st.retry.failures > 0 {
                    // Down: what it lacks is journaled; it must not hold the stop.
                    return;
                }
                let now = Instant::now();
                let failing_due = !soft_stop && !st.failing.is_empty() && st.failing_retry.ready(now);
                if st.pending.is_empty() && !failing_due {
                    if st.failing.is_empty() {
                        if st.input_done {
                            st.worker_alive = false;
                            return;
                        }
                        st = slot.cv.wait(st).unwrap_or_else(|e| e.into_inner());
                    } else {
                        let wait = st.failing_retry.wait(now);
                        st = slot.cv.wait_timeout(st, wait).unwrap_or_else(|e| e.into_inner()).0;
                    }
                    continue;
                }
                if st.retry.ready(now) {
                    break;
                }
                let mut wait = st.retry.wait(now);
                let temporary = st.retry.last_class() == Some(Class::Temporary);
                if let Some(o) = st.outage.as_mut() {
                    if let Some(d) = o.report_due(now) {
                        let failures = st.retry.failures;
                        let last = st.last_error.as_ref().map_or("", |(_, r)| r.as_str());
                        sh.log.info(&format!(
                            "{name}: outage persists ({}, {failures} failed attempt{}): {last}",
                            human_duration(d),
                            plural(failures as usize)
                        ));
                        continue;
                    }
                    if let (Some(port), true) = (probe_port, temporary) {
                        if o.probe_due(now) {
                            // Outside the lock: a connect may take PROBE_TIMEOUT.
                            drop(st);
                            let reachable = outage::probe(&slot.host.target.host, port);
                            st = slot.lock();
                            let host = &slot.host.target.host;
                            let HostState { outage, retry, .. } = &mut *st;
                            if let Some(o) = outage.as_mut() {
                                let first_miss = !reachable && !o.probe_failed;
                                if o.probed(Instant::now(), reachable) {
                                    retry.cut();
                                    sh.log
                                        .info(&format!("{name}: {host} port {port} answers again: pushing now"));
                                } else if first_miss {
                                    sh.log.verbose(&format!(
                                        "{name}: {host} port {port} does not answer; probing every {}",
                                        human_duration(outage::PROBE_EVERY)
                                    ));
                                }
                            }
                            continue;
                        }
                        wait = wait.min(o.until_probe(now));
                    }
                }
                st = slot.cv.wait_timeout(st, wait).unwrap_or_else(|e| e.into_inner()).0;
            }
            let mut batch = std::mem::take(&mut st.pending);
            let retried = if !sh.soft_stop.load(Ordering::SeqCst) && st.failing_retry.ready(Instant::now()) {
                std::mem::take(&mut st.failing)
            } else {
                BTreeSet::new()
            };
            batch.extend(retried.iter().cloned());
            if sh.cfg.on_push.is_some() {
                let HostState {
                    journal,
                    owed_in_journal,
                    ..
                } = &mut *st;
                let new: Vec<&Vec<u8>> = batch.iter().filter(|p| !owed_in_journal.contains(*p)).collect();
                if let Some(j) = journal.as_mut()
                    && !new.is_empty()
                {
                    match j.append_owed(new.iter().copied()) {
                        Ok(()) => owed_in_journal.extend(new.into_iter().cloned()),
                        Err(e) => sh.log.error(&format!(
                            "{name}: journal {}: {}; a kill during this push could lose its hook",
                            j.path.display(),
                            super::os_error(&e)
                        )),
                    }
                }
            }
            st.in_flight = batch.len();
            st.running = true;
            (batch, retried)
        };
        let (batch, retried) = batch;
        sh.bump();
        if !sh.slots.acquire(&sh.stop) {
            let mut st = slot.lock();
            st.pending.extend(batch.difference(&retried).cloned());
            st.failing.extend(retried);
            st.running = false;
            st.in_flight = 0;
            return;
        }
        let outcome = push(sh, slot, &batch);
        sh.slots.release();
        let mut st = slot.lock();
        st.running = false;
        st.in_flight = 0;
        let mut hook = None;
        match outcome {
            Outcome::Delivered {
                requeue,
                hook: h,
                failed,
                failed_reason,
            } => {
                // A hook owed from before (a kill, a stop) runs now, with this one.
                hook = merge_owed(h, st.owed_hook.take()).filter(|_| sh.cfg.on_push.is_some());
                st.owed_hook = hook.as_ref().map(|p| p.entries().cloned().collect());
                st.hook_running = hook.is_some();
                st.pushes += 1;
                st.last_success = Some(now_string());
                let ended = st.retry.succeed();
                let lasted = st.outage.take().map(|o| o.began.elapsed());
                if ended > 0 {
                    sh.log.info(&format!(
                        "{name}: recovered after {ended} failed attempt{}; outage ended, it lasted {}",
                        plural(ended as usize),
                        human_duration(lasted.unwrap_or_default())
                    ));
                }
                st.pending.extend(requeue);
                if failed.is_empty() {
                    if !retried.is_empty() && st.failing.is_empty() {
                        st.failing_retry.succeed();
                        st.failing_reason = None;
                        sh.log.info(&format!(
                            "{name}: the {} path{} that failed before delivered",
                            retried.len(),
                            plural(retried.len())
                        ));
                    }
                } else {
                    st.failing.extend(failed.iter().cloned());
                    let f = st
                        .failing_retry
                        .fail(&sh.cfg.backoff, Instant::now(), Class::Temporary, &failed_reason);
                    let msg = format!(
                        "{name}: {} path{} not delivered (attempt {}): {}: {failed_reason}; the rest \
                         of the push was delivered; retry in {}",
                        failed.len(),
                        plural(failed.len()),
                        st.failing_retry.failures,
                        name_list(&failed),
                        human_duration(f.delay)
                    );
                    if f.news {
                        sh.log.error(&msg);
                    } else {
                        sh.log.debug(&msg);
                    }
                    st.failing_reason = Some(failed_reason);
                }
                compact(sh, name, &mut st);
            }
            Outcome::Failed { class, reason, key } => {
                st.pending.extend(batch.difference(&retried).cloned());
                st.failing.extend(retried);
                if (sh.stopping() && sh.kill.load(Ordering::SeqCst)) || slot.kill.load(Ordering::SeqCst) {
                    // Killed because rpush is stopping: not news about the host.
                    return;
                }
                let now = Instant::now();
                match st.outage.as_mut() {
                    Some(o) => o.pushed(now),
                    None => {
                        st.outage = Some(Outage::begin(now, now_string()));
                        sh.log.info(&format!("{name}: outage began"));
                    }
                }
                let f = st.retry.fail(&sh.cfg.backoff, now, class, &key);
                let kind = match class {
                    Class::Temporary => "temporary",
                    Class::Permanent => "permanent",
                };
                let msg = format!(
                    "{name}: push failed ({kind}, attempt {}): {reason}; {} path{} pending, retry in {}",
                    st.retry.failures,
                    st.pending.len(),
                    plural(st.pending.len()),
                    human_duration(f.delay)
                );
                if f.news {
                    sh.log.error(&msg);
                } else {
                    sh.log.debug(&msg);
                }
                st.last_error = Some((now_string(), reason));
            }
        }
        drop(st);
        sh.bump();
        // After the job slot is released (-j counts rsyncs) and before this host's next
        // push, so a reload always follows the push it is about.
        if let (Some(plan), Some(cmd)) = (hook, &sh.cfg.on_push) {
            run_hook(sh, &slot.host, cmd, &plan);
            let mut st = slot.lock();
            st.hook_running = false;
            st.owed_hook = None;
            compact(sh, name, &mut st);
            drop(st);
            sh.bump();
        }
    }
}

/// After a success (and at exit) the journal is rewritten to hold just what is still
/// pending. While a host is down it grows by one record per accepted batch, duplicates
/// included, until the next success. A failed compaction leaves the old, longer
/// journal: replaying it re-pushes paths already delivered, which is harmless. True when
/// the journal now holds exactly what is pending.
pub fn compact(sh: &Shared, name: &str, st: &mut HostState) -> bool {
    let HostState {
        journal,
        pending,
        failing,
        owed_hook,
        owed_in_journal,
        ..
    } = st;
    let all;
    let keep = if failing.is_empty() {
        &*pending
    } else {
        all = pending.union(failing).cloned().collect::<BTreeSet<_>>();
        &all
    };
    match journal {
        Some(j) => match j.rewrite_with(keep, owed_hook.as_ref()) {
            Ok(()) => {
                *owed_in_journal = owed_hook.clone().unwrap_or_default();
                true
            }
            Err(e) => {
                sh.log.error(&format!(
                    "{name}: journal {}: {}",
                    j.path.display(),
                    super::os_error(&e)
                ));
                false
            }
        },
        None => false,
    }
}

/// This push's hook plan with the paths of a hook still owed from before added: one
/// hook run tells about both.
fn merge_owed(plan: Option<Plan>, owed: Option<BTreeSet<Vec<u8>>>) -> Option<Plan> {
    match (plan, owed) {
        (plan, None) => plan,
        (None, Some(o)) => Some(Plan {
            deletions: Vec::new(),
            updates: o.into_iter().collect(),
        }),
        (Some(mut p), Some(o)) => {
            for e in o {
                if !p.entries().any(|x| *x == e) {
                    p.updates.push(e);
                }
            }
            Some(p)
        }
    }
}

/// Up to ten paths, escaped, for a log line.
pub fn name_list(paths: &BTreeSet<Vec<u8>>) -> String {
    let mut v: Vec<String> = paths
        .iter()
        .take(10)
        .map(|p| if p.is_empty() { ".".to_string() } else { escape_bytes(p) })
        .collect();
    if paths.len() > 10 {
        v.push(format!("and {} more", paths.len() - 10));
    }
    v.join(", ")
}

pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

pub fn human_duration(d: Duration) -> String {
    if d < Duration::from_secs(10) && d.subsec_millis() != 0 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}s", d.as_secs())
    }
}

enum Outcome {
    /// Delivered; `requeue` are paths that changed while rsync ran (exit 24).
    Delivered {
        requeue: Vec<Vec<u8>>,
        /// What to tell `--on-push` about, when it is set and something changed.
        hook: Option<Plan>,
        /// Paths rsync named as not transferred (exit 23): the rest was delivered.
        failed: BTreeSet<Vec<u8>>,
        failed_reason: String,
    },
    Failed {
        class: Class,
        reason: String,
        key: String,
    },
}

/// What a relative path is on the source now (lstat: a symlink is a symlink).
fn stat_kind(base: &[u8], rel: &[u8]) -> Kind {
    let p = paths::join(base, rel);
    match std::fs::symlink_metadata(OsStr::from_bytes(&p)) {
        Ok(m) if m.is_dir() => Kind::Dir,
        Ok(_) => Kind::Other,
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => Kind::Missing,
        // Unreadable: let rsync try and report it.
        Err(_) => Kind::Other,
    }
}

/// Refuses to run when the base is gone or empty: with `--delete-missing-args`
/// everything listed would be deleted on the target (an unmounted disk must not wipe
/// every host).
fn check_base(base: &[u8]) -> Result<(), String> {
    if base == b"/" {
        return Ok(());
    }
    let shown = escape_bytes(base);
    match std::fs::read_dir(OsStr::from_bytes(base)) {
        Ok(mut d) => match d.next() {
            Some(_) => Ok(()),
            None => Err(format!(
                "refusing to push: base {shown} is empty (unmounted disk?); nothing deleted"
            )),
        },
        Err(e) => Err(format!(
            "refusing to push: base {shown}: {} (unmounted disk?); nothing deleted",
            super::os_error(&e)
        )),
    }
}

/// One push of `batch` to `host`.
fn push(sh: &Shared, slot: &HostSlot, batch: &BTreeSet<Vec<u8>>) -> Outcome {
    let host = &slot.host;
    let base = &sh.cfg.settings.base;
    if let Err(reason) = check_base(base) {
        return Outcome::Failed {
            class: Class::Permanent,
            key: reason.clone(),
            reason,
        };
    }
    // The base itself stands for a full sync (a damaged journal, a host added by
    // SIGHUP). Of `/` that is every file on this machine with --delete on the target:
    // refused whoever asks; input records asking for it never get this far.
    let whole_root = base == b"/" && batch.contains(&Vec::new());
    if whole_root {
        sh.log.error(&format!(
            "{}: a full sync of the base / (every file on this machine, with --delete) is \
             refused; the other pending paths are pushed (give -C the directory you mirror)",
            host.name
        ));
    }
    let plan = collapse::collapse(batch.iter().filter(|p| !(whole_root && p.is_empty())), |rel| {
        stat_kind(base, rel)
    });
    let mut list = Vec::new();
    for e in plan.entries() {
        list.extend_from_slice(&paths::wire(e));
        list.push(0);
    }
    // A host not known to be answering (its first push, or it failed last time) must
    // greet within --contimeout before rsync gets a slot's worth of time: see
    // `outage::greets`. (ssh's ConnectTimeout already covers its banner exchange.)
    let contimeout = sh.cfg.settings.contimeout;
    let unproven = {
        let st = slot.lock();
        st.retry.failures > 0 || st.pushes == 0
    };
    if host.target.transport == Transport::Daemon
        && unproven
        && !contimeout.is_zero()
        && let Some(port) = outage::port(&host.target, None)
        && let Err(reason) = outage::greets(&host.target.host, port, contimeout)
    {
        return Outcome::Failed {
            class: Class::Temporary,
            key: reason.clone(),
            reason,
        };
    }
    let args = rsync::args(&sh.cfg.settings, &host.target);
    sh.log.verbose(&format!(
        "{}: {} ({} deletion{} and {} update{} on stdin)",
        host.name,
        rsync::display(&sh.cfg.rsync, &args),
        plan.deletions.len(),
        plural(plan.deletions.len()),
        plan.updates.len(),
        plural(plan.updates.len())
    ));
    let started = Instant::now();
    let mut counter = LineCounter::default();
    // rsync's item lines are counted as they come: the kept stdout is bounded.
    let mut items = rsync::ReportStream::default();
    let mut on_out = |chunk: &[u8]| {
        items.feed(chunk);
        if let Some(p) = &sh.progress {
            counter.feed(chunk);
            p.update(&host.name, started, counter.counts);
        }
    };
    let run = run_child(
        &sh.cfg.rsync,
        &args,
        &[],
        list,
        Limit::Idle(sh.cfg.watchdog),
        &[&sh.kill, &slot.kill],
        Some(&mut on_out),
    );
    if let Some(p) = &sh.progress {
        p.done(&host.name);
    }
    let report = items.finish();
    match rsync::classify(run.ended, &run.stderr) {
        Verdict::Ok { vanished } => {
            let mut requeue = Vec::new();
            if vanished {
                // Exit 24: something changed under rsync. Whatever now differs from what
                // we told rsync goes round again.
                requeue.extend(
                    plan.deletions
                        .iter()
                        .filter(|p| stat_kind(base, p) != Kind::Missing)
                        .cloned(),
                );
                requeue.extend(
                    plan.updates
                        .iter()
                        .filter(|p| stat_kind(base, p) == Kind::Missing)
                        .cloned(),
                );
            }
            sh.log.info(&format!(
                "{}: pushed {} path{} ({} deleted, {} updated): {} change{}, {} bytes, {:.2}s{}",
                host.name,
                plan.len(),
                plural(plan.len()),
                plan.deletions.len(),
                plan.updates.len(),
                report.changed,
                plural(report.changed as usize),
                report.bytes,
                run.elapsed.as_secs_f64(),
                if vanished {
                    ", some files vanished during the transfer (exit 24)"
                } else {
                    ""
                }
            ));
            let hook = (report.changed > 0 && sh.cfg.on_push.is_some()).then_some(plan);
            Outcome::Delivered {
                requeue,
                hook,
                failed: BTreeSet::new(),
                failed_reason: String::new(),
            }
        }
        Verdict::Failed { key, .. }
            if run.ended == Ended::Code(23)
                // A cut stderr may hide failed paths: then the whole push failed.
                && run.stderr_dropped == 0
                && let Some(failed) = rsync::failed_paths(&run.stderr, base).filter(|f| !f.is_empty()) =>
        {
            // Per-file errors only: everything else in the push was delivered, so it
            // counts (and its hook runs); the named paths stay pending on their own.
            let mut plan = plan;
            plan.updates.retain(|p| !failed.contains(p));
            plan.deletions.retain(|p| !failed.contains(p));
            sh.log.info(&format!(
                "{}: pushed {} path{} of {} ({} not transferred, exit 23): {} change{}, {} bytes, {:.2}s",
                host.name,
                plan.len(),
                plural(plan.len()),
                batch.len(),
                failed.len(),
                report.changed,
                plural(report.changed as usize),
                report.bytes,
                run.elapsed.as_secs_f64(),
            ));
            let hook = (report.changed > 0 && sh.cfg.on_push.is_some()).then_some(plan);
            Outcome::Delivered {
                requeue: Vec::new(),
                hook,
                failed,
                failed_reason: key,
            }
        }
        Verdict::Failed { class, reason, key } => {
            let reason = match &run.spawn_error {
                Some(e) => format!("{reason}: {}: {e}", sh.cfg.rsync.display()),
                None => reason,
            };
            Outcome::Failed { class, reason, key }
        }
    }
}

/// Runs the `--on-push` command for a push that changed something.
fn run_hook(sh: &Shared, host: &Host, cmd: &[OsString], plan: &Plan) {
    let hostname = host.target.host.as_bytes();
    let argv: Vec<OsString> = cmd
        .iter()
        .enumerate()
        .map(|(i, a)| {
            if i == 0 {
                a.clone()
            } else {
                OsString::from_vec(replace(a.as_bytes(), b"{}", hostname))
            }
        })
        .collect();
    let mut stdin = Vec::new();
    for e in plan.entries() {
        stdin.extend_from_slice(&paths::join(&sh.cfg.settings.base, e));
        stdin.push(sh.cfg.delim);
    }
    let env = [
        ("RPUSH_HOST", host.target.host.as_str()),
        ("RPUSH_DEST", host.target.dest.as_str()),
    ];
    let program = Path::new(&argv[0]);
    // A hook that started runs to its end whatever happens to input or signals: it is
    // the reload the push was for. Only its own time limit stops it.
    let limit = Limit::Total(sh.cfg.on_push_timeout);
    let run = run_child(program, &argv[1..], &env, stdin, limit, &[], None);
    let shown = rsync::display(program, &argv[1..]);
    let failed = match run.ended {
        Ended::Code(0) => None,
        Ended::Code(c) => Some(format!("exit status {c}")),
        Ended::Signal(s) => Some(format!("killed by signal {s}")),
        Ended::Watchdog => Some(format!(
            "killed after --on-push-timeout ({})",
            human_duration(sh.cfg.on_push_timeout)
        )),
        Ended::NotStarted => Some(format!("cannot run: {}", run.spawn_error.clone().unwrap_or_default())),
    };
    match &failed {
        None => sh.log.verbose(&format!("{}: --on-push {shown}: ok", host.name)),
        Some(why) => {
            sh.log.error(&format!("{}: --on-push {shown}: {why}", host.name));
            sh.failed_hooks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(format!("{} ({why})", host.name));
        }
    }
    // The hook's own output goes to our stderr, each line marked with the host.
    for line in run
        .stdout
        .split(|&b| b == b'\n')
        .chain(run.stderr.split(|&b| b == b'\n'))
    {
        if !line.is_empty() {
            sh.log
                .info(&format!("{}: --on-push: {}", host.name, escape_bytes(line)));
        }
    }
    let dropped = run.stdout_dropped + run.stderr_dropped;
    if dropped > 0 {
        sh.log.info(&format!(
            "{}: --on-push: {dropped} more bytes of output not kept (at most {CAPTURE_MAX} per stream)",
            host.name
        ));
    }
}

fn replace(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// Called with each chunk of a child's stdout as it arrives (the progress line).
pub type OnStdout<'a> = &'a mut dyn FnMut(&[u8]);

/// At most this much of a child's stdout and of its stderr is kept (the first bytes:
/// rsync's telling lines come first); the rest is counted, not kept.
pub const CAPTURE_MAX: usize = 1 << 20;

/// Appends `chunk` to `buf` up to [`CAPTURE_MAX`]; returns how many bytes did not fit.
fn capture(buf: &mut Vec<u8>, chunk: &[u8]) -> u64 {
    let room = CAPTURE_MAX.saturating_sub(buf.len());
    let keep = room.min(chunk.len());
    buf.extend_from_slice(&chunk[..keep]);
    (chunk.len() - keep) as u64
}

/// The result of one child process.
pub struct ChildRun {
    pub ended: Ended,
    /// The first [`CAPTURE_MAX`] bytes of each stream, and how many more there were.
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub stdout_dropped: u64,
    pub stderr_dropped: u64,
    pub elapsed: Duration,
    pub spawn_error: Option<String>,
}

enum Ev {
    Out(Vec<u8>),
    Err(Vec<u8>),
    Closed,
}

fn reader(mut r: impl Read + Send + 'static, tx: mpsc::Sender<Ev>, out: bool) {
    thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let chunk = buf[..n].to_vec();
                    let _ = tx.send(if out { Ev::Out(chunk) } else { Ev::Err(chunk) });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(Ev::Closed);
    });
}

/// rchar + wchar of a process: bytes it read or wrote through any descriptor.
fn io_counter(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let mut total = 0u64;
    for line in s.lines() {
        if let Some(v) = line.strip_prefix("rchar: ").or_else(|| line.strip_prefix("wchar: ")) {
            total = total.wrapping_add(v.trim().parse().ok()?);
        }
    }
    Some(total)
}

fn killgroup(child: &Child, sig: Signal) {
    // The child leads its own session and process group (see run_child), so this reaches
    // rsync's ssh too. ESRCH (already gone) is fine.
    let _ = killpg(Pid::from_raw(child.id() as i32), sig);
}

/// When a child is killed for taking too long.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// After this long without progress (output, or I/O in /proc): rsync's watchdog.
    Idle(Duration),
    /// After this long in all: a hook (`--on-push-timeout`), which may rightly be
    /// silent while it works.
    Total(Duration),
}

/// Runs `program args` with `input` on its stdin, collecting stdout and stderr, under
/// `limit`; gives up (kills it) when any of `stop` is set.
pub fn run_child(
    program: &Path,
    args: &[OsString],
    env: &[(&str, &str)],
    input: Vec<u8>,
    limit: Limit,
    stop: &[&AtomicBool],
    mut on_stdout: Option<OnStdout>,
) -> ChildRun {
    let start = Instant::now();
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own session, so its own process group: the watchdog can kill rsync with its
    // ssh, and a Ctrl-C on the terminal reaches rpush alone, which then stops its
    // children itself. No controlling terminal (a password prompt fails at once), and
    // it dies with rpush (see `sys::child`).
    crate::sys::child::detach_and_die_with_parent(&mut cmd);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return ChildRun {
                ended: Ended::NotStarted,
                stdout: vec![],
                stderr: vec![],
                stdout_dropped: 0,
                stderr_dropped: 0,
                elapsed: start.elapsed(),
                spawn_error: Some(super::os_error(&e)),
            };
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A separate thread: a child that never reads its stdin must not block the
        // watchdog. Killing the child ends the write with EPIPE (SIGPIPE is ignored).
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let (tx, rx) = mpsc::channel();
    if let Some(o) = child.stdout.take() {
        reader(o, tx.clone(), true);
    }
    if let Some(e) = child.stderr.take() {
        reader(e, tx.clone(), false);
    }
    drop(tx);
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let (mut stdout_dropped, mut stderr_dropped) = (0u64, 0u64);
    let mut open = 2;
    let mut last_progress = Instant::now();
    let mut last_io = io_counter(child.id());
    let mut killed_at: Option<Instant> = None;
    let mut watchdog_fired = false;
    let mut exited_at: Option<Instant> = None;
    let mut status = None;
    loop {
        if open > 0 {
            // Wakes on output, so an exit (which closes the pipes) is seen at once.
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Ev::Out(b)) => {
                    if let Some(f) = on_stdout.as_mut() {
                        f(&b);
                    }
                    stdout_dropped += capture(&mut stdout, &b);
                    last_progress = Instant::now();
                }
                Ok(Ev::Err(b)) => {
                    stderr_dropped += capture(&mut stderr, &b);
                    last_progress = Instant::now();
                }
                Ok(Ev::Closed) => open -= 1,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => open = 0,
            }
        } else {
            // Pipes closed but maybe still running (a hook that closed its output):
            // keep polling rather than block in wait(2), so the watchdog still applies.
            thread::sleep(Duration::from_millis(10));
        }
        if status.is_none() {
            status = child.try_wait().ok().flatten();
            if status.is_some() {
                exited_at = Some(Instant::now());
            }
        }
        if let Some(t) = exited_at {
            // Exited; a grandchild (ssh) may hold the pipes a little longer.
            if open == 0 || t.elapsed() > Duration::from_millis(500) {
                break;
            }
            continue;
        }
        let io = io_counter(child.id());
        if io.is_some() && io != last_io {
            last_io = io;
            last_progress = Instant::now();
        }
        match killed_at {
            None => {
                let stopping = stop.iter().any(|f| f.load(Ordering::SeqCst));
                let over = match limit {
                    Limit::Idle(d) => last_progress.elapsed() >= d,
                    Limit::Total(d) => start.elapsed() >= d,
                };
                if stopping || over {
                    watchdog_fired = !stopping;
                    killgroup(&child, Signal::SIGTERM);
                    killed_at = Some(Instant::now());
                }
            }
            Some(t) if t.elapsed() >= KILL_GRACE => {
                killgroup(&child, Signal::SIGKILL);
                killed_at = Some(Instant::now() + Duration::from_secs(3600));
            }
            Some(_) => {}
        }
    }
    let ended = if watchdog_fired {
        Ended::Watchdog
    } else {
        match status {
            Some(st) => match (st.code(), st.signal()) {
                (Some(c), _) => Ended::Code(c),
                (None, Some(s)) => Ended::Signal(s),
                (None, None) => Ended::Signal(0),
            },
            None => Ended::Signal(0),
        }
    };
    ChildRun {
        ended,
        stdout,
        stderr,
        stdout_dropped,
        stderr_dropped,
        elapsed: start.elapsed(),
        spawn_error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_go_first_come_first_served() {
        let mut q = SlotQueue {
            free: 1,
            ..SlotQueue::default()
        };
        let (a, b, c) = (q.join(), q.join(), q.join());
        assert!(!q.try_take(b) && !q.try_take(c), "b and c wait behind a");
        assert!(q.try_take(a));
        // a is done and wants another push: it queues behind b and c.
        q.free += 1;
        let a2 = q.join();
        assert!(!q.try_take(a2) && !q.try_take(c));
        assert!(q.try_take(b));
        q.free += 1;
        assert!(!q.try_take(a2));
        assert!(q.try_take(c));
        q.free += 1;
        assert!(q.try_take(a2));
        // One that gives up leaves the queue and blocks nobody.
        q.free += 1;
        let (d, e) = (q.join(), q.join());
        q.leave(d);
        assert!(q.try_take(e));
    }

    #[test]
    fn a_childs_output_is_kept_up_to_the_cap_and_the_rest_counted() {
        let stop = AtomicBool::new(false);
        // 5 MiB on each stream from a real child.
        let args: Vec<OsString> = vec![
            "-c".into(),
            "head -c 5242880 /dev/zero; head -c 5242880 /dev/zero >&2".into(),
        ];
        let mut seen = 0usize;
        let mut count = |c: &[u8]| seen += c.len();
        let run = run_child(
            Path::new("sh"),
            &args,
            &[],
            vec![],
            Limit::Idle(Duration::from_secs(30)),
            &[&stop],
            Some(&mut count),
        );
        assert_eq!(run.ended, Ended::Code(0));
        assert_eq!(run.stdout.len(), CAPTURE_MAX);
        assert_eq!(run.stderr.len(), CAPTURE_MAX);
        assert_eq!(run.stdout_dropped, (5 << 20) - CAPTURE_MAX as u64);
        assert_eq!(run.stderr_dropped, (5 << 20) - CAPTURE_MAX as u64);
        assert_eq!(seen, 5 << 20, "the stdout callback sees every byte");
    }

    #[test]
    fn placeholder_replacement() {
        assert_eq!(replace(b"root@{}:{}", b"{}", b"web1"), b"root@web1:web1");
        assert_eq!(replace(b"none", b"{}", b"x"), b"none");
    }

    #[test]
    fn watchdog_kills_a_silent_child() {
        let stop = AtomicBool::new(false);
        let run = run_child(
            Path::new("sleep"),
            &["30".into()],
            &[],
            vec![],
            Limit::Idle(Duration::from_millis(300)),
            &[&stop],
            None,
        );
        assert_eq!(run.ended, Ended::Watchdog);
        assert!(run.elapsed < Duration::from_secs(5), "{:?}", run.elapsed);
    }

    #[test]
    fn watchdog_escalates_to_sigkill() {
        let stop = AtomicBool::new(false);
        let args: Vec<OsString> = vec!["-c".into(), "trap '' TERM; sleep 30 & wait; sleep 30".into()];
        let run = run_child(
            Path::new("sh"),
            &args,
            &[],
            vec![],
            Limit::Idle(Duration::from_millis(200)),
            &[&stop],
            None,
        );
        assert_eq!(run.ended, Ended::Watchdog);
        assert!(
            run.elapsed >= KILL_GRACE && run.elapsed < KILL_GRACE * 3,
            "{:?}",
            run.elapsed
        );
    }

    #[test]
    fn watchdog_still_applies_after_the_child_closes_its_output() {
        let stop = AtomicBool::new(false);
        let args: Vec<OsString> = vec!["-c".into(), "exec >&- 2>&-; sleep 30".into()];
        let run = run_child(
            Path::new("sh"),
            &args,
            &[],
            vec![],
            Limit::Idle(Duration::from_millis(300)),
            &[&stop],
            None,
        );
        assert_eq!(run.ended, Ended::Watchdog);
        assert!(run.elapsed < Duration::from_secs(5), "{:?}", run.elapsed);
    }

    #[test]
    fn stop_kills_without_blaming_the_watchdog() {
        let stop = AtomicBool::new(true);
        let run = run_child(
            Path::new("sleep"),
            &["30".into()],
            &[],
            vec![],
            Limit::Idle(Duration::from_secs(60)),
            &[&stop],
            None,
        );
        assert_eq!(run.ended, Ended::Signal(libc::SIGTERM));
    }

    #[test]
    fn a_total_limit_kills_a_child_that_keeps_talking() {
        // Output is progress for the idle watchdog, not for a total limit.
        let stop = AtomicBool::new(false);
        let args: Vec<OsString> = vec!["-c".into(), "while :; do echo .; sleep 0.05; done".into()];
        let run = run_child(
            Path::new("sh"),
            &args,
            &[],
            vec![],
            Limit::Total(Duration::from_millis(400)),
            &[&stop],
            None,
        );
        assert_eq!(run.ended, Ended::Watchdog);
        assert!(run.elapsed < Duration::from_secs(5), "{:?}", run.elapsed);
    }

    #[test]
    fn child_output_and_status_are_collected() {
        let stop = AtomicBool::new(false);
        let args: Vec<OsString> = vec!["-c".into(), "cat; echo err >&2; exit 3".into()];
        let run = run_child(
            Path::new("sh"),
            &args,
            &[],
            b"in\0put".to_vec(),
            Limit::Idle(Duration::from_secs(10)),
            &[&stop],
            None,
        );
        assert_eq!(run.ended, Ended::Code(3));
        assert_eq!(run.stdout, b"in\0put");
        assert_eq!(run.stderr, b"err\n");
        let run = run_child(
            Path::new("/nonexistent/x"),
            &[],
            &[],
            vec![],
            Limit::Idle(Duration::from_secs(1)),
            &[&stop],
            None,
        );
        assert_eq!(run.ended, Ended::NotStarted);
        assert!(run.spawn_error.unwrap().contains("No such file"));
    }

    #[test]
    fn base_check_refuses_empty_and_missing() {
        let d = tempfile::tempdir().unwrap();
        let b = d.path().as_os_str().as_bytes().to_vec();
        assert!(check_base(&b).unwrap_err().contains("is empty"));
        std::fs::write(d.path().join("f"), "x").unwrap();
        assert!(check_base(&b).is_ok());
        assert!(check_base(b"/nonexistent-base").unwrap_err().contains("No such file"));
        assert!(check_base(b"/").is_ok());
    }
}
