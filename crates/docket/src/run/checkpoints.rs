//! The checkpointer's flags of `docket up` and `docket serve audit`: its key, its cadence and
//! its witnesses, turned into the node's [`docket_node::CheckpointConfig`].

use std::path::PathBuf;
use std::time::Duration;

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
    audit_dir: Option<PathBuf>,
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

impl CheckpointArgs {
    /// The node's checkpointer settings.
    pub(crate) fn config(&self) -> docket_node::CheckpointConfig {
        let every = match self.checkpoint_every_secs {
            Some(secs) => Duration::from_secs(secs.max(1)),
            None => Duration::from_millis(self.checkpoint_every_ms.max(1)),
        };
        docket_node::CheckpointConfig {
            key: self.checkpoint_key.clone(),
            origin: self.origin.clone(),
            dir: self.audit_dir.clone(),
            every,
            every_commits: self.checkpoint_every_commits.max(1),
            witnesses: self.witnesses.clone(),
            witness_quorum: self.witness_quorum,
        }
    }
}
