//! What the three tools share: error-message printing, the clap front door of rbatch and
//! rpush, duration parsing, the inotify event names, and replacing a file whole.

pub(crate) mod cli;
pub(crate) mod duration;
pub(crate) mod events;
pub(crate) mod fs;
pub(crate) mod msg;
