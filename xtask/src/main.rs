//! `cargo xtask`: the developer tasks of eryx.
//!
//! - `fetch`: CPython for WASI from the componentize-py wheel (via pip);
//! - `codegen`: the files generated from `wit/sandbox.wit`;
//! - `dist`: build `liberyx_runtime.so` and assemble `target/dist`;
//! - `run -- ARGS`: `dist`, build the `eryx` CLI, run it with ARGS;
//! - `test [--all-packages] [-- ARGS]`: `dist`, the test packages'
//!   wheels, then `cargo test --workspace`;
//! - `bench [--quick]`: measure eryx against componentize-py and python3;
//! - `compat [--quick] [MODULE...]`: CPython's own tests in the sandbox.
//! - `wheel SPEC...`: Python packages → wheels for the guest (`wheel/`).
//!
//! Progress goes to stderr; stdout belongs to the program `run` runs.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

mod bench;
mod bytecode;
mod cargoshim;
mod cext;
mod clibs;
mod codegen;
mod compat;
mod cxxeh;
mod debian;
mod dist;
mod ext;
mod fetch;
mod fpcast;
mod fsutil;
mod initfn;
mod lapack;
mod numpy_include;
mod openssl;
mod package_tests;
mod process;
mod pyo3;
mod sjlj;
mod stdlib_ext;
mod sysroot;
mod toolchain;
mod tzdata;
mod wasmcc;
mod wheel;

/// Prints a progress line to stderr.
macro_rules! progress {
    ($($t:tt)*) => { eprintln!("[eryx] {}", format_args!($($t)*)) };
}
pub(crate) use progress;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  fetch              get CPython for WASI (componentize-py wheel via pip) into target/fetch
  codegen [--check]  write (or check) the files generated from wit/sandbox.wit
  dist               build liberyx_runtime.so and assemble the bundle in target/dist
  run [-- ARGS...]   dist, build the eryx CLI, run it with ARGS (e.g. -- -c 'print(1+1)')
  test [--all-packages] [-- ARGS...]
                     dist, the test packages' wheels (tests/packages.txt), then cargo test
                     --workspace (extra ARGS go to cargo test), then `compat --quick`;
                     --all-packages: also the heavy ones (tests/packages-all.txt) and
                     their tests, which are ignored otherwise
  bench [--quick]    measure eryx against componentize-py 0.25.1 and native python3;
                     writes target/bench/report.md and report.json
  compat [--quick] [MODULE...]
                     run CPython's own test modules in the sandbox; writes
                     target/compat/report.md and report.json
  wheel [--out DIR] [--no-deps] [-r FILE] SPEC...
                     build wheels for the guest into target/wheels: requirements resolved on
                     PyPI (pure-Python wheels as they are, others built from their sdists),
                     local sdists, source directories or wheels
  package-tests PACKAGE [--memory SIZE] [MODULE...]
                     a package's own test modules (numpy, scipy, scikit-learn, statsmodels)
                     under pytest in the sandbox (the package and what its tests import
                     built with `wheel`); writes target/package-tests/PACKAGE/report.md.
                     `numpy-tests` = `package-tests numpy`
  ext build PATH     build an extension: a Rust crate (eryx-cpython-sys or PyO3, unchanged) or
                     C sources (a .c file or a directory); prints the built .so's path";

/// The workspace root (the parent of `xtask/`).
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("[eryx] error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> Result<ExitCode> {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().unwrap_or_default();
    let raw_rest: Vec<String> = args.collect();
    let rest: Vec<String> = raw_rest
        .iter()
        .skip_while(|a| *a == "--")
        .cloned()
        .collect();
    match cmd.as_str() {
        "fetch" => {
            fetch::fetch(&root())?;
            Ok(ExitCode::SUCCESS)
        }
        "dist" => {
            dist::dist(&root())?;
            Ok(ExitCode::SUCCESS)
        }
        "codegen" => {
            let check = match rest.as_slice() {
                [] => false,
                [c] if c == "--check" => true,
                _ => bail!("usage: cargo xtask codegen [--check]"),
            };
            codegen::codegen(&root(), check)?;
            Ok(ExitCode::SUCCESS)
        }
        "ext" => match rest.as_slice() {
            [build, path] if build == "build" => {
                let out = ext::build(&root(), Path::new(path))?;
                println!("{}", out.display());
                Ok(ExitCode::SUCCESS)
            }
            _ => bail!("usage: cargo xtask ext build PATH"),
        },
        "run" => run(&rest),
        "wheel" => wheel::wheel(&root(), &rest),
        "package-tests" => package_tests::package_tests(&root(), &rest),
        "numpy-tests" => {
            let args: Vec<String> = ["numpy".to_string()].into_iter().chain(rest).collect();
            package_tests::package_tests(&root(), &args)
        }
        // The cross compiler that package builds call (see wasmcc.rs).
        "wasm-cc" => wasmcc::main(false, &raw_rest),
        "wasm-c++" => wasmcc::main(true, &raw_rest),
        // The `cargo` that setuptools-rust calls (see cargoshim.rs).
        "cargo-shim" => cargoshim::main(&root(), &raw_rest),
        "test" => test(&rest),
        "bench" => bench::bench(&root(), &rest),
        "compat" => compat::compat(&root(), &rest),
        "" | "help" | "-h" | "--help" => {
            eprintln!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

pub(crate) fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    match status.code() {
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => ExitCode::from(2),
    }
}

/// Builds the `eryx` CLI (eryx-host's `cli` feature); returns its path.
pub(crate) fn build_cli(root: &Path) -> Result<PathBuf> {
    let mut build = cargo();
    build.current_dir(root).args([
        "build",
        "--quiet",
        "-p",
        "eryx-host",
        "--features",
        "cli",
        "--bin",
        "eryx",
    ]);
    process::run(&mut build, "building the eryx CLI")?;
    Ok(cargo_target_dir(root, std::env::var_os("CARGO_TARGET_DIR")).join("debug/eryx"))
}

/// The machine's busy and total CPU time so far (`/proc/stat`'s first line,
/// in clock ticks), where there is one.
pub(crate) fn cpu_jiffies() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    parse_cpu_line(text.lines().next()?)
}

/// `cpu user nice system idle iowait irq softirq steal ...` → (busy, total).
fn parse_cpu_line(line: &str) -> Option<(u64, u64)> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = fields
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let [user, nice, system, idle, iowait, irq, softirq, steal] = v.try_into().ok()?;
    let busy = user + nice + system + irq + softirq + steal;
    Some((busy, busy + idle + iowait))
}

/// The share of CPU time that was busy between two readings, in percent.
fn cpu_busy_percent(before: Option<(u64, u64)>, after: Option<(u64, u64)>) -> Option<u64> {
    let ((b0, t0), (b1, t1)) = (before?, after?);
    let total = t1.checked_sub(t0).filter(|t| *t > 0)?;
    Some(100 * b1.saturating_sub(b0) / total)
}

/// `", CPUs N% busy"` for a progress line, or nothing without readings.
pub(crate) fn cpu_busy_note(before: Option<(u64, u64)>, after: Option<(u64, u64)>) -> String {
    cpu_busy_percent(before, after)
        .map(|p| format!(", CPUs {p}% busy"))
        .unwrap_or_default()
}

/// Where cargo puts what it builds for the workspace at `root`: `env`
/// (`CARGO_TARGET_DIR`, relative to `root` when relative), else
/// `root/target`. xtask's own files (`target/dist`, `target/wheels`, ...)
/// stay under `root/target` either way.
pub(crate) fn cargo_target_dir(root: &Path, env: Option<std::ffi::OsString>) -> PathBuf {
    match env {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

fn run(args: &[String]) -> Result<ExitCode> {
    let root = root();
    let bundle = dist::dist(&root)?;
    let exe = build_cli(&root)?;
    let status = Command::new(&exe)
        .arg("--bundle")
        .arg(&bundle)
        .args(args)
        .env("ERYX_CACHE_DIR", root.join("target/eryx-cache"))
        .status()
        .with_context(|| format!("cannot run {}", exe.display()))?;
    Ok(exit_code(status))
}

/// `cargo xtask test [--all-packages] [-- ARGS]`'s options.
#[derive(Debug, PartialEq, Eq)]
struct TestArgs {
    /// The heavy test packages are built and their tests run.
    all_packages: bool,
    /// ARGS were given: only the workspace tests they select run (not
    /// xtask's unit tests).
    selected: bool,
    /// What goes to `cargo test` (with `--include-ignored` added for
    /// `--all-packages`).
    cargo: Vec<String>,
}

fn test_args(args: &[String]) -> TestArgs {
    let all_packages = args.first().is_some_and(|a| a == "--all-packages");
    let mut cargo: Vec<String> = args
        .iter()
        .skip(usize::from(all_packages))
        .cloned()
        .collect();
    if all_packages && cargo.first().is_some_and(|a| a == "--") {
        cargo.remove(0);
    }
    let selected = !cargo.is_empty();
    if all_packages {
        // The test binaries' own arguments come after cargo's `--`.
        match cargo.iter().position(|a| a == "--") {
            Some(i) => cargo.insert(i + 1, "--include-ignored".into()),
            None => cargo.extend(["--".into(), "--include-ignored".into()]),
        }
    }
    TestArgs {
        all_packages,
        selected,
        cargo,
    }
}

fn test(args: &[String]) -> Result<ExitCode> {
    let TestArgs {
        all_packages,
        selected,
        cargo: args,
    } = test_args(args);
    let args = args.as_slice();
    let root = root();
    // Each step's wall time and how busy the machine's CPUs were during it,
    // so that a slow run (CI's) shows where it went and whether a step left
    // a core idle.
    let started = std::time::Instant::now();
    let mark = std::cell::Cell::new(cpu_jiffies());
    let step = |what: &str| {
        let now = cpu_jiffies();
        let busy = cpu_busy_note(mark.get(), now);
        mark.set(now);
        progress!(
            "test: {what} ({:.0} s in{busy})",
            started.elapsed().as_secs_f64()
        )
    };
    let bundle = dist::dist(&root)?;
    step("the bundle is ready");
    for example in ext::EXAMPLES {
        ext::build(&root, Path::new(example))?;
    }
    step("the example extensions are built");
    // Real packages from PyPI, built from their sdists (tests/all/packages.rs):
    // tests/packages.txt, and with `--all-packages` tests/packages-all.txt
    // (whose tests are `#[ignore]`d otherwise).
    let mut wheels = wheel::requirement_lines(wheel::TEST_PACKAGES);
    // eryx's own check of the guest's LAPACK (a C extension built with the
    // `lapack` C library, as scipy is; tests/lapack-check).
    wheels.push(root.join("tests/lapack-check").display().to_string());
    if all_packages {
        wheels.extend(wheel::requirement_lines(wheel::ALL_TEST_PACKAGES));
    }
    wheel::wheel(&root, &wheels)?;
    step("the test packages' wheels are ready");
    let cli = build_cli(&root)?;
    // xtask's own unit tests run on their own: in one `cargo test` with the
    // rest, the features of its own dependencies (pep508_rs's) would unify
    // into eryx-host's and change what the tests link against. The crates
    // both use are compiled once (xtask/Cargo.toml aligns their features).
    // With arguments (`-- --test all -- name`) only the workspace tests run.
    if !selected {
        let mut unit = cargo();
        unit.current_dir(&root).args(["test", "-p", "xtask"]);
        progress!("running xtask's unit tests: {}", process::describe(&unit));
        let status = unit.status().context("cannot run cargo test")?;
        if !status.success() {
            return Ok(exit_code(status));
        }
    }
    let mut test = cargo();
    test.current_dir(&root)
        .args([
            "test",
            "--workspace",
            "--exclude",
            "eryx-runtime",
            "--exclude",
            "xtask",
        ])
        .args(["--features", "eryx-host/cli"])
        .args(args)
        .env("ERYX_BUNDLE", &bundle)
        .env("ERYX_CLI", &cli)
        .env("ERYX_CACHE_DIR", root.join("target/eryx-cache"))
        .env("ERYX_EXAMPLE_EXTENSIONS", root.join("target/ext"))
        .env("ERYX_WHEELHOUSE", root.join("target/wheels"))
        .env("ERYX_XTASK", std::env::current_exe()?);
    progress!("running the tests: {}", process::describe(&test));
    let status = test.status().context("cannot run cargo test")?;
    if !status.success() {
        return Ok(exit_code(status));
    }
    step("the tests passed");
    // A short compatibility run: CPython's own tests for a few modules.
    let code = compat::compat(&root, &["--quick".to_string()])?;
    step("compat --quick is done");
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::{TestArgs, cargo_target_dir, cpu_busy_percent, parse_cpu_line, test_args};
    use std::path::Path;

    #[test]
    fn all_packages_adds_include_ignored_for_the_test_binaries() {
        let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let t = |all_packages, selected, cargo: &[&str]| TestArgs {
            all_packages,
            selected,
            cargo: s(cargo),
        };
        assert_eq!(test_args(&[]), t(false, false, &[]));
        assert_eq!(
            test_args(&s(&["--test", "all", "--", "numpy"])),
            t(false, true, &["--test", "all", "--", "numpy"])
        );
        assert_eq!(
            test_args(&s(&["--all-packages"])),
            t(true, false, &["--", "--include-ignored"])
        );
        assert_eq!(
            test_args(&s(&["--all-packages", "--"])),
            t(true, false, &["--", "--include-ignored"])
        );
        assert_eq!(
            test_args(&s(&[
                "--all-packages",
                "--",
                "--test",
                "all",
                "--",
                "pandas"
            ])),
            t(
                true,
                true,
                &["--test", "all", "--", "--include-ignored", "pandas"]
            )
        );
        assert_eq!(
            test_args(&s(&["--all-packages", "--", "--test", "all"])),
            t(true, true, &["--test", "all", "--", "--include-ignored"])
        );
    }

    #[test]
    fn cpu_time_comes_from_proc_stat_first_line() {
        let line = "cpu  100 5 20 800 10 1 2 3 0 0";
        assert_eq!(parse_cpu_line(line), Some((131, 941)));
        assert_eq!(parse_cpu_line("cpu0 1 2 3 4 5 6 7 8"), None);
        assert_eq!(parse_cpu_line("cpu 1 2"), None);
        assert_eq!(
            cpu_busy_percent(Some((100, 1000)), Some((250, 1200))),
            Some(75)
        );
        assert_eq!(cpu_busy_percent(Some((100, 1000)), Some((100, 1000))), None);
        assert_eq!(cpu_busy_percent(None, Some((1, 2))), None);
    }

    #[test]
    fn cargo_builds_go_where_cargo_target_dir_says() {
        let root = Path::new("/repo");
        assert_eq!(cargo_target_dir(root, None), Path::new("/repo/target"));
        assert_eq!(
            cargo_target_dir(root, Some("".into())),
            Path::new("/repo/target")
        );
        assert_eq!(
            cargo_target_dir(root, Some("/elsewhere".into())),
            Path::new("/elsewhere")
        );
        assert_eq!(
            cargo_target_dir(root, Some("out".into())),
            Path::new("/repo/out")
        );
    }
}
