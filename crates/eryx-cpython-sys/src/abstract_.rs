//! `abstract.h`: the abstract object protocol (calls).

use crate::PyObject;

unsafe extern "C" {
    /// `callable(*args)` where `args` is a tuple or NULL; new reference or
    /// NULL with an exception set.
    pub fn PyObject_CallObject(callable: *mut PyObject, args: *mut PyObject) -> *mut PyObject;
}
