//! `cargo xtask package-tests PACKAGE [--memory SIZE] [MODULE...]` (`numpy-tests` is
//! `package-tests numpy`): a package's own test modules, run by pytest
//! inside the sandbox on the wheels `cargo xtask wheel` builds. Writes
//! `target/package-tests/PACKAGE/report.md`.
//!
//! pytest needs three things the guest does not give by default, so the
//! run supplies them: a working directory (a read-write mount at `/work`,
//! `chdir`ed into), no fd-level capture (`-s`: `os.dup` is unsupported),
//! and no logging plugin (it opens `/dev/null`, which does not exist).

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::{progress, wheel};

/// A package whose tests this runs: the pinned requirement (the version
/// the recipes build), what else its tests import, and the modules run
/// when none is named.
struct Suite {
    name: &'static str,
    requirements: &'static [&'static str],
    modules: &'static [&'static str],
    /// `(name, version)` of the project whose sdist holds the tests (its
    /// wheels have none): `modules` are then paths in it.
    sdist: Option<(&'static str, &'static str)>,
}

const SUITES: &[Suite] = &[
    Suite {
        name: "numpy",
        requirements: &["numpy==2.5.5", "pytest", "hypothesis"],
        // The core, linear algebra, FFT, random, `lib` and masked arrays.
        modules: &[
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
        ],
        sdist: None,
    },
    Suite {
        name: "scipy",
        requirements: &["scipy==1.18.1", "numpy==2.5.5", "pytest", "hypothesis"],
        // One or two modules of each subpackage users reach for, LAPACK's
        // and SuperLU's callers first.
        modules: &[
            "scipy.linalg.tests.test_basic",
            "scipy.linalg.tests.test_decomp",
            "scipy.linalg.tests.test_decomp_cholesky",
            "scipy.linalg.tests.test_matfuncs",
            "scipy.sparse.linalg._dsolve.tests.test_linsolve",
            "scipy.sparse.linalg._eigen.arpack.tests.test_arpack",
            "scipy.sparse.tests.test_csr",
            "scipy.optimize.tests.test_optimize",
            "scipy.optimize.tests.test_linprog",
            "scipy.integrate.tests.test_quadpack",
            "scipy.integrate._ivp.tests.test_ivp",
            "scipy.interpolate.tests.test_bsplines",
            "scipy.special.tests.test_basic",
            "scipy.stats.tests.test_morestats",
            "scipy.fft.tests.test_basic",
            "scipy.spatial.tests.test_kdtree",
            "scipy.spatial.tests.test_qhull",
            "scipy.signal.tests.test_filter_design",
            "scipy.ndimage.tests.test_filters",
        ],
        sdist: None,
    },
    Suite {
        name: "scikit-learn",
        requirements: &[
            "scikit-learn==1.9.1",
            "scipy==1.18.1",
            "numpy==2.5.5",
            "pytest",
        ],
        // The estimators users fit first, model selection and metrics.
        modules: &[
            "sklearn.linear_model.tests.test_logistic",
            "sklearn.linear_model.tests.test_ridge",
            "sklearn.ensemble.tests.test_forest",
            "sklearn.ensemble._hist_gradient_boosting.tests.test_gradient_boosting",
            "sklearn.svm.tests.test_svm",
            "sklearn.tree.tests.test_tree",
            "sklearn.cluster.tests.test_k_means",
            "sklearn.decomposition.tests.test_pca",
            "sklearn.neighbors.tests.test_neighbors",
            "sklearn.preprocessing.tests.test_data",
            "sklearn.model_selection.tests.test_search",
            "sklearn.metrics.tests.test_classification",
        ],
        sdist: None,
    },
    Suite {
        name: "statsmodels",
        requirements: &[
            "statsmodels==0.15.0",
            "scipy==1.18.1",
            "numpy==2.5.5",
            "pandas==3.1.1",
            "pytest",
        ],
        modules: &[
            "statsmodels.regression.tests.test_regression",
            "statsmodels.discrete.tests.test_discrete",
            "statsmodels.tsa.tests.test_stattools",
            "statsmodels.tsa.arima.tests.test_model",
            "statsmodels.stats.tests.test_weightstats",
        ],
        sdist: None,
    },
    Suite {
        name: "cryptography",
        requirements: &[
            "cryptography==50.0.2",
            "cryptography_vectors==50.0.2",
            "pytest",
            "pytest-benchmark",
            "pretend",
            "certifi",
        ],
        // Its whole suite, by directory (the tests are in the sdist only;
        // the Wycheproof and x509-limbo vectors are not on PyPI, so those
        // tests skip). `test_meta` starts subprocesses: the sandbox has none.
        modules: &[
            "tests/hazmat/primitives",
            "tests/hazmat/backends",
            "tests/hazmat/bindings",
            "tests/hazmat/asn1",
            "tests/hazmat/test_oid.py",
            "tests/x509",
            "tests/test_fernet.py",
            "tests/test_utils.py",
            "tests/test_cryptography_utils.py",
            "tests/test_warnings.py",
            "tests/test_doubles.py",
            "tests/test_cobblestone.py",
            "tests/bench",
            "tests/test_meta.py",
        ],
        sdist: Some(("cryptography", "50.0.2")),
    },
    Suite {
        name: "shapely",
        requirements: &["shapely==2.2.0", "numpy==2.5.5", "pytest"],
        // Its whole suite (it ships in the wheel) but the plotting tests
        // (matplotlib): GEOS's operations through the C API, the geometry
        // classes, I/O, the STRtree.
        modules: &[
            "shapely.tests.geometry",
            "shapely.tests.legacy",
            "shapely.tests.test_constructive",
            "shapely.tests.test_coordinates",
            "shapely.tests.test_coverage",
            "shapely.tests.test_creation",
            "shapely.tests.test_creation_indices",
            "shapely.tests.test_decorators",
            "shapely.tests.test_geometry",
            "shapely.tests.test_io",
            "shapely.tests.test_linear",
            "shapely.tests.test_measurement",
            "shapely.tests.test_misc",
            "shapely.tests.test_predicates",
            "shapely.tests.test_ragged_array",
            "shapely.tests.test_set_operations",
            "shapely.tests.test_strtree",
            "shapely.tests.test_testing",
        ],
        sdist: None,
    },
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

pub(crate) fn package_tests(root: &Path, args: &[String]) -> Result<ExitCode> {
    let names = || SUITES.iter().map(|s| s.name).collect::<Vec<_>>().join(", ");
    let Some((package, modules)) = args.split_first() else {
        bail!(
            "usage: cargo xtask package-tests PACKAGE [--memory SIZE] [MODULE...] (PACKAGE: {})",
            names()
        );
    };
    let Some(suite) = SUITES.iter().find(|s| s.name == package) else {
        bail!(
            "no test suite for `{package}`: this runs the tests of {}",
            names()
        );
    };
    // `--memory SIZE` first (the sandbox's limit; the CLI's default
    // otherwise, 256 MiB): a few tests allocate more.
    let (memory, modules) = match modules {
        [flag, size, rest @ ..] if flag == "--memory" => (size.clone(), rest),
        _ => ("256M".to_string(), modules),
    };
    let modules: Vec<String> = if modules.is_empty() {
        suite.modules.iter().map(|m| m.to_string()).collect()
    } else {
        modules.to_vec()
    };
    let out_dir = root.join("target/package-tests").join(suite.name);
    // The suite's own wheelhouse (its package and what its tests import,
    // nothing else linked in); a wheel another suite built is a cache hit.
    let wheels = out_dir.join("wheels");
    std::fs::create_dir_all(&wheels)?;
    // Resolved afresh each run: a wheel of an earlier run's version (a
    // newer pytest or hypothesis since) would be a second copy of its
    // package, which the sandbox refuses. Builds come from the builder's
    // cache and downloads from `.downloads`, so this costs little.
    for entry in std::fs::read_dir(&wheels)?.flatten() {
        if entry.path().extension().is_some_and(|e| e == "whl") {
            std::fs::remove_file(entry.path())?;
        }
    }
    let mut wheel_args = vec!["--out".to_string(), wheels.display().to_string()];
    wheel_args.extend(suite.requirements.iter().map(|r| r.to_string()));
    wheel::wheel(root, &wheel_args)?;
    // Tests shipped in the sdist only: unpacked beside the wheelhouse and
    // shown to the guest read-only at /src.
    let src = match suite.sdist {
        Some((name, version)) => {
            let archive = wheel::fetch_sdist(name, version, &wheels.join(".downloads"))?;
            Some(wheel::unpack_sdist(&archive, &out_dir.join("src"))?)
        }
        None => None,
    };
    let bundle = crate::dist::dist(root)?;
    let cli = crate::build_cli(root)?;
    let mut md = format!(
        "# {}'s tests in the sandbox\n\n| module | result | wall time |\n|---|---|---:|\n",
        suite.name
    );
    for m in &modules {
        let work = tempfile::tempdir()?;
        let options = "'-q', '-s', '-p', 'no:cacheprovider', '-p', 'no:faulthandler', \
                       '-p', 'no:logging', '--tb=line', '-W', 'ignore'";
        let code = if src.is_some() {
            format!(
                "import os, sys\nos.chdir('/src')\nsys.path.insert(0, '/src')\nimport pytest\n\
                 sys.exit(pytest.main([{options}, '{m}']))"
            )
        } else {
            format!(
                "import os, sys\nos.chdir('/work')\nimport pytest\n\
                 sys.exit(pytest.main([{options}, '--pyargs', '{m}']))"
            )
        };
        progress!("{m}");
        let started = Instant::now();
        let out = Command::new(&cli)
            .arg("--bundle")
            .arg(&bundle)
            .arg("--wheelhouse")
            .arg(&wheels)
            .arg("--mount")
            .arg(format!("{}:/work:rw", work.path().display()))
            .args(
                src.iter()
                    .flat_map(|s| ["--mount".to_string(), format!("{}:/src", s.display())]),
            )
            .args(["--timeout", "1200", "--memory", &memory, "-c", &code])
            .env("ERYX_CACHE_DIR", root.join("target/eryx-cache"))
            .output()
            .context("running the eryx CLI")?;
        let secs = started.elapsed().as_secs_f64();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(out_dir.join(format!("{}.log", m.replace('/', "."))), &text)?;
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
