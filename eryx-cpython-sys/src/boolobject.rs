//! `boolobject.h`: `bool`.

use core::ffi::c_long;

use crate::PyObject;

unsafe extern "C" {
    /// `True` or `False`; new reference (never fails).
    pub fn PyBool_FromLong(v: c_long) -> *mut PyObject;
}
