//! `pyport.h`: basic types.

/// `Py_ssize_t`: a signed `size_t` (32 bits on wasm32).
pub type Py_ssize_t = isize;
