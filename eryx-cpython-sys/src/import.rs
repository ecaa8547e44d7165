//! `import.h`: importing modules.

use core::ffi::c_char;

use crate::PyObject;

unsafe extern "C" {
    /// `import name`; new reference or NULL with an exception set.
    pub fn PyImport_ImportModule(name: *const c_char) -> *mut PyObject;
}
