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

use std::ops::Range;

use wasm_encoder::reencode::{Error as ReencodeError, Reencode, utils};
use wasm_encoder::{ComponentSectionId, ConstExpr, Encode, GlobalType, ValType};
use wasmparser::{Operator, Parser, Payload, TypeRef};

use crate::LinkError;

/// `component` (a linked component) with its env module's trampolines
/// rebased (see the module docs); unchanged if no top-level core module
/// has that shape.
pub fn rebase(component: &[u8]) -> Result<Vec<u8>, LinkError> {
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(component) {
        match payload.map_err(|e| err(&e))? {
            Payload::ModuleSection {
                unchecked_range, ..
            } => {
                if depth == 0 {
                    let (range, bytes) = crate::split::module_bytes(component, &unchecked_range)
                        .ok_or_else(|| err(&crate::split::PAST_THE_END))?;
                    if let Some(module) = rebase_module(bytes)? {
                        return replace_module(component, &range, &module)
                            .ok_or_else(|| err(&"no section header before the module"));
                    }
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
    Ok(component.to_vec())
}

/// The error for a linked component this module cannot read or rewrite.
fn err(e: &dyn std::fmt::Display) -> LinkError {
    LinkError::Rebase {
        message: e.to_string(),
    }
}

/// `component` with the module whose bytes are at `range` replaced.
fn replace_module(component: &[u8], range: &Range<usize>, module: &[u8]) -> Option<Vec<u8>> {
    let start = crate::split::section_start(component, range)?;
    let mut out = Vec::with_capacity(component.len() + module.len() + 16);
    out.extend_from_slice(&component[..start]);
    out.push(ComponentSectionId::CoreModule as u8);
    module.encode(&mut out);
    out.extend_from_slice(&component[range.end..]);
    Some(out)
}

/// One trampoline: its parameter count and slot.
#[derive(Debug, Clone, Copy)]
struct Trampoline {
    params: u32,
    slot: i32,
}

/// The rewritten module, if `module` has trampolines and no imported
/// globals (the new global must be global 0).
pub(crate) fn rebase_module(module: &[u8]) -> Result<Option<Vec<u8>>, LinkError> {
    let mut found = Vec::new();
    let mut has_globals = false;
    for payload in Parser::new(0).parse_all(module) {
        match payload.map_err(|e| err(&e))? {
            Payload::CustomSection(c) if c.name() == "dylink.0" => return Ok(None),
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    if let TypeRef::Global(_) = import.map_err(|e| err(&e))?.ty {
                        return Ok(None);
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
    let mut rebaser = Rebaser {
        base,
        trampolines: found,
        next: 0,
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
}

impl Reencode for Rebaser {
    type Error = std::convert::Infallible;

    fn global_index(&mut self, global: u32) -> Result<u32, ReencodeError<Self::Error>> {
        Ok(global + 1)
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
        self.next += 1;
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
        funcs.function(0);
        let mut f = Function::new([]);
        f.instructions().local_get(0).global_get(0).i32_add().end();
        code.function(&f);
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
        let a = rebase_module(&env_like(&[100, 101, 102])).unwrap().unwrap();
        let b = rebase_module(&env_like(&[5310, 5311, 5312]))
            .unwrap()
            .unwrap();
        wasmparser::validate(&a).unwrap();
        wasmparser::validate(&b).unwrap();
        assert_eq!(code_section(&a), code_section(&b));
        assert_ne!(a, b, "the slot base differs, in the new global");
    }

    #[test]
    fn other_globals_move_up_by_one() {
        let module = rebase_module(&env_like(&[40, 41])).unwrap().unwrap();
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
        assert!(rebase_module(&module.finish()).unwrap().is_none());
        let plain = Module::new().finish();
        assert!(rebase_module(&plain).unwrap().is_none());
    }
}
