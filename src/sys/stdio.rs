//! Standard output as the process-wide descriptor it is: a `File` view of fd 1 that
//! never closes it, and SIGPIPE back to its default disposition, so that a consumer
//! that goes away ends the program (as it ends inotifywait) instead of every write
//! failing with EPIPE.

use std::fs::File;
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;

/// fd 1 as a `File` that is never closed (dropping it leaves fd 1 alone). When fd 1 is
/// not open, writes through it fail with EBADF, which is how that case is reported.
pub fn stdout_file() -> ManuallyDrop<File> {
    // SAFETY: the `File` is never dropped (ManuallyDrop), so it never closes fd 1 that
    // the rest of the process shares; it only issues write(2)/fstat(2) on fd 1, which
    // are memory-safe whatever fd 1 is (a closed descriptor gives EBADF).
    ManuallyDrop::new(unsafe { File::from_raw_fd(1) })
}

/// Restores SIGPIPE's default action (the Rust runtime ignores it at start-up).
pub fn default_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: SIG_DFL installs no handler of ours, so no code can run in signal
    // context; changing a disposition is process-wide but has no memory effect.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}
