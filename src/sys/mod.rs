//! Thin safe wrappers over the glibc functions we call on purpose, because byte-exact
//! inotifywait compatibility needs glibc's own behaviour: `getopt_long` (GNU argument
//! permutation, abbreviations, diagnostics), `strftime` (C-locale formats that never
//! fail) and `regcomp`/`regexec` (POSIX ERE with glibc's extensions); and the set-up of
//! child processes (`setsid`, `PR_SET_PDEATHSIG`) that std does not offer; and fanotify with file
//! handles, which neither std nor nix wraps. This is the
//! only module with `unsafe` code besides process set-up in the binaries.

pub mod child;
pub mod fanotify;
pub mod getopt;
pub mod regex;
pub mod strftime;
pub mod syslog;
