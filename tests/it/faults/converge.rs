//! The seeded convergence test: thousands of random file operations through the whole
//! pipeline while hosts are randomly stopped and started; at the end every host's tree
//! equals the source. The seed is printed and taken from `SYNCPIPE_SEED` when set, so a
//! failure can be replayed exactly (the file operations; process timing still varies).

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::pipeline::Pipeline;
use crate::rpush::tree_diff;
use crate::rsyncd::Daemon;
use crate::util::Scratch;

/// xorshift64*: small, deterministic, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> Option<&'a T> {
        (!v.is_empty()).then(|| &v[self.below(v.len())])
    }
}

/// Every directory (the root included) and every non-directory under `root`.
fn entries(root: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut dirs, mut others) = (vec![root.to_path_buf()], Vec::new());
    let mut i = 0;
    while i < dirs.len() {
        if let Ok(rd) = fs::read_dir(&dirs[i]) {
            for e in rd.flatten() {
                match e.file_type() {
                    Ok(t) if t.is_dir() => dirs.push(e.path()),
                    _ => others.push(e.path()),
                }
            }
        }
        i += 1;
    }
    (dirs, others)
}

/// A name from a small set, so that operations collide (rename over, recreate).
fn name(rng: &mut Rng, dir: bool) -> Vec<u8> {
    let odd: [&[u8]; 4] = [b" sp", b"-x", b"#h", b"\xffb"];
    let mut n = if dir { b"d".to_vec() } else { b"f".to_vec() };
    n.extend_from_slice(rng.below(6).to_string().as_bytes());
    if rng.below(4) == 0 {
        n.extend_from_slice(odd[rng.below(odd.len())]);
    }
    n
}

/// One random operation; failures (renaming a directory into itself, onto a non-empty
/// one) are part of the game and ignored.
fn random_op(rng: &mut Rng, src: &Path) {
    let (dirs, files) = entries(src);
    let sub: Vec<PathBuf> = dirs[1..].to_vec();
    let dir = rng.pick(&dirs).unwrap().clone();
    match rng.below(11) {
        0 | 1 => {
            let data: Vec<u8> = (0..rng.below(3000)).map(|_| rng.next() as u8).collect();
            let _ = fs::write(dir.join(OsStr::from_bytes(&name(rng, false))), data);
        }
        2 => {
            if let Some(f) = rng.pick(&files) {
                let mut data = fs::read(f).unwrap_or_default();
                data.extend_from_slice(b"more");
                let _ = fs::write(f, data);
            }
        }
        3 => {
            if let Some(f) = rng.pick(&files)
                && let Ok(h) = fs::OpenOptions::new().write(true).open(f)
            {
                let _ = h.set_len(rng.below(100) as u64);
            }
        }
        4 => {
            let modes = [0o644, 0o600, 0o755, 0o640];
            let target = if rng.below(2) == 0 {
                rng.pick(&files)
            } else {
                rng.pick(&sub)
            };
            if let Some(t) = target
                && !t.is_symlink()
            {
                let mode = if t.is_dir() {
                    [0o755, 0o700][rng.below(2)]
                } else {
                    modes[rng.below(4)]
                };
                let _ = fs::set_permissions(t, fs::Permissions::from_mode(mode));
            }
        }
        5 => {
            if let Some(f) = rng.pick(&files) {
                let _ = fs::rename(f, dir.join(OsStr::from_bytes(&name(rng, false))));
            }
        }
        6 => {
            if let Some(d) = rng.pick(&sub) {
                let _ = fs::rename(d, dir.join(OsStr::from_bytes(&name(rng, true))));
            }
        }
        7 => {
            if let Some(d) = rng.pick(&sub) {
                let _ = fs::remove_dir_all(d);
            }
        }
        8 => {
            let _ = fs::create_dir(dir.join(OsStr::from_bytes(&name(rng, true))));
        }
        9 => {
            // No absolute or '..' targets: the fixture daemons run with `use chroot = no`,
            // which trims them (docs/background.md), a property of the daemon, not rpush.
            let targets: [&[u8]; 3] = [b"f1", b"d2/f3", b"d1/ f4"];
            let _ = symlink(
                OsStr::from_bytes(targets[rng.below(3)]),
                dir.join(OsStr::from_bytes(&name(rng, false))),
            );
        }
        _ => {
            if let Some(f) = rng.pick(&files) {
                let _ = fs::remove_file(f);
            }
        }
    }
}

#[test]
fn faults_random_operations_with_hosts_going_up_and_down_converge() {
    let seed: u64 = match std::env::var("SYNCPIPE_SEED") {
        Ok(s) => s.parse().expect("SYNCPIPE_SEED must be a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    };
    eprintln!("convergence test seed: {seed} (replay with SYNCPIPE_SEED={seed})");
    let mut rng = Rng(seed | 1);
    let s = Scratch::new();
    let src = s.mkdir("src");
    fs::write(src.join("f1"), b"first").unwrap();
    let mut daemons = [Daemon::start(&s, "a", "127.0.0.2"), Daemon::start(&s, "b", "127.0.0.3")];
    let p = {
        let refs: Vec<&Daemon> = daemons.iter().collect();
        Pipeline::start(&src, &refs, true)
    };
    let mut up = vec![true; daemons.len()];
    for round in 0..12 {
        for _ in 0..250 {
            random_op(&mut rng, &src);
        }
        // rpush rightly refuses to push an empty base (an unmounted disk would wipe
        // every host); keep the source from ending up empty.
        if fs::read_dir(&src).unwrap().next().is_none() {
            fs::write(src.join("keep"), b"k").unwrap();
        }
        // A host goes down or comes back; pacing lets batches and retries happen
        // between rounds (it decides nothing: the end state is checked by polling).
        let i = rng.below(daemons.len());
        if up[i] {
            daemons[i].stop();
        } else {
            daemons[i].restart();
        }
        up[i] = !up[i];
        std::thread::sleep(Duration::from_millis(rng.below(400) as u64));
        let _ = round;
    }
    for (i, d) in daemons.iter_mut().enumerate() {
        if !up[i] {
            d.restart();
        }
    }
    let end = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let diffs: Vec<String> = daemons
            .iter()
            .flat_map(|d| {
                tree_diff(&src, &d.module)
                    .into_iter()
                    .map(move |x| format!("{}: {x}", d.name))
            })
            .collect();
        if diffs.is_empty() {
            break;
        }
        if std::time::Instant::now() > end {
            panic!(
                "seed {seed}: hosts never converged:\n{}\n{}",
                diffs.iter().take(40).cloned().collect::<Vec<_>>().join("\n"),
                p.rp.dump()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = p.finish();
    assert_eq!(out.code, 0, "seed {seed}: {}", out.stderr_str());
}
