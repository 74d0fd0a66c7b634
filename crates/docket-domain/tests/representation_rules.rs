//! The representation aggregate's rules: recording, withdrawing and recording again a G-28 for
//! one (A-number, representative) pair, who may do which, the stream key and the encodings.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use docket_domain::events::Format;
use docket_domain::representation::{
    G28Recorded, G28Withdrawn, Representation, RepresentationCommand, RepresentationEvent,
    RepresentativeCapacity,
};
use docket_domain::values::{ANumber, Actor, Role};
use docket_domain::Aggregate;

use crate::support::{actor, person, MapDirectory, TestFramework};

const CLERK: u128 = 1;
const REP: u128 = 2;
const OTHER: u128 = 3;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 15, 12, 0, 0).unwrap()
}

fn a_number() -> ANumber {
    ANumber::parse("A012345678").unwrap()
}

fn clerk() -> Actor {
    actor(CLERK, Role::IntakeClerk)
}

fn record(signed_on: NaiveDate) -> RepresentationCommand {
    RepresentationCommand::RecordG28 {
        a_number: a_number(),
        representative: person(REP),
        capacity: RepresentativeCapacity::Attorney,
        signed_on,
    }
}

fn withdraw() -> RepresentationCommand {
    RepresentationCommand::WithdrawG28 {
        reason: "representation ended".into(),
    }
}

fn signed_yesterday() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, 14).unwrap()
}

/// A representation with no G-28 yet, decided at [`now`]; the rules look nothing up.
fn representation() -> TestFramework<Representation> {
    let mut f = TestFramework::with(MapDirectory::default());
    f.now = now();
    f
}

#[test]
fn record_withdraw_and_record_again() {
    let mut r = representation();
    assert!(!r.state.is_active());
    r.when(clerk(), record(signed_yesterday()))
        .then_events(&[RepresentationEvent::G28Recorded(G28Recorded {
            a_number: a_number(),
            representative: person(REP),
            capacity: RepresentativeCapacity::Attorney,
            signed_on: signed_yesterday(),
            by: clerk(),
            at: now(),
        })]);
    assert!(r.state.is_active());
    assert_eq!(r.state.a_number(), Some(a_number()));
    assert_eq!(r.state.representative(), Some(person(REP)));
    match r.when(actor(REP, Role::Requester), withdraw()).then_one() {
        RepresentationEvent::G28Withdrawn(w) => {
            assert_eq!((w.a_number, w.representative), (a_number(), person(REP)));
            assert_eq!(w.by.person, person(REP));
            assert_eq!(w.at, now());
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!r.state.is_active());
    r.when(clerk(), record(signed_yesterday())).then_ok();
    assert!(r.state.is_active());
    assert_eq!(r.events.len(), 3);
    assert_eq!(Representation::fold(&r.events), r.state);
}

#[test]
fn rules_are_enforced() {
    let today = now().date_naive();
    let tomorrow = today.succ_opt().unwrap();
    let empty: Vec<RepresentationEvent> = Vec::new();
    let active = representation()
        .when(clerk(), record(signed_yesterday()))
        .then_ok();
    let withdrawn = {
        let mut r = representation().given(active.clone());
        r.when(clerk(), withdraw()).then_ok();
        r.events
    };
    let other_pair = RepresentationCommand::RecordG28 {
        a_number: ANumber::parse("A999999999").unwrap(),
        representative: person(REP),
        capacity: RepresentativeCapacity::AccreditedRepresentative,
        signed_on: today,
    };
    let blank_reason = RepresentationCommand::WithdrawG28 {
        reason: "  ".into(),
    };
    // (given events, command, person, role, expected: Ok or the rejection code)
    type Row<'a> = (
        &'a [RepresentationEvent],
        RepresentationCommand,
        u128,
        Role,
        Result<(), &'static str>,
    );
    #[rustfmt::skip]
    let table: Vec<Row> = vec![
        (&empty, record(today), CLERK, Role::IntakeClerk, Ok(())),
        (&empty, record(tomorrow), CLERK, Role::IntakeClerk, Err("g28_signed_in_future")),
        (&empty, record(today), REP, Role::Requester, Err("forbidden")),
        (&empty, record(today), CLERK, Role::Officer, Err("forbidden")),
        (&empty, withdraw(), CLERK, Role::IntakeClerk, Err("g28_not_active")),
        (&active, record(today), CLERK, Role::IntakeClerk, Err("g28_already_active")),
        (&active, other_pair.clone(), CLERK, Role::IntakeClerk, Err("representation_mismatch")),
        (&active, withdraw(), CLERK, Role::IntakeClerk, Ok(())),
        (&active, withdraw(), REP, Role::Requester, Ok(())),
        (&active, withdraw(), OTHER, Role::Requester, Err("not_representative")),
        (&active, withdraw(), CLERK, Role::Auditor, Err("forbidden")),
        (&active, blank_reason, CLERK, Role::IntakeClerk, Err("invalid")),
        (&withdrawn, withdraw(), CLERK, Role::IntakeClerk, Err("g28_not_active")),
        (&withdrawn, record(today), CLERK, Role::IntakeClerk, Ok(())),
        (&withdrawn, other_pair, CLERK, Role::IntakeClerk, Err("representation_mismatch")),
    ];
    for (i, (given, command, who, role, expected)) in table.into_iter().enumerate() {
        let got = representation()
            .given(given.to_vec())
            .when(actor(who, role), command.clone())
            .result()
            .map(|_| ())
            .map_err(|r| r.code());
        assert_eq!(got, expected, "row {i}: {command:?} as {role}");
    }
}

#[test]
fn keys_are_valid_stream_ids_and_distinct_per_pair() {
    let mut seen = HashMap::new();
    for a in ["A012345678", "A999999999"] {
        for p in [REP, OTHER] {
            let key = Representation::key(ANumber::parse(a).unwrap(), person(p));
            assert!(key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert!(seen.insert(key, (a, p)).is_none());
        }
    }
    assert_eq!(
        Representation::key(a_number(), person(REP)),
        "A012345678_00000000-0000-0000-0000-000000000002"
    );
}

#[test]
fn events_round_trip_in_both_formats() {
    let mut r = representation();
    r.when(clerk(), record(signed_yesterday())).then_ok();
    r.when(clerk(), withdraw()).then_ok();
    assert!(matches!(
        r.events[..],
        [
            RepresentationEvent::G28Recorded(_),
            RepresentationEvent::G28Withdrawn(G28Withdrawn { .. })
        ]
    ));
    for event in &r.events {
        for format in [Format::Postcard, Format::Json] {
            let bytes = event.encode(format).unwrap();
            let back =
                RepresentationEvent::decode(event.name(), event.version(), &bytes, format).unwrap();
            assert_eq!(back.as_ref(), Some(event));
        }
    }
}
