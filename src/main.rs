//! Entry point: parse the command line, set up logging, run, map the outcome
//! to an exit code (0 ok, 1 some input failed, 2 fatal). A closed stdout
//! (`abuse-inbox reports list | head`) is not an error.

use abuse_inbox::cli::{self, Cli, Command};
use abuse_inbox::config::{LogConfig, LogFormat};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Everything this process creates (database, WAL, backups) is the
    // operator's alone, whatever umask it was started with.
    // SAFETY: umask(2) only sets this process's file creation mask.
    unsafe {
        libc::umask(0o077);
    }
    let cli = Cli::parse();
    let config = match cli::settings(&cli.global) {
        Ok(config) => config,
        Err(error) => {
            let json = cli.global.log_format == Some(LogFormat::Json);
            fatal(json, &error.to_string());
            return ExitCode::from(2);
        }
    };
    if cli.global.verbose {
        eprintln!(
            "abuse-inbox: configuration: {}; store: {}",
            cli::config_source(&cli.global),
            abuse_inbox::store::Location::parse(&config.store.path)
        );
    }
    init_logging(&config.log, matches!(cli.command, Command::Serve { .. }));
    let json = config.log.format == LogFormat::Json;
    match cli::run(cli, config) {
        Ok(code) => code,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            fatal(json, &abuse_inbox::describe_error(&error));
            ExitCode::from(2)
        }
    }
}

/// The error that ends the process, on stderr: `abuse-inbox: …`, or under
/// `--log-format json` one JSON line shaped like the log's own, so a log
/// collector reads the last line as it read the others.
fn fatal(json: bool, text: &str) {
    if json {
        let line = serde_json::json!({
            "timestamp": abuse_inbox::now_rfc3339(),
            "level": "ERROR",
            "fields": { "message": text },
            "target": "abuse_inbox",
        });
        eprintln!("{line}");
    } else {
        eprintln!("abuse-inbox: {text}");
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Logs go to stderr; stdout is for data. `RUST_LOG` wins over `log.level`.
/// One-shot commands log warnings only unless asked for more.
fn init_logging(log: &LogConfig, is_daemon: bool) {
    use tracing_subscriber::EnvFilter;
    let default_level = if is_daemon {
        log.level.as_str()
    } else {
        "warn"
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let json = log.format == LogFormat::Json;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Reporter text in a field never reaches the terminal raw.
        .with_writer(abuse_inbox::safe_text::SafeStderr { json })
        // A closed stderr (journald restarted, `| head`) must never cost a
        // session: tracing-subscriber would eprintln! the write error, and
        // eprintln! panics when stderr is gone.
        .log_internal_errors(false)
        // No colour codes: the writer escapes every ESC it is given.
        .with_ansi(false);
    // Under systemd the journal stamps each line itself.
    let under_journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let result = match (json, under_journal) {
        (true, _) => builder.json().try_init(),
        (_, true) => builder.without_time().try_init(),
        _ => builder.try_init(),
    };
    if let Err(error) = result {
        eprintln!("abuse-inbox: logging not set up: {error}");
    }
}
