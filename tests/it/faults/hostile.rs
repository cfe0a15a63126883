//! Hostile input: file names built to break shells, rsync's list parser and line-based
//! tools, pushed through the whole pipeline (rwait | rbatch | rpush, NUL-separated end to
//! end); malformed hosts files and dangerous invocations, each refused with one line
//! naming the file, the line and the cause.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::rpush::{wait_converged, write_file};
use crate::rsyncd::Daemon;
use crate::util::{DEADLINE, Proc, Scratch, bin, contains};

/// Names that have broken sync scripts: each must arrive as itself and run nothing.
fn hostile_names() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        &b"new\nline"[..],
        b"-rf",
        b"--rsh=touch pwned-rsh",
        b"-e touch pwned-e",
        b"#hash",
        b";semi",
        b"  both ends  ",
        b"`touch pwned-backtick`",
        b"$(touch pwned-dollar)",
        b"it's \"quoted\"",
        b"bad\xff\xfename",
        b"star*?[x]",
        b"back\\slash",
        b"tab\there",
        b"\x1b[31mred",
    ]
    .iter()
    .map(|n| n.to_vec())
    .collect();
    v.push(vec![b'n'; 255]);
    v
}

/// A directory chain whose path is about 4,000 bytes, and a file in it.
fn long_path() -> Vec<u8> {
    let mut p = Vec::new();
    for i in 0..19 {
        p.extend_from_slice(format!("{i:02}").as_bytes());
        p.extend(std::iter::repeat_n(b'd', 198));
        p.push(b'/');
    }
    p.extend_from_slice(b"leaf");
    p
}

fn no_pwned(dirs: &[&Path]) {
    for d in dirs {
        for name in ["pwned-rsh", "pwned-e", "pwned-backtick", "pwned-dollar"] {
            assert!(
                !d.join(name).exists(),
                "{} exists: something ran a file name",
                d.join(name).display()
            );
        }
    }
}

#[test]
fn faults_hostile_names_through_the_whole_pipeline() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let cwd = s.mkdir("cwd");
    let d = Daemon::start(&s, "a", "127.0.0.2");
    let mut rw = Command::new(bin("rwait"));
    rw.args([
        "-mr",
        "--format",
        "%w%f%0",
        "--no-newline",
        "-e",
        "close_write,create,delete,moved_to,moved_from,attrib",
    ])
    .arg(&src)
    .current_dir(&cwd)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut rw = rw.spawn().expect("spawn rwait");
    // Readiness: rwait says so on stderr.
    let mut err = rw.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !contains(&seen, b"Watches established.") {
        let n = std::io::Read::read(&mut err, &mut buf).unwrap();
        assert!(n > 0, "rwait ended: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let mut rb = Command::new(bin("rbatch"))
        .args(["-0", "-z", "200ms"])
        .current_dir(&cwd)
        .stdin(Stdio::from(rw.stdout.take().unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn rbatch");
    let mut cmd = Command::new(bin("rpush"));
    cmd.arg("-C")
        .arg(&src)
        .args(["-0", "--retry-min", "100ms", "-t", &d.url(), "--password-file"])
        .arg(&d.password_file)
        .current_dir(&cwd)
        .stdin(Stdio::from(rb.stdout.take().unwrap()));
    let rp = Proc::spawn(cmd);

    let names = hostile_names();
    for n in &names {
        write_file(&src, n, n);
    }
    // A directory with hostile names inside, and the long path.
    for n in &names[..5] {
        let mut p = b"-dir/".to_vec();
        p.extend_from_slice(n);
        write_file(&src, &p, b"inner");
    }
    let long = long_path();
    write_file(&src, &long, b"deep");
    symlink(OsStr::from_bytes(b"$(touch pwned-dollar)"), src.join("link -> `x`")).unwrap();
    wait_converged("hostile names created", &src, &[&d.module], &rp);

    // Delete and rename them: deletions carry the names through rsync's other path.
    for n in &names[..8] {
        fs::remove_file(src.join(OsStr::from_bytes(n))).unwrap();
    }
    fs::rename(src.join("-dir"), src.join("#renamed dir")).unwrap();
    fs::remove_dir_all(src.join(OsStr::from_bytes(&long[..long.len() - 5]))).unwrap();
    wait_converged("hostile names deleted and renamed", &src, &[&d.module], &rp);

    let _ = rw.kill();
    let _ = rw.wait();
    let _ = rb.wait();
    let out = rp.wait_exit(DEADLINE);
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    // The log escapes names: no raw newline or escape byte can forge a log line.
    assert!(!out.stderr.contains(&0x1b), "{}", out.stderr_str());
    no_pwned(&[&cwd, &src, &d.module, s.path(), Path::new("/tmp")]);
}

#[test]
fn faults_every_malformed_hosts_line_names_file_line_and_cause() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    let cases: &[(&[u8], &str)] = &[
        (b"web 2", "unexpected whitespace in target 'web 2'"),
        (b"web2\t#x", "unexpected whitespace"),
        (b"-oProxyCommand=sh:/x", "must not start with '-'"),
        (b"/srv/www", "is a local path, not a target"),
        (b"web2:srv/www", "the remote path 'srv/www' is relative"),
        (b"web2:", "the remote path '' is relative"),
        (b"web2:/srv/../etc", "'..' in a target path"),
        (b"web2::", "no module after '::'"),
        (b"rsync://web2", "rsync:// URL without a module"),
        (b"rsync://web2:99999/m", "bad port '99999'"),
        (b"rsync://[::1/m", "unclosed '['"),
        (b"b@d user@web2:/x", "unexpected whitespace"),
        (b"we$b2:/x", "bad host name 'we$b2'"),
        (b"web2\x07:/x", "control character"),
        (b"web1:/x", "duplicate target 'web1:/x'"),
    ];
    for (line, cause) in cases {
        let mut data = b"# targets\n\nweb1:/x\n".to_vec();
        data.extend_from_slice(line);
        data.push(b'\n');
        let hosts = s.write("hosts", &data);
        let out = crate::util::run({
            let mut c = Command::new(bin("rpush"));
            c.arg("-C").arg(&src).arg("-H").arg(&hosts);
            c
        });
        let shown = String::from_utf8_lossy(line);
        assert_eq!(out.code, 2, "{shown:?}: {}", out.stderr_str());
        let want = format!("rpush: {}:4: ", hosts.display());
        let err = out.stderr_str();
        assert!(
            err.starts_with(&want) && err.contains(cause),
            "{shown:?}: want {want}...{cause}, got:\n{err}"
        );
        assert_eq!(err.lines().count(), 1, "{shown:?}: one line:\n{err}");
    }
    // Not text at all.
    let hosts = s.write("hosts", b"web1:/x\n\xff\xfe:/y\n");
    let out = crate::util::run({
        let mut c = Command::new(bin("rpush"));
        c.arg("-C").arg(&src).arg("-H").arg(&hosts);
        c
    });
    assert_eq!(out.code, 2, "{}", out.stderr_str());
    assert!(
        out.stderr_str().starts_with(&format!("rpush: {}:", hosts.display())),
        "{}",
        out.stderr_str()
    );
    assert_eq!(out.stderr_str().lines().count(), 1, "{}", out.stderr_str());
}

#[test]
fn faults_dangerous_invocations_are_refused_with_an_explanation() {
    let s = Scratch::new();
    let src = s.mkdir("src");
    s.write("src/f", "x");
    let link = s.join("link");
    symlink(&src, &link).unwrap();
    let src_s = src.to_str().unwrap();
    let link_s = link.to_str().unwrap();
    let link_slash = format!("{link_s}/");
    let cases: &[(&[&str], String)] = &[
        (
            &["-C", link_s, "-t", "h:/x"],
            format!("rpush: -C {link_s}: reached through a symbolic link (the directory is {src_s}): give the real directory"),
        ),
        (
            &["-C", &link_slash, "-t", "h:/x"],
            format!("rpush: -C {link_slash}: reached through a symbolic link"),
        ),
        (
            &["-C", "/", "--initial", "-t", "h:/x"],
            "rpush: --initial with -C /: a full sync of the whole file system".to_string(),
        ),
        (
            &["-C", src_s, "-t", "h:www"],
            "rpush: -t h:www: 'h:www': the remote path 'www' is relative (rsync would resolve it against the login's home directory)".to_string(),
        ),
        (
            &["-C", src_s, "-t", "rsync://h/mod/../other"],
            "'..' in a target path".to_string(),
        ),
        (
            &["-C", src_s, "-d", "{}:www", "-t", "h"],
            "is relative".to_string(),
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
            out.stderr_str().starts_with(want.as_str()) || out.stderr_str().contains(want.as_str()),
            "{args:?}: want {want:?}, got:\n{}",
            out.stderr_str()
        );
        assert_eq!(out.stderr_str().lines().count(), 1, "{args:?}: {}", out.stderr_str());
    }
}
