//! What a set's pre-initialisation left in its `/tmp`, given to every
//! sandbox made from the snapshot.
//!
//! A pre-import runs once, before the snapshot; the Python state it leaves
//! may name files it wrote to `/tmp` (a cache directory made at import, a
//! `tempfile.mkdtemp()` kept in a module global). A sandbox of the snapshot
//! starts from that state, so its own scratch `/tmp` starts with those
//! files too. Directories and regular files are kept; anything else (links,
//! devices) is left out.
//!
//! The seed is stored next to the snapshot in the cache (as its own entry,
//! with the same integrity check), in this format: `ERYXTMP1`, then per
//! entry a kind byte (`d` directory, `f` file), the path relative to `/tmp`
//! (u32 little-endian length, UTF-8), and for a file its contents (u64
//! little-endian length, bytes). Parents come before their children.

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
                Entry::Dir(_) => 0,
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
            }
        }
        Ok(())
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for entry in &self.entries {
            let (kind, path, data) = match entry {
                Entry::Dir(path) => (b'd', path, None),
                Entry::File(path, data) => (b'f', path, Some(data)),
            };
            out.push(kind);
            out.extend_from_slice(&(path.len() as u32).to_le_bytes());
            out.extend_from_slice(path.as_bytes());
            if let Some(data) = data {
                out.extend_from_slice(&(data.len() as u64).to_le_bytes());
                out.extend_from_slice(data);
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
            let len = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes"));
            let path = std::str::from_utf8(take(len as usize)?)
                .map_err(|_| "a /tmp seed path is not UTF-8".to_string())?
                .to_string();
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
    }
}
