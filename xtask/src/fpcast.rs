//! Adapters for C functions that CPython calls with more arguments than
//! they declare.
//!
//! A `METH_NOARGS` method written `PyObject *f(PyObject *self)` (instead of
//! `(PyObject *self, PyObject *unused)`), or a getter without its `closure`
//! parameter, works on native targets: the caller's extra argument is
//! ignored. In wasm every indirect call checks the callee's exact type, so
//! calling it traps with "indirect call type mismatch" (regex, bitarray and
//! brotli from PyPI all have such methods). The opposite, a `METH_NOARGS`
//! or `METH_O` entry whose function declares a third parameter (astropy's
//! `(self, args, kwds)`), traps the same way; its adapter passes `0` for
//! the parameter CPython does not (natively: whatever the register held).
//! The cross compiler finds these
//! casts with clang's `-Wcast-function-type-strict` in a syntax-only pass,
//! and compiles copies in which each cast names an adapter with the type
//! CPython calls (`static PyObject *adapter(PyObject *a0, PyObject *a1) {
//! return (PyObject *)f((T *)a0); }`), defined just before the declaration
//! that holds the cast. The copies replace the source and the package's own
//! files it includes (a unity build's `#include "decompressor.c"`) through a
//! clang virtual file system overlay, so the command line, diagnostics and
//! depfiles keep the original names. Only casts to CPython's callback types
//! are adapted (CPython calls those with exactly their parameters), and
//! only where the cast is spelled `(type)name` in the source; if the copies
//! do not compile, the original is compiled as it is.

/// The CPython callback types whose callers pass every declared parameter.
const CALLBACK_TYPES: &[&str] = &[
    "PyCFunction",
    "PyCFunctionWithKeywords",
    "PyCFunctionFast",
    "PyCFunctionFastWithKeywords",
    "_PyCFunctionFast",
    "_PyCFunctionFastWithKeywords",
    "PyCMethod",
    "getter",
    "setter",
    "binaryfunc",
    "ternaryfunc",
    "ssizeargfunc",
    "ssizeobjargproc",
    "objobjargproc",
    "objobjproc",
    "richcmpfunc",
    "getattrofunc",
    "setattrofunc",
    "descrgetfunc",
    "descrsetfunc",
    "initproc",
    "newfunc",
    "visitproc",
    "traverseproc",
];

/// One cast to adapt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cast {
    pub(crate) line: usize,
    pub(crate) column: usize,
    /// The target type as written (`getter`).
    pub(crate) target: String,
    /// The function's parameter types as written (`MatchObject *`).
    pub(crate) params: Vec<String>,
    /// The target's return type and parameter types, canonical
    /// (`struct _object *`).
    pub(crate) target_ret: String,
    pub(crate) target_params: Vec<String>,
}

/// `RET (*)(P1, P2)` -> (`RET`, [`P1`, `P2`]).
fn split_fn_type(t: &str) -> Option<(String, Vec<String>)> {
    let at = t.find("(*)(")?;
    let ret = t[..at].trim().to_string();
    let inner = t[at + 4..].strip_suffix(')')?;
    let mut params = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in inner.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                params.push(inner[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = inner[start..].trim();
    if !last.is_empty() {
        params.push(last.to_string());
    }
    if params == ["void"] {
        params.clear();
    }
    if params.iter().any(|p| p == "...") {
        return None;
    }
    Some((ret, params))
}

/// `'X' (aka 'Y')` or `'X'` at the start of `s`: (X, canonical, rest).
fn quoted_type(s: &str) -> Option<(String, String, &str)> {
    let s = s.strip_prefix('\'')?;
    let end = s.find('\'')?;
    let spelled = s[..end].to_string();
    let rest = &s[end + 1..];
    if let Some(r) = rest.strip_prefix(" (aka '") {
        let end = r.find("')")?;
        return Some((spelled, r[..end].to_string(), &r[end + 2..]));
    }
    Some((spelled.clone(), spelled, rest))
}

/// The casts to adapt in `file`, from clang's diagnostics.
#[cfg(test)]
fn casts(diagnostics: &str, file: &str) -> Vec<Cast> {
    casts_by_file(diagnostics)
        .into_iter()
        .find(|(path, _)| path == file)
        .map(|(_, c)| c)
        .unwrap_or_default()
}

/// The casts to adapt, per file as clang names it (the source being
/// compiled and the files it includes), in order of first appearance.
fn casts_by_file(diagnostics: &str) -> Vec<(String, Vec<Cast>)> {
    let mut out: Vec<(String, Vec<Cast>)> = Vec::new();
    for line in diagnostics.lines() {
        let Some((loc, msg)) = line.split_once(": warning: cast from ") else {
            continue;
        };
        let mut parts = loc.rsplitn(3, ':');
        let (Some(col), Some(ln), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let (Ok(line_no), Ok(column)) = (ln.parse::<usize>(), col.parse::<usize>()) else {
            continue;
        };
        let Some((src, _src_canon, rest)) = quoted_type(msg) else {
            continue;
        };
        let Some(rest) = rest.strip_prefix(" to ") else {
            continue;
        };
        let Some((target, target_canon, _)) = quoted_type(rest) else {
            continue;
        };
        if !CALLBACK_TYPES.contains(&target.as_str()) {
            continue;
        }
        let (Some((_, params)), Some((target_ret, target_params))) =
            (split_fn_type(&src), split_fn_type(&target_canon))
        else {
            continue;
        };
        // Fewer parameters than CPython passes; or more, for a method-table
        // entry (`PyCFunction`) that `rewrite` finds flagged `METH_NOARGS`
        // or `METH_O`, which CPython calls with two.
        if params.is_empty()
            || params.len() == target_params.len()
            || (params.len() > target_params.len() && target != "PyCFunction")
        {
            continue;
        }
        let cast = Cast {
            line: line_no,
            column,
            target,
            params,
            target_ret,
            target_params,
        };
        match out.iter_mut().find(|(p, _)| p == path) {
            Some((_, list)) if list.last() != Some(&cast) => list.push(cast),
            Some(_) => {}
            None => out.push((path.to_string(), vec![cast])),
        }
    }
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// At `text[at..]`: `( TYPE ) [&] NAME` -> (length, NAME).
fn cast_expr(text: &str, at: usize, target: &str) -> Option<(usize, String)> {
    let b = text.as_bytes();
    let mut i = at;
    let skip = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t') {
            *i += 1;
        }
    };
    if b.get(i) != Some(&b'(') {
        return None;
    }
    i += 1;
    skip(&mut i);
    if !text[i..].starts_with(target) {
        return None;
    }
    i += target.len();
    skip(&mut i);
    if b.get(i) != Some(&b')') {
        return None;
    }
    i += 1;
    skip(&mut i);
    if b.get(i) == Some(&b'&') {
        i += 1;
        skip(&mut i);
    }
    let start = i;
    while i < b.len() && is_ident(b[i]) {
        i += 1;
    }
    if i == start || b[start].is_ascii_digit() || b.get(i).is_some_and(|&c| c == b'(') {
        return None;
    }
    Some((i - at, text[start..i].to_string()))
}

/// The line (0-based) before which a file-scope definition can go: the
/// start of the top-level declaration that holds line `line` (0-based).
fn declaration_start(lines: &[&str], line: usize) -> usize {
    let starts_decl = |l: &str| {
        l.as_bytes()
            .first()
            .is_some_and(|&c| is_ident(c) && !c.is_ascii_digit())
    };
    let mut at = line;
    while at > 0 && !starts_decl(lines[at]) {
        at -= 1;
    }
    // `static int` / `PyObject *` on the line(s) above a function's name.
    while at > 0 {
        let prev = lines[at - 1].trim_end();
        if starts_decl(prev) && !prev.ends_with(';') && !prev.ends_with('}') && !prev.ends_with(',')
        {
            at -= 1;
        } else {
            break;
        }
    }
    at
}

/// The source with every cast in `casts` naming an adapter; `None` if
/// none of them is spelled `(type)name`. `path` goes into `#line`s.
pub(crate) fn rewrite(source: &str, path: &str, casts: &[Cast]) -> Option<(String, Vec<String>)> {
    let lines: Vec<&str> = source.split_inclusive('\n').collect();
    let plain: Vec<&str> = lines
        .iter()
        .map(|l| l.trim_end_matches(['\n', '\r']))
        .collect();
    // Edits per line (column, length, replacement) and definitions to put
    // before a line.
    let mut edits: Vec<Vec<(usize, usize, String)>> = vec![Vec::new(); lines.len()];
    let mut before: Vec<Vec<String>> = vec![Vec::new(); lines.len()];
    let mut done = Vec::new();
    for (k, c) in casts.iter().enumerate() {
        let Some(text) = plain.get(c.line.wrapping_sub(1)) else {
            continue;
        };
        let Some((len, name)) = cast_expr(text, c.column - 1, &c.target) else {
            continue;
        };
        // A function with more parameters than the cast's type is right for
        // `METH_VARARGS | METH_KEYWORDS` (CPython calls it with three): only
        // an entry flagged with two-argument calling conventions is wrong.
        if c.params.len() > c.target_params.len() {
            let rest = format!(
                "{} {}",
                &text[(c.column - 1 + len).min(text.len())..],
                plain.get(c.line).copied().unwrap_or("")
            );
            if !two_argument_flags(&rest) {
                continue;
            }
        }
        let adapter = format!("__eryx_fpcast_{k}_{name}");
        let params: Vec<String> = c
            .target_params
            .iter()
            .enumerate()
            .map(|(i, t)| format!("{t} a{i}"))
            .collect();
        // Parameters CPython does not pass get zero (a `METH_NOARGS`
        // function's unused `kwds`: natively, whatever was in the register).
        let args: Vec<String> = c
            .params
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if i < c.target_params.len() {
                    format!("({t})a{i}")
                } else {
                    format!("({t})0")
                }
            })
            .collect();
        let body = if c.target_ret == "void" {
            format!("{name}({});", args.join(", "))
        } else {
            format!("return ({}){name}({});", c.target_ret, args.join(", "))
        };
        let at = declaration_start(&plain, c.line - 1);
        before[at].push(format!(
            "static {} {adapter}({}) {{ {body} }}\n",
            c.target_ret,
            params.join(", ")
        ));
        edits[c.line - 1].push((c.column - 1, len, format!("({}){adapter}", c.target)));
        done.push(format!(
            "{path}:{}: `{name}` takes {} parameter(s) but is called as `{}` with {}",
            c.line,
            c.params.len(),
            c.target,
            c.target_params.len()
        ));
    }
    if done.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(source.len() + 256 * done.len());
    let quoted = path.replace('\\', "\\\\").replace('"', "\\\"");
    for (i, line) in lines.iter().enumerate() {
        if !before[i].is_empty() {
            for d in &before[i] {
                out.push_str(d);
            }
            out.push_str(&format!("#line {} \"{quoted}\"\n", i + 1));
        }
        let mut line = line.to_string();
        let mut e = edits[i].clone();
        e.sort_by_key(|x| std::cmp::Reverse(x.0));
        for (col, len, rep) in e {
            line.replace_range(col..col + len, &rep);
        }
        out.push_str(&line);
    }
    Some((out, done))
}

/// Whether the method-table flags that follow a cast (`, METH_NOARGS,
/// doc}` up to the entry's end) are a two-argument convention
/// (`METH_NOARGS` or `METH_O`, alone or with `METH_CLASS`/`METH_STATIC`/
/// `METH_COEXIST`).
fn two_argument_flags(rest: &str) -> bool {
    let flags = rest
        .trim_start()
        .strip_prefix(',')
        .map(|r| r.split([',', '}']).next().unwrap_or(""))
        .unwrap_or("");
    let names: Vec<&str> = flags
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    names.iter().any(|n| matches!(*n, "METH_NOARGS" | "METH_O"))
        && names.iter().all(|n| {
            matches!(
                *n,
                "METH_NOARGS" | "METH_O" | "METH_CLASS" | "METH_STATIC" | "METH_COEXIST"
            )
        })
}

/// A source compiled with adapters.
pub(crate) struct Adapted {
    /// Files written for the compile (the copies with adapters, next to
    /// their originals, and the overlay naming them); removed after it.
    pub(crate) scratch: Vec<std::path::PathBuf>,
    /// The command line with the overlay (`-ivfsoverlay`).
    pub(crate) argv: Vec<String>,
    /// What was adapted, one line each.
    pub(crate) notes: Vec<String>,
}

/// Whether `text` includes a `.c` file (a "unity" build compiling a
/// package's sources through one file, as zstandard's `backend_c.c` does):
/// its casts are in the included files.
/// Whether `text` has a cast to `ty` (`(ty)`, `( ty )`).
fn casts_to(text: &str, ty: &str) -> bool {
    text.match_indices(ty).any(|(at, _)| {
        let before = text[..at].trim_end_matches([' ', '\t']);
        let after = text[at + ty.len()..].trim_start_matches([' ', '\t']);
        before.ends_with('(') && after.starts_with(')')
    })
}

fn includes_c_file(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim_start();
        l.strip_prefix('#')
            .map(str::trim_start)
            .and_then(|l| l.strip_prefix("include"))
            .map(str::trim)
            .is_some_and(|f| f.starts_with('"') && f.ends_with(".c\""))
    })
}

/// For a C compile (`argv` as the compiler gets it): copies of its source
/// and of the package's files it includes with adapters, given to clang by
/// a virtual file system overlay (`-ivfsoverlay`: the command line, the
/// file names in diagnostics and the depfile stay the originals'), or
/// `None` when there is nothing to adapt.
pub(crate) fn adapt(
    compiler: &std::path::Path,
    argv: &[String],
) -> anyhow::Result<Option<Adapted>> {
    adapt_in(compiler, argv, &std::env::current_dir()?)
}

/// [`adapt`], with the package's files being those under `tree`.
fn adapt_in(
    compiler: &std::path::Path,
    argv: &[String],
    tree: &std::path::Path,
) -> anyhow::Result<Option<Adapted>> {
    let sources: Vec<usize> = (0..argv.len())
        .filter(|&i| {
            [".c", ".cpp", ".cc", ".cxx"]
                .iter()
                .any(|e| argv[i].ends_with(e))
                && !argv[i].starts_with('-')
        })
        .collect();
    let [src_at] = sources[..] else {
        return Ok(None);
    };
    let src = &argv[src_at];
    let Ok(text) = std::fs::read_to_string(src) else {
        return Ok(None);
    };
    // Cython declares every callback with CPython's full parameter list.
    if text
        .lines()
        .next()
        .is_some_and(|l| l.contains("Generated by Cython"))
        || !(CALLBACK_TYPES.iter().any(|t| casts_to(&text, t)) || includes_c_file(&text))
    {
        return Ok(None);
    }
    let mut check = Vec::with_capacity(argv.len() + 3);
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-o" | "-MF" | "-MT" | "-MQ" => {
                it.next();
            }
            "-c" | "-MD" | "-MMD" => {}
            _ if a.starts_with("-Werror") || (a.starts_with("-o") && a.len() > 2) => {}
            _ => check.push(a.clone()),
        }
    }
    check.extend(
        [
            "-fsyntax-only",
            "-Wno-everything",
            "-Wcast-function-type-strict",
        ]
        .map(String::from),
    );
    let out = std::process::Command::new(compiler).args(&check).output()?;
    // The source and the package's own files it includes (under the
    // directory the build runs in); never the sysroot's or CPython's.
    let tree = tree.canonicalize()?;
    let mut scratch = Vec::new();
    let mut roots = Vec::new();
    let mut notes = Vec::new();
    for (file, found) in casts_by_file(&String::from_utf8_lossy(&out.stderr)) {
        let Ok(original) = std::path::Path::new(&file).canonicalize() else {
            continue;
        };
        if file != *src && !original.starts_with(&tree) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&original) else {
            continue;
        };
        let Some((copy, done)) = rewrite(&text, &file, &found) else {
            continue;
        };
        let tmp = original.with_file_name(format!(
            ".eryx-fpcast-{}-{}",
            std::process::id(),
            original
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("src.c")
        ));
        std::fs::write(&tmp, copy)?;
        roots.push(serde_json::json!({
            "name": original,
            "type": "file",
            "external-contents": tmp,
        }));
        scratch.push(tmp);
        notes.extend(done);
    }
    if roots.is_empty() {
        return Ok(None);
    }
    let overlay = std::path::Path::new(src)
        .with_file_name(format!(".eryx-fpcast-{}-overlay.yaml", std::process::id()));
    // YAML is a superset of JSON; clang reads either.
    let yaml = serde_json::json!({
        "version": 0,
        "use-external-names": false,
        "roots": roots,
    });
    std::fs::write(&overlay, yaml.to_string())?;
    let mut new_argv = argv.to_vec();
    new_argv.splice(
        src_at..src_at,
        ["-ivfsoverlay".to_string(), overlay.display().to_string()],
    );
    scratch.push(overlay);
    Ok(Some(Adapted {
        scratch,
        argv: new_argv,
        notes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIAG: &str = "src/_m.c:7:14: warning: cast from 'PyObject *(*)(MatchObject *)' (aka 'struct _object *(*)(struct MatchObject *)') to 'getter' (aka 'struct _object *(*)(struct _object *, void *)') converts to incompatible function type [-Wcast-function-type-strict]
src/_m.c:11:18: warning: cast from 'PyObject *(*)(MatchObject *)' (aka 'struct _object *(*)(struct MatchObject *)') to 'PyCFunction' (aka 'struct _object *(*)(struct _object *, struct _object *)') converts to incompatible function type [-Wcast-function-type-strict]
src/_m.c:12:13: warning: cast from 'PyObject *(*)(MatchObject *, PyObject *, PyObject *)' (aka 'struct _object *(*)(struct MatchObject *, struct _object *, struct _object *)') to 'PyCFunction' (aka 'struct _object *(*)(struct _object *, struct _object *)') converts to incompatible function type [-Wcast-function-type-strict]
include/x.h:3:1: warning: cast from 'PyObject *(*)(PyObject *)' to 'getter' (aka 'struct _object *(*)(struct _object *, void *)') converts to incompatible function type [-Wcast-function-type-strict]
";

    const SRC: &str = "#include <Python.h>
typedef struct MatchObject MatchObject;
static PyObject *m_regs(MatchObject *self) { return NULL; }
static PyObject *m_copy(MatchObject *self) { return NULL; }
static PyObject *m_sub(MatchObject *self, PyObject *a, PyObject *k) { return NULL; }
static PyGetSetDef getset[] = {
    {\"regs\", (getter)m_regs, NULL},
    {NULL}
};
static PyMethodDef methods[] = {
    {\"__copy__\", (PyCFunction)m_copy, METH_NOARGS},
    {\"sub\", (PyCFunction)m_sub, METH_VARARGS | METH_KEYWORDS},
    {NULL}
};
";

    #[test]
    fn only_casts_to_callbacks_with_other_parameter_counts_in_the_file_count() {
        let c = casts(DIAG, "src/_m.c");
        assert_eq!(c.len(), 3, "{c:?}");
        assert_eq!(c[2].params.len(), 3);
        assert_eq!(
            (c[0].line, c[0].column, c[0].target.as_str()),
            (7, 14, "getter")
        );
        assert_eq!(c[0].params, ["MatchObject *"]);
        assert_eq!(c[0].target_ret, "struct _object *");
        assert_eq!(c[0].target_params, ["struct _object *", "void *"]);
        assert_eq!(c[1].target, "PyCFunction");
    }

    #[test]
    fn casts_name_adapters_defined_before_their_declaration() {
        let c = casts(DIAG, "src/_m.c");
        let (out, notes) = rewrite(SRC, "src/_m.c", &c).unwrap();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes[0].contains("`m_regs` takes 1 parameter(s) but is called as `getter` with 2")
        );
        assert!(
            out.contains(
                "static struct _object * __eryx_fpcast_0_m_regs(struct _object * a0, void * a1) \
             { return (struct _object *)m_regs((MatchObject *)a0); }\n#line 6 \"src/_m.c\"\n\
             static PyGetSetDef getset[] = {"
            ),
            "{out}"
        );
        assert!(
            out.contains("{\"regs\", (getter)__eryx_fpcast_0_m_regs, NULL},"),
            "{out}"
        );
        assert!(
            out.contains("(PyCFunction)__eryx_fpcast_1_m_copy, METH_NOARGS"),
            "{out}"
        );
        assert!(
            out.contains("#line 10 \"src/_m.c\"\nstatic PyMethodDef methods[] = {"),
            "{out}"
        );
        // Three-parameter methods are CPython's flags at work: unchanged.
        assert!(out.contains("(PyCFunction)m_sub, METH_VARARGS"), "{out}");
    }

    #[test]
    fn a_noargs_method_with_three_parameters_is_called_with_a_null_third() {
        // astropy's `_wcs._sanity_check(self, args, kwds)` in a
        // `METH_NOARGS` entry: CPython calls it with two, which trapped.
        let src = SRC.replace(
            "(PyCFunction)m_sub, METH_VARARGS | METH_KEYWORDS",
            "(PyCFunction)m_sub, METH_NOARGS, \"\"",
        );
        let c = casts(DIAG, "src/_m.c");
        let (out, notes) = rewrite(&src, "src/_m.c", &c).unwrap();
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(
            notes[2].contains("`m_sub` takes 3 parameter(s) but is called as `PyCFunction` with 2"),
            "{notes:?}"
        );
        assert!(
            out.contains(
                "return (struct _object *)m_sub((MatchObject *)a0, (PyObject *)a1, (PyObject *)0); }"
            ),
            "{out}"
        );
        assert!(
            out.contains("(PyCFunction)__eryx_fpcast_2_m_sub, METH_NOARGS"),
            "{out}"
        );
    }

    #[test]
    fn method_flags_are_read_up_to_the_entrys_end() {
        assert!(two_argument_flags(", METH_NOARGS, \"\"},"));
        assert!(two_argument_flags(" , METH_O | METH_CLASS, doc},"));
        assert!(!two_argument_flags(", METH_VARARGS | METH_KEYWORDS, doc},"));
        assert!(!two_argument_flags(", METH_FASTCALL | METH_KEYWORDS},"));
        assert!(!two_argument_flags(", flags_of_a_macro},"));
        assert!(!two_argument_flags(");"));
    }

    #[test]
    fn a_function_definition_keeps_its_return_type_line() {
        let lines = [
            "static int",
            "exec_module(PyObject *m)",
            "{",
            "    x = (getter)f;",
            "}",
        ];
        assert_eq!(declaration_start(&lines, 3), 0);
        assert_eq!(
            split_fn_type("void (*)(void)"),
            Some(("void".into(), vec![]))
        );
        assert_eq!(
            split_fn_type("int (*)(int (*)(int, int), char *)"),
            Some((
                "int".into(),
                vec!["int (*)(int, int)".into(), "char *".into()]
            ))
        );
    }

    #[test]
    fn casts_hidden_in_macros_are_left_alone() {
        let c = vec![Cast {
            line: 1,
            column: 5,
            target: "getter".into(),
            params: vec!["PyObject *".into()],
            target_ret: "struct _object *".into(),
            target_params: vec!["struct _object *".into(), "void *".into()],
        }];
        assert_eq!(rewrite("    GETTER(f)\n", "a.c", &c), None);
    }

    #[test]
    fn casts_are_found_with_or_without_spaces_in_their_parentheses() {
        assert!(casts_to(
            "{\"n\", ( PyCFunction )f, METH_NOARGS}",
            "PyCFunction"
        ));
        assert!(casts_to("(getter)g", "getter"));
        assert!(!casts_to("PyCFunction f;", "PyCFunction"));
        assert!(!casts_to("(PyCFunctionFast)f", "PyCFunction"));
    }

    #[test]
    fn unity_builds_are_found_by_their_c_includes() {
        assert!(includes_c_file(
            "#include <Python.h>\n#include \"bufferutil.c\"\n"
        ));
        assert!(includes_c_file("#  include   \"x/y.c\"  \n"));
        assert!(!includes_c_file(
            "#include \"x.h\"\n#include <y.c>\n// \"z.c\"\n"
        ));
        let d = format!(
            "{DIAG}c-ext/part.c:9:5: warning: cast from 'PyObject *(*)(PyObject *)' (aka 'struct _object *(*)(struct _object *)') to 'PyCFunction' (aka 'struct _object *(*)(struct _object *, struct _object *)') converts to incompatible function type [-Wcast-function-type-strict]\n"
        );
        let files: Vec<(String, usize)> = casts_by_file(&d)
            .into_iter()
            .map(|(f, c)| (f, c.len()))
            .collect();
        assert_eq!(
            files,
            [
                ("src/_m.c".to_string(), 3),
                ("include/x.h".to_string(), 1),
                ("c-ext/part.c".to_string(), 1)
            ]
        );
    }

    #[test]
    fn an_included_files_casts_are_adapted_through_an_overlay() {
        // A unity build as zstandard's: the casts are in an included `.c`
        // file. Compiled for the host (the adapters are plain C); the
        // command line and the depfile keep naming the original files.
        let Some(clang) = ["clang-19", "clang"]
            .iter()
            .find_map(|c| crate::wheel::on_path(c))
        else {
            panic!("no clang on PATH (the cross compiler's tests need it)");
        };
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("types.h"),
            "typedef struct _object PyObject;\n\
             typedef PyObject *(*PyCFunction)(PyObject *, PyObject *);\n",
        )
        .unwrap();
        std::fs::write(
            d.join("part.c"),
            "static PyObject *one(PyObject *self) { return self; }\n\
             PyCFunction table[] = {\n    (PyCFunction)one,\n};\n",
        )
        .unwrap();
        let main = d.join("main.c");
        std::fs::write(
            &main,
            "#include \"types.h\"\n#include \"part.c\"\n\
             int main(void) { return table[0](0, 0) != 0; }\n",
        )
        .unwrap();
        let obj = d.join("main.o");
        let dep = d.join("main.d");
        let argv: Vec<String> = [
            "-c",
            main.to_str().unwrap(),
            "-o",
            obj.to_str().unwrap(),
            "-MD",
            "-MF",
            dep.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec();
        let a = adapt_in(&clang, &argv, d)
            .unwrap()
            .expect("a cast to adapt");
        assert_eq!(a.notes.len(), 1, "{:?}", a.notes);
        assert!(
            a.notes[0].ends_with(
                "part.c:3: `one` takes 1 parameter(s) but is called as `PyCFunction` with 2"
            ),
            "{:?}",
            a.notes
        );
        let out = std::process::Command::new(&clang)
            .args(&a.argv)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let nm = std::process::Command::new("nm").arg(&obj).output().unwrap();
        assert!(String::from_utf8_lossy(&nm.stdout).contains("__eryx_fpcast_0_one"));
        let deps = std::fs::read_to_string(&dep).unwrap();
        assert!(
            deps.contains("part.c") && !deps.contains(".eryx-fpcast"),
            "{deps}"
        );
        assert!(a.argv.iter().any(|x| x == main.to_str().unwrap()));
        for f in &a.scratch {
            std::fs::remove_file(f).unwrap();
        }
    }
}
