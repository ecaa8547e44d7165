//! The `eryx` CLI, run as a process against the real bundle.

use std::process::Command;

use crate::support::{eryx, eryx_exe, example, text};

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
    let out = Command::new(eryx_exe())
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
    let out = Command::new(eryx_exe())
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

#[test]
fn state_file_carries_a_session_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.bin");
    let state = state.to_str().unwrap();
    let out = eryx(&["--state", state, "-c", "x = 41"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = eryx(&["--state", state, "-c", "print(x + 1)"], None);
    assert_eq!(text(&out.stdout), "42\n");
    std::fs::write(dir.path().join("s.bin"), b"garbage").unwrap();
    let out = eryx(&["--state", state, "-c", "print(1)"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("invalid snapshot: not an eryx snapshot"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn json_output_is_one_object() {
    let out = eryx(&["--json", "-c", "print('hi')\n6 * 7"], None);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["stdout"], "hi\n");
    assert_eq!(v["value"], "42");
    assert_eq!(v["error"], serde_json::Value::Null);
    assert_eq!(v["truncated"], false);
    assert!(v["duration_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        v["preinitialised"], true,
        "the test CLI waits for snapshots"
    );
    let out = eryx(&["--json", "-c", "raise KeyError('k')"], None);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["type"], "KeyError");
}

#[test]
fn timeout_and_memory_flags_apply() {
    let out = eryx(&["--timeout", "0.3", "-c", "while True: pass"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("timed out after 300ms"),
        "{}",
        text(&out.stderr)
    );
    let out = eryx(
        &["--memory", "64M", "-c", "b = bytearray(100 * 1024 * 1024)"],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).ends_with("MemoryError\n"),
        "{}",
        text(&out.stderr)
    );
    let out = eryx(&["--memory", "12Q", "-c", "1"], None);
    assert_eq!(out.status.code(), Some(2));
    // Times take a unit; a wrong one, or one too long, is a usage error
    // (exit 2) that says what to give, not a panic.
    let out = eryx(&["--timeout", "250ms", "-c", "while True: pass"], None);
    assert!(
        text(&out.stderr).contains("timed out after 250ms"),
        "{}",
        text(&out.stderr)
    );
    for (bad, says) in [("2x", "unknown unit `x`"), ("1e20", "too long a time")] {
        let out = eryx(&["--timeout", bad, "-c", "1"], None);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains(says), "{}", text(&out.stderr));
    }
}

#[test]
fn repl_keeps_the_session_and_prints_values() {
    let out = eryx(
        &["repl"],
        Some("def f(x):\n    return x * 2\n\nf(21)\n1/0\nf(1)\n"),
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "42\n2\n");
    assert!(text(&out.stderr).contains("ZeroDivisionError: division by zero"));
}

#[test]
fn raw_writes_to_fd_1_and_2_are_the_runs_output_in_order() {
    // Through the call's output (capped like `print`'s), not to the CLI's
    // descriptors directly; they were dropped before.
    let out = eryx(
        &[
            "-c",
            "import os\nprint('py')\nos.write(1, b'raw-out\\n')\nos.write(2, b'raw-err\\n')\nprint('ok')",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "py\nraw-out\nok\n");
    assert_eq!(text(&out.stderr), "raw-err\n");
}

#[test]
fn package_flag_links_the_extensions_it_holds() {
    let ext = example("fastsum");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&ext, dir.path().join("fastsum.cpython-314-wasm32-wasi.so")).unwrap();
    let out = eryx(
        &[
            "--package",
            dir.path().to_str().unwrap(),
            "-c",
            "import fastsum; print(fastsum.fast_sum(100))",
        ],
        None,
    );
    assert_eq!(text(&out.stdout), "4950\n", "{}", text(&out.stderr));
}

/// By default (`ERYX_SNAPSHOT` unset) a new extension set runs at once
/// without a snapshot, and a detached `eryx` process builds the snapshot
/// for the next run.
#[test]
fn a_new_set_runs_at_once_and_its_snapshot_is_built_for_the_next_run() {
    let name = crate::support::fresh_extension_name('c');
    let package = crate::support::renamed_fastsum_package(&name);
    let cache = crate::support::private_cache();
    let code = format!("import {name}\nprint({name}.fast_sum(100))");
    // Returns whether the run was pre-initialised.
    let run = || -> bool {
        let out = crate::support::eryx_command(cache.path())
            .env_remove("ERYX_SNAPSHOT")
            .arg("--package")
            .arg(package.path())
            .args(["--json", "-c", &code])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["stdout"], "4950\n");
        v["preinitialised"].as_bool().expect("a boolean")
    };
    assert!(!run(), "the first run does not wait for the snapshot");
    // A detached process builds it; a later run uses it.
    let started = std::time::Instant::now();
    while !run() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(300),
            "no snapshot after 300 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let started = std::time::Instant::now();
    while std::fs::read_dir(cache.path())
        .unwrap()
        .flatten()
        .any(|e| e.path().extension().is_some_and(|x| x == "lock"))
    {
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // A bad setting is named.
    let out = crate::support::eryx_command(cache.path())
        .env("ERYX_SNAPSHOT", "sometimes")
        .args(["-c", "pass"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("ERYX_SNAPSHOT=sometimes is not one of"),
        "{}",
        text(&out.stderr)
    );
}

/// The CLI's REPL on pipes, driven a line at a time while it runs: what it
/// printed so far is collected as it comes (stdout and stderr apart).
struct LiveRepl {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl LiveRepl {
    fn start(args: &[&str]) -> LiveRepl {
        let mut child = crate::support::spawn_eryx(args);
        let stdin = child.stdin.take();
        let collect = |mut from: Box<dyn std::io::Read + Send>| {
            let into = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let to = into.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = from.read(&mut buf) {
                    to.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
            into
        };
        let stdout = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        LiveRepl {
            child,
            stdin,
            stdout,
            stderr,
        }
    }

    fn send(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    fn stdout(&self) -> String {
        text(&self.stdout.lock().unwrap())
    }

    fn stderr(&self) -> String {
        text(&self.stderr.lock().unwrap())
    }

    /// Waits (up to two minutes: a busy machine) until `ready` holds for
    /// (stdout, stderr).
    fn wait_until(&self, what: &str, ready: impl Fn(&str, &str) -> bool) {
        let start = std::time::Instant::now();
        while !ready(&self.stdout(), &self.stderr()) {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(120),
                "the REPL never showed {what}; stdout {:?}, stderr {:?}",
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Waits until the REPL has shown its `>>> ` prompt `n` times (with
    /// piped input it prompts on stderr): it has run every cell before.
    fn wait_for_prompt(&self, n: usize) {
        self.wait_until(&format!("prompt number {n}"), |_, err| {
            err.matches(">>> ").count() >= n
        });
    }

    /// Ends the input; the exit status, stdout and stderr.
    fn finish(mut self) -> (Option<i32>, String, String) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        // The readers end at the pipes' end of file, which has come.
        self.wait_until("the end of its output", |_, _| {
            std::sync::Arc::strong_count(&self.stdout) == 1
                && std::sync::Arc::strong_count(&self.stderr) == 1
        });
        (status.code(), self.stdout(), self.stderr())
    }
}

#[test]
fn input_in_the_repl_reads_the_line_typed_after_its_prompt() {
    let mut repl = LiveRepl::start(&["repl"]);
    repl.send("name = input('name? ')\n");
    // The prompt shows while the cell waits (output is live in the REPL).
    repl.wait_until("input()'s prompt", |out, _| out == "name? ");
    repl.send("Ada\n");
    repl.wait_for_prompt(2);
    repl.send("print(name.upper())\n");
    let (status, out, err) = repl.finish();
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(out, "name? ADA\n");
}

#[test]
fn a_cell_stopped_while_input_waits_leaves_the_next_line_to_the_repl() {
    // wasmtime-wasi's own stdin reader left its read waiting after the
    // time limit, and that read took the next line meant for the prompt.
    let mut repl = LiveRepl::start(&["--timeout", "1", "repl"]);
    repl.send("input('waiting')\n");
    repl.wait_until("input()'s prompt", |out, _| out == "waiting");
    repl.wait_for_prompt(2);
    repl.send("print('after')\n");
    let (status, out, err) = repl.finish();
    assert!(err.contains("timed out"), "{err}");
    assert_eq!(out, "waitingafter\n", "{err}");
    assert_eq!(status, Some(0), "{err}");
}

#[test]
fn ctrl_c_in_the_repl_stops_the_running_cell_and_the_repl_goes_on() {
    let mut repl = LiveRepl::start(&["repl"]);
    repl.send("i = 0\nwhile True:\n    i += 1\n    if i == 1: print('spinning', flush=True)\n\n");
    repl.wait_until("the loop running", |out, _| out == "spinning\n");
    let pid = rustix::process::Pid::from_child(&repl.child);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    repl.wait_until("KeyboardInterrupt", |_, err| {
        err.contains("KeyboardInterrupt")
    });
    repl.send("print('alive')\n");
    let (status, out, err) = repl.finish();
    assert_eq!(out, "spinning\nalive\n", "{err}");
    assert_eq!(status, Some(0), "{err}");
    // The stopped cell's session is gone (as after a time limit).
    assert!(err.contains("continuing in a fresh one"), "{err}");
}
