//! The file backend: the conformance suite, and a crash test that SIGKILLs a writer process.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use docket_log::file::{FileLog, FileLogConfig};
use docket_log::{EventLog, ExpectedRevision, LogError, StreamId};
use rand::Rng;
use tempfile::TempDir;

use crate::conformance::{self, Harness};

/// Small segments, so that every case also crosses segment boundaries.
const TEST_SEGMENT_BYTES: u64 = 64 << 10;

/// Drives a [`FileLog`] in a temporary directory.
pub struct FileHarness {
    dir: TempDir,
}

impl FileHarness {
    pub fn new() -> Self {
        FileHarness {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn config(&self) -> FileLogConfig {
        FileLogConfig {
            segment_bytes: TEST_SEGMENT_BYTES,
            ..FileLogConfig::new(self.dir.path())
        }
    }
}

impl Harness for FileHarness {
    type Log = FileLog;
    type Checkpoints = docket_log::checkpoint::FileCheckpoints;

    async fn checkpoints(&mut self, log: &FileLog) -> Self::Checkpoints {
        log.checkpoints().unwrap()
    }

    async fn open(&mut self) -> FileLog {
        FileLog::open(self.config()).await.unwrap()
    }

    async fn reopen(&mut self, log: FileLog) -> FileLog {
        log.close().await.unwrap();
        FileLog::open(self.config()).await.unwrap()
    }

    async fn corrupt(&mut self, log: FileLog) -> (u64, Result<FileLog, LogError>) {
        // Damage the second-to-last commit: a bad *last* frame would count as a torn write.
        let target = log.head().await.unwrap() - 1;
        let commit = log.read_all(target - 1, 1).await.unwrap().remove(0);
        log.close().await.unwrap();
        let mut found = false;
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let mut bytes = std::fs::read(&path).unwrap();
            if let Some(at) = bytes
                .windows(commit.bytes.len())
                .position(|w| w == &commit.bytes[..])
            {
                bytes[at + commit.bytes.len() / 2] ^= 0x20;
                std::fs::write(&path, bytes).unwrap();
                found = true;
            }
        }
        assert!(found, "the commit's bytes are in a segment file");
        (target, FileLog::open(self.config()).await)
    }
}

conformance::conformance_suite!(conformance_file, || async { FileHarness::new() });

#[tokio::test]
async fn torn_tail_is_cut_and_the_rest_kept() {
    let mut h = FileHarness::new();
    let log = h.open().await;
    let s = conformance::stream("case");
    for i in 0..10 {
        log.append(
            &s,
            ExpectedRevision::Any,
            vec![conformance::event(format!("{i}"))],
            Default::default(),
        )
        .await
        .unwrap();
    }
    log.close().await.unwrap();
    let mut segments: Vec<_> = std::fs::read_dir(h.dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segments.sort();
    let last = segments.last().unwrap();
    // A write torn in the middle of a frame, then zeros the file system left behind.
    let mut f = std::fs::OpenOptions::new().append(true).open(last).unwrap();
    f.write_all(&[42, 0, 0, 0, 1, 2, 3]).unwrap();
    f.write_all(&[0u8; 512]).unwrap();
    drop(f);
    let log = FileLog::open(h.config()).await.unwrap();
    assert_eq!(log.head().await.unwrap(), 10);
    let next = log
        .append(
            &s,
            ExpectedRevision::Exact(10),
            vec![conformance::event("after")],
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(next.position, 11);
    conformance::assert_chains_hold(&conformance::read_everything(&log).await);
}

#[tokio::test]
async fn a_second_process_cannot_open_the_same_directory() {
    let mut h = FileHarness::new();
    let _log = h.open().await;
    match FileLog::open(h.config()).await {
        Err(LogError::Unavailable { reason, .. }) => assert!(reason.contains("in use"), "{reason}"),
        other => panic!("second open: {other:?}"),
    }
}

const CRASH_DIR_ENV: &str = "DOCKET_CRASH_TEST_DIR";

/// Not a test on its own: the child process of `acknowledged_commits_survive_sigkill`, which
/// runs it with `--ignored`. It appends from 8 tasks until killed, printing each acknowledgement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of acknowledged_commits_survive_sigkill"]
async fn crash_child() {
    let Ok(dir) = std::env::var(CRASH_DIR_ENV) else {
        return;
    };
    let config = FileLogConfig {
        segment_bytes: 256 << 10,
        ..FileLogConfig::new(dir)
    };
    let log = FileLog::open(config).await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let s = StreamId::new(format!("case/writer-{w}")).unwrap();
            loop {
                let key = uuid::Uuid::new_v4().to_string();
                let a = log
                    .append(
                        &s,
                        ExpectedRevision::Any,
                        vec![conformance::event(vec![1u8; 200])],
                        conformance::keyed(&key),
                    )
                    .await
                    .unwrap();
                let mut out = std::io::stdout().lock();
                writeln!(out, "ACK {} {key}", a.position).unwrap();
                out.flush().unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_commits_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked: Vec<(u64, String)> = Vec::new();
    let mut rng = rand::thread_rng();
    for round in 0..12 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "file_backend::crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_DIR_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut acks = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let parsed = line.strip_prefix("ACK ").and_then(|rest| {
                    let mut parts = rest.split(' ');
                    Some((parts.next()?.parse::<u64>().ok()?, parts.next()?.to_owned()))
                });
                if let Some(ack) = parsed {
                    if acks.is_empty() {
                        let _ = first_tx.send(());
                    }
                    acks.push(ack);
                }
            }
            acks
        });
        // Kill at a random moment once appends are flowing (recovery time varies with load).
        first_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!("round {round}: the child acknowledged nothing within 60 s")
            });
        let wait = rng.gen_range(0..400);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let round_acks = reader.join().unwrap();
        acked.extend(round_acks);

        let log = FileLog::open(FileLogConfig::new(dir.path())).await.unwrap();
        let all = conformance::read_everything(&log).await;
        conformance::assert_chains_hold(&all);
        for (position, key) in &acked {
            let c = all
                .get(*position as usize - 1)
                .unwrap_or_else(|| panic!("round {round}: acknowledged commit {position} lost"));
            assert_eq!(
                c.commit.metadata.idempotency_key.as_deref(),
                Some(key.as_str())
            );
        }
        log.close().await.unwrap();
    }
    eprintln!(
        "crash test: 12 SIGKILLs, {} acknowledged commits all present",
        acked.len()
    );
    assert!(
        acked.len() > 100,
        "the crash test exercised enough appends ({})",
        acked.len()
    );
}
