//! Package directories: finding the extension modules to link.

use std::path::Path;

use eryx_linker::{EXTENSION_SUFFIXES, Extension, SITE_PACKAGES};

use crate::Error;

fn walk(root: &Path, dir: &Path, out: &mut Vec<Extension>) -> Result<(), Error> {
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
            walk(root, &path, out)?;
        } else if kind.is_file() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let looks_native =
                name.ends_with(".so") || EXTENSION_SUFFIXES.iter().any(|s| name.ends_with(s));
            if looks_native {
                let rel = path.strip_prefix(root).unwrap_or(&path);
                let rel: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                let guest = format!("{SITE_PACKAGES}/{}", rel.join("/"));
                let bytes = std::fs::read(&path).map_err(|source| Error::Package {
                    path: path.clone(),
                    source,
                })?;
                out.push(Extension::new(guest, bytes)?);
            }
        }
    }
    Ok(())
}

/// Every extension module under `dir`, validated, with its guest path.
pub(crate) fn extensions(dir: &Path) -> Result<Vec<Extension>, Error> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    Ok(out)
}
