//! `cargo xtask ext build PATH`: a Rust extension crate → a late-linkable
//! `<module>.cpython-314-wasm32-wasi.so`.
//!
//! Any crate that defines one `PyInit_<module>` works, unchanged: one
//! written against `eryx-cpython-sys`, or a PyO3 crate with a `#[pymodule]`
//! (usually a `cdylib`; PyO3 is configured for the guest's CPython from its
//! sysconfigdata, see `pyo3.rs`), in this workspace or anywhere else. It is
//! built like the runtime (build-std, PIC staticlib whatever its declared
//! crate type, `clang -shared`), exporting only the init function; the
//! module name comes from that function. The built file's path is the last
//! line of stdout.
//!
//! C sources (a `.c` file or a directory of them) are built too, see
//! `cext.rs`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::dist::{GuestCrate, Tuning, build_staticlib, link_shared};
use crate::{initfn, progress, toolchain};

/// The package name and the library target name of a crate manifest.
fn crate_names(manifest: &str) -> Result<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Named {
        name: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Manifest {
        package: Option<Named>,
        lib: Option<Named>,
    }
    let m: Manifest = toml::from_str(manifest).context("the manifest is not valid TOML")?;
    let package = m
        .package
        .and_then(|p| p.name)
        .context("the manifest has no [package] name")?;
    let lib = m
        .lib
        .and_then(|l| l.name)
        .unwrap_or_else(|| package.replace('-', "_"));
    Ok((package, lib))
}

/// Builds the extension crate at `path` into `target/ext`; returns the
/// `.so` path.
pub(crate) fn build(root: &Path, path: &Path) -> Result<PathBuf> {
    build_module(root, path, None, &[], &[], &root.join("target/ext"))
}

/// The init functions the module may be built around: the one of the
/// module `wanted` (its last dotted component) or, unless asked for
/// another, of the crate's library `lib`, as maturin names the module, if
/// the crate has it; otherwise every one `found`. A crate whose
/// `#[pymodule]` adds submodules that are `#[pymodule]`s of their own
/// (cramjam's `xz`, `zstd`, ...) has a `PyInit_` for each.
fn init_candidates(found: Vec<String>, wanted: Option<&str>, lib: &str) -> Vec<String> {
    let name = wanted.map_or(lib, |w| w.rsplit('.').next().unwrap_or(w));
    let init = format!("PyInit_{name}");
    if found.contains(&init) {
        vec![init]
    } else {
        found
    }
}

/// Like `build`, choosing the module `wanted` (its last dotted component)
/// when the crate defines several init functions (PyO3 submodules each get
/// one; a maturin package names the real module in `module-name`), and
/// writing the `.so` into `out_dir` (the wheel builder gives each package
/// its own: two packages' modules may share a file name, e.g. `_native`),
/// with cargo's `feature_args` (setuptools-rust passes a package's
/// `features`).
pub(crate) fn build_module(
    root: &Path,
    path: &Path,
    wanted: Option<&str>,
    feature_args: &[String],
    extra_env: &[(String, String)],
    out_dir: &Path,
) -> Result<PathBuf> {
    let dir = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let dir = if dir.join("Cargo.toml").is_file() {
        dir
    } else {
        root.join(path)
    };
    let manifest_path = dir.join("Cargo.toml");
    if !manifest_path.is_file() {
        let c = if path.is_absolute() || path.exists() {
            path.to_path_buf()
        } else {
            root.join(path)
        };
        if c.is_file() || c.is_dir() {
            let tools = toolchain::locate()?;
            return crate::cext::build(root, &tools, &c, out_dir);
        }
    }
    let manifest = std::fs::read_to_string(&manifest_path).with_context(|| {
        format!(
            "{} is not a crate (no Cargo.toml); pass the extension crate's directory",
            dir.display()
        )
    })?;
    let (package, lib) = crate_names(&manifest)?;
    let tools = toolchain::locate()?;
    // C that dependencies compile with the `cc` crate (orjson's, zstd's...)
    // needs the guest's C compiler and sysroot.
    // (The lock file of the workspace the crate is in: cryptography's is two
    // directories up.)
    let uses_cc = dir
        .ancestors()
        .take(4)
        .filter_map(|d| std::fs::read_to_string(d.join("Cargo.lock")).ok())
        .any(|lock| lock.contains("name = \"cc\"\n"));
    // And its C++ (tokenizers' esaxx-rs): clang++ with the guest's libc++
    // headers, without exceptions as the bundle's libc++ is built.
    let c_compiler = if uses_cc {
        let sysroot = crate::sysroot::sysroot(root)?;
        let shim = crate::sysroot::c_shim(root)?;
        Some(crate::dist::GuestCc {
            cc: tools.clang.clone(),
            cflags: crate::wasmcc::compile_flags(&sysroot.dir, None, Some(&shim)),
            cxx: crate::wasmcc::clangxx(&tools.clang),
            cxxflags: crate::wasmcc::compile_flags(
                &sysroot.dir,
                sysroot.cxx_include.as_deref(),
                Some(&shim),
            ),
        })
    } else {
        None
    };
    // A build script that compiles C against Python's headers (cryptography's
    // cffi bindings) asks the host's Python for its include directory unless
    // PyO3's cross-compiling variable names the target's library directory:
    // give it a layout whose `include/python3.14` is the guest's headers.
    let mut env = extra_env.to_vec();
    if uses_cc {
        env.push((
            "PYO3_CROSS_LIB_DIR".into(),
            cross_python_layout(root)?.display().to_string(),
        ));
    }
    let krate = GuestCrate {
        manifest: &manifest_path,
        package: &package,
        lib: &lib,
        c_compiler,
        feature_args,
        env: &env,
    };
    let staticlib = build_staticlib(root, &tools, &krate, Tuning::Speed)?;
    let archive = std::fs::read(&staticlib)
        .with_context(|| format!("the build did not produce {}", staticlib.display()))?;
    let found = initfn::init_symbols(&archive);
    let candidates = init_candidates(found, wanted, &lib);
    let init = initfn::the_one(
        &candidates,
        &package,
        "add a PyO3 `#[pymodule]`, or \
         `#[unsafe(no_mangle)] pub unsafe extern \"C\" fn PyInit_<module>()`",
    )?;
    let module = init.trim_start_matches("PyInit_");
    let file = initfn::module_file(module, false);
    std::fs::create_dir_all(out_dir)?;
    let out = out_dir.join(&file);
    link_shared(&tools, &staticlib, &[init.as_str()], &out, Tuning::Speed)?;
    let bytes = std::fs::read(&out)?;
    let info = eryx_linker::validate_library(&file, &bytes)?;
    if !info.exports.contains(&init) {
        bail!("{} does not export `{init}`", out.display());
    }
    // What the module imports must be in the bundle it will be linked
    // with, or the sandbox refuses it at its first use: say so now.
    let lib_dir = root.join("target/dist/lib");
    if lib_dir.is_dir() {
        check_imports(&out, &bytes, &lib_dir)?;
    }
    progress!("built {} ({} bytes)", out.display(), bytes.len());
    Ok(out)
}

/// Fails naming the symbols the library `out` (its `bytes`) imports that
/// neither the bundle's libraries in `lib_dir` nor the library itself
/// provide.
fn check_imports(out: &Path, bytes: &[u8], lib_dir: &Path) -> Result<()> {
    let (imports, own) = crate::wasmcc::symbols(bytes)?;
    let mut provided: std::collections::HashSet<String> = crate::wasmcc::bundle_exports(lib_dir)?
        .into_iter()
        .collect();
    provided.extend(own);
    let missing = crate::wasmcc::missing_imports(imports, &provided);
    if !missing.is_empty() {
        bail!(
            "{} imports {} that nothing in the eryx bundle provides: {} (a C \
             dependency compiled for another wasm target, or a library that is not \
             linked; define them in the crate or link what defines them)",
            out.display(),
            if missing.len() == 1 {
                "a symbol"
            } else {
                "symbols"
            },
            missing.join(", ")
        );
    }
    Ok(())
}

/// The example extensions that `cargo xtask test` builds.
pub(crate) const EXAMPLES: &[&str] = &[
    "examples/extensions/fastsum",
    "examples/extensions/wordcount",
    "examples/extensions/numstats",
    "examples/extensions/cvec",
    "examples/extensions/checksum",
    "examples/extensions/ctors",
    "examples/extensions/sigmask",
];

/// `target/wasm/pyo3-cross/lib/python3.14`, beside an
/// `include/python3.14` that links to the guest's CPython headers, as
/// `PYO3_CROSS_LIB_DIR` describes a target's installation (PyO3 itself
/// reads the config file `crate::pyo3` writes, which takes precedence).
fn cross_python_layout(root: &Path) -> Result<PathBuf> {
    let base = root.join("target/wasm/pyo3-cross");
    let lib = base.join("lib/python3.14");
    std::fs::create_dir_all(&lib)?;
    std::fs::create_dir_all(base.join("include"))?;
    let include = base.join("include/python3.14");
    let headers = crate::cext::include_dir(root)?;
    if std::fs::read_link(&include).ok().as_deref() != Some(headers.as_path()) {
        let _ = std::fs::remove_file(&include);
        std::os::unix::fs::symlink(&headers, &include).with_context(|| {
            format!("cannot link {} to {}", include.display(), headers.display())
        })?;
    }
    Ok(lib)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// A module importing the functions `names` from `env`.
    fn importing(names: &[&str]) -> Vec<u8> {
        use wasm_encoder::{EntityType, FuncType, ImportSection, Module, TypeSection};
        let mut types = TypeSection::new();
        types.ty().func_type(&FuncType::new([], []));
        let mut imports = ImportSection::new();
        for n in names {
            imports.import("env", n, EntityType::Function(0));
        }
        let mut m = Module::new();
        m.section(&types).section(&imports);
        m.finish()
    }

    #[test]
    fn a_module_importing_what_the_bundle_lacks_is_refused_by_name() {
        let bundle = tempfile::tempdir().unwrap();
        // The bundle's one library exports `malloc`.
        let mut lib = wasm_encoder::Module::new();
        let mut exports = wasm_encoder::ExportSection::new();
        let mut types = wasm_encoder::TypeSection::new();
        types.ty().func_type(&wasm_encoder::FuncType::new([], []));
        let mut funcs = wasm_encoder::FunctionSection::new();
        funcs.function(0);
        exports.export("malloc", wasm_encoder::ExportKind::Func, 0);
        let mut code = wasm_encoder::CodeSection::new();
        let mut f = wasm_encoder::Function::new([]);
        f.instructions().end();
        code.function(&f);
        lib.section(&types)
            .section(&funcs)
            .section(&exports)
            .section(&code);
        std::fs::write(bundle.path().join("libc.so"), lib.finish()).unwrap();
        let out = Path::new("/x/m.cpython-314-wasm32-wasi.so");
        check_imports(out, &importing(&["malloc"]), bundle.path()).unwrap();
        let err = check_imports(
            out,
            &importing(&[
                "malloc",
                "rust_lz4_wasm_shim_free",
                "rust_lz4_wasm_shim_malloc",
            ]),
            bundle.path(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(
                "/x/m.cpython-314-wasm32-wasi.so imports symbols that nothing in the eryx \
                 bundle provides: rust_lz4_wasm_shim_free, rust_lz4_wasm_shim_malloc ("
            ),
            "{err}"
        );
    }

    #[test]
    fn the_module_is_the_one_asked_for_then_the_crates_library() {
        let found = names(&["PyInit_xz", "PyInit_cramjam", "PyInit_zstd"]);
        // The library's own, among its submodules'.
        assert_eq!(
            init_candidates(found.clone(), None, "cramjam"),
            names(&["PyInit_cramjam"])
        );
        // A module named by the build (maturin's module-name), dotted.
        assert_eq!(
            init_candidates(found.clone(), Some("cramjam.xz"), "cramjam"),
            names(&["PyInit_xz"])
        );
        // Neither defined: every one found, for the caller to choose from
        // or to name in its error.
        assert_eq!(init_candidates(found.clone(), None, "other"), found);
        assert_eq!(
            init_candidates(names(&["PyInit__rust"]), None, "pkg_core"),
            names(&["PyInit__rust"])
        );
    }
}
