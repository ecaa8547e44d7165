//! Bytecode for packages that ship none.
//!
//! `/site-packages` is read-only in the guest, so Python sources without a
//! `.pyc` beside them would be compiled again on every run (a second or
//! more for a package like pydantic). When several packages or wheels are
//! merged into the sandbox's private `/site-packages`, the sources that
//! lack bytecode are compiled once by the guest's own CPython (only it
//! writes bytecode its version accepts), in a helper sandbox that sees the
//! merged directory read-write; the resulting `.pyc` files are kept in the
//! cache (`<cache>/pyc/<key>/`, keyed by the bundle and the sources'
//! contents) and linked into later merges of the same sources.
//!
//! Best effort: if compiling fails, the sandbox is built without the
//! bytecode (imports are slower, nothing else changes).

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::engine::{CacheDir, Progress};
use crate::mount::Access;
use crate::sandbox::SandboxBuilder;

/// Where the helper sandbox sees the merged directory.
const MOUNT: &str = "/build/site-packages";

/// The compile step run in the guest (see `PYC_WRITE_ALL` for why the
/// bytecode writer is replaced).
fn compile_code() -> String {
    format!(
        r#"
import compileall, os, py_compile
{write_all}
compileall.compile_dir("{MOUNT}", ddir="{site}", quiet=2, workers=1,
    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
"#,
        write_all = eryx_linker::layout::PYC_WRITE_ALL,
        site = eryx_linker::layout::SITE_PACKAGES,
    )
}

/// The `.pyc` path (relative) for a source path (relative).
fn pyc_for(source: &Path) -> Option<PathBuf> {
    let stem = source.file_stem()?.to_str()?;
    let dir = source.parent().unwrap_or(Path::new(""));
    Some(
        dir.join("__pycache__")
            .join(format!("{stem}.cpython-314.pyc")),
    )
}

fn sources_without_bytecode(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => walk(root, &p, out),
                Ok(t) if t.is_file() && p.extension().is_some_and(|x| x == "py") => {
                    if let Ok(rel) = p.strip_prefix(root)
                        && let Some(pyc) = pyc_for(rel)
                        && !root.join(&pyc).is_file()
                    {
                        out.push(rel.to_path_buf());
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

/// Links (or copies) `from` to `to`, creating the parent directory.
fn place(from: &Path, to: &Path) -> bool {
    if let Some(parent) = to.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::hard_link(from, to).is_ok() || std::fs::copy(from, to).is_ok()
}

/// Adds bytecode to the merged `site` directory for every source that has
/// none, from the cache or compiled in the guest.
pub(crate) async fn ensure(
    site: &Path,
    bundle_dir: &Path,
    bundle_identity: &str,
    cache: &CacheDir,
    progress: &Progress,
) {
    let missing = sources_without_bytecode(site);
    if missing.is_empty() {
        return;
    }
    let mut h = Sha256::new();
    h.update(bundle_identity.as_bytes());
    for rel in &missing {
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        if let Ok(bytes) = std::fs::read(site.join(rel)) {
            h.update(Sha256::digest(&bytes));
        }
    }
    let key = hex::encode(h.finalize());
    let cached = match cache {
        CacheDir::Dir(d) => Some(d.join("pyc").join(&key)),
        CacheDir::Disabled => None,
    };
    if let Some(c) = &cached
        && c.join("DONE").is_file()
    {
        for rel in &missing {
            if let Some(pyc) = pyc_for(rel)
                && c.join(&pyc).is_file()
            {
                place(&c.join(&pyc), &site.join(&pyc));
            }
        }
        return;
    }
    progress(&format!(
        "compiling the bytecode of {} package source files (once; cached)",
        missing.len()
    ));
    let mut builder = SandboxBuilder::new()
        .bundle(bundle_dir)
        .mount(MOUNT, site, Access::ReadWrite)
        .timeout(Duration::from_secs(300));
    builder = match cache {
        CacheDir::Dir(d) => builder.cache_dir(d),
        CacheDir::Disabled => builder.no_cache(),
    };
    // The helper has no packages, so this does not recurse further.
    let compiled = match Box::pin(builder.build()).await {
        Ok(mut sb) => sb.execute(&compile_code()).await.is_ok(),
        Err(_) => false,
    };
    if !compiled {
        progress("compiling the packages' bytecode failed; continuing without it");
        return;
    }
    if let Some(c) = cached {
        for rel in &missing {
            if let Some(pyc) = pyc_for(rel)
                && site.join(&pyc).is_file()
            {
                place(&site.join(&pyc), &c.join(&pyc));
            }
        }
        let _ = std::fs::write(c.join("DONE"), b"");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyc_paths_follow_pep_3147() {
        assert_eq!(
            pyc_for(Path::new("pkg/mod.py")).unwrap(),
            Path::new("pkg/__pycache__/mod.cpython-314.pyc")
        );
        assert_eq!(
            pyc_for(Path::new("top.py")).unwrap(),
            Path::new("__pycache__/top.cpython-314.pyc")
        );
    }

    #[test]
    fn only_sources_without_bytecode_are_listed() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/__pycache__")).unwrap();
        std::fs::write(d.path().join("a/x.py"), "1").unwrap();
        std::fs::write(d.path().join("a/y.py"), "2").unwrap();
        std::fs::write(d.path().join("a/__pycache__/x.cpython-314.pyc"), "").unwrap();
        assert_eq!(
            sources_without_bytecode(d.path()),
            vec![PathBuf::from("a/y.py")]
        );
    }
}
