//! `import.h`: importing modules.

use core::ffi::c_char;

use crate::PyObject;

unsafe extern "C" {
    /// `import name`; new reference or NULL with an exception set.
    pub fn PyImport_ImportModule(name: *const c_char) -> *mut PyObject;
    /// `sys.modules`; a borrowed reference.
    pub fn PyImport_GetModuleDict() -> *mut PyObject;
}
