//! The watch tracker under churn that real trees see, against the real kernel: a build
//! that removes and re-creates its output directories, a deploy that renames directories
//! while the kernel's queue overflows, directories rwait may not read. Each compares
//! with the real inotifywait where inotifywait is right.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use super::diff::{INOTIFYWAIT, count_watches, sh};
use crate::util::{DEADLINE, Proc, Scratch, bin};

fn start(prog: &str, s: &Scratch, args: &[&str]) -> Proc {
    let mut c = Command::new(prog);
    c.args(args).current_dir(s.path());
    let mut p = Proc::spawn(c);
    p.wait_stderr("Watches established.");
    p
}

/// Waits until `p` has printed at least `want` lines, or printed nothing new for a
/// second (then the caller's assertions say what is missing).
fn settle(p: &mut Proc, want: usize) {
    let end = Instant::now() + DEADLINE;
    let (mut last, mut since) = (0, Instant::now());
    loop {
        let n = p.stdout_now().iter().filter(|&&b| b == b'\n').count();
        if n >= want || Instant::now() > end {
            return;
        }
        if n != last {
            (last, since) = (n, Instant::now());
        } else if since.elapsed() > Duration::from_secs(1) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn counts(out: &[u8]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for l in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        *m.entry(String::from_utf8_lossy(l).into_owned()).or_insert(0) += 1;
    }
    m
}

const DIRS: usize = 200;
const SUBS: usize = 50;

/// The churn of issue 10, defect 1, under `prog`: the created paths, counted.
fn churn(prog: &str) -> HashMap<String, usize> {
    let s = Scratch::new();
    s.mkdir("w");
    let mut p = start(prog, &s, &["-m", "-r", "-e", "create", "--format", "%w%f", "w"]);
    // Quick mkdirs: the scan of each new directory finds most of its subdirectories.
    sh(
        s.path(),
        &format!("for i in $(seq {DIRS}); do mkdir w/$i w/$i/{{1..{SUBS}}}; done"),
    );
    settle(&mut p, DIRS * (SUBS + 1));
    let (pid, all) = (p.pid(), 1 + DIRS * (SUBS + 1));
    wait_watches(pid, all);
    sh(
        s.path(),
        &format!("for i in $(seq {DIRS}); do (cd w/$i && rmdir {{1..{SUBS}}} && mkdir {{1..{SUBS}}}); done"),
    );
    settle(&mut p, DIRS * (2 * SUBS + 1));
    // Watches of the removed directories go, those of the new ones come.
    wait_watches(pid, all);
    sh(
        s.path(),
        &format!("for i in $(seq {DIRS}); do touch w/$i/{{1..{SUBS}}}/f; done"),
    );
    settle(&mut p, DIRS * (3 * SUBS + 1));
    counts(&p.finish().stdout)
}

/// Waits (up to a few seconds) for `pid` to hold `want` watches; a defect that loses
/// directories never gets there, and the line counts then show what was lost.
fn wait_watches(pid: i32, want: usize) {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end && count_watches(pid) != want {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn missing(got: &HashMap<String, usize>) -> Vec<String> {
    let mut bad = Vec::new();
    for i in 1..=DIRS {
        for j in 1..=SUBS {
            let d = format!("w/{i}/{j}");
            if got.get(&d).copied().unwrap_or(0) != 2 {
                bad.push(format!("{d} x{}", got.get(&d).copied().unwrap_or(0)));
            }
            let f = format!("w/{i}/{j}/f");
            if got.get(&f).copied().unwrap_or(0) != 1 {
                bad.push(format!("{f} x{}", got.get(&f).copied().unwrap_or(0)));
            }
        }
    }
    bad
}

#[test]
fn recreated_directories_are_all_reported_and_watched() {
    // Issue 10, defect 1: a name found by the scan of a new directory was kept to
    // swallow a kernel CREATE that never came, and later swallowed the real CREATE of
    // the re-created directory, which was then never watched.
    let got = churn(bin("rwait").to_str().unwrap());
    let bad = missing(&got);
    assert!(
        bad.is_empty(),
        "rwait: {} of {} expected lines wrong (want each directory twice, each file once), e.g. {:?}",
        bad.len(),
        DIRS * SUBS * 2,
        &bad[..bad.len().min(10)]
    );
    // inotifywait is right here (its own re-created directories are watched too).
    if std::path::Path::new(INOTIFYWAIT).exists() {
        let theirs = churn(INOTIFYWAIT);
        let files = |m: &HashMap<String, usize>| m.keys().filter(|k| k.ends_with("/f")).count();
        assert_eq!(files(&got), files(&theirs), "files reported, rwait vs inotifywait");
    }
}
