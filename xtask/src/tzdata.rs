//! The IANA time zone database for `zoneinfo`.
//!
//! WASI has no `/usr/share/zoneinfo`, so `zoneinfo.ZoneInfo("Europe/Paris")`
//! (and everything built on it: `datetime` with real zones, pandas,
//! pydantic's time zone fields) falls back to the `tzdata` package, which
//! the componentize-py build does not carry. `cargo xtask dist` takes the
//! pinned `tzdata` wheel from PyPI (pure Python and data, checked against
//! its sha256) and unpacks its package and `.dist-info` into the bundle's
//! standard library directory, where the stdlib bytecode step compiles it
//! with the rest.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use eryx_linker::bundle::{FileEntry, Role, sha256_hex};

/// The pinned release (the IANA release it packages).
pub(crate) const VERSION: &str = "2026.6";
const WHEEL: &str = "tzdata-2026.6-py2.py3-none-any.whl";
/// Its sha256 (PyPI's).
pub(crate) const WHEEL_SHA256: &str =
    "0a10eec6e13ef16b627fabed9a5f2ba61a62b1c67f327305f4e7e412a70b4aec";

/// Makes sure the pinned wheel is in `target/fetch/tzdata`; returns its path.
pub(crate) fn fetch(root: &Path) -> Result<PathBuf> {
    crate::fetch::pinned_wheel(
        &root.join("target/fetch/tzdata"),
        WHEEL,
        WHEEL_SHA256,
        &[&format!("tzdata=={VERSION}")],
        &format!("tzdata {VERSION} (the IANA time zone database, 0.3 MB)"),
    )
}

/// Unpacks the wheel's `tzdata/` package and its `.dist-info` into the
/// stdlib directory `stdlib` (whose bundle path is `stdlib_path`); returns
/// the manifest entry.
pub(crate) fn install(wheel: &Path, stdlib: &Path, stdlib_path: &str) -> Result<FileEntry> {
    let bytes = std::fs::read(wheel)?;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&bytes))
        .with_context(|| format!("{} is not a zip archive", wheel.display()))?;
    let dist_info = format!("tzdata-{VERSION}.dist-info/");
    let mut size = 0u64;
    let mut zones = 0usize;
    for i in 0..zip.len() {
        let mut file = zip.by_index(i)?;
        if file.is_dir() {
            continue;
        }
        let name = file.name().to_string();
        if !name.starts_with("tzdata/") && !name.starts_with(&dist_info) {
            continue;
        }
        let rel = file
            .enclosed_name()
            .with_context(|| format!("the tzdata wheel has an unsafe path: {name}"))?;
        let out = stdlib.join(rel);
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut data = Vec::with_capacity(file.size() as usize);
        file.read_to_end(&mut data)?;
        std::fs::write(&out, &data).with_context(|| format!("writing {}", out.display()))?;
        size += data.len() as u64;
        if name.starts_with("tzdata/zoneinfo/") && !name.ends_with(".py") {
            zones += 1;
        }
    }
    if zones == 0 {
        bail!(
            "{} holds no tzdata/zoneinfo files: not the tzdata wheel; delete it and retry",
            wheel.display()
        );
    }
    Ok(FileEntry {
        name: "tzdata".to_string(),
        path: format!("{stdlib_path}/tzdata"),
        role: Role::Package,
        sha256: sha256_hex(&bytes),
        size,
        origin: format!("PyPI {WHEEL} (the IANA time zone database, for zoneinfo)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A wheel-shaped zip holding `files`.
    fn wheel(dir: &Path, files: &[(&str, &[u8])]) -> PathBuf {
        let path = dir.join("w.whl");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        for (name, data) in files {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap();
        path
    }

    #[test]
    fn installs_the_package_and_its_metadata_into_the_stdlib() {
        let tmp = tempfile::tempdir().unwrap();
        let dist_info = format!("tzdata-{VERSION}.dist-info/METADATA");
        let whl = wheel(
            tmp.path(),
            &[
                ("tzdata/__init__.py", b"IANA_VERSION = 'x'\n"),
                ("tzdata/zoneinfo/Europe/Paris", b"TZif2"),
                (&dist_info, b"Name: tzdata\n"),
                ("other/ignored.py", b""),
            ],
        );
        let stdlib = tmp.path().join("lib");
        let entry = install(&whl, &stdlib, "python/lib").unwrap();
        assert_eq!(entry.role, Role::Package);
        assert_eq!(entry.path, "python/lib/tzdata");
        assert_eq!(entry.size, 19 + 5 + 13);
        assert_eq!(entry.sha256, sha256_hex(&std::fs::read(&whl).unwrap()));
        assert!(stdlib.join("tzdata/zoneinfo/Europe/Paris").is_file());
        assert!(stdlib.join(&dist_info).is_file());
        assert!(!stdlib.join("other").exists());
    }

    #[test]
    fn a_wheel_without_zone_files_or_not_a_zip_is_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let whl = wheel(tmp.path(), &[("tzdata/__init__.py", b"")]);
        let err = install(&whl, &tmp.path().join("lib"), "lib").unwrap_err();
        assert!(
            err.to_string()
                .contains("holds no tzdata/zoneinfo files: not the tzdata wheel"),
            "{err}"
        );
        let junk = tmp.path().join("junk.whl");
        std::fs::write(&junk, b"not a zip").unwrap();
        let err = install(&junk, &tmp.path().join("lib"), "lib").unwrap_err();
        assert!(
            err.to_string().contains("junk.whl is not a zip archive"),
            "{err}"
        );
    }
}
