//! Golden files pin the bytes of the commit and segment formats (`docs/log-format.md`). A change
//! to the bytes fails here until the files are regenerated on purpose with `DOCKET_BLESS=1`.

use std::path::PathBuf;

use bytes::Bytes;
use docket_log::commit::{decode, encode};
use docket_log::file::{FileLog, FileLogConfig};
use docket_log::{
    Commit, CommitHash, EventData, EventLog, ExpectedRevision, Metadata, StreamId, StreamLink,
};
use uuid::Uuid;

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn check_golden(name: &str, actual: &[u8]) {
    let path = golden_path(name);
    if std::env::var_os("DOCKET_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with DOCKET_BLESS=1 to create it)",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{name} changed: the stored format is pinned; if the change is deliberate, bump the version, document it in docs/log-format.md and regenerate with DOCKET_BLESS=1"
    );
}

fn sample_commit() -> Commit {
    Commit {
        stream: StreamId::new("case/0d6f7a52-3b9e-4f0c-9c1d-2a7e5b8c4d10").unwrap(),
        prev: Some(StreamLink {
            revision: 41,
            hash: CommitHash([0xab; 32]),
        }),
        metadata: Metadata {
            idempotency_key: Some("cmd-7f3e".into()),
            actor: Some("officer:1234/officer".into()),
            correlation_id: Some(Uuid::from_u128(0x1111_2222_3333_4444_5555_6666_7777_8888)),
            causation_id: None,
            recorded_at_micros: 1_732_752_000_000_000,
        },
        events: vec![
            EventData {
                id: Uuid::from_u128(1),
                type_name: "case.opened".into(),
                type_version: 1,
                payload: Bytes::from_static(b"{\"office\":\"NYC\"}"),
            },
            EventData {
                id: Uuid::from_u128(2),
                type_name: "record.attached".into(),
                type_version: 2,
                payload: Bytes::from_static(&[0, 1, 2, 255]),
            },
        ],
    }
}

#[test]
fn commit_v1_bytes_are_pinned() {
    let commit = sample_commit();
    let bytes = encode(&commit).unwrap();
    check_golden("commit-v1.bin", &bytes);
    let stored = Bytes::from(std::fs::read(golden_path("commit-v1.bin")).unwrap());
    assert_eq!(
        decode(&stored).unwrap(),
        commit,
        "the golden bytes decode to the sample"
    );
}

#[tokio::test]
async fn segment_v1_bytes_are_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(FileLogConfig::new(dir.path())).await.unwrap();
    let s = StreamId::new("review/golden").unwrap();
    let sample = sample_commit();
    let a = log
        .append(
            &s,
            ExpectedRevision::NoStream,
            sample.events.clone(),
            sample.metadata.clone(),
        )
        .await
        .unwrap();
    let mut second = sample.events.clone();
    second
        .iter_mut()
        .for_each(|e| e.id = Uuid::from_u128(e.id.as_u128() + 100));
    log.append(
        &s,
        ExpectedRevision::Exact(a.revision),
        second,
        Metadata::default(),
    )
    .await
    .unwrap();
    log.close().await.unwrap();
    let bytes = std::fs::read(dir.path().join("00000000000000000001.seg")).unwrap();
    check_golden("segment-v1.seg", &bytes);
}
