//! inotify event bits: the names `-e` accepts and the names output prints, in
//! inotifywait's exact order and spelling. The bits and the output names are in
//! `common::events`, shared with rbatch.

pub use crate::common::events::*;

/// Names `-e` accepts (case-insensitively), including the five the help text does not
/// list.
const PARSE: &[(&str, u32)] = &[
    ("access", ACCESS),
    ("modify", MODIFY),
    ("attrib", ATTRIB),
    ("close_write", CLOSE_WRITE),
    ("close_nowrite", CLOSE_NOWRITE),
    ("open", OPEN),
    ("moved_from", MOVED_FROM),
    ("moved_to", MOVED_TO),
    ("create", CREATE),
    ("delete", DELETE),
    ("delete_self", DELETE_SELF),
    ("unmount", UNMOUNT),
    ("q_overflow", Q_OVERFLOW),
    ("ignored", IGNORED),
    ("close", CLOSE),
    ("move_self", MOVE_SELF),
    ("move", MOVED_FROM | MOVED_TO),
    ("isdir", ISDIR),
    ("oneshot", ONESHOT),
    ("all_events", ALL_EVENTS),
];

/// Appends the names of `mask` joined by `sep`; `0x%08x` when no known bit is set.
pub fn render(mask: u32, sep: u8, out: &mut Vec<u8>) {
    let start = out.len();
    for &(bit, name) in NAMES {
        if mask & bit != 0 {
            if out.len() > start {
                out.push(sep);
            }
            out.extend_from_slice(name.as_bytes());
        }
    }
    if out.len() == start {
        out.extend_from_slice(format!("0x{mask:08x}").as_bytes());
    }
}

/// An `-e` argument named an event that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownEvent;

/// Parses one `-e` argument. An empty element anywhere makes the whole argument 0
/// *silently* (`create,` adds nothing, and with no other `-e` every event is watched);
/// an unknown name before any empty element is an error. Both quirks are
/// inotifywait's, kept because scripts depend on whichever they happened to hit.
pub fn parse_arg(arg: &[u8]) -> Result<u32, UnknownEvent> {
    let mut mask = 0;
    for part in arg.split(|&b| b == b',') {
        if part.is_empty() {
            return Ok(0);
        }
        let bit = PARSE
            .iter()
            .find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(part))
            .map(|&(_, bit)| bit)
            .ok_or(UnknownEvent)?;
        mask |= bit;
    }
    Ok(mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(mask: u32, sep: u8) -> String {
        let mut v = vec![];
        render(mask, sep, &mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn kernel_order_with_close_and_isdir() {
        assert_eq!(r(CLOSE_WRITE, b','), "CLOSE_WRITE,CLOSE");
        assert_eq!(r(CLOSE_NOWRITE | ISDIR, b','), "CLOSE_NOWRITE,CLOSE,ISDIR");
        assert_eq!(r(CREATE | ISDIR, b':'), "CREATE:ISDIR");
        assert_eq!(r(UNMOUNT | ISDIR, b','), "UNMOUNT,ISDIR");
        assert_eq!(r(MOVE_SELF | DELETE, b','), "DELETE,MOVE_SELF");
        assert_eq!(r(0, b','), "0x00000000");
        assert_eq!(r(0x1000, b','), "0x00001000");
    }

    #[test]
    fn parse_quirks() {
        assert_eq!(parse_arg(b"create,DELETE"), Ok(CREATE | DELETE));
        assert_eq!(parse_arg(b"Close"), Ok(CLOSE));
        assert_eq!(parse_arg(b"create,"), Ok(0));
        assert_eq!(parse_arg(b""), Ok(0));
        assert_eq!(parse_arg(b",bogus"), Ok(0));
        assert_eq!(parse_arg(b"create,,delete"), Ok(0));
        assert_eq!(parse_arg(b"bogus,"), Err(UnknownEvent));
        assert_eq!(parse_arg(b"0x100"), Err(UnknownEvent));
        assert_eq!(parse_arg(b"create "), Err(UnknownEvent));
    }
}
