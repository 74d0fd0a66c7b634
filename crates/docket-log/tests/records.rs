//! The audit records store ([`docket_log::records`]) on both backends: sequence numbers from 1 in
//! append order, reads after a sequence, the last record, and persistence across a reopen (a
//! restarted nats-server for JetStream).

use bytes::Bytes;
use docket_log::file::{FileLog, FileLogConfig};
use docket_log::jetstream::{JetStreamConfig, JetStreamLog};
use docket_log::records::{FileRecords, JetStreamRecords, JetStreamRecordsConfig};
use docket_log::{AnyLog, AnyRecords, LogError, Records};
use docket_testkit::NatsServer;

fn record(i: u64) -> Bytes {
    Bytes::from(format!("checkpoint {i}\nline two\n"))
}

/// Appends 25 records and checks what the store reads back.
async fn fill_and_check(records: &impl Records) {
    assert_eq!(records.last().await.unwrap(), None);
    assert!(records.read(0, 10).await.unwrap().is_empty());
    for i in 1..=25u64 {
        assert_eq!(records.append(record(i)).await.unwrap(), i);
    }
    check_contents(records, 25).await;
}

async fn check_contents(records: &impl Records, n: u64) {
    assert_eq!(records.last().await.unwrap(), Some((n, record(n))));
    let all = records.read(0, 1000).await.unwrap();
    assert_eq!(all.len() as u64, n);
    for (i, (sequence, bytes)) in all.iter().enumerate() {
        assert_eq!(*sequence, i as u64 + 1);
        assert_eq!(bytes, &record(i as u64 + 1));
    }
    let some = records.read(10, 5).await.unwrap();
    assert_eq!(
        some.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![11, 12, 13, 14, 15]
    );
    assert!(records.read(n, 5).await.unwrap().is_empty());
    assert_eq!(records.read(n - 1, 5).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_records_persist_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(FileLogConfig::new(dir.path())).await.unwrap();
    let records = log.audit_records().unwrap();
    assert_eq!(records.dir(), dir.path().join("audit"));
    fill_and_check(&records).await;
    // Entries that are not records (the tree cache, a leftover temporary file) are ignored.
    std::fs::create_dir_all(records.dir().join("tree")).unwrap();
    std::fs::write(records.dir().join(".record-x.tmp"), b"torn").unwrap();
    log.close().await.unwrap();
    drop((log, records));

    let log = AnyLog::File(FileLog::open(FileLogConfig::new(dir.path())).await.unwrap());
    let records = log.audit_records().await.unwrap();
    assert!(matches!(records, AnyRecords::File(_)));
    check_contents(&records, 25).await;
    assert_eq!(records.append(record(26)).await.unwrap(), 26);
    check_contents(&records, 26).await;

    // Two handles on one directory (two processes) never take the same number.
    let a = FileRecords::open(dir.path().join("audit")).unwrap();
    let b = FileRecords::open(dir.path().join("audit")).unwrap();
    let mut tasks = Vec::new();
    for i in 0..10u64 {
        let r = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move { r.append(record(100 + i)).await }));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap().unwrap());
    }
    got.sort_unstable();
    assert_eq!(got, (27..=36).collect::<Vec<_>>());
    assert_eq!(a.last().await.unwrap().unwrap().0, 36);
    assert_eq!(b.read(26, 100).await.unwrap().len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_records_persist_in_order() {
    let mut server = tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap();
    let log = JetStreamLog::connect_url(&server.url(), JetStreamConfig::default())
        .await
        .unwrap();
    let records = log.audit_records().await.unwrap();
    assert_eq!(records.config().stream_name, "DOCKET_AUDIT");
    fill_and_check(&records).await;
    drop((log, records));

    tokio::task::block_in_place(|| {
        server.kill();
        server.restart();
    });
    let log = AnyLog::JetStream(
        JetStreamLog::connect_url(&server.url(), JetStreamConfig::default())
            .await
            .unwrap(),
    );
    let records = log.audit_records().await.unwrap();
    assert!(matches!(records, AnyRecords::JetStream(_)));
    check_contents(&records, 25).await;
    assert_eq!(records.append(record(26)).await.unwrap(), 26);
    check_contents(&records, 26).await;

    // The stream refuses deletes and purges.
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let stream = js.get_stream("DOCKET_AUDIT").await.unwrap();
    let info = stream.cached_info();
    assert!(info.config.deny_delete && info.config.deny_purge);
    assert_eq!(info.config.subjects, vec!["docket.audit.checkpoints"]);
    assert!(stream.delete_message(3).await.is_err());
    assert_eq!(records.read(2, 1).await.unwrap()[0], (3, record(3)));

    // A stream of that name that could lose records is refused.
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "LOOSE".into(),
        subjects: vec!["loose.audit".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let config = JetStreamRecordsConfig {
        stream_name: "LOOSE".into(),
        subject: "loose.audit".into(),
        replicas: 1,
    };
    match JetStreamRecords::open(&js, config).await {
        Err(LogError::Incompatible { reason }) => {
            assert!(reason.contains("deletes or purges"), "{reason}")
        }
        other => panic!("expected incompatible, got {other:?}"),
    }
}
