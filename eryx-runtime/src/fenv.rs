//! Floating-point exception flags in software, for every library in the
//! sandbox.
//!
//! wasm has no floating-point status register: wasi-libc's `<fenv.h>`
//! names no exception (`FE_ALL_EXCEPT` is 0) and its `feraiseexcept` and
//! `fetestexcept` do nothing. numpy reports errors it detects itself
//! through those flags (`npy_set_floatstatus_invalid` when LAPACK says a
//! matrix is singular, `_divbyzero` for an integer division by zero), and
//! reads them after each loop: without flags `numpy.linalg.inv` of a
//! singular matrix returned NaNs instead of raising `LinAlgError`.
//!
//! So the guest compilers' `<fenv.h>` (xtask's `FENV_SHIM`) gives the
//! exceptions x86's bits, and these functions, which the runtime exports
//! ahead of libc's (`LIBC_OVERRIDES` in xtask/src/dist.rs), keep one flag
//! word for all libraries: numpy's `_umath_linalg` raises, its
//! `_multiarray_umath` tests. Flags that the hardware would raise (`1.0 /
//! 0.0` in a loop) stay unraised: wasm arithmetic cannot report them.

#[cfg(target_arch = "wasm32")]
mod imp {
    use core::ffi::c_int;
    use core::sync::atomic::{AtomicI32, Ordering};

    /// `FE_INVALID | FE_DIVBYZERO | FE_OVERFLOW | FE_UNDERFLOW |
    /// FE_INEXACT` with the shim's (x86's) values.
    const ALL: c_int = 1 | 4 | 8 | 16 | 32;

    /// The raised exceptions. One thread: an atomic only to share it
    /// without `unsafe`.
    static FLAGS: AtomicI32 = AtomicI32::new(0);

    /// C `feraiseexcept`: raises `excepts`.
    #[unsafe(no_mangle)]
    pub extern "C" fn feraiseexcept(excepts: c_int) -> c_int {
        FLAGS.fetch_or(excepts & ALL, Ordering::Relaxed);
        0
    }

    /// C `fetestexcept`: which of `excepts` are raised.
    #[unsafe(no_mangle)]
    pub extern "C" fn fetestexcept(excepts: c_int) -> c_int {
        FLAGS.load(Ordering::Relaxed) & excepts & ALL
    }

    /// C `feclearexcept`: clears `excepts`.
    #[unsafe(no_mangle)]
    pub extern "C" fn feclearexcept(excepts: c_int) -> c_int {
        FLAGS.fetch_and(!(excepts & ALL), Ordering::Relaxed);
        0
    }

    /// C `fegetexceptflag`: the state of `excepts` into `*flagp`
    /// (wasi-libc's `fexcept_t` is an `unsigned long`).
    ///
    /// # Safety
    /// `flagp` points to a writable `fexcept_t`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn fegetexceptflag(flagp: *mut u32, excepts: c_int) -> c_int {
        let state = FLAGS.load(Ordering::Relaxed) & excepts & ALL;
        // SAFETY: the caller's pointer (its contract); `state` is not negative.
        unsafe { flagp.write(state as u32) };
        0
    }

    /// C `fesetexceptflag`: `excepts` set as `*flagp` says, without raising.
    ///
    /// # Safety
    /// `flagp` points to a readable `fexcept_t`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn fesetexceptflag(flagp: *const u32, excepts: c_int) -> c_int {
        let mask = excepts & ALL;
        // SAFETY: the caller's pointer (its contract).
        let saved = unsafe { flagp.read() } as c_int & mask;
        let now = FLAGS.load(Ordering::Relaxed);
        FLAGS.store((now & !mask) | saved, Ordering::Relaxed);
        0
    }
}
