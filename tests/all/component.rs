//! The linked component itself.

use crate::support::bundle;

#[test]
fn component_contains_our_runtime_and_no_componentize_py_runtime() {
    let bundle = eryx_linker::Bundle::open(bundle()).unwrap();
    let component = eryx_linker::link(&bundle).unwrap();
    let mut exports_per_module: Vec<Vec<String>> = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(&component) {
        if let wasmparser::Payload::ExportSection(r) = payload.unwrap() {
            exports_per_module.push(r.into_iter().map(|e| e.unwrap().name.to_string()).collect());
        }
    }
    let has = |name: &str| {
        exports_per_module
            .iter()
            .any(|m| m.iter().any(|e| e == name))
    };
    assert!(
        has("wit_dylib_export_async_call"),
        "no module exports the interpreter hooks"
    );
    assert!(
        !has("PyInit_componentize_py_runtime"),
        "componentize-py's runtime was linked"
    );
    // Our runtime exports exactly the hooks (plus the data-relocation entry).
    let ours = exports_per_module
        .iter()
        .find(|m| m.iter().any(|e| e == "wit_dylib_export_async_call"))
        .unwrap();
    for hook in eryx_ffi::abi::INTRINSICS {
        assert!(
            ours.contains(&hook.name.to_string()),
            "runtime lacks {}",
            hook.name
        );
    }
}
