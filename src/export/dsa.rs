//! What the EU Digital Services Act asks a hosting provider to be able to
//! show about notices of web content and copyright: each notice's receipt
//! confirmed (Art. 16(4)), the decision and its ground, the statement of
//! reasons to the customer (Art. 17), and the transparency figures
//! (Art. 15: counts per category, the share decided automatically, the
//! median time from notice to decision). Pure: a summary of the rows the
//! store read.

use crate::model::case::{ClosedBy, Decision, Ground};
use crate::model::{AbuseType, ReportId};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// One notice (a web-content or copyright report) and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub report: ReportId,
    pub category: AbuseType,
    pub received_at: DateTime<Utc>,
    /// When our confirmation of receipt (the ack or request for evidence)
    /// was sent.
    pub confirmed_at: Option<DateTime<Utc>>,
    pub decision: Option<Decision>,
    pub ground: Option<Ground>,
    /// When its case was closed (with the decision).
    pub decided_at: Option<DateTime<Utc>>,
    pub closed_by: Option<ClosedBy>,
    /// When the customer was sent the statement of reasons.
    pub reasons_sent_at: Option<DateTime<Utc>>,
}

/// The figures, as `export --format dsa` prints them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub since: String,
    pub until: String,
    pub notices: u64,
    pub notices_by_category: BTreeMap<String, u64>,
    pub receipt_confirmed: u64,
    pub median_hours_to_confirmation: Option<f64>,
    pub decided: u64,
    pub decisions: BTreeMap<String, u64>,
    pub grounds: BTreeMap<String, u64>,
    /// Decisions taken by the desk's policy rather than a person (a policy
    /// closes idle cases without deciding: so far always 0).
    pub decided_automatically: u64,
    pub share_decided_automatically: f64,
    pub median_hours_notice_to_decision: Option<f64>,
    pub statements_of_reasons: u64,
    /// Notices whose case is still open.
    pub pending: u64,
}

/// The median of `hours`, rounded to a hundredth; `None` when empty.
fn median(mut hours: Vec<f64>) -> Option<f64> {
    if hours.is_empty() {
        return None;
    }
    hours.sort_by(f64::total_cmp);
    let mid = hours.len() / 2;
    let m = if hours.len() % 2 == 1 {
        hours[mid]
    } else {
        (hours[mid - 1] + hours[mid]) / 2.0
    };
    Some((m * 100.0).round() / 100.0)
}

fn hours(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_seconds().max(0) as f64 / 3600.0
}

/// The figures of `notices` (one row a report; a report read twice, in two
/// cases, counts once: its decided case first).
pub fn summary(notices: &[Notice], since: &str, until: DateTime<Utc>) -> Summary {
    let mut seen: BTreeMap<ReportId, &Notice> = BTreeMap::new();
    for n in notices {
        let keep = match seen.get(&n.report) {
            None => true,
            Some(old) => old.decision.is_none() && n.decision.is_some(),
        };
        if keep {
            seen.insert(n.report, n);
        }
    }
    let rows: Vec<&Notice> = seen.into_values().collect();
    let count = |f: &dyn Fn(&Notice) -> bool| rows.iter().filter(|n| f(n)).count() as u64;
    let mut by_category = BTreeMap::new();
    let mut decisions = BTreeMap::new();
    let mut grounds = BTreeMap::new();
    for n in &rows {
        *by_category
            .entry(n.category.as_str().to_owned())
            .or_insert(0) += 1;
        if let Some(d) = n.decision {
            *decisions.entry(d.as_str().to_owned()).or_insert(0) += 1;
        }
        if let (Some(_), Some(g)) = (n.decision, n.ground) {
            *grounds.entry(g.as_str().to_owned()).or_insert(0) += 1;
        }
    }
    let decided = count(&|n| n.decision.is_some());
    let automatic = count(&|n| n.decision.is_some() && n.closed_by == Some(ClosedBy::Policy));
    Summary {
        since: since.to_owned(),
        until: crate::rfc3339(until),
        notices: rows.len() as u64,
        notices_by_category: by_category,
        receipt_confirmed: count(&|n| n.confirmed_at.is_some()),
        median_hours_to_confirmation: median(
            rows.iter()
                .filter_map(|n| n.confirmed_at.map(|c| hours(n.received_at, c)))
                .collect(),
        ),
        decided,
        decisions,
        grounds,
        decided_automatically: automatic,
        share_decided_automatically: if decided == 0 {
            0.0
        } else {
            automatic as f64 / decided as f64
        },
        median_hours_notice_to_decision: median(
            rows.iter()
                .filter(|n| n.decision.is_some())
                .filter_map(|n| n.decided_at.map(|d| hours(n.received_at, d)))
                .collect(),
        ),
        statements_of_reasons: count(&|n| n.reasons_sent_at.is_some()),
        pending: count(&|n| n.decided_at.is_none()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
            .unwrap()
            .to_utc()
            + chrono::Duration::hours(h)
    }

    fn notice(id: i64, category: AbuseType) -> Notice {
        Notice {
            report: ReportId(id),
            category,
            received_at: at(0),
            confirmed_at: Some(at(0)),
            decision: None,
            ground: None,
            decided_at: None,
            closed_by: None,
            reasons_sent_at: None,
        }
    }

    #[test]
    fn the_figures_count_each_notice_once_and_take_medians() {
        let mut a = notice(1, AbuseType::WebContent);
        a.decision = Some(Decision::Removed);
        a.ground = Some(Ground::Illegal);
        a.decided_at = Some(at(2));
        a.closed_by = Some(ClosedBy::Operator);
        a.reasons_sent_at = Some(at(2));
        let mut b = notice(2, AbuseType::Copyright);
        b.decision = Some(Decision::NoAction);
        b.decided_at = Some(at(10));
        b.closed_by = Some(ClosedBy::Operator);
        let mut c = notice(3, AbuseType::WebContent);
        c.confirmed_at = None;
        // Report 1 read a second time, in an undecided case: counted once.
        let a_again = notice(1, AbuseType::WebContent);
        let s = summary(&[a_again, a, b, c], "2026-12-01T00:00:00Z", at(24));
        assert_eq!(s.notices, 3);
        assert_eq!(s.notices_by_category["web_content"], 2);
        assert_eq!(s.receipt_confirmed, 2);
        assert_eq!(s.decided, 2);
        assert_eq!(s.decisions["removed"], 1);
        assert_eq!(s.grounds["illegal"], 1);
        assert_eq!(s.median_hours_notice_to_decision, Some(6.0));
        assert_eq!(s.statements_of_reasons, 1);
        assert_eq!(s.pending, 1);
        assert_eq!(s.share_decided_automatically, 0.0);
        assert_eq!(
            summary(&[], "x", at(0)).median_hours_notice_to_decision,
            None
        );
    }
}
