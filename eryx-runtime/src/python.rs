//! CPython: start-up and the few calls the runtime makes into it.
//!
//! Every raw CPython call of the runtime is in this module, behind small
//! functions whose shared contract is "the interpreter is initialized and
//! this (only) thread holds the GIL". That contract is carried by the
//! [`Python`] token: it can only be obtained from [`Python::get`], which
//! initializes the interpreter on first use, so holding one proves it.
//!
//! Start-up uses the PEP 741 API (`PyInitConfig_*`): its configuration is
//! opaque, so no struct layout has to be mirrored. It starts from the
//! isolated preset (no environment variables, no user site, safe path), and
//! the standard library location is set explicitly: the host mounts it
//! read-only at [`STDLIB`].

use std::ffi::{CStr, c_char};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

use eryx_cpython_sys as ffi;

use eryx_ffi::world::{Field, Fields};

use crate::world::{
    ExecuteOptions, GUEST_HOME as HOME, GUEST_STDLIB as STDLIB, Output, PythonException,
    SITE_PACKAGES, StateSnapshot, Unpicklable,
};

/// Why the runtime could not do what it was asked: a failed CPython call (its
/// pending exception, described) or a prelude result of the wrong shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(String);

impl Failure {
    fn new(msg: impl Into<String>) -> Failure {
        Failure(msg.into())
    }

    /// Prefixes the message with what was being done.
    fn context(self, what: &str) -> Failure {
        Failure([what, ": ", &self.0].concat())
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

/// Proof that the interpreter is initialized and the GIL is held.
#[derive(Clone, Copy)]
pub struct Python {
    _private: (),
}

/// An owned (strong) reference, released on drop.
pub struct Obj(NonNull<ffi::PyObject>);

impl Drop for Obj {
    fn drop(&mut self) {
        // SAFETY: we own one strong reference; an `Obj` only exists once the
        // interpreter runs, and the guest is single-threaded.
        unsafe { ffi::Py_DecRef(self.0.as_ptr()) }
    }
}

impl Obj {
    fn as_ptr(&self) -> *mut ffi::PyObject {
        self.0.as_ptr()
    }
}

/// The prelude's entry points, looked up once.
struct Prelude {
    execute: Obj,
    clear: Obj,
    snapshot: Obj,
    restore: Obj,
    sync_environ: Obj,
    #[cfg_attr(
        not(target_arch = "wasm32"),
        expect(dead_code, reason = "read by the guest's libc overrides only")
    )]
    local_time: Obj,
    /// The interned `str`s of the record field names read so far (a
    /// handful), so reading a result does not make a `str` per field.
    keys: std::cell::RefCell<Vec<(&'static str, Obj)>>,
}

/// The interpreter's state: a cell in a static.
struct Global(std::cell::UnsafeCell<State>);

// SAFETY: the guest is a single-threaded wasm instance; nothing else can
// observe the cell concurrently.
unsafe impl Sync for Global {}

static STATE: Global = Global(std::cell::UnsafeCell::new(State::Uninit));

enum State {
    Uninit,
    Ready(Prelude),
    Failed(Failure),
}

impl Python {
    /// Initializes the interpreter on first call; afterwards returns the
    /// token at once. A failed start-up is remembered and reported again.
    pub fn get() -> Result<Python, Failure> {
        // SAFETY: the guest is single-threaded and this is the only place
        // that touches `STATE`; no reference to it outlives the match.
        let state = unsafe { &mut *STATE.0.get() };
        match state {
            State::Ready(_) => {
                let py = Python { _private: () };
                // Not in the call that started Python: the pre-initialising
                // store's first call leaves the flag for the snapshot.
                if ENVIRON_STALE.swap(false, Ordering::Relaxed) {
                    py.sync_environ()
                        .map_err(|e| e.context("reading the sandbox's environment"))?;
                }
                Ok(py)
            }
            State::Failed(msg) => Err(msg.clone()),
            State::Uninit => match start() {
                Ok(prelude) => {
                    *state = State::Ready(prelude);
                    Ok(Python { _private: () })
                }
                Err(msg) => {
                    *state = State::Failed(msg.clone());
                    Err(msg)
                }
            },
        }
    }

    fn prelude(self) -> &'static Prelude {
        // SAFETY: a `Python` token exists only once `STATE` is `Ready`, and
        // `STATE` never changes after that.
        match unsafe { &*STATE.0.get() } {
            State::Ready(p) => p,
            _ => unreachable!("Python token without an initialized interpreter"),
        }
    }

    /// The interned `str` for a record field name (borrowed: the prelude's
    /// cache keeps it alive for the interpreter's life).
    fn field_key(self, name: &'static str) -> Result<*mut ffi::PyObject, Failure> {
        let mut keys = self.prelude().keys.borrow_mut();
        if let Some((_, key)) = keys.iter().find(|(n, _)| *n == name) {
            return Ok(key.as_ptr());
        }
        let c = crate::nul_terminated(name).expect("WIT names have no NUL");
        // SAFETY: interpreter running, GIL held (token); a NUL-terminated
        // UTF-8 string.
        let key = self.own(unsafe { ffi::PyUnicode_InternFromString(c.as_ptr().cast()) })?;
        let ptr = key.as_ptr();
        keys.push((name, key));
        Ok(ptr)
    }

    /// Takes ownership of a new reference, or reports the pending exception.
    fn own(self, ptr: *mut ffi::PyObject) -> Result<Obj, Failure> {
        NonNull::new(ptr).map(Obj).ok_or_else(|| self.take_error())
    }

    /// The pending exception as `Type: message` (and clears it).
    fn take_error(self) -> Failure {
        // SAFETY: interpreter running, GIL held (token).
        let exc = unsafe { ffi::PyErr_GetRaisedException() };
        let Some(exc) = NonNull::new(exc).map(Obj) else {
            return Failure::new("unknown error (no exception set)");
        };
        // SAFETY: as above; `exc` is a live object.
        let repr = unsafe { ffi::PyObject_Repr(exc.as_ptr()) };
        match NonNull::new(repr).map(Obj) {
            Some(r) => Failure(self.to_string(&r)),
            None => {
                // SAFETY: as above.
                unsafe { ffi::PyErr_Clear() };
                Failure::new("an exception whose repr() failed")
            }
        }
    }

    fn none(self) -> *mut ffi::PyObject {
        &raw mut ffi::_Py_NoneStruct
    }

    fn is_none(self, o: *mut ffi::PyObject) -> bool {
        o == self.none()
    }

    /// A new `str` from UTF-8.
    fn new_str(self, s: &str) -> Result<Obj, Failure> {
        // SAFETY: interpreter running, GIL held (token); the buffer is valid
        // for `s.len()` bytes.
        self.own(unsafe { ffi::PyUnicode_FromStringAndSize(s.as_ptr().cast(), s.len() as isize) })
    }

    /// A `str` object's text; lone surrogates come out backslash-escaped
    /// (WIT strings must be valid UTF-8).
    fn to_string(self, o: &Obj) -> String {
        self.str_of(o.as_ptr())
    }

    fn str_of(self, o: *mut ffi::PyObject) -> String {
        let mut len: isize = 0;
        // SAFETY: interpreter running, GIL held (token); `o` is a live `str`.
        let data = unsafe { ffi::PyUnicode_AsUTF8AndSize(o, &mut len) };
        if !data.is_null() {
            // SAFETY: CPython returns a buffer of `len` bytes of valid UTF-8
            // that lives as long as `o`; we copy it at once.
            let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len as usize) };
            return eryx_ffi::utf8_or_replaced(bytes.to_vec());
        }
        // SAFETY: as above.
        unsafe { ffi::PyErr_Clear() };
        // SAFETY: as above; both names are NUL-terminated literals.
        let bytes = unsafe {
            ffi::PyUnicode_AsEncodedString(o, c"utf-8".as_ptr(), c"backslashreplace".as_ptr())
        };
        match NonNull::new(bytes).map(Obj) {
            Some(b) => {
                let mut ptr: *mut c_char = std::ptr::null_mut();
                let mut len: isize = 0;
                // SAFETY: as above; `b` is a live `bytes`.
                if unsafe { ffi::PyBytes_AsStringAndSize(b.as_ptr(), &mut ptr, &mut len) } == 0 {
                    // SAFETY: the buffer has `len` bytes and lives as long as `b`.
                    let bytes =
                        unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len as usize) };
                    return eryx_ffi::utf8_or_replaced(bytes.to_vec());
                }
                // SAFETY: as above.
                unsafe { ffi::PyErr_Clear() };
                String::new()
            }
            None => {
                // SAFETY: as above.
                unsafe { ffi::PyErr_Clear() };
                String::new()
            }
        }
    }

    /// `callable(*args)`.
    fn call(self, callable: &Obj, args: Vec<Obj>) -> Result<Obj, Failure> {
        // SAFETY: interpreter running, GIL held (token).
        let tuple = self.own(unsafe { ffi::PyTuple_New(args.len() as isize) })?;
        for (i, a) in args.into_iter().enumerate() {
            let ptr = a.as_ptr();
            std::mem::forget(a);
            // SAFETY: as above; `PyTuple_SetItem` steals the reference we
            // just gave up, into a fresh tuple of the right size.
            if unsafe { ffi::PyTuple_SetItem(tuple.as_ptr(), i as isize, ptr) } != 0 {
                return Err(self.take_error());
            }
        }
        // SAFETY: as above; both are live objects.
        self.own(unsafe { ffi::PyObject_CallObject(callable.as_ptr(), tuple.as_ptr()) })
    }

    /// `t[i]` of a tuple, borrowed.
    fn item(self, t: &Obj, i: isize) -> Result<*mut ffi::PyObject, Failure> {
        // SAFETY: interpreter running, GIL held (token); `t` is a live tuple.
        let item = unsafe { ffi::PyTuple_GetItem(t.as_ptr(), i) };
        if item.is_null() {
            Err(self.take_error())
        } else {
            Ok(item)
        }
    }

    /// Runs user code in `__main__` (see `prelude.py`).
    pub fn execute(self, code_text: &str, options: &ExecuteOptions) -> Result<Output, Failure> {
        let code = self.new_str(code_text)?;
        // SAFETY: interpreter running, GIL held (token).
        let limit =
            self.own(unsafe { ffi::PyLong_FromUnsignedLong(options.output_limit.into()) })?;
        let filename = match &options.filename {
            Some(f) => self.new_str(f)?,
            None => self.retain(self.none()),
        };
        let argv = match &options.argv {
            Some(args) => self.str_tuple(args)?,
            None => self.retain(self.none()),
        };
        // The prelude's `_compile_cell` reads it (see `cell::split`).
        let split = match crate::cell::split(code_text) {
            // SAFETY: interpreter running, GIL held (token).
            Some(s) => self.own(unsafe { ffi::PyLong_FromUnsignedLong(s as std::ffi::c_ulong) })?,
            None => self.retain(self.none()),
        };
        let r = self.call(
            &self.prelude().execute,
            vec![
                code,
                limit,
                filename,
                argv,
                split,
                self.bool_obj(options.at_exit),
            ],
        )?;
        Output::read_from(&PyFields { py: self, obj: &r })
    }

    /// Makes libc's environment and `os.environ` this instance's (see
    /// [`ENVIRON_STALE`]): wasi-libc forgets the one it read, so the next
    /// look reads the host's again, and the prelude puts that into
    /// `os.environ` (whose dict CPython filled at start-up).
    fn sync_environ(self) -> Result<(), Failure> {
        // Filled only in the guest (the host build has no wasi-libc).
        #[cfg_attr(
            not(target_arch = "wasm32"),
            allow(unused_mut, reason = "filled only in the guest")
        )]
        let mut entries = Vec::new();
        #[cfg(target_arch = "wasm32")]
        // SAFETY: plain libc calls on the one thread. Nothing holds a
        // pointer into the old environment (CPython copied it into
        // `os.environ`; `getenv` results are not kept across calls); the new
        // one is a NULL-terminated array of NUL-terminated strings that
        // stays as it is while we copy each into a `bytes`.
        unsafe {
            __wasilibc_deinitialize_environ();
            let mut cursor = __wasilibc_get_environ();
            while !cursor.is_null() && !(*cursor).is_null() {
                entries.push(self.new_bytes(CStr::from_ptr(*cursor).to_bytes())?);
                cursor = cursor.add(1);
            }
        }
        self.call(&self.prelude().sync_environ, entries)?;
        Ok(())
    }

    /// A tuple of `str`s.
    fn str_tuple(self, items: &[String]) -> Result<Obj, Failure> {
        // SAFETY: interpreter running, GIL held (token).
        let tuple = self.own(unsafe { ffi::PyTuple_New(items.len() as isize) })?;
        for (i, item) in items.iter().enumerate() {
            let s = self.new_str(item)?;
            let ptr = s.as_ptr();
            std::mem::forget(s);
            // SAFETY: as above; `PyTuple_SetItem` steals the reference we
            // just gave up, into a fresh tuple of the right size.
            if unsafe { ffi::PyTuple_SetItem(tuple.as_ptr(), i as isize, ptr) } != 0 {
                return Err(self.take_error());
            }
        }
        Ok(tuple)
    }

    /// Empties `__main__`.
    pub fn clear(self) -> Result<(), Failure> {
        self.call(&self.prelude().clear, Vec::new()).map(drop)
    }

    /// A new reference to a borrowed object.
    fn retain(self, o: *mut ffi::PyObject) -> Obj {
        // SAFETY: interpreter running, GIL held (token); `o` is a live
        // object borrowed from a container the caller holds.
        unsafe { ffi::Py_IncRef(o) };
        Obj(NonNull::new(o).expect("borrowed references are non-null"))
    }

    fn bool_obj(self, v: bool) -> Obj {
        // SAFETY: interpreter running, GIL held (token).
        let ptr = unsafe { ffi::PyBool_FromLong(v.into()) };
        Obj(NonNull::new(ptr).expect("PyBool_FromLong never fails"))
    }

    fn bytes_of(self, o: *mut ffi::PyObject) -> Result<Vec<u8>, Failure> {
        let mut ptr: *mut c_char = std::ptr::null_mut();
        let mut len: isize = 0;
        // SAFETY: interpreter running, GIL held (token); valid out-pointers.
        if unsafe { ffi::PyBytes_AsStringAndSize(o, &mut ptr, &mut len) } != 0 {
            return Err(self.take_error());
        }
        // SAFETY: CPython returns `len` bytes that live as long as `o`; copied at once.
        Ok(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len as usize) }.to_vec())
    }

    fn new_bytes(self, data: &[u8]) -> Result<Obj, Failure> {
        // SAFETY: interpreter running, GIL held (token); `data` is valid for its length.
        self.own(unsafe {
            ffi::PyBytes_FromStringAndSize(data.as_ptr().cast(), data.len() as isize)
        })
    }

    fn len(self, t: &Obj) -> Result<isize, Failure> {
        // SAFETY: interpreter running, GIL held (token); `t` is a live tuple or list.
        let n = unsafe { ffi::PyObject_Size(t.as_ptr()) };
        if n < 0 { Err(self.take_error()) } else { Ok(n) }
    }

    /// `seq[i]` of any sequence, as a new reference.
    fn seq_item(self, seq: &Obj, i: isize) -> Result<Obj, Failure> {
        // SAFETY: interpreter running, GIL held (token); `seq` is live.
        self.own(unsafe { ffi::PySequence_GetItem(seq.as_ptr(), i) })
    }

    /// Pickles the user's names in `__main__` (see `prelude.py`); the inner
    /// `Err` lists the names that cannot be pickled.
    pub fn snapshot(
        self,
        skip_unpicklable: bool,
    ) -> Result<Result<StateSnapshot, Vec<Unpicklable>>, Failure> {
        let r = self.call(
            &self.prelude().snapshot,
            vec![self.bool_obj(skip_unpicklable)],
        )?;
        let tag = self.str_of(self.item(&r, 0)?);
        let body = self.retain(self.item(&r, 1)?);
        if tag == "ok" {
            StateSnapshot::read_from(&PyFields {
                py: self,
                obj: &body,
            })
            .map(Ok)
        } else {
            self.records(&body, |f| Unpicklable::read_from(f)).map(Err)
        }
    }

    /// Reads every item of a sequence as a record.
    fn records<T>(
        self,
        seq: &Obj,
        read: fn(&PyFields<'_>) -> Result<T, Failure>,
    ) -> Result<Vec<T>, Failure> {
        (0..self.len(seq)?)
            .map(|i| {
                let item = self.seq_item(seq, i)?;
                read(&PyFields {
                    py: self,
                    obj: &item,
                })
            })
            .collect()
    }

    /// Replaces `__main__`'s user names with a snapshot payload; `Ok(Err(..))`
    /// says why the payload was refused (the session is then unchanged).
    pub fn restore(self, data: &[u8]) -> Result<Result<(), String>, Failure> {
        let payload = self.new_bytes(data)?;
        let r = self.call(&self.prelude().restore, vec![payload])?;
        if self.is_none(r.as_ptr()) {
            Ok(Ok(()))
        } else {
            Ok(Err(self.to_string(&r)))
        }
    }
}

/// Sets an integer option of an init config.
///
/// # Safety
/// `cfg` must be a live config.
unsafe fn set_int(cfg: *mut ffi::PyInitConfig, name: &CStr, v: i64) -> Result<(), Failure> {
    // SAFETY: forwarded to the caller; `name` is NUL-terminated.
    if unsafe { ffi::PyInitConfig_SetInt(cfg, name.as_ptr(), v) } == 0 {
        Ok(())
    } else {
        // SAFETY: forwarded to the caller.
        Err(unsafe { config_error(cfg) })
    }
}

/// The error stored in an init config.
///
/// # Safety
/// `cfg` must be a live config.
unsafe fn config_error(cfg: *mut ffi::PyInitConfig) -> Failure {
    let mut msg: *const c_char = std::ptr::null();
    // SAFETY: forwarded to the caller; `msg` is a valid out-pointer.
    if unsafe { ffi::PyInitConfig_GetError(cfg, &mut msg) } == 1 && !msg.is_null() {
        // SAFETY: CPython returns a NUL-terminated string owned by `cfg`.
        Failure(eryx_ffi::utf8_or_replaced(
            unsafe { CStr::from_ptr(msg) }.to_bytes().to_vec(),
        ))
    } else {
        Failure::new("unknown configuration error")
    }
}

/// Initializes CPython and loads the prelude.
fn start() -> Result<Prelude, Failure> {
    // SAFETY: called once, before any other CPython call.
    let cfg = unsafe { ffi::PyInitConfig_Create() };
    if cfg.is_null() {
        return Err(Failure::new("PyInitConfig_Create: out of memory"));
    }
    // SAFETY: `cfg` is live until the `PyInitConfig_Free` below.
    let result = unsafe { configure_and_init(cfg) };
    // SAFETY: created above, freed once.
    unsafe { ffi::PyInitConfig_Free(cfg) };
    result?;
    let py = Python { _private: () };
    // Read before the prelude drops it from the environment. Set only in the
    // store the host pre-initialises a component in: the instances made from
    // that snapshot must read their own environment.
    let preimports = std::env::var("ERYX_PREIMPORT");
    ENVIRON_STALE.store(preimports.is_ok(), Ordering::Relaxed);
    let preimports = preimports.unwrap_or_default();
    let prelude = load_prelude(py)?;
    preimport(py, &preimports)?;
    freeze_startup_objects(py)?;
    forget_wasi_handles();
    enter_scratch();
    crate::pyalloc::install();
    Ok(prelude)
}

/// A function of the loaded prelude (`sys.modules["_eryx_prelude"]`) used
/// only at start-up, so not kept in [`Prelude`].
fn prelude_function(py: Python, name: &CStr) -> Result<Obj, Failure> {
    // SAFETY: interpreter running, GIL held (token); the prelude is loaded
    // and the names are NUL-terminated.
    let prelude = py.own(unsafe { ffi::PyImport_ImportModule(PRELUDE_MODULE.as_ptr()) })?;
    // SAFETY: as above; a live module object.
    py.own(unsafe { ffi::PyObject_GetAttrString(prelude.as_ptr(), name.as_ptr()) })
}

/// The prelude's `settle`: `gc.collect(); gc.freeze()`, so what start-up
/// made (the stdlib's modules, the pre-imports: ~17,500 tracked objects)
/// leaves the collector's generations. A pre-initialised snapshot holds
/// them; without this every collection in every sandbox walked them again
/// (CPython 3.14's incremental collector scans a slice of the old
/// generation with each young one), writing their headers and so copying
/// the snapshot's pages into each sandbox. When pre-initialising, every
/// object reachable from them is then made immortal (PEP 683), as
/// pre-fork servers do before forking: a sandbox no longer writes the
/// reference counts of the objects it uses from the snapshot, each write
/// of which copied a page of the snapshot's heap into that sandbox.
fn freeze_startup_objects(py: Python) -> Result<(), Failure> {
    let settle = prelude_function(py, c"settle")?;
    let immortal = ENVIRON_STALE.load(Ordering::Relaxed);
    let found = py.call(&settle, vec![py.bool_obj(immortal)])?;
    if !immortal {
        return Ok(());
    }
    // SAFETY: as above; `settle` returned a tuple when asked for objects.
    let n = unsafe { ffi::PyTuple_Size(found.as_ptr()) };
    for i in 0..n.max(0) {
        // SAFETY: as above; `i` is in range, the item is borrowed from the
        // live tuple and stays alive (immortal from here on).
        unsafe { ffi::_Py_SetImmortal(ffi::PyTuple_GetItem(found.as_ptr(), i)) };
    }
    Ok(())
}

/// Imports the modules named in `ERYX_PREIMPORT` (comma-separated) through
/// the prelude's `preimport` (which also loads a package's lazily exported
/// names and forgets the import system's finder for `/site-packages`). The
/// host sets it only in the store it pre-initialises a component in (a
/// sandbox's environment is empty), so that the snapshot has them loaded.
fn preimport(py: Python, list: &str) -> Result<(), Failure> {
    if list.is_empty() {
        return Ok(());
    }
    let import = prelude_function(py, c"preimport")?;
    #[allow(
        clippy::manual_pattern_char_comparison,
        reason = "`split(',')` searches with `memchr`: ~1 KB more of the runtime"
    )]
    for name in list.split(|c| c == ',').filter(|n| !n.is_empty()) {
        py.call(&import, vec![py.new_str(name)?])
            .map_err(|e| Failure(["pre-import of `", name, "` raised ", e.message()].concat()))?;
    }
    Ok(())
}

/// Whether `os.environ` (and libc's environment) may be another instance's:
/// set by a start-up that is being pre-initialised, so it holds in every
/// instance made from the snapshot, whose host may give it other
/// variables (the embedder's); cleared by the instance's first call
/// ([`Python::get`] once Python runs), which reads the environment again
/// ([`Python::sync_environ`]). An instance that started Python itself read
/// its own environment at start-up.
static ENVIRON_STALE: AtomicBool = AtomicBool::new(false);

#[cfg(target_arch = "wasm32")]
unsafe extern "C" {
    /// wasi-libc: forgets the environment it read (the next look at it
    /// asks the host again).
    fn __wasilibc_deinitialize_environ();
    /// wasi-libc: the environment, `NAME=VALUE` strings (read from the host
    /// first if it was forgotten).
    fn __wasilibc_get_environ() -> *const *const c_char;
    /// wasi-libc: forgets the preopened directories, so that the next path
    /// lookup asks the host for them again.
    fn __wasilibc_reset_preopens();
    /// wasi-libc's working directory (initially a static `"/"`; `chdir`
    /// replaces it with a malloc'd string and frees only those).
    static mut __wasilibc_cwd: *const core::ffi::c_char;
}

/// Local time for libc's `localtime_r` and `mktime` (see `libc_fix`):
/// the prelude's `local_time(data)` in the zone `TZ` names, `data` the
/// `len` bytes at `arg` (a `time_t`, or a `struct tm`'s nine fields).
/// Fills `out` with its answer, a `time_t` and a whole `struct tm` as
/// wasi-libc lays them out, and returns true; false when there is no
/// answer (no interpreter yet, an unknown zone, a time out of range): then
/// the caller gives UTC, as it does when called while an exception is set.
/// An exception raised on the way is dropped; callable from C code without
/// the GIL.
///
/// # Safety
/// `arg` points to `len` readable bytes.
#[cfg(target_arch = "wasm32")]
pub(crate) unsafe fn zone_time(arg: *const c_char, len: isize, out: &mut [u8; 52]) -> bool {
    // SAFETY: the guest is single-threaded; a shared look at `STATE`,
    // which is written once, by `Python::get` after start-up returns (a
    // call during start-up sees `Uninit` and answers UTC); `Python::prelude`
    // reads it the same way while Python runs.
    let State::Ready(prelude) = (unsafe { &*STATE.0.get() }) else {
        return false;
    };
    // SAFETY: the interpreter runs (`Ready`); the GIL is taken for the
    // calls and given back after. `y#` takes a pointer and a `Py_ssize_t`, the
    // caller's buffer; the answer's bytes are copied while it lives.
    unsafe {
        let gil = ffi::PyGILState_Ensure();
        // Called while an exception is being raised: UTC, not a call.
        if !ffi::PyErr_Occurred().is_null() {
            ffi::PyGILState_Release(gil);
            return false;
        }
        let result =
            ffi::PyObject_CallFunction(prelude.local_time.as_ptr(), c"y#".as_ptr(), arg, len);
        let mut ptr: *mut c_char = std::ptr::null_mut();
        let mut n: isize = 0;
        let ok = !result.is_null()
            && ffi::PyBytes_AsStringAndSize(result, &mut ptr, &mut n) == 0
            && n == out.len() as isize;
        if ok {
            std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), out.as_mut_ptr(), out.len());
        }
        ffi::Py_DecRef(result);
        ffi::PyErr_Clear();
        ffi::PyGILState_Release(gil);
        ok
    }
}

/// The sandbox's scratch directory, the working directory every instance
/// starts in (the host sets `TMPDIR` to it too).
#[cfg(target_arch = "wasm32")]
const SCRATCH: &CStr = c"/tmp";

/// Makes `/tmp` the working directory by setting wasi-libc's record of it
/// directly: `chdir` would look the path up (the first path lookup of an
/// instance asks the host for its preopens, ~0.1 ms) and a pre-initialised
/// snapshot has no `/tmp` to look up. An instance without a `/tmp`
/// (`Limits::tmp_bytes` = 0) has a working directory that does not exist,
/// as `/` did not before.
fn enter_scratch() {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: a plain store to libc's global on the one thread; the string
    // is static, and libc frees the old value only if it malloc'd it.
    unsafe {
        __wasilibc_cwd = SCRATCH.as_ptr()
    };
}

/// Drops wasi-libc's cached WASI resource handles (the preopens) once
/// start-up is done. A pre-initialised snapshot of this instance (taken
/// right after start-up) would otherwise hold handles that mean nothing in
/// the instances made from it; this way each instance fetches its own on
/// first use. Costs one host call in a normal instance.
fn forget_wasi_handles() {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: a plain libc call with no arguments, made on the one thread,
    // while no directory stream or path lookup is in progress.
    unsafe {
        __wasilibc_reset_preopens()
    };
}

/// # Safety
/// `cfg` must be a live config and the interpreter not yet initialized.
unsafe fn configure_and_init(cfg: *mut ffi::PyInitConfig) -> Result<(), Failure> {
    let ints: &[(&CStr, i64)] = &[
        (c"install_signal_handlers", 0),
        (c"site_import", 0),
        (c"user_site_directory", 0),
        (c"write_bytecode", 0),
        (c"parse_argv", 0),
        (c"safe_path", 1),
        (c"faulthandler", 0),
        (c"buffered_stdio", 0),
        // UTF-8 mode (PEP 540): file names, `open()`'s default and the
        // standard streams are UTF-8. The isolated preset turns it off, and
        // WASI's C locale would make file names ASCII (`open("café.txt")`
        // raised UnicodeEncodeError).
        (c"utf8_mode", 1),
    ];
    for (name, v) in ints {
        // SAFETY: forwarded to the caller.
        unsafe { set_int(cfg, name, *v)? };
    }
    let home = crate::nul_terminated(HOME).expect("no NUL");
    // SAFETY: forwarded to the caller; both strings are NUL-terminated.
    if unsafe { ffi::PyInitConfig_SetStr(cfg, c"home".as_ptr(), home.as_ptr().cast()) } != 0 {
        // SAFETY: forwarded to the caller.
        return Err(unsafe { config_error(cfg) });
    }
    let stdlib = crate::nul_terminated(STDLIB).expect("no NUL");
    // `sys._stdlib_dir`: with explicit search paths CPython leaves it unset,
    // and then the frozen stdlib modules (`os`, `codecs`, `posixpath`, ...)
    // have no `__file__` (tools locate the stdlib by `os.__file__`;
    // `inspect.getsource(os.path.join)` failed).
    // SAFETY: forwarded to the caller; both strings are NUL-terminated.
    if unsafe { ffi::PyInitConfig_SetStr(cfg, c"stdlib_dir".as_ptr(), stdlib.as_ptr().cast()) } != 0
    {
        // SAFETY: forwarded to the caller.
        return Err(unsafe { config_error(cfg) });
    }
    let site = crate::nul_terminated(SITE_PACKAGES).expect("no NUL");
    let paths: [*mut c_char; 2] = [
        stdlib.as_ptr().cast_mut().cast(),
        site.as_ptr().cast_mut().cast(),
    ];
    // SAFETY: forwarded to the caller; valid NUL-terminated items.
    if unsafe {
        ffi::PyInitConfig_SetStrList(
            cfg,
            c"module_search_paths".as_ptr(),
            paths.len(),
            paths.as_ptr(),
        )
    } != 0
    {
        // SAFETY: forwarded to the caller.
        return Err(unsafe { config_error(cfg) });
    }
    // SAFETY: forwarded to the caller.
    if unsafe { ffi::Py_InitializeFromInitConfig(cfg) } != 0 {
        // SAFETY: forwarded to the caller.
        let msg = unsafe { config_error(cfg) };
        return Err(Failure(
            [
                "Python failed to start: ",
                msg.message(),
                " (the standard library is expected read-only at ",
                STDLIB,
                ")",
            ]
            .concat(),
        ));
    }
    Ok(())
}

/// The prelude's module name: `src/prelude.py`, which `cargo xtask dist`
/// puts into the bundle's stdlib as `_eryx_prelude.py` and compiles to
/// bytecode with the rest (compiling its source in the guest took 35 ms at
/// every start without a snapshot; it is no longer part of this library's
/// bytes either).
const PRELUDE_MODULE: &CStr = c"_eryx_prelude";

fn load_prelude(py: Python) -> Result<Prelude, Failure> {
    let fail = |e: Failure| e.context("loading the eryx prelude failed");
    // The world's imports, as the built-in module `_host` (which the
    // prelude imports).
    // SAFETY: interpreter running, GIL held; called once, at start-up.
    let host = unsafe { crate::host::module() }
        .map(Obj)
        .ok_or_else(|| fail(py.take_error()))?;
    // SAFETY: as above; a borrowed reference to `sys.modules`.
    let modules = unsafe { ffi::PyImport_GetModuleDict() };
    // SAFETY: as above; `PyDict_SetItemString` does not steal.
    if unsafe { ffi::PyDict_SetItemString(modules, c"_host".as_ptr(), host.as_ptr()) } != 0 {
        return Err(fail(py.take_error()));
    }
    // SAFETY: as above; NUL-terminated name.
    let module = py
        .own(unsafe { ffi::PyImport_ImportModule(PRELUDE_MODULE.as_ptr()) })
        .map_err(|e| {
            fail(
                e.context(
                    &[
                        "importing `_eryx_prelude` from the bundle's stdlib (",
                        STDLIB,
                        "; a bundle from `cargo xtask dist` has it)",
                    ]
                    .concat(),
                ),
            )
        })?;
    let get = |name: &CStr| -> Result<Obj, Failure> {
        // SAFETY: as above; a live module object and a NUL-terminated name.
        py.own(unsafe { ffi::PyObject_GetAttrString(module.as_ptr(), name.as_ptr()) })
            .map_err(|e| {
                fail(
                    e.context(
                        &[
                            "the prelude defines no `",
                            &eryx_ffi::utf8_or_replaced(name.to_bytes().to_vec()),
                            "`",
                        ]
                        .concat(),
                    ),
                )
            })
    };
    Ok(Prelude {
        execute: get(c"execute")?,
        clear: get(c"clear")?,
        snapshot: get(c"snapshot")?,
        restore: get(c"restore")?,
        sync_environ: get(c"sync_environ")?,
        local_time: get(c"local_time")?,
        keys: Default::default(),
    })
}

/// A record the prelude returned (a `dict` keyed by the WIT field names in
/// snake case), read field by field by the generated `read_from`s.
struct PyFields<'a> {
    py: Python,
    obj: &'a Obj,
}

impl PyFields<'_> {
    /// The field's value, borrowed from the dict.
    fn get(&self, name: &'static str) -> Result<*mut ffi::PyObject, Failure> {
        let key = self.py.field_key(name)?;
        // SAFETY: interpreter running, GIL held (token); a live dict and key
        // (the key is kept in the prelude's cache); the result is borrowed
        // from the dict.
        let item = unsafe { ffi::PyDict_GetItemWithError(self.obj.as_ptr(), key) };
        if item.is_null() {
            // SAFETY: as above.
            if !unsafe { ffi::PyErr_Occurred() }.is_null() {
                return Err(self.py.take_error());
            }
            return Err(Failure(
                [
                    "the prelude's result has no field `",
                    name,
                    "` (prelude.py and wit/sandbox.wit disagree)",
                ]
                .concat(),
            ));
        }
        Ok(item)
    }

    /// The field as an owned object.
    fn owned(&self, name: &'static str) -> Result<Obj, Failure> {
        Ok(self.py.retain(self.get(name)?))
    }
}

impl Fields for PyFields<'_> {
    type Error = Failure;

    fn field<T: Field<Self>>(&self, name: &'static str) -> Result<T, Failure> {
        T::read(self, name)
    }
}

impl Field<PyFields<'_>> for String {
    fn read(src: &PyFields<'_>, name: &'static str) -> Result<String, Failure> {
        Ok(src.py.str_of(src.get(name)?))
    }
}

impl Field<PyFields<'_>> for Option<i32> {
    fn read(src: &PyFields<'_>, name: &'static str) -> Result<Option<i32>, Failure> {
        let o = src.get(name)?;
        if src.py.is_none(o) {
            return Ok(None);
        }
        // SAFETY: interpreter running, GIL held (token); a live object.
        let v = unsafe { ffi::PyLong_AsLongLong(o) };
        // SAFETY: as above.
        if v == -1 && !unsafe { ffi::PyErr_Occurred() }.is_null() {
            return Err(src.py.take_error());
        }
        i32::try_from(v).map(Some).map_err(|_| {
            Failure(
                [
                    "field `",
                    name,
                    "`: ",
                    &eryx_ffi::decimal(v),
                    " is not an s32",
                ]
                .concat(),
            )
        })
    }
}

impl Field<PyFields<'_>> for bool {
    fn read(src: &PyFields<'_>, name: &'static str) -> Result<bool, Failure> {
        // SAFETY: interpreter running, GIL held (token); a live object.
        match unsafe { ffi::PyObject_IsTrue(src.get(name)?) } {
            -1 => Err(src.py.take_error()),
            v => Ok(v == 1),
        }
    }
}

impl Field<PyFields<'_>> for Option<String> {
    fn read(src: &PyFields<'_>, name: &'static str) -> Result<Option<String>, Failure> {
        let o = src.get(name)?;
        Ok((!src.py.is_none(o)).then(|| src.py.str_of(o)))
    }
}

impl Field<PyFields<'_>> for Option<PythonException> {
    fn read(src: &PyFields<'_>, name: &'static str) -> Result<Option<PythonException>, Failure> {
        let o = src.owned(name)?;
        if src.py.is_none(o.as_ptr()) {
            return Ok(None);
        }
        PythonException::read_from(&PyFields {
            py: src.py,
            obj: &o,
        })
        .map(Some)
    }
}

impl Field<PyFields<'_>> for Vec<u8> {
    fn read(src: &PyFields<'_>, name: &'static str) -> Result<Vec<u8>, Failure> {
        src.py.bytes_of(src.get(name)?)
    }
}

impl Field<PyFields<'_>> for Vec<String> {
    fn read(src: &PyFields<'_>, name: &'static str) -> Result<Vec<String>, Failure> {
        let seq = src.owned(name)?;
        (0..src.py.len(&seq)?)
            .map(|i| src.py.seq_item(&seq, i).map(|s| src.py.to_string(&s)))
            .collect()
    }
}
