//! `serve`: the daemon in the foreground, with its signals (SIGTERM and
//! SIGINT stop it, SIGHUP reloads the configuration).

use super::Global;
use crate::config::Config;
use crate::daemon::server::Server;
use anyhow::{bail, Context as _};
use std::process::ExitCode;

pub(super) fn serve(
    mut config: Config,
    listen: Option<String>,
    web: Option<String>,
    global: &Global,
) -> anyhow::Result<ExitCode> {
    if let Some(listen) = &listen {
        config.smtp.listen = listen.clone();
    }
    if let Some(web) = &web {
        config.web.listen = web.clone();
    }
    // SIGHUP re-reads the same file with the same command-line overrides.
    let reread = {
        let global = global.clone();
        move || -> Result<Config, Vec<String>> {
            let mut config = super::settings(&global).map_err(|e| vec![e.to_string()])?;
            if let Some(listen) = &listen {
                config.smtp.listen = listen.clone();
            }
            if let Some(web) = &web {
                config.web.listen = web.clone();
            }
            Ok(config)
        }
    };
    if let [problem, ..] = config.problems().as_slice() {
        bail!("invalid setting: {problem}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    runtime.block_on(async move {
        // Signal handlers go in before the listener opens, so a SIGTERM that
        // arrives right after start-up is a clean shutdown, not a kill.
        let signals = Signals::install()?;
        let summary = Summary::of(&config, &super::config_source(global));
        let server = Server::start(config).await?;
        tracing::info!(
            listen = %server.local_addr(),
            recipients = ?summary.recipients,
            relay = ?summary.relay,
            sender_checks = ?summary.checks,
            metrics = %summary.metrics,
            store = %summary.store,
            config = ?summary.config,
            "started"
        );
        // systemd (Type=notify): the listener is bound and the database open.
        crate::daemon::notify::notify(&format!(
            "READY=1\nSTATUS=accepting mail on {}",
            server.local_addr()
        ));
        tokio::spawn(on_signals(
            signals,
            reread,
            server.reloader(),
            server.shutdown_token(),
        ));
        server.wait().await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Serves the signals until a stop: SIGHUP re-reads the configuration
/// (`reread`) and reloads it whole or refuses it whole, saying which;
/// SIGTERM or SIGINT cancels `shutdown`.
pub(super) async fn on_signals(
    mut signals: Signals,
    reread: impl Fn() -> Result<Config, Vec<String>>,
    reloader: crate::daemon::server::Reloader,
    shutdown: tokio_util::sync::CancellationToken,
) {
    while let Signal::Reload = signals.next().await {
        crate::daemon::notify::notify("RELOADING=1");
        match reread().and_then(|config| reloader.reload(config)) {
            Ok(changed) if changed.is_empty() => {
                tracing::info!("configuration reloaded; nothing changed")
            }
            Ok(changed) => {
                tracing::info!(changed = %changed.join(", "), "configuration reloaded")
            }
            Err(problems) => {
                tracing::error!(problems = %problems.join("; "), "reload refused; the running configuration stays")
            }
        }
        crate::daemon::notify::notify("READY=1");
    }
    tracing::info!("shutdown requested");
    crate::daemon::notify::notify("STOPPING=1");
    shutdown.cancel();
}

/// What a signal asks for.
pub(super) enum Signal {
    /// SIGTERM (systemd) or SIGINT (Ctrl-C).
    Stop,
    /// SIGHUP (`systemctl reload`).
    Reload,
}

/// SIGTERM, SIGINT and SIGHUP, registered up front.
pub(super) struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    pub(super) fn install() -> anyhow::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                term: signal(SignalKind::terminate()).context("watching SIGTERM")?,
                int: signal(SignalKind::interrupt()).context("watching SIGINT")?,
                hup: signal(SignalKind::hangup()).context("watching SIGHUP")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// The next signal that matters. A SIGHUP that is already pending when a
    /// SIGTERM arrives is served first: signals are handled in the order the
    /// operator most likely sent them, and a reload is quick.
    async fn next(&mut self) -> Signal {
        #[cfg(unix)]
        tokio::select! {
            biased;
            _ = self.hup.recv() => Signal::Reload,
            _ = self.term.recv() => Signal::Stop,
            _ = self.int.recv() => Signal::Stop,
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Stop
        }
    }
}

/// The start-up line's values: what an operator checks first.
struct Summary {
    recipients: String,
    relay: String,
    checks: String,
    metrics: String,
    store: String,
    config: String,
}

impl Summary {
    fn of(config: &Config, source: &crate::config::Source) -> Summary {
        let reply = &config.reply;
        let relay = match (&reply.relay_host, reply.enabled) {
            (_, false) => "off (reply.enabled = false)".to_owned(),
            (Some(host), true) => format!("{host}:{}", reply.relay_port),
            (None, true) => "none: replies wait in the outbox (reply.relay_host)".to_owned(),
        };
        let auth = &config.auth;
        let checks = match (auth.enabled, auth.nameservers.is_empty()) {
            (false, _) => "off".to_owned(),
            (true, true) => "on, nameservers of /etc/resolv.conf".to_owned(),
            (true, false) => format!("on, nameservers {}", auth.nameservers.join(" ")),
        };
        Summary {
            recipients: config.smtp.recipients.join(" "),
            relay,
            checks,
            metrics: if config.metrics.listen.is_empty() {
                "off".to_owned()
            } else {
                config.metrics.listen.clone()
            },
            store: crate::store::Location::parse(&config.store.path).to_string(),
            config: source.to_string(),
        }
    }
}
