//! Witnesses over real HTTP on 127.0.0.1: a `docket_audit::witness` server with its state in a
//! temporary directory, real Ed25519 keys made here, checkpoints signed over a real Merkle tree.
//! The witness cosigns growth backed by a consistency proof, and refuses — with the C2SP
//! tlog-witness status codes — rollbacks, forks, stale sizes, unknown origins, foreign keys and
//! malformed bodies, also after a restart, also under concurrent requests.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use docket_audit::note::generate_key;
use docket_audit::witness::{
    add_signature_lines, generate_witness_key, serve, CosignatureVerifier, WitnessClient,
    WitnessConfig, WitnessError, WitnessSigner,
};
use docket_audit::{CheckpointSigner, CheckpointVerifier, Tree};
use tokio::sync::watch;

const ORIGIN: &str = "docket.test/witnessed";
const TIMEOUT: Duration = Duration::from_secs(10);

/// A witness server running in this process.
struct Running {
    url: String,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start(skey: &str, log_vkeys: &[&str], state: &Path) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let config = WitnessConfig {
            signer: WitnessSigner::new(skey).unwrap(),
            log_vkeys: log_vkeys.iter().map(|k| k.to_string()).collect(),
            state_dir: state.to_owned(),
        };
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(async move { serve(listener, config, stopped).await.unwrap() });
        Running { url, stop, task }
    }

    async fn shutdown(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(TIMEOUT, self.task)
            .await
            .expect("the witness stops within the timeout")
            .unwrap();
    }
}

/// A log: its signer and its tree.
struct Log {
    signer: CheckpointSigner,
    tree: Tree,
}

impl Log {
    fn new() -> Log {
        let (skey, _) = generate_key(ORIGIN).unwrap();
        Log {
            signer: CheckpointSigner::new(&skey).unwrap(),
            tree: Tree::new(),
        }
    }

    fn vkey(&self) -> &str {
        self.signer.vkey()
    }

    /// Appends `n` commits named after `tag`.
    fn grow(&mut self, tag: &str, n: u64) {
        for i in 0..n {
            self.tree.push_commit(format!("{tag} {i}").as_bytes());
        }
    }

    /// The signed checkpoint of the tree as it stands.
    fn note(&self) -> String {
        self.signer
            .sign(self.tree.size(), self.tree.root())
            .unwrap()
            .note
    }

    /// The consistency proof from `old` to the tree as it stands (empty from 0).
    fn proof(&self, old: u64) -> Vec<docket_audit::tree::Hash> {
        if old == 0 {
            Vec::new()
        } else {
            self.tree.consistency_proof(old, self.tree.size()).unwrap()
        }
    }

    /// `add-checkpoint` of the tree as it stands, from `old`.
    async fn submit(&self, witness: &WitnessClient, old: u64) -> Result<String, WitnessError> {
        witness
            .add_checkpoint(old, &self.proof(old), &self.note(), TIMEOUT)
            .await
    }
}

/// A witness key pair and its client for `url`.
fn witness_key(name: &str) -> (String, String) {
    generate_witness_key(name).unwrap()
}

/// A POST: (status, content type, body).
async fn post_raw(url: &str, path: &str, body: &[u8]) -> (u16, String, String) {
    let answer =
        docket_testkit::http::try_request("POST", &format!("{url}{path}"), &[], body, TIMEOUT)
            .await
            .unwrap();
    let content_type = answer.header("content-type").unwrap_or_default().to_owned();
    (answer.status, content_type, answer.text())
}

fn status_of(result: Result<String, WitnessError>) -> u16 {
    match result {
        Ok(_) => 200,
        Err(WitnessError::Conflict { .. }) => 409,
        Err(WitnessError::Refused { status, .. }) => status,
        Err(other) => panic!("not an HTTP refusal: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_cosigns_growth_proved_consistent() {
    let state = tempfile::tempdir().unwrap();
    let (skey, vkey) = witness_key("witness.test/w1");
    let mut log = Log::new();
    let server = Running::start(&skey, &[log.vkey()], state.path()).await;
    let client = WitnessClient::new(&server.url, &vkey).unwrap();
    assert_eq!(client.name(), "witness.test/w1");
    let verifier = CosignatureVerifier::new(&vkey).unwrap();

    // First contact: old 0, no proof.
    log.grow("a", 5);
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let line = log.submit(&client, 0).await.unwrap();
    assert!(line.starts_with("\u{2014} witness.test/w1 "), "{line}");
    let cosigned = add_signature_lines(&log.note(), &[line]).unwrap();
    let time = verifier.verify(&cosigned).unwrap();
    assert!(time >= before && time <= before + 60, "timestamp {time}");
    // The log's key alone still opens the cosigned checkpoint.
    let opened = CheckpointVerifier::new(log.vkey())
        .unwrap()
        .open(&cosigned)
        .unwrap();
    assert_eq!(opened.checkpoint.size, 5);

    // Growth 5 → 12 with a valid proof, then 12 → 40.
    log.grow("a", 7);
    let line = log.submit(&client, 5).await.unwrap();
    verifier
        .verify(&add_signature_lines(&log.note(), &[line]).unwrap())
        .unwrap();
    log.grow("a", 28);
    log.submit(&client, 12).await.unwrap();
    // The same checkpoint again: cosigned again (nothing changes).
    log.submit(&client, 40).await.unwrap();
    // A cosignature over one checkpoint does not verify over another.
    let line = log.submit(&client, 40).await.unwrap();
    let mut other = Log::new();
    other.grow("a", 40);
    assert!(verifier
        .verify(&add_signature_lines(&other.note(), &[line]).unwrap())
        .is_err());

    // A client expecting another witness key refuses the (valid) answer.
    let (_, stranger) = witness_key("witness.test/w1");
    let wrong = WitnessClient::new(&server.url, &stranger).unwrap();
    match log.submit(&wrong, 40).await {
        Err(WitnessError::BadResponse(_)) => {}
        other => panic!("expected BadResponse, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_refuses_rollbacks_forks_and_stale_sizes() {
    let state = tempfile::tempdir().unwrap();
    let (skey, vkey) = witness_key("witness.test/w1");
    let mut log = Log::new();
    let server = Running::start(&skey, &[log.vkey()], state.path()).await;
    let client = WitnessClient::new(&server.url, &vkey).unwrap();
    log.grow("a", 8);
    let small = Log {
        signer: log.signer.clone(),
        tree: log.tree.clone(),
    };
    log.grow("a", 12);
    log.submit(&client, 0).await.unwrap();

    // Rollback: the size-8 checkpoint, from the size the client believes (0, then 8), or
    // claiming the witness's own size, which exceeds the checkpoint's.
    assert_eq!(
        small.submit(&client, 0).await,
        Err(WitnessError::Conflict { size: 20 })
    );
    assert_eq!(
        small.submit(&client, 8).await,
        Err(WitnessError::Conflict { size: 20 })
    );
    let rollback = small
        .signer
        .sign(small.tree.size(), small.tree.root())
        .unwrap()
        .note;
    assert_eq!(
        status_of(client.add_checkpoint(20, &[], &rollback, TIMEOUT).await),
        400
    );

    // Fork at the same size: another root of size 20 (409, as the spec says for equal sizes).
    let mut fork = Log {
        signer: log.signer.clone(),
        tree: small.tree.clone(),
    };
    fork.grow("b", 12);
    assert_eq!(fork.tree.size(), 20);
    assert_eq!(
        fork.submit(&client, 0).await,
        Err(WitnessError::Conflict { size: 20 })
    );
    // From the witness's own size the 409 names that size: the client calls it a fork, not a
    // stale size to retry from.
    match fork.submit(&client, 20).await {
        Err(WitnessError::Refused { status: 409, body }) => {
            assert!(body.contains("fork"), "{body}")
        }
        other => panic!("expected a fork refusal, got {other:?}"),
    }
    let (status, content_type, text) = post_raw(
        &server.url,
        "/add-checkpoint",
        docket_audit::witness::client::request_body(20, &[], &fork.note()).as_bytes(),
    )
    .await;
    assert_eq!(
        (status, content_type.as_str(), text.as_str()),
        (409, "text/x.tlog.size", "20\n")
    );
    // Fork that grows: size 30 not extending the cosigned 20, with the fork's own proof from 20,
    // and with the honest tree's proof: 422 either way.
    fork.grow("b", 10);
    assert_eq!(status_of(fork.submit(&client, 20).await), 422);
    let mut honest = Log {
        signer: log.signer.clone(),
        tree: log.tree.clone(),
    };
    honest.grow("a", 10);
    let honest_proof = honest.proof(20);
    assert_eq!(
        status_of(
            client
                .add_checkpoint(20, &honest_proof, &fork.note(), TIMEOUT)
                .await
        ),
        422
    );
    // A proof from the empty tree must be empty.
    let fresh_state = tempfile::tempdir().unwrap();
    let fresh = Running::start(&skey, &[log.vkey()], fresh_state.path()).await;
    let fresh_client = WitnessClient::new(&fresh.url, &vkey).unwrap();
    assert_eq!(
        status_of(
            fresh_client
                .add_checkpoint(0, &honest_proof, &honest.note(), TIMEOUT)
                .await
        ),
        422
    );
    fresh.shutdown().await;

    // Stale old: the client thinks 8; the witness says 20; from 20 it succeeds.
    let stale = honest.submit(&client, 8).await;
    let Err(WitnessError::Conflict { size }) = stale else {
        panic!("expected 409, got {stale:?}");
    };
    assert_eq!(size, 20);
    honest.submit(&client, size).await.unwrap();
    // Nothing above moved the witness off the honest tree.
    assert_eq!(
        fork.submit(&client, 0).await,
        Err(WitnessError::Conflict { size: 30 })
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_refuses_unknown_origins_foreign_keys_and_malformed_bodies() {
    let state = tempfile::tempdir().unwrap();
    let (skey, vkey) = witness_key("witness.test/w1");
    let mut log = Log::new();
    let server = Running::start(&skey, &[log.vkey()], state.path()).await;
    let client = WitnessClient::new(&server.url, &vkey).unwrap();
    log.grow("a", 3);

    // An origin the witness does not witness.
    let (other_skey, _) = generate_key("docket.test/elsewhere").unwrap();
    let mut elsewhere = Log {
        signer: CheckpointSigner::new(&other_skey).unwrap(),
        tree: Tree::new(),
    };
    elsewhere.grow("a", 3);
    assert_eq!(status_of(elsewhere.submit(&client, 0).await), 404);
    // The right origin, signed by another key of the same name.
    let (impostor_skey, _) = generate_key(ORIGIN).unwrap();
    let impostor = Log {
        signer: CheckpointSigner::new(&impostor_skey).unwrap(),
        tree: log.tree.clone(),
    };
    assert_eq!(status_of(impostor.submit(&client, 0).await), 403);
    // The log's signature line over another checkpoint (a forged size).
    let forged = log.note().replacen("\n3\n", "\n4\n", 1);
    assert_eq!(
        status_of(client.add_checkpoint(0, &[], &forged, TIMEOUT).await),
        403
    );

    // Malformed bodies: 400 with a reason; the 409 carries its size as text/x.tlog.size.
    let note = log.note();
    let bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"old 0\n".to_vec(),
        format!("old 00\n\n{note}").into_bytes(),
        format!("old x\n\n{note}").into_bytes(),
        format!("0\n\n{note}").into_bytes(),
        format!("old 0\nnot-a-hash\n\n{note}").into_bytes(),
        format!("old 0\n{note}").into_bytes(),
        b"old 0\n\nno note here\n".to_vec(),
        b"old 0\n\nnot a checkpoint\n\n\xe2\x80\x94 x AAAAAAAA\n".to_vec(),
        format!("old 9\n\n{note}").into_bytes(),
        vec![0xff, 0xfe, b'\n', b'\n'],
    ];
    for body in &bodies {
        let (status, _, text) = post_raw(&server.url, "/add-checkpoint", body).await;
        assert_eq!(status, 400, "{:?} → {text}", String::from_utf8_lossy(body));
        assert!(!text.is_empty());
    }
    // One byte over the limit, so the server reads the whole body before it refuses it.
    let too_big = vec![b'a'; docket_audit::witness::server::MAX_REQUEST_BODY + 1];
    let (status, _, _) = post_raw(&server.url, "/add-checkpoint", &too_big).await;
    assert_eq!(status, 413);
    let (status, _, _) = post_raw(&server.url, "/elsewhere", b"").await;
    assert_eq!(status, 404);

    // Still serving, and none of the above moved its state.
    log.submit(&client, 0).await.unwrap();
    let (status, content_type, text) = post_raw(
        &server.url,
        "/add-checkpoint",
        format!("old 0\n\n{note}").as_bytes(),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(content_type, "text/x.tlog.size");
    assert_eq!(text, "3\n");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_witness_keeps_its_state() {
    let state = tempfile::tempdir().unwrap();
    let (skey, vkey) = witness_key("witness.test/w1");
    let mut log = Log::new();
    log.grow("a", 6);
    let early = Log {
        signer: log.signer.clone(),
        tree: log.tree.clone(),
    };
    log.grow("a", 10);
    let server = Running::start(&skey, &[log.vkey()], state.path()).await;
    let client = WitnessClient::new(&server.url, &vkey).unwrap();
    log.submit(&client, 0).await.unwrap();
    server.shutdown().await;

    let server = Running::start(&skey, &[log.vkey()], state.path()).await;
    let client = WitnessClient::new(&server.url, &vkey).unwrap();
    // After the restart: the rollback to 6 is refused, the witness remembers 16.
    assert_eq!(
        early.submit(&client, 0).await,
        Err(WitnessError::Conflict { size: 16 })
    );
    assert_eq!(
        early.submit(&client, 6).await,
        Err(WitnessError::Conflict { size: 16 })
    );
    log.grow("a", 4);
    log.submit(&client, 16).await.unwrap();
    server.shutdown().await;

    // A damaged state file stops the witness from starting rather than forgetting.
    let file = std::fs::read_dir(state.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "state"))
        .unwrap();
    std::fs::write(&file, "garbage").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (_stop, stopped) = watch::channel(false);
    let config = WitnessConfig {
        signer: WitnessSigner::new(&skey).unwrap(),
        log_vkeys: vec![log.vkey().to_owned()],
        state_dir: state.path().to_owned(),
    };
    assert!(serve(listener, config, stopped).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_shown_to_two_witnesses_gets_no_quorum_on_either_branch() {
    let (s1, v1) = witness_key("witness.test/w1");
    let (s2, v2) = witness_key("witness.test/w2");
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut common = Log::new();
    let w1 = Running::start(&s1, &[common.vkey()], d1.path()).await;
    let w2 = Running::start(&s2, &[common.vkey()], d2.path()).await;
    let c1 = WitnessClient::new(&w1.url, &v1).unwrap();
    let c2 = WitnessClient::new(&w2.url, &v2).unwrap();
    common.grow("shared", 4);
    common.submit(&c1, 0).await.unwrap();
    common.submit(&c2, 0).await.unwrap();

    // The log forks after 4: branch A shown to w1 first, branch B to w2 first.
    let fork = |tag: &str| {
        let mut log = Log {
            signer: common.signer.clone(),
            tree: common.tree.clone(),
        };
        log.grow(tag, 9);
        log
    };
    let (a, b) = (fork("a"), fork("b"));
    let line_a = a.submit(&c1, 4).await.unwrap();
    let line_b = b.submit(&c2, 4).await.unwrap();
    // Each witness refuses the other branch (same size, another root), whatever `old` says.
    for (branch, client) in [(&b, &c1), (&a, &c2)] {
        for old in [0, 4] {
            let refused = branch.submit(client, old).await;
            assert_eq!(
                refused,
                Err(WitnessError::Conflict { size: 13 }),
                "old {old}"
            );
        }
        assert_eq!(status_of(branch.submit(client, 13).await), 409);
    }
    // Neither branch's note reaches a quorum of 2, even with both lines pasted on.
    let verifiers = [
        CosignatureVerifier::new(&v1).unwrap(),
        CosignatureVerifier::new(&v2).unwrap(),
    ];
    let all = [line_a, line_b];
    for branch in [&a, &b] {
        let mut note = branch.note();
        for line in &all {
            if let Ok(with) = add_signature_lines(&note, std::slice::from_ref(line)) {
                note = with;
            }
        }
        let cosigners = verifiers.iter().filter(|v| v.verify(&note).is_ok()).count();
        assert_eq!(cosigners, 1, "exactly one witness per branch:\n{note}");
    }
    // Grown further, the branches stay apart: w1 takes A's growth, refuses B's (422).
    let (mut a2, mut b2) = (a, b);
    a2.grow("a", 3);
    b2.grow("b", 3);
    a2.submit(&c1, 13).await.unwrap();
    assert_eq!(status_of(b2.submit(&c1, 16).await), 409);
    assert_eq!(status_of(b2.submit(&c2, 13).await), 200);
    assert_eq!(status_of(a2.submit(&c2, 16).await), 409);
    w1.shutdown().await;
    w2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submissions_never_get_two_inconsistent_trees_cosigned() {
    let state = tempfile::tempdir().unwrap();
    let (skey, vkey) = witness_key("witness.test/w1");
    let mut base = Log::new();
    let server = Running::start(&skey, &[base.vkey()], state.path()).await;
    let client = Arc::new(WitnessClient::new(&server.url, &vkey).unwrap());
    base.grow("shared", 4);
    base.submit(&client, 0).await.unwrap();
    let base = Arc::new(base);

    // Two branches, each submitted by 4 tasks at growing sizes; every task follows the
    // protocol: on 409 it retries once from the size the witness names, if its tree has it.
    let mut tasks = Vec::new();
    for branch in ["a", "b"] {
        for task in 0..4u64 {
            let (client, base) = (client.clone(), base.clone());
            let branch = branch.to_owned();
            tasks.push(tokio::spawn(async move {
                let mut won = Vec::new();
                for step in 1..=6u64 {
                    let mut log = Log {
                        signer: base.signer.clone(),
                        tree: base.tree.clone(),
                    };
                    log.grow(&branch, step * 4 + task);
                    let mut old = 4;
                    for _ in 0..2 {
                        match log.submit(&client, old).await {
                            Ok(line) => {
                                won.push((branch.clone(), log.tree.clone(), line));
                                break;
                            }
                            Err(WitnessError::Conflict { size }) if size <= log.tree.size() => {
                                old = size;
                            }
                            Err(_) => break,
                        }
                    }
                }
                won
            }));
        }
    }
    let mut won = Vec::new();
    for task in tasks {
        won.extend(task.await.unwrap());
    }
    assert!(!won.is_empty(), "some submission succeeded");
    // Every pair of cosigned trees is consistent: the smaller is a prefix of the larger.
    for (i, (_, x, _)) in won.iter().enumerate() {
        for (_, y, _) in &won[i + 1..] {
            let (small, large) = if x.size() <= y.size() { (x, y) } else { (y, x) };
            assert_eq!(
                large.root_at(small.size()).unwrap(),
                small.root(),
                "two inconsistent trees were cosigned (sizes {} and {})",
                small.size(),
                large.size()
            );
        }
    }
    let branches: std::collections::BTreeSet<&str> =
        won.iter().map(|(b, _, _)| b.as_str()).collect();
    assert_eq!(
        branches.len(),
        1,
        "only one branch was cosigned: {branches:?}"
    );
    // And each returned line verifies over its own checkpoint.
    let verifier = CosignatureVerifier::new(&vkey).unwrap();
    for (_, tree, line) in &won {
        let note = base.signer.sign(tree.size(), tree.root()).unwrap().note;
        verifier
            .verify(&add_signature_lines(&note, std::slice::from_ref(line)).unwrap())
            .unwrap();
    }
    server.shutdown().await;
}
