//! C libraries that packages link into their extension modules, built for
//! the guest. A package's recipe names them (`c-libraries = ["zlib"]`);
//! `cargo xtask wheel` then builds each one (once, from Debian's upstream
//! tarball, checked against Debian's index) into a prefix of its own,
//!
//! ```text
//! target/wasm/clibs/<name>/include/...          the library's public headers
//! target/wasm/clibs/<name>/lib/lib<name>.a      PIC objects, symbols hidden
//! target/wasm/clibs/<name>/lib/pkgconfig/<name>.pc
//! ```
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

/// A library a recipe can name.
struct CLib {
    /// The name recipes use, the archive's (`lib<name>.a`) and the
    /// pkg-config module's.
    name: &'static str,
    /// `-l` name (`z` for zlib).
    link_name: &'static str,
    /// Upstream version, for the `.pc` file.
    upstream_version: &'static str,
    library: Library,
    /// Public headers, relative to the unpacked tarball's top directory
    /// (installed at the top of the prefix's `include`).
    headers: &'static [&'static str],
}

fn zlib_sources(top: &Path) -> Result<Vec<PathBuf>> {
    Ok([
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
    ]
    .iter()
    .map(|f| top.join(f))
    .collect())
}

fn libyaml_sources(top: &Path) -> Result<Vec<PathBuf>> {
    Ok([
        "api.c",
        "dumper.c",
        "emitter.c",
        "loader.c",
        "parser.c",
        "reader.c",
        "scanner.c",
        "writer.c",
    ]
    .iter()
    .map(|f| top.join("src").join(f))
    .collect())
}

const CLIBS: &[CLib] = &[
    CLib {
        name: "zlib",
        link_name: "z",
        upstream_version: "1.3.2",
        library: Library {
            package: "zlib",
            version: "1:1.3.dfsg+really1.3.2-4",
            sources: zlib_sources,
            includes: &["."],
            defines: &["-DHAVE_UNISTD_H", "-DHAVE_STDARG_H"],
            config_h: None,
        },
        headers: &["zlib.h", "zconf.h"],
    },
    CLib {
        name: "yaml",
        link_name: "yaml",
        upstream_version: "0.2.5",
        library: Library {
            package: "libyaml",
            version: "0.2.5-2",
            sources: libyaml_sources,
            includes: &["include", "src"],
            defines: &[
                "-DYAML_VERSION_MAJOR=0",
                "-DYAML_VERSION_MINOR=2",
                "-DYAML_VERSION_PATCH=5",
                "-DYAML_VERSION_STRING=\"0.2.5\"",
            ],
            config_h: None,
        },
        headers: &["include/yaml.h"],
    },
];

/// The names recipes may use.
pub(crate) fn known() -> Vec<&'static str> {
    CLIBS.iter().map(|c| c.name).collect()
}

/// Builds library `name` for the guest (or reuses the last build of the same
/// inputs); returns its prefix.
pub(crate) fn prefix(root: &Path, tools: &Toolchain, name: &str) -> Result<PathBuf> {
    let Some(lib) = CLIBS.iter().find(|c| c.name == name) else {
        bail!(
            "no C library `{name}` to build for the guest; known: {}",
            known().join(", ")
        );
    };
    let sysroot = crate::sysroot::sysroot(root)?;
    let (top, origin) = library_sources(root, &lib.library)?;
    let prefix = root.join("target/wasm/clibs").join(lib.name);
    let work = root.join("target/wasm/clibs/.build").join(lib.name);
    std::fs::create_dir_all(&work)?;
    let flags = library_flags(&sysroot.dir, &lib.library, &top, &work)?;
    let key = sha256_hex(
        format!(
            "{}\n{}\n{}\n{:?}",
            flags.join(" "),
            tools.versions,
            origin,
            lib.headers
        )
        .as_bytes(),
    );
    let stamp = prefix.join("stamp");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == key) {
        return Ok(prefix);
    }
    let _ = std::fs::remove_dir_all(&prefix);
    let sources = (lib.library.sources)(&top)?;
    progress!(
        "building {} for the guest ({} C files, Debian's {} {})",
        lib.name,
        sources.len(),
        lib.library.package,
        lib.library.version
    );
    let objects = compile(tools, &flags, &sources, &work)?;
    let libdir = prefix.join("lib");
    std::fs::create_dir_all(libdir.join("pkgconfig"))?;
    let archive = libdir.join(format!("lib{}.a", lib.link_name));
    let ar = ["llvm-ar-19", "llvm-ar"]
        .into_iter()
        .find(|a| Command::new(a).arg("--version").output().is_ok())
        .context("llvm-ar is needed to archive C libraries for the guest (Debian: llvm-19)")?;
    process::run(
        Command::new(ar).arg("rcs").arg(&archive).args(&objects),
        &format!("archiving {}", archive.display()),
    )?;
    for o in &objects {
        let _ = std::fs::remove_file(o);
    }
    let include = prefix.join("include");
    std::fs::create_dir_all(&include)?;
    for h in lib.headers {
        let file = Path::new(h).file_name().unwrap_or_default();
        std::fs::copy(top.join(h), include.join(file))
            .with_context(|| format!("{}: no header {h}", top.display()))?;
    }
    std::fs::write(
        libdir.join("pkgconfig").join(format!("{}.pc", lib.name)),
        pkg_config_file(&prefix, lib.name, lib.upstream_version, lib.link_name),
    )?;
    std::fs::write(prefix.join("ORIGIN"), &origin)?;
    std::fs::write(&stamp, &key)?;
    Ok(prefix)
}

/// A pkg-config module for a library in `prefix`.
fn pkg_config_file(prefix: &Path, name: &str, version: &str, link_name: &str) -> String {
    format!(
        "prefix={}\nlibdir=${{prefix}}/lib\nincludedir=${{prefix}}/include\n\n\
         Name: {name}\nDescription: {name} built by eryx for wasm32-wasi\n\
         Version: {version}\nLibs: -L${{libdir}} -l{link_name}\nCflags: -I${{includedir}}\n",
        prefix.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pkg_config_module_points_into_the_prefix() {
        let pc = pkg_config_file(Path::new("/p/zlib"), "zlib", "1.3.2", "z");
        assert!(pc.starts_with("prefix=/p/zlib\n"), "{pc}");
        assert!(pc.contains("Version: 1.3.2\n"), "{pc}");
        assert!(pc.contains("Libs: -L${libdir} -lz\n"), "{pc}");
        assert!(pc.contains("Cflags: -I${includedir}\n"), "{pc}");
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
