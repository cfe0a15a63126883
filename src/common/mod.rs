//! What the three tools share: error-message printing, the clap front door of rbatch and
//! rpush, and duration parsing.

pub mod cli;
pub mod duration;
pub mod msg;
