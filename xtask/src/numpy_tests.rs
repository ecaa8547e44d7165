//! `cargo xtask numpy-tests [MODULE...]`: numpy's own test modules, run by
//! pytest inside the sandbox on the numpy wheel `cargo xtask wheel` builds.
//! Writes `target/numpy-tests/report.md`.
//!
//! pytest needs three things the guest does not give by default, so the
//! run supplies them: a working directory (a read-write mount at `/work`,
//! `chdir`ed into), no fd-level capture (`-s`: `os.dup` is unsupported),
//! and no logging plugin (it opens `/dev/null`, which does not exist).

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result};

use crate::{progress, wheel};

/// The modules run by default: the core, linear algebra, FFT, random,
/// `lib` and masked arrays.
const MODULES: &[&str] = &[
    "numpy._core.tests.test_numeric",
    "numpy._core.tests.test_umath",
    "numpy._core.tests.test_einsum",
    "numpy._core.tests.test_shape_base",
    "numpy._core.tests.test_indexing",
    "numpy._core.tests.test_scalarmath",
    "numpy.linalg.tests.test_linalg",
    "numpy.fft.tests.test_pocketfft",
    "numpy.random.tests.test_generator_mt19937",
    "numpy.lib.tests.test_function_base",
    "numpy.lib.tests.test_shape_base",
    "numpy.ma.tests.test_core",
];

/// The pytest summary line (`12 passed, 1 skipped in 3.2s`), if any.
fn summary(text: &str) -> Option<String> {
    text.lines()
        .rev()
        .find(|l| {
            (l.contains(" passed") || l.contains(" failed") || l.contains(" error"))
                && l.contains(" in ")
        })
        .map(|l| l.trim().trim_matches('=').trim().to_string())
}

pub(crate) fn numpy_tests(root: &Path, args: &[String]) -> Result<ExitCode> {
    let modules: Vec<String> = if args.is_empty() {
        MODULES.iter().map(|m| m.to_string()).collect()
    } else {
        args.to_vec()
    };
    let out_dir = root.join("target/numpy-tests");
    let wheels = out_dir.join("wheels");
    std::fs::create_dir_all(&wheels)?;
    wheel::wheel(
        root,
        &[
            "--out".to_string(),
            wheels.display().to_string(),
            "numpy==2.5.5".into(),
            "pytest".into(),
            "hypothesis".into(),
        ],
    )?;
    let bundle = crate::dist::dist(root)?;
    let cli = crate::build_cli(root)?;
    let mut md = String::from(
        "# numpy's tests in the sandbox\n\n| module | result | wall time |\n|---|---|---:|\n",
    );
    for m in &modules {
        let work = tempfile::tempdir()?;
        let code = format!(
            "import os, sys\nos.chdir('/work')\nimport pytest\n\
             sys.exit(pytest.main(['-q', '-s', '-p', 'no:cacheprovider', '-p', 'no:faulthandler', \
             '-p', 'no:logging', '--tb=line', '-W', 'ignore', '--pyargs', '{m}']))"
        );
        progress!("{m}");
        let started = Instant::now();
        let out = Command::new(&cli)
            .arg("--bundle")
            .arg(&bundle)
            .arg("--wheelhouse")
            .arg(&wheels)
            .arg("--mount")
            .arg(format!("{}:/work:rw", work.path().display()))
            .args(["--timeout", "1200", "-c", &code])
            .env("ERYX_CACHE_DIR", root.join("target/eryx-cache"))
            .output()
            .context("running the eryx CLI")?;
        let secs = started.elapsed().as_secs_f64();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(out_dir.join(format!("{m}.log")), &text)?;
        let result = summary(&text).unwrap_or_else(|| {
            let last = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            format!("no summary (exit {:?}): {}", out.status.code(), last.trim())
        });
        progress!("  {result} ({secs:.0} s)");
        md.push_str(&format!("| `{m}` | {result} | {secs:.0} s |\n"));
    }
    std::fs::write(out_dir.join("report.md"), &md)?;
    progress!("wrote {}", out_dir.join("report.md").display());
    print!("{md}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_pytests_summary_line() {
        let text = "....\n449 passed, 21 skipped, 2 xfailed in 37.90s\n";
        assert_eq!(
            summary(text).as_deref(),
            Some("449 passed, 21 skipped, 2 xfailed in 37.90s")
        );
        assert_eq!(summary("Traceback ...\nImportError: x\n"), None);
    }
}
