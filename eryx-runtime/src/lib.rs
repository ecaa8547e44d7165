//! The eryx guest: a wit-dylib interpreter runtime on CPython 3.14.
//!
//! Built for `wasm32-wasip1` as a PIC staticlib (with `-Z build-std`) and
//! clang-linked with `-shared` into `liberyx_runtime.so` by `cargo xtask
//! dist`. At run time the linker puts it first among the base libraries, and
//! the bindings generated from `wit/sandbox.wit` call its hooks.
//!
//! - [`eryx_ffi`] implements the hooks and the value stack;
//! - [`world`] is the sandbox world's typed view, generated from
//!   `wit/sandbox.wit` by `cargo xtask codegen`;
//! - [`exports`] implements its exports on Python;
//! - [`python`] owns every CPython call;
//! - [`cell`] reads where a session cell's last statement begins.
//!
//! The interpreter starts on the first export call (not in the instance's
//! constructors), so a start-up failure is reported as the `init` error of
//! that call instead of a trap.
#![allow(
    unsafe_code,
    reason = "the runtime calls CPython's C API; each call is in `python`"
)]
#![deny(missing_docs)]

pub mod cell;
mod deadlock;
pub mod exports;
mod fenv;
mod host;
mod libc_fix;
mod pyalloc;
pub mod python;
pub mod world;

/// `s` with a NUL appended, for C, or `None` if it has a NUL of its own.
/// Not `CString::new`: its NUL search is `memchr`, ~1.5 KB of this
/// library's code for a few short names.
pub(crate) fn nul_terminated(s: &str) -> Option<Vec<u8>> {
    if s.bytes().any(|b| b == 0) {
        return None;
    }
    let mut bytes = Vec::with_capacity(s.len() + 1);
    bytes.extend_from_slice(s.as_bytes());
    bytes.push(0);
    Some(bytes)
}

eryx_ffi::export!(exports::Runtime);
