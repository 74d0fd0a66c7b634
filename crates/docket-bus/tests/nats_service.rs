//! What only the NATS transport has: registration with the micro service API (`$SRV.PING`,
//! `$SRV.INFO`, `$SRV.STATS`), load sharing in the queue group, and graceful stop.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use docket_bus::catalogue::endpoint_name;
use docket_bus::{codes, serve_nats, Client, ContentType, DomainCommand, NatsTransport, Service};
use docket_domain::case::CaseCommand;
use docket_domain::Role;
use serde_json::Value;

use crate::samples;
use crate::suite::{start_nats_server, Echo};

async fn request_json(client: &async_nats::Client, subject: &str) -> Value {
    let reply = client
        .request(subject.to_owned(), "".into())
        .await
        .unwrap_or_else(|e| panic!("{subject}: {e}"));
    serde_json::from_slice(&reply.payload).unwrap()
}

#[tokio::test]
async fn every_service_answers_ping_info_and_stats_with_its_endpoints() {
    let (_server, client) = start_nats_server().await;
    let mut handles = Vec::new();
    for service in Service::ALL {
        handles.push(
            serve_nats(client.clone(), *service, "1.2.3", Echo::new("nats"))
                .await
                .unwrap(),
        );
    }
    for (service, handle) in Service::ALL.iter().zip(&handles) {
        let name = service.micro_name();
        let ping = request_json(&client, &format!("$SRV.PING.{name}")).await;
        assert_eq!(ping["name"], name.as_str());
        assert_eq!(ping["version"], "1.2.3");
        assert_eq!(ping["id"], handle.id());

        let info = request_json(&client, &format!("$SRV.INFO.{name}")).await;
        assert_eq!(info["name"], name.as_str());
        let mut endpoints: BTreeMap<String, (String, String, String)> = BTreeMap::new();
        for e in info["endpoints"].as_array().unwrap() {
            endpoints.insert(
                e["name"].as_str().unwrap().to_owned(),
                (
                    e["subject"].as_str().unwrap().to_owned(),
                    e["queue_group"].as_str().unwrap().to_owned(),
                    // A command endpoint names its command; a query endpoint its query.
                    e["metadata"]["command"]
                        .as_str()
                        .or_else(|| e["metadata"]["query"].as_str())
                        .unwrap()
                        .to_owned(),
                ),
            );
        }
        let mut expected: BTreeMap<String, (String, String, String)> = service
            .commands()
            .map(|k| {
                (
                    endpoint_name(k),
                    (
                        docket_bus::subject(k),
                        service.queue_group(),
                        k.name().to_owned(),
                    ),
                )
            })
            .collect();
        for q in service.queries() {
            expected.insert(
                q.name().to_owned(),
                (q.subject(), service.queue_group(), q.name().to_owned()),
            );
        }
        assert_eq!(endpoints, expected, "{service}");
    }
    // $SRV.PING without a name reaches every service.
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await.unwrap();
    client
        .publish_with_reply("$SRV.PING", inbox, "".into())
        .await
        .unwrap();
    let mut names = Vec::new();
    for _ in Service::ALL {
        let msg = tokio::time::timeout(
            Duration::from_secs(3),
            futures_util::StreamExt::next(&mut replies),
        )
        .await
        .unwrap()
        .unwrap();
        let pong: Value = serde_json::from_slice(&msg.payload).unwrap();
        names.push(pong["name"].as_str().unwrap().to_owned());
    }
    names.sort();
    assert_eq!(
        names,
        [
            "docket-assessment",
            "docket-audit",
            "docket-intake",
            "docket-notification",
            "docket-review"
        ]
    );

    // STATS counts requests, and Docket's error replies in each endpoint's data.
    let transport = NatsTransport::new(client.clone());
    let docket = Client::new(&transport, samples::issuer());
    let actor = samples::actor(Role::Officer);
    docket
        .send(&actor, &samples::open_case(), ContentType::Json, None)
        .await
        .unwrap();
    let bad = docket_bus::Headers::new().with("Docket-Actor", "nobody");
    let reply = docket_bus::Transport::request(
        &transport,
        &docket_bus::subject(docket_domain::CommandKind::CaseOpen),
        bad,
        "{}".into(),
    )
    .await
    .unwrap();
    assert_eq!(reply.into_result().unwrap_err().code, codes::BAD_ACTOR);
    let stats = request_json(&client, "$SRV.STATS.docket-intake").await;
    let open = stats["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "case_open")
        .unwrap();
    assert_eq!(open["num_requests"], 2, "{open}");
    assert_eq!(open["data"]["docket_errors"], 1, "{open}");

    for handle in handles {
        handle.stop().await.unwrap();
    }
}

#[tokio::test]
async fn instances_in_the_queue_group_share_the_load() {
    let (_server, client) = start_nats_server().await;
    let a = serve_nats(client.clone(), Service::Intake, "0.1.0", Echo::new("a"))
        .await
        .unwrap();
    let b = serve_nats(client.clone(), Service::Intake, "0.1.0", Echo::new("b"))
        .await
        .unwrap();
    let transport = NatsTransport::new(client.clone());
    let docket = Client::new(&transport, samples::issuer());
    let actor = samples::actor(Role::Officer);
    let mut served = BTreeMap::<String, usize>::new();
    for _ in 0..60 {
        let reply = docket
            .send(&actor, &samples::open_case(), ContentType::Postcard, None)
            .await
            .unwrap();
        *served.entry(reply.events[6].clone()).or_default() += 1;
    }
    assert_eq!(served.values().sum::<usize>(), 60);
    assert!(served.get("a").is_some_and(|n| *n > 0), "{served:?}");
    assert!(served.get("b").is_some_and(|n| *n > 0), "{served:?}");

    // With one instance stopped, the other takes every request.
    a.stop().await.unwrap();
    for _ in 0..10 {
        let reply = docket
            .send(&actor, &samples::open_case(), ContentType::Json, None)
            .await
            .unwrap();
        assert_eq!(reply.events[6], "b");
    }
    b.stop().await.unwrap();
}

#[tokio::test]
async fn stop_waits_for_requests_in_flight() {
    let (_server, client) = start_nats_server().await;
    let echo = Echo::new("slow");
    let finished = echo.finished_slow.clone();
    let handle = serve_nats(client.clone(), Service::Assessment, "0.1.0", echo)
        .await
        .unwrap();
    let transport = NatsTransport::new(client.clone());
    let slow = DomainCommand::case(
        samples::case_id(),
        CaseCommand::Close {
            reason: "slow".to_owned(),
        },
    );
    let in_flight = tokio::spawn({
        let transport = transport.clone();
        async move {
            Client::new(&transport, samples::issuer())
                .send(
                    &samples::actor(Role::Supervisor),
                    &slow,
                    ContentType::Json,
                    None,
                )
                .await
        }
    });
    // Let the request reach the handler, then stop while it sleeps.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(!finished.load(Ordering::SeqCst));
    handle.stop().await.unwrap();
    assert!(
        finished.load(Ordering::SeqCst),
        "stop returned before the request in flight was answered"
    );
    let reply = in_flight.await.unwrap().unwrap();
    assert_eq!(reply.events[0], "case.close");

    // Stopped: nobody answers any more, and the client says so at once.
    let err = Client::new(&transport, samples::issuer())
        .send(
            &samples::actor(Role::Supervisor),
            &DomainCommand::case(
                samples::case_id(),
                CaseCommand::Close {
                    reason: "done".to_owned(),
                },
            ),
            ContentType::Json,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, codes::UNAVAILABLE);
    let info = client
        .request("$SRV.PING.docket-assessment", "".into())
        .await;
    assert!(info.is_err(), "a stopped service no longer answers PING");
}

#[tokio::test]
async fn an_unanswered_request_times_out_as_unavailable() {
    let (_server, client) = start_nats_server().await;
    // Something subscribed to the subject that never answers.
    let _silent = client
        .subscribe(docket_bus::subject(docket_domain::CommandKind::CaseOpen))
        .await
        .unwrap();
    client.flush().await.unwrap();
    let transport = NatsTransport::new(client.clone()).with_timeout(Duration::from_millis(200));
    let err = Client::new(&transport, samples::issuer())
        .send(
            &samples::actor(Role::Officer),
            &samples::open_case(),
            ContentType::Json,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, codes::UNAVAILABLE);
    assert_eq!(err.details["reason"], "timed_out");
}
