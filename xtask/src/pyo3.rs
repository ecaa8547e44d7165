//! PyO3's cross-compilation configuration for CPython 3.14 on WASI, derived
//! from the guest stdlib's `_sysconfigdata__wasi_wasm32-wasi.py` (the build
//! variables of the very CPython the extensions will be loaded into).
//!
//! PyO3 reads it through `PYO3_CONFIG_FILE`; no Python interpreter for the
//! target is needed. Link lines are suppressed: the extension's CPython
//! symbols stay imports that `libpython3.14.so` satisfies when eryx links
//! the component.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::fetch;
use eryx_linker::bundle::Role;

/// The name of the build-variables module in the WASI stdlib.
const SYSCONFIGDATA: &str = "_sysconfigdata__wasi_wasm32-wasi.py";

/// One value of the `build_time_vars` dict (`'KEY': value,`), as written.
fn raw_value<'a>(source: &'a str, key: &str) -> Option<&'a str> {
    let needle = format!("'{key}': ");
    let start = source.find(&needle)? + needle.len();
    let rest = &source[start..];
    let end = rest.find([',', '\n', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

fn int_value(source: &str, key: &str) -> Result<i64> {
    raw_value(source, key)
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("{SYSCONFIGDATA} has no integer `{key}`"))
}

/// The PyO3 configuration for the guest's CPython, from sysconfigdata text.
pub(crate) fn config_from_sysconfigdata(source: &str) -> Result<String> {
    let version = raw_value(source, "VERSION")
        .map(|v| v.trim_matches('\'').to_string())
        .with_context(|| format!("{SYSCONFIGDATA} has no `VERSION`"))?;
    let pointer_width = int_value(source, "SIZEOF_VOID_P")? * 8;
    let mut flags = Vec::new();
    if int_value(source, "Py_GIL_DISABLED").unwrap_or(0) != 0 {
        flags.push("Py_GIL_DISABLED");
    }
    if int_value(source, "Py_DEBUG").unwrap_or(0) != 0 {
        flags.push("Py_DEBUG");
    }
    if !version.starts_with("3.") {
        bail!("{SYSCONFIGDATA} says VERSION = {version}: not a CPython 3 build");
    }
    Ok(format!(
        "implementation=CPython\nversion={version}\nshared=true\npointer_width={pointer_width}\n\
         build_flags={}\nsuppress_build_script_link_lines=true\n",
        flags.join(",")
    ))
}

/// Writes the configuration to `target/wasm/pyo3-config.txt` (fetching the
/// CPython build first if needed) and returns its path.
pub(crate) fn config_file(root: &Path) -> Result<PathBuf> {
    let record = fetch::fetch(root)?;
    let stdlib = record
        .files
        .iter()
        .find(|f| f.role == Role::Stdlib)
        .context("the fetch record has no stdlib")?;
    let path = fetch::fetch_dir(root)
        .join(&stdlib.path)
        .join(SYSCONFIGDATA);
    let source = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let config = config_from_sysconfigdata(&source)?;
    let out = root.join("target/wasm/pyo3-config.txt");
    std::fs::create_dir_all(out.parent().expect("has a parent"))?;
    if std::fs::read_to_string(&out).ok().as_deref() != Some(config.as_str()) {
        std::fs::write(&out, &config)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_wasi_build_variables() {
        let src = "build_time_vars = {'ABIFLAGS': '',\n 'Py_DEBUG': 0,\n 'Py_GIL_DISABLED': 0,\n \
                   'SIZEOF_VOID_P': 4,\n 'VERSION': '3.14',\n}";
        let config = config_from_sysconfigdata(src).unwrap();
        assert!(config.contains("version=3.14\n"), "{config}");
        assert!(config.contains("pointer_width=32\n"), "{config}");
        assert!(config.contains("build_flags=\n"), "{config}");
        assert!(
            config.contains("suppress_build_script_link_lines=true"),
            "{config}"
        );
        assert!(config_from_sysconfigdata("{}").is_err());
    }
}
