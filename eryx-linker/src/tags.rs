//! Letting wasmtime's wizer snapshot a component whose libraries import an
//! exception tag.
//!
//! A C++ extension built with exceptions imports the `__cpp_exception` tag
//! that `libunwind.so` defines (its `catch` instructions name it, and
//! `__cxa_throw` in libunwind throws with it). wasmtime-wizer 48 cannot
//! read a module with a tag import (its parser stops at it), so such a set
//! had no pre-initialised snapshot: every sandbox started Python itself.
//!
//! Tags have no state to snapshot. [`hide_tag_imports`] turns each tag
//! import of a top-level module into a tag the module defines (first in its
//! tag section, so every tag keeps its index), which wizer can read;
//! [`restore_tag_imports`] turns those definitions back into the same
//! imports, both in wizer's instrumented component before it runs (so
//! C++ code shares libunwind's tag while pre-initialising: a pre-import
//! that throws and catches works) and in wizer's snapshot. Wizer keeps the
//! modules in order (the instrumented component adds one of its own at the
//! end), and a module is instantiated with the same arguments either way
//! (an instance may offer more than a module imports).

use std::ops::Range;

use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{Encode, EntityType, ImportSection, TagKind, TagSection, TagType};
use wasmparser::{BinaryReader, TypeRef};

use crate::split::Section;

/// A tag import: `(module, name, function type index)`.
type TagImport = (String, String, u32);

/// The tag imports [`hide_tag_imports`] turned into definitions: for each
/// changed top-level module (its position among the component's top-level
/// module sections), the imports in their original order, as `(module,
/// name, function type index)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HiddenTags {
    modules: Vec<(usize, Vec<TagImport>)>,
}

impl HiddenTags {
    /// Whether nothing was hidden (the component had no tag imports).
    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }

    /// How many modules had their tag imports hidden.
    pub fn modules(&self) -> usize {
        self.modules.len()
    }
}

/// The component with every top-level module's tag imports turned into
/// tags the module defines, and what was changed (empty: the component
/// comes back as it was). `Err` names what could not be rewritten.
pub fn hide_tag_imports(component: &[u8]) -> Result<(Vec<u8>, HiddenTags), String> {
    let mut hidden = HiddenTags::default();
    let out = rewrite_modules(component, |index, _, module| {
        let Some((rewritten, tags)) = hide_in_module(module)? else {
            return Ok(None);
        };
        hidden.modules.push((index, tags));
        Ok(Some(rewritten))
    })?;
    Ok((out, hidden))
}

/// Undoes [`hide_tag_imports`] in `component` (wizer's instrumented
/// component or its snapshot, made from the component it returned, whose
/// modules come first and in the same order): the first tags each changed
/// module defines become the imports they were.
pub fn restore_tag_imports(component: &[u8], hidden: &HiddenTags) -> Result<Vec<u8>, String> {
    if hidden.is_empty() {
        return Ok(component.to_vec());
    }
    let mut restored = 0;
    let out = rewrite_modules(component, |index, _, module| {
        let Some((_, tags)) = hidden.modules.iter().find(|(i, _)| *i == index) else {
            return Ok(None);
        };
        restored += 1;
        restore_in_module(module, tags).map(Some)
    })?;
    if restored != hidden.modules.len() {
        return Err(format!(
            "the snapshot has {restored} of the {} modules whose tag imports were hidden",
            hidden.modules.len()
        ));
    }
    Ok(out)
}

/// [`crate::split::rewrite_modules`] with this module's errors.
fn rewrite_modules(
    component: &[u8],
    f: impl FnMut(usize, &Range<usize>, &[u8]) -> Result<Option<Vec<u8>>, String>,
) -> Result<Vec<u8>, String> {
    crate::split::rewrite_modules(component, |e| format!("reading the component: {e}"), f)
}

const IMPORT: u8 = 2;
const TAG: u8 = 13;
/// The sections that come after the tag section, in a module's order.
const AFTER_TAGS: [u8; 7] = [6, 7, 8, 9, 12, 10, 11];

/// A module rewritten by [`hide_in_module`], and the imports it lost.
type Hidden = (Vec<u8>, Vec<TagImport>);

/// The module with its tag imports defined instead, and those imports;
/// `None` when it imports no tag.
fn hide_in_module(module: &[u8]) -> Result<Option<Hidden>, String> {
    let sections = crate::split::sections(module)?;
    let Some((_, _, body)) = sections.iter().find(|(id, ..)| *id == IMPORT) else {
        return Ok(None);
    };
    let mut kept = ImportSection::new();
    let mut tags = Vec::new();
    let reader = wasmparser::ImportSectionReader::new(BinaryReader::new(&module[body.clone()], 0))
        .map_err(|e| format!("an import section: {e}"))?;
    for import in reader.into_imports() {
        let import = import.map_err(|e| format!("an import: {e}"))?;
        match import.ty {
            TypeRef::Tag(tag) => tags.push((
                import.module.to_string(),
                import.name.to_string(),
                tag.func_type_idx,
            )),
            ty => {
                let ty = RoundtripReencoder
                    .entity_type(ty)
                    .map_err(|e| format!("an import's type: {e}"))?;
                kept.import(import.module, import.name, ty);
            }
        }
    }
    if tags.is_empty() {
        return Ok(None);
    }
    let mut defined = TagSection::new();
    for (_, _, ty) in &tags {
        defined.tag(exception(*ty));
    }
    let out = rebuild(module, &sections, Some(&kept), &mut defined, 0)?;
    Ok(Some((out, tags)))
}

/// The module with its first `tags.len()` defined tags imported again.
fn restore_in_module(module: &[u8], tags: &[TagImport]) -> Result<Vec<u8>, String> {
    let sections = crate::split::sections(module)?;
    let (_, _, body) = sections
        .iter()
        .find(|(id, ..)| *id == IMPORT)
        .ok_or("a module whose tag imports were hidden has no import section")?;
    let mut imports = ImportSection::new();
    let reader = wasmparser::ImportSectionReader::new(BinaryReader::new(&module[body.clone()], 0))
        .map_err(|e| format!("an import section: {e}"))?;
    for import in reader.into_imports() {
        let import = import.map_err(|e| format!("an import: {e}"))?;
        let ty = RoundtripReencoder
            .entity_type(import.ty)
            .map_err(|e| format!("an import's type: {e}"))?;
        imports.import(import.module, import.name, ty);
    }
    for (m, name, ty) in tags {
        imports.import(m, name, EntityType::Tag(exception(*ty)));
    }
    let mut none = TagSection::new();
    rebuild(module, &sections, Some(&imports), &mut none, tags.len())
}

fn exception(func_type_idx: u32) -> TagType {
    TagType {
        kind: TagKind::Exception,
        func_type_idx,
    }
}

/// `module` with its import section replaced by `imports`, `front`'s tags
/// put before its own tags, and its first `drop` own tags left out (the
/// tag section goes when no tag is left). The result is validated.
fn rebuild(
    module: &[u8],
    sections: &[Section],
    imports: Option<&ImportSection>,
    front: &mut TagSection,
    drop: usize,
) -> Result<Vec<u8>, String> {
    let mut tags = std::mem::take(front);
    if let Some((_, _, body)) = sections.iter().find(|(id, ..)| *id == TAG) {
        let reader = wasmparser::TagSectionReader::new(BinaryReader::new(&module[body.clone()], 0))
            .map_err(|e| format!("a tag section: {e}"))?;
        let mut own = 0usize;
        for tag in reader {
            let tag = tag.map_err(|e| format!("a tag: {e}"))?;
            own += 1;
            if own > drop {
                tags.tag(exception(tag.func_type_idx));
            }
        }
        if own < drop {
            return Err(format!(
                "a module defines {own} tags where {drop} hidden ones were expected"
            ));
        }
    } else if drop > 0 {
        return Err("a module whose tag imports were hidden has no tag section".into());
    }
    let mut out = module[..8].to_vec();
    let mut tags_written = false;
    let mut write_tags = |out: &mut Vec<u8>| {
        if !tags_written && !tags.is_empty() {
            out.push(TAG);
            tags.encode(out);
        }
        tags_written = true;
    };
    for (id, whole, _) in sections {
        match *id {
            IMPORT => {
                out.push(IMPORT);
                imports
                    .ok_or("no import section to write")?
                    .encode(&mut out);
            }
            TAG => write_tags(&mut out),
            id if AFTER_TAGS.contains(&id) => {
                write_tags(&mut out);
                out.extend_from_slice(&module[whole.clone()]);
            }
            _ => out.extend_from_slice(&module[whole.clone()]),
        }
    }
    write_tags(&mut out);
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(&out)
        .map_err(|e| format!("the rewritten module does not validate: {e}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_encoder::ComponentSectionId;
    use wasmparser::{Parser, Payload};

    /// A module that imports a tag, defines one of its own, and throws
    /// and catches both (their indices must survive the round trip).
    fn thrower() -> Vec<u8> {
        use wasm_encoder::{
            BlockType, Catch, CodeSection, ExportKind, ExportSection, Function, FunctionSection,
            Instruction as I, Module, TypeSection, ValType,
        };
        let mut m = Module::new();
        let mut types = TypeSection::new();
        types.ty().function([ValType::I32], []);
        m.section(&types);
        let mut imports = ImportSection::new();
        imports.import("env", "f", EntityType::Function(0));
        imports.import("env", "__cpp_exception", EntityType::Tag(exception(0)));
        m.section(&imports);
        let mut funcs = FunctionSection::new();
        funcs.function(0);
        m.section(&funcs);
        let mut tags = TagSection::new();
        tags.tag(exception(0));
        m.section(&tags);
        let mut exports = ExportSection::new();
        exports.export("go", ExportKind::Func, 1);
        m.section(&exports);
        let mut code = CodeSection::new();
        let mut f = Function::new([]);
        f.instruction(&I::Block(BlockType::Result(ValType::I32)))
            .instruction(&I::TryTable(
                BlockType::Empty,
                vec![Catch::One { tag: 0, label: 0 }].into(),
            ))
            .instruction(&I::LocalGet(0))
            .instruction(&I::Throw(1))
            .instruction(&I::End)
            .instruction(&I::Unreachable)
            .instruction(&I::End)
            .instruction(&I::Call(0))
            .instruction(&I::End);
        code.function(&f);
        m.section(&code);
        let bytes = m.finish();
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(&bytes)
            .unwrap();
        bytes
    }

    fn empty_module() -> Vec<u8> {
        wasm_encoder::Module::new().finish()
    }

    fn component(module: &[u8]) -> Vec<u8> {
        let mut c = wasm_encoder::Component::new();
        c.section(&wasm_encoder::ModuleSection(&wasm_encoder::Module::new()));
        c.section(&wasm_encoder::RawSection {
            id: ComponentSectionId::CoreModule as u8,
            data: module,
        });
        c.finish()
    }

    fn imports_of(module: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for payload in Parser::new(0).parse_all(module) {
            if let Ok(Payload::ImportSection(r)) = payload {
                for i in r.into_imports() {
                    let i = i.unwrap();
                    out.push(format!("{}.{} {:?}", i.module, i.name, i.ty));
                }
            }
        }
        out
    }

    fn module_at(component: &[u8], index: usize) -> Vec<u8> {
        let mut modules = Vec::new();
        rewrite_modules(component, |_, _, m| {
            modules.push(m.to_vec());
            Ok(None)
        })
        .unwrap();
        modules.swap_remove(index)
    }

    #[test]
    fn tag_imports_are_hidden_and_restored_with_their_indices() {
        let original = component(&thrower());
        let (hidden_component, hidden) = hide_tag_imports(&original).unwrap();
        assert_eq!(hidden.modules(), 1);
        let changed = module_at(&hidden_component, 1);
        assert!(
            imports_of(&changed).iter().all(|i| !i.contains("Tag")),
            "{:?}",
            imports_of(&changed)
        );
        // The empty module stays byte for byte.
        assert_eq!(module_at(&hidden_component, 0), module_at(&original, 0));
        let back = restore_tag_imports(&hidden_component, &hidden).unwrap();
        let restored = module_at(&back, 1);
        assert_eq!(imports_of(&restored), imports_of(&thrower()));
        // Same sections, same instructions: the module is the original
        // one (the import section re-encoded the same way).
        assert_eq!(restored, thrower());
    }

    #[test]
    fn a_component_without_tag_imports_is_left_alone() {
        let plain = component(&empty_module());
        let (out, hidden) = hide_tag_imports(&plain).unwrap();
        assert!(hidden.is_empty());
        assert_eq!(out, plain);
    }

    #[test]
    fn a_snapshot_that_lost_the_module_is_refused() {
        let original = component(&thrower());
        let (_, hidden) = hide_tag_imports(&original).unwrap();
        let other = component(&empty_module());
        let single = {
            let mut c = wasm_encoder::Component::new();
            c.section(&wasm_encoder::ModuleSection(&wasm_encoder::Module::new()));
            c.finish()
        };
        let err = restore_tag_imports(&single, &hidden).unwrap_err();
        assert!(err.contains("0 of the 1 modules"), "{err}");
        // A module with neither the imports nor the tags hidden ones need.
        let err = restore_tag_imports(&other, &hidden).unwrap_err();
        assert!(
            err.contains("whose tag imports were hidden has no"),
            "{err}"
        );
    }
}
