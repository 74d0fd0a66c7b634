//! A witness's durable memory: per log origin, the size and root of the latest checkpoint it
//! cosigned, one small file per origin in the state directory, replaced atomically (temporary
//! file, fsync, rename, fsync of the directory) before a cosignature leaves the witness. Each
//! origin has its own lock, held from the check against the stored state until the new state is
//! durable, so two requests for one origin never both pass the check against the same state.
//!
//! The file is text: `docket-witness-state/v1`, then `origin <origin>`, `size <n>` and
//! `root <base64>` lines. A file that does not parse stops the witness from starting rather than
//! letting it forget what it cosigned.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, MutexGuard};

use crate::tree::Hash;

/// The first line of a state file.
const HEADER: &str = "docket-witness-state/v1";

/// What a witness last cosigned for one origin.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cosigned {
    /// The tree size.
    pub size: u64,
    /// The root hash at that size.
    pub root: Hash,
}

/// A state file that cannot be read, parsed or written.
#[derive(Debug, thiserror::Error)]
#[error("witness state {path}: {reason}")]
pub struct StateError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub reason: String,
}

/// The state of every witnessed origin, each behind its own lock.
#[derive(Debug)]
pub(crate) struct WitnessState {
    dir: PathBuf,
    origins: HashMap<String, Arc<Mutex<Option<Cosigned>>>>,
}

/// One origin's state, locked; [`OriginState::store`] makes a new state durable.
pub(crate) struct OriginState<'a> {
    guard: MutexGuard<'a, Option<Cosigned>>,
    path: PathBuf,
    origin: &'a str,
}

/// The file holding an origin's state: a digest of the origin names it, since an origin may hold
/// any character but a space and a `+`, and be long.
fn file_name(origin: &str) -> String {
    let digest = Sha256::digest(origin.as_bytes());
    format!("{}.state", hex::encode(&digest[..16]))
}

fn parse(text: &str, origin: &str) -> Result<Cosigned, String> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(format!("the first line is not {HEADER:?}"));
    }
    let mut field = |name: &str| {
        lines
            .next()
            .and_then(|l| l.strip_prefix(name))
            .and_then(|l| l.strip_prefix(' '))
            .ok_or_else(|| format!("no {name} line"))
    };
    let stored_origin = field("origin")?;
    if stored_origin != origin {
        return Err(format!("the file is for origin {stored_origin:?}"));
    }
    let size = field("size")?
        .parse::<u64>()
        .map_err(|e| format!("size: {e}"))?;
    let root = BASE64
        .decode(field("root")?)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(Hash)
        .ok_or_else(|| "root: not a base64 SHA-256 hash".to_owned())?;
    if lines.next().is_some() {
        return Err("unexpected lines after the root".into());
    }
    Ok(Cosigned { size, root })
}

fn render(origin: &str, state: &Cosigned) -> String {
    format!(
        "{HEADER}\norigin {origin}\nsize {}\nroot {}\n",
        state.size,
        BASE64.encode(state.root.0)
    )
}

impl WitnessState {
    /// Opens the state directory (creating it) and loads the state of each origin.
    pub(crate) fn open<'a>(
        dir: &Path,
        origins: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, StateError> {
        let err = |path: &Path, reason: String| StateError {
            path: path.to_owned(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| err(dir, format!("creating: {e}")))?;
        let mut loaded = HashMap::new();
        for origin in origins {
            let path = dir.join(file_name(origin));
            let state = match std::fs::read_to_string(&path) {
                Ok(text) => Some(parse(&text, origin).map_err(|r| err(&path, r))?),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(err(&path, format!("reading: {e}"))),
            };
            loaded.insert(origin.to_owned(), Arc::new(Mutex::new(state)));
        }
        Ok(WitnessState {
            dir: dir.to_owned(),
            origins: loaded,
        })
    }

    /// Locks the state of `origin`, if the witness keeps one (waits for a request in flight).
    pub(crate) async fn lock(&self, origin: &str) -> Option<OriginState<'_>> {
        let (origin, state) = self.origins.get_key_value(origin)?;
        Some(OriginState {
            guard: state.lock().await,
            path: self.dir.join(file_name(origin)),
            origin,
        })
    }
}

impl OriginState<'_> {
    /// What was last cosigned (`None`: nothing yet).
    pub(crate) fn current(&self) -> Option<Cosigned> {
        *self.guard
    }

    /// Makes `state` the durable state of the origin; on error the old state stays.
    pub(crate) async fn store(&mut self, state: Cosigned) -> Result<(), StateError> {
        if self.current() == Some(state) {
            return Ok(());
        }
        let path = self.path.clone();
        let content = render(self.origin, &state);
        let written = tokio::task::spawn_blocking(move || {
            docket_log::write_atomic(&path, content.as_bytes())
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|r| r);
        written.map_err(|e| StateError {
            path: self.path.clone(),
            reason: format!("writing: {e}"),
        })?;
        *self.guard = Some(state);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::leaf_hash;

    #[tokio::test]
    async fn state_survives_a_reopen_and_a_bad_file_stops_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let origins = ["docket.test/a", "docket.test/b"];
        let state = WitnessState::open(dir.path(), origins).unwrap();
        let mut a = state.lock("docket.test/a").await.unwrap();
        assert_eq!(a.current(), None);
        let cosigned = Cosigned {
            size: 7,
            root: leaf_hash(b"seven"),
        };
        a.store(cosigned).await.unwrap();
        assert_eq!(a.current(), Some(cosigned));
        drop(a);
        assert!(state.lock("docket.test/unknown").await.is_none());

        let again = WitnessState::open(dir.path(), origins).unwrap();
        assert_eq!(
            again.lock("docket.test/a").await.unwrap().current(),
            Some(cosigned)
        );
        assert_eq!(again.lock("docket.test/b").await.unwrap().current(), None);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");

        // A damaged file, or one of another origin under this origin's name, is an error.
        let path = dir.path().join(file_name("docket.test/a"));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("size 7", "size seven")).unwrap();
        assert!(WitnessState::open(dir.path(), origins).is_err());
        std::fs::write(&path, text.replace("docket.test/a", "docket.test/b")).unwrap();
        assert!(WitnessState::open(dir.path(), origins).is_err());
        std::fs::write(&path, &text).unwrap();
        assert!(WitnessState::open(dir.path(), origins).is_ok());
    }
}
