//! Targets: turning hosts-file lines, `-t` arguments and the `-d` template into rsync
//! destinations.
//!
//! Everything is checked here, before anything runs, so that a typo in line 37 of a
//! hosts file is an error naming that line rather than a host that fails forever at run
//! time. What a destination looks like is rsync's business; we only recognise its four
//! shapes well enough to know the transport (daemon or remote shell: `--password-file`
//! and `--contimeout` only apply to the daemon, `--rsh` only to the shell) and the host
//! name for logs, `RPUSH_HOST` and `{}` in `--on-push`. We deliberately do not accept
//! local paths: rpush pushes to hosts.

use std::fs;
use std::path::Path;

/// How rsync reaches a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `host::module` or `rsync://host/module`: an rsync daemon.
    Daemon,
    /// `host:path`: rsync over a remote shell (ssh).
    Shell,
}

/// One validated destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host part, without user or port: what logs and `RPUSH_HOST` show.
    pub host: String,
    /// The full rsync destination, as handed to rsync.
    pub dest: String,
    pub transport: Transport,
    /// Where it was defined (`FILE:LINE` or `-t`), for duplicate errors.
    pub origin: String,
}

/// What one line (or `-t` argument) turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A complete destination.
    Full { host: String, transport: Transport },
    /// A bare `[user@]host`, to be expanded by `-d` or into `host:BASE/`.
    Bare,
}

/// Classifies and checks a destination. The error explains what is wrong, for a
/// `FILE:LINE: cause` message.
pub fn parse_dest(s: &str) -> Result<Parsed, String> {
    if s.is_empty() {
        return Err("empty target".into());
    }
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "unexpected {} in target '{}' (one target per line; comments start a line with '#')",
            if c.is_whitespace() {
                "whitespace"
            } else {
                "control character"
            },
            s.escape_default()
        ));
    }
    // A '..' component escapes the module or directory the target names; with --delete
    // that is how a typo wipes a sibling tree.
    if s.split(['/', ':']).any(|c| c == "..") {
        return Err(format!("'{s}': '..' in a target path (name the directory itself)"));
    }
    // rsync would read a destination starting with '-' as an option.
    if s.starts_with('-') {
        return Err(format!("target '{s}' must not start with '-'"));
    }
    if let Some(rest) = s.strip_prefix("rsync://") {
        let (authority, path) = rest.split_once('/').ok_or_else(|| {
            format!("'{s}': rsync:// URL without a module (rsync://[USER@]HOST[:PORT]/MODULE[/PATH])")
        })?;
        let module = path.split('/').next().unwrap_or("");
        if module.is_empty() {
            return Err(format!(
                "'{s}': rsync:// URL without a module (rsync://[USER@]HOST[:PORT]/MODULE[/PATH])"
            ));
        }
        let hostport = strip_user(authority, s)?;
        let host = match hostport.strip_prefix('[') {
            Some(v6) => {
                let (h, after) = v6.split_once(']').ok_or_else(|| format!("'{s}': unclosed '['"))?;
                check_port(after.strip_prefix(':'), after, s)?;
                check_v6(h, s)?;
                h.to_string()
            }
            None => {
                let (h, port) = match hostport.split_once(':') {
                    Some((h, p)) => (h, Some(p)),
                    None => (hostport, None),
                };
                check_port(port, port.map_or("", |_| ":"), s)?;
                check_host(h, s)?;
                h.to_string()
            }
        };
        return Ok(Parsed::Full {
            host,
            transport: Transport::Daemon,
        });
    }
    if s.starts_with('/') || s.starts_with('.') || s.starts_with('~') {
        return Err(format!(
            "'{s}' is a local path, not a target (write HOST:PATH for a remote path)"
        ));
    }
    let user_end = s.find('@').filter(|&at| s[..at].find([':', '[']).is_none());
    let after_user = match user_end {
        Some(at) => {
            check_user(&s[..at], s)?;
            &s[at + 1..]
        }
        None => s,
    };
    // An IPv6 address in brackets may itself contain "::".
    let (host, rest) = if let Some(v6) = after_user.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| format!("'{s}': unclosed '['"))?;
        check_v6(h, s)?;
        if !after.starts_with(':') {
            return Err(format!("'{s}': expected ':' after ']'"));
        }
        (h, Some(after))
    } else {
        match after_user.find(':') {
            Some(i) => {
                check_host(&after_user[..i], s)?;
                (&after_user[..i], Some(&after_user[i..]))
            }
            None => {
                check_host(after_user, s)?;
                (after_user, None)
            }
        }
    };
    match rest {
        None => Ok(Parsed::Bare),
        Some(r) => {
            if let Some(module) = r.strip_prefix("::") {
                if module.split('/').next().unwrap_or("").is_empty() {
                    return Err(format!("'{s}': no module after '::' (HOST::MODULE[/PATH])"));
                }
                Ok(Parsed::Full {
                    host: host.to_string(),
                    transport: Transport::Daemon,
                })
            } else {
                // rsync resolves a relative remote path against the login's home, which
                // differs per user and host: with --delete that is a tree nobody meant.
                let path = &r[1..];
                if !path.starts_with('/') {
                    return Err(format!(
                        "'{s}': the remote path '{path}' is relative (rsync would resolve it \
                         against the login's home directory): write it absolute, e.g. '{}:/srv/www/'",
                        &s[..s.len() - r.len()]
                    ));
                }
                Ok(Parsed::Full {
                    host: host.to_string(),
                    transport: Transport::Shell,
                })
            }
        }
    }
}

fn strip_user<'a>(authority: &'a str, whole: &str) -> Result<&'a str, String> {
    match authority.rsplit_once('@') {
        Some((user, rest)) => {
            check_user(user, whole)?;
            Ok(rest)
        }
        None => Ok(authority),
    }
}

fn check_user(user: &str, whole: &str) -> Result<(), String> {
    if user.is_empty() || !user.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
        return Err(format!("'{whole}': bad user name '{user}'"));
    }
    Ok(())
}

fn check_host(host: &str, whole: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err(format!("'{whole}': no host name"));
    }
    if host.starts_with('-') || !host.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
        return Err(format!("'{whole}': bad host name '{host}'"));
    }
    Ok(())
}

fn check_v6(h: &str, whole: &str) -> Result<(), String> {
    if h.is_empty() || !h.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
        return Err(format!("'{whole}': bad IPv6 address '{h}'"));
    }
    Ok(())
}

fn check_port(port: Option<&str>, after: &str, whole: &str) -> Result<(), String> {
    match port {
        None if after.is_empty() => Ok(()),
        Some(p) if p.parse::<u16>().is_ok_and(|n| n > 0) => Ok(()),
        _ => Err(format!(
            "'{whole}': bad port '{}'",
            port.unwrap_or_else(|| after.trim_start_matches(':'))
        )),
    }
}

/// Checks a `-d` template: it must contain `{}` and, filled in, be a full destination.
pub fn check_template(t: &str) -> Result<(), String> {
    if !t.contains("{}") {
        return Err(format!(
            "'{t}' has no '{{}}' to put the host in (e.g. 'rsync@{{}}::module')"
        ));
    }
    match parse_dest(&t.replace("{}", "example.org")) {
        Ok(Parsed::Full { .. }) => Ok(()),
        Ok(Parsed::Bare) => Err(format!(
            "'{t}' does not make a destination (e.g. '{{}}:/srv/www' or 'rsync@{{}}::module')"
        )),
        Err(e) => Err(e),
    }
}

/// Turns one entry (a hosts-file line or a `-t` argument) into a target: bare hosts go
/// through `template`, or become `host:BASE/` (the same path over ssh).
pub fn make_target(entry: &str, template: Option<&str>, base: &str, origin: String) -> Result<Target, String> {
    match parse_dest(entry)? {
        Parsed::Full { host, transport } => Ok(Target {
            host,
            dest: entry.to_string(),
            transport,
            origin,
        }),
        Parsed::Bare => {
            let dest = match template {
                Some(t) => t.replace("{}", entry),
                None => format!("{entry}:{}", with_slash(base)),
            };
            match parse_dest(&dest)? {
                Parsed::Full { host, transport } => Ok(Target {
                    host,
                    dest,
                    transport,
                    origin,
                }),
                Parsed::Bare => Err(format!("'{dest}' is not a destination")),
            }
        }
    }
}

fn with_slash(base: &str) -> String {
    if base.ends_with('/') {
        base.to_string()
    } else {
        format!("{base}/")
    }
}

/// Reads a hosts file: one target per line, blank lines and lines starting with `#`
/// skipped. Every problem is reported as `FILE:LINE: cause`.
pub fn read_hosts_file(path: &Path, template: Option<&str>, base: &str) -> Result<Vec<Target>, String> {
    let data = fs::read(path).map_err(|e| format!("{}: {}", path.display(), crate::rpush::os_error(&e)))?;
    parse_hosts(&data, &path.display().to_string(), template, base)
}

/// The parsing half of [`read_hosts_file`], separate so it is testable without files.
pub fn parse_hosts(data: &[u8], name: &str, template: Option<&str>, base: &str) -> Result<Vec<Target>, String> {
    let mut out = Vec::new();
    for (i, raw) in data.split(|&b| b == b'\n').enumerate() {
        let lineno = i + 1;
        let line = std::str::from_utf8(raw).map_err(|_| format!("{name}:{lineno}: not valid UTF-8"))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let t = make_target(line, template, base, format!("{name}:{lineno}"))
            .map_err(|e| format!("{name}:{lineno}: {e}"))?;
        out.push(t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> (String, Transport) {
        match parse_dest(s) {
            Ok(Parsed::Full { host, transport }) => (host, transport),
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn the_four_shapes() {
        assert_eq!(full("web1:/srv/www"), ("web1".into(), Transport::Shell));
        assert_eq!(full("deploy@web1:/srv/www"), ("web1".into(), Transport::Shell));
        assert_eq!(full("rsync@web1::php_env"), ("web1".into(), Transport::Daemon));
        assert_eq!(full("web1::mod/sub/dir"), ("web1".into(), Transport::Daemon));
        assert_eq!(
            full("rsync://u@127.0.0.2:8730/mod/"),
            ("127.0.0.2".into(), Transport::Daemon)
        );
        assert_eq!(full("rsync://web1/mod"), ("web1".into(), Transport::Daemon));
        assert_eq!(full("rsync://[::1]:873/mod"), ("::1".into(), Transport::Daemon));
        assert_eq!(full("[::1]:/x"), ("::1".into(), Transport::Shell));
        assert_eq!(full("u@[fe80::1]::m"), ("fe80::1".into(), Transport::Daemon));
        assert_eq!(parse_dest("web1").unwrap(), Parsed::Bare);
        assert_eq!(parse_dest("u@web-1.example.org").unwrap(), Parsed::Bare);
    }

    #[test]
    fn malformed_entries() {
        for bad in [
            "web1 web2",
            "-oProxyCommand=x:/y",
            "web1:",
            "web1:srv/www",
            "u@web1:.",
            "web1:/srv/../etc",
            "web1::mod/../other",
            "rsync://web1/mod/..",
            "/srv/www",
            "./x",
            "~/x",
            "rsync://web1",
            "rsync://web1/",
            "rsync://web1:99999/m",
            "rsync://web1:x/m",
            "web1::",
            "web1::/x",
            ":/x",
            "@web1:/x",
            "we$b:/x",
            "web1/x",
            "[::1",
            "a\tb",
        ] {
            assert!(parse_dest(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn bare_hosts_use_the_template_or_the_base() {
        let t = make_target("web1", Some("rsync@{}::php_env"), "/src", "-t".into()).unwrap();
        assert_eq!(t.dest, "rsync@web1::php_env");
        assert_eq!(t.transport, Transport::Daemon);
        let t = make_target("web1", None, "/srv/www", "-t".into()).unwrap();
        assert_eq!(t.dest, "web1:/srv/www/");
        assert_eq!(t.transport, Transport::Shell);
        let t = make_target("web1", None, "/", "-t".into()).unwrap();
        assert_eq!(t.dest, "web1:/");
    }

    #[test]
    fn templates_are_checked() {
        assert!(check_template("rsync@{}::m").is_ok());
        assert!(check_template("{}:/srv").is_ok());
        assert!(check_template("web1::m").is_err());
        assert!(check_template("{}").is_err());
        assert!(check_template("{} x:/y").is_err());
    }

    #[test]
    fn hosts_file_errors_name_the_line() {
        let data = b"# web servers\n\nweb1\n  web2:/srv  \nweb 3\n";
        let err = parse_hosts(data, "hosts", None, "/src").unwrap_err();
        assert!(err.starts_with("hosts:5: "), "{err}");
        let ok = parse_hosts(b"# c\nweb1\n  web2:/srv  \n", "hosts", None, "/src").unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].origin, "hosts:2");
        assert_eq!(ok[1].dest, "web2:/srv");
        let err = parse_hosts(b"web1\n\xff\n", "h", None, "/").unwrap_err();
        assert_eq!(err, "h:2: not valid UTF-8");
    }
}
