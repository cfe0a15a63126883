//! What the three tools share: error-message printing, byte-oriented record input and
//! duration parsing.

pub mod cli;
pub mod duration;
pub mod msg;
pub mod records;
