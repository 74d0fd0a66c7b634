//! The world: every aggregate's state in memory, fed by a subscription to the log, and the
//! directory the domain's rules look things up in.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::Duration;

use docket_domain::aggregate::{DecisionParties, OfficerProfile};
use docket_domain::case::{Case, CaseEvent};
use docket_domain::events::DomainEvent;
use docket_domain::officer::Officer;
use docket_domain::representation::Representation;
use docket_domain::review::Review;
use docket_domain::values::{ANumber, DecisionId, PersonId};
use docket_domain::{AggregateKind, Directory, StreamKey};
use docket_log::{EventLog, RecordedCommit};
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::executor::ExecError;
use crate::stored::{decode_event, StoredAggregate};

/// Every aggregate's state as of one log position. Keys are stream names ([`StreamKey`]'s text,
/// `case/<id>`, …); each
/// value is the stream's revision and the folded state.
#[derive(Debug, Default)]
pub struct WorldView {
    /// Cases.
    pub cases: HashMap<String, (u64, Case)>,
    /// Officers.
    pub officers: HashMap<String, (u64, Officer)>,
    /// G-28s.
    pub representations: HashMap<String, (u64, Representation)>,
    /// Reviews.
    pub reviews: HashMap<String, (u64, Review)>,
    /// Who made each recorded decision.
    pub decisions: HashMap<DecisionId, DecisionParties>,
    /// Where each idempotency key was committed.
    pub idempotency_keys: HashMap<String, u64>,
    /// The last log position applied.
    pub applied: u64,
}

impl WorldView {
    /// The state and revision of one stream of aggregate `A` (default and 0 if it has none).
    pub fn get<A: StoredAggregate>(&self, stream: &str) -> (u64, A) {
        A::states(self).get(stream).cloned().unwrap_or_default()
    }

    fn apply_events<A: StoredAggregate>(
        map: &mut HashMap<String, (u64, A)>,
        stream: &str,
        position: u64,
        events: Vec<DomainEvent>,
    ) -> Result<A, String> {
        let entry = map.entry(stream.to_owned()).or_default();
        let mut state = std::mem::take(&mut entry.1);
        for event in events {
            let name = event.name();
            let event = A::Event::try_from(event)
                .map_err(|_| format!("event {name} does not belong in a {} stream", A::KIND))?;
            state = state.evolve(&event);
        }
        *entry = (position, state.clone());
        Ok(state)
    }

    /// Applies one commit. Commits of streams no aggregate owns only advance the position.
    pub fn apply(&mut self, commit: &RecordedCommit) -> Result<(), String> {
        let position = commit.position;
        if position <= self.applied {
            return Ok(());
        }
        let stream = commit.commit.stream.as_str();
        let kind = AggregateKind::parse(commit.commit.stream.kind());
        let decode = || {
            commit
                .commit
                .events
                .iter()
                .map(|e| decode_event(e).map_err(|err| format!("commit {position}: {err}")))
                .collect::<Result<Vec<_>, _>>()
        };
        match kind {
            Some(AggregateKind::Case) => {
                let events = decode()?;
                let recorded: Vec<_> = events
                    .iter()
                    .filter_map(|e| match e {
                        DomainEvent::Case(CaseEvent::DecisionRecorded(r)) => Some(r.clone()),
                        _ => None,
                    })
                    .collect();
                let case = Self::apply_events(&mut self.cases, stream, position, events)?;
                if let Some(opened) = &case.opened {
                    for r in recorded {
                        self.decisions.insert(
                            r.decision,
                            DecisionParties {
                                case: opened.case,
                                officer: r.officer,
                                approver: r.approved_by,
                                office: opened.office,
                                a_number: opened.a_number,
                                action: r.action,
                            },
                        );
                    }
                }
            }
            Some(AggregateKind::Officer) => {
                let events = decode()?;
                Self::apply_events(&mut self.officers, stream, position, events)?;
            }
            Some(AggregateKind::Representation) => {
                let events = decode()?;
                Self::apply_events(&mut self.representations, stream, position, events)?;
            }
            Some(AggregateKind::Review) => {
                let events = decode()?;
                Self::apply_events(&mut self.reviews, stream, position, events)?;
            }
            None => {}
        }
        if let Some(key) = &commit.commit.metadata.idempotency_key {
            self.idempotency_keys.insert(key.clone(), position);
        }
        self.applied = position;
        Ok(())
    }
}

impl Directory for WorldView {
    fn officer(&self, person: PersonId) -> Option<OfficerProfile> {
        self.officers
            .get(&StreamKey::Officer(person).to_string())
            .and_then(|(_, o)| o.profile())
    }

    fn has_g28(&self, a_number: ANumber, representative: PersonId) -> bool {
        let key = StreamKey::Representation(a_number, representative).to_string();
        self.representations
            .get(&key)
            .is_some_and(|(_, r)| r.is_active())
    }

    fn decision(&self, decision: DecisionId) -> Option<DecisionParties> {
        self.decisions.get(&decision).cloned()
    }
}

/// How far the world has applied the log, and whether it had to stop.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    applied: u64,
    fault: Option<String>,
}

/// The shared, live world. Cheap to clone.
#[derive(Clone, Debug)]
pub struct World {
    view: Arc<RwLock<WorldView>>,
    progress: Arc<watch::Sender<Progress>>,
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

impl World {
    /// An empty world at position 0.
    pub fn new() -> Self {
        World {
            view: Arc::new(RwLock::new(WorldView::default())),
            progress: Arc::new(watch::channel(Progress::default()).0),
        }
    }

    /// Reads the current view. Do not hold it across an await.
    pub fn read(&self) -> RwLockReadGuard<'_, WorldView> {
        // Writers never panic while holding the lock (apply returns errors), so a poisoned lock
        // still guards a consistent view.
        self.view.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies one commit and wakes whoever waits for its position. A commit that cannot be
    /// applied stops the world: it is never skipped.
    pub fn apply(&self, commit: &RecordedCommit) -> Result<(), String> {
        let result = self
            .view
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .apply(commit);
        match &result {
            Ok(()) => self
                .progress
                .send_modify(|p| p.applied = p.applied.max(commit.position)),
            Err(fault) => {
                tracing::error!(position = commit.position, fault = %fault, "cannot apply a commit; the world stops here");
                let fault = fault.clone();
                self.progress.send_modify(|p| p.fault = Some(fault));
            }
        }
        result
    }

    /// A receiver that wakes whenever the world moves on.
    pub(crate) fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// The last position applied.
    pub fn applied(&self) -> u64 {
        self.progress.borrow().applied
    }

    /// Why the world stopped following the log, if it did.
    pub fn fault(&self) -> Option<String> {
        self.progress.borrow().fault.clone()
    }

    /// Follows the log from the last applied position, in a task, until the log ends or a
    /// commit cannot be applied.
    pub fn follow<L: EventLog + Send + Sync + 'static>(
        &self,
        log: L,
    ) -> tokio::task::JoinHandle<()> {
        let world = self.clone();
        tokio::spawn(async move {
            let after = world.applied();
            let mut feed = match log.subscribe(after).await {
                Ok(feed) => feed,
                Err(e) => {
                    world.progress.send_modify(|p| {
                        p.fault = Some(format!("cannot subscribe to the log: {e}"))
                    });
                    return;
                }
            };
            while let Some(next) = feed.next().await {
                let applied = match next {
                    Ok(commit) => world.apply(&commit),
                    Err(e) => {
                        let fault = format!("reading the log: {e}");
                        world
                            .progress
                            .send_modify(|p| p.fault = Some(fault.clone()));
                        Err(fault)
                    }
                };
                if applied.is_err() {
                    return;
                }
            }
        })
    }

    /// Waits until `position` is applied; fails if the world stopped or `timeout` passed.
    pub async fn wait_applied(&self, position: u64, timeout: Duration) -> Result<(), ExecError> {
        let mut rx = self.progress.subscribe();
        let waited = tokio::time::timeout(
            timeout,
            rx.wait_for(|p| p.applied >= position || p.fault.is_some()),
        )
        .await;
        match waited {
            Ok(Ok(p)) if p.applied >= position => Ok(()),
            Ok(Ok(p)) => Err(ExecError::Stopped(p.fault.clone().unwrap_or_default())),
            Ok(Err(_)) => Err(ExecError::Stopped("the world was dropped".into())),
            Err(_) => Err(ExecError::Unavailable(format!(
                "the log has not caught up to position {position} within {timeout:?}"
            ))),
        }
    }
}
