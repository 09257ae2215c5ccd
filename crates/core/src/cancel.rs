//! Cooperative cancellation of long work (a run, a backfill, a discovery): whoever started the
//! work keeps a clone of the [`Cancel`] token and calls [`Cancel::cancel`]; the work checks
//! [`Cancel::is_cancelled`] between stages and between units of a scan, and stops cleanly
//! (nothing half-written: the store writes a run folder only after the evaluation finished).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A cancellation token shared between the caller and the work. Cloning shares the flag.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A token that is not cancelled.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks the work to stop at its next check.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// True once [`Cancel::cancel`] was called on this token or a clone of it.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_flag() {
        let token = Cancel::new();
        let worker = token.clone();
        assert!(!worker.is_cancelled());
        token.cancel();
        assert!(worker.is_cancelled());
    }
}
