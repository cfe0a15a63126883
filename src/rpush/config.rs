//! From the raw command line to a checked [`Config`]: hosts files read and every line
//! parsed, paths made absolute, the password file's mode checked, the rsync and
//! `--on-push` programs found. Everything that can be wrong with the invocation is found
//! here, before the first rsync runs, and reported as a usage error (exit 2).

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cli::Cli;
use super::hosts::{self, Target};
use super::os_error;
use super::paths;
use super::retry::Backoff;
use super::rsync::Settings;

/// How much to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
    Debug,
}

/// One target with the name rpush logs it under.
#[derive(Debug, Clone)]
pub struct Host {
    /// The host name, or the whole destination when two targets share a host.
    pub name: String,
    pub target: Target,
}

/// Everything `run` needs, checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub hosts: Vec<Host>,
    /// Where the hosts came from, to read them again on SIGHUP.
    pub sources: HostSources,
    /// The directory relative input paths are relative to (absolute).
    pub cwd: Vec<u8>,
    /// `-C` as given, when given: without it relative input records are refused.
    pub base_arg: Option<Vec<u8>>,
    pub rsync: PathBuf,
    pub settings: Settings,
    pub delim: u8,
    pub jobs: usize,
    pub watchdog: Duration,
    pub backoff: Backoff,
    pub drain_timeout: Duration,
    pub initial: bool,
    pub on_push: Option<Vec<OsString>>,
    pub on_push_timeout: Duration,
    pub status: Option<PathBuf>,
    /// `--state-dir`, absolute, existing, and locked by this process.
    pub state_dir: Option<PathBuf>,
    pub verbosity: Verbosity,
}

/// The hosts files, `-t` targets and `-d` template: everything the host list is made of.
#[derive(Debug, Clone)]
pub struct HostSources {
    pub files: Vec<PathBuf>,
    pub targets: Vec<String>,
    pub template: Option<String>,
    /// The base as text, for bare hosts without `-d` (`host:BASE/`).
    pub base: String,
}

impl HostSources {
    /// Reads every hosts file and checks every target: at start, and again on SIGHUP.
    /// The error is the whole message after `rpush: `, naming file and line.
    pub fn resolve(&self) -> Result<Vec<Host>, String> {
        let template = self.template.as_deref();
        let mut targets: Vec<Target> = Vec::new();
        for f in &self.files {
            targets.extend(hosts::read_hosts_file(f, template, &self.base)?);
        }
        for t in &self.targets {
            targets.push(hosts::make_target(t, template, &self.base, "-t".into()).map_err(|e| format!("-t {t}: {e}"))?);
        }
        if targets.is_empty() {
            return Err("no targets: give -H FILE or -t DEST".into());
        }
        for (i, t) in targets.iter().enumerate() {
            if let Some(prev) = targets[..i].iter().find(|p| p.dest == t.dest) {
                return Err(format!(
                    "{}: duplicate target '{}' (also at {})",
                    t.origin, t.dest, prev.origin
                ));
            }
        }
        Ok(targets
            .iter()
            .map(|t| {
                let shared = targets.iter().filter(|o| o.host == t.host).count() > 1;
                Host {
                    name: if shared { t.dest.clone() } else { t.host.clone() },
                    target: t.clone(),
                }
            })
            .collect())
    }
}

/// Finds `prog` the way execvp would: as given when it has a `/`, else in `$PATH`.
fn find_program(prog: &Path) -> Option<PathBuf> {
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if prog.as_os_str().as_bytes().contains(&b'/') {
        return executable(prog).then(|| prog.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| executable(p))
}

impl Config {
    /// Checks the command line. The error is the whole message after `rpush: `.
    pub fn from_cli(cli: Cli) -> Result<Config, String> {
        let cwd = std::env::current_dir().map_err(|e| format!("current directory: {}", os_error(&e)))?;
        let cwd = cwd.into_os_string().into_vec();

        if cli.initial && cli.base.is_none() {
            return Err("--initial needs an explicit -C/--base (a full sync of / is never what you meant)".into());
        }
        let base_arg = cli.base.clone().unwrap_or_else(|| PathBuf::from("/"));
        let base = paths::normalize(&cwd, base_arg.as_os_str().as_bytes());
        let base_path = Path::new(std::ffi::OsStr::from_bytes(&base));
        match base_path.metadata() {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(format!("-C {}: not a directory", base_arg.display())),
            Err(e) => return Err(format!("-C {}: {}", base_arg.display(), os_error(&e))),
        }
        // A base reached through a symlink: the watcher reports paths under whichever
        // name it was given, so they would not match the base, and a link retargeted
        // under a running rpush would point --delete at another tree.
        match std::fs::canonicalize(base_path) {
            Ok(real) if real.as_os_str().as_bytes() != base.as_slice() => {
                return Err(format!(
                    "-C {}: reached through a symbolic link (the directory is {}): give the real \
                     directory, so that the watcher's paths match it and a retargeted link \
                     cannot point --delete elsewhere",
                    base_arg.display(),
                    real.display()
                ));
            }
            Ok(_) => {}
            Err(e) => return Err(format!("-C {}: {}", base_arg.display(), os_error(&e))),
        }
        if cli.initial && base == b"/" {
            return Err(
                "--initial with -C /: a full sync of the whole file system (with --delete on every \
                 target) is refused; give the directory you mean to mirror"
                    .into(),
            );
        }
        let base_str = String::from_utf8_lossy(&base).into_owned();

        if let Some(t) = &cli.dest {
            hosts::check_template(t).map_err(|e| format!("--dest: {e}"))?;
        }
        let sources = HostSources {
            files: cli.hosts.clone(),
            targets: cli.targets.clone(),
            template: cli.dest.clone(),
            base: base_str,
        };
        let hosts = sources.resolve()?;

        if let Some(pf) = &cli.password_file {
            // rsync refuses an other-accessible password file (exit 1); say so now.
            let m = pf
                .metadata()
                .map_err(|e| format!("--password-file {}: {}", pf.display(), os_error(&e)))?;
            if m.permissions().mode() & 0o006 != 0 {
                return Err(format!(
                    "--password-file {}: must not be accessible by others (rsync refuses it): chmod 600 it",
                    pf.display()
                ));
            }
        }
        // `--on-push` takes hyphenated arguments (`ssh -p 22 ...`), so clap hands it a
        // following `-- RSYNC_OPTIONS` too; `--` ends the command as documented.
        let mut cli = cli;
        if let Some(cmd) = &mut cli.on_push
            && let Some(i) = cmd.iter().position(|a| a == "--")
        {
            let rest: Vec<OsString> = cmd.drain(i..).skip(1).collect();
            cli.rsync_options.splice(0..0, rest);
        }
        let rsync = find_program(&cli.rsync)
            .ok_or_else(|| format!("--rsync {}: not found or not executable", cli.rsync.display()))?;
        if let Some(cmd) = &cli.on_push {
            let Some(prog) = cmd.first() else {
                return Err("--on-push: no command".into());
            };
            if find_program(Path::new(prog)).is_none() {
                return Err(format!(
                    "--on-push {}: not found or not executable",
                    Path::new(prog).display()
                ));
            }
        }
        if cli.retry_min.is_zero() {
            return Err("--retry-min: must be more than 0".into());
        }
        if cli.retry_min > cli.retry_max {
            return Err("--retry-min: must not be longer than --retry-max".into());
        }
        if cli.watchdog.is_zero() {
            return Err("--watchdog: must be more than 0".into());
        }
        let password_file = cli.password_file.as_ref().map(|p| {
            // rsync runs in our directory, but make it absolute for the logs' sake.
            let abs = paths::normalize(&cwd, p.as_os_str().as_bytes());
            OsString::from_vec(abs)
        });
        let verbosity = match (cli.quiet, cli.verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, 1) => Verbosity::Verbose,
            _ => Verbosity::Debug,
        };
        let state_dir = match &cli.state_dir {
            Some(d) => Some(open_state_dir(&cwd, d)?),
            None => None,
        };
        Ok(Config {
            hosts,
            sources,
            cwd,
            base_arg: cli.base.as_ref().map(|b| b.as_os_str().as_bytes().to_vec()),
            rsync,
            settings: Settings {
                base,
                password_file,
                rsh: cli.rsh,
                timeout: cli.timeout,
                contimeout: cli.contimeout,
                extra: cli.rsync_options,
            },
            delim: if cli.null { 0 } else { b'\n' },
            jobs: cli.jobs as usize,
            watchdog: cli.watchdog,
            backoff: Backoff {
                min: cli.retry_min,
                max: cli.retry_max,
            },
            drain_timeout: cli.drain_timeout,
            initial: cli.initial,
            on_push: cli.on_push,
            on_push_timeout: cli.on_push_timeout,
            status: cli.status,
            state_dir,
            verbosity,
        })
    }
}

/// Creates `--state-dir` when missing (mode 700: it lists every changed path), checks it
/// is a writable directory, and takes its lock: two rpushes compacting the same journals
/// would lose each other's batches. The lock is an flock on `DIR/lock`, held by a
/// descriptor that stays open (leaked on purpose) until rpush exits, when the kernel
/// drops it, however rpush ends.
fn open_state_dir(cwd: &[u8], d: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::DirBuilderExt;
    let shown = d.display();
    let abs = PathBuf::from(OsString::from_vec(paths::normalize(cwd, d.as_os_str().as_bytes())));
    if !abs.exists()
        && let Err(e) = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&abs)
    {
        return Err(format!("--state-dir {shown}: {}", os_error(&e)));
    }
    match abs.metadata() {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(format!("--state-dir {shown}: not a directory")),
        Err(e) => return Err(format!("--state-dir {shown}: {}", os_error(&e))),
    }
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(abs.join("lock"))
        .map_err(|e| format!("--state-dir {shown}: {}", os_error(&e)))?;
    use nix::fcntl::{Flock, FlockArg};
    match Flock::lock(lock, FlockArg::LockExclusiveNonblock) {
        // Held until rpush exits: the kernel drops it with the descriptor.
        Ok(held) => std::mem::forget(held),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
            return Err(format!(
                "--state-dir {shown}: in use by another rpush (one rpush per state directory)"
            ));
        }
        Err((_, e)) => return Err(format!("--state-dir {shown}: lock: {}", os_error(&e.into()))),
    }
    Ok(abs)
}
