//! The `eryx` CLI: run Python in the sandbox.
//!
//! `eryx -c CODE [ARGS]`, `eryx FILE [ARGS]` (or `eryx run FILE [ARGS]`),
//! `eryx -m MODULE [ARGS]`, code from stdin, or an interactive REPL when
//! stdin is a terminal and no code is given; `sys.argv` is set as `python3`
//! sets it. Python's stdout and stderr go to ours; the exit status is the
//! code's `sys.exit()` status, 1 on an uncaught exception, 2 on a sandbox
//! error.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use eryx_host::{Access, Error, Mount, Output, Sandbox, Snapshot, SnapshotPolicy, Stream};

/// Run untrusted Python 3.14 in a WebAssembly sandbox.
///
/// `eryx [OPTIONS] -c CODE [ARGS]`, `eryx [OPTIONS] FILE [ARGS]` (or `run
/// FILE`), `eryx [OPTIONS] -m MODULE [ARGS]`, the code on stdin (`eryx -`),
/// or a REPL (`eryx` / `eryx repl` on a terminal). As with `python3`,
/// everything after the code, the module or the file goes to `sys.argv`.
#[derive(Parser)]
#[command(name = "eryx", version)]
struct Cli {
    /// The dist bundle (made by `cargo xtask dist`); defaults to $ERYX_BUNDLE.
    #[arg(long, env = "ERYX_BUNDLE")]
    bundle: Option<PathBuf>,
    /// Run this code (`sys.argv` is `['-c', ARGS...]`).
    #[arg(short = 'c', value_name = "CODE", conflicts_with = "module")]
    code: Option<String>,
    /// Run this module as `__main__`, as `python3 -m` does (from the
    /// standard library or a package).
    #[arg(short = 'm', value_name = "MODULE")]
    module: Option<String>,
    /// Wall-clock limit per execution: seconds, or with a unit: `500ms`,
    /// `2s`, `5m`, `1h` (default 30s).
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// Memory limit, e.g. `256M`, `1G` or bytes (default 256M).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    memory: Option<usize>,
    /// Size limit of the sandbox's private, in-memory /tmp (also TMPDIR and
    /// the working directory), e.g. `16M` (default 64M; `0`: no /tmp).
    #[arg(long, value_name = "SIZE", value_parser = parse_tmp_size)]
    tmp_size: Option<usize>,
    /// Print one JSON object (stdout, stderr, value, error, exit_code, truncated, duration_ms, preinitialised).
    #[arg(long)]
    json: bool,
    /// A package (a directory laid out like an unpacked wheel, or a .whl),
    /// repeatable: mounted at /site-packages, extension modules linked in.
    #[arg(long, value_name = "DIR_OR_WHEEL")]
    package: Vec<PathBuf>,
    /// Every wheel (`*.whl`) in DIR as a package, e.g. the wheelhouse that
    /// `cargo xtask wheel` fills (target/wheels). Repeatable.
    #[arg(long, value_name = "DIR")]
    wheelhouse: Vec<PathBuf>,
    /// Import MODULE while pre-initialising, so every run finds it loaded
    /// (e.g. `--preimport numpy`); a package's lazily exported names (its
    /// `__all__`, e.g. pydantic's `BaseModel`) are loaded too. Repeatable;
    /// ignored with --no-preinit.
    #[arg(long, value_name = "MODULE")]
    preimport: Vec<String>,
    /// Restore the session from FILE if it exists, and save it back after the run.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Give the guest an empty standard input. By default the guest reads
    /// this process's stdin as `python3` does (`input()`, `sys.stdin`), in
    /// the REPL too, taking bytes only as it reads them.
    #[arg(long)]
    no_stdin: bool,
    /// The default (the guest reads this process's stdin); kept so that
    /// command lines written for older versions, which needed it, still
    /// work.
    #[arg(long, hide = true, conflicts_with = "no_stdin")]
    stdin: bool,
    /// Start Python in the sandbox instead of using a pre-initialised
    /// snapshot (saves the snapshot step when a package set is used once).
    #[arg(long)]
    no_preinit: bool,
    /// Internal: build the pre-initialised snapshot of this configuration
    /// and exit (what eryx starts in the background after running a new
    /// extension set).
    #[arg(long, hide = true)]
    snapshot_only: bool,
    /// Set an environment variable in the guest: `NAME=VALUE`, or `NAME`
    /// for this process's value (left out when it is unset). Repeatable.
    /// Nothing of this process's environment reaches the guest otherwise.
    #[arg(short = 'e', long = "env", value_name = "NAME[=VALUE]")]
    env: Vec<String>,
    /// Show a host directory to the guest: `HOST:GUEST[:ro|rw]` (read-only
    /// unless `:rw`), e.g. `--mount ./data:/data`. Repeatable. Nothing of the
    /// host is visible otherwise.
    #[arg(long, value_name = "HOST:GUEST[:ro|rw]", value_parser = parse_mount)]
    mount: Vec<Mount>,
    /// Let the guest connect to a host over TCP: `HOST[:PORT]`,
    /// `*.DOMAIN[:PORT]`, an IP address, `IP:PORT` or `[IPv6]:PORT`, e.g.
    /// `--allow-net api.github.com:443`. Repeatable. The host resolves the
    /// names; nothing else is reachable (no network otherwise).
    #[arg(long = "allow-net", value_name = "HOST[:PORT]")]
    allow_net: Vec<String>,
    /// The guest's working directory: `/tmp` or a directory in a mount.
    /// Default: this process's working directory when a mount shows it
    /// (`--mount .:/app` runs in `/app`, as `python3` runs in the shell's
    /// directory), else `/tmp`. Then `-m`, `-c` and the REPL also find
    /// modules there first, as `python3`'s do (not with -P or -I).
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    workdir: Option<String>,
    /// `FILE [ARGS...]`, `run FILE [ARGS...]`, `- [ARGS...]` for stdin, or
    /// `repl`; with `-c`/`-m`: the ARGS (everything after them is passed to
    /// the script untouched).
    #[arg(value_name = "FILE ARGS")]
    args: Vec<String>,
    /// Warning control, as `python3 -W ARG` (`-W error`,
    /// `-W ignore::DeprecationWarning`): added to `sys.warnoptions` and
    /// applied before the code runs. Repeatable.
    #[arg(short = 'W', value_name = "ARG")]
    warnings: Vec<String>,
    /// Enter the REPL after running the code, as `python3 -i` (also after
    /// an exception or `sys.exit`), with the script's names.
    #[arg(short = 'i', conflicts_with = "json")]
    inspect: bool,
    /// `python3`'s -u: accepted; output is unbuffered here anyway.
    #[arg(short = 'u')]
    unbuffered: bool,
    /// `python3`'s -B: accepted; nothing writes bytecode here.
    #[arg(short = 'B')]
    no_bytecode: bool,
    /// `python3`'s -E, -s, -I, -P: accepted; the sandbox sees none of the
    /// host's environment or user site anyway. -P and -I leave the
    /// script's directory (or the working directory) off `sys.path`.
    #[arg(short = 'E')]
    ignore_environment: bool,
    #[arg(short = 's', hide = true)]
    no_user_site: bool,
    #[arg(short = 'I', hide = true)]
    isolate: bool,
    #[arg(short = 'P', hide = true)]
    safe_path: bool,
    /// `python3`'s -q: the REPL starts without its banner line.
    #[arg(short = 'q')]
    quiet: bool,
    /// `python3`'s -O / -OO: refused with a reason.
    #[arg(short = 'O', action = clap::ArgAction::Count, hide = true)]
    optimize: u8,
    /// `python3`'s -X OPTION: refused with a reason.
    #[arg(short = 'X', value_name = "OPTION", hide = true)]
    xoptions: Vec<String>,
}

fn parse_mount(s: &str) -> Result<Mount, String> {
    let (rest, access) = if let Some(r) = s.strip_suffix(":rw") {
        (r, Access::ReadWrite)
    } else if let Some(r) = s.strip_suffix(":ro") {
        (r, Access::ReadOnly)
    } else {
        (s, Access::ReadOnly)
    };
    match rest.rsplit_once(':') {
        Some((host, guest)) if !host.is_empty() && guest.starts_with('/') => Ok(Mount {
            guest: guest.to_string(),
            host: PathBuf::from(host),
            access,
        }),
        _ => Err(format!(
            "`{s}` is not HOST:GUEST[:ro|rw] with an absolute GUEST path (e.g. ./data:/data:ro)"
        )),
    }
}

fn parse_tmp_size(s: &str) -> Result<usize, String> {
    if s.trim() == "0" {
        return Ok(0);
    }
    parse_size(s)
}

fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let mult: usize = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'B' => 1,
                _ => return Err(format!("unknown size suffix `{c}` (use K, M or G)")),
            };
            (&s[..i], mult)
        }
        _ => (s, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 256M)"))?;
    if !(n.is_finite() && n > 0.0) {
        return Err(format!("`{s}` is not a positive size"));
    }
    Ok((n * mult as f64) as usize)
}

/// A time limit: seconds (`30`, `0.5`) or a number with a unit (`500ms`,
/// `2s`, `5m`, `1h`).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let num = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &t[num.len()..];
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{s}` (give seconds, or ms, s, m or h: `500ms`, `2s`)"
            ));
        }
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a time (seconds, or e.g. `500ms`, `2s`, `5m`)"))?;
    if n.is_nan() || n <= 0.0 {
        return Err(format!("`{s}` is not a positive time"));
    }
    Duration::try_from_secs_f64(n * scale).map_err(|_| format!("`{s}` is too long a time"))
}

enum Mode {
    /// Code to run as the script `filename` with `sys.argv` = `argv`;
    /// `path0`: the guest directory that goes first on `sys.path` (a script
    /// file inside a mount: its directory, as `python3 FILE` puts it).
    Script {
        code: String,
        filename: String,
        argv: Vec<String>,
        path0: Option<String>,
    },
    Repl,
}

/// Where the script `file` is, when a mount holds it: the host file to read
/// and its path in the guest. `file` may name the host file (`eryx --mount
/// .:/app main.py`) or its guest path (`eryx --mount .:/app /app/main.py`).
/// `None` when no mount holds it.
fn script_in_mount(file: &str, mounts: &[Mount]) -> Option<(PathBuf, String)> {
    if let Ok(host) = std::fs::canonicalize(file)
        && host.is_file()
    {
        return guest_path(&host, mounts).map(|guest| (host, guest));
    }
    mounts.iter().find_map(|m| {
        let rel = Path::new(file).strip_prefix(&m.guest).ok()?;
        // Only plain names below the mount point: `/app/../x` is not in it.
        let plain = rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        let host = m.host.join(rel);
        (plain && host.is_file()).then(|| (host, join_guest(&m.guest, rel)))
    })
}

/// `rel`'s components below the guest directory `guest`.
fn join_guest(guest: &str, rel: &Path) -> String {
    let mut path = guest.trim_end_matches('/').to_string();
    for part in rel.components() {
        path.push('/');
        path.push_str(&part.as_os_str().to_string_lossy());
    }
    path
}

/// The guest path of the canonical host path `host`, when a mount shows it
/// (the deepest mount's, should mounts of nested host directories both).
fn guest_path(host: &Path, mounts: &[Mount]) -> Option<String> {
    mounts
        .iter()
        .filter_map(|m| {
            let root = std::fs::canonicalize(&m.host).ok()?;
            let rel = host.strip_prefix(&root).ok()?;
            Some((root.components().count(), join_guest(&m.guest, rel)))
        })
        .max_by_key(|(depth, _)| *depth)
        .map(|(_, guest)| guest)
}

/// The guest's working directory: `--workdir`'s, or, as `python3` runs in
/// the shell's, this process's working directory's guest path when a mount
/// shows it (`eryx --mount .:/app` runs in `/app`); `None` leaves the
/// sandbox's default (`/tmp`).
fn working_dir(cli: &Cli) -> Option<String> {
    if let Some(dir) = &cli.workdir {
        return Some(dir.clone());
    }
    let here = std::env::current_dir().ok()?;
    guest_path(&std::fs::canonicalize(here).ok()?, &cli.mount)
}

fn read_stdin() -> anyhow::Result<String> {
    let mut code = String::new();
    std::io::stdin()
        .read_to_string(&mut code)
        .context("cannot read the code from stdin")?;
    Ok(code)
}

fn mode(cli: &Cli) -> anyhow::Result<Mode> {
    let args = cli.args.clone();
    if let Some(code) = &cli.code {
        let argv = std::iter::once("-c".to_string()).chain(args).collect();
        return Ok(Mode::Script {
            code: code.clone(),
            filename: "<string>".into(),
            argv,
            path0: None,
        });
    }
    if let Some(module) = &cli.module {
        let argv = std::iter::once("-m".to_string()).chain(args).collect();
        return Ok(Mode::Script {
            // What `python3 -m` runs: the module as `__main__`, `sys.argv[0]`
            // set to its file.
            code: format!("import runpy\nrunpy._run_module_as_main({module:?})\n"),
            filename: "<run_module>".into(),
            argv,
            path0: None,
        });
    }
    let (file, rest) = match args.as_slice() {
        [] if std::io::stdin().is_terminal() => return Ok(Mode::Repl),
        [repl] if repl == "repl" => return Ok(Mode::Repl),
        [] => {
            return Ok(Mode::Script {
                code: read_stdin()?,
                filename: "<stdin>".into(),
                argv: vec![String::new()],
                path0: None,
            });
        }
        [run, file, rest @ ..] if run == "run" => (file, rest),
        [file, rest @ ..] if file != "run" => (file, rest),
        _ => bail!("usage: eryx [OPTIONS] (-c CODE | -m MODULE | [run] FILE | - | repl) [ARGS...]"),
    };
    let argv = std::iter::once(file.clone())
        .chain(rest.iter().cloned())
        .collect();
    if file == "-" {
        return Ok(Mode::Script {
            code: read_stdin()?,
            filename: "<stdin>".into(),
            argv,
            path0: None,
        });
    }
    // A script inside a mount runs from its guest path, so that its
    // directory's modules import and `__file__` finds files beside it.
    if let Some((host, guest)) = script_in_mount(file, &cli.mount) {
        let code = std::fs::read_to_string(&host)
            .with_context(|| format!("cannot read {}", host.display()))?;
        let dir = guest
            .rsplit_once('/')
            .map_or("/", |(d, _)| if d.is_empty() { "/" } else { d });
        let mut argv = argv;
        argv[0] = guest.clone();
        return Ok(Mode::Script {
            code,
            path0: Some(dir.to_string()),
            filename: guest,
            argv,
        });
    }
    let code = std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?;
    Ok(Mode::Script {
        code,
        filename: file.clone(),
        argv,
        path0: None,
    })
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(&format!("\n  caused by: {s}"));
        source = s.source();
    }
    msg
}

fn report(e: &(dyn std::error::Error + 'static)) {
    eprintln!("eryx: {}", chain(e));
}

async fn restore_state(sandbox: &mut Sandbox, path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let snapshot = Snapshot::from_bytes(&bytes)
        .with_context(|| format!("{} cannot be used", path.display()))?;
    sandbox
        .restore(&snapshot)
        .await
        .with_context(|| format!("cannot restore the session from {}", path.display()))
}

async fn save_state(sandbox: &mut Sandbox, path: &Path) -> anyhow::Result<()> {
    let snapshot = sandbox
        .snapshot_skipping()
        .await
        .context("cannot snapshot the session")?;
    if !snapshot.skipped().is_empty() {
        eprintln!(
            "eryx: not saved to {} (cannot be pickled): {}",
            path.display(),
            snapshot.skipped().join(", ")
        );
    }
    std::fs::write(path, snapshot.to_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The process exit status for a Python exit code (POSIX keeps the low
/// 8 bits, as `python3` exits with them).
fn exit_status(code: i32) -> u8 {
    (code & 0xff) as u8
}

/// The exit status of one result.
fn status_of(result: &Result<Output, Error>) -> u8 {
    match result {
        Ok(out) => out.exit_code.map_or(0, exit_status),
        Err(Error::Python(_)) => 1,
        Err(Error::Exited { code, .. }) => exit_status(*code),
        Err(_) => 2,
    }
}

fn print_json(
    result: &Result<Output, Error>,
    at_exit: Option<&Output>,
    elapsed: Duration,
    preinitialised: bool,
) {
    let (stdout, stderr, value, truncated, error) = match result {
        Ok(o) => (
            o.stdout.as_str(),
            o.stderr.as_str(),
            o.value.clone(),
            o.truncated,
            serde_json::Value::Null,
        ),
        Err(Error::Python(e)) => (
            e.stdout.as_str(),
            e.stderr.as_str(),
            None,
            false,
            serde_json::json!({
                "kind": "python",
                "type": e.type_name,
                "message": e.message,
                "traceback": e.traceback,
            }),
        ),
        Err(e) => (
            e.partial_output().map_or("", |p| p.stdout.as_str()),
            e.partial_output().map_or("", |p| p.stderr.as_str()),
            None,
            false,
            serde_json::json!({"kind": "sandbox", "message": chain(e)}),
        ),
    };
    let exit_code = match result {
        Ok(o) => o.exit_code,
        Err(Error::Exited { code, .. }) => Some(*code),
        Err(_) => None,
    };
    // The `atexit` handlers' output follows the script's, as on a terminal.
    let (stdout, stderr) = match at_exit {
        Some(o) => (
            format!("{stdout}{}", o.stdout),
            format!("{stderr}{}", o.stderr),
        ),
        None => (stdout.to_owned(), stderr.to_owned()),
    };
    let obj = serde_json::json!({
        "stdout": stdout,
        "stderr": stderr,
        "value": value,
        "error": error,
        "exit_code": exit_code,
        "truncated": truncated,
        "duration_ms": elapsed.as_secs_f64() * 1000.0,
        "preinitialised": preinitialised,
    });
    // A closed stdout (`| head`) is not an error worth a panic.
    let _ = writeln!(std::io::stdout().lock(), "{obj}");
}

/// Prints one result the way a terminal user expects; returns the exit code.
fn print_result(result: &Result<Output, Error>, show_value: bool, streamed: bool) -> u8 {
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    match result {
        Ok(out) => {
            if !streamed {
                let _ = stdout.write_all(out.stdout.as_bytes());
                let _ = stderr.write_all(out.stderr.as_bytes());
            }
            if show_value && let Some(v) = &out.value {
                let _ = writeln!(stdout, "{v}");
            }
            if out.truncated {
                let _ = writeln!(stderr, "eryx: output was truncated at the sandbox's cap");
            }
            let _ = stdout.flush();
            out.exit_code.map_or(0, exit_status)
        }
        Err(Error::Python(e)) => {
            if !streamed {
                let _ = stdout.write_all(e.stdout.as_bytes());
                let _ = stdout.flush();
                let _ = stderr.write_all(e.stderr.as_bytes());
            }
            let _ = stderr.write_all(e.traceback.as_bytes());
            1
        }
        Err(e) => {
            // What the call printed before it was stopped is not lost.
            if let Some(p) = e.partial_output().filter(|_| !streamed) {
                let _ = stdout.write_all(p.stdout.as_bytes());
                let _ = stdout.flush();
                let _ = stderr.write_all(p.stderr.as_bytes());
            }
            // `os._exit(n)` ends the run as it ends `python3`: silently,
            // with its status.
            if let Error::Exited { code, .. } = e {
                return exit_status(*code);
            }
            drop(stderr);
            report(e);
            2
        }
    }
}

/// Whether `buffer` is a complete statement, as the Python REPL decides it:
/// a block (a line ending in `:`) or open brackets continue until a blank line.
fn complete(buffer: &str) -> bool {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut prev = '\0';
    for c in buffer.chars() {
        match quote {
            Some(q) => {
                if c == q && prev != '\\' {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => quote = Some(c),
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth -= 1,
                '#' => {}
                _ => {}
            },
        }
        prev = c;
    }
    let lines: Vec<&str> = buffer.lines().collect();
    let last = lines.last().map(|l| l.trim_end()).unwrap_or("");
    if depth > 0 || last.ends_with('\\') {
        return false;
    }
    let block = lines.iter().any(|l| l.trim_end().ends_with(':'));
    !block || buffer.ends_with("\n\n") || last.is_empty()
}

/// One line of REPL input.
enum Line {
    Text(String),
    /// Ctrl-C: drop the statement being typed.
    Interrupted,
    Eof,
}

/// Where the REPL reads lines: a line editor with history on a terminal,
/// plain stdin otherwise (pipes, tests).
enum Input {
    Editor {
        editor: Box<rustyline::DefaultEditor>,
        history: Option<PathBuf>,
    },
    /// Descriptor 0, read a byte at a time: the code the REPL runs reads
    /// the same descriptor (`input()`), so nothing past the end of a line
    /// may sit in a buffer of ours (std's `Stdin` keeps 8 KiB).
    Plain(Option<std::fs::File>),
}

impl Input {
    fn new() -> Input {
        if std::io::stdin().is_terminal()
            && let Ok(mut editor) = rustyline::DefaultEditor::new()
        {
            // As python3 keeps ~/.python_history.
            let history = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".eryx_history"));
            if let Some(path) = &history {
                let _ = editor.load_history(path);
            }
            return Input::Editor {
                editor: Box::new(editor),
                history,
            };
        }
        #[cfg(unix)]
        let file = {
            use std::os::fd::AsFd as _;
            std::io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .ok()
                .map(std::fs::File::from)
        };
        #[cfg(not(unix))]
        let file = None;
        Input::Plain(file)
    }

    async fn read(&mut self, prompt: &str) -> Line {
        match self {
            Input::Editor { editor, .. } => match editor.readline(prompt) {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = editor.add_history_entry(line.as_str());
                    }
                    Line::Text(line + "\n")
                }
                Err(rustyline::error::ReadlineError::Interrupted) => Line::Interrupted,
                Err(_) => Line::Eof,
            },
            Input::Plain(slot) => {
                eprint!("{prompt}");
                let Some(mut stdin) = slot.take() else {
                    return Line::Eof;
                };
                // Off the runtime's thread, which meanwhile serves the
                // Ctrl-C watcher.
                let read = tokio::task::spawn_blocking(move || {
                    let line = read_line_unbuffered(&mut stdin);
                    (stdin, line)
                });
                let Ok((stdin, line)) = read.await else {
                    return Line::Eof;
                };
                *slot = Some(stdin);
                if line.is_empty() {
                    Line::Eof
                } else {
                    Line::Text(String::from_utf8_lossy(&line).into_owned())
                }
            }
        }
    }

    fn save(&mut self) {
        if let Input::Editor {
            editor,
            history: Some(path),
        } = self
        {
            let _ = editor.save_history(path);
        }
    }
}

/// One line from `stdin` (with its newline; empty at end of input), read a
/// byte at a time so that nothing after it is taken.
fn read_line_unbuffered(stdin: &mut std::fs::File) -> Vec<u8> {
    let mut line = Vec::new();
    let mut byte = [0u8];
    loop {
        match stdin.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => {
                line.push(byte[0]);
                if byte[0] == b'\n' {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    line
}

async fn repl(sandbox: &mut Sandbox, state: Option<&Path>, quiet: bool) -> u8 {
    if !quiet {
        eprintln!(
            "eryx: Python 3.14 in a WebAssembly sandbox. Ctrl-D or exit() to leave; Ctrl-C drops the input or stops the running cell."
        );
    }
    let mut input = Input::new();
    // Ctrl-C while a cell runs stops it, as python3's KeyboardInterrupt
    // does, instead of ending the REPL and its session. On a terminal the
    // line editor reads Ctrl-C at the prompt as a key; with piped input a
    // Ctrl-C at the prompt ends the REPL (status 130, as a SIGINT would).
    let running = Arc::new(AtomicBool::new(false));
    watch_ctrl_c(
        sandbox.cancel_handle(),
        running.clone(),
        matches!(input, Input::Plain(_)),
    );
    let mut buffer = String::new();
    let mut status = 0;
    let mut last = Ok(Output::default());
    loop {
        let prompt = if buffer.is_empty() { ">>> " } else { "... " };
        let line = match input.read(prompt).await {
            Line::Text(line) => line,
            Line::Interrupted => {
                eprintln!("KeyboardInterrupt");
                buffer.clear();
                continue;
            }
            Line::Eof => {
                eprintln!();
                break;
            }
        };
        if buffer.is_empty() && line.trim().is_empty() {
            continue;
        }
        buffer.push_str(&line);
        if !complete(&buffer) {
            continue;
        }
        let code = std::mem::take(&mut buffer);
        // Live, as python3 prints: a prompt of `input()` shows before it
        // waits, a long loop's progress as it comes.
        running.store(true, Ordering::SeqCst);
        let result = sandbox.execute_streaming(&code, print_chunk).await;
        running.store(false, Ordering::SeqCst);
        if let Err(Error::Cancelled { .. }) = &result {
            eprintln!("KeyboardInterrupt");
        } else {
            print_result(&result, true, true);
        }
        if let Err(e) = &result
            && !e.session_survived()
            && !matches!(e, Error::Exited { .. })
        {
            eprintln!("eryx: the session was lost; continuing in a fresh one");
        }
        // `exit()`, `quit()`, `sys.exit(n)`, `os._exit(n)`: leave with
        // that status.
        if let Ok(Output {
            exit_code: Some(code),
            ..
        })
        | Err(Error::Exited { code, .. }) = &result
        {
            status = exit_status(*code);
            last = result;
            break;
        }
    }
    input.save();
    run_exit_handlers(sandbox, &last, true).await;
    if let Some(path) = state
        && let Err(e) = save_state(sandbox, path).await
    {
        eprintln!("eryx: {e:#}");
        return 2;
    }
    status
}

/// Elsewhere Ctrl-C keeps its default.
#[cfg(not(unix))]
fn watch_ctrl_c(_cancel: eryx_host::CancelHandle, _running: Arc<AtomicBool>, _plain: bool) {}

/// From now on, for the rest of the process (tokio's handler replaces the
/// default): a SIGINT cancels the sandbox's call while `running`, and
/// otherwise ends the process if the REPL reads `plain` input.
#[cfg(unix)]
fn watch_ctrl_c(cancel: eryx_host::CancelHandle, running: Arc<AtomicBool>, plain: bool) {
    use tokio::signal::unix::{SignalKind, signal};
    // Registered now, not at the task's first poll: a Ctrl-C during the
    // first cell is caught too.
    let Ok(mut sigint) = signal(SignalKind::interrupt()) else {
        return;
    };
    tokio::spawn(async move {
        while sigint.recv().await.is_some() {
            if running.load(Ordering::SeqCst) {
                cancel.cancel();
            } else if plain {
                eprintln!("KeyboardInterrupt");
                std::process::exit(130);
            }
        }
    });
}

/// `ERYX_SNAPSHOT`: when a new extension set's pre-initialised snapshot is
/// not in the cache, `later` (default) runs without it and builds it in a
/// separate background process after the run; `wait` builds it first;
/// `never` does not build it.
fn snapshot_setting() -> Result<&'static str, String> {
    match std::env::var("ERYX_SNAPSHOT").as_deref() {
        Err(_) | Ok("" | "later") => Ok("later"),
        Ok("wait") => Ok("wait"),
        Ok("never") => Ok("never"),
        Ok(other) => Err(format!(
            "ERYX_SNAPSHOT={other} is not one of `later`, `wait`, `never`"
        )),
    }
}

/// Starts `eryx --snapshot-only ARGS` detached (its own process group, no
/// stdio): it builds the snapshot this run did without, so that the next
/// run starts from it. A failure to start it only costs that speed-up.
fn build_snapshot_later() {
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--snapshot-only")
        .args(std::env::args_os().skip(1))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Not in the terminal's process group: Ctrl-C in the shell does
        // not stop it.
        cmd.process_group(0);
    }
    if let Ok(mut child) = cmd.spawn() {
        // Reaped if this process outlives it (a REPL).
        let _ = std::thread::Builder::new()
            .name("eryx-snapshot-wait".into())
            .spawn(move || child.wait());
    }
}

async fn run(cli: Cli) -> u8 {
    let snapshot = match snapshot_setting() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("eryx: {e}");
            return 2;
        }
    };
    let mode = if cli.snapshot_only {
        Mode::Repl
    } else {
        match mode(&cli) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("eryx: {e:#}");
                return 2;
            }
        }
    };
    if cli.optimize > 0 {
        eprintln!(
            "eryx: -O is not supported: the sandbox's Python is pre-initialised without \
             optimisation, so `assert` statements run; remove -O"
        );
        return 2;
    }
    if let Some(x) = cli.xoptions.first() {
        eprintln!(
            "eryx: -X {x} is not supported: the sandbox's Python is pre-initialised with its own \
             options; remove -X"
        );
        return 2;
    }
    let mut builder = Sandbox::builder();
    if std::io::stderr().is_terminal() {
        builder = builder.on_progress(|msg| eprintln!("eryx: {msg}..."));
    }
    if let Some(bundle) = &cli.bundle {
        builder = builder.bundle(bundle);
    }
    for m in &cli.mount {
        builder = builder.mount(m.guest.clone(), m.host.clone(), m.access);
    }
    for host in &cli.allow_net {
        builder = builder.allow_net(host);
    }
    let workdir = working_dir(&cli);
    if let Some(dir) = &workdir {
        builder = builder.working_dir(dir);
    }
    for spec in &cli.env {
        match spec.split_once('=') {
            Some((name, value)) => builder = builder.env(name, value),
            None => match std::env::var(spec) {
                Ok(value) => builder = builder.env(spec, value),
                Err(std::env::VarError::NotPresent) => {}
                Err(std::env::VarError::NotUnicode(_)) => {
                    eprintln!("eryx: --env {spec}: this process's value is not valid UTF-8");
                    return 2;
                }
            },
        }
    }
    // As `python3`: the code reads this process's stdin (after the code
    // itself when that came from stdin: then it is at its end, as in
    // CPython), in the REPL too (`input()` between prompts). The sandbox
    // reads only what is there when the guest asks, so a cell stopped while
    // waiting for input leaves no read behind to take the next line typed
    // at the prompt.
    if !cli.no_stdin && !cli.snapshot_only {
        builder = builder.inherit_stdin();
    }
    if cli.no_preinit {
        builder = builder.preinit(false);
    }
    builder = builder.snapshot_policy(if cli.snapshot_only || snapshot == "wait" {
        SnapshotPolicy::Wait
    } else {
        SnapshotPolicy::Skip
    });
    if let Some(limit) = cli.timeout {
        builder = builder.timeout(limit);
    }
    for package in &cli.package {
        builder = builder.package(package);
    }
    for dir in &cli.wheelhouse {
        let mut wheels: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "whl"))
                .collect(),
            Err(e) => {
                eprintln!("eryx: --wheelhouse {}: {e}", dir.display());
                return 2;
            }
        };
        if wheels.is_empty() {
            eprintln!(
                "eryx: --wheelhouse {}: no wheels (*.whl) there; `cargo xtask wheel PACKAGE...` \
                 builds them",
                dir.display()
            );
            return 2;
        }
        wheels.sort();
        for w in wheels {
            builder = builder.package(w);
        }
    }
    if !cli.preimport.is_empty() {
        builder = builder.preimport(cli.preimport.iter().cloned());
    }
    if let Some(bytes) = cli.memory {
        builder = builder.memory_limit(bytes);
    }
    if let Some(bytes) = cli.tmp_size {
        builder = builder.tmp_limit(bytes as u64);
    }
    let mut sandbox = match builder.build().await {
        Ok(s) => s,
        Err(e) => {
            if cli.snapshot_only {
                return 2;
            }
            report(&e);
            return 2;
        }
    };
    if cli.snapshot_only {
        return 0;
    }
    // This run starts Python itself: the snapshot is built for the next.
    let snapshot_later = !cli.no_preinit && !sandbox.preinitialised() && snapshot == "later";
    if let Some(path) = &cli.state
        && let Err(e) = restore_state(&mut sandbox, path).await
    {
        eprintln!("eryx: {e:#}");
        return 2;
    }
    // What goes first on `sys.path`, as `python3` puts it there: a script's
    // directory; the working directory for `-m`; `''` (the working
    // directory, wherever it is then) for `-c`, stdin and the REPL. Only
    // when the working directory is a chosen one: `/tmp` starts empty.
    let path0 = match &mode {
        _ if cli.safe_path || cli.isolate => None,
        Mode::Script { path0: Some(p), .. } => Some(p.clone()),
        Mode::Script { filename, .. } if filename == "<run_module>" => workdir.clone(),
        Mode::Script { filename, .. } if filename.starts_with('<') => {
            workdir.as_ref().map(|_| String::new())
        }
        Mode::Script { .. } => None,
        Mode::Repl => workdir.as_ref().map(|_| String::new()),
    };
    let path0 = path0.as_deref();
    if (!cli.warnings.is_empty() || path0.is_some())
        && let Err(e) = prepare_run(&mut sandbox, &cli.warnings, path0).await
    {
        report(&e);
        return 2;
    }
    // A script read from this machine outside every mount, for the hint
    // after a failed import of a module beside it.
    let host_script = match &mode {
        Mode::Script {
            filename,
            path0: None,
            ..
        } if !filename.starts_with('<') => Some(PathBuf::from(filename)),
        _ => None,
    };
    let (code, filename, argv) = match mode {
        Mode::Repl => {
            if snapshot_later {
                build_snapshot_later();
            }
            return repl(&mut sandbox, cli.state.as_deref(), cli.quiet).await;
        }
        Mode::Script {
            code,
            filename,
            argv,
            ..
        } => (code, filename, argv),
    };
    let start = Instant::now();
    let result = if cli.json {
        // The output is printed as one JSON object at the end; the exit
        // handlers run in the same call unless the script raised.
        sandbox
            .run_program_streaming(&code, &filename, &argv, |_| {})
            .await
    } else if cli.inspect {
        // Output appears as the script writes it; the exit handlers run
        // when the REPL that follows ends.
        sandbox
            .run_script_streaming(&code, &filename, &argv, print_chunk)
            .await
    } else {
        // The exit handlers run in the same call, unless the script raised.
        sandbox
            .run_program_streaming(&code, &filename, &argv, print_chunk)
            .await
    };
    let elapsed = start.elapsed();
    if cli.json {
        let at_exit = match &result {
            Ok(_) => None,
            Err(_) => run_exit_handlers(&mut sandbox, &result, false).await,
        };
        print_json(&result, at_exit.as_ref(), elapsed, sandbox.preinitialised());
    } else {
        print_result(&result, false, true);
        if let (Some(script), Err(Error::Python(e))) = (&host_script, &result) {
            hint_sibling_module(script, e);
        }
        if cli.inspect
            && result
                .as_ref()
                .map_or_else(|e| e.session_survived(), |_| true)
        {
            // As `python3 -i`: the REPL goes on in the script's session
            // (its own exit runs the `atexit` handlers and saves `--state`).
            if snapshot_later {
                build_snapshot_later();
            }
            return repl(&mut sandbox, cli.state.as_deref(), cli.quiet).await;
        }
        // After the traceback, as `python3` does.
        if result.is_err() {
            run_exit_handlers(&mut sandbox, &result, true).await;
        }
    }
    let status = status_of(&result);
    if snapshot_later {
        build_snapshot_later();
    }
    if let Some(path) = &cli.state
        && result
            .as_ref()
            .map_or_else(|e| e.session_survived(), |_| true)
        && let Err(e) = save_state(&mut sandbox, path).await
    {
        eprintln!("eryx: {e:#}");
        return 2;
    }
    status
}

/// After `ModuleNotFoundError` in a script read from this machine: if the
/// module is a file or package beside the script, says how to make it
/// importable (the sandbox sees only mounted directories; `python3
/// main.py` would have found it).
fn hint_sibling_module(script: &Path, e: &eryx_host::PythonError) {
    if e.type_name != "ModuleNotFoundError" {
        return;
    }
    let Some(name) = e
        .message
        .strip_prefix("No module named '")
        .and_then(|rest| rest.split('\'').next())
    else {
        return;
    };
    let top = name.split('.').next().unwrap_or(name);
    let dir = match script.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if dir.join(format!("{top}.py")).is_file() || dir.join(top).join("__init__.py").is_file() {
        let file = script.file_name().unwrap_or_default().to_string_lossy();
        eprintln!(
            "eryx: `{top}` is beside the script on this machine, but the sandbox sees only \
             mounted directories: mount the script's directory and run the script from it, \
             e.g. `eryx --mount {}:/app /app/{file}`",
            dir.display()
        );
    }
}

/// What `python3` sets up before the code: the `-W` options, into
/// `sys.warnoptions` (which `unittest` and pytest read) and the warning
/// filters (an invalid one is reported, "Invalid -W option ignored", and
/// left out, as CPython does), and the script's directory (or the working
/// directory) first on `sys.path` (`path0`).
async fn prepare_run(
    sandbox: &mut Sandbox,
    warnings: &[String],
    path0: Option<&str>,
) -> Result<(), Error> {
    // JSON strings and arrays of them are Python literals too.
    let mut code = String::from("import sys as _s\n");
    if !warnings.is_empty() {
        let list = serde_json::to_string(warnings).unwrap_or_else(|_| "[]".into());
        code.push_str(&format!(
            "import warnings as _w\n_s.warnoptions.extend({list})\n_w._processoptions({list})\n\
             del _w\n"
        ));
    }
    if let Some(dir) = path0 {
        let dir = serde_json::to_string(dir).unwrap_or_else(|_| "'/'".into());
        code.push_str(&format!("_s.path.insert(0, {dir})\n"));
    }
    // Run as a named script, not a numbered cell (a REPL after it starts
    // at `<cell-1>`), its source not kept for tracebacks.
    code.push_str("del _s\n__import__('linecache').cache.pop('<eryx-preamble>', None)\n");
    let out = sandbox
        .run_script(&code, "<eryx-preamble>", &[String::new()])
        .await?;
    eprint!("{}", out.stderr);
    Ok(())
}

/// Writes one piece of live output to the CLI's stdout or stderr.
fn print_chunk(chunk: eryx_host::Chunk<'_>) {
    let _ = match chunk.stream {
        Stream::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(chunk.text.as_bytes())
                .and_then(|()| out.flush())
        }
        Stream::Stderr => std::io::stderr().lock().write_all(chunk.text.as_bytes()),
    };
}

/// What `python3` does as it exits: runs the `atexit` handlers (the
/// code's own, `logging`'s shutdown, a library's clean-up), after the
/// script whether it returned, raised or called `sys.exit`. An exception
/// in a handler is printed as CPython prints it ("Exception ignored in
/// atexit callback") and does not change the exit status. Then flushes
/// the files the code left open, as CPython's finalisation does when it
/// frees them: `out = open("/mnt/out.csv", "w")` written and never closed
/// (or `open("/dev/stdout", "w")`) lost its last buffer otherwise. Not run when
/// the interpreter is gone (a time limit, `os._exit`); a handler that
/// fails the sandbox (runs into the time limit) is reported on stderr.
/// `live`: the output goes straight to the CLI's stdout and stderr;
/// otherwise it is returned.
async fn run_exit_handlers(
    sandbox: &mut Sandbox,
    last: &Result<Output, Error>,
    live: bool,
) -> Option<Output> {
    if let Err(e) = last
        && (!e.session_survived() || matches!(e, Error::Exited { .. }))
    {
        return None;
    }
    match sandbox.run_exit_handlers().await {
        Ok(out) if live => {
            let printed = Ok(out);
            print_result(&printed, false, false);
            printed.ok()
        }
        Ok(out) => Some(out),
        // A handler that ran into the time limit, or a sandbox failure.
        Err(e) => {
            report(&e);
            None
        }
    }
}

/// eryx's options that take a value (as a separate argument), long and
/// short, from the clap definition itself.
fn value_options() -> Vec<String> {
    <Cli as clap::CommandFactory>::command()
        .get_arguments()
        .filter(|a| a.get_action().takes_values())
        .flat_map(|a| {
            let long = a.get_long().map(|l| format!("--{l}"));
            let short = a.get_short().map(|c| format!("-{c}"));
            long.into_iter().chain(short)
        })
        .collect()
}

/// Splits the command line where the script's own arguments start (after
/// `-c CODE`, `-m MODULE` or the first positional argument), as `python3`
/// does: eryx parses the head, the tail is `sys.argv[1:]` untouched.
fn split_args(args: &[String]) -> (Vec<String>, Vec<String>) {
    let value_options = value_options();
    let mut i = 1;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "-c" || a == "-m" {
            let end = (i + 2).min(args.len());
            return (args[..end].to_vec(), args[end..].to_vec());
        }
        if let Some(rest) = a.strip_prefix("-c").or_else(|| a.strip_prefix("-m"))
            && !rest.is_empty()
            && !a.starts_with("--")
        {
            return (args[..=i].to_vec(), args[i + 1..].to_vec());
        }
        if a == "--" {
            return (args[..i].to_vec(), args[i + 1..].to_vec());
        }
        if value_options.iter().any(|o| o == a) {
            i += 2;
        } else if a.starts_with('-') && a != "-" {
            i += 1;
        } else {
            // The first positional: `FILE`, `-`, `run FILE` or `repl`.
            let end = if a == "run" { i + 2 } else { i + 1 }.min(args.len());
            return (args[..end].to_vec(), args[end..].to_vec());
        }
    }
    (args.to_vec(), Vec::new())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (head, tail) = split_args(&args);
    let mut cli = Cli::parse_from(head);
    cli.args.extend(tail);
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
    ExitCode::from(runtime.block_on(run(cli)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("0.3"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(
            parse_duration("2x")
                .unwrap_err()
                .contains("unknown unit `x`")
        );
        assert!(
            parse_duration("0")
                .unwrap_err()
                .contains("not a positive time")
        );
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("nan").is_err());
        assert!(
            parse_duration("s")
                .unwrap_err()
                .contains("`s` is not a time")
        );
        // Past what a `Duration` holds: an error, not a panic.
        assert!(parse_duration("1e20").unwrap_err().contains("too long"));
        assert!(parse_duration("inf").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("-1M").is_err());
    }

    #[test]
    fn a_script_is_found_in_a_mount_by_host_or_guest_path_and_only_below_it() {
        let dir = tempfile::tempdir().unwrap();
        let proj = dir.path().join("proj");
        std::fs::create_dir_all(proj.join("sub")).unwrap();
        std::fs::write(proj.join("sub/main.py"), "").unwrap();
        std::fs::write(dir.path().join("outside.py"), "").unwrap();
        let mounts = [Mount {
            guest: "/app".into(),
            host: proj.clone(),
            access: Access::ReadOnly,
        }];
        let host = proj.join("sub/main.py").canonicalize().unwrap();
        let found = |file: &str| script_in_mount(file, &mounts);
        let expected = Some((host.clone(), "/app/sub/main.py".to_string()));
        assert_eq!(found(&host.display().to_string()), expected);
        assert_eq!(found("/app/sub/main.py"), expected);
        assert_eq!(found("/app/../outside.py"), None);
        assert_eq!(found("/app2/sub/main.py"), None);
        assert_eq!(
            found(&dir.path().join("outside.py").display().to_string()),
            None
        );
        assert_eq!(found("/app/sub/missing.py"), None);
    }

    #[test]
    fn script_arguments_are_not_eryx_options() {
        let v = |s: &[&str]| s.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let split = |s: &[&str]| split_args(&v(s));
        assert_eq!(
            split(&["eryx", "--json", "-m", "json.tool", "--help"]),
            (v(&["eryx", "--json", "-m", "json.tool"]), v(&["--help"]))
        );
        assert_eq!(
            split(&["eryx", "--timeout", "2", "s.py", "-c", "x"]),
            (v(&["eryx", "--timeout", "2", "s.py"]), v(&["-c", "x"]))
        );
        assert_eq!(
            split(&["eryx", "run", "s.py", "--json"]),
            (v(&["eryx", "run", "s.py"]), v(&["--json"]))
        );
        assert_eq!(
            split(&["eryx", "-cprint(1)", "a"]),
            (v(&["eryx", "-cprint(1)"]), v(&["a"]))
        );
        assert_eq!(split(&["eryx", "--json"]), (v(&["eryx", "--json"]), v(&[])));
        assert_eq!(
            split(&["eryx", "--mount", "a:/b", "--memory=1G", "f.py", "x"]),
            (
                v(&["eryx", "--mount", "a:/b", "--memory=1G", "f.py"]),
                v(&["x"])
            )
        );
        let options = value_options();
        for o in [
            "--bundle",
            "--timeout",
            "--memory",
            "--package",
            "--state",
            "--mount",
        ] {
            assert!(
                options.iter().any(|x| x == o),
                "{o} takes a value: {options:?}"
            );
        }
        assert!(!options.iter().any(|x| x == "--json"), "{options:?}");
    }

    #[test]
    fn mounts() {
        let m = parse_mount("./data:/data").unwrap();
        assert_eq!(
            (m.host, m.guest.as_str(), m.access),
            (PathBuf::from("./data"), "/data", Access::ReadOnly)
        );
        let m = parse_mount("/a:b:/out:rw").unwrap();
        assert_eq!(
            (m.host, m.guest.as_str(), m.access),
            (PathBuf::from("/a:b"), "/out", Access::ReadWrite)
        );
        assert!(parse_mount("/data").is_err());
        assert!(parse_mount("./data:rel").is_err());
        assert!(parse_mount(":/data").is_err());
    }

    #[test]
    fn repl_completeness() {
        assert!(complete("x = 1\n"));
        assert!(!complete("def f():\n"));
        assert!(!complete("def f():\n    return 1\n"));
        assert!(complete("def f():\n    return 1\n\n"));
        assert!(!complete("x = [1,\n"));
        assert!(complete("x = [1,\n2]\n"));
        assert!(complete("s = '('\n"));
    }
}
