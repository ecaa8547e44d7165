//! The linker's errors: each names the file (or step) that failed and the fix.

use std::error::Error as StdError;

use crate::BundleError;

/// A boxed error from a dependency (wit-component returns `anyhow::Error`;
/// it is kept whole as the `source`, not flattened into a string).
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a library could not be validated or a component could not be linked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The dist bundle is missing, corrupt or stale.
    #[error(transparent)]
    Bundle(#[from] BundleError),

    /// The file does not start with the wasm magic.
    #[error(
        "`{name}` is not a WebAssembly module (it starts with {found}{hint}); build it for wasm32-wasi as a shared library"
    )]
    NotWasm {
        /// The library's file name.
        name: String,
        /// Its first bytes, in hex.
        found: String,
        /// A guess at what it is instead.
        hint: &'static str,
    },

    /// A wasm component (or other non-module binary) where a core module was expected.
    #[error(
        "`{name}` is a WebAssembly component, not a core module; link the core shared library instead"
    )]
    NotCoreModule {
        /// The library's file name.
        name: String,
    },

    /// A core module without a `dylink.0` section.
    #[error(
        "`{name}` is a WebAssembly module but not a shared library (it has no `dylink.0` section): rebuild it with -fPIC and -shared"
    )]
    NotSharedLibrary {
        /// The library's file name.
        name: String,
    },

    /// The module or its `dylink.0` section cannot be parsed.
    #[error("`{name}` is malformed")]
    Malformed {
        /// The library's file name.
        name: String,
        /// The parser's error, with its byte offset.
        #[source]
        source: wasmparser::BinaryReaderError,
    },

    /// The `dylink.0` section has a subsection this linker does not understand.
    #[error(
        "`{name}` has an unknown `dylink.0` subsection (id {id}) at offset {offset:#x}; rebuild it with a supported toolchain"
    )]
    UnknownDylinkSubsection {
        /// The library's file name.
        name: String,
        /// The subsection id.
        id: u8,
        /// Its byte offset in the file.
        offset: u64,
    },

    /// An extension's file name is not one CPython 3.14 for WASI imports.
    #[error("`{name}` cannot be an extension module: {reason}")]
    ExtensionName {
        /// The extension's path.
        name: String,
        /// Why.
        reason: &'static str,
    },

    /// Two packages ship a library of the same name, or one shadows a base
    /// library.
    #[error(
        "`{second}` is a second library named `{name}` (the first: {first}); libraries are linked by file name, so only one can be: drop one of the packages or rename the library"
    )]
    DuplicateLibrary {
        /// The library file name.
        name: String,
        /// Where the first one comes from.
        first: String,
        /// The second one's path.
        second: String,
    },

    /// Two extensions export the same symbol.
    #[error(
        "`{first}` and `{second}` both export `{symbol}`; only one definition can be linked: drop one of the extensions, or rebuild one with the symbol hidden (not exported)"
    )]
    DuplicateExport {
        /// The symbol.
        symbol: String,
        /// One extension (the lexically smaller path).
        first: String,
        /// The other.
        second: String,
    },

    /// An extension needs a library that is neither a base library nor
    /// another extension.
    #[error(
        "`{name}` needs `{needed}`, which is not in the base libraries or the extension set; add it as an extension or rebuild without it"
    )]
    MissingLibrary {
        /// The extension.
        name: String,
        /// The missing library.
        needed: String,
    },

    /// An extension imports functions that nothing exports.
    #[error("`{name}` needs symbols nothing provides: {}; it was built against another Python or needs a library that is not linked", symbols.join(", "))]
    UnresolvedImports {
        /// The extension.
        name: String,
        /// Each missing symbol.
        symbols: Vec<String>,
    },

    /// The WIT world could not be parsed or the bindings generated.
    #[error("generating the guest bindings from wit/sandbox.wit failed")]
    Bindings {
        /// What went wrong.
        #[source]
        source: BoxError,
    },

    /// wit-component refused a library.
    #[error("the linker refused `{name}`")]
    AddLibrary {
        /// The library's file name.
        name: String,
        /// wit-component's error.
        #[source]
        source: BoxError,
    },

    /// wit-component refused the adapter.
    #[error("the linker refused the wasi_snapshot_preview1 adapter")]
    Adapter {
        /// wit-component's error.
        #[source]
        source: BoxError,
    },

    /// Linking failed (missing libraries, unresolved symbols, validation).
    #[error("linking the component failed")]
    Link {
        /// wit-component's error (its text names the libraries and symbols).
        #[source]
        source: BoxError,
    },

    /// The linked component could not be parsed to take its library
    /// modules out (a bug: the linker's own output is malformed).
    #[error("taking the library modules out of the linked component failed: {message}")]
    Split {
        /// What the parser said.
        message: String,
    },

    /// The linked component's env module could not be read to make its
    /// trampolines the same in every set (a bug: the linker's own output is
    /// malformed; the message names what the parser or encoder said).
    #[error(
        "rewriting the trampolines of the linked component's env module failed: {message} (a bug in eryx-linker or wit-component: report it with the extension set)"
    )]
    Rebase {
        /// What the parser or encoder said.
        message: String,
    },
}

impl LinkError {
    /// The library or extension module the error is about, as it was named
    /// to [`crate::Extension::new`] or [`crate::Extension::library`] (an
    /// extension's guest path), when the error is about one file: it cannot
    /// be read as a shared library, its name is not an extension's, or it
    /// needs what the set does not provide.
    pub fn file(&self) -> Option<&str> {
        match self {
            LinkError::NotWasm { name, .. }
            | LinkError::NotCoreModule { name }
            | LinkError::NotSharedLibrary { name }
            | LinkError::Malformed { name, .. }
            | LinkError::UnknownDylinkSubsection { name, .. }
            | LinkError::ExtensionName { name, .. }
            | LinkError::MissingLibrary { name, .. }
            | LinkError::UnresolvedImports { name, .. } => Some(name),
            _ => None,
        }
    }
}
