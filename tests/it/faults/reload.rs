//! SIGHUP: the hosts files are read again without a restart. An added host gets a full
//! sync, a removed one stops and keeps its journal, a broken hosts file changes nothing.

use std::fs;
use std::process::{Command, Stdio};

use super::journals;
use crate::rpush::{assert_stderr, batch0, rpush_cmd, send, wait_converged, write_file};
use crate::rsyncd::Daemon;
use crate::util::{DEADLINE, Proc, Scratch, bin};

#[test]
fn faults_sighup_adds_and_removes_hosts_and_keeps_the_removed_journal() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let state = s.join("state");
    let a = Daemon::start(&s, "a", "127.0.0.2");
    let mut b = Daemon::start(&s, "b", "127.0.0.3");
    let c = Daemon::start(&s, "c", "127.0.0.4");
    let hosts = s.write("hosts", format!("{}\n{}\n", a.url(), b.url()));
    let mut cmd = rpush_cmd(&src, &["-0", "-H"]);
    cmd.arg(&hosts).arg("--state-dir").arg(&state);
    cmd.arg("--password-file").arg(&a.password_file);
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    write_file(&src, b"one", b"1");
    send(&mut stdin, &batch0(&src, &[b"one"]));
    wait_converged("a and b", &src, &[&a.module, &b.module], &rp);

    b.stop();
    write_file(&src, b"two", b"2");
    send(&mut stdin, &batch0(&src, &[b"two"]));
    wait_converged("a while b is down", &src, &[&a.module], &rp);
    rp.wait_stderr("127.0.0.3: push failed");

    // A broken hosts file: reported, nothing changes.
    fs::write(&hosts, format!("{}\nweb 1\n", a.url())).unwrap();
    rp.signal(libc::SIGHUP);
    rp.wait_stderr(&format!(
        "SIGHUP: {}:2: unexpected whitespace in target 'web 1'",
        hosts.display()
    ));
    rp.wait_stderr("; keeping the 2 current targets");

    // b out, c in: c has seen no batch, so it gets a full sync.
    fs::write(&hosts, format!("# b is gone\n{}\n{}\n", a.url(), c.url())).unwrap();
    rp.signal(libc::SIGHUP);
    rp.wait_stderr("127.0.0.4: added (");
    rp.wait_stderr("127.0.0.3: removed (");
    wait_converged("c after SIGHUP", &src, &[&a.module, &c.module], &rp);
    write_file(&src, b"three", b"3");
    send(&mut stdin, &batch0(&src, &[b"three"]));
    wait_converged("a and c", &src, &[&a.module, &c.module], &rp);
    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_stderr(&out, "127.0.0.3: removed (");
    assert_stderr(&out, "1 pending path kept in ");
    assert!(!b.module.join("two").exists());
    assert_eq!(journals(&state).len(), 3, "b's journal is kept");

    // b back, on its own: its journal delivers what it missed before it was removed.
    b.restart();
    let mut cmd = Command::new(bin("rpush"));
    cmd.arg("-C")
        .arg(&src)
        .args(["-0", "-t", &b.url(), "--state-dir"])
        .arg(&state);
    cmd.arg("--password-file").arg(&b.password_file).stdin(Stdio::null());
    let out = Proc::spawn(cmd).wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_stderr(&out, "127.0.0.3: replaying 1 pending path");
    assert_stderr(&out, "belongs to no current target: kept, not replayed");
    assert!(b.module.join("two").exists());
}

/// How many of `pid`'s open descriptors are `path`.
fn open_handles(pid: i32, path: &std::path::Path) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| fs::read_link(e.path()).is_ok_and(|t| t == path))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn faults_sighup_that_removes_then_adds_back_a_host_mid_push_keeps_one_journal_handle() {
    // Issue 12, item 7: the re-added target got a second journal handle on the same file
    // while the removed one still finished its push, both rewriting through one temp name.
    let s = Scratch::new();
    let src = s.mkdir("src");
    let state = s.join("state");
    let a = Daemon::start(&s, "a", "127.0.0.2");
    let c = Daemon::start(&s, "c", "127.0.0.4");
    write_file(&src, b"big", &super::noise(400 << 10, 9));
    let hosts = s.write("hosts", format!("{}\n{}\n", a.url(), c.url()));
    let mut cmd = rpush_cmd(&src, &["-0", "-H"]);
    cmd.arg(&hosts).arg("--state-dir").arg(&state);
    cmd.arg("--password-file").arg(&a.password_file);
    // 400 KiB at 200 kB/s: the push runs about two seconds.
    cmd.args(["--", "--bwlimit=200"]);
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    send(&mut stdin, &batch0(&src, &[b"big"]));
    super::wait_transfer_started(&a.module, "big");
    let journal = journals(&state)
        .into_iter()
        .find(|p| p.to_string_lossy().contains("127.0.0.2"))
        .expect("a's journal");
    assert_eq!(open_handles(rp.pid(), &journal), 1);

    fs::write(&hosts, format!("{}\n", c.url())).unwrap();
    rp.signal(libc::SIGHUP);
    rp.wait_stderr("127.0.0.2: removed (");
    fs::write(&hosts, format!("{}\n{}\n", a.url(), c.url())).unwrap();
    rp.signal(libc::SIGHUP);
    rp.wait_stderr("127.0.0.2: added back (");
    assert_eq!(
        open_handles(rp.pid(), &journal),
        1,
        "two handles on {}\n{}",
        journal.display(),
        rp.dump()
    );
    wait_converged("a and c after the reloads", &src, &[&a.module, &c.module], &rp);
    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_eq!(journals(&state).len(), 2);
}
