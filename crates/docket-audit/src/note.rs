//! Signed checkpoints: the C2SP `tlog-checkpoint` text (origin, tree size, base64 root hash),
//! signed as a C2SP `signed-note` with Ed25519 (the `signed_note` crate), and the keys that sign
//! and check them. A signer key is the note form `PRIVATE+KEY+<name>+<id>+<base64>`; the public
//! verifier key, shareable, is the C2SP vkey form `<name>+<id>+<base64>`. The key name is the
//! log's origin.

use signed_note::{Note, StandardSigner, StandardVerifier, VerifierList};

use crate::tree::Hash;

/// What is wrong with a key, a note or a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// A signer or verifier key that cannot be used.
    #[error("bad key: {0}")]
    Key(String),
    /// Text that is not a signed checkpoint.
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    /// No signature by the given key verifies.
    #[error("signature: {0}")]
    Signature(String),
}

/// A checkpoint's content: which log, how many commits, the Merkle root over them.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The log's origin line (also the key name), e.g. `docket.example.gov/log`.
    pub origin: String,
    /// The tree size: the log's head position when signed.
    pub size: u64,
    /// The Merkle root of the first `size` commits.
    pub root: Hash,
}

impl Checkpoint {
    /// The checkpoint body as C2SP `tlog-checkpoint` text: three lines.
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, self.root)
    }
}

/// A checkpoint with its signed note text, as stored and shipped.
#[derive(Clone, Debug, PartialEq)]
pub struct SignedCheckpoint {
    /// The content.
    pub checkpoint: Checkpoint,
    /// The whole signed note (body, blank line, signature lines).
    pub note: String,
}

/// Makes a key pair for `origin`: `(signer key, verifier key)`. Keep the first secret; publish
/// the second.
pub fn generate_key(origin: &str) -> Result<(String, String), NoteError> {
    if !signed_note::is_key_name_valid(origin) {
        return Err(NoteError::Key(format!(
            "{origin:?} cannot name a key: it must be non-empty, without spaces or '+'"
        )));
    }
    Ok(signed_note::generate_key(&mut rand::rngs::OsRng, origin))
}

/// Signs checkpoints with one Ed25519 key.
#[derive(Clone)]
pub struct CheckpointSigner {
    signer: StandardSigner,
    origin: String,
    vkey: String,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// A signer from its key (`PRIVATE+KEY+…`); the key's name is the checkpoints' origin.
    pub fn new(skey: &str) -> Result<Self, NoteError> {
        let skey = skey.trim();
        let signer =
            StandardSigner::new(skey).map_err(|e| NoteError::Key(format!("signer key: {e}")))?;
        let origin = signed_note::Signer::name(&signer).to_owned();
        let vkey = public_key(skey, &origin)?;
        Ok(CheckpointSigner {
            signer,
            origin,
            vkey,
        })
    }

    /// The public verifier key of this signer (C2SP vkey form), to give to auditors.
    pub fn vkey(&self) -> &str {
        &self.vkey
    }

    /// A verifier for this signer's checkpoints.
    pub fn verifier(&self) -> Result<CheckpointVerifier, NoteError> {
        CheckpointVerifier::new(&self.vkey)
    }

    /// The origin its checkpoints carry.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Signs the checkpoint of a tree of `size` commits with root `root`.
    pub fn sign(&self, size: u64, root: Hash) -> Result<SignedCheckpoint, NoteError> {
        let checkpoint = Checkpoint {
            origin: self.origin.clone(),
            size,
            root,
        };
        let mut note = Note::new(checkpoint.body().as_bytes(), &[])
            .map_err(|e| NoteError::Malformed(e.to_string()))?;
        note.add_sigs(&[&self.signer])
            .map_err(|e| NoteError::Signature(e.to_string()))?;
        let note =
            String::from_utf8(note.to_bytes()).map_err(|e| NoteError::Malformed(e.to_string()))?;
        Ok(SignedCheckpoint { checkpoint, note })
    }

    /// Signs a note whose body is not a checkpoint (the export's `MANIFEST.note`) with this key.
    pub(crate) fn sign_text(&self, body: &str) -> Result<String, NoteError> {
        let mut note =
            Note::new(body.as_bytes(), &[]).map_err(|e| NoteError::Malformed(e.to_string()))?;
        note.add_sigs(&[&self.signer])
            .map_err(|e| NoteError::Signature(e.to_string()))?;
        String::from_utf8(note.to_bytes()).map_err(|e| NoteError::Malformed(e.to_string()))
    }
}

/// The vkey of a signer key `PRIVATE+KEY+<name>+<id>+<base64(0x01 ‖ 32-byte seed)>` (the form
/// `signed_note` reads, which it has just accepted).
fn public_key(skey: &str, name: &str) -> Result<String, NoteError> {
    use base64::Engine;
    let bad = || NoteError::Key("signer key: malformed".into());
    // The name has no '+'; the base64 data may.
    let data = skey.splitn(5, '+').nth(4).ok_or_else(bad)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| bad())?;
    let seed: [u8; 32] = bytes
        .get(1..)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(bad)?;
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    Ok(signed_note::new_ed25519_verifier_key(
        name,
        &signing.verifying_key(),
    ))
}

/// Checks checkpoints against one public key.
#[derive(Clone)]
pub struct CheckpointVerifier {
    vkey: String,
    origin: String,
}

impl std::fmt::Debug for CheckpointVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointVerifier")
            .field("vkey", &self.vkey)
            .finish()
    }
}

impl CheckpointVerifier {
    /// A verifier from the public key in C2SP vkey form (`<name>+<id>+<base64>`).
    pub fn new(vkey: &str) -> Result<Self, NoteError> {
        let vkey = vkey.trim();
        let verifier = StandardVerifier::new(vkey)
            .map_err(|e| NoteError::Key(format!("verifier key: {e}")))?;
        let origin = signed_note::Verifier::name(&verifier).to_owned();
        Ok(CheckpointVerifier {
            vkey: vkey.to_owned(),
            origin,
        })
    }

    /// The origin the key signs for.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The public key, in C2SP vkey form.
    pub fn vkey(&self) -> &str {
        &self.vkey
    }

    /// Opens a signed note of any body (the export's `MANIFEST.note`) that this key signed:
    /// its body text. Other signatures are allowed and ignored.
    pub(crate) fn open_text(&self, note_text: &str) -> Result<String, NoteError> {
        let note = Note::from_bytes(note_text.as_bytes())
            .map_err(|e| NoteError::Malformed(e.to_string()))?;
        let verifier = StandardVerifier::new(&self.vkey)
            .map_err(|e| NoteError::Key(format!("verifier key: {e}")))?;
        let known = VerifierList::new(vec![Box::new(verifier)]);
        note.verify(&known)
            .map_err(|e| NoteError::Signature(e.to_string()))?;
        String::from_utf8(note.text().to_vec()).map_err(|e| NoteError::Malformed(e.to_string()))
    }

    /// Parses a signed checkpoint and checks that this key signed it and that its origin is the
    /// key's name. Other signatures (witnesses, later) are allowed and ignored.
    pub fn open(&self, note_text: &str) -> Result<SignedCheckpoint, NoteError> {
        let note = Note::from_bytes(note_text.as_bytes())
            .map_err(|e| NoteError::Malformed(e.to_string()))?;
        let verifier = StandardVerifier::new(&self.vkey)
            .map_err(|e| NoteError::Key(format!("verifier key: {e}")))?;
        let known = VerifierList::new(vec![Box::new(verifier)]);
        note.verify(&known)
            .map_err(|e| NoteError::Signature(e.to_string()))?;
        let parsed = tlog_tiles::Checkpoint::from_bytes(note.text())
            .map_err(|e| NoteError::Malformed(e.to_string()))?;
        if parsed.origin() != self.origin {
            return Err(NoteError::Malformed(format!(
                "origin {:?}, but the key signs for {:?}",
                parsed.origin(),
                self.origin
            )));
        }
        if !parsed.extension().is_empty() {
            return Err(NoteError::Malformed(
                "unexpected extension lines after the root hash".into(),
            ));
        }
        Ok(SignedCheckpoint {
            checkpoint: Checkpoint {
                origin: parsed.origin().to_owned(),
                size: parsed.size(),
                root: *parsed.hash(),
            },
            note: note_text.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::leaf_hash;

    #[test]
    fn signed_checkpoints_open_with_their_key_only() {
        let (skey, vkey) = generate_key("docket.test/log").unwrap();
        let signer = CheckpointSigner::new(&skey).unwrap();
        assert_eq!(signer.vkey(), vkey, "the signer knows its public key");
        let root = leaf_hash(b"root");
        let signed = signer.sign(42, root).unwrap();
        assert!(
            signed.note.starts_with("docket.test/log\n42\n"),
            "{}",
            signed.note
        );
        assert!(
            signed.note.contains("\n\n\u{2014} docket.test/log "),
            "{}",
            signed.note
        );
        let verifier = CheckpointVerifier::new(&vkey).unwrap();
        let opened = verifier.open(&signed.note).unwrap();
        assert_eq!(opened.checkpoint.size, 42);
        assert_eq!(opened.checkpoint.root, root);

        // Another key of the same name, a changed size, a bad key: refused.
        let (_, other) = generate_key("docket.test/log").unwrap();
        assert!(CheckpointVerifier::new(&other)
            .unwrap()
            .open(&signed.note)
            .is_err());
        let forged = signed.note.replacen("\n42\n", "\n43\n", 1);
        assert!(verifier.open(&forged).is_err());
        assert!(CheckpointVerifier::new("not a key").is_err());
        assert!(CheckpointSigner::new(&vkey).is_err());
        assert!(generate_key("has space").is_err());
    }
}
