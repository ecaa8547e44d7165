//! Host functions ("tools") the guest can call, and the output the guest
//! streams to the host while it runs.
//!
//! The guest calls `call-host(name, arguments)` (see `wit/sandbox.wit`);
//! arguments and results cross as JSON text. A call polls the function's
//! future under the function's [`HostFnLimits`]: a time limit, a number of
//! calls per `execute`, a size for arguments and for the result. A panic
//! in the function is contained (it becomes the guest's exception). While
//! the guest waits, other sandboxes run, and the call's own time limit and
//! cancellation still apply (the sandbox drops the whole call, and with it
//! the future). Awaited calls (`start-host-call`) run as tokio tasks, so
//! that several run at once; they are aborted when the execution ends.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::world::HostError;

/// What a host function returns: a JSON value, or an error whose text the
/// guest sees as the message of a `eryx.HostError`.
pub type HostFnResult = Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>>;

type BoxFuture = Pin<Box<dyn Future<Output = HostFnResult> + Send>>;

/// Limits of one host function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFnLimits {
    /// How long one call may take; past it the guest gets
    /// `eryx.HostTimeout` (also a `TimeoutError`). Default 10 s.
    pub timeout: Duration,
    /// Calls per `execute`; past it `eryx.HostLimitExceeded`. Default
    /// 10,000.
    pub max_calls: u32,
    /// Bytes of JSON per call, for the arguments and for the result; past
    /// it `eryx.HostLimitExceeded`. Default 1 MiB.
    pub max_bytes: usize,
}

impl Default for HostFnLimits {
    fn default() -> HostFnLimits {
        HostFnLimits {
            timeout: Duration::from_secs(10),
            max_calls: 10_000,
            max_bytes: 1 << 20,
        }
    }
}

/// One registered function.
#[derive(Clone)]
pub(crate) struct HostFn {
    f: Arc<dyn Fn(serde_json::Value) -> BoxFuture + Send + Sync>,
    limits: HostFnLimits,
}

impl HostFn {
    pub(crate) fn new<F, Fut>(limits: HostFnLimits, f: F) -> HostFn
    where
        F: Fn(serde_json::Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HostFnResult> + Send + 'static,
    {
        HostFn {
            f: Arc::new(move |v| Box::pin(f(v))),
            limits,
        }
    }
}

/// The functions a sandbox offers, by name.
pub(crate) type HostFns = Arc<BTreeMap<String, HostFn>>;

fn error(kind: &str, message: impl Into<String>) -> HostError {
    HostError {
        kind: kind.to_string(),
        message: message.into(),
    }
}

/// Aborts the task when dropped (a call dropped by a timeout or a
/// cancellation must not leave the function running).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the guest's call of `name`. `calls` counts this `execute`'s calls
/// per function.
pub(crate) async fn call(
    fns: &HostFns,
    calls: &mut HashMap<String, u32>,
    name: &str,
    arguments: &str,
) -> Result<String, HostError> {
    let (func, value) = prepare(fns, calls, name, arguments)?;
    run(func, name.to_string(), value).await
}

/// Checks a call (the function exists, call count, argument size and
/// JSON) and returns what [`run`] needs.
fn prepare(
    fns: &HostFns,
    calls: &mut HashMap<String, u32>,
    name: &str,
    arguments: &str,
) -> Result<(HostFn, serde_json::Value), HostError> {
    let Some(func) = fns.get(name) else {
        let known: Vec<&str> = fns.keys().map(String::as_str).collect();
        return Err(error(
            "not-found",
            if known.is_empty() {
                format!("no host function `{name}`: this sandbox was given none")
            } else {
                format!(
                    "no host function `{name}` (this sandbox has: {})",
                    known.join(", ")
                )
            },
        ));
    };
    let limits = &func.limits;
    let count = calls.entry(name.to_string()).or_insert(0);
    if *count >= limits.max_calls {
        return Err(error(
            "limit",
            format!(
                "`{name}` was called more than {} times in one execution",
                limits.max_calls
            ),
        ));
    }
    *count += 1;
    if arguments.len() > limits.max_bytes {
        return Err(error(
            "limit",
            format!(
                "the arguments of `{name}` are {} bytes of JSON, over its limit of {}",
                arguments.len(),
                limits.max_bytes
            ),
        ));
    }
    let value: serde_json::Value = serde_json::from_str(arguments)
        .map_err(|e| error("arguments", format!("the arguments are not JSON: {e}")))?;
    Ok((func.clone(), value))
}

/// Polls a future, turning a panic in it into an error (what a panicking
/// host function becomes for the guest).
struct CatchUnwind(BoxFuture);

impl Future for CatchUnwind {
    type Output = Result<HostFnResult, Box<dyn std::any::Any + Send>>;

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let fut = &mut self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(poll) => poll.map(Ok),
            Err(payload) => std::task::Poll::Ready(Err(payload)),
        }
    }
}

/// Runs a prepared call under its limits: the function's future, polled
/// here (a function that answers at once costs no task switch), with a
/// panic contained, its time limit, the size and JSON of its result.
/// Dropping the call drops the future.
async fn run(func: HostFn, name: String, value: serde_json::Value) -> Result<String, HostError> {
    let name = name.as_str();
    let limits = &func.limits;
    let outcome = match tokio::time::timeout(limits.timeout, CatchUnwind((func.f)(value))).await {
        Err(_) => {
            return Err(error(
                "timeout",
                format!(
                    "`{name}` did not finish within {:.3} s",
                    limits.timeout.as_secs_f64()
                ),
            ));
        }
        Ok(Err(payload)) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string panic".to_string());
            return Err(error(
                "panicked",
                format!("`{name}` panicked in the host: {what}"),
            ));
        }
        Ok(Ok(outcome)) => outcome,
    };
    let value = outcome.map_err(|e| error("failed", e.to_string()))?;
    let text = serde_json::to_string(&value)
        .map_err(|e| error("result", format!("the result of `{name}` is not JSON: {e}")))?;
    if text.len() > limits.max_bytes {
        return Err(error(
            "limit",
            format!(
                "the result of `{name}` is {} bytes of JSON, over its limit of {}",
                text.len(),
                limits.max_bytes
            ),
        ));
    }
    Ok(text)
}

/// Calls started by the guest and not yet collected by it
/// (`start-host-call` / `wait-host-calls`: what lets `asyncio.gather` of
/// host calls run them at once).
pub(crate) struct InFlight {
    next_id: u32,
    /// The running tasks; dropping one aborts it.
    tasks: HashMap<u32, AbortOnDrop>,
    done_tx: tokio::sync::mpsc::UnboundedSender<(u32, Result<String, HostError>)>,
    done_rx: tokio::sync::mpsc::UnboundedReceiver<(u32, Result<String, HostError>)>,
    /// Finished, not yet collected.
    done: HashMap<u32, Result<String, HostError>>,
}

impl Default for InFlight {
    fn default() -> InFlight {
        let (done_tx, done_rx) = tokio::sync::mpsc::unbounded_channel();
        InFlight {
            next_id: 1,
            tasks: HashMap::new(),
            done_tx,
            done_rx,
            done: HashMap::new(),
        }
    }
}

impl InFlight {
    /// Starts a call; its outcome is collected by [`InFlight::wait`].
    pub(crate) fn start(
        &mut self,
        fns: &HostFns,
        calls: &mut HashMap<String, u32>,
        name: &str,
        arguments: &str,
    ) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        match prepare(fns, calls, name, arguments) {
            Err(e) => {
                self.done.insert(id, Err(e));
            }
            Ok((func, value)) => {
                let tx = self.done_tx.clone();
                let name = name.to_string();
                let task = tokio::spawn(async move {
                    let outcome = run(func, name, value).await;
                    let _ = tx.send((id, outcome));
                });
                self.tasks.insert(id, AbortOnDrop(task.abort_handle()));
            }
        }
        id
    }

    /// Waits until one of `ids` has finished (or `timeout`), then returns
    /// every one of them that has.
    pub(crate) async fn wait(
        &mut self,
        ids: &[u32],
        timeout: Option<Duration>,
    ) -> Vec<(u32, Result<String, HostError>)> {
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        loop {
            while let Ok((id, outcome)) = self.done_rx.try_recv() {
                self.tasks.remove(&id);
                self.done.insert(id, outcome);
            }
            let ready: Vec<u32> = ids
                .iter()
                .copied()
                .filter(|id| self.done.contains_key(id))
                .collect();
            // Ids that are neither running nor done: nothing to wait for.
            let waiting = ids.iter().any(|id| self.tasks.contains_key(id));
            if !ready.is_empty() || !waiting {
                return ready
                    .into_iter()
                    .filter_map(|id| self.done.remove(&id).map(|o| (id, o)))
                    .collect();
            }
            let next = match deadline {
                Some(d) => match tokio::time::timeout_at(d, self.done_rx.recv()).await {
                    Ok(next) => next,
                    Err(_) => return Vec::new(),
                },
                None => self.done_rx.recv().await,
            };
            if let Some((id, outcome)) = next {
                self.tasks.remove(&id);
                self.done.insert(id, outcome);
            }
        }
    }
}

/// Which stream a piece of output was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// `sys.stdout`.
    Stdout,
    /// `sys.stderr`.
    Stderr,
}

/// A piece of output, as the guest wrote it (see
/// [`crate::Sandbox::execute_streaming`]). Displays as its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// Where it was written.
    pub stream: Stream,
    /// The text.
    pub text: &'a str,
}

impl std::fmt::Display for Chunk<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text)
    }
}

/// A callback receiving output as it is written.
pub(crate) type Sink = Box<dyn FnMut(Chunk<'_>) + Send>;

/// What the running call has written so far (kept for errors that stop
/// the call), and where to pass it on.
#[derive(Default)]
pub(crate) struct Emitted {
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) sink: Option<Sink>,
    /// Whether the guest's raw output (below `sys.stdout`) is part of it.
    pub(crate) raw: bool,
}

impl Emitted {
    /// Output the guest wrote to a descriptor, not through `sys.stdout`.
    pub(crate) fn push_raw(&mut self, fd: u8, text: &str) {
        self.raw = true;
        self.push(fd, text);
    }

    pub(crate) fn push(&mut self, fd: u8, text: &str) {
        let stream = if fd == 2 {
            Stream::Stderr
        } else {
            Stream::Stdout
        };
        match stream {
            Stream::Stdout => self.stdout.push_str(text),
            Stream::Stderr => self.stderr.push_str(text),
        }
        if let Some(sink) = &mut self.sink {
            sink(Chunk { stream, text });
        }
    }
}
