//! Prometheus metrics: a small process-global registry of counters, gauges and histograms, and
//! its rendering in the text exposition format (version 0.0.4) that `/metrics` serves.
//!
//! A series is looked up by name and labels on every use (a hash of borrowed strings and a short
//! lock, no allocation once the series exists), or once into a handle ([`Counter`], [`Gauge`],
//! [`Histogram`]) whose updates are plain atomics. The metrics Docket itself records are defined
//! here, next to the registry, so their names and help texts live in one place; the catalogue is
//! in `docs/dashboard.md`.

pub mod checkpoints;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use docket_domain::case::CaseCommand;
use docket_domain::officer::OfficerCommand;
use docket_domain::representation::RepresentationCommand;
use docket_domain::review::ReviewCommand;

/// The upper bounds, in seconds, of every histogram's buckets (`+Inf` follows them).
pub const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Label names and values of one series, e.g. `&[("command", "case.open")]`.
pub type Labels<'a> = &'a [(&'static str, &'a str)];

/// What kind of metric a family is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A histogram's cells: a count per bucket (not cumulative, the last one `+Inf`) and the sum.
/// `_count` is rendered as the buckets' total, so it always equals the `+Inf` bucket even while
/// observations race the rendering.
#[derive(Debug)]
struct HistogramCells {
    buckets: [AtomicU64; BUCKETS.len() + 1],
    /// The sum of observations, as `f64` bits.
    sum: AtomicU64,
}

impl Default for HistogramCells {
    fn default() -> Self {
        HistogramCells {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }
}

/// The value cells of one series.
#[derive(Clone, Debug)]
enum Cells {
    Counter(Arc<AtomicU64>),
    /// `f64` bits.
    Gauge(Arc<AtomicU64>),
    Histogram(Arc<HistogramCells>),
}

impl Cells {
    fn new(kind: Kind) -> Self {
        match kind {
            Kind::Counter => Cells::Counter(Arc::default()),
            Kind::Gauge => Cells::Gauge(Arc::new(AtomicU64::new(0f64.to_bits()))),
            Kind::Histogram => Cells::Histogram(Arc::default()),
        }
    }
}

/// One series: a name, its labels sorted by label name, its cells.
#[derive(Debug)]
struct Series {
    name: &'static str,
    labels: Vec<(&'static str, String)>,
    cells: Cells,
}

impl Series {
    /// Whether this is the series `name{labels}`, labels in any order.
    fn is(&self, name: &str, labels: Labels<'_>) -> bool {
        self.name == name
            && self.labels.len() == labels.len()
            && labels
                .iter()
                .all(|(k, v)| self.labels.iter().any(|(sk, sv)| sk == k && sv == v))
            && self
                .labels
                .iter()
                .all(|(sk, sv)| labels.iter().any(|(k, v)| sk == k && sv == v))
    }
}

/// All series of one name.
#[derive(Debug)]
struct Family {
    help: &'static str,
    kind: Kind,
    /// By labels (sorted by label name), which is the order they are rendered in.
    series: BTreeMap<Vec<(&'static str, String)>, Arc<Series>>,
}

#[derive(Debug, Default)]
struct Inner {
    families: BTreeMap<&'static str, Family>,
    /// Every series by [`key`] of its name and labels, for lookups that allocate nothing.
    index: HashMap<u64, Vec<Arc<Series>>>,
}

/// A set of metrics and their rendering. The process has one; tests make their own.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    inner: Mutex<Inner>,
}

/// A series' lookup key: the same for the same labels in any order.
fn key(name: &str, labels: Labels<'_>) -> u64 {
    let hash = |value: &dyn Fn(&mut DefaultHasher)| {
        let mut hasher = DefaultHasher::new();
        value(&mut hasher);
        hasher.finish()
    };
    labels.iter().fold(hash(&|h| name.hash(h)), |acc, (k, v)| {
        acc.wrapping_add(hash(&|h| (k, v).hash(h)))
    })
}

/// Whether `name` is a valid metric (or, without colons, label) name.
fn valid_name(name: &str, colons: bool) -> bool {
    let ok = |c: char, first: bool| {
        c.is_ascii_alphabetic()
            || c == '_'
            || (colons && c == ':')
            || (!first && c.is_ascii_digit())
    };
    let mut chars = name.chars();
    chars.next().is_some_and(|c| ok(c, true)) && chars.all(|c| ok(c, false))
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// The lock; a panic elsewhere while holding it leaves nothing half-done worth refusing
    /// metrics over (every update is one atomic or one insertion).
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cells of `name{labels}`, registering the series (and its family) on first use. `None`
    /// for a misuse: an invalid name, a duplicate or reserved label, or a name registered with
    /// another kind; the caller then updates cells nothing renders.
    fn cells(
        &self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: Labels<'_>,
    ) -> Option<Cells> {
        let key = key(name, labels);
        let mut inner = self.lock();
        if let Some(series) = inner
            .index
            .get(&key)
            .and_then(|candidates| candidates.iter().find(|s| s.is(name, labels)))
        {
            return Some(series.cells.clone());
        }
        // First use of this series: check it once, then register it.
        let mut sorted: Vec<(&'static str, String)> =
            labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        sorted.sort();
        let bad_label = sorted.windows(2).any(|w| w[0].0 == w[1].0)
            || sorted.iter().any(|(k, _)| {
                !valid_name(k, false)
                    || k.starts_with("__")
                    || (kind == Kind::Histogram && *k == "le")
            });
        if !valid_name(name, true) || bad_label {
            tracing::warn!(metric = name, "invalid metric name or labels: not recorded");
            return None;
        }
        let family = inner.families.entry(name).or_insert_with(|| Family {
            help,
            kind,
            series: BTreeMap::new(),
        });
        if family.kind != kind {
            tracing::warn!(
                metric = name,
                registered = family.kind.name(),
                used = kind.name(),
                "metric used as two kinds: not recorded"
            );
            return None;
        }
        let series = Arc::new(Series {
            name,
            labels: sorted.clone(),
            cells: Cells::new(kind),
        });
        family.series.insert(sorted, series.clone());
        let cells = series.cells.clone();
        inner.index.entry(key).or_default().push(series);
        Some(cells)
    }

    /// The counter `name{labels}`.
    pub fn counter(&self, name: &'static str, help: &'static str, labels: Labels<'_>) -> Counter {
        match self.cells(name, help, Kind::Counter, labels) {
            Some(Cells::Counter(cell)) => Counter(cell),
            _ => Counter(Arc::default()),
        }
    }

    /// The gauge `name{labels}`.
    pub fn gauge(&self, name: &'static str, help: &'static str, labels: Labels<'_>) -> Gauge {
        match self.cells(name, help, Kind::Gauge, labels) {
            Some(Cells::Gauge(cell)) => Gauge(cell),
            _ => Gauge(Arc::new(AtomicU64::new(0f64.to_bits()))),
        }
    }

    /// The histogram `name{labels}`, with buckets [`BUCKETS`].
    pub fn histogram(
        &self,
        name: &'static str,
        help: &'static str,
        labels: Labels<'_>,
    ) -> Histogram {
        match self.cells(name, help, Kind::Histogram, labels) {
            Some(Cells::Histogram(cells)) => Histogram(cells),
            _ => Histogram(Arc::default()),
        }
    }

    /// Every series in the text exposition format: families sorted by name, each with its
    /// `# HELP` and `# TYPE` lines, its series sorted by labels.
    pub fn render(&self) -> String {
        let inner = self.lock();
        let mut out = String::new();
        for (name, family) in &inner.families {
            if family.series.is_empty() {
                continue;
            }
            // Writing to a String cannot fail.
            let _ = writeln!(out, "# HELP {name} {}", escape_help(family.help));
            let _ = writeln!(out, "# TYPE {name} {}", family.kind.name());
            for (labels, series) in &family.series {
                match &series.cells {
                    Cells::Counter(cell) => {
                        sample(
                            &mut out,
                            name,
                            "",
                            labels,
                            None,
                            cell.load(Ordering::Relaxed),
                        );
                    }
                    Cells::Gauge(cell) => {
                        let value = f64::from_bits(cell.load(Ordering::Relaxed));
                        sample(&mut out, name, "", labels, None, Float(value));
                    }
                    Cells::Histogram(cells) => render_histogram(&mut out, name, labels, cells),
                }
            }
        }
        out
    }
}

fn render_histogram(
    out: &mut String,
    name: &str,
    labels: &[(&'static str, String)],
    cells: &HistogramCells,
) {
    let mut cumulative = 0u64;
    for (i, bucket) in cells.buckets.iter().enumerate() {
        cumulative += bucket.load(Ordering::Relaxed);
        let le = BUCKETS.get(i).copied().unwrap_or(f64::INFINITY);
        let le = Float(le).to_string();
        sample(out, name, "_bucket", labels, Some(&le), cumulative);
    }
    let sum = f64::from_bits(cells.sum.load(Ordering::Relaxed));
    sample(out, name, "_sum", labels, None, Float(sum));
    sample(out, name, "_count", labels, None, cumulative);
}

/// Writes one sample line: `name{labels,le="…"} value`.
fn sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &[(&'static str, String)],
    le: Option<&str>,
    value: impl std::fmt::Display,
) {
    out.push_str(name);
    out.push_str(suffix);
    let le = le.map(|le| ("le", le));
    let mut all = labels
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(le)
        .peekable();
    if all.peek().is_some() {
        out.push('{');
        for (i, (k, v)) in all.enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape_label(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// A sample value as the format spells floats (`+Inf`, `-Inf`, `NaN`).
struct Float(f64);

impl std::fmt::Display for Float {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            v if v.is_nan() => f.write_str("NaN"),
            f64::INFINITY => f.write_str("+Inf"),
            f64::NEG_INFINITY => f.write_str("-Inf"),
            v => write!(f, "{v}"),
        }
    }
}

/// A label value escaped: backslash, double quote and line feed.
fn escape_label(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    let mut out = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.into()
}

/// A help text escaped: backslash and line feed.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A counter's handle. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
}

/// A gauge's handle. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Gauge(Arc<AtomicU64>);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }
}

/// A histogram's handle, with buckets [`BUCKETS`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Histogram(Arc<HistogramCells>);

impl Histogram {
    /// Records one observation, in seconds (NaN is ignored).
    pub fn observe(&self, seconds: f64) {
        if seconds.is_nan() {
            return;
        }
        let bucket = BUCKETS
            .iter()
            .position(|le| seconds <= *le)
            .unwrap_or(BUCKETS.len());
        if let Some(cell) = self.0.buckets.get(bucket) {
            cell.fetch_add(1, Ordering::Relaxed);
        }
        // Never fails: the closure always returns a value.
        let _ = self
            .0
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + seconds).to_bits())
            });
    }

    /// Records one duration.
    pub fn observe_duration(&self, duration: Duration) {
        self.observe(duration.as_secs_f64());
    }
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

/// The counter `name{labels}` in the process's registry.
pub fn counter(name: &'static str, help: &'static str, labels: Labels<'_>) -> Counter {
    REGISTRY.counter(name, help, labels)
}

/// The gauge `name{labels}` in the process's registry.
pub fn gauge(name: &'static str, help: &'static str, labels: Labels<'_>) -> Gauge {
    REGISTRY.gauge(name, help, labels)
}

/// Sets the gauge `name{labels}` in the process's registry.
pub fn gauge_set(name: &'static str, help: &'static str, labels: Labels<'_>, value: f64) {
    REGISTRY.gauge(name, help, labels).set(value);
}

/// The histogram `name{labels}` in the process's registry.
pub fn histogram(name: &'static str, help: &'static str, labels: Labels<'_>) -> Histogram {
    REGISTRY.histogram(name, help, labels)
}

/// The process's registry in the text exposition format (serve it as [`CONTENT_TYPE`]).
pub fn render() -> String {
    REGISTRY.render()
}

// Docket's own metrics.

/// A command's stable catalogue name (`case.open`), which its metrics are labelled with.
pub trait CommandLabel {
    /// The name.
    fn label(&self) -> &'static str;
}

impl CommandLabel for CaseCommand {
    fn label(&self) -> &'static str {
        self.kind().name()
    }
}

impl CommandLabel for OfficerCommand {
    fn label(&self) -> &'static str {
        self.kind().name()
    }
}

impl CommandLabel for RepresentationCommand {
    fn label(&self) -> &'static str {
        self.kind().name()
    }
}

impl CommandLabel for ReviewCommand {
    fn label(&self) -> &'static str {
        self.kind().name()
    }
}

/// Counts an executed command (`ok`, `refused` by the domain, or `error`) and its duration.
pub(crate) fn command_done(command: &'static str, outcome: &'static str, took: Duration) {
    counter(
        "docket_commands_total",
        "Commands executed, by command and outcome (ok, refused by the domain, error).",
        &[("command", command), ("outcome", outcome)],
    )
    .inc();
    histogram(
        "docket_command_duration_seconds",
        "Time to execute a command, from the executor taking it to its reply, in seconds.",
        &[("command", command)],
    )
    .observe_duration(took);
}

/// Counts one append to the log (`ok`, `conflict`, `duplicate` or `error`) and its duration.
pub(crate) fn append_done(outcome: &'static str, took: Duration) {
    counter(
        "docket_appends_total",
        "Appends of a command's events to the log, by outcome (ok, conflict, duplicate, error).",
        &[("outcome", outcome)],
    )
    .inc();
    histogram(
        "docket_append_duration_seconds",
        "Time for the log to acknowledge (or refuse) an append, in seconds.",
        &[],
    )
    .observe_duration(took);
}

/// Counts an effect a reaction made (`ok`) or failed to make (`error`).
pub(crate) fn reaction_done(reaction: &'static str, outcome: &'static str) {
    counter(
        "docket_reactions_total",
        "Effects recorded by reactions (guidance recomputed, deadline missed), by reaction and outcome.",
        &[("reaction", reaction), ("outcome", outcome)],
    )
    .inc();
}

/// The gauge of a consumer's checkpoint position.
pub(crate) fn reaction_position(consumer: &str) -> Gauge {
    gauge(
        "docket_reaction_position",
        "Log position up to which a consumer has done its work (its checkpoint, saved or not).",
        &[("consumer", consumer)],
    )
}

/// Sets how far a consumer is behind the log's head, in commits.
pub fn set_consumer_lag(consumer: &str, lag: u64) {
    gauge_set(
        "docket_consumer_lag",
        "Commits between the log's head and a consumer's checkpoint.",
        &[("consumer", consumer)],
        lag as f64,
    );
}

/// Sets the log's head (the position of its latest commit).
pub fn set_log_head(head: u64) {
    gauge_set(
        "docket_log_head",
        "Position of the latest commit in the log.",
        &[],
        head as f64,
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn renders_families_sorted_with_help_and_type() {
        let r = Registry::new();
        r.counter("b_total", "Bees.", &[("x", "2")]).add(3);
        r.counter("b_total", "Bees.", &[("x", "1")]).inc();
        r.gauge("a", "An a.", &[]).set(1.5);
        r.counter("b_total", "ignored: the first help wins", &[("x", "1")])
            .inc();
        assert_eq!(
            r.render(),
            "# HELP a An a.\n# TYPE a gauge\na 1.5\n\
             # HELP b_total Bees.\n# TYPE b_total counter\nb_total{x=\"1\"} 2\nb_total{x=\"2\"} 3\n"
        );
    }

    #[test]
    fn labels_are_one_series_in_any_order_and_render_sorted() {
        let r = Registry::new();
        r.counter("c_total", "C.", &[("b", "1"), ("a", "2")]).inc();
        r.counter("c_total", "C.", &[("a", "2"), ("b", "1")]).inc();
        r.counter("c_total", "C.", &[("a", "1"), ("b", "2")]).inc();
        let text = r.render();
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            ["c_total{a=\"1\",b=\"2\"} 1", "c_total{a=\"2\",b=\"1\"} 2"]
        );
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let r = Registry::new();
        r.gauge(
            "g",
            "Back\\slash and\nnewline \"kept\".",
            &[("v", "a\\b\"c\nd")],
        )
        .set(-2.0);
        assert_eq!(
            r.render(),
            "# HELP g Back\\\\slash and\\nnewline \"kept\".\n# TYPE g gauge\n\
             g{v=\"a\\\\b\\\"c\\nd\"} -2\n"
        );
    }

    #[test]
    fn special_floats_are_spelled_as_the_format_wants() {
        let r = Registry::new();
        r.gauge("g", "G.", &[("v", "inf")]).set(f64::INFINITY);
        r.gauge("g", "G.", &[("v", "minf")]).set(f64::NEG_INFINITY);
        r.gauge("g", "G.", &[("v", "nan")]).set(f64::NAN);
        r.gauge("g", "G.", &[("v", "small")]).set(0.0005);
        let text = r.render();
        for line in [
            "g{v=\"inf\"} +Inf",
            "g{v=\"minf\"} -Inf",
            "g{v=\"nan\"} NaN",
            "g{v=\"small\"} 0.0005",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_count_is_the_inf_bucket() {
        let r = Registry::new();
        let h = r.histogram("h_seconds", "H.", &[("k", "v")]);
        for s in [0.0001, 0.0005, 0.003, 0.003, 0.7, 42.0] {
            h.observe(s);
        }
        h.observe(f64::NAN);
        let text = r.render();
        let value = |series: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
                .unwrap_or_else(|| panic!("{series} in {text}"))
                .parse()
                .unwrap()
        };
        let bucket = |le: &str| value(&format!("h_seconds_bucket{{k=\"v\",le=\"{le}\"}}"));
        assert_eq!(bucket("0.0005"), 2.0, "the bound is inclusive");
        assert_eq!(bucket("0.001"), 2.0);
        assert_eq!(bucket("0.005"), 4.0);
        assert_eq!(bucket("0.5"), 4.0);
        assert_eq!(bucket("1"), 5.0);
        assert_eq!(bucket("10"), 5.0);
        assert_eq!(bucket("+Inf"), 6.0);
        assert_eq!(value("h_seconds_count{k=\"v\"}"), 6.0);
        assert!((value("h_seconds_sum{k=\"v\"}") - 42.7066).abs() < 1e-9);
        // Every bucket, in order, no decrease.
        let counts: Vec<f64> = text
            .lines()
            .filter(|l| l.starts_with("h_seconds_bucket"))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(counts.len(), BUCKETS.len() + 1);
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    }

    #[test]
    fn misuse_is_not_recorded_and_does_not_panic() {
        let r = Registry::new();
        r.counter("x_total", "X.", &[]).inc();
        r.gauge("x_total", "X as a gauge.", &[]).set(5.0);
        r.counter("bad name", "B.", &[]).inc();
        r.counter("y_total", "Y.", &[("a", "1"), ("a", "2")]).inc();
        r.counter("y_total", "Y.", &[("__reserved", "1")]).inc();
        r.histogram("z_seconds", "Z.", &[("le", "1")]).observe(1.0);
        assert_eq!(
            r.render(),
            "# HELP x_total X.\n# TYPE x_total counter\nx_total 1\n"
        );
    }

    #[test]
    fn a_poisoned_lock_still_records_and_renders() {
        let r = Arc::new(Registry::new());
        let poisoner = r.clone();
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.lock();
            panic!("poison the registry's lock");
        })
        .join();
        assert!(r.inner.is_poisoned());
        r.counter("p_total", "P.", &[]).inc();
        assert!(r.render().contains("p_total 1\n"));
    }

    /// A line-by-line check of the exposition format: comments, names, labels, values, and that
    /// each family's samples follow its `# TYPE` line.
    fn check_well_formed(text: &str) {
        assert!(text.ends_with('\n'), "ends with a line feed");
        let mut family: Option<(String, String)> = None;
        let mut seen_families = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, _) = rest.split_once(' ').expect(line);
                assert!(valid_name(name, true), "{line}");
                assert!(
                    !seen_families.contains(&name.to_owned()),
                    "one block per family: {line}"
                );
                seen_families.push(name.to_owned());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect(line);
                assert_eq!(
                    Some(name),
                    seen_families.last().map(String::as_str),
                    "{line}"
                );
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                family = Some((name.to_owned(), kind.to_owned()));
                continue;
            }
            assert!(!line.starts_with('#'), "no other comments: {line}");
            let (name, kind) = family.clone().expect("a sample after its # TYPE line");
            // name{labels} value
            let metric_end = line.find(['{', ' ']).expect(line);
            let metric = &line[..metric_end];
            let mut rest = &line[metric_end..];
            match kind.as_str() {
                "histogram" => assert!(
                    ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| metric == format!("{name}{s}")),
                    "{line}"
                ),
                _ => assert_eq!(metric, name, "{line}"),
            }
            let mut label_names = Vec::new();
            if let Some(labels) = rest.strip_prefix('{') {
                let mut chars = labels.char_indices().peekable();
                loop {
                    let start = chars.peek().expect(line).0;
                    let eq = labels[start..].find('=').expect(line) + start;
                    let label = &labels[start..eq];
                    assert!(valid_name(label, false), "label {label:?}: {line}");
                    label_names.push(label.to_owned());
                    while chars.peek().is_some_and(|(i, _)| *i <= eq) {
                        chars.next();
                    }
                    assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                    // The value: escapes only \\, \" and \n; ends at an unescaped quote.
                    loop {
                        match chars.next().expect(line).1 {
                            '\\' => assert!(
                                matches!(chars.next().map(|(_, c)| c), Some('\\' | '"' | 'n')),
                                "{line}"
                            ),
                            '"' => break,
                            '\n' => panic!("raw newline: {line}"),
                            _ => {}
                        }
                    }
                    match chars.next().expect(line) {
                        (_, ',') => continue,
                        (i, '}') => {
                            rest = &labels[i + 1..];
                            break;
                        }
                        other => panic!("{other:?}: {line}"),
                    }
                }
            }
            if metric.ends_with("_bucket") {
                assert_eq!(label_names.last().map(String::as_str), Some("le"), "{line}");
            }
            let value = rest.strip_prefix(' ').expect(line);
            assert!(
                ["+Inf", "-Inf", "NaN"].contains(&value) || value.parse::<f64>().is_ok(),
                "value {value:?}: {line}"
            );
        }
    }

    #[test]
    fn rendered_output_is_well_formed() {
        let r = Registry::new();
        r.counter(
            "docket_commands_total",
            "Commands.",
            &[("command", "case.open"), ("outcome", "ok")],
        )
        .add(7);
        r.counter(
            "docket_commands_total",
            "Commands.",
            &[("command", "we\"ird\\\n"), ("outcome", "ok")],
        )
        .inc();
        r.gauge("docket_log_head", "Head.", &[]).set(12345.0);
        r.gauge("docket_consumer_lag", "Lag.", &[("consumer", "a,b}=c")])
            .set(f64::NAN);
        let h = r.histogram(
            "docket_command_duration_seconds",
            "Latency.",
            &[("command", "case.open")],
        );
        h.observe(0.002);
        h.observe(20.0);
        r.histogram("docket_append_duration_seconds", "Appends.", &[])
            .observe(0.0001);
        let text = r.render();
        check_well_formed(&text);
        assert_eq!(text.lines().filter(|l| l.starts_with("# TYPE")).count(), 5);
    }

    #[test]
    fn docket_metrics_render_well_formed() {
        command_done("case.open", "ok", Duration::from_millis(3));
        append_done("conflict", Duration::from_micros(700));
        reaction_done("review-deadlines", "error");
        reaction_position("notification").set(9.0);
        set_consumer_lag("dashboard", 4);
        set_log_head(13);
        let text = render();
        check_well_formed(&text);
        for name in [
            "docket_commands_total",
            "docket_command_duration_seconds",
            "docket_appends_total",
            "docket_append_duration_seconds",
            "docket_reactions_total",
            "docket_reaction_position",
            "docket_consumer_lag",
            "docket_log_head",
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} in {text}"
            );
        }
        assert!(text.contains("docket_consumer_lag{consumer=\"dashboard\"} 4\n"));
    }

    #[test]
    fn concurrent_updates_are_all_counted() {
        let r = Arc::new(Registry::new());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let r = r.clone();
                std::thread::spawn(move || {
                    let label = if t % 2 == 0 { "even" } else { "odd" };
                    for _ in 0..1000 {
                        r.counter("n_total", "N.", &[("parity", label)]).inc();
                        r.histogram("d_seconds", "D.", &[]).observe(0.01);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = r.render();
        assert!(text.contains("n_total{parity=\"even\"} 2000\n"), "{text}");
        assert!(text.contains("n_total{parity=\"odd\"} 2000\n"), "{text}");
        assert!(text.contains("d_seconds_count 4000\n"), "{text}");
    }
}
