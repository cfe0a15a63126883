//! Outages (issue 12, item 3): a host that comes back is pushed to within about two
//! seconds whatever its backoff, because rpush probes a failing host's port about every
//! second; the log says when the outage began and when it ended, and how long it lasted.
//! A real daemon stopped and restarted on the same port. And the status file's pid,
//! heartbeat and per-host outage start (issue 12, item 6), read as JSON.

use std::fs;
use std::time::{Duration, Instant};

use crate::json::Json;
use crate::rpush::{assert_stderr, batch0, rpush_cmd, send, write_file};
use crate::rsyncd::Daemon;
use crate::util::{DEADLINE, Proc, Scratch};

#[test]
fn faults_a_host_back_from_an_outage_is_pushed_within_two_seconds_despite_a_long_backoff() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let mut d = Daemon::start(&s, "a", "127.0.0.2");
    write_file(&src, b"one", b"1");
    // A 30 s backoff from the first failure: without probes the change would wait that.
    let mut cmd = rpush_cmd(&src, &["-0", "-v", "-t", &d.url(), "--password-file"]);
    cmd.arg(&d.password_file)
        .args(["--retry-min", "30s", "--retry-max", "60s", "--drain-timeout", "5s"]);
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    send(&mut stdin, &batch0(&src, &[b"one"]));
    rp.wait_stderr("127.0.0.2: pushed 1 path");

    d.stop();
    write_file(&src, b"two", b"2");
    send(&mut stdin, &batch0(&src, &[b"two"]));
    rp.wait_stderr("127.0.0.2: outage began");
    rp.wait_stderr("retry in 30s");
    // A probe has seen the port closed.
    rp.wait_stderr(&format!("127.0.0.2: 127.0.0.2 port {} does not answer", d.port));

    d.restart();
    let back = Instant::now();
    let end = back + DEADLINE;
    while fs::read(d.module.join("two")).ok().as_deref() != Some(b"2") {
        assert!(Instant::now() < end, "never delivered after the restart\n{}", rp.dump());
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = back.elapsed();
    assert!(
        took < Duration::from_millis(2500),
        "delivered {took:?} after the host came back\n{}",
        rp.dump()
    );
    rp.wait_stderr("answers again: pushing now");
    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_stderr(
        &out,
        "127.0.0.2: recovered after 1 failed attempt; outage ended, it lasted ",
    );
    eprintln!("delivered {took:?} after the daemon came back");
}

/// Reads the status file as JSON once it exists and parses.
fn status_doc(path: &std::path::Path) -> Json {
    Json::parse(&fs::read_to_string(path).unwrap())
}

fn host<'a>(doc: &'a Json, name: &str) -> &'a Json {
    doc.get("hosts")
        .arr()
        .iter()
        .find(|h| h.get("host").str() == Some(name))
        .unwrap_or_else(|| panic!("no host {name} in {doc:?}"))
}

#[test]
fn faults_status_tells_a_dead_rpush_from_an_idle_one_and_dates_each_outage() {
    // Issue 12, item 6: after SIGKILL the file said "running" forever.
    let s = Scratch::new();
    let src = s.mkdir("src");
    let a = Daemon::start(&s, "a", "127.0.0.2");
    let mut b = Daemon::start(&s, "b", "127.0.0.3");
    b.stop();
    let status = s.join("status.json");
    write_file(&src, b"one", b"1");
    let mut cmd = rpush_cmd(&src, &["-0", "-t", &a.url(), "-t", &b.url(), "--password-file"]);
    cmd.arg(&a.password_file).arg("--status").arg(&status);
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    send(&mut stdin, &batch0(&src, &[b"one"]));
    rp.wait_stderr("127.0.0.2: pushed 1 path");
    rp.wait_stderr("127.0.0.3: outage began");

    // The heartbeat moves while nothing else happens; the pid is rpush's.
    let end = Instant::now() + DEADLINE;
    let first = status_doc(&status);
    assert_eq!(first.get("pid").num() as i32, rp.pid());
    let every = first.get("heartbeat_every_seconds").num();
    assert!((1.0..=5.0).contains(&every), "{first:?}");
    let beat = first.get("heartbeat").str().unwrap().to_string();
    let doc = loop {
        let d = status_doc(&status);
        if d.get("heartbeat").str() != Some(beat.as_str()) {
            break d;
        }
        assert!(Instant::now() < end, "heartbeat never refreshed: {d:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(doc.get("state").str(), Some("running"));
    // The outage start, per host: set for the host that is down, null for the other.
    let since = host(&doc, "127.0.0.3").get("outage_since").str().expect("outage_since");
    assert!(since.ends_with('Z') && since.len() >= 20, "{since}");
    assert!(since <= doc.get("heartbeat").str().unwrap(), "{doc:?}");
    assert_eq!(host(&doc, "127.0.0.2").get("outage_since"), &Json::Null);
    assert_eq!(host(&doc, "127.0.0.3").get("pending").num(), 1.0);

    // The exit summary says which rpush and when, and when the outage began.
    rp.signal(libc::SIGTERM);
    let pid = rp.pid();
    let out = rp.wait_exit(DEADLINE);
    drop(stdin);
    assert_eq!(out.code, 1, "{}", out.stderr_str());
    assert_stderr(&out, "127.0.0.3 lacks 1 path (last error: ");
    assert_stderr(&out, &format!("(in outage since {since})"));
    assert_stderr(&out, &format!("; rpush pid {pid} at "));
    let last = status_doc(&status);
    assert_eq!(last.get("state").str(), Some("stopped"));

    // SIGKILL: the file still says "running", but its pid is gone: a reader can tell.
    let mut cmd = rpush_cmd(&src, &["-0", "-t", &b.url(), "--status"]);
    cmd.arg(&status);
    let mut rp = Proc::spawn(cmd);
    let stdin = rp.stdin();
    let end = Instant::now() + DEADLINE;
    while status_doc(&status).get("pid").num() as i32 != rp.pid() {
        assert!(Instant::now() < end, "new rpush never wrote its status");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = rp.pid();
    rp.kill();
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 128 + libc::SIGKILL, "{}", out.stderr_str());
    drop(stdin);
    let doc = status_doc(&status);
    assert_eq!(doc.get("state").str(), Some("running"));
    assert_eq!(doc.get("pid").num() as i32, pid);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "pid {pid} still exists"
    );
}
