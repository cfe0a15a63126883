//! `rwait -F` against rwait's own inotify mode: the same scripted scenarios, each run
//! on a fresh tree under `rwait -r` and under `rwait -F`, must print the same lines,
//! except where fanotify merges events (rwait(1), FANOTIFY): the kernel folds events
//! of one process on one entry that are still queued into one record, so a repeated
//! event may print once. Both outputs are compared with repeated lines dropped (each
//! line's first occurrence kept, in order), which is exactly that rule. The lines
//! inotify mode owes to its own listing of new directories (`OPEN,ISDIR` and so on
//! from rwait itself) do not exist under fanotify: scenarios with new directories
//! leave those events out with `-e`.
//!
//! The trees are real directories on the machine's filesystem (ext4 here), whose
//! fanotify mark also sees every other process's events: the filtering to the
//! operands is exercised for real. fanotify needs root and Linux >= 5.17 for paired
//! renames: without them these tests fail under CI=true (`util::require`).

use std::process::Command;
use std::sync::OnceLock;

use super::diff::{End, sc, sh};
use crate::util::{Proc, Scratch, bin, require, run, visible};

/// `Ok` when `rwait -F` can watch here (root, a kernel with FAN_REPORT_DFID_NAME and
/// FAN_RENAME, a filesystem that reports handles).
pub fn available() -> Result<(), String> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } != 0 {
                return Err("rwait -F needs root (fanotify filesystem marks)".into());
            }
            let s = Scratch::new();
            let mut c = Command::new(bin("rwait"));
            c.args(["-F", "-q", "-t", "1"]).arg(s.path());
            let out = run(c);
            if out.code == 2 {
                Ok(())
            } else {
                Err(format!("rwait -F cannot watch here: {}", out.stderr_str().trim()))
            }
        })
        .clone()
}

/// Each line's first occurrence, in order: the comparison under fanotify's merging.
fn first_seen(out: &[u8]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(visible)
        .filter(|l| seen.insert(l.clone()))
        .collect()
}

/// Runs the scenario under `-r` and under `-F` (each on a fresh tree) and asserts the
/// same lines under the merging rule, and the same exit status.
#[track_caller]
fn same(setup: &str, args: &[&str], actions: &str) {
    if require(available()).is_none() {
        return;
    }
    let with = |backend: &str| {
        let mut a = vec![backend];
        a.extend_from_slice(args);
        sc(setup, &a, actions).run(&bin("rwait"))
    };
    let ino = with("-r");
    let fan = with("-F");
    let (i, f) = (first_seen(&ino.stdout), first_seen(&fan.stdout));
    assert!(!i.is_empty(), "the scenario printed nothing under inotify: {actions}");
    assert_eq!(
        f,
        i,
        "-F and -r differ\nsetup {setup}\nargs {args:?}\nactions {actions}\n--- -r ---\n{}\n--- -F ---\n{}\n--- -F stderr ---\n{}",
        visible(&ino.stdout),
        visible(&fan.stdout),
        visible(&fan.stderr)
    );
    assert_eq!(fan.code, ino.code, "exit status");
}

const TREE: &str = "mkdir -p d/a/b d/a/s out/y/z; echo 1 > d/a/b/f; echo 2 > out/y/z/f";
/// What a sync consumer listens to, without the events inotify mode's own listing of
/// new directories causes.
const SYNC: &str = "create,delete,delete_self,modify,attrib,close_write,moved_from,moved_to,move_self";

#[test]
fn fanotify_files_at_depth_all_events() {
    same(
        TREE,
        &["-m", "d"],
        "echo 2 >> d/a/b/f; chmod 600 d/a/b/f; cat d/a/b/f > /dev/null; touch d/a/b/g; \
         rm d/a/b/f; mv d/a/b/g d/a/h; mv d/a/h d/a/b/h",
    );
}

#[test]
fn fanotify_directories_at_depth_all_events() {
    same(
        TREE,
        &["-m", "d"],
        "ls d/a/s > /dev/null; chmod 700 d/a/s; touch d/a/s/x; mv d/a/s d/a/t; touch d/a/t/y; \
         rm d/a/t/x d/a/t/y; rmdir d/a/t; chmod 711 d",
    );
}

#[test]
fn fanotify_moves_into_and_out_of_the_tree() {
    // The pause after the move is for the reference, not for -F: inotify mode watches
    // a directory moved in only after it has seen the move and walked it, and what
    // happens inside before that is lost (rwait -F sees it: the next test).
    same(
        TREE,
        &["-m", "-e", SYNC, "d"],
        "mv out/y d/y; sleep 1; echo 3 > d/y/z/f; touch d/y/z/g; mv d/a/b out/b; echo 4 > out/b/f; \
         touch out/b/late; mv d/a/s out/s; mv out/s d/s2; touch d/s2/back",
    );
}

#[test]
fn fanotify_sees_at_once_inside_a_directory_moved_in() {
    if require(available()).is_none() {
        return;
    }
    let out = sc(
        TREE,
        &["-F", "-m", "-e", "create,close_write", "d"],
        "mv out/y d/y; echo 3 > d/y/z/f; touch d/y/z/g",
    )
    .run(&bin("rwait"));
    assert_eq!(
        first_seen(&out.stdout),
        [
            "d/y/z/ CLOSE_WRITE,CLOSE f",
            "d/y/z/ CREATE g",
            "d/y/z/ CLOSE_WRITE,CLOSE g"
        ],
        "{}",
        visible(&out.stderr)
    );
}

#[test]
fn fanotify_new_directories_with_contents() {
    same(
        "mkdir d",
        &["-m", "-e", "create,delete,delete_self,moved_from,moved_to", "d"],
        "mkdir -p d/n/m/o; touch d/n/m/o/f; mkdir d/p; touch d/p/f d/p/g; mv d/p d/n/m/o/p; \
         rm -r d/n",
    );
}

#[test]
fn fanotify_format_csv_filters_and_names() {
    same(
        "mkdir -p d/a; touch 'd/a/x,y' d/a/keep.tmp",
        &["-m", "--csv", "-e", "attrib,delete", "d"],
        "touch 'd/a/x,y' 'd/a/ lead'; rm 'd/a/x,y'",
    );
    same(
        "mkdir -p d/a",
        &[
            "-m",
            "-e",
            "create,attrib,close_write",
            "--format",
            "[%w][%f][%:e][%T]",
            "--timefmt",
            "t%%",
            "d",
        ],
        "touch d/a/f; mkdir d/a/s",
    );
    same(
        "mkdir -p d/a",
        &["-m", "-e", "create", "--exclude", "\\.tmp$", "d"],
        "touch d/a/f.tmp d/a/g; mkdir d/a/h.tmp d/a/i",
    );
    same(
        "mkdir -p d/a",
        &["-m", "-e", "create", "--includei", "KEEP", "d"],
        "touch d/a/keep1 d/a/drop; mkdir d/a/Keep2",
    );
    same(
        "mkdir -p d/a",
        &["-m", "-e", "create", "d", "@d/a"],
        "touch d/a/no d/yes; mkdir d/a/no2",
    );
}

#[test]
fn fanotify_one_shot_and_exit_statuses() {
    same(TREE, &["d"], "touch d/a/b/f");
    same(TREE, &["-e", "delete", "d"], "touch d/a/b/f; rm d/a/b/f");
    if require(available()).is_none() {
        return;
    }
    // The operand deleted, DELETE_SELF not asked for: status 1 and nothing printed.
    for backend in ["-r", "-F"] {
        let out = sc("mkdir d", &[backend, "-e", "modify", "d"], "rmdir d").run(&bin("rwait"));
        assert_eq!(
            (out.code, out.stdout.as_slice()),
            (1, &b""[..]),
            "{backend}: {}",
            visible(&out.stderr)
        );
    }
    // Nothing under the operand (the rest of the filesystem is busy): the timeout.
    let out = sc(
        "mkdir d",
        &["-F", "-t", "1", "d"],
        "for i in $(seq 15); do touch outside; sleep 0.2; done",
    )
    .end(End::Exit)
    .run(&bin("rwait"));
    assert_eq!(
        (out.code, out.stdout.as_slice()),
        (2, &b""[..]),
        "{}",
        visible(&out.stderr)
    );
}

#[test]
fn fanotify_renames_share_a_cookie() {
    if require(available()).is_none() {
        return;
    }
    let out = sc(
        "mkdir -p d/a d/b; touch d/a/f",
        &["-F", "-m", "--format", "%e %c %w%f", "d"],
        "mv d/a/f d/b/g",
    )
    .run(&bin("rwait"));
    let text = String::from_utf8_lossy(&out.stdout);
    let from: Vec<&str> = text.lines().filter(|l| l.starts_with("MOVED_FROM ")).collect();
    let to: Vec<&str> = text.lines().filter(|l| l.starts_with("MOVED_TO ")).collect();
    assert_eq!((from.len(), to.len()), (1, 1), "{text}");
    let cookie = |l: &str| l.split(' ').nth(1).unwrap().to_string();
    assert_eq!(cookie(from[0]), cookie(to[0]), "{text}");
    assert_ne!(cookie(from[0]), "0", "{text}");
    assert!(from[0].ends_with(" d/a/f") && to[0].ends_with(" d/b/g"), "{text}");
}

#[test]
fn fanotify_whole_filesystem_is_unfiltered() {
    if require(available()).is_none() {
        return;
    }
    let s = Scratch::new();
    s.mkdir("d");
    let other = s.mkdir("other");
    let mut c = Command::new(bin("rwait"));
    c.args(["-S", "-m", "-e", "create", "d"]).current_dir(s.path());
    let mut p = Proc::spawn(c);
    p.wait_stderr("Watches established.");
    std::fs::write(other.join("f"), b"x").unwrap();
    let mut want = crate::util::bytes(std::fs::canonicalize(&other).unwrap());
    want.extend_from_slice(b"/ CREATE f\n");
    p.wait_stdout(&want);
}

#[test]
fn fanotify_unprivileged_is_refused_with_a_message() {
    if require(available()).is_none() {
        return;
    }
    let s = Scratch::new();
    let d = s.mkdir("d");
    sh(s.path(), "chmod 755 . d");
    for opt in ["-F", "-S"] {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin("rwait"))
            .args([opt, "-m"])
            .arg(&d);
        let out = run(c);
        assert_eq!(out.code, 1, "{opt}: {}", out.stderr_str());
        assert!(out.stdout.is_empty());
        let err = out.stderr_str();
        assert!(
            err.contains("rwait: --") && err.contains("needs root") && err.contains(&*d.to_string_lossy()),
            "{opt}: {err}"
        );
    }
}

#[test]
fn fanotify_refuses_what_it_cannot_watch() {
    if require(available()).is_none() {
        return;
    }
    let s = Scratch::new();
    s.write("file", b"x");
    for (operand, want) in [
        (
            "/proc/self",
            "rwait: --fanotify: /proc/self: its filesystem cannot report file handles",
        ),
        ("file", "rwait: --fanotify: file: not a directory"),
        ("missing", "Couldn't watch missing: No such file or directory"),
    ] {
        let mut c = Command::new(bin("rwait"));
        c.args(["-F", "-m", operand]).current_dir(s.path());
        let out = run(c);
        assert_eq!(out.code, 1, "{operand}: {}", out.stderr_str());
        assert!(out.stdout.is_empty(), "{operand}");
        assert!(out.stderr_str().contains(want), "{operand}: {}", out.stderr_str());
    }
}

/// rwait stopped while more happens than the kernel queues (16,384 records): the
/// overflow warning and one Q_OVERFLOW line per operand, and rwait goes on.
#[test]
fn fanotify_queue_overflow_prints_q_overflow_per_operand() {
    if require(available()).is_none() {
        return;
    }
    let s = Scratch::new();
    s.mkdir("d");
    s.mkdir("e");
    let mut c = Command::new(bin("rwait"));
    c.args(["-F", "-m", "-e", "create", "--format", "%w%f", "d", "e"])
        .current_dir(s.path());
    let mut p = Proc::spawn(c);
    p.wait_stderr("Watches established.");
    stop(&mut p);
    // One record per new file (its CREATE, OPEN, ATTRIB, CLOSE merge): 20,000 of them.
    sh(s.path(), "cd d && seq 1 20000 | xargs touch");
    p.signal(libc::SIGCONT);
    p.wait_stdout(b"d/\ne/\n");
    p.wait_stderr("the fanotify event queue overflowed");
    sh(s.path(), "touch e/after");
    p.wait_stdout(b"e/after\n");
}

/// Stops `p` and waits until it is stopped (SIGSTOP takes effect asynchronously: a
/// process busy on another CPU may read a little more first).
fn stop(p: &mut Proc) {
    p.signal(libc::SIGSTOP);
    let pid = p.pid();
    p.wait_for("the process to stop", crate::util::DEADLINE, move |_, _| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|st| st.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('T')))
    });
}

/// rwait `-F` -m with `--format %w%f` on `d`, in `s`, stopped once watching.
fn stopped(s: &Scratch, events: &str) -> Proc {
    let mut c = Command::new(bin("rwait"));
    c.args(["-F", "-m", "-e", events, "--format", "%w%f", "d"])
        .current_dir(s.path());
    let mut p = Proc::spawn(c);
    p.wait_stderr("Watches established.");
    stop(&mut p);
    p
}

/// Events in a directory deleted before rwait reads them, the deletion in a later
/// read: they wait for the deletion, which says where the directory was, and are
/// printed under that name.
#[test]
fn fanotify_events_in_a_deleted_directory_are_placed_by_its_deletion() {
    if require(available()).is_none() {
        return;
    }
    let s = Scratch::new();
    s.mkdir("d/x");
    s.mkdir("d/many");
    let mut p = stopped(&s, "create");
    // The CREATE in x, then more records than one read takes (rwait reads 256 KiB),
    // then x's removal: when the first read is processed, x is gone.
    sh(
        s.path(),
        "touch d/x/f && cd d/many && seq 1 6000 | xargs touch && cd .. && rm -r x",
    );
    p.signal(libc::SIGCONT);
    p.wait_stdout(b"d/many/6000\n");
    p.wait_stdout(b"d/x/f\n");
    sh(s.path(), "touch d/later");
    p.wait_stdout(b"d/later\n");
    let out = p.finish();
    assert!(
        !crate::util::contains(&out.stdout, b"d/\n"),
        "no Q_OVERFLOW:\n{}",
        out.stderr_str()
    );
}

/// Events in a directory that a rename replaced (no event names it ever again): after
/// a short wait, reported with the overflow protocol, never dropped silently.
#[test]
fn fanotify_unplaceable_events_are_reported_as_overflow() {
    if require(available()).is_none() {
        return;
    }
    let s = Scratch::new();
    s.mkdir("d/a");
    s.mkdir("d/b");
    let mut p = stopped(&s, "create,delete");
    sh(s.path(), "touch d/b/f && rm d/b/f && mv -T d/a d/b");
    p.signal(libc::SIGCONT);
    p.wait_stdout(b"d/\n");
    p.wait_stderr("could not be placed");
    // Still watching.
    sh(s.path(), "touch d/later");
    p.wait_stdout(b"d/later\n");
}

/// fanotify mode watches paths: an operand renamed away prints its MOVE_SELF under
/// the old name and is then no longer watched (rwait(1), FANOTIFY).
#[test]
fn fanotify_an_operand_renamed_away_is_no_longer_watched() {
    if require(available()).is_none() {
        return;
    }
    let out = sc(
        "mkdir -p d/a",
        &["-F", "-m", "d"],
        "mv d d2; touch d2/a/f; mkdir d; touch d/back",
    )
    .run(&bin("rwait"));
    assert_eq!(
        first_seen(&out.stdout),
        [
            "d/ MOVE_SELF ",
            "d/ CREATE back",
            "d/ OPEN back",
            "d/ ATTRIB back",
            "d/ CLOSE_WRITE,CLOSE back"
        ],
        "{}",
        visible(&out.stderr)
    );
}

/// The filter judges each event by its own path under -F; inotify mode does not follow
/// a new directory whose own event the filter dropped (rwait(1), FANOTIFY, Filters).
#[test]
fn fanotify_filters_judge_each_event_by_its_path() {
    if require(available()).is_none() {
        return;
    }
    let run_with = |backend: &str| {
        // The pause lets inotify mode decide about the new directory first.
        sc(
            "mkdir d",
            &[backend, "-m", "-e", "create", "--exclude", "x$", "d"],
            "mkdir d/x; sleep 0.5; touch d/x/f d/y",
        )
        .run(&bin("rwait"))
    };
    assert_eq!(first_seen(&run_with("-r").stdout), ["d/ CREATE y"]);
    assert_eq!(first_seen(&run_with("-F").stdout), ["d/x/ CREATE f", "d/ CREATE y"]);
}
