//! The sandbox's CPU clock: what `time.process_time()` reads in the guest.
//!
//! WASI has no CPU clocks, and wasi-libc's emulation counts process time
//! from the start on the monotonic clock, so a `time.sleep(1)` added a
//! second of "CPU time" and code timing itself with `process_time` (as
//! profilers and CPython's own tests do) measured its waits. The guest's
//! code runs only while the host polls its call's future: a sleep, a host
//! function being awaited or a read of the host's stdin leaves the poll
//! (the fiber suspends). So the host counts the time spent inside those
//! polls: as wall time (cheap, two `Instant::now()` a poll) until the guest
//! first asks, then as the polling thread's own CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`, a system call a poll, so that a busy machine
//! does not inflate it). The first answer is the wall time of every poll
//! before it: an upper bound of the CPU time they took.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The reserved host call that reads [`CpuClock::now`], in nanoseconds (a
/// decimal string).
pub(crate) const CPU_CALL: &str = "\0cpu";

/// One sandbox instance's CPU clock (shared by its store data, which
/// answers [`CPU_CALL`], and [`CpuTimed`], which wraps each call).
#[derive(Default)]
pub(crate) struct CpuClock {
    /// Whether polls are measured as thread CPU time (set by the first
    /// reading).
    precise: AtomicBool,
    inner: Mutex<Counted>,
}

#[derive(Default)]
struct Counted {
    /// Time counted in finished polls.
    busy: Duration,
    /// The running poll's start: wall time, or thread CPU time once
    /// precise.
    since: Option<Since>,
}

#[derive(Clone, Copy)]
enum Since {
    Wall(Instant),
    Cpu(Duration),
}

/// The calling thread's CPU time.
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

impl Since {
    fn now(precise: bool) -> Since {
        if precise {
            Since::Cpu(thread_cpu())
        } else {
            Since::Wall(Instant::now())
        }
    }

    /// How long since this start, on its own clock.
    fn elapsed(self) -> Duration {
        match self {
            Since::Wall(at) => at.elapsed(),
            Since::Cpu(at) => thread_cpu().saturating_sub(at),
        }
    }
}

impl CpuClock {
    fn counted(&self) -> std::sync::MutexGuard<'_, Counted> {
        // A panic while holding the lock leaves plain numbers behind.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The guest's CPU time so far, read from inside a poll (a host call);
    /// from now on polls are measured on the thread's CPU clock.
    pub(crate) fn now(&self) -> Duration {
        let mut counted = self.counted();
        if !self.precise.swap(true, Ordering::Relaxed) {
            // The rest of this poll is measured precisely too.
            if let Some(since) = counted.since.take() {
                counted.busy += since.elapsed();
            }
            counted.since = Some(Since::now(true));
        }
        counted.busy + counted.since.map_or(Duration::ZERO, Since::elapsed)
    }

    fn begin_poll(&self) {
        let precise = self.precise.load(Ordering::Relaxed);
        self.counted().since = Some(Since::now(precise));
    }

    fn end_poll(&self) {
        let mut counted = self.counted();
        if let Some(since) = counted.since.take() {
            counted.busy += since.elapsed();
        }
    }
}

/// A guest call whose polls count as the sandbox's CPU time.
pub(crate) struct CpuTimed<F> {
    inner: Pin<Box<F>>,
    clock: Arc<CpuClock>,
}

impl<F> CpuTimed<F> {
    pub(crate) fn new(inner: F, clock: Arc<CpuClock>) -> CpuTimed<F> {
        CpuTimed {
            inner: Box::pin(inner),
            clock,
        }
    }
}

impl<F: Future> Future for CpuTimed<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.clock.begin_poll();
        let result = self.inner.as_mut().poll(cx);
        self.clock.end_poll();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_between_polls_do_not_count_and_work_inside_them_does() {
        let clock = CpuClock::default();
        clock.begin_poll();
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(20) {
            std::hint::black_box(0u64);
        }
        let first = clock.now();
        assert!(first >= Duration::from_millis(19), "{first:?}");
        clock.end_poll();
        // Outside any poll: a wait is not counted.
        std::thread::sleep(Duration::from_millis(50));
        clock.begin_poll();
        let second = clock.now();
        assert!(
            second - first < Duration::from_millis(10),
            "{first:?} {second:?}"
        );
        clock.end_poll();
        // Sleeping inside a poll is not CPU time either once precise.
        clock.begin_poll();
        std::thread::sleep(Duration::from_millis(50));
        clock.end_poll();
        let third = clock.now();
        assert!(
            third - second < Duration::from_millis(10),
            "{second:?} {third:?}"
        );
        assert!(third >= second);
    }
}
