//! `pthread_cond_wait` for libpython and extension modules: a wait that can
//! never end becomes a Python `RuntimeError` instead of a trap.
//!
//! The guest has one thread. A wait without a timeout on a lock that is
//! held (`lock.acquire()` twice, `queue.Queue().get()` on an empty queue, a
//! `Condition.wait()` nothing will notify) parks in libpython's parking lot,
//! which ends in `pthread_cond_wait`; wasi-libc's single-threaded build
//! traps there (`unreachable`), and the host could only report a trap and
//! reset the session. This `pthread_cond_wait`, which callers reach before
//! libc's (the runtime is the first library linked), instead schedules a
//! pending call that raises `RuntimeError` and returns as a spurious wakeup
//! would. A Python-level lock acquisition handles pending calls when its
//! park is interrupted (`_PY_LOCK_HANDLE_SIGNALS`), so the error is raised
//! from the `acquire()` (and from the `Condition.wait`, `queue.get`, ...
//! that called it), with the user's traceback, and the session lives on.
//! A waiter that does not handle pending calls (a lock taken inside C code)
//! parks again at once: that second call, with the error still pending,
//! traps as libc's would, since that wait cannot end either.

#[cfg(target_arch = "wasm32")]
mod imp {
    use core::ffi::{c_int, c_void};
    use core::sync::atomic::{AtomicBool, Ordering};

    use eryx_cpython_sys as ffi;

    /// A deadlock error is scheduled and has not been raised yet.
    static PENDING: AtomicBool = AtomicBool::new(false);

    /// The pending call: raises the deadlock error.
    extern "C" fn raise_deadlock(_: *mut c_void) -> c_int {
        PENDING.store(false, Ordering::Relaxed);
        // SAFETY: pending calls run on the main thread with the GIL held;
        // the exception type is CPython's static `RuntimeError` and the
        // message a NUL-terminated literal.
        unsafe {
            ffi::PyErr_SetString(
                ffi::PyExc_RuntimeError,
                c"deadlock: this wait could never end: the sandbox runs Python on one thread (WASI has no threads), so nothing can release the lock or notify the condition it waits for; release it first, or wait with a timeout".as_ptr(),
            );
        }
        -1
    }

    /// POSIX `pthread_cond_wait` on one thread: nothing can signal `cond`.
    /// Schedules the deadlock error and returns 0 (a spurious wakeup, which
    /// callers must expect), with `mutex` still held as POSIX requires.
    ///
    /// # Safety
    /// As `pthread_cond_wait(3)`; neither pointer is read.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn pthread_cond_wait(_cond: *mut c_void, _mutex: *mut c_void) -> c_int {
        if PENDING.swap(true, Ordering::Relaxed) {
            // The waiter did not run the pending call: it waits again, and
            // forever. Trap, as wasi-libc does.
            core::arch::wasm32::unreachable();
        }
        // SAFETY: callable without the GIL (the parking lot has released
        // it); `raise_deadlock` takes no argument.
        if unsafe { ffi::Py_AddPendingCall(raise_deadlock, core::ptr::null_mut()) } != 0 {
            core::arch::wasm32::unreachable();
        }
        0
    }
}
