//! scripts/install and `make install`: the Debian layout under DESTDIR/PREFIX, the unit
//! naming the installed runner, byte-identical reruns, --uninstall, and refusals.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use super::{bin_dir, repo, script};
use crate::util::{Scratch, run};

const TOOLS: [&str; 3] = ["rwait", "rbatch", "rpush"];

/// Every file under `root` with its mode and bytes, keyed by relative path.
fn files(root: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, (u32, Vec<u8>)>) {
        for e in fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                walk(&p, root, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, (m.permissions().mode() & 0o7777, fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .args(["-d", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(&data).unwrap();
    });
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    writer.join().unwrap();
    assert!(child.wait().unwrap().success(), "gzip -d failed");
    out
}

/// The files an install with this PREFIX must produce (relative to DESTDIR), and their
/// modes.
fn expected(prefix: &str, unitdir: &str) -> BTreeMap<String, u32> {
    let p = prefix.trim_start_matches('/');
    let mut want = BTreeMap::new();
    for t in TOOLS {
        want.insert(format!("{p}/bin/{t}"), 0o755);
        want.insert(format!("{p}/share/man/man1/{t}.1.gz"), 0o644);
        want.insert(format!("{p}/share/bash-completion/completions/{t}"), 0o644);
        want.insert(format!("{p}/share/zsh/vendor-completions/_{t}"), 0o644);
        want.insert(format!("{p}/share/fish/vendor_completions.d/{t}.fish"), 0o644);
    }
    want.insert(format!("{p}/lib/syncpipe/syncpipe-run"), 0o755);
    want.insert(format!("{}/syncpipe@.service", unitdir.trim_start_matches('/')), 0o644);
    for d in [
        "README.md",
        "migrating.md",
        "systemd.md",
        "examples/www.conf",
        "examples/www.hosts",
    ] {
        want.insert(format!("{p}/share/doc/syncpipe/{d}"), 0o644);
    }
    want
}

/// Checks an installed tree against the repository: layout, modes, and that each file is
/// the repository's (man pages gzipped, binaries as built, the unit with its paths).
#[track_caller]
fn check_tree(dest: &Path, prefix: &str, unitdir: &str) {
    let got = files(dest);
    let want = expected(prefix, unitdir);
    let got_modes: BTreeMap<String, u32> = got.iter().map(|(k, (m, _))| (k.clone(), *m)).collect();
    assert_eq!(got_modes, want, "installed files and modes under {}", dest.display());
    let p = prefix.trim_start_matches('/');
    let r = repo();
    for t in TOOLS {
        assert_eq!(
            got[&format!("{p}/bin/{t}")].1,
            fs::read(bin_dir().join(t)).unwrap(),
            "{t} binary"
        );
        assert_eq!(
            gunzip(&got[&format!("{p}/share/man/man1/{t}.1.gz")].1),
            fs::read(r.join(format!("man/{t}.1"))).unwrap(),
            "{t}.1.gz is man/{t}.1"
        );
        assert_eq!(
            got[&format!("{p}/share/bash-completion/completions/{t}")].1,
            fs::read(r.join(format!("completions/{t}.bash"))).unwrap()
        );
        assert_eq!(
            got[&format!("{p}/share/zsh/vendor-completions/_{t}")].1,
            fs::read(r.join(format!("completions/_{t}"))).unwrap()
        );
        assert_eq!(
            got[&format!("{p}/share/fish/vendor_completions.d/{t}.fish")].1,
            fs::read(r.join(format!("completions/{t}.fish"))).unwrap()
        );
    }
    let unit = String::from_utf8(
        got[&format!("{}/syncpipe@.service", unitdir.trim_start_matches('/'))]
            .1
            .clone(),
    )
    .unwrap();
    let exec = format!("ExecStart={prefix}/lib/syncpipe/syncpipe-run %i\n");
    assert!(
        unit.contains(&exec),
        "the unit must run the installed runner ({exec:?}):\n{unit}"
    );
    assert!(!unit.contains("@LIBDIR@"), "placeholder left in the unit:\n{unit}");
}

#[test]
fn install_lays_out_debian_paths_under_destdir_and_prefix_and_reruns_identically() {
    let s = Scratch::new();
    let dest = s.join("stage");
    let mut cmd = script("scripts/install");
    cmd.arg("PREFIX=/usr/local").arg(format!("DESTDIR={}", dest.display()));
    cmd.arg("--bin-dir").arg(bin_dir());
    let o = run(cmd);
    assert_eq!(o.code, 0, "scripts/install failed:\n{}", o.stderr_str());
    check_tree(&dest, "/usr/local", "/usr/local/lib/systemd/system");
    let first = files(&dest);

    // Again, through the environment this time: same files, same bytes, same modes.
    let mut cmd = script("scripts/install");
    cmd.env("PREFIX", "/usr/local")
        .env("DESTDIR", &dest)
        .arg("--bin-dir")
        .arg(bin_dir());
    let o = run(cmd);
    assert_eq!(o.code, 0, "second scripts/install failed:\n{}", o.stderr_str());
    assert!(files(&dest) == first, "a second install changed the tree");

    // --uninstall removes every file it installed (directories shared with other
    // packages stay).
    let mut cmd = script("scripts/install");
    cmd.arg("--uninstall")
        .arg("PREFIX=/usr/local")
        .arg(format!("DESTDIR={}", dest.display()));
    let o = run(cmd);
    assert_eq!(o.code, 0, "scripts/install --uninstall failed:\n{}", o.stderr_str());
    assert_eq!(files(&dest).keys().collect::<Vec<_>>(), Vec::<&String>::new());
}

#[test]
fn make_install_with_prefix_usr_puts_the_unit_where_debian_12_looks() {
    let s = Scratch::new();
    let dest = s.join("stage");
    let mut cmd = Command::new("make");
    cmd.current_dir(repo())
        .arg("--no-print-directory")
        .arg("install")
        .arg("PREFIX=/usr")
        .arg(format!("DESTDIR={}", dest.display()))
        .arg(format!("BIN_DIR={}", bin_dir().display()));
    let o = run(cmd);
    assert_eq!(
        o.code,
        0,
        "make install failed:\n{}\n{}",
        o.stdout_str(),
        o.stderr_str()
    );
    check_tree(&dest, "/usr", "/lib/systemd/system");
}

#[test]
fn install_refuses_a_relative_prefix_unknown_arguments_and_missing_binaries() {
    let s = Scratch::new();
    let dest = s.join("stage");

    let mut cmd = script("scripts/install");
    cmd.arg("PREFIX=usr/local").arg(format!("DESTDIR={}", dest.display()));
    let o = run(cmd);
    assert_eq!(o.code, 2, "relative PREFIX: {}", o.stderr_str());
    assert!(o.stderr_str().contains("must be absolute"), "{}", o.stderr_str());

    let mut cmd = script("scripts/install");
    cmd.arg("--prefix=/usr");
    let o = run(cmd);
    assert_eq!(o.code, 2, "unknown argument: {}", o.stderr_str());
    assert!(
        o.stderr_str().contains("unknown argument: --prefix=/usr"),
        "{}",
        o.stderr_str()
    );

    let empty = s.mkdir("no-binaries");
    let mut cmd = script("scripts/install");
    cmd.arg(format!("DESTDIR={}", dest.display()))
        .arg("--bin-dir")
        .arg(&empty);
    let o = run(cmd);
    assert_eq!(o.code, 1, "missing binaries: {}", o.stderr_str());
    assert!(o.stderr_str().contains("rwait: not found"), "{}", o.stderr_str());
    assert!(!dest.exists(), "nothing may be installed when a binary is missing");
}

#[test]
fn deployment_scripts_pass_shellcheck() {
    let mut cmd = Command::new("shellcheck");
    cmd.current_dir(repo())
        .args(["scripts/install", "scripts/build-deb", "scripts/install-deps"])
        .arg("packaging/systemd/syncpipe-run");
    let o = run(cmd);
    assert_eq!(o.code, 0, "shellcheck:\n{}{}", o.stdout_str(), o.stderr_str());
}
