//! The case aggregate's events: what each step records, with its stable name and version.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Encounter;
use crate::codec::{event_enum, Upcast};
use crate::policy::{Departure, Guidance};
use crate::values::{
    ANumber, Actor, CaseId, Code, ContentHash, DecisionId, EnforcementAction, FieldOffice,
    PersonId, RecordId, RecordSource,
};

/// `case.opened`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseOpened {
    /// The case.
    pub case: CaseId,
    /// The subject.
    pub a_number: ANumber,
    /// The responsible office.
    pub office: FieldOffice,
    /// The encounter.
    pub encounter: Encounter,
    /// Who opened it.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `case.record_attached`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordAttached {
    /// The record.
    pub record: RecordId,
    /// Its source.
    pub source: RecordSource,
    /// Where it is.
    pub reference: String,
    /// SHA-256 of its content.
    pub content_hash: ContentHash,
    /// Who attached it.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `case.source_unavailable`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceUnavailable {
    /// The source.
    pub source: RecordSource,
    /// Why.
    pub reason: String,
    /// Who said so.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `case.whole_record_attested`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WholeRecordAttested {
    /// The attesting officer.
    pub by: Actor,
    /// The records reviewed.
    pub records: Vec<RecordId>,
    /// Sources with nothing to attach.
    pub unavailable: Vec<RecordSource>,
    /// When.
    pub at: DateTime<Utc>,
}

/// `case.factors_assessed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactorsAssessed {
    /// Factors found present.
    pub factors: Vec<Code>,
    /// The narrative.
    pub narrative: String,
    /// Guidance under the policy in force, or none if no version was in force.
    pub guidance: Option<Guidance>,
    /// Who assessed.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `case.decision_proposed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionProposed {
    /// The decision.
    pub decision: DecisionId,
    /// The action.
    pub action: EnforcementAction,
    /// Factors cited.
    pub cited_factors: Vec<Code>,
    /// The reasoned decision.
    pub reasons: String,
    /// The exigency for a protected area.
    pub protected_area_exception: Option<String>,
    /// Policy version in force, or none.
    pub policy_version: Option<String>,
    /// Guidance under that version.
    pub guidance: Option<Guidance>,
    /// The departure from guidance, if any.
    pub departure: Option<Departure>,
    /// The proposing officer.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `case.decision_approved`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionApproved {
    /// The decision.
    pub decision: DecisionId,
    /// The approving supervisor.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `case.decision_returned`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionReturned {
    /// The decision.
    pub decision: DecisionId,
    /// Why.
    pub reason: String,
    /// The supervisor.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `case.decision_recorded`: the decision, with everything an auditor needs to judge it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecorded {
    /// The decision.
    pub decision: DecisionId,
    /// The action.
    pub action: EnforcementAction,
    /// The deciding officer.
    pub officer: PersonId,
    /// The approving supervisor, if any.
    pub approved_by: Option<PersonId>,
    /// Policy version in force at the decision, or none ("no version in force").
    pub policy_version: Option<String>,
    /// Guidance under that version.
    pub guidance: Option<Guidance>,
    /// The departure from guidance, if any.
    pub departure: Option<Departure>,
    /// Factors cited.
    pub cited_factors: Vec<Code>,
    /// The reasoned decision.
    pub reasons: String,
    /// The exigency for a protected area.
    pub protected_area_exception: Option<String>,
    /// Who recorded it.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `case.closed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseClosed {
    /// Why.
    pub reason: String,
    /// Who.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `case.guidance_recomputed`: the assessment's guidance computed again, by the system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuidanceRecomputed {
    /// Policy version in force at the recomputation, or none.
    pub policy_version: Option<String>,
    /// Guidance under that version for the assessed factors, or none if no version was in force.
    pub guidance: Option<Guidance>,
    /// The assessment's guidance before.
    pub previous: Option<Guidance>,
    /// True when `guidance` differs from `previous`.
    pub changed: bool,
    /// The records attached at the time.
    pub records: Vec<RecordId>,
    /// Sources marked unavailable at the time.
    pub unavailable: Vec<RecordSource>,
    /// Who recomputed (the system).
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

event_enum! {
    /// Events of the case aggregate.
    CaseEvent {
        /// See [`CaseOpened`].
        Opened(CaseOpened) = "case.opened" v 1,
        /// See [`RecordAttached`].
        RecordAttached(RecordAttached) = "case.record_attached" v 1,
        /// See [`SourceUnavailable`].
        SourceUnavailable(SourceUnavailable) = "case.source_unavailable" v 1,
        /// See [`WholeRecordAttested`].
        WholeRecordAttested(WholeRecordAttested) = "case.whole_record_attested" v 1,
        /// See [`FactorsAssessed`].
        FactorsAssessed(FactorsAssessed) = "case.factors_assessed" v 1,
        /// See [`DecisionProposed`].
        DecisionProposed(DecisionProposed) = "case.decision_proposed" v 1,
        /// See [`DecisionApproved`].
        DecisionApproved(DecisionApproved) = "case.decision_approved" v 1,
        /// See [`DecisionReturned`].
        DecisionReturned(DecisionReturned) = "case.decision_returned" v 1,
        /// See [`DecisionRecorded`].
        DecisionRecorded(DecisionRecorded) = "case.decision_recorded" v 1,
        /// See [`CaseClosed`].
        Closed(CaseClosed) = "case.closed" v 1,
        /// See [`GuidanceRecomputed`].
        GuidanceRecomputed(GuidanceRecomputed) = "case.guidance_recomputed" v 1,
    }
}

impl Upcast for CaseEvent {}
