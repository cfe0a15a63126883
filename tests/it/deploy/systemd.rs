//! syncpipe@.service and its runner, /usr/lib/syncpipe/syncpipe-run.
//!
//! The unit: every `%` a specifier we mean (`%i`) or escaped (`%%`), the directives the
//! issue asks for, and `systemd-analyze verify` on the unit as scripts/install installs
//! it. The runner: run the way systemd runs it (instance name as argument,
//! CONFIGURATION_DIRECTORY, STATE_DIRECTORY and RUNTIME_DIRECTORY set, SIGTERM to the
//! runner alone as with KillMode=mixed) against real rsync daemons; a stage that dies
//! fails the runner; configuration errors exit 2 before anything starts; values are
//! data, never code; `--state-dir` is passed exactly when rpush knows it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{bin_dir, child_named, children, file_text, repo, script, wait_converged, wait_watching, write_script};
use crate::rsyncd::Daemon;
use crate::util::{DEADLINE, Output, Scratch, run, wait_until};

fn unit_text() -> String {
    fs::read_to_string(repo().join("packaging/systemd/syncpipe@.service")).unwrap()
}

/// The `%` sequences of a unit file that are neither `%%` nor one of `allowed`
/// specifiers, as (line number, sequence). Comment lines are skipped (systemd does not
/// expand them).
fn stray_percents(unit: &str, allowed: &[char]) -> Vec<(usize, String)> {
    let mut bad = Vec::new();
    for (n, line) in unit.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            if c == '%' {
                match chars.next() {
                    Some('%') => {}
                    Some(x) if allowed.contains(&x) => {}
                    other => bad.push((n + 1, format!("%{}", other.map(String::from).unwrap_or_default()))),
                }
            }
        }
    }
    bad
}

#[test]
fn unit_percent_signs_are_instance_specifiers_or_escaped() {
    let unit = unit_text();
    assert_eq!(
        stray_percents(&unit, &['i']),
        vec![],
        "unescaped % in syncpipe@.service"
    );
    assert!(unit.contains("%i"), "the unit must use its instance name");
    // The check catches what it is for: inotifywait's %w%f, which systemd would
    // silently replace (systemd-analyze verify accepts it, see the next test).
    let broken = unit.replace("syncpipe-run %i", "syncpipe-run %i --format '%w%f' 100%%");
    assert_eq!(
        stray_percents(&broken, &['i']),
        vec![
            (unit_line(&broken, "%i --format"), "%w".into()),
            (unit_line(&broken, "%i --format"), "%f".into())
        ]
    );
}

fn unit_line(unit: &str, needle: &str) -> usize {
    unit.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn unit_restarts_on_failure_keeps_state_under_var_lib_and_logs_to_the_journal() {
    let unit = unit_text();
    let directives: Vec<&str> = unit
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .collect();
    for want in [
        "ExecStart=@LIBDIR@/syncpipe/syncpipe-run %i",
        "Restart=on-failure",
        "RestartPreventExitStatus=2",
        "StateDirectory=syncpipe/%i",
        "RuntimeDirectory=syncpipe/%i",
        "ConfigurationDirectory=syncpipe",
        "ConditionPathExists=/etc/syncpipe/%i.conf",
        "KillMode=mixed",
        "WantedBy=multi-user.target",
    ] {
        assert!(directives.contains(&want), "syncpipe@.service lacks {want:?}:\n{unit}");
    }
    // The journal: nothing redirects the output elsewhere.
    assert!(
        !directives
            .iter()
            .any(|d| d.starts_with("StandardOutput=") || d.starts_with("StandardError="))
    );
}

#[test]
fn systemd_analyze_verify_accepts_the_installed_unit() {
    let s = Scratch::new();
    // Installed with PREFIX inside the scratch dir (no DESTDIR), so that the unit's
    // ExecStart and the man pages it documents exist where it says.
    let prefix = s.join("usr");
    let mut cmd = script("scripts/install");
    cmd.arg(format!("PREFIX={}", prefix.display()))
        .arg("--bin-dir")
        .arg(bin_dir());
    let o = run(cmd);
    assert_eq!(o.code, 0, "scripts/install: {}", o.stderr_str());
    let unitdir = prefix.join("lib/systemd/system");
    let mut v = Command::new("systemd-analyze");
    v.arg("verify")
        .arg(unitdir.join("syncpipe@www.service"))
        .current_dir(&unitdir)
        .env("MANPATH", prefix.join("share/man"))
        .env("SYSTEMD_LOG_LEVEL", "notice");
    let o = run(v);
    assert_eq!(
        o.code,
        0,
        "systemd-analyze verify:\n{}{}",
        o.stdout_str(),
        o.stderr_str()
    );
    assert_eq!(o.stderr_str(), "", "systemd-analyze verify warns");
}

// ---------------------------------------------------------------------------------------
// The runner

/// Runs `syncpipe-run ARGS` as systemd would for an instance: configuration in
/// `scratch/etc`, state in `scratch/state`, runtime dir `scratch/run`.
pub(super) fn runner(s: &Scratch, bindir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(repo().join("packaging/systemd/syncpipe-run"));
    c.args(args)
        .env("CONFIGURATION_DIRECTORY", s.mkdir("etc"))
        .env("STATE_DIRECTORY", s.mkdir("state"))
        .env("RUNTIME_DIRECTORY", s.mkdir("run"))
        .env("SYNCPIPE_BINDIR", bindir);
    c
}

pub(super) fn write_conf(s: &Scratch, name: &str, text: &str) -> PathBuf {
    s.write(format!("etc/{name}.conf"), text)
}

/// The pids of a runner's stages (rwait, rbatch, rpush), killed on drop so that a
/// failing test leaves no orphan behind (the runner itself is killed by its Runner).
pub(super) struct Stages(pub [i32; 3]);

impl Drop for Stages {
    fn drop(&mut self) {
        KillOnDrop(self.0.to_vec());
    }
}

/// Processes to kill (SIGKILL) on drop, if still alive.
struct KillOnDrop(Vec<i32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for &pid in &self.0 {
            if alive(pid) {
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// A running runner, its stdout and stderr going to files rather than pipes: a stage
/// that outlived it would hold a pipe open, and a test waiting for end of file would
/// hang instead of failing.
pub(super) struct Runner {
    child: Child,
    out: PathBuf,
    err: PathBuf,
    exited: bool,
}

impl Runner {
    pub(super) fn spawn(s: &Scratch, mut cmd: Command) -> Runner {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let out = s.join(format!("runner-{n}.out"));
        let err = s.join(format!("runner-{n}.err"));
        cmd.stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap());
        let child = cmd.spawn().expect("spawn syncpipe-run");
        Runner {
            child,
            out,
            err,
            exited: false,
        }
    }

    pub(super) fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub(super) fn signal(&self, sig: i32) {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe { libc::kill(self.pid(), sig) };
    }

    pub(super) fn dump(&self) -> String {
        format!(
            "--- syncpipe-run stdout ---\n{}--- syncpipe-run stderr ---\n{}---",
            file_text(&self.out),
            file_text(&self.err)
        )
    }

    /// Waits for the runner to exit within `deadline`; kills it and panics otherwise.
    pub(super) fn wait_exit(mut self, deadline: Duration) -> Output {
        let end = Instant::now() + deadline;
        let st = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > end {
                panic!("syncpipe-run did not exit within {deadline:?}\n{}", self.dump());
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        self.exited = true;
        use std::os::unix::process::ExitStatusExt;
        Output {
            stdout: fs::read(&self.out).unwrap_or_default(),
            stderr: fs::read(&self.err).unwrap_or_default(),
            code: st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)),
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if !self.exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits until the runner has its three stages and rwait watches all of `src`.
pub(super) fn wait_pipeline_up(p: &Runner, src: &Path) -> Stages {
    let pid = p.pid();
    let mut pids = [0; 3];
    wait_until(
        "the runner's three stages",
        DEADLINE,
        || {
            let found: Vec<Option<i32>> = ["rwait", "rbatch", "rpush"]
                .iter()
                .map(|n| child_named(pid, n))
                .collect();
            if let [Some(a), Some(b), Some(c)] = found[..] {
                pids = [a, b, c];
                true
            } else {
                false
            }
        },
        || format!("children: {:?}\n{}", children(pid), p.dump()),
    );
    let stages = Stages(pids);
    wait_watching(pids[0], src, || p.dump());
    stages
}

fn alive(pid: i32) -> bool {
    // A zombie still has /proc/PID; its state is Z.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')).unwrap_or(false))
        .unwrap_or(false)
}

#[test]
fn runner_pipeline_converges_and_stops_cleanly_on_sigterm() {
    let s = Scratch::new();
    let web1 = Daemon::start(&s, "web1", "127.0.0.2");
    let web2 = Daemon::start(&s, "web2", "127.0.0.3");
    let src = s.mkdir("srv/www");
    fs::write(src.join("index.html"), "<h1>before the service started</h1>\n").unwrap();
    let hosts = s.write(
        "etc/www.hosts",
        format!("# the web servers\n{}\n{}\n", web1.url(), web2.url()),
    );
    write_conf(
        &s,
        "www",
        &format!(
            "# as in docs/systemd.md\nSOURCE={}\nHOSTS={}\nPASSWORD_FILE={}\nQUIET=200ms\nRPUSH_OPTS=--retry-min 200ms --drain-timeout 15s\n",
            src.display(),
            hosts.display(),
            web1.password_file.display()
        ),
    );
    let p = Runner::spawn(&s, runner(&s, &bin_dir(), &["www"]));
    let stages = wait_pipeline_up(&p, &src);
    let targets = [web1.module.as_path(), web2.module.as_path()];
    // INITIAL=yes (the default): what was there before the start is pushed.
    wait_converged("initial sync", &src, &targets, || p.dump());

    fs::create_dir_all(src.join("img/2026")).unwrap();
    fs::write(src.join("img/2026/cat 1.jpg"), "meow").unwrap();
    fs::write(src.join("-rf"), "a leading dash").unwrap();
    fs::write(src.join("new\nline"), "a newline in a name").unwrap();
    fs::write(src.join("index.html"), "<h1>after</h1>\n").unwrap();
    wait_converged("after creating and modifying", &src, &targets, || p.dump());
    fs::rename(src.join("img"), src.join("images")).unwrap();
    fs::remove_file(src.join("-rf")).unwrap();
    wait_converged("after renaming and deleting", &src, &targets, || p.dump());
    // The status file lives in the runtime directory.
    let status = s.join("run/status.json");
    wait_until("the status file", DEADLINE, || status.exists(), || p.dump());
    let json = crate::rpush::read_status(&status).expect("the status file is JSON");
    crate::rpush::host(&json, &web1.ip);

    // systemctl stop with KillMode=mixed: SIGTERM to the runner only.
    p.signal(libc::SIGTERM);
    let o = p.wait_exit(DEADLINE);
    assert_eq!(o.code, 0, "runner after SIGTERM:\n{}", o.stderr_str());
    assert!(o.stderr_str().contains("syncpipe-run: stopping"), "{}", o.stderr_str());
    for (pid, name) in stages.0.iter().zip(["rwait", "rbatch", "rpush"]) {
        assert!(!alive(*pid), "{name} (pid {pid}) still runs after the runner exited");
    }
    // The FIFOs are gone from the runtime directory (systemd removes the directory
    // itself).
    assert!(!s.join("run/rwait.fifo").exists() && !s.join("run/rbatch.fifo").exists());
}

/// Starts a runner for one daemon and waits until it is up and converged; returns it
/// with the stage pids.
fn running_instance(s: &Scratch, d: &Daemon) -> (Runner, Stages, PathBuf) {
    let src = s.mkdir("src");
    fs::write(src.join("a"), "a").unwrap();
    let hosts = s.write("etc/t.hosts", format!("{}\n", d.url()));
    write_conf(
        s,
        "t",
        &format!(
            "SOURCE={}\nHOSTS={}\nPASSWORD_FILE={}\nQUIET=100ms\nDRAIN_TIMEOUT=5s\nCHECK_INTERVAL=0.2s\n",
            src.display(),
            hosts.display(),
            d.password_file.display()
        ),
    );
    let p = Runner::spawn(s, runner(s, &bin_dir(), &["t"]));
    let pids = wait_pipeline_up(&p, &src);
    wait_converged("initial sync", &src, &[d.module.as_path()], || p.dump());
    (p, pids, src)
}

#[test]
fn runner_fails_and_stops_the_other_stages_when_rpush_dies() {
    let s = Scratch::new();
    let d = Daemon::start(&s, "d", "127.0.0.2");
    let (p, stages, _src) = running_instance(&s, &d);
    let [rwait, rbatch, rpush] = stages.0;
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(rpush, libc::SIGKILL) };
    let o = p.wait_exit(DEADLINE);
    assert_eq!(o.code, 1, "runner after rpush was killed:\n{}", o.stderr_str());
    assert!(
        o.stderr_str().contains("syncpipe-run: rpush exited (status 137)"),
        "{}",
        o.stderr_str()
    );
    wait_until(
        "rwait and rbatch to be stopped",
        DEADLINE,
        || !alive(rwait) && !alive(rbatch),
        || o.stderr_str(),
    );
}

#[test]
fn runner_fails_after_draining_when_the_watched_tree_disappears() {
    let s = Scratch::new();
    let d = Daemon::start(&s, "d", "127.0.0.2");
    let (p, stages, src) = running_instance(&s, &d);
    fs::write(src.join("last words"), "pushed before the end").unwrap();
    wait_converged("the last file", &src, &[d.module.as_path()], || p.dump());
    fs::remove_dir_all(&src).unwrap();
    let o = p.wait_exit(DEADLINE);
    assert_eq!(o.code, 1, "runner after its tree was deleted:\n{}", o.stderr_str());
    assert!(
        o.stderr_str().contains("is gone or was replaced: stopping rwait"),
        "{}",
        o.stderr_str()
    );
    assert!(
        o.stderr_str().contains("syncpipe-run: rwait exited"),
        "{}",
        o.stderr_str()
    );
    assert!(stages.0.iter().all(|p| !alive(*p)), "a stage outlived the runner");
    // What was delivered stays delivered: rpush refuses to push a missing base, which
    // would delete everything on the targets.
    assert_eq!(
        fs::read_to_string(d.module.join("last words")).unwrap(),
        "pushed before the end"
    );
}

fn dry_run(s: &Scratch, bindir: &Path, name: &str) -> Output {
    run(runner(s, bindir, &["--dry-run", name]))
}

#[test]
fn runner_reports_configuration_errors_with_exit_2_and_starts_nothing() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let hosts = s.write("hosts", "127.0.0.2::mod\n");
    let good = format!("SOURCE={}\nHOSTS={}\n", src.display(), hosts.display());
    let cases: Vec<(&str, String, String)> = vec![
        ("missing", String::new(), "etc/missing.conf: no such file".into()),
        (
            "nokey",
            format!("{good}just words\n"),
            "nokey.conf:3: expected KEY=VALUE: just words".into(),
        ),
        (
            "unknown",
            format!("{good}SORUCE=/x\n"),
            "unknown.conf:3: unknown key SORUCE".into(),
        ),
        (
            "nosource",
            format!("HOSTS={}\n", hosts.display()),
            "SOURCE= (the directory to watch) is missing".into(),
        ),
        (
            "nohosts",
            format!("SOURCE={}\n", src.display()),
            "HOSTS= (the hosts file) is missing".into(),
        ),
        (
            "relative",
            format!("SOURCE=srv\nHOSTS={}\n", hosts.display()),
            "SOURCE=srv: must be an absolute path".into(),
        ),
        (
            "initial",
            format!("{good}INITIAL=maybe\n"),
            "INITIAL=maybe: must be yes or no".into(),
        ),
        (
            "backend",
            format!("{good}BACKEND=dnotify\n"),
            "BACKEND=dnotify: must be inotify or fanotify".into(),
        ),
        (
            "interval",
            format!("{good}CHECK_INTERVAL=500ms\n"),
            "CHECK_INTERVAL=500ms: expected seconds".into(),
        ),
    ];
    for (name, text, want) in &cases {
        if !text.is_empty() {
            write_conf(&s, name, text);
        }
        for args in [vec![*name], vec!["--dry-run", *name]] {
            let o = run(runner(&s, &bin_dir(), &args));
            assert_eq!(o.code, 2, "{name}: {args:?}:\n{}", o.stderr_str());
            assert!(
                o.stderr_str().contains(want.as_str()),
                "{name}: want {want:?} in:\n{}",
                o.stderr_str()
            );
            assert_eq!(o.stdout_str(), "");
        }
    }
    for bad in ["../etc/passwd", ".hidden", "-x", "a b"] {
        let o = run(runner(&s, &bin_dir(), &[bad]));
        assert_eq!(o.code, 2, "instance {bad:?}: {}", o.stderr_str());
        assert!(o.stderr_str().contains("bad instance name"), "{}", o.stderr_str());
    }
    let o = run(runner(&s, &bin_dir(), &[]));
    assert_eq!(o.code, 2);
    assert!(o.stderr_str().contains("usage: syncpipe-run"), "{}", o.stderr_str());
    let o = run(runner(&s, &s.mkdir("empty-bin"), &["nokey"]));
    assert_eq!(o.code, 2);
    assert!(
        o.stderr_str().contains("rwait: not found or not executable"),
        "{}",
        o.stderr_str()
    );

    // A source that is not there: said before anything starts (exit 1: it may be a disk
    // not mounted yet, which a restart fixes).
    write_conf(
        &s,
        "nodir",
        &format!("SOURCE={}/absent\nHOSTS={}\n", src.display(), hosts.display()),
    );
    let o = run(runner(&s, &bin_dir(), &["nodir"]));
    assert_eq!(o.code, 1, "{}", o.stderr_str());
    assert!(
        o.stderr_str().contains("/absent: not a directory"),
        "{}",
        o.stderr_str()
    );

    // A malformed hosts file: rpush's usage error (2) ends the runner with 2, which the
    // unit's RestartPreventExitStatus= keeps from restarting in a loop.
    let badhosts = s.write("badhosts", "web1 web2\n");
    write_conf(
        &s,
        "badhosts",
        &format!("SOURCE={}\nHOSTS={}\n", src.display(), badhosts.display()),
    );
    let o = run(runner(&s, &bin_dir(), &["badhosts"]));
    assert_eq!(o.code, 2, "{}", o.stderr_str());
    assert!(
        o.stderr_str().contains("syncpipe-run: rpush exited (status 2)"),
        "{}",
        o.stderr_str()
    );
}

#[test]
fn runner_takes_configuration_values_as_data_never_as_code() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let pwned = s.join("PWNED");
    s.write("glob-me.tmp", "");
    write_conf(
        &s,
        "lit",
        &format!(
            "SOURCE = {src}\nHOSTS=\"{src}/../hosts file\"\nEXCLUDE='$(touch {pwned})|`touch {pwned}`'\n\
             ON_PUSH=/bin/echo {{}} ;touch {pwned}\nRSYNC_OPTS=--exclude=*.tmp $HOME\n\
             DEST=rsync@{{}}::www\nINITIAL=no\n",
            src = src.display(),
            pwned = pwned.display()
        ),
    );
    let o = dry_run(&s, &bin_dir(), "lit");
    assert_eq!(o.code, 0, "{}", o.stderr_str());
    let out = o.stdout_str();
    let args: Vec<&str> = out.lines().collect();
    let src_s = src.display().to_string();
    let has = |seq: &[&str]| {
        args.windows(seq.len())
            .any(|w| w.iter().zip(seq).all(|(a, b)| a.trim_start() == *b))
    };
    let excl = format!("$(touch {p})|`touch {p}`", p = pwned.display());
    let hosts_file = format!("{src_s}/../hosts file");
    let touch = format!("{}", pwned.display());
    for seq in [
        &["--exclude", excl.as_str()][..],
        &["-H", hosts_file.as_str()],
        &["--on-push", "/bin/echo", "{}", ";touch", touch.as_str(), ";"],
        &["--", "--exclude=*.tmp", "$HOME"],
        &["--dest", "rsync@{}::www"],
        &["--", src_s.as_str()],
    ] {
        assert!(has(seq), "dry run lacks {seq:?}:\n{out}");
    }
    assert!(!has(&["--initial"]), "INITIAL=no still pushes everything first:\n{out}");
    assert!(!pwned.exists(), "a configuration value was executed");
}

#[test]
fn runner_passes_state_dir_exactly_when_rpush_supports_it() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    write_conf(&s, "st", &format!("SOURCE={}\nHOSTS=/h\n", src.display()));
    let state = s.join("state");
    let passes_state_dir = |out: &str| out.contains(&format!("  --state-dir\n  {}\n", state.display()));

    // This build's rpush: detected either way, and said when missing.
    let o = dry_run(&s, &bin_dir(), "st");
    assert_eq!(o.code, 0, "{}", o.stderr_str());
    let mut help = Command::new(crate::util::bin("rpush"));
    help.arg("--help");
    if run(help).stdout_str().contains("--state-dir") {
        assert!(passes_state_dir(&o.stdout_str()), "{}", o.stdout_str());
    } else {
        assert!(!passes_state_dir(&o.stdout_str()), "{}", o.stdout_str());
        assert!(o.stderr_str().contains("has no --state-dir"), "{}", o.stderr_str());
    }

    // An rpush that documents --state-dir gets STATE_DIRECTORY (/var/lib/syncpipe/NAME
    // under systemd).
    let fake = s.mkdir("fake-bin");
    for t in ["rwait", "rbatch"] {
        write_script(&fake.join(t), "#!/bin/sh\nexit 0\n");
    }
    write_script(
        &fake.join("rpush"),
        "#!/bin/sh\necho '      --state-dir <DIR>  journal of pending paths'\n",
    );
    let o = dry_run(&s, &fake, "st");
    assert_eq!(o.code, 0, "{}", o.stderr_str());
    assert!(passes_state_dir(&o.stdout_str()), "{}", o.stdout_str());
    assert_eq!(o.stderr_str(), "");
    // Without STATE_DIRECTORY (run by hand): /var/lib/syncpipe/NAME.
    let mut c = runner(&s, &fake, &["--dry-run", "st"]);
    c.env_remove("STATE_DIRECTORY");
    let o = run(c);
    assert!(
        o.stdout_str().contains("  --state-dir\n  /var/lib/syncpipe/st\n"),
        "{}",
        o.stdout_str()
    );
}

#[test]
fn every_configuration_in_the_docs_and_examples_is_accepted_by_the_runner() {
    let s = Scratch::new();
    let mut confs = vec![(
        "packaging/examples/www.conf".to_string(),
        fs::read_to_string(repo().join("packaging/examples/www.conf")).unwrap(),
    )];
    // Fenced blocks that are configuration files: their first line sets SOURCE=.
    for doc in ["docs/systemd.md", "docs/migrating.md"] {
        let text = fs::read_to_string(repo().join(doc)).unwrap();
        let mut lines = text.lines().enumerate();
        while let Some((n, l)) = lines.next() {
            if l.starts_with("```") {
                let block: Vec<&str> = lines
                    .by_ref()
                    .map(|(_, l)| l)
                    .take_while(|l| !l.starts_with("```"))
                    .collect();
                if block.first().is_some_and(|l| l.starts_with("SOURCE=")) {
                    confs.push((format!("{doc}:{}", n + 1), block.join("\n") + "\n"));
                }
            }
        }
    }
    assert!(
        confs.len() >= 5,
        "configuration examples found: {:?}",
        confs.iter().map(|c| &c.0).collect::<Vec<_>>()
    );
    for (i, (origin, text)) in confs.iter().enumerate() {
        let name = format!("doc{i}");
        write_conf(&s, &name, text);
        let o = dry_run(&s, &bin_dir(), &name);
        assert_eq!(
            o.code,
            0,
            "{origin}: the runner rejects it:\n{}\n{text}",
            o.stderr_str()
        );
        assert!(o.stdout_str().contains("rpush:\n"), "{origin}: {}", o.stdout_str());
    }
}

#[test]
fn runner_dry_run_prints_the_headline_pipeline() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    write_conf(
        &s,
        "h",
        &format!("SOURCE={}\nHOSTS=/etc/syncpipe/h.hosts\n", src.display()),
    );
    let o = dry_run(&s, &bin_dir(), "h");
    let b = bin_dir();
    let want_start = format!(
        "rwait:\n  {b}/rwait\n  -m\n  -r\n  -q\n  -e\n  modify,create,delete,moved_to,moved_from,attrib,close_write\n  --format\n  %w%f%0\n  --no-newline\n  --\n  {src}\nrbatch:\n  {b}/rbatch\n  -0\n  -z\n  500ms\nrpush:\n  {b}/rpush\n  -0\n  -C\n  {src}\n  -H\n  /etc/syncpipe/h.hosts\n  --initial\n  --status\n  {run}/status.json\n",
        b = b.display(),
        src = src.display(),
        run = s.join("run").display()
    );
    assert!(
        o.stdout_str().starts_with(&want_start),
        "got:\n{}\nwant to start with:\n{want_start}",
        o.stdout_str()
    );
}

#[test]
fn runner_restarted_after_a_stop_catches_up_on_changes_made_meanwhile() {
    let s = Scratch::new();
    let d = Daemon::start(&s, "d", "127.0.0.2");
    let (p, _stages, src) = running_instance(&s, &d);
    p.signal(libc::SIGTERM);
    let o = p.wait_exit(DEADLINE);
    assert_eq!(o.code, 0, "{}", o.stderr_str());

    // While the service is down (or restarting after a failure): changes nobody watches.
    fs::write(src.join("a"), "changed while stopped").unwrap();
    fs::write(src.join("b"), "created while stopped").unwrap();
    // What systemd's Restart= does: the same runner, the same instance, again. The full
    // sync at start (INITIAL=yes) brings the targets up to date.
    let p = Runner::spawn(&s, runner(&s, &bin_dir(), &["t"]));
    let _stages = wait_pipeline_up(&p, &src);
    wait_converged("after the restart", &src, &[d.module.as_path()], || p.dump());
    fs::remove_file(src.join("a")).unwrap();
    wait_converged("a change after the restart", &src, &[d.module.as_path()], || p.dump());
}

#[test]
fn runner_fails_when_rwait_ends_and_leaves_no_process_behind() {
    let s = Scratch::new();
    let d = Daemon::start(&s, "d", "127.0.0.2");
    let src = s.mkdir("src");
    fs::write(src.join("a"), "a").unwrap();
    let hosts = s.write("etc/t.hosts", format!("{}\n", d.url()));
    // rwait -t 2: rwait itself ends (status 2) after two quiet seconds, as it would on
    // an error such as running out of inotify watches.
    write_conf(
        &s,
        "t",
        &format!(
            "SOURCE={}\nHOSTS={}\nPASSWORD_FILE={}\nRWAIT_OPTS=-t 2\nDRAIN_TIMEOUT=5s\n",
            src.display(),
            hosts.display(),
            d.password_file.display()
        ),
    );
    let p = Runner::spawn(&s, runner(&s, &bin_dir(), &["t"]));
    // The three stages and the check of SOURCE (a subshell of the runner).
    let mut kids = Vec::new();
    wait_until(
        "the runner's four children",
        DEADLINE,
        || {
            kids = children(p.pid());
            kids.len() >= 4
        },
        || p.dump(),
    );
    // Killed at the end whatever happens, so that a failure leaks nothing.
    let _guard = KillOnDrop(kids.iter().map(|(pid, _)| *pid).collect());
    let o = p.wait_exit(DEADLINE);
    assert_eq!(o.code, 1, "{}", o.stderr_str());
    assert!(
        o.stderr_str().contains("syncpipe-run: rwait exited (status 2)"),
        "{}",
        o.stderr_str()
    );
    // What was there at the start was delivered before the end.
    assert_eq!(fs::read_to_string(d.module.join("a")).unwrap(), "a");
    wait_until(
        "every child of the runner to be gone",
        DEADLINE,
        || kids.iter().all(|(pid, _)| !alive(*pid)),
        || format!("children: {kids:?}"),
    );
}

/// `BACKEND=fanotify`: rwait runs with `-F` (and `-r` without it), and the running
/// pipeline converges through it.
#[test]
fn runner_backend_fanotify_runs_rwait_f_and_converges() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    write_conf(
        &s,
        "b",
        &format!("SOURCE={}\nHOSTS=/x.hosts\nBACKEND=inotify\n", src.display()),
    );
    let o = dry_run(&s, &bin_dir(), "b");
    assert!(o.stdout_str().contains("  -m\n  -r\n  -q\n"), "{}", o.stdout_str());
    if crate::util::require(crate::rwait::fanotify::available()).is_none() {
        return;
    }
    let d = Daemon::start(&s, "d", "127.0.0.2");
    fs::write(src.join("a"), "a").unwrap();
    let hosts = s.write("etc/f.hosts", format!("{}\n", d.url()));
    write_conf(
        &s,
        "f",
        &format!(
            "SOURCE={}\nHOSTS={}\nPASSWORD_FILE={}\nQUIET=100ms\nBACKEND=fanotify\n",
            src.display(),
            hosts.display(),
            d.password_file.display()
        ),
    );
    let o = dry_run(&s, &bin_dir(), "f");
    assert!(o.stdout_str().contains("  -m\n  -F\n  -q\n"), "{}", o.stdout_str());
    let p = Runner::spawn(&s, runner(&s, &bin_dir(), &["f"]));
    // Its fanotify mark is in place once rwait's fdinfo lists it.
    let rwait = || child_named(p.pid(), "rwait");
    wait_until(
        "rwait -F's filesystem mark",
        DEADLINE,
        || {
            rwait().is_some_and(|pid| {
                fs::read_dir(format!("/proc/{pid}/fdinfo")).is_ok_and(|rd| {
                    rd.flatten()
                        .any(|e| fs::read_to_string(e.path()).is_ok_and(|t| t.contains("fanotify sdev:")))
                })
            })
        },
        || p.dump(),
    );
    wait_converged("initial sync", &src, &[d.module.as_path()], || p.dump());
    fs::create_dir_all(src.join("deep/er")).unwrap();
    fs::write(src.join("deep/er/f"), "f").unwrap();
    fs::rename(src.join("a"), src.join("deep/a")).unwrap();
    wait_converged("changes through rwait -F", &src, &[d.module.as_path()], || p.dump());
    p.signal(libc::SIGTERM);
    let o = p.wait_exit(DEADLINE);
    assert_eq!(o.code, 0, "{}", o.stderr_str());
}

/// The unit treats a stop that journaled what a down host lacks (rpush's status 3) as a
/// success, and systemctl reload reaches rpush through the runner.
#[test]
fn unit_counts_a_journaled_stop_as_success_and_reloads_through_the_runner() {
    let unit = unit_text();
    let lines: Vec<&str> = unit.lines().map(str::trim).collect();
    assert!(lines.contains(&"SuccessExitStatus=3"), "{unit}");
    assert!(lines.contains(&"ExecReload=/bin/kill -HUP $MAINPID"), "{unit}");
}

#[test]
fn runner_stop_with_a_host_down_exits_3_without_waiting_for_it() {
    let s = Scratch::new();
    let web1 = Daemon::start(&s, "web1", "127.0.0.2");
    let mut web2 = Daemon::start(&s, "web2", "127.0.0.3");
    web2.stop();
    let src = s.mkdir("src");
    fs::write(src.join("a"), "a").unwrap();
    let hosts = s.write("etc/t.hosts", format!("{}\n{}\n", web1.url(), web2.url()));
    write_conf(
        &s,
        "t",
        &format!(
            "SOURCE={}\nHOSTS={}\nPASSWORD_FILE={}\nQUIET=100ms\nDRAIN_TIMEOUT=60s\n",
            src.display(),
            hosts.display(),
            web1.password_file.display()
        ),
    );
    let p = Runner::spawn(&s, runner(&s, &bin_dir(), &["t"]));
    let _stages = wait_pipeline_up(&p, &src);
    wait_converged("initial sync of web1", &src, &[web1.module.as_path()], || p.dump());
    wait_until(
        "web2's first failure",
        DEADLINE,
        || p.dump().contains("127.0.0.3: push failed"),
        || p.dump(),
    );
    p.signal(libc::SIGTERM);
    let t0 = Instant::now();
    let o = p.wait_exit(DEADLINE);
    let took = t0.elapsed();
    assert_eq!(o.code, 3, "{}", o.stderr_str());
    assert!(
        took < Duration::from_secs(10),
        "the stop took {took:?}:\n{}",
        o.stderr_str()
    );
    assert!(o.stderr_str().contains("127.0.0.3 lacks 1 path"), "{}", o.stderr_str());
    assert!(!o.stderr_str().contains(" exited (status"), "{}", o.stderr_str());
}

#[test]
fn runner_sigint_to_its_whole_process_group_is_a_clean_stop() {
    use std::os::unix::process::CommandExt;
    let s = Scratch::new();
    let d = Daemon::start(&s, "d", "127.0.0.2");
    let (p, _stages, src) = running_instance(&s, &d);
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait_exit(DEADLINE).code, 0);
    // Ctrl-C on a terminal: SIGINT to every process of the foreground group, the runner
    // and whatever it started. Several times, since the old failure was a race.
    for round in 0..3 {
        let mut cmd = runner(&s, &bin_dir(), &["t"]);
        cmd.process_group(0);
        let p = Runner::spawn(&s, cmd);
        let stages = wait_pipeline_up(&p, &src);
        let name = format!("change-{round}");
        let before = crate::faults::bytes_read(stages.0[1] as u32);
        fs::write(src.join(&name), &name).unwrap();
        // rbatch has read the event: the path sits in its open batch.
        wait_until(
            "rbatch to read the event",
            DEADLINE,
            || crate::faults::bytes_read(stages.0[1] as u32) != before,
            || p.dump(),
        );
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe { libc::kill(-p.pid(), libc::SIGINT) };
        let o = p.wait_exit(DEADLINE);
        assert_eq!(o.code, 0, "round {round}:\n{}", o.stderr_str());
        assert!(
            !o.stderr_str().contains(" exited (status"),
            "round {round}:\n{}",
            o.stderr_str()
        );
        assert!(o.stderr_str().contains("syncpipe-run: stopping"), "{}", o.stderr_str());
        // The host was up: the change is on it, not only in the journal.
        assert_eq!(
            fs::read_to_string(d.module.join(&name)).ok().as_deref(),
            Some(name.as_str()),
            "round {round}:\n{}",
            o.stderr_str()
        );
        for (pid, stage) in stages.0.iter().zip(["rwait", "rbatch", "rpush"]) {
            assert!(!alive(*pid), "{stage} (pid {pid}) still runs after the runner exited");
        }
    }
}

#[test]
fn runner_forwards_sighup_to_rpush_which_reads_the_hosts_file_again() {
    let s = Scratch::new();
    let web1 = Daemon::start(&s, "web1", "127.0.0.2");
    let web2 = Daemon::start(&s, "web2", "127.0.0.3");
    let (p, _stages, src) = running_instance(&s, &web1);
    // systemctl reload: ExecReload sends SIGHUP to the runner.
    s.write("etc/t.hosts", format!("{}\n{}\n", web1.url(), web2.url()));
    p.signal(libc::SIGHUP);
    wait_converged(
        "the host added by the reload",
        &src,
        &[web1.module.as_path(), web2.module.as_path()],
        || p.dump(),
    );
    assert!(alive(p.pid()), "the runner ended on SIGHUP:\n{}", p.dump());
    p.signal(libc::SIGTERM);
    let o = p.wait_exit(DEADLINE);
    assert_eq!(o.code, 0, "{}", o.stderr_str());
    assert!(o.stderr_str().contains("127.0.0.3: added"), "{}", o.stderr_str());
}
