//! The run: a reader thread turns stdin into batches and hands each to every host, one
//! worker thread per host pushes, and the main thread keeps the status file current
//! (and its heartbeat), turns signals, the end of input and the passing of time into
//! events for the [`Coordinator`], which decides when to drain, stop and finish, and
//! does what it says. SIGHUP re-reads the hosts files (`reload`).

use std::io;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::batch::{BatchReader, MAX_PATH_RECORD, Resolver, Skipped};
use super::config::Config;
use super::coordinator::{self, Action, Coordinator, Event, HostView};
use super::journal::{self, Journal};
use super::status::{self, HostStatus};
use super::worker::{self, HostSlot, HostState, Shared, human_duration, plural};
use crate::common::msg::{eprint, escape_bytes};

/// The exit status of a stop (SIGTERM/SIGINT) that left paths undelivered, every one
/// of them in its host's journal: nothing is lost, the next start delivers them.
pub const STOPPED_JOURNALED: u8 = 3;

/// The status file is rewritten at least this often, idle or not: its heartbeat.
const HEARTBEAT: Duration = Duration::from_secs(2);

/// How often the main thread looks at the hosts (status file, drain, signals).
const TICK: Duration = Duration::from_millis(50);

/// Runs rpush with a checked configuration; returns 0 when everything was delivered, 3
/// when a stop left paths pending that are all journaled, 1
/// otherwise (2 when the status file cannot be written at all).
pub fn run(cfg: Config) -> ExitCode {
    let signalled = Arc::new(AtomicBool::new(false));
    let hangup = Arc::new(AtomicBool::new(false));
    for (sig, flag) in [
        (signal_hook::consts::SIGINT, &signalled),
        (signal_hook::consts::SIGTERM, &signalled),
        (signal_hook::consts::SIGHUP, &hangup),
    ] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(flag)) {
            eprint("rpush", &format!("cannot handle signal {sig}: {e}"));
            return ExitCode::from(2);
        }
    }
    let sh = Arc::new(Shared::new(cfg));
    if let Some(dir) = &sh.cfg.state_dir
        && let Err(msg) = open_journals(&sh, dir, &sh.hosts()).and_then(|()| report_strangers(&sh, dir))
    {
        eprint("rpush", &msg);
        return ExitCode::from(2);
    }
    if sh.cfg.initial {
        // The base itself: rsync -r --delete of "." is a full sync.
        queue(&sh, &[Vec::new()]);
    }
    if let Some(path) = &sh.cfg.status
        && let Err(e) = status::write_atomic(path, &render_status(&sh, "running"))
    {
        eprint(
            "rpush",
            &format!("--status {}: {}", path.display(), super::os_error(&e)),
        );
        return ExitCode::from(2);
    }

    let mut workers = Vec::new();
    for slot in sh.hosts() {
        match spawn_worker(&sh, slot) {
            Ok(h) => workers.push(h),
            Err(e) => {
                eprint("rpush", &format!("cannot start a worker thread: {e}"));
                return ExitCode::from(1);
            }
        }
    }
    let input_done = Arc::new(AtomicBool::new(false));
    {
        let sh2 = Arc::clone(&sh);
        let done = Arc::clone(&input_done);
        // Not joined: at the end rpush exits while this may still block in read(2).
        let spawned = thread::Builder::new().name("reader".into()).spawn(move || {
            read_input(&sh2);
            for h in &sh2.hosts() {
                h.lock().input_done = true;
                h.cv.notify_all();
            }
            done.store(true, Ordering::SeqCst);
        });
        if let Err(e) = spawned {
            eprint("rpush", &format!("cannot start the reader thread: {e}"));
            return ExitCode::from(1);
        }
    }

    // The main loop: signals, the end of input and the passing of time go to the
    // coordinator as events; it decides the phase and says what to do.
    let mut co = Coordinator::new(sh.cfg.drain_timeout, sh.cfg.state_dir.is_some());
    let mut seen = u64::MAX;
    let mut written = Instant::now();
    let end = 'run: loop {
        thread::sleep(TICK);
        let mut actions = Vec::new();
        // Taken (swap), so that a second signal, however soon, is seen as one.
        if signalled.swap(false, Ordering::SeqCst) {
            actions.extend(co.handle(Event::Signal, Instant::now(), &[]));
        }
        if co.takes_reload() && hangup.swap(false, Ordering::SeqCst) {
            sh.log.info("SIGHUP: reading the hosts files again");
            reload(&sh, &mut workers, input_done.load(Ordering::SeqCst));
        }
        if input_done.load(Ordering::SeqCst) {
            actions.extend(co.handle(Event::InputEnded, Instant::now(), &[]));
        }
        let generation = sh.generation.load(Ordering::SeqCst);
        if generation != seen || written.elapsed() >= HEARTBEAT {
            seen = generation;
            written = Instant::now();
            write_status(&sh, co.state());
        }
        let hosts = sh.hosts();
        let views: Vec<HostView> = hosts.iter().map(|h| view(&h.lock())).collect();
        actions.extend(co.handle(Event::Tick, Instant::now(), &views));
        for a in actions {
            match a {
                Action::SayStopping => sh.log.info("signal received: stopping"),
                Action::SayDraining => sh.log.verbose(&format!(
                    "end of input: draining (at most {})",
                    human_duration(sh.cfg.drain_timeout)
                )),
                Action::SayDrainTimeout => sh.log.error(&format!(
                    "--drain-timeout ({}) reached",
                    human_duration(sh.cfg.drain_timeout)
                )),
                Action::SoftStop | Action::StopNewPushes => {
                    let flag = if a == Action::SoftStop { &sh.soft_stop } else { &sh.stop };
                    flag.store(true, Ordering::SeqCst);
                    for h in &sh.hosts() {
                        h.cv.notify_all();
                    }
                }
                Action::KillHost(i) => {
                    if let Some(h) = hosts.get(i) {
                        h.kill.store(true, Ordering::SeqCst);
                    }
                }
                Action::KillAll => sh.kill.store(true, Ordering::SeqCst),
                Action::Finish(end) => break 'run end,
            }
        }
    };
    let state = end.state();
    sh.kill.store(true, Ordering::SeqCst);
    for w in workers {
        let _ = w.join();
    }
    // Whether everything undelivered is in a journal that holds exactly it.
    let mut journaled = true;
    for h in &sh.hosts() {
        // What is left, exactly: the journal is what a restart replays.
        let mut st = h.lock();
        let ok = worker::compact(&sh, &h.host.name, &mut st);
        journaled &= ok || st.lacking() == 0;
    }
    write_status(&sh, state);

    let mut undelivered = Vec::new();
    for h in &sh.hosts() {
        let st = h.lock();
        let n = st.lacking();
        if n > 0 {
            let mut why = st
                .last_error
                .as_ref()
                .filter(|_| st.retry.failures > 0 || st.failing.is_empty())
                .map(|(_, r)| format!(" (last error: {r})"))
                .unwrap_or_default();
            if !st.failing.is_empty() {
                why.push_str(&format!(
                    " (not transferred: {}: {})",
                    worker::name_list(&st.failing),
                    st.failing_reason.as_deref().unwrap_or("unknown")
                ));
            }
            if let Some(o) = &st.outage {
                why.push_str(&format!(" (in outage since {})", o.began_at));
            }
            let kept = st
                .journal
                .as_ref()
                .map(|j| format!(", kept in {}", j.path.display()))
                .unwrap_or_default();
            undelivered.push(format!("{} lacks {n} path{}{why}{kept}", h.host.name, plural(n)));
        }
    }
    let refused = sh.refused.load(Ordering::SeqCst);
    if refused > 0 {
        sh.log.error(&format!(
            "{refused} input record{} refused (see above): what they stood for may be missing \
             on the targets",
            plural(refused as usize)
        ));
    }
    let failed_hooks = std::mem::take(&mut *sh.failed_hooks.lock().unwrap_or_else(|e| e.into_inner()));
    if !failed_hooks.is_empty() {
        sh.log.error(&format!("--on-push failed: {}", failed_hooks.join("; ")));
    }
    let status = coordinator::exit_status(
        end,
        coordinator::Outcome {
            undelivered: !undelivered.is_empty(),
            journaled,
            refused: refused > 0,
            hook_failed: !failed_hooks.is_empty(),
        },
    );
    if status == 0 {
        ExitCode::SUCCESS
    } else if status == STOPPED_JOURNALED {
        sh.log.info(&format!(
            "stopped with paths pending, all journaled (the next start delivers them): {}; {}",
            undelivered.join("; "),
            whoami()
        ));
        ExitCode::from(STOPPED_JOURNALED)
    } else {
        if !undelivered.is_empty() {
            sh.log
                .error(&format!("not delivered: {}; {}", undelivered.join("; "), whoami()));
        }
        ExitCode::from(1)
    }
}

/// What the coordinator needs to know about a host.
fn view(st: &HostState) -> HostView {
    HostView {
        running: st.running,
        hook_running: st.hook_running,
        pending: !st.pending.is_empty(),
        idle: st.idle(),
        down: st.retry.failures > 0,
    }
}

/// Which rpush says so, and when: the exit summary's signature (as in the status file).
fn whoami() -> String {
    format!("rpush pid {} at {}", std::process::id(), worker::now_string())
}

/// The reader thread's work: batches from stdin to every host until end of input.
fn read_input(sh: &Shared) {
    let stdin = io::stdin();
    let resolver = Resolver {
        base: sh.cfg.settings.base.clone(),
        base_arg: sh.cfg.base_arg.clone(),
        cwd: sh.cfg.cwd.clone(),
    };
    let mut reader = BatchReader::new(stdin.lock(), sh.cfg.delim, resolver);
    let base = escape_bytes(&sh.cfg.settings.base);
    loop {
        let next = reader.next_batch(|s| {
            if !matches!(s, Skipped::Outside(_)) {
                sh.refused.fetch_add(1, Ordering::SeqCst);
            }
            report_skipped(sh, &base, s)
        });
        match next {
            Ok(Some(batch)) => {
                sh.log
                    .verbose(&format!("batch of {} path{}", batch.len(), plural(batch.len())));
                queue(sh, &batch);
            }
            Ok(None) => return,
            Err(e) => {
                sh.log.error(&format!("reading stdin: {}", super::os_error(&e)));
                return;
            }
        }
    }
}

/// Says why an input record is not part of a batch.
fn report_skipped(sh: &Shared, base: &str, s: Skipped) {
    match s {
        Skipped::Outside(p) => sh
            .log
            .info(&format!("{}: outside the base {base}, skipped", escape_bytes(p))),
        Skipped::TooLong(n) => sh.log.error(&format!(
            "input record of {n} bytes skipped: longer than {MAX_PATH_RECORD}, so not a path"
        )),
        Skipped::Relative(p) => sh.log.error(&format!(
            "input record {}: a relative path without -C, refused (part of a file name \
             with a newline? use -0 end to end, or give -C)",
            escape_bytes(p)
        )),
        Skipped::Nul(p) => sh.log.error(&format!(
            "input record {}: holds a NUL byte, refused (rsync would read it as two paths)",
            escape_bytes(p)
        )),
        Skipped::WholeBase(p) => sh.log.error(&format!(
            "input record {}: names the whole base {base} without being its name, refused \
             (part of a file name with a newline?)",
            escape_bytes(p)
        )),
        Skipped::Root(p) => sh.log.error(&format!(
            "input record {}: a sync of the whole base / (every file on this machine, with \
             --delete) is refused; give -C the directory you mirror",
            escape_bytes(p)
        )),
    }
}

/// Opens and replays every host's journal; reports bad tails and journals of hosts that
/// are no longer targets (kept: the user decides).
fn open_journals(sh: &Shared, dir: &std::path::Path, slots: &[Arc<HostSlot>]) -> Result<(), String> {
    for h in slots {
        let base = &sh.cfg.settings.base;
        let failed = |e: std::io::Error| {
            format!(
                "--state-dir {}: {}: {}",
                dir.display(),
                h.host.name,
                super::os_error(&e)
            )
        };
        let (j, replay) = Journal::open(dir, &h.host.target.dest, base).map_err(failed)?;
        let mut st = h.lock();
        if let Some(other) = replay.base.as_deref().filter(|b| b != base) {
            sh.log.error(&format!(
                "{}: journal {} was written for base {}, not {}: its paths are not replayed \
                 (kept in {}.otherbase); queueing a full sync",
                h.host.name,
                j.path.display(),
                escape_bytes(other),
                escape_bytes(base),
                j.path.display()
            ));
            st.pending.insert(Vec::new());
        }
        if let Some(bad) = &replay.bad_tail {
            sh.log.error(&format!(
                "{}: journal {}: {} at byte {} ({} byte{} not replayed, kept in {}.corrupt); \
                 replaying the {} intact batch{} and queueing a full sync",
                h.host.name,
                j.path.display(),
                bad.cause,
                bad.offset,
                bad.bytes,
                plural(bad.bytes),
                j.path.display(),
                replay.batches,
                if replay.batches == 1 { "" } else { "es" },
            ));
            // Batches in the lost tail are unknown: re-check everything.
            st.pending.insert(Vec::new());
        }
        if !replay.paths.is_empty() {
            sh.log.info(&format!(
                "{}: replaying {} pending path{} from {}",
                h.host.name,
                replay.paths.len(),
                plural(replay.paths.len()),
                j.path.display()
            ));
        }
        st.pending.extend(replay.paths);
        if let Some(owed) = replay.owed_hook {
            if sh.cfg.on_push.is_some() {
                sh.log.info(&format!(
                    "{}: an --on-push hook is owed (rpush ended before it ran to its end): it runs \
                     after the next successful push",
                    h.host.name
                ));
                // Pushed again (a no-op when they are current): the push the hook follows.
                st.pending.extend(owed.iter().cloned());
                st.owed_in_journal = owed.clone();
                st.owed_hook = Some(owed);
            } else {
                sh.log.info(&format!(
                    "{}: an --on-push hook was owed, but no --on-push is given now: dropped",
                    h.host.name
                ));
            }
        }
        st.journal = Some(j);
        if !st.pending.is_empty() {
            // Replayed paths must survive the next compaction even if the bad tail's
            // full sync is all that is new.
            let HostState {
                journal,
                pending,
                owed_hook,
                ..
            } = &mut *st;
            if let Some(j) = journal {
                j.rewrite_with(pending, owed_hook.as_ref()).map_err(failed)?;
            }
        }
    }
    Ok(())
}

/// Names the journals of destinations that are no longer targets: kept, for the user.
fn report_strangers(sh: &Shared, dir: &std::path::Path) -> Result<(), String> {
    let hosts = sh.hosts();
    let dests: Vec<&str> = hosts.iter().map(|h| h.host.target.dest.as_str()).collect();
    let strangers = journal::strangers(dir, &dests)
        .map_err(|e| format!("--state-dir {}: {}", dir.display(), super::os_error(&e)))?;
    for (path, dest) in strangers {
        sh.log.info(&format!(
            "journal {} ({}) belongs to no current target: kept, not replayed",
            path.display(),
            dest.as_deref().unwrap_or("unknown destination")
        ));
    }
    Ok(())
}

/// Accepts a batch for every host: journaled and fsync'd first (with `--state-dir`),
/// then queued. A journal that cannot be written (disk full) does not stop delivery:
/// the batch is queued in memory and the failure reported.
fn queue(sh: &Shared, batch: &[Vec<u8>]) {
    for h in &sh.hosts() {
        queue_host(sh, h, batch);
    }
    sh.bump();
}

fn queue_host(sh: &Shared, h: &HostSlot, batch: &[Vec<u8>]) {
    {
        let mut st = h.lock();
        if let Some(j) = &mut st.journal
            && let Err(e) = j.append(batch)
        {
            sh.log.error(&format!(
                "{}: journal {}: {}; batch of {} path{} queued in memory only",
                h.host.name,
                j.path.display(),
                super::os_error(&e),
                batch.len(),
                plural(batch.len())
            ));
        }
        st.pending.extend(batch.iter().cloned());
        h.cv.notify_all();
    }
}

/// SIGHUP: reads the hosts files again. A new target gets a worker, its journal (if it
/// was a target before) and a full sync, since it missed everything so far; a target no
/// longer listed finishes its running push and stops, its journal kept in the state
/// directory. A hosts file that is now wrong changes nothing: the error is logged and
/// the current targets stay.
fn reload(sh: &Arc<Shared>, workers: &mut Vec<thread::JoinHandle<()>>, input_done: bool) {
    let old = sh.hosts();
    let new = match sh.cfg.sources.resolve() {
        Ok(h) => h,
        Err(msg) => {
            sh.log.error(&format!(
                "SIGHUP: {msg}; keeping the {} current target{}",
                old.len(),
                plural(old.len())
            ));
            return;
        }
    };
    let mut list = Vec::new();
    for h in new {
        if let Some(slot) = old.iter().find(|o| o.host.target.dest == h.target.dest) {
            list.push(Arc::clone(slot));
            continue;
        }
        // Removed by an earlier SIGHUP and listed again: the same slot, so one journal
        // handle per destination for the life of the process (a second one would
        // rewrite the same file through the same temporary name). Its worker may still
        // be finishing the push it ran when it was removed: then it just goes on.
        if let Some(slot) = sh.take_retired(&h.target.dest) {
            let need_worker = {
                let mut st = slot.lock();
                slot.removed.store(false, Ordering::SeqCst);
                st.input_done = input_done;
                !st.worker_alive
            };
            queue_host(sh, &slot, &[Vec::new()]);
            if need_worker {
                match spawn_worker(sh, Arc::clone(&slot)) {
                    Ok(w) => workers.push(w),
                    Err(e) => {
                        sh.log.error(&format!(
                            "SIGHUP: {}: cannot start a worker thread: {e}",
                            slot.host.name
                        ));
                        sh.retire(Arc::clone(&slot));
                        continue;
                    }
                }
            }
            sh.log.info(&format!(
                "{}: added back ({}), full sync queued",
                slot.host.name, slot.host.target.dest
            ));
            list.push(slot);
            continue;
        }
        let slot = Arc::new(HostSlot::new(h));
        if let Some(dir) = &sh.cfg.state_dir
            && let Err(msg) = open_journals(sh, dir, std::slice::from_ref(&slot))
        {
            sh.log.error(&format!("SIGHUP: {msg}; {} not added", slot.host.name));
            continue;
        }
        slot.lock().input_done = input_done;
        queue_host(sh, &slot, &[Vec::new()]);
        match spawn_worker(sh, Arc::clone(&slot)) {
            Ok(w) => workers.push(w),
            Err(e) => {
                sh.log.error(&format!(
                    "SIGHUP: {}: cannot start a worker thread: {e}",
                    slot.host.name
                ));
                continue;
            }
        }
        sh.log.info(&format!(
            "{}: added ({}), full sync queued",
            slot.host.name, slot.host.target.dest
        ));
        list.push(slot);
    }
    for o in &old {
        if list.iter().any(|n| Arc::ptr_eq(n, o)) {
            continue;
        }
        o.removed.store(true, Ordering::SeqCst);
        o.cv.notify_all();
        sh.retire(Arc::clone(o));
        let st = o.lock();
        let n = st.lacking();
        let kept = match &st.journal {
            Some(j) => format!("kept in {}", j.path.display()),
            None => "dropped (no --state-dir)".to_string(),
        };
        sh.log.info(&format!(
            "{}: removed ({}); {n} pending path{} {kept}",
            o.host.name,
            o.host.target.dest,
            plural(n)
        ));
    }
    sh.set_hosts(list);
    sh.bump();
}

fn spawn_worker(sh: &Arc<Shared>, slot: Arc<HostSlot>) -> io::Result<thread::JoinHandle<()>> {
    let sh2 = Arc::clone(sh);
    slot.lock().worker_alive = true;
    let s2 = Arc::clone(&slot);
    let spawned = thread::Builder::new()
        .name(format!("host {}", slot.host.name))
        .spawn(move || worker::host_worker(&sh2, &s2));
    if spawned.is_err() {
        slot.lock().worker_alive = false;
    }
    spawned
}

fn render_status(sh: &Shared, state: &str) -> String {
    let now = Instant::now();
    let hosts: Vec<HostStatus> = sh
        .hosts()
        .iter()
        .map(|h| {
            let st = h.lock();
            let waiting = !st.pending.is_empty() && !st.running && !st.retry.ready(now);
            HostStatus {
                name: h.host.name.clone(),
                dest: h.host.target.dest.clone(),
                pending: st.lacking(),
                failing: st.failing.iter().map(|p| escape_bytes(p)).collect(),
                running: st.running,
                pushes: st.pushes,
                last_success: st.last_success.clone(),
                last_error: st.last_error.as_ref().map(|(_, r)| r.clone()),
                last_error_time: st.last_error.as_ref().map(|(t, _)| t.clone()),
                consecutive_failures: st.retry.failures,
                retry_in: waiting.then(|| st.retry.wait(now).as_secs_f64()),
                outage_since: st.outage.as_ref().map(|o| o.began_at.clone()),
            }
        })
        .collect();
    let writer = status::Writer {
        pid: std::process::id(),
        every_secs: HEARTBEAT.as_secs(),
    };
    status::render(&worker::now_string(), state, writer, &hosts)
}

fn write_status(sh: &Shared, state: &str) {
    if let Some(path) = &sh.cfg.status
        && let Err(e) = status::write_atomic(path, &render_status(sh, state))
    {
        sh.log
            .error(&format!("--status {}: {}", path.display(), super::os_error(&e)));
    }
}
