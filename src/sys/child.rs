//! How rpush's children (rsync, `--on-push` hooks) and rbatch's `--exec` command are
//! started: in a session of their own, so they have no controlling terminal (rsync
//! asking for a password on a tty would be stopped there and hang until the watchdog,
//! instead of failing at once as "auth failed"), and set to die with the thread that
//! started them, so a `kill -9` of rpush never leaves an rsync running that could later
//! put an old version of a file back on a host after a restart.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes `cmd`'s child a session (and process-group) leader without a controlling
/// terminal, killed by SIGKILL when the calling thread's process dies.
pub fn detach_and_die_with_parent(cmd: &mut Command) {
    // The parent's pid before the fork: a child that finds another parent after the
    // prctl was too late (the parent died in between) and must not go on.
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (setsid, prctl, getppid, _exit), touching no memory
    // shared with the parent.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}
