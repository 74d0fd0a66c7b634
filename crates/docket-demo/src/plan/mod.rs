//! The workload, planned up front from the seed: who works in which field office, and what
//! happens to every case — its records, factors, proposals, G-28 and review. Planning is
//! sequential and pure, so a seed always gives the same workload, however many cases run at once.
//!
//! This file holds the plan's types and the small draws every part uses; `staff.rs` plans who
//! works where, `case.rs` a case's encounter, records and factors, `decisions.rs` its proposals,
//! `review.rs` its review, and `data.rs` the fixed tables (offices, cities, crossings) and the
//! factor codes, drawn by category from the shipped policy.

mod case;
mod data;
mod decisions;
mod review;
mod staff;

use std::collections::HashSet;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use docket_domain::case::Encounter;
use docket_domain::policy::{Policy, PolicySet};
use docket_domain::representation::RepresentativeCapacity;
use docket_domain::review::PriorityReason;
use docket_domain::values::{
    CaseId, Code, ContentHash, DecisionId, EncounterPlace, EnforcementAction, FieldOffice,
    MannerOfEntry, PersonId, PriorityCategory, ProtectedArea, RecordId, RecordSource,
    ReferralTarget, ReviewId, ReviewOutcome, Role,
};
use docket_domain::ANumber;
use rand::distributions::{Distribution, WeightedIndex};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use uuid::Uuid;

pub(crate) use data::FactorCodes;
pub(crate) use staff::staff;

/// The policy version staff are trained for when none is in force at the start.
const FALLBACK_POLICY_VERSION: &str = "2021-09-30";

/// Draws ids from the seeded generator, mixed with the run's nonce so that two runs with the
/// same seed against the same system never collide.
#[derive(Debug)]
pub(crate) struct Ids {
    nonce: u128,
}

impl Ids {
    pub(crate) fn new(nonce: u128) -> Self {
        Ids { nonce }
    }

    fn uuid(&self, rng: &mut StdRng) -> Uuid {
        uuid::Builder::from_random_bytes((rng.gen::<u128>() ^ self.nonce).to_le_bytes()).into_uuid()
    }

    fn person(&self, rng: &mut StdRng) -> PersonId {
        PersonId(self.uuid(rng))
    }
}

/// One member of staff to register (and train).
#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub person: PersonId,
    pub role: Role,
    pub office: FieldOffice,
    /// The field office director who registers and trains them.
    pub registrar: PersonId,
    /// Training modules completed, with the day.
    pub trainings: Vec<(&'static str, NaiveDate)>,
}

/// The staff of one field office.
#[derive(Clone, Debug)]
pub(crate) struct OfficeStaff {
    pub office: FieldOffice,
    pub director: PersonId,
    pub officers: Vec<PersonId>,
    /// Officers never trained on the guidelines (a subset of `officers`).
    pub untrained: Vec<PersonId>,
    pub supervisors: Vec<PersonId>,
    pub reviewers: Vec<PersonId>,
    pub clerks: Vec<PersonId>,
}

impl OfficeStaff {
    fn trained_officers(&self) -> Vec<PersonId> {
        self.officers
            .iter()
            .copied()
            .filter(|o| !self.untrained.contains(o))
            .collect()
    }
}

/// Everyone the workload needs, in the order they are registered.
#[derive(Clone, Debug)]
pub(crate) struct Staff {
    /// Headquarters' director: registers the field office directors and the Senior Reviewing
    /// Officials (and first of all themself).
    pub headquarters: Vec<Member>,
    /// Each office's staff, registered by its director.
    pub offices: Vec<(OfficeStaff, Vec<Member>)>,
    pub senior_officials: Vec<PersonId>,
    pub representatives: Vec<(PersonId, RepresentativeCapacity)>,
    /// The policy version training is for.
    pub policy_version: String,
}

impl Staff {
    pub(crate) fn office(&self, office: FieldOffice) -> &OfficeStaff {
        // Every office of `FieldOffice::ALL` is planned, in that order.
        let i = FieldOffice::ALL
            .iter()
            .position(|o| *o == office)
            .unwrap_or(0);
        &self.offices[i].0
    }

    /// Registration and training commands.
    pub(crate) fn commands(&self) -> usize {
        self.headquarters
            .iter()
            .chain(self.offices.iter().flat_map(|(_, m)| m.iter()))
            .map(|m| 1 + m.trainings.len())
            .sum()
    }
}

/// The kind of case, which shapes its encounter, records and factors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scenario {
    /// Mitigating factors only, in the interior.
    Mitigating,
    /// Serious criminal conduct outweighing what mitigates it.
    PublicSafety,
    /// A national-security indicator.
    NationalSecurity,
    /// Apprehended at the border or a port of entry while attempting to enter unlawfully.
    BorderAttempt,
    /// Apprehended in the interior after a recent unlawful entry.
    BorderRecentEntry,
    /// Encountered at or near a protected area.
    ProtectedArea,
}

/// One step towards the whole record.
#[derive(Clone, Debug)]
pub(crate) enum RecordStep {
    Attach {
        record: RecordId,
        source: RecordSource,
        reference: String,
        content_hash: ContentHash,
    },
    Unavailable {
        source: RecordSource,
        reason: String,
    },
}

/// What the supervisor does with a proposal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Supervision {
    /// Nothing to approve: the proposal follows the guidance.
    None,
    Approve,
    Return(String),
}

/// One proposal of a decision.
#[derive(Clone, Debug)]
pub(crate) struct Proposal {
    pub decision: DecisionId,
    pub action: EnforcementAction,
    pub cited: Vec<Code>,
    pub reasons: String,
    pub exception: Option<String>,
    /// The officer first proposes without the protected-area exception, and is refused.
    pub forget_exception: bool,
    /// True if it departs from the guidance the demo expects.
    pub departs: bool,
    pub supervision: Supervision,
}

/// A G-28 on file for the case's noncitizen.
#[derive(Clone, Debug)]
pub(crate) struct G28 {
    pub representative: PersonId,
    pub capacity: RepresentativeCapacity,
    pub signed_on: NaiveDate,
    /// The representative withdraws it later (only when they file no review).
    pub withdraw: Option<String>,
}

/// Who asks for review.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Requester {
    Noncitizen,
    Representative,
}

/// How a tier ends in this workload.
#[derive(Clone, Debug)]
pub(crate) enum TierEnd {
    Decided {
        outcome: ReviewOutcome,
        referred_to: Option<ReferralTarget>,
        reasons: String,
    },
    /// Left undecided: its deadline keeps running.
    Open,
    Withdrawn(String),
}

/// Tier 2 of a review.
#[derive(Clone, Debug)]
pub(crate) struct Tier2 {
    pub grounds: String,
    /// The Senior Reviewing Official who assigns (the chief) and the one assigned.
    pub assigner: PersonId,
    pub official: PersonId,
    pub ask: Option<(String, String)>,
    pub end: TierEnd,
}

/// A review of the case's decision.
#[derive(Clone, Debug)]
pub(crate) struct ReviewPlan {
    pub review: ReviewId,
    pub requester: Requester,
    pub grounds: String,
    pub language: Option<String>,
    /// Left unacknowledged: the acknowledgement deadline keeps running.
    pub acknowledge: bool,
    pub prioritise: Option<PriorityReason>,
    pub reviewer: PersonId,
    pub ask: Option<(String, String)>,
    pub tier1: TierEnd,
    pub tier2: Option<Tier2>,
}

/// Everything that happens to one case.
#[derive(Clone, Debug)]
pub(crate) struct CasePlan {
    pub index: usize,
    pub case: CaseId,
    pub a_number: ANumber,
    pub office: FieldOffice,
    pub noncitizen: PersonId,
    pub clerk: PersonId,
    pub officer: PersonId,
    pub officer_trained: bool,
    /// A trained officer of the office who takes the case over if `officer` is refused.
    pub backup: PersonId,
    pub supervisor: PersonId,
    pub director: PersonId,
    pub encounter: Encounter,
    pub records: Vec<RecordStep>,
    /// Who marks sources unavailable: the clerk or the officer.
    pub unavailable_by_clerk: bool,
    pub factors: Vec<Code>,
    pub narrative: String,
    /// The priority the shipped policy gives at the start, if a version is in force then.
    pub priority: Option<PriorityCategory>,
    /// Proposals in order; every one but the last is returned.
    pub proposals: Vec<Proposal>,
    pub g28: Option<G28>,
    pub review: Option<ReviewPlan>,
}

impl CasePlan {
    /// Commands the plan sends if everything goes as expected.
    pub(crate) fn commands(&self) -> usize {
        let mut n = 3 + self.records.len(); // open, records, attest, assess
        for p in &self.proposals {
            n += 1; // propose
            n += usize::from(p.forget_exception);
            n += usize::from(!self.officer_trained && p.decision == self.proposals[0].decision);
            n += match p.supervision {
                Supervision::None => 0,
                _ => 1,
            };
        }
        n += 1; // record
        if let Some(g) = &self.g28 {
            n += 1 + usize::from(g.withdraw.is_some());
        }
        if let Some(r) = &self.review {
            n += 1;
            if r.acknowledge {
                n += 2 + usize::from(r.prioritise.is_some()) + 2 * usize::from(r.ask.is_some());
                n += usize::from(!matches!(r.tier1, TierEnd::Open));
                if let Some(t2) = &r.tier2 {
                    n += 2 + 2 * usize::from(t2.ask.is_some());
                    n += usize::from(!matches!(t2.end, TierEnd::Open));
                }
            }
        }
        n
    }
}

/// The paths the first cases are made to take, so that even a small run walks each of them.
#[derive(Clone, Copy, Debug, Default)]
struct Force {
    scenario: Option<Scenario>,
    untrained: bool,
    depart: Option<Depart>,
    forget_exception: bool,
    review: Option<(Requester, Shape)>,
    action: Option<EnforcementAction>,
}

#[derive(Clone, Copy, Debug)]
enum Depart {
    Approve,
    ReturnThenFollow,
    ReturnThenApprove,
}

#[derive(Clone, Copy, Debug)]
enum Shape {
    Tier2(ReviewOutcome, ReviewOutcome),
    Tier1(ReviewOutcome),
    Tier2Open(ReviewOutcome),
    Withdrawn,
    Unacknowledged,
    Tier1Open,
}

/// Between `least` and `most` distinct items from `from`.
fn pick<T: Clone>(rng: &mut StdRng, from: &[T], least: usize, most: usize) -> Vec<T> {
    let n = rng.gen_range(least..=most.max(least));
    from.choose_multiple(rng, n.min(from.len()))
        .cloned()
        .collect()
}

/// The weight `policy` gives the factors `codes` together (0 without a policy in force).
fn weight_of(policy: Option<&Policy>, codes: &[Code]) -> u32 {
    codes
        .iter()
        .filter_map(|c| policy.and_then(|p| p.factor(c)).map(|d| d.weight))
        .sum()
}

fn day_between(rng: &mut StdRng, from: NaiveDate, until: NaiveDate) -> NaiveDate {
    let span = (until - from).num_days().max(0);
    from + Duration::days(rng.gen_range(0..=span))
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

fn weighted<T: Copy>(rng: &mut StdRng, items: &[(T, u32)]) -> T {
    match WeightedIndex::new(items.iter().map(|(_, w)| *w)) {
        Ok(dist) => items[dist.sample(rng)].0,
        Err(_) => items[0].0,
    }
}

fn hash(rng: &mut StdRng) -> ContentHash {
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes);
    ContentHash(bytes)
}

/// Everything needed to plan cases.
pub(crate) struct Planner<'a> {
    pub staff: &'a Staff,
    pub ids: &'a Ids,
    pub start: DateTime<Utc>,
    pub policy: Option<&'a Policy>,
    /// The factors cases are given, by category.
    pub factors: &'a FactorCodes,
}

/// The policy version in force at `start`, if any.
pub(crate) fn policy_at(policies: &PolicySet, start: DateTime<Utc>) -> Option<&Policy> {
    policies.in_force_at(start)
}
