//! The watch tracker under churn that real trees see, against the real kernel: a build
//! that removes and re-creates its output directories, a deploy that renames directories
//! while the kernel's queue overflows, directories rwait may not read. Each compares
//! with the real inotifywait where inotifywait is right.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use super::diff::{FILES, INOTIFYWAIT, burst_past_queue, count_watches, sh};
use crate::util::{DEADLINE, Proc, Scratch, bin, contains, visible};

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

#[test]
fn overflow_resync_renames_and_drops_watches() {
    // Issue 10, defect 2: the re-walk after an overflow kept the old spelling of
    // directories it already watched (d/b printed as d/a forever) and the watches of
    // directories that had left the tree. inotifywait does the same (it does not
    // re-walk at all), so the expectation here is the corrected one.
    let s = Scratch::new();
    s.mkdir("d/a/deep");
    s.mkdir("d/c");
    s.mkdir("o");
    s.mkdir("x");
    let rwait = bin("rwait");
    let mut p = start(
        rwait.to_str().unwrap(),
        &s,
        &["-m", "-r", "-e", "attrib,create", "--format", "%w%f", "d", "x"],
    );
    let pid = p.pid();
    assert_eq!(count_watches(pid), 5);
    p.signal(libc::SIGSTOP);
    sh(s.path(), FILES);
    sh(s.path(), &burst_past_queue());
    sh(s.path(), "mv d/a d/b && mv d/c o/c && mv x x.old");
    p.signal(libc::SIGCONT);
    p.wait_stderr("rwait: warning: the inotify event queue overflowed");
    p.wait_stdout(b"d/\n");
    p.wait_for("the departed directory's watch dropped", DEADLINE, move |_, _| {
        count_watches(pid) == 4
    });
    // An operand that went cannot be walked again: said, and its watch kept.
    p.wait_stderr("rwait: watching x/ again after the overflow: No such file or directory\n");
    sh(s.path(), "touch o/c/gone d/b/deep/f d/b/g");
    p.wait_stdout(b"d/b/deep/f\n");
    p.wait_stdout(b"d/b/g\n");
    let out = p.finish();
    for stale in [&b"d/a/"[..], b"o/", b"gone"] {
        assert!(
            !contains(&out.stdout, stale),
            "{} printed after the resync:\n{}",
            String::from_utf8_lossy(stale),
            visible(&out.stdout)
        );
    }
}

/// Runs `prog -m -r d` as user nobody in a fresh tree with an unsearchable `d/nox`,
/// makes (as root) a directory nobody may read and one in `d/nox`, and returns
/// stdout and stderr.
fn new_directories_denied(prog: &str) -> (Vec<u8>, Vec<u8>) {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    s.mkdir("d/nox");
    let mode = |p: &std::path::Path, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    mode(s.path(), 0o755);
    mode(&s.join("d/nox"), 0o644);
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        prog,
        "-m",
        "-r",
        "d",
    ])
    .current_dir(s.path());
    let mut p = Proc::spawn(c);
    p.wait_stderr("Watches established.");
    sh(s.path(), "mkdir -m 0700 d/nd && mkdir d/nox/nd");
    p.wait_stderr("Stat failed on d/nox/nd/");
    p.wait_stdout(b"d/nox/ CREATE,ISDIR nd\n");
    let out = p.finish();
    (out.stdout, out.stderr)
}

#[test]
fn new_directories_that_cannot_be_watched_are_reported() {
    // Issue 16, item 2: rwait said nothing where inotifywait names the directory.
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let ok = root && Command::new("setpriv").arg("--version").output().is_ok();
    if crate::util::require(if ok {
        Ok(())
    } else {
        Err("needs root and setpriv(1)".to_string())
    })
    .is_none()
    {
        return;
    }
    let (out, err) = new_directories_denied(bin("rwait").to_str().unwrap());
    let want = b"Couldn't watch new directory d/nd/: Permission denied\nStat failed on d/nox/nd/: Permission denied\n";
    assert!(contains(&err, want), "stderr:\n{}", visible(&err));
    let (their_out, their_err) = new_directories_denied(INOTIFYWAIT);
    crate::util::assert_bytes_eq("stderr, rwait vs inotifywait", &err, &their_err);
    crate::util::assert_bytes_eq("stdout, rwait vs inotifywait", &out, &their_out);
}

#[test]
fn output_for_a_reader_that_stops_is_bounded() {
    // Issue 10, defect 4: output waiting for a consumer that stopped reading grew
    // without bound. A pipe is written from the event loop.
    let (reader, writer) = std::io::pipe().unwrap();
    stopped_reader(Box::new(reader), writer.into());
}

#[test]
fn output_for_a_socket_reader_that_stops_is_bounded() {
    // A socket is written by the writer thread, bounded the same way.
    let (reader, writer) = std::os::unix::net::UnixStream::pair().unwrap();
    stopped_reader(Box::new(reader), std::os::fd::OwnedFd::from(writer).into());
}

/// Lines of 8 KiB make the 64 MiB cap (output::PENDING_CAP) quick to reach with 10,000
/// events; the consumer reads nothing from `reader` until rwait has warned.
fn stopped_reader(mut reader: Box<dyn std::io::Read + Send>, stdout: std::process::Stdio) {
    use std::io::Read;
    let s = Scratch::new();
    s.mkdir("d");
    sh(s.path(), "cd d && seq 1 1000 | xargs touch");
    let pad = "x".repeat(8192);
    let format = format!("%w %e %f {pad}");
    let mut c = Command::new(bin("rwait"));
    c.args(["-m", "-e", "attrib", "--format", &format, "d"])
        .current_dir(s.path())
        .stdout(stdout);
    let mut p = Proc::spawn_keep_stdout(c);
    p.wait_stderr("Watches established.");
    sh(
        s.path(),
        "cd d && for i in $(seq 10); do seq 1 1000 | xargs touch; done",
    );
    p.wait_stderr("rwait: warning: output not read: events pending past the 64 MiB cap were dropped; printing Q_OVERFLOW for each watched path\n");
    let rss_kib = std::fs::read_to_string(format!("/proc/{}/status", p.pid()))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .map(|v| v.trim().trim_end_matches(" kB").parse::<u64>().unwrap())
        })
        .unwrap();
    assert!(rss_kib < 200 * 1024, "rwait holds {rss_kib} KiB");
    // The consumer resumes: what was kept, the Q_OVERFLOW line, then new events, each
    // line whole.
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            g.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    sh(s.path(), "touch d/after");
    let want_after = format!("d/ ATTRIB after {pad}\n").into_bytes();
    // Each check looks only at what arrived since the last one: scanning all ~64 MiB
    // under the reader's lock every time starves the reader on a loaded machine.
    let mut seen = 0usize;
    crate::util::wait_until(
        "an event after the drop to reach the consumer",
        DEADLINE,
        || {
            let buf = got.lock().unwrap();
            let from = seen.saturating_sub(want_after.len());
            seen = buf.len();
            contains(&buf[from..], &want_after)
        },
        String::new,
    );
    p.finish();
    let out = got.lock().unwrap().clone();
    let overflow = format!("d/ Q_OVERFLOW  {pad}\n").into_bytes();
    let at = out.windows(overflow.len()).position(|w| w == overflow);
    let at = at.unwrap_or_else(|| panic!("no Q_OVERFLOW line in {} bytes", out.len()));
    assert!(at < out.len() - overflow.len(), "nothing after the Q_OVERFLOW line");
    for l in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        assert!(
            l.starts_with(b"d/ ") && l.ends_with(pad.as_bytes()),
            "broken line: {}",
            visible(&l[..l.len().min(80)])
        );
    }
}
