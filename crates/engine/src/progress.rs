//! How long-running work shows its progress: the CLI draws spinners and bars, a server records it
//! for `GET /runs/{id}`; the engine only calls these hooks.

/// Hooks for showing progress of the long steps.
pub trait Progress: Sync {
    /// A step starts.
    fn step(&self, message: &str);
    /// The current step is done.
    fn done(&self);
    /// How far a step with a known size is: `done` of `total` units. Default: nothing.
    fn position(&self, _step: &str, _done: u64, _total: u64) {}
}

/// Shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn step(&self, _message: &str) {}
    fn done(&self) {}
}
