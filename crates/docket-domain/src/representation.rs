//! The representation aggregate: a Form G-28 on file for one A-number and one representative,
//! which is what lets an attorney or accredited representative ask for review for that person.
//!
//! One aggregate per (A-number, representative) pair, stream `representation/<key>` with the key
//! from [`Representation::key`]: "is a G-28 on file for this pair" is then one stream's state, and
//! recording, withdrawing and recording again a later G-28 stay in one history.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Context, Rejection};
use crate::codec::{event_enum, Upcast};
use crate::permissions::CommandKind;
use crate::stream::{AggregateKind, StreamKey};
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
    /// `A012345678_8c0f…`: letters, digits, `-` and `_` only, as stream ids require (the naming
    /// rule is [`crate::stream`]'s).
    pub fn key(a_number: ANumber, representative: PersonId) -> String {
        StreamKey::Representation(a_number, representative).id()
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
    const KIND: AggregateKind = AggregateKind::Representation;

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

impl crate::aggregate::AggregateCommand for RepresentationCommand {
    fn kind(&self) -> CommandKind {
        RepresentationCommand::kind(self)
    }
}
