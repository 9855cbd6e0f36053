//! What leaves the desk for other systems: X-ARF documents ([`xarf`]) and
//! IntelMQ events ([`intelmq`]), with the base64 their payloads use, and
//! the Digital Services Act figures ([`dsa`]).

pub mod base64;
pub mod dsa;
pub mod intelmq;
pub mod xarf;
