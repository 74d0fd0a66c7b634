//! The files of an export's `checkpoints/` directory: signed checkpoint notes
//! (`<size>.note`) and consistency proofs (`<old>-<new>.consistency`), their names, their
//! format, and reading them back (for `verify`, `import`, and an export of an export).

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use super::CHECKPOINTS_DIR;
use crate::tree::{Hash, HASH_SIZE};

/// The suffix of a checkpoint note's file name.
pub const NOTE_SUFFIX: &str = ".note";
/// The suffix of a consistency proof's file name.
pub const CONSISTENCY_SUFFIX: &str = ".consistency";

/// The file name of the checkpoint of `size` in `checkpoints/`: the size in 20 digits, so the
/// names sort by size.
pub fn checkpoint_file_name(size: u64) -> String {
    format!("{size:020}{NOTE_SUFFIX}")
}

/// The file name of the consistency proof from the tree of `old` commits to the checkpoint of
/// `new` in `checkpoints/`: both sizes in 20 digits.
pub fn consistency_file_name(old: u64, new: u64) -> String {
    format!("{old:020}-{new:020}{CONSISTENCY_SUFFIX}")
}

/// The size a checkpoint file's name gives (any number of digits).
pub fn parse_checkpoint_file_name(name: &str) -> Option<u64> {
    name.strip_suffix(NOTE_SUFFIX)?.parse().ok()
}

/// The sizes `(old, new)` a consistency file's name gives (any number of digits).
pub fn parse_consistency_file_name(name: &str) -> Option<(u64, u64)> {
    let (old, new) = name.strip_suffix(CONSISTENCY_SUFFIX)?.split_once('-')?;
    Some((old.parse().ok()?, new.parse().ok()?))
}

/// A consistency proof that the tree of `old` commits is a prefix of the tree of `new`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsistencyProof {
    /// The smaller tree's size (an export's head).
    pub old: u64,
    /// The larger tree's size (a signed checkpoint's).
    pub new: u64,
    /// The RFC 9162 consistency proof, as [`crate::tree::Tree::consistency_proof`] gives it.
    pub proof: Vec<Hash>,
}

impl ConsistencyProof {
    /// The file's text: one base64 hash per line, in proof order.
    pub fn to_text(&self) -> String {
        self.proof.iter().map(|h| format!("{h}\n")).collect()
    }

    /// Reads the file's text (blank lines ignored).
    pub fn from_text(old: u64, new: u64, text: &str) -> Result<Self, String> {
        let proof = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .enumerate()
            .map(|(i, line)| {
                let bytes = BASE64
                    .decode(line)
                    .map_err(|e| format!("line {}: not base64: {e}", i + 1))?;
                let array: [u8; HASH_SIZE] = bytes
                    .try_into()
                    .map_err(|_| format!("line {}: not a 32-byte hash", i + 1))?;
                Ok(Hash(array))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(ConsistencyProof { old, new, proof })
    }
}

/// A file of `checkpoints/`.
#[derive(Debug)]
pub(crate) enum CheckpointsEntry {
    /// `<size>.note`: its named size, its path, its text (or why it cannot be read).
    Note(u64, PathBuf, Result<String, String>),
    /// `<old>-<new>.consistency`: its named sizes, its path, the proof (or why it cannot be
    /// read).
    Consistency(u64, u64, PathBuf, Result<ConsistencyProof, String>),
}

/// Every note and consistency file of an export's `checkpoints/` (none if it is absent), in
/// name order; other files are ignored. Err: the directory cannot be listed.
pub(crate) fn read_checkpoints_dir(export: &Path) -> Result<Vec<CheckpointsEntry>, String> {
    let dir = export.join(CHECKPOINTS_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("listing {}: {e}", dir.display())),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("listing {}: {e}", dir.display()))?;
        paths.push(entry.path());
    }
    paths.sort();
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))
    };
    let mut out = Vec::new();
    for path in paths {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(size) = parse_checkpoint_file_name(name) {
            let text = read(&path);
            out.push(CheckpointsEntry::Note(size, path, text));
        } else if let Some((old, new)) = parse_consistency_file_name(name) {
            let proof = read(&path).and_then(|t| {
                ConsistencyProof::from_text(old, new, &t)
                    .map_err(|e| format!("{}: {e}", path.display()))
            });
            out.push(CheckpointsEntry::Consistency(old, new, path, proof));
        }
    }
    Ok(out)
}

/// The checkpoint notes and consistency proofs an export carries, to export it again (an
/// export of an export keeps them). Unreadable files are an error.
pub fn read_export_checkpoints(
    export: &Path,
) -> Result<(Vec<String>, Vec<ConsistencyProof>), String> {
    let mut notes = Vec::new();
    let mut proofs = Vec::new();
    for entry in read_checkpoints_dir(export)? {
        match entry {
            CheckpointsEntry::Note(_, _, text) => notes.push(text?),
            CheckpointsEntry::Consistency(_, _, _, proof) => proofs.push(proof?),
        }
    }
    Ok((notes, proofs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::leaf_hash;

    #[test]
    fn names_and_proof_text_round_trip() {
        assert_eq!(checkpoint_file_name(42), "00000000000000000042.note");
        assert_eq!(
            parse_checkpoint_file_name("00000000000000000042.note"),
            Some(42)
        );
        assert_eq!(parse_checkpoint_file_name("42.note"), Some(42));
        assert_eq!(parse_checkpoint_file_name("42.note.bak"), None);
        let name = consistency_file_name(30, 50);
        assert_eq!(
            name,
            "00000000000000000030-00000000000000000050.consistency"
        );
        assert_eq!(parse_consistency_file_name(&name), Some((30, 50)));
        assert_eq!(parse_consistency_file_name("30.consistency"), None);
        let proof = ConsistencyProof {
            old: 30,
            new: 50,
            proof: vec![leaf_hash(b"a"), leaf_hash(b"b")],
        };
        let text = proof.to_text();
        assert_eq!(text.lines().count(), 2);
        assert_eq!(ConsistencyProof::from_text(30, 50, &text).unwrap(), proof);
        assert!(ConsistencyProof::from_text(30, 50, "not base64!\n").is_err());
        assert!(ConsistencyProof::from_text(30, 50, "AAAA\n").is_err());
    }
}
