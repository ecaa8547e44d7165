//! C libraries that packages link into their extension modules, built for
//! the guest. A package's recipe names them (`c-libraries = ["zlib"]`);
//! `cargo xtask wheel` then builds each one (once, from Debian's upstream
//! tarball, checked against Debian's index) into a prefix of its own,
//!
//! ```text
//! target/wasm/clibs/<name>/include/...          the library's public headers
//! target/wasm/clibs/<name>/lib/lib<x>.a         PIC objects, symbols hidden
//! target/wasm/clibs/<name>/lib/pkgconfig/<module>.pc
//! ```
//!
//! What a configure step would produce (a `config.h`, a version header made
//! from its `.in` template) is written here for the guest: WASI's answers are
//! fixed, and a template value left unset fails the build.
//!
//! and points the package's build at the prefixes the way cross builds are
//! pointed at a target's libraries: `-I`/`-L` in `CFLAGS`/`LDFLAGS` (which
//! setuptools-based builds search) and `PKG_CONFIG_LIBDIR` (so `pkg-config`
//! finds these and never the host's). The objects are compiled with hidden
//! visibility: the library ends up inside the extension's shared object
//! and two extensions that both carry it cannot clash in the component.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use eryx_linker::sha256_hex;

use crate::stdlib_ext::{Library, compile, library_flags, library_sources};
use crate::toolchain::Toolchain;
use crate::{process, progress};

/// One static archive of a library.
struct Archive {
    /// `-l` name: `lib<link_name>.a`.
    link_name: &'static str,
    /// Its sources, from the unpacked tarball's top directory.
    sources: fn(&Path) -> Result<Vec<PathBuf>>,
}

/// A pkg-config module the prefix describes.
struct PkgConfig {
    module: &'static str,
    /// `Libs:` after `-L${libdir}`.
    libs: &'static str,
    /// `Requires:` (modules of other prefixes on `PKG_CONFIG_LIBDIR`).
    requires: &'static str,
    /// The directory under `include/` that `Cflags:` names (FreeType's
    /// headers are in `include/freetype2`); empty for `include/` itself.
    include_subdir: &'static str,
    /// `Version:` where the library's own `.pc` file does not give its
    /// release (FreeType's is its libtool version, which builds such as
    /// matplotlib's compare against); empty for the upstream version.
    version: &'static str,
}

impl PkgConfig {
    /// Every field, for the keys that say when the library changed.
    fn describe(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.module, self.libs, self.requires, self.include_subdir, self.version
        )
    }
}

/// A file made from a template by replacing `@NAME@`.
struct Generated {
    template: &'static str,
    output: &'static str,
    values: &'static [(&'static str, &'static str)],
}

/// A library a recipe can name.
struct CLib {
    /// The name recipes use.
    name: &'static str,
    /// Upstream version, for the `.pc` files.
    upstream_version: &'static str,
    /// Where the sources come from, with the compile's definitions,
    /// include directories and `config.h` (its `sources` are unused:
    /// `archives` says which file goes where).
    library: Library,
    archives: &'static [Archive],
    pkg_config: &'static [PkgConfig],
    /// Public headers: `(source, directory under include/)`; a source
    /// ending in `/` stands for every `.h` in it. Generated files are
    /// looked for first.
    headers: &'static [(&'static str, &'static str)],
    generated: &'static [Generated],
    /// Libraries whose headers the compile needs.
    deps: &'static [&'static str],
    /// Whether it is C++ ([`CXX_FLAGS`] for its `.cpp` files).
    cxx: bool,
    /// eryx's own C files compiled into the first archive (`xtask/clibs/`).
    extra_sources: &'static [&'static str],
}

fn files(top: &Path, dir: &str, names: &[&str]) -> Vec<PathBuf> {
    names.iter().map(|f| top.join(dir).join(f)).collect()
}

fn unused(_top: &Path) -> Result<Vec<PathBuf>> {
    Ok(Vec::new())
}

fn zlib_sources(top: &Path) -> Result<Vec<PathBuf>> {
    Ok(files(
        top,
        "",
        &[
            "adler32.c",
            "compress.c",
            "crc32.c",
            "deflate.c",
            "gzclose.c",
            "gzlib.c",
            "gzread.c",
            "gzwrite.c",
            "infback.c",
            "inffast.c",
            "inflate.c",
            "inftrees.c",
            "trees.c",
            "uncompr.c",
            "zutil.c",
        ],
    ))
}

fn libyaml_sources(top: &Path) -> Result<Vec<PathBuf>> {
    Ok(files(
        top,
        "src",
        &[
            "api.c",
            "dumper.c",
            "emitter.c",
            "loader.c",
            "parser.c",
            "reader.c",
            "scanner.c",
            "writer.c",
        ],
    ))
}

/// libxml2's core and the optional parts its `xmlversion.h` below enables
/// (meson.build's `xml_src` and `xml_opt_src`).
fn libxml2_sources(top: &Path) -> Result<Vec<PathBuf>> {
    Ok(files(
        top,
        "",
        &[
            "buf.c",
            "chvalid.c",
            "dict.c",
            "entities.c",
            "encoding.c",
            "error.c",
            "globals.c",
            "hash.c",
            "list.c",
            "parser.c",
            "parserInternals.c",
            "SAX2.c",
            "threads.c",
            "tree.c",
            "uri.c",
            "valid.c",
            "xmlIO.c",
            "xmlmemory.c",
            "xmlstring.c",
            "c14n.c",
            "catalog.c",
            "debugXML.c",
            "HTMLparser.c",
            "HTMLtree.c",
            "xmlsave.c",
            "pattern.c",
            "xmlreader.c",
            "xmlregexp.c",
            "relaxng.c",
            "xmlschemas.c",
            "xmlschemastypes.c",
            "schematron.c",
            "xmlwriter.c",
            "xinclude.c",
            "xpath.c",
            "xlink.c",
            "xpointer.c",
        ],
    ))
}

/// libjpeg-turbo's library (CMakeLists.txt's `JPEG_SOURCES` with
/// arithmetic coding, without SIMD): the files compiled once, and those
/// compiled once per sample precision through `src/wrapper/<name>-<bits>.c`.
fn libjpeg_sources(top: &Path) -> Result<Vec<PathBuf>> {
    const ONCE: &[&str] = &[
        "jcapimin",
        "jchuff",
        "jcicc",
        "jcinit",
        "jclhuff",
        "jcmarker",
        "jcmaster",
        "jcomapi",
        "jcparam",
        "jcphuff",
        "jctrans",
        "jdapimin",
        "jdatadst",
        "jdatasrc",
        "jdhuff",
        "jdicc",
        "jdinput",
        "jdlhuff",
        "jdmarker",
        "jdmaster",
        "jdphuff",
        "jdtrans",
        "jerror",
        "jfdctflt",
        "jmemmgr",
        "jmemnobs",
        "jpeg_nbits",
        "jaricom",
        "jcarith",
        "jdarith",
    ];
    const BITS_8_12_16: &[&str] = &[
        "jcapistd", "jccolor", "jcdiffct", "jclossls", "jcmainct", "jcprepct", "jcsample",
        "jdapistd", "jdcolor", "jddiffct", "jdlossls", "jdmainct", "jdpostct", "jdsample",
        "jutils",
    ];
    const BITS_8_12: &[&str] = &[
        "jccoefct", "jcdctmgr", "jdcoefct", "jddctmgr", "jdmerge", "jfdctfst", "jfdctint",
        "jidctflt", "jidctfst", "jidctint", "jidctred", "jquant1", "jquant2",
    ];
    let mut out: Vec<PathBuf> = ONCE
        .iter()
        .map(|f| top.join("src").join(format!("{f}.c")))
        .collect();
    for (names, bits) in [(BITS_8_12_16, &[8, 12, 16][..]), (BITS_8_12, &[8, 12][..])] {
        for f in names {
            for b in bits {
                out.push(top.join("src/wrapper").join(format!("{f}-{b}.c")));
            }
        }
    }
    Ok(out)
}

/// FreeType's library (CMakeLists.txt's `BASE_SRCS`: every font driver,
/// rasteriser and the cache; its own copy of zlib's inflate for `.gz`
/// fonts; no bzip2), with the portable `ftsystem.c` (stdio, no mmap).
fn freetype_sources(top: &Path) -> Result<Vec<PathBuf>> {
    const FILES: &[&str] = &[
        "autofit/autofit.c",
        "base/ftbase.c",
        "base/ftbbox.c",
        "base/ftbdf.c",
        "base/ftbitmap.c",
        "base/ftcid.c",
        "base/ftfstype.c",
        "base/ftgasp.c",
        "base/ftglyph.c",
        "base/ftgxval.c",
        "base/ftinit.c",
        "base/ftmm.c",
        "base/ftotval.c",
        "base/ftpatent.c",
        "base/ftpfr.c",
        "base/ftstroke.c",
        "base/ftsynth.c",
        "base/fttype1.c",
        "base/ftwinfnt.c",
        "base/ftsystem.c",
        "base/ftdebug.c",
        "bdf/bdf.c",
        "cache/ftcache.c",
        "cff/cff.c",
        "cid/type1cid.c",
        "gzip/ftgzip.c",
        "lzw/ftlzw.c",
        "pcf/pcf.c",
        "pfr/pfr.c",
        "psaux/psaux.c",
        "pshinter/pshinter.c",
        "psnames/psnames.c",
        "raster/raster.c",
        "sdf/sdf.c",
        "sfnt/sfnt.c",
        "smooth/smooth.c",
        "svg/svg.c",
        "truetype/truetype.c",
        "type1/type1.c",
        "type42/type42.c",
        "winfonts/winfnt.c",
    ];
    Ok(files(top, "src", FILES))
}

/// libwebp (decoder, encoder, their DSP code without SIMD: the x86, ARM
/// and MIPS files compile to nothing for wasm, and sharpyuv, which the
/// encoder calls).
fn libwebp_sources(top: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for dir in ["src/dec", "src/dsp", "src/enc", "src/utils", "sharpyuv"] {
        out.extend(c_files_in(top.join(dir))?);
    }
    Ok(out)
}

fn libwebpdemux_sources(top: &Path) -> Result<Vec<PathBuf>> {
    c_files_in(top.join("src/demux"))
}

fn libwebpmux_sources(top: &Path) -> Result<Vec<PathBuf>> {
    c_files_in(top.join("src/mux"))
}

/// Qhull's reentrant library (`libqhull_r`, as Debian's `libqhull-r8.0`):
/// every C file of it (its programs and C++ interface are elsewhere).
fn qhull_sources(top: &Path) -> Result<Vec<PathBuf>> {
    c_files_in(top.join("src/libqhull_r"))
}

fn c_files_in(dir: PathBuf) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("{}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    out.sort();
    Ok(out)
}

/// Every file under `dir` (recursively) whose extension is one of `exts`,
/// sorted.
fn files_under(dir: &Path, exts: &[&str]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("{}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path
                .extension()
                .is_some_and(|e| exts.iter().any(|x| e == *x))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// GEOS's C++ library: every C++ file of `src/` and its vendored `ryu`
/// (C, double-to-text).
fn geos_sources(top: &Path) -> Result<Vec<PathBuf>> {
    files_under(&top.join("src"), &["cpp", "c"])
}

/// GEOS's C API (`libgeos_c`, what shapely links).
fn geos_c_sources(top: &Path) -> Result<Vec<PathBuf>> {
    Ok(files(top, "capi", &["geos_c.cpp", "geos_ts_c.cpp"]))
}

fn libxslt_sources(top: &Path) -> Result<Vec<PathBuf>> {
    c_files_in(top.join("libxslt"))
}

fn libexslt_sources(top: &Path) -> Result<Vec<PathBuf>> {
    c_files_in(top.join("libexslt"))
}

/// WASI's answers to libxml2's configure checks.
const LIBXML2_CONFIG_H: &str = "\
#define HAVE_STDINT_H 1
#define HAVE_DECL_GETENTROPY 0
#define HAVE_DECL_GLOB 0
#define HAVE_DECL_MMAP 0
#define HAVE_FUNC_ATTRIBUTE_DESTRUCTOR 1
#define XML_SYSCONFDIR \"/etc\"
int eryx_xml2_dup(int fd);
int eryx_xml2_close(int fd);
";

/// libxml2's features: Debian's set, without threads (WASI has none),
/// HTTP (no network), loadable modules, ICU and zlib-compressed input.
const LIBXML2_VERSION_H: &[(&str, &str)] = &[
    ("VERSION", "2.15.4"),
    ("LIBXML_VERSION_NUMBER", "21504"),
    ("LIBXML_VERSION_EXTRA", ""),
    ("MODULE_EXTENSION", ".so"),
    ("WITH_THREADS", "0"),
    ("WITH_THREAD_ALLOC", "0"),
    ("WITH_OUTPUT", "1"),
    ("WITH_PUSH", "1"),
    ("WITH_READER", "1"),
    ("WITH_PATTERN", "1"),
    ("WITH_WRITER", "1"),
    ("WITH_SAX1", "1"),
    ("WITH_HTTP", "0"),
    ("WITH_VALID", "1"),
    ("WITH_HTML", "1"),
    ("WITH_C14N", "1"),
    ("WITH_CATALOG", "1"),
    ("WITH_XPATH", "1"),
    ("WITH_XPTR", "1"),
    ("WITH_XINCLUDE", "1"),
    ("WITH_ICONV", "1"),
    ("WITH_ICU", "0"),
    ("WITH_ISO8859X", "1"),
    ("WITH_DEBUG", "1"),
    ("WITH_REGEXPS", "1"),
    ("WITH_RELAXNG", "1"),
    ("WITH_SCHEMAS", "1"),
    ("WITH_SCHEMATRON", "1"),
    ("WITH_MODULES", "0"),
    ("WITH_ZLIB", "0"),
];

/// libjpeg-turbo's public configuration: the libjpeg 6.2 API (Debian's
/// `libjpeg62-turbo`), arithmetic coding, no SIMD (none for wasm).
const LIBJPEG_CONFIG_H: &[(&str, &str)] = &[
    ("JPEG_LIB_VERSION", "62"),
    ("VERSION", "3.1.3"),
    ("LIBJPEG_TURBO_VERSION_NUMBER", "3001003"),
    ("C_ARITH_CODING_SUPPORTED", "1"),
    ("D_ARITH_CODING_SUPPORTED", "1"),
];

/// libjpeg-turbo's internal configuration for wasm32 (a 4-byte `size_t`,
/// `unsigned long` as wide, one thread).
const LIBJPEG_CONFIGINT_H: &[(&str, &str)] = &[
    ("BUILD", "eryx"),
    ("HIDDEN", "__attribute__((visibility(\"hidden\")))"),
    ("INLINE", "__inline__ __attribute__((always_inline))"),
    ("THREAD_LOCAL", ""),
    ("CMAKE_PROJECT_NAME", "libjpeg-turbo"),
    ("VERSION", "3.1.3"),
    ("SIZE_T", "4"),
    ("HAVE_BUILTIN_CTZL", "1"),
    ("C_ARITH_CODING_SUPPORTED", "1"),
    ("D_ARITH_CODING_SUPPORTED", "1"),
];

/// WASI's answers to libxslt's configure checks.
const LIBXSLT_CONFIG_H: &str = "\
#define HAVE_CLOCK_GETTIME 1
#define HAVE_GETTIMEOFDAY 1
#define HAVE_GMTIME_R 1
#define HAVE_INTTYPES_H 1
#define HAVE_LOCALE_H 1
#define HAVE_LOCALTIME_R 1
#define HAVE_SNPRINTF 1
#define HAVE_STAT 1
#define HAVE_STDINT_H 1
#define HAVE_STDLIB_H 1
#define HAVE_STRING_H 1
#define HAVE_SYS_STAT_H 1
#define HAVE_SYS_TIME_H 1
#define HAVE_SYS_TYPES_H 1
#define HAVE_UNISTD_H 1
#define HAVE_VSNPRINTF 1
#define PACKAGE \"libxslt\"
#define VERSION \"1.1.45\"
";

const LIBXSLT_VERSION_H: &[(&str, &str)] = &[
    ("VERSION", "1.1.45"),
    ("LIBXSLT_VERSION_NUMBER", "10145"),
    ("LIBXSLT_VERSION_EXTRA", ""),
    ("WITH_XSLT_DEBUG", "1"),
    ("WITH_DEBUGGER", "0"),
    ("WITH_PROFILER", "1"),
    ("WITH_MODULES", "0"),
    ("WITH_TRIO", "0"),
    ("LIBXSLT_DEFAULT_PLUGINS_PATH", "/usr/lib/libxslt-plugins"),
];

const LIBEXSLT_VERSION_H: &[(&str, &str)] = &[
    ("LIBEXSLT_VERSION", "0.8.25"),
    ("LIBEXSLT_VERSION_NUMBER", "825"),
    ("LIBEXSLT_VERSION_EXTRA", ""),
    ("WITH_CRYPTO", "0"),
];

/// Read before every FreeType source (`-include`). FreeType declares its
/// API with default visibility whatever `-fvisibility` says, so every
/// extension linking it would export `FT_*` (and `TT_RunIns`, ...): two
/// such extensions in one set (Pillow's `_imagingft` and matplotlib's
/// `ft2font`) then export the same symbols, which the linker refuses. Its
/// macro header has an include guard and the attribute is expanded where
/// `FT_EXPORT` is used, so redefining it here, after the header, makes the
/// API hidden like the rest of the library.
const FREETYPE_HIDDEN_API: &str = "\
/* Written by `cargo xtask wheel` (eryx): FreeType's API stays inside the extension. */
#include <freetype/config/public-macros.h>
#undef FT_PUBLIC_FUNCTION_ATTRIBUTE
#define FT_PUBLIC_FUNCTION_ATTRIBUTE
";

/// How a C++ library's `.cpp` files are compiled, after libc++'s headers.
const CXX_FLAGS: &[&str] = &[
    "-std=c++17",
    "-fwasm-exceptions",
    // libc++'s classes have default visibility, so the members the
    // compiler defines for them (a string stream's destructor) would be
    // exported by every extension that links the library, and two such
    // extensions could not be linked together (shapely has three).
    "-fvisibility-inlines-hidden",
    // Its classes' type_info, names and vtables stay visible though: each
    // extension linking the library has a copy of it, and objects pass
    // between them (shapely's `_geometry_helpers` works on geometries its
    // `lib` made). With hidden copies, a `dynamic_cast` in one copy failed
    // on an object of the other's ("must be a Surface"); visible, the
    // component's linker binds them all to one copy (exported duplicates
    // of these are allowed: `eryx_linker`'s C++ vague linkage), as a
    // native dynamic linker does.
    "-Xclang",
    "-ftype-visibility=default",
];

/// `Version.txt` of GEOS 3.13.1, as its CMake build fills its headers (the
/// C API's version is CURRENT-AGE . AGE . REVISION: 20-19, 19, 2).
const GEOS_VERSION_VALUES: &[(&str, &str)] = &[
    ("VERSION_MAJOR", "3"),
    ("VERSION_MINOR", "13"),
    ("VERSION_PATCH", "1"),
    ("VERSION", "3.13.1"),
    ("JTS_PORT", "1.18.0"),
    ("CAPI_VERSION_MAJOR", "1"),
    ("CAPI_VERSION_MINOR", "19"),
    ("CAPI_VERSION_PATCH", "2"),
    ("CAPI_VERSION", "1.19.2"),
];

const CLIBS: &[CLib] = &[
    CLib {
        name: "zlib",
        upstream_version: "1.3.2",
        library: Library {
            package: "zlib",
            version: "1:1.3.dfsg+really1.3.2-4",
            sources: unused,
            includes: &["."],
            defines: &["-DHAVE_UNISTD_H", "-DHAVE_STDARG_H"],
            config_h: None,
        },
        archives: &[Archive {
            link_name: "z",
            sources: zlib_sources,
        }],
        pkg_config: &[PkgConfig {
            module: "zlib",
            libs: "-lz",
            requires: "",
            include_subdir: "",
            version: "",
        }],
        headers: &[("zlib.h", ""), ("zconf.h", "")],
        generated: &[],
        cxx: false,
        deps: &[],
        extra_sources: &[],
    },
    CLib {
        name: "yaml",
        upstream_version: "0.2.5",
        library: Library {
            package: "libyaml",
            version: "0.2.5-2",
            sources: unused,
            includes: &["include", "src"],
            defines: &[
                "-DYAML_VERSION_MAJOR=0",
                "-DYAML_VERSION_MINOR=2",
                "-DYAML_VERSION_PATCH=5",
                "-DYAML_VERSION_STRING=\"0.2.5\"",
            ],
            config_h: None,
        },
        archives: &[Archive {
            link_name: "yaml",
            sources: libyaml_sources,
        }],
        pkg_config: &[PkgConfig {
            module: "yaml-0.1",
            libs: "-lyaml",
            requires: "",
            include_subdir: "",
            version: "",
        }],
        headers: &[("include/yaml.h", "")],
        generated: &[],
        cxx: false,
        deps: &[],
        extra_sources: &[],
    },
    CLib {
        name: "xml2",
        upstream_version: "2.15.4",
        library: Library {
            package: "libxml2",
            version: "2.15.4+dfsg-1",
            sources: unused,
            includes: &[".", "include"],
            // WASI has no dup(): see xtask/clibs/libxml2-dup.c.
            defines: &[
                "-DHAVE_CONFIG_H",
                "-D_GNU_SOURCE",
                "-Ddup(fd)=eryx_xml2_dup(fd)",
                "-Dclose(fd)=eryx_xml2_close(fd)",
            ],
            config_h: Some(LIBXML2_CONFIG_H),
        },
        archives: &[Archive {
            link_name: "xml2",
            sources: libxml2_sources,
        }],
        pkg_config: &[PkgConfig {
            module: "libxml-2.0",
            libs: "-lxml2",
            requires: "",
            include_subdir: "",
            version: "",
        }],
        headers: &[("include/libxml/", "libxml")],
        generated: &[Generated {
            template: "include/libxml/xmlversion.h.in",
            output: "include/libxml/xmlversion.h",
            values: LIBXML2_VERSION_H,
        }],
        cxx: false,
        deps: &[],
        extra_sources: &["libxml2-dup.c"],
    },
    CLib {
        name: "xslt",
        upstream_version: "1.1.45",
        library: Library {
            package: "libxslt",
            version: "1.1.45-0.1",
            sources: unused,
            includes: &[".", "libxslt", "libexslt"],
            defines: &["-DHAVE_CONFIG_H", "-D_GNU_SOURCE"],
            config_h: Some(LIBXSLT_CONFIG_H),
        },
        archives: &[
            Archive {
                link_name: "xslt",
                sources: libxslt_sources,
            },
            Archive {
                link_name: "exslt",
                sources: libexslt_sources,
            },
        ],
        pkg_config: &[
            PkgConfig {
                module: "libxslt",
                libs: "-lxslt",
                requires: "libxml-2.0",
                include_subdir: "",
                version: "",
            },
            PkgConfig {
                module: "libexslt",
                libs: "-lexslt",
                requires: "libxslt",
                include_subdir: "",
                version: "",
            },
        ],
        headers: &[("libxslt/", "libxslt"), ("libexslt/", "libexslt")],
        generated: &[
            Generated {
                template: "libxslt/xsltconfig.h.in",
                output: "libxslt/xsltconfig.h",
                values: LIBXSLT_VERSION_H,
            },
            Generated {
                template: "libexslt/exsltconfig.h.in",
                output: "libexslt/exsltconfig.h",
                values: LIBEXSLT_VERSION_H,
            },
        ],
        cxx: false,
        deps: &["xml2"],
        extra_sources: &[],
    },
    CLib {
        name: "jpeg",
        upstream_version: "3.1.3",
        library: Library {
            package: "libjpeg-turbo",
            version: "1:3.1.3-4",
            sources: unused,
            includes: &["src"],
            defines: &[],
            config_h: None,
        },
        archives: &[Archive {
            link_name: "jpeg",
            sources: libjpeg_sources,
        }],
        pkg_config: &[PkgConfig {
            module: "libjpeg",
            libs: "-ljpeg",
            requires: "",
            include_subdir: "",
            version: "",
        }],
        headers: &[
            ("src/jpeglib.h", ""),
            ("src/jmorecfg.h", ""),
            ("src/jerror.h", ""),
            ("jconfig.h", ""),
        ],
        generated: &[
            Generated {
                template: "src/jconfig.h.in",
                output: "jconfig.h",
                values: LIBJPEG_CONFIG_H,
            },
            Generated {
                template: "src/jconfigint.h.in",
                output: "jconfigint.h",
                values: LIBJPEG_CONFIGINT_H,
            },
            Generated {
                template: "src/jversion.h.in",
                output: "jversion.h",
                values: &[("COPYRIGHT_YEAR", "1991-2025")],
            },
        ],
        cxx: false,
        deps: &[],
        extra_sources: &[],
    },
    // Its rasterisers recover from overflows with setjmp/longjmp.
    CLib {
        name: "freetype",
        upstream_version: "2.14.3",
        library: Library {
            package: "freetype",
            version: "2.14.3+dfsg-3",
            sources: unused,
            includes: &["include"],
            defines: &["-DFT2_BUILD_LIBRARY", "-include", "config.h"],
            config_h: Some(FREETYPE_HIDDEN_API),
        },
        archives: &[Archive {
            link_name: "freetype",
            sources: freetype_sources,
        }],
        pkg_config: &[PkgConfig {
            module: "freetype2",
            libs: "-lfreetype",
            requires: "",
            include_subdir: "freetype2",
            version: "26.6.20",
        }],
        headers: &[
            ("include/ft2build.h", "freetype2"),
            ("include/freetype/", "freetype2/freetype"),
            ("include/freetype/config/", "freetype2/freetype/config"),
        ],
        generated: &[],
        cxx: false,
        deps: &[],
        extra_sources: &[],
    },
    // Without its config.h: no threads, SIMD only where the compiler
    // says so (never for wasm32 here).
    CLib {
        name: "webp",
        upstream_version: "1.6.0",
        library: Library {
            package: "libwebp",
            version: "1.6.0-0.1",
            sources: unused,
            includes: &[".", "src"],
            // Its API is declared with default visibility, which
            // `-fvisibility=hidden` does not override (see `FREETYPE_HIDDEN_API`).
            defines: &["-DWEBP_EXTERN=extern"],
            config_h: None,
        },
        archives: &[
            Archive {
                link_name: "webp",
                sources: libwebp_sources,
            },
            Archive {
                link_name: "webpdemux",
                sources: libwebpdemux_sources,
            },
            Archive {
                link_name: "webpmux",
                sources: libwebpmux_sources,
            },
        ],
        pkg_config: &[
            PkgConfig {
                module: "libwebp",
                libs: "-lwebp",
                requires: "",
                include_subdir: "",
                version: "",
            },
            PkgConfig {
                module: "libwebpdemux",
                libs: "-lwebpdemux",
                requires: "libwebp",
                include_subdir: "",
                version: "",
            },
            PkgConfig {
                module: "libwebpmux",
                libs: "-lwebpmux",
                requires: "libwebp",
                include_subdir: "",
                version: "",
            },
        ],
        headers: &[("src/webp/", "webp")],
        generated: &[],
        cxx: false,
        deps: &[],
        extra_sources: &[],
    },
    // Qhull reports errors by `longjmp`ing out of the computation
    // (`qh_errexit`) to the `setjmp` of `qh_new_qhull`: both are in this
    // library.
    CLib {
        name: "qhull",
        upstream_version: "8.0.2",
        library: Library {
            package: "qhull",
            version: "2020.2-9",
            sources: unused,
            includes: &["src"],
            defines: &[],
            config_h: None,
        },
        archives: &[Archive {
            link_name: "qhull_r",
            sources: qhull_sources,
        }],
        pkg_config: &[PkgConfig {
            module: "qhull_r",
            libs: "-lqhull_r",
            requires: "",
            include_subdir: "",
            version: "",
        }],
        headers: &[("src/libqhull_r/", "libqhull_r")],
        generated: &[],
        cxx: false,
        deps: &[],
        extra_sources: &[],
    },
    // Reference LAPACK 3.12 with its BLAS and CBLAS, translated from Fortran
    // by f2c (`crate::lapack`): one archive, named by the `lapack`, `blas`
    // and `cblas` modules that numpy's and scipy's builds look for.
    CLib {
        name: "lapack",
        upstream_version: "3.12.1",
        library: Library {
            package: "lapack",
            version: "3.12.1-8",
            sources: unused,
            includes: &["eryx-f2c"],
            defines: &[crate::lapack::TRANSLATION],
            config_h: None,
        },
        archives: &[Archive {
            link_name: "lapack",
            sources: crate::lapack::sources,
        }],
        pkg_config: &[
            PkgConfig {
                module: "lapack",
                libs: "-llapack",
                requires: "",
                include_subdir: "",
                version: "",
            },
            PkgConfig {
                module: "blas",
                libs: "-llapack",
                requires: "",
                include_subdir: "",
                version: "",
            },
            PkgConfig {
                module: "cblas",
                libs: "-llapack",
                requires: "",
                include_subdir: "",
                version: "",
            },
        ],
        headers: &[
            ("eryx-f2c/cblas.h", ""),
            ("eryx-f2c/cblas_64.h", ""),
            ("eryx-f2c/cblas_mangling.h", ""),
        ],
        generated: &[],
        cxx: false,
        deps: &[],
        extra_sources: &[
            "lapack/lapack_f90.c",
            "lapack/f2c_runtime.c",
            "lapack/xerbla.c",
        ],
    },
    // GEOS (shapely's geometry engine), C++ with exceptions: its C API
    // catches what the C++ throws (a topology error, an invalid geometry)
    // and reports it as an error. 3.13 from Debian's stable release: the
    // archive reachable here answers 404 for sid's 3.15 tarball.
    CLib {
        name: "geos",
        upstream_version: "3.13.1",
        library: Library {
            package: "geos",
            version: "3.13.1-1",
            sources: unused,
            includes: &["include", "src/deps"],
            // As its CMake build: no asserts, its C++ API usable from its C
            // API, no fused multiply-add (its double-double arithmetic
            // relies on separate roundings).
            defines: &[
                "-DNDEBUG",
                "-DUSE_UNSTABLE_GEOS_CPP_API",
                "-ffp-contract=off",
            ],
            config_h: None,
        },
        archives: &[
            Archive {
                link_name: "geos",
                sources: geos_sources,
            },
            Archive {
                link_name: "geos_c",
                sources: geos_c_sources,
            },
        ],
        pkg_config: &[PkgConfig {
            module: "geos",
            // Static archives: the C API needs the C++ library and libc++
            // (the bundle's; the guest compilers add libunwind for a
            // package built with exceptions).
            libs: "-lgeos_c -lgeos -lc++",
            requires: "",
            include_subdir: "",
            version: "",
        }],
        headers: &[
            ("capi/geos_c.h", ""),
            ("include/geos/export.h", "geos"),
            ("include/geos/version.h", "geos"),
        ],
        generated: &[
            Generated {
                template: "include/geos/version.h.in",
                output: "include/geos/version.h",
                values: GEOS_VERSION_VALUES,
            },
            Generated {
                template: "capi/geos_c.h.in",
                output: "capi/geos_c.h",
                values: GEOS_VERSION_VALUES,
            },
        ],
        cxx: true,
        deps: &[],
        extra_sources: &[],
    },
    // eryx's own libffi (`xtask/clibs/ffi/`): libffi has no WASI port.
    CLib {
        name: "ffi",
        upstream_version: "3.4.0",
        library: Library {
            package: "",
            version: "",
            sources: unused,
            includes: &["ffi"],
            defines: &[],
            config_h: None,
        },
        archives: &[Archive {
            link_name: "ffi",
            sources: no_sources,
        }],
        pkg_config: &[PkgConfig {
            module: "libffi",
            libs: "-lffi",
            requires: "",
            include_subdir: "",
            version: "",
        }],
        headers: &[("ffi/ffi.h", "")],
        generated: &[],
        cxx: false,
        deps: &[],
        extra_sources: &["ffi/ffi.c"],
    },
];

/// A library all of whose sources are `extra_sources`.
fn no_sources(_: &Path) -> Result<Vec<PathBuf>> {
    Ok(Vec::new())
}

/// Whether `lib` is eryx's own (no Debian source package): its sources and
/// headers are in `xtask/clibs/`.
fn own(lib: &CLib) -> bool {
    lib.library.package.is_empty()
}

/// For eryx's own library, the hashes of its headers (its sources are
/// `extra_sources`, hashed where they are compiled); nothing otherwise
/// (a Debian library's headers come with its pinned source package).
fn own_headers(root: &Path, lib: &CLib) -> Result<String> {
    let mut out = String::new();
    if own(lib) {
        for (src, _) in lib.headers {
            let path = root.join("xtask/clibs").join(src);
            out.push_str(&sha256_hex(
                &std::fs::read(&path).with_context(|| format!("{}", path.display()))?,
            ));
        }
    }
    Ok(out)
}

/// What defines library `name`'s build (its source package, flags,
/// generated files, archives, headers, eryx's extra sources and those of
/// the libraries it depends on), for the keys of wheels built with it: a
/// change here must rebuild them. Cheap: nothing is built.
pub(crate) fn definition(root: &Path, name: &str) -> Result<String> {
    if name == crate::openssl::NAME {
        return Ok(crate::openssl::definition());
    }
    let lib = find(name)?;
    let l = &lib.library;
    let mut out = format!(
        "{} {} {} {:?} {:?} {:?} {:?}\n",
        lib.name, l.package, l.version, l.includes, l.defines, l.config_h, lib.headers
    );
    for g in lib.generated {
        out.push_str(&format!("{} {} {:?}\n", g.template, g.output, g.values));
    }
    for a in lib.archives {
        out.push_str(a.link_name);
    }
    for p in lib.pkg_config {
        out.push(' ');
        out.push_str(&p.describe());
    }
    for extra in lib.extra_sources {
        let path = root.join("xtask/clibs").join(extra);
        out.push_str(&sha256_hex(
            &std::fs::read(&path).with_context(|| format!("{}", path.display()))?,
        ));
    }
    out.push_str(&own_headers(root, lib)?);
    if lib.cxx {
        out.push_str(&format!(" C++ {CXX_FLAGS:?}"));
    }
    for dep in lib.deps {
        out.push_str(&definition(root, dep)?);
    }
    Ok(out)
}

/// Library `name`, or an error naming the known ones.
fn find(name: &str) -> Result<&'static CLib> {
    CLIBS.iter().find(|c| c.name == name).with_context(|| {
        format!(
            "no C library `{name}` to build for the guest; known: {}",
            known().join(", ")
        )
    })
}

/// The names recipes may use.
pub(crate) fn known() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = CLIBS.iter().map(|c| c.name).collect();
    // Built by its own build system (`crate::openssl`).
    names.push(crate::openssl::NAME);
    names
}

/// The environment a Rust build (`cargo xtask ext build`, maturin
/// packages) needs to link library `name`, built at `prefix`, through its
/// `-sys` crate: empty for libraries found through pkg-config alone.
pub(crate) fn cargo_env(name: &str, prefix: &Path) -> Vec<(String, String)> {
    if name == crate::openssl::NAME {
        crate::openssl::cargo_env(prefix)
    } else {
        Vec::new()
    }
}

/// `template` with every `@NAME@` replaced; an `@NAME@` left without a
/// value is an error (a configure step this build does not know). A CMake
/// `#cmakedefine NAME REST` line becomes `#define NAME REST` when `values`
/// has `NAME`, else a comment saying it is undefined (as CMake writes it
/// for a variable that is not set).
fn fill_template(template: &str, values: &[(&str, &str)]) -> Result<String> {
    let mut text = String::with_capacity(template.len());
    for line in template.split_inclusive('\n') {
        let Some(rest) = line.trim_start().strip_prefix("#cmakedefine ") else {
            text.push_str(line);
            continue;
        };
        let rest = rest.trim_end();
        let name = rest.split_whitespace().next().unwrap_or_default();
        if values.iter().any(|(k, _)| *k == name) {
            text.push_str(&format!("#define {rest}\n"));
        } else {
            text.push_str(&format!("/* #undef {name} */\n"));
        }
    }
    for (k, v) in values {
        text = text.replace(&format!("@{k}@"), v);
    }
    // `@NAME@` still in the text: an upper-case word between two `@`.
    let bytes = text.as_bytes();
    let mut left = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'@' {
            let word = bytes[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || **c == b'_')
                .count();
            if word > 0 && bytes.get(i + 1 + word) == Some(&b'@') {
                left.push(text[i..i + word + 2].to_string());
                i += word + 2;
                continue;
            }
        }
        i += 1;
    }
    if !left.is_empty() {
        bail!("no value for {}", left.join(", "));
    }
    Ok(text)
}

/// Builds library `name` for the guest (or reuses the last build of the same
/// inputs); returns its prefix.
pub(crate) fn prefix(root: &Path, tools: &Toolchain, name: &str) -> Result<PathBuf> {
    let openssl = name == crate::openssl::NAME;
    let lib = if openssl { None } else { Some(find(name)?) };
    // Two wheel builds at once (`cargo xtask test` runs two) may need the
    // same library (zlib: Pillow and lxml): one fetches and builds it while
    // the other waits here, then finds it up to date. One lock per library,
    // so building a dependency inside this call takes another lock.
    let locks = root.join("target/wasm/clibs/.build");
    std::fs::create_dir_all(&locks)?;
    let lock_path = locks.join(format!("{name}.lock"));
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("cannot create {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("cannot lock {}", lock_path.display()))?;
    let Some(lib) = lib else {
        return crate::openssl::prefix(root, tools);
    };
    let sysroot = crate::sysroot::sysroot(root)?;
    let (top, origin) = if own(lib) {
        (
            root.join("xtask/clibs"),
            format!("eryx's own sources (xtask/clibs/{})", lib.name),
        )
    } else {
        library_sources(root, &lib.library)?
    };
    let prefix = root.join("target/wasm/clibs").join(lib.name);
    let work = root.join("target/wasm/clibs/.build").join(lib.name);
    let gen_dir = work.join("gen");
    std::fs::create_dir_all(&gen_dir)?;
    let mut flags = library_flags(&sysroot.dir, &lib.library, &top, &work)?;
    // C libraries report errors with `setjmp`/`longjmp` (libjpeg's callers,
    // FreeType): see `crate::sjlj`.
    flags.extend(crate::sjlj::COMPILE_FLAGS.map(String::from));
    let mut key_input = String::new();
    for g in lib.generated {
        let template = std::fs::read_to_string(top.join(g.template))
            .with_context(|| format!("{}: no template {}", top.display(), g.template))?;
        let text = fill_template(&template, g.values)
            .with_context(|| format!("configuring {} from {}", lib.name, g.template))?;
        let out = gen_dir.join(g.output);
        std::fs::create_dir_all(out.parent().expect("a file in a directory"))?;
        std::fs::write(&out, &text)?;
        key_input.push_str(&text);
        if let Some(parent) = Path::new(g.output).parent() {
            flags.push(format!("-I{}", gen_dir.join(parent).display()));
        }
    }
    flags.push(format!("-I{}", gen_dir.display()));
    flags.push(format!("-I{}", gen_dir.join("include").display()));
    for dep in lib.deps {
        // `self::`: the local `prefix` (this library's directory) shadows the function.
        let dep_prefix = self::prefix(root, tools, dep)?;
        flags.push(format!("-I{}", dep_prefix.join("include").display()));
        key_input.push_str(&std::fs::read_to_string(dep_prefix.join("stamp")).unwrap_or_default());
    }
    let mut archives = Vec::new();
    for (n, a) in lib.archives.iter().enumerate() {
        let mut sources = (a.sources)(&top)?;
        if n == 0 {
            for extra in lib.extra_sources {
                let path = root.join("xtask/clibs").join(extra);
                key_input.push_str(&sha256_hex(
                    &std::fs::read(&path).with_context(|| format!("{}", path.display()))?,
                ));
                sources.push(path);
            }
        }
        key_input.push_str(&format!("{} {:?}\n", a.link_name, sources));
        archives.push((a.link_name, sources));
    }
    for p in lib.pkg_config {
        key_input.push_str(&p.describe());
        key_input.push('\n');
    }
    // C++ (GEOS): libc++'s headers, behind the ones libc++ without threads
    // lacks (`<mutex>`), with wasm exceptions (rewritten into the form
    // wasmtime runs when the package's extension is linked).
    let mut cxx_flags = Vec::new();
    if lib.cxx {
        let libcxx = sysroot
            .cxx_include
            .as_ref()
            .context("the WASI sysroot has no libc++ headers, which C++ libraries need")?;
        let shim = crate::wasmcc::write_cxx_shim(&work.join("cxx-shim"))?;
        cxx_flags.extend(
            [
                "-nostdinc++",
                "-isystem",
                &shim.display().to_string(),
                "-isystem",
                &libcxx.display().to_string(),
            ]
            .map(String::from),
        );
        cxx_flags.extend(CXX_FLAGS.iter().map(|f| f.to_string()));
        key_input.push_str(&cxx_flags.join(" "));
        for (_, text) in crate::wasmcc::CXX_SHIM_FILES {
            key_input.push_str(&sha256_hex(text.as_bytes()));
        }
    }
    key_input.push_str(&own_headers(root, lib)?);
    let key = sha256_hex(
        format!(
            "{}\n{}\n{}\n{:?}\n{}",
            flags.join(" "),
            tools.versions,
            origin,
            lib.headers,
            key_input
        )
        .as_bytes(),
    );
    let stamp = prefix.join("stamp");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == key) {
        return Ok(prefix);
    }
    let _ = std::fs::remove_dir_all(&prefix);
    let libdir = prefix.join("lib");
    std::fs::create_dir_all(libdir.join("pkgconfig"))?;
    let ar = ["llvm-ar-19", "llvm-ar"]
        .into_iter()
        .find(|a| Command::new(a).arg("--version").output().is_ok())
        .context("llvm-ar is needed to archive C libraries for the guest (Debian: llvm-19)")?;
    for (link_name, sources) in &archives {
        let cxx = sources
            .iter()
            .filter(|p| crate::stdlib_ext::is_cxx(p))
            .count();
        progress!(
            "building lib{link_name} for the guest ({} files, {}{})",
            sources.len(),
            if cxx > 0 {
                format!("{cxx} of them C++, ")
            } else {
                "C, ".to_string()
            },
            if own(lib) {
                "eryx's own".to_string()
            } else {
                format!("Debian's {} {}", lib.library.package, lib.library.version)
            }
        );
        let objects = compile(tools, &flags, &cxx_flags, sources, &work)?;
        let archive = libdir.join(format!("lib{link_name}.a"));
        // Captured: the command names every object.
        process::capture(
            Command::new(ar).arg("rcs").arg(&archive).args(&objects),
            &format!("archiving {}", archive.display()),
        )?;
        for o in &objects {
            let _ = std::fs::remove_file(o);
        }
    }
    let include = prefix.join("include");
    for (src, dest) in lib.headers {
        let dest_dir = include.join(dest);
        std::fs::create_dir_all(&dest_dir)?;
        if let Some(dir) = src.strip_suffix('/') {
            for base in [top.join(dir), gen_dir.join(dir)] {
                for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
                    let path = entry.path();
                    if path.extension().is_some_and(|e| e == "h") {
                        std::fs::copy(&path, dest_dir.join(entry.file_name()))?;
                    }
                }
            }
        } else {
            let from = [gen_dir.join(src), top.join(src)]
                .into_iter()
                .find(|p| p.is_file())
                .with_context(|| format!("{}: no header {src}", top.display()))?;
            std::fs::copy(&from, dest_dir.join(from.file_name().unwrap_or_default()))?;
        }
    }
    for p in lib.pkg_config {
        std::fs::write(
            libdir.join("pkgconfig").join(format!("{}.pc", p.module)),
            pkg_config_file(&prefix, p, lib.upstream_version),
        )?;
    }
    std::fs::write(prefix.join("ORIGIN"), &origin)?;
    std::fs::write(&stamp, &key)?;
    Ok(prefix)
}

/// The `.pc` file of module `p` in `prefix`; `upstream_version` unless the
/// module says otherwise ([`PkgConfig::version`]).
fn pkg_config_file(prefix: &Path, p: &PkgConfig, upstream_version: &str) -> String {
    let version = if p.version.is_empty() {
        upstream_version
    } else {
        p.version
    };
    let requires = if p.requires.is_empty() {
        String::new()
    } else {
        format!("Requires: {}\n", p.requires)
    };
    let include = if p.include_subdir.is_empty() {
        "${includedir}".to_string()
    } else {
        format!("${{includedir}}/{}", p.include_subdir)
    };
    format!(
        "prefix={}\nlibdir=${{prefix}}/lib\nincludedir=${{prefix}}/include\n\n\
         Name: {module}\nDescription: {module} built by eryx for wasm32-wasi\n\
         Version: {version}\n{requires}Libs: -L${{libdir}} {libs}\nCflags: -I{include}\n",
        prefix.display(),
        module = p.module,
        libs = p.libs,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pkg_config_module_points_into_the_prefix() {
        let module = |lib: &str| &find(lib).unwrap().pkg_config[0];
        let pc = pkg_config_file(Path::new("/p/zlib"), module("zlib"), "1.3.2");
        assert!(pc.starts_with("prefix=/p/zlib\n"), "{pc}");
        assert!(pc.contains("Version: 1.3.2\n"), "{pc}");
        assert!(pc.contains("Libs: -L${libdir} -lz\n"), "{pc}");
        assert!(pc.contains("Cflags: -I${includedir}\n"), "{pc}");
        assert!(!pc.contains("Requires"), "{pc}");
        let pc = pkg_config_file(Path::new("/p/x"), module("xslt"), "1");
        assert!(
            pc.contains("Requires: libxml-2.0\nLibs: -L${libdir} -lxslt\n"),
            "{pc}"
        );
        // FreeType's headers are one level down, as its own .pc says.
        let pc = pkg_config_file(Path::new("/p/ft"), module("freetype"), "2.14.3");
        assert!(pc.contains("Cflags: -I${includedir}/freetype2\n"), "{pc}");
        assert!(pc.contains("Name: freetype2\n"), "{pc}");
        // Its version is the libtool one, as FreeType's own .pc gives it.
        assert!(pc.contains("Version: 26.6.20\n"), "{pc}");
    }

    #[test]
    fn eryxs_own_librarys_definition_covers_its_header_and_source() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let ffi = definition(root, "ffi").unwrap();
        for file in ["ffi/ffi.h", "ffi/ffi.c"] {
            let hash = sha256_hex(&std::fs::read(root.join("xtask/clibs").join(file)).unwrap());
            assert!(ffi.contains(&hash), "{file} not in {ffi}");
        }
        assert!(own(find("ffi").unwrap()) && !own(find("zlib").unwrap()));
    }

    #[test]
    fn a_librarys_definition_covers_its_dependencies_and_own_sources() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let xslt = definition(root, "xslt").unwrap();
        let xml2 = definition(root, "xml2").unwrap();
        assert!(
            xslt.contains("1.1.45-0.1") && xslt.ends_with(&xml2),
            "{xslt}"
        );
        assert!(
            xml2.contains("WITH_THREADS") && xml2.contains("2.15.4+dfsg-1"),
            "{xml2}"
        );
        assert_ne!(
            definition(root, "zlib").unwrap(),
            definition(root, "yaml").unwrap()
        );
        assert!(definition(root, "nope").is_err());
    }

    #[test]
    fn templates_are_filled_and_a_value_left_out_is_named() {
        let t = "#define V \"@VERSION@\"\n#if @WITH_X@\n#endif /* a@b.c */\n";
        let filled = fill_template(t, &[("VERSION", "1.2"), ("WITH_X", "0")]).unwrap();
        assert_eq!(filled, "#define V \"1.2\"\n#if 0\n#endif /* a@b.c */\n");
        let err = fill_template(t, &[("VERSION", "1.2")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("@WITH_X@"), "{err}");
    }

    #[test]
    fn geos_headers_get_every_version_value_they_name() {
        // The `@...@` lines of GEOS 3.13.1's `version.h.in` and `geos_c.h.in`.
        let t = "#define GEOS_VERSION_MAJOR @VERSION_MAJOR@\n\
                 #define GEOS_VERSION_MINOR @VERSION_MINOR@\n\
                 #define GEOS_VERSION_PATCH @VERSION_PATCH@\n\
                 #define GEOS_VERSION \"@VERSION@\"\n\
                 #define GEOS_JTS_PORT \"@JTS_PORT@\"\n\
                 #define GEOS_CAPI_VERSION_MAJOR @CAPI_VERSION_MAJOR@\n\
                 #define GEOS_CAPI_VERSION_MINOR @CAPI_VERSION_MINOR@\n\
                 #define GEOS_CAPI_VERSION_PATCH @CAPI_VERSION_PATCH@\n\
                 #define GEOS_CAPI_VERSION \"@VERSION@-CAPI-@CAPI_VERSION@\"\n";
        let filled = fill_template(t, GEOS_VERSION_VALUES).unwrap();
        assert!(
            filled.contains("#define GEOS_CAPI_VERSION \"3.13.1-CAPI-1.19.2\"\n"),
            "{filled}"
        );
        let geos = find("geos").unwrap();
        assert_eq!(geos.upstream_version, "3.13.1");
        assert!(geos.library.version.starts_with("3.13.1-"));
    }

    #[test]
    fn sources_under_a_tree_are_found_by_extension_and_cxx_by_its_own() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        for f in ["x.cpp", "a/y.c", "a/b/z.cpp", "a/b/w.h", "a/v.cc"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let found = files_under(dir.path(), &["cpp", "c"]).unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["a/b/z.cpp", "a/y.c", "x.cpp"]);
        assert!(crate::stdlib_ext::is_cxx(Path::new("a/v.cc")));
        assert!(!crate::stdlib_ext::is_cxx(Path::new("a/y.c")));
    }

    #[test]
    fn cmake_defines_are_defined_when_given_and_commented_out_otherwise() {
        let t = "#cmakedefine A 1\n  #cmakedefine B\n#cmakedefine C 1\n#define S @SIZE@\n";
        let filled = fill_template(t, &[("A", "1"), ("B", "1"), ("SIZE", "4")]).unwrap();
        assert_eq!(
            filled,
            "#define A 1\n#define B\n/* #undef C */\n#define S 4\n"
        );
    }

    #[test]
    fn an_unknown_library_is_named_with_the_known_ones() {
        let tools = Toolchain {
            cargo: "cargo".into(),
            rustc: "rustc".into(),
            clang: "clang".into(),
            versions: String::new(),
        };
        let err = prefix(Path::new("/nonexistent"), &tools, "libfoo")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`libfoo`") && err.contains("zlib"), "{err}");
    }
}
