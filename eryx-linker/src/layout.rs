//! The guest's file-system layout and CPython 3.14's names for WASI: the one
//! definition the host crates use, and that `cargo xtask codegen` copies into
//! the guest runtime (`eryx-runtime/src/world.rs`).

/// The standard library's directory relative to the guest root (and inside
/// a dist bundle): the layout CPython's `getpath` expects under
/// [`GUEST_HOME`].
macro_rules! stdlib_rel {
    () => {
        "python/lib/python3.14"
    };
}

/// `sys.prefix` of the guest.
pub const GUEST_HOME: &str = "/python";

/// Where the guest sees the standard library (read-only).
pub const GUEST_STDLIB: &str = concat!("/", stdlib_rel!());

/// Where the standard library sits inside a dist bundle.
pub const STDLIB_DIR: &str = stdlib_rel!();

/// Where package files appear in the guest (read-only, on `sys.path`).
pub const SITE_PACKAGES: &str = "/site-packages";

/// The file-name suffix of a full-API extension module for CPython 3.14 on
/// WASI (`<module>.cpython-314-wasm32-wasi.so`).
pub const EXTENSION_SUFFIX: &str = ".cpython-314-wasm32-wasi.so";

/// The file-name suffix of a stable-ABI (limited API) extension module.
pub const ABI3_SUFFIX: &str = ".abi3.so";

/// The suffixes CPython 3.14 for WASI imports extension modules from.
pub const EXTENSION_SUFFIXES: &[&str] = &[EXTENSION_SUFFIX, ABI3_SUFFIX];

/// Python that makes the guest's bytecode writer write whole files, for
/// every guest-side compile step (the stdlib at dist time, wheels, package
/// sets). importlib writes a `.pyc` with one `write` and gives up when it
/// comes back short, which WASI writes to a mounted directory do past
/// ~4 KiB, so every larger `.pyc` would be skipped; a buffered file loops
/// until all is written. Needs `os` imported; run it before compiling.
pub const PYC_WRITE_ALL: &str = r#"
import importlib._bootstrap_external as _bootstrap_external
def _write_all(path, data, mode=0o666):
    tmp = f"{path}.{id(path)}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
_bootstrap_external._write_atomic = _write_all
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdlib_paths_agree() {
        assert_eq!(GUEST_STDLIB.strip_prefix('/'), Some(STDLIB_DIR));
        assert!(GUEST_STDLIB.starts_with(GUEST_HOME));
    }
}
