//! `object.h`: the object header and reference counting.

use core::ffi::c_int;

/// The object header (`PyObject_HEAD`) of a non-free-threaded build. eryx
/// never reads its fields at run time (it calls functions); the layout is
/// needed only to embed a header in static structs such as `PyModuleDef`.
#[repr(C)]
pub struct PyObject {
    /// The reference count.
    pub ob_refcnt: crate::Py_ssize_t,
    /// The type.
    pub ob_type: *mut PyTypeObject,
}

/// An opaque type object.
#[repr(C)]
pub struct PyTypeObject {
    _opaque: [u8; 0],
}

#[cfg(target_pointer_width = "32")]
const _: () = assert!(core::mem::size_of::<PyObject>() == 8);

unsafe extern "C" {
    /// The `None` singleton (`Py_None` is `&_Py_NoneStruct`).
    pub static mut _Py_NoneStruct: PyObject;

    /// `Py_IncRef`: the function form of `Py_INCREF` (accepts NULL).
    pub fn Py_IncRef(o: *mut PyObject);
    /// `Py_DecRef`: the function form of `Py_DECREF` (accepts NULL).
    pub fn Py_DecRef(o: *mut PyObject);
    /// `str(o)`; new reference or NULL with an exception set.
    pub fn PyObject_Str(o: *mut PyObject) -> *mut PyObject;
    /// `repr(o)`; new reference or NULL with an exception set.
    pub fn PyObject_Repr(o: *mut PyObject) -> *mut PyObject;
    /// `bool(o)`: 1, 0, or -1 with an exception set.
    pub fn PyObject_IsTrue(o: *mut PyObject) -> c_int;
    /// `len(o)`, or -1 with an exception set.
    pub fn PyObject_Size(o: *mut PyObject) -> crate::Py_ssize_t;
    /// `getattr(o, name)`; new reference or NULL with an exception set.
    pub fn PyObject_GetAttrString(
        o: *mut PyObject,
        name: *const core::ffi::c_char,
    ) -> *mut PyObject;
    /// `_Py_SetImmortal` (exported, not in the limited API): makes `o`
    /// immortal (PEP 683: its reference count is no longer written, it is
    /// never freed) and takes it out of the garbage collector's lists.
    pub fn _Py_SetImmortal(o: *mut PyObject);
}
