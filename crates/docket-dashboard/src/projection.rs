//! [`Projection`]: the dashboard's state, folded from the log one commit at a time.
//!
//! It keeps only what the dashboard shows: the office of every case (a review's office is its
//! case's), a row per review not yet closed, and compact facts for decisions, tier decisions,
//! missed deadlines and finished notifications, which the queries filter by office and time.
//! Events of types it does not read are skipped without decoding.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use docket_domain::case::CaseEvent;
use docket_domain::policy::DepartureKind;
use docket_domain::review::{DeadlineKind, ReviewEvent, Stage};
use docket_domain::values::{
    CaseId, EnforcementAction, FieldOffice, PriorityCategory, ReviewOutcome, ReviewTier,
};
use docket_domain::{ANumber, DomainEvent, Format};
use docket_log::RecordedCommit;
use docket_notify::events::NotificationEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why a commit could not be folded in.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The commit is not the next one.
    #[error("commit at position {found} applied to a projection at {expected}")]
    OutOfOrder {
        /// The position the projection expected.
        expected: u64,
        /// The commit's position.
        found: u64,
    },
    /// An event of a type the projection reads did not decode.
    #[error("commit {position}: {reason}")]
    Decode {
        /// The commit's position.
        position: u64,
        /// What failed.
        reason: String,
    },
}

/// Where a review not yet closed is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueStage {
    /// Requested, not yet acknowledged.
    Requested,
    /// Acknowledged, no reviewer yet.
    Acknowledged,
    /// A tier-1 reviewer is assigned.
    Tier1Assigned,
    /// Tier 1 decided; tier 2 may still be asked for. Not in the queue.
    Tier1Decided,
    /// Tier 2 asked for, no Senior Reviewing Official yet.
    Tier2Requested,
    /// A Senior Reviewing Official is assigned.
    Tier2Assigned,
}

impl QueueStage {
    /// Every stage in the queue (all but [`QueueStage::Tier1Decided`]).
    pub const QUEUED: [QueueStage; 5] = [
        QueueStage::Requested,
        QueueStage::Acknowledged,
        QueueStage::Tier1Assigned,
        QueueStage::Tier2Requested,
        QueueStage::Tier2Assigned,
    ];

    /// The stable code: the domain's for the same stage ([`Stage::code`]).
    pub fn code(&self) -> &'static str {
        Stage::from(*self).code()
    }

    /// The tier a queued review waits at.
    pub fn tier(&self) -> ReviewTier {
        match self {
            QueueStage::Tier2Requested | QueueStage::Tier2Assigned => ReviewTier::Tier2,
            _ => ReviewTier::Tier1,
        }
    }
}

/// The domain's stage a queue stage is (the queue shows the open stages only).
impl From<QueueStage> for Stage {
    fn from(stage: QueueStage) -> Stage {
        match stage {
            QueueStage::Requested => Stage::Requested,
            QueueStage::Acknowledged => Stage::Acknowledged,
            QueueStage::Tier1Assigned => Stage::Tier1Assigned,
            QueueStage::Tier1Decided => Stage::Tier1Decided,
            QueueStage::Tier2Requested => Stage::Tier2Requested,
            QueueStage::Tier2Assigned => Stage::Tier2Assigned,
        }
    }
}

/// A review not yet closed (withdrawn or decided at tier 2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReviewRow {
    /// The case under review.
    pub case: CaseId,
    /// The requester's A-number (shown only to roles that may see reviews).
    pub a_number: ANumber,
    /// The case's office, if the case was seen.
    pub office: Option<FieldOffice>,
    /// Where it is.
    pub stage: QueueStage,
    /// True once prioritised.
    pub prioritised: bool,
    /// When acknowledgement is due, until acknowledged (micros since the epoch).
    pub acknowledge_due: Option<i64>,
    /// When the open tier's decision is due (micros).
    pub decision_due: Option<i64>,
    /// When tier 1 was requested (micros).
    pub requested_at: i64,
    /// When tier 2 was requested (micros).
    pub tier2_requested_at: Option<i64>,
}

impl ReviewRow {
    /// The earliest deadline still running, with its kind.
    pub fn next_deadline(&self) -> Option<(DeadlineKind, i64)> {
        let decision = self.decision_due.map(|due| {
            let kind = match self.stage.tier() {
                ReviewTier::Tier1 => DeadlineKind::Tier1Decision,
                ReviewTier::Tier2 => DeadlineKind::Tier2Decision,
            };
            (kind, due)
        });
        let ack = self
            .acknowledge_due
            .map(|due| (DeadlineKind::Acknowledge, due));
        match (ack, decision) {
            (Some(a), Some(d)) => Some(if a.1 <= d.1 { a } else { d }),
            (a, d) => a.or(d),
        }
    }
}

/// A recorded decision.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionFact {
    /// When (micros).
    pub at: i64,
    /// The case's office.
    pub office: Option<FieldOffice>,
    /// The action.
    pub action: EnforcementAction,
    /// The guidance's priority category; none when no policy version was in force.
    pub priority: Option<PriorityCategory>,
    /// The departure from guidance, if any.
    pub departure: Option<DepartureKind>,
    /// True if the departure needed a supervisor's approval.
    pub needs_approval: bool,
    /// True if a supervisor approved it.
    pub approved: bool,
}

/// A tier's decision of a review.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TierFact {
    /// When (micros).
    pub at: i64,
    /// The office.
    pub office: Option<FieldOffice>,
    /// The tier.
    pub tier: ReviewTier,
    /// The outcome.
    pub outcome: ReviewOutcome,
    /// From the tier's request to its decision, in hours.
    pub hours: f64,
}

/// A deadline recorded as missed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MissedFact {
    /// When it was recorded (micros).
    pub at: i64,
    /// The office.
    pub office: Option<FieldOffice>,
    /// Which deadline.
    pub deadline: DeadlineKind,
}

/// How a notification ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotificationEnd {
    /// Delivered.
    Delivered,
    /// Every attempt failed.
    Abandoned,
}

/// A notification not yet delivered or abandoned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingNotification {
    /// When it was queued (micros).
    pub queued_at: i64,
    /// True once an attempt failed and another is due.
    pub retrying: bool,
}

/// A notification delivered or abandoned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationFact {
    /// When it was queued (micros).
    pub queued_at: i64,
    /// How it ended.
    pub end: NotificationEnd,
}

/// The dashboard's state after the commits up to [`Projection::position`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    position: u64,
    last_hash: Option<[u8; 32]>,
    /// The last commit's bytes, hashed only when the hash is asked for (hashing every commit
    /// was a third of a rebuild's time).
    #[serde(skip)]
    last_bytes: Option<bytes::Bytes>,
    newest: i64,
    pub(crate) case_office: HashMap<CaseId, FieldOffice>,
    pub(crate) reviews: HashMap<Uuid, ReviewRow>,
    pub(crate) decisions: Vec<DecisionFact>,
    pub(crate) tier_decisions: Vec<TierFact>,
    pub(crate) missed: Vec<MissedFact>,
    pub(crate) pending: HashMap<Uuid, PendingNotification>,
    pub(crate) notifications: Vec<NotificationFact>,
    skipped: u64,
}

fn micros(at: &DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn hours_between(from: i64, to: i64) -> f64 {
    (to - from).max(0) as f64 / 3_600_000_000.0
}

/// Event types the projection reads; everything else is skipped undecoded.
fn wanted(type_name: &str) -> bool {
    matches!(
        type_name,
        "case.opened"
            | "case.decision_recorded"
            | "review.requested"
            | "review.acknowledged"
            | "review.prioritised"
            | "review.reviewer_assigned"
            | "review.tier1_decided"
            | "review.tier2_requested"
            | "review.senior_official_assigned"
            | "review.tier2_decided"
            | "review.withdrawn"
            | "review.deadline_missed"
    ) || type_name.starts_with("notification.")
}

impl Projection {
    /// An empty projection, before position 0.
    pub fn new() -> Self {
        Projection::default()
    }

    /// The position of the last commit applied (positions start at 1; 0 before any).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The hash of the last commit applied, to check on resume that the log is the same one.
    pub fn last_hash(&self) -> Option<[u8; 32]> {
        match &self.last_bytes {
            Some(bytes) => Some(docket_log::CommitHash::of(bytes).0),
            None => self.last_hash,
        }
    }

    /// Fixes the last commit's hash in the state (before a snapshot or a comparison).
    pub fn seal(&mut self) {
        if let Some(bytes) = self.last_bytes.take() {
            self.last_hash = Some(docket_log::CommitHash::of(&bytes).0);
        }
    }

    /// The time of the newest event seen (micros since the epoch; 0 before any).
    pub fn newest_micros(&self) -> i64 {
        self.newest
    }

    /// Events of types the projection does not read, counted.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Open reviews and reviews between the tiers, by id.
    pub fn reviews(&self) -> &HashMap<Uuid, ReviewRow> {
        &self.reviews
    }

    /// Folds in the next commit (at [`Projection::position`] + 1).
    pub fn apply(&mut self, commit: &RecordedCommit) -> Result<(), ProjectionError> {
        if commit.position != self.position + 1 {
            return Err(ProjectionError::OutOfOrder {
                expected: self.position + 1,
                found: commit.position,
            });
        }
        let recorded = commit.commit.metadata.recorded_at_micros;
        let stream_id = commit.commit.stream.id();
        for event in &commit.commit.events {
            if !wanted(&event.type_name) {
                self.skipped += 1;
                continue;
            }
            let bad = |reason: String| ProjectionError::Decode {
                position: commit.position,
                reason,
            };
            if event.type_name.starts_with("notification.") {
                let id = Uuid::parse_str(stream_id)
                    .map_err(|e| bad(format!("notification stream id {stream_id:?}: {e}")))?;
                let decoded = NotificationEvent::decode(event).map_err(|e| bad(e.to_string()))?;
                self.notification(id, recorded, decoded);
                continue;
            }
            let decoded = DomainEvent::decode(
                &event.type_name,
                event.type_version,
                &event.payload,
                Format::Postcard,
            )
            .map_err(|e| bad(e.to_string()))?;
            match decoded {
                DomainEvent::Case(e) => {
                    let case = CaseId::parse(stream_id)
                        .map_err(|e| bad(format!("case stream id: {}", e.problem)))?;
                    self.case(case, e);
                }
                DomainEvent::Review(e) => {
                    let review = Uuid::parse_str(stream_id)
                        .map_err(|e| bad(format!("review stream id {stream_id:?}: {e}")))?;
                    self.review(review, e);
                }
                DomainEvent::Officer(_) | DomainEvent::Representation(_) => self.skipped += 1,
            }
        }
        self.newest = self.newest.max(recorded);
        self.position = commit.position;
        self.last_bytes = Some(commit.bytes.clone());
        Ok(())
    }

    fn seen(&mut self, at: &DateTime<Utc>) -> i64 {
        let at = micros(at);
        self.newest = self.newest.max(at);
        at
    }

    fn case(&mut self, case: CaseId, event: CaseEvent) {
        match event {
            CaseEvent::Opened(o) => {
                self.seen(&o.at);
                self.case_office.insert(case, o.office);
            }
            CaseEvent::DecisionRecorded(d) => {
                let at = self.seen(&d.at);
                let departure = d.departure;
                self.decisions.push(DecisionFact {
                    at,
                    office: self.case_office.get(&case).copied(),
                    action: d.action,
                    priority: d.guidance.as_ref().map(|g| g.priority),
                    departure: departure.map(|x| x.kind),
                    needs_approval: departure.is_some_and(|x| x.needs_approval),
                    approved: d.approved_by.is_some(),
                });
            }
            _ => self.skipped += 1,
        }
    }

    fn review(&mut self, review: Uuid, event: ReviewEvent) {
        match event {
            ReviewEvent::Requested(r) => {
                let at = self.seen(&r.at);
                self.reviews.insert(
                    review,
                    ReviewRow {
                        case: r.case,
                        a_number: r.a_number,
                        office: self.case_office.get(&r.case).copied(),
                        stage: QueueStage::Requested,
                        prioritised: false,
                        acknowledge_due: Some(micros(&r.acknowledge_due)),
                        decision_due: Some(micros(&r.decision_due)),
                        requested_at: at,
                        tier2_requested_at: None,
                    },
                );
            }
            ReviewEvent::DeadlineMissed(m) => {
                let at = self.seen(&m.at);
                let office = self.reviews.get(&review).and_then(|r| r.office);
                self.missed.push(MissedFact {
                    at,
                    office,
                    deadline: m.deadline,
                });
            }
            ReviewEvent::Tier2Decided(d) => {
                let at = self.seen(&d.at);
                if let Some(row) = self.reviews.remove(&review) {
                    let from = row.tier2_requested_at.unwrap_or(row.requested_at);
                    self.tier_decisions.push(TierFact {
                        at,
                        office: row.office,
                        tier: ReviewTier::Tier2,
                        outcome: d.outcome,
                        hours: hours_between(from, at),
                    });
                }
            }
            ReviewEvent::Withdrawn(w) => {
                self.seen(&w.at);
                self.reviews.remove(&review);
            }
            other => {
                let Some(row) = self.reviews.get_mut(&review) else {
                    self.skipped += 1;
                    return;
                };
                let mut tier1 = None;
                let at = match other {
                    ReviewEvent::Acknowledged(a) => {
                        row.stage = row.stage.max(QueueStage::Acknowledged);
                        row.acknowledge_due = None;
                        micros(&a.at)
                    }
                    ReviewEvent::Prioritised(p) => {
                        row.prioritised = true;
                        if let Some(due) = p.decision_due {
                            row.decision_due = Some(micros(&due.due));
                        }
                        micros(&p.at)
                    }
                    ReviewEvent::ReviewerAssigned(a) => {
                        row.stage = row.stage.max(QueueStage::Tier1Assigned);
                        row.acknowledge_due = None;
                        micros(&a.at)
                    }
                    ReviewEvent::Tier1Decided(d) => {
                        let at = micros(&d.at);
                        row.stage = QueueStage::Tier1Decided;
                        row.acknowledge_due = None;
                        row.decision_due = None;
                        tier1 = Some(TierFact {
                            at,
                            office: row.office,
                            tier: ReviewTier::Tier1,
                            outcome: d.outcome,
                            hours: hours_between(row.requested_at, at),
                        });
                        at
                    }
                    ReviewEvent::Tier2Requested(t) => {
                        let at = micros(&t.at);
                        row.stage = QueueStage::Tier2Requested;
                        row.decision_due = Some(micros(&t.decision_due));
                        row.tier2_requested_at = Some(at);
                        at
                    }
                    ReviewEvent::SeniorOfficialAssigned(a) => {
                        row.stage = row.stage.max(QueueStage::Tier2Assigned);
                        micros(&a.at)
                    }
                    _ => return,
                };
                self.newest = self.newest.max(at);
                if let Some(fact) = tier1 {
                    self.tier_decisions.push(fact);
                }
            }
        }
    }

    fn notification(&mut self, id: Uuid, recorded: i64, event: NotificationEvent) {
        match event {
            NotificationEvent::Queued(_) => {
                self.pending.insert(
                    id,
                    PendingNotification {
                        queued_at: recorded,
                        retrying: false,
                    },
                );
            }
            NotificationEvent::AttemptFailed(f) => {
                if let Some(p) = self.pending.get_mut(&id) {
                    p.retrying = f.next_attempt_at.is_some();
                }
            }
            NotificationEvent::Delivered(_) => self.finish(id, NotificationEnd::Delivered),
            NotificationEvent::Abandoned(_) => self.finish(id, NotificationEnd::Abandoned),
        }
    }

    fn finish(&mut self, id: Uuid, end: NotificationEnd) {
        if let Some(p) = self.pending.remove(&id) {
            self.notifications.push(NotificationFact {
                queued_at: p.queued_at,
                end,
            });
        }
    }
}
