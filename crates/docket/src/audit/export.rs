//! `docket audit export`: the log (or a prefix of it) with every signed checkpoint and a signed
//! manifest, from a stopped data directory, an export, or a running NATS deployment.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::out;
use super::{close, open, Source};

/// Options of `docket audit export`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExportArgs {
    /// The new (or empty) directory to write the file set into.
    #[arg(long)]
    out: PathBuf,
    /// Export commits up to this position only (default: the whole log). When it is no
    /// checkpoint's size, the first checkpoint beyond it comes too, with the consistency proof
    /// from the position to it, so the export is still covered by a signature.
    #[arg(long)]
    upto: Option<u64>,
    /// The checkpoint signer key (`checkpoint.key`), which signs the export's MANIFEST.note.
    /// Default: `<data dir>/audit/checkpoint.key`; needed with --nats and for an export of an
    /// export.
    #[arg(long)]
    checkpoint_key: Option<PathBuf>,
    #[command(flatten)]
    source: Source,
}

pub(crate) async fn export(args: ExportArgs) -> Result<()> {
    let signer = signer(&args.source, args.checkpoint_key.as_deref())?;
    let summary = export_to(&args.source, &args.out, args.upto, Some(&signer)).await?;
    print_export(&args.source, &summary)
}

/// The checkpoint signer for MANIFEST.note: `--checkpoint-key`, or the data directory's.
fn signer(source: &Source, key: Option<&Path>) -> Result<docket_audit::CheckpointSigner> {
    let path = match (key, &source.data_dir) {
        (Some(path), _) => path.to_path_buf(),
        (None, Some(dir)) => {
            let path = dir.join("audit").join("checkpoint.key");
            if !path.exists() {
                bail!(
                    "an export's MANIFEST.note is signed with the checkpoint signer key, and {} \
                     does not exist: give the key with --checkpoint-key FILE",
                    path.display()
                );
            }
            path
        }
        (None, None) => bail!(
            "an export's MANIFEST.note is signed with the checkpoint signer key: give it with \
             --checkpoint-key FILE"
        ),
    };
    let skey = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the checkpoint key {}", path.display()))?;
    docket_audit::CheckpointSigner::new(&skey)
        .with_context(|| format!("the checkpoint key {}", path.display()))
}

/// Whether a data directory is an export (its checkpoints are in `checkpoints/`, not in audit
/// records).
fn is_export(dir: &Path) -> bool {
    dir.join(docket_audit::export::MANIFEST_FILE).is_file()
        && dir.join(docket_audit::export::CHECKPOINTS_DIR).is_dir()
}

/// Exports the source's log and checkpoints into `out`, showing progress on stderr; with a
/// signer, MANIFEST.note is written.
pub(crate) async fn export_to(
    source: &Source,
    out: &Path,
    upto: Option<u64>,
    signer: Option<&docket_audit::CheckpointSigner>,
) -> Result<docket_audit::ExportSummary> {
    let log = open(source).await?;
    let (notes, proofs) = match &source.data_dir {
        Some(dir) if is_export(dir) => docket_audit::export::read_export_checkpoints(dir)
            .map_err(|e| anyhow::anyhow!("reading the checkpoints of {}: {e}", dir.display()))?,
        _ => {
            let store = docket_audit::CheckpointStore::new(log.audit_records().await?);
            let notes = store
                .all(None)
                .await?
                .into_iter()
                .map(|c| c.signed.note)
                .collect();
            (notes, Vec::new())
        }
    };
    let options = docket_audit::ExportOptions {
        checkpoints: &notes,
        proofs: &proofs,
        upto,
        signer,
    };
    let mut last_shown = std::time::Instant::now();
    let summary = docket_audit::export(&log, &options, out, |done, total| {
        if last_shown.elapsed() >= std::time::Duration::from_millis(500) || done == total {
            last_shown = std::time::Instant::now();
            let percent = (done * 100).checked_div(total).unwrap_or(100);
            out::progress(format_args!(
                "\rdocket audit export: {done} of {total} commits ({percent}%)"
            ));
        }
    })
    .await?;
    out::progress("\n");
    close(log).await?;
    if summary.unsigned_commits > 0 {
        out::progress(format_args!(
            "docket audit export: WARNING: the last {} of the {} commits exported are past the \
             last signed checkpoint (size {}): no signature vouches for them, and `docket audit \
             verify` fails the export unless --allow-unsigned-tail\n",
            summary.unsigned_commits, summary.manifest.head, summary.signed_size
        ));
    }
    Ok(summary)
}

fn print_export(source: &Source, summary: &docket_audit::ExportSummary) -> Result<()> {
    if source.json {
        return out::json(&serde_json::json!({
            "dir": summary.dir,
            "manifest": summary.manifest,
            "segment_bytes": summary.segment_bytes,
            "checkpoints_skipped": summary.checkpoints_skipped,
            "signed_size": summary.signed_size,
            "proof_to": summary.proof_to,
            "unsigned_commits": summary.unsigned_commits,
            "manifest_signed": summary.manifest_signed,
        }));
    }
    out::line(format_args!(
        "exported {} commits and {} checkpoints ({} bytes of segments) to {}",
        summary.manifest.head,
        summary.manifest.checkpoints,
        summary.segment_bytes,
        summary.dir.display()
    ))?;
    match summary.proof_to {
        Some(m) => out::line(format_args!(
            "signed: all {} commits, by the checkpoint of size {m} beyond them and the \
             consistency proof to it",
            summary.manifest.head
        ))?,
        None => out::line(format_args!(
            "signed: {} of {} commits ({} unsigned)",
            summary.signed_size, summary.manifest.head, summary.unsigned_commits
        ))?,
    }
    if summary.checkpoints_skipped > 0 {
        out::line(format_args!(
            "{} checkpoints beyond the exported head were left out",
            summary.checkpoints_skipped
        ))?;
    }
    Ok(())
}
