//! This process's standard input as a guest's stdin
//! ([`crate::SandboxBuilder::inherit_stdin`]).
//!
//! wasmtime-wasi's own reader of the process's stdin starts a blocking
//! `read` on a helper thread as soon as the guest asks for input, and that
//! read stays in flight when the call ends without input (a time limit, a
//! cancellation): the next line typed then goes to it, not to whoever reads
//! stdin next (the CLI's REPL prompt). This reader waits for input with
//! `poll` and reads only what is already there, so a call that ends while
//! waiting leaves nothing behind: no read in flight, no byte taken.
//!
//! Every sandbox of the process reads the one descriptor 0; bytes go to
//! whichever reads first. Something else in the process blocking on
//! descriptor 0 at the same time can take the bytes a `poll` announced:
//! reads are non-blocking in effect only while eryx is its only reader.

use std::io;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::task::JoinHandle;
use wasmtime_wasi::cli::{IsTerminal, StdinStream};
use wasmtime_wasi::p2::{InputStream, Pollable, StreamError, StreamResult};

/// How long one wait for input holds a helper thread before it looks
/// again: a wait whose call has ended is gone within this.
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// The most one read takes (wasmtime-wasi's own cap for stdin).
const MAX_READ: usize = 64 * 1024;

/// Serialises "is there input? then read it" across every stream of this
/// process, so that two of them never both read after one `poll`.
static READER: Mutex<()> = Mutex::new(());

/// The process's stdin, given to a sandbox's WASI context.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HostStdin;

impl IsTerminal for HostStdin {
    fn is_terminal(&self) -> bool {
        io::IsTerminal::is_terminal(&io::stdin())
    }
}

impl StdinStream for HostStdin {
    fn async_stream(&self) -> Box<dyn AsyncRead + Send + Sync> {
        Box::new(AsyncHostStdin { wait: None })
    }

    fn p2_stream(&self) -> Box<dyn InputStream> {
        Box::new(HostStdinStream)
    }
}

/// What descriptor 0 has for a reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Readiness {
    /// Bytes, end of file or an error: a read returns at once.
    Ready,
    /// The descriptor is not open: end of file for the guest.
    Closed,
    /// Nothing yet.
    Waiting,
}

/// Polls descriptor 0 for up to `timeout`.
fn readiness(timeout: Duration) -> Readiness {
    let stdin = io::stdin();
    let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
    let timeout = Timespec {
        tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: timeout.subsec_nanos().into(),
    };
    match rustix::event::poll(&mut fds, Some(&timeout)) {
        Ok(0) | Err(Errno::INTR) => Readiness::Waiting,
        Ok(_) if fds[0].revents().contains(PollFlags::NVAL) => Readiness::Closed,
        // IN, HUP or ERR: the read reports which.
        Ok(_) => Readiness::Ready,
        // Let the read report it.
        Err(_) => Readiness::Ready,
    }
}

/// One read of what is there now, up to `size` bytes.
enum Got {
    Bytes(Bytes),
    Nothing,
    End,
}

fn read_now(size: usize) -> io::Result<Got> {
    let _only_reader = READER.lock().unwrap_or_else(PoisonError::into_inner);
    match readiness(Duration::ZERO) {
        Readiness::Waiting => return Ok(Got::Nothing),
        Readiness::Closed => return Ok(Got::End),
        Readiness::Ready => {}
    }
    let mut buf = vec![0; size.clamp(1, MAX_READ)];
    match rustix::io::read(io::stdin(), &mut buf[..]) {
        Ok(0) => Ok(Got::End),
        Ok(n) => {
            buf.truncate(n);
            Ok(Got::Bytes(buf.into()))
        }
        Err(Errno::INTR | Errno::AGAIN) => Ok(Got::Nothing),
        Err(e) => Err(e.into()),
    }
}

/// Waits until descriptor 0 has something for a reader, a slice at a time
/// on tokio's blocking pool (dropping this future leaves at most one
/// `poll` of one slice running, never a read).
async fn until_ready() {
    loop {
        if readiness(Duration::ZERO) != Readiness::Waiting {
            return;
        }
        match tokio::task::spawn_blocking(|| readiness(WAIT_SLICE)).await {
            Ok(Readiness::Waiting) => {}
            _ => return,
        }
    }
}

/// A WASI 0.2 `input-stream` on the process's stdin.
struct HostStdinStream;

#[wasmtime_wasi::async_trait]
impl InputStream for HostStdinStream {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if size == 0 {
            return Ok(Bytes::new());
        }
        // End of file closes only this read: on a terminal, input can
        // follow a Ctrl-D (as `input()` in python3's REPL sees).
        match read_now(size) {
            Ok(Got::Bytes(bytes)) => Ok(bytes),
            Ok(Got::Nothing) => Ok(Bytes::new()),
            Ok(Got::End) => Err(StreamError::Closed),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(StreamError::Closed),
            Err(e) => Err(StreamError::LastOperationFailed(e.into())),
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for HostStdinStream {
    async fn ready(&mut self) {
        until_ready().await;
    }
}

/// The same for WASI 0.3's streams (tokio's `AsyncRead`).
struct AsyncHostStdin {
    /// A slice of waiting on the blocking pool, while there is one.
    wait: Option<JoinHandle<Readiness>>,
}

impl AsyncRead for AsyncHostStdin {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if let Some(wait) = &mut self.wait {
                // A failed wait (its task panicked) only means: look again.
                let _ = std::task::ready!(Pin::new(wait).poll(cx));
                self.wait = None;
            }
            match read_now(buf.remaining())? {
                Got::Bytes(bytes) => {
                    buf.put_slice(&bytes);
                    return Poll::Ready(Ok(()));
                }
                Got::End => return Poll::Ready(Ok(())),
                Got::Nothing => {
                    self.wait = Some(tokio::task::spawn_blocking(|| readiness(WAIT_SLICE)));
                }
            }
        }
    }
}
