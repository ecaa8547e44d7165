//! Raw `#[repr(C)]` mirrors of `wit_dylib.h` from wit-dylib 0.257.1
//! (`WIT_CURRENT_VERSION` 3).
//!
//! Hand-written from the header; the sha256 of the header they were written
//! from is [`HEADER_SHA256`], and `tests/abi.rs` fails when the `wit-dylib`
//! crate's `C_HEADER` changes, so drift is caught by a test instead of
//! corrupting values. See the crate README for how to update.
//!
//! Pointers and `size_t` are 32 bits on wasm32, which is the only target
//! where these structs are ever read; `layout_checks` asserts the sizes there.

#![allow(non_camel_case_types, reason = "names mirror wit_dylib.h")]

use core::ffi::{c_char, c_void};

/// The sha256 of the `wit_dylib.h` these declarations mirror.
pub const HEADER_SHA256: &str = "34c2519df655b83b23286b592e039ab97a9cc187f7e85ad19ab001f8d00a0375";

/// The metadata version this crate understands (checked for equality).
pub const WIT_CURRENT_VERSION: u32 = 3;

/// `wit_type_t`: kind in the low 8 bits, index in the rest.
pub type wit_type_t = u32;

macro_rules! kinds {
    ($($name:ident = $v:literal,)*) => {
        $(
            #[doc = concat!("`", stringify!($name), "`")]
            pub const $name: u32 = $v;
        )*
    };
}

kinds! {
    WIT_TYPE_U8 = 0,
    WIT_TYPE_U16 = 1,
    WIT_TYPE_U32 = 2,
    WIT_TYPE_U64 = 3,
    WIT_TYPE_S8 = 4,
    WIT_TYPE_S16 = 5,
    WIT_TYPE_S32 = 6,
    WIT_TYPE_S64 = 7,
    WIT_TYPE_BOOL = 8,
    WIT_TYPE_CHAR = 9,
    WIT_TYPE_F32 = 10,
    WIT_TYPE_F64 = 11,
    WIT_TYPE_STRING = 12,
    WIT_TYPE_ERROR_CONTEXT = 13,
    WIT_TYPE_RECORD = 14,
    WIT_TYPE_OWN = 15,
    WIT_TYPE_BORROW = 16,
    WIT_TYPE_FLAGS = 17,
    WIT_TYPE_TUPLE = 18,
    WIT_TYPE_VARIANT = 19,
    WIT_TYPE_ENUM = 20,
    WIT_TYPE_OPTION = 21,
    WIT_TYPE_RESULT = 22,
    WIT_TYPE_LIST = 23,
    WIT_TYPE_MAP = 24,
    WIT_TYPE_FIXED_LENGTH_LIST = 25,
    WIT_TYPE_FUTURE = 26,
    WIT_TYPE_STREAM = 27,
    WIT_TYPE_ALIAS = 28,
    WIT_TYPE_EMPTY = 0xff,
}

/// `wit_import_fn_t`
pub type wit_import_fn_t = Option<unsafe extern "C" fn(cx: *mut c_void)>;
/// `wit_import_async_fn_t`
pub type wit_import_async_fn_t =
    Option<unsafe extern "C" fn(cx: *mut c_void, abi_area: *mut c_void) -> u32>;
/// `wit_import_async_lift_fn_t`
pub type wit_import_async_lift_fn_t =
    Option<unsafe extern "C" fn(cx: *mut c_void, abi_area: *mut c_void)>;
/// `wit_export_task_return_fn_t`
pub type wit_export_task_return_fn_t = Option<unsafe extern "C" fn(cx: *mut c_void)>;

/// `wit_import_func_t`
#[repr(C)]
pub struct wit_import_func_t {
    /// `interface`
    pub interface: *const c_char,
    /// `name`
    pub name: *const c_char,
    /// `impl`
    pub impl_: wit_import_fn_t,
    /// `async_impl`
    pub async_impl: wit_import_async_fn_t,
    /// `async_lift_impl`
    pub async_lift_impl: wit_import_async_lift_fn_t,
    /// `nparams`
    pub nparams: usize,
    /// `params`
    pub params: *const wit_type_t,
    /// `result`
    pub result: wit_type_t,
    /// `async_abi_area_size`
    pub async_abi_area_size: usize,
    /// `async_abi_area_align`
    pub async_abi_area_align: usize,
}

/// `wit_export_func_t`
#[repr(C)]
pub struct wit_export_func_t {
    /// `interface`
    pub interface: *const c_char,
    /// `name`
    pub name: *const c_char,
    /// `task_return`
    pub task_return: wit_export_task_return_fn_t,
    /// `nparams`
    pub nparams: usize,
    /// `params`
    pub params: *const wit_type_t,
    /// `result`
    pub result: wit_type_t,
}

/// `wit_resource_t`
#[repr(C)]
pub struct wit_resource_t {
    /// `interface`
    pub interface: *const c_char,
    /// `name`
    pub name: *const c_char,
    /// `drop`
    pub drop: Option<unsafe extern "C" fn(u32)>,
    /// `new` (nullable)
    pub new: Option<unsafe extern "C" fn(usize) -> u32>,
    /// `rep` (nullable)
    pub rep: Option<unsafe extern "C" fn(u32) -> usize>,
}

/// `wit_field_t`
#[repr(C)]
pub struct wit_field_t {
    /// `name`
    pub name: *const c_char,
    /// `ty`
    pub ty: wit_type_t,
}

/// `wit_record_t`
#[repr(C)]
pub struct wit_record_t {
    /// `interface`
    pub interface: *const c_char,
    /// `name`
    pub name: *const c_char,
    /// `nfields`
    pub nfields: usize,
    /// `fields`
    pub fields: *const wit_field_t,
}

/// `wit_flags_t`
#[repr(C)]
pub struct wit_flags_t {
    /// `interface`
    pub interface: *const c_char,
    /// `name`
    pub name: *const c_char,
    /// `nnames`
    pub nnames: usize,
    /// `names`
    pub names: *const *const c_char,
}

/// `wit_tuple_t`
#[repr(C)]
pub struct wit_tuple_t {
    /// `interface`
    pub interface: *const c_char,
    /// `name`
    pub name: *const c_char,
    /// `ntypes`
    pub ntypes: usize,
    /// `types`
    pub types: *const wit_type_t,
}

/// `wit_case_t`
#[repr(C)]
pub struct wit_case_t {
    /// `name`
    pub name: *const c_char,
    /// `ty`
    pub ty: wit_type_t,
}

/// `wit_variant_t`
#[repr(C)]
pub struct wit_variant_t {
    /// `interface`
    pub interface: *const c_char,
    /// `name`
    pub name: *const c_char,
    /// `ncases`
    pub ncases: usize,
    /// `cases`
    pub cases: *const wit_case_t,
}

/// `wit_enum_t`
#[repr(C)]
pub struct wit_enum_t {
    /// `interface`
    pub interface: *const c_char,
    /// `name`
    pub name: *const c_char,
    /// `nnames`
    pub nnames: usize,
    /// `names`
    pub names: *const *const c_char,
}

/// `wit_option_t`
#[repr(C)]
pub struct wit_option_t {
    /// `interface`
    pub interface: *const c_char,
    /// `name`
    pub name: *const c_char,
    /// `ty`
    pub ty: wit_type_t,
}

/// `wit_result_t`
#[repr(C)]
pub struct wit_result_t {
    /// `interface`
    pub interface: *const c_char,
    /// `name`
    pub name: *const c_char,
    /// `ok`
    pub ok: wit_type_t,
    /// `err`
    pub err: wit_type_t,
}

/// `wit_list_t`
#[repr(C)]
pub struct wit_list_t {
    /// `interface`
    pub interface: *const c_char,
    /// `name`
    pub name: *const c_char,
    /// `ty`
    pub ty: wit_type_t,
}

/// `wit_map_t`
#[repr(C)]
pub struct wit_map_t {
    /// `interface`
    pub interface: *const c_char,
    /// `name`
    pub name: *const c_char,
    /// `key_type`
    pub key_type: wit_type_t,
    /// `value_type`
    pub value_type: wit_type_t,
}

/// `wit_fixed_length_list_t`
#[repr(C)]
pub struct wit_fixed_length_list_t {
    /// `interface`
    pub interface: *const c_char,
    /// `name`
    pub name: *const c_char,
    /// `size`
    pub size: usize,
    /// `ty`
    pub ty: wit_type_t,
}

/// `wit_future_t` and `wit_stream_t` share this shape (their function
/// pointers differ in signature only; eryx does not call them yet).
#[repr(C)]
pub struct wit_async_payload_t {
    /// `interface`
    pub interface: *const c_char,
    /// `name`
    pub name: *const c_char,
    /// `ty`
    pub ty: wit_type_t,
    /// `new`, `read`, `write`, `cancel_read`, `cancel_write`,
    /// `drop_readable`, `drop_writable`, `lift`, `lower`
    pub fns: [*const c_void; 9],
    /// `abi_payload_size`
    pub abi_payload_size: usize,
    /// `abi_payload_align`
    pub abi_payload_align: usize,
}

/// `wit_alias_t`
#[repr(C)]
pub struct wit_alias_t {
    /// `interface`
    pub interface: *const c_char,
    /// `name`
    pub name: *const c_char,
    /// `ty`
    pub ty: wit_type_t,
}

/// `wit_t`: the metadata handed to `wit_dylib_initialize`.
#[repr(C)]
pub struct wit_t {
    /// `version`
    pub version: u32,
    /// `num_import_funcs`
    pub num_import_funcs: usize,
    /// `import_funcs`
    pub import_funcs: *const wit_import_func_t,
    /// `num_export_funcs`
    pub num_export_funcs: usize,
    /// `export_funcs`
    pub export_funcs: *const wit_export_func_t,
    /// `num_resources`
    pub num_resources: usize,
    /// `resources`
    pub resources: *const wit_resource_t,
    /// `num_records`
    pub num_records: usize,
    /// `records`
    pub records: *const wit_record_t,
    /// `num_flags`
    pub num_flags: usize,
    /// `flags`
    pub flags: *const wit_flags_t,
    /// `num_tuples`
    pub num_tuples: usize,
    /// `tuples`
    pub tuples: *const wit_tuple_t,
    /// `num_variants`
    pub num_variants: usize,
    /// `variants`
    pub variants: *const wit_variant_t,
    /// `num_enums`
    pub num_enums: usize,
    /// `enums`
    pub enums: *const wit_enum_t,
    /// `num_options`
    pub num_options: usize,
    /// `options`
    pub options: *const wit_option_t,
    /// `num_results`
    pub num_results: usize,
    /// `results`
    pub results: *const wit_result_t,
    /// `num_lists`
    pub num_lists: usize,
    /// `lists`
    pub lists: *const wit_list_t,
    /// `num_maps`
    pub num_maps: usize,
    /// `maps`
    pub maps: *const wit_map_t,
    /// `num_fixed_length_lists`
    pub num_fixed_length_lists: usize,
    /// `fixed_length_lists`
    pub fixed_length_lists: *const wit_fixed_length_list_t,
    /// `num_futures`
    pub num_futures: usize,
    /// `futures`
    pub futures: *const wit_async_payload_t,
    /// `num_streams`
    pub num_streams: usize,
    /// `streams`
    pub streams: *const wit_async_payload_t,
    /// `num_aliases`
    pub num_aliases: usize,
    /// `aliases`
    pub aliases: *const wit_alias_t,
}

#[cfg(target_pointer_width = "32")]
mod layout_checks {
    use super::*;
    use core::mem::size_of;
    const _: () = assert!(size_of::<wit_t>() == 4 + 16 * 8);
    const _: () = assert!(size_of::<wit_import_func_t>() == 40);
    const _: () = assert!(size_of::<wit_export_func_t>() == 24);
    const _: () = assert!(size_of::<wit_record_t>() == 16);
    const _: () = assert!(size_of::<wit_result_t>() == 16);
    const _: () = assert!(size_of::<wit_async_payload_t>() == 56);
    const _: () = assert!(size_of::<wit_fixed_length_list_t>() == 16);
}
