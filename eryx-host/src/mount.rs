//! Host directories shown to the guest ([`crate::SandboxBuilder::mount`]).
//!
//! A mount is a WASI preopen: the guest reaches the directory's contents
//! only through it, `..` cannot climb above it, and links that point out of
//! it are not followed (wasmtime-wasi resolves every path beneath the
//! preopened handle). Paths outside every mount do not exist for the guest.

use std::path::{Component, Path, PathBuf};

use eryx_linker::layout::{GUEST_HOME, SITE_PACKAGES};

use crate::Error;
use crate::scratch::{GUEST_DEV, GUEST_TMP};

/// What the guest may do in a mounted directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// List and read files only.
    ReadOnly,
    /// Also create, write, rename and delete files and directories.
    ReadWrite,
}

/// A host directory and where the guest sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The absolute guest path, e.g. `/data`.
    pub guest: String,
    /// The host directory.
    pub host: PathBuf,
    /// What the guest may do there.
    pub access: Access,
}

impl Mount {
    /// Checks the mount: an absolute, plain guest path that overlaps neither
    /// eryx's own mounts nor `earlier` ones, and a host path that is a
    /// directory.
    pub(crate) fn check(&self, earlier: &[Mount]) -> Result<(), Error> {
        let bad = |reason: String| Error::BadMount {
            guest: self.guest.clone(),
            reason,
        };
        let path = Path::new(&self.guest);
        if !self.guest.starts_with('/') || self.guest == "/" {
            return Err(bad(
                "the guest path must be absolute and not `/` (e.g. `/data`)".into(),
            ));
        }
        if path
            .components()
            .skip(1)
            .any(|c| !matches!(c, Component::Normal(_)))
            || self.guest.ends_with('/')
        {
            return Err(bad(
                "the guest path must be plain (no `.`, `..` or trailing `/`)".into(),
            ));
        }
        for reserved in [GUEST_HOME, SITE_PACKAGES] {
            if overlaps(&self.guest, reserved) {
                return Err(bad(format!(
                    "it overlaps `{reserved}`, which eryx mounts itself; choose another guest path"
                )));
            }
        }
        if overlaps(&self.guest, GUEST_DEV) {
            return Err(bad(format!(
                "it overlaps `{GUEST_DEV}`, where the sandbox's `/dev/null` is; choose another guest path"
            )));
        }
        if self.guest != GUEST_TMP && overlaps(&self.guest, GUEST_TMP) {
            return Err(bad(format!(
                "it overlaps `{GUEST_TMP}`, the sandbox's scratch directory; mount at \
                 `{GUEST_TMP}` itself to replace it, or choose another guest path"
            )));
        }
        if let Some(other) = earlier.iter().find(|o| overlaps(&o.guest, &self.guest)) {
            return Err(bad(format!(
                "it overlaps the mount at `{}`; mounts may not nest",
                other.guest
            )));
        }
        if !self.host.is_dir() {
            return Err(bad(format!(
                "the host path {} is not a directory",
                self.host.display()
            )));
        }
        Ok(())
    }
}

/// Whether one of two absolute guest paths contains the other.
fn overlaps(a: &str, b: &str) -> bool {
    below(a, b).is_some() || below(b, a).is_some()
}

/// The part of the guest path `path` below the guest directory `dir`:
/// `Some("")` for `dir` itself, `Some("x/y")` for `dir/x/y`, `None` for a
/// path elsewhere (`/app2` is not below `/app`).
pub(crate) fn below<'a>(path: &'a str, dir: &str) -> Option<&'a str> {
    match path.strip_prefix(dir)? {
        "" => Some(""),
        rest => rest.strip_prefix('/'),
    }
}

/// Whether `path` is an absolute guest path of plain names only (no `.`,
/// `..`, empty component or trailing `/`); `/` itself is not.
pub(crate) fn is_plain_absolute(path: &str) -> bool {
    path.strip_prefix('/')
        .is_some_and(|rest| rest.split('/').all(|name| !matches!(name, "" | "." | "..")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_and_plain_paths() {
        assert_eq!(below("/app", "/app"), Some(""));
        assert_eq!(below("/app/src/x", "/app"), Some("src/x"));
        assert_eq!(below("/app2/x", "/app"), None);
        assert_eq!(below("/ap", "/app"), None);
        assert!(is_plain_absolute("/tmp/a.csv"));
        for bad in ["/", "tmp/a", "/tmp/", "/tmp/../etc", "/tmp/./a", "/tmp//a"] {
            assert!(!is_plain_absolute(bad), "{bad}");
        }
    }

    fn mount(guest: &str) -> Mount {
        Mount {
            guest: guest.into(),
            host: std::env::temp_dir(),
            access: Access::ReadOnly,
        }
    }

    #[test]
    fn guest_paths_are_checked() {
        assert!(mount("/data").check(&[]).is_ok());
        for bad in [
            "data",
            "/",
            "/data/",
            "/a/../b",
            "/python",
            "/python/lib",
            "/site-packages",
        ] {
            assert!(mount(bad).check(&[]).is_err(), "{bad}");
        }
        let others = [mount("/data")];
        assert!(mount("/data/sub").check(&others).is_err());
        assert!(mount("/database").check(&others).is_ok());
        let missing = Mount {
            host: PathBuf::from("/nonexistent/eryx"),
            ..mount("/x")
        };
        assert!(missing.check(&[]).is_err());
    }

    #[test]
    fn the_sandboxs_own_tmp_and_dev_are_named() {
        // `/tmp` itself replaces the scratch directory; inside it, or at
        // `/dev`, is refused with the reason.
        assert!(mount("/tmp").check(&[]).is_ok());
        for (bad, says) in [
            ("/tmp/data", "scratch directory"),
            ("/dev", "/dev/null"),
            ("/dev/shm", "/dev/null"),
        ] {
            let e = mount(bad).check(&[]).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
