//! The run: a reader thread turns stdin into batches and hands each to every host, one
//! worker thread per host pushes, and the main thread keeps the status file current and
//! decides when to stop: at end of input once every host has everything or
//! `--drain-timeout` has passed, or on SIGINT/SIGTERM/SIGHUP.

use std::io;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::batch::BatchReader;
use super::config::Config;
use super::status::{self, HostStatus};
use super::worker::{self, Shared, human_duration, plural};
use crate::common::msg::{eprint, escape_bytes};

/// How often the main thread looks at the hosts (status file, drain, signals).
const TICK: Duration = Duration::from_millis(50);

/// Runs rpush with a checked configuration; returns 0 when everything was delivered, 1
/// otherwise (2 when the status file cannot be written at all).
pub fn run(cfg: Config) -> ExitCode {
    let signalled = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&signalled)) {
            eprint("rpush", &format!("cannot handle signal {sig}: {e}"));
            return ExitCode::from(2);
        }
    }
    let sh = Arc::new(Shared::new(cfg));
    if sh.cfg.initial {
        // The base itself: rsync -r --delete of "." is a full sync.
        for h in &sh.hosts {
            h.lock().pending.insert(Vec::new());
        }
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
    for i in 0..sh.hosts.len() {
        let sh2 = Arc::clone(&sh);
        let spawned = thread::Builder::new()
            .name(format!("host-{i}"))
            .spawn(move || worker::host_worker(&sh2, i));
        match spawned {
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
            for h in &sh2.hosts {
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

    let mut seen = u64::MAX;
    let mut drain_until: Option<Instant> = None;
    let state = loop {
        thread::sleep(TICK);
        if signalled.load(Ordering::SeqCst) {
            sh.log.info("signal received: stopping");
            break "stopped";
        }
        let generation = sh.generation.load(Ordering::SeqCst);
        if generation != seen {
            seen = generation;
            write_status(&sh, "running");
        }
        if input_done.load(Ordering::SeqCst) {
            let until = *drain_until.get_or_insert_with(|| {
                sh.log.verbose(&format!(
                    "end of input: draining (at most {})",
                    human_duration(sh.cfg.drain_timeout)
                ));
                Instant::now() + sh.cfg.drain_timeout
            });
            if sh.hosts.iter().all(|h| h.lock().idle()) {
                break "done";
            }
            if Instant::now() >= until {
                sh.log.error(&format!(
                    "--drain-timeout ({}) reached",
                    human_duration(sh.cfg.drain_timeout)
                ));
                break "drain timeout";
            }
        }
    };

    sh.stop.store(true, Ordering::SeqCst);
    for h in &sh.hosts {
        h.cv.notify_all();
    }
    for w in workers {
        let _ = w.join();
    }
    write_status(&sh, state);

    let mut undelivered = Vec::new();
    for h in &sh.hosts {
        let st = h.lock();
        let n = st.pending.len() + st.in_flight;
        if n > 0 {
            let why = st
                .last_error
                .as_ref()
                .map(|(_, r)| format!(" (last error: {r})"))
                .unwrap_or_default();
            undelivered.push(format!("{} lacks {n} path{}{why}", h.host.name, plural(n)));
        }
    }
    if undelivered.is_empty() {
        ExitCode::SUCCESS
    } else {
        sh.log.error(&format!("not delivered: {}", undelivered.join("; ")));
        ExitCode::from(1)
    }
}

/// The reader thread's work: batches from stdin to every host until end of input.
fn read_input(sh: &Shared) {
    let stdin = io::stdin();
    let mut reader = BatchReader::new(
        stdin.lock(),
        sh.cfg.delim,
        sh.cfg.cwd.clone(),
        sh.cfg.settings.base.clone(),
    );
    let base = escape_bytes(&sh.cfg.settings.base);
    loop {
        let next = reader.next_batch(|p| {
            sh.log
                .info(&format!("{}: outside the base {base}, skipped", escape_bytes(p)));
        });
        match next {
            Ok(Some(batch)) => {
                sh.log
                    .verbose(&format!("batch of {} path{}", batch.len(), plural(batch.len())));
                for h in &sh.hosts {
                    h.lock().pending.extend(batch.iter().cloned());
                    h.cv.notify_all();
                }
                sh.bump();
            }
            Ok(None) => return,
            Err(e) => {
                sh.log.error(&format!("reading stdin: {}", super::os_error(&e)));
                return;
            }
        }
    }
}

fn render_status(sh: &Shared, state: &str) -> String {
    let now = Instant::now();
    let hosts: Vec<HostStatus> = sh
        .hosts
        .iter()
        .map(|h| {
            let st = h.lock();
            let waiting = !st.pending.is_empty() && !st.running && !st.retry.ready(now);
            HostStatus {
                name: h.host.name.clone(),
                dest: h.host.target.dest.clone(),
                pending: st.pending.len() + st.in_flight,
                running: st.running,
                pushes: st.pushes,
                last_success: st.last_success.clone(),
                last_error: st.last_error.as_ref().map(|(_, r)| r.clone()),
                last_error_time: st.last_error.as_ref().map(|(t, _)| t.clone()),
                consecutive_failures: st.retry.failures,
                retry_in: waiting.then(|| st.retry.wait(now).as_secs_f64()),
            }
        })
        .collect();
    status::render(&worker::now_string(), state, &hosts)
}

fn write_status(sh: &Shared, state: &str) {
    if let Some(path) = &sh.cfg.status
        && let Err(e) = status::write_atomic(path, &render_status(sh, state))
    {
        sh.log
            .error(&format!("--status {}: {}", path.display(), super::os_error(&e)));
    }
}
