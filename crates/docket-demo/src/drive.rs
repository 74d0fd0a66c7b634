//! Sending the planned workload: every command with an idempotency key, retried on `unavailable`,
//! timed and counted; staff first, then the cases, a bounded number at a time.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use docket_bus::{BusError, Client, CommandReply, ContentType, DomainCommand, Transport};
use docket_domain::case::CaseCommand;
use docket_domain::officer::OfficerCommand;
use docket_domain::representation::RepresentationCommand;
use docket_domain::review::{DeadlineKind, RequesterCapacity, ReviewCommand};
use docket_domain::values::{Actor, EnforcementAction, PersonId, RecordSource, Role};
use uuid::Uuid;

use crate::plan::{CasePlan, Member, Proposal, RecordStep, Requester, Supervision, TierEnd};
use crate::summary::DemoSummary;

/// Attempts of one command when the answer is retryable (`unavailable`, `conflict`).
const ATTEMPTS: u32 = 5;

/// Codes of the refusals the workload plans.
pub(crate) const NOT_TRAINED: &str = "officer_not_trained";
pub(crate) const EXCEPTION_MISSING: &str = "protected_area_exception_missing";
const NEEDS_APPROVAL: &str = "departure_needs_approval";

/// A case stops at an unexpected refusal (already counted): what follows would be refused too.
#[derive(Debug)]
pub(crate) struct Stop;

type Progress = Box<dyn Fn(usize, usize) + Send + Sync>;

/// Sends commands and keeps the tally.
pub(crate) struct Runner<T> {
    client: Client<T>,
    content_type: ContentType,
    /// Prefix of every idempotency key of the run.
    prefix: String,
    summary: Mutex<DemoSummary>,
    done: AtomicUsize,
    total: AtomicUsize,
    progress: Progress,
}

fn person(id: PersonId, role: Role) -> Actor {
    Actor { person: id, role }
}

fn system() -> Actor {
    person(PersonId(Uuid::nil()), Role::System)
}

impl<T: Transport> Runner<T> {
    pub(crate) fn new(
        client: Client<T>,
        content_type: ContentType,
        prefix: String,
        summary: DemoSummary,
        total: usize,
        progress: Progress,
    ) -> Self {
        Runner {
            client,
            content_type,
            prefix,
            summary: Mutex::new(summary),
            done: AtomicUsize::new(0),
            total: AtomicUsize::new(total),
            progress,
        }
    }

    /// Updates the tally.
    fn note(&self, f: impl FnOnce(&mut DemoSummary)) {
        // A panic while holding the lock cannot leave the counters inconsistent in a way that
        // matters more than losing the run: keep counting.
        f(&mut self.summary.lock().unwrap_or_else(PoisonError::into_inner));
    }

    pub(crate) fn into_summary(self) -> DemoSummary {
        self.summary
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends one command under the key `<prefix>-<step>`, retrying retryable answers with the
    /// same key, and counts the result. `expect` names the refusal the workload plans, if any.
    pub(crate) async fn send(
        &self,
        actor: Actor,
        command: DomainCommand,
        step: &str,
        expect: Option<&'static str>,
    ) -> Result<CommandReply, BusError> {
        let key = format!("{}-{step}", self.prefix);
        let name = command.kind().name();
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            let started = Instant::now();
            let result = self
                .client
                .send(&actor, &command, self.content_type, Some(&key))
                .await;
            let rtt = started.elapsed();
            self.note(|s| s.latencies.entry(name).or_default().push(rtt));
            match result {
                Err(e) if e.is_retryable() && attempt < ATTEMPTS => {
                    self.note(|s| s.retries += 1);
                    tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
                }
                other => break other,
            }
        };
        self.note(|s| {
            s.sent += 1;
            match &result {
                Ok(reply) => {
                    s.accepted += 1;
                    s.duplicates += usize::from(reply.duplicate);
                    if let Some(code) = expect {
                        *s.expected_but_accepted.entry(code.to_owned()).or_default() += 1;
                    }
                }
                Err(e) => {
                    *s.refused.entry(e.code.clone()).or_default() += 1;
                    if expect == Some(e.code.as_str()) {
                        *s.expected_refusals.entry(e.code.clone()).or_default() += 1;
                    } else {
                        *s.unexpected_refusals.entry(e.code.clone()).or_default() += 1;
                        if s.problems.len() < 10 {
                            s.problems
                                .push(format!("{name} ({step}): {}: {}", e.code, e.message));
                        }
                    }
                }
            }
        });
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.total.fetch_max(done, Ordering::Relaxed).max(done);
        (self.progress)(done, total);
        result
    }

    /// Sends a command that must be accepted.
    async fn ok(
        &self,
        actor: Actor,
        command: DomainCommand,
        step: &str,
    ) -> Result<CommandReply, Stop> {
        self.send(actor, command, step, None)
            .await
            .map_err(|_| Stop)
    }

    /// Sends a command the workload expects refused with `code`: true if it was, false if it
    /// was accepted after all.
    async fn refused_as(
        &self,
        actor: Actor,
        command: DomainCommand,
        step: &str,
        code: &'static str,
    ) -> Result<bool, Stop> {
        match self.send(actor, command, step, Some(code)).await {
            Ok(_) => Ok(false),
            Err(e) if e.code == code => Ok(true),
            Err(_) => Err(Stop),
        }
    }

    /// Registers one member of staff and records their training. The first registration of the
    /// run also tells whether anything answers at all.
    pub(crate) async fn member(&self, m: &Member, policy_version: &str) -> Result<(), BusError> {
        let registrar = person(m.registrar, Role::FieldOfficeDirector);
        let short = m.person.0.simple().to_string();
        let register = OfficerCommand::Register {
            person: m.person,
            office: m.office,
            role: m.role,
        };
        self.send(
            registrar,
            DomainCommand::officer(m.person, register),
            &format!("s{short}-register"),
            None,
        )
        .await?;
        self.note(|s| {
            *s.staff.entry(m.role.code()).or_default() += 1;
            if m.role == Role::Officer && m.trainings.is_empty() {
                s.untrained_officers += 1;
            }
        });
        for (k, (module, day)) in m.trainings.iter().enumerate() {
            let train = OfficerCommand::CompleteTraining {
                policy_version: policy_version.to_owned(),
                module: (*module).to_owned(),
                completed_on: *day,
            };
            if self
                .send(
                    registrar,
                    DomainCommand::officer(m.person, train),
                    &format!("s{short}-train{k}"),
                    None,
                )
                .await
                .is_ok()
            {
                self.note(|s| s.trainings += 1);
            }
        }
        Ok(())
    }

    /// Drives one case from opening to the end of its review.
    pub(crate) async fn case(&self, plan: &CasePlan) -> Result<(), Stop> {
        let i = plan.index;
        let step = |s: &str| format!("c{i}-{s}");
        let c = |command| DomainCommand::case(plan.case, command);
        let clerk = person(plan.clerk, Role::IntakeClerk);
        let officer = person(plan.officer, Role::Officer);
        let supervisor = person(plan.supervisor, Role::Supervisor);

        self.ok(
            clerk,
            c(CaseCommand::Open {
                case: plan.case,
                a_number: plan.a_number,
                office: plan.office,
                encounter: plan.encounter.clone(),
            }),
            &step("open"),
        )
        .await?;
        self.note(|s| s.cases_opened += 1);
        for (k, record) in plan.records.iter().enumerate() {
            match record {
                RecordStep::Attach {
                    record,
                    source,
                    reference,
                    content_hash,
                } => {
                    let command = CaseCommand::AttachRecord {
                        record: *record,
                        source: *source,
                        reference: reference.clone(),
                        content_hash: *content_hash,
                    };
                    self.ok(clerk, c(command), &step(&format!("record{k}")))
                        .await?;
                    self.note(|s| {
                        *s.records_attached.entry(source_code(*source)).or_default() += 1
                    });
                }
                RecordStep::Unavailable { source, reason } => {
                    let by = if plan.unavailable_by_clerk {
                        clerk
                    } else {
                        officer
                    };
                    let command = CaseCommand::MarkSourceUnavailable {
                        source: *source,
                        reason: reason.clone(),
                    };
                    self.ok(by, c(command), &step(&format!("record{k}")))
                        .await?;
                    self.note(|s| {
                        *s.sources_unavailable
                            .entry(source_code(*source))
                            .or_default() += 1
                    });
                }
            }
        }
        self.ok(officer, c(CaseCommand::AttestWholeRecord), &step("attest"))
            .await?;
        self.ok(
            officer,
            c(CaseCommand::AssessFactors {
                factors: plan.factors.clone(),
                narrative: plan.narrative.clone(),
            }),
            &step("assess"),
        )
        .await?;

        let mut proposer = plan.officer;
        let mut recorded: Option<&Proposal> = None;
        for (n, p) in plan.proposals.iter().enumerate() {
            let propose = |exception: Option<String>| {
                c(CaseCommand::ProposeDecision {
                    decision: p.decision,
                    action: p.action,
                    cited_factors: p.cited.clone(),
                    reasons: p.reasons.clone(),
                    protected_area_exception: exception,
                })
            };
            let mut pending = false;
            if p.forget_exception {
                // The officer forgets to record the exigency and is told so.
                pending = !self
                    .refused_as(
                        person(proposer, Role::Officer),
                        propose(None),
                        &step(&format!("p{n}-no-exception")),
                        EXCEPTION_MISSING,
                    )
                    .await?;
            }
            if !pending && proposer == plan.officer && !plan.officer_trained {
                // An untrained officer is refused; a trained colleague takes the case over.
                let refused = self
                    .refused_as(
                        person(proposer, Role::Officer),
                        propose(p.exception.clone()),
                        &step(&format!("p{n}-untrained")),
                        NOT_TRAINED,
                    )
                    .await?;
                if refused {
                    proposer = plan.backup;
                    self.note(|s| s.cases_reassigned += 1);
                } else {
                    pending = true;
                    self.note(|s| s.no_policy_in_force_observed = true);
                }
            }
            if !pending {
                self.ok(
                    person(proposer, Role::Officer),
                    propose(p.exception.clone()),
                    &step(&format!("p{n}")),
                )
                .await?;
            }
            if p.departs {
                self.note(|s| s.departures_proposed += 1);
            }
            match &p.supervision {
                Supervision::None => {}
                Supervision::Approve => {
                    let approve = CaseCommand::ApproveDecision {
                        decision: p.decision,
                    };
                    self.ok(supervisor, c(approve), &step(&format!("p{n}-approve")))
                        .await?;
                    self.note(|s| s.departures_approved += 1);
                }
                Supervision::Return(reason) => {
                    let back = CaseCommand::ReturnDecision {
                        decision: p.decision,
                        reason: reason.clone(),
                    };
                    self.ok(supervisor, c(back), &step(&format!("p{n}-return")))
                        .await?;
                    self.note(|s| s.departures_returned += 1);
                    continue;
                }
            }
            let record = || {
                c(CaseCommand::RecordDecision {
                    decision: p.decision,
                })
            };
            let by = person(proposer, Role::Officer);
            match self
                .send(by, record(), &step(&format!("p{n}-record")), None)
                .await
            {
                Ok(_) => {}
                Err(e) if e.code == NEEDS_APPROVAL => {
                    // The system's guidance differs from the demo's (its clock puts another
                    // version in force): get the approval after all.
                    let approve = CaseCommand::ApproveDecision {
                        decision: p.decision,
                    };
                    self.ok(supervisor, c(approve), &step(&format!("p{n}-late-approve")))
                        .await?;
                    self.ok(by, record(), &step(&format!("p{n}-record-approved")))
                        .await?;
                }
                Err(_) => return Err(Stop),
            }
            recorded = Some(p);
        }
        let Some(decision) = recorded else {
            return Err(Stop);
        };
        let priority = plan
            .priority
            .map_or(crate::summary::NO_VERSION, |p| p.code());
        self.note(|s| {
            s.cases_decided += 1;
            *s.decisions_by_action
                .entry(decision.action.code())
                .or_default() += 1;
            *s.decisions_by_priority.entry(priority).or_default() += 1;
            *s.decisions_by_office.entry(plan.office.code()).or_default() += 1;
            s.departures_recorded += usize::from(decision.departs);
        });

        if let Some(g) = &plan.g28 {
            let r =
                |command| DomainCommand::representation(plan.a_number, g.representative, command);
            self.ok(
                clerk,
                r(RepresentationCommand::RecordG28 {
                    a_number: plan.a_number,
                    representative: g.representative,
                    capacity: g.capacity,
                    signed_on: g.signed_on,
                }),
                &step("g28"),
            )
            .await?;
            self.note(|s| s.g28_recorded += 1);
            if let Some(reason) = &g.withdraw {
                self.ok(
                    person(g.representative, Role::Requester),
                    r(RepresentationCommand::WithdrawG28 {
                        reason: reason.clone(),
                    }),
                    &step("g28-withdraw"),
                )
                .await?;
                self.note(|s| s.g28_withdrawn += 1);
            }
        }

        match &plan.review {
            Some(_) if decision.action == EnforcementAction::NoAction => Ok(()),
            Some(review) => self.review(plan, decision, review).await,
            None => Ok(()),
        }
    }

    async fn review(
        &self,
        plan: &CasePlan,
        decision: &Proposal,
        r: &crate::plan::ReviewPlan,
    ) -> Result<(), Stop> {
        let i = plan.index;
        let step = |s: &str| format!("c{i}-review-{s}");
        let rv = |command| DomainCommand::review(r.review, command);
        let (requester, capacity) = match (r.requester, &plan.g28) {
            (Requester::Representative, Some(g)) => {
                (g.representative, RequesterCapacity::Representative)
            }
            _ => (plan.noncitizen, RequesterCapacity::Noncitizen),
        };
        let requester = person(requester, Role::Requester);
        let director = person(plan.director, Role::FieldOfficeDirector);
        let reviewer = person(r.reviewer, Role::FirstTierReviewer);
        self.ok(
            requester,
            rv(ReviewCommand::Request {
                review: r.review,
                a_number: plan.a_number,
                capacity,
                case: plan.case,
                decision: decision.decision,
                action: decision.action,
                grounds: r.grounds.clone(),
                preferred_language: r.language.clone(),
            }),
            &step("request"),
        )
        .await?;
        self.note(|s| *s.reviews_requested.entry(capacity.code()).or_default() += 1);
        if !r.acknowledge {
            self.note(|s| {
                *s.deadlines_running
                    .entry(DeadlineKind::Acknowledge.code())
                    .or_default() += 1;
                *s.deadlines_running
                    .entry(DeadlineKind::Tier1Decision.code())
                    .or_default() += 1;
            });
            return Ok(());
        }
        self.ok(
            system(),
            rv(ReviewCommand::Acknowledge),
            &step("acknowledge"),
        )
        .await?;
        self.note(|s| s.reviews_acknowledged += 1);
        if let Some(reason) = r.prioritise {
            self.ok(
                director,
                rv(ReviewCommand::Prioritise { reason }),
                &step("prioritise"),
            )
            .await?;
            self.note(|s| *s.reviews_prioritised.entry(reason.code()).or_default() += 1);
        }
        self.ok(
            director,
            rv(ReviewCommand::AssignReviewer {
                reviewer: r.reviewer,
            }),
            &step("assign"),
        )
        .await?;
        self.note(|s| s.reviewers_assigned += 1);
        if let Some((question, answer)) = &r.ask {
            self.information(reviewer, requester, question, answer, &step("t1"), &rv)
                .await?;
        }
        if !self
            .tier_end(&r.tier1, reviewer, requester, 1, &step("t1"), &rv)
            .await?
        {
            return Ok(());
        }
        let Some(t2) = &r.tier2 else {
            return Ok(());
        };
        self.ok(
            requester,
            rv(ReviewCommand::RequestTier2 {
                grounds: t2.grounds.clone(),
            }),
            &step("t2-request"),
        )
        .await?;
        self.note(|s| s.tier2_requested += 1);
        self.ok(
            person(t2.assigner, Role::SeniorReviewingOfficial),
            rv(ReviewCommand::AssignSeniorOfficial {
                official: t2.official,
            }),
            &step("t2-assign"),
        )
        .await?;
        self.note(|s| s.senior_officials_assigned += 1);
        let official = person(t2.official, Role::SeniorReviewingOfficial);
        if let Some((question, answer)) = &t2.ask {
            self.information(official, requester, question, answer, &step("t2"), &rv)
                .await?;
        }
        self.tier_end(&t2.end, official, requester, 2, &step("t2"), &rv)
            .await?;
        Ok(())
    }

    async fn information(
        &self,
        reviewer: Actor,
        requester: Actor,
        question: &str,
        answer: &str,
        step: &str,
        rv: &impl Fn(ReviewCommand) -> DomainCommand,
    ) -> Result<(), Stop> {
        self.ok(
            reviewer,
            rv(ReviewCommand::RequestInformation {
                question: question.to_owned(),
            }),
            &format!("{step}-ask"),
        )
        .await?;
        self.note(|s| s.information_requested += 1);
        self.ok(
            requester,
            rv(ReviewCommand::ProvideInformation {
                information: answer.to_owned(),
            }),
            &format!("{step}-answer"),
        )
        .await?;
        self.note(|s| s.information_provided += 1);
        Ok(())
    }

    /// Ends a tier as planned; true if it was decided (the review may go on).
    async fn tier_end(
        &self,
        end: &TierEnd,
        reviewer: Actor,
        requester: Actor,
        tier: u8,
        step: &str,
        rv: &impl Fn(ReviewCommand) -> DomainCommand,
    ) -> Result<bool, Stop> {
        match end {
            TierEnd::Open => {
                let kind = if tier == 1 {
                    DeadlineKind::Tier1Decision
                } else {
                    DeadlineKind::Tier2Decision
                };
                self.note(|s| *s.deadlines_running.entry(kind.code()).or_default() += 1);
                Ok(false)
            }
            TierEnd::Withdrawn(reason) => {
                self.ok(
                    requester,
                    rv(ReviewCommand::Withdraw {
                        reason: Some(reason.clone()),
                    }),
                    &format!("{step}-withdraw"),
                )
                .await?;
                self.note(|s| s.reviews_withdrawn += 1);
                Ok(false)
            }
            TierEnd::Decided {
                outcome,
                referred_to,
                reasons,
            } => {
                let (outcome, referred_to, reasons) = (*outcome, *referred_to, reasons.clone());
                let command = if tier == 1 {
                    ReviewCommand::DecideTier1 {
                        outcome,
                        referred_to,
                        reasons,
                    }
                } else {
                    ReviewCommand::DecideTier2 {
                        outcome,
                        referred_to,
                        reasons,
                    }
                };
                self.ok(reviewer, rv(command), &format!("{step}-decide"))
                    .await?;
                self.note(|s| {
                    let map = if tier == 1 {
                        &mut s.tier1_outcomes
                    } else {
                        &mut s.tier2_outcomes
                    };
                    *map.entry(outcome.code()).or_default() += 1;
                });
                Ok(true)
            }
        }
    }
}

fn source_code(source: RecordSource) -> &'static str {
    source.code()
}

/// Runs `job(runner, i)` for every `i` in `0..count`, at most `concurrency` at a time, each on
/// its own task so that the work spreads over the runtime's threads.
pub(crate) async fn parallel<T, J, F, Fut>(
    runner: &Arc<Runner<T>>,
    jobs: Arc<Vec<J>>,
    concurrency: usize,
    job: F,
) -> Result<(), tokio::task::JoinError>
where
    T: Transport + 'static,
    J: Send + Sync + 'static,
    F: Fn(Arc<Runner<T>>, Arc<Vec<J>>, usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.clamp(1, jobs.len().max(1)) {
        let (runner, jobs, next, job) = (runner.clone(), jobs.clone(), next.clone(), job.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= jobs.len() {
                    break;
                }
                job(runner.clone(), jobs.clone(), i).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done?;
    }
    Ok(())
}
