//! `bytesobject.h`: `bytes`.

use core::ffi::{c_char, c_int};

use crate::{Py_ssize_t, PyObject};

unsafe extern "C" {
    /// A new `bytes` copied from `v[..len]`; new reference.
    pub fn PyBytes_FromStringAndSize(v: *const c_char, len: Py_ssize_t) -> *mut PyObject;
    /// Points `*buffer`/`*length` at the object's internal bytes (valid while
    /// the object lives); 0, or -1 with an exception set.
    pub fn PyBytes_AsStringAndSize(
        obj: *mut PyObject,
        buffer: *mut *mut c_char,
        length: *mut Py_ssize_t,
    ) -> c_int;
}
