//! The workload, planned up front from the seed: who works in which field office, and what
//! happens to every case — its records, factors, proposals, G-28 and review. Planning is
//! sequential and pure, so a seed always gives the same workload, however many cases run at once.

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

fn training_day(rng: &mut StdRng, start: DateTime<Utc>) -> NaiveDate {
    let latest = start.date_naive() - Duration::days(7);
    let earliest = NaiveDate::from_ymd_opt(2021, 10, 1).unwrap_or(latest);
    let span = (latest - earliest).num_days().max(0);
    latest - Duration::days(rng.gen_range(0..=span))
}

/// Plans the staff of all 25 field offices, a few Senior Reviewing Officials at headquarters
/// (Washington) and a pool of representatives.
pub(crate) fn staff(
    rng: &mut StdRng,
    ids: &Ids,
    start: DateTime<Utc>,
    policy: Option<&Policy>,
) -> Staff {
    let policy_version = policy.map_or(FALLBACK_POLICY_VERSION.to_owned(), |p| p.version.clone());
    let trainings = |rng: &mut StdRng| {
        let mut t = vec![("web-based", training_day(rng, start))];
        if rng.gen_bool(0.5) {
            t.push(("in-person", training_day(rng, start)));
        }
        t
    };
    let hq = ids.person(rng);
    let mut headquarters = vec![Member {
        person: hq,
        role: Role::FieldOfficeDirector,
        office: FieldOffice::Was,
        registrar: hq,
        trainings: trainings(rng),
    }];
    let directors: Vec<PersonId> = FieldOffice::ALL.iter().map(|_| ids.person(rng)).collect();
    for (office, director) in FieldOffice::ALL.iter().zip(&directors) {
        headquarters.push(Member {
            person: *director,
            role: Role::FieldOfficeDirector,
            office: *office,
            registrar: hq,
            trainings: trainings(rng),
        });
    }
    let senior_officials: Vec<PersonId> = (0..3).map(|_| ids.person(rng)).collect();
    for sro in &senior_officials {
        headquarters.push(Member {
            person: *sro,
            role: Role::SeniorReviewingOfficial,
            office: FieldOffice::Was,
            registrar: hq,
            trainings: trainings(rng),
        });
    }

    // Some offices have one officer who has not done the training yet.
    let mut untrained_offices: Vec<usize> = (0..FieldOffice::ALL.len()).collect();
    untrained_offices.shuffle(rng);
    untrained_offices.truncate(6);
    let mut offices = Vec::new();
    for (i, (office, director)) in FieldOffice::ALL.iter().zip(&directors).enumerate() {
        let mut members = Vec::new();
        let mut add = |rng: &mut StdRng, role: Role, trained: bool| {
            let person = ids.person(rng);
            members.push(Member {
                person,
                role,
                office: *office,
                registrar: *director,
                trainings: if trained { trainings(rng) } else { Vec::new() },
            });
            person
        };
        let officer_count = rng.gen_range(3..=5);
        let officers: Vec<PersonId> = (0..officer_count)
            .map(|_| add(rng, Role::Officer, true))
            .collect();
        let supervisors = (0..2).map(|_| add(rng, Role::Supervisor, true)).collect();
        let reviewers = (0..2)
            .map(|_| add(rng, Role::FirstTierReviewer, true))
            .collect();
        let clerk_count = rng.gen_range(1..=2);
        let clerks = (0..clerk_count)
            .map(|_| add(rng, Role::IntakeClerk, false))
            .collect();
        let mut untrained = Vec::new();
        if untrained_offices.contains(&i) {
            // The last officer of the office skipped the training.
            if let Some(last) = officers.last() {
                untrained.push(*last);
                if let Some(m) = members.iter_mut().find(|m| m.person == *last) {
                    m.trainings.clear();
                }
            }
        }
        offices.push((
            OfficeStaff {
                office: *office,
                director: *director,
                officers,
                untrained,
                supervisors,
                reviewers,
                clerks,
            },
            members,
        ));
    }
    let representatives = (0..40)
        .map(|_| {
            let capacity = if rng.gen_bool(0.8) {
                RepresentativeCapacity::Attorney
            } else {
                RepresentativeCapacity::AccreditedRepresentative
            };
            (ids.person(rng), capacity)
        })
        .collect();
    Staff {
        headquarters,
        offices,
        senior_officials,
        representatives,
        policy_version,
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

const SCENARIOS: [(Scenario, u32); 6] = [
    (Scenario::Mitigating, 45),
    (Scenario::PublicSafety, 22),
    (Scenario::NationalSecurity, 3),
    (Scenario::BorderAttempt, 10),
    (Scenario::BorderRecentEntry, 10),
    (Scenario::ProtectedArea, 10),
];

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

fn forced(index: usize) -> Force {
    use ReviewOutcome::*;
    use Scenario::*;
    let f = Force::default();
    match index {
        0 => Force {
            scenario: Some(Mitigating),
            depart: Some(Depart::Approve),
            review: Some((Requester::Representative, Shape::Tier2(Upheld, Reversed))),
            ..f
        },
        1 => Force {
            scenario: Some(PublicSafety),
            untrained: true,
            action: Some(EnforcementAction::Detain),
            review: Some((Requester::Noncitizen, Shape::Tier1(Reversed))),
            ..f
        },
        2 => Force {
            scenario: Some(ProtectedArea),
            forget_exception: true,
            action: Some(EnforcementAction::Arrest),
            review: Some((Requester::Representative, Shape::Withdrawn)),
            ..f
        },
        3 => Force {
            scenario: Some(Mitigating),
            depart: Some(Depart::ReturnThenFollow),
            ..f
        },
        4 => Force {
            scenario: Some(NationalSecurity),
            action: Some(EnforcementAction::Detain),
            review: Some((Requester::Noncitizen, Shape::Unacknowledged)),
            ..f
        },
        5 => Force {
            scenario: Some(BorderRecentEntry),
            action: Some(EnforcementAction::ExecuteRemovalOrder),
            review: Some((Requester::Representative, Shape::Tier1Open)),
            ..f
        },
        6 => Force {
            scenario: Some(PublicSafety),
            depart: Some(Depart::Approve),
            ..f
        },
        7 => Force {
            scenario: Some(BorderAttempt),
            review: Some((Requester::Noncitizen, Shape::Tier2Open(Referred))),
            ..f
        },
        8 => Force {
            scenario: Some(PublicSafety),
            review: Some((Requester::Representative, Shape::Tier2(Modified, Upheld))),
            ..f
        },
        9 => Force {
            scenario: Some(Mitigating),
            depart: Some(Depart::ReturnThenApprove),
            review: Some((Requester::Noncitizen, Shape::Tier1(Upheld))),
            ..f
        },
        _ => f,
    }
}

/// Offices on the land borders, where border apprehensions happen.
const BORDER_OFFICES: [FieldOffice; 8] = [
    FieldOffice::Elp,
    FieldOffice::Snd,
    FieldOffice::Hlg,
    FieldOffice::Pho,
    FieldOffice::Sna,
    FieldOffice::Buf,
    FieldOffice::Det,
    FieldOffice::Sea,
];

/// Relative case volume of each office (larger areas of responsibility see more).
fn office_weight(office: FieldOffice) -> u32 {
    use FieldOffice::*;
    match office {
        Nyc | Los | Hou | Dal | Atl | Mia | Chi | Sna | Pho | Hlg => 3,
        Elp | Snd | Sfr | New | Nol | Was | Den => 2,
        _ => 1,
    }
}

fn city(office: FieldOffice) -> &'static str {
    use FieldOffice::*;
    match office {
        Atl => "Atlanta, GA",
        Bal => "Baltimore, MD",
        Bos => "Boston, MA",
        Buf => "Buffalo, NY",
        Chi => "Chicago, IL",
        Dal => "Dallas, TX",
        Den => "Denver, CO",
        Det => "Detroit, MI",
        Elp => "El Paso, TX",
        Hlg => "Harlingen, TX",
        Hou => "Houston, TX",
        Los => "Los Angeles, CA",
        Mia => "Miami, FL",
        Nol => "New Orleans, LA",
        Nyc => "New York, NY",
        New => "Newark, NJ",
        Phi => "Philadelphia, PA",
        Pho => "Phoenix, AZ",
        Slc => "Salt Lake City, UT",
        Sna => "San Antonio, TX",
        Snd => "San Diego, CA",
        Sfr => "San Francisco, CA",
        Sea => "Seattle, WA",
        Spm => "St. Paul, MN",
        Was => "Washington, DC",
    }
}

fn crossing(office: FieldOffice) -> &'static str {
    use FieldOffice::*;
    match office {
        Elp => "Ysleta port of entry",
        Snd => "San Ysidro port of entry",
        Hlg => "Brownsville Gateway International Bridge",
        Pho => "Nogales (DeConcini) port of entry",
        Sna => "Laredo, Juarez-Lincoln Bridge",
        Buf => "Peace Bridge",
        Det => "Ambassador Bridge",
        Sea => "Blaine, Peace Arch",
        _ => "a land port of entry",
    }
}

/// The shipped policy's factor codes named below all have a valid shape; one that did not would
/// be left out (and the run would show fewer factors), never a panic.
fn codes(names: &[&str]) -> Vec<Code> {
    names
        .iter()
        .filter_map(|c| Code::parse("factor", c).ok())
        .collect()
}

const MITIGATING: [&str; 10] = [
    "advanced_or_tender_age",
    "lengthy_presence",
    "mental_condition_contributed",
    "condition_requiring_care",
    "victim_witness_or_party",
    "family_impact",
    "relief_eligibility",
    "military_or_public_service",
    "time_since_offense",
    "conviction_vacated_or_expunged",
];
const PUBLIC_SAFETY: [&str; 5] = [
    "grave_offense_and_sentence",
    "serious_harm_caused",
    "sophisticated_offense",
    "firearm_or_dangerous_weapon",
    "serious_prior_record",
];
const NATIONAL_SECURITY: [&str; 2] = ["terrorism_or_espionage", "danger_to_national_security"];

/// Between `least` and `most` distinct names from `from`.
fn pick<'a>(rng: &mut StdRng, from: &[&'a str], least: usize, most: usize) -> Vec<&'a str> {
    let n = rng.gen_range(least..=most.max(least));
    from.choose_multiple(rng, n.min(from.len()))
        .copied()
        .collect()
}

fn weight_of(policy: Option<&Policy>, names: &[&str]) -> u32 {
    codes(names)
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
}

impl Planner<'_> {
    /// Plans case `index`.
    pub(crate) fn case(
        &self,
        rng: &mut StdRng,
        index: usize,
        used: &mut HashSet<ANumber>,
    ) -> CasePlan {
        let force = forced(index);
        let scenario = force.scenario.unwrap_or_else(|| weighted(rng, &SCENARIOS));
        let office = if scenario == Scenario::BorderAttempt {
            *BORDER_OFFICES.choose(rng).unwrap_or(&FieldOffice::Elp)
        } else if force.untrained {
            // An office with an untrained officer.
            self.staff
                .offices
                .iter()
                .find(|(o, _)| !o.untrained.is_empty())
                .map_or(FieldOffice::Atl, |(o, _)| o.office)
        } else if index < FieldOffice::ALL.len() {
            // The first cases visit every office once.
            FieldOffice::ALL[index]
        } else {
            let weights: Vec<(FieldOffice, u32)> = FieldOffice::ALL
                .iter()
                .map(|o| (*o, office_weight(*o)))
                .collect();
            weighted(rng, &weights)
        };
        let staff = self.staff.office(office);
        let trained = staff.trained_officers();
        let officer = if force.untrained {
            staff.untrained.first().copied()
        } else {
            None
        }
        .or_else(|| staff.officers.choose(rng).copied())
        .unwrap_or(staff.director);
        let officer_trained = !staff.untrained.contains(&officer);
        let backup = trained
            .iter()
            .copied()
            .find(|o| *o != officer)
            .or_else(|| trained.first().copied())
            .unwrap_or(staff.director);
        let supervisor = *staff.supervisors.choose(rng).unwrap_or(&staff.director);
        let clerk = *staff.clerks.choose(rng).unwrap_or(&staff.director);

        let case = CaseId(self.ids.uuid(rng));
        // Distinct within the run, so each G-28 stream is one person's.
        let a_number = loop {
            let digits = format!("{:09}", rng.gen_range(1_000_000..=999_999_999u32));
            if let Ok(a) = ANumber::parse(&digits) {
                if used.insert(a) {
                    break a;
                }
            }
        };
        let encounter = self.encounter(rng, scenario, office);
        let (factor_names, narrative_hint) = self.factors(rng, scenario, &encounter);
        let factors = codes(&factor_names);
        let priority = self.policy.and_then(|p| {
            p.evaluate(&docket_domain::policy::CaseFacts {
                place: encounter.place,
                manner_of_entry: encounter.manner_of_entry,
                entry_date: encounter.entry_date,
                factors: factors.clone(),
            })
            .ok()
            .map(|g| g.priority)
        });
        let records = self.records(rng, scenario, a_number);
        let narrative = format!(
            "Reviewed the whole record ({} record(s) attached, {} source(s) with nothing to attach). {narrative_hint} Factors found present: {}.",
            records.iter().filter(|r| matches!(r, RecordStep::Attach { .. })).count(),
            records.iter().filter(|r| matches!(r, RecordStep::Unavailable { .. })).count(),
            if factor_names.is_empty() { "none".to_owned() } else { factor_names.join(", ") },
        );
        let proposals = self.proposals(rng, scenario, priority, &factors, &encounter, force);
        let action = proposals
            .last()
            .map_or(EnforcementAction::NoAction, |p| p.action);
        let review = self.review(rng, office, action, force);
        let g28 = match (&review, rng.gen_bool(0.15)) {
            (Some(r), _) if r.requester == Requester::Representative => Some(self.g28(rng, false)),
            (None, true) => {
                let withdraw = rng.gen_bool(0.1);
                Some(self.g28(rng, withdraw))
            }
            (Some(_), true) => Some(self.g28(rng, false)),
            _ => None,
        };
        let mut proposals = proposals;
        if !officer_trained {
            // An untrained officer is refused before the protected-area rule is looked at.
            for p in &mut proposals {
                p.forget_exception = false;
            }
        }
        CasePlan {
            index,
            case,
            a_number,
            office,
            noncitizen: self.ids.person(rng),
            clerk,
            officer,
            officer_trained,
            backup,
            supervisor,
            director: staff.director,
            encounter,
            records,
            unavailable_by_clerk: rng.gen_bool(0.3),
            factors,
            narrative,
            priority,
            proposals,
            g28,
            review,
        }
    }

    fn encounter(&self, rng: &mut StdRng, scenario: Scenario, office: FieldOffice) -> Encounter {
        let at = self.start
            - Duration::days(rng.gen_range(1..=90))
            - Duration::seconds(rng.gen_range(0..86_400));
        let day = at.date_naive();
        let cutoff = self
            .policy
            .map_or(ymd(2020, 11, 1), |p| p.border_entry_cutoff);
        let settled = |rng: &mut StdRng| -> (MannerOfEntry, Option<NaiveDate>) {
            let latest = (cutoff - Duration::days(30)).min(day);
            match rng.gen_range(0..10) {
                0..=3 => (
                    MannerOfEntry::EnteredLawfully,
                    Some(day_between(rng, ymd(1988, 1, 1), latest)),
                ),
                4..=7 => (
                    MannerOfEntry::EnteredUnlawfully,
                    Some(day_between(rng, ymd(1990, 1, 1), latest)),
                ),
                _ => (MannerOfEntry::Unknown, None),
            }
        };
        let street = [
            "at a traffic stop",
            "at a residence",
            "at a county jail (detainer)",
            "at a workplace",
            "at the local ICE office (check-in)",
            "at a state prison (transfer)",
        ];
        let (place, manner, entry_date, location, protected_area) = match scenario {
            Scenario::BorderAttempt => (
                if rng.gen_bool(0.6) {
                    EncounterPlace::Border
                } else {
                    EncounterPlace::PortOfEntry
                },
                MannerOfEntry::AttemptingUnlawfulEntry,
                None,
                crossing(office).to_owned(),
                None,
            ),
            Scenario::BorderRecentEntry => {
                let from = cutoff + Duration::days(1);
                let entered = if from < day {
                    day_between(rng, from, day)
                } else {
                    day
                };
                (
                    EncounterPlace::Interior,
                    MannerOfEntry::EnteredUnlawfully,
                    Some(entered),
                    format!(
                        "{}, {}",
                        city(office),
                        street.choose(rng).unwrap_or(&"in the interior")
                    ),
                    None,
                )
            }
            Scenario::ProtectedArea => {
                let (manner, entry) = settled(rng);
                let area = *ProtectedArea::ALL
                    .choose(rng)
                    .unwrap_or(&ProtectedArea::School);
                (
                    EncounterPlace::Interior,
                    manner,
                    entry,
                    format!("{}, near a {}", city(office), area.code().replace('_', " ")),
                    Some(area),
                )
            }
            _ => {
                let (manner, entry) = settled(rng);
                (
                    EncounterPlace::Interior,
                    manner,
                    entry,
                    format!(
                        "{}, {}",
                        city(office),
                        street.choose(rng).unwrap_or(&"in the interior")
                    ),
                    None,
                )
            }
        };
        Encounter {
            at,
            location,
            place,
            manner_of_entry: manner,
            entry_date,
            protected_area,
        }
    }

    /// The factors present and a sentence for the narrative.
    fn factors(
        &self,
        rng: &mut StdRng,
        scenario: Scenario,
        encounter: &Encounter,
    ) -> (Vec<&'static str>, &'static str) {
        let public_safety = |rng: &mut StdRng| {
            let mut f = pick(rng, &PUBLIC_SAFETY, 1, 3);
            // What mitigates never outweighs it here: one mitigating factor (at most 3) only
            // beside aggravating weight of 5 or more.
            if weight_of(self.policy, &f) >= 5 && rng.gen_bool(0.5) {
                f.extend(pick(rng, &MITIGATING, 1, 1));
            }
            f
        };
        match scenario {
            Scenario::Mitigating => (
                pick(rng, &MITIGATING, 1, 3),
                "No current threat to public safety; long-standing ties in the community.",
            ),
            Scenario::PublicSafety => (
                public_safety(rng),
                "Recent serious criminal conduct documented in the criminal record.",
            ),
            Scenario::NationalSecurity => {
                let mut f = pick(rng, &NATIONAL_SECURITY, 1, 1);
                if rng.gen_bool(0.3) {
                    f.extend(pick(rng, &PUBLIC_SAFETY, 1, 1));
                }
                (
                    f,
                    "Investigative holdings indicate a danger to national security.",
                )
            }
            Scenario::BorderAttempt | Scenario::BorderRecentEntry => {
                let n = weighted(rng, &[(0usize, 50), (1, 35), (2, 15)]);
                (
                    pick(rng, &MITIGATING, n, n),
                    if encounter.place == EncounterPlace::Interior {
                        "Entered unlawfully after the border-security cut-off."
                    } else {
                        "Apprehended while attempting to enter unlawfully."
                    },
                )
            }
            Scenario::ProtectedArea => {
                if rng.gen_bool(0.5) {
                    (
                        public_safety(rng),
                        "Encountered near a protected area; serious criminal conduct on record.",
                    )
                } else {
                    (
                        pick(rng, &MITIGATING, 1, 2),
                        "Encountered near a protected area.",
                    )
                }
            }
        }
    }

    fn records(&self, rng: &mut StdRng, scenario: Scenario, a_number: ANumber) -> Vec<RecordStep> {
        let mut steps = Vec::new();
        let criminal = match scenario {
            Scenario::PublicSafety | Scenario::NationalSecurity => rng.gen_range(1..=3),
            Scenario::ProtectedArea => rng.gen_range(0..=2),
            Scenario::Mitigating => usize::from(rng.gen_bool(0.35)),
            _ => usize::from(rng.gen_bool(0.15)),
        };
        let administrative = if rng.gen_bool(0.9) {
            rng.gen_range(1..=2)
        } else {
            0
        };
        let investigative = match scenario {
            Scenario::NationalSecurity => rng.gen_range(1..=2),
            Scenario::PublicSafety => usize::from(rng.gen_bool(0.4)),
            _ => usize::from(rng.gen_bool(0.15)),
        };
        let states = ["TX", "CA", "NY", "FL", "IL", "AZ", "GA", "NJ", "WA", "CO"];
        for (source, count) in [
            (RecordSource::Criminal, criminal),
            (RecordSource::Administrative, administrative),
            (RecordSource::Investigative, investigative),
        ] {
            if count == 0 {
                let reason = match source {
                    RecordSource::Criminal => "no criminal history found in NCIC or III",
                    RecordSource::Administrative => "no prior A-file: first encounter",
                    RecordSource::Investigative => {
                        "no investigative holdings in TECS or HSI systems"
                    }
                };
                steps.push(RecordStep::Unavailable {
                    source,
                    reason: reason.to_owned(),
                });
                continue;
            }
            for k in 0..count {
                let n: u32 = rng.gen_range(100_000..999_999);
                let reference = match (source, k) {
                    (RecordSource::Criminal, 0) => {
                        format!("III rap sheet {}-{n}", states.choose(rng).unwrap_or(&"TX"))
                    }
                    (RecordSource::Criminal, _) => format!(
                        "{} court disposition {n}",
                        states.choose(rng).unwrap_or(&"TX")
                    ),
                    (RecordSource::Administrative, 0) => format!("A-file {a_number}"),
                    (RecordSource::Administrative, _) => format!("EARM encounter {n}"),
                    (RecordSource::Investigative, 0) => format!("TECS subject record {n}"),
                    (RecordSource::Investigative, _) => format!("HSI report of investigation {n}"),
                };
                steps.push(RecordStep::Attach {
                    record: RecordId(self.ids.uuid(rng)),
                    source,
                    reference,
                    content_hash: hash(rng),
                });
            }
        }
        steps
    }

    fn proposals(
        &self,
        rng: &mut StdRng,
        scenario: Scenario,
        priority: Option<PriorityCategory>,
        factors: &[Code],
        encounter: &Encounter,
        force: Force,
    ) -> Vec<Proposal> {
        use EnforcementAction::*;
        // Without a version in force there is no guidance: the scenario stands in for it.
        let is_priority = match priority {
            Some(p) => p != PriorityCategory::NotAPriority,
            None => scenario != Scenario::Mitigating,
        };
        let follow = |rng: &mut StdRng| -> EnforcementAction {
            match (is_priority, priority) {
                (false, _) => weighted(
                    rng,
                    &[
                        (NoAction, 40),
                        (Release, 10),
                        (GrantDeferredAction, 8),
                        (AdministrativelyClose, 12),
                        (MoveToDismiss, 10),
                        (CancelNta, 8),
                        (Continue, 6),
                        (Stipulate, 3),
                        (JoinMotionToReopen, 3),
                    ],
                ),
                (true, Some(PriorityCategory::NationalSecurity)) => {
                    weighted(rng, &[(Arrest, 4), (Detain, 4), (IssueDetainer, 2)])
                }
                (true, Some(PriorityCategory::BorderSecurity)) => weighted(
                    rng,
                    &[
                        (Detain, 3),
                        (IssueNta, 3),
                        (ServeNta, 1),
                        (ExecuteRemovalOrder, 2),
                        (Arrest, 2),
                    ],
                ),
                (true, _) => weighted(
                    rng,
                    &[
                        (Arrest, 4),
                        (Detain, 3),
                        (IssueDetainer, 3),
                        (TakeCustodyUnderDetainer, 2),
                        (IssueNta, 3),
                        (FileNta, 2),
                        (ExecuteRemovalOrder, 1),
                        (Appeal, 1),
                    ],
                ),
            }
        };
        let depart_action = |rng: &mut StdRng| -> EnforcementAction {
            if is_priority {
                weighted(
                    rng,
                    &[
                        (NoAction, 3),
                        (Release, 3),
                        (GrantParole, 1),
                        (AdministrativelyClose, 1),
                    ],
                )
            } else {
                weighted(
                    rng,
                    &[(IssueNta, 4), (Arrest, 3), (Detain, 2), (ServeNta, 1)],
                )
            }
        };
        let departs = |action: EnforcementAction| -> bool {
            match (self.policy, priority) {
                (Some(policy), Some(priority)) => {
                    let guidance = docket_domain::policy::Guidance {
                        policy_version: policy.version.clone(),
                        priority,
                        aggravating: Vec::new(),
                        mitigating: Vec::new(),
                        reasons: Vec::new(),
                    };
                    policy
                        .departure(&guidance, action)
                        .is_some_and(|d| d.needs_approval)
                }
                _ => false,
            }
        };
        let depart = force.depart.or_else(|| {
            rng.gen_bool(0.08).then(|| {
                weighted(
                    rng,
                    &[
                        (Depart::Approve, 6),
                        (Depart::ReturnThenFollow, 1),
                        (Depart::ReturnThenApprove, 1),
                    ],
                )
            })
        });
        let first_action = match (force.action, depart) {
            (Some(a), None) => a,
            (_, Some(_)) => depart_action(rng),
            (None, None) => follow(rng),
        };
        let cited = |rng: &mut StdRng| -> Vec<Code> {
            if factors.is_empty() {
                return Vec::new();
            }
            let n = rng.gen_range(1..=factors.len());
            let mut c: Vec<Code> = factors.choose_multiple(rng, n).cloned().collect();
            c.sort();
            c
        };
        let priority_text = priority.map_or("no guideline version in force".to_owned(), |p| {
            format!("guidance: {}", p.code().replace('_', " "))
        });
        let make = |rng: &mut StdRng, action: EnforcementAction, supervision: Supervision| {
            let departs = departs(action);
            let reasons = if departs {
                let why = if action.is_adverse() {
                    [
                        "the person failed to appear at two hearings",
                        "a pending charge not yet reflected in the factors",
                        "the removal order is final and travel documents are ready",
                    ]
                } else {
                    [
                        "the person is the sole caregiver of a child with a disability",
                        "a pending T visa certification by the U.S. Attorney",
                        "cooperating witness in a federal prosecution",
                    ]
                };
                format!(
                    "{action} departs from the {priority_text}: {}; supervisor approval requested.",
                    why.choose(rng).unwrap_or(&"exceptional circumstances")
                )
            } else {
                format!(
                    "{action} on the totality of the facts ({priority_text}), after review of the whole record."
                )
            };
            let exception =
                (encounter.protected_area.is_some() && action.is_adverse()).then(|| {
                    [
                        "imminent threat to life: armed subject fled into the area",
                        "hot pursuit of a person who poses a public-safety threat",
                        "imminent risk of destruction of evidence in an ongoing criminal case",
                    ]
                    .choose(rng)
                    .unwrap_or(&"exigent circumstances")
                    .to_string()
                });
            Proposal {
                decision: DecisionId(self.ids.uuid(rng)),
                action,
                cited: cited(rng),
                reasons,
                exception,
                forget_exception: false,
                departs,
                supervision: if departs {
                    supervision
                } else {
                    Supervision::None
                },
            }
        };
        let returned = |rng: &mut StdRng| {
            Supervision::Return(
                [
                    "the reasons do not address the mitigating factors in the record",
                    "explain why the guidance should not be followed in this case",
                    "the criminal record shows a vacated conviction: reassess",
                ]
                .choose(rng)
                .unwrap_or(&"reconsider")
                .to_string(),
            )
        };
        let mut out = Vec::new();
        match depart {
            None | Some(Depart::Approve) => out.push(make(rng, first_action, Supervision::Approve)),
            Some(Depart::ReturnThenFollow) => {
                let r = returned(rng);
                out.push(make(rng, first_action, r));
                let action = follow(rng);
                out.push(make(rng, action, Supervision::Approve));
            }
            Some(Depart::ReturnThenApprove) => {
                let r = returned(rng);
                out.push(make(rng, first_action, r));
                out.push(make(rng, first_action, Supervision::Approve));
            }
        }
        // A proposal that does not depart needs no approval, so it cannot be returned either:
        // keep only the last one then (without a policy in force nothing departs).
        if out.len() > 1 && !out[0].departs {
            out.remove(0);
        }
        if let Some(first) = out.first_mut() {
            first.forget_exception = first.exception.is_some()
                && (force.forget_exception || (force.scenario.is_none() && rng.gen_bool(0.25)));
        }
        out
    }

    fn review(
        &self,
        rng: &mut StdRng,
        office: FieldOffice,
        action: EnforcementAction,
        force: Force,
    ) -> Option<ReviewPlan> {
        use ReviewOutcome::*;
        if !action.is_adverse() {
            return None;
        }
        let (requester, shape) = match force.review {
            Some(r) => r,
            None if force.scenario.is_some() => return None,
            None => {
                if !rng.gen_bool(0.4) {
                    return None;
                }
                let requester = if rng.gen_bool(0.55) {
                    Requester::Representative
                } else {
                    Requester::Noncitizen
                };
                let t1 = weighted(
                    rng,
                    &[(Upheld, 50), (Modified, 15), (Reversed, 25), (Referred, 10)],
                );
                let escalate = t1 != Reversed && rng.gen_bool(0.35);
                let shape = weighted(
                    rng,
                    &[
                        (Shape::Unacknowledged, 4),
                        (Shape::Withdrawn, 6),
                        (Shape::Tier1Open, 6),
                        (Shape::Tier1(t1), 84),
                    ],
                );
                let shape = match shape {
                    Shape::Tier1(t1) if escalate => {
                        match weighted(rng, &[(0, 85), (1, 10), (2, 5)]) {
                            0 => Shape::Tier2(
                                t1,
                                weighted(
                                    rng,
                                    &[(Upheld, 50), (Reversed, 25), (Modified, 15), (Referred, 10)],
                                ),
                            ),
                            1 => Shape::Tier2Open(t1),
                            _ => Shape::Withdrawn,
                        }
                    }
                    other => other,
                };
                (requester, shape)
            }
        };
        let staff = self.staff.office(office);
        let reviewer = *staff.reviewers.choose(rng).unwrap_or(&staff.director);
        let prioritise = match action {
            EnforcementAction::Arrest
            | EnforcementAction::Detain
            | EnforcementAction::TakeCustodyUnderDetainer
            | EnforcementAction::IssueDetainer => Some(PriorityReason::Detained),
            EnforcementAction::ExecuteRemovalOrder => Some(PriorityReason::RemovalImminent),
            _ => None,
        }
        .filter(|_| force.review.is_some() || rng.gen_bool(0.8));
        let grounds = [
            "primary caregiver of two U.S. citizen children",
            "pending U visa application as a victim of a crime",
            "the conviction relied on was vacated in 2019",
            "twenty years of continuous residence and a U.S. citizen spouse",
            "the officer did not weigh a serious medical condition requiring treatment",
            "the arrest took place at a clinic without a recorded exigency",
            "eligible for cancellation of removal; hearing already scheduled",
        ];
        let questions = [
            (
                "please send the letter from the treating physician",
                "letter from Dr. Alvarez attached (diagnosis and treatment plan)",
            ),
            (
                "provide proof of the children's school enrolment",
                "enrolment certificates for both children attached",
            ),
            (
                "send the court order vacating the conviction",
                "certified copy of the order of vacatur attached",
            ),
        ];
        let reasons_for = |outcome: ReviewOutcome| -> &'static str {
            match outcome {
                Upheld => "the whole record supports the action under the guidelines",
                Modified => {
                    "action modified: detention replaced by release on an alternative to detention"
                }
                Reversed => "action withdrawn: mitigating factors outweigh; release ordered",
                Referred => "referred: the request raises a matter for another office",
            }
        };
        let decided = |rng: &mut StdRng, outcome: ReviewOutcome| TierEnd::Decided {
            outcome,
            referred_to: (outcome == Referred).then(|| {
                *ReferralTarget::ALL
                    .choose(rng)
                    .unwrap_or(&ReferralTarget::CivilRights)
            }),
            reasons: reasons_for(outcome).to_owned(),
        };
        let withdrawn = |rng: &mut StdRng| {
            TierEnd::Withdrawn(
                [
                    "released on bond; no longer needed",
                    "the requester chose to pursue relief in immigration court",
                    "resolved with the field office",
                ]
                .choose(rng)
                .unwrap_or(&"withdrawn")
                .to_string(),
            )
        };
        let ask = |rng: &mut StdRng, p: f64| {
            (force.review.is_some() || rng.gen_bool(p)).then(|| {
                let (q, a) = questions.choose(rng).unwrap_or(&questions[0]);
                ((*q).to_owned(), (*a).to_owned())
            })
        };
        let chief = self
            .staff
            .senior_officials
            .first()
            .copied()
            .unwrap_or(staff.director);
        let official = *self
            .staff
            .senior_officials
            .choose(rng)
            .unwrap_or(&staff.director);
        let tier2 = |rng: &mut StdRng, end: TierEnd| Tier2 {
            grounds: "tier 1 did not weigh the family's circumstances".to_owned(),
            assigner: chief,
            official,
            ask: ask(rng, 0.2).filter(|_| !matches!(end, TierEnd::Open)),
            end,
        };
        let (acknowledge, tier1, tier2) = match shape {
            Shape::Unacknowledged => (false, TierEnd::Open, None),
            Shape::Tier1Open => (true, TierEnd::Open, None),
            Shape::Withdrawn => (true, withdrawn(rng), None),
            Shape::Tier1(o) => (true, decided(rng, o), None),
            Shape::Tier2(o1, o2) => {
                let end = decided(rng, o2);
                (true, decided(rng, o1), Some(tier2(rng, end)))
            }
            Shape::Tier2Open(o1) => (true, decided(rng, o1), Some(tier2(rng, TierEnd::Open))),
        };
        let ask = if matches!(shape, Shape::Tier1(_) | Shape::Tier2(..)) {
            ask(rng, 0.3)
        } else {
            None
        };
        Some(ReviewPlan {
            review: ReviewId(self.ids.uuid(rng)),
            requester,
            grounds: grounds.choose(rng).unwrap_or(&grounds[0]).to_string(),
            language: weighted(
                rng,
                &[
                    (None, 65),
                    (Some("es"), 25),
                    (Some("pt-BR"), 3),
                    (Some("ht"), 3),
                    (Some("vi"), 2),
                    (Some("zh-Hans"), 2),
                ],
            )
            .map(str::to_owned),
            acknowledge,
            prioritise: prioritise.filter(|_| acknowledge),
            reviewer,
            ask,
            tier1,
            tier2,
        })
    }

    fn g28(&self, rng: &mut StdRng, withdraw: bool) -> G28 {
        let (representative, capacity) = *self
            .staff
            .representatives
            .choose(rng)
            .unwrap_or(&(PersonId(Uuid::nil()), RepresentativeCapacity::Attorney));
        let latest = self.start.date_naive() - Duration::days(1);
        G28 {
            representative,
            capacity,
            signed_on: day_between(rng, latest - Duration::days(60), latest),
            withdraw: withdraw
                .then(|| "the representative no longer represents the person".to_owned()),
        }
    }
}

/// The policy version in force at `start`, if any.
pub(crate) fn policy_at(policies: &PolicySet, start: DateTime<Utc>) -> Option<&Policy> {
    policies.in_force_at(start)
}
