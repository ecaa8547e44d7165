//! The comparison: the same work with componentize-py 0.25.1, which builds
//! a whole new component (and pre-initialises it) for every combination of
//! native extensions. Its components are run here with wasmtime and WASI
//! preview 2, the same runtime eryx uses.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::json;
use wasmtime::component::{Component, InstancePre, Linker, ResourceTable, TypedFunc};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::{Ctx, Report, ms};

/// The world the comparison app implements: run code, return its stdout.
const WIT: &str = "package eryx:bench;

world app {
  export run: func(code: string) -> string;
}
";

/// The app: `exec` the code with stdout captured (what `execute` does).
/// A componentize-py component imports at build time (pre-initialisation)
/// what it will use, so the app imports the kernels' modules and, per set,
/// the extensions (`{imports}`).
const APP: &str = r#"import io
import json
import re
import sys
import time
import traceback
import wit_world
{imports}


class WitWorld(wit_world.WitWorld):
    def run(self, code: str) -> str:
        out = io.StringIO()
        saved = sys.stdout
        sys.stdout = out
        try:
            exec(compile(code, "<bench>", "exec"), {"__name__": "__main__"})
        except BaseException:
            return "ERROR: " + traceback.format_exc()
        finally:
            sys.stdout = saved
        return out.getvalue()
"#;

struct Host {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

fn engine() -> Result<Engine> {
    engine_with_epochs(false)
}

/// With `epochs`, wasmtime checks the epoch counter at every function entry
/// and loop back edge: what a host needs to stop runaway guest code at a
/// time limit (eryx always runs with it).
fn engine_with_epochs(epochs: bool) -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(epochs);
    Engine::new(&config).map_err(|e| anyhow::anyhow!("{e:?}"))
}

fn pre(engine: &Engine, component: &Component) -> Result<InstancePre<Host>> {
    let mut linker: Linker<Host> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    linker
        .instantiate_pre(component)
        .map_err(|e| anyhow::anyhow!("{e:?}"))
}

/// The benchmark app's `run(code) -> stdout` export.
type RunFunc = TypedFunc<(String,), (String,)>;

/// A new instance in its own store, and its `run` export.
fn instance(engine: &Engine, pre: &InstancePre<Host>) -> Result<(Store<Host>, RunFunc)> {
    let mut store = Store::new(
        engine,
        Host {
            ctx: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        },
    );
    // With epoch interruption on: a deadline that never comes (the checks
    // are what is measured); without, it is not consulted.
    store.set_epoch_deadline(u64::MAX / 2);
    let instance = pre
        .instantiate(&mut store)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let run = instance
        .get_typed_func::<(String,), (String,)>(&mut store, "run")
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok((store, run))
}

/// Instantiates and calls `run(code)` once; the stdout of the code.
fn call_new(engine: &Engine, pre: &InstancePre<Host>, code: &str) -> Result<String> {
    let (mut store, run) = instance(engine, pre)?;
    let (out,) = run
        .call(&mut store, (code.to_owned(),))
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(out)
}

/// The arguments of `child cpy-first`.
#[derive(clap::Args)]
pub(crate) struct FirstArgs {
    /// A component to compile.
    #[arg(long, conflicts_with = "cwasm", required_unless_present = "cwasm")]
    wasm: Option<PathBuf>,
    /// A precompiled component to load.
    #[arg(long)]
    cwasm: Option<PathBuf>,
    /// The code to run.
    #[arg(long)]
    code: String,
    /// Compile and run with epoch interruption on (with `--wasm`, or a
    /// `--cwasm` made by such an engine), as eryx always runs.
    #[arg(long)]
    epochs: bool,
}

/// `child cpy-first --wasm FILE | --cwasm FILE --code CODE [--epochs]`: in
/// a fresh process, compile (or load precompiled) and run once.
pub(crate) fn child_first(args: &FirstArgs) -> Result<()> {
    let code = &args.code;
    let engine = engine_with_epochs(args.epochs)?;
    let start = Instant::now();
    let component = if let Some(wasm) = &args.wasm {
        Component::from_file(&engine, wasm).map_err(|e| anyhow::anyhow!("{e:?}"))?
    } else {
        let cwasm = args.cwasm.as_ref().context("--cwasm")?;
        // SAFETY: the file was written by `Component::serialize` of this
        // same binary moments ago in this benchmark run (see `measure`).
        unsafe { Component::deserialize_file(&engine, cwasm) }
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
    };
    let compile_ms = ms(start);
    let pre = pre(&engine, &component)?;
    let out = call_new(&engine, &pre, code)?;
    println!(
        "{}",
        json!({"stdout": out, "compile_ms": compile_ms, "in_process_ms": ms(start),
               "peak_rss_mib": crate::peak_rss_mib()})
    );
    Ok(())
}

/// Runs `componentize-py` for the app with `paths` on its Python path;
/// returns the wall time and its peak RSS (MiB, when `/usr/bin/time` is there).
fn componentize(command: &Path, work: &Path, paths: &[&Path], out: &Path) -> Result<(f64, f64)> {
    let time = Path::new("/usr/bin/time");
    let mut cmd = if time.is_file() {
        let mut c = Command::new(time);
        c.args(["-f", "%M"]).arg(command);
        c
    } else {
        Command::new(command)
    };
    cmd.current_dir(work)
        .args(["-d", "wit", "-w", "app", "componentize", "app", "-p", "app"]);
    for p in paths {
        cmd.arg("-p").arg(p);
    }
    cmd.arg("-o").arg(out);
    let start = Instant::now();
    let output = cmd.output().context("running componentize-py")?;
    let wall = ms(start);
    if !output.status.success() {
        bail!(
            "componentize-py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let rss = String::from_utf8_lossy(&output.stderr)
        .lines()
        .rev()
        .find_map(|l| l.trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0);
    Ok((wall, rss))
}

fn run_cpy_child(args: &[&str]) -> Result<(serde_json::Value, f64)> {
    let start = Instant::now();
    let out = Command::new(std::env::current_exe()?)
        .args(["child", "cpy-first"])
        .args(args)
        .output()?;
    let wall = ms(start);
    if !out.status.success() {
        bail!(
            "componentize-py component run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok((serde_json::from_slice(&out.stdout)?, wall))
}

pub(crate) fn measure(ctx: &Ctx, command: &Path, report: &mut Report) -> Result<()> {
    let work = ctx.out.join("cpy");
    std::fs::create_dir_all(work.join("wit"))?;
    std::fs::create_dir_all(work.join("app"))?;
    std::fs::write(work.join("wit/app.wit"), WIT)?;
    let write_app =
        |imports: &str| std::fs::write(work.join("app/app.py"), APP.replace("{imports}", imports));
    write_app("")?;
    let runs = if ctx.quick { 1 } else { 3 };

    // New extension set -> first result: build, compile, instantiate, run.
    let (mut totals, mut builds, mut rss) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        let name = crate::fresh_name();
        let dir = work.join(format!("set{i}"));
        let _ = std::fs::remove_dir_all(&dir);
        crate::new_set_package(ctx, &dir, &name)?;
        let wasm = work.join(format!("set{i}.wasm"));
        write_app(&format!("import {name}, wordcount"))?;
        let (build_ms, build_rss) = componentize(command, &work, &[&dir], &wasm)?;
        let code = crate::new_set_code(&name);
        let (v, wall) = run_cpy_child(&["--wasm", path_str(&wasm)?, "--code", &code])?;
        if v["stdout"].as_str().map(str::trim) != Some(crate::NEW_SET_EXPECTED) {
            bail!("componentize-py new set printed {}", v["stdout"]);
        }
        totals.push(build_ms + wall);
        builds.push(build_ms);
        rss.push(build_rss.max(v["peak_rss_mib"].as_f64().unwrap_or(f64::NAN)));
        let _ = std::fs::remove_file(&wasm);
    }
    report.add(
        "cpy_new_set_first_result_ms",
        "componentize-py: new set -> first result (build + compile + run)",
        "ms",
        totals,
    );
    report.add(
        "cpy_build_ms",
        "componentize-py: building the component",
        "ms",
        builds,
    );
    report.add(
        "cpy_new_set_peak_rss_mib",
        "componentize-py: peak RSS while building a new set",
        "MiB",
        rss,
    );

    // The base app, compiled once and serialised: fresh-process start-up.
    write_app("")?;
    let base = work.join("base.wasm");
    componentize(command, &work, &[], &base)?;
    let engine = engine()?;
    let start = Instant::now();
    let component = Component::from_file(&engine, &base).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    report.add(
        "cpy_compile_ms",
        "componentize-py: compiling its component (wasmtime)",
        "ms",
        vec![ms(start)],
    );
    let cwasm = work.join("base.cwasm");
    std::fs::write(
        &cwasm,
        component
            .serialize()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?,
    )?;
    let fresh_once = || -> Result<f64> {
        let (v, wall) = run_cpy_child(&["--cwasm", path_str(&cwasm)?, "--code", "print(1 + 1)"])?;
        if v["stdout"] != "2\n" {
            bail!("componentize-py printed {}", v["stdout"]);
        }
        Ok(wall)
    };
    let mut fresh = Vec::new();
    for _ in 0..10 {
        fresh.push(fresh_once()?);
    }
    report.add(
        "cpy_fresh_process_first_result_ms",
        "componentize-py: fresh process -> first result (precompiled)",
        "ms",
        fresh,
    );
    // The two side by side, one run of each in turn: the machine's state
    // drifts between the rows above, measured minutes apart (on this VM a
    // fresh process of either moved by 20 % within an hour).
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..if ctx.quick { 10 } else { 30 } {
        ours.push(crate::eryx_fresh_once(ctx)?);
        theirs.push(fresh_once()?);
    }
    report.add(
        "fresh_process_interleaved_ms",
        "fresh process -> first result (`eryx -c`), interleaved with componentize-py's",
        "ms",
        ours,
    );
    report.add(
        "cpy_fresh_process_interleaved_ms",
        "componentize-py: fresh process -> first result, interleaved with eryx's",
        "ms",
        theirs,
    );

    let pre = pre(&engine, &component)?;
    let runs = if ctx.quick { 5 } else { 20 };
    let mut warm = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        call_new(&engine, &pre, "1 + 1")?;
        warm.push(ms(start));
    }
    report.add(
        "cpy_warm_new_instance_call_ms",
        "componentize-py: new instance + call, warm process",
        "ms",
        warm,
    );

    // Calls on one live instance.
    let (mut store, run) = instance(&engine, &pre)?;
    let mut calls = Vec::new();
    for _ in 0..if ctx.quick { 3 } else { 10 } {
        let start = Instant::now();
        for _ in 0..100 {
            run.call(&mut store, ("x = 1".to_owned(),))
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        }
        calls.push(ms(start) / 100.0);
    }
    report.add(
        "cpy_call_ms",
        "componentize-py: a call on a live instance",
        "ms",
        calls,
    );

    // CPU-bound kernels in the componentize-py component (best of three
    // even in --quick, as eryx's).
    let repeats = if ctx.quick { 3 } else { 5 };
    run_kernels(
        report,
        &mut store,
        &run,
        repeats,
        "cpy_cpu",
        "componentize-py",
    )?;

    // The same kernels with a time limit's cost: the component compiled
    // with epoch interruption, a deadline that never comes.
    let engine = engine_with_epochs(true)?;
    let start = Instant::now();
    let component = Component::from_file(&engine, &base).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    eprintln!(
        "[bench] componentize-py's component compiled with epoch interruption ({:.0} ms)",
        ms(start)
    );
    let epoch_pre = self::pre(&engine, &component)?;
    let (mut store, run) = instance(&engine, &epoch_pre)?;
    run_kernels(
        report,
        &mut store,
        &run,
        repeats,
        "cpy_epoch_cpu",
        "componentize-py with epoch interruption on",
    )
}

/// Runs the CPU kernels in an instance; one row per kernel, keyed
/// `{key}_{name}_ms`.
fn run_kernels(
    report: &mut Report,
    store: &mut Store<Host>,
    run: &RunFunc,
    repeats: usize,
    key: &str,
    who: &str,
) -> Result<()> {
    let (out,) = run
        .call(&mut *store, (crate::kernels_code(repeats),))
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    for (name, t) in crate::parse_kernels(&out)? {
        report.add(
            &format!("{key}_{name}_ms"),
            &format!("kernel {name}: {who} (best of {repeats})"),
            "ms",
            vec![t],
        );
    }
    Ok(())
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str().context("non-UTF-8 path")
}
