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
}
