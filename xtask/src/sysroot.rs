//! The WASI sysroot that C and C++ extensions are compiled against.
//!
//! Bookworm's `wasi-libc` (2022) has no `pthread.h`, which `Python.h`
//! includes, so every full-API extension failed to compile with it. The
//! sysroot comes instead from Debian sid, fetched and checked against the
//! archive's index like CPython's headers (`debian.rs`):
//! - `wasi-libc` 0.0~git2026…: headers for `wasm32-wasip2` (the target the
//!   bundle's `libpython3.14.so` and `libc.so` were built for), with the
//!   single-threaded `pthread.h` stubs that the bundle's `libc.so` exports;
//! - `libclang-rt-19-dev-wasm32`: compiler-rt builtins (128-bit `long
//!   double` arithmetic, 128-bit integer division), linked into each
//!   extension that needs them — the bundle's `libc.so` exports none;
//! - `libc++-19-dev-wasm32` + `libc++abi-19-dev-wasm32`: libc++ headers
//!   configured like the bundle's `libc++.so` (ABI namespace `__2`, no
//!   threads); C++ extensions are compiled without exceptions (the bundle's
//!   libc++ is a `noeh` build) and linked against the bundle's shared libc++.
//!
//! `ERYX_WASI_SYSROOT` overrides it with a directory laid out the same way
//! (`include/wasm32-wasip2`, e.g. wasi-sdk's `share/wasi-sysroot`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::{debian, progress};

const PACKAGES: &[&str] = &[
    "wasi-libc",
    "libclang-rt-19-dev-wasm32",
    "libc++-19-dev-wasm32",
    "libc++abi-19-dev-wasm32",
];

/// The C target triple of the guest's CPython (`HOST_GNU_TYPE` in its
/// sysconfigdata is `wasm32-unknown-wasip2`).
pub(crate) const C_TARGET: &str = "wasm32-wasip2";

/// A located sysroot.
#[derive(Debug, Clone)]
pub(crate) struct Sysroot {
    /// The directory passed as `--sysroot` (holds `include/wasm32-wasip2`).
    pub(crate) dir: PathBuf,
    /// libc++'s headers (`c++/v1`), if present.
    pub(crate) cxx_include: Option<PathBuf>,
    /// compiler-rt's builtins archive, if present.
    pub(crate) builtins: Option<PathBuf>,
}

fn locate_in(dir: &Path) -> Result<Sysroot> {
    if !dir
        .join("include")
        .join(C_TARGET)
        .join("pthread.h")
        .is_file()
    {
        bail!(
            "{} is not a usable WASI sysroot: it has no include/{C_TARGET}/pthread.h",
            dir.display()
        );
    }
    let cxx_include = [
        format!("include/{C_TARGET}/c++/v1"),
        "include/wasm32-wasi/c++/v1".into(),
        "include/c++/v1".into(),
    ]
    .into_iter()
    .map(|p| dir.join(p))
    .find(|p| p.join("__config").is_file());
    let builtins = find_file(dir, "libclang_rt.builtins-wasm32.a", 10);
    Ok(Sysroot {
        dir: dir.to_path_buf(),
        cxx_include,
        builtins,
    })
}

fn find_file(dir: &Path, name: &str, depth: usize) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut subdirs = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
        if depth > 0 && e.file_type().is_ok_and(|t| t.is_dir()) {
            subdirs.push(p);
        }
    }
    subdirs.sort();
    subdirs
        .iter()
        .find_map(|d| find_file(d, name, depth.saturating_sub(1)))
}

/// The directory of headers every guest compile of a package's C finds
/// before the sysroot's ([`crate::wasmcc::SIGNAL_SHIM`]), written under
/// `target/fetch`.
pub(crate) fn c_shim(root: &Path) -> Result<PathBuf> {
    crate::wasmcc::write_c_shim(&root.join("target/fetch/c-shim"))
}

/// The sysroot, fetched into `target/fetch/wasi-sysroot` on first use.
pub(crate) fn sysroot(root: &Path) -> Result<Sysroot> {
    if let Some(custom) = std::env::var_os("ERYX_WASI_SYSROOT").filter(|v| !v.is_empty()) {
        return locate_in(Path::new(&custom))
            .context("ERYX_WASI_SYSROOT names a directory that is not a WASI sysroot");
    }
    let dir = root.join("target/fetch/wasi-sysroot");
    if dir.join("ORIGIN").is_file() {
        return locate_in(&dir.join("usr"));
    }
    let work = tempfile::tempdir()?;
    progress!(
        "the WASI sysroot comes from Debian ({})",
        PACKAGES.join(", ")
    );
    let unpacked = debian::fetch(
        PACKAGES,
        work.path(),
        "set ERYX_WASI_SYSROOT to a WASI sysroot for wasm32-wasip2 (e.g. wasi-sdk's \
         share/wasi-sysroot)",
    )?;
    let staging = root.join("target/fetch/wasi-sysroot.tmp");
    let _ = std::fs::remove_dir_all(&staging);
    let mut origin = String::new();
    for u in &unpacked {
        crate::fsutil::copy_tree(&u.dir, &staging)?;
        origin.push_str(&u.origin);
    }
    std::fs::write(staging.join("ORIGIN"), origin)?;
    let found = locate_in(&staging.join("usr"))?;
    if found.cxx_include.is_none() || found.builtins.is_none() {
        bail!("the Debian packages did not provide libc++'s headers and compiler-rt's builtins");
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&staging, &dir)
        .with_context(|| format!("cannot move the sysroot to {}", dir.display()))?;
    locate_in(&dir.join("usr"))
}
