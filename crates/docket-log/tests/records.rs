//! The audit records store ([`docket_log::records`]) on both backends: sequence numbers from 1 in
//! append order, reads after a sequence, the last record, and persistence across a reopen (a
//! restarted nats-server for JetStream). For the segment files: a torn last frame cut back on
//! open, segments rolled at the size limit, damage in the middle refused, and the old layout
//! (one file per record) migrated, including after a crash half-way.

use bytes::Bytes;
use docket_log::file::{FileLog, FileLogConfig};
use docket_log::jetstream::{JetStreamConfig, JetStreamLog};
use docket_log::records::{FileRecords, JetStreamRecords, JetStreamRecordsConfig};
use docket_log::{AnyLog, AnyRecords, LogError, Records};
use docket_testkit::NatsServer;
use std::path::{Path, PathBuf};

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

/// The segment files of a records directory, in order.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with("records-") && name.ends_with(".seg")
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_records_are_framed_in_segments_that_roll() {
    let dir = tempfile::tempdir().unwrap();
    // A record's frame is 30 or 31 bytes (8 of length and checksum): a limit of 200 bytes holds
    // the 24-byte segment header and five of them.
    let records = FileRecords::open_with(dir.path(), 200).unwrap();
    for i in 1..=25u64 {
        assert_eq!(records.append(record(i)).await.unwrap(), i);
    }
    check_contents(&records, 25).await;
    let names: Vec<String> = segments(dir.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [1, 6, 11, 16, 21].map(|f| format!("records-{f:020}.seg")),
        "one segment per five records, named by the first"
    );
    // The bytes: a header naming the first record, then length, checksum and the record.
    let bytes = std::fs::read(&segments(dir.path())[1]).unwrap();
    assert_eq!(&bytes[..8], b"DOCKETRC");
    assert_eq!(u64::from_le_bytes(bytes[16..24].try_into().unwrap()), 6);
    let body = record(6);
    assert_eq!(
        u32::from_le_bytes(bytes[24..28].try_into().unwrap()) as usize,
        body.len()
    );
    let mut crc = crc32fast::Hasher::new();
    crc.update(&bytes[24..28]);
    crc.update(&body);
    assert_eq!(
        u32::from_le_bytes(bytes[28..32].try_into().unwrap()),
        crc.finalize()
    );
    assert_eq!(&bytes[32..32 + body.len()], &body[..]);
    drop(records);

    // Reopened (with the default limit): the same records, and appends go on in the last one.
    let records = FileRecords::open(dir.path()).unwrap();
    check_contents(&records, 25).await;
    assert_eq!(records.append(record(26)).await.unwrap(), 26);
    assert_eq!(segments(dir.path()).len(), 5);
    check_contents(&records, 26).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_last_frame_is_cut_back_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let records = FileRecords::open(dir.path()).unwrap();
    for i in 1..=20u64 {
        records.append(record(i)).await.unwrap();
    }
    drop(records);
    let path = segments(dir.path()).remove(0);
    let whole = std::fs::read(&path).unwrap();
    // A crash in the middle of writing record 21: its header and part of its bytes.
    for torn in [3usize, 8, 15] {
        let mut bytes = whole.clone();
        let mut frame = Vec::new();
        frame.extend_from_slice(&(record(21).len() as u32).to_le_bytes());
        frame.extend_from_slice(&[0xab; 4]);
        frame.extend_from_slice(&record(21));
        bytes.extend_from_slice(&frame[..torn]);
        std::fs::write(&path, &bytes).unwrap();
        let records = FileRecords::open(dir.path()).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            whole,
            "cut back ({torn} bytes)"
        );
        check_contents(&records, 20).await;
    }
    let records = FileRecords::open(dir.path()).unwrap();
    assert_eq!(records.append(record(21)).await.unwrap(), 21);
    check_contents(&records, 21).await;

    // A segment whose creation was cut short (part of its header) is removed.
    let records = FileRecords::open_with(dir.path(), 100).unwrap();
    drop(records);
    let next = dir.path().join("records-00000000000000000022.seg");
    std::fs::write(&next, b"DOCKET").unwrap();
    let records = FileRecords::open_with(dir.path(), 100).unwrap();
    assert!(!next.exists());
    check_contents(&records, 21).await;
    assert_eq!(records.append(record(22)).await.unwrap(), 22);
    assert!(next.exists());
    check_contents(&records, 22).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_before_the_last_frame_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let records = FileRecords::open_with(dir.path(), 200).unwrap();
    for i in 1..=17u64 {
        records.append(record(i)).await.unwrap();
    }
    drop(records);
    let files = segments(dir.path());
    assert_eq!(files.len(), 4);
    let expect_corrupt = |what: &str, sequence: u64| match FileRecords::open(dir.path()) {
        Err(LogError::Corrupt { position, reason }) => {
            assert_eq!(position, sequence, "{what}: {reason}");
            assert!(reason.contains("audit record"), "{what}: {reason}");
        }
        other => panic!("{what}: expected corrupt, got {other:?}"),
    };
    // A flipped bit in the first record of the last segment (records 16 and 17).
    let last = files.last().unwrap().clone();
    let good = std::fs::read(&last).unwrap();
    let mut bytes = good.clone();
    bytes[24 + 8 + 2] ^= 0x04;
    std::fs::write(&last, &bytes).unwrap();
    expect_corrupt("a damaged frame with a good one after it", 16);
    // Damage at the end of a segment that is not the last is not a torn write either.
    std::fs::write(&last, &good).unwrap();
    let first = files[0].clone();
    let good_first = std::fs::read(&first).unwrap();
    let mut bytes = good_first.clone();
    let n = bytes.len();
    bytes[n - 3] ^= 0x10;
    std::fs::write(&first, &bytes).unwrap();
    expect_corrupt("a damaged last frame of an earlier segment", 5);
    std::fs::write(&first, &good_first).unwrap();
    // A missing segment: the records after the gap are not silently dropped.
    let middle = files[1].clone();
    let aside = dir.path().join("aside");
    std::fs::rename(&middle, &aside).unwrap();
    expect_corrupt("a gap", 11);
    std::fs::rename(&aside, &middle).unwrap();
    // A bad header.
    let mut bytes = std::fs::read(&middle).unwrap();
    bytes[0] = b'X';
    std::fs::write(&middle, &bytes).unwrap();
    match FileRecords::open(dir.path()) {
        Err(LogError::Corrupt { reason, .. }) => assert!(reason.contains("magic"), "{reason}"),
        other => panic!("expected corrupt, got {other:?}"),
    }
    bytes[0] = b'D';
    std::fs::write(&middle, &bytes).unwrap();
    // Repaired, it reads again.
    let records = FileRecords::open(dir.path()).unwrap();
    check_contents(&records, 17).await;
}

/// Writes records `range` in the old layout: one file each, named by the sequence number.
fn write_legacy(dir: &Path, range: std::ops::RangeInclusive<u64>) {
    for i in range {
        std::fs::write(dir.join(format!("{i:020}")), record(i)).unwrap();
    }
}

fn legacy_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_str().unwrap();
            name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit())
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_layout_is_migrated_into_segments() {
    let dir = tempfile::tempdir().unwrap();
    write_legacy(dir.path(), 1..=30);
    std::fs::create_dir_all(dir.path().join("tree")).unwrap();
    std::fs::write(dir.path().join("checkpoint.key"), b"not a record").unwrap();
    let records = FileRecords::open_with(dir.path(), 300).unwrap();
    assert_eq!(legacy_files(dir.path()), 0, "the old files are removed");
    assert!(segments(dir.path()).len() > 1, "migrated through rolls");
    assert!(dir.path().join("checkpoint.key").exists() && dir.path().join("tree").exists());
    check_contents(&records, 30).await;
    assert_eq!(records.append(record(31)).await.unwrap(), 31);
    drop(records);
    let records = FileRecords::open(dir.path()).unwrap();
    check_contents(&records, 31).await;

    // A crash half-way through a migration: the segments hold 1..=12 (the last frame torn),
    // every old file 1..=20 is still there. The next open finishes it.
    let dir = tempfile::tempdir().unwrap();
    let records = FileRecords::open(dir.path()).unwrap();
    for i in 1..=12u64 {
        records.append(record(i)).await.unwrap();
    }
    drop(records);
    let seg = segments(dir.path()).remove(0);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.extend_from_slice(&(record(13).len() as u32).to_le_bytes());
    std::fs::write(&seg, &bytes).unwrap();
    write_legacy(dir.path(), 1..=20);
    let records = FileRecords::open(dir.path()).unwrap();
    assert_eq!(legacy_files(dir.path()), 0);
    check_contents(&records, 20).await;
    drop(records);

    // A crash while removing the old files: the ones left are already in the segments.
    write_legacy(dir.path(), 15..=20);
    let records = FileRecords::open(dir.path()).unwrap();
    assert_eq!(legacy_files(dir.path()), 0);
    check_contents(&records, 20).await;
    drop(records);

    // An old file that disagrees with the segments' record of that number is an error, and so
    // is a gap in the old files; neither is touched.
    std::fs::write(dir.path().join(format!("{:020}", 4)), b"another record 4").unwrap();
    match FileRecords::open(dir.path()) {
        Err(LogError::Corrupt {
            position: 4,
            reason,
        }) => {
            assert!(reason.contains("differs"), "{reason}")
        }
        other => panic!("expected corrupt, got {other:?}"),
    }
    std::fs::remove_file(dir.path().join(format!("{:020}", 4))).unwrap();
    write_legacy(dir.path(), 22..=23);
    match FileRecords::open(dir.path()) {
        Err(LogError::Corrupt {
            position: 21,
            reason,
        }) => {
            assert!(reason.contains("missing"), "{reason}")
        }
        other => panic!("expected corrupt, got {other:?}"),
    }
    assert_eq!(legacy_files(dir.path()), 2);
}
