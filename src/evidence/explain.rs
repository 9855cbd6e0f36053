//! Why each address of a report has its role: the words `reports explain`
//! and the console's report page show. Pure, over the stored rows.

/// One address or URL of a report, as `reports explain` and the console
/// show it.
#[derive(Debug, serde::Serialize)]
pub struct Explained {
    pub address: String,
    pub role: &'static str,
    pub why: String,
    pub origin: String,
    /// Whose it was at the event's time, and why (routed offenders and
    /// hosts only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<crate::model::owner::Owner>,
}

/// Each address (the first row naming it) and URL, with its role and why.
pub fn explain_roles(rows: &[crate::evidence::Row]) -> Vec<Explained> {
    use crate::evidence::roles::{why_in_line, Role};
    use crate::evidence::Kind;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for row in rows {
        let mut push = |address: String, role: Role, why: String| {
            if seen.insert(address.clone()) {
                out.push(Explained {
                    address,
                    role: role.as_str(),
                    why,
                    origin: row.origin.clone(),
                    owner: None,
                });
            }
        };
        let line = row.line.as_deref().unwrap_or("");
        if let Some(ip) = row.source_ip {
            let why = match row.kind {
                Kind::Message => "the first hop outside the reporter's network in the carried message's Received chain".to_owned(),
                _ if row.origin.contains("dmarc record") && row.role == Role::Source => {
                    format!("a DMARC aggregate record that failed DMARC (neither DKIM nor SPF passed): a host sending as the domain ({line})")
                }
                _ if row.origin.contains("dmarc record") => {
                    format!("a DMARC aggregate record that passed: the domain's own mail, not an offender ({line})")
                }
                Kind::Feedback => "the source field of a feedback report (ARF or X-ARF)".to_owned(),
                Kind::Notice => "the infringing address of a copyright notice".to_owned(),
                _ if line.contains("SRC=") || line.contains("src=") => "the SRC= field of a firewall log line".to_owned(),
                _ if row.origin.contains("record") => "the address column of a CSV record".to_owned(),
                Kind::LogRow if row.role == Role::Source && !line.contains(&ip.to_string()) => {
                    "the source of the log line".to_owned()
                }
                _ => why_in_line(line, ip, row.role),
            };
            push(ip.to_string(), row.role, why);
        }
        if let Some(ip) = row.target_ip {
            push(
                ip.to_string(),
                Role::Target,
                "the other end of a log line: its destination".to_owned(),
            );
        }
        if let Some(url) = &row.url {
            push(
                url.clone(),
                row.role,
                "a URL named in the report".to_owned(),
            );
        }
    }
    out
}
