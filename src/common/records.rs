//! Reading delimiter-terminated records (lines, or NUL-terminated with `-0`) as raw
//! bytes. File names are bytes: nothing here assumes UTF-8.

use std::io::{self, Read};

/// Splits a byte stream into records ending in `delim`. A last record without its
/// terminator is still returned (input from `printf` often lacks the final newline).
pub struct RecordReader<R> {
    inner: R,
    delim: u8,
    buf: Vec<u8>,
    start: usize,
    eof: bool,
}

impl<R: Read> RecordReader<R> {
    pub fn new(inner: R, delim: u8) -> Self {
        RecordReader {
            inner,
            delim,
            buf: Vec::with_capacity(64 * 1024),
            start: 0,
            eof: false,
        }
    }

    /// The next record without its delimiter, or `None` at end of input. Interrupted
    /// reads are retried; other read errors are returned.
    pub fn next_record(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut scanned = self.start;
        loop {
            if let Some(i) = self.buf[scanned..].iter().position(|&b| b == self.delim) {
                let end = scanned + i;
                let rec = self.buf[self.start..end].to_vec();
                self.start = end + 1;
                return Ok(Some(rec));
            }
            scanned = self.buf.len();
            if self.eof {
                if self.start < self.buf.len() {
                    let rec = self.buf[self.start..].to_vec();
                    self.start = self.buf.len();
                    return Ok(Some(rec));
                }
                return Ok(None);
            }
            // Compact before reading more so the buffer holds at most one partial record.
            if self.start > 0 {
                self.buf.drain(..self.start);
                scanned -= self.start;
                self.start = 0;
            }
            let old = self.buf.len();
            self.buf.resize(old + 64 * 1024, 0);
            match self.inner.read(&mut self.buf[old..]) {
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

    /// True when bytes of a further record are already buffered (no read needed to
    /// know more input is there). Lets a consumer treat "what arrived together" as one
    /// unit.
    pub fn has_buffered(&self) -> bool {
        self.start < self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8], delim: u8) -> Vec<Vec<u8>> {
        let mut r = RecordReader::new(input, delim);
        let mut out = vec![];
        while let Some(rec) = r.next_record().unwrap() {
            out.push(rec);
        }
        out
    }

    #[test]
    fn lines_with_and_without_final_newline() {
        assert_eq!(all(b"a\nb\n", b'\n'), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(all(b"a\nb", b'\n'), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(all(b"", b'\n'), Vec::<Vec<u8>>::new());
        assert_eq!(all(b"\n\n", b'\n'), vec![b"".to_vec(), b"".to_vec()]);
    }

    #[test]
    fn nul_records_keep_newlines_and_odd_bytes() {
        assert_eq!(all(b"a\nb\0\xff c\0", 0), vec![b"a\nb".to_vec(), b"\xff c".to_vec()]);
    }

    #[test]
    fn records_longer_than_the_read_size() {
        let mut input = vec![b'x'; 200_000];
        input.push(b'\n');
        input.extend_from_slice(b"y\n");
        let recs = all(&input, b'\n');
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].len(), 200_000);
        assert_eq!(recs[1], b"y");
    }
}
