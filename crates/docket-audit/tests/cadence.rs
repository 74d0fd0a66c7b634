//! The checkpointer's final checkpoint at a clean stop, and its witnesses: real
//! `docket_audit::witness` servers on 127.0.0.1 with their state on disk, real keys made here,
//! over a file log (and a JetStream log on a real nats-server for the final checkpoint). Two
//! witnesses cosign every checkpoint and receipts carry both; a witness that is down or silent
//! does not stop the checkpoints and shows in the status and the metrics; a witness shown a
//! rolled-back log refuses, and that is an alarm, not a retry loop.

use std::path::Path;
use std::time::Duration;

use docket_audit::witness::{
    generate_witness_key, serve, CosignatureVerifier, WitnessClient, WitnessConfig, WitnessSigner,
};
use docket_audit::{
    verify_receipt, CheckpointStore, CheckpointVerifier, CheckpointerConfig, CheckpointerHandle,
    CheckpointerStatus, Receipt, SignedCheckpoint,
};
use docket_log::jetstream::{JetStreamConfig, JetStreamLog};
use docket_log::{EventLog, Records};
use docket_testkit::NatsServer;
use tokio::sync::watch;

use crate::checkpointer::{all_commits, append, every, file_log, keys, start, started, within};
use crate::export_verify::copy_dir;

/// A witness server in this process.
pub struct Witness {
    url: String,
    vkey: String,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Witness {
    /// A witness named `name` for the logs of `log_vkey`, its state in `state`.
    pub async fn start(name: &str, log_vkey: &str, state: &Path) -> Witness {
        let (skey, vkey) = generate_witness_key(name).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let config = WitnessConfig {
            signer: WitnessSigner::new(&skey).unwrap(),
            log_vkeys: vec![log_vkey.to_owned()],
            state_dir: state.to_owned(),
        };
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(async move { serve(listener, config, stopped).await.unwrap() });
        Witness {
            url,
            vkey,
            stop,
            task,
        }
    }

    pub fn client(&self) -> WitnessClient {
        WitnessClient::new(&self.url, &self.vkey).unwrap()
    }

    pub fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier::new(&self.vkey).unwrap()
    }

    pub async fn shutdown(self) {
        self.stop.send(true).unwrap();
        within("the witness to stop", self.task).await.unwrap();
    }
}

/// A unique witness name.
pub fn name(what: &str) -> String {
    format!("witness.test/{what}-{:08x}", rand::random::<u32>())
}

pub fn with_witnesses(
    config: CheckpointerConfig,
    witnesses: Vec<WitnessClient>,
    quorum: usize,
) -> CheckpointerConfig {
    CheckpointerConfig {
        witnesses,
        witness_quorum: quorum,
        witness_timeout: Duration::from_millis(500),
        witness_backoff: Duration::from_millis(200),
        ..config
    }
}

/// Waits until the checkpointer's status satisfies `f`.
async fn status_until(
    handle: &CheckpointerHandle,
    what: &str,
    f: impl Fn(&CheckpointerStatus) -> bool,
) -> CheckpointerStatus {
    let mut status = handle.watch_status();
    let found = within(what, status.wait_for(|s| f(s)))
        .await
        .unwrap()
        .clone();
    found
}

/// Appends `n` commits and stops the checkpointer at once, without waiting for it to see them:
/// its final checkpoint covers the head anyway, and a request waiting for the last commit gets
/// it.
async fn final_checkpoint_covers_the_head<L, R>(log: L, records: R, tree_dir: &Path)
where
    L: EventLog + Clone + 'static,
    R: Records + Clone + 'static,
{
    let (signer, verifier) = keys();
    let (stop, shutdown) = watch::channel(false);
    // A cadence that never comes round in this test.
    let (handle, task) = docket_audit::Checkpointer::start(
        every(1_000_000, Duration::from_secs(3600)),
        log.clone(),
        CheckpointStore::new(records.clone()),
        signer,
        tree_dir.to_owned(),
        shutdown,
    );
    assert_eq!(started(&handle).await, 1);
    let head = append(&log, "tail", 7).await;
    assert_eq!(head, 8);
    let waiter = {
        let handle = handle.clone();
        tokio::spawn(async move { handle.checkpoint_covering(8).await })
    };
    let store = CheckpointStore::new(records);
    assert_eq!(
        store.latest(None).await.unwrap(),
        None,
        "nothing signed yet"
    );
    stop.send(true).unwrap();
    within("the stop", task).await.unwrap().unwrap();
    let last = store.latest(Some(&verifier)).await.unwrap().unwrap();
    assert_eq!(last.signed.checkpoint.size, head);
    assert_eq!(
        within("the waiter", waiter).await.unwrap().unwrap(),
        last.signed
    );
    let mut tree = docket_audit::Tree::new();
    for c in log.read_all(0, usize::MAX).await.unwrap() {
        tree.push_commit(&c.bytes);
    }
    assert_eq!(last.signed.checkpoint.root, tree.root());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_signs_a_final_checkpoint_over_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let log = file_log(&dir.path().join("log")).await;
    let records = log.audit_records().unwrap();
    final_checkpoint_covers_the_head(log.clone(), records.clone(), &records.dir().join("tree"))
        .await;
    // An export taken now has no unsigned tail: its last checkpoint is of its head.
    let notes: Vec<String> = CheckpointStore::new(records)
        .all(None)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.signed.note)
        .collect();
    let out = dir.path().join("export");
    let options = docket_audit::export::ExportOptions {
        checkpoints: &notes,
        proofs: &[],
        upto: None,
        signer: None,
    };
    let summary = docket_audit::export(&log, &options, &out, |_, _| {})
        .await
        .unwrap();
    assert_eq!(
        (summary.manifest.head, summary.manifest.checkpoints),
        (8, 1)
    );
    assert!(out
        .join("checkpoints")
        .join(docket_audit::export::checkpoint_file_name(8))
        .exists());

    let server = tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap();
    let log = JetStreamLog::connect_url(&server.url(), JetStreamConfig::default())
        .await
        .unwrap();
    let records = log.audit_records().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    final_checkpoint_covers_the_head(log, records, cache.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_witnesses_cosign_every_checkpoint_and_receipts_carry_both() {
    let dir = tempfile::tempdir().unwrap();
    let log = file_log(&dir.path().join("log")).await;
    let records = log.audit_records().unwrap();
    let (signer, verifier) = keys();
    let w1 = Witness::start(&name("one"), signer.vkey(), &dir.path().join("w1")).await;
    let w2 = Witness::start(&name("two"), signer.vkey(), &dir.path().join("w2")).await;
    let config = with_witnesses(
        every(1000, Duration::from_millis(100)),
        vec![w1.client(), w2.client()],
        2,
    );
    let tree_dir = records.dir().join("tree");
    let running = start(config, log.clone(), records.clone(), &signer, &tree_dir);
    started(&running.handle).await;
    let mut receipts = Vec::new();
    for i in 0..6 {
        let head = append(&log, &format!("w{i}"), 3).await;
        let commit = log.read_all(head - 1, 1).await.unwrap().remove(0);
        receipts.push(
            within("a receipt", Receipt::build(&running.handle, &commit))
                .await
                .unwrap(),
        );
    }
    for receipt in &receipts {
        // The log's key alone verifies it; it carries both witnesses' cosignatures.
        verify_receipt(receipt, &verifier, None).unwrap();
        w1.verifier().verify(&receipt.checkpoint).unwrap();
        w2.verifier().verify(&receipt.checkpoint).unwrap();
        let back = Receipt::from_text(&receipt.to_text()).unwrap();
        assert_eq!(&back, receipt);
    }
    let status = running.handle.status();
    assert_eq!((status.cosignatures, status.witness_quorum), (2, 2));
    let size = status.latest.as_ref().unwrap().checkpoint.size;
    for w in &status.witnesses {
        assert_eq!(w.cosigned_size, Some(size), "{w:?}");
        assert_eq!((w.refusals, w.failures, w.alarm), (0, 0, false), "{w:?}");
        assert!(w.last_error.is_none(), "{w:?}");
        assert_eq!(w.cosignatures, status.signed, "{w:?}");
        assert_eq!(
            running.metric(&format!(
                "docket_witness_cosigned_size{{witness=\"{}\"}}",
                w.name
            )),
            Some(size as f64)
        );
    }
    running.stop().await.unwrap();
    // Every stored note carries both cosignatures and opens with the log's key.
    let stored = CheckpointStore::new(records.clone())
        .all(Some(&verifier))
        .await
        .unwrap();
    assert!(stored.len() >= 2);
    for c in &stored {
        w1.verifier().verify(&c.signed.note).unwrap();
        w2.verifier().verify(&c.signed.note).unwrap();
    }

    // A run without witnesses signs on (its notes carry none)...
    let running = start(
        every(1000, Duration::from_millis(100)),
        log.clone(),
        records.clone(),
        &signer,
        &tree_dir,
    );
    started(&running.handle).await;
    let head = append(&log, "unwitnessed", 4).await;
    let plain = within("a checkpoint", running.handle.checkpoint_covering(head))
        .await
        .unwrap();
    assert!(w1.verifier().verify(&plain.note).is_err());
    running.stop().await.unwrap();
    // ...and the next run with them starts from nothing they cosigned: each answers 409 with
    // the size it holds, the checkpointer sends once more from there, and both cosign.
    let config = with_witnesses(
        every(1000, Duration::from_millis(100)),
        vec![w1.client(), w2.client()],
        2,
    );
    let running = start(config, log.clone(), records.clone(), &signer, &tree_dir);
    started(&running.handle).await;
    let head = append(&log, "witnessed-again", 2).await;
    let again = within("a checkpoint", running.handle.checkpoint_covering(head))
        .await
        .unwrap();
    w1.verifier().verify(&again.note).unwrap();
    w2.verifier().verify(&again.note).unwrap();
    let status = running.handle.status();
    assert!(status
        .witnesses
        .iter()
        .all(|w| w.failures == 0 && w.refusals == 0));
    running.stop().await.unwrap();
    w1.shutdown().await;
    w2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_down_or_silent_holds_up_nothing_and_shows_in_the_status() {
    let dir = tempfile::tempdir().unwrap();
    let log = file_log(&dir.path().join("log")).await;
    let records = log.audit_records().unwrap();
    let (signer, verifier) = keys();
    let up = Witness::start(&name("up"), signer.vkey(), &dir.path().join("up")).await;
    // Down: nothing listens on its port. Silent: it accepts connections and never answers.
    let down_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (_, down_vkey) = generate_witness_key(&name("down")).unwrap();
    let (_, silent_vkey) = generate_witness_key(&name("silent")).unwrap();
    let down = WitnessClient::new(&format!("http://127.0.0.1:{down_port}"), &down_vkey).unwrap();
    let quiet = WitnessClient::new(
        &format!("http://{}", silent.local_addr().unwrap()),
        &silent_vkey,
    )
    .unwrap();
    let (down_name, quiet_name) = (down.name().to_owned(), quiet.name().to_owned());
    let config = with_witnesses(
        every(1000, Duration::from_millis(50)),
        vec![up.client(), down, quiet],
        2,
    );
    let running = start(
        config,
        log.clone(),
        records.clone(),
        &signer,
        &records.dir().join("tree"),
    );
    started(&running.handle).await;
    // Commands go on, each with a checkpoint of the cadence, cosigned by the one that answers.
    for i in 0..20 {
        let head = append(&log, &format!("d{i}"), 1).await;
        let cp = within("a checkpoint", running.handle.checkpoint_covering(head))
            .await
            .unwrap();
        verifier.open(&cp.note).unwrap();
        up.verifier().verify(&cp.note).unwrap();
    }
    let status = running.handle.status();
    assert_eq!((status.cosignatures, status.witness_quorum), (1, 2));
    let by_name = |n: &str| {
        status
            .witnesses
            .iter()
            .find(|w| w.name == n)
            .unwrap()
            .clone()
    };
    for (n, error) in [(&down_name, "unreachable"), (&quiet_name, "no answer")] {
        let w = by_name(n);
        assert!(w.failures >= 1, "{w:?}");
        assert!(!w.alarm && w.refusals == 0, "{w:?}");
        assert_eq!(w.cosigned_size, None);
        let last = w.last_error.clone().unwrap();
        assert!(last.contains(error), "{n}: {last}");
        // Resting between tries: far fewer tries than checkpoints.
        assert!(
            w.failures < status.signed,
            "{n}: {} failures for {} checkpoints",
            w.failures,
            status.signed
        );
        assert_eq!(
            running.metric(&format!("docket_witness_up{{witness=\"{n}\"}}")),
            Some(0.0)
        );
        assert_eq!(
            running.metric(&format!("docket_witness_failures_total{{witness=\"{n}\"}}")),
            Some(w.failures as f64)
        );
    }
    running.stop().await.unwrap();
    drop(silent);
    up.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_shown_a_rolled_back_log_refuses_and_it_is_an_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let (signer, verifier) = keys();
    let witness = Witness::start(&name("rollback"), signer.vkey(), &dir.path().join("w")).await;
    // The log as it was at 10 commits, kept aside.
    let real_dir = dir.path().join("real");
    let real = file_log(&real_dir).await;
    append(&real, "real", 10).await;
    real.close().await.unwrap();
    drop(real);
    for copy in ["forked", "truncated"] {
        copy_dir(&real_dir, &dir.path().join(copy));
    }
    // The real log goes on to 31 commits, every checkpoint witnessed.
    let real = file_log(&real_dir).await;
    let records = real.audit_records().unwrap();
    let config = with_witnesses(
        every(1000, Duration::from_millis(100)),
        vec![witness.client()],
        1,
    );
    let running = start(
        config,
        real.clone(),
        records.clone(),
        &signer,
        &records.dir().join("tree"),
    );
    started(&running.handle).await;
    let head = append(&real, "real-more", 20).await;
    let cp = within("a checkpoint", running.handle.checkpoint_covering(head))
        .await
        .unwrap();
    assert_eq!(cp.checkpoint.size, 31);
    witness.verifier().verify(&cp.note).unwrap();
    running.stop().await.unwrap();

    // Rolled back to 10 commits and rewritten from there, with the same key: at 50 commits it
    // is bigger than what the witness cosigned, but not consistent with it.
    let forked = file_log(&dir.path().join("forked")).await;
    append(&forked, "rewritten", 39).await;
    let alarm = rolled_back(&forked, &signer, &verifier, &witness, "forked").await;
    assert!(alarm.contains("422"), "{alarm}");
    // Rolled back to 10 and grown a little: smaller than what the witness cosigned.
    let truncated = file_log(&dir.path().join("truncated")).await;
    append(&truncated, "regrown", 4).await;
    let alarm = rolled_back(&truncated, &signer, &verifier, &witness, "truncated").await;
    assert!(
        alarm.contains("cosigned size 31") && alarm.contains("rolled back"),
        "{alarm}"
    );
    witness.shutdown().await;
}

/// Runs a checkpointer with `witness` over a log that rolled back what the witness cosigned:
/// the witness refuses, that is an alarm (status, metrics), it is not asked again at once, and
/// the checkpoints go on without its cosignature. Returns the alarm.
async fn rolled_back(
    log: &docket_log::file::FileLog,
    signer: &docket_audit::CheckpointSigner,
    verifier: &CheckpointVerifier,
    witness: &Witness,
    what: &str,
) -> String {
    let records = log.audit_records().unwrap();
    let client = witness.client();
    let witness_name = client.name().to_owned();
    let config = CheckpointerConfig {
        // A long rest after a refusal: 32 × 1 s.
        witness_backoff: Duration::from_secs(1),
        ..with_witnesses(every(1000, Duration::from_millis(50)), vec![client], 1)
    };
    let running = start(
        config,
        log.clone(),
        records.clone(),
        signer,
        &records.dir().join("tree"),
    );
    let status = status_until(&running.handle, "the refusal", |s| {
        s.witnesses[0].refusals > 0
    })
    .await;
    let w = &status.witnesses[0];
    assert!(w.alarm && w.resting, "{what}: {w:?}");
    assert_eq!(w.failures, 0, "{what}: {w:?}");
    let alarm = w.last_error.clone().unwrap();
    // The checkpoints go on, without its cosignature, and it is not asked again for now.
    for i in 0..5 {
        let head = append(log, &format!("{what}-after-{i}"), 1).await;
        let cp: SignedCheckpoint = within("a checkpoint", running.handle.checkpoint_covering(head))
            .await
            .unwrap();
        verifier.open(&cp.note).unwrap();
        assert!(witness.verifier().verify(&cp.note).is_err());
    }
    let status = running.handle.status();
    assert!(status.signed >= 2);
    assert_eq!(
        status.witnesses[0].refusals, 1,
        "{what}: refused once, not in a loop"
    );
    assert_eq!(status.cosignatures, 0);
    assert_eq!(
        running.metric(&format!(
            "docket_witness_alarm{{witness=\"{witness_name}\"}}"
        )),
        Some(1.0)
    );
    assert!(
        running
            .metric(&format!(
                "docket_witness_refusals_total{{witness=\"{witness_name}\"}}"
            ))
            .unwrap()
            >= 1.0
    );
    running.stop().await.unwrap();
    assert_eq!(
        all_commits(log).await.len() as u64,
        CheckpointStore::new(records)
            .latest(None)
            .await
            .unwrap()
            .unwrap()
            .signed
            .checkpoint
            .size
    );
    alarm
}
