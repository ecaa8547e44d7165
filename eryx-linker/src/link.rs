//! Building the component: bindings from the WIT, then
//! `wit_component::Linker` over the base libraries in their one order.
//!
//! Steps of [`link`]:
//! 1. read every library of [`crate::BASE_LIBRARIES`] from the bundle
//!    (hash-checked) and validate it ([`crate::validate_library`]);
//! 2. generate the bindings library from `wit/sandbox.wit` ([`bindings`]);
//! 3. add them all to a `Linker` in table order, the bindings last, with the
//!    built-in libdl and the preview1 adapter (no output validation here:
//!    wasmtime validates the component when it compiles it);
//! 4. encode.
//!
//! Note on duplicates: wit-component does not treat two libraries exporting
//! the same symbol as an error; the first one in the list wins. That is why
//! the order is a single table, with the runtime first.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use wit_component::{Linker, StringEncoding};
use wit_parser::Resolve;

use crate::bundle::Role;
use crate::error::BoxError;
use crate::extension::Extension;
use crate::{
    BASE_LIBRARIES, BINDINGS_LIBRARY, Bundle, LinkError, RUNTIME_LIBRARY, SPLIT_MIN_BYTES,
    validate_library,
};

/// The sandbox world, embedded at build time: this crate's copy of the
/// workspace's `wit/sandbox.wit` (kept identical by `cargo xtask codegen`,
/// checked by its tests), so that the crate packages on its own.
pub const SANDBOX_WIT: &str = include_str!("../wit/sandbox.wit");

/// The size of the C shadow stack in linear memory. CPython 3.14 (as built
/// for WASI in the bundle) assumes a 4 MB C stack below the point where it
/// starts and raises `RecursionError` when deep C recursion nears that
/// bound; with the Linker's default of 1 MiB the stack ran out first (a
/// memory fault below address 0). 8 MiB leaves CPython's bound inside the
/// stack; untouched, the pages cost no resident memory.
pub const SHADOW_STACK_BYTES: u32 = 8 << 20;

/// The world name in [`SANDBOX_WIT`].
pub const SANDBOX_WORLD: &str = "sandbox";

/// Generates the bindings library (`liberyx_bindings.so`) for the sandbox
/// world, with the component-type metadata the linker needs embedded.
pub fn bindings() -> Result<Vec<u8>, LinkError> {
    let bindings_err = |e| LinkError::Bindings { source: boxed(e) };
    let mut resolve = Resolve::default();
    let pkg = resolve
        .push_str("wit/sandbox.wit", SANDBOX_WIT)
        .map_err(bindings_err)?;
    let world = resolve
        .select_world(&[pkg], Some(SANDBOX_WORLD))
        .map_err(bindings_err)?;
    let mut opts = wit_dylib::DylibOpts {
        interpreter: Some(RUNTIME_LIBRARY.to_string()),
        async_: Default::default(),
    };
    let mut bytes = wit_dylib::create(&resolve, world, Some(&mut opts));
    wit_component::embed_component_metadata(&mut bytes, &resolve, world, StringEncoding::UTF8)
        .map_err(bindings_err)?;
    Ok(bytes)
}

/// Links the base libraries of `bundle` and the bindings into a component.
pub fn link(bundle: &Bundle) -> Result<Vec<u8>, LinkError> {
    link_with_extensions(bundle, &[])
}

/// Links the base libraries, the bindings and `extensions` (each
/// `dl_openable` under its guest path) into a component.
pub fn link_with_extensions(
    bundle: &Bundle,
    extensions: &[Extension],
) -> Result<Vec<u8>, LinkError> {
    let linked = link_parts(bundle, extensions, SPLIT_MIN_BYTES)?;
    let real: Vec<&[u8]> = linked
        .real
        .iter()
        .map(|r| r.as_ref().map_or(&[][..], |r| &r.bytes))
        .collect();
    match crate::skeleton::fill(&linked.component, &linked.skeletons, &real)? {
        Some(component) => Ok(component),
        None => Ok(link_parts(bundle, extensions, usize::MAX)?.component),
    }
}

/// A linked component already split (see [`crate::split`]), from
/// [`link_split`].
#[derive(Debug, Clone)]
pub struct SplitLink<'a> {
    /// The component, importing `modules`.
    pub component: Vec<u8>,
    /// The modules it imports, in import order.
    pub modules: Vec<SplitModule<'a>>,
}

/// A library module a [`SplitLink`] imports.
#[derive(Debug, Clone)]
pub struct SplitModule<'a> {
    /// The import name (see [`crate::ImportedModule::name`]).
    pub name: String,
    /// The library's bytes (borrowed from the extension it is, or read
    /// from the bundle).
    pub bytes: Cow<'a, [u8]>,
    /// The sha256 of `bytes`, in hex.
    pub sha256: String,
}

/// What [`split`](crate::split) with `min_bytes` makes of
/// [`link_with_extensions`]'s component, without ever putting the big
/// modules into a component: they are linked as skeletons (see the
/// `skeleton` module), which cut a link of numpy's set from ~250 to
/// ~155 ms, and come back as the bytes the caller compiles. With
/// `min_bytes` above every module's size nothing is a skeleton or split:
/// `component` is then [`link_with_extensions`]'s.
pub fn link_split<'a>(
    bundle: &Bundle,
    extensions: &'a [Extension],
    min_bytes: usize,
) -> Result<SplitLink<'a>, LinkError> {
    let linked = link_parts(bundle, extensions, min_bytes)?;
    let mut found = Vec::new();
    let mut changed = false;
    let split = crate::split::split_by(&linked.component, |module| {
        match crate::skeleton::which(module, &linked.skeletons) {
            Ok(Some(index)) => {
                found.push(index);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(()) => {
                changed = true;
                Ok(false)
            }
        }
    })?;
    if changed || split.modules.len() != found.len() {
        // The linker changed a skeleton, or one could not be imported: the
        // whole libraries, split as usual.
        let whole = link_parts(bundle, extensions, usize::MAX)?.component;
        let split = crate::split::split(&whole, min_bytes)?;
        let modules = split
            .modules
            .into_iter()
            .map(|m| {
                let bytes = whole[m.range].to_vec();
                SplitModule {
                    name: m.name,
                    sha256: crate::sha256_hex(&bytes),
                    bytes: Cow::Owned(bytes),
                }
            })
            .collect();
        return Ok(SplitLink {
            component: split.component,
            modules,
        });
    }
    let mut real = linked.real;
    let modules = split
        .modules
        .into_iter()
        .zip(found)
        .map(|(m, index)| {
            // Each library is linked once, so each skeleton is found once.
            let real = real[index].take().ok_or_else(|| LinkError::Split {
                message: format!("library {index} imported twice"),
            })?;
            Ok(SplitModule {
                name: m.name,
                bytes: real.bytes,
                sha256: real.sha256,
            })
        })
        .collect::<Result<_, LinkError>>()?;
    Ok(SplitLink {
        component: split.component,
        modules,
    })
}

/// A library linked as a skeleton: its real bytes.
struct Real<'a> {
    bytes: Cow<'a, [u8]>,
    sha256: String,
}

/// A component linked with skeletons of the libraries of `skeleton_min`
/// bytes or more.
struct Linked<'a> {
    component: Vec<u8>,
    /// By library index: the skeleton it was linked as, if any, as the
    /// linker embeds it.
    skeletons: Vec<Option<Vec<u8>>>,
    /// By library index: its real bytes, if it was linked as a skeleton.
    real: Vec<Option<Real<'a>>>,
}

/// Where a library came from, to hand its bytes back after the link.
enum Source {
    Base(usize),
    Stdlib(usize),
    Given(usize),
}

fn link_parts<'a>(
    bundle: &Bundle,
    given: &'a [Extension],
    skeleton_min: usize,
) -> Result<Linked<'a>, LinkError> {
    let mut libraries = Vec::with_capacity(BASE_LIBRARIES.len() + 1);
    let mut infos = Vec::with_capacity(BASE_LIBRARIES.len() + 1);
    let mut base_exports: HashSet<String> = HashSet::new();
    for lib in BASE_LIBRARIES {
        let bytes = bundle.read_file(lib.name)?;
        let info = validate_library(lib.name, &bytes)?;
        base_exports.extend(info.exports.iter().cloned());
        libraries.push((lib.name, bytes));
        infos.push(info);
    }
    // The bundle's own extension modules come first; they live in the
    // stdlib directory, so no package can ship one at the same path.
    let mut stdlib = stdlib_extensions(bundle)?;
    let extensions: Vec<&Extension> = stdlib.iter().chain(given).collect();
    check_extensions(&base_exports, &extensions)?;
    let bindings = bindings()?;
    infos.push(validate_library(BINDINGS_LIBRARY, &bindings)?);
    libraries.push((BINDINGS_LIBRARY, bindings));
    if !uses_cxx_runtime(
        &libraries,
        &infos,
        extensions.iter().map(|e| Extension::info(e)),
    ) {
        // wit-component drops libraries nothing reaches, but only after a
        // whole first pass over every library, which it then starts again:
        // leaving them out here saved 25-30 ms of a 120-140 ms link.
        libraries.retain(|(name, _)| !CXX_RUNTIME.contains(name));
    }

    let adapter_entry = bundle
        .manifest()
        .files
        .iter()
        .find(|f| f.role == Role::Adapter)
        .map(|f| f.name.clone())
        .ok_or_else(|| crate::BundleError::MissingEntry {
            dir: bundle.dir().to_path_buf(),
            name: "the wasi_snapshot_preview1 adapter".to_string(),
        })?;
    let adapter = bundle.read_file(&adapter_entry)?;

    // Every library, in the order it is added: its name, what it is
    // linked as (its bytes or a skeleton), and whether `dlopen` finds it.
    let stdlib_count = stdlib.len();
    let sources: Vec<(Source, &str, &[u8], bool)> = libraries
        .iter()
        .enumerate()
        .map(|(i, (name, bytes))| (Source::Base(i), *name, bytes.as_slice(), false))
        .chain(extensions.iter().enumerate().map(|(i, ext)| {
            let source = if i < stdlib_count {
                Source::Stdlib(i)
            } else {
                Source::Given(i - stdlib_count)
            };
            (source, ext.link_name(), ext.bytes(), !ext.is_library())
        }))
        .collect();
    let skeletons: Vec<Option<Vec<u8>>> = sources
        .iter()
        .enumerate()
        .map(|(i, (_, name, bytes, _))| {
            // Never the bindings: the linker reads their WIT metadata.
            (bytes.len() >= skeleton_min && *name != BINDINGS_LIBRARY)
                .then(|| crate::skeleton::skeleton(bytes, i as u32))
                .flatten()
        })
        .collect();
    // Each skeleton as the linker embeds it (without WIT metadata).
    let embedded: Vec<Option<Vec<u8>>> = skeletons
        .iter()
        .map(|s| {
            s.as_ref()
                .map(|s| crate::skeleton::without_metadata(s).unwrap_or_else(|| s.clone()))
        })
        .collect();

    let mut linker = Linker::default();
    linker.use_built_in_libdl(true);
    linker.stack_size(SHADOW_STACK_BYTES);
    // No validation of the output here: it costs ~200 ms (two thirds of a
    // link) and wasmtime validates the component anyway when it compiles
    // it, which every use of the bytes does. The inputs are checked above.
    linker.encoder().validate(false);
    for ((source, name, bytes, dl_openable), skeleton) in sources.iter().zip(&skeletons) {
        let linked = skeleton.as_deref().unwrap_or(bytes);
        linker
            .library(name, linked, *dl_openable)
            .map_err(|e| LinkError::AddLibrary {
                name: match source {
                    Source::Base(_) => name.to_string(),
                    Source::Stdlib(i) => stdlib[*i].guest_path().to_string(),
                    Source::Given(i) => given[*i].guest_path().to_string(),
                },
                source: boxed(e),
            })?;
    }
    linker
        .encoder()
        .adapter("wasi_snapshot_preview1", &adapter)
        .map_err(|e| LinkError::Adapter { source: boxed(e) })?;
    let component = linker
        .encode()
        .map_err(|e| LinkError::Link { source: boxed(e) })?;
    // The same trampolines in every set: compiled once (see the module).
    let component = crate::trampolines::rebase(&component)?;

    // The real bytes of the skeletons' libraries, moved out where owned.
    let kinds: Vec<Source> = sources.into_iter().map(|(s, ..)| s).collect();
    let mut real = Vec::with_capacity(kinds.len());
    for (source, skeleton) in kinds.into_iter().zip(&skeletons) {
        if skeleton.is_none() {
            real.push(None);
            continue;
        }
        let (bytes, sha256) = match source {
            Source::Base(i) => {
                let (name, bytes) = &mut libraries[i];
                let sha256 = bundle.entry(name)?.sha256.clone();
                (Cow::Owned(std::mem::take(bytes)), sha256)
            }
            Source::Stdlib(i) => {
                let sha256 = stdlib[i].sha256().to_string();
                (Cow::Owned(stdlib[i].take_bytes()), sha256)
            }
            Source::Given(i) => (
                Cow::Borrowed(given[i].bytes()),
                given[i].sha256().to_string(),
            ),
        };
        // What the linker embedded for a library with WIT metadata (libc).
        real.push(Some(match crate::skeleton::without_metadata(&bytes) {
            Some(stripped) => Real {
                sha256: crate::sha256_hex(&stripped),
                bytes: Cow::Owned(stripped),
            },
            None => Real { bytes, sha256 },
        }));
    }
    Ok(Linked {
        component,
        skeletons: embedded,
        real,
    })
}

/// The C++ runtime among the base libraries, in their order.
const CXX_RUNTIME: [&str; 3] = [crate::EH_LIBRARY, "libc++abi.so", "libc++.so"];

/// Whether any library other than the C++ runtime could use it: names one
/// of its libraries as `needed`, imports a symbol one of them exports
/// (function, data or address, whoever else exports it too), or imports
/// an exception tag. Errs on the side of `true` (then wit-component decides,
/// as before).
fn uses_cxx_runtime<'a>(
    libraries: &[(&str, Vec<u8>)],
    infos: &'a [crate::LibraryInfo],
    extensions: impl Iterator<Item = &'a crate::LibraryInfo>,
) -> bool {
    let mut cxx_exports: HashSet<&str> = HashSet::new();
    let mut others = Vec::new();
    for ((name, _), info) in libraries.iter().zip(infos) {
        if CXX_RUNTIME.contains(name) {
            cxx_exports.extend(
                info.exports
                    .iter()
                    .map(String::as_str)
                    .filter(|s| !is_linker_internal(s)),
            );
        } else {
            others.push(info);
        }
    }
    others.extend(extensions);
    others.iter().any(|info| {
        info.imports_tags
            || info
                .needed
                .iter()
                .any(|n| CXX_RUNTIME.contains(&n.as_str()))
            || info
                .function_imports
                .iter()
                .chain(&info.global_imports)
                .any(|(_, name)| cxx_exports.contains(name.as_str()))
    })
}

/// Keeps a dependency's error whole as a `source` (wit-component returns
/// `anyhow::Error`, which converts into a boxed `std::error::Error`).
fn boxed(e: impl Into<BoxError>) -> BoxError {
    e.into()
}

/// Symbols every shared library defines for the dynamic linker itself.
fn is_linker_internal(symbol: &str) -> bool {
    matches!(
        symbol,
        "__wasm_apply_data_relocs"
            | "__wasm_call_ctors"
            | crate::extension::DEFERRED_CTORS
            | "_initialize"
            | "__dso_handle"
            | "__wasm_set_libdl_table"
    )
}

/// What the built-in libdl wit-component adds to every component exports
/// (extensions such as Pillow's Tk glue import them; they find only
/// libraries linked into the component).
const BUILT_IN_LIBDL: &[&str] = &["dlopen", "dlsym", "dlclose", "dlerror"];

/// The bundle's [`Role::Extension`] modules, validated.
pub(crate) fn stdlib_extensions(bundle: &Bundle) -> Result<Vec<Extension>, LinkError> {
    let mut out = Vec::new();
    for f in &bundle.manifest().files {
        if f.role == Role::Extension {
            let bytes = bundle.read_file(&f.name)?;
            out.push(Extension::new(format!("/{}", f.path), bytes)?);
        }
    }
    Ok(out)
}

/// Whether `symbol` is a C++ type_info (`_ZTI`), its name (`_ZTS`), a
/// vtable (`_ZTV`), VTT (`_ZTT`) or construction vtable (`_ZTC`): objects
/// the compiler emits, with vague linkage, into every library that uses
/// the class, and exports when the class is visible (pybind11 makes its
/// exception classes so, to be caught across modules: every pybind11
/// module carries `typeinfo for pybind11::error_already_set`). The
/// one-definition rule makes the copies equal; the first one serves all,
/// as with a native dynamic linker.
fn is_cxx_vague_linkage(symbol: &str) -> bool {
    ["_ZTI", "_ZTS", "_ZTV", "_ZTT", "_ZTC"]
        .iter()
        .any(|p| symbol.starts_with(p))
}

/// The checks wit-component does not make, or makes without naming the
/// extension:
/// - every `needed` library is a base library or another extension;
/// - every function an extension imports from `env` is exported by a base
///   library or an extension (all missing ones are listed);
/// - no two extensions export a symbol that a library imports: wit-component
///   would silently let the first one win, so the rule is to refuse,
///   whatever the order. A symbol nothing imports is only ever looked up in
///   its own library (`dlsym` on the handle `dlopen` gave, which is how
///   CPython finds `PyInit_*` and how cffi and ctypes find a plain
///   library's functions), so two libraries may each have one, as
///   libraries loaded `RTLD_LOCAL` may natively (pycryptodome's `_nat` and
///   `_ec_nat` both define `nat_words_alloc`). `PyInit_*` are exempt
///   however imported: two packages may each ship a module of the same
///   name; so are C++ type_info objects, their names and vtables
///   ([`is_cxx_vague_linkage`]).
fn check_extensions(
    base_exports: &HashSet<String>,
    extensions: &[&Extension],
) -> Result<(), LinkError> {
    let mut names: HashMap<&str, &str> = HashMap::new();
    for ext in extensions {
        let base = BASE_LIBRARIES.iter().any(|l| l.name == ext.link_name());
        if base || ext.link_name() == "libdl.so" {
            return Err(LinkError::DuplicateLibrary {
                name: ext.link_name().to_string(),
                first: "the base libraries".to_string(),
                second: ext.guest_path().to_string(),
            });
        }
        if let Some(first) = names.insert(ext.link_name(), ext.guest_path()) {
            return Err(LinkError::DuplicateLibrary {
                name: ext.link_name().to_string(),
                first: first.to_string(),
                second: ext.guest_path().to_string(),
            });
        }
    }
    let imported: HashSet<&str> = extensions
        .iter()
        .flat_map(|e| {
            let info = e.info();
            info.function_imports.iter().chain(&info.global_imports)
        })
        .map(|(_, name)| name.as_str())
        .collect();
    let mut owner: HashMap<&str, &str> = HashMap::new();
    for ext in extensions {
        for symbol in &ext.info().exports {
            if symbol.starts_with("PyInit_")
                || is_linker_internal(symbol)
                || is_cxx_vague_linkage(symbol)
                || !imported.contains(symbol.as_str())
            {
                continue;
            }
            if let Some(first) = owner.insert(symbol, ext.guest_path()) {
                let (a, b) = if first < ext.guest_path() {
                    (first, ext.guest_path())
                } else {
                    (ext.guest_path(), first)
                };
                return Err(LinkError::DuplicateExport {
                    symbol: symbol.clone(),
                    first: a.to_string(),
                    second: b.to_string(),
                });
            }
        }
    }
    let known_libraries: HashSet<&str> = BASE_LIBRARIES
        .iter()
        .map(|l| l.name)
        .chain(["libdl.so"])
        .chain(extensions.iter().map(|e| e.link_name()))
        .collect();
    for ext in extensions {
        if let Some(missing) = ext
            .info()
            .needed
            .iter()
            .find(|n| !known_libraries.contains(n.as_str()))
        {
            return Err(LinkError::MissingLibrary {
                name: ext.guest_path().to_string(),
                needed: missing.clone(),
            });
        }
        let unresolved: Vec<String> = ext
            .info()
            .function_imports
            .iter()
            .filter(|(module, name)| {
                module == "env"
                    && !base_exports.contains(name)
                    && !owner.contains_key(name.as_str())
                    && !BUILT_IN_LIBDL.contains(&name.as_str())
            })
            .map(|(_, name)| name.clone())
            .collect();
        if !unresolved.is_empty() {
            return Err(LinkError::UnresolvedImports {
                name: ext.guest_path().to_string(),
                symbols: unresolved,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{CXX_RUNTIME, is_cxx_vague_linkage, uses_cxx_runtime};
    use crate::LibraryInfo;

    /// libc, the C++ runtime exporting `__cxa_throw` (and a linker-internal
    /// symbol every library exports), then libpython.
    fn base() -> (Vec<(&'static str, Vec<u8>)>, Vec<LibraryInfo>) {
        let mut names = vec!["libc.so"];
        names.extend(CXX_RUNTIME);
        names.push("libpython3.14.so");
        let infos = names
            .iter()
            .map(|name| LibraryInfo {
                exports: if CXX_RUNTIME.contains(name) {
                    vec!["__cxa_throw".into(), "__wasm_call_ctors".into()]
                } else {
                    vec!["malloc".into(), "__wasm_call_ctors".into()]
                },
                ..LibraryInfo::default()
            })
            .collect();
        (names.into_iter().map(|n| (n, Vec::new())).collect(), infos)
    }

    #[test]
    fn the_cxx_runtime_is_linked_only_when_something_could_use_it() {
        let (libraries, infos) = base();
        let check = |ext: LibraryInfo| uses_cxx_runtime(&libraries, &infos, [&ext].into_iter());
        let import = |module: &str, name: &str| vec![(module.to_string(), name.to_string())];
        assert!(!check(LibraryInfo {
            function_imports: import("env", "malloc"),
            global_imports: import("env", "__wasm_call_ctors"),
            ..LibraryInfo::default()
        }));
        assert!(check(LibraryInfo {
            function_imports: import("env", "__cxa_throw"),
            ..LibraryInfo::default()
        }));
        assert!(check(LibraryInfo {
            global_imports: import("GOT.func", "__cxa_throw"),
            ..LibraryInfo::default()
        }));
        assert!(check(LibraryInfo {
            needed: vec!["libc++.so".into()],
            ..LibraryInfo::default()
        }));
        assert!(check(LibraryInfo {
            imports_tags: true,
            ..LibraryInfo::default()
        }));
    }

    #[test]
    fn cxx_type_info_and_vtables_may_be_shared_but_functions_may_not() {
        for shared in [
            "_ZTIN8pybind1117error_already_setE",
            "_ZTSN8pybind1110cast_errorE",
            "_ZTVN8pybind1111value_errorE",
        ] {
            assert!(is_cxx_vague_linkage(shared), "{shared}");
        }
        for own in [
            "_ZN8pybind116detail8get_typeEv",
            "shared_helper",
            "FT_Init_FreeType",
        ] {
            assert!(!is_cxx_vague_linkage(own), "{own}");
        }
    }
}
