//! The pure multi-aggregate fold: commits applied once and in order, streams no aggregate owns
//! never decoded, and the directory answering from the folded states.

use docket_domain::case::Case;
use docket_domain::officer::{Officer, OfficerCommand};
use docket_domain::representation::{
    Representation, RepresentationCommand, RepresentativeCapacity,
};
use docket_domain::values::{FieldOffice, Role};
use docket_domain::world::WorldView;
use docket_domain::{ANumber, Directory, DomainEvent, StreamKey};

use crate::support::{actor, in_force, person, MapDirectory, TestFramework};

fn wrap<E: Into<DomainEvent>>(events: Vec<E>) -> Vec<DomainEvent> {
    events.into_iter().map(Into::into).collect()
}

#[test]
fn commits_fold_once_and_the_directory_answers_from_them() {
    let officer = TestFramework::<Officer>::with(MapDirectory::default())
        .when(
            actor(50, Role::FieldOfficeDirector),
            OfficerCommand::Register {
                person: person(60),
                office: FieldOffice::Sea,
                role: Role::Officer,
            },
        )
        .then_ok();
    let a_number = ANumber::parse("A012345678").unwrap();
    let g28 = TestFramework::<Representation>::with(MapDirectory::default())
        .when(
            actor(1, Role::IntakeClerk),
            RepresentationCommand::RecordG28 {
                a_number,
                representative: person(2),
                capacity: RepresentativeCapacity::Attorney,
                signed_on: in_force().date_naive(),
            },
        )
        .then_ok();
    let officer_stream = StreamKey::Officer(person(60)).to_string();
    let g28_stream = StreamKey::Representation(a_number, person(2)).to_string();

    let mut world = WorldView::default();
    world
        .apply(1, &officer_stream, Some("k1"), || Ok(wrap(officer.clone())))
        .unwrap();
    // A stream no aggregate owns advances the position; its events are never asked for.
    world
        .apply(2, "notification/n1", None, || panic!("not decoded"))
        .unwrap();
    world
        .apply(3, &g28_stream, None, || Ok(wrap(g28.clone())))
        .unwrap();
    // A position already applied changes nothing (the fold is not asked for its events).
    world
        .apply(3, &g28_stream, None, || panic!("applied twice"))
        .unwrap();
    assert_eq!(world.applied, 3);
    assert_eq!(world.idempotency_keys.get("k1"), Some(&1));
    assert_eq!(world.get::<Officer>(&officer_stream).0, 1);
    assert_eq!(
        world
            .state::<Representation>(&StreamKey::Representation(a_number, person(2)))
            .map(|(revision, r)| (*revision, r.is_active())),
        Some((3, true))
    );
    assert_eq!(
        world.officer(person(60)).map(|p| p.office),
        Some(FieldOffice::Sea)
    );
    assert!(world.has_g28(a_number, person(2)));
    assert!(!world.has_g28(a_number, person(3)));
    // An event in another aggregate's stream stops the fold with a reason.
    let wrong = world.apply(
        4,
        &StreamKey::Case(docket_domain::values::CaseId(uuid::Uuid::nil())).to_string(),
        None,
        || Ok(wrap(officer.clone())),
    );
    assert!(wrong
        .unwrap_err()
        .contains("does not belong in a case stream"));
    assert_eq!(world.get::<Case>("case/x").0, 0);
}
