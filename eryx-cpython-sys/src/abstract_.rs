//! `abstract.h`: the abstract object protocol (calls).

use core::ffi::c_char;

use crate::{Py_ssize_t, PyObject};

unsafe extern "C" {
    /// `callable(*args)` where `args` is a tuple or NULL; new reference or
    /// NULL with an exception set.
    pub fn PyObject_CallObject(callable: *mut PyObject, args: *mut PyObject) -> *mut PyObject;
    /// `callable(*args)`, the arguments built from `format` as
    /// `Py_BuildValue`'s (one value: the only argument); new reference or
    /// NULL with an exception set.
    pub fn PyObject_CallFunction(
        callable: *mut PyObject,
        format: *const c_char,
        ...
    ) -> *mut PyObject;
    /// `o[i]` of a sequence; new reference or NULL with an exception set.
    pub fn PySequence_GetItem(o: *mut PyObject, i: Py_ssize_t) -> *mut PyObject;
}
