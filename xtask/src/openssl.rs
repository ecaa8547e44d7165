//! OpenSSL (libcrypto and libssl) for the guest, the C library a recipe
//! names as `c-libraries = ["openssl"]` (cryptography's Rust bindings link
//! it through `openssl-sys`).
//!
//! Unlike the libraries in `crate::clibs`, whose few sources are compiled
//! from a list, OpenSSL's build generates much of its code and headers
//! (perl templates, per-configuration `build.info` files), so its own
//! `Configure` and `make` run here, out of tree, with the guest's clang and
//! flags. The configuration is what WASI allows: no assembly, threads,
//! shared objects or loadable modules (the legacy provider is
//! linked in), no configuration file read at start-up and no secure heap
//! (`mmap` protections); randomness comes from `getentropy`, which OpenSSL
//! itself uses on WASI. Objects are position-independent with hidden
//! symbols, as every C library linked into an extension module.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use eryx_linker::sha256_hex;

use crate::progress;
use crate::stdlib_ext::debian_sources;
use crate::toolchain::Toolchain;

/// The name recipes use.
pub(crate) const NAME: &str = "openssl";
/// Debian's source package version (the upstream tarball is OpenSSL's).
const DEBIAN_VERSION: &str = "3.6.3-1";
/// OpenSSL's own version.
const UPSTREAM_VERSION: &str = "3.6.3";

/// `Configure`'s arguments besides the compiler and prefix: what WASI
/// cannot do is left out (see the module's documentation).
const CONFIGURE: &[&str] = &[
    "linux-generic32",
    "no-asm",
    "no-threads",
    "no-shared",
    "no-dso",
    "no-module",
    // QUIC's notifier needs `socketpair`, which WASI lacks.
    "no-quic",
    "no-afalgeng",
    "no-ui-console",
    "no-secure-memory",
    "no-autoload-config",
    "no-uplink",
    "no-tests",
    "no-apps",
    "no-docs",
    "--libdir=lib",
    "--openssldir=/etc/ssl",
];

/// What defines the build, for the keys of the wheels built with it.
pub(crate) fn definition() -> String {
    format!("{NAME} openssl {DEBIAN_VERSION} {CONFIGURE:?}\n")
}

/// The environment a Rust build that links OpenSSL through `openssl-sys`
/// needs to find this build (statically, never the host's or a vendored
/// copy).
pub(crate) fn cargo_env(prefix: &Path) -> Vec<(String, String)> {
    vec![
        ("OPENSSL_DIR".into(), prefix.display().to_string()),
        ("OPENSSL_STATIC".into(), "1".into()),
        ("OPENSSL_NO_VENDOR".into(), "1".into()),
    ]
}

/// Builds OpenSSL for the guest (or reuses the last build of the same
/// inputs); returns its prefix (`include/openssl`, `lib/libcrypto.a`,
/// `lib/libssl.a`, `lib/pkgconfig`).
pub(crate) fn prefix(root: &Path, tools: &Toolchain) -> Result<PathBuf> {
    let prefix = root.join("target/wasm/clibs").join(NAME);
    let work = root.join("target/wasm/clibs/.build").join(NAME);
    let sysroot = crate::sysroot::sysroot(root)?;
    let (top, origin) = debian_sources(
        root,
        &format!("openssl-{DEBIAN_VERSION}"),
        "openssl",
        Some(DEBIAN_VERSION),
        &[],
    )?;
    let mut cflags = crate::wasmcc::compile_flags(&sysroot.dir, None, None);
    cflags.extend(
        [
            "-O2",
            "-fvisibility=hidden",
            "-Wno-unused-command-line-argument",
            // WASI's `struct sockaddr_un` has no `sun_path`: no Unix
            // sockets (TCP, UDP and DTLS stay).
            "-DOPENSSL_NO_UNIX_SOCK",
        ]
        .map(String::from),
    );
    let ar = tool(&["llvm-ar-19", "llvm-ar"])?;
    let ranlib = tool(&["llvm-ranlib-19", "llvm-ranlib"])?;
    let key = sha256_hex(
        format!(
            "{}\n{}\n{}\n{}\n{}",
            definition(),
            cflags.join(" "),
            tools.versions,
            origin,
            prefix.display()
        )
        .as_bytes(),
    );
    let stamp = prefix.join("stamp");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == key) {
        return Ok(prefix);
    }
    if let Some(message) = missing_build_tool(|t| crate::wheel::on_path(t).is_some()) {
        bail!(message);
    }
    let _ = std::fs::remove_dir_all(&prefix);
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let log_path = work.join("build.log");
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    progress!(
        "building OpenSSL {UPSTREAM_VERSION} for the guest (Debian's openssl {DEBIAN_VERSION}; \
         ~2 minutes on 2 cores, log: {})",
        log_path.display()
    );
    let started = std::time::Instant::now();
    let mut configure = Command::new("perl");
    configure
        .current_dir(&work)
        .arg(top.join("Configure"))
        .args(CONFIGURE)
        .arg(format!("--prefix={}", prefix.display()))
        .arg(format!("CC={}", tools.clang.display()))
        .arg(format!("CFLAGS={}", cflags.join(" ")))
        .arg(format!("AR={}", ar.display()))
        .arg(format!("RANLIB={}", ranlib.display()));
    logged(&mut configure, &log_path, "configuring OpenSSL")?;
    let mut make = Command::new("make");
    make.current_dir(&work)
        .arg(format!("-j{jobs}"))
        .arg("build_libs");
    logged(&mut make, &log_path, "compiling OpenSSL")?;
    let mut install = Command::new("make");
    install.current_dir(&work).arg("install_dev");
    logged(
        &mut install,
        &log_path,
        "installing OpenSSL's headers and libraries",
    )?;
    for lib in ["libcrypto.a", "libssl.a"] {
        if !prefix.join("lib").join(lib).is_file() {
            bail!(
                "OpenSSL's build wrote no {lib} into {} (log: {})",
                prefix.join("lib").display(),
                log_path.display()
            );
        }
    }
    std::fs::write(prefix.join("ORIGIN"), &origin)?;
    std::fs::write(&stamp, &key)?;
    progress!(
        "built OpenSSL for the guest in {:.0} s: {}",
        started.elapsed().as_secs_f64(),
        prefix.display()
    );
    Ok(prefix)
}

/// What OpenSSL's build lacks, if `found` says a tool it runs is missing.
fn missing_build_tool(found: impl Fn(&str) -> bool) -> Option<String> {
    ["perl", "make"].into_iter().find(|t| !found(t)).map(|t| {
        format!(
            "building OpenSSL for the guest needs {t} (`{t}` is not on PATH; \
             Debian: apt-get install {t})"
        )
    })
}

/// The first of `names` on PATH.
fn tool(names: &[&str]) -> Result<PathBuf> {
    names
        .iter()
        .find_map(|n| crate::wheel::on_path(n))
        .with_context(|| {
            format!(
                "building OpenSSL for the guest needs {} (Debian: llvm-19)",
                names.join(" or ")
            )
        })
}

/// Runs `cmd` with its output appended to `log`; a failure names `what`
/// and shows the log's last lines.
fn logged(cmd: &mut Command, log: &Path, what: &str) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .status()
        .with_context(|| format!("{what}: cannot start `{}`", crate::process::describe(cmd)))?;
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        bail!(
            "{what} failed ({status}): `{}`; its errors follow, all of its output is in {}:\n{}",
            crate::process::describe(cmd),
            log.display(),
            errors(&text)
        );
    }
    Ok(())
}

/// The compiler's and make's error lines of a build's output, each with the
/// two lines after it (the source line and its caret), at most 40 lines;
/// the last 20 lines when there is none (a failing perl script).
fn errors(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<&str> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.contains("error:") || line.contains("*** ") {
            out.extend(
                lines
                    .iter()
                    .skip(i)
                    .take(if line.contains("error:") { 3 } else { 1 }),
            );
        }
        if out.len() >= 40 {
            break;
        }
    }
    if out.is_empty() {
        out = lines[lines.len().saturating_sub(20)..].to_vec();
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_builds_errors_are_picked_out_of_its_output() {
        let log = "clang -c a.c\nclang -c b.c\nb.c:3:9: error: call to undeclared function 'x'\n    3 | x();\n      | ^\nclang -c c.c\nmake[1]: *** [Makefile:9: b.o] Error 1\n";
        let e = errors(log);
        assert!(
            e.starts_with("b.c:3:9: error: call to undeclared function 'x'\n    3 | x();"),
            "{e}"
        );
        assert!(e.ends_with("make[1]: *** [Makefile:9: b.o] Error 1"), "{e}");
        assert!(!e.contains("clang -c a.c"), "{e}");
        let perl = (0..30)
            .map(|i| format!("line {i}"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(errors(&perl).starts_with("line 10\n"));
    }

    #[test]
    fn a_missing_build_tool_is_named_with_its_package() {
        assert_eq!(missing_build_tool(|_| true), None);
        assert_eq!(
            missing_build_tool(|t| t != "perl").as_deref(),
            Some(
                "building OpenSSL for the guest needs perl (`perl` is not on PATH; \
                 Debian: apt-get install perl)"
            )
        );
        assert!(missing_build_tool(|t| t != "make").is_some_and(|m| m.contains("needs make")));
    }

    #[test]
    fn the_definition_changes_with_the_configuration() {
        assert!(definition().contains("no-threads"));
        assert!(definition().contains(DEBIAN_VERSION));
    }
}
