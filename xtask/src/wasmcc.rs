//! The cross compiler that package builds call: `xtask wasm-cc ARGS` and
//! `xtask wasm-c++ ARGS` (set as `CC`/`CXX`/`LDSHARED` and in meson's cross
//! file by `cargo xtask wheel`).
//!
//! Build backends run on the host's Python, so the command lines they make
//! describe the host: its CPython include directory, `-lpython3.x`, x86
//! tuning flags, ELF linker options. The wrapper rewrites them for the
//! guest: host-only arguments are dropped, CPython 3.14's headers and the
//! WASI sysroot come in, and a link becomes a wasm shared library whose
//! CPython and libc symbols stay imports (resolved against the bundle's
//! libraries when eryx links a component). Its settings come from the JSON
//! file named by `ERYX_CC_CONFIG` (written by `cargo xtask wheel`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::sysroot::C_TARGET;

/// What the wrapper needs to know, as written by `cargo xtask wheel`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CcConfig {
    pub(crate) clang: PathBuf,
    pub(crate) clangxx: PathBuf,
    pub(crate) sysroot: PathBuf,
    pub(crate) cxx_include: Option<PathBuf>,
    pub(crate) builtins: Option<PathBuf>,
    /// CPython 3.14's headers with the guest's `pyconfig.h`.
    pub(crate) python_include: PathBuf,
    /// The bundle's `lib/` (for `-lc++`).
    pub(crate) lib_dir: PathBuf,
    /// A file listing every symbol the bundle's libraries export, one per
    /// line: what a linked library may import.
    pub(crate) base_exports: PathBuf,
}

/// The environment variable naming the config file.
pub(crate) const CONFIG_ENV: &str = "ERYX_CC_CONFIG";

/// Whether the command line links (rather than compiles, preprocesses or
/// asks a question).
fn links(args: &[String]) -> bool {
    let query = args.iter().any(|a| {
        matches!(
            a.as_str(),
            "--version" | "-v" | "-dumpversion" | "-dumpmachine"
        ) || a.starts_with("-print-")
            || a.starts_with("--print")
    });
    let compile_only = args.iter().any(|a| {
        matches!(
            a.as_str(),
            "-c" | "-E" | "-S" | "-M" | "-MM" | "-fsyntax-only"
        )
    });
    !(query || compile_only)
}

/// Libraries that the bundle's `libc.so` already provides.
const LIBC_PARTS: &[&str] = &["-lm", "-lc", "-lpthread", "-ldl", "-lrt", "-lutil"];

/// The C++ runtime under its host names: a link that names one is a C++
/// link (the bundle's libc++ and libc++abi are added instead).
const CXX_RUNTIME: &[&str] = &[
    "-lstdc++", "-lc++", "-lc++abi", "-lsupc++", "-lgcc", "-lgcc_s",
];

/// Whether an argument only makes sense for the host (dropped).
fn host_only(arg: &str, ours: &Path) -> bool {
    let host_python_dir = |p: &str| {
        (p.contains("/include/python3") || p.contains("/Include"))
            && !Path::new(p).starts_with(ours)
    };
    if let Some(dir) = arg
        .strip_prefix("-I")
        .or_else(|| arg.strip_prefix("-isystem"))
        && host_python_dir(dir)
    {
        return true;
    }
    if arg.starts_with("-lpython") || LIBC_PARTS.contains(&arg) || CXX_RUNTIME.contains(&arg) {
        return true;
    }
    const PREFIXES: &[&str] = &[
        "-march=",
        "-mtune=",
        "-mcpu=",
        "-msse",
        "-mavx",
        "-mfma",
        "-mf16c",
        "-fcf-protection",
        "-fstack-clash-protection",
        "-fstack-protector",
        "-Wl,-z,",
        "-Wl,-rpath",
        "-Wl,-soname",
        "-Wl,--version-script",
        "-Wl,--exclude-libs",
        "-Wl,-Bsymbolic",
        "-Wl,--hash-style",
        "-g",
    ];
    const EXACT: &[&str] = &[
        "-pthread",
        "-shared",
        "-static-libgcc",
        "-static-libstdc++",
        "-Wl,--as-needed",
        "-Wl,--no-as-needed",
        // lld resolves archives in any order; wasm-ld does not know groups.
        "-Wl,--start-group",
        "-Wl,--end-group",
        "-Wl,--no-undefined",
        "-Wl,--allow-shlib-undefined",
        "-Wl,-O1",
        "-fopenmp",
    ];
    EXACT.contains(&arg) || PREFIXES.iter().any(|p| arg.starts_with(p))
}

/// What every compile for the guest needs: the target the bundle's
/// libpython and libc were built for, the sysroot, position-independent
/// code, the WASI emulation switches libpython was built with and, for C++,
/// libc++'s headers (`cxx_include`).
pub(crate) fn compile_flags(sysroot: &Path, cxx_include: Option<&Path>) -> Vec<String> {
    let mut flags: Vec<String> = vec![
        format!("--target={C_TARGET}"),
        format!("--sysroot={}", sysroot.display()),
        "-fPIC".into(),
        "-D_WASI_EMULATED_SIGNAL".into(),
        "-D_WASI_EMULATED_PROCESS_CLOCKS".into(),
        "-D_WASI_EMULATED_GETPID".into(),
        "-D_WASI_EMULATED_MMAN".into(),
    ];
    if let Some(inc) = cxx_include {
        flags.extend(["-nostdinc++".into(), "-isystem".into()]);
        flags.push(inc.display().to_string());
    }
    flags
}

/// The rewritten command line (without the compiler itself).
pub(crate) fn rewrite(cfg: &CcConfig, cxx: bool, args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut iter = args.iter().peekable();
    while let Some(a) = iter.next() {
        // `-I DIR` / `-isystem DIR` as two arguments.
        if (a == "-I" || a == "-isystem")
            && let Some(next) = iter.peek()
            && host_only(&format!("{a}{next}"), &cfg.python_include)
        {
            iter.next();
            continue;
        }
        if !host_only(a, &cfg.python_include) {
            out.push(a.clone());
        }
    }
    // A link may compile sources too (meson's checks do): both kinds of
    // flags always go in. clang links wasm32-wasip2 with wasm-ld when told
    // `-fuse-ld=lld` (instead of wasm-component-ld).
    let mut flags = compile_flags(
        &cfg.sysroot,
        cxx.then_some(()).and(cfg.cxx_include.as_deref()),
    );
    let linking = links(args);
    if linking {
        flags.extend(
            [
                "-nostdlib",
                "-shared",
                "-fuse-ld=lld",
                "-Wl,--allow-undefined",
                "-Wl,--no-entry",
                "-Wl,--strip-debug",
                // A configure check's `main` (renamed by clang for wasm)
                // must survive dead-code removal, or a call to a function
                // that does not exist would link and the check would pass.
                "-Wl,--export-if-defined=main",
                "-Wl,--export-if-defined=__main_void",
                "-Wl,--export-if-defined=__main_argc_argv",
            ]
            .map(String::from),
        );
    }
    flags.append(&mut out);
    flags.push(format!("-I{}", cfg.python_include.display()));
    if cxx {
        flags.push("-fno-exceptions".into());
    }
    if linking {
        let cxx = cxx
            || args
                .iter()
                .any(|a| matches!(a.as_str(), "-lstdc++" | "-lc++" | "-lsupc++"));
        if cxx {
            flags.push(format!("-L{}", cfg.lib_dir.display()));
            flags.extend(["-lc++".into(), "-lc++abi".into()]);
        }
        if let Some(b) = &cfg.builtins {
            flags.push(b.display().to_string());
        }
    }
    flags
}

/// What to add to a failed compiler's output.
fn hint(stderr: &str) -> Option<&'static str> {
    if stderr.contains("with exceptions disabled") {
        return Some(
            "this source uses C++ exceptions: the guest's libc++ is built without exception \
             support (no wasm exception handling in the bundle), so it must be patched \
             (a recipe patch in xtask/recipes/, see ARCHITECTURE.md)",
        );
    }
    if stderr.contains("fatal error:") && stderr.contains("file not found") {
        return Some(
            "a header is missing from the WASI sysroot: the package needs a system library \
             that has no WASI build here",
        );
    }
    None
}

/// `xtask wasm-cc|wasm-c++ ARGS`.
pub(crate) fn main(cxx: bool, args: &[String]) -> Result<ExitCode> {
    let path = std::env::var_os(CONFIG_ENV).with_context(|| {
        format!("{CONFIG_ENV} is not set: this compiler is run by `cargo xtask wheel`")
    })?;
    let cfg: CcConfig = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("cannot read {path:?}"))?,
    )?;
    let compiler = if cxx { &cfg.clangxx } else { &cfg.clang };
    let argv = rewrite(&cfg, cxx, args);
    if std::env::var_os("ERYX_CC_LOG").is_some() {
        eprintln!("[eryx-cc] {} {}", compiler.display(), argv.join(" "));
    }
    let out = Command::new(compiler)
        .args(&argv)
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot run {}", compiler.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stderr.lines() {
        if !line.contains("creating shared libraries, with -shared, is not yet stable") {
            eprintln!("{line}");
        }
    }
    if !out.status.success() {
        if let Some(h) = hint(&stderr) {
            eprintln!("[eryx] {h}");
        }
        return Ok(crate::exit_code(out.status));
    }
    if links(args)
        && let Some(output) = output_file(args)
    {
        let missing = unresolved(&cfg, args, &output)?;
        if !missing.is_empty() {
            let _ = std::fs::remove_file(&output);
            eprintln!(
                "[eryx] {}: undefined symbol(s) that neither the bundle's libraries (libc, \
                 libpython3.14, libc++) nor the libraries it links provide: {}",
                output.display(),
                missing.join(", ")
            );
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The `-o` argument.
fn output_file(args: &[String]) -> Option<PathBuf> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "-o" {
            return it.next().map(PathBuf::from);
        }
        if let Some(p) = a.strip_prefix("-o")
            && !p.is_empty()
        {
            return Some(PathBuf::from(p));
        }
    }
    None
}

/// The symbols a wasm library imports (functions from `env`, and data and
/// function addresses through `GOT.mem`/`GOT.func`), and those it exports.
pub(crate) fn symbols(bytes: &[u8]) -> Result<(Vec<String>, Vec<String>)> {
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload? {
            wasmparser::Payload::ImportSection(reader) => {
                for imp in reader.into_imports() {
                    let imp = imp?;
                    let func = matches!(imp.ty, wasmparser::TypeRef::Func(_));
                    if (imp.module == "env" && func) || imp.module.starts_with("GOT.") {
                        imports.push(imp.name.to_string());
                    }
                }
            }
            wasmparser::Payload::ExportSection(reader) => {
                for e in reader {
                    exports.push(e?.name.to_string());
                }
            }
            wasmparser::Payload::CodeSectionStart { .. } => break,
            _ => {}
        }
    }
    Ok((imports, exports))
}

/// Imports of `output` that nothing it can be linked with provides.
fn unresolved(cfg: &CcConfig, args: &[String], output: &Path) -> Result<Vec<String>> {
    let Ok(bytes) = std::fs::read(output) else {
        return Ok(Vec::new());
    };
    if !bytes.starts_with(b"\0asm") {
        return Ok(Vec::new());
    }
    let (imports, own) = symbols(&bytes)?;
    let mut provided: std::collections::HashSet<String> =
        std::fs::read_to_string(&cfg.base_exports)
            .with_context(|| format!("cannot read {}", cfg.base_exports.display()))?
            .lines()
            .map(str::to_string)
            .collect();
    provided.extend(own);
    // Shared libraries on the command line, given by path or found with -L/-l.
    let dirs: Vec<PathBuf> = args
        .iter()
        .filter_map(|a| a.strip_prefix("-L"))
        .map(PathBuf::from)
        .collect();
    let mut libs: Vec<PathBuf> = args
        .iter()
        .filter(|a| a.ends_with(".so") && Path::new(a.as_str()) != output)
        .map(PathBuf::from)
        .collect();
    for name in args.iter().filter_map(|a| a.strip_prefix("-l")) {
        libs.extend(dirs.iter().map(|d| d.join(format!("lib{name}.so"))));
    }
    for lib in libs {
        if let Ok(b) = std::fs::read(&lib)
            && b.starts_with(b"\0asm")
        {
            provided.extend(symbols(&b)?.1);
        }
    }
    // Stubbed by wit-component's Linker when nothing defines them.
    const STUBBED: &[&str] = &["__main_argc_argv", "__cxa_thread_atexit_impl"];
    let mut missing: Vec<String> = imports
        .into_iter()
        .filter(|s| !provided.contains(s) && !STUBBED.contains(&s.as_str()))
        .collect();
    missing.sort();
    missing.dedup();
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> CcConfig {
        CcConfig {
            clang: "clang-19".into(),
            clangxx: "clang++-19".into(),
            sysroot: "/s/usr".into(),
            cxx_include: Some("/s/usr/include/wasm32-wasi/c++/v1".into()),
            builtins: Some("/s/rt.a".into()),
            python_include: "/eryx/cpython-3.14-include".into(),
            lib_dir: "/eryx/dist/lib".into(),
            base_exports: "/eryx/exports.txt".into(),
        }
    }

    fn s(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn compile_lines_lose_the_host_python_and_gain_the_guest() {
        let out = rewrite(
            &cfg(),
            false,
            &s(&[
                "-pthread",
                "-O3",
                "-g",
                "-fPIC",
                "-I/usr/include/python3.11",
                "-I",
                "/root/.pyenv/versions/3.11.7/include/python3.11",
                "-Isrc",
                "-march=x86-64",
                "-c",
                "a.c",
                "-o",
                "a.o",
            ]),
        );
        assert!(
            out.contains(&"--target=wasm32-wasip2".to_string()),
            "{out:?}"
        );
        assert!(out.contains(&"-I/eryx/cpython-3.14-include".to_string()));
        assert!(out.contains(&"-Isrc".to_string()));
        for gone in [
            "-pthread",
            "-g",
            "-march=x86-64",
            "-I/usr/include/python3.11",
        ] {
            assert!(!out.contains(&gone.to_string()), "{gone} kept: {out:?}");
        }
        assert!(!out.iter().any(|a| a.contains("pyenv")), "{out:?}");
        assert!(!out.contains(&"-fno-exceptions".to_string()));
    }

    #[test]
    fn cxx_compiles_use_libcxx_without_exceptions() {
        let out = rewrite(&cfg(), true, &s(&["-fexceptions", "-c", "a.cpp"]));
        let pos = |a: &str| out.iter().position(|x| x == a).unwrap();
        assert!(pos("-fno-exceptions") > pos("-fexceptions"), "{out:?}");
        assert!(out.contains(&"/s/usr/include/wasm32-wasi/c++/v1".to_string()));
    }

    #[test]
    fn links_make_a_wasm_shared_library() {
        let out = rewrite(
            &cfg(),
            true,
            &s(&[
                "-shared",
                "a.o",
                "-L/root/.pyenv/versions/3.11.7/lib",
                "-lpython3.11",
                "-lm",
                "-Wl,-z,relro",
                "-o",
                "m.so",
            ]),
        );
        assert_eq!(out[0], "--target=wasm32-wasip2");
        assert!(out.contains(&"-fuse-ld=lld".to_string()));
        assert!(out.contains(&"-Wl,--allow-undefined".to_string()));
        assert!(out.contains(&"-lc++".to_string()));
        assert_eq!(out.last().unwrap(), "/s/rt.a");
        for gone in ["-lpython3.11", "-lm", "-Wl,-z,relro"] {
            assert!(!out.contains(&gone.to_string()), "{gone} kept: {out:?}");
        }
        // A C-driver link that names libstdc++ is a C++ link.
        let out = rewrite(
            &cfg(),
            false,
            &s(&["-shared", "a.o", "-lstdc++", "-o", "m.so"]),
        );
        assert!(!out.contains(&"-lstdc++".to_string()), "{out:?}");
        assert!(out.contains(&"-lc++".to_string()), "{out:?}");
        assert_eq!(out.iter().filter(|a| *a == "-shared").count(), 1);
    }

    #[test]
    fn questions_are_not_links() {
        assert!(!links(&s(&["--version"])));
        assert!(!links(&s(&["-E", "-dM", "-"])));
        assert!(links(&s(&["a.o", "-o", "a.so"])));
    }
}
