//! Starting the checkpointer: its signer key (made on first start), its cadence and its
//! witnesses, from [`CheckpointConfig`].

use std::io::Write;
use std::path::{Path, PathBuf};

use docket_log::EventLog;
use tokio::sync::watch;

use crate::config::CheckpointConfig;
use crate::error::{NodeError, ResultExt};

/// The checkpointer's task.
pub(crate) type CheckpointerTask = tokio::task::JoinHandle<Result<(), docket_audit::AuditError>>;

/// A witness flag: `<url>=<vkey>` or `<url>=@<file holding the vkey>`.
fn witness(flag: &str) -> Result<docket_audit::witness::WitnessClient, NodeError> {
    // The first `=` ends the URL: a vkey's base64 may end in `=`.
    let Some((url, vkey)) = flag.trim().split_once('=') else {
        return Err(NodeError::Config(format!(
            "--witness {flag:?}: expected <url>=<vkey> or <url>=@<vkey file>"
        )));
    };
    let vkey = match vkey.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .context(format!("reading the witness key {path}"))?
            .trim()
            .to_owned(),
        None => vkey.trim().to_owned(),
    };
    docket_audit::witness::WitnessClient::new(url, &vkey).context(format!("--witness {url}"))
}

/// Writes a secret file readable by its owner only, synced.
pub fn write_secret(path: &Path, content: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(format!("{content}\n").as_bytes())?;
    file.sync_all()
}

/// Writes `checkpoint.key` (secret) and `checkpoint.vkey` into `dir`.
pub fn write_key_pair(dir: &Path, skey: &str, vkey: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_secret(&dir.join("checkpoint.key"), skey)?;
    std::fs::write(dir.join("checkpoint.vkey"), format!("{vkey}\n"))
}

/// Loads the signer key, or makes one on first start when none was named.
fn signer(
    config: &CheckpointConfig,
    audit_dir: &Path,
) -> Result<docket_audit::CheckpointSigner, NodeError> {
    let path = match &config.key {
        Some(path) => path.clone(),
        None => {
            let path = audit_dir.join("checkpoint.key");
            if !path.exists() {
                let (skey, vkey) = docket_audit::note::generate_key(&config.origin)
                    .context("making the checkpoint key")?;
                write_key_pair(audit_dir, &skey, &vkey).context(format!(
                    "writing the checkpoint key into {}",
                    audit_dir.display()
                ))?;
                tracing::info!(key = %path.display(), origin = %config.origin, vkey = %vkey, "made the checkpoint key; its verifier key is for auditors");
            }
            path
        }
    };
    let skey = std::fs::read_to_string(&path)
        .context(format!("reading the checkpoint key {}", path.display()))?;
    docket_audit::CheckpointSigner::new(&skey)
        .context(format!("the checkpoint key {}", path.display()))
}

/// The checkpointer's configuration.
fn checkpointer_config(
    config: &CheckpointConfig,
) -> Result<docket_audit::CheckpointerConfig, NodeError> {
    let witnesses = config
        .witnesses
        .iter()
        .filter(|w| !w.trim().is_empty())
        .map(|w| witness(w))
        .collect::<Result<Vec<_>, _>>()?;
    let quorum = config.witness_quorum.unwrap_or(witnesses.len());
    if quorum > witnesses.len() {
        return Err(NodeError::Config(format!(
            "--witness-quorum {quorum} is more than the {} witnesses configured",
            witnesses.len()
        )));
    }
    Ok(docket_audit::CheckpointerConfig {
        witnesses,
        witness_quorum: quorum,
        ..docket_audit::CheckpointerConfig::every(
            config.every_commits.max(1),
            config.every.max(std::time::Duration::from_millis(1)),
        )
    })
}

/// Starts the checkpointer over `log`, storing checkpoints in `records`, until `shutdown`;
/// returns its handle, its task and the verifier key.
pub(crate) fn start<L: EventLog + Clone + Send + Sync + 'static>(
    config: &CheckpointConfig,
    log: L,
    records: docket_log::AnyRecords,
    audit_dir: PathBuf,
    metrics: docket_audit::Metrics,
    shutdown: watch::Receiver<bool>,
) -> Result<(docket_audit::CheckpointerHandle, CheckpointerTask, String), NodeError> {
    let signer = signer(config, &audit_dir)?;
    let vkey = signer.vkey().to_owned();
    let settings = docket_audit::CheckpointerConfig {
        metrics,
        ..checkpointer_config(config)?
    };
    tracing::info!(
        origin = %signer.origin(),
        every_ms = settings.every.as_millis() as u64,
        every_commits = settings.every_commits,
        vkey = %signer.vkey(),
        "signing checkpoints"
    );
    if settings.witnesses.is_empty() {
        tracing::info!("no witnesses (--witness): checkpoints are signed by this deployment alone");
    }
    for w in &settings.witnesses {
        tracing::info!(witness = %w.name(), url = %w.url(), "witness");
    }
    if !settings.witnesses.is_empty() {
        tracing::info!(
            quorum = settings.witness_quorum,
            of = settings.witnesses.len(),
            "witness quorum"
        );
    }
    let (handle, task) = docket_audit::Checkpointer::start(
        settings,
        log,
        docket_audit::CheckpointStore::new(records),
        signer,
        audit_dir.join("tree"),
        shutdown,
    );
    Ok((handle, task, vkey))
}
