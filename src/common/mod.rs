//! What the three tools share: error-message printing, the clap front door of rbatch and
//! rpush, duration parsing, the inotify event names, and replacing a file whole.

pub mod cli;
pub mod duration;
pub mod events;
pub mod fs;
pub mod msg;
