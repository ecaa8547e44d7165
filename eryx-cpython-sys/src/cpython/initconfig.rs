//! `cpython/initconfig.h`: the PEP 741 initialization API.
//!
//! Its configuration object is opaque, so no struct layout has to be mirrored
//! (unlike `PyConfig`). Note that [`PyInitConfig_Create`] starts from the
//! *isolated* preset: environment variables are ignored.

use core::ffi::{c_char, c_int};

/// An opaque initialization configuration.
#[repr(C)]
pub struct PyInitConfig {
    _opaque: [u8; 0],
}

unsafe extern "C" {
    /// A new configuration with the isolated defaults, or NULL on memory failure.
    pub fn PyInitConfig_Create() -> *mut PyInitConfig;
    /// Frees a configuration.
    pub fn PyInitConfig_Free(config: *mut PyInitConfig);
    /// Sets an integer option; 0, or -1 with an error stored in the config.
    pub fn PyInitConfig_SetInt(config: *mut PyInitConfig, name: *const c_char, value: i64)
    -> c_int;
    /// Sets a string option (UTF-8); 0 or -1.
    pub fn PyInitConfig_SetStr(
        config: *mut PyInitConfig,
        name: *const c_char,
        value: *const c_char,
    ) -> c_int;
    /// Sets a string-list option (UTF-8 items); 0 or -1.
    pub fn PyInitConfig_SetStrList(
        config: *mut PyInitConfig,
        name: *const c_char,
        length: usize,
        items: *const *mut c_char,
    ) -> c_int;
    /// The stored error message (owned by the config); 1 if there is one, else 0.
    pub fn PyInitConfig_GetError(config: *mut PyInitConfig, err_msg: *mut *const c_char) -> c_int;
    /// Initializes Python from `config`; 0, or -1 with an error stored in the config.
    pub fn Py_InitializeFromInitConfig(config: *mut PyInitConfig) -> c_int;
}
