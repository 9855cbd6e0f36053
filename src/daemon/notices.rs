//! The notice round: every customer case not closed, its policy asked what
//! is due now ([`crate::notices::schedule::due`]), and each step done in a
//! transaction of its own — a notice or digest with the reports it tells
//! of, a reminder, an escalation, or closing the case. The daemon runs a
//! round every `notices.interval_seconds`; `abuse-inbox notices run` runs
//! one (at `--now` when given), and `cases resolve` closes through
//! [`close`].
//!
//! A round cut short (a crash, a stop) is finished by the next: a step is
//! queued with the case as the schedule saw it, so none is done twice, and
//! what was not done is still due.

use crate::model::case::{Clock, ClosedBy, Decided};
use crate::model::{CaseId, OutboxState, ReplyKind, ReportId};
use crate::notices::compose::{self, Letter, Listed};
use crate::notices::schedule::{self, CaseState, Step};
use crate::runtime::Runtime;
use crate::store::{Db, Error, NewNotice, NoticeCase};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{info, warn};

/// Cases one round looks at, at most (the oldest first).
pub const MAX_CASES_PER_ROUND: usize = 10_000;
/// Evidence rows read of one report for a notice's CSV.
const ROWS_PER_REPORT: usize = 2_000;
/// Evidence rows read for one notice in all (what is not the customer's is
/// read and dropped): a notice of 1,000 reports holds at most this many in
/// memory.
const ROWS_PER_NOTICE: usize = 100_000;

/// What a round did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub cases: usize,
    pub notices: usize,
    pub digests: usize,
    pub reminders: usize,
    pub escalations: usize,
    pub closed: usize,
    /// Reports the notices told of.
    pub reports_told: usize,
    /// Steps not taken because the case changed meanwhile.
    pub raced: usize,
}

/// What closing a case did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Closed {
    /// Whether it was closed now (`false`: it was closed before; nothing
    /// was sent again).
    pub closed_now: bool,
    pub reports_resolved: Vec<ReportId>,
    pub reports_still_open: Vec<ReportId>,
    /// Whether the customer's "closed" notice is queued.
    pub customer_told: bool,
}

/// Runs one round at `clock`'s time.
///
/// # Errors
/// Storage errors; the steps done before stay done.
pub fn round(db: &mut Db, runtime: &Runtime, clock: &dyn Clock) -> Result<Summary, Error> {
    let now = clock.now();
    let mut summary = Summary::default();
    let cases = db.notice_cases(MAX_CASES_PER_ROUND)?;
    summary.cases = cases.len();
    for case in cases {
        let (policy, known) = runtime.notices.for_case(
            case.customer.as_ref().and_then(|c| c.policy.as_deref()),
            case.abuse_type,
            &case.rsit_type,
        );
        if !known {
            warn!(
                case_id = case.state.case.0,
                customer = %case.customer_ref,
                policy = ?case.customer.as_ref().and_then(|c| c.policy.clone()),
                fallback = %policy.name,
                "the customer's notice policy is not in the notices file; using the policy of the case's type"
            );
        }
        let mut state = case.state.clone();
        for step in schedule::due(&state, policy, now) {
            let done = match step {
                Step::Notify(kind) => notify(db, runtime, &case, &state, kind, now)?,
                Step::Remind => letter(db, runtime, &case, &state, ReplyKind::Reminder, None, now)?,
                Step::Escalate => {
                    let reason = escalation_reason(&case, &state, policy, now);
                    letter(
                        db,
                        runtime,
                        &case,
                        &state,
                        ReplyKind::Escalation,
                        Some(reason),
                        now,
                    )?
                }
                Step::Close => {
                    let days = policy.close_after.map_or(0, |d| d.num_days());
                    let note = format!("closed after {days} days without a new report or answer");
                    let closed = close(
                        db,
                        runtime,
                        state.case,
                        ClosedBy::Policy,
                        Some(&note),
                        None,
                        now,
                    )?;
                    if closed.closed_now {
                        summary.closed += 1;
                        info!(case_id = state.case.0, customer = %case.customer_ref, days, "case closed by its policy, idle");
                    }
                    continue;
                }
            };
            let Some(told) = done else {
                summary.raced += 1;
                continue;
            };
            match step {
                Step::Notify(ReplyKind::Notice) => summary.notices += 1,
                Step::Notify(_) => summary.digests += 1,
                Step::Remind => summary.reminders += 1,
                _ => summary.escalations += 1,
            }
            summary.reports_told += told;
            advance(&mut state, step, told, now);
        }
    }
    if summary
        != (Summary {
            cases: summary.cases,
            ..Summary::default()
        })
    {
        info!(
            notices = summary.notices,
            digests = summary.digests,
            reminders = summary.reminders,
            escalations = summary.escalations,
            closed = summary.closed,
            reports_told = summary.reports_told,
            "notice round"
        );
    }
    Ok(summary)
}

/// The case as it stands after `step` was queued at `now` (the next step
/// of the round is guarded by it).
fn advance(state: &mut CaseState, step: Step, told: usize, now: DateTime<Utc>) {
    match step {
        Step::Notify(_) => {
            state.notices += 1;
            state.first_notice_at.get_or_insert(now);
            state.last_notice_at = Some(now);
            state.untold = state.untold.saturating_sub(told as u64);
        }
        Step::Remind => state.reminded_at = Some(now),
        Step::Escalate => state.escalated_at = Some(now),
        Step::Close => {}
    }
}

fn escalation_reason(
    case: &NoticeCase,
    state: &CaseState,
    policy: &crate::notices::Policy,
    now: DateTime<Utc>,
) -> String {
    let language = language(case);
    match (policy.escalate_after_events, state.first_notice_at) {
        (Some(n), _) if state.events >= u64::from(n) => {
            crate::reply::phrases::escalated_by_count(language, state.events)
        }
        (_, Some(first)) => {
            crate::reply::phrases::escalated_by_silence(language, (now - first).num_hours())
        }
        _ => crate::reply::phrases::escalated_by_count(language, state.events),
    }
}

fn language(case: &NoticeCase) -> crate::reply::Language {
    case.customer
        .as_ref()
        .map_or(crate::reply::Language::En, |c| c.language)
}

/// Queues the notice or digest telling of the case's untold reports; the
/// number told, or `None` when the case changed meanwhile.
fn notify(
    db: &mut Db,
    runtime: &Runtime,
    case: &NoticeCase,
    state: &CaseState,
    kind: ReplyKind,
    now: DateTime<Utc>,
) -> Result<Option<usize>, Error> {
    let Some(customer) = &case.customer else {
        return Ok(None);
    };
    let (policy, _) =
        runtime
            .notices
            .for_case(customer.policy.as_deref(), case.abuse_type, &case.rsit_type);
    let ids = db.untold_reports(state.case, schedule::MAX_REPORTS_PER_NOTICE)?;
    let mut listed: Vec<Listed> = Vec::with_capacity(ids.len());
    // The CSV's rows, and the rows read to find them, are budgeted: past
    // either, the remaining reports are listed without evidence rows.
    let (mut to_read, mut to_keep) = (ROWS_PER_NOTICE, compose::MAX_CSV_ROWS);
    for id in &ids {
        if let Some(report) = db.report(*id)? {
            let limit = ROWS_PER_REPORT.min(to_read).min(to_keep);
            let evidence = if limit > 0 {
                db.evidence(*id, limit)?
            } else {
                Vec::new()
            };
            to_read -= evidence.len();
            let one = compose::listed(&report, evidence, &case.customer_ref, policy.share_reporter);
            to_keep -= one.rows.len();
            listed.push(one);
        }
    }
    let Some(to) = customer.emails.first() else {
        return Ok(None);
    };
    queue(
        db,
        runtime,
        case,
        state,
        kind,
        to,
        None,
        (None, None),
        &listed,
        &ids,
        now,
    )
    .map(|queued| queued.map(|()| ids.len()))
}

/// Queues a reminder or an escalation (no report listed).
fn letter(
    db: &mut Db,
    runtime: &Runtime,
    case: &NoticeCase,
    state: &CaseState,
    kind: ReplyKind,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> Result<Option<usize>, Error> {
    let to = match kind {
        ReplyKind::Escalation => {
            let (policy, _) = runtime.notices.for_case(
                case.customer.as_ref().and_then(|c| c.policy.as_deref()),
                case.abuse_type,
                &case.rsit_type,
            );
            escalation_contact(policy, case.customer.as_ref(), &runtime.config.reply.from)
        }
        _ => match case.customer.as_ref().and_then(|c| c.emails.first()) {
            Some(to) => to.clone(),
            None => return Ok(None),
        },
    };
    queue(
        db,
        runtime,
        case,
        state,
        kind,
        &to,
        reason,
        (None, None),
        &[],
        &[],
        now,
    )
    .map(|queued| queued.map(|()| 0))
}

/// Where an escalation goes: the policy's `escalate_to`, else the
/// customer's second address, else the desk itself (`reply.from`).
pub fn escalation_contact(
    policy: &crate::notices::Policy,
    customer: Option<&crate::owners::import::Customer>,
    desk: &str,
) -> String {
    policy
        .escalate_to
        .clone()
        .or_else(|| customer.and_then(|c| c.emails.get(1).cloned()))
        .unwrap_or_else(|| desk.to_owned())
}

/// Writes the notice and queues it; `None` when the case changed.
#[allow(clippy::too_many_arguments)]
fn queue(
    db: &mut Db,
    runtime: &Runtime,
    case: &NoticeCase,
    state: &CaseState,
    kind: ReplyKind,
    to: &str,
    reason: Option<String>,
    (note, decided): (Option<&str>, Option<Decided>),
    listed: &[Listed],
    ids: &[ReportId],
    now: DateTime<Utc>,
) -> Result<Option<()>, Error> {
    let secret = db.installation_secret()?;
    let tag = crate::reply::token::case_subject_tag(&secret, state.case.0);
    let stamp =
        |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let first_notice_at = stamp(state.first_notice_at);
    let answered_at = stamp(state.answered_at);
    let name = case
        .customer
        .as_ref()
        .map_or(case.customer_ref.as_str(), |c| c.name.as_str());
    let written = compose::write(
        &runtime.templates,
        &Letter {
            kind,
            case: state.case,
            tag: &tag,
            customer: name,
            language: language(case),
            abuse_type: case.abuse_type,
            total: state.events,
            first_notice_at: first_notice_at.as_deref(),
            answered_at: answered_at.as_deref(),
            reason,
            note,
            decided,
        },
        listed,
    );
    let plan = runtime.pipeline.reply_plan(to);
    // Unique per case: the notice's number, the reminder of it, the one
    // escalation, the close of that moment.
    let n = match kind {
        ReplyKind::Notice | ReplyKind::Digest => format!("n{}", state.notices),
        ReplyKind::Reminder => format!("r{}", state.notices),
        ReplyKind::Escalation => "e".to_owned(),
        _ => format!("c{}", now.timestamp_micros()),
    };
    let message_id = crate::reply::token::case_message_id(&secret, state.case.0, &n, &plan.domain);
    let queued = db.queue_notice(
        &NewNotice {
            case: state.case,
            kind,
            recipient: to,
            recipient_key: &plan.recipient_key,
            recipient_domain: &plan.recipient_domain,
            state: if plan.hold {
                OutboxState::Held
            } else {
                OutboxState::Pending
            },
            message_id: &message_id,
            subject: &written.subject,
            body: &written.body,
            csv: written.csv.as_deref(),
            reports: ids,
            seen: state,
        },
        &crate::rfc3339(now),
    )?;
    if let Some(id) = queued {
        crate::metrics::get().notice(kind.as_str());
        info!(case_id = state.case.0, outbox_id = id.0, kind = %kind, to = %to, reports = ids.len(), "notice queued");
    }
    Ok(queued.map(|_| ()))
}

/// Closes case `id`: each of its reports no other open case holds is
/// resolved (its reporter, when we answered them, hears "concluded" once),
/// then the case, then its customer is told (a customer's case). Running it
/// again on a closed case changes and sends nothing.
///
/// # Errors
/// Storage errors; what was done stays done, and running it again finishes it.
pub fn close(
    db: &mut Db,
    runtime: &Runtime,
    id: CaseId,
    by: ClosedBy,
    note: Option<&str>,
    decided: Option<Decided>,
    now: DateTime<Utc>,
) -> Result<Closed, Error> {
    let stamp = crate::rfc3339(now);
    let memberships = db.case_memberships(id)?;
    let (close, keep) = crate::classify::case::reports_to_close(id, &memberships);
    let config = &runtime.config.reply;
    // The recipient is each report's reporter; the plan carries the policy.
    let plan = config.enabled.then(|| runtime.pipeline.reply_plan(""));
    let before = db.notice_case(id)?;
    for report in &close {
        // One resolved by itself before stays as it was.
        db.resolve(*report, note, plan.as_ref(), &stamp)?;
    }
    let closed_now = db.close_case(id, by, note, decided, &stamp)?;
    let mut customer_told = false;
    if let (true, Some(case)) = (closed_now, &before) {
        if let Some(to) = case.customer.as_ref().and_then(|c| c.emails.first()) {
            // Sent after the case is closed: the guard lets it through once.
            customer_told = queue(
                db,
                runtime,
                case,
                &case.state,
                ReplyKind::CaseClosed,
                to,
                None,
                (note, decided),
                &[],
                &[],
                now,
            )?
            .is_some();
        }
    }
    Ok(Closed {
        closed_now,
        reports_resolved: close,
        reports_still_open: keep,
        customer_told,
    })
}

/// Runs a notice round every `notices.interval_seconds` (read each round:
/// a reload applies) until `stop`; rings `sent` when a round queued
/// something, so the reply sender picks it up at once. With
/// `notices.enabled = false` a round does nothing.
pub async fn run(
    db_path: std::path::PathBuf,
    runtime: crate::runtime::SharedRuntime,
    sent: std::sync::Arc<tokio::sync::Notify>,
    stop: tokio_util::sync::CancellationToken,
) {
    use crate::store::{Location, Mode, Role};
    let mut db: Option<Db> = None;
    loop {
        let current = runtime.current();
        let interval =
            std::time::Duration::from_secs(current.config.notices.interval_seconds.max(1));
        if current.config.notices.enabled {
            let path = db_path.clone();
            let taken = db.take();
            let done = tokio::task::spawn_blocking(move || {
                let mut db = match taken {
                    Some(db) => db,
                    None => crate::store::open(
                        &Location::parse(&path),
                        Mode::ReadWrite {
                            role: Role::Cli,
                            create: false,
                        },
                    )?,
                };
                let summary = round(&mut db, &current, &crate::model::case::SystemClock);
                Ok::<_, Error>((db, summary))
            })
            .await;
            match done {
                Ok(Ok((back, summary))) => {
                    db = Some(back);
                    match summary {
                        Ok(s)
                            if s.notices + s.digests + s.reminders + s.escalations + s.closed
                                > 0 =>
                        {
                            sent.notify_one();
                        }
                        Ok(_) => {}
                        Err(error) => {
                            tracing::error!(%error, "notice round failed; the next one retries")
                        }
                    }
                }
                Ok(Err(error)) => tracing::error!(%error, "notice round cannot open the store"),
                Err(_) => tracing::error!("notice round failed"),
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
