//! The `rbatch` binary: everything lives in `syncpipe::rbatch`.

fn main() -> std::process::ExitCode {
    syncpipe::rbatch::main(std::env::args_os().collect())
}
