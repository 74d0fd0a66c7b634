//! `docket audit …`: the auditor's tools. `keygen` makes the checkpoint signing key pair;
//! `history`, `replay` and `consistency` read a log (a stopped deployment's or exported data
//! directory, or a running NATS deployment) with the domain's own code.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

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
    /// and its signature, consistency between checkpoints, and the process rules. Exits 1 and
    /// names the first bad position and the rule that failed.
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

/// Options of `docket audit export`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExportArgs {
    /// The new (or empty) directory to write the file set into.
    #[arg(long)]
    out: PathBuf,
    /// Export commits up to this position only (default: the whole log).
    #[arg(long)]
    upto: Option<u64>,
    #[command(flatten)]
    source: Source,
}

/// Options of `docket audit verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// The exported directory (give this, or --nats to verify a running deployment).
    #[arg(required_unless_present = "nats")]
    dir: Option<PathBuf>,
    /// Verify a running NATS deployment: its log and checkpoints are exported to a temporary
    /// directory first, then verified like any export.
    #[arg(long, env = "DOCKET_NATS", conflicts_with = "dir")]
    nats: Option<String>,
    /// The verifier key (C2SP vkey form), or `@path` to read it from a file.
    #[arg(long)]
    vkey: String,
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
        AuditCommand::Export(args) => export(args).await,
        AuditCommand::Verify(args) => {
            if verify(args).await? {
                Ok(())
            } else {
                std::process::exit(1)
            }
        }
        AuditCommand::Import(args) => import(args).await,
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

async fn export(args: ExportArgs) -> Result<()> {
    let summary = export_to(&args.source, &args.out, args.upto).await?;
    print_export(&args.source, &summary)
}

/// Exports the source's log and checkpoints into `out`, showing progress on stderr.
async fn export_to(
    source: &Source,
    out: &std::path::Path,
    upto: Option<u64>,
) -> Result<docket_audit::ExportSummary> {
    let log = open(source).await?;
    let store = docket_audit::CheckpointStore::new(log.audit_records().await?);
    let notes: Vec<String> = store
        .all(None)
        .await?
        .into_iter()
        .map(|c| c.signed.note)
        .collect();
    let mut last_shown = std::time::Instant::now();
    let summary = docket_audit::export(&log, &notes, upto, out, |done, total| {
        if last_shown.elapsed() >= std::time::Duration::from_millis(500) || done == total {
            last_shown = std::time::Instant::now();
            let percent = (done * 100).checked_div(total).unwrap_or(100);
            eprint!("\rdocket audit export: {done} of {total} commits ({percent}%)");
        }
    })
    .await?;
    eprintln!();
    close(log).await?;
    Ok(summary)
}

fn print_export(source: &Source, summary: &docket_audit::ExportSummary) -> Result<()> {
    if source.json {
        let out = serde_json::json!({
            "dir": summary.dir,
            "manifest": summary.manifest,
            "segment_bytes": summary.segment_bytes,
            "checkpoints_skipped": summary.checkpoints_skipped,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "exported {} commits and {} checkpoints ({} bytes of segments) to {}",
            summary.manifest.head,
            summary.manifest.checkpoints,
            summary.segment_bytes,
            summary.dir.display()
        );
        if summary.checkpoints_skipped > 0 {
            println!(
                "{} checkpoints beyond the exported head were left out",
                summary.checkpoints_skipped
            );
        }
    }
    Ok(())
}

async fn verify(args: VerifyArgs) -> Result<bool> {
    let vkey = read_arg(&args.vkey)?;
    let verifier = docket_audit::CheckpointVerifier::new(&vkey)?;
    let options = docket_audit::VerifyOptions {
        process_rules: !args.no_process_rules,
        deadline_grace: chrono::Duration::hours(args.deadline_grace_hours.max(0)),
        ..Default::default()
    };
    // A live deployment is exported first, into a directory removed afterwards.
    let mut _temp = None;
    let dir = match (&args.dir, &args.nats) {
        (Some(dir), _) => dir.clone(),
        (None, Some(url)) => {
            let temp = tempfile::tempdir().context("creating a temporary directory")?;
            let out = temp.path().join("export");
            eprintln!(
                "docket audit verify: exporting the deployment at {}",
                docket_log::jetstream::redact_url(url)
            );
            let source = Source {
                data_dir: None,
                nats: Some(url.clone()),
                json: false,
            };
            export_to(&source, &out, None).await?;
            _temp = Some(temp);
            out
        }
        (None, None) => bail!("give the export's directory, or --nats URL"),
    };
    let report = docket_audit::verify(&dir, &verifier, &options);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(report.ok)
}

async fn import(args: ImportArgs) -> Result<()> {
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
    let options = docket_audit::VerifyOptions {
        process_rules: !args.no_process_rules,
        deadline_grace: chrono::Duration::hours(args.deadline_grace_hours.max(0)),
        ..Default::default()
    };
    let mut last_shown = std::time::Instant::now();
    let mut shown_phase = None;
    let progress = |phase: Phase, done: u64, total: u64| {
        if phase == Phase::Verifying {
            eprintln!("docket audit import: verifying {}", args.export.display());
            return;
        }
        let new_phase = shown_phase != Some(phase);
        if new_phase && shown_phase.is_some() {
            eprintln!();
        }
        if new_phase
            || last_shown.elapsed() >= std::time::Duration::from_millis(500)
            || done == total
        {
            last_shown = std::time::Instant::now();
            shown_phase = Some(phase);
            let percent = (done * 100).checked_div(total).unwrap_or(100);
            eprint!("\rdocket audit import: {phase} {done} of {total} commits ({percent}%)");
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
    eprintln!();
    let summary = match result {
        Ok(summary) => summary,
        Err(ImportError::NotVerified(report)) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            return Err(ImportError::NotVerified(report).into());
        }
        Err(e) => return Err(e.into()),
    };
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
        let mut out = serde_json::to_value(&summary)?;
        out["checkpoint_key"] = serde_json::json!(key_file);
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{summary}");
        match (&key_file, &args.data_dir) {
            (Some(path), _) => println!("  checkpoint key installed: {}", path.display()),
            (None, Some(dir)) => println!(
                "  the checkpoint key is not in an export: copy it to {} or start `docket up \
                 --checkpoint-key <file>`, or the checkpointer refuses to sign",
                dir.join("audit").join("checkpoint.key").display()
            ),
            (None, None) => println!(
                "  start the checkpointer with the same key (--checkpoint-key), or it refuses to sign"
            ),
        }
    }
    Ok(())
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
        let out = serde_json::json!({
            "ok": true,
            "position": verified.position,
            "leaf_hash": verified.leaf_hash.to_string(),
            "commit_hash": verified.commit_hash.to_string(),
            "checkpoint_size": verified.checkpoint.size,
            "checkpoint_root": verified.checkpoint.root.to_string(),
            "later_size": verified.later.as_ref().map(|c| c.size),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "receipt verified: commit {} (leaf {}) is in the log of size {} signed by {}",
            verified.position,
            verified.leaf_hash,
            verified.checkpoint.size,
            verified.checkpoint.origin
        );
        if let Some(later) = &verified.later {
            println!(
                "and still in the later log of size {} (consistent)",
                later.size
            );
        }
    }
    Ok(())
}

fn print<T: serde::Serialize + std::fmt::Display>(source: &Source, value: &T) -> Result<()> {
    if source.json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{value}");
    }
    Ok(())
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
        let out = serde_json::json!({
            "origin": args.origin,
            "vkey": vkey,
            "key_file": key_path,
            "vkey_file": vkey_path,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("verifier key (public, give it to auditors): {vkey}");
        println!("signer key (secret): {}", key_path.display());
        println!("verifier key file: {}", vkey_path.display());
    }
    Ok(())
}

/// Writes `checkpoint.key` (owner-only) and `checkpoint.vkey` into `dir`.
pub(crate) fn write_key_pair(dir: &std::path::Path, skey: &str, vkey: &str) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_secret(&dir.join("checkpoint.key"), skey)?;
    let vkey_path = dir.join("checkpoint.vkey");
    std::fs::write(&vkey_path, format!("{vkey}\n"))
        .with_context(|| format!("writing {}", vkey_path.display()))
}

/// Writes a secret file readable by its owner only.
pub(crate) fn write_secret(path: &std::path::Path, content: &str) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(format!("{content}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
