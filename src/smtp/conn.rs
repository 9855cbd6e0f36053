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
    let runtime = ctx.runtime.current();
    let (config, tls) = (runtime.config.clone(), runtime.tls.clone());
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
    let mut session = builder.build(peer.ip(), Handler::new(config.clone(), slot.clone()));
    let mut is_tls = false;
    let mut io = Io::new(stream, idle);
    let mut line = Vec::with_capacity(128);
    let mut messages = 0u64;
    // Between MAIL and the end of DATA: shutdown waits for the grace period.
    let mut in_transaction = false;
    // A message being sent in BDAT chunks (RFC 3030), from its first chunk.
    let mut chunks: Option<Chunks> = None;

    info!("session opened");
    io.queue(&reply::greeting(&config.smtp.hostname));
    let end = loop {
        // RFC 2920: replies to a pipelined group may be held until the input runs dry.
        if !io.has_buffered_input() {
            if let Err(error) = io.flush().await {
                break format!("write failed: {error}");
            }
        }
        let read = tokio::select! {
            biased;
            _ = stops.soft.cancelled(), if !in_transaction => Err(Stop::ShuttingDown),
            _ = stops.hard.cancelled() => Err(Stop::ShuttingDown),
            _ = tokio::time::sleep_until(deadline) => Err(Stop::SessionTooLong),
            r = io.read_line(&mut line, config.smtp.max_line_bytes) => Ok(r),
        };
        match read {
            Ok(Ok(())) => stops.touch(&ctx),
            Ok(Err(ReadError::Eof)) => break "client closed".to_owned(),
            Ok(Err(ReadError::Io(error))) => break format!("read failed: {error}"),
            Ok(Err(ReadError::Idle)) => {
                io.queue(stop_reply(&Stop::Idle));
                break stop_reason(&Stop::Idle).to_owned();
            }
            Ok(Err(ReadError::TooLong)) => {
                warn!(limit = "max_line_bytes", "limit hit");
                crate::metrics::get().reject("max_line_bytes");
                io.queue(reply::LINE_TOO_LONG);
                break "line too long".to_owned();
            }
            Err(stop) => {
                io.queue(stop_reply(&stop));
                break stop_reason(&stop).to_owned();
            }
        }
        debug!(command = %printable(&line), "command");
        let prepared = prepare(&line, config.smtp.max_message_bytes);
        let command = match prepared {
            Prepared::Reply(text) => {
                io.queue(text);
                continue;
            }
            Prepared::Line(command) => command,
            Prepared::Path { line, quoted, dsn } => {
                let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
                slot.pending_quoted = quoted;
                slot.pending_dsn = Some(dsn);
                line
            }
        };
        if config.tls.require_tls && !is_tls && is_verb(&command, b"MAIL") {
            crate::metrics::get().reject("tls_required");
            io.queue(reply::TLS_REQUIRED);
            continue;
        }
        if chunks.is_some() && !is_verb(&command, b"BDAT") {
            if is_verb(&command, b"NOOP") {
                io.queue(b"250 2.0.0 Ok\r\n");
                continue;
            }
            if !(is_verb(&command, b"RSET") || is_verb(&command, b"QUIT")) {
                io.queue(if is_verb(&command, b"DATA") {
                    reply::DATA_AFTER_BDAT
                } else {
                    reply::BDAT_IN_PROGRESS
                });
                continue;
            }
            // RSET or QUIT between chunks: the message is dropped and
            // mailin leaves its DATA state before it sees the command.
            let _ = session.process(b".\r\n");
            slot.lock().unwrap_or_else(|p| p.into_inner()).envelope = None;
            chunks = None;
            in_transaction = false;
        }
        if is_verb(&command, b"BDAT") {
            let Some((size, last)) = parse_bdat(&command) else {
                io.queue(reply::BDAT_SYNTAX);
                break "BDAT without a readable size".to_owned();
            };
            if chunks.is_none() {
                let refusal = if data_budget_exhausted(&ctx, config.smtp.max_message_bytes) {
                    Some(reply::INSUFFICIENT_STORAGE.to_vec())
                } else {
                    // mailin checks the transaction as for DATA and stays in
                    // its DATA state until the last chunk.
                    let response = session.process(b"DATA\r\n");
                    if response.code == 354 {
                        chunks = Some(Chunks::new(Reservation::new(&ctx.data_budget)));
                        None
                    } else {
                        let mut text = Vec::new();
                        reply::render(&response, &mut text);
                        Some(text)
                    }
                };
                if let Some(text) = refusal {
                    // The refused chunk is read and dropped: its bytes are
                    // message data, never commands.
                    let read = bounded(&stops, deadline, io.read_exact_into(size, |_| {})).await;
                    if let Some(end) = chunk_read_failed(read, &mut io) {
                        break end;
                    }
                    io.queue(&text);
                    continue;
                }
            }
            let max = config.smtp.max_message_bytes;
            let Some(current) = chunks.as_mut() else {
                continue;
            };
            let read = bounded(
                &stops,
                deadline,
                io.read_exact_into(size, |bytes| current.take(bytes, max)),
            )
            .await;
            if let Some(end) = chunk_read_failed(read, &mut io) {
                break end;
            }
            if !last {
                io.queue(&reply::chunk_received(size));
                continue;
            }
            in_transaction = false;
            let Some(done) = chunks.take() else {
                continue;
            };
            let (data, reservation) = done.finish();
            let text = end_of_message(
                &mut session,
                data,
                reservation,
                &slot,
                peer,
                &ctx,
                &mut messages,
            )
            .await;
            io.queue(&text);
            continue;
        }
        // Memory for the message is reserved as it arrives; with none left
        // for even its start, the client is told to come back later
        // before it sends anything (RFC 5321 §4.2.5: 452 is temporary).
        if is_verb(&command, b"DATA")
            && in_transaction
            && data_budget_exhausted(&ctx, config.smtp.max_message_bytes)
        {
            io.queue(reply::INSUFFICIENT_STORAGE);
            continue;
        }
        let response = session.process(&command);
        if response.code == 250 {
            if is_verb(&command, b"MAIL") {
                in_transaction = true;
            } else if ["RSET", "HELO", "EHLO"]
                .iter()
                .any(|v| is_verb(&command, v.as_bytes()))
            {
                in_transaction = false;
            }
        }
        if response.code == 250 && is_verb(&command, b"EHLO") {
            let offer_starttls = tls.is_some() && !is_tls;
            io.queue(&reply::ehlo(
                &config.smtp.hostname,
                config.smtp.max_message_bytes,
                offer_starttls,
            ));
            continue;
        }
        let mut text = Vec::with_capacity(64);
        reply::render(&response, &mut text);
        io.queue(&text);
        if response.action == mailin::Action::Close {
            break "quit".to_owned();
        }
        if response.action == mailin::Action::UpgradeTls {
            // RFC 3207 §4: the 220 goes out, then the handshake; commands
            // pipelined after STARTTLS were sent in clear and must not be
            // executed under TLS (command injection), so we close instead.
            if let Err(error) = io.flush().await {
                break format!("write failed: {error}");
            }
            if io.has_buffered_input() {
                warn!("commands pipelined after STARTTLS");
                break "commands pipelined after STARTTLS".to_owned();
            }
            let Some(acceptor) = tls.clone() else {
                break "STARTTLS without a certificate".to_owned();
            };
            // The plain stream goes to the handshake; a stand-in keeps `io`
            // usable for the final flush if the handshake fails.
            let plain = std::mem::replace(&mut io, Io::new(Box::new(tokio::io::duplex(1).0), idle));
            match start_tls(plain, &acceptor, idle).await {
                Ok(secured) => {
                    io = secured;
                    // The client starts over with EHLO (RFC 3207 §4.2).
                    session.tls_active();
                    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Slot::default();
                    in_transaction = false;
                    is_tls = true;
                    continue;
                }
                Err(end) => break end,
            }
        }
        if response.code != 354 {
            continue;
        }

        // DATA accepted: the 354 goes out now, then we read the message ourselves.
        if let Err(error) = io.flush().await {
            break format!("write failed: {error}");
        }
        // Held until the message is committed (or refused): then its bytes are gone.
        let mut reservation = Reservation::new(&ctx.data_budget);
        let read = bounded(
            &stops,
            deadline,
            io.read_data(config.smtp.max_message_bytes, &mut reservation),
        )
        .await;
        let data = match read {
            Ok(Ok(data)) => data,
            Ok(Err(ReadError::Eof)) => break "client closed during DATA".to_owned(),
            Ok(Err(ReadError::Io(error))) => break format!("read failed during DATA: {error}"),
            Ok(Err(ReadError::Idle)) => {
                io.queue(stop_reply(&Stop::Idle));
                break stop_reason(&Stop::Idle).to_owned();
            }
            Ok(Err(ReadError::TooLong)) => break "line too long during DATA".to_owned(),
            Err(stop) => {
                io.queue(stop_reply(&stop));
                break stop_reason(&stop).to_owned();
            }
        };
        in_transaction = false;
        let text = end_of_message(
            &mut session,
            data,
            reservation,
            &slot,
            peer,
            &ctx,
            &mut messages,
        )
        .await;
        io.queue(&text);
    };
    let _ = io.flush().await;
    let _ = io.shutdown().await;
    info!(reason = %end, messages, seconds = started.elapsed().as_secs_f64(), "session closed");
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

/// Whether the daemon-wide DATA budget cannot hold even a message's start:
/// then the client is told to come back later before it sends anything
/// (RFC 5321 §4.2.5: 452 is temporary). Counted and logged here, once.
fn data_budget_exhausted(ctx: &Context, max_message_bytes: u64) -> bool {
    let exhausted =
        ctx.data_budget.available() < super::budget::MIN_START_BYTES.min(max_message_bytes);
    if exhausted {
        warn!(limit = "max_data_bytes_in_flight", "limit hit");
        crate::metrics::get().reject("max_data_bytes_in_flight");
    }
    exhausted
}

/// The one end of a message, by DATA or by BDAT: mailin leaves its DATA
/// state (its `data_end` always says OK; the real answer is decided here),
/// the message is committed or refused, and its bytes leave the budget.
/// The reply to send.
async fn end_of_message(
    session: &mut mailin::Session<Handler>,
    data: Data,
    reservation: Reservation,
    slot: &Arc<Mutex<Slot>>,
    peer: SocketAddr,
    ctx: &Arc<Context>,
    messages: &mut u64,
) -> Vec<u8> {
    let _ = session.process(b".\r\n");
    let text = deliver(data, slot, peer, ctx, messages).await;
    drop(reservation);
    text
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

/// Why the session ends after a chunk could not be read, if it must.
fn chunk_read_failed<S: AsyncRead + AsyncWrite + Unpin>(
    read: Result<Result<(), ReadError>, Stop>,
    io: &mut Io<S>,
) -> Option<String> {
    match read {
        Ok(Ok(())) => None,
        Ok(Err(ReadError::Eof)) => Some("client closed during BDAT".to_owned()),
        Ok(Err(ReadError::Io(error))) => Some(format!("read failed during BDAT: {error}")),
        Ok(Err(ReadError::Idle)) => {
            io.queue(stop_reply(&Stop::Idle));
            Some(stop_reason(&Stop::Idle).to_owned())
        }
        Ok(Err(ReadError::TooLong)) => Some("chunk too long".to_owned()),
        Err(stop) => {
            io.queue(stop_reply(&stop));
            Some(stop_reason(&stop).to_owned())
        }
    }
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
