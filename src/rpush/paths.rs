//! Input paths to paths relative to the base, as bytes.
//!
//! Input paths are whatever the watcher printed: absolute, or relative to the directory
//! rpush was started in. They are normalised lexically (no file-system access: the path
//! may be gone, that is often the point) and cut relative to the base. A relative path is
//! held without a leading `./` and with single `/` separators; the base itself is the
//! empty path. The `./` that defeats rsync's `#`/`;` comment rule is added only when the
//! list for rsync's stdin is written (see [`wire`]).

/// The absolute, lexically normalised form of `p`, joined to `cwd` when relative: empty
/// and `.` components dropped, `..` removes the previous component (never above `/`).
pub fn normalize(cwd: &[u8], p: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    let joined: Vec<&[u8]> = if p.first() == Some(&b'/') {
        p.split(|&b| b == b'/').collect()
    } else {
        cwd.split(|&b| b == b'/').chain(p.split(|&b| b == b'/')).collect()
    };
    for c in joined {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = Vec::with_capacity(p.len() + 1);
    for c in parts {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// `abs` relative to `base` (both from [`normalize`]), or `None` when it lies outside.
/// The base itself gives the empty path.
pub fn relative_to(base: &[u8], abs: &[u8]) -> Option<Vec<u8>> {
    if base == b"/" {
        return Some(abs[1..].to_vec());
    }
    let rest = abs.strip_prefix(base)?;
    match rest.first() {
        None => Some(Vec::new()),
        Some(b'/') => Some(rest[1..].to_vec()),
        Some(_) => None,
    }
}

/// How a relative path is written on rsync's stdin: `./` in front so that a name
/// starting with `#` or `;` is not taken for a comment (rsync does that even with
/// `--from0`); the base itself is `.`.
pub fn wire(rel: &[u8]) -> Vec<u8> {
    if rel.is_empty() {
        return b".".to_vec();
    }
    let mut v = Vec::with_capacity(rel.len() + 2);
    v.extend_from_slice(b"./");
    v.extend_from_slice(rel);
    v
}

/// `base/rel` as an absolute path again (for stat and for the `--on-push` command).
pub fn join(base: &[u8], rel: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    if !rel.is_empty() {
        if v.last() != Some(&b'/') {
            v.push(b'/');
        }
        v.extend_from_slice(rel);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalising() {
        assert_eq!(normalize(b"/home/u", b"src/a"), b"/home/u/src/a");
        assert_eq!(normalize(b"/home/u", b"/src//a/./b/"), b"/src/a/b");
        assert_eq!(normalize(b"/home/u", b"../x"), b"/home/x");
        assert_eq!(normalize(b"/", b"../../.."), b"/");
        assert_eq!(normalize(b"/", b"/a\n\xff b"), b"/a\n\xff b");
    }

    #[test]
    fn relative_to_base() {
        assert_eq!(relative_to(b"/src", b"/src/a/b").unwrap(), b"a/b");
        assert_eq!(relative_to(b"/src", b"/src").unwrap(), b"");
        assert_eq!(relative_to(b"/src", b"/srcx/a"), None);
        assert_eq!(relative_to(b"/src", b"/etc"), None);
        assert_eq!(relative_to(b"/", b"/etc/x").unwrap(), b"etc/x");
        assert_eq!(relative_to(b"/", b"/").unwrap(), b"");
    }

    #[test]
    fn wire_form_defeats_comments() {
        assert_eq!(wire(b"#hash"), b"./#hash");
        assert_eq!(wire(b";semi/-x"), b"./;semi/-x");
        assert_eq!(wire(b""), b".");
        assert_eq!(join(b"/src", b"a"), b"/src/a");
        assert_eq!(join(b"/", b"a"), b"/a");
        assert_eq!(join(b"/src", b""), b"/src");
    }
}
