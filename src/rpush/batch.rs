//! Reading batches from stdin.
//!
//! Input is what rbatch writes: paths one per record (newline-terminated, or NUL with
//! `-0`), an empty record after each batch. Plain path streams (`inotifywait --format
//! %w%f`, `find`) have no empty records; there, what arrived together forms a batch:
//! the batch ends when no further record is already buffered. Once an empty record has
//! been seen, only empty records end batches, so a large rbatch batch is not split at a
//! read boundary.
//!
//! Each path is made relative to the base here ([`Resolver`]); a record that is not a
//! path inside the base is handed to the caller to report and is not part of the batch.
//! That check stands whatever the watcher or rbatch upstream did: a name with a newline
//! printed by a watcher in newline mode arrives as fragments (`a<LF>secret.txt` as `a`
//! and `secret.txt`), and no fragment may make rpush read outside the base, delete
//! outside it, or sync the base as a whole.
//!
//! Memory is bounded whatever the input: a record longer than [`MAX_PATH_RECORD`] cannot be a
//! path (PATH_MAX is 4096) and is skipped without being buffered, and a batch is handed
//! on once it holds [`MAX_BATCH`] paths even without an empty record.

use std::io::{self, Read};

use super::paths;

/// The longest record kept; longer ones are reported and skipped.
pub const MAX_PATH_RECORD: usize = 64 * 1024;
/// A batch is handed on at this many paths (rbatch's default `--max-paths`).
pub const MAX_BATCH: usize = 10_000;

/// What the reader skipped, for the caller to report.
#[derive(Debug, PartialEq, Eq)]
pub enum Skipped<'a> {
    /// A path outside the base (as given).
    Outside(&'a [u8]),
    /// A record of this many bytes: too long to be a path.
    TooLong(usize),
    /// A relative record without `-C`: relative to what? (The base is then `/`, and a
    /// relative record is most often the tail of a name with a newline in it.)
    Relative(&'a [u8]),
    /// A NUL byte inside a newline-terminated record: rsync's `--from0` list would
    /// split it into two paths.
    Nul(&'a [u8]),
    /// A record that names the whole base without being the base's own name (`.`,
    /// `x/..`): a full sync is never asked for by a fragment.
    WholeBase(&'a [u8]),
    /// The base is `/`: a sync of the whole file system is refused, whoever asks.
    Root(&'a [u8]),
}

/// How records become base-relative paths (see the module doc for why each rule).
#[derive(Debug, Clone)]
pub struct Resolver {
    /// The base, absolute and normalised.
    pub base: Vec<u8>,
    /// `-C` as given (trailing `/` removed), also accepted as the base's own name; `None`
    /// without `-C` (the base is then `/`).
    pub base_arg: Option<Vec<u8>>,
    /// rpush's working directory: a relative record (a watcher given a relative
    /// operand, as in `rwait -mr src | rbatch | rpush -C src`) is relative to it. Only
    /// with `-C`; and only what lands inside the base is taken.
    pub cwd: Vec<u8>,
}

fn trim_slashes(p: &[u8]) -> &[u8] {
    let mut p = p;
    while p.len() > 1 && p.ends_with(b"/") {
        p = &p[..p.len() - 1];
    }
    p
}

impl Resolver {
    /// The base-relative path `record` stands for, or why it is refused. The base itself
    /// is the empty path.
    pub fn resolve<'a>(&self, record: &'a [u8], delim: u8) -> Result<Vec<u8>, Skipped<'a>> {
        if delim != 0 && record.contains(&0) {
            return Err(Skipped::Nul(record));
        }
        let relative = record.first() != Some(&b'/');
        if relative && self.base_arg.is_none() {
            return Err(Skipped::Relative(record));
        }
        let abs = paths::normalize(&self.cwd, record);
        let rel = paths::relative_to(&self.base, &abs).ok_or(Skipped::Outside(record))?;
        if rel.is_empty() {
            if self.base == b"/" {
                return Err(Skipped::Root(record));
            }
            let given = trim_slashes(record);
            let own_name =
                given == self.base.as_slice() || self.base_arg.as_deref().is_some_and(|a| trim_slashes(a) == given);
            if !own_name {
                return Err(Skipped::WholeBase(record));
            }
        }
        Ok(rel)
    }
}

enum Record {
    Bytes(Vec<u8>),
    TooLong(usize),
}

pub struct BatchReader<R> {
    input: R,
    delim: u8,
    buf: Vec<u8>,
    start: usize,
    eof: bool,
    resolver: Resolver,
    separated: bool,
}

impl<R: Read> BatchReader<R> {
    pub fn new(input: R, delim: u8, resolver: Resolver) -> Self {
        BatchReader {
            input,
            delim,
            buf: Vec::with_capacity(64 * 1024),
            start: 0,
            eof: false,
            resolver,
            separated: false,
        }
    }

    /// Bytes of a further record are already buffered.
    fn has_buffered(&self) -> bool {
        self.start < self.buf.len()
    }

    /// The next record, or `None` at end of input. Retries interrupted reads. A record
    /// over `MAX_PATH_RECORD` is dropped as it is read, so the buffer never exceeds
    /// `MAX_PATH_RECORD` plus one read.
    fn next_record(&mut self) -> io::Result<Option<Record>> {
        let mut scanned = self.start;
        let mut dropped = 0usize;
        loop {
            if let Some(i) = self.buf[scanned..].iter().position(|&b| b == self.delim) {
                let end = scanned + i;
                let len = dropped + end - self.start;
                let rec = if dropped > 0 || len > MAX_PATH_RECORD {
                    Record::TooLong(len)
                } else {
                    Record::Bytes(self.buf[self.start..end].to_vec())
                };
                self.start = end + 1;
                return Ok(Some(rec));
            }
            scanned = self.buf.len();
            if self.eof {
                if self.start < self.buf.len() || dropped > 0 {
                    let len = dropped + self.buf.len() - self.start;
                    let rec = if dropped > 0 || len > MAX_PATH_RECORD {
                        Record::TooLong(len)
                    } else {
                        Record::Bytes(self.buf[self.start..].to_vec())
                    };
                    self.start = self.buf.len();
                    return Ok(Some(rec));
                }
                return Ok(None);
            }
            if self.buf.len() - self.start > MAX_PATH_RECORD {
                // No delimiter in sight: forget the bytes, remember only how many.
                dropped += self.buf.len() - self.start;
                self.buf.clear();
                self.start = 0;
                scanned = 0;
            } else if self.start > 0 {
                self.buf.drain(..self.start);
                scanned -= self.start;
                self.start = 0;
            }
            let old = self.buf.len();
            self.buf.resize(old + 64 * 1024, 0);
            match self.input.read(&mut self.buf[old..]) {
                Ok(0) => {
                    self.buf.truncate(old);
                    self.eof = true;
                }
                Ok(n) => self.buf.truncate(old + n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.buf.truncate(old),
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        }
    }

    /// The next non-empty batch of base-relative paths, or `None` at end of input.
    /// `skipped` is called with each record that is not part of a batch.
    pub fn next_batch(&mut self, mut skipped: impl FnMut(Skipped)) -> io::Result<Option<Vec<Vec<u8>>>> {
        let mut batch = Vec::new();
        loop {
            match self.next_record()? {
                None => return Ok((!batch.is_empty()).then_some(batch)),
                Some(Record::TooLong(n)) => skipped(Skipped::TooLong(n)),
                Some(Record::Bytes(r)) if r.is_empty() => {
                    self.separated = true;
                    if !batch.is_empty() {
                        return Ok(Some(batch));
                    }
                }
                Some(Record::Bytes(r)) => {
                    match self.resolver.resolve(&r, self.delim) {
                        Ok(rel) => batch.push(rel),
                        Err(why) => skipped(why),
                    }
                    if batch.len() >= MAX_BATCH {
                        return Ok(Some(batch));
                    }
                }
            }
            if !self.separated && !batch.is_empty() && !self.has_buffered() {
                return Ok(Some(batch));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(cwd: &[u8], base: &[u8]) -> Resolver {
        Resolver {
            base: base.to_vec(),
            base_arg: Some(base.to_vec()),
            cwd: cwd.to_vec(),
        }
    }

    fn batches(input: &[u8], delim: u8) -> (Vec<Vec<Vec<u8>>>, Vec<Vec<u8>>) {
        let mut r = BatchReader::new(input, delim, res(b"/home/u", b"/src"));
        let mut out = vec![];
        let mut outside = vec![];
        while let Some(b) = r
            .next_batch(|p| {
                if let Skipped::Outside(p) = p {
                    outside.push(p.to_vec())
                }
            })
            .unwrap()
        {
            out.push(b);
        }
        (out, outside)
    }

    fn v(x: &[&[u8]]) -> Vec<Vec<u8>> {
        x.iter().map(|s| s.to_vec()).collect()
    }

    #[test]
    fn empty_records_end_batches() {
        let (b, o) = batches(b"/src/a\n/src/b c\n\n/src/d\n\n\n/etc/passwd\n/src\n", b'\n');
        assert_eq!(b, vec![v(&[b"a", b"b c"]), v(&[b"d"]), v(&[b""])]);
        assert_eq!(o, v(&[b"/etc/passwd"]));
    }

    /// Each refusal, and what is still taken: a table of (resolver, record, delimiter,
    /// outcome).
    #[test]
    fn records_that_are_not_paths_inside_the_base_are_refused() {
        let with_c = Resolver {
            base: b"/srv/www".to_vec(),
            base_arg: Some(b"www/".to_vec()),
            cwd: b"/srv".to_vec(),
        };
        let no_c = Resolver {
            base: b"/".to_vec(),
            base_arg: None,
            cwd: b"/".to_vec(),
        };
        type Want = Result<&'static [u8], &'static str>;
        let table: &[(&Resolver, &[u8], u8, Want)] = &[
            (&with_c, b"/srv/www/a", b'\n', Ok(b"a")),
            // A relative watcher operand, in rpush's directory.
            (&with_c, b"www/a/b", b'\n', Ok(b"a/b")),
            (&with_c, b"./www/a", b'\n', Ok(b"a")),
            // The base by its own name: the overflow line, --initial's record.
            (&with_c, b"/srv/www/", b'\n', Ok(b"")),
            (&with_c, b"www/", b'\n', Ok(b"")),
            (&with_c, b"www", 0, Ok(b"")),
            // Fragments of `a<LF>secret.txt`, `x<LF>.`, `y<LF>www/..`.
            (&with_c, b"secret.txt", b'\n', Err("outside")),
            (&with_c, b".", b'\n', Err("outside")),
            (&with_c, b"www/.", b'\n', Err("whole")),
            (&with_c, b"www/..", b'\n', Err("outside")),
            (&with_c, b"www/a/..", b'\n', Err("whole")),
            (&with_c, b"/srv/www/.", b'\n', Err("whole")),
            (&with_c, b"/srv/www/a\0..", b'\n', Err("nul")),
            (&with_c, b"/srv/www/a\n..", 0, Ok(b"a\n..")),
            (&with_c, b"/etc/shadow", b'\n', Err("outside")),
            // Without -C the base is / and nothing relative is taken.
            (&no_c, b"/srv/www/a", b'\n', Ok(b"srv/www/a")),
            (&no_c, b"secret.txt", b'\n', Err("relative")),
            (&no_c, b".", b'\n', Err("relative")),
            (&no_c, b"/", b'\n', Err("root")),
            (&no_c, b"/srv/..", 0, Err("root")),
        ];
        for (r, rec, delim, want) in table {
            let got = match r.resolve(rec, *delim) {
                Ok(p) => Ok(p),
                Err(Skipped::Outside(_)) => Err("outside"),
                Err(Skipped::Relative(_)) => Err("relative"),
                Err(Skipped::Nul(_)) => Err("nul"),
                Err(Skipped::WholeBase(_)) => Err("whole"),
                Err(Skipped::Root(_)) => Err("root"),
                Err(Skipped::TooLong(_)) => Err("toolong"),
            };
            let want = want.map(|p| p.to_vec());
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(rec));
        }
    }

    #[test]
    fn nul_records_keep_newlines() {
        let (b, _) = batches(b"/src/x\ny\0/src/-\xff\0\0/src/#h\0\0", 0);
        assert_eq!(b, vec![v(&[b"x\ny", b"-\xff"]), v(&[b"#h"])]);
    }

    #[test]
    fn without_separators_what_arrived_together_is_one_batch() {
        // A byte slice arrives all at once.
        let (b, _) = batches(b"/src/a\n/src/b\n../../src/c\n", b'\n');
        assert_eq!(b, vec![v(&[b"a", b"b", b"c"])]);
    }

    #[test]
    fn separate_arrivals_are_separate_batches() {
        // A reader that hands out one line per read, like a slow pipe.
        struct Drip(Vec<&'static [u8]>);
        impl Read for Drip {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Ok(0);
                }
                let chunk = self.0.remove(0);
                buf[..chunk.len()].copy_from_slice(chunk);
                Ok(chunk.len())
            }
        }
        let mut r = BatchReader::new(Drip(vec![b"/src/a\n/src/b\n", b"/src/c\n"]), b'\n', res(b"/", b"/src"));
        assert_eq!(r.next_batch(|_| {}).unwrap().unwrap(), v(&[b"a", b"b"]));
        assert_eq!(r.next_batch(|_| {}).unwrap().unwrap(), v(&[b"c"]));
        assert_eq!(r.next_batch(|_| {}).unwrap(), None);
        // With separators, a read boundary does not end the batch.
        let mut r = BatchReader::new(Drip(vec![b"\n/src/a\n", b"/src/b\n\n"]), b'\n', res(b"/", b"/src"));
        assert_eq!(r.next_batch(|_| {}).unwrap().unwrap(), v(&[b"a", b"b"]));
    }

    #[test]
    fn overlong_records_are_skipped_without_buffering_them() {
        let mut input = b"/src/a\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 3 * MAX_PATH_RECORD));
        input.extend_from_slice(b"\n/src/b\n\n");
        input.extend(std::iter::repeat_n(b'y', MAX_PATH_RECORD + 1));
        let mut r = BatchReader::new(&input[..], b'\n', res(b"/", b"/src"));
        let mut skipped = vec![];
        let mut got = vec![];
        while let Some(b) = r
            .next_batch(|s| {
                if let Skipped::TooLong(n) = s {
                    skipped.push(n)
                }
            })
            .unwrap()
        {
            got.push(b);
            assert!(r.buf.capacity() <= 4 * MAX_PATH_RECORD, "{}", r.buf.capacity());
        }
        assert_eq!(got, vec![v(&[b"a", b"b"])]);
        assert_eq!(skipped, vec![3 * MAX_PATH_RECORD, MAX_PATH_RECORD + 1]);
    }

    #[test]
    fn a_batch_without_separators_is_handed_on_at_max_batch() {
        let mut input = b"\n".to_vec();
        for i in 0..MAX_BATCH + 5 {
            input.extend_from_slice(format!("/src/{i}\n").as_bytes());
        }
        let (b, _) = batches(&input, b'\n');
        assert_eq!(b.iter().map(|b| b.len()).collect::<Vec<_>>(), vec![MAX_BATCH, 5]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        /// Any bytes, in any read sizes: no panic, terminates, every path is inside the
        /// base, and the buffer stays bounded.
        #[test]
        fn any_byte_stream_is_read_safely(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..4096),
            chunks in proptest::collection::vec(1usize..300, 1..20),
            delim in proptest::sample::select(vec![b'\n', 0u8]),
        ) {
            struct Chunked<'a> { data: &'a [u8], sizes: Vec<usize>, i: usize }
            impl Read for Chunked<'_> {
                fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                    let n = self.sizes[self.i % self.sizes.len()].min(self.data.len()).min(buf.len());
                    self.i += 1;
                    buf[..n].copy_from_slice(&self.data[..n]);
                    self.data = &self.data[n..];
                    Ok(n)
                }
            }
            let input = Chunked { data: &data, sizes: chunks, i: 0 };
            let mut r = BatchReader::new(input, delim, res(b"/home/u", b"/src"));
            let mut total = 0;
            while let Some(b) = r.next_batch(|_| {}).unwrap() {
                proptest::prop_assert!(!b.is_empty() && b.len() <= MAX_BATCH);
                for p in &b {
                    proptest::prop_assert!(!p.starts_with(b"/") && !p.split(|&c| c == b'/').any(|c| c == b".."));
                }
                total += b.len();
                proptest::prop_assert!(total <= data.len() + 1);
                proptest::prop_assert!(r.buf.capacity() <= 4 * MAX_PATH_RECORD);
            }
        }
    }
}
