//! Fuzzing the decoding of stored commits (issue 7): the commit decoder
//! (`commit::decode`/`check`, `RecordedCommit::decode`) and the file backend's reading of
//! segment files (`file::export::SegmentReader`, and `FileLog::open`'s recovery), over bytes
//! that are arbitrary or that started as a valid log and were damaged: bit flips, overwritten
//! bytes, truncations, insertions, deletions, duplicated or swapped ranges and frames, appended
//! garbage.
//!
//! The properties:
//!
//! - nothing panics or loops;
//! - `decode` returns a commit only for bytes whose checksum is right, and that commit encodes
//!   and decodes back to itself; bytes damaged without fixing the checksum never decode (unless
//!   the damage changed nothing);
//! - reading a damaged log never yields a commit that is not the one written at that position:
//!   every commit before the first damaged byte is read back exactly, and the damage is
//!   reported at the position of the frame the first damaged byte is in — by the reader's
//!   checksums, or by the hash chain for a frame-aligned cut or copy (which the reader alone
//!   cannot see) — except when the log was cut cleanly at a frame boundary of its last
//!   segment, which is a shorter log and reads as one;
//! - `FileLog::open` either recovers exactly the commits before the damage (a torn tail of the
//!   last segment, cut off) and appends after them, or refuses with `Corrupt` at the damage's
//!   position.
//!
//! The inputs are `proptest` strategies: commits, and damage as values ([`Mutation`] at the
//! byte level, [`SegmentDamage`] at the frame level), applied to valid bytes. Each target runs
//! from a fixed seed, so every run checks the same cases (`PROPTEST_RNG_SEED` and
//! `PROPTEST_CASES` explore others); a failing input is shrunk, and its seed is saved in
//! `proptest-regressions/fuzz.txt`, which every later run replays first. A failure found is
//! also kept below as a named regression test with its exact bytes.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::OnceLock;

use bytes::Bytes;
use docket_log::commit::{self, ENVELOPE_VERSION};
use docket_log::file::export::{SegmentReader, SegmentWriter};
use docket_log::file::{FileLog, FileLogConfig};
use docket_log::{
    Commit, CommitHash, EventData, EventLog, ExpectedRevision, LogError, Metadata, RecordedCommit,
    StreamId, StreamLink,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::strategy::ValueTree;
use proptest::test_runner::{FileFailurePersistence, RngSeed, TestCaseError, TestRunner};
use uuid::Uuid;

/// Cases per pure target.
const CASES: u32 = 5_000;
/// Cases per target that writes files.
const FILE_CASES: u32 = 2_000;
/// Cases of `FileLog::open` (a writer thread each).
const OPEN_CASES: u32 = 1_000;

/// The configuration of a target: `cases` cases from a fixed `seed` unless the environment asks
/// for others, failures persisted beside the crate's tests.
fn config(cases: u32, seed: u64) -> ProptestConfig {
    let default = ProptestConfig::default();
    ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            default.cases
        } else {
            cases
        },
        rng_seed: if std::env::var_os("PROPTEST_RNG_SEED").is_some() {
            default.rng_seed
        } else {
            RngSeed::Fixed(seed)
        },
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/fuzz.txt",
        ))),
        ..default
    }
}

fn unhex(text: &str) -> Vec<u8> {
    let text: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    hex::decode(text).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Commits.

fn text(max: usize) -> impl Strategy<Value = String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz._-0123456789";
    vec(select(ALPHABET), 1..=max).prop_map(|b| b.into_iter().map(char::from).collect())
}

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

/// A commit's who, why and when, and its one to three events.
fn contents() -> impl Strategy<Value = (Metadata, Vec<EventData>)> {
    let metadata = (
        option::of(text(40)),
        option::of(text(60)),
        option::of(uuid()),
        option::of(uuid()),
        any::<i64>(),
    )
        .prop_map(
            |(idempotency_key, actor, correlation_id, causation_id, recorded_at_micros)| Metadata {
                idempotency_key,
                actor,
                correlation_id,
                causation_id,
                recorded_at_micros,
            },
        );
    let event = (uuid(), text(30), any::<u16>(), vec(any::<u8>(), 0..120)).prop_map(
        |(id, type_name, type_version, payload)| EventData {
            id,
            type_name,
            type_version,
            payload: Bytes::from(payload),
        },
    );
    (metadata, vec(event, 1..=3))
}

fn link() -> impl Strategy<Value = StreamLink> {
    (any::<u64>(), any::<[u8; 32]>()).prop_map(|(revision, hash)| StreamLink {
        revision,
        hash: CommitHash(hash),
    })
}

/// Commits of one stream, each linked to the one before: the encoded bytes.
fn chained(contents: Vec<(Metadata, Vec<EventData>)>) -> Vec<Vec<u8>> {
    let stream = StreamId::new("case/fuzz").unwrap();
    let mut prev = None;
    (1u64..)
        .zip(contents)
        .map(|(position, (metadata, events))| {
            let commit = Commit {
                stream: stream.clone(),
                prev,
                metadata,
                events,
            };
            let bytes = commit::encode(&commit).unwrap();
            prev = Some(StreamLink {
                revision: position,
                hash: CommitHash::of(&bytes),
            });
            bytes
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Damage.

/// One byte-level mutation; positions are relative to the bytes' length when applied.
#[derive(Clone, Debug)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Truncate(Index),
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    Duplicate { from: Index, len: usize, to: Index },
    Zero(Index, usize),
    Append(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<Index>;
    prop_oneof![
        (at(), 0..8u8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        (at(), select(&[0x00u8, 0x01, 0x7f, 0x80, 0xff][..]))
            .prop_map(|(at, byte)| Mutation::SetByte(at, byte)),
        at().prop_map(Mutation::Truncate),
        (at(), vec(any::<u8>(), 1..=64)).prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (at(), 1..=64usize).prop_map(|(at, n)| Mutation::Delete(at, n)),
        (at(), 1..=200usize, at()).prop_map(|(from, len, to)| Mutation::Duplicate {
            from,
            len,
            to
        }),
        (at(), 1..=32usize).prop_map(|(at, n)| Mutation::Zero(at, n)),
        vec(any::<u8>(), 1..=16).prop_map(Mutation::Append),
    ]
}

impl Mutation {
    fn apply(&self, bytes: &mut Vec<u8>) {
        let len = bytes.len();
        // A start in 0..=len, and the end of `n` bytes from there.
        let range = |at: &Index, n: usize| {
            let start = at.index(len + 1);
            start..(start + n).min(len).max(start)
        };
        match self {
            Mutation::FlipBit(at, bit) if len > 0 => bytes[at.index(len)] ^= 1 << bit,
            Mutation::SetByte(at, byte) if len > 0 => bytes[at.index(len)] = *byte,
            Mutation::FlipBit(..) | Mutation::SetByte(..) => {}
            Mutation::Truncate(at) => bytes.truncate(at.index(len + 1)),
            Mutation::Insert(at, insert) => {
                let at = at.index(len + 1);
                bytes.splice(at..at, insert.iter().copied());
            }
            Mutation::Delete(at, n) => {
                bytes.drain(range(at, *n));
            }
            Mutation::Duplicate { from, len: n, to } => {
                let copy = bytes[range(from, *n)].to_vec();
                let to = to.index(bytes.len() + 1);
                bytes.splice(to..to, copy);
            }
            Mutation::Zero(at, n) => bytes[range(at, *n)].fill(0),
            Mutation::Append(tail) => bytes.extend_from_slice(tail),
        }
    }
}

/// One damage to a segment file: frame-aligned (which checksums alone cannot see), or a
/// byte-level [`Mutation`]; frames are picked by index into the honest segment's frames.
#[derive(Clone, Debug)]
enum SegmentDamage {
    DropFrame(Index),
    CopyFrame { frame: Index, before: Index },
    SwapWithNext(Index),
    CutAfterFrame(Index),
    Bytes(Mutation),
}

fn segment_damage() -> impl Strategy<Value = SegmentDamage> {
    let at = any::<Index>;
    prop_oneof![
        1 => at().prop_map(SegmentDamage::DropFrame),
        1 => (at(), at()).prop_map(|(frame, before)| SegmentDamage::CopyFrame { frame, before }),
        1 => at().prop_map(SegmentDamage::SwapWithNext),
        1 => at().prop_map(SegmentDamage::CutAfterFrame),
        8 => mutation().prop_map(SegmentDamage::Bytes),
    ]
}

impl SegmentDamage {
    /// Applies the damage to `bytes`, whose honest frames are `layout` (earlier damage may have
    /// moved them: a frame no longer inside the bytes is left alone).
    fn apply(&self, layout: &[(usize, usize)], bytes: &mut Vec<u8>) {
        let frame = |i: &Index| layout[i.index(layout.len())];
        match self {
            SegmentDamage::DropFrame(i) if !layout.is_empty() => {
                let (s, e) = frame(i);
                if e <= bytes.len() {
                    bytes.drain(s..e);
                }
            }
            SegmentDamage::CopyFrame { frame: i, before } if !layout.is_empty() => {
                let (s, e) = frame(i);
                let (to, _) = frame(before);
                if e <= bytes.len() && to <= bytes.len() {
                    let copy = bytes[s..e].to_vec();
                    bytes.splice(to..to, copy);
                }
            }
            SegmentDamage::SwapWithNext(i) if layout.len() >= 2 => {
                let i = i.index(layout.len() - 1);
                let (s, m) = layout[i];
                let (_, e) = layout[i + 1];
                if e <= bytes.len() {
                    let mut swapped = bytes[m..e].to_vec();
                    swapped.extend_from_slice(&bytes[s..m]);
                    bytes.splice(s..e, swapped);
                }
            }
            SegmentDamage::CutAfterFrame(i) if !layout.is_empty() => {
                let (_, e) = frame(i);
                bytes.truncate(e.min(bytes.len()));
            }
            SegmentDamage::Bytes(mutation) => mutation.apply(bytes),
            // A frame-level damage of a segment with too few frames for it: none.
            _ => {}
        }
    }
}

/// The commit's checksum recomputed over its (possibly damaged) bytes, so that the damage
/// reaches the body decoder.
fn reseal(bytes: &mut [u8]) {
    if bytes.len() < 5 {
        return;
    }
    let body = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..body]);
    bytes[body..].copy_from_slice(&crc.to_le_bytes());
}

/// The commit decoder's property for one input; `original` is the commit the bytes were made
/// from, if any (then damage without a fixed checksum must not decode).
fn check_decode(bytes: &[u8], original: Option<&[u8]>, sealed: bool) -> Result<bool, String> {
    let shared = Bytes::copy_from_slice(bytes);
    let decoded = catch_unwind(AssertUnwindSafe(|| commit::decode(&shared)))
        .map_err(|_| "commit::decode panicked".to_owned())?;
    let checked = catch_unwind(AssertUnwindSafe(|| commit::check(bytes)))
        .map_err(|_| "commit::check panicked".to_owned())?;
    let position = 1 + (bytes.len() as u64 % 1000);
    let recorded = catch_unwind(AssertUnwindSafe(|| {
        RecordedCommit::decode(position, shared.clone())
    }))
    .map_err(|_| "RecordedCommit::decode panicked".to_owned())?;
    match (&decoded, &recorded) {
        (Ok(c), Ok(r)) if *c == r.commit && r.position == position => {}
        (
            Err(why),
            Err(LogError::Corrupt {
                position: p,
                reason,
            }),
        ) if *p == position && why == reason => {}
        _ => {
            return Err(format!(
                "decode and RecordedCommit::decode disagree: {decoded:?} / {recorded:?}"
            ))
        }
    }
    match decoded {
        Ok(commit) => {
            if let Err(why) = checked {
                return Err(format!("decoded although check says {why}"));
            }
            if !sealed {
                if let Some(original) = original {
                    if bytes != original {
                        return Err("damage with the old checksum decoded".into());
                    }
                }
            }
            if StreamId::new(commit.stream.as_str()).ok().as_ref() != Some(&commit.stream) {
                return Err(format!("an invalid stream id {:?}", commit.stream));
            }
            let again = commit::encode(&commit).map_err(|e| format!("does not encode: {e}"))?;
            let back = commit::decode(&Bytes::from(again))
                .map_err(|e| format!("re-encoded commit does not decode: {e}"))?;
            if back != commit {
                return Err(format!("round trip changed {commit:?} into {back:?}"));
            }
            Ok(true)
        }
        Err(why) => {
            if why.is_empty() {
                return Err("an empty reason".into());
            }
            Ok(false)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The commit decoder.

/// Arbitrary bytes; sealed half the time: a good envelope around noise, so the noise reaches
/// the body decoder.
fn arbitrary_input() -> impl Strategy<Value = (Vec<u8>, bool)> {
    (vec(any::<u8>(), 0..400), any::<bool>()).prop_map(|(mut bytes, sealed)| {
        if sealed && !bytes.is_empty() {
            bytes[0] = ENVELOPE_VERSION;
            bytes.extend([0; 4]);
            reseal(&mut bytes);
        }
        (bytes, sealed)
    })
}

/// A valid commit's bytes, and the same bytes after one to three mutations, resealed half the
/// time.
fn damaged_commit() -> impl Strategy<Value = (Vec<u8>, Vec<u8>, bool)> {
    const STREAMS: &[&str] = &["case/a", "review/b-1", "officer/C_2", "k9-x/Z"];
    (
        select(STREAMS),
        option::of(link()),
        contents(),
        vec(mutation(), 1..=3),
        any::<bool>(),
    )
        .prop_map(|(stream, prev, (metadata, events), mutations, sealed)| {
            let commit = Commit {
                stream: StreamId::new(stream).unwrap(),
                prev,
                metadata,
                events,
            };
            let original = commit::encode(&commit).unwrap();
            let mut bytes = original.clone();
            for m in &mutations {
                m.apply(&mut bytes);
            }
            if sealed {
                reseal(&mut bytes);
            }
            (original, bytes, sealed)
        })
}

/// The decoder's property as a proptest outcome, with the input as hex in the message.
fn decode_case(bytes: &[u8], original: Option<&[u8]>, sealed: bool) -> Result<(), TestCaseError> {
    check_decode(bytes, original, sealed)
        .map(drop)
        .map_err(|why| TestCaseError::fail(format!("{why}\n  hex: {}", hex::encode(bytes))))
}

proptest! {
    #![proptest_config(config(CASES, 0x10C0_0001))]
    #[test]
    fn fuzz_commit_decode_with_arbitrary_bytes((bytes, sealed) in arbitrary_input()) {
        decode_case(&bytes, None, sealed)?;
    }
}

proptest! {
    #![proptest_config(config(CASES, 0x10C0_0002))]
    #[test]
    fn fuzz_commit_decode_with_damaged_commits((original, bytes, sealed) in damaged_commit()) {
        decode_case(&bytes, Some(&original), sealed)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Segment files.

/// A log written by `SegmentWriter`: its commits and, per segment file, its base position,
/// file name and honest bytes.
#[derive(Debug)]
struct Honest {
    commits: Vec<Vec<u8>>,
    segments: Vec<(u64, std::ffi::OsString, Vec<u8>)>,
}

/// Logs of 1 to 12 chained commits in segments of assorted sizes, written once by
/// `SegmentWriter` (which syncs every file) from a fixed seed, smallest first (so that a
/// failing case shrinks towards a small log): each case copies one into a directory of its own.
fn honest_logs() -> &'static [Honest] {
    static POOL: OnceLock<Vec<Honest>> = OnceLock::new();
    POOL.get_or_init(|| {
        let log = (
            vec(contents(), 1..=12),
            select(&[1u64 << 20, 150, 400, 900][..]),
        );
        let mut runner = TestRunner::deterministic();
        let mut pool: Vec<Honest> = (0..24)
            .map(|_| {
                let (contents, segment_bytes) = log.new_tree(&mut runner).unwrap().current();
                let commits = chained(contents);
                let dir = tempfile::tempdir().unwrap();
                let mut writer = SegmentWriter::create(dir.path(), 1, segment_bytes).unwrap();
                for c in &commits {
                    writer.push(c).unwrap();
                }
                writer.finish().unwrap();
                let segments = SegmentReader::open(dir.path())
                    .unwrap()
                    .segments()
                    .iter()
                    .map(|(base, path)| {
                        let name = path.file_name().unwrap().to_owned();
                        (*base, name, std::fs::read(path).unwrap())
                    })
                    .collect();
                Honest { commits, segments }
            })
            .collect();
        pool.sort_by_key(|h| h.segments.iter().map(|s| s.2.len()).sum::<usize>());
        pool
    })
}

/// One case: which honest log, which of its segments, and the damage done to it.
#[derive(Clone, Debug)]
struct DamageCase {
    log: Index,
    segment: Index,
    damage: Vec<SegmentDamage>,
}

fn damage_case() -> impl Strategy<Value = DamageCase> {
    (any::<Index>(), any::<Index>(), vec(segment_damage(), 1..=2)).prop_map(
        |(log, segment, damage)| DamageCase {
            log,
            segment,
            damage,
        },
    )
}

/// One case's copy of an honest log, damaged.
struct Written {
    dir: tempfile::TempDir,
    commits: &'static [Vec<u8>],
    segments: usize,
    /// The damaged segment.
    which: usize,
    /// Where the damage must be reported: the position of the frame holding the first changed
    /// byte (one past the last commit if nothing changed).
    expected: u64,
    /// Whether the segment was merely cut at a frame boundary.
    clean_cut: bool,
    honest: &'static [u8],
    damaged: Vec<u8>,
}

impl Written {
    fn last(&self) -> bool {
        self.which + 1 == self.segments
    }

    /// A failure of the case, with both segments as hex.
    fn fail(&self, problem: String) -> TestCaseError {
        TestCaseError::fail(format!(
            "segment {} of {}: {problem}\n  damaged segment hex: {}\n  honest segment hex:  {}",
            self.which,
            self.segments,
            hex::encode(&self.damaged),
            hex::encode(self.honest)
        ))
    }
}

/// Copies the case's honest log into a new directory and damages the chosen segment there.
fn write_damaged(case: &DamageCase) -> Written {
    let pool = honest_logs();
    let log = &pool[case.log.index(pool.len())];
    let dir = tempfile::tempdir().unwrap();
    for (_, name, bytes) in &log.segments {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let which = case.segment.index(log.segments.len());
    let (base, name, honest) = &log.segments[which];
    let layout = frames(honest);
    let mut bytes = honest.clone();
    for damage in &case.damage {
        damage.apply(&layout, &mut bytes);
    }
    std::fs::write(dir.path().join(name), &bytes).unwrap();
    let first_difference = first_meaningful_difference(honest, &bytes);
    let count = layout.len() as u64;
    let expected = match first_difference {
        None => log.commits.len() as u64 + 1,
        Some(d) if d < 24 => *base,
        Some(d) => match layout.iter().position(|&(s, e)| s <= d && d < e) {
            Some(i) => base + i as u64,
            None => base + count,
        },
    };
    let clean_cut = first_difference.is_some()
        && bytes.len() < honest.len()
        && first_meaningful_difference(&honest[..bytes.len()], &bytes).is_none()
        && (bytes.len() == 24 || layout.iter().any(|&(_, e)| e == bytes.len()));
    Written {
        dir,
        commits: &log.commits,
        segments: log.segments.len(),
        which,
        expected,
        clean_cut,
        honest,
        damaged: bytes,
    }
}

/// The reader's property for one damaged log; `Err` says how it is broken.
fn check_reader(log: &Written) -> Result<(), String> {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        read_and_verify(log.dir.path(), log.commits.len() + 4)
    }))
    .unwrap_or_else(|_| Err("panicked".into()));
    let (good, seen) = outcome?;
    if !good.iter().zip(log.commits).all(|(a, b)| a == b) {
        return Err("a commit read back differs from the one written there".into());
    }
    let expected = log.expected;
    match seen {
        Some(p) if p == expected => Ok(()),
        None if good.len() as u64 == expected - 1
            && ((log.clean_cut && log.last()) || expected == log.commits.len() as u64 + 1) =>
        {
            Ok(())
        }
        other => Err(format!(
            "damage seen at {other:?} after {} good commits; expected at {expected} (clean cut: {}, last segment: {})",
            good.len(),
            log.clean_cut,
            log.last()
        )),
    }
}

proptest! {
    #![proptest_config(config(FILE_CASES, 0x10C0_0003))]
    #[test]
    fn fuzz_segment_reader_with_damaged_segments(case in damage_case()) {
        let log = write_damaged(&case);
        check_reader(&log).map_err(|problem| log.fail(problem))?;
    }
}

/// `FileLog::open`'s property for one damaged log; `Err` says how it is broken.
async fn check_open(log: &Written, event_id: Uuid) -> Result<(), String> {
    let expected = log.expected;
    let file_log = match FileLog::open(FileLogConfig::new(log.dir.path())).await {
        Ok(file_log) => file_log,
        Err(LogError::Corrupt { position, .. }) if position == expected => return Ok(()),
        Err(e) => {
            return Err(format!(
                "refused with {e:?}, expected Corrupt at {expected}"
            ))
        }
    };
    let head = file_log.head().await.unwrap();
    let read = file_log.read_all(0, 10_000).await;
    let problem = if !log.last() && expected <= log.commits.len() as u64 {
        Err(format!(
            "opened with head {head} although segment {} (not the last) is damaged at {expected}",
            log.which
        ))
    } else if head != expected - 1 {
        Err(format!(
            "opened with head {head}, expected {}",
            expected - 1
        ))
    } else {
        match read {
            Err(e) => Err(format!("read_all after open: {e}")),
            Ok(read)
                if read.len() as u64 != head
                    || read
                        .iter()
                        .zip(log.commits)
                        .any(|(r, c)| r.bytes.as_ref() != c.as_slice()) =>
            {
                Err("the commits read back are not the ones written".into())
            }
            Ok(_) => {
                // The recovered log takes the next commit at the next position.
                let appended = file_log
                    .append(
                        &StreamId::new("case/after").unwrap(),
                        ExpectedRevision::NoStream,
                        vec![EventData {
                            id: event_id,
                            type_name: "t".into(),
                            type_version: 1,
                            payload: Bytes::from_static(b"after"),
                        }],
                        Metadata::default(),
                    )
                    .await;
                match appended {
                    Ok(a) if a.position == head + 1 => Ok(()),
                    other => Err(format!("append after recovery: {other:?}")),
                }
            }
        }
    };
    file_log.close().await.unwrap();
    problem
}

/// One runtime for every case of the `FileLog::open` target.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

proptest! {
    #![proptest_config(config(OPEN_CASES, 0x10C0_0004))]
    #[test]
    fn fuzz_file_log_open_with_damaged_segments(case in damage_case(), event_id in uuid()) {
        let log = write_damaged(&case);
        runtime()
            .block_on(check_open(&log, event_id))
            .map_err(|problem| log.fail(problem))?;
    }
}

/// The frames of a segment file's honest bytes: `(start, end)` of each frame.
fn frames(segment: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 24;
    while at + 8 <= segment.len() {
        let len = u32::from_le_bytes(segment[at..at + 4].try_into().unwrap()) as usize;
        out.push((at, at + 8 + len));
        at += 8 + len;
    }
    assert_eq!(at, segment.len(), "an honest segment is whole frames");
    out
}

/// The header's reserved field (bytes 12 to 16, "reserved, zero" in `docs/log-format.md`) is
/// ignored by every reader, so a change there damages nothing.
const RESERVED: std::ops::Range<usize> = 12..16;

/// The first offset where `damaged` differs from `honest` in a byte that means something (or
/// where one of them ends before the other), if any.
fn first_meaningful_difference(honest: &[u8], damaged: &[u8]) -> Option<usize> {
    honest
        .iter()
        .zip(damaged)
        .enumerate()
        .position(|(i, (a, b))| a != b && !RESERVED.contains(&i))
        .or_else(|| (honest.len() != damaged.len()).then(|| honest.len().min(damaged.len())))
}

/// Reads the directory with `SegmentReader`, checking each commit's hash chain as
/// `FileLog::open` does; returns the commits read before the first damage, and where the
/// damage was seen (reader or chain), if anywhere.
fn read_and_verify(dir: &Path, limit: usize) -> Result<(Vec<Vec<u8>>, Option<u64>), String> {
    let reader = SegmentReader::open(dir).map_err(|e| format!("open: {e}"))?;
    let mut good = Vec::new();
    let mut heads: HashMap<StreamId, StreamLink> = HashMap::new();
    for (i, item) in reader.enumerate() {
        if i > limit {
            return Err("the reader yields more items than frames were written".into());
        }
        match item {
            Ok((position, bytes)) => {
                if position != good.len() as u64 + 1 {
                    return Err(format!("position {position} after {} commits", good.len()));
                }
                let Ok(commit) = commit::decode(&bytes) else {
                    return Ok((good, Some(position)));
                };
                if commit.prev != heads.get(&commit.stream).copied() {
                    return Ok((good, Some(position)));
                }
                heads.insert(
                    commit.stream.clone(),
                    StreamLink {
                        revision: position,
                        hash: CommitHash::of(&bytes),
                    },
                );
                good.push(bytes.to_vec());
            }
            Err(e) => {
                if e.position != good.len() as u64 + 1 {
                    return Err(format!("error {e} after {} commits", good.len()));
                }
                return Ok((good, Some(e.position)));
            }
        }
    }
    Ok((good, None))
}

// ---------------------------------------------------------------------------------------------
// Regression cases.

#[allow(dead_code)]
fn regression_decode(bytes_hex: &str) -> Result<bool, String> {
    check_decode(&unhex(bytes_hex), None, true)
}

/// Reads a one-segment log (base position 1) made of `segment_hex` with the reader (checking
/// the hash chain) and with `FileLog::open`: the commits read, where damage was seen, and the
/// head `FileLog::open` recovered (or its error).
async fn read_segment(segment_hex: &str) -> (Vec<Vec<u8>>, Option<u64>, Result<u64, LogError>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("00000000000000000001.seg"),
        unhex(segment_hex),
    )
    .unwrap();
    let (good, seen) = read_and_verify(dir.path(), 100).unwrap();
    let opened = match FileLog::open(FileLogConfig::new(dir.path())).await {
        Ok(log) => {
            let head = log.head().await.unwrap();
            log.close().await.unwrap();
            Ok(head)
        }
        Err(e) => Err(e),
    };
    (good, seen, opened)
}

/// Found by the segment-reader target (its first version, case 766): a bit set in the segment
/// header's reserved field ("reserved, zero" in `docs/log-format.md`) is not checked by any
/// reader — nothing covers the header with a checksum — so the segment reads as undamaged.
/// That is right: no commit changed (their frames and checksums are intact), and readers ignore
/// the field as reserved fields are ignored; the oracle now ignores it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_changed_reserved_header_field_changes_no_commit() {
    let honest = "444f434b45544c4701000000000000000100000000000000ab00000018412ebb0109636173652f66757a7a\
                  00010976666b75376268316201336b756b746279786f776d2d797861386f6f6e696976387a3176706978\
                  767039623472376b733363305f637a62797a366977687a0000c4cfc79ba5cfb5f865011092343e42c24d\
                  e06b0f0c925e63fa8b2a082e72786d70323967b325326e68568a30b1fb22a6790d428aa6d039e98e99ca\
                  34b0f211be5c392720ff72d6caaf075705c71254f2592682e63dc8d2d11689110b25";
    let damaged = "444f434b45544c4701000000000100000100000000000000ab00000018412ebb0109636173652f66757a7a\
                   00010976666b75376268316201336b756b746279786f776d2d797861386f6f6e696976387a3176706978\
                   767039623472376b733363305f637a62797a366977687a0000c4cfc79ba5cfb5f865011092343e42c24d\
                   e06b0f0c925e63fa8b2a082e72786d70323967b325326e68568a30b1fb22a6790d428aa6d039e98e99ca\
                   34b0f211be5c392720ff72d6caaf075705c71254f2592682e63dc8d2d11689110b25";
    let (good, seen, opened) = read_segment(damaged).await;
    assert_eq!(good, vec![unhex(honest)[32..].to_vec()]);
    assert_eq!(seen, None);
    assert_eq!(opened.unwrap(), 1);
    assert_eq!(
        first_meaningful_difference(&unhex(honest), &unhex(damaged)),
        None
    );
}

/// Found by the segment-reader target (its first version, case 376, moved to base position 1):
/// a segment cut back to its header, whose reserved field is also changed, is an empty segment
/// — a clean cut at a frame boundary, which reads as a shorter log, not as damage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_segment_cut_to_a_header_with_a_changed_reserved_field_is_empty() {
    let damaged = "444f434b45544c4701000000800000000100000000000000";
    let (good, seen, opened) = read_segment(damaged).await;
    assert!(good.is_empty());
    assert_eq!(seen, None);
    assert_eq!(opened.unwrap(), 0);
}
