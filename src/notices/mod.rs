//! Customer notices: when a customer is told about the reports on their
//! case, reminded, escalated and closed.
//!
//! In: the notice policies (`config/notices.toml`, or `notices.file`).
//! Out: the [`policy::Policy`] a case follows. Pure.

pub mod policy;

pub use policy::{Policies, Policy};
