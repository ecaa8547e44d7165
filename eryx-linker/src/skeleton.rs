//! Linking big libraries as skeletons.
//!
//! `wit_component::Linker` reads only a library's `dylink.0` section, its
//! types, imports, exports and WIT metadata; the code and data it copies
//! into the component unchanged. Yet it copies each library's bytes several
//! times on the way (reading its metadata, taking it as an adapter,
//! encoding): for libpython, libc and numpy's 33 MB, copies and the page
//! faults they cause were about half of a ~250 ms link.
//!
//! So the linker is given a *skeleton* of each big library instead: the
//! same sections, except that every function body is `unreachable`, the
//! data segments and custom sections are gone (but `dylink.0` and the WIT
//! metadata), and a custom section [`MARKER`] holds the library's index. Everything the
//! linker decides from (symbols, sizes, types, the order of libraries)
//! is unchanged, so its output differs from the one for the whole
//! libraries only in those modules' bytes; [`fill`] puts the real bytes
//! back, and [`crate::link_split`] does not even need to: it makes those
//! modules imports and hands the real bytes to the host directly.
//!
//! If the linker ever changed a library's bytes on the way (an upgrade
//! that adds names, say), a skeleton would not come back exactly as it
//! went in: [`fill`] and the split then say so (`None`), and the caller
//! links the whole libraries instead of running a module that traps.

use std::ops::Range;

use wasm_encoder::{ComponentSectionId, Encode};
use wasmparser::{Parser, Payload};

use crate::LinkError;

/// The custom section naming a skeleton's library (its index, 4 bytes
/// little-endian).
pub(crate) const MARKER: &str = "eryx-skeleton";

/// The skeleton of `module` for library `index`, or `None` for a module it
/// is not made for: not a shared library, or one it cannot parse (the
/// linker then reports the real module's error). WIT metadata
/// (`component-type` sections, which libc has) stays: the linker reads it,
/// then drops it from what it embeds (see [`without_metadata`]).
pub(crate) fn skeleton(module: &[u8], index: u32) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(module.len() / 16);
    // `dylink.0` must be the first section of a shared library.
    let mut sections = 0usize;
    for item in Sections::new(module) {
        let (payload, raw) = item.ok()?;
        let is_dylink = matches!(&payload, Payload::CustomSection(c) if c.name() == "dylink.0");
        if !matches!(payload, Payload::Version { .. }) {
            if sections == 0 && !is_dylink {
                return None;
            }
            sections += 1;
        }
        match payload {
            Payload::CustomSection(c) => {
                if c.name() == MARKER {
                    return None;
                }
                if is_dylink || is_metadata(c.name()) {
                    out.extend_from_slice(raw);
                }
            }
            Payload::CodeSectionStart { count, .. } => {
                // Each body: its size (3), no locals, `unreachable`, `end`.
                let mut section = Vec::with_capacity(5 + 4 * count as usize);
                count.encode(&mut section);
                for _ in 0..count {
                    section.extend_from_slice(&[3, 0, 0x00, 0x0b]);
                }
                out.push(wasm_encoder::SectionId::Code as u8);
                section.encode(&mut out);
            }
            Payload::DataSection(_) | Payload::DataCountSection { .. } | Payload::End(_) => {}
            _ => out.extend_from_slice(raw),
        }
    }
    let mut marker = Vec::new();
    MARKER.encode(&mut marker);
    marker.extend_from_slice(&index.to_le_bytes());
    out.push(wasm_encoder::SectionId::Custom as u8);
    marker.encode(&mut out);
    Some(out)
}

/// Whether a custom section is WIT metadata for the linker.
fn is_metadata(name: &str) -> bool {
    name.starts_with("component-type")
}

/// `module` as the linker embeds it: without its WIT metadata sections
/// (`None` if it has none: then as it is). Each other section is copied
/// as it is, as the linker does.
pub(crate) fn without_metadata(module: &[u8]) -> Option<Vec<u8>> {
    let mut out = wasm_encoder::Module::new();
    let mut found = false;
    for item in Sections::new(module) {
        let (payload, _) = item.ok()?;
        if let Payload::CustomSection(c) = &payload
            && is_metadata(c.name())
        {
            found = true;
        } else if let Some((id, range)) = payload.as_section() {
            let range = usize::try_from(range.start).ok()?..usize::try_from(range.end).ok()?;
            out.section(&wasm_encoder::RawSection {
                id,
                data: module.get(range)?,
            });
        }
    }
    found.then(|| out.finish())
}

/// The library index a module's [`MARKER`] names, if it has one.
pub(crate) fn marker(module: &[u8]) -> Result<Option<u32>, LinkError> {
    for item in Sections::new(module) {
        if let (Payload::CustomSection(c), _) = item?
            && c.name() == MARKER
        {
            let index = c
                .data()
                .try_into()
                .map(u32::from_le_bytes)
                .map_err(|_| err(&"a skeleton marker that is not 4 bytes"))?;
            return Ok(Some(index));
        }
    }
    Ok(None)
}

/// Which skeleton a top-level module of the linked component is: `Ok(None)`
/// for a module that is none, `Err(())` for one that carries a marker but
/// is not byte for byte the skeleton it names (the linker changed it).
pub(crate) fn which(module: &[u8], skeletons: &[Option<Vec<u8>>]) -> Result<Option<usize>, ()> {
    match marker(module) {
        Ok(None) => Ok(None),
        Ok(Some(index)) => {
            let index = index as usize;
            match skeletons.get(index) {
                Some(Some(skeleton)) if skeleton.as_slice() == module => Ok(Some(index)),
                _ => Err(()),
            }
        }
        Err(_) => Err(()),
    }
}

/// The top-level core modules of a component: where each one's bytes are
/// (nested modules and components are skipped whole, unparsed).
pub(crate) fn top_level_modules(component: &[u8]) -> Result<Vec<Range<usize>>, LinkError> {
    let mut out = Vec::new();
    for item in Sections::new(component) {
        if let (
            Payload::ModuleSection {
                unchecked_range, ..
            },
            _,
        ) = item?
        {
            let (range, _) = crate::split::module_bytes(component, &unchecked_range)
                .ok_or_else(|| err(&crate::split::PAST_THE_END))?;
            out.push(range);
        }
    }
    Ok(out)
}

/// The payloads of a module or component at its top level, each with the
/// bytes it was read from. A code section, a nested module or component
/// comes as one payload whose bytes include its contents, which are not
/// parsed.
struct Sections<'a> {
    parser: Parser,
    all: &'a [u8],
    rest: &'a [u8],
    done: bool,
}

impl<'a> Sections<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Sections {
            parser: Parser::new(0),
            all: bytes,
            rest: bytes,
            done: false,
        }
    }
}

impl<'a> Iterator for Sections<'a> {
    type Item = Result<(Payload<'a>, &'a [u8]), LinkError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let at = self.all.len() - self.rest.len();
        let parsed = match self.parser.parse(self.rest, true) {
            Ok(wasmparser::Chunk::Parsed { consumed, payload }) => Ok((consumed, payload)),
            Ok(wasmparser::Chunk::NeedMoreData(_)) => Err(err(&"a truncated module or component")),
            Err(e) => Err(err(&e)),
        };
        let (consumed, payload) = match parsed {
            Ok(parsed) => parsed,
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        // What the parser would descend into next: passed over (the
        // parser itself has moved past a nested module's or component's).
        let contents = match &payload {
            Payload::CodeSectionStart { size, .. } => {
                self.parser.skip_section();
                usize::try_from(*size).ok()
            }
            Payload::ModuleSection {
                unchecked_range, ..
            }
            | Payload::ComponentSection {
                unchecked_range, ..
            } => usize::try_from(unchecked_range.end - unchecked_range.start).ok(),
            Payload::End(_) => {
                self.done = true;
                Some(0)
            }
            _ => Some(0),
        };
        let end = contents.and_then(|n| at.checked_add(consumed)?.checked_add(n));
        let Some(raw) = end.and_then(|end| self.all.get(at..end)) else {
            self.done = true;
            return Some(Err(err(&crate::split::PAST_THE_END)));
        };
        self.rest = &self.all[at + raw.len()..];
        Some(Ok((payload, raw)))
    }
}

/// `component` with each skeleton replaced by its library's real bytes
/// (`real[i]` for skeleton `i`); `None` if a module carries a marker but
/// is not its skeleton.
pub(crate) fn fill(
    component: &[u8],
    skeletons: &[Option<Vec<u8>>],
    real: &[&[u8]],
) -> Result<Option<Vec<u8>>, LinkError> {
    let extra: usize = real.iter().map(|r| r.len()).sum();
    let mut out = Vec::with_capacity(component.len() + extra);
    let mut copied_to = 0;
    for range in top_level_modules(component)? {
        let Ok(found) = which(&component[range.clone()], skeletons) else {
            return Ok(None);
        };
        let Some(index) = found else { continue };
        let start = crate::split::section_start(component, &range)
            .ok_or_else(|| err(&"no section header before a module"))?;
        out.extend_from_slice(&component[copied_to..start]);
        out.push(ComponentSectionId::CoreModule as u8);
        real[index].encode(&mut out);
        copied_to = range.end;
    }
    out.extend_from_slice(&component[copied_to..]);
    Ok(Some(out))
}

fn err(e: &dyn std::fmt::Display) -> LinkError {
    LinkError::Split {
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_encoder::{
        CodeSection, ConstExpr, CustomSection, DataSection, EntityType, ExportKind, ExportSection,
        Function, FunctionSection, GlobalType, ImportSection, MemoryType, Module, RawSection,
        TypeSection, ValType,
    };

    /// A small shared library: `dylink.0`, an imported memory and
    /// `__memory_base`, two functions (one exported), a data segment, a
    /// name section and, if asked, WIT metadata.
    fn library(metadata: bool) -> Vec<u8> {
        let mut m = Module::new();
        // mem-info: 16 bytes of memory, alignment 2^2, no table.
        m.section(&CustomSection {
            name: "dylink.0".into(),
            data: vec![1, 4, 16, 2, 0, 0].into(),
        });
        let mut types = TypeSection::new();
        types.ty().function([ValType::I32], [ValType::I32]);
        m.section(&types);
        let mut imports = ImportSection::new();
        imports.import(
            "env",
            "memory",
            EntityType::Memory(MemoryType {
                minimum: 1,
                maximum: None,
                memory64: false,
                shared: false,
                page_size_log2: None,
            }),
        );
        imports.import(
            "env",
            "__memory_base",
            EntityType::Global(GlobalType {
                val_type: ValType::I32,
                mutable: false,
                shared: false,
            }),
        );
        m.section(&imports);
        let mut funcs = FunctionSection::new();
        funcs.function(0);
        funcs.function(0);
        m.section(&funcs);
        let mut exports = ExportSection::new();
        exports.export("add_one", ExportKind::Func, 0);
        m.section(&exports);
        let mut code = CodeSection::new();
        for n in [1, 2] {
            let mut f = Function::new([]);
            f.instructions().local_get(0).i32_const(n).i32_add().end();
            code.function(&f);
        }
        m.section(&code);
        let mut data = DataSection::new();
        data.active(
            0,
            &ConstExpr::global_get(0),
            b"hello, world".iter().copied(),
        );
        m.section(&data);
        if metadata {
            m.section(&CustomSection {
                name: "component-type:demo".into(),
                data: vec![0, 1, 2].into(),
            });
        }
        m.section(&CustomSection {
            name: "name".into(),
            data: vec![].into(),
        });
        m.finish()
    }

    fn component(modules: &[&[u8]]) -> Vec<u8> {
        let mut c = wasm_encoder::Component::new();
        for m in modules {
            c.section(&RawSection {
                id: ComponentSectionId::CoreModule as u8,
                data: m,
            });
        }
        c.finish()
    }

    fn validate(module: &[u8]) {
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(module)
            .expect("valid");
    }

    #[test]
    fn a_skeleton_keeps_the_interface_and_loses_code_and_data() {
        let lib = library(false);
        validate(&lib);
        let skeleton = skeleton(&lib, 7).expect("a library");
        validate(&skeleton);
        assert!(skeleton.len() < lib.len());
        let encode = |t: wasm_encoder::ModuleType| {
            let mut bytes = Vec::new();
            t.encode(&mut bytes);
            bytes
        };
        assert_eq!(
            encode(crate::split::module_type(&skeleton).unwrap()),
            encode(crate::split::module_type(&lib).unwrap()),
            "the same imports and exports"
        );
        let mut bodies = Vec::new();
        let mut customs = Vec::new();
        for payload in Parser::new(0).parse_all(&skeleton) {
            match payload.unwrap() {
                Payload::CodeSectionEntry(body) => {
                    let ops: Vec<_> = body
                        .get_operators_reader()
                        .unwrap()
                        .into_iter()
                        .map(|op| format!("{:?}", op.unwrap()))
                        .collect();
                    bodies.push(ops);
                }
                Payload::DataSection(_) | Payload::DataCountSection { .. } => {
                    panic!("data left in the skeleton")
                }
                Payload::CustomSection(c) => customs.push(c.name().to_string()),
                _ => {}
            }
        }
        assert_eq!(bodies, vec![vec!["Unreachable", "End"]; 2]);
        assert_eq!(customs, ["dylink.0", MARKER]);
        assert_eq!(marker(&skeleton).unwrap(), Some(7));
        assert_eq!(marker(&lib).unwrap(), None);
    }

    #[test]
    fn only_shared_libraries_get_skeletons() {
        let mut plain = Module::new();
        plain.section(&TypeSection::new());
        assert!(skeleton(&plain.finish(), 0).is_none());
        assert!(skeleton(b"not wasm", 0).is_none());
        // A module that already carries a marker (made to confuse the
        // linker's caller) gets none.
        let once = skeleton(&library(false), 0).unwrap();
        assert!(skeleton(&once, 1).is_none());
    }

    #[test]
    fn wit_metadata_stays_for_the_linker_and_goes_from_the_embedded_bytes() {
        let lib = library(true);
        let skeleton = skeleton(&lib, 0).unwrap();
        let names = |m: &[u8]| -> Vec<String> {
            Parser::new(0)
                .parse_all(m)
                .filter_map(|p| match p.unwrap() {
                    Payload::CustomSection(c) => Some(c.name().to_string()),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(
            names(&skeleton),
            ["dylink.0", "component-type:demo", MARKER]
        );
        let stripped = without_metadata(&lib).unwrap();
        validate(&stripped);
        assert_eq!(names(&stripped), ["dylink.0", "name"]);
        assert_eq!(stripped, library(false), "each other section as it was");
        assert!(without_metadata(&library(false)).is_none());
    }

    #[test]
    fn a_truncated_component_is_an_error_naming_the_problem() {
        // A component header, then a core module section cut short.
        let bytes = b"\0asm\x0d\0\x01\0\x01\x10\0asm";
        let e = fill(bytes, &[], &[]).unwrap_err();
        assert!(matches!(e, LinkError::Split { .. }), "{e:?}");
        assert!(e.to_string().contains("runs past the end"), "{e}");
        let e = marker(b"\0asm\x01\0\0\0\x0a\x05").unwrap_err();
        assert!(
            e.to_string().contains("taking the library modules out"),
            "{e}"
        );
    }

    #[test]
    fn fill_puts_the_real_modules_back_and_refuses_a_changed_skeleton() {
        let lib = library(false);
        let other = {
            let mut m = Module::new();
            m.section(&TypeSection::new());
            m.finish()
        };
        let skeletons = vec![None, Some(skeleton(&lib, 1).unwrap())];
        let skel = skeletons[1].as_deref().unwrap();
        let linked = component(&[&other, skel, &other]);
        let real: Vec<&[u8]> = vec![&[], &lib];
        let filled = fill(&linked, &skeletons, &real).unwrap().unwrap();
        assert_eq!(filled, component(&[&other, &lib, &other]));
        let ranges = top_level_modules(&filled).unwrap();
        assert_eq!(ranges.len(), 3);
        assert_eq!(&filled[ranges[1].clone()], lib.as_slice());
        assert_eq!(which(skel, &skeletons), Ok(Some(1)));
        assert_eq!(which(&other, &skeletons), Ok(None));

        // The linker changing a skeleton on the way (here: one byte of an
        // export name) is noticed, not filled.
        let mut changed = skel.to_vec();
        let at = changed.windows(7).position(|w| w == b"add_one").unwrap();
        changed[at] = b'b';
        assert_eq!(which(&changed, &skeletons), Err(()));
        let linked = component(&[&other, &changed]);
        assert!(fill(&linked, &skeletons, &real).unwrap().is_none());
        // A marker naming a library without a skeleton, too.
        assert_eq!(which(skel, &[None, None]), Err(()));
    }
}
