//! `replies`: the outbox, and dropping what should not go.

use super::args::Format;
use super::render::{print_json, print_replies_table};
use super::{admin_store, query_store};
use crate::config::Config;
use crate::model::{OutboxId, OutboxState, ReplyAction};
use anyhow::bail;
use std::process::ExitCode;

/// `replies list`.
pub(super) fn list(
    config: &Config,
    state: Option<OutboxState>,
    limit: usize,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let db = query_store(config)?;
    let replies = db.replies(state, None, limit)?;
    match format {
        Format::Json => print_json(&replies)?,
        Format::Table => print_replies_table(&replies)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `replies discard` drops replies not sent yet; `replies release` sends
/// held ones.
pub(super) fn act(
    config: &Config,
    action: ReplyAction,
    ids: Vec<i64>,
    held: bool,
) -> anyhow::Result<ExitCode> {
    if ids.is_empty() && !held {
        bail!("say which replies: their ids, or --held");
    }
    let mut db = admin_store(config)?;
    let ids: Vec<OutboxId> = ids.into_iter().map(OutboxId).collect();
    let n = db.act_on_replies(action, &ids, held, None, &crate::now_rfc3339())?;
    print_json(&serde_json::json!({ action.done(): n }))?;
    if action == ReplyAction::Release && n > 0 && config.reply.relay_host.is_none() {
        eprintln!(
            "abuse-inbox: no relay is configured (reply.relay_host): released replies wait as \
             pending until a daemon with one sends them"
        );
    }
    // Replies named by id that did not change: say why (stdout keeps the JSON).
    if !held && n < ids.len() {
        eprintln!(
            "abuse-inbox: {} of {} replies changed nothing: only {} replies can be {} (see \
             abuse-inbox replies list), and each id must exist",
            ids.len() - n,
            ids.len(),
            action.applies_to_words(),
            action.done()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
