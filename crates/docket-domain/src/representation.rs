//! The representation aggregate: a Form G-28 on file for one A-number and one representative,
//! which is what lets an attorney or accredited representative ask for review for that person.
//!
//! One aggregate per (A-number, representative) pair, stream `representation/<key>` with the key
//! from [`Representation::key`]: "is a G-28 on file for this pair" is then one stream's state, and
//! recording, withdrawing and recording again a later G-28 stay in one history.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Context, Rejection};
use crate::events::{event_enum, Upcast};
use crate::permissions::CommandKind;
use crate::values::{text, ANumber, Actor, PersonId, Role};

/// Longest reason for a withdrawal, in characters.
const MAX_REASON: usize = 2_000;

crate::values::vocabulary!(
    /// In what capacity a G-28 recognises the representative.
    RepresentativeCapacity, "capacity" {
        /// An attorney.
        Attorney = "attorney",
        /// An accredited representative of a recognised organisation.
        AccreditedRepresentative = "accredited_representative",
    }
);

/// Commands of the representation aggregate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RepresentationCommand {
    /// Records a signed G-28 (intake staff, from the form).
    RecordG28 {
        /// The A-number the form carries.
        a_number: ANumber,
        /// The representative it names.
        representative: PersonId,
        /// Attorney or accredited representative.
        capacity: RepresentativeCapacity,
        /// The date the form was signed; not after today.
        signed_on: NaiveDate,
    },
    /// Withdraws the G-28 on file (intake staff, or the representative themself).
    WithdrawG28 {
        /// Why.
        reason: String,
    },
}

impl RepresentationCommand {
    /// The command's catalogue entry.
    pub fn kind(&self) -> CommandKind {
        match self {
            RepresentationCommand::RecordG28 { .. } => CommandKind::RepresentationRecordG28,
            RepresentationCommand::WithdrawG28 { .. } => CommandKind::RepresentationWithdrawG28,
        }
    }
}

/// `representation.g28_recorded`: a signed G-28 is on file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct G28Recorded {
    /// The A-number.
    pub a_number: ANumber,
    /// The representative.
    pub representative: PersonId,
    /// Attorney or accredited representative.
    pub capacity: RepresentativeCapacity,
    /// When the form was signed.
    pub signed_on: NaiveDate,
    /// Who recorded it.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `representation.g28_withdrawn`: the G-28 on file no longer recognises the representative.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct G28Withdrawn {
    /// The A-number (repeated so projections need no state).
    pub a_number: ANumber,
    /// The representative (repeated likewise).
    pub representative: PersonId,
    /// Why.
    pub reason: String,
    /// Who withdrew it.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

event_enum! {
    /// Events of the representation aggregate.
    RepresentationEvent {
        /// See [`G28Recorded`].
        G28Recorded(G28Recorded) = "representation.g28_recorded" v 1,
        /// See [`G28Withdrawn`].
        G28Withdrawn(G28Withdrawn) = "representation.g28_withdrawn" v 1,
    }
}

impl Upcast for RepresentationEvent {}

/// A representation's state: the latest G-28 for the pair and whether it is active.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Representation {
    /// The latest G-28 recorded, active or since withdrawn.
    pub g28: Option<G28Recorded>,
    /// Its withdrawal, if it was withdrawn.
    pub withdrawn: Option<G28Withdrawn>,
}

impl Representation {
    /// The id part of the stream `representation/<key>` for a pair, e.g.
    /// `A012345678_8c0f…`: letters, digits, `-` and `_` only, as stream ids require.
    pub fn key(a_number: ANumber, representative: PersonId) -> String {
        format!("{a_number}_{representative}")
    }

    /// True if a G-28 is on file and not withdrawn.
    pub fn is_active(&self) -> bool {
        self.g28.is_some() && self.withdrawn.is_none()
    }

    /// The A-number, once a G-28 was recorded.
    pub fn a_number(&self) -> Option<ANumber> {
        self.g28.as_ref().map(|g| g.a_number)
    }

    /// The representative, once a G-28 was recorded.
    pub fn representative(&self) -> Option<PersonId> {
        self.g28.as_ref().map(|g| g.representative)
    }
}

impl Aggregate for Representation {
    type Command = RepresentationCommand;
    type Event = RepresentationEvent;

    fn decide(
        &self,
        command: &RepresentationCommand,
        ctx: &Context<'_>,
    ) -> Result<Vec<RepresentationEvent>, Rejection> {
        ctx.authorize(command.kind())?;
        match command {
            RepresentationCommand::RecordG28 {
                a_number,
                representative,
                capacity,
                signed_on,
            } => {
                if let Some(g) = &self.g28 {
                    if g.a_number != *a_number || g.representative != *representative {
                        return Err(Rejection::rule(
                            "representation_mismatch",
                            format!(
                                "this representation is for {} and {}, not {a_number} and {representative}",
                                g.a_number, g.representative
                            ),
                        ));
                    }
                }
                if self.is_active() {
                    return Err(Rejection::rule(
                        "g28_already_active",
                        format!("a G-28 for {a_number} and {representative} is already on file"),
                    ));
                }
                if *signed_on > ctx.now.date_naive() {
                    return Err(Rejection::rule(
                        "g28_signed_in_future",
                        format!("a G-28 signed on {signed_on} is dated in the future"),
                    ));
                }
                Ok(vec![RepresentationEvent::G28Recorded(G28Recorded {
                    a_number: *a_number,
                    representative: *representative,
                    capacity: *capacity,
                    signed_on: *signed_on,
                    by: ctx.actor,
                    at: ctx.now,
                })])
            }
            RepresentationCommand::WithdrawG28 { reason } => {
                let Some(g) = self.g28.as_ref().filter(|_| self.is_active()) else {
                    return Err(Rejection::rule(
                        "g28_not_active",
                        "no G-28 is on file to withdraw",
                    ));
                };
                // A requester may withdraw only the G-28 that names them; the noncitizen ending the
                // representation goes through intake, which can check who they are.
                if ctx.actor.role == Role::Requester && ctx.actor.person != g.representative {
                    return Err(Rejection::rule(
                        "not_representative",
                        "only the representative named on the G-28 may withdraw it",
                    ));
                }
                let reason = text("reason", reason, MAX_REASON)?;
                Ok(vec![RepresentationEvent::G28Withdrawn(G28Withdrawn {
                    a_number: g.a_number,
                    representative: g.representative,
                    reason,
                    by: ctx.actor,
                    at: ctx.now,
                })])
            }
        }
    }

    fn evolve(mut self, event: &RepresentationEvent) -> Self {
        match event {
            RepresentationEvent::G28Recorded(e) => {
                self.g28 = Some(e.clone());
                self.withdrawn = None;
            }
            RepresentationEvent::G28Withdrawn(e) => self.withdrawn = Some(e.clone()),
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::TimeZone;

    use super::*;
    use crate::aggregate::{Deadlines, DecisionParties, Directory, OfficerProfile};
    use crate::policy::PolicySet;
    use crate::values::DecisionId;

    struct NoDirectory;

    impl Directory for NoDirectory {
        fn officer(&self, _: PersonId) -> Option<OfficerProfile> {
            None
        }
        fn has_g28(&self, _: ANumber, _: PersonId) -> bool {
            false
        }
        fn decision(&self, _: DecisionId) -> Option<DecisionParties> {
            None
        }
    }

    fn policies() -> PolicySet {
        PolicySet::shipped().unwrap()
    }

    fn person(n: u128) -> PersonId {
        PersonId(uuid::Uuid::from_u128(n))
    }

    const CLERK: u128 = 1;
    const REP: u128 = 2;
    const OTHER: u128 = 3;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 15, 12, 0, 0).unwrap()
    }

    fn a_number() -> ANumber {
        ANumber::parse("A012345678").unwrap()
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

    fn decide(
        state: &Representation,
        command: &RepresentationCommand,
        who: u128,
        role: Role,
    ) -> Result<Vec<RepresentationEvent>, Rejection> {
        let policies = policies();
        let deadlines = Deadlines::default();
        let ctx = Context {
            actor: Actor {
                person: person(who),
                role,
            },
            now: now(),
            policies: &policies,
            directory: &NoDirectory,
            deadlines: &deadlines,
        };
        state.decide(command, &ctx)
    }

    fn apply(state: Representation, events: &[RepresentationEvent]) -> Representation {
        events.iter().fold(state, |s, e| s.evolve(e))
    }

    fn signed_yesterday() -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 3, 14).unwrap()
    }

    #[test]
    fn record_withdraw_and_record_again() {
        let s = Representation::default();
        assert!(!s.is_active());
        let e1 = decide(&s, &record(signed_yesterday()), CLERK, Role::IntakeClerk).unwrap();
        let s = apply(s, &e1);
        assert!(s.is_active());
        assert_eq!(s.a_number(), Some(a_number()));
        assert_eq!(s.representative(), Some(person(REP)));
        let e2 = decide(&s, &withdraw(), REP, Role::Requester).unwrap();
        let s = apply(s, &e2);
        assert!(!s.is_active());
        match &e2[0] {
            RepresentationEvent::G28Withdrawn(w) => {
                assert_eq!((w.a_number, w.representative), (a_number(), person(REP)));
                assert_eq!(w.by.person, person(REP));
                assert_eq!(w.at, now());
            }
            other => panic!("unexpected {other:?}"),
        }
        let e3 = decide(&s, &record(signed_yesterday()), CLERK, Role::IntakeClerk).unwrap();
        let s = apply(s, &e3);
        assert!(s.is_active());
        let all: Vec<_> = e1.iter().chain(&e2).chain(&e3).cloned().collect();
        assert_eq!(Representation::fold(&all), s);
    }

    #[test]
    fn rules_are_enforced() {
        let today = now().date_naive();
        let tomorrow = today.succ_opt().unwrap();
        let empty = Representation::default();
        let active = apply(
            empty.clone(),
            &decide(
                &empty,
                &record(signed_yesterday()),
                CLERK,
                Role::IntakeClerk,
            )
            .unwrap(),
        );
        let withdrawn = apply(
            active.clone(),
            &decide(&active, &withdraw(), CLERK, Role::IntakeClerk).unwrap(),
        );
        let other_pair = RepresentationCommand::RecordG28 {
            a_number: ANumber::parse("A999999999").unwrap(),
            representative: person(REP),
            capacity: RepresentativeCapacity::AccreditedRepresentative,
            signed_on: today,
        };
        let blank_reason = RepresentationCommand::WithdrawG28 {
            reason: "  ".into(),
        };
        // (state, command, person, role, expected: Ok or the rejection code)
        type Row<'a> = (
            &'a Representation,
            RepresentationCommand,
            u128,
            Role,
            Result<(), &'static str>,
        );
        let table: Vec<Row> = vec![
            (&empty, record(today), CLERK, Role::IntakeClerk, Ok(())),
            (
                &empty,
                record(tomorrow),
                CLERK,
                Role::IntakeClerk,
                Err("g28_signed_in_future"),
            ),
            (
                &empty,
                record(today),
                REP,
                Role::Requester,
                Err("forbidden"),
            ),
            (
                &empty,
                record(today),
                CLERK,
                Role::Officer,
                Err("forbidden"),
            ),
            (
                &empty,
                withdraw(),
                CLERK,
                Role::IntakeClerk,
                Err("g28_not_active"),
            ),
            (
                &active,
                record(today),
                CLERK,
                Role::IntakeClerk,
                Err("g28_already_active"),
            ),
            (
                &active,
                other_pair.clone(),
                CLERK,
                Role::IntakeClerk,
                Err("representation_mismatch"),
            ),
            (&active, withdraw(), CLERK, Role::IntakeClerk, Ok(())),
            (&active, withdraw(), REP, Role::Requester, Ok(())),
            (
                &active,
                withdraw(),
                OTHER,
                Role::Requester,
                Err("not_representative"),
            ),
            (&active, withdraw(), CLERK, Role::Auditor, Err("forbidden")),
            (
                &active,
                blank_reason,
                CLERK,
                Role::IntakeClerk,
                Err("invalid"),
            ),
            (
                &withdrawn,
                withdraw(),
                CLERK,
                Role::IntakeClerk,
                Err("g28_not_active"),
            ),
            (&withdrawn, record(today), CLERK, Role::IntakeClerk, Ok(())),
            (
                &withdrawn,
                other_pair,
                CLERK,
                Role::IntakeClerk,
                Err("representation_mismatch"),
            ),
        ];
        for (i, (state, command, who, role, expected)) in table.into_iter().enumerate() {
            let got = decide(state, &command, who, role)
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
        let recorded = decide(
            &Representation::default(),
            &record(signed_yesterday()),
            CLERK,
            Role::IntakeClerk,
        )
        .unwrap();
        let state = apply(Representation::default(), &recorded);
        let withdrawn = decide(&state, &withdraw(), CLERK, Role::IntakeClerk).unwrap();
        for event in recorded.iter().chain(&withdrawn) {
            for format in [crate::events::Format::Postcard, crate::events::Format::Json] {
                let bytes = event.encode(format).unwrap();
                let back =
                    RepresentationEvent::decode(event.name(), event.version(), &bytes, format)
                        .unwrap();
                assert_eq!(back.as_ref(), Some(event));
            }
        }
    }
}
