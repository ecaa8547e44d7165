//! Files between the host and the guest's file system
//! ([`crate::Sandbox::write_file`], [`crate::Sandbox::read_file`]): inputs
//! for the code (a CSV, a model, a config) and what it leaves behind (a
//! chart, a report), without a host directory to mount.
//!
//! A guest path names a file in the sandbox's `/tmp` or in a mount. The
//! host opens it beneath that directory the way the guest would reach it:
//! every component is resolved with `cap-primitives` (the crate
//! wasmtime-wasi resolves the guest's own paths with), so a link the code
//! made (`/tmp/out -> ../../etc`) cannot lead the host outside the
//! directory either.
//!
//! The other way round, [`statvfs`] answers the guest's `os.statvfs`
//! (`shutil.disk_usage`), which WASI has no call for: the prelude asks the
//! host through a host call of a reserved name ([`STATVFS_CALL`]); so does
//! its SQLite set-up, which asks [`private`] whether a database file is in
//! the sandbox's own `/tmp`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use cap_primitives::fs::{DirOptions, OpenOptions};

use crate::Error;
use crate::mount::{Access, Mount, below, is_plain_absolute};
use crate::scratch::{ENTRY_COST, GUEST_TMP, Scratch};

/// The largest file [`read`] returns (the guest's memory limit is far
/// below it; a mounted host file may not be).
const READ_LIMIT: u64 = 1 << 30;

/// Where a guest path lives on the host.
struct Place<'a> {
    /// The directory the guest path starts in (the scratch directory or a
    /// mount's host directory).
    root: PathBuf,
    /// The path below it: plain names only.
    rel: PathBuf,
    /// The budget to count a write against (`/tmp`'s).
    budget: Option<&'a Scratch>,
}

fn bad(path: &str, reason: impl Into<String>) -> Error {
    Error::File {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Finds `path` in the sandbox's `/tmp` or its mounts; `write`: it is to be
/// written, so a read-only mount is refused.
fn locate<'a>(
    path: &str,
    scratch: Option<&'a Scratch>,
    mounts: &[Mount],
    write: bool,
) -> Result<Place<'a>, Error> {
    if !is_plain_absolute(path) {
        return Err(bad(
            path,
            "give an absolute guest path to a file, without `.` or `..`, e.g. `/tmp/input.csv`",
        ));
    }
    // A file strictly below `dir`.
    let inside = |dir: &str| {
        below(path, dir)
            .filter(|rest| !rest.is_empty())
            .map(PathBuf::from)
    };
    // A mount at `/tmp` replaces the scratch directory.
    if let Some(m) = mounts.iter().find(|m| inside(&m.guest).is_some()) {
        if write && m.access == Access::ReadOnly {
            return Err(bad(
                path,
                format!(
                    "the mount at `{}` is read-only; mount it with `Access::ReadWrite` to write there",
                    m.guest
                ),
            ));
        }
        return Ok(Place {
            root: m.host.clone(),
            rel: inside(&m.guest).unwrap_or_default(),
            budget: None,
        });
    }
    match (inside(GUEST_TMP), scratch) {
        (Some(rel), Some(s)) => Ok(Place {
            root: s.path().to_path_buf(),
            rel,
            budget: Some(s),
        }),
        (Some(_), None) => Err(bad(
            path,
            "this sandbox has no `/tmp` (its size limit is 0); give it one or use a mount",
        )),
        (None, _) => Err(bad(
            path,
            format!("it is neither in `{GUEST_TMP}` nor in a mount; name a file in one of them"),
        )),
    }
}

fn io_error(path: &str, e: std::io::Error) -> Error {
    let reason = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        std::io::ErrorKind::IsADirectory => "it is a directory".to_owned(),
        _ => e.to_string(),
    };
    bad(path, reason)
}

/// Writes `data` to the guest path `path` (see [`crate::Sandbox::write_file`]).
pub(crate) fn write(
    path: &str,
    data: &[u8],
    scratch: Option<&Scratch>,
    mounts: &[Mount],
) -> Result<(), Error> {
    let place = locate(path, scratch, mounts, true)?;
    let root =
        cap_primitives::fs::open_ambient_dir(&place.root, cap_primitives::ambient_authority())
            .map_err(|e| io_error(path, e))?;
    // The parent directories, as `mkdir -p` makes them.
    let mut dirs = 0;
    let mut parent = PathBuf::new();
    if let Some(p) = place.rel.parent() {
        for part in p.components() {
            parent.push(part);
            match cap_primitives::fs::create_dir(&root, &parent, &DirOptions::new()) {
                Ok(()) => dirs += 1,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_error(path, e)),
            }
        }
    }
    if let Some(budget) = place.budget
        && !budget.reserve(data.len() as u64 + ENTRY_COST * (dirs + 1))
    {
        return Err(bad(
            path,
            format!(
                "no space left: {} bytes do not fit in the sandbox's `/tmp` \
                 (`Limits::tmp_bytes`); raise the limit or write less",
                data.len()
            ),
        ));
    }
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    let mut file =
        cap_primitives::fs::open(&root, &place.rel, &options).map_err(|e| io_error(path, e))?;
    file.write_all(data).map_err(|e| io_error(path, e))
}

/// The contents of the guest path `path` (see [`crate::Sandbox::read_file`]).
pub(crate) fn read(
    path: &str,
    scratch: Option<&Scratch>,
    mounts: &[Mount],
) -> Result<Vec<u8>, Error> {
    let place = locate(path, scratch, mounts, false)?;
    let root =
        cap_primitives::fs::open_ambient_dir(&place.root, cap_primitives::ambient_authority())
            .map_err(|e| io_error(path, e))?;
    let mut options = OpenOptions::new();
    options.read(true);
    let file =
        cap_primitives::fs::open(&root, &place.rel, &options).map_err(|e| io_error(path, e))?;
    let meta = file.metadata().map_err(|e| io_error(path, e))?;
    if meta.is_dir() {
        return Err(bad(path, "it is a directory"));
    }
    if meta.len() > READ_LIMIT {
        return Err(bad(
            path,
            format!(
                "it holds {} bytes, more than the 1 GiB this reads",
                meta.len()
            ),
        ));
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    file.take(READ_LIMIT)
        .read_to_end(&mut data)
        .map_err(|e| io_error(path, e))?;
    Ok(data)
}

/// The host call the prelude's `os.statvfs` makes (a name no host function
/// can be given: [`crate::SandboxBuilder::function`] refuses a NUL).
pub(crate) const STATVFS_CALL: &str = "\0statvfs";

/// `ST_RDONLY`.
const READ_ONLY: u64 = 1;

/// `os.statvfs` of the guest path `path` (absolute, links resolved by the
/// guest, known to exist), as the JSON list of `statvfs_result`'s ten
/// fields: `/tmp` is its size limit and what is left of it (4 KiB blocks,
/// as the budget counts: a file, directory or link takes one); a mount is
/// its host file system's figures (read-only when mounted so); the rest
/// (the stdlib, the packages, `/`, `/dev`) is read-only and full.
pub(crate) fn statvfs(path: &str, scratch: Option<&Scratch>, mounts: &[Mount]) -> String {
    let inside = |dir: &str| below(path, dir).is_some();
    const BLOCK: u64 = ENTRY_COST;
    let fields: [u64; 10] = if let Some(m) = mounts.iter().find(|m| inside(&m.guest)) {
        let ro = if m.access == Access::ReadOnly {
            READ_ONLY
        } else {
            0
        };
        match host_statvfs(&m.host) {
            Some(
                [
                    bsize,
                    frsize,
                    blocks,
                    bfree,
                    bavail,
                    files,
                    ffree,
                    favail,
                    namemax,
                ],
            ) => [
                bsize, frsize, blocks, bfree, bavail, files, ffree, favail, ro, namemax,
            ],
            None => [BLOCK, BLOCK, 0, 0, 0, 0, 0, 0, ro, 255],
        }
    } else if let (true, Some(s)) = (inside(GUEST_TMP), scratch) {
        let total = s.limit() / BLOCK;
        let free = s.limit().saturating_sub(crate::scratch::usage(s.path())) / BLOCK;
        [BLOCK, BLOCK, total, free, free, total, free, free, 0, 255]
    } else {
        // One block, in use: a size (code checks `total > 0`), none free.
        [BLOCK, BLOCK, 1, 0, 0, 1, 0, 0, READ_ONLY, 255]
    };
    serde_json::to_string(&fields).unwrap_or_default()
}

/// The reserved host call that asks whether a guest path is in the
/// sandbox's private scratch directory (see [`private`]).
pub(crate) const PRIVATE_CALL: &str = "\0private";

/// Whether `path` (absolute, resolved in the guest) is in this sandbox's
/// own `/tmp`, which no other sandbox or process can open (not a mount,
/// not a mount inside it): JSON `true` or `false`. The prelude opens
/// SQLite databases there with the `unix` VFS, whose locks let readers in
/// while a writer prepares its change but only keep connections of one
/// process apart; elsewhere SQLite's WASI default (a lock directory, which
/// other sandboxes on the same mount also respect) stays.
pub(crate) fn private(path: &str, scratch: Option<&Scratch>, mounts: &[Mount]) -> String {
    let private = scratch.is_some()
        && below(path, GUEST_TMP).is_some()
        && !mounts.iter().any(|m| below(path, &m.guest).is_some());
    private.to_string()
}

/// The host's `statvfs` of `dir`: block size, fragment size, blocks, free,
/// available, files, free and available files, longest name.
#[cfg(unix)]
fn host_statvfs(dir: &Path) -> Option<[u64; 9]> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some([
        st.f_bsize,
        st.f_frsize,
        st.f_blocks,
        st.f_bfree,
        st.f_bavail,
        st.f_files,
        st.f_ffree,
        st.f_favail,
        st.f_namemax,
    ])
}

/// Elsewhere the figures are not known.
#[cfg(not(unix))]
fn host_statvfs(_dir: &Path) -> Option<[u64; 9]> {
    None
}
