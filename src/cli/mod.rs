//! The command line: argument parsing and the commands behind it.
//!
//! In: `std::env::args`. Out: data on stdout (JSON or a table), diagnostics on
//! stderr, an exit code (0 ok, 1 some input failed, 2 fatal). The names here
//! are a contract (DESIGN.md): tests and users rely on them.

mod admin;
mod args;
mod cases;
mod export;
mod import;
mod ingest;
mod owners;
mod progress;
mod render;
mod replies;
mod reports;
mod serve;
mod web;

pub use args::{Cli, Command, ExportFormat, Format, Global};

use crate::config::{self, Config};
use crate::model::ReplyAction;
use crate::pipeline::Pipeline;
use crate::store::{Db, Location, Mode, Role};
use args::{
    CasesCommand, NoticesCommand, OwnersCommand, RepliesCommand, ReportsCommand, UsersCommand,
};
use std::process::ExitCode;

/// The configuration with the command line's overrides applied.
pub fn settings(global: &Global) -> Result<Config, config::Error> {
    let mut config = config::load(config_source(global).path())?;
    if let Some(db) = &global.db {
        config.store.path = db.clone();
    }
    if let Some(format) = global.log_format {
        config.log.format = format;
    }
    Ok(config)
}

/// Where the configuration comes from (see [`config::Source::locate`]).
pub fn config_source(global: &Global) -> config::Source {
    config::Source::locate(global.config.as_deref())
}

/// Runs the parsed command.
///
/// # Errors
/// Fatal problems (configuration, database); the caller exits with 2.
pub fn run(cli: Cli, config: Config) -> anyhow::Result<ExitCode> {
    let config = &config;
    match cli.command {
        Command::Serve { listen, web } => serve::serve(config.clone(), listen, web, &cli.global),
        Command::Web { listen } => web::run(config, listen, &cli.global),
        Command::Users { command } => match command {
            UsersCommand::Add { name, role } => web::add_user(config, &name, role),
            UsersCommand::List { format } => web::list_users(config, format),
            UsersCommand::Disable { name } => web::disable_user(config, &name),
        },
        Command::Ingest { files } => ingest::ingest(config, &files),
        Command::Reprocess { since, all } => ingest::reprocess(config, since, all),
        Command::Import {
            source,
            path,
            tls,
            password_file,
            ca_file,
            since,
            dry_run,
        } => {
            let source = import::Source::parse(&source, path, tls, password_file, ca_file)?;
            import::run(config, source, since, dry_run)
        }
        Command::WorkerChild => Ok(ExitCode::from(crate::daemon::isolate::child_main())),
        Command::Raw { command } => admin::raw(config, command),
        Command::Reports { command } => match command {
            ReportsCommand::List {
                filter,
                format,
                follow,
            } => reports::list(config, filter, format, follow),
            ReportsCommand::Explain { id, format } => reports::explain(config, id, format),
            ReportsCommand::Show {
                id,
                format,
                raw,
                force,
            } => reports::show(config, id, format, raw, force),
            ReportsCommand::Resolve { id, note } => reports::resolve(config, id, note),
        },
        Command::Replies { command } => match command {
            RepliesCommand::List {
                state,
                limit,
                format,
            } => replies::list(config, state, limit, format),
            RepliesCommand::Discard { ids, held } => {
                replies::act(config, ReplyAction::Discard, ids, held)
            }
            RepliesCommand::Release { ids, held } => {
                replies::act(config, ReplyAction::Release, ids, held)
            }
        },
        Command::Cases { command } => match command {
            CasesCommand::List {
                customer,
                status,
                awaiting_customer,
                customer_answered,
                limit,
                format,
            } => {
                let waiting = if awaiting_customer {
                    Some(crate::store::Waiting::OnCustomer)
                } else {
                    customer_answered.then_some(crate::store::Waiting::CustomerAnswered)
                };
                cases::list(config, customer.as_deref(), status, waiting, limit, format)
            }
            CasesCommand::Show { id, format } => cases::show(config, id, format),
            CasesCommand::Resolve {
                id,
                note,
                decision,
                ground,
            } => {
                let decided = match (decision, ground) {
                    (None, _) => None,
                    (Some(d), None) if d != crate::model::case::Decision::NoAction => {
                        anyhow::bail!(
                            "--decision {} needs --ground illegal|terms (why it was restricted)",
                            d.as_str().replace('_', "-")
                        )
                    }
                    (Some(decision), ground) => {
                        Some(crate::model::case::Decided { decision, ground })
                    }
                };
                cases::resolve(config, id, note, decided)
            }
        },
        Command::Notices { command } => match command {
            NoticesCommand::Run { now } => cases::run_notices(config, now),
        },
        Command::Owners { command } => match command {
            OwnersCommand::Import {
                file,
                dry_run,
                source,
                format,
            } => owners::import(config, &file, dry_run, source, format),
            OwnersCommand::List { format } => owners::list(config, format),
            OwnersCommand::Export => owners::export(config),
            OwnersCommand::Show { reference, format } => owners::show(config, &reference, format),
            OwnersCommand::Lookup { query, at, format } => {
                owners::lookup(config, &query, at.as_deref(), format)
            }
        },
        Command::Export { format, since } => export::run(config, format, since),
        Command::Prune {
            older_than,
            dry_run,
            yes,
        } => admin::prune(config, older_than, dry_run, yes),
        Command::Backup { file } => admin::backup(config, &file),
        Command::MigrateStore { from, to } => admin::migrate_store(&from, &to),
        Command::Stats { format } => admin::stats(config, format),
    }
}

pub(super) fn pipeline(config: &Config) -> anyhow::Result<Pipeline> {
    Pipeline::new(config).map_err(|problems| {
        anyhow::anyhow!("invalid classification rules: {}", problems.join("; "))
    })
}

/// The store for a query: read-only, never migrated, never write-locked.
pub(super) fn query_store(config: &Config) -> Result<Db, crate::store::Error> {
    crate::store::open(&Location::parse(&config.store.path), Mode::ReadOnly)
}

/// The store for a command that changes it: it must exist; migrated.
pub(super) fn admin_store(config: &Config) -> Result<Db, crate::store::Error> {
    crate::store::open(
        &Location::parse(&config.store.path),
        Mode::ReadWrite {
            role: Role::Cli,
            create: false,
        },
    )
}
