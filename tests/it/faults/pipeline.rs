//! The whole pipeline under load: a kernel queue that really overflows (rwait stopped
//! while more than 16,384 events happen), and a consumer stopped during a burst. Either
//! way every change made meanwhile reaches the target: through rwait's Q_OVERFLOW line,
//! rbatch's resync of the root and rpush's full sync; or through rwait's memory queue.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::rpush::{wait_converged, write_file};
use crate::rsyncd::Daemon;
use crate::util::{DEADLINE, Proc, Scratch, bin, contains};

const EVENTS: &str = "modify,create,delete,moved_to,moved_from,attrib,close_write";

fn sh(dir: &Path, script: &str) {
    let st = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(st.success(), "{script}: {st}");
}

/// The pipeline, started: rwait (ready), rbatch, rpush. rwait's stderr is collected.
pub(super) struct Pipeline {
    rw: Child,
    rw_err: Arc<Mutex<Vec<u8>>>,
    rb: Child,
    pub(super) rp: Proc,
}

impl Pipeline {
    pub(super) fn start(src: &Path, d: &[&Daemon], initial: bool) -> Pipeline {
        Self::start_with(src, d, initial, "-mr")
    }

    /// The pipeline with rwait's backend and mode flags `flags` (`-mr`, `-mF`).
    pub(super) fn start_with(src: &Path, d: &[&Daemon], initial: bool, flags: &str) -> Pipeline {
        let mut rw = Command::new(bin("rwait"))
            .args([flags, "-e", EVENTS])
            .arg(src)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rwait");
        let mut err = rw.stderr.take().unwrap();
        let rw_err: Arc<Mutex<Vec<u8>>> = Arc::default();
        let mut buf = [0u8; 4096];
        while !contains(&rw_err.lock().unwrap(), b"Watches established.") {
            let n = err.read(&mut buf).unwrap();
            assert!(
                n > 0,
                "rwait ended: {}",
                String::from_utf8_lossy(&rw_err.lock().unwrap())
            );
            rw_err.lock().unwrap().extend_from_slice(&buf[..n]);
        }
        let sink = Arc::clone(&rw_err);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let mut rb = Command::new(bin("rbatch"))
            .arg("300ms")
            .stdin(Stdio::from(rw.stdout.take().unwrap()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn rbatch");
        let mut cmd = Command::new(bin("rpush"));
        cmd.arg("-C")
            .arg(src)
            .args(["--retry-min", "100ms", "--retry-max", "500ms", "--password-file"])
            .arg(&d[0].password_file);
        for x in d {
            cmd.args(["-t", &x.url()]);
        }
        if initial {
            cmd.arg("--initial");
        }
        cmd.stdin(Stdio::from(rb.stdout.take().unwrap()));
        Pipeline {
            rw,
            rw_err,
            rb,
            rp: Proc::spawn(cmd),
        }
    }

    fn rwait_stderr(&self) -> String {
        String::from_utf8_lossy(&self.rw_err.lock().unwrap()).into_owned()
    }

    pub(super) fn finish(mut self) -> crate::util::Output {
        let _ = self.rw.kill();
        let _ = self.rw.wait();
        let _ = self.rb.wait();
        let rp = std::mem::replace(&mut self.rp, Proc::spawn(Command::new("true")));
        rp.wait_exit(DEADLINE)
    }
}

impl Drop for Pipeline {
    /// A failing test must not leave rwait and rbatch behind (they would hold the test
    /// runner's stderr open).
    fn drop(&mut self) {
        for c in [&mut self.rw, &mut self.rb] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

#[test]
fn faults_kernel_queue_overflow_resyncs_the_tree_and_targets_converge() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let d = Daemon::start(&s, "a", "127.0.0.2");
    sh(&src, "mkdir d && cd d && seq 1 1000 | xargs touch");
    let p = Pipeline::start(&src, &[&d], true);
    wait_converged("initial sync", &src, &[&d.module], &p.rp);

    signal(p.rw.id(), libc::SIGSTOP);
    // 17,000 ATTRIB events (more than the kernel's 16,384), none mergeable; then the
    // changes whose events the kernel drops.
    sh(&src, "cd d && for i in $(seq 17); do seq 1 1000 | xargs touch; done");
    sh(
        &src,
        "rm d/1 && mkdir late && echo x > late/new && echo y >> d/2 && mv d/3 moved",
    );
    signal(p.rw.id(), libc::SIGCONT);
    wait_converged("after the overflow", &src, &[&d.module], &p.rp);
    // rwait's stderr is read by a thread that may lag behind: poll.
    crate::util::wait_until(
        "rwait's overflow warning",
        DEADLINE,
        || p.rwait_stderr().contains("the inotify event queue overflowed"),
        || p.rwait_stderr(),
    );
    // Still watching after the resync: a later change arrives too.
    write_file(&src, b"late/after", b"a");
    wait_converged("after the overflow, a new change", &src, &[&d.module], &p.rp);
    let out = p.finish();
    assert_eq!(out.code, 0, "{}", out.stderr_str());
}

#[test]
fn faults_stalled_consumer_during_a_burst_loses_no_event() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let d = Daemon::start(&s, "a", "127.0.0.2");
    sh(&src, "mkdir d && cd d && seq 1 1000 | xargs touch");
    let p = Pipeline::start(&src, &[&d], true);
    wait_converged("initial sync", &src, &[&d.module], &p.rp);

    // rbatch stopped: rwait's pipe fills and rwait must hold ~60,000 events in memory.
    signal(p.rb.id(), libc::SIGSTOP);
    sh(
        &src,
        "cd d && for i in $(seq 20); do seq 1 1000 | xargs touch; done && \
         mkdir ../burst && cd ../burst && seq 1 300 | xargs touch && rm 7 && echo z > 8",
    );
    signal(p.rb.id(), libc::SIGCONT);
    wait_converged("after the burst", &src, &[&d.module], &p.rp);
    let rw_err = p.rwait_stderr();
    assert!(!rw_err.contains("overflow"), "the kernel queue overflowed:\n{rw_err}");
    let out = p.finish();
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert!(fs::metadata(d.module.join("burst/300")).is_ok());
}

#[test]
fn faults_sigterm_to_the_whole_pipeline_loses_nothing_with_a_state_dir() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let state = s.join("state");
    let mut d = Daemon::start(&s, "a", "127.0.0.2");
    d.stop();
    fs::write(src.join("old"), b"o").unwrap();
    let mut rw = Command::new(bin("rwait"))
        .args(["-mrq", "-e", EVENTS])
        .arg(&src)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rwait");
    // A long quiet period: the change is still in rbatch's batch when the signal comes.
    let mut rb = Command::new(bin("rbatch"))
        .arg("30s")
        .stdin(Stdio::from(rw.stdout.take().unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rbatch");
    let mut cmd = Command::new(bin("rpush"));
    cmd.arg("-C")
        .arg(&src)
        .args(["-t", &d.url(), "--password-file"])
        .arg(&d.password_file)
        .arg("--state-dir")
        .arg(&state)
        .stdin(Stdio::from(rb.stdout.take().unwrap()));
    let rp = Proc::spawn(cmd);
    // rwait is ready once its watches exist; -q hides the banner, so watch /proc.
    let end = std::time::Instant::now() + DEADLINE;
    let watches = |pid: u32| {
        fs::read_dir(format!("/proc/{pid}/fdinfo"))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| fs::read_to_string(e.path()).ok())
                    .map(|t| t.matches("inotify wd:").count())
                    .sum::<usize>()
            })
            .unwrap_or(0)
    };
    while watches(rw.id()) < 1 {
        assert!(std::time::Instant::now() < end, "rwait never watched");
        thread::sleep(std::time::Duration::from_millis(10));
    }
    // rpush is ready (its signal handlers set) once its journal exists.
    while super::journals(&state).is_empty() {
        assert!(std::time::Instant::now() < end, "rpush never opened its journal");
        thread::sleep(std::time::Duration::from_millis(10));
    }
    let before = super::bytes_read(rb.id());
    write_file(&src, b"new", b"n");
    // rbatch has read the event: the path sits in its open batch.
    while super::bytes_read(rb.id()) == before {
        assert!(std::time::Instant::now() < end, "rbatch never read the event");
        thread::sleep(std::time::Duration::from_millis(10));
    }
    // What systemd does on stop: SIGTERM to every process of the service.
    for pid in [rw.id(), rb.id(), rp.pid() as u32] {
        signal(pid, libc::SIGTERM);
    }
    let _ = rw.wait();
    let _ = rb.wait();
    let out = rp.wait_exit(DEADLINE);
    // The host is down, so the batch rbatch flushed on the signal can only survive in
    // the journal: rpush must have read and journaled it before exiting (status 3:
    // stopped, everything pending journaled).
    assert_eq!(out.code, 3, "{}", out.stderr_str());
    assert!(out.stderr_str().contains("lacks 1 path"), "{}", out.stderr_str());
    assert!(out.stderr_str().contains(", kept in "), "{}", out.stderr_str());
    d.restart();

    let mut cmd = Command::new(bin("rpush"));
    cmd.arg("-C")
        .arg(&src)
        .args(["-t", &d.url(), "--password-file"])
        .arg(&d.password_file)
        .arg("--state-dir")
        .arg(&state)
        .stdin(Stdio::null());
    let out = Proc::spawn(cmd).wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    assert!(
        out.stderr_str().contains("replaying 1 pending path"),
        "{}",
        out.stderr_str()
    );
    assert_eq!(fs::read(d.module.join("new")).unwrap(), b"n");
}

/// `rwait -F` in the pipeline: changes at depth, directories moved in from outside the
/// source and out of it, new directories with contents, all end up on the target.
#[test]
fn faults_fanotify_pipeline_converges() {
    if crate::util::require(crate::rwait::fanotify::available()).is_none() {
        return;
    }
    let s = Scratch::new();
    let src = s.mkdir("src");
    let outside = s.mkdir("outside");
    let d = Daemon::start(&s, "a", "127.0.0.2");
    sh(
        &src,
        "mkdir -p a/b/c gone && echo 1 > a/b/c/f && echo 2 > gone/g && seq 1 50 | (cd a && xargs touch)",
    );
    sh(&outside, "mkdir -p in/deep && echo i > in/deep/f");
    let p = Pipeline::start_with(&src, &[&d], true, "-mF");
    wait_converged("initial sync", &src, &[&d.module], &p.rp);
    sh(
        &src,
        "echo more >> a/b/c/f && chmod 600 a/1 && rm a/2 && mv a/3 a/b/three && \
         mkdir -p new/x/y && echo n > new/x/y/f && mv ../outside/in a/b/in && echo j > a/b/in/deep/j && \
         mv gone ../outside/gone && mv a/b/c a/c2 && echo k > a/c2/k && rm -r a/4 new/x/y",
    );
    wait_converged("after the changes", &src, &[&d.module], &p.rp);
    assert!(fs::metadata(d.module.join("a/b/in/deep/j")).is_ok());
    assert!(fs::metadata(d.module.join("gone")).is_err());
    let out = p.finish();
    assert_eq!(out.code, 0, "{}", out.stderr_str());
}

/// `rwait -F` stopped while more than the kernel queues happens: its Q_OVERFLOW lines
/// make rbatch resync the root, and the target converges.
#[test]
fn faults_fanotify_queue_overflow_resyncs_and_targets_converge() {
    if crate::util::require(crate::rwait::fanotify::available()).is_none() {
        return;
    }
    let s = Scratch::new();
    let src = s.mkdir("src");
    let d = Daemon::start(&s, "a", "127.0.0.2");
    sh(&src, "mkdir d && cd d && seq 1 1000 | xargs touch");
    let p = Pipeline::start_with(&src, &[&d], true, "-mF");
    wait_converged("initial sync", &src, &[&d.module], &p.rp);
    signal(p.rw.id(), libc::SIGSTOP);
    // 20 x 1,000 ATTRIB records, more than the kernel's 16,384: each round is another
    // touch process, and fanotify merges only one process's events on one file.
    sh(&src, "cd d && for i in $(seq 20); do seq 1 1000 | xargs touch; done");
    sh(
        &src,
        "rm d/1 && mkdir late && echo x > late/new && echo y >> d/2 && mv d/3 moved",
    );
    signal(p.rw.id(), libc::SIGCONT);
    wait_converged("after the overflow", &src, &[&d.module], &p.rp);
    let end = std::time::Instant::now() + DEADLINE;
    while !p.rwait_stderr().contains("the fanotify event queue overflowed") {
        assert!(
            std::time::Instant::now() < end,
            "no overflow happened:\n{}",
            p.rwait_stderr()
        );
        thread::sleep(std::time::Duration::from_millis(10));
    }
    write_file(&src, b"late/after", b"a");
    wait_converged("after the overflow, a new change", &src, &[&d.module], &p.rp);
    let out = p.finish();
    assert_eq!(out.code, 0, "{}", out.stderr_str());
}
