//! `eryx-bench`: the measurements behind `cargo xtask bench`.
//!
//! `eryx-bench all --root DIR [--quick] [--cpy PATH]` measures eryx (and,
//! when given the `componentize-py` command, the same work done with
//! componentize-py 0.25.1), native `python3` for the CPU-bound kernels, and
//! writes `target/bench/report.md` and `report.json`. Measurements that need
//! a fresh process run this binary again as a child (`child ...`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use eryx_host::{Sandbox, SandboxBuilder, SandboxPool};
use serde_json::{Value, json};

#[allow(
    unsafe_code,
    reason = "loading a componentize-py component this run serialised, in `cpy`"
)]
mod cpy;

/// The CPU-bound kernels: the same text runs in the sandbox, in the
/// componentize-py component and in native python3. Each kernel is timed
/// inside Python with `time.perf_counter`, best of `R` runs.
const KERNELS: &str = r#"
import time, json, re
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
doc = json.dumps([{"id": i, "name": "item%d" % i, "tags": ["red", "green", "blue"],
                   "score": i * 0.5, "ok": i % 3 == 0} for i in range(11000)])
text = ("lorem ipsum dolor sit amet 12345 someone@example.com 6789 " * 20000)[:1 << 20]
kernels = {
    "fib": lambda: fib(27),
    "sum": lambda: sum(range(10**7)),
    "json": lambda: json.dumps(json.loads(doc)),
    "regex": lambda: len(re.findall(r"[a-z]+@[a-z]+\.com|\d+", text)),
}
result = {}
for name, k in kernels.items():
    best = None
    for _ in range(R):
        t = time.perf_counter()
        k()
        dt = (time.perf_counter() - t) * 1000
        best = dt if best is None else min(best, dt)
    result[name] = best
print(json.dumps(result))
"#;

/// Python that builds about 50 KB of picklable session state.
const STATE_50K: &str = "data = {f'key{i}': [i, i * 2.5, f'value-{i}'] for i in range(1700)}\n\
                         import pickle; size = len(pickle.dumps(data))";

/// The example extension whose bytes are renamed to make new extensions.
const TEMPLATE: &str = "fastsum";

struct Ctx {
    root: PathBuf,
    bundle: PathBuf,
    cache: PathBuf,
    ext_dir: PathBuf,
    out: PathBuf,
    quick: bool,
    cpy: Option<PathBuf>,
    exe: PathBuf,
}

/// One measured quantity.
struct Metric {
    key: String,
    label: String,
    unit: &'static str,
    values: Vec<f64>,
}

impl Metric {
    fn sorted(&self) -> Vec<f64> {
        let mut v = self.values.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    fn median(&self) -> f64 {
        let v = self.sorted();
        if v.is_empty() {
            return f64::NAN;
        }
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    }
}

#[derive(Default)]
struct Report {
    metrics: Vec<Metric>,
    notes: Vec<String>,
}

impl Report {
    fn add(&mut self, key: &str, label: &str, unit: &'static str, values: Vec<f64>) {
        let m = Metric {
            key: key.to_string(),
            label: label.to_string(),
            unit,
            values,
        };
        eprintln!(
            "[bench] {:<48} {:>10} {unit} (n={})",
            m.label,
            fmt(m.median()),
            m.values.len()
        );
        self.metrics.push(m);
    }

    fn median(&self, key: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|m| m.key == key)
            .map(Metric::median)
    }
}

fn fmt(v: f64) -> String {
    if !v.is_finite() {
        "n/a".to_string()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// `cargo xtask bench` runs `all`; `child` runs one measurement that needs a
/// process of its own.
#[derive(clap::Parser)]
#[command(name = "eryx-bench")]
enum Cli {
    /// Every measurement; writes `target/bench/report.{md,json}` under ROOT.
    All {
        /// The workspace root.
        #[arg(long)]
        root: PathBuf,
        /// Fewer runs per measurement.
        #[arg(long)]
        quick: bool,
        /// The `componentize-py` command to compare with.
        #[arg(long)]
        cpy: Option<PathBuf>,
    },
    /// One measurement in this process; prints one JSON object.
    #[command(subcommand)]
    Child(Child),
}

/// Where a child finds the bundle and the cache.
#[derive(clap::Args)]
struct At {
    /// The dist bundle.
    #[arg(long)]
    bundle: PathBuf,
    /// The compiled-component cache.
    #[arg(long)]
    cache: PathBuf,
}

#[derive(clap::Subcommand)]
enum Child {
    /// Build a sandbox (with packages) and run CODE once.
    First {
        #[command(flatten)]
        at: At,
        /// The code to run.
        #[arg(long)]
        code: String,
        /// Skip pre-initialisation.
        #[arg(long)]
        no_preinit: bool,
        /// Wait for a new set's snapshot (otherwise the sandbox starts
        /// Python itself when the snapshot is not ready, as the CLI does).
        #[arg(long)]
        wait_snapshot: bool,
        /// A package, repeatable.
        #[arg(long)]
        package: Vec<PathBuf>,
    },
    /// Hold N idle sandboxes and report the resident set.
    Idle {
        #[command(flatten)]
        at: At,
        /// How many sandboxes.
        #[arg(long)]
        n: usize,
    },
    /// A componentize-py component: compile (or load) and run CODE once.
    CpyFirst(cpy::FirstArgs),
}

fn main() -> Result<()> {
    let cli = <Cli as clap::Parser>::parse();
    // componentize-py components run with WASI's synchronous bindings,
    // which must not be called from inside a Tokio runtime.
    if let Cli::Child(Child::CpyFirst(args)) = &cli {
        return cpy::child_first(args);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli {
        Cli::All { root, quick, cpy } => rt.block_on(all(root, quick, cpy)),
        Cli::Child(child_args) => rt.block_on(child(child_args)),
    }
}

/// This process's peak resident set, in MiB (Linux).
fn peak_rss_mib() -> f64 {
    proc_status_kib("VmHWM:") / 1024.0
}

/// This process's resident set now, in MiB (Linux).
fn rss_mib() -> f64 {
    proc_status_kib("VmRSS:") / 1024.0
}

/// This process's proportional (`Pss`) and unique (`Private_Clean` +
/// `Private_Dirty`) set sizes, in MiB (Linux `smaps_rollup`). RSS counts a
/// page of the compiled file once per sandbox that maps it although the
/// page cache holds it once; these two say what each sandbox really adds.
fn pss_uss_mib() -> (f64, f64) {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    let field = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    (
        field("Pss:"),
        field("Private_Clean:") + field("Private_Dirty:"),
    )
}

fn proc_status_kib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(f64::NAN)
}

/// Children: measurements that need a process of their own. Each prints
/// one JSON object on stdout.
async fn child(args: Child) -> Result<()> {
    let builder = |at: &At| Sandbox::builder().bundle(&at.bundle).cache_dir(&at.cache);
    match args {
        Child::First {
            at,
            code,
            no_preinit,
            wait_snapshot,
            package,
        } => {
            let mut builder = builder(&at)
                .preinit(!no_preinit)
                .snapshot_policy(if wait_snapshot {
                    eryx_host::SnapshotPolicy::Wait
                } else {
                    eryx_host::SnapshotPolicy::Skip
                });
            for p in package {
                builder = builder.package(p);
            }
            let stats = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
            let seen = stats.clone();
            let t0 = Instant::now();
            let trace = std::env::var_os("ERYX_BENCH_TRACE").is_some();
            let builder = builder.on_progress(move |m| {
                if trace {
                    eprintln!("[{:>8.1} ms] {m}", t0.elapsed().as_secs_f64() * 1000.0);
                }
                if m.starts_with("compiled ") {
                    *seen.lock().unwrap() = m.to_string();
                }
            });
            let start = Instant::now();
            let mut sandbox = builder.build().await?;
            let out = sandbox.execute(&code).await?;
            let in_process = ms(start);
            let functions = stats.lock().unwrap().clone();
            println!(
                "{}",
                json!({"stdout": out.stdout, "in_process_ms": in_process,
                       "peak_rss_mib": peak_rss_mib(), "functions": functions})
            );
        }
        Child::Idle { at, n } => {
            let builder = builder(&at);
            let mut held = Vec::new();
            for _ in 0..n {
                let mut sandbox = builder.clone().build().await?;
                sandbox.execute("1 + 1").await?;
                held.push(sandbox);
            }
            let (pss, uss) = pss_uss_mib();
            println!(
                "{}",
                json!({"rss_mib": rss_mib(), "pss_mib": pss, "uss_mib": uss, "n": held.len()})
            );
        }
        Child::CpyFirst(_) => bail!("cpy-first runs outside the Tokio runtime"),
    }
    Ok(())
}

/// Runs a child measurement; returns its JSON and the wall time of the
/// whole process.
fn run_child(ctx: &Ctx, args: &[&str]) -> Result<(Value, f64)> {
    let mut cmd = Command::new(&ctx.exe);
    cmd.arg("child")
        .args(args)
        .arg("--bundle")
        .arg(&ctx.bundle)
        .arg("--cache")
        .arg(&ctx.cache);
    let start = Instant::now();
    let out = cmd.output().context("starting a child measurement")?;
    let wall = ms(start);
    if !out.status.success() {
        bail!(
            "child {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("child output: {}", String::from_utf8_lossy(&out.stdout)))?;
    Ok((v, wall))
}

/// Makes a new extension module named `name` (7 bytes) from the template's
/// bytes: its `PyInit_` export and module name are renamed in place.
fn renamed_extension(ctx: &Ctx, name: &str) -> Result<Vec<u8>> {
    assert_eq!(name.len(), TEMPLATE.len());
    let path = ctx.ext_dir.join(extension_file(TEMPLATE));
    let mut bytes = std::fs::read(&path).with_context(|| {
        format!(
            "{} is missing: `cargo xtask bench` builds it first",
            path.display()
        )
    })?;
    let from = TEMPLATE.as_bytes();
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(name.as_bytes());
            i += from.len();
        } else {
            i += 1;
        }
    }
    Ok(bytes)
}

fn extension_file(name: &str) -> String {
    format!("{name}{}", eryx_linker::layout::EXTENSION_SUFFIX)
}

/// A name no earlier run used, so the set it is in is new to every cache.
fn fresh_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("f{:06x}", (nanos ^ (nanos >> 24)) & 0xff_ffff)
}

async fn all(root: PathBuf, quick: bool, cpy: Option<PathBuf>) -> Result<()> {
    let ctx = Ctx {
        bundle: root.join("target/dist"),
        cache: root.join("target/eryx-cache"),
        ext_dir: root.join("target/ext"),
        out: root.join("target/bench"),
        quick,
        cpy,
        exe: std::env::current_exe()?,
        root,
    };
    std::fs::create_dir_all(&ctx.out)?;
    let mut report = Report::default();
    let started = Instant::now();

    // Warm-up: make sure the base component is compiled and cached (this
    // also fills the per-function cache that new sets draw on).
    eprintln!("[bench] warm-up: compiling the base component if needed");
    run_child(&ctx, &["first", "--code", "1 + 1", "--wait-snapshot"])?;

    sizes(&ctx, &mut report)?;
    link_times(&ctx, &mut report)?;
    new_set(&ctx, &mut report)?;
    fresh_process(&ctx, &mut report)?;
    warm(&ctx, &mut report).await?;
    cpu(&ctx, &mut report).await?;
    idle(&ctx, &mut report)?;
    big_set(&ctx, &mut report)?;
    if let Err(e) = packages(&ctx, &mut report) {
        report
            .notes
            .push(format!("package measurements failed: {e:#}"));
        eprintln!("[bench] package measurements failed: {e:#}");
    }
    if let Some(command) = &ctx.cpy {
        // On a thread of its own: WASI's synchronous bindings must not run
        // inside the Tokio runtime.
        let result = std::thread::scope(|s| {
            s.spawn(|| cpy::measure(&ctx, command, &mut report))
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the measuring thread panicked")))
        });
        if let Err(e) = result {
            report
                .notes
                .push(format!("componentize-py measurements failed: {e:#}"));
            eprintln!("[bench] componentize-py measurements failed: {e:#}");
        }
    } else {
        report
            .notes
            .push("componentize-py was not measured (no --cpy)".to_string());
    }
    for name in ["fib", "json", "regex", "sum"] {
        for (theirs_key, ratio_key, label) in [
            ("cpy_cpu", "cpu_vs_cpy", " (same libpython)"),
            (
                "cpy_epoch_cpu",
                "cpu_vs_cpy_epoch",
                ", both with epoch interruption (time-limit checks)",
            ),
        ] {
            if let (Some(ours), Some(theirs)) = (
                report.median(&format!("cpu_{name}_sandbox_ms")),
                report.median(&format!("{theirs_key}_{name}_ms")),
            ) {
                report.add(
                    &format!("{ratio_key}_{name}"),
                    &format!("kernel {name}: eryx / componentize-py{label}"),
                    "x",
                    vec![ours / theirs],
                );
            }
        }
    }
    report.notes.push(format!(
        "total bench time {:.0} s{}",
        started.elapsed().as_secs_f64(),
        if ctx.quick { " (--quick)" } else { "" }
    ));
    write_report(&ctx, &report)
}

fn sizes(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let runtime = std::fs::read(ctx.bundle.join("lib/liberyx_runtime.so"))?;
    let packed = zstd::encode_all(&runtime[..], 19)?;
    report.add(
        "runtime_so_kb",
        "liberyx_runtime.so",
        "KB",
        vec![runtime.len() as f64 / 1000.0],
    );
    report.add(
        "runtime_so_zstd_kb",
        "liberyx_runtime.so, zstd -19",
        "KB",
        vec![packed.len() as f64 / 1000.0],
    );
    let bundle = eryx_linker::Bundle::open(&ctx.bundle)?;
    let component = eryx_linker::link(&bundle)?;
    report.add(
        "component_kb",
        "linked component (base)",
        "KB",
        vec![component.len() as f64 / 1000.0],
    );
    Ok(())
}

fn link_times(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let bundle = eryx_linker::Bundle::open(&ctx.bundle)?;
    let mut all = Vec::new();
    for i in 0..16 {
        let name = format!("fsum_{i:02}");
        let bytes = renamed_extension(ctx, &name)?;
        all.push(eryx_linker::Extension::new(
            format!("{}/{}", eryx_linker::SITE_PACKAGES, extension_file(&name)),
            bytes,
        )?);
    }
    let runs = if ctx.quick { 3 } else { 7 };
    for n in [0usize, 1, 4, 16] {
        let mut times = Vec::new();
        for _ in 0..runs {
            let start = Instant::now();
            eryx_linker::link_with_extensions(&bundle, &all[..n])?;
            times.push(ms(start));
        }
        report.add(
            &format!("link_base_plus_{n}_ms"),
            &format!("link: base + {n} extensions"),
            "ms",
            times,
        );
    }
    Ok(())
}

/// A package directory holding a new extension and the wordcount example.
fn new_set_package(ctx: &Ctx, dir: &Path, name: &str) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join(extension_file(name)),
        renamed_extension(ctx, name)?,
    )?;
    let wc = extension_file("wordcount");
    std::fs::copy(ctx.ext_dir.join(&wc), dir.join(&wc))
        .context("the wordcount example extension")?;
    Ok(())
}

/// What [`new_set_code`] prints.
const NEW_SET_EXPECTED: &str = "499500 (1, 3, 'a')";

fn new_set_code(name: &str) -> String {
    format!("import {name}, wordcount\nprint({name}.fast_sum(1000), wordcount.count('a b a'))")
}

fn new_set(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    for preinit in [false, true] {
        new_set_runs(ctx, report, tmp.path(), preinit)?;
    }
    new_set_cold(ctx, report, tmp.path())
}

fn new_set_runs(ctx: &Ctx, report: &mut Report, tmp: &Path, preinit: bool) -> Result<()> {
    // The headline row gets a median even in --quick (one run here varied
    // from 250 to 540 ms between runs on this VM); waiting for a snapshot
    // takes seconds, so once there.
    let runs = match (ctx.quick, preinit) {
        (true, true) => 1,
        _ => 3,
    };
    let (mut wall, mut rss, mut note) = (Vec::new(), Vec::new(), String::new());
    let mut ready = Vec::new();
    for i in 0..runs {
        let name = fresh_name();
        let dir = tmp.join(format!("set-{preinit}-{i}"));
        new_set_package(ctx, &dir, &name)?;
        let code = new_set_code(&name);
        let mut args = vec![
            "first",
            "--package",
            dir.to_str().context("utf-8 path")?,
            "--code",
            &code,
        ];
        if preinit {
            args.push("--wait-snapshot");
        }
        let (v, t) = run_child(ctx, &args)?;
        if v["stdout"].as_str().map(str::trim) != Some(NEW_SET_EXPECTED) {
            bail!("the new set printed {}", v["stdout"]);
        }
        if preinit {
            // The set's snapshot is ready now: a fresh process from it
            // (ten even in --quick, as for the base's fresh process).
            for _ in 0..10 {
                let (t, out) = cli_run(ctx, &ctx.cache, std::slice::from_ref(&dir), &[], &code)?;
                if out.trim() != NEW_SET_EXPECTED {
                    bail!("the pre-initialised set printed {out:?}");
                }
                ready.push(t);
            }
        }
        wall.push(t);
        rss.push(v["peak_rss_mib"].as_f64().unwrap_or(f64::NAN));
        note = v["functions"].as_str().unwrap_or_default().to_string();
    }
    if preinit {
        report.add(
            "new_set_preinit_first_result_ms",
            "new extension set -> first result, waiting for its snapshot (fresh process, base caches warm)",
            "ms",
            wall,
        );
        report.add(
            "preinit_set_fresh_process_ms",
            "pre-initialised set (base + 2 extensions) -> first result, fresh process, snapshot ready",
            "ms",
            ready,
        );
        report.add(
            "new_set_preinit_peak_rss_mib",
            "peak RSS while building and pre-initialising a new set",
            "MiB",
            rss,
        );
    } else {
        report.add(
            "new_set_first_result_ms",
            "new extension set -> first result (fresh process, base caches warm; its snapshot is built after)",
            "ms",
            wall,
        );
        report.add(
            "new_set_peak_rss_mib",
            "peak RSS while building a new set",
            "MiB",
            rss,
        );
        report
            .notes
            .push(format!("a new set with warm caches: {note}"));
    }
    Ok(())
}

fn new_set_cold(ctx: &Ctx, report: &mut Report, tmp: &Path) -> Result<()> {
    if !ctx.quick {
        // The same with no caches at all: what the function cache saves.
        let cold = tempfile::tempdir()?;
        let name = fresh_name();
        let dir = tmp.join("cold");
        new_set_package(ctx, &dir, &name)?;
        let mut cmd = Command::new(&ctx.exe);
        cmd.args(["child", "first", "--package"])
            .arg(&dir)
            .args(["--code", &new_set_code(&name), "--no-preinit", "--bundle"])
            .arg(&ctx.bundle)
            .arg("--cache")
            .arg(cold.path());
        let start = Instant::now();
        let out = cmd.output()?;
        let t = ms(start);
        if !out.status.success() {
            bail!("cold new set: {}", String::from_utf8_lossy(&out.stderr));
        }
        report.add(
            "new_set_cold_caches_first_result_ms",
            "new extension set -> first result (no caches at all)",
            "ms",
            vec![t],
        );
    }
    Ok(())
}

/// One fresh `eryx -c 'print(1 + 1)'` on the bench's cache: its wall time.
pub(crate) fn eryx_fresh_once(ctx: &Ctx) -> Result<f64> {
    let cli = ctx.exe.with_file_name("eryx");
    let start = Instant::now();
    let out = Command::new(&cli)
        .arg("--bundle")
        .arg(&ctx.bundle)
        .args(["-c", "print(1 + 1)"])
        .env("ERYX_CACHE_DIR", &ctx.cache)
        .output()
        .with_context(|| format!("running {}", cli.display()))?;
    let wall = ms(start);
    if out.stdout != b"2\n" {
        bail!("eryx -c printed {:?}", String::from_utf8_lossy(&out.stdout));
    }
    Ok(wall)
}

fn fresh_process(ctx: &Ctx, report: &mut Report) -> Result<()> {
    // A fresh process takes ~10 ms: ten even in --quick (three gave
    // medians that moved by 2 ms between runs on this VM).
    let mut times = Vec::new();
    for _ in 0..10 {
        times.push(eryx_fresh_once(ctx)?);
    }
    report.add(
        "fresh_process_first_result_ms",
        "fresh process -> first result (`eryx -c`, cached component)",
        "ms",
        times,
    );
    let native = python3_wall(if ctx.quick { 3 } else { 10 })?;
    report.add(
        "native_python_process_ms",
        "native `python3 -S -c pass`, whole process",
        "ms",
        native,
    );
    Ok(())
}

fn python3_wall(runs: usize) -> Result<Vec<f64>> {
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let status = Command::new("python3")
            .args(["-S", "-c", "pass"])
            .status()
            .context("running python3")?;
        times.push(ms(start));
        if !status.success() {
            bail!("python3 failed");
        }
    }
    Ok(times)
}

fn builder(ctx: &Ctx) -> SandboxBuilder {
    Sandbox::builder().bundle(&ctx.bundle).cache_dir(&ctx.cache)
}

async fn warm(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let runs = if ctx.quick { 5 } else { 20 };
    // Prime the process-wide memo (engine, compiled component).
    builder(ctx).build().await?.execute("1 + 1").await?;
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let mut sandbox = builder(ctx).build().await?;
        sandbox.execute("1 + 1").await?;
        times.push(ms(start));
    }
    report.add(
        "warm_new_sandbox_first_result_ms",
        "new sandbox + first result, warm process (pre-initialised)",
        "ms",
        times,
    );
    // The same with wasmtime's pooling allocator.
    {
        let pooled = || builder(ctx).instance_pool(64);
        pooled().build().await?.execute("1 + 1").await?;
        let mut times = Vec::new();
        for _ in 0..runs {
            let start = Instant::now();
            let mut sandbox = pooled().build().await?;
            sandbox.execute("1 + 1").await?;
            times.push(ms(start));
        }
        report.add(
            "warm_new_sandbox_pooling_first_result_ms",
            "new sandbox + first result, warm process, pooling allocator",
            "ms",
            times,
        );
    }
    builder(ctx).preinit(false).build().await?;
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let mut sandbox = builder(ctx).preinit(false).build().await?;
        sandbox.execute("1 + 1").await?;
        times.push(ms(start));
    }
    report.add(
        "warm_new_sandbox_no_preinit_first_result_ms",
        "new sandbox + first result, warm process, Python started in it",
        "ms",
        times,
    );

    let pool = SandboxPool::new(builder(ctx), 4).await?;
    pool.filled().await;
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let mut sandbox = pool.get().await?;
        sandbox.execute("1 + 1").await?;
        times.push(ms(start));
        pool.filled().await;
    }
    report.add(
        "pooled_new_sandbox_first_result_ms",
        "new sandbox from a SandboxPool (made and warmed up ahead) + first result",
        "ms",
        times,
    );

    let mut sandbox = builder(ctx).build().await?;
    let mut times = Vec::new();
    for _ in 0..runs * 5 {
        let start = Instant::now();
        sandbox.execute("1 + 1").await?;
        times.push(ms(start));
    }
    report.add(
        "execute_round_trip_ms",
        "execute(\"1+1\") on a live sandbox",
        "ms",
        times,
    );
    sandbox.execute("x = 0").await?;
    let mut sessions = Vec::new();
    for _ in 0..if ctx.quick { 3 } else { 10 } {
        let start = Instant::now();
        for _ in 0..100 {
            sandbox.execute("x += 1").await?;
        }
        sessions.push(ms(start) / 100.0);
    }
    report.add(
        "session_call_ms",
        "a call in a session of 100 small executions (the same cell: compiled once)",
        "ms",
        sessions,
    );
    // The same with a different cell each time: each one is compiled.
    let mut distinct = Vec::new();
    let mut n = 0u64;
    for _ in 0..if ctx.quick { 3 } else { 10 } {
        let cells: Vec<String> = (0..100)
            .map(|_| {
                n += 1;
                format!("x += {n}")
            })
            .collect();
        let start = Instant::now();
        for cell in &cells {
            sandbox.execute(cell).await?;
        }
        distinct.push(ms(start) / 100.0);
    }
    report.add(
        "session_call_new_cell_ms",
        "a call in a session of 100 small executions, a new cell each time",
        "ms",
        distinct,
    );

    // Host functions: the cost of one call from Python (a loop of 10,000
    // calls of a function returning at once, per call).
    let mut tools = builder(ctx)
        .function("tick", |_| async { Ok(serde_json::json!(1)) })
        .build()
        .await?;
    let mut per_call = Vec::new();
    for _ in 0..if ctx.quick { 3 } else { 5 } {
        let start = Instant::now();
        tools
            .execute("n = 0\nfor _ in range(10_000): n += tick()")
            .await?;
        per_call.push(ms(start) * 1000.0 / 10_000.0);
    }
    report.add(
        "host_call_us",
        "host function call from Python (loop of 10,000)",
        "us",
        per_call,
    );

    sandbox.execute(STATE_50K).await?;
    let size = sandbox.execute("size").await?.value.unwrap_or_default();
    let (mut snaps, mut restores) = (Vec::new(), Vec::new());
    let mut other = builder(ctx).build().await?;
    for _ in 0..if ctx.quick { 3 } else { 10 } {
        let start = Instant::now();
        let snap = sandbox.snapshot().await?;
        snaps.push(ms(start));
        let start = Instant::now();
        other.restore(&snap).await?;
        restores.push(ms(start));
    }
    report.add(
        "snapshot_ms",
        &format!("snapshot of {size} bytes of pickled state"),
        "ms",
        snaps,
    );
    report.add(
        "restore_ms",
        &format!("restore of {size} bytes of pickled state"),
        "ms",
        restores,
    );
    Ok(())
}

fn kernels_code(repeats: usize) -> String {
    format!("R = {repeats}\n{KERNELS}")
}

fn parse_kernels(text: &str) -> Result<BTreeMap<String, f64>> {
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("no kernel timings printed")?;
    Ok(serde_json::from_str(line)?)
}

async fn cpu(ctx: &Ctx, report: &mut Report) -> Result<()> {
    // Best of three even in --quick: one sample per kernel moved by up to
    // 2x between two runs of the same tree on this VM (componentize-py's
    // fib 144 -> 94 ms), which no target row can be judged on.
    let repeats = if ctx.quick { 3 } else { 5 };
    let code = kernels_code(repeats);
    let mut sandbox = builder(ctx).timeout(std::time::Duration::from_secs(600));
    sandbox = sandbox.memory_limit(1 << 30);
    let mut sandbox = sandbox.build().await?;
    let inside = parse_kernels(&sandbox.execute(&code).await?.stdout)?;
    let out = Command::new("python3")
        .args(["-S", "-c", &code])
        .output()
        .context("running python3")?;
    let native = parse_kernels(&String::from_utf8_lossy(&out.stdout))?;
    for (name, t) in &inside {
        let n = native.get(name).copied().unwrap_or(f64::NAN);
        report.add(
            &format!("cpu_{name}_sandbox_ms"),
            &format!("kernel {name}: eryx (best of {repeats})"),
            "ms",
            vec![*t],
        );
        report.add(
            &format!("cpu_{name}_native_ms"),
            &format!("kernel {name}: native python3 (best of {repeats})"),
            "ms",
            vec![n],
        );
        report.add(
            &format!("cpu_ratio_{name}"),
            &format!("kernel {name}: eryx / native"),
            "x",
            vec![t / n],
        );
    }
    let version = Command::new("python3").arg("--version").output()?;
    report.notes.push(format!(
        "native baseline: {} (the sandbox runs CPython 3.14)",
        String::from_utf8_lossy(&version.stdout).trim()
    ));
    Ok(())
}

/// How many extensions the big set has.
const BIG_SET: usize = 250;

/// A set of [`BIG_SET`] extension modules (renamed copies of the template):
/// its link time, and its first result in a fresh process.
fn big_set(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let stamp = fresh_name();
    let mut exts = Vec::new();
    let mut names = Vec::new();
    for i in 0..BIG_SET {
        // Seven characters, like the template's name; new on every run.
        let name = format!("{}{i:03}", &stamp[..4]);
        let bytes = renamed_extension(ctx, &name)?;
        std::fs::write(tmp.path().join(extension_file(&name)), &bytes)?;
        exts.push(eryx_linker::Extension::new(
            format!("{}/{}", eryx_linker::SITE_PACKAGES, extension_file(&name)),
            bytes,
        )?);
        names.push(name);
    }
    let bundle = eryx_linker::Bundle::open(&ctx.bundle)?;
    let mut times = Vec::new();
    for _ in 0..if ctx.quick { 1 } else { 3 } {
        let start = Instant::now();
        match eryx_linker::link_with_extensions(&bundle, &exts) {
            Ok(_) => times.push(ms(start)),
            Err(e) => {
                report
                    .notes
                    .push(format!("a set of {BIG_SET} extensions does not link: {e}"));
                return Ok(());
            }
        }
    }
    report.add(
        "link_big_set_ms",
        &format!("link: base + {BIG_SET} extensions"),
        "ms",
        times,
    );
    let code = format!(
        "import importlib\nprint(sum(importlib.import_module(n).fast_sum(10) for n in {names:?}))"
    );
    match cli_run(ctx, &ctx.cache, &[tmp.path().to_path_buf()], &[], &code) {
        Ok((t, out)) if out.trim() == (45 * BIG_SET).to_string() => report.add(
            "big_set_first_result_ms",
            &format!("new set of {BIG_SET} extensions -> first result (fresh process)"),
            "ms",
            vec![t],
        ),
        Ok((_, out)) => bail!("the {BIG_SET}-extension set printed {out:?}"),
        Err(e) => report
            .notes
            .push(format!("a set of {BIG_SET} extensions does not run: {e:#}")),
    }
    Ok(())
}

fn idle(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let counts: &[usize] = if ctx.quick { &[1, 10] } else { &[1, 10, 100] };
    let mut sizes = BTreeMap::new();
    for &n in counts {
        let (v, _) = run_child(ctx, &["idle", "--n", &n.to_string()])?;
        let mib = |key: &str| v[key].as_f64().unwrap_or(f64::NAN);
        report.add(
            &format!("idle_{n}_sandboxes_rss_mib"),
            &format!("RSS of a process holding {n} idle sandboxes"),
            "MiB",
            vec![mib("rss_mib")],
        );
        sizes.insert(n, [mib("rss_mib"), mib("pss_mib"), mib("uss_mib")]);
    }
    let (lo, hi) = (counts[counts.len() - 2], counts[counts.len() - 1]);
    let rows = [
        ("idle_sandbox_rss_mib", "RSS per additional idle sandbox"),
        (
            "idle_sandbox_pss_mib",
            "... proportional set (PSS: shared pages of the compiled file counted once)",
        ),
        (
            "idle_sandbox_uss_mib",
            "... unique set (USS: pages no other sandbox shares)",
        ),
    ];
    for (i, (key, label)) in rows.into_iter().enumerate() {
        let per = (sizes[&hi][i] - sizes[&lo][i]) / (hi - lo) as f64;
        report.add(key, label, "MiB", vec![per]);
    }
    Ok(())
}

/// Targets from the issue: (key, limit, lower is better).
const TARGETS: &[(&str, f64)] = &[
    ("new_set_first_result_ms", 500.0),
    ("numpy_new_set_ms", 1000.0),
    ("link_base_plus_1_ms", 150.0),
    ("new_set_peak_rss_mib", 250.0),
    ("fresh_process_first_result_ms", 10.0),
    ("preinit_set_fresh_process_ms", 10.0),
    ("warm_new_sandbox_first_result_ms", 1.0),
    ("pooled_new_sandbox_first_result_ms", 1.0),
    ("session_call_ms", 0.05),
    ("host_call_us", 20.0),
    ("cpu_ratio_fib", 1.5),
    ("cpu_ratio_sum", 1.5),
    ("cpu_ratio_json", 1.5),
    ("cpu_ratio_regex", 1.5),
    ("cpu_vs_cpy_fib", 1.1),
    ("cpu_vs_cpy_sum", 1.1),
    ("cpu_vs_cpy_json", 1.1),
    ("cpu_vs_cpy_regex", 1.1),
    ("cpu_vs_cpy_epoch_fib", 1.1),
    ("cpu_vs_cpy_epoch_sum", 1.1),
    ("cpu_vs_cpy_epoch_json", 1.1),
    ("cpu_vs_cpy_epoch_regex", 1.1),
    ("snapshot_ms", 5.0),
    ("restore_ms", 5.0),
    ("idle_sandbox_rss_mib", 4.0),
    ("runtime_so_kb", 60.0),
];

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(String::new(), |kib| {
            format!(", {:.0} GiB", kib / 1024.0 / 1024.0)
        });
    format!("{cpu}, {cores} cores{mem}, {}", std::env::consts::OS)
}

fn today() -> String {
    Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn write_report(ctx: &Ctx, report: &Report) -> Result<()> {
    let date = today();
    let machine = machine();
    let mut md = format!(
        "# eryx benchmarks\n\n{date} on {machine}{}.\n\n\
         | metric | median | min - max | n | target |\n|---|---:|---:|---:|---|\n",
        if ctx.quick { " (`--quick`)" } else { "" }
    );
    let mut obj = serde_json::Map::new();
    for m in &report.metrics {
        let v = m.sorted();
        let target = TARGETS
            .iter()
            .find(|(k, _)| *k == m.key)
            .map_or(String::new(), |(_, t)| {
                let ok = m.median() <= *t;
                format!(
                    "<= {} {} {}",
                    fmt(*t),
                    m.unit,
                    if ok { "met" } else { "**missed**" }
                )
            });
        let range = match (v.first(), v.last()) {
            (Some(a), Some(b)) if v.len() > 1 => format!("{} - {}", fmt(*a), fmt(*b)),
            _ => String::new(),
        };
        md.push_str(&format!(
            "| {} | {} {} | {range} | {} | {target} |\n",
            m.label,
            fmt(m.median()),
            m.unit,
            v.len()
        ));
        obj.insert(m.key.clone(), json!(m.median()));
    }
    let ratios = [
        (
            "new_set_first_result_ms",
            "cpy_new_set_first_result_ms",
            "new set -> first result",
        ),
        (
            "new_set_preinit_first_result_ms",
            "cpy_new_set_first_result_ms",
            "new set -> first result, both pre-initialised",
        ),
        (
            "fresh_process_first_result_ms",
            "cpy_fresh_process_first_result_ms",
            "fresh process -> first result",
        ),
        (
            "fresh_process_interleaved_ms",
            "cpy_fresh_process_interleaved_ms",
            "fresh process -> first result, the two interleaved",
        ),
        (
            "warm_new_sandbox_first_result_ms",
            "cpy_warm_new_instance_call_ms",
            "new sandbox/instance + call, warm",
        ),
        (
            "session_call_ms",
            "cpy_call_ms",
            "a call on a live instance",
        ),
    ];
    let mut side = String::new();
    for (ours, theirs, label) in ratios {
        if let (Some(a), Some(b)) = (report.median(ours), report.median(theirs)) {
            side.push_str(&format!(
                "| {label} | {} ms | {} ms | {:.1}x |\n",
                fmt(a),
                fmt(b),
                b / a
            ));
            obj.insert(
                format!("speedup_vs_cpy_{}", ours.trim_end_matches("_ms")),
                json!(b / a),
            );
        }
    }
    if !side.is_empty() {
        md.push_str(
            "\n## Side by side with componentize-py 0.25.1\n\n\
             | | eryx | componentize-py | componentize-py / eryx |\n|---|---:|---:|---:|\n",
        );
        md.push_str(&side);
    }
    if !report.notes.is_empty() {
        md.push_str("\nNotes:\n");
        for n in &report.notes {
            md.push_str(&format!("- {n}\n"));
        }
    }
    obj.insert("machine".into(), json!(machine));
    obj.insert("date".into(), json!(date));
    obj.insert("quick".into(), json!(ctx.quick));
    std::fs::write(ctx.out.join("report.md"), &md)?;
    std::fs::write(
        ctx.out.join("report.json"),
        serde_json::to_vec_pretty(&Value::Object(obj))?,
    )?;
    println!("{md}");
    eprintln!(
        "[bench] wrote {} and report.json",
        ctx.out.join("report.md").display()
    );
    let _ = &ctx.root;
    Ok(())
}

/// Wheels that `cargo xtask bench` builds into `target/wheels` with
/// `cargo xtask wheel` (numpy, pydantic and its dependencies), by file-name
/// prefix; `None` if one is missing (the rows are then skipped, with a note).
fn package_wheels(ctx: &Ctx, prefixes: &[&str]) -> Option<Vec<PathBuf>> {
    let dir = ctx.root.join("target/wheels");
    let all: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    prefixes
        .iter()
        .map(|p| {
            all.iter()
                .filter(|w| {
                    w.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(p) && n.ends_with(".whl"))
                })
                .max()
                .cloned()
        })
        .collect()
}

/// Runs the CLI with `wheels` and `extra` arguments on `code`; returns the
/// whole process's wall time and what the code printed.
/// Runs the CLI once; a set seen for the first time runs without waiting
/// for its snapshot (the default), and none is built in the background
/// here, so that no measurement competes with one.
fn cli_run(
    ctx: &Ctx,
    cache: &Path,
    wheels: &[PathBuf],
    extra: &[&str],
    code: &str,
) -> Result<(f64, String)> {
    cli_run_with(ctx, cache, wheels, extra, code, "never")
}

/// [`cli_run`] with `ERYX_SNAPSHOT=snapshot`.
fn cli_run_with(
    ctx: &Ctx,
    cache: &Path,
    wheels: &[PathBuf],
    extra: &[&str],
    code: &str,
    snapshot: &str,
) -> Result<(f64, String)> {
    let cli = ctx.exe.with_file_name("eryx");
    let mut cmd = Command::new(&cli);
    cmd.arg("--bundle").arg(&ctx.bundle);
    for w in wheels {
        cmd.arg("--package").arg(w);
    }
    cmd.args(extra)
        .args(["-c", code])
        .env("ERYX_CACHE_DIR", cache)
        .env("ERYX_SNAPSHOT", snapshot);
    let start = Instant::now();
    let out = cmd
        .output()
        .with_context(|| format!("running {}", cli.display()))?;
    let wall = ms(start);
    if !out.status.success() {
        bail!("eryx failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok((wall, String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// The milliseconds a snippet printed as its last line.
fn printed_ms(text: &str) -> Result<f64> {
    text.lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .with_context(|| format!("expected a number of milliseconds, got {text:?}"))
}

const IMPORT_NUMPY: &str =
    "import time\nt = time.perf_counter()\nimport numpy\nprint((time.perf_counter() - t) * 1000)";
const IMPORT_PYDANTIC: &str = "import time\nt = time.perf_counter()\nimport pydantic\nfrom pydantic import BaseModel\nprint((time.perf_counter() - t) * 1000)";
/// numpy CPU work, the same code in the sandbox and in native CPython.
const NUMPY_WORK: &str = r#"
import time, numpy as np
rng = np.random.default_rng(1)
a = rng.standard_normal((200, 200)); b = rng.standard_normal((200, 200))
t = time.perf_counter(); c = a @ b; mm = (time.perf_counter() - t) * 1000
x = rng.standard_normal(1_000_000)
t = time.perf_counter(); np.sort(x); st = (time.perf_counter() - t) * 1000
print(mm); print(st)
"#;

/// Rows for real packages: numpy's set, `import numpy`/`import pydantic`
/// with and without pre-importing, numpy CPU work against native numpy.
fn packages(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let Some(numpy) = package_wheels(ctx, &["numpy-"]) else {
        report.notes.push(
            "package rows skipped: no numpy wheel in target/wheels (cargo xtask wheel numpy)"
                .into(),
        );
        return Ok(());
    };
    let pydantic = package_wheels(
        ctx,
        &[
            "pydantic-",
            "pydantic_core-",
            "typing_extensions-",
            "typing_inspection-",
            "annotated_types-",
        ],
    );
    let runs = if ctx.quick { 3 } else { 7 };
    // Linking numpy's set: its 19 extension modules, read from the wheel.
    {
        use std::io::Read;
        let bundle = eryx_linker::Bundle::open(&ctx.bundle)?;
        let mut zip = zip::ZipArchive::new(std::fs::File::open(&numpy[0])?)?;
        let mut exts = Vec::new();
        for i in 0..zip.len() {
            let mut e = zip.by_index(i)?;
            let name = e.name().to_string();
            if name.ends_with(".so") {
                let mut bytes = Vec::new();
                e.read_to_end(&mut bytes)?;
                exts.push(eryx_linker::Extension::new(
                    format!("{}/{name}", eryx_linker::SITE_PACKAGES),
                    bytes,
                )?);
            }
        }
        let mut times = Vec::new();
        for _ in 0..runs {
            let start = Instant::now();
            eryx_linker::link_with_extensions(&bundle, &exts)?;
            times.push(ms(start));
        }
        report.add(
            "link_numpy_set_ms",
            &format!("link: base + numpy's {} extension modules", exts.len()),
            "ms",
            times,
        );
    }
    // A new numpy set: a private, empty cache each time (nothing compiled
    // before: the worst case), without and with pre-initialisation.
    let mut cold = Vec::new();
    for _ in 0..if ctx.quick { 1 } else { 3 } {
        let cache = tempfile::tempdir()?;
        let (wall, out) = cli_run(
            ctx,
            cache.path(),
            &numpy,
            &["--no-preinit"],
            "import numpy; print(numpy.ones(3).sum())",
        )?;
        if out.trim() != "3.0" {
            bail!("numpy printed {out:?}");
        }
        cold.push(wall);
    }
    report.add(
        "numpy_new_set_cold_ms",
        "new numpy set -> first result (empty cache, no preinit)",
        "ms",
        cold,
    );
    // numpy in a set that is new (numpy with a new small extension) on
    // the shared cache, where numpy's and the base's library modules are
    // compiled already: what a user adding an extension next to numpy waits.
    // The warm-up runs without the snapshot, as a user's first numpy run
    // does: with numpy's snapshot in the cache (the rows below), the run
    // would take it and leave numpy's own modules uncompiled (the snapshot's
    // modules are others: wizer's instrumentation and snapshot change the
    // bytes of those with their own globals), and the measured set would
    // compile them (4.2, 0.7 and 0.6 MB; +1.5 s) instead of only its own.
    {
        cli_run(ctx, &ctx.cache, &numpy, &["--no-preinit"], "import numpy")?;
        let mut wall = Vec::new();
        for i in 0..if ctx.quick { 1 } else { 3 } {
            let name = fresh_name();
            let dir = tempfile::tempdir()?;
            let pkg = dir.path().join(format!("numpy-set-{i}"));
            new_set_package(ctx, &pkg, &name)?;
            let mut wheels = numpy.clone();
            wheels.push(pkg);
            let (t, out) = cli_run(
                ctx,
                &ctx.cache,
                &wheels,
                &[],
                "import numpy; print(numpy.ones(3).sum())",
            )?;
            if out.trim() != "3.0" {
                bail!("numpy printed {out:?}");
            }
            wall.push(t);
        }
        report.add(
            "numpy_new_set_ms",
            "new set with numpy -> first result (numpy + a new extension; fresh process, base and numpy modules compiled before)",
            "ms",
            wall,
        );
    }
    let samples = |key: &str,
                   label: &str,
                   wheels: &[PathBuf],
                   extra: &[&str],
                   code: &str,
                   report: &mut Report|
     -> Result<()> {
        // Warm the cache, with the set's snapshot.
        cli_run_with(ctx, &ctx.cache, wheels, extra, code, "wait")?;
        let mut wall = Vec::new();
        let mut inner = Vec::new();
        for _ in 0..runs {
            let (w, out) = cli_run(ctx, &ctx.cache, wheels, extra, code)?;
            wall.push(w);
            inner.push(printed_ms(&out)?);
        }
        report.add(
            &format!("{key}_process_ms"),
            &format!("{label}: fresh process, whole"),
            "ms",
            wall,
        );
        report.add(
            &format!("{key}_import_ms"),
            &format!("{label}: the import itself"),
            "ms",
            inner,
        );
        Ok(())
    };
    samples(
        "import_numpy",
        "`import numpy`",
        &numpy,
        &[],
        IMPORT_NUMPY,
        report,
    )?;
    samples(
        "import_numpy_preimported",
        "`import numpy`, --preimport numpy",
        &numpy,
        &["--preimport", "numpy"],
        IMPORT_NUMPY,
        report,
    )?;
    if let Some(pyd) = &pydantic {
        samples(
            "import_pydantic",
            "`import pydantic`",
            pyd,
            &[],
            IMPORT_PYDANTIC,
            report,
        )?;
        samples(
            "import_pydantic_preimported",
            "`import pydantic`, --preimport pydantic",
            pyd,
            &["--preimport", "pydantic"],
            IMPORT_PYDANTIC,
            report,
        )?;
    }
    // numpy CPU work in the sandbox, and the same code on native numpy
    // (PyPI's manylinux wheel in the bench venv, if it can be installed).
    let mut mm = Vec::new();
    let mut sort = Vec::new();
    for _ in 0..runs {
        let (_, out) = cli_run(ctx, &ctx.cache, &numpy, &[], NUMPY_WORK)?;
        let v: Vec<f64> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
        if let [a, b] = v[..] {
            mm.push(a);
            sort.push(b);
        }
    }
    report.add(
        "numpy_matmul_200_sandbox_ms",
        "numpy 200x200 matmul, sandbox",
        "ms",
        mm,
    );
    report.add(
        "numpy_sort_1e6_sandbox_ms",
        "numpy sort of 1e6 floats, sandbox",
        "ms",
        sort,
    );
    let venv_python = ctx.root.join("target/bench/venv/bin/python");
    let native_ok = venv_python.is_file()
        && (Command::new(&venv_python)
            .args(["-c", "import numpy"])
            .status()
            .is_ok_and(|s| s.success())
            || Command::new(&venv_python)
                .args(["-m", "pip", "install", "--quiet", "numpy==2.4.6"])
                .status()
                .is_ok_and(|s| s.success()));
    if native_ok {
        let mut mm = Vec::new();
        let mut sort = Vec::new();
        for _ in 0..runs {
            let out = Command::new(&venv_python)
                .args(["-c", NUMPY_WORK])
                .output()?;
            let text = String::from_utf8_lossy(&out.stdout);
            let v: Vec<f64> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
            if let [a, b] = v[..] {
                mm.push(a);
                sort.push(b);
            }
        }
        report.add(
            "numpy_matmul_200_native_ms",
            "numpy 200x200 matmul, native numpy (OpenBLAS)",
            "ms",
            mm,
        );
        report.add(
            "numpy_sort_1e6_native_ms",
            "numpy sort of 1e6 floats, native numpy",
            "ms",
            sort,
        );
    } else {
        report.notes.push(
            "native numpy was not measured (no bench venv or pip install numpy failed)".into(),
        );
    }
    Ok(())
}
