//! End-to-end tests of rpush against real rsync daemons on 127.0.0.2, 127.0.0.3, ... and
//! a real sshd on 127.0.0.1 (fixtures in `rsyncd`). rpush is fed batches on stdin the
//! way rbatch writes them, then every target tree is compared with the source (names as
//! bytes, type, content, mode, mtime to the nanosecond, symlink targets), polling with a
//! deadline. The failure tests make each failure happen for real: a stopped daemon, a
//! wrong password, an unknown module, nothing listening, a full daemon, a silent
//! listener, a missing base, a malformed hosts file.

use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::rsyncd::{Daemon, Sshd, free_port};
use crate::util::{DEADLINE, Output, Proc, Scratch, bin, contains};

// ---------------------------------------------------------------------------------------
// Helpers

/// The differences between two trees, everything compared (see `tree`).
pub(crate) fn tree_diff(src: &Path, dst: &Path) -> Vec<String> {
    crate::tree::diff(src, dst, &crate::tree::EXACT)
}

/// Polls until every target equals `src`, everything compared; panics with the
/// differences, rpush's output and (through the fixtures' Drop) the daemons' logs.
#[track_caller]
pub(crate) fn wait_converged(what: &str, src: &Path, targets: &[&Path], rpush: &Proc) {
    crate::tree::wait_converged(what, src, targets, &crate::tree::EXACT, || rpush.dump());
}

/// A batch as rbatch -z writes it: absolute paths, NUL-terminated, then an empty record.
pub(crate) fn batch0(base: &Path, rels: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for r in rels {
        v.extend_from_slice(base.as_os_str().as_bytes());
        v.push(b'/');
        v.extend_from_slice(r);
        v.push(0);
    }
    v.push(0);
    v
}

pub(crate) fn send(stdin: &mut ChildStdin, data: &[u8]) {
    stdin.write_all(data).unwrap();
    stdin.flush().unwrap();
}

pub(crate) fn p(base: &Path, rel: &[u8]) -> PathBuf {
    base.join(OsStr::from_bytes(rel))
}

pub(crate) fn write_file(base: &Path, rel: &[u8], data: &[u8]) {
    let f = p(base, rel);
    fs::create_dir_all(f.parent().unwrap()).unwrap();
    fs::write(f, data).unwrap();
}

pub(crate) fn chmod(base: &Path, rel: &[u8], mode: u32) {
    fs::set_permissions(p(base, rel), fs::Permissions::from_mode(mode)).unwrap();
}

pub(crate) fn hosts_file(scratch: &Scratch, lines: &[String]) -> PathBuf {
    scratch.write("hosts", format!("# test targets\n\n{}\n", lines.join("\n")))
}

/// rpush with fast retries, reading batches from a pipe.
pub(crate) fn rpush_cmd(src: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(bin("rpush"));
    c.arg("-C")
        .arg(src)
        .args(["--retry-min", "100ms", "--retry-max", "500ms"])
        .args(extra);
    c.stdin(Stdio::piped());
    c
}

/// rpush's `--status` document, parsed (None while it does not exist or does not parse).
pub(crate) fn read_status(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

/// The entry of `host` in a status document.
#[track_caller]
pub(crate) fn host<'a>(status: &'a serde_json::Value, host: &str) -> &'a serde_json::Value {
    status["hosts"]
        .as_array()
        .and_then(|hs| hs.iter().find(|h| h["host"] == host))
        .unwrap_or_else(|| panic!("no host {host} in {status}"))
}

pub(crate) fn count(hay: &[u8], needle: &str) -> usize {
    let n = needle.as_bytes();
    hay.windows(n.len()).filter(|w| *w == n).count()
}

#[track_caller]
pub(crate) fn assert_stderr(out: &Output, needle: &str) {
    assert!(
        out.stderr_str().contains(needle),
        "stderr lacks {needle:?}:\n{}",
        out.stderr_str()
    );
}

// ---------------------------------------------------------------------------------------
// Delivery

/// The odd names of the issue: spaces, newline, leading dash, '#' and ';' (rsync's
/// comment characters), non-UTF-8 bytes.
const ODD: &[&[u8]] = &[
    b"sp ace",
    b"new\nline",
    b"-dash",
    b"#hash",
    b";semi",
    b"bad\xffname",
    b"-esh -c touch PWNED x",
];

#[test]
fn rpush_three_daemons_converge_with_odd_names() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let daemons: Vec<Daemon> = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
        .iter()
        .enumerate()
        .map(|(i, ip)| Daemon::start(&s, &format!("d{i}"), ip))
        .collect();
    let hosts = hosts_file(&s, &daemons.iter().map(|d| d.url()).collect::<Vec<_>>());
    let mut cmd = rpush_cmd(&src, &["-0", "-j", "2", "-H"]);
    cmd.arg(&hosts).arg("--password-file").arg(&daemons[0].password_file);
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    let targets: Vec<&Path> = daemons.iter().map(|d| d.module.as_path()).collect();

    // Round 1: create.
    let mut created: Vec<&[u8]> = Vec::new();
    for name in ODD {
        write_file(&src, name, name);
        created.push(name);
    }
    write_file(&src, b"dir/sub/deep.txt", b"deep");
    write_file(&src, b"dir/#in", b"in");
    write_file(&src, b"p/q/r/f", b"f");
    write_file(&src, b"exec.sh", b"#!/bin/sh\n");
    chmod(&src, b"exec.sh", 0o755);
    chmod(&src, b"sp ace", 0o600);
    symlink("sp ace", p(&src, b"link")).unwrap();
    let old = fs::File::options().write(true).open(p(&src, b"-dash")).unwrap();
    old.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000))
        .unwrap();
    drop(old);
    created.extend_from_slice(&[
        b"dir",
        b"dir/sub",
        b"dir/sub/deep.txt",
        b"dir/#in",
        b"p/q/r/f",
        b"exec.sh",
        b"link",
    ]);
    send(&mut stdin, &batch0(&src, &created));
    wait_converged("round 1 (create)", &src, &targets, &rp);
    assert!(!src.join("PWNED").exists() && !s.path().join("PWNED").exists());

    // Round 2: modify, chmod, delete, rename files and directories.
    write_file(&src, b"sp ace", b"changed content");
    chmod(&src, b"-dash", 0o700);
    fs::remove_file(p(&src, b"#hash")).unwrap();
    fs::remove_dir_all(p(&src, b"p")).unwrap();
    fs::rename(p(&src, b"dir"), p(&src, b"dir2")).unwrap();
    fs::rename(p(&src, b"new\nline"), p(&src, b"re named\nline")).unwrap();
    write_file(&src, b"dir2/x", b"x");
    fs::remove_file(p(&src, b"dir2/sub/deep.txt")).unwrap();
    // Listed the way a watcher reports them: the deleted subtree only by its deepest file.
    let round2: &[&[u8]] = &[
        b"sp ace",
        b"-dash",
        b"#hash",
        b"p/q/r/f",
        b"dir",
        b"dir2",
        b"new\nline",
        b"re named\nline",
        b"dir2/x",
        b"dir2/sub/deep.txt",
    ];
    send(&mut stdin, &batch0(&src, round2));
    wait_converged("round 2 (modify, delete, rename)", &src, &targets, &rp);

    // Round 3: a directory replaced by a file, a file by a directory.
    fs::remove_dir_all(p(&src, b"dir2/sub")).unwrap();
    write_file(&src, b"dir2/sub", b"now a file");
    fs::remove_file(p(&src, b"exec.sh")).unwrap();
    write_file(&src, b"exec.sh/inner", b"now a dir");
    send(&mut stdin, &batch0(&src, &[b"dir2/sub", b"exec.sh/inner", b"exec.sh"]));
    wait_converged("round 3 (type changes)", &src, &targets, &rp);

    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert!(!out.stderr_str().contains("failed"), "{}", out.stderr_str());
    for d in &daemons {
        assert!(
            contains(&out.stderr, format!("rpush: {}: pushed", d.ip).as_bytes()),
            "{}",
            out.stderr_str()
        );
    }
}

#[test]
fn rpush_plain_lines_relative_paths_and_outside_base() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let d = Daemon::start(&s, "d", "127.0.0.2");
    write_file(&src, b"a/one", b"1");
    write_file(&src, b"two words", b"2");
    let mut cmd = rpush_cmd(&src, &["-t", &d.url(), "--password-file"]);
    cmd.arg(&d.password_file).current_dir(s.path());
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    // No empty records: what arrives together is a batch. Relative to rpush's cwd.
    send(&mut stdin, b"src/a/one\n/etc/passwd\nsrc/two words\nsrc/a\n");
    wait_converged("plain lines", &src, &[&d.module], &rp);
    rp.wait_stderr("/etc/passwd: outside the base");
    // The base itself means everything below it, with deletions.
    fs::remove_dir_all(src.join("a")).unwrap();
    write_file(&src, b"three", b"3");
    send(&mut stdin, format!("{}\n", src.display()).as_bytes());
    wait_converged("base listed", &src, &[&d.module], &rp);
    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
}

#[test]
fn rpush_initial_sync_and_empty_base_refused() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let d = Daemon::start(&s, "d", "127.0.0.3");
    write_file(&src, b"keep/me", b"source");
    write_file(&d.module, b"keep/me", b"stale");
    write_file(&d.module, b"extra/file", b"only on the target");
    let mut cmd = rpush_cmd(&src, &["--initial", "-t", &d.url(), "--password-file"]);
    cmd.arg(&d.password_file).stdin(Stdio::null());
    let out = Proc::spawn(cmd).wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert!(
        tree_diff(&src, &d.module).is_empty(),
        "{:?}",
        tree_diff(&src, &d.module)
    );

    // An empty base (an unmounted disk) must not wipe the target.
    let empty = s.mkdir("empty");
    let mut cmd = rpush_cmd(
        &empty,
        &["--initial", "--drain-timeout", "1s", "-t", &d.url(), "--password-file"],
    );
    cmd.arg(&d.password_file).stdin(Stdio::null());
    let out = Proc::spawn(cmd).wait_exit(DEADLINE);
    assert_eq!(out.code, 1, "{}", out.stderr_str());
    assert_stderr(&out, "refusing to push: base");
    assert_stderr(&out, "127.0.0.3 lacks 1 path");
    assert!(d.module.join("keep/me").exists());
}

#[test]
fn rpush_on_push_runs_after_changes_only() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let hooks = s.mkdir("hooks");
    let d = Daemon::start(&s, "d", "127.0.0.4");
    let script = r#"printf '%s %s\n' "$1" "$RPUSH_DEST" >> "$0/calls"; cat >> "$0/$RPUSH_HOST.paths""#;
    let mut cmd = rpush_cmd(&src, &["-0", "-t", &d.url(), "--password-file"]);
    cmd.arg(&d.password_file)
        .args(["--on-push", "sh", "-c", script])
        .arg(&hooks)
        .args(["host={}", ";", "-v"]);
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    write_file(&src, b"f\nnl", b"1");
    send(&mut stdin, &batch0(&src, &[b"f\nnl"]));
    wait_converged("hooked push", &src, &[&d.module], &rp);
    rp.wait_stderr("--on-push sh -c");
    // The same path again: nothing changes on the target, so no hook.
    send(&mut stdin, &batch0(&src, &[b"f\nnl"]));
    rp.wait_for("second push", DEADLINE, |_, e| count(e, ": pushed 1 path") == 2);
    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    let calls = fs::read_to_string(hooks.join("calls")).unwrap();
    assert_eq!(calls, format!("host=127.0.0.4 {}\n", d.url()));
    let mut want = src.join("f\nnl").into_os_string().into_vec_bytes();
    want.push(0);
    assert_eq!(fs::read(hooks.join("127.0.0.4.paths")).unwrap(), want);
}

trait IntoVecBytes {
    fn into_vec_bytes(self) -> Vec<u8>;
}
impl IntoVecBytes for std::ffi::OsString {
    fn into_vec_bytes(self) -> Vec<u8> {
        use std::os::unix::ffi::OsStringExt;
        self.into_vec()
    }
}

#[test]
fn rpush_over_ssh() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let dst = s.mkdir("dst");
    let sshd = Sshd::start(&s);
    // A bare host through the -d template, and a user sshd does not know.
    let hosts = hosts_file(
        &s,
        &[
            "127.0.0.1".to_string(),
            format!("nosuchuser@127.0.0.1:{}/x", s.path().display()),
        ],
    );
    let mut cmd = rpush_cmd(&src, &["-0", "--drain-timeout", "2s", "-H"]);
    cmd.arg(&hosts)
        .arg("-d")
        .arg(format!("{{}}:{}", dst.display()))
        .arg("-e")
        .arg(sshd.rsh());
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    for name in ODD {
        write_file(&src, name, name);
    }
    write_file(&src, b"gone/deep/file", b"x");
    let mut all: Vec<&[u8]> = ODD.to_vec();
    all.push(b"gone/deep/file");
    send(&mut stdin, &batch0(&src, &all));
    wait_converged("ssh round 1", &src, &[&dst], &rp);
    fs::remove_dir_all(src.join("gone")).unwrap();
    fs::remove_file(p(&src, b"bad\xffname")).unwrap();
    send(&mut stdin, &batch0(&src, &[b"gone/deep/file", b"bad\xffname"]));
    wait_converged("ssh round 2", &src, &[&dst], &rp);
    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    // The unknown user is a permanent failure, reported once, and never delivered.
    assert_eq!(out.code, 1, "{}", out.stderr_str());
    assert_stderr(&out, "push failed (permanent, attempt 1): rsync exit ");
    assert_stderr(&out, "Permission denied");
    assert_eq!(count(&out.stderr, "push failed"), 1, "{}", out.stderr_str());
    assert_stderr(&out, "not delivered: nosuchuser@127.0.0.1:");
}

// ---------------------------------------------------------------------------------------
// Failures

#[test]
fn rpush_daemon_stopped_and_restarted_mid_run_converges() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let a = Daemon::start(&s, "a", "127.0.0.2");
    let mut b = Daemon::start(&s, "b", "127.0.0.3");
    let mut cmd = rpush_cmd(&src, &["-0", "-t", &a.url(), "-t", &b.url(), "--password-file"]);
    cmd.arg(&a.password_file);
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    write_file(&src, b"one", b"1");
    send(&mut stdin, &batch0(&src, &[b"one"]));
    wait_converged("both up", &src, &[&a.module, &b.module], &rp);

    b.stop();
    write_file(&src, b"two/deeper", b"2");
    fs::remove_file(src.join("one")).unwrap();
    send(&mut stdin, &batch0(&src, &[b"two/deeper", b"one"]));
    // The live host does not wait for the dead one.
    wait_converged("a while b is down", &src, &[&a.module], &rp);
    rp.wait_stderr("127.0.0.3: push failed (temporary, attempt 1): rsync exit 10");
    write_file(&src, b"three", b"3");
    send(&mut stdin, &batch0(&src, &[b"three"]));
    wait_converged("a again while b is down", &src, &[&a.module], &rp);

    b.restart();
    wait_converged("b after restart", &src, &[&a.module, &b.module], &rp);
    rp.wait_stderr("127.0.0.3: recovered after");
    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
}

#[test]
fn rpush_wrong_password_is_reported_and_exits_1() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let good = Daemon::start(&s, "good", "127.0.0.2");
    let bad = Daemon::start(&s, "bad", "127.0.0.3");
    // The daemon reads its secrets file on each login: change the password under it.
    fs::write(bad.dir.join("secrets"), "pusher:another\n").unwrap();
    let status = s.join("status.json");
    let mut cmd = rpush_cmd(
        &src,
        &[
            "-0",
            "--drain-timeout",
            "2s",
            "-t",
            &good.url(),
            "-t",
            &bad.url(),
            "--password-file",
        ],
    );
    cmd.arg(&good.password_file).arg("--status").arg(&status);
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    write_file(&src, b"f", b"1");
    write_file(&src, b"g", b"2");
    send(&mut stdin, &batch0(&src, &[b"f", b"g"]));
    wait_converged("the good host", &src, &[&good.module], &rp);
    rp.wait_stderr("@ERROR: auth failed on module mod");
    rp.wait_for("a few retries", DEADLINE, |_, _| {
        read_status(&status).is_some_and(|j| host(&j, "127.0.0.3")["consecutive_failures"] == 2)
    });
    let json = read_status(&status).unwrap();
    assert_eq!(json["state"], "running", "{json}");
    let bad = host(&json, "127.0.0.3");
    assert_eq!(bad["pending"], 2, "{json}");
    assert_eq!(
        bad["last_error"], "rsync exit 5 (error starting client-server protocol): @ERROR: auth failed on module mod",
        "{json}"
    );
    drop(stdin);
    let t0 = Instant::now();
    let out = rp.wait_exit(DEADLINE);
    assert!(t0.elapsed() < Duration::from_secs(10), "drain took {:?}", t0.elapsed());
    assert_eq!(out.code, 1, "{}", out.stderr_str());
    // Reported loudly once (a change of state), not on every retry.
    assert_eq!(count(&out.stderr, "auth failed"), 2, "{}", out.stderr_str()); // the failure + the summary
    assert_stderr(&out, "push failed (permanent, attempt 1)");
    assert_stderr(&out, "not delivered: 127.0.0.3 lacks 2 paths");
    let json = read_status(&status).unwrap();
    assert_eq!(json["state"], "drain timeout", "{json}");
    let good_host = host(&json, "127.0.0.2");
    assert_eq!(good_host["dest"], good.url().as_str(), "{json}");
    assert_eq!(
        (&good_host["pending"], &good_host["running"], &good_host["pushes"]),
        (&0.into(), &false.into(), &1.into()),
        "{json}"
    );
}

#[test]
fn rpush_unknown_module() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let d = Daemon::start(&s, "d", "127.0.0.4");
    let mut cmd = rpush_cmd(
        &src,
        &["--drain-timeout", "1s", "-t", &d.url_for("nomod"), "--password-file"],
    );
    cmd.arg(&d.password_file);
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    write_file(&src, b"f", b"1");
    send(&mut stdin, format!("{}\n\n", src.join("f").display()).as_bytes());
    rp.wait_stderr("@ERROR: Unknown module 'nomod'");
    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 1, "{}", out.stderr_str());
    assert_stderr(&out, "push failed (permanent, attempt 1): rsync exit 5");
    assert_stderr(&out, "not delivered: 127.0.0.4 lacks 1 path");
}

#[test]
fn rpush_nothing_listening_does_not_delay_others() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let good = Daemon::start(&s, "good", "127.0.0.2");
    let dead = format!("rsync://pusher@127.0.0.5:{}/mod/", free_port("127.0.0.5"));
    let mut cmd = rpush_cmd(
        &src,
        &[
            "-0",
            "-j",
            "1",
            "--drain-timeout",
            "2s",
            "-t",
            &dead,
            "-t",
            &good.url(),
            "--password-file",
        ],
    );
    cmd.arg(&good.password_file);
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    for i in 0..3 {
        let name = format!("f{i}");
        write_file(&src, name.as_bytes(), b"x");
        send(&mut stdin, &batch0(&src, &[name.as_bytes()]));
        wait_converged("the live host", &src, &[&good.module], &rp);
    }
    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 1, "{}", out.stderr_str());
    assert_stderr(
        &out,
        "127.0.0.5: push failed (temporary, attempt 1): rsync exit 10 (error in socket I/O)",
    );
    assert_stderr(&out, "Connection refused");
    assert_stderr(&out, "not delivered: 127.0.0.5 lacks 3 paths");
}

#[test]
fn rpush_max_connections_is_temporary() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let d = Daemon::start_with(&s, "d", "127.0.0.3", "    max connections = 1\n");
    // Take the only slot: greet, pick the module, then sit on the password challenge.
    let mut holder = std::net::TcpStream::connect((d.ip.as_str(), d.port)).unwrap();
    let mut greeting = BufReader::new(holder.try_clone().unwrap());
    let mut line = String::new();
    greeting.read_line(&mut line).unwrap();
    holder.write_all(format!("{}mod\n", line).as_bytes()).unwrap();
    line.clear();
    greeting.read_line(&mut line).unwrap();
    assert!(line.starts_with("@RSYNCD: AUTHREQD"), "{line}");

    let mut cmd = rpush_cmd(&src, &["-0", "-t", &d.url(), "--password-file"]);
    cmd.arg(&d.password_file);
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    write_file(&src, b"f", b"1");
    send(&mut stdin, &batch0(&src, &[b"f"]));
    rp.wait_stderr("push failed (temporary, attempt 1): rsync exit 5 (error starting client-server protocol): @ERROR: max connections (1) reached -- try again later");
    drop(greeting);
    drop(holder);
    wait_converged("after the slot is free", &src, &[&d.module], &rp);
    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
}

#[test]
fn rpush_watchdog_kills_a_silent_listener() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    // Accepts connections and never says a word (rsync's --contimeout does not help).
    // rpush's own greeting check (--contimeout) would catch it first: off here, so
    // that the watchdog is what is tested.
    let listener = TcpListener::bind("127.0.0.6:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().flatten() {
            held.push(c);
        }
    });
    let url = format!("rsync://pusher@127.0.0.6:{port}/mod/");
    let mut cmd = rpush_cmd(
        &src,
        &[
            "--timeout",
            "0",
            "--contimeout",
            "0",
            "--watchdog",
            "500ms",
            "--drain-timeout",
            "1500ms",
            "-t",
            &url,
        ],
    );
    cmd.stdin(Stdio::piped());
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    write_file(&src, b"f", b"1");
    send(&mut stdin, format!("{}\n", src.join("f").display()).as_bytes());
    rp.wait_stderr("127.0.0.6: push failed (temporary, attempt 1): killed by the watchdog (no progress)");
    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 1, "{}", out.stderr_str());
}

// ---------------------------------------------------------------------------------------
// Usage errors: exit 2 before anything runs.

#[test]
fn rpush_malformed_hosts_line_is_a_usage_error() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let hosts = s.write("hosts", "# comment\nweb1\nweb 2\nweb3\n");
    let out = crate::util::run({
        let mut c = Command::new(bin("rpush"));
        c.arg("-C").arg(&src).arg("-H").arg(&hosts);
        c
    });
    assert_eq!(out.code, 2);
    let want = format!("rpush: {}:3: unexpected whitespace in target 'web 2'", hosts.display());
    assert!(out.stderr_str().starts_with(&want), "{}", out.stderr_str());
}

#[test]
fn rpush_other_usage_errors() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let open_pw = s.write("pw", "x\n");
    fs::set_permissions(&open_pw, fs::Permissions::from_mode(0o644)).unwrap();
    let src_s = src.to_str().unwrap();
    let pw_s = open_pw.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["-C", src_s], "rpush: no targets: give -H FILE or -t DEST"),
        (&["--initial", "-t", "h:/x"], "rpush: --initial needs an explicit -C"),
        (
            &["-C", src_s, "-t", "h::m", "--password-file", pw_s],
            "must not be accessible by others",
        ),
        (
            &["-C", src_s, "-t", "h", "-d", "h::m"],
            "rpush: --dest: 'h::m' has no '{}'",
        ),
        (&["-C", src_s, "-t", "/local/dir"], "is a local path, not a target"),
        (&["-C", src_s, "-t", "h:/x", "-t", "h:/x"], "duplicate target 'h:/x'"),
        (
            &["-C", "/nonexistent/base", "-t", "h:/x"],
            "rpush: -C /nonexistent/base: No such file or directory",
        ),
        (
            &["-C", src_s, "-t", "h:/x", "--retry-max", "soon"],
            "rpush: invalid value 'soon' for '--retry-max",
        ),
        (
            &["-C", src_s, "-t", "h:/x", "--rsync", "/nonexistent/rsync"],
            "rpush: --rsync /nonexistent/rsync: not found",
        ),
        (
            &["-C", src_s, "-t", "h:/x", "--on-push", "no-such-program-here"],
            "rpush: --on-push no-such-program-here: not found",
        ),
        (&["--frobnicate"], "rpush: unexpected argument '--frobnicate'"),
        (
            &["-C", src_s, "-H", "/nonexistent/hosts"],
            "rpush: /nonexistent/hosts: No such file or directory",
        ),
        (
            &["-C", src_s, "-t", "h:/x", "--status", "/nonexistent/dir/status.json"],
            "rpush: --status /nonexistent/dir/status.json: No such file",
        ),
    ];
    for (args, want) in cases {
        let out = crate::util::run({
            let mut c = Command::new(bin("rpush"));
            c.args(*args);
            c
        });
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr_str());
        assert!(
            out.stderr_str().contains(want),
            "{args:?}: want {want:?}, got:\n{}",
            out.stderr_str()
        );
    }
}

#[test]
fn rpush_help_shows_usage() {
    // The man page and completions are checked for every tool in tests/it/docs.rs.
    let out = crate::util::run({
        let mut c = Command::new(bin("rpush"));
        c.arg("--help");
        c
    });
    assert_eq!(out.code, 0);
    assert!(
        out.stdout_str()
            .contains("Usage: rpush [OPTIONS] [-- <RSYNC_OPTIONS>...]"),
        "{}",
        out.stdout_str()
    );
}

// ---------------------------------------------------------------------------------------
// Pipelines

/// Starts `prog args` with stdout piped and waits for "Watches established." on its
/// stderr (inotifywait's and rwait's readiness line).
fn start_watcher(prog: &Path, args: &[&OsStr]) -> (std::process::Child, std::process::ChildStdout) {
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", prog.display()));
    let out = child.stdout.take().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let mut seen = String::new();
        while err.read_line(&mut line).is_ok_and(|n| n > 0) {
            seen.push_str(&line);
            if line.contains("Watches established") {
                let _ = tx.send(Ok(()));
                // Keep draining so the watcher never blocks on stderr.
                let _ = std::io::copy(&mut err, &mut std::io::sink());
                return;
            }
            line.clear();
        }
        let _ = tx.send(Err(seen));
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(Ok(())) => (child, out),
        other => {
            let _ = child.kill();
            panic!("{} never established its watches: {other:?}", prog.display());
        }
    }
}

fn do_real_work(src: &Path) {
    write_file(src, b"a file", b"1");
    write_file(src, b"dir/sub/f", b"2");
    write_file(src, b"-lead", b"3");
    write_file(src, b"#tag", b"4");
    fs::create_dir(src.join("moved-in-src")).ok();
    chmod(src, b"a file", 0o640);
}

fn do_more_work(src: &Path) {
    fs::rename(src.join("dir"), src.join("dir renamed")).unwrap();
    fs::remove_file(src.join("#tag")).unwrap();
    write_file(src, b"-lead", b"changed");
    let mut f = fs::OpenOptions::new().append(true).open(src.join("a file")).unwrap();
    f.write_all(b" more").unwrap();
}

#[test]
fn rpush_pipeline_with_inotifywait() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let d = Daemon::start(&s, "d", "127.0.0.4");
    let (mut iw, iw_out) = start_watcher(
        Path::new("inotifywait"),
        &[
            OsStr::new("-mr"),
            OsStr::new("--format"),
            OsStr::new("%w%f"),
            OsStr::new("-e"),
            OsStr::new("modify,create,delete,moved_to,moved_from,attrib,close_write"),
            src.as_os_str(),
        ],
    );
    let mut cmd = Command::new(bin("rpush"));
    cmd.arg("-C")
        .arg(&src)
        .args(["--retry-min", "100ms", "-t", &d.url(), "--password-file"])
        .arg(&d.password_file);
    cmd.stdin(Stdio::from(iw_out));
    let rp = Proc::spawn(cmd);
    do_real_work(&src);
    wait_converged("inotifywait | rpush, round 1", &src, &[&d.module], &rp);
    do_more_work(&src);
    wait_converged("inotifywait | rpush, round 2", &src, &[&d.module], &rp);
    let _ = iw.kill();
    let _ = iw.wait();
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
}

#[test]
fn rpush_pipeline_with_rwait_and_rbatch() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let d = Daemon::start(&s, "d", "127.0.0.2");
    let (mut rw, rw_out) = start_watcher(
        &bin("rwait"),
        &[
            OsStr::new("-mr"),
            OsStr::new("-e"),
            OsStr::new("modify,create,delete,moved_to,moved_from,attrib,close_write"),
            src.as_os_str(),
        ],
    );
    let mut rb = Command::new(bin("rbatch"))
        .arg("300ms")
        .stdin(Stdio::from(rw_out))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn rbatch");
    let mut cmd = Command::new(bin("rpush"));
    cmd.arg("-C")
        .arg(&src)
        .args(["--retry-min", "100ms", "-t", &d.url(), "--password-file"])
        .arg(&d.password_file);
    cmd.stdin(Stdio::from(rb.stdout.take().unwrap()));
    let rp = Proc::spawn(cmd);
    do_real_work(&src);
    wait_converged("rwait | rbatch | rpush, round 1", &src, &[&d.module], &rp);
    do_more_work(&src);
    wait_converged("rwait | rbatch | rpush, round 2", &src, &[&d.module], &rp);
    let _ = rw.kill();
    let _ = rw.wait();
    let _ = rb.wait();
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
}

// ---------------------------------------------------------------------------------------
// Other run-time failures

#[test]
fn rpush_sigterm_stops_and_reports_what_is_pending() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let status_dir = s.mkdir("status");
    let status = status_dir.join("status.json");
    let dead = format!("rsync://pusher@127.0.0.5:{}/mod/", free_port("127.0.0.5"));
    let mut cmd = rpush_cmd(&src, &["-t", &dead, "--retry-min", "1s", "--retry-max", "1s"]);
    cmd.arg("--status").arg(&status);
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    write_file(&src, b"f", b"1");
    send(&mut stdin, format!("{}\n\n", src.join("f").display()).as_bytes());
    rp.wait_stderr("127.0.0.5: push failed (temporary, attempt 1)");
    // The status file's directory vanishes: reported, and rpush goes on.
    fs::remove_dir_all(&status_dir).unwrap();
    rp.wait_stderr(&format!("--status {}: No such file or directory", status.display()));
    rp.signal(libc::SIGTERM);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 1, "{}", out.stderr_str());
    assert_stderr(&out, "signal received: stopping");
    assert_stderr(&out, "not delivered: 127.0.0.5 lacks 1 path");
    drop(stdin);
}

#[test]
fn rpush_unreadable_stdin_is_reported() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let mut cmd = rpush_cmd(&src, &["-t", "127.0.0.5::mod"]);
    // A directory opens fine and fails on read(2) with EISDIR.
    cmd.stdin(fs::File::open(&src).unwrap());
    let out = Proc::spawn(cmd).wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_stderr(&out, "rpush: reading stdin: Is a directory");
}

#[test]
fn rpush_rsync_gone_at_run_time_and_failing_hook() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let d = Daemon::start(&s, "d", "127.0.0.6");
    let wrapper = s.write("my-rsync", "#!/bin/sh\nexec rsync \"$@\"\n");
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = rpush_cmd(
        &src,
        &["-0", "--drain-timeout", "1s", "-t", &d.url(), "--password-file"],
    );
    cmd.arg(&d.password_file)
        .arg("--rsync")
        .arg(&wrapper)
        .args(["--on-push", "sh", "-c", "echo hook says hi; exit 3"]);
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    write_file(&src, b"f", b"1");
    send(&mut stdin, &batch0(&src, &[b"f"]));
    wait_converged("through the wrapper", &src, &[&d.module], &rp);
    rp.wait_stderr("127.0.0.6: --on-push: hook says hi");
    rp.wait_stderr("127.0.0.6: --on-push sh -c 'echo hook says hi; exit 3': exit status 3");
    fs::remove_file(&wrapper).unwrap();
    write_file(&src, b"g", b"2");
    send(&mut stdin, &batch0(&src, &[b"g"]));
    rp.wait_stderr("push failed (permanent, attempt 1): could not start rsync:");
    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 1, "{}", out.stderr_str());
    assert_stderr(&out, "my-rsync: No such file or directory");
}

#[test]
fn rpush_exit_24_is_success_and_vanished_paths_go_round_again() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let d = Daemon::start(&s, "d", "127.0.0.2");
    // rsync exits 24 when a listed file vanishes mid-transfer, a race no test can time.
    // This wrapper stages it: the first push delivers `victim`, which then disappears
    // from the source, and reports 24 the way rsync would.
    let wrapper = s.write(
        "rsync-24",
        "#!/bin/sh\nrsync \"$@\"\nrc=$?\nif [ -e \"$MARK\" ]; then rm -f \"$MARK\" \"$VICTIM\"; exit 24; fi\nexit $rc\n",
    );
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    let mark = s.write("mark", "");
    write_file(&src, b"victim", b"soon gone");
    // (An empty base would make rpush refuse to push at all.)
    write_file(&src, b"keeper", b"stays");
    let mut cmd = rpush_cmd(&src, &["-t", &d.url(), "--password-file"]);
    cmd.arg(&d.password_file)
        .arg("--rsync")
        .arg(&wrapper)
        .env("MARK", &mark)
        .env("VICTIM", src.join("victim"));
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    send(
        &mut stdin,
        format!("{}\n{}\n\n", src.join("keeper").display(), src.join("victim").display()).as_bytes(),
    );
    rp.wait_stderr("some files vanished during the transfer (exit 24)");
    // Not a failure: the vanished path is pushed again, as a deletion.
    rp.wait_stderr("127.0.0.2: pushed 1 path (1 deleted, 0 updated)");
    wait_converged("after the vanished file", &src, &[&d.module], &rp);
    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert!(!out.stderr_str().contains("failed"), "{}", out.stderr_str());
}

// ---------------------------------------------------------------------------------------
// Progress on a terminal (issue 7)

/// A source whose push takes a few seconds under `--bwlimit`: 60 files of 40 kB, so
/// rsync reports items all along.
fn slow_source(s: &Scratch) -> PathBuf {
    let src = s.mkdir("src");
    let mut x: u32 = 7;
    for i in 0..60 {
        let data: Vec<u8> = (0..40_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        write_file(&src, format!("f{i:02}").as_bytes(), &data);
    }
    src
}

#[test]
fn rpush_progress_stays_off_when_stderr_is_not_a_terminal() {
    let s = Scratch::new();
    let src = slow_source(&s);
    let d = Daemon::start(&s, "a", "127.0.0.2");
    let mut cmd = rpush_cmd(&src, &["--initial", "-t", &d.url(), "--password-file"]);
    cmd.arg(&d.password_file).args(["--", "--bwlimit=1000"]);
    cmd.stdin(Stdio::null());
    let rp = Proc::spawn(cmd);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_stderr(&out, "127.0.0.2: pushed 1 path");
    // The push ran well past the progress delay, yet the log has no progress line.
    assert!(
        !out.stderr.contains(&b'\r') && !out.stderr_str().contains("pushing:"),
        "{}",
        out.stderr_str()
    );
}

#[test]
fn rpush_progress_shows_files_and_bytes_on_a_terminal() {
    let script = Command::new("script").arg("--version").output();
    if crate::util::require(script.map_err(|e| format!("script(1) (bsdutils) cannot run: {e}"))).is_none() {
        return;
    }
    let s = Scratch::new();
    let src = slow_source(&s);
    let d = Daemon::start(&s, "a", "127.0.0.2");
    // script(1) runs rpush on a pseudo-terminal; its own stdout is the terminal's output.
    let inner = format!(
        "{} -C {} --initial -t {} --password-file {} -- --bwlimit=1000 </dev/null",
        bin("rpush").display(),
        src.display(),
        d.url(),
        d.password_file.display()
    );
    let mut cmd = Command::new("script");
    cmd.args(["-qfec", &inner, "/dev/null"]).stdin(Stdio::null());
    let out = Proc::spawn(cmd).wait_exit(DEADLINE);
    let text = out.stdout_str();
    assert_eq!(out.code, 0, "{text}\n{}", out.stderr_str());
    assert!(
        text.contains("\r\x1b[Krpush: pushing: 127.0.0.2: "),
        "no progress line:\n{text:?}"
    );
    assert!(text.contains(" files, "), "{text:?}");
    // The log line after the push clears the progress line first.
    assert!(text.contains("\r\x1b[K"), "{text:?}");
    assert!(text.contains("127.0.0.2: pushed 1 path"), "{text:?}");
}
