//! A domain command together with the stream it addresses: what travels on the bus.
//!
//! Most of the domain's commands do not name their aggregate (`case.attach_record` says which
//! record, not which case), because the aggregate is the stream the service decides on. On the
//! wire the body names it beside the command's fields: `case` for case commands, `person` for
//! officer commands, `a_number` and `representative` for representation commands, `review` for
//! review commands.

use docket_domain::case::CaseCommand;
use docket_domain::officer::OfficerCommand;
use docket_domain::representation::RepresentationCommand;
use docket_domain::review::ReviewCommand;
use docket_domain::values::{CaseId, PersonId, ReviewId};
use docket_domain::{ANumber, CommandKind, StreamKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::catalogue::{self, Service};

/// A command of any aggregate, with the stream it is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DomainCommand {
    /// A command of the case `case`.
    Case {
        /// The case (stream `case/<case>`).
        case: CaseId,
        /// The command.
        command: CaseCommand,
    },
    /// A command of the officer `person`.
    Officer {
        /// The officer (stream `officer/<person>`).
        person: PersonId,
        /// The command.
        command: OfficerCommand,
    },
    /// A command of the G-28 representation of `a_number` by `representative`.
    Representation {
        /// The represented noncitizen.
        a_number: ANumber,
        /// The representative (stream `representation/<a_number>_<representative>`).
        representative: PersonId,
        /// The command.
        command: RepresentationCommand,
    },
    /// A command of the review `review`.
    Review {
        /// The review (stream `review/<review>`).
        review: ReviewId,
        /// The command.
        command: ReviewCommand,
    },
}

impl DomainCommand {
    /// A case command for `case`. For `case.open` the command's own `case` must be the same.
    pub fn case(case: CaseId, command: CaseCommand) -> Self {
        DomainCommand::Case { case, command }
    }

    /// An officer command for `person`. For `officer.register` the command's `person` must be
    /// the same.
    pub fn officer(person: PersonId, command: OfficerCommand) -> Self {
        DomainCommand::Officer { person, command }
    }

    /// A representation command for the pair. For `representation.record_g28` the command's
    /// pair must be the same.
    pub fn representation(
        a_number: ANumber,
        representative: PersonId,
        command: RepresentationCommand,
    ) -> Self {
        DomainCommand::Representation {
            a_number,
            representative,
            command,
        }
    }

    /// A review command for `review`. For `review.request` the command's `review` must be the
    /// same.
    pub fn review(review: ReviewId, command: ReviewCommand) -> Self {
        DomainCommand::Review { review, command }
    }

    /// The command's catalogue entry.
    pub fn kind(&self) -> CommandKind {
        match self {
            DomainCommand::Case { command, .. } => command.kind(),
            DomainCommand::Officer { command, .. } => command.kind(),
            DomainCommand::Representation { command, .. } => command.kind(),
            DomainCommand::Review { command, .. } => command.kind(),
        }
    }

    /// The service that owns it.
    pub fn service(&self) -> Service {
        catalogue::service_of(self.kind())
    }

    /// Its subject.
    pub fn subject(&self) -> String {
        catalogue::subject(self.kind())
    }

    /// The log stream it addresses.
    pub fn key(&self) -> StreamKey {
        match self {
            DomainCommand::Case { case, .. } => StreamKey::Case(*case),
            DomainCommand::Officer { person, .. } => StreamKey::Officer(*person),
            DomainCommand::Representation {
                a_number,
                representative,
                ..
            } => StreamKey::Representation(*a_number, *representative),
            DomainCommand::Review { review, .. } => StreamKey::Review(*review),
        }
    }

    /// The name of the log stream it addresses, e.g. `case/8c0f…` or
    /// `representation/A012345678_8c0f…`.
    pub fn stream(&self) -> String {
        self.key().to_string()
    }
}

/// The body fields that name a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CaseTarget {
    pub(crate) case: CaseId,
}

/// The body fields that name an officer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OfficerTarget {
    pub(crate) person: PersonId,
}

/// The body fields that name a representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RepresentationTarget {
    pub(crate) a_number: ANumber,
    pub(crate) representative: PersonId,
}

/// The body fields that name a review.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReviewTarget {
    pub(crate) review: ReviewId,
}

/// What the codec needs to know about one aggregate's command enum.
pub(crate) trait AggregateCommand: Serialize + DeserializeOwned {
    /// The body fields that name the target stream.
    type Target: Serialize + DeserializeOwned + PartialEq + Copy;

    /// The target, when the command's own fields name it.
    fn carried_target(&self) -> Option<Self::Target>;
}

impl AggregateCommand for CaseCommand {
    type Target = CaseTarget;
    fn carried_target(&self) -> Option<CaseTarget> {
        match self {
            CaseCommand::Open { case, .. } => Some(CaseTarget { case: *case }),
            _ => None,
        }
    }
}

impl AggregateCommand for OfficerCommand {
    type Target = OfficerTarget;
    fn carried_target(&self) -> Option<OfficerTarget> {
        match self {
            OfficerCommand::Register { person, .. } => Some(OfficerTarget { person: *person }),
            _ => None,
        }
    }
}

impl AggregateCommand for RepresentationCommand {
    type Target = RepresentationTarget;
    fn carried_target(&self) -> Option<RepresentationTarget> {
        match self {
            RepresentationCommand::RecordG28 {
                a_number,
                representative,
                ..
            } => Some(RepresentationTarget {
                a_number: *a_number,
                representative: *representative,
            }),
            _ => None,
        }
    }
}

impl AggregateCommand for ReviewCommand {
    type Target = ReviewTarget;
    fn carried_target(&self) -> Option<ReviewTarget> {
        match self {
            ReviewCommand::Request { review, .. } => Some(ReviewTarget { review: *review }),
            _ => None,
        }
    }
}
