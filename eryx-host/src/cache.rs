//! The on-disk cache: compiled components, compiled library modules and
//! per-function compiled code.
//!
//! Layout of a cache directory:
//! - `<key>.cwasm`: a serialised [`Component`] (keyed by the content hash of
//!   everything that goes into it, see `engine::cache_key`) or [`Module`]
//!   (a library taken out of components by `eryx_linker::split`, keyed by
//!   its bytes: libpython is compiled once, whatever set it comes in);
//! - `<key>.check`: `xxh3-128 <hex> <length>` of that file, written after
//!   it: an entry without a matching check file is never deserialised (a
//!   truncated, foreign or half-written file is recompiled instead). A
//!   component's check file also lists the module entries it imports
//!   (`import <name> <key>`), each loaded and checked the same way;
//! - `<key>.stamp`: the file's device, inode, size and times when it last
//!   verified: while they are unchanged the file is not hashed again (a
//!   write, truncation or replacement changes them);
//! - `functions/*.pack`: Cranelift's incremental compilation cache, one pack
//!   per compilation that produced new functions. A new extension set only
//!   compiles the functions it has never seen (its own code and the glue).
//!
//! The directory is capped in size ([`DEFAULT_MAX_BYTES`], or
//! `ERYX_CACHE_MAX_MB`): after a write, the least recently used entries are
//! removed until it fits.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::SystemTime;

use wasmtime::component::Component;
use wasmtime::{CacheStore, Engine, Module};
use xxhash_rust::xxh3::Xxh3;

use crate::Error;

/// Default size cap of a cache directory.
pub(crate) const DEFAULT_MAX_BYTES: u64 = 4 << 30;

const PACK_MAGIC: &[u8; 8] = b"ERYXFN02";

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
///
/// The file is mapped, not read: hashing a 27 MB entry through `read()`
/// spent most of a fresh process's start-up copying it out of the page
/// cache.
fn file_check(path: &Path) -> std::io::Result<String> {
    let file = std::fs::File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok(format!("xxh3-128 {:032x} 0", Xxh3::new().digest128()));
    }
    // SAFETY: cache files are only ever replaced by an atomic rename (see
    // `write_atomically`), never modified in place, so the mapped pages
    // stay valid and unchanged while we read them; the map is dropped
    // before this function returns.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    Ok(format!(
        "xxh3-128 {:032x} {}",
        xxhash_rust::xxh3::xxh3_128(&map),
        map.len()
    ))
}

/// What identifies one version of a file on this machine: device, inode,
/// size, modification and change times (the change time moves on every
/// write and metadata change and cannot be set back). `None` where these
/// are not available.
pub(crate) fn file_stamp(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(format!(
            "stamp/v1 {} {} {} {}.{:09} {}.{:09}",
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec()
        ))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(cache_err(path))?;
    tmp.write_all(bytes).map_err(cache_err(path))?;
    tmp.persist(path).map_err(|e| cache_err(path)(e.error))?;
    Ok(())
}

/// What a cache entry holds: a compiled [`Component`] or a compiled core
/// [`Module`] (a library taken out of a component, see
/// `eryx_linker::split`).
pub(crate) trait Compiled: Sized {
    fn serialize(&self) -> wasmtime::Result<Vec<u8>>;
    /// # Safety
    /// `path` must hold the output of [`Compiled::serialize`] of this
    /// wasmtime version and engine configuration, and must not change while
    /// the result is alive.
    unsafe fn deserialize_file(engine: &Engine, path: &Path) -> wasmtime::Result<Self>;
}

impl Compiled for Component {
    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        Component::serialize(self)
    }
    unsafe fn deserialize_file(engine: &Engine, path: &Path) -> wasmtime::Result<Self> {
        // SAFETY: guaranteed by the caller (see the trait method).
        unsafe { Component::deserialize_file(engine, path) }
    }
}

impl Compiled for Module {
    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        Module::serialize(self)
    }
    unsafe fn deserialize_file(engine: &Engine, path: &Path) -> wasmtime::Result<Self> {
        // SAFETY: guaranteed by the caller (see the trait method).
        unsafe { Module::deserialize_file(engine, path) }
    }
}

/// A directory of compiled components and modules.
#[derive(Debug, Clone)]
pub(crate) struct ComponentCache {
    dir: PathBuf,
    max_bytes: u64,
}

impl ComponentCache {
    pub(crate) fn new(dir: PathBuf, max_bytes: u64) -> ComponentCache {
        ComponentCache { dir, max_bytes }
    }

    /// The entry's compiled file and its check file.
    pub(crate) fn entry(&self, key: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{key}.cwasm")),
            self.dir.join(format!("{key}.check")),
        )
    }

    /// The cached artifact for `key` and the notes stored with it (the
    /// check file's lines after the first), if present and intact. A
    /// damaged entry is removed.
    pub(crate) fn load<T: Compiled>(&self, engine: &Engine, key: &str) -> Option<(T, Vec<String>)> {
        let (path, check) = self.entry(key);
        let recorded = std::fs::read_to_string(&check).ok()?;
        let mut lines = recorded.lines();
        let expected = lines.next().unwrap_or_default();
        // Hashing tens of MB is most of a fresh process's start-up, so a
        // file that verified once is trusted while its stamp (device,
        // inode, size, modification and change times) is unchanged: any
        // write to it, a truncation or a replacement changes the stamp and
        // it is hashed again.
        let stamp_path = path.with_extension("stamp");
        let stamp = file_stamp(&path);
        let stamped = stamp.is_some()
            && std::fs::read_to_string(&stamp_path).ok().as_deref() == stamp.as_deref();
        if !stamped {
            match file_check(&path) {
                Ok(actual) if actual == expected.trim() => {
                    if let Some(stamp) = &stamp {
                        let _ = write_atomically(&stamp_path, stamp.as_bytes());
                    }
                }
                _ => {
                    let _ = std::fs::remove_file(&check);
                    let _ = std::fs::remove_file(&path);
                    let _ = std::fs::remove_file(&stamp_path);
                    return None;
                }
            }
        }
        // SAFETY: the file was written by `store` below from `serialize` of
        // this wasmtime version (the key includes the version and the
        // engine configuration), and its length and checksum match what was
        // recorded after it was complete, so it is not truncated or replaced
        // by a foreign file. wasmtime also checks its own header (version,
        // configuration, target, component or module) before use. The file
        // is only ever replaced by an atomic rename, never modified in
        // place, so the mapping stays valid.
        let artifact = unsafe { T::deserialize_file(engine, &path) }.ok()?;
        // Least recently used eviction looks at modification times: the
        // check file's (touching the compiled file would change its stamp).
        if let Ok(file) = std::fs::File::options().append(true).open(&check) {
            let _ = file.set_modified(SystemTime::now());
        }
        Some((artifact, lines.map(str::to_string).collect()))
    }

    /// Stores a compiled artifact with `notes` (lines kept in its check
    /// file), then trims the directory to its cap, never removing `keep`.
    pub(crate) fn store<T: Compiled>(
        &self,
        key: &str,
        artifact: &T,
        notes: &[String],
        keep: &[PathBuf],
    ) -> Result<u64, Error> {
        let len = self.store_untrimmed(key, artifact, notes)?;
        let mut keep = keep.to_vec();
        keep.extend(<[PathBuf; 2]>::from(self.entry(key)));
        self.trim(&keep);
        Ok(len)
    }

    /// [`ComponentCache::store`] without the trim, for an entry stored
    /// before others of the same compilation: trimming lists and stats the
    /// whole directory, and a set of 250 extensions (each its own module
    /// entry) did that 250 times, over a million `statx` calls in a cache of
    /// 3,600 files. The last store of the compilation trims.
    pub(crate) fn store_untrimmed<T: Compiled>(
        &self,
        key: &str,
        artifact: &T,
        notes: &[String],
    ) -> Result<u64, Error> {
        std::fs::create_dir_all(&self.dir).map_err(cache_err(&self.dir))?;
        let (path, check) = self.entry(key);
        let bytes = artifact.serialize().map_err(|e| Error::Compile {
            source: e.into_boxed_dyn_error(),
        })?;
        write_atomically(&path, &bytes)?;
        // The check file is written last: its presence marks a complete entry.
        let mut sum = file_check(&path).map_err(cache_err(&path))?;
        for note in notes {
            sum.push('\n');
            sum.push_str(note);
        }
        write_atomically(&check, sum.as_bytes())?;
        if let Some(stamp) = file_stamp(&path) {
            write_atomically(&path.with_extension("stamp"), stamp.as_bytes())?;
        }
        Ok(bytes.len() as u64)
    }

    /// Removes least recently used files until the directory fits its cap,
    /// never the files in `keep`.
    pub(crate) fn trim(&self, keep: &[PathBuf]) {
        // Entries (`<key>.cwasm`, `.check`, `.stamp`) go as a whole, by the
        // latest use of any of their files; function packs one by one.
        let mut groups: HashMap<PathBuf, (SystemTime, u64, Vec<PathBuf>)> = HashMap::new();
        for (dir, grouped) in [
            (self.dir.clone(), true),
            (self.dir.join("functions"), false),
        ] {
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
                let group = if grouped {
                    path.with_extension("")
                } else {
                    path.clone()
                };
                let g = groups
                    .entry(group)
                    .or_insert((SystemTime::UNIX_EPOCH, 0, Vec::new()));
                g.0 = g.0.max(used);
                g.1 += meta.len();
                g.2.push(path);
            }
        }
        let mut total: u64 = groups.values().map(|(_, len, _)| len).sum();
        let mut groups: Vec<(SystemTime, u64, Vec<PathBuf>)> = groups.into_values().collect();
        groups.sort();
        for (_, len, paths) in groups {
            if total <= self.max_bytes {
                break;
            }
            if paths.iter().any(|p| keep.contains(p)) {
                continue;
            }
            // The check file first: an entry without it is never loaded.
            let mut paths = paths;
            paths.sort_by_key(|p| p.extension().is_none_or(|e| e != "check"));
            for path in &paths {
                let _ = std::fs::remove_file(path);
            }
            total = total.saturating_sub(len);
        }
    }
}

/// Cranelift's incremental compilation cache on disk: per-function compiled
/// code keyed by the function's content, shared by every component.
///
/// A pack starts with an index (keys, where each value is, and each value's
/// hash, with a checksum over the index) followed by the values. Packs are
/// mapped once per process (lazily, at the first lookup); only the index is
/// read then, a value is read (and its hash checked) when it is looked up,
/// and lookups borrow from the mapping: no per-function copies. A cache of
/// hundreds of MB therefore costs a new set only what it uses. Functions
/// compiled afterwards are written as a new pack by
/// [`FunctionCache::flush`]; when packs pile up they are merged into one
/// (duplicates dropped).
#[derive(Debug)]
pub(crate) struct FunctionCache {
    dir: PathBuf,
    loaded: OnceLock<Loaded>,
    /// Entries flushed by this process after the packs were loaded.
    later: RwLock<HashMap<Vec<u8>, Vec<u8>>>,
    fresh: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
    hits: AtomicUsize,
    misses: AtomicUsize,
}

/// The packs mapped from disk and where each entry lives in them.
#[derive(Debug, Default)]
struct Loaded {
    packs: Vec<memmap2::Mmap>,
    files: Vec<PathBuf>,
    /// Entries with the keys Cranelift makes (SHA-256 digests), by value:
    /// building the index allocates nothing per entry, which matters for a
    /// cache that has seen many packages (loading 151,000 entries took
    /// 136 ms with a heap-allocated key each and SipHash, 41-62 ms like
    /// this, most of it reading the packs' indexes).
    digests: HashMap<[u8; 32], (usize, Entry), DigestHasher>,
    /// Entries with keys of any other length (none today).
    others: HashMap<Vec<u8>, (usize, Entry)>,
}

impl Loaded {
    /// The value of `key`, if its bytes still have the hash recorded for
    /// them.
    fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let (pack, entry) = match <&[u8; 32]>::try_from(key) {
            Ok(digest) => self.digests.get(digest)?,
            Err(_) => self.others.get(key)?,
        };
        let value = &self.packs[*pack][entry.value.clone()];
        (xxhash_rust::xxh3::xxh3_64(value) == entry.hash).then_some(value)
    }

    /// Adds an entry unless its key is there already (the first pack wins).
    fn add(&mut self, key: &[u8], pack: usize, entry: Entry) {
        match <[u8; 32]>::try_from(key) {
            Ok(digest) => {
                self.digests.entry(digest).or_insert((pack, entry));
            }
            Err(_) => {
                self.others.entry(key.to_vec()).or_insert((pack, entry));
            }
        }
    }

    /// Every key, with where its value is.
    fn keys(&self) -> impl Iterator<Item = (&[u8], usize)> {
        let digests = self.digests.iter().map(|(k, (p, _))| (&k[..], *p));
        digests.chain(self.others.iter().map(|(k, (p, _))| (&k[..], *p)))
    }
}

/// Hashes a SHA-256 digest by its first eight bytes: the digest is
/// already uniformly distributed, and the packs are this cache's own files.
#[derive(Debug, Default, Clone, Copy)]
struct DigestHasher;

impl std::hash::BuildHasher for DigestHasher {
    type Hasher = DigestHash;
    fn build_hasher(&self) -> DigestHash {
        DigestHash(0)
    }
}

/// The state of [`DigestHasher`].
struct DigestHash(u64);

impl std::hash::Hasher for DigestHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // `[u8; 32]` hashes as one write of its bytes (after a length
        // prefix, which goes through `write_usize`).
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
    }
    fn write_usize(&mut self, _: usize) {}
}

/// Hits and misses of the function cache during one compilation.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FunctionStats {
    pub(crate) reused: usize,
    pub(crate) compiled: usize,
}

/// Packs beyond this many are merged into one at the next flush (those of
/// at most [`MERGE_MAX_BYTES`]).
const MAX_PACKS: usize = 6;

/// Packs bigger than this are left as they are when packs are merged.
const MERGE_MAX_BYTES: u64 = 16 << 20;

impl FunctionCache {
    pub(crate) fn new(dir: PathBuf) -> FunctionCache {
        FunctionCache {
            dir,
            loaded: OnceLock::new(),
            later: RwLock::new(HashMap::new()),
            fresh: Mutex::new(Vec::new()),
            hits: AtomicUsize::new(0),
            misses: AtomicUsize::new(0),
        }
    }

    /// Maps every pack whose index is intact; damaged packs are removed,
    /// unreadable ones (e.g. merged away by another process meanwhile)
    /// skipped.
    fn load_all(&self) -> Loaded {
        let mut loaded = Loaded::default();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return loaded;
        };
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "pack"))
            .collect();
        paths.sort();
        for path in paths {
            let Ok(file) = std::fs::File::open(&path) else {
                continue;
            };
            // SAFETY: packs are written whole under a temporary name and
            // renamed into place, never modified afterwards (merging writes
            // a new pack and unlinks the old ones, which leaves existing
            // mappings intact). Every value is bounds-checked against the
            // mapping when the index is parsed and hash-checked when it is
            // read, so a file damaged on disk yields misses, not bad code.
            let Ok(map) = (unsafe { memmap2::Mmap::map(&file) }) else {
                continue;
            };
            let Some(items) = parse_pack(&map) else {
                let _ = std::fs::remove_file(&path);
                continue;
            };
            let pack = loaded.packs.len();
            loaded.digests.reserve(items.len());
            for (key, entry) in items {
                loaded.add(&map[key], pack, entry);
            }
            loaded.packs.push(map);
            loaded.files.push(path);
        }
        loaded
    }

    /// Resets the hit and miss counters.
    pub(crate) fn start(&self) {
        self.hits.store(0, Ordering::Relaxed);
        self.misses.store(0, Ordering::Relaxed);
    }

    /// Writes the functions compiled since the last flush as a new pack
    /// (merging all packs into one when there are too many) and returns the
    /// counters.
    pub(crate) fn flush(&self) -> Result<FunctionStats, Error> {
        let stats = FunctionStats {
            reused: self.hits.load(Ordering::Relaxed),
            compiled: self.misses.load(Ordering::Relaxed),
        };
        let fresh = std::mem::take(&mut *self.fresh.lock().unwrap_or_else(|e| e.into_inner()));
        if fresh.is_empty() {
            return Ok(stats);
        }
        std::fs::create_dir_all(&self.dir).map_err(cache_err(&self.dir))?;
        let loaded = self.loaded.get_or_init(|| self.load_all());
        // Only small packs are merged: rewriting a big one (a library's
        // first compilation, hundreds of MB) would cost seconds in
        // whichever run happens to flush.
        let small: Vec<bool> = loaded
            .packs
            .iter()
            .map(|m| m.len() as u64 <= MERGE_MAX_BYTES)
            .collect();
        let merge = loaded.files.len() + 1 > MAX_PACKS && small.iter().any(|s| *s);
        let mut items: Vec<(&[u8], &[u8])> = fresh
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        if merge {
            items.extend(
                loaded
                    .keys()
                    .filter(|(_, pack)| small[*pack])
                    .filter_map(|(k, _)| Some((k, loaded.get(k)?))),
            );
        }
        let path = self.dir.join(format!(
            "{:x}-{}.pack",
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
            std::process::id()
        ));
        write_atomically(&path, &encode_pack(&items))?;
        if merge {
            for (old, small) in loaded.files.iter().zip(&small) {
                if *small {
                    let _ = std::fs::remove_file(old);
                }
            }
        }
        self.later
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .extend(fresh);
        Ok(stats)
    }

    fn count<T>(&self, found: Option<T>) -> Option<T> {
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }
}

/// Where one value is in a pack, and its hash.
#[derive(Debug, Clone)]
struct Entry {
    value: Range<usize>,
    hash: u64,
}

/// A pack: `PACK_MAGIC`, the entry count (u32), then per entry the key
/// length (u32), the key, the value's offset (u64), length (u32) and
/// xxh3-64 (u64); an xxh3-128 of everything so far; then the values.
fn encode_pack(items: &[(&[u8], &[u8])]) -> Vec<u8> {
    let index_len: usize = items.iter().map(|(k, _)| 4 + k.len() + 20).sum();
    let header = PACK_MAGIC.len() + 4 + index_len + 16;
    let mut pack = Vec::with_capacity(header + items.iter().map(|(_, v)| v.len()).sum::<usize>());
    pack.extend_from_slice(PACK_MAGIC);
    pack.extend_from_slice(&(items.len() as u32).to_le_bytes());
    let mut offset = header as u64;
    for (key, value) in items {
        pack.extend_from_slice(&(key.len() as u32).to_le_bytes());
        pack.extend_from_slice(key);
        pack.extend_from_slice(&offset.to_le_bytes());
        pack.extend_from_slice(&(value.len() as u32).to_le_bytes());
        pack.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(value).to_le_bytes());
        offset += value.len() as u64;
    }
    let sum = xxhash_rust::xxh3::xxh3_128(&pack);
    pack.extend_from_slice(&sum.to_le_bytes());
    for (_, value) in items {
        pack.extend_from_slice(value);
    }
    pack
}

/// Where each entry's key and value lie in a pack, or `None` if its index
/// is damaged in any way or points outside the file.
fn parse_pack(bytes: &[u8]) -> Option<Vec<(Range<usize>, Entry)>> {
    if !bytes.starts_with(PACK_MAGIC) {
        return None;
    }
    let mut at = PACK_MAGIC.len();
    let take = |at: &mut usize, n: usize| -> Option<Range<usize>> {
        let range = *at..at.checked_add(n)?;
        if range.end > bytes.len() {
            return None;
        }
        *at = range.end;
        Some(range)
    };
    let u32_at = |r: Range<usize>| u32::from_le_bytes(bytes[r].try_into().unwrap_or_default());
    let count = u32_at(take(&mut at, 4)?) as usize;
    let mut items = Vec::with_capacity(count.min(1 << 20));
    for _ in 0..count {
        let key_len = u32_at(take(&mut at, 4)?) as usize;
        let key = take(&mut at, key_len)?;
        let offset = u64::from_le_bytes(bytes[take(&mut at, 8)?].try_into().ok()?);
        let len = u32_at(take(&mut at, 4)?) as usize;
        let hash = u64::from_le_bytes(bytes[take(&mut at, 8)?].try_into().ok()?);
        let start = usize::try_from(offset).ok()?;
        items.push((
            key,
            Entry {
                value: start..start.checked_add(len)?,
                hash,
            },
        ));
    }
    let index_end = at;
    let sum = take(&mut at, 16)?;
    if xxhash_rust::xxh3::xxh3_128(&bytes[..index_end]).to_le_bytes() != bytes[sum] {
        return None;
    }
    let values_start = at;
    if items
        .iter()
        .any(|(_, e)| e.value.start < values_start || e.value.end > bytes.len())
    {
        return None;
    }
    Some(items)
}

impl CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let loaded = self.loaded.get_or_init(|| self.load_all());
        if let Some(found) = loaded.get(key) {
            return self.count(Some(Cow::Borrowed(found)));
        }
        let later = self.later.read().unwrap_or_else(|e| e.into_inner());
        self.count(later.get(key).cloned().map(Cow::Owned))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        self.fresh
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((key.to_vec(), value));
        true
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
        let good = std::fs::read(&pack).unwrap();
        let mut bytes = good.clone();
        bytes[12] ^= 1;
        std::fs::write(&pack, &bytes).unwrap();
        let damaged = FunctionCache::new(dir.path().to_path_buf());
        assert!(damaged.get(b"k1").is_none());
        assert!(!pack.exists(), "a pack with a damaged index is removed");

        // A damaged value (the index is intact): that value is a miss, the
        // others are still served.
        let mut bytes = good.clone();
        let last = bytes.len() - 1;
        bytes[last] ^= 1; // inside k2's 1000 bytes, written last
        std::fs::write(&pack, &bytes).unwrap();
        let partly = FunctionCache::new(dir.path().to_path_buf());
        assert_eq!(partly.get(b"k1").as_deref(), Some(&b"v1"[..]));
        assert!(
            partly.get(b"k2").is_none(),
            "a value that changed is not used"
        );
    }

    /// Cranelift's keys are 32-byte digests (kept by value in the index);
    /// keys of other lengths go elsewhere. Both are found again, also after
    /// the packs were merged.
    #[test]
    fn digest_keys_and_other_keys_are_both_served() {
        let dir = tempfile::tempdir().unwrap();
        let digest = |i: u8| {
            let mut k = [0u8; 32];
            k[0] = 0xab;
            k[31] = i;
            k
        };
        for round in 0..MAX_PACKS as u8 + 2 {
            let cache = FunctionCache::new(dir.path().to_path_buf());
            // Same first bytes for every digest: only the rest tells them
            // apart (the hasher reads the first eight).
            cache.insert(&digest(round), vec![round; 3]);
            cache.insert(&[round; 20], vec![round; 5]);
            cache.insert(&digest(200), vec![round; 7]);
            cache.flush().unwrap();
        }
        let cache = FunctionCache::new(dir.path().to_path_buf());
        for round in 0..MAX_PACKS as u8 + 2 {
            assert_eq!(cache.get(&digest(round)).as_deref(), Some(&[round; 3][..]));
            assert_eq!(cache.get(&[round; 20]).as_deref(), Some(&[round; 5][..]));
        }
        assert!(cache.get(&digest(201)).is_none());
        assert_eq!(cache.get(&digest(200)).map(|v| v.len()), Some(7));
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
        let good = encode_pack(&[(b"k", b"value"), (b"k2", b"other")]);
        let items = parse_pack(&good).unwrap();
        assert_eq!(&good[items[0].1.value.clone()], b"value");
        assert_eq!(&good[items[1].1.value.clone()], b"other");
        // Cut inside the values: the index points past the end.
        assert!(parse_pack(&good[..good.len() - 2]).is_none());
    }

    #[test]
    fn many_packs_are_merged_without_losing_entries() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..MAX_PACKS + 2 {
            let cache = FunctionCache::new(dir.path().to_path_buf());
            assert!(cache.get(format!("k{i}").as_bytes()).is_none());
            cache.insert(format!("k{i}").as_bytes(), vec![i as u8; 10]);
            // The same key again from another "process": deduplicated.
            cache.insert(b"shared", b"same".to_vec());
            cache.flush().unwrap();
        }
        let packs = std::fs::read_dir(dir.path()).unwrap().count();
        assert!(packs <= MAX_PACKS, "{packs} packs");
        let cache = FunctionCache::new(dir.path().to_path_buf());
        for i in 0..MAX_PACKS + 2 {
            let v = cache.get(format!("k{i}").as_bytes()).expect("kept");
            assert_eq!(&*v, &[i as u8; 10][..]);
        }
        assert_eq!(cache.get(b"shared").as_deref(), Some(&b"same"[..]));
    }

    #[test]
    fn big_packs_are_not_rewritten_by_merges() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FunctionCache::new(dir.path().to_path_buf());
        assert!(cache.get(b"big").is_none());
        cache.insert(b"big", vec![3; (MERGE_MAX_BYTES + 1) as usize]);
        cache.flush().unwrap();
        let big = std::fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        for i in 0..MAX_PACKS + 2 {
            let cache = FunctionCache::new(dir.path().to_path_buf());
            assert!(cache.get(format!("k{i}").as_bytes()).is_none());
            cache.insert(format!("k{i}").as_bytes(), vec![i as u8; 10]);
            cache.flush().unwrap();
        }
        assert!(big.exists(), "the big pack is left alone");
        let packs = std::fs::read_dir(dir.path()).unwrap().count();
        assert!(packs <= MAX_PACKS, "{packs} packs");
        let cache = FunctionCache::new(dir.path().to_path_buf());
        assert_eq!(
            cache.get(b"big").map(|v| v.len()),
            Some((MERGE_MAX_BYTES + 1) as usize)
        );
        for i in 0..MAX_PACKS + 2 {
            assert!(cache.get(format!("k{i}").as_bytes()).is_some(), "k{i} kept");
        }
    }

    /// A compilation's module entries are stored without trimming, so none
    /// of them is evicted before the component's store, which trims once
    /// and keeps its own entry.
    #[test]
    fn only_the_last_store_of_a_compilation_trims() {
        let dir = tempfile::tempdir().unwrap();
        // A cap every entry is over: any trim would remove all it may.
        let cache = ComponentCache::new(dir.path().to_path_buf(), 1);
        let engine = Engine::default();
        // The smallest valid module: the magic number and version.
        let module = wasmtime::Module::new(&engine, b"\0asm\x01\0\0\0").unwrap();
        cache.store_untrimmed("a", &module, &[]).unwrap();
        cache.store_untrimmed("b", &module, &[]).unwrap();
        for key in ["a", "b"] {
            let (path, check) = cache.entry(key);
            assert!(path.exists() && check.exists(), "{key} was evicted");
        }
        cache.store("c", &module, &[], &[]).unwrap();
        for key in ["a", "b"] {
            assert!(!cache.entry(key).0.exists(), "{key} outlived the trim");
        }
        let (path, check) = cache.entry("c");
        assert!(path.exists() && check.exists(), "the stored entry is kept");
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
