//! The staff: the 25 field offices' directors, officers, supervisors, reviewers and clerks, the
//! Senior Reviewing Officials at headquarters and the representatives, with their training.

use super::*;

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
