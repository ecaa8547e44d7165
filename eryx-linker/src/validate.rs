//! Eager, per-library validation of dynamic libraries (`@dylink.0`).
//!
//! Every library is checked when it is added, before anything is linked, so
//! each error names the file: not wasm at all, a component instead of a core
//! module, a core module that is not a shared library, a malformed module or
//! `dylink.0` section (with the byte offset).
//!
//! Spec: <https://github.com/WebAssembly/tool-conventions/blob/main/DynamicLinking.md>.

use wasmparser::{Dylink0Subsection, Encoding, KnownCustom, Parser, Payload, TypeRef};

use crate::LinkError;

/// What validation learned about a library.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LibraryInfo {
    /// `dylink.0` `needed`: the libraries it must be linked with.
    pub needed: Vec<String>,
    /// `dylink.0` mem-info: bytes of static data it needs.
    pub memory_size: u32,
    /// `dylink.0` mem-info: table slots it needs.
    pub table_size: u32,
    /// Names of the functions and globals it exports.
    pub exports: Vec<String>,
    /// `(module, name)` of the functions it imports.
    pub function_imports: Vec<(String, String)>,
    /// `(module, name)` of the globals it imports (its `GOT.mem` and
    /// `GOT.func` entries name the data and functions it takes the address
    /// of).
    pub global_imports: Vec<(String, String)>,
    /// Whether it imports an exception tag: it has C++ exception code
    /// (which shares `libunwind.so`'s `__cpp_exception`). wasmtime's wizer
    /// cannot pre-initialise a component with such a library.
    pub imports_tags: bool,
    /// Whether it defines an exception tag of its own: C that calls
    /// `setjmp` (each such library keeps its `longjmp` tag to itself).
    pub defines_tags: bool,
}

impl LibraryInfo {
    /// Whether its code throws or catches wasm exceptions (C++ exceptions,
    /// `longjmp`): each throw allocates in wasmtime's GC heap.
    pub fn uses_exceptions(&self) -> bool {
        self.imports_tags || self.defines_tags
    }
}

fn hint(bytes: &[u8]) -> &'static str {
    match bytes {
        [0x7f, b'E', b'L', b'F', ..] => ": a native ELF file?",
        [b'M', b'Z', ..] => ": a Windows PE file?",
        [0xcf, 0xfa, 0xed, 0xfe, ..] | [0xca, 0xfe, 0xba, 0xbe, ..] => ": a Mach-O file?",
        [b'P', b'K', 3, 4, ..] => ": a zip archive (a wheel?)",
        [b'(', ..] => ": WebAssembly text? assemble it first",
        _ => "",
    }
}

/// Validates `bytes` as a wasm dynamic library named `name`.
pub fn validate_library(name: &str, bytes: &[u8]) -> Result<LibraryInfo, LinkError> {
    if !bytes.starts_with(b"\0asm") {
        let found = if bytes.is_empty() {
            "nothing: the file is empty".to_string()
        } else {
            bytes
                .iter()
                .take(4)
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        return Err(LinkError::NotWasm {
            name: name.to_string(),
            found,
            hint: hint(bytes),
        });
    }
    let malformed = |source| LinkError::Malformed {
        name: name.to_string(),
        source,
    };
    let mut info = LibraryInfo::default();
    let mut has_dylink = false;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(malformed)? {
            Payload::Version {
                encoding: Encoding::Component,
                ..
            } => {
                return Err(LinkError::NotCoreModule {
                    name: name.to_string(),
                });
            }
            Payload::CustomSection(section) => {
                if let KnownCustom::Dylink0(reader) = section.as_known() {
                    has_dylink = true;
                    for sub in reader {
                        match sub.map_err(malformed)? {
                            Dylink0Subsection::MemInfo(m) => {
                                info.memory_size = m.memory_size;
                                info.table_size = m.table_size;
                            }
                            Dylink0Subsection::Needed(needed) => {
                                info.needed.extend(needed.iter().map(|s| s.to_string()));
                            }
                            Dylink0Subsection::ExportInfo(_)
                            | Dylink0Subsection::ImportInfo(_)
                            | Dylink0Subsection::RuntimePath(_) => {}
                            Dylink0Subsection::Unknown { ty, range, .. } => {
                                return Err(LinkError::UnknownDylinkSubsection {
                                    name: name.to_string(),
                                    id: ty,
                                    offset: range.start,
                                });
                            }
                        }
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(malformed)?;
                    match import.ty {
                        TypeRef::Func(_) => info
                            .function_imports
                            .push((import.module.to_string(), import.name.to_string())),
                        TypeRef::Global(_) => info
                            .global_imports
                            .push((import.module.to_string(), import.name.to_string())),
                        TypeRef::Tag(_) => info.imports_tags = true,
                        _ => {}
                    }
                }
            }
            Payload::TagSection(reader) => info.defines_tags |= reader.count() > 0,
            Payload::ExportSection(reader) => {
                for export in reader {
                    info.exports
                        .push(export.map_err(malformed)?.name.to_string());
                }
            }
            _ => {}
        }
    }
    if !has_dylink {
        return Err(LinkError::NotSharedLibrary {
            name: name.to_string(),
        });
    }
    Ok(info)
}
