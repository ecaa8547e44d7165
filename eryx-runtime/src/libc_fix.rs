//! `write(2)`, `_exit(2)` and the `stat(2)` family for libpython and
//! extension modules, fixing what wasi-libc loses: one error, the exit
//! status and permission bits.
//!
//! `_exit` (what `os._exit(n)` calls) first tells the host the status,
//! then exits through libc's `_Exit`, whose WASI exit says only success or
//! failure (so `os._exit(3)` ended the run with status 1). C code calling
//! libc's `exit()` still gives only success or failure: libc calls its own
//! `_Exit` directly.
//!
//! wasi-libc reports every failed stream write as `EIO` (it never asks the
//! host's `filesystem-error-code`), so a write past the `/tmp` budget would
//! read as an I/O error. The host's scratch directory therefore refuses such
//! a write by closing the stream, which wasi-libc reports as `EPIPE`, an
//! error a seekable file cannot otherwise give. This `write`, which callers
//! reach before libc's (the runtime is the first library linked), passes
//! the call to libc's `writev` and turns exactly that case into `ENOSPC`
//! (`OSError: [Errno 28] No space left on device`).
//!
//! WASI has no permission bits: wasi-libc's `stat` family fills only the
//! file type into `st_mode`, so every file read as mode `0o000`
//! (`stat.filemode` gave `----------`), and an archive made in the sandbox
//! (`tarfile`, `zipfile`, `shutil.make_archive`) recorded mode 0 for every
//! member: extracted on a real machine, its files could not be read.
//! `stat`, `lstat`, `fstatat` and `fstat` here call libc's and add the bits
//! a fresh file has on Linux with the usual umask ([`permissions`]). They
//! are what the guest can do, as far as a mode can say it: write access
//! still depends on the mount (`os.access` tells), and `chmod` changes
//! nothing (WASI cannot store a mode). A followed symbolic link also gets
//! its target's inode, which wasi-libc's own `stat` gives wrong
//! ([`libc_stat`]).
//!
//! wasi-libc has no time zones: its `localtime_r` and `mktime` are UTC's
//! (and so its `ctime_r`, which is replaced too).
//! Here, when `TZ` names a zone (`Europe/Berlin`, as on Linux), they ask
//! the prelude's `local_time`, which reads the bundled IANA database
//! through `zoneinfo`; with no `TZ` (or `UTC`) they are libc's `gmtime_r`
//! and `timegm`, with no call into Python. So `time.localtime()`,
//! `datetime.now()`, `.astimezone()` and `time.mktime` follow `TZ`.
//!
//! wasi-libc's `fcntl` refuses POSIX record locks (`F_SETLK`, `F_GETLK`);
//! here they succeed as they do within one process (see `fcntl` below),
//! which lets SQLite's `unix` VFS, whose locks let readers in while a
//! writer prepares its change, run on the sandbox's private `/tmp`.

#[cfg(target_arch = "wasm32")]
mod imp {
    use core::ffi::{c_char, c_int, c_void};

    /// `struct iovec`.
    #[repr(C)]
    struct IoVec {
        base: *const c_void,
        len: usize,
    }

    unsafe extern "C" {
        fn writev(fd: c_int, iov: *const IoVec, count: c_int) -> isize;
        fn lseek(fd: c_int, offset: i64, whence: c_int) -> i64;
        fn __errno_location() -> *mut c_int;
        fn _Exit(status: c_int) -> !;
    }

    /// The start of wasi-libc's `struct stat` (`__struct_stat.h`: three
    /// 64-bit fields, then `st_mode`); only `st_mode` is read or written.
    #[repr(C)]
    pub struct StatHead {
        dev: u64,
        ino: u64,
        nlink: u64,
        mode: u32,
    }

    unsafe extern "C" {
        /// libc's `stat`/`lstat`/`fstatat` of a path (absolute, or relative
        /// to the working directory), `flags` as `fstatat`'s.
        fn __wasilibc_stat(path: *const c_char, buf: *mut StatHead, flags: c_int) -> c_int;
        /// libc's `fstatat` relative to a directory descriptor.
        fn __wasilibc_nocwd_fstatat(
            fd: c_int,
            path: *const c_char,
            buf: *mut StatHead,
            flags: c_int,
        ) -> c_int;
        /// libc's `fstat`, under the second name `cargo xtask dist` gives it
        /// in libc.so's exports (`LIBC_ALIASES`): `fstat` itself is this
        /// module's.
        fn __eryx_libc_fstat(fd: c_int, buf: *mut StatHead) -> c_int;
        /// libc's `open` of a path (absolute, or relative to the working
        /// directory) without a mode.
        fn __wasilibc_open_nomode(path: *const c_char, flags: c_int) -> c_int;
        /// libc's `openat` relative to a directory descriptor.
        fn __wasilibc_nocwd_openat_nomode(fd: c_int, path: *const c_char, flags: c_int) -> c_int;
        fn close(fd: c_int) -> c_int;
    }

    // wasi-libc's values (`fcntl.h`, `sys/stat.h`).
    const AT_FDCWD: c_int = -2;
    const AT_SYMLINK_NOFOLLOW: c_int = 1;
    const S_IFMT: u32 = 0o170000;
    const S_IFDIR: u32 = 0o040000;
    const S_IFLNK: u32 = 0o120000;
    const S_IFCHR: u32 = 0o020000;
    const O_RDONLY: c_int = 0x0400_0000;

    /// The permission bits shown for a file of type `kind`: `rwxr-xr-x`
    /// for directories, `rwxrwxrwx` for symbolic links, `rw-rw-rw-` for
    /// character devices (`/dev/null`), as Linux shows them; `rw-r--r--`
    /// for the rest.
    fn permissions(kind: u32) -> u32 {
        match kind {
            S_IFDIR => 0o755,
            S_IFLNK => 0o777,
            S_IFCHR => 0o666,
            _ => 0o644,
        }
    }

    /// `result` of a libc stat call, after adding the permission bits to
    /// `buf` when it succeeded.
    ///
    /// # Safety
    /// When `result` is 0, `buf` points to the `struct stat` libc filled.
    unsafe fn with_permissions(result: c_int, buf: *mut StatHead) -> c_int {
        if result == 0 {
            // SAFETY: libc filled `*buf` (the caller's contract).
            let mode = unsafe { &mut (*buf).mode };
            if *mode & 0o7777 == 0 {
                *mode |= permissions(*mode & S_IFMT);
            }
        }
        result
    }

    /// libc's stat of `path` relative to `fd` (`AT_FDCWD`, or ignored for
    /// an absolute path) with `flags`, as wasi-libc's `fstatat` dispatches;
    /// one that follows a symbolic link gives its target's identity.
    ///
    /// wasi-libc asks the host for a file's identity (`st_dev`, `st_ino`)
    /// without following a link whatever it was asked (its `fstatat`
    /// tests `flag | AT_SYMLINK_NOFOLLOW`), so a followed link had its
    /// target's fields but its own inode: `os.path.samefile(f, link)` was
    /// False and `shutil.copyfile(f, link)`, which must refuse, emptied
    /// `f`. So a followed stat looks without following first (the same
    /// host calls as before for anything that is not a link) and answers
    /// a link with the `fstat` of its opened target, whose identity the
    /// host reports right.
    ///
    /// # Safety
    /// `path` is a C string, `buf` a writable `struct stat`.
    unsafe fn libc_stat(fd: c_int, path: *const c_char, buf: *mut StatHead, flags: c_int) -> c_int {
        // SAFETY: `path` is a C string (the caller's contract), so its
        // first byte can be read; libc gets the caller's arguments.
        unsafe {
            let at_path = fd == AT_FDCWD || *path == b'/' as c_char;
            let stat_with = |flags| {
                if at_path {
                    __wasilibc_stat(path, buf, flags)
                } else {
                    __wasilibc_nocwd_fstatat(fd, path, buf, flags)
                }
            };
            if flags & AT_SYMLINK_NOFOLLOW != 0 {
                return stat_with(flags);
            }
            let result = stat_with(AT_SYMLINK_NOFOLLOW);
            if result != 0 || (*buf).mode & S_IFMT != S_IFLNK {
                return result;
            }
            // A link: its target's fields (and errors: a dangling link).
            let result = stat_with(0);
            let target = if result != 0 {
                -1
            } else if at_path {
                __wasilibc_open_nomode(path, O_RDONLY)
            } else {
                __wasilibc_nocwd_openat_nomode(fd, path, O_RDONLY)
            };
            if target < 0 {
                return result;
            }
            let identified = __eryx_libc_fstat(target, buf);
            close(target);
            if identified == 0 { 0 } else { stat_with(0) }
        }
    }

    /// POSIX `stat`.
    ///
    /// # Safety
    /// As `stat(2)`: `path` is a C string, `buf` a writable `struct stat`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn stat(path: *const c_char, buf: *mut StatHead) -> c_int {
        // SAFETY: the caller's arguments, passed on as libc's `stat` does.
        unsafe { with_permissions(libc_stat(AT_FDCWD, path, buf, 0), buf) }
    }

    /// POSIX `lstat`.
    ///
    /// # Safety
    /// As `lstat(2)`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn lstat(path: *const c_char, buf: *mut StatHead) -> c_int {
        // SAFETY: as in `stat`.
        unsafe { with_permissions(__wasilibc_stat(path, buf, AT_SYMLINK_NOFOLLOW), buf) }
    }

    /// POSIX `fstatat`, dispatched as wasi-libc's own: the working
    /// directory's or an absolute path through the preopens, anything else
    /// relative to `fd`.
    ///
    /// # Safety
    /// As `fstatat(2)`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn fstatat(
        fd: c_int,
        path: *const c_char,
        buf: *mut StatHead,
        flags: c_int,
    ) -> c_int {
        // SAFETY: as in `stat`.
        unsafe { with_permissions(libc_stat(fd, path, buf, flags), buf) }
    }

    /// POSIX `fstat`.
    ///
    /// # Safety
    /// As `fstat(2)`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn fstat(fd: c_int, buf: *mut StatHead) -> c_int {
        // SAFETY: as in `stat`.
        unsafe { with_permissions(__eryx_libc_fstat(fd, buf), buf) }
    }

    /// POSIX `_exit`: the status to the host, then libc's `_Exit`.
    #[unsafe(no_mangle)]
    pub extern "C" fn _exit(status: c_int) -> ! {
        crate::world::exiting(status);
        // SAFETY: libc's `_Exit` takes any status and does not return.
        unsafe { _Exit(status) }
    }

    // wasi-libc's values (`__errno_values.h`, `unistd.h`).
    const EPIPE: c_int = 64;
    const ENOSPC: c_int = 51;
    const SEEK_CUR: c_int = 1;

    /// POSIX `write`, as libc's `writev` of one buffer.
    ///
    /// # Safety
    /// As `write(2)`: `buf` points to `len` readable bytes.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, len: usize) -> isize {
        let iov = IoVec { base: buf, len };
        // SAFETY: one valid iovec describing the caller's buffer.
        let n = unsafe { writev(fd, &iov, 1) };
        if n < 0 {
            // SAFETY: libc's thread-local errno; the lseek is a plain query
            // (offset 0 from the current position) that leaves errno alone
            // when it succeeds, i.e. when `fd` is a seekable file.
            unsafe {
                let errno = __errno_location();
                if *errno == EPIPE && lseek(fd, 0, SEEK_CUR) >= 0 {
                    *errno = ENOSPC;
                }
            }
        }
        n
    }

    // SQLite's record-lock commands on wasm32 (`os_unix.c` defines them
    // for WASI, whose libc has none: musl's 32-bit values) and the lock
    // type `F_GETLK` answers with.
    const F_GETLK: c_int = 12;
    const F_SETLKW: c_int = 14;
    const F_UNLCK: i16 = 2;

    unsafe extern "C" {
        /// libc's `fcntl`, under its second name (`LIBC_ALIASES`). Both
        /// take the variadic argument as wasm32 C passes it: a pointer to
        /// the caller's argument area.
        fn __eryx_libc_fcntl(fd: c_int, cmd: c_int, args: *const *mut i16) -> c_int;
    }

    /// POSIX `fcntl`, with the record locks WASI lacks: the sandbox is one
    /// process and POSIX record locks never conflict within a process, so
    /// setting one succeeds and `F_GETLK` finds none (its `l_type`, the
    /// first field of `struct flock`, becomes `F_UNLCK`). SQLite's `unix`
    /// VFS keeps its connections' locks apart itself and asks the system
    /// only for other processes'. Every other command is libc's.
    ///
    /// # Safety
    /// As `fcntl(2)`: `args` points to the caller's variadic arguments, a
    /// `struct flock *` first for the lock commands.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, args: *const *mut i16) -> c_int {
        if !(F_GETLK..=F_SETLKW).contains(&cmd) {
            // SAFETY: the caller's arguments, passed on as they came.
            return unsafe { __eryx_libc_fcntl(fd, cmd, args) };
        }
        if cmd == F_GETLK {
            // SAFETY: `F_GETLK`'s argument is the caller's `struct flock`.
            unsafe { **args = F_UNLCK };
        }
        0
    }

    /// wasi-libc's `struct tm` (`__struct_tm.h`): the nine `int` fields,
    /// the UTC offset (an `int` in wasi-libc) and the zone's abbreviation.
    #[repr(C)]
    pub struct Tm {
        fields: [c_int; 9],
        gmtoff: c_int,
        zone: *const c_char,
    }

    unsafe extern "C" {
        fn gmtime_r(t: *const i64, tm: *mut Tm) -> *mut Tm;
        fn timegm(tm: *mut Tm) -> i64;
        fn asctime_r(tm: *const Tm, buf: *mut c_char) -> *mut c_char;
        fn getenv(name: *const c_char) -> *const c_char;
    }

    /// Whether `TZ` is set (to a zone, perhaps `UTC`).
    fn zoned() -> bool {
        // SAFETY: libc's `getenv` of a NUL-terminated name; the result is
        // NULL or a NUL-terminated string, whose first byte is read at once.
        unsafe {
            let tz = getenv(c"TZ".as_ptr());
            !tz.is_null() && *tz != 0
        }
    }

    /// `tm` filled from [`crate::python::zone_time`]'s answer for the
    /// `len` bytes at `arg`; returns the timestamp, or `None` (and `tm`
    /// untouched) without one.
    ///
    /// # Safety
    /// `arg` points to `len` readable bytes, `tm` to a writable `Tm`.
    unsafe fn zone_time(arg: *const c_void, len: isize, tm: *mut Tm) -> Option<i64> {
        let mut out = [0u8; 52];
        // SAFETY: the caller's buffer.
        if !zoned() || !unsafe { crate::python::zone_time(arg.cast(), len, &mut out) } {
            return None;
        }
        // SAFETY: `out` holds a `time_t` and then a `struct tm` as this
        // target lays it out (44 bytes; `Tm` has no padding).
        unsafe { core::ptr::copy_nonoverlapping(out[8..].as_ptr(), tm.cast::<u8>(), 44) };
        let mut t = [0u8; 8];
        t.copy_from_slice(&out[..8]);
        Some(i64::from_le_bytes(t))
    }

    /// POSIX `localtime_r`.
    ///
    /// # Safety
    /// As `localtime_r(3)`: `t` readable, `tm` writable.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn localtime_r(t: *const i64, tm: *mut Tm) -> *mut Tm {
        // SAFETY: the caller's pointers (its contract).
        unsafe {
            if zone_time(t.cast(), 8, tm).is_some() {
                return tm;
            }
            gmtime_r(t, tm)
        }
    }

    /// POSIX `ctime_r`: `localtime_r` (this one, so it follows `TZ`) and
    /// libc's `asctime_r`. libc's own called the runtime's `localtime_r`
    /// through an import, which made libc depend on the runtime; `cargo
    /// xtask dist` points that import at libc's own function, whose only
    /// caller was libc's `ctime_r`, replaced by this one.
    ///
    /// # Safety
    /// As `ctime_r(3)`: `t` readable, `buf` 26 writable bytes.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn ctime_r(t: *const i64, buf: *mut c_char) -> *mut c_char {
        let mut tm = Tm {
            fields: [0; 9],
            gmtoff: 0,
            zone: core::ptr::null(),
        };
        // SAFETY: the caller's pointers (its contract); `tm` is ours.
        unsafe {
            if localtime_r(t, &mut tm).is_null() {
                return core::ptr::null_mut();
            }
            asctime_r(&tm, buf)
        }
    }

    /// C `mktime`: `tm` (local time, fields in any range) to a timestamp,
    /// `tm` normalised.
    ///
    /// # Safety
    /// As `mktime(3)`: `tm` readable and writable.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn mktime(tm: *mut Tm) -> i64 {
        // SAFETY: the caller's pointer (its contract).
        unsafe {
            // The nine fields, as they are.
            if let Some(t) = zone_time(tm.cast(), 36, tm) {
                return t;
            }
            timegm(tm)
        }
    }
}
