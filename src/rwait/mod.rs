//! rwait: a drop-in inotifywait. Same options, same output bytes, same messages and
//! exit statuses as inotifywait 3.22.6, plus fixes for its known bugs (see
//! `man/rwait.1`, DIFFERENCES).

pub mod cli;
pub mod events;
pub mod fanotify;
pub mod format;
pub mod output;
pub mod run;
pub mod track;
pub mod watch;

pub use run::main;
