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
//! contents) and linked into later merges of the same sources. The cache
//! keeps the [`PYC_KEPT`] most recently used entries, together at most an
//! eighth of the cache's size cap (`ERYX_CACHE_MAX_MB`).
//!
//! Best effort: if compiling fails, the sandbox is built without the
//! bytecode (imports are slower, nothing else changes).

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::engine::{CacheDir, Progress};
use crate::mount::Access;
use crate::sandbox::SandboxBuilder;

/// How many bytecode entries (`<cache>/pyc/<key>/`) are kept.
const PYC_KEPT: usize = 32;

/// The file that says a bytecode entry is complete; touched on each use.
const DONE: &str = "DONE";

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
        && c.join(DONE).is_file()
    {
        // Marks the entry used, for pruning (least recently used first).
        let _ = std::fs::File::options()
            .append(true)
            .open(c.join(DONE))
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
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
        let _ = std::fs::write(c.join(DONE), b"");
        if let Some(root) = c.parent() {
            prune(root, &c, PYC_KEPT, crate::cache::max_bytes_from_env() / 8);
        }
    }
}

/// Keeps the most recently used bytecode entries under `root`: at most
/// `max_count`, together at most `max_bytes`, never `keep`. An entry still
/// being written (no `DONE` yet) counts as used when its directory last
/// changed.
fn prune(root: &Path, keep: &Path, max_count: usize, max_bytes: u64) {
    fn size(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .fold(0, |sum, e| {
                let add = match e.file_type() {
                    Ok(t) if t.is_dir() => size(&e.path()),
                    _ => e.metadata().map(|m| m.len()).unwrap_or(0),
                };
                sum.saturating_add(add)
            })
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let found = entries
        .flatten()
        .map(|e| {
            let dir = e.path();
            let done = dir.join(DONE);
            let used = crate::scratch::modified(if done.exists() { &done } else { &dir });
            (used, dir.clone(), size(&dir))
        })
        .collect();
    crate::scratch::prune_least_recent(found, keep, max_count, max_bytes, DONE);
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
    fn prune_keeps_the_most_recently_used_entries_and_the_one_in_use() {
        let root = tempfile::tempdir().unwrap();
        let day = std::time::Duration::from_secs(86_400);
        let old = std::time::SystemTime::now() - 10 * day;
        let entry = |name: &str, age_days: u32, bytes: usize, done: bool| {
            let dir = root.path().join(name);
            std::fs::create_dir_all(dir.join("pkg/__pycache__")).unwrap();
            std::fs::write(
                dir.join("pkg/__pycache__/m.cpython-314.pyc"),
                vec![0; bytes],
            )
            .unwrap();
            let stamp = old + day * (10 - age_days);
            if done {
                let f = std::fs::File::create(dir.join(DONE)).unwrap();
                f.set_modified(stamp).unwrap();
            } else {
                std::fs::File::open(&dir)
                    .unwrap()
                    .set_modified(stamp)
                    .unwrap();
            }
            dir
        };
        let newest = entry("a", 1, 10, true);
        let writing = entry("b", 2, 10, false);
        let older = entry("c", 3, 10, true);
        let in_use = entry("d", 9, 10, true);
        let oldest = entry("e", 8, 10, true);
        // Three kept by count: the one in use, then the newest two.
        prune(root.path(), &in_use, 3, u64::MAX);
        for (dir, kept) in [
            (&newest, true),
            (&writing, true),
            (&in_use, true),
            (&older, false),
            (&oldest, false),
        ] {
            assert_eq!(dir.exists(), kept, "{}", dir.display());
        }
        // By size: 25 bytes leave room for the one in use and one more.
        prune(root.path(), &in_use, 10, 25);
        assert!(in_use.exists() && newest.exists() && !writing.exists());
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
