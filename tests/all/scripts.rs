//! Python as `python3` runs it: exit statuses, `sys.argv`, `__file__`,
//! `-m`, asyncio and top-level `await` (API and CLI).

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use eryx_host::Error;

use crate::support::{builder, cache_dir, eryx, eryx_command, sandbox, text};

#[tokio::test]
async fn sys_exit_is_an_outcome_with_a_status_and_the_session_goes_on() {
    let mut sb = sandbox().await;
    let out = sb
        .execute("x = 1\nprint('before')\nimport sys\nsys.exit(3)\nprint('never')")
        .await
        .unwrap();
    assert_eq!((out.stdout.as_str(), out.exit_code), ("before\n", Some(3)));
    let out = sb.execute("raise SystemExit").await.unwrap();
    assert_eq!(out.exit_code, Some(0));
    let out = sb.execute("exit('bye')").await.unwrap();
    assert_eq!((out.stderr.as_str(), out.exit_code), ("bye\n", Some(1)));
    let out = sb.execute("quit(7)").await.unwrap();
    assert_eq!(out.exit_code, Some(7));
    assert_eq!(
        sb.execute("repr(exit)").await.unwrap().value.as_deref(),
        Some("'Use exit() or Ctrl-D (i.e. EOF) to exit'")
    );
    // Not an exit: no status; the session kept its variables.
    let out = sb.execute("x + 1").await.unwrap();
    assert_eq!((out.value.as_deref(), out.exit_code), (Some("2"), None));
}

#[tokio::test]
async fn os_exit_ends_the_process_with_its_status_and_a_fresh_session_follows() {
    // `os._exit` skips `finally` and `except` as in CPython: the process
    // ends there. It was reported as a trap with a wasm backtrace.
    let mut sb = sandbox().await;
    sb.execute("x = 1").await.unwrap();
    let err = sb
        .execute(
            "import os\nprint('before', flush=True)\ntry:\n    os._exit(0)\n\
             finally:\n    print('finally ran')",
        )
        .await
        .unwrap_err();
    let Error::Exited { code, output } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((*code, output.stdout.as_str()), (0, "before\n"));
    assert!(!err.session_survived());
    // Its own status (WASI's exit says only failure: the runtime's `_exit`
    // tells the host first).
    let err = sb.execute("import os; os._exit(7)").await.unwrap_err();
    assert!(matches!(err, Error::Exited { code: 7, .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the Python process exited with status 7 (os._exit or exit() in C); the session was reset"
    );
    // The next call runs in a fresh session.
    let Error::Python(e) = sb.execute("x").await.unwrap_err() else {
        panic!()
    };
    assert_eq!(e.type_name, "NameError");
    assert_eq!(
        sb.execute("6 * 7").await.unwrap().value.as_deref(),
        Some("42")
    );
}

#[tokio::test]
async fn scripts_get_argv_file_and_their_name_in_tracebacks() {
    let mut sb = sandbox().await;
    let argv = ["tool.py".to_string(), "--flag".into(), "x y".into()];
    let out = sb
        .run_script("import sys\nprint(sys.argv, __file__)", "tool.py", &argv)
        .await
        .unwrap();
    assert_eq!(out.stdout, "['tool.py', '--flag', 'x y'] tool.py\n");
    let Err(Error::Python(e)) = sb
        .run_script("def f():\n    raise KeyError('k')\nf()\n", "tool.py", &argv)
        .await
    else {
        panic!("expected a Python error")
    };
    assert!(
        e.traceback.contains("File \"tool.py\", line 2, in f"),
        "{}",
        e.traceback
    );
    assert!(
        e.traceback.contains("raise KeyError('k')"),
        "{}",
        e.traceback
    );
}

#[tokio::test]
async fn asyncio_runs_tasks_gather_sleep_and_timeouts() {
    let out = crate::support::stdout_of(
        "import asyncio, time\n\
         async def work(i):\n    await asyncio.sleep(0.05)\n    return i * 2\n\
         async def main():\n\
         \x20   t = time.monotonic()\n\
         \x20   r = await asyncio.gather(*(work(i) for i in range(5)))\n\
         \x20   task = asyncio.create_task(work(10))\n\
         \x20   r.append(await task)\n\
         \x20   try:\n        await asyncio.wait_for(asyncio.sleep(5), timeout=0.1)\n\
         \x20   except TimeoutError:\n        r.append('timeout')\n\
         \x20   return r, time.monotonic() - t < 2\n\
         print(asyncio.run(main()))\n\
         print(asyncio.run(work(4)))",
    )
    .await;
    assert_eq!(out, "([0, 2, 4, 6, 8, 20, 'timeout'], True)\n8\n");
}

#[tokio::test]
async fn top_level_await_in_session_cells() {
    let mut sb = sandbox().await;
    sb.execute(
        "import asyncio\nasync def double(x):\n    await asyncio.sleep(0.01)\n    return 2 * x",
    )
    .await
    .unwrap();
    let out = sb.execute("y = await double(21)\nprint(y)").await.unwrap();
    assert_eq!(out.stdout, "42\n");
    assert_eq!(
        sb.execute("await double(y)")
            .await
            .unwrap()
            .value
            .as_deref(),
        Some("84")
    );
    // The loop persists across cells: a task started in one cell finishes in the next.
    sb.execute("t = asyncio.ensure_future(double(5))")
        .await
        .unwrap();
    assert_eq!(
        sb.execute("await t").await.unwrap().value.as_deref(),
        Some("10")
    );
    let Err(Error::Python(e)) = sb.execute("await asyncio.sleep(0)\n1 / 0").await else {
        panic!()
    };
    assert_eq!(e.type_name, "ZeroDivisionError");
}

#[tokio::test]
async fn time_limit_and_cancellation_apply_while_a_coroutine_sleeps() {
    let mut sb = crate::support::short_lived_sandbox().await;
    let start = Instant::now();
    let err = sb
        .execute("import asyncio\nasync def f():\n    await asyncio.sleep(30)\nasyncio.run(f())")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let err = sb
        .execute("import asyncio\nawait asyncio.sleep(30)")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");

    let mut sb = builder().build().await.unwrap();
    let cancel = sb.cancel_handle();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    });
    let err = sb
        .execute("import asyncio\nawait asyncio.sleep(30)")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled { .. }), "{err:?}");
    assert_eq!(
        sb.execute("1 + 1").await.unwrap().value.as_deref(),
        Some("2")
    );
}

#[test]
fn cli_exit_statuses_follow_sys_exit() {
    let out = eryx(&["-c", "import sys; print('out'); sys.exit(3)"], None);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(3), "out\n".into())
    );
    let out = eryx(&["-c", "raise SystemExit('fatal: no input')"], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "fatal: no input\n");
    let out = eryx(&["-c", "exit()"], None);
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (Some(0), String::new())
    );
    let out = eryx(&["-c", "import sys; sys.exit(256 + 4)"], None);
    assert_eq!(out.status.code(), Some(4), "the low 8 bits, as on POSIX");
    let out = eryx(&["--json", "-c", "exit(5)"], None);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["exit_code"].as_i64(), out.status.code()),
        (Some(5), Some(5))
    );
    let out = eryx(&["repl"], Some("x = 4\nexit(x)\nprint('not reached')\n"));
    assert_eq!(out.status.code(), Some(4));
    // `os._exit` ends the run as it ends python3's: its status, no message.
    let out = eryx(
        &["-c", "import os; print('out', flush=True); os._exit(0)"],
        None,
    );
    assert_eq!(
        (out.status.code(), text(&out.stdout), text(&out.stderr)),
        (Some(0), "out\n".into(), String::new())
    );
    let out = eryx(&["-c", "import os; os._exit(3)"], None);
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (Some(3), String::new()),
        "its own status, though WASI's exit carries only failure (1)"
    );
    let out = eryx(&["-c", "import os; os._exit(256 + 4)"], None);
    assert_eq!(out.status.code(), Some(4), "the low 8 bits, as on POSIX");
    let out = eryx(&["--json", "-c", "import os; os._exit(0)"], None);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["exit_code"].as_i64(), out.status.code()),
        (Some(0), Some(0))
    );
    let out = eryx(
        &["repl"],
        Some("import os\nos._exit(0)\nprint('not reached')\n"),
    );
    assert_eq!(
        (out.status.code(), text(&out.stdout).contains("not reached")),
        (Some(0), false)
    );
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn cli_sets_argv_like_python3() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prog.py");
    std::fs::write(
        &file,
        "import sys\nprint(sys.argv[1:], __file__ == sys.argv[0])\n1/0\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    // Options after the file belong to the script.
    let out = eryx(&[path, "--json", "-c", "x"], None);
    assert_eq!(text(&out.stdout), "['--json', '-c', 'x'] True\n");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("File \"{path}\", line 3")), "{err}");
    let out = eryx(&["-c", "import sys; print(sys.argv)", "a", "--b"], None);
    assert_eq!(text(&out.stdout), "['-c', 'a', '--b']\n");
    let out = eryx(&["-", "a"], Some("import sys; print(sys.argv)"));
    assert_eq!(text(&out.stdout), "['-', 'a']\n");
}

#[test]
fn cli_runs_modules_with_dash_m() {
    let out = eryx(&["-m", "json.tool", "--help"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("--sort-keys"),
        "{}",
        text(&out.stdout)
    );
    let out = eryx(&["-m", "no_such_module_here"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("python3: No module named no_such_module_here"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_closed_stdout_ends_quietly() {
    for json in [false, true] {
        let mut cmd = eryx_command(&cache_dir());
        if json {
            cmd.arg("--json");
        }
        let mut child = cmd
            .args(["-c", "print('x' * 100000)"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 10];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        // The read end is dropped here: the rest of the output meets a broken pipe.
        let out = child.wait_with_output().unwrap();
        let err = text(&out.stderr);
        assert!(!err.contains("panicked"), "json={json}: {err}");
        assert!(
            out.status.code().is_some(),
            "json={json}: killed by a signal"
        );
    }
}

#[tokio::test]
async fn deep_c_recursion_that_python_allows_runs() {
    // 100,000 levels of the JSON decoder's C recursion: a trap ("call stack
    // overflowed") with wasmtime's default 512 KiB stack and the Linker's
    // 1 MiB shadow stack; fine with the sandbox's 48 MiB / 8 MiB.
    let mut sb = sandbox().await;
    let out = sb
        .execute("import json\nv = json.loads('[' * 100000 + ']' * 100000)\nd = 0\nwhile v:\n    v = v[0]\n    d += 1\nd")
        .await
        .unwrap();
    assert_eq!(out.value.as_deref(), Some("99999"));
}

#[tokio::test]
async fn sysconfig_build_arguments_parse() {
    // The wheel's sysconfig data lost a closing quote; `cargo xtask dist`
    // restores it so that `shlex.split` (test.support, build tools) works.
    let out = crate::support::stdout_of(
        "import shlex, sysconfig\nprint(shlex.split(sysconfig.get_config_var('CONFIG_ARGS'))[-1])",
    )
    .await;
    assert_eq!(out, "--build=x86_64-pc-linux-gnu\n");
}

/// `run_program_streaming` runs the exit handlers in the script's own call
/// (once: they are unregistered as they run), except after an uncaught
/// exception, when `run_exit_handlers` runs them after the traceback has
/// been shown; neither is a numbered cell of the session.
#[tokio::test]
async fn a_program_runs_its_exit_handlers_in_its_own_call_unless_it_raised() {
    let mut sb = sandbox().await;
    let argv = ["prog.py".to_string()];
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = seen.clone();
    let out = sb
        .run_program_streaming(
            "import atexit\natexit.register(print, 'bye')\nprint('hi')",
            "prog.py",
            &argv,
            move |chunk| sink.lock().unwrap().push_str(chunk.text),
        )
        .await
        .unwrap();
    assert_eq!(out.stdout, "hi\nbye\n");
    assert_eq!(*seen.lock().unwrap(), "hi\nbye\n");
    // `sys.exit` is not an exception here: its message, then the handlers.
    let out = sb
        .run_program_streaming(
            "import atexit, sys\natexit.register(print, 'after', file=sys.stderr)\nsys.exit('stop')",
            "prog.py",
            &argv,
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(
        (out.stderr.as_str(), out.exit_code),
        ("stop\nafter\n", Some(1))
    );
    let Error::Python(e) = sb
        .run_program_streaming(
            "import atexit\natexit.register(print, 'later')\n1/0",
            "prog.py",
            &argv,
            |_| {},
        )
        .await
        .unwrap_err()
    else {
        panic!("expected a Python error")
    };
    assert_eq!(e.stdout, "");
    assert_eq!(sb.run_exit_handlers().await.unwrap().stdout, "later\n");
    assert_eq!(sb.run_exit_handlers().await.unwrap().stdout, "");
    let Error::Python(e) = sb.execute("1/0").await.unwrap_err() else {
        panic!("expected a Python error")
    };
    assert!(e.traceback.contains("<cell-1>"), "{}", e.traceback);
    // An exit step that fails as a whole (here: the code broke `atexit`
    // itself) is reported in the output; the run's outcome stands.
    let out = sb
        .run_program_streaming(
            "import atexit\natexit._run_exitfuncs = None\nprint('ran')",
            "prog.py",
            &argv,
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(out.stdout, "ran\n");
    assert!(
        out.stderr
            .starts_with("Exception ignored while exiting: TypeError("),
        "{}",
        out.stderr
    );
}

#[test]
fn atexit_handlers_run_when_the_cli_exits_as_in_python3() {
    // After the script, whether it returned, raised or called sys.exit; in
    // reverse order of registration; an exception in one is printed and
    // leaves the status alone.
    let code = "import atexit, sys\n\
                atexit.register(print, 'first registered')\n\
                def bad(): raise ValueError('oops')\n\
                atexit.register(bad)\n\
                atexit.register(print, 'last registered')\n\
                print('script')\n\
                sys.exit(3)";
    let out = eryx(&["-c", code], None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "script\nlast registered\nfirst registered\n"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Exception ignored in atexit callback")
            && stderr.contains("ValueError: oops"),
        "{stderr}"
    );
    // After an uncaught exception too; --json has the handlers' output.
    let out = eryx(
        &[
            "--json",
            "-c",
            "import atexit; atexit.register(print, 'bye'); 1/0",
        ],
        None,
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["stdout"], "bye\n");
    assert_eq!(v["error"]["type"], "ZeroDivisionError");
    // `os._exit` skips them, as in CPython.
    let out = eryx(
        &[
            "-c",
            "import atexit, os; atexit.register(print, 'never'); os._exit(0)",
        ],
        None,
    );
    assert_eq!(
        (out.status.code(), text(&out.stdout).as_str()),
        (Some(0), "")
    );
    // After an uncaught exception on a terminal, the traceback comes first
    // (the handlers then run in a call of their own).
    let out = eryx(
        &[
            "-c",
            "import atexit, sys\natexit.register(print, 'bye', file=sys.stderr)\n1/0",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let (traceback, handler) = (
        stderr.find("ZeroDivisionError").unwrap_or(usize::MAX),
        stderr.find("bye").unwrap_or(0),
    );
    assert!(traceback < handler, "{stderr}");
    // The handlers are part of the run (they run in the script's call): one
    // that runs into the time limit ends it as a timeout, after the
    // script's output.
    let out = eryx(
        &[
            "--timeout",
            "1",
            "-c",
            "import atexit\nprint('done')\natexit.register(lambda: exec('while True: pass'))",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "done\n");
    assert!(
        text(&out.stderr).contains("eryx: execution timed out after 1s"),
        "{}",
        text(&out.stderr)
    );
    // Leaving the REPL runs them.
    let out = eryx(
        &["repl"],
        Some("import atexit\n_ = atexit.register(print, 'left the repl')\nexit(4)\n"),
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "left the repl\n");
}

#[test]
fn stdin_reaches_the_guest_as_in_python3() {
    // By default the script reads the CLI's stdin (`echo x | eryx s.py`).
    let code = "import sys\nprint(repr(input()))\nprint(repr(sys.stdin.read()))";
    let out = eryx(&["-c", code], Some("first\nrest\n"));
    assert_eq!(
        text(&out.stdout),
        "'first'\n'rest\\n'\n",
        "{}",
        text(&out.stderr)
    );
    // `--stdin`, which older versions needed, is still accepted.
    let out = eryx(&["--stdin", "-c", code], Some("a\nb"));
    assert_eq!(text(&out.stdout), "'a'\n'b'\n", "{}", text(&out.stderr));
    // `--no-stdin`: end of file at once, whatever is piped in.
    let out = eryx(&["--no-stdin", "-c", code], Some("host data\n"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("EOFError: EOF when reading a line"),
        "{}",
        text(&out.stderr)
    );
    // Code read from stdin took all of it: `input()` meets its end, as in
    // `echo 'input()' | python3`.
    let out = eryx(&["-"], Some("print(input())"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("EOFError"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn files_left_open_are_flushed_as_the_script_exits() {
    // As CPython's finalisation frees them: a file written and never
    // closed keeps its last buffer, whether the script returned or called
    // `sys.exit`, and `/dev/stdout` opened by hand reaches the output. A
    // dead `weakref.proxy` among the objects (as protobuf leaves) does not
    // stop it.
    let dir = tempfile::tempdir().unwrap();
    let mount = format!("{}:/mnt:rw", dir.path().display());
    let code = "import sys, weakref\nclass T: pass\nt = T(); proxies = [weakref.proxy(t)]; del t\n\
                out = open('/mnt/out.csv', 'w'); out.write('a,b\\n1,2\\n')\n\
                raw = open('/mnt/raw.bin', 'wb'); raw.write(b'xy')\n\
                term = open('/dev/stdout', 'w'); term.write('bye')\nsys.exit(3)";
    let out = eryx(&["--mount", &mount, "-c", code], None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    assert_eq!(text(&out.stdout), "bye");
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    assert_eq!(read("out.csv"), b"a,b\n1,2\n");
    assert_eq!(read("raw.bin"), b"xy");
    // The flushing leaves no name of its own in the session `--state` saves.
    let state = dir.path().join("s.bin").display().to_string();
    let out = eryx(&["--state", &state, "-c", "x = 1"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = eryx(
        &[
            "--state",
            &state,
            "-c",
            "print(sorted(k for k in globals() if not k.startswith('__')))",
        ],
        None,
    );
    assert_eq!(text(&out.stdout), "['x']\n", "{}", text(&out.stderr));
}

#[test]
fn env_options_set_the_guests_environment() {
    // `-e NAME=VALUE`, `--env NAME` (this process's value; left out when
    // unset); nothing else of this process's environment gets in.
    let out = eryx_command(&cache_dir())
        .env("FROM_HOST", "host value")
        .env("NOT_PASSED", "secret")
        .env_remove("UNSET_HERE")
        .args([
            "-e",
            "API_URL=http://x/?a=b",
            "--env",
            "FROM_HOST",
            "--env=UNSET_HERE",
        ])
        .args([
            "-c",
            "import os; print([(k, os.environ.get(k)) for k in \
                ('API_URL', 'FROM_HOST', 'UNSET_HERE', 'NOT_PASSED')])",
        ])
        .output()
        .unwrap();
    assert_eq!(
        text(&out.stdout),
        "[('API_URL', 'http://x/?a=b'), ('FROM_HOST', 'host value'), ('UNSET_HERE', None), \
         ('NOT_PASSED', None)]\n",
        "{}",
        text(&out.stderr)
    );
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let out = eryx_command(&cache_dir())
            .env("NOT_UTF8", std::ffi::OsStr::from_bytes(b"\xff"))
            .args(["--env", "NOT_UTF8", "-c", "pass"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(
            text(&out.stderr).contains("--env NOT_UTF8: this process's value is not valid UTF-8"),
            "{}",
            text(&out.stderr)
        );
    }
    let out = eryx(&["-e", "=oops", "-c", "pass"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot set the environment variable \"\": the name is empty"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn python3_flags_work_or_are_refused_by_name() {
    // Command lines written for `python3`: the isolation and buffering
    // flags change nothing here and are accepted; `-W` filters warnings
    // and fills `sys.warnoptions`; `-i` goes on in the REPL with the
    // script's names; `-O` and `-X` say why they are refused.
    let code = "import sys, warnings\nprint(sys.warnoptions)\n\
                warnings.warn('old', DeprecationWarning)";
    let out = eryx(
        &[
            "-u",
            "-B",
            "-E",
            "-s",
            "-I",
            "-P",
            "-q",
            "-W",
            "error::DeprecationWarning",
            "-W",
            "nonsense:x",
            "-c",
            code,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "['error::DeprecationWarning', 'nonsense:x']\n"
    );
    let err = text(&out.stderr);
    assert!(
        err.starts_with("Invalid -W option ignored: invalid action: 'nonsense'\n")
            && err.ends_with("DeprecationWarning: old\n"),
        "{err}"
    );
    let out = eryx(&["-i", "-c", "x = 21"], Some("print(x * 2)\nexit(3)\n"));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "42\n");
    assert!(text(&out.stderr).contains("in a WebAssembly sandbox"));
    // `-q`: the REPL without its banner.
    let out = eryx(&["-q", "-i", "-c", "x = 1"], Some("print(x)\n"));
    assert_eq!(text(&out.stdout), "1\n", "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("WebAssembly"),
        "{}",
        text(&out.stderr)
    );
    for (flag, says) in [
        (&["-O"][..], "-O is not supported"),
        (&["-X", "dev"][..], "-X dev is not supported"),
    ] {
        let out = eryx(&[flag, &["-c", "pass"]].concat(), None);
        assert_eq!(out.status.code(), Some(2));
        assert!(text(&out.stderr).contains(says), "{}", text(&out.stderr));
    }
}

#[test]
fn a_script_in_a_mount_imports_its_neighbours_as_with_python3() {
    // A project of several files: run from a mount (named by its host path
    // or its guest path), the script's directory is first on `sys.path`,
    // `__file__` and `sys.argv[0]` are its guest path, and files beside it
    // open. Outside every mount, a failed import of a module beside it says
    // how to mount it.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("pkg")).unwrap();
    std::fs::write(
        root.join("main.py"),
        "import os, sys, helper\nfrom pkg import mod\n\
         print(__file__, sys.argv, sys.path[0], helper.X + mod.Y)\n\
         print(open(os.path.join(os.path.dirname(__file__), 'data.txt')).read())\n",
    )
    .unwrap();
    std::fs::write(root.join("helper.py"), "X = 40\n").unwrap();
    std::fs::write(root.join("pkg/mod.py"), "Y = 2\n").unwrap();
    std::fs::write(root.join("data.txt"), "beside").unwrap();
    let mount = format!("{}:/app", root.display());
    let host_path = root.join("main.py").display().to_string();
    for file in ["/app/main.py", host_path.as_str()] {
        let out = eryx(&["--mount", &mount, file, "arg"], None);
        assert_eq!(
            text(&out.stdout),
            "/app/main.py ['/app/main.py', 'arg'] /app 42\nbeside\n",
            "{file}: {}",
            text(&out.stderr)
        );
    }
    let out = eryx(&[&host_path], None);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("ModuleNotFoundError: No module named 'helper'")
            && err.contains(&format!(
                "`helper` is beside the script on this machine, but the sandbox sees only \
                 mounted directories: mount the script's directory and run the script from it, \
                 e.g. `eryx --mount {}:/app /app/main.py`",
                root.display()
            )),
        "{err}"
    );
}

#[test]
fn dev_stdin_reads_what_is_piped_to_the_cli() {
    // `cmd | eryx script.py` with a script that names the path, as scripts
    // written for Linux do; what it writes to `/dev/stdout` is the CLI's.
    let code = "import json\nrows = json.load(open('/dev/stdin'))\n\
                with open('/dev/stdout', 'w') as out: json.dump(sum(rows), out)";
    let out = eryx(&["-c", code], Some("[1, 2, 39]"));
    assert_eq!(text(&out.stdout), "42", "{}", text(&out.stderr));
}

#[test]
fn stdin_is_read_only_when_the_guest_reads() {
    // A stdin that never ends (a pipe its writer keeps open): a script that
    // does not read it finishes, so nothing read it ahead; one that reads a
    // line gets that line without waiting for the end; one that waits for
    // more is stopped by the time limit.
    let run = |code: &str, feed: &[u8]| {
        let mut child = eryx_command(&cache_dir())
            .args(["--timeout", "5", "-c", code])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        std::io::Write::write_all(&mut input, feed).unwrap();
        std::io::Write::flush(&mut input).unwrap();
        // `input` stays open until the run ended.
        let out = child.wait_with_output().unwrap();
        drop(input);
        out
    };
    let out = run("print('no read')", b"");
    assert_eq!(text(&out.stdout), "no read\n", "{}", text(&out.stderr));
    let out = run("print(input('name? ').upper())", b"ada\n");
    assert_eq!(text(&out.stdout), "name? ADA\n", "{}", text(&out.stderr));
    let t = Instant::now();
    let out = run("import sys\nsys.stdin.read()", b"partial\n");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("timed out"),
        "{}",
        text(&out.stderr)
    );
    assert!(t.elapsed() < Duration::from_secs(60));
}

#[tokio::test]
async fn builder_stdin_feeds_input() {
    let mut sb = builder().stdin("Ada\n42\n").build().await.unwrap();
    let out = sb
        .execute("name = input()\nn = int(input())\nprint(f'{name} {n + 1}')")
        .await
        .unwrap();
    assert_eq!(out.stdout, "Ada 43\n");
}
