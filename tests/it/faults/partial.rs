//! Partial failures (issue 12, item 2): one file rsync cannot read (exit 23, run as an
//! unprivileged user with a mode-600 file of root's in the batch) must not make the whole
//! push count as failed. The other paths are delivered and their hook runs; only the
//! unreadable path stays pending (journaled, retried, named in the log, the status file
//! and the final summary), and later pushes to that host go on as if nothing happened.

use std::fs;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::rpush::{assert_stderr, chmod, count, send, write_file};
use crate::rsyncd::Daemon;
use crate::util::{DEADLINE, Proc, Scratch, bin, require};

const NOBODY: u32 = 65534;

/// Root (to hand a file to another user) and setpriv(1), or the reason not.
fn can_drop_privileges() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let setpriv = Command::new("setpriv").arg("--version").output().is_ok();
    if root && setpriv {
        Ok(())
    } else {
        Err("needs root and setpriv(1) to run rpush as an unprivileged user".into())
    }
}

/// rpush as user nobody (`setpriv`), fast retries.
fn rpush_as_nobody(src: &Path, args: &[&std::ffi::OsStr]) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin("rpush"))
        .arg("-C")
        .arg(src)
        .args(["--retry-min", "200ms", "--retry-max", "1s"])
        .args(args)
        .stdin(Stdio::piped());
    c
}

/// A directory user nobody owns.
fn nobody_dir(s: &Scratch, rel: &str) -> std::path::PathBuf {
    let d = s.mkdir(rel);
    chown(&d, Some(NOBODY), Some(NOBODY)).unwrap();
    d
}

/// Polls until `file` holds at least `n` lines `---` (one per hook run).
fn wait_hook_runs(file: &Path, n: usize, rp: &Proc) -> String {
    let end = Instant::now() + DEADLINE;
    loop {
        let text = fs::read_to_string(file).unwrap_or_default();
        if text.lines().filter(|l| *l == "---").count() >= n {
            return text;
        }
        assert!(
            Instant::now() < end,
            "hook ran fewer than {n} times:\n{text}\n{}",
            rp.dump()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn faults_unreadable_file_fails_alone_and_the_rest_is_delivered() {
    if require(can_drop_privileges()).is_none() {
        return;
    }
    let s = Scratch::new();
    fs::set_permissions(s.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let src = s.mkdir("src");
    let d = Daemon::start(&s, "a", "127.0.0.2");
    // The daemon's client password file, readable by the unprivileged rpush.
    let pw = s.join("nobody.pass");
    fs::copy(&d.password_file, &pw).unwrap();
    chown(&pw, Some(NOBODY), Some(NOBODY)).unwrap();
    let marks = nobody_dir(&s, "marks");
    let state = nobody_dir(&s, "state");
    let status = nobody_dir(&s, "run").join("status.json");
    write_file(&src, b"www.conf", b"pm = dynamic\n");
    write_file(&src, b"other.txt", b"other\n");
    write_file(&src, b"secret", b"root only\n");
    chmod(&src, b"secret", 0o600);

    let hook_log = marks.join("log");
    let hook = r#"cat >> "$0"; echo --- >> "$0""#;
    let mut cmd = rpush_as_nobody(
        &src,
        &[
            "-t".as_ref(),
            d.url().as_ref(),
            "--password-file".as_ref(),
            pw.as_os_str(),
            "--state-dir".as_ref(),
            state.as_os_str(),
            "--status".as_ref(),
            status.as_os_str(),
            "--drain-timeout".as_ref(),
            "2s".as_ref(),
            "--on-push".as_ref(),
            "sh".as_ref(),
            "-c".as_ref(),
            hook.as_ref(),
            hook_log.as_os_str(),
            ";".as_ref(),
        ],
    );
    cmd.current_dir(s.path());
    let mut rp = Proc::spawn(cmd);
    let mut stdin = rp.stdin();
    let line = |rel: &str| format!("{}/{rel}\n", src.display());
    send(
        &mut stdin,
        format!("{}{}{}\n", line("www.conf"), line("secret"), line("other.txt")).as_bytes(),
    );

    // The readable two arrive and their hook runs, told about them and not the secret.
    let text = wait_hook_runs(&hook_log, 1, &rp);
    assert!(text.contains("/www.conf\n") && text.contains("/other.txt\n"), "{text}");
    assert!(
        !text.contains("secret"),
        "hook told about the undelivered file:\n{text}"
    );
    assert_eq!(fs::read(d.module.join("www.conf")).unwrap(), b"pm = dynamic\n");
    assert_eq!(fs::read(d.module.join("other.txt")).unwrap(), b"other\n");
    assert!(!d.module.join("secret").exists());
    rp.wait_stderr("1 path not delivered (attempt 1): secret: ");

    // A later change to that host is pushed and its hook runs again.
    write_file(&src, b"www.conf", b"pm = static\n");
    send(&mut stdin, format!("{}\n", line("www.conf")).as_bytes());
    wait_hook_runs(&hook_log, 2, &rp);
    assert_eq!(fs::read(d.module.join("www.conf")).unwrap(), b"pm = static\n");
    let doc = fs::read_to_string(&status).unwrap();
    assert!(doc.contains("\"failing\": [\"secret\"]"), "{doc}");

    // At the end only the secret is missing, and the summary says exactly that.
    drop(stdin);
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 1, "{}", out.stderr_str());
    assert_stderr(
        &out,
        "lacks 1 path (not transferred: secret: rsync: [sender] send_files failed to open",
    );
    assert!(!out.stderr_str().contains("push failed"), "{}", out.stderr_str());
    assert!(count(out.stderr.as_slice(), "not delivered (attempt") >= 1);

    // The journal kept it: a run that can read it (root) delivers it with no new input.
    let mut c = Command::new(bin("rpush"));
    c.arg("-C")
        .arg(&src)
        .args(["-t", &d.url(), "--password-file"])
        .arg(&d.password_file)
        .arg("--state-dir")
        .arg(&state)
        .stdin(Stdio::null());
    let out = Proc::spawn(c).wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert_stderr(&out, "replaying 1 pending path");
    assert_eq!(fs::read(d.module.join("secret")).unwrap(), b"root only\n");
}
