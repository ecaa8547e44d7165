//! `cargo xtask wheel`: Python packages → wheels for the guest.
//!
//! ```text
//! cargo xtask wheel pydantic==2.14.4 markupsafe msgpack    # from PyPI, dependencies resolved
//! cargo xtask wheel ./pkg-1.0.tar.gz ./src-tree -r requirements.txt
//! ```
//! Every requirement is resolved for the guest (CPython 3.14 on
//! `wasm32-wasi`: its version, `sys_platform == "wasi"`,
//! `platform_machine == "wasm32"`, ...), dependencies included. A
//! pure-Python wheel on PyPI is taken as it is (unless the project's recipe
//! says `prefer-sdist`: then the sdist is built and the pure wheel is the
//! fallback if that fails); anything else is built from
//! its sdist with the recipe for its build backend (`build.rs`): setuptools
//! and meson-python through the package's own backend with our cross
//! compiler (`wasmcc.rs`), maturin/PyO3 with `cargo xtask ext build`.
//! Built wheels are ordinary PEP 427 wheels tagged
//! `cp314-cp314-wasi_0_0_0_wasm32`, with `.pyc` compiled by the guest's
//! own CPython, so `--package` takes them like any other wheel. The
//! wheelhouse is `target/wheels` (or `--out DIR`); built wheels are cached
//! by the sdist's SHA-256.
//!
//! Resolution is greedy (the newest version that satisfies every
//! requirement seen so far, no backtracking): a later requirement that the
//! chosen version does not satisfy is an error naming both.

mod build;
mod index;
mod whl;

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use pep508_rs::pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{
    MarkerEnvironment, MarkerEnvironmentBuilder, PackageName, Requirement, VersionOrUrl,
};

use crate::progress;

pub(crate) use build::on_path;
pub(crate) use whl::WASI_TAG;

/// The packages `cargo xtask test` builds for `tests/all/packages.rs`
/// (`tests/packages.txt`, which the tests read too).
pub(crate) const TEST_PACKAGES: &str = include_str!("../../../tests/packages.txt");

/// The heavier ones that only `cargo xtask test --all-packages` builds and
/// tests (`tests/packages-all.txt`).
pub(crate) const ALL_TEST_PACKAGES: &str = include_str!("../../../tests/packages-all.txt");

/// The requirements of a requirements file's text (comments and blank
/// lines dropped), as `cargo xtask wheel` arguments.
pub(crate) fn requirement_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The guest as PEP 508 markers see it (read off the guest's CPython:
/// `platform.system()` is `'wasi'`, `platform.release()` is `'0.0.0'`).
fn guest_markers() -> MarkerEnvironment {
    MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
        implementation_name: "cpython",
        implementation_version: "3.14.0",
        os_name: "posix",
        platform_machine: "wasm32",
        platform_python_implementation: "CPython",
        platform_release: "0.0.0",
        platform_system: "wasi",
        platform_version: "0.0.0",
        python_full_version: "3.14.0",
        python_version: "3.14",
        sys_platform: "wasi",
    })
    .expect("the guest's marker values are valid")
}

/// A pure wheel from the index, in `out`, with bytecode.
fn pure_wheel(
    index: &mut index::Index,
    builder: &mut build::Builder,
    f: &index::File,
    out: &Path,
) -> Result<PathBuf> {
    let path = index.download(f)?;
    let dest = out.join(&f.filename);
    if !dest.is_file() {
        std::fs::copy(&path, &dest)?;
    }
    let wheel = whl::check_guest_wheel(&dest, out)?;
    // Its bytecode, compiled once here: the guest's /site-packages is
    // read-only, so without it every run would compile the sources again
    // (~1.4 s for pydantic).
    if whl::has_bytecode(&wheel)? {
        Ok(wheel)
    } else {
        let with = builder.add_bytecode(&wheel)?;
        if with != wheel {
            std::fs::remove_file(&wheel)?;
        }
        Ok(with)
    }
}

/// The guest's Python version, for `Requires-Python`.
fn guest_python() -> Version {
    Version::from_str("3.14.0").expect("a valid version")
}

const USAGE: &str =
    "usage: cargo xtask wheel [--out DIR] [--work DIR] [--no-deps] [-r FILE]... SPEC...
  SPEC: a requirement (`numpy==2.4.6`, `msgpack`, `pydantic>=2`), an sdist (.tar.gz/.zip),
        a source directory (with pyproject.toml or setup.py), or a wheel (.whl)
  --out DIR   where the wheels go (default target/wheels)
  --work DIR  build directory and cache of built wheels (default target/wheels-build);
              runs at the same time need their own";

/// One thing asked for.
#[derive(Debug, Clone)]
enum Spec {
    Requirement(Requirement),
    Path(PathBuf),
}

/// What `cargo xtask wheel` was asked for.
struct Args {
    specs: Vec<Spec>,
    out: Option<PathBuf>,
    work: Option<PathBuf>,
    deps: bool,
}

fn parse_args(args: &[String]) -> Result<Args> {
    let mut specs = Vec::new();
    let mut out = None;
    let mut work = None;
    let mut deps = true;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out = Some(PathBuf::from(it.next().context(USAGE)?)),
            "--work" => work = Some(PathBuf::from(it.next().context(USAGE)?)),
            "--no-deps" => deps = false,
            "-r" | "--requirement" => {
                let file = it.next().context(USAGE)?;
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read the requirements file {file}"))?;
                for line in requirement_lines(&text) {
                    if line.starts_with('-') {
                        bail!(
                            "{file}: pip options are not supported in requirements files: `{line}`"
                        );
                    }
                    specs.push(spec(&line)?);
                }
            }
            "-h" | "--help" => bail!("{USAGE}"),
            s if s.starts_with('-') => bail!("unknown option `{s}`\n{USAGE}"),
            s => specs.push(spec(s)?),
        }
    }
    if specs.is_empty() {
        bail!("nothing to build\n{USAGE}");
    }
    Ok(Args {
        specs,
        out,
        work,
        deps,
    })
}

fn spec(s: &str) -> Result<Spec> {
    let p = Path::new(s);
    let looks_like_path = s.ends_with(".tar.gz")
        || s.ends_with(".zip")
        || s.ends_with(".whl")
        || s.contains('/')
        || p.is_dir();
    if looks_like_path {
        if !p.exists() {
            bail!("{s}: no such file or directory");
        }
        return Ok(Spec::Path(p.to_path_buf()));
    }
    Requirement::from_str(s)
        .map(Spec::Requirement)
        .map_err(|e| anyhow::anyhow!("`{s}` is not a requirement (PEP 508): {e}"))
}

/// A package in the resolved set.
#[derive(Debug, Clone)]
struct Chosen {
    version: Version,
    wheel: PathBuf,
    /// Who asked for it first (for conflict messages).
    wanted_by: String,
}

/// The source distribution of `name` `version` from the package index,
/// downloaded (once, its SHA-256 checked) into `downloads`: for tests that
/// a project ships in its sdist but not in its wheels.
pub(crate) fn fetch_sdist(name: &str, version: &str, downloads: &Path) -> Result<PathBuf> {
    let mut index = index::Index::new(downloads);
    let package = PackageName::from_str(name)?;
    let specifiers = VersionSpecifiers::from_str(&format!("=={version}"))?;
    let pick = index.pick(&package, &specifiers, &guest_python(), true)?;
    match pick.artifact {
        index::Artifact::Sdist(f) => index.download(&f),
        index::Artifact::PureWheel(f) => {
            bail!(
                "{name} {version} has no sdist on the index (only {})",
                f.filename
            )
        }
    }
}

pub(crate) use build::unpack_sdist;

/// `cargo xtask wheel ARGS`.
pub(crate) fn wheel(root: &Path, args: &[String]) -> Result<ExitCode> {
    let Args {
        specs,
        out,
        work,
        deps,
    } = parse_args(args)?;
    let out = out.unwrap_or_else(|| root.join("target/wheels"));
    let work = work.unwrap_or_else(|| root.join("target/wheels-build"));
    std::fs::create_dir_all(&out)?;
    let env = guest_markers();
    let mut builder = build::Builder::new(root, &out, &work)?;
    let mut index = index::Index::new(&out.join(".downloads"));
    let mut chosen: BTreeMap<PackageName, Chosen> = BTreeMap::new();
    let mut queue: VecDeque<(Requirement, String)> = VecDeque::new();

    // Local inputs first: they fix their package's version.
    for s in &specs {
        match s {
            Spec::Path(p) => {
                let wheel = if p.extension().is_some_and(|e| e == "whl") {
                    whl::check_guest_wheel(p, &out)?
                } else {
                    builder.build_source(p)?
                };
                let meta = whl::metadata(&wheel)?;
                let name = PackageName::from_str(&meta.name)?;
                progress!("{} {} ← {}", meta.name, meta.version, p.display());
                if deps {
                    for r in &meta.requires {
                        queue.push_back((r.clone(), meta.name.clone()));
                    }
                }
                chosen.insert(
                    name,
                    Chosen {
                        version: Version::from_str(&meta.version)?,
                        wheel,
                        wanted_by: p.display().to_string(),
                    },
                );
            }
            Spec::Requirement(r) => queue.push_back((r.clone(), "the command line".into())),
        }
    }

    while let Some((req, from)) = queue.pop_front() {
        if !req.evaluate_markers(&env, &[]) {
            continue;
        }
        let specifiers = match &req.version_or_url {
            None => VersionSpecifiers::empty(),
            Some(VersionOrUrl::VersionSpecifier(s)) => s.clone(),
            Some(VersionOrUrl::Url(u)) => {
                bail!(
                    "{} (asked for by {from}): URL requirements ({u}) are not supported; download it and pass the file",
                    req.name
                )
            }
        };
        let newly = if let Some(c) = chosen.get(&req.name) {
            if !specifiers.contains(&c.version) {
                bail!(
                    "version conflict: {from} needs `{req}`, but {} {} was already chosen for {} \
                     (resolution does not backtrack: pin a version that satisfies both on the command line)",
                    req.name,
                    c.version,
                    c.wanted_by
                );
            }
            None
        } else {
            let started = std::time::Instant::now();
            let cpu_before = crate::cpu_jiffies();
            let prefer_sdist = build::recipe_prefers_sdist(root, req.name.as_ref())?;
            let pick = index
                .pick(&req.name, &specifiers, &guest_python(), prefer_sdist)
                .with_context(|| format!("resolving `{req}` (asked for by {from})"))?;
            let wheel = match &pick.artifact {
                index::Artifact::PureWheel(f) => pure_wheel(&mut index, &mut builder, f, &out)?,
                index::Artifact::Sdist(f) => {
                    let path = index.download(f)?;
                    match (builder.build_sdist(&path, &f.sha256), &pick.fallback) {
                        (Ok(wheel), _) => wheel,
                        (Err(e), Some(pure)) => {
                            progress!(
                                "{} {}: building its native code from the sdist failed, so its \
                                 pure-Python wheel is used (it works, without the speedups): {}",
                                req.name,
                                pick.version,
                                format!("{e:#}").lines().next().unwrap_or_default()
                            );
                            pure_wheel(&mut index, &mut builder, pure, &out)?
                        }
                        (Err(e), None) => return Err(e),
                    }
                }
            };
            // With how busy the CPUs were: a build that keeps one of two
            // cores idle shows ~50%.
            let busy = crate::cpu_busy_note(cpu_before, crate::cpu_jiffies());
            progress!(
                "{} {} ({}, {:.0} s{busy})",
                req.name,
                pick.version,
                wheel.display(),
                started.elapsed().as_secs_f64()
            );
            chosen.insert(
                req.name.clone(),
                Chosen {
                    version: pick.version.clone(),
                    wheel: wheel.clone(),
                    wanted_by: from.clone(),
                },
            );
            Some(wheel)
        };
        if let (Some(wheel), true) = (newly, deps) {
            let meta = whl::metadata(&wheel)?;
            for dep in &meta.requires {
                if dep.evaluate_markers(&env, &req.extras) {
                    queue.push_back((dep.clone(), format!("{} {}", meta.name, meta.version)));
                }
            }
        }
    }
    builder.finish()?;
    progress!("{} wheel(s) in {}:", chosen.len(), out.display());
    for c in chosen.values() {
        println!("{}", c.wheel.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_markers_select_wasi_dependencies() {
        let env = guest_markers();
        let yes: Requirement =
            Requirement::from_str("a; sys_platform == 'wasi' and python_version >= '3.14'")
                .unwrap();
        let no: Requirement =
            Requirement::from_str("tzdata; platform_system == 'Windows'").unwrap();
        let extra: Requirement =
            Requirement::from_str("email-validator>=2; extra == 'email'").unwrap();
        assert!(yes.evaluate_markers(&env, &[]));
        assert!(!no.evaluate_markers(&env, &[]));
        assert!(!extra.evaluate_markers(&env, &[]));
        let email = pep508_rs::ExtraName::from_str("email").unwrap();
        assert!(extra.evaluate_markers(&env, &[email]));
    }

    #[test]
    fn the_test_package_lists_are_pinned_requirements() {
        let core = requirement_lines(TEST_PACKAGES);
        let all = requirement_lines(ALL_TEST_PACKAGES);
        assert!(core.iter().any(|r| r == "numpy==2.5.5"), "{core:?}");
        assert!(all.iter().any(|r| r.starts_with("pandas==")), "{all:?}");
        for r in core.iter().chain(&all) {
            let req: Requirement = Requirement::from_str(r).unwrap();
            assert!(
                matches!(&req.version_or_url, Some(VersionOrUrl::VersionSpecifier(s)) if s.to_string().starts_with("==")),
                "{r} is not pinned"
            );
            assert!(
                !(core.contains(r) && all.contains(r)),
                "{r} is in both lists"
            );
        }
    }

    #[test]
    fn work_names_a_build_directory_and_needs_a_value() {
        let args: Vec<String> = ["--work", "/tmp/w", "msgpack"].map(String::from).to_vec();
        let parsed = parse_args(&args).unwrap();
        assert_eq!(parsed.work.as_deref(), Some(Path::new("/tmp/w")));
        assert_eq!(parsed.out, None);
        let err = parse_args(&["--work".to_string()]).err().unwrap();
        assert!(format!("{err}").contains("--work DIR"), "{err}");
    }

    #[test]
    fn specs_are_requirements_or_paths() {
        assert!(matches!(
            spec("numpy==2.4.6").unwrap(),
            Spec::Requirement(_)
        ));
        assert!(spec("./missing-1.0.tar.gz").is_err());
        assert!(spec("not a requirement ===").is_err());
    }
}
