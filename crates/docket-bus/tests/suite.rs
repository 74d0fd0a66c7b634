//! One transport suite, run against NATS (a real nats-server) and against the in-process bus:
//! the same requests must get the same answers, byte for byte in their structure.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use docket_bus::actor::actor_claim;
use docket_bus::headers as h;
use docket_bus::token::TokenVerifier;
use docket_bus::{
    codes, encode_command, serve_nats, AuditAnswer, AuditQuery, BusError, BusRequest,
    CheckpointAnswer, CheckpointRequest, Client, CommandReply, ContentType, DomainCommand, Handler,
    Headers, InclusionAnswer, InclusionRequest, LocalBus, NatsTransport, QueryKind, QueryRequest,
    RawReply, Receipt, ReceiptRequest, Service, ServiceHandle, Transport,
};
use docket_domain::case::CaseCommand;
use docket_domain::{CommandKind, Rejection, Role};
use docket_testkit::NatsServer;
use serde_json::{json, Value};

use crate::samples;

/// The toy service: echoes what the transport decoded. The reason of `case.close` steers it:
/// `panic`, `reject` (a rule code), `forbidden`, `slow` (500 ms).
#[derive(Debug, Default)]
pub struct Echo {
    pub tag: &'static str,
    pub finished_slow: Arc<AtomicBool>,
}

impl Echo {
    pub fn new(tag: &'static str) -> Self {
        Echo {
            tag,
            finished_slow: Arc::default(),
        }
    }
}

impl Handler for Echo {
    fn actors(&self) -> &TokenVerifier {
        samples::verifier()
    }

    async fn handle(&self, req: BusRequest) -> Result<CommandReply, BusError> {
        if let DomainCommand::Case {
            command: CaseCommand::Close { reason },
            ..
        } = &req.command
        {
            match reason.as_str() {
                "panic" => panic!("the toy handler was told to panic"),
                "reject" => return Err(Rejection::rule("case_closed", "the case is closed").into()),
                "forbidden" => {
                    return Err(Rejection::Forbidden {
                        role: req.actor.role,
                        command: req.kind,
                    }
                    .into())
                }
                "slow" => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    self.finished_slow.store(true, Ordering::SeqCst);
                }
                _ => {}
            }
        }
        Ok(CommandReply {
            position: 7,
            revision: 3,
            events: vec![
                req.kind.name().to_owned(),
                actor_claim(&req.actor),
                req.command.stream(),
                format!("{:?}", req.command),
                req.idempotency_key.clone().unwrap_or_default(),
                req.content_type.as_str().to_owned(),
                self.tag.to_owned(),
            ],
            receipt: None,
            duplicate: req.idempotency_key.is_some(),
        })
    }

    /// Queries: a checkpoint whose note names the asker and the transport; an inclusion proof
    /// for position 666 panics, for 0 is refused; a receipt echoes its commit hash.
    async fn query(&self, req: QueryRequest) -> Result<AuditAnswer, BusError> {
        Ok(match req.query {
            AuditQuery::Checkpoint(q) => AuditAnswer::Checkpoint(CheckpointAnswer {
                note: format!(
                    "{} {:?} {}",
                    req.actor.as_ref().map(actor_claim).unwrap_or_default(),
                    q.covering,
                    self.tag
                ),
                size: 9,
                ..CheckpointAnswer::default()
            }),
            AuditQuery::InclusionProof(q) => match q.position {
                666 => panic!("the toy handler was told to panic"),
                0 => return Err(BusError::bad_request("position 0".to_owned())),
                _ => AuditAnswer::InclusionProof(InclusionAnswer {
                    position: q.position,
                    size: q.size,
                    ..InclusionAnswer::default()
                }),
            },
            // The wrong answer on purpose: the transport must not pass it on.
            AuditQuery::ConsistencyProof(_) => AuditAnswer::Receipt(Receipt::default()),
            AuditQuery::Receipt(q) => AuditAnswer::Receipt(Receipt {
                position: q.position,
                commit_hash: q.commit_hash.unwrap_or_default(),
                ..Receipt::default()
            }),
        })
    }
}

/// A transport with all four services running behind it.
pub trait Harness: Sized {
    type T: Transport;
    async fn start() -> Self;
    fn transport(&self) -> &Self::T;
    /// Stops one service, so that its commands have no responder.
    async fn stop(&mut self, service: Service);
}

pub struct Nats {
    _server: NatsServer,
    transport: NatsTransport,
    handles: Vec<ServiceHandle>,
}

pub async fn start_nats_server() -> (NatsServer, async_nats::Client) {
    let server = tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap();
    let client = async_nats::connect(server.url()).await.unwrap();
    (server, client)
}

impl Harness for Nats {
    type T = NatsTransport;

    async fn start() -> Self {
        let (server, client) = start_nats_server().await;
        let mut handles = Vec::new();
        for service in Service::ALL {
            handles.push(
                serve_nats(client.clone(), *service, "0.1.0", Echo::new("nats"))
                    .await
                    .unwrap(),
            );
        }
        Nats {
            _server: server,
            transport: NatsTransport::new(client).with_timeout(Duration::from_secs(3)),
            handles,
        }
    }

    fn transport(&self) -> &NatsTransport {
        &self.transport
    }

    async fn stop(&mut self, service: Service) {
        let i = self
            .handles
            .iter()
            .position(|s| s.service() == service)
            .unwrap();
        self.handles.remove(i).stop().await.unwrap();
    }
}

pub struct Local {
    bus: LocalBus,
}

impl Harness for Local {
    type T = LocalBus;

    async fn start() -> Self {
        let bus = LocalBus::new();
        for service in Service::ALL {
            bus.register(*service, Echo::new("local"));
        }
        Local { bus }
    }

    fn transport(&self) -> &LocalBus {
        &self.bus
    }

    async fn stop(&mut self, service: Service) {
        assert!(self.bus.unregister(service));
    }
}

macro_rules! instantiate {
    ($harness:ty: $($test:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                super::$test::<$harness>().await
            }
        )+
    };
}

macro_rules! transport_suite {
    ($($module:ident => $harness:ty),+ $(,)?) => {
        $(
            mod $module {
                instantiate!($harness:
                    every_command_round_trips_in_json_and_postcard,
                    json_is_the_default_and_replies_mirror_the_content_type,
                    malformed_json_bodies_are_bad_requests,
                    malformed_postcard_bodies_are_bad_requests,
                    oversized_bodies_are_too_large,
                    unknown_content_types_are_refused_in_json,
                    the_actor_is_required_and_checked,
                    idempotency_keys_are_checked_and_passed_on,
                    unknown_subjects_are_unknown_commands,
                    handler_errors_become_structured_replies,
                    a_panicking_handler_is_an_internal_error,
                    a_stopped_service_is_unavailable,
                    concurrent_requests_are_all_answered,
                    audit_queries_take_the_command_path,
                );
            }
        )+
    };
}

transport_suite! {
    over_nats => super::Nats,
    in_process => super::Local,
}

// ---- helpers ----

const ACTOR: &str = "8c0f4f4e-2a6b-4c1e-9d52-0b4f5e2a0065/officer";

fn headers(content_type: Option<&str>, actor: Option<&str>) -> Headers {
    let mut headers = Headers::new();
    if let Some(ct) = content_type {
        headers.insert(h::CONTENT_TYPE, ct);
    }
    if let Some(actor) = actor {
        // A valid `<person>/<role>` claim goes as a signed token; anything else as it is.
        match docket_bus::actor::parse_claim(actor) {
            Ok(a) => headers.insert(h::ACTOR, samples::issuer().for_request(&a)),
            Err(_) => headers.insert(h::ACTOR, actor),
        }
    }
    headers
}

fn json_body(command: &DomainCommand) -> Value {
    let (_, body) = encode_command(command, ContentType::Json).unwrap();
    serde_json::from_slice(&body).unwrap()
}

async fn raw<H: Harness>(
    harness: &H,
    kind: CommandKind,
    headers: Headers,
    body: impl Into<Bytes>,
) -> RawReply {
    harness
        .transport()
        .request(&docket_bus::subject(kind), headers, body.into())
        .await
        .unwrap()
}

/// Sends a request that must fail with `code`; checks the error reply's form; returns the error.
async fn expect_error<H: Harness>(
    harness: &H,
    kind: CommandKind,
    headers: Headers,
    body: impl Into<Bytes>,
    code: &str,
) -> BusError {
    let reply = raw(harness, kind, headers.clone(), body).await;
    assert_eq!(reply.headers.get(h::STATUS), Some("error"), "{reply:?}");
    let err = reply.clone().into_result().unwrap_err();
    assert_eq!(err.code, code, "{err:?}");
    assert_eq!(
        reply.headers.get(h::NATS_SERVICE_ERROR),
        Some(err.message.as_str())
    );
    assert_eq!(
        reply.headers.get(h::NATS_SERVICE_ERROR_CODE),
        Some(err.status().to_string().as_str())
    );
    assert!(err.details.is_object(), "{err:?}");
    err
}

/// The service still answers a good request.
async fn still_serving<H: Harness>(harness: &H) {
    let reply = client(harness)
        .send(
            &samples::actor(Role::Officer),
            &samples::open_case(),
            ContentType::Json,
            None,
        )
        .await
        .unwrap();
    assert_eq!(reply.events[0], "case.open");
}

fn client<H: Harness>(harness: &H) -> Client<&H::T> {
    Client::new(harness.transport(), samples::issuer())
}

// ---- the suite ----

async fn every_command_round_trips_in_json_and_postcard<H: Harness>() {
    let harness = H::start().await;
    let client = client(&harness);
    for content_type in [ContentType::Json, ContentType::Postcard] {
        for command in samples::all() {
            let kind = command.kind();
            let actor = samples::actor(samples::role_for(kind));
            let reply = client
                .send(&actor, &command, content_type, None)
                .await
                .unwrap_or_else(|e| panic!("{kind} as {content_type:?}: {e:?}"));
            assert_eq!(reply.events[0], kind.name());
            assert_eq!(reply.events[1], actor_claim(&actor));
            assert_eq!(reply.events[2], command.stream());
            assert_eq!(
                reply.events[3],
                format!("{command:?}"),
                "{kind} decoded differently"
            );
            assert_eq!(reply.events[5], content_type.as_str());
            assert_eq!(
                (reply.position, reply.revision, reply.duplicate),
                (7, 3, false)
            );
        }
    }
}

async fn json_is_the_default_and_replies_mirror_the_content_type<H: Harness>() {
    let harness = H::start().await;
    let command = samples::open_case();
    let kind = command.kind();
    // No Content-Type: JSON.
    let body = serde_json::to_vec(&json_body(&command)).unwrap();
    let reply = raw(&harness, kind, headers(None, Some(ACTOR)), body.clone()).await;
    assert_eq!(reply.headers.get(h::STATUS), Some("ok"));
    assert_eq!(reply.headers.get(h::CONTENT_TYPE), Some("application/json"));
    assert_eq!(reply.headers.get(h::NATS_SERVICE_ERROR), None);
    let ok: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(ok["position"], 7);
    assert_eq!(ok["duplicate"], false);
    // With parameters and another case.
    let reply = raw(
        &harness,
        kind,
        headers(Some("Application/JSON; charset=utf-8"), Some(ACTOR)),
        body,
    )
    .await;
    assert!(reply.is_ok());
    // Postcard in, postcard out.
    let (_, body) = encode_command(&command, ContentType::Postcard).unwrap();
    let reply = raw(
        &harness,
        kind,
        headers(Some("application/postcard"), Some(ACTOR)),
        body,
    )
    .await;
    assert_eq!(
        reply.headers.get(h::CONTENT_TYPE),
        Some("application/postcard")
    );
    let ok: CommandReply = postcard::from_bytes(&reply.body).unwrap();
    assert_eq!(ok.events[0], "case.open");
}

async fn malformed_json_bodies_are_bad_requests<H: Harness>() {
    let harness = H::start().await;
    let open = json_body(&samples::open_case());
    let with = |path: &[&str], value: Value| {
        let mut body = open.clone();
        let (last, parents) = path.split_last().unwrap();
        let mut at = &mut body;
        for p in parents {
            at = &mut at[*p];
        }
        at[*last] = value;
        serde_json::to_vec(&body).unwrap()
    };
    let without = |field: &str| {
        let mut body = open.clone();
        body.as_object_mut().unwrap().remove(field);
        serde_json::to_vec(&body).unwrap()
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("garbage bytes", b"\x00\xffnot json at all".to_vec(), "line"),
        ("an empty body", Vec::new(), "EOF"),
        ("not an object", b"[1, 2, 3]".to_vec(), "not an object"),
        (
            "two values",
            br#"{"case": 1} {"case": 2}"#.to_vec(),
            "trailing",
        ),
        (
            "a wrong field type",
            with(&["encounter", "location"], json!(12)),
            "invalid type",
        ),
        (
            "a number for an enum",
            with(&["office"], json!(12)),
            "expected value",
        ),
        (
            "a wrong nested type",
            with(&["encounter", "at"], json!(true)),
            "invalid type",
        ),
        (
            "a missing field",
            without("encounter"),
            "missing field `encounter`",
        ),
        (
            "an unknown office",
            with(&["office"], json!("XYZ")),
            "unknown variant `XYZ`",
        ),
        (
            "an unknown place",
            with(&["encounter", "place"], json!("moon")),
            "unknown variant `moon`",
        ),
        (
            "an invalid A-number",
            with(&["a_number"], json!("A12")),
            "a_number",
        ),
        (
            "a malformed id",
            with(&["case"], json!("not-a-uuid")),
            "column",
        ),
        (
            "an unknown field",
            with(&["colour"], json!("blue")),
            "unknown field",
        ),
    ];
    for (what, body, reason) in cases {
        let err = expect_error(
            &harness,
            CommandKind::CaseOpen,
            headers(Some("application/json"), Some(ACTOR)),
            body,
            codes::BAD_REQUEST,
        )
        .await;
        let details = err.details.to_string();
        assert!(details.contains(reason), "{what}: {details}");
        assert_eq!(err.details["content_type"], "application/json", "{what}");
        still_serving(&harness).await;
    }
    // The target stream is required where the command does not carry it.
    let mut attach = json_body(&samples::one_per_kind()[1]);
    attach.as_object_mut().unwrap().remove("case");
    let err = expect_error(
        &harness,
        CommandKind::CaseAttachRecord,
        headers(None, Some(ACTOR)),
        serde_json::to_vec(&attach).unwrap(),
        codes::BAD_REQUEST,
    )
    .await;
    assert!(err.message.contains("missing field `case`"), "{err:?}");
    // Where: line and column in the body.
    let err = expect_error(
        &harness,
        CommandKind::CaseOpen,
        headers(None, Some(ACTOR)),
        with(&["office"], json!(12)),
        codes::BAD_REQUEST,
    )
    .await;
    assert_eq!(err.details["line"], 1, "{err:?}");
    assert!(err.details["column"].as_u64().unwrap() > 1, "{err:?}");
    // The unknown field is named.
    let err = expect_error(
        &harness,
        CommandKind::CaseOpen,
        headers(None, Some(ACTOR)),
        with(&["colour"], json!("blue")),
        codes::BAD_REQUEST,
    )
    .await;
    assert_eq!(err.details["unknown_fields"], json!(["colour"]));
}

async fn malformed_postcard_bodies_are_bad_requests<H: Harness>() {
    let harness = H::start().await;
    let (_, good) = encode_command(&samples::open_case(), ContentType::Postcard).unwrap();
    let mut trailing = good.to_vec();
    trailing.push(0);
    let mut bad_office = good.to_vec();
    // Layout: case id (1 length byte + 16), a_number (varint, 4 bytes for 12345678), office.
    bad_office[1 + 16 + 4] = 100;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage bytes", vec![0xff; 5]),
        ("an empty body", Vec::new()),
        ("a truncated body", good[..good.len() - 1].to_vec()),
        ("trailing bytes", trailing),
        ("an unknown enum value", bad_office),
    ];
    for (what, body) in cases {
        let err = expect_error(
            &harness,
            CommandKind::CaseOpen,
            headers(Some("application/postcard"), Some(ACTOR)),
            body,
            codes::BAD_REQUEST,
        )
        .await;
        assert_eq!(
            err.details["content_type"], "application/postcard",
            "{what}: {err:?}"
        );
        still_serving(&harness).await;
    }
    // An A-number out of range (0) is refused by its type.
    let mut zero = good.to_vec();
    zero.splice(17..21, [0u8]);
    expect_error(
        &harness,
        CommandKind::CaseOpen,
        headers(Some("application/postcard"), Some(ACTOR)),
        zero,
        codes::BAD_REQUEST,
    )
    .await;
}

async fn oversized_bodies_are_too_large<H: Harness>() {
    let harness = H::start().await;
    let body = serde_json::to_vec(&json!({
        "case": samples::case_id(),
        "reason": "x".repeat(docket_bus::MAX_BODY_BYTES),
    }))
    .unwrap();
    let err = expect_error(
        &harness,
        CommandKind::CaseClose,
        headers(None, Some(ACTOR)),
        body,
        codes::TOO_LARGE,
    )
    .await;
    assert_eq!(err.details["limit"], docket_bus::MAX_BODY_BYTES);
    assert_eq!(err.status(), 400);
    still_serving(&harness).await;
}

async fn unknown_content_types_are_refused_in_json<H: Harness>() {
    let harness = H::start().await;
    for ct in ["text/plain", "application/cbor", ""] {
        let reply = raw(
            &harness,
            CommandKind::CaseOpen,
            headers(Some(ct), Some(ACTOR)),
            b"{}".to_vec(),
        )
        .await;
        assert_eq!(reply.headers.get(h::CONTENT_TYPE), Some("application/json"));
        let err = reply.into_result().unwrap_err();
        assert_eq!(err.code, codes::UNSUPPORTED_CONTENT_TYPE, "{ct}");
        assert_eq!(err.details["content_type"], ct);
    }
    still_serving(&harness).await;
}

async fn the_actor_is_required_and_checked<H: Harness>() {
    let harness = H::start().await;
    let body = serde_json::to_vec(&json_body(&samples::open_case())).unwrap();
    let err = expect_error(
        &harness,
        CommandKind::CaseOpen,
        headers(None, None),
        body.clone(),
        codes::MISSING_ACTOR,
    )
    .await;
    assert_eq!(err.details["header"], "Docket-Actor");
    // Unsigned claims (valid or not) and garbage are not tokens.
    for actor in [
        "officer",
        "nobody/officer",
        "8c0f4f4e-2a6b-4c1e-9d52-0b4f5e2a0065/emperor",
        "8c0f4f4e-2a6b-4c1e-9d52-0b4f5e2a0065/officer",
    ] {
        let mut h = headers(None, None);
        h.insert(h::ACTOR, actor);
        let err = expect_error(
            &harness,
            CommandKind::CaseOpen,
            h,
            body.clone(),
            codes::BAD_ACTOR,
        )
        .await;
        assert_eq!(err.details["part"], "token", "{actor}");
    }
    // Tokens that do not verify: expired, forged, another deployment's.
    let actor = samples::actor(docket_domain::Role::Officer);
    let now = docket_bus::token::now_secs();
    let expired = samples::issuer().issue(&actor, now - 600, 60);
    let mut forged = samples::issuer().for_request(&actor);
    forged.replace_range(forged.len() - 4.., "AAAA");
    let (other, _) = docket_bus::token::generate_key();
    let foreign = docket_bus::token::TokenIssuer::new(&other)
        .unwrap()
        .for_request(&actor);
    for (token, reason) in [
        (expired, "expired"),
        (forged, "bad_signature"),
        (foreign, "unknown_key"),
    ] {
        let mut h = headers(None, None);
        h.insert(h::ACTOR, token);
        let err = expect_error(
            &harness,
            CommandKind::CaseOpen,
            h,
            body.clone(),
            codes::UNAUTHENTICATED,
        )
        .await;
        assert_eq!(err.details["reason"], reason);
    }
    // The actor is checked before the body is read.
    expect_error(
        &harness,
        CommandKind::CaseOpen,
        headers(None, None),
        b"garbage".to_vec(),
        codes::MISSING_ACTOR,
    )
    .await;
    still_serving(&harness).await;
}

async fn idempotency_keys_are_checked_and_passed_on<H: Harness>() {
    let harness = H::start().await;
    let actor = samples::actor(Role::Officer);
    let reply = client(&harness)
        .send(
            &actor,
            &samples::open_case(),
            ContentType::Postcard,
            Some("intake-42/attempt-1"),
        )
        .await
        .unwrap();
    assert_eq!(reply.events[4], "intake-42/attempt-1");
    assert!(reply.duplicate);
    let long = "k".repeat(129);
    for key in ["", "with space", long.as_str()] {
        let err = client(&harness)
            .send(&actor, &samples::open_case(), ContentType::Json, Some(key))
            .await
            .unwrap_err();
        assert_eq!(err.code, codes::BAD_REQUEST, "{key:?}");
        assert_eq!(err.details["header"], "Docket-Idempotency-Key");
    }
    still_serving(&harness).await;
}

async fn unknown_subjects_are_unknown_commands<H: Harness>() {
    let harness = H::start().await;
    for subject in [
        "docket.cmd.intake.case_teleport",
        "docket.cmd.assessment.case_open",
        "docket.cmd.notification.status",
    ] {
        let err = harness
            .transport()
            .request(
                subject,
                headers(None, Some(ACTOR)),
                Bytes::from_static(b"{}"),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, codes::UNKNOWN_COMMAND, "{subject}");
        assert_eq!(err.details["subject"], subject);
    }
}

async fn handler_errors_become_structured_replies<H: Harness>() {
    let harness = H::start().await;
    let close = |reason: &str| {
        DomainCommand::case(
            samples::case_id(),
            CaseCommand::Close {
                reason: reason.to_owned(),
            },
        )
    };
    for content_type in [ContentType::Json, ContentType::Postcard] {
        let (_, body) = encode_command(&close("reject"), content_type).unwrap();
        let err = expect_error(
            &harness,
            CommandKind::CaseClose,
            headers(Some(content_type.as_str()), Some(ACTOR)),
            body,
            "case_closed",
        )
        .await;
        assert_eq!(err.status(), 409);
        let (_, body) = encode_command(&close("forbidden"), content_type).unwrap();
        let reply = raw(
            &harness,
            CommandKind::CaseClose,
            headers(Some(content_type.as_str()), Some(ACTOR)),
            body,
        )
        .await;
        assert_eq!(
            reply.headers.get(h::CONTENT_TYPE),
            Some(content_type.as_str())
        );
        assert_eq!(reply.headers.get(h::NATS_SERVICE_ERROR_CODE), Some("403"));
        let err = reply.into_result().unwrap_err();
        assert_eq!(err.code, codes::FORBIDDEN);
        assert_eq!(
            err.details,
            json!({ "role": "officer", "command": "case.close" })
        );
    }
    // The typed client returns the same error.
    let err = client(&harness)
        .send(
            &samples::actor(Role::Officer),
            &close("reject"),
            ContentType::Postcard,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, "case_closed");
    assert_eq!(err.message, "the case is closed");
}

async fn a_panicking_handler_is_an_internal_error<H: Harness>() {
    let harness = H::start().await;
    let panic = DomainCommand::case(
        samples::case_id(),
        CaseCommand::Close {
            reason: "panic".to_owned(),
        },
    );
    for _ in 0..3 {
        let err = client(&harness)
            .send(
                &samples::actor(Role::Officer),
                &panic,
                ContentType::Json,
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, codes::INTERNAL);
        assert_eq!(err.status(), 500);
        still_serving(&harness).await;
    }
}

async fn a_stopped_service_is_unavailable<H: Harness>() {
    let mut harness = H::start().await;
    harness.stop(Service::Review).await;
    let command = samples::one_per_kind()
        .into_iter()
        .find(|c| c.service() == Service::Review)
        .unwrap();
    let err = client(&harness)
        .send(
            &samples::actor(Role::Requester),
            &command,
            ContentType::Json,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, codes::UNAVAILABLE, "{err:?}");
    assert_eq!(err.details["reason"], "no_responders");
    assert!(err.is_retryable());
    // The others still serve.
    still_serving(&harness).await;
}

async fn concurrent_requests_are_all_answered<H: Harness>() {
    let harness = H::start().await;
    let client = client(&harness);
    let actor = samples::actor(Role::Officer);
    let commands = samples::all();
    let replies = futures_util::future::join_all(
        commands
            .iter()
            .cycle()
            .take(200)
            .map(|c| client.send(&actor, c, ContentType::Postcard, None)),
    )
    .await;
    for (reply, command) in replies.into_iter().zip(commands.iter().cycle()) {
        assert_eq!(reply.unwrap().events[3], format!("{command:?}"));
    }
}

async fn raw_query<H: Harness>(
    harness: &H,
    kind: QueryKind,
    headers: Headers,
    body: &'static [u8],
) -> Result<RawReply, BusError> {
    harness
        .transport()
        .request(&kind.subject(), headers, Bytes::from_static(body))
        .await
}

async fn audit_queries_take_the_command_path<H: Harness>() {
    let harness = H::start().await;
    let client = client(&harness);
    let anonymous = Client::unsigned(harness.transport());
    // Typed both ways; no actor needed, and one sent is verified and passed on.
    let answer = anonymous
        .query(None, &CheckpointRequest { covering: Some(4) })
        .await
        .unwrap();
    assert_eq!(answer.size, 9);
    assert!(answer.note.starts_with(" Some(4) "), "{answer:?}");
    let auditor = samples::actor(Role::Auditor);
    let answer = client
        .query(Some(&auditor), &CheckpointRequest::default())
        .await
        .unwrap();
    assert!(
        answer
            .note
            .starts_with(&format!("{} None ", actor_claim(&auditor))),
        "{answer:?}"
    );
    let receipt = anonymous
        .query(
            None,
            &ReceiptRequest {
                position: 5,
                commit_hash: Some("ab".repeat(32)),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (receipt.position, receipt.commit_hash),
        (5, "ab".repeat(32))
    );
    let json = || headers(None, None);
    // An empty body is `{}`; a checkpoint needs no field.
    // (Moved from the unit test of the old `AuditQuery::parse`, with the refusals below.)
    let reply = raw_query(&harness, QueryKind::Checkpoint, json(), b"")
        .await
        .unwrap();
    let answer: CheckpointAnswer = reply.into_answer().unwrap();
    assert!(answer.note.starts_with(" None "), "{answer:?}");
    // The same refusals as commands, with the same error headers.
    for (kind, headers, body, code) in [
        (QueryKind::Receipt, json(), &b"{}"[..], codes::BAD_REQUEST),
        (QueryKind::Receipt, json(), b"garbage", codes::BAD_REQUEST),
        (
            QueryKind::InclusionProof,
            json(),
            br#"{"position": 1, "size": 2, "extra": 3}"#,
            codes::BAD_REQUEST,
        ),
        (
            QueryKind::Checkpoint,
            headers(Some("text/plain"), None),
            b"{}",
            codes::UNSUPPORTED_CONTENT_TYPE,
        ),
        (
            QueryKind::Checkpoint,
            headers(None, Some("nobody")),
            b"{}",
            codes::BAD_ACTOR,
        ),
        (
            QueryKind::InclusionProof,
            json(),
            br#"{"position": 0, "size": 2}"#,
            codes::BAD_REQUEST,
        ),
        (
            QueryKind::InclusionProof,
            json(),
            br#"{"position": 666, "size": 700}"#,
            codes::INTERNAL,
        ),
        (
            QueryKind::ConsistencyProof,
            json(),
            br#"{"old": 1, "new": 2}"#,
            codes::INTERNAL,
        ),
    ] {
        let reply = raw_query(&harness, kind, headers, body).await.unwrap();
        let err = reply.clone().into_answer::<Value>().unwrap_err();
        assert_eq!(err.code, code, "{kind}: {err:?}");
        assert_eq!(
            reply.headers.get(h::NATS_SERVICE_ERROR_CODE),
            Some(err.status().to_string().as_str())
        );
    }
    let huge = vec![b' '; docket_bus::MAX_BODY_BYTES + 1];
    let err = harness
        .transport()
        .request(&QueryKind::Checkpoint.subject(), json(), Bytes::from(huge))
        .await
        .unwrap()
        .into_answer::<Value>()
        .unwrap_err();
    assert_eq!(err.code, codes::TOO_LARGE);
    // Postcard too, mirrored in the reply.
    let body = postcard::to_stdvec(&InclusionRequest {
        position: 3,
        size: 8,
    })
    .unwrap();
    let reply = harness
        .transport()
        .request(
            &QueryKind::InclusionProof.subject(),
            headers(Some(ContentType::Postcard.as_str()), None),
            Bytes::from(body),
        )
        .await
        .unwrap();
    assert_eq!(
        reply.headers.get(h::CONTENT_TYPE),
        Some(ContentType::Postcard.as_str())
    );
    let answer: InclusionAnswer = reply.into_answer().unwrap();
    assert_eq!((answer.position, answer.size), (3, 8));
    // A query subject the catalogue does not know, and a command sent to the audit service.
    for subject in ["docket.cmd.audit.receipts", "docket.cmd.audit.case_open"] {
        let err = harness
            .transport()
            .request(subject, json(), Bytes::from_static(b"{}"))
            .await
            .unwrap_err();
        assert_eq!(err.code, codes::UNKNOWN_COMMAND, "{subject}");
    }
    still_serving(&harness).await;
}
