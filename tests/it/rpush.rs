//! End-to-end tests of rpush (to be written with issue 4).
