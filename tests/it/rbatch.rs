//! End-to-end tests of rbatch: the real binary fed real bytes, with inotifywait and rwait
//! in front for the pipeline tests. Waits poll with a deadline; no assertion depends on
//! how long something took, only on what came out.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{DEADLINE, Proc, Scratch, assert_bytes_eq, bin, bytes, contains, run, visible, wait_until};

fn rbatch(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin("rbatch"));
    cmd.args(args);
    cmd
}

/// Runs rbatch with `input` on stdin until it exits.
fn feed(args: &[&str], input: &[u8]) -> crate::util::Output {
    let mut cmd = rbatch(args);
    cmd.stdin(Stdio::piped());
    let mut p = Proc::spawn(cmd);
    let mut stdin = p.stdin();
    stdin.write_all(input).unwrap();
    drop(stdin);
    p.wait_exit(DEADLINE)
}

/// Bytes written into a pipe and not yet read by the other end (FIONREAD).
fn unread(stdin: &ChildStdin) -> i32 {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which is valid and aligned;
    // the descriptor is an open pipe owned by `stdin`.
    let rc = unsafe { libc::ioctl(stdin.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0, "FIONREAD: {}", std::io::Error::last_os_error());
    n
}

/// Splits rbatch's output into batches (each ends with an empty record).
fn batches(out: &[u8], delim: u8) -> Vec<Vec<Vec<u8>>> {
    let mut all = vec![];
    let mut cur = vec![];
    let recs: Vec<&[u8]> = out.split(|&b| b == delim).collect();
    for rec in &recs[..recs.len().saturating_sub(1)] {
        if rec.is_empty() {
            all.push(std::mem::take(&mut cur));
        } else {
            cur.push(rec.to_vec());
        }
    }
    assert!(cur.is_empty(), "output ends inside a batch: {}", visible(out));
    all
}

#[test]
fn event_lines_of_every_format_become_one_batch_at_end_of_input() {
    // QUIET of an hour: the batch can only appear because end of input flushes it.
    let out = feed(
        &["1h"],
        b"/w/ CREATE a b\n\
          /w/ OPEN a b\n\
          /w/ MODIFY a b\n\
          /w/ CLOSE_WRITE,CLOSE a b\n\
          /w/ CLOSE_NOWRITE,CLOSE c\n\
          /w/,CREATE,\"x,y \"\"q\"\"\"\n\
          /w/,\"CLOSE_WRITE,CLOSE\",a b\n\
          /w/plain path\n\
          /w/ CREATE .a b.swp\n\
          /w/ CREATE 4913\n\
          /w/ DELETE 4913\n\
          /w/ MOVED_TO .htaccess\n\
          /w/sub/ ATTRIB,ISDIR \n\
          /w/ DELETE \xff\xfe\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_bytes_eq(
        "stdout",
        &out.stdout,
        b"/w/a b\n/w/x,y \"q\"\n/w/plain path\n/w/4913\n/w/.htaccess\n/w/sub\n/w/\xff\xfe\n\n",
    );
    assert_bytes_eq("stderr", &out.stderr, b"");
}

#[test]
fn a_quiet_period_separates_batches() {
    let mut cmd = rbatch(&["100ms"]);
    cmd.stdin(Stdio::piped());
    let mut p = Proc::spawn(cmd);
    let mut stdin = p.stdin();
    stdin.write_all(b"/w/ CREATE a\n/w/ MODIFY a\n/w/ CREATE b\n").unwrap();
    p.wait_stdout(b"/w/a\n/w/b\n\n");
    stdin.write_all(b"/w/ MODIFY a\n/w/ DELETE c\n").unwrap();
    p.wait_stdout(b"/w/a\n/w/c\n\n");
    drop(stdin);
    let out = p.wait_exit(DEADLINE);
    assert_eq!(out.code, 0);
    assert_bytes_eq("stdout", &out.stdout, b"/w/a\n/w/b\n\n/w/a\n/w/c\n\n");
}

#[test]
fn max_paths_caps_every_batch() {
    let out = feed(&["1h", "--max-paths", "2"], b"a\nb\na\nc\nd\ne\n");
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_bytes_eq("stdout", &out.stdout, b"a\nb\n\na\nc\n\nd\ne\n\n");
}

#[test]
fn max_wait_closes_a_batch_under_constant_input() {
    // One path every 20 ms never leaves a quiet gap of an hour; --max-wait must close.
    let mut cmd = rbatch(&["1h", "--max-wait", "300ms"]);
    cmd.stdin(Stdio::piped());
    let mut p = Proc::spawn(cmd);
    let mut stdin = p.stdin();
    let end = Instant::now() + DEADLINE;
    let mut i = 0u32;
    while !contains(&p.stdout_now(), b"\n\n") {
        assert!(Instant::now() < end, "no batch under constant input\n{}", p.dump());
        stdin.write_all(format!("/w/f{}\n", i % 3).as_bytes()).unwrap();
        i += 1;
        thread::sleep(Duration::from_millis(20));
    }
    drop(stdin);
    let out = p.wait_exit(DEADLINE);
    assert_eq!(out.code, 0);
    for b in batches(&out.stdout, b'\n') {
        let mut sorted = b.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), b.len(), "duplicate in a batch: {}", visible(&out.stdout));
    }
}

#[test]
fn nul_records_in_and_out_keep_every_byte() {
    let out = feed(&["-0", "-z", "1h"], b"/w/nl\nname\0/w/ lead\0/w/nl\nname\0/w/\xff\0");
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_bytes_eq("stdout", &out.stdout, b"/w/nl\nname\0/w/ lead\0/w/\xff\0\0");
    // rbatch | rbatch: the empty records between batches are not paths.
    let out = feed(&["-0", "-z", "1h"], b"a\0\0b\0\0");
    assert_bytes_eq("stdout", &out.stdout, b"a\0b\0\0");
}

#[test]
fn a_name_with_a_newline_passes_its_directory_when_output_is_lines() {
    let input = b"/w/sub/,CREATE,\"evil\nname\"\n/w/ok\n/w/sub/x\n";
    let out = feed(&["1h"], input);
    assert_eq!(out.code, 0);
    // The directory stands for its whole tree, so it absorbs sub/x.
    assert_bytes_eq("stdout", &out.stdout, b"/w/sub\n/w/ok\n\n");
    assert!(
        out.stderr_str()
            .starts_with("rbatch: line 1: '/w/sub/evil\\nname' holds a newline"),
        "{}",
        out.stderr_str()
    );
    let out = feed(&["-z", "1h"], input);
    assert_bytes_eq("stdout", &out.stdout, b"/w/sub/evil\nname\0/w/ok\0/w/sub/x\0\0");
    assert_bytes_eq("stderr", &out.stderr, b"");
}

#[test]
fn a_bad_line_is_reported_with_its_number_and_skipped() {
    let out = feed(&["1h"], b"/w/ CREATE a\n/w/ CREATE\n/w/ CREATE b\n");
    assert_eq!(out.code, 0, "bad input is never fatal");
    assert_bytes_eq("stdout", &out.stdout, b"/w/a\n/w/b\n\n");
    let err = out.stderr_str();
    assert!(err.starts_with("rbatch: line 2: "), "{err}");
    assert!(err.contains("'/w/ CREATE'"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let out = feed(
        &["--input", "csv", "1h"],
        b"/w/,CREATE,a\nnot csv\n/w/,\"CREATE,ISDIR\",d\n",
    );
    assert_bytes_eq("stdout", &out.stdout, b"/w/a\n/w/d\n\n");
    assert!(
        out.stderr_str()
            .starts_with("rbatch: line 2: not an inotifywait CSV record"),
        "{}",
        out.stderr_str()
    );
}

#[test]
fn an_overlong_record_is_reported_and_the_rest_kept() {
    let mut input = b"/w/a\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 3 << 20));
    input.extend_from_slice(b"\n/w/b\n");
    let out = feed(&["1h"], &input);
    assert_eq!(out.code, 0);
    assert_bytes_eq("stdout", &out.stdout, b"/w/a\n/w/b\n\n");
    assert!(
        out.stderr_str().starts_with("rbatch: line 2: longer than"),
        "{}",
        out.stderr_str()
    );
}

#[test]
fn created_directory_and_overflow_root_absorb_what_is_below() {
    let out = feed(
        &["1h"],
        b"/w/new/ CREATE f\n/w/ CREATE,ISDIR new\n/w/new/ CREATE g\n/w/other\n\
          /w/ Q_OVERFLOW \n/x/a\n Q_OVERFLOW \n",
    );
    assert_eq!(out.code, 0);
    assert_bytes_eq("stdout", &out.stdout, b"/w\n/x/a\n\n");
    assert!(
        out.stderr_str()
            .contains("rbatch: line 7: Q_OVERFLOW without a watched path"),
        "{}",
        out.stderr_str()
    );
}

#[test]
fn editor_artefacts_excludes_and_keep_temp() {
    let input = b"/w/.f.swp\n/w/.#f\n/w/f___jb_tmp___\n/w/.~lock.f#\n/w/f~\n/w/#f#\n/w/.git/x\n/w/f\n";
    let out = feed(&["1h", "--exclude", r"\.git/", "--exclude", "^/nomatch"], input);
    assert_bytes_eq("stdout", &out.stdout, b"/w/f~\n/w/#f#\n/w/f\n\n");
    let out = feed(&["1h", "--keep-temp", "--excludei", r"\.GIT/"], input);
    assert_bytes_eq(
        "stdout",
        &out.stdout,
        b"/w/.f.swp\n/w/.#f\n/w/f___jb_tmp___\n/w/.~lock.f#\n/w/f~\n/w/#f#\n/w/f\n\n",
    );
}

#[test]
fn exec_runs_the_command_once_per_batch_with_paths_on_stdin() {
    let s = Scratch::new();
    let log = s.join("log");
    let script = format!("cat >> '{}'; echo --- >> '{}'", log.display(), log.display());
    let mut cmd = rbatch(&["100ms", "--exec", "sh", "-c", &script]);
    cmd.stdin(Stdio::piped());
    let mut p = Proc::spawn(cmd);
    let mut stdin = p.stdin();
    let read = |f: &Path| fs::read(f).unwrap_or_default();
    stdin
        .write_all(b"/w/ CREATE a\n/w/ MODIFY b c\n/w/ MODIFY a\n")
        .unwrap();
    wait_until(
        "first batch in the log",
        DEADLINE,
        || read(&log).ends_with(b"---\n"),
        || p.dump(),
    );
    stdin.write_all(b"/w/ DELETE d\n").unwrap();
    drop(stdin);
    let out = p.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_bytes_eq("stdout", &out.stdout, b"");
    assert_bytes_eq("log", &read(&log), b"/w/a\n/w/b c\n---\n/w/d\n---\n");
}

#[test]
fn exec_with_print0_gets_nul_terminated_paths() {
    let s = Scratch::new();
    let log = s.join("log");
    let script = format!("cat > '{}'", log.display());
    let out = feed(&["-z", "1h", "--exec", "sh", "-c", &script], b"/w/a\n/w/b\n");
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_bytes_eq("log", &fs::read(&log).unwrap(), b"/w/a\0/w/b\0");
}

#[test]
fn a_failing_command_is_reported_and_rbatch_goes_on() {
    let mut cmd = rbatch(&["50ms", "--exec", "sh", "-c", "cat >/dev/null; exit 3"]);
    cmd.stdin(Stdio::piped());
    let mut p = Proc::spawn(cmd);
    let mut stdin = p.stdin();
    stdin.write_all(b"/w/a\n").unwrap();
    p.wait_stderr("rbatch: --exec sh: exit status 3\n");
    stdin.write_all(b"/w/b\n").unwrap();
    drop(stdin);
    let out = p.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "the command got its batches: {}", out.stderr_str());
    assert_bytes_eq(
        "stderr",
        &out.stderr,
        b"rbatch: --exec sh: exit status 3\nrbatch: --exec sh: exit status 3\n",
    );
}

#[test]
fn a_command_that_does_not_read_its_input_is_fine() {
    let mut input = Vec::new();
    for i in 0..20_000 {
        input.extend_from_slice(format!("/w/some/longer/path/name/{i}\n").as_bytes());
    }
    let out = feed(&["1h", "--max-paths", "100000", "--exec", "true"], &input);
    assert_eq!(out.code, 0);
    assert_bytes_eq("stderr", &out.stderr, b"");
}

#[test]
fn a_command_killed_by_a_signal_is_reported() {
    let out = feed(&["1h", "--exec", "sh", "-c", "kill -9 $$"], b"/w/a\n");
    assert_eq!(out.code, 0);
    assert_eq!(out.stderr_str(), "rbatch: --exec sh: killed by signal 9 (SIGKILL)\n");
}

#[test]
fn a_command_that_cannot_start_is_fatal_and_counts_the_paths() {
    let out = feed(&["1h", "--exec", "/nonexistent/cmd", "arg"], b"/w/a\n/w/b\n/w/c\n");
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr_str(),
        "rbatch: --exec /nonexistent/cmd: No such file or directory\nrbatch: 3 paths not delivered\n"
    );
}

/// Feeds `lines`, waits until rbatch has read them all, then sends `sig`.
fn signal_flushes(sig: i32) {
    let mut cmd = rbatch(&["1h"]);
    cmd.stdin(Stdio::piped());
    let mut p = Proc::spawn(cmd);
    let mut stdin = p.stdin();
    stdin
        .write_all(b"/w/ CREATE a\n/w/ MODIFY b\n/w/ MODIFY a\n/w/partial-with")
        .unwrap();
    wait_until(
        "rbatch to read its input",
        DEADLINE,
        || unread(&stdin) == 0,
        || p.dump(),
    );
    p.signal(sig);
    let out = p.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_bytes_eq("stdout", &out.stdout, b"/w/a\n/w/b\n\n");
    assert_eq!(
        out.stderr_str(),
        "rbatch: line 4: incomplete when the signal came: '/w/partial-with' (skipped)\n"
    );
    drop(stdin);
}

#[test]
fn sigterm_flushes_the_pending_batch_and_exits_0() {
    signal_flushes(libc::SIGTERM);
}

#[test]
fn sigint_flushes_the_pending_batch_and_exits_0() {
    signal_flushes(libc::SIGINT);
}

#[test]
fn a_closed_stdout_is_a_delivery_failure() {
    // The read end is closed before rbatch writes, so the failure is certain.
    let mut child = rbatch(&["1h"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.stdin.take().unwrap().write_all(b"/w/a\n/w/b\n").unwrap();
    let out = wait_child(child);
    assert_eq!(out.0, 1);
    assert_eq!(
        out.1,
        "rbatch: writing batch: Broken pipe\nrbatch: 2 paths not delivered\n"
    );
}

/// Waits for a child spawned outside the harness: (exit code, stderr).
fn wait_child(mut child: Child) -> (i32, String) {
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err).unwrap();
    }
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return (st.code().unwrap_or(-1), err);
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("child did not exit; stderr: {err}");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn unreadable_input_is_reported_and_exits_1() {
    let mut cmd = rbatch(&[]);
    cmd.stdin(fs::File::open("/").unwrap());
    let out = run(cmd);
    assert_eq!(out.code, 1);
    assert_eq!(out.stderr_str(), "rbatch: reading input: Is a directory\n");
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    for (args, want) in [
        (&["5x"][..], "rbatch: QUIET: "),
        (&["--max-wait", "never"], "rbatch: --max-wait: "),
        (&["--max-paths", "0"], "rbatch: --max-paths: "),
        (&["--exclude", "a("], "rbatch: --exclude 'a(': "),
        (&["--input", "xml"], "rbatch: invalid value 'xml'"),
        (&["--bogus"], "rbatch: unexpected argument '--bogus'"),
    ] {
        let out = run(rbatch(args));
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr_str());
        assert!(out.stderr_str().starts_with(want), "{args:?}: {}", out.stderr_str());
        assert!(out.stdout.is_empty());
    }
    let out = run(rbatch(&["--help"]));
    assert_eq!(out.code, 0);
    assert!(out.stdout_str().contains("--max-wait"));
}

/// A watcher (`inotifywait` or rwait, same options) on `dir`, its stdout piped into an
/// rbatch started with `args`; returns once the watcher says its watches are in place.
struct Pipeline {
    watcher: Child,
    rbatch: Proc,
    watcher_err: std::path::PathBuf,
}

impl Pipeline {
    fn start(watcher: &Path, dir: &Path, s: &Scratch, args: &[&str]) -> Pipeline {
        let watcher_err = s.join("watcher.err");
        let mut w = Command::new(watcher)
            .args([
                "-mr",
                "-e",
                "modify,create,delete,moved_to,moved_from,close_write,attrib",
            ])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&watcher_err).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", watcher.display()));
        let mut cmd = rbatch(args);
        cmd.stdin(w.stdout.take().unwrap());
        let rbatch = Proc::spawn(cmd);
        let mut p = Pipeline {
            watcher: w,
            rbatch,
            watcher_err,
        };
        let err = p.watcher_err.clone();
        wait_until(
            "Watches established.",
            DEADLINE,
            || {
                if let Ok(Some(st)) = p.watcher.try_wait() {
                    panic!("watcher exited early: {st}; stderr: {:?}", fs::read_to_string(&err));
                }
                contains(&fs::read(&err).unwrap_or_default(), b"Watches established.")
            },
            || {
                format!(
                    "watcher stderr: {}",
                    String::from_utf8_lossy(&fs::read(&err).unwrap_or_default())
                )
            },
        );
        p
    }

    /// Stops the watcher (SIGTERM, by its pid) so rbatch sees end of input and exits.
    fn finish(mut self) -> crate::util::Output {
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our child's.
        unsafe {
            libc::kill(self.watcher.id() as i32, libc::SIGTERM);
        }
        let _ = self.watcher.wait();
        self.rbatch.wait_exit(DEADLINE)
    }
}

fn pipeline_with(watcher: &Path) {
    let s = Scratch::new();
    let dir = s.mkdir("src");
    let d = |rel: &str| {
        let mut b = bytes(&dir);
        b.push(b'/');
        b.extend_from_slice(rel.as_bytes());
        b
    };
    let p = Pipeline::start(watcher, &dir, &s, &["200ms"]);

    fs::write(dir.join("a b.txt"), "1").unwrap();
    fs::write(dir.join(".a b.txt.swp"), "swap").unwrap();
    fs::OpenOptions::new()
        .append(true)
        .open(dir.join("a b.txt"))
        .unwrap()
        .write_all(b"2")
        .unwrap();
    fs::create_dir(dir.join("new")).unwrap();
    fs::write(dir.join("new/inner"), "x").unwrap();
    fs::write(dir.join("gone"), "x").unwrap();
    fs::remove_file(dir.join("gone")).unwrap();
    fs::write(dir.join("tmp"), "x").unwrap();
    fs::rename(dir.join("tmp"), dir.join("final")).unwrap();

    let want = [d("a b.txt"), d("new"), d("gone"), d("tmp"), d("final")];
    let mut p = p;
    let all_out = |out: &[u8]| {
        let seen: Vec<Vec<u8>> = out.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
        want.iter().all(|w| seen.contains(w)) && out.ends_with(b"\n\n")
    };
    p.rbatch
        .wait_for("every changed path in a batch", DEADLINE, move |o, _| all_out(o));
    let out = p.finish();
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_bytes_eq("stderr", &out.stderr, b"");
    for batch in batches(&out.stdout, b'\n') {
        let mut sorted = batch.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            batch.len(),
            "duplicate path in a batch:\n{}",
            visible(&out.stdout)
        );
        assert!(
            !batch.contains(&d(".a b.txt.swp")),
            "vim swap file passed:\n{}",
            visible(&out.stdout)
        );
        if batch.contains(&d("new")) {
            assert!(
                !batch.contains(&d("new/inner")),
                "created dir did not absorb:\n{}",
                visible(&out.stdout)
            );
        }
    }
}

#[test]
fn pipeline_inotifywait_into_rbatch() {
    let iw = Path::new("/usr/bin/inotifywait");
    assert!(
        iw.exists(),
        "inotifywait is needed (apt-get install inotify-tools; .ci/run does)"
    );
    pipeline_with(iw);
}

#[test]
fn pipeline_rwait_into_rbatch() {
    pipeline_with(&bin("rwait"));
}

#[test]
fn every_long_option_is_in_the_man_page() {
    let man = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("man/rbatch.1")).unwrap();
    for arg in syncpipe::rbatch::command().get_arguments() {
        if let Some(long) = arg.get_long() {
            let roff = format!("\\-\\-{}", long.replace('-', "\\-"));
            assert!(man.contains(&roff), "--{long} is not documented in man/rbatch.1");
        }
    }
}
