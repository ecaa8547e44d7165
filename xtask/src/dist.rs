//! `cargo xtask dist`: build `liberyx_runtime.so` and assemble the bundle.
//!
//! Steps:
//! 1. `fetch` (a no-op when up to date);
//! 2. locate the toolchain ([`crate::toolchain`]);
//! 3. hash every input (runtime, ffi and sys crate sources, the WIT, the
//!    lockfile and manifest, the toolchain versions, the link flags, the
//!    fetch record, the bytecode step); if `target/wasm/dist.stamp` holds
//!    that hash, stop;
//! 4. build `eryx-runtime` for `wasm32-wasip1` as a PIC staticlib with
//!    `-Z build-std` (its own target dir, `target/wasm`, so host builds are
//!    not invalidated);
//! 5. `clang -shared` it into `liberyx_runtime.so`, exporting exactly the
//!    hooks of `eryx_ffi::abi::INTRINSICS`;
//! 6. assemble `target/dist` from scratch with `manifest.json`, and validate
//!    every library's `@dylink.0`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use eryx_linker::bundle::{
    ADAPTER_FILE, FileEntry, MANIFEST_FILE, MANIFEST_FORMAT, Manifest, Role, Versions, sha256_hex,
};
use eryx_linker::{Bundle, EH_LIBRARY, RUNTIME_LIBRARY, validate_library};
use sha2::{Digest, Sha256};

use crate::fetch::{self, CPY_VERSION, FetchRecord};
use crate::toolchain::{self, Toolchain};
use crate::{process, progress};

pub(crate) const TARGET: &str = "wasm32-wasip1";
pub(crate) const PROFILE: &str = "guest";
/// The crates whose sources make up the runtime.
const GUEST_CRATES: &[&str] = &["eryx-runtime", "eryx-ffi", "eryx-cpython-sys"];

pub(crate) fn link_flags(exports: &[&str]) -> Vec<String> {
    let mut flags: Vec<String> = [
        "--target=wasm32-wasip1",
        "-nostdlib",
        "-shared",
        "-fuse-ld=lld",
        "-Wl,--allow-undefined",
        "-Wl,--no-entry",
        "-Wl,--no-export-dynamic",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    flags.extend(exports.iter().map(|name| format!("-Wl,--export={name}")));
    if exports.iter().any(|name| name.starts_with("PyInit_")) {
        // An extension module's static constructors: eryx-linker renames
        // the export so that they run at the module's first import.
        flags.push(crate::wasmcc::EXPORT_CTORS.to_string());
    }
    flags
}

/// libc functions the runtime replaces for every library linked after it
/// (`eryx-runtime/src/libc_fix.rs`, `eryx-runtime/src/deadlock.rs`).
pub(crate) const LIBC_OVERRIDES: &[&str] = &[
    "write",
    "_exit",
    "pthread_cond_wait",
    "stat",
    "lstat",
    "fstatat",
    "fstat",
    "localtime_r",
    "ctime_r",
    "mktime",
    "fcntl",
    // Floating-point exception flags in software (eryx-runtime/src/fenv.rs).
    "feraiseexcept",
    "fetestexcept",
    "feclearexcept",
    "fegetexceptflag",
    "fesetexceptflag",
];

/// Second names added to libc.so's exports, (alias, libc's function): the
/// runtime's overrides call libc's own function through them where libc
/// has no other entry point that does the same (`fstat`, `fcntl`; see
/// `eryx-runtime/src/libc_fix.rs`).
const LIBC_ALIASES: &[(&str, &str)] = &[
    ("__eryx_libc_fstat", "fstat"),
    ("__eryx_libc_fcntl", "fcntl"),
];

/// A second export name for a function: `(alias, name)`.
type ExportAlias = (String, String);

/// The prefix of the names [`redirect_override_imports`] gives libc.so's
/// own imports of functions the runtime overrides.
const SELF_IMPORT_PREFIX: &str = "__eryx_libc_self_";

/// libc.so imports some functions it defines itself (wasm-ld leaves an
/// import for a symbol another of its objects calls by its public name),
/// one of them overridden by the runtime (`localtime_r`, called by libc's
/// `ctime_r`; see [`LIBC_OVERRIDES`]). wit-component resolves such an
/// import to the runtime's export, so libc and the runtime depended on each
/// other, and a library in such a cycle is instantiated after the other:
/// libc came last, and every call from the runtime and from libpython into
/// libc (~400 functions: `malloc`, `memcpy`, ...) went through a stub of
/// the component's `env` module and an indirect call, each stub a table
/// entry filled at every instantiation.
///
/// So each such import is renamed to [`SELF_IMPORT_PREFIX`]`name`, which
/// libc exports as a second name of its own function (the returned
/// aliases, for [`add_export_aliases`]); libc then depends on no other
/// library and is instantiated first. This changes nothing another library
/// can see only while the functions that call those imports are
/// themselves overridden by the runtime and called by nothing else in
/// libc, nor in a table: checked here, and the build fails otherwise.
fn redirect_override_imports(module: &[u8]) -> Result<(Vec<u8>, Vec<ExportAlias>)> {
    use std::collections::{HashMap, HashSet};
    use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
    use wasm_encoder::{ImportSection, RawSection};
    use wasmparser::{ElementItems, Operator, Parser, Payload, TypeRef};
    let mut out = wasm_encoder::Module::new();
    let mut aliases = Vec::new();
    // The redirected imports' function indices, with their names.
    let mut redirected: HashMap<u32, String> = HashMap::new();
    let mut imported_functions = 0u32;
    // Defined functions exported under an overridden name.
    let mut overridden: HashSet<u32> = HashSet::new();
    // What each function body calls or takes the reference of.
    let mut references: Vec<(u32, Vec<u32>)> = Vec::new();
    let mut in_tables: Vec<u32> = Vec::new();
    for payload in Parser::new(0).parse_all(module) {
        let payload = payload?;
        match &payload {
            Payload::ImportSection(reader) => {
                let mut imports = ImportSection::new();
                for import in reader.clone().into_imports() {
                    let import = import?;
                    let mut name = import.name.to_string();
                    if matches!(import.ty, TypeRef::Func(_) | TypeRef::FuncExact(_)) {
                        if import.module == "env" && LIBC_OVERRIDES.contains(&import.name) {
                            name = format!("{SELF_IMPORT_PREFIX}{}", import.name);
                            aliases.push((name.clone(), import.name.to_string()));
                            redirected.insert(imported_functions, import.name.to_string());
                        }
                        imported_functions += 1;
                    }
                    imports.import(
                        import.module,
                        &name,
                        RoundtripReencoder.entity_type(import.ty)?,
                    );
                }
                out.section(&imports);
                continue;
            }
            Payload::ExportSection(reader) => {
                for export in reader.clone() {
                    let export = export?;
                    if export.kind == wasmparser::ExternalKind::Func
                        && LIBC_OVERRIDES.contains(&export.name)
                    {
                        overridden.insert(export.index);
                    }
                }
            }
            Payload::ElementSection(reader) => {
                for element in reader.clone() {
                    match element?.items {
                        ElementItems::Functions(funcs) => {
                            for f in funcs {
                                in_tables.push(f?);
                            }
                        }
                        ElementItems::Expressions(_, exprs) => {
                            for expr in exprs {
                                for op in expr?.get_operators_reader() {
                                    if let Operator::RefFunc { function_index } = op? {
                                        in_tables.push(function_index);
                                    }
                                }
                            }
                        }
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let index = imported_functions + u32::try_from(references.len())?;
                let mut called = Vec::new();
                for op in body.get_operators_reader()? {
                    match op? {
                        Operator::Call { function_index }
                        | Operator::ReturnCall { function_index }
                        | Operator::RefFunc { function_index } => called.push(function_index),
                        _ => {}
                    }
                }
                references.push((index, called));
            }
            _ => {}
        }
        if let Some((id, range)) = payload.as_section() {
            let range = usize::try_from(range.start)?..usize::try_from(range.end)?;
            out.section(&RawSection {
                id,
                data: &module[range],
            });
        }
    }
    // The functions that use a redirected import: each must be overridden,
    // and reached by nothing in libc but each other.
    let users: HashSet<u32> = references
        .iter()
        .filter(|(_, called)| called.iter().any(|f| redirected.contains_key(f)))
        .map(|(index, _)| *index)
        .collect();
    let why = "(see LIBC_OVERRIDES in xtask/src/dist.rs: the runtime must override it too)";
    for user in &users {
        anyhow::ensure!(
            overridden.contains(user),
            "libc.so's function {user} calls its import of {:?}, and is not overridden by \
             the runtime {why}",
            redirected.values().collect::<Vec<_>>()
        );
    }
    for (index, called) in &references {
        if let Some(f) = called.iter().find(|f| users.contains(f))
            && !users.contains(index)
        {
            anyhow::bail!("libc.so's function {index} calls {f}, which the redirect changes {why}");
        }
    }
    if let Some(f) = in_tables
        .iter()
        .find(|f| users.contains(f) || redirected.contains_key(f))
    {
        anyhow::bail!("libc.so's table holds function {f}, which the redirect changes {why}");
    }
    Ok((out.finish(), aliases))
}

/// `module` with each `(alias, name)` of `aliases` exported a second time
/// under `alias`; every other byte as it was.
fn add_export_aliases(module: &[u8], aliases: &[(&str, &str)]) -> Result<Vec<u8>> {
    use wasm_encoder::{ExportKind, ExportSection, RawSection};
    use wasmparser::{ExternalKind, Parser, Payload};
    let mut out = wasm_encoder::Module::new();
    let mut added = 0;
    for payload in Parser::new(0).parse_all(module) {
        let payload = payload?;
        if let Payload::ExportSection(reader) = &payload {
            let mut exports = ExportSection::new();
            let mut seen = Vec::new();
            for export in reader.clone() {
                let export = export?;
                let kind = match export.kind {
                    ExternalKind::Func | ExternalKind::FuncExact => ExportKind::Func,
                    ExternalKind::Table => ExportKind::Table,
                    ExternalKind::Memory => ExportKind::Memory,
                    ExternalKind::Global => ExportKind::Global,
                    ExternalKind::Tag => ExportKind::Tag,
                };
                exports.export(export.name, kind, export.index);
                seen.push((export.name, kind, export.index));
            }
            for (alias, name) in aliases {
                if seen.iter().any(|(n, ..)| n == alias) {
                    anyhow::bail!("libc.so already exports {alias}");
                }
                let Some(&(_, kind, index)) = seen.iter().find(|(n, ..)| n == name) else {
                    anyhow::bail!("libc.so does not export {name}");
                };
                exports.export(alias, kind, index);
                added += 1;
            }
            out.section(&exports);
        } else if let Some((id, range)) = payload.as_section() {
            let range = usize::try_from(range.start)?..usize::try_from(range.end)?;
            out.section(&RawSection {
                id,
                data: &module[range],
            });
        }
    }
    anyhow::ensure!(added == aliases.len(), "libc.so has no export section");
    Ok(out.finish())
}

fn runtime_exports() -> Vec<&'static str> {
    let hooks = eryx_ffi::abi::INTRINSICS.iter().map(|i| i.name);
    hooks.chain(LIBC_OVERRIDES.iter().copied()).collect()
}

fn hash_tree(h: &mut Sha256, root: &Path, dir: &Path) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        if e.file_type()?.is_dir() {
            if e.file_name() != "target" {
                hash_tree(h, root, &path)?;
            }
        } else {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&path)?;
            h.update((rel.len() as u64).to_le_bytes());
            h.update(rel.as_bytes());
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(&bytes);
        }
    }
    Ok(())
}

/// The content hash of everything the bundle is made from.
fn input_hash(root: &Path, tools: &Toolchain, record: &FetchRecord) -> Result<String> {
    let mut h = Sha256::new();
    for dir in GUEST_CRATES.iter().chain(&["wit", STDLIB_OVERLAY]) {
        hash_tree(&mut h, root, &root.join(dir))?;
    }
    for file in ["Cargo.lock", "Cargo.toml"] {
        h.update(std::fs::read(root.join(file))?);
    }
    h.update(tools.versions.as_bytes());
    h.update(link_flags(&runtime_exports()).join(" ").as_bytes());
    h.update(SIZE_TUNING.as_bytes());
    h.update(format!("{GUEST_PROFILE:?}{:?}", tuning_profile(Tuning::Size)).as_bytes());
    // What decides the stdlib's bytecode (not how the work is shared out).
    h.update(
        format!(
            "{} {STDLIB_BYTECODE_SKIP} unchecked-hash {}",
            eryx_linker::GUEST_STDLIB,
            eryx_linker::layout::PYC_WRITE_ALL
        )
        .as_bytes(),
    );
    h.update(format!("{LIBC_ALIASES:?} {LIBC_OVERRIDES:?} {SELF_IMPORT_PREFIX}").as_bytes());
    h.update(SYSCONFIG_FILES.join(",").as_bytes());
    h.update(balance_config_args(SYSCONFIG_PROBE).as_bytes());
    h.update(HASHLIB_KDF.as_bytes());
    h.update(PLATFORM_LIBC_VER.as_bytes());
    h.update(serde_json::to_vec(record)?);
    h.update(crate::stdlib_ext::input_fingerprint(root)?.as_bytes());
    h.update(crate::cxxeh::fingerprint().as_bytes());
    h.update(crate::tzdata::WHEEL_SHA256.as_bytes());
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    Ok(hex::encode(h.finalize()))
}

/// What a guest library is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tuning {
    /// Extensions: optimised for speed (`opt-level = "s"` of the guest
    /// profile), panics print their message before aborting, symbol names
    /// kept for backtraces.
    Speed,
    /// The runtime: `opt-level = "z"`, panics abort at once (no formatting
    /// machinery: a runtime panic is a bug and surfaces as a trap either
    /// way), names stripped: ~58 KB (the prelude is in the stdlib).
    Size,
}

/// Everything about the runtime's build that changes its bytes (part of the
/// dist stamp).
const SIZE_TUNING: &str = "opt-level=z -Zunstable-options -Cpanic=immediate-abort --strip-all";

/// The `guest` cargo profile, defined here only (as environment variables,
/// so that it also applies to crates outside this workspace, whose
/// manifests do not define it); the opt-level and LTO depend on the
/// [`Tuning`] ([`tuning_profile`]).
const GUEST_PROFILE: &[(&str, &str)] = &[
    ("CARGO_PROFILE_GUEST_INHERITS", "release"),
    ("CARGO_PROFILE_GUEST_PANIC", "abort"),
    ("CARGO_PROFILE_GUEST_DEBUG", "false"),
    // A staticlib is not linked by rustc, so a crate's `strip` does nothing
    // to it (`link_shared` decides what the module keeps); left to the
    // crate's release profile (pydantic-core's `strip = true`) it only made
    // cargo build std a second time for that crate (~1 min).
    ("CARGO_PROFILE_GUEST_STRIP", "none"),
];

/// The rest of the `guest` profile for a [`Tuning`].
///
/// Extensions: thin LTO over 16 codegen units. Fat LTO into one unit made
/// the last step of a Rust extension's build one single-threaded LLVM run
/// over the whole crate graph: pydantic-core took 720 s from a cold target
/// directory against 435 s with thin LTO (this two-vCPU machine,
/// 2026-12-03), for a 5.5 MB module instead of 4.3 MB and no measurable
/// difference in speed (validating and dumping 2,000 models, best of 25,
/// three runs each: 30.6-37.9 ms fat, 23.2-40.6 ms thin: the machine's
/// noise is larger than any difference). Thin LTO needs the hidden symbols
/// of [`tuning_rustflags`].
/// The runtime: fat LTO into one unit (it is small and its size matters).
fn tuning_profile(tuning: Tuning) -> [(&'static str, &'static str); 3] {
    match tuning {
        Tuning::Speed => [
            ("CARGO_PROFILE_GUEST_OPT_LEVEL", "s"),
            ("CARGO_PROFILE_GUEST_LTO", "thin"),
            ("CARGO_PROFILE_GUEST_CODEGEN_UNITS", "16"),
        ],
        Tuning::Size => [
            ("CARGO_PROFILE_GUEST_OPT_LEVEL", "z"),
            ("CARGO_PROFILE_GUEST_LTO", "true"),
            ("CARGO_PROFILE_GUEST_CODEGEN_UNITS", "1"),
        ],
    }
}

/// The guest's rustflags for a [`Tuning`] (std is built with them too).
///
/// Extensions: every symbol hidden unless exported by name at the link
/// (`link_shared` exports the init function). Without it thin LTO leaves
/// std's address-taken functions and statics (`<String as
/// fmt::Write>::write_fmt`, the panic hook) at default visibility, so the
/// PIC link exports them through the GOT, and two Rust extensions in one
/// set clash on the same names (`DuplicateExport`); fat LTO into one unit
/// internalised them.
/// The runtime: panics abort at once ([`Tuning::Size`]).
fn tuning_rustflags(tuning: Tuning) -> &'static str {
    match tuning {
        Tuning::Speed => "-C relocation-model=pic -Zdefault-visibility=hidden",
        Tuning::Size => "-C relocation-model=pic -Zunstable-options -Cpanic=immediate-abort",
    }
}

/// A crate to build for the guest.
pub(crate) struct GuestCrate<'a> {
    /// Its `Cargo.toml` (a member of this workspace or any other crate).
    pub(crate) manifest: &'a Path,
    /// Its package name.
    pub(crate) package: &'a str,
    /// Its library target name (the staticlib is `lib<lib>.a`).
    pub(crate) lib: &'a str,
    /// The compilers and flags for the C and C++ its dependencies compile
    /// through the `cc` crate, if any.
    pub(crate) c_compiler: Option<GuestCc>,
    /// Cargo's feature arguments for the build, verbatim (`--features`,
    /// `--no-default-features`, `--all-features` and their values).
    pub(crate) feature_args: &'a [String],
    /// More environment for the build (a `-sys` crate's `OPENSSL_DIR`),
    /// set after everything else.
    pub(crate) env: &'a [(String, String)],
}

/// The guest's C and C++ compilers as the `cc` crate takes them
/// (`CC_wasm32_wasip1`, `CFLAGS_wasm32_wasip1`, `CXX_...`, `CXXFLAGS_...`).
pub(crate) struct GuestCc {
    /// The C compiler.
    pub(crate) cc: PathBuf,
    /// Its flags.
    pub(crate) cflags: Vec<String>,
    /// The C++ compiler.
    pub(crate) cxx: PathBuf,
    /// Its flags.
    pub(crate) cxxflags: Vec<String>,
}

/// The `-p` spec for `krate`: its name alone is ambiguous when a
/// dependency has the same name (blake3's Python binding is the package
/// `blake3` and depends on the crate `blake3`), so the spec names the
/// manifest's directory too (`path+file:///dir#name`) where that is a plain
/// path.
fn package_spec(krate: &GuestCrate<'_>) -> String {
    let dir = krate
        .manifest
        .parent()
        .and_then(|d| d.canonicalize().ok())
        .map(|d| d.display().to_string());
    match dir {
        Some(d)
            if d.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-+".contains(&b)) =>
        {
            format!("path+file://{d}#{}", krate.package)
        }
        _ => krate.package.to_string(),
    }
}

/// Builds `krate`'s library for `wasm32-wasip1` with build-std as a PIC
/// staticlib, whatever crate type its manifest declares (PyO3 crates are
/// `cdylib`s); returns the `.a` path. `PYO3_CONFIG_FILE` is set for every
/// build (it only matters to crates that use PyO3).
pub(crate) fn build_staticlib(
    root: &Path,
    tools: &Toolchain,
    krate: &GuestCrate<'_>,
    tuning: Tuning,
) -> Result<PathBuf> {
    // Separate target directories: the two tunings build std differently.
    let target_dir = match tuning {
        Tuning::Speed => root.join("target/wasm"),
        Tuning::Size => root.join("target/wasm/size"),
    };
    let rustflags = tuning_rustflags(tuning);
    let pyo3_config = crate::pyo3::config_file(root)?;
    let mut cmd = Command::new(&tools.cargo);
    // The outer `cargo xtask` sets variables that would confuse the inner
    // build (and rustup's proxy `rustc` comes first on PATH): start clean.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if (k.starts_with("CARGO_") && k != "CARGO_HOME")
            || k.starts_with("RUSTUP_")
            || k.starts_with("PYO3_")
            || k == "RUSTFLAGS"
            || k == "CARGO"
            // A linting wrapper (CI's clippy-driver, see .ci/run) is a host
            // rustc: it would replace the guest's and fail on wasm32.
            || k == "RUSTC_WORKSPACE_WRAPPER"
        {
            cmd.env_remove(k.as_ref());
        }
    }
    cmd.current_dir(root)
        .arg("rustc")
        .arg("--manifest-path")
        .arg(krate.manifest)
        .args([
            "-p",
            &package_spec(krate),
            "--lib",
            "--crate-type",
            "staticlib",
        ])
        .args(krate.feature_args)
        .args(["--target", TARGET, "--profile", PROFILE])
        .args(["-Z", "build-std=panic_abort,std"])
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTC", &tools.rustc)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS", rustflags)
        .env("PYO3_CONFIG_FILE", &pyo3_config)
        .envs(GUEST_PROFILE.iter().copied())
        .envs(tuning_profile(tuning));
    if let Some(c) = &krate.c_compiler {
        let target = TARGET.replace('-', "_");
        cmd.env(format!("CC_{target}"), &c.cc)
            .env(format!("CFLAGS_{target}"), c.cflags.join(" "))
            .env(format!("CXX_{target}"), &c.cxx)
            .env(format!("CXXFLAGS_{target}"), c.cxxflags.join(" "));
        if let Some(ar) = ["llvm-ar-19", "llvm-ar"]
            .iter()
            .find_map(|n| crate::wheel::on_path(n))
        {
            cmd.env(format!("AR_{}", TARGET.replace('-', "_")), ar);
        }
    }
    if let Some(rustdoc) = tools
        .rustc
        .parent()
        .map(|d| d.join("rustdoc"))
        .filter(|p| p.is_file())
    {
        cmd.env("RUSTDOC", rustdoc);
    }
    cmd.envs(krate.env.iter().map(|(k, v)| (k, v)));
    process::run(
        &mut cmd,
        &format!(
            "building {} for wasm32-wasip1 (first time: ~2 min for std)",
            krate.package
        ),
    )?;
    Ok(target_dir
        .join(TARGET)
        .join(PROFILE)
        .join(format!("lib{}.a", krate.lib)))
}

/// Links a staticlib with `clang -shared` into `out`, exporting exactly
/// `exports`.
pub(crate) fn link_shared(
    tools: &Toolchain,
    staticlib: &Path,
    exports: &[&str],
    out: &Path,
    tuning: Tuning,
) -> Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut link = Command::new(&tools.clang);
    if tuning == Tuning::Size {
        link.arg("-Wl,--strip-all");
    }
    link.args(link_flags(exports))
        .arg("-o")
        .arg(out)
        .arg(staticlib);
    let output = process::capture(&mut link, &format!("linking {}", out.display()))?;
    for line in String::from_utf8_lossy(&output.stderr).lines() {
        if !line.contains("creating shared libraries, with -shared, is not yet stable") {
            eprintln!("{line}");
        }
    }
    Ok(())
}

/// Builds the runtime staticlib and links it; returns the `.so` path.
fn build_runtime(root: &Path, tools: &Toolchain) -> Result<PathBuf> {
    let so = root.join("target/wasm").join(RUNTIME_LIBRARY);
    let manifest = root.join("eryx-runtime/Cargo.toml");
    let krate = GuestCrate {
        manifest: &manifest,
        package: "eryx-runtime",
        lib: "eryx_runtime",
        c_compiler: None,
        feature_args: &[],
        env: &[],
    };
    let staticlib = build_staticlib(root, tools, &krate, Tuning::Size)?;
    link_shared(tools, &staticlib, &runtime_exports(), &so, Tuning::Size)?;
    Ok(so)
}

fn runtime_version(root: &Path) -> Result<String> {
    #[derive(serde::Deserialize)]
    struct Package {
        version: String,
    }
    #[derive(serde::Deserialize)]
    struct Manifest {
        package: Package,
    }
    let text = std::fs::read_to_string(root.join("eryx-runtime/Cargo.toml"))?;
    let m: Manifest = toml::from_str(&text).context("eryx-runtime/Cargo.toml has no version")?;
    Ok(m.package.version)
}

fn assemble(
    root: &Path,
    dist: &Path,
    record: &FetchRecord,
    runtime: &Path,
    modules: &[crate::stdlib_ext::Built],
    eh: &crate::cxxeh::Built,
    tzdata: &Path,
) -> Result<()> {
    if dist.exists() {
        std::fs::remove_dir_all(dist)?;
    }
    std::fs::create_dir_all(dist.join("lib"))?;
    std::fs::create_dir_all(dist.join("adapter"))?;
    let fetched = fetch::fetch_dir(root);
    let mut files = Vec::new();
    // The libraries `cargo xtask dist` builds itself.
    let mut add_built = |name: &str, from: &Path, role: Role, origin: String| -> Result<()> {
        let bytes = std::fs::read(from)?;
        std::fs::write(dist.join("lib").join(name), &bytes)?;
        files.push(FileEntry {
            name: name.to_string(),
            path: format!("lib/{name}"),
            role,
            sha256: sha256_hex(&bytes),
            size: bytes.len() as u64,
            origin,
        });
        Ok(())
    };
    add_built(
        RUNTIME_LIBRARY,
        runtime,
        Role::Runtime,
        "built from eryx-runtime by `cargo xtask dist`".to_string(),
    )?;
    add_built(
        EH_LIBRARY,
        &eh.path,
        Role::Library,
        format!(
            "built by `cargo xtask dist` from {}",
            eh.origin.lines().next().unwrap_or_default()
        ),
    )?;
    for f in &record.files {
        let mut entry = f.clone();
        match f.role {
            Role::Stdlib => {
                crate::fsutil::copy_tree(&fetched.join(&f.path), &dist.join(&f.path))?;
                fix_stdlib(&dist.join(&f.path))?;
                overlay_stdlib(&root.join(STDLIB_OVERLAY), &dist.join(&f.path))?;
                std::fs::copy(
                    root.join(PRELUDE_SOURCE),
                    dist.join(&f.path).join(PRELUDE_FILE),
                )
                .context("copying the prelude into the stdlib")?;
            }
            Role::Adapter => {
                crate::fsutil::link_or_copy(&fetched.join(&f.path), &dist.join(ADAPTER_FILE))?;
                entry.path = ADAPTER_FILE.to_string();
            }
            _ if f.name == "libc.so" => {
                let (bytes, mut aliases) =
                    redirect_override_imports(&std::fs::read(fetched.join(&f.path))?)
                        .context("redirecting libc.so's imports of its own functions")?;
                aliases.extend(
                    LIBC_ALIASES
                        .iter()
                        .map(|(a, n)| (a.to_string(), n.to_string())),
                );
                let pairs: Vec<(&str, &str)> = aliases
                    .iter()
                    .map(|(a, n)| (a.as_str(), n.as_str()))
                    .collect();
                let bytes = add_export_aliases(&bytes, &pairs)
                    .context("adding the runtime's aliases to libc.so's exports")?;
                std::fs::write(dist.join(&f.path), &bytes)?;
                entry.sha256 = sha256_hex(&bytes);
                entry.size = bytes.len() as u64;
                entry.origin = format!(
                    "{} (with the exports {pairs:?} added by `cargo xtask dist`; its imports of \
                     the runtime's overrides renamed to the `{SELF_IMPORT_PREFIX}` ones)",
                    f.origin
                );
            }
            _ => crate::fsutil::link_or_copy(&fetched.join(&f.path), &dist.join(&f.path))?,
        }
        files.push(entry);
    }
    let stdlib = record
        .files
        .iter()
        .find(|f| f.role == Role::Stdlib)
        .context("the fetch record has no stdlib")?;
    for m in modules {
        let path = format!("{}/{}", stdlib.path, m.file);
        let bytes = std::fs::read(&m.path)?;
        std::fs::write(dist.join(&path), &bytes)?;
        files.push(FileEntry {
            name: m.file.clone(),
            path,
            role: Role::Extension,
            sha256: sha256_hex(&bytes),
            size: bytes.len() as u64,
            origin: format!(
                "built by `cargo xtask dist` from xtask/modules and {}",
                m.origin.lines().next().unwrap_or_default()
            ),
        });
    }
    files.push(crate::tzdata::install(
        tzdata,
        &dist.join(&stdlib.path),
        &stdlib.path,
    )?);
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        versions: Versions {
            cpython: "3.14".to_string(),
            componentize_py: CPY_VERSION.to_string(),
            eryx_runtime: runtime_version(root)?,
            wit_dylib: "0.257.1".to_string(),
        },
        files,
    };
    std::fs::write(
        dist.join(MANIFEST_FILE),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    Ok(())
}

/// The sysconfig files of the WASI build, whose `CONFIG_ARGS` lost its
/// closing quote: `shlex.split` of it (as `test.support` and build tools
/// do) raises "No closing quotation".
const SYSCONFIG_FILES: &[&str] = &[
    "_sysconfigdata__wasi_wasm32-wasi.py",
    "_sysconfig_vars__wasi_wasm32-wasi.json",
];

/// Closes the quote of a `CONFIG_ARGS` value with an odd number of `'`.
fn balance_config_args(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 1);
    for line in text.split_inclusive('\n') {
        // Both spellings of the key are 16 bytes with the opening quote;
        // the value itself holds no `"`.
        let start = line
            .find("'CONFIG_ARGS': \"")
            .or_else(|| line.find("\"CONFIG_ARGS\": \""))
            .map(|k| k + 16);
        match start.and_then(|v| line[v..].find('"').map(|n| (v, v + n))) {
            Some((v, end)) => {
                let value = &line[v..end];
                if value.matches('\'').count() % 2 == 1 {
                    out.push_str(&line[..end]);
                    out.push('\'');
                    out.push_str(&line[end..]);
                    continue;
                }
                out.push_str(line);
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// A sample of what `balance_config_args` rewrites, hashed into the dist
/// stamp so that a change to the fix rebuilds the bundle.
const SYSCONFIG_PROBE: &str = "    'CONFIG_ARGS': \"'-C' '--host=x\",\n";

/// Appended to the bundle's `hashlib.py`: CPython takes `pbkdf2_hmac` and
/// `scrypt` from OpenSSL's `_hashlib`, which the WASI build lacks, so
/// without this Django's and Werkzeug's password hashing (and anything else
/// deriving keys) fails with `AttributeError`. `_eryx_kdf` is eryx's
/// (`xtask/modules/_eryx_kdf.c`).
const HASHLIB_KDF: &str = "
# eryx: the WASI build of CPython has no OpenSSL `_hashlib`; eryx's
# `_eryx_kdf` module gives `pbkdf2_hmac` and `scrypt` instead.
if 'pbkdf2_hmac' not in globals():
    try:
        from _eryx_kdf import pbkdf2_hmac, scrypt
    except ImportError:
        pass
    else:
        __all__ += ('pbkdf2_hmac',)
";

/// Appended to the bundle's `platform.py`: `libc_ver()` scans the file
/// `sys.executable` names for the C library's version, and the sandbox has
/// no interpreter binary (the prelude sets `sys.executable` to `python3`
/// for the messages that name it), so it raised `FileNotFoundError`
/// (CPython's `test_time` did not load). As CPython does when it has no
/// executable to read, it reports nothing.
const PLATFORM_LIBC_VER: &str = "
# eryx: no interpreter binary to scan (`sys.executable` names none).
_eryx_libc_ver = libc_ver


def libc_ver(executable=None, lib='', version='', chunksize=16384):
    if executable is None and not os.path.isfile(sys.executable):
        return lib, version
    return _eryx_libc_ver(executable, lib, version, chunksize)
";

/// Fixes the bundle's copy of the stdlib (the copy may be hard links to
/// the fetched files: each fixed file is replaced, not written through).
fn fix_stdlib(stdlib: &Path) -> Result<()> {
    for name in SYSCONFIG_FILES {
        let path = stdlib.join(name);
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("the stdlib has no {name}"))?;
        let fixed = balance_config_args(&text);
        if fixed != text {
            std::fs::remove_file(&path)?;
            std::fs::write(&path, fixed)?;
        }
    }
    for (name, marker, block) in [
        ("hashlib.py", "_eryx_kdf", HASHLIB_KDF),
        ("platform.py", "_eryx_libc_ver", PLATFORM_LIBC_VER),
    ] {
        let path = stdlib.join(name);
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("the stdlib has no {name}"))?;
        if !text.contains(marker) {
            std::fs::remove_file(&path)?;
            std::fs::write(&path, text + block)?;
        }
    }
    Ok(())
}

/// eryx's own stdlib modules (`xtask/stdlib`), written over the fetched
/// stdlib's: `ctypes/__init__.py`, C data types without `_ctypes` (which
/// needs libffi, which has no WASI port), `_ssl.py`, what `ssl.py` needs
/// to import and configure contexts without OpenSSL, and `pwd.py`/`grp.py`
/// with the sandbox's one user and group.
const STDLIB_OVERLAY: &str = "xtask/stdlib";

/// The runtime's Python half, which it imports as `_eryx_prelude` from the
/// stdlib (compiled to bytecode with the rest; it was embedded in the
/// runtime and compiled from source at every start: 35 ms in the guest).
const PRELUDE_SOURCE: &str = "eryx-runtime/src/prelude.py";
const PRELUDE_FILE: &str = "_eryx_prelude.py";

/// Writes every file under `overlay` over the same path in `stdlib`
/// (removing the old file first: the stdlib's files are hard links into
/// the fetched copy, which must stay as fetched).
fn overlay_stdlib(overlay: &Path, stdlib: &Path) -> Result<()> {
    for e in std::fs::read_dir(overlay)? {
        let e = e?;
        let target = stdlib.join(e.file_name());
        if e.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            overlay_stdlib(&e.path(), &target)?;
        } else {
            if target.exists() {
                std::fs::remove_file(&target)?;
            }
            std::fs::copy(e.path(), &target)
                .with_context(|| format!("writing {} over the stdlib", e.path().display()))?;
        }
    }
    Ok(())
}

/// Validates every library of the bundle (hash and `@dylink.0`).
fn validate(dist: &Path) -> Result<()> {
    let bundle = Bundle::open(dist)?;
    for f in &bundle.manifest().files {
        if matches!(f.role, Role::Runtime | Role::Library | Role::Extension) {
            let bytes = bundle.read_file(&f.name)?;
            let info = validate_library(&f.name, &bytes)?;
            progress!(
                "  {:<38} {:>9} bytes, needs {:?}",
                f.name,
                f.size,
                info.needed
            );
        }
    }
    Ok(())
}

/// Builds the bundle if its inputs changed; returns its directory.
pub(crate) fn dist(root: &Path) -> Result<PathBuf> {
    let record = fetch::fetch(root)?;
    let tools = toolchain::locate()?;
    let dist = root.join("target/dist");
    let stamp_path = root.join("target/wasm/dist.stamp");
    let hash = input_hash(root, &tools, &record)?;
    let stamp = std::fs::read_to_string(&stamp_path).unwrap_or_default();
    if stamp.trim() == hash && Bundle::open(&dist).is_ok() {
        progress!("dist: up to date ({})", dist.display());
        return Ok(dist);
    }
    // Only when something changed (the WIT and the runtime are in the
    // hash): a stale generated file must not be built into a bundle.
    crate::codegen::codegen(root, true)?;
    let runtime = build_runtime(root, &tools)?;
    let modules = crate::stdlib_ext::build(root, &tools)?;
    let eh = crate::cxxeh::build(root, &tools)?;
    let tzdata = crate::tzdata::fetch(root)?;
    assemble(root, &dist, &record, &runtime, &modules, &eh, &tzdata)?;
    progress!("validating the bundle:");
    validate(&dist)?;
    compile_stdlib(root, &dist)?;
    std::fs::write(&stamp_path, &hash)?;
    progress!("dist: done ({})", dist.display());
    Ok(dist)
}

/// Where `compile_stdlib` mounts the bundle's stdlib read-write in the
/// guest (the read-only copy at its usual place runs the interpreter).
const STDLIB_BUILD_MOUNT: &str = "/build/stdlib";

/// The stdlib's sources that get no bytecode (tests, IDLE, Tk): matched
/// against each source's guest path.
const STDLIB_BYTECODE_SKIP: &str =
    r"/(test|tests|idle_test|idlelib|tkinter|turtledemo|__phello__)/";

/// Compiles the stdlib's bytecode caches into the bundle (`__pycache__`
/// beside each module), so that interpreter start-up and imports read
/// bytecode instead of compiling sources every time: in the guest (only
/// CPython 3.14 itself writes 3.14 bytecode), with the bundle's stdlib
/// mounted read-write (the one place that mount is ever writable) and the
/// stdlib's real guest path recorded in each code object. Unchecked-hash
/// `.pyc` files: the bundle is immutable once built, so imports skip the
/// source check.
fn compile_stdlib(root: &Path, dist: &Path) -> Result<()> {
    let exe = crate::build_cli(root)?;
    progress!("compiling the stdlib to bytecode in the guest (~30 s)");
    let done = crate::bytecode::compile(&crate::bytecode::Job {
        cli: &exe,
        bundle: dist,
        dir: &dist.join(eryx_linker::bundle::STDLIB_DIR),
        mount: STDLIB_BUILD_MOUNT,
        ddir: eryx_linker::GUEST_STDLIB,
        skip: Some(STDLIB_BYTECODE_SKIP),
        cache_dir: &root.join("target/eryx-cache"),
        timeout_secs: 900,
    })
    .context("compiling the stdlib")?;
    progress!("  {done}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module exporting `f` (function 0), with a custom section.
    fn module_exporting_f() -> Vec<u8> {
        use wasm_encoder::{
            CodeSection, CustomSection, ExportKind, ExportSection, Function, FunctionSection,
            Instruction, TypeSection,
        };
        let mut m = wasm_encoder::Module::new();
        m.section(&CustomSection {
            name: "dylink.0".into(),
            data: b"\x01\x00".as_slice().into(),
        });
        let mut types = TypeSection::new();
        types.ty().function([], []);
        m.section(&types);
        let mut funcs = FunctionSection::new();
        funcs.function(0);
        m.section(&funcs);
        let mut exports = ExportSection::new();
        exports.export("f", ExportKind::Func, 0);
        m.section(&exports);
        let mut code = CodeSection::new();
        let mut body = Function::new([]);
        body.instruction(&Instruction::End);
        code.function(&body);
        m.section(&code);
        m.finish()
    }

    /// How [`module_importing_an_override`]'s caller is reached.
    #[derive(Clone, Copy, PartialEq)]
    enum Reached {
        /// Only through its export.
        Export,
        /// Also by a call from a third function (exported as `asctime`).
        Call,
        /// Also through the module's table.
        Table,
    }

    /// A module importing `env.localtime_r` (one of the runtime's
    /// overrides) and exporting its own `localtime_r`, and a second
    /// function, exported as `caller`, that calls the import.
    fn module_importing_an_override(caller: &str, reached: Reached) -> Vec<u8> {
        use wasm_encoder::{
            CodeSection, ConstExpr, ElementSection, Elements, EntityType, ExportKind,
            ExportSection, Function, FunctionSection, ImportSection, Instruction, Module, RefType,
            TableSection, TableType, TypeSection,
        };
        let mut m = Module::new();
        let mut types = TypeSection::new();
        types.ty().function([], []);
        m.section(&types);
        let mut imports = ImportSection::new();
        imports.import("env", "localtime_r", EntityType::Function(0));
        imports.import("env", "strlen", EntityType::Function(0));
        m.section(&imports);
        let mut funcs = FunctionSection::new();
        for _ in 0..3 {
            funcs.function(0);
        }
        m.section(&funcs);
        let mut tables = TableSection::new();
        tables.table(TableType {
            element_type: RefType::FUNCREF,
            minimum: 1,
            maximum: None,
            table64: false,
            shared: false,
        });
        m.section(&tables);
        let mut exports = ExportSection::new();
        exports.export("localtime_r", ExportKind::Func, 2);
        exports.export(caller, ExportKind::Func, 3);
        exports.export("asctime", ExportKind::Func, 4);
        m.section(&exports);
        if reached == Reached::Table {
            let mut elements = ElementSection::new();
            let funcs = [3];
            elements.active(
                None,
                &ConstExpr::i32_const(0),
                Elements::Functions(funcs[..].into()),
            );
            m.section(&elements);
        }
        let mut code = CodeSection::new();
        let fourth = if reached == Reached::Call { 3 } else { 1 };
        for calls in [1, 0, fourth] {
            let mut body = Function::new([]);
            body.instruction(&Instruction::Call(calls));
            body.instruction(&Instruction::End);
            code.function(&body);
        }
        m.section(&code);
        m.finish()
    }

    #[test]
    fn libc_imports_of_overridden_functions_are_redirected_to_its_own() {
        // The import's only caller is `ctime_r`, which the runtime overrides.
        let (out, aliases) =
            redirect_override_imports(&module_importing_an_override("ctime_r", Reached::Export))
                .unwrap();
        let alias = format!("{SELF_IMPORT_PREFIX}localtime_r");
        assert_eq!(aliases, [(alias.clone(), "localtime_r".to_string())]);
        let pairs: Vec<(&str, &str)> = aliases
            .iter()
            .map(|(a, n)| (a.as_str(), n.as_str()))
            .collect();
        let out = add_export_aliases(&out, &pairs).unwrap();
        wasmparser::Validator::new().validate_all(&out).unwrap();
        let mut imports = Vec::new();
        let mut exports = Vec::new();
        for payload in wasmparser::Parser::new(0).parse_all(&out) {
            match payload.unwrap() {
                wasmparser::Payload::ImportSection(r) => {
                    for i in r.into_imports() {
                        imports.push(i.unwrap().name.to_string());
                    }
                }
                wasmparser::Payload::ExportSection(r) => {
                    for e in r {
                        let e = e.unwrap();
                        exports.push((e.name.to_string(), e.index));
                    }
                }
                _ => {}
            }
        }
        assert_eq!(imports, [alias.clone(), "strlen".to_string()]);
        assert_eq!(
            exports,
            [
                ("localtime_r".to_string(), 2),
                ("ctime_r".to_string(), 3),
                ("asctime".to_string(), 4),
                (alias, 2)
            ]
        );
        // A caller the runtime does not override would change behaviour.
        let err =
            redirect_override_imports(&module_importing_an_override("strftime", Reached::Export))
                .unwrap_err();
        assert!(
            err.to_string().contains("calls its import of")
                && err.to_string().contains("not overridden"),
            "{err}"
        );
        // So would an overridden caller that libc itself still calls, or
        // one in its table.
        for (reached, says) in [
            (
                Reached::Call,
                "function 4 calls 3, which the redirect changes",
            ),
            (
                Reached::Table,
                "table holds function 3, which the redirect changes",
            ),
        ] {
            let err = redirect_override_imports(&module_importing_an_override("ctime_r", reached))
                .unwrap_err();
            assert!(err.to_string().contains(says), "{err}");
        }
    }

    #[test]
    fn an_export_alias_names_the_same_function() {
        let out = add_export_aliases(&module_exporting_f(), &[("g", "f")]).unwrap();
        wasmparser::Validator::new().validate_all(&out).unwrap();
        let mut exports = Vec::new();
        let mut customs = Vec::new();
        for payload in wasmparser::Parser::new(0).parse_all(&out) {
            match payload.unwrap() {
                wasmparser::Payload::ExportSection(r) => {
                    for e in r {
                        let e = e.unwrap();
                        exports.push((e.name.to_string(), e.index));
                    }
                }
                wasmparser::Payload::CustomSection(c) => {
                    customs.push((c.name().to_string(), c.data().to_vec()))
                }
                _ => {}
            }
        }
        assert_eq!(exports, [("f".to_string(), 0), ("g".to_string(), 0)]);
        assert_eq!(customs, [("dylink.0".to_string(), vec![1, 0])]);
        let missing = add_export_aliases(&module_exporting_f(), &[("g", "h")]).unwrap_err();
        assert!(
            missing.to_string().contains("does not export h"),
            "{missing}"
        );
        let taken = add_export_aliases(&module_exporting_f(), &[("f", "f")]).unwrap_err();
        assert!(taken.to_string().contains("already exports f"), "{taken}");
    }

    #[test]
    fn a_crate_is_named_by_its_directory_too() {
        // blake3's binding and its dependency are both `blake3`.
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("Cargo.toml");
        std::fs::write(&manifest, "[package]\nname = \"blake3\"\n").unwrap();
        let krate = GuestCrate {
            manifest: &manifest,
            package: "blake3",
            lib: "blake3",
            c_compiler: None,
            feature_args: &[],
            env: &[],
        };
        let spec = package_spec(&krate);
        let canonical = dir.path().canonicalize().unwrap();
        assert_eq!(spec, format!("path+file://{}#blake3", canonical.display()));
        // A directory cargo could not parse as a URL path: the name alone.
        let odd = dir.path().join("with space");
        std::fs::create_dir(&odd).unwrap();
        let manifest = odd.join("Cargo.toml");
        std::fs::write(&manifest, "").unwrap();
        let krate = GuestCrate {
            manifest: &manifest,
            ..krate
        };
        assert_eq!(package_spec(&krate), "blake3");
    }

    #[test]
    fn config_args_quote_is_closed_once() {
        let py = "x = 1\n    'CONFIG_ARGS': \"'-C' '--build=x86_64-pc-linux-gnu\",\n";
        let fixed = balance_config_args(py);
        assert_eq!(
            fixed,
            "x = 1\n    'CONFIG_ARGS': \"'-C' '--build=x86_64-pc-linux-gnu'\",\n"
        );
        assert_eq!(balance_config_args(&fixed), fixed);
        let json = "{\"CONFIG_ARGS\": \"'-C' '--host=w\", \"CC\": \"clang\"}";
        assert_eq!(
            balance_config_args(json),
            "{\"CONFIG_ARGS\": \"'-C' '--host=w'\", \"CC\": \"clang\"}"
        );
    }
}
