//! `pythonrun.h` and `ceval.h` entry points: compiling and evaluating source.

use core::ffi::{c_char, c_int};

use crate::PyObject;

/// The start symbol for a module (a sequence of statements).
pub const Py_file_input: c_int = 257;
/// The start symbol for a single expression.
pub const Py_eval_input: c_int = 258;

unsafe extern "C" {
    /// Compiles `str` as if read from `filename`; a new code object or NULL
    /// with an exception set.
    pub fn Py_CompileString(
        str: *const c_char,
        filename: *const c_char,
        start: c_int,
    ) -> *mut PyObject;
    /// Evaluates a code object in `globals`/`locals`; new reference or NULL
    /// with an exception set.
    pub fn PyEval_EvalCode(
        co: *mut PyObject,
        globals: *mut PyObject,
        locals: *mut PyObject,
    ) -> *mut PyObject;
    /// The builtins of the current frame (or of the interpreter); borrowed reference.
    pub fn PyEval_GetBuiltins() -> *mut PyObject;
}
