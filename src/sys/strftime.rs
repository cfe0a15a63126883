//! `--timefmt` through glibc's `strftime`, in the C locale, exactly like inotifywait.
//!
//! chrono panics on some user formats and renders others differently (`%Z` as an offset,
//! no GNU flags such as `%^a` or `%10Y`); glibc never fails on a format and is what
//! inotifywait uses, so calling it gives byte-identical `%T` output. The program never
//! calls `setlocale`, so day and month names are English whatever LANG says.

use std::ffi::CString;
use std::mem::MaybeUninit;

unsafe extern "C" {
    // Not declared by the libc crate for Linux.
    fn tzset();
}

/// Reads TZ once, as the C library would at the first localtime call.
pub fn init_timezone() {
    // SAFETY: tzset only reads the environment and sets libc's timezone globals; it is
    // called at start-up before any other thread formats times.
    unsafe { tzset() };
}

/// The current local time formatted with `fmt`, or `None` when strftime produces
/// nothing (an empty format, or output longer than inotifywait's 4096-byte buffer):
/// inotifywait then prints no record at all, and so do we.
pub fn format_now(fmt: &CString) -> Option<Vec<u8>> {
    // SAFETY: time(NULL) has no preconditions.
    let now = unsafe { libc::time(std::ptr::null_mut()) };
    format_time(fmt, now)
}

/// Like [`format_now`] for a given time (tests use a fixed one).
pub fn format_time(fmt: &CString, t: libc::time_t) -> Option<Vec<u8>> {
    let mut tm = MaybeUninit::<libc::tm>::zeroed();
    let mut buf = vec![0u8; 4096];
    // SAFETY: localtime_r writes into our tm; strftime writes at most buf.len() bytes
    // into buf and returns how many (0 when it did not fit or produced nothing).
    let n = unsafe {
        if libc::localtime_r(&t, tm.as_mut_ptr()).is_null() {
            return None;
        }
        libc::strftime(buf.as_mut_ptr().cast(), buf.len(), fmt.as_ptr(), tm.as_ptr())
    };
    if n == 0 {
        return None;
    }
    buf.truncate(n);
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(fmt: &str) -> Option<Vec<u8>> {
        // 2024-06-02 00:13:20 UTC; TZ is whatever the test runner has, so only use
        // fields that do not depend on it.
        format_time(&CString::new(fmt).unwrap(), 1_717_287_200)
    }

    #[test]
    fn unknown_specifiers_are_literal_not_a_crash() {
        assert_eq!(f("%Q|%%").unwrap(), b"%Q|%");
        assert_eq!(f("%Y").unwrap().len(), 4);
    }

    #[test]
    fn empty_result_means_no_record() {
        assert_eq!(f(""), None);
        assert_eq!(f(&"x".repeat(5000)), None);
    }
}
