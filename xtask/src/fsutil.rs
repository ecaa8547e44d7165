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
/// When `to` lies inside `from` (`cargo xtask wheel .` with `--work` in
/// the project), it is left out of the copy instead of copied into itself
/// without end.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    let skip = to.canonicalize()?;
    copy_tree_except(from, to, &skip)
}

fn copy_tree_except(from: &Path, to: &Path, skip: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            if e.path().canonicalize().is_ok_and(|p| p == skip) {
                continue;
            }
            copy_tree_except(&e.path(), &target, skip)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destination_inside_the_source_is_not_copied_into_itself() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("project");
        std::fs::create_dir_all(src.join("pkg")).unwrap();
        std::fs::write(src.join("pkg/m.py"), "X = 1\n").unwrap();
        std::fs::write(src.join("setup.py"), "").unwrap();
        let dest = src.join("build/src/project");
        copy_tree(&src, &dest).unwrap();
        assert!(dest.join("pkg/m.py").is_file() && dest.join("setup.py").is_file());
        assert!(!dest.join("build/src/project").exists());
    }
}
