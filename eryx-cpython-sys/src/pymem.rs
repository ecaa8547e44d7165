//! `pymem.h` / `cpython/pymem.h`: the memory allocator domains and how to
//! replace an allocator.

use core::ffi::c_void;

/// An allocator domain (`PyMemAllocatorDomain`).
pub type PyMemAllocatorDomain = core::ffi::c_int;

/// `PyMem_RawMalloc()` and friends: callable without the GIL.
pub const PYMEM_DOMAIN_RAW: PyMemAllocatorDomain = 0;
/// `PyMem_Malloc()` and friends.
pub const PYMEM_DOMAIN_MEM: PyMemAllocatorDomain = 1;
/// `PyObject_Malloc()` and friends.
pub const PYMEM_DOMAIN_OBJ: PyMemAllocatorDomain = 2;

/// An allocator: four functions and the context passed to each.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PyMemAllocatorEx {
    /// Passed as the first argument of every function.
    pub ctx: *mut c_void,
    /// Allocates `size` bytes (a unique non-NULL pointer for 0), or NULL.
    pub malloc: Option<unsafe extern "C" fn(ctx: *mut c_void, size: usize) -> *mut c_void>,
    /// Allocates `nelem * elsize` zeroed bytes, or NULL.
    pub calloc:
        Option<unsafe extern "C" fn(ctx: *mut c_void, nelem: usize, elsize: usize) -> *mut c_void>,
    /// Resizes `ptr` (NULL: allocates), or NULL leaving `ptr` unchanged.
    pub realloc: Option<
        unsafe extern "C" fn(ctx: *mut c_void, ptr: *mut c_void, new_size: usize) -> *mut c_void,
    >,
    /// Frees `ptr` (NULL: nothing).
    pub free: Option<unsafe extern "C" fn(ctx: *mut c_void, ptr: *mut c_void)>,
}

unsafe extern "C" {
    /// Installs `allocator` (copied) for `domain`. Before `Py_Initialize*`
    /// for the domain to serve every allocation of the interpreter.
    pub fn PyMem_SetAllocator(domain: PyMemAllocatorDomain, allocator: *mut PyMemAllocatorEx);
    /// Copies the current allocator of `domain` into `allocator`.
    pub fn PyMem_GetAllocator(domain: PyMemAllocatorDomain, allocator: *mut PyMemAllocatorEx);
}
