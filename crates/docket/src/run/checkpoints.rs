//! The checkpointer's flags of `docket up` and `docket serve audit`: its key, its cadence and
//! its witnesses, and starting it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use docket_log::EventLog;
use tokio::sync::watch;

/// How the log's checkpoints are signed and witnessed.
#[derive(Debug, clap::Args)]
pub(crate) struct CheckpointArgs {
    /// The checkpoint signer key (from `docket audit keygen`). Default: `checkpoint.key` in the
    /// audit directory, made on first start (its public key is printed and written beside it).
    #[arg(long, env = "DOCKET_CHECKPOINT_KEY")]
    checkpoint_key: Option<PathBuf>,
    /// The log's origin for a key made on first start (the first line of every checkpoint).
    #[arg(long, default_value = "docket.local/log")]
    origin: String,
    /// The checkpointer's directory (its tree cache, and a key made on first start). Default:
    /// `audit` in the data directory (embedded), `./docket-audit` (with --nats).
    #[arg(long, env = "DOCKET_AUDIT_DIR")]
    pub(crate) audit_dir: Option<PathBuf>,
    /// Sign a checkpoint this often (milliseconds) when the log grew. Replies that carry a
    /// receipt wait for the next one.
    #[arg(long, default_value_t = 100)]
    checkpoint_every_ms: u64,
    /// Sign a checkpoint as soon as this many commits were added since the last.
    #[arg(long, default_value_t = 1000)]
    checkpoint_every_commits: u64,
    /// The former period flag, in seconds (`--checkpoint-every-ms` replaces it).
    #[arg(long, hide = true, conflicts_with = "checkpoint_every_ms")]
    checkpoint_every_secs: Option<u64>,
    /// A witness asked to cosign every checkpoint (C2SP tlog-witness), as
    /// `<url>=<vkey>` or `<url>=@<vkey file>`; repeat for several (comma-separated in the
    /// environment variable).
    #[arg(long = "witness", env = "DOCKET_WITNESS", value_delimiter = ',')]
    witnesses: Vec<String>,
    /// How many witnesses' cosignatures a checkpoint should carry (default: every witness).
    /// Fewer is logged and shown on /metrics and the dashboard; commands never wait for it.
    #[arg(long, env = "DOCKET_WITNESS_QUORUM")]
    witness_quorum: Option<usize>,
}

/// The checkpointer's task.
pub(crate) type CheckpointerTask = tokio::task::JoinHandle<Result<(), docket_audit::AuditError>>;

/// A witness flag: `<url>=<vkey>` or `<url>=@<file holding the vkey>`.
fn witness(flag: &str) -> Result<docket_audit::witness::WitnessClient> {
    // The first `=` ends the URL: a vkey's base64 may end in `=`.
    let Some((url, vkey)) = flag.trim().split_once('=') else {
        bail!("--witness {flag:?}: expected <url>=<vkey> or <url>=@<vkey file>");
    };
    let vkey = match vkey.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the witness key {path}"))?
            .trim()
            .to_owned(),
        None => vkey.trim().to_owned(),
    };
    docket_audit::witness::WitnessClient::new(url, &vkey)
        .with_context(|| format!("--witness {url}"))
}

impl CheckpointArgs {
    /// Loads the signer key, or makes one on first start when none was named.
    fn signer(&self, audit_dir: &Path) -> Result<docket_audit::CheckpointSigner> {
        let path = match &self.checkpoint_key {
            Some(path) => path.clone(),
            None => {
                let path = audit_dir.join("checkpoint.key");
                if !path.exists() {
                    let (skey, vkey) = docket_audit::note::generate_key(&self.origin)?;
                    crate::audit::write_key_pair(audit_dir, &skey, &vkey)?;
                    eprintln!(
                        "docket: made the checkpoint key {} (origin {}); verifier key, for auditors: {vkey}",
                        path.display(),
                        self.origin
                    );
                }
                path
            }
        };
        let skey = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the checkpoint key {}", path.display()))?;
        docket_audit::CheckpointSigner::new(&skey)
            .with_context(|| format!("the checkpoint key {}", path.display()))
    }

    /// The checkpointer's configuration from the flags.
    fn config(&self) -> Result<docket_audit::CheckpointerConfig> {
        let every = match self.checkpoint_every_secs {
            Some(secs) => Duration::from_secs(secs.max(1)),
            None => Duration::from_millis(self.checkpoint_every_ms.max(1)),
        };
        let witnesses = self
            .witnesses
            .iter()
            .filter(|w| !w.trim().is_empty())
            .map(|w| witness(w))
            .collect::<Result<Vec<_>>>()?;
        let quorum = self.witness_quorum.unwrap_or(witnesses.len());
        if quorum > witnesses.len() {
            bail!(
                "--witness-quorum {quorum} is more than the {} witnesses configured",
                witnesses.len()
            );
        }
        Ok(docket_audit::CheckpointerConfig {
            witnesses,
            witness_quorum: quorum,
            ..docket_audit::CheckpointerConfig::every(self.checkpoint_every_commits.max(1), every)
        })
    }

    /// Starts the checkpointer over `log`, storing checkpoints in `records` and counting into
    /// `metrics`, until `shutdown`; returns its handle, its task and the verifier key.
    pub(crate) fn start<L: EventLog + Clone + Send + Sync + 'static>(
        &self,
        log: L,
        records: docket_log::AnyRecords,
        audit_dir: PathBuf,
        metrics: docket_audit::Metrics,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(docket_audit::CheckpointerHandle, CheckpointerTask, String)> {
        let signer = self.signer(&audit_dir)?;
        let vkey = signer.vkey().to_owned();
        let config = docket_audit::CheckpointerConfig {
            metrics,
            ..self.config()?
        };
        eprintln!(
            "docket: signing checkpoints as {} every {} ms or {} commits; verifier key {}",
            signer.origin(),
            config.every.as_millis(),
            config.every_commits,
            signer.vkey()
        );
        if config.witnesses.is_empty() {
            eprintln!(
                "docket: no witnesses (--witness): checkpoints are signed by this deployment alone"
            );
        }
        for w in &config.witnesses {
            eprintln!("docket: witness {} at {}", w.name(), w.url());
        }
        if !config.witnesses.is_empty() {
            eprintln!(
                "docket: witness quorum {} of {}",
                config.witness_quorum,
                config.witnesses.len()
            );
        }
        let (handle, task) = docket_audit::Checkpointer::start(
            config,
            log,
            docket_audit::CheckpointStore::new(records),
            signer,
            audit_dir.join("tree"),
            shutdown,
        );
        Ok((handle, task, vkey))
    }
}

/// Waits for the checkpointer to finish (its final checkpoint signed).
pub(crate) async fn finish_checkpointer(task: CheckpointerTask) -> Result<()> {
    task.await
        .context("the checkpointer panicked")?
        .context("the checkpointer stopped")
}
