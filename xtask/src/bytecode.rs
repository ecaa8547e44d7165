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
