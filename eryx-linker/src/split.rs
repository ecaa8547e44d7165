//! Taking the big core modules out of a linked component.
//!
//! wit-component's `Linker` places every library's module in the component
//! byte for byte (a library's place in memory and in the table comes only
//! from the `__memory_base`/`__table_base`/GOT globals it imports). So
//! libpython's and libc's modules are the same in every component, whatever
//! extensions come with them, and compiling them again for each new set of
//! extensions is wasted work.
//!
//! [`split`] turns each such module of a component into an *import* of a
//! core module, `(import "eryx-module-mN" (core module (type ...)))`, whose
//! type lists exactly the module's imports and exports. The host compiles
//! each module once (keyed by its content), and supplies it when it
//! instantiates the component; a new set compiles only what is new: the
//! generated glue, the bindings and unseen extensions.
//!
//! The rewrite keeps every index space as it was: the import sits where the
//! module was, so the core module index space is unchanged, and the module
//! types are new core types, which the linker's output defines none of
//! (if a component did, it is returned whole rather than renumbered).

use std::ops::Range;

use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{
    ComponentImportSection, ComponentSectionId, ComponentTypeRef, CoreTypeSection, Encode,
    ModuleType,
};
use wasmparser::{Parser, Payload, TypeRef};

use crate::LinkError;

/// A module taken out of a component by [`split`].
#[derive(Debug, Clone)]
pub struct ImportedModule {
    /// The import name the component gives it (`eryx-module-m<index>`,
    /// with its index in the component's core module index space).
    pub name: String,
    /// Where its bytes are in the component given to [`split`].
    pub range: Range<usize>,
}

/// A component whose big library modules are imports.
#[derive(Debug, Clone)]
pub struct Split {
    /// The rewritten component.
    pub component: Vec<u8>,
    /// The modules it imports, in import order.
    pub modules: Vec<ImportedModule>,
}

/// Modules smaller than this stay in the component: compiling them is
/// cheaper than loading a separate compiled file.
pub const SPLIT_MIN_BYTES: usize = 32 * 1024;

/// Rewrites `component` (the output of [`crate::link_with_extensions`]) so
/// that every top-level core module of a library (it has a `dylink.0`
/// section) of at least `min_bytes` becomes an import of a core module.
///
/// A component it cannot rewrite safely (one that defines core types of
/// its own) comes back whole, with no modules.
pub fn split(component: &[u8], min_bytes: usize) -> Result<Split, LinkError> {
    split_by(component, |bytes| {
        Ok(bytes.len() >= min_bytes && is_library(bytes))
    })
}

/// [`split`] for the top-level modules `take` says yes to.
pub(crate) fn split_by(
    component: &[u8],
    mut take: impl FnMut(&[u8]) -> Result<bool, LinkError>,
) -> Result<Split, LinkError> {
    let err = |e: &dyn std::fmt::Display| LinkError::Split {
        message: e.to_string(),
    };
    let whole = || Split {
        component: component.to_vec(),
        modules: Vec::new(),
    };
    let mut out = Vec::with_capacity(component.len() / 8);
    let mut modules = Vec::new();
    let mut module_index = 0u32;
    let mut core_types = 0u32;
    let mut depth = 0usize;
    // Everything between sections we keep is copied as it is.
    let mut copied_to = 0usize;
    for payload in Parser::new(0).parse_all(component) {
        let payload = payload.map_err(|e| err(&e))?;
        match payload {
            Payload::Version { range, .. } if depth == 0 => {
                let end = usize::try_from(range.end).map_err(|e| err(&e))?;
                out.extend_from_slice(&component[..end]);
                copied_to = end;
            }
            Payload::ModuleSection {
                unchecked_range, ..
            } => {
                if depth == 0 {
                    let (unchecked_range, bytes) = module_bytes(component, &unchecked_range)
                        .ok_or_else(|| err(&PAST_THE_END))?;
                    let start = section_start(component, &unchecked_range);
                    // A module whose type cannot be written (e.g. GC
                    // recursion groups) stays where it is.
                    let ty = take(bytes)?.then(|| module_type(bytes).ok()).flatten();
                    if let (Some(ty), Some(start)) = (ty, start) {
                        out.extend_from_slice(&component[copied_to..start]);
                        let mut types = CoreTypeSection::new();
                        types.ty().module(&ty);
                        push_section(&mut out, ComponentSectionId::CoreType, &types);
                        let name = format!("eryx-module-m{module_index}");
                        let mut imports = ComponentImportSection::new();
                        imports.import(&name, ComponentTypeRef::Module(core_types));
                        push_section(&mut out, ComponentSectionId::Import, &imports);
                        core_types += 1;
                        copied_to = unchecked_range.end;
                        modules.push(ImportedModule {
                            name,
                            range: unchecked_range.clone(),
                        });
                    }
                    module_index += 1;
                }
                depth += 1;
            }
            Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            }
            Payload::CoreTypeSection(_) if depth == 0 => return Ok(whole()),
            Payload::ComponentAliasSection(reader) if depth == 0 => {
                use wasmparser::{ComponentAlias, ComponentExternalKind, ComponentOuterAliasKind};
                for alias in reader {
                    match alias.map_err(|e| err(&e))? {
                        ComponentAlias::Outer {
                            kind: ComponentOuterAliasKind::CoreType,
                            ..
                        } => return Ok(whole()),
                        ComponentAlias::Outer {
                            kind: ComponentOuterAliasKind::CoreModule,
                            ..
                        }
                        | ComponentAlias::InstanceExport {
                            kind: ComponentExternalKind::Module,
                            ..
                        } => module_index += 1,
                        _ => {}
                    }
                }
            }
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    if let wasmparser::ComponentTypeRef::Module(_) = import.map_err(|e| err(&e))?.ty
                    {
                        module_index += 1;
                    }
                }
            }
            _ => {}
        }
    }
    if modules.is_empty() {
        return Ok(whole());
    }
    out.extend_from_slice(&component[copied_to..]);
    Ok(Split {
        component: out,
        modules,
    })
}

/// What a module section that claims more bytes than the component has is.
pub(crate) const PAST_THE_END: &str = "a core module section runs past the end of the component";

/// Where the contents of each top-level core module section of
/// `component` are, in order (not those of nested components). `Err`:
/// what could not be read.
pub(crate) fn top_level_modules(component: &[u8]) -> Result<Vec<Range<usize>>, String> {
    let mut modules = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(component) {
        match payload.map_err(|e| e.to_string())? {
            Payload::ModuleSection {
                unchecked_range, ..
            } => {
                if depth == 0 {
                    let (range, _) =
                        module_bytes(component, &unchecked_range).ok_or(PAST_THE_END)?;
                    modules.push(range);
                }
                depth += 1;
            }
            Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            }
            _ => {}
        }
    }
    Ok(modules)
}

/// `component` with each top-level core module for which `f` (given its
/// index among them, where its bytes are, and the bytes) returns new bytes
/// replaced by them, and all else as it was. `read_err` makes the error
/// for a component that cannot be read.
pub(crate) fn rewrite_modules<E>(
    component: &[u8],
    read_err: impl Fn(String) -> E,
    mut f: impl FnMut(usize, &Range<usize>, &[u8]) -> Result<Option<Vec<u8>>, E>,
) -> Result<Vec<u8>, E> {
    let mut out = Vec::with_capacity(component.len());
    let mut copied_to = 0;
    for (index, range) in top_level_modules(component)
        .map_err(&read_err)?
        .into_iter()
        .enumerate()
    {
        let Some(module) = f(index, &range, &component[range.clone()])? else {
            continue;
        };
        let start = section_start(component, &range)
            .ok_or_else(|| read_err("a module section's header cannot be read".into()))?;
        out.extend_from_slice(&component[copied_to..start]);
        out.push(ComponentSectionId::CoreModule as u8);
        module.encode(&mut out);
        copied_to = range.end;
    }
    out.extend_from_slice(&component[copied_to..]);
    Ok(out)
}

/// A core module's section: `(id, whole section range, body range)`.
pub(crate) type Section = (u8, Range<usize>, Range<usize>);

/// A module's sections: `(id, whole section range, body range)`.
pub(crate) fn sections(module: &[u8]) -> Result<Vec<Section>, String> {
    if module.len() < 8 {
        return Err("a module is shorter than its header".into());
    }
    let mut out = Vec::new();
    let mut at = 8;
    while at < module.len() {
        let id = module[at];
        let mut reader = wasmparser::BinaryReader::new(&module[at + 1..], 0);
        let len = reader
            .read_var_u32()
            .map_err(|e| format!("a section length: {e}"))?;
        let body_start = at + 1 + reader.original_position() as usize;
        let body_end = body_start
            .checked_add(len as usize)
            .filter(|end| *end <= module.len())
            .ok_or("a section runs past the module's end")?;
        out.push((id, at..body_end, body_start..body_end));
        at = body_end;
    }
    Ok(out)
}

/// The place and bytes of a module section's contents (the parser's
/// unchecked range), if they are inside `component`.
pub(crate) fn module_bytes<'a>(
    component: &'a [u8],
    range: &Range<u64>,
) -> Option<(Range<usize>, &'a [u8])> {
    let range = usize::try_from(range.start).ok()?..usize::try_from(range.end).ok()?;
    let bytes = component.get(range.clone())?;
    Some((range, bytes))
}

/// Whether a core module is a shared library (has a `dylink.0` section).
fn is_library(module: &[u8]) -> bool {
    for payload in Parser::new(0).parse_all(module) {
        match payload {
            Ok(Payload::CustomSection(c)) if c.name() == "dylink.0" => return true,
            // `dylink.0` must come first; anything else means no.
            Ok(Payload::Version { .. }) => {}
            _ => return false,
        }
    }
    false
}

/// The offset of the section id byte of the module section whose contents
/// are `contents`: the id, then the contents' length in LEB128.
pub(crate) fn section_start(bytes: &[u8], contents: &Range<usize>) -> Option<usize> {
    (1..=5usize).find_map(|len| {
        let start = contents.start.checked_sub(len + 1)?;
        if bytes[start] != ComponentSectionId::CoreModule as u8 {
            return None;
        }
        let leb = &bytes[start + 1..contents.start];
        let mut value = 0u64;
        for (i, b) in leb.iter().enumerate() {
            value |= u64::from(b & 0x7f) << (7 * i);
            if (b & 0x80 == 0) != (i == len - 1) {
                return None;
            }
        }
        (value == contents.len() as u64).then_some(start)
    })
}

fn push_section(out: &mut Vec<u8>, id: ComponentSectionId, section: &impl Encode) {
    out.push(id as u8);
    section.encode(out);
}

/// The type of a core module: its imports and exports, in order, with the
/// function types they use.
pub(crate) fn module_type(
    bytes: &[u8],
) -> Result<ModuleType, Box<dyn std::error::Error + Send + Sync>> {
    let mut re = RoundtripReencoder;
    let mut ty = ModuleType::new();
    // Each index space's entity types, imports first.
    let mut funcs: Vec<u32> = Vec::new();
    let mut tables = Vec::new();
    let mut memories = Vec::new();
    let mut globals = Vec::new();
    let mut tags = Vec::new();
    let mut exports = Vec::new();
    let mut parser = Parser::new(0);
    let mut rest = bytes;
    loop {
        let (consumed, payload) = match parser.parse(rest, true)? {
            wasmparser::Chunk::NeedMoreData(_) => return Err("truncated module".into()),
            wasmparser::Chunk::Parsed { consumed, payload } => (consumed, payload),
        };
        rest = &rest[consumed..];
        match payload {
            Payload::TypeSection(reader) => {
                for group in reader {
                    let group = group?;
                    if group.is_explicit_rec_group() {
                        return Err("a recursion group of types".into());
                    } else {
                        for t in group.into_types() {
                            ty.ty().subtype(&re.sub_type(t)?);
                        }
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import?;
                    match import.ty {
                        TypeRef::Func(t) | TypeRef::FuncExact(t) => funcs.push(t),
                        TypeRef::Table(t) => tables.push(t),
                        TypeRef::Memory(t) => memories.push(t),
                        TypeRef::Global(t) => globals.push(t),
                        TypeRef::Tag(t) => tags.push(t),
                    }
                    ty.import(import.module, import.name, re.entity_type(import.ty)?);
                }
            }
            Payload::FunctionSection(reader) => {
                for f in reader {
                    funcs.push(f?);
                }
            }
            Payload::TableSection(reader) => {
                for t in reader {
                    tables.push(t?.ty);
                }
            }
            Payload::MemorySection(reader) => {
                for m in reader {
                    memories.push(m?);
                }
            }
            Payload::GlobalSection(reader) => {
                for g in reader {
                    globals.push(g?.ty);
                }
            }
            Payload::TagSection(reader) => {
                for t in reader {
                    tags.push(t?);
                }
            }
            Payload::ExportSection(reader) => {
                for e in reader {
                    exports.push(e?);
                }
            }
            Payload::CodeSectionStart { size, .. } => {
                // Function bodies say nothing about the type: skip them.
                parser.skip_section();
                rest = rest
                    .get(usize::try_from(size)?..)
                    .ok_or("truncated code section")?;
            }
            Payload::End(_) => break,
            _ => {}
        }
    }
    for export in exports {
        let i = export.index as usize;
        let missing = || format!("export {} names a missing entity", export.name);
        let entity = match export.kind {
            wasmparser::ExternalKind::Func | wasmparser::ExternalKind::FuncExact => {
                TypeRef::Func(*funcs.get(i).ok_or_else(missing)?)
            }
            wasmparser::ExternalKind::Table => TypeRef::Table(*tables.get(i).ok_or_else(missing)?),
            wasmparser::ExternalKind::Memory => {
                TypeRef::Memory(*memories.get(i).ok_or_else(missing)?)
            }
            wasmparser::ExternalKind::Global => {
                TypeRef::Global(*globals.get(i).ok_or_else(missing)?)
            }
            wasmparser::ExternalKind::Tag => TypeRef::Tag(*tags.get(i).ok_or_else(missing)?),
        };
        ty.export(export.name, re.entity_type(entity)?);
    }
    Ok(ty)
}
