//! Rendering one event as output bytes: the default line, `--csv`, and `--format`
//! with `--timefmt`, byte for byte as inotifywait 3.22.6 does.
//!
//! `--format` is tokenised once at start-up, so the per-event cost is a walk over a few
//! tokens appending into one output buffer. One intentional divergence: inotifywait
//! builds records in a 4096-byte buffer, garbles longer ones and rejects a format
//! longer than that buffer (newline included); rwait accepts it and prints records whole.

use std::ffi::CString;

use super::events;
use crate::sys::strftime;

/// The parts of an event that output can show.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// `%w`: the watched path as spelled (directories end in `/`); empty when the
    /// watch is unknown.
    pub watch: &'a [u8],
    /// `%f`: the name inside a watched directory; empty for the watched object itself.
    pub name: &'a [u8],
    pub mask: u32,
    pub cookie: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    Lit(Vec<u8>),
    Watch,
    Name,
    Cookie,
    Events(u8),
    Time,
}

/// How records are rendered.
#[derive(Debug)]
pub enum Renderer {
    /// `%w %e %f\n`.
    Default,
    Csv,
    Format {
        toks: Vec<Tok>,
        /// The format ends in a lone `%` (only possible with `--no-newline`): the C
        /// formatter bails out, so no record is ever printed.
        aborts: bool,
        timefmt: Option<CString>,
    },
}

impl Renderer {
    /// Tokenises `--format FMT`; the newline is appended *before* tokenising, as
    /// inotifywait does, which is why a trailing `%` prints literally without
    /// `--no-newline`.
    pub fn format(fmt: &[u8], newline: bool, timefmt: Option<&[u8]>) -> Renderer {
        let mut f = fmt.to_vec();
        if newline {
            f.push(b'\n');
        }
        let mut toks = vec![];
        let mut lit = vec![];
        let mut aborts = false;
        let mut i = 0;
        while i < f.len() {
            let c = f[i];
            if c != b'%' {
                lit.push(c);
                i += 1;
                continue;
            }
            let Some(&n) = f.get(i + 1) else {
                aborts = true;
                break;
            };
            let tok = match n {
                b'%' => {
                    lit.push(b'%');
                    None
                }
                b'0' => {
                    lit.push(0);
                    None
                }
                b'n' => {
                    lit.push(b'\n');
                    None
                }
                b'w' => Some(Tok::Watch),
                b'f' => Some(Tok::Name),
                b'c' => Some(Tok::Cookie),
                b'e' => Some(Tok::Events(b',')),
                b'T' => Some(Tok::Time),
                sep if f.get(i + 2) == Some(&b'e') => {
                    i += 1;
                    Some(Tok::Events(sep))
                }
                other => {
                    lit.extend_from_slice(&[b'%', other]);
                    None
                }
            };
            if let Some(t) = tok {
                if !lit.is_empty() {
                    toks.push(Tok::Lit(std::mem::take(&mut lit)));
                }
                toks.push(t);
            }
            i += 2;
        }
        if !lit.is_empty() {
            toks.push(Tok::Lit(lit));
        }
        let timefmt = timefmt.map(|t| CString::new(t).unwrap_or_default());
        Renderer::Format { toks, aborts, timefmt }
    }

    /// inotifywait's start-up probe: a fake event with empty path and name; a format
    /// whose result is empty (but did not fail) is rejected with "Something is wrong
    /// with your format string.".
    pub fn probe_is_empty(&self) -> bool {
        let mut out = vec![];
        let v = View {
            watch: b"",
            name: b"",
            mask: 0,
            cookie: 0,
        };
        self.render(&v, &mut out) && out.is_empty()
    }

    /// Appends the record for `v` to `out`. Returns false when no record is printed
    /// (the format bails out, or `%T` expanded to nothing); `out` is then unchanged.
    pub fn render(&self, v: &View<'_>, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        match self {
            Renderer::Default => {
                out.extend_from_slice(v.watch);
                out.push(b' ');
                events::render(v.mask, b',', out);
                out.push(b' ');
                out.extend_from_slice(v.name);
                out.push(b'\n');
            }
            Renderer::Csv => {
                if !v.watch.is_empty() {
                    csv_field(v.watch, out);
                    out.push(b',');
                }
                let mut ev = Vec::with_capacity(32);
                events::render(v.mask, b',', &mut ev);
                csv_field(&ev, out);
                out.push(b',');
                csv_field(v.name, out);
                out.push(b'\n');
            }
            Renderer::Format { toks, aborts, timefmt } => {
                if *aborts {
                    return false;
                }
                let mut time: Option<Vec<u8>> = None;
                for t in toks {
                    match t {
                        Tok::Lit(l) => out.extend_from_slice(l),
                        Tok::Watch => out.extend_from_slice(v.watch),
                        Tok::Name => out.extend_from_slice(v.name),
                        Tok::Cookie => {
                            // Straight into the record: no string per event.
                            let _ = std::io::Write::write_fmt(out, format_args!("{:x}", v.cookie));
                        }
                        Tok::Events(sep) => events::render(v.mask, *sep, out),
                        Tok::Time => {
                            if time.is_none() {
                                // Validation guarantees a timefmt whenever %T is used.
                                let Some(tf) = timefmt else {
                                    out.truncate(start);
                                    return false;
                                };
                                match strftime::format_now(tf) {
                                    Some(s) => time = Some(s),
                                    None => {
                                        out.truncate(start);
                                        return false;
                                    }
                                }
                            }
                            out.extend_from_slice(time.as_deref().unwrap_or_default());
                        }
                    }
                }
            }
        }
        true
    }
}

/// A CSV field, quoted only when it holds `"`, `,` or a newline, or starts or ends with
/// a space (inotifywait's rule; TAB, CR, `;` and non-UTF-8 bytes are written raw).
fn csv_field(s: &[u8], out: &mut Vec<u8>) {
    let quote =
        s.iter().any(|&b| b == b'"' || b == b',' || b == b'\n') || s.first() == Some(&b' ') || s.last() == Some(&b' ');
    if !quote {
        out.extend_from_slice(s);
        return;
    }
    out.push(b'"');
    for &b in s {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::events::*;
    use super::*;

    fn fmt(r: &Renderer, w: &[u8], f: &[u8], mask: u32, cookie: u32) -> Option<String> {
        let mut out = vec![];
        r.render(
            &View {
                watch: w,
                name: f,
                mask,
                cookie,
            },
            &mut out,
        )
        .then(|| String::from_utf8_lossy(&out).into_owned())
    }

    #[test]
    fn default_line_has_trailing_space_for_self_events() {
        assert_eq!(
            fmt(&Renderer::Default, b"d/", b"a", CREATE, 0).unwrap(),
            "d/ CREATE a\n"
        );
        assert_eq!(
            fmt(&Renderer::Default, b"d/f", b"", ATTRIB, 0).unwrap(),
            "d/f ATTRIB \n"
        );
        assert_eq!(
            fmt(&Renderer::Default, b"", b"", Q_OVERFLOW, 0).unwrap(),
            " Q_OVERFLOW \n"
        );
    }

    #[test]
    fn csv_quoting_rules() {
        let c = Renderer::Csv;
        assert_eq!(fmt(&c, b"d/", b"a b", CREATE, 0).unwrap(), "d/,CREATE,a b\n");
        assert_eq!(fmt(&c, b"d/", b"a,b", CREATE, 0).unwrap(), "d/,CREATE,\"a,b\"\n");
        assert_eq!(fmt(&c, b"d/", b"a\"b", CREATE, 0).unwrap(), "d/,CREATE,\"a\"\"b\"\n");
        assert_eq!(fmt(&c, b"d/", b" lead", CREATE, 0).unwrap(), "d/,CREATE,\" lead\"\n");
        assert_eq!(fmt(&c, b"d/", b"trail ", CREATE, 0).unwrap(), "d/,CREATE,\"trail \"\n");
        assert_eq!(
            fmt(&c, b"d/", b"a", CLOSE_WRITE, 0).unwrap(),
            "d/,\"CLOSE_WRITE,CLOSE\",a\n"
        );
        assert_eq!(fmt(&c, b"", b"", Q_OVERFLOW, 0).unwrap(), "Q_OVERFLOW,\n");
        assert_eq!(fmt(&c, b"d/f,1", b"", OPEN, 0).unwrap(), "\"d/f,1\",OPEN,\n");
    }

    #[test]
    fn format_directives_and_fallthrough() {
        let r = Renderer::format(b"[%w][%f][%e][%:e][%_e][%c][%%][%x]", true, None);
        assert_eq!(
            fmt(&r, b"d/", b"a", CLOSE_WRITE, 0x105c2).unwrap(),
            "[d/][a][CLOSE_WRITE,CLOSE][CLOSE_WRITE:CLOSE][CLOSE_WRITE_CLOSE][105c2][%][%x]\n"
        );
        let r = Renderer::format(b"%%e|%ee|%1e|%-e|% e", true, None);
        assert_eq!(
            fmt(&r, b"d/", b"a", CLOSE_WRITE, 0).unwrap(),
            "%e|CLOSE_WRITE,CLOSEe|CLOSE_WRITE1CLOSE|CLOSE_WRITE-CLOSE|CLOSE_WRITE CLOSE\n"
        );
        let r = Renderer::format(b"%w%f%0", false, None);
        assert_eq!(fmt(&r, b"d/", b"a", CREATE, 0).unwrap(), "d/a\0");
        let r = Renderer::format(b"%f%n%e", true, None);
        assert_eq!(fmt(&r, b"d/", b"a", CREATE, 0).unwrap(), "a\nCREATE\n");
    }

    #[test]
    fn trailing_percent_and_probe() {
        assert_eq!(
            fmt(&Renderer::format(b"x%", true, None), b"d/", b"a", CREATE, 0).unwrap(),
            "x%\n"
        );
        assert_eq!(fmt(&Renderer::format(b"x%", false, None), b"d/", b"a", CREATE, 0), None);
        assert!(Renderer::format(b"", false, None).probe_is_empty());
        assert!(Renderer::format(b"%w", false, None).probe_is_empty());
        assert!(Renderer::format(b"%f", false, None).probe_is_empty());
        assert!(!Renderer::format(b"%e", false, None).probe_is_empty());
        assert!(!Renderer::format(b"", true, None).probe_is_empty());
        assert!(!Renderer::format(b"x%", false, None).probe_is_empty());
    }

    #[test]
    fn empty_timefmt_prints_nothing() {
        let r = Renderer::format(b"%T|%f", true, Some(b""));
        assert_eq!(fmt(&r, b"d/", b"a", CREATE, 0), None);
        let r = Renderer::format(b"%T|%f", true, Some(b"at %%"));
        assert_eq!(fmt(&r, b"d/", b"a", CREATE, 0).unwrap(), "at %|a\n");
    }
}
