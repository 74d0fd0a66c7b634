//! What the dashboard shows: [`Overview`] (aggregates only, no names or A-numbers) and
//! [`Overdue`] (the drill-down), computed from a [`Projection`] for a [`Filter`].

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use docket_domain::review::DeadlineKind;
use docket_domain::values::{FieldOffice, ReviewOutcome, ReviewTier};
use serde::{Deserialize, Serialize};

use crate::projection::{NotificationEnd, Projection, QueueStage};

/// The time windows the dashboard offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Window {
    /// The last 24 hours.
    #[serde(rename = "24h")]
    Day,
    /// The last 7 days.
    #[serde(rename = "7d")]
    Week,
    /// The last 30 days.
    #[serde(rename = "30d")]
    Month,
    /// The last 90 days.
    #[serde(rename = "90d")]
    Quarter,
    /// The last 365 days.
    #[serde(rename = "365d")]
    Year,
    /// Everything.
    #[default]
    #[serde(rename = "all")]
    All,
}

impl Window {
    /// Every window, shortest first.
    pub const ALL: [Window; 6] = [
        Window::Day,
        Window::Week,
        Window::Month,
        Window::Quarter,
        Window::Year,
        Window::All,
    ];

    /// The code used in queries.
    pub fn code(&self) -> &'static str {
        match self {
            Window::Day => "24h",
            Window::Week => "7d",
            Window::Month => "30d",
            Window::Quarter => "90d",
            Window::Year => "365d",
            Window::All => "all",
        }
    }

    /// Parses a code, naming the accepted ones when it is not one.
    pub fn parse(code: &str) -> Result<Window, String> {
        Window::ALL
            .into_iter()
            .find(|w| w.code() == code.trim())
            .ok_or_else(|| {
                format!(
                    "unknown window {code:?}; expected one of: {}",
                    Window::ALL.map(|w| w.code()).join(", ")
                )
            })
    }

    fn length(&self) -> Option<Duration> {
        match self {
            Window::Day => Some(Duration::hours(24)),
            Window::Week => Some(Duration::days(7)),
            Window::Month => Some(Duration::days(30)),
            Window::Quarter => Some(Duration::days(90)),
            Window::Year => Some(Duration::days(365)),
            Window::All => None,
        }
    }
}

/// Which facts to count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// One office, or all.
    pub office: Option<FieldOffice>,
    /// How far back.
    pub window: Window,
}

impl Filter {
    fn office_matches(&self, office: Option<FieldOffice>) -> bool {
        self.office.is_none() || self.office == office
    }
}

/// A count under a key, in the lists of [`Overview`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCount {
    /// The key: an office code, a month `YYYY-MM`, an action, …
    pub key: String,
    /// How many.
    pub count: u64,
}

fn list(map: BTreeMap<String, u64>) -> Vec<KeyCount> {
    map.into_iter()
        .map(|(key, count)| KeyCount { key, count })
        .collect()
}

/// The filter as applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedFilter {
    /// The office code, or none for all.
    pub office: Option<String>,
    /// The window's code.
    pub window: String,
    /// The window's start, or none for all time.
    pub from: Option<DateTime<Utc>>,
}

/// Open reviews.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewQueue {
    /// Reviews waiting at a tier.
    pub open: u64,
    /// By tier: `tier1`, `tier2`.
    pub by_tier: BTreeMap<String, u64>,
    /// By stage.
    pub by_stage: BTreeMap<String, u64>,
    /// `prioritised` or `standard`.
    pub by_priority: BTreeMap<String, u64>,
    /// `on_time`, `due_soon` (within 24 h) or `overdue`.
    pub by_deadline: BTreeMap<String, u64>,
    /// By tier, then deadline state.
    pub by_tier_deadline: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Recorded decisions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decisions {
    /// How many.
    pub total: u64,
    /// By office code.
    pub by_office: Vec<KeyCount>,
    /// By month, `YYYY-MM`.
    pub by_month: Vec<KeyCount>,
    /// By action.
    pub by_action: Vec<KeyCount>,
    /// By the guidance's priority category; `no_guidance` when no version was in force.
    pub by_priority: Vec<KeyCount>,
}

/// Departures from guidance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Departures {
    /// Decisions departing from guidance.
    pub total: u64,
    /// Of those, departures a supervisor had to approve.
    pub needing_approval: u64,
    /// Of those, approved.
    pub approved: u64,
    /// Departures over decisions (0 without decisions).
    pub rate: f64,
    /// By kind.
    pub by_kind: Vec<KeyCount>,
}

/// One tier's decisions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Turnaround {
    /// `tier1` or `tier2`.
    pub tier: String,
    /// Decisions.
    pub decided: u64,
    /// Median hours from the tier's request to its decision.
    pub median_hours: Option<f64>,
    /// 90th percentile of the same.
    pub p90_hours: Option<f64>,
    /// By outcome (every outcome present, zero or not).
    pub outcomes: BTreeMap<String, u64>,
}

/// Missed deadlines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlinesMissed {
    /// How many.
    pub total: u64,
    /// By deadline kind.
    pub by_kind: Vec<KeyCount>,
    /// By month.
    pub by_month: Vec<KeyCount>,
}

/// Notification delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notifications {
    /// Queued in the window.
    pub queued: u64,
    /// Delivered.
    pub delivered: u64,
    /// An attempt failed, another is due.
    pub retrying: u64,
    /// Every attempt failed.
    pub abandoned: u64,
    /// Queued, no attempt finished yet.
    pub pending: u64,
}

/// One reaction consumer's progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerLag {
    /// The consumer's name.
    pub consumer: String,
    /// Its stored checkpoint (commits done).
    pub position: u64,
    /// The log head minus that.
    pub lag: u64,
}

/// The latest signed checkpoint and what the dashboard made of it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Integrity {
    /// Its size, none before any was signed.
    pub checkpoint_size: Option<u64>,
    /// Its root (base64).
    pub root: Option<String>,
    /// Whether it verified; none before any was signed or checked.
    pub verified: Option<bool>,
    /// What failed when it did not verify (or why it could not be checked).
    pub problem: Option<String>,
    /// Seconds since the last commit it covers was recorded.
    pub age_seconds: Option<f64>,
    /// When the dashboard last checked.
    pub checked_at: Option<DateTime<Utc>>,
    /// Witness cosignatures on the latest checkpoint the checkpointer signed, as it reports.
    #[serde(default)]
    pub cosignatures: Option<usize>,
    /// How many a checkpoint should carry.
    #[serde(default)]
    pub witness_quorum: Option<usize>,
    /// Each witness as the checkpointer reports it.
    #[serde(default)]
    pub witnesses: Vec<crate::integrity::WitnessHealth>,
}

/// The overview: aggregates only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    /// Commits folded in.
    pub position: u64,
    /// The log head when last read.
    pub head: u64,
    /// When the overview was computed (deadline states and windows are relative to it).
    pub as_of: DateTime<Utc>,
    /// The filter.
    pub filter: AppliedFilter,
    /// Open reviews (office filter only: the queue is now).
    pub review_queue: ReviewQueue,
    /// Decisions.
    pub decisions: Decisions,
    /// Departures from guidance.
    pub departures: Departures,
    /// Per tier.
    pub turnaround: Vec<Turnaround>,
    /// Missed deadlines.
    pub deadlines_missed: DeadlinesMissed,
    /// Notifications (window only: notifications carry no office).
    pub notifications: Notifications,
    /// Reaction consumers.
    pub consumers: Vec<ConsumerLag>,
    /// Log integrity.
    pub integrity: Integrity,
}

/// One open review past a deadline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverdueReview {
    /// The review.
    pub review: String,
    /// Its case.
    pub case: String,
    /// The requester's A-number.
    pub a_number: String,
    /// The office, if known.
    pub office: Option<String>,
    /// The tier it waits at.
    pub tier: String,
    /// Its stage.
    pub stage: String,
    /// The deadline passed.
    pub deadline: String,
    /// When it was due.
    pub due: DateTime<Utc>,
    /// Hours since.
    pub overdue_hours: f64,
    /// True if prioritised.
    pub prioritised: bool,
}

/// The drill-down: open reviews past a deadline, longest overdue first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overdue {
    /// Commits folded in.
    pub position: u64,
    /// The reviews.
    pub reviews: Vec<OverdueReview>,
}

const DEADLINE_STATES: [&str; 3] = ["on_time", "due_soon", "overdue"];

const DUE_SOON_MICROS: i64 = 24 * 3_600_000_000;

fn month(at: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(at)
        .map(|t| t.format("%Y-%m").to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn time(at: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(at).unwrap_or_default()
}

/// The nearest-rank quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn deadline_state(due: Option<i64>, now: i64) -> &'static str {
    match due {
        Some(due) if due < now => "overdue",
        Some(due) if due < now + DUE_SOON_MICROS => "due_soon",
        _ => "on_time",
    }
}

impl Projection {
    /// The overview for `filter` at `now`. Consumers, head and integrity are left empty for
    /// the caller, which knows them.
    pub fn overview(&self, filter: &Filter, now: DateTime<Utc>) -> Overview {
        let now_micros = now.timestamp_micros();
        let from = filter.window.length().map(|l| now - l);
        let from_micros = from.map(|f| f.timestamp_micros()).unwrap_or(i64::MIN);
        let in_window = |at: i64| at >= from_micros;

        let mut queue = ReviewQueue {
            open: 0,
            by_tier: zeros(["tier1", "tier2"]),
            by_stage: zeros(QueueStage::QUEUED.map(|s| s.code())),
            by_priority: zeros(["prioritised", "standard"]),
            by_deadline: zeros(DEADLINE_STATES),
            by_tier_deadline: ReviewTier::ALL
                .iter()
                .map(|t| (t.code().to_owned(), zeros(DEADLINE_STATES)))
                .collect(),
        };
        for row in self.reviews.values() {
            if row.stage == QueueStage::Tier1Decided || !filter.office_matches(row.office) {
                continue;
            }
            queue.open += 1;
            bump(&mut queue.by_tier, row.stage.tier().code());
            bump(&mut queue.by_stage, row.stage.code());
            let priority = if row.prioritised {
                "prioritised"
            } else {
                "standard"
            };
            bump(&mut queue.by_priority, priority);
            let due = row.next_deadline().map(|(_, due)| due);
            let state = deadline_state(due, now_micros);
            bump(&mut queue.by_deadline, state);
            if let Some(by_state) = queue.by_tier_deadline.get_mut(row.stage.tier().code()) {
                bump(by_state, state);
            }
        }

        let mut decisions = (0u64, BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        let mut by_priority = BTreeMap::new();
        let (mut departures, mut needing, mut approved) = (0u64, 0u64, 0u64);
        let mut by_kind = BTreeMap::new();
        for d in &self.decisions {
            if !in_window(d.at) || !filter.office_matches(d.office) {
                continue;
            }
            decisions.0 += 1;
            let office = d.office.map_or("unknown", |o| o.code());
            bump(&mut decisions.1, office);
            *decisions.2.entry(month(d.at)).or_insert(0) += 1;
            bump(&mut decisions.3, d.action.code());
            bump(
                &mut by_priority,
                d.priority.map_or("no_guidance", |p| p.code()),
            );
            if let Some(kind) = d.departure {
                departures += 1;
                bump(&mut by_kind, departure_code(kind));
                if d.needs_approval {
                    needing += 1;
                    if d.approved {
                        approved += 1;
                    }
                }
            }
        }

        let mut hours: BTreeMap<ReviewTier, Vec<f64>> = BTreeMap::new();
        let mut outcomes: BTreeMap<ReviewTier, BTreeMap<String, u64>> = BTreeMap::new();
        for tier in ReviewTier::ALL {
            hours.insert(*tier, Vec::new());
            outcomes.insert(*tier, zeros(ReviewOutcome::ALL.iter().map(|o| o.code())));
        }
        for t in &self.tier_decisions {
            if !in_window(t.at) || !filter.office_matches(t.office) {
                continue;
            }
            hours.entry(t.tier).or_default().push(t.hours);
            bump(outcomes.entry(t.tier).or_default(), t.outcome.code());
        }
        let turnaround = ReviewTier::ALL
            .iter()
            .map(|tier| {
                let mut h = hours.remove(tier).unwrap_or_default();
                h.sort_by(f64::total_cmp);
                Turnaround {
                    tier: tier.code().to_owned(),
                    decided: h.len() as u64,
                    median_hours: quantile(&h, 0.5).map(round1),
                    p90_hours: quantile(&h, 0.9).map(round1),
                    outcomes: outcomes.remove(tier).unwrap_or_default(),
                }
            })
            .collect();

        let mut missed = (0u64, BTreeMap::new(), BTreeMap::new());
        for m in &self.missed {
            if !in_window(m.at) || !filter.office_matches(m.office) {
                continue;
            }
            missed.0 += 1;
            bump(&mut missed.1, deadline_code(m.deadline));
            *missed.2.entry(month(m.at)).or_insert(0) += 1;
        }

        let mut notifications = Notifications {
            queued: 0,
            delivered: 0,
            retrying: 0,
            abandoned: 0,
            pending: 0,
        };
        for p in self.pending.values() {
            if in_window(p.queued_at) {
                notifications.queued += 1;
                if p.retrying {
                    notifications.retrying += 1;
                } else {
                    notifications.pending += 1;
                }
            }
        }
        for n in &self.notifications {
            if in_window(n.queued_at) {
                notifications.queued += 1;
                match n.end {
                    NotificationEnd::Delivered => notifications.delivered += 1,
                    NotificationEnd::Abandoned => notifications.abandoned += 1,
                }
            }
        }

        let total = decisions.0;
        Overview {
            position: self.position(),
            head: self.position(),
            as_of: now,
            filter: AppliedFilter {
                office: filter.office.map(|o| o.code().to_owned()),
                window: filter.window.code().to_owned(),
                from,
            },
            review_queue: queue,
            decisions: Decisions {
                total,
                by_office: list(decisions.1),
                by_month: list(decisions.2),
                by_action: list(decisions.3),
                by_priority: list(by_priority),
            },
            departures: Departures {
                total: departures,
                needing_approval: needing,
                approved,
                rate: if total == 0 {
                    0.0
                } else {
                    (departures as f64 / total as f64 * 1000.0).round() / 1000.0
                },
                by_kind: list(by_kind),
            },
            turnaround,
            deadlines_missed: DeadlinesMissed {
                total: missed.0,
                by_kind: list(missed.1),
                by_month: list(missed.2),
            },
            notifications,
            consumers: Vec::new(),
            integrity: Integrity::default(),
        }
    }

    /// Open reviews past a deadline at `now`, longest overdue first.
    pub fn overdue(&self, office: Option<FieldOffice>, now: DateTime<Utc>) -> Overdue {
        let now_micros = now.timestamp_micros();
        let mut rows: Vec<(i64, OverdueReview)> = self
            .reviews
            .iter()
            .filter(|(_, row)| row.stage != QueueStage::Tier1Decided)
            .filter(|(_, row)| office.is_none() || row.office == office)
            .filter_map(|(id, row)| {
                let (kind, due) = row.next_deadline()?;
                (due < now_micros).then(|| {
                    (
                        due,
                        OverdueReview {
                            review: id.hyphenated().to_string(),
                            case: row.case.to_string(),
                            a_number: row.a_number.to_string(),
                            office: row.office.map(|o| o.code().to_owned()),
                            tier: row.stage.tier().code().to_owned(),
                            stage: row.stage.code().to_owned(),
                            deadline: deadline_code(kind).to_owned(),
                            due: time(due),
                            overdue_hours: round1(hours(due, now_micros)),
                            prioritised: row.prioritised,
                        },
                    )
                })
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.review.cmp(&b.1.review)));
        Overdue {
            position: self.position(),
            reviews: rows.into_iter().map(|(_, r)| r).collect(),
        }
    }
}

fn hours(from: i64, to: i64) -> f64 {
    (to - from) as f64 / 3_600_000_000.0
}

fn zeros<'a>(keys: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, u64> {
    keys.into_iter().map(|k| (k.to_owned(), 0)).collect()
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(v) => *v += 1,
        None => {
            map.insert(key.to_owned(), 1);
        }
    }
}

fn departure_code(kind: docket_domain::policy::DepartureKind) -> &'static str {
    match kind {
        docket_domain::policy::DepartureKind::ActionWithoutPriority => "action_without_priority",
        docket_domain::policy::DepartureKind::DeclinedPriority => "declined_priority",
    }
}

fn deadline_code(kind: DeadlineKind) -> &'static str {
    kind.code()
}
