//! Who each domain event concerns, and what they are told: a small projection of the review and
//! case streams (requesters, assigned reviewers, pending proposals), fed commit by commit in log
//! order, that turns each event into its notifications.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use docket_domain::case::CaseEvent;
use docket_domain::events::DomainEvent;
use docket_domain::review::{DeadlineKind, Review, ReviewEvent};
use docket_domain::values::{CaseId, DecisionId, PersonId, ReviewId, ReviewTier, Role};
use docket_domain::{Aggregate, AggregateKind};
use docket_log::RecordedCommit;
use docket_runtime::decode_event;

use crate::message::{notification_id, CausedBy, Message, NotificationKind, Recipient};

/// A notification before it has its id, cause and time.
struct Draft {
    kind: NotificationKind,
    to: Recipient,
    subject: String,
    text: String,
    review: Option<ReviewId>,
    case: Option<CaseId>,
    decision: Option<DecisionId>,
}

/// What the notification rules need to know about earlier events.
#[derive(Debug, Default)]
pub(crate) struct People {
    /// Open reviews by stream id, folded with the domain's own rules (closed ones are dropped).
    reviews: HashMap<String, Review>,
    /// The pending proposal of each case stream: the decision and its proposing officer.
    proposals: HashMap<String, (DecisionId, PersonId)>,
}

fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

impl People {
    /// Applies one commit and returns the notifications its events cause, in order. Commits of
    /// streams other than `review/…` and `case/…` cause none and are not decoded.
    pub(crate) fn apply(
        &mut self,
        commit: &RecordedCommit,
        now: DateTime<Utc>,
    ) -> Result<Vec<Message>, String> {
        let stream = &commit.commit.stream;
        let kind = AggregateKind::parse(stream.kind());
        if !matches!(kind, Some(AggregateKind::Review | AggregateKind::Case)) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for data in &commit.commit.events {
            let event = decode_event(data).map_err(|e| e.to_string())?;
            let drafts = match &event {
                DomainEvent::Review(e) if kind == Some(AggregateKind::Review) => {
                    self.review(stream.as_str(), stream.id(), e)
                }
                DomainEvent::Case(e) if kind == Some(AggregateKind::Case) => {
                    self.case(stream.as_str(), stream.id(), e)
                }
                other => {
                    return Err(format!(
                        "event {} does not belong in stream {stream}",
                        other.name()
                    ))
                }
            };
            out.extend(drafts.into_iter().map(|d| Message {
                id: notification_id(data.id, &d.to),
                kind: d.kind,
                to: d.to,
                subject: d.subject,
                text: d.text,
                review: d.review,
                case: d.case,
                decision: d.decision,
                caused_by: CausedBy {
                    position: commit.position,
                    stream: stream.to_string(),
                    event_id: data.id,
                    event_type: data.type_name.clone(),
                },
                created_at: now,
            }));
        }
        Ok(out)
    }

    /// The drafts of one review event (from the state before it), then the event applied.
    fn review(&mut self, stream: &str, id: &str, event: &ReviewEvent) -> Vec<Draft> {
        let review_id = ReviewId::parse(id).ok();
        let state = self.reviews.remove(stream).unwrap_or_default();
        let request = state.request();
        let case = request.map(|r| r.case);
        let requester = request.map(|r| Recipient {
            person: r.by.person,
            role: r.by.role,
            language: r.preferred_language.clone(),
        });
        let reviewer_of = |tier: ReviewTier| {
            state.reviewer(tier).map(|person| Recipient {
                person,
                role: match tier {
                    ReviewTier::Tier1 => Role::FirstTierReviewer,
                    ReviewTier::Tier2 => Role::SeniorReviewingOfficial,
                },
                language: None,
            })
        };
        let open_reviewer = state.open_tier().and_then(reviewer_of);
        let draft = |kind, to: Recipient, subject: &str, text: String| Draft {
            kind,
            to,
            subject: subject.to_owned(),
            text,
            review: review_id,
            case,
            decision: request.map(|r| r.decision),
        };
        let review_label = review_id.map_or_else(|| id.to_owned(), |r| r.to_string());

        let mut drafts = Vec::new();
        match event {
            ReviewEvent::Requested(r) => drafts.push(Draft {
                case: Some(r.case),
                decision: Some(r.decision),
                ..draft(
                    NotificationKind::ReviewReceived,
                    Recipient {
                        person: r.by.person,
                        role: r.by.role,
                        language: r.preferred_language.clone(),
                    },
                    "Your request for review was received",
                    format!(
                        "Your request for review {review_label} of the {} decision {} in case {} \
                         was received on {}. It will be acknowledged by {} and decided at the \
                         first tier by {}.",
                        r.action,
                        r.decision,
                        r.case,
                        when(r.at),
                        when(r.acknowledge_due),
                        when(r.decision_due)
                    ),
                )
            }),
            ReviewEvent::Acknowledged(a) => drafts.extend(requester.clone().map(|to| {
                draft(
                    NotificationKind::ReviewAcknowledged,
                    to,
                    "Your request for review was acknowledged",
                    format!(
                        "Your request for review {review_label} was acknowledged on {}.",
                        when(a.at)
                    ),
                )
            })),
            ReviewEvent::Prioritised(p) => {
                let due = p
                    .decision_due
                    .as_ref()
                    .map(|d| format!(" The {} decision is now due by {}.", d.tier, when(d.due)))
                    .unwrap_or_default();
                let text = format!(
                    "Review {review_label} was prioritised ({}).{due}",
                    p.reason.code().replace('_', " ")
                );
                for to in requester.iter().chain(open_reviewer.iter()) {
                    drafts.push(draft(
                        NotificationKind::ReviewPrioritised,
                        to.clone(),
                        "A review was prioritised",
                        text.clone(),
                    ));
                }
            }
            ReviewEvent::ReviewerAssigned(a) => {
                let due = due_text(&state, DeadlineKind::Tier1Decision);
                drafts.push(draft(
                    NotificationKind::ReviewAssigned,
                    Recipient {
                        person: a.reviewer,
                        role: Role::FirstTierReviewer,
                        language: None,
                    },
                    "A review was assigned to you",
                    format!("You were assigned the first-tier review {review_label}.{due}"),
                ));
            }
            ReviewEvent::InformationRequested(q) => drafts.extend(requester.clone().map(|to| {
                draft(
                    NotificationKind::InformationRequested,
                    to,
                    "The reviewer asks for more information",
                    format!(
                        "For review {review_label}, the {} reviewer asks: {}",
                        q.tier, q.question
                    ),
                )
            })),
            ReviewEvent::InformationProvided(i) => drafts.extend(open_reviewer.map(|to| {
                draft(
                    NotificationKind::InformationProvided,
                    to,
                    "The requester provided information",
                    format!(
                        "For review {review_label}, the requester answered: {}",
                        i.information
                    ),
                )
            })),
            ReviewEvent::Tier1Decided(d) => drafts.extend(requester.clone().map(|to| {
                let referred = d
                    .referred_to
                    .map(|t| format!(" to {}", t.code().replace('_', " ")))
                    .unwrap_or_default();
                draft(
                    NotificationKind::Tier1Decided,
                    to,
                    "The first-tier review was decided",
                    format!(
                        "Review {review_label} was decided at the first tier: {}{referred}. \
                         Reasons: {} You may ask for a second-tier review until {}.",
                        d.outcome,
                        d.reasons,
                        when(d.tier2_request_closes)
                    ),
                )
            })),
            ReviewEvent::Tier2Requested(t) => drafts.extend(requester.clone().map(|to| {
                draft(
                    NotificationKind::Tier2Received,
                    to,
                    "Your request for a second-tier review was received",
                    format!(
                        "Your request for a second-tier review of {review_label} was received on \
                         {}. It will be decided by {}.",
                        when(t.at),
                        when(t.decision_due)
                    ),
                )
            })),
            ReviewEvent::SeniorOfficialAssigned(a) => {
                let due = due_text(&state, DeadlineKind::Tier2Decision);
                drafts.push(draft(
                    NotificationKind::ReviewAssigned,
                    Recipient {
                        person: a.official,
                        role: Role::SeniorReviewingOfficial,
                        language: None,
                    },
                    "A review was assigned to you",
                    format!("You were assigned the second-tier review {review_label}.{due}"),
                ));
            }
            ReviewEvent::Tier2Decided(d) => drafts.extend(requester.clone().map(|to| {
                let referred = d
                    .referred_to
                    .map(|t| format!(" to {}", t.code().replace('_', " ")))
                    .unwrap_or_default();
                let overrides = if d.overrides_tier1 {
                    " This overrides the first-tier decision."
                } else {
                    ""
                };
                draft(
                    NotificationKind::Tier2Decided,
                    to,
                    "The second-tier review was decided",
                    format!(
                        "Review {review_label} was decided at the second tier: {}{referred}.\
                         {overrides} Reasons: {} This decision closes the review.",
                        d.outcome, d.reasons
                    ),
                )
            })),
            ReviewEvent::Withdrawn(w) => {
                let reason = w
                    .reason
                    .as_ref()
                    .map(|r| format!(" Reason given: {r}"))
                    .unwrap_or_default();
                let text = format!(
                    "Review {review_label} was withdrawn by the requester on {}.{reason}",
                    when(w.at)
                );
                for to in requester.iter().chain(open_reviewer.iter()) {
                    drafts.push(draft(
                        NotificationKind::ReviewWithdrawn,
                        to.clone(),
                        "A review was withdrawn",
                        text.clone(),
                    ));
                }
            }
            ReviewEvent::DeadlineMissed(m) => {
                let step = match m.deadline {
                    DeadlineKind::Acknowledge => "acknowledgement",
                    DeadlineKind::Tier1Decision => "first-tier decision",
                    DeadlineKind::Tier2Decision => "second-tier decision",
                };
                let responsible = match m.deadline {
                    DeadlineKind::Acknowledge => None,
                    DeadlineKind::Tier1Decision => reviewer_of(ReviewTier::Tier1),
                    DeadlineKind::Tier2Decision => reviewer_of(ReviewTier::Tier2),
                };
                let text = format!(
                    "The {step} of review {review_label} was due by {} and has not happened.",
                    when(m.due)
                );
                for to in requester.iter().chain(responsible.iter()) {
                    drafts.push(draft(
                        NotificationKind::DeadlineMissed,
                        to.clone(),
                        "A review deadline was missed",
                        text.clone(),
                    ));
                }
            }
        }
        let state = state.evolve(event);
        if !state.is_closed() {
            self.reviews.insert(stream.to_owned(), state);
        }
        drafts
    }

    /// The drafts of one case event, then the event applied.
    fn case(&mut self, stream: &str, id: &str, event: &CaseEvent) -> Vec<Draft> {
        let case = CaseId::parse(id).ok();
        let officer_of = |decision: DecisionId, proposals: &HashMap<String, _>| {
            proposals.get(stream).filter(|(d, _)| *d == decision).map(
                |&(_, person): &(DecisionId, PersonId)| Recipient {
                    person,
                    role: Role::Officer,
                    language: None,
                },
            )
        };
        let draft = |kind, to, subject: &str, text: String, decision| Draft {
            kind,
            to,
            subject: subject.to_owned(),
            text,
            review: None,
            case,
            decision: Some(decision),
        };
        match event {
            CaseEvent::DecisionProposed(p) => {
                self.proposals
                    .insert(stream.to_owned(), (p.decision, p.by.person));
                Vec::new()
            }
            CaseEvent::DecisionApproved(a) => officer_of(a.decision, &self.proposals)
                .map(|to| {
                    draft(
                        NotificationKind::DecisionApproved,
                        to,
                        "Your proposed decision was approved",
                        format!(
                            "A supervisor approved your proposed decision {} in case {id} on {}. \
                             You may now record it.",
                            a.decision,
                            when(a.at)
                        ),
                        a.decision,
                    )
                })
                .into_iter()
                .collect(),
            CaseEvent::DecisionReturned(r) => {
                let to = officer_of(r.decision, &self.proposals);
                self.proposals.remove(stream);
                to.map(|to| {
                    draft(
                        NotificationKind::DecisionReturned,
                        to,
                        "Your proposed decision was returned",
                        format!(
                            "A supervisor returned your proposed decision {} in case {id} on {}: {}",
                            r.decision,
                            when(r.at),
                            r.reason
                        ),
                        r.decision,
                    )
                })
                .into_iter()
                .collect()
            }
            CaseEvent::DecisionRecorded(r) => {
                self.proposals.remove(stream);
                match (&r.departure, r.approved_by) {
                    (Some(departure), Some(_)) => {
                        let kind = match departure.kind {
                            docket_domain::policy::DepartureKind::ActionWithoutPriority => {
                                "an enforcement action where the guidance is not a priority"
                            }
                            docket_domain::policy::DepartureKind::DeclinedPriority => {
                                "declining to act where the guidance is a priority"
                            }
                        };
                        vec![draft(
                            NotificationKind::DepartureRecorded,
                            Recipient {
                                person: r.officer,
                                role: Role::Officer,
                                language: None,
                            },
                            "Your decision departing from guidance was recorded",
                            format!(
                                "Decision {} ({}) in case {id} was recorded on {} with a \
                                 supervisor's approval of its departure from guidance: {kind}.",
                                r.decision,
                                r.action,
                                when(r.at)
                            ),
                            r.decision,
                        )]
                    }
                    _ => Vec::new(),
                }
            }
            CaseEvent::Closed(_) => {
                self.proposals.remove(stream);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }
}

/// ` The <step> is due by <when>.` for a pending deadline of `review`, or nothing.
fn due_text(review: &Review, kind: DeadlineKind) -> String {
    review
        .due()
        .into_iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, at)| format!(" The decision is due by {}.", when(at)))
        .unwrap_or_default()
}
