//! Running subprocesses: every command line is printed before it runs, and
//! a failure reports the command, its exit status and its stderr.

use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result, bail};

use crate::progress;

/// The command line, for messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = String::new();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            let k = k.to_string_lossy();
            if k.starts_with("CARGO_TARGET") || k.starts_with("RUSTC") || k == "CARGO_TARGET_DIR" {
                s.push_str(&format!("{k}={} ", v.to_string_lossy()));
            }
        }
    }
    s.push_str(&cmd.get_program().to_string_lossy());
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.contains(' ') || a.is_empty() {
            s.push_str(&format!(" '{a}'"));
        } else {
            s.push(' ');
            s.push_str(&a);
        }
    }
    s
}

/// Runs `cmd` with its output streaming to our stderr; fails with `what`.
pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<()> {
    progress!("{what}: {}", describe(cmd));
    let status = cmd
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .with_context(|| format!("{what}: cannot start `{}`", describe(cmd)))?;
    if !status.success() {
        bail!("{what} failed ({status}): `{}`", describe(cmd));
    }
    Ok(())
}

/// Runs `cmd` capturing its output; fails with `what`, the status and stderr.
pub(crate) fn capture(cmd: &mut Command, what: &str) -> Result<Output> {
    let out = cmd
        .output()
        .with_context(|| format!("{what}: cannot start `{}`", describe(cmd)))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): `{}`\n{}",
            out.status,
            describe(cmd),
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    Ok(out)
}
