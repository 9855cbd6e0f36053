//! The daemon-wide budget of DATA bytes held in memory.
//!
//! In: reservations by sessions as their message grows. Out: a yes or no,
//! never a wait: a session that cannot reserve stops keeping its message
//! (and answers `452 4.3.1` at its end) instead of holding memory the daemon
//! does not have. A [`Reservation`] gives its bytes back when dropped, which
//! is after the message's commit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Room a new message needs to start: one reservation step.
pub const MIN_START_BYTES: u64 = 256 * 1024;

/// Bytes held by all sessions, against a maximum.
#[derive(Debug)]
pub struct DataBudget {
    used: AtomicU64,
    max: u64,
}

impl DataBudget {
    pub fn new(max: u64) -> Arc<DataBudget> {
        Arc::new(DataBudget {
            used: AtomicU64::new(0),
            max,
        })
    }

    /// Bytes not reserved now.
    pub fn available(&self) -> u64 {
        self.max.saturating_sub(self.used.load(Ordering::Acquire))
    }

    fn try_take(&self, bytes: u64) -> bool {
        let mut used = self.used.load(Ordering::Acquire);
        loop {
            let Some(next) = used.checked_add(bytes).filter(|&n| n <= self.max) else {
                return false;
            };
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    crate::metrics::get().data_bytes_in_flight.set(next as i64);
                    return true;
                }
                Err(now) => used = now,
            }
        }
    }

    fn give_back(&self, bytes: u64) {
        let before = self.used.fetch_sub(bytes, Ordering::AcqRel);
        crate::metrics::get()
            .data_bytes_in_flight
            .set(before.saturating_sub(bytes) as i64);
    }
}

/// Bytes one session holds; returned to the budget when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<DataBudget>,
    bytes: u64,
}

impl Reservation {
    pub fn new(budget: &Arc<DataBudget>) -> Reservation {
        Reservation {
            budget: budget.clone(),
            bytes: 0,
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Grows the reservation by `more` bytes; `false` (and nothing taken)
    /// when the budget does not have them.
    pub fn grow(&mut self, more: u64) -> bool {
        let taken = self.budget.try_take(more);
        if taken {
            self.bytes += more;
        }
        taken
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.give_back(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_stop_at_the_maximum_and_give_back_on_drop() {
        let budget = DataBudget::new(100);
        let mut a = Reservation::new(&budget);
        let mut b = Reservation::new(&budget);
        assert!(a.grow(60));
        assert!(!b.grow(41));
        assert!(b.grow(40));
        assert_eq!(budget.available(), 0);
        drop(a);
        assert_eq!(budget.available(), 60);
        assert_eq!(b.bytes(), 40);
    }
}
