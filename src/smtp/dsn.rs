//! RFC 3461 delivery status notification parameters: `RET` and `ENVID` on
//! MAIL, `NOTIFY` and `ORCPT` on RCPT. We do not offer DSN (we never bounce
//! after the `250`), but a client that sends them anyway has them checked and
//! stored with the message, decoded.

use crate::model::{Dsn, DsnRecipient, DsnRet};

/// RFC 3461 §4.4: an ENVID is at most 100 characters.
const MAX_ENVID: usize = 100;
/// RFC 3461 §4.2: an ORCPT address is at most 500 characters.
const MAX_ORCPT: usize = 500;

/// A parameter that is one of ours but badly written (RFC 3461: `501`).
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

/// `RET` and `ENVID` of a MAIL command's parameters.
///
/// # Errors
/// A `RET` other than `FULL`/`HDRS`, an ENVID that is not valid xtext, too
/// long, or a parameter given twice.
pub fn mail_params(params: &[u8]) -> Result<Dsn, Malformed> {
    let mut dsn = Dsn::default();
    for (key, value) in pairs(params) {
        if key.eq_ignore_ascii_case(b"RET") {
            let ret = if value.eq_ignore_ascii_case(b"FULL") {
                DsnRet::Full
            } else if value.eq_ignore_ascii_case(b"HDRS") {
                DsnRet::Hdrs
            } else {
                return Err(Malformed);
            };
            if dsn.ret.replace(ret).is_some() {
                return Err(Malformed);
            }
        } else if key.eq_ignore_ascii_case(b"ENVID") {
            let envid = xtext(value).filter(|v| v.len() <= MAX_ENVID && !v.is_empty());
            if dsn.envid.replace(envid.ok_or(Malformed)?).is_some() {
                return Err(Malformed);
            }
        }
    }
    Ok(dsn)
}

/// `NOTIFY` and `ORCPT` of a RCPT command's parameters.
///
/// # Errors
/// `NOTIFY` that mixes `NEVER` with other values or names an unknown one, an
/// ORCPT without its address type or not valid xtext, or a repeat.
pub fn rcpt_params(params: &[u8]) -> Result<DsnRecipient, Malformed> {
    let mut rcpt = DsnRecipient::default();
    for (key, value) in pairs(params) {
        if key.eq_ignore_ascii_case(b"NOTIFY") {
            let notify = notify(value).ok_or(Malformed)?;
            if rcpt.notify.replace(notify).is_some() {
                return Err(Malformed);
            }
        } else if key.eq_ignore_ascii_case(b"ORCPT") {
            let orcpt = orcpt(value).ok_or(Malformed)?;
            if rcpt.orcpt.replace(orcpt).is_some() {
                return Err(Malformed);
            }
        }
    }
    Ok(rcpt)
}

fn pairs(params: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    params
        .split(|b| *b == b' ')
        .filter(|p| !p.is_empty())
        .map(|param| match memchr::memchr(b'=', param) {
            Some(i) => (&param[..i], &param[i + 1..]),
            None => (param, &b""[..]),
        })
}

/// `NEVER`, or a comma list of `SUCCESS`, `FAILURE`, `DELAY`; upper-cased.
fn notify(value: &[u8]) -> Option<String> {
    let value = std::str::from_utf8(value).ok()?.to_ascii_uppercase();
    let words: Vec<&str> = value.split(',').collect();
    let valid = if words.contains(&"NEVER") {
        words.len() == 1
    } else {
        words
            .iter()
            .all(|w| matches!(*w, "SUCCESS" | "FAILURE" | "DELAY"))
    };
    valid.then_some(value)
}

/// `addr-type;xtext`, kept as `type;address` with the address decoded.
fn orcpt(value: &[u8]) -> Option<String> {
    let semi = memchr::memchr(b';', value)?;
    let kind = &value[..semi];
    if kind.is_empty() || !kind.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-') {
        return None;
    }
    let address = xtext(&value[semi + 1..]).filter(|a| !a.is_empty() && a.len() <= MAX_ORCPT)?;
    Some(format!(
        "{};{address}",
        String::from_utf8_lossy(kind).to_ascii_lowercase()
    ))
}

/// Decodes RFC 3461 xtext (`+HH` for a byte outside `!`..`~`, `+` and `=`),
/// and, as RFC 6533 allows with SMTPUTF8, UTF-8 as it is. Control characters
/// are refused, encoded or not: the value ends up in logs and tables.
fn xtext(value: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let b = value[i];
        if b == b'+' {
            let hex = value.get(i + 1..i + 3)?;
            let byte = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(byte);
            i += 3;
        } else if b == b'=' {
            return None;
        } else {
            out.push(b);
            i += 1;
        }
    }
    let text = String::from_utf8(out).ok()?;
    (!text.chars().any(char::is_control)).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_parameters_are_decoded() {
        let dsn = mail_params(b"SIZE=100 RET=hdrs ENVID=QQ314159+2Bx").unwrap();
        assert_eq!(dsn.ret, Some(DsnRet::Hdrs));
        assert_eq!(dsn.envid.as_deref(), Some("QQ314159+x"));
        assert!(mail_params(b"RET=BODY").is_err());
        assert!(mail_params(b"RET=FULL RET=HDRS").is_err());
        assert!(mail_params(b"ENVID=a+0Db").is_err(), "an encoded CR");
        assert!(mail_params(b"ENVID=a+G1").is_err());
        assert!(mail_params(b"ENVID=a+4").is_err(), "a cut-off escape");
        assert!(mail_params(&[b"ENVID=".as_slice(), &[b'x'; 101]].concat()).is_err());
        assert_eq!(mail_params(b"BODY=8BITMIME").unwrap(), Dsn::default());
    }

    #[test]
    fn recipient_parameters_are_checked() {
        let r = rcpt_params(b"NOTIFY=success,Delay ORCPT=rfc822;abuse+2Bx@example.com").unwrap();
        assert_eq!(r.notify.as_deref(), Some("SUCCESS,DELAY"));
        assert_eq!(r.orcpt.as_deref(), Some("rfc822;abuse+x@example.com"));
        let r = rcpt_params(b"ORCPT=utf-8;j\xc3\xb6rg@example.com").unwrap();
        assert_eq!(r.orcpt.as_deref(), Some("utf-8;jörg@example.com"));
        assert!(rcpt_params(b"NOTIFY=NEVER,SUCCESS").is_err());
        assert!(rcpt_params(b"NOTIFY=SOMETIMES").is_err());
        assert!(rcpt_params(b"NOTIFY=").is_err());
        assert!(rcpt_params(b"ORCPT=abuse@example.com").is_err(), "no type");
        assert!(rcpt_params(b"ORCPT=rfc822;").is_err());
        assert_eq!(rcpt_params(b"").unwrap(), DsnRecipient::default());
    }
}
