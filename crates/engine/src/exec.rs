//! The execution resources of an [`crate::Engine`]: the tokio runtime DataFusion runs on and the
//! rayon pool of the event scan and the models, built once and shared by every call, and the
//! cancellation token of the call at hand.

use std::path::PathBuf;
use std::sync::Arc;

use segmenta_core::Cancel;

use crate::error::{Error, Result};

/// The runtime and worker threads of an engine.
#[derive(Debug)]
pub(crate) struct Exec {
    /// Always `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
    pool: Arc<rayon::ThreadPool>,
    threads: usize,
}

impl Exec {
    /// A runtime and a pool of `threads` workers each (default: every core).
    pub(crate) fn new(threads: Option<usize>) -> Result<Exec> {
        let threads = threads
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("segmenta-query")
            .enable_all()
            .build()
            .map_err(|source| Error::Io { path: PathBuf::from("<tokio runtime>"), source })?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("segmenta-worker-{i}"))
            .build()
            .map_err(|e| Error::Internal(format!("cannot start the worker threads: {e}")))?;
        Ok(Exec { runtime: Some(runtime), pool: Arc::new(pool), threads })
    }

    /// The number of worker threads.
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// The worker pool.
    pub(crate) fn pool(&self) -> &Arc<rayon::ThreadPool> {
        &self.pool
    }

    /// Runs a future to completion on the runtime.
    pub(crate) fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.as_ref().expect("the runtime lives as long as the engine").block_on(future)
    }

    /// Runs `work` on the worker pool (models' rayon loops use it).
    pub(crate) fn install<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        self.pool.install(work)
    }
}

impl Drop for Exec {
    /// Without waiting for the runtime's threads: an engine may be dropped on an async thread
    /// (a server's state at shutdown), where a blocking shutdown of a runtime panics.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Stops with [`Error::Cancelled`] when `cancel` was cancelled.
pub(crate) fn check_cancelled(cancel: &Cancel) -> Result<()> {
    if cancel.is_cancelled() { Err(Error::Cancelled) } else { Ok(()) }
}
