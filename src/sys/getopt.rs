//! GNU `getopt_long`, called in glibc itself.
//!
//! rwait must parse its command line exactly as inotifywait does: argument permutation
//! (options after operands), `--` , clustered short options, attached values, `=`
//! values, unique-prefix abbreviations of long options with glibc's ambiguity messages,
//! `POSIXLY_CORRECT`, and diagnostics prefixed with `argv[0]`. Emulating all of that in
//! Rust (or bending clap to it) would be a long, never-quite-equal copy; calling the
//! same function inotifywait calls is exact by construction.
//!
//! getopt_long keeps its state in globals (`optind`, `optarg`), so a parse holds a
//! process-wide lock for its whole life.

use std::ffi::{CString, OsStr, OsString, c_char, c_int};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::{Mutex, MutexGuard};

unsafe extern "C" {
    static mut optarg: *mut c_char;
    static mut optind: c_int;
    static mut opterr: c_int;
}

static GETOPT_LOCK: Mutex<()> = Mutex::new(());

/// One entry of the long-option table.
#[derive(Debug, Clone, Copy)]
pub struct LongOpt {
    pub name: &'static str,
    pub takes_arg: bool,
    /// What [`Getopt::next`] returns for it (usually the short option's character).
    pub val: i32,
}

/// What one step of the parse produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// An option: its `val` (the short option character, or the long option's value)
    /// and its argument if it takes one.
    Opt(i32, Option<Vec<u8>>),
    /// glibc already printed a diagnostic (unknown option, missing argument, ambiguous
    /// abbreviation, unexpected `=value`).
    Error,
}

/// An in-progress getopt_long parse over an argument vector.
pub struct Getopt {
    _guard: MutexGuard<'static, ()>,
    // The argument strings, each NUL-terminated. `argv` points into their heap
    // buffers, which never move or change size while the parse lives (the outer Vec
    // may move with the struct; the inner buffers do not).
    _args: Vec<Vec<u8>>,
    // argv[0..argc] and a NULL: glibc permutes these pointers in place, so the array
    // is only ever handed over through `as_mut_ptr` and never reallocated.
    argv: Vec<*mut c_char>,
    _names: Vec<CString>,
    longopts: Vec<libc::option>,
    shortopts: CString,
    done: bool,
}

impl Getopt {
    /// Starts a parse of `args` (`argv[0]` included: glibc prefixes its messages with it).
    pub fn new(args: &[OsString], shortopts: &str, long: &[LongOpt]) -> Getopt {
        let guard = GETOPT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // Arguments from the OS cannot contain NUL; a caller-built vector that does is
        // cut at the NUL, which is what the kernel would have done.
        let mut args: Vec<Vec<u8>> = args
            .iter()
            .map(|a| {
                let b = a.as_bytes();
                let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
                let mut s = Vec::with_capacity(end + 1);
                s.extend_from_slice(&b[..end]);
                s.push(0);
                s
            })
            .collect();
        // Pointers derived with `as_mut_ptr`, so they carry write permission: the C
        // prototype is `char *const argv[]` and glibc does not write the strings, but
        // nothing here relies on that.
        let mut argv: Vec<*mut c_char> = args.iter_mut().map(|a| a.as_mut_ptr().cast::<c_char>()).collect();
        argv.push(std::ptr::null_mut());
        let names: Vec<CString> = long
            .iter()
            .map(|o| CString::new(o.name).expect("option name"))
            .collect();
        let mut longopts: Vec<libc::option> = long
            .iter()
            .zip(&names)
            .map(|(o, n)| libc::option {
                name: n.as_ptr(),
                has_arg: c_int::from(o.takes_arg),
                flag: std::ptr::null_mut(),
                val: o.val,
            })
            .collect();
        longopts.push(libc::option {
            name: std::ptr::null(),
            has_arg: 0,
            flag: std::ptr::null_mut(),
            val: 0,
        });
        // SAFETY: we hold GETOPT_LOCK, so no other thread touches getopt's globals.
        // optind = 0 makes glibc reinitialise completely (and re-read POSIXLY_CORRECT).
        unsafe {
            optind = 0;
            opterr = 1;
        }
        Getopt {
            _guard: guard,
            _args: args,
            argv,
            _names: names,
            longopts,
            shortopts: CString::new(shortopts).expect("short option string"),
            done: false,
        }
    }

    /// The next option, or `None` when options are over (then [`operands`](Self::operands)
    /// gives the rest).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Item> {
        if self.done {
            return None;
        }
        let argc = (self.argv.len() - 1) as c_int;
        // SAFETY: `self.argv` is a NULL-terminated array of pointers to NUL-terminated
        // strings owned by `self._args`, all alive and unmoved until `self` drops.
        // GNU getopt_long permutes the array elements in place (it writes through the
        // array pointer), so the pointer comes from `as_mut_ptr` on the Vec we own
        // exclusively through `&mut self`; no reference into the array is live during
        // the call and the Vec is never resized afterwards. Between calls glibc keeps
        // pointers into the strings (`optarg`, and its position inside a cluster such
        // as `-mrq`), which stay valid because the strings live, unmoved, as long as
        // `self`; a new parse sets `optind = 0`, so glibc never uses a stale one.
        // longopts ends with an all-zero entry;
        // shortopts is a C string; we hold GETOPT_LOCK, so no other thread uses
        // getopt's globals.
        let c = unsafe {
            libc::getopt_long(
                argc,
                self.argv.as_mut_ptr(),
                self.shortopts.as_ptr(),
                self.longopts.as_ptr(),
                std::ptr::null_mut(),
            )
        };
        match c {
            -1 => {
                self.done = true;
                None
            }
            63 /* '?' */ => Some(Item::Error),
            val => {
                // SAFETY: optarg is NULL or points into one of our NUL-terminated
                // argument strings (or just past an option inside one), alive in self.
                let arg = unsafe {
                    let p = optarg;
                    if p.is_null() { None } else { Some(std::ffi::CStr::from_ptr(p).to_bytes().to_vec()) }
                };
                Some(Item::Opt(val, arg))
            }
        }
    }

    /// The operands left after option processing (in glibc's permuted order), from
    /// `optind` on. Meaningful after [`next`](Self::next) returned `None` or the caller
    /// stopped early.
    pub fn operands(&self) -> Vec<OsString> {
        // SAFETY: we hold the lock; optind is a plain int.
        let start = unsafe { optind }.max(1) as usize;
        let argc = self.argv.len() - 1;
        (start.min(argc)..argc)
            .map(|i| {
                // SAFETY: glibc only permutes the pointers, so every argv[i] below argc
                // is still one of our NUL-terminated strings, alive in self._args.
                let s = unsafe { std::ffi::CStr::from_ptr(self.argv[i]) };
                OsString::from_vec(s.to_bytes().to_vec())
            })
            .collect()
    }
}

/// `strtol(s, &end, 10)` exactly as glibc does it (leading blanks and a sign accepted),
/// reporting how many bytes were consumed and whether errno was set (ERANGE).
pub fn strtol(s: &OsStr) -> (i64, usize, Option<std::io::Error>) {
    let c = CString::new(s.as_bytes()).unwrap_or_default();
    let mut end: *mut c_char = std::ptr::null_mut();
    // SAFETY: __errno_location returns this thread's errno; c is NUL-terminated and
    // `end` is written by strtol to point into it.
    let (v, err) = unsafe {
        *libc::__errno_location() = 0;
        let v = libc::strtol(c.as_ptr(), &mut end, 10);
        let e = *libc::__errno_location();
        (v, e)
    };
    let used = (end as usize).saturating_sub(c.as_ptr() as usize);
    let err = (err != 0).then(|| std::io::Error::from_raw_os_error(err));
    (v, used, err)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: &[LongOpt] = &[
        LongOpt {
            name: "monitor",
            takes_arg: false,
            val: 'm' as i32,
        },
        LongOpt {
            name: "timeout",
            takes_arg: true,
            val: 't' as i32,
        },
        LongOpt {
            name: "timefmt",
            takes_arg: true,
            val: 1000,
        },
    ];

    fn parse(args: &[&str]) -> (Vec<Item>, Vec<OsString>) {
        let v: Vec<OsString> = args.iter().map(OsString::from).collect();
        let mut g = Getopt::new(&v, "mt:", LONG);
        let mut items = vec![];
        while let Some(i) = g.next() {
            items.push(i);
        }
        let ops = g.operands();
        (items, ops)
    }

    #[test]
    fn permutation_clusters_and_attached_values() {
        let (items, ops) = parse(&["p", "dir", "-mt5", "--time=7", "--", "-m"]);
        assert_eq!(
            items,
            vec![
                Item::Opt('m' as i32, None),
                Item::Opt('t' as i32, Some(b"5".to_vec())),
                Item::Error, // --time is ambiguous: timeout, timefmt
            ]
        );
        assert!(ops.contains(&OsString::from("dir")));
    }

    #[test]
    fn abbreviation_and_double_dash() {
        let (items, ops) = parse(&["p", "--mon", "--timeo", "3", "--", "-m"]);
        assert_eq!(
            items,
            vec![Item::Opt('m' as i32, None), Item::Opt('t' as i32, Some(b"3".to_vec()))]
        );
        assert_eq!(ops, vec![OsString::from("-m")]);
    }

    #[test]
    fn strtol_like_glibc() {
        assert_eq!(strtol(OsStr::new(" +12")).0, 12);
        assert_eq!(strtol(OsStr::new("12x")).1, 2);
        assert!(strtol(OsStr::new("99999999999999999999")).2.is_some());
        assert_eq!(strtol(OsStr::new("")).1, 0);
    }
}
