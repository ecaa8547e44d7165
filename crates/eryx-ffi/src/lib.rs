//! Rust bindings for the wit-dylib 0.257 interpreter ABI (being written).
#![deny(missing_docs)]

pub mod abi;
