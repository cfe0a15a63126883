//! syncpipe: small Unix tools that keep directories in sync across hosts.
//!
//! * [`rwait`]: a drop-in `inotifywait` (same options, same bytes out) that fixes its
//!   known bugs.
//! * [`rbatch`]: coalesces event lines or paths into batches, one per quiet period.
//! * [`rpush`]: runs one `rsync --files-from` per batch per host, hosts in parallel.
//!
//! The binaries in `src/bin` are thin: they hand `std::env::args_os()` to the `run`
//! function of their module and turn the result into an exit status. Everything that
//! needs `unsafe` (glibc's getopt_long, strftime and regcomp, which we call on purpose for
//! byte-exact inotifywait compatibility; fd 1 and SIGPIPE) lives in `sys`, the one
//! module allowed it: the crate denies `unsafe_code` everywhere else (Cargo.toml).

pub(crate) mod common;
pub mod rbatch;
pub mod rpush;
pub mod rwait;
#[allow(unsafe_code)]
pub(crate) mod sys;
