//! A connection to an IMAP mailbox, as `import` and `serve` use it: log in
//! (STARTTLS, TLS from the first byte, or in clear when asked), open the
//! folder, list UIDs, read sizes and bodies (`BODY.PEEK[]`: never sets
//! `\Seen`, so what people have read stays theirs to mark), move messages
//! to another folder (MOVE, else COPY, `\Deleted` and EXPUNGE).
//!
//! Every command has a deadline, and every response a byte budget: the
//! server may be a stranger's, and a response larger than what was asked
//! for (a body beyond its announced size, an endless list) ends the
//! connection instead of filling memory.

use crate::config::{ImapAddress, ImapTls};
use async_imap::Session;
use futures_util::TryStreamExt as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes any response but a body may take: a UID list of a few million
/// messages fits.
const LIST_BUDGET: u64 = 64 << 20;
/// Bytes a response about one message takes besides its body.
const PER_MESSAGE_OVERHEAD: u64 = 512;

/// What went wrong, for the log and the import summary.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to {host}:{port}: {source}")]
    Connect {
        host: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS with {host} failed: {source}")]
    Tls {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the server offers no STARTTLS; use --tls implicit (imaps://) or, on a trusted network only, --tls none")]
    NoStartTls,
    #[error("login as {user} refused: {reason}")]
    Login { user: String, reason: String },
    #[error("the folder {folder:?} cannot be opened: {reason}")]
    Folder { folder: String, reason: String },
    #[error("the server has no UIDVALIDITY for {0:?}, so progress cannot be kept")]
    NoUidValidity(String),
    #[error("{what} took longer than {seconds} s")]
    Timeout { what: &'static str, seconds: u64 },
    #[error("the server sent more than {0} bytes for one response")]
    TooMuch(u64),
    #[error("{what}: {source}")]
    Imap {
        what: &'static str,
        #[source]
        source: async_imap::error::Error,
    },
    #[error("the CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
}

/// How to reach a mailbox, beyond its address.
#[derive(Debug, Clone)]
pub struct Options {
    pub password: String,
    /// PEM certificates trusted besides the system's.
    pub ca_file: Option<std::path::PathBuf>,
    /// Deadline of each command (and of connecting).
    pub timeout: Duration,
}

/// The stream under the client: plain TCP or TLS, behind the budget.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Io for T {}

/// A stream that reads at most `left` more bytes: the budget of the
/// response being read, set before each command.
#[derive(Debug)]
pub struct Budgeted {
    inner: Box<dyn Io>,
    left: Arc<AtomicU64>,
}

impl AsyncRead for Budgeted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.left.load(Ordering::Relaxed) == 0 {
            return Poll::Ready(Err(std::io::Error::other("response over its budget")));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        let left = self.left.load(Ordering::Relaxed);
        self.left
            .store(left.saturating_sub(read), Ordering::Relaxed);
        polled
    }
}

impl AsyncWrite for Budgeted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// One message's size and arrival, before its body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    pub uid: u32,
    pub size: u64,
    pub arrived: Option<chrono::DateTime<chrono::Utc>>,
}

/// An open folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    pub uid_validity: u32,
    pub exists: u32,
}

/// A logged-in connection.
pub struct Connection {
    session: Session<Budgeted>,
    budget: Arc<AtomicU64>,
    timeout: Duration,
    /// The server moves with MOVE (RFC 6851).
    can_move: bool,
    /// The server expunges by UID (RFC 4315).
    uidplus: bool,
    /// The server waits with IDLE (RFC 2177).
    pub can_idle: bool,
}

fn rustls_config(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, Error> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = ca_file {
        use rustls::pki_types::pem::PemObject as _;
        let fail = |reason: String| Error::CaFile {
            path: path.display().to_string(),
            reason,
        };
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| fail(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(e.to_string()))?;
        if certs.is_empty() {
            return Err(fail("no certificate in it".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| fail(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth())
}

async fn within<T>(
    timeout: Duration,
    what: &'static str,
    work: impl std::future::Future<Output = Result<T, async_imap::error::Error>>,
) -> Result<T, Error> {
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(source)) => Err(Error::Imap { what, source }),
        Err(_) => Err(Error::Timeout {
            what,
            seconds: timeout.as_secs(),
        }),
    }
}

async fn start_tls(
    stream: Box<dyn Io>,
    address: &ImapAddress,
    options: &Options,
) -> Result<Box<dyn Io>, Error> {
    let connector =
        tokio_rustls::TlsConnector::from(Arc::new(rustls_config(options.ca_file.as_deref())?));
    let name =
        rustls::pki_types::ServerName::try_from(address.host.clone()).map_err(|e| Error::Tls {
            host: address.host.clone(),
            source: std::io::Error::other(e),
        })?;
    let tls = tokio::time::timeout(options.timeout, connector.connect(name, stream))
        .await
        .map_err(|_| Error::Timeout {
            what: "the TLS handshake",
            seconds: options.timeout.as_secs(),
        })?
        .map_err(|source| Error::Tls {
            host: address.host.clone(),
            source,
        })?;
    Ok(Box::new(tls))
}

impl Connection {
    /// Connects and logs in.
    ///
    /// # Errors
    /// The server cannot be reached, TLS fails, the login is refused.
    pub async fn open(address: &ImapAddress, options: &Options) -> Result<Connection, Error> {
        let timeout = options.timeout;
        let tcp = tokio::time::timeout(
            timeout,
            tokio::net::TcpStream::connect((address.host.as_str(), address.port)),
        )
        .await
        .map_err(|_| Error::Timeout {
            what: "connecting",
            seconds: timeout.as_secs(),
        })?
        .map_err(|source| Error::Connect {
            host: address.host.clone(),
            port: address.port,
            source,
        })?;
        let _ = tcp.set_nodelay(true);
        let budget = Arc::new(AtomicU64::new(LIST_BUDGET));
        let mut stream: Box<dyn Io> = Box::new(tcp);
        if address.tls == ImapTls::Implicit {
            stream = start_tls(stream, address, options).await?;
        }
        let mut client = async_imap::Client::new(Budgeted {
            inner: stream,
            left: budget.clone(),
        });
        within(timeout, "the greeting", async {
            client
                .read_response()
                .await?
                .ok_or(async_imap::error::Error::ConnectionLost)
        })
        .await?;
        if address.tls == ImapTls::Starttls {
            within(
                timeout,
                "STARTTLS",
                client.run_command_and_check_ok("STARTTLS", None),
            )
            .await
            .map_err(|e| match e {
                Error::Imap {
                    source: async_imap::error::Error::Bad(_) | async_imap::error::Error::No(_),
                    ..
                } => Error::NoStartTls,
                other => other,
            })?;
            let plain = client.into_inner().inner;
            budget.store(LIST_BUDGET, Ordering::Relaxed);
            client = async_imap::Client::new(Budgeted {
                inner: start_tls(plain, address, options).await?,
                left: budget.clone(),
            });
        }
        let mut session =
            match tokio::time::timeout(timeout, client.login(&address.user, &options.password))
                .await
            {
                Ok(Ok(session)) => session,
                Ok(Err((e, _))) => {
                    return Err(Error::Login {
                        user: address.user.clone(),
                        reason: e.to_string(),
                    });
                }
                Err(_) => {
                    return Err(Error::Timeout {
                        what: "the login",
                        seconds: timeout.as_secs(),
                    });
                }
            };
        budget.store(LIST_BUDGET, Ordering::Relaxed);
        let caps = within(timeout, "CAPABILITY", session.capabilities()).await?;
        Ok(Connection {
            can_move: caps.has_str("MOVE"),
            uidplus: caps.has_str("UIDPLUS"),
            can_idle: caps.has_str("IDLE"),
            session,
            budget,
            timeout,
        })
    }

    fn allow(&self, bytes: u64) {
        self.budget.store(bytes, Ordering::Relaxed);
    }

    /// Opens `folder`: read-only (`EXAMINE`, for an import) or to move
    /// messages out of it (`SELECT`).
    ///
    /// # Errors
    /// The folder does not exist or cannot be opened; it has no UIDVALIDITY.
    pub async fn open_folder(&mut self, folder: &str, read_only: bool) -> Result<Opened, Error> {
        self.allow(LIST_BUDGET);
        let opened = tokio::time::timeout(self.timeout, async {
            if read_only {
                self.session.examine(folder).await
            } else {
                self.session.select(folder).await
            }
        })
        .await
        .map_err(|_| Error::Timeout {
            what: "opening the folder",
            seconds: self.timeout.as_secs(),
        })?
        .map_err(|e| Error::Folder {
            folder: folder.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Opened {
            uid_validity: opened
                .uid_validity
                .ok_or_else(|| Error::NoUidValidity(folder.to_owned()))?,
            exists: opened.exists,
        })
    }

    /// Makes `folder` unless it exists.
    ///
    /// # Errors
    /// It neither exists nor can be made.
    pub async fn ensure_folder(&mut self, folder: &str) -> Result<(), Error> {
        self.allow(LIST_BUDGET);
        let timeout = self.timeout;
        let exists = within(timeout, "LIST", async {
            let names: Vec<_> = self
                .session
                .list(Some(""), Some(folder))
                .await?
                .try_collect()
                .await?;
            Ok(!names.is_empty())
        })
        .await?;
        if !exists {
            within(timeout, "CREATE", self.session.create(folder))
                .await
                .map_err(|e| Error::Folder {
                    folder: folder.to_owned(),
                    reason: e.to_string(),
                })?;
        }
        Ok(())
    }

    /// The UIDs in the open folder from `from` on, lowest first.
    ///
    /// # Errors
    /// The server fails or sends too much.
    pub async fn uids_from(&mut self, from: u32) -> Result<Vec<u32>, Error> {
        self.allow(LIST_BUDGET);
        let query = format!("UID {}:*", from.max(1));
        let found = within(self.timeout, "UID SEARCH", self.session.uid_search(query)).await?;
        // `n:*` names the last message even when its UID is below n.
        let mut uids: Vec<u32> = found.into_iter().filter(|u| *u >= from).collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// The UIDs in the open folder up to `to`, lowest first, at most `limit`.
    ///
    /// # Errors
    /// The server fails or sends too much.
    pub async fn uids_to(&mut self, to: u32, limit: usize) -> Result<Vec<u32>, Error> {
        if to == 0 {
            return Ok(Vec::new());
        }
        self.allow(LIST_BUDGET);
        let query = format!("UID 1:{to}");
        let found = within(self.timeout, "UID SEARCH", self.session.uid_search(query)).await?;
        let mut uids: Vec<u32> = found.into_iter().filter(|u| *u <= to).collect();
        uids.sort_unstable();
        uids.truncate(limit);
        Ok(uids)
    }

    /// Size and arrival of each of `uids` (those still there).
    ///
    /// # Errors
    /// The server fails or sends too much.
    pub async fn list(&mut self, uids: &[u32]) -> Result<Vec<Listed>, Error> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        self.allow(LIST_BUDGET.min(64 * 1024 + uids.len() as u64 * PER_MESSAGE_OVERHEAD));
        let set = uid_set(uids);
        let timeout = self.timeout;
        let fetched: Vec<async_imap::types::Fetch> = within(timeout, "UID FETCH (sizes)", async {
            self.session
                .uid_fetch(&set, "(UID RFC822.SIZE INTERNALDATE)")
                .await?
                .try_collect()
                .await
        })
        .await?;
        let mut listed: Vec<Listed> = fetched
            .iter()
            .filter_map(|f| {
                Some(Listed {
                    uid: f.uid?,
                    size: u64::from(f.size.unwrap_or(0)),
                    arrived: f.internal_date().map(|t| t.to_utc()),
                })
            })
            .filter(|l| uids.binary_search(&l.uid).is_ok())
            .collect();
        listed.sort_by_key(|l| l.uid);
        listed.dedup_by_key(|l| l.uid);
        Ok(listed)
    }

    /// The whole of each message (`BODY.PEEK[]`), by UID; a message the
    /// server has no body for is left out. `listed` says how many bytes
    /// each may take: a body larger than announced ends the connection.
    ///
    /// # Errors
    /// The server fails or sends more than announced.
    pub async fn bodies(&mut self, listed: &[Listed]) -> Result<Vec<(u32, Vec<u8>)>, Error> {
        if listed.is_empty() {
            return Ok(Vec::new());
        }
        let announced: u64 = listed.iter().map(|l| l.size + PER_MESSAGE_OVERHEAD).sum();
        let budget = announced + 64 * 1024;
        self.allow(budget);
        let uids: Vec<u32> = listed.iter().map(|l| l.uid).collect();
        let set = uid_set(&uids);
        let timeout = self.timeout;
        let fetched = within(timeout, "UID FETCH (bodies)", async {
            self.session
                .uid_fetch(&set, "(UID BODY.PEEK[])")
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await
        .map_err(|e| {
            if self.budget.load(Ordering::Relaxed) == 0 {
                Error::TooMuch(budget)
            } else {
                e
            }
        })?;
        let mut bodies: Vec<(u32, Vec<u8>)> = fetched
            .iter()
            .filter_map(|f| Some((f.uid?, f.body()?.to_vec())))
            .filter(|(uid, _)| uids.contains(uid))
            .collect();
        bodies.sort_by_key(|(uid, _)| *uid);
        bodies.dedup_by_key(|(uid, _)| *uid);
        Ok(bodies)
    }

    /// Moves `uids` of the open folder to `folder`.
    ///
    /// # Errors
    /// The server refuses; the messages stay where they were (MOVE and COPY
    /// leave each in at least one of the two folders).
    pub async fn move_to(&mut self, uids: &[u32], folder: &str) -> Result<(), Error> {
        if uids.is_empty() {
            return Ok(());
        }
        self.allow(LIST_BUDGET);
        let set = uid_set(uids);
        let timeout = self.timeout;
        if self.can_move {
            return within(timeout, "UID MOVE", self.session.uid_mv(&set, folder)).await;
        }
        within(timeout, "UID COPY", self.session.uid_copy(&set, folder)).await?;
        within(timeout, "UID STORE", async {
            self.session
                .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        if self.uidplus {
            within(timeout, "UID EXPUNGE", async {
                self.session
                    .uid_expunge(&set)
                    .await?
                    .try_collect::<Vec<_>>()
                    .await
            })
            .await?;
        } else {
            within(timeout, "EXPUNGE", async {
                self.session.expunge().await?.try_collect::<Vec<_>>().await
            })
            .await?;
        }
        Ok(())
    }

    /// Whether the server said a message arrived since this was last asked.
    pub fn heard_of_new_mail(&mut self) -> bool {
        let mut new = false;
        while let Ok(response) = self.session.unsolicited_responses.try_recv() {
            new |= matches!(
                response,
                async_imap::types::UnsolicitedResponse::Exists(_)
                    | async_imap::types::UnsolicitedResponse::Recent(_)
            );
        }
        new
    }

    /// Waits with IDLE until the server tells of a change, `longest`
    /// passes or `stop` is cancelled; the connection is given back.
    ///
    /// # Errors
    /// The server fails; the connection is then gone.
    pub async fn idle(
        mut self,
        longest: Duration,
        stop: &tokio_util::sync::CancellationToken,
    ) -> Result<Connection, Error> {
        self.allow(LIST_BUDGET);
        let timeout = self.timeout;
        let mut handle = self.session.idle();
        within(timeout, "IDLE", handle.init()).await?;
        {
            let (wait, interrupt) = handle.wait_with_timeout(longest);
            tokio::pin!(wait);
            let woke = tokio::select! {
                woke = &mut wait => Some(woke),
                _ = stop.cancelled() => None,
            };
            drop(interrupt);
            if let Some(woke) = woke {
                woke.map_err(|source| Error::Imap {
                    what: "IDLE",
                    source,
                })?;
            }
        }
        self.budget.store(LIST_BUDGET, Ordering::Relaxed);
        self.session = within(timeout, "DONE", handle.done()).await?;
        Ok(self)
    }

    /// Says goodbye (best effort).
    pub async fn close(mut self) {
        self.allow(LIST_BUDGET);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.session.logout()).await;
    }
}

/// `uids` (sorted) as an IMAP set: runs become `a:b`.
pub fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::uid_set;

    #[test]
    fn runs_of_uids_are_ranges() {
        assert_eq!(uid_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(uid_set(&[42]), "42");
        assert_eq!(uid_set(&[]), "");
    }
}
