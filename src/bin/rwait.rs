//! rwait: wait for filesystem events; a drop-in inotifywait. See `man rwait`.

fn main() -> std::process::ExitCode {
    syncpipe::rwait::main()
}
