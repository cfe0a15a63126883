//! POSIX extended regular expressions through glibc's `regcomp`/`regexec`, on bytes.
//!
//! inotifywait compiles `--exclude`/`--include` with `regcomp(REG_EXTENDED|REG_NOSUB)`
//! and users rely on glibc's extensions (`\<`, `\w`, back-references, `a{,3}`). The
//! `regex` crate differs in a dozen ways (no back-references, `\d` is a digit class, `.`
//! does not match newline...), so for byte-exact compatibility we call glibc itself. The
//! program never calls `setlocale`, so matching runs in the C locale: bytes, and
//! ASCII-only case folding, exactly as in inotifywait.

use std::ffi::CString;
use std::fmt;
use std::mem::MaybeUninit;

/// A compiled POSIX ERE used only to answer "does it match?".
pub struct PosixRegex {
    // Boxed so the `regex_t` never moves after `regcomp` filled it in.
    re: Box<libc::regex_t>,
}

/// Why a pattern did not compile: glibc's own `regerror` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegexError {
    pub message: String,
}

impl fmt::Display for RegexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RegexError {}

// SAFETY: glibc's regexec only reads the compiled pattern (it takes internal locks where
// it caches), so sharing and sending a compiled regex_t between threads is sound; the
// struct owns its allocation and nothing else aliases it.
unsafe impl Send for PosixRegex {}
// SAFETY: see above; matching takes `&self` and regexec does not mutate the pattern
// observably.
unsafe impl Sync for PosixRegex {}

impl PosixRegex {
    /// Compiles `pattern` as an ERE; `icase` adds `REG_ICASE`.
    pub fn new(pattern: &[u8], icase: bool) -> Result<PosixRegex, RegexError> {
        let pat = CString::new(pattern).map_err(|_| RegexError {
            message: "pattern contains a NUL byte".into(),
        })?;
        let mut flags = libc::REG_EXTENDED | libc::REG_NOSUB;
        if icase {
            flags |= libc::REG_ICASE;
        }
        // SAFETY: regex_t is plain data that regcomp fully initialises on success; on
        // failure we only pass it to regerror, which reads what regcomp set.
        let mut re: Box<libc::regex_t> = Box::new(unsafe { MaybeUninit::zeroed().assume_init() });
        // SAFETY: `re` points to writable memory for a regex_t and `pat` is a valid
        // NUL-terminated string for the duration of the call.
        let rc = unsafe { libc::regcomp(&mut *re, pat.as_ptr(), flags) };
        if rc != 0 {
            let mut buf = vec![0u8; 256];
            // SAFETY: buf is writable for buf.len() bytes; regerror NUL-terminates.
            unsafe {
                libc::regerror(rc, &*re, buf.as_mut_ptr().cast(), buf.len());
            }
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            // glibc leaves the pattern unallocated on failure, but regfree is safe on it.
            // SAFETY: regfree accepts a regex_t left by a failed regcomp.
            unsafe { libc::regfree(&mut *re) };
            return Err(RegexError {
                message: String::from_utf8_lossy(&buf[..end]).into_owned(),
            });
        }
        Ok(PosixRegex { re })
    }

    /// Unanchored search of `text` (which must not contain NUL; file names cannot).
    #[cfg(test)]
    pub fn is_match(&self, text: &[u8]) -> bool {
        let mut s = Vec::with_capacity(text.len() + 1);
        s.extend_from_slice(text);
        s.push(0);
        self.is_match_nul(&s)
    }

    /// Unanchored search of a buffer that already ends in NUL (no copy on the hot
    /// path). Text after an interior NUL is not seen.
    pub fn is_match_nul(&self, text_nul: &[u8]) -> bool {
        assert_eq!(text_nul.last(), Some(&0), "is_match_nul needs a NUL-terminated buffer");
        // SAFETY: the pattern was compiled by regcomp and is alive; the text is
        // NUL-terminated; with REG_NOSUB no match array is written.
        let rc = unsafe { libc::regexec(&*self.re, text_nul.as_ptr().cast(), 0, std::ptr::null_mut(), 0) };
        rc == 0
    }
}

impl Drop for PosixRegex {
    fn drop(&mut self) {
        // SAFETY: the pattern was successfully compiled and is freed exactly once.
        unsafe { libc::regfree(&mut *self.re) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_extensions_work() {
        assert!(PosixRegex::new(br"(a)\1", false).unwrap().is_match(b"xaa"));
        assert!(!PosixRegex::new(br"(a)\1", false).unwrap().is_match(b"xab"));
        assert!(PosixRegex::new(br"\<ab\>", false).unwrap().is_match(b"x ab y"));
        assert!(PosixRegex::new(br"a{,3}b", false).unwrap().is_match(b"aab"));
        assert!(PosixRegex::new(br"[\d]", false).unwrap().is_match(b"\\"));
    }

    #[test]
    fn bytes_and_ascii_case_folding() {
        assert!(PosixRegex::new(b"^.$", false).unwrap().is_match(b"\xff"));
        assert!(PosixRegex::new(b"a.b", false).unwrap().is_match(b"a\nb"));
        assert!(PosixRegex::new(b"ABC", true).unwrap().is_match(b"xabcx"));
        assert!(!PosixRegex::new(b"ABC", false).unwrap().is_match(b"xabcx"));
    }

    #[test]
    fn errors_carry_glibc_text() {
        let e = PosixRegex::new(b"(", false).err().unwrap();
        assert!(!e.message.is_empty());
        assert!(PosixRegex::new(b"*x", false).is_err());
        assert!(PosixRegex::new(b"a{1", false).is_err());
    }

    #[test]
    fn empty_pattern_matches_everything() {
        assert!(PosixRegex::new(b"", false).unwrap().is_match(b"anything"));
    }
}
