//! The state of one verification ([`Pass`]): the commits applied in order (hash chains, the
//! tree, the checkpoints, the rules until the first rule failure), then the checks that need
//! the whole export, then the [`Report`].

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use docket_log::{CommitHash, RecordedCommit};

use super::checkpoints::{CheckpointFile, ProofFile};
use super::read::Hashed;
use super::{
    failure, AnchorCheck, Anchors, CadenceDeclaration, Failure, Gap, Report, VerifyOptions,
    WitnessSeen, CHECKSUM, DECODE, HASH_CHAIN, POSITION,
};
use crate::note::CheckpointVerifier;
use crate::rules::RuleChecker;
use crate::tree::{Hash, Tree};

/// A verification in progress.
pub(super) struct Pass<'a> {
    pub(super) key: &'a CheckpointVerifier,
    pub(super) anchors: &'a Anchors,
    pub(super) checkpoints: Vec<CheckpointFile>,
    pub(super) proofs: Vec<ProofFile>,
    pub(super) next_checkpoint: usize,
    /// The last checkpoint checked within the export: size and root.
    pub(super) last_good: Option<(u64, Hash)>,
    pub(super) checkpoints_checked: u64,
    /// The last checkpoint the witnesses' quorum cosigned: the size it vouches for within the
    /// export, and who cosigned it.
    pub(super) witnessed: Option<(u64, Vec<WitnessSeen>)>,
    /// The checkpoint beyond the head that the consistency proof from the head reaches.
    pub(super) proof_to: Option<(u64, Hash)>,
    pub(super) tree: Tree,
    heads: HashMap<String, (u64, CommitHash)>,
    pub(super) rules: Option<RuleChecker>,
    /// The first process-rule failure; the rules stop there, the integrity checks go on.
    rule_failure: Option<Failure>,
    counts: BTreeMap<String, u64>,
    pub(super) commits: u64,
    pub(super) events: u64,
    pub(super) first_at: Option<i64>,
    pub(super) last_at: Option<i64>,
    pub(super) segments: u64,
    pub(super) cadence: Vec<CadenceDeclaration>,
    /// The first commit no checkpoint covers yet: position and recorded time.
    pub(super) segment: Option<(u64, i64)>,
    pub(super) gaps: Vec<Gap>,
    /// The anchors checked.
    pub(super) anchor_checks: Vec<AnchorCheck>,
    /// Integrity failures, in the order found.
    pub(super) failures: Vec<Failure>,
}

impl<'a> Pass<'a> {
    pub(super) fn new(key: &'a CheckpointVerifier, anchors: &'a Anchors) -> Self {
        Pass {
            key,
            anchors,
            checkpoints: Vec::new(),
            proofs: Vec::new(),
            next_checkpoint: 0,
            last_good: None,
            checkpoints_checked: 0,
            witnessed: None,
            proof_to: None,
            tree: Tree::new(),
            heads: HashMap::new(),
            rules: None,
            rule_failure: None,
            counts: BTreeMap::new(),
            commits: 0,
            events: 0,
            first_at: None,
            last_at: None,
            segments: 0,
            cadence: Vec::new(),
            segment: None,
            gaps: Vec::new(),
            anchor_checks: Vec::new(),
            failures: Vec::new(),
        }
    }

    pub(super) fn count(&mut self, rule: &str, n: u64) {
        *self.counts.entry(rule.to_owned()).or_default() += n;
    }

    /// Applies the next commit. Err: an integrity failure, which ends the pass.
    pub(super) fn commit(&mut self, h: Hashed) -> Result<(), Failure> {
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
        self.events += commit.events.len() as u64;
        let at = commit.metadata.recorded_at_micros;
        self.first_at.get_or_insert(at);
        self.last_at = Some(at);
        self.segment.get_or_insert((position, at));
        self.note_cadence(position, &commit);
        self.checkpoints_at(position, Some(at))?;
        if self.rule_failure.is_none() {
            if let Some(rules) = &mut self.rules {
                let recorded = RecordedCommit {
                    position,
                    commit,
                    bytes: h.bytes,
                };
                if let Err(f) = rules.check_commit(&recorded) {
                    self.rule_failure = Some(Failure {
                        position: f.position,
                        rule: f.rule.to_owned(),
                        message: f.message,
                    });
                }
            }
        }
        Ok(())
    }

    /// The checks that need the whole export, after a pass whose integrity checks held.
    pub(super) fn finish(&mut self, dir: &Path, options: &VerifyOptions) {
        if let Err(f) = self.beyond_head() {
            self.failures.push(f);
            return;
        }
        if self.rule_failure.is_none() {
            if let Some(rules) = &mut self.rules {
                if let Err(f) = rules.finish() {
                    self.rule_failure = Some(Failure {
                        position: f.position,
                        rule: f.rule.to_owned(),
                        message: f.message,
                    });
                }
            }
        }
        // The commits after the last checkpoint within the export.
        if let (Some(_), Some(last_at)) = (self.segment, self.last_at) {
            self.judge_gap(self.commits, last_at, self.proof_to.is_none());
        }
        self.check_anchors(options.allow_unsigned_tail);
        self.check_manifest(dir, options.manifest_signed);
        self.check_coverage(options.allow_unsigned_tail);
    }

    /// The report; `stopped` is the integrity failure that ended the pass, if one did.
    pub(super) fn report(
        &mut self,
        dir: &Path,
        options: &VerifyOptions,
        stopped: Option<&Failure>,
        elapsed: Duration,
    ) -> Report {
        let mut rules = self.counts.clone();
        // Every commit read is checked for these, in this order; a failing one counts too.
        let failed_at = stopped.map(|f| f.rule.as_str());
        let mut through = self.commits;
        for rule in [CHECKSUM, POSITION, DECODE, HASH_CHAIN] {
            if failed_at == Some(rule) {
                through += 1;
            }
            rules.insert(rule.to_owned(), through);
        }
        if let Some(r) = &self.rules {
            for (rule, n) in r.counts() {
                *rules.entry((*rule).to_owned()).or_default() += n;
            }
        }
        let mut failures = std::mem::take(&mut self.failures);
        failures.extend(self.rule_failure.take());
        let coverage = self.coverage(options, stopped, failures.first());
        Report {
            dir: dir.to_path_buf(),
            ok: failures.is_empty(),
            commits_checked: self.commits,
            streams: self.heads.len() as u64,
            domain_commits: self.rules.as_ref().map_or(0, RuleChecker::domain_commits),
            checkpoints_found: self.checkpoints.len() as u64,
            checkpoints_checked: self.checkpoints_checked,
            root: self.tree.root().to_string(),
            rules,
            elapsed,
            first_failure: failures.first().cloned(),
            failures,
            coverage,
        }
    }

    /// Distinct streams so far.
    pub(super) fn streams(&self) -> u64 {
        self.heads.len() as u64
    }
}
