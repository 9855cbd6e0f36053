//! Bounded reading of SMTP command lines and of the DATA phase.
//!
//! In: a byte stream. Out: command lines (always ending in CRLF, at most
//! `max_line_bytes`) and message contents (dot-unstuffed, ended only by
//! `<CRLF>.<CRLF>`, at most `max_message_bytes` kept in memory).
//!
//! Bare-LF policy (SMTP smuggling, 2023): in command lines a bare LF is taken
//! as CRLF, because mailin's parser needs CRLF and clients such as netcat send
//! LF. Inside DATA a bare LF is kept as data and never ends a line: only CRLF
//! starts a new line, so `<LF>.<LF>`, `<LF>.<CRLF>` and `<CR>.<CR>` are plain
//! message bytes and one message can never be split into two.

use super::budget::Reservation;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;

/// Read buffer between commands: small, because idle sessions are many.
const COMMAND_BUFFER_BYTES: usize = 4 * 1024;
/// Read buffer during DATA: large, because messages can be megabytes.
const DATA_BUFFER_BYTES: usize = 64 * 1024;

/// Why a read ended without a line or a message.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the connection.
    Eof,
    /// Nothing arrived within the idle timeout.
    Idle,
    /// A command line longer than the limit; the connection must be closed.
    TooLong,
    Io(std::io::Error),
}

/// The DATA phase as read.
#[derive(Debug, PartialEq, Eq)]
pub enum Data {
    Message(Vec<u8>),
    /// The message passed `max_message_bytes`; its bytes were read and dropped.
    TooBig,
    /// The daemon's DATA budget ran out while it grew; its bytes were read
    /// and dropped.
    OverBudget,
}

/// Smallest step in which a message's memory is reserved from the budget.
const RESERVE_STEP_BYTES: u64 = super::budget::MIN_START_BYTES;

/// A stream with a read buffer and a write buffer.
pub struct Io<S> {
    stream: S,
    idle: Duration,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    out: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Io<S> {
    /// `idle` bounds every single read: a client silent that long gets [`ReadError::Idle`].
    pub fn new(stream: S, idle: Duration) -> Self {
        Io {
            stream,
            idle,
            buf: vec![0; COMMAND_BUFFER_BYTES],
            start: 0,
            end: 0,
            out: Vec::with_capacity(256),
        }
    }

    /// The stream, for STARTTLS; buffered input and output are dropped (the
    /// caller flushed and checked there was no input).
    pub fn into_inner(self) -> S {
        self.stream
    }

    /// Whether unread bytes are already buffered (a pipelined client).
    pub fn has_buffered_input(&self) -> bool {
        self.start < self.end
    }

    /// Queues `bytes` for the next flush.
    pub fn queue(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Ends the stream's sending side: a TLS stream sends its close_notify
    /// (RFC 8446 §6.1) so the client can tell the end from a cut.
    pub async fn shutdown(&mut self) -> std::io::Result<()> {
        self.stream.shutdown().await
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.stream.flush().await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Reads more bytes after the buffered ones, making room first.
    async fn fill(&mut self, min_capacity: usize) -> Result<(), ReadError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let grown = (self.buf.len() * 2).max(min_capacity);
            self.buf.resize(grown, 0);
        } else if self.buf.len() < min_capacity {
            self.buf.resize(min_capacity, 0);
        }
        match timeout(self.idle, self.stream.read(&mut self.buf[self.end..])).await {
            Err(_) => Err(ReadError::Idle),
            Ok(Ok(0)) => Err(ReadError::Eof),
            Ok(Ok(n)) => {
                self.end += n;
                Ok(())
            }
            Ok(Err(e)) => Err(ReadError::Io(e)),
        }
    }

    /// Gives memory back after a large DATA phase, keeping unread bytes.
    fn shrink(&mut self) {
        if self.buf.len() > COMMAND_BUFFER_BYTES && self.end - self.start <= COMMAND_BUFFER_BYTES {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            self.buf.truncate(COMMAND_BUFFER_BYTES);
            self.buf.shrink_to_fit();
        }
    }

    /// Reads one command line into `line`, ending it in CRLF.
    ///
    /// # Errors
    /// [`ReadError::TooLong`] once `max` bytes arrived without a newline
    /// (the caller answers 500 5.5.2 and closes); EOF; I/O errors.
    pub async fn read_line(&mut self, line: &mut Vec<u8>, max: usize) -> Result<(), ReadError> {
        line.clear();
        loop {
            let pending = &self.buf[self.start..self.end];
            if let Some(i) = memchr::memchr(b'\n', pending) {
                if i + 1 > max {
                    return Err(ReadError::TooLong);
                }
                let body = &pending[..i];
                let body = body.strip_suffix(b"\r").unwrap_or(body);
                line.extend_from_slice(body);
                line.extend_from_slice(b"\r\n");
                self.start += i + 1;
                return Ok(());
            }
            if pending.len() >= max {
                return Err(ReadError::TooLong);
            }
            let want = (self.end - self.start + 1)
                .min(max)
                .max(COMMAND_BUFFER_BYTES);
            self.fill(want).await?;
        }
    }

    /// Reads exactly `n` bytes (a BDAT chunk), handing them to `sink` as
    /// they come; nothing is interpreted. The buffer never grows for it.
    ///
    /// # Errors
    /// EOF or I/O errors before the `n` bytes arrived.
    pub async fn read_exact_into(
        &mut self,
        mut n: u64,
        mut sink: impl FnMut(&[u8]),
    ) -> Result<(), ReadError> {
        while n > 0 {
            if self.start == self.end {
                self.fill(DATA_BUFFER_BYTES).await?;
            }
            let available = (self.end - self.start) as u64;
            let take = available.min(n) as usize;
            sink(&self.buf[self.start..self.start + take]);
            self.start += take;
            n -= take as u64;
        }
        self.shrink();
        Ok(())
    }

    /// Reads the DATA phase up to and including `<CRLF>.<CRLF>`.
    ///
    /// # Errors
    /// EOF or I/O errors before the end of data.
    /// Reads the message after a 354, holding its bytes under `reservation`:
    /// the message's buffer never grows past what the reservation holds.
    pub async fn read_data(
        &mut self,
        max_bytes: u64,
        reservation: &mut Reservation,
    ) -> Result<Data, ReadError> {
        let mut reader = DataReader::new(max_bytes);
        loop {
            let input = &self.buf[self.start..self.end];
            // Reserve before the bytes are kept: what this input could add
            // (never past `max_bytes`), in steps that grow with the message.
            let reserved = reservation.bytes();
            let target = (reader.message.len() as u64 + input.len() as u64).min(max_bytes);
            if !reader.over_budget && target > reserved {
                let step = (target - reserved)
                    .max(RESERVE_STEP_BYTES)
                    .max(reader.message.len() as u64 / 2)
                    .min(max_bytes - reserved);
                if reservation.grow(step) {
                    let room = (reserved + step) as usize - reader.message.len();
                    reader.message.reserve_exact(room);
                } else {
                    reader.over_budget = true;
                    reader.message = Vec::new();
                }
            }
            let consumed = reader.feed(input);
            self.start += consumed;
            if reader.is_done() {
                self.shrink();
                return Ok(reader.finish());
            }
            self.fill(DATA_BUFFER_BYTES).await?;
        }
    }
}

/// Where the reader stands relative to line starts (only CRLF starts a line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    LineStart,
    /// A `.` at line start, held back until we know whether it is stuffing or the end.
    Dot,
    /// `.` then CR at line start: one LF away from the end of data.
    DotCr,
    Mid,
    /// A CR inside a line: an LF now starts a new line.
    Cr,
    Done,
}

/// The DATA state machine, independent of I/O so it can be tested byte by byte.
struct DataReader {
    state: State,
    message: Vec<u8>,
    size: u64,
    max_bytes: u64,
    /// The daemon's budget said no: bytes are counted, not kept.
    over_budget: bool,
}

impl DataReader {
    fn new(max_bytes: u64) -> Self {
        DataReader {
            state: State::LineStart,
            message: Vec::new(),
            size: 0,
            max_bytes,
            over_budget: false,
        }
    }

    fn is_done(&self) -> bool {
        self.state == State::Done
    }

    fn finish(self) -> Data {
        if self.size > self.max_bytes {
            Data::TooBig
        } else if self.over_budget {
            Data::OverBudget
        } else {
            Data::Message(self.message)
        }
    }

    fn emit(&mut self, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        if self.over_budget {
            return;
        }
        if self.size <= self.max_bytes {
            self.message.extend_from_slice(bytes);
        } else if !self.message.is_empty() {
            self.message = Vec::new(); // too big: stop holding it, keep counting
        }
    }

    /// Consumes bytes until the end of data or of `input`; returns how many were used.
    fn feed(&mut self, input: &[u8]) -> usize {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Done => return i,
                State::Mid => {
                    // Fast path: copy up to the next CR in one go.
                    let run = memchr::memchr(b'\r', &input[i..]).unwrap_or(input.len() - i);
                    self.emit(&input[i..i + run]);
                    i += run;
                    if i < input.len() {
                        self.emit(b"\r");
                        self.state = State::Cr;
                        i += 1;
                    }
                    continue;
                }
                State::LineStart => {
                    self.state = match b {
                        b'.' => State::Dot,
                        b'\r' => {
                            self.emit(b"\r");
                            State::Cr
                        }
                        _ => {
                            self.emit(&[b]);
                            State::Mid
                        }
                    };
                }
                State::Dot => {
                    // RFC 5321 §4.5.2: a leading dot is removed; "." CRLF ends the data.
                    self.state = if b == b'\r' {
                        State::DotCr
                    } else {
                        self.emit(&[b]);
                        State::Mid
                    };
                }
                State::DotCr => {
                    if b == b'\n' {
                        self.state = State::Done;
                        return i + 1;
                    }
                    self.emit(b"\r");
                    self.state = State::Cr;
                    continue; // look at `b` again from Cr
                }
                State::Cr => {
                    self.emit(&[b]);
                    self.state = match b {
                        b'\n' => State::LineStart,
                        b'\r' => State::Cr,
                        _ => State::Mid,
                    };
                }
            }
            i += 1;
        }
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8], max: u64) -> (Option<Data>, usize) {
        let mut r = DataReader::new(max);
        let used = r.feed(input);
        (r.is_done().then(|| r.finish()), used)
    }

    fn read_split(input: &[u8], max: u64) -> Option<Data> {
        // Feed one byte at a time: the state must survive every split point.
        let mut r = DataReader::new(max);
        for b in input {
            if r.is_done() {
                break;
            }
            r.feed(std::slice::from_ref(b));
        }
        r.is_done().then(|| r.finish())
    }

    #[test]
    fn crlf_dot_crlf_ends_and_dots_are_unstuffed() {
        let input = b"Subject: x\r\n\r\n..leading dot\r\n.\r\nMAIL FROM:<a@b>\r\n";
        let (data, used) = read_all(input, 1000);
        assert_eq!(
            data,
            Some(Data::Message(
                b"Subject: x\r\n\r\n.leading dot\r\n".to_vec()
            ))
        );
        assert_eq!(&input[used..], b"MAIL FROM:<a@b>\r\n");
        assert_eq!(read_split(input, 1000), data);
    }

    #[test]
    fn empty_message_ends_at_once() {
        assert_eq!(read_all(b".\r\n", 10).0, Some(Data::Message(Vec::new())));
    }

    #[test]
    fn bare_lf_dot_never_ends_the_message() {
        for smuggle in [
            &b"a\n.\nMAIL"[..],
            b"a\n.\r\nMAIL",
            b"a\r.\rMAIL",
            b"a\r\n.\nMAIL",
            b"a\r\n.\rMAIL",
        ] {
            let mut input = smuggle.to_vec();
            input.extend_from_slice(b"\r\n.\r\n");
            let data = read_all(&input, 1000)
                .0
                .expect("ends at the real terminator");
            let Data::Message(m) = data else {
                panic!("not too big")
            };
            assert!(
                m.ends_with(b"MAIL\r\n"),
                "{:?}",
                String::from_utf8_lossy(&m)
            );
            assert_eq!(read_split(&input, 1000), Some(Data::Message(m)));
        }
    }

    #[test]
    fn incomplete_data_is_not_done() {
        assert_eq!(read_all(b"abc\r\n.", 100).0, None);
        assert_eq!(read_all(b"abc\r\n.\r", 100).0, None);
    }

    #[test]
    fn oversized_is_counted_not_kept() {
        let mut input = vec![b'x'; 5000];
        input.extend_from_slice(b"\r\n.\r\n");
        assert_eq!(read_all(&input, 4000).0, Some(Data::TooBig));
        assert_eq!(
            read_all(&input, 5002).0,
            Some(Data::Message(input[..5002].to_vec()))
        );
    }

    #[tokio::test]
    async fn long_command_line_is_refused_without_growing_past_the_limit() {
        let (client, server) = tokio::io::duplex(1 << 20);
        let mut io = Io::new(server, Duration::from_secs(5));
        let mut client = client;
        client.write_all(&vec![b'A'; 100_000]).await.unwrap();
        let mut line = Vec::new();
        assert!(matches!(
            io.read_line(&mut line, 4096).await,
            Err(ReadError::TooLong)
        ));
        assert!(io.buf.len() <= 8192, "buffer grew to {}", io.buf.len());
    }

    #[tokio::test]
    async fn pipelined_lines_come_out_one_by_one_with_crlf() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut io = Io::new(server, Duration::from_secs(5));
        client
            .write_all(b"EHLO a\r\nMAIL FROM:<x@y>\nRCPT TO:<abuse@z>\r\n")
            .await
            .unwrap();
        let mut line = Vec::new();
        io.read_line(&mut line, 512).await.unwrap();
        assert_eq!(line, b"EHLO a\r\n");
        assert!(io.has_buffered_input());
        io.read_line(&mut line, 512).await.unwrap();
        assert_eq!(line, b"MAIL FROM:<x@y>\r\n");
        io.read_line(&mut line, 512).await.unwrap();
        assert_eq!(line, b"RCPT TO:<abuse@z>\r\n");
        assert!(!io.has_buffered_input());
    }
}
