//! Rust bindings for the wit-dylib 0.257.1 interpreter ABI.
//!
//! `wit-dylib` generates, from a WIT world, a dynamic library (the
//! *bindings*) that lifts and lowers canonical-ABI values by calling into an
//! *interpreter* through 67 `wit_dylib_*` hooks. This crate is everything an
//! interpreter needs that is not about its language:
//! - [`raw`]: `#[repr(C)]` mirrors of `wit_dylib.h` (version 3), checked
//!   against the `wit-dylib` crate's header by a test;
//! - [`abi`]: the exact list of hooks and their wasm signatures (from
//!   `bindgen.rs`, which disagrees with the header in three places: the
//!   header omits `export_async_call`/`export_async_callback`, declares
//!   `push_map` returning `bool` where it returns nothing, and `pop_map`
//!   returning nothing where it returns the length);
//! - [`Wit`]: a safe view of the metadata;
//! - [`Value`] and [`Call`]: a value stack that implements every push/pop
//!   hook generically;
//! - [`Interpreter`] and [`export!`]: the one trait a language implements,
//!   and the macro that emits the `extern "C"` symbols;
//! - [`world`]: support for code generated from a world (records read by
//!   field name, argument-shape errors, the metadata check).
//!
//! Async exports are driven to completion synchronously: the interpreter's
//! [`Interpreter::call_export`] returns the result, which is handed to the
//! export's `task.return` before `wit_dylib_export_async_call` returns EXIT.
//!
//! ```text
//! struct Python;
//! impl eryx_ffi::Interpreter for Python {
//!     fn call_export(func: eryx_ffi::ExportFunc, args: Vec<eryx_ffi::Value>) -> Option<eryx_ffi::Value> {
//!         todo!()
//!     }
//! }
//! eryx_ffi::export!(Python);
//! ```
#![allow(unsafe_code, reason = "FFI: this crate implements a C ABI")]
#![deny(missing_docs)]

pub mod abi;
mod call;
#[doc(hidden)]
pub mod hooks;
pub mod raw;
mod value;
mod wit;
pub mod world;

use std::sync::atomic::{AtomicPtr, Ordering};

pub use call::Call;
pub use hooks::call_import;
pub use value::Value;
pub use wit::{ExportFunc, ImportFunc, Type, Wit};

/// A language runtime behind the bindings.
pub trait Interpreter {
    /// Called once, from `wit_dylib_initialize` (during the instance's
    /// constructors), after the metadata's version was checked.
    fn initialize(wit: Wit) {
        let _ = wit;
    }

    /// Runs export `func` with its arguments (in declaration order) and
    /// returns its result (`None` for functions without one).
    fn call_export(func: ExportFunc, args: Vec<Value>) -> Option<Value>;
}

static WIT: AtomicPtr<raw::wit_t> = AtomicPtr::new(std::ptr::null_mut());

/// The metadata given to `wit_dylib_initialize`.
///
/// Aborts if called before initialization (a bug: the bindings' constructor
/// runs before any export can be called).
pub fn wit() -> Wit {
    let ptr = WIT.load(Ordering::Acquire);
    if ptr.is_null() {
        bug("wit_dylib_initialize has not run");
    }
    // SAFETY: stored by `initialize` from the pointer the bindings passed,
    // after its version was checked.
    unsafe { Wit::from_raw(ptr) }
}

/// `n` in decimal. The runtime's messages are built without `core::fmt`
/// (`format!`), whose machinery would otherwise be linked into it (~3 KB)
/// for a handful of cold error paths.
pub fn decimal(n: i64) -> String {
    let mut digits = Vec::with_capacity(20);
    let mut rest = n.unsigned_abs();
    loop {
        digits.push(b'0' + (rest % 10) as u8);
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        digits.push(b'-');
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// `bytes` as text: as they are when they are UTF-8 (what the canonical ABI
/// and CPython's UTF-8 buffers guarantee), otherwise with each byte above
/// ASCII replaced by `?`. A guard that never trusts a broken guarantee into
/// undefined behaviour, without `String::from_utf8_lossy`'s decoder (~1.2
/// KB of a size-tuned guest library).
pub fn utf8_or_replaced(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| {
        let mut bytes = e.into_bytes();
        for b in &mut bytes {
            if !b.is_ascii() {
                *b = b'?';
            }
        }
        String::from_utf8(bytes).unwrap_or_default()
    })
}

/// Reports a broken invariant of the ABI and aborts (a trap for the host).
#[cold]
pub fn bug(msg: &str) -> ! {
    let line = ["eryx-ffi: internal error: ", msg, "\n"].concat();
    write_stderr(line.as_bytes());
    std::process::abort()
}

/// One unformatted write to descriptor 2. In the guest through libc's
/// `write` (not `std::io::stderr()`, whose handle and `write_all` loop cost
/// ~0.5 KB of the runtime for this cold path alone).
#[cfg(target_arch = "wasm32")]
fn write_stderr(bytes: &[u8]) {
    unsafe extern "C" {
        fn write(fd: i32, buf: *const u8, len: usize) -> isize;
    }
    // SAFETY: `bytes` is a live slice of `len` bytes; a short or failed
    // write only loses the message of an abort that follows.
    unsafe { write(2, bytes.as_ptr(), bytes.len()) };
}

/// Elsewhere (host builds of the ABI tables) through std.
#[cfg(not(target_arch = "wasm32"))]
fn write_stderr(bytes: &[u8]) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(bytes);
}

/// `wit_dylib_initialize`: checks the metadata version exactly, stores the
/// metadata and calls [`Interpreter::initialize`].
///
/// # Safety
/// `ptr` must be the metadata pointer the bindings pass to `wit_dylib_initialize`.
#[doc(hidden)]
pub unsafe fn initialize<I: Interpreter>(ptr: *const raw::wit_t) {
    if ptr.is_null() {
        bug("wit_dylib_initialize: null metadata");
    }
    // SAFETY: the bindings pass a valid `wit_t`; its first field is the
    // version, which has the same layout in every version.
    let version = unsafe { (*ptr).version };
    if version != raw::WIT_CURRENT_VERSION {
        bug(&[
            "the bindings carry wit-dylib metadata version ",
            &decimal(version.into()),
            ", but this runtime implements version ",
            &decimal(raw::WIT_CURRENT_VERSION.into()),
            " (wit-dylib 0.257.1): regenerate the bindings or rebuild the runtime with \
             `cargo xtask dist` so that both use the same wit-dylib",
        ]
        .concat());
    }
    WIT.store(ptr.cast_mut(), Ordering::Release);
    I::initialize(wit());
}

/// Emits the `#[unsafe(no_mangle)]` `wit_dylib_*` hooks and `cabi_realloc`
/// for an [`Interpreter`] type. Use it once, in the crate that is linked
/// into the interpreter library.
#[macro_export]
macro_rules! export {
    ($interp:ty) => {
        const _: () = {
            use ::std::ffi::c_void;
            use $crate::hooks as h;

            /// `cabi_realloc`
            #[unsafe(no_mangle)]
            unsafe extern "C" fn cabi_realloc(
                old: *mut u8,
                old_len: usize,
                align: usize,
                new_len: usize,
            ) -> *mut u8 {
                // SAFETY: the canonical ABI passes back only pointers this
                // function returned, with their sizes and alignment.
                unsafe { h::cabi_realloc(old, old_len, align, new_len) }
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn wit_dylib_initialize(wit: *const $crate::raw::wit_t) {
                // SAFETY: called once by the bindings' constructor with their metadata.
                unsafe { $crate::initialize::<$interp>(wit) }
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn wit_dylib_dealloc_bytes(
                cx: *mut c_void,
                ptr: *mut u8,
                size: usize,
                align: usize,
                defer: bool,
            ) {
                // SAFETY: the bindings pass a live context and a buffer they
                // allocated with `cabi_realloc(size, align)`.
                unsafe { h::dealloc_bytes(h::cx(cx), ptr, size, align, defer) }
            }
            #[unsafe(no_mangle)]
            extern "C" fn wit_dylib_export_start(which: usize) -> *mut c_void {
                h::export_start(which)
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn wit_dylib_export_call(cx: *mut c_void, which: usize) {
                // SAFETY: `cx` comes from `wit_dylib_export_start`.
                h::export_call::<$interp>(unsafe { h::cx(cx) }, which)
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn wit_dylib_export_async_call(cx: *mut c_void, which: usize) -> u32 {
                // SAFETY: `cx` comes from `wit_dylib_export_start`; the async
                // convention hands its ownership to this call.
                unsafe { h::export_async_call::<$interp>(cx, which) }
            }
            #[unsafe(no_mangle)]
            extern "C" fn wit_dylib_export_async_callback(
                _e0: u32,
                _e1: u32,
                _e2: u32,
                _which: usize,
            ) -> u32 {
                $crate::bug("export_async_callback: this runtime never returns WAIT or YIELD")
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn wit_dylib_export_finish(cx: *mut c_void, _which: usize) {
                // SAFETY: post-return passes the context of the finished call, once.
                unsafe { h::export_finish(cx) }
            }
            #[unsafe(no_mangle)]
            extern "C" fn wit_dylib_resource_dtor(_ty: usize, _handle: usize) {
                $crate::bug("resource_dtor: the sandbox world has no resources")
            }
            $crate::__prims! {
                wit_dylib_push_u8 push_u8 wit_dylib_pop_u8 pop_u8 u8;
                wit_dylib_push_s8 push_s8 wit_dylib_pop_s8 pop_s8 i8;
                wit_dylib_push_u16 push_u16 wit_dylib_pop_u16 pop_u16 u16;
                wit_dylib_push_s16 push_s16 wit_dylib_pop_s16 pop_s16 i16;
                wit_dylib_push_u32 push_u32 wit_dylib_pop_u32 pop_u32 u32;
                wit_dylib_push_s32 push_s32 wit_dylib_pop_s32 pop_s32 i32;
                wit_dylib_push_u64 push_u64 wit_dylib_pop_u64 pop_u64 u64;
                wit_dylib_push_s64 push_s64 wit_dylib_pop_s64 pop_s64 i64;
                wit_dylib_push_f32 push_f32 wit_dylib_pop_f32 pop_f32 f32;
                wit_dylib_push_f64 push_f64 wit_dylib_pop_f64 pop_f64 f64;
                wit_dylib_push_bool push_bool wit_dylib_pop_bool pop_bool bool;
                wit_dylib_push_char push_char wit_dylib_pop_char pop_char u32;
            }
            $crate::__handles! {
                wit_dylib_push_flags wit_dylib_pop_flags FLAGS;
                wit_dylib_push_enum wit_dylib_pop_enum ENUM;
                wit_dylib_push_borrow wit_dylib_pop_borrow BORROW;
                wit_dylib_push_own wit_dylib_pop_own OWN;
                wit_dylib_push_future wit_dylib_pop_future FUTURE;
                wit_dylib_push_stream wit_dylib_pop_stream STREAM;
            }
            $crate::__typed! {
                wit_dylib_push_record push_record;
                wit_dylib_pop_record pop_record;
                wit_dylib_push_tuple push_tuple;
                wit_dylib_pop_tuple pop_tuple;
            }
            $crate::__cased! {
                wit_dylib_push_option push_option wit_dylib_pop_option pop_option;
                wit_dylib_push_result push_result wit_dylib_pop_result pop_result;
                wit_dylib_push_variant push_variant wit_dylib_pop_variant pop_variant;
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn wit_dylib_push_string(cx: *mut c_void, ptr: *mut u8, len: usize) {
                // SAFETY: live context; the buffer is a `cabi_realloc`
                // allocation whose ownership the bindings hand over.
                unsafe { h::push_string(h::cx(cx), ptr, len) }
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn wit_dylib_pop_string(
                cx: *mut c_void,
                out: *mut *const u8,
            ) -> usize {
                // SAFETY: live context; `out` points to a writable pointer slot.
                unsafe { h::pop_string(h::cx(cx), &mut *out) }
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn wit_dylib_push_list(
                cx: *mut c_void,
                ty: usize,
                ptr: *mut u8,
                len: usize,
            ) -> bool {
                // SAFETY: live context; the buffer is a `cabi_realloc`
                // allocation of `len` elements of list type `ty`.
                unsafe { h::push_list(h::cx(cx), ty, ptr, len) }
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn wit_dylib_list_append(cx: *mut c_void, _ty: usize) {
                // SAFETY: live context.
                h::list_append(unsafe { h::cx(cx) })
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn wit_dylib_pop_list(
                cx: *mut c_void,
                ty: usize,
                out: *mut *const u8,
            ) -> usize {
                // SAFETY: live context; `out` points to a writable pointer slot.
                unsafe { h::pop_list(h::cx(cx), ty, &mut *out) }
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn wit_dylib_pop_list_iter_next(cx: *mut c_void, _ty: usize) {
                // SAFETY: live context.
                h::pop_list_iter_next(unsafe { h::cx(cx) })
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn wit_dylib_pop_list_iter(cx: *mut c_void, _ty: usize) {
                // SAFETY: live context.
                h::pop_iter(unsafe { h::cx(cx) })
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn wit_dylib_push_map(cx: *mut c_void, _ty: usize, len: usize) {
                // SAFETY: live context.
                h::push_map(unsafe { h::cx(cx) }, len)
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn wit_dylib_map_append(cx: *mut c_void, _ty: usize) {
                // SAFETY: live context.
                h::map_append(unsafe { h::cx(cx) })
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn wit_dylib_pop_map(cx: *mut c_void, _ty: usize) -> usize {
                // SAFETY: live context.
                h::pop_map(unsafe { h::cx(cx) })
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn wit_dylib_pop_map_iter_next(cx: *mut c_void, _ty: usize) {
                // SAFETY: live context.
                h::pop_map_iter_next(unsafe { h::cx(cx) })
            }
            #[unsafe(no_mangle)]
            unsafe extern "C" fn wit_dylib_pop_map_iter(cx: *mut c_void, _ty: usize) {
                // SAFETY: live context.
                h::pop_iter(unsafe { h::cx(cx) })
            }
        };
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __prims {
    ($($push:ident $hpush:ident $pop:ident $hpop:ident $t:ty;)*) => {$(
        #[unsafe(no_mangle)]
        unsafe extern "C" fn $push(cx: *mut ::std::ffi::c_void, v: $t) {
            // SAFETY: the bindings pass a live context.
            $crate::hooks::$hpush(unsafe { $crate::hooks::cx(cx) }, v)
        }
        #[unsafe(no_mangle)]
        unsafe extern "C" fn $pop(cx: *mut ::std::ffi::c_void) -> $t {
            // SAFETY: the bindings pass a live context.
            $crate::hooks::$hpop(unsafe { $crate::hooks::cx(cx) })
        }
    )*};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __handles {
    ($($push:ident $pop:ident $kind:ident;)*) => {$(
        #[unsafe(no_mangle)]
        unsafe extern "C" fn $push(cx: *mut ::std::ffi::c_void, _ty: usize, v: u32) {
            $crate::__kind_push!(cx, v, $kind)
        }
        #[unsafe(no_mangle)]
        unsafe extern "C" fn $pop(cx: *mut ::std::ffi::c_void, _ty: usize) -> u32 {
            // SAFETY: the bindings pass a live context.
            $crate::hooks::pop_handle_like(unsafe { $crate::hooks::cx(cx) })
        }
    )*};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __kind_push {
    ($cx:ident, $v:ident, $kind:ident) => {
        $crate::hooks::push_handle_like(
            // SAFETY: the bindings pass a live context.
            unsafe { $crate::hooks::cx($cx) },
            $crate::__kind!($kind),
            $v,
        )
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __kind {
    (FLAGS) => {
        $crate::raw::WIT_TYPE_FLAGS
    };
    (ENUM) => {
        $crate::raw::WIT_TYPE_ENUM
    };
    (BORROW) => {
        $crate::raw::WIT_TYPE_BORROW
    };
    (OWN) => {
        $crate::raw::WIT_TYPE_OWN
    };
    (FUTURE) => {
        $crate::raw::WIT_TYPE_FUTURE
    };
    (STREAM) => {
        $crate::raw::WIT_TYPE_STREAM
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __typed {
    ($($name:ident $h:ident;)*) => {$(
        #[unsafe(no_mangle)]
        unsafe extern "C" fn $name(cx: *mut ::std::ffi::c_void, ty: usize) {
            // SAFETY: the bindings pass a live context.
            $crate::hooks::$h(unsafe { $crate::hooks::cx(cx) }, ty)
        }
    )*};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __cased {
    ($($push:ident $hpush:ident $pop:ident $hpop:ident;)*) => {$(
        #[unsafe(no_mangle)]
        unsafe extern "C" fn $push(cx: *mut ::std::ffi::c_void, ty: usize, discr: u32) {
            // SAFETY: the bindings pass a live context.
            $crate::hooks::$hpush(unsafe { $crate::hooks::cx(cx) }, ty, discr)
        }
        #[unsafe(no_mangle)]
        unsafe extern "C" fn $pop(cx: *mut ::std::ffi::c_void, ty: usize) -> u32 {
            // SAFETY: the bindings pass a live context.
            $crate::hooks::$hpop(unsafe { $crate::hooks::cx(cx) }, ty)
        }
    )*};
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimal_writes_every_i64_as_display_does() {
        for n in [
            0,
            7,
            -7,
            10,
            1_234_567,
            i64::from(i32::MAX) + 1,
            i64::MAX,
            i64::MIN,
        ] {
            assert_eq!(super::decimal(n), n.to_string());
        }
    }
}
