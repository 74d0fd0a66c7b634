//! Offline verification of an export ([`crate::export`]): reads the file set only, never
//! panics, and stops at the first failure, naming its position and rule.
//!
//! In log order, for each commit: the frame's checksums (`checksum`, which also covers a
//! truncated segment), positions dense (`position`), the commit decodes (`decode`), its stream
//! link names the previous commit of its stream by position and hash, or none for the stream's
//! first (`hash_chain`); its leaf joins the Merkle tree, and every checkpoint of that size is
//! checked: signed by the given key (`checkpoint_signature`), root equal to the tree's
//! (`checkpoint_root`), consistent with the previous checkpoint (`checkpoint_consistency`, by a
//! proof built from the tree and checked with [`verify_consistency`]); then the process rules
//! ([`crate::rules`]). After the last commit: checkpoints beyond the head (`checkpoint_size`),
//! deadlines left running past their due time (`review_acknowledged`, `deadline_met_or_missed`)
//! and the manifest's head (`manifest`).
//!
//! Hashing is the cost (the commit hash and the leaf hash of every commit): commits are read in
//! chunks whose hashing and decoding is spread over threads, and the chain, the tree and the
//! rules are then applied in order.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use docket_domain::policy::PolicySet;
use docket_log::commit::{self, Commit};
use docket_log::file::export::{ReadError, ReadErrorKind, SegmentReader};
use docket_log::{CommitHash, RecordedCommit};
use serde::Serialize;

use crate::export::{Manifest, CHECKPOINTS_DIR, EXPORT_FORMAT, MANIFEST_FILE, SEGMENTS_DIR};
use crate::note::{CheckpointVerifier, SignedCheckpoint};
use crate::rules::RuleChecker;
use crate::tree::{leaf_hash, verify_consistency, Hash, Tree};

/// Rule: a frame's checksums (or a frame cut short).
pub const CHECKSUM: &str = "checksum";
/// Rule: a commit's bytes decode.
pub const DECODE: &str = "decode";
/// Rule: positions are dense from 1.
pub const POSITION: &str = "position";
/// Rule: each stream's hash chain.
pub const HASH_CHAIN: &str = "hash_chain";
/// Rule: a checkpoint is signed by the given key.
pub const CHECKPOINT_SIGNATURE: &str = "checkpoint_signature";
/// Rule: a checkpoint's size is within the export.
pub const CHECKPOINT_SIZE: &str = "checkpoint_size";
/// Rule: a checkpoint's root is the root of the commits up to its size.
pub const CHECKPOINT_ROOT: &str = "checkpoint_root";
/// Rule: consecutive checkpoints are consistent.
pub const CHECKPOINT_CONSISTENCY: &str = "checkpoint_consistency";
/// Rule: the manifest is readable and its head is the export's.
pub const MANIFEST: &str = "manifest";

/// Commits hashed and decoded per parallel step.
const CHUNK: usize = 16 * 1024;

/// How to verify.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// Check the process rules (default true).
    pub process_rules: bool,
    /// Time allowed after a deadline's due time before its miss must be on record (default
    /// zero).
    pub deadline_grace: chrono::Duration,
    /// The policy versions to judge decisions by (default: the shipped ones).
    pub policies: Option<PolicySet>,
    /// Threads for hashing (default: the machine's parallelism).
    pub threads: Option<usize>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            process_rules: true,
            deadline_grace: chrono::Duration::zero(),
            policies: None,
            threads: None,
        }
    }
}

/// The first thing wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The position of the commit that breaks the rule; for a checkpoint, its size; for
    /// something missing, the commit that started its clock.
    pub position: u64,
    /// The rule's name.
    pub rule: String,
    /// What is wrong.
    pub message: String,
}

/// What [`verify`] found.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The export's directory.
    pub dir: PathBuf,
    /// True when nothing failed.
    pub ok: bool,
    /// Commits checked (all of them when `ok`).
    pub commits_checked: u64,
    /// Distinct streams among them.
    pub streams: u64,
    /// Commits of the domain's streams the process rules folded.
    pub domain_commits: u64,
    /// Checkpoint files found.
    pub checkpoints_found: u64,
    /// Checkpoints whose signature, root and consistency were checked and held.
    pub checkpoints_checked: u64,
    /// The Merkle root of the commits checked (base64, as in checkpoints).
    pub root: String,
    /// How many times each rule was checked.
    pub rules: BTreeMap<String, u64>,
    /// Wall time.
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
    /// The first failure, if any.
    pub first_failure: Option<Failure>,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Report {
    /// Commits checked per second of wall time.
    pub fn commits_per_s(&self) -> f64 {
        self.commits_checked as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.first_failure {
            None => writeln!(f, "VERIFIED {}", self.dir.display())?,
            Some(x) => writeln!(
                f,
                "FAILED {}: position {}, rule {}: {}",
                self.dir.display(),
                x.position,
                x.rule,
                x.message
            )?,
        }
        writeln!(
            f,
            "  {} commits in {} streams, {} checkpoints of {} checked, in {:.2} s ({:.0} commits/s)",
            self.commits_checked,
            self.streams,
            self.checkpoints_checked,
            self.checkpoints_found,
            self.elapsed.as_secs_f64(),
            self.commits_per_s()
        )?;
        writeln!(f, "  root {}", self.root)?;
        if self.domain_commits == 0 {
            writeln!(
                f,
                "  no domain commits (case, officer, representation, review): the process rules had nothing to check"
            )?;
        }
        write!(f, "  checks:")?;
        for (rule, n) in &self.rules {
            write!(f, " {rule} {n};")?;
        }
        writeln!(f)
    }
}

/// One checkpoint file.
struct CheckpointFile {
    /// The size its name says.
    named: u64,
    path: PathBuf,
    opened: Result<SignedCheckpoint, String>,
}

impl CheckpointFile {
    fn size(&self) -> u64 {
        self.opened
            .as_ref()
            .map_or(self.named, |s| s.checkpoint.size)
    }
}

fn load_checkpoints(
    dir: &Path,
    verifier: &CheckpointVerifier,
) -> Result<Vec<CheckpointFile>, Failure> {
    let dir = dir.join(CHECKPOINTS_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(failure(
                0,
                CHECKPOINT_SIGNATURE,
                format!("listing {}: {e}", dir.display()),
            ))
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            failure(
                0,
                CHECKPOINT_SIGNATURE,
                format!("listing {}: {e}", dir.display()),
            )
        })?;
        let path = entry.path();
        let Some(named) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".note"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let opened = match std::fs::read_to_string(&path) {
            Ok(text) => verifier.open(&text).map_err(|e| e.to_string()),
            Err(e) => Err(format!("reading {}: {e}", path.display())),
        };
        out.push(CheckpointFile {
            named,
            path,
            opened,
        });
    }
    out.sort_by_key(|c| (c.size(), c.named));
    Ok(out)
}

fn failure(position: u64, rule: &str, message: String) -> Failure {
    Failure {
        position,
        rule: rule.to_owned(),
        message,
    }
}

/// One commit after the parallel step.
struct Hashed {
    position: u64,
    bytes: Bytes,
    commit: Result<Commit, String>,
    hash: CommitHash,
    leaf: Hash,
}

fn hash_one(position: u64, bytes: Bytes) -> Hashed {
    Hashed {
        position,
        hash: CommitHash::of(&bytes),
        leaf: leaf_hash(&bytes),
        commit: commit::decode(&bytes),
        bytes,
    }
}

/// Hashes and decodes a chunk on `threads` threads, keeping the order.
fn hash_chunk(chunk: Vec<(u64, Bytes)>, threads: usize) -> Vec<Hashed> {
    if threads <= 1 || chunk.len() < 256 {
        return chunk.into_iter().map(|(p, b)| hash_one(p, b)).collect();
    }
    let per = chunk.len().div_ceil(threads);
    let mut parts: Vec<Vec<(u64, Bytes)>> = Vec::with_capacity(threads);
    let mut rest = chunk;
    while rest.len() > per {
        let tail = rest.split_off(per);
        parts.push(rest);
        rest = tail;
    }
    parts.push(rest);
    std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(parts.len());
        let mut parts = parts.into_iter();
        let mine = parts.next().unwrap_or_default();
        for part in parts {
            handles.push(scope.spawn(move || {
                part.into_iter()
                    .map(|(p, b)| hash_one(p, b))
                    .collect::<Vec<_>>()
            }));
        }
        let mut out: Vec<Hashed> = mine.into_iter().map(|(p, b)| hash_one(p, b)).collect();
        for handle in handles {
            match handle.join() {
                Ok(done) => out.extend(done),
                // Hashing and decoding do not panic on any input; if one did, resume it.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

/// The state of a verification in progress.
struct Verifier<'a> {
    verifier: &'a CheckpointVerifier,
    checkpoints: Vec<CheckpointFile>,
    next_checkpoint: usize,
    last_good: Option<(u64, Hash)>,
    checkpoints_checked: u64,
    tree: Tree,
    heads: HashMap<String, (u64, CommitHash)>,
    rules: Option<RuleChecker>,
    counts: BTreeMap<String, u64>,
    commits: u64,
}

impl Verifier<'_> {
    fn count(&mut self, rule: &str, n: u64) {
        *self.counts.entry(rule.to_owned()).or_default() += n;
    }

    /// Checks the checkpoints of exactly the tree's current size.
    fn checkpoints_at(&mut self, size: u64) -> Result<(), Failure> {
        while let Some(c) = self.checkpoints.get(self.next_checkpoint) {
            if c.size() != size {
                break;
            }
            let (named, path, opened) = (c.named, c.path.clone(), c.opened.clone());
            self.next_checkpoint += 1;
            self.count(CHECKPOINT_SIGNATURE, 1);
            let signed = match opened {
                Ok(s) => s,
                Err(e) => {
                    return Err(failure(
                        named,
                        CHECKPOINT_SIGNATURE,
                        format!("{}: {e}", path.display()),
                    ))
                }
            };
            self.count(CHECKPOINT_SIZE, 1);
            if named != size {
                return Err(failure(
                    size,
                    CHECKPOINT_SIZE,
                    format!(
                        "{} holds a checkpoint of size {size}, its name says {named}",
                        path.display(),
                    ),
                ));
            }
            self.count(CHECKPOINT_ROOT, 1);
            let root = self
                .tree
                .root_at(size)
                .map_err(|e| failure(size, CHECKPOINT_ROOT, e.to_string()))?;
            let claimed = signed.checkpoint.root;
            if root != claimed {
                return Err(failure(
                    size,
                    CHECKPOINT_ROOT,
                    format!(
                        "the checkpoint of size {size} says root {claimed}; the first {size} commits give {root}"
                    ),
                ));
            }
            if let Some((old, old_root)) = self.last_good {
                self.count(CHECKPOINT_CONSISTENCY, 1);
                let checked = if old == size {
                    if old_root == claimed {
                        Ok(())
                    } else {
                        Err("two roots for one size".to_owned())
                    }
                } else {
                    self.tree
                        .consistency_proof(old, size)
                        .map_err(|e| e.to_string())
                        .and_then(|proof| {
                            verify_consistency(&proof, old, old_root, size, claimed)
                                .map_err(|e| e.to_string())
                        })
                };
                if let Err(e) = checked {
                    return Err(failure(
                        size,
                        CHECKPOINT_CONSISTENCY,
                        format!("the checkpoint of size {size} is not consistent with the one of size {old}: {e}"),
                    ));
                }
            }
            self.last_good = Some((size, claimed));
            self.checkpoints_checked += 1;
        }
        Ok(())
    }

    fn commit(&mut self, h: Hashed) -> Result<(), Failure> {
        let position = h.position;
        let commit = match h.commit {
            Ok(c) => c,
            Err(e) => return Err(failure(position, DECODE, e)),
        };
        let expected = self.heads.get(commit.stream.as_str()).copied();
        let link = commit.prev.map(|l| (l.revision, l.hash));
        if link != expected {
            let show = |l: Option<(u64, CommitHash)>| match l {
                Some((r, h)) => format!("position {r} with hash {h}"),
                None => "none".to_owned(),
            };
            return Err(failure(
                position,
                HASH_CHAIN,
                format!(
                    "stream {}: the commit links to {}; the stream's previous commit is {}",
                    commit.stream,
                    show(link),
                    show(expected)
                ),
            ));
        }
        match self.heads.get_mut(commit.stream.as_str()) {
            Some(head) => *head = (position, h.hash),
            None => {
                self.heads
                    .insert(commit.stream.as_str().to_owned(), (position, h.hash));
            }
        }
        self.tree.push_leaf(h.leaf);
        self.commits += 1;
        self.checkpoints_at(position)?;
        if let Some(rules) = &mut self.rules {
            let recorded = RecordedCommit {
                position,
                commit,
                bytes: h.bytes,
            };
            rules.check_commit(&recorded).map_err(|f| Failure {
                position: f.position,
                rule: f.rule.to_owned(),
                message: f.message,
            })?;
        }
        Ok(())
    }

    /// The checks that need the whole export.
    fn finish(&mut self, dir: &Path) -> Result<(), Failure> {
        let head = self.commits;
        if let Some(c) = self.checkpoints.get(self.next_checkpoint) {
            let size = c.size();
            let (named, path, opened) = (c.named, c.path.clone(), c.opened.clone());
            self.count(CHECKPOINT_SIGNATURE, 1);
            if let Err(e) = opened {
                return Err(failure(
                    named,
                    CHECKPOINT_SIGNATURE,
                    format!("{}: {e}", path.display()),
                ));
            }
            self.count(CHECKPOINT_SIZE, 1);
            return Err(failure(
                size,
                CHECKPOINT_SIZE,
                format!(
                    "{}: a checkpoint of size {size}, but the export holds {head} commits",
                    path.display()
                ),
            ));
        }
        if let Some(rules) = &mut self.rules {
            rules.finish().map_err(|f| Failure {
                position: f.position,
                rule: f.rule.to_owned(),
                message: f.message,
            })?;
        }
        self.count(MANIFEST, 1);
        let path = dir.join(MANIFEST_FILE);
        let manifest: Manifest = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .map_err(|e| failure(0, MANIFEST, format!("{}: {e}", path.display())))?;
        if manifest.format != EXPORT_FORMAT || manifest.version != 1 {
            return Err(failure(
                0,
                MANIFEST,
                format!(
                    "{}: format {} version {}, expected {EXPORT_FORMAT} version 1",
                    path.display(),
                    manifest.format,
                    manifest.version
                ),
            ));
        }
        if manifest.head != head {
            return Err(failure(
                manifest.head.min(head) + 1,
                MANIFEST,
                format!(
                    "the manifest says the export ends at position {}, the segments hold {head} commits",
                    manifest.head
                ),
            ));
        }
        Ok(())
    }
}

/// Verifies the export in `dir` against the log's public key. Reads only; never panics.
pub fn verify(dir: &Path, verifier: &CheckpointVerifier, options: &VerifyOptions) -> Report {
    verify_with_tree(dir, verifier, options).0
}

/// [`verify`], also returning the Merkle tree it built over the commits it checked (for
/// proofs against the export's checkpoints).
pub fn verify_with_tree(
    dir: &Path,
    verifier: &CheckpointVerifier,
    options: &VerifyOptions,
) -> (Report, Tree) {
    let started = Instant::now();
    let threads = options
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let mut v = Verifier {
        verifier,
        checkpoints: Vec::new(),
        next_checkpoint: 0,
        last_good: None,
        checkpoints_checked: 0,
        tree: Tree::new(),
        heads: HashMap::new(),
        rules: None,
        counts: BTreeMap::new(),
        commits: 0,
    };
    let result = run(dir, options, threads, &mut v);
    let mut rules: BTreeMap<String, u64> = v.counts.clone();
    // Every commit read is checked for these, in this order; a failing one counts too.
    let failed_at = result.as_ref().err().map(|f| f.rule.as_str());
    let mut through = v.commits;
    for rule in [CHECKSUM, POSITION, DECODE, HASH_CHAIN] {
        if failed_at == Some(rule) {
            through += 1;
        }
        rules.insert(rule.to_owned(), through);
    }
    if let Some(r) = &v.rules {
        for (rule, n) in r.counts() {
            *rules.entry((*rule).to_owned()).or_default() += n;
        }
    }
    let report = Report {
        dir: dir.to_path_buf(),
        ok: result.is_ok(),
        commits_checked: v.commits,
        streams: v.heads.len() as u64,
        domain_commits: v.rules.as_ref().map_or(0, RuleChecker::domain_commits),
        checkpoints_found: v.checkpoints.len() as u64,
        checkpoints_checked: v.checkpoints_checked,
        root: v.tree.root().to_string(),
        rules,
        elapsed: started.elapsed(),
        first_failure: result.err(),
    };
    (report, v.tree)
}

fn run(
    dir: &Path,
    options: &VerifyOptions,
    threads: usize,
    v: &mut Verifier<'_>,
) -> Result<(), Failure> {
    v.checkpoints = load_checkpoints(dir, v.verifier)?;
    if options.process_rules {
        let policies = match &options.policies {
            Some(p) => p.clone(),
            None => PolicySet::shipped()
                .map_err(|e| failure(0, "policy", format!("loading the shipped policy: {e}")))?,
        };
        v.rules = Some(RuleChecker::new(policies, options.deadline_grace));
    }
    // A checkpoint of the empty tree.
    v.checkpoints_at(0)?;
    let segments = dir.join(SEGMENTS_DIR);
    let mut reader =
        SegmentReader::open(&segments).map_err(|e| failure(e.position, CHECKSUM, e.reason))?;
    if reader.segments().is_empty() {
        return Err(failure(
            1,
            POSITION,
            format!("no segment files in {}", segments.display()),
        ));
    }
    if threads <= 1 {
        loop {
            let (chunk, read_error, last) = read_chunk(&mut reader);
            for h in hash_chunk(chunk, 1) {
                v.commit(h)?;
            }
            if let Some(e) = read_error {
                return Err(read_failure(e));
            }
            if last {
                break;
            }
        }
    } else {
        // A reader thread reads, hashes and decodes chunks (on `threads - 1` threads); this
        // one applies them in order: chain, tree, checkpoints, rules.
        let (tx, rx) = std::sync::mpsc::sync_channel::<(Vec<Hashed>, Option<ReadError>)>(2);
        let hashers = threads - 1;
        std::thread::scope(|scope| {
            scope.spawn(move || loop {
                let (chunk, read_error, last) = read_chunk(&mut reader);
                let hashed = hash_chunk(chunk, hashers);
                // A closed channel means the checks stopped at a failure.
                if tx.send((hashed, read_error)).is_err() || last {
                    break;
                }
            });
            for (hashed, read_error) in rx {
                for h in hashed {
                    v.commit(h)?;
                }
                if let Some(e) = read_error {
                    return Err(read_failure(e));
                }
            }
            Ok(())
        })?;
    }
    v.finish(dir)
}

/// Reads up to [`CHUNK`] commits: them, the read error that stopped it, and whether it was the
/// last chunk.
fn read_chunk(reader: &mut SegmentReader) -> (Vec<(u64, Bytes)>, Option<ReadError>, bool) {
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut read_error = None;
    for item in reader.by_ref() {
        match item {
            Ok(c) => {
                chunk.push(c);
                if chunk.len() == CHUNK {
                    break;
                }
            }
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
    }
    let last = chunk.len() < CHUNK || read_error.is_some();
    (chunk, read_error, last)
}

fn read_failure(e: ReadError) -> Failure {
    let rule = match e.kind {
        ReadErrorKind::Position => POSITION,
        _ => CHECKSUM,
    };
    failure(e.position, rule, format!("{}: {}", e.kind.name(), e.reason))
}
