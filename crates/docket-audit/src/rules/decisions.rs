//! The decision rules (`decision_policy_version`, `decision_officer_trained`,
//! `departure_approved`), and re-deriving a decision's guidance and departure from what the
//! case recorded ([`rederive`], [`ProposalFacts`]), which `audit consistency`
//! ([`crate::inspect::consistency`]) shares.
//!
//! The domain computes a decision's guidance and departure when it is proposed, from the case's
//! facts then (the encounter and the factors assessed), under the version in force
//! ([`docket_domain::policy::guide`]); recording the decision copies them, and the version in
//! force must not have changed in between. Re-deriving does the same from the log: the facts as
//! the case held them when the decision was proposed, the version in force at the decision's
//! commit time.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use docket_domain::case::{Case, CaseEvent, DecisionRecorded};
use docket_domain::policy::{guide, CaseFacts, Departure, Guidance, Policy, PolicySet};
use docket_domain::values::{DecisionId, EnforcementAction};
use docket_domain::{Directory, InvalidValue, Role};

use super::{
    fail, Rule, RuleChecker, RuleFailure, DECISION_OFFICER_TRAINED, DECISION_POLICY_VERSION,
    DEPARTURE_APPROVED,
};

/// A decision's guidance and departure, re-derived.
#[derive(Clone, Debug)]
pub struct Rederived<'p> {
    /// The policy version in force at the decision's time.
    pub policy: Option<&'p Policy>,
    /// The guidance of the case's facts under it.
    pub guidance: Option<Guidance>,
    /// The departure of the decision's action from that guidance.
    pub departure: Option<Departure>,
}

/// Re-derives a decision's guidance and whether its `action` departs from it: from `facts`, the
/// case's facts its proposal was judged on ([`ProposalFacts::for_decision`]), under the
/// version of `policies` in force at `at`. An error when the recorded factors do not evaluate
/// under that version (a factor it does not know, or a prohibited ground).
pub fn rederive<'p>(
    policies: &'p PolicySet,
    at: DateTime<Utc>,
    facts: Option<&CaseFacts>,
    action: EnforcementAction,
) -> Result<Rederived<'p>, InvalidValue> {
    let policy = policies.in_force_at(at);
    let (guidance, departure) = guide(policy, facts, action)?;
    Ok(Rederived {
        policy,
        guidance,
        departure,
    })
}

/// The facts each case's pending proposal was judged on: the case's facts as they stood when
/// the decision was proposed. The factors may be assessed again while a proposal waits; the
/// decision recorded still carries the proposal's guidance.
#[derive(Debug, Default)]
pub struct ProposalFacts {
    pending: HashMap<String, (DecisionId, Option<CaseFacts>)>,
}

impl ProposalFacts {
    /// Notes one event of the case `stream`, whose state just before it was `before`.
    pub fn note(&mut self, stream: &str, before: &Case, event: &CaseEvent) {
        match event {
            CaseEvent::DecisionProposed(p) => {
                self.pending
                    .insert(stream.to_owned(), (p.decision, before.facts()));
            }
            CaseEvent::DecisionReturned(e) => self.settled(stream, e.decision),
            CaseEvent::DecisionRecorded(e) => self.settled(stream, e.decision),
            _ => {}
        }
    }

    fn settled(&mut self, stream: &str, decision: DecisionId) {
        if self
            .pending
            .get(stream)
            .is_some_and(|(pending, _)| *pending == decision)
        {
            self.pending.remove(stream);
        }
    }

    /// The facts the decision `decision` of the case `stream` is judged on: those of its
    /// proposal, or, with no proposal of it on record, the case's facts `now`.
    pub fn for_decision(
        &self,
        stream: &str,
        decision: DecisionId,
        now: &Case,
    ) -> Option<CaseFacts> {
        match self.pending.get(stream) {
            Some((pending, facts)) if *pending == decision => facts.clone(),
            _ => now.facts(),
        }
    }
}

impl RuleChecker {
    /// Judges one recorded decision, made at `at` (its commit's time), on the case's state
    /// `case` just before it and the facts its proposal was judged on.
    pub(super) fn check_decision(
        &mut self,
        position: u64,
        at: DateTime<Utc>,
        r: &DecisionRecorded,
        case: &Case,
        facts: Option<CaseFacts>,
    ) -> Result<(), RuleFailure> {
        let id = r.decision;
        // The policy version in force at the decision.
        self.count(Rule::DecisionPolicyVersion);
        let expected = self
            .settings
            .policies
            .in_force_at(at)
            .map(|p| p.version.clone());
        if r.policy_version != expected {
            return Err(fail(
                position,
                DECISION_POLICY_VERSION,
                format!(
                    "decision {id} at {at} records policy version {:?}; the version in force was {:?}",
                    r.policy_version, expected
                ),
            ));
        }
        // By a registered officer trained for it.
        self.count(Rule::DecisionOfficerTrained);
        let Some(profile) = self.world.officer(r.officer) else {
            return Err(fail(
                position,
                DECISION_OFFICER_TRAINED,
                format!(
                    "decision {id} was made by {}, who is not a registered officer",
                    r.officer
                ),
            ));
        };
        if let Some(version) = &r.policy_version {
            if !profile.trained_for.contains(version) {
                return Err(fail(
                    position,
                    DECISION_OFFICER_TRAINED,
                    format!(
                        "decision {id} was made by {}, who had no training for policy {version}",
                        r.officer
                    ),
                ));
            }
        }
        self.check_departure(position, at, r, case, facts)
    }

    /// `departure_approved`: the guidance and departure re-derived; a departure that needs
    /// approval approved, for its proposal, by a supervisor other than the officer; the
    /// decision's own record agreeing.
    fn check_departure(
        &mut self,
        position: u64,
        at: DateTime<Utc>,
        r: &DecisionRecorded,
        case: &Case,
        facts: Option<CaseFacts>,
    ) -> Result<(), RuleFailure> {
        let id = r.decision;
        self.count(Rule::DepartureApproved);
        let re = rederive(&self.settings.policies, at, facts.as_ref(), r.action).map_err(|e| {
            fail(
                position,
                DEPARTURE_APPROVED,
                format!("decision {id}: the factors the case recorded do not evaluate under the version in force: {e}"),
            )
        })?;
        let version = re.policy.map_or("none", |p| p.version.as_str());
        // The approval recorded for the decision's proposal, if the case holds its proposal.
        let approval = case
            .proposal
            .as_ref()
            .filter(|p| p.proposed.decision == id)
            .map(|p| p.approved_by);
        if let Some(d) = re.departure.filter(|d| d.needs_approval) {
            let priority = re
                .guidance
                .as_ref()
                .map_or_else(|| "none".to_owned(), |g| g.priority.to_string());
            let Some(approver) = r.approved_by else {
                return Err(fail(
                    position,
                    DEPARTURE_APPROVED,
                    format!(
                        "decision {id} ({}) departs from the guidance re-derived from the case's assessment under policy {version} ({priority}; {:?}) and needs a supervisor's approval; the decision records none",
                        r.action, d.kind
                    ),
                ));
            };
            if approver == r.officer {
                return Err(fail(
                    position,
                    DEPARTURE_APPROVED,
                    format!("decision {id} was approved by its own officer {approver}"),
                ));
            }
            let role = self.world.officer(approver).map(|p| p.role);
            if !matches!(role, Some(Role::Supervisor | Role::FieldOfficeDirector)) {
                return Err(fail(
                    position,
                    DEPARTURE_APPROVED,
                    format!(
                        "decision {id} was approved by {approver}, who is not registered as a supervisor ({})",
                        role.map_or_else(|| "not registered".to_owned(), |r| format!("registered as {r}"))
                    ),
                ));
            }
        }
        if let Some(recorded) = approval {
            if recorded != r.approved_by {
                let show = |p: Option<docket_domain::values::PersonId>| {
                    p.map_or_else(|| "none".to_owned(), |p| p.to_string())
                };
                return Err(fail(
                    position,
                    DEPARTURE_APPROVED,
                    format!(
                        "decision {id} records approval by {}; the case recorded approval of its proposal by {}",
                        show(r.approved_by),
                        show(recorded)
                    ),
                ));
            }
        }
        if r.guidance != re.guidance || r.departure != re.departure {
            let priority = |g: &Option<Guidance>| {
                g.as_ref()
                    .map_or_else(|| "none".to_owned(), |g| g.priority.to_string())
            };
            return Err(fail(
                position,
                DEPARTURE_APPROVED,
                format!(
                    "decision {id} ({}) records guidance {} and departure {:?}; re-derived from the case's assessment under policy {version}: guidance {} and departure {:?}",
                    r.action,
                    priority(&r.guidance),
                    r.departure.map(|d| d.kind),
                    priority(&re.guidance),
                    re.departure.map(|d| d.kind),
                ),
            ));
        }
        Ok(())
    }
}
