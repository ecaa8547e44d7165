//! The module init function (`PyInit_<module>`) an extension defines, and
//! the file name it is installed under: shared by the Rust (`ext.rs`) and
//! C (`cext.rs`) extension builds.

use anyhow::{Result, bail};
use eryx_linker::layout::{ABI3_SUFFIX, EXTENSION_SUFFIX};

/// The `PyInit_*` symbols named in a static library (its archive symbol
/// table and object files hold them as NUL- or otherwise-delimited strings).
pub(crate) fn init_symbols(archive: &[u8]) -> Vec<String> {
    const PREFIX: &[u8] = b"PyInit_";
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(pos) = archive[i..].windows(PREFIX.len()).position(|w| w == PREFIX) {
        let start = i + pos;
        let end = archive[start..]
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
            .map_or(archive.len(), |n| start + n);
        if end > start + PREFIX.len() {
            let name = String::from_utf8_lossy(&archive[start..end]).into_owned();
            if !found.contains(&name) {
                found.push(name);
            }
        }
        i = end.max(start + 1);
    }
    found
}

/// The one init function among `found`, or an error naming `what` (the
/// crate or source path) and `how` to define one.
pub(crate) fn the_one(found: &[String], what: &str, how: &str) -> Result<String> {
    match found {
        [one] => Ok(one.clone()),
        [] => bail!("{what} defines no `PyInit_<module>` function: {how}"),
        many => bail!(
            "{what} defines several module init functions ({}); build one module at a time",
            many.join(", ")
        ),
    }
}

/// The file an extension module installs as: `<module>.abi3.so` for the
/// limited API, else `<module>.cpython-314-wasm32-wasi.so`.
pub(crate) fn module_file(module: &str, limited_api: bool) -> String {
    let suffix = if limited_api {
        ABI3_SUFFIX
    } else {
        EXTENSION_SUFFIX
    };
    format!("{module}{suffix}")
}
