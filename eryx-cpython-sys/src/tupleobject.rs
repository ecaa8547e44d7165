//! `tupleobject.h`: `tuple`.

use core::ffi::c_int;

use crate::{Py_ssize_t, PyObject};

unsafe extern "C" {
    /// A new tuple of `len` NULL slots, to be filled with [`PyTuple_SetItem`]; new reference.
    pub fn PyTuple_New(len: Py_ssize_t) -> *mut PyObject;
    /// `t[pos]`, or NULL with `IndexError` set; borrowed reference.
    pub fn PyTuple_GetItem(t: *mut PyObject, pos: Py_ssize_t) -> *mut PyObject;
    /// Stores `o` at `t[pos]`, **stealing** the reference; 0 or -1.
    pub fn PyTuple_SetItem(t: *mut PyObject, pos: Py_ssize_t, o: *mut PyObject) -> c_int;
    /// `len(t)`, or -1 with an exception set.
    pub fn PyTuple_Size(t: *mut PyObject) -> Py_ssize_t;
}
