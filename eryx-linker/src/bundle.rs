//! The dist bundle: the prebuilt libraries, the stdlib and the adapter that
//! every linked component is made from, described by `manifest.json`.
//!
//! `cargo xtask dist` writes a bundle (by default to `target/dist`); [`Bundle::open`]
//! reads one back and [`Bundle::read_file`] verifies each file against its
//! recorded sha256 before handing out its bytes, so a corrupt or stale bundle
//! is reported instead of linked.
//!
//! Layout (paths relative to the bundle directory, as recorded in the manifest):
//! - `lib/<name>.so`: the base libraries of [`crate::BASE_LIBRARIES`];
//! - `adapter/wasi_snapshot_preview1.reactor.wasm`: the preview1 adapter;
//! - `python/lib/python3.14/`: the CPython standard library (a directory).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The file name of the manifest inside a bundle directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The manifest format this crate reads and writes. Bumped on any
/// incompatible change; a bundle of another format must be rebuilt.
pub const MANIFEST_FORMAT: u32 = 1;

pub use crate::layout::STDLIB_DIR;

/// The file name of the preview1 adapter inside a bundle.
pub const ADAPTER_FILE: &str = "adapter/wasi_snapshot_preview1.reactor.wasm";

/// What a file in the bundle is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// `liberyx_runtime.so`, built from this workspace.
    Runtime,
    /// A base dynamic library (libc, libpython, ...).
    Library,
    /// The `wasi_snapshot_preview1` reactor adapter.
    Adapter,
    /// A standard-library extension module (`_bz2`, `_lzma`) built by
    /// `cargo xtask dist`: linked into every component, `dlopen`-able at
    /// its guest path (`/` + `path`, inside the stdlib directory).
    Extension,
    /// The standard library directory. Its `sha256` is that of the tar it was
    /// unpacked from and its `size` the total bytes of the files.
    Stdlib,
    /// A pure-Python package that `cargo xtask dist` adds to the standard
    /// library directory (`tzdata`, the time zone database `zoneinfo`
    /// needs). `path` is its directory; its `sha256` is that of the wheel
    /// it was unpacked from and its `size` the total bytes of its files.
    Package,
}

/// The versions a bundle was built from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versions {
    /// CPython, e.g. `3.14`.
    pub cpython: String,
    /// The componentize-py wheel the CPython build came from, e.g. `0.25.1`.
    pub componentize_py: String,
    /// The `eryx-runtime` crate version.
    pub eryx_runtime: String,
    /// The wit-dylib version whose ABI the runtime implements.
    pub wit_dylib: String,
}

/// One file (or, for [`Role::Stdlib`] and [`Role::Package`], one directory)
/// of the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// The name the linker knows it by (`libc.so`), or the directory name.
    pub name: String,
    /// The path relative to the bundle directory, with `/` separators.
    pub path: String,
    /// What it is for.
    pub role: Role,
    /// Lower-case hex sha256 of the contents.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Where it came from, e.g. `componentize-py 0.25.1 wheel, zstd frame at 0x2a6f53`.
    pub origin: String,
}

/// The contents of `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`] for bundles this crate can read.
    pub format: u32,
    /// What the bundle was built from.
    pub versions: Versions,
    /// Every file of the bundle.
    pub files: Vec<FileEntry>,
}

impl Manifest {
    /// The entry named `name`, if any.
    pub fn entry(&self, name: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.name == name)
    }

    /// A content hash of the whole manifest (every file's name, role and
    /// sha256, and the versions): the bundle's identity in cache keys.
    pub fn content_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.format.to_le_bytes());
        for v in [
            &self.versions.cpython,
            &self.versions.componentize_py,
            &self.versions.eryx_runtime,
            &self.versions.wit_dylib,
        ] {
            h.update((v.len() as u64).to_le_bytes());
            h.update(v.as_bytes());
        }
        let mut files: Vec<&FileEntry> = self.files.iter().collect();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        for f in files {
            for s in [&f.name, &f.sha256] {
                h.update((s.len() as u64).to_le_bytes());
                h.update(s.as_bytes());
            }
        }
        hex::encode(h.finalize())
    }
}

/// Lower-case hex sha256 of `bytes`: the one content-hash format of eryx
/// (manifests, cache keys, fetched archives).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Why a bundle could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The directory has no readable manifest.
    #[error(
        "no eryx bundle at {}: cannot read its {MANIFEST_FILE}; build one with `cargo xtask dist`",
        dir.display()
    )]
    MissingManifest {
        /// The bundle directory.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not valid JSON of the expected shape.
    #[error(
        "the bundle manifest {} is corrupt; rebuild it with `cargo xtask dist`",
        path.display()
    )]
    CorruptManifest {
        /// The manifest path.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The manifest is of another format version.
    #[error(
        "the bundle at {} has manifest format {found}, this eryx reads format {MANIFEST_FORMAT}; rebuild it with `cargo xtask dist`",
        dir.display()
    )]
    WrongFormat {
        /// The bundle directory.
        dir: PathBuf,
        /// The format found.
        found: u32,
    },
    /// A file the linker needs is not listed in the manifest.
    #[error(
        "the bundle at {} has no `{name}`; rebuild it with `cargo xtask dist`",
        dir.display()
    )]
    MissingEntry {
        /// The bundle directory.
        dir: PathBuf,
        /// The missing file's name.
        name: String,
    },
    /// A listed file cannot be read.
    #[error("cannot read {} from the bundle; rebuild it with `cargo xtask dist`", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file's contents do not match the manifest.
    #[error(
        "{} does not match the bundle manifest (sha256 {found}, expected {expected}): the bundle is corrupt or stale; rebuild it with `cargo xtask dist`",
        path.display()
    )]
    HashMismatch {
        /// The file.
        path: PathBuf,
        /// The sha256 recorded in the manifest.
        expected: String,
        /// The sha256 of the file on disk.
        found: String,
    },
}

/// An opened bundle: a directory and its parsed manifest.
#[derive(Debug, Clone)]
pub struct Bundle {
    dir: PathBuf,
    manifest: Manifest,
}

impl Bundle {
    /// Opens the bundle in `dir`, reading and checking its manifest (file
    /// contents are verified lazily, by [`Bundle::read_file`]).
    pub fn open(dir: impl AsRef<Path>) -> Result<Bundle, BundleError> {
        let dir = dir.as_ref().to_path_buf();
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read(&path).map_err(|source| BundleError::MissingManifest {
            dir: dir.clone(),
            source,
        })?;
        let manifest: Manifest = serde_json::from_slice(&text)
            .map_err(|source| BundleError::CorruptManifest { path, source })?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(BundleError::WrongFormat {
                dir,
                found: manifest.format,
            });
        }
        Ok(Bundle { dir, manifest })
    }

    /// The bundle directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The parsed manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The manifest entry named `name`, or an error naming it.
    pub fn entry(&self, name: &str) -> Result<&FileEntry, BundleError> {
        self.manifest
            .entry(name)
            .ok_or_else(|| BundleError::MissingEntry {
                dir: self.dir.clone(),
                name: name.to_string(),
            })
    }

    /// Reads the file named `name` and checks it against its sha256.
    pub fn read_file(&self, name: &str) -> Result<Vec<u8>, BundleError> {
        let entry = self.entry(name)?;
        let path = self.dir.join(&entry.path);
        let bytes = std::fs::read(&path).map_err(|source| BundleError::Io {
            path: path.clone(),
            source,
        })?;
        let found = sha256_hex(&bytes);
        if found != entry.sha256 {
            return Err(BundleError::HashMismatch {
                path,
                expected: entry.sha256.clone(),
                found,
            });
        }
        Ok(bytes)
    }

    /// The host directory holding the standard library (mounted read-only in
    /// the guest at `/` + [`STDLIB_DIR`]).
    pub fn stdlib_dir(&self) -> Result<PathBuf, BundleError> {
        let entry = self
            .manifest
            .files
            .iter()
            .find(|f| f.role == Role::Stdlib)
            .ok_or_else(|| BundleError::MissingEntry {
                dir: self.dir.clone(),
                name: "stdlib".to_string(),
            })?;
        let path = self.dir.join(&entry.path);
        let landmark = path.join("os.py");
        if !landmark.is_file() {
            return Err(BundleError::Io {
                path: landmark,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "stdlib landmark missing",
                ),
            });
        }
        Ok(path)
    }
}
