//! The `eryx` CLI: run Python in the sandbox.
//!
//! `eryx -c CODE`, `eryx run FILE`, or code from stdin. Python's stdout and
//! stderr go to ours; exit 1 on a Python exception, 2 on a sandbox error.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use eryx_host::{Error, Sandbox};

/// Run untrusted Python 3.14 in a WebAssembly sandbox.
///
/// `eryx -c CODE`, `eryx run FILE` (or `eryx FILE`), or the code on stdin
/// (also `eryx -` / `eryx run -`).
#[derive(Parser)]
#[command(name = "eryx", version)]
struct Cli {
    /// The dist bundle (made by `cargo xtask dist`); defaults to $ERYX_BUNDLE.
    #[arg(long, env = "ERYX_BUNDLE")]
    bundle: Option<PathBuf>,
    /// Run this code.
    #[arg(short = 'c', value_name = "CODE", conflicts_with = "target")]
    code: Option<String>,
    /// `run FILE`, `FILE`, or `-` for stdin.
    #[arg(value_name = "run FILE", num_args = 0..=2)]
    target: Vec<String>,
}

fn source(cli: &Cli) -> anyhow::Result<String> {
    if let Some(code) = &cli.code {
        return Ok(code.clone());
    }
    let file = match cli.target.as_slice() {
        [] => None,
        [run, file] if run == "run" => Some(file.as_str()),
        [file] if file != "run" => Some(file.as_str()),
        _ => anyhow::bail!("usage: eryx [--bundle DIR] (-c CODE | run FILE | FILE | -)"),
    };
    match file {
        Some(file) if file != "-" => {
            std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))
        }
        _ => {
            let mut code = String::new();
            std::io::stdin()
                .read_to_string(&mut code)
                .context("cannot read the code from stdin")?;
            Ok(code)
        }
    }
}

fn report(e: &(dyn std::error::Error + 'static)) {
    let mut msg = format!("eryx: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(&format!("\n  caused by: {s}"));
        source = s.source();
    }
    eprintln!("{msg}");
}

async fn run(cli: Cli) -> ExitCode {
    let code = match source(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("eryx: {e:#}");
            return ExitCode::from(2);
        }
    };
    let mut builder = Sandbox::builder();
    if let Some(bundle) = cli.bundle {
        builder = builder.bundle(bundle);
    }
    let mut sandbox = match builder.build().await {
        Ok(s) => s,
        Err(e) => {
            report(&e);
            return ExitCode::from(2);
        }
    };
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    let result = sandbox.execute(&code).await;
    let code = match result {
        Ok(out) => {
            let _ = stdout.write_all(out.stdout.as_bytes());
            let _ = stderr.write_all(out.stderr.as_bytes());
            if out.truncated {
                let _ = writeln!(stderr, "eryx: output was truncated at the sandbox's cap");
            }
            ExitCode::SUCCESS
        }
        Err(Error::Python(e)) => {
            let _ = stdout.write_all(e.stdout.as_bytes());
            let _ = stderr.write_all(e.stderr.as_bytes());
            let _ = stderr.write_all(e.traceback.as_bytes());
            ExitCode::from(1)
        }
        Err(e) => {
            drop(stderr);
            report(&e);
            ExitCode::from(2)
        }
    };
    let _ = stdout.flush();
    code
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("eryx: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run(cli))
}
