//! What the three tools share: error-message printing, the clap front door of rbatch and
//! rpush, duration parsing, and the inotify event names.

pub mod cli;
pub mod duration;
pub mod events;
pub mod msg;
