//! Packages from Debian's archive (sid: the suite that carries CPython
//! 3.14), checked against the archive's package index before use.
//!
//! Used for CPython 3.14's headers (C extensions, `cext.rs`) and its test
//! suite (`cargo xtask compat`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use eryx_linker::sha256_hex;

use crate::{process, progress};

/// Debian's archive and the suite that carries Python 3.14.
pub(crate) const DEBIAN: &str = "http://deb.debian.org/debian";
pub(crate) const SUITE: &str = "sid";

/// A package fetched and unpacked.
pub(crate) struct Unpacked {
    /// The directory the package's files were unpacked into (`usr/...`).
    pub(crate) dir: PathBuf,
    /// `Debian <suite> <package> <version>`, the archive path and its SHA-256.
    pub(crate) origin: String,
}

fn download(url: &str, out: &Path) -> Result<()> {
    let mut curl = Command::new("curl");
    curl.args(["-fsSL", "--retry", "3", "-o"]).arg(out).arg(url);
    process::run(&mut curl, &format!("downloading {url}"))
}

/// The package's `Filename`, `SHA256` and `Version` in Debian's index.
pub(crate) fn find_in_index(index: &str, package: &str) -> Option<(String, String, String)> {
    let stanza = index
        .split("\n\n")
        .find(|s| s.lines().next() == Some(&format!("Package: {package}")))?;
    let field = |name: &str| {
        stanza
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(str::to_string)
    };
    Some((field("Filename")?, field("SHA256")?, field("Version")?))
}

/// Downloads `packages` (amd64 or all) from Debian sid into `work`, checks
/// each against the index's SHA-256 and unpacks it; `hint` is added to the
/// error when a package is no longer listed (how to do without it).
pub(crate) fn fetch(packages: &[&str], work: &Path, hint: &str) -> Result<Vec<Unpacked>> {
    let index_xz = work.join("Packages.xz");
    progress!("fetching Debian {SUITE}'s package index");
    download(
        &format!("{DEBIAN}/dists/{SUITE}/main/binary-amd64/Packages.xz"),
        &index_xz,
    )?;
    let index = process::capture(
        Command::new("xz").arg("-dc").arg(&index_xz),
        "decompressing Debian's package index (xz)",
    )?;
    let index = String::from_utf8_lossy(&index.stdout);
    let mut out = Vec::new();
    for package in packages {
        let (file, sha, version) = find_in_index(&index, package)
            .with_context(|| format!("Debian {SUITE} no longer lists {package}; {hint}"))?;
        progress!("fetching {package} {version} from Debian {SUITE}");
        let deb = work.join(format!("{package}.deb"));
        download(&format!("{DEBIAN}/{file}"), &deb)?;
        let found = sha256_hex(&std::fs::read(&deb)?);
        if found != sha {
            bail!("{file}: SHA-256 {found} does not match Debian's index ({sha})");
        }
        let dir = work.join(package);
        process::run(
            Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&dir),
            &format!("unpacking {package} (dpkg-deb)"),
        )?;
        out.push(Unpacked {
            dir,
            origin: format!("Debian {SUITE} {package} {version}\n{file}\nsha256 {sha}\n"),
        });
    }
    Ok(out)
}

/// The upstream part of a Debian version: without its epoch (`1:`) and
/// its Debian revision (`-3`). Every revision of one upstream version has
/// the same `.orig` tarball.
pub(crate) fn upstream_version(v: &str) -> &str {
    let v = v.split_once(':').map_or(v, |(_, rest)| rest);
    v.rsplit_once('-').map_or(v, |(up, _)| up)
}

/// One source package's upstream tarball (`.orig.tar.*`) in Debian's
/// `Sources` index: its archive path, SHA-256 and version, for the highest
/// version that `wanted` accepts.
fn find_source(
    index: &str,
    package: &str,
    wanted: impl Fn(&str) -> bool,
) -> Option<(String, String, String)> {
    let mut best: Option<(String, String, String)> = None;
    for stanza in index.split("\n\n") {
        if stanza.lines().next() != Some(&format!("Package: {package}")) {
            continue;
        }
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .map(str::to_string)
        };
        let (Some(v), Some(dir)) = (field("Version"), field("Directory")) else {
            continue;
        };
        if !wanted(&v) {
            continue;
        }
        // The `Checksums-Sha256:` block: " <sha> <size> <file>" lines.
        let orig = stanza
            .split("Checksums-Sha256:")
            .nth(1)
            .into_iter()
            .flat_map(|block| block.lines().skip(1))
            .take_while(|l| l.starts_with(' '))
            .filter_map(|l| {
                let mut parts = l.split_whitespace();
                let (sha, _size, file) = (parts.next()?, parts.next()?, parts.next()?);
                let is_orig = file.contains(".orig.tar.") && !file.ends_with(".asc");
                is_orig.then(|| (format!("{dir}/{file}"), sha.to_string()))
            })
            .next();
        let Some((file, sha)) = orig else { continue };
        let newer = match &best {
            None => true,
            Some((_, _, b)) => Command::new("dpkg")
                .args(["--compare-versions", &v, "gt", b])
                .status()
                .is_ok_and(|s| s.success()),
        };
        if newer {
            best = Some((file, sha, v));
        }
    }
    best
}

/// The suite searched for a source package's pinned version when
/// [`SUITE`] does not list it: the stable release. (The archive reachable
/// here has answered 404 for sid's newest upstream tarballs of some
/// packages, GEOS 3.15 among them; stable's are there.)
pub(crate) const STABLE: &str = "trixie";

/// Debian's `Sources` index of `suite`, downloaded (into `work`) once per
/// process: a build that fetches several source packages reads one 12 MB
/// index.
fn source_index(work: &Path, suite: &'static str) -> Result<&'static str> {
    static SID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static STABLE_INDEX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let cell = if suite == SUITE { &SID } else { &STABLE_INDEX };
    if let Some(index) = cell.get() {
        return Ok(index);
    }
    let index_xz = work.join(format!("Sources-{suite}.xz"));
    progress!("fetching Debian {suite}'s source index");
    download(
        &format!("{DEBIAN}/dists/{suite}/main/source/Sources.xz"),
        &index_xz,
    )?;
    let index = process::capture(
        Command::new("xz").arg("-dc").arg(&index_xz),
        "decompressing Debian's source index (xz)",
    )?;
    let text = String::from_utf8_lossy(&index.stdout).into_owned();
    Ok(cell.get_or_init(|| text))
}

/// Downloads the upstream sources of Debian source `package` (its
/// `.orig.tar.*`, checked against the `Sources` index) and unpacks the
/// members matching `members` (tar wildcards; all when empty) into `work`.
/// A pinned `version` that sid does not list is looked for in [`STABLE`],
/// then as another Debian revision of its upstream version in either.
/// Returns the directory the tarball's top folder was unpacked to.
pub(crate) fn fetch_source(
    package: &str,
    version: Option<&str>,
    members: &[&str],
    work: &Path,
) -> Result<Unpacked> {
    std::fs::create_dir_all(work)?;
    let suites: &[&'static str] = if version.is_some() {
        &[SUITE, STABLE]
    } else {
        &[SUITE]
    };
    let exact = |v: &str| version.is_none_or(|want| want == v);
    // Then, for a pinned version whose Debian revision has moved on (sid
    // lists 2.14.3+dfsg-4 where 2.14.3+dfsg-3 was pinned): another revision
    // of the same upstream version has the same upstream tarball.
    let same_upstream =
        |v: &str| version.is_some_and(|want| upstream_version(v) == upstream_version(want));
    let passes: [&dyn Fn(&str) -> bool; 2] = [&exact, &same_upstream];
    let mut found = None;
    'search: for (pass, wanted) in passes.into_iter().enumerate() {
        for &suite in suites {
            if let Some(hit) = find_source(source_index(work, suite)?, package, wanted) {
                if pass > 0 {
                    progress!(
                        "Debian lists no {package} {}; {} in {suite} has the same upstream \
                         tarball",
                        version.unwrap_or_default(),
                        hit.2
                    );
                }
                found = Some((hit, suite));
                break 'search;
            }
        }
    }
    let ((file, sha, v), suite) = found.with_context(|| {
        format!(
            "Debian {} lists no source package {package}{}",
            suites.join(" or "),
            version.map(|v| format!(" {v}")).unwrap_or_default()
        )
    })?;
    progress!("fetching the sources of {package} {v} from Debian {suite}");
    let name = file.rsplit('/').next().unwrap_or("orig.tar");
    let tarball = work.join(name);
    download(&format!("{DEBIAN}/{file}"), &tarball)?;
    let found = sha256_hex(&std::fs::read(&tarball)?);
    if found != sha {
        bail!("{file}: SHA-256 {found} does not match Debian's index ({sha})");
    }
    let dir = work.join("src");
    std::fs::create_dir_all(&dir)?;
    let mut tar = Command::new("tar");
    tar.arg("-xf").arg(&tarball).arg("-C").arg(&dir);
    if !members.is_empty() {
        tar.arg("--wildcards").args(members);
    }
    process::run(&mut tar, &format!("unpacking {name}"))?;
    let top = std::fs::read_dir(&dir)?
        .flatten()
        .find(|e| e.path().is_dir())
        .map(|e| e.path())
        .with_context(|| format!("{name} has no top-level directory"))?;
    Ok(Unpacked {
        dir: top,
        origin: format!("Debian {suite} source {package} {v}\n{file}\nsha256 {sha}\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_package_in_a_debian_index() {
        let index = "Package: other\nVersion: 1\nFilename: pool/o.deb\nSHA256: cd\n\n\
                     Package: libpython3.14-dev\nVersion: 3.14.10-1\nFilename: pool/a.deb\nSHA256: ab\n";
        assert_eq!(
            find_in_index(index, "libpython3.14-dev"),
            Some(("pool/a.deb".into(), "ab".into(), "3.14.10-1".into()))
        );
        assert_eq!(find_in_index(index, "missing"), None);
    }

    #[test]
    fn finds_the_newest_upstream_tarball_of_a_source_package() {
        let index = concat!(
            "Package: python3.14\nVersion: 3.14.9-1\nChecksums-Sha256:\n",
            " aa 1 python3.14_3.14.9-1.dsc\n bb 2 python3.14_3.14.9.orig.tar.xz\n",
            "Directory: pool/main/p/python3.14\n\n",
            "Package: python3.14\nVersion: 3.14.10-1\nChecksums-Sha256:\n",
            " cc 1 python3.14_3.14.10-1.dsc\n dd 2 python3.14_3.14.10.orig.tar.xz\n",
            " ee 3 python3.14_3.14.10.orig.tar.xz.asc\nDirectory: pool/main/p/python3.14\n",
        );
        assert_eq!(
            find_source(index, "python3.14", |_| true),
            Some((
                "pool/main/p/python3.14/python3.14_3.14.10.orig.tar.xz".into(),
                "dd".into(),
                "3.14.10-1".into()
            ))
        );
        assert_eq!(
            find_source(index, "python3.14", |v| v == "3.14.9-1").map(|f| f.1),
            Some("bb".into())
        );
        assert_eq!(find_source(index, "python3.13", |_| true), None);
        // Another Debian revision of the same upstream version.
        let same = |v: &str| upstream_version(v) == upstream_version("3.14.10-3");
        assert_eq!(
            find_source(index, "python3.14", same).map(|f| f.2),
            Some("3.14.10-1".into())
        );
    }

    #[test]
    #[ignore = "downloads Debian's source indexes and a 7 MB tarball"]
    fn a_pinned_revision_no_suite_lists_falls_back_to_its_upstream_tarball() {
        // GEOS 3.13.1 is in trixie as 3.13.1-1 only.
        let work = tempfile::tempdir().unwrap();
        let got = fetch_source("geos", Some("3.13.1-7"), &["*/Version.txt"], work.path()).unwrap();
        assert!(got.origin.contains("geos 3.13.1-1"), "{}", got.origin);
        assert!(got.dir.join("Version.txt").is_file());
        let err = fetch_source("geos", Some("0.0.1-1"), &[], work.path())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("lists no source package geos 0.0.1-1"),
            "{err}"
        );
    }

    #[test]
    fn the_upstream_version_drops_the_epoch_and_the_debian_revision() {
        assert_eq!(upstream_version("2.14.3+dfsg-3"), "2.14.3+dfsg");
        assert_eq!(upstream_version("1:1.3.1-1"), "1.3.1");
        assert_eq!(upstream_version("2.0.1-rc1-2"), "2.0.1-rc1");
        assert_eq!(upstream_version("3.12"), "3.12");
    }
}
