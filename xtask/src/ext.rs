//! `cargo xtask ext build PATH`: a Rust extension crate → a late-linkable
//! `<module>.cpython-314-wasm32-wasi.so`.
//!
//! The crate must be a workspace member with `crate-type = ["staticlib"]`
//! whose library name is the module name and which exports
//! `PyInit_<module>`. It is built exactly like the runtime (build-std, PIC,
//! `clang -shared`), exporting only the init function. The built file's path
//! is the last line of stdout.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::dist::build_guest_library;
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

/// Builds the extension crate at `path`; returns the `.so` path.
pub(crate) fn build(root: &Path, path: &Path) -> Result<PathBuf> {
    let dir = if path.is_absolute() {
        path.to_path_buf()
    } else {
        root.join(path)
    };
    let manifest_path = dir.join("Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path).with_context(|| {
        format!(
            "{} is not a crate (no Cargo.toml); pass the extension crate's directory",
            dir.display()
        )
    })?;
    if !manifest.contains("staticlib") {
        bail!(
            "{} must set `crate-type = [\"staticlib\"]` in [lib] to be linked as a wasm shared library",
            manifest_path.display()
        );
    }
    let (package, lib) = crate_names(&manifest)?;
    let tools = toolchain::locate()?;
    let out = root
        .join("target/ext")
        .join(format!("{lib}{EXTENSION_SUFFIX}"));
    let init = format!("PyInit_{lib}");
    build_guest_library(
        root,
        &tools,
        &package,
        &lib,
        &[init.as_str()],
        &out,
        crate::dist::Tuning::Speed,
    )?;
    let bytes = std::fs::read(&out)?;
    let info = eryx_linker::validate_library(&format!("{lib}{EXTENSION_SUFFIX}"), &bytes)?;
    if !info.exports.contains(&init) {
        bail!(
            "{} does not export `{init}`: define `#[unsafe(no_mangle)] pub unsafe extern \"C\" fn {init}()`",
            out.display()
        );
    }
    progress!("built {} ({} bytes)", out.display(), bytes.len());
    Ok(out)
}

/// The example extensions that `cargo xtask test` builds.
pub(crate) const EXAMPLES: &[&str] = &[
    "examples/extensions/fastsum",
    "examples/extensions/wordcount",
];
