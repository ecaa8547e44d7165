//! Links CPython, the eryx runtime and native extension modules into one
//! WebAssembly component.
//!
//! - [`bundle`]: the dist bundle (`manifest.json`, hash-checked reads);
//! - [`layout`]: the guest's paths and extension file names;
//! - [`Extension`]: an extension module, validated when it is added;
//! - [`BASE_LIBRARIES`]: the one table of base libraries and their order;
//! - [`validate_library`]: eager `@dylink.0` validation, naming the file;
//! - [`bindings`] and [`link`]: the guest bindings from `wit/sandbox.wit`,
//!   and the component.
//!
//! ```no_run
//! let bundle = eryx_linker::Bundle::open("target/dist")?;
//! let component: Vec<u8> = eryx_linker::link(&bundle)?;
//! # Ok::<(), eryx_linker::LinkError>(())
//! ```
#![deny(missing_docs)]

pub mod bundle;
mod error;
mod extension;
pub mod layout;
mod libraries;
mod link;
mod prune;
mod skeleton;
mod split;
mod tags;
mod trampolines;
mod validate;

pub use bundle::{Bundle, BundleError, Manifest, sha256_hex};
pub use error::{BoxError, LinkError};
pub use extension::{DEFERRED_CTORS, Extension, is_library_name};
pub use layout::{EXTENSION_SUFFIXES, GUEST_STDLIB, SITE_PACKAGES};
pub use libraries::{
    BASE_LIBRARIES, BINDINGS_LIBRARY, BaseLibrary, EH_LIBRARY, PYTHON_LIBRARY, RUNTIME_LIBRARY,
};
pub use link::{
    SANDBOX_WIT, SANDBOX_WORLD, SHADOW_STACK_BYTES, SplitLink, SplitModule, bindings, link,
    link_split, link_with_extensions,
};
pub use prune::{Pruned, prune_exports};
pub use split::{ImportedModule, SPLIT_MIN_BYTES, Split, split};
pub use tags::{HiddenTags, hide_tag_imports, restore_tag_imports};
pub use validate::{LibraryInfo, validate_library};

/// This crate's version, part of cache keys for linked components.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Bumped whenever the linker's output for the same inputs changes (part of
/// cache keys, so that no stale compiled component is reused): 2 = the
/// output is no longer validated by wit-component; 3 = an 8 MiB shadow stack;
/// 4 = the env module's trampolines read their slot base from a global;
/// 5 = the env module's trampolines nothing uses are dropped.
pub const LINK_REVISION: u32 = 5;
