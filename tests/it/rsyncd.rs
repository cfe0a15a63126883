//! Fixtures for real rsync daemons on loopback addresses (and sshd), shared by the rpush
//! and pipeline tests (to be written with issue 4).
