//! `docket audit verify` and `docket audit import`: an export verified offline against the log's
//! key and the auditor's anchors (witness keys and quorum, trusted checkpoints), and restored
//! into a new deployment only if it verifies the same way.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use super::export::export_to;
use super::{out, read_arg, read_input, write_key_pair, Source};

/// The auditor's anchors and what to accept, shared by `verify` and `import`.
#[derive(Debug, clap::Args)]
pub(crate) struct AnchorArgs {
    /// A witness's verifier key (C2SP vkey form), or `@path` to read it from a file; repeatable.
    /// Only checkpoints cosigned by --witness-quorum of these witnesses anchor the export: it
    /// must hold one, covering its head.
    #[arg(long = "witness-vkey", value_name = "VKEY")]
    witness_vkeys: Vec<String>,
    /// How many of the --witness-vkey witnesses must cosign a checkpoint (default: all of them).
    #[arg(long, value_name = "K", requires = "witness_vkeys")]
    witness_quorum: Option<usize>,
    /// A checkpoint you got elsewhere (from a witness, a receipt, an earlier audit): a signed
    /// checkpoint note, or a receipt (JSON, a whole reply, or tlog-proof text) whose checkpoint
    /// is used; repeatable. It must be signed by the log's key, and the export must show it is
    /// consistent with it: a rollback, a dropped tail or a fork fails (rule `anchor`).
    #[arg(long = "trusted-checkpoint", value_name = "FILE")]
    trusted_checkpoints: Vec<PathBuf>,
    /// Accept commits past the last signed (with witnesses: cosigned) checkpoint. They are
    /// reported, and nothing vouches for them.
    #[arg(long)]
    allow_unsigned_tail: bool,
}

impl AnchorArgs {
    fn anchors(&self) -> Result<docket_audit::Anchors> {
        let witnesses = self
            .witness_vkeys
            .iter()
            .map(|v| {
                let vkey = read_arg(v)?;
                docket_audit::witness::CosignatureVerifier::new(&vkey)
                    .with_context(|| format!("the witness key {v}"))
            })
            .collect::<Result<Vec<_>>>()?;
        let quorum = self.witness_quorum.unwrap_or(witnesses.len());
        if !witnesses.is_empty() && (quorum == 0 || quorum > witnesses.len()) {
            bail!(
                "--witness-quorum {quorum}: give a number from 1 to the {} witness keys",
                witnesses.len()
            );
        }
        let trusted = self
            .trusted_checkpoints
            .iter()
            .map(|path| {
                trusted_note(&read_input(path)?)
                    .with_context(|| format!("the trusted checkpoint {}", path.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(docket_audit::Anchors {
            witnesses,
            quorum,
            trusted,
        })
    }
}

/// The checkpoint note in a trusted-checkpoint file: the note itself, or a receipt's.
fn trusted_note(text: &str) -> Result<String> {
    let start = text.trim_start();
    if start.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(text).context("reading its JSON")?;
        // A whole reply is accepted too: its `receipt` field is the receipt.
        let value = value.get("receipt").cloned().unwrap_or(value);
        let receipt: docket_audit::Receipt =
            serde_json::from_value(value).context("reading the receipt's JSON")?;
        return Ok(receipt.checkpoint);
    }
    if start.starts_with(docket_audit::receipt::TLOG_PROOF_HEADER) {
        return Ok(docket_audit::Receipt::from_text(text)?.checkpoint);
    }
    Ok(text.to_owned())
}

/// Options of `docket audit verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// The exported directory (give this, or --nats to verify a running deployment).
    #[arg(required_unless_present = "nats")]
    dir: Option<PathBuf>,
    /// Verify a running NATS deployment: its log and checkpoints are exported to a temporary
    /// directory first, then verified like any export (its manifest, made here, is not signed).
    #[arg(long, env = "DOCKET_NATS", conflicts_with = "dir")]
    nats: Option<String>,
    /// The verifier key (C2SP vkey form), or `@path` to read it from a file.
    #[arg(long)]
    vkey: String,
    #[command(flatten)]
    anchors: AnchorArgs,
    /// Skip the process rules (checksums, chains and checkpoints only).
    #[arg(long)]
    no_process_rules: bool,
    /// Hours allowed after a review deadline before its miss must be on record (deadlines are
    /// judged at the last commit's time; an export taken just after a deadline passed, before
    /// the scheduler recorded the miss, needs a little grace).
    #[arg(long, default_value_t = 0)]
    deadline_grace_hours: i64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Options of `docket audit import`.
#[derive(Debug, clap::Args)]
pub(crate) struct ImportArgs {
    /// The exported directory (from `docket audit export`).
    export: PathBuf,
    /// A new or empty data directory to restore into, for `docket up --data-dir`.
    #[arg(long, conflicts_with = "nats", required_unless_present = "nats")]
    data_dir: Option<PathBuf>,
    /// A NATS deployment to restore into (comma-separated server URLs): its log stream, audit
    /// stream and reaction checkpoint bucket must be empty or absent.
    #[arg(long)]
    nats: Option<String>,
    /// With --nats: replicas of the streams when they are created (1, or 3 on a cluster), as
    /// `docket up --replicas` will expect them.
    #[arg(long, default_value_t = 1, requires = "nats")]
    replicas: usize,
    /// The verifier key (C2SP vkey form), or `@path` to read it from a file.
    #[arg(long)]
    vkey: String,
    /// The checkpoint signer key file (`checkpoint.key`; it is not in the export) to install in
    /// the restored data directory's `audit/`, so that `docket up` continues signing with it.
    /// It must be the key of --vkey.
    #[arg(long, conflicts_with = "nats")]
    checkpoint_key: Option<PathBuf>,
    #[command(flatten)]
    anchors: AnchorArgs,
    /// Skip the process rules when verifying (checksums, chains and checkpoints only).
    #[arg(long)]
    no_process_rules: bool,
    /// Hours allowed after a review deadline before its miss must be on record (as for
    /// `docket audit verify`).
    #[arg(long, default_value_t = 0)]
    deadline_grace_hours: i64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn options(
    anchors: &AnchorArgs,
    no_process_rules: bool,
    deadline_grace_hours: i64,
) -> Result<docket_audit::VerifyOptions> {
    Ok(docket_audit::VerifyOptions {
        process_rules: !no_process_rules,
        deadline_grace: chrono::Duration::hours(deadline_grace_hours.max(0)),
        anchors: anchors.anchors()?,
        allow_unsigned_tail: anchors.allow_unsigned_tail,
        ..Default::default()
    })
}

fn print_report(report: &docket_audit::Report, json: bool) -> Result<()> {
    if json {
        out::json(report)
    } else {
        out::print(&report.to_string())
    }
}

/// Verifies; Ok(the verdict).
pub(crate) async fn verify(args: VerifyArgs) -> Result<bool> {
    let vkey = read_arg(&args.vkey)?;
    let verifier = docket_audit::CheckpointVerifier::new(&vkey)?;
    let mut options = options(
        &args.anchors,
        args.no_process_rules,
        args.deadline_grace_hours,
    )?;
    // A live deployment is exported first, into a directory removed afterwards.
    let mut _temp = None;
    let dir = match (&args.dir, &args.nats) {
        (Some(dir), _) => dir.clone(),
        (None, Some(url)) => {
            let temp = tempfile::tempdir().context("creating a temporary directory")?;
            let out = temp.path().join("export");
            out::progress(format_args!(
                "docket audit verify: exporting the deployment at {}\n",
                docket_log::jetstream::redact_url(url)
            ));
            let source = Source {
                data_dir: None,
                nats: Some(url.clone()),
                json: false,
            };
            // Made here, now: its manifest needs no signature (its fields are still checked).
            export_to(&source, &out, None, None).await?;
            options.manifest_signed = false;
            _temp = Some(temp);
            out
        }
        (None, None) => bail!("give the export's directory, or --nats URL"),
    };
    let report = docket_audit::verify(&dir, &verifier, &options);
    print_report(&report, args.json)?;
    Ok(report.ok)
}

pub(crate) async fn import(args: ImportArgs) -> Result<()> {
    use docket_audit::import::{ImportError, Phase};
    let vkey = read_arg(&args.vkey)?;
    let verifier = docket_audit::CheckpointVerifier::new(&vkey)?;
    // The signer key is checked before anything is written.
    let skey = match &args.checkpoint_key {
        Some(path) => {
            let skey = std::fs::read_to_string(path)
                .with_context(|| format!("reading the checkpoint key {}", path.display()))?;
            let signer = docket_audit::CheckpointSigner::new(&skey)
                .with_context(|| format!("the checkpoint key {}", path.display()))?;
            if signer.vkey().trim() != vkey.trim() {
                bail!(
                    "the checkpoint key {} is not the key of --vkey (its verifier key is {})",
                    path.display(),
                    signer.vkey()
                );
            }
            Some((skey.trim().to_owned(), signer.vkey().to_owned()))
        }
        None => None,
    };
    let options = options(
        &args.anchors,
        args.no_process_rules,
        args.deadline_grace_hours,
    )?;
    let mut last_shown = std::time::Instant::now();
    let mut shown_phase = None;
    let progress = |phase: Phase, done: u64, total: u64| {
        if phase == Phase::Verifying {
            out::progress(format_args!(
                "docket audit import: verifying {}\n",
                args.export.display()
            ));
            return;
        }
        let new_phase = shown_phase != Some(phase);
        if new_phase && shown_phase.is_some() {
            out::progress("\n");
        }
        if new_phase
            || last_shown.elapsed() >= std::time::Duration::from_millis(500)
            || done == total
        {
            last_shown = std::time::Instant::now();
            shown_phase = Some(phase);
            let percent = (done * 100).checked_div(total).unwrap_or(100);
            out::progress(format_args!(
                "\rdocket audit import: {phase} {done} of {total} commits ({percent}%)"
            ));
        }
    };
    let result = match (&args.data_dir, &args.nats) {
        (Some(dir), _) => {
            docket_audit::import_to_dir(&args.export, dir, &verifier, &options, progress).await
        }
        (None, Some(url)) => {
            let config = docket_log::jetstream::JetStreamConfig {
                replicas: args.replicas,
                ..Default::default()
            };
            let log = docket_log::jetstream::JetStreamLog::connect_url(url, config)
                .await
                .with_context(|| {
                    format!(
                        "opening the log on JetStream at {}",
                        docket_log::jetstream::redact_url(url)
                    )
                })?;
            docket_audit::import_to_jetstream(&args.export, &log, &verifier, &options, progress)
                .await
        }
        (None, None) => bail!("give --data-dir DIR or --nats URL"),
    };
    out::progress("\n");
    let summary = match result {
        Ok(summary) => summary,
        Err(ImportError::NotVerified(report)) => {
            print_report(&report, args.json)?;
            return Err(ImportError::NotVerified(report).into());
        }
        Err(e) => return Err(e.into()),
    };
    if summary.unsigned_commits > 0 {
        out::progress(format_args!(
            "docket audit import: WARNING: --allow-unsigned-tail: the last {} commits are vouched \
             for by no signature, and the restored checkpointer will sign over commits that \
             nothing vouched for\n",
            summary.unsigned_commits
        ));
    }
    let mut key_file = None;
    if let (Some((skey, vkey)), Some(dir)) = (&skey, &args.data_dir) {
        let audit = dir.join("audit");
        write_key_pair(&audit, skey, vkey).with_context(|| {
            format!(
                "the import is complete, but installing the checkpoint key in {} failed",
                audit.display()
            )
        })?;
        key_file = Some(audit.join("checkpoint.key"));
    }
    if args.json {
        let mut value = serde_json::to_value(&summary)?;
        value["checkpoint_key"] = serde_json::json!(key_file);
        return out::json(&value);
    }
    out::print(&summary.to_string())?;
    match (&key_file, &args.data_dir) {
        (Some(path), _) => out::line(format_args!(
            "  checkpoint key installed: {}",
            path.display()
        )),
        (None, Some(dir)) => out::line(format_args!(
            "  the checkpoint key is not in an export: copy it to {} or start `docket up \
             --checkpoint-key <file>`, or the checkpointer refuses to sign",
            dir.join("audit").join("checkpoint.key").display()
        )),
        (None, None) => out::line(
            "  start the checkpointer with the same key (--checkpoint-key), or it refuses to sign",
        ),
    }
}
