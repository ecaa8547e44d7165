//! The `eryx` CLI, run as a process against the real bundle.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bundle() -> PathBuf {
    let dir = std::env::var_os("ERYX_BUNDLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/dist"));
    assert!(
        dir.join("manifest.json").is_file(),
        "no bundle at {}: run `cargo xtask dist` (or `cargo xtask test`)",
        dir.display()
    );
    dir
}

fn eryx(args: &[&str], stdin: Option<&str>) -> Output {
    let cache = std::env::var_os("ERYX_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/eryx-cache"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_eryx"));
    cmd.arg("--bundle")
        .arg(bundle())
        .args(args)
        .env("ERYX_CACHE_DIR", cache)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn dash_c_prints_to_stdout_and_stderr_separately() {
    let out = eryx(
        &[
            "-c",
            "import json,sys; print(json.dumps({'a':[1,2]})); print('e', file=sys.stderr)",
        ],
        None,
    );
    assert_eq!(text(&out.stdout), "{\"a\": [1, 2]}\n");
    assert_eq!(text(&out.stderr), "e\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn code_from_stdin() {
    let out = eryx(&[], Some("print(sum(range(10)))\n"));
    assert_eq!(text(&out.stdout), "45\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn run_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prog.py");
    std::fs::write(&file, "def f(x):\n    return x * 2\nprint(f(21))\n").unwrap();
    let out = eryx(&["run", file.to_str().unwrap()], None);
    assert_eq!(text(&out.stdout), "42\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn python_exception_exits_1_with_traceback() {
    let out = eryx(&["-c", "print('partial')\nraise ValueError('boom')"], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "partial\n");
    let err = text(&out.stderr);
    assert!(
        err.starts_with("Traceback (most recent call last):\n"),
        "{err}"
    );
    assert!(err.ends_with("ValueError: boom\n"), "{err}");
}

#[test]
fn missing_bundle_exits_2_naming_the_fix() {
    let out = Command::new(env!("CARGO_BIN_EXE_eryx"))
        .args(["-c", "print(1)"])
        .env_remove("ERYX_BUNDLE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cargo xtask dist"),
        "{}",
        text(&out.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_eryx"))
        .arg("--bundle")
        .arg(dir.path())
        .args(["-c", "print(1)"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("no eryx bundle at") && err.contains("cargo xtask dist"),
        "{err}"
    );
}

#[test]
fn unreadable_file_exits_2() {
    let out = eryx(&["run", "/nonexistent/prog.py"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read /nonexistent/prog.py"));
}
