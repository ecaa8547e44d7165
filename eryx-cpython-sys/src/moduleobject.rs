//! `moduleobject.h`, `methodobject.h` and `modsupport.h`: defining extension modules.

use core::ffi::{c_char, c_int, c_void};

use crate::{Py_ssize_t, PyObject};

/// `PYTHON_API_VERSION`, passed to [`PyModule_Create2`].
pub const PYTHON_API_VERSION: c_int = 1013;

/// `METH_VARARGS`
pub const METH_VARARGS: c_int = 0x0001;
/// `METH_NOARGS`
pub const METH_NOARGS: c_int = 0x0004;
/// `METH_O`
pub const METH_O: c_int = 0x0008;

/// `PyCFunction`
pub type PyCFunction =
    unsafe extern "C" fn(slf: *mut PyObject, arg: *mut PyObject) -> *mut PyObject;

/// `PyMethodDef`: one function of a module.
#[repr(C)]
pub struct PyMethodDef {
    /// The Python name.
    pub ml_name: *const c_char,
    /// The implementation.
    pub ml_meth: Option<PyCFunction>,
    /// `METH_*` flags.
    pub ml_flags: c_int,
    /// The docstring, or NULL.
    pub ml_doc: *const c_char,
}

impl PyMethodDef {
    /// The all-NULL entry that ends a method table (`{NULL, NULL, 0, NULL}`).
    pub const fn zeroed() -> PyMethodDef {
        PyMethodDef {
            ml_name: core::ptr::null(),
            ml_meth: None,
            ml_flags: 0,
            ml_doc: core::ptr::null(),
        }
    }
}

/// `PyModuleDef_Base` (`PyModuleDef_HEAD_INIT`).
#[repr(C)]
pub struct PyModuleDef_Base {
    /// The object header.
    pub ob_base: PyObject,
    /// `m_init`
    pub m_init: Option<unsafe extern "C" fn() -> *mut PyObject>,
    /// `m_index`
    pub m_index: Py_ssize_t,
    /// `m_copy`
    pub m_copy: *mut PyObject,
}

/// `PyModuleDef_HEAD_INIT`: the header every module definition starts with.
pub const PyModuleDef_HEAD_INIT: PyModuleDef_Base = PyModuleDef_Base {
    ob_base: PyObject {
        ob_refcnt: 1,
        ob_type: core::ptr::null_mut(),
    },
    m_init: None,
    m_index: 0,
    m_copy: core::ptr::null_mut(),
};

/// `PyModuleDef`: a module definition.
#[repr(C)]
pub struct PyModuleDef {
    /// `PyModuleDef_HEAD_INIT`
    pub m_base: PyModuleDef_Base,
    /// The module name.
    pub m_name: *const c_char,
    /// The docstring, or NULL.
    pub m_doc: *const c_char,
    /// Per-module state size (-1: none, module is not re-initializable).
    pub m_size: Py_ssize_t,
    /// The functions, terminated by a zeroed entry.
    pub m_methods: *mut PyMethodDef,
    /// Multi-phase init slots, or NULL.
    pub m_slots: *mut c_void,
    /// `m_traverse`
    pub m_traverse: *mut c_void,
    /// `m_clear`
    pub m_clear: *mut c_void,
    /// `m_free`
    pub m_free: *mut c_void,
}

#[cfg(target_pointer_width = "32")]
const _: () = {
    assert!(core::mem::size_of::<PyMethodDef>() == 16);
    assert!(core::mem::size_of::<PyModuleDef_Base>() == 20);
    assert!(core::mem::size_of::<PyModuleDef>() == 52);
};

unsafe extern "C" {
    /// Creates a module from `def` (single-phase init); new reference or NULL.
    pub fn PyModule_Create2(def: *mut PyModuleDef, apiver: c_int) -> *mut PyObject;
    /// Marks `def` as initialised and returns it as an object, for
    /// multi-phase init (PEP 489): `PyInit_<module>` returns this and
    /// CPython creates the module from the definition.
    pub fn PyModuleDef_Init(def: *mut PyModuleDef) -> *mut PyObject;
}
