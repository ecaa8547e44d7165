//! `pylifecycle.h`: starting the interpreter (see also [`crate::cpython::initconfig`]).

unsafe extern "C" {
    /// Whether the interpreter is initialized (non-zero) or not.
    pub fn Py_IsInitialized() -> core::ffi::c_int;
}
