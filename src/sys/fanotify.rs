//! fanotify for `rwait -F`: the three system calls (`fanotify_init`, `fanotify_mark`,
//! `open_by_handle_at`) and `name_to_handle_at`, `fstatfs`, wrapped safely, plus a safe
//! parser of the records the kernel writes (metadata, then information records with
//! file handles and names), which needs no `unsafe` at all: it reads the kernel's
//! layout field by field from the bytes.
//!
//! nix 0.31 wraps `fanotify_init`/`fanotify_mark` but not the information records that
//! `FAN_REPORT_DFID_NAME` and `FAN_RENAME` produce, nor file handles, so libc is used
//! directly.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

pub use libc::{
    FAN_CREATE, FAN_DELETE, FAN_MARK_ADD, FAN_MARK_FILESYSTEM, FAN_MOVED_FROM, FAN_MOVED_TO, FAN_ONDIR, FAN_Q_OVERFLOW,
    FAN_RENAME, FAN_REPORT_DFID_NAME, FAN_REPORT_FID, FAN_REPORT_TARGET_FID,
};

/// A new fanotify group (notification class, non-blocking, close-on-exec) reporting
/// with `report` (`FAN_REPORT_*` bits). Event file descriptors are never created in
/// the FID reporting modes, so the event flags only matter for the kernel's checks.
pub fn init(report: libc::c_uint) -> io::Result<OwnedFd> {
    let flags = libc::FAN_CLASS_NOTIF | libc::FAN_CLOEXEC | libc::FAN_NONBLOCK | report;
    // SAFETY: fanotify_init takes two integers and returns a new descriptor or -1.
    let fd = unsafe { libc::fanotify_init(flags, (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC) as _) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds `mask` to the mark of kind `flags` (`FAN_MARK_FILESYSTEM`, ...) on the object
/// at `path`.
pub fn mark(group: BorrowedFd<'_>, flags: libc::c_uint, mask: u64, path: &[u8]) -> io::Result<()> {
    let p = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a valid group descriptor, and `p` is a NUL-terminated string that lives
    // across the call (the kernel only reads it during the call).
    let r = unsafe {
        libc::fanotify_mark(
            group.as_raw_fd(),
            FAN_MARK_ADD | flags,
            mask,
            libc::AT_FDCWD,
            p.as_ptr(),
        )
    };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// The filesystem id the kernel puts in information records (`statfs`'s `f_fsid`,
/// as its 8 bytes), of the filesystem holding `fd`.
pub fn fsid(fd: BorrowedFd<'_>) -> io::Result<[u8; 8]> {
    let st = nix::sys::statfs::fstatfs(fd).map_err(io::Error::from)?;
    // nix exposes fsid_t opaquely; its two ints are the 8 bytes the kernel reports.
    let id: libc::fsid_t = st.filesystem_id();
    // SAFETY: fsid_t is two plain c_ints (8 bytes, no padding); reading it as bytes is
    // reading initialised memory of exactly that size.
    Ok(unsafe { std::mem::transmute::<libc::fsid_t, [u8; 8]>(id) })
}

/// Most a handle can be (`MAX_HANDLE_SZ`).
const MAX_HANDLE: usize = 128;

/// A file handle: its type and its opaque bytes, as the kernel reports them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle {
    pub kind: i32,
    pub bytes: Vec<u8>,
}

/// `struct file_handle` with room for the largest handle.
#[repr(C)]
struct HandleBuf {
    handle_bytes: libc::c_uint,
    handle_type: libc::c_int,
    f_handle: [u8; MAX_HANDLE],
}

/// The handle of the object at `path` (not following a final symlink).
pub fn name_to_handle(path: &[u8]) -> io::Result<Handle> {
    let p = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut h = HandleBuf {
        handle_bytes: MAX_HANDLE as libc::c_uint,
        handle_type: 0,
        f_handle: [0; MAX_HANDLE],
    };
    let mut mount_id: libc::c_int = 0;
    // SAFETY: `h` is a file_handle header followed by MAX_HANDLE bytes, as
    // handle_bytes says; `p` and `mount_id` are valid for the call.
    let r = unsafe {
        libc::name_to_handle_at(
            libc::AT_FDCWD,
            p.as_ptr(),
            (&raw mut h).cast::<libc::file_handle>(),
            &mut mount_id,
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = (h.handle_bytes as usize).min(MAX_HANDLE);
    Ok(Handle {
        kind: h.handle_type,
        bytes: h.f_handle[..n].to_vec(),
    })
}

/// Opens the object `handle` names on the filesystem of `mount_fd`, as an `O_PATH`
/// descriptor (needs CAP_DAC_READ_SEARCH).
pub fn open_by_handle(mount_fd: BorrowedFd<'_>, handle: &Handle) -> io::Result<OwnedFd> {
    if handle.bytes.len() > MAX_HANDLE {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut h = HandleBuf {
        handle_bytes: handle.bytes.len() as libc::c_uint,
        handle_type: handle.kind,
        f_handle: [0; MAX_HANDLE],
    };
    h.f_handle[..handle.bytes.len()].copy_from_slice(&handle.bytes);
    // SAFETY: `h` is a valid file_handle whose handle_bytes fit its buffer; the kernel
    // only reads it; the result is a new descriptor or -1.
    let fd = unsafe {
        libc::open_by_handle_at(
            mount_fd.as_raw_fd(),
            (&raw mut h).cast::<libc::file_handle>(),
            libc::O_PATH | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The kind of an information record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfoKind {
    /// The object's own handle.
    Fid,
    /// The directory's handle and the entry's name.
    DfidName,
    /// The directory's handle.
    Dfid,
    /// `FAN_RENAME`: where the entry was.
    OldDfidName,
    /// `FAN_RENAME`: where the entry is now.
    NewDfidName,
    Other(u8),
}

/// One information record of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info<'a> {
    pub kind: InfoKind,
    pub fsid: [u8; 8],
    pub handle_kind: i32,
    pub handle: &'a [u8],
    /// The name, for the `*DfidName` kinds (empty otherwise).
    pub name: &'a [u8],
}

/// One event: its mask, the pid that caused it, and its information records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub mask: u64,
    pub pid: i32,
    pub infos: Vec<Info<'a>>,
}

/// A record the parser could not make sense of (a kernel that writes another layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// Size of `struct fanotify_event_metadata`.
const METADATA: usize = 24;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Parses the records in `buf` (what one `read` of the group returned). An `Err`
/// ends the parse: what follows cannot be framed.
pub fn parse(buf: &[u8]) -> Vec<Result<Record<'_>, Malformed>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        match parse_one(&buf[at..]) {
            Some((rec, len)) => {
                out.push(Ok(rec));
                at += len;
            }
            None => {
                out.push(Err(Malformed));
                break;
            }
        }
    }
    out
}

fn parse_one(b: &[u8]) -> Option<(Record<'_>, usize)> {
    let event_len = u32_at(b, 0)? as usize;
    let version = *b.get(4)?;
    let metadata_len = u16_at(b, 6)? as usize;
    if version != libc::FANOTIFY_METADATA_VERSION
        || event_len < METADATA
        || metadata_len < METADATA
        || event_len > b.len()
    {
        return None;
    }
    let mask = u64_at(b, 8)?;
    let pid = u32_at(b, 20)? as i32;
    let mut infos = Vec::new();
    let mut at = metadata_len;
    while at + 4 <= event_len {
        let kind = b[at];
        let len = u16_at(b, at + 2)? as usize;
        if len < 4 || at + len > event_len {
            return None;
        }
        let rec = &b[at..at + len];
        let kind = match kind {
            libc::FAN_EVENT_INFO_TYPE_FID => InfoKind::Fid,
            libc::FAN_EVENT_INFO_TYPE_DFID_NAME => InfoKind::DfidName,
            libc::FAN_EVENT_INFO_TYPE_DFID => InfoKind::Dfid,
            libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME => InfoKind::OldDfidName,
            libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME => InfoKind::NewDfidName,
            other => InfoKind::Other(other),
        };
        if !matches!(kind, InfoKind::Other(_)) {
            // header (4), fsid (8), handle_bytes (4), handle_type (4), handle, name.
            let fsid: [u8; 8] = rec.get(4..12)?.try_into().ok()?;
            let hlen = u32_at(rec, 12)? as usize;
            let handle_kind = u32_at(rec, 16)? as i32;
            let handle = rec.get(20..20 + hlen)?;
            let rest = &rec[20 + hlen..];
            let name = match kind {
                InfoKind::DfidName | InfoKind::OldDfidName | InfoKind::NewDfidName => {
                    let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
                    &rest[..end]
                }
                _ => &[][..],
            };
            infos.push(Info {
                kind,
                fsid,
                handle_kind,
                handle,
                name,
            });
        }
        at += len;
    }
    Some((Record { mask, pid, infos }, event_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a record the way the kernel lays it out.
    fn record(mask: u64, infos: &[(u8, &[u8], &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (kind, handle, name) in infos {
            let mut r = vec![*kind, 0, 0, 0];
            r.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
            r.extend_from_slice(&(handle.len() as u32).to_ne_bytes());
            r.extend_from_slice(&1i32.to_ne_bytes());
            r.extend_from_slice(handle);
            if !name.is_empty() {
                r.extend_from_slice(name);
                r.push(0);
            }
            while r.len() % 4 != 0 {
                r.push(0);
            }
            let len = r.len() as u16;
            r[2..4].copy_from_slice(&len.to_ne_bytes());
            body.extend_from_slice(&r);
        }
        let mut m = Vec::new();
        m.extend_from_slice(&((METADATA + body.len()) as u32).to_ne_bytes());
        m.push(libc::FANOTIFY_METADATA_VERSION);
        m.push(0);
        m.extend_from_slice(&(METADATA as u16).to_ne_bytes());
        m.extend_from_slice(&mask.to_ne_bytes());
        m.extend_from_slice(&(-1i32).to_ne_bytes());
        m.extend_from_slice(&42i32.to_ne_bytes());
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn parses_names_handles_and_renames() {
        let mut buf = record(
            FAN_CREATE,
            &[
                (libc::FAN_EVENT_INFO_TYPE_DFID_NAME, b"dirh", b"file"),
                (libc::FAN_EVENT_INFO_TYPE_FID, b"fileh!", b""),
            ],
        );
        buf.extend(record(
            FAN_RENAME | FAN_ONDIR,
            &[
                (libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME, b"a", b"old"),
                (libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME, b"b", b"new name"),
                (99, b"x", b""),
            ],
        ));
        let recs = parse(&buf);
        assert_eq!(recs.len(), 2);
        let r0 = recs[0].as_ref().unwrap();
        assert_eq!((r0.mask, r0.pid, r0.infos.len()), (FAN_CREATE, 42, 2));
        assert_eq!(r0.infos[0].kind, InfoKind::DfidName);
        assert_eq!((r0.infos[0].handle, r0.infos[0].name), (&b"dirh"[..], &b"file"[..]));
        assert_eq!((r0.infos[1].kind, r0.infos[1].handle), (InfoKind::Fid, &b"fileh!"[..]));
        assert_eq!(r0.infos[0].fsid, [1, 2, 3, 4, 5, 6, 7, 8]);
        let r1 = recs[1].as_ref().unwrap();
        assert_eq!(r1.infos.len(), 2, "unknown record kinds are skipped");
        assert_eq!(r1.infos[1].name, b"new name");
    }

    #[test]
    fn a_truncated_or_foreign_record_is_malformed() {
        let buf = record(FAN_CREATE, &[(libc::FAN_EVENT_INFO_TYPE_DFID_NAME, b"dirh", b"f")]);
        assert_eq!(parse(&buf[..buf.len() - 1]), vec![Err(Malformed)]);
        let mut v = buf.clone();
        v[4] = 2;
        assert_eq!(parse(&v), vec![Err(Malformed)]);
        let mut v = buf.clone();
        // An information record claiming more than its event holds.
        v[METADATA + 2] = 200;
        assert_eq!(parse(&v), vec![Err(Malformed)]);
    }
}
