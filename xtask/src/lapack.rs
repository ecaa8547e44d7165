//! LAPACK and BLAS for the guest, from reference LAPACK's Fortran (Debian's
//! `lapack` source package) translated to C with f2c.
//!
//! No Fortran compiler reachable here targets wasm32 (Debian's flang stops at
//! "target not implemented"), and the C LAPACKs packaged elsewhere are cut
//! out of Debian's sources. f2c translates Fortran 77; reference LAPACK 3.12
//! is Fortran 77 but for a handful of Fortran 90 habits, which
//! [`f77ify`] rewrites first: `EXIT`/`CYCLE` become `GO TO`s, `::`
//! declarations with `INTENT`/`EXTERNAL` attributes lose them, `CHARACTER(1)`
//! becomes `CHARACTER*1`, `AIMAG` of double complex `DIMAG`, `MAXLOC` over a
//! section a call of a helper, `HUGE(ZERO)` its value, small `WORK(1:3) = 0`
//! one assignment per element, `RECURSIVE` is dropped (f2c's `-a` keeps
//! locals on the stack). What is written in free-form Fortran 90 (the
//! rotations `xLARTG`/`xROTG`, the norms `xNRM2`, `xLASSQ`, `xLAMCH`, the NaN
//! checks) is eryx's C (`xtask/clibs/lapack/`). Routines that still do not
//! translate are left out and listed in the build's log (`LEFT-OUT`): the
//! extra-precise refinements `x*RFSX` (they need XBLAS), QZ's `xLAQZ*` (so
//! `xGGES3`/`xGGEV3`), `xTRSYL3`, `xBDSVDX`, the two-stage tridiagonal
//! reductions and `xGETSQRHRT`.
//!
//! f2c passes every CHARACTER argument's length after the others and makes a
//! subroutine return `int`; C callers of LAPACK (scipy, CBLAS) pass no
//! lengths and declare subroutines `void`, and in wasm a call must match its
//! callee's type exactly (wasm-ld links a mismatched call to a trap). So
//! every translated routine is renamed `eryx_f2c_<name>` (a header each
//! translated file includes) and exported through a wrapper with
//! gfortran's interface: no lengths (it passes 1, LAPACK's flags being
//! `CHARACTER*1`, or for a `CHARACTER*(*)` argument such as `ILAENV`'s
//! routine name the C string's length), `void` subroutines, one trailing
//! underscore (f2c gives names with an underscore two). REAL functions
//! return `float` (`-R`), as gfortran's do, and a COMPLEX function's result
//! goes through a first pointer argument, which is how the wasm32 C ABI
//! returns a `float _Complex` anyway.
//!
//! numpy keeps its own `lapack_lite`: its `umath_linalg` declares LAPACK's
//! subroutines as returning `int`, which these exports are not.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use regex::Regex;

use crate::{process, progress};

/// The translation's own version, a definition in the library's compile
/// flags (so in the keys of the library and of every wheel built with it):
/// a change to the rewriting or the wrappers must bump it.
pub(crate) const TRANSLATION: &str = "-DERYX_F2C_TRANSLATION=5";

/// Routines whose Fortran 90 is replaced by eryx's C (the files are not
/// translated): `xtask/clibs/lapack/lapack_f90.c`.
const WRITTEN_IN_C: &[&str] = &[
    "xerbla",
    "xerbla_array",
    "disnan",
    "sisnan",
    "dlaisnan",
    "slaisnan",
];

/// Prototypes (f2c's form: a subroutine returns `int`) of eryx's C
/// routines (`xtask/clibs/lapack/lapack_f90.c`), renamed and exported like
/// the translated ones.
const C_PROTOTYPES: &[&str] = &[
    "extern logical disnan_(doublereal *din);",
    "extern logical sisnan_(real *sin);",
    "extern logical dlaisnan_(doublereal *a, doublereal *b);",
    "extern logical slaisnan_(real *a, real *b);",
    "extern doublereal dlamch_(char *cmach, ftnlen cmach_len);",
    "extern real slamch_(char *cmach, ftnlen cmach_len);",
    "extern doublereal dlamc3_(doublereal *a, doublereal *b);",
    "extern real slamc3_(real *a, real *b);",
    "extern doublereal droundup_lwork__(integer *lwork);",
    "extern real sroundup_lwork__(integer *lwork);",
    "extern int dlartg_(doublereal *f, doublereal *g, doublereal *c, doublereal *s, doublereal *r);",
    "extern int slartg_(real *f, real *g, real *c, real *s, real *r);",
    "extern int zlartg_(doublecomplex *f, doublecomplex *g, doublereal *c, doublecomplex *s, doublecomplex *r);",
    "extern int clartg_(complex *f, complex *g, real *c, complex *s, complex *r);",
    "extern int dlassq_(integer *n, doublereal *x, integer *incx, doublereal *scale, doublereal *sumsq);",
    "extern int slassq_(integer *n, real *x, integer *incx, real *scale, real *sumsq);",
    "extern int zlassq_(integer *n, doublecomplex *x, integer *incx, doublereal *scale, doublereal *sumsq);",
    "extern int classq_(integer *n, complex *x, integer *incx, real *scale, real *sumsq);",
    "extern doublereal dnrm2_(integer *n, doublereal *x, integer *incx);",
    "extern real snrm2_(integer *n, real *x, integer *incx);",
    "extern doublereal dznrm2_(integer *n, doublecomplex *x, integer *incx);",
    "extern real scnrm2_(integer *n, complex *x, integer *incx);",
    "extern int drotg_(doublereal *a, doublereal *b, doublereal *c, doublereal *s);",
    "extern int srotg_(real *a, real *b, real *c, real *s);",
    "extern int zrotg_(doublecomplex *a, doublecomplex *b, doublereal *c, doublecomplex *s);",
    "extern int crotg_(complex *a, complex *b, real *c, complex *s);",
    "extern integer iexmxld_(integer *n, doublereal *x);",
    "extern integer iexmxls_(integer *n, real *x);",
];

/// f2c's run-time functions the translations call (eryx's, in
/// `xtask/clibs/lapack/f2c_runtime.c`): renamed like the routines, so that
/// a program with f2c code of its own (SuperLU and UNU.RAN in scipy define
/// `c_abs`, `z_div`, ...) links beside them.
const F2C_RUNTIME: &[&str] = &[
    "c_abs", "z_abs", "r_imag", "d_imag", "r_cnjg", "d_cnjg", "z_div", "c_div", "z_sqrt", "c_sqrt",
    "z_exp", "c_exp", "pow_dd", "pow_di", "pow_ri", "pow_ii", "pow_zi", "pow_ci", "d_sign",
    "r_sign", "i_dnnt", "i_nint", "d_lg10", "r_lg10", "i_len", "s_cmp", "s_copy", "s_cat",
];

/// The f2c translator and its header, installed with apt when missing.
fn f2c_tools() -> Result<PathBuf> {
    let header = Path::new("/usr/include/f2c.h");
    let found = || {
        Command::new("f2c")
            .arg("-v")
            .output()
            .is_ok_and(|o| o.status.success())
            && header.is_file()
    };
    if !found() {
        crate::toolchain::apt_install(
            &["f2c", "libf2c2-dev"],
            "LAPACK for the guest is translated from Fortran",
        )?;
        if !found() {
            bail!(
                "LAPACK for the guest is translated from Fortran with f2c, which is not \
                 installed (or {} is missing). Fix: `sudo apt-get install f2c libf2c2-dev`",
                header.display()
            );
        }
    }
    Ok(header.to_path_buf())
}

/// The C sources of LAPACK, BLAS and CBLAS's Fortran helpers for the
/// unpacked LAPACK tree `top`, translated into `top/eryx-f2c` (once per
/// translation version); `f2c.h` is copied there too.
pub(crate) fn sources(top: &Path) -> Result<Vec<PathBuf>> {
    let header = f2c_tools()?;
    let out = top.join("eryx-f2c");
    let marker = out.join("TRANSLATED");
    let f2c_version = Command::new("f2c")
        .arg("-v")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let stamp = format!("{TRANSLATION}\n{f2c_version}");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(stamp.as_str()) {
        translate(top, &out, &header)?;
        std::fs::write(&marker, &stamp)?;
    }
    let mut list: Vec<PathBuf> = std::fs::read_dir(&out)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    list.sort();
    Ok(list)
}

fn fortran_sources(top: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for dir in ["SRC", "BLAS/SRC"] {
        for e in std::fs::read_dir(top.join(dir))
            .with_context(|| format!("{}: not LAPACK's source tree", top.display()))?
            .flatten()
        {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "f" || x == "F") {
                files.push(p);
            }
        }
    }
    for f in [
        "INSTALL/ilaver.f",
        "INSTALL/lsame.f",
        "CBLAS/src/cdotcsub.f",
        "CBLAS/src/cdotusub.f",
        "CBLAS/src/zdotcsub.f",
        "CBLAS/src/zdotusub.f",
        "CBLAS/src/sdotsub.f",
        "CBLAS/src/ddotsub.f",
        "CBLAS/src/dsdotsub.f",
        "CBLAS/src/sdsdotsub.f",
        "CBLAS/src/snrm2sub.f",
        "CBLAS/src/dnrm2sub.f",
        "CBLAS/src/scnrm2sub.f",
        "CBLAS/src/dznrm2sub.f",
        "CBLAS/src/sasumsub.f",
        "CBLAS/src/dasumsub.f",
        "CBLAS/src/scasumsub.f",
        "CBLAS/src/dzasumsub.f",
        "CBLAS/src/isamaxsub.f",
        "CBLAS/src/idamaxsub.f",
        "CBLAS/src/icamaxsub.f",
        "CBLAS/src/izamaxsub.f",
    ] {
        let p = top.join(f);
        if p.is_file() {
            files.push(p);
        }
    }
    files.retain(|p| {
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        !WRITTEN_IN_C.contains(&stem)
    });
    files.sort();
    Ok(files)
}

fn translate(top: &Path, out: &Path, header: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out)?;
    let sources = fortran_sources(top)?;
    progress!(
        "translating LAPACK {} Fortran files to C with f2c",
        sources.len()
    );
    let rw = Rewriter::new();
    let mut stems = Vec::new();
    for src in &sources {
        let stem = src
            .file_stem()
            .and_then(|s| s.to_str())
            .context("a Fortran file name")?
            .to_string();
        let text = if src.extension().is_some_and(|e| e == "F") {
            // The two-stage reductions' OpenMP lines (`#if defined(_OPENMP)`).
            let o = process::capture(
                Command::new("cpp")
                    .args(["-P", "-traditional-cpp"])
                    .arg(src),
                &format!("preprocessing {}", src.display()),
            )?;
            String::from_utf8_lossy(&o.stdout).into_owned()
        } else {
            std::fs::read_to_string(src).with_context(|| format!("{}", src.display()))?
        };
        std::fs::write(out.join(format!("{stem}.f")), rw.f77ify(&stem, &text))?;
        stems.push(stem);
    }
    // f2c in batches, two at a time; a file it cannot translate leaves no
    // `.c` (its errors go to the log below).
    let batches: Vec<Vec<String>> = stems.chunks(100).map(|c| c.to_vec()).collect();
    let log = std::sync::Mutex::new(String::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(batch) = batches.get(i) else { return };
                    let output = Command::new("f2c")
                        .args(["-A", "-a", "-R", "-P", "-w"])
                        .args(batch.iter().map(|s| format!("{s}.f")))
                        .current_dir(out)
                        .output();
                    if let Ok(o) = output {
                        log.lock()
                            .expect("log lock")
                            .push_str(&String::from_utf8_lossy(&o.stderr));
                    }
                }
            });
        }
    });
    let mut left_out = Vec::new();
    for stem in &stems {
        if !out.join(format!("{stem}.c")).is_file() {
            left_out.push(stem.clone());
        }
    }
    let log = log.into_inner().expect("log lock");
    let errors: Vec<&str> = log.lines().filter(|l| l.starts_with("Error")).collect();
    std::fs::write(
        out.join("LEFT-OUT"),
        format!(
            "routines f2c did not translate ({}):\n{}\n\n{}\n",
            left_out.len(),
            left_out.join(" "),
            errors.join("\n")
        ),
    )?;
    progress!(
        "f2c translated {} files; left out {} (see {})",
        stems.len() - left_out.len(),
        left_out.len(),
        out.join("LEFT-OUT").display()
    );
    if left_out.len() > 100 {
        bail!(
            "f2c translated too little of LAPACK ({} of {} files left out; see {})",
            left_out.len(),
            stems.len(),
            out.join("LEFT-OUT").display()
        );
    }
    std::fs::copy(header, out.join("f2c.h"))?;
    // Prototypes: the first line of each `.P` file f2c wrote.
    let mut protos = Vec::new();
    for stem in &stems {
        let p = out.join(format!("{stem}.P"));
        if let Ok(text) = std::fs::read_to_string(&p) {
            if let Some(first) = text.lines().next().filter(|l| l.starts_with("extern ")) {
                let star = star_arguments(&std::fs::read_to_string(out.join(format!("{stem}.f")))?);
                protos.push((first.to_string(), star));
            }
            let _ = std::fs::remove_file(&p);
        }
        let _ = std::fs::remove_file(out.join(format!("{stem}.f")));
    }
    for p in C_PROTOTYPES {
        protos.push((p.to_string(), BTreeSet::new()));
    }
    let (names, exports) = wrappers(&protos)?;
    std::fs::write(out.join("eryx_f2c_names.h"), names)?;
    std::fs::write(out.join("eryx_lapack_exports.c"), exports)?;
    // Each translated file sees the renames (the exports file defines the
    // real names, so it does not).
    for stem in &stems {
        let c = out.join(format!("{stem}.c"));
        if let Ok(text) = std::fs::read_to_string(&c) {
            std::fs::write(&c, format!("#include \"eryx_f2c_names.h\"\n{text}"))?;
        }
    }
    // CBLAS, LAPACK's C interface to BLAS (`cblas_dgemm`): it calls the
    // exported names, so without the CHARACTER lengths it would pass.
    for h in ["cblas.h", "cblas_f77.h", "cblas_64.h"] {
        let from = top.join("CBLAS/include").join(h);
        let text = std::fs::read_to_string(&from)
            .with_context(|| format!("{}: no CBLAS/include/{h}", top.display()))?;
        std::fs::write(
            out.join(h),
            text.replace("#define BLAS_FORTRAN_STRLEN_END", "/* no string lengths */"),
        )?;
    }
    std::fs::write(
        out.join("cblas_mangling.h"),
        "#ifndef F77_HEADER_INCLUDED\n#define F77_HEADER_INCLUDED\n\
         #define F77_GLOBAL(lcname, UCNAME) lcname##_\n#endif\n",
    )?;
    for e in std::fs::read_dir(top.join("CBLAS/src"))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("cblas_") && name.ends_with(".c") {
            std::fs::copy(e.path(), out.join(&name))?;
        }
    }
    Ok(())
}

/// The names of a Fortran file's `CHARACTER*(*)` dummies (lower case).
fn star_arguments(fortran: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let star = Regex::new(r"(?i)(\w+)\s*\*\s*\(\s*\*\s*\)").expect("regex");
    let lead = Regex::new(r"(?i)^\s+CHARACTER\s*\*\s*\(\s*\*\s*\)\s*(.*)").expect("regex");
    for line in fortran.lines() {
        if line.starts_with(['c', 'C', '*', '!']) {
            continue;
        }
        let upper = line.trim_start().to_ascii_uppercase();
        if !upper.starts_with("CHARACTER") {
            continue;
        }
        if let Some(c) = lead.captures(line) {
            for n in c[1].split(',') {
                let n = n.trim().split('(').next().unwrap_or_default();
                names.insert(n.to_ascii_lowercase());
            }
        }
        for c in star.captures_iter(line) {
            names.insert(c[1].to_ascii_lowercase());
        }
    }
    names
}

/// The header renaming every routine to its internal `eryx_f2c_` name, and
/// the C file of wrappers exporting gfortran's names and types: no
/// CHARACTER lengths, a subroutine returning `void` (f2c's return `int`;
/// a wasm call must match its callee's type exactly, and scipy and CBLAS
/// declare them `void`), one trailing underscore.
fn wrappers(protos: &[(String, BTreeSet<String>)]) -> Result<(String, String)> {
    let proto = Regex::new(r"^extern (\w+) (\w+)\((.*)\);$").expect("regex");
    let mut renamed: BTreeSet<String> = ["xerbla_", "xerbla_array__"]
        .iter()
        .chain(F2C_RUNTIME)
        .map(|s| s.to_string())
        .collect();
    let mut code = String::from(
        "/* Generated by `cargo xtask` (xtask/src/lapack.rs): LAPACK's routines\n \
         * under gfortran's names and types, without f2c's CHARACTER lengths. */\n\
         #include <string.h>\n#include \"f2c.h\"\n\n",
    );
    for (line, star) in protos {
        let c = proto
            .captures(line)
            .with_context(|| format!("an f2c prototype not understood: {line}"))?;
        let (ret, name, params) = (&c[1], &c[2], &c[3]);
        renamed.insert(name.to_string());
        let mut params: Vec<&str> = params
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        // A CHARACTER*1 function (`CHLA_TRANSTYPE`): f2c passes the result's
        // buffer and length first; C callers (scipy's cython_lapack) take
        // the `char` it returns.
        let character = ret == "H_f";
        if character {
            if params.len() < 2 || !params[1].starts_with("ftnlen") {
                bail!("a CHARACTER function f2c declared another way: {line}");
            }
            params.drain(..2);
        }
        let export = match name.strip_suffix("__") {
            Some(base) => format!("{base}_"),
            None => name.to_string(),
        };
        let inner = format!("eryx_f2c_{name}");
        let keep: Vec<&str> = params
            .iter()
            .copied()
            .filter(|p| !p.starts_with("ftnlen"))
            .collect();
        let arg_names: Vec<&str> = keep
            .iter()
            .map(|p| p.rsplit([' ', '*']).next().unwrap_or_default())
            .collect();
        let mut call_args: Vec<String> = arg_names.iter().map(|a| a.to_string()).collect();
        for l in params.iter().filter(|p| p.starts_with("ftnlen")) {
            let var = l
                .rsplit(' ')
                .next()
                .and_then(|v| v.strip_suffix("_len"))
                .with_context(|| format!("a length parameter not understood: {l} in {line}"))?;
            let arg = arg_names
                .iter()
                .find(|a| **a == var || **a == format!("{var}__"))
                .with_context(|| format!("no argument for length {l} in {line}"))?;
            call_args.push(if star.contains(var) {
                format!("(ftnlen)strlen({arg})")
            } else {
                "(ftnlen)1".to_string()
            });
        }
        if character {
            code.push_str(&format!(
                "extern void {inner}(char *ret_val, ftnlen ret_val_len{}{});\n\
                 char {export}({}) {{ char r = ' '; {inner}(&r, (ftnlen)1{}{}); return r; }}\n",
                if params.is_empty() { "" } else { ", " },
                params.join(", "),
                if keep.is_empty() {
                    "void".to_string()
                } else {
                    keep.join(", ")
                },
                if call_args.is_empty() { "" } else { ", " },
                call_args.join(", "),
            ));
            continue;
        }
        let inner_ret = if matches!(ret, "Z_f" | "C_f" | "VOID") {
            "void"
        } else {
            ret
        };
        let export_ret = if inner_ret == "int" {
            "void"
        } else {
            inner_ret
        };
        let call = format!("{inner}({})", call_args.join(", "));
        code.push_str(&format!(
            "extern {inner_ret} {inner}({});\n{export_ret} {export}({}) {{ {}{call}; }}\n",
            params.join(", "),
            if keep.is_empty() {
                "void".to_string()
            } else {
                keep.join(", ")
            },
            if export_ret == "void" { "" } else { "return " },
        ));
    }
    let names: String = renamed
        .iter()
        .map(|n| format!("#define {n} eryx_f2c_{n}\n"))
        .collect();
    Ok((names, code))
}

/// The Fortran 90 rewrites (module docs), for one fixed-form file.
struct Rewriter {
    do_stmt: Regex,
    exit_cycle: Regex,
    external_attr: Regex,
    decl_attr: Regex,
    maxloc: Regex,
    intrinsic_maxloc: Regex,
    intrinsic_huge: Regex,
    huge_zero: Regex,
    work_slice: Regex,
    character_len: Regex,
    aimag: Regex,
    recursive: Regex,
}

impl Rewriter {
    fn new() -> Self {
        let r = |s: &str| Regex::new(s).expect("regex");
        Self {
            do_stmt: r(r"(?i)^DO\s*(\d+)?\s*,?\s*(WHILE\b|[A-Z]\w*\s*=)"),
            exit_cycle: r(r"(?i)^(.*?)\b(EXIT|CYCLE)\s*$"),
            external_attr: r(r"(?i)^(\s*)([A-Z][A-Z0-9*() ]*?)\s*,\s*EXTERNAL\s*::\s*(.*)$"),
            decl_attr: r(
                r"(?i)^(\s*)([A-Z][A-Z0-9*() ]*?)\s*(,\s*INTENT\s*\(\s*\w+\s*\))?\s*::\s*(.*)$",
            ),
            maxloc: r(r"MAXLOC\(\s*(\w+)\(\s*(.+?)\s*:\s*(.+?)\s*\)\s*,\s*1\s*\)"),
            intrinsic_maxloc: r(r"INTRINSIC(.*),\s*MAXLOC\b"),
            intrinsic_huge: r(r"INTRINSIC(.*),\s*HUGE\b"),
            huge_zero: r(r"HUGE\(\s*ZERO\s*\)"),
            work_slice: r(r"^(\s*)(\w*WORK)\(\s*(\d+)\s*:\s*(\d+)\s*\)\s*=\s*(\S+)\s*$"),
            character_len: r(r"(?i)CHARACTER\s*\(\s*(\d+)\s*\)"),
            aimag: r(r"\bAIMAG\b"),
            recursive: r(r"(?i)^(\s*)RECURSIVE\s+"),
        }
    }

    fn is_comment(line: &str) -> bool {
        line.starts_with(['c', 'C', '*', '!']) || line.trim().is_empty()
    }

    /// `file` (the routine's name, lower case) rewritten as Fortran 77.
    fn f77ify(&self, file: &str, text: &str) -> String {
        let double = file.starts_with(['d', 'z']);
        let mut lines: Vec<String> = Vec::new();
        for line in text.lines() {
            if Self::is_comment(line) || line.len() < 6 {
                lines.push(line.to_string());
                continue;
            }
            let (head, body) = line.split_at(6.min(line.len()));
            let head_blank = head.trim().is_empty();
            let mut body = self.recursive.replace(body, "$1").into_owned();
            if head_blank && let Some(c) = self.external_attr.captures(&body) {
                lines.push(format!("{head}{}{} {}", &c[1], &c[2], &c[3]));
                body = format!("{}EXTERNAL {}", &c[1], &c[3]);
            }
            if head_blank && let Some(c) = self.decl_attr.captures(&body) {
                body = format!("{}{} {}", &c[1], &c[2], &c[4]);
            }
            body = self
                .maxloc
                .replace_all(&body, |c: &regex::Captures<'_>| {
                    format!(
                        "IEXMXL{}( ({})-({})+1, {}( {} ) )",
                        if double { "D" } else { "S" },
                        &c[3],
                        &c[2],
                        &c[1],
                        &c[2]
                    )
                })
                .into_owned();
            body = self
                .intrinsic_maxloc
                .replace(&body, "INTRINSIC$1")
                .into_owned();
            body = self
                .intrinsic_huge
                .replace(&body, "INTRINSIC$1")
                .into_owned();
            body = self
                .huge_zero
                .replace_all(
                    &body,
                    if double {
                        "1.7976931348623157D+308"
                    } else {
                        "3.4028235E+38"
                    },
                )
                .into_owned();
            if head_blank && let Some(c) = self.work_slice.captures(&body) {
                let (from, to) = (
                    c[3].parse::<u32>().unwrap_or(1),
                    c[4].parse::<u32>().unwrap_or(0),
                );
                for i in from..=to {
                    lines.push(format!("{head}{}{}({i}) = {}", &c[1], &c[2], &c[5]));
                }
                continue;
            }
            body = self
                .character_len
                .replace_all(&body, "CHARACTER*$1")
                .into_owned();
            if file.starts_with('z') {
                body = self.aimag.replace_all(&body, "DIMAG").into_owned();
            }
            // A continuation line holding only CYCLE or EXIT joins its
            // statement, so that the loop rewrite below sees it.
            let continuation = !head_blank
                && head[..5].trim().is_empty()
                && !matches!(head.as_bytes()[5], b' ' | b'0');
            let word = body.trim().to_ascii_uppercase();
            if continuation
                && (word == "CYCLE" || word == "EXIT")
                && let Some(prev) = lines.last_mut()
            {
                let joined = format!("{} {}", prev.trim_end(), body.trim());
                *prev = joined;
                continue;
            }
            lines.push(format!("{head}{body}"));
        }
        self.loops(&lines)
    }

    /// `EXIT` and `CYCLE` as `GO TO`s to labels put after and at the end
    /// of their loop.
    fn loops(&self, lines: &[String]) -> String {
        struct Loop {
            label: Option<String>,
            cycle: Option<u32>,
            exit: Option<u32>,
        }
        let mut out: Vec<String> = Vec::with_capacity(lines.len());
        let mut stack: Vec<Loop> = Vec::new();
        let mut next_label = 99000u32;
        for line in lines {
            if Self::is_comment(line) || line.len() < 7 {
                out.push(line.clone());
                continue;
            }
            let (head, body) = line.split_at(6);
            let label = head[..5].trim().to_string();
            if !matches!(head.as_bytes()[5], b' ' | b'0') {
                out.push(line.clone());
                continue;
            }
            let stmt = body.trim();
            if let Some(c) = self.do_stmt.captures(stmt) {
                stack.push(Loop {
                    label: c.get(1).map(|m| m.as_str().to_string()),
                    cycle: None,
                    exit: None,
                });
                out.push(line.clone());
                continue;
            }
            if let Some(c) = self.exit_cycle.captures(stmt)
                && let Some(top) = stack.last_mut()
            {
                let before = c[1].trim_end();
                let guarded = before.is_empty()
                    || (before.to_ascii_uppercase().starts_with("IF") && before.ends_with(')'));
                if guarded {
                    let target = if c[2].eq_ignore_ascii_case("EXIT") {
                        *top.exit.get_or_insert_with(|| {
                            next_label += 1;
                            next_label
                        })
                    } else if let Some(l) = &top.label {
                        l.parse().unwrap_or(0)
                    } else {
                        *top.cycle.get_or_insert_with(|| {
                            next_label += 1;
                            next_label
                        })
                    };
                    let indent = &body[..body.len() - body.trim_start().len()];
                    let first = format!("{head}{indent}{before}");
                    if before.is_empty() {
                        out.push(format!("{first}GO TO {target}"));
                    } else if first.len() + 12 > 72 {
                        out.push(first);
                        out.push(format!("     $   GO TO {target}"));
                    } else {
                        out.push(format!("{first} GO TO {target}"));
                    }
                    continue;
                }
            }
            let compact: String = stmt
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_ascii_uppercase();
            if compact == "ENDDO"
                && let Some(l) = stack.pop()
            {
                if let Some(c) = l.cycle {
                    out.push(format!("{c:5} CONTINUE"));
                }
                out.push(line.clone());
                if let Some(e) = l.exit {
                    out.push(format!("{e:5} CONTINUE"));
                }
                continue;
            }
            out.push(line.clone());
            if !label.is_empty() {
                while stack
                    .last()
                    .is_some_and(|l| l.label.as_deref() == Some(&label))
                {
                    if let Some(e) = stack.pop().and_then(|l| l.exit) {
                        out.push(format!("{e:5} CONTINUE"));
                    }
                }
            }
        }
        let mut text = out.join("\n");
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_and_cycle_become_go_tos_to_labels_around_the_loop() {
        let src = "      DO WHILE( NOCONV )\n         IF( C.EQ.ZERO ) CYCLE\n         DO I = 1, N\n            IF( A(I).GT.0 ) EXIT\n         END DO\n      END DO\n";
        let out = Rewriter::new().f77ify("dgebal", src);
        assert_eq!(
            out,
            "      DO WHILE( NOCONV )\n         IF( C.EQ.ZERO ) GO TO 99001\n         DO I = 1, N\n            IF( A(I).GT.0 ) GO TO 99002\n         END DO\n99002 CONTINUE\n99001 CONTINUE\n      END DO\n"
        );
    }

    #[test]
    fn declarations_lose_their_fortran_90_attributes() {
        let src = "      CHARACTER, INTENT( IN ) :: WANTS\n      LOGICAL, EXTERNAL :: LSAME\n      CHARACTER(1) NORM\n      WORK(1:3) = 0\n";
        let out = Rewriter::new().f77ify("dlaqz0", src);
        assert_eq!(
            out,
            "      CHARACTER WANTS\n      LOGICAL LSAME\n      EXTERNAL LSAME\n      CHARACTER*1 NORM\n      WORK(1) = 0\n      WORK(2) = 0\n      WORK(3) = 0\n"
        );
    }

    #[test]
    fn wrappers_drop_lengths_and_measure_star_arguments() {
        let protos = vec![
            (
                "extern int dpotrf_(char *uplo, integer *n, doublereal *a, integer *lda, integer *info, ftnlen uplo_len);".to_string(),
                BTreeSet::new(),
            ),
            (
                "extern integer ilaenv_(integer *ispec, char *name__, char *opts, integer *n1, ftnlen name_len, ftnlen opts_len);".to_string(),
                BTreeSet::from(["name".to_string(), "opts".to_string()]),
            ),
            (
                "extern int dorhr_col__(integer *m, doublereal *a);".to_string(),
                BTreeSet::new(),
            ),
            (
                "extern H_f chla_transtype__(char *ret_val, ftnlen ret_val_len, integer *trans);"
                    .to_string(),
                BTreeSet::new(),
            ),
        ];
        let (names, code) = wrappers(&protos).unwrap();
        assert!(names.contains("#define dpotrf_ eryx_f2c_dpotrf_\n"));
        assert!(names.contains("#define dorhr_col__ eryx_f2c_dorhr_col__\n"));
        assert!(code.contains(
            "void dpotrf_(char *uplo, integer *n, doublereal *a, integer *lda, integer *info) { eryx_f2c_dpotrf_(uplo, n, a, lda, info, (ftnlen)1); }"
        ));
        assert!(code.contains(
            "integer ilaenv_(integer *ispec, char *name__, char *opts, integer *n1) { return eryx_f2c_ilaenv_(ispec, name__, opts, n1, (ftnlen)strlen(name__), (ftnlen)strlen(opts)); }"
        ));
        assert!(code.contains(
            "void dorhr_col_(integer *m, doublereal *a) { eryx_f2c_dorhr_col__(m, a); }"
        ));
        assert!(code.contains(
            "char chla_transtype_(integer *trans) { char r = ' '; eryx_f2c_chla_transtype__(&r, (ftnlen)1, trans); return r; }"
        ));
    }

    #[test]
    fn wrappers_name_the_prototype_they_do_not_understand() {
        let fails = |line: &str| {
            wrappers(&[(line.to_string(), BTreeSet::new())])
                .unwrap_err()
                .to_string()
        };
        let e = fails("int dgesv_(integer *n);");
        assert!(
            e.contains("an f2c prototype not understood: int dgesv_(integer *n);"),
            "{e}"
        );
        let e = fails("extern H_f xfun_(integer *n, char *r);");
        assert!(
            e.contains("a CHARACTER function f2c declared another way"),
            "{e}"
        );
        let e = fails("extern int xrou_(char *a, ftnlen a_length);");
        assert!(
            e.contains("a length parameter not understood: ftnlen a_length"),
            "{e}"
        );
    }
}
