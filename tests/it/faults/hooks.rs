//! A hook that is owed runs (issue 12): the `--on-push` reload after a config push is
//! the whole point of pushing a php-fpm pool file, so neither the end of input nor a
//! SIGTERM may kill it once it started; only `--on-push-timeout` bounds it. A hook that
//! fails or is killed makes the exit status 1 and is named at the end.

use std::fs;
use std::path::Path;

use crate::rpush::{assert_stderr, rpush_cmd, send, write_file};
use crate::rsyncd::Daemon;
use crate::util::{DEADLINE, Proc, Scratch, wait_exists};

/// A hook that says it started, works for `secs` seconds without a word, then says it
/// finished and exits with `code`.
fn slow_hook(dir: &Path, secs: &str, code: &str) -> Vec<String> {
    let script = r#"touch "$0/started"; sleep "$1"; touch "$0/finished"; exit "$2""#;
    vec![
        "--on-push".into(),
        "sh".into(),
        "-c".into(),
        script.into(),
        dir.display().to_string(),
        secs.into(),
        code.into(),
        ";".into(),
    ]
}

fn rpush_with_hook(src: &Path, d: &Daemon, hook: &[String], extra: &[&str]) -> Proc {
    let mut cmd = rpush_cmd(src, &["-t", &d.url(), "--password-file"]);
    cmd.arg(&d.password_file).args(hook).args(extra);
    Proc::spawn(cmd)
}

#[test]
fn faults_hook_runs_to_its_end_after_end_of_input() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let marks = s.mkdir("marks");
    let d = Daemon::start(&s, "a", "127.0.0.2");
    write_file(&src, b"www.conf", b"pm = dynamic\n");
    let mut rp = rpush_with_hook(&src, &d, &slow_hook(&marks, "1.5", "0"), &[]);
    let mut stdin = rp.stdin();
    let mut line = src.join("www.conf").into_os_string().into_encoded_bytes();
    line.extend_from_slice(b"\n\n");
    send(&mut stdin, &line);
    // End of input at once: the hook is owed and must not be cut short by the drain.
    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert!(
        marks.join("finished").exists(),
        "hook did not finish:\n{}",
        out.stderr_str()
    );
    assert!(!out.stderr_str().contains("killed"), "{}", out.stderr_str());
    assert_eq!(fs::read(d.module.join("www.conf")).unwrap(), b"pm = dynamic\n");
}

#[test]
fn faults_hook_runs_to_its_end_through_sigterm() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let marks = s.mkdir("marks");
    let d = Daemon::start(&s, "a", "127.0.0.2");
    write_file(&src, b"www.conf", b"pm = static\n");
    let mut rp = rpush_with_hook(&src, &d, &slow_hook(&marks, "1.5", "0"), &[]);
    let mut stdin = rp.stdin();
    let mut line = src.join("www.conf").into_os_string().into_encoded_bytes();
    line.extend_from_slice(b"\n\n");
    send(&mut stdin, &line);
    wait_exists("the hook", &marks.join("started"), || rp.dump());
    // A service stop while the reload runs (input still open, as under systemd).
    rp.signal(libc::SIGTERM);
    let out = rp.wait_exit(DEADLINE);
    drop(stdin);
    assert!(
        marks.join("finished").exists(),
        "hook was cut short:\n{}",
        out.stderr_str()
    );
    assert!(!out.stderr_str().contains("killed by signal"), "{}", out.stderr_str());
    assert_eq!(out.code, 0, "{}", out.stderr_str());
}

#[test]
fn faults_failed_or_timed_out_hook_makes_the_exit_status_1() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let d = Daemon::start(&s, "a", "127.0.0.2");
    write_file(&src, b"www.conf", b"x\n");
    let mut line = src.join("www.conf").into_os_string().into_encoded_bytes();
    line.extend_from_slice(b"\n\n");

    let marks = s.mkdir("fail");
    let mut rp = rpush_with_hook(&src, &d, &slow_hook(&marks, "0", "3"), &[]);
    let mut stdin = rp.stdin();
    send(&mut stdin, &line);
    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 1, "{}", out.stderr_str());
    assert_stderr(&out, ": exit status 3");
    assert_stderr(&out, "--on-push failed: 127.0.0.2 (exit status 3)");

    // Past --on-push-timeout the hook is killed, and that is named too.
    write_file(&src, b"www.conf", b"y\n");
    let marks = s.mkdir("slow");
    let mut rp = rpush_with_hook(&src, &d, &slow_hook(&marks, "30", "0"), &["--on-push-timeout", "1s"]);
    let mut stdin = rp.stdin();
    send(&mut stdin, &line);
    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 1, "{}", out.stderr_str());
    assert_stderr(&out, "killed after --on-push-timeout (1s)");
    assert!(!marks.join("finished").exists(), "{}", out.stderr_str());
}

#[test]
fn faults_owed_hook_is_journaled_and_runs_after_the_next_push_even_a_no_op() {
    // Issue 12, item 1: after a kill a restart's push changes nothing, so no hook ran and
    // the hosts kept the old php-fpm config indefinitely.
    let s = Scratch::new();
    let src = s.mkdir("src");
    let state = s.join("state");
    let mut d = Daemon::start(&s, "a", "127.0.0.2");
    write_file(&src, b"www.conf", b"pm = ondemand\n");
    let state_args = ["--state-dir", state.to_str().unwrap(), "--drain-timeout", "1s"];

    // The reload starts, then rpush is SIGKILLed (its hook dies with it).
    let killed = s.mkdir("killed");
    let mut rp = rpush_with_hook(&src, &d, &slow_hook(&killed, "30", "0"), &state_args);
    let mut stdin = rp.stdin();
    let mut line = src.join("www.conf").into_os_string().into_encoded_bytes();
    line.extend_from_slice(b"\n\n");
    send(&mut stdin, &line);
    wait_exists("the hook", &killed.join("started"), || rp.dump());
    rp.kill();
    let out = rp.wait_exit(DEADLINE);
    drop(stdin);
    assert_eq!(out.code, 128 + libc::SIGKILL, "{}", out.stderr_str());
    assert_eq!(fs::read(d.module.join("www.conf")).unwrap(), b"pm = ondemand\n");
    assert!(!killed.join("finished").exists());

    // Restarted while the host is down: still owed, and still journaled at the end.
    d.stop();
    let down = s.mkdir("down");
    let mut cmd = rpush_cmd(&src, &["-t", &d.url(), "--password-file"]);
    cmd.arg(&d.password_file)
        .args(slow_hook(&down, "0", "0"))
        .args(state_args)
        .stdin(std::process::Stdio::null());
    let out = Proc::spawn(cmd).wait_exit(DEADLINE);
    assert_eq!(out.code, 1, "{}", out.stderr_str());
    assert_stderr(&out, "127.0.0.2: an --on-push hook is owed");
    assert!(!down.join("started").exists(), "{}", out.stderr_str());

    // Restarted with the host up and no input at all: the push changes nothing, and the
    // owed hook runs after it.
    d.restart();
    let up = s.mkdir("up");
    let mut cmd = rpush_cmd(&src, &["-t", &d.url(), "--password-file"]);
    cmd.arg(&d.password_file)
        .args(slow_hook(&up, "0", "0"))
        .args(state_args)
        .stdin(std::process::Stdio::null());
    let out = Proc::spawn(cmd).wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_stderr(&out, "127.0.0.2: an --on-push hook is owed");
    assert_stderr(&out, ": 0 changes,");
    assert!(
        up.join("finished").exists(),
        "owed hook did not run:\n{}",
        out.stderr_str()
    );

    // Paid: the next start owes nothing and runs no hook.
    let again = s.mkdir("again");
    let mut cmd = rpush_cmd(&src, &["-t", &d.url(), "--password-file"]);
    cmd.arg(&d.password_file)
        .args(slow_hook(&again, "0", "0"))
        .args(state_args)
        .stdin(std::process::Stdio::null());
    let out = Proc::spawn(cmd).wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert!(!out.stderr_str().contains("owed"), "{}", out.stderr_str());
    assert!(!again.join("started").exists(), "{}", out.stderr_str());
}

#[test]
fn faults_retries_to_a_down_host_do_not_grow_the_journal() {
    // Each push first journals the hook it may owe; retries of the same paths during an
    // outage must not append it again and again.
    let s = Scratch::new();
    let src = s.mkdir("src");
    let state = s.join("state");
    let mut d = Daemon::start(&s, "a", "127.0.0.2");
    d.stop();
    write_file(&src, b"www.conf", b"x\n");
    let marks = s.mkdir("marks");
    let mut rp = rpush_with_hook(
        &src,
        &d,
        &slow_hook(&marks, "0", "0"),
        &[
            "-vv",
            "--state-dir",
            state.to_str().unwrap(),
            "--retry-min",
            "50ms",
            "--retry-max",
            "50ms",
        ],
    );
    let mut stdin = rp.stdin();
    let mut line = src.join("www.conf").into_os_string().into_encoded_bytes();
    line.extend_from_slice(b"\n\n");
    send(&mut stdin, &line);
    rp.wait_stderr("push failed (temporary, attempt 2)");
    let journal = super::journals(&state).pop().expect("a journal");
    let size = fs::metadata(&journal).unwrap().len();
    rp.wait_stderr("push failed (temporary, attempt 12)");
    assert_eq!(fs::metadata(&journal).unwrap().len(), size, "{}", rp.dump());
    drop(stdin);
    rp.signal(libc::SIGTERM);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 3, "{}", out.stderr_str());
}
