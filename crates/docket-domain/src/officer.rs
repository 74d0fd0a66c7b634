//! The officer aggregate: a person registered in a role at a field office, and the guideline
//! training they completed (a decision needs training for the policy version in force).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Context, OfficerProfile, Rejection};
use crate::codec::{event_enum, Upcast};
use crate::permissions::CommandKind;
use crate::stream::AggregateKind;
use crate::values::{text, Actor, FieldOffice, PersonId, Role};

/// Commands of the officer aggregate (stream `officer/<person id>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OfficerCommand {
    /// Registers a person in a role at an office.
    Register {
        /// The person registered.
        person: PersonId,
        /// Their field office.
        office: FieldOffice,
        /// The role they act in.
        role: Role,
    },
    /// Records completed training on a policy version.
    CompleteTraining {
        /// The policy version trained on.
        policy_version: String,
        /// The training module (web-based, in person, …).
        module: String,
        /// When it was completed.
        completed_on: NaiveDate,
    },
}

impl OfficerCommand {
    /// The command's catalogue entry.
    pub fn kind(&self) -> CommandKind {
        match self {
            OfficerCommand::Register { .. } => CommandKind::OfficerRegister,
            OfficerCommand::CompleteTraining { .. } => CommandKind::OfficerCompleteTraining,
        }
    }
}

/// `officer.registered`: a person was registered in a role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficerRegistered {
    /// The person.
    pub person: PersonId,
    /// Their office.
    pub office: FieldOffice,
    /// Their role.
    pub role: Role,
    /// Who registered them.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `officer.training_completed`: training on a policy version was completed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingCompleted {
    /// The policy version.
    pub policy_version: String,
    /// The module.
    pub module: String,
    /// When it was completed.
    pub completed_on: NaiveDate,
    /// Who recorded it.
    pub by: Actor,
    /// When it was recorded.
    pub at: DateTime<Utc>,
}

event_enum! {
    /// Events of the officer aggregate.
    OfficerEvent {
        /// See [`OfficerRegistered`].
        Registered(OfficerRegistered) = "officer.registered" v 1,
        /// See [`TrainingCompleted`].
        TrainingCompleted(TrainingCompleted) = "officer.training_completed" v 1,
    }
}

impl Upcast for OfficerEvent {}

/// An officer's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Officer {
    /// The registration, once made.
    pub registration: Option<OfficerRegistered>,
    /// Policy versions trained on, in order.
    pub trained_for: Vec<String>,
}

impl Officer {
    /// The profile other aggregates' rules look at.
    pub fn profile(&self) -> Option<OfficerProfile> {
        self.registration.as_ref().map(|r| OfficerProfile {
            role: r.role,
            office: r.office,
            trained_for: self.trained_for.clone(),
        })
    }
}

impl Aggregate for Officer {
    const KIND: AggregateKind = AggregateKind::Officer;

    type Command = OfficerCommand;
    type Event = OfficerEvent;

    fn decide(
        &self,
        command: &OfficerCommand,
        ctx: &Context<'_>,
    ) -> Result<Vec<OfficerEvent>, Rejection> {
        ctx.authorize(command.kind())?;
        match command {
            OfficerCommand::Register {
                person,
                office,
                role,
            } => {
                if self.registration.is_some() {
                    return Err(Rejection::state("the officer is already registered"));
                }
                if matches!(role, Role::Requester | Role::System) {
                    return Err(Rejection::rule(
                        "role_not_registrable",
                        format!("role {role} is not one staff are registered in"),
                    ));
                }
                Ok(vec![OfficerEvent::Registered(OfficerRegistered {
                    person: *person,
                    office: *office,
                    role: *role,
                    by: ctx.actor,
                    at: ctx.now,
                })])
            }
            OfficerCommand::CompleteTraining {
                policy_version,
                module,
                completed_on,
            } => {
                if self.registration.is_none() {
                    return Err(Rejection::state("the officer is not registered"));
                }
                if ctx.policies.get(policy_version).is_none() {
                    return Err(Rejection::rule(
                        "unknown_policy_version",
                        format!("there is no policy version {policy_version:?}"),
                    ));
                }
                if *completed_on > ctx.now.date_naive() {
                    return Err(Rejection::rule(
                        "training_in_future",
                        format!("training completed on {completed_on} is in the future"),
                    ));
                }
                let module = text("module", module, 200)?;
                Ok(vec![OfficerEvent::TrainingCompleted(TrainingCompleted {
                    policy_version: policy_version.clone(),
                    module,
                    completed_on: *completed_on,
                    by: ctx.actor,
                    at: ctx.now,
                })])
            }
        }
    }

    fn evolve(mut self, event: &OfficerEvent) -> Self {
        match event {
            OfficerEvent::Registered(e) => self.registration = Some(e.clone()),
            OfficerEvent::TrainingCompleted(e) => {
                if !self.trained_for.contains(&e.policy_version) {
                    self.trained_for.push(e.policy_version.clone());
                }
            }
        }
        self
    }
}

impl crate::aggregate::AggregateCommand for OfficerCommand {
    fn kind(&self) -> CommandKind {
        OfficerCommand::kind(self)
    }
}
