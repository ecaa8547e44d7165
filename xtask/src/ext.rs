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
use crate::{progress, toolchain};

/// The suffix CPython 3.14 for WASI looks for.
pub(crate) const EXTENSION_SUFFIX: &str = ".cpython-314-wasm32-wasi.so";

/// Reads `name` and `[lib] name` from a crate manifest (a small, line-based
/// reader: the example crates keep both on one line each).
fn crate_names(manifest: &str) -> Result<(String, String)> {
    let mut section = String::new();
    let (mut package, mut lib) = (None, None);
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.to_string();
        } else if let Some(v) = line.strip_prefix("name = ") {
            let v = v.trim_matches('"').to_string();
            match section.as_str() {
                "[package]" => package = Some(v),
                "[lib]" => lib = Some(v),
                _ => {}
            }
        }
    }
    let package = package.context("the manifest has no [package] name")?;
    let lib = lib.unwrap_or_else(|| package.replace('-', "_"));
    Ok((package, lib))
}

/// The `PyInit_*` symbols named in a static library (its archive symbol
/// table and object files hold them as NUL- or otherwise-delimited strings).
pub(crate) fn init_symbols(archive: &[u8]) -> Vec<String> {
    const PREFIX: &[u8] = b"PyInit_";
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(pos) = archive[i..].windows(PREFIX.len()).position(|w| w == PREFIX) {
        let start = i + pos;
        let end = archive[start..]
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
            .map_or(archive.len(), |n| start + n);
        if end > start + PREFIX.len() {
            let name = String::from_utf8_lossy(&archive[start..end]).into_owned();
            if !found.contains(&name) {
                found.push(name);
            }
        }
        i = end.max(start + 1);
    }
    found
}

/// Builds the extension crate at `path`; returns the `.so` path.
pub(crate) fn build(root: &Path, path: &Path) -> Result<PathBuf> {
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
            return crate::cext::build(root, &tools, &c);
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
    let krate = GuestCrate {
        manifest: &manifest_path,
        package: &package,
        lib: &lib,
    };
    let staticlib = build_staticlib(root, &tools, &krate, Tuning::Speed)?;
    let archive = std::fs::read(&staticlib)
        .with_context(|| format!("the build did not produce {}", staticlib.display()))?;
    let init = match init_symbols(&archive).as_slice() {
        [one] => one.clone(),
        [] => bail!(
            "{package} defines no `PyInit_<module>` function: add a PyO3 `#[pymodule]`, or \
             `#[unsafe(no_mangle)] pub unsafe extern \"C\" fn PyInit_<module>()`"
        ),
        many => bail!(
            "{package} defines several module init functions ({}); one crate builds one module",
            many.join(", ")
        ),
    };
    let module = init.trim_start_matches("PyInit_");
    let file = format!("{module}{EXTENSION_SUFFIX}");
    let out = root.join("target/ext").join(&file);
    link_shared(&tools, &staticlib, &[init.as_str()], &out, Tuning::Speed)?;
    let bytes = std::fs::read(&out)?;
    let info = eryx_linker::validate_library(&file, &bytes)?;
    if !info.exports.contains(&init) {
        bail!("{} does not export `{init}`", out.display());
    }
    progress!("built {} ({} bytes)", out.display(), bytes.len());
    Ok(out)
}

/// The example extensions that `cargo xtask test` builds.
pub(crate) const EXAMPLES: &[&str] = &[
    "examples/extensions/fastsum",
    "examples/extensions/wordcount",
    "examples/extensions/numstats",
    "examples/extensions/cvec",
    "examples/extensions/checksum",
];
