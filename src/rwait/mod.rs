//! rwait: a drop-in inotifywait. Same options, same output bytes, same messages and
//! exit statuses as inotifywait 3.22.6, plus fixes for its known bugs (see
//! `man/rwait.1`, DIFFERENCES).

pub(crate) mod cli;
pub(crate) mod events;
pub(crate) mod fanotify;
pub(crate) mod format;
pub(crate) mod output;
pub(crate) mod run;
pub(crate) mod track;
pub(crate) mod watch;

pub use cli::command;
pub use run::main;
