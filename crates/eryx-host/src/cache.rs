//! The on-disk cache: compiled components and per-function compiled code.
//!
//! Layout of a cache directory:
//! - `<key>.cwasm`: a serialised [`Component`], keyed by the content hash of
//!   everything that goes into it (see `engine::cache_key`);
//! - `<key>.check`: `xxh3-128 <hex> <length>` of that file, written after
//!   it: an entry without a matching check file is never deserialised (a
//!   truncated, foreign or half-written file is recompiled instead);
//! - `functions/*.pack`: Cranelift's incremental compilation cache, one pack
//!   per compilation that produced new functions. A new extension set only
//!   compiles the functions it has never seen (its own code and the glue);
//!   libpython's thousands of functions come out of the packs.
//!
//! The directory is capped in size ([`DEFAULT_MAX_BYTES`], or
//! `ERYX_CACHE_MAX_MB`): after a write, the least recently used entries are
//! removed until it fits.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::SystemTime;

use wasmtime::component::Component;
use wasmtime::{CacheStore, Engine};
use xxhash_rust::xxh3::Xxh3;

use crate::Error;

/// Default size cap of a cache directory.
pub(crate) const DEFAULT_MAX_BYTES: u64 = 4 << 30;

const PACK_MAGIC: &[u8; 8] = b"ERYXFN01";

fn cache_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Cache {
        path: path.to_path_buf(),
        source,
    }
}

/// The size cap from `ERYX_CACHE_MAX_MB`, else [`DEFAULT_MAX_BYTES`].
pub(crate) fn max_bytes_from_env() -> u64 {
    std::env::var("ERYX_CACHE_MAX_MB")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_MAX_BYTES, |mb| mb.saturating_mul(1 << 20))
}

/// `xxh3-128 <hex> <length>` of a file, read in blocks.
fn file_check(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok(format!("xxh3-128 {:032x} {len}", hasher.digest128()))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(cache_err(path))?;
    tmp.write_all(bytes).map_err(cache_err(path))?;
    tmp.persist(path).map_err(|e| cache_err(path)(e.error))?;
    Ok(())
}

/// A directory of compiled components.
#[derive(Debug, Clone)]
pub(crate) struct ComponentCache {
    dir: PathBuf,
    max_bytes: u64,
}

impl ComponentCache {
    pub(crate) fn new(dir: PathBuf, max_bytes: u64) -> ComponentCache {
        ComponentCache { dir, max_bytes }
    }

    fn entry(&self, key: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{key}.cwasm")),
            self.dir.join(format!("{key}.check")),
        )
    }

    /// The cached component for `key`, if present and intact. A damaged
    /// entry is removed.
    pub(crate) fn load(&self, engine: &Engine, key: &str) -> Option<Component> {
        let (path, check) = self.entry(key);
        let expected = std::fs::read_to_string(&check).ok()?;
        match file_check(&path) {
            Ok(actual) if actual == expected.trim() => {}
            _ => {
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_file(&check);
                return None;
            }
        }
        // SAFETY: the file was written by `store` below from
        // `Component::serialize` of this wasmtime version (the key includes
        // the version and the engine configuration), and its length and
        // checksum match what was recorded after it was complete, so it is
        // not truncated or replaced by a foreign file. wasmtime also checks
        // its own header (version, configuration, target) before use. The
        // file is only ever replaced by an atomic rename, never modified in
        // place, so the mapping stays valid.
        let component = unsafe { Component::deserialize_file(engine, &path) }.ok()?;
        // Least recently used eviction looks at modification times.
        if let Ok(file) = std::fs::File::options().append(true).open(&path) {
            let _ = file.set_modified(SystemTime::now());
        }
        Some(component)
    }

    /// Stores a compiled component, then trims the directory to its cap.
    pub(crate) fn store(&self, key: &str, component: &Component) -> Result<(), Error> {
        std::fs::create_dir_all(&self.dir).map_err(cache_err(&self.dir))?;
        let (path, check) = self.entry(key);
        let bytes = component.serialize().map_err(|e| Error::Compile {
            source: e.into_boxed_dyn_error(),
        })?;
        write_atomically(&path, &bytes)?;
        // The check file is written last: its presence marks a complete entry.
        let sum = file_check(&path).map_err(cache_err(&path))?;
        write_atomically(&check, sum.as_bytes())?;
        self.trim(&[path, check]);
        Ok(())
    }

    /// Removes least recently used files until the directory fits its cap,
    /// never the files in `keep`.
    pub(crate) fn trim(&self, keep: &[PathBuf]) {
        let mut files = Vec::new();
        for dir in [self.dir.clone(), self.dir.join("functions")] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(meta) = entry.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                files.push((used, meta.len(), path));
            }
        }
        let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
        files.sort();
        for (_, len, path) in files {
            if total <= self.max_bytes {
                break;
            }
            if keep.contains(&path) {
                continue;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
                // A component without its check file is dead weight.
                if path.extension().is_some_and(|e| e == "check") {
                    let _ = std::fs::remove_file(path.with_extension("cwasm"));
                }
            }
        }
    }
}

/// Cranelift's incremental compilation cache on disk: per-function compiled
/// code keyed by the function's content, shared by every component.
#[derive(Debug)]
pub(crate) struct FunctionCache {
    dir: PathBuf,
    known: RwLock<Option<HashMap<Vec<u8>, Vec<u8>>>>,
    fresh: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
    hits: AtomicUsize,
    misses: AtomicUsize,
}

/// Hits and misses of the function cache during one compilation.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FunctionStats {
    pub(crate) reused: usize,
    pub(crate) compiled: usize,
}

impl FunctionCache {
    pub(crate) fn new(dir: PathBuf) -> FunctionCache {
        FunctionCache {
            dir,
            known: RwLock::new(None),
            fresh: Mutex::new(Vec::new()),
            hits: AtomicUsize::new(0),
            misses: AtomicUsize::new(0),
        }
    }

    /// Reads every intact pack; damaged packs are removed.
    fn load_all(&self) -> HashMap<Vec<u8>, Vec<u8>> {
        let mut map = HashMap::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return map;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "pack") {
                continue;
            }
            match std::fs::read(&path).ok().and_then(|b| parse_pack(&b)) {
                Some(items) => map.extend(items),
                None => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        map
    }

    /// Resets the hit and miss counters.
    pub(crate) fn start(&self) {
        self.hits.store(0, Ordering::Relaxed);
        self.misses.store(0, Ordering::Relaxed);
    }

    /// Writes the functions compiled since the last flush as a new pack and
    /// returns the counters.
    pub(crate) fn flush(&self) -> Result<FunctionStats, Error> {
        let stats = FunctionStats {
            reused: self.hits.load(Ordering::Relaxed),
            compiled: self.misses.load(Ordering::Relaxed),
        };
        let fresh = std::mem::take(&mut *self.fresh.lock().unwrap_or_else(|e| e.into_inner()));
        if fresh.is_empty() {
            return Ok(stats);
        }
        let mut pack = Vec::with_capacity(fresh.iter().map(|(k, v)| k.len() + v.len() + 8).sum());
        pack.extend_from_slice(PACK_MAGIC);
        for (key, value) in &fresh {
            for part in [key, value] {
                pack.extend_from_slice(&(part.len() as u32).to_le_bytes());
                pack.extend_from_slice(part);
            }
        }
        let sum = xxhash_rust::xxh3::xxh3_128(&pack);
        pack.extend_from_slice(&sum.to_le_bytes());
        std::fs::create_dir_all(&self.dir).map_err(cache_err(&self.dir))?;
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let path = self
            .dir
            .join(format!("{stamp:x}-{}.pack", std::process::id()));
        write_atomically(&path, &pack)?;
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        if let Some(map) = known.as_mut() {
            map.extend(fresh);
        }
        Ok(stats)
    }
}

/// The entries of a pack, or `None` if it is damaged in any way.
fn parse_pack(bytes: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let body_len = bytes.len().checked_sub(16)?;
    let (body, sum) = bytes.split_at(body_len);
    if xxhash_rust::xxh3::xxh3_128(body).to_le_bytes() != sum {
        return None;
    }
    let mut rest = body.strip_prefix(PACK_MAGIC)?;
    let mut take = || -> Option<Vec<u8>> {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        if tail.len() < len {
            return None;
        }
        let (item, tail) = tail.split_at(len);
        rest = tail;
        Some(item.to_vec())
    };
    let mut items = Vec::new();
    loop {
        let Some(key) = take() else { break };
        items.push((key, take()?));
    }
    rest.is_empty().then_some(items)
}

impl CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        {
            let known = self.known.read().unwrap_or_else(|e| e.into_inner());
            if let Some(map) = known.as_ref() {
                return self.count(map.get(key).cloned());
            }
        }
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        let map = known.get_or_insert_with(|| self.load_all());
        self.count(map.get(key).cloned())
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        self.fresh
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((key.to_vec(), value));
        true
    }
}

impl FunctionCache {
    fn count(&self, found: Option<Vec<u8>>) -> Option<Cow<'_, [u8]>> {
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found.map(Cow::Owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_round_trip_and_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FunctionCache::new(dir.path().to_path_buf());
        assert!(cache.get(b"k1").is_none());
        assert!(cache.insert(b"k1", b"v1".to_vec()));
        assert!(cache.insert(b"k2", vec![7; 1000]));
        let stats = cache.flush().unwrap();
        assert_eq!(stats.compiled, 1);

        let again = FunctionCache::new(dir.path().to_path_buf());
        assert_eq!(again.get(b"k1").as_deref(), Some(&b"v1"[..]));
        assert_eq!(again.get(b"k2").map(|v| v.len()), Some(1000));

        // Flip one byte of the pack: it is dropped, never trusted.
        let pack = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .next()
            .unwrap()
            .path();
        let mut bytes = std::fs::read(&pack).unwrap();
        bytes[12] ^= 1;
        std::fs::write(&pack, &bytes).unwrap();
        let damaged = FunctionCache::new(dir.path().to_path_buf());
        assert!(damaged.get(b"k1").is_none());
        assert!(!pack.exists());
    }

    #[test]
    fn truncated_packs_are_refused() {
        let mut pack = PACK_MAGIC.to_vec();
        pack.extend_from_slice(&100u32.to_le_bytes());
        pack.extend_from_slice(b"short");
        let sum = xxhash_rust::xxh3::xxh3_128(&pack);
        pack.extend_from_slice(&sum.to_le_bytes());
        assert!(parse_pack(&pack).is_none());
        assert!(parse_pack(b"").is_none());
    }

    #[test]
    fn trim_removes_least_recently_used_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ComponentCache::new(dir.path().to_path_buf(), 2500);
        let old = dir.path().join("a.cwasm");
        let new = dir.path().join("b.cwasm");
        std::fs::write(&old, vec![0; 1000]).unwrap();
        std::fs::write(&new, vec![0; 1000]).unwrap();
        let past = SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .append(true)
            .open(&old)
            .unwrap()
            .set_modified(past)
            .unwrap();
        let kept = dir.path().join("c.cwasm");
        std::fs::write(&kept, vec![0; 1000]).unwrap();
        cache.trim(std::slice::from_ref(&kept));
        assert!(!old.exists(), "the oldest entry goes first");
        assert!(new.exists() && kept.exists());
    }
}
