//! Every example of `docs/api.md` ("Every command, by example") sent, as written, to the
//! services over a real nats-server, each reply checked against the document.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use docket_bus::{headers, Headers, NatsTransport, Transport};
use docket_domain::CommandKind;
use docket_log::jetstream::{JetStreamConfig, JetStreamLog};
use docket_runtime::clock::ManualClock;
use serde_json::Value;

use self::support::{check_reply, examples};

#[path = "../../../tests/support/api_examples.rs"]
mod support;

use crate::executor;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_example_gets_the_documented_reply() {
    let examples = examples();
    for kind in CommandKind::ALL {
        assert!(
            examples.iter().any(|e| e.command == kind.name()),
            "docs/api.md has no example of {kind}"
        );
    }
    let server = tokio::task::spawn_blocking(docket_testkit::NatsServer::start)
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2024, 3, 5, 15, 0, 0).unwrap(),
    ));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for service in docket_node::COMMAND_SERVICES {
        let client = docket_bus::connect(&server.url(), "api-examples")
            .await
            .unwrap();
        let log = JetStreamLog::connect_url(&server.url(), JetStreamConfig::default())
            .await
            .unwrap();
        let checkpoints =
            docket_log::AnyCheckpoints::Kv(Box::new(log.checkpoints().await.unwrap()));
        tasks.push(tokio::spawn(docket_node::run_nats(
            service,
            client,
            executor(log).await,
            checkpoints,
            None,
            crate::keys::verifier(),
            clock.clone(),
            stopped.clone(),
        )));
    }
    let client = docket_bus::connect(&server.url(), "api-examples-client")
        .await
        .unwrap();
    crate::wait_for_ping(&client).await;
    let transport = NatsTransport::new(client);
    for example in &examples {
        let kind = CommandKind::ALL
            .iter()
            .find(|k| k.name() == example.command)
            .unwrap();
        let headers = Headers::new()
            .with(headers::CONTENT_TYPE, "application/json")
            .with(headers::ACTOR, crate::keys::token(&example.actor));
        let raw = transport
            .request(
                &docket_bus::subject(*kind),
                headers,
                Bytes::from(example.body.clone()),
            )
            .await
            .unwrap();
        let reply: Value = serde_json::from_slice(&raw.body).unwrap();
        let failed = raw.headers.get(headers::STATUS) == Some(headers::STATUS_ERROR);
        check_reply(example, failed, &reply);
    }
    stop.send(true).unwrap();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
}
