//! The shape every aggregate shares: `decide` (state + command → events or a typed rejection) and
//! `evolve` (state + event → state), the context a decision sees, and the rejections.

use chrono::{DateTime, Days, Utc};

use crate::events::DomainEvent;
use crate::permissions::{self, CommandKind};
use crate::policy::PolicySet;
use crate::stream::AggregateKind;
use crate::values::{
    ANumber, Actor, CaseId, DecisionId, EnforcementAction, FieldOffice, InvalidValue, PersonId,
    ReviewTier, Role,
};

/// A command of an aggregate, with its catalogue entry (whose stable name labels it everywhere).
pub trait AggregateCommand {
    /// The command's catalogue entry.
    fn kind(&self) -> CommandKind;
}

/// An aggregate: a consistency boundary whose state is the fold of its events.
pub trait Aggregate: Default + Clone {
    /// The kind of the streams it lives in, `<KIND>/<id>` (see [`crate::stream`]).
    const KIND: AggregateKind;
    /// What it accepts.
    type Command: AggregateCommand;
    /// What it records: one part of [`DomainEvent`], into which it converts and back.
    type Event: Clone + Into<DomainEvent> + TryFrom<DomainEvent, Error = DomainEvent>;

    /// Decides a command against the current state: the events to record, or why not.
    /// Checks the actor's permission first (see [`crate::permissions`]).
    fn decide(
        &self,
        command: &Self::Command,
        ctx: &Context<'_>,
    ) -> Result<Vec<Self::Event>, Rejection>;

    /// Applies one recorded event.
    fn evolve(self, event: &Self::Event) -> Self;

    /// Folds events into a state.
    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self
    where
        Self::Event: 'a,
    {
        events
            .into_iter()
            .fold(Self::default(), |state, e| state.evolve(e))
    }
}

/// What an officer's registration and training say, as another aggregate recorded them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfficerProfile {
    /// The role the person is registered in.
    pub role: Role,
    /// Their field office.
    pub office: FieldOffice,
    /// Policy versions they completed training for.
    pub trained_for: Vec<String>,
}

/// Who decided a case's decision: for the independence of reviewers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionParties {
    /// The case decided.
    pub case: CaseId,
    /// The deciding officer.
    pub officer: PersonId,
    /// The supervisor who approved it, if one did.
    pub approver: Option<PersonId>,
    /// The office the case belongs to.
    pub office: FieldOffice,
    /// The subject's A-number.
    pub a_number: ANumber,
    /// The enforcement action decided.
    pub action: EnforcementAction,
}

/// Read-only lookups into other aggregates' state that some rules need. Services answer from the
/// state they keep in memory; tests from a map. No IO happens here.
pub trait Directory {
    /// A registered officer's profile.
    fn officer(&self, person: PersonId) -> Option<OfficerProfile>;
    /// True if a G-28 is on file for `representative` and `a_number`, and not withdrawn.
    fn has_g28(&self, a_number: ANumber, representative: PersonId) -> bool;
    /// Who made (and approved) a recorded decision.
    fn decision(&self, decision: DecisionId) -> Option<DecisionParties>;
}

/// Review deadlines and windows, in days; configuration, not law.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Deadlines {
    /// Acknowledge a review request within this many business days.
    pub acknowledge_business_days: u32,
    /// Decide tier 1 within this many calendar days of the request.
    pub tier1_days: u32,
    /// … or this many when the person is detained or removal is imminent.
    pub tier1_priority_days: u32,
    /// The requester may ask for tier 2 within this many days of the tier-1 outcome.
    pub tier2_request_days: u32,
    /// Decide tier 2 within this many days of its request.
    pub tier2_days: u32,
    /// … or this many when prioritised.
    pub tier2_priority_days: u32,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            acknowledge_business_days: 1,
            tier1_days: 14,
            tier1_priority_days: 3,
            tier2_request_days: 30,
            tier2_days: 30,
            tier2_priority_days: 7,
        }
    }
}

/// The due times the review aggregate records when a step happens, as pure functions of the
/// step's time, this configuration and (for tier 2 and prioritisation) what the review already
/// holds: the review aggregate records exactly these, and an audit recomputes them. `None` when
/// the result is out of range.
impl Deadlines {
    /// When acknowledging a review requested at `requested_at` is due:
    /// [`Deadlines::acknowledge_business_days`] business days later (see
    /// [`crate::calendar::add_business_days`]).
    pub fn acknowledge_due(&self, requested_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        crate::calendar::add_business_days(requested_at, self.acknowledge_business_days)
    }

    /// When the tier-1 decision of a review requested at `requested_at` is due, before any
    /// prioritisation: [`Deadlines::tier1_days`] calendar days later.
    pub fn tier1_due(&self, requested_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        plus_days(requested_at, self.tier1_days)
    }

    /// When the window to ask for tier 2 closes, tier 1 decided at `decided_at`.
    pub fn tier2_request_closes(&self, decided_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        plus_days(decided_at, self.tier2_request_days)
    }

    /// When the tier-2 decision asked for at `requested_at` is due: sooner when the review is
    /// already prioritised.
    pub fn tier2_due(
        &self,
        requested_at: DateTime<Utc>,
        prioritised: bool,
    ) -> Option<DateTime<Utc>> {
        let days = if prioritised {
            self.tier2_priority_days
        } else {
            self.tier2_days
        };
        plus_days(requested_at, days)
    }

    /// The open tier's decision due time once the review is prioritised at `prioritised_at`:
    /// the tier's priority period counted from then, so that prioritising late never turns a
    /// deadline into one already missed, and never later than `current`, so that it never
    /// extends one.
    pub fn prioritised_due(
        &self,
        tier: ReviewTier,
        prioritised_at: DateTime<Utc>,
        current: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let days = match tier {
            ReviewTier::Tier1 => self.tier1_priority_days,
            ReviewTier::Tier2 => self.tier2_priority_days,
        };
        plus_days(prioritised_at, days).map(|shortened| current.min(shortened))
    }
}

/// `days` calendar days after `at`.
fn plus_days(at: DateTime<Utc>, days: u32) -> Option<DateTime<Utc>> {
    at.checked_add_days(Days::new(days.into()))
}

/// Everything a decision may look at besides the aggregate's own state. Time comes in here; the
/// domain never reads a clock.
pub struct Context<'a> {
    /// Who is acting.
    pub actor: Actor,
    /// When the command is decided.
    pub now: DateTime<Utc>,
    /// The guideline policy versions.
    pub policies: &'a PolicySet,
    /// Lookups into other aggregates.
    pub directory: &'a dyn Directory,
    /// Review deadlines.
    pub deadlines: &'a Deadlines,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("actor", &self.actor)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl Context<'_> {
    /// Refuses the command unless the actor's role may issue it.
    pub fn authorize(&self, command: CommandKind) -> Result<(), Rejection> {
        if permissions::allowed(self.actor.role, command) {
            Ok(())
        } else {
            Err(Rejection::Forbidden {
                role: self.actor.role,
                command,
            })
        }
    }
}

/// Why a command was refused. `code()` is stable: services put it in structured errors.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The actor's role may not issue this command.
    #[error("role {role} may not issue {command}")]
    Forbidden {
        /// The actor's role.
        role: Role,
        /// The command refused.
        command: CommandKind,
    },
    /// A field of the command is malformed.
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    /// The command does not fit the aggregate's current state (e.g. a case not yet opened).
    #[error("{0}")]
    State(String),
    /// A rule of the guidelines or the review process forbids it.
    #[error("{message}")]
    Rule {
        /// Stable rule code, e.g. `whole_record_not_attested`.
        rule: &'static str,
        /// What happened, for a person.
        message: String,
    },
}

impl Rejection {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Forbidden { .. } => "forbidden",
            Rejection::Invalid(_) => "invalid",
            Rejection::State(_) => "invalid_state",
            Rejection::Rule { rule, .. } => rule,
        }
    }

    /// A rule rejection.
    pub fn rule(rule: &'static str, message: impl Into<String>) -> Self {
        Rejection::Rule {
            rule,
            message: message.into(),
        }
    }

    /// A state rejection.
    pub fn state(message: impl Into<String>) -> Self {
        Rejection::State(message.into())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn review_due_times_follow_the_configuration() {
        let d = Deadlines::default();
        let at = |day: u32, hour: u32| Utc.with_ymd_and_hms(2024, 3, day, hour, 0, 0).unwrap();
        // Friday 15 March 2024, 15:00.
        let friday = at(15, 15);
        assert_eq!(
            d.acknowledge_due(friday),
            Some(at(18, 15)),
            "the next Monday"
        );
        assert_eq!(d.tier1_due(friday), Some(at(29, 15)), "14 calendar days");
        assert_eq!(
            d.tier2_request_closes(friday),
            Some(friday + chrono::Duration::days(30))
        );
        assert_eq!(
            d.tier2_due(friday, false),
            Some(friday + chrono::Duration::days(30))
        );
        assert_eq!(
            d.tier2_due(friday, true),
            Some(at(22, 15)),
            "7 days when prioritised"
        );
        // Prioritising shortens from its own time, never extends.
        let due = at(29, 15);
        assert_eq!(
            d.prioritised_due(ReviewTier::Tier1, at(20, 9), due),
            Some(at(23, 9)),
            "3 days from the prioritisation"
        );
        assert_eq!(
            d.prioritised_due(ReviewTier::Tier1, at(28, 9), due),
            Some(due),
            "already sooner than 3 days away: kept"
        );
        assert_eq!(
            d.prioritised_due(ReviewTier::Tier2, at(20, 9), due),
            Some(at(27, 9)),
            "7 days for tier 2"
        );
        let other = Deadlines {
            acknowledge_business_days: 3,
            tier1_days: 1,
            ..Deadlines::default()
        };
        assert_eq!(other.acknowledge_due(friday), Some(at(20, 15)));
        assert_eq!(other.tier1_due(friday), Some(at(16, 15)));
        assert_eq!(d.tier1_due(DateTime::<Utc>::MAX_UTC), None);
    }
}
