//! What the three tools share: error-message printing and byte-oriented record I/O.
