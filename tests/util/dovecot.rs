//! A throwaway Dovecot IMAP server on loopback ports: its configuration,
//! one user (`desk`, password `secret`) and a Maildir in a temporary
//! directory; STARTTLS on one port and TLS from the first byte on another,
//! with a certificate made for 127.0.0.1. Messages are put in as files (as
//! a delivery agent would), looked at and changed with `doveadm`. Stopped
//! and removed when the guard drops. `.ci/run` installs `dovecot-imapd`
//! from Debian; without it the tests that need it say SKIPPED.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const USER: &str = "desk";
pub const PASSWORD: &str = "secret";

pub struct Dovecot {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    /// STARTTLS (or plain, when asked).
    pub port: u16,
    /// TLS from the first byte.
    pub tls_port: u16,
    /// The CA that signed the server's certificate (PEM file).
    pub ca_file: PathBuf,
    /// Who owns the mail: (uid, gid).
    owner: (u32, u32),
    next: std::sync::atomic::AtomicU64,
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn account(name: &str) -> Option<(u32, u32)> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: getpwnam returns a pointer into static storage or null; the
    // two ids are copied out at once.
    unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        (!pw.is_null()).then(|| ((*pw).pw_uid, (*pw).pw_gid))
    }
}

fn user_name(uid: u32) -> String {
    // SAFETY: as in `account`.
    unsafe {
        let pw = libc::getpwuid(uid);
        if pw.is_null() {
            return uid.to_string();
        }
        std::ffi::CStr::from_ptr((*pw).pw_name)
            .to_string_lossy()
            .into_owned()
    }
}

impl Dovecot {
    /// Starts a server; `None` (the test says SKIPPED) when Dovecot is not
    /// installed.
    pub fn start() -> Option<Dovecot> {
        if !Path::new("/usr/sbin/dovecot").exists() {
            crate::util::skipped("Dovecot is not installed here; .ci/run installs dovecot-imapd");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        // As root, mail belongs to the `dovecot` account Debian makes; else
        // to ourselves, and Dovecot runs as ourselves throughout.
        let owner = if root {
            account("dovecot").expect("Debian's dovecot account")
        } else {
            // SAFETY: getuid and getgid have no preconditions.
            unsafe { (libc::getuid(), libc::getgid()) }
        };
        let unprivileged = if root {
            String::new()
        } else {
            let me = user_name(owner.0);
            format!("default_internal_user = {me}\ndefault_login_user = {me}\n")
        };
        let d = dir.path();
        // Dovecot's unprivileged processes walk into it.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(d.join("home")).unwrap();
        std::fs::write(d.join("passwd"), format!("{USER}:{{PLAIN}}{PASSWORD}\n")).unwrap();
        // A CA and the server's certificate for 127.0.0.1, signed by it.
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let ca_file = d.join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();
        std::fs::write(d.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(d.join("key.pem"), key.serialize_pem()).unwrap();
        let port = crate::util::free_port();
        let tls_port = crate::util::free_port();
        let (uid, gid) = owner;
        let p = d.display();
        let config = format!(
            "base_dir = {p}/run
state_dir = {p}/state
log_path = {p}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{p}/cert.pem
ssl_key = <{p}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = {uid}
mail_location = maildir:~/Maildir
{unprivileged}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {p}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={p}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"
        );
        std::fs::write(d.join("dovecot.conf"), config).unwrap();
        let mut dovecot = Dovecot {
            dir,
            child: None,
            port,
            tls_port,
            ca_file,
            owner,
            next: std::sync::atomic::AtomicU64::new(0),
        };
        // The Maildir exists from the start, so messages can be put in
        // before the first login.
        for sub in ["new", "cur", "tmp"] {
            let path = dovecot.maildir().join(sub);
            std::fs::create_dir_all(&path).unwrap();
        }
        dovecot.chown_all();
        dovecot.resume();
        Some(dovecot)
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("dovecot.conf")
    }

    /// The user's Maildir (INBOX).
    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("home").join(USER).join("Maildir")
    }

    fn chown_all(&self) {
        let home = self.dir.path().join("home");
        let mut stack = vec![home];
        while let Some(path) = stack.pop() {
            let _ = std::os::unix::fs::chown(&path, Some(self.owner.0), Some(self.owner.1));
            if path.is_dir() {
                for e in std::fs::read_dir(&path).unwrap().flatten() {
                    stack.push(e.path());
                }
            }
        }
    }

    /// Starts the server again after [`Dovecot::pause`] (or the first time).
    pub fn resume(&mut self) {
        let mut cmd = Command::new("/usr/sbin/dovecot");
        cmd.args(["-F", "-c"]).arg(self.conf());
        // SAFETY: prctl only sets this process's parent-death signal.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let port = self.port;
        let log = self.dir.path().join("dovecot.log");
        crate::util::wait_for(20, "Dovecot listening", || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .or_else(|| {
                    if let Ok(text) = std::fs::read_to_string(&log) {
                        assert!(!text.contains("Fatal"), "Dovecot failed to start:\n{text}");
                    }
                    None
                })
        });
    }

    /// Stops the server (its mail stays).
    pub fn pause(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM lets the master stop its children; then wait.
            // SAFETY: kill on our own child's pid.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let _ = child.wait();
        }
        let port = self.port;
        crate::util::wait_for(20, "Dovecot gone", || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .is_err()
                .then_some(())
        });
    }

    /// Puts `message` in INBOX as a delivery agent would (`new/`); `seen`
    /// puts it in `cur/` flagged as read by a person.
    pub fn deliver(&self, message: &[u8], seen: bool) {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{}.M{n}P{}.test", 1_764_000_000 + n, std::process::id());
        let tmp = self.maildir().join("tmp").join(&name);
        std::fs::write(&tmp, message).unwrap();
        let _ = std::os::unix::fs::chown(&tmp, Some(self.owner.0), Some(self.owner.1));
        let to = if seen {
            self.maildir().join("cur").join(format!("{name}:2,S"))
        } else {
            self.maildir().join("new").join(name)
        };
        std::fs::rename(tmp, to).unwrap();
    }

    /// `doveadm` with the server's configuration; its standard output.
    pub fn doveadm(&self, args: &[&str]) -> String {
        let out = Command::new("/usr/bin/doveadm")
            .arg("-c")
            .arg(self.conf())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "doveadm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A folder's status item (`messages`, `unseen`, `uidvalidity`).
    pub fn status(&self, folder: &str, item: &str) -> u64 {
        let out = self.doveadm(&["mailbox", "status", "-u", USER, item, folder]);
        out.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{item}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {item} in {out:?}"))
    }

    /// The folder's message count, 0 when it does not exist.
    pub fn count(&self, folder: &str) -> u64 {
        let out = Command::new("/usr/bin/doveadm")
            .arg("-c")
            .arg(self.conf())
            .args(["mailbox", "status", "-u", USER, "messages", folder])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .find_map(|w| w.strip_prefix("messages="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// `imap://desk@127.0.0.1:PORT/FOLDER`.
    pub fn url(&self, folder: &str) -> String {
        format!("imap://{USER}@127.0.0.1:{}/{folder}", self.port)
    }

    /// A file whose first line is the password.
    pub fn password_file(&self) -> PathBuf {
        let path = self.dir.path().join("imap-password");
        std::fs::write(&path, format!("{PASSWORD}\n")).unwrap();
        path
    }
}
