//! The one integration-test binary: every test that runs the real binaries lives under
//! this tree, sharing the harness in `util`.

mod deploy;
mod docs;
mod faults;
mod json;
mod rbatch;
mod rpush;
mod rsyncd;
mod rwait;
mod util;
