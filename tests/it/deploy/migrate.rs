//! The replacements of docs/migrating.md, one test per recipe, each a real pipeline of
//! the built binaries against local rsync daemons (and sshd where the recipe uses ssh):
//!
//! 1. the `inotifywait -mrq | while read f; do rsync; done` loop -> `rwait | rbatch |
//!    rpush -t`, with the file names that broke the loop;
//! 2. a pyinotify/watchdog daemon -> a syncpipe@.service instance (its runner), with the
//!    daemon's ignore patterns;
//! 3. sersync's fan-out to an rsyncd module for each IP of an iplist, with a php-fpm
//!    reload -> `rpush -H iplist -d 'rsync@{}::php_env' --on-push ssh {} ...`, the
//!    reload run once per host per change;
//! 4. the cron web-root mirror to several servers over ssh -> `rpush -H web.hosts`.
//!
//! Where a test cannot use the recipe's exact words (the daemons here listen on a free
//! port, not 873; ssh needs the fixture's port and key), the difference is said where
//! it is made.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::net::TcpStream;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::systemd::{Runner, runner, wait_pipeline_up, write_conf};
use super::{bin_dir, file_text, wait_converged, wait_converged_skipping, wait_watching, write_private, write_script};
use crate::rsyncd::{Daemon, Sshd, free_port};
use crate::util::{DEADLINE, Output, Proc, Scratch, bin, wait_until};

const EVENTS: &str = "modify,create,delete,moved_to,moved_from,attrib,close_write";

/// `rwait -mrq -e EVENTS SRC | rbatch ARGS | rpush ARGS`, the stages joined by pipes as
/// a shell would join them; rpush's output is collected, rwait's and rbatch's stderr go
/// to files in the scratch directory.
struct Pipeline {
    rwait: Child,
    rbatch: Child,
    rpush: Option<Proc>,
    logs: PathBuf,
}

impl Pipeline {
    fn start(s: &Scratch, src: &Path, rbatch_args: &[&str], rpush_args: &[OsString]) -> Pipeline {
        let logs = s.mkdir("pipeline-logs");
        let err = |name: &str| Stdio::from(fs::File::create(logs.join(name)).unwrap());
        let mut rwait = Command::new(bin("rwait"))
            .args(["-mrq", "-e", EVENTS])
            .arg(src)
            .stdout(Stdio::piped())
            .stderr(err("rwait.err"))
            .spawn()
            .unwrap();
        let mut rbatch = Command::new(bin("rbatch"))
            .args(rbatch_args)
            .stdin(Stdio::from(rwait.stdout.take().unwrap()))
            .stdout(Stdio::piped())
            .stderr(err("rbatch.err"))
            .spawn()
            .unwrap();
        let mut rpush = Command::new(bin("rpush"));
        rpush
            .args(rpush_args)
            .stdin(Stdio::from(rbatch.stdout.take().unwrap()))
            .current_dir(s.path());
        let rpush = Proc::spawn(rpush);
        let p = Pipeline {
            rwait,
            rbatch,
            rpush: Some(rpush),
            logs,
        };
        wait_watching(p.rwait.id() as i32, src, || p.dump());
        p
    }

    fn dump(&self) -> String {
        format!(
            "--- rwait stderr ---\n{}--- rbatch stderr ---\n{}--- rpush ---\n{}",
            file_text(&self.logs.join("rwait.err")),
            file_text(&self.logs.join("rbatch.err")),
            self.rpush.as_ref().map(|p| p.dump()).unwrap_or_default()
        )
    }

    /// Stops rwait; rbatch flushes, rpush delivers and exits.
    fn stop(mut self) -> Output {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe { libc::kill(self.rwait.id() as i32, libc::SIGTERM) };
        let _ = self.rwait.wait();
        let _ = self.rbatch.wait();
        self.rpush.take().unwrap().wait_exit(DEADLINE)
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        let _ = self.rwait.kill();
        let _ = self.rwait.wait();
        let _ = self.rbatch.kill();
        let _ = self.rbatch.wait();
    }
}

fn args(v: &[&dyn AsRef<OsStr>]) -> Vec<OsString> {
    v.iter().map(|a| a.as_ref().to_os_string()).collect()
}

// ---------------------------------------------------------------------------------------
// 1. The inotifywait | while read | rsync loop

#[test]
fn recipe_1_while_read_loop_replacement_pushes_names_that_broke_the_loop() {
    let s = Scratch::new();
    let backup = Daemon::start(&s, "backup", "127.0.0.2");
    let src = s.mkdir("data");
    fs::write(src.join("existing.txt"), "there before the start\n").unwrap();
    // rwait -mrq -e ... /data | rbatch 500ms | rpush --initial -C /data -t rsync://... --password-file ...
    let p = Pipeline::start(
        &s,
        &src,
        &["500ms"],
        &args(&[
            &"--initial",
            &"-C",
            &src,
            &"-t",
            &backup.url(),
            &"--password-file",
            &backup.password_file,
        ]),
    );
    let t = [backup.module.as_path()];
    wait_converged("the initial sync", &src, &t, || p.dump());

    // The names that `while read f; do rsync -a "$f" ...` mangles or executes.
    let names: [&[u8]; 6] = [
        b"-esh -c \"touch PWNED_BY_FILENAME\" x",
        b"-dash",
        b"  lead space",
        b"back\\slash",
        b"caf\xe9",
        b"#hash",
    ];
    for n in names {
        fs::write(src.join(OsStr::from_bytes(n)), n).unwrap();
    }
    // A new tree with files created right after mkdir, and a directory moved in.
    fs::create_dir_all(src.join("new/dir/deep")).unwrap();
    fs::write(src.join("new/dir/deep/f"), "deep").unwrap();
    let outside = s.mkdir("outside/tree");
    fs::write(outside.join("inside.txt"), "moved in").unwrap();
    fs::rename(&outside, src.join("moved-in")).unwrap();
    wait_converged("after creating", &src, &t, || p.dump());

    fs::remove_file(src.join("-dash")).unwrap();
    fs::remove_dir_all(src.join("new/dir")).unwrap();
    fs::rename(src.join("moved-in"), src.join("renamed")).unwrap();
    fs::write(src.join("existing.txt"), "changed\n").unwrap();
    wait_converged("after deleting, renaming, modifying", &src, &t, || p.dump());

    assert!(!s.join("PWNED_BY_FILENAME").exists(), "a file name was executed");
    // The loop ran one rsync per event; the replacement a handful of pushes in all.
    let out = p.stop();
    assert_eq!(out.code, 0, "rpush at the end:\n{}", out.stderr_str());
    let pushes = out.stderr_str().matches(": pushed ").count();
    assert!(
        (3..=10).contains(&pushes),
        "expected a few batched pushes, got {pushes}:\n{}",
        out.stderr_str()
    );
}

// ---------------------------------------------------------------------------------------
// 2. A pyinotify/watchdog daemon -> a syncpipe@.service instance

#[test]
fn recipe_2_watchdog_daemon_replacement_runs_as_an_instance_and_honours_ignore_patterns() {
    let s = Scratch::new();
    let a = Daemon::start(&s, "a", "127.0.0.2");
    let b = Daemon::start(&s, "b", "127.0.0.3");
    let src = s.mkdir("srv/app");
    fs::write(src.join("app.py"), "print('v1')\n").unwrap();
    fs::write(src.join("scratch.tmp"), "never pushed, even by the initial sync\n").unwrap();
    let hosts = s.write("etc/app.hosts", format!("{}\n{}\n", a.url(), b.url()));
    // The daemon's `ignore_patterns=['*.tmp']` and its 1-second debounce timer.
    write_conf(
        &s,
        "app",
        &format!(
            "SOURCE={}\nHOSTS={}\nPASSWORD_FILE={}\nQUIET=1s\nEXCLUDE=\\.tmp$\nRSYNC_OPTS=--exclude=*.tmp\n",
            src.display(),
            hosts.display(),
            a.password_file.display()
        ),
    );
    let p = Runner::spawn(&s, runner(&s, &bin_dir(), &["app"]));
    let _stages = wait_pipeline_up(&p, &src);
    let tmp = |k: &[u8]| k.ends_with(b".tmp");
    let t = [a.module.as_path(), b.module.as_path()];
    wait_converged_skipping("the initial sync without *.tmp", &src, &t, &tmp, || p.dump());

    fs::write(src.join("app.py"), "print('v2')\n").unwrap();
    fs::write(src.join("build.tmp"), "x").unwrap();
    fs::create_dir_all(src.join("static/css")).unwrap();
    fs::write(src.join("static/css/site.css"), "body{}").unwrap();
    fs::write(src.join("static/css/site.css.tmp"), "half written").unwrap();
    wait_converged_skipping("after the changes, without *.tmp", &src, &t, &tmp, || p.dump());
    fs::remove_dir_all(src.join("static")).unwrap();
    wait_converged_skipping("after deleting a tree", &src, &t, &tmp, || p.dump());
    p.signal(libc::SIGTERM);
    let o = p.wait_exit(DEADLINE);
    assert_eq!(o.code, 0, "{}", o.stderr_str());
}

// ---------------------------------------------------------------------------------------
// 3. sersync: an rsyncd module on every IP of an iplist, then a php-fpm reload

/// rsync daemons on several addresses sharing one port (as on real servers, where all
/// listen on 873), module `php_env`, auth user `rsync`.
struct Fleet {
    port: u16,
    modules: Vec<PathBuf>,
    password_file: PathBuf,
    children: Vec<Child>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn fleet(s: &Scratch, ips: &[&str]) -> Fleet {
    let password_file = s.join("rsync.pass");
    write_private(&password_file, "php-secret\n");
    'attempt: for _ in 0..10 {
        let port = free_port(ips[0]);
        let mut f = Fleet {
            port,
            modules: Vec::new(),
            password_file: password_file.clone(),
            children: Vec::new(),
        };
        for ip in ips {
            let dir = s.mkdir(format!("fleet-{port}/{ip}"));
            let module = s.mkdir(format!("fleet-{port}/{ip}/php_env"));
            write_private(&dir.join("secrets"), "rsync:php-secret\n");
            let conf = dir.join("rsyncd.conf");
            let ids = if nix_is_root() {
                "    uid = root\n    gid = root\n"
            } else {
                ""
            };
            fs::write(
                &conf,
                format!(
                    "port = {port}\naddress = {ip}\nlog file = {d}/rsyncd.log\nuse chroot = no\n\
                     [php_env]\n    path = {m}\n    read only = no\n    auth users = rsync\n\
                     \x20   secrets file = {d}/secrets\n    lock file = {d}/rsyncd.lock\n{ids}",
                    d = dir.display(),
                    m = module.display()
                ),
            )
            .unwrap();
            let mut child = Command::new("rsync")
                .arg("--daemon")
                .arg("--no-detach")
                .arg(format!("--config={}", conf.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let addr = format!("{ip}:{port}").parse().unwrap();
            let end = std::time::Instant::now() + DEADLINE;
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    continue 'attempt; // the port is taken on this address: start over
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    break;
                }
                assert!(
                    std::time::Instant::now() < end,
                    "rsync daemon on {ip}:{port} did not start"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            f.children.push(child);
            f.modules.push(module);
        }
        return f;
    }
    panic!("could not start rsync daemons sharing a port on {ips:?}");
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn recipe_3_sersync_fanout_replacement_reloads_each_host_once_per_change() {
    let s = Scratch::new();
    let ips = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];
    let fleet = fleet(&s, &ips);
    let sshd = Sshd::start(&s);
    let src = s.mkdir("data/php");
    fs::write(src.join("index.php"), "<?php echo 1;\n").unwrap();
    let iplist = s.write("iplist", "# php servers\n127.0.0.2\n127.0.0.3\n127.0.0.4\n");
    // The "reload": the user's command. Here it records the host it was run for and the
    // paths rpush passed on its stdin.
    let log = s.join("reloads.log");
    let recorder = s.join("reload-php-fpm");
    write_script(
        &recorder,
        &format!(
            "#!/bin/sh\n# what `systemctl reload php-fpm` stands for in this test\n\
             paths=$(tr '\\0' '\\n' | sed 's|^.*/php/||' | sort | tr '\\n' ' ')\n\
             printf '%s: %s\\n' \"$1\" \"$paths\" >>{}\n",
            log.display()
        ),
    );
    // The recipe's `--on-push ssh {} systemctl reload php-fpm ;`, with the fixture's
    // port and key, and every host name resolving to the one sshd (HostName=127.0.0.1).
    let mut on_push: Vec<OsString> = vec!["--on-push".into()];
    on_push.extend(sshd.rsh().split_whitespace().map(OsString::from));
    on_push.extend(["-o", "HostName=127.0.0.1", "{}"].map(OsString::from));
    on_push.push(recorder.clone().into_os_string());
    on_push.extend(["{}", ";"].map(OsString::from));
    let mut rpush_args = args(&[
        &"--initial",
        &"-C",
        &src,
        &"-H",
        &iplist,
        &"-d",
        &"rsync@{}::php_env",
        &"--password-file",
        &fleet.password_file,
    ]);
    rpush_args.extend(on_push);
    // Real servers listen on 873; these share a free port.
    rpush_args.extend(args(&[&"--", &format!("--port={}", fleet.port)]));
    let p = Pipeline::start(&s, &src, &["1s"], &rpush_args);
    let t: Vec<&Path> = fleet.modules.iter().map(PathBuf::as_path).collect();
    let reloads = |ip: &str| -> Vec<String> {
        file_text(&log)
            .lines()
            .filter(|l| l.starts_with(&format!("{ip}: ")))
            .map(String::from)
            .collect()
    };
    let wait_reloads = |n: usize, what: &str| {
        wait_until(
            &format!("{n} reloads per host ({what})"),
            DEADLINE,
            || ips.iter().all(|ip| reloads(ip).len() >= n),
            || format!("--- reloads ---\n{}\n{}\n{}", file_text(&log), p.dump(), sshd.logs()),
        )
    };
    wait_converged("the initial sync", &src, &t, || p.dump());
    wait_reloads(1, "initial sync");

    fs::write(src.join("index.php"), "<?php echo 2;\n").unwrap();
    fs::create_dir_all(src.join("lib")).unwrap();
    fs::write(src.join("lib/db.php"), "<?php // db\n").unwrap();
    wait_converged("change 1", &src, &t, || p.dump());
    wait_reloads(2, "change 1");

    fs::remove_dir_all(src.join("lib")).unwrap();
    wait_converged("change 2", &src, &t, || p.dump());
    wait_reloads(3, "change 2");

    let out = p.stop();
    assert_eq!(out.code, 0, "rpush at the end:\n{}", out.stderr_str());
    for ip in ips {
        let r = reloads(ip);
        assert_eq!(r.len(), 3, "reloads of {ip} (one per change):\n{}", file_text(&log));
        // What each reload was told about: the whole tree, then change 1's paths, then
        // change 2's deletion.
        assert!(
            r[1].contains("index.php") && r[1].contains("lib"),
            "change 1 on {ip}: {}",
            r[1]
        );
        assert!(
            r[2].contains("lib") && !r[2].contains("index.php"),
            "change 2 on {ip}: {}",
            r[2]
        );
    }
}

// ---------------------------------------------------------------------------------------
// 4. The web-root mirror to several servers (cron + rsync over ssh)

#[test]
fn recipe_4_webroot_mirror_replacement_keeps_every_server_equal_over_ssh() {
    let s = Scratch::new();
    let sshd = Sshd::start(&s);
    let www = s.mkdir("var/www");
    for i in 0..40 {
        fs::create_dir_all(www.join(format!("section{}", i % 4))).unwrap();
        fs::write(
            www.join(format!("section{}/page{i}.html", i % 4)),
            format!("<p>page {i}</p>\n"),
        )
        .unwrap();
    }
    let web1 = s.mkdir("web1/var/www");
    let web2 = s.mkdir("web2/var/www");
    // web.hosts as in the recipe (`web1:/var/www/`), all on the one local sshd.
    let hosts = s.write(
        "web.hosts",
        format!(
            "# the web servers\n127.0.0.1:{}/\n127.0.0.1:{}/\n",
            web1.display(),
            web2.display()
        ),
    );
    let p = Pipeline::start(
        &s,
        &www,
        &["500ms"],
        &args(&[&"--initial", &"-C", &www, &"-H", &hosts, &"-e", &sshd.rsh()]),
    );
    let t = [web1.as_path(), web2.as_path()];
    wait_converged("the initial sync over ssh", &www, &t, || {
        format!("{}\n{}", p.dump(), sshd.logs())
    });

    // A deploy: new release directory, then an old section removed and one renamed.
    fs::create_dir_all(www.join("assets/v2")).unwrap();
    fs::write(www.join("assets/v2/app.js"), "console.log(2)").unwrap();
    fs::write(www.join("index.html"), "<h1>v2</h1>").unwrap();
    fs::remove_dir_all(www.join("section0")).unwrap();
    fs::rename(www.join("section1"), www.join("archive")).unwrap();
    wait_converged("after the deploy", &www, &t, || {
        format!("{}\n{}", p.dump(), sshd.logs())
    });
    let out = p.stop();
    assert_eq!(out.code, 0, "rpush at the end:\n{}", out.stderr_str());
}
