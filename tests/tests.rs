//! The one integration-test binary (ripgrep's layout): a real server on port 0,
//! real SQLite files, the real binary for the CLI.

/// A scenario as two tests, `NAME::sqlite` and `NAME::postgres`: the
/// function `NAME(store)` run on each store (a module and a function may
/// share a name).
macro_rules! on_both_stores {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                super::$scenario(crate::util::Store::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                super::$scenario(crate::util::Store::Postgres).await
            }
        }
    };
}

/// The same for a test without a runtime.
macro_rules! on_both_stores_sync {
    ($scenario:ident) => {
        mod $scenario {
            #[test]
            fn sqlite() {
                super::$scenario(crate::util::Store::Sqlite)
            }

            #[test]
            fn postgres() {
                super::$scenario(crate::util::Store::Postgres)
            }
        }
    };
}

mod cli;
mod golden;
mod hostile;
mod imap;
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
mod web;
