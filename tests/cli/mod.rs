//! The command line, run as the built binary, one file per family of
//! commands: ingest and reprocess, reports and cases, keeping the store,
//! and serve as a process.

mod admin;
mod import;
mod ingest;
mod notices;
mod owners;
mod reports;
mod serve;

use crate::util::Store;

pub(super) fn db_arg(dir: &tempfile::TempDir) -> String {
    dir.path().join("cli.db").to_str().unwrap().to_owned()
}

/// The store a scenario runs on: a file in `dir`, or a fresh PostgreSQL
/// database; `None` (SKIPPED) when PostgreSQL is not installed.
pub(super) fn db_for(store: Store, dir: &tempfile::TempDir) -> Option<String> {
    match store.location() {
        Ok(None) => Some(db_arg(dir)),
        Ok(Some(url)) => Some(url),
        Err(()) => {
            crate::util::skipped("PostgreSQL is not installed here; .ci/run installs it");
            None
        }
    }
}
