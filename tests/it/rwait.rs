//! rwait tests: differential against the real inotifywait, plus rwait's own fixes.
