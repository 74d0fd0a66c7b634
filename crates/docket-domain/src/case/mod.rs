//! The case aggregate: a noncitizen's encounter, the whole record, the officer's assessment and
//! the decision, with the guideline rules enforced in `decide`.
//!
//! Rules: no proposal before the whole record is attested (every source attached or marked
//! unavailable); no prohibited ground may be cited; the deciding officer must be trained for the
//! policy version in force; a departure from guidance needs approval by a supervisor who is not
//! the officer; an adverse action in a protected area needs a recorded exception. When no policy
//! version is in force the decision is recorded as such, not refused. Only the system recomputes
//! an assessment's guidance (when the record changes); it never touches the assessed factors.
//!
//! The events are in `event.rs`, re-exported here; this file holds the commands, the state and
//! the rules.

mod event;

pub use event::{
    CaseClosed, CaseEvent, CaseOpened, DecisionApproved, DecisionProposed, DecisionRecorded,
    DecisionReturned, FactorsAssessed, GuidanceRecomputed, RecordAttached, SourceUnavailable,
    WholeRecordAttested,
};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Context, Rejection};
use crate::permissions::CommandKind;
use crate::policy::{CaseFacts, Policy};
use crate::stream::AggregateKind;
use crate::values::{
    text, ANumber, CaseId, Code, ContentHash, DecisionId, EncounterPlace, EnforcementAction,
    FieldOffice, InvalidValue, MannerOfEntry, PersonId, ProtectedArea, RecordId, RecordSource,
};

/// Longest free-text field (reasons, narratives), in characters.
pub const MAX_TEXT: usize = 10_000;

/// Where and how the person was encountered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encounter {
    /// When.
    pub at: DateTime<Utc>,
    /// Where, in words.
    pub location: String,
    /// Border, port of entry or interior.
    pub place: EncounterPlace,
    /// How the person entered, as far as known.
    pub manner_of_entry: MannerOfEntry,
    /// When they entered, if known.
    pub entry_date: Option<NaiveDate>,
    /// The protected area the encounter was in or near, if any.
    pub protected_area: Option<ProtectedArea>,
}

/// Commands of the case aggregate (stream `case/<case id>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaseCommand {
    /// Opens a case.
    Open {
        /// The new case's id.
        case: CaseId,
        /// The subject.
        a_number: ANumber,
        /// The field office responsible.
        office: FieldOffice,
        /// The encounter.
        encounter: Encounter,
    },
    /// Attaches a record by reference and content hash.
    AttachRecord {
        /// The record's id.
        record: RecordId,
        /// Criminal, administrative or investigative.
        source: RecordSource,
        /// Where the record is (a system reference, not the content).
        reference: String,
        /// SHA-256 of the record's content.
        content_hash: ContentHash,
    },
    /// Records that a source has no record to attach, and why.
    MarkSourceUnavailable {
        /// The source.
        source: RecordSource,
        /// Why it is unavailable.
        reason: String,
    },
    /// The acting officer attests to having reviewed the whole record.
    AttestWholeRecord,
    /// Records the factors present, with a narrative; guidance is computed from them.
    AssessFactors {
        /// Factor codes from the policy's catalogue.
        factors: Vec<Code>,
        /// The officer's narrative.
        narrative: String,
    },
    /// Proposes a decision.
    ProposeDecision {
        /// The decision's id.
        decision: DecisionId,
        /// The action (or no action).
        action: EnforcementAction,
        /// Factors the decision rests on.
        cited_factors: Vec<Code>,
        /// The reasoned decision.
        reasons: String,
        /// The exigency that allows action in a protected area.
        protected_area_exception: Option<String>,
    },
    /// A supervisor approves a proposed decision.
    ApproveDecision {
        /// The proposal.
        decision: DecisionId,
    },
    /// A supervisor returns a proposed decision to the officer.
    ReturnDecision {
        /// The proposal.
        decision: DecisionId,
        /// Why.
        reason: String,
    },
    /// Records the proposed (and, where needed, approved) decision.
    RecordDecision {
        /// The proposal.
        decision: DecisionId,
    },
    /// Closes the case.
    Close {
        /// Why.
        reason: String,
    },
    /// The system recomputes the guidance of the current assessment (its factors, the case's
    /// facts, the policy in force now), e.g. after a record is attached or a source marked
    /// unavailable.
    RecomputeGuidance,
}

impl CaseCommand {
    /// The command's catalogue entry.
    pub fn kind(&self) -> CommandKind {
        match self {
            CaseCommand::Open { .. } => CommandKind::CaseOpen,
            CaseCommand::AttachRecord { .. } => CommandKind::CaseAttachRecord,
            CaseCommand::MarkSourceUnavailable { .. } => CommandKind::CaseMarkSourceUnavailable,
            CaseCommand::AttestWholeRecord => CommandKind::CaseAttestWholeRecord,
            CaseCommand::AssessFactors { .. } => CommandKind::CaseAssessFactors,
            CaseCommand::ProposeDecision { .. } => CommandKind::CaseProposeDecision,
            CaseCommand::ApproveDecision { .. } => CommandKind::CaseApproveDecision,
            CaseCommand::ReturnDecision { .. } => CommandKind::CaseReturnDecision,
            CaseCommand::RecordDecision { .. } => CommandKind::CaseRecordDecision,
            CaseCommand::Close { .. } => CommandKind::CaseClose,
            CaseCommand::RecomputeGuidance => CommandKind::CaseRecomputeGuidance,
        }
    }
}

/// A proposal waiting to be recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// What was proposed.
    pub proposed: DecisionProposed,
    /// The supervisor who approved it, if one has.
    pub approved_by: Option<PersonId>,
}

/// A case's state: the fold of its events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Case {
    /// The opening, once opened.
    pub opened: Option<CaseOpened>,
    /// Attached records.
    pub records: Vec<RecordAttached>,
    /// Sources marked unavailable, with the reason.
    pub unavailable: Vec<(RecordSource, String)>,
    /// The officer who attested the whole record (cleared when a record is attached later).
    pub attested_by: Option<PersonId>,
    /// The latest assessment, its guidance as last recomputed.
    pub assessment: Option<FactorsAssessed>,
    /// The record changed (a record attached or a source marked unavailable) since the factors
    /// were assessed or the guidance last recomputed: what the assessment service reacts to.
    pub guidance_outdated: bool,
    /// The pending proposal.
    pub proposal: Option<Proposal>,
    /// Recorded decisions, oldest first.
    pub decisions: Vec<DecisionRecorded>,
    /// True once closed.
    pub closed: bool,
}

impl Case {
    /// Sources neither attached nor marked unavailable.
    pub fn missing_sources(&self) -> Vec<RecordSource> {
        RecordSource::ALL
            .iter()
            .copied()
            .filter(|s| {
                !self.records.iter().any(|r| r.source == *s)
                    && !self.unavailable.iter().any(|(u, _)| u == s)
            })
            .collect()
    }

    /// The facts the policy looks at, with the assessed factors.
    pub fn facts(&self) -> Option<CaseFacts> {
        let opened = self.opened.as_ref()?;
        Some(CaseFacts {
            place: opened.encounter.place,
            manner_of_entry: opened.encounter.manner_of_entry,
            entry_date: opened.encounter.entry_date,
            factors: self
                .assessment
                .as_ref()
                .map(|a| a.factors.clone())
                .unwrap_or_default(),
        })
    }

    fn open_case(&self) -> Result<&CaseOpened, Rejection> {
        match &self.opened {
            None => Err(Rejection::state("the case is not open")),
            Some(_) if self.closed => Err(Rejection::rule("case_closed", "the case is closed")),
            Some(o) => Ok(o),
        }
    }

    fn pending(&self, decision: DecisionId) -> Result<&Proposal, Rejection> {
        match &self.proposal {
            Some(p) if p.proposed.decision == decision => Ok(p),
            Some(p) => Err(Rejection::state(format!(
                "decision {decision} is not the pending proposal ({} is)",
                p.proposed.decision
            ))),
            None => Err(Rejection::state(format!(
                "decision {decision} is not pending"
            ))),
        }
    }
}

/// Refuses prohibited grounds among `codes`, under every known policy version.
fn no_prohibited(codes: &[Code], ctx: &Context<'_>) -> Result<(), Rejection> {
    for code in codes {
        if ctx
            .policies
            .versions()
            .iter()
            .any(|p| p.is_prohibited(code))
        {
            return Err(Rejection::rule(
                "prohibited_ground_cited",
                format!("{code} is a prohibited ground and can never be cited"),
            ));
        }
    }
    Ok(())
}

/// Checks that the acting officer is registered and trained for `policy`.
fn trained(ctx: &Context<'_>, policy: Option<&Policy>) -> Result<(), Rejection> {
    let Some(profile) = ctx.directory.officer(ctx.actor.person) else {
        return Err(Rejection::rule(
            "officer_not_registered",
            format!("person {} is not a registered officer", ctx.actor.person),
        ));
    };
    if let Some(policy) = policy {
        if !profile.trained_for.contains(&policy.version) {
            return Err(Rejection::rule(
                "officer_not_trained",
                format!(
                    "officer {} has no training for policy {} in force",
                    ctx.actor.person, policy.version
                ),
            ));
        }
    }
    Ok(())
}

impl Aggregate for Case {
    const KIND: AggregateKind = AggregateKind::Case;

    type Command = CaseCommand;
    type Event = CaseEvent;

    fn decide(
        &self,
        command: &CaseCommand,
        ctx: &Context<'_>,
    ) -> Result<Vec<CaseEvent>, Rejection> {
        ctx.authorize(command.kind())?;
        let (by, at) = (ctx.actor, ctx.now);
        let event = match command {
            CaseCommand::Open {
                case,
                a_number,
                office,
                encounter,
            } => {
                if self.opened.is_some() {
                    return Err(Rejection::state(format!("case {case} is already open")));
                }
                if encounter.at > ctx.now {
                    return Err(InvalidValue::new("encounter.at", "is in the future").into());
                }
                if encounter
                    .entry_date
                    .is_some_and(|d| d > encounter.at.date_naive())
                {
                    return Err(InvalidValue::new(
                        "encounter.entry_date",
                        "is after the encounter",
                    )
                    .into());
                }
                let mut encounter = encounter.clone();
                encounter.location = text("encounter.location", &encounter.location, 500)?;
                CaseEvent::Opened(CaseOpened {
                    case: *case,
                    a_number: *a_number,
                    office: *office,
                    encounter,
                    by,
                    at,
                })
            }
            CaseCommand::AttachRecord {
                record,
                source,
                reference,
                content_hash,
            } => {
                self.open_case()?;
                if self.records.iter().any(|r| r.record == *record) {
                    return Err(Rejection::state(format!(
                        "record {record} is already attached"
                    )));
                }
                let reference = text("reference", reference, 500)?;
                CaseEvent::RecordAttached(RecordAttached {
                    record: *record,
                    source: *source,
                    reference,
                    content_hash: *content_hash,
                    by,
                    at,
                })
            }
            CaseCommand::MarkSourceUnavailable { source, reason } => {
                self.open_case()?;
                if self.records.iter().any(|r| r.source == *source) {
                    return Err(Rejection::state(format!(
                        "a {source} record is already attached"
                    )));
                }
                let reason = text("reason", reason, MAX_TEXT)?;
                CaseEvent::SourceUnavailable(SourceUnavailable {
                    source: *source,
                    reason,
                    by,
                    at,
                })
            }
            CaseCommand::AttestWholeRecord => {
                self.open_case()?;
                let missing = self.missing_sources();
                if !missing.is_empty() {
                    let names: Vec<_> = missing.iter().map(|s| s.code()).collect();
                    return Err(Rejection::rule(
                        "whole_record_incomplete",
                        format!(
                            "no record attached or marked unavailable for: {}",
                            names.join(", ")
                        ),
                    ));
                }
                CaseEvent::WholeRecordAttested(WholeRecordAttested {
                    by,
                    records: self.records.iter().map(|r| r.record).collect(),
                    unavailable: self.unavailable.iter().map(|(s, _)| *s).collect(),
                    at,
                })
            }
            CaseCommand::AssessFactors { factors, narrative } => {
                self.open_case()?;
                no_prohibited(factors, ctx)?;
                let narrative = text("narrative", narrative, MAX_TEXT)?;
                let policy = ctx.policies.in_force_at(ctx.now);
                let guidance = match (policy, self.facts()) {
                    (Some(policy), Some(mut facts)) => {
                        facts.factors = factors.clone();
                        Some(policy.evaluate(&facts)?)
                    }
                    _ => None,
                };
                CaseEvent::FactorsAssessed(FactorsAssessed {
                    factors: factors.clone(),
                    narrative,
                    guidance,
                    by,
                    at,
                })
            }
            CaseCommand::ProposeDecision {
                decision,
                action,
                cited_factors,
                reasons,
                protected_area_exception,
            } => {
                let opened = self.open_case()?;
                if let Some(p) = &self.proposal {
                    return Err(Rejection::state(format!(
                        "decision {} is already pending",
                        p.proposed.decision
                    )));
                }
                if self.decisions.iter().any(|d| d.decision == *decision) {
                    return Err(Rejection::state(format!(
                        "decision {decision} is already recorded"
                    )));
                }
                if self.attested_by.is_none() {
                    return Err(Rejection::rule(
                        "whole_record_not_attested",
                        "the whole record must be attested before a decision is proposed",
                    ));
                }
                let Some(assessment) = &self.assessment else {
                    return Err(Rejection::rule(
                        "factors_not_assessed",
                        "the factors must be assessed before a decision is proposed",
                    ));
                };
                no_prohibited(cited_factors, ctx)?;
                if let Some(c) = cited_factors
                    .iter()
                    .find(|c| !assessment.factors.contains(c))
                {
                    return Err(Rejection::rule(
                        "cited_factor_not_assessed",
                        format!("{c} is cited but was not found present in the assessment"),
                    ));
                }
                let policy = ctx.policies.in_force_at(ctx.now);
                trained(ctx, policy)?;
                let reasons = text("reasons", reasons, MAX_TEXT)?;
                let protected_area_exception = match protected_area_exception {
                    Some(e) => Some(text("protected_area_exception", e, MAX_TEXT)?),
                    None => None,
                };
                if let Some(area) = opened.encounter.protected_area {
                    if action.is_adverse() && protected_area_exception.is_none() {
                        return Err(Rejection::rule(
                            "protected_area_exception_missing",
                            format!("{action} at or near a protected area ({area}) needs a recorded exception"),
                        ));
                    }
                }
                let (guidance, departure) =
                    crate::policy::guide(policy, self.facts().as_ref(), *action)?;
                CaseEvent::DecisionProposed(DecisionProposed {
                    decision: *decision,
                    action: *action,
                    cited_factors: cited_factors.clone(),
                    reasons,
                    protected_area_exception,
                    policy_version: policy.map(|p| p.version.clone()),
                    guidance,
                    departure,
                    by,
                    at,
                })
            }
            CaseCommand::ApproveDecision { decision } => {
                self.open_case()?;
                let pending = self.pending(*decision)?;
                if pending.proposed.by.person == ctx.actor.person {
                    return Err(Rejection::rule(
                        "approver_not_independent",
                        "a supervisor cannot approve their own proposal",
                    ));
                }
                if pending.approved_by.is_some() {
                    return Err(Rejection::state(format!(
                        "decision {decision} is already approved"
                    )));
                }
                CaseEvent::DecisionApproved(DecisionApproved {
                    decision: *decision,
                    by,
                    at,
                })
            }
            CaseCommand::ReturnDecision { decision, reason } => {
                self.open_case()?;
                let pending = self.pending(*decision)?;
                if pending.proposed.by.person == ctx.actor.person {
                    return Err(Rejection::rule(
                        "approver_not_independent",
                        "a supervisor cannot return their own proposal",
                    ));
                }
                let reason = text("reason", reason, MAX_TEXT)?;
                CaseEvent::DecisionReturned(DecisionReturned {
                    decision: *decision,
                    reason,
                    by,
                    at,
                })
            }
            CaseCommand::RecordDecision { decision } => {
                self.open_case()?;
                let pending = self.pending(*decision)?;
                let proposed = &pending.proposed;
                if proposed.by.person != ctx.actor.person {
                    return Err(Rejection::rule(
                        "not_proposing_officer",
                        "only the officer who proposed a decision records it",
                    ));
                }
                let policy = ctx.policies.in_force_at(ctx.now);
                if policy.map(|p| &p.version) != proposed.policy_version.as_ref() {
                    return Err(Rejection::rule(
                        "policy_changed_since_proposal",
                        "the policy version in force changed since the proposal; propose again",
                    ));
                }
                trained(ctx, policy)?;
                if proposed.departure.is_some_and(|d| d.needs_approval)
                    && pending.approved_by.is_none()
                {
                    return Err(Rejection::rule(
                        "departure_needs_approval",
                        "this decision departs from guidance and needs a supervisor's approval first",
                    ));
                }
                CaseEvent::DecisionRecorded(DecisionRecorded {
                    decision: *decision,
                    action: proposed.action,
                    officer: proposed.by.person,
                    approved_by: pending.approved_by,
                    policy_version: proposed.policy_version.clone(),
                    guidance: proposed.guidance.clone(),
                    departure: proposed.departure,
                    cited_factors: proposed.cited_factors.clone(),
                    reasons: proposed.reasons.clone(),
                    protected_area_exception: proposed.protected_area_exception.clone(),
                    by,
                    at,
                })
            }
            CaseCommand::Close { reason } => {
                self.open_case()?;
                if let Some(p) = &self.proposal {
                    return Err(Rejection::state(format!(
                        "decision {} is pending; record or return it first",
                        p.proposed.decision
                    )));
                }
                let reason = text("reason", reason, MAX_TEXT)?;
                CaseEvent::Closed(CaseClosed { reason, by, at })
            }
            CaseCommand::RecomputeGuidance => {
                self.open_case()?;
                let Some(assessment) = &self.assessment else {
                    return Err(Rejection::rule(
                        "factors_not_assessed",
                        "the factors must be assessed before guidance is recomputed",
                    ));
                };
                // As for `AssessFactors`: the facts carry the assessed factors.
                let policy = ctx.policies.in_force_at(ctx.now);
                let guidance = match (policy, self.facts()) {
                    (Some(policy), Some(facts)) => Some(policy.evaluate(&facts)?),
                    _ => None,
                };
                let previous = assessment.guidance.clone();
                CaseEvent::GuidanceRecomputed(GuidanceRecomputed {
                    policy_version: policy.map(|p| p.version.clone()),
                    changed: previous != guidance,
                    guidance,
                    previous,
                    records: self.records.iter().map(|r| r.record).collect(),
                    unavailable: self.unavailable.iter().map(|(s, _)| *s).collect(),
                    by,
                    at,
                })
            }
        };
        Ok(vec![event])
    }

    fn evolve(mut self, event: &CaseEvent) -> Self {
        match event {
            CaseEvent::Opened(e) => self.opened = Some(e.clone()),
            CaseEvent::RecordAttached(e) => {
                self.unavailable.retain(|(s, _)| *s != e.source);
                self.records.push(e.clone());
                // New material: the whole record must be reviewed again.
                self.attested_by = None;
                self.guidance_outdated = self.assessment.is_some();
            }
            CaseEvent::SourceUnavailable(e) => {
                self.unavailable.retain(|(s, _)| *s != e.source);
                self.unavailable.push((e.source, e.reason.clone()));
                self.attested_by = None;
                self.guidance_outdated = self.assessment.is_some();
            }
            CaseEvent::WholeRecordAttested(e) => self.attested_by = Some(e.by.person),
            CaseEvent::FactorsAssessed(e) => {
                self.assessment = Some(e.clone());
                self.guidance_outdated = false;
            }
            CaseEvent::DecisionProposed(e) => {
                self.proposal = Some(Proposal {
                    proposed: e.clone(),
                    approved_by: None,
                })
            }
            CaseEvent::DecisionApproved(e) => {
                if let Some(p) = self
                    .proposal
                    .as_mut()
                    .filter(|p| p.proposed.decision == e.decision)
                {
                    p.approved_by = Some(e.by.person);
                }
            }
            CaseEvent::DecisionReturned(e) => {
                if self
                    .proposal
                    .as_ref()
                    .is_some_and(|p| p.proposed.decision == e.decision)
                {
                    self.proposal = None;
                }
            }
            CaseEvent::DecisionRecorded(e) => {
                self.proposal = None;
                self.decisions.push(e.clone());
            }
            CaseEvent::Closed(_) => self.closed = true,
            CaseEvent::GuidanceRecomputed(e) => {
                // The assessment keeps its factors and narrative; only its guidance changes.
                if let Some(a) = self.assessment.as_mut() {
                    a.guidance = e.guidance.clone();
                }
                self.guidance_outdated = false;
            }
        }
        self
    }
}

impl crate::aggregate::AggregateCommand for CaseCommand {
    fn kind(&self) -> CommandKind {
        CaseCommand::kind(self)
    }
}
