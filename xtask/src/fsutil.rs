//! File helpers shared by the xtask steps.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Hard-links `from` to `to`, or copies it where linking is not possible.
pub(crate) fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}

/// Recreates the directory tree `from` at `to`, linking or copying files.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &target)?;
        } else {
            link_or_copy(&e.path(), &target)?;
        }
    }
    Ok(())
}

/// Writes an executable `/bin/sh` script `dir/name` that runs this xtask
/// binary's `subcommand` with the script's arguments (the `cargo`, `cc` and
/// `c++` a package build runs); `purpose` goes into its comment line.
pub(crate) fn write_xtask_script(
    dir: &Path,
    name: &str,
    purpose: &str,
    xtask: &Path,
    subcommand: &str,
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name);
    let quoted = xtask.display().to_string().replace('\'', r"'\''");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\n# Written by `cargo xtask wheel` (eryx): {purpose}.\n\
             exec '{quoted}' {subcommand} \"$@\"\n"
        ),
    )?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(path)
}
