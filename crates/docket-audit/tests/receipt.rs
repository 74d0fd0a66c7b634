//! Receipts: built from a running checkpointer over a file log, round-tripped through their
//! text (C2SP tlog-proof) and JSON forms, verified — and refused when the key, the position, the
//! leaf, a proof hash or a later checkpoint is wrong. One check recomputes the root from the
//! proof with RFC 9162's algorithm written out here, not with the crate's tree code. Receipts
//! from the cadence path, cosigned by two witnesses, verify with the log's public key alone, in
//! process and from the audit service over NATS.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use docket_audit::receipt::TLOG_PROOF_HEADER;
use docket_audit::{verify_receipt, AuditError, NoteError, Receipt, Tree};
use docket_log::EventLog;
use sha2::{Digest, Sha256};

use crate::cadence::{name, with_witnesses, Witness};
use crate::checkpointer::{all_commits, append, every, file_log, keys, start, started, within};

fn node(left: &[u8], right: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// RFC 9162 §2.1.3.2: the root that an inclusion proof leads to, or `None` if the proof does
/// not fit the index and size.
fn rfc9162_root(index: u64, size: u64, leaf: [u8; 32], proof: &[[u8; 32]]) -> Option<[u8; 32]> {
    if index >= size {
        return None;
    }
    let (mut fnode, mut snode, mut r) = (index, size - 1, leaf);
    for p in proof {
        if snode == 0 {
            return None;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    (snode == 0).then_some(r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_verify_and_tampering_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = file_log(dir.path()).await;
    let records = log.audit_records().unwrap();
    let (signer, verifier) = keys();
    append(&log, "rc", 20).await;
    // Receipts wait for the cadence: the checkpoint over the 20 commits and the cadence's
    // declaration (commit 21).
    let config = docket_audit::CheckpointerConfig::every(1000, Duration::from_millis(100));
    let running = start(
        config,
        log.clone(),
        records.clone(),
        &signer,
        &records.dir().join("tree"),
    );
    within("catch-up", running.handle.wait_for_size(21))
        .await
        .unwrap();
    let commits = all_commits(&log).await;
    let commit = &commits[6];
    assert_eq!(commit.position, 7);

    let receipt = within("a receipt", Receipt::build(&running.handle, commit))
        .await
        .unwrap();
    assert_eq!(receipt.position, 7);
    assert_eq!(receipt.commit_hash, commit.hash());
    receipt.check_commit(&commit.bytes).unwrap();
    assert!(receipt.check_commit(&commits[7].bytes).is_err());
    let verified = verify_receipt(&receipt, &verifier, None).unwrap();
    assert_eq!(verified.checkpoint.size, 21);
    assert_eq!(verified.position, 7);

    // The text form: C2SP tlog-proof, and back.
    let text = receipt.to_text();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(TLOG_PROOF_HEADER));
    let extra = lines.next().unwrap().strip_prefix("extra ").unwrap();
    let extra = BASE64.decode(extra).unwrap();
    assert_eq!(&extra[..32], &receipt.leaf_hash.0);
    assert_eq!(&extra[32..], &commit.hash().0);
    assert_eq!(lines.next(), Some("index 6"));
    for h in &receipt.proof {
        assert_eq!(lines.next(), Some(h.to_string().as_str()));
    }
    assert_eq!(lines.next(), Some(""));
    assert!(text.ends_with(&receipt.checkpoint));
    assert_eq!(Receipt::from_text(&text).unwrap(), receipt);

    // The JSON form carries the text and the fields, which must agree.
    let json = serde_json::to_value(&receipt).unwrap();
    assert_eq!(json["position"], 7);
    assert_eq!(json["commit_hash"], commit.hash().to_string());
    assert_eq!(json["leaf_hash"], receipt.leaf_hash.to_string());
    assert_eq!(json["tlog_proof"], text);
    let back: Receipt = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, receipt);
    let mut lying = json.clone();
    lying["position"] = 8.into();
    assert!(serde_json::from_value::<Receipt>(lying).is_err());

    // Independently of the tree code: RFC 9162 over the commit's bytes and the proof gives the
    // root in the checkpoint text.
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(&commit.bytes);
    let leaf: [u8; 32] = h.finalize().into();
    assert_eq!(leaf, receipt.leaf_hash.0);
    let proof: Vec<[u8; 32]> = receipt.proof.iter().map(|h| h.0).collect();
    let root = rfc9162_root(6, 21, leaf, &proof).unwrap();
    let note_lines: Vec<&str> = receipt.checkpoint.lines().collect();
    assert_eq!(note_lines[1], "21");
    assert_eq!(BASE64.decode(note_lines[2]).unwrap(), root.to_vec());
    assert_ne!(rfc9162_root(7, 21, leaf, &proof), Some(root));

    // Another key: the signature is refused.
    let (_, other) = keys();
    match verify_receipt(&receipt, &other, None) {
        Err(AuditError::Note(NoteError::Signature(_))) => {}
        other => panic!("expected a signature error, got {other:?}"),
    }
    // A changed position, a changed leaf, a tampered proof hash: not included.
    let expect_not_included = |r: &Receipt, what: &str| match verify_receipt(r, &verifier, None) {
        Err(AuditError::Receipt(reason)) => {
            assert!(
                reason.contains("is not in the checkpoint"),
                "{what}: {reason}"
            )
        }
        other => panic!("{what}: expected a refusal, got {other:?}"),
    };
    let mut moved = receipt.clone();
    moved.position = 8;
    expect_not_included(&moved, "position");
    let mut swapped = receipt.clone();
    swapped.leaf_hash = docket_audit::leaf_hash(&commits[7].bytes);
    expect_not_included(&swapped, "leaf");
    for i in 0..receipt.proof.len() {
        let mut tampered = receipt.clone();
        tampered.proof[i].0[0] ^= 1;
        expect_not_included(&tampered, "proof hash");
    }
    let mut short = receipt.clone();
    short.proof.pop();
    expect_not_included(&short, "short proof");
    let beyond = Receipt {
        position: 22,
        ..receipt.clone()
    };
    assert!(verify_receipt(&beyond, &verifier, None).is_err());
    // Text that is not a receipt.
    for bad in [
        "",
        "c2sp.org/tlog-proof@v2\nindex 1\n\nx\n",
        &text.replacen("index 6", "index 06", 1),
        &text.replacen("extra ", "extra !", 1),
        &text.replacen(&receipt.proof[0].to_string(), "AAAA", 1),
    ] {
        assert!(
            matches!(Receipt::from_text(bad), Err(AuditError::Receipt(_))),
            "{bad:?}"
        );
    }

    // A later checkpoint, consistent: the receipt still holds against it.
    append(&log, "rc", 9).await;
    let later = within("a later checkpoint", running.handle.checkpoint_covering(30))
        .await
        .unwrap();
    assert_eq!(later.checkpoint.size, 30);
    let consistency = running.handle.consistency_proof(21, 30).await.unwrap();
    let verified = verify_receipt(&receipt, &verifier, Some((&later.note, &consistency))).unwrap();
    assert_eq!(verified.later.unwrap().size, 30);

    // A later checkpoint of a history that rewrote commit 3, signed with the same key: refused.
    let mut forged = Tree::new();
    for c in &commits {
        if c.position == 3 {
            forged.push_commit(b"rewritten");
        } else {
            forged.push_commit(&c.bytes);
        }
    }
    for i in 0..9u32 {
        forged.push_commit(format!("forged {i}").as_bytes());
    }
    let forged_cp = signer.sign(30, forged.root()).unwrap();
    let forged_proof = forged.consistency_proof(21, 30).unwrap();
    for (note, proof) in [
        (&forged_cp.note, &forged_proof),
        (&forged_cp.note, &consistency),
        (&later.note, &forged_proof),
    ] {
        match verify_receipt(&receipt, &verifier, Some((note, proof))) {
            Err(AuditError::Receipt(reason)) => {
                assert!(reason.contains("not consistent"), "{reason}")
            }
            other => panic!("expected an inconsistency, got {other:?}"),
        }
    }
    // An "later" checkpoint that is older than the receipt's.
    let older = signer.sign(10, forged.root_at(10).unwrap()).unwrap();
    match verify_receipt(&receipt, &verifier, Some((&older.note, &[]))) {
        Err(AuditError::Receipt(reason)) => assert!(reason.contains("older"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Built from a tree and a checkpoint directly, the receipt is the same.
    let mut tree = Tree::new();
    for c in all_commits(&log).await {
        tree.push_commit(&c.bytes);
    }
    let checkpoint = verifier.open(&receipt.checkpoint).unwrap();
    assert_eq!(
        Receipt::from_tree(&tree, &checkpoint, commit).unwrap(),
        receipt
    );
    // The head commit, built on demand as well.
    let head = log.head().await.unwrap();
    let last = log.read_all(head - 1, 1).await.unwrap().remove(0);
    let r = Receipt::build(&running.handle, &last).await.unwrap();
    assert_eq!(Receipt::from_text(&r.to_text()).unwrap(), r);
    verify_receipt(&r, &verifier, None).unwrap();
    running.stop().await.unwrap();
}

#[test]
fn a_one_leaf_tree_has_an_empty_proof() {
    let (signer, verifier) = keys();
    let mut tree = Tree::new();
    tree.push_commit(b"only");
    let cp = signer.sign(1, tree.root()).unwrap();
    let receipt = Receipt {
        position: 1,
        leaf_hash: docket_audit::leaf_hash(b"only"),
        commit_hash: docket_log::CommitHash::of(b"only"),
        checkpoint: cp.note.clone(),
        proof: Vec::new(),
    };
    let text = receipt.to_text();
    assert!(text.contains("index 0\n\n"), "{text}");
    assert_eq!(Receipt::from_text(&text).unwrap(), receipt);
    verify_receipt(&receipt, &verifier, None).unwrap();
    assert_eq!(
        rfc9162_root(0, 1, receipt.leaf_hash.0, &[]),
        Some(tree.root().0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_from_the_cadence_path_verify_with_the_public_key_alone_in_process_and_over_nats()
{
    let server = tokio::task::spawn_blocking(docket_testkit::NatsServer::start)
        .await
        .unwrap();
    let log = docket_log::jetstream::JetStreamLog::connect_url(
        &server.url(),
        docket_log::jetstream::JetStreamConfig::default(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (signer, verifier) = keys();
    let w1 = Witness::start(&name("nats-one"), signer.vkey(), &dir.path().join("w1")).await;
    let w2 = Witness::start(&name("nats-two"), signer.vkey(), &dir.path().join("w2")).await;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let (handle, task) = docket_audit::Checkpointer::start(
        with_witnesses(
            every(1000, Duration::from_millis(100)),
            vec![w1.client(), w2.client()],
            2,
        ),
        log.clone(),
        docket_audit::CheckpointStore::new(docket_log::AnyRecords::JetStream(Box::new(
            log.audit_records().await.unwrap(),
        ))),
        signer,
        dir.path().join("tree"),
        shutdown,
    );
    started(&handle).await;
    // The audit service, answering over NATS from the same checkpointer.
    let audit = docket_bus::serve_nats(
        docket_bus::connect(&server.url(), "docket-audit")
            .await
            .unwrap(),
        docket_bus::Service::Audit,
        docket_node::VERSION,
        docket_node::AuditApi {
            checkpointer: handle.clone(),
            log: docket_log::AnyLog::JetStream(log.clone()),
            actors: docket_bus::token::TokenVerifier::refusing_all(),
        },
    )
    .await
    .unwrap();
    let wait = Duration::from_secs(10);
    let client = docket_bus::Client::unsigned(
        docket_bus::NatsTransport::new(
            docket_bus::connect(&server.url(), "receipts")
                .await
                .unwrap(),
        )
        .with_timeout(wait),
    );
    for i in 0..4 {
        let position = append(&log, &format!("nats-{i}"), 2).await;
        let commit = log.read_all(position - 1, 1).await.unwrap().remove(0);
        // In process: as a service in the checkpointer's process gets it.
        let local = within(
            "a receipt",
            Receipt::for_position(&handle, position, commit.hash()),
        )
        .await
        .unwrap();
        // Over NATS: as a service of its own gets it (docket.cmd.audit.receipt, with the hash
        // its append returned), and as anyone else does (the service reads the commit).
        let mut remote = Vec::new();
        for commit_hash in [Some(commit.hash().to_string()), None] {
            let answer = client
                .query(
                    None,
                    &docket_bus::ReceiptRequest {
                        position,
                        commit_hash,
                    },
                )
                .await
                .unwrap();
            let receipt: Receipt =
                serde_json::from_value(serde_json::to_value(answer).unwrap()).unwrap();
            remote.push(receipt);
        }
        for receipt in [&local, &remote[0], &remote[1]] {
            let verified = verify_receipt(receipt, &verifier, None).unwrap();
            assert_eq!(verified.position, position);
            assert!(verified.checkpoint.size >= position);
            receipt.check_commit(&commit.bytes).unwrap();
            w1.verifier().verify(&receipt.checkpoint).unwrap();
            w2.verifier().verify(&receipt.checkpoint).unwrap();
        }
    }
    // The checkpoint answer carries the witnesses as the checkpointer sees them (the
    // dashboard's integrity panel shows them).
    let latest = client
        .query(None, &docket_bus::CheckpointRequest { covering: None })
        .await
        .unwrap();
    assert_eq!(latest.cosignatures, 2, "{latest:?}");
    assert_eq!(latest.witness_quorum, 2, "{latest:?}");
    let witnesses = &latest.witnesses;
    assert_eq!(witnesses.len(), 2);
    assert_eq!(witnesses[0].name, w1.client().name());
    assert_eq!(witnesses[0].cosigned_size, Some(latest.size));
    assert_eq!(witnesses[1].refusals, 0);
    audit.stop().await.unwrap();
    stop.send(true).unwrap();
    within("the stop", task).await.unwrap().unwrap();
    w1.shutdown().await;
    w2.shutdown().await;
}
