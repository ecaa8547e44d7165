//! numpy's C headers as the guest sees them.
//!
//! A package that compiles against numpy (pandas, scikit-learn, anything
//! with `cimport numpy`) finds numpy's include directory by importing numpy
//! in its build environment: the *host's* numpy, whose
//! `numpy/_numpyconfig.h` records the host's type sizes (`NPY_SIZEOF_LONG
//! 8` on x86-64, 4 on wasm32). Compiled for the guest with those, `npy_int64`
//! becomes a 32-bit `long`, and the first typed buffer fails at import with
//! "Buffer dtype mismatch, expected 'const int64_t' but got 'long long'" (or
//! worse, reads the wrong bytes). So the cross compiler replaces such an
//! include directory with a copy whose `_numpyconfig.h` has wasm32's sizes;
//! everything else in numpy's headers does not depend on the platform.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// `NPY_SIZEOF_*` for wasm32 (clang's `wasm32-wasip2` ABI, as numpy's own
/// guest build measures them), and `NPY_NO_SMP` (the guest has no threads).
const GUEST_DEFINES: &[(&str, &str)] = &[
    ("NPY_SIZEOF_SHORT", "2"),
    ("NPY_SIZEOF_INT", "4"),
    ("NPY_SIZEOF_LONG", "4"),
    ("NPY_SIZEOF_FLOAT", "4"),
    ("NPY_SIZEOF_COMPLEX_FLOAT", "8"),
    ("NPY_SIZEOF_DOUBLE", "8"),
    ("NPY_SIZEOF_COMPLEX_DOUBLE", "16"),
    ("NPY_SIZEOF_LONGDOUBLE", "16"),
    ("NPY_SIZEOF_COMPLEX_LONGDOUBLE", "32"),
    ("NPY_SIZEOF_PY_INTPTR_T", "4"),
    ("NPY_SIZEOF_INTP", "4"),
    ("NPY_SIZEOF_UINTP", "4"),
    ("NPY_SIZEOF_WCHAR_T", "4"),
    ("NPY_SIZEOF_OFF_T", "8"),
    ("NPY_SIZEOF_PY_LONG_LONG", "8"),
    ("NPY_SIZEOF_LONGLONG", "8"),
    ("NPY_NO_SMP", "1"),
];

/// `_numpyconfig.h` with the guest's values; `None` when it already has
/// them (numpy's own guest build, or an include directory fixed before).
pub(crate) fn guest_config(host: &str) -> Option<String> {
    let mut changed = false;
    let mut out = String::with_capacity(host.len());
    for line in host.lines() {
        let mut words = line.split_whitespace();
        let fixed = match (words.next(), words.next(), words.next()) {
            (Some("#define"), Some(name), Some(value)) => GUEST_DEFINES
                .iter()
                .find(|(n, _)| *n == name)
                .filter(|(_, v)| *v != value)
                .map(|(n, v)| format!("#define {n} {v}")),
            _ => None,
        };
        changed |= fixed.is_some();
        out.push_str(fixed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    changed.then_some(out)
}

/// The include directory to compile with instead of `dir`, when `dir` is a
/// numpy include directory made for another platform: a copy under `cache`
/// (made once per source directory, atomically, as compiles run in
/// parallel) with the guest's `_numpyconfig.h`.
pub(crate) fn guest_dir(dir: &Path, cache: &Path) -> Result<Option<PathBuf>> {
    let config = dir.join("numpy").join("_numpyconfig.h");
    let Ok(text) = std::fs::read_to_string(&config) else {
        return Ok(None);
    };
    let Some(fixed) = guest_config(&text) else {
        return Ok(None);
    };
    let key = Sha256::digest(format!("{}\n{text}", dir.display()));
    let dest = cache.join(&format!("{key:x}")[..16]);
    if dest.join("numpy").join("_numpyconfig.h").is_file() {
        return Ok(Some(dest));
    }
    let tmp = cache.join(format!(".tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    crate::fsutil::copy_tree(&dir.join("numpy"), &tmp.join("numpy"))
        .with_context(|| format!("copying numpy's headers from {}", dir.display()))?;
    // The copy's files may be hard links to the host's: replace, not write.
    let config = tmp.join("numpy").join("_numpyconfig.h");
    std::fs::remove_file(&config)?;
    std::fs::write(&config, fixed)?;
    if std::fs::rename(&tmp, &dest).is_err() {
        // Another compile made it first.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(Some(dest))
}

/// The command line with every foreign numpy include directory (`-IDIR`,
/// `-I DIR`, `-isystem DIR`) replaced by its guest copy.
pub(crate) fn rewrite_args(args: &[String], cache: &Path) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.iter();
    while let Some(a) = iter.next() {
        let (flag, dir) = match a.as_str() {
            "-I" | "-isystem" | "-iquote" | "-idirafter" => match iter.next() {
                Some(d) => (a.as_str(), d.as_str()),
                None => {
                    out.push(a.clone());
                    continue;
                }
            },
            _ => match a.strip_prefix("-I") {
                Some(d) => ("-I", d),
                None => {
                    out.push(a.clone());
                    continue;
                }
            },
        };
        let dir = match guest_dir(Path::new(dir), cache)? {
            Some(guest) => guest.display().to_string(),
            None => dir.to_string(),
        };
        if a.starts_with("-I") && a.len() > 2 {
            out.push(format!("-I{dir}"));
        } else {
            out.push(flag.to_string());
            out.push(dir);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "#define NPY_HAVE_ENDIAN_H 1\n\n#define NPY_SIZEOF_SHORT 2\n\
        #define NPY_SIZEOF_LONG 8\n#define NPY_SIZEOF_INTP 8\n#define NPY_SIZEOF_PY_INTPTR_T 8\n\
        #define NPY_NO_SMP 0\n#define NPY_API_VERSION 0x00000014\n";

    #[test]
    fn host_sizes_become_wasm32_sizes_and_the_rest_stays() {
        let g = guest_config(HOST).unwrap();
        assert!(g.contains("#define NPY_SIZEOF_LONG 4\n"), "{g}");
        assert!(g.contains("#define NPY_SIZEOF_INTP 4\n"), "{g}");
        assert!(g.contains("#define NPY_SIZEOF_PY_INTPTR_T 4\n"), "{g}");
        assert!(g.contains("#define NPY_NO_SMP 1\n"), "{g}");
        assert!(g.contains("#define NPY_SIZEOF_SHORT 2\n"), "{g}");
        assert!(g.contains("#define NPY_API_VERSION 0x00000014\n"), "{g}");
        // The guest's own header needs nothing.
        assert_eq!(guest_config(&g), None);
    }

    #[test]
    fn a_host_numpy_include_dir_is_swapped_for_a_guest_copy() {
        let host = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(host.path().join("numpy/random")).unwrap();
        std::fs::write(host.path().join("numpy/_numpyconfig.h"), HOST).unwrap();
        std::fs::write(host.path().join("numpy/random/bitgen.h"), "x").unwrap();
        let cache = tempfile::tempdir().unwrap();
        let h = host.path().display().to_string();
        let args: Vec<String> = ["-c", "a.c", &format!("-I{h}"), "-isystem", &h, "-Isrc"]
            .map(String::from)
            .to_vec();
        let out = rewrite_args(&args, cache.path()).unwrap();
        let guest = out[2].strip_prefix("-I").unwrap();
        assert!(
            guest.starts_with(&cache.path().display().to_string()),
            "{out:?}"
        );
        assert_eq!(out[3], "-isystem");
        assert_eq!(out[4], guest);
        assert_eq!(out[5], "-Isrc");
        let cfg = std::fs::read_to_string(Path::new(guest).join("numpy/_numpyconfig.h")).unwrap();
        assert!(cfg.contains("NPY_SIZEOF_LONG 4"));
        assert!(Path::new(guest).join("numpy/random/bitgen.h").is_file());
        // The host's headers are untouched.
        let host_cfg = std::fs::read_to_string(host.path().join("numpy/_numpyconfig.h")).unwrap();
        assert_eq!(host_cfg, HOST);
    }
}
