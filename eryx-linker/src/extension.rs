//! Native extension modules: validated when added, linked `dl_openable`
//! under the absolute path CPython's importer will `dlopen`.
//!
//! An extension is a wasm shared library (`@dylink.0`) named
//! `<module>.cpython-314-wasm32-wasi.so` or `<module>.abi3.so`. CPython finds
//! the file on its search path and calls `dlopen(path)`; the linker's
//! built-in libdl resolves that path only to libraries linked into the
//! component, so nothing else can ever be loaded.

use crate::layout::{ABI3_SUFFIX, EXTENSION_SUFFIXES};
use crate::{LibraryInfo, LinkError, validate_library};

/// What a shared library exports its static constructors as (wasm-ld's
/// name); the component's start-up calls every library's.
const CALL_CTORS: &str = "__wasm_call_ctors";

/// What an extension module's static constructors are exported as once
/// added: not [`CALL_CTORS`], so that the component's start-up, which runs
/// before the interpreter exists, does not call them. The runtime calls
/// them when the module is first imported, just before its `PyInit_*`, as
/// `dlopen` does natively (C++ globals whose constructors call the Python
/// API need that). Same length as `__wasm_call_ctors`: the name is
/// rewritten in place.
pub const DEFERRED_CTORS: &str = "__eryx_call_ctors";

/// Renames an extension's `__wasm_call_ctors` export to
/// [`DEFERRED_CTORS`] in place; whether it had one. `bytes` is a module
/// [`validate_library`] accepted.
fn defer_constructors(bytes: &mut [u8]) -> bool {
    const _: () = assert!(CALL_CTORS.len() == DEFERRED_CTORS.len());
    let mut at = None;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let Ok(wasmparser::Payload::ExportSection(exports)) = payload else {
            continue;
        };
        for entry in exports.into_iter_with_offsets() {
            // An export starts with its name: a LEB128 length (one byte
            // for 17) and the bytes.
            if let Ok((offset, export)) = entry
                && export.name == CALL_CTORS
            {
                at = usize::try_from(offset).ok().map(|o| o + 1);
            }
        }
        break;
    }
    match at {
        Some(start)
            if bytes.get(start..start + CALL_CTORS.len()) == Some(CALL_CTORS.as_bytes()) =>
        {
            bytes[start..start + CALL_CTORS.len()].copy_from_slice(DEFERRED_CTORS.as_bytes());
            true
        }
        _ => false,
    }
}

/// A validated extension module, or a shared library that extension
/// modules need by name (see [`Extension::library`]).
#[derive(Debug, Clone)]
pub struct Extension {
    guest_path: String,
    bytes: Vec<u8>,
    info: LibraryInfo,
    library: bool,
    /// sha256 of `bytes`, computed at the first [`Extension::sha256`]
    /// (cache keys ask for it several times per sandbox build).
    sha256: std::sync::OnceLock<String>,
}

/// Whether a file name is a shared library's (`libfoo.so`, `libfoo.so.1`)
/// rather than an extension module's.
pub fn is_library_name(file: &str) -> bool {
    file.starts_with("lib")
        && (file.ends_with(".so") || file.contains(".so."))
        && !file.contains(".cpython-")
        && !file.ends_with(ABI3_SUFFIX)
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
        let mut bytes = bytes;
        let mut info = validate_library(&guest_path, &bytes)?;
        if defer_constructors(&mut bytes) {
            for name in &mut info.exports {
                if name == CALL_CTORS {
                    *name = DEFERRED_CTORS.to_string();
                }
            }
        }
        Ok(Extension {
            guest_path,
            bytes,
            info,
            library: false,
            sha256: std::sync::OnceLock::new(),
        })
    }

    /// Validates `bytes` as a shared library shipped in a package for its
    /// extensions (e.g. `/site-packages/pkg/libs/libfoo.so`): it is linked
    /// under its file name, which extensions name in their `@dylink.0`
    /// `needed` list, and is not importable or `dlopen`-able itself.
    pub fn library(guest_path: impl Into<String>, bytes: Vec<u8>) -> Result<Extension, LinkError> {
        let guest_path = guest_path.into();
        let file = guest_path.rsplit('/').next().unwrap_or(&guest_path);
        if !is_library_name(file) {
            return Err(LinkError::ExtensionName {
                name: guest_path.clone(),
                reason: "a shared library that extensions need is named `lib<name>.so`",
            });
        }
        let info = validate_library(&guest_path, &bytes)?;
        Ok(Extension {
            guest_path,
            bytes,
            info,
            library: true,
            sha256: std::sync::OnceLock::new(),
        })
    }

    /// Whether this is a needed-by-name library rather than a module.
    pub fn is_library(&self) -> bool {
        self.library
    }

    /// The name it is linked under: the guest path for a module (what
    /// CPython `dlopen`s), the file name for a library (what `needed` says).
    pub fn link_name(&self) -> &str {
        if self.library {
            self.guest_path
                .rsplit('/')
                .next()
                .unwrap_or(&self.guest_path)
        } else {
            &self.guest_path
        }
    }

    /// The absolute guest path (also its library name in the component).
    pub fn guest_path(&self) -> &str {
        &self.guest_path
    }

    /// Lower-case hex sha256 of the bytes (computed once).
    pub fn sha256(&self) -> &str {
        self.sha256.get_or_init(|| crate::sha256_hex(&self.bytes))
    }

    /// Gives the digest [`Extension::sha256`] returns, for a caller that
    /// remembers it from an earlier read of the same unchanged file, so the
    /// bytes are not hashed again (numpy's 19 modules: ~7 ms). It must be
    /// the digest of [`Extension::bytes`] (a wrong one makes a wrong cache
    /// key). `false`, changing nothing, if it is not 64 lower-case hex
    /// digits or a digest is already there.
    pub fn remember_sha256(&self, hex: &str) -> bool {
        let well_formed =
            hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        well_formed && self.sha256.set(hex.to_owned()).is_ok()
    }

    /// The module bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Takes the module bytes out (the extension is spent after).
    pub(crate) fn take_bytes(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }

    /// What validation found.
    pub fn info(&self) -> &LibraryInfo {
        &self.info
    }
}
