//! `wordcount`: a second example extension, a small native parser.
//!
//! `count(text)` returns `(lines, words, longest_word)` for a `str`, parsed
//! in native code. Together with `fastsum` it makes a package that ships
//! two extension modules.
#![allow(unsafe_code, reason = "a CPython extension module is an FFI boundary")]
#![deny(missing_docs)]

use std::ptr;

use eryx_cpython_sys as ffi;

/// `count(text)`: `(lines, words, longest word)`.
///
/// # Safety
/// Called by CPython with the GIL held and `text` a live object.
unsafe extern "C" fn count(
    _module: *mut ffi::PyObject,
    text: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let mut len: ffi::Py_ssize_t = 0;
    // SAFETY: GIL held; raises TypeError for non-str and returns NULL.
    let data = unsafe { ffi::PyUnicode_AsUTF8AndSize(text, &mut len) };
    if data.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: CPython returns `len` bytes of UTF-8 that live as long as `text`.
    let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len as usize) };
    let text = String::from_utf8_lossy(bytes);
    let lines = text.lines().count() as i64;
    let words: Vec<&str> = text.split_whitespace().collect();
    let longest = words
        .iter()
        .copied()
        .max_by_key(|w| w.chars().count())
        .unwrap_or("");
    // SAFETY: GIL held; each new reference is handed to the tuple.
    unsafe {
        let tuple = ffi::PyTuple_New(3);
        if tuple.is_null() {
            return ptr::null_mut();
        }
        ffi::PyTuple_SetItem(tuple, 0, ffi::PyLong_FromLongLong(lines));
        ffi::PyTuple_SetItem(tuple, 1, ffi::PyLong_FromLongLong(words.len() as i64));
        ffi::PyTuple_SetItem(
            tuple,
            2,
            ffi::PyUnicode_FromStringAndSize(
                longest.as_ptr().cast(),
                longest.len() as ffi::Py_ssize_t,
            ),
        );
        tuple
    }
}

/// Immutable module tables, shared with CPython.
struct Table<T>(T);

// SAFETY: the guest is single-threaded and CPython only reads these tables
// (under the GIL).
unsafe impl<T> Sync for Table<T> {}

static METHODS: Table<[ffi::PyMethodDef; 2]> = Table([
    ffi::PyMethodDef {
        ml_name: c"count".as_ptr(),
        ml_meth: Some(count),
        ml_flags: ffi::METH_O,
        ml_doc: c"count(text) -> (lines, words, longest word)".as_ptr(),
    },
    ffi::PyMethodDef::zeroed(),
]);

/// The module definition. With multi-phase init (PEP 489) CPython creates
/// the module from it, so it stays a plain static that CPython may update
/// (its header) under the GIL.
static mut MODULE: ffi::PyModuleDef = ffi::PyModuleDef {
    m_base: ffi::PyModuleDef_HEAD_INIT,
    m_name: c"wordcount".as_ptr(),
    m_doc: c"An example eryx native extension: a tiny parser (multi-phase init).".as_ptr(),
    // No per-module state; the module can be created again (e.g. in a
    // sub-interpreter) from the same definition.
    m_size: 0,
    m_methods: (&raw const METHODS.0).cast_mut().cast(),
    m_slots: ptr::null_mut(),
    m_traverse: ptr::null_mut(),
    m_clear: ptr::null_mut(),
    m_free: ptr::null_mut(),
};

/// The module's init function, found by CPython's importer via `dlsym`:
/// multi-phase init hands CPython the definition, not a module.
///
/// # Safety
/// Called once by CPython's importer with the GIL held.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PyInit_wordcount() -> *mut ffi::PyObject {
    // SAFETY: GIL held; `MODULE` is a static, complete definition that only
    // CPython touches from here on.
    unsafe { ffi::PyModuleDef_Init(&raw mut MODULE) }
}
