//! `ceval.h` and `pystate.h`: pending calls, the GIL state.

use core::ffi::{c_int, c_void};

unsafe extern "C" {
    /// Schedules `func(arg)` to run on the main thread at the interpreter's
    /// next check of its eval breaker (or in [`Py_MakePendingCalls`]); 0 on
    /// success, -1 when the queue is full. Callable without the GIL. `func`
    /// returns 0, or -1 with an exception set, which is raised there.
    pub fn Py_AddPendingCall(func: extern "C" fn(*mut c_void) -> c_int, arg: *mut c_void) -> c_int;
    /// Runs the pending calls now; -1 with an exception set if one failed.
    pub fn Py_MakePendingCalls() -> c_int;
    /// Makes sure the calling thread holds the GIL, with a thread state
    /// attached (a no-op when it does); returns what to pass to
    /// [`PyGILState_Release`]. The interpreter must be initialised.
    pub fn PyGILState_Ensure() -> c_int;
    /// Undoes the matching [`PyGILState_Ensure`].
    pub fn PyGILState_Release(state: c_int);
}
