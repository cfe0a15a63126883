//! Thin safe wrappers over the glibc functions we call on purpose, because byte-exact
//! inotifywait compatibility needs glibc's own behaviour: `getopt_long` (GNU argument
//! permutation, abbreviations, diagnostics), `strftime` (C-locale formats that never
//! fail) and `regcomp`/`regexec` (POSIX ERE with glibc's extensions); and the set-up of
//! child processes (`setsid`, `PR_SET_PDEATHSIG`) that std does not offer; and fd 1 and
//! SIGPIPE (`stdio`); and fanotify with file handles, which neither std nor nix wraps. This is the only module allowed `unsafe` code (the crate denies it
//! everywhere else); each block says why it is sound.

pub(crate) mod child;
pub(crate) mod fanotify;
pub(crate) mod getopt;
pub(crate) mod regex;
pub(crate) mod stdio;
pub(crate) mod strftime;
pub(crate) mod syslog;
