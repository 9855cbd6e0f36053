//! What the daemon runs with: compiled once from a [`Config`] (the TLS
//! acceptor, the pipeline with its rules and feeds, the reply templates,
//! the notice policies)
//! and swapped whole on SIGHUP, so every part of a reload applies at once
//! or not at all. A session, a worker batch and a sender round each take
//! the runtime current when they start and keep it to their end.

use crate::config::Config;
use crate::pipeline::Pipeline;
use crate::reply::Templates;
use std::sync::{Arc, RwLock};

pub struct Runtime {
    pub config: Arc<Config>,
    /// STARTTLS, when a certificate is configured.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub pipeline: Arc<Pipeline>,
    pub templates: Arc<Templates>,
    /// The customer notice policies.
    pub notices: Arc<crate::notices::Policies>,
    /// Signs what we send, when `reply.dkim_key` is set.
    pub dkim: Option<Arc<crate::reply::dkim::Signer>>,
}

/// The desk's DKIM signer, when a key is configured.
fn load_dkim(config: &Config) -> Result<Option<crate::reply::dkim::Signer>, String> {
    let Some(path) = &config.reply.dkim_key else {
        return Ok(None);
    };
    let prefix = |p: String| format!("reply.dkim_key: {}: {p}", path.display());
    let pem = std::fs::read_to_string(path).map_err(|e| prefix(format!("cannot read it: {e}")))?;
    let domain = config.reply.from.rsplit_once('@').map_or("", |(_, d)| d);
    crate::reply::dkim::Signer::new(&pem, domain, config.reply.dkim_selector.trim())
        .map(Some)
        .map_err(prefix)
}

/// The notice policies the configuration names: its file's, or the built-in ones.
fn load_notices(config: &Config) -> Result<crate::notices::Policies, Vec<String>> {
    let prefix = |p: String| format!("notices.file: {p}");
    match &config.notices.file {
        None => Ok(crate::notices::Policies::builtin()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| vec![prefix(format!("cannot read {}: {e}", path.display()))])?;
            crate::notices::Policies::parse(&text)
                .map_err(|problems| problems.into_iter().map(prefix).collect())
        }
    }
}

impl Runtime {
    /// Checks `config` and compiles what it names.
    ///
    /// # Errors
    /// Every problem, by key: the configuration's own, a certificate or
    /// key that does not load, rules, feeds or templates that do not
    /// compile.
    pub fn compile(config: Config) -> Result<Runtime, Vec<String>> {
        let mut problems = config.problems();
        let tls = crate::smtp::tls::acceptor(&config.tls)
            .map_err(|p| problems.push(p))
            .ok()
            .flatten();
        let pipeline = Pipeline::new(&config).map_err(|p| problems.extend(p)).ok();
        // Checking the rules compiles them whole once, then drops them (the
        // daemon does not classify): give those pages back rather than keep
        // them in the allocator's free lists.
        return_freed_memory();
        let templates = Templates::load(config.reply.templates_dir.as_deref())
            .map_err(|p| problems.push(format!("reply.templates_dir: {p}")))
            .ok();
        let notices = load_notices(&config).map_err(|p| problems.extend(p)).ok();
        let dkim = load_dkim(&config).map_err(|p| problems.push(p));
        match (pipeline, templates, notices, dkim) {
            (Some(pipeline), Some(templates), Some(notices), Ok(dkim)) if problems.is_empty() => {
                Ok(Runtime {
                    config: Arc::new(config),
                    tls,
                    pipeline: Arc::new(pipeline),
                    templates: Arc::new(templates),
                    notices: Arc::new(notices),
                    dkim: dkim.map(Arc::new),
                })
            }
            _ => Err(problems),
        }
    }
}

/// The runtime in use, swapped whole on reload.
#[derive(Clone)]
pub struct SharedRuntime(Arc<RwLock<Arc<Runtime>>>);

impl SharedRuntime {
    pub fn new(runtime: Runtime) -> SharedRuntime {
        SharedRuntime(Arc::new(RwLock::new(Arc::new(runtime))))
    }

    /// The runtime now; a reload does not change what it returned.
    pub fn current(&self) -> Arc<Runtime> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// From now on, `runtime`.
    pub fn swap(&self, runtime: Runtime) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(runtime);
    }
}

/// Returns the heap's free pages to the system (glibc keeps them): after
/// a large passing allocation (compiling the rules, an Argon2 hash).
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator; it
    // touches nothing the program holds.
    unsafe {
        libc::malloc_trim(0);
    }
}
