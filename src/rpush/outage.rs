//! Outages: while a host is failing, a cheap probe (a TCP connect to its rsync daemon or
//! ssh port) about every second, so that a host that comes back is pushed to at once
//! instead of after the rest of its backoff (a web server back after maintenance waited
//! 55 s for its changes, issue 12 item 3); and the log lines that say when an outage
//! began, that it persists (rate-limited) and when it ended and how long it lasted.
//!
//! A probe that connects only cuts the backoff after one that did not: a host whose
//! port is open while rsync still fails (a full disk, "max connections") keeps its
//! backoff instead of being retried every second.
//!
//! [`Outage`] (the caller passes `now`) and [`port`] are pure and tested with tables;
//! [`probe`] and [`greets`] are the only parts that look at the world.

use std::ffi::OsStr;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use super::hosts::{Target, Transport};

/// How often a failing host is probed.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How long one probe may take to connect.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(800);
/// How often "outage persists" is logged.
pub const REPORT_EVERY: Duration = Duration::from_secs(60);

/// One host's outage, from its first failed push to the next successful one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    pub began: Instant,
    /// When it began, for the status file (RFC 3339).
    pub began_at: String,
    last_report: Instant,
    next_probe: Instant,
    /// A probe failed since the last push: the next one that connects means "back".
    pub probe_failed: bool,
}

impl Outage {
    pub fn begin(now: Instant, began_at: String) -> Outage {
        Outage {
            began: now,
            began_at,
            last_report: now,
            next_probe: now + PROBE_EVERY,
            probe_failed: false,
        }
    }

    pub fn probe_due(&self, now: Instant) -> bool {
        now >= self.next_probe
    }

    /// How long until the next probe (zero when due).
    pub fn until_probe(&self, now: Instant) -> Duration {
        self.next_probe.saturating_duration_since(now)
    }

    /// Records a probe's result at `now`; true when the host came back (this probe
    /// connected after one that did not).
    pub fn probed(&mut self, now: Instant, reachable: bool) -> bool {
        self.next_probe = now + PROBE_EVERY;
        let back = reachable && self.probe_failed;
        self.probe_failed = !reachable;
        back
    }

    /// A push was tried (and failed again): probing starts over from "not seen down".
    pub fn pushed(&mut self, now: Instant) {
        self.probe_failed = false;
        self.next_probe = now + PROBE_EVERY;
    }

    /// Whether "persists" is due at `now`; if so, how long the outage has lasted.
    pub fn report_due(&mut self, now: Instant) -> Option<Duration> {
        if now.saturating_duration_since(self.last_report) >= REPORT_EVERY {
            self.last_report = now;
            Some(now.saturating_duration_since(self.began))
        } else {
            None
        }
    }
}

/// The port rsync connects to for `target`: the daemon's (873, or the port of an
/// `rsync://HOST:PORT/` URL) or ssh's (22, or `-p N` / `-o Port=N` in `--rsh`).
pub fn port(target: &Target, rsh: Option<&OsStr>) -> Option<u16> {
    match target.transport {
        Transport::Daemon => {
            let Some(rest) = target.dest.strip_prefix("rsync://") else {
                return Some(873);
            };
            let authority = rest.split('/').next()?;
            let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let after_host = match hostport.strip_prefix('[') {
                Some(v6) => v6.split_once(']')?.1,
                None => hostport.find(':').map_or("", |i| &hostport[i..]),
            };
            match after_host.strip_prefix(':') {
                Some(p) if !p.is_empty() => p.parse().ok(),
                _ => Some(873),
            }
        }
        Transport::Shell => {
            let words: Vec<&[u8]> = rsh
                .map(|r| {
                    r.as_bytes()
                        .split(|b| b.is_ascii_whitespace())
                        .filter(|w| !w.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            let mut port = 22;
            let mut i = 0;
            while i < words.len() {
                let w = words[i];
                let value = |v: &[u8]| std::str::from_utf8(v).ok().and_then(|s| s.parse::<u16>().ok());
                if w == b"-p" {
                    port = value(words.get(i + 1)?)?;
                    i += 1;
                } else if let Some(v) = w.strip_prefix(b"-p") {
                    port = value(v)?;
                } else if w == b"-o" {
                    if let Some(v) = words.get(i + 1).and_then(|o| strip_port_option(o)) {
                        port = value(v)?;
                    }
                    i += 1;
                } else if let Some(v) = w.strip_prefix(b"-o").and_then(strip_port_option) {
                    port = value(v)?;
                }
                i += 1;
            }
            Some(port)
        }
    }
}

fn strip_port_option(o: &[u8]) -> Option<&[u8]> {
    let lower = o.to_ascii_lowercase();
    lower.starts_with(b"port=").then(|| &o[5..])
}

/// Whether `host:port` accepts a TCP connection now (name resolution included).
pub fn probe(host: &str, port: u16) -> bool {
    let Ok(addrs) = (host, port).to_socket_addrs() else {
        return false;
    };
    addrs
        .take(2)
        .any(|a| TcpStream::connect_timeout(&a, PROBE_TIMEOUT).is_ok())
}

/// Whether the rsync daemon at `host:port` greets within `limit` (it speaks first:
/// `@RSYNCD: 32.0 ...`). rsync's own `--contimeout` bounds only the TCP connect, so a
/// listener that accepts and never speaks held a `-j` slot until `--timeout` (30 s by
/// default) on every try. `Err` only for that silence; a refused or failed connect is
/// left to rsync, which says it in its own words.
pub fn greets(host: &str, port: u16, limit: Duration) -> Result<(), String> {
    use std::io::Read;
    let start = Instant::now();
    let Some(addr) = (host, port).to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        return Ok(());
    };
    let Ok(mut conn) = TcpStream::connect_timeout(&addr, limit) else {
        return Ok(());
    };
    let silent = || {
        Err(format!(
            "connected, but no rsync daemon greeting within --contimeout ({})",
            super::worker::human_duration(limit)
        ))
    };
    let mut buf = [0u8; 64];
    loop {
        let left = limit.saturating_sub(start.elapsed());
        if left.is_zero() || conn.set_read_timeout(Some(left)).is_err() {
            return silent();
        }
        match conn.read(&mut buf) {
            // Spoke, or hung up: either way rsync tells the rest.
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return silent();
            }
            Err(_) => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(dest: &str, transport: Transport) -> Target {
        Target {
            host: "h".into(),
            dest: dest.into(),
            transport,
            origin: "-t".into(),
        }
    }

    #[test]
    fn ports_from_destinations_and_rsh() {
        use Transport::*;
        let cases: &[(&str, Transport, Option<&str>, Option<u16>)] = &[
            ("h::mod", Daemon, None, Some(873)),
            ("u@h::mod/x", Daemon, None, Some(873)),
            ("rsync://h/mod/", Daemon, None, Some(873)),
            ("rsync://u@h:8730/mod/", Daemon, None, Some(8730)),
            ("rsync://[::1]:9000/mod/", Daemon, None, Some(9000)),
            ("rsync://[::1]/mod/", Daemon, None, Some(873)),
            ("rsync://h:/mod/", Daemon, None, Some(873)),
            ("h:/dst", Shell, None, Some(22)),
            ("h:/dst", Shell, Some("ssh -p 2222"), Some(2222)),
            ("h:/dst", Shell, Some("ssh -p2200 -i k"), Some(2200)),
            ("h:/dst", Shell, Some("ssh -o Port=2022"), Some(2022)),
            ("h:/dst", Shell, Some("ssh -oport=2023 -o BatchMode=yes"), Some(2023)),
            ("h:/dst", Shell, Some("ssh -o BatchMode=yes"), Some(22)),
            ("h:/dst", Shell, Some("ssh -p notaport"), None),
        ];
        for (dest, tr, rsh, want) in cases {
            assert_eq!(port(&t(dest, *tr), rsh.map(OsStr::new)), *want, "{dest} {rsh:?}");
        }
    }

    #[test]
    fn probes_cut_the_backoff_only_after_one_failed() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut o = Outage::begin(t0, "t".into());
        assert!(!o.probe_due(t0));
        assert_eq!(o.until_probe(t0), PROBE_EVERY);
        assert!(o.probe_due(t0 + PROBE_EVERY));
        // Open port while rsync fails (disk full): never "back".
        let table = [
            (true, false),
            (true, false),
            (false, false),
            (false, false),
            (true, true),
            (true, false),
        ];
        for (i, (reachable, back)) in table.iter().enumerate() {
            let now = t0 + s(i as u64 + 1);
            assert_eq!(o.probed(now, *reachable), *back, "probe {i}");
            assert!(!o.probe_due(now));
            assert!(o.probe_due(now + PROBE_EVERY));
        }
        o.probed(t0 + s(10), false);
        o.pushed(t0 + s(10));
        assert!(!o.probed(t0 + s(11), true), "a push in between starts over");
    }

    #[test]
    fn a_silent_listener_does_not_greet_and_a_closed_port_is_left_to_rsync() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t0 = Instant::now();
        let err = greets("127.0.0.1", port, Duration::from_millis(300)).unwrap_err();
        assert!(
            err.contains("no rsync daemon greeting within --contimeout (0.3s)"),
            "{err}"
        );
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let speaker = std::thread::spawn(move || {
            use std::io::Write;
            let (mut c, _) = l.accept().unwrap();
            c.write_all(b"@RSYNCD: 32.0\n").unwrap();
        });
        assert_eq!(greets("127.0.0.1", port, Duration::from_secs(5)), Ok(()));
        speaker.join().unwrap();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        assert_eq!(greets("127.0.0.1", closed, Duration::from_millis(300)), Ok(()));
    }

    #[test]
    fn persists_is_rate_limited() {
        let t0 = Instant::now();
        let mut o = Outage::begin(t0, "t".into());
        let got: Vec<Option<u64>> = [1u64, 59, 60, 61, 119, 121, 180]
            .iter()
            .map(|&x| o.report_due(t0 + Duration::from_secs(x)).map(|d| d.as_secs()))
            .collect();
        assert_eq!(got, vec![None, None, Some(60), None, None, Some(121), None]);
    }
}
