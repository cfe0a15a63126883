//! The one tree comparison: "the target equals the source" as rsync -a leaves it, and the
//! wait for every target to get there.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::util::{DEADLINE, visible, wait_until};

/// One entry of a tree, as far as "the target equals the source" goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir,
    File(Vec<u8>),
    Link(Vec<u8>),
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub node: Node,
    pub mode: u32,
    /// Seconds and nanoseconds.
    pub mtime: (i64, i64),
}

/// What counts as a difference.
#[derive(Clone, Copy)]
pub struct Compare<'a> {
    /// Compare directories' mtimes too. They change whenever an entry comes or goes, so a
    /// test whose tree is still being pushed to leaves them out.
    pub dir_mtimes: bool,
    /// Compare mtimes to the nanosecond (else whole seconds).
    pub nanoseconds: bool,
    /// Source entries (by relative path) that the target must not have either.
    pub skip: &'a dyn Fn(&[u8]) -> bool,
}

/// Everything compared, to the nanosecond.
pub const EXACT: Compare<'static> = Compare {
    dir_mtimes: true,
    nanoseconds: true,
    skip: &|_| false,
};

/// Every entry under `root` (the root itself as `.`), keyed by its relative path bytes;
/// lstat, so symlinks are compared as links.
pub fn snapshot(root: &Path) -> BTreeMap<Vec<u8>, Entry> {
    fn walk(root: &Path, rel: &[u8], out: &mut BTreeMap<Vec<u8>, Entry>) {
        let path = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(OsStr::from_bytes(rel))
        };
        let Ok(m) = fs::symlink_metadata(&path) else { return };
        let ft = m.file_type();
        let node = if ft.is_dir() {
            Node::Dir
        } else if ft.is_symlink() {
            Node::Link(
                fs::read_link(&path)
                    .map(|t| t.as_os_str().as_bytes().to_vec())
                    .unwrap_or_default(),
            )
        } else if ft.is_file() {
            Node::File(fs::read(&path).unwrap_or_default())
        } else {
            Node::Other
        };
        let key = if rel.is_empty() { b".".to_vec() } else { rel.to_vec() };
        let is_dir = node == Node::Dir;
        out.insert(
            key,
            Entry {
                node,
                mode: m.mode(),
                mtime: (m.mtime(), m.mtime_nsec()),
            },
        );
        if is_dir && let Ok(rd) = fs::read_dir(&path) {
            for e in rd.flatten() {
                let mut child = rel.to_vec();
                if !child.is_empty() {
                    child.push(b'/');
                }
                child.extend_from_slice(e.file_name().as_bytes());
                walk(root, &child, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, b"", &mut out);
    out
}

/// The differences between two trees, one line each (empty: equal).
pub fn diff(src: &Path, dst: &Path, how: &Compare<'_>) -> Vec<String> {
    let (mut a, b) = (snapshot(src), snapshot(dst));
    a.retain(|k, _| !(how.skip)(k));
    let mtime = |e: &Entry| match (e.node == Node::Dir && !how.dir_mtimes, how.nanoseconds) {
        (true, _) => (0, 0),
        (false, true) => e.mtime,
        (false, false) => (e.mtime.0, 0),
    };
    let mut diffs = Vec::new();
    for (k, ea) in &a {
        let name = visible(k);
        match b.get(k) {
            None => diffs.push(format!("missing on target: {name}")),
            Some(eb) if eb.node != ea.node => diffs.push(format!("differs: {name}: {:?} vs {:?}", ea.node, eb.node)),
            Some(eb) if eb.mode != ea.mode => diffs.push(format!("mode: {name}: {:o} vs {:o}", ea.mode, eb.mode)),
            Some(eb) if mtime(eb) != mtime(ea) => {
                diffs.push(format!("mtime: {name}: {:?} vs {:?}", mtime(ea), mtime(eb)))
            }
            Some(_) => {}
        }
    }
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        diffs.push(format!("extra on target: {}", visible(k)));
    }
    diffs
}

/// Polls until every target equals `src`; panics with the differences and `dump()` at
/// the deadline.
#[track_caller]
pub fn wait_converged(what: &str, src: &Path, targets: &[&Path], how: &Compare<'_>, dump: impl Fn() -> String) {
    let diffs = || -> Vec<String> {
        targets
            .iter()
            .flat_map(|t| {
                diff(src, t, how)
                    .into_iter()
                    .map(move |d| format!("{}: {d}", t.display()))
            })
            .collect()
    };
    wait_until(
        &format!("{what}: targets to match the source"),
        DEADLINE,
        || diffs().is_empty(),
        || format!("{}\n{}", diffs().join("\n"), dump()),
    );
}
