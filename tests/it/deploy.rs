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

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{DEADLINE, bin, wait_until};

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

/// Polls until every target equals `src`: files to the second, directories without
/// their mtimes (they change with every entry, and the next push may be under way).
fn wait_converged(what: &str, src: &Path, targets: &[&Path], dump: impl Fn() -> String) {
    wait_converged_skipping(what, src, targets, &|_| false, dump)
}

/// Like [`wait_converged`] without the source entries `skip` selects.
fn wait_converged_skipping(
    what: &str,
    src: &Path,
    targets: &[&Path],
    skip: &dyn Fn(&[u8]) -> bool,
    dump: impl Fn() -> String,
) {
    let how = crate::tree::Compare {
        dir_mtimes: false,
        nanoseconds: false,
        skip,
    };
    crate::tree::wait_converged(what, src, targets, &how, dump);
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
    crate::tree::snapshot(root)
        .values()
        .filter(|e| e.node == crate::tree::Node::Dir)
        .count()
}

/// Waits until rwait (process `pid`) watches every directory of `root`.
fn wait_watching(pid: i32, root: &Path, dump: impl Fn() -> String) {
    let want = dir_count(root);
    wait_until(
        &format!(
            "rwait (pid {pid}) to watch the {want} directories of {}",
            root.display()
        ),
        DEADLINE,
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
