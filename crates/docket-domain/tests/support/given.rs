//! The domain tests' one given/when/then harness, in the shape of cqrs-es's `TestFramework`:
//! `given(events)`, then `when(actor, command)`, then `then_events(..)`, `then_refused(code)` or
//! one of the accessors. Every aggregate's rule tests (case, officer, representation, review) use
//! it, so "the state is the fold of its events" and "a refusal changes nothing" are checked after
//! every command of every test, in one place.

use std::fmt::Debug;

use chrono::{DateTime, Duration, Utc};
use docket_domain::policy::PolicySet;
use docket_domain::values::Actor;
use docket_domain::{Aggregate, Context, Deadlines, Rejection};

use super::{in_force, policies, MapDirectory};

/// One aggregate instance under test and the world its decisions see. The fields are public so
/// a test can change the world between commands (a G-28 withdrawn, a deadline reconfigured).
pub struct TestFramework<A: Aggregate> {
    /// The state: always the fold of [`TestFramework::events`].
    pub state: A,
    /// Every event so far, given or decided.
    pub events: Vec<A::Event>,
    /// What `Context::directory` answers.
    pub directory: MapDirectory,
    /// The guideline versions.
    pub policies: PolicySet,
    /// The review deadlines in force.
    pub deadlines: Deadlines,
    /// When the next command is decided (after [`TestFramework::step`] is added).
    pub now: DateTime<Utc>,
    /// How far the clock moves before each command: zero unless [`TestFramework::stepping`].
    pub step: Duration,
}

impl<A> TestFramework<A>
where
    A: Aggregate + PartialEq + Debug,
    A::Event: PartialEq + Debug,
    A::Command: Debug,
{
    /// A fresh aggregate in `directory`'s world, at a time the 2021-09-30 guidelines were in
    /// force, with the shipped policies and default deadlines.
    pub fn with(directory: MapDirectory) -> Self {
        TestFramework {
            state: A::default(),
            events: Vec::new(),
            directory,
            policies: policies(),
            deadlines: Deadlines::default(),
            now: in_force(),
            step: Duration::zero(),
        }
    }

    /// Events already recorded, folded into the state.
    pub fn given(mut self, events: impl IntoIterator<Item = A::Event>) -> Self {
        for e in events {
            self.apply(e);
        }
        self
    }

    /// Decides every following command at `now` (plus the step, if any).
    pub fn at(&mut self, now: DateTime<Utc>) -> &mut Self {
        self.now = now;
        self
    }

    /// Moves the clock by `step` before each command, as a sequence of steps takes time.
    pub fn stepping(mut self, step: Duration) -> Self {
        self.step = step;
        self
    }

    /// Decides `command` as `actor`. Accepted events are applied at once, and the state is
    /// checked against the fold of every event so far; a refusal is checked to change nothing.
    pub fn when(&mut self, actor: Actor, command: A::Command) -> Then<'_, A> {
        self.now += self.step;
        let before = self.state.clone();
        let ctx = Context {
            actor,
            now: self.now,
            policies: &self.policies,
            directory: &self.directory,
            deadlines: &self.deadlines,
        };
        let result = self.state.decide(&command, &ctx);
        match &result {
            Ok(events) => {
                for e in events {
                    self.apply(e.clone());
                }
                assert_eq!(
                    A::fold(&self.events),
                    self.state,
                    "state is the fold of its events"
                );
            }
            Err(_) => assert_eq!(self.state, before, "a refused command changes nothing"),
        }
        Then {
            framework: self,
            what: format!("{command:?} by {actor:?}"),
            result,
        }
    }

    fn apply(&mut self, event: A::Event) {
        self.state = std::mem::take(&mut self.state).evolve(&event);
        self.events.push(event);
    }
}

/// What one command came to, to be asserted.
pub struct Then<'f, A: Aggregate> {
    framework: &'f mut TestFramework<A>,
    what: String,
    result: Result<Vec<A::Event>, Rejection>,
}

impl<'f, A> Then<'f, A>
where
    A: Aggregate,
    A::Event: PartialEq + Debug,
{
    /// Accepted, with exactly these events; the framework, for the next command.
    pub fn then_events(self, expected: &[A::Event]) -> &'f mut TestFramework<A> {
        let Then {
            framework,
            what,
            result,
        } = self;
        match result {
            Ok(events) => assert_eq!(events, expected, "{what}"),
            Err(r) => panic!("{what} was refused: {r} ({})", r.code()),
        }
        framework
    }

    /// Accepted: the events it recorded.
    pub fn then_ok(self) -> Vec<A::Event> {
        match self.result {
            Ok(events) => events,
            Err(r) => panic!("{} was refused: {r} ({})", self.what, r.code()),
        }
    }

    /// Accepted, with exactly one event: that event.
    pub fn then_one(self) -> A::Event {
        let what = self.what.clone();
        let mut events = self.then_ok();
        assert_eq!(events.len(), 1, "{what}: {events:?}");
        events.remove(0)
    }

    /// Refused with the stable code `code`: the rejection.
    pub fn then_refused(self, code: &str) -> Rejection {
        let what = self.what.clone();
        let rejection = self.then_rejected();
        assert_eq!(rejection.code(), code, "{what}: {rejection}");
        rejection
    }

    /// Refused, whatever the code: the rejection.
    pub fn then_rejected(self) -> Rejection {
        match self.result {
            Ok(events) => panic!("{} was accepted: {events:?}", self.what),
            Err(r) => r,
        }
    }

    /// The outcome as it came, for tables that expect either.
    pub fn result(self) -> Result<Vec<A::Event>, Rejection> {
        self.result
    }
}
