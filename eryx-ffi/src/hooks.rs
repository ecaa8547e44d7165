//! The generic implementation of every `wit_dylib_*` hook.
//!
//! [`crate::export!`] emits the `#[unsafe(no_mangle)]` symbols and forwards
//! to these functions. Everything here is independent of the language: it
//! converts between the canonical ABI and [`Value`]s on the [`Call`] stack,
//! following the conventions of wit-dylib 0.257 (`bindgen.rs`):
//! - arguments of an export are pushed in order, the last one on top;
//! - a record/tuple pop pushes its fields so that the first is on top;
//! - a variant/option/result push pops its payload first, if the case has one;
//! - `pop_list` returns a pointer for `list<u8>` (the bytes stay alive in the
//!   call) and otherwise pushes an iterator drained by `pop_list_iter_next`.
//!
//! A value of the wrong shape on the stack is a bug in the interpreter; it
//! aborts with a message rather than corrupting memory.

use std::alloc::Layout;
use std::ffi::c_void;

use crate::call::Slot;
use crate::raw;
use crate::{Call, Interpreter, Type, Value, Wit, bug};

/// Callback code returned by an async export that finished synchronously.
const CALLBACK_CODE_EXIT: u32 = 0;

/// Turns the `cx` pointer back into the call.
///
/// # Safety
/// `cx` must come from [`export_start`] (or an import call) and not be freed.
pub unsafe fn cx<'a>(cx: *mut c_void) -> &'a mut Call {
    if cx.is_null() {
        bug("null call context");
    }
    // SAFETY: forwarded to the caller.
    unsafe { &mut *cx.cast::<Call>() }
}

/// `cabi_realloc`: the allocator the canonical ABI uses for strings and lists.
///
/// # Safety
/// `old` must be null or a live allocation of `old_len` bytes with `align`
/// made by this function.
pub unsafe fn cabi_realloc(old: *mut u8, old_len: usize, align: usize, new_len: usize) -> *mut u8 {
    let Ok(new_layout) = Layout::from_size_align(new_len, align) else {
        bug("cabi_realloc: invalid alignment");
    };
    if new_len == 0 {
        if !old.is_null() && old_len != 0 {
            // SAFETY: `old` is a live allocation of `old_len` bytes (contract).
            unsafe { std::alloc::dealloc(old, Layout::from_size_align_unchecked(old_len, align)) };
        }
        return align as *mut u8;
    }
    let ptr = if old.is_null() || old_len == 0 {
        // SAFETY: `new_len` is non-zero.
        unsafe { std::alloc::alloc(new_layout) }
    } else {
        // SAFETY: `old` is a live allocation of `old_len` bytes with `align`
        // (contract), and `new_len` is non-zero.
        unsafe {
            std::alloc::realloc(
                old,
                Layout::from_size_align_unchecked(old_len, align),
                new_len,
            )
        }
    };
    if ptr.is_null() {
        std::alloc::handle_alloc_error(new_layout);
    }
    ptr
}

/// Takes ownership of a `cabi_realloc` buffer of `len` bytes, alignment 1.
///
/// # Safety
/// `ptr` must be a live `cabi_realloc(0, 0, 1, len)` allocation, or `len` 0.
unsafe fn take_bytes(ptr: *mut u8, len: usize) -> Vec<u8> {
    if len == 0 {
        return Vec::new();
    }
    // SAFETY: forwarded to the caller: the Rust global allocator (libc
    // malloc on wasi) made this buffer with layout (len, 1).
    unsafe { Vec::from_raw_parts(ptr, len, len) }
}

/// `wit_dylib_dealloc_bytes`.
///
/// # Safety
/// `ptr` must be a live `cabi_realloc` allocation of `size` bytes and `align`.
pub unsafe fn dealloc_bytes(cx: &mut Call, ptr: *mut u8, size: usize, align: usize, defer: bool) {
    if ptr.is_null() || size == 0 {
        return;
    }
    let Ok(layout) = Layout::from_size_align(size, align) else {
        bug("dealloc_bytes: invalid alignment");
    };
    if defer {
        cx.deferred.push((ptr, layout));
    } else {
        // SAFETY: forwarded to the caller.
        unsafe { std::alloc::dealloc(ptr, layout) };
    }
}

macro_rules! prim {
    ($($push:ident $pop:ident $variant:ident $t:ty;)*) => {$(
        #[doc = concat!("`wit_dylib_push_", stringify!($variant), "`")]
        pub fn $push(cx: &mut Call, v: $t) {
            cx.push(Value::$variant(v));
        }
        #[doc = concat!("`wit_dylib_pop_", stringify!($variant), "`")]
        pub fn $pop(cx: &mut Call) -> $t {
            match cx.pop() {
                Value::$variant(v) => v,
                other => bug_shape(stringify!($variant), &other),
            }
        }
    )*};
}

prim! {
    push_u8 pop_u8 U8 u8;
    push_s8 pop_s8 S8 i8;
    push_u16 pop_u16 U16 u16;
    push_s16 pop_s16 S16 i16;
    push_u32 pop_u32 U32 u32;
    push_s32 pop_s32 S32 i32;
    push_u64 pop_u64 U64 u64;
    push_s64 pop_s64 S64 i64;
    push_f32 pop_f32 F32 f32;
    push_f64 pop_f64 F64 f64;
    push_bool pop_bool Bool bool;
}

fn bug_shape(expected: &str, found: &Value) -> ! {
    bug(&[
        "expected a ",
        expected,
        " on the stack, found a ",
        found.shape(),
    ]
    .concat())
}

/// `wit_dylib_push_char`
pub fn push_char(cx: &mut Call, v: u32) {
    cx.push(Value::Char(
        char::from_u32(v).unwrap_or(char::REPLACEMENT_CHARACTER),
    ));
}

/// `wit_dylib_pop_char`
pub fn pop_char(cx: &mut Call) -> u32 {
    match cx.pop() {
        Value::Char(c) => c as u32,
        other => bug_shape("char", &other),
    }
}

/// `wit_dylib_push_{flags,enum,borrow,own,future,stream}`
pub fn push_handle_like(cx: &mut Call, kind: u32, v: u32) {
    cx.push(match kind {
        raw::WIT_TYPE_FLAGS => Value::Flags(v),
        raw::WIT_TYPE_ENUM => Value::Enum(v),
        _ => Value::Handle(v),
    });
}

/// `wit_dylib_pop_{flags,enum,borrow,own,future,stream}`
pub fn pop_handle_like(cx: &mut Call) -> u32 {
    match cx.pop() {
        Value::Flags(v) | Value::Enum(v) | Value::Handle(v) => v,
        other => bug_shape("handle, enum or flags", &other),
    }
}

/// `wit_dylib_push_string`: takes ownership of the buffer.
///
/// # Safety
/// `ptr` must be a `cabi_realloc` allocation of `len` bytes, alignment 1.
pub unsafe fn push_string(cx: &mut Call, ptr: *mut u8, len: usize) {
    // SAFETY: forwarded to the caller.
    let bytes = unsafe { take_bytes(ptr, len) };
    // The canonical ABI guarantees UTF-8; never trust it into UB.
    cx.push(Value::String(crate::utf8_or_replaced(bytes)));
}

/// `wit_dylib_pop_string`: the bytes stay alive until the call is dropped.
pub fn pop_string(cx: &mut Call, out: &mut *const u8) -> usize {
    let s = match cx.pop() {
        Value::String(s) => s,
        other => bug_shape("string", &other),
    };
    let bytes = s.into_bytes();
    *out = bytes.as_ptr();
    let len = bytes.len();
    cx.keep.push(bytes);
    len
}

fn wit(cx: &Call) -> Wit {
    cx.wit
}

/// `wit_dylib_push_record`: pops the fields, last on top.
pub fn push_record(cx: &mut Call, ty: usize) {
    let n = wit(cx).record_fields(ty).len();
    let fields = cx.pop_n(n);
    cx.push(Value::Record(fields));
}

/// `wit_dylib_pop_record`: pushes the fields, first on top.
pub fn pop_record(cx: &mut Call, ty: usize) {
    let n = wit(cx).record_fields(ty).len();
    let fields = match cx.pop() {
        Value::Record(f) => f,
        other => bug_shape("record", &other),
    };
    if fields.len() != n {
        bug("record value has the wrong number of fields");
    }
    for f in fields.into_iter().rev() {
        cx.push(f);
    }
}

/// `wit_dylib_push_tuple`
pub fn push_tuple(cx: &mut Call, ty: usize) {
    let n = wit(cx).tuple_types(ty).len();
    let items = cx.pop_n(n);
    cx.push(Value::Tuple(items));
}

/// `wit_dylib_pop_tuple`
pub fn pop_tuple(cx: &mut Call, ty: usize) {
    let n = wit(cx).tuple_types(ty).len();
    let items = match cx.pop() {
        Value::Tuple(t) => t,
        other => bug_shape("tuple", &other),
    };
    if items.len() != n {
        bug("tuple value has the wrong number of elements");
    }
    for v in items.into_iter().rev() {
        cx.push(v);
    }
}

fn push_cased(cx: &mut Call, discr: u32, payload_ty: Type) {
    let payload = if payload_ty.is_empty() {
        None
    } else {
        Some(Box::new(cx.pop()))
    };
    cx.push(Value::Variant(discr, payload));
}

fn pop_cased(cx: &mut Call, payload_ty: impl Fn(u32) -> Type) -> u32 {
    let (discr, payload) = match cx.pop() {
        Value::Variant(d, p) => (d, p),
        other => bug_shape("variant", &other),
    };
    match (payload_ty(discr).is_empty(), payload) {
        (true, None) => {}
        (false, Some(p)) => cx.push(*p),
        (true, Some(_)) => bug("variant case has a payload its type does not declare"),
        (false, None) => bug("variant case is missing the payload its type declares"),
    }
    discr
}

/// `wit_dylib_push_option`
pub fn push_option(cx: &mut Call, ty: usize, discr: u32) {
    let payload = if discr == 0 {
        Type::EMPTY
    } else {
        wit(cx).option_payload(ty)
    };
    push_cased(cx, discr, payload);
}

/// `wit_dylib_pop_option`
pub fn pop_option(cx: &mut Call, ty: usize) -> u32 {
    let payload = wit(cx).option_payload(ty);
    pop_cased(cx, |d| if d == 0 { Type::EMPTY } else { payload })
}

/// `wit_dylib_push_result`
pub fn push_result(cx: &mut Call, ty: usize, discr: u32) {
    let (ok, err) = wit(cx).result_payloads(ty);
    push_cased(cx, discr, if discr == 0 { ok } else { err });
}

/// `wit_dylib_pop_result`
pub fn pop_result(cx: &mut Call, ty: usize) -> u32 {
    let (ok, err) = wit(cx).result_payloads(ty);
    pop_cased(cx, |d| if d == 0 { ok } else { err })
}

/// `wit_dylib_push_variant`
pub fn push_variant(cx: &mut Call, ty: usize, discr: u32) {
    let cases = wit(cx).variant_cases(ty);
    let Some(case) = cases.get(discr as usize) else {
        bug("variant discriminant out of range");
    };
    push_cased(cx, discr, Type(case.ty));
}

/// `wit_dylib_pop_variant`
pub fn pop_variant(cx: &mut Call, ty: usize) -> u32 {
    let cases = wit(cx).variant_cases(ty);
    pop_cased(cx, |d| match cases.get(d as usize) {
        Some(c) => Type(c.ty),
        None => bug("variant discriminant out of range"),
    })
}

fn is_byte_list(cx: &Call, ty: usize) -> bool {
    let w = wit(cx);
    w.resolve(w.list_element(ty)).kind() == raw::WIT_TYPE_U8
}

/// `wit_dylib_push_list`: takes `list<u8>` buffers whole; otherwise starts
/// an empty list for `list_append`.
///
/// # Safety
/// `ptr` must be a `cabi_realloc` allocation of `len` elements.
pub unsafe fn push_list(cx: &mut Call, ty: usize, ptr: *mut u8, len: usize) -> bool {
    if is_byte_list(cx, ty) {
        // SAFETY: forwarded to the caller; `u8` elements have alignment 1.
        let bytes = unsafe { take_bytes(ptr, len) };
        cx.push(Value::Bytes(bytes));
        true
    } else {
        cx.push(Value::List(Vec::with_capacity(len)));
        false
    }
}

/// `wit_dylib_list_append`
pub fn list_append(cx: &mut Call) {
    let v = cx.pop();
    match cx.top_mut() {
        Slot::Value(Value::List(items)) => items.push(v),
        _ => bug("list_append without a list on the stack"),
    }
}

/// `wit_dylib_pop_list`
pub fn pop_list(cx: &mut Call, ty: usize, out: &mut *const u8) -> usize {
    let v = cx.pop();
    let byte_list = is_byte_list(cx, ty);
    match v {
        Value::Bytes(bytes) if byte_list => {
            *out = bytes.as_ptr();
            let len = bytes.len();
            cx.keep.push(bytes);
            len
        }
        Value::Bytes(bytes) => {
            let items: Vec<Value> = bytes.into_iter().map(Value::U8).collect();
            *out = std::ptr::null();
            let len = items.len();
            cx.stack.push(Slot::ListIter(items.into_iter()));
            len
        }
        Value::List(items) => {
            *out = std::ptr::null();
            let len = items.len();
            cx.stack.push(Slot::ListIter(items.into_iter()));
            len
        }
        other => bug_shape("list", &other),
    }
}

/// `wit_dylib_pop_list_iter_next`
pub fn pop_list_iter_next(cx: &mut Call) {
    let next = match cx.top_mut() {
        Slot::ListIter(it) => it.next(),
        _ => bug("pop_list_iter_next without a list iterator on the stack"),
    };
    match next {
        Some(v) => cx.push(v),
        None => bug("list iterator exhausted"),
    }
}

/// `wit_dylib_pop_list_iter` and `wit_dylib_pop_map_iter`
pub fn pop_iter(cx: &mut Call) {
    match cx.stack.pop() {
        Some(Slot::ListIter(_) | Slot::MapIter(_)) => {}
        _ => bug("expected an iterator on the stack"),
    }
}

/// `wit_dylib_push_map`
pub fn push_map(cx: &mut Call, len: usize) {
    cx.push(Value::Map(Vec::with_capacity(len)));
}

/// `wit_dylib_map_append`: the key was pushed first, the value is on top.
pub fn map_append(cx: &mut Call) {
    let value = cx.pop();
    let key = cx.pop();
    match cx.top_mut() {
        Slot::Value(Value::Map(entries)) => entries.push((key, value)),
        _ => bug("map_append without a map on the stack"),
    }
}

/// `wit_dylib_pop_map`: returns the length and pushes an iterator.
pub fn pop_map(cx: &mut Call) -> usize {
    let entries = match cx.pop() {
        Value::Map(e) => e,
        other => bug_shape("map", &other),
    };
    let len = entries.len();
    cx.stack.push(Slot::MapIter(entries.into_iter()));
    len
}

/// `wit_dylib_pop_map_iter_next`: pushes the value, then the key (on top).
pub fn pop_map_iter_next(cx: &mut Call) {
    let next = match cx.top_mut() {
        Slot::MapIter(it) => it.next(),
        _ => bug("pop_map_iter_next without a map iterator on the stack"),
    };
    match next {
        Some((k, v)) => {
            cx.push(v);
            cx.push(k);
        }
        None => bug("map iterator exhausted"),
    }
}

fn export(which: usize) -> crate::ExportFunc {
    match crate::wit().export_func(which) {
        Some(f) => f,
        None => bug("export index out of range"),
    }
}

/// `wit_dylib_export_start`: a new call context, owned by the caller.
pub fn export_start(_which: usize) -> *mut c_void {
    Box::into_raw(Box::new(Call::new(crate::wit()))).cast()
}

fn run<I: Interpreter>(cx: &mut Call, which: usize) {
    let func = export(which);
    let args = cx.pop_n(func.params().len());
    let result = I::call_export(func, args);
    match (result, func.result().is_empty()) {
        (Some(v), false) => cx.push(v),
        (None, true) => {}
        (Some(_), true) => bug("the interpreter returned a value for a function without a result"),
        (None, false) => bug("the interpreter returned no value for a function with a result"),
    }
}

/// `wit_dylib_export_call`: a sync export; the result stays on the stack.
pub fn export_call<I: Interpreter>(cx: &mut Call, which: usize) {
    run::<I>(cx, which);
}

/// `wit_dylib_export_async_call`: runs the export to completion, hands the
/// result to `task.return`, frees the context and returns EXIT.
///
/// # Safety
/// `cx` must come from [`export_start`]; this function takes ownership of it.
pub unsafe fn export_async_call<I: Interpreter>(cx: *mut c_void, which: usize) -> u32 {
    if cx.is_null() {
        bug("null call context");
    }
    // SAFETY: `cx` was made by `export_start` with `Box::into_raw`, and the
    // async calling convention hands its ownership to this function.
    let mut call = unsafe { Box::from_raw(cx.cast::<Call>()) };
    run::<I>(&mut call, which);
    let Some(task_return) = export(which).task_return() else {
        bug("async export without a task.return");
    };
    let ptr: *mut Call = &mut *call;
    // SAFETY: the generated `task.return` wrapper pops the result from this
    // live context and lowers it; the context outlives the call.
    unsafe { task_return(ptr.cast()) };
    drop(call);
    CALLBACK_CODE_EXIT
}

/// `wit_dylib_export_finish`: frees the context of a sync export.
///
/// # Safety
/// `cx` must come from [`export_start`] and not be used afterwards.
pub unsafe fn export_finish(cx: *mut c_void) {
    if !cx.is_null() {
        // SAFETY: made by `export_start` with `Box::into_raw`; freed once.
        drop(unsafe { Box::from_raw(cx.cast::<Call>()) });
    }
}

/// Calls a synchronously bound import: pushes `args` (first on top), calls
/// it and pops its result.
pub fn call_import(func: crate::ImportFunc, args: Vec<Value>) -> Option<Value> {
    let Some(f) = func.sync_impl() else {
        bug("async imports are not supported yet");
    };
    let mut call = Box::new(Call::new(crate::wit()));
    for a in args.into_iter().rev() {
        call.push(a);
    }
    let ptr: *mut Call = &mut *call;
    // SAFETY: the generated import wrapper pops its parameters from this
    // live context and pushes the result onto it.
    unsafe { f(ptr.cast()) };
    if func.result().is_empty() {
        None
    } else {
        Some(call.pop())
    }
}
