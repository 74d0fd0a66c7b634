//! The one integration-test binary of `docket-notify`: the service against a real log (segment
//! files in a temporary directory, and JetStream on a real nats-server) and a real HTTP receiver
//! on 127.0.0.1 that checks signatures and can fail, be slow, or be down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use docket_domain::events::DomainEvent;
use docket_domain::review::{DeadlineKind, ReviewEvent};
use docket_domain::values::{CaseId, DecisionId, ReviewId, Role};
use docket_log::file::{FileLog, FileLogConfig};
use docket_log::jetstream::{JetStreamConfig, JetStreamLog};
use docket_log::EventLog;
use docket_notify::events::NotificationEvent;
use docket_notify::{notification_id, NotificationKind, NotifyConfig, NotifyError, Recipient};
use support::fixtures::{self, *};
use support::receiver::{down_url, Receiver, Reply};
use support::{check_stream, config, eventually, finished, recorded, start, SECRET};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);

async fn file_log(dir: &std::path::Path) -> FileLog {
    FileLog::open(FileLogConfig::new(dir)).await.unwrap()
}

/// The queued message of each notification.
async fn messages<L: EventLog>(log: &L) -> BTreeMap<Uuid, docket_notify::Message> {
    recorded(log)
        .await
        .into_iter()
        .map(|(id, events)| match &events[0] {
            NotificationEvent::Queued(q) => (id, q.message.clone()),
            other => panic!("{id} starts with {other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_resumes_from_its_checkpoint() {
    use docket_log::Checkpoints;
    let dir = tempfile::tempdir().unwrap();
    let log = file_log(dir.path()).await;
    let receiver = Receiver::start(SECRET).await;
    // A checkpoint past a request says: everything it causes is queued already. (Here it is
    // not, which shows that the service renders only what comes after its checkpoint.)
    let before = request_and_acknowledge(&log, 100).await;
    let store = log.checkpoints().unwrap();
    store
        .save(docket_notify::NOTIFY_CONSUMER, log.head().await.unwrap())
        .await
        .unwrap();
    let after = request_and_acknowledge(&log, 101).await;

    let service = start(log.clone(), config(&receiver.url()));
    eventually("the later two delivered", WAIT, || async {
        finished(&log).await == 2
    })
    .await;
    service.stop().await.unwrap();
    let streams = recorded(&log).await;
    assert_eq!(
        streams.keys().copied().collect::<HashSet<_>>(),
        after.iter().copied().collect(),
        "only what follows the checkpoint is notified, not {before:?}"
    );
    let saved = support::checkpoint(&log).await.unwrap();
    assert_eq!(
        saved,
        log.head().await.unwrap(),
        "the checkpoint moved to the head"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_signed_notifications_and_records_each_step() {
    let dir = tempfile::tempdir().unwrap();
    let log = file_log(dir.path()).await;
    let receiver = Receiver::start(SECRET).await;
    let [receipt, ack] = request_and_acknowledge(&log, 100).await;

    let service = start(log.clone(), config(&receiver.url()));
    eventually("two deliveries recorded", WAIT, || async {
        finished(&log).await == 2
    })
    .await;
    service.stop().await.unwrap();

    let hits = receiver.hits();
    assert_eq!(hits.len(), 2, "{hits:?}");
    for hit in &hits {
        assert!(hit.signature_ok, "valid signature: {hit:?}");
        assert_eq!(hit.content_type, "application/json");
        assert_eq!(hit.request_line, "POST /hooks/docket?token=abc HTTP/1.1");
        assert_eq!(
            hit.body["id"].as_str(),
            Some(hit.id.as_str()),
            "the header names the body's id"
        );
        assert_eq!(hit.body["to"]["person"], person(100).to_string());
        assert_eq!(hit.body["to"]["role"], "requester");
        assert!(hit.body["subject"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(hit.body["text"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(hit.body["review"].is_string() && hit.body["case"].is_string());
        assert!(hit.body["caused_by"]["position"].as_u64().unwrap() >= 1);
        assert!(hit.body["created_at"].is_string());
    }
    let by_id: BTreeMap<Uuid, _> = hits
        .iter()
        .map(|h| (Uuid::parse_str(&h.id).unwrap(), h.clone()))
        .collect();
    assert_eq!(by_id[&receipt].body["kind"], "review_received");
    assert_eq!(
        by_id[&receipt].body["caused_by"]["event_type"],
        "review.requested"
    );
    assert_eq!(by_id[&ack].body["kind"], "review_acknowledged");
    assert_eq!(
        by_id[&ack].body["caused_by"]["event_type"],
        "review.acknowledged"
    );

    let streams = recorded(&log).await;
    assert_eq!(
        streams.keys().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([receipt, ack])
    );
    for (id, events) in &streams {
        assert_eq!(events.len(), 2, "{events:?}");
        let NotificationEvent::Queued(q) = &events[0] else {
            unreachable!()
        };
        // What was POSTed is exactly the queued message.
        assert_eq!(by_id[id].raw, serde_json::to_vec(&q.message).unwrap());
        assert!(
            matches!(&events[1], NotificationEvent::Delivered(d) if d.attempt == 1 && d.status == 200),
            "{events:?}"
        );
    }
}

/// What one person is told.
type Told = (NotificationKind, Recipient);

/// Every event that concerns a person, and who hears of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_that_concerns_a_person_is_notified_to_them() {
    const REQ: u128 = 100;
    const REQ2: u128 = 101;
    const REQ3: u128 = 102;
    const REV: u128 = 200;
    const SRO: u128 = 300;
    const OFFICER: u128 = 400;
    const SUPERVISOR: u128 = 401;
    use NotificationKind as K;

    let dir = tempfile::tempdir().unwrap();
    let log = file_log(dir.path()).await;
    let receiver = Receiver::start(SECRET).await;
    let requester = |n| to(n, Role::Requester);
    let reviewer = to(REV, Role::FirstTierReviewer);
    let official = to(SRO, Role::SeniorReviewingOfficial);
    let officer = to(OFFICER, Role::Officer);

    // (stream, event, who is told what)
    let (r1, r2, r3) = (
        ReviewId(Uuid::new_v4()),
        ReviewId(Uuid::new_v4()),
        ReviewId(Uuid::new_v4()),
    );
    let (c1, c2) = (CaseId(Uuid::new_v4()), CaseId(Uuid::new_v4()));
    let (d1, d2, d3) = (
        DecisionId(Uuid::new_v4()),
        DecisionId(Uuid::new_v4()),
        DecisionId(Uuid::new_v4()),
    );
    let s = |r: ReviewId| review_stream(r);
    let c = |c: CaseId| format!("case/{c}");
    let mut with_language = fixtures::requested(r2, REQ2, c1);
    if let DomainEvent::Review(ReviewEvent::Requested(r)) = &mut with_language {
        r.preferred_language = Some("es".into());
    }
    let table: Vec<(String, DomainEvent, Vec<Told>)> = vec![
        (
            s(r1),
            fixtures::requested(r1, REQ, c1),
            vec![(K::ReviewReceived, requester(REQ))],
        ),
        (
            s(r1),
            acknowledged(),
            vec![(K::ReviewAcknowledged, requester(REQ))],
        ),
        (
            s(r1),
            reviewer_assigned(REV),
            vec![(K::ReviewAssigned, reviewer.clone())],
        ),
        (
            s(r1),
            prioritised(),
            vec![
                (K::ReviewPrioritised, requester(REQ)),
                (K::ReviewPrioritised, reviewer.clone()),
            ],
        ),
        (
            s(r1),
            information_requested(REV),
            vec![(K::InformationRequested, requester(REQ))],
        ),
        (
            s(r1),
            information_provided(REQ),
            vec![(K::InformationProvided, reviewer.clone())],
        ),
        (
            s(r1),
            deadline_missed(DeadlineKind::Tier1Decision),
            vec![
                (K::DeadlineMissed, requester(REQ)),
                (K::DeadlineMissed, reviewer.clone()),
            ],
        ),
        (
            s(r1),
            tier1_decided(REV),
            vec![(K::Tier1Decided, requester(REQ))],
        ),
        (
            s(r1),
            tier2_requested(REQ),
            vec![(K::Tier2Received, requester(REQ))],
        ),
        (
            s(r1),
            senior_official_assigned(SRO),
            vec![(K::ReviewAssigned, official.clone())],
        ),
        (
            s(r1),
            tier2_decided(SRO),
            vec![(K::Tier2Decided, requester(REQ))],
        ),
        (
            s(r2),
            with_language,
            vec![(
                K::ReviewReceived,
                Recipient {
                    language: Some("es".into()),
                    ..requester(REQ2)
                },
            )],
        ),
        (
            s(r2),
            deadline_missed(DeadlineKind::Acknowledge),
            vec![(
                K::DeadlineMissed,
                Recipient {
                    language: Some("es".into()),
                    ..requester(REQ2)
                },
            )],
        ),
        (
            s(r2),
            withdrawn(REQ2),
            vec![(
                K::ReviewWithdrawn,
                Recipient {
                    language: Some("es".into()),
                    ..requester(REQ2)
                },
            )],
        ),
        (
            s(r3),
            fixtures::requested(r3, REQ3, c2),
            vec![(K::ReviewReceived, requester(REQ3))],
        ),
        (
            s(r3),
            acknowledged(),
            vec![(K::ReviewAcknowledged, requester(REQ3))],
        ),
        (
            s(r3),
            reviewer_assigned(REV),
            vec![(K::ReviewAssigned, reviewer.clone())],
        ),
        (
            s(r3),
            withdrawn(REQ3),
            vec![
                (K::ReviewWithdrawn, requester(REQ3)),
                (K::ReviewWithdrawn, reviewer.clone()),
            ],
        ),
        (c(c1), proposed(d1, OFFICER), vec![]),
        (
            c(c1),
            returned(d1, SUPERVISOR),
            vec![(K::DecisionReturned, officer.clone())],
        ),
        (c(c1), proposed(d2, OFFICER), vec![]),
        (
            c(c1),
            approved(d2, SUPERVISOR),
            vec![(K::DecisionApproved, officer.clone())],
        ),
        (
            c(c1),
            recorded_decision(d2, OFFICER, Some(SUPERVISOR)),
            vec![(K::DepartureRecorded, officer.clone())],
        ),
        (c(c2), recorded_decision(d3, OFFICER, None), vec![]),
        (
            format!("officer/{}", person(OFFICER)),
            officer_registered(OFFICER),
            vec![],
        ),
    ];

    let mut expected = BTreeMap::new();
    for (stream, event, told) in &table {
        let event_id = append(&log, stream, event).await;
        for (kind, recipient) in told {
            expected.insert(
                notification_id(event_id, recipient),
                (*kind, recipient.clone(), event.name()),
            );
        }
    }

    let service = start(log.clone(), config(&receiver.url()));
    let total = expected.len();
    eventually("every notification delivered", WAIT, || async {
        finished(&log).await == total
    })
    .await;
    service.stop().await.unwrap();

    let queued = messages(&log).await;
    let got: BTreeMap<_, _> = queued
        .iter()
        .map(|(id, m)| (*id, (m.kind, m.to.clone(), m.caused_by.event_type.as_str())))
        .collect();
    assert_eq!(got, expected);
    for (id, m) in &queued {
        assert_eq!(*id, m.id);
        match m.kind {
            K::InformationRequested => assert!(m.text.contains("birth certificates"), "{}", m.text),
            K::InformationProvided => assert!(m.text.contains("three certificates"), "{}", m.text),
            K::DecisionReturned => {
                assert!(m.text.contains("mitigating factors"), "{}", m.text);
                assert_eq!(m.decision, Some(d1));
                assert_eq!(m.case, Some(c1));
            }
            K::Tier1Decided => assert!(
                m.text.contains("reversed") && m.text.contains("2024-04-14"),
                "{}",
                m.text
            ),
            K::ReviewPrioritised => assert!(m.text.contains("2024-03-10"), "{}", m.text),
            _ => {}
        }
        if m.review.is_some() {
            assert!(
                m.case.is_some(),
                "a review's notifications name its case: {m:?}"
            );
        }
    }
    // Delivered exactly as queued, each signed.
    let per_id = receiver.per_id();
    assert_eq!(per_id.len(), total);
    assert!(receiver.hits().iter().all(|h| h.signature_ok));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_attempt_is_retried_after_the_backoff_then_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let log = file_log(dir.path()).await;
    let receiver = Receiver::start(SECRET).await;
    receiver.behave(|_, earlier| {
        if earlier == 0 {
            Reply::Status(500)
        } else {
            Reply::Status(204)
        }
    });
    let [receipt, ack] = request_and_acknowledge(&log, 100).await;

    let service = start(
        log.clone(),
        NotifyConfig {
            initial_backoff: Duration::from_millis(300),
            max_backoff: Duration::from_secs(1),
            ..config(&receiver.url())
        },
    );
    eventually("two deliveries recorded", WAIT, || async {
        finished(&log).await == 2
    })
    .await;
    service.stop().await.unwrap();

    let per_id = receiver.per_id();
    for id in [receipt, ack] {
        let events = &recorded(&log).await[&id];
        assert_eq!(check_stream(id, events), (2, true));
        let NotificationEvent::AttemptFailed(failed) = &events[1] else {
            panic!("{events:?}")
        };
        assert_eq!((failed.attempt, failed.status), (1, Some(500)));
        assert!(failed.error.contains("500"), "{failed:?}");
        let next = failed.next_attempt_at.expect("a next attempt");
        assert_eq!(next - failed.at, chrono::Duration::milliseconds(300));
        let NotificationEvent::Delivered(delivered) = &events[2] else {
            panic!("{events:?}")
        };
        assert_eq!((delivered.attempt, delivered.status), (2, 204));
        assert!(
            delivered.at >= next,
            "not retried before the backoff: {events:?}"
        );

        let hits = &per_id[&id.to_string()];
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].raw, hits[1].raw, "a redelivery is the same body");
        assert!(hits.iter().all(|h| h.signature_ok));
        assert!(hits[1].received - hits[0].received >= Duration::from_millis(290));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_stays_down_gets_the_notification_abandoned_after_max_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let log = file_log(dir.path()).await;
    let [receipt, ack] = request_and_acknowledge(&log, 100).await;

    let service = start(
        log.clone(),
        NotifyConfig {
            max_attempts: 4,
            ..config(&down_url().await)
        },
    );
    eventually("both abandoned", WAIT, || async {
        finished(&log).await == 2
    })
    .await;
    service.stop().await.unwrap();

    for id in [receipt, ack] {
        let events = &recorded(&log).await[&id];
        assert_eq!(check_stream(id, events), (4, false), "{events:?}");
        let waits: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                NotificationEvent::AttemptFailed(f) => {
                    Some(f.next_attempt_at.map(|n| (n - f.at).num_milliseconds()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            waits,
            [Some(20), Some(40), Some(80), None],
            "exponential backoff, none after the last"
        );
        let NotificationEvent::Abandoned(abandoned) = events.last().unwrap() else {
            panic!("{events:?}")
        };
        assert_eq!(abandoned.attempts, 4);
        assert!(abandoned.last_error.contains("onnect"), "{abandoned:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_answer_holds_up_only_its_own_notification() {
    let dir = tempfile::tempdir().unwrap();
    let log = file_log(dir.path()).await;
    let receiver = Receiver::start(SECRET).await;
    // The first notification queued is slow to answer; many others follow it.
    let [slow, second] = request_and_acknowledge(&log, 100).await;
    let mut others = vec![second];
    for n in 0..8 {
        others.extend(request_and_acknowledge(&log, 1000 + n).await);
    }
    let slow_id = slow.to_string();
    receiver.behave(move |hit, earlier| {
        if hit.id == slow_id && earlier == 0 {
            Reply::Slow(Duration::from_secs(3), 200)
        } else {
            Reply::Slow(Duration::from_millis(20), 200)
        }
    });

    let service = start(
        log.clone(),
        NotifyConfig {
            concurrency: 3,
            request_timeout: Duration::from_millis(1500),
            ..config(&receiver.url())
        },
    );
    let total = others.len() + 1;
    eventually("everything delivered", WAIT, || async {
        finished(&log).await == total
    })
    .await;
    service.stop().await.unwrap();

    let streams = recorded(&log).await;
    let slow_events = &streams[&slow];
    assert_eq!(check_stream(slow, slow_events), (2, true));
    let NotificationEvent::AttemptFailed(timed_out) = &slow_events[1] else {
        panic!("{slow_events:?}")
    };
    assert!(
        timed_out.error.contains("no answer within"),
        "{timed_out:?}"
    );
    assert_eq!(timed_out.status, None);
    // Every other notification was delivered while the slow attempt still held its slot.
    for id in &others {
        let events = &streams[id];
        assert_eq!(check_stream(*id, events), (1, true));
        let NotificationEvent::Delivered(d) = events.last().unwrap() else {
            unreachable!()
        };
        assert!(
            d.at < timed_out.at,
            "{id} delivered at {} before the slow attempt ended at {}",
            d.at,
            timed_out.at
        );
    }
    // Never more than the bound at once.
    let hits = receiver.hits();
    for h in &hits {
        let concurrent = hits
            .iter()
            .filter(|o| {
                o.received <= h.received && o.answered.is_none_or(|(_, at)| at > h.received)
            })
            .count();
        assert!(concurrent <= 3, "{concurrent} requests at once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_takes_no_new_work_and_records_the_attempts_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let log = file_log(dir.path()).await;
    let receiver = Receiver::start(SECRET).await;
    receiver.behave(|_, _| Reply::Slow(Duration::from_millis(800), 200));
    let review = ReviewId(Uuid::new_v4());
    let first = append(
        &log,
        &review_stream(review),
        &fixtures::requested(review, 100, CaseId(Uuid::new_v4())),
    )
    .await;

    let service = start(log.clone(), config(&receiver.url()));
    eventually("the attempt is in flight", WAIT, || async {
        !receiver.hits().is_empty()
    })
    .await;
    service.signal();
    let late = append(&log, &review_stream(review), &acknowledged()).await;
    let stopped = tokio::time::Instant::now();
    service.join().await.unwrap();
    assert!(
        stopped.elapsed() >= Duration::from_millis(300),
        "it waited for the answer"
    );

    let streams = recorded(&log).await;
    let id = notification_id(first, &to(100, Role::Requester));
    assert_eq!(
        streams.keys().collect::<Vec<_>>(),
        [&id],
        "nothing new queued after the signal"
    );
    assert_eq!(
        check_stream(id, &streams[&id]),
        (1, true),
        "the attempt in flight was recorded"
    );

    // The next run picks up what the stopped one did not take.
    receiver.behave(|_, _| Reply::Status(200));
    let service = start(log.clone(), config(&receiver.url()));
    eventually("the late one delivered", WAIT, || async {
        finished(&log).await == 2
    })
    .await;
    service.stop().await.unwrap();
    let late_id = notification_id(late, &to(100, Role::Requester));
    assert_eq!(
        check_stream(late_id, &recorded(&log).await[&late_id]),
        (1, true)
    );
    assert_eq!(
        receiver.per_id()[&id.to_string()].len(),
        1,
        "not sent again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_and_restarted_service_neither_repeats_nor_loses_anything() {
    let dir = tempfile::tempdir().unwrap();
    let log = file_log(dir.path()).await;
    let receiver = Receiver::start(SECRET).await;
    // Every first attempt fails, so the stop lands between attempts.
    receiver.behave(|_, earlier| {
        if earlier == 0 {
            Reply::Status(503)
        } else {
            Reply::Status(200)
        }
    });
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.extend(request_and_acknowledge(&log, 100 + n).await);
    }
    let slow = NotifyConfig {
        initial_backoff: Duration::from_millis(500),
        max_backoff: Duration::from_secs(1),
        ..config(&receiver.url())
    };
    let service = start(log.clone(), slow.clone());
    eventually("every first attempt recorded", WAIT, || async {
        recorded(&log)
            .await
            .values()
            .filter(|e| e.len() == 2)
            .count()
            == ids.len()
    })
    .await;
    service.stop().await.unwrap();
    assert_eq!(finished(&log).await, 0);

    // A new process: the log reopened, and more events while the service was down.
    log.close().await.unwrap();
    let log = file_log(dir.path()).await;
    for n in 0..3 {
        ids.extend(request_and_acknowledge(&log, 200 + n).await);
    }
    let service = start(log.clone(), slow);
    eventually("everything delivered", WAIT, || async {
        finished(&log).await == ids.len()
    })
    .await;
    service.stop().await.unwrap();

    let streams = recorded(&log).await;
    assert_eq!(
        streams.keys().copied().collect::<HashSet<_>>(),
        ids.iter().copied().collect()
    );
    let per_id = receiver.per_id();
    for id in &ids {
        let (attempts, delivered) = check_stream(*id, &streams[id]);
        assert!(delivered);
        assert_eq!(attempts, 2);
        // A graceful stop records every attempt it made: nothing is POSTed twice.
        assert_eq!(per_id[&id.to_string()].len(), 2, "{id}");
    }
}

/// Kills the service (its task aborted mid-attempt) again and again while events keep coming
/// and the webhook keeps failing; in the end every notification is queued once and delivered
/// once in the log.
async fn killed_and_restarted<L, F, Fut>(log: L, reopen: F, rounds: usize)
where
    L: support::TestLog,
    F: Fn(L) -> Fut,
    Fut: std::future::Future<Output = L>,
{
    let receiver = Receiver::start(SECRET).await;
    receiver.behave(|hit, earlier| {
        // A deterministic mix of failures, slow answers and hang-ups, ending in success.
        let seed = hit.raw.iter().map(|&b| usize::from(b)).sum::<usize>() + earlier;
        match (earlier, seed % 4) {
            (0, 0) => Reply::Status(500),
            (0, 1) => Reply::HangUp,
            (0..=1, 2) => Reply::Slow(Duration::from_millis(150), 200),
            _ => Reply::Slow(Duration::from_millis(5), 200),
        }
    });
    let config = NotifyConfig {
        concurrency: 4,
        ..config(&receiver.url())
    };
    let mut log = log;
    let mut ids = Vec::new();
    for round in 0..rounds {
        for n in 0..4 {
            ids.extend(request_and_acknowledge(&log, (round * 10 + n) as u128 + 100).await);
        }
        let service = start(log.clone(), config.clone());
        tokio::time::sleep(Duration::from_millis(40 + 37 * (round as u64 % 5))).await;
        service.kill().await;
        log = reopen(log).await;
    }
    let last_request = log.head().await.unwrap();
    let service = start(log.clone(), config);
    eventually("everything delivered", WAIT, || async {
        finished(&log).await == ids.len()
    })
    .await;
    service.stop().await.unwrap();
    // A clean stop saves the checkpoint: every commit read so far has caused what it causes.
    let head = log.head().await.unwrap();
    let saved = support::checkpoint(&log)
        .await
        .expect("a checkpoint was saved");
    assert!(
        saved <= head && saved >= last_request,
        "checkpoint {saved} covers the last request at {last_request} (head {head})"
    );

    let streams = recorded(&log).await;
    assert_eq!(
        streams.keys().copied().collect::<HashSet<_>>(),
        ids.iter().copied().collect(),
        "none lost, none extra"
    );
    let per_id = receiver.per_id();
    for id in &ids {
        let (attempts, delivered) = check_stream(*id, &streams[id]);
        assert!(delivered, "{id}");
        // At least once: an attempt whose outcome was not recorded may have been POSTed again.
        let posts = per_id[&id.to_string()].len();
        assert!(
            posts >= attempts as usize,
            "{id}: {posts} posts, {attempts} attempts"
        );
        assert!(per_id[&id.to_string()].iter().all(|h| h.signature_ok));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_service_neither_loses_nor_records_twice_on_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let log = file_log(&path).await;
    killed_and_restarted(
        log,
        |old: FileLog| {
            let path = path.clone();
            async move {
                old.close().await.unwrap();
                file_log(&path).await
            }
        },
        6,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_service_neither_loses_nor_records_twice_on_jetstream() {
    let server = tokio::task::spawn_blocking(docket_testkit::NatsServer::start)
        .await
        .unwrap();
    let url = server.url();
    let connect = |url: String| async move {
        JetStreamLog::connect_url(&url, JetStreamConfig::default())
            .await
            .unwrap()
    };
    let log = connect(url.clone()).await;
    // Each round connects anew, as a restarted process would.
    killed_and_restarted(log, |_old| connect(url.clone()), 4).await;
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = file_log(dir.path()).await;
    for bad in [
        NotifyConfig {
            max_attempts: 0,
            ..config("http://127.0.0.1:9/")
        },
        NotifyConfig::new("not a url", SECRET),
        NotifyConfig::new("http://127.0.0.1:9/", ""),
    ] {
        let shown = format!("{bad:?}");
        let result = start(log.clone(), bad).join().await;
        assert!(
            matches!(result, Err(NotifyError::Config { .. })),
            "{shown}: {result:?}"
        );
    }
}

/// `docs/api.md` documents the webhook: every kind and event type, and an example body that reads
/// as a message.
#[test]
fn the_api_doc_describes_the_webhook_contract() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md")).unwrap();
    let section = &doc[doc
        .find("## Notifications (webhook)")
        .expect("a webhook section")..];
    for kind in NotificationKind::ALL {
        assert!(
            section.contains(&format!("`{}`", kind.code())),
            "{}",
            kind.code()
        );
    }
    for (name, version) in NotificationEvent::TYPES {
        assert!(section.contains(&format!("`{name}` v{version}")), "{name}");
    }
    for header in [docket_notify::SIGNATURE_HEADER, docket_notify::ID_HEADER] {
        assert!(section.contains(header), "{header}");
    }
    assert!(section.contains(&docket_notify::NOTIFICATION_NAMESPACE.to_string()));
    let start = section.find("```json\n").unwrap() + 8;
    let end = start + section[start..].find("\n```").unwrap();
    let example: serde_json::Value = serde_json::from_str(&section[start..end]).unwrap();
    let message: docket_notify::Message = serde_json::from_value(example.clone()).unwrap();
    assert_eq!(serde_json::to_value(&message).unwrap(), example);
}
