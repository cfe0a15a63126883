//! Deployment: installer, Debian package, systemd unit and the migration recipes of
//! docs/migrating.md, each exercised against local rsync daemons (issue 7).
