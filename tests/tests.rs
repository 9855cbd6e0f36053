//! The one integration-test binary (ripgrep's layout): a real server on port 0,
//! real SQLite files, the real binary for the CLI.

/// A scenario as two tests: the daemon on SQLite, and on PostgreSQL.
macro_rules! on_both_stores {
    ($name:ident, $on_postgres:ident, $scenario:ident) => {
        #[tokio::test(flavor = "multi_thread")]
        async fn $name() {
            $scenario(crate::util::Store::Sqlite).await
        }

        #[tokio::test(flavor = "multi_thread")]
        async fn $on_postgres() {
            $scenario(crate::util::Store::Postgres).await
        }
    };
}

/// The same for a test without a runtime.
macro_rules! on_both_stores_sync {
    ($name:ident, $on_postgres:ident, $scenario:ident) => {
        #[test]
        fn $name() {
            $scenario(crate::util::Store::Sqlite)
        }

        #[test]
        fn $on_postgres() {
            $scenario(crate::util::Store::Postgres)
        }
    };
}

mod cli;
mod golden;
mod hostile;
mod intelmq;
mod layers;
mod pg;
mod postfix;
mod readme;
mod replies;
mod safety;
mod smtp;
mod swaks;
mod tls;
mod util;
