//! Supervision, decided once: every long-running component of a node runs here, under one
//! [`TaskTracker`]. A component either restarts with a backoff (counted in
//! `docket_component_restarts_total{component}`) or, when it stops, stops the whole node, which
//! then exits non-zero naming it, so that `Restart=always` brings the process back whole. Which
//! component gets which treatment is in `docs/architecture.md` ("Shutdown and supervision").

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::SupervisionTunables;

/// What a component's run ended with: `Err` carries why, as the log and the exit will say it.
pub type Outcome = Result<(), String>;

/// The state of one component, as `/readyz` reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ComponentState {
    /// Running.
    Running,
    /// Failed, waiting to start again.
    Restarting {
        /// Why the last run ended.
        error: String,
        /// Restarts so far.
        restarts: u64,
    },
    /// Stopped on its own with an error: the node stops.
    Failed {
        /// Why.
        error: String,
    },
    /// Ended (at shutdown).
    Stopped,
}

/// Why a node stopped on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentFailure {
    /// The component, e.g. `dashboard` or `checkpointer`.
    pub component: String,
    /// What it said.
    pub error: String,
}

/// One stage's stop signal and its tasks (a role's components stop together).
#[derive(Debug)]
struct Stage {
    name: &'static str,
    stop: watch::Sender<bool>,
    tracker: TaskTracker,
}

/// The components of one node.
#[derive(Clone, Debug)]
pub struct Supervisor {
    /// Turned when the node must stop: from outside (a signal) or by a failed component.
    node: CancellationToken,
    stages: Arc<Mutex<Vec<Stage>>>,
    states: Arc<Mutex<BTreeMap<String, ComponentState>>>,
    failure: Arc<Mutex<Option<ComponentFailure>>>,
    backoff: SupervisionTunables,
    restarts: Family<[(&'static str, &'static str); 1], Counter>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these small maps leaves it consistent: take it anyway.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Supervisor {
    /// A supervisor stopping when `node` is cancelled, counting restarts in `restarts`
    /// (`docket_component_restarts_total`).
    pub fn new(
        node: CancellationToken,
        backoff: SupervisionTunables,
        restarts: Family<[(&'static str, &'static str); 1], Counter>,
    ) -> Self {
        Supervisor {
            node,
            stages: Arc::default(),
            states: Arc::default(),
            failure: Arc::default(),
            backoff,
            restarts,
        }
    }

    /// The node's stop token.
    pub fn token(&self) -> CancellationToken {
        self.node.clone()
    }

    /// Opens the next stage (stages stop in the reverse order of opening); its shutdown signal.
    pub fn stage(&self, name: &'static str) -> watch::Receiver<bool> {
        let (stop, rx) = watch::channel(false);
        lock(&self.stages).push(Stage {
            name,
            stop,
            tracker: TaskTracker::new(),
        });
        rx
    }

    fn tracker(&self) -> TaskTracker {
        lock(&self.stages)
            .last()
            .map(|s| s.tracker.clone())
            .unwrap_or_default()
    }

    fn set(&self, component: &str, state: ComponentState) {
        lock(&self.states).insert(component.to_owned(), state);
    }

    /// Every component's state.
    pub fn states(&self) -> BTreeMap<String, ComponentState> {
        lock(&self.states).clone()
    }

    /// Why the node stopped on its own, if it did.
    pub fn failure(&self) -> Option<ComponentFailure> {
        lock(&self.failure).clone()
    }

    /// Records that `component` failed and stops the node (the first failure is the one kept).
    pub fn fail(&self, component: &str, error: String) {
        tracing::error!(component, %error, "a component stopped: stopping the node");
        self.set(
            component,
            ComponentState::Failed {
                error: error.clone(),
            },
        );
        lock(&self.failure).get_or_insert(ComponentFailure {
            component: component.to_owned(),
            error,
        });
        self.node.cancel();
    }

    /// Runs `task` in the current stage; when it ends with an error or panics (other than after
    /// the node began stopping), the node stops, naming `component`.
    pub fn critical<F>(&self, component: &'static str, task: F)
    where
        F: Future<Output = Outcome> + Send + 'static,
    {
        self.set(component, ComponentState::Running);
        let me = self.clone();
        self.tracker().spawn(async move {
            let outcome = std::panic::AssertUnwindSafe(task)
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| Err(panic_message(&panic)));
            match outcome {
                Ok(()) => me.set(component, ComponentState::Stopped),
                Err(error) => me.fail(component, error),
            }
        });
    }

    /// Runs `task()` in the current stage and starts it again after each failure, with a backoff
    /// doubling from `[supervision] initial_backoff_ms` to `max_backoff_ms` (reset after a run
    /// longer than the longest backoff), until the stage stops.
    pub fn restarting<F, Fut>(&self, component: &'static str, mut task: F)
    where
        F: FnMut(watch::Receiver<bool>) -> Fut + Send + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        self.set(component, ComponentState::Running);
        let mut stop = lock(&self.stages)
            .last()
            .map(|s| s.stop.subscribe())
            .unwrap_or_else(|| watch::channel(true).1);
        let me = self.clone();
        let initial = Duration::from_millis(self.backoff.initial_backoff_ms.max(1));
        let max = Duration::from_millis(self.backoff.max_backoff_ms.max(1)).max(initial);
        let restarts_metric = self
            .restarts
            .get_or_create(&[("component", component)])
            .clone();
        self.tracker().spawn(async move {
            let mut backoff = initial;
            let mut restarts = 0u64;
            loop {
                let started = Instant::now();
                let run = std::panic::AssertUnwindSafe(task(stop.clone()))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|panic| Err(panic_message(&panic)));
                let error = match run {
                    Ok(()) => {
                        me.set(component, ComponentState::Stopped);
                        return;
                    }
                    Err(_) if *stop.borrow() => {
                        me.set(component, ComponentState::Stopped);
                        return;
                    }
                    Err(error) => error,
                };
                if started.elapsed() > max {
                    backoff = initial;
                }
                restarts += 1;
                restarts_metric.inc();
                tracing::warn!(component, %error, retry_in = ?backoff, restarts, "a component failed; starting it again");
                me.set(
                    component,
                    ComponentState::Restarting {
                        error,
                        restarts,
                    },
                );
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stop.wait_for(|s| *s) => {
                        me.set(component, ComponentState::Stopped);
                        return;
                    }
                }
                me.set(component, ComponentState::Running);
                backoff = (backoff * 2).min(max);
            }
        });
    }

    /// Stops the stages in reverse order, each after the later ones finished.
    pub async fn stop_all(&self) {
        loop {
            let Some(stage) = lock(&self.stages).pop() else {
                return;
            };
            tracing::info!(stage = stage.name, "stopping");
            stage.stop.send_replace(true);
            stage.tracker.close();
            stage.tracker.wait().await;
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned());
    format!("panicked: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast() -> SupervisionTunables {
        SupervisionTunables {
            initial_backoff_ms: 1,
            max_backoff_ms: 5,
        }
    }

    #[tokio::test]
    async fn a_critical_component_that_fails_stops_the_node_naming_it() {
        let s = Supervisor::new(CancellationToken::new(), fast(), Family::default());
        let _stop = s.stage("audit");
        s.critical("checkpointer", async { Err("disk full".to_owned()) });
        s.token().cancelled().await;
        s.stop_all().await;
        let failure = s.failure().map(|f| (f.component, f.error));
        assert_eq!(failure, Some(("checkpointer".into(), "disk full".into())));
    }

    #[tokio::test]
    async fn a_panic_is_a_failure_too() {
        let s = Supervisor::new(CancellationToken::new(), fast(), Family::default());
        let _stop = s.stage("dashboard");
        s.critical("dashboard", async {
            let v: Vec<u8> = Vec::new();
            #[allow(clippy::indexing_slicing)]
            let _ = v[3];
            Ok(())
        });
        s.token().cancelled().await;
        let failure = s.failure().map(|f| f.component);
        assert_eq!(failure.as_deref(), Some("dashboard"));
        assert!(s.failure().is_some_and(|f| f.error.starts_with("panicked")));
    }

    #[tokio::test]
    async fn a_restarting_component_comes_back_until_the_stage_stops() {
        let s = Supervisor::new(CancellationToken::new(), fast(), Family::default());
        let _stop = s.stage("notification");
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        s.restarting("notification", move |mut stop| {
            let runs = counted.clone();
            async move {
                if runs.fetch_add(1, Ordering::SeqCst) < 3 {
                    return Err("log unavailable".to_owned());
                }
                let _ = stop.wait_for(|s| *s).await;
                Ok(())
            }
        });
        while runs.load(Ordering::SeqCst) < 4 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(
            s.states().get("notification"),
            Some(&ComponentState::Running)
        );
        s.stop_all().await;
        assert_eq!(runs.load(Ordering::SeqCst), 4);
        assert_eq!(s.failure(), None);
        assert!(!s.token().is_cancelled());
        assert_eq!(
            s.states().get("notification"),
            Some(&ComponentState::Stopped)
        );
    }

    #[tokio::test]
    async fn stages_stop_in_reverse_order() {
        let s = Supervisor::new(CancellationToken::new(), fast(), Family::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        for name in ["audit", "dashboard", "review"] {
            let mut stop = s.stage(name);
            let order = order.clone();
            s.critical(name, async move {
                let _ = stop.wait_for(|s| *s).await;
                lock(&order).push(name);
                Ok(())
            });
        }
        s.stop_all().await;
        assert_eq!(*lock(&order), ["review", "dashboard", "audit"]);
    }
}
