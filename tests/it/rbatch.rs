//! End-to-end tests of rbatch (to be written with issue 3).
