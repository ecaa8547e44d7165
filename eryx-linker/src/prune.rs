//! Dropping the exports of a component's core modules that nothing uses.
//!
//! A shared library exports every symbol it defines (libpython ~1,860,
//! libc ~1,180), but in one linked component only the symbols some other
//! module imports are ever reached: the linker resolves every import when
//! it links, by name, and nothing looks a module's exports up later. Each
//! export costs a compiled component at every load: wasmtime keeps the
//! names of every module's imports and exports in the compiled file, and
//! reading them back (UTF-8 checks, allocations, hashing) was ~40 % of
//! deserialising a pre-initialised component, most of a fresh process's
//! start-up.
//!
//! [`prune_exports`] finds, for each module the component instantiates,
//! the export names that are used: aliased from one of its instances
//! (`alias core export`), or imported by a module that is given one of its
//! instances whole as an instantiation argument. Every other export of
//! the module is removed; a rewritten module that no longer validates
//! (e.g. a `ref.func` whose only declaration was its export) is kept as it
//! was. Anything it does not understand (nested components, modules that
//! are imported or aliased in, a module also exported from the component)
//! leaves the component whole.
//!
//! The pruned component is for compiling only: it no longer offers what a
//! later link would need, so the linker's own output is left as it is and
//! only the pre-initialised snapshot, compiled whole, is pruned.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{Encode, ExportSection};
use wasmparser::{
    ComponentAlias, ComponentExternalKind, ComponentOuterAliasKind, Instance, Parser, Payload,
};

/// What [`prune_exports`] made.
#[derive(Debug, Clone)]
pub struct Pruned {
    /// The component, with the unused exports removed.
    pub component: Vec<u8>,
    /// How many exports were removed (0: the component is unchanged).
    pub removed: usize,
}

/// A core module defined in the component, as far as pruning needs it.
struct ModuleInfo {
    /// Its contents in the component.
    range: Range<usize>,
    /// `(module, name)` of each import.
    imports: Vec<(String, String)>,
}

/// Removes the exports no other part of `component` uses from its
/// top-level core modules (see the module documentation). Never fails:
/// a component it cannot analyse comes back unchanged.
pub fn prune_exports(component: &[u8]) -> Pruned {
    let whole = || Pruned {
        component: component.to_vec(),
        removed: 0,
    };
    let Some(used) = used_exports(component) else {
        return whole();
    };
    let mut removed = 0;
    let out = crate::split::rewrite_modules(
        component,
        |_| (),
        |_, range, bytes| {
            let Some((_, keep)) = used.iter().find(|(r, _)| r == range) else {
                return Ok(None);
            };
            Ok(without_exports(bytes, keep).map(|(module, dropped)| {
                removed += dropped;
                module
            }))
        },
    );
    match out {
        Ok(component) if removed > 0 => Pruned { component, removed },
        _ => whole(),
    }
}

/// For each top-level module the component instantiates, in order: its
/// contents and the export names used. `None`: a component this analysis
/// does not cover.
pub(crate) fn used_exports(component: &[u8]) -> Option<Vec<(Range<usize>, HashSet<String>)>> {
    // The core module index space: `Some` for a module defined here.
    let mut modules: Vec<Option<ModuleInfo>> = Vec::new();
    // The core instance index space: the module each one instantiates.
    let mut instances: Vec<Option<usize>> = Vec::new();
    let mut used: HashMap<usize, HashSet<String>> = HashMap::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(component) {
        match payload.ok()? {
            Payload::ModuleSection {
                unchecked_range, ..
            } => {
                if depth == 0 {
                    let (range, bytes) = crate::split::module_bytes(component, &unchecked_range)?;
                    modules.push(Some(ModuleInfo {
                        range,
                        imports: module_imports(bytes)?,
                    }));
                }
                depth += 1;
            }
            // A nested component could use any of our modules' exports.
            Payload::ComponentSection { .. } => return None,
            Payload::End(_) => {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            }
            _ if depth > 0 => {}
            Payload::ComponentImportSection(reader) => {
                for import in reader {
                    if let wasmparser::ComponentTypeRef::Module(_) = import.ok()?.ty {
                        modules.push(None);
                    }
                }
            }
            Payload::ComponentExportSection(reader) => {
                for export in reader {
                    if export.ok()?.kind == ComponentExternalKind::Module {
                        return None;
                    }
                }
            }
            Payload::ComponentAliasSection(reader) => {
                for alias in reader {
                    match alias.ok()? {
                        ComponentAlias::CoreInstanceExport {
                            instance_index,
                            name,
                            ..
                        } => {
                            let instance = usize::try_from(instance_index).ok()?;
                            if let Some(Some(module)) = instances.get(instance) {
                                used.entry(*module).or_default().insert(name.to_string());
                            }
                        }
                        ComponentAlias::Outer {
                            kind: ComponentOuterAliasKind::CoreModule,
                            ..
                        }
                        | ComponentAlias::InstanceExport {
                            kind: ComponentExternalKind::Module,
                            ..
                        } => modules.push(None),
                        _ => {}
                    }
                }
            }
            Payload::InstanceSection(reader) => {
                for instance in reader {
                    match instance.ok()? {
                        Instance::Instantiate { module_index, args } => {
                            let module = usize::try_from(module_index).ok()?;
                            let info = modules.get(module)?;
                            for arg in args.iter() {
                                let given = usize::try_from(arg.index).ok()?;
                                let Some(Some(from)) = instances.get(given) else {
                                    continue;
                                };
                                // The instantiated module's imports from this
                                // argument are read by name from `from`. An
                                // imported module's imports are unknown.
                                let Some(info) = info else { return None };
                                let names = used.entry(*from).or_default();
                                for (m, name) in &info.imports {
                                    if m == arg.name {
                                        names.insert(name.clone());
                                    }
                                }
                            }
                            instances.push(Some(module));
                        }
                        Instance::FromExports(_) => instances.push(None),
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (index, module) in modules.into_iter().enumerate() {
        // A module never instantiated here keeps its exports (nothing to
        // learn from), as does one whose instance is used by nothing.
        if let (Some(info), Some(names)) = (module, used.remove(&index)) {
            out.push((info.range, names));
        }
    }
    Some(out)
}

/// `(module, name)` of each import of a core module.
fn module_imports(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let mut imports = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.ok()? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.ok()?;
                    imports.push((import.module.to_string(), import.name.to_string()));
                }
            }
            // Imports come before everything that could be long.
            Payload::FunctionSection(_) | Payload::CodeSectionStart { .. } => break,
            _ => {}
        }
    }
    Some(imports)
}

/// The module `bytes` with only the exports named in `keep`, and how many
/// it lost; `None` when it would lose none or would not validate.
fn without_exports(bytes: &[u8], keep: &HashSet<String>) -> Option<(Vec<u8>, usize)> {
    let mut out = bytes.get(..8)?.to_vec();
    let mut dropped = 0;
    for (id, whole, body) in crate::split::sections(bytes).ok()? {
        if id == 7 {
            let reader = wasmparser::ExportSectionReader::new(wasmparser::BinaryReader::new(
                &bytes[body.clone()],
                u64::try_from(body.start).ok()?,
            ))
            .ok()?;
            let mut exports = ExportSection::new();
            for export in reader {
                let export = export.ok()?;
                if keep.contains(export.name) {
                    let kind = RoundtripReencoder.export_kind(export.kind).ok()?;
                    exports.export(export.name, kind, export.index);
                } else {
                    dropped += 1;
                }
            }
            out.push(7);
            exports.encode(&mut out);
        } else {
            out.extend_from_slice(&bytes[whole]);
        }
    }
    if dropped == 0 {
        return None;
    }
    let mut validator = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    validator.validate_all(&out).ok()?;
    Some((out, dropped))
}
