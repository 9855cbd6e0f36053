//! The one place where an outcome becomes SMTP reply text.
//!
//! In: mailin responses, our own outcomes (commit results, limits). Out: the
//! bytes sent to the peer. Texts are fixed and carry RFC 3463 enhanced status
//! codes; internal error text is logged by the caller, never sent.

use crate::model::Committed;
use crate::store;
use mailin::Response;

/// Our memory or disk budget is spent: the client keeps the message and
/// retries (RFC 3463 X.3.1).
/// AUTH when it is not offered (RFC 4954 §4, RFC 5321 §4.2.4).
pub const AUTH_NOT_OFFERED: &[u8] = b"502 5.5.1 AUTH not available\r\n";
/// A path that is neither ASCII nor UTF-8 (RFC 6531 §3.7.4.1).
pub const PATH_NOT_UTF8: &[u8] = b"553 5.6.7 Address is not UTF-8\r\n";
/// A MAIL or RCPT parameter we do not support (RFC 5321 §4.1.1.11); the
/// parameter is not echoed back.
pub const UNSUPPORTED_PARAMETER: &[u8] = b"555 5.5.4 Unsupported parameter\r\n";
/// A parameter we take, badly written (RFC 3461 §4: `501`, with RFC 3463's
/// "syntax error" status).
pub const BAD_PARAMETER: &[u8] = b"501 5.5.4 Syntax error in parameters\r\n";
pub const INSUFFICIENT_STORAGE: &[u8] = b"452 4.3.1 Insufficient system storage\r\n";
pub const TOO_BIG: &[u8] = b"552 5.3.4 Message size exceeds fixed maximum message size\r\n";
pub const LINE_TOO_LONG: &[u8] = b"500 5.5.2 Line too long\r\n";
pub const IDLE_TIMEOUT: &[u8] = b"421 4.4.2 Idle timeout, closing connection\r\n";
pub const SESSION_TOO_LONG: &[u8] = b"421 4.4.2 Session too long, closing connection\r\n";
pub const SHUTTING_DOWN: &[u8] = b"421 4.3.0 Server shutting down, try again later\r\n";
pub const TOO_MANY_CONNECTIONS: &[u8] = b"421 4.7.0 Too many connections, try again later\r\n";
pub const TOO_MANY_FROM_YOU: &[u8] = b"421 4.7.0 Too many connections from your address\r\n";
pub const TLS_REQUIRED: &[u8] = b"530 5.7.0 Must issue a STARTTLS command first\r\n";
pub const CONTROL_CHARACTERS: &[u8] = b"500 5.5.2 Syntax error: control characters in command\r\n";
pub const HANDLER_FAILED: &[u8] = b"451 4.3.0 Temporary local failure, try again later\r\n";

/// Recipient accepted (mailin treats any non-error code as success).
pub fn rcpt_ok() -> Response {
    Response::custom(250, "2.1.5 Recipient ok".to_owned())
}

/// Not one of our recipients: we never relay (RFC 5321 §3.6.2).
pub fn no_such_recipient() -> Response {
    Response::custom(550, "5.1.1 No such recipient here".to_owned())
}

/// RFC 5321 §4.5.3.1.8: the client should send the rest in another transaction.
pub fn too_many_recipients() -> Response {
    Response::custom(452, "4.5.3 Too many recipients".to_owned())
}

pub fn sender_ok() -> Response {
    Response::custom(250, "2.1.0 Sender ok".to_owned())
}

/// The 220 greeting.
pub fn greeting(hostname: &str) -> Vec<u8> {
    format!("220 {hostname} ESMTP abuse-inbox\r\n").into_bytes()
}

/// The EHLO reply: what we can honour (RFC 1870 SIZE, RFC 2920 PIPELINING,
/// RFC 3207 STARTTLS when a certificate is configured and TLS is not on yet).
pub fn ehlo(hostname: &str, max_message_bytes: u64, offer_starttls: bool) -> Vec<u8> {
    let starttls = if offer_starttls {
        "250-STARTTLS\r\n"
    } else {
        ""
    };
    format!(
        "250-{hostname}\r\n250-PIPELINING\r\n250-SIZE {max_message_bytes}\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n{starttls}250 ENHANCEDSTATUSCODES\r\n"
    )
    .into_bytes()
}

/// A BDAT chunk that is not the last, taken (RFC 3030 §2).
pub fn chunk_received(octets: u64) -> Vec<u8> {
    format!("250 2.0.0 {octets} octets received\r\n").into_bytes()
}

/// A BDAT line whose size cannot be read: the chunk cannot be found, so the
/// session ends (its bytes must never be read as commands).
pub const BDAT_SYNTAX: &[u8] = b"501 5.5.4 Syntax: BDAT size [LAST]; closing\r\n";
/// A command other than BDAT, RSET, NOOP or QUIT between chunks.
pub const BDAT_IN_PROGRESS: &[u8] = b"503 5.5.1 BDAT in progress: send BDAT, or RSET\r\n";
/// DATA in a transaction that BDAT started (RFC 3030 §2).
pub const DATA_AFTER_BDAT: &[u8] = b"503 5.5.1 DATA after BDAT\r\n";

/// After COMMIT: the only place a message gets its 250.
pub fn queued(committed: Committed) -> Vec<u8> {
    if committed.is_duplicate {
        format!("250 2.0.0 Ok: already stored as {}\r\n", committed.raw_id).into_bytes()
    } else {
        format!("250 2.0.0 Ok: queued as {}\r\n", committed.raw_id).into_bytes()
    }
}

/// Our own storage failed: 4xx so the sending MTA keeps the message and retries.
pub fn for_store_error(err: &store::Error) -> &'static [u8] {
    if err.is_storage_full() {
        INSUFFICIENT_STORAGE
    } else {
        b"451 4.3.0 Temporary local failure, try again later\r\n"
    }
}

/// Renders a mailin response, adding an enhanced status code when mailin's
/// fixed text has none.
pub fn render(response: &Response, out: &mut Vec<u8>) {
    let mut text = Vec::with_capacity(64);
    if response.write_to(&mut text).is_err() {
        out.extend_from_slice(HANDLER_FAILED);
        return;
    }
    let enhanced = enhanced_code(response.code);
    match (text.get(..4), enhanced) {
        (Some(head), Some(code)) if !has_enhanced_code(&text[4..]) && head[3] == b' ' => {
            out.extend_from_slice(head);
            out.extend_from_slice(code.as_bytes());
            out.push(b' ');
            out.extend_from_slice(&text[4..]);
        }
        _ => out.extend_from_slice(&text),
    }
}

fn has_enhanced_code(text: &[u8]) -> bool {
    matches!(text, [c, b'.', d, ..] if matches!(c, b'2' | b'4' | b'5') && d.is_ascii_digit())
}

fn enhanced_code(code: u16) -> Option<&'static str> {
    Some(match code {
        221 | 250 => "2.0.0",
        252 => "2.5.0",
        421 => "4.3.0",
        451 => "4.3.0",
        452 => "4.3.1",
        500 => "5.5.2",
        501 | 502 => "5.5.4",
        503 => "5.5.1",
        530 | 535 => "5.7.0",
        550 => "5.7.1",
        552 => "5.3.4",
        553 => "5.1.3",
        554 => "5.3.0",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(r: &Response) -> String {
        let mut out = Vec::new();
        render(r, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn mailin_texts_get_an_enhanced_code_once() {
        assert_eq!(rendered(&mailin::response::OK), "250 2.0.0 OK\r\n");
        assert_eq!(
            rendered(&mailin::response::GOODBYE),
            "221 2.0.0 Goodbye\r\n"
        );
        assert_eq!(
            rendered(&no_such_recipient()),
            "550 5.1.1 No such recipient here\r\n"
        );
        assert_eq!(
            rendered(&mailin::response::START_DATA),
            "354 Start mail input; end with <CRLF>.<CRLF>\r\n"
        );
    }
}
