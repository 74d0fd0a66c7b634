//! Every example of `docs/api.md` ("Every command, by example") sent, as written, to the
//! services over a real nats-server, each reply checked against the document.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use docket_bus::{headers, Headers, NatsTransport, Transport};
use docket_domain::CommandKind;
use docket_log::jetstream::{JetStreamConfig, JetStreamLog};
use docket_service::clock::ManualClock;
use serde_json::Value;

use crate::executor;

/// One example: command, actor header, request body, and the expected reply (success or error code).
struct Example {
    command: String,
    actor: String,
    body: String,
    reply: Value,
    error: bool,
}

/// The fenced JSON block following `from` in `doc`, and where it ends.
fn next_json_block(doc: &str, from: usize) -> (String, usize) {
    let start = doc[from..]
        .find("```json\n")
        .map(|i| from + i + 8)
        .expect("a json block");
    let end = doc[start..]
        .find("\n```")
        .map(|i| start + i)
        .expect("a closed json block");
    (doc[start..end].to_owned(), end + 4)
}

fn examples() -> Vec<Example> {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md")).unwrap();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = doc[at..].find("<!-- example ") {
        let marker_start = at + i;
        let marker_end = marker_start + doc[marker_start..].find("-->").unwrap();
        let marker = doc[marker_start + 13..marker_end].trim();
        let (command, actor) = marker.split_once(" as ").expect("`<command> as <actor>`");
        let (body, after_body) = next_json_block(&doc, marker_end);
        let kind_marker = doc[after_body..]
            .find("<!-- ")
            .map(|j| after_body + j)
            .unwrap();
        let error = doc[kind_marker..].starts_with("<!-- error -->");
        assert!(
            error || doc[kind_marker..].starts_with("<!-- reply -->"),
            "after the example of {command}"
        );
        let (reply, next) = next_json_block(&doc, kind_marker);
        out.push(Example {
            command: command.to_owned(),
            actor: actor.to_owned(),
            body,
            reply: serde_json::from_str(&reply)
                .unwrap_or_else(|e| panic!("reply of {command}: {e}")),
            error,
        });
        at = next;
    }
    out
}

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
    for service in docket_services::COMMAND_SERVICES {
        let client = docket_bus::connect(&server.url(), "api-examples")
            .await
            .unwrap();
        let log = JetStreamLog::connect_url(&server.url(), JetStreamConfig::default())
            .await
            .unwrap();
        tasks.push(tokio::spawn(docket_services::run_nats(
            service,
            client,
            executor(log).await,
            clock.clone(),
            stopped.clone(),
        )));
    }
    let client = docket_bus::connect(&server.url(), "api-examples-client")
        .await
        .unwrap();
    for service in docket_services::COMMAND_SERVICES {
        let subject = format!("$SRV.PING.{}", service.micro_name());
        let mut tries = 0;
        while client.request(subject.clone(), "".into()).await.is_err() {
            tries += 1;
            assert!(tries < 100, "{service} never answered PING");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let transport = NatsTransport::new(client);
    for example in &examples {
        let kind = CommandKind::ALL
            .iter()
            .find(|k| k.name() == example.command)
            .unwrap();
        let headers = Headers::new()
            .with(headers::CONTENT_TYPE, "application/json")
            .with(headers::ACTOR, example.actor.clone());
        let raw = transport
            .request(
                &docket_bus::subject(*kind),
                headers,
                Bytes::from(example.body.clone()),
            )
            .await
            .unwrap();
        let reply: Value = serde_json::from_slice(&raw.body).unwrap();
        if example.error {
            assert_eq!(
                raw.headers.get(headers::STATUS),
                Some(headers::STATUS_ERROR),
                "{}: {reply}",
                example.command
            );
            assert_eq!(
                reply["code"], example.reply["code"],
                "{}: {reply}",
                example.command
            );
        } else {
            assert_eq!(reply, example.reply, "{} as documented", example.command);
        }
    }
    stop.send(true).unwrap();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
}
