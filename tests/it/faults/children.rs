//! rpush's children (issue 12, items 5 and 8): an rsync never outlives a `kill -9` of
//! rpush (an orphan finishing later would put an old version back on the host after a
//! restart), and no child has a controlling terminal (rsync asking for a password on a
//! tty would hang there until the watchdog instead of failing as "auth failed").

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{children, noise, rpush_with_state, wait_transfer_started};
use crate::rpush::{batch0, send, wait_converged, write_file};
use crate::rsyncd::Daemon;
use crate::util::{DEADLINE, Proc, Scratch, require};

fn alive(pid: i32) -> bool {
    // A zombie is dead for our purpose: it transfers nothing.
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}

#[test]
fn faults_rsync_dies_with_a_killed_rpush_and_the_restart_delivers_the_new_version() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let state = s.join("state");
    let a = Daemon::start(&s, "a", "127.0.0.2");
    // v1: 8 MiB at 1 MB/s, so the push is surely caught in the middle, with seconds
    // left: an orphaned rsync would still be sending when the deadline below passes.
    write_file(&src, b"big", &noise(8 << 20, 7));
    let cmd = rpush_with_state(&src, &[&a], &state, Some(1000));
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    send(&mut stdin, &batch0(&src, &[b"big"]));
    wait_transfer_started(&a.module, "big");
    let kids = children(rp.pid());
    assert!(!kids.is_empty(), "no rsync running:\n{}", rp.dump());
    // Only rpush is killed: its children must follow by themselves.
    rp.kill();
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 128 + libc::SIGKILL, "{}", out.stderr_str());
    let end = Instant::now() + Duration::from_secs(1);
    while kids.iter().any(|&k| alive(k)) {
        assert!(
            Instant::now() < end,
            "rsync {kids:?} outlived rpush:\n{}",
            out.stderr_str()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // v2, and a restart from the journal: the host ends with v2 and keeps it.
    write_file(&src, b"big", b"v2\n");
    let mut cmd = rpush_with_state(&src, &[&a], &state, None);
    cmd.stdin(Stdio::null());
    let rp = Proc::spawn(cmd);
    wait_converged("after the restart", &src, &[&a.module], &rp);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_eq!(fs::read(a.module.join("big")).unwrap(), b"v2\n");
}

#[test]
fn faults_a_password_prompt_on_a_terminal_fails_at_once_as_auth_failed() {
    let script = Command::new("script").arg("--version").output();
    if require(script.map_err(|e| format!("script(1) (bsdutils) cannot run: {e}"))).is_none() {
        return;
    }
    let s = Scratch::new();
    let src = s.mkdir("src");
    let a = Daemon::start(&s, "a", "127.0.0.2");
    write_file(&src, b"f", b"1");
    let input = s.write("input", batch0(&src, &[b"f"]));
    let log = s.join("rpush.log");
    // An auth module and no --password-file, run on a pseudo-terminal (script(1) makes
    // it rpush's controlling terminal). Test scaffolding only: the paths are the
    // scratch directory's, without quotes or spaces.
    let line = format!(
        "{} -0 -C {} -t {} --retry-min 100ms --drain-timeout 3s < {} 2> {}",
        crate::util::bin("rpush").display(),
        src.display(),
        a.url(),
        input.display(),
        log.display()
    );
    let started = Instant::now();
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env_remove("RSYNC_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .expect("run script");
    let took = started.elapsed();
    let log = fs::read_to_string(&log).unwrap_or_default();
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("auth failed"), "no auth failure in:\n{log}");
    assert!(log.contains("(permanent, attempt 1)"), "{log}");
    assert!(!log.contains("watchdog"), "{log}");
    assert!(took < Duration::from_secs(30), "took {took:?}:\n{log}");
    assert!(!Path::new(&a.module.join("f")).exists());
}
