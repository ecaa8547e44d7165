//! Headers of the non-limited API (`Include/cpython/`).

pub mod initconfig;

pub use initconfig::*;
