//! The one integration-test binary: every test that runs the real binaries lives under
//! this tree, sharing the harness in `util`.

// The tests make faults happen through raw system calls (kill, ioctl, geteuid) where
// the library itself may not (Cargo.toml denies `unsafe_code` outside `src/sys`).
#![allow(unsafe_code)]

mod deploy;
mod docs;
mod faults;
mod json;
mod rbatch;
mod rpush;
mod rsyncd;
mod rwait;
mod tree;
mod util;
