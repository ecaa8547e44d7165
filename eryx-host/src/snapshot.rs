//! Snapshots: the guest's pickle payload in a small versioned header.
//!
//! Layout (little-endian):
//! ```text
//! "ERYXSNAP" | format u16 | python len u8, python version | sandbox identity 32 B
//! | payload len u64 | payload sha256 32 B | payload
//! ```
//! The identity is the hash of the bundle and the extension set the
//! snapshot was taken with. [`Snapshot::from_bytes`] checks everything
//! but the pickle itself, which is only ever decoded inside the guest.

use crate::Error;
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"ERYXSNAP";
const FORMAT: u16 = 1;
const PYTHON: &str = "3.14";

/// A serialised Python session.
#[derive(Clone, PartialEq, Eq)]
pub struct Snapshot {
    identity: [u8; 32],
    payload: Vec<u8>,
    skipped: Vec<String>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("payload_len", &self.payload.len())
            .field("skipped", &self.skipped)
            .finish()
    }
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidSnapshot {
        reason: reason.into(),
    }
}

fn identity_bytes(identity: &str) -> [u8; 32] {
    Sha256::digest(identity.as_bytes()).into()
}

impl Snapshot {
    pub(crate) fn new(identity: &str, payload: Vec<u8>, skipped: Vec<String>) -> Snapshot {
        Snapshot {
            identity: identity_bytes(identity),
            payload,
            skipped,
        }
    }

    /// Names that were left out because they could not be pickled (only
    /// with [`crate::Sandbox::snapshot_skipping`]; not stored in the bytes).
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    pub(crate) fn payload(&self) -> &[u8] {
        &self.payload
    }

    pub(crate) fn check_compatible(&self, identity: &str) -> Result<(), Error> {
        if self.identity != identity_bytes(identity) {
            return Err(invalid(
                "it was taken in a sandbox with a different runtime bundle or extension set; restore it into a sandbox built like the one that took it",
            ));
        }
        Ok(())
    }

    /// The snapshot as bytes, to store or send.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.payload.len() + 96);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT.to_le_bytes());
        out.push(PYTHON.len() as u8);
        out.extend_from_slice(PYTHON.as_bytes());
        out.extend_from_slice(&self.identity);
        out.extend_from_slice(&(self.payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&Sha256::digest(&self.payload));
        out.extend_from_slice(&self.payload);
        out
    }

    /// Parses bytes made by [`Snapshot::to_bytes`], checking the header and
    /// the payload checksum. Never panics on any input.
    pub fn from_bytes(bytes: &[u8]) -> Result<Snapshot, Error> {
        let mut r = bytes;
        let mut take = |n: usize, what: &str| -> Result<&[u8], Error> {
            if r.len() < n {
                return Err(invalid(format!(
                    "truncated ({what} missing; {} bytes in all)",
                    bytes.len()
                )));
            }
            let (head, tail) = r.split_at(n);
            r = tail;
            Ok(head)
        };
        let head = &bytes[..bytes.len().min(MAGIC.len())];
        if head != &MAGIC[..head.len()] {
            return Err(invalid("not an eryx snapshot (bad magic)"));
        }
        if take(MAGIC.len(), "magic")? != MAGIC {
            return Err(invalid("not an eryx snapshot (bad magic)"));
        }
        let format = u16::from_le_bytes(take(2, "format")?.try_into().expect("2 bytes"));
        if format != FORMAT {
            return Err(invalid(format!(
                "snapshot format {format}, this eryx reads format {FORMAT}"
            )));
        }
        let python_len = take(1, "Python version")?[0] as usize;
        let python = take(python_len, "Python version")?;
        if python != PYTHON.as_bytes() {
            return Err(invalid(format!(
                "taken with Python {}, this sandbox runs Python {PYTHON}",
                String::from_utf8_lossy(python)
            )));
        }
        let identity: [u8; 32] = take(32, "sandbox identity")?.try_into().expect("32 bytes");
        let len = u64::from_le_bytes(take(8, "payload length")?.try_into().expect("8 bytes"));
        let sum: [u8; 32] = take(32, "checksum")?.try_into().expect("32 bytes");
        let len =
            usize::try_from(len).map_err(|_| invalid("payload length does not fit in memory"))?;
        let payload = take(len, "payload")?;
        if !r.is_empty() {
            return Err(invalid(format!(
                "{} trailing bytes after the payload",
                r.len()
            )));
        }
        if <[u8; 32]>::from(Sha256::digest(payload)) != sum {
            return Err(invalid("the payload does not match its checksum (corrupt)"));
        }
        Ok(Snapshot {
            identity,
            payload: payload.to_vec(),
            skipped: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let s = Snapshot::new("id", b"payload".to_vec(), vec![]);
        let back = Snapshot::from_bytes(&s.to_bytes()).unwrap();
        assert_eq!(back.payload(), b"payload");
        back.check_compatible("id").unwrap();
        assert!(back.check_compatible("other").is_err());
    }

    #[test]
    fn every_truncation_and_bit_flip_is_refused() {
        let bytes = Snapshot::new("id", vec![7; 100], vec![]).to_bytes();
        for n in 0..bytes.len() {
            assert!(
                Snapshot::from_bytes(&bytes[..n]).is_err(),
                "truncated to {n}"
            );
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            // A flip in the identity parses but is refused by `check_compatible`.
            let r = Snapshot::from_bytes(&b).and_then(|s| s.check_compatible("id"));
            assert!(r.is_err(), "bit flip at {i} accepted");
        }
    }

    /// Smoke fuzz: random bytes never panic and are always refused.
    #[test]
    fn random_bytes_smoke() {
        let seed: u64 = std::env::var("ERYX_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x5eed);
        println!("seed {seed} (override with ERYX_TEST_SEED)");
        let mut x = seed;
        for round in 0..500 {
            let len = (round * 7) % 300;
            let mut bytes = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                bytes.push(x as u8);
            }
            if round % 3 == 0 && bytes.len() >= 8 {
                bytes[..8].copy_from_slice(MAGIC);
            }
            assert!(Snapshot::from_bytes(&bytes).is_err());
        }
    }
}
