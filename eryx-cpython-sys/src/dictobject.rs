//! `dictobject.h`: `dict`.

use core::ffi::{c_char, c_int};

use crate::PyObject;

unsafe extern "C" {
    /// A new empty dict; new reference.
    pub fn PyDict_New() -> *mut PyObject;
    /// `d[key] = item` (does not steal `item`); 0, or -1 with an exception set.
    pub fn PyDict_SetItemString(d: *mut PyObject, key: *const c_char, item: *mut PyObject)
    -> c_int;
    /// `d[key]` or NULL without an exception; borrowed reference.
    pub fn PyDict_GetItemString(d: *mut PyObject, key: *const c_char) -> *mut PyObject;
    /// `d[key]`; NULL when missing (no exception) or on error (exception
    /// set); borrowed reference.
    pub fn PyDict_GetItemWithError(d: *mut PyObject, key: *mut PyObject) -> *mut PyObject;
}
