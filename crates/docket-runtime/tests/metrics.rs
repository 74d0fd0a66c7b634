//! The metrics count real work: commands, refusals and appends through a real executor on a file
//! log, a reaction's effect, a checkpoint's position. Each test registers the runtime's families
//! into a registry of its own, as a node does, so its values are exact; two registries in one
//! process do not see each other's series. The exposition is the Prometheus text format (0.0.4)
//! `prometheus-client` writes, checked line by line for well-formedness.

use docket_runtime::metrics::{latency_histogram, BUCKETS};
use docket_runtime::Metrics;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::registry::Registry;

use super::*;

/// The registry in the text exposition format, as `/metrics` serves it.
fn render(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_text::encode(&mut text, registry).unwrap();
    text
}

/// The value of one series in `text` (`name{labels}` as rendered); 0 if absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

/// A fresh registry with the runtime's families, and an executor counting into them.
async fn counted_executor<L: EventLog + Clone + Send + Sync + 'static>(
    log: L,
) -> (Registry, Executor<L>) {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    (registry, executor(log).await.with_metrics(metrics))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_refusals_and_appends_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(FileLogConfig::new(dir.path())).await.unwrap();
    let (registry, ex) = counted_executor(log).await;
    let clerk = who(CLERK, Role::IntakeClerk);
    let before = render(&registry);
    let increase = |series: &str| value(&render(&registry), series) - value(&before, series);

    let mut cases = Vec::new();
    for _ in 0..3 {
        let case = CaseId(Uuid::new_v4());
        ex.execute::<Case>(&case.to_string(), &open(case), clerk, None, now())
            .await
            .unwrap();
        cases.push(case);
    }
    // Opening a case twice is refused by the domain.
    let again = ex
        .execute::<Case>(&cases[0].to_string(), &open(cases[0]), clerk, None, now())
        .await;
    assert!(matches!(again, Err(ExecError::Rejected(_))), "{again:?}");
    // A keyed retry is answered with the original: a command, but one append only.
    let case = CaseId(Uuid::new_v4());
    let key = Some(format!("metrics-{case}"));
    for _ in 0..2 {
        ex.execute::<Case>(&case.to_string(), &open(case), clerk, key.clone(), now())
            .await
            .unwrap();
    }

    let ok = r#"docket_commands_total{command="case.open",outcome="ok"}"#;
    let refused = r#"docket_commands_total{command="case.open",outcome="refused"}"#;
    let took = r#"docket_command_duration_seconds_count{command="case.open"}"#;
    let took_inf = r#"docket_command_duration_seconds_bucket{command="case.open",le="+Inf"}"#;
    let appended = r#"docket_appends_total{outcome="ok"}"#;
    let append_took = "docket_append_duration_seconds_count";
    let text = render(&registry);
    assert!(increase(ok) >= 5.0, "{text}");
    assert!(increase(refused) >= 1.0, "{text}");
    assert!(increase(took) >= 6.0, "{text}");
    assert!(increase(took_inf) >= 6.0, "{text}");
    assert!(increase(appended) >= 4.0, "{text}");
    assert!(increase(append_took) >= 4.0, "{text}");
    // Its own registry: the counts are exact.
    assert_eq!(value(&text, ok), 5.0, "{text}");
    assert_eq!(value(&text, refused), 1.0, "{text}");
    assert_eq!(value(&text, appended), 4.0, "{text}");
    assert!(text.contains("# TYPE docket_commands_total counter\n"));
    assert!(text.contains("# TYPE docket_command_duration_seconds histogram\n"));
    check_well_formed(&text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guidance_recomputation_and_the_checkpoint_position_are_counted() {
    use docket_runtime::clock::ManualClock;
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(FileLogConfig::new(dir.path())).await.unwrap();
    let (registry, ex) = counted_executor(log.clone()).await;
    staff(&ex).await;
    let (case, _) = decided_case(&ex).await;
    let before = render(&registry);
    let increase = |series: &str| value(&render(&registry), series) - value(&before, series);

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let checkpoints = docket_log::AnyCheckpoints::File(log.checkpoints().unwrap());
    let task = tokio::spawn(docket_runtime::run_guidance_reaction(
        ex.clone(),
        checkpoints,
        std::sync::Arc::new(ManualClock::new(now())),
        stopped,
    ));
    // A record attached after the assessment: the reaction recomputes the guidance.
    ex.execute::<Case>(
        &case.to_string(),
        &CaseCommand::AttachRecord {
            record: RecordId(Uuid::new_v4()),
            source: RecordSource::Administrative,
            reference: "A-file".into(),
            content_hash: ContentHash([9; 32]),
        },
        who(CLERK, Role::IntakeClerk),
        None,
        now(),
    )
    .await
    .unwrap();
    let recomputed = r#"docket_reactions_total{outcome="ok",reaction="assessment-guidance"}"#;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while increase(recomputed) < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no recomputation counted: {}",
            render(&registry)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        increase(r#"docket_commands_total{command="case.recompute_guidance",outcome="ok"}"#) >= 1.0
    );
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();

    // A checkpoint's gauge follows it.
    let store = docket_log::AnyCheckpoints::File(log.checkpoints().unwrap());
    let position = ex.metrics().reaction_position("metrics-test");
    let mut checkpoint = docket_runtime::Checkpoint::load(store, "metrics-test", position)
        .await
        .unwrap();
    checkpoint.advance(42).await.unwrap();
    checkpoint.advance(7).await.unwrap();
    assert_eq!(
        value(
            &render(&registry),
            r#"docket_reaction_position{consumer="metrics-test"}"#
        ),
        42.0
    );
}

/// Every family the runtime records is on `/metrics` before any work, its closed-set series at 0:
/// a dashboard query finds a zero rather than nothing.
#[test]
fn every_family_reads_zero_before_any_work() {
    let mut registry = Registry::default();
    let _metrics = Metrics::register(&mut registry);
    let text = render(&registry);
    check_well_formed(&text);
    for (kind, name) in [
        ("counter", "docket_commands_total"),
        ("histogram", "docket_command_duration_seconds"),
        ("counter", "docket_appends_total"),
        ("histogram", "docket_append_duration_seconds"),
        ("counter", "docket_reactions_total"),
        ("gauge", "docket_reaction_position"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "{name} in {text}"
        );
    }
    for series in [
        r#"docket_commands_total{command="case.open",outcome="ok"} 0"#,
        r#"docket_commands_total{command="review.record_deadline_missed",outcome="error"} 0"#,
        r#"docket_command_duration_seconds_count{command="officer.register"} 0"#,
        r#"docket_appends_total{outcome="conflict"} 0"#,
        "docket_append_duration_seconds_count 0",
        r#"docket_reactions_total{outcome="restarted",reaction="review-deadlines"} 0"#,
        r#"docket_reaction_position{consumer="assessment-guidance"} 0"#,
    ] {
        assert!(text.contains(&format!("{series}\n")), "{series} in {text}");
    }
}

/// Two systems in one process (two registries, as two nodes) count apart: the gauge and counters
/// one sets are not the other's.
#[test]
fn two_registries_do_not_see_each_others_series() {
    let (mut first, mut second) = (Registry::default(), Registry::default());
    let a = Metrics::register(&mut first);
    let b = Metrics::register(&mut second);
    a.reaction_position("notification").set(9);
    b.reaction_position("notification").set(4);
    b.reaction_position("only-b").set(1);
    let (first, second) = (render(&first), render(&second));
    let position = r#"docket_reaction_position{consumer="notification"}"#;
    assert_eq!(value(&first, position), 9.0, "{first}");
    assert_eq!(value(&second, position), 4.0, "{second}");
    assert!(!first.contains("only-b"), "{first}");
}

#[test]
fn histogram_buckets_are_cumulative_and_count_is_the_inf_bucket() {
    let mut registry = Registry::default();
    let h = latency_histogram();
    registry.register("h_seconds", "H", h.clone());
    for s in [0.0001, 0.0005, 0.003, 0.003, 0.7, 42.0] {
        h.observe(s);
    }
    let text = render(&registry);
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{series} in {text}"))
            .parse()
            .unwrap()
    };
    let bucket = |le: &str| value(&format!("h_seconds_bucket{{le=\"{le}\"}}"));
    assert_eq!(bucket("0.0005"), 2.0, "the bound is inclusive");
    assert_eq!(bucket("0.001"), 2.0);
    assert_eq!(bucket("0.005"), 4.0);
    assert_eq!(bucket("0.5"), 4.0);
    assert_eq!(bucket("1"), 5.0);
    assert_eq!(bucket("10"), 5.0);
    assert_eq!(bucket("+Inf"), 6.0);
    assert_eq!(value("h_seconds_count"), 6.0);
    assert!((value("h_seconds_sum") - 42.7066).abs() < 1e-9);
    // Every bucket, in order, no decrease.
    let counts: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("h_seconds_bucket"))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(counts.len(), BUCKETS.len() + 1);
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    check_well_formed(&text);
}

#[test]
fn label_values_and_help_are_escaped() {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    metrics.reaction_position("a\\b\"c\nd").set(-2);
    let gauge: prometheus_client::metrics::gauge::Gauge = Default::default();
    registry.register("g", "Back\\slash and\nnewline \"kept\"", gauge);
    let text = render(&registry);
    assert!(
        text.contains("docket_reaction_position{consumer=\"a\\\\b\\\"c\\nd\"} -2\n"),
        "{text}"
    );
    assert!(
        text.contains("# HELP g Back\\\\slash and\\nnewline \"kept\".\n# TYPE g gauge\ng 0\n"),
        "{text}"
    );
    check_well_formed(&text);
}

#[test]
fn concurrent_updates_are_all_counted() {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let position = metrics.reaction_position(if t % 2 == 0 { "even" } else { "odd" });
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    position.inc();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let text = render(&registry);
    assert!(
        text.contains("docket_reaction_position{consumer=\"even\"} 2000\n"),
        "{text}"
    );
    assert!(
        text.contains("docket_reaction_position{consumer=\"odd\"} 2000\n"),
        "{text}"
    );
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
