//! `cargo xtask bench [--quick]`: builds everything the measurements need
//! (the bundle, the example extensions, the `eryx` CLI, `eryx-bench`, and
//! componentize-py 0.25.1 in a virtualenv from PyPI), then runs `eryx-bench`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result};

use crate::{dist, ext, process, progress};

/// The comparison tool, pinned like the CPython we take from its wheel.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// Installs componentize-py into `target/bench/venv` (once) and returns its
/// command, or `None` (with the reason printed) if it cannot be installed.
fn componentize_py(root: &Path) -> Option<PathBuf> {
    let venv = root.join("target/bench/venv");
    let exe = venv.join("bin/componentize-py");
    if exe.is_file() {
        // A virtualenv is tied to the path it was made at (its scripts name
        // their interpreter by absolute path): one moved with `target/`
        // runs nothing, so it is made again.
        let runs = Command::new(&exe)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if runs {
            return Some(exe);
        }
        progress!(
            "{} does not run (a virtualenv moved from elsewhere?); making it again",
            exe.display()
        );
        let _ = std::fs::remove_dir_all(&venv);
    }
    let result = (|| -> Result<()> {
        let mut mk = Command::new("python3");
        mk.args(["-m", "venv"]).arg(&venv);
        process::run(&mut mk, "creating a virtualenv for componentize-py")?;
        let mut pip = Command::new(venv.join("bin/pip"));
        pip.args(["install", "--quiet", COMPONENTIZE_PY]);
        process::run(&mut pip, "installing componentize-py from PyPI")?;
        Ok(())
    })();
    match result {
        Ok(()) if exe.is_file() => Some(exe),
        Ok(()) => {
            progress!("componentize-py installed but {} is missing", exe.display());
            None
        }
        Err(e) => {
            progress!("componentize-py is not available, it will not be measured: {e:#}");
            None
        }
    }
}

pub(crate) fn bench(root: &Path, args: &[String]) -> Result<ExitCode> {
    let quick = args.iter().any(|a| a == "--quick");
    dist::dist(root)?;
    for example in ext::EXAMPLES {
        ext::build(root, Path::new(example))?;
    }
    // numpy and pydantic for the package rows.
    let wheels = crate::wheel::requirement_lines(crate::wheel::TEST_PACKAGES);
    crate::wheel::wheel(root, &wheels)?;
    // The CLI needs eryx-host's `cli` feature (`required-features`):
    // without it this build skipped the `eryx` binary and the rows that run
    // it measured whatever `target/debug/eryx` was there, however old (or
    // failed on a clone where none was built yet).
    let mut build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    build.current_dir(root).args([
        "build",
        "--quiet",
        "-p",
        "eryx-host",
        "-p",
        "eryx-bench",
        "--features",
        "eryx-host/cli",
        "--bins",
    ]);
    process::run(&mut build, "building the eryx CLI and eryx-bench")?;
    let cpy = componentize_py(root);
    let mut run = Command::new(
        crate::cargo_target_dir(root, std::env::var_os("CARGO_TARGET_DIR"))
            .join("debug/eryx-bench"),
    );
    run.arg("all").arg("--root").arg(root);
    if quick {
        run.arg("--quick");
    }
    if let Some(cpy) = &cpy {
        run.arg("--cpy").arg(cpy);
    }
    progress!("measuring (see target/bench/report.md when done)");
    let status = run.status().context("cannot run eryx-bench")?;
    Ok(crate::exit_code(status))
}
