//! Packages: assembling `/site-packages` from directories and wheels, and
//! finding the extension modules to link.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use eryx_linker::{EXTENSION_SUFFIXES, Extension, SITE_PACKAGES};

use crate::Error;

/// Calls `visit(path, relative path)` for every regular file under `root`,
/// in a stable (sorted) order; links are not followed.
fn walk_files(
    root: &Path,
    visit: &mut dyn FnMut(&Path, &Path) -> Result<(), Error>,
) -> Result<(), Error> {
    fn walk(
        root: &Path,
        dir: &Path,
        visit: &mut dyn FnMut(&Path, &Path) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let io = |source| Error::Package {
            path: dir.to_path_buf(),
            source,
        };
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .collect::<Result<_, _>>()
            .map_err(io)?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let kind = entry.file_type().map_err(io)?;
            if kind.is_dir() {
                walk(root, &path, visit)?;
            } else if kind.is_file() {
                visit(&path, path.strip_prefix(root).unwrap_or(&path))?;
            }
        }
        Ok(())
    }
    walk(root, root, visit)
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Package {
        path: path.to_path_buf(),
        source,
    })
}

/// How many extension digests [`extensions`] remembers on disk.
const EXTENSION_DIGESTS_KEPT: usize = 1024;

/// An extension module (or needed library) found under a package
/// directory: what the set's cache key and engine need, and, when this
/// process read the file, the validated extension itself.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// The file on the host.
    host: PathBuf,
    /// Its path in the guest.
    guest: String,
    /// What the cache key and the engine need of it.
    known: Known,
    /// Read and validated by this process (else [`ExtensionSet::load`]
    /// reads it when the set is linked).
    read: Option<Extension>,
}

/// The extension modules of a package set (see [`extensions`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct ExtensionSet(Vec<Found>);

impl ExtensionSet {
    /// Each one's guest path and SHA-256 (what the cache key is made of).
    pub(crate) fn digests(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|f| (f.guest.as_str(), f.known.sha256.as_str()))
    }

    /// Whether any of them throws or catches wasm exceptions.
    pub(crate) fn uses_exceptions(&self) -> bool {
        self.0.iter().any(|f| f.known.uses_exceptions)
    }

    /// The validated extensions, for linking: those this process has not
    /// read yet (known from the digest memo) are read and validated now,
    /// and must still be what the memo said (else the file changed while
    /// the sandbox was being built, and the error says so).
    pub(crate) fn load(&self) -> Result<Vec<Extension>, Error> {
        self.0
            .iter()
            .map(|f| match &f.read {
                Some(ext) => Ok(ext.clone()),
                None => {
                    let ext = validated(&f.host, &f.guest)?;
                    if ext.sha256() != f.known.sha256 {
                        return Err(Error::Package {
                            path: f.host.clone(),
                            source: std::io::Error::other(
                                "the file changed while the sandbox was being built; build it again",
                            ),
                        });
                    }
                    Ok(ext)
                }
            })
            .collect()
    }
}

/// Names the package an extension that cannot be used came from: the
/// linker's errors know the file only by its guest path
/// (`/site-packages/...`), which is not where the user put it when
/// several packages (or a wheel's unpacked copy) make up the mount.
pub(crate) fn with_origin(err: Error, packages: &[PathBuf]) -> Error {
    let Error::Link(error) = err else {
        return err;
    };
    let rel = error
        .file()
        .and_then(|f| f.strip_prefix(SITE_PACKAGES))
        .and_then(|f| f.strip_prefix('/'))
        .map(str::to_owned);
    match rel.and_then(|rel| Some((packages.iter().find(|p| holds(p, &rel))?, rel))) {
        Some((package, file)) => Error::BadExtension {
            package: package.clone(),
            file,
            error: Box::new(error),
        },
        None => Error::Link(error),
    }
}

/// Whether the package (a directory or a wheel) has a file at `rel`.
fn holds(package: &Path, rel: &str) -> bool {
    if package.is_dir() {
        return package.join(rel).is_file();
    }
    std::fs::File::open(package)
        .ok()
        .and_then(|f| zip::ZipArchive::new(f).ok())
        .is_some_and(|mut zip| zip.by_name(rel).is_ok())
}

/// Reads and validates the extension (or library) at `path`.
fn validated(path: &Path, guest: &str) -> Result<Extension, Error> {
    let name = guest.rsplit('/').next().unwrap_or(guest);
    let bytes = read(path)?;
    Ok(if eryx_linker::is_library_name(name) {
        Extension::library(guest, bytes)?
    } else {
        Extension::new(guest, bytes)?
    })
}

/// Every extension module under `dir`, with its guest path.
///
/// Each one's SHA-256 (what the set's cache key is made of) and what the
/// engine needs to know of it are remembered in `memo`
/// (`<cache>/ext-digests/`) by the file's stamp (device, inode, size,
/// modification and change times: the rule of the wheel-key memo and the
/// component cache) when it is first read and validated; a file known
/// there is not read at all until its set has to be linked (a cached set's
/// sandbox never links it). numpy's 19 modules are 9.4 MB: reading them
/// was ~13 % of a `--preimport numpy` run. A wheel's copy, a set's merged
/// tree and a directory keep their files' stamps from run to run; a
/// private merge (a set with a directory in it) makes new links each
/// time, which moves the change time, so it gains nothing.
pub(crate) fn extensions(dir: &Path, memo: Option<&Path>) -> Result<ExtensionSet, Error> {
    let mut out = Vec::new();
    let mut wrote = false;
    walk_files(dir, &mut |path, rel| {
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let looks_native =
            name.ends_with(".so") || EXTENSION_SUFFIXES.iter().any(|s| name.ends_with(s));
        if !looks_native {
            return Ok(());
        }
        let rel: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let guest = format!("{SITE_PACKAGES}/{}", rel.join("/"));
        let id = memo
            .and(crate::cache::file_stamp(path))
            .map(|stamp| format!("{MEMO_VERSION}\n{stamp}\n{guest}"));
        let remembered = match (memo, &id) {
            (Some(dir), Some(id)) => remembered_extension(dir, id),
            _ => None,
        };
        let (known, read) = match remembered {
            Some(known) => (known, None),
            None => {
                let ext = validated(path, &guest)?;
                let known = Known {
                    sha256: ext.sha256().to_string(),
                    uses_exceptions: ext.info().uses_exceptions(),
                };
                if let (Some(dir), Some(id)) = (memo, &id) {
                    remember_extension(dir, id, &known);
                    wrote = true;
                }
                (known, Some(ext))
            }
        };
        out.push(Found {
            host: path.to_path_buf(),
            guest,
            known,
            read,
        });
        Ok(())
    })?;
    if let Some(dir) = memo
        && wrote
    {
        prune_memo(dir, EXTENSION_DIGESTS_KEPT);
    }
    Ok(ExtensionSet(out))
}

/// The version of the memo's entries (part of each one's id): v2 entries
/// hold the engine's flags after the digest.
const MEMO_VERSION: &str = "v2";

/// What the memo knows of an extension file.
#[derive(Debug, Clone)]
struct Known {
    sha256: String,
    uses_exceptions: bool,
}

/// What the memo directory `dir` remembers under `id` (a file's stamp and
/// guest path): the file named by the SHA-256 of `id`, holding the digest
/// in hex and, on a second line, the flags (`e`: uses exceptions, `-`: it
/// does not; a `t` that earlier versions wrote for a library importing an
/// exception tag, then part of the snapshot's decision, is read and
/// ignored). `None` if there is none or it is not well formed (damaged).
fn remembered_extension(dir: &Path, id: &str) -> Option<Known> {
    let text = std::fs::read_to_string(memo_path(dir, id)).ok()?;
    let mut lines = text.lines();
    let digest = lines.next()?.trim();
    let flags = lines.next()?.trim();
    let well_formed = digest.len() == 64
        && digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && !flags.is_empty()
        && flags.bytes().all(|b| matches!(b, b't' | b'e' | b'-'))
        && lines.next().is_none();
    well_formed.then(|| Known {
        sha256: digest.to_owned(),
        uses_exceptions: flags.contains('e'),
    })
}

/// Remembers `known` under `id` in `dir` (see [`remembered_extension`]),
/// through a temporary file and a rename (a reader never sees half of
/// one). Best effort: without it the next process reads the file again.
fn remember_extension(dir: &Path, id: &str, known: &Known) {
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let mut flags = String::new();
    if known.uses_exceptions {
        flags.push('e');
    }
    if flags.is_empty() {
        flags.push('-');
    }
    let _ = tempfile::NamedTempFile::new_in(dir).and_then(|mut tmp| {
        use std::io::Write;
        write!(tmp, "{}\n{flags}\n", known.sha256)?;
        tmp.persist(memo_path(dir, id)).map_err(|e| e.error)
    });
}

/// A digest remembered in the memo directory `dir` under `id` (a file's
/// stamp and whatever else the digest depends on): the file named by the
/// SHA-256 of `id`, holding the digest in hex. `None` if there is none or
/// the file does not hold a digest (damaged).
fn remembered(dir: &Path, id: &str) -> Option<String> {
    let text = std::fs::read_to_string(memo_path(dir, id)).ok()?;
    let digest = text.trim();
    let well_formed = digest.len() == 64
        && digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    well_formed.then(|| digest.to_owned())
}

/// Remembers `digest` under `id` in `dir` (see [`remembered`]), through a
/// temporary file and a rename (a reader never sees half of one). Best
/// effort: without it the next process computes the digest again.
fn remember(dir: &Path, id: &str, digest: &str) {
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let _ = tempfile::NamedTempFile::new_in(dir).and_then(|mut tmp| {
        use std::io::Write;
        tmp.write_all(digest.as_bytes())?;
        tmp.persist(memo_path(dir, id)).map_err(|e| e.error)
    });
}

fn memo_path(dir: &Path, id: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    dir.join(&hex::encode(Sha256::digest(id.as_bytes()))[..32])
}

/// Total bytes a set of packages may unpack to (a guard against zip bombs).
const MAX_UNPACKED: u64 = 2 << 30;

/// The host directory mounted at `/site-packages`, if any.
#[derive(Debug)]
pub(crate) enum SitePackages {
    /// No packages.
    None,
    /// One directory, mounted as it is.
    Dir(PathBuf),
    /// One wheel, mounted straight from its unpacked copy in the cache (no
    /// private directory of links to make), or several wheels from their
    /// merged tree in the cache (made once per set, see [`unpacked_set`]).
    /// The shared lock on the directory's mark keeps a prune from removing
    /// it while sandboxes use it.
    Unpacked {
        /// The unpacked copy or merged tree.
        dir: PathBuf,
        /// What its content is made from: the wheels' SHA-256s (see
        /// [`SitePackages::content_key`]).
        key: String,
        /// Holds the shared lock (see [`lock_unpacked`]).
        _lock: std::fs::File,
    },
    /// Several packages or wheels, merged into a private directory that
    /// lives as long as the sandboxes using it.
    Merged(tempfile::TempDir),
}

impl SitePackages {
    /// The directory to mount.
    pub(crate) fn dir(&self) -> Option<&Path> {
        match self {
            SitePackages::None => None,
            SitePackages::Dir(d) | SitePackages::Unpacked { dir: d, .. } => Some(d),
            SitePackages::Merged(t) => Some(t.path()),
        }
    }

    /// A key for what the mounted files hold, when it is known without
    /// reading them: an unpacked copy or merged tree holds its wheels'
    /// files (checked against its listing when it was locked), and the
    /// bytecode made from them. The pre-imports' snapshot is keyed on it
    /// instead of [`content_hash`] (which read and hashed every file of
    /// numpy's copy, ~45 ms of every `--preimport numpy` run).
    pub(crate) fn content_key(&self) -> Option<&str> {
        match self {
            SitePackages::Unpacked { key, .. } => Some(key),
            _ => None,
        }
    }

    /// Whether this is a directory eryx owns and may add bytecode to (a
    /// private merge or an unpacked wheel in the cache; not a user's
    /// directory).
    pub(crate) fn owned(&self) -> bool {
        matches!(
            self,
            SitePackages::Merged(_) | SitePackages::Unpacked { .. }
        )
    }

    /// Builds the view of `packages`. With a cache directory, wheels are
    /// unpacked once into it (see [`unpacked_wheel`]); a single wheel is
    /// mounted from there, several from their merged tree there (made once:
    /// see [`unpacked_set`]). Sets with directories in them are merged into
    /// a private directory of hard links into the copies, per process (a
    /// fresh process with numpy's wheel spent ~12 ms making ~1,000 links
    /// and their directories).
    pub(crate) fn assemble(
        packages: &[PathBuf],
        cache: Option<&Path>,
    ) -> Result<SitePackages, Error> {
        match packages {
            [] => return Ok(SitePackages::None),
            [dir] if dir.is_dir() => return Ok(SitePackages::Dir(dir.clone())),
            _ => {}
        }
        // The private directory sits beside the unpacked wheels (one
        // filesystem: hard links work), else in the system's temp dir.
        let wheels = cache.and_then(|c| {
            let dir = c.join("wheels");
            std::fs::create_dir_all(dir.join("tmp")).ok()?;
            // What a process killed before its clean-up left there.
            crate::scratch::remove_dead_process_dirs(&dir.join("tmp"), &["site-", "unpack-"]);
            remove_stale(&dir.join("tmp"));
            Some(dir)
        });
        if let Some(wheels) = &wheels
            && packages.iter().all(|p| is_wheel(p))
        {
            // A copy or tree seen before is checked once, under the lock
            // (~1,000 files with numpy); only a missing or damaged one is
            // made again (and checked again there).
            let (dir, key) = match packages {
                [wheel] => {
                    let (dir, _) = copy_dir(wheel, wheels)?;
                    let key = dir_key(&dir);
                    (dir, key)
                }
                _ => set_dir(packages, wheels)?,
            };
            let locked = match lock_unpacked(&dir) {
                Some(lock) => {
                    mark_used(&dir);
                    Some(lock)
                }
                None => match packages {
                    [wheel] => unpacked_wheel(wheel, wheels)?,
                    _ => unpacked_set(packages, &dir, wheels)?,
                }
                .and_then(|d| lock_unpacked(&d)),
            };
            if let Some(lock) = locked {
                return Ok(SitePackages::Unpacked {
                    dir,
                    key,
                    _lock: lock,
                });
            }
        }
        let prefix = format!("site-{}-", std::process::id());
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix);
        let merged = match &wheels {
            Some(dir) => builder.tempdir_in(dir.join("tmp")),
            None => builder.tempdir(),
        }
        .map_err(|source| Error::Package {
            path: std::env::temp_dir(),
            source,
        })?;
        let mut owners = std::collections::HashMap::new();
        let mut total = 0u64;
        for package in packages {
            if package.is_dir() {
                merge_dir(package, package, package, merged.path(), &mut owners)?;
            } else if is_wheel(package) {
                match wheels
                    .as_deref()
                    .and_then(|dir| unpacked_wheel(package, dir).transpose())
                    .transpose()?
                {
                    Some(dir) => merge_dir(package, &dir, &dir, merged.path(), &mut owners)?,
                    None => unpack_wheel(package, merged.path(), &mut owners, &mut total)?,
                }
            } else {
                return Err(Error::BadPackage {
                    path: package.clone(),
                    reason: "not a directory or a .whl file".to_string(),
                });
            }
        }
        Ok(SitePackages::Merged(merged))
    }
}

/// Whether `path` names a wheel (by its extension; a directory is a package
/// laid out like an unpacked wheel).
fn is_wheel(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "whl") && !path.is_dir()
}

/// How many unpacked wheels and merged sets the cache keeps at most (least
/// recently used go first; see [`prune_wheels`] for the size cap). Room for
/// a wheelhouse of test packages (45 wheels) and the sets made from it.
const WHEELS_KEPT: usize = 64;

/// The [`SitePackages::content_key`] of a single wheel's copy
/// (`<wheels>/<first 32 hex digits of its SHA-256>`).
fn dir_key(dir: &Path) -> String {
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    format!("wheel {name}")
}

/// Where the merged tree of a set of several wheels is (or goes),
/// `<wheels>/set-<digest>`, and its content key: a digest of the wheels'
/// SHA-256s, in sorted order (the merge refuses two wheels shipping one
/// file, so the order changes nothing in the tree).
fn set_dir(packages: &[PathBuf], wheels: &Path) -> Result<(PathBuf, String), Error> {
    use sha2::{Digest, Sha256};
    let memo = wheels.parent().map(|cache| cache.join("wheel-keys"));
    let mut keys = packages
        .iter()
        .map(|w| Ok(wheel_key(w, memo.as_deref())?.0))
        .collect::<Result<Vec<_>, Error>>()?;
    keys.sort();
    let mut h = Sha256::new();
    h.update(b"eryx merged wheels v1\n");
    for key in &keys {
        h.update(key.as_bytes());
        h.update(b"\n");
    }
    let digest = hex::encode(h.finalize());
    Ok((
        wheels.join(format!("{SET_PREFIX}{}", &digest[..32])),
        format!("wheels {digest}"),
    ))
}

/// The name prefix of a merged set's tree in `<wheels>`.
const SET_PREFIX: &str = "set-";

/// Makes the merged tree of several wheels at `dir` (see [`set_dir`]): the
/// files of their unpacked copies hard-linked into one directory once (a
/// wheelhouse of 45 test wheels: ~7,500 links, made and removed again in
/// every process before), with a listing as a copy has, so that the tree
/// is checked, locked, pruned and retired as a copy is. Each process then
/// mounts it as it is; bytecode the first use adds stays in it. `Ok(None)`
/// if the cache cannot be written (the caller merges privately); two
/// wheels shipping one file is an error either way.
fn unpacked_set(packages: &[PathBuf], dir: &Path, wheels: &Path) -> Result<Option<PathBuf>, Error> {
    let Ok(tmp) = tempfile::Builder::new()
        .prefix(&format!("site-{}-", std::process::id()))
        .tempdir_in(wheels.join("tmp"))
    else {
        return Ok(None);
    };
    let mut owners = std::collections::HashMap::new();
    for wheel in packages {
        let Some(copy) = unpacked_wheel(wheel, wheels)? else {
            return Ok(None);
        };
        merge_dir(wheel, &copy, &copy, tmp.path(), &mut owners)?;
    }
    finish_unpacked(tmp, owners.into_keys().collect(), dir, wheels)
}

/// Writes the listing of `files` (relative paths in `tmp`) as `tmp`'s mark
/// and renames `tmp` to `dir` (retiring a damaged `dir` first); `dir` if it
/// is whole then (ours, or one a concurrent process put there first).
fn finish_unpacked(
    tmp: tempfile::TempDir,
    mut files: Vec<PathBuf>,
    dir: &Path,
    wheels: &Path,
) -> Result<Option<PathBuf>, Error> {
    files.sort();
    let mut listing = String::new();
    for rel in files {
        let Some(stamp) = size_and_mtime(&tmp.path().join(&rel)) else {
            return Ok(None);
        };
        listing.push_str(&format!("{stamp} {}\n", rel.display()));
    }
    if std::fs::write(tmp.path().join(UNPACKED_MARK), listing).is_err() {
        return Ok(None);
    }
    if dir.exists() && !intact(dir) {
        // A damaged copy (or one half removed by a prune).
        retire(dir, wheels);
    }
    if std::fs::rename(tmp.path(), dir).is_err() && !intact(dir) {
        return Ok(None);
    }
    // Renamed: nothing left for the guard to remove (a lost race leaves
    // ours to it).
    drop(tmp);
    // A quarter of the cache's cap for unpacked wheels and merged sets.
    prune_wheels(wheels, dir, crate::cache::max_bytes_from_env() / 4);
    Ok(Some(dir.to_path_buf()))
}

/// Marks a completely unpacked wheel in the cache (written last).
const UNPACKED_MARK: &str = ".eryx-unpacked";

/// The wheel unpacked in the cache (`<wheels>/<sha256 of the wheel>/`),
/// unpacking it first if needed: a set with numpy no longer inflates its
/// ~30 MB on every run. `Ok(None)` if the cache cannot be written (the caller
/// unpacks into the private directory instead); a malformed wheel is an
/// error either way. A cached copy whose files are missing, or of another
/// size or modification time than when unpacked, is unpacked again.
fn unpacked_wheel(wheel: &Path, wheels: &Path) -> Result<Option<PathBuf>, Error> {
    let (dir, bytes) = copy_dir(wheel, wheels)?;
    if intact(&dir) {
        mark_used(&dir);
        return Ok(Some(dir));
    }
    let Ok(tmp) = tempfile::Builder::new()
        .prefix(&format!("unpack-{}-", std::process::id()))
        .tempdir_in(wheels.join("tmp"))
    else {
        return Ok(None);
    };
    let bytes = match bytes {
        Some(b) => b,
        None => read(wheel)?,
    };
    let mut owners = std::collections::HashMap::new();
    let mut total = 0u64;
    unpack_wheel_from(
        wheel,
        std::io::Cursor::new(bytes),
        tmp.path(),
        &mut owners,
        &mut total,
    )?;
    finish_unpacked(tmp, owners.into_keys().collect(), &dir, wheels)
}

/// Where `wheel`'s unpacked copy is (or goes), `<wheels>/<its SHA-256>`,
/// and the wheel's bytes if they were read for its digest.
fn copy_dir(wheel: &Path, wheels: &Path) -> Result<(PathBuf, Option<Vec<u8>>), Error> {
    let memo = wheels.parent().map(|cache| cache.join("wheel-keys"));
    let (key, bytes) = wheel_key(wheel, memo.as_deref())?;
    Ok((wheels.join(&key[..32]), bytes))
}

/// Moves a copy's LRU clock (its mark's modification time) to now.
fn mark_used(dir: &Path) {
    if let Ok(f) = std::fs::File::options()
        .append(true)
        .open(dir.join(UNPACKED_MARK))
    {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}

/// How many wheels' keys [`wheel_key`] remembers on disk (the least
/// recently written go first).
const WHEEL_KEYS_KEPT: usize = 256;

/// This process's memo of [`wheel_key`]: path -> (stamp, key).
type KeyMemo = std::sync::Mutex<std::collections::HashMap<PathBuf, (String, String)>>;
static WHEEL_KEYS: std::sync::OnceLock<KeyMemo> = std::sync::OnceLock::new();

/// Takes a damaged unpacked copy out of the way: removed, unless a live
/// sandbox mounts it (a shared lock on its mark); then it is moved into
/// `<wheels>/tmp/stale-*` (the sandbox keeps its view: the mount holds the
/// directory, not its path) and [`remove_stale`] removes it once nobody
/// holds it.
fn retire(dir: &Path, wheels: &Path) {
    let mark = std::fs::File::open(dir.join(UNPACKED_MARK));
    if let Ok(file) = &mark
        && let Err(std::fs::TryLockError::WouldBlock) = file.try_lock()
    {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let aside = wheels
            .join("tmp")
            .join(format!("{STALE}{}-{nanos}", std::process::id()));
        if std::fs::rename(dir, &aside).is_ok() {
            return;
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Prefix of a damaged copy moved aside while in use (see [`retire`]).
const STALE: &str = "stale-";

/// Removes the copies [`retire`] moved aside that no sandbox holds any more.
fn remove_stale(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(STALE) {
            continue;
        }
        let dir = entry.path();
        let mark = std::fs::File::open(dir.join(UNPACKED_MARK));
        if let Ok(file) = &mark
            && file.try_lock().is_err()
        {
            continue;
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A shared lock on an unpacked wheel's mark, taken while sandboxes mount
/// the copy directly: [`prune_wheels`] skips an entry whose mark it cannot
/// lock exclusively, and removes one while holding that lock. The copy is
/// checked again once locked (a prune may have removed it in between);
/// `None` if it is no longer whole or the lock cannot be taken.
fn lock_unpacked(dir: &Path) -> Option<std::fs::File> {
    let mark = std::fs::File::open(dir.join(UNPACKED_MARK)).ok()?;
    mark.lock_shared().ok()?;
    intact(dir).then_some(mark)
}

/// The SHA-256 of a wheel (hex), and its bytes if they were read for it.
/// Remembered while the file's stamp (device, inode, size, modification and
/// change times, as the component cache uses for its entries) is unchanged:
/// per process, so that building sandboxes of one set again (a pool
/// refilling) does not read and hash every wheel each time, and across
/// processes in `memo` (`<cache>/wheel-keys/`), so that a fresh process
/// with numpy's 9 MB wheel does not spend ~12 ms reading and hashing it.
/// Any write to the wheel, a truncation or a replacement changes the stamp,
/// and the wheel is hashed again.
fn wheel_key(wheel: &Path, memo: Option<&Path>) -> Result<(String, Option<Vec<u8>>), Error> {
    use sha2::{Digest, Sha256};
    let identity = crate::cache::file_stamp(wheel);
    let keys = WHEEL_KEYS.get_or_init(Default::default);
    if let Some(id) = &identity
        && let Some((seen, key)) = keys.lock().unwrap_or_else(|e| e.into_inner()).get(wheel)
        && seen == id
    {
        return Ok((key.clone(), None));
    }
    let remember_here = |key: &str| {
        if let Some(id) = &identity {
            keys.lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(wheel.to_path_buf(), (id.clone(), key.to_owned()));
        }
    };
    // On disk by the stamp alone: device and inode name the file, and the
    // digest depends on nothing else.
    if let (Some(dir), Some(id)) = (memo, &identity)
        && let Some(key) = remembered(dir, id)
    {
        remember_here(&key);
        return Ok((key, None));
    }
    let bytes = read(wheel)?;
    let key = hex::encode(Sha256::digest(&bytes));
    remember_here(&key);
    if let (Some(dir), Some(id)) = (memo, &identity) {
        remember(dir, id, &key);
        prune_memo(dir, WHEEL_KEYS_KEPT);
    }
    Ok((key, Some(bytes)))
}

/// Keeps the `max` most recently written files of a memo directory.
fn prune_memo(dir: &Path, max: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<_> = entries
        .flatten()
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            m.is_file().then(|| (m.modified().ok(), e.path()))
        })
        .collect();
    if files.len() <= max {
        return;
    }
    files.sort();
    for (_, path) in &files[..files.len() - max] {
        let _ = std::fs::remove_file(path);
    }
}

/// A file's size and modification time (ns), as `<size>:<mtime>`: what a
/// truncation, a deletion or a write in place changes. (Not the cache's
/// `file_stamp`: its change time moves whenever a file is hard-linked, as
/// every use of an unpacked wheel does.)
fn size_and_mtime(path: &Path) -> Option<String> {
    let m = std::fs::symlink_metadata(path).ok()?;
    if !m.is_file() {
        return None;
    }
    let mtime = m
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_nanos();
    Some(format!("{}:{mtime}", m.len()))
}

/// Whether an unpacked wheel has every file its listing names, each with
/// the size and modification time it was unpacked with.
fn intact(dir: &Path) -> bool {
    let Ok(listing) = std::fs::read_to_string(dir.join(UNPACKED_MARK)) else {
        return false;
    };
    listing.lines().all(|line| {
        let Some((stamp, rel)) = line.split_once(' ') else {
            return false;
        };
        size_and_mtime(&dir.join(rel)).as_deref() == Some(stamp)
    })
}

/// Keeps the most recently used unpacked wheels: at most [`WHEELS_KEPT`]
/// of them, together at most `max_bytes` (by their listings), never `keep`
/// (the one in use).
fn prune_wheels(wheels: &Path, keep: &Path, max_bytes: u64) {
    let Ok(entries) = std::fs::read_dir(wheels) else {
        return;
    };
    let found = entries
        .flatten()
        .filter(|e| e.file_name() != "tmp")
        .map(|e| {
            let mark = e.path().join(UNPACKED_MARK);
            let bytes = std::fs::read_to_string(&mark)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.split(':').next()?.parse::<u64>().ok())
                .sum();
            (crate::scratch::modified(&mark), e.path(), bytes)
        })
        .collect();
    crate::scratch::prune_least_recent(found, keep, WHEELS_KEPT, max_bytes, UNPACKED_MARK);
}

/// Records that `rel` comes from `package`; two packages may not ship the same file.
fn claim(
    owners: &mut std::collections::HashMap<PathBuf, PathBuf>,
    rel: &Path,
    package: &Path,
) -> Result<(), Error> {
    if let Some(first) = owners.insert(rel.to_path_buf(), package.to_path_buf()) {
        return Err(Error::BadPackage {
            path: package.to_path_buf(),
            reason: format!(
                "it ships `{}`, which {} ships too",
                rel.display(),
                first.display()
            ),
        });
    }
    Ok(())
}

/// Links (or copies) the files under `dir` into `dest`, at their paths
/// relative to `root`; `package` is who ships them (for conflicts).
fn merge_dir(
    package: &Path,
    root: &Path,
    dir: &Path,
    dest: &Path,
    owners: &mut std::collections::HashMap<PathBuf, PathBuf>,
) -> Result<(), Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Package { path, source }
    };
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        let kind = entry.file_type().map_err(io(&path))?;
        if kind.is_dir() {
            std::fs::create_dir_all(dest.join(&rel)).map_err(io(&path))?;
            merge_dir(package, root, &path, dest, owners)?;
        } else if kind.is_file() {
            if rel.as_os_str() == UNPACKED_MARK {
                continue;
            }
            claim(owners, &rel, package)?;
            let target = dest.join(&rel);
            if std::fs::hard_link(&path, &target).is_err() {
                std::fs::copy(&path, &target).map_err(io(&path))?;
            }
        }
        // Links inside a package directory are skipped: the guest must not
        // be able to follow them out of the package.
    }
    Ok(())
}

fn unpack_wheel(
    wheel: &Path,
    dest: &Path,
    owners: &mut std::collections::HashMap<PathBuf, PathBuf>,
    total: &mut u64,
) -> Result<(), Error> {
    let file = std::fs::File::open(wheel).map_err(|source| Error::Package {
        path: wheel.to_path_buf(),
        source,
    })?;
    unpack_wheel_from(wheel, file, dest, owners, total)
}

/// Unpacks the wheel `wheel` (read from `file`) into `dest`, refusing
/// entries that escape it, links, and more than [`MAX_UNPACKED`] bytes.
fn unpack_wheel_from(
    wheel: &Path,
    file: impl Read + std::io::Seek,
    dest: &Path,
    owners: &mut std::collections::HashMap<PathBuf, PathBuf>,
    total: &mut u64,
) -> Result<(), Error> {
    let bad = |reason: String| Error::BadPackage {
        path: wheel.to_path_buf(),
        reason,
    };
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| bad(format!("not a valid wheel (zip): {e}")))?;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| bad(format!("entry {i}: {e}")))?;
        let name = entry.name().to_string();
        let rel = PathBuf::from(&name);
        if name.starts_with('/') || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(bad(format!(
                "entry `{name}` escapes the package (absolute or `..`)"
            )));
        }
        if entry.is_symlink() {
            return Err(bad(format!("entry `{name}` is a link")));
        }
        if entry.is_dir() {
            std::fs::create_dir_all(dest.join(&rel)).map_err(|source| Error::Package {
                path: dest.join(&rel),
                source,
            })?;
            continue;
        }
        claim(owners, &rel, wheel)?;
        *total = total.saturating_add(entry.size());
        if *total > MAX_UNPACKED {
            return Err(bad(format!("it unpacks to more than {MAX_UNPACKED} bytes")));
        }
        let target = dest.join(&rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|source| Error::Package {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let mut bytes = Vec::with_capacity(entry.size().min(1 << 24) as usize);
        (&mut entry)
            .take(MAX_UNPACKED + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("entry `{name}`: {e}")))?;
        if bytes.len() as u64 != entry.size() {
            return Err(bad(format!(
                "entry `{name}` is not the size its header says"
            )));
        }
        std::fs::write(&target, &bytes).map_err(|source| Error::Package {
            path: target.clone(),
            source,
        })?;
    }
    Ok(())
}

/// A content hash of every file under `dir` (relative paths and bytes),
/// but an unpacked wheel's mark (its listing holds the times the copy was
/// unpacked at, which are not the packages' content).
pub(crate) fn content_hash(dir: &Path) -> Result<String, Error> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    walk_files(dir, &mut |path, rel| {
        if rel.as_os_str() == UNPACKED_MARK {
            return Ok(());
        }
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        let bytes = read(path)?;
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
        Ok(())
    })?;
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file the digest memo knows is not read when its set is scanned
    /// (here: bytes that are no wasm, which validation would refuse): the
    /// memo's digest and flags stand for it until the set is linked, when
    /// `load` reads and validates it. A damaged entry is not believed.
    #[test]
    fn a_remembered_extension_is_read_only_when_its_set_is_linked() {
        let t = tempfile::tempdir().unwrap();
        let (site, memo) = (t.path().join("site"), t.path().join("memo"));
        std::fs::create_dir_all(&site).unwrap();
        let file = site.join("m.cpython-314-wasm32-wasi.so");
        std::fs::write(&file, b"not wasm").unwrap();
        let guest = "/site-packages/m.cpython-314-wasm32-wasi.so";
        let stamp = crate::cache::file_stamp(&file).unwrap();
        let id = format!("{MEMO_VERSION}\n{stamp}\n{guest}");
        let digest = "ab".repeat(32);
        std::fs::create_dir_all(&memo).unwrap();
        std::fs::write(memo_path(&memo, &id), format!("{digest}\nte\n")).unwrap();
        let set = extensions(&site, Some(&memo)).unwrap();
        assert_eq!(
            set.digests().collect::<Vec<_>>(),
            [(guest, digest.as_str())]
        );
        assert!(set.uses_exceptions());
        let err = set.load().unwrap_err().to_string();
        assert!(err.contains("m.cpython-314-wasm32-wasi.so"), "{err}");
        // Without the memo, or with a damaged entry, it is read at once.
        assert!(extensions(&site, None).is_err());
        std::fs::write(memo_path(&memo, &id), &digest).unwrap();
        assert!(extensions(&site, Some(&memo)).is_err());
        // A valid module (its `@dylink.0` memory info alone) whose bytes are
        // not what the memo says: `load` refuses it, naming the file.
        let mut module = b"\0asm\x01\0\0\0\0\x0f\x08dylink.0\x01\x04".to_vec();
        module.extend([0; 4]);
        std::fs::write(&file, &module).unwrap();
        assert_eq!(extensions(&site, None).unwrap().load().unwrap().len(), 1);
        let stamp = crate::cache::file_stamp(&file).unwrap();
        let id = format!("{MEMO_VERSION}\n{stamp}\n{guest}");
        std::fs::write(memo_path(&memo, &id), format!("{digest}\n-\n")).unwrap();
        let err = extensions(&site, Some(&memo)).unwrap().load().unwrap_err();
        let msg = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(
            msg.contains("m.cpython-314-wasm32-wasi.so")
                && msg.contains("the file changed while the sandbox was being built"),
            "{msg}"
        );
    }

    /// A fake unpacked wheel: a mark listing one file of `bytes`, last used
    /// `age` seconds ago.
    fn entry(wheels: &Path, name: &str, bytes: u64, age: u64) -> PathBuf {
        let dir = wheels.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(UNPACKED_MARK), format!("{bytes}:0 f.py\n")).unwrap();
        let when = std::time::SystemTime::now() - std::time::Duration::from_secs(age);
        std::fs::File::options()
            .append(true)
            .open(dir.join(UNPACKED_MARK))
            .unwrap()
            .set_modified(when)
            .unwrap();
        dir
    }

    #[test]
    fn prune_keeps_the_newest_within_count_and_size_and_the_one_in_use() {
        let t = tempfile::tempdir().unwrap();
        let w = t.path();
        std::fs::create_dir_all(w.join("tmp")).unwrap();
        let old_big = entry(w, "old-big", 600, 300);
        let in_use = entry(w, "in-use", 500, 400);
        let newer = entry(w, "newer", 300, 100);
        let newest = entry(w, "newest", 300, 10);
        // Cap 1000 bytes: newest (300) + newer (300) fit beside the one in
        // use (500 counts first, so 1100 > 1000 drops `newer`); the old big
        // one goes too.
        prune_wheels(w, &in_use, 1000);
        assert!(in_use.exists() && newest.exists());
        assert!(!newer.exists() && !old_big.exists());
        assert!(w.join("tmp").exists());
        // The count cap: WHEELS_KEPT + 3 small entries leave WHEELS_KEPT.
        for i in 0..WHEELS_KEPT + 3 {
            entry(w, &format!("n{i}"), 1, i as u64 + 1000);
        }
        prune_wheels(w, &in_use, u64::MAX);
        let left = std::fs::read_dir(w)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name() != "tmp")
            .count();
        assert_eq!(left, WHEELS_KEPT);
        assert!(in_use.exists());
    }

    #[test]
    fn a_wheels_key_is_remembered_on_disk_until_the_wheel_changes() {
        use sha2::{Digest, Sha256};
        let t = tempfile::tempdir().unwrap();
        let wheel = t.path().join("w-1.0-py3-none-any.whl");
        let memo = t.path().join("wheel-keys");
        std::fs::write(&wheel, b"first").unwrap();
        let first = hex::encode(Sha256::digest(b"first"));
        let forget = || {
            WHEEL_KEYS
                .get_or_init(Default::default)
                .lock()
                .unwrap()
                .remove(&wheel);
        };
        // Hashed (bytes read) and written to the memo.
        let (key, bytes) = wheel_key(&wheel, Some(&memo)).unwrap();
        assert_eq!(
            (key.as_str(), bytes.as_deref()),
            (first.as_str(), Some(&b"first"[..]))
        );
        let files: Vec<_> = std::fs::read_dir(&memo).unwrap().flatten().collect();
        assert_eq!(files.len(), 1);
        // A new process (the in-process memo forgotten) takes it from disk:
        // no bytes read.
        forget();
        let (key, bytes) = wheel_key(&wheel, Some(&memo)).unwrap();
        assert_eq!((key.as_str(), bytes), (first.as_str(), None));
        // A damaged memo file is not believed.
        forget();
        let memo_file = files[0].path();
        let text = std::fs::read_to_string(&memo_file).unwrap();
        std::fs::write(&memo_file, &text[..text.len() - 1]).unwrap();
        let (key, bytes) = wheel_key(&wheel, Some(&memo)).unwrap();
        assert_eq!((key.as_str(), bytes.is_some()), (first.as_str(), true));
        // A wheel written again (new stamp) is hashed again, in this
        // process and the next.
        std::fs::write(&wheel, b"second!").unwrap();
        let second = hex::encode(Sha256::digest(b"second!"));
        let (key, bytes) = wheel_key(&wheel, Some(&memo)).unwrap();
        assert_eq!((key.as_str(), bytes.is_some()), (second.as_str(), true));
        forget();
        let (key, bytes) = wheel_key(&wheel, Some(&memo)).unwrap();
        assert_eq!((key.as_str(), bytes), (second.as_str(), None));
        // The memo keeps the most recently written files.
        for i in 0..5 {
            std::fs::write(memo.join(format!("old{i}")), "x").unwrap();
        }
        prune_memo(&memo, 3);
        assert_eq!(std::fs::read_dir(&memo).unwrap().count(), 3);
    }

    #[test]
    fn a_mounted_unpacked_wheel_is_not_pruned_until_its_lock_goes() {
        let t = tempfile::tempdir().unwrap();
        let w = t.path();
        std::fs::create_dir_all(w.join("tmp")).unwrap();
        // Old enough to go, over any cap, and whole (its listed file there).
        let mounted = entry(w, "mounted", 1, 3600);
        std::fs::write(mounted.join("f.py"), "x").unwrap();
        let listing = format!("{} f.py\n", size_and_mtime(&mounted.join("f.py")).unwrap());
        std::fs::write(mounted.join(UNPACKED_MARK), listing).unwrap();
        std::fs::File::options()
            .append(true)
            .open(mounted.join(UNPACKED_MARK))
            .unwrap()
            .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
            .unwrap();
        let other = entry(w, "other", 1, 3600);
        let lock = lock_unpacked(&mounted).expect("a whole copy can be locked");
        prune_wheels(w, &w.join("none"), 0);
        assert!(mounted.join("f.py").exists(), "a mounted copy was pruned");
        assert!(!other.exists());
        drop(lock);
        prune_wheels(w, &w.join("none"), 0);
        assert!(!mounted.exists());
        // A damaged copy is not locked for mounting.
        let damaged = entry(w, "damaged", 1, 0);
        assert!(lock_unpacked(&damaged).is_none());
    }

    #[test]
    fn a_damaged_copy_in_use_is_moved_aside_until_its_lock_goes() {
        let t = tempfile::tempdir().unwrap();
        let w = t.path();
        let tmp = w.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        // Not in use: removed at once.
        let idle = entry(w, "idle", 1, 0);
        retire(&idle, w);
        assert!(!idle.exists());
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
        // In use (a shared lock on its mark, as a mounted copy holds):
        // moved aside with its files, kept while locked, then swept.
        let used = entry(w, "used", 1, 0);
        std::fs::write(used.join("f.py"), "x").unwrap();
        let lock = std::fs::File::open(used.join(UNPACKED_MARK)).unwrap();
        lock.lock_shared().unwrap();
        retire(&used, w);
        assert!(!used.exists());
        let aside: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().collect();
        assert_eq!(aside.len(), 1);
        assert!(aside[0].file_name().to_string_lossy().starts_with(STALE));
        assert!(aside[0].path().join("f.py").exists());
        remove_stale(&tmp);
        assert!(aside[0].path().join("f.py").exists(), "swept while in use");
        drop(lock);
        remove_stale(&tmp);
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    }

    #[test]
    fn the_content_hash_leaves_out_an_unpacked_copys_mark() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        for d in [&a, &b] {
            std::fs::create_dir_all(d.join("pkg")).unwrap();
            std::fs::write(d.join("pkg/m.py"), "x = 1\n").unwrap();
        }
        std::fs::write(b.join(UNPACKED_MARK), "6:123 pkg/m.py\n").unwrap();
        assert_eq!(content_hash(&a).unwrap(), content_hash(&b).unwrap());
        std::fs::write(b.join("pkg/m.py"), "x = 2\n").unwrap();
        assert_ne!(content_hash(&a).unwrap(), content_hash(&b).unwrap());
    }

    #[test]
    fn wheels_used_a_moment_ago_are_not_pruned() {
        // One sandbox of WHEELS_KEPT + 5 wheels: each was used seconds ago
        // (by this assembly or one running beside it) and stays.
        let t = tempfile::tempdir().unwrap();
        let w = t.path();
        std::fs::create_dir_all(w.join("tmp")).unwrap();
        for i in 0..WHEELS_KEPT + 5 {
            entry(w, &format!("w{i}"), 1, 2);
        }
        let old = entry(w, "old", 1, 3600);
        prune_wheels(w, &w.join("w0"), u64::MAX);
        let left = std::fs::read_dir(w)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name() != "tmp")
            .count();
        assert_eq!(left, WHEELS_KEPT + 5);
        assert!(!old.exists());
    }
}
