//! What `serve` runs beside intake. So far: the sender checks, which run
//! after a report is stored ([`checks`]), and the heartbeat that renews a
//! node's claims on PostgreSQL ([`lease`]). The server, the worker and its
//! isolation move here with the layout work (DESIGN.md, "Where code lives").

pub mod checks;
pub mod lease;
