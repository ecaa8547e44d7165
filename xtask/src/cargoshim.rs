//! `xtask cargo-shim ARGS`: the `cargo` that setuptools-rust runs while a
//! package is built into a guest wheel (bcrypt, tiktoken, ...).
//!
//! setuptools-rust calls `$CARGO` (`cargo metadata`, then `cargo rustc
//! --lib --manifest-path M [--features F] ... --message-format=json...`) and
//! copies the `cdylib` artifact that cargo's JSON messages name into the
//! wheel. Left alone it builds for the host. The wheel builder sets `CARGO`
//! to a script that runs this command: `cargo rustc --lib` builds the crate
//! the way `cargo xtask ext build` does (wasm32 with build-std, a PIC
//! staticlib, `clang -shared`, only `PyInit_*` exported) and prints the one
//! artifact message setuptools-rust looks for; every other cargo command
//! (`metadata`, `--version`, ...) runs the real cargo unchanged.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

use crate::{progress, toolchain};

/// The name of the script the wheel builder puts in `CARGO`.
pub(crate) const SCRIPT: &str = "eryx-cargo";

/// Writes the `CARGO` script for setuptools-rust into `dir`; returns its path.
pub(crate) fn write_script(dir: &Path, xtask: &Path) -> Result<PathBuf> {
    crate::fsutil::write_xtask_script(dir, SCRIPT, "setuptools-rust's cargo", xtask, "cargo-shim")
}

/// Set by the wheel builder to its build directory (`cargo xtask wheel
/// --work DIR`), so that two runs with their own build directories do not
/// build extensions into the same place.
pub(crate) const WORK_ENV: &str = "ERYX_WHEEL_WORK";

/// Where the extension of the crate in directory `name` is built: under the
/// wheel builder's build directory (`work`, from [`WORK_ENV`]), else under
/// its default one.
fn out_dir(root: &Path, work: Option<std::ffi::OsString>, name: &str) -> PathBuf {
    let work = match work {
        Some(w) if !w.is_empty() => PathBuf::from(w),
        _ => root.join("target/wheels-build"),
    };
    work.join("ext-setuptools-rust").join(name)
}

/// What a `cargo rustc` command line asks for.
#[derive(Debug, PartialEq, Eq)]
struct RustcRequest {
    manifest: PathBuf,
    /// `--features`/`--no-default-features`/`--all-features`, verbatim.
    feature_args: Vec<String>,
}

/// Parses the arguments after `rustc` (setuptools-rust's `RustBin`/exec
/// bindings use `cargo build` instead, refused in [`main`]).
fn parse_rustc(args: &[String]) -> Result<RustcRequest> {
    let mut manifest = None;
    let mut feature_args = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            // Everything after `--` goes to rustc itself (crate types,
            // optimisation flags): the guest build sets its own.
            "--" => break,
            "--manifest-path" => manifest = it.next().map(PathBuf::from),
            "--features" | "-F" => {
                feature_args.push("--features".to_string());
                feature_args.push(it.next().context("`--features` without a value")?.clone());
            }
            "--no-default-features" | "--all-features" => feature_args.push(arg.clone()),
            "--target" => bail!(
                "setuptools-rust asked for target `{}`: unset CARGO_BUILD_TARGET, the guest \
                 build chooses wasm32 itself",
                it.next().map(String::as_str).unwrap_or("")
            ),
            other => {
                if let Some(path) = other.strip_prefix("--manifest-path=") {
                    manifest = Some(PathBuf::from(path));
                } else if let Some(f) = other.strip_prefix("--features=") {
                    feature_args.push("--features".to_string());
                    feature_args.push(f.to_string());
                }
            }
        }
    }
    let manifest = manifest.context(
        "`cargo rustc` without `--manifest-path`: setuptools-rust always passes one; \
         nothing to build",
    )?;
    Ok(RustcRequest {
        manifest,
        feature_args,
    })
}

/// The package id setuptools-rust matches artifacts against
/// (`cargo metadata`'s `resolve.root`).
fn package_id(cargo: &Path, manifest: &Path) -> Result<String> {
    let out = crate::process::capture(
        Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--manifest-path"])
            .arg(manifest),
        "reading the crate's metadata",
    )?;
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("`cargo metadata` printed no JSON")?;
    meta.pointer("/resolve/root")
        .and_then(|r| r.as_str())
        .map(str::to_string)
        .with_context(|| {
            format!(
                "{} is a virtual manifest (a workspace without a package): point the \
                 extension at a member's Cargo.toml",
                manifest.display()
            )
        })
}

/// The JSON line cargo prints for a built `cdylib`, as setuptools-rust
/// reads it.
fn artifact_message(package_id: &str, so: &Path) -> String {
    serde_json::json!({
        "reason": "compiler-artifact",
        "package_id": package_id,
        "target": { "kind": ["cdylib"], "crate_types": ["cdylib"] },
        "filenames": [so],
        "fresh": false,
    })
    .to_string()
}

/// Runs `cargo ARGS` for setuptools-rust (see the module docs).
pub(crate) fn main(root: &Path, args: &[String]) -> Result<ExitCode> {
    let tools = toolchain::locate()?;
    match args.first().map(String::as_str) {
        Some("rustc") => {
            let request = parse_rustc(&args[1..])?;
            let manifest = std::fs::canonicalize(&request.manifest)
                .with_context(|| format!("{} does not exist", request.manifest.display()))?;
            let id = package_id(&tools.cargo, &manifest)?;
            let dir = manifest.parent().context("the manifest has no directory")?;
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let out_dir = out_dir(root, std::env::var_os(WORK_ENV), &name);
            progress!(
                "setuptools-rust asked cargo to build {}: building it for the guest",
                manifest.display()
            );
            let so =
                crate::ext::build_module(root, dir, None, &request.feature_args, &[], &out_dir)
                    .with_context(|| format!("building {} for the guest", manifest.display()))?;
            println!("{}", artifact_message(&id, &so));
            Ok(ExitCode::SUCCESS)
        }
        Some("build") if args.iter().any(|a| a == "--manifest-path") => bail!(
            "setuptools-rust asked cargo to build an executable (a `RustBin` or exec binding); \
             the sandbox cannot run programs, only extension modules are built for it"
        ),
        _ => {
            let status = Command::new(&tools.cargo)
                .args(args)
                .env_remove("CARGO")
                .status()
                .with_context(|| format!("cannot run {}", tools.cargo.display()))?;
            Ok(crate::exit_code(status))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn extensions_are_built_under_the_wheel_builders_directory() {
        let root = Path::new("/repo");
        assert_eq!(
            out_dir(root, Some("/w/numpy-stack".into()), "rust"),
            Path::new("/w/numpy-stack/ext-setuptools-rust/rust")
        );
        for unset in [None, Some("".into())] {
            assert_eq!(
                out_dir(root, unset, "rust"),
                Path::new("/repo/target/wheels-build/ext-setuptools-rust/rust")
            );
        }
    }

    #[test]
    fn reads_setuptools_rusts_command_line() {
        // As setuptools-rust 1.12 builds tiktoken (features, release, a
        // crate type after `--`).
        let args = strings(&[
            "--lib",
            "--message-format=json-render-diagnostics",
            "--manifest-path",
            "/src/tiktoken/Cargo.toml",
            "--release",
            "--features",
            "python",
            "--crate-type",
            "cdylib",
            "--",
            "--features",
            "not-cargo",
        ]);
        assert_eq!(
            parse_rustc(&args).unwrap(),
            RustcRequest {
                manifest: "/src/tiktoken/Cargo.toml".into(),
                feature_args: strings(&["--features", "python"]),
            }
        );
        let args = strings(&[
            "--manifest-path=/m/Cargo.toml",
            "--no-default-features",
            "--features=pyo3/abi3-py39",
        ]);
        assert_eq!(
            parse_rustc(&args).unwrap().feature_args,
            strings(&["--no-default-features", "--features", "pyo3/abi3-py39"])
        );
    }

    #[test]
    fn refuses_what_it_cannot_build() {
        let err = parse_rustc(&strings(&["--lib"])).unwrap_err().to_string();
        assert!(err.contains("--manifest-path"), "{err}");
        let err = parse_rustc(&strings(&["--manifest-path", "m", "--target", "x86_64"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("CARGO_BUILD_TARGET"), "{err}");
    }

    #[test]
    fn artifact_line_is_what_setuptools_rust_matches() {
        let line = artifact_message("path+file:///src#bcrypt@5.0.0", Path::new("/o/_bcrypt.so"));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["reason"], "compiler-artifact");
        assert_eq!(v["package_id"], "path+file:///src#bcrypt@5.0.0");
        assert_eq!(v["target"]["kind"][0], "cdylib");
        assert_eq!(v["filenames"][0], "/o/_bcrypt.so");
        assert!(!line.contains('\n'));
    }
}
