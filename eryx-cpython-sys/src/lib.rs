//! Raw FFI declarations of the CPython 3.14 C API, as far as eryx uses it.
//!
//! Nothing but declarations: `extern "C"` functions, data symbols and
//! `#[repr(C)]` types, one module per CPython header (as pyo3-ffi lays them
//! out). Headers of the non-limited API live under [`cpython`]. Headers that
//! are not mirrored are listed at the end of this file.
//!
//! The library these symbols resolve against is `libpython3.14.so` for
//! `wasm32-wasi`, linked at run time by `eryx-linker`. The crate also compiles
//! on the host so `cargo check`, `cargo doc` and tests cover it; nothing in it
//! can be called there.
//!
//! # Safety
//!
//! Every function here is `unsafe` to call. The shared contract, instead of
//! per-item prose:
//! - the interpreter is initialized (except the `PyInitConfig_*` and
//!   `Py_InitializeFromInitConfig` functions, which initialize it), and the
//!   calling thread holds the GIL (eryx's guest is single-threaded and holds
//!   it for its whole life after initialization);
//! - every pointer argument is valid for the access CPython makes and points
//!   to an object of the type the function expects; C strings are
//!   NUL-terminated;
//! - ownership follows CPython's documentation: "new reference" results must
//!   be released with [`Py_DecRef`], "borrowed reference" results must not,
//!   and "steals a reference" arguments are consumed.
#![no_std]
#![allow(
    unsafe_code,
    reason = "an FFI declaration crate: every item is an extern declaration"
)]
#![allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    reason = "names mirror the C API"
)]
#![deny(missing_docs)]

mod abstract_;
mod boolobject;
mod bytesobject;
mod ceval;
pub mod cpython;
mod dictobject;
mod import;
mod longobject;
mod moduleobject;
mod object;
mod pyerrors;
mod pylifecycle;
mod pymem;
mod pyport;
mod pythonrun;
mod tupleobject;
mod unicodeobject;

pub use abstract_::*;
pub use boolobject::*;
pub use bytesobject::*;
pub use ceval::*;
pub use cpython::*;
pub use dictobject::*;
pub use import::*;
pub use longobject::*;
pub use moduleobject::*;
pub use object::*;
pub use pyerrors::*;
pub use pylifecycle::*;
pub use pymem::*;
pub use pyport::*;
pub use pythonrun::*;
pub use tupleobject::*;
pub use unicodeobject::*;

// skipped Python.h (umbrella header)
// skipped ceval.h, code.h, complexobject.h, descrobject.h
// skipped floatobject.h, listobject.h
// skipped setobject.h, sliceobject.h, sysmodule.h, warnings.h
// skipped everything else: add a module per header when the runtime needs it
