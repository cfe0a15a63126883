//! Stops with `--state-dir` (issue 12, item 4): a host that is down must not hold a
//! SIGTERM/SIGINT for the whole `--drain-timeout`, and the exit status of a stop that
//! journaled everything undelivered is its own (3), which the unit counts as success.
//! A host that is up still gets what arrived just before the stop.

use std::time::{Duration, Instant};

use crate::rpush::{assert_stderr, batch0, rpush_cmd, send, write_file};
use crate::rsyncd::Daemon;
use crate::util::{DEADLINE, Proc, Scratch};

fn stop_with_a_host_down(sig: i32) {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let state = s.join("state");
    let a = Daemon::start(&s, "a", "127.0.0.2");
    let mut b = Daemon::start(&s, "b", "127.0.0.3");
    b.stop();
    write_file(&src, b"one", b"1");
    let mut cmd = rpush_cmd(
        &src,
        &[
            "-0",
            "-t",
            &a.url(),
            "-t",
            &b.url(),
            "--drain-timeout",
            "60s",
            "--state-dir",
        ],
    );
    cmd.arg(&state).arg("--password-file").arg(&a.password_file);
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    send(&mut stdin, &batch0(&src, &[b"one"]));
    rp.wait_stderr("127.0.0.2: pushed 1 path");
    rp.wait_stderr("127.0.0.3: push failed");
    // A change that arrives right before the stop: the host that is up gets it.
    write_file(&src, b"two", b"2");
    send(&mut stdin, &batch0(&src, &[b"two"]));
    rp.signal(sig);
    let t0 = Instant::now();
    let out = rp.wait_exit(DEADLINE);
    let took = t0.elapsed();
    drop(stdin);
    assert_eq!(out.code, 3, "{}", out.stderr_str());
    assert!(
        took < Duration::from_secs(5),
        "a down host held the stop for {took:?} (--drain-timeout 60s):\n{}",
        out.stderr_str()
    );
    assert_eq!(
        std::fs::read(a.module.join("two")).unwrap(),
        b"2",
        "{}",
        out.stderr_str()
    );
    assert_stderr(
        &out,
        "all journaled (the next start delivers them): 127.0.0.3 lacks 2 paths",
    );
    assert!(!out.stderr_str().contains("127.0.0.2 lacks"), "{}", out.stderr_str());

    // The journal has it all: with b back, a restart delivers both paths to it alone.
    b.restart();
    let mut cmd = rpush_cmd(&src, &["-0", "-t", &a.url(), "-t", &b.url(), "--state-dir"]);
    cmd.arg(&state).arg("--password-file").arg(&a.password_file);
    cmd.stdin(std::process::Stdio::null());
    let out = Proc::spawn(cmd).wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_stderr(&out, "127.0.0.3: replaying 2 pending paths");
    assert!(
        !out.stderr_str().contains("127.0.0.2: replaying"),
        "{}",
        out.stderr_str()
    );
    assert_eq!(std::fs::read(b.module.join("two")).unwrap(), b"2");
}

#[test]
fn faults_sigterm_with_a_host_down_exits_at_once_with_status_3() {
    stop_with_a_host_down(libc::SIGTERM);
}

#[test]
fn faults_sigint_with_a_host_down_exits_at_once_with_status_3() {
    stop_with_a_host_down(libc::SIGINT);
}

#[test]
fn faults_stop_without_state_dir_still_exits_1() {
    // Nothing is journaled without a state dir: what is undelivered is lost, so 1.
    let s = Scratch::new();
    let src = s.mkdir("src");
    let mut b = Daemon::start(&s, "b", "127.0.0.3");
    b.stop();
    write_file(&src, b"one", b"1");
    let mut rp = Proc::spawn(rpush_cmd(&src, &["-0", "-t", &b.url()]));
    let mut stdin = rp.stdin();
    send(&mut stdin, &batch0(&src, &[b"one"]));
    rp.wait_stderr("127.0.0.3: push failed");
    rp.signal(libc::SIGTERM);
    let out = rp.wait_exit(DEADLINE);
    drop(stdin);
    assert_eq!(out.code, 1, "{}", out.stderr_str());
    assert_stderr(&out, "not delivered: 127.0.0.3 lacks 1 path");
}
