//! `longobject.h`: `int`.

use core::ffi::c_ulong;

use crate::PyObject;

unsafe extern "C" {
    /// A new `int`; new reference or NULL with an exception set.
    pub fn PyLong_FromUnsignedLong(v: c_ulong) -> *mut PyObject;
}
