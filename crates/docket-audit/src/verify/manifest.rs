//! The manifest in [`super::verify`] (rule `manifest`): `MANIFEST.json`'s fields recomputed from
//! the commits and the files and compared, and `MANIFEST.note` checked against the log's key,
//! the export's head and root, and the SHA-256 of `MANIFEST.json`
//! ([`crate::export::manifest`]).

use std::path::Path;

use super::pass::Pass;
use super::{failure, MANIFEST};
use crate::export::manifest::{sha256_hex, ManifestNote};
use crate::export::{rfc3339, Manifest, EXPORT_FORMAT, MANIFEST_FILE, MANIFEST_NOTE_FILE};

impl Pass<'_> {
    /// Checks the manifest; every mismatch goes into one failure.
    pub(super) fn check_manifest(&mut self, dir: &Path, signed: bool) {
        self.count(MANIFEST, 1);
        let head = self.commits;
        let path = dir.join(MANIFEST_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                let f = failure(0, MANIFEST, format!("{}: {e}", path.display()));
                self.failures.push(f);
                return;
            }
        };
        let manifest: Manifest = match serde_json::from_slice(&bytes) {
            Ok(m) => m,
            Err(e) => {
                let f = failure(0, MANIFEST, format!("{}: {e}", path.display()));
                self.failures.push(f);
                return;
            }
        };
        let mut wrong: Vec<String> = Vec::new();
        if manifest.format != EXPORT_FORMAT || manifest.version != 1 {
            wrong.push(format!(
                "format {} version {}, expected {EXPORT_FORMAT} version 1",
                manifest.format, manifest.version
            ));
        }
        let mut position = 0;
        if manifest.head != head {
            position = manifest.head.min(head) + 1;
            wrong.push(format!(
                "it says the export ends at position {}, the segments hold {head} commits",
                manifest.head
            ));
        }
        let origin = Some(self.key.origin().to_owned());
        let checkpoint_files = self.checkpoints.len() as u64;
        let first_at = self.first_at.and_then(rfc3339);
        let last_at = self.last_at.and_then(rfc3339);
        let counts = [
            ("commits", manifest.commits, head),
            ("streams", manifest.streams, self.streams()),
            ("events", manifest.events, self.events),
            ("segments", manifest.segments, self.segments),
            ("checkpoints", manifest.checkpoints, checkpoint_files),
        ];
        for (name, said, found) in counts {
            if said != found {
                wrong.push(format!("it says {said} {name}, the export holds {found}"));
            }
        }
        let times = [
            ("origin", &manifest.origin, &origin, "the log key's"),
            (
                "first commit time",
                &manifest.first_commit_at,
                &first_at,
                "the first commit's",
            ),
            (
                "last commit time",
                &manifest.last_commit_at,
                &last_at,
                "the last commit's",
            ),
        ];
        for (name, said, found, whose) in times {
            if said != found {
                wrong.push(format!(
                    "its {name} is {}, {whose} is {}",
                    said.as_deref().unwrap_or("none"),
                    found.as_deref().unwrap_or("none")
                ));
            }
        }
        if signed {
            if let Err(e) = self.check_manifest_note(dir, &bytes) {
                wrong.push(e);
            }
        }
        if !wrong.is_empty() {
            let message = format!("{}: {}", path.display(), wrong.join("; "));
            self.failures.push(failure(position, MANIFEST, message));
        }
    }

    fn check_manifest_note(&self, dir: &Path, manifest: &[u8]) -> Result<(), String> {
        let path = dir.join(MANIFEST_NOTE_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "{}: {e} (the manifest must be signed by the log's key)",
                path.display()
            )
        })?;
        let body = self
            .key
            .open_text(&text)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let note = ManifestNote::parse(&body).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut wrong = Vec::new();
        if note.origin != self.key.origin() {
            wrong.push(format!(
                "origin {}, the key's is {}",
                note.origin,
                self.key.origin()
            ));
        }
        if note.head != self.commits {
            wrong.push(format!(
                "head {}, the export holds {}",
                note.head, self.commits
            ));
        }
        let root = self.tree.root();
        if note.head == self.commits && note.root != root {
            wrong.push(format!(
                "root {}, the export's commits give {root}",
                note.root
            ));
        }
        let sha = sha256_hex(manifest);
        if note.sha256 != sha {
            wrong.push(format!(
                "MANIFEST.json's SHA-256 {}, the file's is {sha}",
                note.sha256
            ));
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} (signed) says {}",
                path.display(),
                wrong.join(", ")
            ))
        }
    }
}
