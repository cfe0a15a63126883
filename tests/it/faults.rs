//! Nothing lost: faults of hosts, network and processes, restarts from the journal,
//! hostile input, and the seeded convergence test (issue 5).
//!
//! Every fault is real: rsync daemons killed and restarted, rpush SIGKILLed with its
//! rsyncs, journals cut and corrupted on disk, a full tmpfs under a module. Waits poll
//! with deadlines; rsync's `--bwlimit` makes a transfer long enough to be caught in the
//! middle, and the tests look for rsync's temporary file on the target to know it is.

mod children;
mod converge;
mod fragments;
mod hooks;
mod hostile;
mod journal;
mod outage;
mod partial;
mod pipeline;
mod reload;
mod slots;
mod stops;
mod targets;

use std::fs;
use std::path::{Path, PathBuf};

use crate::util::DEADLINE;

/// The `.journal` files in a state directory.
pub(crate) fn journals(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "journal"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// rpush (`-0`, fast retries) pushing `src` to each daemon with `--state-dir state`
/// and `a`'s password file (the fixture daemons share one secret), rsync's bandwidth
/// held to `bwlimit` kB/s when given so that a push can be caught in its middle.
pub(crate) fn rpush_with_state(
    src: &Path,
    targets: &[&crate::rsyncd::Daemon],
    state: &Path,
    bwlimit: Option<u32>,
) -> std::process::Command {
    let mut args = vec!["-0".to_string()];
    for t in targets {
        args.extend(["-t".to_string(), t.url()]);
    }
    args.push("--state-dir".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = crate::rpush::rpush_cmd(src, &args);
    cmd.arg(state).arg("--password-file").arg(&targets[0].password_file);
    if let Some(kb) = bwlimit {
        cmd.arg("--").arg(format!("--bwlimit={kb}"));
    }
    cmd
}

/// Polls until a file whose name starts with `.` + `name` + `.` (rsync's temporary
/// file for `name`) exists in `dir`: the transfer of `name` is under way.
pub(crate) fn wait_transfer_started(dir: &Path, name: &str) {
    let prefix = format!(".{name}.");
    let started = || {
        fs::read_dir(dir).is_ok_and(|rd| {
            rd.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        })
    };
    crate::util::wait_until(
        &format!("a transfer of {name} in {}", dir.display()),
        DEADLINE,
        started,
        String::new,
    );
}

/// The pids of `pid`'s direct children (its rsyncs), from /proc.
pub(crate) fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(format!("/proc/{pid}/task")) {
        for t in rd.flatten() {
            if let Ok(s) = fs::read_to_string(t.path().join("children")) {
                out.extend(s.split_whitespace().filter_map(|x| x.parse::<i32>().ok()));
            }
        }
    }
    out
}

/// rchar of a process: bytes it has read (0 once it is gone).
pub(crate) fn bytes_read(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("rchar:"))
                .and_then(|l| l[6..].trim().parse().ok())
        })
        .unwrap_or(0)
}

/// SIGKILLs each child's process group (rpush starts every rsync as a group leader,
/// with its ssh): what a crash of the whole service would do.
pub(crate) fn kill_groups(pids: &[i32]) {
    for &p in pids {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(-p, libc::SIGKILL);
        }
    }
}

/// Incompressible bytes (rsync sends them as they are), `n` long.
pub(crate) fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
