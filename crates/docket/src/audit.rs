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
        AuditCommand::Consistency(args) => {
            let commits = commits(&args.source).await?;
            let policies = docket_domain::policy::PolicySet::shipped()
                .context("loading the shipped guideline policy")?;
            let report = docket_audit::inspect::consistency(commits, &policies)?;
            print(&args.source, &report)
        }
    }
}

fn print<T: serde::Serialize + std::fmt::Display>(source: &Source, value: &T) -> Result<()> {
    if source.json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{value}");
    }
    Ok(())
}

/// Every commit of the source, in log order.
async fn commits(source: &Source) -> Result<Vec<docket_log::RecordedCommit>> {
    use docket_log::EventLog;
    let log = match (&source.data_dir, &source.nats) {
        (Some(dir), _) => {
            let segments = dir.join("segments");
            let dir = if segments.is_dir() {
                segments
            } else {
                dir.clone()
            };
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
                .with_context(|| format!("opening the log on JetStream at {url}"))?,
        ),
        (None, None) => bail!("give --data-dir DIR or --nats URL"),
    };
    let mut all: Vec<docket_log::RecordedCommit> = Vec::new();
    loop {
        let after = all.last().map_or(0, |c| c.position);
        let batch = log.read_all(after, 4096).await?;
        if batch.is_empty() {
            break;
        }
        all.extend(batch);
    }
    if let docket_log::AnyLog::File(file) = &log {
        file.close().await?;
    }
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
    write_secret(&key_path, &skey)?;
    std::fs::write(&vkey_path, format!("{vkey}\n"))
        .with_context(|| format!("writing {}", vkey_path.display()))?;
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

/// Writes a secret file readable by its owner only.
fn write_secret(path: &std::path::Path, content: &str) -> Result<()> {
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
