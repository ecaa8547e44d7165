//! `pyerrors.h`: the error indicator.

use crate::PyObject;

unsafe extern "C" {
    /// The current exception, or NULL; borrowed reference.
    pub fn PyErr_Occurred() -> *mut PyObject;
    /// Clears the error indicator.
    pub fn PyErr_Clear();
    /// Takes the current exception out of the error indicator; new reference
    /// or NULL if none is set.
    pub fn PyErr_GetRaisedException() -> *mut PyObject;
    /// Sets an exception of type `exc` with a message.
    pub fn PyErr_SetString(exc: *mut PyObject, msg: *const core::ffi::c_char);
    /// `OverflowError`
    pub static mut PyExc_OverflowError: *mut PyObject;
    /// `ValueError`
    pub static mut PyExc_ValueError: *mut PyObject;
    /// `TypeError`
    pub static mut PyExc_TypeError: *mut PyObject;
    /// `RuntimeError`
    pub static mut PyExc_RuntimeError: *mut PyObject;

    /// Prints the current exception to `sys.stderr` and clears it.
    pub fn PyErr_Print();
}
