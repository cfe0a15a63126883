//! The per-host journal of pending paths under `--state-dir` (issue 5, "Nothing lost").
//!
//! One file per target, `DIR/<readable part>-<crc32 of the destination>.journal`. It is
//! append-only while rpush runs: every accepted batch is appended and fsync'd before it
//! counts as queued, so a SIGKILL at any moment loses nothing that rpush had read. After
//! a successful push the file is compacted: rewritten (temp file, fsync, rename, fsync of
//! the directory) to hold exactly what is still pending. At start each journal is
//! replayed into its host's queue before any new input is read.
//!
//! The format (also in `man/rpush.1`, JOURNAL):
//!
//! ```text
//! file    = MAGIC record*
//! MAGIC   = "rpush-journal 1\n"                      (16 bytes)
//! record  = len:u32le crc:u32le payload[len]         crc = CRC-32 (IEEE) of payload
//! payload = 'H' destination NUL base                 (first record: whose journal,
//!                                                     paths relative to which base)
//!         | 'B' (path NUL)*                          (one batch, base-relative paths;
//!                                                     the empty path is the whole base)
//!         | 'O' (path NUL)*                          (an `--on-push` hook is owed for
//!                                                     these paths: delivered, hook not
//!                                                     yet run to its end)
//! ```
//!
//! 'O' came after version 1's first release; the magic is unchanged because journals
//! without it read as before. An older rpush reads an 'O' record as an unknown type,
//! i.e. a damaged tail: it replays the rest and queues a full sync, losing nothing.
//!
//! A record whose length runs past the end of the file (a write cut short), whose CRC
//! does not match, whose length is absurd or whose type is unknown ends the intact part:
//! everything before it is replayed, the rest is reported and kept aside as
//! `FILE.corrupt`. Batches in a bad tail are unknown, so the host also gets a full sync
//! of the base: nothing is lost, only re-checked.
//!
//! Deliberately not here: the queue itself (the worker's `BTreeSet`), locking between
//! threads (the host's mutex guards its journal), and deciding when to compact.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The first bytes of every journal.
pub const MAGIC: &[u8; 16] = b"rpush-journal 1\n";

/// No record is bigger than this; a larger length field is corruption, not a batch.
pub const MAX_JOURNAL_RECORD: u32 = 256 << 20;

const HEADER: u8 = b'H';
const BATCH: u8 = b'B';
const OWED_HOOK: u8 = b'O';

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as zlib and `cksum -a crc32b`
/// compute it: part of the on-disk format (record checksums and file names).
fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// The journal's file name for a destination: readable, and unique through the CRC.
pub fn file_name(dest: &str) -> String {
    let readable: String = dest
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    format!("{readable}-{:08x}.journal", crc32(dest.as_bytes()))
}

fn record(payload: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(payload.len() + 8);
    r.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    r.extend_from_slice(&crc32(payload).to_le_bytes());
    r.extend_from_slice(payload);
    r
}

fn batch_payload<'a>(paths: impl IntoIterator<Item = &'a Vec<u8>>) -> Vec<u8> {
    let mut p = vec![BATCH];
    for path in paths {
        p.extend_from_slice(path);
        p.push(0);
    }
    p
}

/// What a journal file held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replay {
    /// The destination named in the header record, when there was one.
    pub dest: Option<String>,
    /// The base the paths are relative to, from the header record.
    pub base: Option<Vec<u8>>,
    /// Every path of every intact batch.
    pub paths: BTreeSet<Vec<u8>>,
    pub batches: usize,
    /// An `--on-push` hook owed for these paths (an 'O' record): the push was
    /// delivered, but rpush ended before the hook ran to its end.
    pub owed_hook: Option<BTreeSet<Vec<u8>>>,
    /// Where the intact part ends and why, when it is not the end of the file.
    pub bad_tail: Option<BadTail>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct BadTail {
    /// Byte offset of the first bad record.
    pub offset: usize,
    /// Bytes from there to the end of the file.
    pub bytes: usize,
    pub cause: String,
}

/// Parses a whole journal. Never fails: whatever is not intact becomes `bad_tail`.
pub fn parse(data: &[u8]) -> Replay {
    let mut out = Replay::default();
    let bad = |offset: usize, cause: &str| {
        Some(BadTail {
            offset,
            bytes: data.len() - offset,
            cause: cause.to_string(),
        })
    };
    if data.len() < MAGIC.len() {
        if !MAGIC.starts_with(data) {
            out.bad_tail = bad(0, "not an rpush journal");
        } else if !data.is_empty() {
            out.bad_tail = bad(0, "truncated header");
        }
        return out;
    }
    if &data[..MAGIC.len()] != MAGIC {
        out.bad_tail = bad(0, "not an rpush journal (wrong magic)");
        return out;
    }
    let mut at = MAGIC.len();
    while at < data.len() {
        let rest = &data[at..];
        if rest.len() < 8 {
            out.bad_tail = bad(at, "truncated record header");
            return out;
        }
        let len = u32::from_le_bytes(rest[0..4].try_into().unwrap_or_default());
        let crc = u32::from_le_bytes(rest[4..8].try_into().unwrap_or_default());
        if len > MAX_JOURNAL_RECORD {
            out.bad_tail = bad(at, &format!("record length {len} is impossible"));
            return out;
        }
        let len = len as usize;
        if rest.len() - 8 < len {
            out.bad_tail = bad(at, "truncated record (a write was cut short)");
            return out;
        }
        let payload = &rest[8..8 + len];
        if crc32(payload) != crc {
            out.bad_tail = bad(at, "checksum mismatch");
            return out;
        }
        match payload.first() {
            Some(&HEADER) if out.dest.is_none() => {
                let body = &payload[1..];
                let (dest, base) = match body.iter().position(|&b| b == 0) {
                    Some(i) => (&body[..i], Some(body[i + 1..].to_vec())),
                    None => (body, None),
                };
                out.dest = Some(String::from_utf8_lossy(dest).into_owned());
                out.base = base;
            }
            Some(&t @ (BATCH | OWED_HOOK)) => {
                let body = &payload[1..];
                if !body.is_empty() && body.last() != Some(&0) {
                    out.bad_tail = bad(at, "batch record not NUL-terminated");
                    return out;
                }
                let set = if t == BATCH {
                    out.batches += 1;
                    &mut out.paths
                } else {
                    out.owed_hook.get_or_insert_with(BTreeSet::new)
                };
                if !body.is_empty() {
                    for p in body[..body.len() - 1].split(|&b| b == 0) {
                        set.insert(p.to_vec());
                    }
                }
            }
            _ => {
                out.bad_tail = bad(at, "unknown record type");
                return out;
            }
        }
        at += 8 + len;
    }
    out
}

/// An open journal for one destination.
#[derive(Debug)]
pub struct Journal {
    pub path: PathBuf,
    dest: String,
    base: Vec<u8>,
    file: File,
    /// Current size, to decide when compaction is worth it.
    pub size: u64,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).create(true).mode(0o600).open(path)
}

impl Journal {
    /// Opens (creating when missing) the journal for `dest` in `dir` and replays it.
    /// A bad tail is moved aside to `FILE.corrupt` and the journal rewritten from the
    /// intact part, so the next append lands after good records. A journal written for
    /// another base is kept aside as `FILE.otherbase` and its paths are not returned
    /// (relative to another base they name other files); the caller reports it.
    pub fn open(dir: &Path, dest: &str, base: &[u8]) -> io::Result<(Journal, Replay)> {
        let path = dir.join(file_name(dest));
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut replay = parse(&data);
        let aside = |suffix: &str| -> io::Result<()> {
            let mut p = path.as_os_str().to_os_string();
            p.push(suffix);
            fs::write(&p, &data)
        };
        if replay.bad_tail.is_some() {
            aside(".corrupt")?;
        }
        let other_base = replay.base.as_deref().is_some_and(|b| b != base);
        if other_base {
            aside(".otherbase")?;
            replay.paths.clear();
            replay.owed_hook = None;
        }
        let mut j = Journal {
            file: open_append(&path)?,
            path,
            dest: dest.to_string(),
            base: base.to_vec(),
            size: data.len() as u64,
        };
        if data.is_empty() || replay.bad_tail.is_some() || other_base || replay.dest.as_deref() != Some(dest) {
            j.rewrite_with(&replay.paths, replay.owed_hook.as_ref())?;
        }
        Ok((j, replay))
    }

    /// Appends one batch and fsyncs it: when this returns Ok, the batch survives a crash.
    pub fn append<'a>(&mut self, paths: impl IntoIterator<Item = &'a Vec<u8>>) -> io::Result<()> {
        let rec = record(&batch_payload(paths));
        self.file.write_all(&rec)?;
        self.file.sync_data()?;
        self.size += rec.len() as u64;
        Ok(())
    }

    /// Appends (and fsyncs) an 'O' record: a hook may be owed for `paths`. Written
    /// before a push starts, so that a kill between rsync's delivery and the hook's end
    /// leaves the hook owed; the compaction after the push writes what is really owed.
    pub fn append_owed<'a>(&mut self, paths: impl IntoIterator<Item = &'a Vec<u8>>) -> io::Result<()> {
        let mut payload = batch_payload(paths);
        payload[0] = OWED_HOOK;
        let rec = record(&payload);
        self.file.write_all(&rec)?;
        self.file.sync_data()?;
        self.size += rec.len() as u64;
        Ok(())
    }

    /// Replaces the journal with one holding exactly `pending` (atomically: a crash
    /// leaves either the old or the new file, both complete).
    #[cfg(test)]
    pub fn rewrite(&mut self, pending: &BTreeSet<Vec<u8>>) -> io::Result<()> {
        self.rewrite_with(pending, None)
    }

    /// Replaces the journal with one holding exactly `pending` (atomically: a crash
    /// leaves either the old or the new file, both complete), also recording a hook owed for `owed_hook`.
    pub fn rewrite_with(
        &mut self,
        pending: &BTreeSet<Vec<u8>>,
        owed_hook: Option<&BTreeSet<Vec<u8>>>,
    ) -> io::Result<()> {
        let mut data = MAGIC.to_vec();
        let mut header = vec![HEADER];
        header.extend_from_slice(self.dest.as_bytes());
        header.push(0);
        header.extend_from_slice(&self.base);
        data.extend_from_slice(&record(&header));
        if !pending.is_empty() {
            data.extend_from_slice(&record(&batch_payload(pending)));
        }
        if let Some(owed) = owed_hook {
            let mut payload = batch_payload(owed);
            payload[0] = OWED_HOOK;
            data.extend_from_slice(&record(&payload));
        }
        crate::common::fs::replace_file(&self.path, &data, 0o600, true)?;
        self.file = open_append(&self.path)?;
        self.size = data.len() as u64;
        Ok(())
    }
}

/// Journals in `dir` that belong to none of `dests` (a host removed from the hosts
/// file): kept, and named so the user can decide.
pub fn strangers(dir: &Path, dests: &[&str]) -> io::Result<Vec<(PathBuf, Option<String>)>> {
    let ours: BTreeSet<String> = dests.iter().map(|d| file_name(d)).collect();
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let name_b = name.as_bytes();
        if !name_b.ends_with(b".journal") || ours.contains(&*name.to_string_lossy()) {
            continue;
        }
        let dest = fs::read(e.path()).ok().and_then(|d| parse(&d).dest);
        out.push((e.path(), dest));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(x: &[&[u8]]) -> BTreeSet<Vec<u8>> {
        x.iter().map(|s| s.to_vec()).collect()
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        // The "check" value of CRC-32/ISO-HDLC for the ASCII digits 1 to 9.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    /// A journal written by rpush before the CRC came from `crc32fast` (file name and
    /// bytes as they were on disk): the format must stay exactly this.
    const OLD_DEST: &str = "rsync://pusher@127.0.0.2:8730/mod/";
    const OLD_NAME: &str = "rsync___pusher@127.0.0.2_8730_mod_-4dda0dd6.journal";
    const OLD_JOURNAL: &[u8] = b"rpush-journal 1\n(\x00\x00\x00t-s\xe6Hrsync://pusher@127.0.0.2:8730/mod/\x00/src\x0f\x00\x00\x00\x90r\xd3\xa1Ba\x00new\nline\x00\xff-\x00\x02\x00\x00\x00x?\x96\x83B\x00";

    #[test]
    fn a_journal_written_before_reads_and_is_written_the_same() {
        assert_eq!(file_name(OLD_DEST), OLD_NAME);
        let r = parse(OLD_JOURNAL);
        assert_eq!(r.bad_tail, None);
        assert_eq!(
            (r.dest.as_deref(), r.base.as_deref()),
            (Some(OLD_DEST), Some(&b"/src"[..]))
        );
        assert_eq!(r.batches, 2);
        assert_eq!(r.paths, set(&[b"", b"a", b"new\nline", b"\xff-"]));
        // The same appends today give the same bytes under the same name.
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join(OLD_NAME), OLD_JOURNAL).unwrap();
        let (_, replay) = Journal::open(d.path(), OLD_DEST, b"/src").unwrap();
        assert_eq!(replay, r);
        assert_eq!(
            fs::read(d.path().join(OLD_NAME)).unwrap(),
            OLD_JOURNAL,
            "opened without a rewrite"
        );
        let e = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(e.path(), OLD_DEST, b"/src").unwrap();
        j.append(&set(&[b"a", b"new\nline", b"\xff-"])).unwrap();
        j.append(&set(&[b""])).unwrap();
        assert_eq!(fs::read(e.path().join(OLD_NAME)).unwrap(), OLD_JOURNAL);
    }

    #[test]
    fn file_names_are_readable_and_distinct() {
        let a = file_name("rsync://pusher@127.0.0.2:8730/mod/");
        assert!(a.starts_with("rsync___pusher@127.0.0.2_8730_mod_-"), "{a}");
        assert_ne!(a, file_name("rsync://pusher@127.0.0.2:8730/mod_"));
        assert!(!file_name("../../etc/x").contains('/'));
    }

    #[test]
    fn append_reopen_replays_and_rewrite_compacts() {
        let d = tempfile::tempdir().unwrap();
        let (mut j, r) = Journal::open(d.path(), "h:/x", b"/src").unwrap();
        assert_eq!(r.paths, set(&[]));
        j.append(&set(&[b"a", b"new\nline", b"\xff-"])).unwrap();
        j.append(&set(&[b""])).unwrap();
        drop(j);
        let (mut j, r) = Journal::open(d.path(), "h:/x", b"/src").unwrap();
        assert_eq!(r.dest.as_deref(), Some("h:/x"));
        assert_eq!(r.batches, 2);
        assert_eq!(r.paths, set(&[b"", b"a", b"new\nline", b"\xff-"]));
        assert_eq!(r.bad_tail, None);
        j.rewrite(&set(&[b"a"])).unwrap();
        drop(j);
        let (_, r) = Journal::open(d.path(), "h:/x", b"/src").unwrap();
        assert_eq!(r.paths, set(&[b"a"]));
        assert_eq!(r.batches, 1);
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temp file left: {names:?}");
    }

    #[test]
    fn an_owed_hook_survives_reopen_and_goes_with_the_next_rewrite() {
        let d = tempfile::tempdir().unwrap();
        let (mut j, r) = Journal::open(d.path(), "h:/x", b"/src").unwrap();
        assert_eq!(r.owed_hook, None);
        j.rewrite_with(&set(&[b"p"]), Some(&set(&[b"www.conf", b"new\nline"])))
            .unwrap();
        j.append(&set(&[b"q"])).unwrap();
        drop(j);
        let (mut j, r) = Journal::open(d.path(), "h:/x", b"/src").unwrap();
        assert_eq!(r.owed_hook, Some(set(&[b"www.conf", b"new\nline"])));
        assert_eq!(r.paths, set(&[b"p", b"q"]));
        assert_eq!(r.batches, 2);
        assert_eq!(r.bad_tail, None);
        // Owed with no paths is still owed.
        j.rewrite_with(&set(&[]), Some(&set(&[]))).unwrap();
        assert_eq!(parse(&fs::read(&j.path).unwrap()).owed_hook, Some(set(&[])));
        j.rewrite(&set(&[])).unwrap();
        drop(j);
        let (_, r) = Journal::open(d.path(), "h:/x", b"/src").unwrap();
        assert_eq!(r.owed_hook, None);
        // A version 1 journal without 'O' records reads as before (see the test above).
    }

    #[test]
    fn every_cut_of_the_last_record_keeps_the_intact_part() {
        let d = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(d.path(), "h:/x", b"/src").unwrap();
        j.append(&set(&[b"one"])).unwrap();
        let good = fs::read(&j.path).unwrap();
        j.append(&set(&[b"two", b"three"])).unwrap();
        let full = fs::read(&j.path).unwrap();
        for cut in good.len()..full.len() {
            let r = parse(&full[..cut]);
            assert_eq!(r.paths, set(&[b"one"]), "cut at {cut}");
            if cut == good.len() {
                assert_eq!(r.bad_tail, None);
            } else {
                let t = r.bad_tail.expect("a cut record is reported");
                assert_eq!((t.offset, t.bytes), (good.len(), cut - good.len()));
                assert!(t.cause.contains("truncated"), "{}", t.cause);
            }
        }
        // Every flipped byte of the last record is caught (length, CRC or payload).
        for i in good.len()..full.len() {
            let mut bad = full.clone();
            bad[i] ^= 0x40;
            let r = parse(&bad);
            assert!(r.bad_tail.is_some(), "flip at {i} undetected");
            assert_eq!(r.paths, set(&[b"one"]), "flip at {i}");
        }
    }

    #[test]
    fn a_bad_tail_is_kept_aside_and_the_journal_repaired() {
        let d = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(d.path(), "h:/x", b"/src").unwrap();
        j.append(&set(&[b"kept"])).unwrap();
        drop(j);
        let path = d.path().join(file_name("h:/x"));
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"\x03\x00\x00\x00garbage").unwrap();
        drop(f);
        let (mut j, r) = Journal::open(d.path(), "h:/x", b"/src").unwrap();
        assert_eq!(r.paths, set(&[b"kept"]));
        assert!(r.bad_tail.unwrap().cause.contains("checksum"));
        let mut aside = path.clone().into_os_string();
        aside.push(".corrupt");
        assert!(fs::read(&aside).unwrap().ends_with(b"garbage"));
        j.append(&set(&[b"later"])).unwrap();
        drop(j);
        let (_, r) = Journal::open(d.path(), "h:/x", b"/src").unwrap();
        assert_eq!((r.paths, r.bad_tail), (set(&[b"kept", b"later"]), None));
    }

    #[test]
    fn garbage_is_never_a_panic() {
        for data in [
            &b""[..],
            b"rpush",
            b"something else entirely",
            b"rpush-journal 1\n\xff\xff\xff\xff\x00\x00\x00\x00",
            b"rpush-journal 1\n\x01\x00\x00\x00\x00\x00\x00\x00Z",
        ] {
            let r = parse(data);
            assert!(r.paths.is_empty());
            assert_eq!(r.bad_tail.is_some(), !data.is_empty(), "{data:?}");
        }
    }

    #[test]
    fn strangers_are_journals_of_other_destinations() {
        let d = tempfile::tempdir().unwrap();
        Journal::open(d.path(), "old:/x", b"/src").unwrap();
        Journal::open(d.path(), "new:/x", b"/src").unwrap();
        let s = strangers(d.path(), &["new:/x"]).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].1.as_deref(), Some("old:/x"));
    }

    #[test]
    fn a_journal_of_another_base_is_set_aside() {
        let d = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(d.path(), "h:/x", b"/src").unwrap();
        j.append(&set(&[b"a"])).unwrap();
        drop(j);
        let (_, r) = Journal::open(d.path(), "h:/x", b"/other").unwrap();
        assert_eq!(r.base.as_deref(), Some(&b"/src"[..]));
        assert!(r.paths.is_empty());
        let aside = d.path().join(format!("{}.otherbase", file_name("h:/x")));
        assert!(aside.exists());
        let (_, r) = Journal::open(d.path(), "h:/x", b"/other").unwrap();
        assert_eq!((r.base.as_deref(), r.paths.len()), (Some(&b"/other"[..]), 0));
    }
}
