//! The bookkeeping of the event loop that needs no I/O, kept apart so that tables of
//! kernel events can test it: renames of watched directories waiting for their second
//! half ([`Moves`]), and the de-duplication of entries that the scan of a new
//! directory reported and the kernel may report again ([`ScanDups`]).
//!
//! A directory renamed inside the tree comes as MOVED_FROM and MOVED_TO with one
//! cookie; one moved out comes as MOVED_FROM and then MOVE_SELF on its own watch with
//! no MOVED_TO before it. A pending half is dropped when it is paired, when the
//! directory is known to have left, when its watch is gone, or when the state is
//! rebuilt after an overflow: at most one per watched directory.
//!
//! When a new directory changed between its listing and its watch, rwait lists it
//! again and prints a CREATE for each entry that appeared (see `watch`). The kernel
//! may report the same entry too, if it appeared after the watch was added; or not,
//! if it appeared before. An entry here stands for that one possible kernel CREATE and
//! for nothing else, so it goes as soon as it can no longer be that event:
//! * the kernel CREATE of that name in that directory arrives (it is the duplicate);
//! * a DELETE or MOVED_FROM of that name arrives (had the duplicate been queued, it
//!   would have come first: a later CREATE is a new object);
//! * the directory's watch is gone;
//! * the kernel queue was read empty after the scan (any duplicate was queued before
//!   the re-listing, so it has been read by then);
//! * the state is rebuilt after an overflow.
//!
//! So it never swallows a later, real CREATE of a re-created name, and it holds at most
//! one entry per live name of a watched directory, usually none.

use std::collections::HashMap;

use super::events::{CREATE, DELETE, MOVED_FROM};

/// A name a scan reported, with the number of the kernel read during whose
/// processing the scan ran.
type Entry = (Box<[u8]>, u64);

/// Names reported by a re-listing whose kernel CREATE may still be queued.
#[derive(Debug, Default)]
pub struct ScanDups {
    /// By wd of the directory.
    by_wd: HashMap<i32, Vec<Entry>>,
    len: usize,
}

impl ScanDups {
    /// Remembers that the scan run while handling kernel read `read` reported `name`
    /// in directory `wd`.
    pub fn insert(&mut self, wd: i32, name: &[u8], read: u64) {
        let names = self.by_wd.entry(wd).or_default();
        match names.iter_mut().find(|(n, _)| **n == *name) {
            Some(e) => e.1 = read,
            None => {
                names.push((name.into(), read));
                self.len += 1;
            }
        }
    }

    /// A kernel event on `wd` about `name`: true when it is the duplicate of a CREATE
    /// already printed, to be dropped. Cheap when nothing is pending (the usual case).
    pub fn on_kernel_event(&mut self, wd: i32, mask: u32, name: &[u8]) -> bool {
        if self.len == 0 || mask & (CREATE | DELETE | MOVED_FROM) == 0 {
            return false;
        }
        let Some(names) = self.by_wd.get_mut(&wd) else {
            return false;
        };
        let Some(i) = names.iter().position(|(n, _)| **n == *name) else {
            return false;
        };
        names.swap_remove(i);
        self.len -= 1;
        if names.is_empty() {
            self.by_wd.remove(&wd);
        }
        mask & CREATE != 0
    }

    /// The watch `wd` is gone: nothing of it can come any more.
    pub fn forget_wd(&mut self, wd: i32) {
        if let Some(names) = self.by_wd.remove(&wd) {
            self.len -= names.len();
        }
    }

    /// Kernel read number `read` found the queue empty or left it empty (and its
    /// events have been handled): every duplicate of a scan run before it has been
    /// seen, so only entries of scans run while handling that read remain.
    pub fn drained(&mut self, read: u64) {
        if self.len == 0 {
            return;
        }
        self.by_wd.retain(|_, names| {
            names.retain(|(_, r)| *r >= read);
            !names.is_empty()
        });
        self.len = self.by_wd.values().map(Vec::len).sum();
    }

    pub fn clear(&mut self) {
        self.by_wd.clear();
        self.len = 0;
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }
}

/// MOVED_FROM of watched directories waiting for their MOVED_TO, by cookie: the wd
/// of the moved directory and the `%w` it was watched under.
#[derive(Debug, Default)]
pub struct Moves {
    by_cookie: HashMap<u32, (i32, Vec<u8>)>,
}

impl Moves {
    /// The directory watched as `wd` under `path` was moved away with `cookie`.
    pub fn moved_from(&mut self, cookie: u32, wd: i32, path: Vec<u8>) {
        self.by_cookie.insert(cookie, (wd, path));
    }

    /// A MOVED_TO with `cookie`: the old `%w` of the directory renamed, if it was one
    /// of ours.
    pub fn moved_to(&mut self, cookie: u32) -> Option<Vec<u8>> {
        self.by_cookie.remove(&cookie).map(|(_, p)| p)
    }

    /// MOVE_SELF on `wd`: if its MOVED_FROM is still waiting, no MOVED_TO came in the
    /// tree, so it left; returns the `%w` it was watched under.
    pub fn move_self(&mut self, wd: i32) -> Option<Vec<u8>> {
        let cookie = self.by_cookie.iter().find(|(_, (w, _))| *w == wd).map(|(c, _)| *c)?;
        self.by_cookie.remove(&cookie).map(|(_, p)| p)
    }

    /// The watch `wd` is gone.
    pub fn forget_wd(&mut self, wd: i32) {
        self.by_cookie.retain(|_, (w, _)| *w != wd);
    }

    pub fn clear(&mut self) {
        self.by_cookie.clear();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_cookie.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.by_cookie.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rwait::events::{ATTRIB, ISDIR, MOVED_TO};

    enum Step {
        /// A scan during read N reported (wd, name).
        Scan(i32, &'static str, u64),
        /// A kernel event (wd, mask, name) and whether it must be dropped.
        Kernel(i32, u32, &'static str, bool),
        /// Read N drained the queue.
        Drained(u64),
        Forget(i32),
        /// How many entries remain.
        Len(usize),
    }
    use Step::*;

    fn run(steps: &[Step]) {
        let mut d = ScanDups::default();
        for (i, s) in steps.iter().enumerate() {
            match *s {
                Scan(wd, n, r) => d.insert(wd, n.as_bytes(), r),
                Kernel(wd, m, n, drop) => {
                    assert_eq!(d.on_kernel_event(wd, m, n.as_bytes()), drop, "step {i}")
                }
                Drained(r) => d.drained(r),
                Forget(wd) => d.forget_wd(wd),
                Len(n) => assert_eq!(d.len(), n, "step {i}"),
            }
        }
    }

    #[test]
    fn moves_pair_leave_or_go_with_their_watch() {
        let p = |s: &str| Some(s.as_bytes().to_vec());
        // Renamed inside the tree: paired by cookie, once.
        let mut m = Moves::default();
        m.moved_from(7, 3, b"d/a/".to_vec());
        assert_eq!(m.moved_to(8), None);
        assert_eq!(m.moved_to(7), p("d/a/"));
        assert_eq!(m.moved_to(7), None);
        // The MOVE_SELF after a paired rename is nothing.
        assert_eq!(m.move_self(3), None);
        // Moved out: MOVE_SELF without a MOVED_TO.
        m.moved_from(9, 4, b"d/b/".to_vec());
        m.moved_from(10, 5, b"d/c/".to_vec());
        assert_eq!(m.move_self(4), p("d/b/"));
        assert_eq!(m.len(), 1);
        // Its watch went (IGNORED): nothing is left to pair.
        m.forget_wd(5);
        assert!(m.is_empty());
        m.moved_from(11, 6, b"d/e/".to_vec());
        m.clear();
        assert_eq!(m.moved_to(11), None);
    }

    #[test]
    fn suppresses_only_the_one_event_it_stands_for() {
        // The duplicate comes: dropped once, and a second CREATE of the name is real.
        run(&[
            Scan(1, "a", 0),
            Kernel(1, CREATE | ISDIR, "a", true),
            Len(0),
            Kernel(1, CREATE | ISDIR, "a", false),
        ]);
        // No duplicate comes; the name is removed and made again (defect 1 of issue 10).
        run(&[
            Scan(1, "a", 0),
            Kernel(1, DELETE | ISDIR, "a", false),
            Len(0),
            Kernel(1, CREATE | ISDIR, "a", false),
        ]);
        run(&[
            Scan(1, "a", 0),
            Kernel(1, MOVED_FROM, "a", false),
            Kernel(1, MOVED_TO, "a", false),
            Kernel(1, CREATE, "a", false),
        ]);
        // Other directories, other names, other events are untouched.
        run(&[
            Scan(1, "a", 0),
            Kernel(2, CREATE, "a", false),
            Kernel(1, CREATE, "b", false),
            Kernel(1, ATTRIB, "a", false),
            Len(1),
            Kernel(1, CREATE, "a", true),
        ]);
    }

    #[test]
    fn entries_end_with_the_queue_window_or_the_watch() {
        run(&[
            Scan(1, "a", 3),
            Scan(1, "b", 4),
            Drained(3),
            Len(2),
            Drained(4),
            Len(1),
            Drained(5),
            Len(0),
            Kernel(1, CREATE, "b", false),
        ]);
        run(&[Scan(1, "a", 0), Scan(1, "b", 0), Scan(2, "a", 0), Forget(1), Len(1)]);
        // A second scan of the same name refreshes the entry, it does not add one.
        run(&[Scan(1, "a", 0), Scan(1, "a", 2), Len(1), Drained(1), Len(1)]);
    }
}
