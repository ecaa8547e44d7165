//! `longobject.h`: `int`.

use core::ffi::c_ulong;

use crate::PyObject;

unsafe extern "C" {
    /// A new `int`; new reference or NULL with an exception set.
    pub fn PyLong_FromUnsignedLong(v: c_ulong) -> *mut PyObject;
    /// A new `int`; new reference or NULL with an exception set.
    pub fn PyLong_FromLongLong(v: core::ffi::c_longlong) -> *mut PyObject;
    /// The value of an `int`, or -1 with an exception set (check [`crate::PyErr_Occurred`]).
    pub fn PyLong_AsLongLong(o: *mut PyObject) -> core::ffi::c_longlong;
}
