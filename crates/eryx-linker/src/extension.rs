//! Native extension modules: validated when added, linked `dl_openable`
//! under the absolute path CPython's importer will `dlopen`.
//!
//! An extension is a wasm shared library (`@dylink.0`) named
//! `<module>.cpython-314-wasm32-wasi.so` or `<module>.abi3.so`. CPython finds
//! the file on its search path and calls `dlopen(path)`; the linker's
//! built-in libdl resolves that path only to libraries linked into the
//! component, so nothing else can ever be loaded.

use crate::{LibraryInfo, LinkError, validate_library};

/// The suffixes CPython 3.14 for WASI imports extension modules from.
pub const EXTENSION_SUFFIXES: &[&str] = &[".cpython-314-wasm32-wasi.so", ".abi3.so"];

/// Where package files appear in the guest (read-only, on `sys.path`).
pub const SITE_PACKAGES: &str = "/site-packages";

/// A validated extension module.
#[derive(Debug, Clone)]
pub struct Extension {
    guest_path: String,
    bytes: Vec<u8>,
    info: LibraryInfo,
}

impl Extension {
    /// Validates `bytes` as the extension at `guest_path` (absolute, e.g.
    /// `/site-packages/pkg/_native.cpython-314-wasm32-wasi.so`).
    pub fn new(guest_path: impl Into<String>, bytes: Vec<u8>) -> Result<Extension, LinkError> {
        let guest_path = guest_path.into();
        let file = guest_path.rsplit('/').next().unwrap_or(&guest_path);
        if !EXTENSION_SUFFIXES
            .iter()
            .any(|s| file.ends_with(s) && file.len() > s.len())
        {
            return Err(LinkError::ExtensionName {
                name: guest_path.clone(),
                reason: match file.find(".cpython-") {
                    Some(_) => {
                        "it is built for another Python or platform (this runtime is CPython 3.14 for wasm32-wasi)"
                    }
                    None => {
                        "CPython 3.14 for WASI only imports `<module>.cpython-314-wasm32-wasi.so` or `<module>.abi3.so`"
                    }
                },
            });
        }
        let info = validate_library(&guest_path, &bytes)?;
        Ok(Extension {
            guest_path,
            bytes,
            info,
        })
    }

    /// The absolute guest path (also its library name in the component).
    pub fn guest_path(&self) -> &str {
        &self.guest_path
    }

    /// The module bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// What validation found.
    pub fn info(&self) -> &LibraryInfo {
        &self.info
    }
}
