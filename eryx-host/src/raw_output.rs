//! The guest's raw stdout and stderr: what is written to descriptors 1 and 2
//! below `sys.stdout`/`sys.stderr` (`os.write(1, ...)`, C code's `printf`
//! and `fprintf(stderr, ...)`, `faulthandler`, CPython's fatal errors).
//!
//! Python-level output goes to the host through the `emit-output` import;
//! this output arrives through WASI's stdout and stderr streams instead. It
//! is decoded (UTF-8, invalid bytes replaced, a character split across two
//! writes kept whole) and queued here; the host merges the queue into the
//! call's output before each `emit-output` and when the call ends, so both
//! kinds appear in the order the guest wrote them (the guest is one thread:
//! a queued write always came before the emit that drains it).
//!
//! Each call may queue at most its output limit in characters per stream
//! (what is cut is reported as truncation); the last [`STDERR_TAIL`] bytes
//! written to descriptor 2 are also kept for error messages (a trap's, a
//! failed start-up's).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// How much of descriptor 2's latest output is kept for error messages.
pub(crate) const STDERR_TAIL: usize = 64 * 1024;

/// What a stream may queue before a call sets its limit (a store's
/// start-up, a pre-initialisation): nothing drains it then.
const LIMIT_OUTSIDE_CALLS: usize = 64 * 1024;

#[derive(Debug)]
struct Shared {
    /// Trailing bytes of an incomplete UTF-8 character, per stream.
    pending: [Vec<u8>; 2],
    /// Decoded text not yet merged into the call's output: (fd, text).
    queue: Vec<(u8, String)>,
    /// Characters queued in the running call, per stream.
    queued_chars: [usize; 2],
    /// The running call's limit in characters, per stream.
    limit: usize,
    /// Whether the running call's raw output was cut at the limit.
    truncated: bool,
    /// The latest bytes written to descriptor 2 (a ring: a flood of small
    /// writes drops from the front without moving the rest).
    stderr_tail: VecDeque<u8>,
}

impl Default for Shared {
    fn default() -> Shared {
        Shared {
            pending: [Vec::new(), Vec::new()],
            queue: Vec::new(),
            queued_chars: [0, 0],
            limit: LIMIT_OUTSIDE_CALLS,
            truncated: false,
            stderr_tail: VecDeque::new(),
        }
    }
}

impl Shared {
    fn write(&mut self, fd: u8, bytes: &[u8]) {
        let index = usize::from(fd == 2);
        if fd == 2 {
            self.stderr_tail.extend(bytes);
            let excess = self.stderr_tail.len().saturating_sub(STDERR_TAIL);
            self.stderr_tail.drain(..excess);
        }
        let mut buf = std::mem::take(&mut self.pending[index]);
        buf.extend_from_slice(bytes);
        let (text, rest) = decode(&buf);
        self.pending[index] = rest.to_vec();
        if text.is_empty() {
            return;
        }
        let room = self.limit.saturating_sub(self.queued_chars[index]);
        let count = text.chars().count();
        let kept: String = if count > room {
            self.truncated = true;
            text.chars().take(room).collect()
        } else {
            text
        };
        if kept.is_empty() {
            return;
        }
        self.queued_chars[index] += kept.chars().count();
        match self.queue.last_mut() {
            Some((last, t)) if *last == fd => t.push_str(&kept),
            _ => self.queue.push((fd, kept)),
        }
    }
}

/// The longest decodable prefix of `buf` as text (invalid sequences
/// replaced by U+FFFD) and the incomplete character at its end, if any.
fn decode(buf: &[u8]) -> (String, &[u8]) {
    let mut text = String::new();
    let mut rest = buf;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                text.push_str(s);
                return (text, &[]);
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                // The first `valid_up_to` bytes are valid UTF-8.
                text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                match e.error_len() {
                    Some(len) => {
                        text.push('\u{FFFD}');
                        rest = &after[len..];
                    }
                    // An incomplete character at the end: kept for the next write.
                    None => return (text, after),
                }
            }
        }
    }
}

/// The host's side of a store's raw output: made with the store, read by
/// the sandbox.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawOutput {
    shared: Arc<Mutex<Shared>>,
}

impl RawOutput {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding the lock cannot leave `Shared` invalid.
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The WASI stream for descriptor `fd` (1 or 2).
    pub(crate) fn stream(&self, fd: u8) -> RawStream {
        RawStream {
            fd,
            output: self.clone(),
        }
    }

    /// Queues `bytes` written to descriptor `fd` (1 or 2) by other means
    /// than its stream (`pwrite` on `/dev/stdout`).
    pub(crate) fn write(&self, fd: u8, bytes: &[u8]) {
        self.lock().write(fd, bytes);
    }

    /// Starts a call that may write `limit` characters per stream; what an
    /// earlier call or the start-up left queued is dropped.
    pub(crate) fn begin_call(&self, limit: usize) {
        let mut s = self.lock();
        s.queue.clear();
        s.queued_chars = [0, 0];
        s.limit = limit;
        s.truncated = false;
    }

    /// Takes what was written since the last call of this, in order.
    pub(crate) fn drain(&self) -> Vec<(u8, String)> {
        std::mem::take(&mut self.lock().queue)
    }

    /// Whether the running call's raw output was cut at its limit.
    pub(crate) fn truncated(&self) -> bool {
        self.lock().truncated
    }

    /// The latest output to descriptor 2, lossily decoded.
    pub(crate) fn stderr_tail(&self) -> String {
        let mut s = self.lock();
        String::from_utf8_lossy(s.stderr_tail.make_contiguous()).into_owned()
    }
}

/// One of the guest's raw output streams.
#[derive(Debug, Clone)]
pub(crate) struct RawStream {
    fd: u8,
    output: RawOutput,
}

impl IsTerminal for RawStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for RawStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for RawStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.output.lock().write(self.fd, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always ready: what is over the limit is dropped, not refused.
        Ok(1024 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for RawStream {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for RawStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.output.lock().write(self.fd, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_decoded_in_order_with_split_characters_kept_whole() {
        let raw = RawOutput::default();
        raw.begin_call(100);
        let (mut out, mut err) = (raw.stream(1), raw.stream(2));
        let e_acute = "é".as_bytes();
        OutputStream::write(&mut out, Bytes::from_static(b"a")).unwrap();
        OutputStream::write(&mut out, Bytes::copy_from_slice(&e_acute[..1])).unwrap();
        OutputStream::write(&mut err, Bytes::from_static(b"E")).unwrap();
        OutputStream::write(&mut out, Bytes::copy_from_slice(&e_acute[1..])).unwrap();
        OutputStream::write(&mut out, Bytes::from_static(b"\xffz")).unwrap();
        assert_eq!(
            raw.drain(),
            vec![
                (1, "a".to_string()),
                (2, "E".to_string()),
                (1, "é\u{FFFD}z".to_string())
            ]
        );
        assert!(raw.drain().is_empty());
        assert_eq!(raw.stderr_tail(), "E");
    }

    #[test]
    fn a_call_queues_at_most_its_limit_per_stream() {
        let raw = RawOutput::default();
        raw.begin_call(3);
        let mut out = raw.stream(1);
        OutputStream::write(&mut out, Bytes::from_static(b"abcdef")).unwrap();
        OutputStream::write(&mut out, Bytes::from_static(b"gh")).unwrap();
        assert_eq!(raw.drain(), vec![(1, "abc".to_string())]);
        assert!(raw.truncated());
        raw.begin_call(3);
        assert!(!raw.truncated());
        OutputStream::write(&mut out, Bytes::from_static(b"xy")).unwrap();
        assert_eq!(raw.drain(), vec![(1, "xy".to_string())]);
    }

    #[test]
    fn the_stderr_tail_keeps_the_latest_bytes() {
        let raw = RawOutput::default();
        let mut err = raw.stream(2);
        OutputStream::write(&mut err, Bytes::from(vec![b'a'; STDERR_TAIL])).unwrap();
        OutputStream::write(&mut err, Bytes::from_static(b"fatal")).unwrap();
        let tail = raw.stderr_tail();
        assert_eq!(tail.len(), STDERR_TAIL);
        assert!(tail.ends_with("afatal"), "{}", &tail[tail.len() - 10..]);
    }
}
