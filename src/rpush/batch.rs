//! Reading batches from stdin.
//!
//! Input is what rbatch writes: paths one per record (newline-terminated, or NUL with
//! `-0`), an empty record after each batch. Plain path streams (`inotifywait --format
//! %w%f`, `find`) have no empty records; there, what arrived together forms a batch:
//! the batch ends when no further record is already buffered. Once an empty record has
//! been seen, only empty records end batches, so a large rbatch batch is not split at a
//! read boundary.
//!
//! Each path is made relative to the base here; a path outside the base is handed to the
//! caller to report and is not part of the batch.

use std::io::{self, Read};

use super::paths;
use crate::common::records::RecordReader;

pub struct BatchReader<R> {
    records: RecordReader<R>,
    cwd: Vec<u8>,
    base: Vec<u8>,
    separated: bool,
}

impl<R: Read> BatchReader<R> {
    pub fn new(input: R, delim: u8, cwd: Vec<u8>, base: Vec<u8>) -> Self {
        BatchReader {
            records: RecordReader::new(input, delim),
            cwd,
            base,
            separated: false,
        }
    }

    /// The next non-empty batch of base-relative paths, or `None` at end of input.
    /// `outside` is called with each input path that lies outside the base.
    pub fn next_batch(&mut self, mut outside: impl FnMut(&[u8])) -> io::Result<Option<Vec<Vec<u8>>>> {
        let mut batch = Vec::new();
        loop {
            match self.records.next_record()? {
                None => return Ok((!batch.is_empty()).then_some(batch)),
                Some(r) if r.is_empty() => {
                    self.separated = true;
                    if !batch.is_empty() {
                        return Ok(Some(batch));
                    }
                }
                Some(r) => {
                    let abs = paths::normalize(&self.cwd, &r);
                    match paths::relative_to(&self.base, &abs) {
                        Some(rel) => batch.push(rel),
                        None => outside(&r),
                    }
                    if !self.separated && !batch.is_empty() && !self.records.has_buffered() {
                        return Ok(Some(batch));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batches(input: &[u8], delim: u8) -> (Vec<Vec<Vec<u8>>>, Vec<Vec<u8>>) {
        let mut r = BatchReader::new(input, delim, b"/home/u".to_vec(), b"/src".to_vec());
        let mut out = vec![];
        let mut outside = vec![];
        while let Some(b) = r.next_batch(|p| outside.push(p.to_vec())).unwrap() {
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
        let mut r = BatchReader::new(
            Drip(vec![b"/src/a\n/src/b\n", b"/src/c\n"]),
            b'\n',
            b"/".to_vec(),
            b"/src".to_vec(),
        );
        assert_eq!(r.next_batch(|_| {}).unwrap().unwrap(), v(&[b"a", b"b"]));
        assert_eq!(r.next_batch(|_| {}).unwrap().unwrap(), v(&[b"c"]));
        assert_eq!(r.next_batch(|_| {}).unwrap(), None);
        // With separators, a read boundary does not end the batch.
        let mut r = BatchReader::new(
            Drip(vec![b"\n/src/a\n", b"/src/b\n\n"]),
            b'\n',
            b"/".to_vec(),
            b"/src".to_vec(),
        );
        assert_eq!(r.next_batch(|_| {}).unwrap().unwrap(), v(&[b"a", b"b"]));
    }
}
