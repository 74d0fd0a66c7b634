//! Test support: the given/when/then harness ([`given::TestFramework`]), a `Directory` backed
//! by maps, contexts at fixed times, sample values.

pub mod given;
pub mod review_world;

pub use given::TestFramework;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, TimeZone, Utc};
use docket_domain::aggregate::{DecisionParties, OfficerProfile};
use docket_domain::policy::PolicySet;
use docket_domain::values::{ANumber, Actor, DecisionId, FieldOffice, PersonId, Role};
use docket_domain::{Context, Deadlines, Directory};
use uuid::Uuid;

/// The people of the tests.
pub const OFFICER: u128 = 1;
pub const UNTRAINED_OFFICER: u128 = 2;
pub const SUPERVISOR: u128 = 3;
pub const REVIEWER: u128 = 4;
pub const SRO: u128 = 5;
pub const REPRESENTATIVE: u128 = 6;
pub const NONCITIZEN: u128 = 7;

pub fn person(n: u128) -> PersonId {
    PersonId(Uuid::from_u128(n))
}

pub fn actor(n: u128, role: Role) -> Actor {
    Actor {
        person: person(n),
        role,
    }
}

/// A directory held in maps.
#[derive(Default)]
pub struct MapDirectory {
    pub officers: HashMap<PersonId, OfficerProfile>,
    pub g28: HashSet<(ANumber, PersonId)>,
    pub decisions: HashMap<DecisionId, DecisionParties>,
}

impl Directory for MapDirectory {
    fn officer(&self, person: PersonId) -> Option<OfficerProfile> {
        self.officers.get(&person).cloned()
    }
    fn has_g28(&self, a_number: ANumber, representative: PersonId) -> bool {
        self.g28.contains(&(a_number, representative))
    }
    fn decision(&self, decision: DecisionId) -> Option<DecisionParties> {
        self.decisions.get(&decision).cloned()
    }
}

/// Officers registered as the constants say; the first two trained for 2021-09-30 or not.
pub fn directory() -> MapDirectory {
    let mut d = MapDirectory::default();
    let trained = vec!["2021-09-30".to_string()];
    for (n, role, training) in [
        (OFFICER, Role::Officer, trained.clone()),
        (UNTRAINED_OFFICER, Role::Officer, vec![]),
        (SUPERVISOR, Role::Supervisor, trained.clone()),
        (REVIEWER, Role::FirstTierReviewer, trained.clone()),
        (SRO, Role::SeniorReviewingOfficial, trained),
    ] {
        d.officers.insert(
            person(n),
            OfficerProfile {
                role,
                office: FieldOffice::Nyc,
                trained_for: training,
            },
        );
    }
    d
}

pub fn policies() -> PolicySet {
    PolicySet::shipped().unwrap()
}

/// A day the 2021-09-30 guidelines were in force.
pub fn in_force() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 5, 15, 0, 0).unwrap()
}

/// A day no guideline version was in force (the 2022–2023 vacatur).
pub fn vacatur() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2022, 12, 1, 15, 0, 0).unwrap()
}

pub fn context<'a>(
    actor: Actor,
    now: DateTime<Utc>,
    policies: &'a PolicySet,
    directory: &'a MapDirectory,
    deadlines: &'a Deadlines,
) -> Context<'a> {
    Context {
        actor,
        now,
        policies,
        directory,
        deadlines,
    }
}
