//! The world as a pure fold: every aggregate's state, folded commit by commit from the log's
//! domain events, and the [`Directory`] the rules look things up in.
//!
//! Pure like the rest of the domain: the caller reads and decodes the commits (the runtime's live
//! world follows the log; an audit replays an export) and hands over each commit's position,
//! stream, idempotency key and events. Commits of streams no aggregate owns only advance the
//! position, and their events are never asked for.

use std::collections::HashMap;

use crate::aggregate::{Aggregate, DecisionParties, Directory, OfficerProfile};
use crate::case::{Case, CaseEvent};
use crate::events::DomainEvent;
use crate::officer::Officer;
use crate::representation::Representation;
use crate::review::Review;
use crate::stream::{AggregateKind, StreamKey};
use crate::values::{ANumber, DecisionId, PersonId};

/// Every aggregate's state as of one log position. Keys are stream names ([`StreamKey`]'s text,
/// `case/<id>`, …); each value is the stream's revision and the folded state.
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

/// An aggregate the world keeps: where in a [`WorldView`] its states are.
pub trait InWorld: Aggregate {
    /// Its states in the world.
    fn states(world: &WorldView) -> &HashMap<String, (u64, Self)>;
}

impl InWorld for Case {
    fn states(world: &WorldView) -> &HashMap<String, (u64, Self)> {
        &world.cases
    }
}

impl InWorld for Officer {
    fn states(world: &WorldView) -> &HashMap<String, (u64, Self)> {
        &world.officers
    }
}

impl InWorld for Representation {
    fn states(world: &WorldView) -> &HashMap<String, (u64, Self)> {
        &world.representations
    }
}

impl InWorld for Review {
    fn states(world: &WorldView) -> &HashMap<String, (u64, Self)> {
        &world.reviews
    }
}

impl WorldView {
    /// The state and revision of one stream of aggregate `A` (default and 0 if it has none).
    pub fn get<A: InWorld>(&self, stream: &str) -> (u64, A) {
        A::states(self).get(stream).cloned().unwrap_or_default()
    }

    /// The state and revision of the stream `key`, if it has commits.
    pub fn state<A: InWorld>(&self, key: &StreamKey) -> Option<&(u64, A)> {
        A::states(self).get(&key.to_string())
    }

    fn apply_events<A: Aggregate>(
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

    /// Applies the commit at `position` to `stream`, once: a position at or before the last one
    /// applied changes nothing. `events` is asked for only when an aggregate owns the stream
    /// (its `Err` is returned as it is); other streams only advance the position.
    pub fn apply(
        &mut self,
        position: u64,
        stream: &str,
        idempotency_key: Option<&str>,
        events: impl FnOnce() -> Result<Vec<DomainEvent>, String>,
    ) -> Result<(), String> {
        if position <= self.applied {
            return Ok(());
        }
        match AggregateKind::of_stream(stream) {
            Some(AggregateKind::Case) => {
                let events = events()?;
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
                Self::apply_events(&mut self.officers, stream, position, events()?)?;
            }
            Some(AggregateKind::Representation) => {
                Self::apply_events(&mut self.representations, stream, position, events()?)?;
            }
            Some(AggregateKind::Review) => {
                Self::apply_events(&mut self.reviews, stream, position, events()?)?;
            }
            None => {}
        }
        if let Some(key) = idempotency_key {
            self.idempotency_keys.insert(key.to_owned(), position);
        }
        self.applied = position;
        Ok(())
    }
}

impl Directory for WorldView {
    fn officer(&self, person: PersonId) -> Option<OfficerProfile> {
        self.state::<Officer>(&StreamKey::Officer(person))
            .and_then(|(_, o)| o.profile())
    }

    fn has_g28(&self, a_number: ANumber, representative: PersonId) -> bool {
        self.state::<Representation>(&StreamKey::Representation(a_number, representative))
            .is_some_and(|(_, r)| r.is_active())
    }

    fn decision(&self, decision: DecisionId) -> Option<DecisionParties> {
        self.decisions.get(&decision).cloned()
    }
}
