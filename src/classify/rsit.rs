//! The CSIRT world's classification: ENISA's Reference Security Incident
//! Taxonomy (RSIT), as IntelMQ's `classification.taxonomy` and
//! `classification.type` name it.
//!
//! In: what the classifier decided (type, subtype) and the reasons it kept.
//! Out: one RSIT pair. A structured field names the pair directly (an X-ARF
//! type, a feed report name, an ARF feedback type); otherwise the rules that
//! matched refine our type (phishing, malware); otherwise our type and
//! subtype map to the pair that covers them. One table, here. Pure.

use crate::model::{AbuseType, NetworkSubtype, Reason, Signal};
use serde::Serialize;

/// An RSIT taxonomy and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rsit {
    pub taxonomy: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

const fn pair(taxonomy: &'static str, kind: &'static str) -> Rsit {
    Rsit { taxonomy, kind }
}

const BRUTE_FORCE: Rsit = pair("intrusion-attempts", "brute-force");
const EXPLOIT: Rsit = pair("intrusion-attempts", "exploit");
const DDOS: Rsit = pair("availability", "ddos");
const SCANNER: Rsit = pair("information-gathering", "scanner");
const INFECTED: Rsit = pair("malicious-code", "infected-system");
const C2: Rsit = pair("malicious-code", "c2-server");
const MALWARE: Rsit = pair("malicious-code", "malware-distribution");
const SPAM: Rsit = pair("abusive-content", "spam");
const HARMFUL: Rsit = pair("abusive-content", "harmful-speech");
const VIOLENCE: Rsit = pair("abusive-content", "violence");
const PHISHING: Rsit = pair("fraud", "phishing");
const MASQUERADE: Rsit = pair("fraud", "masquerade");
const COPYRIGHT: Rsit = pair("fraud", "copyright");
const APP_COMPROMISE: Rsit = pair("intrusions", "application-compromise");
const VULNERABLE: Rsit = pair("vulnerable", "vulnerable-system");
const AMPLIFIER: Rsit = pair("vulnerable", "ddos-amplifier");
const OTHER: Rsit = pair("other", "other");
const UNDETERMINED: Rsit = pair("other", "undetermined");

impl From<Rsit> for crate::model::RsitPair {
    fn from(r: Rsit) -> Self {
        crate::model::RsitPair {
            taxonomy: r.taxonomy.to_owned(),
            kind: r.kind.to_owned(),
        }
    }
}

/// Every pair this module can give (tests load each into IntelMQ).
pub const ALL: [Rsit; 18] = [
    BRUTE_FORCE,
    EXPLOIT,
    DDOS,
    SCANNER,
    INFECTED,
    C2,
    MALWARE,
    SPAM,
    HARMFUL,
    VIOLENCE,
    PHISHING,
    MASQUERADE,
    COPYRIGHT,
    APP_COMPROMISE,
    VULNERABLE,
    AMPLIFIER,
    OTHER,
    UNDETERMINED,
];

/// The XARF v4 class and type of an RSIT pair (the XARF export's mapping);
/// `None` for an undetermined report, which the XARF export skips.
pub fn xarf_class_type(rsit: &crate::model::RsitPair) -> Option<(&'static str, &'static str)> {
    Some(match rsit.kind.as_str() {
        "brute-force" => ("connection", "login_attack"),
        "ddos" | "dos" => ("connection", "ddos"),
        "scanner" => ("connection", "port_scan"),
        "exploit" => ("connection", "vulnerability_scan"),
        "infected-system" | "c2-server" => ("infrastructure", "botnet"),
        "spam" => ("messaging", "spam"),
        "phishing" => ("content", "phishing"),
        "malware-distribution" => ("content", "malware"),
        "copyright" => ("copyright", "copyright"),
        "undetermined" => return None,
        _ if rsit.taxonomy == "abusive-content" || rsit.taxonomy == "fraud" => ("content", "fraud"),
        _ => ("infrastructure", "compromised_server"),
    })
}

/// Every RSIT type name, for `reports list --rsit`.
pub fn is_type(name: &str) -> bool {
    ALL.iter().any(|r| r.kind == name)
}

/// The pair of an X-ARF / XARF type or category, when it names one.
fn xarf(t: &str) -> Option<Rsit> {
    let n = super::xarf_key(t);
    Some(match n.as_str() {
        "loginattack" | "bruteforce" | "loginattempt" | "authfailure" => BRUTE_FORCE,
        "ddos" | "dos" | "floods" | "flood" | "reflectiveattack" | "ddosamplification" => DDOS,
        "amplification" | "openresolver" => AMPLIFIER,
        "portscan" | "scan" | "scanning" | "probe" => SCANNER,
        "intrusion" | "exploit" | "hacking" | "intrusionattempt" | "attack" | "webattack"
        | "sqlinjection" | "vulnscanning" => EXPLOIT,
        "infected" | "compromised" | "compromisedserver" | "bot" | "botnet" | "trojan"
        | "ransomware" => INFECTED,
        "c2" | "c2server" | "cnc" | "botnetcontroller" => C2,
        "vulnerable" | "openproxy" | "openservice" | "openrelay" => VULNERABLE,
        "spam" | "phishingmail" | "email" | "emailspam" | "regbot" | "registrationbot"
        | "formspam" | "commentspam" => SPAM,
        "harvesting" => SCANNER,
        "phishing" => PHISHING,
        "malware" | "malwarehosting" => MALWARE,
        "defacement" => APP_COMPROMISE,
        "csam" => VIOLENCE,
        "fraud" | "scam" => MASQUERADE,
        "content" | "illegaladvertisement" => HARMFUL,
        "copyright" | "infringement" | "copyrightinfringement" | "trademark" => COPYRIGHT,
        _ => return None,
    })
}

/// XARF v4 categories (and X-ARF v0.2 ones) that a type refines.
const GENERIC_CATEGORIES: &[&str] = &[
    "abuse",
    "content",
    "fraud",
    "connection",
    "infrastructure",
    "messaging",
    "vulnerability",
    "reputation",
];

/// The pair of a feed report name (Shadowserver's families).
fn feed_report(name: &str) -> Option<Rsit> {
    let has = |part: &str| name.contains(part);
    Some(if has("brute_force") || has("bruteforce") {
        BRUTE_FORCE
    } else if has("ddos") || has("amplification") {
        DDOS
    } else if has("darknet") || has("honeypot_scan") || has("scanner") {
        SCANNER
    } else if has("exploit") || has("honeypot_http") {
        EXPLOIT
    } else if has("compromised_website") || has("defac") {
        APP_COMPROMISE
    } else if has("phish") {
        PHISHING
    } else if has("malware_url") {
        MALWARE
    } else if has("spam") {
        SPAM
    } else if has("sinkhole") || has("drone") || has("botnet") || has("compromised") {
        INFECTED
    } else if has("scan") {
        // scan_* reports are services found open or vulnerable on the host.
        if has("dns") || has("ntp") || has("ssdp") || has("memcached") || has("chargen") {
            AMPLIFIER
        } else {
            VULNERABLE
        }
    } else if has("blocklist") || has("device") || has("spoofer") {
        OTHER
    } else {
        return None;
    })
}

/// The pair of an ARF `Feedback-Type`.
fn arf(feedback_type: &str) -> Option<Rsit> {
    Some(match feedback_type {
        "abuse" | "other" | "auth-failure" => SPAM,
        "fraud" => PHISHING,
        "virus" => MALWARE,
        _ => return None,
    })
}

/// The pair for a report of `abuse_type`/`subtype` whose classification
/// kept `reasons`.
pub fn for_report(
    abuse_type: AbuseType,
    subtype: Option<NetworkSubtype>,
    reasons: &[Reason],
) -> Rsit {
    // A structured field of the winning type names the pair; a type
    // (`phishing`) before the category it is filed under (`content`).
    let winning = |r: &&Reason| r.abuse_type == abuse_type;
    let mut by_category = None;
    for reason in reasons.iter().filter(winning) {
        let (named, value) = match &reason.signal {
            Signal::XarfType { value } => (xarf(value), value),
            Signal::FeedReport { value } => (feed_report(value), value),
            Signal::ArfFeedbackType { value } => (arf(value), value),
            // Mail sent as someone else's domain.
            Signal::DmarcAggregate { .. } => return MASQUERADE,
            _ => continue,
        };
        match named {
            Some(rsit) if GENERIC_CATEGORIES.contains(&super::xarf_key(value).as_str()) => {
                by_category.get_or_insert(rsit);
            }
            Some(rsit) => return rsit,
            None => {}
        }
    }
    if let Some(rsit) = by_category {
        return rsit;
    }
    // The words that decided the type say which kind it is: what a rule
    // matched is kept in its reason.
    let said = |words: &[&str]| {
        reasons.iter().filter(winning).any(|r| match &r.signal {
            Signal::Rule { matched, .. } => {
                let matched = matched.to_lowercase();
                words.iter().any(|w| matched.contains(w))
            }
            _ => false,
        })
    };
    match abuse_type {
        AbuseType::WebContent
            if said(&[
                "phish",
                "log in",
                "login",
                "sign-in",
                "credential",
                "imitat",
                "impersonat",
                "fake",
                "fraudulent",
                "hameçonnage",
                "suplantación",
                "falsa",
                "falso",
                "falsche",
                "gefälscht",
                "faux",
                "fausse",
                "imita",
                "clonad",
                "contrefait",
            ]) =>
        {
            PHISHING
        }
        AbuseType::WebContent
            if said(&[
                "malware",
                "trojan",
                "ransomware",
                "virus",
                "drive-by",
                "malicious",
                "schadsoftware",
                "malveillant",
                "malicioso",
            ]) =>
        {
            MALWARE
        }
        AbuseType::WebContent if said(&["defac"]) => APP_COMPROMISE,
        AbuseType::WebContent
            if said(&[
                "child",
                "csam",
                "terroris",
                "violence",
                "glorif",
                "kinderpornogra",
                "pédopornogra",
            ]) =>
        {
            VIOLENCE
        }
        // A service that can be abused for reflection, then any other
        // vulnerable or exposed one: what the host is, not what it did.
        AbuseType::NetworkActivity
            if subtype == Some(NetworkSubtype::Other)
                && said(&["resolver", "recursive", "memcached", "monlist", "amplif"]) =>
        {
            AMPLIFIER
        }
        AbuseType::NetworkActivity
            if subtype == Some(NetworkSubtype::Other)
                && said(&[
                    "vulnerab",
                    "verwundbar",
                    "exposed",
                    "publicly",
                    "without authentication",
                    "unpatched",
                    "end-of-life",
                    "open proxy",
                    "open relay",
                    "ohne authentifizierung",
                    "sans authentification",
                    "sin autenticación",
                    "sem autenticação",
                ]) =>
        {
            VULNERABLE
        }
        // An infected host that talks to its controller is infected; a
        // controller is one only when nothing says the host is infected.
        AbuseType::NetworkActivity
            if subtype == Some(NetworkSubtype::Other)
                && said(&["infected", "sinkhole", "beacon"])
                && said(&["c2", "c&c", "command", "controller"]) =>
        {
            INFECTED
        }
        AbuseType::NetworkActivity
            if subtype == Some(NetworkSubtype::Other)
                && said(&["c2", "c&c", "command", "controller"]) =>
        {
            C2
        }
        AbuseType::NetworkActivity
            if subtype == Some(NetworkSubtype::Other)
                && said(&[
                    "botnet",
                    "bot net",
                    "infected",
                    "sinkhole",
                    "compromised",
                    "beacon",
                    "miner",
                    "cryptojack",
                ]) =>
        {
            INFECTED
        }
        _ => for_type(abuse_type, subtype),
    }
}

/// The pair our type and subtype alone map to.
pub fn for_type(abuse_type: AbuseType, subtype: Option<NetworkSubtype>) -> Rsit {
    match (abuse_type, subtype) {
        (AbuseType::NetworkActivity, Some(NetworkSubtype::BruteForce)) => BRUTE_FORCE,
        (AbuseType::NetworkActivity, Some(NetworkSubtype::Dos)) => DDOS,
        (AbuseType::NetworkActivity, Some(NetworkSubtype::PortScan)) => SCANNER,
        (AbuseType::NetworkActivity, Some(NetworkSubtype::Intrusion)) => EXPLOIT,
        (AbuseType::NetworkActivity, _) => OTHER,
        (AbuseType::EmailAbuse, _) => SPAM,
        (AbuseType::WebContent, _) => HARMFUL,
        (AbuseType::Copyright, _) => COPYRIGHT,
        (AbuseType::Unknown, _) => UNDETERMINED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_fields_name_the_pair_and_rules_refine_web_content() {
        let r = |t, s, reasons: &[&str]| {
            for_report(
                t,
                s,
                &reasons
                    .iter()
                    .map(|r| Reason::from_text(r).unwrap())
                    .collect::<Vec<_>>(),
            )
        };
        use AbuseType::*;
        assert_eq!(
            r(
                NetworkActivity,
                Some(NetworkSubtype::Other),
                &["network_activity/other +100: feed report \"scan_ssh\""]
            ),
            VULNERABLE
        );
        assert_eq!(
            r(
                NetworkActivity,
                Some(NetworkSubtype::Other),
                &["network_activity/other +100: feed report \"event4_sinkhole_http\""]
            ),
            INFECTED
        );
        assert_eq!(
            r(
                NetworkActivity,
                Some(NetworkSubtype::BruteForce),
                &["network_activity/brute_force +100: x-arf type \"login-attack\""]
            ),
            BRUTE_FORCE
        );
        assert_eq!(
            r(
                EmailAbuse,
                None,
                &["email_abuse +100: arf feedback-type \"fraud\""]
            ),
            PHISHING
        );
        assert_eq!(
            r(
                WebContent,
                None,
                &["web_content +6: rule en.phishing_words matched \"phishing\" in the subject"]
            ),
            PHISHING
        );
        assert_eq!(r(WebContent, None, &[]), HARMFUL);
        assert_eq!(r(Copyright, None, &[]), COPYRIGHT);
        assert_eq!(r(Unknown, None, &[]), UNDETERMINED);
        // A structured field of a type that lost does not name the pair.
        assert_eq!(
            r(
                NetworkActivity,
                Some(NetworkSubtype::Dos),
                &["web_content +100: x-arf type \"phishing\""]
            ),
            DDOS
        );
    }
}
