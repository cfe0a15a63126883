//! Where rwait deliberately differs from inotifywait (man/rwait.1, DIFFERENCES): each
//! difference has a test here that makes the situation happen for real and shows
//! rwait's behaviour (and, where it is cheap, that inotifywait really gets it wrong).

use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::path::Path;

use super::diff::{FILES, INOTIFYWAIT, Ready, burst_past_queue, count_watches, sc, sh};
use crate::util::{DEADLINE, Proc, Scratch, bin, contains, run, visible};

fn rwait(s: &Scratch, args: &[&str]) -> Proc {
    let mut c = Command::new(bin("rwait"));
    c.args(args).current_dir(s.path());
    let mut p = Proc::spawn(c);
    p.wait_stderr("Watches established.");
    p
}

/// Output lines of a finished run.
fn lines(out: &[u8]) -> Vec<String> {
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect()
}

#[test]
fn rename_renames_every_descendant_watch() {
    // inotifywait keeps the old name on some deep watches (upstream issues #59, #130; it
    // printed w/a1/a2/.../a8/ after `mv w/a1 w/b1`).
    let s = Scratch::new();
    let deep = "w/a1/a2/a3/a4/a5/a6/a7/a8";
    s.mkdir(deep);
    s.mkdir("w/a1/x/y");
    let mut p = rwait(&s, &["-m", "-r", "-e", "create", "--format", "%w%f", "w"]);
    sh(
        s.path(),
        "mv w/a1 w/b1 && touch w/b1/a2/a3/a4/a5/a6/a7/a8/newfile w/b1/x/y/z w/b1/a2/f",
    );
    p.wait_stdout(b"w/b1/a2/f\n");
    p.wait_stdout(b"w/b1/x/y/z\n");
    p.wait_stdout(b"w/b1/a2/a3/a4/a5/a6/a7/a8/newfile\n");
    let out = p.finish();
    assert!(
        !contains(&out.stdout, b"w/a1/"),
        "stale name printed:\n{}",
        visible(&out.stdout)
    );
}

#[test]
fn directory_moved_out_loses_all_its_watches() {
    // inotifywait drops only the moved directory's own watch and keeps reporting its
    // subdirectories under their old in-tree names (upstream issue #137).
    let s = Scratch::new();
    s.mkdir("d/a/b/c");
    s.mkdir("outside");
    let mut p = rwait(&s, &["-m", "-r", "d"]);
    assert_eq!(count_watches(p.pid()), 4);
    sh(
        s.path(),
        "mv d/a outside/a && touch outside/a/b/f outside/a/b/c/g && touch d/z",
    );
    p.wait_stdout(b"d/ CLOSE_WRITE,CLOSE z\n");
    let pid = p.pid();
    p.wait_for("watches of the moved-out tree removed", DEADLINE, move |_, _| {
        count_watches(pid) == 1
    });
    // Later activity out there is not reported either.
    sh(s.path(), "touch outside/a/b/f2 && touch d/z2");
    p.wait_stdout(b"d/ CLOSE_WRITE,CLOSE z2\n");
    let out = p.finish();
    assert!(
        !contains(&out.stdout, b"d/a/b/"),
        "events under a name that no longer exists:\n{}",
        visible(&out.stdout)
    );
    assert!(contains(&out.stdout, b"d/ MOVED_FROM,ISDIR a\n"));
}

#[test]
fn new_directory_contents_are_reported() {
    // One process creates a directory and at once fills it: inotifywait misses what
    // was created before its watch was added ("probably not fixable", says its man page).
    let s = Scratch::new();
    s.mkdir("d");
    let mut p = rwait(&s, &["-m", "-r", "-e", "create", "--format", "%w%f", "d"]);
    sh(
        s.path(),
        "mkdir d/n && touch d/n/{0..49} && mkdir -p d/n/p/q && touch d/n/p/q/deep",
    );
    let mut want: Vec<String> = (0..50).map(|i| format!("d/n/{i}")).collect();
    want.extend(["d/n", "d/n/p", "d/n/p/q", "d/n/p/q/deep"].map(String::from));
    want.sort();
    let w = want.clone();
    p.wait_for("every created path", DEADLINE, move |o, _| {
        let mut got = lines(o);
        got.sort();
        got.dedup();
        got == w
    });
    // A little more activity to flush out any late duplicate.
    sh(s.path(), "touch d/end");
    p.wait_stdout(b"d/end\n");
    let mut got = lines(&p.finish().stdout);
    got.retain(|l| l != "d/end");
    got.sort();
    assert_eq!(got, want, "each created path exactly once");
}

#[test]
fn new_directory_with_nested_tree_moved_in_is_watched() {
    let s = Scratch::new();
    s.mkdir("d");
    s.mkdir("o/x/y/z");
    let mut p = rwait(&s, &["-m", "-r", "-e", "create", "--format", "%w%f", "d"]);
    sh(s.path(), "mv o/x d/x");
    let pid = p.pid();
    p.wait_for("watches on the moved-in tree", DEADLINE, move |_, _| {
        count_watches(pid) == 4
    });
    sh(s.path(), "touch d/x/y/z/f");
    p.wait_stdout(b"d/x/y/z/f\n");
    let out = p.finish();
    // A moved-in tree's existing entries are not "created": no lines for them.
    assert_eq!(lines(&out.stdout), vec!["d/x/y/z/f"]);
}

#[test]
fn overflow_prints_one_line_per_operand_and_warns() {
    // The reader thread is stopped with the whole process (SIGSTOP), so the kernel
    // queue (16384 events by default) really overflows.
    let s = Scratch::new();
    s.mkdir("d");
    s.mkdir("e");
    sh(s.path(), FILES);
    let mut p = rwait(&s, &["-m", "-e", "attrib", "d", "e"]);
    p.signal(libc::SIGSTOP);
    sh(s.path(), &burst_past_queue());
    p.signal(libc::SIGCONT);
    p.wait_stdout(b"d/ Q_OVERFLOW \n");
    p.wait_stdout(b"e/ Q_OVERFLOW \n");
    p.wait_stderr("rwait: warning: the inotify event queue overflowed");
    let out = p.finish();
    assert_eq!(
        lines(&out.stdout).iter().filter(|l| l.contains("Q_OVERFLOW")).count(),
        2
    );
}

#[test]
fn overflow_in_csv_names_the_operand() {
    let s = Scratch::new();
    s.mkdir("d");
    sh(s.path(), FILES);
    let mut p = rwait(&s, &["-m", "-c", "-e", "attrib", "d"]);
    p.signal(libc::SIGSTOP);
    sh(s.path(), &burst_past_queue());
    p.signal(libc::SIGCONT);
    p.wait_stdout(b"d/,Q_OVERFLOW,\n");
}

#[test]
fn overflow_rewatches_directories_created_meanwhile() {
    let s = Scratch::new();
    s.mkdir("d");
    sh(s.path(), FILES);
    let mut p = rwait(&s, &["-m", "-r", "-e", "attrib,create", "--format", "%w%f", "d"]);
    p.signal(libc::SIGSTOP);
    sh(s.path(), &format!("{} && mkdir -p late/deeper", burst_past_queue()));
    p.signal(libc::SIGCONT);
    p.wait_stdout(b"d/\n");
    let pid = p.pid();
    p.wait_for(
        "watches on directories created during the overflow",
        DEADLINE,
        move |_, _| count_watches(pid) == 3,
    );
    sh(s.path(), "touch d/late/deeper/f");
    p.wait_stdout(b"d/late/deeper/f\n");
}

#[test]
fn stalled_consumer_loses_no_events() {
    // 201,000 events while the consumer is stopped: far more than the kernel queue
    // holds. rwait's reader thread keeps draining the kernel into memory.
    let s = Scratch::new();
    s.mkdir("d");
    sh(s.path(), FILES);
    let mut cmd = Command::new(bin("rwait"));
    cmd.args(["-m", "--format", "%e", "d"])
        .current_dir(s.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut rw = cmd.spawn().unwrap();
    let mut err = rw.stderr.take().unwrap();
    let mut wc = Command::new("sort");
    wc.stdin(rw.stdout.take().unwrap());
    let consumer = Proc::spawn(wc);
    let mut banner = Vec::new();
    while !contains(&banner, b"Watches established.") {
        let mut b = [0u8; 256];
        let n = std::io::Read::read(&mut err, &mut b).unwrap();
        assert!(n > 0, "rwait ended before its banner: {}", visible(&banner));
        banner.extend_from_slice(&b[..n]);
    }
    consumer.signal(libc::SIGSTOP);
    sh(
        s.path(),
        "cd d && for i in $(seq 67); do seq 1 1000 | xargs touch; done",
    );
    // The pipe to the stopped consumer filled long before the burst ended.
    let pid = rw.id() as i32;
    let written = || -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/io"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("wchar:"))
                    .and_then(|l| l[6..].trim().parse().ok())
            })
            .unwrap_or(0)
    };
    let before = written();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(written(), before, "rwait kept writing into a full pipe?");
    consumer.signal(libc::SIGCONT);
    // "OPEN\n", "ATTRIB\n", "CLOSE_WRITE,CLOSE\n" for each of 67,000 touches.
    let want_bytes: u64 = 67_000 * (5 + 7 + 18);
    let end = Instant::now() + Duration::from_secs(60);
    while written() < want_bytes {
        assert!(Instant::now() < end, "rwait wrote {} of {want_bytes} bytes", written());
        std::thread::sleep(Duration::from_millis(20));
    }
    rw.kill().unwrap();
    rw.wait().unwrap();
    let out = consumer.wait_exit(DEADLINE);
    assert_eq!(
        out.stdout_str().lines().filter(|l| !l.is_empty()).count(),
        201_000,
        "events received by the stalled consumer"
    );
    let mut e = Vec::new();
    std::io::Read::read_to_end(&mut err, &mut e).unwrap();
    assert!(!contains(&e, b"overflow"), "overflow reported: {}", visible(&e));
}

#[test]
fn events_of_one_read_are_written_together() {
    // inotifywait flushes after every event: one write(2) per line. rwait writes what
    // one kernel read returned in one go. The process is stopped while 800 events
    // queue up, so that one read returns them all; /proc/PID/io counts the write
    // syscalls (syscw) of all its threads.
    let s = Scratch::new();
    s.mkdir("d");
    let mut p = rwait(&s, &["-m", "d"]);
    let pid = p.pid();
    let syscw = || -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/io"))
            .unwrap()
            .lines()
            .find(|l| l.starts_with("syscw:"))
            .and_then(|l| l[6..].trim().parse().ok())
            .unwrap()
    };
    p.signal(libc::SIGSTOP);
    let before = syscw();
    sh(s.path(), "touch d/{1..200}");
    p.signal(libc::SIGCONT);
    p.wait_for("800 lines", DEADLINE, |o, _| {
        o.iter().filter(|&&b| b == b'\n').count() >= 800
    });
    let writes = syscw() - before;
    assert!(writes <= 3, "{writes} write calls for 800 lines");
}

#[test]
fn vanishing_entries_during_the_walk_are_skipped() {
    // inotifywait exits with "Couldn't watch d: No such file or directory" when an
    // entry of the operand's directory disappears between readdir and lstat
    // (docs/background.md, "Walking a tree").
    let s = Scratch::new();
    s.mkdir("d");
    for round in 0..5 {
        sh(
            s.path(),
            "mkdir -p d/sub && cd d && seq 1 1500 | sed 's/^/f/' | xargs touch && seq 1 100 | sed 's/^/s/' | xargs mkdir",
        );
        let mut churn = Command::new("bash");
        churn.arg("-c").arg("cd d && rm -rf f* s* sub").current_dir(s.path());
        let mut churn = churn.spawn().unwrap();
        let mut c = Command::new(bin("rwait"));
        c.args(["-r", "-t", "1", "d"]).current_dir(s.path());
        let out = run(c);
        churn.wait().unwrap();
        assert!(
            out.code == 2 || out.code == 0,
            "round {round}: exit {} stderr {}",
            out.code,
            out.stderr_str()
        );
        assert!(
            !out.stderr_str().contains("Couldn't watch"),
            "round {round}: {}",
            out.stderr_str()
        );
    }
}

#[test]
fn bookkeeping_is_pruned_under_churn() {
    // inotifywait never forgets a watch the kernel dropped: ~220 bytes per deleted
    // directory, forever (issues #120, #29). Measure rwait's resident memory across
    // 20,000 mkdir/rmdir rounds.
    let s = Scratch::new();
    s.mkdir("d");
    let mut p = rwait(&s, &["-m", "-r", "-e", "attrib", "d"]);
    let pid = p.pid();
    let rss = || -> u64 {
        let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        st.lines()
            .find(|l| l.starts_with("VmRSS:"))
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    };
    // In-process churn: 20,000 rounds of two syscalls, not 40,000 processes.
    let churn = |prefix: &str, n: usize| {
        for i in 0..n {
            let d = s.path().join("d").join(format!("{prefix}{i}"));
            std::fs::create_dir(&d).unwrap();
            std::fs::remove_dir(&d).unwrap();
        }
    };
    // Warm up allocator pools first.
    churn("x", 2000);
    p.wait_for("warm-up churn processed", DEADLINE, move |_, _| count_watches(pid) == 1);
    let before = rss();
    churn("y", 20000);
    p.wait_for("churn processed", DEADLINE, move |_, _| count_watches(pid) == 1);
    let grown_kb = rss().saturating_sub(before);
    // Leaking like inotifywait would be ~4,300 KiB here.
    assert!(
        grown_kb < 1024,
        "resident memory grew by {grown_kb} KiB over 20,000 rounds"
    );
}

#[test]
fn full_paths_longer_than_4096_bytes() {
    // inotifywait formats into a 4096-byte buffer and prints garbage past it. Here the
    // directory's path is under PATH_MAX but directory + name is not.
    let s = Scratch::new();
    let seg = "x".repeat(200);
    sh(
        s.path(),
        &format!("mkdir d && cd d && for i in $(seq 20); do mkdir {seg} && cd {seg}; done"),
    );
    let mut dir = String::from("d");
    for _ in 0..20 {
        dir.push('/');
        dir.push_str(&seg);
    }
    let mut p = rwait(&s, &["-m", "-r", "-e", "create", "--format", "%w%f", "d"]);
    let name = "y".repeat(250);
    sh(s.path(), &format!("cd {dir} && touch {name}"));
    let want = format!("{dir}/{name}\n");
    assert!(want.len() > 4096);
    p.wait_stdout(want.as_bytes());
}

#[test]
fn second_listing_of_a_new_directory_is_seen_as_the_rule_says() {
    // The rule in rwait(1), DIFFERENCES, "Second listing": a new directory that changed
    // between its listing and its watch is listed again once the watch exists, and
    // that listing (and the walk of what it found) is reported like any other read.
    // To make the change land inside that window, d/n/ comes with many subdirectories
    // (each walked, and watched, before d/n/ itself) and d/n/new is made while they are.
    const SUBS: usize = 2000;
    let s = Scratch::new();
    s.mkdir("d");
    sh(
        s.path(),
        &format!("mkdir -p o/n && cd o/n && mkdir $(seq -f s%04g {SUBS})"),
    );
    let mut p = rwait(&s, &["-m", "-r", "d"]);
    let pid = p.pid();
    std::fs::rename(s.join("o/n"), s.join("d/n")).unwrap();
    p.wait_for("the walk of d/n/ under way", DEADLINE, move |_, _| {
        count_watches(pid) > 50
    });
    std::fs::create_dir(s.join("d/n/new")).unwrap();
    let walking = count_watches(pid) <= SUBS;
    sh(s.path(), "sleep 0.5; touch d/end");
    p.wait_stdout(b"d/ CLOSE_WRITE,CLOSE end\n");
    let mut got = lines(&p.finish().stdout);
    got.retain(|l| !l.ends_with(" end"));
    assert!(
        walking && got.iter().any(|l| l == "d/n/ OPEN,ISDIR "),
        "d/n/new was not made inside the window (the walk was too quick): {got:#?}"
    );
    let count = |want: &str| got.iter().filter(|l| *l == want).count();
    let once = [
        "d/ MOVED_TO,ISDIR n",
        // The second listing, on d/n/'s own watch (no name) ...
        "d/n/ OPEN,ISDIR ",
        "d/n/ CLOSE_NOWRITE,CLOSE,ISDIR ",
        // ... the entry it found, printed by rwait (it came before the watch, so the
        // kernel never reports it), and the walk of that entry, seen by d/n/.
        "d/n/ CREATE,ISDIR new",
        "d/n/ OPEN,ISDIR new",
        "d/n/ CLOSE_NOWRITE,CLOSE,ISDIR new",
    ];
    for l in once {
        assert_eq!(count(l), 1, "{l:?} in {got:#?}");
    }
    // The parent sees d/n/ opened twice: the first listing and the second.
    assert_eq!(count("d/ OPEN,ISDIR n"), 2, "{got:#?}");
    assert_eq!(count("d/ CLOSE_NOWRITE,CLOSE,ISDIR n"), 2, "{got:#?}");
    let pos = |want: &str| got.iter().position(|l| l == want);
    assert!(pos("d/n/ CREATE,ISDIR new") < pos("d/n/ OPEN,ISDIR new"), "{got:#?}");
    // ACCESS lines come in numbers that depend on when the kernel merges them; nothing
    // else is printed: not a line about the subdirectories, listed before any watch
    // that could see them.
    let access = ["d/ ACCESS,ISDIR n", "d/n/ ACCESS,ISDIR ", "d/n/ ACCESS,ISDIR new"];
    let other: Vec<&String> = got
        .iter()
        .filter(|l| !once.contains(&l.as_str()) && !access.contains(&l.as_str()))
        .filter(|l| *l != "d/ OPEN,ISDIR n" && *l != "d/ CLOSE_NOWRITE,CLOSE,ISDIR n")
        .collect();
    assert!(other.is_empty(), "unexpected lines {other:#?} in {got:#?}");
    assert!(access.iter().all(|a| count(a) >= 1), "{got:#?}");
}

#[test]
fn formats_longer_than_4096_bytes_are_accepted() {
    // inotifywait 3.22.6 rejects a --format longer than its 4096-byte record buffer,
    // counting the newline it appends unless --no-newline (man page, DIFFERENCES).
    const D: &str = "mkdir d; touch d/f";
    for (len, no_newline) in [
        (4095, false),
        (4096, false),
        (4096, true),
        (4097, true),
        (10_000, false),
    ] {
        let fmt = format!("{}%f", "x".repeat(len - 2));
        let mut args = vec!["--format", fmt.as_str()];
        if no_newline {
            args.push("--no-newline");
        }
        let what = format!("format of {len} bytes, --no-newline {no_newline}");
        // inotifywait, no actions: an accepted format ends with the timeout (status 2).
        let rejected = len + usize::from(!no_newline) > 4096;
        let iw_args = [&["-q", "-t", "1"][..], &args, &["d"]].concat();
        let iw = sc(D, &iw_args, "").ready(Ready::Exit).run(Path::new(INOTIFYWAIT));
        let want = if rejected {
            (1, "Something is wrong with your format string.\n".to_string())
        } else {
            (2, String::new())
        };
        assert_eq!(
            (iw.code, String::from_utf8_lossy(&iw.stderr).into_owned()),
            want,
            "inotifywait, {what}"
        );
        // rwait accepts every one and prints the first event's record whole.
        let rw_args = [&args[..], &["d"]].concat();
        let rw = sc(D, &rw_args, "touch d/f").run(&bin("rwait"));
        let mut record = fmt.as_bytes()[..len - 2].to_vec();
        record.push(b'f');
        if !no_newline {
            record.push(b'\n');
        }
        assert_eq!(rw.code, 0, "rwait, {what}: {}", visible(&rw.stderr));
        assert_eq!(rw.stdout, record, "rwait, {what}");
    }
}

#[test]
fn help_goes_to_stdout_with_status_1() {
    let mut c = Command::new(bin("rwait"));
    c.arg("-h");
    let out = run(c);
    assert_eq!(out.code, 1);
    let text = out.stdout_str();
    for opt in [
        "--monitor",
        "--recursive",
        "--format",
        "--timefmt",
        "--exclude",
        "--includei",
        "--fromfile",
    ] {
        assert!(text.contains(opt), "help lacks {opt}");
    }
    assert!(out.stderr.is_empty());
}

#[test]
fn names_are_bytes_end_to_end() {
    let s = Scratch::new();
    s.mkdir("d");
    let mut p = rwait(&s, &["-m", "-e", "create", "--format", "%f%0", "--no-newline", "d"]);
    let names: Vec<&[u8]> = vec![b"nl\nx", b"\xff\xfe", b"-rf", b"a b ", b"#c", b"100%"];
    for n in &names {
        std::fs::write(s.path().join("d").join(std::ffi::OsStr::from_bytes(n)), b"").unwrap();
    }
    let mut want = Vec::new();
    for n in &names {
        want.extend_from_slice(n);
        want.push(0);
    }
    let w = want.clone();
    p.wait_for("all names", DEADLINE, move |o, _| o == w.as_slice());
}

#[test]
fn stalled_socket_reader_loses_no_events() {
    // A socket cannot be reopened non-blocking the way a pipe is: rwait writes to it
    // from a writer thread and keeps reading the kernel meanwhile.
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    let s = Scratch::new();
    s.mkdir("d");
    sh(s.path(), FILES);
    let (mut ours, theirs) = UnixStream::pair().unwrap();
    let mut cmd = Command::new(bin("rwait"));
    cmd.args(["-m", "-e", "attrib", "--format", "%f", "d"])
        .current_dir(s.path())
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(theirs)));
    let mut p = Proc::spawn_keep_stdout(cmd);
    p.wait_stderr("Watches established.");
    // Not reading `ours` while more events arrive than the kernel queue holds.
    let script = burst_past_queue();
    sh(s.path(), &script);
    let rounds: usize = script
        .split("seq ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let want = rounds * 1000;
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(60);
    let mut buf = vec![0u8; 1 << 16];
    ours.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    while got.iter().filter(|&&b| b == b'\n').count() < want {
        assert!(
            Instant::now() < end,
            "only {} of {want} lines",
            got.iter().filter(|&&b| b == b'\n').count()
        );
        match ours.read(&mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("reading: {e}"),
        }
    }
    let err = p.finish().stderr;
    assert!(!contains(&err, b"overflow"), "overflow reported: {}", visible(&err));
}

#[test]
fn terminal_output_goes_through_the_writer_thread() {
    // On a terminal rwait writes from a separate thread (a terminal can block on flow
    // control); `script` gives it a pseudo-terminal as stdout and copies what it shows.
    let s = Scratch::new();
    s.mkdir("d");
    let rwait = bin("rwait");
    let mut c = Command::new("script");
    c.args(["-qfec"])
        .arg(format!("{} -e create -t 10 d", rwait.display()))
        .arg("/dev/null")
        .current_dir(s.path());
    let mut p = Proc::spawn(c);
    p.wait_stdout(b"Watches established.");
    sh(s.path(), "touch d/hello");
    let out = p.wait_exit(DEADLINE);
    assert!(
        contains(&out.stdout, b"d/ CREATE hello\r\n"),
        "{}",
        visible(&out.stdout)
    );
    assert_eq!(out.code, 0);
}

#[test]
fn syslog_ident_is_rwait_under_its_own_name_and_inotifywait_as_a_copy() {
    // inotifywait logs as `inotifywait[PID]` whatever its name; rwait takes the name it
    // was run under, so the drop-in copy logs exactly as inotifywait (DIFFERENCES,
    // "Syslog name"). The differential test covers a symlink named inotifywait.
    use super::diff::run_with_syslog;
    use crate::util::require;
    let Some(own) = require(run_with_syslog(&bin("rwait"), None, "mkdir d", &["-s", "-t", "1", "d"])) else {
        return;
    };
    assert_eq!(
        own.messages,
        vec![
            b"rwait[PID]: Setting up watches.\n".to_vec(),
            b"rwait[PID]: Watches established.\n".to_vec()
        ],
        "{own:?}"
    );
    let s = Scratch::new();
    let copy = s.join("inotifywait");
    std::fs::copy(bin("rwait"), &copy).unwrap();
    let as_copy = run_with_syslog(&copy, None, "mkdir d", &["-s", "-t", "1", "d"]).unwrap();
    assert_eq!(
        as_copy.messages[0], b"inotifywait[PID]: Setting up watches.\n",
        "{as_copy:?}"
    );
    // A name that merely contains it is not it.
    let other = run_with_syslog(&bin("rwait"), Some("inotifywait2"), "mkdir d", &["-s", "-t", "1", "d"]).unwrap();
    assert_eq!(other.messages[0], b"rwait[PID]: Setting up watches.\n", "{other:?}");
}
