//! Building a source distribution into a guest wheel, by build backend:
//!
//! - setuptools (a `setup.py`, or `setuptools.build_meta`): the package's
//!   own backend runs on the host's Python (`pip wheel`, build isolation,
//!   its declared build dependencies such as Cython), with `CC`/`CXX`/
//!   `LDSHARED` set to our cross compiler and `SETUPTOOLS_EXT_SUFFIX` to the
//!   guest's; Cython runs on the host and its C is compiled for the guest;
//!   setuptools-rust's Rust extensions are built for the guest through the
//!   `CARGO` it calls (`cargoshim.rs`);
//! - meson-python (`mesonpy`, e.g. numpy): the same, with a meson cross file
//!   for wasm32-wasi (`longdouble_format = 'IEEE_QUAD_LE'`: wasm32's `long
//!   double` is IEEE binary128);
//! - maturin (PyO3): the crate named by `[tool.maturin]` is built with
//!   `cargo xtask ext build`, and the wheel assembled from its
//!   `python-source` and the sdist's `PKG-INFO`;
//! - pure-Python backends (hatchling, flit, poetry, pdm, ...): `pip wheel`.
//!
//! A package may have a recipe in `xtask/recipes/<name>/`: `*.patch` files
//! applied with `patch -p1` (each says why in its first line) and a
//! `recipe.toml` with extra `meson-args`. Every built wheel gets `.pyc`
//! files compiled by the guest's CPython.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use pep508_rs::pep440_rs::{Version, VersionSpecifiers};

use super::whl;
use crate::wasmcc::{CONFIG_ENV, CcConfig};
use crate::{process, progress};

/// Bumped when a change to the build logic must rebuild cached wheels.
/// 15: a `METH_NOARGS`/`METH_O` method defined with a third parameter is
/// called through an adapter (fpcast.rs; astropy's `_wcs._sanity_check`
/// trapped);
/// 14: `<fenv.h>` names the exception flags (the runtime keeps them in
/// software: eryx-runtime/src/fenv.rs), so numpy's own raises are seen;
/// 13: C++ that Cython's exception glue hid is built with exceptions, also
/// when the build went on without it (a package whose native part is
/// optional, as RapidFuzz's, had come out pure Python and stayed cached);
/// 12: Rust extensions get thin LTO over 16 codegen units, every symbol
/// hidden but the exports (dist.rs; 11 was thin LTO without hiding, whose
/// extensions exported std's symbols);
/// 10: `-fno-lto` on every compile, extensions export their static
/// constructors (wasmcc.rs), meson's cross file names pkg-config (9 was a
/// development build); 8: every compile can call `setjmp` (sjlj.rs); 7:
/// C++ sources get callback adapters too (fpcast.rs); 6 was a development
/// build that compiled all C++ with exceptions.
const BUILD_REVISION: u32 = 15;

/// Backends whose wheels are pure Python (any compiler use is a mistake).
const PURE_BACKENDS: &[&str] = &[
    "hatchling.build",
    "flit_core.buildapi",
    "flit.buildapi",
    "poetry.core.masonry.api",
    "poetry.masonry.api",
    "pdm.backend",
    "pdm.pep517.api",
    "uv_build",
    "whey",
];

/// A C, C++, Cython or Rust source file of the package itself (not of its
/// tests, documentation or examples) under `dir`, if there is one: the
/// shallowest, so the package's own rather than a vendored library's.
fn native_source(dir: &Path) -> Option<PathBuf> {
    const SKIPPED: &[&str] = &["doc", "docs", "example", "examples", "bench", "benchmarks"];
    const NATIVE: &[&str] = &["c", "cc", "cpp", "cxx", "pyx", "rs"];
    let mut queue = std::collections::VecDeque::from([(dir.to_path_buf(), 0)]);
    while let Some((d, depth)) = queue.pop_front() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let file_name = entry.file_name();
            let file_name = file_name.to_string_lossy();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let skipped = file_name.starts_with('.')
                    || file_name.contains("test")
                    || SKIPPED.contains(&&*file_name);
                if depth < 6 && !skipped {
                    queue.push_back((path, depth + 1));
                }
            } else if path
                .extension()
                .is_some_and(|e| NATIVE.contains(&&*e.to_string_lossy()))
            {
                return Some(path);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_maturin_projects_build_requirements_leave_out_maturin() {
        let pyproject: toml::Value = toml::from_str(
            "[build-system]\nrequires = [\"maturin>=1.14.1,<2\", \
             \"cffi>=2.0.0; platform_python_implementation != 'PyPy'\", \"setuptools\", \
             \"puccinialin\"]\n",
        )
        .expect("valid TOML");
        assert_eq!(
            build_requirements(Some(&pyproject)),
            [
                "cffi>=2.0.0; platform_python_implementation != 'PyPy'",
                "setuptools"
            ]
        );
        assert!(build_requirements(None).is_empty());
    }

    #[test]
    fn the_first_compile_error_is_clangs_first() {
        let log = "  -- Detecting C compiler ABI info - failed\n\
                   error: subprocess-exited-with-error\n\
                   FAILED: [code=1] a.o\n\
                   \x20 /src/os.hpp:246:8: error: no member named 'this_thread' in namespace 'std'\n\
                   \x20 /src/b.hpp:1:2: error: later\n";
        assert_eq!(
            first_compile_error(log),
            Some("/src/os.hpp:246:8: error: no member named 'this_thread' in namespace 'std'")
        );
        assert_eq!(first_compile_error("all fine\n"), None);
    }

    #[test]
    fn a_failed_builds_summary_names_meson_and_cmake_errors() {
        let mut log = String::from("  Run-time dependency python found: YES 3.11\n\n");
        log.push_str(
            "  ../meson.build:29:2: ERROR: Problem encountered: Minimum supported Python \
             version is 3.12, found 3.11\n",
        );
        log.push_str("  CMake Error at CMakeLists.txt:12 (find_package):\n\n");
        log.push_str("    Could not find a package configuration file provided by \"Arrow\"\n");
        log.push_str(&"  noise\n".repeat(40));
        let summary = failure_summary(&log);
        assert!(
            summary.contains("Minimum supported Python version is 3.12"),
            "{summary}"
        );
        assert!(
            summary.contains("CMake Error at CMakeLists.txt:12"),
            "{summary}"
        );
        assert!(summary.contains("provided by \"Arrow\""), "{summary}");
    }

    #[test]
    fn native_sources_are_the_packages_own_not_its_tests() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("tests/data")).unwrap();
        std::fs::write(root.join("tests/data/fixture.c"), "").unwrap();
        std::fs::create_dir_all(root.join("src/pkg")).unwrap();
        std::fs::write(root.join("src/pkg/__init__.py"), "").unwrap();
        assert_eq!(native_source(root), None);
        std::fs::write(root.join("src/pkg/_speedups.cxx"), "").unwrap();
        assert_eq!(
            native_source(root),
            Some(root.join("src/pkg/_speedups.cxx"))
        );
    }

    #[test]
    fn entry_points_come_from_pyproject() {
        let p: toml::Value = toml::from_str(
            "[project]\nname='x'\n[project.scripts]\nx = 'x.cli:main'\n\
             [project.entry-points.pytest11]\nxplug = '_x_plugin'\n",
        )
        .unwrap();
        let text = entry_points(Some(&p)).unwrap();
        assert!(
            text.contains("[console_scripts]\nx = x.cli:main\n"),
            "{text}"
        );
        assert!(text.contains("[pytest11]\nxplug = _x_plugin\n"), "{text}");
        let none: toml::Value = toml::from_str("[project]\nname='x'\n").unwrap();
        assert!(entry_points(Some(&none)).is_none());
    }

    #[test]
    fn a_requires_python_the_host_misses_is_relaxed_for_the_build_only() {
        let dir = tempfile::tempdir().unwrap();
        let text = "[build-system]\nrequires = ['meson-python']\n\n[project]\nname = 'numpy'\n\
                    requires-python = \">=3.12\"\nversion = '2.5.5'\n";
        std::fs::write(dir.path().join("pyproject.toml"), text).unwrap();
        let read = || read_pyproject(dir.path()).unwrap();
        let host = Version::from_str("3.11.7").unwrap();
        let original = relax_requires_python(dir.path(), read().as_ref(), &host).unwrap();
        assert_eq!(original.as_deref(), Some(">=3.12"));
        assert_eq!(requires_python(read().as_ref()), Some(">=3"));
        assert_eq!(
            read().unwrap()["project"]["version"].as_str(),
            Some("2.5.5")
        );
        // A host inside it: nothing changes.
        let newer = Version::from_str("3.13.1").unwrap();
        std::fs::write(dir.path().join("pyproject.toml"), text).unwrap();
        assert_eq!(
            relax_requires_python(dir.path(), read().as_ref(), &newer).unwrap(),
            None
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("pyproject.toml")).unwrap(),
            text
        );
    }
}

#[derive(Debug, serde::Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct Recipe {
    /// Extra `meson setup` arguments (meson-python builds).
    #[serde(default)]
    meson_args: Vec<String>,
    /// PEP 517 config settings, `KEY=VALUE` (pip's `--config-settings`).
    #[serde(default)]
    config_settings: Vec<String>,
    /// C libraries (`crate::clibs`) built for the guest and offered to the
    /// build through `CFLAGS`/`LDFLAGS` and pkg-config.
    #[serde(default)]
    c_libraries: Vec<String>,
    /// Build the sdist even where the project also publishes a pure wheel
    /// (its native speedups build for the guest); the pure wheel stays the
    /// fallback if the build fails.
    #[serde(default)]
    prefer_sdist: bool,
    /// Environment variables for the build (a package's own switches, such
    /// as argon2-cffi-bindings' `ARGON2_CFFI_USE_SSE2`).
    #[serde(default)]
    env: std::collections::BTreeMap<String, String>,
    /// Extra C/C++ compiler flags (`CFLAGS`/`CXXFLAGS`), e.g. a library's
    /// switch for a build without threads.
    #[serde(default)]
    cflags: Vec<String>,
    /// Compile the package's C++ with exceptions (kiwisolver's solver
    /// reports errors by throwing). Off by default (it was because a set
    /// with such a library got no pre-initialised snapshot, which
    /// `eryx_linker::hide_tag_imports` now makes possible; turning it on
    /// for every package is not measured yet).
    #[serde(default)]
    cxx_exceptions: bool,
}

/// A maturin project's `[build-system] requires` other than maturin itself
/// (and puccinialin, which only fetches a Rust toolchain): what its build
/// scripts import on the host's Python.
fn build_requirements(pyproject: Option<&toml::Value>) -> Vec<String> {
    pyproject
        .and_then(|p| p.get("build-system"))
        .and_then(|b| b.get("requires"))
        .and_then(|r| r.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str())
                .filter(|r| {
                    let name = r
                        .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_' || c == '.'))
                        .next()
                        .unwrap_or("");
                    !matches!(normalized(name).as_str(), "maturin" | "puccinialin")
                })
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Unpacks the sdist `sdist` (`.tar.gz` or `.zip`) into `dest` (emptied
/// first); returns its one top directory (`name-version/`), or `dest` when
/// the archive has none or several.
pub(crate) fn unpack_sdist(sdist: &Path, dest: &Path) -> Result<PathBuf> {
    let _ = std::fs::remove_dir_all(dest);
    std::fs::create_dir_all(dest)?;
    let zip = sdist.extension().is_some_and(|e| e == "zip");
    let unpacked = (|| -> Result<()> {
        if zip {
            zip::ZipArchive::new(std::fs::File::open(sdist)?)?.extract(dest)?;
        } else {
            let gz = flate2::read::GzDecoder::new(std::fs::File::open(sdist)?);
            for entry in tar::Archive::new(gz).entries()? {
                // `unpack_in` refuses paths that leave `dest`.
                if !entry?.unpack_in(dest)? {
                    bail!("an entry tries to leave the archive");
                }
            }
        }
        Ok(())
    })();
    unpacked.with_context(|| {
        format!(
            "{} is not a readable sdist (a .tar.gz or .zip source distribution)",
            sdist.display()
        )
    })?;
    let dirs: Vec<PathBuf> = std::fs::read_dir(dest)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    Ok(match dirs.as_slice() {
        [one] => one.clone(),
        _ => dest.to_path_buf(),
    })
}

/// The recipe of project `name`, if it has one.
fn read_recipe(root: &Path, name: &str) -> Result<Option<Recipe>> {
    let path = root
        .join("xtask/recipes")
        .join(normalized(name))
        .join("recipe.toml");
    if !path.is_file() {
        return Ok(None);
    }
    Ok(Some(
        toml::from_str(&std::fs::read_to_string(&path)?)
            .with_context(|| format!("{} is not a valid recipe", path.display()))?,
    ))
}

/// Whether project `name`'s recipe asks for its sdist over a pure wheel.
pub(crate) fn recipe_prefers_sdist(root: &Path, name: &str) -> Result<bool> {
    Ok(read_recipe(root, name)?.is_some_and(|r| r.prefer_sdist))
}

pub(crate) struct Builder {
    root: PathBuf,
    out: PathBuf,
    work: PathBuf,
    cc_config: PathBuf,
    cross_file: PathBuf,
    /// CMake's toolchain file for scikit-build-core builds.
    cmake_toolchain: PathBuf,
    bundle: PathBuf,
    cli: Option<PathBuf>,
    tools: crate::toolchain::Toolchain,
    /// setuptools' extra configuration file (`DIST_EXTRA_CONFIG`).
    setuptools_config: PathBuf,
    /// autoconf's site file (`CONFIG_SITE`, [`AUTOCONF_SITE`]).
    autoconf_site: PathBuf,
}

/// autoconf's site file for package builds: a build that runs a configure
/// script of its own (PyNaCl runs libsodium's) compiles for the guest with
/// eryx's `CC`, but the script takes the compiler's programs for this
/// machine's and stops at "cannot run C compiled programs" unless told it
/// cross-compiles (as `--host` would, which such builds do not pass).
const AUTOCONF_SITE: &str = "\
# Written by `cargo xtask wheel` (CONFIG_SITE): configure scripts that a
# package's build runs cross-compile for the guest.
cross_compiling=yes
host_alias=wasm32-unknown-wasi
ac_cv_host=wasm32-unknown-wasi
";

fn read_pyproject(dir: &Path) -> Result<Option<toml::Value>> {
    let p = dir.join("pyproject.toml");
    if !p.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&p)?;
    Ok(Some(toml::from_str(&text).with_context(|| {
        format!("{} is not valid TOML", p.display())
    })?))
}

/// The `requires-python` of pyproject's `[project]` table, if any.
fn requires_python(pyproject: Option<&toml::Value>) -> Option<&str> {
    pyproject
        .and_then(|p| p.get("project"))
        .and_then(|p| p.get("requires-python"))
        .and_then(|r| r.as_str())
}

/// A cross build runs the package's build backend on the host's Python for
/// the guest's 3.14, and meson-python refuses to run on a Python outside
/// the package's `requires-python` (numpy 2.5: ">=3.12", a host with 3.11:
/// "The package requires Python version >=3.12, running on 3.11.7"). When
/// the host's version is outside it, the line in the build copy's
/// `pyproject.toml` becomes `requires-python = ">=3"`; returns the original
/// specifier, which the wheel's METADATA gets back (see [`whl::repair`]).
/// The guest's version was checked against it when the release was picked.
fn relax_requires_python(
    dir: &Path,
    pyproject: Option<&toml::Value>,
    host: &Version,
) -> Result<Option<String>> {
    let Some(spec) = requires_python(pyproject) else {
        return Ok(None);
    };
    match VersionSpecifiers::from_str(spec) {
        Ok(parsed) if !parsed.contains(host) => {}
        _ => return Ok(None),
    }
    let path = dir.join("pyproject.toml");
    let text = std::fs::read_to_string(&path)?;
    let mut found = false;
    let relaxed: Vec<String> = text
        .lines()
        .map(|line| {
            let key = line.trim_start();
            if !found
                && key.starts_with("requires-python")
                && key["requires-python".len()..].trim_start().starts_with('=')
            {
                found = true;
                "requires-python = \">=3\"".to_string()
            } else {
                line.to_string()
            }
        })
        .collect();
    if !found {
        // Spelled some other way (a dotted key, an inline table): left as
        // it is, the backend says what it thinks.
        return Ok(None);
    }
    std::fs::write(&path, relaxed.join("\n") + "\n")?;
    progress!(
        "requires-python `{spec}` excludes the host's Python {host} that runs the build \
         backend: relaxed for the build, kept in the wheel"
    );
    Ok(Some(spec.to_string()))
}

/// Whether `[build-system] requires` names setuptools.
fn requires_setuptools(pyproject: Option<&toml::Value>) -> bool {
    pyproject
        .and_then(|p| p.get("build-system"))
        .and_then(|b| b.get("requires"))
        .and_then(|r| r.as_array())
        .is_some_and(|r| {
            r.iter().filter_map(|x| x.as_str()).any(|x| {
                let name: String = x
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                name.eq_ignore_ascii_case("setuptools")
            })
        })
}

fn backend(pyproject: Option<&toml::Value>) -> Option<String> {
    pyproject?
        .get("build-system")?
        .get("build-backend")?
        .as_str()
        .map(str::to_string)
}

/// The package name of a source tree (PKG-INFO, else pyproject, else the
/// directory name).
fn project_name(dir: &Path, pyproject: Option<&toml::Value>) -> String {
    if let Ok(text) = std::fs::read_to_string(dir.join("PKG-INFO"))
        && let Ok(m) = whl::parse_metadata(&text)
    {
        return m.name;
    }
    if let Some(n) = pyproject
        .and_then(|p| p.get("project"))
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
    {
        return n.to_string();
    }
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn normalized(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

pub(crate) fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `eryx-wasm-cc` and `eryx-wasm-c++` in `dir`: the cross compiler as
/// single programs, which CMake needs (`CMAKE_C_COMPILER` names one file).
fn compiler_scripts(dir: &Path, xtask: &Path) -> Result<[PathBuf; 2]> {
    let script = |tool: &str| {
        crate::fsutil::write_xtask_script(
            dir,
            &format!("eryx-{tool}"),
            "the guest's compiler",
            xtask,
            tool,
        )
    };
    Ok([script("wasm-cc")?, script("wasm-c++")?])
}

/// CMake's toolchain file for the guest (scikit-build-core builds): a
/// cross build for a Linux-like wasm32 (CMake has no WASI platform in
/// every version; Linux's shared-library flags are what wasm-cc expects
/// and filters), the archiver that indexes wasm objects, and libraries
/// looked for in the WASI sysroot only, never the host's.
fn cmake_toolchain_file(compilers: &[PathBuf; 2], ar: &Path, sysroot: &Path) -> String {
    let ranlib = ar.with_file_name(
        ar.file_name()
            .map(|n| n.to_string_lossy().replace("-ar", "-ranlib"))
            .unwrap_or_else(|| "ranlib".into()),
    );
    let ranlib = if ranlib.is_file() {
        ranlib
    } else {
        PathBuf::from("true")
    };
    format!(
        "# Written by `cargo xtask wheel` (eryx): CMake's view of the guest.\n\
         set(CMAKE_SYSTEM_NAME Linux)\n\
         set(CMAKE_SYSTEM_PROCESSOR wasm32)\n\
         set(CMAKE_C_COMPILER \"{cc}\")\n\
         set(CMAKE_CXX_COMPILER \"{cxx}\")\n\
         set(CMAKE_AR \"{ar}\" CACHE FILEPATH \"\")\n\
         set(CMAKE_RANLIB \"{ranlib}\" CACHE FILEPATH \"\")\n\
         set(CMAKE_FIND_ROOT_PATH \"{sysroot}\")\n\
         set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)\n\
         set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)\n\
         set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)\n\
         set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)\n\
         # Build backends run on the host's Python, which FindPython runs\n\
         # through the emulator when cross-compiling (CMake 4.1's CMP0190).\n\
         set(CMAKE_CROSSCOMPILING_EMULATOR /usr/bin/env)\n\
         # wasm libraries have no run-time paths (and the output is no ELF).\n\
         set(CMAKE_SKIP_RPATH ON)\n\
         set(CMAKE_BUILD_WITH_INSTALL_RPATH ON)\n",
        cc = compilers[0].display(),
        cxx = compilers[1].display(),
        ar = ar.display(),
        ranlib = ranlib.display(),
        sysroot = sysroot.display(),
    )
}

impl Builder {
    /// Prepares the toolchain: the WASI sysroot, CPython's headers, the
    /// bundle (its libraries are what extensions link against), the cross
    /// compiler's settings and meson's cross file.
    pub(crate) fn new(root: &Path, out: &Path, work: &Path) -> Result<Builder> {
        // Absolute: build backends run in the package's own directory and
        // are handed paths under these (the compiler's settings, meson's
        // cross file, setuptools-rust's build directory).
        let work = std::path::absolute(work)?;
        let out = std::path::absolute(out)?;
        std::fs::create_dir_all(&work)?;
        let bundle = crate::dist::dist(root)?;
        let tools = crate::toolchain::locate()?;
        let sysroot = crate::sysroot::sysroot(root)?;
        let python_include = crate::cext::include_dir(root)?;
        let lib_dir = bundle.join("lib");
        // Every symbol the bundle's libraries export: what a built library
        // may import.
        let exports = crate::wasmcc::bundle_exports(&lib_dir)?;
        let base_exports = work.join("base-exports.txt");
        crate::fsutil::write_shared(&base_exports, exports.join("\n"), 0o644)?;
        let clangxx = crate::wasmcc::clangxx(&tools.clang);
        let cython_cxx_glue = work.join("eryx-cython-cxx.h");
        crate::fsutil::write_shared(&cython_cxx_glue, crate::wasmcc::CYTHON_CXX_GLUE, 0o644)?;
        let cxx_shim = crate::wasmcc::write_cxx_shim(&work.join("cxx-shim"))?;
        let ar = on_path("llvm-ar-19")
            .or_else(|| on_path("llvm-ar"))
            .unwrap_or_else(|| "ar".into());
        let sjlj_tag = crate::sjlj::tag_archive(&tools.clang, &ar, &work.join("sjlj"))?;
        let cfg = CcConfig {
            clang: tools.clang.clone(),
            clangxx,
            sysroot: sysroot.dir.clone(),
            cxx_include: sysroot.cxx_include.clone(),
            builtins: sysroot.builtins.clone(),
            python_include,
            lib_dir,
            base_exports,
            cython_cxx_glue: Some(cython_cxx_glue),
            cxx_shim: Some(cxx_shim),
            c_shim: Some(crate::wasmcc::write_c_shim(&work.join("c-shim"))?),
            wasm_opt: Some(crate::cxxeh::wasm_opt(root)?),
            cxx_exceptions: false,
            sjlj_tag: Some(sjlj_tag),
        };
        let cc_config = work.join("cc.json");
        crate::fsutil::write_shared(&cc_config, serde_json::to_vec_pretty(&cfg)?, 0o644)?;
        let exe = std::env::current_exe()?;
        // `numpy-config`: the build environment's numpy, for meson's
        // `dependency('numpy')` (shapely; a cross build finds config tools
        // only here); its include directory is rewritten by the guest
        // compilers to headers with the guest's type sizes.
        let cross = format!(
            "# Written by `cargo xtask wheel`: meson's view of the guest.\n\
             [binaries]\n\
             c = ['{exe}', 'wasm-cc']\n\
             cpp = ['{exe}', 'wasm-c++']\n\
             ar = '{ar}'\n\
             strip = 'true'\n\
             pkg-config = 'pkg-config'\n\
             numpy-config = 'numpy-config'\n\n\
             [host_machine]\n\
             system = 'wasi'\n\
             cpu_family = 'wasm32'\n\
             cpu = 'wasm32'\n\
             endian = 'little'\n\n\
             [properties]\n\
             needs_exe_wrapper = true\n\
             skip_sanity_check = true\n\
             longdouble_format = 'IEEE_QUAD_LE'\n",
            exe = exe.display(),
            ar = ar.display(),
        );
        // setuptools builds a package's extensions one after another unless
        // told otherwise, and compiles each one's sources in turn: with
        // several extensions (lxml has 8, aiohttp 6, pycryptodome 50) one
        // core sat idle. Its `parallel` builds extensions side by side (the
        // sources of one extension still go one by one). Not part of the
        // memo's key: the same objects come out in any order.
        let setuptools_config = work.join("setuptools-extra.cfg");
        let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
        crate::fsutil::write_shared(
            &setuptools_config,
            format!(
                "# Written by `cargo xtask wheel` (DIST_EXTRA_CONFIG).\n\
                 [build_ext]\nparallel = {jobs}\n"
            ),
            0o644,
        )?;
        let autoconf_site = work.join("config.site");
        crate::fsutil::write_shared(&autoconf_site, AUTOCONF_SITE, 0o644)?;
        let cross_file = work.join("wasm32-wasi.meson.cross");
        crate::fsutil::write_shared(&cross_file, cross, 0o644)?;
        let cmake_toolchain = work.join("wasm32-wasi.cmake");
        crate::fsutil::write_shared(
            &cmake_toolchain,
            cmake_toolchain_file(
                &compiler_scripts(&work.join("bin"), &exe)?,
                &ar,
                &sysroot.dir,
            ),
            0o644,
        )?;
        Ok(Builder {
            root: root.to_path_buf(),
            out,
            work,
            cc_config,
            cross_file,
            cmake_toolchain,
            bundle,
            cli: None,
            setuptools_config,
            autoconf_site,
            tools,
        })
    }

    /// Nothing to clean up yet; here for symmetry with `new`.
    pub(crate) fn finish(&mut self) -> Result<()> {
        Ok(())
    }

    /// Builds a downloaded sdist, reusing an earlier build of the same file.
    pub(crate) fn build_sdist(&mut self, sdist: &Path, sha256: &str) -> Result<PathBuf> {
        if sha256.is_empty() {
            return self.build_source(sdist);
        }
        // Built wheels are kept in target/wheels-build/built/<key>/, shared
        // by every output directory; the key covers the sdist, the files of
        // the package's recipe, the build of the C libraries it names and
        // the build logic's revision.
        let mut key_input = format!("{sha256}\n{BUILD_REVISION}\n");
        let recipes = self.root.join("xtask/recipes");
        let project = sdist
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.rsplit_once('-'))
            .map(|(name, _version)| normalized(name))
            .unwrap_or_default();
        if let Ok(entries) = std::fs::read_dir(&recipes) {
            for d in entries.flatten().map(|e| e.path()) {
                if d.file_name().and_then(|n| n.to_str()).map(normalized) != Some(project.clone()) {
                    continue;
                }
                let mut files: Vec<PathBuf> =
                    std::fs::read_dir(&d)?.flatten().map(|e| e.path()).collect();
                files.sort();
                for f in files {
                    // Relative to the recipes: a clone elsewhere (another
                    // CI directory) reuses the same builds.
                    let rel = f.strip_prefix(&recipes).unwrap_or(&f);
                    key_input.push_str(&rel.display().to_string());
                    key_input.push_str(&eryx_linker::sha256_hex(&std::fs::read(&f)?));
                }
            }
        }
        // And how the C libraries it names are built.
        if let Some(recipe) = read_recipe(&self.root, &project)? {
            for lib in &recipe.c_libraries {
                key_input.push_str(&crate::clibs::definition(&self.root, lib)?);
            }
        }
        let memo = self
            .work
            .join("built")
            .join(eryx_linker::sha256_hex(key_input.as_bytes()));
        let cached = std::fs::read_dir(&memo).ok().and_then(|mut e| {
            e.find_map(|e| {
                e.ok()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "whl"))
            })
        });
        if let Some(cached) = cached {
            let wheel = self.out.join(cached.file_name().expect("a file"));
            // A wheel of the same name there may be an older build (another
            // recipe or revision): the memo's is the one for these inputs.
            if std::fs::read(&wheel).ok() != Some(std::fs::read(&cached)?) {
                std::fs::copy(&cached, &wheel)?;
            }
            progress!("{} was built before: {}", sdist.display(), wheel.display());
            return Ok(wheel);
        }
        let wheel = self.build_source(sdist)?;
        let _ = std::fs::remove_dir_all(&memo);
        std::fs::create_dir_all(&memo)?;
        std::fs::copy(&wheel, memo.join(wheel.file_name().expect("a file")))?;
        Ok(wheel)
    }

    /// Unpacks an sdist into a fresh directory under `work/src`; returns
    /// that directory and the sdist's top directory in it.
    fn unpack(&self, sdist: &Path) -> Result<(PathBuf, PathBuf)> {
        let name = sdist
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = name.trim_end_matches(".tar.gz").trim_end_matches(".zip");
        let dest = self.work.join("src").join(stem);
        let top = unpack_sdist(sdist, &dest)?;
        Ok((dest, top))
    }

    /// Builds an sdist file or a source directory into a guest wheel.
    pub(crate) fn build_source(&mut self, path: &Path) -> Result<PathBuf> {
        let (tree, dir) = if path.is_dir() {
            // Build a copy: builds write into the tree.
            let name = path
                .canonicalize()?
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "source".into());
            let dest = self.work.join("src").join(name);
            let _ = std::fs::remove_dir_all(&dest);
            crate::fsutil::copy_tree(path, &dest)?;
            (dest.clone(), dest)
        } else {
            self.unpack(path)?
        };
        let wheel = self.build_tree(path, dir)?;
        // The unpacked tree and its build's objects are of no more use once
        // the wheel is written (a rebuild unpacks afresh); they took ~1 GB
        // over tests/packages.txt, and a CI machine short of disk ran out
        // half-way through those builds. A failed build's tree stays for
        // a look (the next build of the package replaces it).
        if let Err(e) = std::fs::remove_dir_all(&tree) {
            progress!(
                "  note: could not remove the build tree {}: {e}",
                tree.display()
            );
        }
        Ok(wheel)
    }

    /// Builds the unpacked source tree `dir` (from `path`) into a guest
    /// wheel.
    fn build_tree(&mut self, path: &Path, dir: PathBuf) -> Result<PathBuf> {
        let pyproject = read_pyproject(&dir)?;
        let name = project_name(&dir, pyproject.as_ref());
        let recipe = self.apply_recipe(&name, &dir)?;
        let backend = backend(pyproject.as_ref());
        let original_requires_python = match backend.as_deref() {
            Some("maturin") => None,
            _ => relax_requires_python(&dir, pyproject.as_ref(), &self.host_python()?)?,
        };
        progress!(
            "building {name} from {} (build backend: {})",
            path.display(),
            backend.as_deref().unwrap_or("setuptools, legacy setup.py")
        );
        let host_wheel = match backend.as_deref() {
            Some("maturin") => return self.maturin(&dir, pyproject.as_ref()),
            Some("mesonpy") => {
                let mut settings = vec![format!(
                    "setup-args=--cross-file={}",
                    self.cross_file.display()
                )];
                settings.extend(recipe.meson_args.iter().map(|a| format!("setup-args={a}")));
                self.pip_wheel(&dir, &name, &settings, &recipe)?
            }
            Some("scikit_build_core.build") => {
                // CMake, configured for the guest by the toolchain file; the
                // extension suffix comes from SETUPTOOLS_EXT_SUFFIX, which
                // scikit-build-core reads for cross builds as setuptools does.
                let settings = [format!(
                    "cmake.define.CMAKE_TOOLCHAIN_FILE={}",
                    self.cmake_toolchain.display()
                )];
                self.pip_wheel(&dir, &name, &settings, &recipe)?
            }
            Some("setuptools.build_meta" | "setuptools.build_meta:__legacy__") => {
                self.pip_wheel(&dir, &name, &[], &recipe)?
            }
            None if dir.join("setup.py").is_file() => self.pip_wheel(&dir, &name, &[], &recipe)?,
            None => bail!(
                "{}: neither pyproject.toml's build-system nor a setup.py says how to build {name}",
                path.display()
            ),
            Some(b) if PURE_BACKENDS.contains(&b) => self.pip_wheel(&dir, &name, &[], &recipe)?,
            // An in-tree backend (`backend-path`) wrapping setuptools, as
            // PyYAML's does: setuptools' compiler settings apply.
            Some(_) if requires_setuptools(pyproject.as_ref()) => {
                self.pip_wheel(&dir, &name, &[], &recipe)?
            }
            Some(other) => bail!(
                "{name}: build backend `{other}` is not supported. Supported: setuptools, \
                 meson-python (mesonpy), scikit-build-core, maturin, and the pure-Python \
                 backends ({})",
                PURE_BACKENDS.join(", ")
            ),
        };
        let wheel = whl::repair(&host_wheel, &self.out, original_requires_python.as_deref())
            .with_context(|| format!("making {name}'s wheel a guest wheel"))?;
        let pure = wheel
            .file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with("-none-any.whl"));
        if pure && let Some(source) = native_source(&dir) {
            let log = self.work.join(format!("{}-build.log", normalized(&name)));
            let first_error = std::fs::read_to_string(&log)
                .ok()
                .and_then(|text| first_compile_error(&text).map(str::to_string))
                .map(|e| format!(" Its first compile error: {e}."))
                .unwrap_or_default();
            progress!(
                "  note: {name}'s wheel is pure Python although its source has native code \
                 ({}): its build left that part out (an optional extension, skipped or failed; \
                 a recipe in xtask/recipes/ can turn it on).{first_error} Its build output: {}",
                source.strip_prefix(&dir).unwrap_or(&source).display(),
                log.display()
            );
        }
        self.add_bytecode(&wheel)
    }

    fn apply_recipe(&self, name: &str, dir: &Path) -> Result<Recipe> {
        let recipe_dir = self.root.join("xtask/recipes").join(normalized(name));
        if !recipe_dir.is_dir() {
            return Ok(Recipe::default());
        }
        let mut patches: Vec<PathBuf> = std::fs::read_dir(&recipe_dir)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "patch"))
            .collect();
        patches.sort();
        for p in patches {
            process::run(
                Command::new("patch")
                    .args(["-p1", "--forward", "--silent", "-d"])
                    .arg(dir)
                    .arg("-i")
                    .arg(&p),
                &format!("applying {}", p.display()),
            )
            .with_context(|| {
                format!(
                    "the recipe patch {} no longer applies to this version of {name}",
                    p.display()
                )
            })?;
        }
        Ok(read_recipe(&self.root, name)?.unwrap_or_default())
    }

    /// The version of the host's Python that runs build backends.
    fn host_python(&self) -> Result<Version> {
        let python = std::env::var("ERYX_HOST_PYTHON").unwrap_or_else(|_| "python3".into());
        let out = Command::new(&python)
            .args(["-c", "import platform; print(platform.python_version())"])
            .output()
            .with_context(|| {
                format!("cannot run {python} (Python and pip are needed to run build backends)")
            })?;
        let text = String::from_utf8_lossy(&out.stdout);
        Version::from_str(text.trim().trim_end_matches('+'))
            .map_err(|e| anyhow::anyhow!("{python} printed {text:?} as its version: {e}"))
    }

    /// Runs the package's own build backend on the host's Python with the
    /// cross compiler; returns the host-tagged wheel it wrote.
    fn pip_wheel(
        &self,
        dir: &Path,
        name: &str,
        config_settings: &[String],
        recipe: &Recipe,
    ) -> Result<PathBuf> {
        let exe = std::env::current_exe()?.display().to_string();
        // The recipe's C libraries, where the build's own search looks.
        let mut cflags = vec!["-O2".to_string()];
        cflags.extend(recipe.cflags.iter().cloned());
        let mut ldflags = Vec::new();
        let mut pkg_config_dirs = Vec::new();
        for (_, prefix) in self.c_libraries(name, recipe)? {
            cflags.push(format!("-I{}", prefix.join("include").display()));
            ldflags.push(format!("-L{}", prefix.join("lib").display()));
            pkg_config_dirs.push(prefix.join("lib/pkgconfig"));
        }
        let dest = self.work.join("host-wheels").join(normalized(name));
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::create_dir_all(&dest)?;
        let python = std::env::var("ERYX_HOST_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut pip = Command::new(&python);
        pip.args([
            "-m",
            "pip",
            "wheel",
            "-v",
            "--no-deps",
            "--ignore-requires-python",
            "-w",
        ])
        .arg(&dest)
        .arg(dir);
        for s in config_settings.iter().chain(&recipe.config_settings) {
            pip.arg(format!("--config-settings={s}"));
        }
        // Only the C libraries built for the guest (none unless the recipe
        // names some): never the host's libraries of the same names.
        pip.env("PKG_CONFIG_LIBDIR", std::env::join_paths(&pkg_config_dirs)?)
            .env("PKG_CONFIG_PATH", "");
        pip.env(CONFIG_ENV, &self.cc_config)
            .env("CC", format!("{exe} wasm-cc"))
            .env("CXX", format!("{exe} wasm-c++"))
            .env("LDSHARED", format!("{exe} wasm-cc -shared"))
            .env("LDCXXSHARED", format!("{exe} wasm-c++ -shared"))
            .env("CFLAGS", cflags.join(" "))
            .env("CXXFLAGS", cflags.join(" "))
            .env("LDFLAGS", ldflags.join(" "))
            .env("CPPFLAGS", "")
            .env("SETUPTOOLS_EXT_SUFFIX", whl::EXT_SUFFIX)
            // setuptools-rust's cargo builds for the guest (cargoshim.rs).
            .env(
                "CARGO",
                crate::cargoshim::write_script(&self.work.join("bin"), Path::new(&exe))?,
            )
            .env_remove("CARGO_BUILD_TARGET")
            .env(crate::cargoshim::WORK_ENV, &self.work)
            // A separate cache: pip must never offer these host-tagged
            // wasm wheels to the host.
            .env("PIP_CACHE_DIR", self.work.join("pip-cache"))
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("DIST_EXTRA_CONFIG", &self.setuptools_config)
            .env("CONFIG_SITE", &self.autoconf_site)
            .env(
                crate::wasmcc::CXX_EXCEPTIONS_ENV,
                if recipe.cxx_exceptions { "1" } else { "0" },
            )
            .envs(&recipe.env);
        let run = |pip: &mut Command| {
            run_with_progress(pip, name).with_context(|| {
                format!(
                    "cannot run {python} -m pip (Python and pip are needed to run build backends)"
                )
            })
        };
        let (mut status, mut text) = run(&mut pip)?;
        if !recipe.cxx_exceptions && text.contains(crate::wasmcc::EXCEPTIONS_DISABLED) {
            // C++ is compiled without exceptions unless it needs them
            // (code size, and a set with a library that throws gets the
            // collector that frees thrown objects): this package does.
            // Also when the build went on without that part (an optional
            // extension: RapidFuzz 3.14 then made a pure-Python wheel,
            // many times slower, and said nothing of why).
            progress!(
                "{name}: its C++ throws or catches exceptions: building it again with them \
                 (as a recipe's `cxx-exceptions = true` asks)"
            );
            pip.env(crate::wasmcc::CXX_EXCEPTIONS_ENV, "1");
            let _ = std::fs::remove_dir_all(&dest);
            std::fs::create_dir_all(&dest)?;
            (status, text) = run(&mut pip)?;
        }
        let log = self.work.join(format!("{}-build.log", normalized(name)));
        std::fs::write(&log, &text)?;
        if !status.success() {
            bail!(
                "building {name} failed (`{}`); its errors follow, all of its output is in {}:\n{}",
                process::describe(&pip),
                log.display(),
                failure_summary(&text)
            );
        }
        // What the cross compiler changed (pip shows it only with -v).
        let mut notes: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_once("[eryx] ").map(|(_, n)| n))
            .filter(|n| n.starts_with("adapter added:") || n.starts_with("warning:"))
            .collect();
        notes.sort();
        notes.dedup();
        for n in notes {
            progress!("  {name}: {n}");
        }
        std::fs::read_dir(&dest)?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "whl"))
            .with_context(|| format!("pip wheel wrote no wheel for {name}"))
    }

    /// The C libraries `recipe` names, built for the guest: (name, prefix).
    fn c_libraries(&self, name: &str, recipe: &Recipe) -> Result<Vec<(String, PathBuf)>> {
        recipe
            .c_libraries
            .iter()
            .map(|lib| {
                crate::clibs::prefix(&self.root, &self.tools, lib)
                    .map(|prefix| (lib.clone(), prefix))
                    .with_context(|| format!("{name}'s recipe needs the C library {lib}"))
            })
            .collect()
    }

    /// The environment of a maturin package's Rust build: its recipe's C
    /// libraries (pkg-config, and what their `-sys` crates read), its
    /// recipe's variables, and the Python packages its build scripts import
    /// (`[build-system] requires` other than maturin, installed for the
    /// host's Python into a directory of their own on `PYTHONPATH`:
    /// cryptography's generates its cffi bindings).
    fn maturin_env(
        &self,
        name: &str,
        pyproject: Option<&toml::Value>,
    ) -> Result<Vec<(String, String)>> {
        let mut env = Vec::new();
        let recipe = read_recipe(&self.root, &normalized(name))?.unwrap_or_default();
        let mut pkg_config_dirs = Vec::new();
        for (lib, prefix) in self.c_libraries(name, &recipe)? {
            pkg_config_dirs.push(prefix.join("lib/pkgconfig"));
            env.extend(crate::clibs::cargo_env(&lib, &prefix));
        }
        if !pkg_config_dirs.is_empty() {
            env.push((
                "PKG_CONFIG_LIBDIR".into(),
                std::env::join_paths(&pkg_config_dirs)?
                    .to_string_lossy()
                    .into_owned(),
            ));
            env.push(("PKG_CONFIG_ALLOW_CROSS".into(), "1".into()));
        }
        let requires = build_requirements(pyproject);
        if !requires.is_empty() {
            let deps = self
                .work
                .join("build-deps")
                .join(eryx_linker::sha256_hex(requires.join("\n").as_bytes()));
            if !deps.join(".complete").is_file() {
                let _ = std::fs::remove_dir_all(&deps);
                let python = std::env::var("ERYX_HOST_PYTHON").unwrap_or_else(|_| "python3".into());
                let mut pip = Command::new(&python);
                pip.args(["-m", "pip", "install", "--quiet", "--target"])
                    .arg(&deps)
                    .args(&requires)
                    .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
                    .env("PIP_ROOT_USER_ACTION", "ignore");
                process::run(
                    &mut pip,
                    &format!("installing {name}'s build requirements for the host's Python"),
                )?;
                std::fs::write(deps.join(".complete"), requires.join("\n"))?;
            }
            env.push(("PYTHONPATH".into(), deps.display().to_string()));
        }
        env.extend(recipe.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(env)
    }

    /// maturin/PyO3: the Rust crate through `cargo xtask ext build`.
    fn maturin(&mut self, dir: &Path, pyproject: Option<&toml::Value>) -> Result<PathBuf> {
        let tool = pyproject
            .and_then(|p| p.get("tool"))
            .and_then(|t| t.get("maturin"));
        let get = |k: &str| tool.and_then(|t| t.get(k)).and_then(|v| v.as_str());
        let manifest = dir.join(get("manifest-path").unwrap_or("Cargo.toml"));
        let crate_dir = manifest
            .parent()
            .context("the manifest path has no directory")?
            .to_path_buf();
        let pkg_info = std::fs::read_to_string(dir.join("PKG-INFO")).with_context(|| {
            format!(
                "{} has no PKG-INFO: maturin packages are built from their sdist",
                dir.display()
            )
        })?;
        let meta = whl::parse_metadata(&pkg_info)?;
        let out_dir = self
            .work
            .join("ext")
            .join(format!("{}-{}", meta.name, meta.version));
        // `[tool.maturin] features` (jellyfish's module is behind `python`).
        let features: Vec<String> = tool
            .and_then(|t| t.get("features"))
            .and_then(|f| f.as_array())
            .map(|a| a.iter().filter_map(|f| f.as_str()).collect::<Vec<_>>())
            .filter(|f| !f.is_empty())
            .map(|f| vec!["--features".to_string(), f.join(",")])
            .unwrap_or_default();
        let env = self.maturin_env(&meta.name, pyproject)?;
        let so = crate::ext::build_module(
            &self.root,
            &crate_dir,
            get("module-name"),
            &features,
            &env,
            &out_dir,
        )
        .with_context(|| format!("building {}'s Rust extension", meta.name))?;
        let so_name = so
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .context("no file name")?;
        let module_leaf = so_name.split('.').next().unwrap_or("").to_string();
        let module = get("module-name")
            .map(str::to_string)
            .unwrap_or_else(|| module_leaf.clone());
        if !module.ends_with(&module_leaf) {
            bail!(
                "{}: [tool.maturin] module-name is `{module}` but the crate's init function is \
                 PyInit_{module_leaf}",
                meta.name
            );
        }
        let top = module.split('.').next().unwrap_or(&module).to_string();
        let python_src = dir.join(get("python-source").unwrap_or(""));
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let package_dir = python_src.join(&top);
        if package_dir.join("__init__.py").is_file() {
            collect_python(&package_dir, &top, &mut files)?;
        } else if !module.contains('.') {
            // A pure-Rust module: maturin wraps it in a package of its name.
            files.push((
                format!("{top}/__init__.py"),
                format!(
                    "from .{top} import *\n\n__doc__ = {top}.__doc__\nif hasattr({top}, \"__all__\"):\n    __all__ = {top}.__all__\n"
                )
                .into_bytes(),
            ));
        }
        // maturin's layout: `module-name = "pkg._native"` is `pkg/_native.so`;
        // without a dotted name the module goes inside the package of its
        // own name (`orjson/orjson.so`, imported by `from .orjson import *`).
        let so_path = if module.contains('.') {
            format!("{}{}", module.replace('.', "/"), whl::EXT_SUFFIX)
        } else {
            format!("{top}/{top}{}", whl::EXT_SUFFIX)
        };
        files.push((so_path, std::fs::read(&so)?));
        // `[tool.maturin] include` entries meant for wheels (files beside
        // the package, e.g. a top-level helper module), relative to the
        // python source directory.
        let includes = tool
            .and_then(|t| t.get("include"))
            .and_then(|i| i.as_array())
            .cloned()
            .unwrap_or_default();
        for inc in includes {
            let (path, for_wheel) = match &inc {
                toml::Value::String(p) => (p.clone(), true),
                toml::Value::Table(t) => (
                    t.get("path")
                        .and_then(|p| p.as_str())
                        .unwrap_or("")
                        .to_string(),
                    // `format = "sdist"`, `format = ["sdist", "wheel"]`, or
                    // none (both).
                    match t.get("format") {
                        None => true,
                        Some(toml::Value::String(f)) => f == "wheel",
                        Some(toml::Value::Array(f)) => {
                            f.iter().any(|x| x.as_str() == Some("wheel"))
                        }
                        Some(_) => false,
                    },
                ),
                _ => continue,
            };
            let src = dir.join(&path);
            if !for_wheel || path.contains('*') || !src.is_file() {
                continue;
            }
            let rel = src
                .strip_prefix(&python_src)
                .unwrap_or(Path::new(&path))
                .to_string_lossy()
                .replace('\\', "/");
            if !files.iter().any(|(n, _)| *n == rel) {
                files.push((rel, std::fs::read(&src)?));
            }
        }
        let info = format!(
            "{}-{}.dist-info",
            meta.name.replace(['-', '.'], "_").to_ascii_lowercase(),
            meta.version
        );
        files.push((format!("{info}/METADATA"), pkg_info.into_bytes()));
        if let Some(text) = entry_points(pyproject) {
            files.push((format!("{info}/entry_points.txt"), text.into_bytes()));
        }
        let wheel = whl::write(&self.out, &info, super::WASI_TAG, &files)?;
        self.add_bytecode(&wheel)
    }

    /// Adds `.pyc` files compiled by the guest's CPython (only it writes
    /// bytecode that 3.14.0 accepts) to a wheel: its contents are mounted
    /// read-write in a sandbox and compiled with `compileall`, recording
    /// `/site-packages/...` as each code object's file (where eryx mounts
    /// packages). Unchecked-hash `.pyc`: a wheel's files do not change.
    pub(crate) fn add_bytecode(&mut self, wheel: &Path) -> Result<PathBuf> {
        let cli = match &self.cli {
            Some(c) => c.clone(),
            None => {
                let c = crate::build_cli(&self.root)?;
                self.cli = Some(c.clone());
                c
            }
        };
        let tree = tempfile::tempdir_in(&self.work)?;
        let mut zip = zip::ZipArchive::new(std::fs::File::open(wheel)?)?;
        zip.extract(tree.path())?;
        drop(zip);
        let report = crate::bytecode::compile(&crate::bytecode::Job {
            cli: &cli,
            bundle: &self.bundle,
            dir: tree.path(),
            mount: "/build/wheel",
            ddir: "/site-packages",
            skip: None,
            cache_dir: &self.root.join("target/eryx-cache"),
            timeout_secs: 600,
        })
        .context("compiling the wheel's bytecode")?;
        // Re-read the wheel's entries and add the new __pycache__ files.
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut info = None;
        walk(tree.path(), tree.path(), &mut |rel, bytes| {
            if let Some(d) = rel.strip_suffix("/METADATA")
                && d.ends_with(".dist-info")
                && !d.contains('/')
            {
                info = Some(d.to_string());
            }
            files.push((rel, bytes));
        })?;
        let info = info.context("the wheel lost its dist-info")?;
        let name = wheel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tag = name
            .trim_end_matches(".whl")
            .splitn(3, '-')
            .nth(2)
            .unwrap_or(super::WASI_TAG)
            .to_string();
        let written = whl::write(&self.out, &info, &tag, &files)?;
        progress!("{}: bytecode compiled in the guest ({report})", name);
        Ok(written)
    }
}

/// The first error a compiler reported in a build's output (clang's
/// `file:line:col: error: ...`), trimmed: what a package's optional native
/// part failed on when its build went on without it.
fn first_compile_error(text: &str) -> Option<&str> {
    text.lines()
        .map(str::trim)
        .find(|l| l.contains(": error: ") && !l.starts_with("error:"))
}

/// The lines of a failed build's output that say what failed (compiler
/// errors, failed build steps, meson's and CMake's errors, our compiler's
/// diagnoses), then its end.
fn failure_summary(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut picked: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < lines.len() && picked.len() < 30 {
        let l = lines[i];
        if l.contains("CMake Error") {
            // CMake says what went wrong on the (non-blank) lines after its
            // heading: the heading and three of them.
            picked.push(l);
            let mut taken = 0;
            i += 1;
            while i < lines.len() && taken < 3 {
                if !lines[i].trim().is_empty() {
                    picked.push(lines[i]);
                    taken += 1;
                }
                i += 1;
            }
            continue;
        }
        if l.contains("FAILED:")
            || l.contains("error:")
            // meson: `meson.build:29:2: ERROR: Problem encountered: ...`
            || l.contains("ERROR:")
            || l.contains("[eryx]")
            || l.contains("undefined symbol")
        {
            picked.push(l);
        }
        i += 1;
    }
    picked.push("...");
    picked.extend(lines.iter().rev().take(12).rev().copied());
    picked.join("\n")
}

/// Runs a build, showing its progress (ninja's `[n/m]` steps, every ten
/// seconds at most) and returning its whole output for the log.
fn run_with_progress(cmd: &mut Command, name: &str) -> Result<(std::process::ExitStatus, String)> {
    use std::io::BufRead;
    use std::process::Stdio;
    use std::sync::{Arc, Mutex};
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let started = std::time::Instant::now();
    // Both streams: pip's verbose log and the backend's output may go to either.
    let last_shown = Arc::new(Mutex::new(std::time::Instant::now()));
    let reader = |stream: Box<dyn std::io::Read + Send>| {
        let last_shown = Arc::clone(&last_shown);
        let name = name.to_string();
        std::thread::spawn(move || {
            let mut s = String::new();
            for line in std::io::BufReader::new(stream)
                .lines()
                .map_while(Result::ok)
            {
                let step = line.trim_start();
                let is_step = step.starts_with('[')
                    && step.split(']').next().is_some_and(|s| s.contains('/'));
                if is_step
                    && let Ok(mut last) = last_shown.lock()
                    && last.elapsed().as_secs() >= 10
                {
                    let shown: String = step.chars().take(100).collect();
                    progress!("  {name} ({}s): {shown}", started.elapsed().as_secs());
                    *last = std::time::Instant::now();
                }
                s.push_str(&line);
                s.push('\n');
            }
            s
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("piped")));
    let err = reader(Box::new(child.stderr.take().expect("piped")));
    let status = child.wait()?;
    let mut text = out.join().unwrap_or_default();
    text.push_str(&err.join().unwrap_or_default());
    Ok((status, text))
}

fn walk(root: &Path, dir: &Path, f: &mut dyn FnMut(String, Vec<u8>)) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        if e.file_type()?.is_dir() {
            walk(root, &p, f)?;
        } else {
            let rel = p.strip_prefix(root)?.to_string_lossy().replace('\\', "/");
            f(rel, std::fs::read(&p)?);
        }
    }
    Ok(())
}

/// `entry_points.txt` from pyproject's `[project.scripts]`,
/// `[project.gui-scripts]` and `[project.entry-points.*]` (pytest plugins
/// and console scripts are found through it), if there are any.
fn entry_points(pyproject: Option<&toml::Value>) -> Option<String> {
    let project = pyproject?.get("project")?;
    let mut groups: Vec<(String, &toml::value::Table)> = Vec::new();
    for (key, group) in [
        ("scripts", "console_scripts"),
        ("gui-scripts", "gui_scripts"),
    ] {
        if let Some(t) = project.get(key).and_then(|v| v.as_table()) {
            groups.push((group.to_string(), t));
        }
    }
    if let Some(eps) = project.get("entry-points").and_then(|v| v.as_table()) {
        for (group, t) in eps {
            if let Some(t) = t.as_table() {
                groups.push((group.clone(), t));
            }
        }
    }
    let mut out = String::new();
    for (group, entries) in groups {
        out.push_str(&format!("[{group}]\n"));
        for (name, target) in entries {
            if let Some(target) = target.as_str() {
                out.push_str(&format!("{name} = {target}\n"));
            }
        }
        out.push('\n');
    }
    (!out.is_empty()).then_some(out)
}

/// The Python files of a package directory (sources, stubs, data; no
/// bytecode caches).
fn collect_python(dir: &Path, prefix: &str, files: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let p = e.path();
        if e.file_type()?.is_dir() {
            if name != "__pycache__" {
                collect_python(&p, &format!("{prefix}/{name}"), files)?;
            }
        } else if !name.ends_with(".pyc") && !name.ends_with(".so") {
            files.push((format!("{prefix}/{name}"), std::fs::read(&p)?));
        }
    }
    Ok(())
}
