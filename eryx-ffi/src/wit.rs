//! A safe, read-only view of the `wit_t` metadata.
//!
//! The metadata is a data segment of the generated bindings library: it is
//! written once, before `wit_dylib_initialize` runs, and lives as long as the
//! instance. [`Wit`] wraps the pointer and hands out `'static` slices.

use core::ffi::{CStr, c_char, c_void};

use crate::raw;

/// A WIT type as the metadata encodes it (kind and index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Type(pub u32);

impl Type {
    /// The "no type" marker (`WIT_TYPE_EMPTY`), used for absent payloads.
    pub const EMPTY: Type = Type(0xffff_ffff);

    /// The kind (`raw::WIT_TYPE_*`).
    pub fn kind(self) -> u32 {
        self.0 & 0xff
    }

    /// The index into the per-kind table.
    pub fn index(self) -> usize {
        (self.0 >> 8) as usize
    }

    /// Whether this is [`Type::EMPTY`].
    pub fn is_empty(self) -> bool {
        self.kind() == raw::WIT_TYPE_EMPTY
    }
}

/// The metadata of the world, as given to `wit_dylib_initialize`.
#[derive(Clone, Copy)]
pub struct Wit {
    raw: &'static raw::wit_t,
}

/// Reads a `(len, ptr)` pair as a slice.
///
/// # Safety
/// `ptr` must point to `len` initialized `T`s that live forever, or `len` is 0.
unsafe fn slice<T>(ptr: *const T, len: usize) -> &'static [T] {
    if len == 0 || ptr.is_null() {
        &[]
    } else {
        // SAFETY: forwarded to the caller.
        unsafe { core::slice::from_raw_parts(ptr, len) }
    }
}

/// Reads a nullable C string of the metadata.
fn cstr(ptr: *const c_char) -> Option<&'static str> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: the metadata's strings are NUL-terminated static data of the
    // bindings module (they are WIT identifiers: ASCII).
    let s = unsafe { CStr::from_ptr(ptr) };
    s.to_str().ok()
}

impl Wit {
    /// Wraps the metadata pointer.
    ///
    /// # Safety
    /// `ptr` must be the pointer given to `wit_dylib_initialize`: a valid
    /// `wit_t` of [`raw::WIT_CURRENT_VERSION`] whose arrays live forever.
    pub unsafe fn from_raw(ptr: *const raw::wit_t) -> Wit {
        // SAFETY: forwarded to the caller.
        let raw = unsafe { &*ptr };
        Wit { raw }
    }

    /// The metadata version.
    pub fn version(&self) -> u32 {
        self.raw.version
    }

    /// The exported functions.
    pub fn export_funcs(&self) -> impl ExactSizeIterator<Item = ExportFunc> + '_ {
        // SAFETY: the metadata arrays are static (see `from_raw`).
        let funcs = unsafe { slice(self.raw.export_funcs, self.raw.num_export_funcs) };
        funcs.iter().map(|raw| ExportFunc { raw })
    }

    /// The exported function number `which`, if it exists.
    pub fn export_func(&self, which: usize) -> Option<ExportFunc> {
        self.export_funcs().nth(which)
    }

    /// The imported functions.
    pub fn import_funcs(&self) -> impl ExactSizeIterator<Item = ImportFunc> + '_ {
        // SAFETY: the metadata arrays are static (see `from_raw`).
        let funcs = unsafe { slice(self.raw.import_funcs, self.raw.num_import_funcs) };
        funcs.iter().map(|raw| ImportFunc { raw })
    }

    /// The number of fields of record `index`.
    pub fn record_fields(&self, index: usize) -> &'static [raw::wit_field_t] {
        // SAFETY: the metadata arrays are static (see `from_raw`).
        let records = unsafe { slice(self.raw.records, self.raw.num_records) };
        let r = &records[index];
        // SAFETY: as above.
        unsafe { slice(r.fields, r.nfields) }
    }

    /// The element types of tuple `index`.
    pub fn tuple_types(&self, index: usize) -> &'static [raw::wit_type_t] {
        // SAFETY: the metadata arrays are static (see `from_raw`).
        let tuples = unsafe { slice(self.raw.tuples, self.raw.num_tuples) };
        let t = &tuples[index];
        // SAFETY: as above.
        unsafe { slice(t.types, t.ntypes) }
    }

    /// The cases of variant `index`.
    pub fn variant_cases(&self, index: usize) -> &'static [raw::wit_case_t] {
        // SAFETY: the metadata arrays are static (see `from_raw`).
        let variants = unsafe { slice(self.raw.variants, self.raw.num_variants) };
        let v = &variants[index];
        // SAFETY: as above.
        unsafe { slice(v.cases, v.ncases) }
    }

    /// The case names of variant `index`.
    pub fn variant_case_names(&self, index: usize) -> impl Iterator<Item = &'static str> {
        self.variant_cases(index)
            .iter()
            .map(|c| cstr(c.name).unwrap_or(""))
    }

    /// The payload type of option `index`.
    pub fn option_payload(&self, index: usize) -> Type {
        // SAFETY: the metadata arrays are static (see `from_raw`).
        let options = unsafe { slice(self.raw.options, self.raw.num_options) };
        Type(options[index].ty)
    }

    /// The `(ok, err)` payload types of result `index`.
    pub fn result_payloads(&self, index: usize) -> (Type, Type) {
        // SAFETY: the metadata arrays are static (see `from_raw`).
        let results = unsafe { slice(self.raw.results, self.raw.num_results) };
        (Type(results[index].ok), Type(results[index].err))
    }

    /// The element type of list `index`.
    pub fn list_element(&self, index: usize) -> Type {
        // SAFETY: the metadata arrays are static (see `from_raw`).
        let lists = unsafe { slice(self.raw.lists, self.raw.num_lists) };
        Type(lists[index].ty)
    }

    /// Follows aliases to the underlying type.
    pub fn resolve(&self, mut ty: Type) -> Type {
        while ty.kind() == raw::WIT_TYPE_ALIAS {
            // SAFETY: the metadata arrays are static (see `from_raw`).
            let aliases = unsafe { slice(self.raw.aliases, self.raw.num_aliases) };
            ty = Type(aliases[ty.index()].ty);
        }
        ty
    }

    /// The number of variant types.
    pub fn variant_count(&self) -> usize {
        self.raw.num_variants
    }

    /// The name of the variant type `index` (None for anonymous types).
    pub fn variant_name(&self, index: usize) -> Option<&'static str> {
        // SAFETY: the metadata arrays are static (see `from_raw`).
        let variants = unsafe { slice(self.raw.variants, self.raw.num_variants) };
        cstr(variants[index].name)
    }
}

/// An exported function.
#[derive(Clone, Copy)]
pub struct ExportFunc {
    raw: &'static raw::wit_export_func_t,
}

impl ExportFunc {
    /// The function name (kebab-case, as in the WIT).
    pub fn name(&self) -> &'static str {
        cstr(self.raw.name).unwrap_or("")
    }

    /// The interface it belongs to, `None` for world-level functions.
    pub fn interface(&self) -> Option<&'static str> {
        cstr(self.raw.interface)
    }

    /// The parameter types.
    pub fn params(&self) -> &'static [raw::wit_type_t] {
        // SAFETY: the metadata arrays are static (see `Wit::from_raw`).
        unsafe { slice(self.raw.params, self.raw.nparams) }
    }

    /// The result type ([`Type::EMPTY`] if none).
    pub fn result(&self) -> Type {
        Type(self.raw.result)
    }

    /// The generated `task.return` wrapper, set for async exports.
    pub(crate) fn task_return(&self) -> raw::wit_export_task_return_fn_t {
        self.raw.task_return
    }

    /// Whether this export is lifted async (it has a `task.return`).
    pub fn is_async(&self) -> bool {
        self.raw.task_return.is_some()
    }
}

/// An imported function.
#[derive(Clone, Copy)]
pub struct ImportFunc {
    raw: &'static raw::wit_import_func_t,
}

impl ImportFunc {
    /// The function name.
    pub fn name(&self) -> &'static str {
        cstr(self.raw.name).unwrap_or("")
    }

    /// The interface it belongs to, `None` for world-level functions.
    pub fn interface(&self) -> Option<&'static str> {
        cstr(self.raw.interface)
    }

    /// The result type ([`Type::EMPTY`] if none).
    pub fn result(&self) -> Type {
        Type(self.raw.result)
    }

    /// The synchronous entry point, if this import is bound synchronously.
    pub(crate) fn sync_impl(&self) -> Option<unsafe extern "C" fn(*mut c_void)> {
        self.raw.impl_
    }
}
