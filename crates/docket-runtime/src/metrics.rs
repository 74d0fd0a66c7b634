//! The runtime's metrics: commands the executor runs, its appends to the log, the reactions'
//! effects and their checkpoints' positions. A [`Metrics`] is registered into the node's
//! `prometheus_client` registry by the composition root; nothing here is global, so two systems
//! in one process count apart. The catalogue of every Docket metric is in `docs/dashboard.md`.

use std::time::Duration;

use docket_domain::CommandKind;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::deadlines::DEADLINES_CONSUMER;
use crate::reactions::GUIDANCE_CONSUMER;

/// The upper bounds, in seconds, of every Docket latency histogram's buckets (`+Inf` follows).
pub const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A histogram with [`BUCKETS`].
pub fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// One label with a value from a closed set, e.g. `[("outcome", "ok")]`.
type Label = [(&'static str, &'static str); 1];
/// Two labels with values from closed sets, named in alphabetical order (as they render).
type Labels = [(&'static str, &'static str); 2];
/// One label whose value is a name not known in advance (a consumer).
type NameLabel = [(&'static str, String); 1];

/// What `docket_commands_total` counts a command's end as.
const COMMAND_OUTCOMES: [&str; 3] = ["ok", "refused", "error"];
/// What `docket_appends_total` counts an append's end as.
const APPEND_OUTCOMES: [&str; 4] = ["ok", "conflict", "duplicate", "error"];
/// What `docket_reactions_total` counts.
const REACTION_OUTCOMES: [&str; 3] = ["ok", "error", "restarted"];
/// The runtime's own reactions (their names label reactions and positions).
const REACTIONS: [&str; 2] = [GUIDANCE_CONSUMER, DEADLINES_CONSUMER];

/// The runtime's metric families. Cheap to clone (handles onto shared cells). The default is
/// registered nowhere: it counts, and nothing shows it (for tests and tools that do not serve
/// `/metrics`).
#[derive(Clone, Debug)]
pub struct Metrics {
    commands: Family<Labels, Counter>,
    command_duration: Family<Label, Histogram>,
    appends: Family<Label, Counter>,
    append_duration: Histogram,
    reactions: Family<Labels, Counter>,
    reaction_position: Family<NameLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let metrics = Metrics {
            commands: Family::default(),
            command_duration: Family::new_with_constructor(latency_histogram),
            appends: Family::default(),
            append_duration: latency_histogram(),
            reactions: Family::default(),
            reaction_position: Family::default(),
        };
        // Every series whose labels come from a closed set exists from the start, reading 0, so
        // a dashboard's query finds it before the first command rather than nothing.
        for kind in CommandKind::ALL {
            for outcome in COMMAND_OUTCOMES {
                metrics
                    .commands
                    .get_or_create_owned(&[("command", kind.name()), ("outcome", outcome)]);
            }
            metrics
                .command_duration
                .get_or_create_owned(&[("command", kind.name())]);
        }
        for outcome in APPEND_OUTCOMES {
            metrics.appends.get_or_create_owned(&[("outcome", outcome)]);
        }
        for reaction in REACTIONS {
            for outcome in REACTION_OUTCOMES {
                metrics
                    .reactions
                    .get_or_create_owned(&[("outcome", outcome), ("reaction", reaction)]);
            }
            metrics
                .reaction_position
                .get_or_create_owned(&[("consumer", reaction.to_owned())]);
        }
        metrics
    }
}

impl Metrics {
    /// The runtime's families, registered into `registry` (names and help as
    /// `docs/dashboard.md` lists them; the encoder appends `_total` to counters).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Metrics::default();
        registry.register(
            "docket_commands",
            "Commands executed, by command and outcome (ok, refused by the domain, error)",
            metrics.commands.clone(),
        );
        registry.register(
            "docket_command_duration_seconds",
            "Time to execute a command, from the executor taking it to its reply, in seconds",
            metrics.command_duration.clone(),
        );
        registry.register(
            "docket_appends",
            "Appends of a command's events to the log, by outcome (ok, conflict, duplicate, error)",
            metrics.appends.clone(),
        );
        registry.register(
            "docket_append_duration_seconds",
            "Time for the log to acknowledge (or refuse) an append, in seconds",
            metrics.append_duration.clone(),
        );
        registry.register(
            "docket_reactions",
            "Effects recorded by reactions (guidance recomputed, deadline missed), by reaction and outcome",
            metrics.reactions.clone(),
        );
        registry.register(
            "docket_reaction_position",
            "Log position up to which a consumer has done its work (its checkpoint, saved or not)",
            metrics.reaction_position.clone(),
        );
        metrics
    }

    /// Counts an executed command (`ok`, `refused` by the domain, or `error`) and its duration.
    pub(crate) fn command_done(&self, command: CommandKind, outcome: &'static str, took: Duration) {
        self.commands
            .get_or_create(&[("command", command.name()), ("outcome", outcome)])
            .inc();
        self.command_duration
            .get_or_create(&[("command", command.name())])
            .observe(took.as_secs_f64());
    }

    /// Counts one append to the log (`ok`, `conflict`, `duplicate` or `error`) and its duration.
    pub(crate) fn append_done(&self, outcome: &'static str, took: Duration) {
        self.appends.get_or_create(&[("outcome", outcome)]).inc();
        self.append_duration.observe(took.as_secs_f64());
    }

    /// Counts an effect a reaction made (`ok`), failed to make (`error`), or its restart after a
    /// failure (`restarted`).
    pub(crate) fn reaction_done(&self, reaction: &'static str, outcome: &'static str) {
        self.reactions
            .get_or_create(&[("outcome", outcome), ("reaction", reaction)])
            .inc();
    }

    /// The gauge of a consumer's checkpoint position (`docket_reaction_position{consumer}`), for
    /// [`crate::Checkpoint::load`].
    pub fn reaction_position(&self, consumer: &str) -> Gauge {
        self.reaction_position
            .get_or_create_owned(&[("consumer", consumer.to_owned())])
    }
}

/// A count or position as a gauge's value (they stay far below `i64::MAX`).
pub fn gauge_value(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
