//! Finding (and on Debian, installing) the wasm toolchain, in one place.
//!
//! Lookup order, per tool:
//! - Rust for the guest (needs `-Z build-std`, so a rustc with its std
//!   sources): `ERYX_WASM_CARGO` + `ERYX_WASM_RUSTC`, else Debian's
//!   `/usr/bin/cargo` + `/usr/bin/rustc` (packages `cargo-web`, `rustc-web`,
//!   `rust-web-src`);
//! - clang with a wasm32 backend and wasm-ld: `ERYX_CLANG`, else `clang-19`
//!   on PATH, else `$WASI_SDK_PATH/bin/clang`.
//!
//! If something is missing and this is Debian run as root, the packages are
//! installed with apt; otherwise the error names the variables to set and
//! the command that installs them.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

use crate::{process, progress};

/// The Debian packages that provide the toolchain.
pub(crate) const APT_PACKAGES: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    "clang-19",
    "lld-19",
    // llvm-ar for wasm static archives (meson builds), patch for package recipes.
    "llvm-19",
    "patch",
    // How package builds (lxml, Pillow) find the C libraries built for the guest.
    "pkg-config",
];

/// The located tools.
#[derive(Debug, Clone)]
pub(crate) struct Toolchain {
    pub(crate) cargo: PathBuf,
    pub(crate) rustc: PathBuf,
    pub(crate) clang: PathBuf,
    /// `rustc --version` and `clang --version` (first lines), for the stamp.
    pub(crate) versions: String,
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn first_line(cmd: &Path, arg: &str) -> Option<String> {
    let out = Command::new(cmd).arg(arg).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_string(),
    )
}

/// Whether `rustc` has the std sources that `-Z build-std` needs.
fn has_rust_src(rustc: &Path) -> bool {
    let Some(sysroot) = first_line(rustc, "--print=sysroot") else {
        return false;
    };
    Path::new(sysroot.trim())
        .join("lib/rustlib/src/rust/library/std/Cargo.toml")
        .is_file()
}

fn find_rust() -> Option<(PathBuf, PathBuf)> {
    if let (Some(cargo), Some(rustc)) = (env_path("ERYX_WASM_CARGO"), env_path("ERYX_WASM_RUSTC")) {
        return Some((cargo, rustc));
    }
    let (cargo, rustc) = (
        PathBuf::from("/usr/bin/cargo"),
        PathBuf::from("/usr/bin/rustc"),
    );
    (cargo.is_file() && rustc.is_file() && has_rust_src(&rustc)).then_some((cargo, rustc))
}

fn find_clang() -> Option<PathBuf> {
    env_path("ERYX_CLANG")
        .or_else(|| on_path("clang-19"))
        .or_else(|| {
            env_path("WASI_SDK_PATH")
                .map(|p| p.join("bin/clang"))
                .filter(|p| p.is_file())
        })
}

pub(crate) fn is_debian_root() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    root && Path::new("/etc/debian_version").exists()
}

/// Installs Debian `packages` with apt (`why` says what for) when this is
/// Debian and we are root; `Ok(false)` when it cannot (the caller then
/// says how to install them). A failed install is tried once more after
/// `apt-get update`: images often ship without package lists.
pub(crate) fn apt_install(packages: &[&str], why: &str) -> Result<bool> {
    if !is_debian_root() {
        return Ok(false);
    }
    progress!("installing {} with apt ({why})", packages.join(" "));
    let install = || {
        process::run(
            Command::new("apt-get")
                .args(["install", "-y", "-q"])
                .args(packages)
                .env("DEBIAN_FRONTEND", "noninteractive"),
            &format!("apt-get install {}", packages.join(" ")),
        )
    };
    if install().is_err() {
        apt_update()?;
        install()?;
    }
    Ok(true)
}

fn apt_update() -> Result<()> {
    process::run(
        Command::new("apt-get").args(["update", "-q"]),
        "apt-get update",
    )
}

fn install_with_apt() -> Result<()> {
    apt_update()?;
    apt_install(APT_PACKAGES, "the wasm toolchain")?;
    Ok(())
}

/// Locates the toolchain, installing it with apt where possible.
pub(crate) fn locate() -> Result<Toolchain> {
    let mut rust = find_rust();
    let mut clang = find_clang();
    if (rust.is_none() || clang.is_none() || on_path("pkg-config").is_none()) && is_debian_root() {
        install_with_apt()?;
        rust = find_rust();
        clang = find_clang();
    }
    let Some((cargo, rustc)) = rust else {
        bail!(
            "no Rust toolchain that can build std for wasm32-wasip1 was found.\n\
             Expected Debian's /usr/bin/cargo and /usr/bin/rustc with std sources (rust-web-src).\n\
             Fix: `sudo apt-get install {}`, or set ERYX_WASM_CARGO and ERYX_WASM_RUSTC to a nightly\n\
             cargo/rustc with the rust-src component (`rustup toolchain install nightly --component rust-src`).",
            APT_PACKAGES.join(" ")
        );
    };
    let Some(clang) = clang else {
        bail!(
            "no clang with a wasm32 backend was found (looked at ERYX_CLANG, clang-19 on PATH, $WASI_SDK_PATH/bin/clang).\n\
             Fix: `sudo apt-get install clang-19 lld-19`, or set ERYX_CLANG (or WASI_SDK_PATH to a wasi-sdk)."
        );
    };
    let rustc_version = first_line(&rustc, "--version").unwrap_or_default();
    let clang_version = first_line(&clang, "--version").unwrap_or_default();
    progress!(
        "toolchain: {} ({}), {}",
        rustc_version,
        cargo.display(),
        clang_version
    );
    Ok(Toolchain {
        versions: format!("{rustc_version}\n{clang_version}"),
        cargo,
        rustc,
        clang,
    })
}
