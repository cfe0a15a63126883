//! rwait: a drop-in inotifywait.
