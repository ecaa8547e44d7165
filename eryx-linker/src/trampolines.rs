//! Making the generated `env` module's trampolines the same in every
//! component, so that a new extension set finds them compiled.
//!
//! wit-component's `Linker` generates one core module (the `env` module:
//! the memory, the function table, the libraries' base and GOT globals)
//! with one small function per symbol a library imports from a library
//! instantiated after it: `local.get 0 .. local.get n-1; i32.const SLOT;
//! call_indirect`, through a table slot the init module fills. The slots
//! come after every library's part of the table, so any extension moves
//! all of them: in a set with numpy, 1,467 functions whose only difference
//! from the last set's is the constant, none of which Cranelift's
//! incremental cache can then reuse (measured: most of a new set's
//! compilation).
//!
//! [`rebase`] rewrites each such function to read the first slot from a
//! global (`global.get 0; i32.const K; i32.add`, K the function's place
//! in the slot area, which the order of libraries fixes: the base
//! libraries' come first, in the same order in every set). The global is
//! mutable, so that wasmtime loads it rather than folding its value into
//! the code, and it is global 0, so that its place in the instance is the
//! same in every set (all other globals move up by one).

use wasm_encoder::reencode::{Error as ReencodeError, Reencode, utils};
use wasm_encoder::{ConstExpr, GlobalType, ValType};
use wasmparser::{Operator, Parser, Payload, TypeRef};

use crate::LinkError;

/// `component` (a linked component) with its env module's trampolines
/// rebased (see the module docs); unchanged if no top-level core module
/// has that shape.
pub fn rebase(component: &[u8]) -> Result<Vec<u8>, LinkError> {
    // The names the component uses of each module's exports: a trampoline
    // none of whose names is used goes (see [`rebase_module`]).
    let used = crate::prune::used_exports(component);
    // One module (the env module) has that shape.
    let mut rebased = false;
    crate::split::rewrite_modules(
        component,
        |e| err(&e),
        |_, range, bytes| {
            if rebased {
                return Ok(None);
            }
            let keep = used
                .as_ref()
                .and_then(|u| u.iter().find(|(r, _)| r == range).map(|(_, k)| k));
            let module = rebase_module(bytes, keep)?;
            rebased = module.is_some();
            Ok(module)
        },
    )
}

/// The error for a linked component this module cannot read or rewrite.
fn err(e: &dyn std::fmt::Display) -> LinkError {
    LinkError::Rebase {
        message: e.to_string(),
    }
}

/// One trampoline: its parameter count and slot.
#[derive(Debug, Clone, Copy)]
struct Trampoline {
    params: u32,
    slot: i32,
}

/// The rewritten module, if `module` has trampolines and no imported
/// globals (the new global must be global 0).
///
/// With `keep` (the export names the component uses), a trampoline that
/// is exported only under other names goes, with its exports: the linker
/// makes one for every symbol whose address a library takes (`GOT.func`),
/// though only the table slot is used then. Measured in numpy's set: 588
/// of 1,470, each also costing wasmtime an entry trampoline, i.e. ~30 %
/// of the functions a new set compiles (or looks up in the function
/// cache). Only when every defined function is a trampoline and nothing
/// but exports refers to functions (no element segments, no start
/// function), so that dropping one only renumbers the exports.
pub(crate) fn rebase_module(
    module: &[u8],
    keep: Option<&std::collections::HashSet<String>>,
) -> Result<Option<Vec<u8>>, LinkError> {
    let mut found = Vec::new();
    let mut has_globals = false;
    let mut imported_funcs = 0u32;
    let mut refers_to_functions = false;
    // Per function index: whether one of its export names is used.
    let mut exported: std::collections::HashMap<u32, bool> = std::collections::HashMap::new();
    for payload in Parser::new(0).parse_all(module) {
        match payload.map_err(|e| err(&e))? {
            Payload::ElementSection(_) | Payload::StartSection { .. } => refers_to_functions = true,
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(|e| err(&e))?;
                    if export.kind == wasmparser::ExternalKind::Func {
                        let used = keep.is_none_or(|k| k.contains(export.name));
                        *exported.entry(export.index).or_default() |= used;
                    }
                }
            }
            Payload::CustomSection(c) if c.name() == "dylink.0" => return Ok(None),
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    match import.map_err(|e| err(&e))?.ty {
                        TypeRef::Global(_) => return Ok(None),
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => imported_funcs += 1,
                        _ => {}
                    }
                }
            }
            Payload::GlobalSection(_) => has_globals = true,
            Payload::CodeSectionEntry(body) => found.push(trampoline(&body)),
            _ => {}
        }
    }
    let Some(base) = found.iter().flatten().map(|t| t.slot).min() else {
        return Ok(None);
    };
    if !has_globals {
        return Ok(None);
    }
    // Which defined functions stay, and each one's new index.
    let all_trampolines = found.iter().all(Option::is_some);
    let stays: Vec<bool> = (0..found.len() as u32)
        .map(|i| {
            let index = imported_funcs + i;
            keep.is_none()
                || refers_to_functions
                || !all_trampolines
                || exported.get(&index).is_none_or(|used| *used)
        })
        .collect();
    let mut renumbered = Vec::with_capacity(found.len());
    let mut next = imported_funcs;
    for stay in &stays {
        renumbered.push(next);
        next += u32::from(*stay);
    }
    let mut rebaser = Rebaser {
        base,
        trampolines: found,
        next: 0,
        imported_funcs,
        stays,
        renumbered,
        next_declared: 0,
    };
    let mut out = wasm_encoder::Module::new();
    rebaser
        .parse_core_module(&mut out, Parser::new(0), module)
        .map_err(|e| err(&e))?;
    Ok(Some(out.finish()))
}

/// `Some` if `body` is exactly `local.get 0 .. n-1; i32.const SLOT;
/// call_indirect (table 0); end` with no locals.
fn trampoline(body: &wasmparser::FunctionBody<'_>) -> Option<Trampoline> {
    if body.get_locals_reader().ok()?.get_count() != 0 {
        return None;
    }
    let mut params = 0u32;
    let mut slot = None;
    let mut reader = body.get_operators_reader().ok()?;
    loop {
        match (reader.read().ok()?, slot) {
            (Operator::LocalGet { local_index }, None) if local_index == params => params += 1,
            (Operator::I32Const { value }, None) => slot = Some(value),
            (Operator::CallIndirect { table_index: 0, .. }, Some(_)) => break,
            _ => return None,
        }
    }
    matches!(reader.read().ok()?, Operator::End).then_some(())?;
    reader.eof().then_some(Trampoline {
        params,
        slot: slot?,
    })
}

struct Rebaser {
    base: i32,
    /// Per defined function, in order: whether it is a trampoline.
    trampolines: Vec<Option<Trampoline>>,
    /// The next defined function's place in `trampolines`.
    next: usize,
    imported_funcs: u32,
    /// Per defined function: whether it stays.
    stays: Vec<bool>,
    /// Per defined function: its index in the rewritten module.
    renumbered: Vec<u32>,
    /// The next entry of the function section.
    next_declared: usize,
}

impl Rebaser {
    /// Whether defined function `index` (in the function index space) stays.
    fn stays(&self, index: u32) -> bool {
        index < self.imported_funcs
            || self
                .stays
                .get((index - self.imported_funcs) as usize)
                .copied()
                .unwrap_or(true)
    }
}

impl Reencode for Rebaser {
    type Error = std::convert::Infallible;

    fn global_index(&mut self, global: u32) -> Result<u32, ReencodeError<Self::Error>> {
        Ok(global + 1)
    }

    fn function_index(&mut self, func: u32) -> Result<u32, ReencodeError<Self::Error>> {
        Ok(match func.checked_sub(self.imported_funcs) {
            Some(defined) => self
                .renumbered
                .get(defined as usize)
                .copied()
                .unwrap_or(func),
            None => func,
        })
    }

    fn parse_function_section(
        &mut self,
        functions: &mut wasm_encoder::FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<(), ReencodeError<Self::Error>> {
        for ty in section {
            let ty = ty?;
            let stays = self.stays.get(self.next_declared).copied().unwrap_or(true);
            self.next_declared += 1;
            if stays {
                functions.function(self.type_index(ty)?);
            }
        }
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut wasm_encoder::ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> Result<(), ReencodeError<Self::Error>> {
        for export in section {
            let export = export?;
            if export.kind == wasmparser::ExternalKind::Func && !self.stays(export.index) {
                continue;
            }
            self.parse_export(exports, export)?;
        }
        Ok(())
    }

    fn parse_global_section(
        &mut self,
        globals: &mut wasm_encoder::GlobalSection,
        section: wasmparser::GlobalSectionReader<'_>,
    ) -> Result<(), ReencodeError<Self::Error>> {
        globals.global(
            GlobalType {
                val_type: ValType::I32,
                mutable: true,
                shared: false,
            },
            &ConstExpr::i32_const(self.base),
        );
        utils::parse_global_section(self, globals, section)
    }

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), ReencodeError<Self::Error>> {
        let this = self.trampolines.get(self.next).copied().flatten();
        let stays = self.stays.get(self.next).copied().unwrap_or(true);
        self.next += 1;
        if !stays {
            return Ok(());
        }
        let Some(Trampoline { params, slot }) = this else {
            return utils::parse_function_body(self, code, func);
        };
        let mut reader = func.get_operators_reader()?;
        let (type_index, table_index) = loop {
            if let Operator::CallIndirect {
                type_index,
                table_index,
            } = reader.read()?
            {
                break (type_index, table_index);
            }
        };
        let mut f = wasm_encoder::Function::new([]);
        let mut ins = f.instructions();
        for local in 0..params {
            ins.local_get(local);
        }
        ins.global_get(0)
            .i32_const(slot.wrapping_sub(self.base))
            .i32_add()
            .call_indirect(table_index, self.type_index(type_index)?)
            .end();
        code.function(&f);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_encoder::{
        CodeSection, ExportKind, ExportSection, Function, FunctionSection, GlobalSection, Module,
        RefType, TableSection, TableType, TypeSection,
    };

    /// An env-like module: a table, one global, and `slots.len()`
    /// trampolines of type `(i32, i32) -> i32`, plus one other function.
    fn env_like(slots: &[i32]) -> Vec<u8> {
        env_module(slots, true)
    }

    /// [`env_like`], with the other function or without it.
    fn env_module(slots: &[i32], other: bool) -> Vec<u8> {
        let mut types = TypeSection::new();
        types
            .ty()
            .function([ValType::I32, ValType::I32], [ValType::I32]);
        let mut funcs = FunctionSection::new();
        let mut code = CodeSection::new();
        let mut exports = ExportSection::new();
        for (i, slot) in slots.iter().enumerate() {
            funcs.function(0);
            let mut f = Function::new([]);
            f.instructions()
                .local_get(0)
                .local_get(1)
                .i32_const(*slot)
                .call_indirect(0, 0)
                .end();
            code.function(&f);
            exports.export(&format!("t{i}"), ExportKind::Func, i as u32);
        }
        // Not a trampoline: reads global 0, which must become global 1.
        if other {
            funcs.function(0);
            let mut f = Function::new([]);
            f.instructions().local_get(0).global_get(0).i32_add().end();
            code.function(&f);
        }
        let mut tables = TableSection::new();
        tables.table(TableType {
            element_type: RefType::FUNCREF,
            table64: false,
            minimum: 4096,
            maximum: None,
            shared: false,
        });
        let mut globals = GlobalSection::new();
        globals.global(
            GlobalType {
                val_type: ValType::I32,
                mutable: false,
                shared: false,
            },
            &ConstExpr::i32_const(7),
        );
        exports.export("g", ExportKind::Global, 0);
        let mut module = Module::new();
        module
            .section(&types)
            .section(&funcs)
            .section(&tables)
            .section(&globals)
            .section(&exports)
            .section(&code);
        module.finish()
    }

    fn code_section(module: &[u8]) -> Vec<u8> {
        for payload in Parser::new(0).parse_all(module) {
            if let Ok(Payload::CodeSectionStart { range, .. }) = payload {
                return module[range.start as usize..range.end as usize].to_vec();
            }
        }
        panic!("no code section");
    }

    #[test]
    fn trampolines_become_the_same_whatever_their_slots() {
        let a = rebase_module(&env_like(&[100, 101, 102]), None)
            .unwrap()
            .unwrap();
        let b = rebase_module(&env_like(&[5310, 5311, 5312]), None)
            .unwrap()
            .unwrap();
        wasmparser::validate(&a).unwrap();
        wasmparser::validate(&b).unwrap();
        assert_eq!(code_section(&a), code_section(&b));
        assert_ne!(a, b, "the slot base differs, in the new global");
    }

    #[test]
    fn other_globals_move_up_by_one() {
        let module = rebase_module(&env_like(&[40, 41]), None).unwrap().unwrap();
        let mut exported = None;
        let mut bases = Vec::new();
        for payload in Parser::new(0).parse_all(&module) {
            match payload.unwrap() {
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let export = export.unwrap();
                        if export.name == "g" {
                            exported = Some(export.index);
                        }
                    }
                }
                Payload::GlobalSection(reader) => {
                    for global in reader {
                        let global = global.unwrap();
                        let mut ops = global.init_expr.get_operators_reader();
                        if let Operator::I32Const { value } = ops.read().unwrap() {
                            bases.push((global.ty.mutable, value));
                        }
                    }
                }
                _ => {}
            }
        }
        assert_eq!(bases, [(true, 40), (false, 7)]);
        assert_eq!(exported, Some(1));
        let code = code_section(&module);
        // The other function now reads global 1 (`global.get 1` = 0x23 0x01).
        assert!(code.windows(2).any(|w| w == [0x23, 0x01]));
    }

    /// The function exports of a module: name and index.
    fn function_exports(module: &[u8]) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        for payload in Parser::new(0).parse_all(module) {
            if let Ok(Payload::ExportSection(reader)) = payload {
                for export in reader {
                    let export = export.unwrap();
                    if export.kind == wasmparser::ExternalKind::Func {
                        out.push((export.name.to_string(), export.index));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn trampolines_nothing_uses_are_dropped_and_the_rest_renumbered() {
        let keep: std::collections::HashSet<String> =
            ["t1", "t3", "g"].iter().map(|s| s.to_string()).collect();
        let env = env_module(&[10, 11, 12, 13], false);
        let module = rebase_module(&env, Some(&keep)).unwrap().unwrap();
        wasmparser::validate(&module).unwrap();
        assert_eq!(
            function_exports(&module),
            [("t1".to_string(), 0), ("t3".to_string(), 1)]
        );
        // The two left are t1's and t3's: slots 11 and 13 from a base of 10.
        let all = rebase_module(&env, None).unwrap().unwrap();
        assert_eq!(function_exports(&all).len(), 4);
        let slots = |m: &[u8]| -> Vec<i32> {
            let mut out = Vec::new();
            for payload in Parser::new(0).parse_all(m) {
                if let Ok(Payload::CodeSectionEntry(body)) = payload {
                    for op in body.get_operators_reader().unwrap() {
                        if let Operator::I32Const { value } = op.unwrap() {
                            out.push(value);
                        }
                    }
                }
            }
            out
        };
        assert_eq!(slots(&module), [1, 3]);
        assert_eq!(slots(&all), [0, 1, 2, 3]);
        // A module with a function that is not a trampoline (it could call
        // the others) keeps them all.
        let mixed = rebase_module(&env_like(&[10, 11, 12, 13]), Some(&keep))
            .unwrap()
            .unwrap();
        assert_eq!(function_exports(&mixed).len(), 4);
    }

    #[test]
    fn a_malformed_component_is_an_error_naming_the_step() {
        // A component header, then a core module section cut short.
        let bytes = b"\0asm\x0d\0\x01\0\x01\x10\0asm";
        let e = rebase(bytes).unwrap_err();
        assert!(matches!(e, LinkError::Rebase { .. }), "{e:?}");
        let message = e.to_string();
        assert!(
            message.contains("env module")
                && message.contains("runs past the end")
                && message.contains("report it"),
            "{message}"
        );
        // `split` reads components the same way: an error, not a panic.
        let e = crate::split(bytes, 0).unwrap_err();
        assert!(e.to_string().contains("runs past the end"), "{e}");
    }

    #[test]
    fn libraries_and_modules_without_trampolines_are_left_alone() {
        let mut module = Module::new();
        module.section(&wasm_encoder::CustomSection {
            name: "dylink.0".into(),
            data: (&[][..]).into(),
        });
        assert!(rebase_module(&module.finish(), None).unwrap().is_none());
        let plain = Module::new().finish();
        assert!(rebase_module(&plain, None).unwrap().is_none());
    }
}
