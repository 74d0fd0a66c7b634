//! The command services end to end inside one test process: the whole case-and-review lifecycle
//! through the bus, over NATS (each service its own micro service, the log on JetStream) and over
//! the in-process bus (the log in files), with the same client code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../tests/support/keys.rs"]
mod keys;

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use docket_bus::{
    codes, Client, ContentType, DomainCommand, LocalBus, NatsTransport, Service, Transport,
};
use docket_domain::case::{CaseCommand, Encounter};
use docket_domain::officer::OfficerCommand;
use docket_domain::policy::PolicySet;
use docket_domain::representation::{RepresentationCommand, RepresentativeCapacity};
use docket_domain::review::{RequesterCapacity, ReviewCommand};
use docket_domain::values::*;
use docket_log::file::{FileLog, FileLogConfig};
use docket_log::jetstream::{JetStreamConfig, JetStreamLog};
use docket_log::EventLog;
use docket_runtime::clock::{ManualClock, SharedClock};
use docket_runtime::{Executor, ExecutorConfig, World};
use uuid::Uuid;

mod api_examples;
mod bad_input;
mod supervision;

fn who(n: u128, role: Role) -> Actor {
    Actor {
        person: PersonId(Uuid::from_u128(n)),
        role,
    }
}

const FOD: u128 = 10;
const OFFICER: u128 = 11;
const SUPERVISOR: u128 = 12;
const REVIEWER: u128 = 13;
const CLERK: u128 = 14;
const REP: u128 = 15;

fn clock() -> SharedClock {
    Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2024, 3, 5, 15, 0, 0).unwrap(),
    ))
}

/// Waits until every command service answers `$SRV.PING` (5 s at most).
pub(crate) async fn wait_for_ping(client: &docket_bus::NatsClient) {
    for service in docket_node::COMMAND_SERVICES {
        let subject = format!("$SRV.PING.{}", service.micro_name());
        let mut tries = 0;
        while client.request(subject.clone(), "".into()).await.is_err() {
            tries += 1;
            assert!(tries < 100, "{service} never answered PING");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub(crate) async fn executor<L: EventLog + Clone + Send + Sync + 'static>(log: L) -> Executor<L> {
    let world = World::new();
    world.follow(log.clone());
    world
        .wait_until(log.head().await.unwrap(), Duration::from_secs(10))
        .await
        .unwrap();
    Executor::new(
        log,
        world,
        ExecutorConfig::new(PolicySet::shipped().unwrap()),
    )
}

/// Sends one command, JSON or postcard alternately, and expects success.
async fn ok<T: Transport>(
    client: &Client<T>,
    actor: Actor,
    command: DomainCommand,
    n: &mut usize,
) -> docket_bus::CommandReply {
    *n += 1;
    let ct = if n.is_multiple_of(2) {
        ContentType::Postcard
    } else {
        ContentType::Json
    };
    client
        .send(&actor, &command, ct, None)
        .await
        .unwrap_or_else(|e| panic!("{command:?}: {e:?}"))
}

/// The lifecycle of issue 4: officers trained, a case opened and decided with an approved
/// departure, a representative's review reversed at tier 1 and taken to tier 2.
/// Returns the replies that carry a receipt when a checkpointer runs: the decision recorded,
/// the review requested and its retry.
async fn lifecycle<T: Transport>(client: Client<T>) -> Vec<docket_bus::CommandReply> {
    let mut n = 0;
    let fod = who(FOD, Role::FieldOfficeDirector);
    for (p, role) in [
        (OFFICER, Role::Officer),
        (SUPERVISOR, Role::Supervisor),
        (REVIEWER, Role::FirstTierReviewer),
        (16, Role::SeniorReviewingOfficial),
    ] {
        let person = PersonId(Uuid::from_u128(p));
        ok(
            &client,
            fod,
            DomainCommand::officer(
                person,
                OfficerCommand::Register {
                    person,
                    office: FieldOffice::Nyc,
                    role,
                },
            ),
            &mut n,
        )
        .await;
        let training = OfficerCommand::CompleteTraining {
            policy_version: "2021-09-30".into(),
            module: "web-based".into(),
            completed_on: NaiveDate::from_ymd_opt(2021, 11, 20).unwrap(),
        };
        ok(
            &client,
            fod,
            DomainCommand::officer(person, training),
            &mut n,
        )
        .await;
    }
    let case = CaseId(Uuid::new_v4());
    let a_number = ANumber::parse("A012345678").unwrap();
    let at = Utc.with_ymd_and_hms(2024, 3, 5, 9, 0, 0).unwrap();
    let clerk = who(CLERK, Role::IntakeClerk);
    let officer = who(OFFICER, Role::Officer);
    let c = |command| DomainCommand::case(case, command);
    let opened = ok(
        &client,
        clerk,
        c(CaseCommand::Open {
            case,
            a_number,
            office: FieldOffice::Nyc,
            encounter: Encounter {
                at,
                location: "Queens".into(),
                place: EncounterPlace::Interior,
                manner_of_entry: MannerOfEntry::EnteredUnlawfully,
                entry_date: NaiveDate::from_ymd_opt(2010, 1, 1),
                protected_area: None,
            },
        }),
        &mut n,
    )
    .await;
    assert_eq!(opened.events, vec!["case.opened".to_string()]);
    ok(
        &client,
        clerk,
        c(CaseCommand::AttachRecord {
            record: RecordId(Uuid::new_v4()),
            source: RecordSource::Criminal,
            reference: "NCIC".into(),
            content_hash: ContentHash([3; 32]),
        }),
        &mut n,
    )
    .await;
    for source in [RecordSource::Administrative, RecordSource::Investigative] {
        ok(
            &client,
            officer,
            c(CaseCommand::MarkSourceUnavailable {
                source,
                reason: "none".into(),
            }),
            &mut n,
        )
        .await;
    }
    // A proposal before attestation is refused with the rule's code, and the service goes on.
    let decision = DecisionId(Uuid::new_v4());
    let propose = c(CaseCommand::ProposeDecision {
        decision,
        action: EnforcementAction::Detain,
        cited_factors: vec![],
        reasons: "flight risk".into(),
        protected_area_exception: None,
    });
    let refused = client
        .send(&officer, &propose, ContentType::Json, None)
        .await
        .unwrap_err();
    assert_eq!(refused.code, "whole_record_not_attested");
    ok(&client, officer, c(CaseCommand::AttestWholeRecord), &mut n).await;
    let factors = vec![
        Code::parse("factor", "family_impact").unwrap(),
        Code::parse("factor", "lengthy_presence").unwrap(),
    ];
    ok(
        &client,
        officer,
        c(CaseCommand::AssessFactors {
            factors,
            narrative: "whole record".into(),
        }),
        &mut n,
    )
    .await;
    // A record arrives after the assessment: the assessment service recomputes the guidance
    // (checked by the callers in the log), and the record must be attested again.
    ok(
        &client,
        clerk,
        c(CaseCommand::AttachRecord {
            record: RecordId(Uuid::new_v4()),
            source: RecordSource::Administrative,
            reference: "A-file, late".into(),
            content_hash: ContentHash([4; 32]),
        }),
        &mut n,
    )
    .await;
    ok(&client, officer, c(CaseCommand::AttestWholeRecord), &mut n).await;
    ok(&client, officer, propose, &mut n).await;
    let early = client
        .send(
            &officer,
            &c(CaseCommand::RecordDecision { decision }),
            ContentType::Json,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(early.code, "departure_needs_approval");
    ok(
        &client,
        who(SUPERVISOR, Role::Supervisor),
        c(CaseCommand::ApproveDecision { decision }),
        &mut n,
    )
    .await;
    let recorded = ok(
        &client,
        officer,
        c(CaseCommand::RecordDecision { decision }),
        &mut n,
    )
    .await;

    // The representative files a G-28 through intake and asks for review.
    let rep = PersonId(Uuid::from_u128(REP));
    ok(
        &client,
        clerk,
        DomainCommand::representation(
            a_number,
            rep,
            RepresentationCommand::RecordG28 {
                a_number,
                representative: rep,
                capacity: RepresentativeCapacity::Attorney,
                signed_on: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
            },
        ),
        &mut n,
    )
    .await;
    let review = ReviewId(Uuid::new_v4());
    let r = |command| DomainCommand::review(review, command);
    let requester = who(REP, Role::Requester);
    let request = r(ReviewCommand::Request {
        review,
        a_number,
        capacity: RequesterCapacity::Representative,
        case,
        decision,
        action: EnforcementAction::Detain,
        grounds: "primary caregiver of two children".into(),
        preferred_language: None,
    });
    let key = format!("request-{review}");
    let first = client
        .send(&requester, &request, ContentType::Json, Some(&key))
        .await
        .unwrap();
    let again = client
        .send(&requester, &request, ContentType::Postcard, Some(&key))
        .await
        .unwrap();
    assert!(
        again.duplicate && again.position == first.position,
        "a retried request is answered with the original"
    );
    let system = who(0, Role::System);
    ok(&client, system, r(ReviewCommand::Acknowledge), &mut n).await;
    ok(
        &client,
        fod,
        r(ReviewCommand::AssignReviewer {
            reviewer: PersonId(Uuid::from_u128(REVIEWER)),
        }),
        &mut n,
    )
    .await;
    let reviewer = who(REVIEWER, Role::FirstTierReviewer);
    ok(
        &client,
        reviewer,
        r(ReviewCommand::DecideTier1 {
            outcome: ReviewOutcome::Reversed,
            referred_to: None,
            reasons: "release".into(),
        }),
        &mut n,
    )
    .await;
    ok(
        &client,
        requester,
        r(ReviewCommand::RequestTier2 {
            grounds: "also the NTA".into(),
        }),
        &mut n,
    )
    .await;
    let sro = who(16, Role::SeniorReviewingOfficial);
    ok(
        &client,
        sro,
        r(ReviewCommand::AssignSeniorOfficial {
            official: sro.person,
        }),
        &mut n,
    )
    .await;
    let done = ok(
        &client,
        sro,
        r(ReviewCommand::DecideTier2 {
            outcome: ReviewOutcome::Reversed,
            referred_to: None,
            reasons: "upheld the release".into(),
        }),
        &mut n,
    )
    .await;
    assert_eq!(done.events, vec!["review.tier2_decided".to_string()]);
    // An auditor changes nothing.
    let forbidden = client
        .send(
            &who(20, Role::Auditor),
            &r(ReviewCommand::Acknowledge),
            ContentType::Json,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(forbidden.code, codes::FORBIDDEN);
    vec![recorded, first, again]
}

/// `Docket-After`: a position the log has not reached is a `bad_request`; a reached one (the
/// reply to a write made through intake) lets the next command, to another service, go through.
async fn read_your_writes<T: Transport, L: EventLog>(client: &Client<T>, log: &L) {
    let fod = who(FOD, Role::FieldOfficeDirector);
    let person = PersonId(Uuid::new_v4());
    let register = DomainCommand::officer(
        person,
        OfficerCommand::Register {
            person,
            office: FieldOffice::Sea,
            role: Role::Officer,
        },
    );
    let head = log.head().await.unwrap();
    let beyond = client
        .send_after(&fod, &register, ContentType::Json, None, Some(head + 1_000))
        .await
        .unwrap_err();
    assert_eq!(beyond.code, "bad_request", "{beyond:?}");
    assert!(
        beyond.message.contains("Docket-After"),
        "{}",
        beyond.message
    );
    let registered = client
        .send_after(&fod, &register, ContentType::Json, None, Some(head))
        .await
        .unwrap();
    let training = DomainCommand::officer(
        person,
        OfficerCommand::CompleteTraining {
            policy_version: "2021-09-30".into(),
            module: "web-based".into(),
            completed_on: NaiveDate::from_ymd_opt(2021, 11, 20).unwrap(),
        },
    );
    client
        .send_after(
            &fod,
            &training,
            ContentType::Postcard,
            None,
            Some(registered.position),
        )
        .await
        .unwrap();
}

/// Waits until the log holds exactly one `case.guidance_recomputed` (the lifecycle's late record
/// caused it) and checks that no second one follows.
async fn guidance_recomputed_once<L: EventLog>(log: &L) {
    let count = || async {
        log.read_all(0, 100_000)
            .await
            .unwrap()
            .iter()
            .flat_map(|c| c.commit.events.iter())
            .filter(|e| e.type_name == "case.guidance_recomputed")
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while count().await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "guidance never recomputed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_runs_over_nats_with_one_micro_service_each() {
    let server = tokio::task::spawn_blocking(docket_testkit::NatsServer::start)
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // The audit service, a "process" of its own: the checkpointer and docket.cmd.audit.*.
    let audit_dir = tempfile::tempdir().unwrap();
    let audit_log = JetStreamLog::connect_url(&server.url(), JetStreamConfig::default())
        .await
        .unwrap();
    let (skey, vkey) = docket_audit::note::generate_key("docket.test/log").unwrap();
    let (checkpointer, checkpointer_task) = docket_audit::Checkpointer::start(
        docket_audit::CheckpointerConfig::default(),
        audit_log.clone(),
        docket_audit::CheckpointStore::new(docket_log::AnyRecords::JetStream(Box::new(
            audit_log.audit_records().await.unwrap(),
        ))),
        docket_audit::CheckpointSigner::new(&skey).unwrap(),
        audit_dir.path().join("tree"),
        stopped.clone(),
    );
    let audit = docket_bus::serve_nats(
        docket_bus::connect(&server.url(), "docket-audit")
            .await
            .unwrap(),
        docket_bus::Service::Audit,
        docket_node::VERSION,
        docket_node::AuditApi {
            checkpointer,
            log: docket_log::AnyLog::JetStream(audit_log),
            actors: keys::verifier(),
        },
    )
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for service in docket_node::COMMAND_SERVICES {
        // Each service is its own "process": its own connection, log handle and world.
        let client = docket_bus::connect(&server.url(), &format!("docket-{service}"))
            .await
            .unwrap();
        let log = JetStreamLog::connect_url(&server.url(), JetStreamConfig::default())
            .await
            .unwrap();
        let checkpoints =
            docket_log::AnyCheckpoints::Kv(Box::new(log.checkpoints().await.unwrap()));
        let ex = executor(log).await;
        tasks.push(tokio::spawn(docket_node::run_nats(
            service,
            client,
            ex,
            checkpoints,
            Some(docket_node::ReceiptSource::remote(
                docket_bus::connect(&server.url(), "receipts")
                    .await
                    .unwrap(),
            )),
            keys::verifier(),
            clock(),
            stopped.clone(),
        )));
    }
    let client = docket_bus::connect(&server.url(), "test-client")
        .await
        .unwrap();
    wait_for_ping(&client).await;
    let replies = lifecycle(Client::new(
        NatsTransport::new(client.clone()),
        keys::issuer(),
    ))
    .await;
    // Receipts come from the audit service over NATS and verify with the public key alone.
    let verifier = docket_audit::CheckpointVerifier::new(&vkey).unwrap();
    for reply in &replies {
        let wire = reply
            .receipt
            .clone()
            .expect("a receipt from the audit service");
        let receipt: docket_audit::Receipt =
            serde_json::from_value(serde_json::to_value(&wire).unwrap()).unwrap();
        let verified = docket_audit::verify_receipt(&receipt, &verifier, None).unwrap();
        assert_eq!(verified.position, reply.position);
    }
    // The proofs over NATS: consistency between the receipt's checkpoint and a later one.
    let first = &replies[0].receipt.clone().unwrap();
    let receipt: docket_audit::Receipt =
        serde_json::from_value(serde_json::to_value(first).unwrap()).unwrap();
    let old = verifier.open(&receipt.checkpoint).unwrap().checkpoint.size;
    let wait = std::time::Duration::from_secs(5);
    // Queries need no actor; one sent must verify.
    let audit_client = Client::new(
        NatsTransport::new(client.clone()).with_timeout(wait),
        keys::issuer(),
    );
    let auditor = who(0xa0d17, Role::Auditor);
    let latest = audit_client
        .query(
            Some(&auditor),
            &docket_bus::CheckpointRequest {
                covering: Some(replies[1].position),
            },
        )
        .await
        .unwrap();
    let later = latest.note;
    let new = verifier.open(&later).unwrap().checkpoint.size;
    let proof = audit_client
        .query(None, &docket_bus::ConsistencyRequest { old, new })
        .await
        .unwrap();
    let proof: Vec<docket_audit::Hash> = proof
        .proof
        .iter()
        .map(|h| docket_audit::Hash::parse_hash(h).unwrap())
        .collect();
    let verified =
        docket_audit::verify_receipt(&receipt, &verifier, Some((&later, &proof))).unwrap();
    assert_eq!(verified.later.map(|c| c.size), Some(new));
    let beyond = audit_client
        .query(
            None,
            &docket_bus::ReceiptRequest {
                position: 1_000_000,
                commit_hash: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(beyond.code, codes::BAD_REQUEST);
    // A token that does not verify is refused, as on commands.
    let forged = Client::unsigned(NatsTransport::new(client.clone()).with_timeout(wait))
        .query(Some(&auditor), &docket_bus::CheckpointRequest::default())
        .await
        .unwrap_err();
    assert_eq!(forged.code, codes::BAD_ACTOR);
    let log = JetStreamLog::connect_url(&server.url(), JetStreamConfig::default())
        .await
        .unwrap();
    guidance_recomputed_once(&log).await;
    let client = docket_bus::connect(&server.url(), "test-client-2")
        .await
        .unwrap();
    read_your_writes(
        &Client::new(NatsTransport::new(client), keys::issuer()),
        &log,
    )
    .await;
    stop.send(true).unwrap();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    audit.stop().await.unwrap();
    checkpointer_task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_runs_on_the_in_process_bus() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(FileLogConfig::new(dir.path())).await.unwrap();
    let bus = LocalBus::new();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let checkpoints = docket_log::AnyCheckpoints::File(log.checkpoints().unwrap());
    let (skey, vkey) = docket_audit::note::generate_key("docket.test/log").unwrap();
    let (checkpointer, checkpointer_task) = docket_audit::Checkpointer::start(
        docket_audit::CheckpointerConfig::default(),
        log.clone(),
        docket_audit::CheckpointStore::new(docket_log::AnyRecords::File(
            log.audit_records().unwrap(),
        )),
        docket_audit::CheckpointSigner::new(&skey).unwrap(),
        dir.path().join("audit").join("tree"),
        stopped.clone(),
    );
    let background = docket_node::register_local(
        &bus,
        &docket_node::COMMAND_SERVICES,
        executor(log.clone()).await,
        checkpoints,
        Some(docket_node::ReceiptSource::Local(checkpointer)),
        keys::verifier(),
        clock(),
        stopped,
    );
    let replies = lifecycle(Client::new(bus.clone(), keys::issuer())).await;
    // The decision and the review request (and its retry) carry receipts that verify against
    // the public key alone.
    let verifier = docket_audit::CheckpointVerifier::new(&vkey).unwrap();
    for reply in &replies {
        let wire = reply.receipt.clone().expect("a receipt");
        let receipt: docket_audit::Receipt =
            serde_json::from_value(serde_json::to_value(&wire).unwrap()).unwrap();
        let verified = docket_audit::verify_receipt(&receipt, &verifier, None).unwrap();
        assert_eq!(verified.position, reply.position);
        let commit = log.read_all(reply.position - 1, 1).await.unwrap().remove(0);
        receipt.check_commit(&commit.bytes).unwrap();
    }
    guidance_recomputed_once(&log).await;
    read_your_writes(&Client::new(bus.clone(), keys::issuer()), &log).await;
    // Notification has no commands: nothing answers there.
    assert_eq!(Service::Notification.commands().count(), 0);
    stop.send(true).unwrap();
    background.finish().await.unwrap();
    checkpointer_task.await.unwrap().unwrap();
}
