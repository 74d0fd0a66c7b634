//! `checkpoint.per_1000_decisions`: how many signed checkpoints the demo workload leaves behind
//! per 1,000 decisions recorded. The embedded deployment in process — a file log, the command
//! services with receipts from a checkpointer on its default cadence — driven by the `docket
//! demo` workload; then the decisions in the log and the checkpoints in the store are counted.
//! Replies that carry a receipt wait for the cadence's checkpoint instead of forcing one each.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use docket_audit::{CheckpointSigner, CheckpointStore, Checkpointer, CheckpointerConfig};
use docket_bus::{Client, ContentType, LocalBus};
use docket_demo::DemoConfig;
use docket_domain::policy::PolicySet;
use docket_log::file::{FileLog, FileLogConfig};
use docket_log::EventLog;
use docket_runtime::clock::SystemClock;
use docket_runtime::{Executor, ExecutorConfig, World};

use crate::Figure;

/// The event type of a recorded decision.
const DECISION_RECORDED: &str = "case.decision_recorded";

fn progress(message: &str) {
    eprintln!("-- {message}");
}

/// Runs the demo (`cases` cases, seed 7) against the embedded services in `dir` and prints
/// `checkpoint.per_1000_decisions`.
pub async fn per_1000_decisions(dir: &std::path::Path, cases: usize) -> anyhow::Result<Figure> {
    progress(&format!(
        "the demo workload ({cases} cases) against the embedded services with receipts, to count checkpoints"
    ));
    let log = FileLog::open(FileLogConfig::new(dir)).await?;
    let world = World::new();
    world.follow(log.clone());
    let checkpoints = docket_log::AnyCheckpoints::File(log.checkpoints()?);
    let records = log.audit_records()?;
    let (skey, _) = docket_audit::note::generate_key("docket.bench/checkpoints")?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (stop_checkpointer, checkpointer_stopped) = tokio::sync::watch::channel(false);
    let (checkpointer, checkpointer_task) = Checkpointer::start(
        CheckpointerConfig::default(),
        log.clone(),
        CheckpointStore::new(records.clone()),
        CheckpointSigner::new(&skey)?,
        dir.join("audit").join("tree"),
        checkpointer_stopped,
    );
    let executor = Executor::new(
        log.clone(),
        world.clone(),
        ExecutorConfig::new(PolicySet::shipped()?),
    );
    let bus = LocalBus::new();
    let (actor_skey, actor_vkey) = docket_bus::token::generate_key();
    let issuer = docket_bus::token::TokenIssuer::new(&actor_skey)?;
    let services = docket_node::register_local(
        &bus,
        &docket_node::COMMAND_SERVICES,
        executor,
        checkpoints,
        Some(docket_node::ReceiptSource::Local(checkpointer.clone())),
        docket_bus::token::TokenVerifier::new(&[actor_vkey])?,
        Arc::new(SystemClock),
        stopped,
    );
    let config = DemoConfig {
        cases,
        seed: 7,
        content_type: ContentType::Postcard,
        ..DemoConfig::default()
    };
    let t = Instant::now();
    let summary =
        docket_demo::run(Client::new(bus.clone(), issuer.clone()), &config, |_, _| {}).await?;
    let elapsed = t.elapsed();
    if summary.unexpected_total() > 0 {
        eprintln!("{summary}");
    }
    stop.send(true).ok();
    services.finish().await?;
    stop_checkpointer.send(true).ok();
    checkpointer_task
        .await
        .context("the checkpointer panicked")??;

    let head = log.head().await?;
    let mut decisions = 0u64;
    let mut after = 0;
    while after < head {
        let commits = log.read_all(after, 65_536).await?;
        let Some(last) = commits.last() else {
            break;
        };
        after = last.position;
        decisions += commits
            .iter()
            .flat_map(|c| &c.commit.events)
            .filter(|e| e.type_name == DECISION_RECORDED)
            .count() as u64;
    }
    let stored = CheckpointStore::new(records).all(None).await?;
    log.close().await?;
    anyhow::ensure!(decisions > 0, "the demo recorded no decisions");
    let last = stored.last().map_or(0, |c| c.signed.checkpoint.size);
    anyhow::ensure!(
        last == head,
        "the final checkpoint covers {last} of {head} commits"
    );
    progress(&format!(
        "{decisions} decisions and {head} commits in {:.1} s: {} checkpoints stored",
        elapsed.as_secs_f64(),
        stored.len()
    ));
    Ok(Figure::new(
        "checkpoint.per_1000_decisions",
        stored.len() as f64 * 1000.0 / decisions as f64,
        "count",
    )
    .print())
}
