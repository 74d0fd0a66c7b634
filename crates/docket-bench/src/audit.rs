//! `bench audit`: offline verification of an export of a large log, and inclusion proofs from
//! the tree the verifier built, beside raw SHA-256 of the same bytes measured in the same run.
//!
//! The log is built with the file backend's group commit (many concurrent appenders of the log
//! bench's 200-byte events), checkpoints are signed every `checkpoint_every` commits with a fresh
//! key, the log is exported and the export verified. The bench events belong to no domain
//! stream, so the process rules have nothing to check here: the figure is the integrity checks'
//! (checksums, decoding, hash chains, Merkle tree, checkpoints).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use docket_audit::tree::{verify_inclusion, Tree};
use docket_audit::{CheckpointSigner, CheckpointVerifier, VerifyOptions};
use docket_log::file::export::SegmentReader;
use docket_log::file::{FileLog, FileLogConfig};
use docket_log::{CommitHash, EventLog};

use crate::log::append_run;
use crate::{quantile_us, rate, Figure};

/// Options of `bench audit`.
#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    /// Where the log and the export are written (default: a temporary directory, removed
    /// afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Commits in the log.
    #[arg(long, default_value_t = 1_000_000)]
    pub commits: usize,
    /// A checkpoint is signed every this many commits.
    #[arg(long, default_value_t = 100_000)]
    pub checkpoint_every: u64,
    /// Inclusion proofs made and checked for the p50.
    #[arg(long, default_value_t = 10_000)]
    pub proofs: usize,
    /// Concurrent appenders building the log.
    #[arg(long, default_value_t = 256)]
    pub appenders: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dir: None,
            commits: 1_000_000,
            checkpoint_every: 100_000,
            proofs: 10_000,
            appenders: 256,
        }
    }
}

fn progress(message: &str) {
    eprintln!("-- {message}");
}

/// A small deterministic generator for the proof positions (xorshift64*).
struct Positions(u64);

impl Positions {
    fn next(&mut self, size: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % size.max(1) + 1
    }
}

/// Runs the audit benchmark and prints its figures.
pub async fn run(options: Options) -> anyhow::Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let temp = tempfile::tempdir().context("creating a temporary directory")?;
    let base = options
        .dir
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    let work = tempfile::tempdir_in(&base).context("creating the work directory")?;
    let log_dir = work.path().join("log");
    let export_dir = work.path().join("export");

    progress(&format!(
        "building a log of {} commits with {} appenders",
        options.commits, options.appenders
    ));
    let log = FileLog::open(FileLogConfig::new(&log_dir)).await?;
    let (elapsed, _) = append_run(&log, options.appenders, options.commits, 1, false).await?;
    let head = log.head().await?;
    figures.push(
        Figure::new(
            "audit.build.append",
            rate(head as usize, elapsed),
            "commits/s",
        )
        .print(),
    );

    progress("signing checkpoints over the log");
    let origin = "docket.bench/audit";
    let (skey, vkey) = docket_audit::note::generate_key(origin)?;
    let signer = CheckpointSigner::new(&skey)?;
    let mut tree = Tree::new();
    let mut notes = Vec::new();
    let mut after = 0;
    let every = options.checkpoint_every.max(1);
    while after < head {
        for commit in log.read_all(after, 65_536).await? {
            tree.push_commit(&commit.bytes);
            after = commit.position;
            if after % every == 0 || after == head {
                notes.push(signer.sign(after, tree.root())?.note);
            }
        }
    }
    drop(tree);

    progress(&format!(
        "exporting {head} commits and {} checkpoints",
        notes.len()
    ));
    let t = Instant::now();
    let export_options = docket_audit::ExportOptions {
        checkpoints: &notes,
        signer: Some(&signer),
        ..Default::default()
    };
    let summary = docket_audit::export(&log, &export_options, &export_dir, |_, _| {}).await?;
    figures.push(
        Figure::new(
            "audit.export",
            rate(summary.manifest.commits as usize, t.elapsed()),
            "commits/s",
        )
        .print(),
    );
    log.close().await?;

    let verifier = CheckpointVerifier::new(&vkey)?;
    progress("verifying the export (all cores)");
    let (report, tree) = {
        let (dir, verifier) = (export_dir.clone(), verifier.clone());
        tokio::task::spawn_blocking(move || {
            docket_audit::verify_with_tree(&dir, &verifier, &VerifyOptions::default())
        })
        .await?
    };
    eprint!("{report}");
    anyhow::ensure!(report.ok, "the honest export did not verify: {report}");
    anyhow::ensure!(
        report.commits_checked == head,
        "verified {} of {head} commits",
        report.commits_checked
    );
    figures.push(Figure::new("audit.verify", report.commits_per_s(), "commits/s").print());
    progress(
        "the bench log holds no domain streams: of the process rules only commit_time_order and event_id_unique apply",
    );

    progress("verifying the export again on one thread");
    let one = VerifyOptions {
        threads: Some(1),
        ..VerifyOptions::default()
    };
    let single = {
        let (dir, verifier) = (export_dir.clone(), verifier.clone());
        tokio::task::spawn_blocking(move || docket_audit::verify(&dir, &verifier, &one)).await?
    };
    anyhow::ensure!(single.ok, "the single-thread verify failed: {single}");
    figures.push(Figure::new("audit.verify.t1", single.commits_per_s(), "commits/s").print());

    progress(&format!(
        "{} inclusion proofs against the last checkpoint",
        options.proofs
    ));
    let last = notes
        .last()
        .map(|n| verifier.open(n))
        .transpose()?
        .context("no checkpoint was signed")?;
    let (size, root) = (last.checkpoint.size, last.checkpoint.root);
    let mut positions = Positions(0x9e37_79b9_7f4a_7c15);
    let mut samples = Vec::with_capacity(options.proofs);
    for _ in 0..options.proofs {
        let position = positions.next(size);
        let t = Instant::now();
        let proof = tree.inclusion_proof(position, size)?;
        verify_inclusion(&proof, size, root, position, tree.leaf(position)?)?;
        samples.push(t.elapsed());
    }
    figures.push(
        Figure::new(
            "audit.inclusion_proof.p50_us",
            quantile_us(&mut samples, 0.5),
            "us",
        )
        .print(),
    );

    progress("baselines: reading the segments, and SHA-256 of the same bytes on one core");
    let segments = export_dir.join(docket_audit::export::SEGMENTS_DIR);
    let t = Instant::now();
    let mut commits = Vec::with_capacity(head as usize);
    for item in SegmentReader::open(&segments)? {
        commits.push(item?.1);
    }
    figures.push(
        Figure::new(
            "audit.read_segments",
            rate(commits.len(), t.elapsed()),
            "commits/s",
        )
        .print(),
    );
    let t = Instant::now();
    let mut sink = 0u8;
    for bytes in &commits {
        sink ^= CommitHash::of(bytes).0[0];
        sink ^= docket_audit::leaf_hash(bytes).0[0];
    }
    let elapsed = t.elapsed().max(Duration::from_nanos(1));
    std::hint::black_box(sink);
    figures.push(
        Figure::new(
            "sha256.commits_per_s",
            rate(commits.len(), elapsed),
            "commits/s",
        )
        .print(),
    );
    let bytes: usize = commits.iter().map(|c| c.len()).sum();
    figures.push(
        Figure::new(
            "sha256.mb_per_s",
            2.0 * bytes as f64 / 1e6 / elapsed.as_secs_f64(),
            "MB/s",
        )
        .print(),
    );
    witness_figures(work.path(), &mut figures).await?;
    figures.push(crate::checkpoints::per_1000_decisions(&work.path().join("demo"), 300).await?);
    Ok(figures)
}

/// Sequential `add-checkpoint` round trips timed for the witness figures.
const WITNESS_ROUND_TRIPS: usize = 2_000;
/// Commits the log grows by between two of them.
const WITNESS_GROWTH: u64 = 50;

/// `witness.cosign.p50_us` and `.p99_us`: one C2SP `add-checkpoint` round trip over HTTP on
/// 127.0.0.1 to a witness server in this process, its state in `dir` (so on the same disk as the
/// log): the request, the witness's signature and proof checks, its state made durable (fsync),
/// its cosignature, and the client's check of it. The log grows between requests, so each is a
/// real step forward with a consistency proof.
async fn witness_figures(dir: &std::path::Path, figures: &mut Vec<Figure>) -> anyhow::Result<()> {
    use docket_audit::witness::{
        generate_witness_key, serve, WitnessClient, WitnessConfig, WitnessSigner,
    };

    progress(&format!(
        "{WITNESS_ROUND_TRIPS} add-checkpoint round trips to a witness on 127.0.0.1"
    ));
    let (log_skey, log_vkey) = docket_audit::note::generate_key("docket.bench/witnessed")?;
    let signer = CheckpointSigner::new(&log_skey)?;
    let (witness_skey, witness_vkey) = generate_witness_key("witness.bench/w1")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let config = WitnessConfig {
        signer: WitnessSigner::new(&witness_skey)?,
        log_vkeys: vec![log_vkey],
        state_dir: dir.join("witness"),
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(serve(listener, config, stopped));
    let client = WitnessClient::new(&url, &witness_vkey)?;
    let timeout = Duration::from_secs(10);
    let mut tree = Tree::new();
    let mut old = 0;
    let mut samples = Vec::with_capacity(WITNESS_ROUND_TRIPS);
    for _ in 0..WITNESS_ROUND_TRIPS {
        for _ in 0..WITNESS_GROWTH {
            tree.push_commit(format!("commit {}", tree.size()).as_bytes());
        }
        let proof = if old == 0 {
            Vec::new()
        } else {
            tree.consistency_proof(old, tree.size())?
        };
        let note = signer.sign(tree.size(), tree.root())?.note;
        let t = Instant::now();
        client.add_checkpoint(old, &proof, &note, timeout).await?;
        samples.push(t.elapsed());
        old = tree.size();
    }
    let _ = stop.send(true);
    server.await??;
    for (name, q) in [
        ("witness.cosign.p50_us", 0.5),
        ("witness.cosign.p99_us", 0.99),
    ] {
        figures.push(Figure::new(name, quantile_us(&mut samples, q), "us").print());
    }
    Ok(())
}
