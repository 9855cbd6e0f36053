//! `web` (the console on its own) and `users` (its accounts).

use super::admin_store;
use super::args::Format;
use super::render::print_json;
use crate::config::Config;
use crate::model::operator::{is_operator_name, OperatorRole};
use anyhow::{bail, Context as _};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

/// Where `abuse-inbox web` listens without `--listen` or `web.listen`.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// `web`: serves the console until SIGTERM or SIGINT; SIGHUP reloads the
/// configuration as it does the daemon's.
pub(super) fn run(
    config: &Config,
    listen: Option<String>,
    global: &super::Global,
) -> anyhow::Result<ExitCode> {
    let listen = listen
        .or_else(|| (!config.web.listen.is_empty()).then(|| config.web.listen.clone()))
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    // The store must exist and be at this build's schema (migrated if older).
    drop(admin_store(config).with_context(|| {
        format!(
            "opening the store {} (run `abuse-inbox serve` once to create it)",
            crate::store::Location::parse(&config.store.path)
        )
    })?);
    let desk = crate::web::Desk::for_config(config).map_err(anyhow::Error::msg)?;
    let reloader = crate::daemon::server::Reloader::new(desk.runtime());
    let reread = {
        let global = global.clone();
        move || super::settings(&global).map_err(|e| vec![e.to_string()])
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen} (--listen or web.listen): is another process on it?"))?;
        let signals = super::serve::Signals::install()?;
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(super::serve::on_signals(
            signals,
            reread,
            reloader,
            stop.clone(),
        ));
        tracing::info!(listen = %listener.local_addr()?, store = %crate::store::Location::parse(&config.store.path), "console listening");
        crate::web::serve(listener, std::sync::Arc::new(desk), stop).await?;
        tracing::info!("console stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// The password for a new account: asked twice on a terminal (not
/// echoed), else the first line of standard input.
fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = prompt("Password: ")?;
    let second = prompt("Again: ")?;
    if first != second {
        bail!("the two passwords differ; nothing was added");
    }
    Ok(first)
}

/// One line from the terminal with echo off.
fn prompt(text: &str) -> anyhow::Result<String> {
    use std::os::fd::AsRawFd;
    let fd = std::io::stdin().as_raw_fd();
    eprint!("{text}");
    std::io::stderr().flush().ok();
    // SAFETY: termios is plain data; tcgetattr fills it for a terminal fd,
    // and the saved settings are put back before returning.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    let have_terminal = unsafe { libc::tcgetattr(fd, &mut saved) } == 0;
    if have_terminal {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        quiet.c_lflag |= libc::ECHONL;
        // SAFETY: as above.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if have_terminal {
        // SAFETY: as above.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    }
    read.context("reading the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// `users add NAME --role R`.
pub(super) fn add_user(
    config: &Config,
    name: &str,
    role: OperatorRole,
) -> anyhow::Result<ExitCode> {
    if !is_operator_name(name) {
        bail!("{name:?} is not a usable name: 1 to 64 letters, digits, '.', '_', '-' or '@'");
    }
    let mut db = admin_store(config)?;
    let password = read_password()?;
    if password.chars().count() < 8 {
        bail!("the password is shorter than 8 characters; nothing was added");
    }
    let hash = crate::web::session::hash_password(&password).map_err(anyhow::Error::msg)?;
    if !db.add_operator(name, role, &hash, &crate::now_rfc3339())? {
        bail!("there is already an operator {name:?} (users list shows them)");
    }
    eprintln!("abuse-inbox: operator {name} added as {role}");
    Ok(ExitCode::SUCCESS)
}

/// `users list`.
pub(super) fn list_users(config: &Config, format: Format) -> anyhow::Result<ExitCode> {
    let db = super::query_store(config)?;
    let operators = db.operators()?;
    match format {
        Format::Json => print_json(&operators)?,
        Format::Table => {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:<32} {:<7} {:<27} DISABLED",
                "NAME", "ROLE", "CREATED"
            )?;
            for o in &operators {
                writeln!(
                    out,
                    "{:<32} {:<7} {:<27} {}",
                    o.name,
                    o.role.as_str(),
                    o.created_at,
                    o.disabled_at.as_deref().unwrap_or("-")
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `users disable NAME`.
pub(super) fn disable_user(config: &Config, name: &str) -> anyhow::Result<ExitCode> {
    let mut db = admin_store(config)?;
    if !db.disable_operator(name, &crate::now_rfc3339())? {
        bail!("no operator {name:?} (users list shows them)");
    }
    eprintln!("abuse-inbox: operator {name} disabled; its sessions ended");
    Ok(ExitCode::SUCCESS)
}
