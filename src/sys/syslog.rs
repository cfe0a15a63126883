//! `-s`/`--syslog`: diagnostics to syslog instead of stderr, opened like inotifywait
//! does (`LOG_CONS|LOG_PID|LOG_NDELAY`, facility daemon, priority info).

use std::ffi::CString;

/// Opens the connection; `ident` must live for the rest of the program (glibc keeps the
/// pointer), so it is leaked on purpose.
pub fn open(ident: &str) {
    let id: &'static CString = Box::leak(Box::new(CString::new(ident).unwrap_or_default()));
    // SAFETY: `id` is 'static as openlog requires.
    unsafe {
        libc::openlog(
            id.as_ptr(),
            libc::LOG_CONS | libc::LOG_PID | libc::LOG_NDELAY,
            libc::LOG_DAEMON,
        )
    };
}

/// Logs one message at LOG_INFO.
pub fn info(msg: &[u8]) {
    let end = msg.iter().position(|&b| b == 0).unwrap_or(msg.len());
    let m = CString::new(&msg[..end]).unwrap_or_default();
    // SAFETY: "%s" with one valid C string argument.
    unsafe { libc::syslog(libc::LOG_INFO, c"%s".as_ptr(), m.as_ptr()) };
}
