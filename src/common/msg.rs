//! Diagnostics in the `prog: context: cause` shape, written to stderr in one `write` so
//! that messages from parallel threads never interleave mid-line.

use std::io::Write;

/// Writes `prog: message` and a newline to stderr (see [`eprintln_raw`]).
pub fn eprint(prog: &str, message: &str) {
    eprintln_raw([prog.as_bytes(), b": ", message.as_bytes()].concat());
}

/// Writes `message` and a newline to stderr in one write, bytes as they are (messages
/// name paths, and paths are bytes): the one stderr writer. Errors writing stderr are
/// ignored: there is nowhere left to report them.
pub fn eprintln_raw(message: impl AsRef<[u8]>) {
    let message = message.as_ref();
    let mut line = Vec::with_capacity(message.len() + 1);
    line.extend_from_slice(message);
    line.push(b'\n');
    let _ = std::io::stderr().lock().write_all(&line);
}

/// An I/O error as strerror(3) says it, without Rust's " (os error N)" suffix: the
/// text C tools print, and the cause part of `prog: context: cause`.
pub fn os_error(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Renders bytes of a file name for a message: printable ASCII as is, everything else
/// (newlines, control bytes, non-UTF-8) escaped, so a hostile name cannot forge lines
/// or terminal escapes in a log.
pub fn escape_bytes(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_error_is_strerror_text() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(os_error(&e), "No such file or directory");
        assert_eq!(os_error(&std::io::Error::other("plain")), "plain");
    }

    #[test]
    fn escapes_what_could_forge_a_line() {
        assert_eq!(escape_bytes(b"a b"), "a b");
        assert_eq!(escape_bytes(b"a\nb\xff\\"), "a\\nb\\xff\\\\");
        assert_eq!(escape_bytes(b"\x1b[31m"), "\\x1b[31m");
    }
}
