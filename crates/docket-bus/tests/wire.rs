//! The catalogue and the wire forms, without a transport: ownership and subjects of every
//! command, the catalogue's table against the domain's enums, every command through both
//! encodings, and the error form.

use docket_bus::catalogue::{self, spec, AggregateKind};
use docket_bus::{
    codes, decode_command, encode_command, parse_subject, subject, BusError, CommandReply,
    ContentType, DomainCommand, Service,
};
use docket_domain::case::CaseCommand;
use docket_domain::values::InvalidValue;
use docket_domain::{CommandKind, Rejection, Role};
use serde_json::{json, Value};

use crate::samples;

#[test]
fn every_command_has_exactly_one_service_and_its_subject_round_trips() {
    let owners = [
        (
            Service::Intake,
            &[
                "case.open",
                "case.attach_record",
                "case.mark_source_unavailable",
                "officer.register",
                "officer.complete_training",
                "representation.record_g28",
                "representation.withdraw_g28",
            ][..],
        ),
        (
            Service::Assessment,
            &[
                "case.attest_whole_record",
                "case.assess_factors",
                "case.propose_decision",
                "case.approve_decision",
                "case.return_decision",
                "case.record_decision",
                "case.close",
                "case.recompute_guidance",
            ][..],
        ),
        (
            Service::Review,
            &[
                "review.request",
                "review.acknowledge",
                "review.prioritise",
                "review.assign_reviewer",
                "review.request_information",
                "review.provide_information",
                "review.decide_tier1",
                "review.request_tier2",
                "review.assign_senior_official",
                "review.decide_tier2",
                "review.withdraw",
                "review.record_deadline_missed",
            ][..],
        ),
        (Service::Notification, &[][..]),
    ];
    for (service, expected) in owners {
        let names: Vec<&str> = service.commands().map(|k| k.name()).collect();
        assert_eq!(names, expected, "{service}");
        assert_eq!(service.queue_group(), format!("docket-{}", service.name()));
        assert_eq!(Service::parse(service.name()), Some(service));
    }
    assert_eq!(CommandKind::ALL.len(), 27);
    for kind in CommandKind::ALL {
        let owners: Vec<_> = Service::ALL
            .iter()
            .filter(|s| s.commands().any(|k| k == *kind))
            .collect();
        assert_eq!(owners, [&spec(*kind).service], "{kind}");
        assert_eq!(spec(*kind).kind, *kind);
        let subject = subject(*kind);
        assert_eq!(
            subject,
            format!(
                "docket.cmd.{}.{}",
                spec(*kind).service.name(),
                kind.name().replace('.', "_")
            )
        );
        assert_eq!(parse_subject(&subject), Some(*kind));
    }
    assert_eq!(
        subject(CommandKind::CaseOpen),
        "docket.cmd.intake.case_open"
    );
    assert_eq!(
        subject(CommandKind::ReviewDecideTier1),
        "docket.cmd.review.review_decide_tier1"
    );
}

/// The catalogue's variant names, indices and `carries_target` flags are what serde does with
/// the domain's enums: checked on a sample of every command.
#[test]
fn the_catalogue_table_matches_the_domain_enums() {
    for command in samples::all() {
        let kind = command.kind();
        let spec = spec(kind);
        let (tagged_json, tagged_postcard) = match &command {
            DomainCommand::Case { command, .. } => tagged(command),
            DomainCommand::Officer { command, .. } => tagged(command),
            DomainCommand::Representation { command, .. } => tagged(command),
            DomainCommand::Review { command, .. } => tagged(command),
        };
        let (variant, fields) = match tagged_json {
            Value::String(name) => (name, json!({})),
            Value::Object(map) => map.into_iter().next().unwrap(),
            other => panic!("{kind}: {other}"),
        };
        assert_eq!(variant, spec.variant, "{kind}");
        assert_eq!(u32::from(tagged_postcard[0]), spec.index, "{kind}");
        let carries = catalogue::target_fields(spec.aggregate)
            .iter()
            .all(|f| fields.get(f).is_some());
        assert_eq!(carries, spec.carries_target, "{kind}");
        assert_eq!(
            command.stream().split('/').next(),
            Some(spec.aggregate.name())
        );
        assert_eq!(command.key().kind(), spec.aggregate, "{kind}");
        assert_eq!(command.stream().parse(), Ok(command.key()), "{kind}");
        assert!(docket_log::StreamId::new(command.stream()).is_ok());
    }
}

fn tagged<T: serde::Serialize>(command: &T) -> (Value, Vec<u8>) {
    (
        serde_json::to_value(command).unwrap(),
        postcard::to_stdvec(command).unwrap(),
    )
}

#[test]
fn every_command_round_trips_in_both_encodings() {
    let mut seen = std::collections::BTreeSet::new();
    for command in samples::all() {
        for ct in [ContentType::Json, ContentType::Postcard] {
            let (kind, body) = encode_command(&command, ct).unwrap();
            assert_eq!(kind, command.kind());
            let decoded = decode_command(kind, ct, &body)
                .unwrap_or_else(|e| panic!("{kind} as {ct:?}: {e:?}"));
            assert_eq!(decoded, command, "{kind} as {ct:?}");
            seen.insert((kind, ct.as_str()));
        }
    }
    assert_eq!(seen.len(), 27 * 2, "every kind in both content types");
}

#[test]
fn a_json_body_is_the_fields_and_the_target_only() {
    let all = samples::one_per_kind();
    let body = |c: &DomainCommand| -> Value {
        serde_json::from_slice(&encode_command(c, ContentType::Json).unwrap().1).unwrap()
    };
    let open = body(&all[0]);
    let mut keys: Vec<&String> = open.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["a_number", "case", "encounter", "office"]);
    assert_eq!(open["a_number"], "A012345678");
    assert_eq!(open["office"], "NYC");
    assert_eq!(open["case"], samples::case_id().to_string());
    let attest = all
        .iter()
        .find(|c| c.kind() == CommandKind::CaseAttestWholeRecord)
        .unwrap();
    assert_eq!(
        body(attest),
        json!({ "case": samples::case_id().to_string() })
    );
    let recompute = all
        .iter()
        .find(|c| c.kind() == CommandKind::CaseRecomputeGuidance)
        .unwrap();
    assert_eq!(
        body(recompute),
        json!({ "case": samples::case_id().to_string() })
    );
    assert_eq!(
        subject(CommandKind::CaseRecomputeGuidance),
        "docket.cmd.assessment.case_recompute_guidance"
    );
    let withdraw = all
        .iter()
        .find(|c| c.kind() == CommandKind::RepresentationWithdrawG28)
        .unwrap();
    assert_eq!(
        body(withdraw),
        json!({
            "a_number": "A012345678",
            "representative": samples::person(3).to_string(),
            "reason": "client's request",
        })
    );
    // Optional fields may be left out or null.
    let ack = json!({ "review": samples::review_id().to_string() });
    let ack = serde_json::to_vec(&ack).unwrap();
    assert!(decode_command(CommandKind::ReviewAcknowledge, ContentType::Json, &ack).is_ok());
    let withdraw = json!({ "review": samples::review_id().to_string() });
    let decoded = decode_command(
        CommandKind::ReviewWithdraw,
        ContentType::Json,
        &serde_json::to_vec(&withdraw).unwrap(),
    )
    .unwrap();
    assert_eq!(decoded.kind(), CommandKind::ReviewWithdraw);
}

#[test]
fn a_postcard_body_is_the_target_then_the_fields() {
    let attach = samples::one_per_kind()[1].clone();
    let DomainCommand::Case { case, command } = &attach else {
        panic!()
    };
    let (_, body) = encode_command(&attach, ContentType::Postcard).unwrap();
    let mut expected = postcard::to_stdvec(case).unwrap();
    expected.extend_from_slice(&postcard::to_stdvec(command).unwrap()[1..]);
    assert_eq!(body.as_ref(), expected.as_slice());
    // A command that carries its target has no prefix.
    let open = samples::open_case();
    let DomainCommand::Case { command, .. } = &open else {
        panic!()
    };
    let (_, body) = encode_command(&open, ContentType::Postcard).unwrap();
    assert_eq!(body.as_ref(), &postcard::to_stdvec(command).unwrap()[1..]);
}

#[test]
fn a_command_naming_another_target_is_refused() {
    let DomainCommand::Case { command, .. } = samples::open_case() else {
        panic!()
    };
    let other = DomainCommand::case(docket_domain::values::CaseId(uuid::Uuid::nil()), command);
    for ct in [ContentType::Json, ContentType::Postcard] {
        assert_eq!(encode_command(&other, ct).unwrap_err().code, codes::INVALID);
    }
}

#[test]
fn every_decoding_failure_is_a_bad_request() {
    let close = |body: Value| serde_json::to_vec(&body).unwrap();
    let case = samples::case_id().to_string();
    for body in [
        close(json!({ "case": case, "reason": 5 })),
        close(json!({ "case": case })),
        close(json!({ "case": case, "reason": "x", "extra": 1 })),
        close(json!({ "case": 5, "reason": "x" })),
        close(json!("Close")),
        close(json!({ "Close": { "case": case, "reason": "x" } })),
        b"{".to_vec(),
    ] {
        let err = decode_command(CommandKind::CaseClose, ContentType::Json, &body).unwrap_err();
        assert_eq!(
            err.code,
            codes::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    let ok = close(json!({ "case": case, "reason": "x" }));
    assert!(decode_command(CommandKind::CaseClose, ContentType::Json, &ok).is_ok());
    // The same bytes under another command are refused too.
    assert!(decode_command(CommandKind::CaseOpen, ContentType::Json, &ok).is_err());
}

#[test]
fn content_types_are_read_from_the_header() {
    assert_eq!(ContentType::from_header(None).unwrap(), ContentType::Json);
    assert_eq!(
        ContentType::from_header(Some("application/postcard")).unwrap(),
        ContentType::Postcard
    );
    assert_eq!(
        ContentType::from_header(Some(" application/json ; charset=utf-8")).unwrap(),
        ContentType::Json
    );
    let err = ContentType::from_header(Some("application/xml")).unwrap_err();
    assert_eq!(err.code, codes::UNSUPPORTED_CONTENT_TYPE);
}

#[test]
fn errors_have_the_same_fields_in_json_and_postcard() {
    let err = BusError::new("whole_record_not_attested", "attest the whole record first")
        .with_details(json!({ "missing": ["criminal"], "n": 1 }));
    let text = serde_json::to_value(&err).unwrap();
    assert_eq!(
        text,
        json!({
            "code": "whole_record_not_attested",
            "message": "attest the whole record first",
            "details": { "missing": ["criminal"], "n": 1 },
        })
    );
    assert_eq!(serde_json::from_value::<BusError>(text).unwrap(), err);
    let bytes = postcard::to_stdvec(&err).unwrap();
    // Postcard: three strings, details as JSON text.
    let (code, message, details): (String, String, String) = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("whole_record_not_attested", "attest the whole record first")
    );
    assert_eq!(
        serde_json::from_str::<Value>(&details).unwrap(),
        err.details
    );
    assert_eq!(postcard::from_bytes::<BusError>(&bytes).unwrap(), err);
    // Details may be absent in JSON.
    let bare: BusError = serde_json::from_str(r#"{"code":"internal","message":"x"}"#).unwrap();
    assert_eq!(bare.details, json!({}));
    // Replies too.
    let reply = CommandReply {
        position: 12,
        revision: 9,
        events: vec!["case.opened".to_owned()],
        duplicate: false,
        receipt: None,
    };
    assert_eq!(
        serde_json::to_value(&reply).unwrap(),
        json!({ "position": 12, "revision": 9, "events": ["case.opened"], "duplicate": false }),
        "no receipt, no field in JSON"
    );
    let bytes = postcard::to_stdvec(&reply).unwrap();
    assert_eq!(postcard::from_bytes::<CommandReply>(&bytes).unwrap(), reply);
    // With a receipt: in both encodings.
    let with = CommandReply {
        receipt: Some(docket_bus::Receipt {
            position: 12,
            leaf_hash: "bGVhZg==".into(),
            commit_hash: "00ff".into(),
            tlog_proof: "c2sp.org/tlog-proof@v1\nindex 11\n\nnote".into(),
        }),
        ..reply
    };
    let value = serde_json::to_value(&with).unwrap();
    assert_eq!(value["receipt"]["position"], 12);
    assert_eq!(serde_json::from_value::<CommandReply>(value).unwrap(), with);
    let bytes = postcard::to_stdvec(&with).unwrap();
    assert_eq!(postcard::from_bytes::<CommandReply>(&bytes).unwrap(), with);
}

#[test]
fn codes_have_numeric_classes() {
    for (code, status) in [
        (codes::BAD_REQUEST, 400),
        (codes::UNSUPPORTED_CONTENT_TYPE, 400),
        (codes::UNKNOWN_COMMAND, 400),
        (codes::MISSING_ACTOR, 400),
        (codes::BAD_ACTOR, 400),
        (codes::UNAUTHENTICATED, 401),
        (codes::INVALID, 400),
        (codes::TOO_LARGE, 400),
        (codes::FORBIDDEN, 403),
        (codes::INVALID_STATE, 409),
        (codes::CONFLICT, 409),
        ("whole_record_not_attested", 409),
        (codes::UNAVAILABLE, 503),
        (codes::INTERNAL, 500),
    ] {
        assert_eq!(BusError::new(code, "m").status(), status, "{code}");
    }
    assert_eq!(codes::ALL.len(), 13);
}

#[test]
fn rejections_keep_their_codes() {
    let forbidden: BusError = Rejection::Forbidden {
        role: Role::Auditor,
        command: CommandKind::CaseOpen,
    }
    .into();
    assert_eq!(forbidden.code, "forbidden");
    assert_eq!(
        forbidden.details,
        json!({ "role": "auditor", "command": "case.open" })
    );
    let invalid: BusError = Rejection::Invalid(InvalidValue {
        field: "reason",
        problem: "must not be empty".to_owned(),
    })
    .into();
    assert_eq!(invalid.code, "invalid");
    assert_eq!(invalid.details["field"], "reason");
    assert_eq!(invalid.message, "invalid reason: must not be empty");
    let state: BusError = Rejection::state("the case is not open").into();
    assert_eq!(
        (state.code.as_str(), state.status()),
        ("invalid_state", 409)
    );
    let rule: BusError =
        Rejection::rule("departure_needs_approval", "a supervisor must approve").into();
    assert_eq!(rule.code, "departure_needs_approval");
    assert_eq!(rule.message, "a supervisor must approve");
    assert_eq!(rule.status(), 409);
}

#[test]
fn the_catalogue_is_reachable_from_a_command() {
    let close = DomainCommand::case(
        samples::case_id(),
        CaseCommand::Close {
            reason: "done".to_owned(),
        },
    );
    assert_eq!(close.service(), Service::Assessment);
    assert_eq!(close.subject(), "docket.cmd.assessment.case_close");
    assert_eq!(close.stream(), format!("case/{}", samples::case_id()));
    assert_eq!(spec(close.kind()).aggregate, AggregateKind::Case);
    assert_eq!(catalogue::endpoint_name(close.kind()), "case_close");
}
