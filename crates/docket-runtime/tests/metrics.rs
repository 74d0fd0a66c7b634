//! The metrics count real work: commands, refusals and appends through a real executor on a file
//! log, a reaction's effect, a checkpoint's position. The registry is global and other tests run
//! beside these, so series are compared before and after, as "increased by at least".

use docket_runtime::metrics;

use super::*;

/// The value of one series in `text` (`name{labels}` as rendered: labels sorted by name); 0 if
/// absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

/// How much `series` grew from `before` to now.
fn increase(before: &str, series: &str) -> f64 {
    value(&metrics::render(), series) - value(before, series)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_refusals_and_appends_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(FileLogConfig::new(dir.path())).await.unwrap();
    let ex = executor(log).await;
    let clerk = who(CLERK, Role::IntakeClerk);
    let before = metrics::render();

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
    assert!(increase(&before, ok) >= 5.0, "{}", metrics::render());
    assert!(increase(&before, refused) >= 1.0, "{}", metrics::render());
    assert!(increase(&before, took) >= 6.0, "{}", metrics::render());
    assert!(increase(&before, took_inf) >= 6.0, "{}", metrics::render());
    assert!(increase(&before, appended) >= 4.0, "{}", metrics::render());
    assert!(
        increase(&before, append_took) >= 4.0,
        "{}",
        metrics::render()
    );
    let text = metrics::render();
    assert!(text.contains("# TYPE docket_commands_total counter\n"));
    assert!(text.contains("# TYPE docket_command_duration_seconds histogram\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guidance_recomputation_and_the_checkpoint_position_are_counted() {
    use docket_runtime::clock::ManualClock;
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(FileLogConfig::new(dir.path())).await.unwrap();
    let ex = executor(log.clone()).await;
    staff(&ex).await;
    let (case, _) = decided_case(&ex).await;
    let before = metrics::render();

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
    while increase(&before, recomputed) < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no recomputation counted: {}",
            metrics::render()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        increase(
            &before,
            r#"docket_commands_total{command="case.recompute_guidance",outcome="ok"}"#
        ) >= 1.0
    );
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();

    // A checkpoint's gauge follows it (a consumer name of this test's own: an exact value).
    let store = docket_log::AnyCheckpoints::File(log.checkpoints().unwrap());
    let mut checkpoint = docket_runtime::Checkpoint::load(store, "metrics-test")
        .await
        .unwrap();
    checkpoint.advance(42).await.unwrap();
    checkpoint.advance(7).await.unwrap();
    assert_eq!(
        value(
            &metrics::render(),
            r#"docket_reaction_position{consumer="metrics-test"}"#
        ),
        42.0
    );
}
