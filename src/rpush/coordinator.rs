//! The coordinator: when rpush runs, drains, stops and exits, as one explicit phase
//! driven by events, instead of flags and loops spread over the main thread.
//!
//! Pure: [`Coordinator::handle`] takes an [`Event`], the time and a snapshot of the
//! hosts ([`HostView`]) and returns the [`Action`]s to carry out; `run` owns the threads,
//! the signals and the clock and does what it is told. Tests drive it with tables and
//! made-up instants, without sleeping and without processes.
//!
//! ```text
//!             InputEnded                      all idle ──────────────▶ Finished(Done)
//!  Running ─────────────▶ Draining(until) ─── now ≥ until ───────────▶ Finished(DrainTimeout)
//!     │                        │
//!     │ Signal                 │ Signal
//!     ▼                        ▼
//!  Stopping(since, until, soft) ── nothing worth waiting for, or now ≥ until,
//!                                  or a second Signal ───────────────▶ Finished(Stopped)
//! ```
//!
//! What a stop waits for: input for up to [`INPUT_GRACE`]
//! (the batch rbatch flushes on the same signal), hooks that run, and rsyncs that run.
//! A *soft* stop (with `--state-dir`, everything undelivered is journaled) also lets
//! hosts that are up push what they have, and does not wait for hosts that are down:
//! their running retry is killed ([`Action::KillHost`]).
//!
//! The per-host queues, retries and journals are still owned by the host workers
//! (`worker`), each behind its mutex; moving them here, with executors that run one
//! child each and report back as events, is the next step (docs/architecture.md).

use std::time::{Duration, Instant};

/// After SIGTERM/SIGINT, how long input may still arrive (a batch rbatch flushes on the
/// same signal) before rpush exits.
pub const INPUT_GRACE: Duration = Duration::from_millis(1000);

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// SIGTERM or SIGINT.
    Signal,
    /// The reader saw the end of input.
    InputEnded,
    /// Time passed (the main loop's tick): look at the hosts again.
    Tick,
}

/// What the coordinator needs to know about one host, in the order of the host list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostView {
    /// An rsync to it runs now.
    pub running: bool,
    /// Its `--on-push` hook runs now.
    pub hook_running: bool,
    /// Paths wait for a push (not counting paths that failed alone, exit 23).
    pub pending: bool,
    /// Nothing pending, failing or running.
    pub idle: bool,
    /// Its last push failed: in an outage.
    pub down: bool,
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// End of input and every host idle.
    Done,
    /// End of input, and `--drain-timeout` passed first.
    DrainTimeout,
    /// A signal.
    Stopped,
}

impl End {
    /// The state word of the status file.
    pub fn state(self) -> &'static str {
        match self {
            End::Done => "done",
            End::DrainTimeout => "drain timeout",
            End::Stopped => "stopped",
        }
    }
}

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Log "signal received: stopping".
    SayStopping,
    /// Log the start of the drain.
    SayDraining,
    /// Log that `--drain-timeout` was reached.
    SayDrainTimeout,
    /// Hosts that are down start nothing more; hosts that are up go on (soft stop).
    SoftStop,
    /// No host starts a new push.
    StopNewPushes,
    /// Kill the rsync running for host number `n` (a retry of a host that is down).
    KillHost(usize),
    /// Kill every running rsync.
    KillAll,
    /// Join the workers and exit.
    Finish(End),
}

/// The phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    Draining { until: Instant },
    Stopping { since: Instant, until: Instant, soft: bool },
    Finished(End),
}

#[derive(Debug, Clone)]
pub struct Coordinator {
    pub phase: Phase,
    drain_timeout: Duration,
    /// With `--state-dir`: a stop may be soft.
    journaled: bool,
    input_done: bool,
}

impl Coordinator {
    pub fn new(drain_timeout: Duration, journaled: bool) -> Coordinator {
        Coordinator {
            phase: Phase::Running,
            drain_timeout,
            journaled,
            input_done: false,
        }
    }

    /// The status file's state word while not finished.
    pub fn state(&self) -> &'static str {
        match self.phase {
            Phase::Running | Phase::Draining { .. } => "running",
            Phase::Stopping { .. } => "stopping",
            Phase::Finished(e) => e.state(),
        }
    }

    /// Whether a SIGHUP (reload of the hosts files) is taken now: not once stopping.
    pub fn takes_reload(&self) -> bool {
        matches!(self.phase, Phase::Running | Phase::Draining { .. })
    }

    pub fn handle(&mut self, ev: Event, now: Instant, hosts: &[HostView]) -> Vec<Action> {
        let mut out = Vec::new();
        match (self.phase, ev) {
            (Phase::Finished(_), _) => {}
            (_, Event::InputEnded) if self.input_done => {}
            (Phase::Running, Event::InputEnded) => {
                self.input_done = true;
                self.phase = Phase::Draining {
                    until: now + self.drain_timeout,
                };
                out.push(Action::SayDraining);
            }
            (_, Event::InputEnded) => self.input_done = true,
            (Phase::Running | Phase::Draining { .. }, Event::Signal) => {
                let soft = self.journaled;
                self.phase = Phase::Stopping {
                    since: now,
                    until: now + self.drain_timeout,
                    soft,
                };
                out.push(Action::SayStopping);
                out.push(if soft { Action::SoftStop } else { Action::StopNewPushes });
            }
            // A second signal cuts the stop short.
            (Phase::Stopping { .. }, Event::Signal) => self.finish(End::Stopped, &mut out),
            (Phase::Running, Event::Tick) => {}
            (Phase::Draining { until }, Event::Tick) => {
                if hosts.iter().all(|h| h.idle) {
                    self.finish(End::Done, &mut out);
                } else if now >= until {
                    out.push(Action::SayDrainTimeout);
                    self.finish(End::DrainTimeout, &mut out);
                }
            }
            (Phase::Stopping { since, until, soft }, Event::Tick) => {
                if soft {
                    for (i, h) in hosts.iter().enumerate() {
                        if h.down && h.running {
                            out.push(Action::KillHost(i));
                        }
                    }
                }
                if !self.busy(since, soft, now, hosts) || now >= until {
                    self.finish(End::Stopped, &mut out);
                }
            }
        }
        out
    }

    /// Whether a stop still has something to wait for.
    fn busy(&self, since: Instant, soft: bool, now: Instant, hosts: &[HostView]) -> bool {
        let input = !self.input_done && now.saturating_duration_since(since) < INPUT_GRACE;
        input
            || hosts.iter().any(|h| {
                h.hook_running
                    || if soft {
                        !h.down && (h.running || h.pending)
                    } else {
                        h.running
                    }
            })
    }

    fn finish(&mut self, end: End, out: &mut Vec<Action>) {
        self.phase = Phase::Finished(end);
        out.extend([Action::StopNewPushes, Action::KillAll, Action::Finish(end)]);
    }
}

/// What the end of the run found, for the exit status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Some host lacks paths.
    pub undelivered: bool,
    /// Every undelivered path is in a journal that holds exactly what is pending.
    pub journaled: bool,
    /// Input records were refused (what they stood for may be missing).
    pub refused: bool,
    /// A hook failed or was killed.
    pub hook_failed: bool,
}

/// The exit status (man/rpush.1, EXIT STATUS): 0 everything delivered; 3 a stop with
/// everything undelivered journaled; 1 otherwise. (2, usage errors, is decided before
/// anything runs.)
pub fn exit_status(end: End, o: Outcome) -> u8 {
    if o.refused || o.hook_failed {
        1
    } else if !o.undelivered {
        0
    } else if end == End::Stopped && o.journaled {
        3
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn up(running: bool, pending: bool) -> HostView {
        HostView {
            running,
            pending,
            idle: !running && !pending,
            ..HostView::default()
        }
    }

    fn down(running: bool) -> HostView {
        HostView {
            running,
            pending: true,
            down: true,
            ..HostView::default()
        }
    }

    const IDLE: HostView = HostView {
        running: false,
        hook_running: false,
        pending: false,
        idle: true,
        down: false,
    };

    /// Runs a script of (ms since start, event, hosts) and returns the actions of each.
    fn script(journaled: bool, steps: &[(u64, Event, &[HostView])]) -> Vec<Vec<Action>> {
        let t0 = Instant::now();
        let mut c = Coordinator::new(MS(10_000), journaled);
        steps.iter().map(|(t, ev, h)| c.handle(*ev, t0 + MS(*t), h)).collect()
    }

    use Action::*;
    use Event::*;

    fn finish(end: End) -> Vec<Action> {
        vec![StopNewPushes, KillAll, Finish(end)]
    }

    #[test]
    fn end_of_input_drains_until_idle_or_the_timeout() {
        let got = script(
            false,
            &[
                (0, Tick, &[up(true, false)]),
                (5, InputEnded, &[]),
                (10, Tick, &[up(true, false)]),
                (20, Tick, &[IDLE]),
            ],
        );
        assert_eq!(got, vec![vec![], vec![SayDraining], vec![], finish(End::Done)]);
        let got = script(
            false,
            &[
                (0, InputEnded, &[]),
                (9_999, Tick, &[down(false)]),
                (10_000, Tick, &[down(false)]),
            ],
        );
        assert_eq!(got[2], [vec![SayDrainTimeout], finish(End::DrainTimeout)].concat());
    }

    #[test]
    fn a_soft_stop_waits_for_hosts_that_are_up_and_kills_retries_of_hosts_that_are_down() {
        let got = script(
            true,
            &[
                (0, Signal, &[]),
                // Input may still come (grace), a is up with pending paths, b is down
                // and its retry runs: killed.
                (100, Tick, &[up(false, true), down(true)]),
                (200, InputEnded, &[]),
                (300, Tick, &[up(true, false), down(false)]),
                // Only the down host lacks anything: the stop ends at once.
                (400, Tick, &[IDLE, down(false)]),
            ],
        );
        assert_eq!(got[0], vec![SayStopping, SoftStop]);
        assert_eq!(got[1], vec![KillHost(1)]);
        assert_eq!(got[2], vec![]);
        assert_eq!(got[3], vec![]);
        assert_eq!(got[4], finish(End::Stopped));
    }

    #[test]
    fn a_hard_stop_waits_for_running_rsyncs_only() {
        let got = script(
            false,
            &[(0, Signal, &[]), (1_100, Tick, &[up(false, true), down(false)])],
        );
        assert_eq!(got[0], vec![SayStopping, StopNewPushes]);
        // Pending paths do not hold a stop without a journal; past the input grace.
        assert_eq!(got[1], finish(End::Stopped));
        let got = script(
            false,
            &[
                (0, Signal, &[]),
                (1_100, Tick, &[up(true, false)]),
                (1_200, Tick, &[IDLE]),
            ],
        );
        assert_eq!(got[1], vec![]);
        assert_eq!(got[2], finish(End::Stopped));
    }

    #[test]
    fn input_grace_hooks_the_timeout_and_a_second_signal() {
        let hook = HostView {
            hook_running: true,
            down: true,
            ..HostView::default()
        };
        // Input still open: waited for up to the grace, then not.
        let got = script(true, &[(0, Signal, &[]), (999, Tick, &[IDLE]), (1_000, Tick, &[IDLE])]);
        assert_eq!(got[1], vec![]);
        assert_eq!(got[2], finish(End::Stopped));
        // A running hook holds even a soft stop of a down host, up to the drain timeout.
        let got = script(
            true,
            &[
                (0, InputEnded, &[]),
                (1, Signal, &[]),
                (5_000, Tick, &[hook]),
                (10_001, Tick, &[hook]),
            ],
        );
        assert_eq!(got[2], vec![]);
        assert_eq!(got[3], finish(End::Stopped));
        // A second signal cuts it short; nothing happens after the end.
        let got = script(
            true,
            &[
                (0, Signal, &[]),
                (10, Signal, &[]),
                (20, Signal, &[]),
                (30, Tick, &[up(true, true)]),
            ],
        );
        assert_eq!(got[1], finish(End::Stopped));
        assert_eq!(got[2], vec![]);
        assert_eq!(got[3], vec![]);
        // A signal while draining is a stop.
        let got = script(
            true,
            &[(0, InputEnded, &[]), (5, Signal, &[]), (10, Tick, &[down(false)])],
        );
        assert_eq!(got[1], vec![SayStopping, SoftStop]);
        assert_eq!(got[2], finish(End::Stopped));
    }

    #[test]
    fn states_and_reloads_follow_the_phase() {
        let t0 = Instant::now();
        let mut c = Coordinator::new(MS(1000), true);
        assert_eq!((c.state(), c.takes_reload()), ("running", true));
        c.handle(InputEnded, t0, &[]);
        assert_eq!((c.state(), c.takes_reload()), ("running", true));
        c.handle(Signal, t0, &[]);
        assert_eq!((c.state(), c.takes_reload()), ("stopping", false));
        c.handle(Signal, t0, &[]);
        assert_eq!((c.state(), c.takes_reload()), ("stopped", false));
    }

    #[test]
    fn exit_status_table() {
        let o = |undelivered, journaled, refused, hook_failed| Outcome {
            undelivered,
            journaled,
            refused,
            hook_failed,
        };
        let table = [
            (End::Done, o(false, true, false, false), 0),
            (End::Stopped, o(false, false, false, false), 0),
            (End::Stopped, o(true, true, false, false), 3),
            (End::Stopped, o(true, false, false, false), 1),
            (End::DrainTimeout, o(true, true, false, false), 1),
            (End::Stopped, o(true, true, false, true), 1),
            (End::Stopped, o(true, true, true, false), 1),
            (End::Done, o(false, true, false, true), 1),
            (End::Done, o(false, true, true, false), 1),
        ];
        for (end, outcome, want) in table {
            assert_eq!(exit_status(end, outcome), want, "{end:?} {outcome:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, ..Default::default() })]

        /// Any sequence of events and host states: it finishes at most once and is
        /// silent afterwards, kills a single host only in a soft stop and only one that
        /// is down with a running rsync, never finishes a drain with a busy host before
        /// the timeout, and always finishes by the first tick at or after its deadline.
        #[test]
        fn any_event_sequence_keeps_the_invariants(
            journaled in proptest::bool::ANY,
            steps in proptest::collection::vec(
                (0u64..3000, 0u8..3, proptest::collection::vec(proptest::num::u8::ANY, 0..4)),
                1..40,
            ),
        ) {
            let t0 = Instant::now();
            let mut c = Coordinator::new(MS(2000), journaled);
            let mut now = t0;
            let mut finished = false;
            for (dt, ev, bits) in steps {
                now += MS(dt);
                let ev = [Signal, InputEnded, Tick][ev as usize];
                let hosts: Vec<HostView> = bits
                    .iter()
                    .map(|b| {
                        let (running, hook_running, pending, down) = (b & 1 != 0, b & 2 != 0, b & 4 != 0, b & 8 != 0);
                        HostView { running, hook_running, pending, idle: !running && !pending && !hook_running, down }
                    })
                    .collect();
                let before = c.phase;
                let acts = c.handle(ev, now, &hosts);
                if finished {
                    proptest::prop_assert!(acts.is_empty(), "{acts:?} after the end");
                }
                for a in &acts {
                    if let KillHost(i) = a {
                        let soft_stop = matches!(before, Phase::Stopping { soft: true, .. });
                        proptest::prop_assert!(soft_stop, "KillHost in {:?}", before);
                        proptest::prop_assert!(hosts[*i].down && hosts[*i].running);
                    }
                }
                let ends = acts.iter().filter(|a| matches!(a, Finish(_))).count();
                proptest::prop_assert!(ends <= 1);
                if ends == 1 {
                    finished = true;
                    let over = matches!(c.phase, Phase::Finished(_));
                    proptest::prop_assert!(over);
                    if let (Phase::Draining { until }, Tick) = (before, ev) {
                        proptest::prop_assert!(now >= until || hosts.iter().all(|h| h.idle));
                    }
                }
                if ev == Tick {
                    match before {
                        Phase::Draining { until } | Phase::Stopping { until, .. } if now >= until => {
                            proptest::prop_assert!(finished, "{before:?} not finished at its deadline");
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}
