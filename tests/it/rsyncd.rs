//! Fixtures for the rpush tests: real `rsync --daemon` instances on 127.0.0.2,
//! 127.0.0.3, ... and a real `sshd` on 127.0.0.1, each with its own configuration in the
//! test's scratch directory and its own free port, so tests run in parallel.
//!
//! Readiness is a TCP connect polled with a deadline. Every fixture is killed on Drop;
//! when the test is failing, Drop prints the daemon's logs first (docs/background.md: a
//! leftover daemon keeps the address busy and silently takes the next run's pushes).

#![allow(dead_code)]

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{DEADLINE, Scratch};

/// The daemon user and its password (the secrets file says `pusher:s3cret`).
pub const USER: &str = "pusher";
pub const PASSWORD: &str = "s3cret";

fn running_as_root() -> bool {
    // /proc/self belongs to the effective user.
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A port that was free on `ip` a moment ago. Another test may take it before our
/// daemon binds it; callers retry with a new one when the bind fails.
pub fn free_port(ip: &str) -> u16 {
    let l = TcpListener::bind((ip, 0)).unwrap_or_else(|e| panic!("bind {ip}:0: {e}"));
    l.local_addr().unwrap().port()
}

fn write_private(path: &Path, data: &str) {
    fs::write(path, data).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

/// Polls until `ip:port` accepts a TCP connection, or the child exits (false).
fn wait_listening(child: &mut Child, ip: &str, port: u16) -> bool {
    let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
    let end = Instant::now() + DEADLINE;
    while Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    panic!("nothing listening on {ip}:{port} after {DEADLINE:?}");
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// One rsync daemon with module `mod` (auth user `pusher`, `read only = no`,
/// `use chroot = no`) serving `<dir>/mod`.
pub struct Daemon {
    pub name: String,
    pub ip: String,
    pub port: u16,
    pub dir: PathBuf,
    /// The module's directory: the target tree.
    pub module: PathBuf,
    /// A client password file (mode 0600) with the right password.
    pub password_file: PathBuf,
    conf: PathBuf,
    out: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    /// Starts a daemon named `name` (its files under `scratch/name`) on `ip`.
    pub fn start(scratch: &Scratch, name: &str, ip: &str) -> Daemon {
        Daemon::start_with(scratch, name, ip, "")
    }

    /// Like [`start`](Self::start), with extra lines for the module section.
    pub fn start_with(scratch: &Scratch, name: &str, ip: &str, module_extra: &str) -> Daemon {
        let dir = scratch.mkdir(name);
        let module = dir.join("mod");
        fs::create_dir_all(&module).unwrap();
        write_private(&dir.join("secrets"), &format!("{USER}:{PASSWORD}\n"));
        let password_file = dir.join("client.pass");
        write_private(&password_file, &format!("{PASSWORD}\n"));
        let mut d = Daemon {
            name: name.to_string(),
            ip: ip.to_string(),
            port: 0,
            conf: dir.join("rsyncd.conf"),
            out: dir.join("daemon.out"),
            module,
            password_file,
            dir,
            child: None,
        };
        for _ in 0..10 {
            d.port = free_port(ip);
            d.write_conf(module_extra);
            if d.spawn() {
                return d;
            }
        }
        panic!("rsync daemon {name} never started\n{}", d.logs());
    }

    fn write_conf(&self, module_extra: &str) {
        let ids = if running_as_root() {
            "    uid = root\n    gid = root\n"
        } else {
            ""
        };
        let conf = format!(
            "port = {port}\naddress = {ip}\nlog file = {dir}/rsyncd.log\nuse chroot = no\n\
             [mod]\n    path = {module}\n    read only = no\n    auth users = {USER}\n\
             \x20   secrets file = {dir}/secrets\n    munge symlinks = no\n    lock file = {dir}/rsyncd.lock\n\
             {ids}{module_extra}\n",
            port = self.port,
            ip = self.ip,
            dir = self.dir.display(),
            module = self.module.display(),
        );
        fs::write(&self.conf, conf).unwrap();
    }

    /// Spawns the daemon and waits until it listens; false when it exited (port taken).
    fn spawn(&mut self) -> bool {
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.out)
            .unwrap();
        let mut cmd = Command::new("rsync");
        cmd.arg("--daemon")
            .arg("--no-detach")
            .arg(format!("--config={}", self.conf.display()))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let mut child = cmd.spawn().expect("spawn rsync --daemon");
        if wait_listening(&mut child, &self.ip, self.port) {
            self.child = Some(child);
            true
        } else {
            false
        }
    }

    /// `rsync://pusher@IP:PORT/mod/`
    pub fn url(&self) -> String {
        self.url_for("mod")
    }

    pub fn url_for(&self, module: &str) -> String {
        format!("rsync://{USER}@{}:{}/{module}/", self.ip, self.port)
    }

    /// Stops the daemon (SIGKILL); the port is free afterwards.
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Kills the daemon and every connection it is serving, mid-transfer or not (stop
    /// alone leaves the forked per-connection processes running).
    pub fn crash(&mut self) {
        if let Some(c) = &self.child {
            let pid = c.id() as i32;
            let mut kids = Vec::new();
            if let Ok(rd) = fs::read_dir(format!("/proc/{pid}/task")) {
                for t in rd.flatten() {
                    if let Ok(s) = fs::read_to_string(t.path().join("children")) {
                        kids.extend(s.split_whitespace().filter_map(|x| x.parse::<i32>().ok()));
                    }
                }
            }
            for k in kids {
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe {
                    libc::kill(k, libc::SIGKILL);
                }
            }
        }
        self.stop();
    }

    /// Starts it again on the same address and port.
    pub fn restart(&mut self) {
        self.stop();
        let end = Instant::now() + DEADLINE;
        // The old socket may linger for a moment; retry until the bind succeeds.
        while !self.spawn() {
            assert!(
                Instant::now() < end,
                "daemon {} did not restart\n{}",
                self.name,
                self.logs()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The daemon's log file and its own output.
    pub fn logs(&self) -> String {
        format!(
            "=== rsync daemon {} on {}:{} ===\n--- rsyncd.log ---\n{}--- output ---\n{}",
            self.name,
            self.ip,
            self.port,
            fs::read_to_string(self.dir.join("rsyncd.log")).unwrap_or_default(),
            fs::read_to_string(&self.out).unwrap_or_default()
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("{}", self.logs());
        }
        kill(&mut self.child);
    }
}

/// A real sshd on 127.0.0.1 accepting one generated key for the current user.
pub struct Sshd {
    pub port: u16,
    /// The client's private key.
    pub key: PathBuf,
    dir: PathBuf,
    out: PathBuf,
    child: Option<Child>,
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("run ssh-keygen");
    assert!(st.success(), "ssh-keygen failed: {st}");
}

impl Sshd {
    pub fn start(scratch: &Scratch) -> Sshd {
        let dir = scratch.mkdir("sshd");
        keygen(&dir.join("host_key"));
        keygen(&dir.join("client_key"));
        fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
        // sshd insists on its privilege-separation directory (Debian creates it from
        // the service unit, which never ran here).
        let _ = fs::create_dir_all("/run/sshd");
        let mut s = Sshd {
            port: 0,
            key: dir.join("client_key"),
            out: dir.join("sshd.out"),
            dir,
            child: None,
        };
        for _ in 0..10 {
            s.port = free_port("127.0.0.1");
            let conf = format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\n\
                 AuthorizedKeysFile {dir}/authorized_keys\nPidFile none\nUsePAM no\nStrictModes no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PermitRootLogin prohibit-password\nLogLevel VERBOSE\n",
                port = s.port,
                dir = s.dir.display()
            );
            fs::write(s.dir.join("sshd_config"), conf).unwrap();
            let out = fs::OpenOptions::new().create(true).append(true).open(&s.out).unwrap();
            let mut child = Command::new("/usr/sbin/sshd")
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(s.dir.join("sshd_config"))
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("spawn /usr/sbin/sshd");
            if wait_listening(&mut child, "127.0.0.1", s.port) {
                s.child = Some(child);
                return s;
            }
        }
        panic!("sshd never started\n{}", s.logs());
    }

    /// The `-e` for rsync: this port, this key, no host-key bookkeeping, no prompts.
    pub fn rsh(&self) -> String {
        format!(
            "ssh -p {} -i {} -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            self.port,
            self.key.display()
        )
    }

    pub fn logs(&self) -> String {
        format!(
            "=== sshd on 127.0.0.1:{} ===\n{}",
            self.port,
            fs::read_to_string(&self.out).unwrap_or_default()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("{}", self.logs());
        }
        kill(&mut self.child);
    }
}

/// A small tmpfs mounted over a directory (a module path), unmounted on Drop: a target
/// disk that really fills up. Needs root; otherwise, or when `mount` fails, the reason
/// (for `util::require`).
pub struct Tmpfs {
    pub dir: PathBuf,
}

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        if !running_as_root() {
            return Err("mounting a tmpfs needs root".into());
        }
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=755"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs on {}: {}: {}",
                dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir: dir.to_path_buf() })
    }

    /// Changes its size in place (files stay).
    pub fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .status()
            .expect("run mount");
        assert!(st.success(), "remount {}: {st}", self.dir.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a daemon child may still have a file open on it.
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}
