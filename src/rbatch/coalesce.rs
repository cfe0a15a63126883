//! The coalescer: merges paths into one batch and decides when it is complete. A pure
//! state machine: the caller passes the time in, so every rule is tested with tables of
//! (time, input) → batches, without sleeping.
//!
//! A batch closes when no path arrived for `quiet`, when its oldest path has waited
//! `max_wait` (constant activity must not starve it: the complaint every pure debounce
//! gets: docs/background.md, "Batching"), or when it holds `max_paths` distinct paths. Within
//! a batch each path appears once, in the order first seen, and a directory that stands
//! for its whole tree (created, moved in, overflow root) absorbs the paths below it.
//!
//! What this does not do: parse, filter, or write. Memory is one entry per distinct path
//! of the open batch.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::parse::Kind;

/// When a batch closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub quiet: Duration,
    pub max_wait: Duration,
    pub max_paths: usize,
}

/// A closed batch: distinct paths in first-seen order, descendants of whole-tree
/// directories removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub paths: Vec<Vec<u8>>,
}

#[derive(Clone, Copy)]
struct Entry {
    seq: u64,
    tree: bool,
}

/// The open batch and its clock readings.
pub struct Coalescer {
    limits: Limits,
    entries: HashMap<Vec<u8>, Entry>,
    seq: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    trees: usize,
}

/// The key a path is merged under: without trailing slashes (`d/` from a `%w` with an
/// empty `%f` is the same directory as `d`), except for `/` itself.
pub fn normalize(path: &[u8]) -> &[u8] {
    let mut end = path.len();
    while end > 1 && path[end - 1] == b'/' {
        end -= 1;
    }
    &path[..end]
}

impl Coalescer {
    pub fn new(limits: Limits) -> Coalescer {
        Coalescer {
            limits,
            entries: HashMap::new(),
            seq: 0,
            first: None,
            last: None,
            trees: 0,
        }
    }

    /// Distinct paths in the open batch.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a path seen at `now`. Only a path new to the batch is copied.
    pub fn push(&mut self, now: Instant, path: &[u8], kind: Kind) {
        let key = normalize(path);
        if key.is_empty() {
            return;
        }
        let tree = kind != Kind::Plain;
        match self.entries.get_mut(key) {
            Some(e) => {
                if tree && !e.tree {
                    e.tree = true;
                    self.trees += 1;
                }
            }
            None => {
                self.seq += 1;
                self.entries.insert(key.to_vec(), Entry { seq: self.seq, tree });
                self.trees += usize::from(tree);
            }
        }
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    /// When the open batch is due, if one is open. A batch at its size cap is due at
    /// once (the deadline is already past).
    pub fn next_deadline(&self) -> Option<Instant> {
        let (first, last) = (self.first?, self.last?);
        if self.entries.len() >= self.limits.max_paths {
            return Some(first);
        }
        // A duration too large to add is a deadline that never comes.
        match (
            last.checked_add(self.limits.quiet),
            first.checked_add(self.limits.max_wait),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The open batch if it is due at `now`.
    pub fn poll(&mut self, now: Instant) -> Option<Batch> {
        match self.next_deadline() {
            Some(due) if now >= due => self.take(),
            _ => None,
        }
    }

    /// Closes the open batch whatever the time (end of input, signal).
    pub fn take(&mut self) -> Option<Batch> {
        if self.entries.is_empty() {
            return None;
        }
        self.first = None;
        self.last = None;
        let trees = std::mem::take(&mut self.trees);
        let mut items: Vec<(Vec<u8>, Entry)> = self.entries.drain().collect();
        items.sort_unstable_by_key(|(_, e)| e.seq);
        if trees > 0 {
            let roots: HashSet<&[u8]> = items
                .iter()
                .filter(|(_, e)| e.tree)
                .map(|(p, _)| p.as_slice())
                .collect();
            let keep: Vec<bool> = items.iter().map(|(p, _)| !has_ancestor_in(p, &roots)).collect();
            let mut keep = keep.into_iter();
            items.retain(|_| keep.next().unwrap_or(true));
        }
        Some(Batch {
            paths: items.into_iter().map(|(p, _)| p).collect(),
        })
    }
}

/// True when a proper ancestor of `path` (by whole components) is in `roots`.
fn has_ancestor_in(path: &[u8], roots: &HashSet<&[u8]>) -> bool {
    if path.len() > 1 && path[0] == b'/' && roots.contains(&b"/"[..]) {
        return true;
    }
    path.iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'/' && i > 0 && i + 1 < path.len())
        .any(|(i, _)| roots.contains(&path[..i]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Kind::{Overflow, Plain, Tree};

    /// One input: at `ms` after the start, `path` arrives (or, with `path` empty, the
    /// input ends and the open batch is taken).
    type Step = (u64, &'static str, Kind);

    /// Runs a table through the coalescer, polling exactly at each deadline the way the
    /// run loop does, and returns the batches with the millisecond they closed at.
    fn simulate(limits: Limits, steps: &[Step]) -> Vec<(u64, Vec<String>)> {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let ms = |t: Instant| (t - t0).as_millis() as u64;
        let mut c = Coalescer::new(limits);
        let mut out = vec![];
        let show = |b: Batch| {
            b.paths
                .into_iter()
                .map(|p| String::from_utf8(p).unwrap())
                .collect::<Vec<_>>()
        };
        for &(when, path, kind) in steps {
            while let Some(due) = c.next_deadline() {
                if due > at(when) {
                    break;
                }
                let b = c.poll(due).expect("due batch");
                out.push((ms(due), show(b)));
            }
            if path.is_empty() {
                if let Some(b) = c.take() {
                    out.push((when, show(b)));
                }
            } else {
                c.push(at(when), path.as_bytes(), kind);
                // As in the run loop: what arrived is merged before the batch is looked at.
                if let Some(b) = c.poll(at(when)) {
                    out.push((when, show(b)));
                }
            }
        }
        while let Some(due) = c.next_deadline() {
            let b = c.poll(due).expect("due batch");
            out.push((ms(due), show(b)));
        }
        out
    }

    fn limits(quiet: u64, max_wait: u64, max_paths: usize) -> Limits {
        Limits {
            quiet: Duration::from_millis(quiet),
            max_wait: Duration::from_millis(max_wait),
            max_paths,
        }
    }

    fn batches(v: &[(u64, &[&str])]) -> Vec<(u64, Vec<String>)> {
        v.iter()
            .map(|(t, ps)| (*t, ps.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn quiet_period_closes_and_dedups_in_first_seen_order() {
        let got = simulate(
            limits(500, 5000, 100),
            &[
                (0, "a", Plain),
                (100, "b", Plain),
                (200, "a", Plain),
                (300, "c/", Plain),
                (350, "c", Plain),
            ],
        );
        assert_eq!(got, batches(&[(850, &["a", "b", "c"])]));
    }

    #[test]
    fn each_arrival_restarts_the_quiet_period() {
        let got = simulate(
            limits(500, 5000, 100),
            &[
                (0, "a", Plain),
                (400, "b", Plain),
                (800, "c", Plain),
                (1400, "d", Plain),
                (1899, "e", Plain),
            ],
        );
        assert_eq!(got, batches(&[(1300, &["a", "b", "c"]), (2399, &["d", "e"])]));
    }

    #[test]
    fn max_wait_bounds_latency_under_constant_activity() {
        let steps: Vec<Step> = (0..25)
            .map(|i| (i * 100, ["x", "y", "z"][i as usize % 3], Plain))
            .collect();
        let got = simulate(limits(500, 1000, 100), &steps);
        assert_eq!(
            got,
            batches(&[
                (1000, &["x", "y", "z"]),
                (2000, &["y", "z", "x"]),
                (2900, &["z", "x", "y"]),
            ])
        );
    }

    #[test]
    fn max_paths_closes_at_once() {
        let got = simulate(
            limits(500, 5000, 3),
            &[
                (0, "a", Plain),
                (1, "a", Plain),
                (2, "b", Plain),
                (3, "c", Plain),
                (4, "d", Plain),
            ],
        );
        assert_eq!(got, batches(&[(3, &["a", "b", "c"]), (504, &["d"])]));
    }

    #[test]
    fn end_of_input_takes_the_open_batch_at_once() {
        let got = simulate(
            limits(500, 5000, 100),
            &[(0, "a", Plain), (10, "b", Plain), (20, "", Plain)],
        );
        assert_eq!(got, batches(&[(20, &["a", "b"])]));
        assert_eq!(simulate(limits(500, 5000, 100), &[(20, "", Plain)]), batches(&[]));
    }

    #[test]
    fn zero_quiet_closes_what_arrived_together() {
        let got = simulate(limits(0, 0, 100), &[(0, "a", Plain), (5, "b", Plain)]);
        assert_eq!(got, batches(&[(0, &["a"]), (5, &["b"])]));
    }

    #[test]
    fn huge_durations_never_overflow() {
        let l = Limits {
            quiet: Duration::from_secs(1 << 60),
            max_wait: Duration::MAX,
            max_paths: 10,
        };
        let mut c = Coalescer::new(l);
        let now = Instant::now();
        c.push(now, b"a", Plain);
        assert_eq!(c.poll(now + Duration::from_secs(3600)), None);
        assert_eq!(c.take().unwrap().paths, vec![b"a".to_vec()]);
    }

    #[test]
    fn a_whole_tree_directory_absorbs_descendants_in_any_order() {
        let got = simulate(
            limits(500, 5000, 100),
            &[
                (0, "w/new/deep/f", Plain),
                (1, "w/other", Plain),
                (2, "w/new", Tree),
                (3, "w/new/g", Plain),
                (4, "w/newer/h", Plain),
                (5, "w/new/deep", Tree),
                (6, "w/news", Plain),
            ],
        );
        assert_eq!(got, batches(&[(506, &["w/other", "w/new", "w/newer/h", "w/news"])]));
    }

    #[test]
    fn plain_directory_events_do_not_absorb() {
        let got = simulate(limits(500, 5000, 100), &[(0, "w/d", Plain), (1, "w/d/f", Plain)]);
        assert_eq!(got, batches(&[(501, &["w/d", "w/d/f"])]));
    }

    #[test]
    fn a_later_tree_event_upgrades_an_earlier_plain_one() {
        let got = simulate(
            limits(500, 5000, 100),
            &[
                (0, "w/d", Plain),
                (1, "w/d/f", Plain),
                (2, "w/d/", Tree),
                (3, "w/d", Plain),
            ],
        );
        assert_eq!(got, batches(&[(503, &["w/d"])]));
    }

    #[test]
    fn overflow_root_absorbs_its_tree_including_root_slash() {
        let got = simulate(
            limits(500, 5000, 100),
            &[
                (0, "/src/a", Plain),
                (1, "/src/", Overflow),
                (2, "/srcx/b", Plain),
                (3, "/src/b/c", Plain),
            ],
        );
        assert_eq!(got, batches(&[(503, &["/src", "/srcx/b"])]));
        let got = simulate(
            limits(500, 5000, 100),
            &[(0, "/a", Plain), (1, "/", Overflow), (2, "rel", Plain)],
        );
        assert_eq!(got, batches(&[(502, &["/", "rel"])]));
        let got = simulate(limits(500, 5000, 100), &[(0, "./a", Plain), (1, "./", Overflow)]);
        assert_eq!(got, batches(&[(501, &["."])]));
    }

    #[test]
    fn memory_is_released_between_batches() {
        let mut c = Coalescer::new(limits(10, 100, 100));
        let now = Instant::now();
        c.push(now, b"a", Tree);
        assert!(c.take().is_some());
        assert!(c.is_empty());
        assert_eq!(c.next_deadline(), None);
        c.push(now, b"a/b", Plain);
        assert_eq!(c.take().unwrap().paths, vec![b"a/b".to_vec()]);
    }
}
