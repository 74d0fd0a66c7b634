//! The shape every aggregate shares: `decide` (state + command → events or a typed rejection) and
//! `evolve` (state + event → state), the context a decision sees, and the rejections.

use chrono::{DateTime, Utc};

use crate::permissions::{self, CommandKind};
use crate::policy::PolicySet;
use crate::values::{
    ANumber, Actor, CaseId, DecisionId, EnforcementAction, FieldOffice, InvalidValue, PersonId,
    Role,
};

/// An aggregate: a consistency boundary whose state is the fold of its events.
pub trait Aggregate: Default + Clone {
    /// What it accepts.
    type Command;
    /// What it records.
    type Event: Clone;

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
