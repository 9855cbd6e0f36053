//! Customer notices: when a customer is told about the reports on their
//! case, reminded, escalated and closed, what the notice says, and what
//! their answer means.
//!
//! In: the notice policies (`config/notices.toml`, or `notices.file`), what
//! the store read of a case, the time a clock gave. Out: the steps due
//! ([`schedule::due`]), the notice's text and CSV ([`compose::write`]), the
//! status an answer states ([`answer::status`]). Pure.

pub mod answer;
pub mod compose;
pub mod policy;
pub mod schedule;

pub use policy::{Policies, Policy};
