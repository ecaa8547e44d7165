//! `fastsum`: a native extension module written against `eryx-cpython-sys`.
//!
//! `fast_sum(n)` returns `sum(range(n))` computed by a native loop (with
//! overflow checking), so a test can tell the native code ran. Built by
//! `cargo xtask ext build examples/extensions/fastsum` into
//! `fastsum.cpython-314-wasm32-wasi.so`.
#![allow(unsafe_code, reason = "a CPython extension module is an FFI boundary")]
#![deny(missing_docs)]

use std::ptr;

use eryx_cpython_sys as ffi;

/// `fast_sum(n)`: `sum(range(n))` in native code.
///
/// # Safety
/// Called by CPython with the GIL held and `n` a live object.
unsafe extern "C" fn fast_sum(
    _module: *mut ffi::PyObject,
    n: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: GIL held, `n` is live (CPython's calling contract for METH_O).
    let n = unsafe { ffi::PyLong_AsLongLong(n) };
    // SAFETY: as above.
    if n == -1 && !unsafe { ffi::PyErr_Occurred() }.is_null() {
        return ptr::null_mut();
    }
    let mut total: i64 = 0;
    for i in 0..n.max(0) {
        match total.checked_add(i) {
            Some(t) => total = t,
            None => {
                // SAFETY: GIL held; the exception type is a live static of libpython.
                unsafe {
                    ffi::PyErr_SetString(
                        ffi::PyExc_OverflowError,
                        c"fast_sum: result does not fit in 64 bits".as_ptr(),
                    )
                };
                return ptr::null_mut();
            }
        }
    }
    // SAFETY: GIL held.
    unsafe { ffi::PyLong_FromLongLong(total) }
}

/// `crash()`: panics in native code, to show that an extension's panic is
/// contained by the sandbox (with `panic = "abort"` it traps the instance).
///
/// # Safety
/// Called by CPython with the GIL held.
unsafe extern "C" fn crash(
    _module: *mut ffi::PyObject,
    _unused: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    panic!("fastsum.crash() was called")
}

/// A cell CPython may write to (the module definition lives as long as the
/// process and is only touched under the GIL).
struct Def<T>(std::cell::UnsafeCell<T>);

// SAFETY: the guest is single-threaded; CPython touches these under the GIL.
unsafe impl<T> Sync for Def<T> {}

static METHODS: Def<[ffi::PyMethodDef; 3]> = Def(std::cell::UnsafeCell::new([
    ffi::PyMethodDef {
        ml_name: c"fast_sum".as_ptr(),
        ml_meth: Some(fast_sum),
        ml_flags: ffi::METH_O,
        ml_doc: c"fast_sum(n) -> sum(range(n)), computed natively".as_ptr(),
    },
    ffi::PyMethodDef {
        ml_name: c"crash".as_ptr(),
        ml_meth: Some(crash),
        ml_flags: ffi::METH_NOARGS,
        ml_doc: c"crash() panics in native code".as_ptr(),
    },
    ffi::PyMethodDef::zeroed(),
]));

static MODULE: Def<ffi::PyModuleDef> = Def(std::cell::UnsafeCell::new(ffi::PyModuleDef {
    m_base: ffi::PyModuleDef_HEAD_INIT,
    m_name: c"fastsum".as_ptr(),
    m_doc: c"An example eryx native extension.".as_ptr(),
    m_size: -1,
    m_methods: ptr::null_mut(),
    m_slots: ptr::null_mut(),
    m_traverse: ptr::null_mut(),
    m_clear: ptr::null_mut(),
    m_free: ptr::null_mut(),
}));

/// The module's init function, found by CPython's importer via `dlsym`.
///
/// # Safety
/// Called once by CPython's importer with the GIL held.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyInit_fastsum() -> *mut ffi::PyObject {
    let def = MODULE.0.get();
    // SAFETY: single-threaded init under the GIL; nothing else holds a
    // reference into the definition yet.
    unsafe { (*def).m_methods = METHODS.0.get().cast() };
    // SAFETY: GIL held; `def` is a static, complete module definition.
    unsafe { ffi::PyModule_Create2(def, ffi::PYTHON_API_VERSION) }
}
