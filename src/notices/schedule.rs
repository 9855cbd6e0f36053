//! Is a notice due? The rule, as a pure function of what the store read
//! about a case and the time a [`crate::model::case::Clock`] gave.
//!
//! - A **notice** tells the customer of the case's reports not told yet:
//!   the first when the oldest of them is `digest` old; the next ones
//!   (digests) likewise, and not sooner than `repeat` after the last.
//! - A **reminder** follows a notice the customer did not answer, once,
//!   `remind` after it.
//! - An **escalation** goes once, when the case holds
//!   `escalate_after_events` reports, or `escalate_after` passed since the
//!   first notice without an answer.
//! - A case with no report, answer or notice for `close_after` **closes**
//!   by itself.

use super::Policy;
use crate::model::{CaseId, CaseStatus, ReplyKind};
use chrono::{DateTime, Utc};

/// Reports one notice lists at most; the rest go in the next one, due at
/// once.
pub const MAX_REPORTS_PER_NOTICE: usize = 1000;

/// What the store knows of a case that the schedule needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseState {
    pub case: CaseId,
    pub status: CaseStatus,
    /// Reports in the case.
    pub events: u64,
    pub opened_at: DateTime<Utc>,
    pub last_event_at: DateTime<Utc>,
    /// Reports the customer was not told of yet, and when the oldest arrived.
    pub untold: u64,
    pub oldest_untold_at: Option<DateTime<Utc>>,
    /// Notices (first and digests) queued so far.
    pub notices: u32,
    pub first_notice_at: Option<DateTime<Utc>>,
    pub last_notice_at: Option<DateTime<Utc>>,
    pub reminded_at: Option<DateTime<Utc>>,
    pub escalated_at: Option<DateTime<Utc>>,
    /// The customer's last answer.
    pub answered_at: Option<DateTime<Utc>>,
    /// Whether the customer has an address to write to.
    pub reachable: bool,
}

/// One thing to do about a case now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Tell the customer of the untold reports: [`ReplyKind::Notice`] the
    /// first time, [`ReplyKind::Digest`] after.
    Notify(ReplyKind),
    Remind,
    Escalate,
    /// Close the case (idle); tell the customer when they can be reached.
    Close,
}

/// What is due about `case` at `now` under `policy`, in the order to do it.
pub fn due(case: &CaseState, policy: &Policy, now: DateTime<Utc>) -> Vec<Step> {
    if case.status == CaseStatus::Resolved {
        return Vec::new();
    }
    if let Some(idle) = policy.close_after {
        let last = [
            Some(case.last_event_at),
            case.answered_at,
            case.last_notice_at,
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(case.opened_at);
        if now >= last + idle {
            return vec![Step::Close];
        }
    }
    let mut steps = Vec::new();
    let open = case.status == CaseStatus::Open;
    let notify = case.reachable && case.untold > 0 && notify_due(case, policy, now);
    if notify {
        let kind = if case.notices == 0 {
            ReplyKind::Notice
        } else {
            ReplyKind::Digest
        };
        steps.push(Step::Notify(kind));
    }
    let unanswered_since = |t: DateTime<Utc>| case.answered_at.is_none_or(|answered| answered < t);
    if let (Some(remind), Some(last)) = (policy.remind, case.last_notice_at) {
        let reminded = case.reminded_at.is_some_and(|r| r >= last);
        let quiet = !reminded && unanswered_since(last);
        if open && !notify && case.reachable && quiet && now >= last + remind {
            steps.push(Step::Remind);
        }
    }
    if case.escalated_at.is_none() {
        let by_count = policy
            .escalate_after_events
            .is_some_and(|n| case.events >= u64::from(n));
        let by_time = match (policy.escalate_after, case.first_notice_at) {
            (Some(after), Some(first)) => open && unanswered_since(first) && now >= first + after,
            _ => false,
        };
        if by_count || by_time {
            steps.push(Step::Escalate);
        }
    }
    steps
}

/// Whether the untold reports are due to be told.
fn notify_due(case: &CaseState, policy: &Policy, now: DateTime<Utc>) -> bool {
    let Some(oldest) = case.oldest_untold_at else {
        return false;
    };
    // More than one notice can list: the rest are due at once.
    if case.untold > MAX_REPORTS_PER_NOTICE as u64 {
        return true;
    }
    let mut at = oldest + policy.digest;
    if let (Some(last), Some(repeat)) = (case.last_notice_at, policy.repeat) {
        at = at.max(last + repeat);
    }
    now >= at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notices::Policies;
    use chrono::Duration;

    fn t(minutes: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
            .unwrap()
            .to_utc()
            + Duration::minutes(minutes)
    }

    /// A policy of these settings, zero (off) where not given.
    fn policy(settings: &[(&str, u32)]) -> Policy {
        let mut keys = [
            ("digest_minutes", 0),
            ("repeat_hours", 0),
            ("remind_hours", 0),
            ("escalate_after_events", 0),
            ("escalate_after_hours", 0),
            ("close_after_days", 0),
        ];
        for (key, value) in settings {
            keys.iter_mut().find(|(k, _)| k == key).unwrap().1 = *value;
        }
        let lines: Vec<String> = keys.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        let file = format!("[[policy]]\nname = \"default\"\n{}", lines.join("\n"));
        Policies::parse(&file)
            .unwrap()
            .named("default")
            .unwrap()
            .clone()
    }

    fn fresh(at: DateTime<Utc>) -> CaseState {
        CaseState {
            case: CaseId(1),
            status: CaseStatus::Open,
            events: 0,
            opened_at: at,
            last_event_at: at,
            untold: 0,
            oldest_untold_at: None,
            notices: 0,
            first_notice_at: None,
            last_notice_at: None,
            reminded_at: None,
            escalated_at: None,
            answered_at: None,
            reachable: true,
        }
    }

    /// Plays events (minutes) through the schedule, asked every minute:
    /// the notices sent, each with the events it listed.
    fn simulate(events: &[i64], policy: &Policy, until: i64) -> Vec<(i64, Vec<i64>)> {
        let mut case = fresh(t(events[0]));
        let mut untold: Vec<i64> = Vec::new();
        let mut sent = Vec::new();
        let mut next = events.iter().peekable();
        for minute in events[0]..=until {
            while let Some(e) = next.next_if(|e| **e <= minute) {
                untold.push(*e);
                case.events += 1;
                case.last_event_at = t(*e);
            }
            case.untold = untold.len() as u64;
            case.oldest_untold_at = untold.first().map(|m| t(*m));
            for step in due(&case, policy, t(minute)) {
                if let Step::Notify(_) = step {
                    sent.push((minute, std::mem::take(&mut untold)));
                    case.notices += 1;
                    case.first_notice_at.get_or_insert(t(minute));
                    case.last_notice_at = Some(t(minute));
                    case.untold = 0;
                }
            }
        }
        sent
    }

    #[test]
    fn a_thousand_events_in_an_hour_with_a_15_minute_digest_give_at_most_4_notices() {
        let policy = policy(&[("digest_minutes", 15)]);
        let events: Vec<i64> = (0..1000).map(|i| i * 60 / 1000).collect();
        let sent = simulate(&events, &policy, 24 * 60);
        assert!(sent.len() <= 4, "{} notices", sent.len());
        let listed: Vec<i64> = sent.iter().flat_map(|(_, e)| e.clone()).collect();
        assert_eq!(listed, events, "every event listed once, in order");
        assert_eq!(sent[0].0, 15, "the first after the digest window");
    }

    #[test]
    fn an_informational_policy_gives_one_notice_in_90_days() {
        let policy = Policies::builtin().named("informational").unwrap().clone();
        // An event a day for 89 days.
        let events: Vec<i64> = (0..89).map(|d| d * 24 * 60).collect();
        let sent = simulate(&events, &policy, 89 * 24 * 60);
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].0, 24 * 60, "after its one-day digest");
    }

    #[test]
    fn reminders_escalation_and_closing_follow_the_policy() {
        let policy = policy(&[
            ("remind_hours", 24),
            ("escalate_after_events", 5),
            ("escalate_after_hours", 48),
            ("close_after_days", 14),
        ]);
        let mut case = fresh(t(0));
        case.events = 1;
        case.notices = 1;
        case.first_notice_at = Some(t(0));
        case.last_notice_at = Some(t(0));
        assert_eq!(due(&case, &policy, t(60)), vec![]);
        assert_eq!(due(&case, &policy, t(24 * 60)), vec![Step::Remind]);
        case.reminded_at = Some(t(24 * 60));
        assert_eq!(due(&case, &policy, t(30 * 60)), vec![], "one reminder");
        assert_eq!(due(&case, &policy, t(48 * 60)), vec![Step::Escalate]);
        case.escalated_at = Some(t(48 * 60));
        assert_eq!(due(&case, &policy, t(49 * 60)), vec![], "one escalation");
        // Idle 14 days after the last notice: closed.
        assert_eq!(due(&case, &policy, t(14 * 24 * 60)), vec![Step::Close]);

        // An answer stops the reminder and the escalation by time.
        let mut answered = fresh(t(0));
        answered.notices = 1;
        answered.first_notice_at = Some(t(0));
        answered.last_notice_at = Some(t(0));
        answered.answered_at = Some(t(60));
        assert_eq!(due(&answered, &policy, t(72 * 60)), vec![]);
        // The count escalates whatever was answered.
        answered.events = 5;
        assert_eq!(due(&answered, &policy, t(72 * 60)), vec![Step::Escalate]);
        // The customer's "resolved": no reminder, no escalation by time.
        let mut resolved = fresh(t(0));
        resolved.status = CaseStatus::CustomerResolved;
        resolved.notices = 1;
        resolved.first_notice_at = Some(t(0));
        resolved.last_notice_at = Some(t(0));
        assert_eq!(due(&resolved, &policy, t(72 * 60)), vec![]);
        // A customer with no address is not notified, but still escalated.
        let mut unreachable = fresh(t(0));
        unreachable.events = 6;
        unreachable.untold = 6;
        unreachable.oldest_untold_at = Some(t(0));
        unreachable.reachable = false;
        assert_eq!(due(&unreachable, &policy, t(60)), vec![Step::Escalate]);
    }

    #[test]
    fn more_untold_reports_than_a_notice_lists_are_due_at_once() {
        let policy = policy(&[("digest_minutes", 60), ("repeat_hours", 24)]);
        let mut case = fresh(t(0));
        case.notices = 1;
        case.last_notice_at = Some(t(0));
        case.untold = MAX_REPORTS_PER_NOTICE as u64 + 1;
        case.oldest_untold_at = Some(t(0));
        assert_eq!(
            due(&case, &policy, t(1)),
            vec![Step::Notify(ReplyKind::Digest)]
        );
        case.untold = 10;
        assert_eq!(due(&case, &policy, t(1)), vec![]);
        assert_eq!(
            due(&case, &policy, t(24 * 60)),
            vec![Step::Notify(ReplyKind::Digest)]
        );
    }
}
