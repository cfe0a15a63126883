//! The inotify event bits (the kernel's values) and their names as inotifywait prints
//! them, in its order: the one table that rwait renders with and that rbatch reads
//! event lines with.

pub const ACCESS: u32 = 0x1;
pub const MODIFY: u32 = 0x2;
pub const ATTRIB: u32 = 0x4;
pub const CLOSE_WRITE: u32 = 0x8;
pub const CLOSE_NOWRITE: u32 = 0x10;
pub const OPEN: u32 = 0x20;
pub const MOVED_FROM: u32 = 0x40;
pub const MOVED_TO: u32 = 0x80;
pub const CREATE: u32 = 0x100;
pub const DELETE: u32 = 0x200;
pub const DELETE_SELF: u32 = 0x400;
pub const MOVE_SELF: u32 = 0x800;
pub const UNMOUNT: u32 = 0x2000;
pub const Q_OVERFLOW: u32 = 0x4000;
pub const IGNORED: u32 = 0x8000;
pub const ISDIR: u32 = 0x4000_0000;
pub const ONESHOT: u32 = 0x8000_0000;
pub const CLOSE: u32 = CLOSE_WRITE | CLOSE_NOWRITE;
pub const ALL_EVENTS: u32 = 0xfff;
pub const DONT_FOLLOW: u32 = 0x0200_0000;

/// Output order: inotifywait tests the bits in this sequence, so a close prints
/// `CLOSE_WRITE,CLOSE` and a directory event ends in `,ISDIR`. `CLOSE` is printed when
/// either close bit is set; there is never a `MOVE`.
pub const NAMES: &[(u32, &str)] = &[
    (ACCESS, "ACCESS"),
    (MODIFY, "MODIFY"),
    (ATTRIB, "ATTRIB"),
    (CLOSE_WRITE, "CLOSE_WRITE"),
    (CLOSE_NOWRITE, "CLOSE_NOWRITE"),
    (OPEN, "OPEN"),
    (MOVED_FROM, "MOVED_FROM"),
    (MOVED_TO, "MOVED_TO"),
    (CREATE, "CREATE"),
    (DELETE, "DELETE"),
    (DELETE_SELF, "DELETE_SELF"),
    (UNMOUNT, "UNMOUNT"),
    (Q_OVERFLOW, "Q_OVERFLOW"),
    (IGNORED, "IGNORED"),
    (CLOSE, "CLOSE"),
    (MOVE_SELF, "MOVE_SELF"),
    (ISDIR, "ISDIR"),
    (ONESHOT, "ONESHOT"),
];
