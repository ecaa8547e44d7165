//! The sandbox's private scratch directory: `/tmp` in the guest, bounded by
//! [`crate::Limits::tmp_bytes`].
//!
//! The directory lives in memory where the host has a memory filesystem
//! (`/dev/shm` on Linux; elsewhere the host's temporary directory), is
//! created with the [`crate::Sandbox`] and removed when it is dropped. The
//! guest sees it through wasmtime-wasi's ordinary preopen (so paths cannot
//! leave it, as with mounts), but the `wasi:filesystem/types` interface is
//! served by [`ScratchView`], which passes every call to wasmtime-wasi and
//! counts what the guest adds under `/tmp`: bytes written (through
//! descriptors and their output streams), sizes set, and a fixed cost per
//! file, directory or link created. Past the limit the guest gets `ENOSPC`
//! (Python: `OSError: [Errno 28] No space left on device`).
//!
//! Counting is an upper bound kept in memory: rewriting a file counts its
//! bytes again. When the bound would pass the limit the directory is
//! measured (sizes plus the per-entry cost), so deleting and rewriting
//! files frees space as the guest expects; `ENOSPC` is only returned when
//! the measured usage plus the new bytes is over the limit.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::cli::StdinStream;
use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
use wasmtime_wasi::p2::bindings::filesystem::{preopens, types};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, FsError, FsResult, InputStream, OutputStream, Pollable,
    StreamError, StreamResult,
};

use crate::raw_output::RawOutput;

/// Where the scratch directory appears in the guest.
pub(crate) const GUEST_TMP: &str = "/tmp";

/// The guest's device directory: `null` (`os.devnull`), `zero`, and
/// `random` / `urandom` (the host's cryptographic generator, as
/// `os.urandom` is), and `stdin` / `stdout` / `stderr` (the guest's
/// descriptors 0, 1 and 2 again), as on Linux.
pub(crate) const GUEST_DEV: &str = "/dev";

/// A file of the guest's `/dev`. Each is an empty, read-only file on the
/// host; [`ScratchView`] gives it its behaviour ([`DEVICES`] names them):
/// - `null`, `zero`, `random`, `urandom`: writes are discarded (as Linux
///   does for all four) and reads give nothing (`null`), zero bytes
///   (`zero`) or random bytes (`random`, `urandom`), without end;
/// - `stdout`, `stderr`: writes go where descriptors 1 and 2 go (the
///   call's output, in order with `print`'s), reads give end of file;
/// - `stdin`: reads take from the guest's standard input (the same bytes
///   `sys.stdin` reads: what one takes the other does not see), or give
///   end of file when the sandbox has none; writes are discarded.
///
/// Scripts name them where they want a path for the standard streams:
/// `open("/dev/stdout", "w")`, `logging.FileHandler("/dev/stderr")`,
/// `json.load(open("/dev/stdin"))`. On Linux they are links to
/// `/proc/self/fd/N`; here they are character devices, like the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Device {
    Null,
    Zero,
    Random,
    Stdin,
    Stdout,
    Stderr,
}

/// The files of the guest's `/dev` and what each one is.
const DEVICES: [(&str, Device); 7] = [
    ("null", Device::Null),
    ("random", Device::Random),
    ("stderr", Device::Stderr),
    ("stdin", Device::Stdin),
    ("stdout", Device::Stdout),
    ("urandom", Device::Random),
    ("zero", Device::Zero),
];

impl Device {
    /// The device a path under `/dev` names, if any.
    fn named(path: &str) -> Option<Device> {
        let name = dev_entry(path);
        DEVICES.iter().find(|(n, _)| *n == name).map(|&(_, d)| d)
    }

    /// `len` bytes read from it (at most [`INLINE_READ_MAX`] at once), or
    /// `None` for end of file (`null`, and `stdin` / `stdout` / `stderr`
    /// here: [`ScratchView`] reads the guest's stdin itself when it has one).
    fn read(self, len: usize) -> Option<Vec<u8>> {
        if !matches!(self, Device::Zero | Device::Random) {
            return None;
        }
        let mut buf = vec![0; len.min(INLINE_READ_MAX)];
        if self == Device::Random {
            use wasmtime_wasi::Rng as _;
            wasmtime_wasi::thread_rng().fill_bytes(&mut buf);
        }
        Some(buf)
    }
}

/// A path relative to `/dev` as the name of its entry: `./null/` is
/// `null`, `.` and `./` are `""` (`/dev` itself).
fn dev_entry(path: &str) -> &str {
    let name = path.trim_start_matches("./").trim_end_matches('/');
    if name == "." { "" } else { name }
}

/// `stat` of one of `/dev`'s files (when `device`): a character device,
/// as on Linux (the host file is an empty regular file).
fn as_device(mut stat: types::DescriptorStat, device: bool) -> types::DescriptorStat {
    if device {
        stat.type_ = types::DescriptorType::CharacterDevice;
    }
    stat
}

/// What one file, directory or link costs besides its bytes (a memory
/// filesystem's page and inode).
pub(crate) const ENTRY_COST: u64 = 4096;

/// One sandbox's scratch directory and its byte budget. Shared by the
/// sandbox's successive instances (a reset keeps the files).
pub(crate) struct Scratch {
    dir: tempfile::TempDir,
    limit: u64,
    /// Upper bound of the bytes in use.
    used: Mutex<u64>,
}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scratch")
            .field("dir", &self.dir.path())
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl Scratch {
    /// A new, empty scratch directory of at most `limit` bytes.
    pub(crate) fn new(limit: u64) -> io::Result<Scratch> {
        let dir = tempfile::Builder::new()
            .prefix("tmp-")
            .tempdir_in(process_dir()?)?;
        Ok(Scratch {
            dir,
            limit,
            used: Mutex::new(0),
        })
    }

    /// The size limit, in bytes.
    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    /// The host directory (never shown to the guest).
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Takes `bytes` from the budget, measuring the directory when the
    /// running bound says there is not enough left.
    pub(crate) fn reserve(&self, bytes: u64) -> bool {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        if used.saturating_add(bytes) > self.limit {
            *used = usage(self.dir.path());
            if used.saturating_add(bytes) > self.limit {
                return false;
            }
        }
        *used += bytes;
        true
    }

    /// Fills the (new, empty) directory with what a pre-initialisation
    /// left in its `/tmp`, counted against the limit; `Err` says why not.
    pub(crate) fn plant(&self, seed: &crate::tmp_seed::TmpSeed) -> Result<(), String> {
        let (bytes, entries) = seed.size();
        let cost = bytes.saturating_add(entries.saturating_mul(ENTRY_COST));
        if !self.reserve(cost) {
            return Err(format!(
                "the pre-imports left {bytes} bytes in {entries} files and directories in \
                 /tmp, more than this sandbox's /tmp limit of {} bytes: raise it \
                 (`SandboxBuilder::tmp_limit`, `--tmp-size`)",
                self.limit
            ));
        }
        seed.plant(self.path())
            .map_err(|e| format!("cannot copy what the pre-imports left in /tmp: {e}"))
    }
}

/// The prefix of every process's directory: `eryx-scratch-<pid>-<random>`.
const PROCESS_DIR_PREFIX: &str = "eryx-scratch-";

/// This process's private directory, made on first use: the sandboxes'
/// scratch directories, the guest's `/dev` and its `/` are made inside it.
///
/// It is `/dev/shm/eryx-scratch-<pid>-<random>` (a memory filesystem on
/// Linux; the host's temporary directory where `/dev/shm` cannot be
/// written), created exclusively under a name no one can guess and
/// readable by its owner only (0700), so other users of the host can
/// neither read what a sandbox writes to its `/tmp` nor plant files in
/// its `/` or `/dev` beforehand. It is removed as the process exits
/// normally (returning from `main`, `std::process::exit`: see
/// [`remove_at_exit`]); what a killed process leaves is removed by the next
/// eryx process before it makes its own.
fn process_dir() -> io::Result<&'static Path> {
    let made = PROCESS_DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let in_shm = cfg!(target_os = "linux") && shm.is_dir();
        let made = match in_shm.then(|| make_process_dir(shm)) {
            Some(Ok(dir)) => Ok(dir),
            _ => make_process_dir(&std::env::temp_dir()),
        };
        if made.is_ok() {
            remove_at_exit();
        }
        made
    });
    match made {
        Ok(dir) => Ok(dir.as_path()),
        Err(e) => Err(io::Error::other(format!(
            "cannot create the sandboxes' scratch space: {e}"
        ))),
    }
}

/// The process directory once made (see [`process_dir`]).
static PROCESS_DIR: OnceLock<Result<std::path::PathBuf, String>> = OnceLock::new();

/// Has the C library remove the process directory, with every sandbox's
/// files in it, when the process exits normally: a CLI run or a test
/// binary leaves nothing behind in `/dev/shm` (memory, until removed).
/// Registered once, by [`process_dir`] when it made the directory.
#[cfg(unix)]
fn remove_at_exit() {
    extern "C" fn remove() {
        if let Some(Ok(dir)) = PROCESS_DIR.get() {
            // Errors are ignored (nothing can report them at exit); a
            // directory left behind is swept by the next eryx process.
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    // SAFETY: `remove` is a plain `extern "C" fn()` as `atexit` expects;
    // it only reads a static that is initialised before it is registered
    // and never unwinds (`remove_dir_all` reports errors, it does not
    // panic). A failed registration (the C library's table is full) only
    // leaves the directory for the next process's sweep.
    unsafe {
        libc::atexit(remove);
    }
}

/// Elsewhere the next eryx process sweeps the directory.
#[cfg(not(unix))]
fn remove_at_exit() {}

/// Makes a process directory in `base` (see [`process_dir`]), after
/// removing those of processes that are gone.
fn make_process_dir(base: &Path) -> Result<std::path::PathBuf, String> {
    remove_dead_process_dirs(base, &[PROCESS_DIR_PREFIX]);
    let prefix = format!("{PROCESS_DIR_PREFIX}{}-", std::process::id());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix);
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700));
    builder
        .tempdir_in(base)
        .map(tempfile::TempDir::keep)
        .map_err(|e| format!("cannot create a directory in {}: {e}", base.display()))
}

/// Whether process `pid` is known to be gone (Linux: it has no `/proc`
/// entry); `false` where that cannot be told.
pub(crate) fn process_is_gone(pid: u32) -> bool {
    Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes the entries of `dir` named `<prefix><pid>-...` (for one of
/// `prefixes`) whose process is gone: what a process killed before its
/// clean-up left behind.
pub(crate) fn remove_dead_process_dirs(dir: &Path, prefixes: &[&str]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|n| prefixes.iter().find_map(|p| n.strip_prefix(p)))
        else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(process_is_gone) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// When `path` was last modified (the epoch if that cannot be read): the
/// "last used" time of a cache entry whose mark file is touched on use.
pub(crate) fn modified(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(std::time::SystemTime::UNIX_EPOCH)
}

/// Entries used this recently are never pruned, whatever the caps: another
/// sandbox being assembled (in this process, e.g. a background pre-init, or
/// another one) may be linking their files right now. A set of 40 wheels
/// once pruned its own first wheels while another assembly linked them
/// ("cannot read the package at ...": the file was gone).
const IN_USE_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// Keeps the most recently used of a cache's entry directories, given as
/// (last used, directory, bytes): at most `max_count` of them, together at
/// most `max_bytes`, and always `keep` (the one in use) and those used in
/// the last [`IN_USE_GRACE`]. Each removed entry's `mark` file (what says
/// the entry is complete) goes first, so a half-removed entry is never
/// taken for a whole one.
pub(crate) fn prune_least_recent(
    mut entries: Vec<(std::time::SystemTime, std::path::PathBuf, u64)>,
    keep: &Path,
    max_count: usize,
    max_bytes: u64,
    mark: &str,
) {
    // Newest first; the one in use counts first whatever its time.
    entries.sort_by_key(|e| std::cmp::Reverse((e.1 == keep, e.0)));
    let (mut count, mut total) = (0, 0u64);
    let now = std::time::SystemTime::now();
    for (used, dir, bytes) in entries {
        count += 1;
        total = total.saturating_add(bytes);
        let recent = now.duration_since(used).unwrap_or_default() < IN_USE_GRACE;
        if dir == keep || recent || (count <= max_count && total <= max_bytes) {
            continue;
        }
        // An entry that a live sandbox mounts holds a shared lock on its
        // mark: it stays. Otherwise the exclusive lock is held while the
        // entry goes, so nobody starts using it half-removed.
        let held = std::fs::File::open(dir.join(mark));
        if let Ok(file) = &held
            && let Err(std::fs::TryLockError::WouldBlock) = file.try_lock()
        {
            continue;
        }
        let _ = std::fs::remove_file(dir.join(mark));
        let _ = std::fs::remove_dir_all(&dir);
        drop(held);
        count -= 1;
        total = total.saturating_sub(bytes);
    }
}

/// The host directory shown read-only at `/dev`: an empty file per
/// [`Device`]. Shared by every sandbox of the process (nothing can change
/// it: the preopen is read-only and [`ScratchView`] turns writes to the
/// devices into no-ops); removed with [`process_dir`] once the process is
/// gone.
pub(crate) fn dev_dir() -> io::Result<&'static Path> {
    static DEV: OnceLock<Result<std::path::PathBuf, String>> = OnceLock::new();
    let made = DEV.get_or_init(|| {
        let dir = process_dir().map_err(|e| e.to_string())?.join("dev");
        std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
        for (name, _) in DEVICES {
            std::fs::write(dir.join(name), b"").map_err(|e| e.to_string())?;
        }
        Ok(dir)
    });
    match made {
        Ok(dir) => Ok(dir.as_path()),
        Err(e) => Err(io::Error::other(format!(
            "cannot create the guest's /dev: {e}"
        ))),
    }
}

/// The host directory shown read-only at `/`: only the directories that
/// lead to the guest's other preopens (`python/lib/python3.14`,
/// `site-packages`, `tmp`, `dev` and the mount points), all empty, so that
/// `os.listdir("/")`, `os.walk("/")` or `Path("/").iterdir()` show what
/// the sandbox holds (they raised `FileNotFoundError`: there was no `/`).
/// wasi-libc resolves a path through the preopen with the longest prefix,
/// so these empty directories only answer for `/` and the directories
/// above a preopen; everything below one is the preopen's. One directory
/// per set of guest paths, shared by the process's sandboxes; removed with
/// `/dev`'s, with [`process_dir`], once the process is gone.
pub(crate) fn root_dir(guest_paths: &[&str]) -> io::Result<std::path::PathBuf> {
    static ROOTS: OnceLock<Mutex<std::collections::HashMap<Vec<String>, std::path::PathBuf>>> =
        OnceLock::new();
    let mut key: Vec<String> = guest_paths.iter().map(|p| p.to_string()).collect();
    key.sort();
    let mut roots = ROOTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = roots.get(&key) {
        return Ok(dir.clone());
    }
    let made = (|| {
        let dir = process_dir()?.join(format!("root-{}", roots.len()));
        std::fs::create_dir(&dir)?;
        for guest in &key {
            let relative = guest.trim_start_matches('/');
            if !relative.is_empty() {
                std::fs::create_dir_all(dir.join(relative))?;
            }
        }
        io::Result::Ok(dir)
    })();
    let dir = made.map_err(|e| io::Error::other(format!("cannot create the guest's `/`: {e}")))?;
    roots.insert(key, dir.clone());
    Ok(dir)
}

/// Bytes in use under `dir`: file sizes plus [`ENTRY_COST`] per entry.
/// Links are not followed.
pub(crate) fn usage(dir: &Path) -> u64 {
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            total = total.saturating_add(ENTRY_COST);
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total = total.saturating_add(meta.len());
            }
        }
    }
    total
}

/// The per-instance part: which descriptor handles point into `/tmp`, are
/// `/dev`, or are one of its devices.
#[derive(Default)]
pub(crate) struct Handles {
    scratch: HashSet<u32>,
    dev: HashSet<u32>,
    devices: HashMap<u32, Device>,
    /// Directory listings of `/dev` (their devices are listed as such).
    dev_listings: HashSet<u32>,
}

/// `wasi:filesystem` as the guest sees it: wasmtime-wasi's, with writes
/// under `/tmp` counted against the scratch budget.
pub(crate) struct ScratchView<'a> {
    pub(crate) fs: WasiFilesystemCtxView<'a>,
    pub(crate) scratch: Option<&'a Arc<Scratch>>,
    pub(crate) handles: &'a mut Handles,
    /// Regular files are read on the calling thread ([`InlineReader`]).
    pub(crate) inline_reads: bool,
    /// Where `/dev/stdout` and `/dev/stderr` write: descriptors 1 and 2.
    pub(crate) raw: &'a RawOutput,
    /// What `/dev/stdin` reads: descriptor 0's input, if the sandbox has
    /// any (a `&mut`, which is `Send` for a `Send` stream).
    pub(crate) stdin: &'a mut Option<Box<dyn StdinStream>>,
}

/// Selects [`ScratchView`] as the data of the filesystem interfaces.
pub(crate) struct ScratchFs;

impl HasData for ScratchFs {
    type Data<'a> = ScratchView<'a>;
}

impl ScratchView<'_> {
    /// The budget, if `fd` is a handle under `/tmp`.
    fn budget(&self, fd: &Resource<types::Descriptor>) -> Option<&Arc<Scratch>> {
        self.scratch
            .filter(|_| self.handles.scratch.contains(&fd.rep()))
    }

    /// Whether `fd` is a device of `/dev` (writes to it do not reach its
    /// host file).
    fn is_device(&self, fd: &Resource<types::Descriptor>) -> bool {
        self.handles.devices.contains_key(&fd.rep())
    }

    /// The device `fd` is, if it is one.
    fn device(&self, fd: &Resource<types::Descriptor>) -> Option<Device> {
        self.handles.devices.get(&fd.rep()).copied()
    }

    /// The output stream of a device: descriptor 1 or 2 for `stdout` and
    /// `stderr`, one that discards what is written for the others.
    fn device_output(&mut self, device: Device) -> FsResult<Resource<DynOutputStream>> {
        let stream: DynOutputStream = match device {
            Device::Stdout => Box::new(self.raw.stream(1)),
            Device::Stderr => Box::new(self.raw.stream(2)),
            _ => Box::new(wasmtime_wasi::p2::pipe::SinkOutputStream),
        };
        Ok(self.fs.table.push(stream)?)
    }

    fn reserve(&self, fd: &Resource<types::Descriptor>, bytes: u64) -> FsResult<()> {
        match self.budget(fd) {
            Some(s) if !s.reserve(bytes) => Err(types::ErrorCode::InsufficientSpace.into()),
            _ => Ok(()),
        }
    }

    /// wasmtime-wasi refuses every change under a read-only preopen with
    /// `NotPermitted` (`EPERM`: Python's `PermissionError`); a read-only
    /// filesystem on Linux says `EROFS` (`OSError: Read-only file
    /// system`), which code checks for (`errno.EROFS`) and which is no
    /// permission matter. So a `NotPermitted` for a change asked of a
    /// handle (`reps`) under a read-only preopen (a read-only mount, the
    /// standard library, `/site-packages`, `/`) becomes `ReadOnly`. `/dev`
    /// aside: Linux's `/dev` is writable by root only and refuses others
    /// with `EACCES` (`PermissionError`), as `EPERM` reads in Python.
    /// Looked at only when the change failed.
    fn on_read_only<T>(&self, reps: &[u32], result: FsResult<T>) -> FsResult<T> {
        use wasmtime_wasi::filesystem::Descriptor;
        let Err(e) = &result else { return result };
        if !matches!(e.downcast_ref(), Some(types::ErrorCode::NotPermitted)) {
            return result;
        }
        let read_only = |rep: u32| {
            if self.handles.dev.contains(&rep) || self.handles.devices.contains_key(&rep) {
                return false;
            }
            match self
                .fs
                .table
                .get(&Resource::<types::Descriptor>::new_borrow(rep))
            {
                Ok(Descriptor::Dir(d)) => d.perms.write_not_permitted(),
                Ok(Descriptor::File(f)) => f.perms.write_not_permitted(),
                Err(_) => false,
            }
        };
        if reps.iter().any(|&rep| read_only(rep)) {
            return Err(types::ErrorCode::ReadOnly.into());
        }
        result
    }

    /// Refuses links and renames between `/tmp` and other directories
    /// (`EXDEV`, as between two filesystems; `shutil.move` copies instead),
    /// so nothing enters `/tmp` without being counted.
    fn same_side(
        &self,
        a: &Resource<types::Descriptor>,
        b: &Resource<types::Descriptor>,
    ) -> FsResult<()> {
        let side = |fd: &Resource<types::Descriptor>| self.handles.scratch.contains(&fd.rep());
        if self.scratch.is_some() && side(a) != side(b) {
            return Err(types::ErrorCode::CrossDevice.into());
        }
        Ok(())
    }

    /// Wraps a new output stream on `fd` so that its writes are counted.
    fn counted(
        &mut self,
        fd: &Resource<types::Descriptor>,
        stream: Resource<DynOutputStream>,
    ) -> FsResult<Resource<DynOutputStream>> {
        let Some(scratch) = self.budget(fd).cloned() else {
            return Ok(stream);
        };
        let table: &mut ResourceTable = self.fs.table;
        let inner = table.delete(stream)?;
        let wrapped: DynOutputStream = Box::new(Counted { inner, scratch });
        Ok(table.push(wrapped)?)
    }
}

impl preopens::Host for ScratchView<'_> {
    fn get_directories(&mut self) -> wasmtime::Result<Vec<(Resource<types::Descriptor>, String)>> {
        let dirs = preopens::Host::get_directories(&mut self.fs)?;
        for (fd, name) in &dirs {
            let rep = fd.rep();
            self.handles.devices.remove(&rep);
            if self.scratch.is_some() && name == GUEST_TMP {
                self.handles.scratch.insert(rep);
            } else {
                self.handles.scratch.remove(&rep);
            }
            if name == GUEST_DEV {
                self.handles.dev.insert(rep);
            } else {
                self.handles.dev.remove(&rep);
            }
        }
        Ok(dirs)
    }
}

impl types::Host for ScratchView<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<types::ErrorCode> {
        types::Host::convert_error_code(&mut self.fs, err)
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<types::ErrorCode>> {
        types::Host::filesystem_error_code(&mut self.fs, err)
    }
}

type Fd = Resource<types::Descriptor>;

/// A borrow of the same handle, to pass on after looking at it.
fn again(fd: &Fd) -> Fd {
    Resource::new_borrow(fd.rep())
}

impl types::HostDescriptor for ScratchView<'_> {
    async fn advise(
        &mut self,
        fd: Fd,
        offset: types::Filesize,
        len: types::Filesize,
        advice: types::Advice,
    ) -> FsResult<()> {
        types::HostDescriptor::advise(&mut self.fs, fd, offset, len, advice).await
    }

    async fn sync_data(&mut self, fd: Fd) -> FsResult<()> {
        types::HostDescriptor::sync_data(&mut self.fs, fd).await
    }

    async fn get_flags(&mut self, fd: Fd) -> FsResult<types::DescriptorFlags> {
        let device = self.is_device(&fd);
        let flags = types::HostDescriptor::get_flags(&mut self.fs, fd).await?;
        Ok(if device {
            flags | types::DescriptorFlags::WRITE
        } else {
            flags
        })
    }

    async fn get_type(&mut self, fd: Fd) -> FsResult<types::DescriptorType> {
        if self.is_device(&fd) {
            return Ok(types::DescriptorType::CharacterDevice);
        }
        types::HostDescriptor::get_type(&mut self.fs, fd).await
    }

    async fn set_size(&mut self, fd: Fd, size: types::Filesize) -> FsResult<()> {
        if self.is_device(&fd) {
            return Ok(());
        }
        self.reserve(&fd, size)?;
        let reps = [fd.rep()];
        let r = types::HostDescriptor::set_size(&mut self.fs, fd, size).await;
        self.on_read_only(&reps, r)
    }

    async fn set_times(
        &mut self,
        fd: Fd,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        let reps = [fd.rep()];
        let r = types::HostDescriptor::set_times(&mut self.fs, fd, atim, mtim).await;
        self.on_read_only(&reps, r)
    }

    async fn read(
        &mut self,
        fd: Fd,
        len: types::Filesize,
        offset: types::Filesize,
    ) -> FsResult<(Vec<u8>, bool)> {
        if let Some(device) = self.device(&fd) {
            if device == Device::Stdin && self.stdin.is_some() {
                // A stream has no offsets (Linux: `ESPIPE` for a pipe).
                return Err(types::ErrorCode::InvalidSeek.into());
            }
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            return Ok(device.read(len).map_or((Vec::new(), true), |b| (b, false)));
        }
        types::HostDescriptor::read(&mut self.fs, fd, len, offset).await
    }

    async fn write(
        &mut self,
        fd: Fd,
        buf: Vec<u8>,
        offset: types::Filesize,
    ) -> FsResult<types::Filesize> {
        if let Some(device) = self.device(&fd) {
            let n = buf.len() as u64;
            if let Device::Stdout | Device::Stderr = device {
                // The offset means nothing to a stream (Linux ignores it
                // for a pipe or terminal too).
                self.raw
                    .write(if device == Device::Stdout { 1 } else { 2 }, &buf);
            }
            return Ok(n);
        }
        self.reserve(&fd, buf.len() as u64)?;
        types::HostDescriptor::write(&mut self.fs, fd, buf, offset).await
    }

    async fn read_directory(&mut self, fd: Fd) -> FsResult<Resource<types::DirectoryEntryStream>> {
        let dev = self.handles.dev.contains(&fd.rep());
        let listing = types::HostDescriptor::read_directory(&mut self.fs, fd).await?;
        if dev {
            self.handles.dev_listings.insert(listing.rep());
        } else {
            self.handles.dev_listings.remove(&listing.rep());
        }
        Ok(listing)
    }

    async fn sync(&mut self, fd: Fd) -> FsResult<()> {
        types::HostDescriptor::sync(&mut self.fs, fd).await
    }

    async fn create_directory_at(&mut self, fd: Fd, path: String) -> FsResult<()> {
        self.reserve(&fd, ENTRY_COST)?;
        let reps = [fd.rep()];
        let r = types::HostDescriptor::create_directory_at(&mut self.fs, fd, path).await;
        self.on_read_only(&reps, r)
    }

    async fn stat(&mut self, fd: Fd) -> FsResult<types::DescriptorStat> {
        let device = self.is_device(&fd);
        let stat = types::HostDescriptor::stat(&mut self.fs, fd).await?;
        Ok(as_device(stat, device))
    }

    async fn stat_at(
        &mut self,
        fd: Fd,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<types::DescriptorStat> {
        let device = self.handles.dev.contains(&fd.rep()) && Device::named(&path).is_some();
        let stat = types::HostDescriptor::stat_at(&mut self.fs, fd, path_flags, path).await?;
        Ok(as_device(stat, device))
    }

    async fn set_times_at(
        &mut self,
        fd: Fd,
        path_flags: types::PathFlags,
        path: String,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        let reps = [fd.rep()];
        let r = types::HostDescriptor::set_times_at(&mut self.fs, fd, path_flags, path, atim, mtim);
        let r = r.await;
        self.on_read_only(&reps, r)
    }

    async fn link_at(
        &mut self,
        fd: Fd,
        old_path_flags: types::PathFlags,
        old_path: String,
        new_descriptor: Fd,
        new_path: String,
    ) -> FsResult<()> {
        self.same_side(&fd, &new_descriptor)?;
        self.reserve(&fd, ENTRY_COST)?;
        let reps = [fd.rep(), new_descriptor.rep()];
        let r = types::HostDescriptor::link_at(
            &mut self.fs,
            fd,
            old_path_flags,
            old_path,
            new_descriptor,
            new_path,
        );
        let r = r.await;
        self.on_read_only(&reps, r)
    }

    async fn open_at(
        &mut self,
        fd: Fd,
        path_flags: types::PathFlags,
        path: String,
        oflags: types::OpenFlags,
        flags: types::DescriptorFlags,
    ) -> FsResult<Fd> {
        let scratch = self.budget(&fd).is_some();
        let in_dev = self.handles.dev.contains(&fd.rep());
        let device = Device::named(&path).filter(|_| in_dev);
        // `/dev` itself again (`opendir("/dev")`, `os.open("/dev")`): its
        // listings and paths relative to it see the devices too.
        let dev_again = in_dev && dev_entry(&path).is_empty();
        let (oflags, flags) = if device.is_some() {
            // A device opens for writing whatever the flags; the host file
            // is opened read-only (the `/dev` preopen is) and writes to it
            // are discarded here.
            if oflags.contains(types::OpenFlags::CREATE | types::OpenFlags::EXCLUSIVE) {
                return Err(types::ErrorCode::Exist.into());
            }
            (
                oflags & !(types::OpenFlags::CREATE | types::OpenFlags::TRUNCATE),
                flags & !(types::DescriptorFlags::WRITE | types::DescriptorFlags::MUTATE_DIRECTORY),
            )
        } else {
            if oflags.contains(types::OpenFlags::CREATE) {
                self.reserve(&fd, ENTRY_COST)?;
            }
            (oflags, flags)
        };
        let reps = [fd.rep()];
        let opened = types::HostDescriptor::open_at(
            &mut self.fs,
            again(&fd),
            path_flags,
            path,
            oflags,
            flags,
        );
        let opened = opened.await;
        let opened = self.on_read_only(&reps, opened)?;
        let rep = opened.rep();
        if scratch {
            self.handles.scratch.insert(rep);
        } else {
            self.handles.scratch.remove(&rep);
        }
        if dev_again {
            self.handles.dev.insert(rep);
        } else {
            self.handles.dev.remove(&rep);
        }
        match device {
            Some(device) => self.handles.devices.insert(rep, device),
            None => self.handles.devices.remove(&rep),
        };
        Ok(opened)
    }

    fn drop(&mut self, fd: Fd) -> wasmtime::Result<()> {
        self.handles.scratch.remove(&fd.rep());
        self.handles.dev.remove(&fd.rep());
        self.handles.devices.remove(&fd.rep());
        types::HostDescriptor::drop(&mut self.fs, fd)
    }

    async fn readlink_at(&mut self, fd: Fd, path: String) -> FsResult<String> {
        types::HostDescriptor::readlink_at(&mut self.fs, fd, path).await
    }

    async fn remove_directory_at(&mut self, fd: Fd, path: String) -> FsResult<()> {
        let reps = [fd.rep()];
        let r = types::HostDescriptor::remove_directory_at(&mut self.fs, fd, path).await;
        self.on_read_only(&reps, r)
    }

    async fn rename_at(
        &mut self,
        fd: Fd,
        old_path: String,
        new_fd: Fd,
        new_path: String,
    ) -> FsResult<()> {
        self.same_side(&fd, &new_fd)?;
        let reps = [fd.rep(), new_fd.rep()];
        let r = types::HostDescriptor::rename_at(&mut self.fs, fd, old_path, new_fd, new_path);
        let r = r.await;
        self.on_read_only(&reps, r)
    }

    async fn symlink_at(&mut self, fd: Fd, src_path: String, dest_path: String) -> FsResult<()> {
        self.reserve(&fd, ENTRY_COST)?;
        let reps = [fd.rep()];
        let r = types::HostDescriptor::symlink_at(&mut self.fs, fd, src_path, dest_path);
        let r = r.await;
        self.on_read_only(&reps, r)
    }

    async fn unlink_file_at(&mut self, fd: Fd, path: String) -> FsResult<()> {
        let reps = [fd.rep()];
        let r = types::HostDescriptor::unlink_file_at(&mut self.fs, fd, path).await;
        self.on_read_only(&reps, r)
    }

    fn read_via_stream(
        &mut self,
        fd: Fd,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynInputStream>> {
        if let Some(device) = self.device(&fd) {
            let reader: DynInputStream = match (device, self.stdin.as_deref()) {
                // Shares its progress with descriptor 0's streams.
                (Device::Stdin, Some(stdin)) => stdin.p2_stream(),
                _ => Box::new(DeviceReader(device)),
            };
            return Ok(self.fs.table.push(reader)?);
        }
        if let Ok(wasmtime_wasi::filesystem::Descriptor::File(f)) = self.fs.table.get(&fd) {
            if !self.inline_reads {
                let reader: DynInputStream = Box::new(OffloadedReader {
                    file: f.file.clone(),
                    position: offset,
                    state: Offload::Idle,
                });
                return Ok(self.fs.table.push(reader)?);
            }
            if f.file.metadata().is_ok_and(|m| m.is_file()) {
                let reader: DynInputStream = Box::new(InlineReader {
                    file: f.file.clone(),
                    position: offset,
                });
                return Ok(self.fs.table.push(reader)?);
            }
        }
        types::HostDescriptor::read_via_stream(&mut self.fs, fd, offset)
    }

    fn write_via_stream(
        &mut self,
        fd: Fd,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynOutputStream>> {
        if let Some(device) = self.device(&fd) {
            return self.device_output(device);
        }
        let stream = types::HostDescriptor::write_via_stream(&mut self.fs, again(&fd), offset)?;
        self.counted(&fd, stream)
    }

    fn append_via_stream(&mut self, fd: Fd) -> FsResult<Resource<DynOutputStream>> {
        if let Some(device) = self.device(&fd) {
            return self.device_output(device);
        }
        let stream = types::HostDescriptor::append_via_stream(&mut self.fs, again(&fd))?;
        self.counted(&fd, stream)
    }

    async fn is_same_object(&mut self, a: Fd, b: Fd) -> wasmtime::Result<bool> {
        types::HostDescriptor::is_same_object(&mut self.fs, a, b).await
    }

    async fn metadata_hash(&mut self, fd: Fd) -> FsResult<types::MetadataHashValue> {
        types::HostDescriptor::metadata_hash(&mut self.fs, fd).await
    }

    async fn metadata_hash_at(
        &mut self,
        fd: Fd,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<types::MetadataHashValue> {
        types::HostDescriptor::metadata_hash_at(&mut self.fs, fd, path_flags, path).await
    }
}

impl types::HostDirectoryEntryStream for ScratchView<'_> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<types::DirectoryEntryStream>,
    ) -> FsResult<Option<types::DirectoryEntry>> {
        let dev = self.handles.dev_listings.contains(&stream.rep());
        let mut entry =
            types::HostDirectoryEntryStream::read_directory_entry(&mut self.fs, stream).await?;
        if let Some(e) = entry
            .as_mut()
            .filter(|e| dev && Device::named(&e.name).is_some())
        {
            e.type_ = types::DescriptorType::CharacterDevice;
        }
        Ok(entry)
    }

    fn drop(&mut self, stream: Resource<types::DirectoryEntryStream>) -> wasmtime::Result<()> {
        self.handles.dev_listings.remove(&stream.rep());
        types::HostDirectoryEntryStream::drop(&mut self.fs, stream)
    }
}

/// An output stream on a file under `/tmp`: every write is taken from the
/// budget first.
struct Counted {
    inner: DynOutputStream,
    scratch: Arc<Scratch>,
}

impl Counted {
    fn take(&self, bytes: usize) -> StreamResult<()> {
        if self.scratch.reserve(bytes as u64) {
            Ok(())
        } else {
            // Closed, not failed: wasi-libc reports every failed stream
            // write as EIO, a closed one as EPIPE, which the runtime's
            // `write` turns into ENOSPC for files (`eryx-runtime/src/libc_fix.rs`).
            Err(StreamError::Closed)
        }
    }
}

/// A read stream over a regular file that reads on the calling thread.
/// wasmtime-wasi's own file stream hands every non-blocking `read` (what
/// wasi-libc's `read` uses, with a poll) to `spawn_blocking`: a thread round
/// trip per read, ~40 for `import json`. A regular file's `pread` does not
/// wait on anything, and a FIFO or device is never given this stream (nor
/// any file when the sandbox has caller mounts, whose files a call's time
/// limit must be able to walk away from: [`OffloadedReader`]).
struct InlineReader {
    file: Arc<std::fs::File>,
    position: u64,
}

/// The most one read returns (the guest asks again for the rest); bounds
/// what a guest's `read(size)` makes the host allocate.
const INLINE_READ_MAX: usize = 1 << 20;

impl InputStream for InlineReader {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if size == 0 {
            return Ok(Bytes::new());
        }
        let mut buf = vec![0; size.min(INLINE_READ_MAX)];
        let n = read_at(&self.file, &mut buf, self.position)
            .map_err(|e| StreamError::LastOperationFailed(e.into()))?;
        if n == 0 {
            return Err(StreamError::Closed);
        }
        buf.truncate(n);
        self.position += n as u64;
        Ok(Bytes::from(buf))
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for InlineReader {
    async fn ready(&mut self) {}
}

/// A read stream over a file when the sandbox has caller mounts: each read
/// runs on tokio's blocking pool, so a slow or hung host file system never
/// holds the sandbox's thread past its time limit (as wasmtime-wasi's own
/// file stream does), and the end of the file ends only the read that met
/// it: the next read sees what was written since, as `read(2)` does.
/// wasmtime-wasi's stream stays at its end for good once a read meets it,
/// and wasi-libc keeps a descriptor's stream across reads: a file read
/// while empty (SQLite opening a new database) then read nothing more
/// through that descriptor, however much another wrote to it (SQLite:
/// "file is not a database" on the second connection's first query).
struct OffloadedReader {
    file: Arc<std::fs::File>,
    position: u64,
    state: Offload,
}

/// Where an [`OffloadedReader`]'s read is.
enum Offload {
    Idle,
    Reading(tokio::task::JoinHandle<io::Result<Vec<u8>>>),
    /// A finished read not yet handed to the guest: its bytes (empty at the
    /// end of the file) or its error.
    Done(io::Result<Vec<u8>>),
    /// Bytes read and not yet handed out.
    Ready(Bytes),
}

impl OffloadedReader {
    /// Starts reading up to `size` bytes at the current position.
    fn start(&mut self, size: usize) {
        let file = self.file.clone();
        let offset = self.position;
        let size = size.min(INLINE_READ_MAX);
        self.state = Offload::Reading(tokio::task::spawn_blocking(move || {
            let mut buf = vec![0; size];
            let n = read_at(&file, &mut buf, offset)?;
            buf.truncate(n);
            Ok(buf)
        }));
    }

    /// The finished read's outcome as the state, from its task's result.
    fn finished(result: Result<io::Result<Vec<u8>>, tokio::task::JoinError>) -> Offload {
        Offload::Done(result.unwrap_or_else(|e| Err(io::Error::other(e))))
    }

    /// Hands out up to `size` bytes of what was read: the end of the file
    /// and errors once each, after which the stream reads again.
    fn take(&mut self, size: usize) -> StreamResult<Bytes> {
        match std::mem::replace(&mut self.state, Offload::Idle) {
            Offload::Done(Ok(data)) if data.is_empty() => Err(StreamError::Closed),
            Offload::Done(Ok(data)) => {
                self.state = Offload::Ready(Bytes::from(data));
                self.take(size)
            }
            Offload::Done(Err(e)) => Err(StreamError::LastOperationFailed(e.into())),
            Offload::Ready(mut bytes) => {
                let chunk = bytes.split_to(size.min(bytes.len()));
                self.position += chunk.len() as u64;
                if !bytes.is_empty() {
                    self.state = Offload::Ready(bytes);
                }
                Ok(chunk)
            }
            other => {
                self.state = other;
                Ok(Bytes::new())
            }
        }
    }

    /// Waits for the read in flight, if any.
    async fn settle(&mut self) {
        if let Offload::Reading(task) = &mut self.state {
            let result = task.await;
            self.state = Self::finished(result);
        }
    }
}

#[wasmtime_wasi::async_trait]
impl InputStream for OffloadedReader {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if size == 0 {
            return Ok(Bytes::new());
        }
        if let Offload::Reading(task) = &mut self.state {
            // Done by now? (A no-op waker: the guest polls `ready` to wait.)
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            if let std::task::Poll::Ready(result) = std::pin::Pin::new(task).poll(&mut cx) {
                self.state = Self::finished(result);
            }
        }
        if let Offload::Idle = self.state {
            self.start(size);
            return Ok(Bytes::new());
        }
        self.take(size)
    }

    async fn blocking_read(&mut self, size: usize) -> StreamResult<Bytes> {
        if size == 0 {
            return Ok(Bytes::new());
        }
        if let Offload::Idle = self.state {
            self.start(size);
        }
        self.settle().await;
        self.take(size)
    }

    async fn cancel(&mut self) {
        // A read in flight finishes on its own; nothing waits for it.
        self.state = Offload::Idle;
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for OffloadedReader {
    async fn ready(&mut self) {
        if let Offload::Idle = self.state {
            self.start(4096);
        }
        self.settle().await;
    }
}

/// A read stream on a device of `/dev`.
struct DeviceReader(Device);

impl InputStream for DeviceReader {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if size == 0 {
            return Ok(Bytes::new());
        }
        self.0
            .read(size)
            .map(Bytes::from)
            .ok_or(StreamError::Closed)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for DeviceReader {
    async fn ready(&mut self) {}
}

#[cfg(unix)]
fn read_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

#[wasmtime_wasi::async_trait]
impl Pollable for Counted {
    async fn ready(&mut self) {
        self.inner.ready().await;
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for Counted {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.take(bytes.len())?;
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.inner.check_write()
    }

    async fn blocking_write_and_flush(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.take(bytes.len())?;
        self.inner.blocking_write_and_flush(bytes).await
    }

    fn write_zeroes(&mut self, nelem: usize) -> StreamResult<()> {
        self.take(nelem)?;
        self.inner.write_zeroes(nelem)
    }

    async fn write_ready(&mut self) -> StreamResult<usize> {
        self.inner.write_ready().await
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await;
    }
}

/// Adds wasmtime-wasi's interfaces to `linker`, with the filesystem ones
/// served by [`ScratchView`].
pub(crate) fn add_to_linker(
    linker: &mut wasmtime::component::Linker<crate::state::State>,
) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    crate::world::Sandbox::add_to_linker::<_, wasmtime::component::HasSelf<_>>(linker, |s| s)?;
    linker.allow_shadowing(true);
    types::add_to_linker::<_, ScratchFs>(linker, crate::state::State::scratch_view)?;
    preopens::add_to_linker::<_, ScratchFs>(linker, crate::state::State::scratch_view)?;
    linker.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_measured_before_refusing() {
        let s = Scratch::new(3 * ENTRY_COST).unwrap();
        // Bound grows with every reservation...
        assert!(s.reserve(2 * ENTRY_COST));
        // ...but the directory is empty, so measuring makes room again.
        assert!(s.reserve(2 * ENTRY_COST));
        std::fs::write(s.path().join("f"), vec![0u8; 2 * ENTRY_COST as usize]).unwrap();
        // Now 3 * ENTRY_COST are really in use (the file and its entry):
        // past the bound, the directory is measured and the request refused.
        assert!(!s.reserve(2 * ENTRY_COST));
        std::fs::remove_file(s.path().join("f")).unwrap();
        assert!(s.reserve(ENTRY_COST));
        let path = s.path().to_path_buf();
        drop(s);
        assert!(!path.exists(), "dropped with the sandbox");
    }

    /// Everything a process makes for its sandboxes is inside one
    /// directory only its owner can open, named so no one can make it first.
    #[cfg(unix)]
    #[test]
    fn process_dir_is_private_and_holds_everything() {
        use std::os::unix::fs::PermissionsExt;
        let dir = process_dir().unwrap();
        let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
        let name = dir.file_name().unwrap().to_str().unwrap();
        let ours = format!("{PROCESS_DIR_PREFIX}{}-", std::process::id());
        assert!(
            name.len() > ours.len() + 4 && name.starts_with(&ours),
            "{name}"
        );
        let scratch = Scratch::new(1 << 20).unwrap();
        assert_eq!(scratch.path().parent(), Some(dir));
        assert_eq!(dev_dir().unwrap().parent(), Some(dir));
        assert_eq!(root_dir(&["/tmp", "/dev"]).unwrap().parent(), Some(dir));
    }

    /// A process that exits normally leaves no directory behind: this
    /// test runs itself in a child process, which makes a sandbox's
    /// scratch directory with a file in it, never drops it, and exits.
    #[cfg(unix)]
    #[test]
    fn the_process_dir_is_removed_when_the_process_exits() {
        const CHILD: &str = "ERYX_TEST_SCRATCH_CHILD";
        const NAME: &str = "scratch::tests::the_process_dir_is_removed_when_the_process_exits";
        if std::env::var_os(CHILD).is_some() {
            let scratch = Scratch::new(1 << 20).unwrap();
            std::fs::write(scratch.path().join("left"), b"behind").unwrap();
            dev_dir().unwrap();
            println!("process dir: {}", process_dir().unwrap().display());
            // Not dropped: only the exit hook can remove it.
            std::mem::forget(scratch);
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = stdout
            .lines()
            .find_map(|l| Some(l.split_once("process dir: ")?.1))
            .unwrap_or_else(|| panic!("the child ran no test: {stdout}"));
        assert!(dir.contains(PROCESS_DIR_PREFIX), "{dir}");
        assert!(!Path::new(dir).exists(), "{dir} was left behind");
    }

    #[test]
    fn a_process_dir_that_cannot_be_made_names_where() {
        let base = tempfile::tempdir().unwrap();
        let missing = base.path().join("missing");
        let e = make_process_dir(&missing).unwrap_err();
        assert!(
            e.starts_with(&format!(
                "cannot create a directory in {}: ",
                missing.display()
            )),
            "{e}"
        );
    }

    #[test]
    fn dev_paths_name_their_entry() {
        assert_eq!(dev_entry("./null/"), "null");
        assert_eq!(dev_entry("."), "");
        assert_eq!(dev_entry("./"), "");
        assert_eq!(Device::named("./zero"), Some(Device::Zero));
        assert_eq!(Device::named("."), None);
    }

    #[test]
    fn only_dead_processes_directories_are_removed() {
        let base = tempfile::tempdir().unwrap();
        // Above Linux's largest pid (2^22): never a running process.
        let dead = base
            .path()
            .join(format!("{PROCESS_DIR_PREFIX}999999999-abc"));
        let alive = base
            .path()
            .join(format!("{PROCESS_DIR_PREFIX}{}-abc", std::process::id()));
        let other = base.path().join("eryx-other-999999999-abc");
        for d in [&dead, &alive, &other] {
            std::fs::create_dir_all(d.join("dev")).unwrap();
            std::fs::write(d.join("dev/null"), b"").unwrap();
        }
        remove_dead_process_dirs(base.path(), &[PROCESS_DIR_PREFIX]);
        assert!(!dead.exists());
        assert!(alive.join("dev/null").exists());
        assert!(other.exists());
    }
}
