//! The one integration-test binary (ripgrep's layout): a real server on port 0,
//! real SQLite files, the real binary for the CLI.

mod cli;
mod golden;
mod hostile;
mod intelmq;
mod pg;
mod postfix;
mod replies;
mod safety;
mod smtp;
mod swaks;
mod tls;
mod util;
