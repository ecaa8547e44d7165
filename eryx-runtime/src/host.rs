//! `_host`: the built-in module through which the prelude reaches the
//! world's imports (host functions and live output). Python code never
//! sees it directly; the prelude wraps it (`eryx` module, `_Capture`).
//!
//! - `call(name, arguments_json)` → `(True, result_json)` or
//!   `(False, kind, message)`; `call(name, "", data)` with `data` bytes
//!   (the arguments, a NUL, the payload) → the bytes of
//!   `call-host-bytes`'s answer (a 0 byte and the result, or a 1 byte and
//!   `kind\nmessage`): a reserved call of the host's whose payload is
//!   bytes (`_ssl`'s TLS records), without a text encoding either way;
//! - `start(name, arguments_json)` → an id, and `wait(ids, timeout_ms)` →
//!   the finished ones (awaited calls, so that several run at once);
//! - `functions()` → a tuple of the host function names;
//! - `emit(fd, text)` → passes output to the host as it is written;
//! - `memory([limit])` → `(limit, size)`: the sandbox's memory limit (set
//!   first when given; the host caps it at the embedder's) and the size of
//!   linear memory, in bytes (what `resource` reports);
//! - `constructors(path)` → runs the static constructors of the extension
//!   module at `path` the first time (the prelude calls it before each
//!   extension's `PyInit_*`).

use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr::NonNull;

use eryx_cpython_sys as ffi;

use crate::world;

/// A `str` argument's text, or NULL with `TypeError` set.
///
/// # Safety
/// Interpreter running, GIL held; `o` a live object.
unsafe fn text<'a>(o: *mut ffi::PyObject, what: &CStr) -> Option<&'a str> {
    let mut len: isize = 0;
    // SAFETY: forwarded to the caller.
    let data = unsafe { ffi::PyUnicode_AsUTF8AndSize(o, &mut len) };
    if data.is_null() {
        // SAFETY: forwarded to the caller; the exception type is CPython's.
        unsafe { ffi::PyErr_SetString(ffi::PyExc_TypeError, what.as_ptr()) };
        return None;
    }
    // SAFETY: CPython returns `len` bytes of UTF-8 living as long as `o`.
    let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len as usize) };
    std::str::from_utf8(bytes).ok()
}

/// A new `str`, or NULL with an exception.
///
/// # Safety
/// Interpreter running, GIL held.
unsafe fn new_str(s: &str) -> *mut ffi::PyObject {
    // SAFETY: forwarded; the buffer is valid for `s.len()` bytes.
    unsafe { ffi::PyUnicode_FromStringAndSize(s.as_ptr().cast(), s.len() as isize) }
}

/// A tuple of new references (stolen), or NULL if any is NULL.
///
/// # Safety
/// Interpreter running, GIL held; each item a new reference or NULL.
unsafe fn tuple(items: &[*mut ffi::PyObject]) -> *mut ffi::PyObject {
    // SAFETY: forwarded to the caller.
    unsafe {
        if items.iter().any(|i| i.is_null()) {
            for i in items.iter().filter(|i| !i.is_null()) {
                ffi::Py_DecRef(*i);
            }
            return std::ptr::null_mut();
        }
        let t = ffi::PyTuple_New(items.len() as isize);
        if t.is_null() {
            for i in items {
                ffi::Py_DecRef(*i);
            }
            return t;
        }
        for (n, i) in items.iter().enumerate() {
            ffi::PyTuple_SetItem(t, n as isize, *i);
        }
        t
    }
}

/// The `(name: str, arguments: str)` of `call` and `start` (and up to
/// `extra` more items, whose count is left to the caller), or None with
/// `TypeError` set.
///
/// # Safety
/// Interpreter running, GIL held; `args` the call's argument tuple.
unsafe fn name_and_arguments<'a>(
    args: *mut ffi::PyObject,
    usage: &CStr,
    extra: isize,
) -> Option<(&'a str, &'a str)> {
    // SAFETY: forwarded to the caller; items are borrowed from `args`.
    unsafe {
        if !(2..=2 + extra).contains(&ffi::PyTuple_Size(args)) {
            ffi::PyErr_SetString(ffi::PyExc_TypeError, usage.as_ptr());
            return None;
        }
        let name = text(ffi::PyTuple_GetItem(args, 0), c"name must be a str")?;
        let arguments = text(ffi::PyTuple_GetItem(args, 1), c"arguments must be a str")?;
        Some((name, arguments))
    }
}

/// `_host.call(name, arguments[, data])`: with `data` (a `bytes`), the
/// host's `call-host-bytes`, whose answer is `bytes`.
unsafe extern "C" fn call(
    _module: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls this with the GIL held and `args` a tuple of
    // borrowed items (METH_VARARGS; checked by the size); the bytes'
    // buffer lives as long as the tuple holds it, and is copied before
    // the call.
    unsafe {
        let Some((name, arguments)) = name_and_arguments(args, c"call(name, arguments[, data])", 1)
        else {
            return std::ptr::null_mut();
        };
        if ffi::PyTuple_Size(args) == 3 {
            let mut buf: *mut c_char = std::ptr::null_mut();
            let mut len: ffi::Py_ssize_t = 0;
            if ffi::PyBytes_AsStringAndSize(ffi::PyTuple_GetItem(args, 2), &mut buf, &mut len) != 0
            {
                return std::ptr::null_mut();
            }
            let data = std::slice::from_raw_parts(buf.cast::<u8>(), len as usize).to_vec();
            let r = world::call_host_bytes(name.to_string(), data);
            return ffi::PyBytes_FromStringAndSize(r.as_ptr().cast(), r.len() as isize);
        }
        match world::call_host(name.to_string(), arguments.to_string()) {
            Ok(result) => tuple(&[ffi::PyBool_FromLong(1), new_str(&result)]),
            Err(e) => tuple(&[
                ffi::PyBool_FromLong(0),
                new_str(&e.kind),
                new_str(&e.message),
            ]),
        }
    }
}

/// `_host.start(name, arguments)` → the call's id.
unsafe extern "C" fn start(
    _module: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as in `call`.
    unsafe {
        let Some((name, arguments)) = name_and_arguments(args, c"start(name, arguments)", 0) else {
            return std::ptr::null_mut();
        };
        let id = world::start_host_call(name.to_string(), arguments.to_string());
        ffi::PyLong_FromUnsignedLong(id.into())
    }
}

/// `_host.wait(ids, timeout_ms)` → a tuple of `(id, True, result)` /
/// `(id, False, kind, message)` for the calls of `ids` that finished.
unsafe extern "C" fn wait(
    _module: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as in `call`; `ids` is a tuple of ints (the prelude passes
    // one), `timeout_ms` an int or None (negative: none).
    unsafe {
        if ffi::PyTuple_Size(args) != 2 {
            ffi::PyErr_SetString(ffi::PyExc_TypeError, c"wait(ids, timeout_ms)".as_ptr());
            return std::ptr::null_mut();
        }
        let ids_obj = ffi::PyTuple_GetItem(args, 0);
        let n = ffi::PyTuple_Size(ids_obj);
        if n < 0 {
            return std::ptr::null_mut();
        }
        let mut ids = Vec::with_capacity(n as usize);
        for i in 0..n {
            let id = ffi::PyLong_AsLongLong(ffi::PyTuple_GetItem(ids_obj, i));
            if !ffi::PyErr_Occurred().is_null() {
                return std::ptr::null_mut();
            }
            ids.push(id.clamp(0, u32::MAX.into()) as u32);
        }
        let timeout = ffi::PyLong_AsLongLong(ffi::PyTuple_GetItem(args, 1));
        if !ffi::PyErr_Occurred().is_null() {
            return std::ptr::null_mut();
        }
        let timeout = u64::try_from(timeout).ok();
        let done = world::wait_host_calls(ids, timeout);
        let items: Vec<*mut ffi::PyObject> = done
            .into_iter()
            .map(|d| {
                let id = ffi::PyLong_FromUnsignedLong(d.id.into());
                match d.outcome {
                    Ok(result) => tuple(&[id, ffi::PyBool_FromLong(1), new_str(&result)]),
                    Err(e) => tuple(&[
                        id,
                        ffi::PyBool_FromLong(0),
                        new_str(&e.kind),
                        new_str(&e.message),
                    ]),
                }
            })
            .collect();
        tuple(&items)
    }
}

/// `_host.functions()`.
unsafe extern "C" fn functions(
    _module: *mut ffi::PyObject,
    _unused: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let names = world::host_functions();
    // SAFETY: GIL held (CPython calls this); new references handed to `tuple`.
    unsafe {
        let items: Vec<*mut ffi::PyObject> = names.iter().map(|n| new_str(n)).collect();
        tuple(&items)
    }
}

/// `_host.emit(fd, text)`.
unsafe extern "C" fn emit(
    _module: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as in `call`.
    unsafe {
        if ffi::PyTuple_Size(args) != 2 {
            ffi::PyErr_SetString(ffi::PyExc_TypeError, c"emit(fd, text)".as_ptr());
            return std::ptr::null_mut();
        }
        let fd = ffi::PyLong_AsLongLong(ffi::PyTuple_GetItem(args, 0));
        if !ffi::PyErr_Occurred().is_null() {
            return std::ptr::null_mut();
        }
        let Some(s) = text(ffi::PyTuple_GetItem(args, 1), c"text must be a str") else {
            return std::ptr::null_mut();
        };
        world::emit_output(fd.clamp(0, 255) as u8, s.to_string());
        ffi::PyBool_FromLong(1)
    }
}

/// `_host.memory([limit])`.
unsafe extern "C" fn memory(
    _module: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as in `call`.
    unsafe {
        let limit = match ffi::PyTuple_Size(args) {
            0 => world::memory_limit(),
            1 => {
                let want = ffi::PyLong_AsLongLong(ffi::PyTuple_GetItem(args, 0));
                if !ffi::PyErr_Occurred().is_null() {
                    return std::ptr::null_mut();
                }
                world::set_memory_limit(want.max(0) as u64)
            }
            _ => {
                ffi::PyErr_SetString(ffi::PyExc_TypeError, c"memory([limit])".as_ptr());
                return std::ptr::null_mut();
            }
        };
        #[cfg(target_arch = "wasm32")]
        let size = core::arch::wasm32::memory_size(0) as i64 * 65536;
        #[cfg(not(target_arch = "wasm32"))]
        let size = 0i64;
        tuple(&[
            ffi::PyLong_FromLongLong(limit.min(i64::MAX as u64) as i64),
            ffi::PyLong_FromLongLong(size),
        ])
    }
}

unsafe extern "C" {
    /// The component's built-in libdl: a handle for a library linked into
    /// it (by the name it was linked under), or NULL.
    fn dlopen(path: *const c_char, flags: c_int) -> *mut c_void;
    /// The address of an exported function of a `dlopen`ed library, or NULL.
    fn dlsym(handle: *mut c_void, name: *const c_char) -> *mut c_void;
}

/// wasi-libc's `RTLD_NOW`.
const RTLD_NOW: c_int = 2;

/// What eryx-linker exports an extension module's static constructors as
/// (`eryx_linker::DEFERRED_CTORS`), so that the component's start-up does
/// not run them before the interpreter exists.
const DEFERRED_CTORS: &CStr = c"__eryx_call_ctors";

thread_local! {
    /// The libraries whose constructors [`constructors`] has run (handles).
    static CONSTRUCTED: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `_host.constructors(path)`: runs the static constructors of the
/// extension module linked at `path`, once per module, as `dlopen` does
/// natively when a module is first imported. Nothing to do for a path that
/// is not linked (CPython's own `dlopen` then reports the import error) or
/// a module without constructors.
unsafe extern "C" fn constructors(
    _module: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as in `call`.
    unsafe {
        if ffi::PyTuple_Size(args) != 1 {
            ffi::PyErr_SetString(ffi::PyExc_TypeError, c"constructors(path)".as_ptr());
            return std::ptr::null_mut();
        }
        let Some(path) = text(ffi::PyTuple_GetItem(args, 0), c"path must be a str") else {
            return std::ptr::null_mut();
        };
        // A path with a NUL names no library: CPython's own `dlopen`
        // reports that one, as natively.
        let handle = match crate::nul_terminated(path) {
            Some(path) => dlopen(path.as_ptr().cast(), RTLD_NOW),
            None => std::ptr::null_mut(),
        };
        let first = !handle.is_null()
            && CONSTRUCTED.with_borrow_mut(|done| {
                let new = !done.contains(&(handle as usize));
                if new {
                    done.push(handle as usize);
                }
                new
            });
        if first {
            let ctors = dlsym(handle, DEFERRED_CTORS.as_ptr());
            // The symbol is wasm-ld's `__wasm_call_ctors` under another
            // name: a `void(void)` function.
            if !ctors.is_null() {
                let run: unsafe extern "C" fn() = std::mem::transmute(ctors);
                run();
            }
        }
        let none = &raw mut ffi::_Py_NoneStruct;
        ffi::Py_IncRef(none);
        none
    }
}

/// The module's functions (CPython keeps pointers to them).
static mut METHODS: [ffi::PyMethodDef; 8] = [
    ffi::PyMethodDef {
        ml_name: c"call".as_ptr(),
        ml_meth: Some(call),
        ml_flags: ffi::METH_VARARGS,
        ml_doc: std::ptr::null(),
    },
    ffi::PyMethodDef {
        ml_name: c"start".as_ptr(),
        ml_meth: Some(start),
        ml_flags: ffi::METH_VARARGS,
        ml_doc: std::ptr::null(),
    },
    ffi::PyMethodDef {
        ml_name: c"wait".as_ptr(),
        ml_meth: Some(wait),
        ml_flags: ffi::METH_VARARGS,
        ml_doc: std::ptr::null(),
    },
    ffi::PyMethodDef {
        ml_name: c"functions".as_ptr(),
        ml_meth: Some(functions),
        ml_flags: ffi::METH_NOARGS,
        ml_doc: std::ptr::null(),
    },
    ffi::PyMethodDef {
        ml_name: c"emit".as_ptr(),
        ml_meth: Some(emit),
        ml_flags: ffi::METH_VARARGS,
        ml_doc: std::ptr::null(),
    },
    ffi::PyMethodDef {
        ml_name: c"memory".as_ptr(),
        ml_meth: Some(memory),
        ml_flags: ffi::METH_VARARGS,
        ml_doc: std::ptr::null(),
    },
    ffi::PyMethodDef {
        ml_name: c"constructors".as_ptr(),
        ml_meth: Some(constructors),
        ml_flags: ffi::METH_VARARGS,
        ml_doc: std::ptr::null(),
    },
    ffi::PyMethodDef::zeroed(),
];

/// The module definition (CPython keeps a pointer to it).
static mut MODULE: ffi::PyModuleDef = ffi::PyModuleDef {
    m_base: ffi::PyModuleDef_HEAD_INIT,
    m_name: c"_host".as_ptr() as *const c_char,
    m_doc: std::ptr::null(),
    m_size: -1,
    m_methods: std::ptr::null_mut(),
    m_slots: std::ptr::null_mut(),
    m_traverse: std::ptr::null_mut(),
    m_clear: std::ptr::null_mut(),
    m_free: std::ptr::null_mut(),
};

/// Creates the `_host` module (a new reference), or NULL with an exception.
///
/// # Safety
/// Interpreter running, GIL held; called once.
pub(crate) unsafe fn module() -> Option<NonNull<ffi::PyObject>> {
    // SAFETY: single-threaded guest, called once at start-up: nothing else
    // touches the statics; CPython keeps the pointers, which stay valid.
    unsafe {
        MODULE.m_methods = (&raw mut METHODS).cast();
        NonNull::new(ffi::PyModule_Create2(
            &raw mut MODULE,
            ffi::PYTHON_API_VERSION,
        ))
    }
}
