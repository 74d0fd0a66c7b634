//! An export's manifest: `MANIFEST.json` ([`Manifest`], what the export says about itself) and
//! `MANIFEST.note`, a C2SP signed note by the log's checkpoint key over [`ManifestNote`]'s body:
//!
//! ```text
//! docket-export manifest v1
//! origin <the log's origin, the key's name>
//! head <the position of the last exported commit>
//! root <base64 Merkle root of the commits 1..=head>
//! sha256 <lowercase hex SHA-256 of MANIFEST.json's bytes>
//!
//! — <key name> <base64 signature>
//! ```
//!
//! The first line has spaces and the second is not a number, so the body can never be read as
//! a checkpoint (whose first line is an origin without spaces and whose second is a size): a
//! manifest signature cannot be passed off as a checkpoint signature, nor the reverse.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::tree::Hash;

/// The first line of a manifest note's body.
pub const MANIFEST_NOTE_HEADER: &str = "docket-export manifest v1";

/// What an export says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`super::EXPORT_FORMAT`].
    pub format: String,
    /// The export format version ([`super::EXPORT_VERSION`]).
    pub version: u32,
    /// The log's origin: the checkpoints' and the signing key's (none if there is neither).
    pub origin: Option<String>,
    /// The position of the last exported commit (0 for none).
    pub head: u64,
    /// The first commit's recorded time (RFC 3339), if any commit.
    pub first_commit_at: Option<String>,
    /// The last commit's recorded time (RFC 3339), if any commit.
    pub last_commit_at: Option<String>,
    /// Commits exported (equal to `head`: the export starts at position 1).
    pub commits: u64,
    /// Distinct streams among them.
    pub streams: u64,
    /// Events among them.
    pub events: u64,
    /// Segment files written.
    pub segments: u64,
    /// Checkpoint notes written (with the one beyond the head an `--upto` export may carry).
    pub checkpoints: u64,
    /// When the export was made (RFC 3339).
    pub created_at: String,
}

/// The body of `MANIFEST.note`; see the module documentation.
#[derive(Clone, Debug, PartialEq)]
pub struct ManifestNote {
    /// The log's origin.
    pub origin: String,
    /// The exported head.
    pub head: u64,
    /// The Merkle root of the exported commits.
    pub root: Hash,
    /// The SHA-256 of `MANIFEST.json`, lowercase hex.
    pub sha256: String,
}

impl ManifestNote {
    /// The note body, five lines.
    pub fn body(&self) -> String {
        format!(
            "{MANIFEST_NOTE_HEADER}\norigin {}\nhead {}\nroot {}\nsha256 {}\n",
            self.origin, self.head, self.root, self.sha256
        )
    }

    /// Reads a note body written by [`ManifestNote::body`].
    pub fn parse(body: &str) -> Result<Self, String> {
        let mut lines = body.lines();
        if lines.next() != Some(MANIFEST_NOTE_HEADER) {
            return Err(format!("the first line is not {MANIFEST_NOTE_HEADER:?}"));
        }
        let mut field = |name: &str| {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|l| l.strip_prefix(' '))
                .map(str::to_owned)
                .ok_or_else(|| format!("no {name} line"))
        };
        let origin = field("origin")?;
        let head = field("head")?.parse().map_err(|e| format!("head: {e}"))?;
        let root = Hash::parse_hash(&field("root")?).map_err(|e| format!("root: {e}"))?;
        let sha256 = field("sha256")?;
        if lines.next().is_some() {
            return Err("unexpected lines after the sha256 line".into());
        }
        Ok(ManifestNote {
            origin,
            head,
            root,
            sha256,
        })
    }
}

/// The lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::leaf_hash;

    #[test]
    fn the_manifest_note_body_round_trips_and_is_no_checkpoint() {
        let note = ManifestNote {
            origin: "docket.test/log".into(),
            head: 3771,
            root: leaf_hash(b"root"),
            sha256: sha256_hex(b"{}"),
        };
        let body = note.body();
        assert!(body.starts_with("docket-export manifest v1\norigin docket.test/log\nhead 3771\n"));
        assert_eq!(ManifestNote::parse(&body).unwrap(), note);
        assert!(tlog_tiles::Checkpoint::from_bytes(body.as_bytes()).is_err());
        assert!(ManifestNote::parse(&body.replace("head 3771", "head x")).is_err());
        assert!(ManifestNote::parse(&format!("{body}extra\n")).is_err());
        assert!(ManifestNote::parse("docket.test/log\n3771\n").is_err());
    }
}
