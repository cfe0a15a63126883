//! Fragments of file names with newlines are not paths, and rpush never acts on them as
//! if they were (issue 11). A watcher in newline mode prints `a<LF>secret.txt` as two
//! lines; whatever rbatch makes of them, rpush must not read outside the base (a private
//! `secret.txt` in its working directory), delete outside it (`victim`), or sync the base
//! as a whole (`.`). Run through the headline pipeline without `-C` (the base is `/`),
//! with the real inotifywait and with rwait in front; and fed to rpush directly, each
//! refusal by itself.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::rpush::{assert_stderr, send, write_file};
use crate::rsyncd::Daemon;
use crate::util::{DEADLINE, Output, Proc, Scratch, bin, contains, wait_exists};

/// Where `abs` (an absolute local path) lands in a module that mirrors `/`.
fn mirrored(module: &Path, abs: &Path) -> PathBuf {
    module.join(abs.strip_prefix("/").unwrap())
}

/// rpush's working directory with what a fragment could reach: a private file, and a
/// file name whose copy on the host a fragment could delete.
struct Bait {
    cwd: PathBuf,
}

impl Bait {
    fn new(s: &Scratch, d: &Daemon) -> Bait {
        let cwd = s.mkdir("cwd");
        let secret = s.write("cwd/secret.txt", "TOP SECRET\n");
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
        // `victim` exists on the host only: a sync of cwd/victim would delete it there.
        let victim = mirrored(&d.module, &cwd.join("victim"));
        fs::create_dir_all(victim.parent().unwrap()).unwrap();
        fs::write(&victim, "keep me\n").unwrap();
        Bait { cwd }
    }

    #[track_caller]
    fn untouched(&self, d: &Daemon, log: &str) {
        let on_host = mirrored(&d.module, &self.cwd);
        assert!(
            !on_host.join("secret.txt").exists(),
            "rpush copied a file from outside the tree to the host:\n{log}"
        );
        assert!(
            on_host.join("victim").exists(),
            "rpush deleted a file outside the tree on the host:\n{log}"
        );
    }
}

fn pipeline_with(watcher: &str) {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let d = Daemon::start(&s, "a", "127.0.0.2");
    let bait = Bait::new(&s, &d);

    let watch_bin = if watcher == "inotifywait" {
        PathBuf::from("inotifywait")
    } else {
        bin("rwait")
    };
    // inotifywait's default output format, as the seeds' scripts use it.
    let mut w = Command::new(watch_bin);
    w.args(["-mr", "-e", "close_write,create,delete,moved_to,moved_from"])
        .arg(&src)
        .current_dir(&bait.cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut w = w.spawn().expect("spawn the watcher");
    let mut err = w.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !contains(&seen, b"Watches established.") {
        let n = std::io::Read::read(&mut err, &mut buf).unwrap();
        assert!(n > 0, "{watcher} ended: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let mut rb = Command::new(bin("rbatch"))
        .arg("200ms")
        .current_dir(&bait.cwd)
        .stdin(Stdio::from(w.stdout.take().unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rbatch");
    // The headline invocation: no -C, so the base is /.
    let mut cmd = Command::new(bin("rpush"));
    cmd.args(["--retry-min", "100ms", "-t", &d.url(), "--password-file"])
        .arg(&d.password_file)
        .current_dir(&bait.cwd)
        .stdin(Stdio::from(rb.stdout.take().unwrap()));
    let rp = Proc::spawn(cmd);

    for name in [&b"a\nsecret.txt"[..], b"b\nvictim", b"x\n."] {
        write_file(&src, name, b"bait");
    }
    // Written after the bait: once it is on the host, the batches before it were pushed.
    write_file(&src, b"marker", b"m");
    wait_exists("the marker", &mirrored(&d.module, &src.join("marker")), || rp.dump());
    bait.untouched(&d, &rp.dump());
    let _ = w.kill();
    let _ = w.wait();
    let _ = rb.wait();
    let out = rp.wait_exit(DEADLINE);
    bait.untouched(&d, &out.stderr_str());
    // Whole syncs of the working directory (`.`) never happened either.
    assert!(
        !mirrored(&d.module, &bait.cwd).join("secret.txt").exists(),
        "{}",
        out.stderr_str()
    );
}

#[test]
fn faults_newline_fragments_from_inotifywait_never_reach_outside_the_tree() {
    pipeline_with("inotifywait");
}

#[test]
fn faults_newline_fragments_from_rwait_never_reach_outside_the_tree() {
    pipeline_with("rwait");
}

/// Each record rpush refuses, fed to it directly (as any upstream could send it), with
/// its message and the exit status that says something was refused.
#[test]
fn faults_rpush_refuses_records_that_are_not_paths_inside_the_base() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let d = Daemon::start(&s, "a", "127.0.0.2");
    let bait = Bait::new(&s, &d);
    write_file(&src, b"ok", b"ok");

    // Without -C: relative records (fragments) and a sync of / are refused; the
    // absolute path in the same batch is delivered.
    let mut cmd = Command::new(bin("rpush"));
    cmd.args(["-t", &d.url(), "--password-file"])
        .arg(&d.password_file)
        .current_dir(&bait.cwd)
        .stdin(Stdio::piped());
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    let mut input = b"secret.txt\nvictim\n.\n/\n".to_vec();
    input.extend_from_slice(src.join("ok").as_os_str().as_bytes());
    input.extend_from_slice(b"\n");
    // A NUL inside a newline-terminated record: rsync's --from0 list would read `..`.
    input.extend_from_slice(src.as_os_str().as_bytes());
    input.extend_from_slice(b"/ok\0..\n\n");
    send(&mut stdin, &input);
    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 1, "{}", out.stderr_str());
    assert_stderr(&out, "input record secret.txt: a relative path without -C, refused");
    assert_stderr(&out, "input record victim: a relative path without -C, refused");
    assert_stderr(&out, "input record .: a relative path without -C, refused");
    assert_stderr(&out, "input record /: a sync of the whole base / ");
    assert_stderr(&out, "holds a NUL byte, refused");
    assert_stderr(&out, "5 input records refused");
    assert!(mirrored(&d.module, &src.join("ok")).exists(), "{}", out.stderr_str());
    bait.untouched(&d, &out.stderr_str());

    // With -C: the base by its own name is a full sync; a record that only resolves to
    // it (`src/x/..`, `src/.`) is not.
    fs::create_dir_all(d.module.join("mirror")).unwrap();
    let with_c = |input: &[u8]| -> Output {
        let mut cmd = Command::new(bin("rpush"));
        cmd.arg("-C")
            .arg("src")
            .args(["-t", &d.url_for("mod/mirror"), "--password-file"])
            .arg(&d.password_file)
            .current_dir(s.path())
            .stdin(Stdio::piped());
        let mut rp = Proc::spawn(cmd);
        let mut stdin = rp.stdin();
        send(&mut stdin, input);
        drop(stdin);
        rp.wait_exit(DEADLINE)
    };
    let out = with_c(b"src/x/..\nsrc/.\n\n");
    assert_eq!(out.code, 1, "{}", out.stderr_str());
    assert_stderr(&out, "input record src/x/..: names the whole base");
    assert_stderr(&out, "input record src/.: names the whole base");
    assert!(!d.module.join("mirror/ok").exists(), "{}", out.stderr_str());

    let out = with_c(b"src/\n\n");
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert!(d.module.join("mirror/ok").exists(), "{}", out.stderr_str());
}
