//! `unicodeobject.h`: `str`.

use core::ffi::c_char;

use crate::{Py_ssize_t, PyObject};

unsafe extern "C" {
    /// A new `str` decoded from UTF-8 `u[..size]`; new reference or NULL with
    /// an exception set.
    pub fn PyUnicode_FromStringAndSize(u: *const c_char, size: Py_ssize_t) -> *mut PyObject;
    /// The interned `str` of the NUL-terminated UTF-8 `s` (the one object
    /// every equal interned string is); new reference or NULL with an
    /// exception set.
    pub fn PyUnicode_InternFromString(s: *const c_char) -> *mut PyObject;
    /// The object's UTF-8 buffer (cached in the object, valid while it
    /// lives) and its length in `*size`; NULL with an exception set if the
    /// string cannot be encoded (e.g. lone surrogates).
    pub fn PyUnicode_AsUTF8AndSize(unicode: *mut PyObject, size: *mut Py_ssize_t) -> *const c_char;
    /// `unicode.encode(encoding, errors)`; a new `bytes` or NULL with an exception set.
    pub fn PyUnicode_AsEncodedString(
        unicode: *mut PyObject,
        encoding: *const c_char,
        errors: *const c_char,
    ) -> *mut PyObject;
}
