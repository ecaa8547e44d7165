//! The standard-library extension modules the bundled CPython build lacks:
//! `_bz2` (behind `bz2`), `_lzma` (behind `lzma`) and `_zstd` (behind
//! Python 3.14's `compression.zstd`), which `tarfile`, `zipfile` and
//! `shutil` use for `.bz2`/`.xz`/`.zst` archives; and two of eryx's own with
//! no library under them: `fcntl` and `_eryx_kdf` (`hashlib.pbkdf2_hmac`
//! and `hashlib.scrypt`, which CPython takes from OpenSSL).
//!
//! libbzip2, liblzma and libzstd are compiled from their upstream sources,
//! as Debian's `bzip2`, `xz-utils` and `libzstd` source packages carry them
//! (tarballs checked against Debian's `Sources` index). The modules themselves are
//! eryx's (`xtask/modules/`): CPython's `Modules/_bz2module.c` and
//! `_lzmamodule.c` would be the natural choice, but CPython's source tarball
//! is not reachable from the registries this project builds from, so the
//! modules were written against CPython's documented API (the stdlib's own
//! `test_bz2`/`test_lzma` run through `cargo xtask compat`). Compiled with
//! the flags every guest C build uses (`wasmcc::compile_flags`), each module
//! is one shared library exporting only `PyInit_<module>`, placed in the
//! bundle's stdlib directory and linked into every component.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use eryx_linker::sha256_hex;
use sha2::{Digest, Sha256};

use crate::toolchain::Toolchain;
use crate::{debian, process, progress};

/// An upstream C library, from a Debian source package.
pub(crate) struct Library {
    /// Debian source package.
    pub(crate) package: &'static str,
    /// Its exact version (so a new upload does not change the bundle).
    pub(crate) version: &'static str,
    /// Sources, relative to the unpacked tarball's top directory.
    pub(crate) sources: fn(&Path) -> Result<Vec<PathBuf>>,
    /// Include directories, relative to the top directory.
    pub(crate) includes: &'static [&'static str],
    /// Preprocessor definitions.
    pub(crate) defines: &'static [&'static str],
    /// A `config.h` to write into the build directory (added to the
    /// include path), if the library needs one.
    pub(crate) config_h: Option<&'static str>,
}

/// One module: its C file in `xtask/modules/` and the library under it,
/// if any.
struct Module {
    name: &'static str,
    library: Option<Library>,
}

fn bzip2_sources(top: &Path) -> Result<Vec<PathBuf>> {
    Ok([
        "blocksort.c",
        "huffman.c",
        "crctable.c",
        "randtable.c",
        "compress.c",
        "decompress.c",
        "bzlib.c",
    ]
    .iter()
    .map(|f| top.join(f))
    .collect())
}

/// libzstd: compression, decompression and the dictionary builder (what
/// `compression.zstd.train_dict` and `finalize_dict` use).
fn zstd_sources(top: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for dir in ["common", "compress", "decompress", "dictBuilder"] {
        let dir = top.join("lib").join(dir);
        for entry in std::fs::read_dir(&dir).with_context(|| format!("{}", dir.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "c") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// liblzma without threads (no `*_mt.c`, output queue or CPU count), table
/// generators or the small CRC variants.
fn lzma_sources(top: &Path) -> Result<Vec<PathBuf>> {
    let skip = [
        "_mt.c",
        "outqueue.c",
        "hardware_cputhreads.c",
        "tablegen.c",
        "clmul_consts_gen.c",
        "crc32_small.c",
        "crc64_small.c",
    ];
    let mut out = Vec::new();
    for dir in [
        "common",
        "check",
        "lz",
        "lzma",
        "rangecoder",
        "delta",
        "simple",
    ] {
        let dir = top.join("src/liblzma").join(dir);
        for entry in std::fs::read_dir(&dir).with_context(|| format!("{}", dir.display()))? {
            let path = entry?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.ends_with(".c") && !skip.iter().any(|s| name.ends_with(s)) {
                out.push(path);
            }
        }
    }
    out.push(top.join("src/common/tuklib_physmem.c"));
    out.sort();
    Ok(out)
}

/// liblzma's configuration for the guest: every filter, check and match
/// finder; no threads, assembly or CPU-specific CRC code.
const LZMA_CONFIG_H: &str = "\
#define HAVE_STDBOOL_H 1
#define HAVE_STDINT_H 1
#define HAVE_INTTYPES_H 1
#define HAVE__BOOL 1
#define HAVE_CHECK_CRC32 1
#define HAVE_CHECK_CRC64 1
#define HAVE_CHECK_SHA256 1
#define HAVE_ENCODERS 1
#define HAVE_DECODERS 1
#define HAVE_ENCODER_LZMA1 1
#define HAVE_ENCODER_LZMA2 1
#define HAVE_ENCODER_X86 1
#define HAVE_ENCODER_POWERPC 1
#define HAVE_ENCODER_IA64 1
#define HAVE_ENCODER_ARM 1
#define HAVE_ENCODER_ARMTHUMB 1
#define HAVE_ENCODER_ARM64 1
#define HAVE_ENCODER_SPARC 1
#define HAVE_ENCODER_RISCV 1
#define HAVE_ENCODER_DELTA 1
#define HAVE_DECODER_LZMA1 1
#define HAVE_DECODER_LZMA2 1
#define HAVE_DECODER_X86 1
#define HAVE_DECODER_POWERPC 1
#define HAVE_DECODER_IA64 1
#define HAVE_DECODER_ARM 1
#define HAVE_DECODER_ARMTHUMB 1
#define HAVE_DECODER_ARM64 1
#define HAVE_DECODER_SPARC 1
#define HAVE_DECODER_RISCV 1
#define HAVE_DECODER_DELTA 1
#define HAVE_LZIP_DECODER 1
#define HAVE_MF_HC3 1
#define HAVE_MF_HC4 1
#define HAVE_MF_BT2 1
#define HAVE_MF_BT3 1
#define HAVE_MF_BT4 1
#define HAVE_VISIBILITY 1
#define SIZEOF_SIZE_T 4
#define TUKLIB_PHYSMEM_SYSCONF 1
";

const MODULES: &[Module] = &[
    Module {
        name: "_bz2",
        library: Some(Library {
            package: "bzip2",
            version: "1.0.8-6",
            sources: bzip2_sources,
            includes: &["."],
            defines: &["-D_FILE_OFFSET_BITS=64"],
            config_h: None,
        }),
    },
    Module {
        name: "_lzma",
        library: Some(Library {
            package: "xz-utils",
            version: "5.8.1-1+deb13u1",
            sources: lzma_sources,
            includes: &[
                "src/liblzma/api",
                "src/liblzma/common",
                "src/liblzma/check",
                "src/liblzma/lz",
                "src/liblzma/rangecoder",
                "src/liblzma/lzma",
                "src/liblzma/delta",
                "src/liblzma/simple",
                "src/common",
            ],
            defines: &["-DHAVE_CONFIG_H", "-DLZMA_API_STATIC"],
            config_h: Some(LZMA_CONFIG_H),
        }),
    },
    Module {
        name: "_zstd",
        library: Some(Library {
            package: "libzstd",
            version: "1.5.7+dfsg-3",
            sources: zstd_sources,
            includes: &["lib", "lib/common"],
            // No threads (`nb_workers` is bounded to 0), no x86 assembly,
            // no legacy formats; xxhash's symbols renamed as upstream does.
            defines: &[
                "-DZSTD_DISABLE_ASM",
                "-DZSTD_LEGACY_SUPPORT=0",
                "-DXXH_NAMESPACE=ZSTD_",
            ],
            config_h: None,
        }),
    },
    // `hashlib.pbkdf2_hmac` and `hashlib.scrypt` (OpenSSL's in CPython).
    Module {
        name: "_eryx_kdf",
        library: None,
    },
    // WASI's descriptor flags and ioctls through wasi-libc; the sandbox's
    // own file locks (see the module's notes).
    Module {
        name: "fcntl",
        library: None,
    },
];

/// A module with no library under it.
const NO_LIBRARY: Library = Library {
    package: "",
    version: "",
    sources: no_sources,
    includes: &[],
    defines: &[],
    config_h: None,
};

fn no_sources(_top: &Path) -> Result<Vec<PathBuf>> {
    Ok(Vec::new())
}

/// The module sources (`xtask/modules`).
fn modules_dir(root: &Path) -> PathBuf {
    root.join("xtask/modules")
}

/// Everything the built modules depend on besides the toolchain and the
/// bundle's headers (part of the dist stamp).
pub(crate) fn input_fingerprint(root: &Path) -> Result<String> {
    let mut h = Sha256::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(modules_dir(root))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.sort();
    for f in files {
        h.update(f.file_name().unwrap_or_default().as_encoded_bytes());
        h.update(std::fs::read(&f)?);
    }
    for m in MODULES {
        h.update(m.name);
        if let Some(l) = &m.library {
            h.update(format!(
                " {} {} {:?} {:?} {:?}",
                l.package, l.version, l.includes, l.defines, l.config_h
            ));
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// The unpacked sources of `lib` (downloaded once into `target/fetch/src`).
pub(crate) fn library_sources(root: &Path, lib: &Library) -> Result<(PathBuf, String)> {
    debian_sources(
        root,
        &format!("{}-{}", lib.package, lib.version),
        lib.package,
        Some(lib.version),
        &[],
    )
}

/// The upstream sources of Debian source `package` (`version`, else the
/// newest), only the tar `members` matching (all when empty), downloaded
/// and unpacked once into `target/fetch/src/<dir_name>`; returns the
/// unpacked top directory and the origin record.
pub(crate) fn debian_sources(
    root: &Path,
    dir_name: &str,
    package: &str,
    version: Option<&str>,
    members: &[&str],
) -> Result<(PathBuf, String)> {
    let dir = root.join("target/fetch/src").join(dir_name);
    let origin_file = dir.join("ORIGIN");
    // A tree unpacked from an earlier, shorter list of members is unpacked
    // again: each member named exactly (`*/path` without other wildcards)
    // must be there.
    let complete = |top: &Path| {
        members
            .iter()
            .filter_map(|m| m.strip_prefix("*/"))
            .filter(|m| !m.contains(['*', '?', '[']))
            .all(|m| top.join(m).exists())
    };
    if let Ok(origin) = std::fs::read_to_string(&origin_file)
        && let Some(top) = std::fs::read_dir(dir.join("src"))?
            .flatten()
            .find(|e| e.path().is_dir())
        && complete(&top.path())
    {
        return Ok((top.path(), origin));
    }
    let _ = std::fs::remove_dir_all(&dir);
    let unpacked = debian::fetch_source(package, version, members, &dir)?;
    // Only the unpacked tree is kept.
    for entry in std::fs::read_dir(&dir)?.flatten() {
        if entry.path().is_file() {
            std::fs::remove_file(entry.path())?;
        }
    }
    std::fs::write(&origin_file, &unpacked.origin)?;
    Ok((unpacked.dir, unpacked.origin))
}

/// The compiler flags for `lib`'s sources (unpacked at `top`), built in
/// `work`: the guest's, optimised, symbols hidden (a library linked into a
/// shared object must not export its symbols to the others), the library's
/// definitions, `config.h` and include directories.
pub(crate) fn library_flags(
    sysroot: &Path,
    lib: &Library,
    top: &Path,
    work: &Path,
) -> Result<Vec<String>> {
    let mut flags = crate::wasmcc::compile_flags(sysroot, None, None);
    flags.extend(
        [
            "-O2",
            "-fvisibility=hidden",
            "-Wno-unused-command-line-argument",
        ]
        .map(String::from),
    );
    flags.extend(lib.defines.iter().map(|d| d.to_string()));
    if let Some(config) = lib.config_h {
        std::fs::write(work.join("config.h"), config)?;
        flags.push(format!("-I{}", work.display()));
    }
    flags.extend(
        lib.includes
            .iter()
            .map(|i| format!("-I{}", top.join(i).display())),
    );
    Ok(flags)
}

/// Whether `source` is C++ by its extension (clang's rule).
pub(crate) fn is_cxx(source: &Path) -> bool {
    source
        .extension()
        .is_some_and(|e| e == "cpp" || e == "cc" || e == "cxx")
}

/// Compiles `sources` with `flags` (and, for C++ sources, `cxx_flags` after
/// them) into numbered objects in `work`.
pub(crate) fn compile(
    tools: &Toolchain,
    flags: &[String],
    cxx_flags: &[String],
    sources: &[PathBuf],
    work: &Path,
) -> Result<Vec<PathBuf>> {
    let objects: Vec<PathBuf> = (0..sources.len())
        .map(|i| work.join(format!("{i:03}.o")))
        .collect();
    // One compiler per core, each taking the next file.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers.min(sources.len()))
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let (Some(src), Some(obj)) = (sources.get(i), objects.get(i)) else {
                            return Ok(());
                        };
                        let mut cc = Command::new(&tools.clang);
                        cc.args(flags);
                        if is_cxx(src) {
                            cc.args(cxx_flags);
                        }
                        cc.arg("-c").arg(src).arg("-o").arg(obj);
                        // Captured: 80 files would flood the log; a failure
                        // shows the command and the compiler's message.
                        process::capture(&mut cc, &format!("compiling {}", src.display()))?;
                        // A big library (GEOS: 437 files, minutes) says how
                        // far it is.
                        if sources.len() >= 200 && (i + 1).is_multiple_of(50) {
                            progress!("  {}/{} files compiled", i + 1, sources.len());
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a compile thread panicked")))
        })
    })?;
    Ok(objects)
}

/// One built module.
pub(crate) struct Built {
    /// `_bz2.cpython-314-wasm32-wasi.so`.
    pub(crate) file: String,
    pub(crate) path: PathBuf,
    /// Where its library came from.
    pub(crate) origin: String,
}

/// Builds every module (or reuses the last build of the same inputs).
pub(crate) fn build(root: &Path, tools: &Toolchain) -> Result<Vec<Built>> {
    let include = crate::cext::include_dir(root)?;
    let sysroot = crate::sysroot::sysroot(root)?;
    let fingerprint = input_fingerprint(root)?;
    let mut out = Vec::new();
    for m in MODULES {
        let lib = m.library.as_ref().unwrap_or(&NO_LIBRARY);
        let (top, origin) = match &m.library {
            Some(l) => library_sources(root, l)?,
            None => (
                modules_dir(root),
                format!(
                    "eryx's own module (xtask/modules/{}.c), no library\n",
                    m.name
                ),
            ),
        };
        let work = root.join("target/wasm/stdlib-ext").join(m.name);
        std::fs::create_dir_all(&work)?;
        let mut flags = library_flags(&sysroot.dir, lib, &top, &work)?;
        flags.push(format!("-I{}", include.display()));
        let file = format!("{}{}", m.name, eryx_linker::layout::EXTENSION_SUFFIX);
        let so = work.join(&file);
        let stamp = work.join("stamp");
        let key = sha256_hex(
            format!(
                "{}\n{}\n{}\n{}",
                fingerprint,
                flags.join(" "),
                tools.versions,
                origin
            )
            .as_bytes(),
        );
        if so.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == key) {
            out.push(Built {
                file,
                path: so,
                origin,
            });
            continue;
        }
        let mut sources = (lib.sources)(&top)?;
        sources.push(modules_dir(root).join(format!("{}.c", m.name)));
        match &m.library {
            Some(l) => progress!(
                "building {} ({} C files: eryx's module on Debian's {} {})",
                m.name,
                sources.len(),
                l.package,
                l.version
            ),
            None => progress!("building {} (eryx's module)", m.name),
        }
        let objects = compile(tools, &flags, &[], &sources, &work)?;
        let init = format!("PyInit_{}", m.name);
        crate::cext::link(
            tools,
            &objects,
            &[init.as_str()],
            &work,
            &[],
            sysroot.builtins.as_deref(),
            &so,
        )?;
        for o in &objects {
            let _ = std::fs::remove_file(o);
        }
        std::fs::write(&stamp, &key)?;
        out.push(Built {
            file,
            path: so,
            origin,
        });
    }
    Ok(out)
}
