//! A realistic workload that drives a running Docket through its public command API, over any
//! [`docket_bus::Transport`]: NATS, the in-process bus, or the embedded deployment's HTTP
//! endpoint.
//!
//! [`run`] plans everything from the seed first ([`DemoConfig::seed`]), then sends it:
//!
//! 1. **Staff** for the 25 field offices — a director, officers, supervisors, first-tier
//!    reviewers and intake clerks each — and three Senior Reviewing Officials at headquarters,
//!    registered and trained by their director. A few officers are never trained: their
//!    proposals are refused (`officer_not_trained`) and a trained colleague takes the case over.
//! 2. **Cases** spread over the offices: records attached (criminal, administrative,
//!    investigative, with content hashes) or sources marked unavailable; the whole record
//!    attested; factors assessed in realistic mixes (mostly mitigating only; public-safety
//!    aggravation; a few national-security indicators; border apprehensions and recent unlawful
//!    entries; protected areas, with the exigency recorded — sometimes only after the officer is
//!    refused for forgetting it); decisions proposed mostly within the guidance, some departing
//!    from it and approved by a supervisor or returned and proposed again; decisions recorded.
//! 3. **G-28s** for some, and **reviews** of a share of the adverse decisions, asked for by the
//!    noncitizen or their representative: acknowledged by the system, prioritised when the person
//!    is detained or removal is imminent, assigned, information asked for and provided, decided
//!    (upheld, modified, reversed, referred), some taken to tier 2, some withdrawn, and some left
//!    open — unacknowledged or undecided — so that their deadlines run.
//!
//! Deadlines are missed on the *system's* clock, never the demo's: the services take the time
//! of every command from their own clock. A run against a system on the real clock leaves
//! [`DemoSummary::deadlines_running`] deadlines running, and the review service records them
//! as missed when they pass (one business day, or 3 to 30 days); tests and the end-to-end
//! benchmark run the services on a clock they can move forward, and see the misses at once.
//!
//! Likewise the guidance: the demo expects the guideline version in force at
//! [`DemoConfig::start`]; a system whose clock puts no version in force gives no guidance and
//! requires no training, which the summary notes. The summary's guidance and departures are the
//! plan's until [`DemoSummary::read_back`] is given what the system recorded; then they are the
//! log's, and every difference from the plan is named.
//!
//! The first ten cases walk a fixed set of paths (an approved departure taken to tier 2, an
//! untrained officer, a forgotten exception, a returned proposal, a review left unacknowledged,
//! …), so even a small run shows each of them; the rest are drawn at random.
//!
//! Every command carries an idempotency key (`demo-<run>-<step>`), so a command answered
//! `unavailable` or `conflict` is retried safely.

mod drive;
mod plan;
mod summary;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use docket_bus::{BusError, Client, ContentType, Transport};
use docket_domain::policy::{PolicyError, PolicySet};
use rand::rngs::StdRng;
use rand::SeedableRng;

pub use summary::{DemoSummary, Recorded};

use crate::drive::Runner;
use crate::plan::{Ids, Planner};

/// Settings of a demo run.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// Cases to open and decide.
    pub cases: usize,
    /// Seed of the deterministic generator that plans the workload.
    pub seed: u64,
    /// Cases driven at the same time (each one's commands go in order).
    pub concurrency: usize,
    /// When the workload happens: encounters, training and G-28s are dated before it, and the
    /// guidance expected is the guideline version's in force at it. The system's clock must
    /// not be earlier.
    pub start: DateTime<Utc>,
    /// How command bodies are encoded.
    pub content_type: ContentType,
}

/// 4 March 2024, noon UTC: the 2021 guidelines were in force.
const DEFAULT_START_SECONDS: i64 = 1_709_553_600;

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            cases: 300,
            seed: 20210930,
            concurrency: 16,
            // A constant in range: `from_timestamp` cannot fail for it.
            start: DateTime::from_timestamp(DEFAULT_START_SECONDS, 0).unwrap_or_default(),
            content_type: ContentType::Json,
        }
    }
}

/// Why a demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Nothing answered the first command.
    #[error("no docket answers: {0}")]
    Unreachable(BusError),
    /// The shipped policy did not load.
    #[error("loading the guideline policy: {0}")]
    Policy(#[from] PolicyError),
    /// A setting is out of range.
    #[error("bad demo settings: {0}")]
    Config(String),
    /// A task of the run panicked.
    #[error("a demo task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Runs the workload through `client` and returns what happened. `progress(done, total)` is
/// called after every command, with `total` the commands planned (it grows if more are needed).
pub async fn run<T, P>(
    client: Client<T>,
    config: &DemoConfig,
    progress: P,
) -> Result<DemoSummary, DemoError>
where
    T: Transport + 'static,
    P: Fn(usize, usize) + Send + Sync + 'static,
{
    if config.concurrency == 0 {
        return Err(DemoError::Config("concurrency must be at least 1".into()));
    }
    let policies = PolicySet::shipped()?;
    let policy = plan::policy_at(&policies, config.start);
    let mut rng = StdRng::seed_from_u64(config.seed);
    let nonce = uuid::Uuid::new_v4().as_u128();
    let ids = Ids::new(nonce);
    let factors = plan::FactorCodes::of(&policies, policy)?;
    let staff = plan::staff(&mut rng, &ids, config.start, policy);
    let planner = Planner {
        staff: &staff,
        ids: &ids,
        start: config.start,
        policy,
        factors: &factors,
    };
    let mut used = HashSet::new();
    let cases: Vec<_> = (0..config.cases)
        .map(|i| planner.case(&mut rng, i, &mut used))
        .collect();
    let total = staff.commands() + cases.iter().map(|c| c.commands()).sum::<usize>();

    let run = format!("{:08x}", (nonce >> 96) as u32);
    let summary = DemoSummary {
        seed: config.seed,
        run: run.clone(),
        concurrency: config.concurrency,
        start: config.start,
        policy_version: policy.map(|p| p.version.clone()),
        cases: config.cases,
        case_ids: cases.iter().map(|c| c.case).collect(),
        ..DemoSummary::default()
    };
    let runner = Arc::new(Runner::new(
        client,
        config.content_type,
        format!("demo-{run}"),
        summary,
        total,
        Box::new(progress),
    ));
    let started = Instant::now();
    let version = Arc::new(staff.policy_version.clone());

    // The headquarters director registers themself first: if nothing answers, stop here.
    let mut headquarters = staff.headquarters.clone();
    if !headquarters.is_empty() {
        let first = headquarters.remove(0);
        if let Err(e) = runner.member(&first, &version).await {
            if e.code == docket_bus::codes::UNAVAILABLE {
                return Err(DemoError::Unreachable(e));
            }
        }
    }
    // Then the directors and Senior Reviewing Officials, then everyone the directors register.
    let members = |list: Vec<plan::Member>| Arc::new(list);
    for group in [
        headquarters,
        staff
            .offices
            .iter()
            .flat_map(|(_, m)| m.iter().cloned())
            .collect(),
    ] {
        let version = version.clone();
        drive::parallel(
            &runner,
            members(group),
            config.concurrency,
            move |r, jobs, i| {
                let version = version.clone();
                async move {
                    let _ = r.member(&jobs[i], &version).await;
                }
            },
        )
        .await?;
    }
    drive::parallel(
        &runner,
        Arc::new(cases),
        config.concurrency,
        |r, jobs, i| async move {
            // An unexpected refusal stops the case; it is already counted.
            let _ = r.case(&jobs[i]).await;
        },
    )
    .await?;
    let elapsed = started.elapsed();
    let runner = Arc::into_inner(runner).ok_or_else(|| {
        DemoError::Config("the run's tasks still hold the runner after they ended".into())
    })?;
    let mut summary = runner.into_summary();
    summary.elapsed = elapsed;
    Ok(summary)
}
