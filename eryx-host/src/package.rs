//! Packages: assembling `/site-packages` from directories and wheels, and
//! finding the extension modules to link.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use eryx_linker::{EXTENSION_SUFFIXES, Extension, SITE_PACKAGES};

use crate::Error;

/// Calls `visit(path, relative path)` for every regular file under `root`,
/// in a stable (sorted) order; links are not followed.
fn walk_files(
    root: &Path,
    visit: &mut dyn FnMut(&Path, &Path) -> Result<(), Error>,
) -> Result<(), Error> {
    fn walk(
        root: &Path,
        dir: &Path,
        visit: &mut dyn FnMut(&Path, &Path) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let io = |source| Error::Package {
            path: dir.to_path_buf(),
            source,
        };
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .collect::<Result<_, _>>()
            .map_err(io)?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let kind = entry.file_type().map_err(io)?;
            if kind.is_dir() {
                walk(root, &path, visit)?;
            } else if kind.is_file() {
                visit(&path, path.strip_prefix(root).unwrap_or(&path))?;
            }
        }
        Ok(())
    }
    walk(root, root, visit)
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Package {
        path: path.to_path_buf(),
        source,
    })
}

/// Every extension module under `dir`, validated, with its guest path.
pub(crate) fn extensions(dir: &Path) -> Result<Vec<Extension>, Error> {
    let mut out = Vec::new();
    walk_files(dir, &mut |path, rel| {
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let looks_native =
            name.ends_with(".so") || EXTENSION_SUFFIXES.iter().any(|s| name.ends_with(s));
        if !looks_native {
            return Ok(());
        }
        let rel: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let guest = format!("{SITE_PACKAGES}/{}", rel.join("/"));
        let bytes = read(path)?;
        out.push(if eryx_linker::is_library_name(&name) {
            Extension::library(guest, bytes)?
        } else {
            Extension::new(guest, bytes)?
        });
        Ok(())
    })?;
    Ok(out)
}

/// Total bytes a set of packages may unpack to (a guard against zip bombs).
const MAX_UNPACKED: u64 = 2 << 30;

/// The host directory mounted at `/site-packages`, if any.
#[derive(Debug)]
pub(crate) enum SitePackages {
    /// No packages.
    None,
    /// One directory, mounted as it is.
    Dir(PathBuf),
    /// Several packages or wheels, merged into a private directory that
    /// lives as long as the sandboxes using it.
    Merged(tempfile::TempDir),
}

impl SitePackages {
    /// The directory to mount.
    pub(crate) fn dir(&self) -> Option<&Path> {
        match self {
            SitePackages::None => None,
            SitePackages::Dir(d) => Some(d),
            SitePackages::Merged(t) => Some(t.path()),
        }
    }

    /// Builds the view of `packages`.
    pub(crate) fn assemble(packages: &[PathBuf]) -> Result<SitePackages, Error> {
        match packages {
            [] => return Ok(SitePackages::None),
            [dir] if dir.is_dir() => return Ok(SitePackages::Dir(dir.clone())),
            _ => {}
        }
        let merged = tempfile::Builder::new()
            .prefix("eryx-site-")
            .tempdir()
            .map_err(|source| Error::Package {
                path: std::env::temp_dir(),
                source,
            })?;
        let mut owners = std::collections::HashMap::new();
        let mut total = 0u64;
        for package in packages {
            if package.is_dir() {
                merge_dir(package, package, merged.path(), &mut owners)?;
            } else if package.extension().is_some_and(|e| e == "whl") {
                unpack_wheel(package, merged.path(), &mut owners, &mut total)?;
            } else {
                return Err(Error::BadPackage {
                    path: package.clone(),
                    reason: "not a directory or a .whl file".to_string(),
                });
            }
        }
        Ok(SitePackages::Merged(merged))
    }
}

/// Records that `rel` comes from `package`; two packages may not ship the same file.
fn claim(
    owners: &mut std::collections::HashMap<PathBuf, PathBuf>,
    rel: &Path,
    package: &Path,
) -> Result<(), Error> {
    if let Some(first) = owners.insert(rel.to_path_buf(), package.to_path_buf()) {
        return Err(Error::BadPackage {
            path: package.to_path_buf(),
            reason: format!(
                "it ships `{}`, which {} ships too",
                rel.display(),
                first.display()
            ),
        });
    }
    Ok(())
}

fn merge_dir(
    package: &Path,
    dir: &Path,
    dest: &Path,
    owners: &mut std::collections::HashMap<PathBuf, PathBuf>,
) -> Result<(), Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Package { path, source }
    };
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let rel = path.strip_prefix(package).unwrap_or(&path).to_path_buf();
        let kind = entry.file_type().map_err(io(&path))?;
        if kind.is_dir() {
            std::fs::create_dir_all(dest.join(&rel)).map_err(io(&path))?;
            merge_dir(package, &path, dest, owners)?;
        } else if kind.is_file() {
            claim(owners, &rel, package)?;
            let target = dest.join(&rel);
            if std::fs::hard_link(&path, &target).is_err() {
                std::fs::copy(&path, &target).map_err(io(&path))?;
            }
        }
        // Links inside a package directory are skipped: the guest must not
        // be able to follow them out of the package.
    }
    Ok(())
}

fn unpack_wheel(
    wheel: &Path,
    dest: &Path,
    owners: &mut std::collections::HashMap<PathBuf, PathBuf>,
    total: &mut u64,
) -> Result<(), Error> {
    let bad = |reason: String| Error::BadPackage {
        path: wheel.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(wheel).map_err(|source| Error::Package {
        path: wheel.to_path_buf(),
        source,
    })?;
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| bad(format!("not a valid wheel (zip): {e}")))?;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| bad(format!("entry {i}: {e}")))?;
        let name = entry.name().to_string();
        let rel = PathBuf::from(&name);
        if name.starts_with('/') || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(bad(format!(
                "entry `{name}` escapes the package (absolute or `..`)"
            )));
        }
        if entry.is_symlink() {
            return Err(bad(format!("entry `{name}` is a link")));
        }
        if entry.is_dir() {
            std::fs::create_dir_all(dest.join(&rel)).map_err(|source| Error::Package {
                path: dest.join(&rel),
                source,
            })?;
            continue;
        }
        claim(owners, &rel, wheel)?;
        *total = total.saturating_add(entry.size());
        if *total > MAX_UNPACKED {
            return Err(bad(format!("it unpacks to more than {MAX_UNPACKED} bytes")));
        }
        let target = dest.join(&rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|source| Error::Package {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let mut bytes = Vec::with_capacity(entry.size().min(1 << 24) as usize);
        (&mut entry)
            .take(MAX_UNPACKED + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("entry `{name}`: {e}")))?;
        if bytes.len() as u64 != entry.size() {
            return Err(bad(format!(
                "entry `{name}` is not the size its header says"
            )));
        }
        std::fs::write(&target, &bytes).map_err(|source| Error::Package {
            path: target.clone(),
            source,
        })?;
    }
    Ok(())
}

/// A content hash of every file under `dir` (relative paths and bytes).
pub(crate) fn content_hash(dir: &Path) -> Result<String, Error> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    walk_files(dir, &mut |path, rel| {
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        let bytes = read(path)?;
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
        Ok(())
    })?;
    Ok(hex::encode(h.finalize()))
}
