//! `write(2)` and `_exit(2)` for libpython and extension modules, fixing
//! what wasi-libc loses: one error, and the exit status.
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

#[cfg(target_arch = "wasm32")]
mod imp {
    use core::ffi::{c_int, c_void};

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
}
