//! Wheel files (PEP 427): reading their metadata, turning what a host
//! build backend wrote into a guest wheel, writing wheels.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use pep508_rs::Requirement;

/// The tag of wheels built here: CPython 3.14, its ABI, WASI on wasm32
/// (the platform tag WASI wheel builds for componentize-py use).
pub(crate) const WASI_TAG: &str = "cp314-cp314-wasi_0_0_0_wasm32";
/// The guest's extension-module suffix.
pub(crate) const EXT_SUFFIX: &str = ".cpython-314-wasm32-wasi.so";

/// What eryx needs of a wheel's `METADATA`.
#[derive(Debug, Clone)]
pub(crate) struct Metadata {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) requires: Vec<Requirement>,
}

/// Parses core metadata (RFC 822-style headers; `Requires-Dist` repeated).
pub(crate) fn parse_metadata(text: &str) -> Result<Metadata> {
    let mut name = None;
    let mut version = None;
    let mut requires = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            break; // the body (description) follows
        }
        if let Some((key, value)) = line.split_once(':') {
            let value = value.trim();
            match key {
                "Name" => name = Some(value.to_string()),
                "Version" => version = Some(value.to_string()),
                "Requires-Dist" => requires.push(
                    Requirement::from_str(value)
                        .with_context(|| format!("bad Requires-Dist `{value}`"))?,
                ),
                _ => {}
            }
        }
    }
    Ok(Metadata {
        name: name.context("the metadata has no Name")?,
        version: version.context("the metadata has no Version")?,
        requires,
    })
}

fn entries(wheel: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let file =
        std::fs::File::open(wheel).with_context(|| format!("cannot open {}", wheel.display()))?;
    let mut zip = zip::ZipArchive::new(file)
        .with_context(|| format!("{} is not a wheel (zip)", wheel.display()))?;
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let mut e = zip.by_index(i)?;
        if e.is_dir() {
            continue;
        }
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes)?;
        out.push((e.name().to_string(), bytes));
    }
    Ok(out)
}

fn dist_info(entries: &[(String, Vec<u8>)], wheel: &Path) -> Result<String> {
    entries
        .iter()
        .find_map(|(n, _)| {
            n.strip_suffix("/METADATA")
                .filter(|d| d.ends_with(".dist-info") && !d.contains('/'))
        })
        .map(str::to_string)
        .with_context(|| format!("{} has no *.dist-info/METADATA", wheel.display()))
}

/// Whether a wheel already carries compiled bytecode.
pub(crate) fn has_bytecode(wheel: &Path) -> Result<bool> {
    let zip = zip::ZipArchive::new(std::fs::File::open(wheel)?)
        .with_context(|| format!("{} is not a wheel (zip)", wheel.display()))?;
    Ok(zip.file_names().any(|n| n.ends_with(".pyc")))
}

/// The metadata of a wheel file.
pub(crate) fn metadata(wheel: &Path) -> Result<Metadata> {
    let all = entries(wheel)?;
    let info = dist_info(&all, wheel)?;
    let meta = all
        .iter()
        .find(|(n, _)| *n == format!("{info}/METADATA"))
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    parse_metadata(&meta).with_context(|| format!("reading {}'s METADATA", wheel.display()))
}

/// The guest name of a built extension file: the host interpreter's
/// suffix (`.cpython-311-x86_64-linux-gnu.so`) becomes the guest's, and so
/// does a bare `.so` that exports `PyInit_<its name>` (CMake's FindPython
/// leaves the suffix empty in a cross build: h3's `_cy/cells.so`), which
/// CPython would not import; other libraries keep their names.
pub(crate) fn guest_name(path: &str, bytes: &[u8]) -> String {
    let Some(stem) = path.strip_suffix(".so") else {
        return path.to_string();
    };
    match stem.rsplit_once('.') {
        Some((base, tag)) if tag.starts_with("cpython-") => format!("{base}{EXT_SUFFIX}"),
        Some(_) => path.to_string(),
        None => {
            let name = stem.rsplit('/').next().unwrap_or(stem);
            let init = format!("PyInit_{name}");
            let exports_init =
                crate::wasmcc::symbols(bytes).is_ok_and(|(_, ex)| ex.contains(&init));
            if exports_init {
                format!("{stem}{EXT_SUFFIX}")
            } else {
                path.to_string()
            }
        }
    }
}

fn urlsafe_b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Writes a wheel: `files` (paths inside the wheel) plus a regenerated
/// `WHEEL` and `RECORD` in `info` (`name-version.dist-info`).
pub(crate) fn write(
    out_dir: &Path,
    info: &str,
    tag: &str,
    files: &[(String, Vec<u8>)],
) -> Result<PathBuf> {
    let stem = info.trim_end_matches(".dist-info");
    let path = out_dir.join(format!("{stem}-{tag}.whl"));
    let purelib = tag.ends_with("-none-any");
    let wheel_file = format!(
        "Wheel-Version: 1.0\nGenerator: eryx (cargo xtask wheel)\nRoot-Is-Purelib: {purelib}\nTag: {tag}\n"
    );
    let mut all: Vec<(String, Vec<u8>)> = files
        .iter()
        .filter(|(n, _)| *n != format!("{info}/RECORD") && *n != format!("{info}/WHEEL"))
        .cloned()
        .collect();
    all.push((format!("{info}/WHEEL"), wheel_file.into_bytes()));
    let mut record = String::new();
    for (name, bytes) in &all {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(bytes);
        record.push_str(&format!(
            "{name},sha256={},{}\n",
            urlsafe_b64(&digest),
            bytes.len()
        ));
    }
    record.push_str(&format!("{info}/RECORD,,\n"));
    all.push((format!("{info}/RECORD"), record.into_bytes()));
    let tmp = path.with_extension("whl.part");
    {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&tmp)?);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in &all {
            zip.start_file(name.as_str(), opts)?;
            zip.write_all(bytes)?;
        }
        zip.finish()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Turns the wheel a host build backend produced into a guest wheel in
/// `out_dir`: every `.so` must be a wasm dynamic library (else the build
/// bypassed the cross compiler), extension files get the guest's suffix,
/// and the tag says CPython 3.14 on WASI (`py3-none-any` if nothing is
/// native). `extra` files are added (compiled bytecode).
///
/// `requires_python`, when given, replaces METADATA's `Requires-Python`
/// (the build relaxed it for the host's Python; see `build.rs`).
pub(crate) fn repair(
    host_wheel: &Path,
    out_dir: &Path,
    requires_python: Option<&str>,
) -> Result<PathBuf> {
    let all = entries(host_wheel)?;
    let info = dist_info(&all, host_wheel)?;
    let mut files = Vec::new();
    let mut native = false;
    for (name, bytes) in all {
        if let Some(spec) = requires_python
            && name == format!("{info}/METADATA")
        {
            let text = String::from_utf8(bytes)
                .with_context(|| format!("{name} in {} is not UTF-8", host_wheel.display()))?;
            files.push((name, restore_requires_python(&text, spec).into_bytes()));
            continue;
        }
        if name.ends_with(".so") || name.contains(".so.") {
            let base = name.rsplit('/').next().unwrap_or(&name).to_string();
            eryx_linker::validate_library(&base, &bytes).with_context(|| {
                format!(
                    "{} ships {name}, which is not a wasm library: the package's build ran a \
                     compiler other than the cross compiler (CC/CXX)",
                    host_wheel.display()
                )
            })?;
            native = true;
            files.push((guest_name(&name, &bytes), bytes));
        } else {
            files.push((name, bytes));
        }
    }
    let tag = if native { WASI_TAG } else { "py3-none-any" };
    write(out_dir, &info, tag, &files)
}

/// METADATA with its `Requires-Python` header set to `spec` (added to the
/// headers if it had none); the body is kept.
fn restore_requires_python(metadata: &str, spec: &str) -> String {
    let (headers, body) = match metadata.find("\n\n") {
        Some(i) => metadata.split_at(i + 1),
        None => (metadata, ""),
    };
    let mut out = String::new();
    let mut done = false;
    for line in headers.lines() {
        if line.to_ascii_lowercase().starts_with("requires-python:") {
            if !done {
                out.push_str(&format!("Requires-Python: {spec}\n"));
                done = true;
            }
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !done {
        out.push_str(&format!("Requires-Python: {spec}\n"));
    }
    out + body
}

/// Checks a wheel given by the user or downloaded: pure, or built for the
/// guest. Returns its path in `out_dir`.
pub(crate) fn check_guest_wheel(wheel: &Path, out_dir: &Path) -> Result<PathBuf> {
    let name = wheel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tags: Vec<&str> = name.trim_end_matches(".whl").rsplitn(4, '-').collect();
    let platform = tags.first().copied().unwrap_or("");
    if platform != "any" && !platform.starts_with("wasi") {
        bail!(
            "{name} is built for `{platform}`, not for WASI: pass the sdist (or the package name) \
             to build it for the guest"
        );
    }
    let dest = out_dir.join(&name);
    if wheel.canonicalize().ok() != dest.canonicalize().ok() {
        std::fs::copy(wheel, &dest)?;
    }
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requires_python_is_put_back_and_the_body_kept() {
        let meta = "Metadata-Version: 2.1\nName: numpy\nRequires-Python: >=3\nSummary: x\n\nbody\nRequires-Python: no\n";
        assert_eq!(
            restore_requires_python(meta, ">=3.12"),
            "Metadata-Version: 2.1\nName: numpy\nRequires-Python: >=3.12\nSummary: x\n\nbody\nRequires-Python: no\n"
        );
        assert_eq!(
            restore_requires_python("Name: a\n", ">=3.12"),
            "Name: a\nRequires-Python: >=3.12\n"
        );
    }

    #[test]
    fn metadata_headers_are_read_until_the_body() {
        let m = parse_metadata(
            "Metadata-Version: 2.4\nName: pydantic\nVersion: 2.14.4\nRequires-Dist: \
             typing-extensions>=4.16.0\nRequires-Dist: email-validator>=2.0.0; extra == \
             \"email\"\n\nRequires-Dist: not-a-header\n",
        )
        .unwrap();
        assert_eq!(m.name, "pydantic");
        assert_eq!(m.version, "2.14.4");
        assert_eq!(m.requires.len(), 2);
    }

    #[test]
    fn host_extension_suffixes_become_the_guests() {
        assert_eq!(
            guest_name("msgpack/_cmsgpack.cpython-311-x86_64-linux-gnu.so", b""),
            "msgpack/_cmsgpack.cpython-314-wasm32-wasi.so"
        );
        assert_eq!(guest_name("a/b.abi3.so", b""), "a/b.abi3.so");
        assert_eq!(guest_name("a/libfoo.so", b""), "a/libfoo.so");
        // A bare `.so` is an extension module when it exports its init
        // function (a module exporting `PyInit_cells` and nothing else).
        let module = |export: &str| {
            // (module (func) (export "<export>" (func 0))), by hand.
            let mut m = b"\0asm\x01\0\0\0\x01\x04\x01\x60\0\0\x03\x02\x01\0".to_vec();
            m.extend([7, 4 + export.len() as u8, 1, export.len() as u8]);
            m.extend(export.as_bytes());
            m.extend([0, 0, 10, 4, 1, 2, 0, 0x0b]);
            m
        };
        assert_eq!(
            guest_name("h3/_cy/cells.so", &module("PyInit_cells")),
            "h3/_cy/cells.cpython-314-wasm32-wasi.so"
        );
        assert_eq!(
            guest_name("h3/_cy/cells.so", &module("h3_cells")),
            "h3/_cy/cells.so"
        );
    }

    #[test]
    fn record_hashes_are_unpadded_urlsafe_base64() {
        assert_eq!(urlsafe_b64(b"\xfb\xff"), "-_8");
        assert_eq!(urlsafe_b64(b"abc"), "YWJj");
    }
}
