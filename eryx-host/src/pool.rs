//! A pool of ready sandboxes, for servers that hand a fresh sandbox to each
//! request.
//!
//! Making a sandbox from a prepared component costs an instantiation plus
//! CPython start-up (or, pre-initialised, a first call that faults in the
//! pages and function references it touches); the pool does that ahead of
//! time, in the background, with a warm-up call that leaves no trace in the
//! session, so [`SandboxPool::get`] usually returns at once and the first
//! call costs what a later one does. Sandboxes are never
//! returned to the pool or reused: each caller gets one no other code ran in.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::{Error, Sandbox, SandboxBuilder};

/// Keeps up to `size` started sandboxes ready, all made by one builder.
///
/// ```no_run
/// # async fn serve() -> Result<(), eryx_host::Error> {
/// use eryx_host::{Sandbox, SandboxPool};
///
/// let pool = SandboxPool::new(Sandbox::builder().bundle("target/dist"), 4).await?;
/// let mut sandbox = pool.get().await?; // ready: Python already started
/// sandbox.execute("print('hello')").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SandboxPool {
    inner: Arc<Inner>,
}

struct Inner {
    builder: SandboxBuilder,
    size: usize,
    ready: Mutex<VecDeque<Sandbox>>,
    /// Refills started and not finished.
    filling: Mutex<usize>,
    refilled: Notify,
}

impl std::fmt::Debug for SandboxPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxPool")
            .field("size", &self.inner.size)
            .field("ready", &self.ready())
            .finish_non_exhaustive()
    }
}

impl SandboxPool {
    /// Makes a pool and its first sandbox (so that a bad bundle, package or
    /// cache fails here, not in a background task), then fills the rest in
    /// the background. Needs a Tokio runtime.
    pub async fn new(builder: SandboxBuilder, size: usize) -> Result<SandboxPool, Error> {
        let size = size.max(1);
        let mut first = builder.clone().build().await?;
        // Best effort: a warm-up cut short (a tiny time limit, say) leaves
        // a sandbox that works, only without the head start.
        let _ = first.warm_up().await;
        let pool = SandboxPool {
            inner: Arc::new(Inner {
                builder,
                size,
                ready: Mutex::new(VecDeque::from([first])),
                filling: Mutex::new(0),
                refilled: Notify::new(),
            }),
        };
        pool.refill();
        Ok(pool)
    }

    /// How many sandboxes are ready now.
    pub fn ready(&self) -> usize {
        self.inner.lock_ready().len()
    }

    /// A ready sandbox if there is one, else a new one made now; either way
    /// the pool starts making a replacement in the background.
    pub async fn get(&self) -> Result<Sandbox, Error> {
        let ready = self.inner.lock_ready().pop_front();
        self.refill();
        match ready {
            Some(sandbox) => Ok(sandbox),
            None => self.inner.builder.clone().build().await,
        }
    }

    /// Waits until the pool is full (e.g. before a benchmark or after start).
    pub async fn filled(&self) {
        loop {
            let notified = self.inner.refilled.notified();
            let idle = *self.inner.filling.lock().unwrap_or_else(|e| e.into_inner()) == 0;
            if idle {
                return;
            }
            notified.await;
        }
    }

    /// Starts background builds for the missing sandboxes.
    fn refill(&self) {
        let missing = {
            let mut filling = self.inner.filling.lock().unwrap_or_else(|e| e.into_inner());
            let have = self.inner.lock_ready().len() + *filling;
            let missing = self.inner.size.saturating_sub(have);
            *filling += missing;
            missing
        };
        for _ in 0..missing {
            let inner = self.inner.clone();
            tokio::spawn(async move {
                // A failed background build leaves a gap that `get` fills
                // by building in the foreground, where the error surfaces.
                if let Ok(mut sandbox) = inner.builder.clone().build().await {
                    let _ = sandbox.warm_up().await;
                    inner.lock_ready().push_back(sandbox);
                }
                *inner.filling.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
                inner.refilled.notify_waiters();
            });
        }
    }
}

impl Inner {
    fn lock_ready(&self) -> std::sync::MutexGuard<'_, VecDeque<Sandbox>> {
        self.ready.lock().unwrap_or_else(|e| e.into_inner())
    }
}
