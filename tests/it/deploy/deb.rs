//! scripts/build-deb: the package's control data and contents, its dependencies being
//! satisfiable on this Debian 12 machine, the binaries and the runner working from the
//! unpacked package, and a real install and removal with dpkg into a private root (its
//! own database, so the machine and parallel tests are untouched).
//!
//! The package is built once per test run, from the debug binaries of this run (a
//! release build would cost 1-2 minutes; scripts/build-deb without --bin-dir does it).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{bin_dir, script};
use crate::util::{Output, Scratch, run};

/// The .deb of this test run, built on first use into a directory of its own.
fn deb() -> &'static Path {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(|| {
        // One directory per test process, outliving the tests that share it; those of
        // processes that are gone are removed here (parallel runs keep theirs).
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        for e in fs::read_dir(tmp).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("deploy-deb-")
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = fs::remove_dir_all(e.path());
            }
        }
        let out = tmp.join(format!("deploy-deb-{}", std::process::id()));
        let _ = fs::remove_dir_all(&out);
        fs::create_dir_all(&out).unwrap();
        let mut cmd = script("scripts/build-deb");
        cmd.arg("--bin-dir").arg(bin_dir()).arg("--out").arg(&out);
        // Stripping and compressing the debug binaries takes a few seconds; more on a
        // busy 2-core machine running the rest of the suite.
        let o = crate::util::Proc::spawn(cmd).wait_exit(std::time::Duration::from_secs(120));
        assert_eq!(
            o.code,
            0,
            "scripts/build-deb failed:\n{}\n{}",
            o.stdout_str(),
            o.stderr_str()
        );
        let deb = PathBuf::from(o.stdout_str().trim());
        let version = env!("CARGO_PKG_VERSION");
        let arch = String::from_utf8(
            Command::new("dpkg")
                .arg("--print-architecture")
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        assert_eq!(
            deb,
            out.join(format!("syncpipe_{version}_{}.deb", arch.trim())),
            "the package's file name"
        );
        deb
    })
}

fn ok(cmd: Command) -> Output {
    let desc = crate::util::describe(&cmd);
    let o = run(cmd);
    assert_eq!(o.code, 0, "{desc} failed:\n{}\n{}", o.stdout_str(), o.stderr_str());
    o
}

fn control_field(control: &str, name: &str) -> String {
    control
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name}: in\n{control}"))
        .to_string()
}

#[test]
fn deb_control_names_its_dependencies_and_they_are_satisfied_here() {
    let mut cmd = Command::new("dpkg-deb");
    cmd.arg("--field").arg(deb());
    let control = ok(cmd).stdout_str();
    assert_eq!(control_field(&control, "Package"), "syncpipe");
    assert_eq!(control_field(&control, "Version"), env!("CARGO_PKG_VERSION"));
    let depends = control_field(&control, "Depends");
    // Each dependency: "name" or "name (op version)"; libc6 and rsync at least.
    let mut names = BTreeSet::new();
    for dep in depends.split(',').map(str::trim) {
        assert!(!dep.contains('|'), "unexpected alternative in Depends: {dep}");
        let (name, constraint) = match dep.split_once(" (") {
            Some((n, c)) => (n, Some(c.trim_end_matches(')'))),
            None => (dep, None),
        };
        names.insert(name.to_string());
        let mut q = Command::new("dpkg-query");
        q.args(["-W", "-f=${Version}", name]);
        let installed = run(q);
        assert_eq!(installed.code, 0, "dependency {name} is not installed on this machine");
        if let Some(c) = constraint {
            let (op, version) = c.split_once(' ').unwrap();
            let op = match op {
                ">=" => "ge",
                "<=" => "le",
                ">>" => "gt",
                "<<" => "lt",
                "=" => "eq",
                other => panic!("unknown relation {other} in {dep}"),
            };
            let mut cmp = Command::new("dpkg");
            cmp.args(["--compare-versions", &installed.stdout_str(), op, version]);
            assert_eq!(
                run(cmp).code,
                0,
                "installed {name} {} does not satisfy {dep}",
                installed.stdout_str()
            );
        }
    }
    assert!(names.contains("libc6") && names.contains("rsync"), "Depends: {depends}");

    // Maintainer scripts: only the daemon-reload ones, nothing enables an instance.
    let s = Scratch::new();
    let ctl = s.join("DEBIAN");
    let mut cmd = Command::new("dpkg-deb");
    cmd.arg("--control").arg(deb()).arg(&ctl);
    ok(cmd);
    let mut got: Vec<String> = fs::read_dir(&ctl)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(got, ["control", "md5sums", "postinst", "postrm"]);
    for m in ["postinst", "postrm"] {
        let text = fs::read_to_string(ctl.join(m)).unwrap();
        assert!(
            text.contains("systemctl --system daemon-reload")
                && !text.contains("systemctl enable")
                && !text.contains(" start"),
            "{m}:\n{text}"
        );
        let mut sh = Command::new("sh");
        sh.arg("-n").arg(ctl.join(m));
        ok(sh);
    }
}

#[test]
fn deb_contents_follow_debian_paths_and_are_owned_by_root() {
    let mut cmd = Command::new("dpkg-deb");
    cmd.arg("--contents").arg(deb());
    let listing = ok(cmd).stdout_str();
    let mut files = BTreeSet::new();
    for line in listing.lines() {
        // drwxr-xr-x root/root 0 2026-11-23 05:40 ./usr/
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[1], "root/root", "not owned by root: {line}");
        if !cols[0].starts_with('d') {
            files.insert((cols[0].to_string(), cols[5].trim_start_matches('.').to_string()));
        }
    }
    let mut want = BTreeSet::new();
    let f = |mode: &str, path: String| (mode.to_string(), path);
    for t in ["rwait", "rbatch", "rpush"] {
        want.insert(f("-rwxr-xr-x", format!("/usr/bin/{t}")));
        want.insert(f("-rw-r--r--", format!("/usr/share/man/man1/{t}.1.gz")));
        want.insert(f("-rw-r--r--", format!("/usr/share/bash-completion/completions/{t}")));
        want.insert(f("-rw-r--r--", format!("/usr/share/zsh/vendor-completions/_{t}")));
        want.insert(f(
            "-rw-r--r--",
            format!("/usr/share/fish/vendor_completions.d/{t}.fish"),
        ));
    }
    want.insert(f("-rwxr-xr-x", "/usr/lib/syncpipe/syncpipe-run".into()));
    want.insert(f("-rw-r--r--", "/lib/systemd/system/syncpipe@.service".into()));
    for d in [
        "README.md.gz",
        "migrating.md.gz",
        "systemd.md.gz",
        "copyright",
        "changelog.Debian.gz",
        "examples/www.conf",
        "examples/www.hosts",
    ] {
        want.insert(f("-rw-r--r--", format!("/usr/share/doc/syncpipe/{d}")));
    }
    assert_eq!(files, want, "package contents:\n{listing}");
}

#[test]
fn deb_unpacked_binaries_man_pages_and_runner_work() {
    let s = Scratch::new();
    let root = s.join("root");
    let mut x = Command::new("dpkg");
    x.arg("-x").arg(deb()).arg(&root);
    ok(x);

    for t in ["rwait", "rbatch", "rpush"] {
        let mut c = Command::new(root.join("usr/bin").join(t));
        c.arg("--help");
        let o = run(c);
        // rwait --help exits 1, as inotifywait does.
        assert_eq!(
            o.code,
            if t == "rwait" { 1 } else { 0 },
            "{t} --help:\n{}",
            o.stderr_str()
        );
        assert!(o.stdout_str().contains("--help"), "{t} --help:\n{}", o.stdout_str());
        let mut man = Command::new("man");
        man.args(["--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z"])
            .arg(root.join(format!("usr/share/man/man1/{t}.1.gz")))
            .env("LC_ALL", "C.UTF-8")
            .env("MANROFFSEQ", "")
            .env("MANWIDTH", "80");
        let o = ok(man);
        assert_eq!(o.stderr_str(), "", "man {t} warns");
    }
    // rwait from the package does its job: one event, then exit 0 (not -m).
    let dir = s.mkdir("watched");
    let mut w = Command::new(root.join("usr/bin/rwait"));
    w.args(["-e", "create", "-t", "20"]).arg(&dir);
    let mut p = crate::util::Proc::spawn(w);
    p.wait_stderr("Watches established.");
    fs::write(dir.join("new file"), "x").unwrap();
    let o = p.wait_exit(crate::util::DEADLINE);
    assert_eq!(o.code, 0);
    assert_eq!(o.stdout_str(), format!("{}/ CREATE new file\n", dir.display()));

    // The packaged runner finds the packaged binaries next to itself (../../bin).
    let conf = s.mkdir("conf");
    fs::write(
        conf.join("www.conf"),
        format!("SOURCE={}\nHOSTS=/nonexistent\n", dir.display()),
    )
    .unwrap();
    let mut r = Command::new(root.join("usr/lib/syncpipe/syncpipe-run"));
    r.arg("--dry-run")
        .arg("www")
        .env("CONFIGURATION_DIRECTORY", &conf)
        .env_remove("SYNCPIPE_BINDIR");
    let o = ok(r);
    let bindir = fs::canonicalize(root.join("usr/bin")).unwrap();
    for t in ["rwait", "rbatch", "rpush"] {
        let line = format!("  {}/{t}\n", bindir.display());
        assert!(
            o.stdout_str().contains(&line),
            "runner does not use {line:?}:\n{}",
            o.stdout_str()
        );
    }
}

#[test]
fn deb_installs_and_removes_cleanly_with_dpkg_in_a_private_root() {
    let s = Scratch::new();
    let root = s.join("root");
    let admin = root.join("var/lib/dpkg");
    fs::create_dir_all(admin.join("info")).unwrap();
    fs::create_dir_all(admin.join("updates")).unwrap();
    fs::write(admin.join("status"), "").unwrap();
    fs::write(admin.join("available"), "").unwrap();
    let dpkg = |args: &[&str]| {
        let mut c = Command::new("dpkg");
        // The private database knows none of the dependencies (libc6, rsync), which the
        // test above checks on the real system; the maintainer scripts run outside a
        // chroot (the root has no shell) and, seeing DPKG_ROOT, do nothing.
        c.arg(format!("--root={}", root.display()))
            .args(["--force-script-chrootless", "--force-depends", "--force-not-root"])
            .args(args);
        c
    };
    let mut i = dpkg(&["-i"]);
    i.arg(deb());
    ok(i);
    let st = ok(dpkg(&["-s", "syncpipe"])).stdout_str();
    assert!(st.contains("Status: install ok installed"), "{st}");
    assert!(root.join("usr/bin/rpush").is_file() && root.join("lib/systemd/system/syncpipe@.service").is_file());
    // Installing again (an upgrade to the same version) works too.
    let mut i = dpkg(&["-i"]);
    i.arg(deb());
    ok(i);

    ok(dpkg(&["--purge", "syncpipe"]));
    let mut left = Vec::new();
    for e in walk(&root) {
        if !e.starts_with(&admin) && !e.is_dir() {
            left.push(e);
        }
    }
    assert!(left.is_empty(), "files left after purge: {left:?}");
    assert!(!root.join("usr/bin").exists(), "directories left after purge");
}

fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = vec![p.to_path_buf()];
    if p.is_dir() && !p.is_symlink() {
        for e in fs::read_dir(p).unwrap().flatten() {
            out.extend(walk(&e.path()));
        }
    }
    out
}

#[test]
fn build_deb_refuses_unknown_arguments_and_missing_binaries() {
    let s = Scratch::new();
    let mut cmd = script("scripts/build-deb");
    cmd.arg("--release");
    let o = run(cmd);
    assert_eq!(o.code, 2, "{}", o.stderr_str());
    assert!(
        o.stderr_str().contains("unknown argument: --release"),
        "{}",
        o.stderr_str()
    );

    let out = s.join("out");
    let mut cmd = script("scripts/build-deb");
    cmd.arg("--bin-dir").arg(s.mkdir("empty")).arg("--out").arg(&out);
    let o = run(cmd);
    assert_eq!(o.code, 1, "{}", o.stderr_str());
    assert!(o.stderr_str().contains("rwait: not found"), "{}", o.stderr_str());
    assert_eq!(
        fs::read_dir(&out).map(|d| d.count()).unwrap_or(0),
        0,
        "no package may be written"
    );
}
