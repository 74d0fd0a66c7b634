//! Where each reaction keeps how far along the log it has acted: a position per named consumer,
//! stored with the deployment — small files beside the segments in embedded mode
//! ([`FileCheckpoints`]), a JetStream key-value bucket in NATS mode ([`KvCheckpoints`]).
//!
//! A checkpoint is saved only once every effect of the commits up to it is itself durable in the
//! log, so a consumer restarted from it loses nothing; the effects between the checkpoint and a
//! crash are made again, and their idempotency keys (derived from the causing commit) make the
//! second attempt a no-op. Consumer lag, as the dashboard shows it, is the log's head minus the
//! consumer's checkpoint.

use std::future::Future;
use std::path::{Path, PathBuf};

use async_nats::jetstream;
use futures_util::TryStreamExt;

use crate::error::{LogError, Result};

/// The KV bucket of checkpoints in NATS mode.
pub const CHECKPOINT_BUCKET: &str = "DOCKET_CHECKPOINTS";

/// Stored positions of named consumers.
pub trait Checkpoints: Send + Sync {
    /// The consumer's stored position, or `None` if it never saved one.
    fn load(&self, consumer: &str) -> impl Future<Output = Result<Option<u64>>> + Send;

    /// Stores the consumer's position durably.
    fn save(&self, consumer: &str, position: u64) -> impl Future<Output = Result<()>> + Send;

    /// Every consumer with its position, by name.
    fn list(&self) -> impl Future<Output = Result<Vec<(String, u64)>>> + Send;
}

/// Checks a consumer name: 1 to 64 of `a-z`, `0-9` and `-`, so it is a safe file name and KV key.
pub fn validate_consumer(consumer: &str) -> Result<()> {
    let ok = !consumer.is_empty()
        && consumer.len() <= 64
        && consumer
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(LogError::Invalid {
            reason: format!(
                "consumer name {consumer:?}: expected 1 to 64 characters of a-z, 0-9 and -"
            ),
        })
    }
}

fn parse_position(consumer: &str, bytes: &[u8]) -> Result<u64> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .ok_or_else(|| LogError::Invalid {
            reason: format!("checkpoint of {consumer} is not a position: {bytes:?}"),
        })
}

/// Checkpoints as one small file per consumer in a directory (embedded mode: `checkpoints/`
/// beside the segment files). Each save writes a temporary file, syncs it and renames it over
/// the old one, then syncs the directory, so a crash leaves the old or the new position.
#[derive(Clone, Debug)]
pub struct FileCheckpoints {
    dir: PathBuf,
}

impl FileCheckpoints {
    /// Checkpoints in `dir`, created if missing.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .map_err(|e| LogError::io(format!("creating {}", dir.display()), e))?;
        Ok(FileCheckpoints { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn save_blocking(dir: &Path, consumer: &str, position: u64) -> Result<()> {
        let path = dir.join(consumer);
        crate::atomic::write_atomic(&path, format!("{position}\n").as_bytes())
            .map_err(|e| LogError::io(format!("writing {}", path.display()), e))
    }
}

impl Checkpoints for FileCheckpoints {
    async fn load(&self, consumer: &str) -> Result<Option<u64>> {
        validate_consumer(consumer)?;
        let path = self.dir.join(consumer);
        match tokio::fs::read(&path).await {
            Ok(bytes) => parse_position(consumer, &bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(LogError::io(format!("reading {}", path.display()), e)),
        }
    }

    async fn save(&self, consumer: &str, position: u64) -> Result<()> {
        validate_consumer(consumer)?;
        let dir = self.dir.clone();
        let consumer = consumer.to_owned();
        tokio::task::spawn_blocking(move || Self::save_blocking(&dir, &consumer, position))
            .await
            .map_err(|e| LogError::unavailable(format!("checkpoint task failed: {e}")))?
    }

    async fn list(&self) -> Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        let mut entries = tokio::fs::read_dir(&self.dir)
            .await
            .map_err(|e| LogError::io(format!("listing {}", self.dir.display()), e))?;
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| LogError::io(format!("listing {}", self.dir.display()), e))?
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if validate_consumer(&name).is_err() {
                continue; // a temporary file, or not ours
            }
            if let Some(position) = self.load(&name).await? {
                out.push((name, position));
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Checkpoints in the JetStream key-value bucket [`CHECKPOINT_BUCKET`] (NATS mode), file storage,
/// one value per key, replicated like the log.
#[derive(Clone)]
pub struct KvCheckpoints {
    kv: jetstream::kv::Store,
}

impl std::fmt::Debug for KvCheckpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvCheckpoints")
            .field("bucket", &CHECKPOINT_BUCKET)
            .finish()
    }
}

impl KvCheckpoints {
    /// Opens the bucket, creating it with `replicas` replicas if it does not exist.
    pub async fn open(js: &jetstream::Context, replicas: usize) -> Result<Self> {
        let unavailable = |what: &str, e: &dyn std::fmt::Display| LogError::Unavailable {
            reason: format!("{what} the checkpoint bucket {CHECKPOINT_BUCKET}: {e}"),
            source: None,
        };
        let kv = match js.get_key_value(CHECKPOINT_BUCKET).await {
            Ok(kv) => kv,
            Err(_) => js
                .create_key_value(jetstream::kv::Config {
                    bucket: CHECKPOINT_BUCKET.to_owned(),
                    description: "Docket: how far each reaction has acted on the log".to_owned(),
                    history: 1,
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| unavailable("creating", &e))?,
        };
        Ok(KvCheckpoints { kv })
    }
}

impl Checkpoints for KvCheckpoints {
    async fn load(&self, consumer: &str) -> Result<Option<u64>> {
        validate_consumer(consumer)?;
        let value = self
            .kv
            .get(consumer)
            .await
            .map_err(|e| LogError::Unavailable {
                reason: format!("reading the checkpoint of {consumer}: {e}"),
                source: Some(Box::new(e)),
            })?;
        value.map(|v| parse_position(consumer, &v)).transpose()
    }

    async fn save(&self, consumer: &str, position: u64) -> Result<()> {
        validate_consumer(consumer)?;
        self.kv
            .put(consumer, format!("{position}").into())
            .await
            .map_err(|e| LogError::Unavailable {
                reason: format!("saving the checkpoint of {consumer}: {e}"),
                source: Some(Box::new(e)),
            })?;
        Ok(())
    }

    async fn list(&self) -> Result<Vec<(String, u64)>> {
        let unavailable = |e: &dyn std::fmt::Display| LogError::Unavailable {
            reason: format!("listing checkpoints: {e}"),
            source: None,
        };
        let keys: Vec<String> = self
            .kv
            .keys()
            .await
            .map_err(|e| unavailable(&e))?
            .try_collect()
            .await
            .map_err(|e| unavailable(&e))?;
        let mut out = Vec::new();
        for key in keys {
            if let Some(position) = self.load(&key).await? {
                out.push((key, position));
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Either store, chosen with the log's backend.
#[derive(Clone, Debug)]
pub enum AnyCheckpoints {
    /// Files beside the segments.
    File(FileCheckpoints),
    /// The JetStream key-value bucket.
    Kv(Box<KvCheckpoints>),
}

impl Checkpoints for AnyCheckpoints {
    async fn load(&self, consumer: &str) -> Result<Option<u64>> {
        match self {
            AnyCheckpoints::File(c) => c.load(consumer).await,
            AnyCheckpoints::Kv(c) => c.load(consumer).await,
        }
    }

    async fn save(&self, consumer: &str, position: u64) -> Result<()> {
        match self {
            AnyCheckpoints::File(c) => c.save(consumer, position).await,
            AnyCheckpoints::Kv(c) => c.save(consumer, position).await,
        }
    }

    async fn list(&self) -> Result<Vec<(String, u64)>> {
        match self {
            AnyCheckpoints::File(c) => c.list().await,
            AnyCheckpoints::Kv(c) => c.list().await,
        }
    }
}
