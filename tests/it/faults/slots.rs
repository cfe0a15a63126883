//! `-j` job slots (issue 12, item 8): shared first come, first served, so that with
//! `-j 1` no host waits more than one round of the others; and a host that accepts TCP
//! and never answers holds the slot no longer than `--contimeout` on any try.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::rpush::{batch0, hosts_file, rpush_cmd, send, write_file};
use crate::rsyncd::Daemon;
use crate::util::{DEADLINE, Proc, Scratch};

/// The hosts named by "HOST: pushed" lines, in order.
fn push_order(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.split_once(" rpush: ").map(|(_, m)| m))
        .filter_map(|m| m.split_once(": pushed ").map(|(h, _)| h.to_string()))
        .collect()
}

#[test]
fn faults_one_job_slot_is_shared_in_turn_by_ten_hosts() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let daemons: Vec<Daemon> = (0..10)
        .map(|i| Daemon::start(&s, &format!("d{i}"), &format!("127.0.0.{}", 2 + i)))
        .collect();
    let hosts = hosts_file(&s, &daemons.iter().map(|d| d.url()).collect::<Vec<_>>());
    let mut cmd = rpush_cmd(&src, &["-0", "-j", "1", "-H"]);
    cmd.arg(&hosts).arg("--password-file").arg(&daemons[0].password_file);
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    // A new change every 20 ms: every host always has something pending, so only the
    // slot decides who pushes when.
    let end = Instant::now() + Duration::from_secs(4);
    let mut n = 0u32;
    while Instant::now() < end {
        let name = format!("f{}", n % 5);
        write_file(&src, name.as_bytes(), n.to_string().as_bytes());
        send(&mut stdin, &batch0(&src, &[name.as_bytes()]));
        n += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    let order = push_order(&out.stderr_str());
    let mut counts: BTreeMap<&str, usize> = daemons.iter().map(|d| (d.ip.as_str(), 0)).collect();
    assert!(order.len() >= 20, "too few pushes to judge: {order:?}");
    for (i, h) in order.iter().enumerate() {
        *counts.get_mut(h.as_str()).unwrap_or_else(|| panic!("unknown host {h}")) += 1;
        // Once every host had its first turn, nobody gets two turns ahead of anybody.
        if i + 1 >= daemons.len() {
            let max = counts.values().max().unwrap();
            let min = counts.values().min().unwrap();
            assert!(max - min <= 2, "after {} pushes: {counts:?}\n{order:?}", i + 1);
        }
    }
    eprintln!("pushes per host: {counts:?}");
}

#[test]
fn faults_a_host_that_never_answers_holds_the_only_slot_no_longer_than_contimeout() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    // Accepts connections and never says a word.
    let listener = TcpListener::bind("127.0.0.6:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().flatten() {
            held.push(c);
        }
    });
    let silent = format!("rsync://pusher@127.0.0.6:{port}/mod/");
    let daemons: Vec<Daemon> = (0..3)
        .map(|i| Daemon::start(&s, &format!("d{i}"), &format!("127.0.0.{}", 2 + i)))
        .collect();
    // The silent host first, so that it takes the only slot first.
    let mut lines = vec![silent];
    lines.extend(daemons.iter().map(|d| d.url()));
    let hosts = hosts_file(&s, &lines);
    write_file(&src, b"f", b"1");
    let mut cmd = rpush_cmd(
        &src,
        &[
            "-0",
            "-j",
            "1",
            "--contimeout",
            "1s",
            "--retry-min",
            "200ms",
            "--drain-timeout",
            "3s",
            "-H",
        ],
    );
    cmd.arg(&hosts).arg("--password-file").arg(&daemons[0].password_file);
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    let t0 = Instant::now();
    send(&mut stdin, &batch0(&src, &[b"f"]));
    for d in &daemons {
        rp.wait_stderr(&format!("{}: pushed 1 path", d.ip));
    }
    let took = t0.elapsed();
    // Each try at the silent host costs at most --contimeout; before, --timeout (30 s).
    assert!(
        took < Duration::from_secs(6),
        "the healthy hosts waited {took:?}\n{}",
        rp.dump()
    );
    rp.wait_stderr("127.0.0.6: push failed (temporary, attempt 1): connected, but no rsync daemon greeting within --contimeout (1s)");
    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 1, "{}", out.stderr_str());
}
