//! `docket audit …`: the auditor's tools. `keygen` makes the checkpoint signing key pair;
//! `history`, `replay` and `consistency` read a log (a stopped deployment's or exported data
//! directory, or a running NATS deployment) with the domain's own code.

mod export;
mod out;
mod verify;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use export::ExportArgs;
use verify::{ImportArgs, VerifyArgs};

/// The auditor's tools.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum AuditCommand {
    /// Makes the key pair that signs checkpoints: the signer key (secret, written with mode 0600)
    /// and the verifier key (public, in C2SP vkey form: give it to auditors).
    Keygen(KeygenArgs),
    /// A readable timeline of a case, a review or an A-number: who did what, when, under which
    /// policy version, with the factors cited.
    History(HistoryArgs),
    /// The state of one case or review, or summary counts of everything, as it stood at a time
    /// or position.
    Replay(ReplayArgs),
    /// Re-evaluates every decision under the policy version in force at its time and lists
    /// departures from guidance, with and without approval, by office and by officer.
    Consistency(ConsistencyArgs),
    /// Exports the whole log (or up to a position) with every signed checkpoint into a
    /// self-contained file set: `segments/` (the segment format of docs/log-format.md),
    /// `checkpoints/` and `MANIFEST.json`.
    Export(ExportArgs),
    /// Verifies an export offline: checksums, hash chains, the Merkle root at every checkpoint
    /// and its signature, consistency between checkpoints, the auditor's anchors (witness
    /// cosignatures, trusted checkpoints), the signed manifest, the signed coverage, and the
    /// process rules. Exits 1 and names the failure (integrity before process rules).
    Verify(VerifyArgs),
    /// Restores an export into a new deployment: verifies it as `verify` does (and refuses one
    /// that does not verify), then writes the same commits at the same positions, byte for byte,
    /// and its signed checkpoints into a new or empty data directory (for `docket up --data-dir`)
    /// or an empty NATS deployment, and reads them back to compare.
    Import(ImportArgs),
    /// Checks a receipt (from a review request's or a decision's reply) against the public key,
    /// and optionally against a later checkpoint, without the log.
    VerifyReceipt(VerifyReceiptArgs),
}

/// Options of `docket audit verify-receipt`.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyReceiptArgs {
    /// The receipt: a file holding its JSON (as in a reply's `receipt`) or its tlog-proof text;
    /// `-` reads standard input.
    receipt: PathBuf,
    /// The verifier key (C2SP vkey form), or `@path` to read it from a file.
    #[arg(long)]
    vkey: String,
    /// A later signed checkpoint note (a file) to show the commit is still in the log it
    /// describes; needs --consistency-proof.
    #[arg(long, requires = "consistency_proof")]
    later: Option<PathBuf>,
    /// The consistency proof from the receipt's checkpoint to the later one: a file of base64
    /// hashes, one per line (as `GET /api/v1/audit/consistency` gives them).
    #[arg(long)]
    consistency_proof: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Where the commits come from.
#[derive(Debug, clap::Args)]
pub(crate) struct Source {
    /// A data directory of segment files: a stopped `docket up`'s (`docket-data`), or an export
    /// (its `segments/` is used).
    #[arg(long, conflicts_with = "nats", required_unless_present = "nats")]
    data_dir: Option<PathBuf>,
    /// A running NATS deployment (comma-separated server URLs).
    #[arg(long, env = "DOCKET_NATS")]
    nats: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Options of `docket audit history`.
#[derive(Debug, clap::Args)]
pub(crate) struct HistoryArgs {
    /// A case id, a review id, or an A-number (e.g. A012345678).
    subject: String,
    #[command(flatten)]
    source: Source,
}

/// Options of `docket audit replay`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReplayArgs {
    /// A position (e.g. 1200) or a time (e.g. 2024-03-05T15:00:00Z, or a date for its end).
    #[arg(long)]
    as_of: docket_audit::inspect::AsOf,
    /// A case or review id; without one, summary counts of everything.
    subject: Option<String>,
    #[command(flatten)]
    source: Source,
}

/// Options of `docket audit consistency`.
#[derive(Debug, clap::Args)]
pub(crate) struct ConsistencyArgs {
    #[command(flatten)]
    source: Source,
}

/// Options of `docket audit keygen`.
#[derive(Debug, clap::Args)]
pub(crate) struct KeygenArgs {
    /// The log's origin: the first line of every checkpoint and the key's name, conventionally
    /// `<host>/<path>` of the deployment, e.g. `docket.example.gov/log`.
    #[arg(long)]
    origin: String,
    /// Where to write `checkpoint.key` (secret) and `checkpoint.vkey` (public).
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// Overwrite existing key files.
    #[arg(long)]
    force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::Keygen(args) => keygen(args),
        AuditCommand::History(args) => {
            let commits = commits(&args.source).await?;
            let history = docket_audit::inspect::history(commits, &args.subject)?;
            print(&args.source, &history)
        }
        AuditCommand::Replay(args) => {
            let commits = commits(&args.source).await?;
            let replay =
                docket_audit::inspect::replay(commits, args.as_of, args.subject.as_deref())?;
            print(&args.source, &replay)
        }
        AuditCommand::Export(args) => export::export(args).await,
        AuditCommand::Verify(args) => {
            if verify::verify(args).await? {
                Ok(())
            } else {
                std::process::exit(1)
            }
        }
        AuditCommand::Import(args) => verify::import(args).await,
        AuditCommand::VerifyReceipt(args) => verify_receipt(args),
        AuditCommand::Consistency(args) => {
            let commits = commits(&args.source).await?;
            let policies = docket_domain::policy::PolicySet::shipped()
                .context("loading the shipped guideline policy")?;
            let report = docket_audit::inspect::consistency(commits, &policies)?;
            print(&args.source, &report)
        }
    }
}

fn read_arg(value: &str) -> Result<String> {
    match value.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map(|s| s.trim().to_owned())
            .with_context(|| format!("reading {path}")),
        None => Ok(value.trim().to_owned()),
    }
}

fn read_input(path: &std::path::Path) -> Result<String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn verify_receipt(args: VerifyReceiptArgs) -> Result<()> {
    let text = read_input(&args.receipt)?;
    let receipt: docket_audit::Receipt = if text.trim_start().starts_with('{') {
        let value: serde_json::Value =
            serde_json::from_str(&text).context("reading the receipt's JSON")?;
        // A whole reply is accepted too: its `receipt` field is the receipt.
        let value = value.get("receipt").cloned().unwrap_or(value);
        serde_json::from_value(value).context("reading the receipt's JSON")?
    } else {
        docket_audit::Receipt::from_text(&text)?
    };
    let verifier = docket_audit::CheckpointVerifier::new(&read_arg(&args.vkey)?)?;
    let later = match (&args.later, &args.consistency_proof) {
        (Some(note), Some(proof)) => {
            let note = read_input(note)?;
            let proof = read_input(proof)?
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    docket_audit::Hash::parse_hash(l.trim())
                        .map_err(|e| anyhow::anyhow!("consistency proof: {e}"))
                })
                .collect::<Result<Vec<_>>>()?;
            Some((note, proof))
        }
        _ => None,
    };
    let verified = docket_audit::verify_receipt(
        &receipt,
        &verifier,
        later.as_ref().map(|(n, p)| (n.as_str(), p.as_slice())),
    )?;
    if args.json {
        let value = serde_json::json!({
            "ok": true,
            "position": verified.position,
            "leaf_hash": verified.leaf_hash.to_string(),
            "commit_hash": verified.commit_hash.to_string(),
            "checkpoint_size": verified.checkpoint.size,
            "checkpoint_root": verified.checkpoint.root.to_string(),
            "later_size": verified.later.as_ref().map(|c| c.size),
        });
        return out::json(&value);
    }
    out::line(format_args!(
        "receipt verified: commit {} (leaf {}) is in the log of size {} signed by {}",
        verified.position, verified.leaf_hash, verified.checkpoint.size, verified.checkpoint.origin
    ))?;
    if let Some(later) = &verified.later {
        out::line(format_args!(
            "and still in the later log of size {} (consistent)",
            later.size
        ))?;
    }
    Ok(())
}

fn print<T: serde::Serialize + std::fmt::Display>(source: &Source, value: &T) -> Result<()> {
    if source.json {
        out::json(value)
    } else {
        out::print(&value.to_string())
    }
}

/// The segment files of a data directory: an export's `segments/`, or the directory itself.
fn segments_of(dir: &std::path::Path) -> PathBuf {
    let segments = dir.join("segments");
    if segments.is_dir() {
        segments
    } else {
        dir.to_path_buf()
    }
}

/// The source's log, opened.
async fn open(source: &Source) -> Result<docket_log::AnyLog> {
    Ok(match (&source.data_dir, &source.nats) {
        (Some(dir), _) => {
            let dir = segments_of(dir);
            if !dir.is_dir() {
                bail!("{} is not a directory", dir.display());
            }
            docket_log::AnyLog::File(
                docket_log::file::FileLog::open(docket_log::file::FileLogConfig::new(&dir))
                    .await
                    .with_context(|| {
                        format!(
                            "opening the log in {} (is `docket up` still running on it?)",
                            dir.display()
                        )
                    })?,
            )
        }
        (None, Some(url)) => docket_log::AnyLog::JetStream(
            docket_log::jetstream::JetStreamLog::connect_url(url, Default::default())
                .await
                .with_context(|| {
                    format!(
                        "opening the log on JetStream at {}",
                        docket_log::jetstream::redact_url(url)
                    )
                })?,
        ),
        (None, None) => bail!("give --data-dir DIR or --nats URL"),
    })
}

async fn close(log: docket_log::AnyLog) -> Result<()> {
    if let docket_log::AnyLog::File(file) = &log {
        file.close().await?;
    }
    Ok(())
}

/// Every commit of the source, in log order. A data directory is read without opening the log
/// (no lock taken, nothing written, every frame checked), so an export stays as it was.
async fn commits(source: &Source) -> Result<Vec<docket_log::RecordedCommit>> {
    use docket_log::EventLog;
    if let Some(dir) = &source.data_dir {
        let dir = segments_of(dir);
        let reader = docket_log::file::export::SegmentReader::open(&dir)
            .with_context(|| format!("reading the segments in {}", dir.display()))?;
        let mut all = Vec::new();
        for next in reader {
            let (position, bytes) = next?;
            all.push(docket_log::RecordedCommit::decode(position, bytes)?);
        }
        return Ok(all);
    }
    let log = open(source).await?;
    let mut all: Vec<docket_log::RecordedCommit> = Vec::new();
    loop {
        let after = all.last().map_or(0, |c| c.position);
        let batch = log.read_all(after, 4096).await?;
        if batch.is_empty() {
            break;
        }
        all.extend(batch);
    }
    close(log).await?;
    Ok(all)
}

fn keygen(args: KeygenArgs) -> Result<()> {
    let (skey, vkey) = docket_audit::note::generate_key(&args.origin)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let key_path = args.out.join("checkpoint.key");
    let vkey_path = args.out.join("checkpoint.vkey");
    if !args.force {
        for path in [&key_path, &vkey_path] {
            if path.exists() {
                bail!(
                    "{} exists: refusing to replace a key (pass --force to do so)",
                    path.display()
                );
            }
        }
    }
    write_key_pair(&args.out, &skey, &vkey)?;
    if args.json {
        return out::json(&serde_json::json!({
            "origin": args.origin,
            "vkey": vkey,
            "key_file": key_path,
            "vkey_file": vkey_path,
        }));
    }
    out::line(format_args!(
        "verifier key (public, give it to auditors): {vkey}"
    ))?;
    out::line(format_args!("signer key (secret): {}", key_path.display()))?;
    out::line(format_args!("verifier key file: {}", vkey_path.display()))
}

/// Writes `checkpoint.key` (owner-only) and `checkpoint.vkey` into `dir`.
pub(crate) fn write_key_pair(dir: &std::path::Path, skey: &str, vkey: &str) -> Result<()> {
    docket_node::write_key_pair(dir, skey, vkey)
        .with_context(|| format!("writing the key pair into {}", dir.display()))
}

/// Writes a secret file readable by its owner only.
pub(crate) fn write_secret(path: &std::path::Path, content: &str) -> Result<()> {
    docket_node::write_secret(path, content).with_context(|| format!("writing {}", path.display()))
}
