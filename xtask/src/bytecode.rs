//! Bytecode compiled by the guest's own CPython (only CPython 3.14 writes
//! bytecode 3.14 accepts): a host directory is mounted read-write in
//! sandboxes that run `compileall.compile_file` over its sources, one guest
//! per core, each taking every N-th source. A single guest used one core
//! for a minute on the stdlib and half a minute on sympy.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::process;

/// Sources a guest is given at least: starting one costs about as much as
/// compiling ~100 files.
const FILES_PER_GUEST: usize = 200;

/// What to compile.
pub(crate) struct Job<'a> {
    /// The `eryx` CLI.
    pub(crate) cli: &'a Path,
    /// The bundle it runs.
    pub(crate) bundle: &'a Path,
    /// The host directory whose sources get `__pycache__` entries.
    pub(crate) dir: &'a Path,
    /// Where the guests mount it (read-write).
    pub(crate) mount: &'a str,
    /// The directory recorded as the sources' location in code objects
    /// (where the guest will import them from).
    pub(crate) ddir: &'a str,
    /// A regular expression: sources whose guest path it matches are left
    /// out (`re.search`).
    pub(crate) skip: Option<&'a str>,
    /// The eryx cache the guests use.
    pub(crate) cache_dir: &'a Path,
    /// The sandbox time limit, in seconds.
    pub(crate) timeout_secs: u32,
}

/// What [`compile`] did.
pub(crate) struct Compiled {
    /// `.pyc` files now under the directory.
    pub(crate) files: usize,
    /// Whether every source compiled (a syntax error leaves one out).
    pub(crate) all_ok: bool,
    /// How many guests ran.
    pub(crate) guests: usize,
}

impl std::fmt::Display for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} bytecode files{}, {} guest{}",
            self.files,
            if self.all_ok {
                ""
            } else {
                " (some sources did not compile)"
            },
            self.guests,
            if self.guests == 1 { "" } else { "s" }
        )
    }
}

/// The program guest `worker` of `workers` runs.
fn program(job: &Job<'_>, worker: usize, workers: usize) -> String {
    format!(
        r#"
import compileall, py_compile, os, re
{write_all}
src, ddir = {src:?}, {ddir:?}
skip = re.compile({skip:?}) if {has_skip} else None
ok, k = True, 0
for d, dirs, files in os.walk(src):
    dirs[:] = sorted(x for x in dirs if x != "__pycache__")
    rel = os.path.relpath(d, src)
    target = ddir if rel == "." else ddir + "/" + rel
    for f in sorted(files):
        if not f.endswith(".py") or (skip and skip.search(os.path.join(d, f))):
            continue
        k += 1
        if k % {workers} == {worker}:
            ok = compileall.compile_file(os.path.join(d, f), ddir=target, quiet=2,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH) and ok
print("ok" if ok else "failed")
"#,
        write_all = eryx_linker::layout::PYC_WRITE_ALL,
        src = job.mount,
        ddir = job.ddir,
        skip = job.skip.unwrap_or(""),
        has_skip = if job.skip.is_some() { "True" } else { "False" },
    )
}

/// Compiles `job.dir`'s Python sources to unchecked-hash `.pyc` files
/// beside them (`__pycache__`), in as many guests as there are cores (fewer
/// for a small tree).
pub(crate) fn compile(job: &Job<'_>) -> Result<Compiled> {
    let sources = count(job.dir, ".py")?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let guests = sources.div_ceil(FILES_PER_GUEST).clamp(1, cores);
    let mut running = Vec::new();
    for worker in 0..guests {
        let mut run = Command::new(job.cli);
        run.arg("--bundle")
            .arg(job.bundle)
            .arg("--no-preinit")
            .arg("--mount")
            .arg(format!("{}:{}:rw", job.dir.display(), job.mount))
            .args(["--timeout", &job.timeout_secs.to_string(), "-c"])
            .arg(program(job, worker, guests))
            .env("ERYX_CACHE_DIR", job.cache_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = run.spawn().with_context(|| {
            format!(
                "compiling bytecode in the guest: cannot start `{}`",
                process::describe(&run)
            )
        })?;
        running.push((run, child));
    }
    let mut all_ok = true;
    let mut failure = None;
    // Every guest is waited for, even after one failed.
    for (run, child) in running {
        let out = child.wait_with_output()?;
        if !out.status.success() {
            failure.get_or_insert_with(|| {
                format!(
                    "compiling bytecode in the guest failed ({}): `{}`\n{}",
                    out.status,
                    process::describe(&run),
                    String::from_utf8_lossy(&out.stderr).trim_end()
                )
            });
        }
        all_ok &= String::from_utf8_lossy(&out.stdout).trim() == "ok";
    }
    if let Some(f) = failure {
        bail!("{f}");
    }
    Ok(Compiled {
        files: count(job.dir, ".pyc")?,
        all_ok,
        guests,
    })
}

/// The files under `dir` whose names end with `suffix`.
fn count(dir: &Path, suffix: &str) -> Result<usize> {
    let mut n = 0;
    for e in std::fs::read_dir(dir)?.flatten() {
        if e.file_type()?.is_dir() {
            n += count(&e.path(), suffix)?;
        } else if e.file_name().to_string_lossy().ends_with(suffix) {
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job<'a>(cli: &'a Path, dir: &'a Path, bundle: &'a Path) -> Job<'a> {
        Job {
            cli,
            bundle,
            dir,
            mount: "/build/tree",
            ddir: "/site-packages",
            skip: Some("/skipped/"),
            cache_dir: dir,
            timeout_secs: 120,
        }
    }

    #[test]
    fn a_cli_that_cannot_start_or_fails_is_named_with_its_output() {
        let tree = tempfile::tempdir().unwrap();
        std::fs::write(tree.path().join("a.py"), "x = 1\n").unwrap();
        let missing = tree.path().join("no-such-eryx");
        let err = compile(&job(&missing, tree.path(), tree.path()))
            .err()
            .expect("a missing CLI compiled")
            .to_string();
        assert!(
            err.starts_with("compiling bytecode in the guest: cannot start `")
                && err.contains("no-such-eryx"),
            "{err}"
        );
        let failing = tree.path().join("failing-eryx");
        std::fs::write(
            &failing,
            "#!/bin/sh\necho 'bundle is damaged' >&2\nexit 3\n",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&failing, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let err = format!(
            "{:#}",
            compile(&job(&failing, tree.path(), tree.path()))
                .err()
                .expect("a failing CLI compiled")
        );
        assert!(
            err.starts_with("compiling bytecode in the guest failed (exit status: 3): `")
                && err.ends_with("\nbundle is damaged"),
            "{err}"
        );
    }

    /// The real guest (`cargo xtask test` builds the bundle and the CLI
    /// before these tests run): sources dealt out to several guests each get
    /// their `.pyc`, skipped and broken ones none, and the report says so.
    #[test]
    fn every_source_gets_bytecode_from_one_of_the_guests() {
        let root = crate::root();
        let bundle = root.join("target/dist");
        assert!(
            bundle.join("manifest.json").is_file(),
            "no bundle in {}: run `cargo xtask dist` first",
            bundle.display()
        );
        let cli = crate::build_cli(&root).unwrap();
        let tree = tempfile::tempdir().unwrap();
        let pkg = tree.path().join("pkg");
        std::fs::create_dir_all(pkg.join("skipped")).unwrap();
        for i in 0..450 {
            std::fs::write(pkg.join(format!("m{i}.py")), format!("VALUE = {i}\n")).unwrap();
        }
        std::fs::write(pkg.join("broken.py"), "def (:\n").unwrap();
        std::fs::write(pkg.join("skipped/s.py"), "x = 1\n").unwrap();
        let cache = root.join("target/eryx-cache");
        let done = compile(&Job {
            cache_dir: &cache,
            ..job(&cli, tree.path(), &bundle)
        })
        .unwrap();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(done.guests, 3.min(cores));
        assert_eq!(done.files, 450);
        assert!(!done.all_ok);
        for i in 0..450 {
            let pyc = pkg.join(format!("__pycache__/m{i}.cpython-314.pyc"));
            let bytes = std::fs::read(&pyc).unwrap_or_else(|e| panic!("{}: {e}", pyc.display()));
            // Unchecked-hash: flags 0b01 after the magic number.
            assert_eq!(bytes[4..8], [1, 0, 0, 0], "{}", pyc.display());
            let recorded = format!("/site-packages/pkg/m{i}.py");
            assert!(
                bytes
                    .windows(recorded.len())
                    .any(|w| w == recorded.as_bytes()),
                "{} does not record {recorded}",
                pyc.display()
            );
        }
        assert!(!pkg.join("__pycache__/broken.cpython-314.pyc").exists());
        assert!(!pkg.join("skipped/__pycache__").exists());
        assert_eq!(
            done.to_string(),
            format!(
                "450 bytecode files (some sources did not compile), {} guest{}",
                done.guests,
                if done.guests == 1 { "" } else { "s" }
            )
        );
    }
}
