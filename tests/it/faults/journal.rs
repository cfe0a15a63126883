//! `--state-dir`: rpush SIGKILLed mid-push and restarted, SIGTERM with a running rsync,
//! a journal with a cut or corrupted tail, a state directory already in use.

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};

use super::{children, journals, kill_groups, noise, rpush_with_state, wait_transfer_started};
use crate::rpush::{assert_stderr, batch0, rpush_cmd, send, wait_converged, write_file};
use crate::rsyncd::Daemon;
use crate::util::{DEADLINE, Proc, Scratch, bin};

/// rpush with the given targets and state dir, input closed: replays and drains.
fn replay_run(src: &std::path::Path, state: &std::path::Path, d: &[&Daemon]) -> Proc {
    let mut cmd = Command::new(bin("rpush"));
    cmd.arg("-C")
        .arg(src)
        .args(["-0", "--retry-min", "100ms", "--drain-timeout", "15s"]);
    cmd.arg("--state-dir").arg(state);
    for x in d {
        cmd.args(["-t", &x.url()]);
    }
    cmd.arg("--password-file").arg(&d[0].password_file);
    cmd.stdin(Stdio::null());
    Proc::spawn(cmd)
}

#[test]
fn faults_sigkill_mid_push_then_restart_with_the_state_dir_converges() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let state = s.join("state");
    let a = Daemon::start(&s, "a", "127.0.0.2");
    let mut b = Daemon::start(&s, "b", "127.0.0.3");
    b.stop();
    write_file(&src, b"big", &noise(3 << 20, 1));
    write_file(&src, b"dir/small", b"s");
    // 3 MiB at 1 MB/s: a transfer that is surely caught in the middle.
    let cmd = rpush_with_state(&src, &[&a, &b], &state, Some(1000));
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    send(&mut stdin, &batch0(&src, &[b"big", b"dir/small"]));
    wait_transfer_started(&a.module, "big");
    rp.wait_stderr("127.0.0.3: push failed");
    // The crash: rpush and its rsyncs, all at once, no chance to clean up.
    let kids = children(rp.pid());
    rp.kill();
    kill_groups(&kids);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 128 + libc::SIGKILL, "{}", out.stderr_str());
    assert_eq!(journals(&state).len(), 2, "one journal per host");
    assert!(!a.module.join("big").exists(), "the transfer finished before the kill");

    b.restart();
    let rp = replay_run(&src, &state, &[&a, &b]);
    wait_converged("after the restart", &src, &[&a.module, &b.module], &rp);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_stderr(&out, "127.0.0.2: replaying 2 pending paths from ");
    assert_stderr(&out, "127.0.0.3: replaying 2 pending paths from ");
    // Delivered: the journals now hold nothing, and a third run has nothing to do.
    let rp = replay_run(&src, &state, &[&a, &b]);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert!(!out.stderr_str().contains("replaying"), "{}", out.stderr_str());
}

#[test]
fn faults_sigterm_lets_the_running_rsync_finish_and_journals_the_rest() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let state = s.join("state");
    let a = Daemon::start(&s, "a", "127.0.0.2");
    let mut b = Daemon::start(&s, "b", "127.0.0.3");
    b.stop();
    write_file(&src, b"big", &noise(1 << 20, 2));
    let cmd = rpush_with_state(&src, &[&a, &b], &state, Some(1000));
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    send(&mut stdin, &batch0(&src, &[b"big"]));
    wait_transfer_started(&a.module, "big");
    rp.wait_stderr("127.0.0.3: push failed");
    rp.signal(libc::SIGTERM);
    let out = rp.wait_exit(DEADLINE);
    // Stopped with everything undelivered journaled: its own status.
    assert_eq!(out.code, 3, "{}", out.stderr_str());
    // The running push was allowed to finish: a has the file, whole.
    assert_eq!(
        fs::read(a.module.join("big")).unwrap(),
        fs::read(src.join("big")).unwrap()
    );
    assert_stderr(&out, "signal received: stopping");
    assert_stderr(&out, "127.0.0.2: pushed 1 path");
    assert_stderr(
        &out,
        "all journaled (the next start delivers them): 127.0.0.3 lacks 1 path",
    );
    assert_stderr(&out, ", kept in ");
    drop(stdin);

    b.restart();
    let rp = replay_run(&src, &state, &[&a, &b]);
    wait_converged("b from the journal", &src, &[&a.module, &b.module], &rp);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_stderr(&out, "127.0.0.3: replaying 1 pending path from ");
    assert!(
        !out.stderr_str().contains("127.0.0.2: replaying"),
        "{}",
        out.stderr_str()
    );
}

/// Runs rpush against a stopped daemon until `batches` are journaled, then SIGKILLs it;
/// returns the journal's path.
fn journal_with_batches(
    s: &Scratch,
    src: &std::path::Path,
    state: &std::path::Path,
    d: &Daemon,
    batches: &[&[u8]],
) -> std::path::PathBuf {
    // -vv: every failed attempt is logged, with how many paths are pending.
    let mut cmd = rpush_cmd(src, &["-0", "-vv", "-t", &d.url(), "--state-dir"]);
    cmd.arg(state).arg("--password-file").arg(&d.password_file);
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    for (i, name) in batches.iter().enumerate() {
        write_file(src, name, b"x");
        send(&mut stdin, &batch0(src, &[name]));
        // A failed push of it means the batch was accepted (journaled) and tried.
        let want = format!(" {} path{} pending", i + 1, if i == 0 { "" } else { "s" });
        rp.wait_for(&want, DEADLINE, |_, e| crate::util::contains(e, want.as_bytes()));
    }
    let _ = s;
    rp.kill();
    rp.wait_exit(DEADLINE);
    let j = journals(state);
    assert_eq!(j.len(), 1);
    j[0].clone()
}

#[test]
fn faults_truncated_and_corrupt_journal_tails_are_reported_and_the_rest_replayed() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let state = s.join("state");
    let mut d = Daemon::start(&s, "a", "127.0.0.2");
    d.stop();
    let j = journal_with_batches(&s, &src, &state, &d, &[b"one", b"two"]);
    // A file no batch ever named: only a full sync brings it over.
    write_file(&src, b"unlisted", b"u");

    // A write cut short: the last record loses its last 3 bytes.
    let data = fs::read(&j).unwrap();
    fs::write(&j, &data[..data.len() - 3]).unwrap();
    d.restart();
    let rp = replay_run(&src, &state, &[&d]);
    wait_converged("after a truncated tail", &src, &[&d.module], &rp);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_stderr(&out, "truncated record (a write was cut short) at byte ");
    assert_stderr(&out, "replaying the 1 intact batch and queueing a full sync");
    let mut aside = j.clone().into_os_string();
    aside.push(".corrupt");
    assert_eq!(fs::read(&aside).unwrap(), &data[..data.len() - 3]);

    // A flipped byte in the middle of the journal: everything from that record on is
    // distrusted, the records before it still replayed.
    d.stop();
    fs::remove_dir_all(&d.module).unwrap();
    fs::create_dir(&d.module).unwrap();
    let j = journal_with_batches(&s, &src, &state, &d, &[b"three", b"four"]);
    let mut data = fs::read(&j).unwrap();
    let at = data.len() - 2;
    data[at] ^= 0xff;
    fs::write(&j, &data).unwrap();
    d.restart();
    let rp = replay_run(&src, &state, &[&d]);
    wait_converged("after a corrupt tail", &src, &[&d.module], &rp);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_stderr(&out, "checksum mismatch at byte ");

    // Not a journal at all: reported, kept aside, a full sync instead.
    fs::write(&j, b"hello, I am not a journal\n").unwrap();
    let rp = replay_run(&src, &state, &[&d]);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_stderr(&out, "not an rpush journal (wrong magic) at byte 0");
    assert_stderr(&out, "pushed 1 path");
}

#[test]
fn faults_state_dir_refusals() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let state = s.mkdir("state");
    let file = s.write("plain", "x");
    let mut first = Command::new(bin("rpush"));
    first
        .arg("-C")
        .arg(&src)
        .args(["-t", "h:/x", "--state-dir"])
        .arg(&state);
    first.stdin(Stdio::piped());
    let mut first = Proc::spawn(first);
    let mut keep = first.stdin();
    // Wait until the first one holds the lock: its journal exists.
    crate::util::wait_until(
        "the first rpush's journal",
        DEADLINE,
        || !journals(&state).is_empty(),
        || first.dump(),
    );
    for (dir, want) in [
        (&state, "in use by another rpush"),
        (&file, "not a directory"),
        (&file.join("sub"), "Not a directory"),
    ] {
        let out = crate::util::run({
            let mut c = Command::new(bin("rpush"));
            c.arg("-C").arg(&src).args(["-t", "h:/x", "--state-dir"]).arg(dir);
            c
        });
        assert_eq!(out.code, 2, "{}", out.stderr_str());
        let line = format!("rpush: --state-dir {}: {want}", dir.display());
        assert!(out.stderr_str().contains(&line), "want {line:?}:\n{}", out.stderr_str());
        assert_eq!(out.stderr_str().lines().count(), 1, "{}", out.stderr_str());
    }
    keep.write_all(b"").unwrap();
    drop(keep);
    first.wait_exit(DEADLINE);
}

#[test]
fn faults_second_sigterm_kills_the_running_rsync_and_the_journal_keeps_its_paths() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let state = s.join("state");
    let a = Daemon::start(&s, "a", "127.0.0.2");
    write_file(&src, b"big", &noise(2 << 20, 5));
    // 2 MiB at 100 kB/s: 20 s, far longer than this test waits.
    let cmd = rpush_with_state(&src, &[&a], &state, Some(100));
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    send(&mut stdin, &batch0(&src, &[b"big"]));
    wait_transfer_started(&a.module, "big");
    rp.signal(libc::SIGTERM);
    rp.wait_stderr("signal received: stopping");
    rp.signal(libc::SIGTERM);
    let out = rp.wait_exit(std::time::Duration::from_secs(10));
    assert_eq!(out.code, 3, "{}", out.stderr_str());
    assert_stderr(
        &out,
        "all journaled (the next start delivers them): 127.0.0.2 lacks 1 path",
    );
    assert_stderr(&out, ", kept in ");
    drop(stdin);
    let rp = replay_run(&src, &state, &[&a]);
    wait_converged("from the journal", &src, &[&a.module], &rp);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_stderr(&out, "127.0.0.2: replaying 1 pending path");
}

#[test]
fn faults_full_state_dir_keeps_delivering_and_says_so() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let state = s.mkdir("state");
    let Some(_disk) = crate::util::require(crate::rsyncd::Tmpfs::mount(&state, "64k")) else {
        return;
    };
    let a = Daemon::start(&s, "a", "127.0.0.2");
    let cmd = rpush_with_state(&src, &[&a], &state, None);
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    write_file(&src, b"first", b"1");
    send(&mut stdin, &batch0(&src, &[b"first"]));
    wait_converged("with room", &src, &[&a.module], &rp);
    // Fill the state directory's disk to the last byte.
    {
        let mut f = fs::File::create(state.join("filler")).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        while f.write_all(&[0]).is_ok() {}
    }
    // A batch bigger than a page (tmpfs appends within an allocated page succeed).
    let names: Vec<Vec<u8>> = (0..20)
        .map(|i| format!("{i:02}{}", "n".repeat(200)).into_bytes())
        .collect();
    for n in &names {
        write_file(&src, n, b"2");
    }
    let refs: Vec<&[u8]> = names.iter().map(|n| n.as_slice()).collect();
    send(&mut stdin, &batch0(&src, &refs));
    // The batch cannot be journaled, and is pushed all the same.
    rp.wait_stderr("No space left on device; batch of 20 paths queued in memory only");
    wait_converged("with a full state dir", &src, &[&a.module], &rp);
    // Nor can the journal be compacted after that push: said, and nothing else changes.
    rp.wait_stderr(".journal: No space left on device\n");
    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
}

#[test]
fn faults_a_journal_written_for_another_base_is_not_replayed_against_this_one() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let other = s.mkdir("other");
    let state = s.join("state");
    let mut d = Daemon::start(&s, "a", "127.0.0.2");
    d.stop();
    journal_with_batches(&s, &src, &state, &d, &[b"from-src"]);
    // Same state dir, another base: "from-src" names nothing under it.
    write_file(&other, b"only-in-other", b"o");
    d.restart();
    let rp = replay_run(&other, &state, &[&d]);
    wait_converged("the new base, fully", &other, &[&d.module], &rp);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_stderr(
        &out,
        &format!("was written for base {}, not {}", src.display(), other.display()),
    );
    assert!(
        !out.stderr_str().contains("replaying 1 pending path"),
        "{}",
        out.stderr_str()
    );
    let aside: Vec<_> = fs::read_dir(&state)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".otherbase"))
        .collect();
    assert_eq!(aside.len(), 1);
}
