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

/// Writes `contents` to `path` so that a process reading it meanwhile
/// sees the old file or the new one, never a truncated one: the wheel
/// builder's shared files (the compiler configuration, the cross files, the
/// compiler scripts) are rewritten by every build, and the tests run
/// several builds at once. A file that already holds `contents` is left
/// alone. `mode` is the new file's Unix permission bits.
pub(crate) fn write_shared(path: &Path, contents: impl AsRef<[u8]>, mode: u32) -> Result<()> {
    let contents = contents.as_ref();
    if std::fs::read(path).is_ok_and(|old| old == contents) {
        return Ok(());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, contents)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
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
    write_shared(
        &path,
        format!(
            "#!/bin/sh\n# Written by `cargo xtask wheel` (eryx): {purpose}.\n\
             exec '{quoted}' {subcommand} \"$@\"\n"
        ),
        0o755,
    )?;
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

    #[test]
    fn a_shared_file_in_a_missing_directory_is_an_error_naming_it() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("no-such-dir");
        let err = write_shared(&dir.join("cc.json"), "{}", 0o644).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot create a file in {}", dir.display())
        );
    }

    #[test]
    fn a_shared_file_being_rewritten_is_never_seen_truncated() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("cc.json");
        let a = vec![b'a'; 64 << 10];
        let b = vec![b'b'; 96 << 10];
        write_shared(&path, &a, 0o644).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..200 {
                    write_shared(&path, if i % 2 == 0 { &b } else { &a }, 0o644).unwrap();
                }
            });
            for _ in 0..2000 {
                let seen = std::fs::read(&path).unwrap();
                assert!(seen == a || seen == b, "a reader saw {} bytes", seen.len());
            }
        });
        // Nothing left behind but the file itself.
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_shared_file_with_the_same_contents_is_left_alone() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("eryx-wasm-cc");
        write_shared(&path, "#!/bin/sh\n", 0o755).unwrap();
        let before = std::fs::metadata(&path).unwrap();
        assert_eq!(before.permissions().mode() & 0o777, 0o755);
        write_shared(&path, "#!/bin/sh\n", 0o755).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), before.ino());
        write_shared(&path, "#!/bin/sh\nexit 1\n", 0o755).unwrap();
        assert_ne!(std::fs::metadata(&path).unwrap().ino(), before.ino());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "#!/bin/sh\nexit 1\n"
        );
    }
}
