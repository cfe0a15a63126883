//! The watch table and the recursive walk.
//!
//! Every watch remembers the path it is printed under (`%w`: the operand as spelled, or
//! `<parent %w><name>/` below it). A second index by path makes the two operations
//! inotifywait gets wrong cheap and exact: renaming a directory renames every
//! descendant watch (it rewrites them one by one while walking its own index, and
//! misses some), and a directory moved out of the tree drops every descendant watch
//! (it drops one). Entries are pruned when the kernel says a watch is gone (IGNORED),
//! so memory does not grow under mkdir/rmdir churn.
//!
//! The walk does what inotifywait's does, in the same order, because that order is
//! visible: each directory is opened, listed and closed before its children are walked,
//! and its own watch is added after theirs (post-order). Opening a newly created
//! directory is therefore reported by its parent (`OPEN,ISDIR`, `ACCESS,ISDIR`,
//! `CLOSE_NOWRITE,CLOSE,ISDIR`) exactly once, as upstream prints it. Unlike upstream it
//! uses the directory entry's type instead of an lstat per file, and treats entries that
//! vanish during the walk as skipped rather than fatal.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::rc::Rc;

use inotify::{WatchDescriptor, WatchMask, Watches};

/// One watched object.
#[derive(Debug)]
struct Watch {
    desc: WatchDescriptor,
    /// `%w` for events on this watch; shared with the path index (one allocation per
    /// watch: memory per watch is one of rwait's promises).
    path: Rc<[u8]>,
}

/// How a walk ended badly.
#[derive(Debug)]
pub enum WalkError {
    /// The kernel's per-user watch limit was reached (ENOSPC).
    Limit,
    /// Any other error that inotifywait treats as fatal for the operand.
    Io(io::Error),
}

/// An entry found in a newly created directory, to be reported as a CREATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// wd of the directory holding the entry.
    pub wd: i32,
    pub name: Vec<u8>,
    pub is_dir: bool,
    /// Found by re-listing after the watch existed: a real CREATE may follow too.
    pub from_rescan: bool,
}

/// What to do while walking.
#[derive(Clone, Copy)]
pub struct WalkMode<'a> {
    /// `@path` exclusions (initial walk only).
    pub excludes: &'a [Vec<u8>],
    /// Report every entry found (walks of newly created directories).
    pub report_all: bool,
    /// Re-list a directory that changed between its listing and its watch, and report
    /// the entries that appeared (walks of any new directory).
    pub rescan: bool,
}

/// All watches, by descriptor and by path.
pub struct Table {
    watches: Watches,
    mask: WatchMask,
    by_wd: HashMap<i32, Watch>,
    /// Directory watches by `%w` (which ends in `/`), ordered so that a subtree is a
    /// contiguous range.
    by_path: BTreeMap<Rc<[u8]>, i32>,
    /// Watches we removed ourselves whose IGNORED has not arrived yet: events still
    /// queued for them are dropped rather than printed under a name that is gone.
    removed: HashSet<i32>,
}

impl Table {
    pub fn new(watches: Watches, mask: u32) -> Table {
        Table {
            watches,
            mask: WatchMask::from_bits_retain(mask),
            by_wd: HashMap::new(),
            by_path: BTreeMap::new(),
            removed: HashSet::new(),
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_wd.len()
    }

    /// `%w` for a descriptor, if we know it.
    pub fn path(&self, wd: i32) -> Option<&[u8]> {
        self.by_wd.get(&wd).map(|w| &*w.path)
    }

    /// wd of the directory watched under `path` (ending in `/`).
    pub fn wd_of_dir(&self, path: &[u8]) -> Option<i32> {
        self.by_path.get(path).copied()
    }

    /// True for a watch rwait removed itself and whose events are to be dropped.
    pub fn is_removed(&self, wd: i32) -> bool {
        self.removed.contains(&wd)
    }

    /// Adds a watch on `path` printed as `print_as`. A second spelling of an already
    /// watched inode keeps the first spelling, as inotifywait does.
    pub fn add(&mut self, path: &[u8], print_as: &[u8]) -> io::Result<i32> {
        let desc = self.watches.add(OsStr::from_bytes(path), self.mask)?;
        let wd = desc.get_watch_descriptor_id();
        self.removed.remove(&wd);
        if let std::collections::hash_map::Entry::Vacant(e) = self.by_wd.entry(wd) {
            let path: Rc<[u8]> = Rc::from(print_as);
            if print_as.ends_with(b"/") {
                self.by_path.insert(path.clone(), wd);
            }
            e.insert(Watch { desc, path });
        }
        Ok(wd)
    }

    /// The kernel dropped the watch (IGNORED): forget it.
    pub fn forget(&mut self, wd: i32) {
        self.removed.remove(&wd);
        if let Some(w) = self.by_wd.remove(&wd)
            && self.by_path.get(&*w.path) == Some(&wd)
        {
            self.by_path.remove(&*w.path);
        }
    }

    /// Renames the directory watched as `old` (ending in `/`) and every watch below it
    /// to live under `new`.
    pub fn rename_subtree(&mut self, old: &[u8], new: &[u8]) {
        let keys = self.subtree(old);
        let mut moved = Vec::with_capacity(keys.len());
        for (k, _) in keys {
            if let Some(wd) = self.by_path.remove(&*k) {
                let mut p = new.to_vec();
                p.extend_from_slice(&k[old.len()..]);
                moved.push((Rc::<[u8]>::from(p), wd));
            }
        }
        for (p, wd) in moved {
            if let Some(w) = self.by_wd.get_mut(&wd) {
                w.path = p.clone();
            }
            self.by_path.insert(p, wd);
        }
    }

    /// The directory watches at or below `dir` (which ends in `/`): a contiguous range
    /// of the path index.
    fn subtree(&self, dir: &[u8]) -> Vec<(Rc<[u8]>, i32)> {
        use std::ops::Bound;
        self.by_path
            .range::<[u8], _>((Bound::Included(dir), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(dir))
            .map(|(k, wd)| (k.clone(), *wd))
            .collect()
    }

    /// Removes the watch on directory `path` and every watch below it (the directory
    /// left the watched tree).
    pub fn remove_subtree(&mut self, path: &[u8]) {
        for (k, wd) in self.subtree(path) {
            self.by_path.remove(&*k);
            if let Some(w) = self.by_wd.remove(&wd) {
                // EINVAL when the kernel already dropped it (the directory was deleted
                // meanwhile): nothing to do, and nothing worth a message (#197).
                let _ = self.watches.remove(w.desc);
                self.removed.insert(wd);
            }
        }
    }

    /// Rebuilds the watches at and below each of `dirs` (recursive operands, ending in
    /// `/`) from a fresh walk, after events were lost: every directory found is watched
    /// under the name it has now, and the watches of directories no longer found there
    /// are removed (their queued events dropped). Returns the walks that failed; below
    /// a failed walk, watches that were not found again are kept as they were, since
    /// the walk could not say they are gone.
    pub fn resync(&mut self, dirs: &[Vec<u8>], mode: WalkMode<'_>) -> Vec<(Vec<u8>, WalkError)> {
        let mut failed = Vec::new();
        for dir in dirs {
            let mut stale = Vec::new();
            for (k, wd) in self.subtree(dir) {
                self.by_path.remove(&*k);
                if let Some(w) = self.by_wd.remove(&wd) {
                    stale.push((wd, w));
                }
            }
            let mut found = Vec::new();
            let ok = match self.walk(dir, mode, &mut found) {
                Ok(_) => true,
                Err(e) => {
                    failed.push((dir.clone(), e));
                    false
                }
            };
            for (wd, w) in stale {
                if self.by_wd.contains_key(&wd) {
                    continue; // found again, under its present name
                }
                if !ok && !self.by_path.contains_key(&*w.path) {
                    self.by_path.insert(w.path.clone(), wd);
                    self.by_wd.insert(wd, w);
                    continue;
                }
                // EINVAL when the kernel already dropped it: nothing to do.
                let _ = self.watches.remove(w.desc);
                self.removed.insert(wd);
            }
        }
        failed
    }

    /// Walks the directory `dir` (spelled with a trailing `/`), watching it and every
    /// real directory below it, post-order. Returns the directory's own wd.
    ///
    /// With `mode.report_all`, fills `found` with every entry met (for the CREATE lines
    /// of a new directory); with `mode.rescan`, re-lists a directory that changed
    /// between its listing and its watch (a race inotifywait calls "probably not
    /// fixable") and reports what appeared.
    pub fn walk(&mut self, dir: &[u8], mode: WalkMode<'_>, found: &mut Vec<Found>) -> Result<i32, WalkError> {
        let before = if mode.rescan { stamp(dir) } else { None };
        let (names, subdirs) = list(dir, mode.excludes)?;
        let mut below = Vec::new();
        for name in &subdirs {
            self.walk_child(dir, name, mode, &mut below)?;
        }
        let wd = match self.add(dir, dir) {
            Ok(wd) => wd,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => return Err(WalkError::Limit),
            Err(e) => return Err(WalkError::Io(e)),
        };
        if mode.report_all {
            for (name, is_dir) in &names {
                found.push(Found {
                    wd,
                    name: name.clone(),
                    is_dir: *is_dir,
                    from_rescan: false,
                });
            }
        }
        found.append(&mut below);
        if before.is_some() && stamp(dir) != before {
            // Something changed between the listing and the watch: list again and
            // report what is new (watching new subdirectories too).
            let seen: HashSet<&[u8]> = names.iter().map(|(n, _)| n.as_slice()).collect();
            let Ok((again, _)) = list(dir, &[]) else { return Ok(wd) };
            for (name, is_dir) in again {
                if seen.contains(name.as_slice()) {
                    continue;
                }
                found.push(Found {
                    wd,
                    name: name.clone(),
                    is_dir,
                    from_rescan: true,
                });
                if is_dir {
                    let all = WalkMode {
                        report_all: true,
                        ..mode
                    };
                    self.walk_child(dir, &name, all, found)?;
                }
            }
        }
        Ok(wd)
    }

    /// Walks `dir/name/`, skipping it if it vanished or cannot be read.
    fn walk_child(
        &mut self,
        dir: &[u8],
        name: &[u8],
        mode: WalkMode<'_>,
        found: &mut Vec<Found>,
    ) -> Result<(), WalkError> {
        let mut sub = dir.to_vec();
        sub.extend_from_slice(name);
        sub.push(b'/');
        match self.walk(&sub, mode, found) {
            Ok(_) => Ok(()),
            Err(WalkError::Io(e)) if skippable(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Errors that mean "this entry is gone or not ours to read": skip it, keep walking.
pub fn skippable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT | libc::EACCES | libc::ELOOP | libc::ENOTDIR)
    )
}

/// What identifies a directory's state: a change of any of these between the listing
/// and the watch means entries were added or removed in between. Relies on the
/// kernel's fine-grained timestamps for a directory that was just stat'ed.
fn stamp(dir: &[u8]) -> Option<(u64, i64, i64, i64, i64)> {
    let m = std::fs::symlink_metadata(OsStr::from_bytes(dir)).ok()?;
    Some((m.ino(), m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec()))
}

type Listing = (Vec<(Vec<u8>, bool)>, Vec<Vec<u8>>);

/// Lists `dir` completely and closes it: every entry with whether it is a real
/// directory (symlinks never are), and the subdirectories to descend into (those not
/// in `excludes`).
fn list(dir: &[u8], excludes: &[Vec<u8>]) -> Result<Listing, WalkError> {
    let rd = std::fs::read_dir(OsStr::from_bytes(dir)).map_err(WalkError::Io)?;
    let mut names = Vec::new();
    let mut subdirs = Vec::new();
    for ent in rd {
        let ent = match ent {
            Ok(e) => e,
            Err(e) if skippable(&e) => continue,
            Err(e) => return Err(WalkError::Io(e)),
        };
        let name = ent.file_name().as_bytes().to_vec();
        // d_type when the filesystem gives it; an lstat only when it does not.
        let is_dir = match ent.file_type() {
            Ok(t) => t.is_dir(),
            Err(e) if skippable(&e) => continue,
            Err(e) => return Err(WalkError::Io(e)),
        };
        if is_dir && !excluded(dir, &name, excludes) {
            subdirs.push(name.clone());
        }
        names.push((name, is_dir));
    }
    Ok((names, subdirs))
}

/// `@path` exclusion: exact string equality between `dir + name` and the entry with
/// one trailing `/` ignored, as inotifywait compares them (so the spelling must match
/// the operand's).
fn excluded(dir: &[u8], name: &[u8], excludes: &[Vec<u8>]) -> bool {
    excludes.iter().any(|x| {
        let x = x.strip_suffix(b"/").unwrap_or(x);
        x.len() == dir.len() + name.len() && x.starts_with(dir) && x.ends_with(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusion_is_exact_spelling() {
        let ex = vec![b"d/a".to_vec(), b"d/b/".to_vec()];
        assert!(excluded(b"d/", b"a", &ex));
        assert!(excluded(b"d/", b"b", &ex));
        assert!(!excluded(b"d/", b"ab", &ex));
        assert!(!excluded(b"./d/", b"a", &ex));
    }

    #[test]
    fn rename_and_remove_whole_subtrees() {
        let ino = inotify::Inotify::init().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().as_os_str().as_bytes().to_vec();
        let mut deep = root.clone();
        for part in ["/a", "/a2", "/a3", "/a4", "/a5", "/a6", "/a7", "/a8"] {
            deep.extend_from_slice(part.as_bytes());
        }
        std::fs::create_dir_all(OsStr::from_bytes(&deep)).unwrap();
        std::fs::create_dir(tmp.path().join("ab")).unwrap();
        let mut t = Table::new(ino.watches(), libc::IN_ALL_EVENTS);
        let mut top = root.clone();
        top.push(b'/');
        let mut found = vec![];
        t.walk(
            &top,
            WalkMode {
                excludes: &[],
                report_all: false,
                rescan: false,
            },
            &mut found,
        )
        .unwrap();
        assert_eq!(t.len(), 10);
        let mut old = top.clone();
        old.extend_from_slice(b"a/");
        let mut new = top.clone();
        new.extend_from_slice(b"b1/");
        t.rename_subtree(&old, &new);
        let stale: Vec<_> = t.by_wd.values().filter(|w| w.path.starts_with(&old)).collect();
        assert!(stale.is_empty(), "stale paths left: {stale:?}");
        let mut deep_new = new.clone();
        deep_new.extend_from_slice(b"a2/a3/a4/a5/a6/a7/a8/");
        assert!(t.wd_of_dir(&deep_new).is_some());
        // "ab/" shares a prefix with "a" but not with "a/": untouched.
        let mut ab = top.clone();
        ab.extend_from_slice(b"ab/");
        assert!(t.wd_of_dir(&ab).is_some());
        t.remove_subtree(&new);
        assert_eq!(t.len(), 2);
    }
}
