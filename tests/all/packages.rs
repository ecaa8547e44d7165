//! Real packages from PyPI, built from their sdists by `cargo xtask wheel`
//! (which `cargo xtask test` runs first) and used through the real
//! pipeline: markupsafe (C), msgpack (Cython-generated C), pydantic with
//! pydantic-core (PyO3) and its pure-Python dependencies, numpy, pytest
//! (pure-Python wheels from PyPI) running a test suite, sympy (which needs
//! `ctypes`), httpx with anyio (which need `ssl`), Pillow (C, with
//! zlib built for the guest by its recipe), PyYAML (libyaml, likewise),
//! lxml (libxml2 and libxslt, likewise) and aiohttp with multidict, yarl,
//! frozenlist and propcache (built from sdists although pure wheels exist).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support;

/// The wheelhouse: `ERYX_WHEELHOUSE`, else `target/wheels`.
fn wheelhouse() -> PathBuf {
    std::env::var_os("ERYX_WHEELHOUSE")
        .map(PathBuf::from)
        .unwrap_or_else(|| support::root().join("target/wheels"))
}

/// The wheel of `project` (normalized file-name prefix, e.g. `pydantic_core-`).
fn wheel(prefix: &str) -> PathBuf {
    let dir = wheelhouse();
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}: run `cargo xtask test` (it builds the wheels)",
                dir.display()
            )
        })
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".whl"))
        })
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!(
            "no {prefix}*.whl in {}: run `cargo xtask test` (or `cargo xtask wheel -r \
             tests/packages.txt`; for the tests of tests/packages-all.txt, `cargo xtask test \
             --all-packages`)",
            dir.display(),
        )
    })
}

/// The wheels of these projects (file-name prefixes, see [`wheel`]).
fn wheels(prefixes: &[&str]) -> Vec<PathBuf> {
    prefixes.iter().map(|p| wheel(p)).collect()
}

fn pydantic_wheels() -> Vec<PathBuf> {
    wheels(&[
        "pydantic-",
        "pydantic_core-",
        "typing_extensions-",
        "typing_inspection-",
        "annotated_types-",
    ])
}

/// Runs `code` in a new sandbox holding `wheels`; returns its stdout.
async fn run_with(wheels: &[PathBuf], code: &str) -> String {
    let mut b = support::builder();
    for w in wheels {
        b = b.package(w);
    }
    let mut sb = b.build().await.expect("building the sandbox");
    match sb.execute(code).await {
        Ok(out) => out.stdout,
        Err(e) => panic!("running failed: {e}"),
    }
}

#[test]
fn built_wheels_are_tagged_for_the_guest_and_carry_bytecode() {
    for prefix in ["markupsafe-", "msgpack-", "pydantic_core-", "numpy-"] {
        let w = wheel(prefix);
        let name = w.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.ends_with("-cp314-cp314-wasi_0_0_0_wasm32.whl"),
            "{name}"
        );
        let zip = zip::ZipArchive::new(std::fs::File::open(&w).unwrap()).unwrap();
        let names: Vec<&str> = zip.file_names().collect();
        assert!(
            names.iter().any(|n| n.ends_with(".cpython-314.pyc")),
            "{name} has no bytecode: {names:?}"
        );
        // Every source's, though the work is dealt out to one guest per
        // core (numpy's 400-odd sources go to two).
        for source in names.iter().filter(|n| n.ends_with(".py")) {
            let (dir, file) = source.rsplit_once('/').unwrap_or(("", source));
            let stem = file.trim_end_matches(".py");
            let pyc = if dir.is_empty() {
                format!("__pycache__/{stem}.cpython-314.pyc")
            } else {
                format!("{dir}/__pycache__/{stem}.cpython-314.pyc")
            };
            assert!(
                names.contains(&pyc.as_str()),
                "{name}: {source} has no {pyc}"
            );
        }
        assert!(
            names
                .iter()
                .any(|n| n.ends_with(".cpython-314-wasm32-wasi.so")),
            "{name} has no guest extension: {names:?}"
        );
        assert!(names.iter().any(|n| n.ends_with(".dist-info/RECORD")));
    }
}

#[tokio::test]
async fn markupsafe_uses_its_c_speedups() {
    let stdout = run_with(
        &[wheel("markupsafe-")],
            "import markupsafe, markupsafe._speedups as s\n\
             print(markupsafe.escape('<a href=\"x\">&</a>'))\n\
             print(markupsafe.escape is s._escape_inner or markupsafe._escape_inner is s._escape_inner)\n\
             print(s.__file__)",
    )
    .await;
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "&lt;a href=&#34;x&#34;&gt;&amp;&lt;/a&gt;");
    assert_eq!(lines[1], "True", "{}", stdout);
    assert!(lines[2].ends_with("_speedups.cpython-314-wasm32-wasi.so"));
}

#[tokio::test]
async fn msgpack_round_trips_through_its_cython_extension() {
    let stdout = run_with(
        &[wheel("msgpack-")],
        "import msgpack, msgpack._cmsgpack as c\n\
             data = {'a': [1, 2.5, None, b'\\x00\\xff', 'ü'], 'n': -2**63}\n\
             b = msgpack.packb(data)\n\
             print(msgpack.unpackb(b) == data, msgpack.Packer is c.Packer, len(b))",
    )
    .await;
    assert!(stdout.starts_with("True True "), "{}", stdout);
}

#[tokio::test]
async fn pydantic_validates_reports_and_describes() {
    let stdout = run_with(
        &pydantic_wheels(),
        r#"
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
class User(BaseModel):
    id: int
    name: str = Field(default="Jane", max_length=8)
print(User(id="7").model_dump())
try:
    User(id="seven", name="far too long")
except ValidationError as e:
    print(e.error_count(), sorted(err["type"] for err in e.errors()))
    print("Input should be a valid integer" in str(e))
print(User.model_json_schema()["properties"]["name"]["maxLength"])
print(TypeAdapter(list[int]).validate_json("[1, 2, 3]"))
"#,
    )
    .await;
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "{'id': 7, 'name': 'Jane'}",
            "2 ['int_parsing', 'string_too_long']",
            "True",
            "8",
            "[1, 2, 3]"
        ],
        "{}",
        stdout
    );
}

#[tokio::test]
async fn pydantic_cores_recursion_guard_raises_instead_of_crashing() {
    let stdout = run_with(
        &pydantic_wheels(),
        r#"
from typing import Optional
from pydantic import BaseModel, ValidationError
class Node(BaseModel):
    child: Optional["Node"] = None
d = {}
d["child"] = d
try:
    Node.model_validate(d)
    print("validated")
except ValidationError as e:
    print([err["type"] for err in e.errors()] == ["recursion_loop"])
print(1 + 1)
"#,
    )
    .await;
    assert_eq!(stdout.trim(), "True\n2", "{}", stdout);
}

#[tokio::test]
async fn numpy_arrays_ufuncs_linalg_fft_and_random() {
    let stdout = run_with(
        &[wheel("numpy-")],
            r#"
import numpy as np
a = np.arange(12, dtype=np.float64).reshape(3, 4)
print(a.dtype, a.shape, a.sum(), np.sqrt(a).round(3)[1].tolist())
m = np.array([[3.0, 1.0], [1.0, 2.0]])
print((m @ m).tolist(), np.linalg.solve(m, [9.0, 8.0]).tolist(), np.linalg.inv(np.eye(2) * 2).tolist())
print(np.fft.fft([1.0, 0.0, 0.0, 0.0]).real.tolist(), np.fft.irfft(np.fft.rfft([1.0, 2.0, 3.0, 4.0])).round(9).tolist())
print(np.random.default_rng(42).integers(0, 100, 5).tolist())
print((np.array([1, 2], dtype=np.int8) + np.int8(127)).tolist(), np.finfo(np.longdouble).bits)
print(np.sort(np.array([3.0, np.nan, 1.0])).tolist(), np.unique(np.array(["b", "a", "b"], dtype=np.dtypes.StringDType())).tolist())
with np.errstate(all="ignore"):
    print(np.array([1.0, -1.0, 0.0]) / 0)
# np.save/np.load/tofile/fromfile need a FILE* of their own: os.dup in
# numpy, which WASI lacks (recipe 0002).
np.save("a.npy", a)
a.tofile("raw.bin")
with open("raw.bin", "rb") as f:
    f.seek(8)
    print(np.load("a.npy").sum(), np.fromfile(f, count=2).tolist(), f.tell())
"#,
    )
    .await;
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "float64 (3, 4) 66.0 [2.0, 2.236, 2.449, 2.646]",
            "[[10.0, 5.0], [5.0, 5.0]] [2.0, 3.0] [[0.5, 0.0], [0.0, 0.5]]",
            "[1.0, 1.0, 1.0, 1.0] [1.0, 2.0, 3.0, 4.0]",
            // The same stream as native numpy's PCG64 for seed 42.
            "[8, 77, 65, 43, 43]",
            "[-128, -127] 128",
            "[1.0, 3.0, nan] ['a', 'b']",
            "[ inf -inf  nan]",
            "66.0 [1.0, 2.0] 24",
        ],
        "{}",
        stdout
    );
}

/// numpy's errors that it raises itself through the floating-point flags
/// (wasm has none; eryx-runtime/src/fenv.rs keeps them in software, shared
/// by all libraries): LAPACK's singular and non-positive-definite matrices
/// (raised in `_umath_linalg`, read in `_multiarray_umath`) and integer
/// division by zero, as natively. Float arithmetic's own flags stay
/// unraised (wasm cannot report them).
#[tokio::test]
async fn numpy_linalg_errors_and_integer_division_by_zero_are_reported() {
    let stdout = run_with(
        &[wheel("numpy-")],
        r#"
import numpy as np, warnings
for name, f in [("inv", lambda: np.linalg.inv(np.zeros((2, 2)))),
                ("solve", lambda: np.linalg.solve(np.zeros((2, 2)), [1.0, 2.0])),
                ("cholesky", lambda: np.linalg.cholesky(np.array([[1.0, 3.0], [2.0, 4.0]]))),
                ("det", lambda: np.linalg.det(np.zeros((2, 2))))]:
    try:
        print(name, f())
    except np.linalg.LinAlgError as e:
        print(name, "LinAlgError:", e)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    print(np.array([1, 2]) // 0, [str(w.message) for w in caught])
with np.errstate(divide="raise"):
    try:
        np.array([7]) % 0
    except FloatingPointError as e:
        print("FloatingPointError:", e)
print(np.linalg.inv(np.eye(2) * 2).tolist())
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "inv LinAlgError: Singular matrix\n\
         solve LinAlgError: Singular matrix\n\
         cholesky LinAlgError: Matrix is not positive definite\n\
         det 0.0\n\
         [0 0] ['divide by zero encountered in floor_divide']\n\
         FloatingPointError: divide by zero encountered in remainder\n\
         [[0.5, 0.0], [0.0, 0.5]]\n"
    );
}

/// numpy reads ctypes types as dtypes (through `_ctypes`, whose base class
/// it checks) and ctypes arrays through their typed buffers; both gave
/// bytes or object dtypes before.
#[tokio::test]
async fn numpy_reads_ctypes_types_and_arrays() {
    let stdout = run_with(
        &[wheel("numpy-")],
        r#"
import ctypes, numpy as np
a = (ctypes.c_double * 3)(1.5, 2, 3)
print(np.asarray(a).dtype, np.asarray(a).tolist(), np.ctypeslib.as_array((ctypes.c_int * 3 * 2)()).shape)
print(np.dtype(ctypes.c_long), np.dtype(ctypes.c_int.__ctype_be__), np.dtype(ctypes.c_ubyte * 4))
class P(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_double)]
print(np.dtype(P).itemsize, np.dtype(P).fields["y"][1])
points = np.frombuffer((P * 2)((1, 2.5), (3, 4.5)), dtype=np.dtype(P))
print(points["x"].tolist(), points["y"].tolist())
# An unaligned record: a packed structure of its 6 bytes.
print(np.ctypeslib.as_ctypes_type(np.int64).__name__, ctypes.sizeof(np.ctypeslib.as_ctypes_type(np.dtype([("a", np.int16), ("b", np.float32)]))))
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "float64 [1.5, 2.0, 3.0] (2, 3)\nint32 >i4 ('u1', (4,))\n16 8\n[1, 3] [2.5, 4.5]\nc_longlong 6\n"
    );
}

#[tokio::test]
#[ignore = "in tests/packages-all.txt: run with `cargo xtask test --all-packages`"]
async fn h3_built_with_cmake_imports_its_cython_modules() {
    // scikit-build-core ran CMake with eryx's toolchain file; FindPython
    // named the Cython modules `h3/_cy/cells.so` (no suffix, which CPython
    // would not import) and the wheel repair gave them the guest's suffix.
    // The cell is the one h3's documentation gives for these coordinates.
    let stdout = run_with(
        &[wheel("h3-")],
        r#"
import h3
c = h3.latlng_to_cell(37.7749, -122.4194, 9)
print(c, [round(x, 3) for x in h3.cell_to_latlng(c)], len(h3.grid_disk(c, 1)), h3.get_resolution(c))
print(h3._cy.cells.__file__.rsplit("/", 1)[1])
try:
    h3.latlng_to_cell(37.7, -122.4, 99)
except h3.H3BaseException as e:
    print(type(e).__name__)
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "89283082803ffff [37.774, -122.418] 7 9\n\
         cells.cpython-314-wasm32-wasi.so\n\
         H3ResDomainError\n"
    );
}

#[tokio::test]
async fn kiwisolver_reports_its_cpp_exceptions_as_python_exceptions() {
    // kiwisolver's C++ solver throws (UnsatisfiableConstraint, ...) and its
    // binding catches each type and raises the Python exception of that
    // name: wasm exceptions thrown in one function and caught several
    // frames up, through destructors. Thousands of throws in a row leave
    // the sandbox as it was.
    // Its C++ imports libunwind's exception tag, which wasmtime's wizer
    // cannot read: wizer is shown the import as a definition, and the run
    // and the snapshot import it again, where throws from libunwind are
    // caught by kiwisolver's `catch` as before.
    let mut sb = support::builder()
        .package(wheel("kiwisolver-"))
        .preimport(["kiwisolver"])
        .build()
        .await
        .unwrap();
    assert!(sb.preinitialised());
    let imported = sb
        .execute("import sys\nprint('kiwisolver' in sys.modules)")
        .await
        .unwrap();
    assert_eq!(imported.stdout, "True\n");
    let stdout = sb.execute(KIWI_THROWS).await.unwrap().stdout;
    assert_eq!(stdout, KIWI_CAUGHT);
    // And without a snapshot (a new set's first sandbox starts Python).
    let mut plain = support::builder()
        .package(wheel("kiwisolver-"))
        .preinit(false)
        .build()
        .await
        .unwrap();
    assert!(!plain.preinitialised());
    assert_eq!(
        plain.execute(KIWI_THROWS).await.unwrap().stdout,
        KIWI_CAUGHT
    );
    // A pre-import whose C++ throws and catches while the snapshot is
    // made: the run shares libunwind's tag too.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kiwi_thrower.py"),
        "import kiwisolver as k\n\
         s = k.Solver(); c = k.Variable('x') >= 1; s.addConstraint(c)\n\
         try:\n    s.addConstraint(c)\n\
         except k.DuplicateConstraint:\n    CAUGHT = True\n",
    )
    .unwrap();
    let mut sb = support::builder()
        .package(wheel("kiwisolver-"))
        .package(dir.path())
        .preimport(["kiwi_thrower"])
        .build()
        .await
        .unwrap();
    assert!(sb.preinitialised());
    let out = sb
        .execute(
            "import sys\nprint('kiwi_thrower' in sys.modules, sys.modules['kiwi_thrower'].CAUGHT)",
        )
        .await
        .unwrap();
    assert_eq!(out.stdout, "True True\n");
    assert_eq!(sb.execute(KIWI_THROWS).await.unwrap().stdout, KIWI_CAUGHT);
}

/// Throws and catches kiwisolver's C++ exceptions (see
/// `kiwisolver_reports_its_cpp_exceptions_as_python_exceptions`).
const KIWI_THROWS: &str = r#"
import kiwisolver as kiwi
x, y, z = kiwi.Variable("x"), kiwi.Variable("y"), kiwi.Variable("z")
s = kiwi.Solver()
c = x + y == 10
s.addConstraint(c); s.addConstraint(x - y == 2); s.updateVariables()
print(x.value(), y.value())
tries = [
    lambda: s.addConstraint(x == 3),
    lambda: s.addConstraint(c),
    lambda: s.removeConstraint(z == 1),
    lambda: s.addEditVariable(z, "required"),
    lambda: s.suggestValue(z, 1.0),
]
for t in tries:
    try: t()
    except Exception as e: print(type(e).__name__)
s.addConstraint((x == 3) | "weak"); s.updateVariables(); print(x.value())
n = 0
for i in range(5000):
    try: s.addConstraint(c)
    except kiwi.DuplicateConstraint: n += 1
print(n)
"#;

/// What [`KIWI_THROWS`] prints.
const KIWI_CAUGHT: &str = "6.0 4.0\n\
     UnsatisfiableConstraint\n\
     DuplicateConstraint\n\
     UnknownConstraint\n\
     BadRequiredStrength\n\
     UnknownEditVariable\n\
     6.0\n\
     5000\n";

#[tokio::test]
#[ignore = "in tests/packages-all.txt: run with `cargo xtask test --all-packages`"]
async fn numexpr_evaluates_on_one_thread_and_pandas_uses_it() {
    // numexpr's C++ VM started a pthread pool at import (and masked signals
    // with pthread_sigmask, which WASI lacks): its recipe keeps the VM on
    // the calling thread. pandas' eval picks it as its engine.
    let stdout = run_with(
        &wheels(&["numexpr-", "numpy-", "pandas-", "python_dateutil-", "tzdata-"]),
        r#"
import numpy as np, numexpr as ne, pandas as pd
a = np.arange(100_000, dtype=np.float64); b = a * 0.5
print(np.allclose(ne.evaluate("2*a + 3*b**2 - sin(a)"), 2*a + 3*b**2 - np.sin(a)), ne.evaluate("sum(a)"))
print(ne.set_num_threads(4), ne.nthreads, ne.evaluate("where(a % 2 == 0, a, -a)")[:4].tolist())
try:
    ne.evaluate("a +* b")
except SyntaxError:
    print("SyntaxError")
df = pd.DataFrame({"x": a[:1000], "y": b[:1000]})
print(df.eval("x + y", engine="numexpr").sum(), df.query("x > 990").shape)
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "True 4999950000.0\n1 1 [0.0, -1.0, 2.0, -3.0]\nSyntaxError\n749250.0 (9, 2)\n"
    );
}

#[tokio::test]
#[ignore = "in tests/packages-all.txt: run with `cargo xtask test --all-packages`"]
async fn pandas_frames_groupby_rolling_dates_and_files() {
    // pandas compiles against numpy's headers (the guest's, not the build
    // environment's), its window aggregations are Cython compiled as C++
    // (built without C++ exceptions), and it imports `mmap` at the top.
    let stdout = run_with(
        &wheels(&["pandas-", "numpy-", "python_dateutil-", "tzdata-"]),
        r#"
import numpy as np, pandas as pd
df = pd.DataFrame({"a": [1, 2, 3, 4], "b": ["x", "y", "x", "y"], "c": [1.5, 2.5, None, 4.0]})
print(df.groupby("b").agg({"a": "sum", "c": "mean"}).to_dict())
print(df["a"].rolling(2).max().tolist(), df["c"].fillna(0).cumsum().tolist())
print(df.describe().loc["std", "a"].round(6), df.dtypes.astype(str).tolist())
ts = pd.Series([1.0, 2.0, 4.0], index=pd.date_range("2024-01-30", periods=3, freq="D", tz="Europe/Paris"))
print(ts.resample("2D").sum().to_dict(), ts.index[1].strftime("%a %d %b %Z"))
df.to_csv("d.csv", index=False)
back = pd.read_csv("d.csv", memory_map=True)
print(back.equals(df), back.pivot_table(index="b", values="a", aggfunc="max").to_dict())
m = np.memmap("arr.dat", dtype=np.float64, mode="w+", shape=(2, 3))
m[:] = np.arange(6).reshape(2, 3)
m.flush()
del m
print(np.frombuffer(open("arr.dat", "rb").read()).tolist(), pd.__version__)
"#,
    )
    .await;
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "{'a': {'x': 4, 'y': 6}, 'c': {'x': 1.5, 'y': 3.25}}",
            "[nan, 2.0, 3.0, 4.0] [1.5, 4.0, 4.0, 8.0]",
            "1.290994 ['int64', 'str', 'float64']",
            "{Timestamp('2024-01-30 00:00:00+0100', tz='Europe/Paris'): 3.0, \
             Timestamp('2024-02-01 00:00:00+0100', tz='Europe/Paris'): 4.0} Wed 31 Jan CET",
            "True {'a': {'x': 3, 'y': 4}}",
            "[0.0, 1.0, 2.0, 3.0, 4.0, 5.0] 3.1.1",
        ],
        "{stdout}"
    );
}

/// RapidFuzz from PyPI: Cython wrapping C++ headers that throw, built with
/// scikit-build-core. Its wheel used to come out pure Python (the C++ failed
/// to compile and the build went on without it); now its scorers are the
/// native ones, a bad argument thrown in C++ is a Python exception, and
/// `rapidfuzz.process` (whose C++ needs threads, left out by the recipe)
/// runs its Python implementation over the native scorers.
#[tokio::test]
async fn rapidfuzz_scores_natively_and_its_cxx_errors_are_python_exceptions() {
    let stdout = run_with(
        &[wheel("rapidfuzz-")],
        r#"
from rapidfuzz import fuzz, process, utils
from rapidfuzz.distance import Levenshtein
print(type(fuzz.ratio).__name__, type(Levenshtein.distance).__name__)
print(round(fuzz.ratio("this is a test", "this is a test!"), 2), fuzz.partial_ratio("fuzzy wuzzy", "wuzzy"))
print(Levenshtein.distance("kitten", "sitting"), Levenshtein.editops("ab", "ba").as_list())
print(process.extractOne("new york jets", ["Atlanta Falcons", "New York Jets"], scorer=fuzz.WRatio, processor=utils.default_process))
try:
    Levenshtein.distance("a", "b", weights=(1, 1, -1))
except OverflowError as e:
    print("OverflowError", e)
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "cython_function_or_method cython_function_or_method\n\
         96.55 100.0\n\
         3 [('insert', 0, 0), ('delete', 1, 2)]\n\
         ('New York Jets', 100.0, 1)\n\
         OverflowError can't convert negative value to size_t\n"
    );
}

#[tokio::test]
async fn regex_xxhash_and_orjson_run_their_native_code() {
    // regex and xxhash declare METH_NOARGS methods and getters with one
    // parameter (they trapped with "indirect call type mismatch" before
    // the cross compiler's adapters); xxhash's setup.py picked x86 dispatch
    // from the host (recipe); orjson is PyO3 with C (yyjson) built by the
    // cc crate, its module inside its package as maturin lays it out.
    let stdout = run_with(
        &wheels(&["regex-", "xxhash-", "orjson-"]),
        r#"
import regex, xxhash, orjson, dataclasses, datetime
print(regex.sub(r"(?<word>\w+)", r"<\g<word>>", "a b"), regex.compile("(?P<x>a)").groupindex,
      regex.match("a(b)", "ab").regs, regex.findall(r"\p{Lu}\w+", "Hello ÉCOLE"))
h = xxhash.xxh64(b"hello")
print(h.hexdigest(), h.copy().intdigest() == h.intdigest(), xxhash.xxh3_128_hexdigest(b"abc"))
@dataclasses.dataclass
class P:
    x: int
    when: datetime.date
print(orjson.dumps({"a": [1, 2.5, None], "p": P(3, datetime.date(2024, 1, 2))}).decode(),
      orjson.loads('{"k": [1, true, "\u00e9"]}'))
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "<a> <b> {'x': 1} ((0, 2), (1, 2)) ['Hello', 'ÉCOLE']\n\
         26c7827d889f6da3 True 06b05ab6733a618578af5f94892f3950\n\
         {\"a\":[1,2.5,null],\"p\":{\"x\":3,\"when\":\"2024-01-02\"}} {'k': [1, True, 'é']}\n"
    );
}

#[tokio::test]
async fn pillow_draws_filters_and_round_trips_png_and_gif_through_zlib() {
    // Pillow is built with zlib (its recipe: zlib compiled for the guest,
    // the host's /usr/include and /usr/lib kept out of the build); the
    // codecs whose libraries are not built say so.
    let stdout = run_with(
        &wheels(&["pillow-", "numpy-"]),
        r#"
from PIL import Image, ImageDraw, ImageFilter, ImageOps, features
import io, numpy as np
im = Image.new("RGB", (64, 48), "white")
d = ImageDraw.Draw(im)
d.rectangle([8, 8, 40, 30], fill=(200, 30, 30), outline="black")
d.ellipse([30, 20, 60, 44], fill=(20, 90, 200))
d.line([0, 47, 63, 0], fill="green", width=2)
small = im.filter(ImageFilter.GaussianBlur(2)).rotate(30, expand=True).resize((32, 24))
buf = io.BytesIO()
im.save(buf, "PNG", optimize=True)
back = Image.open(io.BytesIO(buf.getvalue()))
back.load()
print(back.format, back.size, back.mode, back.getpixel((20, 20)), back.getpixel((45, 32)),
      back.tobytes() == im.tobytes())
print(ImageOps.grayscale(im).mode, sum(ImageOps.grayscale(im).histogram()))
gif = io.BytesIO()
im.convert("P").save(gif, "GIF")
print(Image.open(gif).format)
a = np.asarray(im)
print(a.shape, a.dtype, a[20, 20].tolist(), Image.fromarray(a[::2, ::2]).size)
small.save("/tmp/out.png")
print(Image.open("/tmp/out.png").size, features.check("zlib"), features.check("avif"),
      features.check("raqm"))
# Pillow's Tk glue (its module slot had the wrong type for wasm, a trap:
# a recipe patch) loads and finds no Tk.
try:
    from PIL import _imagingtk
    print("tk glue imported")
except Exception as e:
    print(type(e).__name__, e)
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "PNG (64, 48) RGB (200, 30, 30) (20, 90, 200) True\n\
         L 3072\n\
         GIF\n\
         (48, 64, 3) uint8 [200, 30, 30] (32, 24)\n\
         (32, 24) True False False\n\
         ModuleNotFoundError No module named '_tkinter'\n"
    );
}

#[tokio::test]
async fn pillow_reads_and_writes_jpeg_and_survives_corrupt_files() {
    // libjpeg-turbo is built for the guest (Pillow's recipe); Pillow's
    // decoder catches libjpeg's errors with setjmp/longjmp, which the
    // cross compiler turns into wasm exceptions: a corrupt file raises
    // OSError (200 times over) instead of trapping.
    // The set keeps its pre-initialised snapshot: each library that calls
    // setjmp has its own tag (private to it: no import).
    let mut sb = support::builder()
        .package(wheel("pillow-"))
        .snapshot_policy(eryx_host::SnapshotPolicy::Wait)
        .build()
        .await
        .expect("building the sandbox");
    assert!(sb.preinitialised());
    let stdout = sb
        .execute(
            r#"
from PIL import Image, ImageDraw, features
import io
print(features.check("jpg"), features.version("jpg"), features.version_feature("libjpeg_turbo"))
im = Image.new("RGB", (64, 48), "white")
ImageDraw.Draw(im).rectangle([8, 8, 40, 30], fill=(200, 30, 30))
buf = io.BytesIO()
im.save(buf, "JPEG", quality=95)
data = buf.getvalue()
back = Image.open(io.BytesIO(data))
back.load()
red = back.getpixel((20, 20))
white = back.getpixel((56, 40))
print(back.format, back.size, back.mode, data[:2] == b"\xff\xd8",
      max(abs(a - b) for a, b in zip(red, (200, 30, 30))) <= 6, min(white) >= 249)
im.convert("L").save("/tmp/gray.jpg", progressive=True, optimize=True, quality=80)
gray = Image.open("/tmp/gray.jpg")
print(gray.mode, gray.info.get("progressive"), gray.size)
thumb = back.copy()
thumb.thumbnail((16, 16))
print(thumb.size)
# A table index libjpeg rejects: its error handler longjmps back to
# Pillow's decoder, which raises; the interpreter goes on.
bad = bytearray(data)
bad[bad.index(b"\xff\xdb") + 4] = 5
errors = set()
for _ in range(200):
    try:
        Image.open(io.BytesIO(bytes(bad))).load()
    except OSError as e:
        errors.add(str(e))
print(sorted(errors), Image.open(io.BytesIO(data)).convert("RGB").getpixel((1, 1)) >= (249, 249, 249))
"#,
        )
        .await
        .expect("running")
        .stdout;
    assert_eq!(
        stdout,
        "True 6.2 3.1.3\n\
         JPEG (64, 48) RGB True True True\n\
         L 1 (64, 48)\n\
         (16, 12)\n\
         ['broken data stream when reading image file'] True\n"
    );
}

#[tokio::test]
async fn pillow_renders_text_with_freetype() {
    // FreeType 2.14 is built for the guest (Pillow's recipe), so Pillow's
    // default font is its embedded TrueType font and text is anti-aliased;
    // every figure here is what native Pillow 13.0.0 (also FreeType
    // 2.14.3) prints for the same script.
    let stdout = run_with(
        &[wheel("pillow-")],
        r#"
from PIL import Image, ImageDraw, ImageFont, features
print(features.check("freetype2"), features.version("freetype2") is not None)
font = ImageFont.load_default(size=24)
print(type(font).__name__, font.getname())
im = Image.new("L", (220, 40), 0)
d = ImageDraw.Draw(im)
d.text((4, 4), "Hello, eryx!", font=font, fill=255)
print(d.textbbox((4, 4), "Hello, eryx!", font=font), im.getbbox(), sum(im.histogram()[129:]))
# A glyph far larger than the rasteriser's bands (FreeType renders it
# band by band).
big = ImageFont.load_default(size=900)
im = Image.new("L", (1400, 1000), 0)
ImageDraw.Draw(im).text((0, 0), "@g", font=big, fill=255)
print(im.getbbox(), sum(im.histogram()[129:]) // 1000)
outline = font.getmask("eryx", mode="1")
print(outline.size)
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "True True\n\
         FreeTypeFont ('Aileron', 'Regular')\n\
         (4, 11, 122, 33) (6, 11, 121, 33) 570\n\
         (49, 275, 1251, 1000) 303\n\
         (46, 18)\n"
    );
}

#[tokio::test]
async fn pillow_writes_and_reads_webp_lossy_lossless_and_animated() {
    // libwebp 1.6 (with its mux and demux libraries) is built for the
    // guest by Pillow's recipe; the output is what native Pillow 13.0.0
    // with libwebp 1.6.0 prints for the same script.
    let stdout = run_with(
        &[wheel("pillow-")],
        r#"
from PIL import Image, ImageDraw, features
import io
print(features.check("webp"), features.version("webp"))
im = Image.new("RGBA", (64, 48), (255, 255, 255, 0))
ImageDraw.Draw(im).ellipse([8, 8, 56, 40], fill=(20, 90, 200, 255))
lossless = io.BytesIO()
im.save(lossless, "WEBP", lossless=True, exact=True)
back = Image.open(io.BytesIO(lossless.getvalue()))
print(back.format, back.mode, back.size, back.tobytes() == im.tobytes())
lossy = io.BytesIO()
im.convert("RGB").save(lossy, "WEBP", quality=80)
small = Image.open(io.BytesIO(lossy.getvalue())).convert("RGB")
r, g, b = small.getpixel((32, 24))
print(len(lossy.getvalue()) < 64 * 48 * 3, abs(r - 20) < 12 and abs(b - 200) < 12)
frames = [Image.new("RGB", (16, 16), c) for c in ("red", "green", "blue")]
anim = io.BytesIO()
frames[0].save(anim, "WEBP", save_all=True, append_images=frames[1:], duration=100, loop=0, lossless=True)
a = Image.open(io.BytesIO(anim.getvalue()))
seen = []
for i in range(a.n_frames):
    a.seek(i)
    seen.append(a.convert("RGB").getpixel((8, 8)))
print(a.n_frames, a.is_animated, seen)
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "True 1.6.0\n\
         WEBP RGBA (64, 48) True\n\
         True True\n\
         3 True [(255, 0, 0), (0, 128, 0), (0, 0, 255)]\n"
    );
}

#[tokio::test]
#[ignore = "in tests/packages-all.txt: run with `cargo xtask test --all-packages`"]
async fn matplotlib_plots_contours_and_triangulates_with_its_native_code() {
    // matplotlib's pybind11 modules (Agg, FreeType text, paths, images,
    // Qhull, triangulation), contourpy's and kiwisolver's C++; every figure
    // is what native matplotlib 3.10.9 prints for the same script. A
    // degenerate triangulation makes Qhull `longjmp` out of its computation
    // and matplotlib throw a C++ exception that pybind11 turns into the
    // Python one.
    let set = wheels(&[
        "matplotlib-",
        "contourpy-",
        "kiwisolver-",
        "numpy-",
        "pillow-",
        "cycler-",
        "fonttools-",
        "pyparsing-",
        "python_dateutil-",
        "packaging-",
    ]);
    let script = r#"
import io
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import tri

print(matplotlib.__version__, matplotlib.get_backend())
# Lines and fills, no text: Agg's pixels.
fig = plt.figure(figsize=(2, 1.5), dpi=100)
ax = fig.add_axes((0, 0, 1, 1))
ax.set_axis_off()
x = np.linspace(0, 6, 61)
ax.plot(x, np.sin(x), lw=2, color="tab:blue")
ax.fill_between(x, -1, np.cos(x) / 2, color="tab:orange", alpha=0.5)
fig.canvas.draw()
buf = np.asarray(fig.canvas.buffer_rgba())
print(buf.shape, (buf[..., :3] != 255).any(axis=-1).sum())
plt.close(fig)
# Text through FreeType, and every file format.
fig, ax = plt.subplots(figsize=(3, 2))
ax.plot([1, 2, 3], [3, 1, 2], "o-")
ax.set_title("eryx")
ax.set_xlabel("x")
for fmt in ("png", "svg", "pdf", "ps"):
    out = io.BytesIO()
    fig.savefig(out, format=fmt)
    print(fmt, out.getvalue()[:5])
print(ax.title.get_window_extent(fig.canvas.get_renderer()).width > 10)
plt.close(fig)
# Contours (contourpy) and a Delaunay triangulation (Qhull).
X, Y = np.meshgrid(np.linspace(-2, 2, 41), np.linspace(-2, 2, 41))
cs = plt.contour(X, Y, X**2 + Y**2, levels=[0.5, 1, 2])
print([len(p.vertices) for p in cs.get_paths()])
plt.close("all")
# contourpy's threaded generator, on the one thread the guest has (4
# chunks: 96 points, as native contourpy traces with its threads).
import contourpy
g = contourpy.contour_generator(X, Y, X**2 + Y**2, name="threaded", chunk_count=4, thread_count=0)
print(contourpy.max_threads(), g.thread_count, sum(len(p) for p in g.lines(1.0)))
t = np.linspace(0, 2 * np.pi, 12, endpoint=False)
tr = tri.Triangulation(np.r_[0, np.cos(t)], np.r_[0, np.sin(t)])
print(len(tr.triangles), tr.edges.shape)
for _ in range(3):
    try:
        tri.Triangulation([0, 1, 2], [0, 1, 2])
    except Exception as e:
        print(type(e).__name__, str(e).splitlines()[0])
"#;
    let stdout = run_with(&set, script).await;
    assert_eq!(
        stdout,
        "3.10.9 agg\n\
         (150, 200, 4) 13708\n\
         png b'\\x89PNG\\r'\n\
         svg b'<?xml'\n\
         pdf b'%PDF-'\n\
         ps b'%!PS-'\n\
         True\n\
         [61, 85, 117]\n\
         1 1 96\n\
         12 (24, 2)\n\
         RuntimeError Error in qhull Delaunay triangulation calculation: singular input data \
         (exitcode=2); use python verbose option (-v) to see original qhull error.\n\
         RuntimeError Error in qhull Delaunay triangulation calculation: singular input data \
         (exitcode=2); use python verbose option (-v) to see original qhull error.\n\
         RuntimeError Error in qhull Delaunay triangulation calculation: singular input data \
         (exitcode=2); use python verbose option (-v) to see original qhull error.\n"
    );
    // The same figures from a snapshot with pyplot pre-imported: its C++
    // imports the exception tag, and its import makes a cache directory
    // in `/tmp` (neither could be snapshotted before).
    let mut b = support::builder().preimport(["matplotlib.pyplot"]);
    for w in &set {
        b = b.package(w);
    }
    let mut sb = b.build().await.expect("building from the snapshot");
    assert!(sb.preinitialised());
    assert_eq!(sb.execute(script).await.unwrap().stdout, stdout);
}

#[tokio::test]
async fn pyyaml_has_its_libyaml_bindings() {
    // libyaml is built for the guest by PyYAML's recipe; without it the
    // build quietly gives the pure-Python wheel (no CSafeLoader).
    let stdout = run_with(
        &[wheel("pyyaml-")],
        r#"
import yaml
print(yaml.__with_libyaml__, yaml.CSafeLoader.__mro__[1].__module__)
doc = {"a": [1, 2.5, None, True], "b": {"c": "d\u00e9"}}
text = yaml.dump(doc, Dumper=yaml.CSafeDumper, sort_keys=True)
print(yaml.load(text, Loader=yaml.CSafeLoader) == doc, text.count("\n"))
try:
    yaml.load("a: [1, 2", Loader=yaml.CSafeLoader)
except yaml.YAMLError as e:
    print(type(e).__name__, str(e).splitlines()[0])
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "True yaml._yaml\nTrue 7\nParserError while parsing a flow sequence\n"
    );
}

#[tokio::test]
async fn bcrypt_built_by_setuptools_rust_hashes_like_the_native_one() {
    // bcrypt's Rust extension is built by setuptools-rust, whose `cargo`
    // the wheel builder points at its guest build (xtask's cargoshim.rs);
    // before, the wheel carried a host ELF library. The expected values
    // are the native bcrypt 5.0.0's on the same inputs.
    let stdout = run_with(
        &[wheel("bcrypt-")],
        r#"
import bcrypt
print(bcrypt.hashpw(b"Kk4DQuMMfZL9o", b"$2b$04$cVWp4XaNU8a4v1uMRum2SO").decode())
h = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4))
print(bcrypt.checkpw(b"secret", h), bcrypt.checkpw(b"Secret", h))
print(bcrypt.kdf(b"password", b"salt", 32, 4, ignore_few_rounds=True).hex())
try:
    bcrypt.hashpw("text", bcrypt.gensalt())
except TypeError as e:
    print("TypeError", e)
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "$2b$04$cVWp4XaNU8a4v1uMRum2SO026BWLIoQMD/TXg5uZV.0P.uO8m3YEm\n\
         True False\n\
         5bbf0cc293587f1c3635555c27796598d47e579071bf427e9d8fbe842aba34d9\n\
         TypeError argument 'password': 'str' object cannot be converted to 'PyBytes'\n"
    );
}

#[tokio::test]
async fn zstandard_streams_and_dictionaries_work_through_its_unity_build() {
    // zstandard compiles its C backend as one file including the others;
    // their METH_NOARGS methods written `f(self)` (readall, close, tell,
    // memory_size, ...) trapped with "indirect call type mismatch" until
    // the cross compiler adapted casts in included files too. Its recipe
    // fixes setup.py for setuptools 84 and leaves out the CFFI backend.
    let stdout = run_with(
        &[wheel("zstandard-")],
        r#"
import io, zstandard as zstd
print(zstd.backend, zstd.ZSTD_VERSION)
data = b"hello zstd " * 1000
c = zstd.ZstdCompressor(level=10).compress(data)
print(len(c) < 100, zstd.ZstdDecompressor().decompress(c) == data)
buf = io.BytesIO()
with zstd.ZstdCompressor().stream_writer(buf, closefd=False) as w:
    w.write(data)
with zstd.ZstdDecompressor().stream_reader(io.BytesIO(buf.getvalue())) as r:
    print(r.read() == data, r.tell(), r.readable(), r.seekable())
samples = [bytes(f"record {i} value {i*i} tag {i%7}", "ascii") for i in range(2000)]
d = zstd.train_dictionary(1024, samples)
back = zstd.ZstdDecompressor(dict_data=d).decompress(zstd.ZstdCompressor(dict_data=d).compress(samples[5]))
print(d.dict_id() > 0, back == samples[5], zstd.ZstdCompressor().memory_size() > 0)
ch = zstd.ZstdCompressor().chunker(chunk_size=32768)
out = b"".join(list(ch.compress(data)) + list(ch.finish()))
print(zstd.ZstdDecompressor().decompressobj().decompress(out) == data)
try:
    zstd.ZstdDecompressor().decompress(b"not zstd")
except zstd.ZstdError as e:
    print("ZstdError", e)
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "cext (1, 5, 7)\nTrue True\nTrue 11000 True False\nTrue True True\nTrue\n\
         ZstdError error determining content size from frame header\n"
    );
}

#[tokio::test]
#[ignore = "in tests/packages-all.txt: run with `cargo xtask test --all-packages`"]
async fn jellyfish_gets_its_maturin_features() {
    // jellyfish's PyO3 module is behind the `python` feature that its
    // `[tool.maturin] features` turns on; built without it the crate had
    // no init function. Expected values: native jellyfish 1.3.0's.
    let stdout = run_with(
        &[wheel("jellyfish-")],
        r#"
import jellyfish, jellyfish._rustyfish as r
print(jellyfish.levenshtein_distance("kitten", "sitting"), jellyfish.soundex("Robert"))
print(round(jellyfish.jaro_winkler_similarity("martha", "marhta"), 4), jellyfish.metaphone("Thompson"))
print(jellyfish.damerau_levenshtein_distance("ca", "abc"), r.__name__)
"#,
    )
    .await;
    assert_eq!(stdout, "3 R163\n0.9611 0MPSN\n2 jellyfish._rustyfish\n");
}

#[tokio::test]
async fn lz4s_modules_each_keep_their_own_copy_of_liblz4() {
    // lz4's `_block` and `_frame` modules each compile liblz4 in. Natively
    // CPython loads them RTLD_LOCAL; in the sandbox all libraries share
    // one namespace, and linking both failed ("both export
    // LZ4_compressBound") until extension modules exported only their
    // init function. xxhash and zstandard carry xxHash code too.
    let stdout = run_with(
        &[wheel("lz4-"), wheel("xxhash-"), wheel("zstandard-")],
        r#"
import lz4, lz4.frame, lz4.block, xxhash, zstandard
d = b"abc" * 1000
print(lz4.frame.decompress(lz4.frame.compress(d)) == d, lz4.block.decompress(lz4.block.compress(d)) == d)
with lz4.frame.open("/tmp/x.lz4", "wb") as f:
    f.write(d)
with lz4.frame.open("/tmp/x.lz4") as f:
    print(f.read() == d)
print(lz4.library_version_string(), xxhash.xxh64(b"a").hexdigest(), zstandard.decompress(zstandard.compress(d)) == d)
"#,
    )
    .await;
    assert_eq!(stdout, "True True\nTrue\n1.9.4 d24ec4f1a98c6e5b True\n");
}

#[tokio::test]
async fn anyio_worker_threads_and_blocking_portals_run_inline() {
    // anyio starts threads of its own for `to_thread.run_sync` and
    // `from_thread.start_blocking_portal`: neither ran here (a deadlock, and
    // "This portal is not running"). The sandbox's versions (_eryx_anyio)
    // run them on the one thread. The same output as anyio 4.16 natively
    // (checked): context variables and the limiter, exceptions, a portal's
    // start_task, call, wrap_async_context_manager, tasks waited for at its
    // end and cancelled when its body raises.
    let stdout = run_with(
        &wheels(&["anyio-", "idna-", "typing_extensions-"]),
        r#"
import asyncio, contextlib, contextvars, anyio, anyio.to_thread, anyio.from_thread
var = contextvars.ContextVar("v", default="unset")
def blocking(x):
    return x * 2, var.get()
async def main():
    var.set("outer")
    r = await anyio.to_thread.run_sync(blocking, 21, limiter=anyio.CapacityLimiter(1))
    try:
        await anyio.to_thread.run_sync(lambda: 1 / 0)
    except ZeroDivisionError:
        r += ("ZeroDivisionError",)
    return r
print(anyio.run(main), asyncio.run(main()))
async def ready(task_status=anyio.TASK_STATUS_IGNORED):
    task_status.started("ready")
    await anyio.sleep(0.01)
    return "done"
@contextlib.asynccontextmanager
async def resource():
    yield "opened"
    log.append("closed")
log = []
with anyio.from_thread.start_blocking_portal() as portal:
    fut, value = portal.start_task(ready)
    print(value, fut.result(), portal.call(anyio.sleep, 0), portal.call(lambda: "sync"))
    with portal.wrap_async_context_manager(resource()) as r:
        print(r)
    try:
        portal.call(anyio.to_thread.run_sync, lambda: [][0])
    except IndexError:
        print("IndexError")
    background = portal.start_task_soon(anyio.sleep, 0.01)
print(log, background.done())
try:
    with anyio.from_thread.start_blocking_portal() as portal:
        forever = portal.start_task_soon(anyio.sleep_forever)
        raise KeyError("body")
except KeyError:
    print("KeyError", forever.cancelled())
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "(42, 'outer', 'ZeroDivisionError') (42, 'outer', 'ZeroDivisionError')\n\
         ready done None sync\n\
         opened\n\
         IndexError\n\
         ['closed'] True\n\
         KeyError True\n"
    );
}

#[tokio::test]
async fn a_blocking_portal_says_what_it_cannot_do() {
    // The sandbox's portals (_eryx_anyio) run asyncio only; a call from the
    // portal's own loop is refused as anyio refuses it; a call that waits
    // for what nothing will do gets the loop's deadlock error (natively it
    // would hang), its task is cancelled and the portal goes on.
    let stdout = run_with(
        &wheels(&["anyio-", "idna-", "typing_extensions-"]),
        r#"
import anyio, anyio.from_thread
try:
    with anyio.from_thread.start_blocking_portal("trio"):
        pass
except NotImplementedError as e:
    print("NotImplementedError", e)
with anyio.from_thread.start_blocking_portal() as portal:
    async def reenter():
        return portal.call(anyio.sleep, 0)
    try:
        portal.call(reenter)
    except RuntimeError as e:
        print("RuntimeError", e)
    async def wait_forever():
        await anyio.Event().wait()
    try:
        portal.call(wait_forever)
    except RuntimeError as e:
        print("RuntimeError", str(e).split(":")[0])
    print(portal.call(lambda: "still usable"))
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "NotImplementedError the 'trio' backend: the sandbox's blocking portals run \
         asyncio on the calling thread (it has no threads)\n\
         RuntimeError This method cannot be called from the event loop thread\n\
         RuntimeError deadlock\n\
         still usable\n"
    );
}

#[tokio::test]
async fn fastapi_sync_endpoints_and_its_test_client_work() {
    // FastAPI runs sync endpoints through anyio's worker threads and its
    // TestClient through a blocking portal (see the test above): path and
    // body validation, 404s, a lifespan, background tasks, a streaming
    // response, and a TestClient used inside a running event loop. The
    // same output as FastAPI 0.165 natively (checked).
    let stdout = run_with(
        &wheels(&[
            "fastapi-",
            "starlette-",
            "annotated_doc-",
            "opentelemetry_api-",
            "anyio-",
            "idna-",
            "pydantic-",
            "pydantic_core-",
            "typing_extensions-",
            "typing_inspection-",
            "annotated_types-",
            "httpx-",
            "httpcore-",
            "h11-",
            "certifi-",
        ]),
        r#"
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from pydantic import BaseModel
app = FastAPI()
class Item(BaseModel):
    name: str
    price: float
items = {}
@app.post("/items/{item_id}")
def create(item_id: int, item: Item):
    items[item_id] = item
    return {"id": item_id, **item.model_dump()}
@app.get("/items/{item_id}")
async def read(item_id: int):
    if item_id not in items:
        raise HTTPException(404, "no such item")
    return items[item_id]
client = TestClient(app)
print(client.post("/items/1", json={"name": "pen", "price": 1.5}).json())
print(client.get("/items/1").json())
r = client.get("/items/2"); print(r.status_code, r.json())
r = client.post("/items/x", json={"name": 3}); print(r.status_code, [e["loc"] for e in r.json()["detail"]])
print(client.get("/openapi.json").json()["paths"].keys())
import asyncio, contextlib
from fastapi import BackgroundTasks, Request
from fastapi.responses import StreamingResponse
log = []
@contextlib.asynccontextmanager
async def lifespan(app):
    log.append("startup"); yield {"db": "ready"}; log.append("shutdown")
app2 = FastAPI(lifespan=lifespan)
@app2.get("/state")
def state(request: Request): return {"db": request.state.db}
@app2.post("/work")
def work(bt: BackgroundTasks):
    bt.add_task(log.append, "background"); return "queued"
@app2.get("/stream")
def stream():
    return StreamingResponse((f"{i}," for i in range(5)), media_type="text/plain")
with TestClient(app2) as c:
    print(c.get("/state").json(), c.post("/work").json(), c.get("/stream").text)
print(log)
async def in_async_test():
    with TestClient(app2) as c:
        return c.get("/state").json()
print(asyncio.run(in_async_test()))
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "{'id': 1, 'name': 'pen', 'price': 1.5}\n\
         {'name': 'pen', 'price': 1.5}\n\
         404 {'detail': 'no such item'}\n\
         422 [['path', 'item_id'], ['body', 'name'], ['body', 'price']]\n\
         dict_keys(['/items/{item_id}'])\n\
         {'db': 'ready'} queued 0,1,2,3,4,\n\
         ['startup', 'background', 'shutdown']\n\
         {'db': 'ready'}\n"
    );
}

#[tokio::test]
async fn sqlalchemy_orm_runs_with_its_compiled_extensions() {
    // SQLAlchemy's sdist (its recipe passes over the pure wheel) with its
    // Cython extensions, the ORM on the stdlib's sqlite3 over a file in
    // /tmp: a join with grouping, and a unique constraint's IntegrityError
    // rolled back. The same output as SQLAlchemy 2.1.9 natively (checked).
    let stdout = run_with(
        &[wheel("sqlalchemy-"), wheel("typing_extensions-")],
        r#"
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, Session
from sqlalchemy.exc import IntegrityError
print(sa.util.has_compiled_ext())
class Base(DeclarativeBase): pass
class Author(Base):
    __tablename__ = "author"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    books: Mapped[list["Book"]] = relationship(back_populates="author")
class Book(Base):
    __tablename__ = "book"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("author.id"))
    author: Mapped[Author] = relationship(back_populates="books")
engine = sa.create_engine("sqlite:////tmp/library.db")
Base.metadata.create_all(engine)
with Session(engine) as s:
    for i in range(50):
        a = Author(name=f"author{i}")
        a.books = [Book(title=f"book{i}-{j}") for j in range(i % 4)]
        s.add(a)
    s.commit()
    q = (sa.select(Author.name, sa.func.count(Book.id).label("n"))
         .join(Book, isouter=True).group_by(Author.id).having(sa.func.count(Book.id) == 3)
         .order_by(Author.name).limit(3))
    print(s.execute(q).all())
    s.add(Author(name="author7"))
    try:
        s.commit()
    except IntegrityError as e:
        s.rollback()
        print("IntegrityError", type(e.orig).__name__)
    print(s.scalar(sa.select(sa.func.count()).select_from(Author)), s.get(Author, 8).books[1].title)
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "True\n\
         [('author11', 3), ('author15', 3), ('author19', 3)]\n\
         IntegrityError IntegrityError\n\
         50 book7-1\n"
    );
}

#[tokio::test]
async fn pynacl_runs_the_libsodium_its_own_configure_built() {
    // PyNaCl's setup.py runs libsodium's autoconf configure and make; the
    // wheel builder's CONFIG_SITE makes that configure cross-compile (it
    // stopped at "cannot run C compiled programs"). Every value is what
    // PyNaCl 1.6.2 prints natively for the same keys and nonces (checked);
    // randomness comes from WASI's random source.
    let stdout = run_with(
        &[wheel("cffi-"), wheel("pycparser-"), wheel("pynacl-")],
        r#"
import nacl.secret, nacl.utils, nacl.signing, nacl.public, nacl.pwhash, nacl.hash, nacl.encoding, nacl.exceptions
key = bytes(range(32))
box = nacl.secret.SecretBox(key)
nonce = bytes(24)
ct = box.encrypt(b"attack at dawn", nonce)
print(ct.ciphertext.hex())
print(box.decrypt(ct))
sk = nacl.signing.SigningKey(bytes(range(32)))
sig = sk.sign(b"msg")
print(sig.signature.hex()[:32], sk.verify_key.verify(sig) == b"msg")
try:
    sk.verify_key.verify(b"msg", bytes(64))
except nacl.exceptions.BadSignatureError as e:
    print("BadSignatureError")
print(nacl.hash.sha256(b"abc", encoder=nacl.encoding.HexEncoder))
print(nacl.hash.blake2b(b"abc", digest_size=16, encoder=nacl.encoding.HexEncoder))
a = nacl.public.PrivateKey(bytes(range(1, 33))); b = nacl.public.PrivateKey(bytes(range(2, 34)))
m = nacl.public.Box(a, b.public_key).encrypt(b"hi", bytes(24))
print(nacl.public.Box(b, a.public_key).decrypt(m))
print(len(nacl.utils.random(16)), nacl.utils.random(16) != nacl.utils.random(16))
h = nacl.pwhash.argon2id.kdf(32, b"password", bytes(16), opslimit=2, memlimit=8 * 1024 * 1024)
print(h.hex())
sealed = nacl.public.SealedBox(b.public_key).encrypt(b"sealed")
print(nacl.public.SealedBox(b).decrypt(sealed))
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "3b6a7f37a97507eea2853c318db6a9ab2b7a8420fbc19f522874166e5228\n\
         b'attack at dawn'\n\
         3aa2d21173b6552c8e5f73049c7be163 True\n\
         BadSignatureError\n\
         b'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'\n\
         b'cf4ab791c62b8d2b2109c90275287816'\n\
         b'hi'\n\
         16 True\n\
         effb46da30008e1b2cbc743aa960279408b62bf9cf606d083a0cd4c27f9e65a9\n\
         b'sealed'\n"
    );
}

#[tokio::test]
async fn cffi_modules_run_on_eryxs_libffi() {
    // cffi's _cffi_backend links eryx's libffi (xtask/clibs/ffi); argon2's
    // C is compiled by cffi's API mode. The Argon2i hash is the reference
    // implementation's test vector; a call through a function pointer goes
    // through ffi_call, and one it cannot make raises.
    let stdout = run_with(
        &[
            wheel("cffi-"),
            wheel("pycparser-"),
            wheel("argon2_cffi_bindings-"),
            wheel("argon2_cffi-"),
        ],
        r#"
from argon2 import PasswordHasher, exceptions
from argon2.low_level import hash_secret_raw, Type
ph = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
h = ph.hash("secret")
print(h.startswith("$argon2id$v=19$m=1024,t=1,p=1$"), ph.verify(h, "secret"))
try:
    ph.verify(h, "wrong")
except exceptions.VerifyMismatchError:
    print("VerifyMismatchError")
print(hash_secret_raw(b"password", b"somesalt", time_cost=2, memory_cost=65536, parallelism=1, hash_len=32, type=Type.I).hex())
from _argon2_cffi_bindings import ffi, lib
f = ffi.addressof(lib, "argon2_encodedlen")
print(lib.argon2_encodedlen(1, 1024, 1, 16, 32, lib.Argon2_id), f(1, 1024, 1, 16, 32, lib.Argon2_id))
print(ffi.string(ffi.addressof(lib, "argon2_error_message")(lib.ARGON2_MEMORY_TOO_LITTLE)))
import cffi
ffi2 = cffi.FFI()
ffi2.cdef("struct pt { int x; double y; };")
p = ffi2.new("struct pt *", {"x": 3, "y": 2.5})
print(p.x, p.y, ffi2.sizeof("struct pt"), ffi2.offsetof("struct pt", "y"), ffi2.string(ffi2.new("char[]", b"hi")))
try:
    ffi.cast("double(*)(double)", f)(1.0)
except NotImplementedError as e:
    print("NotImplementedError", e)
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "True True\nVerifyMismatchError\n\
         c1628832147d9720c5bd1cfd61367078729f6dfb6f8fea9ff98158e0d7816ed0\n97 97\n\
         b'Memory cost is too small'\n3 2.5 16 8 b'hi'\n\
         NotImplementedError cannot call a C function of type double (double) through a \
         pointer in the eryx sandbox: its libffi (WASI has no real one) calls functions whose \
         arguments are integers of up to 32 bits, pointers or structs, at most 8, or those and \
         one 64-bit integer, at most 6 in all; declare the function in cffi's API mode \
         (ffi.set_source) so the call is compiled\n"
    );
}

/// pycryptodome's C code is 43 plain libraries (`.abi3.so` without
/// `PyInit_`) that its Python side opens with cffi's `ffi.dlopen` and calls
/// through eryx's libffi. Before: the libraries were linked with only the
/// (absent) init function exported, two of them clashed on a helper
/// nothing imports, the paths it opens have `..` in them, and its probe
/// of `ctypes.pythonapi` raised OSError, which it does not catch.
#[tokio::test]
async fn pycryptodome_runs_its_c_through_cffi() {
    let stdout = run_with(
        &[
            wheel("cffi-"),
            wheel("pycparser-"),
            wheel("pycryptodome-"),
        ],
        r#"
import hashlib
from Crypto.Util import _raw_api
from Crypto.Hash import SHA256, SHA3_256, HMAC
from Crypto.Cipher import AES, ChaCha20_Poly1305
from Crypto.Protocol.KDF import PBKDF2
from Crypto.PublicKey import RSA, ECC
from Crypto.Signature import pkcs1_15, DSS
print(_raw_api.backend, SHA256.new(b"abc").hexdigest() == hashlib.sha256(b"abc").hexdigest(),
      SHA3_256.new(b"x").hexdigest() == hashlib.sha3_256(b"x").hexdigest(),
      HMAC.new(b"k", b"m", SHA256).hexdigest() == __import__("hmac").new(b"k", b"m", "sha256").hexdigest())
# FIPS-197's AES-128 example, then an authenticated round trip.
k = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
print(AES.new(k, AES.MODE_ECB).encrypt(bytes.fromhex("00112233445566778899aabbccddeeff")).hex())
c = AES.new(k, AES.MODE_GCM); ct, tag = c.encrypt_and_digest(b"hello")
print(AES.new(k, AES.MODE_GCM, nonce=c.nonce).decrypt_and_verify(ct, tag))
try:
    AES.new(k, AES.MODE_GCM, nonce=c.nonce).decrypt_and_verify(ct, bytes(16))
except ValueError as e:
    print("ValueError", e)
c2 = ChaCha20_Poly1305.new(key=bytes(32)); ct2, t2 = c2.encrypt_and_digest(b"data")
print(ChaCha20_Poly1305.new(key=bytes(32), nonce=c2.nonce).decrypt_and_verify(ct2, t2))
print(PBKDF2("pw", b"salt", 16, count=1000, hmac_hash_module=SHA256) == hashlib.pbkdf2_hmac("sha256", b"pw", b"salt", 1000, 16))
# RSA and ECC pass a 64-bit seed to C (monty_pow, ec_nat_scalar).
key = RSA.generate(1024)
h = SHA256.new(b"msg"); sig = pkcs1_15.new(key).sign(h)
pkcs1_15.new(key.publickey()).verify(h, sig)
try:
    pkcs1_15.new(key.publickey()).verify(SHA256.new(b"other"), sig)
except ValueError as e:
    print("rsa", len(sig), "ValueError", e)
ek = ECC.generate(curve="P-256"); s = DSS.new(ek, "fips-186-3").sign(h)
DSS.new(ek.public_key(), "fips-186-3").verify(h, s); print("ecc", len(s))
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "cffi True True True\n69c4e0d86a7b0430d8cdb78070b4c55a\nb'hello'\n\
         ValueError MAC check failed\nb'data'\nTrue\n\
         rsa 128 ValueError Invalid signature\necc 64\n"
    );
}

#[tokio::test]
async fn lxml_parses_queries_transforms_and_validates_on_libxml2_and_libxslt() {
    // lxml's recipe builds libxml2 and libxslt (with libexslt) for the
    // guest; libxml2's own file loading goes through eryx's dup() shim
    // (WASI has none): parse() of a Latin-1 file on disk below.
    let stdout = run_with(
        &[wheel("lxml-")],
        r#"
from lxml import etree, html, objectify
from lxml.builder import E
import io
root = etree.fromstring(b"<root><a x='1'>hi</a><a x='2'>there</a><b/></root>")
print(root.xpath("//a[@x='2']/text()"), [e.tag for e in root.iter()], etree.tostring(root.find("a")))
doc = html.fromstring("<html><body><p class='c'>Hello <b>world</b></p><a href='/x'>link</a></body></html>")
print(doc.xpath("//p/b/text()"), [a.get("href") for a in doc.iter("a")], doc.text_content())
xslt = etree.XSLT(etree.fromstring(b"""<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
<xsl:template match="/"><out><xsl:for-each select="//a"><v><xsl:value-of select="@x"/></v></xsl:for-each></out></xsl:template></xsl:stylesheet>"""))
print(str(xslt(root)).strip())
schema = etree.XMLSchema(etree.fromstring(b"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:element name="n" type="xs:integer"/></xs:schema>"""))
print(schema.validate(etree.fromstring(b"<n>5</n>")), schema.validate(etree.fromstring(b"<n>x</n>")))
el = E.doc(E.title("T"), E.item("1", id="a"))
print(etree.tostring(el, pretty_print=True).decode())
with open("/tmp/f.xml", "wb") as f:
    f.write("<?xml version='1.0' encoding='iso-8859-1'?><r>caf\xe9</r>".encode("latin-1"))
t = etree.parse("/tmp/f.xml"); print(t.getroot().text, t.docinfo.encoding)
etree.ElementTree(root).write("/tmp/out.xml", xml_declaration=True, encoding="utf-8"); print(open("/tmp/out.xml").read()[:60])
o = objectify.fromstring("<r><n>3</n><s>x</s></r>"); print(o.n + 1, o.s)
try:
    etree.fromstring(b"<a><b></a>")
except etree.XMLSyntaxError as e:
    print("XMLSyntaxError", e)
for ev, el in etree.iterparse(io.BytesIO(b"<r><i>1</i><i>2</i></r>"), tag="i"): print(ev, el.text)
print(etree.LIBXML_VERSION, etree.LIBXSLT_VERSION)
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "['there'] ['root', 'a', 'a', 'b'] b'<a x=\"1\">hi</a>'\n\
         ['world'] ['/x'] Hello worldlink\n\
         <?xml version=\"1.0\"?>\n\
         <out><v>1</v><v>2</v></out>\n\
         True False\n\
         <doc>\n  <title>T</title>\n  <item id=\"a\">1</item>\n</doc>\n\n\
         caf\u{e9} iso-8859-1\n\
         <?xml version='1.0' encoding='UTF-8'?>\n\
         <root><a x=\"1\">hi</a>\n\
         4 x\n\
         XMLSyntaxError Opening and ending tag mismatch: b line 1 and a, line 1, column 11 (<string>, line 1)\n\
         end 1\n\
         end 2\n\
         (2, 15, 4) (1, 1, 45)\n"
    );
}

/// aiohttp's wheel and those of what it needs.
const AIOHTTP: &[&str] = &[
    "aiohttp-",
    "multidict-",
    "yarl-",
    "frozenlist-",
    "propcache-",
    "aiosignal-",
    "aiohappyeyeballs-",
    "attrs-",
    "idna-",
];

#[tokio::test]
async fn aiohttp_and_its_dependencies_run_their_c_code_built_from_sdists() {
    // aiohttp, multidict, yarl, frozenlist and propcache each publish a
    // pure wheel besides their native ones; their recipes prefer the sdist,
    // so the guest gets the C (and Cython) code, aiohttp's llhttp parser
    // among it (its recipe patch).
    let stdout = run_with(
        &wheels(AIOHTTP),
        r#"
import asyncio, multidict, yarl, frozenlist, propcache
from unittest import mock
from aiohttp import http_parser
md = multidict.CIMultiDict([("A", "1"), ("a", "2")])
md.add("b", "3")
print(type(md).__module__, md.getall("a"), len(md))
u = yarl.URL("https://user@example.com:8080/p a/th") / "x"
print(yarl._quoting._Quoter.__module__, u.host, u.port, str(u.with_query(z="2")))
fl = frozenlist.FrozenList([1, 2])
fl.freeze()
try:
    fl.append(3)
except RuntimeError as e:
    print(type(fl).__module__, e)
print(propcache.cached_property.__module__, http_parser.HttpResponseParser.__module__)
async def main():
    loop = asyncio.get_running_loop()
    p = http_parser.HttpResponseParser(mock.Mock(), loop, 2**16)
    msgs, _, _ = p.feed_data(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")
    msg, payload = msgs[0]
    print(msg.code, msg.reason, msg.headers["content-type"], await payload.read())
    try:
        http_parser.HttpRequestParser(mock.Mock(), loop, 2**16).feed_data(b"GARBAGE\r\n\r\n")
    except Exception as e:
        print(type(e).__name__)
asyncio.run(main())
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "multidict._multidict ['1', '2'] 3\n\
         yarl._quoting_c example.com 8080 https://user@example.com:8080/p%20a/th/x?z=2\n\
         frozenlist._frozenlist Cannot modify frozen list.\n\
         propcache._helpers_c aiohttp._http_parser\n\
         200 OK text/plain b'hello'\n\
         BadHttpMethod\n"
    );
}

#[tokio::test]
#[ignore = "in tests/packages-all.txt: run with `cargo xtask test --all-packages`"]
async fn tiktoken_counts_tokens_with_its_rust_core_and_batches_on_threads() {
    // What an agent counts tokens with: tiktoken's byte-pair encoder is Rust
    // (pyo3, built by setuptools-rust) and its batch API runs a thread pool.
    // Its published encodings are downloaded on first use, which a sandbox
    // cannot do: that fails as a Python exception naming the host.
    let stdout = run_with(
        &wheels(&[
            "tiktoken-",
            "regex-",
            "requests-",
            "urllib3-",
            "idna-",
            "certifi-",
            "charset_normalizer-",
        ]),
        r#"
import tiktoken
ranks = {bytes([i]): i for i in range(256)}
ranks.update({b"he": 256, b"ll": 257, b"hell": 258, b"hello": 259})
enc = tiktoken.Encoding("toy", pat_str=r"'s|'t| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
                        mergeable_ranks=ranks, special_tokens={"<|end|>": 1000})
t = enc.encode("hello world <|end|>", allowed_special="all")
print(t, repr(enc.decode(t)), enc.n_vocab)
print(enc.encode_batch(["hello", "hell", "héllo"]))
try:
    enc.encode("<|end|>")
except ValueError:
    print("ValueError")
try:
    tiktoken.get_encoding("cl100k_base")
except Exception as e:
    print(type(e).__name__, "openaipublic.blob.core.windows.net" in str(e))
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "[259, 32, 119, 111, 114, 108, 100, 32, 1000] 'hello world <|end|>' 1001\n\
         [[259], [258], [104, 195, 169, 257, 111]]\n\
         ValueError\n\
         ConnectionError True\n"
    );
}

#[tokio::test]
#[ignore = "in tests/packages-all.txt: run with `cargo xtask test --all-packages`"]
async fn cramjam_round_trips_every_codec_and_agrees_with_the_stdlib() {
    // cramjam: PyO3 over snappy, lz4, zstd, brotli, bzip2, xz (liblzma
    // with POSIX threads, which needs signal masks), deflate, gzip and
    // zlib, most of them C built by the cc crate. What the stdlib
    // compresses cramjam decompresses and the other way round; an xz
    // preset that needs more memory than the sandbox has (preset 9: ~674
    // MiB) is a CompressionError and the session goes on, as natively
    // with too little memory.
    let stdout = run_with(
        &wheels(&["cramjam-"]),
        r#"
import bz2, gzip, lzma, zlib, cramjam
data = b"".join(b"eryx %d sandbox line\n" % i for i in range(20000))
ok = []
for name in ["snappy", "lz4", "zstd", "brotli", "gzip", "zlib", "deflate", "bzip2", "xz"]:
    m = getattr(cramjam, name)
    c = bytes(m.compress(data))
    ok.append(bytes(m.decompress(c)) == data and len(c) < len(data) // 4)
print(ok)
print(bytes(cramjam.gzip.decompress(gzip.compress(data))) == data,
      gzip.decompress(bytes(cramjam.gzip.compress(data))) == data,
      zlib.decompress(bytes(cramjam.zlib.compress(data))) == data,
      bytes(cramjam.bzip2.decompress(bz2.compress(data))) == data,
      lzma.decompress(bytes(cramjam.xz.compress(data))) == data,
      bytes(cramjam.xz.decompress(lzma.compress(data))) == data)
out = cramjam.Buffer()
n = cramjam.snappy.compress_into(data, out)
print(n == len(bytes(out)), bytes(cramjam.snappy.decompress(bytes(out))) == data)
try:
    cramjam.zstd.decompress(b"not zstd at all")
except cramjam.DecompressionError as e:
    print("DecompressionError")
try:
    cramjam.xz.compress(data, preset=9)
except cramjam.CompressionError as e:
    print("CompressionError", e)
print(bytes(cramjam.xz.decompress(cramjam.xz.compress(b"still here"))))
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "[True, True, True, True, True, True, True, True, True]\n\
         True True True True True True\n\
         True True\n\
         DecompressionError\n\
         CompressionError can't allocate memory\n\
         b'still here'\n"
    );
}

#[tokio::test]
#[ignore = "in tests/packages-all.txt: run with `cargo xtask test --all-packages`"]
async fn tokenizers_trains_encodes_and_awaits_in_the_guest() {
    // Hugging Face's tokenizers: PyO3 over a Rust core whose dependencies
    // compile C (oniguruma) and C++ (esaxx, the Unigram trainer's suffix
    // arrays) with the `cc` crate; training runs on rayon, which falls back
    // to the calling thread. Its async methods need tokio's threaded
    // runtime, which WASI cannot have: its recipe runs them inline. Every
    // printed value is what tokenizers 0.23.3 prints natively (checked).
    let stdout = run_with(
        &wheels(&["tokenizers-"]),
        r#"
import asyncio
from tokenizers import Tokenizer, models, trainers, pre_tokenizers, decoders, normalizers
corpus = ["the quick brown fox jumps over the lazy dog"] * 50 + ["hello world, hello sandbox"] * 50
tok = Tokenizer(models.BPE(unk_token="[UNK]"))
tok.normalizer = normalizers.NFKC()
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=["[UNK]"], show_progress=False))
enc = tok.encode("hello quick fox")
print(enc.tokens, enc.offsets[:2], tok.decode(enc.ids))
print([e.tokens for e in tok.encode_batch(["the dog", "world"])])
tok.save("/tmp/tok.json")
print(Tokenizer.from_file("/tmp/tok.json").encode("lazy dog").ids == tok.encode("lazy dog").ids)
uni = Tokenizer(models.Unigram())
uni.train_from_iterator(corpus, trainers.UnigramTrainer(vocab_size=60, show_progress=False, special_tokens=["<unk>"], unk_token="<unk>"))
print(uni.encode("hello fox").tokens)
async def main():
    e = await tok.async_encode("hello fox")
    b = await tok.async_encode_batch(["the dog", "world"])
    d = await tok.async_decode_batch([e.ids])
    return e.tokens, [x.tokens for x in b], d
print(asyncio.run(main()))
try:
    Tokenizer.from_str("{not json")
except Exception as e:
    print(type(e).__name__, e)
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "['hello', 'Ġquick', 'Ġfox'] [(0, 5), (5, 11)] hello quick fox\n\
         [['the', 'Ġdog'], ['wor', 'ld']]\n\
         True\n\
         ['hello ', 'f', 'ox']\n\
         (['hello', 'Ġfox'], [['the', 'Ġdog'], ['wor', 'ld']], ['hello fox'])\n\
         Exception key must be a string at line 1 column 2\n"
    );
}

#[tokio::test]
#[ignore = "in tests/packages-all.txt: run with `cargo xtask test --all-packages`"]
async fn msgspec_decodes_validates_and_packs_in_c() {
    let stdout = run_with(
        &wheels(&["msgspec-"]),
        r#"
import msgspec
class User(msgspec.Struct):
    name: str
    age: int
    tags: list[str] = []
u = msgspec.json.decode(b'{"name": "a", "age": 3}', type=User)
print(u, msgspec.json.encode(u), msgspec.msgpack.decode(msgspec.msgpack.encode([1, 2.5, "x", None])))
for bad in (b'{"name": "a", "age": "x"}', b'{"name": "a"'):
    try:
        msgspec.json.decode(bad, type=User)
    except msgspec.ValidationError as e:
        print("ValidationError", e)
    except msgspec.DecodeError as e:
        print("DecodeError", e)
print(msgspec.to_builtins(User("b", 4, ["t"])), msgspec.json.schema(User)["$defs"]["User"]["required"])
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "User(name='a', age=3, tags=[]) b'{\"name\":\"a\",\"age\":3,\"tags\":[]}' [1, 2.5, 'x', None]\n\
         ValidationError Expected `int`, got `str` - at `$.age`\n\
         DecodeError Input data was truncated\n\
         {'name': 'b', 'age': 4, 'tags': ['t']} ['name', 'age']\n"
    );
}

#[tokio::test]
async fn the_guests_lapack_and_blas_solve_factor_and_decompose() {
    // tests/lapack-check: a C extension calling reference LAPACK, BLAS and
    // CBLAS (translated from Fortran for the guest, xtask/src/lapack.rs) as
    // scipy's C does: gfortran's names, no CHARACTER lengths, `void`
    // subroutines. Matrices are column-major lists.
    let mut sb = support::builder()
        .package(wheel("eryx_lapack_check-"))
        .build()
        .await
        .expect("building the sandbox");
    let out = sb
        .execute(
            r#"
import lapack_check as lc
h = lc.helpers()
print(h["eps"] == 2.0**-53, h["nb"], h["nrm2"], h["rotation"], h["zdotc"])
print(lc.solve(2, [4, 2, 1, 3], [1, 2]))
print(lc.solve(2, [1, 2, 2, 4], [1, 2])[1])
print(lc.solve(-1, [], []))
print([round(v, 12) for v in lc.eigh(3, [2, -1, 0, -1, 2, -1, 0, -1, 2])])
print([round(v, 12) for v in lc.zeigh(2, [2, 0, 0, 2], [0, 1, -1, 0])])
print([round(v, 12) for v in lc.singular_values(3, 2, [3, 0, 0, 0, 4, 0])])
print(lc.eig(2, [0, 1, -1, 0]))
print(lc.cholesky_info(2, [1, 2, 2, 1]), lc.cholesky_info(2, [2, 1, 1, 2]))
print(lc.matmul(2, 2, 2, [1, 3, 2, 4], [5, 7, 6, 8]))
"#,
        )
        .await
        .expect("the LAPACK calls run");
    assert_eq!(
        out.stdout,
        "True 64 1.4142135623730952e+300 (0.6, 0.8, 5.0) (70.0, -8.0)\n\
         ([0.1, 0.6], 0)\n\
         2\n\
         ([], -1)\n\
         [0.585786437627, 2.0, 3.414213562373]\n\
         [1.0, 3.0]\n\
         [4.0, 3.0]\n\
         ([0.0, 0.0], [1.0, -1.0])\n\
         2 0\n\
         [19.0, 43.0, 22.0, 50.0]\n"
    );
    // An argument LAPACK refuses reaches XERBLA, which says which and
    // returns (the reference one would stop the interpreter).
    assert!(
        out.stderr
            .contains("** On entry to DGESV parameter number 1 had an illegal value"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
#[ignore = "in tests/packages-all.txt: run with `cargo xtask test --all-packages`"]
async fn scipy_runs_its_compiled_modules_on_the_guests_lapack() {
    // scipy 1.18 on the guest's LAPACK (f2c-translated reference LAPACK,
    // xtask/src/lapack.rs): its Cython, C and C++ (Boost.Math, HiGHS,
    // ARPACK, DUCC, qhull) through each subpackage users reach for.
    // SuperLU (spsolve, splu) also on its error path: a singular matrix
    // makes it `longjmp` out of the factorisation to a Python error.
    let stdout = run_with(
        &wheels(&["scipy-", "numpy-"]),
        r#"
import numpy as np
from scipy import linalg, optimize, integrate, interpolate, stats, special, fft, sparse, spatial, signal
from scipy.sparse.linalg import eigsh, spsolve, splu
rng = np.random.default_rng(1)
a = rng.standard_normal((6, 6)); b = rng.standard_normal(6)
print("linalg", np.allclose(a @ linalg.solve(a, b), b), np.allclose(linalg.inv(a) @ a, np.eye(6)),
      np.isclose(linalg.det(a), np.prod(linalg.eigvals(a)).real))
p, l, u = linalg.lu(a); q, r = linalg.qr(a); s = linalg.svdvals(a)
spd = a @ a.T + 6 * np.eye(6); c = linalg.cholesky(spd)
print("decomp", np.allclose(p @ l @ u, a), np.allclose(q @ r, a), np.allclose(c.T @ c, spd),
      np.allclose(s, np.linalg.svd(a, compute_uv=False)))
w, v = linalg.eigh(spd); print("eigh", np.allclose(spd @ v, v * w))
print("expm", np.allclose(linalg.expm(np.zeros((3, 3))), np.eye(3)), np.allclose(linalg.logm(linalg.expm(np.diag([1., 2.]))), np.diag([1., 2.])))
res = optimize.minimize(optimize.rosen, [1.3, 0.7, 0.8], method="BFGS")
print("minimize", np.allclose(res.x, 1, atol=1e-4))
lp = optimize.linprog([-1, -2], A_ub=[[1, 1], [3, 1]], b_ub=[4, 6], bounds=[(0, None)] * 2)
print("linprog", lp.status, np.allclose(lp.x, [0, 4]), lp.fun)
print("root", round(optimize.brentq(lambda x: x**3 - 2, 0, 2), 10))
print("quad", round(integrate.quad(np.sin, 0, np.pi)[0], 10))
sol = integrate.solve_ivp(lambda t, y: -y, (0, 1), [1.0], rtol=1e-8)
print("ivp", abs(sol.y[0, -1] - np.exp(-1)) < 1e-6)
cs = interpolate.CubicSpline([0, 1, 2, 3], [0, 1, 8, 27]); print("spline", round(float(cs(1.5)), 6))
print("stats", round(stats.norm.cdf(1.96), 6), round(stats.ttest_ind([1, 2, 3, 4], [2, 3, 4, 5]).pvalue, 6))
print("special", special.gamma(5), round(special.erf(0.5), 10), round(special.jv(0, 1.0), 10))
print("fft", np.allclose(fft.ifft(fft.fft(b)).real, b))
m = sparse.csr_matrix(spd); print("sparse", np.allclose((m @ m).toarray(), spd @ spd),
      np.allclose(sorted(eigsh(m, k=2, which="LM")[0]), sorted(w)[-2:]))
x = spsolve(sparse.csc_matrix(spd), b); lu = splu(sparse.csc_matrix(a))
print("superlu", np.allclose(spd @ x, b), np.allclose(a @ lu.solve(b), b))
try:
    splu(sparse.csc_matrix(np.zeros((3, 3))))
except RuntimeError as e:
    print("RuntimeError", e)
pts = rng.random((50, 2)); tree = spatial.cKDTree(pts); d, i = tree.query([0.5, 0.5])
print("spatial", np.isclose(d, spatial.distance.cdist([[0.5, 0.5]], pts).min()), spatial.ConvexHull(pts).vertices.size > 2)
bb, aa = signal.butter(4, 0.2); y = signal.filtfilt(bb, aa, np.sin(np.linspace(0, 10, 200)))
print("signal", y.shape, bool(np.all(np.isfinite(y))))
try:
    linalg.solve(np.zeros((2, 2)), [1, 2])
except linalg.LinAlgError as e:
    print("LinAlgError", e)
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "linalg True True True\n\
         decomp True True True True\n\
         eigh True\n\
         expm True True\n\
         minimize True\n\
         linprog 0 True -8.0\n\
         root 1.2599210499\n\
         quad 2.0\n\
         ivp True\n\
         spline 3.375\n\
         stats 0.975002 0.315334\n\
         special 24.0 0.5204998778 0.7651976866\n\
         fft True\n\
         sparse True True\n\
         superlu True True\n\
         RuntimeError Factor is exactly singular\n\
         spatial True True\n\
         signal (200,) True\n\
         LinAlgError A singular matrix detected: slice(s) [0] are singular.\n"
    );
}

#[tokio::test]
#[ignore = "in tests/packages-all.txt: run with `cargo xtask test --all-packages`"]
async fn scikit_learn_fits_and_scores_its_estimators() {
    // scikit-learn 1.9 from its sdist with no recipe (Cython, C++ of
    // libsvm/liblinear, no OpenMP) on scipy and numpy; joblib runs
    // sequentially and threadpoolctl finds no thread pools to limit (and no
    // longer warns: `ctypes.util.dllist`). The numbers are native
    // scikit-learn 1.9.1's on x86-64 Linux.
    let stdout = run_with(
        &wheels(&[
            "scikit_learn-",
            "scipy-",
            "numpy-",
            "joblib-",
            "threadpoolctl-",
            "narwhals-",
        ]),
        r#"
import warnings
warnings.simplefilter("error", RuntimeWarning)
import numpy as np
from sklearn.datasets import load_iris, make_regression
from sklearn.model_selection import train_test_split, cross_val_score, GridSearchCV
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.ensemble import RandomForestClassifier, HistGradientBoostingClassifier
from sklearn.svm import SVC
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.neighbors import KNeighborsClassifier
X, y = load_iris(return_X_y=True)
Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0)
for m in [make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
          RandomForestClassifier(n_estimators=20, random_state=0), SVC(),
          KNeighborsClassifier(), HistGradientBoostingClassifier(max_iter=20)]:
    print(type(m).__name__, m.fit(Xtr, ytr).score(Xte, yte) > 0.9)
print("kmeans", sorted(np.bincount(KMeans(3, n_init=3, random_state=0).fit(X).labels_).tolist()))
print("pca", PCA(2).fit(X).explained_variance_ratio_.round(3).tolist())
Xr, yr = make_regression(100, 5, noise=0.1, random_state=0)
print("ridge", Ridge().fit(Xr, yr).score(Xr, yr) > 0.999)
print("cv", cross_val_score(LogisticRegression(max_iter=500), X, y, cv=3, n_jobs=2).round(2).tolist())
g = GridSearchCV(SVC(), {"C": [0.1, 1, 10]}, cv=3).fit(X, y); print("grid", g.best_params_)
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "Pipeline True\n\
         RandomForestClassifier True\n\
         SVC True\n\
         KNeighborsClassifier True\n\
         HistGradientBoostingClassifier True\n\
         kmeans [39, 50, 61]\n\
         pca [0.925, 0.053]\n\
         ridge True\n\
         cv [0.98, 0.96, 0.98]\n\
         grid {'C': 10}\n"
    );
}

#[tokio::test]
#[ignore = "in tests/packages-all.txt: run with `cargo xtask test --all-packages`"]
async fn statsmodels_fits_formulas_logits_and_arima() {
    // statsmodels 0.15 (Cython on scipy's cython_lapack) from its sdist with
    // no recipe, on pandas and patsy; the numbers are native statsmodels
    // 0.15.0's on x86-64 Linux, to the digits printed.
    let stdout = run_with(
        &wheels(&[
            "statsmodels-",
            "patsy-",
            "pandas-",
            "python_dateutil-",
            "tzdata-",
            "packaging-",
            "scipy-",
            "numpy-",
        ]),
        r#"
import numpy as np, pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
from statsmodels.tsa.arima.model import ARIMA
from statsmodels.tsa.stattools import adfuller
rng = np.random.default_rng(0)
df = pd.DataFrame({"x": rng.normal(size=200)}); df["y"] = 2 + 3 * df.x + rng.normal(scale=0.5, size=200)
res = smf.ols("y ~ x", data=df).fit(); print(res.params.round(3).to_dict(), round(res.rsquared, 3))
logit = sm.Logit((df.y > 2).astype(int), sm.add_constant(df.x)).fit(disp=0); print(logit.params.round(2).tolist())
ts = pd.Series(np.cumsum(rng.normal(size=120)))
print(ARIMA(ts, order=(1, 1, 0)).fit().params.round(3).tolist())
print(round(adfuller(ts, result_object=False)[1], 3))
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "{'Intercept': 1.956, 'x': 2.965} 0.969\n[0.57, 12.85]\n[-0.077, 1.158]\n0.384\n"
    );
}

#[tokio::test]
#[ignore = "in tests/packages-all.txt: run with `cargo xtask test --all-packages`"]
async fn cryptography_encrypts_signs_and_issues_certificates_on_openssl() {
    // cryptography 50 (Rust, with its cffi bindings) on OpenSSL 3.6 built
    // for the guest (xtask/src/openssl.rs); every deterministic line is
    // native cryptography 50.0.2's on x86-64 Linux, byte for byte, and the
    // random keys (RSA, ECDH) round-trip through an encrypted PEM.
    let stdout = run_with(
        &wheels(&["cryptography-", "cffi-", "pycparser-"]),
        r#"
import base64, datetime
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa, padding, ec
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.exceptions import InvalidSignature

key = base64.urlsafe_b64encode(bytes(range(32)))
f = Fernet(key)
token = f._encrypt_from_parts(b"agent secret", 1_700_000_000, bytes(16))
print(token.decode())
print(f.decrypt(token))
try:
    Fernet(Fernet.generate_key()).decrypt(token)
except InvalidToken:
    print("InvalidToken")
h = hmac.HMAC(b"k", hashes.SHA256()); h.update(b"msg"); print(h.finalize().hex()[:32])
print(HKDF(hashes.SHA256(), 16, b"salt", b"info").derive(b"ikm").hex())
print(PBKDF2HMAC(hashes.SHA256(), 16, b"salt", 1000).derive(b"pw").hex())
print(AESGCM(bytes(16)).encrypt(bytes(12), b"hello", b"ad").hex())
print(ChaCha20Poly1305(bytes(32)).encrypt(bytes(12), b"hello", None).hex())
sk = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
sig = sk.sign(b"m"); print(sig.hex()[:32])
try:
    sk.public_key().verify(sig, b"n")
except InvalidSignature:
    print("InvalidSignature")
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "eryx.test")])
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(sk.public_key()).serial_number(7)
        .not_valid_before(datetime.datetime(2026, 1, 1))
        .not_valid_after(datetime.datetime(2027, 1, 1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("eryx.test")]), critical=False)
        .sign(sk, None))
pem = cert.public_bytes(serialization.Encoding.PEM)
again = x509.load_pem_x509_certificate(pem)
print(again.fingerprint(hashes.SHA256()).hex()[:32], again.subject.rfc4514_string(),
      again.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName))
rk = rsa.generate_private_key(65537, 2048)
pem = rk.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                       serialization.BestAvailableEncryption(b"pw"))
rk2 = serialization.load_pem_private_key(pem, b"pw")
s = rk2.sign(b"d", padding.PKCS1v15(), hashes.SHA256())
rk.public_key().verify(s, b"d", padding.PKCS1v15(), hashes.SHA256())
ek = ec.generate_private_key(ec.SECP384R1())
shared = ek.exchange(ec.ECDH(), ec.generate_private_key(ec.SECP384R1()).public_key())
print(rk2.key_size, len(s), len(shared))
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "gAAAAABlU_EAAAAAAAAAAAAAAAAAAAAAAAxQLtdlqwMS7CvUIDNM4jOqvQ6OllKYawkiEVVUN_t5uO6pTGSIfr_5kNZJrBE8FQ==\nb'agent secret'\nInvalidToken\nbf1a0c1242929b6464a6c0a9ac6298a6\nfe8f9615d2374c0d17f77d1aeaf408c2\n0a38253555ce37f5c72a6b703f996814\n6bedb6a20f83f9a4efcd4ee4aa6f473087004abd1a\nf7628bd23adce962340b6fd6a0a4d1fe736f29456f\na7c6928397a3841f5fc8cc71f44d0023\nInvalidSignature\n965c85007fb58fad528139d6bdac1652 CN=eryx.test ['eryx.test']\n2048 256 48\n"
    );
}

#[tokio::test]
#[ignore = "in tests/packages-all.txt: run with `cargo xtask test --all-packages`"]
async fn pyopenssl_completes_a_tls_handshake_on_the_guests_libssl() {
    // pyOpenSSL drives the guest's libssl (cryptography's bindings): a
    // client and a server in one sandbox, their records passed through
    // memory BIOs, agree on TLS 1.3 with a certificate cryptography made.
    let stdout = run_with(
        &wheels(&["pyopenssl-", "cryptography-", "cffi-", "pycparser-"]),
        r#"
import datetime
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL, crypto
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "eryx.test")])
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(datetime.datetime(2026, 1, 1))
        .not_valid_after(datetime.datetime(2030, 1, 1)).sign(key, hashes.SHA256()))
server_ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
server_ctx.use_certificate(cert)
server_ctx.use_privatekey(key)
client_ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
client_ctx.set_verify(SSL.VERIFY_PEER)
client_ctx.get_cert_store().add_cert(crypto.X509.from_cryptography(cert))
server = SSL.Connection(server_ctx, None)
server.set_accept_state()
client = SSL.Connection(client_ctx, None)
client.set_connect_state()
def pump():
    for a, b in ((client, server), (server, client)):
        try:
            b.bio_write(a.bio_read(65536))
        except SSL.WantReadError:
            pass
for _ in range(10):
    for c in (client, server):
        try:
            c.do_handshake()
        except SSL.WantReadError:
            pass
    pump()
client.sendall(b"hello over TLS")
pump()
print(server.get_protocol_version_name(), server.get_cipher_name(), server.recv(100))
print(client.get_peer_certificate().to_cryptography().subject.rfc4514_string())
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "TLSv1.3 TLS_AES_256_GCM_SHA384 b'hello over TLS'\nCN=eryx.test\n"
    );
}

#[tokio::test]
#[ignore = "in tests/packages-all.txt: run with `cargo xtask test --all-packages`"]
async fn scikit_image_filters_segments_and_transforms_as_natively() {
    // scikit-image 0.26 (meson, Cython and C++) from its sdist with no
    // recipe, on scipy and Pillow; the output is native scikit-image
    // 0.26.0's on x86-64 Linux (its numpy 2.4 and scipy 1.17), line for line.
    let stdout = run_with(
        &wheels(&[
            "scikit_image-",
            "scipy-",
            "numpy-",
            "pillow-",
            "imageio-",
            "tifffile-",
            "networkx-",
            "lazy_loader-",
            "packaging-",
        ]),
        r#"
import numpy as np
from skimage import data, filters, measure, morphology, transform, feature, exposure, segmentation, color, io, util
img = data.camera()
print(img.shape, img.dtype, int(img.sum()))
t = filters.threshold_otsu(img); print("otsu", t)
labels = measure.label(morphology.remove_small_objects(img > t, max_size=64))
print("regions", labels.max(), sorted(r.area for r in measure.regionprops(labels))[-3:])
print("sobel", round(float(filters.sobel(img).mean()), 6))
print("canny", int(feature.canny(img, sigma=2).sum()))
small = transform.resize(img, (128, 128), anti_aliasing=True); print("resize", round(float(small.mean()), 6))
print("rotate", round(float(transform.rotate(img, 30).mean()), 6))
print("equalize", round(float(exposure.equalize_hist(img).mean()), 6))
rgb = data.astronaut(); seg = segmentation.slic(rgb, n_segments=50, start_label=1)
print("slic", seg.max(), round(float(color.rgb2gray(rgb).mean()), 6))
print("hog", feature.hog(small, pixels_per_cell=(16, 16)).shape)
io.imsave("/tmp/cam.png", img); print("png", bool((io.imread("/tmp/cam.png") == img).all()))
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "(512, 512) uint8 33832495\notsu 102\nregions 11 [np.float64(11559.0), np.float64(20986.0), np.float64(138953.0)]\nsobel 0.034217\ncanny 7347\nresize 0.506114\nrotate 0.415761\nequalize 0.504347\nslic 31 0.441954\nhog (2916,)\npng True\n"
    );
}

#[tokio::test]
#[ignore = "in tests/packages-all.txt: run with `cargo xtask test --all-packages`"]
async fn astropy_converts_units_coordinates_times_and_writes_fits() {
    // astropy 8 (C, Cython and wcslib) and pyerfa from their sdists with no
    // recipe. Before wheel revision 15 `import astropy.cosmology` trapped:
    // `_wcs._sanity_check(self, args, kwds)` sits in a `METH_NOARGS` entry
    // and CPython calls it with two arguments (fpcast.rs now adapts it).
    // The output is native astropy 8.0.2's on x86-64 Linux, line for line.
    let stdout = run_with(
        &wheels(&[
            "astropy-",
            "astropy_iers_data-",
            "pyerfa-",
            "pyyaml-",
            "packaging-",
            "scipy-",
            "numpy-",
        ]),
        r#"
import numpy as np
import astropy, astropy.units as u
from astropy.coordinates import SkyCoord, EarthLocation, AltAz
from astropy.time import Time
from astropy.table import Table
from astropy.io import fits
from astropy.cosmology import Planck18
from astropy.utils import iers
iers.conf.auto_download = False
iers.conf.auto_max_age = None
from astropy import constants as c
print(astropy.__version__)
print((3 * u.km / (2 * u.s)).to(u.m / u.s), (1 * u.lyr).to(u.pc).round(6))
a = SkyCoord(ra=10.68458 * u.deg, dec=41.26917 * u.deg, frame="icrs")
b = SkyCoord("05h35m17.3s -05d23m28s")
print(a.galactic.to_string(precision=4), round(a.separation(b).deg, 6))
t = Time("2026-12-07T12:00:00", scale="utc")
print(t.jd, t.tt.iso, round(t.sidereal_time("mean", longitude=0).hour, 3))
print(round(Planck18.luminosity_distance(1.0).value, 3), c.G.si)
tab = Table({"a": [1, 2, 3], "b": [0.5, 1.5, 2.5]}); tab["c"] = tab["a"] * tab["b"]
tab.write("/tmp/t.fits", overwrite=True); back = Table.read("/tmp/t.fits"); print(list(back["c"]))
hdu = fits.PrimaryHDU(np.arange(12.0).reshape(3, 4)); hdu.header["OBJECT"] = "eryx"; hdu.writeto("/tmp/i.fits", overwrite=True)
with fits.open("/tmp/i.fits") as f: print(f[0].header["OBJECT"], f[0].data.sum())
tab.write("/tmp/t.ecsv", overwrite=True); print(open("/tmp/t.ecsv").read().splitlines()[-1])
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "8.0.2\n1500.0 m / s 0.306601 pc\n121.1742 -21.5729 81.07796\n2461382.0 2026-12-07 12:01:09.184 17.085\n6791.269   Name   = Gravitational constant\n  Value  = 6.6743e-11\n  Uncertainty  = 1.5e-15\n  Unit  = m3 / (kg s2)\n  Reference = CODATA 2022\n[np.float64(0.5), np.float64(3.0), np.float64(7.5)]\neryx 66.0\n3 2.5 7.5\n"
    );
}

#[tokio::test]
#[ignore = "in tests/packages-all.txt: run with `cargo xtask test --all-packages`"]
async fn spacy_tokenizes_matches_and_trains_on_blis() {
    // spaCy 3.8 (Cython C++ with exceptions) on thinc and blis (its BLAS,
    // the portable kernels: recipe): tokenizer exceptions in two languages,
    // the rule matcher, Doc serialisation, and a text classifier and entity
    // recogniser trained for twenty steps. Every line, the losses included,
    // is native spaCy 3.8.18's on x86-64 Linux (its AVX kernels).
    // `import spacy` loads its CLI too: typer, weasel, requests, jinja2.
    let stdout = run_with(
        &wheels(&[
            "spacy-", "spacy_legacy-", "spacy_loggers-", "thinc-", "blis-", "cymem-",
            "preshed-", "murmurhash-", "srsly-", "catalogue-", "wasabi-", "confection-",
            "pydantic-", "pydantic_core-", "typing_extensions-", "typing_inspection-",
            "annotated_types-", "numpy-", "packaging-", "tqdm-", "requests-", "urllib3-",
            "idna-", "certifi-", "charset_normalizer-", "typer-", "annotated_doc-",
            "shellingham-", "click-", "rich-", "markdown_it_py-", "mdurl-", "pygments-",
            "weasel-", "cloudpathlib-", "smart_open-", "wrapt-", "httpx-", "httpcore-",
            "h11-", "anyio-", "jinja2-", "markupsafe-",
        ]),
        r#"
import spacy
from spacy.training import Example
from spacy.util import fix_random_seed
from spacy.matcher import Matcher
from spacy.tokens import Doc
nlp = spacy.blank("en")
doc = nlp("Apple isn't buying U.K. startups for $1 billion. Dr. Smith e-mailed foo@bar.com at 9:30am!")
print("|".join(t.text for t in doc))
print(" ".join(t.shape_ for t in doc if t.like_num or t.like_email))
m = Matcher(nlp.vocab)
m.add("MONEY", [[{"ORTH": "$"}, {"LIKE_NUM": True}, {"LOWER": {"IN": ["million", "billion"]}}]])
print([doc[s:e].text for _, s, e in m(doc)])
print(Doc(nlp.vocab).from_bytes(doc.to_bytes()).text == doc.text)
print("|".join(t.text for t in spacy.blank("de")("Wir treffen uns z.B. um 10 Uhr in der Bahnhofstr. 5.")))
fix_random_seed(0)
tc = nlp.add_pipe("textcat")
tc.add_label("POS"); tc.add_label("NEG")
ner = nlp.add_pipe("ner")
ner.add_label("FRUIT")
data = [
    ("I love apples", {"cats": {"POS": 1.0, "NEG": 0.0}, "entities": [(7, 13, "FRUIT")]}),
    ("bananas are awful", {"cats": {"POS": 0.0, "NEG": 1.0}, "entities": [(0, 7, "FRUIT")]}),
    ("what a great pear", {"cats": {"POS": 1.0, "NEG": 0.0}, "entities": [(13, 17, "FRUIT")]}),
    ("I hate rotten plums", {"cats": {"POS": 0.0, "NEG": 1.0}, "entities": [(14, 19, "FRUIT")]}),
]
examples = [Example.from_dict(nlp.make_doc(t), a) for t, a in data]
opt = nlp.initialize(lambda: examples)
for i in range(20):
    losses = {}
    nlp.update(examples, sgd=opt, losses=losses, drop=0.0)
    if i < 3:
        print(i, {k: f"{float(v):.3f}" for k, v in losses.items()})
docs = list(nlp.pipe(["I love pears", "rotten bananas are awful"]))
print([{k: f"{v:.2f}" for k, v in d.cats.items()} for d in docs], [[(e.text, e.label_) for e in d.ents] for d in docs])
again = spacy.blank("en"); again.add_pipe("textcat"); again.add_pipe("ner")
again.from_bytes(nlp.to_bytes())
print(f'{again("I love pears").cats["POS"]:.2f}')
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "Apple|is|n't|buying|U.K.|startups|for|$|1|billion|.|Dr.|Smith|e|-|mailed|foo@bar.com|at|9:30am|!\nd xxxx xxx@xxx.xxx\n['$1 billion']\nTrue\nWir|treffen|uns|z.B.|um|10|Uhr|in|der|Bahnhofstr|.|5.\n0 {'textcat': '0.250', 'ner': '10.167'}\n1 {'textcat': '0.235', 'ner': '11.489'}\n2 {'textcat': '0.197', 'ner': '10.993'}\n[{'POS': '1.00', 'NEG': '0.00'}, {'POS': '0.00', 'NEG': '1.00'}] [[('pears', 'FRUIT')], [('bananas', 'FRUIT')]]\n1.00\n"
    );
}

#[tokio::test]
#[ignore = "in tests/packages-all.txt: run with `cargo xtask test --all-packages`"]
async fn shapely_runs_geos_operations_as_natively() {
    // shapely 2.2 on GEOS 3.13 built for the guest (C++ with exceptions,
    // xtask/src/clibs.rs): every line is native shapely 2.2.0's (on its
    // bundled GEOS 3.14.1) on x86-64 Linux; an invalid WKT raises what
    // GEOS throws as `GEOSException`.
    let stdout = run_with(
        &wheels(&["shapely-", "numpy-"]),
        r#"
import shapely
from shapely import wkt, wkb
from shapely.geometry import Point, Polygon, LineString, MultiPoint, box, mapping, shape
from shapely.ops import unary_union, transform, nearest_points
from shapely.strtree import STRtree
import numpy as np
print(shapely.geos_version[:2] in ((3, 13), (3, 14)))
a = box(0, 0, 2, 2); b = Point(2, 1).buffer(1, quad_segs=8)
print(round(a.area, 6), round(b.area, 6), round(a.intersection(b).area, 6), round(a.union(b).area, 6))
print(a.intersects(b), a.contains(Point(1, 1)), a.touches(box(2, 0, 3, 1)), a.within(box(-1, -1, 3, 3)))
print(wkt.dumps(a.symmetric_difference(box(1, 1, 3, 3)).normalize(), rounding_precision=3))
line = LineString([(0, 0), (1, 1), (2, 0), (3, 1)])
print(round(line.length, 6), wkt.dumps(line.simplify(0.5), rounding_precision=3), line.interpolate(1.5).wkt)
print(MultiPoint([(0, 0), (2, 0), (1, 2), (1, 1)]).convex_hull.wkt)
print(unary_union([box(0, 0, 1, 1), box(1, 0, 2, 1), box(5, 5, 6, 6)]).normalize().wkt)
bad = Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])
print(bad.is_valid, shapely.is_valid_reason(bad), shapely.make_valid(bad).normalize().wkt)
pts = shapely.points(np.arange(5.0), np.arange(5.0))
print(shapely.distance(pts, Point(0, 0)).round(3).tolist(), shapely.get_x(pts).tolist())
tree = STRtree([box(i, 0, i + 0.5, 0.5) for i in range(10)])
print(sorted(tree.query(box(2.2, 0, 4.2, 1)).tolist()), int(tree.nearest(Point(7.9, 0.2))))
print(wkb.loads(wkb.dumps(a, hex=True), hex=True).equals(a), shape(mapping(b)).equals(b))
print([p.wkt for p in nearest_points(a, Point(5, 5))])
print(shapely.transform(a, lambda c: c * [1, 2] + [10, 0]).bounds)
try:
    wkt.loads("POLYGON ((0 0, 1 1")
except shapely.errors.ShapelyError as e:
    print(type(e).__name__)
print(shapely.voronoi_polygons(MultiPoint([(0, 0), (1, 0), (0, 1)])).geoms.__len__(), len(shapely.delaunay_triangles(MultiPoint([(0, 0), (1, 0), (0, 1), (1, 1)])).geoms))
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "True\n4.0 3.121445 1.560723 5.560723\nTrue True True True\nMULTIPOLYGON (((1.000 2.000, 1.000 3.000, 3.000 3.000, 3.000 1.000, 2.000 1.000, 2.000 2.000, 1.000 2.000)), ((0.000 0.000, 0.000 2.000, 1.000 2.000, 1.000 1.000, 2.000 1.000, 2.000 0.000, 0.000 0.000)))\n4.242641 LINESTRING (0.000 0.000, 1.000 1.000, 2.000 0.000, 3.000 1.000) POINT (1.0606601717798212 0.9393398282201788)\nPOLYGON ((0 0, 1 2, 2 0, 0 0))\nMULTIPOLYGON (((0 0, 0 1, 1 1, 2 1, 2 0, 1 0, 0 0)), ((5 5, 5 6, 6 6, 6 5, 5 5)))\nFalse Self-intersection[1 1] MULTIPOLYGON (((1 1, 2 2, 2 0, 1 1)), ((0 0, 0 2, 1 1, 0 0)))\n[0.0, 1.414, 2.828, 4.243, 5.657] [0.0, 1.0, 2.0, 3.0, 4.0]\n[2, 3, 4] 8\nTrue True\n['POINT (2 2)', 'POINT (5 5)']\n(10.0, 0.0, 12.0, 4.0)\nGEOSException\n3 2\n"
    );
}

#[tokio::test]
async fn every_package_at_once() {
    let stdout = run_with(
        &[vec![wheel("markupsafe-"), wheel("msgpack-"), wheel("numpy-")], pydantic_wheels()].concat(),
            "import markupsafe, msgpack, pydantic, numpy as np\n\
             class M(pydantic.BaseModel):\n    x: int\n\
             print(markupsafe.escape('<'), msgpack.unpackb(msgpack.packb(M(x=int(np.int64(1))).model_dump())))",
    )
    .await;
    assert_eq!(stdout.trim(), "&lt; {'x': 1}");
}

#[tokio::test]
async fn pytest_runs_a_test_suite_in_the_sandbox() {
    // What an agent does with code it wrote: run its tests, with pytest's
    // defaults. WASI has no `os.dup`, which pytest's fd-level capture and
    // its faulthandler plugin need: the sandbox's PYTEST_ADDOPTS switches
    // them (README); before it, `pytest.main()` failed at start-up.
    let stdout = run_with(
        &wheels(&[
            "pytest-",
            "pluggy-",
            "iniconfig-",
            "packaging-",
            "pygments-",
        ]),
        r#"
import os, textwrap, pytest
os.makedirs("proj", exist_ok=True)
with open("proj/test_sample.py", "w") as f:
    f.write(textwrap.dedent("""
        import pytest
        def test_ok():
            assert 1 + 1 == 2
        def test_fail():
            print("noise from a failing test")
            assert [1, 2] == [1, 3]
        def test_quiet():
            print("noise from a passing test")
        @pytest.mark.parametrize("n", [1, 2])
        def test_tmp_path(n, tmp_path):
            (tmp_path / "f").write_text("x" * n)
            assert (tmp_path / "f").read_text() == "x" * n
        def test_capsys_and_raises(capsys):
            print("hello")
            assert capsys.readouterr().out == "hello\\n"
            with pytest.raises(ZeroDivisionError):
                1 / 0
    """))
code = pytest.main(["-q", "proj"])
print("exit", int(code))
"#,
    )
    .await;
    assert!(stdout.contains("1 failed, 5 passed"), "{stdout}");
    assert!(stdout.contains("At index 1 diff: 2 != 3"), "{stdout}");
    // Output is captured: a failing test's is in its report, a passing
    // test's is not shown at all.
    let captured = stdout
        .split_once("Captured stdout call")
        .and_then(|(_, rest)| rest.lines().nth(1));
    assert_eq!(captured, Some("noise from a failing test"), "{stdout}");
    assert!(!stdout.contains("noise from a passing test"), "{stdout}");
    assert!(stdout.trim_end().ends_with("exit 1"), "{stdout}");
}

#[tokio::test]
async fn sympy_does_symbolic_maths() {
    // sympy reads `sizeof(c_long)` from ctypes at import: it failed with
    // "No module named '_ctypes'" before eryx's own ctypes.
    let stdout = run_with(
        &wheels(&["sympy-", "mpmath-"]),
        r#"
import sympy as sp
x = sp.symbols("x")
print(sp.integrate(sp.sin(x)**2, x))
print(sp.solve(x**2 - 5*x + 6, x), sp.factor(x**4 - 1))
print(sp.limit(sp.sin(x)/x, x, 0), sp.Matrix([[1, 2], [3, 4]]).det(), sp.isprime(2**61 - 1))
print(sp.N(sp.pi, 30), sp.external.gmpy.LONG_MAX == 2**31 - 1)
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "x/2 - sin(x)*cos(x)/2\n[2, 3] (x - 1)*(x + 1)*(x**2 + 1)\n1 -2 True\n\
         3.14159265358979323846264338328 True\n"
    );
}

#[tokio::test]
async fn httpx_and_anyio_run_as_an_api_client_would() {
    // Both import `ssl` at the top (anyio's asyncio backend, httpx's
    // config): before eryx's `_ssl` they failed with "No module named
    // '_ssl'". An SDK-style client over a mock transport, and an anyio
    // task group; a real request fails as any network access does here.
    let stdout = run_with(
        &wheels(&[
            "httpx-",
            "httpcore-",
            "anyio-",
            "typing_extensions-",
            "h11-",
            "idna-",
            "certifi-",
        ]),
        r#"
import anyio, httpx
def handler(request):
    return httpx.Response(200, json={"path": request.url.path, "auth": request.headers["authorization"]})
client = httpx.Client(base_url="https://api.example.com", headers={"authorization": "Bearer k"},
                      transport=httpx.MockTransport(handler))
print(client.get("/v1/models").json())
async def main():
    results = []
    async def work(n):
        await anyio.sleep(0.01 * n)
        results.append(n)
    async with anyio.create_task_group() as tg:
        for n in (3, 1, 2):
            tg.start_soon(work, n)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as c:
        r = await c.get("https://x.test/async", headers={"authorization": "a"})
    return results, r.json()["path"]
print(anyio.run(main))
try:
    httpx.get("https://example.com", timeout=2)
except httpx.ConnectError as e:
    print("ConnectError:", e)
"#,
    )
    .await;
    assert_eq!(
        stdout,
        "{'path': '/v1/models', 'auth': 'Bearer k'}\n([1, 2, 3], '/async')\n\
         ConnectError: [Errno -4] no network in this sandbox (looking up 'example.com'); \
         the host can allow names (`SandboxBuilder::allow_net`, `eryx --allow-net \
         HOST:PORT`) or offer what the code needs as host functions\n"
    );
}

#[tokio::test]
async fn http_clients_fetch_from_an_allowed_https_host() {
    // requests (urllib3 on `ssl.SSLSocket`), httpx sync and async (httpcore
    // on anyio's TLS streams) and aiohttp (asyncio's `wrap_bio`) against a
    // real HTTPS server: TLS runs on the host under the guest's `ssl`, the
    // certificate checked against the CA the code names, as on any
    // machine; each client's own error for an unknown issuer.
    let (port, ca) = crate::network::https_server();
    let mut b = support::builder().allow_net(format!("localhost:{port}"));
    let clients = [
        "requests-",
        "urllib3-",
        "charset_normalizer-",
        "certifi-",
        "httpx-",
        "httpcore-",
        "anyio-",
        "typing_extensions-",
        "h11-",
    ];
    for w in wheels(&[&clients[..], AIOHTTP].concat()) {
        b = b.package(w);
    }
    let mut sb = b.build().await.expect("building the sandbox");
    sb.write_file("/tmp/ca.pem", ca.as_bytes()).unwrap();
    let out = sb
        .execute(&format!(
            r#"
import asyncio, ssl, aiohttp, httpx, requests
url = "https://localhost:{port}"
print(requests.get(url + "/requests", verify="/tmp/ca.pem").text)
with requests.Session() as s:
    print([s.get(f"{{url}}/s{{i}}", verify="/tmp/ca.pem").status_code for i in range(3)])
try:
    requests.get(url)
except requests.exceptions.SSLError as e:
    print("requests:", "CERTIFICATE_VERIFY_FAILED" in str(e))
print(httpx.get(url + "/httpx", verify="/tmp/ca.pem").text)
try:
    httpx.get(url)
except httpx.ConnectError as e:
    print("httpx:", e)
ctx = ssl.create_default_context(cafile="/tmp/ca.pem")
async def main():
    async with httpx.AsyncClient(verify=ctx) as c:
        rs = await asyncio.gather(*(c.get(f"{{url}}/a{{i}}") for i in range(3)))
        print(sorted(r.text for r in rs))
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/aiohttp", ssl=ctx) as r:
            print(r.status, await r.text())
asyncio.run(main())
"#
        ))
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "hello /requests\n[200, 200, 200]\nrequests: True\nhello /httpx\n\
         httpx: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get \
         local issuer certificate\n\
         ['hello /a0', 'hello /a1', 'hello /a2']\n200 hello /aiohttp\n"
    );
}

#[test]
fn the_cli_takes_a_wheelhouse_and_preimports() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(wheel("msgpack-"), dir.path().join("msgpack.whl")).unwrap();
    let wheelhouse = dir.path().to_str().unwrap();
    let out = support::eryx(
        &[
            "--wheelhouse",
            wheelhouse,
            "--preimport",
            "msgpack",
            "-c",
            "import sys; print('msgpack' in sys.modules)",
        ],
        None,
    );
    assert!(out.status.success(), "{}", support::text(&out.stderr));
    assert_eq!(support::text(&out.stdout).trim(), "True");
    let empty = tempfile::tempdir().unwrap();
    let out = support::eryx(
        &["--wheelhouse", empty.path().to_str().unwrap(), "-c", "pass"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = support::text(&out.stderr);
    assert!(
        err.contains("no wheels") && err.contains("cargo xtask wheel"),
        "{err}"
    );
}

/// protobuf (its pure-Python implementation; PyPI's wheel is
/// `py3-none-any`) builds, serialises, parses and prints messages as a
/// script, and the script exits cleanly: the weak proxies its messages
/// leave behind once broke the flushing of open files at exit ("Exception
/// ignored while exiting: ReferenceError").
#[test]
fn protobuf_messages_round_trip_in_a_script() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(wheel("protobuf-"), dir.path().join("protobuf.whl")).unwrap();
    let code = "from google.protobuf import struct_pb2, timestamp_pb2, json_format\n\
                s = struct_pb2.Struct()\n\
                s.update({'name': 'eryx', 'tags': [True, 2.5, None]})\n\
                back = struct_pb2.Struct.FromString(s.SerializeToString())\n\
                print(json_format.MessageToJson(back, indent=None, sort_keys=True))\n\
                t = timestamp_pb2.Timestamp()\n\
                t.FromJsonString('2026-12-06T10:00:00Z')\n\
                print(t.seconds, back == s)\n\
                try:\n\
                \x20   struct_pb2.Struct.FromString(b'\\xff\\xff')\n\
                except Exception as e:\n\
                \x20   print(type(e).__name__)\n";
    let out = support::eryx(
        &["--wheelhouse", dir.path().to_str().unwrap(), "-c", code],
        None,
    );
    assert_eq!(support::text(&out.stderr), "");
    assert!(out.status.success());
    assert_eq!(
        support::text(&out.stdout),
        "{\"name\": \"eryx\", \"tags\": [true, 2.5, null]}\n1796551200 True\nDecodeError\n"
    );
}

/// Runs `cargo xtask wheel --out OUT SOURCE` (the binary `ERYX_XTASK`
/// names); returns whether it succeeded and what it said (its stderr).
fn xtask_wheel(out: &Path, source: &Path) -> (bool, String) {
    let Some(xtask) = std::env::var_os("ERYX_XTASK") else {
        panic!("ERYX_XTASK is not set: run the tests with `cargo xtask test`");
    };
    let run = Command::new(xtask)
        .arg("wheel")
        .arg("--out")
        .arg(out)
        .arg(source)
        .output()
        .unwrap();
    (run.status.success(), support::text(&run.stderr))
}

/// [`xtask_wheel`], which must succeed: what it said.
fn built_wheel(out: &Path, source: &Path) -> String {
    let (built, said) = xtask_wheel(out, source);
    assert!(built, "{said}");
    said
}

/// `cargo xtask wheel` refuses what it cannot build, naming the package
/// and the reason.
#[test]
fn unsupported_sources_are_refused_with_the_reason() {
    let out_dir = tempfile::tempdir().unwrap();
    // `cargo xtask wheel SOURCE` must fail; returns what it said.
    let refused = |source: &std::path::Path| {
        let (built, said) = xtask_wheel(out_dir.path(), source);
        assert!(!built, "{} was built", source.display());
        said
    };
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("pyproject.toml"),
        "[build-system]\nrequires = [\"sip\"]\nbuild-backend = \"sipbuild.api\"\n\n[project]\nname = \"sippy\"\nversion = \"1.0\"\n",
    )
    .unwrap();
    let err = refused(src.path());
    assert!(
        err.contains("sippy") && err.contains("sipbuild.api") && err.contains("not supported"),
        "{err}"
    );
    // A corrupt sdist.
    let bad = out_dir.path().join("broken-1.0.tar.gz");
    std::fs::write(&bad, b"this is not gzip").unwrap();
    let err = refused(&bad);
    assert!(
        err.contains("broken-1.0.tar.gz") && err.contains("not a readable sdist"),
        "{err}"
    );
    // C that uses a function no library of the guest has, and C that
    // needs a system library: the compiler's or linker's error, then what
    // it means here. (C++ that throws is built again with exceptions:
    // `cxx_that_throws_is_built_with_exceptions_and_pre_imported`.)
    for (module, source, says) in [
        (
            "missingsym",
            "#include <Python.h>\nint eryx_no_such_function(void);\nstatic struct PyModuleDef d = {PyModuleDef_HEAD_INIT, \"missingsym\"};\nPyMODINIT_FUNC PyInit_missingsym(void) { eryx_no_such_function(); return PyModuleDef_Init(&d); }\n",
            "eryx_no_such_function",
        ),
        (
            "hint",
            "#include <zlib.h>\nint f(void) { return 0; }\n",
            "needs a system library",
        ),
    ] {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("setup.py"),
            format!("from setuptools import setup, Extension\nsetup(name='{module}', version='1.0', ext_modules=[Extension('{module}', ['m.c'])])\n"),
        )
        .unwrap();
        std::fs::write(d.path().join("m.c"), source).unwrap();
        let err = refused(d.path());
        assert!(err.contains(says), "{module}: {err}");
    }
    // A wheel built for another platform.
    let linux = out_dir
        .path()
        .join("fake-1.0-cp314-cp314-manylinux_2_28_x86_64.whl");
    std::fs::write(&linux, b"PK").unwrap();
    let err = refused(&linux);
    assert!(
        err.contains("manylinux_2_28_x86_64") && err.contains("not for WASI"),
        "{err}"
    );
}

/// C that declares a function with another type than its definition
/// builds (wasm-ld only warns) but would trap when called: the wheel build
/// says which function, with both types.
#[test]
fn a_declaration_of_another_type_is_reported_by_the_build() {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("setup.py"),
        "from setuptools import setup, Extension\n\
         setup(name='mismatched', version='1.0', ext_modules=[Extension('mismatched', ['a.c', 'b.c'])])\n",
    )
    .unwrap();
    std::fs::write(
        src.path().join("a.c"),
        "#include <Python.h>\nint helper(int a);\n\
         static PyObject *f(PyObject *s, PyObject *a) { return PyLong_FromLong(helper(1)); }\n\
         static PyMethodDef m[] = {{\"f\", f, METH_NOARGS, 0}, {0}};\n\
         static struct PyModuleDef d = {PyModuleDef_HEAD_INIT, \"mismatched\", 0, -1, m};\n\
         PyMODINIT_FUNC PyInit_mismatched(void) { return PyModule_Create(&d); }\n",
    )
    .unwrap();
    std::fs::write(src.path().join("b.c"), "void helper(int a, int b) {}\n").unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let said = built_wheel(out_dir.path(), src.path());
    assert!(
        said.contains(
            "`helper` is declared with another type than it is defined with ((i32) -> i32 in "
        ) && said.contains("(i32, i32) -> void in ")
            && said.contains("make the declarations agree"),
        "{said}"
    );
}

/// A source directory of one C++ extension module `name`: a plain
/// `setup.py` and `name.cpp` holding `code`.
fn cxx_extension_source(name: &str, code: &str) -> tempfile::TempDir {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("setup.py"),
        format!(
            "from setuptools import setup, Extension\n\
             setup(name='{name}', version='1.0', \
             ext_modules=[Extension('{name}', ['{name}.cpp'], language='c++')])\n"
        ),
    )
    .unwrap();
    std::fs::write(src.path().join(format!("{name}.cpp")), code).unwrap();
    src
}

/// C++ that throws and catches, from a plain `setup.py` with no recipe:
/// `cargo xtask wheel` finds that it needs exceptions (clang refuses
/// `throw` without them) and builds it again with them; the wheel works
/// in a sandbox that starts Python, and pre-imported, from a snapshot
/// whose run threw and caught at import.
#[tokio::test]
async fn cxx_that_throws_is_built_with_exceptions_and_pre_imported() {
    let src = cxx_extension_source(
        "cxxthrow",
        r#"#include <Python.h>
#include <cstdlib>
#include <stdexcept>
#include <string>

static long parse(const char *s) {
    char *end = nullptr;
    long v = std::strtol(s, &end, 10);
    if (end == s) throw std::invalid_argument("no digits");
    if (*end) throw std::runtime_error(std::string("trailing characters in ") + s);
    return v;
}

static PyObject *to_int(PyObject *, PyObject *arg) {
    const char *s = PyUnicode_AsUTF8(arg);
    if (!s) return NULL;
    try {
        return PyLong_FromLong(parse(s));
    } catch (const std::invalid_argument &) {
        PyErr_SetString(PyExc_ValueError, "not a number");
    } catch (const std::exception &e) {
        PyErr_SetString(PyExc_ValueError, e.what());
    }
    return NULL;
}

static PyMethodDef methods[] = {{"to_int", to_int, METH_O, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "cxxthrow", NULL, -1, methods};

PyMODINIT_FUNC PyInit_cxxthrow(void) {
    int caught = 0;
    try {
        parse("x");
    } catch (const std::exception &) {
        caught = 1;
    }
    PyObject *m = PyModule_Create(&def);
    if (m && PyModule_AddIntConstant(m, "CAUGHT_AT_IMPORT", caught) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
"#,
    );
    let out_dir = tempfile::tempdir().unwrap();
    let said = built_wheel(out_dir.path(), src.path());
    assert!(
        said.contains("its C++ throws or catches exceptions: building it again with them"),
        "{said}"
    );
    let whl = out_dir
        .path()
        .join("cxxthrow-1.0-cp314-cp314-wasi_0_0_0_wasm32.whl");
    let code = "import cxxthrow\n\
                print(cxxthrow.CAUGHT_AT_IMPORT, cxxthrow.to_int('42'))\n\
                for s in ('abc', '12x'):\n\
                \x20   try:\n\
                \x20       cxxthrow.to_int(s)\n\
                \x20   except ValueError as e:\n\
                \x20       print(e)\n";
    let expected = "1 42\nnot a number\ntrailing characters in 12x\n";
    let mut plain = support::builder()
        .package(&whl)
        .preinit(false)
        .build()
        .await
        .unwrap();
    assert_eq!(plain.execute(code).await.unwrap().stdout, expected);
    let mut sb = support::builder()
        .package(&whl)
        .preimport(["cxxthrow"])
        .build()
        .await
        .unwrap();
    assert!(sb.preinitialised());
    assert_eq!(sb.execute(code).await.unwrap().stdout, expected);
}

/// What libc++ itself throws reaches the C++ that catches it: `std::stol`'s
/// `invalid_argument` and `out_of_range` (out-of-line in libc++),
/// `operator new`'s `bad_alloc` when the sandbox's memory limit refuses
/// the allocation, a failed `dynamic_cast`'s `bad_cast` (libc++abi) and
/// the `runtime_error` of libc++'s out-of-line `__throw_runtime_error`.
/// The bundle's libc++ is built without exceptions, where each of these
/// aborted the call (a trap naming `__libcpp_verbose_abort`);
/// `libunwind.so` now carries those parts of libc++ compiled with them.
#[tokio::test]
async fn what_libcxx_throws_is_caught_by_the_extension() {
    let src = cxx_extension_source(
        "cxxstd",
        r#"#include <Python.h>
#include <locale>
#include <new>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

static PyObject *parse(PyObject *, PyObject *arg) {
    const char *s = PyUnicode_AsUTF8(arg);
    if (!s) return NULL;
    try {
        return PyLong_FromLong(std::stol(std::string(s)));
    } catch (const std::invalid_argument &e) {
        PyErr_Format(PyExc_ValueError, "invalid_argument: %s", e.what());
    } catch (const std::out_of_range &e) {
        PyErr_Format(PyExc_OverflowError, "out_of_range: %s", e.what());
    }
    return NULL;
}

static PyObject *filled(PyObject *, PyObject *arg) {
    size_t n = PyLong_AsSize_t(arg);
    if (PyErr_Occurred()) return NULL;
    try {
        std::vector<char> v(n, 'x');
        return PyLong_FromSize_t(v.size());
    } catch (const std::bad_alloc &) {
        return PyErr_NoMemory();
    }
}

struct Base { virtual ~Base() {} };
struct Derived : Base {};
struct Facet : std::locale::facet { static std::locale::id id; };
std::locale::id Facet::id;

static PyObject *caught(PyObject *, PyObject *) {
    std::string seen;
    Base base;
    Base &ref = base;
    try {
        (void)dynamic_cast<Derived &>(ref);
    } catch (const std::bad_cast &) {
        seen += "bad_cast";
    }
    try {
        std::locale::classic().combine<Facet>(std::locale::classic());
    } catch (const std::runtime_error &e) {
        seen += std::string(" runtime_error: ") + e.what();
    }
    return PyUnicode_FromString(seen.c_str());
}

static PyMethodDef methods[] = {
    {"parse", parse, METH_O, NULL},
    {"filled", filled, METH_O, NULL},
    {"caught", caught, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "cxxstd", NULL, -1, methods};

PyMODINIT_FUNC PyInit_cxxstd(void) { return PyModule_Create(&def); }
"#,
    );
    let out_dir = tempfile::tempdir().unwrap();
    built_wheel(out_dir.path(), src.path());
    let whl = out_dir
        .path()
        .join("cxxstd-1.0-cp314-cp314-wasi_0_0_0_wasm32.whl");
    let mut sb = support::builder()
        .package(&whl)
        .memory_limit(256 << 20)
        .build()
        .await
        .unwrap();
    let out = sb
        .execute(
            "import cxxstd\n\
             print(cxxstd.parse('-42'))\n\
             for s in ('abc', '9' * 30):\n\
             \x20   try:\n\
             \x20       cxxstd.parse(s)\n\
             \x20   except (ValueError, OverflowError) as e:\n\
             \x20       print(type(e).__name__, e)\n\
             try:\n\
             \x20   cxxstd.filled(1 << 30)\n\
             except MemoryError:\n\
             \x20   print('MemoryError')\n\
             print(cxxstd.filled(1 << 20))\n\
             print(cxxstd.caught())\n",
        )
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "-42\n\
         ValueError invalid_argument: stol: no conversion\n\
         OverflowError out_of_range: stol: out of range\n\
         MemoryError\n\
         1048576\n\
         bad_cast runtime_error: locale::combine: locale missing facet\n"
    );
    // More than a vector<char> can hold: `length_error`, which the
    // extension does not catch.
    let err = sb
        .execute("cxxstd.filled(3_000_000_000)")
        .await
        .unwrap_err();
    assert!(matches!(err, eryx_host::Error::Trap { .. }), "{err:?}");
    assert!(
        format!("{err:?}").contains("native code threw a C++ exception that nothing caught"),
        "{err:?}"
    );
    let out = sb.execute("import cxxstd; print(cxxstd.parse('7'))").await;
    assert_eq!(out.unwrap().stdout, "7\n");
}

/// A Cython module compiled as C++ around a header that throws, built as
/// an optional extension (`optional=True`, as RapidFuzz's and many
/// packages' native parts are): the glue that lets Cython's `try`/`catch`
/// compile without exceptions turned the header's `throw` into a syntax
/// error, the build went on without the extension and the wheel came out
/// pure Python without saying why. Now clang is asked again without the
/// glue, the builder sees that the code needs exceptions and builds it
/// with them, and the C++ exception reaches Python as Cython maps it.
#[tokio::test]
async fn an_optional_cython_extension_whose_cxx_throws_is_built_with_exceptions() {
    let src = tempfile::tempdir().unwrap();
    let w = |name: &str, text: &str| std::fs::write(src.path().join(name), text).unwrap();
    w(
        "pyproject.toml",
        "[build-system]\nrequires = [\"setuptools>=70\", \"cython>=3.1\"]\nbuild-backend = \"setuptools.build_meta\"\n\n[project]\nname = \"halving\"\nversion = \"1.0\"\n",
    );
    w(
        "setup.py",
        "from setuptools import setup, Extension\nfrom Cython.Build import cythonize\n\
         exts = cythonize([Extension('halving', ['halving.pyx'], language='c++')])\n\
         for e in exts:\n    e.optional = True\n\
         setup(ext_modules=exts)\n",
    );
    w(
        "halving.h",
        "#include <stdexcept>\n#include <string>\n\
         inline long checked_half(long v) {\n\
         \x20   if (v % 2) throw std::invalid_argument(\"odd: \" + std::to_string(v));\n\
         \x20   return v / 2;\n}\n",
    );
    w(
        "halving.pyx",
        "cdef extern from \"halving.h\":\n    long checked_half(long v) except +\n\n\
         def half(long v):\n    return checked_half(v)\n",
    );
    let out_dir = tempfile::tempdir().unwrap();
    let said = built_wheel(out_dir.path(), src.path());
    assert!(
        said.contains("its C++ throws or catches exceptions: building it again with them"),
        "{said}"
    );
    let whl = out_dir
        .path()
        .join("halving-1.0-cp314-cp314-wasi_0_0_0_wasm32.whl");
    assert!(whl.is_file(), "no platform wheel: {said}");
    let mut sb = support::builder().package(&whl).build().await.unwrap();
    let got = sb
        .execute(
            "import halving\n\
             print(halving.half(42))\n\
             try:\n    halving.half(7)\nexcept ValueError as e:\n    print('ValueError', e)\n",
        )
        .await
        .unwrap();
    assert_eq!(got.stdout, "21\nValueError odd: 7\n");
}

/// What the cross compiler does for C and Cython that are correct natively
/// but not in wasm: a `METH_NOARGS` method and a getter declared with one
/// parameter (CPython passes two: in wasm the call trapped with "indirect
/// call type mismatch", as in regex, bitarray and brotli from PyPI) get
/// adapters, and Cython compiled as C++ builds although the guest's libc++
/// has no exceptions (what would throw aborts: the call traps, the host and
/// the next call go on).
#[tokio::test]
async fn short_callbacks_get_adapters_and_cython_cxx_builds_without_exceptions() {
    let src = tempfile::tempdir().unwrap();
    let w = |name: &str, text: &str| std::fs::write(src.path().join(name), text).unwrap();
    w(
        "pyproject.toml",
        "[build-system]\nrequires = [\"setuptools>=70\", \"cython>=3.1\"]\nbuild-backend = \"setuptools.build_meta\"\n\n[project]\nname = \"wasmquirks\"\nversion = \"1.0\"\n",
    );
    w(
        "setup.py",
        "from setuptools import setup, Extension\nfrom Cython.Build import cythonize\n\
         setup(ext_modules=[Extension('shortcb', ['shortcb.c'])]\n\
         + cythonize([Extension('window', ['window.pyx'], language='c++')]))\n",
    );
    w(
        "shortcb.c",
        r#"#include <Python.h>
typedef struct { PyObject_HEAD long n; } Counter;
/* One parameter where CPython passes two (self, NULL / closure). */
static PyObject *counter_bump(Counter *self) { return PyLong_FromLong(++self->n); }
static PyObject *counter_get_n(PyObject *self) { return PyLong_FromLong(((Counter *)self)->n); }
static PyObject *counter_add(Counter *self, PyObject *args, PyObject *kw) {
    long k = 0;
    static char *names[] = {"k", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "l", names, &k)) return NULL;
    self->n += k;
    return PyLong_FromLong(self->n);
}
static PyMethodDef counter_methods[] = {
    {"bump", (PyCFunction)counter_bump, METH_NOARGS, NULL},
    {"add", (PyCFunction)counter_add, METH_VARARGS | METH_KEYWORDS, NULL},
    {NULL}
};
static PyGetSetDef counter_getset[] = {
    {"n", (getter)counter_get_n, NULL, NULL, NULL},
    {NULL}
};
static PyTypeObject CounterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shortcb.Counter",
    .tp_basicsize = sizeof(Counter),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_methods = counter_methods,
    .tp_getset = counter_getset,
};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "shortcb"};
PyMODINIT_FUNC PyInit_shortcb(void) {
    if (PyType_Ready(&CounterType) < 0) return NULL;
    PyObject *m = PyModule_Create(&def);
    if (m && PyModule_AddObjectRef(m, "Counter", (PyObject *)&CounterType) < 0) { Py_DECREF(m); return NULL; }
    return m;
}
"#,
    );
    w(
        "window.pyx",
        "# cython: language_level=3\nfrom libcpp.deque cimport deque\nfrom libcpp.vector cimport vector\n\n\
         def sliding_max(values, Py_ssize_t k):\n    cdef deque[Py_ssize_t] q\n    cdef vector[double] v = values\n    out = []\n\
         \x20   for i in range(v.size()):\n        while not q.empty() and v[q.back()] <= v[i]:\n            q.pop_back()\n\
         \x20       q.push_back(i)\n        if q.front() <= i - k:\n            q.pop_front()\n        if i >= k - 1:\n\
         \x20           out.append(v[q.front()])\n    return out\n\n\
         def at(values, Py_ssize_t i):\n    cdef vector[double] v = values\n    return v.at(i)\n",
    );
    let out_dir = tempfile::tempdir().unwrap();
    let said = built_wheel(out_dir.path(), src.path());
    assert!(
        said.contains("`counter_bump` takes 1 parameter(s) but is called as `PyCFunction` with 2")
            && said
                .contains("`counter_get_n` takes 1 parameter(s) but is called as `getter` with 2")
            && !said.contains("counter_add"),
        "{said}"
    );
    let built: Vec<PathBuf> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    let mut sb = built
        .iter()
        .fold(support::builder(), |b, w| b.package(w))
        .build()
        .await
        .unwrap();
    let stdout = sb
        .execute(
            "import shortcb, window\nc = shortcb.Counter()\nprint(c.bump(), c.bump(), c.n, c.add(k=5))\n\
             print(window.sliding_max([1, 3, 2, 5, 4, 1, 0], 3), window.at([1.5, 2.5], 1))\n",
        )
        .await
        .unwrap()
        .stdout;
    assert_eq!(stdout, "1 2 2 7\n[3.0, 5.0, 5.0, 5.0, 4.0] 2.5\n");
    let err = sb
        .execute("import window\nwindow.at([1.0], 5)")
        .await
        .unwrap_err();
    assert!(matches!(err, eryx_host::Error::Trap { .. }), "{err:?}");
    assert!(format!("{err:?}").contains("out_of_range"), "{err:?}");
    let stdout = sb
        .execute("import shortcb\nprint(shortcb.Counter().bump())")
        .await
        .unwrap()
        .stdout;
    assert_eq!(stdout, "1\n");
}

/// Writes a minimal pure wheel with one module.
fn pure_wheel(dir: &std::path::Path, name: &str, source: &str) -> PathBuf {
    use std::io::Write;
    let path = dir.join(format!("{name}-1.0-py3-none-any.whl"));
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    zip.start_file(format!("{name}.py"), opts).unwrap();
    zip.write_all(source.as_bytes()).unwrap();
    zip.start_file(format!("{name}-1.0.dist-info/METADATA"), opts)
        .unwrap();
    zip.write_all(format!("Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n").as_bytes())
        .unwrap();
    zip.finish().unwrap();
    path
}

/// Sources that come without bytecode get it when the set is prepared:
/// imports read a `.pyc` (compiled by the guest, kept in the cache).
#[tokio::test]
async fn wheels_without_bytecode_get_it_compiled_once() {
    let dir = tempfile::tempdir().unwrap();
    let unique = format!("m{}", std::process::id());
    let a = pure_wheel(dir.path(), &format!("{unique}a"), "VALUE = 41\n");
    let b = pure_wheel(
        dir.path(),
        &format!("{unique}b"),
        "def f():\n    return 1\n",
    );
    for round in 0..2 {
        let mut sb = support::builder()
            .package(&a)
            .package(&b)
            .build()
            .await
            .expect("building");
        let out = sb
            .execute(&format!(
                "import os, {unique}a as a, {unique}b as b\n\
                 print(a.VALUE + b.f(), a.__cached__, os.path.exists(a.__cached__), os.path.exists(b.__cached__))"
            ))
            .await
            .expect("running");
        assert_eq!(
            out.stdout.trim(),
            format!("42 /site-packages/__pycache__/{unique}a.cpython-314.pyc True True"),
            "round {round}"
        );
    }
    let cached: Vec<PathBuf> = support::cache_dir()
        .join("pyc")
        .read_dir()
        .unwrap()
        .flatten()
        .map(|e| {
            e.path()
                .join(format!("__pycache__/{unique}a.cpython-314.pyc"))
        })
        .filter(|p| p.is_file())
        .collect();
    assert_eq!(cached.len(), 1, "the compiled bytecode is cached once");
}

/// A set of one wheel mounts the wheel's unpacked copy in the cache
/// directly (no private directory of links): its bytecode is compiled into
/// that copy once, the guest cannot write to it, and the copy's files are
/// what the guest imports.
#[tokio::test]
async fn a_single_wheel_is_mounted_from_its_unpacked_copy_read_only() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let unique = format!("solo{}", std::process::id());
    let whl = pure_wheel(dir.path(), &unique, "VALUE = 41\n");
    let key: String = Sha256::digest(std::fs::read(&whl).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let copy = support::cache_dir().join("wheels").join(&key[..32]);
    for round in 0..2 {
        let mut sb = support::builder()
            .package(&whl)
            .build()
            .await
            .expect("building");
        let out = sb
            .execute(&format!(
                "import os, {unique} as m\n\
                 print(m.VALUE + 1, m.__cached__, os.path.exists(m.__cached__))\n\
                 try:\n    open('/site-packages/{unique}.py', 'a').write('X = 1')\n\
                 except OSError as e:\n    print('read-only:', type(e).__name__)\n\
                 try:\n    open('/site-packages/new.py', 'w')\n\
                 except OSError as e:\n    print('read-only:', type(e).__name__)"
            ))
            .await
            .expect("running");
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(
            lines[0],
            format!("42 /site-packages/__pycache__/{unique}.cpython-314.pyc True"),
            "round {round}: {}",
            out.stdout
        );
        assert!(
            lines[1..].iter().all(|l| l.starts_with("read-only:")) && lines.len() == 3,
            "round {round}: {}",
            out.stdout
        );
        // What the guest imported is the cache's copy, bytecode included.
        assert!(copy.join(format!("{unique}.py")).is_file());
        assert!(
            copy.join(format!("__pycache__/{unique}.cpython-314.pyc"))
                .is_file(),
            "round {round}: no bytecode in {}",
            copy.display()
        );
        assert_eq!(
            std::fs::read_to_string(copy.join(format!("{unique}.py"))).unwrap(),
            "VALUE = 41\n"
        );
        assert!(!copy.join("new.py").exists());
    }
}

/// A set of several wheels is mounted from one merged tree in the cache
/// (`wheels/set-*`), made once and reused by later builds whatever the
/// order the wheels come in: the same files (inodes), the bytecode the
/// first build compiled into it, read-only to the guest. A tree whose
/// files were changed is made again from the wheels.
#[tokio::test]
async fn a_set_of_wheels_is_mounted_from_one_merged_tree_made_once() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let a_name = format!("seta{}", std::process::id());
    let b_name = format!("setb{}", std::process::id());
    let a = pure_wheel(dir.path(), &a_name, "VALUE = 41\n");
    let b = pure_wheel(dir.path(), &b_name, "def f():\n    return 1\n");
    let wheels = support::cache_dir().join("wheels");
    // The set's tree: the `set-*` directory holding both modules.
    let tree = || -> Vec<PathBuf> {
        std::fs::read_dir(&wheels)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().unwrap().to_string_lossy().starts_with("set-")
                    && p.join(format!("{a_name}.py")).is_file()
                    && p.join(format!("{b_name}.py")).is_file()
            })
            .collect()
    };
    let code = format!(
        "import {a_name} as a, {b_name} as b\n\
         print(a.VALUE + b.f(), a.__cached__)\n\
         try:\n    open('/site-packages/new.py', 'w')\n\
         except OSError as e:\n    print('read-only:', type(e).__name__)"
    );
    let run = |first: PathBuf, second: PathBuf| {
        let code = code.clone();
        async move {
            let mut sb = support::builder()
                .package(&first)
                .package(&second)
                .build()
                .await
                .expect("building");
            sb.execute(&code).await.expect("running").stdout
        }
    };
    let expected =
        format!("42 /site-packages/__pycache__/{a_name}.cpython-314.pyc\nread-only: OSError\n");
    assert_eq!(run(a.clone(), b.clone()).await, expected);
    let made = tree();
    assert_eq!(made.len(), 1, "one merged tree: {made:?}");
    let made = made.into_iter().next().unwrap();
    let source = made.join(format!("{a_name}.py"));
    let inode = std::fs::metadata(&source).unwrap().ino();
    let pyc = made.join(format!("__pycache__/{a_name}.cpython-314.pyc"));
    assert!(pyc.is_file(), "the bytecode stays in {}", made.display());
    let pyc_inode = std::fs::metadata(&pyc).unwrap().ino();

    // Again, the other way round: the same tree, not made again.
    assert_eq!(run(b.clone(), a.clone()).await, expected);
    assert_eq!(tree(), vec![made.clone()]);
    assert_eq!(std::fs::metadata(&source).unwrap().ino(), inode);
    assert_eq!(std::fs::metadata(&pyc).unwrap().ino(), pyc_inode);
    assert!(!made.join("new.py").exists());

    // Changed in place (through the tree: its files are the copies'): the
    // next build makes the copy and the tree again from the wheel.
    std::fs::write(&source, "VALUE = 1000\n").unwrap();
    assert_eq!(run(a.clone(), b.clone()).await, expected);
    assert_eq!(
        std::fs::read_to_string(made.join(format!("{a_name}.py"))).unwrap(),
        "VALUE = 41\n"
    );
}
