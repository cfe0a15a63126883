//! rpush: push batches of changed paths to many hosts with rsync. All the work is in
//! `syncpipe::rpush`; this only hands over the arguments and returns the exit status.

fn main() -> std::process::ExitCode {
    syncpipe::rpush::main(std::env::args_os())
}
