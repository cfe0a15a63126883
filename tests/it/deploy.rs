//! Deployment: installer, Debian package, systemd unit and the migration recipes of
//! docs/migrating.md, each exercised against local rsync daemons (issue 7).
//!
//! Shared helpers live here: the repository's scripts, tree comparison, convergence
//! polling, finding a pipeline's processes in /proc, and waiting until rwait has its
//! inotify watches in place (read from /proc/PID/fdinfo, so no probe files and no extra
//! events that would disturb what a test counts).

mod deb;
mod install;
mod migrate;
mod systemd;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{DEADLINE, bin, visible};

/// The repository (where scripts/, packaging/, docs/ are).
fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding the binaries cargo built for this test run.
fn bin_dir() -> PathBuf {
    bin("rwait").parent().unwrap().to_path_buf()
}

/// A command for one of the repository's scripts (e.g. `scripts/install`).
fn script(rel: &str) -> Command {
    let mut c = Command::new(repo().join(rel));
    c.current_dir(repo());
    c
}

/// One entry of a tree: type and content, mode, mtime (seconds). Enough for "the target
/// equals the source" after rsync -a.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir,
    File(Vec<u8>),
    Link(Vec<u8>),
    Other,
}

fn snapshot(root: &Path) -> BTreeMap<Vec<u8>, (Node, u32, i64)> {
    fn walk(path: &Path, rel: Vec<u8>, out: &mut BTreeMap<Vec<u8>, (Node, u32, i64)>) {
        let Ok(m) = fs::symlink_metadata(path) else { return };
        let ft = m.file_type();
        let node = if ft.is_dir() {
            Node::Dir
        } else if ft.is_symlink() {
            Node::Link(
                fs::read_link(path)
                    .map(|t| t.as_os_str().as_bytes().to_vec())
                    .unwrap_or_default(),
            )
        } else if ft.is_file() {
            Node::File(fs::read(path).unwrap_or_default())
        } else {
            Node::Other
        };
        // Directory mtimes change whenever an entry comes or goes; rsync sets them, but
        // comparing them would race with the next push. Files must match exactly.
        let mtime = if node == Node::Dir { 0 } else { m.mtime() };
        let is_dir = node == Node::Dir;
        out.insert(rel.clone(), (node, m.mode(), mtime));
        if is_dir && let Ok(rd) = fs::read_dir(path) {
            for e in rd.flatten() {
                let mut child = rel.clone();
                if !child.is_empty() {
                    child.push(b'/');
                }
                child.extend_from_slice(e.file_name().as_bytes());
                walk(&e.path(), child, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, Vec::new(), &mut out);
    out
}

/// The differences between two trees, one line each (empty: equal), ignoring the source
/// entries for which `skip(relative path)` holds (the target must not have them either).
fn tree_diff_skipping(src: &Path, dst: &Path, skip: &dyn Fn(&[u8]) -> bool) -> Vec<String> {
    let (mut a, b) = (snapshot(src), snapshot(dst));
    a.retain(|k, _| !skip(k));
    let mut diffs = Vec::new();
    for (k, ea) in &a {
        match b.get(k) {
            None => diffs.push(format!("missing: {}", visible(k))),
            Some(eb) if eb != ea => diffs.push(format!("differs: {}: {:?} vs {:?}", visible(k), ea, eb)),
            Some(_) => {}
        }
    }
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        diffs.push(format!("extra: {}", visible(k)));
    }
    diffs
}

/// Polls until `pred` holds; at the deadline panics with `what` and `dump()`.
fn wait_until(what: &str, mut pred: impl FnMut() -> bool, dump: impl Fn() -> String) {
    let end = Instant::now() + DEADLINE;
    while !pred() {
        if Instant::now() > end {
            panic!("timed out after {DEADLINE:?} waiting for {what}\n{}", dump());
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Polls until every target equals `src`.
fn wait_converged(what: &str, src: &Path, targets: &[&Path], dump: impl Fn() -> String) {
    wait_converged_skipping(what, src, targets, &|_| false, dump)
}

/// Polls until every target equals `src` without the entries `skip` selects.
fn wait_converged_skipping(
    what: &str,
    src: &Path,
    targets: &[&Path],
    skip: &dyn Fn(&[u8]) -> bool,
    dump: impl Fn() -> String,
) {
    let diffs = || -> Vec<String> {
        targets
            .iter()
            .flat_map(|t| {
                tree_diff_skipping(src, t, skip)
                    .into_iter()
                    .map(move |d| format!("{}: {d}", t.display()))
            })
            .collect()
    };
    wait_until(
        what,
        || diffs().is_empty(),
        || format!("{}\n{}", diffs().join("\n"), dump()),
    );
}

/// The processes whose parent is `pid`, as (pid, command name).
fn children(pid: i32) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else { return out };
    for e in rd.flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<i32>().ok());
        if ppid == Some(pid) {
            out.push((p, comm));
        }
    }
    out
}

/// The pid of `pid`'s child named `name`, if any.
fn child_named(pid: i32, name: &str) -> Option<i32> {
    children(pid).into_iter().find(|(_, c)| c == name).map(|(p, _)| p)
}

/// How many inotify watches process `pid` holds (lines `inotify wd:` in its fdinfo).
fn inotify_watches(pid: i32) -> usize {
    let Ok(rd) = fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return 0;
    };
    rd.flatten()
        .filter_map(|e| fs::read_to_string(e.path()).ok())
        .map(|s| s.lines().filter(|l| l.starts_with("inotify wd:")).count())
        .sum()
}

/// Number of directories under `root`, itself included: what `rwait -r` watches.
fn dir_count(root: &Path) -> usize {
    snapshot(root).values().filter(|(n, _, _)| *n == Node::Dir).count()
}

/// Waits until rwait (process `pid`) watches every directory of `root`.
fn wait_watching(pid: i32, root: &Path, dump: impl Fn() -> String) {
    let want = dir_count(root);
    wait_until(
        &format!(
            "rwait (pid {pid}) to watch the {want} directories of {}",
            root.display()
        ),
        || inotify_watches(pid) >= want,
        dump,
    );
}

/// Writes `data` to `path` with mode 0600 (password files, secrets).
fn write_private(path: &Path, data: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, data).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

/// Writes an executable shell script.
fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, body).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Lossy text of a file, or a note that it is missing (for failure dumps).
fn file_text(p: &Path) -> String {
    fs::read(p)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|e| format!("({}: {e})", p.display()))
}
