//! `setjmp`/`longjmp` in the guest's C.
//!
//! WASI's libc has no `setjmp` of its own: its `<setjmp.h>` refuses to
//! compile unless the exception-handling proposal is on, and then clang
//! (`-mllvm -wasm-enable-sjlj`) lowers each function that calls `setjmp`
//! to wasm exception code: `longjmp` throws a `__c_longjmp` exception that
//! the `setjmp` caller's handler catches. The helpers that code calls
//! (`__wasm_setjmp`, `__wasm_setjmp_test`, `__wasm_longjmp`) are wasi-libc's
//! `libsetjmp.a` (from the sysroot's Debian package). libjpeg (Pillow's
//! JPEG codec), FreeType and libpng report errors this way.
//!
//! The tag: `libsetjmp.a` defines `__c_longjmp` weakly and with default
//! visibility, and wasm-ld then makes a shared library both import and
//! export it, which would make every such library share one tag through
//! the component (and, being imported, keep wizer from snapshotting the
//! set). The cross compiler links [`TAG_ARCHIVE`] first instead: a hidden
//! definition, so each library that uses `setjmp` has a tag of its own and
//! neither imports nor exports one. A `longjmp` therefore only reaches a
//! `setjmp` of the same library (a C library and the extension module it
//! is compiled into, as with every package here), and a set with such a
//! library keeps its pre-initialised snapshot.
//!
//! The lowered code uses the legacy exception instructions, which the
//! cross compiler's post-link step rewrites for wasmtime
//! ([`crate::cxxeh::translate`]), as for C++ exceptions.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::process;
use crate::sysroot::C_TARGET;

/// What a compile needs so that `<setjmp.h>` works.
pub(crate) const COMPILE_FLAGS: [&str; 3] = ["-mexception-handling", "-mllvm", "-wasm-enable-sjlj"];

/// The archive with the hidden tag definition, in the cross compiler's
/// work directory.
pub(crate) const TAG_ARCHIVE: &str = "liberyx-sjlj.a";

/// The tag, hidden: the library that links it keeps it to itself.
const TAG_ASM: &str = "\
.tagtype __c_longjmp i32
.globl __c_longjmp
.hidden __c_longjmp
__c_longjmp:
";

/// Writes [`TAG_ARCHIVE`] into `dir` (assembled with `clang`, archived with
/// `ar`) and returns its path.
///
/// Wheel builds running side by side share `dir` (the tests build several
/// at once): each assembles in a scratch directory of its own and renames
/// the archive into place, so a build linking the archive never sees it
/// missing or half written (removing it first, then archiving in place,
/// failed a link with "cannot open .../liberyx-sjlj.a").
pub(crate) fn tag_archive(clang: &Path, ar: &Path, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let scratch = tempfile::Builder::new().prefix(".sjlj-").tempdir_in(dir)?;
    let asm = scratch.path().join("c-longjmp-tag.s");
    let obj = scratch.path().join("c-longjmp-tag.o");
    let fresh = scratch.path().join(TAG_ARCHIVE);
    std::fs::write(&asm, TAG_ASM)?;
    process::capture(
        Command::new(clang)
            .arg(format!("--target={C_TARGET}"))
            .arg("-mexception-handling")
            .arg("-c")
            .arg(&asm)
            .arg("-o")
            .arg(&obj),
        "assembling the setjmp/longjmp tag",
    )?;
    process::capture(
        Command::new(ar).arg("rcs").arg(&fresh).arg(&obj),
        "archiving the setjmp/longjmp tag",
    )?;
    let archive = dir.join(TAG_ARCHIVE);
    std::fs::rename(&fresh, &archive)?;
    Ok(archive)
}

/// wasi-libc's `libsetjmp.a` in `sysroot`, if the sysroot has one.
pub(crate) fn runtime(sysroot: &Path) -> Option<PathBuf> {
    let lib = sysroot.join("lib").join(C_TARGET).join("libsetjmp.a");
    lib.is_file().then_some(lib)
}
