//! `cargo xtask compat [--quick] [MODULE...]`: CPython's own test modules,
//! run inside the sandbox with their real `unittest` runner.
//!
//! 1. fetch CPython 3.14's test suite from Debian (`libpython3.14-testsuite`,
//!    and `libpython3.14-stdlib` for `test/support`), checked against the
//!    archive index, into `target/fetch/cpython-3.14-tests` (once);
//! 2. for each module, a fresh `eryx` process: the suite mounted read-only
//!    at `/compat`, a private scratch directory read-write at `/tmp` (the
//!    working directory: tests write `@test_*_tmp` files), `compat/runner.py`
//!    as the code and the module name as `sys.argv[1]`;
//! 3. read the runner's JSON summary back from the scratch directory (no
//!    summary: the sandbox crashed or ran out of time), classify every
//!    failing test by its traceback, and write `target/compat/report.md`
//!    and `report.json`.
//!
//! `--quick` runs a short list (what `cargo xtask test` runs, reported in
//! `target/compat/quick/`); it fails when a module crashes the sandbox or
//! runs no test.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::{debian, progress};

/// The test modules of the full report: the stdlib a sandboxed program
/// typically uses, from builtins to data formats.
pub(crate) const MODULES: &[&str] = &[
    "test_abc",
    "test_argparse",
    "test_array",
    "test_ast",
    "test_base64",
    "test_binascii",
    "test_bisect",
    "test_bool",
    "test_builtin",
    "test_bytes",
    "test_bz2",
    "test_calendar",
    "test_cmath",
    "test_collections",
    "test_colorsys",
    "test_complex",
    "test_contextlib",
    "test_copy",
    "test_csv",
    "test_dataclasses",
    "test_datetime",
    "test_decimal",
    "test_dict",
    "test_difflib",
    "test_enum",
    "test_exceptions",
    "test_fcntl",
    "test_float",
    "test_fnmatch",
    "test_fractions",
    "test_functools",
    "test_generators",
    "test_getpass",
    "test_grp",
    "test_gzip",
    "test_hashlib",
    "test_heapq",
    "test_int",
    "test_itertools",
    "test_json",
    "test_keyword",
    "test_list",
    "test_long",
    "test_lzma",
    "test_math",
    "test_mmap",
    "test_operator",
    "test_pickle",
    "test_pprint",
    "test_pwd",
    "test_random",
    "test_re",
    "test_resource",
    "test_set",
    "test_shutil",
    "test_shlex",
    "test_statistics",
    "test_string",
    "test_struct",
    "test_tempfile",
    "test_textwrap",
    "test_time",
    "test_tuple",
    "test_typing",
    "test_unicodedata",
    "test_uuid",
    "test_weakref",
    "test_zipfile",
    "test_zlib",
    "test_zstd",
];

/// The short list `cargo xtask test` runs.
pub(crate) const QUICK: &[&str] = &[
    "test_bisect",
    "test_heapq",
    "test_base64",
    "test_operator",
    "test_lzma",
    "test_zstd",
    "test_pwd",
    "test_grp",
    "test_fcntl",
    "test_resource",
];

/// The runner that executes inside the sandbox.
const RUNNER: &str = include_str!("../compat/runner.py");

/// Where the fetched suite lives (its `test/` package inside).
fn suite_dir(root: &Path) -> PathBuf {
    root.join("target/fetch/cpython-3.14-tests")
}

/// Fetches the test suite once; returns the directory holding `test/`.
pub(crate) fn fetch_suite(root: &Path) -> Result<PathBuf> {
    let dir = suite_dir(root);
    if dir.join("ORIGIN").is_file() && dir.join("test/support/__init__.py").is_file() {
        return Ok(dir);
    }
    let work = tempfile::tempdir()?;
    let packages = debian::fetch(
        &["libpython3.14-testsuite", "libpython3.14-stdlib"],
        work.path(),
        "the compatibility report needs CPython 3.14's test suite",
    )?;
    let staging = root.join("target/fetch/cpython-3.14-tests.tmp");
    let _ = std::fs::remove_dir_all(&staging);
    let mut origin = String::new();
    for p in &packages {
        let test = p.dir.join("usr/lib/python3.14/test");
        if test.is_dir() {
            crate::fsutil::copy_tree(&test, &staging.join("test"))?;
        }
        origin.push_str(&p.origin);
    }
    if !staging.join("test/support/__init__.py").is_file() {
        bail!("the Debian packages hold no test/support package; the report cannot run");
    }
    std::fs::write(staging.join("ORIGIN"), origin)?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&staging, &dir)?;
    Ok(dir)
}

/// Failures that come from the guest's CPython being older (3.14.0) than
/// the tests (Debian's 3.14.x), which check bugs fixed since: what such a
/// failure's text holds (all of it, lower case; the test's name is part of
/// the text) and its class.
const VERSION_SKEW: &[(&[&str], &str)] = &[
    (
        &[
            "in test_unsupportedoperation",
            "compression/zstd/_zstdfile.py",
            "'nonetype' object has no attribute 'readline'",
        ],
        "CPython version skew: the tests are Debian's 3.14.x, the guest's CPython 3.14.0 \
         (ZstdFile.__next__ in write mode: 3.14.0 reads its missing buffer, later 3.14 \
         releases raise io.UnsupportedOperation)",
    ),
    (
        &["test_parameter_added_after_parameters_cached"],
        "CPython version skew: 3.14.0's GenericAlias substitution (gh-155752) looks an \
         argument that gained `__typing_subst__` after `__parameters__` was cached up at \
         index -1 and reads outside memory: the sandbox traps (native 3.14.0 reads garbage)",
    ),
    (
        &["test_current_indent_level"],
        "CPython version skew: 3.14.0's C JSON encoder indexes its indent cache with a \
         negative current level (a private argument of `c_make_encoder`): garbage in the \
         output or a trap; later 3.14 releases treat it as 0",
    ),
];

/// Why a test failed, from its traceback (first match wins).
pub(crate) fn classify(text: &str) -> &'static str {
    let t = text.to_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| t.contains(n));
    // The known ones first: their texts may hold any of the words below.
    if let Some((_, class)) = VERSION_SKEW
        .iter()
        .find(|(needles, _)| needles.iter().all(|n| t.contains(n)))
    {
        class
    } else if any(&[
        "can't start new thread",
        "_thread",
        "threading",
        "socket",
        "subprocess",
        "fork",
        "[errno 58]",
        "[errno 52]",
        // (Not "not supported" alone: a `TypeError`'s "'<' not supported
        // between instances" is no policy.)
        "not supported on",
        "is not supported",
        "operation not permitted",
        "permissionerror",
        "signal",
        "mmap",
        "resource",
    ]) {
        "sandbox policy (no threads, sockets, processes, signals)"
    } else if any(&[
        "overflowerror",
        "too large to convert",
        "int too large",
        "sys.maxsize",
        "2**31",
        "2 ** 31",
        "2**32",
        "32-bit",
    ]) {
        "platform (32-bit wasm32)"
    } else if any(&["recursion", "stack overflow"]) {
        "recursion / stack"
    } else {
        "unexplained (ours or CPython's: needs a look)"
    }
}

/// Runs one module; returns its summary (with `status`).
fn run_module(
    eryx: &Path,
    bundle: &Path,
    suite: &Path,
    cache: &Path,
    module: &str,
    skip: &[String],
) -> Result<Value> {
    let scratch = tempfile::tempdir()?;
    // Tests that stopped an earlier run of the module (the runner leaves
    // them out).
    std::fs::write(
        scratch.path().join("compat-skip.json"),
        serde_json::to_vec(skip)?,
    )?;
    let started = Instant::now();
    let out = Command::new(eryx)
        .arg("--bundle")
        .arg(bundle)
        .arg("--mount")
        .arg(format!("{}:/compat:ro", suite.display()))
        .arg("--mount")
        .arg(format!("{}:/tmp:rw", scratch.path().display()))
        .args(["--timeout", "300", "--memory", "2G", "-c", RUNNER, module])
        .env("ERYX_CACHE_DIR", cache)
        .output()
        .with_context(|| format!("cannot run {}", eryx.display()))?;
    let wall = started.elapsed().as_secs_f64();
    let result = scratch.path().join("compat-result.json");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last_words = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output")
        .trim()
        .to_string();
    let mut summary = match std::fs::read(&result) {
        Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
            .with_context(|| format!("{module}: the runner's summary is not JSON"))?,
        Err(_) => json!({"module": module, "run": 0, "passed": 0, "failures": [], "errors": [],
                         "skipped": 0}),
    };
    // No summary, or only one saved part-way: the run was stopped.
    if !result.is_file() || summary["partial"] == json!(true) {
        let during = std::fs::read_to_string(scratch.path().join("compat-current"))
            .map(|t| format!(" (in {t})"))
            .unwrap_or_default();
        summary["crash"] = json!(format!("{last_words}{during}"));
        if let Ok(test) = std::fs::read_to_string(scratch.path().join("compat-current")) {
            summary["crashed_in"] = json!(test.trim());
        }
    }
    summary["wall_seconds"] = json!((wall * 100.0).round() / 100.0);
    annotate(&mut summary);
    Ok(summary)
}

/// How many times a module is run again without the tests that stopped it.
const RESUMES: usize = 3;

/// Runs a module; when a test stops it (a trap, the time limit), runs it
/// again without that test (up to [`RESUMES`] times), so that one crashing
/// regression test does not hide the rest of the module. The tests left
/// out are reported as errors ("stopped the sandbox: ..."); the status
/// stays `crash`/`timeout` when the last run was stopped too.
fn run_module_to_the_end(
    eryx: &Path,
    bundle: &Path,
    suite: &Path,
    cache: &Path,
    module: &str,
) -> Result<Value> {
    let mut skip: Vec<String> = Vec::new();
    let mut stopped = Vec::new();
    // The runs that were stopped count in the module's wall time too.
    let mut earlier_seconds = 0.0;
    loop {
        let mut r = run_module(eryx, bundle, suite, cache, module, &skip)?;
        let crashed_in = r["crashed_in"].as_str().map(str::to_string);
        let retry = crashed_in
            .filter(|t| skip.len() < RESUMES && !skip.contains(t) && !r["crash"].is_null());
        if let Some(test) = retry {
            progress!(
                "compat: {module}: {test} stopped the sandbox ({}); running the rest",
                r["crash"].as_str().unwrap_or("?")
            );
            stopped.push(json!({
                "test": test,
                "detail": format!("stopped the sandbox: {}", r["crash"].as_str().unwrap_or("?")),
                "traceback": "",
            }));
            skip.push(test);
            earlier_seconds += r["wall_seconds"].as_f64().unwrap_or(0.0);
            continue;
        }
        if !stopped.is_empty() {
            let total = earlier_seconds + r["wall_seconds"].as_f64().unwrap_or(0.0);
            r["wall_seconds"] = json!((total * 100.0).round() / 100.0);
            let errors = r["errors"].as_array_mut();
            match errors {
                Some(errors) => errors.extend(stopped),
                None => r["errors"] = json!(stopped),
            }
            r["resumed_after"] = json!(skip);
            annotate(&mut r);
        }
        return Ok(r);
    }
}

/// Sets a summary's `status` and each failing test's `class`.
fn annotate(summary: &mut Value) {
    let status = if summary["crash"]
        .as_str()
        .is_some_and(|c| c.contains("timed out"))
    {
        "timeout"
    } else if summary.get("crash").is_some_and(|c| !c.is_null()) {
        "crash"
    } else if !summary["skipped_module"].is_null() {
        "skipped"
    } else if !summary["load_error"].is_null() {
        "load error"
    } else if !summary["runner_error"].is_null() {
        "runner error"
    } else if summary["failures"]
        .as_array()
        .is_some_and(|f| !f.is_empty())
        || summary["errors"].as_array().is_some_and(|e| !e.is_empty())
    {
        "failures"
    } else {
        "clean"
    };
    summary["status"] = json!(status);
    for kind in ["failures", "errors"] {
        if let Some(items) = summary[kind].as_array_mut() {
            for item in items {
                let text = format!(
                    "{} {} {}",
                    item["test"].as_str().unwrap_or(""),
                    item["detail"].as_str().unwrap_or(""),
                    item["traceback"].as_str().unwrap_or("")
                );
                item["class"] = json!(classify(&text));
            }
        }
    }
}

fn count(v: &Value, key: &str) -> u64 {
    match &v[key] {
        Value::Array(a) => a.len() as u64,
        other => other.as_u64().unwrap_or(0),
    }
}

/// The Markdown report.
fn report_md(results: &[Value], origin: &str) -> String {
    let mut md =
        String::from("# eryx compatibility report: CPython 3.14's own tests in the sandbox\n\n");
    md.push_str(&format!(
        "Test suite: {}\n\nThe guest's CPython is 3.14.0 (the componentize-py 0.25.1 build); the tests are a later 3.14.x's, so regression tests for bugs fixed after 3.14.0, and tests of messages changed since, fail here without any fault of the sandbox.\n\nEach module runs in a fresh sandbox (`eryx` CLI, 300 s and 2 GiB per module) with the suite read-only at `/compat` and a private scratch directory read-write at `/tmp`.\n\n",
        origin.lines().next().unwrap_or("?")
    ));
    md.push_str("| module | status | run | passed | failed | errors | skipped | seconds |\n|---|---|---:|---:|---:|---:|---:|---:|\n");
    let mut totals = [0u64; 5];
    let mut classes: std::collections::BTreeMap<&str, u64> = Default::default();
    for r in results {
        let row = [
            count(r, "run"),
            count(r, "passed"),
            count(r, "failures"),
            count(r, "errors"),
            count(r, "skipped"),
        ];
        for (t, v) in totals.iter_mut().zip(row) {
            *t += v;
        }
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r["module"].as_str().unwrap_or("?"),
            r["status"].as_str().unwrap_or("?"),
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            r["wall_seconds"]
        ));
        for kind in ["failures", "errors"] {
            for item in r[kind].as_array().into_iter().flatten() {
                *classes
                    .entry(item["class"].as_str().unwrap_or("?"))
                    .or_default() += 1;
            }
        }
    }
    let status_count = |s: &str| results.iter().filter(|r| r["status"] == s).count();
    md.push_str(&format!(
        "| **{} modules** | {} clean, {} with failures, {} skipped whole, {} load errors, {} runner errors, {} over the time limit, {} crashes | {} | {} | {} | {} | {} | |\n\n",
        results.len(),
        status_count("clean"),
        status_count("failures"),
        status_count("skipped"),
        status_count("load error"),
        status_count("runner error"),
        status_count("timeout"),
        status_count("crash"),
        totals[0],
        totals[1],
        totals[2],
        totals[3],
        totals[4]
    ));
    md.push_str("## Failing tests by cause\n\n| cause | tests |\n|---|---:|\n");
    for (class, n) in &classes {
        md.push_str(&format!("| {class} | {n} |\n"));
    }
    md.push_str("\n## Details\n\n");
    for r in results {
        let module = r["module"].as_str().unwrap_or("?");
        if let Some(crash) = r["crash"].as_str() {
            md.push_str(&format!("- **{module}** did not finish: {crash}\n"));
        }
        if let Some(err) = r["load_error"].as_str() {
            md.push_str(&format!("- **{module}** did not load: `{err}`\n"));
        }
        if let Some(why) = r["skipped_module"].as_str() {
            md.push_str(&format!("- **{module}** skips itself: {why}\n"));
        }
        if let Some(err) = r["runner_error"].as_str() {
            md.push_str(&format!("- **{module}** stopped part-way: `{err}`\n"));
        }
        for kind in ["failures", "errors"] {
            for item in r[kind].as_array().into_iter().flatten() {
                md.push_str(&format!(
                    "- {module} {}: `{}` — {} ({})\n",
                    &kind[..kind.len() - 1],
                    item["test"].as_str().unwrap_or("?"),
                    item["detail"].as_str().unwrap_or("").replace('|', "\\|"),
                    item["class"].as_str().unwrap_or("?")
                ));
            }
        }
    }
    md
}

/// `cargo xtask compat [--quick] [MODULE...]`; `--render` only rewrites
/// `report.md` from `report.json` (after a change to the classification).
pub(crate) fn compat(root: &Path, args: &[String]) -> Result<ExitCode> {
    let out = root.join("target/compat");
    if args.iter().any(|a| a == "--render") {
        let mut results: Vec<Value> = serde_json::from_slice(
            &std::fs::read(out.join("report.json")).context("no target/compat/report.json yet")?,
        )?;
        results.iter_mut().for_each(annotate);
        let origin = std::fs::read_to_string(suite_dir(root).join("ORIGIN")).unwrap_or_default();
        std::fs::write(
            out.join("report.json"),
            serde_json::to_vec_pretty(&results)?,
        )?;
        std::fs::write(out.join("report.md"), report_md(&results, &origin))?;
        return Ok(ExitCode::SUCCESS);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let chosen: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    let modules: Vec<&str> = match (chosen.is_empty(), quick) {
        (false, _) => chosen,
        (true, true) => QUICK.to_vec(),
        (true, false) => MODULES.to_vec(),
    };
    // The short run of `cargo xtask test` keeps its own report, so that it
    // never replaces a full one.
    let out = if quick { out.join("quick") } else { out };
    let bundle = crate::dist::dist(root)?;
    let eryx = crate::build_cli(root)?;
    let suite = fetch_suite(root)?;
    let origin = std::fs::read_to_string(suite.join("ORIGIN")).unwrap_or_default();
    let cache = root.join("target/eryx-cache");
    let mut results = Vec::new();
    for (i, module) in modules.iter().enumerate() {
        let r = run_module_to_the_end(&eryx, &bundle, &suite, &cache, module)?;
        progress!(
            "compat [{}/{}] {module}: {} ({} run, {} failed, {} errors, {} skipped, {} s)",
            i + 1,
            modules.len(),
            r["status"].as_str().unwrap_or("?"),
            count(&r, "run"),
            count(&r, "failures"),
            count(&r, "errors"),
            count(&r, "skipped"),
            r["wall_seconds"]
        );
        results.push(r);
    }
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join("report.json"),
        serde_json::to_vec_pretty(&results)?,
    )?;
    std::fs::write(out.join("report.md"), report_md(&results, &origin))?;
    progress!("compat: wrote {}", out.join("report.md").display());
    let broken: Vec<&str> = results
        .iter()
        .filter(|r| {
            r["status"] == "crash"
                || r["status"] == "timeout"
                || count(r, "run") == 0
                || count(r, "resumed_after") > 0
        })
        .filter_map(|r| r["module"].as_str())
        .collect();
    if quick && !broken.is_empty() {
        bail!(
            "these test modules crashed the sandbox or ran no test: {}; see target/compat/quick/report.md",
            broken.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_classified() {
        assert!(classify("RuntimeError: can't start new thread").starts_with("sandbox"));
        assert!(classify("OSError: [Errno 58] Not supported").starts_with("sandbox"));
        assert!(
            classify("OverflowError: Python int too large to convert to C long")
                .starts_with("platform")
        );
        assert!(
            classify("RecursionError: maximum recursion depth exceeded").starts_with("recursion")
        );
        assert!(classify("AssertionError: 1 != 2").starts_with("unexplained"));
        assert!(
            classify("TypeError: '<' not supported between instances of 'str' and 'int'")
                .starts_with("unexplained")
        );
        assert!(classify("OSError: os.dup is not supported").starts_with("sandbox"));
        let zstd = "Traceback (most recent call last):\n  File \"/compat/test/test_zstd.py\", \
                    line 2469, in test_UnsupportedOperation\n    next(iter(f))\n  File \
                    \"/python/lib/python3.14/compression/zstd/_zstdfile.py\", line 249, in \
                    __next__\n    if ret := self._buffer.readline():\nAttributeError: \
                    'NoneType' object has no attribute 'readline'\n";
        assert!(classify(zstd).starts_with("CPython version skew"));
        let typing = "test.test_typing.GenericTests.test_parameter_added_after_parameters_cached \
                      stopped the sandbox: wasm trap: out of bounds memory access";
        assert!(classify(typing).contains("gh-155752"));
        assert!(
            classify("AttributeError: 'NoneType' object has no attribute 'readline'")
                .starts_with("unexplained")
        );
    }
}
