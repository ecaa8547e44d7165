//! PyPI's simple index (PEP 691 JSON): which versions and files a project
//! has, and downloads checked against the index's SHA-256.
//!
//! `ERYX_PYPI_INDEX` overrides the index URL (default
//! `https://pypi.org/simple`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use pep508_rs::PackageName;
use pep508_rs::pep440_rs::{Version, VersionSpecifiers};
use serde::Deserialize;

use crate::{process, progress};

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct File {
    pub(crate) filename: String,
    pub(crate) url: String,
    #[serde(default)]
    hashes: HashMap<String, String>,
    #[serde(rename = "requires-python", default)]
    requires_python: Option<String>,
    #[serde(default)]
    yanked: serde_json::Value,
    #[serde(skip)]
    pub(crate) sha256: String,
}

#[derive(Debug, Deserialize)]
struct Project {
    files: Vec<File>,
}

/// What to get for a chosen version.
#[derive(Debug, Clone)]
pub(crate) enum Artifact {
    /// A `py3-none-any` (or similar) wheel: runs as it is.
    PureWheel(File),
    /// The source distribution, to build.
    Sdist(File),
}

/// A chosen version.
#[derive(Debug, Clone)]
pub(crate) struct Pick {
    pub(crate) version: Version,
    pub(crate) artifact: Artifact,
    /// The pure wheel of the same version when the sdist was preferred to
    /// it: what to use if the sdist does not build.
    pub(crate) fallback: Option<File>,
}

pub(crate) struct Index {
    url: String,
    downloads: PathBuf,
    projects: HashMap<PackageName, Vec<File>>,
}

/// Whether a wheel's compatibility tags admit any Python 3 on any platform.
pub(crate) fn pure_tag(filename: &str) -> bool {
    let stem = filename.trim_end_matches(".whl");
    let parts: Vec<&str> = stem.rsplitn(4, '-').collect();
    let [platform, abi, python, ..] = parts.as_slice() else {
        return false;
    };
    let python_ok = python
        .split('.')
        .any(|t| t == "py3" || t == "py2.py3" || t == "py314" || t == "cp314" && *abi == "none");
    *platform == "any" && *abi == "none" && python_ok
}

/// The version in a distribution file's name (`name-version-...whl`,
/// `name-version.tar.gz`), given the project's normalized name.
fn file_version(filename: &str) -> Option<Version> {
    let stem = filename
        .strip_suffix(".whl")
        .or_else(|| filename.strip_suffix(".tar.gz"))
        .or_else(|| filename.strip_suffix(".zip"))?;
    if filename.ends_with(".whl") {
        return Version::from_str(stem.split('-').nth(1)?).ok();
    }
    // sdists: the version follows the last '-' (names may contain '-').
    Version::from_str(stem.rsplit_once('-')?.1).ok()
}

impl Index {
    pub(crate) fn new(downloads: &Path) -> Index {
        Index {
            url: std::env::var("ERYX_PYPI_INDEX")
                .unwrap_or_else(|_| "https://pypi.org/simple".into())
                .trim_end_matches('/')
                .to_string(),
            downloads: downloads.to_path_buf(),
            projects: HashMap::new(),
        }
    }

    fn files(&mut self, name: &PackageName) -> Result<&Vec<File>> {
        if !self.projects.contains_key(name) {
            let url = format!("{}/{}/", self.url, name);
            let out = process::capture(
                Command::new("curl").args([
                    "-fsSL",
                    "--retry",
                    "3",
                    "-H",
                    "Accept: application/vnd.pypi.simple.v1+json",
                    &url,
                ]),
                &format!("asking the package index about {name}"),
            )
            .with_context(|| format!("is `{name}` a package on PyPI? ({url})"))?;
            let mut project: Project = serde_json::from_slice(&out.stdout)
                .with_context(|| format!("{url} did not answer with PEP 691 JSON"))?;
            for f in &mut project.files {
                f.sha256 = f.hashes.get("sha256").cloned().unwrap_or_default();
            }
            self.projects.insert(name.clone(), project.files);
        }
        Ok(&self.projects[name])
    }

    /// The newest version admitted by `specifiers` and by its own
    /// `Requires-Python`, with a pure wheel or an sdist. Pre-releases only
    /// when nothing else matches. A pure wheel is taken over the sdist unless
    /// `prefer_sdist` (a project whose native speedups its recipe builds),
    /// and then it is kept as the fallback.
    pub(crate) fn pick(
        &mut self,
        name: &PackageName,
        specifiers: &VersionSpecifiers,
        python: &Version,
        prefer_sdist: bool,
    ) -> Result<Pick> {
        let files = self.files(name)?.clone();
        let mut by_version: Vec<(Version, Vec<File>)> = Vec::new();
        for f in files {
            let yanked = !matches!(
                f.yanked,
                serde_json::Value::Bool(false) | serde_json::Value::Null
            );
            if yanked {
                continue;
            }
            if let Some(rp) = &f.requires_python
                && let Ok(rp) = VersionSpecifiers::from_str(rp)
                && !rp.contains(python)
            {
                continue;
            }
            let Some(v) = file_version(&f.filename) else {
                continue;
            };
            if !specifiers.contains(&v) {
                continue;
            }
            match by_version.iter_mut().find(|(x, _)| *x == v) {
                Some((_, fs)) => fs.push(f),
                None => by_version.push((v, vec![f])),
            }
        }
        by_version.sort_by(|a, b| b.0.cmp(&a.0));
        let stable_exists = by_version.iter().any(|(v, _)| !v.any_prerelease());
        for (v, fs) in by_version {
            if stable_exists && v.any_prerelease() {
                continue;
            }
            let pure = fs
                .iter()
                .find(|f| f.filename.ends_with(".whl") && pure_tag(&f.filename));
            let sdist = fs
                .iter()
                .find(|f| f.filename.ends_with(".tar.gz") || f.filename.ends_with(".zip"));
            match (pure, sdist) {
                (Some(w), Some(s)) if prefer_sdist => {
                    return Ok(Pick {
                        version: v,
                        artifact: Artifact::Sdist(s.clone()),
                        fallback: Some(w.clone()),
                    });
                }
                (Some(w), _) => {
                    return Ok(Pick {
                        version: v,
                        artifact: Artifact::PureWheel(w.clone()),
                        fallback: None,
                    });
                }
                (None, Some(s)) => {
                    return Ok(Pick {
                        version: v,
                        artifact: Artifact::Sdist(s.clone()),
                        fallback: None,
                    });
                }
                (None, None) => {}
            }
        }
        bail!(
            "no version of {name} matches `{specifiers}` with Python 3.14 and has a pure-Python \
             wheel or an sdist on the index"
        )
    }

    /// Downloads `file` (once) and checks its SHA-256.
    pub(crate) fn download(&mut self, file: &File) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.downloads)?;
        let dest = self.downloads.join(&file.filename);
        let matches = |p: &Path| {
            std::fs::read(p)
                .map(|b| file.sha256.is_empty() || eryx_linker::sha256_hex(&b) == file.sha256)
                .unwrap_or(false)
        };
        if dest.is_file() && matches(&dest) {
            return Ok(dest);
        }
        progress!("downloading {}", file.filename);
        // Per process: two runs sharing a wheelhouse may fetch one file at once.
        let partial = dest.with_extension(format!("part-{}", std::process::id()));
        process::run(
            Command::new("curl")
                .args(["-fsSL", "--retry", "3", "-o"])
                .arg(&partial)
                .arg(&file.url),
            &format!("downloading {}", file.filename),
        )?;
        if !matches(&partial) {
            let _ = std::fs::remove_file(&partial);
            bail!(
                "{}: the download's SHA-256 does not match the index ({})",
                file.filename,
                file.sha256
            );
        }
        std::fs::rename(&partial, &dest)?;
        Ok(dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preferred_sdist_keeps_the_pure_wheel_as_its_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = Index::new(dir.path());
        let name = PackageName::from_str("yarl").unwrap();
        let files: Vec<File> = serde_json::from_str(
            r#"[{"filename": "yarl-1.2.0-py3-none-any.whl", "url": "u1"},
                {"filename": "yarl-1.2.0-cp314-cp314-manylinux_2_28_x86_64.whl", "url": "u2"},
                {"filename": "yarl-1.2.0.tar.gz", "url": "u3"},
                {"filename": "yarl-1.1.0.tar.gz", "url": "u4"}]"#,
        )
        .unwrap();
        index.projects.insert(name.clone(), files);
        let any = VersionSpecifiers::empty();
        let py = Version::from_str("3.14.0").unwrap();
        let pick = index.pick(&name, &any, &py, false).unwrap();
        assert!(matches!(&pick.artifact, Artifact::PureWheel(f) if f.url == "u1"));
        assert!(pick.fallback.is_none());
        let pick = index.pick(&name, &any, &py, true).unwrap();
        assert!(matches!(&pick.artifact, Artifact::Sdist(f) if f.url == "u3"));
        assert_eq!(pick.fallback.map(|f| f.url).as_deref(), Some("u1"));
        // Only an sdist: nothing to fall back to.
        let old = VersionSpecifiers::from_str("<1.2").unwrap();
        let pick = index.pick(&name, &old, &py, true).unwrap();
        assert!(matches!(&pick.artifact, Artifact::Sdist(f) if f.url == "u4"));
        assert!(pick.fallback.is_none());
    }

    #[test]
    fn pure_wheels_are_recognised_by_their_tags() {
        assert!(pure_tag("typing_extensions-4.15.0-py3-none-any.whl"));
        assert!(pure_tag("six-1.17.0-py2.py3-none-any.whl"));
        assert!(!pure_tag(
            "numpy-2.4.6-cp314-cp314-manylinux_2_28_x86_64.whl"
        ));
        assert!(!pure_tag("x-1-cp314-abi3-any.whl"));
    }

    #[test]
    fn versions_come_from_file_names() {
        assert_eq!(
            file_version("pydantic_core-2.50.2.tar.gz")
                .unwrap()
                .to_string(),
            "2.50.2"
        );
        assert_eq!(
            file_version("annotated-types-0.7.0.tar.gz")
                .unwrap()
                .to_string(),
            "0.7.0"
        );
        assert_eq!(
            file_version("annotated_types-0.7.0-py3-none-any.whl")
                .unwrap()
                .to_string(),
            "0.7.0"
        );
    }
}
