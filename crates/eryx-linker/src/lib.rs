//! Links CPython, the eryx runtime and native extensions into one
//! WebAssembly component (placeholder: being written).
#![deny(missing_docs)]

pub mod bundle;
mod libraries;

pub use bundle::{Bundle, BundleError, Manifest};
pub use libraries::{BASE_LIBRARIES, BINDINGS_LIBRARY, BaseLibrary, PYTHON_LIBRARY, RUNTIME_LIBRARY};
