//! Why a report has its type: each signal that counted, the type it spoke
//! for and its weight ([`crate::classify`] makes them).
//!
//! Stored as JSON objects (`{"abuse_type":…,"weight":20,"signal":"rule",…}`)
//! and read back typed; reports stored before reasons were typed hold the
//! text [`Reason`]'s `Display` writes, which [`Reason::from_text`] reads.
//! A report's JSON shows the text, as it always did.

use super::{AbuseType, NetworkSubtype};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One thing that counted toward a report's type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Stored")]
pub struct Reason {
    pub abuse_type: AbuseType,
    pub subtype: Option<NetworkSubtype>,
    pub weight: u32,
    #[serde(flatten)]
    pub signal: Signal,
}

/// What was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "signal", rename_all = "snake_case")]
pub enum Signal {
    /// An ARF report's `Feedback-Type` (RFC 5965).
    ArfFeedbackType { value: String },
    /// An X-ARF / XARF report type or category.
    XarfType { value: String },
    /// A known feed's report name (`config/feeds.toml`).
    FeedReport { value: String },
    /// An ACNS infringement notice.
    AcnsNotice,
    /// A DMARC aggregate report: its records, and those that failed.
    DmarcAggregate { records: u64, failing: u64 },
    /// A delivery-status notification (RFC 3464): a bounce, not a report.
    DeliveryStatus,
    /// The usual type of the known feed that sent it.
    Feed { id: String, name: String },
    /// Log rows (CSV or pasted) with addresses.
    LogRows { rows: u64 },
    /// Log lines that show failed logins.
    FailedLogins { lines: u64, of: u64 },
    /// Log lines that show flooding.
    Flooding { lines: u64, of: u64 },
    /// Log lines that carry exploit strings.
    ExploitStrings { lines: u64, of: u64 },
    /// One source touched this many destination ports.
    PortsProbed { ports: u64 },
    /// A carried message with its `Received:` chain.
    CarriedMessage,
    /// A forwarded message whose client dropped the `Received:` lines.
    ForwardedWithoutReceived,
    /// URLs named, with no logs and no carried message.
    UrlsNamed { urls: u64 },
    /// A rule of `config/rules.toml` matched words in the subject or text.
    Rule {
        id: String,
        matched: String,
        place: Place,
    },
    /// A reason stored before reasons were typed, in words this build
    /// does not know as a signal: kept as it was written.
    Text { text: String },
}

/// Where a rule matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    Subject,
    Text,
}

impl Place {
    pub fn as_str(self) -> &'static str {
        match self {
            Place::Subject => "subject",
            Place::Text => "text",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signal::ArfFeedbackType { value } => write!(f, "arf feedback-type {value:?}"),
            Signal::XarfType { value } => write!(f, "x-arf type {value:?}"),
            Signal::FeedReport { value } => write!(f, "feed report {value:?}"),
            Signal::AcnsNotice => f.write_str("acns infringement notice"),
            Signal::DeliveryStatus => {
                f.write_str("a delivery-status notification (RFC 3464): a bounce, not a report")
            }
            Signal::DmarcAggregate { records, failing } => write!(
                f,
                "dmarc aggregate report: {failing} of {records} records failed DMARC"
            ),
            Signal::Feed { id, name } => write!(f, "feed {id:?} ({name})"),
            Signal::LogRows { rows } => write!(f, "{rows} log rows with addresses"),
            Signal::FailedLogins { lines, of } => {
                write!(f, "{lines} of {of} log lines show failed logins")
            }
            Signal::Flooding { lines, of } => write!(f, "{lines} of {of} log lines show flooding"),
            Signal::ExploitStrings { lines, of } => {
                write!(f, "{lines} of {of} log lines carry exploit strings")
            }
            Signal::PortsProbed { ports } => {
                write!(f, "one source probed {ports} distinct destination ports")
            }
            Signal::CarriedMessage => f.write_str("a carried message with its Received chain"),
            Signal::ForwardedWithoutReceived => {
                f.write_str("a forwarded message without its Received chain")
            }
            Signal::UrlsNamed { urls } => {
                write!(f, "{urls} URLs named, no logs and no carried message")
            }
            Signal::Rule { id, matched, place } => {
                write!(f, "rule {id} matched {matched:?} in the {}", place.as_str())
            }
            Signal::Text { text } => f.write_str(text),
        }
    }
}

/// As shown: `network_activity/brute_force +20: 31 of 50 log lines show
/// failed logins`.
impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.abuse_type.as_str())?;
        if let Some(s) = self.subtype {
            write!(f, "/{}", s.as_str())?;
        }
        write!(f, " +{}: {}", self.weight, self.signal)
    }
}

impl Reason {
    /// Reads a reason as [`Reason`]'s `Display` wrote it (reports stored
    /// before reasons were typed). `None` when the type, subtype or weight
    /// cannot be read; words that name no known signal are kept as
    /// [`Signal::Text`].
    pub fn from_text(text: &str) -> Option<Reason> {
        let (kind, rest) = text.split_once(" +")?;
        let (weight, what) = rest.split_once(": ")?;
        let (t, s) = match kind.split_once('/') {
            Some((t, s)) => (t, Some(NetworkSubtype::parse(s)?)),
            None => (kind, None),
        };
        Some(Reason {
            abuse_type: AbuseType::parse(t)?,
            subtype: s,
            weight: weight.parse().ok()?,
            signal: Signal::from_text(what),
        })
    }
}

impl Signal {
    /// The signal whose `Display` is `what`; [`Signal::Text`] when none is.
    fn from_text(what: &str) -> Signal {
        Signal::known(what).unwrap_or_else(|| Signal::Text {
            text: what.to_owned(),
        })
    }

    fn known(what: &str) -> Option<Signal> {
        let value = || {
            let start = what.find('"')?;
            unquote(&what[start..]).map(|(v, _)| v)
        };
        let number = |s: &str| s.parse::<u64>().ok();
        let lines = |suffix: &str| -> Option<(u64, u64)> {
            let (lines, rest) = what.strip_suffix(suffix)?.split_once(" of ")?;
            Some((number(lines)?, number(rest)?))
        };
        let signal = if what.starts_with("arf feedback-type \"") {
            Signal::ArfFeedbackType { value: value()? }
        } else if what.starts_with("x-arf type \"") {
            Signal::XarfType { value: value()? }
        } else if what.starts_with("feed report \"") {
            Signal::FeedReport { value: value()? }
        } else if what == "acns infringement notice" {
            Signal::AcnsNotice
        } else if what == "a delivery-status notification (RFC 3464): a bounce, not a report" {
            Signal::DeliveryStatus
        } else if let Some((failing, records)) = what
            .strip_prefix("dmarc aggregate report: ")
            .and_then(|r| r.strip_suffix(" records failed DMARC"))
            .and_then(|r| r.split_once(" of "))
        {
            Signal::DmarcAggregate {
                records: number(records)?,
                failing: number(failing)?,
            }
        } else if what.starts_with("feed \"") {
            let (id, rest) = unquote(&what["feed ".len()..])?;
            let name = rest.strip_prefix(" (")?.strip_suffix(')')?.to_owned();
            Signal::Feed { id, name }
        } else if let Some(rows) = what.strip_suffix(" log rows with addresses") {
            Signal::LogRows {
                rows: number(rows)?,
            }
        } else if let Some((lines, of)) = lines(" log lines show failed logins") {
            Signal::FailedLogins { lines, of }
        } else if let Some((lines, of)) = lines(" log lines show flooding") {
            Signal::Flooding { lines, of }
        } else if let Some((lines, of)) = lines(" log lines carry exploit strings") {
            Signal::ExploitStrings { lines, of }
        } else if let Some(ports) = what
            .strip_prefix("one source probed ")
            .and_then(|r| r.strip_suffix(" distinct destination ports"))
        {
            Signal::PortsProbed {
                ports: number(ports)?,
            }
        } else if what == "a carried message with its Received chain" {
            Signal::CarriedMessage
        } else if what == "a forwarded message without its Received chain" {
            Signal::ForwardedWithoutReceived
        } else if let Some(urls) = what.strip_suffix(" URLs named, no logs and no carried message")
        {
            Signal::UrlsNamed {
                urls: number(urls)?,
            }
        } else if let Some(rest) = what.strip_prefix("rule ") {
            let (id, rest) = rest.split_once(" matched ")?;
            let (matched, rest) = unquote(rest)?;
            let place = match rest {
                " in the subject" => Place::Subject,
                " in the text" => Place::Text,
                _ => return None,
            };
            Signal::Rule {
                id: id.to_owned(),
                matched,
                place,
            }
        } else {
            return None;
        };
        Some(signal)
    }
}

/// The string literal `{:?}` wrote at the start of `s`, and what follows it.
fn unquote(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &body[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                '0' => out.push('\0'),
                'u' => {
                    // `\u{…}`
                    let rest = &body[i + 2..];
                    let end = rest.find('}')?;
                    let code = u32::from_str_radix(rest.get(1..end)?, 16).ok()?;
                    out.push(char::from_u32(code)?);
                    for _ in 0..=end {
                        chars.next();
                    }
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// A reason as stored: typed, or text from before reasons were.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Typed(Typed),
    Text(String),
}

#[derive(Deserialize)]
struct Typed {
    abuse_type: AbuseType,
    subtype: Option<NetworkSubtype>,
    weight: u32,
    #[serde(flatten)]
    signal: Signal,
}

impl TryFrom<Stored> for Reason {
    type Error = String;

    fn try_from(stored: Stored) -> Result<Reason, String> {
        match stored {
            Stored::Typed(t) => Ok(Reason {
                abuse_type: t.abuse_type,
                subtype: t.subtype,
                weight: t.weight,
                signal: t.signal,
            }),
            Stored::Text(text) => {
                Reason::from_text(&text).ok_or_else(|| format!("unreadable reason {text:?}"))
            }
        }
    }
}

/// Serialises reasons as the text they show (a report's JSON).
pub fn as_texts<S: serde::Serializer>(reasons: &[Reason], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(reasons.iter().map(ToString::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_signal() -> Vec<Signal> {
        vec![
            Signal::ArfFeedbackType {
                value: "abuse".into(),
            },
            Signal::XarfType {
                value: "login-attack".into(),
            },
            Signal::FeedReport {
                value: "scan \"quoted\" \\ é".into(),
            },
            Signal::AcnsNotice,
            Signal::DmarcAggregate {
                records: 12,
                failing: 3,
            },
            Signal::DeliveryStatus,
            Signal::Feed {
                id: "shadowserver".into(),
                name: "Shadowserver (daily)".into(),
            },
            Signal::LogRows { rows: 50 },
            Signal::FailedLogins { lines: 31, of: 50 },
            Signal::Flooding { lines: 2, of: 3 },
            Signal::ExploitStrings { lines: 1, of: 1 },
            Signal::PortsProbed { ports: 12 },
            Signal::CarriedMessage,
            Signal::ForwardedWithoutReceived,
            Signal::UrlsNamed { urls: 3 },
            Signal::Rule {
                id: "de.spam".into(),
                matched: "Spam\u{202e}\n\"x\"".into(),
                place: Place::Subject,
            },
            Signal::Rule {
                id: "en.attack".into(),
                matched: "attack".into(),
                place: Place::Text,
            },
            Signal::Text {
                text: "something an older build wrote".into(),
            },
        ]
    }

    #[test]
    fn every_signal_reads_back_from_its_text_and_from_its_json() {
        for signal in every_signal() {
            let reason = Reason {
                abuse_type: AbuseType::NetworkActivity,
                subtype: Some(NetworkSubtype::BruteForce),
                weight: 20,
                signal,
            };
            let text = reason.to_string();
            assert_eq!(Reason::from_text(&text).as_ref(), Some(&reason), "{text}");
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(serde_json::from_str::<Reason>(&json).unwrap(), reason);
            let old = serde_json::to_string(&text).unwrap();
            assert_eq!(serde_json::from_str::<Reason>(&old).unwrap(), reason);
        }
    }

    #[test]
    fn stored_json_names_the_signal_and_its_values() {
        let reason = Reason {
            abuse_type: AbuseType::EmailAbuse,
            subtype: None,
            weight: 100,
            signal: Signal::ArfFeedbackType {
                value: "abuse".into(),
            },
        };
        assert_eq!(
            serde_json::to_value(&reason).unwrap(),
            serde_json::json!({
                "abuse_type": "email_abuse", "subtype": null, "weight": 100,
                "signal": "arf_feedback_type", "value": "abuse"
            })
        );
        assert_eq!(
            reason.to_string(),
            "email_abuse +100: arf feedback-type \"abuse\""
        );
    }

    #[test]
    fn text_without_a_type_or_weight_is_not_a_reason() {
        for bad in [
            "",
            "spam",
            "teleport +3: x",
            "email_abuse +x: y",
            "email_abuse/x +3: y",
        ] {
            assert_eq!(Reason::from_text(bad), None, "{bad}");
            let json = serde_json::to_string(bad).unwrap();
            assert!(serde_json::from_str::<Reason>(&json).is_err(), "{bad}");
        }
    }
}
