//! rwait tests: differential scenarios against the real inotifywait, and tests of the
//! places where rwait deliberately differs (man/rwait.1, DIFFERENCES).

mod diff;
mod differential;
pub mod fanotify;
mod fixes;
mod tracker;
