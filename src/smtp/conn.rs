//! One SMTP session, from greeting to close.
//!
//! In: a connected stream (generic, so tests can use an in-memory pipe), the
//! shared [`Context`], and stop signals. Out: committed messages and replies.
//! Commands go through mailin's state machine; this loop reads the DATA phase
//! itself, awaits the durable commit, and only then lets the 250 out.
//! Every read is bounded in length and in time.

use super::budget::Reservation;
use super::handler::{Handler, PathDsn, Slot, Transaction, NULL_SENDER, QUOTED_PATH};
use super::io::{Data, Io, ReadError};
use super::{reply, Context, Stops};
use crate::model::{Envelope, Incoming, Origin, Sender};
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

/// How a wait for the client ended when it did not deliver.
enum Stop {
    Idle,
    SessionTooLong,
    ShuttingDown,
}

/// What our pre-filter made of a command line before mailin sees it.
enum Prepared {
    /// Hand this line (possibly rewritten) to mailin.
    Line(Vec<u8>),
    /// Answer directly; mailin's state is unchanged.
    Reply(&'static [u8]),
    /// A MAIL or RCPT for mailin, with what mailin cannot carry: the real
    /// path when `line` has [`QUOTED_PATH`] for it (a quoted local part or
    /// UTF-8), and the DSN parameters.
    Path {
        line: Vec<u8>,
        quoted: Option<String>,
        dsn: PathDsn,
    },
}

/// A byte stream a session runs on: TCP, TLS over TCP, or a test pipe.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Runs one session to its end. Errors are logged, never returned: a broken
/// client must not affect anyone else. The stream is boxed so that STARTTLS
/// can swap it for its TLS wrapper in the middle of the session.
pub async fn run(stream: Box<dyn Stream>, peer: SocketAddr, ctx: Arc<Context>, stops: Stops) {
    let started = Instant::now();
    let mut conn = Conn::new(stream, peer, ctx, stops, started);
    info!("session opened");
    let greeting = reply::greeting(&conn.config.smtp.hostname);
    conn.io.queue(&greeting);
    let end = conn.command_loop().await;
    let _ = conn.io.flush().await;
    let _ = conn.io.shutdown().await;
    info!(
        reason = %end,
        messages = conn.messages,
        seconds = started.elapsed().as_secs_f64(),
        "session closed"
    );
}

/// What a step of the session leaves: go on reading commands, or end the
/// session for the reason given (logged with "session closed").
type Step = ControlFlow<String>;

/// One session's state, from greeting to close.
struct Conn {
    ctx: Arc<Context>,
    stops: Stops,
    peer: SocketAddr,
    /// The configuration and certificate the session started with: a
    /// reload applies to the next session.
    config: Arc<crate::config::Config>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// The end of `smtp.max_session_seconds`.
    deadline: Instant,
    /// `smtp.idle_timeout_seconds`, shortened when the server was busy.
    idle: std::time::Duration,
    /// mailin's state machine and where its handler leaves the envelope.
    session: mailin::Session<Handler>,
    slot: Arc<Mutex<Slot>>,
    io: Io<Box<dyn Stream>>,
    is_tls: bool,
    /// Messages delivered in this session.
    messages: u64,
    /// Between MAIL and the end of DATA: shutdown waits for the grace period.
    in_transaction: bool,
    /// A message being sent in BDAT chunks (RFC 3030), from its first chunk.
    chunks: Option<Chunks>,
}

impl Conn {
    fn new(
        stream: Box<dyn Stream>,
        peer: SocketAddr,
        ctx: Arc<Context>,
        stops: Stops,
        started: Instant,
    ) -> Conn {
        let runtime = ctx.runtime.current();
        let (config, tls) = (runtime.config.clone(), runtime.tls.clone());
        drop(runtime);
        let deadline = started + std::time::Duration::from_secs(config.smtp.max_session_seconds);
        let idle = std::time::Duration::from_secs(if stops.under_pressure {
            (config.smtp.idle_timeout_seconds / super::PRESSURE_IDLE_DIVISOR)
                .max(super::PRESSURE_IDLE_FLOOR_SECONDS)
                .min(config.smtp.idle_timeout_seconds)
        } else {
            config.smtp.idle_timeout_seconds
        });
        let slot = Arc::new(Mutex::new(Slot::default()));
        let mut builder = mailin::SessionBuilder::new(config.smtp.hostname.clone());
        if tls.is_some() {
            builder.enable_start_tls();
        }
        let session = builder.build(peer.ip(), Handler::new(config.clone(), slot.clone()));
        Conn {
            ctx,
            stops,
            peer,
            config,
            tls,
            deadline,
            idle,
            session,
            slot,
            io: Io::new(stream, idle),
            is_tls: false,
            messages: 0,
            in_transaction: false,
            chunks: None,
        }
    }

    /// Reads and answers commands until the session ends; why it ended.
    async fn command_loop(&mut self) -> String {
        let mut line = Vec::with_capacity(128);
        loop {
            // RFC 2920: replies to a pipelined group may be held until the
            // input runs dry.
            if !self.io.has_buffered_input() {
                if let Err(error) = self.io.flush().await {
                    return format!("write failed: {error}");
                }
            }
            if let ControlFlow::Break(end) = self.read_command(&mut line).await {
                return end;
            }
            debug!(command = %printable(&line), "command");
            let command = match prepare(&line, self.config.smtp.max_message_bytes) {
                Prepared::Reply(text) => {
                    self.io.queue(text);
                    continue;
                }
                Prepared::Line(command) => command,
                Prepared::Path { line, quoted, dsn } => {
                    let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
                    slot.pending_quoted = quoted;
                    slot.pending_dsn = Some(dsn);
                    line
                }
            };
            if let ControlFlow::Break(end) = self.command(&command).await {
                return end;
            }
        }
    }

    /// Reads one command line, unless the client goes, idles, or the
    /// server stops first.
    async fn read_command(&mut self, line: &mut Vec<u8>) -> Step {
        let stops = &self.stops;
        let read = tokio::select! {
            biased;
            _ = stops.soft.cancelled(), if !self.in_transaction => Err(Stop::ShuttingDown),
            _ = stops.hard.cancelled() => Err(Stop::ShuttingDown),
            _ = tokio::time::sleep_until(self.deadline) => Err(Stop::SessionTooLong),
            r = self.io.read_line(line, self.config.smtp.max_line_bytes) => Ok(r),
        };
        match read {
            Ok(Ok(())) => {
                self.stops.touch(&self.ctx);
                ControlFlow::Continue(())
            }
            Ok(Err(ReadError::TooLong)) => {
                warn!(limit = "max_line_bytes", "limit hit");
                crate::metrics::get().reject("max_line_bytes");
                self.io.queue(reply::LINE_TOO_LONG);
                ControlFlow::Break("line too long".to_owned())
            }
            other => self.read_failed(other, Phase::Command),
        }
    }

    /// One command (after our pre-filter), answered.
    async fn command(&mut self, command: &[u8]) -> Step {
        if self.config.tls.require_tls && !self.is_tls && is_verb(command, b"MAIL") {
            crate::metrics::get().reject("tls_required");
            self.io.queue(reply::TLS_REQUIRED);
            return ControlFlow::Continue(());
        }
        if self.chunks.is_some() && !is_verb(command, b"BDAT") && !self.between_chunks(command) {
            return ControlFlow::Continue(());
        }
        if is_verb(command, b"BDAT") {
            return self.bdat(command).await;
        }
        if is_verb(command, b"DATA") && self.in_transaction && self.refuse_for_memory() {
            self.io.queue(reply::INSUFFICIENT_STORAGE);
            return ControlFlow::Continue(());
        }
        let response = self.session.process(command);
        if response.code == 250 {
            if is_verb(command, b"MAIL") {
                self.in_transaction = true;
            } else if ["RSET", "HELO", "EHLO"]
                .iter()
                .any(|v| is_verb(command, v.as_bytes()))
            {
                self.in_transaction = false;
            }
        }
        if response.code == 250 && is_verb(command, b"EHLO") {
            let offer_starttls = self.tls.is_some() && !self.is_tls;
            self.io.queue(&reply::ehlo(
                &self.config.smtp.hostname,
                self.config.smtp.max_message_bytes,
                offer_starttls,
            ));
            return ControlFlow::Continue(());
        }
        let mut text = Vec::with_capacity(64);
        reply::render(&response, &mut text);
        self.io.queue(&text);
        match response.action {
            mailin::Action::Close => ControlFlow::Break("quit".to_owned()),
            mailin::Action::UpgradeTls => self.start_tls().await,
            _ if response.code == 354 => self.data().await,
            _ => ControlFlow::Continue(()),
        }
    }

    /// A command other than BDAT while a chunked message is open: NOOP is
    /// answered, RSET and QUIT drop the message and go on to be executed
    /// (`true`), anything else is refused.
    fn between_chunks(&mut self, command: &[u8]) -> bool {
        if is_verb(command, b"NOOP") {
            self.io.queue(b"250 2.0.0 Ok\r\n");
            return false;
        }
        if !(is_verb(command, b"RSET") || is_verb(command, b"QUIT")) {
            self.io.queue(if is_verb(command, b"DATA") {
                reply::DATA_AFTER_BDAT
            } else {
                reply::BDAT_IN_PROGRESS
            });
            return false;
        }
        // The message is dropped, and mailin leaves its DATA state before
        // it sees the command.
        let _ = self.session.process(b".\r\n");
        self.slot.lock().unwrap_or_else(|p| p.into_inner()).envelope = None;
        self.chunks = None;
        self.in_transaction = false;
        true
    }

    /// One BDAT chunk (RFC 3030): read under the same limits as DATA; the
    /// last one ends the message.
    async fn bdat(&mut self, command: &[u8]) -> Step {
        let Some((size, last)) = parse_bdat(command) else {
            self.io.queue(reply::BDAT_SYNTAX);
            return ControlFlow::Break("BDAT without a readable size".to_owned());
        };
        if self.chunks.is_none() {
            if let Some(refusal) = self.open_chunks() {
                // The refused chunk is read and dropped: its bytes are
                // message data, never commands.
                let read = bounded(
                    &self.stops,
                    self.deadline,
                    self.io.read_exact_into(size, |_| {}),
                )
                .await;
                self.chunk_read(read)?;
                self.io.queue(&refusal);
                return ControlFlow::Continue(());
            }
        }
        let max = self.config.smtp.max_message_bytes;
        let Some(current) = self.chunks.as_mut() else {
            return ControlFlow::Continue(());
        };
        let read = bounded(
            &self.stops,
            self.deadline,
            self.io
                .read_exact_into(size, |bytes| current.take(bytes, max)),
        )
        .await;
        self.chunk_read(read)?;
        if !last {
            self.io.queue(&reply::chunk_received(size));
            return ControlFlow::Continue(());
        }
        let Some(done) = self.chunks.take() else {
            return ControlFlow::Continue(());
        };
        let (data, reservation) = done.finish();
        self.end_of_message(data, reservation).await;
        ControlFlow::Continue(())
    }

    /// Opens a chunked message at its first chunk; the refusal to send
    /// instead when memory or the transaction does not allow one.
    fn open_chunks(&mut self) -> Option<Vec<u8>> {
        if self.refuse_for_memory() {
            return Some(reply::INSUFFICIENT_STORAGE.to_vec());
        }
        // mailin checks the transaction as for DATA and stays in its DATA
        // state until the last chunk.
        let response = self.session.process(b"DATA\r\n");
        if response.code == 354 {
            self.chunks = Some(Chunks::new(Reservation::new(&self.ctx.data_budget)));
            None
        } else {
            let mut text = Vec::new();
            reply::render(&response, &mut text);
            Some(text)
        }
    }

    /// After DATA's 354: the message, read by us up to the lone dot.
    async fn data(&mut self) -> Step {
        if let Err(error) = self.io.flush().await {
            return ControlFlow::Break(format!("write failed: {error}"));
        }
        // Held until the message is committed (or refused): then its bytes are gone.
        let mut reservation = Reservation::new(&self.ctx.data_budget);
        let read = bounded(
            &self.stops,
            self.deadline,
            self.io
                .read_data(self.config.smtp.max_message_bytes, &mut reservation),
        )
        .await;
        let data = match read {
            Ok(Ok(data)) => data,
            failed => return self.read_failed(failed, Phase::Data),
        };
        self.end_of_message(data, reservation).await;
        ControlFlow::Continue(())
    }

    /// The TLS handshake after STARTTLS's 220 (RFC 3207). Commands
    /// pipelined after STARTTLS were sent in clear and must not be executed
    /// under TLS (command injection): the session closes instead.
    async fn start_tls(&mut self) -> Step {
        if let Err(error) = self.io.flush().await {
            return ControlFlow::Break(format!("write failed: {error}"));
        }
        if self.io.has_buffered_input() {
            warn!("commands pipelined after STARTTLS");
            return ControlFlow::Break("commands pipelined after STARTTLS".to_owned());
        }
        let Some(acceptor) = self.tls.clone() else {
            return ControlFlow::Break("STARTTLS without a certificate".to_owned());
        };
        // The plain stream goes to the handshake; a stand-in keeps `io`
        // usable for the final flush if the handshake fails.
        let stand_in: Box<dyn Stream> = Box::new(tokio::io::duplex(1).0);
        let plain = std::mem::replace(&mut self.io, Io::new(stand_in, self.idle));
        match start_tls(plain, &acceptor, self.idle).await {
            Ok(secured) => self.io = secured,
            Err(end) => return ControlFlow::Break(end),
        }
        // The client starts over with EHLO (RFC 3207 §4.2).
        self.session.tls_active();
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Slot::default();
        self.in_transaction = false;
        self.is_tls = true;
        ControlFlow::Continue(())
    }

    /// Whether the daemon-wide DATA budget cannot hold even a message's
    /// start: then the client is told to come back later before it sends
    /// anything (RFC 5321 §4.2.5: 452 is temporary). Counted and logged
    /// here, the one check for DATA and BDAT.
    fn refuse_for_memory(&self) -> bool {
        let max = self.config.smtp.max_message_bytes;
        let exhausted = self.ctx.data_budget.available() < super::budget::MIN_START_BYTES.min(max);
        if exhausted {
            warn!(limit = "max_data_bytes_in_flight", "limit hit");
            crate::metrics::get().reject("max_data_bytes_in_flight");
        }
        exhausted
    }

    /// The one end of a message, by DATA or by BDAT: mailin leaves its
    /// DATA state (its `data_end` always says OK; the real answer is
    /// decided here), the message is committed or refused, and its bytes
    /// leave the budget.
    async fn end_of_message(&mut self, data: Data, reservation: Reservation) {
        self.in_transaction = false;
        let _ = self.session.process(b".\r\n");
        let text = deliver(data, &self.slot, self.peer, &self.ctx, &mut self.messages).await;
        drop(reservation);
        self.io.queue(&text);
    }

    /// A chunk's read: go on, or why the session ends.
    fn chunk_read(&mut self, read: Result<Result<(), ReadError>, Stop>) -> Step {
        match read {
            Ok(Ok(())) => ControlFlow::Continue(()),
            Ok(Err(ReadError::TooLong)) => ControlFlow::Break("chunk too long".to_owned()),
            other => self.read_failed(other, Phase::Bdat),
        }
    }

    /// A read that did not deliver (not a line too long, which each phase
    /// answers its own way): the reply the client gets, if any, and why the
    /// session ends.
    fn read_failed<T>(&mut self, read: Result<Result<T, ReadError>, Stop>, phase: Phase) -> Step {
        let during = phase.during();
        let stop = match read {
            Ok(Ok(_)) => return ControlFlow::Continue(()),
            Ok(Err(ReadError::Eof)) => return ControlFlow::Break(format!("client closed{during}")),
            Ok(Err(ReadError::Io(error))) => {
                return ControlFlow::Break(format!("read failed{during}: {error}"))
            }
            Ok(Err(ReadError::TooLong)) => {
                return ControlFlow::Break(format!("line too long{during}"))
            }
            Ok(Err(ReadError::Idle)) => Stop::Idle,
            Err(stop) => stop,
        };
        self.io.queue(stop_reply(&stop));
        ControlFlow::Break(stop_reason(&stop).to_owned())
    }
}

/// Which read of the session failed, for the reason logged.
#[derive(Clone, Copy)]
enum Phase {
    Command,
    Data,
    Bdat,
}

impl Phase {
    fn during(self) -> &'static str {
        match self {
            Phase::Command => "",
            Phase::Data => " during DATA",
            Phase::Bdat => " during BDAT",
        }
    }
}

/// `read`, unless the server stops for good or the session runs past its
/// deadline first (the bound on every read of message data).
async fn bounded<F: std::future::Future>(
    stops: &Stops,
    deadline: Instant,
    read: F,
) -> Result<F::Output, Stop> {
    tokio::select! {
        biased;
        _ = stops.hard.cancelled() => Err(Stop::ShuttingDown),
        _ = tokio::time::sleep_until(deadline) => Err(Stop::SessionTooLong),
        r = read => Ok(r),
    }
}

/// The TLS handshake after STARTTLS's 220, bounded by the idle timeout; the
/// secured stream, or why the session ends.
async fn start_tls(
    plain: Io<Box<dyn Stream>>,
    acceptor: &tokio_rustls::TlsAcceptor,
    idle: std::time::Duration,
) -> Result<Io<Box<dyn Stream>>, String> {
    match tokio::time::timeout(idle, acceptor.accept(plain.into_inner())).await {
        Ok(Ok(tls)) => {
            let connection = tls.get_ref().1;
            let version = connection
                .protocol_version()
                .map(|v| format!("{v:?}"))
                .unwrap_or_default();
            let cipher = connection
                .negotiated_cipher_suite()
                .map(|c| format!("{:?}", c.suite()))
                .unwrap_or_default();
            info!(version, cipher, "tls established");
            Ok(Io::new(Box::new(tls), idle))
        }
        Ok(Err(error)) => Err(format!("tls handshake failed: {error}")),
        Err(_) => Err("tls handshake timed out".to_owned()),
    }
}

/// A message arriving in BDAT chunks, held under the DATA budget like one
/// arriving by DATA; past `smtp.max_message_bytes` or the budget its bytes
/// are counted and dropped, and the last chunk gets the refusal.
struct Chunks {
    message: Vec<u8>,
    reservation: Reservation,
    too_big: bool,
    over_budget: bool,
}

impl Chunks {
    fn new(reservation: Reservation) -> Chunks {
        Chunks {
            message: Vec::new(),
            reservation,
            too_big: false,
            over_budget: false,
        }
    }

    fn take(&mut self, bytes: &[u8], max: u64) {
        if self.too_big || self.over_budget {
            return;
        }
        let after = self.message.len() as u64 + bytes.len() as u64;
        if after > max {
            self.too_big = true;
            self.message = Vec::new();
            return;
        }
        let reserved = self.reservation.bytes();
        if after > reserved {
            let step = (after - reserved)
                .max(super::budget::MIN_START_BYTES)
                .min(max - reserved);
            if !self.reservation.grow(step) {
                self.over_budget = true;
                self.message = Vec::new();
                return;
            }
        }
        self.message.extend_from_slice(bytes);
    }

    /// The message (or why there is none), and the reservation to hold
    /// until it is committed.
    fn finish(self) -> (Data, Reservation) {
        let data = if self.too_big {
            Data::TooBig
        } else if self.over_budget {
            Data::OverBudget
        } else {
            Data::Message(self.message)
        };
        (data, self.reservation)
    }
}

/// `BDAT <size> [LAST]`; `None` when the size cannot be read.
fn parse_bdat(line: &[u8]) -> Option<(u64, bool)> {
    let text = std::str::from_utf8(line).ok()?;
    let mut words = text.split_ascii_whitespace().skip(1);
    let size = words.next()?;
    if !size.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let size: u64 = size.parse().ok()?;
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return None,
    };
    words.next().is_none().then_some((size, last))
}

/// The end of a message (DATA or BDAT LAST): the commit and its reply.
async fn deliver(
    data: Data,
    slot: &Mutex<Slot>,
    peer: SocketAddr,
    ctx: &Context,
    messages: &mut u64,
) -> Vec<u8> {
    let envelope = slot
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .envelope
        .take();
    match (data, envelope) {
        (Data::TooBig, _) => {
            warn!(limit = "max_message_bytes", "limit hit");
            crate::metrics::get().reject("max_message_bytes");
            reply::TOO_BIG.to_vec()
        }
        (Data::OverBudget, _) => {
            warn!(limit = "max_data_bytes_in_flight", "limit hit");
            crate::metrics::get().reject("max_data_bytes_in_flight");
            reply::INSUFFICIENT_STORAGE.to_vec()
        }
        (Data::Message(_), None) => {
            error!("data without an envelope");
            reply::HANDLER_FAILED.to_vec()
        }
        (Data::Message(bytes), Some(Transaction { from, to, dsn })) => {
            let helo = slot.lock().unwrap_or_else(|p| p.into_inner()).helo.clone();
            // One line an operator can grep with the Postfix queue id
            // it matches: who, from where, to whom, which message.
            let logged = (
                helo.clone().unwrap_or_default(),
                if from.is_empty() {
                    "<>".to_owned()
                } else {
                    from.clone()
                },
                to.join(","),
                crate::parse::rawmail::header(&bytes, "message-id").unwrap_or_default(),
            );
            let incoming = Incoming {
                envelope: Envelope {
                    origin: Origin::Smtp,
                    peer_ip: Some(peer.ip()),
                    helo,
                    mail_from: if from.is_empty() {
                        Sender::Null
                    } else {
                        Sender::Address(from)
                    },
                    rcpt_to: to,
                    dsn,
                },
                received_at: crate::now_rfc3339(),
                bytes,
            };
            let size = incoming.bytes.len();
            match ctx.queue.commit(incoming).await {
                Ok(committed) => {
                    *messages += 1;
                    ctx.work.committed();
                    let metrics = crate::metrics::get();
                    metrics.accepted.inc();
                    metrics.bytes_received.inc_by(size as u64);
                    let (helo, mail_from, rcpt_to, message_id) = &logged;
                    info!(
                        raw_id = committed.raw_id.0,
                        size,
                        is_duplicate = committed.is_duplicate,
                        %helo,
                        %mail_from,
                        %rcpt_to,
                        %message_id,
                        "message committed"
                    );
                    reply::queued(committed)
                }
                Err(error) => {
                    error!(%error, "raw commit failed");
                    crate::metrics::get().reject("store_error");
                    reply::for_store_error(&error).to_vec()
                }
            }
        }
    }
}

fn stop_reply(stop: &Stop) -> &'static [u8] {
    match stop {
        Stop::Idle => reply::IDLE_TIMEOUT,
        Stop::SessionTooLong => reply::SESSION_TOO_LONG,
        Stop::ShuttingDown => reply::SHUTTING_DOWN,
    }
}

fn stop_reason(stop: &Stop) -> &'static str {
    match stop {
        Stop::Idle => {
            warn!(limit = "idle_timeout_seconds", "limit hit");
            "idle timeout"
        }
        Stop::SessionTooLong => {
            warn!(limit = "max_session_seconds", "limit hit");
            "session too long"
        }
        Stop::ShuttingDown => "shutting down",
    }
}

fn is_verb(line: &[u8], verb: &[u8]) -> bool {
    line.len() >= verb.len()
        && line[..verb.len()].eq_ignore_ascii_case(verb)
        && line
            .get(verb.len())
            .is_none_or(|b| matches!(b, b' ' | b'\r' | b'\t'))
}

/// Adapts what mailin's parser cannot take: the null reverse path `<>`, and
/// ESMTP parameters (RFC 1870 `SIZE=`, which we advertise and enforce here;
/// others are dropped, `BODY=` is kept).
fn prepare(line: &[u8], max_message_bytes: u64) -> Prepared {
    // NUL and other control characters have no place in a command (and would
    // end up in our logs and the envelope).
    if has_control(line.strip_suffix(b"\r\n").unwrap_or(line).trim_ascii()) {
        return Prepared::Reply(reply::CONTROL_CHARACTERS);
    }
    if is_verb(line, b"AUTH") {
        // Well-formed, but not offered (RFC 4954 §4; never a 500).
        return Prepared::Reply(reply::AUTH_NOT_OFFERED);
    }
    if is_verb(line, b"MAIL") {
        return prepare_mail(line, max_message_bytes);
    }
    if is_verb(line, b"RCPT") {
        if let Some((path, params)) = split_path(line, b"RCPT TO:") {
            // RFC 3461's NOTIFY and ORCPT are taken; anything else is a
            // parameter we do not support (RFC 5321 §4.1.1.11: 555).
            if unknown_param(params, &[b"NOTIFY", b"ORCPT"]).is_some() {
                return Prepared::Reply(reply::UNSUPPORTED_PARAMETER);
            }
            let Ok(dsn) = super::dsn::rcpt_params(params) else {
                return Prepared::Reply(reply::BAD_PARAMETER);
            };
            let mut out = b"RCPT TO:<".to_vec();
            out.extend_from_slice(if needs_stand_in(path) {
                QUOTED_PATH.as_bytes()
            } else {
                path
            });
            out.extend_from_slice(b">\r\n");
            return path_command(out, path, PathDsn::Rcpt(dsn));
        }
    }
    Prepared::Line(line.to_vec())
}

fn prepare_mail(line: &[u8], max_message_bytes: u64) -> Prepared {
    let Some((path, params)) = split_path(line, b"MAIL FROM:") else {
        return Prepared::Line(line.to_vec()); // mailin answers the syntax error
    };
    if unknown_param(params, &[b"SIZE", b"BODY", b"RET", b"ENVID", b"SMTPUTF8"]).is_some() {
        return Prepared::Reply(reply::UNSUPPORTED_PARAMETER);
    }
    let Ok(dsn) = super::dsn::mail_params(params) else {
        return Prepared::Reply(reply::BAD_PARAMETER);
    };
    let mut body = None;
    for param in params.split(|b| *b == b' ').filter(|p| !p.is_empty()) {
        let (key, value) = match memchr::memchr(b'=', param) {
            Some(i) => (&param[..i], &param[i + 1..]),
            None => (param, &b""[..]),
        };
        if key.eq_ignore_ascii_case(b"SIZE") {
            match std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
            {
                Some(size) if size > max_message_bytes => {
                    warn!(limit = "max_message_bytes", declared = size, "limit hit");
                    crate::metrics::get().reject("max_message_bytes");
                    return Prepared::Reply(reply::TOO_BIG);
                }
                Some(_) => {}
                None => return Prepared::Reply(b"501 5.5.4 Bad SIZE parameter\r\n"),
            }
        } else if key.eq_ignore_ascii_case(b"BODY") {
            body = Some(value);
        }
    }
    let mut out = b"MAIL FROM:<".to_vec();
    out.extend_from_slice(if path.is_empty() {
        NULL_SENDER.as_bytes()
    } else if needs_stand_in(path) {
        QUOTED_PATH.as_bytes()
    } else {
        path
    });
    out.push(b'>');
    if let Some(body) = body {
        out.extend_from_slice(b" BODY=");
        out.extend_from_slice(body);
    }
    out.extend_from_slice(b"\r\n");
    path_command(out, path, PathDsn::Mail(dsn))
}

/// Paths mailin's parser cannot take: a quoted local part, or UTF-8
/// (RFC 6531: `jörg@münchen.example`).
fn needs_stand_in(path: &[u8]) -> bool {
    path.contains(&b'"') || !path.is_ascii()
}

/// `line` for mailin, with the real `path` kept when mailin cannot take it.
fn path_command(line: Vec<u8>, path: &[u8], dsn: PathDsn) -> Prepared {
    let Ok(path) = std::str::from_utf8(path) else {
        return Prepared::Reply(reply::PATH_NOT_UTF8);
    };
    Prepared::Path {
        line,
        quoted: needs_stand_in(path.as_bytes()).then(|| path.to_owned()),
        dsn,
    }
}

/// The first parameter whose keyword is not one of `known`, if any.
fn unknown_param<'a>(params: &'a [u8], known: &[&[u8]]) -> Option<&'a [u8]> {
    params
        .split(|b| *b == b' ')
        .filter(|p| !p.is_empty())
        .find(|param| {
            let key = param.split(|b| *b == b'=').next().unwrap_or(param);
            !known.iter().any(|k| key.eq_ignore_ascii_case(k))
        })
}

/// Splits `MAIL FROM:<path> params` into path and params (case-insensitive,
/// tolerating a space after the colon as many clients send it). A quoted
/// local part may hold spaces and `>` (`<"john doe"@example.net>`).
fn split_path<'a>(line: &'a [u8], prefix: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let line = line.strip_suffix(b"\r\n").unwrap_or(line);
    if line.len() < prefix.len() || !line[..prefix.len()].eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = line[prefix.len()..].trim_ascii_start();
    let rest = rest.strip_prefix(b"<")?;
    let mut quoted = false;
    let mut escaped = false;
    let mut close = None;
    for (i, b) in rest.iter().enumerate() {
        match (*b, quoted, escaped) {
            (_, true, true) => escaped = false,
            (b'\\', true, false) => escaped = true,
            (b'"', _, false) => quoted = !quoted,
            (b'>', false, _) => {
                close = Some(i);
                break;
            }
            (b'<', false, _) | (b' ', false, _) => return None,
            _ => {}
        }
    }
    let close = close?;
    Some((&rest[..close], rest[close + 1..].trim_ascii()))
}

fn has_control(bytes: &[u8]) -> bool {
    bytes.iter().any(|b| b.is_ascii_control() && *b != b'\t')
}

fn printable(line: &[u8]) -> String {
    String::from_utf8_lossy(line.strip_suffix(b"\r\n").unwrap_or(line)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(p: Prepared) -> Vec<u8> {
        match p {
            Prepared::Line(l) | Prepared::Path { line: l, .. } => l,
            Prepared::Reply(r) => panic!("unexpected reply {}", String::from_utf8_lossy(r)),
        }
    }

    #[test]
    fn null_sender_and_params_are_adapted_for_mailin() {
        assert_eq!(
            line(prepare(b"MAIL FROM:<>\r\n", 10)),
            format!("MAIL FROM:<{NULL_SENDER}>\r\n").as_bytes()
        );
        assert_eq!(
            line(prepare(b"mail from: <a@b> SIZE=5 BODY=8BITMIME\r\n", 10)),
            b"MAIL FROM:<a@b> BODY=8BITMIME\r\n"
        );
        assert_eq!(
            line(prepare(b"RCPT TO:<abuse@x> NOTIFY=NEVER\r\n", 10)),
            b"RCPT TO:<abuse@x>\r\n"
        );
        assert_eq!(line(prepare(b"NOOP\r\n", 10)), b"NOOP\r\n");
    }

    #[test]
    fn dsn_parameters_are_kept_aside_and_checked() {
        match prepare(
            b"RCPT TO:<abuse@x> NOTIFY=FAILURE ORCPT=rfc822;a+2Bb@x\r\n",
            10,
        ) {
            Prepared::Path {
                dsn: PathDsn::Rcpt(r),
                quoted: None,
                ..
            } => assert_eq!(r.orcpt.as_deref(), Some("rfc822;a+b@x")),
            _ => panic!("not a path command"),
        }
        assert!(matches!(
            prepare(b"MAIL FROM:<a@b> RET=MAYBE\r\n", 10),
            Prepared::Reply(reply::BAD_PARAMETER)
        ));
        assert!(matches!(
            prepare(b"RCPT TO:<abuse@x> NOTIFY=NEVER,DELAY\r\n", 10),
            Prepared::Reply(reply::BAD_PARAMETER)
        ));
    }

    #[test]
    fn declared_size_over_the_limit_is_552_before_data() {
        assert!(matches!(
            prepare(b"MAIL FROM:<a@b> SIZE=11\r\n", 10),
            Prepared::Reply(reply::TOO_BIG)
        ));
    }

    #[test]
    fn a_forged_null_sender_is_refused() {
        let forged = format!("MAIL FROM:<{NULL_SENDER}>\r\n");
        assert!(matches!(
            prepare(forged.as_bytes(), 10),
            Prepared::Reply(reply::CONTROL_CHARACTERS)
        ));
    }
}
