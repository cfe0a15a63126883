//! Targets that fail for real: a daemon crashed mid-transfer, a read-only module, a
//! module that refuses deletions, a full target disk. (Nothing listening, a silent
//! listener, a wrong password, an unknown module and `max connections` are in
//! `rpush.rs`.) In each, the healthy host is delivered to on time and the failing one
//! either recovers or is reported with its cause.

use std::fs;
use std::process::Command;

use super::{noise, wait_transfer_started};
use crate::rpush::{assert_stderr, batch0, count, rpush_cmd, send, wait_converged, write_file};
use crate::rsyncd::{Daemon, Tmpfs};
use crate::util::{DEADLINE, Proc, Scratch};

fn two_hosts(src: &std::path::Path, a: &Daemon, b: &Daemon, extra: &[&str]) -> Command {
    let mut cmd = rpush_cmd(src, &["-0", "--drain-timeout", "3s", "-t", &a.url(), "-t", &b.url()]);
    cmd.arg("--password-file").arg(&a.password_file).args(extra);
    cmd
}

#[test]
fn faults_daemon_crashed_mid_transfer_and_restarted_converges_others_on_time() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let a = Daemon::start(&s, "a", "127.0.0.2");
    let mut b = Daemon::start(&s, "b", "127.0.0.3");
    write_file(&src, b"big", &noise(1 << 20, 3));
    let mut rp = Proc::spawn(two_hosts(&src, &a, &b, &["--", "--bwlimit=2000"]));
    let mut stdin = rp.stdin();
    send(&mut stdin, &batch0(&src, &[b"big"]));
    wait_transfer_started(&b.module, "big");
    b.crash();
    rp.wait_stderr("127.0.0.3: push failed (temporary, attempt 1)");
    // a goes on: its push finishes and the next batch reaches it while b is down.
    write_file(&src, b"small", b"s");
    send(&mut stdin, &batch0(&src, &[b"small"]));
    wait_converged("a while b is down", &src, &[&a.module], &rp);
    assert!(!b.module.join("small").exists());
    b.restart();
    wait_converged("b after its restart", &src, &[&a.module, &b.module], &rp);
    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_stderr(&out, "127.0.0.3: recovered after");
}

#[test]
fn faults_read_only_module_is_permanent_and_reported() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let a = Daemon::start(&s, "a", "127.0.0.2");
    let b = Daemon::start_with(&s, "b", "127.0.0.3", "    read only = yes\n");
    let mut rp = Proc::spawn(two_hosts(&src, &a, &b, &[]));
    let mut stdin = rp.stdin();
    write_file(&src, b"f", b"1");
    send(&mut stdin, &batch0(&src, &[b"f"]));
    wait_converged("a", &src, &[&a.module], &rp);
    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 1, "{}", out.stderr_str());
    assert_stderr(&out, "127.0.0.3: push failed (permanent, attempt 1): rsync exit 1");
    assert_stderr(&out, "module is read only");
    assert_stderr(&out, "not delivered: 127.0.0.3 lacks 1 path");
    assert_eq!(count(&out.stderr, "push failed"), 1, "{}", out.stderr_str());
    assert!(!b.module.join("f").exists());
}

#[test]
fn faults_module_refusing_delete_is_permanent_and_reported() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let a = Daemon::start(&s, "a", "127.0.0.2");
    let b = Daemon::start_with(&s, "b", "127.0.0.3", "    refuse options = delete\n");
    let mut rp = Proc::spawn(two_hosts(&src, &a, &b, &[]));
    let mut stdin = rp.stdin();
    write_file(&src, b"f", b"1");
    send(&mut stdin, &batch0(&src, &[b"f"]));
    wait_converged("a", &src, &[&a.module], &rp);
    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 1, "{}", out.stderr_str());
    assert_stderr(&out, "127.0.0.3: push failed (permanent, attempt 1)");
    assert_stderr(&out, "delete");
    assert_stderr(&out, "not delivered: 127.0.0.3 lacks 1 path");
    assert!(!b.module.join("f").exists());
}

#[test]
fn faults_full_target_disk_is_retried_until_there_is_room() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let a = Daemon::start(&s, "a", "127.0.0.2");
    let b = Daemon::start(&s, "b", "127.0.0.3");
    let Some(disk) = crate::util::require(Tmpfs::mount(&b.module, "512k")) else {
        return;
    };
    write_file(&src, b"big", &noise(1 << 20, 4));
    let mut rp = Proc::spawn(two_hosts(&src, &a, &b, &[]));
    let mut stdin = rp.stdin();
    send(&mut stdin, &batch0(&src, &[b"big"]));
    wait_converged("a", &src, &[&a.module], &rp);
    rp.wait_stderr("127.0.0.3: push failed (temporary, attempt 1)");
    rp.wait_stderr("No space left on device");
    // Room again (the operator cleaned up): the next retry delivers.
    disk.resize("4m");
    wait_converged("b with room", &src, &[&a.module, &b.module], &rp);
    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    drop(disk);
    assert!(fs::read_dir(&b.module).unwrap().next().is_none(), "tmpfs still mounted");
}
