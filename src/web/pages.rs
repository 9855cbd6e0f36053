//! The console's pages, as maud templates: every value is escaped by the
//! template engine, and every stranger's string is also made visible
//! (bidi and control characters shown as escapes) and clipped. URLs from
//! reports are text with a copy button, never links.

use super::Me;
use crate::evidence::explain::Explained;
use crate::model::{AbuseType, Report};
use crate::safe_text::{clip, visible};
use maud::{html, Markup, DOCTYPE};

/// A value's name as its JSON says it (`log_row`, `source`).
fn name_of<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A stranger's string for a page: visible and at most `max` characters.
fn shown(s: &str, max: usize) -> String {
    clip(s, max)
}

pub fn layout(title: &str, me: Option<&Me>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · abuse-inbox" }
                link rel="stylesheet" href="/static/desk.css";
                script src="/static/desk.js" defer {}
            }
            body {
                header {
                    strong { "abuse-inbox" }
                    @if let Some(me) = me {
                        nav {
                            a href="/" { "Dashboard" }
                            a href="/reports" { "Reports" }
                            a href="/cases" { "Cases" }
                            a href="/replies" { "Replies" }
                            a href="/raw" { "Quarantine" }
                        }
                        form.logout method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(me.csrf);
                            span.who { (me.name) " (" (me.role) ")" }
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub fn login(error: Option<&str>) -> Markup {
    layout(
        "Log in",
        None,
        html! {
            h1 { "Log in" }
            @if let Some(error) = error {
                p.error role="alert" { (error) }
            }
            form.login method="post" action="/login" {
                label { "Name " input name="name" autocomplete="username" required maxlength="64"; }
                label { "Password " input type="password" name="password" autocomplete="current-password" required maxlength="1024"; }
                button type="submit" { "Log in" }
            }
        },
    )
}

/// What the dashboard shows besides its charts.
pub struct Dashboard {
    pub counts: crate::store::Dashboard,
    pub per_day: Markup,
    pub per_hour: Markup,
}

pub fn dashboard(me: &Me, d: &Dashboard) -> Markup {
    let c = &d.counts;
    layout(
        "Dashboard",
        Some(me),
        html! {
            h1 { "Dashboard" }
            dl.figures {
                div { dt { "reports" } dd id="reports" { (c.reports) } }
                div { dt { "open" } dd { a href="/reports?status=open" { (c.open) } } }
                div { dt { "waiting to be processed" } dd { (c.backlog) } }
                div { dt { "replies held" } dd { a href="/replies?state=held" { (c.held_replies) } } }
                div { dt { "quarantined messages" } dd { a href="/raw?status=failed" { (c.quarantined) } } }
            }
            (d.per_day)
            (d.per_hour)
            h2 { "Most reported networks in the newest 10,000 reports" }
            table {
                thead { tr { th { "network" } th { "reports" } } }
                tbody {
                    @for (net, count) in &c.top_networks {
                        tr {
                            td { a href=(format!("/reports?ip={}", urlencode(net))) { (net) } }
                            td { (count) }
                        }
                    }
                }
            }
            h2 { "Most reported customers in the newest 10,000 reports" }
            @if c.top_customers.is_empty() {
                p { "No report names a customer of ours: " code { "abuse-inbox owners import" } " brings the netblocks and domains." }
            } @else {
                table.customers {
                    thead { tr { th { "customer" } th { "reports" } } }
                    tbody {
                        @for (customer, count) in &c.top_customers {
                            tr {
                                td { a href=(format!("/reports?customer={}", urlencode(customer))) { (shown(customer, 80)) } }
                                td { (count) }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The list's filters, as the form shows them back.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct ListQuery {
    #[serde(default, rename = "type")]
    pub abuse_type: String,
    #[serde(default)]
    pub rsit: String,
    #[serde(default)]
    pub ip: String,
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub reporter: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub since: String,
    #[serde(default)]
    pub until: String,
    #[serde(default)]
    pub customer: String,
    #[serde(default)]
    pub before: Option<i64>,
}

impl ListQuery {
    /// The query string of this filter without `before`, for the next page.
    pub fn without_page(&self) -> String {
        let pairs = [
            ("type", &self.abuse_type),
            ("rsit", &self.rsit),
            ("ip", &self.ip),
            ("q", &self.q),
            ("reporter", &self.reporter),
            ("status", &self.status),
            ("since", &self.since),
            ("until", &self.until),
            ("customer", &self.customer),
        ];
        pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

pub fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub fn report_list(
    me: &Me,
    query: &ListQuery,
    problem: Option<&str>,
    reports: &[Report],
    next: Option<i64>,
) -> Markup {
    layout(
        "Reports",
        Some(me),
        html! {
            h1 { "Reports" }
            form.filters method="get" action="/reports" {
                label { "Type "
                    select name="type" {
                        option value="" { "any" }
                        @for t in AbuseType::ALL {
                            option value=(t.as_str()) selected[query.abuse_type == t.as_str()] { (t.as_str()) }
                        }
                    }
                }
                label { "Status "
                    select name="status" {
                        option value="" { "any" }
                        @for s in ["open", "resolved"] {
                            option value=(s) selected[query.status == s] { (s) }
                        }
                    }
                }
                label { "Address or CIDR " input name="ip" value=(query.ip) maxlength="64"; }
                label { "Words " input name="q" value=(query.q) maxlength="200"; }
                label { "Reporter " input name="reporter" value=(query.reporter) maxlength="200"; }
                label { "RSIT type " input name="rsit" value=(query.rsit) maxlength="64"; }
                label { "Customer " input name="customer" value=(query.customer) maxlength="200"; }
                label { "Since " input name="since" value=(query.since) placeholder="2026-12-01T00:00:00Z" maxlength="64"; }
                label { "Until " input name="until" value=(query.until) maxlength="64"; }
                button type="submit" { "Filter" }
            }
            @if let Some(problem) = problem {
                p.error role="alert" { (problem) }
            }
            table.reports {
                thead { tr {
                    th { "#" } th { "received" } th { "type" } th { "RSIT" }
                    th { "reporter" } th { "subject" } th { "offenders" } th { "reply" } th { "status" }
                } }
                tbody {
                    @for r in reports {
                        tr {
                            td { a href=(format!("/reports/{}", r.id.0)) { (r.id.0) } }
                            td { (r.received_at.get(..16).unwrap_or(&r.received_at)) }
                            td { (r.abuse_type.as_str()) @if let Some(s) = r.subtype { " / " (s.as_str()) } }
                            td { (r.rsit.kind) }
                            td { (shown(r.reporter.as_deref().unwrap_or(""), 60)) }
                            td { (shown(r.subject.as_deref().unwrap_or(""), 80)) }
                            td { (r.ips.iter().take(3).cloned().collect::<Vec<_>>().join(", ")) @if r.ips.len() > 3 { " …" } }
                            td { (r.reply.as_str()) }
                            td { (r.status.as_str()) }
                        }
                    }
                }
            }
            @if reports.is_empty() { p { "No report matches." } }
            @if let Some(next) = next {
                p { a id="next" rel="next" href=(format!("/reports?{}{}before={next}", query.without_page(), if query.without_page().is_empty() { "" } else { "&" })) { "Older reports →" } }
            }
        },
    )
}

/// Everything the report page shows.
pub struct ReportPage<'a> {
    pub report: &'a Report,
    pub explained: &'a [Explained],
    pub rows: &'a [crate::evidence::Row],
    pub events: &'a [(String, String, String)],
    pub raw: Option<String>,
}

pub fn report(me: &Me, page: &ReportPage<'_>) -> Markup {
    let r = page.report;
    layout(
        &format!("Report {}", r.id.0),
        Some(me),
        html! {
            h1 { "Report " (r.id.0) }
            dl.summary {
                dt { "received" } dd { (r.received_at) }
                dt { "reporter" } dd id="reporter" { (shown(r.reporter.as_deref().unwrap_or("(none)"), 200)) }
                dt { "subject" } dd id="subject" { (shown(r.subject.as_deref().unwrap_or(""), 300)) }
                dt { "type" } dd id="type" { (r.abuse_type.as_str()) @if let Some(s) = r.subtype { " / " (s.as_str()) } }
                dt { "RSIT" } dd { (r.rsit.taxonomy) " / " (r.rsit.kind) }
                dt { "missing" } dd { (r.missing.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ")) }
                dt { "reply" } dd { (r.reply.as_str()) @if let Some(why) = &r.reply_reason { " — " (shown(why, 200)) } }
                dt { "status" } dd id="status" { (r.status.as_str()) }
                dt { "ownership" } dd { (r.ownership.as_str()) }
            }
            @if me.role.may_act() && r.status.as_str() != "resolved" {
                form.act method="post" action=(format!("/reports/{}/resolve", r.id.0)) {
                    input type="hidden" name="csrf" value=(me.csrf);
                    label { "Note " input name="note" maxlength="500"; }
                    button id="resolve" type="submit" { "Resolve" }
                }
            }
            h2 { "Why this type" }
            ul.reasons { @for reason in &r.reasons { li { (shown(&reason.to_string(), 300)) } } }
            h2 { "Addresses and URLs" }
            table.roles {
                thead { tr { th { "address or URL" } th { "role" } th { "why" } th { "where" } } }
                tbody {
                    @for e in page.explained {
                        tr class=(format!("role-{}", e.role)) {
                            td.value {
                                code { (shown(&e.address, 300)) }
                                @if e.address.contains("://") {
                                    " " button.copy type="button" data-copy=(shown(&e.address, 2000)) { "copy" }
                                }
                            }
                            td.role { (e.role) }
                            td { (shown(&e.why, 300)) }
                            td { (shown(&e.origin, 120)) }
                        }
                    }
                }
            }
            h2 { "Evidence (" (r.evidence_rows) " rows)" }
            table.evidence {
                thead { tr { th { "kind" } th { "role" } th { "source" } th { "target" } th { "time" } th { "line" } } }
                tbody {
                    @for row in page.rows {
                        tr {
                            td { (name_of(&row.kind)) }
                            td { (name_of(&row.role)) }
                            td { (row.source_ip.map(|i| i.to_string()).unwrap_or_default()) @if let Some(p) = row.source_port { ":" (p) } }
                            td { (row.target_ip.map(|i| i.to_string()).unwrap_or_default()) @if let Some(p) = row.target_port { ":" (p) } }
                            td { (row.occurred_at.as_deref().unwrap_or("")) }
                            td { code { (shown(row.line.as_deref().or(row.url.as_deref()).unwrap_or(""), 300)) } }
                        }
                    }
                }
            }
            h2 { "History" }
            table.history {
                tbody {
                    @for (at, kind, detail) in page.events {
                        tr { td { (at) } td { (kind) } td { (shown(detail, 300)) } }
                    }
                }
            }
            h2 { "The message as it arrived" }
            p { a href=(format!("/reports/{}/raw", r.id.0)) download { "Download the original (.eml)" } }
            @if let Some(raw) = &page.raw {
                pre.raw { (raw) }
            }
        },
    )
}

/// The raw message as text for a page: lossy UTF-8, every unsafe
/// character visible, at most 256 KiB.
pub fn raw_text(bytes: &[u8]) -> String {
    const MAX: usize = 256 * 1024;
    let cut = &bytes[..bytes.len().min(MAX)];
    let text = String::from_utf8_lossy(cut);
    let mut out: String = text
        .split('\n')
        .map(|line| visible(line.trim_end_matches('\r')).into_owned())
        .collect::<Vec<_>>()
        .join("\n");
    if bytes.len() > MAX {
        out.push_str("\n… (cut: download the whole message)");
    }
    out
}

pub fn error_page(me: Option<&Me>, status: u16, text: &str) -> Markup {
    layout(
        "Error",
        me,
        html! {
            h1 { (status) }
            p.error { (text) }
        },
    )
}

/// A row's action button: a POST form with the session's token.
fn action(me: &Me, path: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action=(path) {
            input type="hidden" name="csrf" value=(me.csrf);
            button type="submit" { (label) }
        }
    }
}

/// Links to the same page in each state, the current one marked.
fn states(base: &str, key: &str, names: &[&str], current: &str) -> Markup {
    html! {
        p.states {
            @for name in names {
                @if *name == current { strong { (name) } } @else {
                    a href=(format!("{base}?{key}={name}")) { (name) }
                }
                " "
            }
        }
    }
}

/// The link to the next page of a list by state, when there is one.
fn older(base: &str, key: &str, state: &str, next: Option<i64>, what: &str) -> Markup {
    html! {
        @if let Some(next) = next {
            p { a id="next" rel="next" href=(format!("{base}?{key}={}&before={next}", urlencode(state))) { "Older " (what) " →" } }
        }
    }
}

pub fn cases(me: &Me, status: &str, cases: &[crate::store::Case], next: Option<i64>) -> Markup {
    let names: Vec<&str> = crate::model::CaseStatus::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    layout(
        "Cases",
        Some(me),
        html! {
            h1 { "Cases" }
            (states("/cases", "status", &names, status))
            table.cases {
                thead { tr {
                    th { "#" } th { "type" } th { "customer or network" } th { "status" }
                    th { "reports" } th { "first" } th { "last" } th { "notices" } th { "answered" } th {}
                } }
                tbody {
                    @for c in cases {
                        tr {
                            td { (c.id.0) }
                            td { (c.abuse_type.as_str()) }
                            td {
                                @if let Some(customer) = &c.customer {
                                    a href=(format!("/reports?customer={}", urlencode(customer))) { (shown(customer, 80)) }
                                } @else {
                                    a href=(format!("/reports?ip={}", urlencode(&c.network))) { (c.network) }
                                }
                            }
                            td { (c.status.as_str()) }
                            td { (c.reports) }
                            td { (c.first_at.get(..16).unwrap_or(&c.first_at)) }
                            td { (c.last_at.get(..16).unwrap_or(&c.last_at)) }
                            td { (c.notices) }
                            td { (c.answered_at.as_deref().unwrap_or("")) }
                            td {
                                @if me.role.may_act() && c.status.as_str() != "resolved" {
                                    form.inline.resolve-case method="post" action=(format!("/cases/{}/resolve", c.id.0)) {
                                        input type="hidden" name="csrf" value=(me.csrf);
                                        input name="note" maxlength="500" placeholder="note";
                                        select name="decision" {
                                            option value="" { "no decision" }
                                            @for d in crate::model::case::Decision::ALL { option value=(d.as_str()) { (d.as_str()) } }
                                        }
                                        select name="ground" {
                                            option value="" { "no ground" }
                                            option value="illegal" { "illegal" }
                                            option value="terms" { "terms" }
                                        }
                                        button type="submit" { "Resolve" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if cases.is_empty() { p { "No case." } }
            (older("/cases", "status", status, next, "cases"))
        },
    )
}

pub fn replies(
    me: &Me,
    state: &str,
    entries: &[crate::store::OutboxEntry],
    next: Option<i64>,
) -> Markup {
    let names: Vec<&str> = crate::model::OutboxState::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    layout(
        "Replies",
        Some(me),
        html! {
            h1 { "Replies to reporters" }
            p { "A reply is held while no relay is configured (" code { "reply.relay_host" } "), or for review (" code { "reply.review" } "). Release sends a held reply through the relay; discard drops a held or pending reply for good." }
            (states("/replies", "state", &names, state))
            table.replies {
                thead { tr {
                    th { "#" } th { "report" } th { "kind" } th { "to" } th { "state" }
                    th { "attempts" } th { "created" } th { "last error" } th {}
                } }
                tbody {
                    @for e in entries {
                        tr {
                            td { (e.id.0) }
                            td { a href=(format!("/reports/{}", e.report_id.0)) { (e.report_id.0) } }
                            td { (e.kind.as_str()) }
                            td { (shown(&e.recipient, 80)) }
                            td { (e.state.as_str()) }
                            td { (e.attempts) }
                            td { (e.created_at.get(..16).unwrap_or(&e.created_at)) }
                            td { (shown(e.last_error.as_deref().unwrap_or(""), 200)) }
                            td {
                                @if me.role.may_act() && e.state == crate::model::OutboxState::Held {
                                    (action(me, &format!("/replies/{}/release", e.id.0), "Release"))
                                }
                                @if me.role.may_act() && crate::model::ReplyAction::Discard.applies_to().contains(&e.state) {
                                    (action(me, &format!("/replies/{}/discard", e.id.0), "Discard"))
                                }
                            }
                        }
                    }
                }
            }
            @if entries.is_empty() { p { "No reply in this state." } }
            (older("/replies", "state", state, next, "replies"))
        },
    )
}

pub fn raw_messages(
    me: &Me,
    status: &str,
    list: &[crate::store::RawSummary],
    next: Option<i64>,
) -> Markup {
    let names: Vec<&str> = crate::model::RawStatus::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    layout(
        "Quarantine",
        Some(me),
        html! {
            h1 { "Messages as they arrived" }
            p { "A failed message is quarantined with the reason; retry puts it back in the queue (after a fix), discard sets it aside for good." }
            (states("/raw", "status", &names, status))
            table.raw {
                thead { tr {
                    th { "#" } th { "received" } th { "origin" } th { "from" } th { "size" }
                    th { "status" } th { "error" } th {}
                } }
                tbody {
                    @for m in list {
                        tr {
                            td { (m.id.0) }
                            td { (m.received_at.get(..16).unwrap_or(&m.received_at)) }
                            td { (m.origin) " " (m.peer_ip.as_deref().unwrap_or("")) }
                            td { (shown(m.mail_from.as_deref().unwrap_or("-"), 80)) }
                            td { (m.size_bytes) }
                            td { (m.status.as_str()) }
                            td { (shown(m.error.as_deref().unwrap_or(""), 200)) }
                            td {
                                @if me.role.may_act() {
                                    @if matches!(m.status.as_str(), "failed" | "discarded") {
                                        (action(me, &format!("/raw/{}/retry", m.id.0), "Retry"))
                                    }
                                    @if matches!(m.status.as_str(), "failed" | "received") {
                                        (action(me, &format!("/raw/{}/discard", m.id.0), "Discard"))
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if list.is_empty() { p { "No message in this state." } }
            (older("/raw", "status", status, next, "messages"))
        },
    )
}
