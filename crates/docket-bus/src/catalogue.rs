//! The command catalogue: which service owns each command, its NATS subject, endpoint name and
//! queue group, and where the command sits in the domain's command enums (the one table the
//! codec reads).

use std::fmt;

use docket_domain::CommandKind;

use crate::audit::QueryKind;

/// Prefix of every command subject.
pub const SUBJECT_PREFIX: &str = "docket.cmd";

/// A Docket service: the owner of a set of commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// Opens cases, attaches records, registers officers and their training, records G-28s.
    Intake,
    /// Attestation, factors, guidance, proposals, approvals and decisions.
    Assessment,
    /// Review of enforcement actions, both tiers, and their deadlines.
    Review,
    /// Reacts to events and notifies people. It accepts no domain command (its endpoint list is
    /// empty) but still registers as a micro service, so `$SRV.PING` and `$SRV.INFO` see it.
    Notification,
    /// Checkpoints, proofs and receipts: the audit queries ([`QueryKind`]), answered where the
    /// checkpointer runs. It owns no command.
    Audit,
}

impl Service {
    /// Every service.
    pub const ALL: &'static [Service] = &[
        Service::Intake,
        Service::Assessment,
        Service::Review,
        Service::Notification,
        Service::Audit,
    ];

    /// The stable name, e.g. `intake`.
    pub fn name(self) -> &'static str {
        match self {
            Service::Intake => "intake",
            Service::Assessment => "assessment",
            Service::Review => "review",
            Service::Notification => "notification",
            Service::Audit => "audit",
        }
    }

    /// Parses a stable name.
    pub fn parse(name: &str) -> Option<Service> {
        Service::ALL.iter().copied().find(|s| s.name() == name)
    }

    /// The name it registers under with the NATS micro service API, `docket-<service>`.
    pub fn micro_name(self) -> String {
        format!("docket-{}", self.name())
    }

    /// The queue group its instances share, `docket-<service>`.
    pub fn queue_group(self) -> String {
        format!("docket-{}", self.name())
    }

    /// The subject prefix of its commands (the micro service's endpoint group),
    /// `docket.cmd.<service>`.
    pub fn subject_prefix(self) -> String {
        format!("{SUBJECT_PREFIX}.{}", self.name())
    }

    /// The commands it owns, in catalogue order.
    pub fn commands(self) -> impl Iterator<Item = CommandKind> {
        CommandKind::ALL
            .iter()
            .copied()
            .filter(move |k| spec(*k).service == self)
    }

    /// The queries it answers, in catalogue order.
    pub fn queries(self) -> impl Iterator<Item = QueryKind> {
        QueryKind::ALL
            .iter()
            .copied()
            .filter(move |q| q.service() == self)
    }

    /// Its endpoints: its commands, then its queries.
    pub fn endpoints(self) -> impl Iterator<Item = Endpoint> {
        self.commands()
            .map(Endpoint::Command)
            .chain(self.queries().map(Endpoint::Query))
    }
}

/// What a subject names: a command or a query of the catalogue. Both take the same path through
/// [`crate::transport`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A domain command.
    Command(CommandKind),
    /// An audit query.
    Query(QueryKind),
}

impl Endpoint {
    /// The service that serves it.
    pub fn service(self) -> Service {
        match self {
            Endpoint::Command(kind) => service_of(kind),
            Endpoint::Query(kind) => kind.service(),
        }
    }

    /// Its endpoint name (the last subject token), e.g. `case_open` or `receipt`.
    pub fn name(self) -> String {
        match self {
            Endpoint::Command(kind) => endpoint_name(kind),
            Endpoint::Query(kind) => kind.name().to_owned(),
        }
    }

    /// Its subject.
    pub fn subject(self) -> String {
        match self {
            Endpoint::Command(kind) => subject(kind),
            Endpoint::Query(kind) => kind.subject(),
        }
    }

    /// The endpoint a subject names, if it is one of the catalogue's.
    pub fn parse(subject: &str) -> Option<Endpoint> {
        if let Some(kind) = parse_subject(subject) {
            return Some(Endpoint::Command(kind));
        }
        let endpoint = subject
            .strip_prefix(SUBJECT_PREFIX)?
            .strip_prefix('.')?
            .strip_prefix(Service::Audit.name())?
            .strip_prefix('.')?;
        QueryKind::ALL
            .iter()
            .copied()
            .find(|q| q.name() == endpoint)
            .map(Endpoint::Query)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Command(kind) => write!(f, "{kind}"),
            Endpoint::Query(kind) => write!(f, "audit.{kind}"),
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The aggregate (and log stream kind) a command addresses: the domain's, whose stream naming it
/// is.
pub use docket_domain::AggregateKind;

/// The body fields that name the target stream of a command addressing `kind`.
pub fn target_fields(kind: AggregateKind) -> &'static [&'static str] {
    match kind {
        AggregateKind::Case => &["case"],
        AggregateKind::Officer => &["person"],
        AggregateKind::Representation => &["a_number", "representative"],
        AggregateKind::Review => &["review"],
    }
}

/// One catalogue entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandSpec {
    /// The command.
    pub kind: CommandKind,
    /// The service that owns it.
    pub service: Service,
    /// The aggregate it addresses.
    pub aggregate: AggregateKind,
    /// Its variant's name in the aggregate's command enum (serde's external tag).
    pub variant: &'static str,
    /// Its variant's index in that enum (postcard's tag).
    pub index: u32,
    /// True when the command's own fields name its target stream (`case.open` carries `case`);
    /// otherwise the body carries the target fields beside the command's.
    pub carries_target: bool,
}

/// The catalogue entry of a command. The match is exhaustive, so every command has exactly one
/// entry and one owning service; a test checks the variant names and indices against serde.
pub const fn spec(kind: CommandKind) -> CommandSpec {
    use AggregateKind as A;
    use CommandKind as K;
    use Service as S;
    const fn s(
        kind: CommandKind,
        service: Service,
        aggregate: AggregateKind,
        variant: &'static str,
        index: u32,
        carries_target: bool,
    ) -> CommandSpec {
        CommandSpec {
            kind,
            service,
            aggregate,
            variant,
            index,
            carries_target,
        }
    }
    match kind {
        K::CaseOpen => s(kind, S::Intake, A::Case, "Open", 0, true),
        K::CaseAttachRecord => s(kind, S::Intake, A::Case, "AttachRecord", 1, false),
        K::CaseMarkSourceUnavailable => {
            s(kind, S::Intake, A::Case, "MarkSourceUnavailable", 2, false)
        }
        K::CaseAttestWholeRecord => s(kind, S::Assessment, A::Case, "AttestWholeRecord", 3, false),
        K::CaseAssessFactors => s(kind, S::Assessment, A::Case, "AssessFactors", 4, false),
        K::CaseProposeDecision => s(kind, S::Assessment, A::Case, "ProposeDecision", 5, false),
        K::CaseApproveDecision => s(kind, S::Assessment, A::Case, "ApproveDecision", 6, false),
        K::CaseReturnDecision => s(kind, S::Assessment, A::Case, "ReturnDecision", 7, false),
        K::CaseRecordDecision => s(kind, S::Assessment, A::Case, "RecordDecision", 8, false),
        K::CaseClose => s(kind, S::Assessment, A::Case, "Close", 9, false),
        K::CaseRecomputeGuidance => s(kind, S::Assessment, A::Case, "RecomputeGuidance", 10, false),
        K::OfficerRegister => s(kind, S::Intake, A::Officer, "Register", 0, true),
        K::OfficerCompleteTraining => s(kind, S::Intake, A::Officer, "CompleteTraining", 1, false),
        K::RepresentationRecordG28 => s(kind, S::Intake, A::Representation, "RecordG28", 0, true),
        K::RepresentationWithdrawG28 => {
            s(kind, S::Intake, A::Representation, "WithdrawG28", 1, false)
        }
        K::ReviewRequest => s(kind, S::Review, A::Review, "Request", 0, true),
        K::ReviewAcknowledge => s(kind, S::Review, A::Review, "Acknowledge", 1, false),
        K::ReviewPrioritise => s(kind, S::Review, A::Review, "Prioritise", 2, false),
        K::ReviewAssignReviewer => s(kind, S::Review, A::Review, "AssignReviewer", 3, false),
        K::ReviewRequestInformation => {
            s(kind, S::Review, A::Review, "RequestInformation", 4, false)
        }
        K::ReviewProvideInformation => {
            s(kind, S::Review, A::Review, "ProvideInformation", 5, false)
        }
        K::ReviewDecideTier1 => s(kind, S::Review, A::Review, "DecideTier1", 6, false),
        K::ReviewRequestTier2 => s(kind, S::Review, A::Review, "RequestTier2", 7, false),
        K::ReviewAssignSeniorOfficial => {
            s(kind, S::Review, A::Review, "AssignSeniorOfficial", 8, false)
        }
        K::ReviewDecideTier2 => s(kind, S::Review, A::Review, "DecideTier2", 9, false),
        K::ReviewWithdraw => s(kind, S::Review, A::Review, "Withdraw", 10, false),
        K::ReviewRecordDeadlineMissed => s(
            kind,
            S::Review,
            A::Review,
            "RecordDeadlineMissed",
            11,
            false,
        ),
    }
}

/// The service that owns a command.
pub fn service_of(kind: CommandKind) -> Service {
    spec(kind).service
}

/// A command's endpoint name: its stable name with `.` replaced by `_`, e.g. `case_open`.
pub fn endpoint_name(kind: CommandKind) -> String {
    kind.name().replace('.', "_")
}

/// A command's subject, e.g. `docket.cmd.intake.case_open`.
pub fn subject(kind: CommandKind) -> String {
    format!(
        "{}.{}",
        service_of(kind).subject_prefix(),
        endpoint_name(kind)
    )
}

/// The command a subject names, if it is one of the catalogue's.
pub fn parse_subject(subject: &str) -> Option<CommandKind> {
    let rest = subject.strip_prefix(SUBJECT_PREFIX)?.strip_prefix('.')?;
    let (service, endpoint) = rest.split_once('.')?;
    let service = Service::parse(service)?;
    service.commands().find(|k| {
        // Compare without allocating: `case_open` against `case.open`.
        let name = k.name().as_bytes();
        name.len() == endpoint.len()
            && name.iter().zip(endpoint.as_bytes()).all(|(n, e)| {
                if *n == b'.' {
                    *e == b'_'
                } else {
                    n == e
                }
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_round_trip_and_reject_strangers() {
        for kind in CommandKind::ALL {
            assert_eq!(parse_subject(&subject(*kind)), Some(*kind), "{kind}");
        }
        for bad in [
            "",
            "docket.cmd",
            "docket.cmd.intake",
            "docket.cmd.intake.",
            "docket.cmd.intake.case.open",
            "docket.cmd.assessment.case_open",
            "docket.cmd.nobody.case_open",
            "docket.cmdx.intake.case_open",
            "docket.cmd.intake.case_open.x",
            "docket.cmd.intake.case_opeN",
        ] {
            assert_eq!(parse_subject(bad), None, "{bad}");
            assert_eq!(Endpoint::parse(bad), None, "{bad}");
        }
        for query in QueryKind::ALL {
            let endpoint = Endpoint::Query(*query);
            assert_eq!(Endpoint::parse(&endpoint.subject()), Some(endpoint));
        }
        assert_eq!(
            QueryKind::Receipt.subject(),
            "docket.cmd.audit.receipt",
            "subjects deployments rely on"
        );
        for bad in [
            "docket.cmd.audit.receipts",
            "docket.cmd.audit",
            "docket.cmd.review.receipt",
        ] {
            assert_eq!(Endpoint::parse(bad), None, "{bad}");
        }
    }
}
