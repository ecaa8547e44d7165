//! The linker's validation, on real bytes.

use eryx_linker::{LinkError, validate_library};

#[test]
fn rejects_a_file_that_is_not_wasm_naming_it() {
    let err = validate_library("libfoo.so", b"\x7fELF\x02\x01\x01\0").unwrap_err();
    assert!(matches!(err, LinkError::NotWasm { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("`libfoo.so` is not a WebAssembly module"),
        "{msg}"
    );
    assert!(msg.contains("ELF"), "{msg}");
}

#[test]
fn rejects_a_module_without_dylink_naming_it() {
    let mut module = wasm_encoder::Module::new();
    module.section(&wasm_encoder::TypeSection::new());
    let err = validate_library("plain.wasm", &module.finish()).unwrap_err();
    assert!(matches!(err, LinkError::NotSharedLibrary { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("`plain.wasm`") && msg.contains("-fPIC") && msg.contains("-shared"),
        "{msg}"
    );
}

#[test]
fn rejects_a_truncated_dylink_section() {
    let mut module = wasm_encoder::Module::new();
    // mem-info subsection that claims 10 bytes but has 1.
    module.section(&wasm_encoder::CustomSection {
        name: "dylink.0".into(),
        data: (&[1u8, 10, 0][..]).into(),
    });
    let err = validate_library("bad.so", &module.finish()).unwrap_err();
    assert!(matches!(err, LinkError::Malformed { .. }), "{err:?}");
    assert!(err.to_string().contains("`bad.so` is malformed"), "{err}");
}

#[test]
fn accepts_a_shared_library_and_reads_needed() {
    let mut module = wasm_encoder::Module::new();
    // needed subsection (2): one entry "libc.so".
    let mut data = vec![2u8, 9, 1, 7];
    data.extend_from_slice(b"libc.so");
    module.section(&wasm_encoder::CustomSection {
        name: "dylink.0".into(),
        data: data.as_slice().into(),
    });
    let info = validate_library("ok.so", &module.finish()).unwrap();
    assert_eq!(info.needed, ["libc.so"]);
}

#[test]
fn bindings_import_the_async_hooks() {
    let bindings = eryx_linker::bindings().unwrap();
    let info = validate_library("liberyx_bindings.so", &bindings).unwrap();
    assert_eq!(info.needed, [eryx_linker::RUNTIME_LIBRARY]);
    assert!(
        info.function_imports
            .iter()
            .any(|(m, n)| m == "env" && n == "wit_dylib_export_async_call")
    );
}

/// The example extensions `names`, each at its place in `/site-packages`.
fn example_extensions(names: &[&str]) -> Vec<eryx_linker::Extension> {
    names
        .iter()
        .map(|name| {
            let path = crate::support::example(name);
            let file = path.file_name().unwrap().to_str().unwrap();
            let guest = format!("{}/{file}", eryx_linker::SITE_PACKAGES);
            eryx_linker::Extension::new(guest, std::fs::read(&path).unwrap()).unwrap()
        })
        .collect()
}

/// The linker skips wit-component's own validation of its output (wasmtime
/// validates when it compiles); this checks that what it writes is valid.
#[test]
fn linked_component_with_extensions_is_valid() {
    let bundle = eryx_linker::Bundle::open(crate::support::bundle()).unwrap();
    let extensions = example_extensions(&["fastsum", "wordcount"]);
    assert_eq!(extensions.len(), 2);
    let component = eryx_linker::link_with_extensions(&bundle, &extensions).unwrap();
    let mut validator = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    validator
        .validate_all(&component)
        .expect("the linked component validates");
}

/// `split` takes the libraries' modules out, byte for byte, as imports of
/// core modules; the rest of the component is kept, and it validates.
#[test]
fn split_imports_the_library_modules_unchanged() {
    let bundle = eryx_linker::Bundle::open(crate::support::bundle()).unwrap();
    let linked = eryx_linker::link(&bundle).unwrap();
    let split = eryx_linker::split(&linked, eryx_linker::SPLIT_MIN_BYTES).unwrap();
    let libpython = bundle.read_file(eryx_linker::PYTHON_LIBRARY).unwrap();
    let runtime = bundle.read_file(eryx_linker::RUNTIME_LIBRARY).unwrap();
    let modules: Vec<&[u8]> = split
        .modules
        .iter()
        .map(|m| &linked[m.range.clone()])
        .collect();
    assert!(
        modules.contains(&libpython.as_slice()),
        "libpython as it is"
    );
    assert!(
        modules.contains(&runtime.as_slice()),
        "the runtime as it is"
    );
    // What stays: the glue, the small modules and the taken modules' types
    // (their import and export lists).
    let taken: usize = modules.iter().map(|m| m.len()).sum();
    assert!(taken > linked.len() * 9 / 10, "{taken} of {}", linked.len());
    assert!(split.component.len() < linked.len() - taken + (256 << 10));
    for m in &split.modules {
        assert!(m.name.starts_with("eryx-module-m"), "{}", m.name);
        assert!(m.range.len() >= eryx_linker::SPLIT_MIN_BYTES);
    }
    let mut validator = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    let types = validator
        .validate_all(&split.component)
        .expect("the split component validates");
    // Its imports now include one core module per library taken out.
    let mut imported_modules = 0;
    for payload in wasmparser::Parser::new(0).parse_all(&split.component) {
        if let Ok(wasmparser::Payload::ComponentImportSection(reader)) = payload {
            for import in reader {
                if matches!(import.unwrap().ty, wasmparser::ComponentTypeRef::Module(_)) {
                    imported_modules += 1;
                }
            }
        }
    }
    assert_eq!(imported_modules, split.modules.len());
    drop(types);
    // Modules below the threshold stay: with a threshold above every
    // module's size nothing is taken out.
    let whole = eryx_linker::split(&linked, usize::MAX).unwrap();
    assert!(whole.modules.is_empty());
    assert_eq!(whole.component, linked);
}

/// Linking big libraries as skeletons (see `eryx_linker::link_split`)
/// gives exactly what linking them whole does: the same component once the
/// real modules are back, and the same split component, importing the same
/// bytes (each with its sha256), as splitting the whole link.
#[test]
fn linking_skeletons_gives_what_linking_whole_libraries_gives() {
    let bundle = eryx_linker::Bundle::open(crate::support::bundle()).unwrap();
    // Two extensions big enough to be split and two that are not.
    let extensions = example_extensions(&["fastsum", "wordcount", "ctors", "_native"]);
    assert!(
        extensions
            .iter()
            .any(|e| e.bytes().len() < eryx_linker::SPLIT_MIN_BYTES)
    );
    assert!(
        extensions
            .iter()
            .any(|e| e.bytes().len() >= eryx_linker::SPLIT_MIN_BYTES)
    );
    // With no module big enough, nothing is a skeleton or split.
    let whole = eryx_linker::link_split(&bundle, &extensions, usize::MAX).unwrap();
    assert!(whole.modules.is_empty());
    let whole = whole.component;
    assert_eq!(
        eryx_linker::link_with_extensions(&bundle, &extensions).unwrap(),
        whole,
        "skeletons filled back in"
    );
    let expected = eryx_linker::split(&whole, eryx_linker::SPLIT_MIN_BYTES).unwrap();
    let linked =
        eryx_linker::link_split(&bundle, &extensions, eryx_linker::SPLIT_MIN_BYTES).unwrap();
    assert_eq!(linked.component, expected.component);
    assert_eq!(linked.modules.len(), expected.modules.len());
    // The base libraries (libc among them: it carries WIT metadata, which
    // the linker reads from the skeleton and drops from what it embeds),
    // the two big extensions.
    assert!(linked.modules.len() >= 8, "{}", linked.modules.len());
    let libpython = bundle.read_file(eryx_linker::PYTHON_LIBRARY).unwrap();
    assert!(linked.modules.iter().any(|m| *m.bytes == libpython[..]));
    for (got, want) in linked.modules.iter().zip(&expected.modules) {
        assert_eq!(got.name, want.name);
        assert!(*got.bytes == whole[want.range.clone()], "{}", got.name);
        assert_eq!(
            got.sha256,
            eryx_linker::sha256_hex(&got.bytes),
            "{}",
            got.name
        );
    }
}

/// `prune_exports` removes the exports no other module of the component
/// uses: libpython keeps what the runtime imports from it and loses the
/// rest of its ~1,860; the result validates, pruning it again removes
/// nothing, and a component it cannot analyse (one with a nested
/// component) comes back unchanged.
#[test]
fn prune_drops_the_exports_no_module_imports() {
    let bundle = eryx_linker::Bundle::open(crate::support::bundle()).unwrap();
    let linked = eryx_linker::link(&bundle).unwrap();
    let pruned = eryx_linker::prune_exports(&linked);
    assert!(pruned.removed > 1000, "removed {}", pruned.removed);
    let mut validator = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    validator
        .validate_all(&pruned.component)
        .expect("the pruned component validates");
    assert_eq!(eryx_linker::prune_exports(&pruned.component).removed, 0);

    // libpython is the biggest module, before and after.
    let biggest = |component: &[u8]| -> Vec<u8> {
        let mut modules = Vec::new();
        for payload in wasmparser::Parser::new(0).parse_all(component) {
            if let Ok(wasmparser::Payload::ModuleSection {
                unchecked_range, ..
            }) = payload
            {
                let range = usize::try_from(unchecked_range.start).unwrap()
                    ..usize::try_from(unchecked_range.end).unwrap();
                modules.push(component[range].to_vec());
            }
        }
        modules.into_iter().max_by_key(Vec::len).unwrap()
    };
    let exports = |module: &[u8]| validate_library("module", module).unwrap().exports;
    let libpython = bundle.read_file(eryx_linker::PYTHON_LIBRARY).unwrap();
    assert_eq!(biggest(&linked), libpython);
    let before = exports(&libpython);
    let after = exports(&biggest(&pruned.component));
    assert!(
        after.len() * 2 < before.len(),
        "{} of {}",
        after.len(),
        before.len()
    );
    assert!(after.iter().all(|e| before.contains(e)));
    // Every symbol the runtime imports from libpython is still there.
    let runtime = bundle.read_file(eryx_linker::RUNTIME_LIBRARY).unwrap();
    let mut needed = 0;
    for payload in wasmparser::Parser::new(0).parse_all(&runtime) {
        if let Ok(wasmparser::Payload::ImportSection(reader)) = payload {
            for import in reader.into_imports() {
                let import = import.unwrap();
                if import.module == "env" && before.iter().any(|e| e == import.name) {
                    needed += 1;
                    assert!(after.iter().any(|e| e == import.name), "{}", import.name);
                }
            }
        }
    }
    assert!(needed > 10, "{needed}");

    // A nested component could use any export: left whole.
    let mut nested = wasm_encoder::Component::new();
    nested.section(&wasm_encoder::NestedComponentSection(
        &wasm_encoder::Component::new(),
    ));
    let nested = nested.finish();
    let mut with_nested = linked.clone();
    with_nested.extend_from_slice(&nested[8..]);
    let kept = eryx_linker::prune_exports(&with_nested);
    assert_eq!(kept.removed, 0);
    assert_eq!(kept.component, with_nested);
}

/// An extension module's static constructors are exported under another
/// name once added, so that the component's start-up (which calls every
/// library's `__wasm_call_ctors`) leaves them to its first import; the
/// module stays valid.
#[test]
fn an_extensions_constructors_are_renamed_for_its_first_import() {
    let path = crate::support::example_file("ctors.cpython-314-wasm32-wasi.so");
    let bytes = std::fs::read(&path).unwrap();
    let before = validate_library("ctors", &bytes).unwrap();
    assert!(before.exports.iter().any(|e| e == "__wasm_call_ctors"));
    let guest = format!(
        "{}/ctors.cpython-314-wasm32-wasi.so",
        eryx_linker::SITE_PACKAGES
    );
    let ext = eryx_linker::Extension::new(guest, bytes.clone()).unwrap();
    let exports = |b: &[u8]| validate_library("ctors", b).unwrap().exports;
    for names in [exports(ext.bytes()), ext.info().exports.clone()] {
        assert!(
            names.iter().any(|e| e == eryx_linker::DEFERRED_CTORS),
            "{names:?}"
        );
        assert!(!names.iter().any(|e| e == "__wasm_call_ctors"), "{names:?}");
        assert!(names.iter().any(|e| e == "PyInit_ctors"), "{names:?}");
    }
    assert_eq!(ext.bytes().len(), bytes.len());
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(ext.bytes())
        .expect("the renamed module validates");
}

/// The env module of a component linked with `extensions`: the top-level
/// core module that defines the function table. Returns its trampoline
/// bodies (functions that end in `call_indirect`, in order) and the value
/// global 0 starts with.
fn env_trampolines(extensions: &[&str]) -> (Vec<Vec<u8>>, i32) {
    use wasmparser::{ExternalKind, Operator, Parser, Payload};
    let bundle = eryx_linker::Bundle::open(crate::support::bundle()).unwrap();
    let extensions = example_extensions(extensions);
    let component = eryx_linker::link_with_extensions(&bundle, &extensions).unwrap();
    let mut depth = 0;
    for payload in Parser::new(0).parse_all(&component) {
        match payload.unwrap() {
            Payload::ModuleSection {
                unchecked_range, ..
            } => {
                if depth == 0 {
                    let module =
                        &component[unchecked_range.start as usize..unchecked_range.end as usize];
                    let (mut table, mut bodies, mut base) = (false, Vec::new(), None);
                    for p in Parser::new(0).parse_all(module) {
                        match p.unwrap() {
                            Payload::ExportSection(reader) => {
                                for e in reader {
                                    let e = e.unwrap();
                                    table |= e.kind == ExternalKind::Table
                                        && e.name == "__indirect_function_table";
                                }
                            }
                            Payload::GlobalSection(reader) => {
                                let first = reader.into_iter().next().unwrap().unwrap();
                                let mut ops = first.init_expr.get_operators_reader();
                                if let Operator::I32Const { value } = ops.read().unwrap() {
                                    base = Some(value);
                                }
                            }
                            Payload::CodeSectionEntry(body) => {
                                let ops: Vec<Operator<'_>> = body
                                    .get_operators_reader()
                                    .unwrap()
                                    .into_iter()
                                    .map(Result::unwrap)
                                    .collect();
                                if matches!(
                                    ops.iter().rev().nth(1),
                                    Some(Operator::CallIndirect { .. })
                                ) {
                                    let range = body.range();
                                    bodies.push(
                                        module[range.start as usize..range.end as usize].to_vec(),
                                    );
                                }
                            }
                            _ => {}
                        }
                    }
                    if table {
                        return (bodies, base.expect("global 0 starts with a constant"));
                    }
                }
                depth += 1;
            }
            Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth -= 1,
            _ => {}
        }
    }
    panic!("no module defines the function table");
}

/// A new extension moves every table slot of the env module's trampolines;
/// their code stays the same (the base is global 0), so that a new set
/// finds them in the function cache rather than compiling them again.
#[test]
fn the_env_modules_trampolines_are_the_same_in_every_set() {
    let (small, small_base) = env_trampolines(&["fastsum"]);
    let (bigger, bigger_base) = env_trampolines(&["fastsum", "wordcount"]);
    // The base set's ~220 that something uses (the others are dropped).
    assert!(small.len() > 150, "{} trampolines", small.len());
    assert_ne!(small_base, bigger_base, "the slots moved");
    assert!(bigger.len() >= small.len());
    assert!(
        small == bigger[..small.len()],
        "the trampolines of the smaller set are those of the bigger one"
    );
}
