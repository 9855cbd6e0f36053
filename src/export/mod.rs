//! What leaves the desk for other systems: X-ARF documents ([`xarf`]) and
//! IntelMQ events ([`intelmq`]), with the base64 their payloads use.

pub mod base64;
pub mod intelmq;
pub mod xarf;
