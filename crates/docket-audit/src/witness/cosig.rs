//! C2SP `tlog-cosignature` `cosignature/v1` with Ed25519: the witness key forms, the
//! cosignature a witness adds to a checkpoint note, and its check.
//!
//! A witness key is a signed-note key of algorithm `0x04`: the vkey is
//! `<name>+<hex key id>+<base64(0x04 ‖ 32-byte public key)>`, the key id the first four bytes
//! (big-endian) of `SHA-256(name ‖ "\n" ‖ 0x04 ‖ public key)`, and the secret key
//! `PRIVATE+KEY+<name>+<hex key id>+<base64(0x04 ‖ 32-byte seed)>`. The signed message is
//! `"cosignature/v1\ntime <unix seconds>\n"` followed by the checkpoint note text; the signature
//! line is `— <name> <base64(key id ‖ 8-byte big-endian timestamp ‖ 64-byte signature)>`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use signed_note::{Note, Signature, VerifierList};

use crate::note::NoteError;

/// The signed-note algorithm byte of a `cosignature/v1` Ed25519 key.
const ALG_COSIGNATURE_V1: u8 = 0x04;
/// Timestamp (8 bytes) and Ed25519 signature (64 bytes): a cosignature's bytes after the key id.
const COSIG_LEN: usize = 8 + ed25519_dalek::SIGNATURE_LENGTH;

/// The message a `cosignature/v1` signs: a header with the time, then the checkpoint text.
fn signed_message(checkpoint_body: &[u8], timestamp: u64) -> Vec<u8> {
    let mut msg = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    msg.extend_from_slice(checkpoint_body);
    msg
}

fn key_id(name: &str, public: &VerifyingKey) -> u32 {
    let mut encoded = vec![ALG_COSIGNATURE_V1];
    encoded.extend_from_slice(public.as_bytes());
    signed_note::key_id(name, &encoded)
}

fn vkey_of(name: &str, public: &VerifyingKey) -> String {
    let mut encoded = vec![ALG_COSIGNATURE_V1];
    encoded.extend_from_slice(public.as_bytes());
    format!(
        "{name}+{:08x}+{}",
        key_id(name, public),
        BASE64.encode(&encoded)
    )
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if signed_note::is_key_name_valid(name) {
        Ok(())
    } else {
        Err(NoteError::Key(format!(
            "{name:?} cannot name a key: it must be non-empty, without spaces or '+'"
        )))
    }
}

/// Splits `<name>+<8 hex digits>+<base64>` into its parts, checking the name, the id's form and
/// the algorithm byte; returns the name, the id and the 32 key bytes.
fn parse_key<'a>(what: &str, key: &'a str) -> Result<(&'a str, u32, [u8; 32]), NoteError> {
    let bad = |why: &str| NoteError::Key(format!("{what}: {why}"));
    let (name, rest) = key.split_once('+').ok_or_else(|| bad("malformed"))?;
    let (id16, b64) = rest.split_once('+').ok_or_else(|| bad("malformed"))?;
    check_name(name)?;
    if id16.len() != 8 {
        return Err(bad("the key id must be 8 hex digits"));
    }
    let id = u32::from_str_radix(id16, 16).map_err(|_| bad("the key id is not hex"))?;
    let bytes = BASE64
        .decode(b64)
        .map_err(|_| bad("the key is not base64"))?;
    match bytes.split_first() {
        Some((&ALG_COSIGNATURE_V1, key)) => {
            let key: [u8; 32] = key
                .try_into()
                .map_err(|_| bad("an ed25519 key has 32 bytes"))?;
            Ok((name, id, key))
        }
        Some(_) => Err(bad("not a cosignature/v1 (0x04) key")),
        None => Err(bad("empty key")),
    }
}

/// Makes a witness key pair named `name`: `(secret key, vkey)`. Keep the first secret; publish
/// the second.
pub fn generate_witness_key(name: &str) -> Result<(String, String), NoteError> {
    check_name(name)?;
    let signing = SigningKey::generate(&mut rand::rngs::OsRng);
    let public = signing.verifying_key();
    let mut seed = vec![ALG_COSIGNATURE_V1];
    seed.extend_from_slice(&signing.to_bytes());
    let skey = format!(
        "PRIVATE+KEY+{name}+{:08x}+{}",
        key_id(name, &public),
        BASE64.encode(&seed)
    );
    Ok((skey, vkey_of(name, &public)))
}

/// Cosigns checkpoints with one witness key.
#[derive(Clone)]
pub struct WitnessSigner {
    signing: SigningKey,
    name: String,
    id: u32,
    vkey: String,
}

impl std::fmt::Debug for WitnessSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WitnessSigner")
            .field("name", &self.name)
            .field("vkey", &self.vkey)
            .finish_non_exhaustive()
    }
}

impl WitnessSigner {
    /// A signer from its secret key `PRIVATE+KEY+<name>+<id>+<base64(0x04 ‖ seed)>`.
    pub fn new(skey: &str) -> Result<Self, NoteError> {
        let rest = skey
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| NoteError::Key("witness key: not a PRIVATE+KEY".into()))?;
        let (name, id, seed) = parse_key("witness key", rest)?;
        let signing = SigningKey::from_bytes(&seed);
        let public = signing.verifying_key();
        if key_id(name, &public) != id {
            return Err(NoteError::Key(
                "witness key: the key id does not match the key".into(),
            ));
        }
        Ok(WitnessSigner {
            name: name.to_owned(),
            id,
            vkey: vkey_of(name, &public),
            signing,
        })
    }

    /// The key's name, which its cosignature lines carry.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public key (vkey form), to give to logs and auditors.
    pub fn vkey(&self) -> &str {
        &self.vkey
    }

    /// A verifier of this signer's cosignatures.
    pub fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier {
            name: self.name.clone(),
            id: self.id,
            key: self.signing.verifying_key(),
            vkey: self.vkey.clone(),
        }
    }

    /// The cosignature line (`— <name> <base64>\n`) over the checkpoint note text
    /// `checkpoint_body` (everything before the blank line, with its final newline) at
    /// `timestamp` (unix seconds).
    pub fn cosign(&self, checkpoint_body: &str, timestamp: u64) -> Result<String, NoteError> {
        // The note crate checks the text is a well-formed note body.
        Note::new(checkpoint_body.as_bytes(), &[])
            .map_err(|e| NoteError::Malformed(format!("checkpoint body: {e}")))?;
        let signature = self
            .signing
            .sign(&signed_message(checkpoint_body.as_bytes(), timestamp));
        let mut bytes = timestamp.to_be_bytes().to_vec();
        bytes.extend_from_slice(&signature.to_bytes());
        let line = Signature::new(self.name.clone(), self.id, bytes)
            .map_err(|e| NoteError::Signature(e.to_string()))?;
        String::from_utf8(line.to_bytes()).map_err(|e| NoteError::Malformed(e.to_string()))
    }
}

/// Checks one witness's cosignatures.
#[derive(Clone)]
pub struct CosignatureVerifier {
    name: String,
    id: u32,
    key: VerifyingKey,
    vkey: String,
}

impl std::fmt::Debug for CosignatureVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CosignatureVerifier")
            .field("vkey", &self.vkey)
            .finish()
    }
}

impl PartialEq for CosignatureVerifier {
    fn eq(&self, other: &Self) -> bool {
        self.vkey == other.vkey
    }
}

impl Eq for CosignatureVerifier {}

impl signed_note::Verifier for CosignatureVerifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.id
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        if sig.len() != COSIG_LEN {
            return false;
        }
        let Some((ts, sig)) = sig.split_first_chunk::<8>() else {
            return false;
        };
        let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
            return false;
        };
        let message = signed_message(msg, u64::from_be_bytes(*ts));
        self.key.verify_strict(&message, &sig).is_ok()
    }
}

impl CosignatureVerifier {
    /// A verifier from the witness's vkey `<name>+<id>+<base64(0x04 ‖ public key)>`.
    pub fn new(vkey: &str) -> Result<Self, NoteError> {
        let vkey = vkey.trim();
        let (name, id, key) = parse_key("witness vkey", vkey)?;
        let key = VerifyingKey::from_bytes(&key)
            .map_err(|_| NoteError::Key("witness vkey: not an ed25519 public key".into()))?;
        if key_id(name, &key) != id {
            return Err(NoteError::Key(
                "witness vkey: the key id does not match the key".into(),
            ));
        }
        Ok(CosignatureVerifier {
            name: name.to_owned(),
            id,
            key,
            vkey: vkey.to_owned(),
        })
    }

    /// The witness key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id its signature lines carry.
    pub fn key_id(&self) -> u32 {
        self.id
    }

    /// The vkey it was made from.
    pub fn vkey(&self) -> &str {
        &self.vkey
    }

    /// Finds this witness's cosignature line in a signed note and checks it; Ok(timestamp).
    pub fn verify(&self, note_text: &str) -> Result<u64, NoteError> {
        let note = Note::from_bytes(note_text.as_bytes())
            .map_err(|e| NoteError::Malformed(e.to_string()))?;
        let known = VerifierList::new(vec![Box::new(self.clone())]);
        let (verified, _) = note
            .verify(&known)
            .map_err(|e| NoteError::Signature(format!("witness {}: {e}", self.name)))?;
        verified
            .first()
            .and_then(|sig| sig.signature().first_chunk::<8>())
            .map(|ts| u64::from_be_bytes(*ts))
            .ok_or_else(|| NoteError::Signature(format!("witness {}: no cosignature", self.name)))
    }
}

/// Parses one signature line (with or without its final newline).
fn parse_line(line: &str) -> Result<Signature, NoteError> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    Signature::from_bytes(line.as_bytes())
        .map_err(|e| NoteError::Malformed(format!("signature line {line:?}: {e}")))
}

/// A signed note with extra signature lines appended (dropping an existing line of the same key).
pub fn add_signature_lines(note_text: &str, lines: &[String]) -> Result<String, NoteError> {
    let note =
        Note::from_bytes(note_text.as_bytes()).map_err(|e| NoteError::Malformed(e.to_string()))?;
    // `from_bytes` split the note at its last blank line: the text (with its final newline),
    // one more newline, then the signature block.
    let block = note_text
        .get(note.text().len() + 1..)
        .ok_or_else(|| NoteError::Malformed("no signature block".into()))?;
    let mut sigs = block
        .lines()
        .map(parse_line)
        .collect::<Result<Vec<_>, _>>()?;
    let added = lines
        .iter()
        .flat_map(|l| l.lines())
        .filter(|l| !l.is_empty())
        .map(parse_line)
        .collect::<Result<Vec<_>, _>>()?;
    sigs.retain(|s| {
        !added
            .iter()
            .any(|a| a.name() == s.name() && a.id() == s.id())
    });
    sigs.extend(added);
    let out = Note::new(note.text(), &sigs).map_err(|e| NoteError::Malformed(e.to_string()))?;
    // The rebuilt note must parse again (for instance, within the note crate's signature limit).
    Note::from_bytes(&out.to_bytes()).map_err(|e| NoteError::Malformed(e.to_string()))?;
    String::from_utf8(out.to_bytes()).map_err(|e| NoteError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{generate_key, CheckpointSigner, CheckpointVerifier};
    use crate::tree::leaf_hash;

    fn body_of(note: &str) -> &str {
        let (body, _) = note.split_once("\n\n").unwrap();
        &note[..body.len() + 1]
    }

    fn checkpoint() -> (CheckpointSigner, String) {
        let (skey, _) = generate_key("docket.test/log").unwrap();
        let signer = CheckpointSigner::new(&skey).unwrap();
        let note = signer.sign(42, leaf_hash(b"root")).unwrap().note;
        (signer, note)
    }

    #[test]
    fn keys_have_the_c2sp_forms() {
        let (skey, vkey) = generate_witness_key("witness.test/w1").unwrap();
        let parts: Vec<&str> = vkey.splitn(3, '+').collect();
        assert_eq!(parts[0], "witness.test/w1");
        let raw = BASE64.decode(parts[2]).unwrap();
        assert_eq!(raw.len(), 33);
        assert_eq!(raw[0], 0x04);
        let id = signed_note::key_id("witness.test/w1", &raw);
        assert_eq!(parts[1], format!("{id:08x}"));
        assert!(skey.starts_with(&format!("PRIVATE+KEY+witness.test/w1+{id:08x}+")));
        let signer = WitnessSigner::new(&skey).unwrap();
        assert_eq!(signer.vkey(), vkey);
        assert_eq!(signer.name(), "witness.test/w1");
        let verifier = CosignatureVerifier::new(&vkey).unwrap();
        assert_eq!(verifier.name(), "witness.test/w1");
        assert_eq!(verifier, signer.verifier());
        let secret = skey.splitn(5, '+').nth(4).unwrap();
        assert!(
            !format!("{signer:?}").contains(secret),
            "no secret in Debug"
        );

        // Not witness keys: a log (0x01) key, a vkey as skey, a changed id, a bad name.
        let (log_skey, log_vkey) = generate_key("docket.test/log").unwrap();
        assert!(WitnessSigner::new(&log_skey).is_err());
        assert!(CosignatureVerifier::new(&log_vkey).is_err());
        assert!(WitnessSigner::new(&vkey).is_err());
        let other_id = vkey.replacen(parts[1], "00000000", 1);
        assert!(CosignatureVerifier::new(&other_id).is_err());
        assert!(generate_witness_key("has space").is_err());
        assert!(generate_witness_key("has+plus").is_err());
        assert!(CosignatureVerifier::new("").is_err());
    }

    #[test]
    fn a_cosignature_verifies_with_its_key_and_time_only() {
        let (_, note) = checkpoint();
        let (skey, vkey) = generate_witness_key("witness.test/w1").unwrap();
        let signer = WitnessSigner::new(&skey).unwrap();
        let line = signer.cosign(body_of(&note), 1_700_000_000).unwrap();
        assert!(line.starts_with("\u{2014} witness.test/w1 "), "{line}");
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let b64 = line.trim_end().rsplit(' ').next().unwrap();
        let raw = BASE64.decode(b64).unwrap();
        assert_eq!(raw.len(), 4 + 8 + 64);
        assert_eq!(&raw[4..12], &1_700_000_000u64.to_be_bytes());

        // The signature is over the header and the body, as the spec says.
        let pk = VerifyingKey::from_bytes(
            BASE64.decode(vkey.splitn(3, '+').nth(2).unwrap()).unwrap()[1..]
                .try_into()
                .unwrap(),
        )
        .unwrap();
        let msg = format!("cosignature/v1\ntime 1700000000\n{}", body_of(&note));
        let sig = ed25519_dalek::Signature::from_slice(&raw[12..]).unwrap();
        pk.verify_strict(msg.as_bytes(), &sig).unwrap();

        let cosigned = add_signature_lines(&note, std::slice::from_ref(&line)).unwrap();
        let verifier = CosignatureVerifier::new(&vkey).unwrap();
        assert_eq!(verifier.verify(&cosigned).unwrap(), 1_700_000_000);

        // No cosignature at all; another witness key of the same name.
        assert!(verifier.verify(&note).is_err());
        let (_, other) = generate_witness_key("witness.test/w1").unwrap();
        assert!(CosignatureVerifier::new(&other)
            .unwrap()
            .verify(&cosigned)
            .is_err());

        // A changed body; a changed timestamp (the line re-encoded with another time).
        let forged = cosigned.replacen("\n42\n", "\n43\n", 1);
        assert!(verifier.verify(&forged).is_err());
        let mut retimed = raw.clone();
        retimed[4..12].copy_from_slice(&1_700_000_001u64.to_be_bytes());
        let retimed_line = format!("\u{2014} witness.test/w1 {}\n", BASE64.encode(&retimed));
        let retimed_note = add_signature_lines(&note, &[retimed_line]).unwrap();
        assert!(verifier.verify(&retimed_note).is_err());
        // A truncated signature.
        let short = format!("\u{2014} witness.test/w1 {}\n", BASE64.encode(&raw[..40]));
        let short_note = add_signature_lines(&note, &[short]).unwrap();
        assert!(verifier.verify(&short_note).is_err());
        // A body that is not a note text.
        assert!(signer.cosign("no final newline", 1).is_err());
    }

    #[test]
    fn cosigned_notes_round_trip_and_still_open_with_the_log_key() {
        let (log, note) = checkpoint();
        let (s1, v1) = generate_witness_key("witness.test/w1").unwrap();
        let (s2, v2) = generate_witness_key("witness.test/w2").unwrap();
        let (w1, w2) = (
            WitnessSigner::new(&s1).unwrap(),
            WitnessSigner::new(&s2).unwrap(),
        );
        let body = body_of(&note);
        let l1 = w1.cosign(body, 10).unwrap();
        let l2 = w2.cosign(body, 20).unwrap();
        let both = add_signature_lines(&note, &[l1.clone(), l2.clone()]).unwrap();
        assert!(
            both.starts_with(&note),
            "existing lines are kept first:\n{both}"
        );
        assert!(both.ends_with(&format!("{l1}{l2}")), "{both}");
        let (c1, c2) = (
            CosignatureVerifier::new(&v1).unwrap(),
            CosignatureVerifier::new(&v2).unwrap(),
        );
        assert_eq!(c1.verify(&both).unwrap(), 10);
        assert_eq!(c2.verify(&both).unwrap(), 20);

        // A newer line of the same key replaces the old one; others stay.
        let l1b = w1.cosign(body, 30).unwrap();
        let again = add_signature_lines(&both, std::slice::from_ref(&l1b)).unwrap();
        assert_eq!(again.matches("witness.test/w1").count(), 1, "{again}");
        assert_eq!(c1.verify(&again).unwrap(), 30);
        assert_eq!(c2.verify(&again).unwrap(), 20);
        // No lines: the same note.
        assert_eq!(add_signature_lines(&note, &[]).unwrap(), note);

        // The log key alone still opens the cosigned note.
        let opened = CheckpointVerifier::new(log.vkey())
            .unwrap()
            .open(&again)
            .unwrap();
        assert_eq!(opened.checkpoint.size, 42);

        // Not signature lines, not a note.
        assert!(add_signature_lines(&note, &["not a signature".into()]).is_err());
        assert!(add_signature_lines("no note", std::slice::from_ref(&l1)).is_err());
    }
}
