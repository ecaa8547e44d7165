//! C++ exceptions in the guest: the exception runtime (`libunwind.so`) and
//! the step that makes clang's exception code loadable by wasmtime.
//!
//! - clang 19 compiles `-fwasm-exceptions` to the *legacy* instructions of
//!   the exception-handling proposal (`try`/`catch`/`rethrow`); wasmtime 48
//!   implements only the standardised form (`try_table`, `exnref`).
//!   Binaryen's `wasm-opt --translate-to-exnref` rewrites one into the other
//!   (a PIC library keeps its `dylink.0` section). Binaryen comes from the
//!   npm registry (its JavaScript build, run by the machine's Node.js), or
//!   from `ERYX_WASM_OPT` (a native `wasm-opt`, version 119 or later).
//! - The bundle's libc++/libc++abi (componentize-py's) are built without
//!   exceptions: no `__cxa_throw`, no personality routine. `libunwind.so`
//!   supplies them, compiled from LLVM 19's libc++abi and libunwind sources
//!   (Debian's `llvm-toolchain-19` source package, checked against its
//!   `Sources` index), and defines the `__cpp_exception` tag that every
//!   library's exception code imports (wit-component's linker resolves it
//!   like a function). It is a base library, listed before libc++abi.so so
//!   that its exception-pointer functions win over libc++abi's stubs.
//! - What the bundle's libc++ throws itself would abort there (`std::stol`'s
//!   `invalid_argument`, `operator new`'s `bad_alloc`, `basic_string`'s
//!   out-of-line members' `out_of_range`, a failed `dynamic_cast`'s
//!   `bad_cast`), so `libunwind.so` also carries those parts of libc++ and
//!   libc++abi ([`LIBCXX_SOURCES`], `cxa_aux_runtime.cpp`,
//!   [`THROW_HELPERS`]) compiled with exceptions: listed before
//!   `libc++abi.so` and `libc++.so`, its definitions win for every other
//!   library, and C++ that catches what they throw gets the exception.
//!   Inside `libc++.so`, calls to weak definitions (`basic_string`'s
//!   members, `operator new`) go through imports and reach these too;
//!   calls to its own strong ones (the `std::locale` constructor's
//!   `__throw_runtime_error`) stay inside it and still abort.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use eryx_linker::sha256_hex;

use crate::toolchain::Toolchain;
use crate::{process, progress};

/// The npm package and version of binaryen.
const BINARYEN: &str = "binaryen@132.0.0";

/// The environment variable naming a native `wasm-opt` to use instead.
pub(crate) const WASM_OPT_ENV: &str = "ERYX_WASM_OPT";

/// The Debian source package with LLVM 19's runtimes (the same LLVM as the
/// sysroot's libc++ headers and the compiler).
const LLVM_SOURCE: &str = "llvm-toolchain-19";

/// The members of the LLVM tarball the runtime is built from.
const LLVM_MEMBERS: &[&str] = &[
    "*/libunwind/include/*",
    "*/libunwind/src/*",
    "*/libcxxabi/include/*",
    "*/libcxxabi/src/*",
    "*/libcxx/src/include/*",
    "*/libcxx/src/string.cpp",
    "*/libcxx/src/new.cpp",
    "*/libcxx/src/new_helpers.cpp",
];

/// libc++abi's exception machinery: throwing, catching, the personality
/// routine, the emergency heap and the terminate handlers it calls.
const LIBCXXABI_SOURCES: &[&str] = &[
    "cxa_exception.cpp",
    "cxa_personality.cpp",
    "abort_message.cpp",
    "fallback_malloc.cpp",
    "cxa_handlers.cpp",
    "cxa_aux_runtime.cpp",
];

/// libc++'s sources whose throws must reach C++ that catches them, compiled
/// with exceptions: `basic_string<char>`'s and `<wchar_t>`'s out-of-line
/// members and the `sto*` conversions (`string.cpp`), `operator new` and
/// `delete` (`new.cpp`, replacing libc++abi's) and `std::__throw_bad_alloc`
/// (`new_helpers.cpp`). Everything they define with default visibility is
/// exported ([`public_symbols`]).
const LIBCXX_SOURCES: &[&str] = &["string.cpp", "new.cpp", "new_helpers.cpp"];

/// libc++'s two other out-of-line throw helpers that its headers call
/// (`<locale>`'s conversions, `<print>`, `unique_lock`, `<chrono>`), here
/// rather than from their sources, which also define the exception
/// classes: a second copy of a class's `type_info` would make `catch`
/// miss it (type_info is compared by address).
const THROW_HELPERS: &str = r#"#include <stdexcept>
#include <system_error>

_LIBCPP_BEGIN_NAMESPACE_STD
void __throw_runtime_error(const char *message) { throw runtime_error(message); }
void __throw_system_error(int value, const char *message) {
    throw system_error(error_code(value, system_category()), message);
}
_LIBCPP_END_NAMESPACE_STD
"#;

/// The exception tag, defined here: LLVM 19's libunwind only imports it.
const TAG_ASM: &str = "\
.tagtype __cpp_exception i32
.globl __cpp_exception
__cpp_exception:
";

/// What the library exports (a name that is not defined fails the link):
/// the tag, the landing-pad context that compiled code writes to, the
/// personality routine and libc++abi's and libunwind's exception API.
const EXPORTS: &[&str] = &[
    "__cpp_exception",
    "__wasm_lpad_context",
    "__gxx_personality_wasm0",
    "__cxa_allocate_dependent_exception",
    "__cxa_allocate_exception",
    "__cxa_bad_cast",
    "__cxa_bad_typeid",
    "__cxa_begin_catch",
    "__cxa_call_terminate",
    "__cxa_call_unexpected",
    "__cxa_current_exception_type",
    "__cxa_current_primary_exception",
    "__cxa_decrement_exception_refcount",
    "__cxa_end_catch",
    "__cxa_free_dependent_exception",
    "__cxa_free_exception",
    "__cxa_get_exception_ptr",
    "__cxa_increment_exception_refcount",
    "__cxa_init_primary_exception",
    "__cxa_rethrow",
    "__cxa_rethrow_primary_exception",
    "__cxa_throw",
    "__cxa_throw_bad_array_new_length",
    "__cxa_uncaught_exception",
    "__cxa_uncaught_exceptions",
    "_Unwind_CallPersonality",
    "_Unwind_DeleteException",
    "_Unwind_GetIP",
    "_Unwind_GetLanguageSpecificData",
    "_Unwind_GetRegionStart",
    "_Unwind_RaiseException",
    "_Unwind_SetGR",
    "_Unwind_SetIP",
];

/// Definitions for a single-threaded, hidden-by-default build.
const DEFINES: &[&str] = &[
    "-DNDEBUG",
    "-D_LIBCPP_BUILDING_LIBRARY",
    "-D_LIBCXXABI_BUILDING_LIBRARY",
    "-DLIBCXXABI_USE_LLVM_UNWINDER",
    "-D_LIBCPP_HAS_NO_THREADS",
    "-D_LIBCXXABI_HAS_NO_THREADS",
    "-D_LIBUNWIND_HAS_NO_THREADS",
    "-D_LIBUNWIND_HIDE_SYMBOLS",
];

/// The flags `wasm-opt` gets: the features of the input it must accept,
/// names kept, only the translation done.
const WASM_OPT_FLAGS: &[&str] = &[
    "--enable-exception-handling",
    "--enable-reference-types",
    "--translate-to-exnref",
    "-g",
];

/// The `wasm-opt` to run: `ERYX_WASM_OPT`, else binaryen's npm package
/// (installed into `target/fetch` on first use).
pub(crate) fn wasm_opt(root: &Path) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(WASM_OPT_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let dir = root.join("target/fetch").join(BINARYEN.replace('@', "-"));
    let bin = dir.join("node_modules/binaryen/bin/wasm-opt");
    if bin.is_file() {
        return Ok(bin);
    }
    let has = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let have_node = has("node") && has("npm");
    if !have_node && !crate::toolchain::apt_install(&["nodejs", "npm"], "for binaryen's wasm-opt")?
    {
        bail!(
            "C++ exceptions need binaryen's wasm-opt: install Node.js and npm (it is \
             fetched from the npm registry as {BINARYEN}), or set {WASM_OPT_ENV} to a \
             wasm-opt of binaryen 119 or later"
        );
    }
    progress!("fetching {BINARYEN} from the npm registry (wasm-opt, for C++ exceptions)");
    std::fs::create_dir_all(&dir)?;
    process::run(
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .arg(BINARYEN),
        &format!("npm install {BINARYEN}"),
    )?;
    if !bin.is_file() {
        bail!("npm installed {BINARYEN} but {} is missing", bin.display());
    }
    Ok(bin)
}

/// Whether a linked library has legacy exception code to translate: C++
/// compiled with `-fwasm-exceptions` or C that calls `setjmp`
/// ([`crate::sjlj`]). Only code compiled with the exception-handling
/// feature (its `target_features` section lists `+exception-handling`)
/// can; since every guest compile turns it on for `setjmp`, the function
/// bodies are read for the legacy instructions (`try`, `catch`,
/// `catch_all`, `rethrow`, `delegate`). Code that cannot be read counts as
/// having them (`wasm-opt` rewrites only what needs it).
pub(crate) fn uses_exceptions(wasm: &[u8]) -> Result<bool> {
    use wasmparser::{Operator, Payload};
    let mut feature = false;
    let mut bodies = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::CustomSection(c) if c.name() == "target_features" => {
                let mut r = wasmparser::BinaryReader::new(c.data(), 0);
                let count = r.read_var_u32()?;
                for _ in 0..count {
                    let prefix = r.read_u8()?;
                    let name = r.read_string()?;
                    feature |= prefix == b'+' && name == "exception-handling";
                }
            }
            Payload::CodeSectionEntry(body) => bodies.push(body),
            _ => {}
        }
    }
    if !feature {
        return Ok(false);
    }
    for body in bodies {
        let Ok(mut ops) = body.get_operators_reader() else {
            return Ok(true);
        };
        while !ops.eof() {
            match ops.read() {
                Ok(
                    Operator::Try { .. }
                    | Operator::Catch { .. }
                    | Operator::CatchAll
                    | Operator::Rethrow { .. }
                    | Operator::Delegate { .. },
                ) => return Ok(true),
                Ok(_) => {}
                Err(_) => return Ok(true),
            }
        }
    }
    Ok(false)
}

/// Rewrites `path`'s legacy exception instructions into the standardised
/// ones wasmtime runs (in place).
pub(crate) fn translate(wasm_opt: &Path, path: &Path) -> Result<()> {
    let tmp = path.with_extension("exnref.tmp");
    let out = Command::new(wasm_opt)
        .args(WASM_OPT_FLAGS)
        .arg(path)
        .arg("-o")
        .arg(&tmp)
        .output()
        .with_context(|| {
            format!(
                "cannot run {} (binaryen's wasm-opt; {WASM_OPT_ENV} overrides it)",
                wasm_opt.display()
            )
        })?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        bail!(
            "{}: wasm-opt could not translate its C++ exception code: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The built exception runtime.
pub(crate) struct Built {
    /// `target/wasm/eh/libunwind.so` (translated).
    pub(crate) path: PathBuf,
    /// Where its sources came from.
    pub(crate) origin: String,
}

/// Everything the runtime's bytes depend on besides the sources' origin
/// (part of the dist stamp).
pub(crate) fn fingerprint() -> String {
    format!(
        "{BINARYEN} {LLVM_MEMBERS:?} {LIBCXXABI_SOURCES:?} {LIBCXX_SOURCES:?} \
         {THROW_HELPERS:?} {TAG_ASM:?} {EXPORTS:?} {DEFINES:?} {WASM_OPT_FLAGS:?}"
    )
}

/// Builds `libunwind.so` (or reuses the last build of the same inputs).
pub(crate) fn build(root: &Path, tools: &Toolchain) -> Result<Built> {
    let (top, origin) =
        crate::stdlib_ext::debian_sources(root, LLVM_SOURCE, LLVM_SOURCE, None, LLVM_MEMBERS)?;
    let wasm_opt = wasm_opt(root)?;
    let sysroot = crate::sysroot::sysroot(root)?;
    let work = root.join("target/wasm/eh");
    std::fs::create_dir_all(&work)?;
    let so = work.join("libunwind.so");
    let stamp = work.join("stamp");
    let key = sha256_hex(format!("{}\n{}\n{origin}", fingerprint(), tools.versions).as_bytes());
    if so.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == key) {
        return Ok(Built { path: so, origin });
    }
    progress!(
        "building libunwind.so (C++ exceptions) from {}",
        origin.lines().next().unwrap_or(LLVM_SOURCE)
    );
    let mut common = crate::wasmcc::compile_flags(&sysroot.dir, None, None);
    common.extend(
        ["-O2", "-fwasm-exceptions", "-fvisibility=hidden"]
            .iter()
            .chain(DEFINES)
            .map(|s| s.to_string()),
    );
    for inc in ["libunwind/include", "libcxxabi/include", "libcxx/src"] {
        common.push(format!("-I{}", top.join(inc).display()));
    }
    let mut objects = Vec::new();
    let mut compile = |src: &Path, extra: &[String]| -> Result<PathBuf> {
        let obj = work.join(format!("{:02}.o", objects.len()));
        let mut cc = Command::new(&tools.clang);
        cc.args(&common)
            .args(extra)
            .arg("-c")
            .arg(src)
            .arg("-o")
            .arg(&obj);
        process::capture(&mut cc, &format!("compiling {}", src.display()))?;
        objects.push(obj.clone());
        Ok(obj)
    };
    let tag = work.join("tag.s");
    std::fs::write(&tag, TAG_ASM)?;
    compile(&tag, &[])?;
    compile(&top.join("libunwind/src/Unwind-wasm.c"), &[])?;
    let cxx_include = sysroot
        .cxx_include
        .as_ref()
        .context("the sysroot has no libc++ headers")?;
    let cxx = [
        "-std=c++20".to_string(),
        "-nostdinc++".to_string(),
        "-isystem".to_string(),
        cxx_include.display().to_string(),
    ];
    for src in LIBCXXABI_SOURCES {
        compile(&top.join("libcxxabi/src").join(src), &cxx)?;
    }
    let helpers = work.join("throw_helpers.cpp");
    std::fs::write(&helpers, THROW_HELPERS)?;
    let mut libcxx_exports = Vec::new();
    let libcxx = LIBCXX_SOURCES
        .iter()
        .map(|src| top.join("libcxx/src").join(src));
    for src in libcxx.chain([helpers]) {
        let obj = compile(&src, &cxx)?;
        let bytes = std::fs::read(&obj)?;
        libcxx_exports
            .extend(public_symbols(&bytes).with_context(|| format!("reading {}", obj.display()))?);
    }
    let mut exports: Vec<&str> = EXPORTS.to_vec();
    exports.extend(libcxx_exports.iter().map(String::as_str));
    crate::cext::link(
        tools,
        &objects,
        &exports,
        &crate::fetch::fetch_dir(root).join("lib"),
        &["c++".to_string(), "c++abi".to_string(), "c".to_string()],
        sysroot.builtins.as_deref(),
        &so,
    )?;
    for o in &objects {
        let _ = std::fs::remove_file(o);
    }
    translate(&wasm_opt, &so)?;
    std::fs::write(&stamp, &key)?;
    Ok(Built { path: so, origin })
}

/// The functions and data an object file (`clang -c` for wasm) defines
/// with default visibility: what a shared library linked from it exports
/// to the others. Read from its `linking` section's symbol table.
fn public_symbols(object: &[u8]) -> Result<Vec<String>> {
    use wasmparser::{KnownCustom, Linking, Payload, SymbolFlags, SymbolInfo};
    let mut names = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(object) {
        let Payload::CustomSection(c) = payload? else {
            continue;
        };
        let KnownCustom::Linking(reader) = c.as_known() else {
            continue;
        };
        for sub in reader {
            let Linking::SymbolTable(symbols) = sub? else {
                continue;
            };
            for symbol in symbols {
                let (flags, name) = match symbol? {
                    SymbolInfo::Func {
                        flags,
                        name: Some(name),
                        ..
                    } => (flags, name),
                    SymbolInfo::Data { flags, name, .. } => (flags, name),
                    _ => continue,
                };
                let private = SymbolFlags::UNDEFINED
                    | SymbolFlags::BINDING_LOCAL
                    | SymbolFlags::VISIBILITY_HIDDEN;
                if !flags.intersects(private) {
                    names.push(name.to_string());
                }
            }
        }
    }
    if names.is_empty() {
        bail!("the object defines no public symbol (or has no linking section)");
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module with the `target_features` section `features` and one
    /// function whose body is `code`.
    fn module(features: &[(u8, &str)], code: &[wasm_encoder::Instruction<'_>]) -> Vec<u8> {
        use wasm_encoder::*;
        let mut data = vec![features.len() as u8];
        for (prefix, name) in features {
            data.push(*prefix);
            data.push(name.len() as u8);
            data.extend_from_slice(name.as_bytes());
        }
        let mut types = TypeSection::new();
        types.ty().function([], []);
        types.ty().function([ValType::I32], []);
        let mut tags = TagSection::new();
        tags.tag(TagType {
            kind: TagKind::Exception,
            func_type_idx: 1,
        });
        let mut funcs = FunctionSection::new();
        funcs.function(0);
        let mut body = Function::new([]);
        for i in code {
            body.instruction(i);
        }
        body.instruction(&Instruction::End);
        let mut bodies = CodeSection::new();
        bodies.function(&body);
        let mut module = Module::new();
        module
            .section(&types)
            .section(&funcs)
            .section(&tags)
            .section(&bodies)
            .section(&CustomSection {
                name: "target_features".into(),
                data: data.into(),
            });
        module.finish()
    }

    #[test]
    fn a_failed_or_missing_wasm_opt_is_named_and_leaves_no_output() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("m.so");
        std::fs::write(&lib, b"\0asm").unwrap();
        let err = translate(Path::new("/bin/false"), &lib)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("m.so: wasm-opt could not translate its C++ exception code"),
            "{err}"
        );
        assert!(!lib.with_extension("exnref.tmp").exists());
        let err = translate(&dir.path().join("no-wasm-opt"), &lib)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no-wasm-opt (binaryen's wasm-opt; ERYX_WASM_OPT overrides it)"),
            "{err}"
        );
    }

    #[test]
    fn a_module_without_a_symbol_table_has_no_public_symbols_to_export() {
        let linked = module(&[], &[]);
        let err = public_symbols(&linked).unwrap_err().to_string();
        assert!(err.contains("no public symbol"), "{err}");
    }

    #[test]
    fn legacy_exception_code_is_recognised_and_standard_code_is_not() {
        use wasm_encoder::{BlockType, Instruction as I};
        let eh = [(b'+', "bulk-memory"), (b'+', "exception-handling")];
        let legacy = [
            I::Try(BlockType::Empty),
            I::Nop,
            I::CatchAll,
            I::Rethrow(0),
            I::End,
        ];
        assert!(uses_exceptions(&module(&eh, &legacy)).unwrap());
        let legacy_catch = [I::Try(BlockType::Empty), I::Catch(0), I::Drop, I::End];
        assert!(uses_exceptions(&module(&eh, &legacy_catch)).unwrap());
        // Compiled with the feature but calling no setjmp and catching
        // nothing; or already translated (`throw` is in both forms).
        assert!(!uses_exceptions(&module(&eh, &[I::Nop])).unwrap());
        assert!(!uses_exceptions(&module(&eh, &[I::I32Const(1), I::Throw(0)])).unwrap());
        // Without the feature nothing is read.
        assert!(!uses_exceptions(&module(&[(b'+', "bulk-memory")], &legacy)).unwrap());
        assert!(!uses_exceptions(&module(&[(b'-', "exception-handling")], &legacy)).unwrap());
        assert!(!uses_exceptions(&wasm_encoder::Module::new().finish()).unwrap());
    }
}
