//! What a set's pre-initialisation left in its `/tmp`, given to every
//! sandbox made from the snapshot.
//!
//! A pre-import runs once, before the snapshot; the Python state it leaves
//! may name files it wrote to `/tmp` (a cache directory made at import, a
//! `tempfile.mkdtemp()` kept in a module global). A sandbox of the snapshot
//! starts from that state, so its own scratch `/tmp` starts with those
//! files too. Directories, regular files and symbolic links whose target
//! stays inside `/tmp` (a `current -> v2` link in a cache; the guest can
//! only make relative ones) are kept; anything else (devices, links out of
//! `/tmp`) is left out.
//!
//! The seed is stored next to the snapshot in the cache (as its own entry,
//! with the same integrity check), in this format: `ERYXTMP1`, then per
//! entry a kind byte (`d` directory, `f` file, `l` link), the path relative
//! to `/tmp` (u32 little-endian length, UTF-8), for a file its contents
//! (u64 little-endian length, bytes) and for a link its target (u32
//! little-endian length, UTF-8). Parents come before their children.

use std::io;
use std::path::{Component, Path};

use wasmtime::Engine;

/// The first bytes of a stored seed.
const MAGIC: &[u8; 8] = b"ERYXTMP1";

/// One entry, its path relative to `/tmp` (`/`-separated, no `..`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Dir(String),
    File(String, Vec<u8>),
    /// A symbolic link and its target, relative to the link's directory.
    Link(String, String),
}

/// The directories and files a pre-initialisation left in `/tmp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TmpSeed {
    entries: Vec<Entry>,
}

impl TmpSeed {
    /// What `dir` holds; `None` when it is empty.
    pub(crate) fn collect(dir: &Path) -> io::Result<Option<TmpSeed>> {
        let mut entries = Vec::new();
        walk(dir, "", &mut entries)?;
        Ok((!entries.is_empty()).then_some(TmpSeed { entries }))
    }

    /// The bytes its files hold and the number of entries.
    pub(crate) fn size(&self) -> (u64, u64) {
        let bytes = self
            .entries
            .iter()
            .map(|e| match e {
                Entry::File(_, data) => data.len() as u64,
                Entry::Dir(_) | Entry::Link(..) => 0,
            })
            .sum();
        (bytes, self.entries.len() as u64)
    }

    /// Writes the entries into `dir` (an empty scratch directory).
    pub(crate) fn plant(&self, dir: &Path) -> io::Result<()> {
        for entry in &self.entries {
            match entry {
                Entry::Dir(path) => std::fs::create_dir_all(dir.join(path))?,
                Entry::File(path, data) => std::fs::write(dir.join(path), data)?,
                Entry::Link(path, target) => symlink(target, &dir.join(path))?,
            }
        }
        Ok(())
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for entry in &self.entries {
            // A path or a link's target: u32 length, then its bytes.
            let text = |out: &mut Vec<u8>, s: &str| {
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            };
            match entry {
                Entry::Dir(path) => {
                    out.push(b'd');
                    text(&mut out, path);
                }
                Entry::File(path, data) => {
                    out.push(b'f');
                    text(&mut out, path);
                    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
                    out.extend_from_slice(data);
                }
                Entry::Link(path, target) => {
                    out.push(b'l');
                    text(&mut out, path);
                    text(&mut out, target);
                }
            }
        }
        out
    }

    /// The seed `bytes` hold, or why they are not one.
    fn decode(bytes: &[u8]) -> Result<TmpSeed, String> {
        let mut rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or("not a /tmp seed (bad magic)")?;
        let mut take = |n: usize| -> Result<&[u8], String> {
            if rest.len() < n {
                return Err("a /tmp seed ends early".to_string());
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        let mut entries = Vec::new();
        while let Ok(kind) = take(1) {
            let kind = kind[0];
            let mut text = || -> Result<String, String> {
                let len = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes"));
                std::str::from_utf8(take(len as usize)?)
                    .map(str::to_string)
                    .map_err(|_| "a /tmp seed path is not UTF-8".to_string())
            };
            let path = text()?;
            if !is_relative_inside(&path) {
                return Err(format!("a /tmp seed path leaves the directory: {path:?}"));
            }
            entries.push(match kind {
                b'd' => Entry::Dir(path),
                b'f' => {
                    let len = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
                    let len = usize::try_from(len).map_err(|_| "a /tmp seed file is too big")?;
                    Entry::File(path, take(len)?.to_vec())
                }
                b'l' => {
                    let target = text()?;
                    if !link_stays_inside(&path, &target) {
                        return Err(format!(
                            "a /tmp seed link leaves the directory: {path:?} -> {target:?}"
                        ));
                    }
                    Entry::Link(path, target)
                }
                other => return Err(format!("a /tmp seed entry of unknown kind {other}")),
            });
        }
        Ok(TmpSeed { entries })
    }
}

/// Whether `path` is a plain relative path below its base (no root, no
/// `..`, not empty).
fn is_relative_inside(path: &str) -> bool {
    !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// Whether the link at `path` (relative to the seed's root) to `target`
/// points inside the root: `target` relative, and its `..` never above it.
fn link_stays_inside(path: &str, target: &str) -> bool {
    // The link's own directory: its depth below the root.
    let mut depth = Path::new(path).components().count().saturating_sub(1);
    !target.is_empty()
        && Path::new(target).components().all(|c| match c {
            Component::Normal(_) => {
                depth += 1;
                true
            }
            Component::CurDir => true,
            Component::ParentDir => depth.checked_sub(1).map(|d| depth = d).is_some(),
            Component::RootDir | Component::Prefix(_) => false,
        })
}

#[cfg(unix)]
fn symlink(target: &str, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

/// Elsewhere a link is not made up as something else: planting fails,
/// and with it the sandbox's build, saying why.
#[cfg(not(unix))]
fn symlink(target: &str, link: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "{} -> {target}: symbolic links are planted on Unix hosts only",
            link.display()
        ),
    ))
}

/// Adds what `dir` holds to `out` (`prefix` is its path relative to the
/// seed's root), sorted by name so that the same files make the same seed.
fn walk(dir: &Path, prefix: &str, out: &mut Vec<Entry>) -> io::Result<()> {
    let mut children: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    children.sort_by_key(|e| e.file_name());
    for child in children {
        let Ok(name) = child.file_name().into_string() else {
            continue;
        };
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let kind = child.file_type()?;
        if kind.is_dir() {
            out.push(Entry::Dir(path.clone()));
            walk(&child.path(), &path, out)?;
        } else if kind.is_file() {
            out.push(Entry::File(path, std::fs::read(child.path())?));
        } else if kind.is_symlink()
            && let Some(target) = std::fs::read_link(child.path())?.to_str()
            && link_stays_inside(&path, target)
        {
            let target = target.to_string();
            out.push(Entry::Link(path, target));
        }
    }
    Ok(())
}

impl crate::cache::Compiled for TmpSeed {
    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        Ok(self.encode())
    }

    unsafe fn deserialize_file(_: &Engine, path: &Path) -> wasmtime::Result<Self> {
        let bytes = std::fs::read(path)?;
        TmpSeed::decode(&bytes).map_err(wasmtime::Error::msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_round_trips_through_the_stored_form() {
        let from = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(from.path().join(".cache/pkg")).unwrap();
        std::fs::write(from.path().join(".cache/pkg/index.json"), b"{}").unwrap();
        std::fs::write(from.path().join("top.txt"), b"hello").unwrap();
        std::fs::create_dir(from.path().join("empty")).unwrap();
        let seed = TmpSeed::collect(from.path()).unwrap().unwrap();
        assert_eq!(seed.size(), (7, 5));
        let back = TmpSeed::decode(&seed.encode()).unwrap();
        assert_eq!(back, seed);
        let to = tempfile::tempdir().unwrap();
        back.plant(to.path()).unwrap();
        assert_eq!(
            std::fs::read(to.path().join(".cache/pkg/index.json")).unwrap(),
            b"{}"
        );
        assert_eq!(std::fs::read(to.path().join("top.txt")).unwrap(), b"hello");
        assert!(to.path().join("empty").is_dir());
        let nothing = tempfile::tempdir().unwrap();
        assert_eq!(TmpSeed::collect(nothing.path()).unwrap(), None);
    }

    #[test]
    fn links_inside_the_directory_are_kept_and_others_left_out() {
        let from = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(from.path().join("cache/v1")).unwrap();
        std::fs::write(from.path().join("cache/v1/data"), b"one").unwrap();
        std::os::unix::fs::symlink("v1", from.path().join("cache/current")).unwrap();
        std::os::unix::fs::symlink("../../cache/v1/data", from.path().join("cache/v1/self"))
            .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", from.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("../outside", from.path().join("up")).unwrap();
        let seed = TmpSeed::collect(from.path()).unwrap().unwrap();
        let back = TmpSeed::decode(&seed.encode()).unwrap();
        assert_eq!(back, seed);
        let links: Vec<_> = seed
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::Link(path, target) => Some((path.as_str(), target.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(
            links,
            [
                ("cache/current", "v1"),
                ("cache/v1/self", "../../cache/v1/data")
            ]
        );
        let to = tempfile::tempdir().unwrap();
        back.plant(to.path()).unwrap();
        assert_eq!(
            std::fs::read(to.path().join("cache/current/data")).unwrap(),
            b"one"
        );
        assert_eq!(
            std::fs::read_link(to.path().join("cache/current")).unwrap(),
            Path::new("v1")
        );
        assert_eq!(
            std::fs::read(to.path().join("cache/v1/self")).unwrap(),
            b"one"
        );
    }

    #[test]
    fn damaged_or_escaping_seeds_are_refused() {
        let seed = TmpSeed {
            entries: vec![Entry::File("a".into(), b"xyz".to_vec())],
        };
        let bytes = seed.encode();
        let err = TmpSeed::decode(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(err.contains("ends early"), "{err}");
        assert!(TmpSeed::decode(b"ERYXTMP0").is_err());
        for path in ["../etc/passwd", "/etc/passwd", "a/../../b", ""] {
            let evil = TmpSeed {
                entries: vec![Entry::Dir(path.into())],
            };
            let err = TmpSeed::decode(&evil.encode()).unwrap_err();
            assert!(err.contains("leaves the directory"), "{path}: {err}");
        }
        for (path, target) in [
            ("a", "/etc"),
            ("a", ".."),
            ("d/a", "../../b"),
            ("d/a", "./../x/../../b"),
            ("a", ""),
        ] {
            let evil = TmpSeed {
                entries: vec![Entry::Link(path.into(), target.into())],
            };
            let err = TmpSeed::decode(&evil.encode()).unwrap_err();
            assert!(err.contains("link leaves the directory"), "{target}: {err}");
        }
    }
}
